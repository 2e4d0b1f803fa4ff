//! `Shared<T>`: a segment whose payload is one `T: ShmSafe`; `Placed<T>`:
//! a `T: ShmSafe` at a checked offset of a segment, resolved once;
//! `Home<T>`: where a sync object's state lives (an arena cell when
//! anonymous and small, a segment of its own otherwise).
#![allow(unsafe_code)] // Placed<T>'s Deref of a pointer checked once

use std::fmt;
use std::ops::Deref;

use crate::error::Result;
use crate::shm::header::kind;
use crate::shm::heap::{self, CellRef};
use crate::shm::layout::ShmSafe;
use crate::shm::segment::{Segment, SegmentBuilder};

/// A segment holding one `T: ShmSafe` at the start of its payload, opened
/// only as that type: the header records `T`'s layout hash, and an opener
/// expecting another type gets [`Error::LayoutMismatch`](crate::Error::LayoutMismatch).
///
/// Dereferences to `&T`.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use shmproc::Shared;
///
/// let name = format!("doc-shared-{}", std::process::id());
/// let counter = Shared::<AtomicU64>::create(&name, |c| c.store(10, Ordering::Relaxed))?;
/// let other = Shared::<AtomicU64>::open(&name)?; // in another process, typically
/// other.fetch_add(1, Ordering::Relaxed);
/// assert_eq!(counter.load(Ordering::Relaxed), 11);
/// # Ok::<(), shmproc::Error>(())
/// ```
pub struct Shared<T: ShmSafe> {
    seg: Segment,
    _marker: std::marker::PhantomData<T>,
}

impl<T: ShmSafe> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared { seg: self.seg.clone(), _marker: std::marker::PhantomData }
    }
}

impl<T: ShmSafe> Shared<T> {
    fn builder() -> SegmentBuilder {
        const { assert!(core::mem::align_of::<T>() <= 128, "types in a segment align to at most 128") };
        Segment::builder().size(core::mem::size_of::<T>()).typed(kind::TYPED, T::LAYOUT_HASH)
    }

    fn wrap(seg: Segment) -> Result<Self> {
        // Checks bounds and alignment once; Deref relies on it.
        seg.typed_in::<T>(0)?;
        Ok(Shared { seg, _marker: std::marker::PhantomData })
    }

    /// Creates a named segment holding a zero-filled `T`, runs `init` on it,
    /// and only then makes it visible under `name`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use shmproc::Shared;
    /// let name = format!("doc-shared-create-{}", std::process::id());
    /// let c = Shared::<AtomicU64>::create(&name, |c| c.store(5, Ordering::Relaxed))?;
    /// assert_eq!(c.load(Ordering::Relaxed), 5);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`Segment::create`].
    pub fn create(name: &str, init: impl FnOnce(&T)) -> Result<Self> {
        let seg = Self::builder().name(name).create_with(|s| {
            init(s.typed_in::<T>(0)?);
            Ok(())
        })?;
        Self::wrap(seg)
    }

    /// Opens a named segment made by [`create`](Shared::create) for the same `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::AtomicU64;
    /// use shmproc::Shared;
    /// use std::sync::atomic::AtomicU32;
    /// let name = format!("doc-shared-open-{}", std::process::id());
    /// let _c = Shared::<AtomicU64>::create(&name, |_| {})?;
    /// assert!(Shared::<AtomicU64>::open(&name).is_ok());
    /// assert!(matches!(Shared::<AtomicU32>::open(&name), Err(shmproc::Error::LayoutMismatch { .. })));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`Segment::open`]; [`Error::LayoutMismatch`](crate::Error::LayoutMismatch)
    /// if it holds another type.
    pub fn open(name: &str) -> Result<Self> {
        Self::wrap(Self::builder().name(name).open()?)
    }

    /// Creates an anonymous segment holding a zero-filled `T` and runs `init`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use shmproc::Shared;
    /// let c = Shared::<AtomicU64>::anonymous(|c| c.store(1, Ordering::Relaxed))?;
    /// assert_eq!(c.fetch_add(1, Ordering::Relaxed), 1);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`Segment::anonymous`].
    pub fn anonymous(init: impl FnOnce(&T)) -> Result<Self> {
        let seg = Self::builder().anonymous_with(|s| {
            init(s.typed_in::<T>(0)?);
            Ok(())
        })?;
        Self::wrap(seg)
    }

    /// Opens a `Shared<T>` from a descriptor (see [`Segment::share_fd`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use shmproc::Shared;
    /// let a = Shared::<AtomicU64>::anonymous(|_| {})?;
    /// let b = Shared::<AtomicU64>::from_fd(a.segment().share_fd()?)?;
    /// b.store(9, Ordering::Relaxed);
    /// assert_eq!(a.load(Ordering::Relaxed), 9);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`Segment::from_fd`].
    pub fn from_fd(fd: std::os::fd::OwnedFd) -> Result<Self> {
        Self::wrap(Segment::from_fd_expecting(fd, kind::TYPED, T::LAYOUT_HASH)?)
    }

    /// Opens a `Shared<T>` from a descriptor number this process inherited
    /// (see [`Segment::inheritable_fd`]); the number is duplicated, not
    /// taken over.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use shmproc::Shared;
    /// use std::os::fd::AsRawFd;
    /// let a = Shared::<AtomicU64>::anonymous(|_| {})?;
    /// let fd = a.segment().inheritable_fd()?; // its number goes to a child
    /// // SAFETY: `fd` is open, and ours, for the whole call.
    /// let b = unsafe { Shared::<AtomicU64>::from_inherited_fd(fd.as_raw_fd()) }?;
    /// b.store(3, Ordering::Relaxed);
    /// assert_eq!(a.load(Ordering::Relaxed), 3);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Safety
    ///
    /// As for [`Segment::from_inherited_fd`].
    ///
    /// # Errors
    /// As for [`Segment::from_inherited_fd`].
    #[allow(unsafe_code)] // declares a contract only; the body is safe code
    pub unsafe fn from_inherited_fd(fd: i32) -> Result<Self> {
        let owned = crate::sys::shm::adopt_fd(fd).map_err(|e| crate::Error::os("fcntl(F_GETFD)", e))?;
        Self::from_fd(owned)
    }

    /// The underlying segment.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::AtomicU64;
    /// use shmproc::Shared;
    /// let c = Shared::<AtomicU64>::anonymous(|_| {})?;
    /// assert_eq!(c.segment().len(), 8);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    pub fn segment(&self) -> &Segment {
        &self.seg
    }
}

impl<T: ShmSafe> Deref for Shared<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.seg.typed_in::<T>(0).expect("invariant: checked in Shared::wrap")
    }
}

impl<T: ShmSafe> fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared").field("type", &std::any::type_name::<T>()).field("segment", &self.seg).finish()
    }
}

#[cfg(feature = "serde")]
impl<T: ShmSafe> serde::Serialize for Shared<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.seg.serialize(s)
    }
}

#[cfg(feature = "serde")]
impl<'de, T: ShmSafe> serde::Deserialize<'de> for Shared<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let seg = Segment::deserialize(d)?;
        let (k, h) = seg.layout_identity();
        if k != kind::TYPED || h != T::LAYOUT_HASH {
            return Err(D::Error::custom(crate::Error::LayoutMismatch { expected: T::LAYOUT_HASH, found: h }));
        }
        Self::wrap(seg).map_err(D::Error::custom)
    }
}

/// A `T: ShmSafe` at an offset of a segment, checked once (bounds,
/// alignment, writable mapping) and then reached without checks: for hot
/// paths that touch the same words on every call.
pub(crate) struct Placed<T: ShmSafe> {
    ptr: std::ptr::NonNull<T>,
    /// Keeps the mapping alive as long as `ptr` is used.
    seg: Segment,
}

impl<T: ShmSafe> Placed<T> {
    /// The `T` at payload `offset` of `seg`.
    ///
    /// # Errors
    /// As for [`Segment::typed`].
    pub(crate) fn new(seg: &Segment, offset: usize) -> Result<Placed<T>> {
        let r: &T = seg.typed_in::<T>(offset)?;
        Ok(Placed { ptr: std::ptr::NonNull::from(r), seg: seg.clone() })
    }

    /// The segment the value lives in.
    pub(crate) fn segment(&self) -> &Segment {
        &self.seg
    }
}

impl<T: ShmSafe> Clone for Placed<T> {
    fn clone(&self) -> Self {
        Placed { ptr: self.ptr, seg: self.seg.clone() }
    }
}

impl<T: ShmSafe> Deref for Placed<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: `ptr` came from `Segment::typed` (in bounds, aligned) on the mapping `self.seg` keeps alive;
        // T: ShmSafe is valid for any bits and interior-mutable, so sharing it with writers is sound.
        unsafe { self.ptr.as_ref() }
    }
}

// SAFETY: the pointer targets shared memory mapped for as long as `seg`
// lives, valid from any thread; T: ShmSafe is Sync (a supertrait), so
// `&T` may be used from several threads.
unsafe impl<T: ShmSafe> Send for Placed<T> {}
// SAFETY: as for Send: only `&T` is handed out, and T: Sync.
unsafe impl<T: ShmSafe> Sync for Placed<T> {}

impl<T: ShmSafe> fmt::Debug for Placed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Placed").field("type", &std::any::type_name::<T>()).finish_non_exhaustive()
    }
}

/// Where a shared object's state `S` lives: a cell of a shared arena (an
/// anonymous object whose state fits a cell, see `shm/heap.rs`), or a
/// segment of its own (a named object, or a big one). Dereferences to `&S`
/// without checks (resolved once, as [`Placed`]).
pub(crate) struct Home<S: ShmSafe> {
    placed: Placed<S>,
    /// The handle's share of its arena cell; `None` for a segment of its own.
    cell: Option<CellRef>,
}

impl<S: ShmSafe> Home<S> {
    fn own(seg: Segment) -> Result<Self> {
        Ok(Home { placed: Placed::new(&seg, 0)?, cell: None })
    }

    fn in_cell(cell: CellRef) -> Result<Self> {
        Ok(Home { placed: Placed::new(cell.segment(), cell.offset_of::<S>())?, cell: Some(cell) })
    }

    /// A zero-filled `S`, initialised by `init` before anyone else can
    /// reach it: in an arena cell if it fits one.
    ///
    /// # Errors
    /// As for [`Segment::anonymous`].
    pub(crate) fn anonymous(init: impl FnOnce(&S)) -> Result<Self> {
        match heap::class_of::<S>() {
            Some(class) => {
                let home = Self::in_cell(CellRef::alloc(class, S::LAYOUT_HASH)?)?;
                init(&home);
                Ok(home)
            }
            None => Self::own(Shared::<S>::anonymous(init)?.seg),
        }
    }

    /// A named `S` in a segment of its own (see [`Shared::create`]).
    ///
    /// # Errors
    /// As for [`Shared::create`].
    pub(crate) fn create(name: &str, init: impl FnOnce(&S)) -> Result<Self> {
        Self::own(Shared::<S>::create(name, init)?.seg)
    }

    /// Opens a named `S` (see [`Shared::open`]).
    ///
    /// # Errors
    /// As for [`Shared::open`].
    pub(crate) fn open(name: &str) -> Result<Self> {
        Self::own(Shared::<S>::open(name)?.seg)
    }

    /// The segment the state is in: its own, or its arena.
    pub(crate) fn segment(&self) -> &Segment {
        self.placed.segment()
    }
}

impl<S: ShmSafe> Clone for Home<S> {
    fn clone(&self) -> Self {
        Home { placed: self.placed.clone(), cell: self.cell.clone() }
    }
}

impl<S: ShmSafe> Deref for Home<S> {
    type Target = S;
    #[inline]
    fn deref(&self) -> &S {
        &self.placed
    }
}

impl<S: ShmSafe> fmt::Debug for Home<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cell {
            Some(c) => f.debug_struct("Home").field("cell", c).finish(),
            None => f.debug_struct("Home").field("segment", self.placed.segment()).finish(),
        }
    }
}

#[cfg(feature = "serde")]
impl<S: ShmSafe> serde::Serialize for Home<S> {
    fn serialize<Ser: serde::Serializer>(&self, s: Ser) -> std::result::Result<Ser::Ok, Ser::Error> {
        match &self.cell {
            Some(c) => crate::shm::handoff::serialize_cell(c, S::LAYOUT_HASH, s),
            None => self.placed.segment().serialize(s),
        }
    }
}

#[cfg(feature = "serde")]
impl<'de, S: ShmSafe> serde::Deserialize<'de> for Home<S> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use crate::shm::handoff::Handle;
        use serde::de::Error as _;
        match crate::shm::handoff::deserialize_handle(d, S::LAYOUT_HASH)? {
            Handle::Segment(seg) => {
                let (k, h) = seg.layout_identity();
                if k != kind::TYPED || h != S::LAYOUT_HASH {
                    return Err(D::Error::custom(crate::Error::LayoutMismatch { expected: S::LAYOUT_HASH, found: h }));
                }
                Self::own(seg).map_err(D::Error::custom)
            }
            Handle::Cell(cell) => Self::in_cell(cell).map_err(D::Error::custom),
        }
    }
}
