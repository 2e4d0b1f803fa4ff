//! How often a handle asks the OS whether processes are dead.
//!
//! The question costs system calls (one per process asked), so no call
//! path asks it per operation. [`ProbeRate`] is the one rate limit: a
//! handle asks at most once per [`PROBE_INTERVAL`], except that an answer
//! of "dead" is asked again on the next look (the side may have gained a
//! live process since, and a caller that got "dead" is about to fail
//! anyway, so the extra calls cost only on that path).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The shortest time between two probes of one handle.
pub(crate) const PROBE_INTERVAL: Duration = Duration::from_millis(5);

/// `last` of a handle that never asked.
const NEVER: u64 = u64::MAX;

/// Nanoseconds since the first call in this process (cheaper to store in
/// an atomic than an `Instant`).
fn now_nanos() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// A per-handle rate limit on liveness probes (see the module docs).
/// Shared by the threads using the handle: the state is two relaxed
/// atomics, and a race only makes two threads ask at once.
#[derive(Debug)]
pub(crate) struct ProbeRate {
    /// When the last probe ran ([`now_nanos`]), or [`NEVER`].
    last: AtomicU64,
    /// What the last probe said.
    dead: AtomicBool,
}

impl Default for ProbeRate {
    fn default() -> Self {
        ProbeRate::new()
    }
}

impl ProbeRate {
    /// A limit that allows the first probe at once.
    pub(crate) const fn new() -> ProbeRate {
        ProbeRate { last: AtomicU64::new(NEVER), dead: AtomicBool::new(false) }
    }

    /// Whether a probe may run now: none ran yet, the last said "dead", or
    /// it is at least [`PROBE_INTERVAL`] old.
    pub(crate) fn due(&self) -> bool {
        // Relaxed: a rate limit, not a synchronization.
        if self.said_dead() {
            return true;
        }
        let last = self.last.load(Ordering::Relaxed);
        last == NEVER || now_nanos().saturating_sub(last) >= PROBE_INTERVAL.as_nanos() as u64
    }

    /// Whether the last probe said "dead" (then every look asks again).
    pub(crate) fn said_dead(&self) -> bool {
        // Relaxed: as in `due`.
        self.dead.load(Ordering::Relaxed)
    }

    /// Runs `probe` (which answers "is everyone dead?") if one is
    /// [`due`](Self::due); `false` when none is.
    pub(crate) fn ask(&self, probe: impl FnOnce() -> bool) -> bool {
        self.due() && self.ask_now(probe)
    }

    /// Runs `probe` now (a waiter's liveness wake-up) and records it.
    pub(crate) fn ask_now(&self, probe: impl FnOnce() -> bool) -> bool {
        self.last.store(now_nanos(), Ordering::Relaxed);
        let dead = probe();
        self.dead.store(dead, Ordering::Relaxed);
        dead
    }
}

#[cfg(all(test, not(shmproc_loom)))]
mod tests {
    use super::*;

    #[test]
    fn the_first_probe_and_a_dead_answer_are_asked_at_once() {
        // Only what does not depend on the clock: whether an alive answer
        // holds for the interval is a matter of time, not checked here.
        let rate = ProbeRate::new();
        assert!(rate.due(), "the first probe runs at once");
        assert!(rate.ask(|| true));
        assert!(rate.due(), "a dead answer is asked again");
        assert!(!rate.ask(|| false), "and may change");
    }
}
