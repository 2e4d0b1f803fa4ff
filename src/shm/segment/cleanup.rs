//! Stale cleanup: removing named segments whose creator the OS confirms
//! dead, one by name or every one in a directory.

use super::open::check_owner;
use super::*;

impl Segment {
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

pub(super) fn cleanup_in(dir: &Dir, user: &str) -> Result<()> {
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
