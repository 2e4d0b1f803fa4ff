//! The worker engine behind `Pool` and `ProcessPoolExecutor`: the two
//! queues, the worker table, the job table, and the supervisor thread.
//! See the module docs of `pool` for the design.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::channel::lane::{Stop, Wait};
use crate::channel::queue::Queue;
use crate::error::{Error, Result};
use crate::pool::error::PoolJoinError;
use crate::pool::table::{self, Table};
use crate::pool::wire::{self, Failure, JobOutcome, TaskRecord};
use crate::pool::worker::{ResultRecords, TaskRecords, WorkerBase};
use crate::process::forkserver::PrivateServer;
use crate::process::handle::{Process, ProcessBuilder};
use crate::process::start::StartMethod;
use crate::shm::fnref::FnRef;
use crate::shm::handoff::Received;
use crate::sys::signal::{self, InterruptibleWait, SigintHook};

/// Where a job's outcome goes: a result handle, a map's collector, ...
pub(crate) trait Sink: Send + Sync {
    /// Delivers the outcome of chunk `chunk` (called once per job: the
    /// first outcome wins, later ones are dropped by the job table).
    fn deliver(&self, chunk: u64, outcome: JobOutcome);

    /// Delivers several chunks' outcomes (taken from `outcomes`) as
    /// [`deliver`](Sink::deliver) does one by one; a sink that can takes
    /// them under one lock and wakes its reader once.
    fn deliver_many(&self, outcomes: &mut dyn Iterator<Item = (u64, JobOutcome)>) {
        for (chunk, outcome) in outcomes {
            self.deliver(chunk, outcome);
        }
    }
}

/// Starts one worker process: made by the builder, which knows the
/// initializer's argument type.
pub(crate) type Spawner = Arc<dyn Fn(ProcessBuilder, WorkerBase) -> Result<Process<()>> + Send + Sync>;

/// What the engine needs from a builder.
pub(crate) struct Config {
    pub(crate) processes: usize,
    pub(crate) method: StartMethod,
    pub(crate) max_tasks: u64,
    pub(crate) task_timeout: Option<Duration>,
    /// Executor semantics: a worker that dies abruptly breaks the pool.
    pub(crate) break_on_death: bool,
    pub(crate) spawner: Spawner,
    /// Worker names: `<prefix>-<n>`.
    pub(crate) prefix: &'static str,
    /// Executor semantics: workers start on demand (one per submission
    /// while none is idle, up to `processes`) instead of all at once.
    pub(crate) on_demand: bool,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("processes", &self.processes)
            .field("method", &self.method)
            .field("max_tasks", &self.max_tasks)
            .field("task_timeout", &self.task_timeout)
            .field("break_on_death", &self.break_on_death)
            .field("on_demand", &self.on_demand)
            .finish_non_exhaustive()
    }
}

/// The pool's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Accepting tasks.
    Running,
    /// `close()`d: no new tasks; the workers finish the queued ones.
    Closed,
    /// Closed, every job done, the workers told to stop.
    Stopping,
    /// Terminate requested: workers are being killed.
    Terminating,
    /// The supervisor is done; no worker is left.
    Finished,
}

/// How `terminate_workers` and `kill_workers` stop the workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Force {
    /// SIGTERM.
    Terminate,
    /// SIGKILL.
    Kill,
}

struct JobEntry {
    sink: Arc<dyn Sink>,
    chunk: u64,
}

/// Hashes job ids (sequential `u64`s, never chosen by a peer) with one
/// multiplication: SipHash's DoS resistance buys nothing here and costs
/// two table operations per task.
#[derive(Default)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = id.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type Jobs = HashMap<u64, JobEntry, std::hash::BuildHasherDefault<IdHasher>>;

struct State {
    phase: Phase,
    jobs: Jobs,
    /// Jobs given up (abandoned or cancelled) while a worker ran them:
    /// they occupy that worker until it answers or dies. Pruned to the
    /// jobs still in a slot at each housekeeping.
    abandoned: std::collections::HashSet<u64>,
    /// Why the pool cannot run tasks any more (new submissions fail with it).
    broken: Option<Failure>,
    /// What pending jobs fail with when terminating.
    terminate: Option<Failure>,
    /// Workers to kill on a user's behalf: (slot, job it must still hold, failure).
    kills: Vec<(usize, u64, Failure)>,
    /// `shutdown(wait = false)`: the supervisor finishes on its own.
    detached: bool,
    /// How many worker slots (`0..wanted`) are kept running: every slot
    /// for a `Pool`; for an executor (`on_demand`), one more per
    /// submission that finds no idle worker, up to `processes`.
    wanted: usize,
    /// `terminate_workers`/`kill_workers`: the signal the workers get, and
    /// the jobs they held fail with `WorkerDied` (not `terminate`).
    force: Option<Force>,
}

impl State {
    /// Why a submission is refused now, if it is.
    fn refusal(&self) -> Option<Error> {
        if let Some(f) = &self.broken {
            return Some(f.error());
        }
        if self.terminate == Some(Failure::Interrupted) {
            return Some(Error::Interrupted);
        }
        (self.phase != Phase::Running).then_some(Error::PoolClosed)
    }
}

/// What user threads and the supervisor share.
pub(crate) struct Shared {
    tasks: Queue<TaskRecords>,
    results: Queue<ResultRecords>,
    table: Table,
    anchor: FnRef,
    state: Mutex<State>,
    /// Notified (with `state` locked) when the phase becomes `Finished`.
    finished: Condvar,
    /// Task records that did not fit in the task queue yet, in order.
    backlog: Mutex<VecDeque<TaskRecord>>,
    /// Whether `backlog` may be non-empty (a hint for the supervisor).
    backlogged: AtomicBool,
    next_id: AtomicU64,
    /// The pids of the live workers (started and not reaped), published
    /// by the supervisor.
    pids: Mutex<Vec<u32>>,
    config: Config,
    _sigint: Option<SigintHook>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.state.lock();
        f.debug_struct("Engine")
            .field("config", &self.config)
            .field("phase", &st.phase)
            .field("jobs", &st.jobs.len())
            .finish_non_exhaustive()
    }
}

/// The engine: shared state plus the supervisor thread.
#[derive(Debug)]
pub(crate) struct Engine {
    shared: Arc<Shared>,
    supervisor: Mutex<Option<JoinHandle<()>>>,
    /// The supervisor thread (callbacks run on it: it must not wait for
    /// itself).
    supervisor_id: std::thread::ThreadId,
}

thread_local! {
    /// Whether this thread is a pool's supervisor (callbacks run on it).
    static ON_SUPERVISOR: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// How long the supervisor waits for results before housekeeping while
/// jobs are outstanding or the pool is closing; and while idle.
const TICK_BUSY: Duration = Duration::from_millis(10);
const TICK_IDLE: Duration = Duration::from_millis(100);
/// Results handled per wake-up before housekeeping gets a turn.
const BATCH: usize = 4096;
/// Outcomes routed per job-table lock (`Supervisor::deliver_ready`): a
/// waiter gets its result at most this many records late.
const DELIVER_BATCH: usize = 64;
/// Task records queued beyond which single submissions are gathered in
/// the backlog and put together (`Shared::enqueue`) ...
const STAGE_AFTER: usize = 16;
/// ... this many at a time.
const STAGE_FLUSH: usize = 64;
/// Default task-queue ring (bytes).
const TASK_RING: usize = 1 << 20;
/// Default result-queue ring (bytes).
const RESULT_RING: usize = 1 << 20;

fn anchor_fn(_: ()) {}

impl Engine {
    /// Makes the shared objects, starts the workers and the supervisor.
    pub(crate) fn start(config: Config) -> Result<Engine> {
        if config.processes == 0 {
            return Err(Error::InvalidArgument { what: "a pool needs at least one process" });
        }
        let tasks = Queue::<TaskRecords>::builder().capacity_bytes(TASK_RING).build()?;
        let results = Queue::<ResultRecords>::builder().capacity_bytes(RESULT_RING).build()?;
        // The parent is the task queue's producer and the result queue's
        // consumer (and a producer of wake-ups): workers see the parent's
        // death as `Disconnected`.
        tasks.register_producer()?;
        results.register_consumer()?;
        results.register_producer()?;
        let table = Table::new(config.processes)?;
        let f: fn(()) = anchor_fn;
        let anchor = FnRef::of(f).map_err(|e| Error::os("stat /proc/self/exe", e))?;
        let sigint = SigintHook::acquire().ok();
        let interrupts = signal::interrupts();
        // Fork: a private fork server, forked now while this process may
        // still fork, starts every worker (and replacement) later.
        let server = match config.method {
            StartMethod::Fork => Some(Arc::new(PrivateServer::fork()?)),
            _ => None,
        };
        let shared = Arc::new(Shared {
            tasks,
            results,
            table,
            anchor,
            state: Mutex::new(State {
                phase: Phase::Running,
                jobs: Jobs::default(),
                abandoned: std::collections::HashSet::new(),
                broken: None,
                terminate: None,
                kills: Vec::new(),
                detached: false,
                wanted: if config.on_demand { 0 } else { config.processes },
                force: None,
            }),
            finished: Condvar::new(),
            backlog: Mutex::new(VecDeque::new()),
            backlogged: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
            pids: Mutex::new(Vec::new()),
            config,
            _sigint: sigint,
        });
        let mut sup = Supervisor {
            workers: (0..shared.config.processes).map(|_| None).collect(),
            shared: shared.clone(),
            server,
            interrupts,
            buf: Vec::new(),
            fds: Vec::new(),
            more: Vec::new(),
            more_ends: Vec::new(),
            poke: false,
            ready: Vec::new(),
            routed: Vec::new(),
            spawn_error: None,
        };
        if !shared.config.on_demand {
            for i in 0..shared.config.processes {
                let w = sup.spawn(i)?;
                sup.workers[i] = Some(w);
            }
            sup.publish();
        }
        // If the thread cannot start, the supervisor is dropped with the
        // closure: its drop kills the workers.
        let handle = std::thread::Builder::new()
            .name("shmproc-pool".into())
            .spawn(move || sup.run())
            .map_err(|e| Error::os("spawn the pool's supervisor thread", e))?;
        let supervisor_id = handle.thread().id();
        Ok(Engine { shared, supervisor: Mutex::new(Some(handle)), supervisor_id })
    }

    /// The state shared with handles.
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops accepting tasks; the queued ones still run.
    pub(crate) fn close(&self) {
        let mut st = self.shared.state.lock();
        if st.phase == Phase::Running {
            st.phase = Phase::Closed;
        }
        drop(st);
        self.shared.wake();
    }

    /// Kills the workers now; pending jobs fail with `failure`.
    pub(crate) fn terminate(&self, failure: Failure) {
        self.shared.terminate(failure);
        self.join_thread();
    }

    /// Waits until the pool finished (after `close` or `terminate`).
    ///
    /// # Errors
    /// [`PoolJoinError::Running`] if the pool is still running,
    /// [`PoolJoinError::InCallback`] from the supervisor thread,
    /// [`PoolJoinError::Interrupted`] on SIGINT.
    pub(crate) fn join(&self) -> std::result::Result<(), PoolJoinError> {
        {
            let st = self.shared.state.lock();
            if st.phase == Phase::Running {
                return Err(PoolJoinError::Running);
            }
        }
        if std::thread::current().id() == self.supervisor_id {
            return Err(PoolJoinError::InCallback);
        }
        let _w = InterruptibleWait::new();
        {
            let mut st = self.shared.state.lock();
            while st.phase != Phase::Finished {
                self.shared.finished.wait(&mut st);
            }
            if st.terminate == Some(Failure::Interrupted) {
                drop(st);
                self.join_thread();
                return Err(PoolJoinError::Interrupted);
            }
        }
        self.join_thread();
        Ok(())
    }

    /// Lets the supervisor finish on its own (`shutdown(wait = false)`).
    pub(crate) fn detach(&self) {
        self.shared.state.lock().detached = true;
        self.supervisor.lock().take();
    }

    fn join_thread(&self) {
        if std::thread::current().id() == self.supervisor_id {
            // Dropped or terminated from a callback: the supervisor
            // finishes on its own after the callback returns.
            return;
        }
        let handle = self.supervisor.lock().take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let detached = {
            let mut st = self.shared.state.lock();
            // After `terminate_workers`, a worker that ignores SIGTERM
            // would hold the drop forever: dropping kills, as it always
            // does.
            if st.force == Some(Force::Terminate) {
                st.force = Some(Force::Kill);
            }
            st.detached
        };
        if !detached {
            self.terminate(Failure::Cancelled);
        }
    }
}

impl Shared {
    /// A fresh job id.
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Registers job `id` (whose task `record` is built) for `sink`, then
    /// queues the record.
    ///
    /// # Errors
    /// [`Error::PoolClosed`], [`Error::BrokenPool`], or the queue's error.
    pub(crate) fn submit(&self, id: u64, record: TaskRecord, sink: Arc<dyn Sink>, chunk: u64) -> Result<()> {
        let grow = {
            let mut st = self.state.lock();
            if let Some(e) = st.refusal() {
                drop(st);
                record.undo.run();
                return Err(self.settled(e));
            }
            // Before the record is visible: a fast result must find its job.
            st.jobs.insert(id, JobEntry { sink, chunk });
            // On demand: every outstanding job beyond the workers wanted
            // so far means no worker is idle for this one. A job nobody
            // waits for any more (abandoned) still occupies its worker
            // while it runs: those count too (a look at each slot, only
            // while workers may still be added). A finished job whose
            // worker has not cleared its slot yet does not: it is neither
            // in the table nor given up.
            let grow = self.config.on_demand && st.wanted < self.config.processes && {
                let abandoned_running = if st.abandoned.is_empty() {
                    0
                } else {
                    self.table
                        .slots()
                        .iter()
                        .filter(|slot| st.abandoned.contains(&slot[table::JOB].load(Ordering::SeqCst)))
                        .count()
                };
                st.jobs.len() + abandoned_running > st.wanted
            };
            if grow {
                st.wanted += 1;
            }
            grow
        };
        if let Err(e) = self.enqueue(record) {
            self.state.lock().jobs.remove(&id);
            return Err(e);
        }
        if grow {
            // The supervisor starts the worker at its next check: now.
            self.wake();
        }
        Ok(())
    }

    /// [`submit`](Shared::submit) for many jobs of one `sink`: `jobs`
    /// (`(id, record, chunk)`, drained) are registered under one lock of
    /// the job table, then queued in order. On error no job of the batch
    /// that was not queued stays registered and their records are given
    /// back; the ones queued before it run (the caller abandons them).
    ///
    /// # Errors
    /// [`Error::PoolClosed`], [`Error::BrokenPool`], or the queue's error.
    pub(crate) fn submit_many(&self, jobs: &mut Vec<(u64, TaskRecord, u64)>, sink: &Arc<dyn Sink>) -> Result<()> {
        if self.config.on_demand {
            // Workers on demand are counted per submission.
            for (id, record, chunk) in jobs.drain(..) {
                self.submit(id, record, sink.clone(), chunk)?;
            }
            return Ok(());
        }
        {
            let mut st = self.state.lock();
            if let Some(e) = st.refusal() {
                drop(st);
                for (_, record, _) in jobs.drain(..) {
                    record.undo.run();
                }
                return Err(self.settled(e));
            }
            // Before the records are visible: a fast result must find its job.
            for (id, _, chunk) in jobs.iter() {
                st.jobs.insert(*id, JobEntry { sink: sink.clone(), chunk: *chunk });
            }
        }
        if let Err(e) = self.enqueue_many(jobs) {
            let mut st = self.state.lock();
            for (id, _, _) in jobs.iter() {
                st.jobs.remove(id);
            }
            drop(st);
            for (_, record, _) in jobs.drain(..) {
                discard_spilled(&record.bytes);
                record.undo.run();
            }
            return Err(e);
        }
        Ok(())
    }

    /// Spills `record` if it is too large to travel inline.
    fn spill_if_large(&self, record: &mut TaskRecord) -> Result<()> {
        let max = if record.fds.is_empty() { self.tasks.max_inline() } else { self.tasks.max_inline_parcel() };
        if record.bytes.len() > max {
            let reference = crate::channel::spill::spill_out(&record.bytes, self.tasks.spill_owner())?;
            record.bytes = wire::spilled(wire::job_id(&record.bytes), &reference);
        }
        Ok(())
    }

    /// Puts a prefix of the records `record(0..len)` into the task queue,
    /// never waiting: the runs without descriptors together (one lock hold
    /// and one wake-up per run), the others, and a run of one, as they are.
    /// How many were put,
    /// and the error of the next one if the queue refused it for good (not
    /// for want of room).
    fn put_prefix<'a>(&self, len: usize, record: impl Fn(usize) -> &'a TaskRecord) -> (usize, Option<Error>) {
        let mut put = 0;
        let (mut stage, mut ends) = (Vec::new(), Vec::new());
        while put < len {
            let plain = (put..len).find(|&i| !record(i).fds.is_empty()).unwrap_or(len) - put;
            let got = if plain > 1 {
                stage.clear();
                ends.clear();
                for i in put..put + plain {
                    stage.extend_from_slice(&record(i).bytes);
                    ends.push(stage.len());
                }
                self.tasks.put_raw_many(&stage, 0, &ends)
            } else {
                let r = record(put);
                self.tasks.put_raw_parcel(&r.bytes, &r.fds, Wait::No).map(|()| 1)
            };
            match got {
                Ok(n) => {
                    put += n;
                    if n < plain.max(1) {
                        break; // the queue is full
                    }
                }
                Err(Stop::Failed(e)) => return (put, Some(e)),
                Err(_) => break,
            }
        }
        (put, None)
    }

    /// [`enqueue`](Self::enqueue) for the records of `jobs`, in order
    /// ([`put_prefix`](Self::put_prefix)); what does not fit goes to the
    /// backlog. `jobs` is emptied, except on error: then it holds the
    /// records neither queued nor backlogged (the caller gives them back,
    /// spilled ones included).
    fn enqueue_many(&self, jobs: &mut Vec<(u64, TaskRecord, u64)>) -> Result<()> {
        for (_, record, _) in jobs.iter_mut() {
            self.spill_if_large(record)?;
        }
        let mut backlog = self.backlog.lock();
        let (queued, error) = if backlog.is_empty() { self.put_prefix(jobs.len(), |i| &jobs[i].1) } else { (0, None) };
        for (_, record, _) in jobs.drain(..queued) {
            // Sent: the workers that take them own what they lent.
            wire::recycle(record.bytes);
        }
        if let Some(e) = error {
            return Err(e);
        }
        if !jobs.is_empty() {
            backlog.extend(jobs.drain(..).map(|(_, record, _)| record));
            self.backlogged.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Queues a task record (spilled if too large): into the task queue if
    /// it has room and nothing waits before it, else into the backlog that
    /// the supervisor feeds in. Never blocks on a full queue. On error
    /// what the record's encoding took is given back.
    ///
    /// While the queue holds [`STAGE_AFTER`] records or more (the workers
    /// have plenty to do), records are gathered in the backlog instead and
    /// put [`STAGE_FLUSH`] at a time (by this call, or by the supervisor
    /// after the next results): one lock hold and one wake-up for many
    /// `apply_async`s, where each would pay its own.
    fn enqueue(&self, mut record: TaskRecord) -> Result<()> {
        if let Err(e) = self.spill_if_large(&mut record) {
            record.undo.run();
            return Err(e);
        }
        let mut backlog = self.backlog.lock();
        if backlog.is_empty() && self.tasks.qsize() < STAGE_AFTER {
            match self.put_prefix(1, |_| &record) {
                // Sent: the worker that takes it owns what it lent.
                (1, _) => {
                    wire::recycle(record.bytes);
                    return Ok(());
                }
                (_, Some(e)) => {
                    discard_spilled(&record.bytes);
                    record.undo.run();
                    return Err(e);
                }
                _ => {}
            }
        }
        backlog.push_back(record);
        self.backlogged.store(true, Ordering::Relaxed);
        if backlog.len() >= STAGE_FLUSH {
            // A record the queue refuses stays for the supervisor, which
            // fails its job (its callbacks must not run here).
            self.put_backlog(&mut backlog);
        }
        Ok(())
    }

    /// Puts what fits from the front of `backlog` (`put_prefix`); the
    /// error of the next record if the queue refused it for good (it stays
    /// at the front).
    fn put_backlog(&self, backlog: &mut VecDeque<TaskRecord>) -> Option<Error> {
        let (put, error) = self.put_prefix(backlog.len(), |i| &backlog[i]);
        for record in backlog.drain(..put) {
            // Sent: the workers that take them own what they lent.
            wire::recycle(record.bytes);
        }
        error
    }

    /// Puts what the backlog holds (as much as fits), from the supervisor:
    /// a record the queue refuses for good fails its job.
    fn feed(&self) {
        let mut refused = Vec::new();
        {
            let mut backlog = self.backlog.lock();
            while let Some(e) = self.put_backlog(&mut backlog) {
                if let Some(rec) = backlog.pop_front() {
                    discard_spilled(&rec.bytes);
                    rec.undo.run();
                    refused.push((wire::job_id(&rec.bytes), e));
                }
            }
            if backlog.is_empty() {
                self.backlogged.store(false, Ordering::Relaxed);
            }
        }
        // With the backlog unlocked: a callback may submit.
        for (id, e) in refused {
            self.deliver(id, JobOutcome::Failed(Failure::TaskError(e.to_string())));
        }
    }

    /// Wakes the supervisor (a `WAKE` record on the result queue).
    fn wake(&self) {
        let _ = self.results.put_raw(&wire::control(wire::WAKE), Wait::No);
    }

    /// Asks for termination: the supervisor kills the workers, reaps them,
    /// and then fails the pending jobs with `failure` (so a waiter that
    /// wakes with it finds no worker left).
    pub(crate) fn terminate(&self, failure: Failure) {
        {
            let mut st = self.state.lock();
            if matches!(st.phase, Phase::Finished) {
                return;
            }
            if st.terminate.is_none() {
                st.terminate = Some(failure);
            }
            st.phase = Phase::Terminating;
        }
        self.wake();
    }

    /// `terminate_workers`/`kill_workers`: stops accepting tasks, cancels
    /// those not started, and has the supervisor signal every worker
    /// (`how`), reap it and fail the job it held with `WorkerDied`. Never
    /// waits. A later `Kill` upgrades an earlier `Terminate`.
    pub(crate) fn force_stop(&self, how: Force) {
        {
            let mut st = self.state.lock();
            if st.phase == Phase::Finished {
                return;
            }
            if st.phase == Phase::Running {
                st.phase = Phase::Closed;
            }
        }
        self.cancel_pending();
        {
            let mut st = self.state.lock();
            if st.phase == Phase::Finished {
                return;
            }
            if how == Force::Kill || st.force.is_none() {
                st.force = Some(how);
            }
            if st.terminate.is_none() {
                st.terminate = Some(Failure::Cancelled);
            }
            st.phase = Phase::Terminating;
        }
        self.wake();
    }

    /// The pids of the live workers (started and not yet reaped).
    pub(crate) fn worker_pids(&self) -> Vec<u32> {
        self.pids.lock().clone()
    }

    /// Cancels job `id` if it has not finished: a queued job is skipped by
    /// the worker that takes it, a running one has its worker killed (and
    /// replaced). The job's sink gets `Cancelled`. Returns whether it was
    /// cancelled.
    pub(crate) fn cancel(&self, id: u64) -> bool {
        let Some(entry) = self.state.lock().jobs.remove(&id) else { return false };
        // SeqCst: a Dekker pair with the worker (store entry, load slots
        // here; store slot, load entry there): see table.rs.
        self.table.cancel_entry(id).store(id, Ordering::SeqCst);
        if let Some(i) = self.slot_of(id) {
            let mut st = self.state.lock();
            st.kills.push((i, id, Failure::Cancelled));
            st.abandoned.insert(id);
            drop(st);
            self.wake();
        }
        entry.sink.deliver(entry.chunk, JobOutcome::Failed(Failure::Cancelled));
        true
    }

    /// Forgets jobs whose results nobody will read: queued ones are skipped
    /// by the workers, running ones finish (their results are dropped).
    pub(crate) fn abandon(&self, ids: impl IntoIterator<Item = u64>) {
        let mut st = self.state.lock();
        for id in ids {
            if st.jobs.remove(&id).is_some() {
                self.table.cancel_entry(id).store(id, Ordering::SeqCst);
                // Running: it occupies its worker until it answers (a
                // queued one is skipped: the worker sees the entry).
                if self.slot_of(id).is_some() {
                    st.abandoned.insert(id);
                }
            }
        }
    }

    /// Cancels every job that has not started (`shutdown(cancel_futures)`).
    pub(crate) fn cancel_pending(&self) {
        let ids: Vec<u64> = self.state.lock().jobs.keys().copied().collect();
        for id in ids {
            if self.slot_of(id).is_none() {
                self.cancel(id);
            }
        }
    }

    /// Empties slot `i` (its worker is gone or not started yet): the job it
    /// named in `JOB`, and those in `HELD` (0 where none).
    fn take_slot(&self, i: usize) -> (u64, [u64; table::HELD.end - table::HELD.start]) {
        let mut held = [0; table::HELD.end - table::HELD.start];
        let Some(slot) = self.table.slot(i) else { return (0, held) };
        for (id, word) in held.iter_mut().zip(&slot[table::HELD]) {
            *id = word.swap(0, Ordering::SeqCst);
        }
        (slot[table::JOB].swap(0, Ordering::SeqCst), held)
    }

    /// Whether every worker reports that its last tasks were quick (see
    /// `table::QUICK`): a `map` then packs several items into each task.
    /// Never with `maxtasksperchild`, which counts tasks: a worker must be
    /// replaced after that many of the chunks the caller asked for.
    pub(crate) fn tasks_quick(&self) -> bool {
        self.config.max_tasks == 0
            && self.table.slots().iter().all(|slot| slot[table::QUICK].load(Ordering::Relaxed) == 1)
    }

    /// The slot of the worker running job `id`, if one is.
    pub(crate) fn slot_of(&self, id: u64) -> Option<usize> {
        self.table.slots().iter().position(|s| s[table::JOB].load(Ordering::SeqCst) == id)
    }

    /// `e`, a refused submission's error; for a Ctrl-C, once the
    /// supervisor has terminated and reaped the workers (a caller that
    /// returns `Interrupted` finds no child of the pool left), unless this
    /// is the supervisor thread (a callback), which must not wait for
    /// itself.
    fn settled(&self, e: Error) -> Error {
        if matches!(e, Error::Interrupted) && !ON_SUPERVISOR.get() {
            let mut st = self.state.lock();
            while st.phase != Phase::Finished {
                self.finished.wait(&mut st);
            }
        }
        e
    }

    /// Whether the pool accepts tasks.
    pub(crate) fn check_running(&self) -> Result<()> {
        let refusal = self.state.lock().refusal();
        refusal.map_or(Ok(()), |e| Err(self.settled(e)))
    }

    /// The number of worker processes.
    pub(crate) fn processes(&self) -> usize {
        self.config.processes
    }

    /// Removes and returns job `id`'s entry (first outcome wins).
    fn take_job(&self, id: u64) -> Option<JobEntry> {
        self.state.lock().jobs.remove(&id)
    }

    fn deliver(&self, id: u64, outcome: JobOutcome) {
        if let Some(e) = self.take_job(id) {
            e.sink.deliver(e.chunk, outcome);
        }
    }

    /// Breaks the pool: new submissions fail with `failure`, pending jobs
    /// fail with it, and the supervisor terminates the workers.
    fn break_pool(&self, failure: Failure) {
        let jobs = {
            let mut st = self.state.lock();
            if st.broken.is_none() {
                st.broken = Some(failure.clone());
            }
            if st.terminate.is_none() {
                st.terminate = Some(failure.clone());
            }
            if st.phase != Phase::Finished {
                st.phase = Phase::Terminating;
            }
            std::mem::take(&mut st.jobs)
        };
        fail_all(jobs, &failure);
    }
}

fn fail_all(jobs: Jobs, failure: &Failure) {
    let mut jobs: Vec<_> = jobs.into_iter().collect();
    jobs.sort_by_key(|(id, _)| *id);
    for (_, e) in jobs {
        e.sink.deliver(e.chunk, JobOutcome::Failed(failure.clone()));
    }
}

/// A worker process as the supervisor sees it.
struct Worker {
    proc: Process<()>,
    /// The job seen in its slot and when it was first seen (task timeout).
    seen: Option<(u64, Instant)>,
    /// Why we killed it, and the job it held then.
    killed: Option<(u64, Failure)>,
    /// Whether a STOP record was queued for it.
    stop_sent: bool,
}

/// The supervisor thread's state.
struct Supervisor {
    shared: Arc<Shared>,
    workers: Vec<Option<Worker>>,
    server: Option<Arc<PrivateServer>>,
    interrupts: u32,
    buf: Vec<u8>,
    /// The descriptors that came with the record in `buf`.
    fds: Vec<std::os::fd::OwnedFd>,
    /// Plain records taken in one go (`take_queued`): their bytes, one
    /// after the other, and the end of each.
    more: Vec<u8>,
    more_ends: Vec<usize>,
    /// A WAKE record arrived: housekeeping now.
    poke: bool,
    /// Outcomes taken from the result queue, not yet delivered: routed in
    /// batches, one job-table lock per batch (`deliver_ready`).
    ready: Vec<(u64, JobOutcome)>,
    /// `deliver_ready`'s buffer: the entries found, with their outcomes.
    routed: Vec<(JobEntry, JobOutcome)>,
    /// The last failure to start a worker.
    spawn_error: Option<String>,
}

/// Counts the pool's workers for names.
static WORKER_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Supervisor {
    /// Publishes the pids of the live workers (`Shared::worker_pids`).
    fn publish(&self) {
        let pids = self.workers.iter().flatten().map(|w| w.proc.pid()).collect();
        *self.shared.pids.lock() = pids;
    }

    fn spawn(&self, i: usize) -> Result<Worker> {
        let sh = &self.shared;
        let n = WORKER_COUNTER.fetch_add(1, Ordering::Relaxed) + 1;
        let mut b =
            Process::builder().name(format!("{}-{n}", sh.config.prefix)).daemon(true).start_method(sh.config.method);
        if let Some(s) = &self.server {
            b = b.via_server(s.clone());
        }
        sh.take_slot(i);
        let base = WorkerBase {
            tasks: sh.tasks.clone(),
            results: sh.results.clone(),
            table: sh.table.clone(),
            slot: i as u32,
            anchor: sh.anchor,
            max_tasks: sh.config.max_tasks,
            batch: !sh.config.on_demand && sh.config.task_timeout.is_none(),
        };
        let proc = (sh.config.spawner)(b, base)?;
        Ok(Worker { proc, seen: None, killed: None, stop_sent: false })
    }

    fn run(mut self) {
        ON_SUPERVISOR.set(true);
        let mut last_check = Instant::now();
        loop {
            let busy = {
                let st = self.shared.state.lock();
                !st.jobs.is_empty() || st.phase != Phase::Running
            };
            let tick = if busy { TICK_BUSY } else { TICK_IDLE };
            let mut timed_out = false;
            match self.shared.results.get_raw_then(&mut self.buf, Wait::after(tick), &mut |_| {}, &mut self.fds) {
                Ok(()) => {
                    self.on_record();
                    let mut taken = 1;
                    while taken < BATCH {
                        match self.take_queued() {
                            0 => break,
                            n => taken += n,
                        }
                        if self.ready.len() >= DELIVER_BATCH {
                            self.deliver_ready();
                        }
                    }
                    self.deliver_ready();
                }
                Err(Stop::Failed(e)) => {
                    self.shared.break_pool(Failure::Broken(format!("the result queue failed: {e}")));
                }
                Err(_) => timed_out = true,
            }
            // Workers took tasks (they answered): make room for more now,
            // not at the next check.
            if self.shared.backlogged.load(Ordering::Relaxed) {
                self.feed_backlog();
            }
            let now = Instant::now();
            if timed_out || self.poke || now.duration_since(last_check) >= TICK_BUSY {
                last_check = now;
                if self.housekeeping() {
                    return;
                }
            }
        }
    }

    /// Takes the records queued now without waiting: the plain ones in
    /// one go (one lock hold), or else one record of another kind (a
    /// spilled result, one with descriptors); handles them. The number
    /// taken (0: none queued, or the queue's lock is held).
    fn take_queued(&mut self) -> usize {
        let (mut more, mut ends) = (std::mem::take(&mut self.more), std::mem::take(&mut self.more_ends));
        more.clear();
        ends.clear();
        let n = self.shared.results.get_raw_more(&mut more, &mut ends, DELIVER_BATCH, &mut |_| true).unwrap_or(0);
        let mut start = 0;
        for &end in &ends {
            self.on_bytes(&more[start..end], None);
            start = end;
        }
        (self.more, self.more_ends) = (more, ends);
        if n > 0 {
            return n;
        }
        match self.shared.results.get_raw_then(&mut self.buf, Wait::No, &mut |_| {}, &mut self.fds) {
            Ok(()) => {
                self.on_record();
                1
            }
            Err(_) => 0,
        }
    }

    /// Handles the record in `self.buf`.
    fn on_record(&mut self) {
        let rec = std::mem::take(&mut self.buf);
        let fds = Received::some(std::mem::take(&mut self.fds));
        self.on_bytes(&rec, fds);
        self.buf = rec;
    }

    /// Handles one record from the result queue (with the descriptors that
    /// came with it).
    fn on_bytes(&mut self, rec: &[u8], fds: Option<Received>) {
        let id = wire::job_id(rec);
        match wire::kind(rec) {
            Ok(wire::RESULT) => self.on_result(id, rec, fds),
            Ok(wire::SPILLED) => {
                let mut full = Vec::new();
                match crate::channel::spill::spill_in(wire::spill_reference(rec), &mut full) {
                    Ok(()) => self.on_result(id, &full, fds),
                    Err(e) => self.ready.push((
                        id,
                        JobOutcome::Failed(Failure::TaskError(format!("cannot read the spilled result: {e}"))),
                    )),
                }
            }
            Ok(wire::INIT_FAILED) => {
                let (pid, m) = wire::parse_init_failed(rec).unwrap_or((0, String::from("?")));
                // The results taken before it are delivered, not failed.
                self.deliver_ready();
                self.shared.break_pool(Failure::Broken(format!("worker pid {pid}: {m}")));
                self.poke = true;
            }
            Ok(wire::WAKE) => self.poke = true,
            _ => {
                if id != 0 {
                    self.ready.push((id, JobOutcome::Failed(Failure::TaskError("corrupt result record".into()))));
                }
            }
        }
    }

    fn on_result(&mut self, id: u64, rec: &[u8], fds: Option<Received>) {
        let outcome = match wire::parse_result(rec, fds) {
            Ok((_, items)) => JobOutcome::Items(items),
            Err(e) => JobOutcome::Failed(Failure::TaskError(format!("corrupt result record: {e}"))),
        };
        self.ready.push((id, outcome));
    }

    /// Delivers the outcomes in `ready`: their jobs are taken from the job
    /// table under one lock (first outcome wins, as in `Shared::deliver`),
    /// then each goes to its sink with the table unlocked.
    fn deliver_ready(&mut self) {
        if self.ready.is_empty() {
            return;
        }
        {
            let mut st = self.shared.state.lock();
            for (id, outcome) in self.ready.drain(..) {
                if let Some(e) = st.jobs.remove(&id) {
                    self.routed.push((e, outcome));
                }
            }
        }
        // Runs of outcomes for one sink (a map's chunks) go in one call.
        let mut routed = self.routed.drain(..).peekable();
        while let Some((first, outcome)) = routed.next() {
            let sink = first.sink;
            let mut run = std::iter::once((first.chunk, outcome)).chain(std::iter::from_fn(|| {
                routed.next_if(|(e, _)| Arc::ptr_eq(&e.sink, &sink)).map(|(e, outcome)| (e.chunk, outcome))
            }));
            sink.deliver_many(&mut run);
        }
    }

    /// Handles every result already queued (before judging a dead
    /// worker's job: its result may be among them).
    fn drain_results(&mut self) {
        while self.take_queued() > 0 {
            if self.ready.len() >= DELIVER_BATCH {
                self.deliver_ready();
            }
        }
        self.deliver_ready();
    }

    /// Periodic work; `true` when the supervisor is done.
    fn housekeeping(&mut self) -> bool {
        self.poke = false;
        let sh = self.shared.clone();
        if signal::interrupts() != self.interrupts {
            self.interrupts = signal::interrupts();
            sh.terminate(Failure::Interrupted);
        }
        let (phase, kills, jobs_left) = {
            let mut st = sh.state.lock();
            if !st.abandoned.is_empty() {
                st.abandoned.retain(|&id| sh.slot_of(id).is_some());
            }
            (st.phase, std::mem::take(&mut st.kills), st.jobs.len())
        };
        if phase == Phase::Terminating {
            self.finish_terminate();
            return true;
        }
        for (i, job, failure) in kills {
            self.kill_if_holding(i, job, failure);
        }
        self.feed_backlog();
        self.check_workers(phase);
        if self.shared.state.lock().phase == Phase::Terminating {
            self.finish_terminate();
            return true;
        }
        let backlog_empty = sh.backlog.lock().is_empty();
        if phase == Phase::Closed && jobs_left == 0 && backlog_empty {
            let mut st = sh.state.lock();
            if st.phase == Phase::Closed && st.jobs.is_empty() {
                st.phase = Phase::Stopping;
            }
        }
        if sh.state.lock().phase == Phase::Stopping {
            for w in self.workers.iter_mut().flatten() {
                if !w.stop_sent && sh.tasks.put_raw(&wire::control(wire::STOP), Wait::No).is_ok() {
                    w.stop_sent = true;
                }
            }
            if self.workers.iter().all(Option::is_none) {
                self.finish();
                return true;
            }
        }
        false
    }

    /// Kills worker `i` if it still holds `job`.
    fn kill_if_holding(&mut self, i: usize, job: u64, failure: Failure) {
        let holds = self.shared.table.slot(i).is_some_and(|s| s[table::JOB].load(Ordering::SeqCst) == job);
        if let Some(w) = self.workers.get_mut(i).and_then(Option::as_mut)
            && holds
            && w.killed.is_none()
        {
            w.killed = Some((job, failure));
            let _ = w.proc.kill();
        }
    }

    fn feed_backlog(&self) {
        self.shared.feed();
    }

    /// Reaps dead workers (failing the job each held), enforces the task
    /// timeout, and starts replacements.
    fn check_workers(&mut self, phase: Phase) {
        let limit = self.shared.config.task_timeout;
        let wanted = self.shared.state.lock().wanted;
        for i in 0..self.workers.len() {
            let status = match &self.workers[i] {
                Some(w) => w.proc.exitcode(),
                None => {
                    if i < wanted
                        && matches!(phase, Phase::Running | Phase::Closed)
                        && self.shared.state.lock().broken.is_none()
                    {
                        self.respawn(i);
                    }
                    continue;
                }
            };
            match status {
                None => {
                    if let Some(limit) = limit {
                        self.check_timeout(i, limit);
                    }
                }
                Some(status) => {
                    self.drain_results();
                    let w = self.workers[i].take().expect("invariant: matched Some above");
                    self.publish();
                    self.on_death(i, w, status);
                    if matches!(phase, Phase::Running | Phase::Closed) && self.shared.state.lock().broken.is_none() {
                        self.respawn(i);
                    }
                }
            }
        }
    }

    fn check_timeout(&mut self, i: usize, limit: Duration) {
        let job = self.shared.table.slot(i).map_or(0, |s| s[table::JOB].load(Ordering::SeqCst));
        let Some(w) = self.workers[i].as_mut() else { return };
        if job == 0 {
            w.seen = None;
            return;
        }
        match w.seen {
            Some((j, t)) if j == job => {
                if t.elapsed() > limit {
                    let pid = w.proc.pid();
                    self.kill_if_holding(i, job, Failure::TimedOut { pid, limit });
                }
            }
            _ => w.seen = Some((job, Instant::now())),
        }
    }

    fn on_death(&mut self, i: usize, w: Worker, status: crate::process::handle::ProcessExit) {
        let pid = w.proc.pid();
        let (job, held) = self.shared.take_slot(i);
        let (signal, code) = (status.signal(), status.code());
        for &id in held.iter().chain(Some(&job)).filter(|&&id| id != 0) {
            let failure = match &w.killed {
                Some((j, f)) if *j == id => f.clone(),
                _ => Failure::WorkerDied { pid, signal, code },
            };
            // A worker killed inside the get critical section left the
            // record in the queue: the next worker skips it instead of
            // running a job whose outcome is already decided.
            self.shared.table.cancel_entry(id).store(id, Ordering::SeqCst);
            self.shared.deliver(id, JobOutcome::Failed(failure));
        }
        // A worker that exits, even with code 0, while holding a task died abruptly.
        let abrupt = w.killed.is_none() && (code != Some(0) || job != 0 || held.iter().any(|&id| id != 0));
        if abrupt && self.shared.config.break_on_death {
            let how = match (signal, code) {
                (Some(s), _) => format!("was killed by signal {s} ({})", crate::error::signal_name(s)),
                (_, Some(c)) => format!("exited with code {c}"),
                _ => "died".into(),
            };
            self.shared.break_pool(Failure::Broken(format!(
                "worker pid {pid} {how}; every pending task failed and no new one is accepted"
            )));
        }
    }

    fn respawn(&mut self, i: usize) {
        match self.spawn(i) {
            Ok(w) => {
                self.workers[i] = Some(w);
                self.spawn_error = None;
                self.publish();
            }
            Err(e) => {
                self.spawn_error = Some(e.to_string());
                if self.workers.iter().all(Option::is_none) {
                    // No worker left and none can start: fail instead of
                    // leaving jobs waiting forever.
                    self.shared.break_pool(Failure::Broken(format!("cannot start a worker: {e}")));
                }
            }
        }
    }

    /// Kills every worker, fails what is left, and finishes.
    fn finish_terminate(&mut self) {
        let force = self.shared.state.lock().force;
        if force == Some(Force::Terminate) {
            self.terminate_workers();
        }
        for w in self.workers.iter_mut().flatten() {
            let _ = w.proc.kill();
        }
        let mut reaped = Vec::new();
        for (i, w) in self.workers.iter_mut().enumerate() {
            if let Some(mut w) = w.take() {
                let _ = w.proc.join();
                reaped.push((i, w));
            }
        }
        // A Fork pool's private server goes before any job fails: a caller
        // woken by its job's failure finds no child of the pool left.
        self.server = None;
        self.publish();
        if force.is_some() {
            // Results put before the signal count; the job a worker still
            // held fails with the way it died.
            self.drain_results();
            for (i, w) in reaped {
                let (job, held) = self.shared.take_slot(i);
                for &id in held.iter().chain(Some(&job)).filter(|&&id| id != 0) {
                    let status = w.proc.exitcode();
                    let failure = Failure::WorkerDied {
                        pid: w.proc.pid(),
                        signal: status.and_then(|s| s.signal()),
                        code: status.and_then(|s| s.code()),
                    };
                    self.shared.deliver(id, JobOutcome::Failed(failure));
                }
            }
        }
        let (jobs, failure) = {
            let mut st = self.shared.state.lock();
            (std::mem::take(&mut st.jobs), st.terminate.clone().unwrap_or(Failure::Cancelled))
        };
        fail_all(jobs, &failure);
        self.finish();
    }

    /// `terminate_workers`: SIGTERM to every worker, then waits until each
    /// has exited, or until `kill_workers` asks for SIGKILL (the caller
    /// then kills what is left).
    fn terminate_workers(&mut self) {
        for w in self.workers.iter_mut().flatten() {
            let _ = w.proc.terminate();
        }
        for w in self.workers.iter_mut().flatten() {
            while w.proc.exitcode().is_none() {
                if self.shared.state.lock().force == Some(Force::Kill) {
                    return;
                }
                // Waits for the exit; the tick bounds how late a
                // `kill_workers` is seen.
                let _ = w.proc.join_timeout(TICK_BUSY);
            }
        }
    }

    /// Discards queued records (removing spill segments) and marks the
    /// pool finished.
    fn finish(&mut self) {
        let sh = self.shared.clone();
        for rec in sh.backlog.lock().drain(..) {
            discard_spilled(&rec.bytes);
            rec.undo.run();
        }
        // Descriptors that came with a record are closed with it.
        while let Ok(()) = sh.tasks.get_raw_then(&mut self.buf, Wait::No, &mut |_| {}, &mut self.fds) {
            discard_spilled(&self.buf);
            self.fds.clear();
        }
        self.drain_results();
        let jobs = {
            let mut st = sh.state.lock();
            st.phase = Phase::Finished;
            std::mem::take(&mut st.jobs)
        };
        fail_all(jobs, &Failure::Cancelled);
        sh.finished.notify_all();
        self.server = None;
    }
}

fn discard_spilled(rec: &[u8]) {
    if matches!(wire::kind(rec), Ok(wire::SPILLED)) {
        crate::channel::spill::discard(wire::spill_reference(rec));
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        // Normal end: nothing left. After a panic of the supervisor: no
        // waiter may hang and no worker may outlive the pool.
        let finished = self.shared.state.lock().phase == Phase::Finished;
        if !finished {
            self.shared.break_pool(Failure::Broken("the pool's supervisor thread stopped".into()));
            for w in self.workers.iter_mut().flatten() {
                let _ = w.proc.kill();
                let _ = w.proc.join();
            }
            let mut st = self.shared.state.lock();
            st.phase = Phase::Finished;
            self.shared.finished.notify_all();
        }
    }
}
