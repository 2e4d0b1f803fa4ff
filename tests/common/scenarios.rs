//! The frame of the descriptor tests (tests/fds.rs, tests/pool_fds.rs):
//! each scenario runs inside a dedicated child started with Spawn, where
//! it is single-threaded when it starts (so the Fork start method is
//! allowed) and has an fd table of its own, so counting `/proc/self/fd`
//! is not disturbed by the other tests of the binary; the scenario starts
//! its own children with each of the three start methods.
//!
//! Included by path (`#[path = "common/scenarios.rs"] mod scenarios;`) by
//! exactly the binaries that use all of it.

use std::time::Duration;

use shmproc::{Process, StartMethod};

/// The hang guard of every wait in these tests.
pub(crate) const GUARD: Duration = Duration::from_secs(30);

const METHODS: [StartMethod; 3] = [StartMethod::Spawn, StartMethod::ForkServer, StartMethod::Fork];

pub(crate) type Outcome = Result<(), String>;

/// Runs `scenario(m)` for each start method, each in a dedicated child.
pub(crate) fn each_method(scenario: fn(StartMethod) -> Outcome) {
    for m in METHODS {
        let mut p = Process::builder().start_method(StartMethod::Spawn).spawn(scenario, m).expect("start");
        match p.join_timeout(GUARD * 4) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("{m:?}: {e}"),
            Err(e) => {
                let _ = p.kill();
                panic!("{m:?}: {e}");
            }
        }
    }
}

/// Open descriptors of this process (a dedicated child: see the module
/// docs).
pub(crate) fn open_fds() -> usize {
    // Finished children stay registered (with their pidfds) until the
    // next look: Python's `active_children()` settles them.
    let _ = shmproc::active_children();
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

pub(crate) fn check(cond: bool, what: &str) -> Outcome {
    if cond { Ok(()) } else { Err(what.to_owned()) }
}

/// Maps an error to the scenario's message, naming the step.
pub(crate) fn e<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> String {
    move |err| format!("{what}: {err}")
}
