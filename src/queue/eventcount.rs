//! An eventcount on a futex word: how blocking queue calls sleep until a
//! condition (room, an item, all tasks done) may have changed.
//!
//! | word | meaning |
//! |---|---|
//! | `seq` | bumped by a notifier that saw sleepers; waiters sleep on it |
//! | `sleepers` | waiters between `prepare` and `finish` |
//! | `cpu` | a hint: the CPU (plus one, 0 unknown) the last notifier that noted it ran on |
//! | `coming` | wake-ups on their way: woken by `notify_one`, not yet back from the futex (an `i32`) |
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
//! Two ways to notify:
//!
//! - [`notify_all`](RawEventCount::notify_all) wakes every sleeper: the
//!   change concerns everyone (a close, all tasks done).
//! - [`notify_one`](RawEventCount::notify_one) is for a change one waiter
//!   can use (room for one record, one message). Waking every sleeper for
//!   it makes all but one look, find nothing and sleep again, and on few
//!   CPUs the one that could go on waits behind them; so it wakes one, and
//!   none while another wake-up is still on its way (`coming > 0`): that
//!   waiter looks at the state after this change too, and passes a wake-up
//!   on if it leaves something behind. This keeps a notifier that feeds
//!   many sleepers (a parent filling a queue for 256 consumers) from
//!   paying a system call per item.
//!
//! Why a skipped wake-up is never lost: a woken waiter decrements `coming`
//! (in [`wait`](RawEventCount::wait)) and then announces itself again,
//! with a full fence, before it looks. A notifier that skipped read
//! `coming` after its own change and its own fence and saw the waiter's
//! wake-up still counted; by the fences' total order the waiter's later
//! look then sees the change. What the waiter must do with it (pass a
//! wake-up on after it took one item and more are there, or when it leaves
//! without using it) is the channel engine's part (`channel/lane.rs`).
//!
//! A woken waiter killed before it decrements leaves `coming` too high,
//! and notifiers would skip every wake-up: waiters then wake at liveness
//! intervals anyway, and one that wakes on its timeout to find its
//! condition true clears `coming` ([`stranded`](RawEventCount::stranded)),
//! which restores the wake-ups. Likewise a waiter killed while announced
//! leaves `sleepers` too high, which costs needless wake calls, never
//! correctness.
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
    /// Wake-ups of `notify_one` on their way (an `i32`: a waiter may count
    /// its arrival before the notifier counts its wake-up).
    coming: AtomicU32,
}

/// A waiter's ticket between [`RawEventCount::prepare`] and
/// [`RawEventCount::finish`].
#[derive(Debug, Clone, Copy)]
#[must_use = "pass the key to wait and then finish"]
pub(crate) struct Key(u32);

impl RawEventCount {
    #[cfg(shmproc_loom)]
    pub(crate) fn new() -> Self {
        RawEventCount {
            seq: AtomicU32::new(0),
            sleepers: Waiters::new(),
            cpu: AtomicU32::new(0),
            coming: AtomicU32::new(0),
        }
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

    /// Sleeps until notified after `key` was taken, or `deadline`. A
    /// waiter woken by a wake call counts itself arrived (`coming -= 1`);
    /// the caller then looks again after a [`prepare`](Self::prepare),
    /// whose fence orders that look after the decrement.
    #[inline]
    pub(crate) fn wait(&self, key: Key, deadline: Option<Instant>) -> Wake {
        let woke = futex::wait(&self.seq, key.0, deadline);
        if woke == Wake::Woken {
            // SeqCst: the waiter's half of the pair with `wake_one`'s load.
            self.coming.fetch_sub(1, Ordering::SeqCst);
        }
        woke
    }

    /// A waiter that woke on its timeout and found its condition true was
    /// passed over (a wake-up counted as coming never arrived: its waiter
    /// was killed): forget the wake-ups on their way, so notifiers wake
    /// again.
    #[cold]
    pub(crate) fn stranded(&self) {
        // Relaxed: any value is safe for correctness (see the module docs).
        self.coming.store(0, Ordering::Relaxed);
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
    pub(crate) fn notify_all(&self) {
        // The caller's state change may be a Release store: the fenced
        // form orders it before the load of `sleepers` (the notifier's
        // half of the pair with `prepare`).
        if self.sleepers.any_after() {
            self.wake_counted(u32::MAX);
        }
    }

    /// Wakes one sleeper if any announced itself and no wake-up is on its
    /// way (and makes every waiter about to sleep look again); call after a
    /// change that one waiter can use, with the same ordering promise as
    /// [`notify_all`](Self::notify_all).
    #[inline]
    pub(crate) fn notify_one(&self) {
        if self.sleepers.any_after() {
            self.wake_counted(1);
        }
    }

    /// Bumps `seq` and wakes up to `n` sleepers (`u32::MAX`: all), counting
    /// them as coming; a single wake-up is skipped while another is on its
    /// way.
    #[cold]
    fn wake_counted(&self, n: u32) {
        self.seq.fetch_add(1, Ordering::SeqCst);
        // SeqCst, after the fence of `any_after`: the notifier's half of
        // the pair with a woken waiter's decrement (see the module docs).
        if n == 1 && self.coming.load(Ordering::SeqCst) as i32 > 0 {
            return;
        }
        let woken = if n == u32::MAX { futex::wake_all(&self.seq) } else { futex::wake(&self.seq, n) };
        if woken > 0 {
            self.coming.fetch_add(woken as u32, Ordering::SeqCst);
        }
    }

    /// [`notify_one`](Self::notify_one), first noting the caller's CPU as
    /// the notifier's (the hint [`spin_for_notifier`](Self::spin_for_notifier)
    /// reads). Stores only when the CPU changed, so a notifier that stays
    /// on its CPU does not dirty the line.
    #[inline]
    pub(crate) fn notify_one_from_here(&self) {
        let cpu = current_cpu();
        // Relaxed: a hint, read by waiters with no ordering attached.
        if self.cpu.load(Ordering::Relaxed) != cpu {
            self.cpu.store(cpu, Ordering::Relaxed);
        }
        self.notify_one();
    }

    /// Spins up to `max` for `ready()` before a waiter sleeps, unless the
    /// last noted notifier ran on the caller's CPU (that one cannot answer
    /// while we spin: it needs this CPU): then this returns `false` at
    /// once. (Not spinning while others already sleep was measured with 16
    /// to 256 waiters on 2 CPUs, 2026-12-07: no steady gain.)
    #[inline]
    pub(crate) fn spin_for_notifier(&self, max: Duration, ready: impl FnMut() -> bool) -> bool {
        let me = current_cpu();
        // Relaxed: hints (see `notify_one_from_here`); a stale value costs
        // a useless spin or an early sleep.
        let same_cpu = me != 0 && self.cpu.load(Ordering::Relaxed) == me;
        !same_cpu && spin_for(max, ready)
    }

    /// Waiters asleep in the emulated futex (loom models set up sleepers
    /// with it).
    #[cfg(shmproc_loom)]
    pub(crate) fn asleep(&self) -> usize {
        futex::sleeping(&self.seq)
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
        ec.notify_one();
        ec.notify_all();
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
        ec.notify_one();
        t.join().expect("waiter");
        assert_eq!(ec.sleepers(), 0);
    }
}
