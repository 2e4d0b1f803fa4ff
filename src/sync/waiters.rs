//! The count of sleepers beside a futex word, and the one rule that keeps
//! a wake-up from being lost.
//!
//! A waiter announces itself, then looks at the state once more, then
//! sleeps; a notifier changes the state, then wakes only if someone
//! announced. Either the waiter's last look sees the change, or the
//! notifier sees the announcement (a Dekker pair): the announcement and
//! the state change are each followed by a full ordering point before the
//! other word is read.
//!
//! - The waiter side, [`Waiters::announce`], always fences: callers may
//!   take their last look with plain Acquire loads (the eventcount's
//!   waiters look at ring positions).
//! - The notifier side has two forms, so a notifier whose state change is
//!   itself a SeqCst access (a semaphore's count, an event's flag, a
//!   condition variable's sequence) pays no fence on its fast path:
//!   [`Waiters::any_after_seqcst`] relies on the single total order of
//!   SeqCst accesses (a fence only under loom, which weakens SeqCst
//!   accesses but models SeqCst fences), and [`Waiters::any_after`] fences
//!   after any weaker change (a Release store of a position).
//!
//! The word is shared memory: a withdrawal saturates at zero, so a peer
//! that zeroed it makes notifiers skip a wake at worst, and every waiter
//! of shmproc sleeps with a timeout.

use crate::loom::atomic::{AtomicU32, Ordering, dekker_fence, fence_seq_cst};

/// Announced sleepers on one futex word (`repr(transparent)`: one `u32` in
/// the shared layouts that hold it).
#[derive(Debug, Default)]
#[repr(transparent)]
pub(crate) struct Waiters(AtomicU32);

impl Waiters {
    /// No sleepers (for tests and loom models; shared layouts start zeroed).
    #[cfg(any(test, shmproc_loom))]
    pub(crate) fn new() -> Waiters {
        Waiters(AtomicU32::new(0))
    }

    /// A waiter announces itself; its next look at the state is ordered
    /// after the announcement. Call [`withdraw`](Self::withdraw) after the
    /// sleep, whatever happened.
    #[inline]
    pub(crate) fn announce(&self) {
        // SeqCst RMW and a full fence: the waiter's half of the pair,
        // ordered before its last look (which may use Acquire loads).
        self.0.fetch_add(1, Ordering::SeqCst);
        fence_seq_cst();
    }

    /// Withdraws an announcement (saturating at zero).
    #[inline]
    pub(crate) fn withdraw(&self) {
        let _ = self.0.fetch_update(Ordering::SeqCst, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// Announces a waiter until the returned announcement is dropped (an
    /// async wait, whose future may be dropped while it sleeps).
    #[cfg(feature = "async")]
    #[inline]
    pub(crate) fn announced(&self) -> Announcement<'_> {
        self.announce();
        Announcement(self)
    }

    /// Notifier, after changing the state with a SeqCst access: whether
    /// anyone may sleep (then wake them).
    #[inline]
    pub(crate) fn any_after_seqcst(&self) -> bool {
        dekker_fence();
        self.0.load(Ordering::SeqCst) != 0
    }

    /// Notifier, after changing the state with any weaker access: whether
    /// anyone may sleep (then wake them).
    #[inline]
    #[cfg_attr(not(feature = "serde"), allow(dead_code))] // used by the channels
    pub(crate) fn any_after(&self) -> bool {
        fence_seq_cst();
        self.0.load(Ordering::SeqCst) != 0
    }

    /// The count now (for tests and statistics).
    #[cfg(test)]
    pub(crate) fn count(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }
}

/// An announcement on [`Waiters`], withdrawn on drop.
#[cfg(feature = "async")]
#[derive(Debug)]
#[must_use = "dropping it withdraws the announcement"]
pub(crate) struct Announcement<'a>(&'a Waiters);

#[cfg(feature = "async")]
impl Drop for Announcement<'_> {
    fn drop(&mut self) {
        self.0.withdraw();
    }
}

#[cfg(all(test, not(shmproc_loom)))]
mod tests {
    use super::*;

    #[test]
    fn announcements_count_and_withdrawals_saturate() {
        let w = Waiters::new();
        assert!(!w.any_after() && !w.any_after_seqcst());
        w.announce();
        w.announce();
        assert!(w.any_after() && w.any_after_seqcst());
        assert_eq!(w.count(), 2);
        w.withdraw();
        w.withdraw();
        w.withdraw(); // one too many (a zeroed word): stays at zero
        assert_eq!(w.count(), 0);
        assert!(!w.any_after());
    }
}
