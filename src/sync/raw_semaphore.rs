//! `RawSemaphore`: a counting semaphore on a futex word.
//!
//! | word | meaning | transitions |
//! |---|---|---|
//! | `count` | permits available | `acquire`: CAS n -> n-1 (Acquire) when n > 0; `release`: fetch_add (Release) |
//! | `waiters` | threads that may sleep on `count` | +1 before sleeping, -1 after (SeqCst, see below) |
//! | `max` | 0, or the bound of a bounded semaphore | set once at creation |
//!
//! A releaser skips the wake-up syscall when `waiters` is 0. Dekker's
//! pattern: a sleeper increments `waiters` then re-reads `count` (through
//! the futex compare); a releaser adds to `count` then reads `waiters`; both
//! SeqCst, so at least one of them sees the other.
//!
//! If a process holding permits dies, its permits are lost (a counting
//! semaphore has no owners, as in POSIX and Python); waiters then use
//! `acquire_timeout` and get `Timeout` instead of hanging.
#![allow(unsafe_code)]

use std::time::Instant;

use crate::loom::atomic::{AtomicU32, Ordering};
use crate::loom::futex;
use crate::shm::layout::{CachePadded, ShmSafe};
use crate::sync::waiters::Waiters;

/// A counting semaphore's state in shared memory.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct RawSemaphore {
    count: CachePadded<AtomicU32>,
    waiters: Waiters,
    max: AtomicU32,
}

// SAFETY: repr(C) over atomics (one padded): no pointers, any bits valid,
// all interior-mutable.
unsafe impl ShmSafe for RawSemaphore {
    const TAG: &'static str = "shmproc::Semaphore";
}

/// Field offsets of a [`RawSemaphore`], for read-only inspection
/// (`shmproc::inspect` reads them with `pread`, never maps).
#[cfg(feature = "inspect")]
pub(crate) mod peek {
    use super::RawSemaphore;
    /// Permits available.
    pub(crate) const COUNT: usize = core::mem::offset_of!(RawSemaphore, count);
    /// Threads that may sleep.
    pub(crate) const WAITERS: usize = core::mem::offset_of!(RawSemaphore, waiters);
    /// 0, or the bound of a bounded semaphore.
    pub(crate) const MAX: usize = core::mem::offset_of!(RawSemaphore, max);
}

impl RawSemaphore {
    #[cfg(shmproc_loom)]
    pub(crate) fn new(value: u32, max: u32) -> RawSemaphore {
        RawSemaphore {
            count: CachePadded::new(AtomicU32::new(value)),
            waiters: Waiters::new(),
            max: AtomicU32::new(max),
        }
    }

    /// Sets the initial value and bound (creator, before publication).
    pub(crate) fn init(&self, value: u32, max: u32) {
        self.count.store(value, Ordering::Relaxed);
        self.max.store(max, Ordering::Relaxed);
    }

    /// Takes a permit if one is free now.
    #[inline]
    pub(crate) fn try_acquire(&self) -> bool {
        let mut n = self.count.load(Ordering::Relaxed);
        while n > 0 {
            // Acquire: pairs with the Release in `release`.
            match self.count.compare_exchange_weak(n, n - 1, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(now) => n = now,
            }
        }
        false
    }

    /// Takes a permit, waiting until `deadline`; `false` on timeout.
    pub(crate) fn acquire(&self, deadline: Option<Instant>) -> bool {
        if crate::loom::spin_until(|| self.try_acquire()) {
            return true;
        }
        loop {
            if self.try_acquire() {
                return true;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
            // The waiter's half of the pair with `release` (see the
            // module docs).
            self.waiters.announce();
            let timed_out = self.count.load(Ordering::SeqCst) == 0
                && futex::wait(&self.count, 0, deadline) == futex::Wake::TimedOut;
            self.waiters.withdraw();
            if timed_out && !self.try_acquire() {
                return false;
            } else if timed_out {
                return true;
            }
        }
    }

    /// The futex word (the count), for the waiting service.
    #[cfg(feature = "async")]
    pub(crate) fn count_word(&self) -> &AtomicU32 {
        &self.count
    }

    /// The async twin of [`acquire`](RawSemaphore::acquire) without
    /// deadline: the same steps up to the sleep (announce, look once
    /// more), then the waiting service watches `count` (`source` makes
    /// this semaphore's [`count_word`](RawSemaphore::count_word) as the
    /// service sees it, once, if the call must wait). The permit is taken
    /// within one poll, the one that returns `Ready`: a future dropped
    /// before then has taken none. Errors: the waiting service failed.
    #[cfg(feature = "async")]
    pub(crate) async fn acquire_async(
        &self,
        source: impl FnOnce() -> std::sync::Arc<dyn crate::watch::AsyncWord>,
    ) -> std::io::Result<()> {
        if self.try_acquire() {
            return Ok(());
        }
        let source = source();
        loop {
            if self.try_acquire() {
                return Ok(());
            }
            // The waiter's half of the pair with `release` (see the module
            // docs); the service compares `count` with 0 once more
            // (SeqCst) before it sleeps. Withdrawn when dropped, also if
            // this future is dropped while it sleeps.
            let announced = self.waiters.announced();
            if self.count.load(Ordering::SeqCst) == 0 {
                crate::watch::word_changed(&source, 0, None).await?;
            }
            drop(announced);
        }
    }

    /// Returns `n` permits; `false` (and nothing changes) if a bounded
    /// semaphore would exceed its bound.
    pub(crate) fn release(&self, n: u32) -> bool {
        let max = self.max.load(Ordering::Relaxed);
        if max > 0 {
            let mut cur = self.count.load(Ordering::Relaxed);
            loop {
                if cur.checked_add(n).is_none_or(|v| v > max) {
                    return false;
                }
                // SeqCst: the releasing half of the Dekker pair.
                match self.count.compare_exchange_weak(cur, cur + n, Ordering::SeqCst, Ordering::Relaxed) {
                    Ok(_) => break,
                    Err(now) => cur = now,
                }
            }
        } else {
            // SeqCst: the releasing half of the Dekker pair (and Release for
            // the acquirer's Acquire CAS).
            self.count.fetch_add(n, Ordering::SeqCst);
        }
        if self.waiters.any_after_seqcst() {
            futex::wake(&self.count, n);
        }
        true
    }

    /// Permits available now (a snapshot).
    pub(crate) fn value(&self) -> u32 {
        self.count.load(Ordering::Relaxed)
    }
}
