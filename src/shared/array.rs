//! `Array<T>`: a fixed-length array of `T: Pod` in shared memory behind a
//! robust lock; the segment layout it shares with `RawArray<T>`.
//!
//! # Layout (payload offsets)
//!
//! | offset | size | field | written by |
//! |---|---|---|---|
//! | 0 | 16 | `RawMutex` (unused by `RawArray`) | lockers |
//! | 16 | 8 | `len`: number of elements | the creator, before publication |
//! | 24 | 8 | `elem_size`: `size_of::<T>()` | the creator, before publication |
//! | 32, or `align_of::<T>()` if more | `len * size_of::<T>()` | the elements | lock holders (`Array`), anyone (`RawArray`) |
//!
//! The offsets are from the array's *base*: the payload's start for an
//! array with a segment of its own (a named one, or a big one), a place in
//! its cell for a small anonymous one (a cell of a shared arena, see
//! `shm/heap.rs`, whose layout hash names the element type and flavour).
//!
//! A handle reads `len` and `elem_size` once, when it is made, and checks
//! them against the segment's size (or the cell's); it then uses only its
//! own copy, so a peer that rewrites them later cannot make it reach
//! outside the segment or the cell.
#![allow(unsafe_code)]

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use bytemuck::Pod;

use crate::error::{Error, Result};
use crate::loom::atomic::{AtomicU64, Ordering};
use crate::shm::header::kind;
use crate::shm::heap::{self, CellRef};
use crate::shm::layout::{ShmSafe, layout_hash, layout_hash_mix};
use crate::shm::segment::Segment;
use crate::sync::guard::{LockError, LockTimeoutError, Locked, RawGuard, TryLockError, deadline_after};
use crate::sync::raw_mutex::{Acquired, Fail, RawMutex};

/// The control words at the start of an array's payload.
#[repr(C)]
pub(crate) struct ArrayHeader {
    raw: RawMutex,
    /// Number of elements; set at creation, checked whenever a handle is made.
    len: AtomicU64,
    /// `size_of::<T>()` at creation, checked whenever a handle is made.
    elem_size: AtomicU64,
}

// SAFETY: repr(C) over a RawMutex (ShmSafe) and two atomics: no
// pointers; any bits are valid values (len and elem_size are checked
// before use); all interior-mutable.
unsafe impl ShmSafe for ArrayHeader {
    const TAG: &'static str = "shmproc::ArrayHeader";
}

/// The header's size: the elements start here, or at their alignment.
const HEADER: usize = core::mem::size_of::<ArrayHeader>();
#[cfg(not(shmproc_loom))] // loom's atomics are bigger
const _: () = assert!(HEADER == 32 && core::mem::offset_of!(ArrayHeader, len) == 16);

/// Where the elements of an array of elements aligned to `align` start,
/// from the array's base.
pub(crate) const fn data_offset(align: usize) -> usize {
    if align > HEADER { align } else { HEADER }
}

/// The largest element alignment.
const MAX_ALIGN: usize = 128;

/// Which of the two array types a segment holds (part of its layout hash).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    Locked,
    Raw,
}

/// A segment holding an array of `T`, with its validated length: what
/// `Array<T>` and `RawArray<T>` are made of.
pub(crate) struct ArraySeg<T> {
    pub(crate) seg: Segment,
    /// The header's payload offset: 0, or a place in `cell`.
    base: usize,
    /// The length, validated against the segment when the handle was made.
    pub(crate) len: usize,
    /// The handle's share of its arena cell; `None` for a segment of its own.
    cell: Option<CellRef>,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for ArraySeg<T> {
    fn clone(&self) -> Self {
        ArraySeg { seg: self.seg.clone(), base: self.base, len: self.len, cell: self.cell.clone(), _t: PhantomData }
    }
}

fn array_hash<T>(flavor: Flavor) -> u64 {
    array_layout_hash(flavor, core::mem::size_of::<T>(), core::mem::align_of::<T>())
}

/// The layout hash of an array of elements of `size`/`align` (one formula,
/// so `shmproc::inspect` can recognise an array of any `T`).
pub(crate) const fn array_layout_hash(flavor: Flavor, size: usize, align: usize) -> u64 {
    let tag = match flavor {
        Flavor::Locked => "shmproc::Array",
        Flavor::Raw => "shmproc::RawArray",
    };
    layout_hash_mix(layout_hash(tag, size, align), data_offset(align) as u64)
}

/// Field offsets of an [`ArrayHeader`], for read-only inspection
/// (`shmproc::inspect` reads them with `pread`, never maps).
#[cfg(feature = "inspect")]
pub(crate) mod peek {
    use super::ArrayHeader;
    use core::mem::offset_of;
    /// The lock (a `RawMutex`; unused by `RawArray`).
    pub(crate) const LOCK: usize = offset_of!(ArrayHeader, raw);
    /// Number of elements.
    pub(crate) const LEN: usize = offset_of!(ArrayHeader, len);
    /// `size_of::<T>()`.
    pub(crate) const ELEM_SIZE: usize = offset_of!(ArrayHeader, elem_size);
    /// Where the elements start, for an element alignment.
    pub(crate) use super::data_offset;
}

impl<T: Pod> ArraySeg<T> {
    const DATA: usize = data_offset(core::mem::align_of::<T>());

    /// Bytes from the base to the end of `len` elements.
    fn span(len: usize) -> Result<usize> {
        const { assert!(core::mem::align_of::<T>() <= MAX_ALIGN, "array elements align to at most 128") };
        len.checked_mul(core::mem::size_of::<T>())
            .and_then(|b| b.checked_add(Self::DATA))
            .filter(|&b| isize::try_from(b).is_ok())
            .ok_or_else(|| Error::InvalidArgument { what: "array too large" })
    }

    fn builder(flavor: Flavor, len: usize) -> Result<crate::shm::segment::SegmentBuilder> {
        Ok(Segment::builder().size(Self::span(len)?).typed(kind::ARRAY, array_hash::<T>(flavor)))
    }

    /// Writes the header and the initial elements at `base` (creator only,
    /// before anyone else can reach them; `init` empty: zero-filled).
    fn init(seg: &Segment, base: usize, len: usize, init: &[T]) -> Result<()> {
        let h = seg.typed_in::<ArrayHeader>(base)?;
        // Relaxed: published by the segment's READY handshake, or by the
        // hand-off of the cell to another process.
        h.len.store(len as u64, Ordering::Relaxed);
        h.elem_size.store(core::mem::size_of::<T>() as u64, Ordering::Relaxed);
        seg.write_bytes(base + Self::DATA, bytemuck::cast_slice(init))
    }

    /// Where the header of an array in `cell` is: after the cell's own
    /// head, at the alignment of both the header and the elements.
    fn base_in(cell: &CellRef) -> usize {
        let align = core::mem::align_of::<T>().max(core::mem::align_of::<ArrayHeader>());
        cell.offset() + heap::CELL_HEAD.next_multiple_of(align)
    }

    /// The cell size for `len` elements, if they fit a cell.
    fn class(len: usize) -> Option<usize> {
        let align = core::mem::align_of::<T>().max(core::mem::align_of::<ArrayHeader>());
        let bytes = heap::CELL_HEAD.next_multiple_of(align).checked_add(Self::span(len).ok()?)?;
        heap::class_for(bytes, align)
    }

    /// A new array of `len` elements, `init` copied in (or zeroes), named
    /// if `name` is given; a small anonymous one in an arena cell.
    pub(crate) fn make(flavor: Flavor, name: Option<&str>, len: usize, init: &[T]) -> Result<Self> {
        if let (None, Some(class)) = (name, Self::class(len)) {
            let cell = CellRef::alloc(class, array_hash::<T>(flavor))?;
            let (seg, base) = (cell.segment().clone(), Self::base_in(&cell));
            Self::init(&seg, base, len, init)?;
            return Self::check(seg, base, cell.offset() + class, Some(cell));
        }
        let b = Self::builder(flavor, len)?;
        let seg = match name {
            Some(n) => b.name(n).create_with(|s| Self::init(s, 0, len, init))?,
            None => b.anonymous_with(|s| Self::init(s, 0, len, init))?,
        };
        Self::wrap(flavor, seg)
    }

    pub(crate) fn open(flavor: Flavor, name: &str) -> Result<Self> {
        Self::wrap(flavor, Segment::builder().name(name).typed(kind::ARRAY, array_hash::<T>(flavor)).open()?)
    }

    /// Checks an array segment's identity and header (a peer may have
    /// written anything) and keeps the length.
    pub(crate) fn wrap(flavor: Flavor, seg: Segment) -> Result<Self> {
        if seg.layout_identity() != (kind::ARRAY, array_hash::<T>(flavor)) {
            return Err(Error::LayoutMismatch { expected: array_hash::<T>(flavor), found: seg.layout_identity().1 });
        }
        let end = seg.len();
        Self::check(seg, 0, end, None)
    }

    /// Checks the header at `base` against `end`, the end of the segment
    /// or of the cell, and keeps the length.
    fn check(seg: Segment, base: usize, end: usize, cell: Option<CellRef>) -> Result<Self> {
        let h = seg.typed_in::<ArrayHeader>(base)?;
        // Each loaded once: the copies are what is checked and used.
        let (len, size) = (h.len.load(Ordering::Relaxed), h.elem_size.load(Ordering::Relaxed));
        if size != core::mem::size_of::<T>() as u64 {
            return Err(Error::Corrupt { what: "array element size differs from the type's" });
        }
        let last = usize::try_from(len).ok().and_then(|n| Self::span(n).ok()).and_then(|b| b.checked_add(base));
        let Some(len) = last.filter(|&e| e <= end).map(|_| len as usize) else {
            return Err(Error::Corrupt { what: "array length exceeds its segment" });
        };
        // Writable, in bounds (again) and aligned: what the element pointers rely on.
        seg.slice_in::<std::sync::atomic::AtomicU8>(base + Self::DATA, len * core::mem::size_of::<T>())?;
        if !(seg.as_ptr().wrapping_add(base + Self::DATA) as usize).is_multiple_of(core::mem::align_of::<T>()) {
            return Err(Error::Corrupt { what: "array elements misaligned" });
        }
        Ok(ArraySeg { seg, base, len, cell, _t: PhantomData })
    }

    /// The payload offset of the first element.
    pub(crate) fn data_offset(&self) -> usize {
        self.base + Self::DATA
    }

    pub(crate) fn header(&self) -> &ArrayHeader {
        self.seg.typed_in::<ArrayHeader>(self.base).expect("invariant: checked in ArraySeg::check")
    }

    fn data(&self) -> *mut T {
        self.seg.as_ptr().wrapping_add(self.data_offset()).cast::<T>()
    }

    pub(crate) fn check_index(&self, i: usize) -> Result<()> {
        if i < self.len { Ok(()) } else { Err(Error::InvalidArgument { what: "array index out of range" }) }
    }

    pub(crate) fn check_len(&self, n: usize) -> Result<()> {
        if n == self.len {
            Ok(())
        } else {
            Err(Error::InvalidArgument { what: "slice length differs from the array's" })
        }
    }

    #[cfg(feature = "serde")]
    pub(crate) fn serialize<S: serde::Serializer>(&self, s: S, flavor: Flavor) -> std::result::Result<S::Ok, S::Error> {
        match &self.cell {
            Some(c) => crate::shm::handoff::serialize_cell(c, array_hash::<T>(flavor), s),
            None => serde::Serialize::serialize(&self.seg, s),
        }
    }

    #[cfg(feature = "serde")]
    pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(
        flavor: Flavor,
        d: D,
    ) -> std::result::Result<Self, D::Error> {
        use crate::shm::handoff::{Handle, deserialize_handle};
        use serde::de::Error as _;
        match deserialize_handle(d, array_hash::<T>(flavor))? {
            Handle::Segment(seg) => Self::wrap(flavor, seg),
            Handle::Cell(cell) => {
                let (seg, base) = (cell.segment().clone(), Self::base_in(&cell));
                let end = cell.offset() + cell.class();
                Self::check(seg, base, end, Some(cell))
            }
        }
        .map_err(D::Error::custom)
    }
}

impl<T> fmt::Debug for ArraySeg<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Array")
            .field("type", &std::any::type_name::<T>())
            .field("len", &self.len)
            .field("segment", &self.seg)
            .finish()
    }
}

/// What [`Array::lock`] and friends return.
type LockResult<'a, T> = std::result::Result<ArrayGuard<'a, T>, LockError<ArrayGuard<'a, T>>>;
type TryLockResult<'a, T> = std::result::Result<ArrayGuard<'a, T>, TryLockError<ArrayGuard<'a, T>>>;
type LockTimeoutResult<'a, T> = std::result::Result<ArrayGuard<'a, T>, LockTimeoutError<ArrayGuard<'a, T>>>;

/// A fixed-length array of `T` in shared memory with a lock attached:
/// Python's `multiprocessing.Array`.
///
/// `T: Pod` (plain data), so elements half-written by a process that died
/// are still valid `T`s. [`lock`](Array::lock) gives a guard that
/// dereferences to `[T]` *in* shared memory: slicing, sorting and bulk
/// copies work on it in place, without copying the array. The single
/// element calls ([`load`](Array::load), [`store`](Array::store)) and the
/// bulk copies ([`to_vec`](Array::to_vec),
/// [`copy_from_slice`](Array::copy_from_slice),
/// [`copy_to_slice`](Array::copy_to_slice)) take the lock for you.
///
/// A cheap handle: clone it, pass it to children as an argument (any start
/// method), or [`create`](Array::create) it by name for unrelated processes.
///
/// # Examples
///
#[cfg_attr(feature = "serde", doc = "```")]
#[cfg_attr(not(feature = "serde"), doc = "```ignore")]
/// use shmproc::Array;
///
/// fn negate(a: Array<i32>) {
///     for x in a.lock().expect("lock").iter_mut() {
///         *x = -*x;
///     }
/// }
///
/// let a = Array::from_slice(&[1, 2, 3])?;
/// shmproc::Process::spawn(negate, a.clone())?.join()?;
/// assert_eq!(a.to_vec()?, [-1, -2, -3]);
/// # Ok::<(), shmproc::Error>(())
/// ```
///
/// Python: `Array('i', [1, 2, 3])`; `a[i]` is [`load`](Array::load) and
/// [`store`](Array::store), `a[:]` is [`to_vec`](Array::to_vec) and
/// [`copy_from_slice`](Array::copy_from_slice), `with a.get_lock():` is
/// [`lock`](Array::lock). An index out of range is an `Err`, not an
/// `IndexError` exception; a holder that dies never hangs the others.
pub struct Array<T: Pod + Send> {
    a: ArraySeg<T>,
}

impl<T: Pod + Send> Clone for Array<T> {
    fn clone(&self) -> Self {
        Array { a: self.a.clone() }
    }
}

impl<T: Pod + Send> fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.a.fmt(f)
    }
}

impl<T: Pod + Send> Array<T> {
    /// An anonymous array of `len` zeroes, to share with children.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = shmproc::Array::<f64>::new(4)?;
    /// assert_eq!(a.to_vec()?, [0.0; 4]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `Array('d', 4)`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the size overflows; as for
    /// [`Segment::anonymous`].
    pub fn new(len: usize) -> Result<Self> {
        Ok(Array { a: ArraySeg::make(Flavor::Locked, None, len, &[])? })
    }

    /// An anonymous array holding a copy of `xs`.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = shmproc::Array::from_slice(&[1u8, 2, 3])?;
    /// assert_eq!(a.len(), 3);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `Array('B', [1, 2, 3])`.
    ///
    /// # Errors
    /// As for [`new`](Array::new).
    pub fn from_slice(xs: &[T]) -> Result<Self> {
        Ok(Array { a: ArraySeg::make(Flavor::Locked, None, xs.len(), xs)? })
    }

    /// A named array of `len` zeroes that unrelated processes can
    /// [`open`](Array::open).
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-array-{}", std::process::id());
    /// let a = shmproc::Array::<u32>::create(&name, 8)?;
    /// shmproc::Array::<u32>::open(&name)?.store(7, 42)?;
    /// assert_eq!(a.load(7)?, 42);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: no named `Array`; the nearest is `SharedMemory(name, create=True)`.
    ///
    /// # Errors
    /// As for [`new`](Array::new) and [`Segment::create`].
    pub fn create(name: &str, len: usize) -> Result<Self> {
        Ok(Array { a: ArraySeg::make(Flavor::Locked, Some(name), len, &[])? })
    }

    /// Opens a named array made by [`create`](Array::create) with the same `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-array-open-{}", std::process::id());
    /// let _a = shmproc::Array::<u32>::create(&name, 2)?;
    /// assert_eq!(shmproc::Array::<u32>::open(&name)?.len(), 2);
    /// assert!(matches!(shmproc::Array::<u64>::open(&name), Err(shmproc::Error::LayoutMismatch { .. })));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `SharedMemory(name)`, with the type and length checked.
    ///
    /// # Errors
    /// As for [`Segment::open`]; [`Error::LayoutMismatch`] for another `T`
    /// (size or alignment) or another kind of object; [`Error::Corrupt`] if
    /// the stored length does not fit the segment.
    pub fn open(name: &str) -> Result<Self> {
        Ok(Array { a: ArraySeg::open(Flavor::Locked, name)? })
    }

    /// The number of elements.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shmproc::Array::<u8>::new(5)?.len(), 5);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `len(a)`.
    pub fn len(&self) -> usize {
        self.a.len
    }

    /// Whether the array has no elements.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(shmproc::Array::<u8>::new(0)?.is_empty());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `len(a) == 0`.
    pub fn is_empty(&self) -> bool {
        self.a.len == 0
    }

    /// Locks, waiting as long as it takes (but never for a dead holder),
    /// and gives the elements in place as a slice.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = shmproc::Array::from_slice(&[3, 1, 2])?;
    /// a.lock()?.sort_unstable();
    /// assert_eq!(a.to_vec()?, [1, 2, 3]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `with a.get_lock():` (or `a.get_obj()` under it).
    ///
    /// # Errors
    /// [`LockError::OwnerDied`] (with a recovery guard: the elements as the
    /// dead holder left them), [`LockError::NotRecoverable`],
    /// [`LockError::Deadlock`] if this thread holds it already.
    #[doc(alias = "get_lock")]
    #[doc(alias = "get_obj")]
    #[inline]
    pub fn lock(&self) -> LockResult<'_, T> {
        self.guard(self.raw().lock(None)).blocking()
    }

    /// Locks if the lock is free now (or its holder is dead).
    ///
    /// # Examples
    ///
    /// ```
    /// let a = shmproc::Array::<u8>::new(1)?;
    /// let g = a.try_lock()?;
    /// assert!(matches!(a.try_lock(), Err(shmproc::TryLockError::Deadlock)));
    /// drop(g);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `a.get_lock().acquire(False)`.
    ///
    /// # Errors
    /// [`TryLockError::WouldBlock`] if held, and the cases of
    /// [`lock`](Array::lock).
    pub fn try_lock(&self) -> TryLockResult<'_, T> {
        self.guard(self.raw().try_lock()).tried()
    }

    /// Locks, giving up after `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = shmproc::Array::<u8>::new(1)?;
    /// a.lock_timeout(std::time::Duration::from_secs(1))?[0] = 1;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `a.get_lock().acquire(timeout=t)`.
    ///
    /// # Errors
    /// [`LockTimeoutError::Timeout`], and the cases of [`lock`](Array::lock).
    pub fn lock_timeout(&self, timeout: Duration) -> LockTimeoutResult<'_, T> {
        self.guard(self.raw().lock(deadline_after(timeout))).timed()
    }

    /// Locks, giving up at `deadline`.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = shmproc::Array::<u8>::new(1)?;
    /// let soon = std::time::Instant::now() + std::time::Duration::from_secs(1);
    /// drop(a.lock_deadline(soon)?);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: as [`lock_timeout`](Array::lock_timeout).
    ///
    /// # Errors
    /// As for [`lock_timeout`](Array::lock_timeout).
    pub fn lock_deadline(&self, deadline: Instant) -> LockTimeoutResult<'_, T> {
        self.guard(self.raw().lock(Some(deadline))).timed()
    }

    /// One element (under the lock).
    ///
    /// # Examples
    ///
    /// ```
    /// let a = shmproc::Array::from_slice(&[5u16, 6])?;
    /// assert_eq!(a.load(1)?, 6);
    /// assert!(a.load(2).is_err());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `a[i]`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `i >= len()`; [`Error::OwnerDied`] if
    /// a holder died (the lock stays marked for the next
    /// [`lock`](Array::lock)); [`Error::NotRecoverable`]; [`Error::Deadlock`].
    pub fn load(&self, i: usize) -> Result<T> {
        self.a.check_index(i)?;
        self.with_clean(|s| s[i])
    }

    /// Replaces one element (under the lock).
    ///
    /// # Examples
    ///
    /// ```
    /// let a = shmproc::Array::<i64>::new(2)?;
    /// a.store(0, -1)?;
    /// assert_eq!(a.to_vec()?, [-1, 0]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `a[i] = x`.
    ///
    /// # Errors
    /// As for [`load`](Array::load).
    pub fn store(&self, i: usize, value: T) -> Result<()> {
        self.a.check_index(i)?;
        self.with_clean(|s| s[i] = value)
    }

    /// A copy of every element (under the lock).
    ///
    /// # Examples
    ///
    /// ```
    /// let a = shmproc::Array::from_slice(&[1.5f32, 2.5])?;
    /// assert_eq!(a.to_vec()?, vec![1.5, 2.5]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `a[:]`.
    ///
    /// # Errors
    /// As for [`load`](Array::load), index aside.
    pub fn to_vec(&self) -> Result<Vec<T>> {
        self.with_clean(|s| s.to_vec())
    }

    /// Copies every element into `out` (under the lock): a bulk copy out
    /// without allocating.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = shmproc::Array::from_slice(&[1u8, 2])?;
    /// let mut out = [0u8; 2];
    /// a.copy_to_slice(&mut out)?;
    /// assert_eq!(out, [1, 2]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `memoryview(a)` copied out, or `out[:] = a[:]`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `out.len() != len()`; as for
    /// [`load`](Array::load).
    pub fn copy_to_slice(&self, out: &mut [T]) -> Result<()> {
        self.a.check_len(out.len())?;
        self.with_clean(|s| out.copy_from_slice(s))
    }

    /// Replaces every element with those of `xs` (under the lock).
    ///
    /// It writes the whole array, so it also repairs an array left
    /// half-written by a holder that died: the lock is marked consistent.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = shmproc::Array::<u8>::new(3)?;
    /// a.copy_from_slice(&[7, 8, 9])?;
    /// assert_eq!(a.to_vec()?, [7, 8, 9]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `a[:] = xs`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `xs.len() != len()`;
    /// [`Error::NotRecoverable`]; [`Error::Deadlock`].
    pub fn copy_from_slice(&self, xs: &[T]) -> Result<()> {
        self.a.check_len(xs.len())?;
        let mut g = match self.lock() {
            Ok(g) => g,
            Err(LockError::OwnerDied(mut g)) => {
                g.mark_consistent();
                g
            }
            Err(e) => return Err(e.into()),
        };
        g.copy_from_slice(xs);
        Ok(())
    }

    /// Whether someone holds the lock now (a snapshot).
    ///
    /// # Examples
    ///
    /// ```
    /// let a = shmproc::Array::<u8>::new(1)?;
    /// assert!(!a.is_locked());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: no equivalent.
    pub fn is_locked(&self) -> bool {
        self.raw().is_locked()
    }

    /// The segment holding the array.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = shmproc::Array::<u64>::new(4)?;
    /// assert!(a.segment().len() >= 32);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: no equivalent.
    pub fn segment(&self) -> &Segment {
        &self.a.seg
    }

    fn raw(&self) -> &RawMutex {
        &self.a.header().raw
    }

    fn guard(&self, r: std::result::Result<Acquired, Fail>) -> Locked<ArrayGuard<'_, T>> {
        RawGuard::wrap(self.raw(), r, |lock| ArrayGuard { array: self, lock })
    }

    /// Runs `f` on the elements under a clean lock; a dead holder is
    /// reported (and left for the next `lock` to repair).
    fn with_clean<R>(&self, f: impl FnOnce(&mut [T]) -> R) -> Result<R> {
        match self.lock() {
            Ok(mut g) => Ok(f(&mut g)),
            Err(LockError::OwnerDied(mut g)) => {
                g.lock.release_unrepaired();
                Err(Error::OwnerDied)
            }
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(feature = "serde")]
impl<T: Pod + Send> serde::Serialize for Array<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.a.serialize(s, Flavor::Locked)
    }
}

#[cfg(feature = "serde")]
impl<'de, T: Pod + Send> serde::Deserialize<'de> for Array<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(Array { a: ArraySeg::deserialize(Flavor::Locked, d)? })
    }
}

/// Exclusive access to an [`Array`]'s elements, in place; unlocks on drop.
///
/// Dereferences to `[T]` in shared memory (no copy). A guard returned
/// inside [`LockError::OwnerDied`] is a *recovery* guard: repair the
/// elements and call [`mark_consistent`](ArrayGuard::mark_consistent), or
/// dropping it makes the array unrecoverable.
///
/// # Examples
///
/// ```
/// let a = shmproc::Array::<f64>::new(3)?;
/// let mut g = a.lock()?;
/// g.fill(0.5);
/// g[2] = 2.0;
/// assert_eq!(g.iter().sum::<f64>(), 3.0);
/// # Ok::<(), shmproc::Error>(())
/// ```
///
/// Python: the body of `with a.get_lock():`, with `a.get_obj()` as a view.
#[must_use = "the lock is released when the guard is dropped"]
pub struct ArrayGuard<'a, T: Pod + Send> {
    array: &'a Array<T>,
    /// Holds the lock; unlocks on drop (neither Send nor Sync).
    lock: RawGuard<'a>,
}

impl<T: Pod + Send> ArrayGuard<'_, T> {
    /// Declares the elements repaired after an owner died: the array is
    /// consistent again, and later lockers get plain guards.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmproc::{Array, LockError};
    /// let a = Array::<u32>::new(2)?;
    /// if let Err(LockError::OwnerDied(mut g)) = a.lock() {
    ///     g.fill(0);
    ///     g.mark_consistent();
    /// }
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: no equivalent (a dead holder hangs Python's lock).
    pub fn mark_consistent(&mut self) {
        self.lock.mark_consistent();
    }

    /// Whether this is a recovery guard not yet marked consistent.
    ///
    /// # Examples
    ///
    /// ```
    /// let a = shmproc::Array::<u32>::new(1)?;
    /// assert!(!a.lock()?.is_recovering());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: no equivalent.
    pub fn is_recovering(&self) -> bool {
        self.lock.is_recovering()
    }
}

impl<T: Pod + Send> Deref for ArrayGuard<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: data..data + len elements lie in the writable payload and are aligned for T (checked in
        // ArraySeg::wrap against the segment this guard's array keeps mapped); T: Pod is valid for any bits; the
        // guard holds the lock, so no other thread or process accesses the elements until it drops.
        unsafe { std::slice::from_raw_parts(self.array.a.data(), self.array.a.len) }
    }
}

impl<T: Pod + Send> DerefMut for ArrayGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`; `&mut self` makes the access unique within this thread too.
        unsafe { std::slice::from_raw_parts_mut(self.array.a.data(), self.array.a.len) }
    }
}

impl<T: Pod + Send> fmt::Debug for ArrayGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArrayGuard").field("len", &self.len()).field("recovering", &self.is_recovering()).finish()
    }
}
