//! `Process`, its builder, and the `Task` trait.

use std::marker::PhantomData;
use std::os::fd::OwnedFd;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec;
use crate::error::{Error, ProcessFailure, Result};
use crate::process::bootstrap::{self, TaskSpec, Trampoline, trampoline};
use crate::process::channel::{self, Channel};
use crate::process::current::{self, ChildState};
use crate::process::error::{CloseError, JoinError, JoinTimeoutError};
use crate::process::forkserver::PrivateServer;
use crate::process::start::{StartMethod, start_method};
use crate::process::task::TaskFn;
use crate::shm::fnref::{FnRef, FnWords};
use crate::shm::handoff;
use crate::sync::guard::deadline_after;
use crate::sys::process::{self as sysproc, ForkPermit, Forked, RawExit};

/// How a child process ended.
///
/// # Examples
///
/// ```
/// fn nothing(_: ()) {}
/// let mut p = shmproc::Process::spawn(nothing, ())?;
/// p.join()?;
/// let status = p.exitcode().expect("joined");
/// assert!(status.success());
/// assert_eq!(status.code(), Some(0));
/// # Ok::<(), shmproc::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[doc(alias = "ExitStatus")]
pub struct ProcessExit(RawExit);

impl ProcessExit {
    /// The exit code, if the process exited (rather than being killed).
    ///
    /// # Examples
    ///
    /// ```
    /// fn fail(_: ()) {
    ///     std::process::exit(3)
    /// }
    /// let mut p = shmproc::Process::spawn(fail, ())?;
    /// assert!(p.join().is_err());
    /// assert_eq!(p.exitcode().expect("exited").code(), Some(3));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn code(&self) -> Option<i32> {
        match self.0 {
            RawExit::Code(c) => Some(c),
            RawExit::Signal(_) => None,
        }
    }

    /// The signal that killed the process, if one did.
    ///
    /// # Examples
    ///
    /// ```
    /// fn sleep(_: ()) {
    ///     std::thread::sleep(std::time::Duration::from_secs(60))
    /// }
    /// let mut p = shmproc::Process::spawn(sleep, ())?;
    /// p.kill()?;
    /// assert!(p.join().is_err());
    /// assert_eq!(p.exitcode().expect("exited").signal(), Some(9));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn signal(&self) -> Option<i32> {
        match self.0 {
            RawExit::Signal(s) => Some(s),
            RawExit::Code(_) => None,
        }
    }

    /// Whether the process exited with code 0.
    ///
    /// # Examples
    ///
    /// ```
    /// fn nothing(_: ()) {}
    /// let mut p = shmproc::Process::spawn(nothing, ())?;
    /// p.join()?;
    /// assert!(p.exitcode().expect("exited").success());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn success(&self) -> bool {
        self.0 == RawExit::Code(0)
    }

    /// Python's `exitcode`: the code, or minus the signal number.
    ///
    /// # Examples
    ///
    /// ```
    /// fn sleep(_: ()) {
    ///     std::thread::sleep(std::time::Duration::from_secs(60))
    /// }
    /// let mut p = shmproc::Process::spawn(sleep, ())?;
    /// p.terminate()?;
    /// let _ = p.join();
    /// assert_eq!(p.exitcode().expect("exited").python(), -15);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn python(&self) -> i32 {
        match self.0 {
            RawExit::Code(c) => c,
            RawExit::Signal(s) => -s,
        }
    }
}

impl std::fmt::Display for ProcessExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self.0 {
            RawExit::Code(c) => format!("exit code {c}"),
            RawExit::Signal(s) => format!("signal {s} ({})", crate::error::signal_name(s)),
        };
        f.pad(&text)
    }
}

/// A unit of work with a `run` method: the analogue of subclassing Python's
/// `Process` and overriding `run()`. The task value is the argument; it
/// travels to the child encoded.
///
/// # Examples
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use shmproc::{Process, Task};
///
/// #[derive(Serialize, Deserialize)]
/// struct Greet { who: String, times: usize }
///
/// impl Task for Greet {
///     type Output = String;
///     fn run(self) -> String { format!("hello {}", self.who).repeat(self.times) }
/// }
///
/// let mut p = Process::start(Greet { who: "bob".into(), times: 2 })?;
/// assert_eq!(p.join()?, "hello bobhello bob");
/// # Ok::<(), shmproc::Error>(())
/// ```
pub trait Task: Serialize + DeserializeOwned + 'static {
    /// What `run` returns to the parent.
    type Output: Serialize + DeserializeOwned + 'static;
    /// The work, run in the child.
    fn run(self) -> Self::Output;
}

fn run_task<T: Task>(task: T) -> T::Output {
    task.run()
}

/// Options for starting a child process.
///
/// # Examples
///
/// ```
/// use shmproc::{Process, StartMethod};
///
/// fn work(n: u32) -> u32 { n + 1 }
///
/// let mut p = Process::builder()
///     .name("w1")
///     .daemon(true)
///     .start_method(StartMethod::Spawn)
///     .spawn(work, 41)?;
/// assert_eq!(p.name(), "w1");
/// assert_eq!(p.join()?, 42);
/// # Ok::<(), shmproc::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct ProcessBuilder {
    name: Option<String>,
    daemon: bool,
    method: Option<StartMethod>,
    permit: Option<ForkPermit>,
    server: Option<Arc<PrivateServer>>,
}

/// The type of a task (which names its trampoline) once the task itself
/// was encoded and dropped.
fn task_type<F>(_: &F) -> PhantomData<fn() -> F> {
    PhantomData
}

impl ProcessBuilder {
    /// The child's name (default `Process-N`).
    ///
    /// # Examples
    ///
    /// ```
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    /// let mut p = shmproc::Process::builder().name("squarer").spawn(square, 3)?;
    /// assert_eq!(p.name(), "squarer");
    /// assert_eq!(p.join()?, 9);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Whether the child is a daemon: it is terminated when this process
    /// exits instead of being waited for, and it cannot start children.
    ///
    /// # Examples
    ///
    /// ```
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    /// let mut p = shmproc::Process::builder().daemon(true).spawn(square, 3)?;
    /// assert!(p.is_daemon());
    /// assert_eq!(p.join()?, 9);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn daemon(mut self, daemon: bool) -> Self {
        self.daemon = daemon;
        self
    }

    /// The start method (default: [`start_method()`](crate::start_method)).
    ///
    /// # Examples
    ///
    /// ```
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    /// use shmproc::{Process, StartMethod};
    /// let mut p = Process::builder().start_method(StartMethod::Spawn).spawn(square, 4)?;
    /// assert_eq!(p.join()?, 16);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn start_method(mut self, method: StartMethod) -> Self {
        self.method = Some(method);
        self
    }

    /// Lets the fork start method fork even when this process has several
    /// threads.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use shmproc::Process;
    /// // Only if the child takes no lock that another thread may hold:
    /// // SAFETY: the closure below only does arithmetic.
    /// let b = unsafe { Process::builder().allow_fork_with_threads() };
    /// let mut p = b.fork(|| 6 * 7)?;
    /// assert_eq!(p.join()?, 42);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Safety
    ///
    /// A forked child has only the thread that forked; any lock another
    /// thread held at that moment stays locked forever in the child.
    ///
    /// What shmproc takes care of: its own process-wide state (the liveness
    /// token, the process registry, the launcher thread, the spawn lock,
    /// the fork server handle, manager connections) is reset in every
    /// forked child by fork handlers, whatever another thread was doing
    /// with it; glibc's allocator is fork-safe.
    ///
    /// What the caller guarantees: at the moment of the fork, no other
    /// thread holds a lock that the child will take. That covers the
    /// caller's own locks and std's: the child flushes stdout and stderr
    /// when its work is done and installs a panic hook, so no other thread
    /// may be writing to stdout or stderr, panicking, or setting a panic
    /// hook during the fork; nor running `Pool` waits (their Ctrl-C hook's
    /// lock is not reset in the child).
    #[allow(unsafe_code)] // declares a contract only; no unsafe operation here
    pub unsafe fn allow_fork_with_threads(mut self) -> Self {
        self.permit = Some(ForkPermit::CallerPromised);
        self
    }

    #[cfg(feature = "pool")]
    /// Starts children through `server` (a private fork server: the
    /// children are copies of this process as it was when the server was
    /// forked), whatever the start method says.
    pub(crate) fn via_server(mut self, server: Arc<PrivateServer>) -> Self {
        self.server = Some(server);
        self
    }

    /// Starts `f(arg)` in a child process. `arg` is encoded under every
    /// start method, fork included, so the handles in it are handed over
    /// the same way: a typed channel's [`Sender`](crate::channel::Sender)
    /// counts for the child from the start, and the parent's own copies
    /// are dropped here. If the child cannot be started, or exits before
    /// it begins to decode `arg` (seen when it is joined or dropped), what
    /// the encoding counted for it is given back.
    ///
    /// # Examples
    ///
    /// ```
    /// fn add((a, b): (i64, i64)) -> i64 {
    ///     a + b
    /// }
    /// let mut p = shmproc::Process::builder().spawn(add, (2, 3))?;
    /// assert_eq!(p.join()?, 5);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::ForkUnsafe`], [`Error::DaemonChild`], [`Error::Codec`] if
    /// `arg` cannot be encoded (reported here, synchronously), [`Error::Os`].
    pub fn spawn<A, R>(self, f: impl TaskFn<A, R>, arg: A) -> Result<Process<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        current::check_can_start()?;
        let method = self.method.unwrap_or_else(start_method);
        // Encoded under every method, fork too, so the handles in the
        // argument (and in a `task!`'s captures, encoded with it, once)
        // are handed over the same way (a typed channel's ends count for
        // the child, arena cells are lent to it) and the parent's own
        // copies are dropped here. If no child starts, what the encoding
        // took for it is given back.
        let (encoded, fds, undo) =
            handoff::collecting(|| Ok::<_, Error>((codec::encode(&arg)?, f.__name(crate::process::task::TOKEN)?)));
        drop(arg);
        let task = task_type(&f);
        drop(f);
        match encoded.and_then(|(args, name)| self.start_encoded(task, name, method, args, fds)) {
            Ok(mut p) => {
                p.undo = Some(undo); // kept until the child is seen to start
                Ok(p)
            }
            Err(e) => {
                undo.run();
                Err(e)
            }
        }
    }

    /// [`spawn`](Self::spawn) after the argument and the task were encoded.
    fn start_encoded<F, A, R>(
        self,
        _task: PhantomData<fn() -> F>,
        (function, captures): (FnWords, Vec<u8>),
        method: StartMethod,
        args: Vec<u8>,
        fds: Vec<OwnedFd>,
    ) -> Result<Process<R>>
    where
        F: TaskFn<A, R>,
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        if method == StartMethod::Fork && self.server.is_none() {
            // The child decodes the task and its argument from its copy
            // of this frame.
            let packed = std::cell::Cell::new(Some((args, captures, fds)));
            return self.fork_closure(|| {
                let (args, captures, fds) = packed.take().unwrap_or_default();
                let decoded = handoff::with_fds(fds, || {
                    Ok::<_, Error>((
                        F::__load(crate::process::task::TOKEN, function, &captures)?,
                        codec::decode::<A>(&args)?,
                    ))
                });
                match decoded {
                    Ok((f, arg)) => f.__call(arg),
                    Err(e) => panic!("the fork child could not decode its task or argument: {e}"),
                }
            });
        }
        let name = self.name.clone().unwrap_or_else(current::next_name);
        let me = current::current_process();
        let tramp: Trampoline = trampoline::<F, A, R>;
        let fnref = |e| Error::os("stat /proc/self/exe", e);
        let spec = TaskSpec {
            trampoline: FnRef::of(tramp).map_err(fnref)?,
            function: FnRef::from_words(function),
            captures,
            name: name.clone(),
            daemon: self.daemon,
            parent_pid: me.pid(),
            parent_name: me.name().to_owned(),
            start_method: method,
            args,
            result_socket: true,
        };
        let mut channel = Channel::new(&codec::encode(&spec)?)?;
        // The child's end of the result socket goes last (see
        // `bootstrap.rs`); our copy closes with `fds` once the child has
        // its own (inherited by the re-exec, or in flight to the server).
        let mut fds = fds;
        fds.extend(channel.take_child_end());
        let pid = match (&self.server, method) {
            (Some(server), _) => server.start(channel.segment().fd(), &fds)?,
            (None, StartMethod::Spawn) => super::spawn::start(channel.segment().fd(), &fds)?,
            (None, _) => super::forkserver::start(channel.segment().fd(), &fds)?,
        };
        drop(fds);
        Process::adopt(pid, name, self.daemon, channel)
    }

    /// Starts a [`Task`] in a child process.
    ///
    /// # Examples
    ///
    /// ```
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Double(u32);
    /// impl shmproc::Task for Double {
    ///     type Output = u32;
    ///     fn run(self) -> u32 {
    ///         self.0 * 2
    ///     }
    /// }
    /// let mut p = shmproc::Process::builder().name("doubler").start(Double(21))?;
    /// assert_eq!(p.join()?, 42);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`spawn`](Self::spawn).
    pub fn start<T: Task>(self, task: T) -> Result<Process<T::Output>> {
        let f: fn(T) -> T::Output = run_task::<T>;
        self.spawn(f, task)
    }

    /// Forks a child that runs `f` (fork start method only: a closure
    /// cannot cross an `exec`).
    ///
    /// # Examples
    ///
    /// ```
    /// // In a single-threaded program (a test harness has many threads, so
    /// // this returns Error::ForkUnsafe there):
    /// match shmproc::Process::builder().fork(|| 1 + 1) {
    ///     Ok(mut p) => assert_eq!(p.join()?, 2),
    ///     Err(shmproc::Error::ForkUnsafe { threads }) => assert!(threads > 1),
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::ForkUnsafe`] if this process has several threads (unless
    /// [`allow_fork_with_threads`](Self::allow_fork_with_threads)),
    /// [`Error::DaemonChild`], [`Error::Os`].
    pub fn fork<F, R>(self, f: F) -> Result<Process<R>>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        self.fork_closure(f)
    }

    /// [`fork`](Self::fork) without its bounds on `F`, for `spawn` under the
    /// fork start method (whose closure holds a task's name and an encodable
    /// argument, neither a guard, a loan nor a borrow).
    ///
    /// The closure and everything it captured belong to the child from the
    /// moment the child exists: the parent forgets its copy (it never runs
    /// the captures' destructors), so a role handle or any other value
    /// moved into the closure is used and dropped by the child alone.
    fn fork_closure<F, R>(self, f: F) -> Result<Process<R>>
    where
        F: FnOnce() -> R,
        R: Serialize + DeserializeOwned + 'static,
    {
        current::check_can_start()?;
        let permit = self.permit.unwrap_or(ForkPermit::SingleThreaded);
        if permit == ForkPermit::SingleThreaded {
            let threads = sysproc::thread_count().map_err(|e| Error::os("read /proc/self/task", e))?;
            if threads != 1 {
                return Err(Error::ForkUnsafe { threads });
            }
        }
        let name = self.name.clone().unwrap_or_else(current::next_name);
        let me = current::current_process();
        let mut channel = Channel::new(&[])?;
        {
            use std::io::Write;
            let _ = std::io::stdout().flush();
            let _ = std::io::stderr().flush();
        }
        match super::fork(permit).map_err(|e| Error::os("fork", e))? {
            Forked::Child => {
                bootstrap::name_panics(&name);
                current::set_current(name, self.daemon, me.clone());
                crate::process::start::inherit_start_method(StartMethod::Fork);
                let outcome = catch_unwind(AssertUnwindSafe(|| {
                    sysproc::die_with_parent(me.pid()).map_err(|e| Error::os("prctl(PR_SET_PDEATHSIG)", e))?;
                    channel.mark_running();
                    bootstrap::encode_result(&f())
                }));
                bootstrap::finish_and_exit(&channel, outcome)
            }
            Forked::Parent(pid) => {
                // The child owns the captures now (see above).
                std::mem::forget(f);
                // And its end of the result socket (its copy of `channel`).
                drop(channel.take_child_end());
                Process::adopt(pid, name, self.daemon, channel)
            }
        }
    }
}

/// A child process (Python: `multiprocessing.Process`).
///
/// `R` is what the child's function returns; [`join`](Process::join) gives
/// it back. Dropping a `Process` without joining leaves the child running
/// (its result, or why it has none, is then lost);
/// it is reaped later by [`active_children`](crate::active_children) or the
/// next start, so no zombie stays behind. At normal exit of this program,
/// non-daemon children are waited for and daemon children terminated, as in
/// Python.
///
/// # Examples
///
/// ```
/// use shmproc::Process;
///
/// fn square(x: u64) -> u64 { x * x }
///
/// let mut children: Vec<_> = (1..=5).map(|i| Process::spawn(square, i)).collect::<Result<_, _>>()?;
/// let squares: Vec<u64> = children.iter_mut().map(|p| p.join()).collect::<Result<_, _>>()?;
/// assert_eq!(squares, [1, 4, 9, 16, 25]);
/// # Ok::<(), shmproc::Error>(())
/// ```
pub struct Process<R = ()> {
    child: Arc<ChildState>,
    channel: Channel,
    outcome: Option<(u32, Vec<u8>)>,
    /// The descriptors that came with the result (see `channel.rs`).
    result_fds: ResultFds,
    /// What encoding the argument took for the child (a typed channel's
    /// in-flight handles): given back if the child exits before it began
    /// to decode its argument (the channel never said running).
    undo: Option<handoff::Undo>,
    _result: PhantomData<fn() -> R>,
}

/// The descriptors that came with a child's result. A result that carried
/// some (an arena cell always brings its arena's descriptor) is decoded
/// once: its descriptors, and the arena references lent for the receiver,
/// go to the value the first decode makes, so no later decode can release
/// a cell twice or keep a descriptor open behind the caller's back.
#[derive(Debug)]
enum ResultFds {
    /// Not taken from the result socket yet.
    Waiting,
    /// Taken, not handed to a decode yet (none came: every join decodes).
    Held(Vec<OwnedFd>),
    /// Handed to a decode that succeeded: its value owns them.
    Given,
    /// Taking them, or the decode that had them, failed with this error.
    Failed(Box<Error>),
}

/// What a later join reports: [`ResultFds`]' descriptors went elsewhere.
const RESULT_TAKEN: &str =
    "the result carried descriptors or shared handles and was taken by an earlier join (such a result is given once)";

/// The same error once more, for a later join (`Error` is not `Clone`: its
/// OS errors keep their errno, other kinds keep their text as a codec error).
fn again(e: &Error) -> Error {
    match e {
        Error::Codec { message } => Error::Codec { message: message.clone() },
        Error::Corrupt { what } => Error::Corrupt { what },
        Error::InvalidArgument { what } => Error::InvalidArgument { what },
        Error::Os { op, source } => Error::Os {
            op,
            source: source.raw_os_error().map_or_else(
                || std::io::Error::new(source.kind(), source.to_string()),
                std::io::Error::from_raw_os_error,
            ),
        },
        other => Error::Codec { message: other.to_string() },
    }
}

impl<R> Process<R> {
    /// After the child exited: gives back what its argument's encoding
    /// took if the child never began to decode it; else forgets it.
    fn settle_handoff(&mut self) {
        if let Some(undo) = self.undo.take()
            && !self.channel.started()
        {
            undo.run();
        }
    }
}

// A `Process` is shared and sent between threads like any handle.
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Process<u64>>();
};

impl<R> Drop for Process<R> {
    /// A child that exited before it began to decode its argument gives
    /// the argument's in-flight handles back here (one still starting
    /// keeps them counted for this process).
    fn drop(&mut self) {
        if self.undo.is_some() && matches!(self.child.poll(), Ok(Some(_))) {
            self.settle_handoff();
        }
    }
}

/// The child's pidfd (Python: `Process.sentinel`): readable once the
/// child exited, for `poll`, `epoll` or an async runtime's reactor. It
/// stays open as long as the `Process`.
///
/// # Examples
///
/// ```
/// use std::os::fd::AsFd;
/// fn nothing(_: ()) {}
///
/// let mut child = shmproc::Process::spawn(nothing, ())?;
/// let sentinel = child.as_fd();
/// let mut fds = [rustix::event::PollFd::new(&sentinel, rustix::event::PollFlags::IN)];
/// rustix::event::poll(&mut fds, None)?; // returns once the child exited
/// child.join()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
impl<R> std::os::fd::AsFd for Process<R> {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.child.as_fd()
    }
}

#[cfg(feature = "async")]
impl<R> crate::channel::wait::private::Sealed for Process<R> {}

/// Ready once the child exited (its pidfd is readable: Python's
/// `sentinel`).
#[cfg(feature = "async")]
impl<R> crate::channel::wait::Waitable for Process<R> {
    fn target(&self) -> Result<crate::channel::wait::WaitTarget<'_>> {
        let child = &self.child;
        let source: Arc<dyn crate::watch::AsyncFd> = child.clone();
        // A child whose exit cannot be read (reaped by someone else) is
        // ready too: its pidfd is readable, as Python's sentinel would be,
        // and `join` reports the error.
        Ok(crate::channel::wait::WaitTarget::fd(source, move || child.poll().map_or(true, |e| e.is_some())))
    }
}

impl<R> std::fmt::Debug for Process<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Process").field("pid", &self.pid()).field("name", &self.child.name).finish()
    }
}

impl Process<()> {
    /// A builder for the less common options.
    ///
    /// # Examples
    ///
    /// ```
    /// let b = shmproc::Process::builder().name("w").daemon(false);
    /// # let _ = b;
    /// ```
    pub fn builder() -> ProcessBuilder {
        ProcessBuilder::default()
    }
}

impl<R: Serialize + DeserializeOwned + 'static> Process<R> {
    /// Starts `f(arg)` in a child with the default start method
    /// (Python: `Process(target=f, args=(arg,)).start()`).
    ///
    /// `f` is a [`TaskFn`]: a fn item or pointer, a closure that captures
    /// nothing, or a [`task!`](crate::task!) with named captures (encoded
    /// with the argument); under Spawn and ForkServer the child finds the
    /// function by its address in the binary. Put several arguments in a
    /// tuple or a struct.
    ///
    /// # Examples
    ///
    /// ```
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    /// let mut p = shmproc::Process::spawn(square, 12)?;
    /// assert_eq!(p.join()?, 144);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`ProcessBuilder::spawn`].
    pub fn spawn<A>(f: impl TaskFn<A, R>, arg: A) -> Result<Process<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
    {
        ProcessBuilder::default().spawn(f, arg)
    }

    /// Forks a child that runs the closure `f`.
    ///
    /// `f` is bounded like a thread's closure (`Send + 'static`), and what
    /// it captures moves to the child: the parent forgets its copy, so a
    /// value moved in is used and dropped by the child alone. A lock guard
    /// or a loan cannot be captured (it is neither `Send` nor `'static`),
    /// so a child can never write through a reference its parent still
    /// holds:
    ///
    /// ```compile_fail
    /// let m = shmproc::Mutex::new(0u64)?;
    /// let mut g = m.lock()?;
    /// // error: the guard is not `Send` (and borrows `m`)
    /// let p = shmproc::Process::fork(move || *g += 1);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// A ring role handle is `Send`: moved into `f`, it passes to the child
    /// alone, and the role is then held in the child's name (a producer
    /// killed in the child is seen as dead even while the parent lives).
    ///
    /// A typed channel's [`Sender`](crate::channel::Sender) or
    /// [`Receiver`](crate::channel::Receiver) captured by `f` stays
    /// counted for the parent until the parent exits (its copy is never
    /// dropped), and the child's copy counts for nobody: the other side
    /// sees no `Disconnected` while the parent lives. Pass channel ends to
    /// [`spawn`](Process::spawn) as arguments to have them counted for the
    /// child.
    ///
    /// # Examples
    ///
    /// ```
    /// let greeting = String::from("captured");
    /// match shmproc::Process::fork(move || greeting.len()) {
    ///     Ok(mut p) => assert_eq!(p.join()?, 8),
    ///     Err(shmproc::Error::ForkUnsafe { .. }) => {} // several threads here
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`ProcessBuilder::fork`].
    pub fn fork<F: FnOnce() -> R + Send + 'static>(f: F) -> Result<Process<R>> {
        ProcessBuilder::default().fork(f)
    }
}

impl Process<()> {
    /// Starts a [`Task`] in a child with the default start method.
    ///
    /// # Examples
    ///
    /// ```
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Hello;
    /// impl shmproc::Task for Hello {
    ///     type Output = String;
    ///     fn run(self) -> String {
    ///         format!("hello from {}", shmproc::current_process().name())
    ///     }
    /// }
    /// let mut p = shmproc::Process::start(Hello)?;
    /// assert!(p.join()?.starts_with("hello from Process-"));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`ProcessBuilder::spawn`].
    pub fn start<T: Task>(task: T) -> Result<Process<T::Output>> {
        ProcessBuilder::default().start(task)
    }
}

impl<R> Process<R> {
    fn adopt(pid: u32, name: String, daemon: bool, channel: Channel) -> Result<Process<R>> {
        let child = ChildState::new(pid, name, daemon)?;
        current::register(child.clone());
        Ok(Process { child, channel, outcome: None, undo: None, result_fds: ResultFds::Waiting, _result: PhantomData })
    }

    /// The child's pid.
    ///
    /// # Examples
    ///
    /// ```
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    /// let mut p = shmproc::Process::spawn(square, 2)?;
    /// assert_ne!(p.pid(), std::process::id());
    /// p.join()?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// The child's name.
    ///
    /// # Examples
    ///
    /// ```
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    /// let mut p = shmproc::Process::spawn(square, 2)?;
    /// assert!(p.name().starts_with("Process-"));
    /// p.join()?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.child.name
    }

    /// Whether the child is a daemon.
    ///
    /// # Examples
    ///
    /// ```
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    /// let mut p = shmproc::Process::spawn(square, 2)?;
    /// assert!(!p.is_daemon());
    /// p.join()?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn is_daemon(&self) -> bool {
        self.child.daemon
    }

    /// Whether the child is still running.
    ///
    /// # Examples
    ///
    /// ```
    /// fn sleep(ms: u64) {
    ///     std::thread::sleep(std::time::Duration::from_millis(ms))
    /// }
    /// let mut p = shmproc::Process::spawn(sleep, 60_000)?;
    /// assert!(p.is_alive());
    /// p.kill()?;
    /// let _ = p.join();
    /// assert!(!p.is_alive());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn is_alive(&self) -> bool {
        matches!(self.child.poll(), Ok(None))
    }

    /// How the child ended, or `None` while it runs (Python: `exitcode`).
    ///
    /// # Examples
    ///
    /// ```
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    /// let mut p = shmproc::Process::spawn(square, 2)?;
    /// p.join()?;
    /// assert_eq!(p.exitcode().map(|s| s.python()), Some(0));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn exitcode(&self) -> Option<ProcessExit> {
        self.child.poll().ok().flatten().map(ProcessExit)
    }

    /// Releases what the handle holds, once the child has exited: the
    /// child's pidfd (its sentinel), the segment its result came through,
    /// its entry in this process's registry of children, and the child
    /// itself if it is still a zombie (it is reaped here). An unjoined
    /// result is dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    /// let mut p = shmproc::Process::spawn(square, 4)?;
    /// assert_eq!(p.join()?, 16);
    /// p.close()?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`CloseError::Running`], with the handle, if the child has not
    /// exited yet.
    ///
    /// Python: `close()`, which raises `ValueError` while the process runs.
    /// Here `close` takes the handle, so using it afterwards (a
    /// `ValueError` in Python, including a second `close`) does not
    /// compile.
    pub fn close(mut self) -> Result<(), CloseError<R>> {
        // An error here means the exit cannot be waited for (reaped by
        // someone else): the child is gone for us, and closing is right.
        if matches!(self.child.poll(), Ok(None)) {
            return Err(CloseError::Running(self));
        }
        self.settle_handoff();
        current::unregister(&self.child);
        Ok(())
    }

    /// Sends SIGTERM (Python: `terminate()`).
    ///
    /// # Examples
    ///
    /// ```
    /// fn sleep(ms: u64) {
    ///     std::thread::sleep(std::time::Duration::from_millis(ms))
    /// }
    /// let mut p = shmproc::Process::spawn(sleep, 60_000)?;
    /// p.terminate()?;
    /// assert!(p.join().is_err()); // killed by SIGTERM: no result
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Os`].
    pub fn terminate(&self) -> Result<()> {
        self.child.signal(sysproc::SIGTERM)
    }

    /// Sends SIGINT, as a Ctrl-C would (Python 3.14: `interrupt()`). A
    /// child that keeps the default action ends, and
    /// [`join`](Process::join) reports [`JoinError::Signaled`] with signal
    /// 2; a child that ignores or handles SIGINT (a pool's workers ignore
    /// it) goes on.
    ///
    /// # Examples
    ///
    /// ```
    /// fn sleep(ms: u64) {
    ///     std::thread::sleep(std::time::Duration::from_millis(ms))
    /// }
    /// let mut p = shmproc::Process::spawn(sleep, 60_000)?;
    /// p.interrupt()?;
    /// assert!(matches!(p.join(), Err(shmproc::JoinError::Signaled { signal: 2, .. })));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Os`].
    ///
    /// Python: a child with Python's default handler raises
    /// `KeyboardInterrupt` and exits with code 1; a Rust child has no such
    /// handler, so it ends by the signal (exit code -2, as a Python child
    /// whose SIGINT action is the default).
    pub fn interrupt(&self) -> Result<()> {
        self.child.signal(sysproc::SIGINT)
    }

    /// Sends SIGKILL (Python: `kill()`).
    ///
    /// # Examples
    ///
    /// ```
    /// fn sleep(ms: u64) {
    ///     std::thread::sleep(std::time::Duration::from_millis(ms))
    /// }
    /// let mut p = shmproc::Process::spawn(sleep, 60_000)?;
    /// p.kill()?;
    /// assert!(p.join().is_err());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Os`].
    pub fn kill(&self) -> Result<()> {
        self.child.signal(sysproc::SIGKILL)
    }
}

impl<R: DeserializeOwned> Process<R> {
    /// Waits for the child and returns what its function returned. May be
    /// called again; it returns the same result, except for a result that
    /// carried descriptors ([`Fd`](crate::Fd)) or anonymous shared handles
    /// (a `Lock`, `Value`, `Queue` made with `new`): that one is given
    /// once, to the first join that decodes it, and later joins return
    /// [`JoinError::Failed`] with [`Error::InvalidArgument`] (the value owns
    /// the descriptors, so dropping it closes them).
    ///
    /// # Examples
    ///
    /// ```
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    /// let mut p = shmproc::Process::spawn(square, 5)?;
    /// assert_eq!(p.join()?, 25);
    /// assert_eq!(p.join()?, 25); // again: same result
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`JoinError::Panicked`] (with the panic message),
    /// [`JoinError::Signaled`], [`JoinError::Exited`] or
    /// [`JoinError::CouldNotRun`] when the child produced no result;
    /// [`JoinError::Failed`] if the result does not decode
    /// ([`Error::Codec`]), the OS refused the wait or would not hand over
    /// the result's descriptors ([`Error::Os`], e.g. `EMFILE` at the
    /// descriptor limit; a later join reports the same error), or a result
    /// with descriptors was already taken ([`Error::InvalidArgument`]).
    /// Each converts into
    /// [`Error::ProcessFailed`] (or the error inside `Failed`).
    pub fn join(&mut self) -> Result<R, JoinError> {
        self.child.wait(None).map_err(JoinError::Failed)?;
        self.collect()
    }

    /// Like [`join`](Process::join), giving up after `timeout`
    /// (`Duration::MAX`: no limit) with [`JoinTimeoutError::Timeout`]; the
    /// child goes on and may be joined again (Python: `join(timeout)`,
    /// which returns `None` then and leaves the result to `exitcode`).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmproc::JoinTimeoutError;
    /// use std::time::Duration;
    /// fn sleep(ms: u64) -> u64 {
    ///     std::thread::sleep(Duration::from_millis(ms));
    ///     ms
    /// }
    /// let mut p = shmproc::Process::spawn(sleep, 300)?;
    /// assert!(matches!(p.join_timeout(Duration::ZERO), Err(JoinTimeoutError::Timeout)));
    /// assert_eq!(p.join_timeout(Duration::from_secs(30))?, 300);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`JoinTimeoutError::Timeout`]; the others as for
    /// [`join`](Process::join).
    pub fn join_timeout(&mut self, timeout: Duration) -> Result<R, JoinTimeoutError> {
        self.join_until(deadline_after(timeout))
    }

    /// Like [`join_timeout`](Process::join_timeout), waiting until the
    /// instant `deadline`.
    ///
    /// # Examples
    ///
    /// ```
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    /// let mut p = shmproc::Process::spawn(square, 3)?;
    /// let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    /// assert_eq!(p.join_deadline(deadline)?, 9);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`join_timeout`](Process::join_timeout).
    pub fn join_deadline(&mut self, deadline: Instant) -> Result<R, JoinTimeoutError> {
        self.join_until(Some(deadline))
    }

    fn join_until(&mut self, deadline: Option<Instant>) -> Result<R, JoinTimeoutError> {
        match self.child.wait(deadline).map_err(JoinTimeoutError::Failed)? {
            None => Err(JoinTimeoutError::Timeout),
            Some(_) => self.collect().map_err(JoinTimeoutError::from),
        }
    }

    /// The result of a child that has exited.
    /// Waits for the child to exit without blocking the thread, then
    /// returns what [`join`](Process::join) returns: the async twin of
    /// `join`.
    ///
    /// Cancellation: dropping the future changes nothing (the child goes
    /// on; a later `join` or `join_async` collects it).
    ///
    /// # Examples
    ///
    /// ```
    /// fn double(x: u32) -> u32 { x * 2 }
    ///
    /// let mut child = shmproc::Process::spawn(double, 21)?;
    /// assert_eq!(futures::executor::block_on(child.join_async())?, 42);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`join`](Process::join).
    #[cfg(feature = "async")]
    pub async fn join_async(&mut self) -> Result<R, JoinError> {
        let source: Arc<dyn crate::watch::AsyncFd> = self.child.clone();
        while self.child.poll().map_err(JoinError::Failed)?.is_none() {
            crate::watch::fd_ready(&source, None).await.map_err(|e| JoinError::Failed(Error::os("poll(pidfd)", e)))?;
        }
        self.collect()
    }

    fn collect(&mut self) -> Result<R, JoinError> {
        self.settle_handoff();
        if self.outcome.is_none() {
            self.outcome = self.channel.result().map_err(JoinError::Failed)?;
        }
        let fail = |failure| JoinError::from_failure(self.pid(), self.child.name.clone(), failure);
        match &self.outcome {
            Some((channel::OK, bytes)) => {
                // Descriptors in the result: taken once, and given to
                // the first decode (see `ResultFds`).
                if matches!(self.result_fds, ResultFds::Waiting) {
                    self.result_fds = match self.channel.take_result_fds() {
                        Ok(fds) => ResultFds::Held(fds),
                        Err(e) => ResultFds::Failed(Box::new(e)),
                    };
                }
                match std::mem::replace(&mut self.result_fds, ResultFds::Given) {
                    ResultFds::Held(fds) if fds.is_empty() => {
                        self.result_fds = ResultFds::Held(fds);
                        handoff::with_fds(Vec::new(), || codec::decode(bytes)).map_err(JoinError::Failed)
                    }
                    ResultFds::Held(fds) => handoff::with_fds(fds, || codec::decode(bytes)).map_err(|e| {
                        self.result_fds = ResultFds::Failed(Box::new(again(&e)));
                        JoinError::Failed(e)
                    }),
                    ResultFds::Failed(e) => {
                        let err = again(&e);
                        self.result_fds = ResultFds::Failed(e);
                        Err(JoinError::Failed(err))
                    }
                    ResultFds::Given | ResultFds::Waiting => {
                        Err(JoinError::Failed(Error::InvalidArgument { what: RESULT_TAKEN }))
                    }
                }
            }
            Some((channel::PANIC, m)) => Err(fail(ProcessFailure::Panicked(String::from_utf8_lossy(m).into_owned()))),
            Some((_, m)) => Err(fail(ProcessFailure::TaskError(String::from_utf8_lossy(m).into_owned()))),
            None => match self.child.poll().map_err(JoinError::Failed)? {
                Some(RawExit::Signal(s)) => Err(fail(ProcessFailure::Signaled(s))),
                Some(RawExit::Code(c)) if !self.channel.started() => Err(fail(ProcessFailure::TaskError(format!(
                    "the child exited with code {c} before reaching its task (see its stderr)"
                )))),
                Some(RawExit::Code(c)) => Err(fail(ProcessFailure::Exited(c))),
                None => Err(JoinError::Failed(Error::InvalidArgument { what: "the child has not exited" })),
            },
        }
    }
}
