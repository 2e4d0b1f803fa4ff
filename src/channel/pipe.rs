//! `Pipe` and `Connection`: Python's `multiprocessing.Pipe` over shared
//! memory.
//!
//! One segment (kind PIPE) holds one direction (simplex) or two (duplex).
//! Each direction is a lane of the channel engine ([`lane`](super::lane):
//! [`LaneWords`] plus a buffer), with its eventcounts and its two robust
//! locks (one sender, one receiver at a time: any number of threads and
//! processes may hold clones of an end). Each end has a closed flag and a
//! registry of the processes that hold it ([`EndWords`]). Spill segments
//! are recorded as the pipe segment's creator's (its header holds the
//! token).
//!
//! | offset in the payload | what |
//! |---|---|
//! | 0 | capacity of each direction's buffer (`u64`) |
//! | 8 | number of directions: 2 duplex, 1 simplex (`u64`) |
//! | [`END_OFF`] | end 0's and end 1's [`EndWords`] |
//! | [`LANE_OFF`] | direction 0's and 1's [`LaneWords`] |
//! | [`BUF_OFF`] | direction 0's buffer, then direction 1's |
//!
//! Duplex: end 0 sends on direction 0 and receives on 1; end 1 the other
//! way round. Simplex: end 0 is the reader and end 1 the writer of
//! direction 0 (Python's order: `r, w = Pipe(duplex=False)`).
//!
//! What a pipe adds to the engine ([`Ends`]): closing one end makes the
//! other's sends fail (`BrokenPipe`) and its receives end once drained
//! (`Disconnected`), and so does the death of every holder of the other
//! end; a send to a pipe whose other end is gone fails even while there is
//! room (nobody will read it), asked at most every few milliseconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32 as StdAtomicU32, AtomicU64 as StdAtomicU64, Ordering as StdOrdering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::channel::error::{
    RecvError, RecvIntoError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};
use crate::channel::lane::{Ends, Lane, LaneWords, Stop, Wait, Woke};
use crate::channel::post::{self, Post};
use crate::codec;
use crate::error::{Error, Result};
use crate::loom::atomic::{AtomicU32, Ordering};
use crate::owner::registry::{self, Dead, Peers, RawRegistry};
use crate::queue::bytes::check_capacity;
use crate::shm::handoff;
use crate::shm::header::kind;
use crate::shm::layout::{ShmSafe, layout_hash_mix};
use crate::shm::segment::Segment;
use crate::shm::typed::Placed;
use std::os::fd::OwnedFd;

const fn round128(n: usize) -> usize {
    n.div_ceil(128) * 128
}

const END_SIZE: usize = round128(core::mem::size_of::<EndWords>());
const LANE_SIZE: usize = core::mem::size_of::<LaneWords>();
/// Payload offsets of the two ends' words.
const END_OFF: [usize; 2] = [128, 128 + END_SIZE];
/// Payload offsets of the two directions' words.
const LANE_OFF: [usize; 2] = [128 + 2 * END_SIZE, 128 + 2 * END_SIZE + LANE_SIZE];
/// Payload offset of the first buffer.
const BUF_OFF: usize = (LANE_OFF[1] + LANE_SIZE).next_multiple_of(4096);

/// Payload offsets of a pipe's words, for read-only inspection
/// (`shmproc::inspect` reads them with `pread`, never maps).
#[cfg(feature = "inspect")]
pub(crate) mod peek {
    /// Buffer bytes per direction (`u64`).
    pub(crate) const CAPACITY: usize = 0;
    /// Number of directions: 2 duplex, 1 simplex (`u64`).
    pub(crate) const DIRECTIONS: usize = 8;
    /// The two ends' `EndWords`.
    pub(crate) const END_OFF: [usize; 2] = super::END_OFF;
    /// The two directions' `LaneWords`.
    pub(crate) const LANE_OFF: [usize; 2] = super::LANE_OFF;
}

const PIPE_HASH: u64 = layout_hash_mix(
    layout_hash_mix(layout_hash_mix(EndWords::LAYOUT_HASH, LaneWords::LAYOUT_HASH), BUF_OFF as u64),
    0x5049_5045, // "PIPE"
);

/// The smallest buffer per direction: a spill reference (up to 104 bytes)
/// must fit in one message.
const MIN_CAPACITY: usize = 256;
/// The default buffer per direction (an OS pipe's default too).
const DEFAULT_CAPACITY: usize = 64 * 1024;

/// Python's `multiprocessing.Pipe`: makes the two [`Connection`]s of a new
/// pipe over shared memory.
///
/// `Pipe::new()` is duplex (both ends send and receive); [`Pipe::simplex`]
/// is one way. Messages are whole (never split or merged), of any size
/// (those above the pipe's buffer travel through a spill segment of their
/// own), and arrive in order. An end may be cloned, shared by threads and
/// passed to child processes (as an argument of
/// [`Process::spawn`](crate::Process::spawn), or by opening a named pipe).
///
/// No OS pipe is involved: a send to a pipe whose other end is closed or
/// whose holders all died returns [`Error::BrokenPipe`], and the process is
/// never sent `SIGPIPE`.
///
/// # Examples
///
/// ```
/// use shmproc::{Connection, Pipe};
///
/// fn child(conn: Connection) {
///     let question: String = conn.recv().expect("a question");
///     conn.send(&(question.len(), "pong")).expect("the answer");
/// }
///
/// let (parent, child_end) = Pipe::new()?;
/// let mut p = shmproc::Process::spawn(child, child_end)?;
/// parent.send(&"ping".to_string())?;
/// let answer: (usize, String) = parent.recv()?;
/// assert_eq!(answer, (4, "pong".to_string()));
/// p.join()?;
/// # Ok::<(), shmproc::Error>(())
/// ```
///
/// Python: `a, b = Pipe()`; `r, w = Pipe(duplex=False)` is
/// [`Pipe::simplex`]. Differences: the buffer is shared memory (64 KiB per
/// direction by default, see [`Pipe::builder`]), and a handle's drop does
/// not close its end (copies may live on in other processes): call
/// [`Connection::close`], or let the holders exit.
#[derive(Debug)]
#[non_exhaustive]
pub struct Pipe;

impl Pipe {
    /// A duplex pipe: two connected ends, each can send and receive.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = shmproc::Pipe::new()?;
    /// a.send(&1u32)?;
    /// b.send(&2u32)?;
    /// assert_eq!(b.recv::<u32>()?, 1);
    /// assert_eq!(a.recv::<u32>()?, 2);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`Segment::anonymous`].
    #[allow(clippy::new_ret_no_self)] // Python's `Pipe()` makes a pair
    pub fn new() -> Result<(Connection, Connection)> {
        Pipe::builder().duplex()
    }

    /// A one-way pipe: `(reader, writer)`, in Python's order.
    ///
    /// # Examples
    ///
    /// ```
    /// let (r, w) = shmproc::Pipe::simplex()?;
    /// w.send_bytes(b"one way")?;
    /// assert_eq!(r.recv_bytes()?, b"one way");
    /// assert!(r.readable() && !r.writable());
    /// assert!(matches!(r.send_bytes(b"no"), Err(shmproc::SendError::Failed((), shmproc::Error::InvalidArgument { .. }))));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`Segment::anonymous`].
    #[doc(alias = "duplex")]
    pub fn simplex() -> Result<(Connection, Connection)> {
        Pipe::builder().simplex()
    }

    /// Options: buffer capacity, a name.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = shmproc::Pipe::builder().capacity(1 << 20).duplex()?;
    /// assert_eq!(a.max_message(), (1 << 19) - 8);
    /// # drop(b);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn builder() -> PipeBuilder {
        PipeBuilder { capacity: DEFAULT_CAPACITY, name: None }
    }

    /// Opens a pipe made with [`PipeBuilder::name`], from any process:
    /// both ends, in the order they were made.
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-pipe-open-{}", std::process::id());
    /// let (a, _b) = shmproc::Pipe::builder().name(&name).duplex()?;
    /// let (_a2, b2) = shmproc::Pipe::open(&name)?; // typically in another process
    /// a.send_bytes(b"hi")?;
    /// assert_eq!(b2.recv_bytes()?, b"hi");
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`Segment::open`]; [`Error::KindMismatch`] or
    /// [`Error::LayoutMismatch`] if the name holds something else;
    /// [`Error::Corrupt`] if its words make no sense.
    pub fn open(name: &str) -> Result<(Connection, Connection)> {
        // No socket pair: this process did not make the pipe (see `post.rs`).
        ends(Segment::builder().name(name).typed(kind::PIPE, PIPE_HASH).open()?, None)
    }
}

/// Options for a new pipe (from [`Pipe::builder`]).
///
/// # Examples
///
/// ```
/// let (r, w) = shmproc::Pipe::builder().capacity(4096).simplex()?;
/// w.send(&vec![0u8; 10_000])?; // larger than the buffer: spilled
/// assert_eq!(r.recv::<Vec<u8>>()?.len(), 10_000);
/// # Ok::<(), shmproc::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct PipeBuilder {
    capacity: usize,
    name: Option<String>,
}

impl PipeBuilder {
    /// Buffer bytes per direction: a power of two from 256 bytes to 4 GiB
    /// (default 64 KiB). Messages up to `capacity / 2 - 8` bytes (encoded)
    /// travel inline; larger ones through a spill segment each.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, _b) = shmproc::Pipe::builder().capacity(256).duplex()?;
    /// assert_eq!(a.max_message(), 120);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn capacity(mut self, bytes: usize) -> Self {
        self.capacity = bytes;
        self
    }

    /// Creates the pipe under `name`, so that unrelated processes can
    /// [`Pipe::open`] it. The name goes when the creating process drops its
    /// last handle.
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-pipe-name-{}", std::process::id());
    /// let (a, b) = shmproc::Pipe::builder().name(&name).duplex()?;
    /// assert!(shmproc::Pipe::open(&name).is_ok());
    /// drop((a, b));
    /// assert!(shmproc::Pipe::open(&name).is_err());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// Makes a duplex pipe.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = shmproc::Pipe::builder().duplex()?;
    /// assert!(a.readable() && a.writable() && b.readable() && b.writable());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a bad capacity; as for
    /// [`Segment::anonymous`] or [`Segment::create`].
    pub fn duplex(self) -> Result<(Connection, Connection)> {
        self.build(2)
    }

    /// Makes a one-way pipe: `(reader, writer)`.
    ///
    /// # Examples
    ///
    /// ```
    /// let (r, w) = shmproc::Pipe::builder().simplex()?;
    /// assert!(r.readable() && w.writable());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`duplex`](PipeBuilder::duplex).
    pub fn simplex(self) -> Result<(Connection, Connection)> {
        self.build(1)
    }

    fn build(self, lanes: u64) -> Result<(Connection, Connection)> {
        let cap = check_capacity(self.capacity)?;
        if self.capacity < MIN_CAPACITY {
            return Err(Error::InvalidArgument { what: "pipe capacity must be at least 256 bytes" });
        }
        let size = (self.capacity)
            .checked_mul(lanes as usize)
            .and_then(|b| b.checked_add(BUF_OFF))
            .ok_or_else(|| Error::InvalidArgument { what: "pipe too large for this platform" })?;
        // The creator's token goes into the segment's header (anonymous
        // pipes too): spill segments are recorded under it.
        let me = crate::owner::token::current().map_err(|e| Error::os("create liveness token", e))?;
        let builder = Segment::builder().size(size).typed(kind::PIPE, PIPE_HASH).on_behalf_of(me);
        let init = |s: &Segment| {
            s.typed_in::<StdAtomicU64>(0)?.store(cap, StdOrdering::Relaxed);
            s.typed_in::<StdAtomicU64>(8)?.store(lanes, StdOrdering::Relaxed);
            Ok(())
        };
        let seg = match &self.name {
            Some(n) => builder.name(n).create_with(init)?,
            None => builder.anonymous_with(init)?,
        };
        ends(seg, Some(Post::new()?))
    }
}

/// Both ends of the pipe in `seg`, with the socket pair for descriptors.
fn ends(seg: Segment, post: Option<Post>) -> Result<(Connection, Connection)> {
    Ok((Connection::wrap(&seg, 0, post.clone())?, Connection::wrap(&seg, 1, post)?))
}

struct Inner {
    seg: Segment,
    /// 0 or 1.
    end: usize,
    tx: Option<Lane>,
    rx: Option<Lane>,
    me: Placed<EndWords>,
    peer: Placed<EndWords>,
    /// The process id (as in the registry) this handle registered for, or 0.
    registered: StdAtomicU32,
    /// The socket pair that carries descriptors (see `post.rs`); none for
    /// an end opened by name.
    post: Option<Post>,
}

/// A pipe end's view for the channel engine.
impl Ends for Inner {
    const SEND_NEEDS_RECEIVER: bool = true;
    const PROBE_BEFORE_SLEEP: bool = true;

    fn send_stop(&self) -> Option<Stop> {
        if self.closed() {
            Some(Stop::Closed)
        } else if self.peer_closed() {
            Some(Stop::Disconnected)
        } else {
            None
        }
    }

    fn recv_stop(&self) -> Option<Stop> {
        self.closed().then_some(Stop::Closed)
    }

    fn drained_stop(&self) -> Option<Stop> {
        self.peer_closed().then_some(Stop::Disconnected)
    }

    fn receivers_gone(&self) -> bool {
        self.peer_gone()
    }

    fn senders_gone(&self) -> bool {
        self.peer_gone()
    }
}

impl Inner {
    fn closed(&self) -> bool {
        self.me.closed.load(Ordering::Relaxed) != 0
    }

    /// Whether the other end was closed.
    fn peer_closed(&self) -> bool {
        // Acquire: pairs with the Release store in `close`, which follows
        // the closer's last send.
        self.peer.closed.load(Ordering::Acquire) != 0
    }

    /// Whether the OS confirms every registered holder of the other end
    /// dead (system calls: one probe per registered process).
    fn peer_gone(&self) -> bool {
        self.peer.holders.peers(|_| {}) == Peers::AllDead
    }
}

/// One end of a [`Pipe`] (Python: `multiprocessing.connection.Connection`).
///
/// A cheap [`Clone`] handle to the end (clones share it: any number of
/// threads and processes may send and receive through it; each message is
/// delivered to exactly one receiver). It serializes, so it can be an
/// argument of a child process.
///
/// A process counts as a holder of an end from its first use of it, or
/// from the moment it received a handle to it as an argument; when the OS
/// confirms every holder of the other end dead, or that end was
/// [`close`](Connection::close)d, [`recv`](Connection::recv) returns
/// [`Error::Disconnected`] once the pipe is drained and
/// [`send`](Connection::send) returns [`Error::BrokenPipe`]. No call waits
/// forever on a dead peer, and no `SIGPIPE` is ever raised.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let (a, b) = shmproc::Pipe::new()?;
/// let t = std::thread::spawn(move || {
///     while let Ok(n) = b.recv::<u64>() {
///         b.send(&(n * 2)).expect("reply");
///     }
/// });
/// for n in 0..10u64 {
///     a.send(&n)?;
///     assert_eq!(a.recv::<u64>()?, n * 2);
/// }
/// assert!(!a.poll(Duration::from_millis(1))?);
/// a.close(); // b's recv now reports Disconnected, and the thread ends
/// t.join().expect("thread");
/// # Ok::<(), shmproc::Error>(())
/// ```
#[derive(Clone)]
pub struct Connection {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("end", &self.inner.end)
            .field("readable", &self.readable())
            .field("writable", &self.writable())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Connection {
    fn wrap(seg: &Segment, end: usize, post: Option<Post>) -> Result<Connection> {
        let corrupt = Error::Corrupt { what: "pipe header" };
        let cap = seg.typed_in::<StdAtomicU64>(0)?.load(StdOrdering::Relaxed);
        let lanes = seg.typed_in::<StdAtomicU64>(8)?.load(StdOrdering::Relaxed);
        if !(1..=2).contains(&lanes) || cap < MIN_CAPACITY as u64 || !cap.is_power_of_two() {
            return Err(corrupt);
        }
        let lane = |i: usize| -> Result<Lane> {
            let off = usize::try_from(cap).ok().and_then(|c| c.checked_mul(i)).and_then(|o| o.checked_add(BUF_OFF));
            let lane =
                Lane::new(seg, LANE_OFF[i], off.ok_or_else(|| Error::Corrupt { what: "pipe capacity" })?, cap, 0)?;
            // Lane i sends on end i of the pair and receives on the other.
            Ok(lane.with_post(post.as_ref().map(|p| p.lane(i))))
        };
        let (tx, rx) = match (lanes, end) {
            (2, 0) => (Some(lane(0)?), Some(lane(1)?)),
            (2, _) => (Some(lane(1)?), Some(lane(0)?)),
            (_, 0) => (None, Some(lane(0)?)),
            _ => (Some(lane(0)?), None),
        };
        Ok(Connection {
            inner: Arc::new(Inner {
                seg: seg.clone(),
                end,
                tx,
                rx,
                me: Placed::new(seg, END_OFF[end])?,
                peer: Placed::new(seg, END_OFF[1 - end])?,
                registered: StdAtomicU32::new(0),
                post,
            }),
        })
    }

    /// Registers this process as a holder of this end (once per process).
    #[inline]
    fn register(&self) -> Result<()> {
        let (me, _) = registry::process_id().map_err(|e| Error::os("liveness token", e))?;
        if self.inner.registered.load(StdOrdering::Relaxed) != me {
            self.register_slow(me)?;
        }
        Ok(())
    }

    #[cold]
    fn register_slow(&self, me: u32) -> Result<()> {
        // `None` (the table is full of live processes) still works: this
        // process's death just goes unnoticed by the other end.
        self.inner.me.holders.register(Dead::Reuse(&|_| {})).map_err(|e| Error::os("liveness token", e))?;
        self.inner.registered.store(me, StdOrdering::Relaxed);
        Ok(())
    }

    fn tx(&self) -> Result<&Lane> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        self.inner
            .tx
            .as_ref()
            .ok_or_else(|| Error::InvalidArgument { what: "this end of a simplex pipe only receives" })
    }

    fn rx(&self) -> Result<&Lane> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        self.inner.rx.as_ref().ok_or_else(|| Error::InvalidArgument { what: "this end of a simplex pipe only sends" })
    }

    /// Sends `msg` whole (spilled if larger than the buffer allows).
    fn send_stop(&self, msg: &[u8], wait: Wait) -> Result<(), Stop> {
        let lane = self.tx().map_err(|e| if matches!(e, Error::Closed) { Stop::Closed } else { Stop::Failed(e) })?;
        self.register()?;
        lane.send_message(msg, wait, &*self.inner)
    }

    /// Encodes `value` and sends it, with the descriptors and anonymous
    /// handles it holds (see `post.rs`).
    fn send_value<V: Serialize + ?Sized>(&self, value: &V, wait: Wait) -> Result<(), Stop> {
        if self.inner.post.is_none() {
            return codec::encode(value).map_err(Stop::Failed).and_then(|msg| self.send_stop(&msg, wait));
        }
        let (msg, fds, undo) = handoff::encoding_message(|| codec::encode(value));
        let out = msg.map_err(Stop::Failed).and_then(|msg| {
            let lane =
                self.tx().map_err(|e| if matches!(e, Error::Closed) { Stop::Closed } else { Stop::Failed(e) })?;
            self.register()?;
            lane.send_parcel(&msg, &fds, wait, &*self.inner)
        });
        drop(fds);
        match out {
            Ok(()) => drop(undo),
            Err(_) => undo.run(),
        }
        out
    }

    /// Receives one message into `out`.
    /// The descriptors that came with it go to `fds`.
    fn recv_stop(&self, out: &mut Vec<u8>, wait: Wait, fds: &mut Vec<OwnedFd>) -> Result<(), Stop> {
        let lane = self.rx().map_err(|e| if matches!(e, Error::Closed) { Stop::Closed } else { Stop::Failed(e) })?;
        self.register()?;
        lane.recv_message(out, wait, &*self.inner, &mut |_| {}, fds)
    }

    /// Receives one message into a new `Vec`.
    fn recv_vec(&self, wait: Wait) -> Result<Vec<u8>, Stop> {
        let mut buf = Vec::new();
        // Raw bytes: descriptors that came with them are closed.
        self.recv_stop(&mut buf, wait, &mut Vec::new())?;
        Ok(buf)
    }

    /// Receives and decodes one message.
    fn recv_value<V: DeserializeOwned>(&self, wait: Wait) -> Result<V, Stop> {
        let mut buf = Vec::new();
        let mut fds = Vec::new();
        self.recv_stop(&mut buf, wait, &mut fds)?;
        handoff::with_fds(fds, || codec::decode(&buf)).map_err(Stop::Failed)
    }

    /// Sends `value`, encoded (serde + postcard); waits while the pipe is
    /// full.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = shmproc::Pipe::new()?;
    /// a.send(&("any", vec![1.5f64], Some(7u8)))?;
    /// let got: (String, Vec<f64>, Option<u8>) = b.recv()?;
    /// assert_eq!(got, ("any".to_string(), vec![1.5], Some(7)));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`SendError::Disconnected`] if the other end was closed or every
    /// holder of it died; [`SendError::Closed`] if this end was closed;
    /// [`SendError::Failed`] with [`Error::InvalidArgument`] on the reading
    /// end of a simplex pipe, [`Error::Codec`] if `value` cannot be
    /// encoded, [`Error::Corrupt`] if the pipe's shared words make no
    /// sense.
    pub fn send<V: Serialize + ?Sized>(&self, value: &V) -> Result<(), SendError> {
        self.send_value(value, Wait::Forever).map_err(|stop| SendError::from_stop((), stop))
    }

    /// Sends `value` if there is room now.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = shmproc::Pipe::new()?;
    /// a.try_send(&1u8)?;
    /// assert_eq!(b.recv::<u8>()?, 1);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`TrySendError::Full`] if there is no room now, and the cases of
    /// [`send`](Connection::send).
    pub fn try_send<V: Serialize + ?Sized>(&self, value: &V) -> Result<(), TrySendError> {
        self.send_value(value, Wait::No).map_err(|stop| TrySendError::from_stop((), stop))
    }

    /// As [`send`](Connection::send), waiting at most `timeout` for room
    /// (`Duration::MAX`: no limit).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let (a, _b) = shmproc::Pipe::builder().capacity(256).duplex()?;
    /// let msg = vec![0u8; 119]; // encoded: a length byte + 119 = 120; a 128-byte record: two fill 256
    /// a.send_timeout(&msg, Duration::from_millis(10))?;
    /// a.send_timeout(&msg, Duration::from_millis(10))?;
    /// let full = a.send_timeout(&msg, Duration::from_millis(10));
    /// assert!(matches!(full, Err(shmproc::SendTimeoutError::Timeout(_))));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`SendTimeoutError::Timeout`], and the cases of
    /// [`send`](Connection::send).
    pub fn send_timeout<V: Serialize + ?Sized>(&self, value: &V, timeout: Duration) -> Result<(), SendTimeoutError> {
        self.send_value(value, Wait::after(timeout)).map_err(|stop| SendTimeoutError::from_stop((), stop))
    }

    /// As [`send`](Connection::send), waiting until `deadline` at most.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = shmproc::Pipe::new()?;
    /// a.send_deadline("soon", std::time::Instant::now())?; // room: sent at once
    /// assert_eq!(b.recv::<String>()?, "soon");
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`send_timeout`](Connection::send_timeout).
    pub fn send_deadline<V: Serialize + ?Sized>(&self, value: &V, deadline: Instant) -> Result<(), SendTimeoutError> {
        self.send_value(value, Wait::Until(deadline)).map_err(|stop| SendTimeoutError::from_stop((), stop))
    }

    /// Sends `msg` as is (Python's `send_bytes`); waits while the pipe is
    /// full.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = shmproc::Pipe::new()?;
    /// a.send_bytes(b"raw")?;
    /// assert_eq!(b.recv_bytes()?, b"raw");
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`send`](Connection::send) (no encoding step).
    pub fn send_bytes(&self, msg: &[u8]) -> Result<(), SendError> {
        self.send_stop(msg, Wait::Forever).map_err(|stop| SendError::from_stop((), stop))
    }

    /// Sends `size` bytes of `buf` from `offset` (`None`: to the end) as
    /// one message (Python: `send_bytes(buffer, offset, size)`). In Rust,
    /// slicing says the same: `send_bytes(&buf[offset..offset + size])`,
    /// which panics where this returns an error; slice for the `try_`,
    /// `_timeout` and `_deadline` forms.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = shmproc::Pipe::new()?;
    /// let data = b"0123456789";
    /// a.send_bytes_range(data, 2, Some(3))?;
    /// a.send_bytes_range(data, 7, None)?;
    /// assert_eq!(b.recv_bytes()?, b"234");
    /// assert_eq!(b.recv_bytes()?, b"789");
    /// assert!(a.send_bytes_range(data, 11, None).is_err());
    /// assert!(a.send_bytes_range(data, 8, Some(3)).is_err());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`SendError::Failed`] with [`Error::InvalidArgument`] if `offset`
    /// is beyond the end of `buf` or `offset + size` is (Python:
    /// `ValueError`; nothing is sent); the others as for
    /// [`send_bytes`](Connection::send_bytes).
    pub fn send_bytes_range(&self, buf: &[u8], offset: usize, size: Option<usize>) -> Result<(), SendError> {
        let fail = |what| Err(SendError::Failed((), Error::InvalidArgument { what }));
        if offset > buf.len() {
            return fail("offset beyond the end of the buffer");
        }
        let end = match size {
            None => buf.len(),
            Some(n) => match offset.checked_add(n).filter(|&end| end <= buf.len()) {
                Some(end) => end,
                None => return fail("offset + size beyond the end of the buffer"),
            },
        };
        self.send_bytes(&buf[offset..end])
    }

    /// [`send_bytes`](Connection::send_bytes) if there is room now.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = shmproc::Pipe::new()?;
    /// a.try_send_bytes(b"now")?;
    /// assert_eq!(b.recv_bytes()?, b"now");
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`try_send`](Connection::try_send).
    pub fn try_send_bytes(&self, msg: &[u8]) -> Result<(), TrySendError> {
        self.send_stop(msg, Wait::No).map_err(|stop| TrySendError::from_stop((), stop))
    }

    /// [`send_bytes`](Connection::send_bytes), waiting at most `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, _b) = shmproc::Pipe::new()?;
    /// a.send_bytes_timeout(b"x", std::time::Duration::from_secs(1))?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`send_timeout`](Connection::send_timeout).
    pub fn send_bytes_timeout(&self, msg: &[u8], timeout: Duration) -> Result<(), SendTimeoutError> {
        self.send_stop(msg, Wait::after(timeout)).map_err(|stop| SendTimeoutError::from_stop((), stop))
    }

    /// [`send_bytes`](Connection::send_bytes), waiting until `deadline`.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, _b) = shmproc::Pipe::new()?;
    /// a.send_bytes_deadline(b"x", std::time::Instant::now())?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`send_timeout`](Connection::send_timeout).
    pub fn send_bytes_deadline(&self, msg: &[u8], deadline: Instant) -> Result<(), SendTimeoutError> {
        self.send_stop(msg, Wait::Until(deadline)).map_err(|stop| SendTimeoutError::from_stop((), stop))
    }

    /// Receives and decodes the next message; waits while there is none.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = shmproc::Pipe::new()?;
    /// a.send(&vec![1u32, 2])?;
    /// assert_eq!(b.recv::<Vec<u32>>()?, [1, 2]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`RecvError::Disconnected`] once the pipe is drained and the other
    /// end was closed or every holder of it died; [`RecvError::Closed`] if
    /// this end was closed; [`RecvError::Failed`] with [`Error::Codec`] if
    /// the message does not decode as a `T` (the message is consumed),
    /// [`Error::InvalidArgument`] on the writing end of a simplex pipe.
    pub fn recv<T: DeserializeOwned>(&self) -> Result<T, RecvError> {
        self.recv_value(Wait::Forever).map_err(RecvError::from_stop)
    }

    /// Receives the next message if there is one now.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = shmproc::Pipe::new()?;
    /// assert!(matches!(b.try_recv::<u8>(), Err(shmproc::TryRecvError::Empty)));
    /// a.send(&3u8)?;
    /// assert_eq!(b.try_recv::<u8>()?, 3);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`TryRecvError::Empty`] if there is none now, and the cases of
    /// [`recv`](Connection::recv).
    pub fn try_recv<T: DeserializeOwned>(&self) -> Result<T, TryRecvError> {
        self.recv_value(Wait::No).map_err(TryRecvError::from_stop)
    }

    /// As [`recv`](Connection::recv), waiting at most `timeout`
    /// (`Duration::MAX`: no limit).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let (a, b) = shmproc::Pipe::new()?;
    /// a.send(&5u64)?;
    /// assert_eq!(b.recv_timeout::<u64>(Duration::from_secs(1))?, 5);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`], and the cases of
    /// [`recv`](Connection::recv).
    pub fn recv_timeout<T: DeserializeOwned>(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.recv_value(Wait::after(timeout)).map_err(RecvTimeoutError::from_stop)
    }

    /// As [`recv`](Connection::recv), waiting until `deadline` at most.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = shmproc::Pipe::new()?;
    /// a.send(&5u64)?;
    /// assert_eq!(b.recv_deadline::<u64>(std::time::Instant::now())?, 5); // there: at once
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`recv_timeout`](Connection::recv_timeout).
    pub fn recv_deadline<T: DeserializeOwned>(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        self.recv_value(Wait::Until(deadline)).map_err(RecvTimeoutError::from_stop)
    }

    /// Receives the next message's bytes as sent (Python's `recv_bytes`).
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = shmproc::Pipe::new()?;
    /// a.send_bytes(&[1, 2, 3])?;
    /// assert_eq!(b.recv_bytes()?, [1, 2, 3]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`recv`](Connection::recv) (no decoding step).
    pub fn recv_bytes(&self) -> Result<Vec<u8>, RecvError> {
        self.recv_vec(Wait::Forever).map_err(RecvError::from_stop)
    }

    /// [`recv_bytes`](Connection::recv_bytes) if a message is there now.
    ///
    /// # Examples
    ///
    /// ```
    /// let (_a, b) = shmproc::Pipe::new()?;
    /// assert!(matches!(b.try_recv_bytes(), Err(shmproc::TryRecvError::Empty)));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`try_recv`](Connection::try_recv).
    pub fn try_recv_bytes(&self) -> Result<Vec<u8>, TryRecvError> {
        self.recv_vec(Wait::No).map_err(TryRecvError::from_stop)
    }

    /// [`recv_bytes`](Connection::recv_bytes), waiting at most `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// let (_a, b) = shmproc::Pipe::new()?;
    /// let r = b.recv_bytes_timeout(std::time::Duration::from_millis(1));
    /// assert!(matches!(r, Err(shmproc::RecvTimeoutError::Timeout)));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`recv_timeout`](Connection::recv_timeout).
    pub fn recv_bytes_timeout(&self, timeout: Duration) -> Result<Vec<u8>, RecvTimeoutError> {
        self.recv_vec(Wait::after(timeout)).map_err(RecvTimeoutError::from_stop)
    }

    /// [`recv_bytes`](Connection::recv_bytes), waiting until `deadline`.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = shmproc::Pipe::new()?;
    /// a.send_bytes(b"x")?;
    /// assert_eq!(b.recv_bytes_deadline(std::time::Instant::now())?, b"x");
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`recv_timeout`](Connection::recv_timeout).
    pub fn recv_bytes_deadline(&self, deadline: Instant) -> Result<Vec<u8>, RecvTimeoutError> {
        self.recv_vec(Wait::Until(deadline)).map_err(RecvTimeoutError::from_stop)
    }

    /// Receives the next message's bytes into `buf` (cleared first; its
    /// allocation is reused, so a loop of receives allocates only when a
    /// message is longer than any before) and returns their number.
    ///
    /// Python's `recv_bytes_into(buffer, offset)` writes into a fixed
    /// buffer and fails if the message does not fit; here the `Vec` grows
    /// instead ([`recv_bytes_into_slice`](Connection::recv_bytes_into_slice)
    /// is Python's form).
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = shmproc::Pipe::new()?;
    /// let mut buf = Vec::with_capacity(1024);
    /// for msg in [&b"first"[..], b"second"] {
    ///     a.send_bytes(msg)?;
    ///     assert_eq!(b.recv_bytes_into(&mut buf)?, msg.len());
    ///     assert_eq!(buf, msg);
    /// }
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`recv_bytes`](Connection::recv_bytes).
    pub fn recv_bytes_into(&self, buf: &mut Vec<u8>) -> Result<usize, RecvError> {
        self.recv_stop(buf, Wait::Forever, &mut Vec::new()).map_err(RecvError::from_stop)?;
        Ok(buf.len())
    }

    /// Receives the next message's bytes into the fixed buffer `buf`,
    /// starting at `offset`, and returns the message's length (Python:
    /// `recv_bytes_into(buffer, offset)`). Waits while there is none.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = shmproc::Pipe::new()?;
    /// a.send_bytes(b"abc")?;
    /// let mut buf = [b'.'; 8];
    /// assert_eq!(b.recv_bytes_into_slice(&mut buf, 2)?, 3);
    /// assert_eq!(&buf, b"..abc...");
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`RecvIntoError::BufferTooShort`] with the whole message if it is
    /// longer than `buf.len() - offset` (the message is consumed, and
    /// `buf` is left as it was); [`RecvIntoError::Failed`] with
    /// [`Error::InvalidArgument`] if `offset > buf.len()` (checked before
    /// anything is received); the others as for
    /// [`recv_bytes`](Connection::recv_bytes).
    #[doc(alias = "recv_bytes_into")]
    pub fn recv_bytes_into_slice(&self, buf: &mut [u8], offset: usize) -> Result<usize, RecvIntoError> {
        let Some(room) = buf.get_mut(offset..) else {
            return Err(RecvIntoError::Failed(Error::InvalidArgument { what: "offset beyond the end of the buffer" }));
        };
        let mut msg = Vec::new();
        self.recv_stop(&mut msg, Wait::Forever, &mut Vec::new()).map_err(RecvIntoError::from_stop)?;
        match room.get_mut(..msg.len()) {
            Some(dst) => {
                dst.copy_from_slice(&msg);
                Ok(msg.len())
            }
            None => Err(RecvIntoError::BufferTooShort(msg)),
        }
    }

    /// A blocking iterator over the messages, decoded as `T`: each `next` is
    /// a [`recv`](Connection::recv); it ends when the other end was closed
    /// (or every process holding it is gone) and the pipe is drained, or
    /// when this end is closed. Other failures come as an `Err` and the
    /// iteration goes on: a message that does not decode as a `T` is one
    /// `Err` (the message is consumed). On the writing end of a simplex
    /// pipe every `next` is an `Err` ([`Error::InvalidArgument`]): stop at
    /// an error you do not expect.
    ///
    /// Python: a `Connection` is not iterable; the loop is
    /// `while True: conn.recv()` until `EOFError`.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = shmproc::Pipe::new()?;
    /// for i in 0..3u32 {
    ///     a.send(&i)?;
    /// }
    /// a.close(); // the iteration ends once the pipe is drained
    /// let got: Vec<u32> = b.iter().collect::<Result<_, _>>()?;
    /// assert_eq!(got, [0, 1, 2]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn iter<T: DeserializeOwned>(&self) -> Iter<'_, T> {
        Iter { conn: self, wait: Wait::Forever, recv: Connection::recv_value::<T> }
    }

    /// An iterator over the messages there now, decoded as `T`: each
    /// `next` is a [`try_recv`](Connection::try_recv); it ends when there
    /// is none (or as [`iter`](Connection::iter) ends).
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = shmproc::Pipe::new()?;
    /// a.send("one")?;
    /// a.send("two")?;
    /// let got: Vec<String> = b.try_iter().collect::<Result<_, _>>()?;
    /// assert_eq!(got, ["one", "two"]);
    /// assert_eq!(b.try_iter::<String>().count(), 0); // nothing there now
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn try_iter<T: DeserializeOwned>(&self) -> Iter<'_, T> {
        Iter { conn: self, wait: Wait::No, recv: Connection::recv_value::<T> }
    }

    /// A blocking iterator over the messages' bytes as sent: each `next` is
    /// a [`recv_bytes`](Connection::recv_bytes); it ends as
    /// [`iter`](Connection::iter) does. `for msg in &conn` is this
    /// iterator: the type of a decoded value could not be inferred there.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = shmproc::Pipe::new()?;
    /// a.send_bytes(b"ab")?;
    /// a.send_bytes(b"c")?;
    /// a.close();
    /// let mut got = Vec::new();
    /// for msg in &b {
    ///     got.push(msg?);
    /// }
    /// assert_eq!(got, [&b"ab"[..], b"c"]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn iter_bytes(&self) -> Iter<'_, Vec<u8>> {
        Iter { conn: self, wait: Wait::Forever, recv: Connection::recv_vec }
    }

    /// An iterator over the bytes of the messages there now: each `next`
    /// is a [`try_recv_bytes`](Connection::try_recv_bytes).
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = shmproc::Pipe::new()?;
    /// a.send_bytes(b"now")?;
    /// assert_eq!(b.try_iter_bytes().collect::<Result<Vec<_>, _>>()?, [b"now"]);
    /// assert_eq!(b.try_iter_bytes().count(), 0);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn try_iter_bytes(&self) -> Iter<'_, Vec<u8>> {
        Iter { conn: self, wait: Wait::No, recv: Connection::recv_vec }
    }

    /// Waits up to `timeout` until a message is ready to receive; `true`
    /// also if [`recv`](Connection::recv) would return
    /// [`Error::Disconnected`] at once (the other end is closed or its
    /// holders died, and the pipe is drained). `Duration::ZERO` just looks.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let (a, b) = shmproc::Pipe::new()?;
    /// assert!(!b.poll(Duration::ZERO)?);
    /// a.send(&1u8)?;
    /// assert!(b.poll(Duration::from_secs(1))?);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Closed`] if this end was closed; [`Error::InvalidArgument`]
    /// on the writing end of a simplex pipe.
    pub fn poll(&self, timeout: Duration) -> Result<bool> {
        let lane = self.rx()?;
        self.register()?;
        let ends = &*self.inner;
        let ready = || ends.peer_closed() || ends.closed();
        if lane.has_message() || ends.peer_closed() {
            return Ok(true);
        }
        if timeout.is_zero() {
            return Ok(lane.senders_gone_lately(ends));
        }
        match lane.wait_readable(ready, Wait::after(timeout), ends) {
            Ok(Woke::Gone) => Ok(true),
            Ok(Woke::Look) if self.is_closed() => Err(Error::Closed),
            Ok(Woke::Look) => Ok(lane.has_message() || ends.peer_closed()),
            Err(Stop::Timeout) => Ok(false),
            Err(stop) => Err(stop.into_error()),
        }
    }

    /// Closes this end for every holder: the other end receives what was
    /// sent, then [`RecvError::Disconnected`], and its sends fail with
    /// [`SendError::Disconnected`] ([`Error::BrokenPipe`] as the crate's
    /// error); calls on this end (in any process) fail with `Closed`.
    /// Idempotent.
    ///
    /// Python's `close()` closes only the calling process's descriptor;
    /// here the end is closed for everyone who holds it. Dropping handles
    /// does not close the end.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = shmproc::Pipe::new()?;
    /// a.send(&"last words")?;
    /// a.close();
    /// assert!(a.is_closed());
    /// assert_eq!(b.recv::<String>()?, "last words");
    /// assert!(matches!(b.recv::<String>(), Err(shmproc::RecvError::Disconnected)));
    /// assert!(matches!(b.send(&1u8), Err(shmproc::SendError::Disconnected(()))));
    /// assert!(matches!(a.send(&1u8), Err(shmproc::SendError::Closed(()))));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn close(&self) {
        // Release: our sends happen-before a peer's Acquire load of the flag.
        self.inner.me.closed.store(1, Ordering::Release);
        for lane in [&self.inner.tx, &self.inner.rx].into_iter().flatten() {
            lane.wake_all();
        }
    }

    /// Whether this end was closed (by any of its holders).
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, _b) = shmproc::Pipe::new()?;
    /// assert!(!a.is_closed());
    /// a.close();
    /// assert!(a.is_closed());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    #[doc(alias = "closed")]
    pub fn is_closed(&self) -> bool {
        self.inner.closed()
    }

    /// Whether this end can receive (every end of a duplex pipe; the reader
    /// of a simplex one).
    ///
    /// # Examples
    ///
    /// ```
    /// let (r, w) = shmproc::Pipe::simplex()?;
    /// assert!(r.readable());
    /// assert!(!w.readable());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn readable(&self) -> bool {
        self.inner.rx.is_some()
    }

    /// Whether this end can send.
    ///
    /// # Examples
    ///
    /// ```
    /// let (r, w) = shmproc::Pipe::simplex()?;
    /// assert!(w.writable());
    /// assert!(!r.writable());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn writable(&self) -> bool {
        self.inner.tx.is_some()
    }

    /// The longest message (in bytes, encoded) that travels inline; longer
    /// ones go through a spill segment each (slower: a segment is created
    /// and removed per message).
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, _b) = shmproc::Pipe::new()?;
    /// assert_eq!(a.max_message(), 32 * 1024 - 8);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn max_message(&self) -> usize {
        let lane = self.inner.tx.as_ref().or(self.inner.rx.as_ref());
        lane.map_or(0, |l| l.max_message() as usize)
    }
}

/// The iterator of [`Connection::iter`] and [`Connection::try_iter`]
/// (decoded values), and of [`Connection::iter_bytes`],
/// [`Connection::try_iter_bytes`] and `for msg in &conn` (the messages'
/// bytes). Each item is a `Result`: see [`Connection::iter`] for when it
/// ends and what comes as an `Err`.
///
/// # Examples
///
/// ```
/// let (a, b) = shmproc::Pipe::new()?;
/// a.send(&1.5f64)?;
/// let mut it: shmproc::ConnectionIter<'_, f64> = b.try_iter();
/// assert_eq!(it.next().transpose()?, Some(1.5));
/// assert!(it.next().is_none());
/// # Ok::<(), shmproc::Error>(())
/// ```
#[must_use = "iterators do nothing unless consumed"]
pub struct Iter<'a, T> {
    conn: &'a Connection,
    wait: Wait,
    /// How one message is received: decoded, or its bytes.
    recv: fn(&Connection, Wait) -> Result<T, Stop>,
}

impl<T> std::fmt::Debug for Iter<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iter").field("blocking", &(self.wait == Wait::Forever)).finish_non_exhaustive()
    }
}

impl<T> Iterator for Iter<'_, T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        Stop::next_item((self.recv)(self.conn, self.wait))
    }
}

impl<'a> IntoIterator for &'a Connection {
    type Item = Result<Vec<u8>>;
    type IntoIter = Iter<'a, Vec<u8>>;

    /// [`Connection::iter_bytes`]: the messages' bytes, blocking, until the
    /// other end is closed or gone and the pipe is drained.
    fn into_iter(self) -> Iter<'a, Vec<u8>> {
        self.iter_bytes()
    }
}

impl Serialize for Connection {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        (&self.inner.seg, self.inner.end as u8, post::Wire(self.inner.post.as_ref())).serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Connection {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let (seg, end, post) = <(Segment, u8, post::Received)>::deserialize(d)?;
        if seg.layout_identity() != (kind::PIPE, PIPE_HASH) {
            return Err(D::Error::custom(Error::LayoutMismatch {
                expected: PIPE_HASH,
                found: seg.layout_identity().1,
            }));
        }
        if end > 1 {
            return Err(D::Error::custom(Error::Corrupt { what: "pipe end" }));
        }
        let conn = Connection::wrap(&seg, usize::from(end), post.0).map_err(D::Error::custom)?;
        // A process that received an end holds it, used or not: its death
        // must disconnect the other end.
        conn.register().map_err(D::Error::custom)?;
        Ok(conn)
    }
}

/// One end of a [`Pipe`](crate::Pipe): whether it was closed, and which
/// processes hold it (registered on first use or when a handle to it is
/// deserialized), so the other end can tell that every holder died.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct EndWords {
    /// Non-zero once `close()` was called on this end (never cleared).
    pub(crate) closed: AtomicU32,
    _pad: AtomicU32,
    pub(crate) holders: RawRegistry,
}

#[allow(unsafe_code)] // the layout promise of a type placed in shared memory
// SAFETY: repr(C) over atomics only (RawRegistry is a repr(C) table of
// atomics): no pointers, every bit pattern valid (any non-zero `closed`
// means closed; unknown registry ids are probed through the OS), all
// interior-mutable.
unsafe impl ShmSafe for EndWords {
    const TAG: &'static str = "shmproc::EndWords";
}

#[cfg(feature = "async")]
impl crate::channel::wait::private::Sealed for Connection {}

/// Ready when a message is there to receive, or a receive would end at
/// once (the other end closed or gone).
#[cfg(feature = "async")]
impl crate::channel::wait::Waitable for Connection {
    fn target(&self) -> Result<crate::channel::wait::WaitTarget<'_>> {
        let lane = self.rx()?;
        self.register()?;
        Ok(crate::channel::wait::WaitTarget::lane(lane, &*self.inner))
    }
}

#[cfg(feature = "async")]
impl Connection {
    /// The async twin of `send_stop`.
    async fn send_stop_async(&self, msg: &[u8]) -> Result<(), Stop> {
        let lane = self.tx().map_err(|e| if matches!(e, Error::Closed) { Stop::Closed } else { Stop::Failed(e) })?;
        self.register()?;
        lane.send_message_async(msg, &*self.inner).await
    }

    /// The async twin of `recv_stop`.
    async fn recv_stop_async(&self, out: &mut Vec<u8>, fds: &mut Vec<OwnedFd>) -> Result<(), Stop> {
        let lane = self.rx().map_err(|e| if matches!(e, Error::Closed) { Stop::Closed } else { Stop::Failed(e) })?;
        self.register()?;
        lane.recv_message_async(out, &*self.inner, &mut |_| {}, fds).await
    }

    /// Sends `value`, waiting for room without blocking the thread: the
    /// async twin of [`send`](Connection::send).
    ///
    /// Cancellation: a future dropped before it completes has sent
    /// nothing (the message is published whole, in one step of one poll,
    /// or not at all).
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = shmproc::Pipe::new()?;
    /// futures::executor::block_on(async {
    ///     a.send_async(&("ping", 1u32)).await?;
    ///     let got: (String, u32) = b.recv_async().await?;
    ///     assert_eq!(got, ("ping".to_string(), 1));
    ///     Ok::<(), shmproc::Error>(())
    /// })?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`send`](Connection::send).
    pub async fn send_async<V: Serialize + ?Sized>(&self, value: &V) -> Result<(), SendError> {
        self.send_value_async(value).await.map_err(|stop| SendError::from_stop((), stop))
    }

    /// The async twin of `send_value`: with the descriptors and anonymous
    /// handles `value` holds.
    async fn send_value_async<V: Serialize + ?Sized>(&self, value: &V) -> Result<(), Stop> {
        if self.inner.post.is_none() {
            let msg = codec::encode(value).map_err(Stop::Failed)?;
            return self.send_stop_async(&msg).await;
        }
        let (msg, fds, undo) = handoff::encoding_message(|| codec::encode(value));
        let msg = match msg {
            Ok(m) => m,
            Err(e) => {
                undo.run();
                return Err(Stop::Failed(e));
            }
        };
        // A future dropped while it waits gives back what was lent.
        let undo = handoff::UndoOnDrop(Some(undo));
        let lane = self.tx().map_err(|e| if matches!(e, Error::Closed) { Stop::Closed } else { Stop::Failed(e) })?;
        self.register()?;
        let sent = lane.send_parcel_async(&msg, &fds, &*self.inner).await;
        if sent.is_ok() {
            undo.forget();
        }
        sent
    }

    /// Sends `msg` as one message, waiting for room without blocking the
    /// thread: the async twin of [`send_bytes`](Connection::send_bytes).
    ///
    /// Cancellation: as for [`send_async`](Connection::send_async).
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = shmproc::Pipe::new()?;
    /// futures::executor::block_on(a.send_bytes_async(b"raw"))?;
    /// assert_eq!(b.recv_bytes()?, b"raw");
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`send_bytes`](Connection::send_bytes).
    pub async fn send_bytes_async(&self, msg: &[u8]) -> Result<(), SendError> {
        self.send_stop_async(msg).await.map_err(|stop| SendError::from_stop((), stop))
    }

    /// Receives and decodes one message, waiting without blocking the
    /// thread: the async twin of [`recv`](Connection::recv).
    ///
    /// Cancellation: a future dropped before it completes has taken no
    /// message (a message is taken and decoded in one step of one poll).
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = shmproc::Pipe::new()?;
    /// std::thread::spawn(move || a.send(&7u64));
    /// assert_eq!(futures::executor::block_on(b.recv_async::<u64>())?, 7);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`recv`](Connection::recv).
    pub async fn recv_async<T: DeserializeOwned>(&self) -> Result<T, RecvError> {
        let mut buf = Vec::new();
        let mut fds = Vec::new();
        self.recv_stop_async(&mut buf, &mut fds).await.map_err(RecvError::from_stop)?;
        handoff::with_fds(fds, || codec::decode(&buf)).map_err(|e| RecvError::from_stop(Stop::Failed(e)))
    }

    /// Receives one message's bytes, waiting without blocking the thread:
    /// the async twin of [`recv_bytes`](Connection::recv_bytes).
    ///
    /// Cancellation: as for [`recv_async`](Connection::recv_async).
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = shmproc::Pipe::new()?;
    /// a.send_bytes(b"abc")?;
    /// assert_eq!(futures::executor::block_on(b.recv_bytes_async())?, b"abc");
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`recv_bytes`](Connection::recv_bytes).
    pub async fn recv_bytes_async(&self) -> Result<Vec<u8>, RecvError> {
        let mut buf = Vec::new();
        self.recv_stop_async(&mut buf, &mut Vec::new()).await.map_err(RecvError::from_stop)?;
        Ok(buf)
    }

    /// Waits until a message is ready to receive, or the other end is
    /// closed or gone (what [`poll`](Connection::poll) reports as `true`),
    /// without blocking the thread.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = shmproc::Pipe::new()?;
    /// a.send(&1u8)?;
    /// futures::executor::block_on(b.readable_async())?;
    /// assert_eq!(b.recv::<u8>()?, 1);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`poll`](Connection::poll).
    pub async fn readable_async(&self) -> Result<()> {
        let lane = self.rx()?;
        self.register()?;
        let ends = &*self.inner;
        loop {
            if lane.has_message() || ends.peer_closed() {
                return Ok(());
            }
            let ready = || ends.peer_closed() || ends.closed();
            match lane.wait_readable_async(ready, ends).await {
                Ok(Woke::Gone) => return Ok(()),
                Ok(Woke::Look) if self.is_closed() => return Err(Error::Closed),
                Ok(Woke::Look) => {}
                Err(stop) => return Err(stop.into_error()),
            }
        }
    }
}

#[cfg(all(test, not(shmproc_loom)))]
mod tests {
    use super::*;

    #[test]
    fn layout_offsets_are_aligned_and_disjoint() {
        assert_eq!(END_OFF[0] % 128, 0);
        assert_eq!(END_OFF[1] % 128, 0);
        assert!(END_OFF[1] >= END_OFF[0] + core::mem::size_of::<EndWords>());
        assert!(LANE_OFF[0] >= END_OFF[1] + core::mem::size_of::<EndWords>());
        assert_eq!(LANE_OFF[0] % 128, 0);
        assert_eq!(LANE_OFF[1], LANE_OFF[0] + LANE_SIZE);
        assert!(BUF_OFF >= LANE_OFF[1] + LANE_SIZE && BUF_OFF.is_multiple_of(4096));
    }

    #[test]
    fn bad_capacities_are_refused() {
        for cap in [0usize, 100, 128, 255, 1000] {
            assert!(matches!(Pipe::builder().capacity(cap).duplex(), Err(Error::InvalidArgument { .. })), "{cap}");
        }
        assert!(Pipe::builder().capacity(256).simplex().is_ok());
    }
}
