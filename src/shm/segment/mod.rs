//! `Segment`: one shared-memory object, named or anonymous, with a
//! validated header.
#![allow(unsafe_code)]

mod cleanup;
mod fd;
mod open;

use std::fmt;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering as StdOrdering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::owner::token::{self, Liveness, Token};
use crate::shm::header::{self, Expect, HEADER_SIZE, HeaderInit, HeaderSnapshot, SegmentHeader, kind};
use crate::shm::layout::ShmSafe;
use crate::shm::name;
use crate::sys::failpoint;
use crate::sys::mmap::Mapping;
use crate::sys::shm::{self as sysshm, Dir, FileInfo};

/// How long `open` waits for a header to become READY by default.
const DEFAULT_OPEN_TIMEOUT: Duration = Duration::from_secs(5);

/// Read-only or read-write access, for [`Segment::open_raw`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
///
/// # Examples
///
/// ```
/// use shmproc::{Access, Segment};
/// assert!(Segment::open_raw("no-such-object", Access::ReadOnly).is_err());
/// ```
pub enum Access {
    /// Map read-only (`PROT_READ`).
    ReadOnly,
    /// Map read-write (`PROT_READ | PROT_WRITE`).
    ReadWrite,
}

#[derive(Debug)]
enum DirRef {
    Default,
    Custom(Arc<Dir>),
}

impl DirRef {
    fn open(path: Option<&Path>) -> Result<DirRef> {
        match path {
            None => Ok(DirRef::Default),
            Some(p) => {
                Dir::open(p).map(|d| DirRef::Custom(Arc::new(d))).map_err(|e| Error::os("open(shm directory)", e))
            }
        }
    }

    fn get(&self) -> Result<&Dir> {
        match self {
            DirRef::Default => Dir::default_dir().map_err(|e| Error::os("open(/dev/shm)", e)),
            DirRef::Custom(d) => Ok(d),
        }
    }
}

struct Inner {
    map: Mapping,
    fd: OwnedFd,
    /// The user-visible name, and the file name in `dir`.
    name: Option<(String, String)>,
    dir: DirRef,
    /// The pid that created and linked this object, or 0. Only that process
    /// removes the name on drop (a forked child holds a copy and must not).
    owner_pid: AtomicU32,
    keep_name: AtomicBool,
    /// `false` for [`Segment::open_raw`]: no shmproc header.
    headed: bool,
    writable: bool,
    payload_len: usize,
    creator: Option<Token>,
    identity: FileInfo,
    /// The header's kind and layout hash (0, 0 for raw segments).
    kind: u32,
    layout_hash: u64,
}

impl Inner {
    /// A new handle's state over a mapped, writable shmproc object: no
    /// name to remove on drop yet (the creator's `create` decides), and
    /// the header's fields unknown until the caller fills them in.
    fn fresh(map: Mapping, fd: OwnedFd, name: Option<(String, String)>, dir: DirRef, identity: FileInfo) -> Inner {
        Inner {
            map,
            fd,
            name,
            dir,
            owner_pid: AtomicU32::new(0),
            keep_name: AtomicBool::new(true),
            headed: true,
            writable: true,
            payload_len: 0,
            creator: None,
            identity,
            kind: 0,
            layout_hash: 0,
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if self.owner_pid.load(StdOrdering::Relaxed) != crate::sys::process::pid()
            || self.keep_name.load(StdOrdering::Relaxed)
        {
            return;
        }
        let Some((_, file)) = &self.name else { return };
        let Ok(dir) = self.dir.get() else { return };
        // Remove the name only if it still names our object: after an
        // external unlink and a fresh create, the new object is not ours.
        if let Ok(now) = dir.stat(file)
            && now.dev == self.identity.dev
            && now.ino == self.identity.ino
        {
            // Errors are dropped: Drop must not panic, and a failed
            // unlink leaves a stale name that cleanup_stale removes.
            let _ = dir.unlink(file);
        }
    }
}

/// A shared-memory segment: a mapping of a named (`/dev/shm`) or anonymous
/// (`memfd`) object that starts with a validated shmproc header, followed by
/// the payload.
///
/// A `Segment` is a cheap [`Clone`] handle; the mapping is released when the
/// last clone in this process drops. A named segment's name is removed when
/// the creating process drops its last handle (unless
/// [`keep_name`](Segment::keep_name) was called); processes that only
/// opened it never remove it (Python gh-82300 cannot happen). Names of
/// creators that died are found by [`cleanup_stale`](crate::cleanup_stale).
///
/// # Examples
///
/// ```
/// use shmproc::Segment;
///
/// let name = format!("doc-segment-{}", std::process::id());
/// let a = Segment::create(&name, 4096)?;
/// a.write_at(0, b"hello")?;
///
/// // Another process would do exactly this:
/// let b = Segment::open(&name)?;
/// let mut buf = [0u8; 5];
/// b.read_at(0, &mut buf)?;
/// assert_eq!(&buf, b"hello");
/// drop((a, b)); // the creator's drop removes the name
/// assert!(Segment::open(&name).is_err());
/// # Ok::<(), shmproc::Error>(())
/// ```
///
/// Python: `multiprocessing.shared_memory.SharedMemory`, with a header that
/// is checked on open, atomic publication and no resource tracker.
#[derive(Clone)]
pub struct Segment {
    inner: Arc<Inner>,
}

pub use cleanup::{CleanupReport, cleanup_stale, cleanup_stale_in};
pub use open::SegmentBuilder;

impl Segment {
    /// Removes a name. Processes that have the segment open keep using it;
    /// later opens fail with [`Error::NotFound`].
    ///
    /// # Examples
    ///
    /// ```
    /// use shmproc::Segment;
    /// let name = format!("doc-unlink-{}", std::process::id());
    /// let seg = Segment::builder().name(&name).size(64).keep_name(true).create()?;
    /// Segment::unlink(&name)?;
    /// seg.write_at(0, b"still mapped")?;
    /// assert!(Segment::open(&name).is_err());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::NotFound`], [`Error::Os`].
    pub fn unlink(name: &str) -> Result<()> {
        let file = name::file_name(name)?;
        let dir = Dir::default_dir().map_err(|e| Error::os("open(/dev/shm)", e))?;
        dir.unlink(&file).map_err(|e| Error::named("unlink", name, e))
    }

    /// [`unlink`](Segment::unlink) for a segment made in a directory given
    /// to [`SegmentBuilder::dir`].
    ///
    /// # Examples
    ///
    /// ```
    /// let dir = std::env::temp_dir();
    /// let name = format!("doc-seg12-{}", std::process::id());
    /// let seg = shmproc::Segment::builder().dir(&dir).name(&name).size(8).keep_name(true).create()?;
    /// shmproc::Segment::unlink_in(&dir, &name)?;
    /// # drop(seg);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`unlink`](Segment::unlink).
    pub fn unlink_in(dir: impl AsRef<Path>, name: &str) -> Result<()> {
        let file = name::file_name(name)?;
        let d = Dir::open(dir.as_ref()).map_err(|e| Error::os("open(shm directory)", e))?;
        d.unlink(&file).map_err(|e| Error::named("unlink", name, e))
    }

    fn header(&self) -> &SegmentHeader {
        debug_assert!(self.inner.headed && self.inner.map.len() >= HEADER_SIZE);
        // SAFETY: headed mappings are page-aligned and >= HEADER_SIZE bytes (checked in `adopt`, made so by `build`);
        // SegmentHeader is all atomics (any bits valid, sound to share while peers write); borrows `self` (the mapping).
        unsafe { &*self.inner.map.ptr().cast::<SegmentHeader>() }
    }

    /// The name given at creation, if the segment is named.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shmproc::Segment::anonymous(8)?.name(), None);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.inner.name.as_ref().map(|n| n.0.as_str())
    }

    /// The payload length in bytes (as asked for at creation; the mapping
    /// is rounded up to whole pages).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shmproc::Segment::anonymous(100)?.len(), 100);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.inner.payload_len
    }

    /// Whether the payload is empty: never for a segment made by shmproc
    /// (a zero size is refused at creation).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!shmproc::Segment::anonymous(1)?.is_empty());
    /// assert!(shmproc::Segment::anonymous(0).is_err());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.inner.payload_len == 0
    }

    /// Whether the segment is mapped writable.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(shmproc::Segment::anonymous(8)?.is_writable());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn is_writable(&self) -> bool {
        self.inner.writable
    }

    /// The first payload byte. Other processes may read and write the
    /// payload at any time: use it only through atomics, or under a lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let seg = shmproc::Segment::anonymous(4096)?;
    /// assert_eq!(seg.as_ptr() as usize % 128, 0); // the payload is 128-byte aligned
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    #[inline]
    pub fn as_ptr(&self) -> *mut u8 {
        let off = if self.inner.headed { HEADER_SIZE } else { 0 };
        self.inner.map.ptr().wrapping_add(off)
    }

    /// Whether this process created the segment (and so removes its name
    /// when its last handle drops).
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-seg14-{}", std::process::id());
    /// let a = shmproc::Segment::create(&name, 8)?;
    /// assert!(a.is_creator());
    /// assert!(!shmproc::Segment::open(&name)?.is_creator());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn is_creator(&self) -> bool {
        self.inner.owner_pid.load(StdOrdering::Relaxed) == crate::sys::process::pid()
    }

    /// The creator's pid as recorded in the header (named segments).
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-seg15-{}", std::process::id());
    /// let a = shmproc::Segment::create(&name, 8)?;
    /// assert_eq!(a.creator_pid(), Some(std::process::id()));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn creator_pid(&self) -> Option<u32> {
        self.inner.creator.map(|t| t.pid)
    }

    /// Whether the creator is alive. `false` only when the kernel confirms
    /// that it is dead (see [`cleanup_stale`](crate::cleanup_stale)); `true`
    /// for segments that record no creator (anonymous, raw).
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-seg16-{}", std::process::id());
    /// let a = shmproc::Segment::create(&name, 8)?;
    /// assert!(shmproc::Segment::open(&name)?.creator_alive());
    /// # drop(a);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn creator_alive(&self) -> bool {
        self.inner.creator.is_none_or(|t| token::liveness(t) == Liveness::Alive)
    }

    /// Keeps the name after the creator's last handle drops.
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-seg17-{}", std::process::id());
    /// let a = shmproc::Segment::create(&name, 8)?;
    /// a.keep_name();
    /// drop(a);
    /// shmproc::Segment::unlink(&name)?; // still there until now
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn keep_name(&self) {
        self.inner.keep_name.store(true, StdOrdering::Relaxed);
    }

    /// Checks that the underlying file still has the mapped length. A named
    /// segment that another process truncated would fault when touched
    /// past its new end; this finds out first.
    ///
    /// # Examples
    ///
    /// ```
    /// let seg = shmproc::Segment::anonymous(8)?;
    /// seg.check()?; // a sealed memfd can never be truncated
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Truncated`], [`Error::Os`].
    pub fn check(&self) -> Result<()> {
        let info = sysshm::fstat(self.inner.fd.as_fd()).map_err(|e| Error::os("fstat", e))?;
        let mapped = self.inner.map.len() as u64;
        if info.size < mapped {
            return Err(Error::Truncated { expected: mapped, found: info.size });
        }
        Ok(())
    }

    fn bounds(&self, offset: usize, len: usize) -> Result<()> {
        match offset.checked_add(len) {
            Some(end) if end <= self.inner.payload_len => Ok(()),
            _ => Err(Error::InvalidArgument { what: "range outside the segment's payload" }),
        }
    }

    /// Copies `buf.len()` payload bytes at `offset` into `buf`.
    ///
    /// # Examples
    ///
    /// ```
    /// let seg = shmproc::Segment::anonymous(8)?;
    /// let mut buf = [1u8; 4];
    /// seg.read_at(4, &mut buf)?;
    /// assert_eq!(buf, [0; 4]); // new segments are zero-filled
    /// assert!(seg.read_at(6, &mut buf).is_err()); // past the end
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the range is outside the payload.
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        self.bytes_are_public()?;
        self.read_bytes(offset, buf)
    }

    /// [`read_at`](Self::read_at) for the object that owns the segment.
    pub(crate) fn read_bytes(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        self.bounds(offset, buf.len())?;
        let src = self.as_ptr().wrapping_add(offset);
        // SAFETY: offset + buf.len() <= payload_len, checked just above, and
        // the payload lies inside the live mapping; `buf` is a distinct,
        // exclusively borrowed local buffer, so the ranges do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(src, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    /// Copies `buf` into the payload at `offset`.
    ///
    /// # Examples
    ///
    /// ```
    /// let seg = shmproc::Segment::anonymous(8)?;
    /// seg.write_at(0, b"12345678")?;
    /// assert!(seg.write_at(1, b"12345678").is_err());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the range is outside the payload or
    /// the segment is read-only.
    pub fn write_at(&self, offset: usize, buf: &[u8]) -> Result<()> {
        self.bytes_are_public()?;
        self.write_bytes(offset, buf)
    }

    /// [`write_at`](Self::write_at) for the object that owns the segment.
    pub(crate) fn write_bytes(&self, offset: usize, buf: &[u8]) -> Result<()> {
        if !self.inner.writable {
            return Err(Error::InvalidArgument { what: "the segment is mapped read-only" });
        }
        self.bounds(offset, buf.len())?;
        let dst = self.as_ptr().wrapping_add(offset);
        // SAFETY: offset + buf.len() <= payload_len (checked above) inside the
        // live mapping, which is writable (checked above); `buf` is a
        // distinct borrowed buffer, so the ranges do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(buf.as_ptr(), dst, buf.len()) };
        Ok(())
    }

    /// The `T` at payload `offset`, after checking bounds and alignment.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// let seg = shmproc::Segment::anonymous(64)?;
    /// seg.typed::<AtomicU64>(8)?.fetch_add(1, Ordering::Relaxed);
    /// assert!(seg.typed::<AtomicU64>(4).is_err()); // misaligned
    /// assert!(seg.typed::<AtomicU64>(64).is_err()); // out of bounds
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if out of bounds, misaligned, or the
    /// segment is read-only (a store would fault).
    #[inline]
    pub fn typed<T: ShmSafe>(&self, offset: usize) -> Result<&T> {
        self.bytes_are_public()?;
        self.typed_in(offset)
    }

    /// [`typed`](Self::typed) for the object that owns the segment.
    #[inline]
    pub(crate) fn typed_in<T: ShmSafe>(&self, offset: usize) -> Result<&T> {
        let s = self.slice_in::<T>(offset, 1)?;
        Ok(&s[0])
    }

    /// `n` consecutive `T`s at payload `offset`, after checking bounds and
    /// alignment.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// let seg = shmproc::Segment::anonymous(64)?;
    /// let words = seg.slice::<AtomicU32>(0, 16)?;
    /// words[15].store(1, Ordering::Relaxed);
    /// assert!(seg.slice::<AtomicU32>(0, 17).is_err());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`typed`](Segment::typed).
    #[inline]
    pub fn slice<T: ShmSafe>(&self, offset: usize, n: usize) -> Result<&[T]> {
        self.bytes_are_public()?;
        self.slice_in(offset, n)
    }

    /// Whether the payload's bytes are this handle's to read and write
    /// directly: a plain segment's are; a segment that holds a shmproc
    /// object (a queue, a mutex, an array, a ring, ...) is reached only
    /// through that object, whose guards and loans hand out references to
    /// the same bytes.
    #[inline]
    fn bytes_are_public(&self) -> Result<()> {
        if self.inner.headed && self.inner.kind != kind::RAW {
            return Err(Error::InvalidArgument {
                what: "the segment holds a shmproc object: reach its bytes through that object",
            });
        }
        Ok(())
    }

    /// [`slice`](Self::slice) for the object that owns the segment.
    #[inline]
    pub(crate) fn slice_in<T: ShmSafe>(&self, offset: usize, n: usize) -> Result<&[T]> {
        // Hot (every access of a shared primitive's state): no error value is
        // built unless a check fails.
        let bytes = core::mem::size_of::<T>().checked_mul(n);
        let ptr = self.as_ptr().wrapping_add(offset);
        let fine = self.inner.writable
            && bytes.and_then(|b| offset.checked_add(b)).is_some_and(|end| end <= self.inner.payload_len)
            && (ptr as usize).is_multiple_of(core::mem::align_of::<T>());
        if !fine {
            return Err(self.slice_error::<T>(offset, n));
        }
        // SAFETY: ptr..ptr + n * size_of::<T>() is in the live, writable payload and aligned (both checked above);
        // T: ShmSafe is valid for any bits and interior-mutable, so sharing it with writers is sound; borrows `self`.
        Ok(unsafe { std::slice::from_raw_parts(ptr.cast::<T>(), n) })
    }

    #[cold]
    fn slice_error<T>(&self, offset: usize, n: usize) -> Error {
        if !self.inner.writable {
            return Error::InvalidArgument { what: "typed access needs a writable mapping" };
        }
        let Some(bytes) = core::mem::size_of::<T>().checked_mul(n) else {
            return Error::InvalidArgument { what: "slice length overflows" };
        };
        if let Err(e) = self.bounds(offset, bytes) {
            return e;
        }
        Error::InvalidArgument { what: "misaligned offset for this type" }
    }

    #[cfg(feature = "serde")]
    /// The descriptor (for handing the segment to a child).
    pub(crate) fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.inner.fd.as_fd()
    }

    /// The header's kind and layout hash.
    pub(crate) fn layout_identity(&self) -> (u32, u64) {
        (self.inner.kind, self.inner.layout_hash)
    }

    #[cfg(feature = "serde")]
    /// The liveness token recorded as the creator's: this process's for a
    /// named segment it created, the header's for one it opened, and for an
    /// anonymous one only if its builder named a creator
    /// ([`SegmentBuilder::on_behalf_of`]).
    #[cfg(feature = "serde")]
    pub(crate) fn creator_token(&self) -> Option<Token> {
        self.inner.creator
    }

    /// Whether this is a foreign object opened with `open_raw`.
    #[cfg(feature = "serde")]
    pub(crate) fn is_raw(&self) -> bool {
        !self.inner.headed
    }

    #[cfg(feature = "serde")]
    /// Whether the segment lives outside `/dev/shm` (a builder `dir`).
    pub(crate) fn has_custom_dir(&self) -> bool {
        matches!(self.inner.dir, DirRef::Custom(_))
    }
}

impl fmt::Debug for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Segment")
            .field("name", &self.name())
            .field("len", &self.len())
            .field("creator_pid", &self.creator_pid())
            .field("is_creator", &self.is_creator())
            .finish()
    }
}
