//! What a child process does: find its task, run it, write the outcome,
//! exit. Shared by the three start methods.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::panic::{AssertUnwindSafe, catch_unwind};

use serde::{Deserialize, Serialize};

use crate::codec;
use crate::error::{Error, Result};
use crate::process::channel::{self, Channel};
use crate::process::current::{self, ProcessInfo};
use crate::process::task::TaskFn;
use crate::shm::fnref::FnRef;
use crate::shm::handoff;
use crate::sys::process as sysproc;

/// What the parent tells a re-executed or fork-server child.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct TaskSpec {
    pub(crate) trampoline: FnRef,
    pub(crate) function: FnRef,
    pub(crate) name: String,
    pub(crate) daemon: bool,
    pub(crate) parent_pid: u32,
    pub(crate) parent_name: String,
    /// The method this child was started with: its own default start
    /// method, so its children start the same way.
    pub(crate) start_method: crate::process::start::StartMethod,
    pub(crate) args: Vec<u8>,
    /// The task's encoded captures (empty unless it is a `task!`).
    pub(crate) captures: Vec<u8>,
    /// Whether the last descriptor passed is the child's end of the
    /// result socket (see `channel.rs`).
    pub(crate) result_socket: bool,
}

thread_local! {
    /// The descriptors the result's encoding collected, sent by
    /// [`finish_and_exit`] before it writes the outcome.
    static RESULT_FDS: std::cell::Cell<Vec<OwnedFd>> = const { std::cell::Cell::new(Vec::new()) };
}

/// A re-executed child's end of the result socket.
static RESULT_SOCKET: std::sync::OnceLock<OwnedFd> = std::sync::OnceLock::new();

/// Encodes a child's result, collecting the descriptors it holds (sent
/// beside it by [`finish_and_exit`]).
pub(crate) fn encode_result<R: Serialize>(r: &R) -> Result<Vec<u8>> {
    // What the encoding took (a typed channel's in-flight handles) is the
    // parent's to take over: nothing is given back here.
    let (bytes, fds, _taken) = handoff::collecting(|| codec::encode(r));
    let bytes = bytes?;
    RESULT_FDS.with(|c| c.set(fds));
    Ok(bytes)
}

/// What a trampoline receives in the child.
#[derive(Debug)]
pub(crate) struct Invocation {
    function: FnRef,
    captures: Vec<u8>,
    args: Vec<u8>,
    fds: Vec<OwnedFd>,
}

/// The non-generic signature every trampoline has, so the child can name
/// it without knowing `A` and `R`.
pub(crate) type Trampoline = fn(Invocation) -> Result<Vec<u8>>;

/// Makes the user's task again (its function and captures), decodes `A`,
/// calls the task, encodes `R`. One is instantiated per `(F, A, R)` in the
/// parent; the child finds it by offset.
pub(crate) fn trampoline<F, A, R>(inv: Invocation) -> Result<Vec<u8>>
where
    F: TaskFn<A, R>,
    A: serde::de::DeserializeOwned + 'static,
    R: Serialize + 'static,
{
    let f = F::__load(crate::process::task::TOKEN, inv.function.to_words(), &inv.captures)?;
    let arg: A = handoff::with_fds(inv.fds, || codec::decode(&inv.args))?;
    encode_result(&f.__call(arg))
}

/// Called by the loader hook (or `init`) when this process was started to
/// play a role. Never returns if it takes one.
pub(crate) fn on_load(child: Option<String>, server: Option<String>) {
    if let Some(s) = server {
        super::forkserver::serve(&s);
    }
    if let Some(c) = child {
        match super::spawn::parse_child_var(&c) {
            Ok((chan, fds)) => run_child(chan, fds),
            Err(e) => {
                eprintln!("shmproc: cannot start child task: {e}");
                sysproc::exit_now(121);
            }
        }
    }
}

/// Runs the task in `channel` and exits (spawn and fork-server children).
pub(crate) fn run_child(channel: OwnedFd, fds: Vec<OwnedFd>) -> ! {
    let ch = match Channel::from_fd(channel) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("shmproc: cannot open the task channel: {e}");
            sysproc::exit_now(120);
        }
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| prepare_and_run(&ch, fds)));
    finish_and_exit(&ch, outcome)
}

fn prepare_and_run(ch: &Channel, mut fds: Vec<OwnedFd>) -> Result<Vec<u8>> {
    let spec: TaskSpec = codec::decode(&ch.task()?)?;
    if spec.result_socket
        && let Some(sock) = fds.pop()
    {
        let _ = RESULT_SOCKET.set(sock);
    }
    let parent = ProcessInfo::new(spec.parent_pid, spec.parent_name.clone(), false);
    current::set_current(spec.name.clone(), spec.daemon, parent);
    crate::process::start::inherit_start_method(spec.start_method);
    name_panics(&spec.name);
    sysproc::die_with_parent(spec.parent_pid).map_err(|e| Error::os("prctl(PR_SET_PDEATHSIG)", e))?;
    crate::sys::failpoint::hit("process.child.before_running");
    // From here on the child may take over what its argument carries (the
    // parent gives nothing back once it sees this).
    ch.mark_running();
    let tramp: Trampoline = spec.trampoline.resolve().map_err(|e| Error::os("resolve trampoline", e))?;
    tramp(Invocation { function: spec.function, captures: spec.captures, args: spec.args, fds })
}

/// Writes the outcome of a task to `ch`, flushes stdio and exits: 0 on
/// success, 1 on a panic or task error (Python's exit code for an
/// exception). Runs no exit handlers: a forked child must not run its
/// parent's.
pub(crate) fn finish_and_exit(ch: &Channel, outcome: std::thread::Result<Result<Vec<u8>>>) -> ! {
    let fds = RESULT_FDS.with(std::cell::Cell::take);
    let outcome = match outcome {
        Ok(Ok(bytes)) if !fds.is_empty() => Ok(send_result_fds(ch, &fds).map(|()| bytes)),
        other => other,
    };
    drop(fds);
    let code = match outcome {
        Ok(Ok(bytes)) => {
            ch.finish(channel::OK, &bytes);
            0
        }
        Ok(Err(e)) => {
            ch.finish(channel::TASK_ERROR, e.to_string().as_bytes());
            1
        }
        Err(payload) => {
            ch.finish(channel::PANIC, crate::error::panic_message(payload.as_ref()).as_bytes());
            1
        }
    };
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    current::join_children_at_exit();
    // Cells of shared arenas this child held can be reused at once.
    crate::shm::heap::release_all();
    sysproc::exit_now(code)
}

/// Sends a result's descriptors to the parent (before the outcome).
fn send_result_fds(ch: &Channel, fds: &[OwnedFd]) -> Result<()> {
    use std::os::fd::AsFd;
    let sock = ch.child_end().or_else(|| RESULT_SOCKET.get().map(AsFd::as_fd));
    let sock = sock.ok_or_else(|| Error::Unsupported { what: "descriptors in a result: no result socket" })?;
    let borrowed: Vec<_> = fds.iter().map(AsFd::as_fd).collect();
    let count = (fds.len() as u32).to_le_bytes();
    crate::sys::parcel::send(sock, &count, &borrowed).map_err(|e| Error::os("send the result's descriptors", e))
}

/// Makes a panic in a child say which process it was, as Python prints
/// `Process Process-N:` above a child's traceback (the task runs before
/// `main`, on an unnamed thread).
pub(crate) fn name_panics(name: &str) {
    let header = format!("Process {name} (pid {}):", sysproc::pid());
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        eprintln!("{header}");
        previous(info);
    }));
}

/// Lets a re-executed child take its role. Call it first thing in `main`.
///
/// shmproc also runs this check from a loader hook before `main`, so
/// children start correctly even in binaries that do not call `init`
/// (test harnesses); calling it is still the documented contract, and
/// costs two environment lookups in an ordinary start.
///
/// # Examples
///
/// ```
/// fn main() {
///     shmproc::init();
///     // ... the program ...
/// }
/// # main();
/// ```
///
/// Python: the `if __name__ == "__main__":` guard.
pub fn init() {
    let child = std::env::var(crate::process::loader::CHILD_VAR).ok();
    let server = std::env::var(crate::process::loader::SERVER_VAR).ok();
    if child.is_some() || server.is_some() {
        on_load(child, server);
    }
}
