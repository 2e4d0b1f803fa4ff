//! Open file description locks (`fcntl(F_OFD_SETLK / F_OFD_GETLK)`) over a
//! whole file: the kernel drops such a lock when the last descriptor of
//! the open file description that took it closes (the owner's death, or
//! `exec` of a close-on-exec descriptor), which is what liveness tokens
//! rest on (`owner/token.rs`).
//!
//! # References
//! - [fcntl(2)](https://man7.org/linux/man-pages/man2/fcntl.2.html), "Open file description locks"

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

/// `fcntl(F_OFD_SETLK)` of a whole-file write lock, not waiting.
pub(crate) fn lock_exclusive(fd: &OwnedFd) -> io::Result<()> {
    let fl = whole_file(libc::F_WRLCK);
    // SAFETY: `fd` is open for the duration of the call and `fl` is a valid
    // `struct flock` that F_OFD_SETLK only reads.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_SETLK, &fl as *const libc::flock) };
    if r == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `fcntl(F_OFD_GETLK)` for a whole-file write lock: whether a lock that
/// conflicts with one on our own new open file description is held (by
/// any process, this one included: OFD locks of two descriptions conflict
/// even within a process, so a probe of our own token answers truly).
pub(crate) fn lock_held(fd: &OwnedFd) -> io::Result<bool> {
    let mut fl = whole_file(libc::F_WRLCK);
    // SAFETY: `fd` is open for the duration of the call and `fl` is a valid,
    // exclusively borrowed `struct flock` that F_OFD_GETLK writes into.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_GETLK, &mut fl as *mut libc::flock) };
    if r == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(fl.l_type != libc::F_UNLCK as libc::c_short)
}

/// A `struct flock` over the whole file; `l_pid` 0, as OFD locks require.
fn whole_file(l_type: libc::c_int) -> libc::flock {
    libc::flock {
        l_type: l_type as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    }
}
