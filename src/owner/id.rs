//! Owner ids: who holds a lock, a ring role, a registry entry or an MPMC
//! slot, as one 32-bit value that fits a futex word beside a flag bit.
//!
//! | bits | meaning |
//! |---|---|
//! | 31 | never set in an id: free for the holder's word (a mutex's WAITERS bit) |
//! | 30..10 | the process's tag ([`TAG_BITS`]): the low bits of its liveness token's nonce, which name its token file |
//! | 9..0 | the thread slot ([`SLOT_BITS`]) in that token file; 0 names the process itself (roles and registries belong to a process) |
//!
//! An id is never 0 (tags are never 0). The full 64-bit nonce is recorded
//! beside an id wherever an owner can be judged dead, so a tag reused by a
//! later process is told apart (`token::judge`). Only this module splits or
//! builds ids.

/// Bits of the nonce that name the token file: the tag.
pub(crate) const TAG_BITS: u32 = 21;
/// Mask of the tag bits of a nonce.
pub(crate) const TAG_MASK: u64 = (1 << TAG_BITS) - 1;
/// Bits of a thread slot number in an owner id.
pub(crate) const SLOT_BITS: u32 = 10;
/// The slot bits of an owner id.
pub(crate) const SLOT_MASK: u32 = (1 << SLOT_BITS) - 1;
/// Thread slots per process; slot 0 means "the process".
pub(crate) const SLOTS: usize = 1 << SLOT_BITS;

const _: () = assert!(TAG_BITS + SLOT_BITS == 31, "owner ids leave the top bit of a futex word free");

/// The id of thread slot `slot` of the process with tag `tag`.
#[inline]
pub(crate) const fn compose(tag: u32, slot: u32) -> u32 {
    (tag << SLOT_BITS) | (slot & SLOT_MASK)
}

/// The process tag of an id.
#[inline]
pub(crate) const fn tag_of(id: u32) -> u32 {
    id >> SLOT_BITS
}

/// The thread slot of an id (0: the process).
#[inline]
pub(crate) const fn slot_of(id: u32) -> u32 {
    id & SLOT_MASK
}

/// The id of the process an id belongs to (its slot bits cleared).
#[inline]
pub(crate) const fn process_of(id: u32) -> u32 {
    id & !SLOT_MASK
}

/// The tag a nonce gives its process.
#[inline]
pub(crate) const fn tag_of_nonce(nonce: u64) -> u32 {
    (nonce & TAG_MASK) as u32
}

#[cfg(all(test, not(shmproc_loom)))]
mod tests {
    use super::*;

    #[test]
    fn ids_split_into_tag_and_slot() {
        let id = compose(0x1f_ffff, 5);
        assert_eq!((tag_of(id), slot_of(id)), (0x1f_ffff, 5));
        assert_eq!(process_of(id), compose(0x1f_ffff, 0));
        assert_eq!(id >> 31, 0, "the top bit stays free");
        assert_eq!(compose(1, SLOT_MASK + 1), compose(1, 0), "a slot never spills into the tag");
        assert_eq!(tag_of_nonce(0xdead_beef_0012_3456), 0x12_3456 & TAG_MASK as u32);
    }
}
