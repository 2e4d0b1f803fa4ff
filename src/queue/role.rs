//! Roles held by one process at a time (the producer and the consumer of an
//! SPSC ring): claimed with a CAS on an owner word, taken over from a
//! holder the OS confirms dead, and probed for death at a bounded rate.
//!
//! | word | value | meaning |
//! |---|---|---|
//! | `word` | `0` | free |
//! | `word` | `id` | held by process `id` (owner id, thread slot bits cleared) |
//! | `nonce` | any | the holder's process nonce, written right after the claim |
//!
//! A holder that dies leaves its id in the word; the next claimer (or a
//! probe) asks the OS through the holder's liveness token.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::loom::atomic::{AtomicU32, AtomicU64, Ordering};
use crate::loom::owner;

/// The calling process's owner id with the thread slot bits cleared (role
/// handles are `Send`: a claim must not die with the thread that made it),
/// and its nonce.
fn me() -> Result<(u32, u64)> {
    let (me, nonce) = owner::me().map_err(|e| Error::os("liveness token", e))?;
    Ok((me & !((1 << crate::sys::token::SLOT_BITS) - 1), nonce))
}

/// Claims the role in `word` for this process: free, or held by a process
/// the OS confirms dead.
///
/// # Errors
/// [`Error::WouldBlock`] if a live process holds it; [`Error::Os`] if no
/// liveness token could be made.
pub(crate) fn claim(word: &AtomicU32, nonce_word: &AtomicU64) -> Result<()> {
    let (me, nonce) = me()?;
    loop {
        let cur = word.load(Ordering::Acquire);
        if cur == 0 || owner::owner_dead(cur, nonce_word.load(Ordering::Relaxed)) {
            // AcqRel: the previous holder's position store happens-before
            // our attach (it released the claim after it, or it died).
            if word.compare_exchange(cur, me, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                nonce_word.store(nonce, Ordering::Relaxed);
                return Ok(());
            }
            continue;
        }
        return Err(Error::WouldBlock);
    }
}

/// Gives the role back (on the role handle's drop).
pub(crate) fn release(word: &AtomicU32) {
    // Release: our last position store happens-before the next holder's
    // claim (AcqRel).
    word.store(0, Ordering::Release);
}

/// How often [`DeadProbe`] asks the OS at most.
pub(crate) const PROBE_INTERVAL: Duration = Duration::from_millis(5);

/// Asks, at most every [`PROBE_INTERVAL`], whether a role's holder is dead:
/// the question costs system calls, so a caller polling an empty ring in a
/// loop asks the OS only now and then. A death, once confirmed, is final
/// for that holder; a new holder is probed at once.
#[derive(Debug, Default)]
pub(crate) struct DeadProbe {
    /// The holder last probed, when, and whether it was dead.
    last: Option<(u32, Instant, bool)>,
}

impl DeadProbe {
    /// Whether the role in `word` is held by a process the OS confirmed
    /// dead. A free role (its holder let go) is not dead.
    pub(crate) fn holder_dead(&mut self, word: &AtomicU32, nonce_word: &AtomicU64) -> bool {
        let id = word.load(Ordering::Acquire);
        if id == 0 {
            return false;
        }
        let now = Instant::now();
        match self.last {
            Some((who, _, true)) if who == id => return true,
            Some((who, at, false)) if who == id && now.duration_since(at) < PROBE_INTERVAL => return false,
            _ => {}
        }
        let dead = owner::owner_dead(id, nonce_word.load(Ordering::Relaxed));
        self.last = Some((id, now, dead));
        dead
    }
}

#[cfg(all(test, not(shmproc_loom)))]
mod tests {
    use super::*;

    #[test]
    fn claim_release_and_probe() {
        let (w, n) = (AtomicU32::new(0), AtomicU64::new(0));
        let mut probe = DeadProbe::default();
        assert!(!probe.holder_dead(&w, &n), "free is not dead");
        claim(&w, &n).expect("claim");
        assert!(matches!(claim(&w, &n), Err(Error::WouldBlock)), "held by a live process (us)");
        assert!(!probe.holder_dead(&w, &n));
        release(&w);
        claim(&w, &n).expect("claim again");
        // A holder whose token file does not exist: dead, and taken over.
        w.store(0x7fff_fc00, Ordering::Relaxed);
        n.store(0, Ordering::Relaxed);
        if owner::owner_dead(0x7fff_fc00, 0) {
            assert!(probe.holder_dead(&w, &n));
            assert!(probe.holder_dead(&w, &n), "a death is final");
            claim(&w, &n).expect("take over");
            assert!(!probe.holder_dead(&w, &n), "the new holder is probed at once");
        }
    }
}
