//! An eventcount on a futex word: how blocking queue calls sleep until a
//! condition (room, an item, all tasks done) may have changed.
//!
//! | word | meaning |
//! |---|---|
//! | `seq` | bumped by a notifier that saw sleepers; waiters sleep on it |
//! | `sleepers` | waiters between `prepare` and `finish` |
//! | `cpu` | a hint: the CPU (plus one, 0 unknown) the last notifier that noted it ran on |
//!
//! A waiter announces itself (`sleepers += 1`), takes the key (`seq`),
//! re-checks its condition, and sleeps only while `seq` still equals the
//! key. A notifier changes the state, then loads `sleepers`: only if
//! someone announced does it bump `seq` and wake, so a notify with nobody
//! asleep is two plain memory operations and no system call. The two sides
//! form a Dekker pair (SeqCst store/RMW, then SeqCst load of the other
//! word): either the waiter's re-check sees the new state, or the notifier
//! sees the waiter and changes `seq` before the waiter's futex compares it.
//!
//! A waiter killed while announced leaves `sleepers` too high: notifiers
//! then make a needless wake call, which costs time, never correctness.
//! `sleepers` is cleared back when it is seen above a sane bound.
//!
//! The `cpu` hint lets a waiter decide whether to spin before it sleeps: a
//! peer that last ran on this very CPU cannot answer while we spin (it needs
//! this CPU), so the waiter sleeps at once; a peer on another CPU answers
//! within a cache-line hand-off, so the waiter spins. Any value is
//! harmless: a wrong hint costs a useless spin or a needless sleep.

use std::time::{Duration, Instant};

use crate::loom::atomic::{AtomicU32, Ordering};
use crate::loom::futex::{self, Wake};
use crate::loom::{current_cpu, spin_for};
use crate::sync::waiters::Waiters;

/// The two words of an eventcount, placed in shared memory.
#[derive(Debug, Default)]
#[repr(C)]
pub(crate) struct RawEventCount {
    seq: AtomicU32,
    sleepers: Waiters,
    cpu: AtomicU32,
}

/// A waiter's ticket between [`RawEventCount::prepare`] and
/// [`RawEventCount::finish`].
#[derive(Debug, Clone, Copy)]
#[must_use = "pass the key to wait and then finish"]
pub(crate) struct Key(u32);

impl RawEventCount {
    #[cfg(shmproc_loom)]
    pub(crate) fn new() -> Self {
        RawEventCount { seq: AtomicU32::new(0), sleepers: Waiters::new(), cpu: AtomicU32::new(0) }
    }

    /// Announces a waiter; re-check the condition after this, then
    /// [`wait`](Self::wait) if it still does not hold, then always
    /// [`finish`](Self::finish).
    #[inline]
    pub(crate) fn prepare(&self) -> Key {
        // The waiter's half of the pair with `notify`, ordered before the
        // caller's re-check (which may use plain Acquire loads).
        self.sleepers.announce();
        Key(self.seq.load(Ordering::SeqCst))
    }

    /// Sleeps until notified after `key` was taken, or `deadline`.
    #[inline]
    pub(crate) fn wait(&self, key: Key, deadline: Option<Instant>) -> Wake {
        futex::wait(&self.seq, key.0, deadline)
    }

    /// Withdraws the announcement of [`prepare`](Self::prepare).
    #[inline]
    pub(crate) fn finish(&self) {
        // Saturating: a hostile or confused peer may have zeroed the word.
        self.sleepers.withdraw();
    }

    /// Wakes every waiter if any announced itself; call after changing the
    /// state the waiters check (the change must be a store or RMW that
    /// precedes this call in program order).
    #[inline]
    pub(crate) fn notify(&self) {
        // The caller's state change may be a Release store: the fenced
        // form orders it before the load of `sleepers` (the notifier's
        // half of the pair with `prepare`).
        if self.sleepers.any_after() {
            self.notify_slow();
        }
    }

    #[cold]
    fn notify_slow(&self) {
        self.seq.fetch_add(1, Ordering::SeqCst);
        futex::wake_all(&self.seq);
    }

    /// [`notify`](Self::notify), first noting the caller's CPU as the
    /// notifier's (the hint [`spin_for_notifier`](Self::spin_for_notifier)
    /// reads). Stores only when the CPU changed, so a notifier that stays
    /// on its CPU does not dirty the line.
    #[inline]
    pub(crate) fn notify_from_here(&self) {
        let cpu = current_cpu();
        // Relaxed: a hint, read by waiters with no ordering attached.
        if self.cpu.load(Ordering::Relaxed) != cpu {
            self.cpu.store(cpu, Ordering::Relaxed);
        }
        self.notify();
    }

    /// Spins up to `max` for `ready()` before a waiter sleeps, unless the
    /// last noted notifier ran on the caller's CPU: that one cannot answer
    /// while we spin (it needs this CPU), so this returns `false` at once.
    #[inline]
    pub(crate) fn spin_for_notifier(&self, max: Duration, ready: impl FnMut() -> bool) -> bool {
        let me = current_cpu();
        // Relaxed: a hint (see `notify_from_here`).
        let same_cpu = me != 0 && self.cpu.load(Ordering::Relaxed) == me;
        !same_cpu && spin_for(max, ready)
    }

    /// Whether anyone is announced (for tests and statistics).
    #[cfg(test)]
    pub(crate) fn sleepers(&self) -> u32 {
        self.sleepers.count()
    }
}

#[cfg(all(test, not(shmproc_loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    use std::time::Duration;

    #[test]
    fn notify_without_sleepers_changes_nothing() {
        let ec = RawEventCount::default();
        ec.notify();
        assert_eq!(ec.seq.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_waiter_is_woken_and_a_timeout_returns() {
        let ec = Arc::new(RawEventCount::default());
        let flag = Arc::new(AtomicBool::new(false));
        let k = ec.prepare();
        assert!(matches!(ec.wait(k, Some(Instant::now() + Duration::from_millis(5))), Wake::TimedOut));
        ec.finish();
        let t = {
            let (ec, flag) = (ec.clone(), flag.clone());
            std::thread::spawn(move || {
                loop {
                    let k = ec.prepare();
                    if flag.load(Ordering::SeqCst) {
                        ec.finish();
                        return;
                    }
                    ec.wait(k, Some(Instant::now() + Duration::from_secs(30)));
                    ec.finish();
                }
            })
        };
        std::thread::sleep(Duration::from_millis(10));
        flag.store(true, Ordering::SeqCst);
        ec.notify();
        t.join().expect("waiter");
        assert_eq!(ec.sleepers(), 0);
    }
}
