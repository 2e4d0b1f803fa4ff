//! Making and opening segments: the builder, named and anonymous
//! creation, opening with validation, and foreign objects (`open_raw`).

use super::cleanup::cleanup_in;
use super::*;

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

    /// The payload size in bytes, for creation: at least 1 (creating with
    /// 0 is an [`Error::InvalidArgument`], as Python's `SharedMemory`
    /// refuses `size=0`). For [`open`](Self::open), the least size accepted.
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
    /// [`Error::InvalidArgument`] if the size is zero (Python:
    /// `ValueError`), [`Error::InvalidName`], [`Error::Exists`], [`Error::NoSpace`] (the
    /// memory is allocated up front, so a full `/dev/shm` is an error here
    /// and never a SIGBUS later), [`Error::Os`].
    pub fn create(self) -> Result<Segment> {
        self.create_with(|_| Ok(()))
    }

    /// Like [`create`](Self::create), running `init` on the segment before
    /// anyone else can see it.
    pub(crate) fn create_with(self, init: impl FnOnce(&Segment) -> Result<()>) -> Result<Segment> {
        let user = self.name.clone().ok_or_else(|| Error::InvalidArgument { what: "a named segment needs a name" })?;
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
    /// [`Error::InvalidArgument`] if the size is zero, [`Error::NoSpace`],
    /// [`Error::Os`].
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
        if self.size == 0 && self.kind == kind::RAW {
            // Python: SharedMemory(create=True, size=0) raises ValueError.
            return Err(Error::InvalidArgument { what: "a segment's size must be positive, not zero" });
        }
        let total = HEADER_SIZE
            .checked_add(self.size)
            .and_then(page_round)
            .filter(|&t| t <= isize::MAX as usize)
            .ok_or_else(|| Error::InvalidArgument { what: "segment size too large" })?;
        sysshm::allocate(fd.as_fd(), total as u64).map_err(|e| match Error::os("fallocate", e) {
            Error::NoSpace { .. } => Error::NoSpace { requested: total as u64 },
            other => other,
        })?;
        failpoint::hit("segment.create.allocated");
        let map = Mapping::map(fd.as_fd(), total, true).map_err(|e| Error::os("mmap", e))?;
        let identity = sysshm::fstat(fd.as_fd()).map_err(|e| Error::os("fstat", e))?;
        let mut inner = Inner::fresh(map, fd, names, dir, identity);
        inner.payload_len = self.size;
        inner.creator = creator;
        inner.kind = self.kind;
        inner.layout_hash = self.layout_hash;
        let seg = Segment { inner: Arc::new(inner) };
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
        let user = self.name.clone().ok_or_else(|| Error::InvalidArgument { what: "open needs a name" })?;
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

pub(super) fn check_owner(info: &FileInfo, user: &str) -> Result<()> {
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

    /// Creates a named segment with `size` payload bytes (zero-filled);
    /// `size` must not be zero.
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

    /// Creates an anonymous (`memfd`) segment with `size` payload bytes;
    /// `size` must not be zero.
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
            .ok_or_else(|| Error::SizeMismatch { expected: 1, found: info.size })?;
        refuse_own_object(fd.as_fd(), &info, name)?;
        let map = Mapping::map(fd.as_fd(), len, writable).map_err(|e| Error::os("mmap", e))?;
        let mut inner = Inner::fresh(map, fd, Some((name.to_owned(), file)), DirRef::Default, info);
        inner.headed = false;
        inner.writable = writable;
        inner.payload_len = len;
        Ok(Segment { inner: Arc::new(inner) })
    }

    /// Maps and validates an open shmproc object.
    pub(super) fn adopt(
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
            .ok_or_else(|| Error::Corrupt { what: "impossibly large" })?;
        let map = Mapping::map(fd.as_fd(), len, true).map_err(|e| Error::os("mmap", e))?;
        let seg = Segment { inner: Arc::new(Inner::fresh(map, fd, names, dir, info)) };
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
}
