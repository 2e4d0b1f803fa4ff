//! `ProcessPoolExecutor` against CPython's own tests of
//! `concurrent.futures` (`test_concurrent_futures`): duplicate futures,
//! `FIRST_EXCEPTION` and cancelled futures, `map` with a timeout,
//! `Future.exception`, `terminate_workers`/`kill_workers`, workers started
//! on demand, and the arguments Python refuses. Each test names the CPython
//! test it follows.
#![cfg(all(feature = "pool", feature = "async"))]

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use shmproc::{
    Cancelled, Error, ExceptionTimeoutError, ProcessPoolExecutor, Queue, ReturnWhen, TaskError, TaskTimeoutError,
    TimedOut, as_completed, as_completed_deadline, as_completed_timeout, wait, wait_timeout,
};

/// Every wait that should end does so long before this.
const GUARD: Duration = Duration::from_secs(30);

/// What the test puts into the gate to let one gated task return.
const RELEASE: u64 = 99;

// ---------------------------------------------------------------------------
// Tasks
// ---------------------------------------------------------------------------

fn square(x: u64) -> u64 {
    x * x
}

fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

fn boom(msg: String) -> u64 {
    panic!("{msg}")
}

fn exit_with(code: i32) -> u64 {
    std::process::exit(code)
}

// Workers receive the gate through the initializer; tasks find it here
// (one copy per worker process).
static GATE: OnceLock<Queue<u64>> = OnceLock::new();
static LOG: OnceLock<Queue<u64>> = OnceLock::new();

fn set_queues((gate, log): (Queue<u64>, Queue<u64>)) {
    let _ = GATE.set(gate);
    let _ = LOG.set(log);
}

/// Task: logs `i`, then, if `i` is 0, waits until the test puts
/// `RELEASE` into the gate; returns `i`.
fn gated(i: u64) -> u64 {
    LOG.get().expect("initializer ran").put(i).expect("log");
    if i == 0 {
        let got = GATE.get().expect("initializer ran").get_timeout(GUARD).expect("released");
        assert_eq!(got, RELEASE);
    }
    i
}

/// An executor whose tasks can use `gated`; returns the gate and the log.
fn gated_executor(max_workers: usize) -> (ProcessPoolExecutor, Queue<u64>, Queue<u64>) {
    let gate = Queue::<u64>::new(0).expect("gate");
    let log = Queue::<u64>::new(0).expect("log");
    let ex = ProcessPoolExecutor::builder()
        .max_workers(max_workers)
        .initializer(set_queues, (gate.clone(), log.clone()))
        .build()
        .expect("executor");
    (ex, gate, log)
}

/// Waits (hang guard) until `cond` holds.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + GUARD;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Whether `pid` names no process, not even a zombie (it was reaped).
fn reaped(pid: u32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

// ---------------------------------------------------------------------------
// as_completed and wait: duplicate futures
// ---------------------------------------------------------------------------

// CPython: test_as_completed.AsCompletedTests.test_duplicate_futures (a
// future given twice is yielded once) and test_wait's use of sets.
#[test]
fn duplicate_futures_are_yielded_once() {
    let ex = ProcessPoolExecutor::new(2).expect("executor");
    let a = ex.submit(square, 2).expect("submit");
    let b = ex.submit(square, 3).expect("submit");
    let futs = vec![a.clone(), a.clone(), b.clone(), a.clone(), b];
    let it = as_completed(&futs);
    assert_eq!(it.remaining(), 2);
    let mut got: Vec<u64> = it.map(|f| f.result().expect("result")).collect();
    got.sort_unstable();
    assert_eq!(got, [4, 9]);

    let got: Vec<_> = as_completed_timeout(&futs, GUARD).collect::<Result<_, TimedOut>>().expect("in time");
    assert_eq!(got.len(), 2);
    let got: Vec<_> =
        as_completed_deadline(&futs, Instant::now() + GUARD).collect::<Result<_, TimedOut>>().expect("in time");
    assert_eq!(got.len(), 2);

    let got = futures::executor::block_on(futures::StreamExt::collect::<Vec<_>>(as_completed(&futs).into_stream()));
    assert_eq!(got.len(), 2);

    for when in [ReturnWhen::AllCompleted, ReturnWhen::FirstCompleted, ReturnWhen::FirstException] {
        let r = wait(&futs, when);
        assert_eq!((r.done.len(), r.not_done.len()), (2, 0), "{when:?}");
    }
    // Pending duplicates are listed once among the not done.
    let (ex, gate, _log) = gated_executor(1);
    let held = ex.submit(gated, 0).expect("submit");
    let futs = vec![held.clone(), held.clone()];
    assert!(matches!(wait_timeout(&futs, Duration::ZERO, ReturnWhen::AllCompleted), Err(TimedOut)));
    let mut it = as_completed_timeout(&futs, Duration::ZERO);
    assert!(matches!(it.next(), Some(Err(TimedOut))));
    assert_eq!(it.remaining(), 1);
    gate.put(RELEASE).expect("release");
    let r = wait(&futs, ReturnWhen::AllCompleted);
    assert_eq!((r.done.len(), r.not_done.len()), (1, 0));
}

// ---------------------------------------------------------------------------
// wait(FIRST_EXCEPTION): a cancelled future is not an exception
// ---------------------------------------------------------------------------

// CPython: test_wait.WaitTests.test_first_exception and
// test_first_exception_some_already_complete ("FIRST_EXCEPTION: return
// when any future finishes by raising an exception"; a cancelled future is
// not one, and without an exception it is ALL_COMPLETED).
#[test]
fn first_exception_ignores_cancelled_futures() {
    let (ex, gate, log) = gated_executor(1);
    let held = ex.submit(gated, 0).expect("submit");
    assert_eq!(log.get_timeout(GUARD).expect("started"), 0);
    let cancelled = ex.submit(square, 5).expect("submit");
    assert!(cancelled.cancel());
    let done = ex.submit(square, 1).expect("submit");
    let futs = vec![cancelled.clone(), held.clone()];
    // The held task cannot finish before it is released: a wait that ended
    // now could only have stopped at the cancelled future. (A short bound,
    // for a state that must NOT change.)
    assert!(matches!(wait_timeout(&futs, Duration::from_millis(200), ReturnWhen::FirstException), Err(TimedOut)));
    gate.put(RELEASE).expect("release");
    // Without an exception it waits for all, as ALL_COMPLETED.
    let r = wait_timeout(&futs, GUARD, ReturnWhen::FirstException).expect("hang guard");
    assert_eq!((r.done.len(), r.not_done.len()), (2, 0));
    assert_eq!(done.result().expect("result"), 1);

    // A raised exception ends it at once, with the cancelled and the
    // successful futures among the done and the held one not done.
    let held = ex.submit(gated, 0).expect("submit");
    assert_eq!(log.get_timeout(GUARD).expect("started"), 0);
    let ex2 = ProcessPoolExecutor::new(1).expect("executor");
    let raised = ex2.submit(boom, "first exception".into()).expect("submit");
    let futs = vec![done.clone(), cancelled.clone(), raised.clone(), held.clone()];
    let r = wait_timeout(&futs, GUARD, ReturnWhen::FirstException).expect("hang guard");
    assert_eq!(r.done.len(), 3);
    assert_eq!(r.not_done.len(), 1);
    assert!(r.not_done[0].result_timeout(Duration::ZERO).is_err(), "the held one");
    assert!(matches!(raised.result(), Err(TaskError::Panicked { .. })));
    gate.put(RELEASE).expect("release");
    assert_eq!(held.result_timeout(GUARD).expect("released"), 0);

    // Only cancelled futures: all are done.
    let only = [cancelled.clone(), cancelled];
    let r = wait(&only, ReturnWhen::FirstException);
    assert_eq!((r.done.len(), r.not_done.len()), (1, 0));
}

// ---------------------------------------------------------------------------
// map with a timeout
// ---------------------------------------------------------------------------

// CPython: test_executor.ExecutorTest.test_map_timeout (the results done by
// the deadline, then TimeoutError) and the map docs ("the remaining
// futures are cancelled" when the iterator stops).
#[test]
fn map_timeout_yields_a_last_timeout_and_cancels_the_rest() {
    let (ex, gate, log) = gated_executor(1);
    // A task holds the only worker; the map's items wait behind it, so
    // none can be in by the (short) deadline.
    let holder = ex.submit(gated, 0).expect("submit");
    assert_eq!(log.get_timeout(GUARD).expect("holder started"), 0);
    let mut it = ex.map_timeout(gated, [1, 2], 1, Duration::from_millis(100)).expect("map");
    assert!(matches!(it.next(), Some(Err(TaskTimeoutError::Timeout))));
    assert!(it.next().is_none(), "ends after the timeout");
    assert!(it.next().is_none());
    gate.put(RELEASE).expect("release");
    assert_eq!(holder.result_timeout(GUARD).expect("released"), 0);
    // Items 1 and 2 were cancelled: the next task runs on the same worker
    // after the holder, and nothing was logged before it.
    assert_eq!(ex.submit(gated, 7).expect("submit").result_timeout(GUARD).expect("result"), 7);
    assert_eq!(log.get_timeout(GUARD).expect("logged"), 7);
    assert!(log.is_empty(), "the cancelled items did not run");
    drop(it);

    // The Python pattern: quick items, then one that cannot finish. The
    // quick ones are yielded (in order) if they are in by the deadline,
    // then one Timeout ends the iteration. (How many came in time depends
    // on the machine's speed, so only the shape is asserted.)
    let mut got = Vec::new();
    for r in ex.map_timeout(gated, [1, 2, 0], 1, Duration::from_secs(2)).expect("map") {
        got.push(r.map_err(|e| format!("{e:?}")));
    }
    assert_eq!(got.last(), Some(&Err("Timeout".to_owned())));
    let before: Vec<_> = got[..got.len() - 1].to_vec();
    assert!([1, 2].starts_with(&before.iter().map(|r| *r.as_ref().expect("ok")).collect::<Vec<_>>()), "{got:?}");
    gate.put(RELEASE).expect("release");

    // No limit, and a far deadline: every result, each item's own error.
    let r: Vec<u64> =
        ex.map_timeout(square, 0..10, 3, Duration::MAX).expect("map").collect::<Result<_, _>>().expect("results");
    assert_eq!(r, (0..10).map(|x| x * x).collect::<Vec<_>>());
    let r: Vec<_> = ex.map_deadline(boom, ["a".to_owned()], 1, Instant::now() + GUARD).expect("map").collect();
    assert!(matches!(r[..], [Err(TaskTimeoutError::Panicked { .. })]), "{r:?}");
}

// CPython: test_executor.ExecutorTest.test_map_exception-style argument
// check: `chunksize < 1` is a ValueError ("chunksize must be >= 1.").
#[test]
fn map_refuses_chunksize_zero_and_build_refuses_zero_max_tasks() {
    let ex = ProcessPoolExecutor::new(1).expect("executor");
    let e = ex.map(square, 0..3, 0).expect_err("chunksize 0");
    assert!(matches!(e, Error::InvalidArgument { what } if what.contains("chunksize")), "{e:?}");
    let e = ex.map_timeout(square, 0..3, 0, GUARD).expect_err("chunksize 0");
    assert!(matches!(e, Error::InvalidArgument { .. }), "{e:?}");
    let e = ex.map_deadline(square, 0..3, 0, Instant::now() + GUARD).expect_err("chunksize 0");
    assert!(matches!(e, Error::InvalidArgument { .. }), "{e:?}");
    assert!(ex.worker_pids().is_empty(), "nothing was submitted");
    // CPython: test_process_pool.ProcessPoolExecutorTest.test_max_tasks_per_child
    // and the constructor's "max_tasks_per_child must be >= 1".
    let e = ProcessPoolExecutor::builder().max_tasks_per_child(0).build().expect_err("zero");
    assert!(matches!(e, Error::InvalidArgument { what } if what.contains("max_tasks_per_child")), "{e:?}");
    let e = ProcessPoolExecutor::builder().max_workers(0).build().expect_err("zero workers");
    assert!(matches!(e, Error::InvalidArgument { .. }), "{e:?}");
    let ex = ProcessPoolExecutor::builder().max_workers(1).max_tasks_per_child(1).build().expect("one is fine");
    let squares: Vec<u64> = (0..3).map(|i| ex.submit(square, i).expect("submit").result().expect("result")).collect();
    assert_eq!(squares, [0, 1, 4]);
}

// ---------------------------------------------------------------------------
// Future.exception
// ---------------------------------------------------------------------------

// CPython: test_future.FutureTests.test_exception_with_timeout,
// test_exception_with_success, test_cancelled_future ... exception() raises
// CancelledError, returns None after success, the exception after a
// failure, TimeoutError while pending.
#[test]
fn exception_waits_like_result() {
    let (ex, gate, log) = gated_executor(1);
    let ok = ex.submit(square, 3).expect("submit");
    assert!(ok.exception().expect("not cancelled").is_none());
    assert!(ok.exception_timeout(GUARD).expect("done").is_none());
    assert!(ok.exception_deadline(Instant::now() + GUARD).expect("done").is_none());

    let failed = ex.submit(boom, "exceptional".into()).expect("submit");
    match failed.exception() {
        Ok(Some(TaskError::Panicked { message, .. })) => assert!(message.contains("exceptional")),
        other => panic!("{other:?}"),
    }
    assert!(matches!(failed.exception_timeout(GUARD), Ok(Some(TaskError::Panicked { .. }))));

    let held = ex.submit(gated, 0).expect("submit");
    assert_eq!(log.get_timeout(GUARD).expect("started"), 0);
    assert_eq!(held.exception_timeout(Duration::ZERO).map(|e| e.is_some()), Err(ExceptionTimeoutError::Timeout));
    assert_eq!(held.exception_deadline(Instant::now()).map(|e| e.is_some()), Err(ExceptionTimeoutError::Timeout));
    let queued = ex.submit(square, 4).expect("submit");
    assert!(queued.cancel());
    assert_eq!(queued.exception().map(|e| e.is_some()), Err(Cancelled));
    assert_eq!(queued.exception_timeout(GUARD).map(|e| e.is_some()), Err(ExceptionTimeoutError::Cancelled));
    assert!(matches!(Error::from(Cancelled), Error::Cancelled));
    assert!(matches!(Error::from(ExceptionTimeoutError::Timeout), Error::Timeout));
    gate.put(RELEASE).expect("release");
    assert!(held.exception_timeout(GUARD).expect("released").is_none());
}

// ---------------------------------------------------------------------------
// terminate_workers / kill_workers
// ---------------------------------------------------------------------------

/// The executor's test of both calls: a task that would run for a minute
/// is stopped (its future fails, no hang), a queued one is cancelled, new
/// submissions are refused, and the workers are reaped.
fn force_shutdown(kill: bool) {
    let (ex, _gate, log) = gated_executor(1);
    let running = ex.submit(gated, 0).expect("submit");
    assert_eq!(log.get_timeout(GUARD).expect("started"), 0);
    let queued = ex.submit(sleep_ms, 1).expect("submit");
    // The worker may run its task before the executor's thread lists it.
    wait_until("the worker to be listed", || ex.worker_pids().len() == 1);
    let pids = ex.worker_pids();
    if kill {
        ex.kill_workers();
    } else {
        ex.terminate_workers();
    }
    assert!(matches!(ex.submit(square, 1), Err(Error::PoolClosed)));
    let signal = if kill { 9 } else { 15 };
    match running.result_timeout(GUARD) {
        Err(TaskTimeoutError::WorkerDied { pid, signal: Some(s), .. }) => assert_eq!((pid, s), (pids[0], signal)),
        other => panic!("the running task gave {:?}", other.map_err(|e| e.to_string())),
    }
    assert!(queued.cancelled(), "the queued task was cancelled");
    wait_until("the workers to be reaped", || ex.worker_pids().is_empty() && pids.iter().all(|&p| reaped(p)));
    // Again, or the other one: nothing more to do.
    ex.kill_workers();
    ex.terminate_workers();
    drop(ex);
}

// CPython: test_process_pool.ProcessPoolExecutorTest.test_terminate_workers
// and test_force_shutdown_workers / test_force_shutdown_workers_stops_pool
// (terminate_workers).
#[test]
fn terminate_workers_stops_a_running_task() {
    force_shutdown(false);
}

// CPython: test_process_pool.ProcessPoolExecutorTest.test_kill_workers and
// test_force_shutdown_workers / test_force_shutdown_workers_stops_pool
// (kill_workers).
#[test]
fn kill_workers_stops_a_running_task() {
    force_shutdown(true);
}

// CPython: test_process_pool.ProcessPoolExecutorTest.
// test_force_shutdown_workers_not_started_yet and
// test_force_shutdown_workers_dead_workers: no worker, or a broken
// executor, is no error.
#[test]
fn force_shutdown_without_workers_or_when_broken() {
    let ex = ProcessPoolExecutor::new(1).expect("executor");
    ex.terminate_workers();
    assert!(matches!(ex.submit(square, 1), Err(Error::PoolClosed)));
    assert!(ex.worker_pids().is_empty());
    drop(ex);

    let ex = ProcessPoolExecutor::new(1).expect("executor");
    ex.kill_workers();
    assert!(matches!(ex.submit(square, 1), Err(Error::PoolClosed)));
    drop(ex);

    let ex = ProcessPoolExecutor::new(1).expect("executor");
    assert!(matches!(ex.submit(exit_with, 1).expect("submit").result(), Err(TaskError::WorkerDied { .. })));
    ex.terminate_workers();
    ex.kill_workers();
    assert!(ex.submit(square, 1).is_err());
    wait_until("the dead worker to be reaped", || ex.worker_pids().is_empty());
}

// ---------------------------------------------------------------------------
// Workers on demand
// ---------------------------------------------------------------------------

// CPython: test_process_pool.ProcessPoolExecutorTest.test_idle_process_reuse_one
#[test]
fn sequential_submits_reuse_one_idle_worker() {
    let ex = ProcessPoolExecutor::new(4).expect("executor");
    assert!(ex.worker_pids().is_empty(), "no worker before the first submit");
    assert_eq!(ex.submit(square, 21).expect("submit").result().expect("result"), 441);
    assert_eq!(ex.submit(square, 6).expect("submit").result().expect("result"), 36);
    assert_eq!(ex.submit(square, 3).expect("submit").result().expect("result"), 9);
    assert_eq!(ex.worker_pids().len(), 1);
}

// CPython: test_process_pool.ProcessPoolExecutorTest.test_idle_process_reuse_multiple
#[test]
fn interleaved_submits_start_few_workers() {
    let ex = ProcessPoolExecutor::new(4).expect("executor");
    ex.submit(square, 12).expect("submit").result().expect("result");
    let a = ex.submit(square, 33).expect("submit");
    ex.submit(square, 25).expect("submit").result().expect("result");
    let b = ex.submit(square, 18).expect("submit");
    ex.submit(square, 1).expect("submit").result().expect("result");
    let c = ex.submit(square, 0).expect("submit");
    assert!(ex.worker_pids().len() <= 3, "{:?}", ex.worker_pids());
    for f in [a, b, c] {
        f.result().expect("result");
    }
}

// CPython: test_process_pool.ProcessPoolExecutorTest.test_saturation (many
// blocked tasks start max_workers workers, never more); and the worker
// replacement of max_tasks_per_child keeps the count.
#[test]
fn many_blocked_tasks_start_max_workers() {
    let (ex, gate, log) = gated_executor(3);
    let futs: Vec<_> = (0..15 * 3).map(|_| ex.submit(gated, 0).expect("submit")).collect();
    wait_until("three workers", || ex.worker_pids().len() == 3);
    for _ in 0..3 {
        assert_eq!(log.get_timeout(GUARD).expect("started"), 0);
    }
    assert_eq!(ex.worker_pids().len(), 3, "never more than max_workers");
    for _ in &futs {
        gate.put(RELEASE).expect("release");
    }
    for f in &futs {
        assert_eq!(f.result_timeout(GUARD).expect("released"), 0);
    }
    assert!(ex.worker_pids().len() <= 3);

    let ex = ProcessPoolExecutor::builder().max_workers(2).max_tasks_per_child(2).build().expect("executor");
    let mut seen = std::collections::HashSet::new();
    for i in 0..6 {
        assert_eq!(ex.submit(square, i).expect("submit").result().expect("result"), i * i);
        let pids = ex.worker_pids();
        assert!(pids.len() <= 2, "{pids:?}");
        seen.extend(pids);
    }
    assert!(seen.len() >= 2, "workers were replaced: {seen:?}");
}

// CPython: _adjust_process_count starts a worker while fewer are idle than
// there is work; a task whose results nobody reads any more (a map that
// timed out and was dropped) still occupies its worker while it runs, so
// the next submission starts another worker instead of queueing behind it.
#[test]
fn a_worker_busy_with_an_abandoned_task_is_not_counted_idle() {
    let (ex, gate, log) = gated_executor(2);
    let mut it = ex.map_timeout(gated, [0u64], 1, Duration::from_millis(20)).expect("map");
    assert_eq!(log.get_timeout(GUARD).expect("started"), 0);
    assert!(matches!(it.next(), Some(Err(TaskTimeoutError::Timeout))));
    drop(it);
    // The gated task still runs in the first worker.
    assert_eq!(ex.submit(square, 3).expect("submit").result_timeout(GUARD).expect("a second worker"), 9);
    assert_eq!(ex.worker_pids().len(), 2);
    gate.put(RELEASE).expect("release");
}
