//! Process identity: pid, parent pid, effective uid.
//!
//! # References
//! - [getpid(2)](https://man7.org/linux/man-pages/man2/getpid.2.html)

/// This process's id, `getpid(2)`.
pub(crate) fn pid() -> u32 {
    rustix::process::getpid().as_raw_nonzero().get() as u32
}

/// The effective user id, `geteuid(2)`.
pub(crate) fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}
