//! A process pool with futures (scenario 9): `submit` and `as_completed`,
//! the same futures read in submission order, `map` with a chunk size,
//! `result_timeout` giving up on a slow task, a task that panics reported as
//! an error while the others succeed, `cancel` of a queued task, and
//! `shutdown` (and the same when the executor is dropped).
//!
//! Python:
//!
//! ```python
//! with ProcessPoolExecutor(max_workers=2) as ex:      # exit: shutdown(wait=True)
//!     futures = [ex.submit(nap, n, ms) for n, ms in jobs]
//!     for f in as_completed(futures): print(f.result())
//!     list(ex.map(square, range(1, 13), chunksize=4))
//!     ex.submit(nap, 7, 0.6).result(timeout=0.1)      # raises TimeoutError
//!     ex.submit(divide, 0).result()                   # raises ZeroDivisionError
//!     queued.cancel()                                  # True: it had not started
//! ```
//!
//! In shmproc `TaskFuture::result` returns a `Result` instead of raising:
//! `Err(TaskTimeoutError::Timeout)` when `result_timeout` gives up (the
//! task goes on), `Err(TaskError::Panicked { .. })` with the panic message
//! when the task panicked (the worker lives on and the executor is not
//! broken), and `Err(TaskError::Cancelled)` for a cancelled future. `shutdown(wait,
//! cancel_futures)` has Python's two flags; dropping the executor is
//! `shutdown(true, false)`, Python's `with` block.
//!
//! Run it with `cargo run --release --example executor`.

use std::error::Error;
use std::time::{Duration, Instant};

use shmproc::{ProcessPoolExecutor, as_completed};

/// Worker processes.
const WORKERS: usize = 2;

/// Sleeps `ms`, then returns `n`.
fn nap((n, ms): (u32, u64)) -> u32 {
    std::thread::sleep(Duration::from_millis(ms));
    n
}

/// The square of `x`, and the pid of the worker that computed it.
fn square(x: u64) -> (u64, u32) {
    (x * x, std::process::id())
}

/// Panics when `x` is 0.
fn divide(x: i64) -> i64 {
    100 / x
}

fn main() -> Result<(), Box<dyn Error>> {
    shmproc::init();
    let ex = ProcessPoolExecutor::new(WORKERS)?;
    println!("an executor of {} workers", ex.max_workers());

    println!("\n-- submit, then as_completed: results as they come --");
    let jobs = [(1, 400), (2, 200), (3, 10), (4, 10)];
    let futures = jobs.iter().map(|&job| ex.submit(nap, job)).collect::<Result<Vec<_>, _>>()?;
    let t0 = Instant::now();
    let mut completed = Vec::new();
    for f in as_completed(&futures) {
        let n = f.result()?;
        println!("as_completed: task {n} done after {} ms", t0.elapsed().as_millis());
        completed.push(n);
    }
    let submitted = futures.iter().map(|f| f.result()).collect::<Result<Vec<u32>, _>>()?;
    println!("as_completed yielded {completed:?} (completion order)");
    println!("the futures in submission order: {submitted:?}");
    let mut sorted = completed.clone();
    sorted.sort_unstable();
    if submitted != [1, 2, 3, 4] || sorted != submitted || completed == submitted {
        return Err("as_completed must yield each future once, in completion order".into());
    }

    println!("\n-- map with chunksize 4: each chunk is one task for one worker --");
    let results = ex.map(square, 1..=12, 4)?.collect::<Result<Vec<_>, _>>()?;
    for (i, chunk) in results.chunks(4).enumerate() {
        let squares: Vec<u64> = chunk.iter().map(|r| r.0).collect();
        let pid = chunk[0].1;
        println!("items {}..={}: {squares:?}, all in worker pid {pid}", 4 * i + 1, 4 * i + 4);
        if chunk.iter().any(|r| r.1 != pid) {
            return Err(format!("chunk {i} was split between workers: {chunk:?}").into());
        }
    }
    if results.iter().map(|r| r.0).ne((1..=12u64).map(|x| x * x)) {
        return Err("map results out of order".into());
    }
    println!("12 results, in order");

    println!("\n-- result_timeout: give up waiting, the task goes on --");
    let slow = ex.submit(nap, (7, 600))?;
    match slow.result_timeout(Duration::from_millis(100)) {
        Err(shmproc::TaskTimeoutError::Timeout) => {
            println!("result_timeout(100 ms) on a 600 ms task -> timed out; done() = {}", slow.done())
        }
        other => return Err(format!("expected a timeout, got {other:?}").into()),
    }
    println!("result_timeout(10 s) -> {} (it kept running)", slow.result_timeout(Duration::from_secs(10))?);

    println!("\n-- a task that panics fails alone --");
    let inputs = [5, 0, 20];
    let futures = inputs.iter().map(|&x| ex.submit(divide, x)).collect::<Result<Vec<_>, _>>()?;
    let mut failures = 0;
    for (x, f) in inputs.iter().zip(&futures) {
        match f.result() {
            Ok(q) => println!("divide({x}) -> {q}"),
            Err(e @ shmproc::TaskError::Panicked { .. }) => {
                failures += 1;
                println!("divide({x}) -> error: {e}");
            }
            Err(e) => return Err(e.into()),
        }
    }
    let after = ex.submit(divide, 4)?.result()?;
    println!("the executor still works: divide(4) -> {after}");
    if failures != 1 || after != 25 {
        return Err("exactly one task should fail".into());
    }

    println!("\n-- cancel a queued task --");
    let busy = [ex.submit(nap, (1, 300))?, ex.submit(nap, (2, 300))?];
    let queued = ex.submit(nap, (3, 10))?;
    println!(
        "two 300 ms tasks for the two workers, then a third: it waits in the queue, running() = {}",
        queued.running()
    );
    println!("cancel() -> {}; cancelled() = {}", queued.cancel(), queued.cancelled());
    match queued.result() {
        Err(e @ shmproc::TaskError::Cancelled) => println!("its result() -> error: {e}"),
        other => return Err(format!("a cancelled task ran: {other:?}").into()),
    }
    let busy = busy.iter().map(|f| f.result()).collect::<Result<Vec<_>, _>>()?;
    println!("the two running tasks finished: {busy:?}");

    println!("\n-- shutdown --");
    let last = (1..=3).map(|n| ex.submit(nap, (n, 50))).collect::<Result<Vec<_>, _>>()?;
    ex.shutdown(true, false)?;
    let done = last.iter().filter(|f| f.done()).count();
    println!("shutdown(wait = true) returned with {done} of 3 submitted tasks done");
    match ex.submit(nap, (4, 0)) {
        Err(e) => println!("submit after shutdown -> {e}"),
        Ok(_) => return Err("a shut-down executor accepted a task".into()),
    }

    let futures = {
        let ex = ProcessPoolExecutor::new(WORKERS)?;
        (1..=3).map(|n| ex.submit(nap, (n, 50))).collect::<Result<Vec<_>, _>>()?
    }; // the executor is dropped here: shutdown(wait = true)
    let done = futures.iter().filter(|f| f.done()).count();
    let results = futures.iter().map(|f| f.result()).collect::<Result<Vec<_>, _>>()?;
    println!("dropping a second executor waited too: {done} of 3 tasks done, results {results:?}");
    if done != 3 || last.iter().any(|f| !f.done()) {
        return Err("shutdown returned before the tasks were done".into());
    }
    Ok(())
}
