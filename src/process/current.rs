//! Who we are, who our parent is, and the children we started.

use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::sys::process::{self as sysproc, PidFd, RawExit};

/// A process's identity as shmproc knows it.
///
/// # Examples
///
/// ```
/// let me = shmproc::current_process();
/// assert_eq!(me.pid(), std::process::id());
/// assert_eq!(me.name(), "MainProcess");
/// assert!(!me.is_daemon());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProcessInfo {
    pid: u32,
    name: String,
    daemon: bool,
}

impl ProcessInfo {
    pub(crate) fn new(pid: u32, name: String, daemon: bool) -> ProcessInfo {
        ProcessInfo { pid, name, daemon }
    }

    /// The process id.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shmproc::current_process().pid(), std::process::id());
    /// ```
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The name (`MainProcess` for a program's first process, `Process-N`
    /// or the builder's name for children).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shmproc::current_process().name(), "MainProcess");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the process is a daemon (killed with its parent, cannot have
    /// children).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!shmproc::current_process().is_daemon());
    /// ```
    pub fn is_daemon(&self) -> bool {
        self.daemon
    }
}

/// A child we started: shared by its `Process` handle and the registry.
#[derive(Debug)]
pub(crate) struct ChildState {
    pub(crate) name: String,
    pub(crate) daemon: bool,
    pidfd: PidFd,
    exit: Mutex<Option<RawExit>>,
}

impl std::os::fd::AsFd for ChildState {
    /// The child's pidfd: readable once it exited.
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.pidfd)
    }
}

#[cfg(feature = "async")]
impl crate::watch::AsyncFd for ChildState {
    fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.pidfd)
    }
}

impl ChildState {
    /// Tracks a child we just started; if that fails (no descriptor left),
    /// the child is killed and reaped, so nothing is left behind.
    pub(crate) fn new(pid: u32, name: String, daemon: bool) -> Result<Arc<ChildState>> {
        let pidfd = PidFd::open(pid).map_err(|e| {
            sysproc::kill_and_reap(pid);
            Error::os("pidfd_open", e)
        })?;
        Ok(Arc::new(ChildState { name, daemon, pidfd, exit: Mutex::new(None) }))
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pidfd.pid()
    }

    /// The exit status, reaping the child if it has exited.
    pub(crate) fn poll(&self) -> Result<Option<RawExit>> {
        let mut exit = self.exit.lock();
        if exit.is_none() {
            *exit = self.pidfd.try_reap().map_err(|e| Error::os("waitid", e))?;
        }
        Ok(*exit)
    }

    /// Waits for the exit until `deadline`; `None` if still running then.
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> Result<Option<RawExit>> {
        if let Some(e) = self.poll()? {
            return Ok(Some(e));
        }
        // Wait without the lock so other threads can poll meanwhile; the
        // reap itself happens under the lock in `poll`.
        let got = self.pidfd.wait_exit(deadline).map_err(|e| Error::os("poll(pidfd)", e))?;
        if got { self.poll() } else { Ok(None) }
    }

    /// Sends a signal unless the child is already reaped.
    pub(crate) fn signal(&self, sig: rustix::process::Signal) -> Result<()> {
        if self.exit.lock().is_some() {
            return Ok(());
        }
        self.pidfd.signal(sig).map(|_| ()).map_err(|e| Error::os("pidfd_send_signal", e))
    }
}

struct State {
    pid: u32,
    me: ProcessInfo,
    parent: Option<ProcessInfo>,
    children: Vec<Arc<ChildState>>,
    counter: u64,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

/// Whether `join_at_exit` is registered (inherited by forked children, as
/// `atexit` registrations are).
static AT_EXIT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// In a forked child, right after the fork (an atfork handler): the
/// process layer's process-wide state (this registry, the launcher thread,
/// the spawn lock, the fork server) goes without being read. Another thread
/// of the parent may have held one of their locks, mid-update, at the fork;
/// that thread does not exist here, so the lock would stay held forever.
extern "C" fn after_fork_in_child() {
    sysproc::reset_in_child(&STATE, None);
    super::start::reset_in_child();
    super::spawn::reset_in_child();
    super::forkserver::reset_in_child();
}

fn with_state<T>(f: impl FnOnce(&mut State) -> T) -> T {
    static REGISTERED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    sysproc::at_fork_child_once(&REGISTERED, after_fork_in_child);
    let pid = sysproc::pid();
    let mut g = STATE.lock();
    let fresh = g.as_ref().is_none_or(|s| s.pid != pid);
    if fresh {
        // First use, or a forked child whose fork ran no atfork handler:
        // the parent's children are not ours.
        *g = Some(State {
            pid,
            me: ProcessInfo { pid, name: "MainProcess".into(), daemon: false },
            parent: None,
            children: Vec::new(),
            counter: 0,
        });
    }
    f(g.as_mut().expect("invariant: initialised above"))
}

/// Records who this (child) process is.
pub(crate) fn set_current(name: String, daemon: bool, parent: ProcessInfo) {
    with_state(|s| {
        s.me = ProcessInfo { pid: s.pid, name, daemon };
        s.parent = Some(parent);
    });
}

/// A name for the next child: `Process-1`, `Process-2`, ...
pub(crate) fn next_name() -> String {
    with_state(|s| {
        s.counter += 1;
        format!("Process-{}", s.counter)
    })
}

/// Refuses to start a child from a daemon.
pub(crate) fn check_can_start() -> Result<()> {
    if with_state(|s| s.me.daemon) {
        return Err(Error::DaemonChild);
    }
    if std::env::var_os(crate::process::loader::CHILD_VAR).is_some() {
        return Err(Error::InitMissing);
    }
    Ok(())
}

/// Adds a child to the registry (and reaps finished ones).
pub(crate) fn register(child: Arc<ChildState>) {
    let first = with_state(|s| {
        s.children.retain(|c| matches!(c.poll(), Ok(None)));
        s.children.push(child);
        !AT_EXIT.swap(true, std::sync::atomic::Ordering::Relaxed)
    });
    if first {
        let _ = sysproc::at_exit(join_at_exit);
    }
}

/// Removes a child from the registry (its handle was closed): the
/// registry's reference to its pidfd goes too.
pub(crate) fn unregister(child: &Arc<ChildState>) {
    with_state(|s| s.children.retain(|c| !Arc::ptr_eq(c, child)));
}

/// At normal exit, as Python does: daemons are terminated, other children
/// are waited for.
extern "C" fn join_at_exit() {
    join_children_at_exit();
}

/// What Python does at the end of any process (`util._exit_function`):
/// terminate daemon children (SIGTERM, then SIGKILL after a second) and wait
/// for the others. Runs from the exit handler of a program and at the end
/// of every child's task.
pub(crate) fn join_children_at_exit() {
    let children = {
        let g = STATE.lock();
        match g.as_ref() {
            Some(s) if s.pid == sysproc::pid() => s.children.clone(),
            _ => return,
        }
    };
    for c in children.iter().filter(|c| c.daemon) {
        let _ = c.signal(sysproc::SIGTERM);
    }
    for c in &children {
        if c.daemon {
            let grace = Instant::now() + std::time::Duration::from_secs(1);
            if matches!(c.wait(Some(grace)), Ok(None)) {
                let _ = c.signal(sysproc::SIGKILL);
                let _ = c.wait(None);
            }
        } else {
            let _ = c.wait(None);
        }
    }
}

/// This process as shmproc knows it (Python: `multiprocessing.current_process()`).
///
/// # Examples
///
/// ```
/// println!("{} has pid {}", shmproc::current_process().name(), std::process::id());
/// ```
pub fn current_process() -> ProcessInfo {
    with_state(|s| s.me.clone())
}

/// The process that started this one, if it was started by shmproc
/// (Python: `multiprocessing.parent_process()`).
///
/// # Examples
///
/// ```
/// assert!(shmproc::parent_process().is_none()); // a program's first process
/// ```
pub fn parent_process() -> Option<ProcessInfo> {
    with_state(|s| s.parent.clone())
}

/// The children of this process that are still running; finished ones are
/// reaped as a side effect, so none stays a zombie (Python:
/// `multiprocessing.active_children()`).
///
/// # Examples
///
/// ```
/// assert!(shmproc::active_children().is_empty());
/// ```
pub fn active_children() -> Vec<ProcessInfo> {
    with_state(|s| {
        s.children.retain(|c| matches!(c.poll(), Ok(None)));
        s.children.iter().map(|c| ProcessInfo { pid: c.pid(), name: c.name.clone(), daemon: c.daemon }).collect()
    })
}

/// The number of CPUs this process may use (Python: `os.cpu_count()`,
/// restricted to the affinity mask like `os.process_cpu_count()`).
///
/// # Examples
///
/// ```
/// assert!(shmproc::cpu_count() >= 1);
/// ```
pub fn cpu_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
