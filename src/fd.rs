//! Descriptors inside encoded values: the serde `with` module for fields of
//! `OwnedFd`, `File`, `TcpStream`, `TcpListener`, `UnixStream` and
//! `UnixListener` (any `T: AsFd + From<OwnedFd>`), beside the wrapper
//! [`Fd`].
//!
//! ```
//! use std::net::{TcpListener, TcpStream};
//! use std::io::{Read, Write};
//!
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Job {
//!     id: u32,
//!     #[serde(with = "shmproc::fd")]
//!     conn: TcpStream,
//! }
//!
//! fn serve(job: Job) -> u32 {
//!     let mut conn = job.conn;
//!     let mut b = [0u8; 4];
//!     conn.read_exact(&mut b).expect("read");
//!     conn.write_all(&b).expect("echo");
//!     job.id
//! }
//!
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let mut client = TcpStream::connect(listener.local_addr()?)?;
//! let (conn, _) = listener.accept()?;
//! let mut p = shmproc::Process::spawn(serve, Job { id: 7, conn })?;
//! client.write_all(b"ping")?;
//! let mut b = [0u8; 4];
//! client.read_exact(&mut b)?;
//! assert_eq!(&b, b"ping");
//! assert_eq!(p.join()?, 7);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Where descriptors travel
//!
//! Inside a `Queue`/`JoinableQueue` item, a typed channel's message and a
//! `Pipe` message (blocking, `try_`/timed and `*_async` sends: a socket
//! pair made with the channel carries them beside the item); in a `Process` argument and
//! result (`Process<Fd<File>>`); and in `Pool` and `ProcessPoolExecutor`
//! task arguments and results (`apply*`, `map*`, `imap*`, `submit`: the
//! pool's task and result queues carry them the same way; the example
//! `echo_server` hands each accepted connection to a pool worker). A
//! result holding descriptors goes to the first `join` or `get` (or
//! callback) only: the descriptors have one owner, so a later call fails
//! with [`Error::InvalidArgument`](crate::Error::InvalidArgument).
//! Encoding one anywhere else (a channel opened by name from an unrelated
//! process, a `Manager`) is an
//! [`Error::Codec`](crate::Error::Codec) that says so.
//!
//! One message (one item, one pool record: the items of a map's chunk, or
//! their results) carries at most 253 descriptors, the kernel's limit for
//! one send; a map's chunk ends early once its arguments hold 64, so its
//! results have room too. An item past the limit fails with
//! [`Error::Codec`](crate::Error::Codec) naming it.
//!
//! Encoding duplicates the descriptor (`dup`): the sender keeps its own and
//! closes it when it likes. The receiver gets a new, close-on-exec
//! descriptor for the same open file (the same socket, the same file
//! offset).
//!
//! # How many may be in flight
//!
//! Descriptors sent through a channel and not yet received are "in
//! flight": the kernel bounds them per channel (its socket's buffer, a few
//! hundred items by default) and per user (about `RLIMIT_NOFILE`). A put
//! beyond either waits as a put to a full queue does (`try_` puts give the
//! item back as `Full`, timed ones time out) until receivers take items.

use std::os::fd::{AsFd, OwnedFd};

use serde::{Deserializer, Serializer};

use crate::shm::handoff;

/// Serializes a descriptor-holding field (`#[serde(with = "shmproc::fd")]`).
///
/// # Examples
///
/// ```
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Log {
///     #[serde(with = "shmproc::fd")]
///     file: std::fs::File,
/// }
/// let q = shmproc::Queue::<Log>::new(0)?;
/// q.put(Log { file: tempfile_like()? })?;
/// let got = q.get()?;
/// assert!(got.file.metadata()?.is_file());
/// # fn tempfile_like() -> std::io::Result<std::fs::File> { std::fs::File::open("/proc/self/exe") }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// Outside a message, argument or result that carries descriptors (see the
/// module docs), or if `dup` fails.
pub fn serialize<T: AsFd, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    handoff::serialize_plain(value.as_fd(), s)
}

/// Deserializes a descriptor-holding field (`#[serde(with = "shmproc::fd")]`).
///
/// # Examples
///
/// ```
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Conn {
///     #[serde(with = "shmproc::fd")]
///     fd: std::os::fd::OwnedFd,
/// }
/// let (tx, rx) = shmproc::channel::<Conn>(1)?;
/// let f = std::fs::File::open("/proc/self/exe")?;
/// tx.send(Conn { fd: f.into() })?;
/// let got: std::fs::File = rx.recv()?.fd.into();
/// assert!(got.metadata()?.len() > 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// Where the value was not sent with its descriptors (a message decoded
/// elsewhere, bytes made by hand).
pub fn deserialize<'de, T: From<OwnedFd>, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
    handoff::deserialize_plain(d).map(T::from)
}

/// A descriptor-holding value that travels inside encoded values: an
/// `OwnedFd`, `File`, `TcpStream`, `TcpListener`, `UnixStream`,
/// `UnixListener`, or any `T: AsFd + From<OwnedFd>` (Python pickles
/// sockets and files through `multiprocessing.reduction`).
///
/// Encoding duplicates the descriptor (the sender keeps its own); the
/// receiver gets a new close-on-exec descriptor for the same open file.
/// Descriptors travel in queue, channel and pipe messages and in process
/// arguments and results (see [`shmproc::fd`](crate::fd)); elsewhere
/// encoding one is an [`Error::Codec`](crate::Error::Codec).
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
/// use std::net::{TcpListener, TcpStream};
/// use shmproc::Fd;
///
/// fn accept_one(l: Fd<TcpListener>) {
///     let (mut conn, _) = l.accept().expect("accept");
///     conn.write_all(b"hi").expect("write");
/// }
///
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let addr = listener.local_addr()?;
/// let mut p = shmproc::Process::spawn(accept_one, Fd::new(listener))?;
/// let mut c = TcpStream::connect(addr)?;
/// let mut b = [0u8; 2];
/// c.read_exact(&mut b)?;
/// assert_eq!(&b, b"hi");
/// p.join()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Fd<T>(T);

impl<T> Fd<T> {
    /// Wraps `value`.
    ///
    /// # Examples
    ///
    /// ```
    /// let f = shmproc::Fd::new(std::fs::File::open("/proc/self/exe")?);
    /// assert!(f.metadata()?.is_file());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(value: T) -> Fd<T> {
        Fd(value)
    }

    /// The wrapped value.
    ///
    /// # Examples
    ///
    /// ```
    /// let f: std::fs::File = shmproc::Fd::new(std::fs::File::open("/proc/self/exe")?).into_inner();
    /// # drop(f);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> From<T> for Fd<T> {
    fn from(value: T) -> Fd<T> {
        Fd(value)
    }
}

impl<T> std::ops::Deref for Fd<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> std::ops::DerefMut for Fd<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T: AsFd> AsFd for Fd<T> {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl<T: AsFd> serde::Serialize for Fd<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize(&self.0, s)
    }
}

impl<'de, T: From<OwnedFd>> serde::Deserialize<'de> for Fd<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Fd<T>, D::Error> {
        deserialize(d).map(Fd)
    }
}
