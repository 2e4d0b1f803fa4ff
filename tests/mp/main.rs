//! Multi-process integration tests: docs/reliability.md cases 1-12 (death while
//! holding synchronization primitives), 20-38 (the segment parts; the queue
//! parts arrive with the queues) and the process cases 39, 41 (plain
//! processes), 43, 44 and 45.
//!
//! Helpers run by re-executing this test binary (never `fork()` from the
//! multi-threaded harness): the parent runs `current_exe() --exact
//! child_entry --nocapture --test-threads=1` with `SHMPROC_MP_ROLE=<role>`
//! and the role's arguments in `SHMPROC_MP_ARG_*`; [`child_entry`] then runs
//! the role and exits the process. Children report through their exit
//! status, `MP:`-tagged stdout lines, or a segment. Every wait on a child has
//! a 30 s hang guard, every test uses names unique to it, and every test ends
//! with a leak check (names, fds, mappings, zombies): see `harness.rs`.
//!
//! Areas: `segment.rs` (lifecycle, passing, racing), `cleanup.rs` (dead
//! creators, cleaners, liveness), `hostile.rs` (bad headers, foreign files,
//! permissions, exhaustion), `process.rs` (parent death, descriptor and
//! process limits, crashes, fork rules, dropped handles, exit semantics),
//! `sync.rs` (mutex, condvar, semaphore, barrier and event holders and
//! waiters SIGKILLed, at failpoints and at random), `ring.rs` (the SPSC
//! ring: case 13, a producer SIGKILLed mid-stream, and the ring part of
//! case 35, garbage in the ring's words), `mpmc.rs` (the MPMC ring: cases
//! 14, 15 and 16, producers and consumers killed or stopped mid-claim, and
//! its part of case 35), `queue.rs` (Queue, JoinableQueue: 17, 19, 35, 42, 50), `pool.rs` (Pool and
//! ProcessPoolExecutor: 40, 41, 42, 46, failpoints of the worker loop,
//! random SIGKILLs of workers), `shared.rs` (Value and Array: counting
//! under each start method, holders SIGKILLed, a writer dead mid-write,
//! open by name, wrong types, garbage lengths), `channel.rs` (typed channels: handles under every start method,
//! killed and stopped senders and receivers), `manager.rs` (Manager: 39,
//! 44, 47, killed and stopped clients, concurrent updates, garbage hellos
//! and requests).

#[cfg(feature = "serde")]
mod channel;
mod cleanup;
#[cfg(feature = "serde")]
mod fds;
mod harness;
mod hostile;
#[cfg(feature = "manager")]
mod manager;
mod mpmc;
#[path = "../common/outcome.rs"]
mod outcome;
#[cfg(feature = "serde")]
mod pipe;
#[cfg(feature = "pool")]
mod pool;
#[cfg(feature = "serde")]
mod process;
#[cfg(feature = "serde")]
mod queue;
mod ring;
mod segment;
mod shared;
#[cfg(feature = "serde")]
mod soundness;
mod sync;

/// The helper entry point. Does nothing in a normal test run; when
/// `SHMPROC_MP_ROLE` is set it runs that role and exits the process: status
/// 0 if the role returned, non-zero if it panicked (libtest's 101) or its
/// watchdog fired (3).
#[test]
fn child_entry() {
    let Ok(role) = std::env::var(harness::ROLE_ENV) else { return };
    harness::child_watchdog();
    run_role(&role);
    std::process::exit(0);
}

/// Dispatches a helper role by name.
fn run_role(role: &str) {
    match role {
        "hold" => segment::role_hold(),
        "open_report" => segment::role_open_report(),
        "churn" => segment::role_churn(),
        "inherit_fd" => segment::role_inherit_fd(),
        "inherit_fd_hold" => segment::role_inherit_fd_hold(),
        "socket_peer" => segment::role_socket_peer(),
        "race" => segment::role_race(),
        "shared_init" => segment::role_shared_init(),
        "truncate_file" => segment::role_truncate_file(),
        "cleaner" => cleanup::role_cleaner(),
        "stale_scenario" => cleanup::role_stale_scenario(),
        #[cfg(feature = "serde")]
        "chan_unstarted" => channel::role_unstarted_child(),
        #[cfg(feature = "serde")]
        "fds_mid_get" => fds::role_receiver_killed_mid_get(),
        "hostile_fields" => hostile::role_hostile_fields(),
        "foreign_files" => hostile::role_foreign_files(),
        "double_fetch" => hostile::role_double_fetch(),
        "small_tmpfs" => hostile::role_small_tmpfs(),
        "umask_create" => hostile::role_umask_create(),
        #[cfg(feature = "serde")]
        "proc_orphans" => process::role_orphans(),
        #[cfg(feature = "serde")]
        "proc_nofile" => process::role_nofile(),
        #[cfg(feature = "serde")]
        "proc_nproc" => process::role_nproc(),
        #[cfg(feature = "serde")]
        "proc_nproc_first" => process::role_nproc_first(),
        #[cfg(feature = "serde")]
        "proc_fork_rules" => process::role_fork_rules(),
        #[cfg(feature = "serde")]
        "proc_crashes" => process::role_crashes(),
        #[cfg(feature = "serde")]
        "proc_dropped" => process::role_dropped(),
        #[cfg(feature = "serde")]
        "proc_atexit" => process::role_atexit(),
        #[cfg(feature = "serde")]
        "proc_child_exit" => process::role_child_exit(),
        "sync" => sync::role_sync(),
        "ring_producer" => ring::role_ring_producer(),
        "ring_hostile" => ring::role_ring_hostile(),
        "ring_open_garbage" => ring::role_ring_open_garbage(),
        r if r.starts_with("mpmc_") => mpmc::run_role(r),
        #[cfg(feature = "serde")]
        r if r.starts_with("queue_") => queue::run_role(r),
        #[cfg(feature = "serde")]
        r if r.starts_with("pipe_") => pipe::run_role(r),
        #[cfg(feature = "pool")]
        r if r.starts_with("pool_") => pool::run_role(r),
        r if r.starts_with("shared_") => shared::run_role(r),
        #[cfg(feature = "manager")]
        r if r.starts_with("manager_") => manager::run_role(r),
        other => panic!("unknown helper role {other:?}"),
    }
}
