//! `Segment`: one shared-memory object, named or anonymous, with a
//! validated header.
#![allow(unsafe_code)]

use std::fmt;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering as StdOrdering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::shm::header::{self, Expect, HEADER_SIZE, HeaderInit, HeaderSnapshot, SegmentHeader, kind};
use crate::shm::layout::ShmSafe;
use crate::shm::name;
use crate::sys::failpoint;
use crate::sys::mmap::Mapping;
use crate::sys::shm::{self as sysshm, Dir, FileInfo};
use crate::sys::token::{self, Liveness, Token};

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

/// Builds, opens or creates a [`Segment`] with options.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use shmproc::Segment;
///
/// let name = format!("doc-builder-{}", std::process::id());
/// let seg = Segment::builder()
///     .name(&name)
///     .size(1 << 16)
///     .open_timeout(Duration::from_secs(1))
///     .open_or_create()?;
/// assert!(seg.is_creator());
/// assert_eq!(seg.len(), 1 << 16);
/// # Ok::<(), shmproc::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct SegmentBuilder {
    name: Option<String>,
    size: usize,
    dir: Option<PathBuf>,
    open_timeout: Duration,
    wait_for_name: Option<Duration>,
    keep_name: bool,
    kind: u32,
    layout_hash: u64,
    /// The liveness token to record as the creator instead of this
    /// process's (a spill segment lives as long as its queue's creator).
    creator: Option<Token>,
}

impl Default for SegmentBuilder {
    fn default() -> Self {
        SegmentBuilder {
            name: None,
            size: 0,
            dir: None,
            open_timeout: DEFAULT_OPEN_TIMEOUT,
            wait_for_name: None,
            keep_name: false,
            kind: kind::RAW,
            layout_hash: 0,
            creator: None,
        }
    }
}

fn page_round(n: usize) -> Option<usize> {
    n.checked_next_multiple_of(crate::sys::page_size())
}

impl SegmentBuilder {
    /// The segment's name (1 to 247 bytes of `[A-Za-z0-9_.-]`, not
    /// starting with `.`); it lives in `/dev/shm` as `shmproc.<name>`.
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-seg1-{}", std::process::id());
    /// let seg = shmproc::Segment::builder().name(&name).size(16).create()?;
    /// assert_eq!(seg.name(), Some(name.as_str()));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// The payload size in bytes, for creation.
    ///
    /// # Examples
    ///
    /// ```
    /// let seg = shmproc::Segment::builder().size(1000).anonymous()?;
    /// assert_eq!(seg.len(), 1000);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn size(mut self, bytes: usize) -> Self {
        self.size = bytes;
        self
    }

    /// Keeps named objects in `dir` (a tmpfs mount) instead of `/dev/shm`.
    /// Every process that opens the segment must name the same directory.
    ///
    /// # Examples
    ///
    /// ```
    /// let dir = std::env::temp_dir(); // any directory; a tmpfs mount in practice
    /// let name = format!("doc-seg2-{}", std::process::id());
    /// let seg = shmproc::Segment::builder().dir(&dir).name(&name).size(64).create()?;
    /// assert!(dir.join(format!("shmproc.{name}")).exists());
    /// drop(seg);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.dir = Some(dir.as_ref().to_owned());
        self
    }

    /// How long `open` waits for the header to be READY (default 5 s).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let name = format!("doc-seg3-{}", std::process::id());
    /// let _a = shmproc::Segment::create(&name, 8)?;
    /// let b = shmproc::Segment::builder().name(&name).open_timeout(Duration::from_millis(100)).open()?;
    /// assert_eq!(b.len(), 8);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn open_timeout(mut self, timeout: Duration) -> Self {
        self.open_timeout = timeout;
        self
    }

    /// Makes `open` wait up to `timeout` for the name to appear, instead of
    /// failing at once with [`Error::NotFound`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let name = format!("doc-seg4-{}", std::process::id());
    /// let r = shmproc::Segment::builder().name(&name).wait_for_name(Duration::from_millis(10)).open();
    /// assert!(matches!(r, Err(shmproc::Error::NotFound { .. })));
    /// ```
    pub fn wait_for_name(mut self, timeout: Duration) -> Self {
        self.wait_for_name = Some(timeout);
        self
    }

    /// Keeps the name after the creator drops its last handle (the segment
    /// then lives until [`Segment::unlink`], cleanup, or reboot).
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-seg5-{}", std::process::id());
    /// drop(shmproc::Segment::builder().name(&name).size(8).keep_name(true).create()?);
    /// assert!(shmproc::Segment::open(&name).is_ok()); // still there
    /// shmproc::Segment::unlink(&name)?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn keep_name(mut self, keep: bool) -> Self {
        self.keep_name = keep;
        self
    }

    #[cfg(feature = "serde")]
    /// Records `creator` as the segment's creator (whose death makes the
    /// segment stale for [`cleanup_stale`]) instead of this process.
    pub(crate) fn on_behalf_of(mut self, creator: Token) -> Self {
        self.creator = Some(creator);
        self
    }

    pub(crate) fn typed(mut self, kind: u32, layout_hash: u64) -> Self {
        self.kind = kind;
        self.layout_hash = layout_hash;
        self
    }

    fn expect(&self, min_payload: u64) -> Expect {
        Expect { kind: Some(self.kind), layout_hash: Some(self.layout_hash), min_payload }
    }

    /// Creates a new named segment; fails if the name exists.
    ///
    /// The object is built unnamed, fully initialized, and then linked under
    /// its name in one step: no process ever sees it half-built, and a
    /// creator that dies before the link leaves nothing behind.
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-seg6-{}", std::process::id());
    /// let seg = shmproc::Segment::builder().name(&name).size(64).create()?;
    /// assert!(seg.is_creator());
    /// assert!(matches!(shmproc::Segment::builder().name(&name).size(64).create(), Err(shmproc::Error::Exists { .. })));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::Exists`], [`Error::NoSpace`] (the
    /// memory is allocated up front, so a full `/dev/shm` is an error here
    /// and never a SIGBUS later), [`Error::Os`].
    pub fn create(self) -> Result<Segment> {
        self.create_with(|_| Ok(()))
    }

    /// Like [`create`](Self::create), running `init` on the segment before
    /// anyone else can see it.
    pub(crate) fn create_with(self, init: impl FnOnce(&Segment) -> Result<()>) -> Result<Segment> {
        let user = self.name.clone().ok_or(Error::InvalidArgument { what: "a named segment needs a name" })?;
        let file = name::file_name(&user)?;
        let dir = DirRef::open(self.dir.as_deref())?;
        let d = dir.get()?;
        let me = token::current().map_err(|e| Error::os("create liveness token", e))?;
        let me = self.creator.unwrap_or(me);
        let fd = d.create_unnamed().map_err(|e| match e.raw_os_error() {
            Some(libc::EOPNOTSUPP) | Some(libc::EISDIR) => {
                Error::Unsupported { what: "O_TMPFILE in the shared-memory directory" }
            }
            _ => Error::named("open(O_TMPFILE)", &user, e),
        })?;
        let seg = self.build(fd, dir, Some((user.clone(), file.clone())), Some(me))?;
        init(&seg)?;
        header::publish(&seg.header().state);
        failpoint::hit("segment.create.before_link");
        let inner = &seg.inner;
        let d = inner.dir.get()?;
        d.link(inner.fd.as_fd(), &file).map_err(|e| Error::named("linkat", &user, e))?;
        inner.owner_pid.store(crate::sys::process::pid(), StdOrdering::Relaxed);
        inner.keep_name.store(self.keep_name, StdOrdering::Relaxed);
        Ok(seg)
    }

    /// Creates an anonymous segment (`memfd`): no name anywhere, freed when
    /// the last process holding it unmaps and closes it. Its size is sealed,
    /// so no holder can truncate it under the others.
    ///
    /// # Examples
    ///
    /// ```
    /// let seg = shmproc::Segment::builder().size(4096).anonymous()?;
    /// assert_eq!(seg.name(), None);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::NoSpace`], [`Error::Os`].
    pub fn anonymous(self) -> Result<Segment> {
        self.anonymous_with(|_| Ok(()))
    }

    pub(crate) fn anonymous_with(self, init: impl FnOnce(&Segment) -> Result<()>) -> Result<Segment> {
        let fd = sysshm::memfd().map_err(|e| Error::os("memfd_create", e))?;
        let creator = self.creator;
        let seg = self.build(fd, DirRef::Default, None, creator)?;
        sysshm::seal_size(seg.inner.fd.as_fd()).map_err(|e| Error::os("fcntl(F_ADD_SEALS)", e))?;
        init(&seg)?;
        header::publish(&seg.header().state);
        Ok(seg)
    }

    /// Sizes, maps and fills the header of a new, not yet visible object.
    fn build(
        &self,
        fd: OwnedFd,
        dir: DirRef,
        names: Option<(String, String)>,
        creator: Option<Token>,
    ) -> Result<Segment> {
        let total = HEADER_SIZE
            .checked_add(self.size)
            .and_then(page_round)
            .filter(|&t| t <= isize::MAX as usize)
            .ok_or(Error::InvalidArgument { what: "segment size too large" })?;
        sysshm::allocate(fd.as_fd(), total as u64).map_err(|e| match Error::os("fallocate", e) {
            Error::NoSpace { .. } => Error::NoSpace { requested: total as u64 },
            other => other,
        })?;
        failpoint::hit("segment.create.allocated");
        let map = Mapping::map(fd.as_fd(), total, true).map_err(|e| Error::os("mmap", e))?;
        let identity = sysshm::fstat(fd.as_fd()).map_err(|e| Error::os("fstat", e))?;
        let seg = Segment {
            inner: Arc::new(Inner {
                map,
                fd,
                name: names,
                dir,
                owner_pid: AtomicU32::new(0),
                keep_name: AtomicBool::new(true),
                headed: true,
                writable: true,
                payload_len: self.size,
                creator,
                identity,
                kind: self.kind,
                layout_hash: self.layout_hash,
            }),
        };
        seg.header().init(&HeaderInit {
            kind: self.kind,
            layout_hash: self.layout_hash,
            len: total as u64,
            payload_len: self.size as u64,
            creator_pid: creator.map_or(crate::sys::process::pid(), |t| t.pid),
            creator_nonce: creator.map_or(0, |t| t.nonce),
        });
        Ok(seg)
    }

    /// Opens an existing named segment and validates its header.
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-seg7-{}", std::process::id());
    /// let _a = shmproc::Segment::create(&name, 100)?;
    /// let too_big = shmproc::Segment::builder().name(&name).size(200).open();
    /// assert!(matches!(too_big, Err(shmproc::Error::SizeMismatch { .. })));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::NotFound`], [`Error::PermissionDenied`]
    /// (another user's object), [`Error::Corrupt`] (not a shmproc object),
    /// [`Error::VersionMismatch`], [`Error::KindMismatch`],
    /// [`Error::LayoutMismatch`], [`Error::SizeMismatch`] (smaller than
    /// [`size`](Self::size)), [`Error::Truncated`], [`Error::NotReady`].
    pub fn open(self) -> Result<Segment> {
        let user = self.name.clone().ok_or(Error::InvalidArgument { what: "open needs a name" })?;
        let file = name::file_name(&user)?;
        let dir = DirRef::open(self.dir.as_deref())?;
        let fd = open_waiting(dir.get()?, &file, &user, true, self.wait_for_name)?;
        let expect = self.expect(self.size as u64);
        Segment::adopt(fd, dir, Some((user, file)), &expect, self.open_timeout)
    }

    /// Opens the segment if it exists, or creates it. Of several processes
    /// racing here, exactly one creates and the others open the same object.
    /// [`Segment::is_creator`] tells which happened.
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-seg8-{}", std::process::id());
    /// let a = shmproc::Segment::builder().name(&name).size(8).open_or_create()?;
    /// let b = shmproc::Segment::builder().name(&name).size(8).open_or_create()?;
    /// assert!(a.is_creator() && !b.is_creator());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// Those of [`create`](Self::create) and [`open`](Self::open).
    pub fn open_or_create(self) -> Result<Segment> {
        for _ in 0..64 {
            match self.clone().create() {
                Err(Error::Exists { .. }) => {}
                other => return other,
            }
            match self.clone().open() {
                // Removed between our create and open: try again.
                Err(Error::NotFound { .. }) => continue,
                other => return other,
            }
        }
        Err(Error::Timeout)
    }

    /// Like [`open_or_create`](Self::open_or_create), but a segment whose
    /// creator is confirmed dead is removed and created anew.
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-seg9-{}", std::process::id());
    /// // A segment whose creator died is replaced; a live one is opened.
    /// let seg = shmproc::Segment::builder().name(&name).size(8).open_or_recover()?;
    /// assert!(seg.is_creator());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// Those of [`open_or_create`](Self::open_or_create) and
    /// [`Segment::cleanup`].
    pub fn open_or_recover(self) -> Result<Segment> {
        let deadline = Instant::now() + self.open_timeout;
        let mut pause = Duration::from_micros(100);
        loop {
            let seg = self.clone().open_or_create()?;
            if seg.is_creator() || seg.creator_alive() {
                return Ok(seg);
            }
            drop(seg);
            let dir = DirRef::open(self.dir.as_deref())?;
            match cleanup_in(dir.get()?, self.name.as_deref().unwrap_or_default()) {
                // Removed by us or by a racing recoverer, or already
                // replaced by a live object: open again.
                Ok(()) | Err(Error::NotFound { .. }) | Err(Error::StillAlive { .. }) => {}
                Err(Error::AlreadyBeingCleaned) => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(10));
                }
                Err(e) => return Err(e),
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout);
            }
        }
    }
}

fn open_waiting(dir: &Dir, file: &str, user: &str, writable: bool, wait: Option<Duration>) -> Result<OwnedFd> {
    let deadline = wait.map(|w| Instant::now() + w);
    let mut pause = Duration::from_micros(100);
    loop {
        match dir.open_file(file, writable) {
            Ok(fd) => return Ok(fd),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                let Some(d) = deadline else { return Err(Error::named("open", user, e)) };
                if Instant::now() >= d {
                    return Err(Error::named("open", user, e));
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(10));
            }
            Err(e) => return Err(Error::named("open", user, e)),
        }
    }
}

fn check_owner(info: &FileInfo, user: &str) -> Result<()> {
    if !info.regular {
        return Err(Error::Corrupt { what: "not a regular file" });
    }
    if info.uid != crate::sys::process::euid() {
        return Err(Error::PermissionDenied {
            name: user.to_owned(),
            reason: "the object belongs to another user (refusing a possibly squatted name)",
        });
    }
    Ok(())
}

/// Refuses, for [`Segment::open_raw`], an object that is a shmproc object
/// under another name (its first bytes are our header's magic) or has
/// several names (a hard link can give a shmproc object or token a name
/// that passes the name check): mapped raw, its bytes would be reachable
/// beside the guards and loans of the objects that own them.
fn refuse_own_object(fd: std::os::fd::BorrowedFd<'_>, info: &FileInfo, user: &str) -> Result<()> {
    let refuse = |reason| Err(Error::InvalidName { name: user.to_owned(), reason });
    if info.nlink > 1 {
        return refuse("the object has several names (a hard link); open_raw maps only singly named objects");
    }
    let mut magic = [0u8; 8];
    if sysshm::read_at(fd, &mut magic, 0).is_ok_and(|n| n == 8) && u64::from_ne_bytes(magic) == header::MAGIC {
        return refuse("the object is a shmproc object under another name: open it with its own type");
    }
    Ok(())
}

impl Segment {
    /// A builder for the less common options.
    ///
    /// # Examples
    ///
    /// ```
    /// let seg = shmproc::Segment::builder().size(32).anonymous()?;
    /// assert_eq!(seg.len(), 32);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn builder() -> SegmentBuilder {
        SegmentBuilder::default()
    }

    /// Creates a named segment with `size` payload bytes (zero-filled).
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-seg10-{}", std::process::id());
    /// let seg = shmproc::Segment::create(&name, 1 << 20)?;
    /// assert_eq!(seg.len(), 1 << 20);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// See [`SegmentBuilder::create`].
    pub fn create(name: &str, size: usize) -> Result<Segment> {
        Segment::builder().name(name).size(size).create()
    }

    /// Opens a named segment made by [`create`](Segment::create).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(matches!(shmproc::Segment::open("surely-not-there"), Err(shmproc::Error::NotFound { .. })));
    /// ```
    ///
    /// # Errors
    /// See [`SegmentBuilder::open`].
    pub fn open(name: &str) -> Result<Segment> {
        Segment::builder().name(name).open()
    }

    /// Opens a named segment, or creates it with `size` payload bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-seg11-{}", std::process::id());
    /// let seg = shmproc::Segment::open_or_create(&name, 64)?;
    /// assert!(seg.is_creator());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// See [`SegmentBuilder::open_or_create`].
    pub fn open_or_create(name: &str, size: usize) -> Result<Segment> {
        Segment::builder().name(name).size(size).open_or_create()
    }

    /// Creates an anonymous (`memfd`) segment with `size` payload bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// let seg = shmproc::Segment::anonymous(64)?;
    /// seg.write_at(0, b"private until shared")?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// See [`SegmentBuilder::anonymous`].
    pub fn anonymous(size: usize) -> Result<Segment> {
        Segment::builder().size(size).anonymous()
    }

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

    /// [`cleanup`](Segment::cleanup) for a segment made in a directory given
    /// to [`SegmentBuilder::dir`].
    ///
    /// # Examples
    ///
    /// ```
    /// let dir = std::env::temp_dir();
    /// let name = format!("doc-seg13-{}", std::process::id());
    /// let seg = shmproc::Segment::builder().dir(&dir).name(&name).size(8).create()?;
    /// assert!(matches!(shmproc::Segment::cleanup_in(&dir, &name), Err(shmproc::Error::StillAlive { .. })));
    /// # drop(seg);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`cleanup`](Segment::cleanup).
    pub fn cleanup_in(dir: impl AsRef<Path>, name: &str) -> Result<()> {
        let d = Dir::open(dir.as_ref()).map_err(|e| Error::os("open(shm directory)", e))?;
        cleanup_in(&d, name)
    }

    /// Removes the named segment `name` if its creator is confirmed dead.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmproc::{Error, Segment};
    /// let name = format!("doc-cleanup-{}", std::process::id());
    /// let seg = Segment::create(&name, 64)?;
    /// // We are the creator, and alive:
    /// assert!(matches!(Segment::cleanup(&name), Err(Error::StillAlive { .. })));
    /// drop(seg);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::StillAlive`] if the creator lives; [`Error::AlreadyBeingCleaned`]
    /// if another cleaner holds it; [`Error::Corrupt`] or
    /// [`Error::VersionMismatch`] if it is not an object of this version (it
    /// is left alone); [`Error::NotFound`], [`Error::PermissionDenied`].
    pub fn cleanup(name: &str) -> Result<()> {
        cleanup_in(Dir::default_dir().map_err(|e| Error::os("open(/dev/shm)", e))?, name)
    }

    /// Opens a POSIX shared-memory object that another program made without
    /// a shmproc header (Python's `SharedMemory`, a C program using
    /// `shm_open`), mapping its real size. `name` is the `shm_open` name,
    /// with or without the leading `/`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use shmproc::{Access, Segment};
    /// // Python: shm = SharedMemory(name="psm_demo", create=True, size=1024)
    /// let seg = Segment::open_raw("psm_demo", Access::ReadOnly)?;
    /// let mut first = [0u8; 16];
    /// seg.read_at(0, &mut first)?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// A foreign object has no header and no seal: if its owner truncates
    /// the file while it is mapped, touching the lost pages raises SIGBUS.
    /// Call [`check`](Segment::check) before long reads if the owner may do
    /// that.
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::NotFound`], [`Error::PermissionDenied`],
    /// [`Error::SizeMismatch`] for an empty object, [`Error::Os`].
    pub fn open_raw(name: &str, access: Access) -> Result<Segment> {
        let file = name::raw_file_name(name)?;
        let dir = Dir::default_dir().map_err(|e| Error::os("open(/dev/shm)", e))?;
        let writable = access == Access::ReadWrite;
        let fd = dir.open_file(&file, writable).map_err(|e| Error::named("open", name, e))?;
        let info = sysshm::fstat(fd.as_fd()).map_err(|e| Error::os("fstat", e))?;
        check_owner(&info, name)?;
        let len = usize::try_from(info.size)
            .ok()
            .filter(|&l| l > 0 && l <= isize::MAX as usize)
            .ok_or(Error::SizeMismatch { expected: 1, found: info.size })?;
        refuse_own_object(fd.as_fd(), &info, name)?;
        let map = Mapping::map(fd.as_fd(), len, writable).map_err(|e| Error::os("mmap", e))?;
        Ok(Segment {
            inner: Arc::new(Inner {
                map,
                fd,
                name: Some((name.to_owned(), file)),
                dir: DirRef::Default,
                owner_pid: AtomicU32::new(0),
                keep_name: AtomicBool::new(true),
                headed: false,
                writable,
                payload_len: len,
                creator: None,
                identity: info,
                kind: 0,
                layout_hash: 0,
            }),
        })
    }

    /// Maps and validates an open shmproc object.
    fn adopt(
        fd: OwnedFd,
        dir: DirRef,
        names: Option<(String, String)>,
        expect: &Expect,
        wait: Duration,
    ) -> Result<Segment> {
        let label = names.as_ref().map_or("<fd>", |n| n.0.as_str()).to_owned();
        let info = sysshm::fstat(fd.as_fd()).map_err(|e| Error::os("fstat", e))?;
        check_owner(&info, &label)?;
        if info.size < HEADER_SIZE as u64 {
            return Err(Error::Corrupt { what: "smaller than a shmproc header" });
        }
        let len = usize::try_from(info.size)
            .ok()
            .filter(|&l| l <= isize::MAX as usize)
            .ok_or(Error::Corrupt { what: "impossibly large" })?;
        let map = Mapping::map(fd.as_fd(), len, true).map_err(|e| Error::os("mmap", e))?;
        let seg = Segment {
            inner: Arc::new(Inner {
                map,
                fd,
                name: names,
                dir,
                owner_pid: AtomicU32::new(0),
                keep_name: AtomicBool::new(true),
                headed: true,
                writable: true,
                payload_len: 0,
                creator: None,
                identity: info,
                kind: 0,
                layout_hash: 0,
            }),
        };
        let h = seg.header();
        // Identity first, so a foreign file is refused at once, not after
        // waiting for a READY it will never show.
        h.snapshot().check_identity()?;
        header::wait_ready(&h.state, Some(Instant::now() + wait))?;
        let snap: HeaderSnapshot = h.snapshot();
        snap.validate(expect, info.size)?;
        let payload_len = usize::try_from(snap.payload_len).map_err(|_| Error::Corrupt { what: "payload length" })?;
        let creator = (snap.creator_nonce != 0).then_some(Token { pid: snap.creator_pid, nonce: snap.creator_nonce });
        let mut inner = Arc::into_inner(seg.inner).expect("invariant: the handle was not shared yet");
        inner.payload_len = payload_len;
        inner.creator = creator;
        inner.kind = snap.kind;
        inner.layout_hash = snap.layout_hash;
        Ok(Segment { inner: Arc::new(inner) })
    }

    /// Opens a segment from a descriptor (a memfd received over a socket or
    /// inherited by a re-executed child) and validates it like [`open`](Segment::open).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmproc::Segment;
    /// let a = Segment::anonymous(64)?;
    /// a.write_at(0, &[7])?;
    /// let b = Segment::from_fd(a.share_fd()?)?;
    /// let mut x = [0u8];
    /// b.read_at(0, &mut x)?;
    /// assert_eq!(x, [7]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`open`](Segment::open).
    pub fn from_fd(fd: OwnedFd) -> Result<Segment> {
        let expect = Expect { kind: Some(kind::RAW), layout_hash: Some(0), min_payload: 0 };
        Segment::adopt(fd, DirRef::Default, None, &expect, DEFAULT_OPEN_TIMEOUT)
    }

    pub(crate) fn from_fd_expecting(fd: OwnedFd, kind: u32, layout_hash: u64) -> Result<Segment> {
        let expect = Expect { kind: Some(kind), layout_hash: Some(layout_hash), min_payload: 0 };
        Segment::adopt(fd, DirRef::Default, None, &expect, DEFAULT_OPEN_TIMEOUT)
    }

    /// Opens a segment from a descriptor number this process inherited
    /// (see [`inheritable_fd`](Segment::inheritable_fd)). The number is
    /// duplicated, not taken over.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    /// let seg = shmproc::Segment::anonymous(8)?;
    /// let fd = seg.inheritable_fd()?; // in a real program: its number goes to a child
    /// // SAFETY: `fd` is open, and ours, for the whole call.
    /// let same = unsafe { shmproc::Segment::from_inherited_fd(fd.as_raw_fd()) }?;
    /// assert_eq!(same.len(), 8);
    /// // SAFETY: -1 is never an open descriptor.
    /// assert!(unsafe { shmproc::Segment::from_inherited_fd(-1) }.is_err());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Safety
    ///
    /// A descriptor number is like a raw pointer: this call reads the
    /// object behind whatever descriptor has that number now. The caller
    /// guarantees that `fd` is not open, or is a descriptor handed to this
    /// process for this purpose (its number passed by the parent, as
    /// `inheritable_fd` intends) that no other code in the process uses as
    /// its own or closes during the call. (A number that another part of
    /// the process owns would give this segment its object, beside that
    /// code's own views of it.)
    ///
    /// # Errors
    /// [`Error::Os`] if `fd` is not open; then as for [`from_fd`](Segment::from_fd).
    #[allow(unsafe_code)] // declares a contract only; the body is safe code
    pub unsafe fn from_inherited_fd(fd: i32) -> Result<Segment> {
        Segment::from_fd(sysshm::adopt_fd(fd).map_err(|e| Error::os("fcntl(F_GETFD)", e))?)
    }

    /// A duplicate of the segment's descriptor (close-on-exec), to pass to
    /// another process with [`send_to`](Segment::send_to) or [`from_fd`](Segment::from_fd).
    ///
    /// # Examples
    ///
    /// ```
    /// let seg = shmproc::Segment::anonymous(8)?;
    /// let copy = shmproc::Segment::from_fd(seg.share_fd()?)?;
    /// assert_eq!(copy.len(), 8);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Os`].
    pub fn share_fd(&self) -> Result<OwnedFd> {
        sysshm::dup(self.inner.fd.as_fd()).map_err(|e| Error::os("fcntl(F_DUPFD_CLOEXEC)", e))
    }

    /// A duplicate of the segment's descriptor that survives `exec`, for a
    /// child started with `std::process::Command`; pass its number (for
    /// example in an environment variable) and open it there with
    /// [`from_inherited_fd`](Segment::from_inherited_fd). Keep the returned
    /// `OwnedFd` alive until the child has started.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    /// let seg = shmproc::Segment::anonymous(8)?;
    /// let fd = seg.inheritable_fd()?;
    /// let child = std::process::Command::new("true").env("MY_SEGMENT_FD", fd.as_raw_fd().to_string()).status();
    /// assert!(child.is_ok());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Os`].
    pub fn inheritable_fd(&self) -> Result<OwnedFd> {
        let fd = self.share_fd()?;
        sysshm::set_inheritable(fd.as_fd(), true).map_err(|e| Error::os("fcntl(F_SETFD)", e))?;
        Ok(fd)
    }

    /// Sends the segment's descriptor over a Unix socket (`SCM_RIGHTS`).
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = std::os::unix::net::UnixStream::pair().expect("socketpair");
    /// let seg = shmproc::Segment::anonymous(8)?;
    /// seg.write_at(0, &[42])?;
    /// seg.send_to(&a)?;
    /// let got = shmproc::Segment::recv_from(&b)?;
    /// let mut x = [0u8];
    /// got.read_at(0, &mut x)?;
    /// assert_eq!(x, [42]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Os`].
    pub fn send_to(&self, socket: &UnixStream) -> Result<()> {
        sysshm::send_fds(socket.as_fd(), &[self.inner.fd.as_fd()]).map_err(|e| Error::os("sendmsg(SCM_RIGHTS)", e))
    }

    /// Receives a segment sent with [`send_to`](Segment::send_to) and
    /// validates it.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = std::os::unix::net::UnixStream::pair().expect("socketpair");
    /// shmproc::Segment::anonymous(8)?.send_to(&a)?;
    /// assert_eq!(shmproc::Segment::recv_from(&b)?.len(), 8);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Os`], [`Error::Corrupt`] if no descriptor came, then as for
    /// [`from_fd`](Segment::from_fd).
    pub fn recv_from(socket: &UnixStream) -> Result<Segment> {
        let mut fds = sysshm::recv_fds(socket.as_fd(), 1).map_err(|e| Error::os("recvmsg(SCM_RIGHTS)", e))?;
        let fd = fds.pop().ok_or(Error::Corrupt { what: "no descriptor in the message" })?;
        Segment::from_fd(fd)
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

    /// Whether the payload is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(shmproc::Segment::anonymous(0)?.is_empty());
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

/// What [`cleanup_stale`] found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
///
/// # Examples
///
/// ```
/// let report: shmproc::CleanupReport = shmproc::cleanup_stale()?;
/// println!("{} removed, {} alive, {} busy", report.removed.len(), report.alive, report.busy);
/// # Ok::<(), shmproc::Error>(())
/// ```
pub struct CleanupReport {
    /// Names of segments removed (creator confirmed dead).
    pub removed: Vec<String>,
    /// How many segments were left because their creator lives.
    pub alive: usize,
    /// How many were being cleaned by another process at the same moment.
    pub busy: usize,
    /// Files under our prefix that are not shmproc objects of this version
    /// (left alone).
    pub foreign: Vec<String>,
    /// Liveness-token files of dead processes removed.
    pub tokens_removed: usize,
}

/// Removes every named shmproc segment in `/dev/shm` whose creator is
/// confirmed dead by the kernel, and the liveness tokens of dead processes.
/// Never removes an object whose creator lives, nor a file it does not
/// recognise.
///
/// # Examples
///
/// ```
/// let report = shmproc::cleanup_stale()?;
/// println!("removed {:?}, {} still in use", report.removed, report.alive);
/// # Ok::<(), shmproc::Error>(())
/// ```
///
/// # Errors
/// [`Error::Os`] if `/dev/shm` cannot be read.
pub fn cleanup_stale() -> Result<CleanupReport> {
    let dir = Dir::default_dir().map_err(|e| Error::os("open(/dev/shm)", e))?;
    cleanup_stale_dir(dir)
}

/// [`cleanup_stale`] for a directory given to [`SegmentBuilder::dir`].
///
/// # Examples
///
/// ```
/// let report = shmproc::cleanup_stale_in(std::env::temp_dir())?;
/// assert!(report.foreign.iter().all(|n| n.starts_with("shmproc.")));
/// # Ok::<(), shmproc::Error>(())
/// ```
///
/// # Errors
/// [`Error::Os`] if the directory cannot be read.
pub fn cleanup_stale_in(dir: impl AsRef<Path>) -> Result<CleanupReport> {
    let d = Dir::open(dir.as_ref()).map_err(|e| Error::os("open(shm directory)", e))?;
    cleanup_stale_dir(&d)
}

fn cleanup_stale_dir(dir: &Dir) -> Result<CleanupReport> {
    let mut report = CleanupReport::default();
    let names = dir.list(name::SEGMENT_PREFIX).map_err(|e| Error::os("readdir", e))?;
    for file in names {
        let user = &file[name::SEGMENT_PREFIX.len()..];
        match cleanup_in(dir, user) {
            Ok(()) => report.removed.push(user.to_owned()),
            Err(Error::StillAlive { .. }) => report.alive += 1,
            Err(Error::AlreadyBeingCleaned) => report.busy += 1,
            Err(Error::NotFound { .. }) => {}
            Err(_) => report.foreign.push(file),
        }
    }
    if let Ok(d) = Dir::default_dir() {
        report.tokens_removed = token::sweep_dead(d, usize::MAX).unwrap_or(0);
    }
    Ok(report)
}

fn cleanup_in(dir: &Dir, user: &str) -> Result<()> {
    let file = name::file_name(user)?;
    let fd = dir.open_file(&file, false).map_err(|e| Error::named("open", user, e))?;
    // One cleaner at a time per object; released if this one dies.
    if !sysshm::try_flock_exclusive(fd.as_fd()).map_err(|e| Error::os("flock", e))? {
        return Err(Error::AlreadyBeingCleaned);
    }
    let info = sysshm::fstat(fd.as_fd()).map_err(|e| Error::os("fstat", e))?;
    check_owner(&info, user)?;
    let mut bytes = [0u8; HEADER_SIZE];
    let got = sysshm::read_at(fd.as_fd(), &mut bytes, 0).map_err(|e| Error::os("pread", e))?;
    if got < HEADER_SIZE {
        return Err(Error::Corrupt { what: "smaller than a shmproc header" });
    }
    let snap = HeaderSnapshot::from_bytes(&bytes);
    snap.check_identity()?;
    if snap.creator_nonce == 0 {
        // Every named segment records its creator's token; without one we
        // cannot know the creator is dead, so the object is left alone.
        return Err(Error::Corrupt { what: "no creator token in the header" });
    }
    let t = Token { pid: snap.creator_pid, nonce: snap.creator_nonce };
    if token::liveness(t) == Liveness::Alive {
        return Err(Error::StillAlive { pid: snap.creator_pid });
    }
    failpoint::hit("cleanup.before_unlink");
    // Unlink only if the name still names the object we checked: tokens
    // and inodes are compared, not names.
    match dir.stat(&file) {
        Ok(now) if now.dev == info.dev && now.ino == info.ino => {
            dir.unlink(&file).map_err(|e| Error::named("unlink", user, e))
        }
        Ok(_) => Ok(()),
        Err(e) => Err(Error::named("stat", user, e)),
    }
}
