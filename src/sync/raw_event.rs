//! `RawEvent`, `RawCondvar` and `RawBarrier`: the other futex state
//! machines.
//!
//! Event: `flag` (0 clear, 1 set) is the futex word; `waiters` lets `set`
//! skip the wake syscall (SeqCst Dekker pair, as in `raw_semaphore.rs`). A
//! setter that dies before `set` leaves waiters to their timeouts.
//!
//! Condvar: `seq` is the futex word, bumped by every notify. A waiter reads
//! `seq` while still holding the mutex, then unlocks and sleeps while `seq`
//! is unchanged, so a notify between the unlock and the sleep is never lost.
//! A waiter killed while asleep leaves the kernel's queue with its process;
//! `waiters` may then stay too high, which only costs a syscall per notify.
//!
//! Barrier: `generation` is the futex word, bumped when the last party arrives.
//! `arrived` counts arrivals in the current generation; `broken` is 0, or
//! the pid of a dead party + 1, or `BROKEN_OTHER` (timeout, abort). Parties
//! register their process (owner id and nonce) in `members`, so a waiting
//! party can find a member that died and break the barrier instead of
//! waiting for an arrival that will never come.
#![allow(unsafe_code)]

use std::time::Instant;

use crate::loom::atomic::{AtomicU32, Ordering};
use crate::loom::{futex, owner};
use crate::owner::registry::{BARRIER_ENTRIES, Dead, RawRegistry};
use crate::shm::layout::{CachePadded, ShmSafe};
use crate::sync::waiters::Waiters;

/// An event's state.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct RawEvent {
    pub(crate) flag: AtomicU32,
    pub(crate) waiters: Waiters,
}

// SAFETY: repr(C) over two atomics: no pointers, any bits valid (any
// non-zero flag reads as set), interior-mutable.
unsafe impl ShmSafe for RawEvent {
    const TAG: &'static str = "shmproc::Event";
}

/// A condition variable's state.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct RawCondvar {
    pub(crate) seq: AtomicU32,
    pub(crate) waiters: Waiters,
}

// SAFETY: repr(C) over two atomics: no pointers, any bits valid,
// interior-mutable.
unsafe impl ShmSafe for RawCondvar {
    const TAG: &'static str = "shmproc::Condvar";
}

/// Why [`RawBarrier::wait`] returned without the barrier tripping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BarrierStop {
    /// This waiter's deadline passed; it broke the barrier for everyone.
    TimedOut,
    /// The barrier is broken: `Some(pid)` of a dead party, or `None`.
    Broken(Option<u32>),
}

/// How a party's arrival at a barrier went ([`RawBarrier::arrive`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arrival {
    /// It was the last party: the barrier tripped; its arrival index.
    Tripped(usize),
    /// Others are still to come: wait.
    Waiting(Waiting),
}

/// A party waiting at a barrier: the generation and reset count it arrived
/// in, and its arrival index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Waiting {
    generation: u32,
    resets: u32,
    index: usize,
}

/// A barrier's state.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct RawBarrier {
    pub(crate) generation: CachePadded<AtomicU32>,
    pub(crate) arrived: AtomicU32,
    pub(crate) parties: AtomicU32,
    pub(crate) broken: AtomicU32,
    pub(crate) resets: AtomicU32,
    /// The processes that took part (their deaths break the barrier).
    pub(crate) members: RawRegistry<BARRIER_ENTRIES>,
}

// SAFETY: repr(C) over atomics and a registry (a repr(C) table of
// atomics): no pointers, any bits valid (member ids are only compared and
// probed), interior-mutable.
unsafe impl ShmSafe for RawBarrier {
    const TAG: &'static str = "shmproc::Barrier";
}

impl RawEvent {
    #[cfg(shmproc_loom)]
    pub(crate) fn new() -> RawEvent {
        RawEvent { flag: AtomicU32::new(0), waiters: Waiters::new() }
    }

    /// Sets the flag and wakes every waiter.
    pub(crate) fn set(&self) {
        // SeqCst: the notifier's half of the pair with `wait` (see
        // `waiters.rs`).
        self.flag.store(1, Ordering::SeqCst);
        if self.waiters.any_after_seqcst() {
            futex::wake_all(&self.flag);
        }
    }

    /// Clears the flag.
    pub(crate) fn clear(&self) {
        self.flag.store(0, Ordering::Relaxed);
    }

    /// Whether the flag is set.
    pub(crate) fn is_set(&self) -> bool {
        // Acquire: pairs with the SeqCst store in `set`.
        self.flag.load(Ordering::Acquire) != 0
    }

    /// Waits until set or `deadline`; returns the flag.
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> bool {
        if crate::loom::spin_until(|| self.is_set()) {
            return true;
        }
        loop {
            if self.is_set() {
                return true;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
            // The waiter's half of the pair with `set`; the kernel looks
            // at the flag once more before it sleeps.
            self.waiters.announce();
            let w = futex::wait(&self.flag, 0, deadline);
            self.waiters.withdraw();
            if w == futex::Wake::TimedOut {
                return self.is_set();
            }
        }
    }
}

#[cfg(feature = "async")]
impl RawEvent {
    /// The async twin of [`wait`](RawEvent::wait) without deadline: the
    /// same steps up to the sleep (announce, look once more), then the
    /// waiting service watches `flag` (`source` makes this event's `flag`
    /// as the service sees it, once, if the call must wait). Errors: the
    /// waiting service failed.
    pub(crate) async fn wait_async(
        &self,
        source: impl FnOnce() -> std::sync::Arc<dyn crate::watch::AsyncWord>,
    ) -> std::io::Result<()> {
        if self.is_set() {
            return Ok(());
        }
        let source = source();
        loop {
            if self.is_set() {
                return Ok(());
            }
            // The waiter's half of the pair with `set`; the service looks
            // at the flag once more (SeqCst) before it sleeps. Withdrawn
            // when dropped, also if this future is dropped while it sleeps.
            let announced = self.waiters.announced();
            crate::watch::word_changed(&source, 0, None).await?;
            drop(announced);
        }
    }
}

impl RawCondvar {
    #[cfg(shmproc_loom)]
    pub(crate) fn new() -> RawCondvar {
        RawCondvar { seq: AtomicU32::new(0), waiters: Waiters::new() }
    }

    /// First half of a wait, called while the mutex is still held: the
    /// sequence number to sleep on.
    pub(crate) fn prepare(&self) -> u32 {
        // Read while holding the mutex: a notify that follows our unlock
        // changes `seq`, so the sleep below returns at once.
        let seq = self.seq.load(Ordering::SeqCst);
        // The waiter's half of the pair with `notify`.
        self.waiters.announce();
        seq
    }

    /// Second half, after the mutex was released: sleeps while `seq` is
    /// unchanged; `true` if `deadline` passed.
    pub(crate) fn sleep(&self, seq: u32, deadline: Option<Instant>) -> bool {
        if crate::loom::spin_until(|| self.seq.load(Ordering::Relaxed) != seq) {
            self.waiters.withdraw();
            return false;
        }
        let w = futex::wait(&self.seq, seq, deadline);
        self.waiters.withdraw();
        w == futex::Wake::TimedOut
    }

    /// Wakes up to `n` waiters.
    pub(crate) fn notify(&self, n: u32) {
        // SeqCst: changes `seq` for sleepers to see, then (the notifier's
        // half of the pair) reads `waiters`.
        self.seq.fetch_add(1, Ordering::SeqCst);
        if self.waiters.any_after_seqcst() {
            futex::wake(&self.seq, n);
        }
    }
}

/// `broken` value for a timeout or an abort.
pub(crate) const BROKEN_OTHER: u32 = u32::MAX;

impl RawBarrier {
    #[cfg(shmproc_loom)]
    pub(crate) fn new(parties: u32) -> Box<RawBarrier> {
        Box::new(RawBarrier {
            generation: CachePadded::new(AtomicU32::new(0)),
            arrived: AtomicU32::new(0),
            parties: AtomicU32::new(parties),
            broken: AtomicU32::new(0),
            resets: AtomicU32::new(0),
            members: RawRegistry::default(),
        })
    }

    /// Registers the calling process, so that its death breaks the barrier
    /// (beyond [`BARRIER_ENTRIES`] processes, the rest are not tracked).
    pub(crate) fn register(&self) -> std::io::Result<()> {
        self.members.register(Dead::Keep).map(drop)
    }

    /// The pid of a registered member that is dead, if any.
    fn dead_member(&self) -> Option<u32> {
        self.members.first_dead()
    }

    /// Why the barrier is broken: `Some(pid)` of a dead party, or `None`.
    pub(crate) fn broken_by(&self) -> Option<Option<u32>> {
        match self.broken.load(Ordering::Acquire) {
            0 => None,
            BROKEN_OTHER => Some(None),
            pid_plus_one => Some(Some(pid_plus_one - 1)),
        }
    }

    /// Breaks the barrier with `code` (kept if already broken) and wakes all.
    pub(crate) fn break_with(&self, code: u32) {
        let _ = self.broken.compare_exchange(0, code, Ordering::AcqRel, Ordering::Relaxed);
        // Bump the generation word so sleepers wake and see `broken`.
        self.generation.fetch_add(1, Ordering::Release);
        futex::wake_all(&self.generation);
    }

    /// Waits for all parties; `Ok(arrival index)`, or why not: this
    /// waiter's deadline passed (it broke the barrier), or the barrier is
    /// broken (`Some(dead pid)`, or `None`: a timeout elsewhere, an abort,
    /// a reset).
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> Result<usize, BarrierStop> {
        let at = match self.arrive()? {
            Arrival::Tripped(index) => return Ok(index),
            Arrival::Waiting(at) => at,
        };
        crate::loom::spin_until(|| self.generation.load(Ordering::Acquire) != at.generation);
        let mut poll = owner::LivenessPoll::new();
        loop {
            if let Some(done) = self.passed(&at) {
                return done;
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                self.break_with(BROKEN_OTHER);
                return Err(BarrierStop::TimedOut);
            }
            let wake_at = poll.wake_at(now, deadline);
            let w = futex::wait(&self.generation, at.generation, wake_at);
            if let Some(done) = self.after_sleep(w, &at, &mut poll) {
                return done;
            }
        }
    }

    /// A party arrives: the last one trips the barrier (`Tripped` with its
    /// index), the others wait (`Waiting`); `Err` if it is broken already.
    pub(crate) fn arrive(&self) -> Result<Arrival, BarrierStop> {
        // Acquire: pairs with the Release bump of the last arrival.
        let generation = self.generation.load(Ordering::Acquire);
        let resets = self.resets.load(Ordering::Acquire);
        if let Some(why) = self.broken_by() {
            return Err(BarrierStop::Broken(why));
        }
        let parties = self.parties.load(Ordering::Relaxed).max(1);
        let index = self.arrived.fetch_add(1, Ordering::AcqRel);
        if index + 1 >= parties {
            self.arrived.store(0, Ordering::Relaxed);
            // Release: pairs with the Acquire loads of the waiters.
            self.generation.fetch_add(1, Ordering::Release);
            futex::wake_all(&self.generation);
            return Ok(Arrival::Tripped(index as usize));
        }
        Ok(Arrival::Waiting(Waiting { generation, resets, index: index as usize }))
    }

    /// Whether the generation `at` waits in has ended: `Some` outcome
    /// (tripped, or reset meanwhile) or `None` (wait on).
    pub(crate) fn passed(&self, at: &Waiting) -> Option<Result<usize, BarrierStop>> {
        if self.generation.load(Ordering::Acquire) != at.generation && self.broken_by().is_none() {
            if self.resets.load(Ordering::Acquire) != at.resets {
                return Some(Err(BarrierStop::Broken(None)));
            }
            return Some(Ok(at.index));
        }
        None
    }

    /// After a sleep of `at` that ended `w`: `Some` outcome (broken,
    /// tripped or reset, or a dead member found at a liveness wake-up,
    /// which breaks the barrier) or `None` (look again).
    pub(crate) fn after_sleep(
        &self,
        w: futex::Wake,
        at: &Waiting,
        poll: &mut owner::LivenessPoll,
    ) -> Option<Result<usize, BarrierStop>> {
        if let Some(why) = self.broken_by() {
            return Some(Err(BarrierStop::Broken(why)));
        }
        if self.generation.load(Ordering::Acquire) != at.generation {
            if self.resets.load(Ordering::Acquire) != at.resets {
                return Some(Err(BarrierStop::Broken(None)));
            }
            return Some(Ok(at.index));
        }
        if w == futex::Wake::TimedOut && owner::checks_liveness() {
            if let Some(pid) = self.dead_member() {
                // The barrier may have tripped (and that party exited)
                // between our generation check and the death check.
                if self.generation.load(Ordering::Acquire) != at.generation && self.broken_by().is_none() {
                    return None;
                }
                self.break_with(pid.saturating_add(1));
                return Some(Err(BarrierStop::Broken(self.broken_by().flatten())));
            }
            poll.slower();
        }
        None
    }

    /// Puts the barrier back in service; dead members are forgotten.
    pub(crate) fn reset(&self) {
        self.members.forget_dead();
        self.arrived.store(0, Ordering::Relaxed);
        self.broken.store(0, Ordering::Release);
        self.resets.fetch_add(1, Ordering::Release);
        self.generation.fetch_add(1, Ordering::Release);
        futex::wake_all(&self.generation);
    }
}

#[cfg(feature = "async")]
impl RawBarrier {
    /// The async twin of [`wait`](RawBarrier::wait) without deadline: the
    /// same arrival, then the waiting service watches `generation`
    /// (`source` makes it, as for [`RawEvent::wait_async`]) with the
    /// liveness schedule of a sleeper, so a dead member still breaks the
    /// barrier. Dropped after it arrived but before the barrier tripped,
    /// the future breaks the barrier, as a timeout does. Outer `Err`: the
    /// waiting service failed (this party leaves, so the barrier is broken
    /// too).
    pub(crate) async fn wait_async(
        &self,
        source: impl FnOnce() -> std::sync::Arc<dyn crate::watch::AsyncWord>,
    ) -> std::io::Result<Result<usize, BarrierStop>> {
        let at = match self.arrive() {
            Err(stop) => return Ok(Err(stop)),
            Ok(Arrival::Tripped(index)) => return Ok(Ok(index)),
            Ok(Arrival::Waiting(at)) => at,
        };
        let mut leaving = Leaving { barrier: self, at, armed: true };
        let source = source();
        let mut poll = owner::LivenessPoll::new();
        loop {
            if let Some(done) = self.passed(&at) {
                leaving.armed = false;
                return Ok(done);
            }
            let wake_at = poll.wake_at(Instant::now(), None);
            let w = crate::watch::word_changed(&source, at.generation, wake_at).await?;
            if let Some(done) = self.after_sleep(w, &at, &mut poll) {
                leaving.armed = false;
                return Ok(done);
            }
        }
    }
}

/// A party that arrived and waits asynchronously: if it leaves before its
/// generation ended (its future dropped, or the waiting service failed),
/// it breaks the barrier, as a timeout does, so the others do not wait for
/// it forever.
#[cfg(feature = "async")]
struct Leaving<'a> {
    barrier: &'a RawBarrier,
    at: Waiting,
    armed: bool,
}

#[cfg(feature = "async")]
impl Drop for Leaving<'_> {
    fn drop(&mut self) {
        if self.armed && self.barrier.passed(&self.at).is_none() && self.barrier.broken_by().is_none() {
            self.barrier.break_with(BROKEN_OTHER);
        }
    }
}
