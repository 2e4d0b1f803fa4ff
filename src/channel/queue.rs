//! `Queue<T>` and `JoinableQueue<T>`: multi-producer multi-consumer queues
//! of encoded values over one shared byte ring.
//!
//! A queue is one lane of the channel engine ([`lane`](super::lane)):
//! producers take turns under the lane's send lock and consumers under its
//! receive lock, so any number of threads and processes can put and get.
//! A lock whose holder died is taken over (positions are published with
//! single stores, so a producer killed mid-put leaves nothing half-visible
//! and a consumer killed mid-get leaves the message in the ring). Items are
//! encoded with the crate's codec; one larger than half the ring travels
//! through a spill segment.
//!
//! Beside the lane, the header holds the item limit, the closed and
//! joinable flags, the producers' and consumers' registries (which tell a
//! blocked call that every process on the other side is gone:
//! `Disconnected`), and a `JoinableQueue`'s counters with the `all_done`
//! eventcount that `join` waits on.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::channel::error::{
    GetError, GetTimeoutError, PutError, PutTimeoutError, QueueJoinError, QueueJoinTimeoutError, TryGetError,
    TryPutError,
};
use crate::channel::lane::{Call, Ends, Lane, LaneWords, Other, Stop, Wait, wait_on};
#[cfg(feature = "async")]
use crate::channel::lane_async::{EcRef, LaneSleep, Side, SleepState};
use crate::channel::post::{self, Post};
use crate::codec;
use crate::error::{Error, Result};
use crate::loom::atomic::{AtomicU32, AtomicU64, Ordering};
use crate::owner::probe::ProbeRate;
use crate::owner::registry::{Dead, Entry, Peers, QUEUE_ENTRIES, RawRegistry};
use crate::queue::bytes;
use crate::queue::eventcount::{Awake, RawEventCount};
use crate::shm::handoff;
use crate::shm::header::kind;
use crate::shm::layout::{ShmSafe, layout_hash, layout_hash_mix};
use crate::shm::segment::Segment;
use crate::shm::typed::Placed;
use std::os::fd::OwnedFd;

const CLOSED: u32 = 1;
const JOINABLE: u32 = 2;
#[cfg(feature = "manager")]
/// A named [`Manager`](crate::Manager)'s accept queue (set at creation, so
/// `shmproc inspect` can tell it from a user's queue).
const MANAGER: u32 = 4;
/// A typed channel's queue (`channel::Sender`/`Receiver`): its ends are
/// counted per handle (see `channel/typed.rs`).
const CHANNEL: u32 = 8;
/// `shutdown()` was called: puts stop at once, gets once the queue is
/// drained.
const SHUT_DOWN: u32 = 16;
/// `shutdown(true)` drained the queue: gets stop at once too.
const IMMEDIATE: u32 = 32;
/// `shutdown(true)` was called (set before its draining starts): a put
/// that lands after this flag drains the queue too, so no item slips in
/// behind the draining.
const DISCARD: u32 = 64;

/// The default ring size: 256 KiB (messages up to 128 KiB travel inline).
///
/// # Examples
///
/// ```
/// let q = shmproc::Queue::<u8>::new(0)?;
/// assert_eq!(q.capacity_bytes(), shmproc::DEFAULT_QUEUE_CAPACITY);
/// # Ok::<(), shmproc::Error>(())
/// ```
pub const DEFAULT_QUEUE_CAPACITY: usize = 256 * 1024;

/// The queue's control words at the start of its segment's payload; the
/// ring's bytes follow at [`RING_OFFSET`]. Spill segments are recorded as
/// the queue segment's creator's (its header holds the token), so they
/// count as stale only once the queue's creator died.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct QueueHeader {
    /// The lane: positions, `readable` ("not empty"), `writable` ("not
    /// full"), the producers' and the consumers' locks, each on a cache
    /// line of its own.
    lane: LaneWords,
    /// Ring bytes (a power of two), set at creation.
    capacity: AtomicU64,
    /// Most items at once; 0 = limited by the ring's bytes only.
    maxsize: AtomicU64,
    flags: AtomicU32,
    _pad: AtomicU32,
    /// Items taken by consumers that died before `task_done`.
    abandoned: AtomicU64,
    /// A typed channel's live handles: senders, receivers (each counted
    /// in its process's registry entry too, see `channel/typed.rs`).
    pub(crate) handles: [AtomicU64; 2],
    all_done: RawEventCount,
    producers: RawRegistry<QUEUE_ENTRIES>,
    consumers: RawRegistry<QUEUE_ENTRIES>,
}

#[allow(unsafe_code)] // the layout promise of a type placed in shared memory
// SAFETY: repr(C) over atomics and repr(C) structs of atomics (LaneWords,
// RawEventCount, RawRegistry): no pointers; every bit pattern is a valid
// value (positions, capacity and maxsize are checked before use, lock and
// registry words hold owner ids that are probed, never trusted); all
// interior-mutable.
unsafe impl ShmSafe for QueueHeader {
    const TAG: &'static str = "shmproc::QueueHeader";
}

/// Where the ring starts in the payload (after the header, 128-aligned).
const RING_OFFSET: usize = core::mem::size_of::<QueueHeader>().div_ceil(128) * 128;

/// Field offsets and flags of a [`QueueHeader`], for read-only inspection
/// (`shmproc::inspect` reads them with `pread`, never maps).
#[cfg(feature = "inspect")]
pub(crate) mod peek {
    use super::QueueHeader;
    use crate::channel::lane::LaneWords;
    use core::mem::offset_of;
    /// Consumer position (byte-ring encoding, see `bytes.rs`).
    pub(crate) const HEAD: usize = offset_of!(QueueHeader, lane) + offset_of!(LaneWords, head);
    /// Producer position.
    pub(crate) const TAIL: usize = offset_of!(QueueHeader, lane) + offset_of!(LaneWords, tail);
    /// Ring bytes.
    pub(crate) const CAPACITY: usize = offset_of!(QueueHeader, capacity);
    /// Most items at once (0: bytes only).
    pub(crate) const MAXSIZE: usize = offset_of!(QueueHeader, maxsize);
    /// [`CLOSED`] and [`JOINABLE`] bits.
    pub(crate) const FLAGS: usize = offset_of!(QueueHeader, flags);
    /// Items lost with consumers that died before `task_done`.
    pub(crate) const ABANDONED: usize = offset_of!(QueueHeader, abandoned);
    /// The producers' lock (a `RawMutex`, first in its `Side`).
    pub(crate) const PUT_LOCK: usize = offset_of!(QueueHeader, lane) + offset_of!(LaneWords, sending);
    /// The consumers' lock (a `RawMutex`, first in its `Side`).
    pub(crate) const GET_LOCK: usize = offset_of!(QueueHeader, lane) + offset_of!(LaneWords, receiving);
    /// The producers' registry.
    pub(crate) const PRODUCERS: usize = offset_of!(QueueHeader, producers);
    /// The consumers' registry.
    pub(crate) const CONSUMERS: usize = offset_of!(QueueHeader, consumers);
    /// Flag: `close()` was called.
    pub(crate) const CLOSED: u32 = super::CLOSED;
    /// Flag: a `JoinableQueue`.
    pub(crate) const JOINABLE: u32 = super::JOINABLE;
    #[cfg(feature = "manager")]
    /// Flag: a [`Manager`](crate::Manager)'s accept queue.
    pub(crate) const MANAGER: u32 = super::MANAGER;
}

fn queue_hash<T>() -> u64 {
    let h = layout_hash("shmproc::Queue", core::mem::size_of::<QueueHeader>(), RING_OFFSET);
    layout_hash_mix(h, layout_hash(std::any::type_name::<T>(), 0, 0))
}

/// A typed channel's layout hash: a queue's, marked, so neither opens as
/// the other.
pub(crate) fn channel_hash<T>() -> u64 {
    layout_hash_mix(queue_hash::<T>(), layout_hash("shmproc::channel", 0, 0))
}

/// Options for a new [`Queue`] or [`JoinableQueue`]: item limit, ring size
/// in bytes, and a name.
///
/// # Examples
///
/// ```
/// let q = shmproc::Queue::<String>::builder().maxsize(100).capacity_bytes(1 << 20).build()?;
/// assert_eq!(q.maxsize(), 100);
/// assert_eq!(q.max_inline(), (1 << 19) - 8);
/// # Ok::<(), shmproc::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct QueueBuilder<T> {
    maxsize: usize,
    capacity: usize,
    name: Option<String>,
    _t: PhantomData<fn() -> T>,
}

impl<T: Serialize + DeserializeOwned> QueueBuilder<T> {
    /// The most items the queue holds at once (0: as many as fit in the
    /// ring's bytes, the default).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shmproc::Queue::<u8>::builder().maxsize(2).build()?;
    /// q.put(1)?;
    /// q.put(2)?;
    /// assert!(q.try_put(3).is_err());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn maxsize(mut self, items: usize) -> Self {
        self.maxsize = items;
        self
    }

    /// The ring's size in bytes (a power of two from 64 bytes to 4 GiB;
    /// default [`DEFAULT_QUEUE_CAPACITY`]). Encoded items up to half of it travel
    /// inline; larger ones through a spill segment.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shmproc::Queue::<Vec<u8>>::builder().capacity_bytes(4096).build()?;
    /// q.put(vec![7; 10_000])?; // larger than the ring: spilled
    /// assert_eq!(q.get()?.len(), 10_000);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn capacity_bytes(mut self, bytes: usize) -> Self {
        self.capacity = bytes;
        self
    }

    /// Creates the queue under `name`, for [`Queue::open`] by unrelated
    /// processes (the name is removed when the creating handle's last
    /// clone in this process is dropped).
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-queue-b-{}", std::process::id());
    /// let q = shmproc::Queue::<u32>::builder().name(&name).build()?;
    /// shmproc::Queue::<u32>::open(&name)?.put(5)?;
    /// assert_eq!(q.get()?, 5);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// Makes a [`Queue`].
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shmproc::Queue::<u8>::builder().build()?;
    /// assert!(q.is_empty());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a bad capacity; as for
    /// [`Segment::create`] and [`Segment::anonymous`].
    pub fn build(self) -> Result<Queue<T>> {
        self.make(0)
    }

    /// Makes a [`JoinableQueue`].
    ///
    /// # Examples
    ///
    /// ```
    /// let jq = shmproc::Queue::<u8>::builder().maxsize(8).build_joinable()?;
    /// jq.put(1)?;
    /// jq.get()?;
    /// jq.task_done()?;
    /// jq.join()?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`build`](QueueBuilder::build).
    pub fn build_joinable(self) -> Result<JoinableQueue<T>> {
        Ok(JoinableQueue { q: self.make(JOINABLE)? })
    }

    #[cfg(feature = "manager")]
    /// Makes a [`Queue`] marked as a manager's accept queue (only the
    /// marker differs: `shmproc inspect` shows it as a manager).
    pub(crate) fn build_manager_accept(self) -> Result<Queue<T>> {
        self.make(MANAGER)
    }

    /// Makes the queue of a typed channel (see `channel/typed.rs`).
    pub(crate) fn build_channel(self) -> Result<Queue<T>> {
        self.make(CHANNEL)
    }

    fn make(self, flags: u32) -> Result<Queue<T>> {
        let cap = bytes::check_capacity(self.capacity)?;
        let size = RING_OFFSET + cap as usize;
        // The creator's token goes into the segment's header (anonymous
        // queues too): spill segments are recorded under it.
        let me = crate::owner::token::current().map_err(|e| Error::os("create liveness token", e))?;
        let hash = if flags & CHANNEL != 0 { channel_hash::<T>() } else { queue_hash::<T>() };
        let b = Segment::builder().size(size).typed(kind::QUEUE, hash).on_behalf_of(me);
        let init = |s: &Segment| -> Result<()> {
            let h = s.typed_in::<QueueHeader>(0)?;
            h.capacity.store(cap, Ordering::Relaxed);
            h.maxsize.store(self.maxsize as u64, Ordering::Relaxed);
            h.flags.store(flags, Ordering::Relaxed);
            Ok(())
        };
        let seg = match &self.name {
            Some(n) => b.name(n).create_with(init)?,
            None => b.anonymous_with(init)?,
        };
        Queue::wrap(seg, Some(Post::new()?))
    }
}

/// The per-process state behind a queue handle.
#[derive(Debug)]
pub(crate) struct Inner {
    hdr: Placed<QueueHeader>,
    lane: Lane,
    /// This process's producer / consumer registry entries (usize::MAX:
    /// not registered yet), checked against the process id on use so a
    /// fork child registers afresh.
    producer: std::sync::atomic::AtomicUsize,
    consumer: std::sync::atomic::AtomicUsize,
    /// When this process last found a registry full.
    register_retry: ProbeRate,
    /// A typed channel (the [`CHANNEL`] flag, read once).
    channel: bool,
    /// The socket pair that carries descriptors (see `post.rs`); none for
    /// a queue opened by name.
    post: Option<Post>,
}

/// One side of a queue: its producers (senders) or its consumers
/// (receivers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    Send = 0,
    Recv = 1,
}

/// A role's cached entry index: not registered yet.
const UNREGISTERED: usize = usize::MAX;
/// A role's cached entry index: the table was full (see `Queue::role`).
const TABLE_FULL: usize = usize::MAX - 1;

/// A multi-producer multi-consumer FIFO queue of `T` shared by processes
/// (Python: `multiprocessing.Queue`).
///
/// Items are encoded (serde + postcard) into a ring in shared memory: no
/// pipe, no feeder thread, nothing left behind when a process exits. The
/// handle is a cheap `Clone` and serializes, so it can be a child's argument
/// under every start method. Any number of processes and threads may put
/// and get.
///
/// Dead peers never hang a call: a `get` on an empty queue whose producers
/// (the processes that have put) all exited or were killed returns
/// [`Error::Disconnected`] once the OS confirms it, and so does a `put` on a
/// full queue whose consumers are all gone. A process counts as a producer
/// from its first put (or [`register_producer`](Queue::register_producer)),
/// and as a consumer from its first get (or
/// [`register_consumer`](Queue::register_consumer)). So, as with a channel
/// whose senders are all dropped, consumers that outlive every producer
/// get `Disconnected` once the queue is drained: a loop
/// `while let Ok(item) = q.get()` ends by itself.
///
/// # Examples
///
/// ```
/// fn produce(q: shmproc::Queue<String>) {
///     for i in 0..3 {
///         q.put(format!("item {i}")).expect("put");
///     }
/// }
///
/// let q = shmproc::Queue::new(0)?;
/// let mut child = shmproc::Process::spawn(produce, q.clone())?;
/// for i in 0..3 {
///     assert_eq!(q.get()?, format!("item {i}"));
/// }
/// child.join()?;
/// # Ok::<(), shmproc::Error>(())
/// ```
pub struct Queue<T> {
    inner: Arc<Inner>,
    _t: PhantomData<fn(T) -> T>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue { inner: self.inner.clone(), _t: PhantomData }
    }
}

impl<T> std::fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let h = self.hdr();
        f.debug_struct("Queue")
            .field("qsize", &self.qsize())
            .field("maxsize", &h.maxsize.load(Ordering::Relaxed))
            .field("capacity_bytes", &self.inner.lane.capacity())
            .field("closed", &self.is_closed())
            .field("shut_down", &self.is_shutdown())
            .finish()
    }
}

/// The queue's ends for the channel engine: `close` and `shutdown` stop
/// puts at once and gets once the queue is drained (an immediate shutdown
/// stops gets at once too); the other side is gone when every process
/// registered on it is confirmed dead.
impl Ends for Inner {
    const SEND_NEEDS_RECEIVER: bool = false;
    const PROBE_BEFORE_SLEEP: bool = false;

    fn send_stop(&self) -> Option<Stop> {
        let flags = self.flags();
        if flags & SHUT_DOWN != 0 { Some(Stop::ShutDown) } else { (flags & CLOSED != 0).then_some(Stop::Closed) }
    }

    fn recv_stop(&self) -> Option<Stop> {
        (self.flags() & IMMEDIATE != 0).then_some(Stop::ShutDown)
    }

    fn drained_stop(&self) -> Option<Stop> {
        self.send_stop()
    }

    fn receivers_gone(&self) -> bool {
        self.side_gone(&self.hdr.consumers)
    }

    fn senders_gone(&self) -> bool {
        self.side_gone(&self.hdr.producers)
    }
}

/// The queue's ends while an immediate shutdown (or a put that landed
/// after one) drains it: as the queue's own, except that receiving goes on
/// until the ring is empty (the queue's own ends stop every get at once
/// after the shutdown).
struct Draining<'a>(&'a Inner);

impl Ends for Draining<'_> {
    const SEND_NEEDS_RECEIVER: bool = Inner::SEND_NEEDS_RECEIVER;
    const PROBE_BEFORE_SLEEP: bool = Inner::PROBE_BEFORE_SLEEP;
    const DISCARDS: bool = true;

    fn send_stop(&self) -> Option<Stop> {
        self.0.send_stop()
    }

    fn recv_stop(&self) -> Option<Stop> {
        None
    }

    fn drained_stop(&self) -> Option<Stop> {
        self.0.drained_stop()
    }

    fn receivers_gone(&self) -> bool {
        self.0.receivers_gone()
    }

    fn senders_gone(&self) -> bool {
        self.0.senders_gone()
    }
}

impl Inner {
    fn closed(&self) -> bool {
        self.flags() & CLOSED != 0
    }

    /// The flags word. Acquire: pairs with the SeqCst `fetch_or` of
    /// `close` and `shutdown`, so a call that sees the flag sees every
    /// item put before it.
    fn flags(&self) -> u32 {
        self.hdr.flags.load(Ordering::Acquire)
    }

    /// Whether every process on one side is gone (a system call per
    /// registered process asked: the question stops at the first live
    /// one). Dead consumers met on the way have their taken items counted
    /// as abandoned.
    fn side_gone(&self, reg: &RawRegistry<QUEUE_ENTRIES>) -> bool {
        let end = if std::ptr::eq(reg, &self.hdr.producers) { End::Send } else { End::Recv };
        reg.peers(|e| self.reclaim(end, e)) == Peers::AllDead
    }

    /// What a dead process's registry entry of `end` held goes back: a
    /// queue consumer's taken items count as abandoned, a channel end's
    /// handles leave the channel's count (the swap makes either happen
    /// once).
    pub(crate) fn reclaim(&self, end: End, e: &Entry) {
        if self.channel {
            crate::channel::typed::reclaim(self, end, e);
        } else {
            reclaim(e, &self.hdr.abandoned);
        }
    }

    /// The queue's segment (what a handle serializes as).
    pub(crate) fn header_segment(&self) -> &Segment {
        self.hdr.segment()
    }

    pub(crate) fn header(&self) -> &QueueHeader {
        &self.hdr
    }

    pub(crate) fn lane(&self) -> &Lane {
        &self.lane
    }

    /// The registry of one side.
    pub(crate) fn registry(&self, end: End) -> &RawRegistry<QUEUE_ENTRIES> {
        match end {
            End::Send => &self.hdr.producers,
            End::Recv => &self.hdr.consumers,
        }
    }
}

impl<T: Serialize + DeserializeOwned> Queue<T> {
    /// A queue holding at most `maxsize` items (0: as many as fit in the
    /// default 256 KiB ring), anonymous: pass it to children as an argument.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shmproc::Queue::<(u32, String)>::new(3)?;
    /// q.put((1, "one".into()))?;
    /// assert_eq!(q.get()?, (1, "one".into()));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`Segment::anonymous`].
    pub fn new(maxsize: usize) -> Result<Self> {
        Self::builder().maxsize(maxsize).build()
    }

    /// A builder for the item limit, ring size and name.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shmproc::Queue::<u64>::builder().capacity_bytes(4096).build()?;
    /// assert_eq!(q.capacity_bytes(), 4096);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn builder() -> QueueBuilder<T> {
        QueueBuilder { maxsize: 0, capacity: DEFAULT_QUEUE_CAPACITY, name: None, _t: PhantomData }
    }

    /// A named queue (see [`QueueBuilder::name`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-queue-c-{}", std::process::id());
    /// let q = shmproc::Queue::<u8>::create(&name, 10)?;
    /// assert_eq!(q.maxsize(), 10);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`Segment::create`].
    pub fn create(name: &str, maxsize: usize) -> Result<Self> {
        Self::builder().maxsize(maxsize).name(name).build()
    }

    /// Opens a named queue made for the same `T` (a `JoinableQueue` too).
    ///
    /// A queue opened by name has no socket to carry descriptors
    /// ([`Fd`](crate::Fd)) or anonymous handles beside its items: a put of
    /// an item holding one fails with [`Error::Codec`] saying so (items
    /// without any work as usual). Pass the creator's handle to a child
    /// instead, and the socket travels with it.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(shmproc::Queue::<u8>::open("no-such-queue").is_err());
    /// ```
    ///
    /// # Errors
    /// As for [`Segment::open`]; [`Error::LayoutMismatch`] for another `T`;
    /// [`Error::Corrupt`] if the header makes no sense.
    pub fn open(name: &str) -> Result<Self> {
        Self::wrap(Segment::builder().name(name).typed(kind::QUEUE, queue_hash::<T>()).open()?, None)
    }
}

impl<T> Queue<T> {
    pub(crate) fn wrap(seg: Segment, post: Option<Post>) -> Result<Self> {
        let hdr: Placed<QueueHeader> = Placed::new(&seg, 0)?;
        // Read once: the buffer is checked against the segment here, and
        // the limit is what this handle enforces from now on.
        let cap = hdr.capacity.load(Ordering::Relaxed);
        let maxsize = hdr.maxsize.load(Ordering::Relaxed);
        let lane = Lane::new(&seg, core::mem::offset_of!(QueueHeader, lane), RING_OFFSET, cap, maxsize)?
            .with_post(post.as_ref().map(|p| p.lane(0)));
        let none = UNREGISTERED;
        let channel = hdr.flags.load(Ordering::Relaxed) & CHANNEL != 0;
        Ok(Queue {
            inner: Arc::new(Inner {
                hdr,
                lane,
                producer: none.into(),
                consumer: none.into(),
                register_retry: ProbeRate::new(),
                channel,
                post,
            }),
            _t: PhantomData,
        })
    }

    /// The socket pair that carries descriptors (none if opened by name).
    pub(crate) fn post(&self) -> Option<&Post> {
        self.inner.post.as_ref()
    }

    /// The per-process state (the channel engine's [`Ends`] for queues).
    pub(crate) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }

    fn hdr(&self) -> &QueueHeader {
        &self.inner.hdr
    }

    fn joinable(&self) -> bool {
        self.hdr().flags.load(Ordering::Relaxed) & JOINABLE != 0
    }

    /// Items in the queue now (a snapshot; Python: `qsize()`).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shmproc::Queue::<u8>::new(0)?;
    /// q.put(1)?;
    /// q.put(2)?;
    /// assert_eq!(q.qsize(), 2);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    #[doc(alias = "len")]
    pub fn qsize(&self) -> usize {
        self.inner.lane.len() as usize
    }

    /// Whether the queue is empty now (a snapshot).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(shmproc::Queue::<u8>::new(0)?.is_empty());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        !self.inner.lane.has_message()
    }

    /// Whether the queue holds `maxsize` items now, or its ring has no room
    /// for even an empty message (a snapshot).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shmproc::Queue::<u8>::new(1)?;
    /// q.put(1)?;
    /// assert!(q.is_full());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn is_full(&self) -> bool {
        !self.inner.lane.has_room(0)
    }

    /// The item limit given at creation (0: none but the ring's bytes).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shmproc::Queue::<u8>::new(7)?.maxsize(), 7);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn maxsize(&self) -> usize {
        self.hdr().maxsize.load(Ordering::Relaxed) as usize
    }

    /// The ring's size in bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shmproc::Queue::<u8>::new(0)?.capacity_bytes(), shmproc::DEFAULT_QUEUE_CAPACITY);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn capacity_bytes(&self) -> usize {
        self.inner.lane.capacity() as usize
    }

    /// The largest encoded item that travels inline; larger ones go
    /// through a spill segment (slower, but any size works).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shmproc::Queue::<u8>::builder().capacity_bytes(1024).build()?;
    /// assert_eq!(q.max_inline(), 504);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn max_inline(&self) -> usize {
        self.inner.lane.max_message() as usize
    }

    /// Closes the queue for every process: later puts fail with
    /// [`PutError::Closed`], gets drain what is left and then fail with
    /// `Closed`, and blocked calls wake up. (Python's `close()` only stops
    /// the calling process's feeder thread; here it is the end of the
    /// stream for everyone, so no end-of-stream marker is needed.)
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shmproc::Queue::<u8>::new(0)?;
    /// q.put(1)?;
    /// q.close();
    /// assert!(matches!(q.put(2), Err(shmproc::PutError::Closed(2))));
    /// assert_eq!(q.get()?, 1);
    /// assert!(matches!(q.get(), Err(shmproc::GetError::Closed)));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn close(&self) {
        let h = self.hdr();
        h.flags.fetch_or(CLOSED, Ordering::SeqCst);
        self.inner.lane.wake_all();
        h.all_done.notify_all();
    }

    /// Counts this process as a producer from now on (it is counted anyway
    /// from its first put). Consumers learn that producers are gone
    /// ([`Error::Disconnected`]) only when every counted producer has
    /// exited, so a process that will put later, after other producers
    /// have finished, registers first.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shmproc::Queue::<u8>::new(0)?;
    /// q.register_producer()?; // gets elsewhere wait for this process
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Os`] if this process's liveness token cannot be made.
    pub fn register_producer(&self) -> Result<()> {
        self.role(End::Send).map(drop)
    }

    /// Counts this process as a consumer from now on (it is counted anyway
    /// from its first get): producers blocked on a full queue report
    /// [`Error::Disconnected`] only when every counted consumer has exited.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shmproc::Queue::<u8>::new(0)?;
    /// q.register_consumer()?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`register_producer`](Queue::register_producer).
    pub fn register_consumer(&self) -> Result<()> {
        self.role(End::Recv).map(drop)
    }

    /// Whether [`shutdown`](Queue::shutdown) was called (by any process;
    /// Python: `is_shutdown`).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shmproc::Queue::<u8>::new(0)?;
    /// assert!(!q.is_shutdown());
    /// q.shutdown(false)?;
    /// assert!(q.is_shutdown());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn is_shutdown(&self) -> bool {
        self.inner.flags() & SHUT_DOWN != 0
    }

    /// Whether [`close`](Queue::close) was called (by any process).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shmproc::Queue::<u8>::new(0)?;
    /// assert!(!q.is_closed());
    /// q.close();
    /// assert!(q.is_closed());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        self.inner.closed()
    }

    /// This process's registry entry for a role, registering on first use.
    /// A process that found the table full (more live processes on this
    /// side than it has entries) tries again at the probe rate, not on
    /// every call: a registration then asks the OS about every entry.
    pub(crate) fn role(&self, end: End) -> Result<Option<usize>> {
        let inner = &*self.inner;
        let (reg, cached) = match end {
            End::Send => (&inner.hdr.producers, &inner.producer),
            End::Recv => (&inner.hdr.consumers, &inner.consumer),
        };
        let i = cached.load(std::sync::atomic::Ordering::Relaxed);
        if i < TABLE_FULL && reg.is_mine(i) {
            return Ok(Some(i));
        }
        if i == TABLE_FULL && !self.inner.register_retry.due() {
            return Ok(None);
        }
        let got = reg.register(Dead::Reuse(&|e| inner.reclaim(end, e))).map_err(|e| Error::os("liveness token", e))?;
        if got.is_none() {
            self.inner.register_retry.note_attempt();
        }
        cached.store(got.unwrap_or(TABLE_FULL), std::sync::atomic::Ordering::Relaxed);
        Ok(got)
    }

    #[cfg(feature = "manager")]
    /// Whether consumers registered and the OS confirms each of them dead
    /// (a system call per registered consumer): the manager's clients ask
    /// this of its accept queue while they wait for the server's answer.
    pub(crate) fn consumers_gone(&self) -> bool {
        self.inner.receivers_gone()
    }

    // -- putting ---------------------------------------------------------

    /// Encodes `item` and sends it (spilled if it is larger than half the
    /// ring). `buf` lends its allocation (a thread's reusable buffer) and
    /// comes back.
    fn put_encoded<E: Ends>(&self, item: &T, buf: Vec<u8>, wait: Wait, ends: &E) -> (Vec<u8>, Result<(), Stop>)
    where
        T: Serialize,
    {
        // Descriptors and anonymous handles inside the item are collected
        // (see `post.rs`); what the encoding took is given back unless the
        // item went out.
        let (msg, fds, undo) = if self.inner.post.is_some() {
            // `buf` is lent to the first try; a second one (the item holds
            // a handle) encodes into a fresh buffer.
            let mut buf = Some(buf);
            handoff::encoding_message(|| codec::encode_into(item, buf.take().unwrap_or_default()))
        } else {
            // No socket (opened by name): named handles travel by name,
            // descriptors not at all (`handoff::FDS_ONLY_IN`).
            (codec::encode_into(item, buf), Vec::new(), handoff::Undo::default())
        };
        let msg = match msg {
            Ok(m) => m,
            Err(e) => {
                undo.run();
                return (Vec::new(), Err(Stop::Failed(e)));
            }
        };
        let out = self.role(End::Send).map_err(Stop::Failed);
        let out = out.and_then(|_| self.inner.lane.send_parcel(&msg, &fds, wait, ends));
        drop(fds);
        match out {
            Ok(()) => {
                drop(undo);
                self.discard_if_shut_down();
            }
            Err(_) => undo.run(),
        }
        (msg, out)
    }

    /// After a put landed: if an immediate shutdown began meanwhile (it
    /// may have finished draining before this item arrived), drops what
    /// is in the queue, this item included, as that shutdown would have.
    /// The items are dropped as bytes, without being decoded.
    fn discard_if_shut_down(&self) {
        // SeqCst fence: orders this put's commit before the look at the
        // flags; `shutdown` sets the flag, then fences, then drains. So
        // either this put sees `DISCARD`, or the draining sees the item.
        crate::loom::atomic::fence_seq_cst();
        if self.hdr().flags.load(Ordering::Relaxed) & DISCARD == 0 {
            return;
        }
        // A broken queue stops the draining; gets fail at once after an
        // immediate shutdown anyway.
        let _ = self.drain(|_, _| {});
        self.hdr().all_done.notify_all();
    }

    /// Takes every item out of the queue and hands its bytes to `each`
    /// (an immediate shutdown's draining). The items are not counted as
    /// taken: for a JoinableQueue an item gone from the ring without a
    /// taker is done. Receiving goes on after `IMMEDIATE` is set
    /// ([`Draining`]). Errors: the error that stopped it (a broken queue,
    /// a spill that cannot be read).
    fn drain(&self, mut each: impl FnMut(&[u8], Vec<OwnedFd>)) -> Result<()> {
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let mut fds = Vec::new();
            let head = self.inner.lane.head_position();
            match self.inner.lane.recv_message(&mut buf, Wait::No, &Draining(&self.inner), &mut |_| {}, &mut fds) {
                Ok(()) => each(&buf, fds),
                // The record left the ring (an item whose descriptors are
                // gone, a handle without the socket): it is dropped; go on.
                Err(Stop::Failed(_)) if self.inner.lane.head_position() != head => {}
                Err(Stop::Failed(e)) => return Err(e),
                Err(_) => return Ok(()),
            }
        }
    }

    fn put_with(&self, item: T, wait: Wait) -> Result<(), (T, Stop)>
    where
        T: Serialize,
    {
        self.put_via(item, wait, &*self.inner)
    }

    /// Puts `item` with `ends` telling when to stop (a queue's own, or a
    /// typed channel's): the item comes back with the reason it was not
    /// sent.
    pub(crate) fn put_via<E: Ends>(&self, item: T, wait: Wait, ends: &E) -> Result<(), (T, Stop)>
    where
        T: Serialize,
    {
        let (buf, out) = self.put_encoded(&item, take_buffer(&PUT_BUFFER), wait, ends);
        give_back(&PUT_BUFFER, buf);
        out.map_err(|stop| (item, stop))
    }

    /// Puts `item`, waiting while the queue is full.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shmproc::Queue::<Vec<f64>>::new(0)?;
    /// q.put(vec![1.0, 2.0])?;
    /// assert_eq!(q.get()?, [1.0, 2.0]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`PutError`], each with the item: `Closed` after
    /// [`close`](Queue::close); `Disconnected` if the queue is full and
    /// every consumer process is gone; `Failed` with [`Error::Codec`] if
    /// `item` cannot be encoded (nothing was put, and the queue stays
    /// usable), or [`Error::Corrupt`] if a peer broke the queue.
    pub fn put(&self, item: T) -> Result<(), PutError<T>>
    where
        T: Serialize,
    {
        self.put_with(item, Wait::Forever).map_err(|(item, stop)| PutError::from_stop(item, stop))
    }

    /// Puts `item` if there is room now; otherwise gives it back.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmproc::TryPutError;
    /// let q = shmproc::Queue::<u8>::new(1)?;
    /// q.try_put(1).expect("room");
    /// assert!(matches!(q.try_put(2), Err(TryPutError::Full(2))));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`TryPutError`], each with the item.
    #[doc(alias = "put_nowait")]
    pub fn try_put(&self, item: T) -> Result<(), TryPutError<T>>
    where
        T: Serialize,
    {
        self.put_with(item, Wait::No).map_err(|(item, stop)| TryPutError::from_stop(item, stop))
    }

    /// Puts `item`, waiting at most `timeout` for room.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let q = shmproc::Queue::<u8>::new(1)?;
    /// q.put_timeout(1, Duration::from_secs(1)).expect("room");
    /// assert!(q.put_timeout(2, Duration::from_millis(5)).unwrap_err().is_timeout());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`PutTimeoutError`], each with the item.
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutTimeoutError<T>>
    where
        T: Serialize,
    {
        self.put_with(item, Wait::after(timeout)).map_err(|(item, stop)| PutTimeoutError::from_stop(item, stop))
    }

    /// Puts `item`, waiting until `deadline` at most for room.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let q = shmproc::Queue::<u8>::new(1)?;
    /// q.put_deadline(1, Instant::now() + Duration::from_secs(1)).expect("room");
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`put_timeout`](Queue::put_timeout).
    pub fn put_deadline(&self, item: T, deadline: Instant) -> Result<(), PutTimeoutError<T>>
    where
        T: Serialize,
    {
        self.put_with(item, Wait::Until(deadline)).map_err(|(item, stop)| PutTimeoutError::from_stop(item, stop))
    }

    // -- getting ---------------------------------------------------------

    /// Gets a record into `out` (a spill reference resolved), running
    /// `hook` on the record's bytes inside the get critical section,
    /// before the record leaves the ring: a consumer killed before or
    /// inside the hook leaves the record for the next consumer. A
    /// `JoinableQueue` consumer's count of taken items grows there too (a
    /// consumer killed after it is charged for an item that stays in the
    /// ring: reported as abandoned once, delivered again, never the other
    /// way round). Crate-internal callers: the pool's workers write their
    /// slot in the hook.
    #[cfg(feature = "pool")]
    pub(crate) fn get_raw_then(
        &self,
        out: &mut Vec<u8>,
        wait: Wait,
        hook: &mut dyn FnMut(&[u8]),
        fds: &mut Vec<OwnedFd>,
    ) -> Result<(), Stop> {
        self.get_raw_via(out, wait, &*self.inner, hook, fds)
    }

    /// Registers this process as a consumer: the registry entry that
    /// counts the items it takes (a `JoinableQueue`'s), or `None`.
    fn taken_counter(&self) -> Result<Option<&AtomicU64>, Stop> {
        let h = self.hdr();
        let me = self.role(End::Recv)?;
        if !self.joinable() {
            return Ok(None);
        }
        // Taken items are counted in the entry: a consumer without one
        // could not mark them done.
        let full = Error::InvalidArgument { what: "JoinableQueue has as many live consumer processes as it can track" };
        Ok(Some(&me.and_then(|i| h.consumers.entry(i)).ok_or_else(|| Stop::Failed(full))?.taken))
    }

    fn get_raw_via<E: Ends>(
        &self,
        out: &mut Vec<u8>,
        wait: Wait,
        ends: &E,
        hook: &mut dyn FnMut(&[u8]),
        fds: &mut Vec<OwnedFd>,
    ) -> Result<(), Stop> {
        let entry = self.taken_counter()?;
        let mut counted = false;
        let mut count = |bytes: &[u8]| {
            if let Some(taken) = entry {
                taken.fetch_add(1, Ordering::SeqCst);
                counted = true;
            }
            hook(bytes);
        };
        let got = self.inner.lane.recv_message(out, wait, ends, &mut count, fds);
        if let (Err(Stop::Failed(_)), true, Some(taken)) = (&got, counted, entry) {
            // The record left the ring but nothing was handed out (its
            // descriptors were gone, its spill could not be read): nobody
            // will mark it done, so it is not counted as taken.
            let _ = taken.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
            self.hdr().all_done.notify_all();
        }
        got
    }

    fn get_with(&self, wait: Wait) -> Result<T, Stop>
    where
        T: DeserializeOwned,
    {
        self.get_via(wait, &*self.inner)
    }

    /// Takes an item with `ends` telling when to stop (a queue's own, or a
    /// typed channel's).
    pub(crate) fn get_via<E: Ends>(&self, wait: Wait, ends: &E) -> Result<T, Stop>
    where
        T: DeserializeOwned,
    {
        let mut buf = take_buffer(&GET_BUFFER);
        let mut fds = Vec::new();
        let out = self
            .get_raw_via(&mut buf, wait, ends, &mut |_| {}, &mut fds)
            .and_then(|()| handoff::with_fds(fds, || codec::decode(&buf)).map_err(Stop::Failed));
        give_back(&GET_BUFFER, buf);
        out
    }

    /// Takes the oldest item, waiting while the queue is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shmproc::Queue::<String>::new(0)?;
    /// q.put("hello".into())?;
    /// assert_eq!(q.get()?, "hello");
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`GetError`]: `Closed` once the queue is closed and drained;
    /// `Disconnected` if it is empty and every producer process is gone;
    /// `Failed` with [`Error::Codec`] if the bytes do not decode as a `T`,
    /// or [`Error::Corrupt`] if a peer broke the queue.
    pub fn get(&self) -> Result<T, GetError>
    where
        T: DeserializeOwned,
    {
        self.get_with(Wait::Forever).map_err(GetError::from_stop)
    }

    /// A blocking iterator over the items: each `next` is a
    /// [`get`](Queue::get); it ends when the queue is closed and drained
    /// or every producer is gone, and yields other failures (an item that
    /// does not decode) as `Err` and goes on.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shmproc::Queue::<u32>::new(0)?;
    /// for i in 0..3 {
    ///     q.put(i)?;
    /// }
    /// q.close(); // the iterator ends once the queue is drained
    /// let got: Vec<u32> = q.iter().collect::<Result<_, _>>()?;
    /// assert_eq!(got, [0, 1, 2]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn iter(&self) -> Iter<'_, T>
    where
        T: DeserializeOwned,
    {
        Iter { q: self, wait: Wait::Forever }
    }

    /// An iterator over the items there now: each `next` is a
    /// [`try_get`](Queue::try_get); it ends when the queue is empty (or
    /// closed, or its producers are gone).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shmproc::Queue::<u32>::new(0)?;
    /// q.put(1)?;
    /// q.put(2)?;
    /// let got: Vec<u32> = q.try_iter().collect::<Result<_, _>>()?;
    /// assert_eq!(got, [1, 2]);
    /// assert_eq!(q.try_iter().count(), 0); // nothing there now
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn try_iter(&self) -> Iter<'_, T>
    where
        T: DeserializeOwned,
    {
        Iter { q: self, wait: Wait::No }
    }

    /// Takes the oldest item if there is one now.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmproc::TryGetError;
    /// let q = shmproc::Queue::<u8>::new(0)?;
    /// assert!(matches!(q.try_get(), Err(TryGetError::Empty)));
    /// q.put(3)?;
    /// assert_eq!(q.try_get()?, 3);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`TryGetError`].
    #[doc(alias = "get_nowait")]
    pub fn try_get(&self) -> Result<T, TryGetError>
    where
        T: DeserializeOwned,
    {
        self.get_with(Wait::No).map_err(TryGetError::from_stop)
    }

    /// Takes the oldest item, waiting at most `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let q = shmproc::Queue::<u8>::new(0)?;
    /// assert!(matches!(q.get_timeout(Duration::from_millis(5)), Err(shmproc::GetTimeoutError::Timeout)));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`GetTimeoutError`].
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetTimeoutError>
    where
        T: DeserializeOwned,
    {
        self.get_with(Wait::after(timeout)).map_err(GetTimeoutError::from_stop)
    }

    /// Takes the oldest item, waiting until `deadline` at most.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let q = shmproc::Queue::<u8>::new(0)?;
    /// q.put(1)?;
    /// assert_eq!(q.get_deadline(Instant::now() + Duration::from_secs(1))?, 1);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`get_timeout`](Queue::get_timeout).
    pub fn get_deadline(&self, deadline: Instant) -> Result<T, GetTimeoutError>
    where
        T: DeserializeOwned,
    {
        self.get_with(Wait::Until(deadline)).map_err(GetTimeoutError::from_stop)
    }
}

impl<T: DeserializeOwned> Queue<T> {
    /// Shuts the queue down for every process (Python 3.13:
    /// `queue.Queue.shutdown`). From then on every put (`put`, `try_put`,
    /// `put_timeout`, `put_deadline`, `put_async`) fails with `ShutDown`,
    /// giving its item back. Gets go on taking what is left and fail with
    /// `ShutDown` once the queue is empty; with `immediate`, what is left
    /// is taken out and dropped here first and gets fail at once (for a
    /// [`JoinableQueue`], the dropped items count as done, so
    /// [`join`](JoinableQueue::join) returns once the items already taken
    /// are done). Calls blocked in any process wake: a blocked put fails
    /// with `ShutDown`, a blocked get takes an item or fails with
    /// `ShutDown`. [`is_shutdown`](Queue::is_shutdown) tells it.
    ///
    /// The state lives in the queue's shared memory, so it holds for every
    /// handle in every process, and it cannot be undone.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmproc::{GetError, PutError, Queue};
    ///
    /// let q = Queue::<u32>::new(0)?;
    /// q.put(1)?;
    /// q.put(2)?;
    /// q.shutdown(false)?;
    /// assert!(matches!(q.put(3), Err(PutError::ShutDown(3))));
    /// assert_eq!(q.get()?, 1); // what is left still comes out
    /// assert_eq!(q.get()?, 2);
    /// assert!(matches!(q.get(), Err(GetError::ShutDown)));
    ///
    /// let q = Queue::<u32>::new(0)?;
    /// q.put(1)?;
    /// q.shutdown(true)?; // the item is dropped
    /// assert!(q.is_empty());
    /// assert!(matches!(q.get(), Err(GetError::ShutDown)));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// With `immediate`, the error that stopped the draining of the queue
    /// ([`Error::Corrupt`] if a peer broke it, [`Error::Os`] for a
    /// spilled item that cannot be read); the queue is shut down all the
    /// same, and gets fail at once. Items that do not decode as a `T` are
    /// dropped without an error.
    ///
    /// A put that began before the shutdown may still finish, as with
    /// Python's lock; after an immediate shutdown such a put drains the
    /// queue itself (dropping its item as bytes), so nothing stays behind
    /// and a `JoinableQueue`'s `join` still returns. Items dropped that way
    /// are not decoded: a typed channel's end inside one stays counted
    /// until the process that sent it exits.
    pub fn shutdown(&self, immediate: bool) -> Result<()> {
        let h = self.hdr();
        // SeqCst: pairs with the Acquire loads of `flags` in the calls'
        // stops, so a call that sees the flag sees the items put before.
        h.flags.fetch_or(if immediate { SHUT_DOWN | DISCARD } else { SHUT_DOWN }, Ordering::SeqCst);
        // The other half of the fence pair in `discard_if_shut_down`.
        crate::loom::atomic::fence_seq_cst();
        let mut out = Ok(());
        if immediate {
            // Decoded, then dropped: handles inside the items are released.
            out = self.drain(|bytes, fds| drop(handoff::with_fds(fds, || codec::decode::<T>(bytes))));
            h.flags.fetch_or(IMMEDIATE, Ordering::SeqCst);
        }
        self.inner.lane.wake_all();
        h.all_done.notify_all();
        out
    }
}

/// Raw records, for the pool (crate-internal): the caller encodes its own
/// records, which must fit inline, and may run a hook on a record's bytes
/// inside the get critical section.
impl<T> Queue<T> {
    #[cfg(feature = "pool")]
    /// Puts `record` as one inline record. Records larger than
    /// [`max_inline`](Queue::max_inline) are refused with `TooLarge`.
    pub(crate) fn put_raw(&self, record: &[u8], wait: Wait) -> Result<(), Stop> {
        let max = self.max_inline();
        if record.len() > max {
            return Err(Stop::Failed(Error::TooLarge { len: record.len(), max }));
        }
        self.role(End::Send)?;
        self.inner.lane.send_record(record, bytes::TAG_INLINE, wait, &*self.inner)
    }

    #[cfg(feature = "pool")]
    /// Puts `record` with the descriptors `fds` beside it (a parcel, see
    /// `post.rs`), as one inline record: one larger than
    /// [`max_inline_parcel`](Queue::max_inline_parcel) is refused with
    /// `TooLarge`. Without descriptors: [`put_raw`](Queue::put_raw).
    pub(crate) fn put_raw_parcel(&self, record: &[u8], fds: &[OwnedFd], wait: Wait) -> Result<(), Stop> {
        if fds.is_empty() {
            return self.put_raw(record, wait);
        }
        let max = self.max_inline_parcel();
        if record.len() > max {
            return Err(Stop::Failed(Error::TooLarge { len: record.len(), max }));
        }
        self.role(End::Send)?;
        self.inner.lane.send_parcel(record, fds, wait, &*self.inner)
    }

    #[cfg(feature = "pool")]
    /// Puts plain inline records, `buf[from..ends[0]]`,
    /// `buf[ends[0]..ends[1]]` and so on, in order under one lock hold and with one wake-up,
    /// never waiting for room: the number put (a prefix of them). Each must
    /// be at most [`max_inline`](Queue::max_inline) bytes.
    pub(crate) fn put_raw_many(&self, buf: &[u8], from: usize, ends: &[usize]) -> Result<usize, Stop> {
        self.role(End::Send)?;
        self.inner.lane.send_many(buf, from, ends, &*self.inner)
    }

    #[cfg(feature = "pool")]
    /// Takes up to `max` more plain inline records without waiting, under
    /// one lock hold if the lock is free: each record's bytes are appended
    /// to `out`, its end offset pushed to `ends`. `take` runs on each
    /// record inside the get critical section, as the hook of
    /// [`get_raw_then`](Queue::get_raw_then) does, and says whether to take
    /// it. It stops at the first record not taken, a spilled record or one
    /// with descriptors (a `get_raw_then` takes those). The number taken.
    /// Not for a `JoinableQueue` (its taken counts are kept by
    /// `get_raw_then` only): 0 there.
    pub(crate) fn get_raw_more(
        &self,
        out: &mut Vec<u8>,
        ends: &mut Vec<usize>,
        max: usize,
        take: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<usize, Stop> {
        if self.joinable() {
            return Ok(0);
        }
        self.role(End::Recv)?;
        self.inner.lane.recv_more(out, ends, max, take)
    }

    #[cfg(feature = "pool")]
    /// The largest record [`put_raw_parcel`](Queue::put_raw_parcel) sends
    /// inline with descriptors (a parcel's id takes 8 bytes).
    pub(crate) fn max_inline_parcel(&self) -> usize {
        self.max_inline().saturating_sub(8)
    }

    #[cfg(feature = "pool")]
    /// The token that spill segments of this queue are recorded under (its
    /// creator's), for callers that spill records themselves.
    pub(crate) fn spill_owner(&self) -> Option<crate::owner::token::Token> {
        self.inner.lane.spill_owner()
    }
}

thread_local! {
    /// Each thread's encode and receive buffers, reused across calls so a
    /// put or get of a small item allocates nothing but the item itself.
    static PUT_BUFFER: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
    static GET_BUFFER: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Buffers larger than this are not kept between calls (a thread keeps at
/// most two, so a stream of 1 MiB items reuses its buffers).
const KEEP_BUFFER: usize = 2 << 20;

/// Takes a thread's buffer (an empty one if a reentrant call holds it).
fn take_buffer(slot: &'static std::thread::LocalKey<std::cell::Cell<Vec<u8>>>) -> Vec<u8> {
    slot.try_with(std::cell::Cell::take).unwrap_or_default()
}

/// Returns a buffer for reuse (dropped if it grew too large).
fn give_back(slot: &'static std::thread::LocalKey<std::cell::Cell<Vec<u8>>>, mut buf: Vec<u8>) {
    if buf.capacity() <= KEEP_BUFFER {
        buf.clear();
        let _ = slot.try_with(|c| c.set(buf));
    }
}

/// Moves a dead consumer's taken-but-not-done items to the abandoned count
/// (the swap makes it exactly once).
fn reclaim(e: &Entry, abandoned: &AtomicU64) {
    let n = e.taken.swap(0, Ordering::SeqCst);
    if n != 0 {
        abandoned.fetch_add(n, Ordering::SeqCst);
    }
}

/// The iterator of [`Queue::iter`] (blocking) and [`Queue::try_iter`]
/// (what is there now); also `for x in &queue`.
#[must_use = "iterators do nothing unless consumed"]
pub struct Iter<'a, T> {
    q: &'a Queue<T>,
    wait: Wait,
}

impl<T> std::fmt::Debug for Iter<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iter").field("blocking", &(self.wait == Wait::Forever)).finish_non_exhaustive()
    }
}

impl<T: DeserializeOwned> Iterator for Iter<'_, T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        Stop::next_item(self.q.get_with(self.wait))
    }
}

impl<'a, T: DeserializeOwned> IntoIterator for &'a Queue<T> {
    type Item = Result<T>;
    type IntoIter = Iter<'a, T>;

    /// [`Queue::iter`]: blocking, until closed and drained.
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

#[cfg(feature = "async")]
impl<T> crate::channel::wait::private::Sealed for Queue<T> {}

/// Ready when an item is there, or a `get` would end at once (the queue
/// closed and drained, or every producer gone).
#[cfg(feature = "async")]
impl<T> crate::channel::wait::Waitable for Queue<T> {
    fn target(&self) -> Result<crate::channel::wait::WaitTarget<'_>> {
        self.role(End::Recv)?;
        Ok(crate::channel::wait::WaitTarget::lane(&self.inner.lane, &*self.inner))
    }
}

#[cfg(feature = "async")]
impl<T> crate::channel::wait::private::Sealed for JoinableQueue<T> {}

/// As for a [`Queue`].
#[cfg(feature = "async")]
impl<T> crate::channel::wait::Waitable for JoinableQueue<T> {
    fn target(&self) -> Result<crate::channel::wait::WaitTarget<'_>> {
        self.q.target()
    }
}

/// A joinable queue's `all_done` word as the waiting service sees it.
#[cfg(feature = "async")]
struct AllDoneWord(Placed<QueueHeader>);

#[cfg(feature = "async")]
impl crate::watch::AsyncWord for AllDoneWord {
    fn word(&self) -> &std::sync::atomic::AtomicU32 {
        self.0.all_done.seq_word()
    }

    fn woken(&self) {
        self.0.all_done.arrived();
    }
}

#[cfg(feature = "async")]
impl<T> Queue<T> {
    /// The async twin of [`put_via`](Queue::put_via): waits for room
    /// through the waiting service.
    pub(crate) async fn put_via_async<E: Ends>(&self, item: T, ends: &E) -> Result<(), (T, Stop)>
    where
        T: Serialize,
    {
        // Descriptors and anonymous handles as in `put_encoded`.
        let (msg, fds, undo) = if self.inner.post.is_some() {
            handoff::encoding_message(|| codec::encode(&item))
        } else {
            (codec::encode(&item), Vec::new(), handoff::Undo::default())
        };
        let msg = match msg {
            Ok(m) => m,
            Err(e) => {
                undo.run();
                return Err((item, Stop::Failed(e)));
            }
        };
        if let Err(e) = self.role(End::Send) {
            undo.run();
            return Err((item, Stop::Failed(e)));
        }
        // A future dropped while it waits gives back what was lent.
        let undo = handoff::UndoOnDrop(Some(undo));
        match self.inner.lane.send_parcel_async(&msg, &fds, ends).await {
            Ok(()) => {
                undo.forget();
                self.discard_if_shut_down();
                Ok(())
            }
            Err(stop) => Err((item, stop)),
        }
    }

    /// The async twin of [`get_via`](Queue::get_via).
    pub(crate) async fn get_via_async<E: Ends>(&self, ends: &E) -> Result<T, Stop>
    where
        T: DeserializeOwned,
    {
        let lane = &self.inner.lane;
        let mut sleep = LaneSleep::new(lane, Side::Receiving);
        std::future::poll_fn(|cx| self.poll_get_via(&mut sleep.state, cx, ends)).await
    }

    /// One poll of an async get (a `Stream`'s step): the item, or
    /// `Pending` with `state` registered (nothing taken).
    pub(crate) fn poll_get_via<E: Ends>(
        &self,
        state: &mut SleepState,
        cx: &mut std::task::Context<'_>,
        ends: &E,
    ) -> std::task::Poll<Result<T, Stop>>
    where
        T: DeserializeOwned,
    {
        self.inner.lane.poll_recv_with(state, cx, ends, || self.get_via(Wait::No, ends))
    }

    /// Withdraws a `Stream`'s registration (see [`SleepState::cancel`]).
    pub(crate) fn cancel_get(&self, state: &mut SleepState) {
        let lane = &self.inner.lane;
        state.cancel(EcRef::lane(lane, Side::Receiving), || lane.has_message());
    }

    /// Puts `item`, waiting while the queue is full without blocking the
    /// thread: the async twin of [`put`](Queue::put).
    ///
    /// Cancellation: a future dropped before it completes has put nothing
    /// (the item is put whole, in one step of one poll, or not at all).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shmproc::Queue::<String>::new(0)?;
    /// futures::executor::block_on(async {
    ///     q.put_async("hi".to_string()).await?;
    ///     assert_eq!(q.get_async().await?, "hi");
    ///     Ok::<(), shmproc::Error>(())
    /// })?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`put`](Queue::put), with the item.
    pub async fn put_async(&self, item: T) -> Result<(), PutError<T>>
    where
        T: Serialize,
    {
        self.put_via_async(item, &*self.inner).await.map_err(|(item, stop)| PutError::from_stop(item, stop))
    }

    /// Takes the oldest item, waiting while the queue is empty without
    /// blocking the thread: the async twin of [`get`](Queue::get).
    ///
    /// Cancellation: a future dropped before it completes has taken no
    /// item (an item is taken and decoded in one step of one poll).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shmproc::Queue::<u32>::new(0)?;
    /// let producer = q.clone();
    /// let t = std::thread::spawn(move || producer.put(7));
    /// assert_eq!(futures::executor::block_on(q.get_async())?, 7);
    /// t.join().expect("producer")?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`get`](Queue::get).
    pub async fn get_async(&self) -> Result<T, GetError>
    where
        T: DeserializeOwned,
    {
        self.get_via_async(&*self.inner).await.map_err(GetError::from_stop)
    }
}

/// A [`Queue`] that counts unfinished items (Python:
/// `multiprocessing.JoinableQueue`): every `put` adds one, every
/// [`task_done`](JoinableQueue::task_done) marks one finished, and
/// [`join`](JoinableQueue::join) waits until all are.
///
/// All of [`Queue`]'s methods are available (through `Deref`). A consumer
/// process that dies holding items it took but did not mark done does not
/// make `join` hang: once the OS confirms the death, those items count as
/// abandoned and `join` returns [`Error::Abandoned`].
///
/// `task_done` must be called by the process that took the item (items are
/// counted per consumer process, which is how a dead consumer's items are
/// found).
///
/// # Examples
///
/// ```
/// fn worker(q: shmproc::JoinableQueue<u32>) {
///     while let Ok(n) = q.get() {
///         let _ = n * n;
///         q.task_done().expect("one task_done per get");
///     }
/// }
///
/// let q = shmproc::JoinableQueue::new(0)?;
/// let child = shmproc::Process::builder().daemon(true).spawn(worker, q.clone())?;
/// for n in 0..10 {
///     q.put(n)?;
/// }
/// q.join()?; // every item was taken and marked done
/// child.terminate()?;
/// # Ok::<(), shmproc::Error>(())
/// ```
pub struct JoinableQueue<T> {
    q: Queue<T>,
}

#[cfg(test)]
impl<T> JoinableQueue<T> {
    /// The queue underneath (the crate's own tests reach its socket).
    pub(crate) fn queue(&self) -> &Queue<T> {
        &self.q
    }
}

impl<T> Clone for JoinableQueue<T> {
    fn clone(&self) -> Self {
        JoinableQueue { q: self.q.clone() }
    }
}

impl<T> std::fmt::Debug for JoinableQueue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinableQueue").field("queue", &self.q).field("unfinished", &self.unfinished()).finish()
    }
}

impl<T> std::ops::Deref for JoinableQueue<T> {
    type Target = Queue<T>;
    fn deref(&self) -> &Queue<T> {
        &self.q
    }
}

impl<T: Serialize + DeserializeOwned> JoinableQueue<T> {
    /// A joinable queue holding at most `maxsize` items (0: as many as fit
    /// in the default ring).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shmproc::JoinableQueue::<u8>::new(4)?;
    /// q.put(1)?;
    /// assert_eq!(q.unfinished(), 1);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`Queue::new`].
    pub fn new(maxsize: usize) -> Result<Self> {
        Queue::builder().maxsize(maxsize).build_joinable()
    }

    /// A named joinable queue.
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-jq-{}", std::process::id());
    /// let q = shmproc::JoinableQueue::<u8>::create(&name, 0)?;
    /// assert!(shmproc::JoinableQueue::<u8>::open(&name).is_ok());
    /// # drop(q);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`Queue::create`].
    pub fn create(name: &str, maxsize: usize) -> Result<Self> {
        Queue::builder().maxsize(maxsize).name(name).build_joinable()
    }

    /// Opens a named joinable queue.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(shmproc::JoinableQueue::<u8>::open("no-such-jq").is_err());
    /// ```
    ///
    /// # Errors
    /// As for [`Queue::open`]; [`Error::InvalidArgument`] if the queue is
    /// not joinable.
    pub fn open(name: &str) -> Result<Self> {
        let q = Queue::open(name)?;
        if !q.joinable() {
            return Err(Error::InvalidArgument { what: "the named queue is a Queue, not a JoinableQueue" });
        }
        Ok(JoinableQueue { q })
    }
}

impl<T> JoinableQueue<T> {
    /// Marks one item taken by this process as finished.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shmproc::JoinableQueue::<u8>::new(0)?;
    /// q.put(1)?;
    /// q.get()?;
    /// q.task_done()?;
    /// assert!(q.task_done().is_err()); // more task_done than gets
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if this process has no unfinished items
    /// (Python: `ValueError: task_done() called too many times`).
    pub fn task_done(&self) -> Result<()> {
        let q = &self.q;
        let h = q.hdr();
        let too_many = Error::InvalidArgument { what: "task_done() called more times than this process took items" };
        let i = q.inner.consumer.load(std::sync::atomic::Ordering::Relaxed);
        if i >= TABLE_FULL || !h.consumers.is_mine(i) {
            return Err(too_many);
        }
        let e = h.consumers.entry(i).ok_or_else(|| Error::Corrupt { what: "queue registry" })?;
        e.taken.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).map_err(|_| too_many)?;
        h.all_done.notify_all();
        Ok(())
    }

    /// Items put and not yet marked done (taken or still queued; a
    /// snapshot). Items abandoned by dead consumers are not counted once
    /// their deaths were noticed.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shmproc::JoinableQueue::<u8>::new(0)?;
    /// q.put(1)?;
    /// q.put(2)?;
    /// q.get()?;
    /// assert_eq!(q.unfinished(), 2);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn unfinished(&self) -> u64 {
        let h = self.q.hdr();
        let taken: u64 = (0..QUEUE_ENTRIES)
            .filter_map(|i| h.consumers.entry(i))
            .map(|e| e.taken.load(Ordering::SeqCst))
            .fold(0u64, u64::saturating_add);
        taken.saturating_add(self.q.qsize() as u64)
    }

    /// Items abandoned so far by consumers that died before `task_done`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shmproc::JoinableQueue::<u8>::new(0)?.abandoned(), 0);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn abandoned(&self) -> u64 {
        self.q.hdr().abandoned.load(Ordering::SeqCst)
    }

    fn all_done(&self) -> bool {
        self.q.is_empty() && self.unfinished() == 0
    }

    /// The outcome of a join that found every item finished.
    fn joined(&self) -> Result<(), QueueJoinTimeoutError> {
        match self.abandoned() {
            0 => Ok(()),
            items => Err(QueueJoinTimeoutError::Abandoned { items }),
        }
    }

    /// A joiner's liveness question: turns dead consumers' items into
    /// abandoned ones (which ends the wait: they no longer count as
    /// unfinished). Never "gone": a join ends by a look.
    fn reclaim_dead_consumers(&self) -> bool {
        let h = &self.q.inner.hdr;
        h.consumers.reclaim_dead(|e| reclaim(e, &h.abandoned));
        false
    }

    /// The error of a join without a deadline (one that ends only when
    /// every item is done, so never by `Timeout`).
    fn without_deadline(&self, e: QueueJoinTimeoutError) -> QueueJoinError {
        match e {
            QueueJoinTimeoutError::Abandoned { items } => QueueJoinError::Abandoned { items },
            QueueJoinTimeoutError::Timeout => QueueJoinError::Abandoned { items: self.abandoned() },
        }
    }

    fn join_until(&self, wait: Wait) -> Result<(), QueueJoinTimeoutError> {
        let q = &self.q.inner;
        let probe = ProbeRate::new();
        let other = Other { gone: || self.reclaim_dead_consumers(), rate: &probe, ask_first: false };
        // "All done" is notified to everyone (`notify_all`), so joiners
        // need no shared awake count nor position: these are private.
        let (awake, position) = (Awake::default(), AtomicU64::new(0));
        let call = Call::enter(&q.hdr.all_done, &awake, &position, || false);
        loop {
            if self.all_done() {
                return self.joined();
            }
            // `wait_on` ends a wait only by its deadline: its other side
            // never reports "gone".
            if wait_on(&call, || self.all_done(), || false, wait, &other).is_err() {
                return if self.all_done() { self.joined() } else { Err(QueueJoinTimeoutError::Timeout) };
            }
        }
    }

    /// Waits until every item put has been taken and marked done (or
    /// abandoned by a consumer that died), without blocking the thread:
    /// the async twin of [`join`](JoinableQueue::join).
    ///
    /// Cancellation: dropping the future changes nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shmproc::JoinableQueue::<u8>::new(0)?;
    /// q.put(1)?;
    /// let consumer = q.clone();
    /// let t = std::thread::spawn(move || {
    ///     consumer.get().expect("item");
    ///     consumer.task_done()
    /// });
    /// futures::executor::block_on(q.join_async())?;
    /// t.join().expect("consumer")?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`join`](JoinableQueue::join).
    ///
    /// # Panics
    /// If the waiting service cannot wait: its thread cannot start, or
    /// the kernel has no `futex_waitv` (Linux before 5.16).
    #[cfg(feature = "async")]
    pub async fn join_async(&self) -> Result<(), QueueJoinError> {
        let q = &self.q.inner;
        let probe = ProbeRate::new();
        let other = Other { gone: || self.reclaim_dead_consumers(), rate: &probe, ask_first: false };
        // As in `join_until`: "all done" is notified to everyone, so the
        // awake count and position are private.
        let (awake, position) = (Awake::default(), AtomicU64::new(0));
        let source: Arc<dyn crate::watch::AsyncWord> = Arc::new(AllDoneWord(q.hdr.clone()));
        let prober = std::sync::atomic::AtomicBool::new(false);
        let at = super::lane_async::EcRef {
            ec: &q.hdr.all_done,
            awake: &awake,
            position: &position,
            source: &source,
            prober: &prober,
        };
        let mut sleeper = super::lane_async::Sleeper::new(at, || false);
        while !self.all_done() {
            // Ends only by a look: there is no deadline, and the other
            // side never reports "gone"; what else can end it
            // is the waiting service failing to start.
            if let Err(stop) = sleeper.wait(|| self.all_done(), || false, Wait::Forever, &other).await {
                panic!("JoinableQueue::join_async: the waiting service cannot wait: {}", stop.into_error());
            }
        }
        self.joined().map_err(|e| self.without_deadline(e))
    }

    /// Waits until every item put has been taken and marked done (or
    /// abandoned by a consumer that died).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shmproc::JoinableQueue::<u8>::new(0)?;
    /// q.join()?; // nothing put: returns at once
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`QueueJoinError::Abandoned`] if consumers died holding items (the
    /// queue has lost them; later joins report the same count).
    pub fn join(&self) -> Result<(), QueueJoinError> {
        self.join_until(Wait::Forever).map_err(|e| self.without_deadline(e))
    }

    /// As [`join`](JoinableQueue::join), waiting at most `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let q = shmproc::JoinableQueue::<u8>::new(0)?;
    /// q.put(1)?;
    /// assert!(matches!(q.join_timeout(Duration::from_millis(5)), Err(shmproc::QueueJoinTimeoutError::Timeout)));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`QueueJoinTimeoutError::Timeout`], and the case of
    /// [`join`](JoinableQueue::join).
    pub fn join_timeout(&self, timeout: Duration) -> Result<(), QueueJoinTimeoutError> {
        self.join_until(Wait::after(timeout))
    }

    /// As [`join`](JoinableQueue::join), waiting until `deadline` at most.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = shmproc::JoinableQueue::<u8>::new(0)?;
    /// q.join_deadline(std::time::Instant::now())?; // nothing put: done at once
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`join_timeout`](JoinableQueue::join_timeout).
    pub fn join_deadline(&self, deadline: Instant) -> Result<(), QueueJoinTimeoutError> {
        self.join_until(Wait::Until(deadline))
    }
}

impl<T> serde::Serialize for Queue<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        (self.inner.hdr.segment(), post::Wire(self.inner.post.as_ref())).serialize(s)
    }
}

impl<'de, T> serde::Deserialize<'de> for Queue<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let (seg, post) = <(Segment, post::Received)>::deserialize(d)?;
        if seg.layout_identity() != (kind::QUEUE, queue_hash::<T>()) {
            return Err(D::Error::custom(Error::LayoutMismatch {
                expected: queue_hash::<T>(),
                found: seg.layout_identity().1,
            }));
        }
        Queue::wrap(seg, post.0).map_err(D::Error::custom)
    }
}

impl<T> serde::Serialize for JoinableQueue<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.q.serialize(s)
    }
}

impl<'de, T> serde::Deserialize<'de> for JoinableQueue<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let q = Queue::deserialize(d)?;
        if !q.joinable() {
            return Err(D::Error::custom(Error::InvalidArgument { what: "a Queue, not a JoinableQueue" }));
        }
        Ok(JoinableQueue { q })
    }
}

#[cfg(all(test, feature = "pool", not(shmproc_loom)))]
mod raw_batch_tests {
    use super::*;

    /// Records `i` of `n`, `len` bytes each, one after the other, and
    /// where each ends.
    fn records(n: u8, len: usize) -> (Vec<u8>, Vec<usize>) {
        let mut buf = Vec::new();
        let mut ends = Vec::new();
        for i in 0..n {
            buf.extend(std::iter::repeat_n(i, len));
            ends.push(buf.len());
        }
        (buf, ends)
    }

    /// `put_raw_many` puts the prefix that fits; `get_raw_more` takes up
    /// to its limit, hooking each record, in order.
    #[test]
    fn many_records_go_in_and_out_under_one_lock() {
        let q = Queue::<u8>::builder().capacity_bytes(256).build().expect("queue");
        let (buf, ends) = records(10, 40);
        let put = q.put_raw_many(&buf, 0, &ends).expect("put");
        assert!((1..10).contains(&put), "a prefix fits in 256 bytes: {put}");
        // The rest, from where the put stopped, once there is room.
        let (mut out, mut got_ends, mut hooked) = (Vec::new(), Vec::new(), Vec::new());
        let mut hook = |b: &[u8]| {
            hooked.push(b[0]);
            true
        };
        let took = q.get_raw_more(&mut out, &mut got_ends, 3, &mut hook).expect("get");
        assert_eq!((took, hooked.as_slice()), (3, &[0u8, 1, 2][..]));
        assert_eq!(got_ends, vec![40, 80, 120]);
        let again = q.put_raw_many(&buf, ends[put - 1], &ends[put..]).expect("put");
        assert!(again >= 1);
        let mut hook = |b: &[u8]| {
            hooked.push(b[0]);
            true
        };
        let took = q.get_raw_more(&mut out, &mut got_ends, 100, &mut hook).expect("get");
        assert_eq!(took, put + again - 3);
        let want: Vec<u8> = (0..(put + again) as u8).collect();
        assert_eq!(hooked, want);
        assert_eq!(out, buf[..out.len()]);
        assert_eq!(q.get_raw_more(&mut out, &mut got_ends, 100, &mut |_| true).expect("get"), 0, "empty");
    }

    /// A record with descriptors is left for `get_raw_then`: the batch
    /// stops before it.
    #[test]
    fn a_batch_stops_at_a_record_with_descriptors() {
        let q = Queue::<u8>::new(0).expect("queue");
        let fd: OwnedFd = std::fs::File::open("/dev/null").expect("open").into();
        q.put_raw(b"plain-1", Wait::No).expect("put");
        q.put_raw_parcel(b"with-fd", &[fd], Wait::No).expect("put");
        q.put_raw(b"plain-2", Wait::No).expect("put");
        let (mut out, mut ends) = (Vec::new(), Vec::new());
        assert_eq!(q.get_raw_more(&mut out, &mut ends, 10, &mut |_| true).expect("get"), 1);
        assert_eq!(out, b"plain-1");
        assert_eq!(q.get_raw_more(&mut out, &mut ends, 10, &mut |_| true).expect("get"), 0);
        let (mut rec, mut fds) = (Vec::new(), Vec::new());
        q.get_raw_then(&mut rec, Wait::No, &mut |_| {}, &mut fds).expect("get");
        assert_eq!((rec.as_slice(), fds.len()), (&b"with-fd"[..], 1));
        out.clear();
        ends.clear();
        assert_eq!(q.get_raw_more(&mut out, &mut ends, 10, &mut |_| true).expect("get"), 1);
        assert_eq!(out, b"plain-2");
    }
}
