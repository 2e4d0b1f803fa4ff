//! `Shared<T>`: a segment whose payload is one `T: ShmSafe`; `Placed<T>`:
//! a `T: ShmSafe` at a checked offset of a segment, resolved once.
#![allow(unsafe_code)] // Placed<T>'s Deref of a pointer checked once

use std::fmt;
use std::ops::Deref;

use crate::error::Result;
use crate::shm::header::kind;
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
