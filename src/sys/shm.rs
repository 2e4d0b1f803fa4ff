//! Shared-memory files: a directory on tmpfs (`/dev/shm`), unnamed files
//! linked into it once initialized, memfds, sizing, seals, locks and fd
//! passing.
//!
//! Named objects are files in `/dev/shm`, exactly what `shm_open(3)` makes
//! (glibc implements it as `open("/dev/shm/NAME")`), so other programs that
//! use `shm_open` see ours and we see theirs. Working with the directory
//! directly gives us `O_TMPFILE` + `linkat`, which publishes a fully built
//! object under its name in one step.
//!
//! # References
//! - [shm_open(3)](https://man7.org/linux/man-pages/man3/shm_open.3.html)
//! - [open(2)](https://man7.org/linux/man-pages/man2/open.2.html), `O_TMPFILE`
//! - [linkat(2)](https://man7.org/linux/man-pages/man2/linkat.2.html)
//! - [memfd_create(2)](https://man7.org/linux/man-pages/man2/memfd_create.2.html)

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rustix::fs::{self as rfs, AtFlags, FallocateFlags, Mode, OFlags, SealFlags};
use rustix::io::Errno;

/// Where named objects live unless a builder says otherwise.
pub(crate) const DEFAULT_DIR: &str = "/dev/shm";

/// What `fstat` tells us about an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileInfo {
    /// Length in bytes.
    pub(crate) size: u64,
    /// Owner's uid.
    pub(crate) uid: u32,
    /// Permission bits.
    pub(crate) mode: u32,
    /// Whether it is a regular file (not a FIFO, socket, device or directory).
    pub(crate) regular: bool,
    /// Device and inode: the object's identity, whatever its name.
    pub(crate) dev: u64,
    /// See `dev`.
    pub(crate) ino: u64,
    /// How many names the object has.
    pub(crate) nlink: u64,
}

#[allow(clippy::unnecessary_cast)] // `st_nlink` is u64 here, u32 on other targets
fn info(st: &rfs::Stat) -> FileInfo {
    FileInfo {
        size: st.st_size as u64,
        uid: st.st_uid,
        mode: st.st_mode & 0o7777,
        regular: rfs::FileType::from_raw_mode(st.st_mode) == rfs::FileType::RegularFile,
        dev: st.st_dev,
        ino: st.st_ino,
        nlink: st.st_nlink as u64,
    }
}

/// `fstat(2)` of an open object.
pub(crate) fn fstat(fd: BorrowedFd<'_>) -> io::Result<FileInfo> {
    Ok(info(&rfs::fstat(fd)?))
}

/// An open directory that holds named objects.
#[derive(Debug)]
pub(crate) struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

impl Dir {
    /// Opens `path` as a directory (`O_DIRECTORY | O_CLOEXEC`).
    pub(crate) fn open(path: &Path) -> io::Result<Dir> {
        let fd = rfs::open(path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
        Ok(Dir { fd, path: path.to_owned() })
    }

    /// The directory `/dev/shm`, opened once per process.
    pub(crate) fn default_dir() -> io::Result<&'static Dir> {
        static DEFAULT: OnceLock<Dir> = OnceLock::new();
        if let Some(d) = DEFAULT.get() {
            return Ok(d);
        }
        let d = Dir::open(Path::new(DEFAULT_DIR))?;
        Ok(DEFAULT.get_or_init(|| d))
    }

    /// Makes an unnamed file in this directory, mode 0600 whatever the
    /// umask: `openat(O_TMPFILE | O_RDWR | O_CLOEXEC)` then `fchmod`.
    pub(crate) fn create_unnamed(&self) -> io::Result<OwnedFd> {
        let fd = rfs::openat(&self.fd, ".", OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC, Mode::RUSR | Mode::WUSR)?;
        rfs::fchmod(&fd, Mode::RUSR | Mode::WUSR)?;
        Ok(fd)
    }

    /// Gives the unnamed file `fd` the name `name` in this directory.
    /// Fails with `EEXIST` if the name is taken, so of several racing
    /// creators exactly one wins.
    pub(crate) fn link(&self, fd: BorrowedFd<'_>, name: &str) -> io::Result<()> {
        // AT_EMPTY_PATH would need CAP_DAC_READ_SEARCH; the /proc path
        // works for every user (open(2), O_TMPFILE).
        let proc_path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        rfs::linkat(rfs::CWD, proc_path.as_str(), &self.fd, name, AtFlags::SYMLINK_FOLLOW)?;
        Ok(())
    }

    /// Opens an existing object without following symlinks, and without
    /// blocking: `/dev/shm` is world-writable, and a FIFO planted under one
    /// of our names would otherwise hang `open` forever. Callers check that
    /// the result is a regular file before using it.
    pub(crate) fn open_file(&self, name: &str, writable: bool) -> io::Result<OwnedFd> {
        let rw = if writable { OFlags::RDWR } else { OFlags::RDONLY };
        Ok(rfs::openat(&self.fd, name, rw | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC, Mode::empty())?)
    }

    /// Removes a name (`unlinkat`). The object lives on while mapped or open.
    pub(crate) fn unlink(&self, name: &str) -> io::Result<()> {
        Ok(rfs::unlinkat(&self.fd, name, AtFlags::empty())?)
    }

    /// `fstatat(AT_SYMLINK_NOFOLLOW)` of a name.
    pub(crate) fn stat(&self, name: &str) -> io::Result<FileInfo> {
        Ok(info(&rfs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW)?))
    }

    /// The names in this directory that start with `prefix`.
    pub(crate) fn list(&self, prefix: &str) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.path)? {
            let entry = entry?;
            if let Some(n) = entry.file_name().to_str()
                && n.starts_with(prefix)
            {
                names.push(n.to_owned());
            }
        }
        Ok(names)
    }
}

/// Gives a file `len` bytes of allocated memory, so that a full tmpfs is an
/// `ENOSPC` here and never a SIGBUS later. Falls back to `ftruncate` on file
/// systems without `fallocate`.
///
/// # References
/// - [fallocate(2)](https://man7.org/linux/man-pages/man2/fallocate.2.html)
pub(crate) fn allocate(fd: BorrowedFd<'_>, len: u64) -> io::Result<()> {
    match rfs::fallocate(fd, FallocateFlags::empty(), 0, len) {
        Ok(()) => Ok(()),
        Err(Errno::OPNOTSUPP) | Err(Errno::NOSYS) => Ok(rfs::ftruncate(fd, len)?),
        Err(e) => Err(e.into()),
    }
}

/// An anonymous shared-memory file (`memfd_create`, close-on-exec, sealable).
pub(crate) fn memfd() -> io::Result<OwnedFd> {
    Ok(rfs::memfd_create("shmproc", rfs::MemfdFlags::CLOEXEC | rfs::MemfdFlags::ALLOW_SEALING)?)
}

/// Seals a memfd's size: no process can shrink or grow it any more, so no
/// holder of a mapping can be made to fault by a truncating peer.
pub(crate) fn seal_size(fd: BorrowedFd<'_>) -> io::Result<()> {
    Ok(rfs::fcntl_add_seals(fd, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL)?)
}

/// `pread(2)` until `buf` is full or the file ends; returns bytes read.
pub(crate) fn read_at(fd: BorrowedFd<'_>, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match rustix::io::pread(fd, &mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(done)
}

/// `flock(LOCK_EX | LOCK_NB)`: `Ok(false)` if another open file holds it.
/// Cleaners use it so that of two racing cleaners exactly one proceeds; it
/// is released when the fd closes or the holder dies.
///
/// # References
/// - [flock(2)](https://man7.org/linux/man-pages/man2/flock.2.html)
pub(crate) fn try_flock_exclusive(fd: BorrowedFd<'_>) -> io::Result<bool> {
    match rfs::flock(fd, rfs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(Errno::WOULDBLOCK) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Clears or sets `FD_CLOEXEC`, so a re-executed child can inherit `fd`.
pub(crate) fn set_inheritable(fd: BorrowedFd<'_>, inheritable: bool) -> io::Result<()> {
    let flags = if inheritable { rustix::io::FdFlags::empty() } else { rustix::io::FdFlags::CLOEXEC };
    Ok(rustix::io::fcntl_setfd(fd, flags)?)
}

/// Duplicates a descriptor (close-on-exec).
pub(crate) fn dup(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    Ok(rustix::io::fcntl_dupfd_cloexec(fd, 3)?)
}

/// Takes ownership of an inherited descriptor number after checking it is
/// open.
pub(crate) fn adopt_fd(raw: i32) -> io::Result<OwnedFd> {
    // Duplicate rather than adopt: the caller's number stays theirs to
    // close, and ours is close-on-exec.
    with_open_number(raw, 0, dup)
}

/// Runs `f` on the descriptor number `raw` after checking (`fcntl(F_GETFD)`)
/// that it is open and at least `lowest`; `EBADF` otherwise.
fn with_open_number<R>(raw: i32, lowest: i32, f: impl FnOnce(BorrowedFd<'_>) -> io::Result<R>) -> io::Result<R> {
    if raw < lowest.max(0) {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    // SAFETY: the borrow is used only for F_GETFD, which fails with EBADF
    // when `raw` is not open (and then `f` never sees it), and by `f` right
    // after, within this call.
    let borrowed = unsafe { BorrowedFd::borrow_raw(raw) };
    rustix::io::fcntl_getfd(borrowed)?;
    f(borrowed)
}

#[cfg(feature = "serde")]
/// A duplicate of `fd` that survives `exec` (for a re-executed child).
pub(crate) fn inheritable_dup(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let d = dup(fd)?;
    set_inheritable(std::os::fd::AsFd::as_fd(&d), true)?;
    Ok(d)
}

#[cfg(feature = "serde")]
/// Takes ownership of a descriptor number that our parent made us inherit
/// (named in our environment), after checking that it is open, and makes it
/// close-on-exec so it does not leak further.
pub(crate) fn own_inherited(raw: i32) -> io::Result<OwnedFd> {
    use std::os::fd::FromRawFd;
    with_open_number(raw, 3, |_| Ok(()))?;
    // SAFETY: `raw` is open (checked above); our parent created it for this
    // process and named it only in our environment, which the loader hook
    // consumed before `main`, so nothing else here owns or closes it.
    let owned = unsafe { OwnedFd::from_raw_fd(raw) };
    set_inheritable(std::os::fd::AsFd::as_fd(&owned), false)?;
    Ok(owned)
}

/// Sends `fds` with one byte over a Unix socket (`SCM_RIGHTS`).
///
/// # References
/// - [unix(7)](https://man7.org/linux/man-pages/man7/unix.7.html), `SCM_RIGHTS`
pub(crate) fn send_fds(sock: BorrowedFd<'_>, fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags, sendmsg};
    let mut space = vec![std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(fds.len()))];
    let mut cmsg = SendAncillaryBuffer::new(&mut space);
    if !cmsg.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "too many fds"));
    }
    let byte = [0u8; 1];
    loop {
        match sendmsg(sock, &[io::IoSlice::new(&byte)], &mut cmsg, SendFlags::NOSIGNAL) {
            Ok(_) => return Ok(()),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Receives up to `max` fds sent by [`send_fds`] (close-on-exec).
pub(crate) fn recv_fds(sock: BorrowedFd<'_>, max: usize) -> io::Result<Vec<OwnedFd>> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, recvmsg};
    let mut space = vec![std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(max))];
    let mut cmsg = RecvAncillaryBuffer::new(&mut space);
    let mut byte = [0u8; 1];
    let msg = loop {
        match recvmsg(sock, &mut [io::IoSliceMut::new(&mut byte)], &mut cmsg, RecvFlags::CMSG_CLOEXEC) {
            Ok(m) => break m,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    if msg.bytes == 0 {
        return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
    }
    let mut out = Vec::new();
    for m in cmsg.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = m {
            out.extend(fds);
        }
    }
    Ok(out)
}
