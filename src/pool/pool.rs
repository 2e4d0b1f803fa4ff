//! `Pool` (Python's `multiprocessing.Pool`), its builder and
//! `AsyncResult`.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
#[cfg(feature = "async")]
use crate::pool::cell::CellAwait;
use crate::pool::cell::{Batch, CallbackSink, Cell, Finish, callbacks_finish, decode_items, decode_result};
use crate::pool::engine::{Config, Engine, Shared, Sink, Spawner};
use crate::pool::error::{PoolJoinError, TaskError, TaskTimeoutError};
use crate::pool::iter::{Chunk, ChunkSize, Imap, next_chunk, next_guarded, task_fns};
use crate::pool::wire::{Encoded, Failure, ItemOutcome, JobOutcome, TaskRecord, TaskWriter};
use crate::pool::worker::{Init, InitTrampoline, WorkerArgs, WorkerBase, init_trampoline, worker_main};
use crate::process::handle::{Process, ProcessBuilder};
use crate::process::start::{StartMethod, start_method};
use crate::process::task::TaskFn;
use crate::shm::fnref::FnRef;
use crate::shm::handoff;
use crate::sync::error::TimedOut;
use crate::sync::guard::deadline_after;
use crate::sys::signal::InterruptibleWait;

/// Chunks of `map` registered and queued together (`Shared::submit_many`).
const SUBMIT_GROUP: usize = 64;

/// The most items a `map` chunk of a smaller chunksize takes while every
/// worker reports quick tasks (`Shared::tasks_quick`): one hand-off, one
/// job and one result record for this many items. A `map` gives its results all at once, so
/// only the time of the last chunks changes (a quick item takes under
/// 20 us).
const PACK: usize = 32;

/// The items of the next `map` chunks: `chunksize`, or up to [`PACK`]
/// while every worker reports quick tasks.
fn chunk_size(sh: &Shared, chunksize: usize) -> ChunkSize {
    let items = if chunksize < PACK && sh.tasks_quick() { PACK } else { chunksize };
    ChunkSize { items, asked: chunksize }
}

/// Refuses a chunk size of 0 (Python: `ValueError: Chunksize must be 1+.`).
fn check_chunksize(chunksize: usize) -> Result<()> {
    if chunksize == 0 {
        return Err(Error::InvalidArgument { what: "chunksize must be 1 or more" });
    }
    Ok(())
}

/// Reads `items` whole; a panic of the iterator becomes
/// [`Error::InputPanicked`].
fn collect_guarded<A>(items: impl IntoIterator<Item = A>) -> Result<Vec<A>> {
    let mut input = items.into_iter();
    let mut all = Vec::with_capacity(input.size_hint().0);
    while let Some(item) = next_guarded(&mut input)? {
        all.push(item);
    }
    Ok(all)
}

/// The failure of a result record whose item count is not the task's.
fn wrong_count() -> Failure {
    Failure::TaskError("a result record with the wrong number of items".into())
}

/// One chunk of a `map_async`: its job, item count, and results once
/// delivered.
struct MapChunk {
    id: u64,
    items: u32,
    results: Option<Vec<Encoded>>,
}

#[derive(Default)]
struct MapState {
    /// The chunks by index, pushed before each is submitted.
    chunks: Vec<MapChunk>,
    /// Chunks delivered so far.
    delivered: usize,
    /// Whether every chunk was submitted (`chunks` is complete).
    sealed: bool,
    /// Whether the outcome was given (the rest is dropped).
    done: bool,
}

/// Gathers the chunks of a `map_async` into one outcome for its cell: the
/// encoding of the whole `Vec<R>` (postcard: the length as a varint, then
/// each item's encoding, which is what the workers sent), or the first
/// failure to arrive (the other chunks are then abandoned). Results that
/// came with descriptors cannot be joined as bytes (each chunk's record
/// numbers its own): they are decoded and the whole `Vec<R>` encoded
/// again, with one list ([`Regather`]).
struct MapSink {
    /// The handle's cell and the callbacks.
    done: CallbackSink,
    state: Mutex<MapState>,
    regather: Regather,
}

/// Decodes every item (with its record's descriptors) as an `R` and
/// encodes the `Vec<R>` with one list of descriptors.
type Regather = fn(&[Encoded]) -> ItemOutcome;

fn regather<R: Serialize + DeserializeOwned>(items: &[Encoded]) -> ItemOutcome {
    let values = items.iter().map(decode_result::<R>).collect::<Result<Vec<R>>>();
    let values = values.map_err(|e| Failure::Codec(e.to_string()))?;
    let encode = || handoff::collecting(|| crate::codec::encode(&values));
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(encode)) {
        Ok((Ok(bytes), fds, _undo)) => Ok(Encoded { bytes: bytes.into(), fds: handoff::Received::some(fds) }),
        Ok((Err(e), _, undo)) => {
            undo.run();
            Err(Failure::Codec(e.to_string()))
        }
        Err(p) => {
            Err(Failure::Codec(format!("encoding the results panicked: {}", crate::error::panic_message(p.as_ref()))))
        }
    }
}

impl MapSink {
    /// Every chunk was submitted: completes now if all were delivered.
    fn seal(&self) {
        let mut st = self.state.lock();
        st.sealed = true;
        self.complete_if_whole(st);
    }

    /// Submission failed: abandons what was submitted; the cell stays
    /// pending (the handle is never returned).
    fn give_up(&self, sh: &Shared) {
        let mut st = self.state.lock();
        st.done = true;
        let ids: Vec<u64> = st.chunks.iter().map(|c| c.id).collect();
        drop(st);
        sh.abandon(ids);
    }

    fn complete_if_whole(&self, mut st: parking_lot::MutexGuard<'_, MapState>) {
        if st.done || !st.sealed || st.delivered < st.chunks.len() {
            return;
        }
        st.done = true;
        let items: Vec<Encoded> = st.chunks.iter_mut().flat_map(|c| c.results.take().unwrap_or_default()).collect();
        drop(st);
        if items.iter().any(|i| i.fds.is_some()) {
            self.done.complete((self.regather)(&items));
            return;
        }
        let mut bytes = crate::codec::encode(&items.len()).expect("invariant: a usize encodes");
        for item in &items {
            bytes.extend_from_slice(&item.bytes);
        }
        self.done.complete(Ok(Encoded { bytes: bytes.into(), fds: None }));
    }
}

impl Sink for MapSink {
    fn deliver(&self, chunk: u64, outcome: JobOutcome) {
        let mut st = self.state.lock();
        let Some(c) = usize::try_from(chunk).ok().filter(|&i| i < st.chunks.len()) else { return };
        if st.done || st.chunks[c].results.is_some() {
            return;
        }
        let items = st.chunks[c].items as usize;
        let failure = match outcome {
            JobOutcome::Items(v) if v.len() == items => match v.into_iter().collect::<Result<Vec<_>, _>>() {
                Ok(results) => {
                    st.chunks[c].results = Some(results);
                    st.delivered += 1;
                    None
                }
                Err(f) => Some(f),
            },
            JobOutcome::Items(_) => Some(wrong_count()),
            JobOutcome::Failed(f) => Some(f),
        };
        let Some(failure) = failure else { return self.complete_if_whole(st) };
        // The first failure to arrive is the outcome (Python's
        // error_callback gets the first exception); the rest is abandoned.
        st.done = true;
        let ids: Vec<u64> = st.chunks.iter().filter(|c| c.results.is_none()).map(|c| c.id).collect();
        drop(st);
        if let Some(sh) = self.done.cell.engine() {
            sh.abandon(ids);
        }
        self.done.complete(Err(failure));
    }
}

/// Workers start with no initializer.
fn plain_spawner() -> Spawner {
    Arc::new(|b: ProcessBuilder, base: WorkerBase| b.spawn(worker_main::<()>, WorkerArgs::<()> { base, init: None }))
}

/// Workers run `f(arg.clone())` first (`f` made again in each worker
/// from its name and captures, as a task is).
fn init_spawner<F, A>(f: F, arg: A) -> Result<Spawner>
where
    F: TaskFn<A, ()>,
    A: Serialize + DeserializeOwned + Clone + Send + 'static,
{
    let stat = |e| Error::os("stat /proc/self/exe", e);
    let (function, captures) = f.__name(crate::process::task::TOKEN)?;
    let function = FnRef::from_words(function);
    let trampoline = FnRef::of(init_trampoline::<F, A> as InitTrampoline<A>).map_err(stat)?;
    let arg = Mutex::new(arg);
    Ok(Arc::new(move |b: ProcessBuilder, base: WorkerBase| -> Result<Process<()>> {
        let init = Init { trampoline, function, captures: captures.clone(), arg: arg.lock().clone() };
        b.spawn(worker_main::<A>, WorkerArgs { base, init: Some(init) })
    }))
}

/// What the two builders share.
#[derive(Clone)]
pub(crate) struct Options {
    pub(crate) processes: Option<usize>,
    pub(crate) method: Option<StartMethod>,
    pub(crate) spawner: Option<Spawner>,
    /// Why the initializer could not be named (its captures did not
    /// encode): `build` returns it.
    init_error: Option<Arc<Error>>,
    pub(crate) max_tasks: u64,
    pub(crate) task_timeout: Option<Duration>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("processes", &self.processes)
            .field("method", &self.method)
            .field("initializer", &self.spawner.is_some())
            .field("max_tasks", &self.max_tasks)
            .field("task_timeout", &self.task_timeout)
            .finish()
    }
}

impl Options {
    pub(crate) fn new() -> Options {
        Options { processes: None, method: None, spawner: None, init_error: None, max_tasks: 0, task_timeout: None }
    }

    pub(crate) fn initializer<F, A>(&mut self, f: F, arg: A)
    where
        F: TaskFn<A, ()>,
        A: Serialize + DeserializeOwned + Clone + Send + 'static,
    {
        match init_spawner(f, arg) {
            Ok(s) => {
                self.spawner = Some(s);
                self.init_error = None;
            }
            // Returned by `build`.
            Err(e) => self.init_error = Some(Arc::new(e)),
        }
    }

    pub(crate) fn start(self, break_on_death: bool, prefix_kind: &'static str) -> Result<Engine> {
        if let Some(e) = self.init_error {
            return Err(Arc::try_unwrap(e).unwrap_or_else(|e| Error::Codec { message: e.to_string() }));
        }
        let method = self.method.unwrap_or_else(start_method);
        let prefix = match (method, prefix_kind) {
            (StartMethod::Fork, "pool") => "ForkPoolWorker",
            (StartMethod::Spawn, "pool") => "SpawnPoolWorker",
            (StartMethod::ForkServer, "pool") => "ForkServerPoolWorker",
            _ => "ProcessPoolExecutorWorker",
        };
        Engine::start(Config {
            processes: self.processes.unwrap_or_else(crate::process::current::cpu_count),
            method,
            max_tasks: self.max_tasks,
            task_timeout: self.task_timeout,
            break_on_death,
            spawner: self.spawner.unwrap_or_else(plain_spawner),
            prefix,
            on_demand: prefix_kind == "executor",
        })
    }
}

/// Options for a new [`Pool`]: number of processes, start method,
/// initializer, tasks per worker, task timeout.
///
/// # Examples
///
/// ```
/// use shmproc::{Pool, StartMethod};
///
/// fn square(x: u64) -> u64 { x * x }
///
/// let pool = Pool::builder().processes(2).start_method(StartMethod::Spawn).maxtasksperchild(100).build()?;
/// assert_eq!(pool.apply(square, 7)?, 49);
/// # Ok::<(), shmproc::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct PoolBuilder {
    opts: Options,
    /// `maxtasksperchild(0)` was asked for: `build` refuses it.
    zero_max_tasks: bool,
}

impl PoolBuilder {
    /// The number of worker processes (default: [`cpu_count()`](crate::cpu_count)).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmproc::Pool::builder().processes(3).build()?;
    /// assert_eq!(pool.processes(), 3);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn processes(mut self, n: usize) -> Self {
        self.opts.processes = Some(n);
        self
    }

    /// How workers start (default: [`start_method()`](crate::start_method)).
    /// Under [`StartMethod::Fork`] the pool forks a private fork server when
    /// it is built, so this process must have a single thread then (else
    /// [`Error::ForkUnsafe`]); workers, replacements included, are copies
    /// of the process as it was at that moment. A pool has a thread of its
    /// own, so under fork build one pool at a time (or use the fork
    /// server, the default).
    ///
    /// # Examples
    ///
    /// ```
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    /// let pool = shmproc::Pool::builder().processes(1).start_method(shmproc::StartMethod::Spawn).build()?;
    /// assert_eq!(pool.apply(square, 3)?, 9);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn start_method(mut self, method: StartMethod) -> Self {
        self.opts.method = Some(method);
        self
    }

    /// Each worker calls `f(arg)` when it starts (a clone of `arg` travels
    /// to each one, shared handles included: the initializer is how
    /// anonymous queues, locks and segments reach the workers, besides
    /// task arguments). `f` is any [`TaskFn`](crate::TaskFn), as a task
    /// is: a fn item or pointer, a closure that captures nothing, or
    /// [`task!`](crate::task!) with named captures (Python's
    /// `initializer=functools.partial(...)`); captures that do not encode
    /// make [`build`](PoolBuilder::build) fail with [`Error::Codec`]. If
    /// it panics, the pool breaks: pending tasks fail with
    /// [`TaskError::BrokenPool`] and later submissions with
    /// [`Error::BrokenPool`] (Python would start workers forever).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// static OFFSET: AtomicU64 = AtomicU64::new(0);
    /// fn set_offset(n: u64) {
    ///     OFFSET.store(n, Ordering::Relaxed);
    /// }
    /// fn add_offset(x: u64) -> u64 {
    ///     x + OFFSET.load(Ordering::Relaxed)
    /// }
    /// let pool = shmproc::Pool::builder().processes(1).initializer(set_offset, 100).build()?;
    /// assert_eq!(pool.apply(add_offset, 1)?, 101);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn initializer<A>(mut self, f: impl TaskFn<A, ()>, arg: A) -> Self
    where
        A: Serialize + DeserializeOwned + Clone + Send + 'static,
    {
        self.opts.initializer(f, arg);
        self
    }

    /// Each worker exits after this many tasks (a chunk of `map` counts as
    /// one) and is replaced (default: never). 0 is refused by
    /// [`build`](PoolBuilder::build) (Python: `ValueError`).
    ///
    /// # Examples
    ///
    /// ```
    /// fn pid(_: ()) -> u32 {
    ///     std::process::id()
    /// }
    /// let pool = shmproc::Pool::builder().processes(1).maxtasksperchild(1).build()?;
    /// let a = pool.apply(pid, ())?;
    /// let b = pool.apply(pid, ())?;
    /// assert_ne!(a, b); // a new worker for each task
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    #[doc(alias = "max_tasks_per_child")]
    pub fn maxtasksperchild(mut self, n: u64) -> Self {
        self.opts.max_tasks = n;
        self.zero_max_tasks = n == 0;
        self
    }

    /// A task running longer than `limit` fails with
    /// [`TaskError::TaskTimedOut`]; its worker is killed and replaced. Checked
    /// every 10 ms or so. Default: no limit. (Not in Python.)
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// fn sleep_ms(ms: u64) -> u64 {
    ///     std::thread::sleep(Duration::from_millis(ms));
    ///     ms
    /// }
    /// let pool = shmproc::Pool::builder().processes(1).task_timeout(Duration::from_millis(200)).build()?;
    /// assert!(matches!(pool.apply(sleep_ms, 60_000), Err(shmproc::Error::TaskTimedOut { .. })));
    /// assert_eq!(pool.apply(sleep_ms, 1)?, 1); // a new worker took over
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn task_timeout(mut self, limit: Duration) -> Self {
        self.opts.task_timeout = Some(limit);
        self
    }

    /// Starts the workers.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmproc::Pool::builder().processes(2).build()?;
    /// pool.close();
    /// pool.join()?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for 0 processes or
    /// [`maxtasksperchild(0)`](PoolBuilder::maxtasksperchild);
    /// [`Error::ForkUnsafe`] (fork with several threads); as for
    /// [`Process::spawn`] and [`Queue::new`](crate::Queue::new).
    pub fn build(self) -> Result<Pool> {
        if self.zero_max_tasks {
            return Err(Error::InvalidArgument {
                what: "maxtasksperchild must be 1 or more (leave it unset for no limit)",
            });
        }
        Ok(Pool { engine: self.opts.start(false, "pool")? })
    }
}

/// A pool of worker processes (Python: `multiprocessing.Pool`).
///
/// Tasks are any [`TaskFn`](crate::TaskFn): a fn item or pointer `fn(A) ->
/// R`, a closure that captures nothing, or a [`task!`](crate::task!) with
/// named captures (several parameters travel as a tuple or a struct);
/// arguments and results travel encoded (serde + postcard)
/// through queues in shared memory. Workers are daemon processes started
/// with the pool's start method.
///
/// Failures stay with their task: a task that panics fails alone
/// ([`TaskError::Panicked`], with the message; the worker lives on); a
/// worker killed mid-task fails that task with [`TaskError::WorkerDied`]
/// (naming the signal) and is replaced. No call hangs on a dead worker.
/// A worker whose tasks finish quickly (under 20 µs each) takes up to 12
/// at once and returns their results together; if it dies, the ones it
/// had not answered fail with it.
///
/// Ctrl-C: while a pool exists, a SIGINT that arrives during a pool call
/// (`map`, `apply`, a result's `get`, an `imap` step, `join`, ...)
/// terminates the pools of this process (workers killed and reaped) and
/// that call returns [`Error::Interrupted`] once they are (even when the
/// Ctrl-C came while a `map` was still submitting), as does any later use
/// of them. A SIGINT while no pool call is in progress ends the program as it
/// would without pools. Workers ignore SIGINT: a Ctrl-C to the process
/// group is the parent's to handle.
///
/// Dropping the pool terminates it (Python's `with Pool() as p:`): its
/// workers are killed and pending tasks fail with [`TaskError::Cancelled`].
/// To finish the queued work first, [`close`](Pool::close) and
/// [`join`](Pool::join).
///
/// Arguments travel through a queue, not to a new process: named shared
/// handles pass by name, anonymous ones only through the
/// [`initializer`](PoolBuilder::initializer).
///
/// # Examples
///
/// ```
/// use shmproc::Pool;
///
/// fn square(x: u64) -> u64 { x * x }
/// fn add((a, b): (i64, i64)) -> i64 { a + b }
///
/// let pool = Pool::new(2)?;
/// assert_eq!(pool.apply(square, 4)?, 16);
/// assert_eq!(pool.map(square, 0..5)?, [0, 1, 4, 9, 16]);
/// let h = pool.apply_async(add, (2, 3))?;
/// assert_eq!(h.get()?, 5);
/// pool.close();
/// pool.join()?;
/// # Ok::<(), shmproc::Error>(())
/// ```
#[derive(Debug)]
#[must_use = "dropping a Pool terminates its workers at once"]
pub struct Pool {
    engine: Engine,
}

impl Pool {
    /// A pool of `processes` workers with the default start method.
    ///
    /// # Examples
    ///
    /// ```
    /// fn double(x: i32) -> i32 {
    ///     2 * x
    /// }
    /// let pool = shmproc::Pool::new(2)?;
    /// assert_eq!(pool.apply(double, 21)?, 42);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`PoolBuilder::build`].
    pub fn new(processes: usize) -> Result<Pool> {
        Pool::builder().processes(processes).build()
    }

    /// A builder for the other options.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmproc::Pool::builder().processes(1).build()?;
    /// # drop(pool);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn builder() -> PoolBuilder {
        PoolBuilder { opts: Options::new(), zero_max_tasks: false }
    }

    /// The number of worker processes.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shmproc::Pool::new(2)?.processes(), 2);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn processes(&self) -> usize {
        self.engine.shared().processes()
    }

    /// Runs `f(arg)` in a worker and waits for its result.
    ///
    /// # Examples
    ///
    /// ```
    /// fn worker_pid(_: ()) -> u32 {
    ///     std::process::id()
    /// }
    /// let pool = shmproc::Pool::new(2)?;
    /// assert_ne!(pool.apply(worker_pid, ())?, std::process::id());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`apply_async`](Pool::apply_async), and [`AsyncResult::get`]'s
    /// [`TaskError`] converted into [`Error`] (same variant names).
    pub fn apply<A, R>(&self, f: impl TaskFn<A, R>, arg: A) -> Result<R>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        let _w = InterruptibleWait::new();
        Ok(self.apply_async(f, arg)?.get()?)
    }

    fn submit_one<A, R>(&self, f: impl TaskFn<A, R>, arg: &A) -> Result<(u64, TaskRecord)>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        let sh = self.engine.shared();
        let fns = task_fns(&f)?;
        let id = sh.next_id();
        let mut w = TaskWriter::new(id, &fns);
        w.push(arg)?;
        Ok((id, w.finish()))
    }

    /// Starts `f(arg)` in a worker; the handle gives the result.
    ///
    /// # Examples
    ///
    /// ```
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    /// let pool = shmproc::Pool::new(2)?;
    /// let handles: Vec<_> = (0..4).map(|i| pool.apply_async(square, i)).collect::<Result<_, _>>()?;
    /// let results: Vec<u64> = handles.iter().map(|h| h.get()).collect::<Result<_, _>>()?;
    /// assert_eq!(results, [0, 1, 4, 9]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Codec`] if `arg` cannot be encoded (nothing was submitted;
    /// the pool stays usable); [`Error::PoolClosed`] after
    /// [`close`](Pool::close) or [`terminate`](Pool::terminate);
    /// [`Error::BrokenPool`] if the initializer failed.
    pub fn apply_async<A, R>(&self, f: impl TaskFn<A, R>, arg: A) -> Result<AsyncResult<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        let (id, record) = self.submit_one(f, &arg)?;
        let sh = self.engine.shared();
        let cell = Arc::new(Cell::new(id, Arc::downgrade(sh)));
        sh.submit(id, record, cell.clone(), 0)?;
        Ok(AsyncResult { cell, _r: PhantomData })
    }

    /// As [`apply_async`](Pool::apply_async), and when the task is done
    /// `on_ok(result)` or `on_err(error)` runs in this process (on the
    /// pool's supervisor thread, one at a time, before the handle becomes
    /// ready). A callback that panics makes the handle's result
    /// [`TaskError::CallbackPanicked`]; it never stalls the pool. Keep
    /// callbacks short, and do not wait on the pool from one (the thread
    /// that would deliver the result is the one waiting), as in Python.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// fn fetch(n: u32) -> String {
    ///     format!("page {n}")
    /// }
    /// let pool = shmproc::Pool::new(2)?;
    /// let parsed = Arc::new(Mutex::new(Vec::new()));
    /// let sink = parsed.clone();
    /// let h = pool.apply_async_with(fetch, 7, move |page| sink.lock().unwrap().push(page.len()), |e| eprintln!("{e}"))?;
    /// h.wait();
    /// assert_eq!(*parsed.lock().unwrap(), [6]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `apply_async(f, args, callback=on_ok, error_callback=on_err)`.
    ///
    /// # Errors
    /// As for [`apply_async`](Pool::apply_async).
    pub fn apply_async_with<A, R, F, E>(
        &self,
        f: impl TaskFn<A, R>,
        arg: A,
        on_ok: F,
        on_err: E,
    ) -> Result<AsyncResult<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        F: FnOnce(R) + Send + 'static,
        E: FnOnce(Error) + Send + 'static,
    {
        let (id, record) = self.submit_one(f, &arg)?;
        let sh = self.engine.shared();
        let cell = Arc::new(Cell::new(id, Arc::downgrade(sh)));
        let sink = Arc::new(CallbackSink {
            cell: cell.clone(),
            finish: Mutex::new(Some(callbacks_finish::<R, F, E>(on_ok, on_err))),
        });
        sh.submit(id, record, sink, 0)?;
        Ok(AsyncResult { cell, _r: PhantomData })
    }

    /// Applies `f` to every item and returns the results in order
    /// (Python: `map`). The items are split into about four chunks per
    /// worker; [`map_chunked`](Pool::map_chunked) chooses the size.
    /// Several parameters travel as a tuple: Python's `starmap(f, pairs)`
    /// is `map` of a `fn((a, b): (A, B)) -> R` over `(A, B)` items, or of a
    /// closure that captures nothing and unpacks the tuple for an existing
    /// `fn(A, B) -> R` (it is a plain function of the executable too).
    ///
    /// # Examples
    ///
    /// ```
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    /// fn mul(a: u64, b: u64) -> u64 {
    ///     a * b
    /// }
    /// fn add((a, b): (u64, u64)) -> u64 {
    ///     a + b
    /// }
    /// let pool = shmproc::Pool::new(2)?;
    /// assert_eq!(pool.map(square, vec![3, 4, 5])?, [9, 16, 25]);
    /// // Python: starmap
    /// assert_eq!(pool.map(add, [(2, 3), (4, 5)])?, [5, 9]);
    /// assert_eq!(pool.map(|(a, b)| mul(a, b), [(2, 3), (4, 5)])?, [6, 20]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// The first failed item's error (in order), as for
    /// [`AsyncResult::get`]; [`Error::Codec`] if an item cannot be encoded
    /// (returned at once; what was submitted is cancelled);
    /// [`Error::InputPanicked`] if `items` panicked while it was read
    /// (before anything was submitted; the pool stays usable).
    #[doc(alias = "starmap")]
    pub fn map<A, R>(&self, f: impl TaskFn<A, R>, items: impl IntoIterator<Item = A>) -> Result<Vec<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        let items = collect_guarded(items)?;
        let chunksize = self.default_chunksize(items.len());
        self.map_chunked(f, items, chunksize)
    }

    /// About four chunks per worker for `n` items (at least one item each).
    fn default_chunksize(&self, n: usize) -> usize {
        n.div_ceil((self.processes() * 4).max(1)).max(1)
    }

    /// As [`map`](Pool::map) with chunks of `chunksize` items (each chunk
    /// is one task for a worker: larger chunks cost less per item, smaller
    /// ones balance better). Python: `map(f, items, chunksize)`.
    ///
    /// While every worker reports that its last tasks took under 20 us
    /// each (in a pool without a task timeout or `maxtasksperchild`), a
    /// chunk of a `chunksize` under 32 takes up to 32 items, as long as
    /// its record stays under 64 KiB: one hand-off for many quick items.
    /// The results, their order and the error (the first failed item in
    /// order) are the same; only the time of the last chunks changes (32
    /// quick items), and a worker that dies fails every item of its chunk
    /// (the map's error is then the first of them). Slow tasks keep
    /// `chunksize`.
    ///
    /// # Examples
    ///
    /// ```
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    /// let pool = shmproc::Pool::new(2)?;
    /// assert_eq!(pool.map_chunked(square, 0..100, 1)?.len(), 100);
    /// assert!(matches!(pool.map_chunked(square, 0..100, 0), Err(shmproc::Error::InvalidArgument { .. })));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a `chunksize` of 0 (Python:
    /// `ValueError`); [`Error::InputPanicked`] if `items` panicked while it
    /// was read (what was submitted is cancelled; the pool stays usable);
    /// the others as for [`map`](Pool::map).
    pub fn map_chunked<A, R>(
        &self,
        f: impl TaskFn<A, R>,
        items: impl IntoIterator<Item = A>,
        chunksize: usize,
    ) -> Result<Vec<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        check_chunksize(chunksize)?;
        // A Ctrl-C while the chunks are submitted interrupts the map too.
        let _w = InterruptibleWait::new();
        let sh = self.engine.shared();
        sh.check_running()?;
        let fns = task_fns(&f)?;
        let batch = Arc::new(Batch::new(false));
        let sink: Arc<dyn Sink> = batch.clone();
        let mut input = items.into_iter();
        let mut chunks: Vec<(u64, u32)> = Vec::new();
        // Chunks are registered and queued in groups, one job-table lock
        // per group; the groups grow (1, 2, 4, ... SUBMIT_GROUP chunks) so
        // the first chunks start while a slow input is still being read.
        let mut group = Vec::with_capacity(SUBMIT_GROUP);
        let mut group_size = 1;
        // While every worker reports quick tasks, chunks are packed (see
        // `chunk_size`; looked at per group).
        let mut size = ChunkSize::exactly(chunksize);
        loop {
            let chunk = next_chunk(sh, &fns, &mut input, size);
            let last = chunk.is_none();
            let submitted = match chunk {
                Some(Chunk::Ready { id, record, items }) => {
                    chunks.push((id, items));
                    group.push((id, record, chunks.len() as u64 - 1));
                    if group.len() < group_size {
                        Ok(())
                    } else {
                        group_size = (group_size * 2).min(SUBMIT_GROUP);
                        size = chunk_size(sh, chunksize);
                        sh.submit_many(&mut group, &sink)
                    }
                }
                None => sh.submit_many(&mut group, &sink),
                Some(Chunk::Bad { error, .. } | Chunk::Panicked { error }) => Err(error),
            };
            if let Err(e) = submitted {
                for (_, record, _) in group.drain(..) {
                    record.undo.run();
                }
                sh.abandon(chunks.iter().map(|c| c.0));
                return Err(e);
            }
            if last {
                break;
            }
        }
        batch.wait_all(chunks.len() as u64);
        let mut out: Vec<R> = Vec::with_capacity(chunks.iter().map(|c| c.1 as usize).sum());
        // The first failure in order (the chunks from it on are abandoned).
        let mut failed: Option<(usize, Error)> = None;
        // The chunks delivered in a row are taken under one lock.
        let mut run = Vec::new().into_iter();
        for (i, &(_, n)) in chunks.iter().enumerate() {
            let outcome = match run.next() {
                Some(o) => o,
                None => {
                    let mut taken = Vec::new();
                    batch.take_delivered(i as u64, &mut taken);
                    run = taken.into_iter();
                    run.next().unwrap_or_else(|| batch.take(i as u64))
                }
            };
            let error = match outcome {
                JobOutcome::Items(v) if v.len() == n as usize => decode_items(v, &mut out),
                JobOutcome::Items(_) => Some(wrong_count().error()),
                JobOutcome::Failed(f) => Some(f.error()),
            };
            if let Some(e) = error {
                failed = Some((i, e));
                break;
            }
        }
        match failed {
            Some((i, e)) => {
                sh.abandon(chunks[i..].iter().map(|c| c.0));
                Err(e)
            }
            None => Ok(out),
        }
    }

    /// Starts [`map`](Pool::map) and returns at once; the handle's
    /// [`get`](AsyncResult::get) gives the whole list in order, or the
    /// first failure to arrive (then the chunks not yet started are
    /// cancelled). Python: `map_async(f, items)`; `starmap_async` is this
    /// over tuples, as for `map`.
    ///
    /// The input is read whole before anything is submitted (as Python
    /// does), so a panicking input fails this call, not the handle.
    ///
    /// # Examples
    ///
    /// ```
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    /// let pool = shmproc::Pool::new(2)?;
    /// let h = pool.map_async(square, 0..10)?;
    /// assert_eq!(h.get()?, [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InputPanicked`] if `items` panicked while it was read
    /// (nothing was submitted); [`Error::Codec`] if an item cannot be
    /// encoded (what was submitted is cancelled); [`Error::PoolClosed`];
    /// [`Error::BrokenPool`]. A task's failure comes from the handle's
    /// [`get`](AsyncResult::get).
    #[doc(alias = "starmap_async")]
    pub fn map_async<A, R>(
        &self,
        f: impl TaskFn<A, R>,
        items: impl IntoIterator<Item = A>,
    ) -> Result<AsyncResult<Vec<R>>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        self.map_async_inner(f, items, None, None)
    }

    /// As [`map_async`](Pool::map_async) with chunks of `chunksize` items
    /// (Python: `map_async(f, items, chunksize)`); quick tasks are packed
    /// as [`map_chunked`](Pool::map_chunked) says.
    ///
    /// # Examples
    ///
    /// ```
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    /// let pool = shmproc::Pool::new(2)?;
    /// assert_eq!(pool.map_async_chunked(square, 0..100, 7)?.get()?.len(), 100);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a `chunksize` of 0 (Python:
    /// `ValueError`); the others as for [`map_async`](Pool::map_async).
    pub fn map_async_chunked<A, R>(
        &self,
        f: impl TaskFn<A, R>,
        items: impl IntoIterator<Item = A>,
        chunksize: usize,
    ) -> Result<AsyncResult<Vec<R>>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        self.map_async_inner(f, items, Some(chunksize), None)
    }

    /// As [`map_async`](Pool::map_async), and when the whole map is done
    /// `on_ok(results)` (once, with the whole list) or `on_err(error)`
    /// (once, with the first failure to arrive) runs in this process, as
    /// the callbacks of [`apply_async_with`](Pool::apply_async_with) do
    /// (on the pool's supervisor thread, before the handle becomes ready;
    /// a panicking callback makes the handle's result
    /// [`TaskError::CallbackPanicked`]). For an empty input `on_ok(vec![])`
    /// runs at once, in the calling thread (Python calls no callback
    /// then); so does the callback of a map whose every chunk finished
    /// before this call returned: a callback must not wait for a lock the
    /// caller holds around the call. Once a chunk has failed, the chunks
    /// already queued still run (their results are dropped).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// fn parse(s: String) -> u32 {
    ///     s.parse().expect("a number")
    /// }
    /// let pool = shmproc::Pool::new(2)?;
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let (ok, err) = (seen.clone(), seen.clone());
    /// let h = pool.map_async_with(
    ///     parse,
    ///     ["1".to_string(), "2".to_string()],
    ///     move |v| ok.lock().unwrap().push(format!("{v:?}")),
    ///     move |e| err.lock().unwrap().push(e.to_string()),
    /// )?;
    /// h.wait();
    /// assert_eq!(*seen.lock().unwrap(), ["[1, 2]"]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `map_async(f, items, callback=on_ok, error_callback=on_err)`.
    ///
    /// # Errors
    /// As for [`map_async`](Pool::map_async). No callback runs then,
    /// except when a chunk failed in a worker before a later chunk could be
    /// submitted: `on_err` has then run with that chunk's failure, and the
    /// call still returns the submission's error.
    pub fn map_async_with<A, R, F, E>(
        &self,
        f: impl TaskFn<A, R>,
        items: impl IntoIterator<Item = A>,
        on_ok: F,
        on_err: E,
    ) -> Result<AsyncResult<Vec<R>>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        F: FnOnce(Vec<R>) + Send + 'static,
        E: FnOnce(Error) + Send + 'static,
    {
        self.map_async_inner(f, items, None, Some(callbacks_finish::<Vec<R>, F, E>(on_ok, on_err)))
    }

    /// As [`map_async_with`](Pool::map_async_with) with chunks of
    /// `chunksize` items (Python: `map_async(f, items, chunksize,
    /// callback, error_callback)`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    /// let pool = shmproc::Pool::new(2)?;
    /// let (tx, rx) = mpsc::channel();
    /// let h = pool.map_async_chunked_with(square, 0..4, 2, move |v| tx.send(v).unwrap(), |e| panic!("{e}"))?;
    /// assert_eq!(rx.recv().unwrap(), [0, 1, 4, 9]);
    /// assert_eq!(h.get()?, [0, 1, 4, 9]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`map_async_chunked`](Pool::map_async_chunked) (no callback
    /// runs then).
    pub fn map_async_chunked_with<A, R, F, E>(
        &self,
        f: impl TaskFn<A, R>,
        items: impl IntoIterator<Item = A>,
        chunksize: usize,
        on_ok: F,
        on_err: E,
    ) -> Result<AsyncResult<Vec<R>>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        F: FnOnce(Vec<R>) + Send + 'static,
        E: FnOnce(Error) + Send + 'static,
    {
        self.map_async_inner(f, items, Some(chunksize), Some(callbacks_finish::<Vec<R>, F, E>(on_ok, on_err)))
    }

    fn map_async_inner<A, R>(
        &self,
        f: impl TaskFn<A, R>,
        items: impl IntoIterator<Item = A>,
        chunksize: Option<usize>,
        finish: Option<Finish>,
    ) -> Result<AsyncResult<Vec<R>>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        if let Some(c) = chunksize {
            check_chunksize(c)?;
        }
        let sh = self.engine.shared();
        sh.check_running()?;
        let fns = task_fns(&f)?;
        let items = collect_guarded(items)?;
        let chunksize = chunksize.unwrap_or_else(|| self.default_chunksize(items.len()));
        let cell = Arc::new(Cell::new(0, Arc::downgrade(sh)));
        let sink = Arc::new(MapSink {
            done: CallbackSink { cell: cell.clone(), finish: Mutex::new(finish) },
            state: Mutex::default(),
            regather: regather::<R>,
        });
        let as_sink: Arc<dyn Sink> = sink.clone();
        let mut input = items.into_iter();
        let mut index = 0u64;
        // The input is in memory: its chunks are registered and queued in
        // groups of SUBMIT_GROUP, one job-table lock per group; quick tasks
        // are packed, as in `map_chunked`.
        let mut group = Vec::with_capacity(SUBMIT_GROUP);
        let mut size = ChunkSize::exactly(chunksize);
        loop {
            let chunk = next_chunk(sh, &fns, &mut input, size);
            let last = chunk.is_none();
            let submitted = match chunk {
                Some(Chunk::Ready { id, record, items }) => {
                    sink.state.lock().chunks.push(MapChunk { id, items, results: None });
                    index += 1;
                    group.push((id, record, index - 1));
                    if group.len() < SUBMIT_GROUP {
                        Ok(())
                    } else {
                        size = chunk_size(sh, chunksize);
                        sh.submit_many(&mut group, &as_sink)
                    }
                }
                None => sh.submit_many(&mut group, &as_sink),
                Some(Chunk::Bad { error, .. } | Chunk::Panicked { error }) => Err(error),
            };
            if let Err(e) = submitted {
                for (_, record, _) in group.drain(..) {
                    record.undo.run();
                }
                sink.give_up(sh);
                return Err(e);
            }
            if last {
                break;
            }
        }
        sink.seal();
        Ok(AsyncResult { cell, _r: PhantomData })
    }

    fn imap_with<A, R, I>(
        &self,
        f: impl TaskFn<A, R>,
        items: I,
        chunksize: usize,
        unordered: bool,
    ) -> Result<Imap<R, I::IntoIter>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A>,
    {
        check_chunksize(chunksize)?;
        let sh = self.engine.shared();
        sh.check_running()?;
        let window = (self.processes() as u64 * 8).max(32);
        Ok(Imap::new(sh.clone(), task_fns(&f)?, items.into_iter(), chunksize, window, unordered))
    }

    /// A lazy, ordered iterator over `f` applied to each item (Python:
    /// `imap` with chunksize 1; [`imap_chunked`](Pool::imap_chunked) sets
    /// it). It reads `items` as it goes, keeping a
    /// bounded window of tasks in the pool (it does not read the whole
    /// input first, unlike Python's), and yields each result, or its
    /// error, in input order. Dropping it cancels what has not started.
    /// If `items` panics, the iterator yields
    /// `Err(TaskError::Failed(Error::InputPanicked { .. }))` after the
    /// results of the chunks read before, and ends (Python raises the
    /// iterator's exception from `next()`).
    ///
    /// # Examples
    ///
    /// ```
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    /// let pool = shmproc::Pool::new(2)?;
    /// let mut total = 0;
    /// for r in pool.imap(square, 0..1_000_000_000u64)?.take(10) {
    ///     total += r?; // an endless input is fine: it is read lazily
    /// }
    /// assert_eq!(total, 285);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::PoolClosed`]; each item's own error in the iterator.
    pub fn imap<A, R, I>(&self, f: impl TaskFn<A, R>, items: I) -> Result<Imap<R, I::IntoIter>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A>,
    {
        self.imap_with(f, items, 1, false)
    }

    /// As [`imap`](Pool::imap), sending the items to the workers in chunks
    /// of `chunksize` (Python: `imap(f, items, chunksize)`); the results
    /// still come one by one, in input order.
    ///
    /// # Examples
    ///
    /// ```
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    /// let pool = shmproc::Pool::new(2)?;
    /// let mut it = pool.imap_chunked(square, 0..1000, 100)?;
    /// assert_eq!(it.next().transpose()?, Some(0));
    /// assert_eq!(it.nth(9).transpose()?, Some(100));
    /// assert_eq!(it.count(), 989);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a `chunksize` of 0 (Python:
    /// `ValueError`); the others as for [`imap`](Pool::imap).
    pub fn imap_chunked<A, R, I>(
        &self,
        f: impl TaskFn<A, R>,
        items: I,
        chunksize: usize,
    ) -> Result<Imap<R, I::IntoIter>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A>,
    {
        self.imap_with(f, items, chunksize, false)
    }

    /// As [`imap`](Pool::imap), yielding results in completion order.
    ///
    /// # Examples
    ///
    /// ```
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    /// let pool = shmproc::Pool::new(2)?;
    /// let mut got: Vec<u64> = pool.imap_unordered(square, 0..5)?.collect::<Result<_, _>>()?;
    /// got.sort();
    /// assert_eq!(got, [0, 1, 4, 9, 16]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`imap`](Pool::imap).
    pub fn imap_unordered<A, R, I>(&self, f: impl TaskFn<A, R>, items: I) -> Result<Imap<R, I::IntoIter>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A>,
    {
        self.imap_with(f, items, 1, true)
    }

    /// As [`imap_unordered`](Pool::imap_unordered) in chunks of
    /// `chunksize` (Python: `imap_unordered(f, items, chunksize)`): the
    /// chunks come in completion order, the items of a chunk in order.
    ///
    /// # Examples
    ///
    /// ```
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    /// let pool = shmproc::Pool::new(2)?;
    /// let mut got: Vec<u64> = pool.imap_unordered_chunked(square, 0..100, 10)?.collect::<Result<_, _>>()?;
    /// got.sort();
    /// assert_eq!(got, (0..100).map(square).collect::<Vec<_>>());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`imap_chunked`](Pool::imap_chunked).
    pub fn imap_unordered_chunked<A, R, I>(
        &self,
        f: impl TaskFn<A, R>,
        items: I,
        chunksize: usize,
    ) -> Result<Imap<R, I::IntoIter>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
        I: IntoIterator<Item = A>,
    {
        self.imap_with(f, items, chunksize, true)
    }

    /// Accepts no more tasks; those submitted still run. Then
    /// [`join`](Pool::join) waits for them and for the workers to exit.
    ///
    /// # Examples
    ///
    /// ```
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    /// let pool = shmproc::Pool::new(2)?;
    /// let h = pool.apply_async(square, 5)?;
    /// pool.close();
    /// assert!(matches!(pool.apply_async(square, 6), Err(shmproc::Error::PoolClosed)));
    /// pool.join()?;
    /// assert_eq!(h.get()?, 25);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn close(&self) {
        self.engine.close();
    }

    /// Waits until every submitted task is done and every worker has
    /// exited (after [`close`](Pool::close) or [`terminate`](Pool::terminate)).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmproc::PoolJoinError;
    /// let pool = shmproc::Pool::new(2)?;
    /// assert_eq!(pool.join(), Err(PoolJoinError::Running)); // not closed
    /// pool.close();
    /// pool.join()?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`PoolJoinError::Running`] if neither `close` nor `terminate` was
    /// called (Python: `ValueError`); [`PoolJoinError::InCallback`] from a
    /// result callback; [`PoolJoinError::Interrupted`] on Ctrl-C.
    pub fn join(&self) -> Result<(), PoolJoinError> {
        self.engine.join()
    }

    /// Kills the workers now; tasks not finished fail with
    /// [`TaskError::Cancelled`] (Python leaves their results pending forever).
    /// Dropping the pool does the same.
    ///
    /// # Examples
    ///
    /// ```
    /// fn sleep_ms(ms: u64) {
    ///     std::thread::sleep(std::time::Duration::from_millis(ms))
    /// }
    /// let pool = shmproc::Pool::new(1)?;
    /// let h = pool.apply_async(sleep_ms, 60_000)?;
    /// pool.terminate()?;
    /// assert!(matches!(h.get(), Err(shmproc::TaskError::Cancelled)));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// None today; the `Result` leaves room for reporting workers that
    /// could not be reaped.
    pub fn terminate(&self) -> Result<()> {
        self.engine.terminate(Failure::Cancelled);
        Ok(())
    }
}

/// The pending result of [`Pool::apply_async`] (Python: `AsyncResult`).
/// A cheap `Clone` handle.
///
/// Dropping it does not cancel the task: the task runs to its end and the
/// callbacks of [`apply_async_with`](Pool::apply_async_with) still run;
/// only the result is no longer reachable.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// fn slow_square(x: u64) -> u64 {
///     std::thread::sleep(Duration::from_millis(50));
///     x * x
/// }
/// let pool = shmproc::Pool::new(1)?;
/// let h = pool.apply_async(slow_square, 9)?;
/// h.wait();
/// assert!(h.ready());
/// assert_eq!(h.successful(), Some(true));
/// assert_eq!(h.get()?, 81);
/// # Ok::<(), shmproc::Error>(())
/// ```
pub struct AsyncResult<R> {
    cell: Arc<Cell>,
    _r: PhantomData<fn() -> R>,
}

impl<R> Clone for AsyncResult<R> {
    fn clone(&self) -> Self {
        AsyncResult { cell: self.cell.clone(), _r: PhantomData }
    }
}

impl<R> std::fmt::Debug for AsyncResult<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncResult").field("ready", &self.ready()).finish()
    }
}

impl<R: DeserializeOwned> AsyncResult<R> {
    /// Waits for the result (it may be asked for again).
    ///
    /// # Examples
    ///
    /// ```
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    /// let pool = shmproc::Pool::new(1)?;
    /// let h = pool.apply_async(square, 3)?;
    /// assert_eq!(h.get()?, 9);
    /// assert_eq!(h.get()?, 9);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`TaskError::Panicked`] (the worker lives on),
    /// [`TaskError::WorkerDied`] (the worker was killed or exited mid-task;
    /// it was replaced), [`TaskError::TaskTimedOut`],
    /// [`TaskError::Cancelled`] (the pool was terminated first),
    /// [`TaskError::BrokenPool`], [`TaskError::CallbackPanicked`],
    /// [`TaskError::Interrupted`] (Ctrl-C), [`TaskError::Failed`] with
    /// [`Error::Codec`] (the argument did not decode or the result did not
    /// encode in the worker, or the result did not decode here).
    pub fn get(&self) -> Result<R, TaskError> {
        self.cell.wait(None);
        self.cell.value()
    }

    /// As [`get`](AsyncResult::get), waiting at most `timeout`
    /// (`Duration::MAX`: no limit): [`TaskTimeoutError::Timeout`] if the
    /// task is not done then (it goes on). Python: `get(timeout)`.
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
    /// let pool = shmproc::Pool::new(1)?;
    /// let h = pool.apply_async(sleep_ms, 300)?;
    /// assert!(matches!(h.get_timeout(Duration::ZERO), Err(TaskTimeoutError::Timeout)));
    /// assert_eq!(h.get_timeout(Duration::from_secs(30))?, 300);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`TaskTimeoutError::Timeout`]; the others as for
    /// [`get`](AsyncResult::get).
    pub fn get_timeout(&self, timeout: Duration) -> Result<R, TaskTimeoutError> {
        self.cell.value_until(deadline_after(timeout))
    }

    /// As [`get_timeout`](AsyncResult::get_timeout), waiting until the
    /// instant `deadline`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    /// let pool = shmproc::Pool::new(1)?;
    /// let h = pool.apply_async(square, 3)?;
    /// assert_eq!(h.get_deadline(Instant::now() + Duration::from_secs(30))?, 9);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`get_timeout`](AsyncResult::get_timeout).
    pub fn get_deadline(&self, deadline: Instant) -> Result<R, TaskTimeoutError> {
        self.cell.value_until(Some(deadline))
    }
}

impl<R> AsyncResult<R> {
    /// Whether the task is done (successfully or not).
    ///
    /// # Examples
    ///
    /// ```
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    /// let pool = shmproc::Pool::new(1)?;
    /// let h = pool.apply_async(square, 3)?;
    /// h.wait();
    /// assert!(h.ready());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn ready(&self) -> bool {
        self.cell.is_done()
    }

    /// Waits until the task is done (it always ends: a dead worker, a
    /// terminated or dropped pool fail it).
    ///
    /// # Examples
    ///
    /// ```
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    /// let pool = shmproc::Pool::new(1)?;
    /// let h = pool.apply_async(square, 3)?;
    /// h.wait();
    /// assert!(h.ready());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn wait(&self) {
        self.cell.wait(None);
    }

    /// Waits at most `timeout` (`Duration::MAX`: no limit) until the task
    /// is done; [`TimedOut`] if it is not (Python: `wait(timeout)`, after
    /// which one asks `ready()`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    /// let pool = shmproc::Pool::new(1)?;
    /// let h = pool.apply_async(square, 3)?;
    /// h.wait_timeout(Duration::from_secs(30))?;
    /// assert!(h.ready());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`TimedOut`] if the task was not done in time (it goes on).
    pub fn wait_timeout(&self, timeout: Duration) -> Result<(), TimedOut> {
        if self.cell.wait(deadline_after(timeout)) { Ok(()) } else { Err(TimedOut) }
    }

    /// As [`wait_timeout`](AsyncResult::wait_timeout), waiting until the
    /// instant `deadline`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// fn sleep_ms(ms: u64) {
    ///     std::thread::sleep(Duration::from_millis(ms))
    /// }
    /// let pool = shmproc::Pool::new(1)?;
    /// let h = pool.apply_async(sleep_ms, 60_000)?;
    /// assert_eq!(h.wait_deadline(Instant::now()), Err(shmproc::TimedOut));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`wait_timeout`](AsyncResult::wait_timeout).
    pub fn wait_deadline(&self, deadline: Instant) -> Result<(), TimedOut> {
        if self.cell.wait(Some(deadline)) { Ok(()) } else { Err(TimedOut) }
    }

    /// Whether the task completed without error; `None` while it runs
    /// (Python raises `ValueError` then).
    ///
    /// # Examples
    ///
    /// ```
    /// fn fail(_: ()) {
    ///     panic!("no")
    /// }
    /// let pool = shmproc::Pool::new(1)?;
    /// let h = pool.apply_async(fail, ())?;
    /// h.wait();
    /// assert_eq!(h.successful(), Some(false));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn successful(&self) -> Option<bool> {
        self.cell.with_outcome(|o| o.map(Result::is_ok))
    }
}

/// `h.await` gives what [`get`](AsyncResult::get) gives, without blocking
/// the thread: the future is woken by the pool's supervisor thread when
/// the task completes.
///
/// # Examples
///
/// ```
/// fn square(x: u64) -> u64 {
///     x * x
/// }
/// let pool = shmproc::Pool::new(1)?;
/// let h = pool.apply_async(square, 9)?;
/// assert_eq!(futures::executor::block_on(async { h.await })?, 81);
/// # Ok::<(), shmproc::Error>(())
/// ```
#[cfg(feature = "async")]
impl<R: DeserializeOwned> std::future::IntoFuture for AsyncResult<R> {
    type Output = Result<R, TaskError>;
    type IntoFuture = AsyncResultAwait<R>;

    fn into_future(self) -> AsyncResultAwait<R> {
        AsyncResultAwait { inner: CellAwait::new(self.cell), _r: PhantomData }
    }
}

/// `(&h).await` gives what [`get`](AsyncResult::get) gives and keeps the
/// handle, so the result may be awaited (or asked for) again.
///
/// # Examples
///
/// ```
/// fn square(x: u64) -> u64 {
///     x * x
/// }
/// let pool = shmproc::Pool::new(1)?;
/// let h = pool.apply_async(square, 4)?;
/// futures::executor::block_on(async {
///     assert_eq!((&h).await?, 16);
///     assert_eq!((&h).await?, 16);
///     Ok::<(), shmproc::TaskError>(())
/// })?;
/// assert!(h.ready());
/// # Ok::<(), shmproc::Error>(())
/// ```
#[cfg(feature = "async")]
impl<R: DeserializeOwned> std::future::IntoFuture for &AsyncResult<R> {
    type Output = Result<R, TaskError>;
    type IntoFuture = AsyncResultAwait<R>;

    fn into_future(self) -> AsyncResultAwait<R> {
        self.clone().into_future()
    }
}

/// The awaiting of an [`AsyncResult`]: what `h.await` and `(&h).await` run
/// (through [`IntoFuture`](std::future::IntoFuture)). Its output is
/// [`get`](AsyncResult::get)'s, `Result<R, TaskError>`; it is ready once
/// the task is done, and its poll never blocks the thread (the pool's
/// supervisor thread wakes it). It is `Send` and `Unpin`.
///
/// A SIGINT while only futures are pending (no thread blocked in a pool
/// call) ends the program as it would without pools.
///
/// # Cancellation safety
///
/// Dropping it while pending only forgets its waker. The task goes on, as
/// when an [`AsyncResult`] is dropped, and its result may be awaited
/// again through another handle.
///
/// # Examples
///
/// ```
/// use std::future::IntoFuture;
/// fn square(x: u64) -> u64 {
///     x * x
/// }
/// let pool = shmproc::Pool::new(1)?;
/// let h = pool.apply_async(square, 3)?;
/// let waiting: shmproc::AsyncResultAwait<u64> = (&h).into_future();
/// assert_eq!(futures::executor::block_on(waiting)?, 9);
/// # Ok::<(), shmproc::Error>(())
/// ```
#[cfg(feature = "async")]
#[doc(alias = "get_async")]
#[must_use = "futures do nothing unless awaited"]
pub struct AsyncResultAwait<R> {
    inner: CellAwait,
    _r: PhantomData<fn() -> R>,
}

#[cfg(feature = "async")]
impl<R> std::fmt::Debug for AsyncResultAwait<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncResultAwait").finish_non_exhaustive()
    }
}

#[cfg(feature = "async")]
impl<R: DeserializeOwned> std::future::Future for AsyncResultAwait<R> {
    type Output = Result<R, TaskError>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        self.get_mut().inner.poll_value(cx)
    }
}
