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
            return Ok(index as usize);
        }
        crate::loom::spin_until(|| self.generation.load(Ordering::Acquire) != generation);
        let mut poll = owner::LivenessPoll::new();
        loop {
            if self.generation.load(Ordering::Acquire) != generation && self.broken_by().is_none() {
                if self.resets.load(Ordering::Acquire) != resets {
                    return Err(BarrierStop::Broken(None));
                }
                return Ok(index as usize);
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                self.break_with(BROKEN_OTHER);
                return Err(BarrierStop::TimedOut);
            }
            let wake_at = poll.wake_at(now, deadline);
            let w = futex::wait(&self.generation, generation, wake_at);
            if let Some(why) = self.broken_by() {
                return Err(BarrierStop::Broken(why));
            }
            if self.generation.load(Ordering::Acquire) != generation {
                if self.resets.load(Ordering::Acquire) != resets {
                    return Err(BarrierStop::Broken(None));
                }
                return Ok(index as usize);
            }
            if w == futex::Wake::TimedOut && owner::checks_liveness() {
                if let Some(pid) = self.dead_member() {
                    // The barrier may have tripped (and that party exited)
                    // between our generation check and the death check.
                    if self.generation.load(Ordering::Acquire) != generation && self.broken_by().is_none() {
                        continue;
                    }
                    self.break_with(pid.saturating_add(1));
                    return Err(BarrierStop::Broken(self.broken_by().flatten()));
                }
                poll.slower();
            }
        }
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
