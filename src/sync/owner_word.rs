//! An owner word and the owner's nonce recorded beside it: the pair that a
//! robust mutex and a ring role both keep, with the one way to ask whether
//! the owner is dead and the one way to replace a dead owner.
//!
//! The recorded nonce is only ever 0 ("not known: ask the token alone") or
//! the nonce of the process whose id is in the word:
//!
//! - an owner stores its nonce with Release right after the CAS that made
//!   it owner ([`OwnerWord::record`]), and clears it before it lets go
//!   ([`OwnerWord::release`]);
//! - [`OwnerWord::replace`] clears a dead owner's nonce (a CAS) before its
//!   CAS on the word, and stores the new owner's right after;
//! - [`OwnerWord::dead_owner`] reads the word (Acquire), the nonce
//!   (Acquire), and the word again: a nonce stored by a newer owner after
//!   its CAS shows that CAS in the second read, so a nonce returned belongs
//!   to the word value read around it.
//!
//! Without these rules a process that got a dead process's tag (tags are
//! reused once a dead owner's token file is removed) could be paired with
//! the dead one's nonce ("same tag, another nonce: reused, so dead") and be
//! taken for dead while it lives (loom: `sync::tests::loom_mutex`).

use crate::loom::atomic::{AtomicU32, AtomicU64, Ordering};
use crate::loom::owner;

/// The owner word `word` and the nonce recorded beside it. `id_mask`: the
/// bits that name the owner (others are flags, such as a mutex's waiters
/// bit); `probe_mask`: the bits of those that name the owner's thread for
/// a liveness probe (a ring role's low bits count its handovers, not a
/// thread).
#[derive(Debug, Clone, Copy)]
pub(crate) struct OwnerWord<'a> {
    pub(crate) word: &'a AtomicU32,
    pub(crate) nonce: &'a AtomicU64,
    pub(crate) id_mask: u32,
    pub(crate) probe_mask: u32,
}

impl OwnerWord<'_> {
    /// Whether the owner in word value `seen` is confirmed dead: `Some` with
    /// the nonce recorded for it (for [`replace`](Self::replace)), `None` if
    /// it lives or the word no longer holds `seen`.
    pub(crate) fn dead_owner(&self, seen: u32) -> Option<u64> {
        if self.word.load(Ordering::Acquire) != seen {
            return None;
        }
        let nonce = self.nonce.load(Ordering::Acquire);
        if self.word.load(Ordering::Relaxed) != seen {
            return None;
        }
        owner::owner_dead(seen & self.probe_mask, nonce).then_some(nonce)
    }

    /// Replaces the owner in word value `seen`, recorded with `old_nonce`
    /// (from [`dead_owner`](Self::dead_owner), or the caller's own record
    /// of a claim it hands on), by word value `new` and nonce `new_nonce`.
    /// `false` if another claimer changed either word first. AcqRel: the
    /// old owner's stores, as far as they reached memory, happen-before the
    /// new owner's use.
    pub(crate) fn replace(&self, seen: u32, old_nonce: u64, new: u32, new_nonce: u64) -> bool {
        if old_nonce != 0 && self.nonce.compare_exchange(old_nonce, 0, Ordering::Relaxed, Ordering::Relaxed).is_err() {
            return false;
        }
        if self.word.compare_exchange(seen, new, Ordering::AcqRel, Ordering::Relaxed).is_err() {
            return false;
        }
        self.nonce.store(new_nonce, Ordering::Release);
        true
    }

    /// Records `nonce` for the owner that just took a free word with its CAS.
    #[inline]
    pub(crate) fn record(&self, nonce: u64) {
        // Release: a reader of the nonce also sees the CAS (see `dead_owner`).
        self.nonce.store(nonce, Ordering::Release);
    }

    /// Whether word value `w` names the owner `id` of process `nonce`. The
    /// id alone is not enough: a process that got the tag of a dead one can
    /// have the very same id, and the dead one's word is not its own.
    #[inline]
    pub(crate) fn names(&self, w: u32, id: u32, nonce: u64) -> bool {
        w & self.id_mask == id && self.nonce.load(Ordering::Relaxed) == nonce
    }

    /// Lets go if word holds the owner `id` of process `nonce`: clears the
    /// nonce, then the word (Release: the owner's writes happen-before the
    /// next owner's Acquire). Returns the word value it replaced (with any
    /// flag bits waiters set meanwhile), or `None` if the caller is not the
    /// owner (a copy of a handle in another process, or an owner a peer
    /// took over from): then nothing changes.
    #[inline]
    pub(crate) fn release(&self, id: u32, nonce: u64) -> Option<u32> {
        let mut w = self.word.load(Ordering::Relaxed);
        if !self.names(w, id, nonce) {
            return None;
        }
        self.nonce.store(0, Ordering::Relaxed);
        loop {
            match self.word.compare_exchange_weak(w, 0, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return Some(w),
                // Only flag bits (waiters) may change while we own it.
                Err(now) if now & self.id_mask == id => w = now,
                Err(_) => return None,
            }
        }
    }
}
