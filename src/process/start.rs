//! Start methods, the global default, contexts, and the launcher thread.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc;

use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Result;
use crate::process::handle::{Process, ProcessBuilder, Task};

/// How a child process is started.
///
/// # Examples
///
/// ```
/// use shmproc::StartMethod;
/// assert_eq!(StartMethod::default(), StartMethod::ForkServer);
/// assert_eq!("spawn".parse::<StartMethod>()?, StartMethod::Spawn);
/// # Ok::<(), shmproc::Error>(())
/// ```
///
/// Python: `multiprocessing.set_start_method("fork" | "spawn" | "forkserver")`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
pub enum StartMethod {
    /// `fork()`: the child is a copy of the parent and runs the closure.
    /// Fastest. Refused when the parent has more than one thread (a forked
    /// child could deadlock on a lock another thread held).
    Fork,
    /// Re-execute the current binary; the child finds its task in shared
    /// memory. Slowest, always safe.
    Spawn,
    /// A single-threaded server, started once by re-execution, forks each
    /// child on request. Safe with threads, much faster than Spawn.
    #[default]
    ForkServer,
}

impl StartMethod {
    /// Python's name for the method.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shmproc::StartMethod::ForkServer.as_str(), "forkserver");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            StartMethod::Fork => "fork",
            StartMethod::Spawn => "spawn",
            StartMethod::ForkServer => "forkserver",
        }
    }

    /// All methods, as Python's `get_all_start_methods()`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(shmproc::StartMethod::all().contains(&shmproc::StartMethod::Fork));
    /// ```
    pub fn all() -> [StartMethod; 3] {
        [StartMethod::ForkServer, StartMethod::Spawn, StartMethod::Fork]
    }

    fn code(self) -> u8 {
        match self {
            StartMethod::Fork => 1,
            StartMethod::Spawn => 2,
            StartMethod::ForkServer => 3,
        }
    }

    fn from_code(c: u8) -> StartMethod {
        match c {
            1 => StartMethod::Fork,
            2 => StartMethod::Spawn,
            _ => StartMethod::ForkServer,
        }
    }
}

impl std::fmt::Display for StartMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl std::str::FromStr for StartMethod {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<StartMethod> {
        match s {
            "fork" => Ok(StartMethod::Fork),
            "spawn" => Ok(StartMethod::Spawn),
            "forkserver" => Ok(StartMethod::ForkServer),
            _ => Err(crate::Error::InvalidArgument { what: "start method must be fork, spawn or forkserver" }),
        }
    }
}

static DEFAULT: AtomicU8 = AtomicU8::new(0);

/// Sets the start method used when none is chosen by a builder or a
/// [`Context`].
///
/// # Examples
///
/// ```
/// shmproc::set_start_method(shmproc::StartMethod::Spawn)?;
/// assert_eq!(shmproc::start_method(), shmproc::StartMethod::Spawn);
/// shmproc::set_start_method(shmproc::StartMethod::ForkServer)?;
/// # Ok::<(), shmproc::Error>(())
/// ```
///
/// # Errors
/// None today; the `Result` leaves room for refusing changes later.
///
/// Python: `set_start_method`; unlike Python it may be called again.
pub fn set_start_method(method: StartMethod) -> Result<()> {
    DEFAULT.store(method.code(), Ordering::Relaxed);
    Ok(())
}

/// In a child, before its task runs: the method it was started with
/// becomes its default, so its own children start the same way (Python's
/// children do likewise).
pub(crate) fn inherit_start_method(method: StartMethod) {
    DEFAULT.store(method.code(), Ordering::Relaxed);
}

/// The start method in force (Python: `get_start_method()`). In a child
/// started by shmproc it is, until changed, the method the child was
/// started with (whether chosen by a [`Context`], a builder or
/// [`set_start_method`]).
///
/// # Examples
///
/// ```
/// println!("children start with {}", shmproc::start_method());
/// ```
pub fn start_method() -> StartMethod {
    StartMethod::from_code(DEFAULT.load(Ordering::Relaxed))
}

/// A start method bound to an API: the same calls as the free functions,
/// with the method fixed (Python: `multiprocessing.get_context(method)`).
///
/// # Examples
///
/// ```
/// use shmproc::{Context, StartMethod};
///
/// fn square(x: u64) -> u64 { x * x }
///
/// let ctx = Context::new(StartMethod::Spawn);
/// let mut p = ctx.spawn(square, 7)?;
/// assert_eq!(p.join()?, 49);
/// # Ok::<(), shmproc::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    method: StartMethod,
}

impl Context {
    /// A context that starts children with `method`.
    ///
    /// # Examples
    ///
    /// ```
    /// let ctx = shmproc::Context::new(shmproc::StartMethod::Spawn);
    /// assert_eq!(ctx.start_method(), shmproc::StartMethod::Spawn);
    /// ```
    pub fn new(method: StartMethod) -> Context {
        Context { method }
    }

    /// The context's start method.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shmproc::Context::new(shmproc::StartMethod::Fork).start_method(), shmproc::StartMethod::Fork);
    /// ```
    pub fn start_method(&self) -> StartMethod {
        self.method
    }

    /// A process builder preset to this context's start method.
    ///
    /// # Examples
    ///
    /// ```
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    /// let ctx = shmproc::Context::new(shmproc::StartMethod::ForkServer);
    /// let mut p = ctx.process().name("sq").spawn(square, 6)?;
    /// assert_eq!(p.join()?, 36);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn process(&self) -> ProcessBuilder {
        Process::builder().start_method(self.method)
    }

    /// Starts `f(arg)` in a child; see [`Process::spawn`].
    ///
    /// # Examples
    ///
    /// ```
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    /// let ctx = shmproc::Context::new(shmproc::StartMethod::Spawn);
    /// assert_eq!(ctx.spawn(square, 8)?.join()?, 64);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`Process::spawn`].
    pub fn spawn<A, R>(&self, f: impl crate::TaskFn<A, R>, arg: A) -> Result<Process<R>>
    where
        A: Serialize + DeserializeOwned + 'static,
        R: Serialize + DeserializeOwned + 'static,
    {
        self.process().spawn(f, arg)
    }

    /// Starts a [`Task`] in a child; see [`Process::start`].
    ///
    /// # Examples
    ///
    /// ```
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Pid;
    /// impl shmproc::Task for Pid {
    ///     type Output = u32;
    ///     fn run(self) -> u32 {
    ///         std::process::id()
    ///     }
    /// }
    /// let ctx = shmproc::Context::new(shmproc::StartMethod::ForkServer);
    /// let mut p = ctx.start(Pid)?;
    /// assert_eq!(p.join()?, p.pid());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`Process::spawn`].
    pub fn start<T: Task>(&self, task: T) -> Result<Process<T::Output>> {
        self.process().start(task)
    }
}

type Job = Box<dyn FnOnce() + Send>;
static LAUNCHER: Mutex<Option<(u32, mpsc::Sender<Job>)>> = Mutex::new(None);

/// In a forked child (see `current::after_fork_in_child`): forgets the
/// parent's launcher thread, which does not exist here.
pub(super) fn reset_in_child() {
    crate::sys::process::reset_in_child(&LAUNCHER, None);
}

/// Runs `f` on a thread that lives as long as the process: the main thread
/// if we are on it, else a dedicated launcher thread. The parent-death
/// signal of a child fires when the *thread* that started it exits, so
/// children must not be started from short-lived threads.
///
/// Fails (without running `f`) if the launcher thread cannot be started,
/// for example when `RLIMIT_NPROC` is exhausted.
pub(crate) fn on_launcher<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> std::io::Result<T> {
    if crate::sys::process::is_main_thread() {
        return Ok(f());
    }
    let (tx, rx) = mpsc::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(f());
    });
    let pid = crate::sys::process::pid();
    let sender = {
        let mut g = LAUNCHER.lock();
        match g.as_ref() {
            Some((p, s)) if *p == pid => s.clone(),
            _ => {
                let (stx, srx) = mpsc::channel::<Job>();
                std::thread::Builder::new().name("shmproc-launcher".into()).spawn(move || {
                    for job in srx {
                        job();
                    }
                })?;
                *g = Some((pid, stx.clone()));
                stx
            }
        }
    };
    let gone = || std::io::Error::other("the shmproc launcher thread is gone");
    sender.send(job).map_err(|_| gone())?;
    rx.recv().map_err(|_| gone())
}
