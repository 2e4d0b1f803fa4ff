//! The fork server: a single-threaded process, started once by
//! re-execution, that forks each new child on request.
//!
//! It talks to its parent over an inherited socketpair (never a socket in
//! the file system, so no other user can reach it: CVE-2022-42919 cannot
//! happen). A request is one byte carrying descriptors (`SCM_RIGHTS`): the
//! child's channel, then the argument's descriptors. The server clones with
//! `CLONE_PARENT`, so the child is a direct child of the requesting program,
//! and answers with the child's pid (or a negative errno) as 8 bytes.

use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::process::loader::SERVER_VAR;
use crate::sys::process::{self as sysproc, Forked, PidFd};
use crate::sys::shm as sysshm;

/// `SCM_MAX_FD`: the most descriptors one message can carry.
const MAX_FDS: usize = 253;

/// How long dropping a private server waits for it to exit on its own
/// (giving back the arena references it inherited) before killing it.
const SERVER_EXIT: std::time::Duration = std::time::Duration::from_millis(500);

struct Server {
    owner: u32,
    sock: UnixStream,
    process: PidFd,
}

static SERVER: Mutex<Option<Server>> = Mutex::new(None);

/// In a forked child (see `current::after_fork_in_child`): the fork server
/// is the parent's; its handle is forgotten here, never used or dropped.
pub(super) fn reset_in_child() {
    sysproc::reset_in_child(&SERVER, None);
}

fn launch() -> Result<Server> {
    let (ours, theirs) = UnixStream::pair().map_err(|e| Error::os("socketpair", e))?;
    let me = sysproc::pid();
    let child =
        super::spawn::reexec(SERVER_VAR, &[theirs.as_fd()], |n| format!("{}:{me}", n[0]), "spawn (fork server)")?;
    drop(theirs);
    let process = PidFd::open(child.id()).map_err(|e| {
        sysproc::kill_and_reap(child.id());
        Error::os("pidfd_open", e)
    })?;
    Ok(Server { owner: sysproc::pid(), sock: ours, process })
}

fn request(server: &mut Server, channel: BorrowedFd<'_>, fds: &[OwnedFd]) -> std::io::Result<i64> {
    let mut all: Vec<BorrowedFd<'_>> = vec![channel];
    all.extend(fds.iter().map(|f| f.as_fd()));
    sysshm::send_fds(server.sock.as_fd(), &all)?;
    let mut reply = [0u8; 8];
    server.sock.read_exact(&mut reply)?;
    Ok(i64::from_le_bytes(reply))
}

/// Asks the fork server (started on first use, restarted if it died) for
/// a child that runs the task in `channel`; returns its pid.
pub(crate) fn start(channel: BorrowedFd<'_>, fds: &[OwnedFd]) -> Result<u32> {
    if fds.len() + 1 > MAX_FDS {
        return Err(Error::InvalidArgument { what: "too many shared handles in one argument (at most 252)" });
    }
    let mut g = SERVER.lock();
    for attempt in 0..2 {
        let alive = g.as_ref().is_some_and(|s| s.owner == sysproc::pid() && matches!(s.process.try_reap(), Ok(None)));
        if !alive {
            *g = Some(launch()?);
        }
        let server = g.as_mut().expect("invariant: launched above");
        match request(server, channel, fds) {
            Ok(pid) if pid > 0 => return Ok(pid as u32),
            Ok(neg) => {
                return Err(Error::os("fork server: clone", std::io::Error::from_raw_os_error((-neg) as i32)));
            }
            // The server died or closed: start a new one once.
            Err(e) if attempt == 0 => {
                let _ = e;
                if let Some(old) = g.take() {
                    let _ = old.process.signal(sysproc::SIGKILL);
                    let _ = old.process.wait_exit(None);
                    let _ = old.process.try_reap();
                }
            }
            Err(e) => return Err(Error::os("fork server request", e)),
        }
    }
    Err(Error::os("fork server", std::io::Error::other("the fork server keeps dying")))
}

/// The server's main loop (in the re-executed process, from the loader
/// hook, before `main`). Never returns.
pub(crate) fn serve(value: &str) -> ! {
    let parsed =
        value.split_once(':').and_then(|(fd, ppid)| Some((fd.parse::<i32>().ok()?, ppid.parse::<u32>().ok()?)));
    let Some((fd, parent)) = parsed else { sysproc::exit_now(2) };
    let Ok(sock) = sysshm::own_inherited(fd) else { sysproc::exit_now(2) };
    if sysproc::die_with_parent(parent).is_err() {
        sysproc::exit_now(2);
    }
    serve_on(UnixStream::from(sock))
}

/// A private fork server, forked from this process (not re-executed): its
/// children are copies of this process as it was when the server was made.
/// A pool under the fork start method uses one, so that it can start (and
/// replace) workers later, when it has threads of its own and this process
/// may no longer fork.
///
/// The server is single-threaded (forked while this process had one
/// thread), ignores SIGINT (a Ctrl-C is its owner's to handle), dies with
/// this process, exits when its socket is closed (drop), and is killed and
/// reaped by drop.
#[derive(Debug)]
pub(crate) struct PrivateServer {
    inner: Mutex<Option<Server>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("pid", &self.process.pid()).finish_non_exhaustive()
    }
}

impl PrivateServer {
    #[cfg(feature = "pool")]
    /// Forks the server.
    ///
    /// # Errors
    /// [`Error::ForkUnsafe`] if this process has several threads;
    /// [`Error::Os`].
    pub(crate) fn fork() -> Result<PrivateServer> {
        let threads = sysproc::thread_count().map_err(|e| Error::os("read /proc/self/task", e))?;
        if threads != 1 {
            return Err(Error::ForkUnsafe { threads });
        }
        let (ours, theirs) = UnixStream::pair().map_err(|e| Error::os("socketpair", e))?;
        {
            let _ = std::io::stdout().flush();
            let _ = std::io::stderr().flush();
        }
        let me = sysproc::pid();
        match super::fork(sysproc::ForkPermit::SingleThreaded).map_err(|e| Error::os("fork", e))? {
            Forked::Child => {
                drop(ours);
                if crate::sys::signal::ignore_sigint().is_err() || sysproc::die_with_parent(me).is_err() {
                    sysproc::exit_now(2);
                }
                serve_on(theirs)
            }
            Forked::Parent(pid) => {
                drop(theirs);
                let process = PidFd::open(pid).map_err(|e| {
                    sysproc::kill_and_reap(pid);
                    Error::os("pidfd_open", e)
                })?;
                Ok(PrivateServer { inner: Mutex::new(Some(Server { owner: me, sock: ours, process })) })
            }
        }
    }

    /// Starts a child running the task in `channel`; returns its pid.
    ///
    /// # Errors
    /// [`Error::Os`], also when the server died (it is not restarted: it
    /// was a copy of this process at a moment that is gone).
    pub(crate) fn start(&self, channel: BorrowedFd<'_>, fds: &[OwnedFd]) -> Result<u32> {
        if fds.len() + 1 > MAX_FDS {
            return Err(Error::InvalidArgument { what: "too many shared handles in one argument (at most 252)" });
        }
        let mut g = self.inner.lock();
        let Some(server) = g.as_mut().filter(|s| s.owner == sysproc::pid()) else {
            return Err(Error::os("private fork server", std::io::Error::other("the server is gone")));
        };
        match request(server, channel, fds) {
            Ok(pid) if pid > 0 => Ok(pid as u32),
            Ok(neg) => Err(Error::os("fork server: clone", std::io::Error::from_raw_os_error((-neg) as i32))),
            Err(e) => Err(Error::os("private fork server request", e)),
        }
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        if let Some(s) = self.inner.get_mut().take()
            && s.owner == sysproc::pid()
        {
            // On end of file the server gives back the references to
            // arena cells that its copy of this process held, and exits;
            // one that does not within a moment (stopped, say) is killed.
            drop(s.sock);
            let deadline = std::time::Instant::now() + SERVER_EXIT;
            if !s.process.wait_exit(Some(deadline)).unwrap_or(false) {
                let _ = s.process.signal(sysproc::SIGKILL);
                let _ = s.process.wait_exit(None);
            }
            let _ = s.process.try_reap();
        }
    }
}

/// Serves start requests on `sock` until it is closed. Never returns.
fn serve_on(mut sock: UnixStream) -> ! {
    loop {
        let mut fds = match sysshm::recv_fds(sock.as_fd(), MAX_FDS) {
            Ok(f) if !f.is_empty() => f,
            // EOF: the parent closed its end or died. The cells of shared
            // arenas this copy of the parent held can be reused.
            _ => {
                crate::shm::heap::release_all();
                sysproc::exit_now(0)
            }
        };
        let channel = fds.remove(0);
        let reply: i64 = match super::clone_parent() {
            Ok(Forked::Child) => {
                drop(sock);
                super::bootstrap::run_child(channel, fds)
            }
            Ok(Forked::Parent(pid)) => i64::from(pid),
            Err(e) => -i64::from(e.raw_os_error().unwrap_or(libc::EIO)),
        };
        drop((channel, fds));
        if sock.write_all(&reply.to_le_bytes()).is_err() {
            sysproc::exit_now(0);
        }
    }
}
