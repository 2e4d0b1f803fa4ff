//! The sequence word that lets [`Value::load`](crate::Value::load) read a
//! small value without taking its lock.
//!
//! # The sequence word
//!
//! Only the holder of the value's lock writes the word and the data words;
//! readers never write. The data is copied in and out with word-wise atomic
//! loads and stores (never through `&T`), so a reader racing a writer sees
//! a mix of old and new words, which the word tells it to throw away.
//!
//! | value | meaning | made by |
//! |---|---|---|
//! | even `s` | stable: the data words hold the value of the last complete write | `write` (Release store of `w + 1`), or creation (0) |
//! | odd `w` | a write is in progress (or died half-way): readers retry | `write` (Relaxed store of `s \| 1`, then a Release fence) |
//!
//! | event | word | readers |
//! |---|---|---|
//! | writer starts a write-back | `s -> s \| 1` | retry |
//! | writer finishes | `w -> w + 1` (even, wrapping) | read the new value |
//! | writer dies mid-write | stays odd | after [`READ_RETRIES`] attempts fall back to the lock, which reports the dead owner |
//! | a peer writes garbage (odd) | odd | fall back to the lock; the next guard dropped under a clean lock makes it even |
//! | a peer writes garbage (even) | even | may read a torn value once: garbage in, garbage out, never out of bounds |
//!
//! A reader loads the word (Acquire), copies the data words (Relaxed), then
//! an Acquire fence and the word again (Relaxed): equal and even means no
//! write overlapped the copy (Boehm, "Can seqlocks get along with
//! programming language memory models?", 2012).

use crate::loom::atomic::{AtomicU64, Ordering, fence_acquire, fence_release};

/// How many optimistic reads a reader tries before it takes the lock.
/// A write-back takes a few nanoseconds; a writer preempted (or killed)
/// mid-write is waited for on the lock instead of spun on.
#[cfg(not(shmproc_loom))]
pub(crate) const READ_RETRIES: u32 = 64;
/// Under loom two attempts are enough to show both outcomes.
#[cfg(shmproc_loom)]
pub(crate) const READ_RETRIES: u32 = 2;

/// A data word: loaded and stored with Relaxed atomics only.
pub(crate) trait Word {
    fn get(&self) -> u64;
    fn set(&self, v: u64);
}

// All Relaxed: the ordering comes from the sequence word and the fences.
impl Word for std::sync::atomic::AtomicU64 {
    #[inline]
    fn get(&self) -> u64 {
        self.load(std::sync::atomic::Ordering::Relaxed)
    }
    #[inline]
    fn set(&self, v: u64) {
        self.store(v, std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(shmproc_loom)]
impl Word for loom::sync::atomic::AtomicU64 {
    fn get(&self) -> u64 {
        self.load(Ordering::Relaxed)
    }
    fn set(&self, v: u64) {
        self.store(v, Ordering::Relaxed)
    }
}

/// One optimistic read: copies `words` into `out` and says whether the
/// copy is consistent (no write overlapped it).
#[inline]
pub(crate) fn try_read<W: Word>(seq: &AtomicU64, words: &[W], out: &mut [u64]) -> bool {
    // Acquire: pairs with the Release store that ended the last write, so
    // the words it wrote are visible to the copy below.
    let s1 = seq.load(Ordering::Acquire);
    if s1 & 1 == 1 {
        return false;
    }
    for (o, w) in out.iter_mut().zip(words) {
        *o = w.get();
    }
    // Acquire fence: pairs with the Release fence in `write`; if the copy
    // saw any word of a newer write, the load below sees that write's odd
    // (or a later) value.
    fence_acquire();
    seq.load(Ordering::Relaxed) == s1
}

/// Up to [`READ_RETRIES`] optimistic reads; `false` if none was consistent
/// (the caller takes the lock).
#[inline]
pub(crate) fn read<W: Word>(seq: &AtomicU64, words: &[W], out: &mut [u64]) -> bool {
    for _ in 0..READ_RETRIES {
        if try_read(seq, words, out) {
            return true;
        }
        #[cfg(not(shmproc_loom))]
        std::hint::spin_loop();
        #[cfg(shmproc_loom)]
        loom::thread::yield_now();
    }
    false
}

/// Writes `src` into `words` as one seqlock write. The caller holds the
/// value's lock (the only writer); an odd word left by a dead writer stays
/// odd until this write ends.
#[inline]
pub(crate) fn write<W: Word>(seq: &AtomicU64, words: &[W], src: &[u64]) {
    // Relaxed: only lock holders write the word, and the lock's Acquire
    // made the previous holder's last store visible.
    let w = seq.load(Ordering::Relaxed) | 1;
    seq.store(w, Ordering::Relaxed);
    // Release fence: pairs with the Acquire fence in `try_read`; orders the
    // odd store before the data stores below.
    fence_release();
    for (d, s) in words.iter().zip(src) {
        d.set(*s);
    }
    // Release: pairs with the Acquire load in `try_read`.
    seq.store(w.wrapping_add(1), Ordering::Release);
}

/// Whether the word says a write is in progress (or died half-way).
#[inline]
pub(crate) fn is_odd(seq: &AtomicU64) -> bool {
    // Relaxed: called by the lock holder, the only writer.
    seq.load(Ordering::Relaxed) & 1 == 1
}
