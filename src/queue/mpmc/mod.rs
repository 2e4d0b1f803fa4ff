//! A lock-free bounded multi-producer multi-consumer ring of `T: Pod`, in
//! shared memory, whose slots name their owners: a producer or consumer
//! that dies mid-operation never blocks the others for good.
//!
//! # Layout
//!
//! | payload offset | what |
//! |---|---|
//! | 0 | `head` (padded): next position to read; only grows |
//! | 128 | `tail` (padded): next position to write; only grows |
//! | 256, 264 | `capacity` (a power of two), `elem_size`: set at creation |
//! | [`WORDS_OFFSET`] (384) | one 64-bit state word per slot |
//! | `values_offset(cap)` (128-aligned) | one `T` per slot |
//!
//! Words and values are two arrays rather than interleaved pairs: the words
//! are a bounds-checked `&[Word]` of atomics (never a reference computed
//! over plain bytes), and each value keeps its natural stride, so a 64-byte
//! message is exactly one cache line instead of straddling two.
//!
//! # The slot word
//!
//! Position `p` lives in slot `p & (cap - 1)` on lap `L = (p / cap) mod 2^31`.
//!
//! | bits | field |
//! |---|---|
//! | 63..33 | lap (31 bits) |
//! | 32..31 | state: EMPTY 0, WRITING 1, FULL 2, READING 3 |
//! | 30..0 | owner: an owner id of the liveness tokens (tag << 10 \| thread slot, never 0); 0 in EMPTY and FULL; 1 in FULL marks a tombstone |
//!
//! Zeroed memory is EMPTY lap 0 in every slot: a fresh ring needs no
//! initialisation beyond its capacity.
//!
//! | transition | made by | if that process dies right after |
//! |---|---|---|
//! | EMPTY(L) -> WRITING(L, me) | a producer at position `p` (CAS: the claim names its owner atomically) | consumers reaching `p` ask the OS; once it confirms the death, one CAS makes it TOMB(L) |
//! | WRITING(L, me) -> FULL(L) | that producer, after writing the value (Release) | nothing is pending |
//! | WRITING(L, me) -> TOMB(L) | that producer dropping a loan uncommitted; or a consumer, only after the OS confirmed the owner dead | nothing is pending |
//! | FULL(L) -> READING(L, me) | a consumer at `p` (CAS) | a producer reaching `p + cap` asks the OS; once it confirms the death, one CAS makes it EMPTY(L + 1) (the value is lost with its consumer: consumed at most once) |
//! | READING(L, me) -> EMPTY(L + 1) | that consumer, after copying the value out (Release) | nothing is pending |
//! | TOMB(L) -> EMPTY(L + 1) | any consumer at `p`, or any producer at `p + cap` (CAS) | nothing is pending |
//!
//! Liveness is the OS's answer (the owner's token), never a timeout: a
//! stopped (SIGSTOP) or slow owner keeps its slot, and its later commit
//! lands (RELIABILITY case 15).
//!
//! # Positions
//!
//! The claim is the CAS of the slot word; `head` and `tail` are hints that
//! anyone advances with `fetch_max` ("helping"), so a claimer that dies
//! before moving them strands no one. Three invariants make them checkable
//! ([`Core::check_positions`]):
//!
//! - a position is claimed only after its predecessor (claims follow `tail`;
//!   a batch claims consecutive positions);
//! - `tail` passes `p` only after `p` is claimed, and before `p` is
//!   published or tombstoned;
//! - `head` passes `p` only after `p` is claimed by a consumer (or is a
//!   tombstone), and before its slot is made EMPTY for the next lap.
//!
//! Hence `0 <= tail - head <= cap` in any consistent snapshot. A word whose
//! bits no transition writes, or a lap that cannot follow from the position
//! it was found at, is [`Error::Corrupt`] at once (RELIABILITY cases 35, 36:
//! each shared word is loaded once and the copy is decoded and checked); so
//! are positions out of that range, checked every 64 rounds of one call and
//! whenever the same word has kept a producer out for a while (not on every
//! full or empty answer: pollers would pull the other side's hot line).
//! Slot indices are always `position & (cap - 1)`, and every loop is
//! bounded, so garbage never causes an out-of-bounds access or a hang.
//! A hostile `head` moved forward within that range cannot be told from
//! other consumers' progress: the values it skips are lost, as they would
//! be to any peer allowed to write the ring.
//!
//! # Orderings
//!
//! Slot words carry the data: the claim CASes are AcqRel (Acquire pairs
//! with the Release store that ended the previous state, so a consumer's
//! read of the old value happens-before the producer's overwrite; Release
//! lets helpers that load the claimed word see what the claimer saw), the
//! publishing and releasing stores are Release, word loads are Acquire.
//! Positions are loaded and advanced (`fetch_max`) with SeqCst: Acquire and
//! AcqRel would do for the invariants above, and SeqCst costs nothing more
//! on x86 for loads and read-modify-writes, while it hands every loader the
//! latest position (no walk over stale ones).
//!
//! # Liveness probes
//!
//! Asking the OS is a few syscalls, so a handle probes a blocking owner only
//! after seeing the *same* word block it on an earlier call, and then at
//! most every [`owner::LIVENESS_MIN`], doubling up to
//! [`owner::LIVENESS_MAX`] while the owner lives ([`Stuck`]). The common
//! paths make no syscall and read no clock.
#![allow(unsafe_code)]

mod protocol;

use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

use bytemuck::Pod;

use crate::error::{Error, Result};
use crate::loom::atomic::{AtomicU64, Ordering};
use crate::loom::owner;
use crate::queue::error::{MpmcPopError, MpmcPushError, try_iter_step};
use crate::queue::spsc::{ShmSlots, Slots};
use crate::shm::header::kind;
use crate::shm::layout::{CachePadded, ShmSafe, layout_hash, layout_hash_mix};
use crate::shm::segment::Segment;

pub(crate) use protocol::{Core, Stuck, Word};

// ---------------------------------------------------------------------
// The ring in a segment.

/// The ring's control words at the start of its segment's payload.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct MpmcHeader {
    head: CachePadded<AtomicU64>,
    tail: CachePadded<AtomicU64>,
    /// Number of slots, a power of two; set at creation.
    capacity: AtomicU64,
    /// `size_of::<T>()` at creation, checked whenever a handle is made.
    elem_size: AtomicU64,
}

// SAFETY: repr(C) over atomics (two padded): no pointers; any bits are
// valid values (capacity, element size and positions are checked before
// use); all interior-mutable.
unsafe impl ShmSafe for MpmcHeader {
    const TAG: &'static str = "shmproc::MpmcHeader";
}

/// Field offsets of a [`MpmcHeader`], for read-only inspection
/// (`shmproc::inspect` reads them with `pread`, never maps).
#[cfg(feature = "inspect")]
pub(crate) mod peek {
    use super::MpmcHeader;
    /// Consumer position.
    pub(crate) const HEAD: usize = core::mem::offset_of!(MpmcHeader, head);
    /// Producer position.
    pub(crate) const TAIL: usize = core::mem::offset_of!(MpmcHeader, tail);
    /// Capacity (slots or bytes).
    pub(crate) const CAPACITY: usize = core::mem::offset_of!(MpmcHeader, capacity);
    /// Bytes per value.
    pub(crate) const ELEM_SIZE: usize = core::mem::offset_of!(MpmcHeader, elem_size);
}

/// Where the slot words start in the payload (after the header).
const WORDS_OFFSET: usize = 384;
const _: () = assert!(core::mem::size_of::<MpmcHeader>() <= WORDS_OFFSET);
/// Values are aligned to this in the payload (and so in memory).
const VALUES_ALIGN: usize = 128;

/// Where the values of a ring of `cap` slots start, if it fits a `usize`.
fn values_offset(cap: u64) -> Option<usize> {
    let words = usize::try_from(cap).ok()?.checked_mul(8)?;
    WORDS_OFFSET.checked_add(words)?.checked_next_multiple_of(VALUES_ALIGN)
}

fn ring_hash<T>() -> u64 {
    layout_hash_mix(
        layout_hash("shmproc::Mpmc", core::mem::size_of::<T>(), core::mem::align_of::<T>()),
        WORDS_OFFSET as u64,
    )
}

fn check_capacity<T>(capacity: usize) -> Result<u64> {
    if capacity == 0 || !capacity.is_power_of_two() || capacity > (1 << 40) {
        return Err(Error::InvalidArgument { what: "ring capacity must be a power of two between 1 and 2^40" });
    }
    if core::mem::align_of::<T>() > VALUES_ALIGN {
        return Err(Error::InvalidArgument { what: "ring element alignment above 128 bytes" });
    }
    Ok(capacity as u64)
}

/// A lock-free ring of `T: Pod` in shared memory for any number of
/// producer and consumer processes (and threads), in FIFO order.
///
/// The ring is a cheap handle: clone it, pass it to a child, or create it
/// by name. Take as many [`MpmcProducer`]s and [`MpmcConsumer`]s as you
/// like with [`producer`](MpmcRing::producer) and
/// [`consumer`](MpmcRing::consumer). Each slot names the thread working on
/// it, so a producer or consumer that dies mid-operation (even by SIGKILL)
/// costs at most its own value: once the OS confirms the death, consumers
/// skip a dead producer's slot and producers reuse a dead consumer's. A
/// value is never delivered twice.
///
/// Python: the nearest is `multiprocessing.Queue` of plain values, without
/// pickling and without a feeder thread; non-blocking only (`push` and
/// `pop` return at once).
///
/// # Examples
///
#[cfg_attr(feature = "serde", doc = "```")]
#[cfg_attr(not(feature = "serde"), doc = "```ignore")]
/// use shmproc::{MpmcPopError, MpmcRing};
///
/// fn produce((ring, base): (MpmcRing<u64>, u64)) {
///     let mut tx = ring.producer().expect("ring ok");
///     for i in base..base + 100 {
///         while let Err(e) = tx.push(i) {
///             assert!(e.is_full(), "ring ok");
///             std::thread::yield_now(); // full: consumers catch up
///         }
///     }
/// }
///
/// let ring = MpmcRing::<u64>::new(64)?;
/// let mut rx = ring.consumer()?;
/// let mut children = Vec::new();
/// for base in [0, 1000] {
///     children.push(shmproc::Process::spawn(produce, (ring.clone(), base))?);
/// }
/// let mut got = Vec::new();
/// while got.len() < 200 {
///     match rx.pop() {
///         Ok(v) => got.push(v),
///         Err(MpmcPopError::Empty) => std::thread::yield_now(),
///         Err(e) => return Err(e.into()),
///     }
/// }
/// for c in &mut children {
///     c.join()?;
/// }
/// got.sort_unstable();
/// assert_eq!(got, (0..100).chain(1000..1100).collect::<Vec<_>>());
/// # Ok::<(), shmproc::Error>(())
/// ```
pub struct MpmcRing<T: Pod + Send> {
    seg: Segment,
    /// The capacity, validated when the handle was made.
    cap: u64,
    _t: PhantomData<T>,
}

impl<T: Pod + Send> Clone for MpmcRing<T> {
    fn clone(&self) -> Self {
        MpmcRing { seg: self.seg.clone(), cap: self.cap, _t: PhantomData }
    }
}

impl<T: Pod + Send> std::fmt::Debug for MpmcRing<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MpmcRing").field("capacity", &self.cap).field("segment", &self.seg).finish()
    }
}

/// A ring's shared state resolved to pointers, once per handle.
struct Mapped<T> {
    hdr: *const MpmcHeader,
    words: *const Word,
    slots: ShmSlots<T>,
}

impl<T: Pod> Mapped<T> {
    #[inline]
    fn core(&self) -> Core<'_, T, ShmSlots<T>> {
        // SAFETY: `hdr` came from `Segment::typed::<MpmcHeader>(0)` (bounds and alignment checked) of the segment that
        // the handle owning `self` keeps alive (its `ring` field); the header is atomics only, so a shared reference
        // is sound while peers write it.
        let h = unsafe { &*self.hdr };
        // SAFETY: `words` came from `Segment::slice::<Word>(WORDS_OFFSET, cap)` of that same segment (bounds and
        // alignment checked), `cap` being the capacity of `slots`; `Word` is an atomic.
        let words = unsafe { std::slice::from_raw_parts(self.words, self.slots.capacity() as usize) };
        Core::new(&h.head, &h.tail, words, &self.slots)
    }

    /// Claims one position for a loan (to write if `write`, else to read):
    /// while the loan lives, the calling thread counts it as a held lock,
    /// so a thread that exits holding a leaked loan counts as dead.
    fn claim_loan(&self, stuck: &mut Stuck, write: bool) -> Result<Option<u64>> {
        let me = me()?;
        let core = self.core();
        let claimed = if write { core.claim_push(me, 1, stuck)? } else { core.claim_pop(me, 1, stuck)? };
        Ok(claimed.map(|(pos, _)| {
            owner::note_acquired();
            pos
        }))
    }

    /// A pointer to the value of position `pos`.
    fn value_ptr(&self, pos: u64) -> *mut T {
        self.slots.slot_ptr(pos & (self.slots.capacity() - 1))
    }
}

fn me() -> Result<u32> {
    owner::me().map(|(id, _)| id).map_err(|e| Error::os("liveness token", e))
}

impl<T: Pod + Send> MpmcRing<T> {
    fn builder(capacity: u64) -> Result<crate::shm::segment::SegmentBuilder> {
        let bytes = values_offset(capacity)
            .and_then(|off| (capacity as usize).checked_mul(core::mem::size_of::<T>())?.checked_add(off))
            .ok_or_else(|| Error::InvalidArgument { what: "ring too large" })?;
        Ok(Segment::builder().size(bytes).typed(kind::MPMC, ring_hash::<T>()))
    }

    fn init(seg: &Segment, capacity: u64) -> Result<()> {
        // Words start zeroed: EMPTY on lap 0.
        let h = seg.typed_in::<MpmcHeader>(0)?;
        h.capacity.store(capacity, Ordering::Relaxed);
        h.elem_size.store(core::mem::size_of::<T>() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn wrap(seg: Segment) -> Result<Self> {
        let mut ring = MpmcRing { seg, cap: 0, _t: PhantomData };
        ring.cap = ring.map()?.slots.capacity();
        Ok(ring)
    }

    /// The shared state, after checking the header's capacity and element
    /// size against the segment (a peer may have written anything).
    fn map(&self) -> Result<Mapped<T>> {
        let h = self.seg.typed_in::<MpmcHeader>(0)?;
        let cap = h.capacity.load(Ordering::Relaxed);
        if h.elem_size.load(Ordering::Relaxed) != core::mem::size_of::<T>() as u64 || cap == 0 || !cap.is_power_of_two()
        {
            return Err(Error::Corrupt { what: "mpmc ring header" });
        }
        let fits = |off: usize| (cap as usize).checked_mul(core::mem::size_of::<T>())?.checked_add(off);
        let Some(off) = values_offset(cap).filter(|&off| fits(off).is_some_and(|end| end <= self.seg.len())) else {
            return Err(Error::Corrupt { what: "mpmc ring capacity exceeds its segment" });
        };
        let words = self.seg.slice_in::<Word>(WORDS_OFFSET, cap as usize)?;
        let base = self.seg.as_ptr().wrapping_add(off).cast::<T>();
        if !(base as usize).is_multiple_of(core::mem::align_of::<T>()) {
            return Err(Error::Corrupt { what: "mpmc ring values misaligned" });
        }
        // SAFETY: `base..base + cap` lies in the payload (`end <= len`, checked above), is aligned for T (checked
        // above) and writable (`slice` refuses read-only mappings); the handles that use it keep the segment.
        let slots = unsafe { ShmSlots::new(base, cap) };
        Ok(Mapped { hdr: h, words: words.as_ptr(), slots })
    }

    /// An anonymous ring with room for `capacity` values (a power of two).
    ///
    /// # Examples
    ///
    /// ```
    /// let ring = shmproc::MpmcRing::<[u8; 64]>::new(1024)?;
    /// assert_eq!(ring.capacity(), 1024);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a capacity that is not a power of two
    /// (or above 2^40), or a `T` aligned to more than 128 bytes; as for
    /// [`Segment::anonymous`].
    pub fn new(capacity: usize) -> Result<Self> {
        let cap = check_capacity::<T>(capacity)?;
        Self::wrap(Self::builder(cap)?.anonymous_with(|s| Self::init(s, cap))?)
    }

    /// A named ring that unrelated processes can [`open`](MpmcRing::open).
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-mpmc-{}", std::process::id());
    /// let ring = shmproc::MpmcRing::<u32>::create(&name, 8)?;
    /// assert_eq!(shmproc::MpmcRing::<u32>::open(&name)?.capacity(), 8);
    /// # drop(ring);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`new`](MpmcRing::new) and [`Segment::create`].
    pub fn create(name: &str, capacity: usize) -> Result<Self> {
        let cap = check_capacity::<T>(capacity)?;
        Self::wrap(Self::builder(cap)?.name(name).create_with(|s| Self::init(s, cap))?)
    }

    /// Opens a named ring made for the same `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(shmproc::MpmcRing::<u32>::open("no-such-mpmc-ring").is_err());
    /// ```
    ///
    /// # Errors
    /// As for [`Segment::open`]; [`Error::LayoutMismatch`] for another `T`
    /// or another kind of object; [`Error::Corrupt`] if the header makes no
    /// sense.
    pub fn open(name: &str) -> Result<Self> {
        Self::wrap(Segment::builder().name(name).typed(kind::MPMC, ring_hash::<T>()).open()?)
    }

    /// The number of slots.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shmproc::MpmcRing::<u8>::new(16)?.capacity(), 16);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn capacity(&self) -> usize {
        self.cap as usize
    }

    /// Values in the ring now (a snapshot; claimed positions count until
    /// they are consumed).
    ///
    /// # Examples
    ///
    /// ```
    /// let ring = shmproc::MpmcRing::<u8>::new(16)?;
    /// ring.producer()?.push(1)?;
    /// assert_eq!(ring.len(), 1);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        match self.map() {
            Ok(m) => m.core().len() as usize,
            Err(_) => 0,
        }
    }

    /// Whether the ring is empty now.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(shmproc::MpmcRing::<u8>::new(16)?.is_empty());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A handle that pushes values (any number may exist, in any process).
    ///
    /// # Examples
    ///
    /// ```
    /// let ring = shmproc::MpmcRing::<u8>::new(4)?;
    /// let (mut a, mut b) = (ring.producer()?, ring.producer()?);
    /// a.push(1)?;
    /// b.push(2)?;
    /// assert_eq!(ring.len(), 2);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Corrupt`] if the header makes no sense now.
    pub fn producer(&self) -> Result<MpmcProducer<T>> {
        Ok(MpmcProducer { map: self.map()?, stuck: Stuck::new(), ring: self.clone() })
    }

    /// A handle that pops values (any number may exist, in any process).
    ///
    /// # Examples
    ///
    /// ```
    /// let ring = shmproc::MpmcRing::<u8>::new(4)?;
    /// ring.producer()?.push(9)?;
    /// assert_eq!(ring.consumer()?.pop()?, 9);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`producer`](MpmcRing::producer).
    pub fn consumer(&self) -> Result<MpmcConsumer<T>> {
        Ok(MpmcConsumer { map: self.map()?, stuck: Stuck::new(), ring: self.clone() })
    }
}

/// Pushes values into an [`MpmcRing`]; made by [`MpmcRing::producer`].
///
/// A handle is `Send`: move it to any thread. Each operation names the
/// calling thread in the slot it claims.
///
/// # Examples
///
/// ```
/// let ring = shmproc::MpmcRing::<u32>::new(64)?;
/// let threads: Vec<_> = (0..4)
///     .map(|t| {
///         let mut tx = ring.producer().expect("ring ok");
///         std::thread::spawn(move || {
///             for i in 0..10 {
///                 tx.push(t * 100 + i).expect("room");
///             }
///         })
///     })
///     .collect();
/// for t in threads {
///     t.join().expect("producer thread");
/// }
/// assert_eq!(ring.len(), 40);
/// # Ok::<(), shmproc::Error>(())
/// ```
pub struct MpmcProducer<T: Pod + Send> {
    map: Mapped<T>,
    stuck: Stuck,
    ring: MpmcRing<T>,
}

/// Pops values from an [`MpmcRing`]; made by [`MpmcRing::consumer`].
///
/// Consumers share the values: each is delivered to exactly one of them,
/// and each consumer sees one producer's values in the order pushed.
///
/// # Examples
///
/// ```
/// let ring = shmproc::MpmcRing::<u32>::new(8)?;
/// ring.producer()?.push_slice(&[1, 2, 3, 4])?;
/// let (mut a, mut b) = (ring.consumer()?, ring.consumer()?);
/// assert_eq!(a.pop()?, 1);
/// assert_eq!(b.pop()?, 2);
/// assert_eq!(a.pop()?, 3);
/// # Ok::<(), shmproc::Error>(())
/// ```
pub struct MpmcConsumer<T: Pod + Send> {
    map: Mapped<T>,
    stuck: Stuck,
    ring: MpmcRing<T>,
}

// SAFETY: the raw pointers point into the segment owned (through an Arc) by
// `ring`, valid in this process whichever thread uses them; claims name the
// calling thread at each operation, and loans (which hold a claim across
// calls) are not Send.
unsafe impl<T: Pod + Send> Send for MpmcProducer<T> {}
// SAFETY: as for MpmcProducer.
unsafe impl<T: Pod + Send> Send for MpmcConsumer<T> {}

impl<T: Pod + Send> std::fmt::Debug for MpmcProducer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MpmcProducer").field("ring", &self.ring).finish()
    }
}

impl<T: Pod + Send> std::fmt::Debug for MpmcConsumer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MpmcConsumer").field("ring", &self.ring).finish()
    }
}

impl<T: Pod + Send> MpmcProducer<T> {
    /// Pushes `value` if a slot is free now; never waits.
    ///
    /// This is the non-blocking (`try_`) form of the crate's calling
    /// convention, under the name rtrb and crossbeam's `ArrayQueue` give
    /// it: a ring has no blocking form to tell it from, and
    /// [`MpmcPushError::Full`] says "not now" (with the value back).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmproc::MpmcPushError;
    /// let ring = shmproc::MpmcRing::<u8>::new(1)?;
    /// let mut tx = ring.producer()?;
    /// tx.push(1)?;
    /// match tx.push(2) {
    ///     Err(MpmcPushError::Full(v)) => assert_eq!(v, 2), // the value comes back
    ///     other => panic!("{other:?}"),
    /// }
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`MpmcPushError::Full`] if the ring is full;
    /// [`MpmcPushError::Failed`] if the ring's words make no sense
    /// ([`Error::Corrupt`]) or this thread cannot get a liveness token
    /// ([`Error::Os`]).
    #[inline]
    #[doc(alias = "try_push")]
    pub fn push(&mut self, value: T) -> std::result::Result<(), MpmcPushError<T>> {
        let me = match me() {
            Ok(me) => me,
            Err(e) => return Err(MpmcPushError::Failed(value, e)),
        };
        match self.map.core().push(me, &mut self.stuck, value) {
            Ok(true) => Ok(()),
            Ok(false) => Err(MpmcPushError::Full(value)),
            Err(e) => Err(MpmcPushError::Failed(value, e)),
        }
    }

    /// Pushes as many of `values` as fit, in order; returns how many (0 if
    /// the ring is full: a count, not an error, as a batch may be cut
    /// anywhere; the values stay with the caller).
    ///
    /// # Examples
    ///
    /// ```
    /// let ring = shmproc::MpmcRing::<u8>::new(4)?;
    /// assert_eq!(ring.producer()?.push_slice(&[1, 2, 3, 4, 5, 6])?, 4);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// The failures of [`push`](MpmcProducer::push)
    /// ([`MpmcPushError::Failed`]: [`Error::Corrupt`], [`Error::Os`]), only
    /// if nothing was pushed.
    pub fn push_slice(&mut self, values: &[T]) -> Result<usize> {
        let me = me()?;
        self.map.core().push_slice(me, &mut self.stuck, values)
    }

    /// Claims the next free slot to write in place: the loan derefs to the
    /// slot's `T` (holding stale bytes), and
    /// [`commit`](MpmcWriteLoan::commit) publishes it. Dropping the loan
    /// without committing leaves a tombstone that consumers skip. Never
    /// waits.
    ///
    /// # Examples
    ///
    /// ```
    /// let ring = shmproc::MpmcRing::<[u32; 4]>::new(8)?;
    /// let mut tx = ring.producer()?;
    /// let mut loan = tx.reserve()?;
    /// loan.copy_from_slice(&[1, 2, 3, 4]);
    /// loan.commit();
    /// assert_eq!(ring.consumer()?.pop()?, [1, 2, 3, 4]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`push`](MpmcProducer::push), with no value to give back:
    /// [`MpmcPushError::Full(())`](MpmcPushError::Full) if the ring is
    /// full.
    pub fn reserve(&mut self) -> std::result::Result<MpmcWriteLoan<'_, T>, MpmcPushError> {
        match self.map.claim_loan(&mut self.stuck, true) {
            Ok(Some(pos)) => Ok(MpmcWriteLoan { prod: self, pos, done: false, _thread: PhantomData }),
            Ok(None) => Err(MpmcPushError::Full(())),
            Err(e) => Err(MpmcPushError::Failed((), e)),
        }
    }
}

impl<T: Pod + Send> MpmcConsumer<T> {
    /// Pops the oldest value if one is ready now; never waits.
    ///
    /// The non-blocking (`try_`) form of the convention, named as in rtrb
    /// and crossbeam's `ArrayQueue` (see [`MpmcProducer::push`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmproc::MpmcPopError;
    /// let ring = shmproc::MpmcRing::<u8>::new(4)?;
    /// ring.producer()?.push(5)?;
    /// let mut rx = ring.consumer()?;
    /// assert_eq!(rx.pop()?, 5);
    /// assert!(matches!(rx.pop(), Err(MpmcPopError::Empty)));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`MpmcPopError::Empty`] if nothing is ready now;
    /// [`MpmcPopError::Failed`] if the ring's words make no sense
    /// ([`Error::Corrupt`]) or this thread cannot get a liveness token
    /// ([`Error::Os`]).
    #[inline]
    #[doc(alias = "try_pop")]
    pub fn pop(&mut self) -> std::result::Result<T, MpmcPopError> {
        let me = me().map_err(MpmcPopError::Failed)?;
        match self.map.core().pop(me, &mut self.stuck) {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(MpmcPopError::Empty),
            Err(e) => Err(MpmcPopError::Failed(e)),
        }
    }

    /// An iterator over the values ready now: each `next` is a
    /// [`pop`](MpmcConsumer::pop); it ends when nothing is ready. A failure
    /// ([`MpmcPopError::Failed`]: a corrupt ring) is yielded once as `Err`,
    /// then the iterator ends: unlike a [`Queue`](crate::Queue)'s
    /// undecodable item, it would fail again on every call.
    /// `for v in &mut consumer` is the same iterator.
    ///
    /// # Examples
    ///
    /// ```
    /// let ring = shmproc::MpmcRing::<u32>::new(8)?;
    /// ring.producer()?.push_slice(&[1, 2, 3])?;
    /// let mut rx = ring.consumer()?;
    /// let got: Vec<u32> = rx.try_iter().collect::<Result<_, _>>()?;
    /// assert_eq!(got, [1, 2, 3]);
    /// assert_eq!(rx.try_iter().count(), 0); // nothing there now
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn try_iter(&mut self) -> TryIter<'_, T> {
        TryIter { rx: self, done: false }
    }

    /// Pops up to `out.len()` values, oldest first; returns how many (0 if
    /// nothing is ready: a count, not an error).
    ///
    /// # Examples
    ///
    /// ```
    /// let ring = shmproc::MpmcRing::<u8>::new(4)?;
    /// ring.producer()?.push_slice(&[1, 2, 3])?;
    /// let mut out = [0u8; 8];
    /// assert_eq!(ring.consumer()?.pop_into(&mut out)?, 3);
    /// assert_eq!(out[..3], [1, 2, 3]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// The failures of [`pop`](MpmcConsumer::pop)
    /// ([`MpmcPopError::Failed`]: [`Error::Corrupt`], [`Error::Os`]), only
    /// if nothing was popped.
    pub fn pop_into(&mut self, out: &mut [T]) -> Result<usize> {
        let me = me()?;
        self.map.core().pop_into(me, &mut self.stuck, out)
    }

    /// Claims the oldest value to read in place; the slot is freed when
    /// the loan drops. Never waits.
    ///
    /// # Examples
    ///
    /// ```
    /// let ring = shmproc::MpmcRing::<[u8; 64]>::new(4)?;
    /// ring.producer()?.push([7; 64])?;
    /// let mut rx = ring.consumer()?;
    /// let loan = rx.peek()?;
    /// assert_eq!(loan[63], 7);
    /// drop(loan);
    /// assert!(ring.is_empty());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`pop`](MpmcConsumer::pop): [`MpmcPopError::Empty`] if
    /// nothing is ready now.
    pub fn peek(&mut self) -> std::result::Result<MpmcReadLoan<'_, T>, MpmcPopError> {
        match self.map.claim_loan(&mut self.stuck, false) {
            Ok(Some(pos)) => Ok(MpmcReadLoan { cons: self, pos, _thread: PhantomData }),
            Ok(None) => Err(MpmcPopError::Empty),
            Err(e) => Err(MpmcPopError::Failed(e)),
        }
    }
}

/// The iterator of [`MpmcConsumer::try_iter`] (also
/// `for v in &mut consumer`): the values ready now, as `Ok`; a failure is
/// yielded once as `Err`, then it ends.
///
/// # Examples
///
/// ```
/// let ring = shmproc::MpmcRing::<u8>::new(4)?;
/// ring.producer()?.push_slice(&[1, 2])?;
/// let mut rx = ring.consumer()?;
/// let mut sum = 0;
/// for v in &mut rx {
///     sum += v?;
/// }
/// assert_eq!(sum, 3);
/// # Ok::<(), shmproc::Error>(())
/// ```
#[must_use = "iterators do nothing unless consumed"]
pub struct TryIter<'a, T: Pod + Send> {
    rx: &'a mut MpmcConsumer<T>,
    /// Set after a failure or once nothing was ready.
    done: bool,
}

impl<T: Pod + Send> std::fmt::Debug for TryIter<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MpmcTryIter").field("done", &self.done).finish_non_exhaustive()
    }
}

impl<T: Pod + Send> Iterator for TryIter<'_, T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        try_iter_step(&mut self.done, || self.rx.pop())
    }
}

impl<T: Pod + Send> std::iter::FusedIterator for TryIter<'_, T> {}

impl<'a, T: Pod + Send> IntoIterator for &'a mut MpmcConsumer<T> {
    type Item = Result<T>;
    type IntoIter = TryIter<'a, T>;

    /// [`MpmcConsumer::try_iter`]: the values ready now (a ring never
    /// waits).
    fn into_iter(self) -> TryIter<'a, T> {
        self.try_iter()
    }
}

/// A claimed slot of an [`MpmcRing`] to write in place, from
/// [`MpmcProducer::reserve`]. [`commit`](MpmcWriteLoan::commit) publishes it;
/// dropping it uncommitted leaves a tombstone that consumers skip.
///
/// The loan is not `Send`: the claim names the thread that made it.
///
/// # Examples
///
/// ```
/// let ring = shmproc::MpmcRing::<[u8; 16]>::new(4)?;
/// let mut tx = ring.producer()?;
/// let mut rx = ring.consumer()?;
/// let mut loan = tx.reserve()?;
/// loan[0] = 1;
/// drop(loan); // not committed: a tombstone, skipped by consumers
/// tx.push([2; 16])?;
/// assert_eq!(rx.pop()?, [2; 16]);
/// # Ok::<(), shmproc::Error>(())
/// ```
///
/// ```compile_fail
/// let ring = shmproc::MpmcRing::<u64>::new(4).unwrap();
/// let mut tx = ring.producer().unwrap();
/// let loan = tx.reserve().unwrap();
/// std::thread::scope(|s| {
///     s.spawn(move || loan.commit()); // error: the loan is not Send
/// });
/// ```
#[must_use = "a write loan publishes nothing unless committed"]
pub struct MpmcWriteLoan<'a, T: Pod + Send> {
    prod: &'a mut MpmcProducer<T>,
    pos: u64,
    done: bool,
    _thread: PhantomData<*const ()>,
}

impl<T: Pod + Send> MpmcWriteLoan<'_, T> {
    /// Publishes the value written through the loan.
    ///
    /// # Examples
    ///
    /// ```
    /// let ring = shmproc::MpmcRing::<u64>::new(2)?;
    /// let mut tx = ring.producer()?;
    /// let mut loan = tx.reserve()?;
    /// *loan = 42;
    /// loan.commit();
    /// assert_eq!(ring.len(), 1);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn commit(mut self) {
        self.finish(true);
    }

    fn finish(&mut self, publish: bool) {
        if self.done {
            return;
        }
        self.done = true;
        let core = self.prod.map.core();
        if publish {
            core.publish(self.pos)
        } else {
            core.abandon(self.pos)
        }
        owner::note_released();
    }
}

impl<T: Pod + Send> Deref for MpmcWriteLoan<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: slot `pos` is WRITING by us (nobody else touches it until we publish, or the OS confirms our death);
        // in the mapping and aligned (`MpmcRing::map`); T: Pod; the loan borrows the producer, which keeps the segment.
        unsafe { &*self.prod.map.value_ptr(self.pos) }
    }
}

impl<T: Pod + Send> DerefMut for MpmcWriteLoan<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes the reference unique within this process.
        unsafe { &mut *self.prod.map.value_ptr(self.pos) }
    }
}

impl<T: Pod + Send> Drop for MpmcWriteLoan<'_, T> {
    fn drop(&mut self) {
        self.finish(false);
    }
}

impl<T: Pod + Send> std::fmt::Debug for MpmcWriteLoan<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MpmcWriteLoan").field("position", &self.pos).finish()
    }
}

/// A claimed value of an [`MpmcRing`] to read in place, from
/// [`MpmcConsumer::peek`]; the slot is freed when the loan drops.
///
/// The loan is not `Send`: the claim names the thread that made it.
///
/// # Examples
///
/// ```
/// let ring = shmproc::MpmcRing::<[u64; 8]>::new(4)?;
/// ring.producer()?.push([3; 8])?;
/// let mut rx = ring.consumer()?;
/// {
///     let loan = rx.peek()?;
///     assert_eq!(loan.iter().sum::<u64>(), 24); // read in place, no copy
/// } // the slot is free again here
/// assert!(ring.is_empty());
/// # Ok::<(), shmproc::Error>(())
/// ```
#[must_use = "dropping a read loan releases the value at once"]
pub struct MpmcReadLoan<'a, T: Pod + Send> {
    cons: &'a mut MpmcConsumer<T>,
    pos: u64,
    _thread: PhantomData<*const ()>,
}

impl<T: Pod + Send> Deref for MpmcReadLoan<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the slot of `pos` is READING by this thread: no producer writes it until we release it (a producer
        // takes it over only once the OS confirms our death); inside the mapping and aligned (checked in
        // `MpmcRing::map`); T: Pod; the loan borrows the consumer, which keeps the segment.
        unsafe { &*self.cons.map.value_ptr(self.pos) }
    }
}

impl<T: Pod + Send> Drop for MpmcReadLoan<'_, T> {
    fn drop(&mut self) {
        self.cons.map.core().release(self.pos);
        owner::note_released();
    }
}

impl<T: Pod + Send> std::fmt::Debug for MpmcReadLoan<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MpmcReadLoan").field("position", &self.pos).finish()
    }
}

#[cfg(feature = "serde")]
impl<T: Pod + Send> serde::Serialize for MpmcRing<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.seg.serialize(s)
    }
}

#[cfg(feature = "serde")]
impl<'de, T: Pod + Send> serde::Deserialize<'de> for MpmcRing<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let seg = Segment::deserialize(d)?;
        if seg.layout_identity() != (kind::MPMC, ring_hash::<T>()) {
            return Err(D::Error::custom(Error::LayoutMismatch {
                expected: ring_hash::<T>(),
                found: seg.layout_identity().1,
            }));
        }
        MpmcRing::wrap(seg).map_err(D::Error::custom)
    }
}

#[cfg(all(test, not(shmproc_loom)))]
mod tests {
    use super::*;

    #[test]
    fn values_follow_the_words_aligned() {
        assert_eq!(values_offset(1), Some(512));
        assert_eq!(values_offset(16), Some(512));
        assert_eq!(values_offset(17), Some(640));
        assert_eq!(values_offset(1024), Some(384 + 8192));
        assert_eq!(values_offset(u64::MAX), None);
    }
}
