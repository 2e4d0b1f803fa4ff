//! Roles held by one process at a time (the producer and the consumer of an
//! SPSC ring or a byte ring): claimed with a CAS on an owner word, taken
//! over from a holder the OS confirms dead, and probed for death at a
//! bounded rate.
//!
//! | word | value | meaning |
//! |---|---|---|
//! | `word` | `0` | free |
//! | `word` | `id \| h` | held by process `id` (owner id, slot bits 0), handover count `h` in the slot bits |
//! | `nonce` | `0` | the holder's nonce is not known: judge by its token alone |
//! | `nonce` | `n` | the nonce of the process whose id is in `word` |
//!
//! The nonce word follows the rules of `sync/owner_word.rs` (shared with
//! the robust mutex): it is 0 or the nonce of the process named in the
//! word, so a probe never pairs a new holder with an earlier one's nonce.
//!
//! A role belongs to a process, and a fork can put copies of one handle in
//! two processes: moved into a fork closure, the handle is the child's
//! alone (the parent forgets its copy); kept in a static, both processes
//! can reach it. So the first use of a handle after a fork, in the parent
//! or the child (each sees a new role epoch, `token::role_epoch`), settles
//! who holds the role with one CAS from the word value the handle
//! recorded: a child moves the role to its own id, the parent moves it to
//! its id with the next handover count. Both CAS from the same value, so
//! exactly one process keeps the role; the other's handle returns
//! [`Error::RoleLost`] from then on. A handle moved into a child is never
//! used by the parent, so the child always wins it.

use crate::error::{Error, Result};
use crate::loom::atomic::{AtomicU32, AtomicU64, Ordering};
use crate::loom::owner;
use crate::owner::probe::ProbeRate;
use crate::sync::owner_word::OwnerWord;

/// The calling process's owner id (thread slot bits 0: role handles are
/// `Send`, so a claim must not die with the thread that made it; a role
/// word uses those bits to count handovers) and its nonce.
fn me() -> Result<(u32, u64)> {
    owner::process_me().map_err(|e| Error::os("liveness token", e))
}

/// A role this process holds: the word value and nonce it was claimed
/// under, and the role epoch it was claimed (or last settled) in.
#[derive(Debug)]
pub(crate) struct Claim {
    id: u32,
    nonce: u64,
    epoch: u32,
}

/// The handover-count bits of a role word (the owner id's slot bits).
const HANDOVERS: u32 = crate::owner::id::SLOT_MASK;

/// The role word (a process id and handover count, or 0) and its holder's
/// nonce. The whole word names the holder; a liveness probe looks at the
/// process id only.
fn holder<'a>(word: &'a AtomicU32, nonce: &'a AtomicU64) -> OwnerWord<'a> {
    OwnerWord { word, nonce, id_mask: u32::MAX, probe_mask: !HANDOVERS }
}

/// Claims the role in `word` for this process: free, or held by a process
/// the OS confirms dead.
///
/// # Errors
/// [`Error::WouldBlock`] if a live process holds it; [`Error::Os`] if no
/// liveness token could be made.
pub(crate) fn claim(word: &AtomicU32, nonce_word: &AtomicU64) -> Result<Claim> {
    let (me, nonce) = me()?;
    let epoch = owner::role_epoch();
    let role = holder(word, nonce_word);
    loop {
        let cur = word.load(Ordering::Acquire);
        if cur == 0 {
            // AcqRel: the previous holder's position store happens-before
            // our attach (it released the claim after it).
            if word.compare_exchange(0, me, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                role.record(nonce);
                return Ok(Claim { id: me, nonce, epoch });
            }
            continue;
        }
        if let Some(dead_nonce) = role.dead_owner(cur) {
            if role.replace(cur, dead_nonce, me, nonce) {
                return Ok(Claim { id: me, nonce, epoch });
            }
            continue;
        }
        if word.load(Ordering::Relaxed) != cur {
            continue; // the holder changed while we looked
        }
        return Err(Error::WouldBlock);
    }
}

impl Claim {
    /// Before each use of the role: after a fork (in the parent or the
    /// child), settles who holds the role (see the module docs). `words`
    /// gives the role's word and nonce word; it is called only then, so the
    /// hot path is one load and a compare.
    ///
    /// # Errors
    /// [`Error::RoleLost`] if the other process of a fork (or a process that
    /// found the holder dead) holds the role now; [`Error::Os`] if a forked
    /// child can make no liveness token.
    #[inline]
    pub(crate) fn check<'a>(&mut self, words: impl FnOnce() -> (&'a AtomicU32, &'a AtomicU64)) -> Result<()> {
        if owner::role_epoch() == self.epoch {
            return Ok(());
        }
        let (word, nonce_word) = words();
        self.settle(word, nonce_word)
    }

    #[cold]
    fn settle(&mut self, word: &AtomicU32, nonce_word: &AtomicU64) -> Result<()> {
        let epoch = owner::role_epoch();
        let (me, nonce) = me()?;
        let next = if nonce == self.nonce {
            // The process that holds the role, after a fork: keep it under
            // the next handover count, so that a copy of this handle in the
            // child can no longer take it.
            (self.id & !HANDOVERS) | (self.id.wrapping_add(1) & HANDOVERS)
        } else {
            me
        };
        if !holder(word, nonce_word).replace(self.id, self.nonce, next, nonce) {
            return Err(Error::RoleLost);
        }
        *self = Claim { id: next, nonce, epoch };
        Ok(())
    }

    /// Gives the role back (on the role handle's drop), if the word still
    /// names this claim's holder; a role taken over meanwhile is left to
    /// its new holder.
    pub(crate) fn release(&self, word: &AtomicU32, nonce_word: &AtomicU64) {
        // Release (in `release`): our last position store happens-before
        // the next holder's claim (AcqRel).
        let _ = holder(word, nonce_word).release(self.id, self.nonce);
    }
}

/// Whether the role in `word` is held by a process the OS confirmed dead,
/// asked at most as often as `rate` allows: the question costs system
/// calls, so a caller polling an empty ring in a loop asks the OS only now
/// and then. A death, once confirmed, is final for that holder; a new
/// holder is asked at once. A free role (its holder let go) is not dead.
pub(crate) fn holder_dead(rate: &ProbeRate, word: &AtomicU32, nonce_word: &AtomicU64) -> bool {
    let id = word.load(Ordering::Relaxed);
    if id == 0 {
        return false;
    }
    rate.ask_about(u64::from(id), || holder(word, nonce_word).dead_owner(id).is_some())
}

#[cfg(all(test, not(shmproc_loom)))]
mod tests {
    use super::*;

    #[test]
    fn claim_release_and_probe() {
        let (w, n) = (AtomicU32::new(0), AtomicU64::new(0));
        let probe = ProbeRate::new();
        assert!(!holder_dead(&probe, &w, &n), "free is not dead");
        let c = claim(&w, &n).expect("claim");
        assert!(matches!(claim(&w, &n), Err(Error::WouldBlock)), "held by a live process (us)");
        assert!(!holder_dead(&probe, &w, &n));
        c.release(&w, &n);
        assert_eq!(n.load(Ordering::Relaxed), 0, "the nonce goes with the release");
        let c = claim(&w, &n).expect("claim again");
        // A holder whose token file does not exist: dead, and taken over.
        w.store(0x7fff_fc00, Ordering::Relaxed);
        n.store(0, Ordering::Relaxed);
        c.release(&w, &n);
        assert_eq!(w.load(Ordering::Relaxed), 0x7fff_fc00, "a release leaves another holder's role alone");
        if owner::owner_dead(0x7fff_fc00, 0) {
            assert!(holder_dead(&probe, &w, &n));
            assert!(holder_dead(&probe, &w, &n), "a death is final");
            let _c = claim(&w, &n).expect("take over");
            assert!(!holder_dead(&probe, &w, &n), "the new holder is probed at once");
        }
    }
}
