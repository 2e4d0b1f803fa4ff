//! Processes: identity, fork/clone, reaping through pidfds, signals, the
//! parent-death signal, exit hooks.
//!
//! # References
//! - [fork(2)](https://man7.org/linux/man-pages/man2/fork.2.html)
//! - [clone(2)](https://man7.org/linux/man-pages/man2/clone.2.html), `CLONE_PARENT`
//! - [pidfd_open(2)](https://man7.org/linux/man-pages/man2/pidfd_open.2.html)
//! - [waitid(2)](https://man7.org/linux/man-pages/man2/waitid.2.html), `P_PIDFD`
//! - [prctl(2)](https://man7.org/linux/man-pages/man2/prctl.2.html), `PR_SET_PDEATHSIG`

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Instant;

use rustix::event::{PollFd, PollFlags, poll};
use rustix::io::Errno;
use rustix::process::{Pid, PidfdFlags, Signal, WaitId, WaitIdOptions, pidfd_open, pidfd_send_signal, waitid};

/// This process's id, `getpid(2)`.
pub(crate) fn pid() -> u32 {
    rustix::process::getpid().as_raw_nonzero().get() as u32
}

/// The effective user id, `geteuid(2)`.
pub(crate) fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// The parent's pid, `getppid(2)` (`None` when the parent is outside our
/// pid namespace).
pub(crate) fn ppid() -> Option<u32> {
    rustix::process::getppid().map(|p| p.as_raw_nonzero().get() as u32)
}

/// The CPU the calling thread runs on, plus one; 0 when unknown
/// (`sched_getcpu(3)`: glibc reads it from the thread's rseq area, a few
/// nanoseconds, where rustix makes the `getcpu` system call).
///
/// # References
/// - <https://man7.org/linux/man-pages/man3/sched_getcpu.3.html>
#[inline]
pub(crate) fn current_cpu() -> u32 {
    // SAFETY: sched_getcpu takes no arguments and touches no memory of ours.
    let cpu = unsafe { libc::sched_getcpu() };
    u32::try_from(cpu).map_or(0, |c| c.wrapping_add(1))
}

/// Whether the calling thread is the process's main thread (`gettid() == getpid()`).
pub(crate) fn is_main_thread() -> bool {
    rustix::thread::gettid() == rustix::process::getpid()
}

/// How many threads this process has (entries of `/proc/self/task`).
pub(crate) fn thread_count() -> io::Result<usize> {
    Ok(std::fs::read_dir("/proc/self/task")?.count())
}

/// What a fork-like call returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Forked {
    /// In the parent: the child's pid.
    Parent(u32),
    /// In the child.
    Child,
}

/// Permission to fork. The checked kind forks only a single-threaded
/// process; the unchecked kind is made only by
/// `ProcessBuilder::allow_fork_with_threads`, an `unsafe fn` whose caller
/// took over the promise below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ForkPermit {
    /// Fork only if this process has exactly one thread.
    SingleThreaded,
    /// The caller promised that the child calls only async-signal-safe
    /// functions, or that no other thread holds any lock the child needs.
    CallerPromised,
}

fn check_threads(permit: ForkPermit) -> io::Result<()> {
    if permit == ForkPermit::CallerPromised {
        return Ok(());
    }
    let threads = thread_count().map_err(|e| io::Error::new(e.kind(), format!("cannot count threads: {e}")))?;
    if threads != 1 {
        return Err(io::Error::new(io::ErrorKind::WouldBlock, "refusing to fork a multi-threaded process"));
    }
    Ok(())
}

/// `fork(2)`, refused for a multi-threaded process unless `permit` says
/// the caller took responsibility. (With one thread the check is exact: no
/// other thread exists that could start one between check and fork.)
pub(crate) fn fork(permit: ForkPermit) -> io::Result<Forked> {
    check_threads(permit)?;
    // SAFETY: the process has a single thread (checked above), so no lock
    // can be held by a thread that does not exist in the child; or the
    // caller of the unsafe override promised the child needs none.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        p => Ok(Forked::Parent(p as u32)),
    }
}

/// In a forked child's only thread, right after the fork and before any
/// code of the child took `lock`: releases `lock` if a parent thread held
/// it at the fork (that thread does not exist here, so nothing would ever
/// release it) and replaces its value by `fresh` without reading or
/// dropping the old one (the holder may have been halfway through a
/// change; the old value is leaked in the child, never read).
pub(crate) fn reset_in_child<T>(lock: &parking_lot::Mutex<T>, fresh: T) {
    if lock.is_locked() {
        // SAFETY: by this function's contract we are the child's only thread and no code here took `lock`, so its
        // holder is a parent thread that does not exist in this process and whose guard will never be dropped: a
        // discarded guard, which force_unlock's contract allows.
        unsafe { lock.force_unlock(Default::default()) };
    }
    let mut g = lock.lock();
    let slot: *mut T = &mut *g;
    // SAFETY: `slot` is the locked, exclusively borrowed value; `write` stores `fresh` without reading or dropping
    // the old value, which may be half-written.
    unsafe { slot.write(fresh) };
}

/// `clone(CLONE_PARENT | SIGCHLD)` of a single-threaded process: like
/// `fork`, but the new process is a child of *our* parent. The fork server
/// uses it so that every process it starts is a direct child of the program
/// that asked for it, which then reaps it through a pidfd and reads its
/// exit status.
///
/// Unlike glibc's `fork`, this runs no `pthread_atfork` handlers and leaves
/// glibc's cached thread id of the child's main thread at the server's
/// value; both are harmless in a single-threaded server (no lock is held,
/// and the stale id is used consistently within the child).
pub(crate) fn clone_parent() -> io::Result<Forked> {
    check_threads(ForkPermit::SingleThreaded)?;
    let flags = (libc::CLONE_PARENT | libc::SIGCHLD) as libc::c_ulong;
    let r =
    // SAFETY: with a null stack and no CLONE_VM, clone behaves like fork: the child gets a copy-on-write copy of the
    // address space and resumes here on its own copy of our stack; the process is single-threaded (checked above), so
    // no lock is held by a thread missing in the child.
        unsafe { libc::syscall(libc::SYS_clone, flags, std::ptr::null_mut::<libc::c_void>(), 0usize, 0usize, 0usize) };
    match r {
        -1 => Err(io::Error::last_os_error()),
        // No atfork handlers ran in the child: the caller tells the layers
        // that keep per-process state (`owner/token.rs`).
        0 => Ok(Forked::Child),
        p => Ok(Forked::Parent(p as u32)),
    }
}

/// `_exit(2)`: ends the process now, running no exit handlers and no
/// destructors (a forked child must not run its parent's).
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: _exit has no preconditions and does not return.
    unsafe { libc::_exit(code) }
}

/// Asks the kernel to SIGKILL this process when its parent thread dies
/// (`PR_SET_PDEATHSIG`), then checks that the parent is still `expected`
/// (it may have died before the call; then we exit at once).
pub(crate) fn die_with_parent(expected: u32) -> io::Result<()> {
    rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
    if ppid() != Some(expected) {
        exit_now(137);
    }
    Ok(())
}

/// Registers `f` to run at normal process exit (`atexit(3)`).
pub(crate) fn at_exit(f: extern "C" fn()) -> io::Result<()> {
    // SAFETY: `f` is a plain extern "C" function with no arguments, valid
    // for the life of the program (it is a static function item).
    if unsafe { libc::atexit(f) } != 0 {
        return Err(io::Error::other("atexit failed"));
    }
    Ok(())
}

/// [`at_fork`] the first time it is called with `done` (a flag of the
/// caller's: one registration per handler pair).
pub(crate) fn at_fork_once(
    done: &'static std::sync::atomic::AtomicBool,
    parent: Option<extern "C" fn()>,
    child: extern "C" fn(),
) {
    if !done.swap(true, std::sync::atomic::Ordering::Relaxed) {
        let _ = at_fork(parent, child);
    }
}

/// [`at_fork_once`] with a child handler only.
pub(crate) fn at_fork_child_once(done: &'static std::sync::atomic::AtomicBool, child: extern "C" fn()) {
    at_fork_once(done, None, child);
}

/// Registers `child` to run in the child, and `parent` in the parent, after
/// every `fork(3)` made through libc (`pthread_atfork`).
pub(crate) fn at_fork(parent: Option<extern "C" fn()>, child: extern "C" fn()) -> io::Result<()> {
    let parent = parent.map(|f| f as unsafe extern "C" fn());
    // SAFETY: `parent` and `child` are static `extern "C" fn()`s valid for
    // the program's life; a null prepare (or parent) handler is allowed.
    let r = unsafe { libc::pthread_atfork(None, parent, Some(child)) };
    if r != 0 {
        return Err(io::Error::from_raw_os_error(r));
    }
    Ok(())
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RawExit {
    /// Exited with this code.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
}

/// A process descriptor of a child: signals and waits that cannot hit a
/// recycled pid.
#[derive(Debug)]
pub(crate) struct PidFd {
    fd: OwnedFd,
    pid: u32,
}

impl std::os::fd::AsFd for PidFd {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl PidFd {
    /// `pidfd_open(pid)`. Valid for our own unreaped children (a zombie
    /// keeps its pid until reaped, and only we reap it).
    pub(crate) fn open(pid: u32) -> io::Result<PidFd> {
        let p = Pid::from_raw(pid as i32).ok_or_else(|| io::Error::from_raw_os_error(libc::ESRCH))?;
        Ok(PidFd { fd: pidfd_open(p, PidfdFlags::empty())?, pid })
    }

    /// The child's pid.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// Reaps the child if it has exited (`waitid(P_PIDFD, WEXITED | WNOHANG)`).
    pub(crate) fn try_reap(&self) -> io::Result<Option<RawExit>> {
        self.reap(WaitIdOptions::EXITED | WaitIdOptions::NOHANG)
    }

    fn reap(&self, opts: WaitIdOptions) -> io::Result<Option<RawExit>> {
        loop {
            match waitid(WaitId::PidFd(self.fd.as_fd()), opts) {
                Ok(Some(st)) => {
                    if let Some(c) = st.exit_status() {
                        return Ok(Some(RawExit::Code(c)));
                    }
                    if let Some(s) = st.terminating_signal() {
                        return Ok(Some(RawExit::Signal(s)));
                    }
                    // Stopped/continued reports are not exits.
                    return Ok(None);
                }
                Ok(None) => return Ok(None),
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Waits until the child has exited (without reaping it) or `deadline`
    /// passes; `Ok(true)` if it has exited.
    pub(crate) fn wait_exit(&self, deadline: Option<Instant>) -> io::Result<bool> {
        loop {
            let timeout = match deadline {
                None => None,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    Some(rustix::time::Timespec {
                        tv_sec: left.as_secs() as i64,
                        tv_nsec: i64::from(left.subsec_nanos()),
                    })
                }
            };
            let mut fds = [PollFd::new(&self.fd, PollFlags::IN)];
            match poll(&mut fds, timeout.as_ref()) {
                Ok(0) => return Ok(false),
                Ok(_) => return Ok(true),
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Sends `signal` (`pidfd_send_signal`). `Ok(false)` if the child has
    /// already exited.
    pub(crate) fn signal(&self, signal: Signal) -> io::Result<bool> {
        match pidfd_send_signal(&self.fd, signal) {
            Ok(()) => Ok(true),
            Err(Errno::SRCH) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

/// Kills and reaps a child we could not open a pidfd for (out of
/// descriptors). Safe by pid: an unreaped child's pid cannot be reused.
pub(crate) fn kill_and_reap(pid: u32) {
    let Some(p) = Pid::from_raw(pid as i32) else { return };
    let _ = rustix::process::kill_process(p, Signal::KILL);
    loop {
        match rustix::process::waitpid(Some(p), rustix::process::WaitOptions::empty()) {
            Err(Errno::INTR) => continue,
            _ => return,
        }
    }
}

/// SIGTERM, for `terminate`.
pub(crate) const SIGTERM: Signal = Signal::TERM;
/// SIGINT, for `interrupt`.
pub(crate) const SIGINT: Signal = Signal::INT;
/// SIGKILL, for `kill`.
pub(crate) const SIGKILL: Signal = Signal::KILL;

/// Removes `key` from the environment if this process has one thread (so
/// that no other thread can read or write the environment during the call);
/// with more threads, or if they cannot be counted, leaves it. Returns
/// whether it removed it.
pub(crate) fn remove_env_if_single_threaded(key: &str) -> bool {
    if !thread_count().is_ok_and(|n| n == 1) {
        return false;
    }
    // SAFETY: this process has one thread (counted just above; only this thread could start another, and it does
    // not), so no other thread can read or write the environment during the call.
    unsafe { std::env::remove_var(key) };
    true
}
