//! `ProcessPoolExecutor` (Python's `concurrent.futures`), `TaskFuture`,
//! `as_completed` and `wait`.

use std::collections::HashSet;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
#[cfg(feature = "async")]
use crate::pool::cell::CellAwait;
use crate::pool::cell::{Cell, Watcher};
use crate::pool::engine::{Engine, Force};
use crate::pool::error::{Cancelled, ExceptionTimeoutError, TaskError, TaskTimeoutError};
use crate::pool::iter::{Imap, task_fns};
use crate::pool::pool::Options;
use crate::pool::wire::{Failure, TaskWriter};
use crate::process::start::StartMethod;
use crate::process::task::TaskFn;
use crate::sync::error::TimedOut;
use crate::sync::guard::deadline_after;
use crate::sys::signal::InterruptibleWait;

/// Options for a new [`ProcessPoolExecutor`].
///
/// # Examples
///
/// ```
/// use shmproc::{ProcessPoolExecutor, StartMethod};
///
/// fn square(x: u64) -> u64 { x * x }
///
/// let ex = ProcessPoolExecutor::builder().max_workers(2).start_method(StartMethod::Spawn).build()?;
/// assert_eq!(ex.submit(square, 5)?.result()?, 25);
/// # Ok::<(), shmproc::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ExecutorBuilder {
    opts: Options,
    /// `max_tasks_per_child(0)` was asked for (refused by `build`).
    zero_max_tasks: bool,
}

impl ExecutorBuilder {
    /// The most worker processes (default: [`cpu_count()`](crate::cpu_count)).
    /// They start on demand: a submission starts one when no worker is
    /// idle and fewer than `n` run (Python 3.9+; under the fork start
    /// method Python starts them all at once, shmproc on demand too).
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = shmproc::ProcessPoolExecutor::builder().max_workers(3).build()?;
    /// assert_eq!(ex.max_workers(), 3);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn max_workers(mut self, n: usize) -> Self {
        self.opts.processes = Some(n);
        self
    }

    /// How workers start (Python: `mp_context`); see
    /// [`PoolBuilder::start_method`](crate::PoolBuilder::start_method).
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = shmproc::ProcessPoolExecutor::builder().start_method(shmproc::StartMethod::ForkServer).build()?;
    /// # drop(ex);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn start_method(mut self, method: StartMethod) -> Self {
        self.opts.method = Some(method);
        self
    }

    /// Each worker calls `f(arg)` when it starts; if it panics the
    /// executor is broken ([`Error::BrokenPool`]), as in Python. `f` is
    /// any [`TaskFn`](crate::TaskFn), captures included, as for
    /// [`PoolBuilder::initializer`](crate::PoolBuilder::initializer).
    ///
    /// # Examples
    ///
    /// ```
    /// fn hello(who: String) {
    ///     let _ = who;
    /// }
    /// let ex = shmproc::ProcessPoolExecutor::builder().max_workers(1).initializer(hello, "w".to_owned()).build()?;
    /// # drop(ex);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn initializer<A>(mut self, f: impl TaskFn<A, ()>, arg: A) -> Self
    where
        A: Serialize + DeserializeOwned + Clone + Send + 'static,
    {
        self.opts.initializer(f, arg);
        self
    }

    /// Each worker exits after this many tasks and is replaced (default:
    /// never). `n` must be at least 1: [`build`](Self::build) refuses 0
    /// (Python: `ValueError`).
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = shmproc::ProcessPoolExecutor::builder().max_workers(1).max_tasks_per_child(10).build()?;
    /// # drop(ex);
    /// assert!(matches!(
    ///     shmproc::ProcessPoolExecutor::builder().max_tasks_per_child(0).build(),
    ///     Err(shmproc::Error::InvalidArgument { .. })
    /// ));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    #[doc(alias = "maxtasksperchild")]
    pub fn max_tasks_per_child(mut self, n: u64) -> Self {
        self.opts.max_tasks = n;
        self.zero_max_tasks = n == 0;
        self
    }

    /// A task running longer than `limit` fails with
    /// [`TaskError::TaskTimedOut`]; its worker is killed and replaced (the
    /// executor is not broken by it). (Not in Python.)
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = shmproc::ProcessPoolExecutor::builder().task_timeout(std::time::Duration::from_secs(60)).build()?;
    /// # drop(ex);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn task_timeout(mut self, limit: Duration) -> Self {
        self.opts.task_timeout = Some(limit);
        self
    }

    /// Makes the executor; its workers start with the first submissions
    /// (see [`max_workers`](Self::max_workers)).
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = shmproc::ProcessPoolExecutor::builder().max_workers(1).build()?;
    /// ex.shutdown(true, false)?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for `max_workers(0)` or
    /// `max_tasks_per_child(0)`; the others as for
    /// [`PoolBuilder::build`](crate::PoolBuilder::build).
    pub fn build(self) -> Result<ProcessPoolExecutor> {
        if self.zero_max_tasks {
            return Err(Error::InvalidArgument { what: "max_tasks_per_child must be >= 1" });
        }
        Ok(ProcessPoolExecutor { engine: self.opts.start(true, "executor")?, detached: AtomicBool::new(false) })
    }
}

/// A pool of worker processes with futures (Python:
/// `concurrent.futures.ProcessPoolExecutor`).
///
/// Tasks are any [`TaskFn`](crate::TaskFn) (a fn item or pointer, a closure
/// that captures nothing, a [`task!`](crate::task!)), as for
/// [`Pool`](crate::Pool). As in
/// Python, a worker that dies abruptly (killed, crashed, exited) breaks
/// the executor: the task it ran fails with [`TaskError::WorkerDied`], every
/// other pending future with [`TaskError::BrokenPool`], and new submissions
/// are refused. A task that panics fails alone. Cancelling a running task,
/// or exceeding the [`task_timeout`](ExecutorBuilder::task_timeout), kills
/// and replaces its worker without breaking the executor.
///
/// Dropping the executor is `shutdown(true, false)` (Python's `with`
/// block), unless `shutdown(false, ..)` was called.
///
/// # Examples
///
/// ```
/// use shmproc::{ProcessPoolExecutor, as_completed};
///
/// fn square(x: u64) -> u64 { x * x }
///
/// let ex = ProcessPoolExecutor::new(2)?;
/// let futures: Vec<_> = (1..=3).map(|i| ex.submit(square, i)).collect::<Result<_, _>>()?;
/// let mut total = 0;
/// for f in as_completed(&futures) {
///     total += f.result()?;
/// }
/// assert_eq!(total, 14);
/// let squares: Vec<u64> = ex.map(square, 1..=3, 1)?.collect::<Result<_, _>>()?;
/// assert_eq!(squares, [1, 4, 9]);
/// ex.shutdown(true, false)?;
/// # Ok::<(), shmproc::Error>(())
/// ```
#[derive(Debug)]
#[must_use = "dropping a ProcessPoolExecutor shuts it down, waiting for its tasks"]
pub struct ProcessPoolExecutor {
    engine: Engine,
    detached: AtomicBool,
}

impl ProcessPoolExecutor {
    /// An executor of `max_workers` processes with the default start method.
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = shmproc::ProcessPoolExecutor::new(2)?;
    /// assert_eq!(ex.max_workers(), 2);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`ExecutorBuilder::build`].
    pub fn new(max_workers: usize) -> Result<ProcessPoolExecutor> {
        ProcessPoolExecutor::builder().max_workers(max_workers).build()
    }

    /// A builder for the other options.
    ///
    /// # Examples
    ///
    /// ```
    /// let ex = shmproc::ProcessPoolExecutor::builder().max_workers(1).build()?;
    /// # drop(ex);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn builder() -> ExecutorBuilder {
        ExecutorBuilder { opts: Options::new(), zero_max_tasks: false }
    }

    /// The most worker processes (they start on demand:
    /// [`worker_pids`](Self::worker_pids) lists those running).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shmproc::ProcessPoolExecutor::new(1)?.max_workers(), 1);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn max_workers(&self) -> usize {
        self.engine.shared().processes()
    }

    /// The pids of the worker processes started and not yet reaped
    /// (Python: the keys of the executor's private `_processes`). Workers
    /// start on demand, so a new executor has none; a worker that exits
    /// (after [`max_tasks_per_child`](ExecutorBuilder::max_tasks_per_child)
    /// tasks, or killed) leaves the list once reaped.
    ///
    /// # Examples
    ///
    /// ```
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    /// let ex = shmproc::ProcessPoolExecutor::new(4)?;
    /// assert!(ex.worker_pids().is_empty());
    /// for i in 0..3 {
    ///     ex.submit(square, i)?.result()?;
    /// }
    /// assert_eq!(ex.worker_pids().len(), 1); // an idle worker is reused
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn worker_pids(&self) -> Vec<u32> {
        self.engine.shared().worker_pids()
    }

    /// Schedules `f(arg)`; the future gives its result.
    ///
    /// # Examples
    ///
    /// ```
    /// fn add((a, b): (u32, u32)) -> u32 {
    ///     a + b
    /// }
    /// let ex = shmproc::ProcessPoolExecutor::new(1)?;
    /// let fut = ex.submit(add, (2, 40))?;
    /// assert_eq!(fut.result()?, 42);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Codec`] if `arg` cannot be encoded (nothing was
    /// submitted); [`Error::PoolClosed`] after [`shutdown`](Self::shutdown),
    /// [`terminate_workers`](Self::terminate_workers) or
    /// [`kill_workers`](Self::kill_workers);
    /// [`Error::BrokenPool`] once a worker died abruptly.
    pub fn submit<A, R>(&self, f: impl TaskFn<A, R>, arg: A) -> Result<TaskFuture<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        let sh = self.engine.shared();
        let fns = task_fns(&f)?;
        let id = sh.next_id();
        let mut w = TaskWriter::new(id, &fns);
        w.push(&arg)?;
        let cell = Arc::new(Cell::new(id, Arc::downgrade(sh)));
        sh.submit(id, w.finish(), cell.clone(), 0)?;
        Ok(TaskFuture { cell, _r: PhantomData })
    }

    /// Schedules `f` over every item now, in chunks of `chunksize` items
    /// (one task each), and returns an iterator over the results in order
    /// (Python: `Executor.map`, which also reads the whole input at once).
    /// Dropping the iterator cancels the chunks not started.
    ///
    /// # Examples
    ///
    /// ```
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    /// let ex = shmproc::ProcessPoolExecutor::new(2)?;
    /// let r: Vec<u64> = ex.map(square, 0..10, 3)?.collect::<Result<_, _>>()?;
    /// assert_eq!(r, [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `chunksize` is 0 (Python:
    /// `ValueError`); [`Error::Codec`] if an item cannot be encoded and
    /// [`Error::InputPanicked`] if `items` panics (what was submitted is
    /// cancelled, as Python's `map` raises the iterable's exception); as
    /// for [`submit`](Self::submit). Each item's own error comes from the
    /// iterator.
    pub fn map<A, R, I>(&self, f: impl TaskFn<A, R>, items: I, chunksize: usize) -> Result<Imap<R, I::IntoIter>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A>,
    {
        if chunksize == 0 {
            return Err(Error::InvalidArgument { what: "chunksize must be >= 1" });
        }
        let _w = InterruptibleWait::new();
        let sh = self.engine.shared();
        sh.check_running()?;
        let mut it = Imap::new(sh.clone(), task_fns(&f)?, items.into_iter(), chunksize, u64::MAX, false);
        it.fill(true)?;
        Ok(it)
    }

    /// As [`map`](Self::map), with every result due within `timeout` of
    /// this call (`Duration::MAX`: no limit; Python: `map(fn, items,
    /// timeout=t)`). Results that are in by the deadline come in order as
    /// `Ok` (or the item's own error); the first one still missing then
    /// comes as `Err(`[`TaskTimeoutError::Timeout`]`)`, the iterator ends,
    /// and the chunks not started are cancelled (those running finish;
    /// their results are dropped), as Python does when `__next__` raises
    /// `TimeoutError`.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmproc::TaskTimeoutError;
    /// use std::time::Duration;
    /// fn sleep_ms(ms: u64) -> u64 {
    ///     std::thread::sleep(Duration::from_millis(ms));
    ///     ms
    /// }
    /// let ex = shmproc::ProcessPoolExecutor::new(1)?;
    /// let mut it = ex.map_timeout(sleep_ms, [60_000, 1], 1, Duration::from_millis(10))?;
    /// assert!(matches!(it.next(), Some(Err(TaskTimeoutError::Timeout))));
    /// assert!(it.next().is_none());
    /// # ex.kill_workers();
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`map`](Self::map).
    #[doc(alias = "map")]
    pub fn map_timeout<A, R, I>(
        &self,
        f: impl TaskFn<A, R>,
        items: I,
        chunksize: usize,
        timeout: Duration,
    ) -> Result<MapUntil<R, I::IntoIter>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A>,
    {
        // The deadline counts from the call, before the items are sent.
        let deadline = deadline_after(timeout);
        Ok(MapUntil { inner: Some(self.map(f, items, chunksize)?), deadline })
    }

    /// As [`map_timeout`](Self::map_timeout), with every result due by
    /// the instant `deadline`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    /// let ex = shmproc::ProcessPoolExecutor::new(2)?;
    /// let deadline = Instant::now() + Duration::from_secs(30);
    /// let r: Vec<u64> = ex.map_deadline(square, 1..=3, 1, deadline)?.collect::<Result<_, _>>()?;
    /// assert_eq!(r, [1, 4, 9]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`map`](Self::map).
    pub fn map_deadline<A, R, I>(
        &self,
        f: impl TaskFn<A, R>,
        items: I,
        chunksize: usize,
        deadline: Instant,
    ) -> Result<MapUntil<R, I::IntoIter>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A>,
    {
        Ok(MapUntil { inner: Some(self.map(f, items, chunksize)?), deadline: Some(deadline) })
    }

    /// Sends SIGTERM to every worker and shuts the executor down without
    /// waiting (Python 3.14: `terminate_workers()`): no new task is
    /// accepted ([`Error::PoolClosed`]), the futures not started are
    /// cancelled, and each running one fails with
    /// [`TaskError::WorkerDied`] naming the signal. The executor's thread
    /// reaps the workers in the background ([`worker_pids`](Self::worker_pids)
    /// empties); dropping the executor waits for that. Without workers
    /// (none started yet, or the executor is finished or broken) it does
    /// nothing more. A task that catches SIGTERM keeps its worker alive
    /// until it exits: use [`kill_workers`](Self::kill_workers) then.
    ///
    /// # Examples
    ///
    /// ```
    /// fn sleep_ms(ms: u64) -> u64 {
    ///     std::thread::sleep(std::time::Duration::from_millis(ms));
    ///     ms
    /// }
    /// let ex = shmproc::ProcessPoolExecutor::new(1)?;
    /// let f = ex.submit(sleep_ms, 60_000)?;
    /// ex.terminate_workers();
    /// assert!(f.result().is_err()); // cancelled, or its worker died of SIGTERM
    /// assert!(matches!(ex.submit(sleep_ms, 1), Err(shmproc::Error::PoolClosed)));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn terminate_workers(&self) {
        self.engine.shared().force_stop(Force::Terminate);
    }

    /// As [`terminate_workers`](Self::terminate_workers) with SIGKILL
    /// (Python 3.14: `kill_workers()`), which no task can catch; after a
    /// `terminate_workers` it kills the workers still alive.
    ///
    /// # Examples
    ///
    /// ```
    /// fn sleep_ms(ms: u64) -> u64 {
    ///     std::thread::sleep(std::time::Duration::from_millis(ms));
    ///     ms
    /// }
    /// let ex = shmproc::ProcessPoolExecutor::new(1)?;
    /// let f = ex.submit(sleep_ms, 60_000)?;
    /// ex.kill_workers();
    /// assert!(f.result().is_err());
    /// assert!(matches!(ex.submit(sleep_ms, 1), Err(shmproc::Error::PoolClosed)));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn kill_workers(&self) {
        self.engine.shared().force_stop(Force::Kill);
    }

    /// Stops accepting tasks (Python: `shutdown(wait, cancel_futures=...)`).
    /// With `cancel_futures`, futures not yet running are cancelled. With
    /// `wait`, returns once every task is done and every worker exited;
    /// without, the pool finishes in the background (and dropping the
    /// executor no longer waits).
    ///
    /// # Examples
    ///
    /// ```
    /// fn sleep_ms(ms: u64) -> u64 {
    ///     std::thread::sleep(std::time::Duration::from_millis(ms));
    ///     ms
    /// }
    /// let ex = shmproc::ProcessPoolExecutor::new(1)?;
    /// let first = ex.submit(sleep_ms, 300)?;
    /// while !first.running() && !first.done() {
    ///     std::thread::sleep(std::time::Duration::from_millis(1));
    /// }
    /// let queued = ex.submit(sleep_ms, 100)?;
    /// ex.shutdown(true, true)?; // cancels what did not start, waits for the rest
    /// assert_eq!(first.result()?, 300);
    /// assert!(queued.cancelled() || queued.result().is_ok());
    /// assert!(ex.submit(sleep_ms, 1).is_err());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Interrupted`] on Ctrl-C while waiting.
    pub fn shutdown(&self, wait: bool, cancel_futures: bool) -> Result<()> {
        self.engine.close();
        if cancel_futures {
            self.engine.shared().cancel_pending();
        }
        if wait {
            self.engine.join().map_err(Error::from)
        } else {
            self.detached.store(true, Ordering::Relaxed);
            self.engine.detach();
            Ok(())
        }
    }
}

impl Drop for ProcessPoolExecutor {
    fn drop(&mut self) {
        if !self.detached.load(Ordering::Relaxed) {
            let _ = self.shutdown(true, false);
        }
    }
}

/// The pending result of [`ProcessPoolExecutor::submit`] (Python:
/// `concurrent.futures.Future`). A cheap `Clone` handle.
///
/// Dropping it does not cancel the task (use [`cancel`](TaskFuture::cancel)):
/// the task runs to its end and its done callbacks still run; only the
/// result is no longer reachable.
///
/// # Examples
///
/// ```
/// fn square(x: u64) -> u64 {
///     x * x
/// }
/// let ex = shmproc::ProcessPoolExecutor::new(1)?;
/// let fut = ex.submit(square, 12)?;
/// assert_eq!(fut.result()?, 144);
/// assert!(fut.done());
/// assert!(!fut.cancelled());
/// # Ok::<(), shmproc::Error>(())
/// ```
#[doc(alias = "Future")]
pub struct TaskFuture<R> {
    cell: Arc<Cell>,
    _r: PhantomData<fn() -> R>,
}

impl<R> Clone for TaskFuture<R> {
    fn clone(&self) -> Self {
        TaskFuture { cell: self.cell.clone(), _r: PhantomData }
    }
}

impl<R> std::fmt::Debug for TaskFuture<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskFuture").field("done", &self.done()).finish()
    }
}

impl<R: DeserializeOwned> TaskFuture<R> {
    /// Waits for the result (it may be asked for again).
    ///
    /// # Examples
    ///
    /// ```
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    /// let ex = shmproc::ProcessPoolExecutor::new(1)?;
    /// assert_eq!(ex.submit(square, 3)?.result()?, 9);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`AsyncResult::get`](crate::AsyncResult::get); also
    /// [`TaskError::Cancelled`] after [`cancel`](TaskFuture::cancel) and
    /// [`TaskError::BrokenPool`] when another worker died.
    pub fn result(&self) -> Result<R, TaskError> {
        self.cell.wait(None);
        self.cell.value()
    }

    /// As [`result`](TaskFuture::result), waiting at most `timeout`
    /// (`Duration::MAX`: no limit): [`TaskTimeoutError::Timeout`] if the
    /// task is still pending or running then (it goes on). Python:
    /// `result(timeout)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmproc::TaskTimeoutError;
    /// use std::time::Duration;
    /// fn sleep_ms(ms: u64) -> u64 {
    ///     std::thread::sleep(Duration::from_millis(ms));
    ///     ms
    /// }
    /// let ex = shmproc::ProcessPoolExecutor::new(1)?;
    /// let fut = ex.submit(sleep_ms, 300)?;
    /// assert!(matches!(fut.result_timeout(Duration::ZERO), Err(TaskTimeoutError::Timeout)));
    /// assert_eq!(fut.result_timeout(Duration::from_secs(30))?, 300);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`TaskTimeoutError::Timeout`]; the others as for
    /// [`result`](TaskFuture::result).
    pub fn result_timeout(&self, timeout: Duration) -> Result<R, TaskTimeoutError> {
        self.cell.value_until(deadline_after(timeout))
    }

    /// As [`result_timeout`](TaskFuture::result_timeout), waiting until the
    /// instant `deadline`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    /// let ex = shmproc::ProcessPoolExecutor::new(1)?;
    /// let fut = ex.submit(square, 4)?;
    /// assert_eq!(fut.result_deadline(Instant::now() + Duration::from_secs(30))?, 16);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`result_timeout`](TaskFuture::result_timeout).
    pub fn result_deadline(&self, deadline: Instant) -> Result<R, TaskTimeoutError> {
        self.cell.value_until(Some(deadline))
    }
}

impl<R> TaskFuture<R> {
    /// Waits until the task is done, then gives how it failed: `Ok(None)`
    /// if it returned a value, `Ok(Some(error))` if it failed (panicked,
    /// lost its worker, ...; the error [`result`](TaskFuture::result)
    /// gives), [`Cancelled`] if it was cancelled (Python:
    /// `exception()`, which raises `CancelledError` then). The value
    /// itself is not decoded: a result that cannot be decoded here shows
    /// in `result()` only.
    ///
    /// # Examples
    ///
    /// ```
    /// fn half(x: u64) -> u64 {
    ///     assert!(x % 2 == 0, "odd");
    ///     x / 2
    /// }
    /// let ex = shmproc::ProcessPoolExecutor::new(1)?;
    /// assert!(ex.submit(half, 4)?.exception()?.is_none());
    /// let failed = ex.submit(half, 3)?.exception()?;
    /// assert!(matches!(failed, Some(shmproc::TaskError::Panicked { .. })));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Cancelled`] if the future was cancelled
    /// ([`cancel`](TaskFuture::cancel), `shutdown` with `cancel_futures`,
    /// the executor terminated or dropped before the task ran).
    pub fn exception(&self) -> Result<Option<TaskError>, Cancelled> {
        self.cell.wait(None);
        self.failure()
    }

    /// As [`exception`](TaskFuture::exception), waiting at most `timeout`
    /// (`Duration::MAX`: no limit): [`ExceptionTimeoutError::Timeout`] if
    /// the task is still pending or running then (it goes on). Python:
    /// `exception(timeout)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmproc::ExceptionTimeoutError;
    /// use std::time::Duration;
    /// fn sleep_ms(ms: u64) -> u64 {
    ///     std::thread::sleep(Duration::from_millis(ms));
    ///     ms
    /// }
    /// let ex = shmproc::ProcessPoolExecutor::new(1)?;
    /// let fut = ex.submit(sleep_ms, 300)?;
    /// assert!(matches!(fut.exception_timeout(Duration::ZERO), Err(ExceptionTimeoutError::Timeout)));
    /// assert!(fut.exception_timeout(Duration::from_secs(30))?.is_none());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`ExceptionTimeoutError::Timeout`], or
    /// [`ExceptionTimeoutError::Cancelled`] as for
    /// [`exception`](TaskFuture::exception).
    #[doc(alias = "exception")]
    pub fn exception_timeout(&self, timeout: Duration) -> Result<Option<TaskError>, ExceptionTimeoutError> {
        self.exception_until(deadline_after(timeout))
    }

    /// As [`exception_timeout`](TaskFuture::exception_timeout), waiting
    /// until the instant `deadline`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    /// let ex = shmproc::ProcessPoolExecutor::new(1)?;
    /// let fut = ex.submit(square, 4)?;
    /// assert!(fut.exception_deadline(Instant::now() + Duration::from_secs(30))?.is_none());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`exception_timeout`](TaskFuture::exception_timeout).
    pub fn exception_deadline(&self, deadline: Instant) -> Result<Option<TaskError>, ExceptionTimeoutError> {
        self.exception_until(Some(deadline))
    }

    fn exception_until(&self, deadline: Option<Instant>) -> Result<Option<TaskError>, ExceptionTimeoutError> {
        if !self.cell.wait(deadline) {
            return Err(ExceptionTimeoutError::Timeout);
        }
        Ok(self.failure()?)
    }

    /// How the finished task failed, if it did (the cell is done).
    fn failure(&self) -> Result<Option<TaskError>, Cancelled> {
        self.cell.with_outcome(|o| match o {
            Some(Err(Failure::Cancelled)) => Err(Cancelled),
            Some(Err(f)) => Ok(Some(TaskError::from_failure(f))),
            _ => Ok(None),
        })
    }
}

impl<R> TaskFuture<R> {
    /// Whether the task finished, failed or was cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    /// let ex = shmproc::ProcessPoolExecutor::new(1)?;
    /// let fut = ex.submit(square, 3)?;
    /// fut.result()?;
    /// assert!(fut.done());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn done(&self) -> bool {
        self.cell.is_done()
    }

    /// Whether a worker is running the task now.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// fn sleep_ms(ms: u64) {
    ///     std::thread::sleep(Duration::from_millis(ms))
    /// }
    /// let ex = shmproc::ProcessPoolExecutor::new(1)?;
    /// let fut = ex.submit(sleep_ms, 500)?;
    /// let deadline = Instant::now() + Duration::from_secs(30);
    /// while !fut.running() && !fut.done() && Instant::now() < deadline {
    ///     std::thread::sleep(Duration::from_millis(1));
    /// }
    /// fut.result()?;
    /// assert!(!fut.running());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn running(&self) -> bool {
        !self.cell.is_done() && self.cell.engine().is_some_and(|e| e.slot_of(self.cell.id()).is_some())
    }

    /// Whether the task was cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    /// let ex = shmproc::ProcessPoolExecutor::new(1)?;
    /// assert!(!ex.submit(square, 3)?.cancelled());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn cancelled(&self) -> bool {
        self.cell.is_cancelled()
    }

    /// Cancels the task unless it is done: a queued task will not run; a
    /// running one has its worker killed (and replaced; Python cannot
    /// cancel a running task). Returns whether the future is now
    /// cancelled (`false` if it was done).
    ///
    /// # Examples
    ///
    /// ```
    /// fn sleep_ms(ms: u64) {
    ///     std::thread::sleep(std::time::Duration::from_millis(ms))
    /// }
    /// let ex = shmproc::ProcessPoolExecutor::new(1)?;
    /// let busy = ex.submit(sleep_ms, 60_000)?;
    /// let queued = ex.submit(sleep_ms, 1)?;
    /// assert!(queued.cancel());
    /// assert!(busy.cancel()); // its worker is killed and replaced
    /// assert!(matches!(busy.result(), Err(shmproc::TaskError::Cancelled)));
    /// assert_eq!(ex.submit(sleep_ms, 1)?.result()?, ());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn cancel(&self) -> bool {
        if self.cell.is_cancelled() {
            return true;
        }
        if self.cell.is_done() {
            return false;
        }
        match self.cell.engine() {
            Some(e) => e.cancel(self.cell.id()) || self.cell.is_cancelled(),
            None => self.cell.complete(Err(Failure::Cancelled)),
        }
    }

    /// Calls `cb(&future)` when the future is done: on the executor's
    /// supervisor thread, or at once on this thread if it is done already.
    /// A panic in `cb` is printed and otherwise ignored (as Python logs it).
    /// Do not wait on the executor from `cb`: it may run on the thread that
    /// delivers results.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    /// let ex = shmproc::ProcessPoolExecutor::new(1)?;
    /// let (tx, rx) = mpsc::channel();
    /// ex.submit(square, 4)?.add_done_callback(move |f| tx.send(f.result().ok()).unwrap());
    /// assert_eq!(rx.recv().unwrap(), Some(16));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn add_done_callback(&self, cb: impl FnOnce(&TaskFuture<R>) + Send + 'static)
    where
        R: 'static,
    {
        let me = self.clone();
        self.cell.on_done(Box::new(move || cb(&me)));
    }
}

/// `fut.await` gives what [`result`](TaskFuture::result) gives, without
/// blocking the thread: the future is woken by the executor's supervisor
/// thread when the task completes.
///
/// # Examples
///
/// ```
/// fn square(x: u64) -> u64 {
///     x * x
/// }
/// let ex = shmproc::ProcessPoolExecutor::new(1)?;
/// let fut = ex.submit(square, 12)?;
/// assert_eq!(futures::executor::block_on(async { fut.await })?, 144);
/// # Ok::<(), shmproc::Error>(())
/// ```
#[cfg(feature = "async")]
impl<R: DeserializeOwned> std::future::IntoFuture for TaskFuture<R> {
    type Output = Result<R, TaskError>;
    type IntoFuture = TaskFutureAwait<R>;

    fn into_future(self) -> TaskFutureAwait<R> {
        TaskFutureAwait { inner: CellAwait::new(self.cell), _r: PhantomData }
    }
}

/// `(&fut).await` gives what [`result`](TaskFuture::result) gives and
/// keeps the handle, so the result may be awaited (or asked for) again.
///
/// # Examples
///
/// ```
/// fn square(x: u64) -> u64 {
///     x * x
/// }
/// let ex = shmproc::ProcessPoolExecutor::new(1)?;
/// let fut = ex.submit(square, 5)?;
/// futures::executor::block_on(async {
///     assert_eq!((&fut).await?, 25);
///     assert_eq!((&fut).await?, 25);
///     Ok::<(), shmproc::TaskError>(())
/// })?;
/// assert!(fut.done());
/// # Ok::<(), shmproc::Error>(())
/// ```
#[cfg(feature = "async")]
impl<R: DeserializeOwned> std::future::IntoFuture for &TaskFuture<R> {
    type Output = Result<R, TaskError>;
    type IntoFuture = TaskFutureAwait<R>;

    fn into_future(self) -> TaskFutureAwait<R> {
        self.clone().into_future()
    }
}

/// The awaiting of a [`TaskFuture`]'s result: what `fut.await` and
/// `(&fut).await` run (through [`IntoFuture`](std::future::IntoFuture)).
/// Its output is [`result`](TaskFuture::result)'s, `Result<R, TaskError>`;
/// it is ready once the task is done, and its poll never blocks the
/// thread (the executor's supervisor thread wakes it). It is `Send` and
/// `Unpin`.
///
/// A SIGINT while only futures are pending (no thread blocked in a pool
/// call) ends the program as it would without pools.
///
/// # Cancellation safety
///
/// Dropping it while pending only forgets its waker. The task goes on, as
/// when a [`TaskFuture`] is dropped (use [`TaskFuture::cancel`] to stop
/// it), and its result may be awaited again through another handle.
///
/// # Examples
///
/// ```
/// use std::future::IntoFuture;
/// fn square(x: u64) -> u64 {
///     x * x
/// }
/// let ex = shmproc::ProcessPoolExecutor::new(1)?;
/// let fut = ex.submit(square, 3)?;
/// let waiting: shmproc::TaskFutureAwait<u64> = (&fut).into_future();
/// assert_eq!(futures::executor::block_on(waiting)?, 9);
/// # Ok::<(), shmproc::Error>(())
/// ```
#[cfg(feature = "async")]
#[doc(alias = "result_async")]
#[must_use = "futures do nothing unless awaited"]
pub struct TaskFutureAwait<R> {
    inner: CellAwait,
    _r: PhantomData<fn() -> R>,
}

#[cfg(feature = "async")]
impl<R> std::fmt::Debug for TaskFutureAwait<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskFutureAwait").finish_non_exhaustive()
    }
}

#[cfg(feature = "async")]
impl<R: DeserializeOwned> std::future::Future for TaskFutureAwait<R> {
    type Output = Result<R, TaskError>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        self.get_mut().inner.poll_value(cx)
    }
}

/// An iterator over futures in the order they complete; see
/// [`as_completed`].
///
/// # Examples
///
/// ```
/// fn square(x: u64) -> u64 {
///     x * x
/// }
/// let ex = shmproc::ProcessPoolExecutor::new(2)?;
/// let futs: Vec<_> = (1..=3).map(|i| ex.submit(square, i)).collect::<Result<_, _>>()?;
/// let it: shmproc::AsCompleted<'_, u64> = shmproc::as_completed(&futs);
/// assert_eq!(it.map(|f| f.result()).sum::<Result<u64, _>>()?, 14);
/// # Ok::<(), shmproc::Error>(())
/// ```
#[derive(Debug)]
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub struct AsCompleted<'a, R> {
    futures: &'a [TaskFuture<R>],
    watcher: Arc<Watcher>,
    left: usize,
}

/// The indices of the distinct futures of `futures` (the first of each
/// set of clones: clones are one task), in order (Python: `set(fs)`).
fn distinct<R>(futures: &[TaskFuture<R>]) -> Vec<usize> {
    let mut seen = HashSet::with_capacity(futures.len());
    (0..futures.len()).filter(|&i| seen.insert(Arc::as_ptr(&futures[i].cell))).collect()
}

impl<'a, R> AsCompleted<'a, R> {
    fn new(futures: &'a [TaskFuture<R>]) -> Self {
        let watcher = Arc::new(Watcher::default());
        let distinct = distinct(futures);
        for &i in &distinct {
            futures[i].cell.watch(&watcher, i);
        }
        AsCompleted { futures, watcher, left: distinct.len() }
    }

    /// How many distinct futures have not been yielded.
    ///
    /// # Examples
    ///
    /// ```
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    /// let ex = shmproc::ProcessPoolExecutor::new(1)?;
    /// let f = ex.submit(square, 2)?;
    /// let futs = vec![f.clone(), f]; // one task
    /// let mut it = shmproc::as_completed(&futs);
    /// assert_eq!(it.remaining(), 1);
    /// it.next();
    /// assert_eq!(it.remaining(), 0);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn remaining(&self) -> usize {
        self.left
    }

    /// The next completed future, waiting until `deadline`: `None` when
    /// every future was yielded, `Some(Err(TimedOut))` when the time ran
    /// out first.
    fn next_until(&mut self, deadline: Option<Instant>) -> Option<Result<&'a TaskFuture<R>, TimedOut>> {
        if self.left == 0 {
            return None;
        }
        let Some(i) = self.watcher.next(deadline) else { return Some(Err(TimedOut)) };
        self.left -= 1;
        self.futures.get(i).map(Ok)
    }
}

impl<'a, R> Iterator for AsCompleted<'a, R> {
    type Item = &'a TaskFuture<R>;

    fn next(&mut self) -> Option<&'a TaskFuture<R>> {
        // Without a deadline the watcher always gives an index.
        self.next_until(None).and_then(Result::ok)
    }
}

/// The same items as [`AsCompleted`], as a stream: `poll_next` never
/// blocks the thread (the executor's supervisor thread wakes it). Made by
/// [`AsCompleted::into_stream`]: a type of its own, so that `next()` from
/// `futures`' `StreamExt` is not confused with `Iterator::next`.
///
/// # Cancellation safety
///
/// A future is taken from the completion order only when it is yielded,
/// so dropping a pending `next()` loses none.
///
/// # Examples
///
/// ```
/// use futures::StreamExt;
/// fn square(x: u64) -> u64 {
///     x * x
/// }
/// let ex = shmproc::ProcessPoolExecutor::new(2)?;
/// let futs: Vec<_> = (1..=3).map(|i| ex.submit(square, i)).collect::<Result<_, _>>()?;
/// let total = futures::executor::block_on(async {
///     let mut done = shmproc::as_completed(&futs).into_stream();
///     let mut total = 0;
///     while let Some(f) = done.next().await {
///         total += f.await?;
///     }
///     Ok::<u64, shmproc::TaskError>(total)
/// })?;
/// assert_eq!(total, 14);
/// # Ok::<(), shmproc::Error>(())
/// ```
#[cfg(feature = "async")]
#[derive(Debug)]
#[must_use = "streams do nothing unless polled"]
pub struct AsCompletedStream<'a, R>(AsCompleted<'a, R>);

#[cfg(feature = "async")]
impl<'a, R> AsCompleted<'a, R> {
    /// The same items as a `futures_core::Stream`
    /// ([`AsCompletedStream`]): awaiting the next one never blocks the
    /// thread.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures::StreamExt;
    /// fn one(_: ()) -> u8 {
    ///     1
    /// }
    /// let ex = shmproc::ProcessPoolExecutor::new(1)?;
    /// let futs = [ex.submit(one, ())?];
    /// let done: Vec<_> = futures::executor::block_on(shmproc::as_completed(&futs).into_stream().collect());
    /// assert_eq!(done.len(), 1);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn into_stream(self) -> AsCompletedStream<'a, R> {
        AsCompletedStream(self)
    }
}

#[cfg(feature = "async")]
impl<'a, R> futures_core::Stream for AsCompletedStream<'a, R> {
    type Item = &'a TaskFuture<R>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<&'a TaskFuture<R>>> {
        let me = &mut self.get_mut().0;
        if me.left == 0 {
            return std::task::Poll::Ready(None);
        }
        match me.watcher.poll_next(cx.waker()) {
            Some(i) => {
                me.left -= 1;
                std::task::Poll::Ready(me.futures.get(i))
            }
            None => std::task::Poll::Pending,
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.0.left, Some(self.0.left))
    }
}

/// Yields the futures as they complete (done, failed or cancelled), each
/// once: a future given twice (or clones of one [`TaskFuture`], which are
/// one task) is yielded once (Python: `concurrent.futures.as_completed`,
/// which makes a set of its futures). Every future completes
/// eventually (a dead worker, a terminated or dropped executor fail it),
/// so the iteration ends; [`as_completed_timeout`] bounds it in time.
///
/// # Examples
///
/// ```
/// fn sleep_ms(ms: u64) -> u64 {
///     std::thread::sleep(std::time::Duration::from_millis(ms));
///     ms
/// }
/// let ex = shmproc::ProcessPoolExecutor::new(2)?;
/// let futs = vec![ex.submit(sleep_ms, 300)?, ex.submit(sleep_ms, 1)?];
/// let order: Vec<u64> = shmproc::as_completed(&futs).map(|f| f.result()).collect::<Result<_, _>>()?;
/// assert_eq!(order.len(), 2);
/// # Ok::<(), shmproc::Error>(())
/// ```
pub fn as_completed<R>(futures: &[TaskFuture<R>]) -> AsCompleted<'_, R> {
    AsCompleted::new(futures)
}

/// An iterator over futures in the order they complete, each distinct one
/// once, until a deadline; see [`as_completed_timeout`]. Each item is
/// `Ok(future)`; if the time
/// runs out before every future was yielded, one `Err(TimedOut)` comes
/// last (Python raises `TimeoutError` from the loop).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// fn square(x: u64) -> u64 {
///     x * x
/// }
/// let ex = shmproc::ProcessPoolExecutor::new(1)?;
/// let futs = vec![ex.submit(square, 3)?];
/// let it: shmproc::AsCompletedUntil<'_, u64> = shmproc::as_completed_timeout(&futs, Duration::from_secs(30));
/// for f in it {
///     assert_eq!(f?.result()?, 9);
/// }
/// # Ok::<(), shmproc::Error>(())
/// ```
#[derive(Debug)]
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub struct AsCompletedUntil<'a, R> {
    inner: AsCompleted<'a, R>,
    deadline: Option<Instant>,
    timed_out: bool,
}

impl<R> AsCompletedUntil<'_, R> {
    /// How many futures have not been yielded.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// fn sleep_ms(ms: u64) {
    ///     std::thread::sleep(Duration::from_millis(ms))
    /// }
    /// let ex = shmproc::ProcessPoolExecutor::new(1)?;
    /// let futs = vec![ex.submit(sleep_ms, 60_000)?];
    /// let mut it = shmproc::as_completed_timeout(&futs, Duration::ZERO);
    /// assert!(matches!(it.next(), Some(Err(shmproc::TimedOut))));
    /// assert!(it.next().is_none());
    /// assert_eq!(it.remaining(), 1);
    /// futs[0].cancel();
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn remaining(&self) -> usize {
        self.inner.left
    }
}

impl<'a, R> Iterator for AsCompletedUntil<'a, R> {
    type Item = Result<&'a TaskFuture<R>, TimedOut>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.timed_out {
            return None;
        }
        let item = self.inner.next_until(self.deadline);
        self.timed_out = matches!(item, Some(Err(TimedOut)));
        item
    }
}

/// As [`as_completed`], until `timeout` from now (`Duration::MAX`: no
/// limit): if futures remain then, the iterator yields `Err(TimedOut)`
/// and ends (Python: `as_completed(fs, timeout)`, which raises
/// `TimeoutError`).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// fn sleep_ms(ms: u64) -> u64 {
///     std::thread::sleep(Duration::from_millis(ms));
///     ms
/// }
/// let ex = shmproc::ProcessPoolExecutor::new(1)?;
/// let futs = vec![ex.submit(sleep_ms, 60_000)?];
/// let mut it = shmproc::as_completed_timeout(&futs, Duration::from_millis(10));
/// assert_eq!(it.next().map(|r| r.map(|_| ())), Some(Err(shmproc::TimedOut)));
/// futs[0].cancel();
/// # Ok::<(), shmproc::Error>(())
/// ```
#[doc(alias = "as_completed")]
pub fn as_completed_timeout<R>(futures: &[TaskFuture<R>], timeout: Duration) -> AsCompletedUntil<'_, R> {
    AsCompletedUntil { inner: AsCompleted::new(futures), deadline: deadline_after(timeout), timed_out: false }
}

/// As [`as_completed_timeout`], until the instant `deadline`.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// fn square(x: u64) -> u64 {
///     x * x
/// }
/// let ex = shmproc::ProcessPoolExecutor::new(2)?;
/// let futs = vec![ex.submit(square, 2)?, ex.submit(square, 3)?];
/// let deadline = Instant::now() + Duration::from_secs(30);
/// let mut total = 0;
/// for f in shmproc::as_completed_deadline(&futs, deadline) {
///     total += f?.result()?;
/// }
/// assert_eq!(total, 13);
/// # Ok::<(), shmproc::Error>(())
/// ```
pub fn as_completed_deadline<R>(futures: &[TaskFuture<R>], deadline: Instant) -> AsCompletedUntil<'_, R> {
    AsCompletedUntil { inner: AsCompleted::new(futures), deadline: Some(deadline), timed_out: false }
}

/// When [`wait`] returns (Python: `FIRST_COMPLETED`, `FIRST_EXCEPTION`,
/// `ALL_COMPLETED`).
///
/// # Examples
///
/// ```
/// assert_ne!(shmproc::ReturnWhen::FirstCompleted, shmproc::ReturnWhen::AllCompleted);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnWhen {
    /// As soon as any future is done.
    FirstCompleted,
    /// As soon as any future fails with an error (a cancelled future did
    /// not fail: it only counts as done); if none does, when all are done.
    FirstException,
    /// When every future is done.
    AllCompleted,
}

/// What [`wait`] found: the futures done and those not (Python:
/// `DoneAndNotDoneFutures`), each distinct future once (clones of one
/// [`TaskFuture`] are one), in the order given.
///
/// # Examples
///
/// ```
/// fn square(x: u64) -> u64 {
///     x * x
/// }
/// let ex = shmproc::ProcessPoolExecutor::new(1)?;
/// let futs = vec![ex.submit(square, 2)?];
/// let shmproc::DoneAndNotDone { done, not_done } = shmproc::wait(&futs, shmproc::ReturnWhen::AllCompleted);
/// assert_eq!(done.len(), 1);
/// assert!(not_done.is_empty());
/// # Ok::<(), shmproc::Error>(())
/// ```
#[derive(Debug)]
pub struct DoneAndNotDone<'a, R> {
    /// The futures that are done.
    pub done: Vec<&'a TaskFuture<R>>,
    /// The futures still pending or running.
    pub not_done: Vec<&'a TaskFuture<R>>,
}

/// Waits until `return_when` holds for `futures` (Python:
/// `concurrent.futures.wait(fs, return_when=...)`). It always returns:
/// every future completes eventually (a dead worker, a terminated or
/// dropped executor fail it).
///
/// # Examples
///
/// ```
/// use shmproc::{ReturnWhen, wait};
/// fn sleep_ms(ms: u64) -> u64 {
///     std::thread::sleep(std::time::Duration::from_millis(ms));
///     ms
/// }
/// let ex = shmproc::ProcessPoolExecutor::new(2)?;
/// let futs = vec![ex.submit(sleep_ms, 1)?, ex.submit(sleep_ms, 2)?];
/// let r = wait(&futs, ReturnWhen::AllCompleted);
/// assert_eq!(r.done.len(), 2);
/// assert!(r.not_done.is_empty());
/// # Ok::<(), shmproc::Error>(())
/// ```
pub fn wait<R>(futures: &[TaskFuture<R>], return_when: ReturnWhen) -> DoneAndNotDone<'_, R> {
    match wait_until(futures, None, return_when) {
        Ok(r) => r,
        Err(TimedOut) => partition(futures), // not reached: no deadline
    }
}

/// As [`wait`], giving up after `timeout` (`Duration::MAX`: no limit)
/// with [`TimedOut`] (Python: `wait(fs, timeout, return_when)`, which then
/// returns the futures as they are: the caller still holds them, and
/// [`TaskFuture::done`] tells which are done).
///
/// # Examples
///
/// ```
/// use shmproc::{ReturnWhen, TimedOut, wait_timeout};
/// use std::time::Duration;
/// fn sleep_ms(ms: u64) {
///     std::thread::sleep(Duration::from_millis(ms))
/// }
/// let ex = shmproc::ProcessPoolExecutor::new(1)?;
/// let futs = vec![ex.submit(sleep_ms, 60_000)?];
/// assert!(matches!(wait_timeout(&futs, Duration::from_millis(10), ReturnWhen::AllCompleted), Err(TimedOut)));
/// assert!(!futs[0].done());
/// futs[0].cancel();
/// # Ok::<(), shmproc::Error>(())
/// ```
///
/// # Errors
/// [`TimedOut`] if `return_when` did not hold in time.
#[doc(alias = "wait")]
pub fn wait_timeout<R>(
    futures: &[TaskFuture<R>],
    timeout: Duration,
    return_when: ReturnWhen,
) -> Result<DoneAndNotDone<'_, R>, TimedOut> {
    wait_until(futures, deadline_after(timeout), return_when)
}

/// As [`wait_timeout`], waiting until the instant `deadline`.
///
/// # Examples
///
/// ```
/// use shmproc::{ReturnWhen, wait_deadline};
/// use std::time::{Duration, Instant};
/// fn square(x: u64) -> u64 {
///     x * x
/// }
/// let ex = shmproc::ProcessPoolExecutor::new(2)?;
/// let futs = vec![ex.submit(square, 2)?, ex.submit(square, 3)?];
/// let r = wait_deadline(&futs, Instant::now() + Duration::from_secs(30), ReturnWhen::FirstCompleted)?;
/// assert!(!r.done.is_empty());
/// # Ok::<(), shmproc::Error>(())
/// ```
///
/// # Errors
/// As for [`wait_timeout`].
pub fn wait_deadline<R>(
    futures: &[TaskFuture<R>],
    deadline: Instant,
    return_when: ReturnWhen,
) -> Result<DoneAndNotDone<'_, R>, TimedOut> {
    wait_until(futures, Some(deadline), return_when)
}

fn partition<R>(futures: &[TaskFuture<R>]) -> DoneAndNotDone<'_, R> {
    let (done, not_done) = distinct(futures).into_iter().map(|i| &futures[i]).partition(|f| f.done());
    DoneAndNotDone { done, not_done }
}

fn wait_until<R>(
    futures: &[TaskFuture<R>],
    deadline: Option<Instant>,
    return_when: ReturnWhen,
) -> Result<DoneAndNotDone<'_, R>, TimedOut> {
    let watcher = Arc::new(Watcher::default());
    let distinct: Vec<&TaskFuture<R>> = distinct(futures).into_iter().map(|i| &futures[i]).collect();
    for (i, f) in distinct.iter().enumerate() {
        f.cell.watch(&watcher, i);
    }
    let satisfied = || {
        let done = distinct.iter().filter(|f| f.done()).count();
        match return_when {
            ReturnWhen::FirstCompleted => done > 0 || distinct.is_empty(),
            // Python: stops at a future that raised; a cancelled one
            // only counts towards "all".
            ReturnWhen::FirstException => done == distinct.len() || distinct.iter().any(|f| f.cell.raised()),
            ReturnWhen::AllCompleted => done == distinct.len(),
        }
    };
    while !satisfied() {
        if watcher.next(deadline).is_none() && deadline.is_some_and(|d| Instant::now() >= d) {
            // One last look: a completion may have landed at the deadline.
            if satisfied() {
                break;
            }
            return Err(TimedOut);
        }
    }
    Ok(partition(futures))
}

/// The results of [`ProcessPoolExecutor::map_timeout`] and
/// [`map_deadline`](ProcessPoolExecutor::map_deadline), in order, until
/// the deadline: each item is the result or the item's error (as
/// [`Imap`]'s, as a [`TaskTimeoutError`]); if a result is still missing at
/// the deadline, one `Err(`[`TaskTimeoutError::Timeout`]`)` comes last and
/// the chunks not started are cancelled (Python: `map(..., timeout)`,
/// whose `__next__` raises `TimeoutError`). Dropping it early cancels the
/// chunks not started, as for [`Imap`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// fn square(x: u64) -> u64 {
///     x * x
/// }
/// let ex = shmproc::ProcessPoolExecutor::new(2)?;
/// let it: shmproc::MapUntil<u64, _> = ex.map_timeout(square, 1..=3, 1, Duration::from_secs(30))?;
/// assert_eq!(it.collect::<Result<Vec<_>, _>>()?, [1, 4, 9]);
/// # Ok::<(), shmproc::Error>(())
/// ```
#[must_use = "iterators are lazy, and dropping a MapUntil cancels its tasks"]
pub struct MapUntil<R, I> {
    /// `None` once ended (the deadline passed, or every item was
    /// yielded): dropping the `Imap` cancels what did not start.
    inner: Option<Imap<R, I>>,
    deadline: Option<Instant>,
}

impl<R, I> std::fmt::Debug for MapUntil<R, I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MapUntil").field("inner", &self.inner).field("deadline", &self.deadline).finish()
    }
}

impl<A, R, I> Iterator for MapUntil<R, I>
where
    A: Serialize,
    R: DeserializeOwned,
    I: Iterator<Item = A>,
{
    type Item = Result<R, TaskTimeoutError>;

    fn next(&mut self) -> Option<Result<R, TaskTimeoutError>> {
        let item = self.inner.as_mut()?.next_until(self.deadline);
        match item {
            Some(Ok(r)) => Some(r.map_err(TaskTimeoutError::from)),
            Some(Err(TimedOut)) => {
                self.inner = None;
                Some(Err(TaskTimeoutError::Timeout))
            }
            None => {
                self.inner = None;
                None
            }
        }
    }
}
