//! The spawn start method: re-execute the current binary with the task's
//! channel and the argument's descriptors inherited.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::process::{Child, Command, Stdio};

use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::process::loader::{self, CHILD_VAR, SERVER_VAR};
use crate::process::start::on_launcher;
use crate::sys::shm as sysshm;

/// Serialises our re-executions so that inheritable descriptors made for
/// one child are closed before the next child is started.
pub(crate) static SPAWN_LOCK: Mutex<()> = Mutex::new(());

/// In a forked child (see `current::after_fork_in_child`): a parent thread
/// that was starting a child at the fork does not exist here.
pub(super) fn reset_in_child() {
    crate::sys::process::reset_in_child(&SPAWN_LOCK, ());
}

/// Re-executes the current binary with the role variable `var` set to
/// `value(numbers)`, where `numbers` are the descriptors the new process
/// inherits: duplicates of `inherit`, made inheritable for this start only
/// and closed here once it has begun. The other role variable is removed,
/// stdin is `/dev/null`, and the start runs on the launcher thread so the
/// child's parent-death signal is tied to a thread that lives as long as
/// this process.
pub(crate) fn reexec(
    var: &'static str,
    inherit: &[BorrowedFd<'_>],
    value: impl FnOnce(&[i32]) -> String,
    op: &'static str,
) -> Result<Child> {
    loader::keep_linked();
    let exe = crate::shm::fnref::current_exe().map_err(|e| Error::os("current_exe", e))?;
    let other = if var == CHILD_VAR { SERVER_VAR } else { CHILD_VAR };
    let _guard = SPAWN_LOCK.lock();
    let dups = inherit
        .iter()
        .map(|fd| sysshm::inheritable_dup(*fd).map_err(|e| Error::os("dup", e)))
        .collect::<Result<Vec<OwnedFd>>>()?;
    let numbers: Vec<i32> = dups.iter().map(|f| f.as_raw_fd()).collect();
    let value = value(&numbers);
    on_launcher(move || {
        let r = Command::new(exe).env(var, value).env_remove(other).stdin(Stdio::null()).spawn();
        drop(dups);
        r
    })
    .and_then(|r| r)
    .map_err(|e| Error::os(op, e))
}

/// Starts a re-executed child whose environment names `channel` and
/// `fds`; returns its pid.
pub(crate) fn start(channel: BorrowedFd<'_>, fds: &[OwnedFd]) -> Result<u32> {
    let mut inherit = vec![channel];
    inherit.extend(fds.iter().map(|f| f.as_fd()));
    let child = reexec(
        CHILD_VAR,
        &inherit,
        |n| {
            let rest: Vec<String> = n[1..].iter().map(|x| x.to_string()).collect();
            format!("{}:{}", n[0], rest.join(","))
        },
        "spawn (re-exec)",
    )?;
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
