//! The async forms of the pools' results (feature `async`): `.await` on
//! `AsyncResult` and `TaskFuture` (owned and borrowed), and `Imap` and
//! `AsCompleted` as `Stream`s. Each form runs under a tokio multi-thread
//! runtime (spawned onto its workers), a tokio current-thread runtime and
//! `futures::executor::block_on`.
//!
//! As in tests/pool.rs, nothing calls `shmproc::init()`: the library's
//! loader hook runs before the harness's `main`, so re-executed workers
//! take their role in this binary too.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::StreamExt;
use futures::task::noop_waker_ref;
use shmproc::{
    AsyncResultAwait, Imap, Pool, ProcessPoolExecutor, Queue, TaskError, TaskFuture, TaskFutureAwait, as_completed,
};

/// Every wait that should end does so long before this.
const GUARD: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// Tasks
// ---------------------------------------------------------------------------

fn square(x: u64) -> u64 {
    x * x
}

fn boom(msg: String) -> u64 {
    panic!("{msg}")
}

fn panic_on_odd(x: u64) -> u64 {
    assert!(x.is_multiple_of(2), "odd input {x}");
    x
}

fn exit_with(code: i32) -> u64 {
    std::process::exit(code)
}

// Workers receive the gate queue through the initializer; tasks find it
// here (one copy per worker process).
static GATE: OnceLock<Queue<u64>> = OnceLock::new();

fn set_gate(q: Queue<u64>) {
    let _ = GATE.set(q);
}

const RELEASE: u64 = 99;

/// Task: item 0 waits until the test puts `RELEASE` into the gate queue;
/// other items return at once.
fn gated(i: u64) -> u64 {
    if i == 0 {
        let got = GATE.get().expect("initializer ran").get_timeout(GUARD).expect("released");
        assert_eq!(got, RELEASE);
    }
    i
}

/// Task: puts its worker's pid into the gate queue, then sleeps until it
/// is killed.
fn report_pid_and_sleep(_: ()) -> u64 {
    GATE.get().expect("initializer ran").put(u64::from(std::process::id())).expect("put");
    std::thread::sleep(Duration::from_secs(600));
    0
}

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

/// Aborts the test binary if it is not dropped within `4 * GUARD`: a hang
/// guard for futures awaited under `block_on`, which has no timer.
struct Watchdog(#[allow(dead_code)] mpsc::Sender<()>);

fn watchdog(what: &'static str) -> Watchdog {
    let (tx, rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(4 * GUARD) {
            eprintln!("hang guard: {what} did not finish");
            std::process::abort();
        }
    });
    Watchdog(tx)
}

/// Runs `make()`'s future to its end on a tokio multi-thread runtime (on a
/// worker thread of it), on a tokio current-thread runtime, and under
/// `futures::executor::block_on`.
fn on_every_executor<F, Fut>(what: &'static str, make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let _guard = watchdog(what);
    let mt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().expect("runtime");
    if let Err(e) = mt.block_on(mt.spawn(make())) {
        std::panic::resume_unwind(e.into_panic());
    }
    drop(mt);
    let ct = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    ct.block_on(make());
    drop(ct);
    futures::executor::block_on(make());
}

/// Polls `f` once with a waker that does nothing.
fn poll_once<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
    Pin::new(f).poll(&mut Context::from_waker(noop_waker_ref()))
}

/// A pool of one worker that holds the gate queue.
fn gated_pool() -> (Arc<Pool>, Queue<u64>) {
    let gate = Queue::<u64>::new(0).expect("gate");
    let pool = Pool::builder().processes(1).initializer(set_gate, gate.clone()).build().expect("pool");
    (Arc::new(pool), gate)
}

/// An item as a comparable value: errors by their `Debug`, a panic by its
/// message (which worker ran it may differ).
fn shown(r: Result<u64, TaskError>) -> Result<u64, String> {
    r.map_err(|e| match e {
        TaskError::Panicked { message, .. } => format!("Panicked: {message}"),
        other => format!("{other:?}"),
    })
}

// ---------------------------------------------------------------------------
// AsyncResult and TaskFuture
// ---------------------------------------------------------------------------

#[test]
fn async_result_awaits_owned_and_borrowed() {
    let pool = Arc::new(Pool::new(2).expect("pool"));
    on_every_executor("AsyncResult.await", || {
        let pool = pool.clone();
        async move {
            let h = pool.apply_async(square, 7).expect("submit");
            assert_eq!((&h).await.expect("borrowed"), 49);
            assert_eq!((&h).await.expect("again"), 49);
            assert_eq!(h.get().expect("blocking form"), 49);
            assert_eq!(h.await.expect("owned"), 49);
            let many: Vec<_> = (0..8).map(|i| pool.apply_async(square, i).expect("submit")).collect();
            let mut got = Vec::new();
            for h in many {
                got.push(h.await.expect("result"));
            }
            assert_eq!(got, [0, 1, 4, 9, 16, 25, 36, 49]);
        }
    });
}

#[test]
fn task_future_awaits_owned_and_borrowed() {
    let ex = Arc::new(ProcessPoolExecutor::new(2).expect("executor"));
    on_every_executor("TaskFuture.await", || {
        let ex = ex.clone();
        async move {
            let f = ex.submit(square, 6).expect("submit");
            assert_eq!((&f).await.expect("borrowed"), 36);
            assert_eq!(f.result().expect("blocking form"), 36);
            assert_eq!(f.clone().await.expect("a clone"), 36);
            assert_eq!(f.await.expect("owned"), 36);
        }
    });
}

#[test]
fn a_panicking_task_gives_the_same_error_awaited() {
    let pool = Arc::new(Pool::new(1).expect("pool"));
    let ex = Arc::new(ProcessPoolExecutor::new(1).expect("executor"));
    on_every_executor("a panicking task", || {
        let (pool, ex) = (pool.clone(), ex.clone());
        async move {
            let h = pool.apply_async(boom, "async trouble".into()).expect("submit");
            let e = (&h).await.expect_err("panicked");
            assert!(matches!(&e, TaskError::Panicked { message, .. } if message.contains("async trouble")), "{e:?}");
            assert_eq!(format!("{e:?}"), format!("{:?}", h.get().expect_err("panicked")));
            let f = ex.submit(boom, "executor trouble".into()).expect("submit");
            let e = (&f).await.expect_err("panicked");
            assert!(matches!(&e, TaskError::Panicked { message, .. } if message.contains("executor trouble")), "{e:?}");
            assert_eq!(format!("{e:?}"), format!("{:?}", f.result().expect_err("panicked")));
            // The pool and the executor go on.
            assert_eq!(pool.apply_async(square, 3).expect("submit").await.expect("result"), 9);
            assert_eq!(ex.submit(square, 3).expect("submit").await.expect("result"), 9);
        }
    });
}

#[test]
fn a_killed_worker_gives_worker_died_awaited() {
    let (pool, gate) = gated_pool();
    on_every_executor("a killed worker", || {
        let (pool, gate) = (pool.clone(), gate.clone());
        async move {
            let h = pool.apply_async(report_pid_and_sleep, ()).expect("submit");
            // Another thread kills the worker once it runs the task, while
            // this one awaits.
            let killer = std::thread::spawn(move || {
                let pid = gate.get_timeout(GUARD).expect("the task reports its worker");
                let pid = rustix::process::Pid::from_raw(i32::try_from(pid).expect("a pid")).expect("a pid");
                rustix::process::kill_process(pid, rustix::process::Signal::KILL).expect("SIGKILL");
            });
            let e = (&h).await.expect_err("killed");
            killer.join().expect("killer");
            assert!(matches!(e, TaskError::WorkerDied { signal: Some(9), .. }), "{e:?}");
            assert_eq!(format!("{e:?}"), format!("{:?}", h.get().expect_err("killed")));
            // The pool replaced the worker.
            assert_eq!(pool.apply_async(square, 4).expect("submit").await.expect("result"), 16);
        }
    });
    // The executor: a worker that dies fails its task with `WorkerDied`.
    on_every_executor("an executor's dead worker", || async {
        let ex = ProcessPoolExecutor::new(1).expect("executor");
        let f = ex.submit(exit_with, 5).expect("submit");
        let e = (&f).await.expect_err("died");
        assert!(matches!(e, TaskError::WorkerDied { code: Some(5), .. }), "{e:?}");
        assert_eq!(format!("{e:?}"), format!("{:?}", f.result().expect_err("died")));
    });
}

#[test]
fn a_dropped_pending_await_forgets_only_its_waker() {
    let (pool, gate) = gated_pool();
    let ex = Arc::new(
        ProcessPoolExecutor::builder().max_workers(1).initializer(set_gate, gate.clone()).build().expect("ex"),
    );
    on_every_executor("a dropped await", || {
        let (pool, ex, gate) = (pool.clone(), ex.clone(), gate.clone());
        async move {
            let h = pool.apply_async(gated, 0).expect("submit");
            let mut pending: AsyncResultAwait<u64> = (&h).into_future();
            assert!(poll_once(&mut pending).is_pending(), "the task waits for the gate");
            drop(pending);
            gate.put(RELEASE).expect("release");
            assert_eq!((&h).await.expect("the task went on"), 0);

            let f = ex.submit(gated, 0).expect("submit");
            let mut pending: TaskFutureAwait<u64> = f.clone().into_future();
            assert!(poll_once(&mut pending).is_pending(), "the task waits for the gate");
            drop(pending);
            gate.put(RELEASE).expect("release");
            assert_eq!(f.await.expect("the task went on"), 0);
        }
    });
}

#[test]
fn async_forms_are_send_and_unpin() {
    fn send_unpin<T: Send + Unpin>() {}
    send_unpin::<AsyncResultAwait<u64>>();
    send_unpin::<TaskFutureAwait<String>>();
    send_unpin::<Imap<u64, std::ops::Range<u64>>>();
    send_unpin::<shmproc::AsCompleted<'static, u64>>();
    fn stream<S: futures::Stream + Unpin>(_: &S) {}
    let pool = Pool::new(1).expect("pool");
    stream(&pool.imap(square, 0..1).expect("imap").into_stream());
    let futs: Vec<TaskFuture<u64>> = Vec::new();
    stream(&as_completed(&futs).into_stream());
}

// ---------------------------------------------------------------------------
// Streams
// ---------------------------------------------------------------------------

#[test]
fn imap_stream_yields_every_item_in_order() {
    let pool = Arc::new(Pool::new(2).expect("pool"));
    let ex = Arc::new(ProcessPoolExecutor::new(2).expect("executor"));
    // More items than the window (32 chunks), so the stream submits more
    // as results come.
    let want: Vec<u64> = (0..200).map(square).collect();
    on_every_executor("Imap as a Stream", || {
        let (pool, ex, want) = (pool.clone(), ex.clone(), want.clone());
        async move {
            let got: Vec<Result<u64, TaskError>> =
                StreamExt::collect(pool.imap(square, 0..200).expect("imap").into_stream()).await;
            assert_eq!(got.into_iter().collect::<Result<Vec<_>, _>>().expect("all ok"), want);

            let mut got: Vec<u64> =
                StreamExt::collect::<Vec<_>>(pool.imap_unordered(square, 0..200).expect("imap").into_stream())
                    .await
                    .into_iter()
                    .collect::<Result<_, _>>()
                    .expect("all ok");
            got.sort_unstable();
            assert_eq!(got, want);

            let got: Vec<Result<u64, TaskError>> =
                StreamExt::collect(ex.map(square, 0..200, 7).expect("map").into_stream()).await;
            assert_eq!(got.into_iter().collect::<Result<Vec<_>, _>>().expect("all ok"), want);
        }
    });
}

#[test]
fn imap_stream_items_match_the_iterator_failures_included() {
    let pool = Arc::new(Pool::new(2).expect("pool"));
    let blocking: Vec<_> = Iterator::map(pool.imap(panic_on_odd, 0..40).expect("imap"), shown).collect();
    assert!(blocking.iter().filter(|r| r.is_err()).count() == 20, "{blocking:?}");
    on_every_executor("Imap failures as a Stream", || {
        let (pool, blocking) = (pool.clone(), blocking.clone());
        async move {
            let s = pool.imap(panic_on_odd, 0..40).expect("imap").into_stream();
            let streamed: Vec<_> = StreamExt::map(s, shown).collect().await;
            assert_eq!(streamed, blocking);
        }
    });
}

#[test]
fn a_dropped_pending_next_loses_no_item() {
    let (pool, gate) = gated_pool();
    on_every_executor("a dropped next()", || {
        let (pool, gate) = (pool.clone(), gate.clone());
        async move {
            let mut s = pool.imap(gated, 0..5).expect("imap").into_stream();
            {
                let mut next = StreamExt::next(&mut s);
                assert!(poll_once(&mut next).is_pending(), "item 0 waits for the gate");
            }
            gate.put(RELEASE).expect("release");
            let got: Vec<u64> =
                StreamExt::collect::<Vec<_>>(&mut s).await.into_iter().collect::<Result<_, _>>().expect("all ok");
            assert_eq!(got, [0, 1, 2, 3, 4]);
        }
    });
}

#[test]
fn as_completed_stream_yields_each_future_once() {
    let ex = Arc::new(ProcessPoolExecutor::new(2).expect("executor"));
    on_every_executor("AsCompleted as a Stream", || {
        let ex = ex.clone();
        async move {
            let futs: Vec<_> = (0..20).map(|i| ex.submit(square, i).expect("submit")).collect();
            let s = as_completed(&futs).into_stream();
            assert_eq!(futures::Stream::size_hint(&s), (20, Some(20)));
            let done: Vec<&TaskFuture<u64>> = StreamExt::collect(s).await;
            assert_eq!(done.len(), 20);
            for f in &futs {
                assert_eq!(done.iter().filter(|d| std::ptr::eq(**d, f)).count(), 1, "each future once");
            }
            let mut got = Vec::new();
            for f in done {
                got.push(f.await.expect("result"));
            }
            got.sort_unstable();
            assert_eq!(got, (0..20).map(square).collect::<Vec<_>>());
        }
    });
}

#[test]
fn as_completed_stream_keeps_a_completion_across_a_dropped_next() {
    let gate = Queue::<u64>::new(0).expect("gate");
    let ex = Arc::new(
        ProcessPoolExecutor::builder().max_workers(1).initializer(set_gate, gate.clone()).build().expect("ex"),
    );
    on_every_executor("AsCompleted after a dropped next()", || {
        let (ex, gate) = (ex.clone(), gate.clone());
        async move {
            let futs = vec![ex.submit(gated, 0).expect("submit")];
            let mut s = as_completed(&futs).into_stream();
            {
                let mut next = StreamExt::next(&mut s);
                assert!(poll_once(&mut next).is_pending(), "the task waits for the gate");
            }
            gate.put(RELEASE).expect("release");
            let f = StreamExt::next(&mut s).await.expect("the completed future");
            assert_eq!(f.await.expect("result"), 0);
            assert!(StreamExt::next(&mut s).await.is_none());
            assert_eq!(futures::Stream::size_hint(&s), (0, Some(0)));
        }
    });
}
