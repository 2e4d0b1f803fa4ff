//! Pools of worker processes: one worker engine with two faces, Python's
//! `multiprocessing.Pool` ([`Pool`](crate::Pool)) and
//! `concurrent.futures.ProcessPoolExecutor`
//! ([`ProcessPoolExecutor`](crate::ProcessPoolExecutor)).
//!
//! # The engine
//!
//! ```text
//!  user threads ──(task records)──► task Queue ──► worker 1..n ──(result records)──► result Queue ──► supervisor thread
//!       │  register job (id → sink)                    │ slot: job id                                  │ job table: id → sink
//!       └──────────── job table (Mutex<HashMap>) ◄─────┼───────────────────────────────────────────────┘ deliver, callbacks
//!                                                      └── worker table in shared memory (pid, job, cancels)
//! ```
//!
//! - **Two queues** ([`Queue`](crate::Queue)s in shared memory, 1 MiB rings):
//!   one task queue that every worker takes from (natural load balancing:
//!   an idle worker takes the next task), and one result queue that every
//!   worker puts to and only the parent's supervisor thread takes from.
//!   Records are laid out by hand (`wire.rs`): a job id in the first 8
//!   bytes, the compact names of the trampoline and of the user's function
//!   (offsets in the executable plus type fingerprints, as
//!   `Process::spawn` names a function; the executable's identity travels
//!   once, in the worker's argument), then the encoded arguments. A chunk
//!   of `map` is one record; each of its items gets its own outcome.
//!   Records larger than the ring carries inline go through a spill
//!   segment (the job id stays inline).
//! - **The worker table** (`table.rs`, a segment of its own): per worker
//!   the pid and the id of the job it holds, plus a cancellation table.
//!   The worker writes its slot *inside the task queue's get critical
//!   section*, with a hook that runs on the record's bytes before the
//!   record is released (`Queue::get_raw_then`, on top of
//!   `ByteConsumerCore::pop_into_then`). So at every instant the slot
//!   names the job the worker may have started, or 0: a worker killed
//!   before the hook leaves the record in the queue (the queue's robust
//!   lock hands it to the next worker); killed inside the hook, it leaves
//!   the record in the queue *and* its slot naming the job, which then
//!   fails with `WorkerDied` and is marked cancelled, so the next worker
//!   skips the redelivered record; killed later, the job fails with
//!   `WorkerDied`. No job is lost, none hangs.
//!   (Per-worker inboxes filled by the parent were the alternative: exact
//!   without a hook, but the parent must then balance the load, and a
//!   long task strands the ones queued behind it.)
//! - **The job table** (parent, `Mutex<HashMap<id, sink>>`): a job is
//!   registered before its record is queued and removed by its first
//!   outcome (first completion wins: a result, a worker's death, a
//!   cancellation, a timeout, termination). A *sink* is where the outcome
//!   goes: a [`Cell`](cell::Cell) for `apply_async` and `submit` (with
//!   callbacks and `as_completed` watchers), a [`Batch`](cell::Batch)
//!   for `map`/`imap`. Results are decoded by the thread that asks for
//!   them (and callbacks' values on the supervisor thread), so the
//!   supervisor only routes bytes.
//! - **The supervisor thread** takes result records (in batches) and
//!   delivers them, feeds tasks that did not fit into the task queue
//!   (submission never blocks: a full queue spills into a parent-side
//!   backlog, as Python's task handler thread does), and every 10 ms (or
//!   when woken by a `WAKE` record) does its checks: reaps dead workers
//!   through their pidfds (after taking every result already queued, so a
//!   worker killed right after answering keeps its answer), fails the job
//!   each dead worker held, replaces it (`Pool`) or breaks the executor
//!   (`ProcessPoolExecutor`, as Python's `BrokenProcessPool`), kills
//!   workers whose task ran past the task timeout or was cancelled while
//!   running, and watches for SIGINT. If the supervisor panics, its drop
//!   fails every pending job and kills the workers: no wait hangs on it.
//! - **Start methods**: workers are [`Process`](crate::Process)es running
//!   `worker_main`, daemons, started with the pool's method. Under
//!   ForkServer and Spawn that works from any thread. Under Fork the pool
//!   forks a *private fork server* when it is built (the process must
//!   then have one thread); that server, a copy of the process at that
//!   moment, clones every worker and replacement later, when the pool's
//!   own thread makes forking unsafe. One Fork pool at a time, therefore.
//! - **Workers on demand** (executor only): a `Pool` starts all its
//!   workers when it is built; a `ProcessPoolExecutor` starts none, and a
//!   submission that finds no idle worker (more outstanding jobs than
//!   workers wanted so far) raises the wanted count by one, up to
//!   `max_workers`, and wakes the supervisor, which starts it. The
//!   supervisor publishes the pids of its live workers for
//!   `worker_pids`.
//! - **`terminate_workers`/`kill_workers`** (executor): close, cancel the
//!   jobs not started, then the supervisor sends SIGTERM (waiting for the
//!   exits, or for a later `kill_workers`) or SIGKILL, reaps the workers,
//!   takes the results already queued, and fails each job a worker still
//!   held with `WorkerDied` (its signal). The executor is closed, not
//!   broken.
//! - **Ctrl-C**: while a pool exists a process-wide SIGINT handler is
//!   installed (`sys/signal.rs`). If a thread is inside a pool call, a
//!   SIGINT bumps an interrupt counter; each supervisor sees it within a
//!   tick, kills and reaps its workers, then fails its pending jobs with
//!   [`Error::Interrupted`](crate::Error::Interrupted) and refuses new
//!   ones with it. If no pool call is in progress, the handler restores the
//!   previous disposition and re-raises the signal, so the program ends as
//!   it would have without pools. A previous handler is chained; an
//!   ignored SIGINT stays ignored. Workers ignore SIGINT (the parent owns
//!   Ctrl-C); they die with the parent anyway (`PR_SET_PDEATHSIG`).
//!
//! - **Batches** (how the hot path is cheap): every hand-off moves many
//!   records under one lock hold and one wake-up where it can.
//!   - A `map` queues its chunks in groups (`Queue::put_raw_many`), after
//!     registering each group under one lock of the job table
//!     (`Shared::submit_many`).
//!   - Single submissions (`apply_async`, `submit`) go straight into the
//!     task queue while it holds fewer than 16 records; beyond that (the
//!     workers have plenty to do) they are gathered in the backlog and
//!     queued 64 at a time, by the submitter or by the supervisor after
//!     the next results (`Shared::enqueue`).
//!   - A worker whose last tasks took under 20 us each takes up to 12
//!     records at once (its first through `get_raw_then`, the rest through
//!     one `get_raw_more`) while the queue holds more records than every
//!     worker could take at once (12 per worker), naming each in a `HELD`
//!     word of its slot inside the get critical section, and puts their
//!     results together (after the batch, or once 100 us passed, looked at
//!     every 4th task) before emptying the words. A worker killed anywhere
//!     leaves every job of its batch named: the supervisor fails them all
//!     (`WorkerDied`) and marks them cancelled, as for `JOB`. Long tasks
//!     are taken one at a time, so a slow task strands at most 11 quick
//!     ones behind it, only right after a run of quick ones, and only while
//!     the other workers have plenty queued; a short queue goes one task
//!     per worker, in order. A `ProcessPoolExecutor`'s workers, and a pool
//!     with a task timeout, take one at a time: there the parent kills a
//!     worker for its running job (a cancelled future, a timeout), which
//!     must not take queued jobs down with it.
//!   - Each worker publishes whether its last tasks were quick (slot word
//!     `QUICK`, only where batches are allowed); while all say so (and
//!     the pool has no `maxtasksperchild`, which counts tasks), `map`
//!     packs up to 32 items into each chunk while its record stays under
//!     64 KiB (`Shared::tasks_quick`, looked at once per group of chunks;
//!     `iter::ChunkSize`): at chunksize 1 that is one job, one record each
//!     way and one table entry per 32 items.
//!   - The supervisor takes the results queued in one go
//!     (`get_raw_more`), routes them under one job-table lock per 64, and
//!     hands a `map`'s run of outcomes to its batch under one lock; short
//!     results (up to 30 bytes each, one per record) need no allocation on
//!     the way (`wire::ItemBytes`, `wire::Outcomes`). The `map` caller
//!     decodes straight into its result vector.

pub(crate) mod cell;
pub(crate) mod engine;
pub(crate) mod error;
pub(crate) mod executor;
pub(crate) mod iter;
#[allow(clippy::module_inception)]
pub(crate) mod pool;
pub(crate) mod table;
pub(crate) mod wire;
pub(crate) mod worker;
