//! Carving typed regions out of a segment's payload.

use crate::error::{Error, Result};
use crate::shm::layout::ShmSafe;

/// A bump allocator of payload offsets: lays out several typed regions one
/// after another, each at its alignment, and tells the total size. The
/// creator and every opener run the same layout code over the same
/// (validated) parameters and so agree on the offsets; nothing but offsets
/// is ever stored.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
/// use shmproc::{Arena, Segment};
///
/// let mut arena = Arena::new();
/// let head = arena.place::<AtomicU64>()?;
/// let slots = arena.place_slice::<AtomicU32>(16)?;
/// let seg = Segment::anonymous(arena.size())?;
/// seg.typed::<AtomicU64>(head)?.store(3, Ordering::Relaxed);
/// assert_eq!(seg.slice::<AtomicU32>(slots, 16)?.len(), 16);
/// # Ok::<(), shmproc::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Arena {
    next: usize,
}

impl Arena {
    /// An empty layout starting at payload offset 0.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shmproc::Arena::new().size(), 0);
    /// ```
    pub fn new() -> Self {
        Arena { next: 0 }
    }

    /// Reserves room for one `T`; returns its offset.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU8, AtomicU64};
    /// let mut a = shmproc::Arena::new();
    /// assert_eq!(a.place::<AtomicU8>()?, 0);
    /// assert_eq!(a.place::<AtomicU64>()?, 8); // aligned
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the layout would overflow.
    pub fn place<T: ShmSafe>(&mut self) -> Result<usize> {
        self.place_slice::<T>(1)
    }

    /// Reserves room for `n` consecutive `T`s; returns the first one's offset.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::AtomicU32;
    /// let mut a = shmproc::Arena::new();
    /// assert_eq!(a.place_slice::<AtomicU32>(10)?, 0);
    /// assert_eq!(a.size(), 40);
    /// assert!(a.place_slice::<AtomicU32>(usize::MAX).is_err());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the layout would overflow.
    pub fn place_slice<T: ShmSafe>(&mut self, n: usize) -> Result<usize> {
        let overflow = || Error::InvalidArgument { what: "shared-memory layout overflows" };
        let align = core::mem::align_of::<T>();
        let start = self.next.checked_next_multiple_of(align).ok_or_else(overflow)?;
        let bytes = core::mem::size_of::<T>().checked_mul(n).ok_or_else(overflow)?;
        self.next = start.checked_add(bytes).ok_or_else(overflow)?;
        if self.next > isize::MAX as usize {
            return Err(overflow());
        }
        Ok(start)
    }

    /// The payload size that holds everything placed so far.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::AtomicU64;
    /// let mut a = shmproc::Arena::new();
    /// a.place_slice::<AtomicU64>(3)?;
    /// assert_eq!(a.size(), 24);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn size(&self) -> usize {
        self.next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CachePadded;
    use std::sync::atomic::{AtomicU8, AtomicU64};

    #[test]
    fn offsets_are_aligned_and_ordered() {
        let mut a = Arena::new();
        assert_eq!(a.place::<AtomicU8>().expect("fits"), 0);
        assert_eq!(a.place::<AtomicU64>().expect("fits"), 8);
        assert_eq!(a.place::<CachePadded<AtomicU64>>().expect("fits"), 128);
        assert_eq!(a.place_slice::<AtomicU8>(3).expect("fits"), 256);
        assert_eq!(a.size(), 259);
    }

    #[test]
    fn overflow_is_an_error() {
        let mut a = Arena::new();
        assert!(a.place_slice::<AtomicU64>(usize::MAX / 4).is_err());
        let mut b = Arena::new();
        assert!(b.place_slice::<AtomicU64>(usize::MAX / 15).is_err());
    }
}
