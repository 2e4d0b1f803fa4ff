//! The executors the async tests drive every call from: a tokio
//! multi-thread runtime, a tokio current-thread runtime and
//! `futures::executor::block_on` (included with
//! `#[path = "common/executors.rs"] mod executors;`).

use std::future::Future;
use std::time::Duration;

/// Generous: only a guard against hangs.
pub(crate) const HANG_GUARD: Duration = Duration::from_secs(60);

/// One of the executors.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Exec {
    TokioMulti,
    TokioCurrent,
    BlockOn,
}

/// All three.
pub(crate) const EXECS: [Exec; 3] = [Exec::TokioMulti, Exec::TokioCurrent, Exec::BlockOn];

/// Runs `fut` to completion on `exec`, with a hang guard (tokio's timer
/// on the tokio runtimes; none for block_on, whose futures in these tests
/// all end by themselves or by the peers' actions).
pub(crate) fn run<F: Future + Send + 'static>(exec: Exec, fut: F) -> F::Output
where
    F::Output: Send,
{
    match exec {
        Exec::TokioMulti => {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
            rt.block_on(async { tokio::time::timeout(HANG_GUARD, tokio::spawn(fut)).await })
                .expect("hang guard")
                .expect("task")
        }
        Exec::TokioCurrent => {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
            rt.block_on(async { tokio::time::timeout(HANG_GUARD, fut).await }).expect("hang guard")
        }
        Exec::BlockOn => futures::executor::block_on(fut),
    }
}
