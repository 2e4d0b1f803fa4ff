//! The only code that calls the operating system.
//!
//! Everything here is a thin, typed wrapper over one system call or a short
//! fixed sequence of them, made through rustix (libc only where rustix lacks
//! the call). Linux is the one supported platform for now; README.md says
//! what macOS would need.
#![allow(unsafe_code)]

#[cfg(not(target_os = "linux"))]
compile_error!("shmproc supports Linux only for now (futexes, memfd, O_TMPFILE); see README.md");

#[cfg(not(target_has_atomic = "64"))]
compile_error!("shmproc needs 64-bit atomics");

pub(crate) mod failpoint;
#[cfg_attr(shmproc_loom, allow(dead_code))]
pub(crate) mod futex;
pub(crate) mod mmap;
pub(crate) mod ofd;
#[cfg(feature = "serde")]
pub(crate) mod parcel;
// Starting, reaping and signalling processes: the process layer uses these,
// and it is built with the `serde` feature.
#[cfg_attr(not(feature = "serde"), allow(dead_code))]
pub(crate) mod process;
pub(crate) mod shm;
// SIGINT handling for pools and the fork server, built with the `pool` feature.
#[cfg_attr(not(feature = "pool"), allow(dead_code))]
pub(crate) mod signal;

/// The size of a memory page, `sysconf(_SC_PAGESIZE)`.
///
/// # References
/// - [sysconf(3)](https://man7.org/linux/man-pages/man3/sysconf.3.html)
pub(crate) fn page_size() -> usize {
    rustix::param::page_size()
}

/// Eight random bytes from the kernel (`getrandom(2)`), retried on EINTR.
pub(crate) fn random_u64() -> std::io::Result<u64> {
    let mut buf = [0u8; 8];
    let mut filled = 0;
    while filled < buf.len() {
        match rustix::rand::getrandom(&mut buf[filled..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => filled += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(u64::from_ne_bytes(buf))
}
