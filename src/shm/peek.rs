//! Read-only inspection of the objects in a shared-memory directory, for
//! `shmproc::inspect` and the `shmproc` tool.
//!
//! Nothing here maps a segment, takes a lock, registers a role or creates a
//! liveness token: files are opened `O_RDONLY | O_NOFOLLOW | O_NONBLOCK`
//! and read with `pread`, so a truncated file gives a short read (an
//! `Err`), never SIGBUS, and the object's state is left as it was. Every
//! value read is a copy that the caller checks before use; a peer may be
//! writing while we read, so a multi-word snapshot may be inconsistent (it
//! is a report, not a basis for decisions).

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::owner::id;
use crate::owner::token::{self, Liveness, Token};
use crate::shm::header::{HEADER_SIZE, HeaderSnapshot};
use crate::shm::name;
use crate::sys::shm::{self as sysshm, DEFAULT_DIR, Dir, FileInfo};

/// Prefix of the liveness-token files (always in `/dev/shm`).
pub(crate) const TOKEN_PREFIX: &str = token::TOKEN_PREFIX;
/// Prefix of named segments.
pub(crate) const SEGMENT_PREFIX: &str = name::SEGMENT_PREFIX;

enum Which {
    Default(&'static Dir),
    Custom(Dir),
}

/// A directory of shared-memory objects opened for reading.
pub(crate) struct PeekDir {
    dir: Which,
    path: PathBuf,
}

impl std::fmt::Debug for PeekDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeekDir").field("path", &self.path).finish()
    }
}

impl PeekDir {
    /// Opens `path`, or `/dev/shm` for `None`.
    pub(crate) fn open(path: Option<&Path>) -> Result<PeekDir> {
        match path {
            None => Ok(PeekDir {
                dir: Which::Default(Dir::default_dir().map_err(|e| Error::os("open(/dev/shm)", e))?),
                path: PathBuf::from(DEFAULT_DIR),
            }),
            Some(p) => Ok(PeekDir {
                dir: Which::Custom(Dir::open(p).map_err(|e| Error::os("open(shm directory)", e))?),
                path: p.to_owned(),
            }),
        }
    }

    fn dir(&self) -> &Dir {
        match &self.dir {
            Which::Default(d) => d,
            Which::Custom(d) => d,
        }
    }

    /// File names of segments and token files, sorted.
    pub(crate) fn list(&self) -> Result<Vec<String>> {
        let mut names = self.dir().list("shmproc").map_err(|e| Error::os("readdir", e))?;
        names.retain(|n| n.starts_with(SEGMENT_PREFIX) || n.starts_with(TOKEN_PREFIX));
        names.sort();
        Ok(names)
    }

    /// The length of file `file` (`lstat`), if it exists.
    pub(crate) fn file_len(&self, file: &str) -> Option<u64> {
        self.dir().stat(file).ok().map(|i| i.size)
    }

    /// Opens the named segment `user` (without its prefix) for reading.
    ///
    /// # Errors
    /// [`Error::InvalidName`], [`Error::NotFound`], [`Error::PermissionDenied`],
    /// [`Error::Corrupt`] for a file that is not a regular file.
    pub(crate) fn open_segment(&self, user: &str) -> Result<Peek> {
        let file = name::file_name(user)?;
        let fd = self.dir().open_file(&file, false).map_err(|e| Error::named("open", user, e))?;
        let info = sysshm::fstat(fd.as_fd()).map_err(|e| Error::os("fstat", e))?;
        if !info.regular {
            return Err(Error::Corrupt { what: "not a regular file" });
        }
        Ok(Peek { fd, info })
    }
}

/// One object opened read-only.
#[derive(Debug)]
pub(crate) struct Peek {
    fd: OwnedFd,
    info: FileInfo,
}

impl Peek {
    /// Opens the file at `path` read-only (a process's descriptor under
    /// `/proc`, for an object that has no name).
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Os`]; [`Error::Corrupt`] for a file
    /// that is not a regular file.
    pub(crate) fn open_path(path: &Path) -> Result<Peek> {
        let file = std::fs::File::open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound { name: path.display().to_string() },
            _ => Error::os("open", e),
        })?;
        let fd = OwnedFd::from(file);
        let info = sysshm::fstat(fd.as_fd()).map_err(|e| Error::os("fstat", e))?;
        if !info.regular {
            return Err(Error::Corrupt { what: "not a regular file" });
        }
        Ok(Peek { fd, info })
    }

    /// The file's length when opened.
    pub(crate) fn file_len(&self) -> u64 {
        self.info.size
    }

    /// Whether the file belongs to the calling user.
    pub(crate) fn owned_by_me(&self) -> bool {
        self.info.uid == crate::sys::process::euid()
    }

    /// The header, read once. The copy is not validated: callers call
    /// `check_identity` and check what they use.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if the file is shorter than a header; [`Error::Os`].
    pub(crate) fn header(&self) -> Result<HeaderSnapshot> {
        let mut b = [0u8; HEADER_SIZE];
        self.read_exact(0, &mut b).map_err(|e| match e {
            Error::Truncated { .. } => Error::Corrupt { what: "smaller than a shmproc header" },
            e => e,
        })?;
        Ok(HeaderSnapshot::from_bytes(&b))
    }

    fn read_exact(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let mut done = 0;
        while done < buf.len() {
            let n = sysshm::read_at(self.fd.as_fd(), &mut buf[done..], offset + done as u64)
                .map_err(|e| Error::os("pread", e))?;
            if n == 0 {
                return Err(Error::Truncated { expected: offset + buf.len() as u64, found: offset + done as u64 });
            }
            done += n;
        }
        Ok(())
    }

    /// Copies payload bytes `offset..offset + buf.len()`, after checking
    /// that they lie inside the payload the header `h` records.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if the range is outside the payload;
    /// [`Error::Truncated`] if the file is shorter; [`Error::Os`].
    pub(crate) fn read_payload(&self, h: &HeaderSnapshot, offset: usize, buf: &mut [u8]) -> Result<()> {
        let end = (offset as u64).checked_add(buf.len() as u64);
        if end.is_none_or(|e| e > h.payload_len) {
            return Err(Error::Corrupt { what: "field outside the payload the header records" });
        }
        self.read_exact(HEADER_SIZE as u64 + offset as u64, buf)
    }

    /// The `u32` at payload `offset` (native byte order).
    ///
    /// # Errors
    /// As for [`read_payload`](Self::read_payload).
    pub(crate) fn u32_at(&self, h: &HeaderSnapshot, offset: usize) -> Result<u32> {
        let mut b = [0u8; 4];
        self.read_payload(h, offset, &mut b)?;
        Ok(u32::from_ne_bytes(b))
    }

    /// The `u64` at payload `offset` (native byte order).
    ///
    /// # Errors
    /// As for [`read_payload`](Self::read_payload).
    pub(crate) fn u64_at(&self, h: &HeaderSnapshot, offset: usize) -> Result<u64> {
        let mut b = [0u8; 8];
        self.read_payload(h, offset, &mut b)?;
        Ok(u64::from_ne_bytes(b))
    }
}

/// Whether the creator recorded in `h` lives: `None` if the header records
/// no creator token; `Some(false)` only if the kernel confirms it dead.
pub(crate) fn creator_alive(h: &HeaderSnapshot) -> Option<bool> {
    (h.creator_nonce != 0)
        .then(|| token::liveness(Token { pid: h.creator_pid, nonce: h.creator_nonce }) == Liveness::Alive)
}

/// What the token of an owner id (as in lock words) says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OwnerInfo {
    /// The owner's process pid, from its token file (if readable).
    pub(crate) pid: Option<u32>,
    /// The thread slot (0: unknown thread).
    pub(crate) slot: u32,
    /// `false` only if the kernel confirms the owner dead.
    pub(crate) alive: bool,
}

/// Looks up owner id `owner` (see `owner/id.rs`) with process nonce
/// `nonce` (0 if unknown).
pub(crate) fn owner_info(owner: u32, nonce: u64) -> OwnerInfo {
    let (tag, slot) = (id::tag_of(owner), id::slot_of(owner));
    let t = token::tag_info(tag);
    // A token file whose nonce differs belongs to a later process that
    // reused the tag: the recorded owner is gone.
    let reused = nonce != 0 && t.nonce.is_some_and(|n| n != nonce);
    let dead = t.liveness == Liveness::Dead || reused || token::owner_dead(owner, nonce);
    OwnerInfo { pid: if reused { None } else { t.pid }, slot, alive: !dead }
}

/// The pid recorded in token file `file` and whether its process lives, or
/// `None` if `file` is not a token file name.
pub(crate) fn token_file_info(file: &str) -> Option<(Option<u32>, bool)> {
    let t = token::tag_info(token::tag_of_file(file)?);
    Some((t.pid, t.liveness == Liveness::Alive))
}
