//! `ByteRing`: a single-producer single-consumer ring of variable-size byte
//! messages in shared memory, over the protocol of [`bytes`](super::bytes),
//! with the same shape as [`SpscRing`](crate::SpscRing): a cheap handle,
//! producer and consumer roles claimed per process (taken over from a dead
//! holder), copies and zero-copy loans.
//!
//! | word | written by | meaning |
//! |---|---|---|
//! | `head`, `tail` | consumer, producer | positions of the byte protocol (see `bytes.rs`) |
//! | `capacity` | the creator | buffer bytes, a power of two; checked against the segment on every role claim |
//! | `producer`, `consumer` | claimers | the roles' holders (see `role.rs`) |
#![allow(unsafe_code)]

use std::ops::{Deref, DerefMut};

use crate::error::{Error, Result};
use crate::loom::atomic::{AtomicU32, AtomicU64, Ordering};
use crate::owner::probe::ProbeRate;
use crate::queue::bytes::{
    self, ByteConsumerCore, ByteProducerCore, ByteSlots, ReadSpan, ShmBytes, TAG_INLINE, WriteSpan, check_capacity,
};
use crate::queue::error::{BytePopError, BytePushError, try_iter_step};
use crate::queue::role::{self, Claim};
use crate::queue::spsc::{Positions, RingError};
use crate::shm::header::kind;
use crate::shm::layout::{CachePadded, ShmSafe, layout_hash_mix};
use crate::shm::segment::Segment;
use crate::shm::typed::Placed;

/// The ring's control words at the start of its segment's payload; the
/// buffer follows at [`BUF_OFFSET`].
#[derive(Debug)]
#[repr(C)]
pub(crate) struct ByteRingHeader {
    head: CachePadded<AtomicU64>,
    tail: CachePadded<AtomicU64>,
    /// Buffer bytes, a power of two in `64..=2^32`; set at creation.
    capacity: AtomicU64,
    /// The roles' holders (owner ids, thread slot bits cleared; 0 if none)
    /// and their process nonces.
    producer: AtomicU32,
    consumer: AtomicU32,
    producer_nonce: AtomicU64,
    consumer_nonce: AtomicU64,
}

// SAFETY: repr(C) over atomics (two padded): no pointers; any bits are
// valid values (positions and capacity are checked before every use,
// unknown holders are probed like lock owners); all interior-mutable.
unsafe impl ShmSafe for ByteRingHeader {
    const TAG: &'static str = "shmproc::ByteRingHeader";
}

/// Field offsets of a [`ByteRingHeader`], for read-only inspection
/// (`shmproc::inspect` reads them with `pread`, never maps).
#[cfg(feature = "inspect")]
pub(crate) mod peek {
    use super::ByteRingHeader;
    /// Consumer position.
    pub(crate) const HEAD: usize = core::mem::offset_of!(ByteRingHeader, head);
    /// Producer position.
    pub(crate) const TAIL: usize = core::mem::offset_of!(ByteRingHeader, tail);
    /// Capacity (slots or bytes).
    pub(crate) const CAPACITY: usize = core::mem::offset_of!(ByteRingHeader, capacity);
    /// Owner id of the producer handle's holder (0: none).
    pub(crate) const PRODUCER: usize = core::mem::offset_of!(ByteRingHeader, producer);
    /// Owner id of the consumer handle's holder (0: none).
    pub(crate) const CONSUMER: usize = core::mem::offset_of!(ByteRingHeader, consumer);
}

/// Where the buffer starts in the payload (after the header, 128-aligned).
const BUF_OFFSET: usize = 384;
const _: () = assert!(core::mem::size_of::<ByteRingHeader>() <= BUF_OFFSET);

const RING_HASH: u64 = layout_hash_mix(ByteRingHeader::LAYOUT_HASH, BUF_OFFSET as u64);

/// A single-producer single-consumer ring of byte messages of any length up
/// to [`max_message`](ByteRing::max_message) in shared memory: the fastest
/// way to stream variable-size records (encoded values, frames, rows) from
/// one process to another.
///
/// Each message is framed (an 8-byte header, the payload padded to 8
/// bytes) and never wraps around the buffer end, so it can be read and
/// written in place through a loan ([`ByteProducer::reserve`],
/// [`ByteConsumer::peek`]). The ring is a cheap handle (clone it, pass it
/// to a child, or create it by name); one process at a time takes the
/// [`ByteProducer`] role and one the [`ByteConsumer`] role. A role held by
/// a process that died is taken over by the next `producer()` /
/// `consumer()` call at the published positions: a message the dead
/// producer reserved but did not commit is never seen.
///
/// # Examples
///
#[cfg_attr(feature = "serde", doc = "```")]
#[cfg_attr(not(feature = "serde"), doc = "```ignore")]
/// use shmproc::{BytePopError, ByteRing};
///
/// fn produce(ring: ByteRing) {
///     let mut tx = ring.producer().expect("producer role");
///     for i in 0..100u32 {
///         let msg = vec![i as u8; i as usize]; // 0 to 99 bytes
///         while let Err(e) = tx.push(&msg) {
///             assert!(e.is_full(), "ring ok");
///             std::thread::yield_now(); // full: the consumer catches up
///         }
///     }
/// }
///
/// let ring = ByteRing::new(1024)?;
/// let mut rx = ring.consumer()?;
/// let mut child = shmproc::Process::spawn(produce, ring.clone())?;
/// let mut got = 0u32;
/// while got < 100 {
///     match rx.pop() {
///         Ok(msg) => {
///             assert_eq!(msg, vec![got as u8; got as usize]);
///             got += 1;
///         }
///         Err(BytePopError::Empty) => std::thread::yield_now(),
///         Err(e) => return Err(e.into()),
///     }
/// }
/// child.join()?;
/// # Ok::<(), shmproc::Error>(())
/// ```
#[derive(Clone)]
pub struct ByteRing {
    hdr: Placed<ByteRingHeader>,
}

impl std::fmt::Debug for ByteRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ByteRing").field("capacity", &self.capacity()).field("segment", self.seg()).finish()
    }
}

impl ByteRing {
    fn builder(capacity: u64) -> Result<crate::shm::segment::SegmentBuilder> {
        let size = usize::try_from(capacity)
            .ok()
            .and_then(|c| c.checked_add(BUF_OFFSET))
            .ok_or_else(|| Error::InvalidArgument { what: "byte ring too large for this platform" })?;
        Ok(Segment::builder().size(size).typed(kind::BYTES, RING_HASH))
    }

    fn init(seg: &Segment, capacity: u64) -> Result<()> {
        seg.typed_in::<ByteRingHeader>(0)?.capacity.store(capacity, Ordering::Relaxed);
        Ok(())
    }

    fn wrap(seg: Segment) -> Result<Self> {
        let ring = ByteRing { hdr: Placed::new(&seg, 0)? };
        ring.buffer()?; // validates capacity and bounds once
        Ok(ring)
    }

    fn seg(&self) -> &Segment {
        self.hdr.segment()
    }

    /// The buffer, after checking the header's capacity against the segment
    /// (a peer may have written anything there).
    fn buffer(&self) -> Result<ShmBytes> {
        ShmBytes::in_segment(self.seg(), BUF_OFFSET, self.hdr.capacity.load(Ordering::Relaxed))
    }

    fn positions(&self) -> Positions<'_> {
        Positions { head: &self.hdr.head, tail: &self.hdr.tail }
    }

    /// An anonymous ring of `capacity` buffer bytes (a power of two from 64
    /// bytes to 4 GiB); it carries messages of up to `capacity / 2 - 8`
    /// bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// let ring = shmproc::ByteRing::new(64 * 1024)?;
    /// assert_eq!(ring.capacity(), 64 * 1024);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a capacity that is not a power of two
    /// in range; as for [`Segment::anonymous`].
    pub fn new(capacity: usize) -> Result<Self> {
        let cap = check_capacity(capacity)?;
        Self::wrap(Self::builder(cap)?.anonymous_with(|s| Self::init(s, cap))?)
    }

    /// A named ring that unrelated processes can [`open`](ByteRing::open).
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-bytering-{}", std::process::id());
    /// let ring = shmproc::ByteRing::create(&name, 4096)?;
    /// assert_eq!(shmproc::ByteRing::open(&name)?.capacity(), 4096);
    /// # drop(ring);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`new`](ByteRing::new) and [`Segment::create`].
    pub fn create(name: &str, capacity: usize) -> Result<Self> {
        let cap = check_capacity(capacity)?;
        Self::wrap(Self::builder(cap)?.name(name).create_with(|s| Self::init(s, cap))?)
    }

    /// Opens a named ring.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(shmproc::ByteRing::open("no-such-byte-ring").is_err());
    /// ```
    ///
    /// # Errors
    /// As for [`Segment::open`]; [`Error::KindMismatch`] or
    /// [`Error::LayoutMismatch`] if the name holds something else;
    /// [`Error::Corrupt`] if the header makes no sense.
    pub fn open(name: &str) -> Result<Self> {
        Self::wrap(Segment::builder().name(name).typed(kind::BYTES, RING_HASH).open()?)
    }

    /// The buffer's size in bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shmproc::ByteRing::new(256)?.capacity(), 256);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn capacity(&self) -> usize {
        self.hdr.capacity.load(Ordering::Relaxed) as usize
    }

    /// The longest message the ring carries: `capacity / 2 - 8` bytes (so
    /// that one always fits once the consumer has drained the ring).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shmproc::ByteRing::new(256)?.max_message(), 120);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn max_message(&self) -> usize {
        (self.capacity() / 2).saturating_sub(bytes::HEADER as usize)
    }

    /// Messages in the ring now (a snapshot).
    ///
    /// # Examples
    ///
    /// ```
    /// let ring = shmproc::ByteRing::new(256)?;
    /// ring.producer()?.push(b"hello")?;
    /// assert_eq!(ring.len(), 1);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        // Acquire: pair with the sides' Release stores (a snapshot only).
        let (head, tail) = (self.hdr.head.load(Ordering::Acquire), self.hdr.tail.load(Ordering::Acquire));
        bytes::messages_between(head, tail, self.hdr.capacity.load(Ordering::Relaxed)) as usize
    }

    /// Whether the ring holds no message now.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(shmproc::ByteRing::new(256)?.is_empty());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        // Acquire: as in `len`.
        !bytes::has_message(self.hdr.head.load(Ordering::Acquire), self.hdr.tail.load(Ordering::Acquire))
    }

    /// Takes the producer role (one holder at a time; taken over if its
    /// holder died).
    ///
    /// # Examples
    ///
    /// ```
    /// let ring = shmproc::ByteRing::new(256)?;
    /// let tx = ring.producer()?;
    /// assert!(matches!(ring.producer(), Err(shmproc::Error::WouldBlock)));
    /// drop(tx);
    /// assert!(ring.producer().is_ok());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::WouldBlock`] if a live process holds it; [`Error::Corrupt`]
    /// if the header makes no sense.
    pub fn producer(&self) -> Result<ByteProducer> {
        // Validate first: a refused claim must not keep the role.
        let buf = self.buffer()?;
        let claim = role::claim(&self.hdr.producer, &self.hdr.producer_nonce)?;
        Ok(ByteProducer { core: ByteProducerCore::attach(&self.positions()), buf, claim, ring: self.clone() })
    }

    /// Takes the consumer role.
    ///
    /// # Examples
    ///
    /// ```
    /// let ring = shmproc::ByteRing::new(256)?;
    /// let rx = ring.consumer()?;
    /// # drop(rx);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`producer`](ByteRing::producer).
    pub fn consumer(&self) -> Result<ByteConsumer> {
        // Validate first: a refused claim must not keep the role.
        let buf = self.buffer()?;
        let claim = role::claim(&self.hdr.consumer, &self.hdr.consumer_nonce)?;
        Ok(ByteConsumer {
            core: ByteConsumerCore::attach(&self.positions()),
            buf,
            claim,
            probe: ProbeRate::new(),
            ring: self.clone(),
        })
    }
}

/// The writing end of a [`ByteRing`]; gives the role back on drop.
///
/// # Examples
///
/// ```
/// let ring = shmproc::ByteRing::new(256)?;
/// let mut tx = ring.producer()?;
/// tx.push(b"hello")?;
/// drop(tx); // another process or thread may now take the role
/// assert!(ring.producer().is_ok());
/// # Ok::<(), shmproc::Error>(())
/// ```
pub struct ByteProducer {
    core: ByteProducerCore,
    /// The buffer, checked when the role was taken (its capacity is ours
    /// from then on, whatever a peer writes into the header).
    buf: ShmBytes,
    /// The role, held in this process's name.
    claim: Claim,
    ring: ByteRing,
}

/// The reading end of a [`ByteRing`]; gives the role back on drop.
///
/// # Examples
///
/// ```
/// let ring = shmproc::ByteRing::new(256)?;
/// ring.producer()?.push(b"hi")?;
/// let mut rx = ring.consumer()?;
/// assert_eq!(rx.pop()?, b"hi");
/// assert!(matches!(rx.pop(), Err(shmproc::BytePopError::Empty)));
/// # Ok::<(), shmproc::Error>(())
/// ```
pub struct ByteConsumer {
    core: ByteConsumerCore,
    buf: ShmBytes,
    /// The role, held in this process's name.
    claim: Claim,
    /// Whether the producer role's holder died (asked at a bounded rate).
    probe: ProbeRate,
    ring: ByteRing,
}

impl std::fmt::Debug for ByteProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ByteProducer").field("ring", &self.ring).finish()
    }
}

impl std::fmt::Debug for ByteConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ByteConsumer").field("ring", &self.ring).finish()
    }
}

/// `Err(TooLarge)` for a message longer than a `cap`-byte buffer carries.
fn check_len(len: usize, cap: u64) -> Result<u64> {
    let max = bytes::max_message(cap);
    if len as u64 > max {
        return Err(Error::TooLarge { len, max: max as usize });
    }
    Ok(len as u64)
}

impl ByteProducer {
    /// Copies `msg` into the ring as one message if there is room for it
    /// now; never waits.
    ///
    /// The non-blocking (`try_`) form of the crate's calling convention,
    /// named as the other rings' [`Producer::push`](crate::Producer::push):
    /// [`BytePushError::Full`] says "not now". To wait for room, retry
    /// (yielding or backing off), or use a [`Pipe`](crate::Pipe). `msg` is
    /// taken by reference, so nothing comes back in the error (its item is
    /// `()`).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmproc::{BytePushError, Error};
    /// let ring = shmproc::ByteRing::new(64)?; // messages of up to 24 bytes
    /// let mut tx = ring.producer()?;
    /// tx.push(&[1; 24])?;
    /// tx.push(&[2; 24])?;
    /// assert!(matches!(tx.push(&[3; 1]), Err(BytePushError::Full(()))));
    /// assert!(matches!(tx.push(&[0; 25]), Err(BytePushError::Failed((), Error::TooLarge { .. }))));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`BytePushError::Full`] if there is no room for `msg` now;
    /// [`BytePushError::Failed`] if `msg` is longer than
    /// [`max_message`](ByteRing::max_message) ([`Error::TooLarge`]; the
    /// ring stays usable), the consumer's position makes no sense
    /// ([`Error::Corrupt`]), the role was lost to the other process of a
    /// fork ([`Error::RoleLost`]), or a forked child could make no liveness
    /// token ([`Error::Os`]).
    #[inline]
    #[doc(alias = "try_push")]
    pub fn push(&mut self, msg: &[u8]) -> std::result::Result<(), BytePushError> {
        self.check(msg.len()).map_err(|e| BytePushError::Failed((), e))?;
        match self.core.push(&self.ring.positions(), &self.buf, msg, TAG_INLINE) {
            Ok(true) => Ok(()),
            Ok(false) => Err(BytePushError::Full(())),
            Err(e) => Err(BytePushError::Failed((), e.into())),
        }
    }

    /// Lends `len` bytes of the ring to write one message in place, if
    /// there is room now. [`WriteLoan::commit`] publishes it (possibly
    /// shorter); a loan dropped without commit publishes nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// let ring = shmproc::ByteRing::new(1024)?;
    /// let mut tx = ring.producer()?;
    /// let mut loan = tx.reserve(100)?;
    /// loan[..5].copy_from_slice(b"hello");
    /// loan.commit(5); // a 5-byte message
    /// assert_eq!(ring.consumer()?.pop()?, b"hello");
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`push`](ByteProducer::push) of a `len`-byte message:
    /// [`BytePushError::Full`] if there is no room for it now.
    pub fn reserve(&mut self, len: usize) -> std::result::Result<WriteLoan<'_>, BytePushError> {
        let n = self.check(len).map_err(|e| BytePushError::Failed((), e))?;
        match self.core.reserve(&self.ring.positions(), &self.buf, n) {
            Ok(Some(span)) => Ok(WriteLoan { tx: self, span, len }),
            Ok(None) => Err(BytePushError::Full(())),
            Err(e) => Err(BytePushError::Failed((), e.into())),
        }
    }

    /// Checks that this process still holds the role and that a `len`-byte
    /// message fits the ring; returns `len`.
    #[inline]
    fn check(&mut self, len: usize) -> Result<u64> {
        self.claim.check(|| (&self.ring.hdr.producer, &self.ring.hdr.producer_nonce))?;
        check_len(len, self.buf.capacity())
    }

    /// The ring this role belongs to.
    ///
    /// # Examples
    ///
    /// ```
    /// let ring = shmproc::ByteRing::new(256)?;
    /// assert_eq!(ring.producer()?.ring().capacity(), 256);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn ring(&self) -> &ByteRing {
        &self.ring
    }
}

/// Bytes of a [`ByteRing`] lent to write one message in place (from
/// [`ByteProducer::reserve`]); dereferences to `[u8]` of the reserved
/// length. [`commit`](WriteLoan::commit) publishes; dropping it publishes
/// nothing.
///
/// # Examples
///
/// ```
/// let ring = shmproc::ByteRing::new(256)?;
/// let mut tx = ring.producer()?;
/// let mut loan = tx.reserve(3)?;
/// loan.copy_from_slice(b"abc"); // written in place, in shared memory
/// drop(loan); // not committed: nothing was sent
/// assert!(ring.is_empty());
/// # Ok::<(), shmproc::Error>(())
/// ```
#[must_use = "a write loan publishes nothing unless committed"]
pub struct WriteLoan<'a> {
    tx: &'a mut ByteProducer,
    span: WriteSpan,
    len: usize,
}

impl WriteLoan<'_> {
    /// Publishes the first `n` bytes of the loan as one message.
    ///
    /// # Examples
    ///
    /// ```
    /// let ring = shmproc::ByteRing::new(256)?;
    /// let mut tx = ring.producer()?;
    /// let mut loan = tx.reserve(8)?;
    /// loan.copy_from_slice(&7u64.to_le_bytes());
    /// loan.commit(8);
    /// assert_eq!(ring.len(), 1);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Panics
    /// If `n` is more than the loan's length.
    pub fn commit(self, n: usize) {
        assert!(n <= self.len, "commit of {n} bytes from a loan of {}", self.len);
        let tx = self.tx;
        tx.core.commit(&tx.ring.positions(), &tx.buf, self.span, n as u64, TAG_INLINE);
    }
}

impl Deref for WriteLoan<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the span's payload (`len <= span.max` bytes from
        // `payload()`) lies inside the buffer (rec + record_size(max) <= cap,
        // from `reserve`, whose start offset is checked 8-aligned), is
        // reserved for us and unpublished, so the consumer does not touch
        // it; the loan borrows the producer mutably, so nothing else of ours
        // does. A hostile peer may still write it: the accepted deviation of
        // SAFETY.md (bytes, valid for any value).
        unsafe { std::slice::from_raw_parts(self.tx.buf.ptr(self.span.payload()), self.len) }
    }
}

impl DerefMut for WriteLoan<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as for `deref`; `&mut self` makes this the only view.
        unsafe { std::slice::from_raw_parts_mut(self.tx.buf.ptr(self.span.payload()), self.len) }
    }
}

impl std::fmt::Debug for WriteLoan<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteLoan").field("len", &self.len).finish()
    }
}

impl ByteConsumer {
    /// Pops the oldest message if there is one now; never waits.
    ///
    /// The non-blocking (`try_`) form of the convention, named as the
    /// other rings' [`Consumer::pop`](crate::Consumer::pop).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmproc::BytePopError;
    /// let ring = shmproc::ByteRing::new(256)?;
    /// ring.producer()?.push(b"abc")?;
    /// let mut rx = ring.consumer()?;
    /// assert_eq!(rx.pop()?, b"abc");
    /// assert!(matches!(rx.pop(), Err(BytePopError::Empty)));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`BytePopError::Empty`] if there is no message now;
    /// [`BytePopError::Disconnected`] if the ring is empty and the producer
    /// role is held by a process the OS confirms dead (asked at most every
    /// few milliseconds; a new producer that takes the role over ends it);
    /// [`BytePopError::Failed`] if the producer's position or a record
    /// header makes no sense ([`Error::Corrupt`]), the role was lost to the
    /// other process of a fork ([`Error::RoleLost`]), or a forked child
    /// could make no liveness token ([`Error::Os`]).
    #[doc(alias = "try_pop")]
    pub fn pop(&mut self) -> std::result::Result<Vec<u8>, BytePopError> {
        let mut v = Vec::new();
        self.pop_into(&mut v).map(|_| v)
    }

    /// Pops the oldest message into `out` (cleared first, its allocation
    /// reused) if there is one now; returns its length (0 for an empty
    /// message). Without a message `out` is left as it was.
    ///
    /// # Examples
    ///
    /// ```
    /// let ring = shmproc::ByteRing::new(256)?;
    /// ring.producer()?.push(b"abc")?;
    /// let mut buf = Vec::with_capacity(64);
    /// assert_eq!(ring.consumer()?.pop_into(&mut buf)?, 3);
    /// assert_eq!(buf, b"abc");
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`pop`](ByteConsumer::pop).
    #[inline]
    pub fn pop_into(&mut self, out: &mut Vec<u8>) -> std::result::Result<usize, BytePopError> {
        self.take(|core, pos, buf| core.pop_into(pos, buf, out))?;
        Ok(out.len())
    }

    /// Lends the oldest message in place if there is one now; it leaves
    /// the ring when the loan drops.
    ///
    /// # Examples
    ///
    /// ```
    /// let ring = shmproc::ByteRing::new(256)?;
    /// ring.producer()?.push(b"in place")?;
    /// let mut rx = ring.consumer()?;
    /// {
    ///     let msg = rx.peek()?;
    ///     assert_eq!(&msg[..], b"in place");
    /// } // released here
    /// assert!(ring.is_empty());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`pop`](ByteConsumer::pop).
    pub fn peek(&mut self) -> std::result::Result<ReadLoan<'_>, BytePopError> {
        let span = self.take(|core, pos, buf| core.peek(pos, buf))?;
        Ok(ReadLoan { rx: self, span })
    }

    /// An iterator over the messages there now: each `next` is a
    /// [`pop`](ByteConsumer::pop); it ends when the ring is empty (or its
    /// producer is gone). A failure ([`BytePopError::Failed`]: a corrupt
    /// ring, a lost role) is yielded once as `Err`, then the iterator ends:
    /// it would fail again on every call. `for msg in &mut consumer` is the
    /// same iterator.
    ///
    /// # Examples
    ///
    /// ```
    /// let ring = shmproc::ByteRing::new(256)?;
    /// let mut tx = ring.producer()?;
    /// tx.push(b"one")?;
    /// tx.push(b"two")?;
    /// let mut rx = ring.consumer()?;
    /// let got: Vec<Vec<u8>> = rx.try_iter().collect::<Result<_, _>>()?;
    /// assert_eq!(got, [b"one", b"two"]);
    /// assert_eq!(rx.try_iter().count(), 0); // nothing there now
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn try_iter(&mut self) -> TryIter<'_> {
        TryIter { rx: self, done: false }
    }

    /// `Failed(RoleLost)` if the other process of a fork took the role.
    #[inline]
    fn check_role(&mut self) -> std::result::Result<(), BytePopError> {
        self.claim.check(|| (&self.ring.hdr.consumer, &self.ring.hdr.consumer_nonce)).map_err(BytePopError::Failed)
    }

    /// `op` (a pop or a peek of the core) after the role check; if it finds
    /// the ring empty, [`empty`](Self::empty) decides between
    /// `Disconnected` and one more look (`Empty` if that finds nothing).
    #[inline]
    fn take<R>(
        &mut self,
        mut op: impl FnMut(&mut ByteConsumerCore, &Positions<'_>, &ShmBytes) -> std::result::Result<Option<R>, RingError>,
    ) -> std::result::Result<R, BytePopError> {
        self.check_role()?;
        let failed = |e: RingError| BytePopError::Failed(e.into());
        if let Some(r) = op(&mut self.core, &self.ring.positions(), &self.buf).map_err(failed)? {
            return Ok(r);
        }
        self.empty()?;
        op(&mut self.core, &self.ring.positions(), &self.buf).map_err(failed)?.ok_or(BytePopError::Empty)
    }

    /// On an empty ring: `Err(Disconnected)` if the producer died holding
    /// its role (and left nothing more), else `Ok` (look once more).
    #[cold]
    fn empty(&mut self) -> std::result::Result<(), BytePopError> {
        let h = &self.ring.hdr;
        if role::holder_dead(&self.probe, &h.producer, &h.producer_nonce) {
            match self.core.has_message(&self.ring.positions(), self.buf.capacity()) {
                Ok(false) => return Err(BytePopError::Disconnected),
                Ok(true) => {}
                Err(e) => return Err(BytePopError::Failed(e.into())),
            }
        }
        Ok(())
    }

    /// The ring this role belongs to.
    ///
    /// # Examples
    ///
    /// ```
    /// let ring = shmproc::ByteRing::new(256)?;
    /// assert!(ring.consumer()?.ring().is_empty());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn ring(&self) -> &ByteRing {
        &self.ring
    }
}

/// The oldest message of a [`ByteRing`], lent in place (from
/// [`ByteConsumer::peek`]); dereferences to its bytes, and frees it in the
/// ring when dropped.
///
/// # Examples
///
/// ```
/// let ring = shmproc::ByteRing::new(256)?;
/// ring.producer()?.push(b"in place")?;
/// let mut rx = ring.consumer()?;
/// let msg = rx.peek()?;
/// assert_eq!(&msg[..], b"in place"); // read without a copy
/// drop(msg); // frees it
/// assert!(ring.is_empty());
/// # Ok::<(), shmproc::Error>(())
/// ```
#[must_use = "dropping a read loan releases the message at once"]
pub struct ReadLoan<'a> {
    rx: &'a mut ByteConsumer,
    span: ReadSpan,
}

impl Deref for ReadLoan<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: the payload (`span.len` bytes from `span.payload`) lies
        // inside the buffer (record size <= published bytes and <= bytes to
        // the buffer end, checked in `peek`) and is published: the producer
        // does not rewrite it until we release it on drop, which needs the
        // loan gone. A hostile peer may still write it: the accepted
        // deviation of SAFETY.md (bytes, valid for any value).
        unsafe { std::slice::from_raw_parts(self.rx.buf.ptr(self.span.payload), self.span.len as usize) }
    }
}

impl Drop for ReadLoan<'_> {
    fn drop(&mut self) {
        let rx = &mut *self.rx;
        rx.core.release(&rx.ring.positions(), self.span);
    }
}

impl std::fmt::Debug for ReadLoan<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadLoan").field("len", &self.span.len).finish()
    }
}

/// The iterator of [`ByteConsumer::try_iter`] (also
/// `for msg in &mut consumer`): the messages there now, as `Ok`; a failure
/// is yielded once as `Err`, then it ends.
///
/// # Examples
///
/// ```
/// let ring = shmproc::ByteRing::new(256)?;
/// let mut tx = ring.producer()?;
/// tx.push(b"ab")?;
/// tx.push(b"c")?;
/// let mut rx = ring.consumer()?;
/// let mut total = 0;
/// for msg in &mut rx {
///     total += msg?.len();
/// }
/// assert_eq!(total, 3);
/// # Ok::<(), shmproc::Error>(())
/// ```
#[must_use = "iterators do nothing unless consumed"]
pub struct TryIter<'a> {
    rx: &'a mut ByteConsumer,
    /// Set after a failure or once the ring is empty.
    done: bool,
}

impl std::fmt::Debug for TryIter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ByteTryIter").field("done", &self.done).finish_non_exhaustive()
    }
}

impl Iterator for TryIter<'_> {
    type Item = Result<Vec<u8>>;

    fn next(&mut self) -> Option<Result<Vec<u8>>> {
        try_iter_step(&mut self.done, || self.rx.pop())
    }
}

impl std::iter::FusedIterator for TryIter<'_> {}

impl<'a> IntoIterator for &'a mut ByteConsumer {
    type Item = Result<Vec<u8>>;
    type IntoIter = TryIter<'a>;

    /// [`ByteConsumer::try_iter`]: the messages there now (a ring never
    /// waits).
    fn into_iter(self) -> TryIter<'a> {
        self.try_iter()
    }
}

impl Drop for ByteProducer {
    fn drop(&mut self) {
        self.claim.release(&self.ring.hdr.producer, &self.ring.hdr.producer_nonce);
    }
}

impl Drop for ByteConsumer {
    fn drop(&mut self) {
        self.claim.release(&self.ring.hdr.consumer, &self.ring.hdr.consumer_nonce);
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for ByteRing {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.seg().serialize(s)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for ByteRing {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let seg = Segment::deserialize(d)?;
        if seg.layout_identity() != (kind::BYTES, RING_HASH) {
            return Err(D::Error::custom(Error::LayoutMismatch {
                expected: RING_HASH,
                found: seg.layout_identity().1,
            }));
        }
        ByteRing::wrap(seg).map_err(D::Error::custom)
    }
}

// ---------------------------------------------------------------------
// The shared words of a pipe.

#[cfg(all(test, not(shmproc_loom)))]
mod tests {
    use super::*;

    #[test]
    fn layout_is_stable() {
        assert_eq!(core::mem::offset_of!(ByteRingHeader, capacity), 256);
    }

    #[test]
    fn loans_wrap_and_publish_only_on_commit() {
        let ring = ByteRing::new(128).expect("ring");
        let mut tx = ring.producer().expect("producer");
        let mut rx = ring.consumer().expect("consumer");
        for round in 0..40usize {
            let len = (round * 11) % (ring.max_message() + 1);
            {
                let mut loan = tx.reserve(len).expect("room in an empty ring");
                loan.fill(round as u8);
                assert!(matches!(rx.peek(), Err(BytePopError::Empty)), "nothing before commit");
                loan.commit(len);
            }
            if round % 5 == 0 {
                let _unused = tx.reserve(3).expect("room"); // dropped: publishes nothing
            }
            let msg = rx.peek().expect("committed");
            assert_eq!(&msg[..], vec![round as u8; len].as_slice());
            drop(msg);
            assert!(ring.is_empty());
        }
    }
}
