//! The errors of getting a pool task's result ([`TaskError`],
//! [`TaskTimeoutError`]) and of [`Pool::join`](crate::Pool::join)
//! ([`PoolJoinError`]). Each converts into [`Error`] (a task's failure
//! into the variant of the same name), so `?` works in functions
//! returning [`crate::Result`].

use std::fmt;
use std::time::Duration;

use crate::error::Error;
use crate::pool::wire::Failure;

/// The variants [`TaskError`] and [`TaskTimeoutError`] share, with their
/// Display, `std::error::Error` and the conversion into [`Error`].
macro_rules! task_errors {
    ($(#[$meta:meta])* $ty:ident { $($(#[$vm:meta])* $var:ident => $err:expr,)* }) => {
        $(#[$meta])*
        #[derive(Debug)]
        #[non_exhaustive]
        pub enum $ty {
            $($(#[$vm])* $var,)*
            /// The task panicked in its worker (while decoding its
            /// argument, running, or encoding its result); the worker lives
            /// on.
            Panicked {
                /// The worker's pid.
                pid: u32,
                /// The panic message (with its location), whole however
                /// long (a long one travels through a spill segment).
                message: String,
            },
            /// The worker running the task died (killed by a signal, or it
            /// exited) before returning a result. A [`Pool`](crate::Pool)
            /// replaces the worker; a
            /// [`ProcessPoolExecutor`](crate::ProcessPoolExecutor) is
            /// broken by it.
            WorkerDied {
                /// The worker's pid.
                pid: u32,
                /// The signal that killed it, if one did.
                signal: Option<i32>,
                /// Its exit code, if it exited.
                code: Option<i32>,
            },
            /// The task ran longer than the pool's
            /// [`task_timeout`](crate::PoolBuilder::task_timeout); its
            /// worker was killed and replaced.
            TaskTimedOut {
                /// The worker's pid.
                pid: u32,
                /// The limit that was exceeded.
                limit: Duration,
            },
            /// The task was cancelled: [`TaskFuture::cancel`](crate::TaskFuture::cancel),
            /// `shutdown` with `cancel_futures`, or the pool was terminated
            /// or dropped before the task finished.
            Cancelled,
            /// The pool is broken (its initializer panicked, or a worker of
            /// a `ProcessPoolExecutor` died): the task will never run.
            BrokenPool {
                /// What broke it.
                reason: String,
            },
            /// The result callback of
            /// [`Pool::apply_async_with`](crate::Pool::apply_async_with)
            /// panicked.
            CallbackPanicked {
                /// The panic message.
                message: String,
            },
            /// SIGINT (Ctrl-C) arrived during a pool call; the pools of
            /// this process were terminated.
            Interrupted,
            /// Anything else: the argument did not decode or the result did
            /// not encode in the worker, or the result did not decode here
            /// ([`Error::Codec`]); for an [`Imap`](crate::Imap) item, the
            /// input iterator panicked ([`Error::InputPanicked`]: that item
            /// is the last).
            Failed(Error),
        }

        impl $ty {
            /// The crate's error for this one (a copy; `None` for
            /// `Failed`, which holds its own).
            fn to_error(&self) -> Option<Error> {
                Some(match self {
                    $($ty::$var => $err,)*
                    $ty::Panicked { pid, message } => Error::TaskPanicked { pid: *pid, message: message.clone() },
                    $ty::WorkerDied { pid, signal, code } => {
                        Error::WorkerDied { pid: *pid, signal: *signal, code: *code }
                    }
                    $ty::TaskTimedOut { pid, limit } => Error::TaskTimedOut { pid: *pid, limit: *limit },
                    $ty::Cancelled => Error::Cancelled,
                    $ty::BrokenPool { reason } => Error::BrokenPool { reason: reason.clone() },
                    $ty::CallbackPanicked { message } => Error::CallbackPanicked { message: message.clone() },
                    $ty::Interrupted => Error::Interrupted,
                    $ty::Failed(_) => return None,
                })
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $ty::Failed(e) => fmt::Display::fmt(e, f),
                    other => fmt::Display::fmt(&other.to_error().expect("invariant: only Failed has no copy"), f),
                }
            }
        }

        impl std::error::Error for $ty {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                match self {
                    $ty::Failed(e) => Some(e),
                    _ => None,
                }
            }
        }

        impl From<$ty> for Error {
            fn from(e: $ty) -> Error {
                match e {
                    $ty::Failed(e) => e,
                    other => other.to_error().expect("invariant: only Failed has no copy"),
                }
            }
        }
    };
}

task_errors! {
    /// Why a pool task gave no result: [`AsyncResult::get`](crate::AsyncResult::get),
    /// [`TaskFuture::result`](crate::TaskFuture::result), and each item of
    /// an [`Imap`](crate::Imap).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmproc::TaskError;
    ///
    /// fn fail(_: ()) {
    ///     panic!("no")
    /// }
    /// let pool = shmproc::Pool::new(1)?;
    /// match pool.apply_async(fail, ())?.get() {
    ///     Err(TaskError::Panicked { message, .. }) => assert!(message.contains("no")),
    ///     other => panic!("{other:?}"),
    /// }
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    TaskError {
        /// The pool was closed or terminated before the item was
        /// submitted: only an [`Imap`](crate::Imap) that reads its input
        /// after [`close`](crate::Pool::close) yields it (a handle of
        /// `apply_async` or `submit` is refused by the call itself).
        PoolClosed => Error::PoolClosed,
    }
}

task_errors! {
    /// Why [`AsyncResult::get_timeout`](crate::AsyncResult::get_timeout),
    /// [`TaskFuture::result_timeout`](crate::TaskFuture::result_timeout) or
    /// their `_deadline` twins gave no result: [`TaskError`]'s cases and
    /// [`Timeout`](TaskTimeoutError::Timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmproc::TaskTimeoutError;
    /// use std::time::Duration;
    ///
    /// fn sleep_ms(ms: u64) {
    ///     std::thread::sleep(Duration::from_millis(ms))
    /// }
    /// let pool = shmproc::Pool::new(1)?;
    /// let h = pool.apply_async(sleep_ms, 60_000)?;
    /// assert!(matches!(h.get_timeout(Duration::ZERO), Err(TaskTimeoutError::Timeout)));
    /// pool.terminate()?;
    /// assert!(matches!(h.get_timeout(Duration::MAX), Err(TaskTimeoutError::Cancelled)));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    TaskTimeoutError {
        /// The task was not done when this wait ran out (it goes on; ask
        /// again later). Not to be confused with
        /// [`TaskTimedOut`](TaskTimeoutError::TaskTimedOut), the pool's own
        /// limit on a task.
        Timeout => Error::Timeout,
    }
}

impl TaskError {
    /// The error for a task that ended with `failure`.
    pub(crate) fn from_failure(failure: &Failure) -> Self {
        match failure {
            Failure::Panicked { pid, message } => TaskError::Panicked { pid: *pid, message: message.clone() },
            Failure::WorkerDied { pid, signal, code } => {
                TaskError::WorkerDied { pid: *pid, signal: *signal, code: *code }
            }
            Failure::TimedOut { pid, limit } => TaskError::TaskTimedOut { pid: *pid, limit: *limit },
            Failure::Cancelled => TaskError::Cancelled,
            Failure::Closed => TaskError::PoolClosed,
            Failure::Broken(reason) => TaskError::BrokenPool { reason: reason.clone() },
            Failure::CallbackPanicked(message) => TaskError::CallbackPanicked { message: message.clone() },
            Failure::Interrupted => TaskError::Interrupted,
            Failure::Codec(_) | Failure::TaskError(_) | Failure::InputPanicked(_) => TaskError::Failed(failure.error()),
        }
    }
}

impl From<TaskError> for TaskTimeoutError {
    fn from(e: TaskError) -> TaskTimeoutError {
        match e {
            TaskError::Panicked { pid, message } => TaskTimeoutError::Panicked { pid, message },
            TaskError::WorkerDied { pid, signal, code } => TaskTimeoutError::WorkerDied { pid, signal, code },
            TaskError::TaskTimedOut { pid, limit } => TaskTimeoutError::TaskTimedOut { pid, limit },
            TaskError::Cancelled => TaskTimeoutError::Cancelled,
            // Only `Imap` items are ever `PoolClosed`, and they have no
            // bounded form; kept whole here all the same.
            TaskError::PoolClosed => TaskTimeoutError::Failed(Error::PoolClosed),
            TaskError::BrokenPool { reason } => TaskTimeoutError::BrokenPool { reason },
            TaskError::CallbackPanicked { message } => TaskTimeoutError::CallbackPanicked { message },
            TaskError::Interrupted => TaskTimeoutError::Interrupted,
            TaskError::Failed(e) => TaskTimeoutError::Failed(e),
        }
    }
}

/// Why [`Pool::join`](crate::Pool::join) did not wait for the pool to
/// finish.
///
/// # Examples
///
/// ```
/// use shmproc::{Pool, PoolJoinError};
///
/// let pool = Pool::new(1)?;
/// assert!(matches!(pool.join(), Err(PoolJoinError::Running)));
/// pool.close();
/// pool.join()?;
/// # Ok::<(), shmproc::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoolJoinError {
    /// Neither [`close`](crate::Pool::close) nor
    /// [`terminate`](crate::Pool::terminate) was called, so the pool
    /// would never finish (Python: `ValueError: Pool is still running`).
    Running,
    /// Called from a result callback, on the thread that the wait would
    /// wait for.
    InCallback,
    /// SIGINT (Ctrl-C) arrived while waiting; the pools of this process
    /// were terminated.
    Interrupted,
}

impl PoolJoinError {
    fn to_error(self) -> Error {
        match self {
            PoolJoinError::Running => Error::InvalidArgument { what: "join() needs close() or terminate() first" },
            PoolJoinError::InCallback => {
                Error::InvalidArgument { what: "join() from a result callback would wait for itself" }
            }
            PoolJoinError::Interrupted => Error::Interrupted,
        }
    }
}

impl fmt::Display for PoolJoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.to_error(), f)
    }
}

impl std::error::Error for PoolJoinError {}

impl From<PoolJoinError> for Error {
    fn from(e: PoolJoinError) -> Error {
        e.to_error()
    }
}

/// Why [`TaskFuture::exception`](crate::TaskFuture::exception) has no
/// answer: the future was cancelled, so it neither returned nor failed
/// (Python: `concurrent.futures.CancelledError`, which `exception()`
/// raises too).
///
/// # Examples
///
/// ```
/// fn sleep_ms(ms: u64) {
///     std::thread::sleep(std::time::Duration::from_millis(ms))
/// }
/// let ex = shmproc::ProcessPoolExecutor::new(1)?;
/// let f = ex.submit(sleep_ms, 60_000)?;
/// f.cancel();
/// assert_eq!(f.exception().map(|e| e.is_some()), Err(shmproc::Cancelled));
/// # Ok::<(), shmproc::Error>(())
/// ```
#[doc(alias = "CancelledError")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Cancelled;

impl fmt::Display for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&Error::Cancelled, f)
    }
}

impl std::error::Error for Cancelled {}

impl From<Cancelled> for Error {
    fn from(_: Cancelled) -> Error {
        Error::Cancelled
    }
}

/// Why [`TaskFuture::exception_timeout`](crate::TaskFuture::exception_timeout)
/// or [`exception_deadline`](crate::TaskFuture::exception_deadline) has no
/// answer.
///
/// # Examples
///
/// ```
/// use shmproc::ExceptionTimeoutError;
/// use std::time::Duration;
/// fn sleep_ms(ms: u64) {
///     std::thread::sleep(Duration::from_millis(ms))
/// }
/// let ex = shmproc::ProcessPoolExecutor::new(1)?;
/// let f = ex.submit(sleep_ms, 60_000)?;
/// assert_eq!(f.exception_timeout(Duration::ZERO).map(|e| e.is_some()), Err(ExceptionTimeoutError::Timeout));
/// f.cancel();
/// assert_eq!(f.exception_timeout(Duration::ZERO).map(|e| e.is_some()), Err(ExceptionTimeoutError::Cancelled));
/// # Ok::<(), shmproc::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExceptionTimeoutError {
    /// The task was not done when this wait ran out (it goes on; ask
    /// again later). Python: `TimeoutError`.
    Timeout,
    /// The future was cancelled. Python: `CancelledError`.
    Cancelled,
}

impl ExceptionTimeoutError {
    fn to_error(self) -> Error {
        match self {
            ExceptionTimeoutError::Timeout => Error::Timeout,
            ExceptionTimeoutError::Cancelled => Error::Cancelled,
        }
    }
}

impl fmt::Display for ExceptionTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.to_error(), f)
    }
}

impl std::error::Error for ExceptionTimeoutError {}

impl From<ExceptionTimeoutError> for Error {
    fn from(e: ExceptionTimeoutError) -> Error {
        e.to_error()
    }
}

impl From<Cancelled> for ExceptionTimeoutError {
    fn from(_: Cancelled) -> ExceptionTimeoutError {
        ExceptionTimeoutError::Cancelled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_converts_and_prints() {
        let failures = [
            Failure::Panicked { pid: 1, message: "boom".into() },
            Failure::WorkerDied { pid: 1, signal: Some(9), code: None },
            Failure::TimedOut { pid: 1, limit: Duration::from_secs(1) },
            Failure::Cancelled,
            Failure::Closed,
            Failure::Broken("init".into()),
            Failure::CallbackPanicked("cb".into()),
            Failure::Interrupted,
            Failure::Codec("bad".into()),
            Failure::TaskError("odd".into()),
            Failure::InputPanicked("input".into()),
        ];
        for f in &failures {
            let e = TaskError::from_failure(f);
            let t = TaskTimeoutError::from(TaskError::from_failure(f));
            assert_eq!(e.to_string(), f.error().to_string());
            assert_eq!(t.to_string(), f.error().to_string());
            assert_eq!(format!("{:?}", Error::from(e)), format!("{:?}", f.error()));
            assert_eq!(
                format!("{:?}", Error::from(TaskTimeoutError::from(TaskError::from_failure(f)))),
                format!("{:?}", f.error())
            );
            assert_eq!(std::error::Error::source(&t).is_some(), matches!(t, TaskTimeoutError::Failed(_)));
        }
        assert!(matches!(Error::from(TaskTimeoutError::Timeout), Error::Timeout));
        assert_eq!(TaskTimeoutError::Timeout.to_string(), "timed out");
        for e in [PoolJoinError::Running, PoolJoinError::InCallback, PoolJoinError::Interrupted] {
            assert_eq!(e.to_string(), Error::from(e).to_string());
        }
        assert!(matches!(Error::from(Cancelled), Error::Cancelled));
        assert_eq!(Cancelled.to_string(), Error::Cancelled.to_string());
        assert_eq!(ExceptionTimeoutError::from(Cancelled), ExceptionTimeoutError::Cancelled);
        for (e, want) in
            [(ExceptionTimeoutError::Timeout, Error::Timeout), (ExceptionTimeoutError::Cancelled, Error::Cancelled)]
        {
            assert_eq!(e.to_string(), want.to_string());
            assert_eq!(format!("{:?}", Error::from(e)), format!("{want:?}"));
        }
    }
}
