//! How often a handle asks the OS whether processes are dead.
//!
//! The question costs system calls (one per process asked), so no call
//! path asks it per operation. [`ProbeRate`] is the one rate limit of a
//! handle's probes: at most one per [`PROBE_INTERVAL`].
//!
//! - About a side of a channel ([`ProbeRate::ask`]): an answer of "all
//!   dead" is asked again on the next look (the side may have gained a live
//!   process since, and a caller that got "dead" is about to fail anyway,
//!   so the extra calls cost only on that path).
//! - About one holder ([`ProbeRate::ask_about`], a ring role's): a new
//!   holder is asked at once, and a death, once confirmed, is final for
//!   that holder.
//!
//! Two other schedules are not rate limits of this kind and live with
//! their users: a sleeping waiter wakes at growing liveness intervals to
//! ask (`LivenessPoll`, beside the futex facade), and an MPMC handle
//! probes a slot's owner only once it has seen the same slot word block
//! it twice, and then at growing intervals (`Stuck`, in the MPMC
//! protocol, lock-free and free of clock reads on its hot path).

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
    /// What the last [`ask_about`](Self::ask_about) asked about.
    subject: AtomicU64,
}

impl Default for ProbeRate {
    fn default() -> Self {
        ProbeRate::new()
    }
}

impl ProbeRate {
    /// A limit that allows the first probe at once.
    pub(crate) const fn new() -> ProbeRate {
        ProbeRate { last: AtomicU64::new(NEVER), dead: AtomicBool::new(false), subject: AtomicU64::new(0) }
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
    #[cfg_attr(not(feature = "serde"), allow(dead_code))] // used by the channels
    pub(crate) fn ask(&self, probe: impl FnOnce() -> bool) -> bool {
        self.due() && self.ask_now(probe)
    }

    /// Runs `probe` (which answers "is `subject` dead?") unless it ran for
    /// the same subject within [`PROBE_INTERVAL`]; a death of a subject is
    /// final (answered without asking again), a new subject is asked at
    /// once.
    pub(crate) fn ask_about(&self, subject: u64, probe: impl FnOnce() -> bool) -> bool {
        // Relaxed: as in `due`. A plain load first: a poller asking about
        // the same holder again and again writes nothing.
        if self.subject.load(Ordering::Relaxed) == subject {
            if self.said_dead() {
                return true;
            }
            if !self.due() {
                return false;
            }
        } else {
            self.subject.store(subject, Ordering::Relaxed);
        }
        self.ask_now(probe)
    }

    /// Records an attempt now without asking anything (a caller whose
    /// costly try, not a probe, is what the rate limits).
    #[cfg(feature = "serde")]
    pub(crate) fn note_attempt(&self) {
        // Relaxed: as in `due`.
        self.last.store(now_nanos(), Ordering::Relaxed);
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

    #[test]
    fn a_subjects_death_is_final_and_a_new_subject_is_asked_at_once() {
        let rate = ProbeRate::new();
        assert!(!rate.ask_about(7, || false));
        assert!(rate.ask_about(8, || true), "a new subject is asked at once");
        assert!(rate.ask_about(8, || panic!("a death is final: not asked again")));
        assert!(!rate.ask_about(9, || false), "another new subject");
    }
}
