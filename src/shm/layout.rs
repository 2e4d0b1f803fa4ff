//! What may be placed in shared memory, and how its layout is fingerprinted.

#![allow(unsafe_code)]

use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicI8, AtomicI16, AtomicI32, AtomicI64, AtomicU8, AtomicU16, AtomicU32, AtomicU64};

/// A type that may live in shared memory and be read through `&Self` while
/// other processes use it.
///
/// shmproc hands out `&T` for `T: ShmSafe` over mapped bytes, so:
///
/// # Safety
///
/// Implementors guarantee that the type
/// - is `#[repr(C)]` (or `#[repr(transparent)]`) with a layout that does not
///   depend on the compiler's choices;
/// - contains no pointers, references, file descriptors or heap types:
///   another process maps the bytes at another address;
/// - is valid for **every** bit pattern, including all zeroes (a new
///   segment is zero-filled, and a peer can die or misbehave mid-write);
/// - has interior mutability for every byte that may change after
///   creation (atomics or `UnsafeCell`), so that `&Self` stays sound while
///   other processes write;
/// - has no `Drop` glue that matters (nothing is dropped in place).
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use shmproc::ShmSafe;
///
/// #[repr(C)]
/// struct Counters {
///     hits: AtomicU64,
///     misses: AtomicU64,
/// }
///
/// // SAFETY: repr(C), two atomics: no pointers, every bit pattern valid,
/// // all bytes interior-mutable.
/// unsafe impl ShmSafe for Counters {
///     const TAG: &'static str = "example::Counters";
/// }
///
/// let c = shmproc::Shared::<Counters>::anonymous(|c| c.hits.store(1, Ordering::Relaxed))?;
/// assert_eq!(c.hits.load(Ordering::Relaxed), 1);
/// # Ok::<(), shmproc::Error>(())
/// ```
pub unsafe trait ShmSafe: Sync + Sized {
    /// A name that identifies the type's layout across builds. Change it
    /// when the meaning of the bytes changes without their size changing.
    const TAG: &'static str;

    /// The layout fingerprint stored in a segment header and checked on open.
    const LAYOUT_HASH: u64 = layout_hash(Self::TAG, core::mem::size_of::<Self>(), core::mem::align_of::<Self>());
}

/// A 64-bit FNV-1a fingerprint of a type's tag, size and alignment: what a
/// segment header records so that an opener expecting another type or
/// layout gets [`Error::LayoutMismatch`](crate::Error::LayoutMismatch).
///
/// # Examples
///
/// ```
/// let a = shmproc::layout_hash("Ring", 64, 8);
/// assert_ne!(a, shmproc::layout_hash("Ring", 128, 8));
/// assert_ne!(a, shmproc::layout_hash("Ring2", 64, 8));
/// ```
pub const fn layout_hash(tag: &str, size: usize, align: usize) -> u64 {
    let h = fnv(0xcbf2_9ce4_8422_2325, tag.as_bytes());
    let h = fnv(h, &(size as u64).to_le_bytes());
    fnv(h, &(align as u64).to_le_bytes())
}

/// Folds one more value into a layout hash (for composite layouts).
///
/// # Examples
///
/// ```
/// let base = shmproc::layout_hash("Slots", 8, 8);
/// assert_ne!(shmproc::layout_hash_mix(base, 16), shmproc::layout_hash_mix(base, 32));
/// ```
pub const fn layout_hash_mix(hash: u64, value: u64) -> u64 {
    fnv(hash, &value.to_le_bytes())
}

const fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    h
}

macro_rules! shm_safe_atomics {
    ($($t:ty),*) => {$(
        // SAFETY: a std atomic integer is repr(C, align(size)) over an
        // integer: no pointers, every bit pattern valid, interior-mutable.
        unsafe impl ShmSafe for $t {
            const TAG: &'static str = stringify!($t);
        }
    )*};
}
shm_safe_atomics!(AtomicU8, AtomicU16, AtomicU32, AtomicU64, AtomicI8, AtomicI16, AtomicI32, AtomicI64);

// SAFETY: an array of ShmSafe elements is laid out contiguously with no
// padding of its own, so it inherits every property of its element.
unsafe impl<T: ShmSafe, const N: usize> ShmSafe for [T; N] {
    const TAG: &'static str = "[T; N]";
    const LAYOUT_HASH: u64 = layout_hash_mix(layout_hash_mix(T::LAYOUT_HASH, N as u64), 0x5b5d);
}

/// Pads and aligns a value to 128 bytes, so that words written by different
/// processes never share a cache line (or an adjacent-line prefetch pair).
///
/// Unlike crossbeam's `CachePadded`, the alignment is 128 on every target,
/// so a layout does not change with the architecture of the process that
/// maps it.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::AtomicU64;
/// use shmproc::CachePadded;
///
/// let head = CachePadded::new(AtomicU64::new(0));
/// assert_eq!(core::mem::align_of_val(&head), 128);
/// ```
#[derive(Debug, Default)]
#[repr(C, align(128))]
pub struct CachePadded<T>(T);

impl<T> CachePadded<T> {
    /// Wraps a value.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = shmproc::CachePadded::new(7u32);
    /// assert_eq!(*p, 7);
    /// assert_eq!(core::mem::size_of_val(&p), 128);
    /// ```
    pub const fn new(value: T) -> Self {
        CachePadded(value)
    }

    /// Unwraps the value.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shmproc::CachePadded::new(7u32).into_inner(), 7);
    /// ```
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for CachePadded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for CachePadded<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

// SAFETY: repr(C, align(128)) around one ShmSafe field; the padding bytes
// are never read as values.
unsafe impl<T: ShmSafe> ShmSafe for CachePadded<T> {
    const TAG: &'static str = "CachePadded";
    const LAYOUT_HASH: u64 = layout_hash_mix(T::LAYOUT_HASH, 128);
}

/// An offset into a segment's payload that names a `T`: how structures in
/// shared memory refer to each other (an address would mean nothing in
/// another process).
///
/// Resolving it checks bounds and alignment against the segment every time,
/// since a peer may have written any value.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use shmproc::{RelPtr, Segment};
///
/// let seg = Segment::anonymous(4096)?;
/// let link: &RelPtr<AtomicU64> = seg.typed(0)?;
/// link.set(64);
/// link.resolve(&seg)?.store(7, Ordering::Relaxed);
/// assert_eq!(seg.typed::<AtomicU64>(64)?.load(Ordering::Relaxed), 7);
/// link.set(u64::MAX);
/// assert!(link.resolve(&seg).is_err());
/// # Ok::<(), shmproc::Error>(())
/// ```
#[repr(transparent)]
pub struct RelPtr<T> {
    offset: AtomicU64,
    _marker: PhantomData<fn() -> T>,
}

impl<T: ShmSafe> RelPtr<T> {
    /// Points at `offset` bytes into the payload.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::AtomicU32;
    /// let seg = shmproc::Segment::anonymous(64)?;
    /// let p: &shmproc::RelPtr<AtomicU32> = seg.typed(0)?;
    /// p.set(32);
    /// assert_eq!(p.offset(), 32);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn set(&self, offset: u64) {
        // Relaxed: publication of the pointee is the job of the structure
        // that stores the pointer (its own Release/Acquire pair).
        self.offset.store(offset, std::sync::atomic::Ordering::Relaxed);
    }

    /// The stored offset, unchecked.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::AtomicU32;
    /// let seg = shmproc::Segment::anonymous(64)?;
    /// let p: &shmproc::RelPtr<AtomicU32> = seg.typed(0)?;
    /// assert_eq!(p.offset(), 0); // zero-filled
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn offset(&self) -> u64 {
        self.offset.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The `T` this points at in `seg`, after checking bounds and alignment.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
    /// let seg = shmproc::Segment::anonymous(4096)?;
    /// seg.typed::<AtomicU64>(0)?.store(128, Ordering::Relaxed); // a RelPtr is an offset
    /// seg.typed::<AtomicU32>(128)?.store(7, Ordering::Relaxed);
    /// let p: &shmproc::RelPtr<AtomicU32> = seg.typed(0)?;
    /// assert_eq!(p.resolve(&seg)?.load(Ordering::Relaxed), 7);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Corrupt`](crate::Error::Corrupt) if the offset is out of
    /// bounds or misaligned; [`Error::InvalidArgument`](crate::Error::InvalidArgument)
    /// for a read-only segment.
    pub fn resolve<'s>(&self, seg: &'s crate::Segment) -> crate::Result<&'s T> {
        let corrupt = || crate::Error::Corrupt { what: "relative pointer out of bounds or misaligned" };
        let off = usize::try_from(self.offset()).map_err(|_| corrupt())?;
        if !seg.is_writable() {
            return seg.typed_in(off);
        }
        seg.typed_in(off).map_err(|_| corrupt())
    }
}

impl<T> std::fmt::Debug for RelPtr<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RelPtr").field(&self.offset.load(std::sync::atomic::Ordering::Relaxed)).finish()
    }
}

// SAFETY: repr(transparent) over an AtomicU64: no pointers, every bit
// pattern valid (resolution checks it), interior-mutable.
unsafe impl<T: ShmSafe> ShmSafe for RelPtr<T> {
    const TAG: &'static str = "RelPtr";
    const LAYOUT_HASH: u64 = layout_hash_mix(T::LAYOUT_HASH, 0x5250);
}
