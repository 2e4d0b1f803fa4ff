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
//!   CPUs the one that could go on waits behind them. So it wakes one, and
//!   none while a waiter of that side is *awake* ([`Awake`]: inside a call
//!   and not asleep: it will look at the state before it sleeps or leaves)
//!   or another wake-up is still on its way (`coming > 0`: that waiter will
//!   look too). The caller that leaves the awake set last passes a wake-up
//!   on if it leaves something behind ([`Awake::leave`], the channel
//!   engine's `Call`). This keeps the number of awake callers near the
//!   number that can make progress: a parent filling a queue for 256
//!   sleeping consumers wakes one, which takes items in a loop while the
//!   other 255 sleep, instead of a chain of wake-ups that makes every
//!   consumer runnable on two CPUs.
//!
//! Why a skipped wake-up is never lost: a waiter leaves the awake set (a
//! SeqCst RMW) after it announced itself and before its last look, and a
//! woken waiter re-enters it before it decrements `coming`. A notifier
//! that skipped read `awake` (or `coming`) after its own change and its
//! own fence and saw a caller still counted; by the total order of the
//! SeqCst operations, that caller's later leave, and the look that follows
//! it (before a sleep, or the pass-on check of a call that ends), see the
//! change.
//!
//! A caller killed while awake leaves `awake` too high, and a woken waiter
//! killed before it arrived leaves `coming` too high; notifiers would then
//! skip every wake-up. Waiters wake at liveness intervals anyway, and one
//! that wakes on its timeout to find its condition true clears both
//! ([`stranded`](RawEventCount::stranded)), which restores the wake-ups;
//! it clears `awake` only if no caller of its side made progress during
//! its whole sleep (callers that did are awake and serving). A count too
//! low costs needless wake calls, never correctness, and the next caller
//! to enter lifts one below zero to 1 ([`Awake::enter`]). Likewise
//! a waiter killed while announced leaves `sleepers` too high, which costs
//! needless wake calls only.
//!
//! The `cpu` hint lets a waiter decide how to wait before it sleeps: a peer
//! on another CPU answers within a cache-line hand-off, so the waiter
//! spins; a peer that last ran on this very CPU cannot answer while we spin
//! (it needs this CPU), so the waiter yields it a few times. Any value is
//! harmless: a wrong hint costs a useless spin or yield, or an early sleep.

use std::time::{Duration, Instant};

use crate::loom::atomic::{AtomicU32, Ordering, dekker_fence};
use crate::loom::futex::{self, Wake};
use crate::loom::{current_cpu, spin_for, yield_until};

/// How many times a waiter that preempted its notifier gives the CPU back
/// before it sleeps (see [`RawEventCount::spin_for_notifier`]).
const YIELDS: u32 = 2;
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

impl Key {
    /// The value of `seq` the key was taken at (what the waiting service
    /// compares the word with).
    #[cfg(feature = "async")]
    pub(crate) fn value(self) -> u32 {
        self.0
    }
}

/// The callers of one side of a channel that are inside a call and not
/// asleep (an `i32`: a [`stranded`](RawEventCount::stranded) waiter resets
/// it, and callers counted before then may leave it below zero until the
/// next caller enters; zero or less means none). Placed beside the side's lock, which the same callers
/// write anyway, so counting costs a call no extra cache line.
#[derive(Debug, Default)]
#[repr(transparent)]
pub(crate) struct Awake(AtomicU32);

impl Awake {
    #[cfg(shmproc_loom)]
    pub(crate) fn new() -> Self {
        Awake(AtomicU32::new(0))
    }

    /// Counts a caller in: at the start of a call, and after a sleep.
    ///
    /// The count is never above the callers counted in (the module docs'
    /// promise that rests on it): a reset stores 0 while its caller is
    /// awake, and a caller that finds the count below zero here raises it
    /// to 1 (itself at least is in), so the callers whose entries the
    /// reset forgot drag it below zero only until the next call.
    #[inline]
    pub(crate) fn enter(&self) {
        // SeqCst: a notifier that reads this count before the caller's
        // leave is ordered before the caller's later looks (module docs).
        let before = self.0.fetch_add(1, Ordering::SeqCst) as i32;
        if before < 0 {
            self.lift(before.wrapping_add(1));
        }
    }

    #[cold]
    fn lift(&self, seen: i32) {
        // A failed exchange means another caller moved the count: it will
        // lift it if it is still below zero.
        let _ = self.0.compare_exchange(seen as u32, 1, Ordering::SeqCst, Ordering::Relaxed);
    }

    /// Counts a caller out (before its last look ahead of a sleep, or at
    /// the end of its call): whether it was the last one awake. The caller
    /// then looks at the state with SeqCst loads.
    #[inline]
    pub(crate) fn leave(&self) -> bool {
        let before = self.0.fetch_sub(1, Ordering::SeqCst) as i32;
        dekker_fence();
        before <= 1
    }

    /// Whether no caller is awake (a notifier's look, after its fence).
    #[inline]
    pub(crate) fn none(&self) -> bool {
        self.0.load(Ordering::SeqCst) as i32 <= 0
    }

    /// The count (for tests).
    #[cfg(test)]
    pub(crate) fn count(&self) -> i32 {
        self.0.load(Ordering::Relaxed) as i32
    }
}

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

    /// Sleeps until notified after `key` was taken, or `deadline`, then
    /// counts the caller awake again. The caller left `awake` before its
    /// last look. A waiter woken by a wake call counts itself arrived
    /// (`coming -= 1`) after it is awake, so a notifier never sees neither.
    #[inline]
    pub(crate) fn wait(&self, key: Key, deadline: Option<Instant>, awake: &Awake) -> Wake {
        let woke = futex::wait(&self.seq, key.0, deadline);
        awake.enter();
        if woke == Wake::Woken {
            // SeqCst: the waiter's half of the pair with `wake_one`'s load.
            self.coming.fetch_sub(1, Ordering::SeqCst);
        }
        woke
    }

    /// A waiter that woke on its timeout and found its condition true was
    /// passed over (a caller counted awake or a wake-up counted as coming
    /// never looked: it was killed): forget both counts, so notifiers wake
    /// again.
    #[cold]
    pub(crate) fn stranded(&self, awake: &Awake) {
        // Relaxed: lower counts are safe for correctness (module docs).
        self.coming.store(0, Ordering::Relaxed);
        awake.0.store(0, Ordering::Relaxed);
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

    /// Wakes one sleeper if any announced itself, no caller of its side is
    /// `awake` and no wake-up is on its way; call after a change that one
    /// waiter can use, with the same ordering promise as
    /// [`notify_all`](Self::notify_all).
    #[inline]
    pub(crate) fn notify_one(&self, awake: &Awake) {
        if self.sleepers.any_after() && awake.none() {
            self.wake_counted(1);
        }
    }

    /// Whether anyone is announced, for a caller that left the awake set
    /// (its SeqCst RMW orders this load).
    #[inline]
    pub(crate) fn anyone_announced(&self) -> bool {
        self.sleepers.any_after_seqcst()
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
    pub(crate) fn notify_one_from_here(&self, awake: &Awake) {
        let cpu = current_cpu();
        // Relaxed: a hint, read by waiters with no ordering attached.
        if self.cpu.load(Ordering::Relaxed) != cpu {
            self.cpu.store(cpu, Ordering::Relaxed);
        }
        self.notify_one(awake);
    }

    /// Waits briefly for `ready()` before a waiter sleeps, staying awake
    /// (so notifiers need not wake it). If the last noted notifier ran on
    /// another CPU, spins up to `max`: that one answers within a cache-line
    /// hand-off. If it ran on the caller's CPU, it cannot answer while we
    /// spin (it needs this CPU; most often the caller was just woken onto
    /// it and preempted it), so this gives the CPU up [`YIELDS`] times
    /// instead: the notifier runs on, sees the caller awake and skips its
    /// wake calls, and the caller finds a batch of changes when it is
    /// back. Sleeping at once there cost a wake-up and two context
    /// switches per item with 128 consumers on 2 CPUs (2026-12-07).
    #[inline]
    pub(crate) fn spin_for_notifier(&self, max: Duration, ready: impl FnMut() -> bool) -> bool {
        let me = current_cpu();
        // Relaxed: hints (see `notify_one_from_here`); a stale value costs
        // a useless spin or an early sleep.
        let same_cpu = me != 0 && self.cpu.load(Ordering::Relaxed) == me;
        if same_cpu { yield_until(YIELDS, ready) } else { spin_for(max, ready) }
    }

    /// The word waiters sleep on, for a waiter that sleeps through the
    /// waiting service (`crate::watch`) with the key it took.
    #[cfg(feature = "async")]
    pub(crate) fn seq_word(&self) -> &AtomicU32 {
        &self.seq
    }

    /// A wake call woke the waiting service on `seq`: the wake-up counted
    /// as coming has arrived (the service's half of what
    /// [`wait`](Self::wait) does for a sleeper).
    #[cfg(feature = "async")]
    pub(crate) fn arrived(&self) {
        // SeqCst: as a sleeper's decrement in `wait`.
        self.coming.fetch_sub(1, Ordering::SeqCst);
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
        ec.notify_one(&Awake::default());
        ec.notify_all();
        assert_eq!(ec.seq.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn the_last_awake_caller_knows_it_and_a_reset_count_recovers() {
        let awake = Awake::default();
        awake.enter();
        awake.enter();
        assert!(!awake.leave(), "one more is awake");
        assert!(awake.leave(), "the last one");
        assert!(awake.none());
        // A stranded waiter's reset while two callers were counted: they
        // leave below zero, which reads as "none awake" (extra wake calls,
        // never a skipped one).
        awake.enter();
        awake.enter();
        RawEventCount::default().stranded(&awake);
        assert!(awake.leave() && awake.leave());
        assert_eq!(awake.count(), -2);
        assert!(awake.none());
        // The next caller in lifts it to itself: never above the truth.
        awake.enter();
        assert_eq!(awake.count(), 1);
        assert!(awake.leave());
        assert!(awake.none());
    }

    #[test]
    fn a_waiter_is_woken_and_a_timeout_returns() {
        let ec = Arc::new(RawEventCount::default());
        let flag = Arc::new(AtomicBool::new(false));
        let k = ec.prepare();
        let awake = Awake::default();
        assert!(matches!(ec.wait(k, Some(Instant::now() + Duration::from_millis(5)), &awake), Wake::TimedOut));
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
                    ec.wait(k, Some(Instant::now() + Duration::from_secs(30)), &Awake::default());
                    ec.finish();
                }
            })
        };
        std::thread::sleep(Duration::from_millis(10));
        flag.store(true, Ordering::SeqCst);
        ec.notify_one(&Awake::default());
        t.join().expect("waiter");
        assert_eq!(ec.sleepers(), 0);
    }
}
