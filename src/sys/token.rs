//! Liveness tokens: "is the process that made this object alive?", answered
//! only by the kernel.
//!
//! Each process that needs one owns a token file `shmproc@<pid>.<nonce>` in
//! `/dev/shm` and holds a POSIX record lock (`fcntl(F_SETLK, F_WRLCK)`) on it
//! for as long as it lives. The kernel drops that lock when the process dies
//! (by any signal) or execs (the fd is close-on-exec). Anyone can ask with
//! `F_GETLK`: a conflicting lock means alive; no lock, or no file, means
//! dead. Unlike `kill(pid, 0)`, this is not fooled by pid reuse or by pid
//! namespaces (the nonce makes every token unique; the lock belongs to the
//! process, whatever pid it has where).
//!
//! Why POSIX record locks and not `flock`/OFD locks: record locks belong to
//! the process and are not inherited by `fork`, so a forked child never keeps
//! its dead parent looking alive. Their one trap (closing *any* fd of the
//! file drops the process's locks) is avoided by never opening our own
//! token: [`liveness`] answers for ourselves without touching the file.
//!
//! The file is created unnamed (`O_TMPFILE`), locked, and only then linked
//! under its name, so nobody can ever see a live process's token unlocked.
//!
//! # References
//! - [fcntl(2)](https://man7.org/linux/man-pages/man2/fcntl.2.html), "Advisory record locking"
//! - iceoryx2's process-state monitor uses a lock file the same way.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use parking_lot::Mutex;
use rustix::fs::FlockOperation;
use rustix::io::Errno;

use super::shm::Dir;

/// Prefix of token file names.
pub(crate) const TOKEN_PREFIX: &str = "shmproc@";

/// Identifies one process for its whole life, across pid reuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Token {
    /// The pid at creation (for display and file names).
    pub(crate) pid: u32,
    /// A random 64-bit number that makes the token unique.
    pub(crate) nonce: u64,
}

impl Token {
    /// The token's file name in `/dev/shm`.
    pub(crate) fn file_name(&self) -> String {
        format!("{TOKEN_PREFIX}{}.{:016x}", self.pid, self.nonce)
    }

    /// Parses a token file name.
    pub(crate) fn parse(name: &str) -> Option<Token> {
        let rest = name.strip_prefix(TOKEN_PREFIX)?;
        let (pid, nonce) = rest.split_once('.')?;
        if nonce.len() != 16 {
            return None;
        }
        Some(Token { pid: pid.parse().ok()?, nonce: u64::from_str_radix(nonce, 16).ok()? })
    }
}

/// The answer of [`liveness`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Liveness {
    /// The process holds its token lock (or we could not tell: we never
    /// guess "dead").
    Alive,
    /// The kernel confirms no process holds the token.
    Dead,
}

struct Held {
    token: Token,
    _fd: OwnedFd,
}

static CURRENT: Mutex<Option<Held>> = Mutex::new(None);

fn random_u64() -> io::Result<u64> {
    let mut buf = [0u8; 8];
    let mut filled = 0;
    while filled < buf.len() {
        match rustix::rand::getrandom(&mut buf[filled..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => filled += n,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(u64::from_ne_bytes(buf))
}

/// This process's token, made on first use (and again in a forked child,
/// which must not pass for its parent).
pub(crate) fn current() -> io::Result<Token> {
    let pid = super::process::pid();
    let mut slot = CURRENT.lock();
    if let Some(h) = slot.as_ref()
        && h.token.pid == pid
    {
        return Ok(h.token);
    }
    // First use, or we are a forked child: the parent's fd is dropped below
    // (closing it releases nothing: record locks are not inherited).
    let dir = Dir::default_dir()?;
    let fd = dir.create_unnamed()?;
    rustix::fs::fcntl_lock(&fd, FlockOperation::NonBlockingLockExclusive)?;
    let token = loop {
        let token = Token { pid, nonce: random_u64()? };
        match dir.link(fd.as_fd(), &token.file_name()) {
            Ok(()) => break token,
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => continue,
            Err(e) => return Err(e),
        }
    };
    *slot = Some(Held { token, _fd: fd });
    drop(slot);
    // Tokens of dead processes are zero-byte files; tidy a bounded number
    // so that short-lived processes do not pile them up.
    let _ = sweep_dead(dir, 64);
    Ok(token)
}

/// Whether the process that owns `token` is alive. Never says `Dead`
/// unless the kernel confirms it.
pub(crate) fn liveness(token: Token) -> Liveness {
    if let Some(h) = CURRENT.lock().as_ref()
        && h.token == token
        && h.token.pid == super::process::pid()
    {
        // Never open our own token: closing that fd would drop our lock.
        return Liveness::Alive;
    }
    let Ok(dir) = Dir::default_dir() else {
        return Liveness::Alive;
    };
    probe(dir, &token.file_name())
}

fn probe(dir: &Dir, name: &str) -> Liveness {
    let fd = match dir.open_file(name, false) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Liveness::Dead,
        Err(_) => return Liveness::Alive,
    };
    // A non-regular file under a token name is not a token: not ours to
    // judge, so never "dead".
    if !super::shm::fstat(std::os::fd::AsFd::as_fd(&fd)).is_ok_and(|i| i.regular) {
        return Liveness::Alive;
    }
    match lock_holder(&fd) {
        Ok(None) => Liveness::Dead,
        _ => Liveness::Alive,
    }
}

/// `fcntl(F_GETLK)` for a whole-file write lock: `Some(pid)` of a process
/// holding a conflicting lock, `None` if there is none.
fn lock_holder(fd: &OwnedFd) -> io::Result<Option<i32>> {
    let mut fl = libc::flock {
        l_type: libc::F_WRLCK as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    // SAFETY: `fd` is open for the duration of the call and `fl` is a valid,
    // exclusively borrowed `struct flock` that F_GETLK writes into.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETLK, &mut fl as *mut libc::flock) };
    if r == -1 {
        return Err(io::Error::last_os_error());
    }
    if fl.l_type == libc::F_UNLCK as libc::c_short { Ok(None) } else { Ok(Some(fl.l_pid)) }
}

/// Removes up to `max` token files whose owners are confirmed dead; returns
/// how many were removed. Token names are never reused, so unlinking a name
/// after confirming death cannot hit a live token.
pub(crate) fn sweep_dead(dir: &Dir, max: usize) -> io::Result<usize> {
    let mut removed = 0;
    for name in dir.list(TOKEN_PREFIX)? {
        if removed >= max {
            break;
        }
        let Some(token) = Token::parse(&name) else { continue };
        if liveness(token) == Liveness::Dead && dir.unlink(&name).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_names_round_trip() {
        let t = Token { pid: 42, nonce: 0xdead_beef_0000_0001 };
        assert_eq!(Token::parse(&t.file_name()), Some(t));
        assert_eq!(Token::parse("shmproc@x.0000000000000001"), None);
        assert_eq!(Token::parse("shmproc@1.01"), None);
        assert_eq!(Token::parse("other"), None);
    }

    #[test]
    fn own_token_is_alive_and_a_missing_one_dead() {
        let me = current().expect("token");
        assert_eq!(current().expect("token"), me, "stable within a process");
        assert_eq!(liveness(me), Liveness::Alive);
        let ghost = Token { pid: me.pid, nonce: me.nonce ^ 1 };
        assert_eq!(liveness(ghost), Liveness::Dead);
    }
}
