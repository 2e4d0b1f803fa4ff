//! The crate's error types.
//!
//! Two tiers, written by hand: expected outcomes of non-blocking and timed
//! calls are small generic types that give a value back (they arrive with
//! the queues), and everything else is one [`Error`] enum. Every variant
//! has a message that says what happened and, where it helps, what to do
//! about it.

use std::fmt;
use std::io;

/// The result type of shmproc operations.
///
/// # Examples
///
/// ```
/// fn open_jobs() -> shmproc::Result<shmproc::Segment> {
///     shmproc::Segment::open("no-such-segment-for-this-doc")
/// }
/// assert!(open_jobs().is_err());
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in shmproc, apart from the expected outcomes
/// of non-blocking calls.
///
/// `#[non_exhaustive]`: later capabilities add variants.
///
/// # Examples
///
/// ```
/// use shmproc::{Error, Segment};
///
/// match Segment::open("a/b") {
///     Err(Error::InvalidName { reason, .. }) => println!("bad name: {reason}"),
///     other => panic!("unexpected: {other:?}"),
/// }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A system call failed; `op` names it.
    Os {
        /// The system call (or short sequence of them) that failed.
        op: &'static str,
        /// What the OS said.
        source: io::Error,
    },
    /// A name was refused before any system call was made.
    InvalidName {
        /// The name as given.
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// No object of that name exists.
    NotFound {
        /// The name as given.
        name: String,
    },
    /// An object of that name exists already (exclusive create).
    Exists {
        /// The name as given.
        name: String,
    },
    /// The object belongs to another user, or the OS refused access.
    PermissionDenied {
        /// The name as given.
        name: String,
        /// Why access was refused.
        reason: &'static str,
    },
    /// The shared-memory file system has no room for the object.
    NoSpace {
        /// How many bytes were asked for.
        requested: u64,
    },
    /// The object is not a shmproc object, or its bytes make no sense.
    Corrupt {
        /// What was wrong.
        what: &'static str,
    },
    /// The object was written by another shmproc format version or ABI.
    VersionMismatch {
        /// Our format version.
        expected: u32,
        /// The one found in the header.
        found: u32,
    },
    /// The object holds another kind of shmproc object.
    KindMismatch {
        /// The kind we asked for.
        expected: u32,
        /// The kind found in the header.
        found: u32,
    },
    /// The object holds another type or layout (its layout hash differs).
    LayoutMismatch {
        /// Our layout hash.
        expected: u64,
        /// The one found in the header.
        found: u64,
    },
    /// The object is smaller (or larger) than the caller asked for.
    SizeMismatch {
        /// The size the caller asked for.
        expected: u64,
        /// The object's size.
        found: u64,
    },
    /// The object's file is shorter than its header says: someone truncated it.
    Truncated {
        /// The length the header records.
        expected: u64,
        /// The file's length now.
        found: u64,
    },
    /// The object exists but its creator has not finished initializing it,
    /// and the wait for it ran out.
    NotReady,
    /// A deadline passed.
    Timeout,
    /// Cleanup was refused: the creator of the object is alive.
    StillAlive {
        /// The creator's process id, as recorded.
        pid: u32,
    },
    /// Another process is cleaning up this object right now.
    AlreadyBeingCleaned,
    /// An argument is out of range.
    InvalidArgument {
        /// What was wrong with it.
        what: &'static str,
    },
    /// The operation is not supported on this platform or file system.
    Unsupported {
        /// What is missing.
        what: &'static str,
    },
    /// A value could not be encoded or decoded.
    Codec {
        /// The codec's message.
        message: String,
    },
    /// A child process did not return a result: it panicked, exited with a
    /// non-zero code, was killed by a signal, or its task could not run.
    ProcessFailed {
        /// The child's pid.
        pid: u32,
        /// The child's name.
        name: String,
        /// What happened.
        failure: ProcessFailure,
    },
    /// The fork start method was refused: the parent has several threads,
    /// and a forked child could deadlock on a lock another thread held.
    ForkUnsafe {
        /// How many threads the parent has.
        threads: usize,
    },
    /// A daemon process tried to start a child (daemons cannot have children).
    DaemonChild,
    /// A re-executed child did not take its role: call `shmproc::init()`
    /// at the top of `main`.
    InitMissing,
    /// The previous holder of a lock died while holding it (the lock is now
    /// yours; see [`LockError::OwnerDied`](crate::LockError::OwnerDied)).
    OwnerDied,
    /// A lock is unrecoverable: a recovery guard was dropped without
    /// `mark_consistent`.
    NotRecoverable,
    /// A non-blocking call found the resource busy.
    WouldBlock,
    /// The calling thread already holds this lock.
    Deadlock,
    /// `release` of a lock this thread does not hold.
    NotOwner,
    /// A ring role handle lost its role: it was moved into a forked child,
    /// and before the child first used it the role was taken over by
    /// another process (which found the parent, its holder then, dead).
    RoleLost,
    /// A bounded semaphore was released more times than it was acquired.
    ReleasedTooMany,
    /// A barrier is broken: a party died (`dead` is its pid), timed out, or
    /// called `abort`. It stays broken until `reset`.
    Broken {
        /// The pid of a party that died, if that is why.
        dead: Option<u32>,
    },
    /// A barrier's action panicked in this party (the last to arrive); the
    /// barrier is now broken for the others (Python: the action's
    /// exception, raised in that party).
    BarrierActionPanicked {
        /// The panic message.
        message: String,
    },
    /// A queue or ring is full (non-blocking put).
    Full,
    /// A queue or ring is empty (non-blocking get).
    Empty,
    /// The queue or pipe end was closed with `close()`: no more items will
    /// be put (gets drain what is left first).
    Closed,
    /// Every process on the other side has exited or was killed (the OS
    /// confirmed it), and nothing is left to receive or room will never come.
    Disconnected,
    /// A send on a pipe whose other end is closed or whose holders died.
    BrokenPipe,
    /// The queue was shut down with `shutdown()`: no more items will be
    /// put (gets drain what is left first, unless the shutdown was
    /// immediate). Python: `queue.ShutDown`.
    ShutDown,
    /// A received message is longer than the room in the caller's buffer
    /// (Python: `BufferTooShort`).
    BufferTooShort {
        /// The message's length in bytes.
        len: usize,
    },
    /// A message is larger than this channel can carry.
    TooLarge {
        /// The message's length in bytes.
        len: usize,
        /// The largest length accepted.
        max: usize,
    },
    /// Items taken from a `JoinableQueue` by consumers that died before
    /// calling `task_done`: `join` returns instead of waiting forever.
    Abandoned {
        /// How many items were abandoned (since the queue was made).
        items: u64,
    },
    /// A pool task panicked in its worker (while decoding its argument,
    /// running, or encoding its result). The worker lives on.
    TaskPanicked {
        /// The worker's pid.
        pid: u32,
        /// The panic message (with its location).
        message: String,
    },
    /// The pool worker running the task died (killed by a signal, or it
    /// exited) before returning a result. A `Pool` replaces the worker.
    WorkerDied {
        /// The worker's pid.
        pid: u32,
        /// The signal that killed it, if one did.
        signal: Option<i32>,
        /// Its exit code, if it exited.
        code: Option<i32>,
    },
    /// A `ProcessPoolExecutor` is broken: a worker died abruptly, so every
    /// pending task failed and no new one is accepted (Python:
    /// `BrokenProcessPool`).
    BrokenPool {
        /// What broke it.
        reason: String,
    },
    /// A pool task ran longer than the pool's task timeout; its worker was
    /// killed (and replaced).
    TaskTimedOut {
        /// The worker's pid.
        pid: u32,
        /// The limit that was exceeded.
        limit: std::time::Duration,
    },
    /// The task was cancelled (`TaskFuture::cancel`, `shutdown` with
    /// `cancel_futures`, or the pool was terminated before it finished).
    Cancelled,
    /// The pool was closed or terminated: it accepts no more tasks (Python:
    /// `ValueError: Pool not running`).
    PoolClosed,
    /// A result callback of `Pool::apply_async_with` panicked; the message.
    CallbackPanicked {
        /// The panic message.
        message: String,
    },
    /// The input iterator of a pool call (`map`, `map_async`, `imap`,
    /// `starmap`, executor `map`, ...) panicked while it was read; the call
    /// fails with the panic message, what it had submitted is cancelled,
    /// and the pool stays usable (Python re-raises the iterator's
    /// exception).
    ///
    #[cfg_attr(feature = "pool", doc = "```")]
    #[cfg_attr(not(feature = "pool"), doc = "```ignore")]
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    /// let pool = shmproc::Pool::new(1)?;
    /// let input = (0..10u64).map(|i| if i == 3 { panic!("no item 3") } else { i });
    /// assert!(matches!(pool.map(square, input), Err(shmproc::Error::InputPanicked { .. })));
    /// assert_eq!(pool.map(square, 0..3)?, [0, 1, 4]); // the pool goes on
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    InputPanicked {
        /// The panic message.
        message: String,
    },
    /// The manager's server process is gone (killed, crashed, or shut
    /// down), or a new manager now runs under its name: this proxy's
    /// manager will never answer again (Python: `BrokenPipeError` /
    /// `EOFError` on every proxy call).
    ManagerDead,
    /// The manager's server refused or failed a request; the message says
    /// why (a type mismatch on a named object, a server-side update
    /// function that panicked, a malformed request).
    Remote {
        /// The server's explanation.
        message: String,
    },
    /// SIGINT (Ctrl-C) arrived while this call waited on a pool; the pools
    /// of this process were terminated (Python: `KeyboardInterrupt`).
    Interrupted,
}

/// Why a child process produced no result.
///
/// # Examples
///
/// ```
/// use shmproc::ProcessFailure;
/// let f = ProcessFailure::Signaled(9);
/// assert_eq!(f.to_string(), "killed by signal 9 (SIGKILL)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProcessFailure {
    /// The task panicked; the panic message.
    Panicked(String),
    /// The process exited with this non-zero code (or with 0 but no result).
    Exited(i32),
    /// The process was killed by this signal.
    Signaled(i32),
    /// The task could not run (its argument failed to decode, its result to
    /// encode, or the function could not be found in the child).
    TaskError(String),
}

/// The conventional name of a signal number, for messages.
pub(crate) fn signal_name(sig: i32) -> &'static str {
    match sig {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        _ => "signal",
    }
}

impl fmt::Display for ProcessFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessFailure::Panicked(m) => write!(f, "panicked: {m}"),
            ProcessFailure::Exited(c) => write!(f, "exited with code {c} without a result"),
            ProcessFailure::Signaled(s) => write!(f, "killed by signal {s} ({})", signal_name(*s)),
            ProcessFailure::TaskError(m) => write!(f, "task could not run: {m}"),
        }
    }
}

impl Error {
    /// Wraps an OS error, mapping the errno values that have a variant of
    /// their own.
    pub(crate) fn os(op: &'static str, source: io::Error) -> Self {
        if source.raw_os_error() == Some(libc::ENOSPC) {
            // The size is filled in by callers that know it.
            return Error::NoSpace { requested: 0 };
        }
        Error::Os { op, source }
    }

    /// Maps an errno from an operation on a named object.
    pub(crate) fn named(op: &'static str, name: &str, source: io::Error) -> Self {
        match source.raw_os_error() {
            Some(libc::ENOENT) => Error::NotFound { name: name.to_owned() },
            Some(libc::EEXIST) => Error::Exists { name: name.to_owned() },
            Some(libc::EACCES) | Some(libc::EPERM) => Error::PermissionDenied {
                name: name.to_owned(),
                reason: "the OS refused access (mode 0600 objects belong to their creator's user)",
            },
            Some(libc::ENAMETOOLONG) => {
                Error::InvalidName { name: name.to_owned(), reason: "the OS says the name is too long" }
            }
            _ => Error::os(op, source),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Os { op, source } => write!(f, "{op} failed: {source}"),
            Error::InvalidName { name, reason } => write!(f, "invalid name {name:?}: {reason}"),
            Error::NotFound { name } => write!(f, "no shared-memory object named {name:?}"),
            Error::Exists { name } => write!(f, "a shared-memory object named {name:?} exists already"),
            Error::PermissionDenied { name, reason } => {
                write!(f, "permission denied for {name:?}: {reason}")
            }
            Error::NoSpace { requested } => write!(
                f,
                "no space left for a {requested}-byte shared-memory object \
                 (is /dev/shm full or too small? Docker's default is 64 MiB: --shm-size)"
            ),
            Error::Corrupt { what } => write!(f, "corrupt shared-memory object: {what}"),
            Error::VersionMismatch { expected, found } => write!(
                f,
                "shared-memory format {found:#x} is not ours ({expected:#x}): \
                 made by another shmproc version or ABI"
            ),
            Error::KindMismatch { expected, found } => {
                write!(f, "shared-memory object holds kind {found:#x}, expected kind {expected:#x}")
            }
            Error::LayoutMismatch { expected, found } => write!(
                f,
                "shared-memory object holds another type or layout \
                 (layout hash {found:#018x}, expected {expected:#018x})"
            ),
            Error::SizeMismatch { expected, found } => {
                write!(f, "shared-memory object has {found} bytes, expected {expected}")
            }
            Error::Truncated { expected, found } => {
                write!(f, "shared-memory object was truncated to {found} bytes; its header says {expected}")
            }
            Error::NotReady => f.write_str("shared-memory object is not initialized yet (its creator is slow or died)"),
            Error::Timeout => f.write_str("timed out"),
            Error::StillAlive { pid } => {
                write!(f, "refusing to clean up: the creator (pid {pid}) is alive")
            }
            Error::AlreadyBeingCleaned => f.write_str("another process is cleaning up this object"),
            Error::InvalidArgument { what } => write!(f, "invalid argument: {what}"),
            Error::Unsupported { what } => write!(f, "unsupported here: {what}"),
            Error::Codec { message } => write!(f, "encoding failed: {message}"),
            Error::ProcessFailed { pid, name, failure } => write!(f, "process {name} (pid {pid}) {failure}"),
            Error::ForkUnsafe { threads } => write!(
                f,
                "refusing to fork: this process has {threads} threads, and a forked child could deadlock \
                 on a lock another thread held; use StartMethod::Spawn or ForkServer, or \
                 ProcessBuilder::allow_fork_with_threads (unsafe)"
            ),
            Error::DaemonChild => f.write_str("daemonic processes are not allowed to have children"),
            Error::OwnerDied => f.write_str("the previous holder of the lock died while holding it"),
            Error::NotRecoverable => {
                f.write_str("the lock is not recoverable: a recovery guard was dropped without mark_consistent")
            }
            Error::WouldBlock => f.write_str("the resource is busy"),
            Error::Deadlock => f.write_str("this thread already holds the lock"),
            Error::NotOwner => f.write_str("release of a lock this thread does not hold"),
            Error::RoleLost => f.write_str("the ring role of this handle was taken over by another process"),
            Error::ReleasedTooMany => f.write_str("semaphore released too many times"),
            Error::Broken { dead: Some(pid) } => write!(f, "the barrier is broken: party pid {pid} died"),
            Error::Broken { dead: None } => f.write_str("the barrier is broken (timeout or abort)"),
            Error::BarrierActionPanicked { message } => {
                write!(f, "the barrier's action panicked (the barrier is now broken): {message}")
            }
            Error::Full => f.write_str("the queue is full"),
            Error::Empty => f.write_str("the queue is empty"),
            Error::Closed => f.write_str("the queue or pipe was closed"),
            Error::Disconnected => {
                f.write_str("every process on the other side has exited (the OS confirmed it); nothing more will come")
            }
            Error::BrokenPipe => f.write_str("broken pipe: the other end was closed or its holders died"),
            Error::ShutDown => f.write_str("the queue was shut down"),
            Error::BufferTooShort { len } => write!(f, "the buffer is too short for the {len}-byte message"),
            Error::TooLarge { len, max } => write!(f, "a {len}-byte message is larger than the {max}-byte limit"),
            Error::Abandoned { items } => write!(
                f,
                "{items} item(s) were taken by consumers that died before calling task_done; \
                 they will never be marked done"
            ),
            Error::TaskPanicked { pid, message } => write!(f, "the task panicked in pool worker pid {pid}: {message}"),
            Error::WorkerDied { pid, signal: Some(s), .. } => write!(
                f,
                "pool worker pid {pid} was killed by signal {s} ({}) before returning the task's result",
                signal_name(*s)
            ),
            Error::WorkerDied { pid, code: Some(c), .. } => {
                write!(f, "pool worker pid {pid} exited with code {c} before returning the task's result")
            }
            Error::WorkerDied { pid, .. } => write!(f, "pool worker pid {pid} died before returning the task's result"),
            Error::BrokenPool { reason } => write!(f, "the process pool is broken: {reason}"),
            Error::TaskTimedOut { pid, limit } => {
                write!(f, "the task ran longer than the pool's {limit:?} limit; its worker pid {pid} was killed")
            }
            Error::Cancelled => f.write_str("the task was cancelled"),
            Error::PoolClosed => f.write_str("the pool is closed or terminated: it accepts no more tasks"),
            Error::CallbackPanicked { message } => write!(f, "a result callback panicked: {message}"),
            Error::InputPanicked { message } => write!(f, "the input iterator panicked: {message}"),
            Error::ManagerDead => f.write_str(
                "the manager's server process is gone (killed, crashed or shut down) or was replaced \
                 by a new manager under the same name; start or connect to a manager again",
            ),
            Error::Remote { message } => write!(f, "the manager's server refused the request: {message}"),
            Error::Interrupted => {
                f.write_str("interrupted by SIGINT (Ctrl-C); the pools of this process were terminated")
            }
            Error::InitMissing => f.write_str(
                "this process was started as a shmproc child but did not take its role; \
                 call shmproc::init() at the top of main",
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Os { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The message of a panic payload.
#[cfg(feature = "serde")]
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_mapping() {
        let e = Error::named("open", "x", io::Error::from_raw_os_error(libc::ENOENT));
        assert!(matches!(e, Error::NotFound { .. }));
        let e = Error::named("open", "x", io::Error::from_raw_os_error(libc::EACCES));
        assert!(matches!(e, Error::PermissionDenied { .. }));
        let e = Error::os("fallocate", io::Error::from_raw_os_error(libc::ENOSPC));
        assert!(matches!(e, Error::NoSpace { .. }));
        let e = Error::os("mmap", io::Error::from_raw_os_error(libc::EINVAL));
        assert!(e.to_string().starts_with("mmap failed"));
        assert!(std::error::Error::source(&e).is_some());
    }
}
