//! The errors of [`Process::join`](crate::Process::join) and its bounded
//! twins: why a child gave no result. Each converts into [`Error`] (a child
//! that ended without a result becomes [`Error::ProcessFailed`]), so `?`
//! works in functions returning [`crate::Result`].

use std::fmt;

use crate::error::{Error, ProcessFailure};

/// The variants [`JoinError`] and [`JoinTimeoutError`] share, with their
/// Display, `std::error::Error` (the source of `Failed` is its error) and
/// the conversion into [`Error`].
macro_rules! join_errors {
    ($(#[$meta:meta])* $ty:ident { $($(#[$vm:meta])* $var:ident => $err:expr,)* }) => {
        $(#[$meta])*
        #[derive(Debug)]
        #[non_exhaustive]
        pub enum $ty {
            $($(#[$vm])* $var,)*
            /// The child panicked; no result came back.
            Panicked {
                /// The child's pid.
                pid: u32,
                /// The child's name.
                name: String,
                /// The panic message (with its location).
                message: String,
            },
            /// The child was killed by this signal (by
            /// [`kill`](crate::Process::kill), [`terminate`](crate::Process::terminate),
            /// the OOM killer, a crash, ...).
            Signaled {
                /// The child's pid.
                pid: u32,
                /// The child's name.
                name: String,
                /// The signal number (9 is SIGKILL, 15 SIGTERM).
                signal: i32,
            },
            /// The child exited with this code before returning a result
            /// (its function called `std::process::exit`, or returned but
            /// the result was lost: the code may then be 0).
            Exited {
                /// The child's pid.
                pid: u32,
                /// The child's name.
                name: String,
                /// The exit code.
                code: i32,
            },
            /// The child's task could not run: its argument did not decode,
            /// its result did not encode or was too large to return, its
            /// function was not found in the child, or the child exited
            /// before reaching its task (see its stderr).
            CouldNotRun {
                /// The child's pid.
                pid: u32,
                /// The child's name.
                name: String,
                /// What went wrong, in the child's words.
                reason: String,
            },
            /// Anything else: the result did not decode as an `R` here
            /// ([`Error::Codec`]), the result could not be read
            /// ([`Error::Corrupt`], a spilled result gone), or the OS
            /// refused to wait for the child ([`Error::Os`]).
            Failed(Error),
        }

        impl $ty {
            /// The child's failure as [`Error::ProcessFailed`], or the
            /// error inside `Failed`.
            fn into_error(self) -> Error {
                let failed = |pid, name, failure| Error::ProcessFailed { pid, name, failure };
                match self {
                    $($ty::$var => $err,)*
                    $ty::Panicked { pid, name, message } => failed(pid, name, ProcessFailure::Panicked(message)),
                    $ty::Signaled { pid, name, signal } => failed(pid, name, ProcessFailure::Signaled(signal)),
                    $ty::Exited { pid, name, code } => failed(pid, name, ProcessFailure::Exited(code)),
                    $ty::CouldNotRun { pid, name, reason } => failed(pid, name, ProcessFailure::TaskError(reason)),
                    $ty::Failed(e) => e,
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let failed = |pid: &u32, name: &str, failure| Error::ProcessFailed { pid: *pid, name: name.to_owned(), failure };
                match self {
                    $($ty::$var => fmt::Display::fmt(&$err, f),)*
                    $ty::Panicked { pid, name, message } => {
                        fmt::Display::fmt(&failed(pid, name, ProcessFailure::Panicked(message.clone())), f)
                    }
                    $ty::Signaled { pid, name, signal } => {
                        fmt::Display::fmt(&failed(pid, name, ProcessFailure::Signaled(*signal)), f)
                    }
                    $ty::Exited { pid, name, code } => fmt::Display::fmt(&failed(pid, name, ProcessFailure::Exited(*code)), f),
                    $ty::CouldNotRun { pid, name, reason } => {
                        fmt::Display::fmt(&failed(pid, name, ProcessFailure::TaskError(reason.clone())), f)
                    }
                    $ty::Failed(e) => fmt::Display::fmt(e, f),
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
                e.into_error()
            }
        }
    };
}

join_errors! {
    /// Why [`Process::join`](crate::Process::join) returned no result.
    ///
    /// Converted into [`Error`], a child that ended without a result is
    /// [`Error::ProcessFailed`] (with a [`ProcessFailure`] saying how).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmproc::{JoinError, Process};
    ///
    /// fn fail(code: i32) {
    ///     std::process::exit(code)
    /// }
    /// let mut p = Process::spawn(fail, 3)?;
    /// assert!(matches!(p.join(), Err(JoinError::Exited { code: 3, .. })));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    JoinError {}
}

join_errors! {
    /// Why [`Process::join_timeout`](crate::Process::join_timeout) or
    /// `join_deadline` returned no result: [`JoinError`]'s cases and
    /// [`Timeout`](JoinTimeoutError::Timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmproc::{JoinTimeoutError, Process};
    /// use std::time::Duration;
    ///
    /// fn sleep(ms: u64) {
    ///     std::thread::sleep(Duration::from_millis(ms))
    /// }
    /// let mut p = Process::spawn(sleep, 60_000)?;
    /// assert!(matches!(p.join_timeout(Duration::ZERO), Err(JoinTimeoutError::Timeout)));
    /// p.kill()?;
    /// assert!(matches!(p.join_timeout(Duration::MAX), Err(JoinTimeoutError::Signaled { signal: 9, .. })));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    JoinTimeoutError {
        /// The child was still running when the time ran out (it goes on;
        /// join again later). Python's `join(timeout)` returns `None` then.
        Timeout => Error::Timeout,
    }
}

/// Why [`Process::close`](crate::Process::close) refused: the child is
/// still running. The handle comes back inside, unchanged (join, kill or
/// terminate it, then close it again).
///
/// Converted into [`Error`], it is [`Error::InvalidArgument`] (Python's
/// `close()` raises `ValueError` then).
///
/// # Examples
///
/// ```
/// use shmproc::{CloseError, Process};
///
/// fn sleep(ms: u64) {
///     std::thread::sleep(std::time::Duration::from_millis(ms))
/// }
/// let p = Process::spawn(sleep, 60_000)?;
/// let err = p.close().expect_err("still running");
/// assert!(matches!(err, CloseError::Running(_)));
/// let mut p = err.into_inner();
/// p.kill()?;
/// let _ = p.join();
/// p.close()?;
/// # Ok::<(), shmproc::Error>(())
/// ```
#[must_use = "the process handle is inside the error"]
#[non_exhaustive]
pub enum CloseError<R> {
    /// The child has not exited: here is its handle back.
    Running(crate::Process<R>),
}

impl<R> CloseError<R> {
    /// The handle that was not closed.
    ///
    /// # Examples
    ///
    /// ```
    /// fn sleep(ms: u64) {
    ///     std::thread::sleep(std::time::Duration::from_millis(ms))
    /// }
    /// let p = shmproc::Process::spawn(sleep, 60_000)?;
    /// let p = p.close().expect_err("running").into_inner();
    /// p.kill()?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn into_inner(self) -> crate::Process<R> {
        match self {
            CloseError::Running(p) => p,
        }
    }
}

impl<R> fmt::Debug for CloseError<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseError::Running(p) => f.debug_tuple("Running").field(p).finish(),
        }
    }
}

impl<R> fmt::Display for CloseError<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseError::Running(p) => {
                write!(f, "cannot close process {} (pid {}): it is still running", p.name(), p.pid())
            }
        }
    }
}

impl<R> std::error::Error for CloseError<R> {}

impl<R> From<CloseError<R>> for Error {
    fn from(e: CloseError<R>) -> Error {
        match e {
            CloseError::Running(_) => {
                Error::InvalidArgument { what: "cannot close a process that is still running (join it first)" }
            }
        }
    }
}

impl JoinError {
    /// The error for a child that ended with `failure`.
    pub(crate) fn from_failure(pid: u32, name: String, failure: ProcessFailure) -> Self {
        match failure {
            ProcessFailure::Panicked(message) => JoinError::Panicked { pid, name, message },
            ProcessFailure::Signaled(signal) => JoinError::Signaled { pid, name, signal },
            ProcessFailure::Exited(code) => JoinError::Exited { pid, name, code },
            ProcessFailure::TaskError(reason) => JoinError::CouldNotRun { pid, name, reason },
        }
    }
}

impl From<JoinError> for JoinTimeoutError {
    fn from(e: JoinError) -> JoinTimeoutError {
        match e {
            JoinError::Panicked { pid, name, message } => JoinTimeoutError::Panicked { pid, name, message },
            JoinError::Signaled { pid, name, signal } => JoinTimeoutError::Signaled { pid, name, signal },
            JoinError::Exited { pid, name, code } => JoinTimeoutError::Exited { pid, name, code },
            JoinError::CouldNotRun { pid, name, reason } => JoinTimeoutError::CouldNotRun { pid, name, reason },
            JoinError::Failed(e) => JoinTimeoutError::Failed(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_converts_and_prints() {
        let name = || "w".to_owned();
        let cases = [
            (JoinError::Panicked { pid: 1, name: name(), message: "boom".into() }, "panicked: boom"),
            (JoinError::Signaled { pid: 1, name: name(), signal: 9 }, "SIGKILL"),
            (JoinError::Exited { pid: 1, name: name(), code: 3 }, "code 3"),
            (JoinError::CouldNotRun { pid: 1, name: name(), reason: "gone".into() }, "could not run: gone"),
        ];
        for (e, text) in cases {
            assert!(e.to_string().contains(text), "{e}");
            let t = JoinTimeoutError::from(e);
            assert!(t.to_string().contains(text), "{t}");
            assert!(matches!(Error::from(t), Error::ProcessFailed { pid: 1, .. }));
        }
        let e = JoinError::Failed(Error::Codec { message: "bad".into() });
        assert!(std::error::Error::source(&e).is_some());
        assert!(matches!(Error::from(JoinTimeoutError::from(e)), Error::Codec { .. }));
        assert!(matches!(Error::from(JoinTimeoutError::Timeout), Error::Timeout));
        assert_eq!(JoinTimeoutError::Timeout.to_string(), "timed out");
    }
}
