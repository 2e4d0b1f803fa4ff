//! The spawn start method: re-execute the current binary with the task's
//! channel and the argument's descriptors inherited.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::process::{Command, Stdio};

use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::process::start::on_launcher;
use crate::sys::ctor::{self, CHILD_VAR, SERVER_VAR};
use crate::sys::shm as sysshm;

/// Serialises our re-executions so that inheritable descriptors made for
/// one child are closed before the next child is started.
pub(crate) static SPAWN_LOCK: Mutex<()> = Mutex::new(());

/// Starts a re-executed child whose environment names `channel` and
/// `fds`; returns its pid.
pub(crate) fn start(channel: BorrowedFd<'_>, fds: &[OwnedFd]) -> Result<u32> {
    ctor::keep_linked();
    let exe = crate::sys::image::current_exe().map_err(|e| Error::os("current_exe", e))?;
    let _guard = SPAWN_LOCK.lock();
    let chan = sysshm::inheritable_dup(channel).map_err(|e| Error::os("dup", e))?;
    let mut inherited = Vec::with_capacity(fds.len());
    for fd in fds {
        inherited.push(sysshm::inheritable_dup(fd.as_fd()).map_err(|e| Error::os("dup", e))?);
    }
    let list: Vec<String> = inherited.iter().map(|f| f.as_raw_fd().to_string()).collect();
    let value = format!("{}:{}", chan.as_raw_fd(), list.join(","));
    let child = on_launcher(move || {
        let r = Command::new(exe).env(CHILD_VAR, value).env_remove(SERVER_VAR).stdin(Stdio::null()).spawn();
        drop((chan, inherited));
        r
    })
    .and_then(|r| r)
    .map_err(|e| Error::os("spawn (re-exec)", e))?;
    Ok(child.id())
}

/// Parses `SHMPROC_CHILD` (`"<channel>:<fd>,<fd>..."`) and takes the
/// descriptors.
pub(crate) fn parse_child_var(value: &str) -> Result<(OwnedFd, Vec<OwnedFd>)> {
    let bad = || Error::Corrupt { what: "malformed SHMPROC_CHILD" };
    let (chan, rest) = value.split_once(':').ok_or_else(bad)?;
    let own = |s: &str| -> Result<OwnedFd> {
        let n: i32 = s.parse().map_err(|_| bad())?;
        sysshm::own_inherited(n).map_err(|e| Error::os("inherited descriptor", e))
    };
    let chan = own(chan)?;
    let mut fds = Vec::new();
    for part in rest.split(',').filter(|p| !p.is_empty()) {
        fds.push(own(part)?);
    }
    Ok((chan, fds))
}
