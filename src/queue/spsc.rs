//! A lock-free single-producer single-consumer ring of `T: Pod`, with
//! batch push/pop and zero-copy loans.
//!
//! | word | written by | meaning |
//! |---|---|---|
//! | `tail` | the producer only (Release) | next position to write; positions only grow |
//! | `head` | the consumer only (Release) | next position to read |
//!
//! Slot `p & (capacity - 1)` holds position `p`. The producer may write
//! position `t` only while `t - head < capacity`; the consumer may read
//! position `h` only while `h < tail`. Each side keeps its own position in
//! its handle and loads only the other's from shared memory, with Acquire
//! (pairing with the other side's Release store), and every loaded value is
//! checked: a peer that wrote garbage (`tail - head > capacity`, a position
//! moving backwards) yields [`Corrupt`](RingError::Corrupt), never an
//! out-of-bounds access (RELIABILITY cases 35, 36: each word is loaded once
//! and the copy is checked).
#![allow(unsafe_code)]

use std::marker::PhantomData;

use bytemuck::Pod;

use crate::loom::atomic::{AtomicU64, Ordering};

/// Where the slots live: a segment in real use, loom cells in models.
///
/// # Safety
///
/// Implementors guarantee that `read(i)` and `write(i, _)` are sound for
/// every `i < capacity()` as long as no two calls for the same `i` overlap
/// unless both are reads (the ring's protocol gives each slot to one side
/// at a time).
pub(crate) unsafe trait Slots<T: Pod> {
    /// Number of slots (a power of two).
    fn capacity(&self) -> u64;
    /// Copies slot `i` out.
    ///
    /// # Safety
    /// `i < capacity()`, and no write of slot `i` runs concurrently.
    unsafe fn read(&self, i: u64) -> T;
    /// Copies `v` into slot `i`.
    ///
    /// # Safety
    /// `i < capacity()`, and no other access of slot `i` runs concurrently.
    unsafe fn write(&self, i: u64, v: T);
    /// A pointer to slot `i`, for loans.
    fn slot_ptr(&self, i: u64) -> *mut T;
}

/// Why a ring operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RingError {
    /// The ring's positions in shared memory make no sense: a peer is buggy
    /// or hostile. Nothing was read or written.
    Corrupt,
}

impl std::fmt::Display for RingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("corrupt ring positions in shared memory")
    }
}

impl std::error::Error for RingError {}

impl From<RingError> for Error {
    fn from(_: RingError) -> Error {
        Error::Corrupt { what: "ring positions" }
    }
}

/// The two position words of an SPSC ring.
#[derive(Debug)]
pub(crate) struct Positions<'a> {
    pub(crate) head: &'a AtomicU64,
    pub(crate) tail: &'a AtomicU64,
}

/// The producer's half of the protocol over some slots.
#[derive(Debug)]
pub(crate) struct ProducerCore<T> {
    /// Our next position (authoritative; mirrored to `tail`).
    tail: u64,
    /// The consumer's position when we last loaded it: reloaded only when
    /// it shows too little room, so a push usually touches no cache line
    /// the consumer writes.
    cached_head: u64,
    _t: PhantomData<T>,
}

/// The consumer's half of the protocol.
#[derive(Debug)]
pub(crate) struct ConsumerCore<T> {
    head: u64,
    /// The producer's position when we last loaded it (see `cached_head`).
    cached_tail: u64,
    _t: PhantomData<T>,
}

impl<T: Pod> ProducerCore<T> {
    /// Takes over the producer role at the current `tail`.
    pub(crate) fn attach(pos: &Positions<'_>) -> Self {
        // Acquire: our own position as its last holder published it (one
        // that died never released the role, so the claim's CAS alone does
        // not order its stores before us).
        let tail = pos.tail.load(Ordering::Acquire);
        // Acquire: pairs with the consumer's Release store of `head`.
        let head = pos.head.load(Ordering::Acquire);
        ProducerCore { tail, cached_head: head, _t: PhantomData }
    }

    /// Free slots: at least `want` if the cached consumer position shows
    /// them, else after reloading it (and checking the loaded value).
    #[inline]
    fn room(&mut self, pos: &Positions<'_>, cap: u64, want: u64) -> Result<u64, RingError> {
        let free = cap - self.tail.wrapping_sub(self.cached_head).min(cap);
        if free >= want {
            return Ok(free);
        }
        // Acquire: pairs with the consumer's Release store of `head`: its
        // reads of the slots we are about to reuse are done.
        let head = pos.head.load(Ordering::Acquire);
        let used = self.tail.wrapping_sub(head);
        // The consumer's position only moves forward, up to ours.
        if used > cap || head.wrapping_sub(self.cached_head) > self.tail.wrapping_sub(self.cached_head) {
            return Err(RingError::Corrupt);
        }
        self.cached_head = head;
        Ok(cap - used)
    }

    /// Pushes one value; `Ok(false)` if the ring is full.
    #[inline]
    pub(crate) fn push<S: Slots<T>>(&mut self, pos: &Positions<'_>, slots: &S, v: T) -> Result<bool, RingError> {
        let cap = slots.capacity();
        if self.room(pos, cap, 1)? == 0 {
            return Ok(false);
        }
        // SAFETY: the index is masked below capacity; the slot at `tail` is
        // free (tail - head < cap, checked above), so the consumer does not
        // read it until we publish it below.
        unsafe { slots.write(self.tail & (cap - 1), v) };
        self.tail = self.tail.wrapping_add(1);
        // Release: pairs with the consumer's Acquire load of `tail`.
        pos.tail.store(self.tail, Ordering::Release);
        Ok(true)
    }

    /// Pushes as many of `vs` as fit; returns how many.
    pub(crate) fn push_slice<S: Slots<T>>(
        &mut self,
        pos: &Positions<'_>,
        slots: &S,
        vs: &[T],
    ) -> Result<usize, RingError> {
        let cap = slots.capacity();
        let n = (self.room(pos, cap, vs.len() as u64)? as usize).min(vs.len());
        for (k, v) in vs[..n].iter().enumerate() {
            // SAFETY: positions tail..tail+n are free (n <= free, checked
            // above) and unpublished; indices are masked below capacity.
            unsafe { slots.write(self.tail.wrapping_add(k as u64) & (cap - 1), *v) };
        }
        self.tail = self.tail.wrapping_add(n as u64);
        // Release: publishes all n slots at once.
        pos.tail.store(self.tail, Ordering::Release);
        Ok(n)
    }

    /// The free slots from `tail` up to the end of the buffer or `max`,
    /// as (first index, count), for a write loan.
    pub(crate) fn reserve(&mut self, pos: &Positions<'_>, cap: u64, max: usize) -> Result<(u64, usize), RingError> {
        let free = self.room(pos, cap, max as u64)?;
        let start = self.tail & (cap - 1);
        let contiguous = (cap - start).min(free) as usize;
        Ok((start, contiguous.min(max)))
    }

    /// Publishes `n` slots written through a loan.
    pub(crate) fn commit(&mut self, pos: &Positions<'_>, n: usize) {
        self.tail = self.tail.wrapping_add(n as u64);
        // Release: the loan's writes happen-before the consumer's reads.
        pos.tail.store(self.tail, Ordering::Release);
    }
}

impl<T: Pod> ConsumerCore<T> {
    /// Takes over the consumer role at the current `head`.
    pub(crate) fn attach(pos: &Positions<'_>) -> Self {
        // Acquire: our own position as its last holder published it (one
        // that died never released the role, so the claim's CAS alone does
        // not order its stores before us).
        let head = pos.head.load(Ordering::Acquire);
        ConsumerCore { head, cached_tail: head, _t: PhantomData }
    }

    /// Values published: at least `want` if the cached producer position
    /// shows them, else after reloading it (and checking the loaded value).
    #[inline]
    fn ready(&mut self, pos: &Positions<'_>, cap: u64, want: u64) -> Result<u64, RingError> {
        let have = self.cached_tail.wrapping_sub(self.head);
        if have >= want && have <= cap {
            return Ok(have);
        }
        // Acquire: pairs with the producer's Release store of `tail`: the
        // slot contents are visible.
        let tail = pos.tail.load(Ordering::Acquire);
        let n = tail.wrapping_sub(self.head);
        // The producer's position only moves forward.
        if n > cap || tail.wrapping_sub(self.cached_tail) > n {
            return Err(RingError::Corrupt);
        }
        self.cached_tail = tail;
        Ok(n)
    }

    /// Values published now (reloading the producer's position).
    #[cfg(test)]
    pub(crate) fn available(&mut self, pos: &Positions<'_>, cap: u64) -> Result<u64, RingError> {
        self.ready(pos, cap, u64::MAX)
    }

    /// Pops one value, if any.
    #[inline]
    pub(crate) fn pop<S: Slots<T>>(&mut self, pos: &Positions<'_>, slots: &S) -> Result<Option<T>, RingError> {
        let cap = slots.capacity();
        if self.ready(pos, cap, 1)? == 0 {
            return Ok(None);
        }
        // SAFETY: position `head` is published (head < tail, checked above)
        // and the producer does not rewrite it until we release it below;
        // the index is masked below capacity.
        let v = unsafe { slots.read(self.head & (cap - 1)) };
        self.head = self.head.wrapping_add(1);
        // Release: our read of the slot happens-before the producer reuses it.
        pos.head.store(self.head, Ordering::Release);
        Ok(Some(v))
    }

    /// Pops up to `out.len()` values; returns how many.
    pub(crate) fn pop_into<S: Slots<T>>(
        &mut self,
        pos: &Positions<'_>,
        slots: &S,
        out: &mut [T],
    ) -> Result<usize, RingError> {
        let cap = slots.capacity();
        let n = (self.ready(pos, cap, out.len() as u64)? as usize).min(out.len());
        for (k, o) in out[..n].iter_mut().enumerate() {
            // SAFETY: positions head..head+n are published (n <= available)
            // and not rewritten until released below; indices are masked.
            *o = unsafe { slots.read(self.head.wrapping_add(k as u64) & (cap - 1)) };
        }
        self.head = self.head.wrapping_add(n as u64);
        // Release: all n reads happen-before the producer reuses the slots.
        pos.head.store(self.head, Ordering::Release);
        Ok(n)
    }

    /// The published slots from `head` to the end of the buffer or `max`,
    /// as (first index, count), for a read loan.
    pub(crate) fn peek(&mut self, pos: &Positions<'_>, cap: u64, max: usize) -> Result<(u64, usize), RingError> {
        let avail = self.ready(pos, cap, max as u64)?;
        let start = self.head & (cap - 1);
        Ok((start, ((cap - start).min(avail) as usize).min(max)))
    }

    /// Releases `n` slots read through a loan.
    pub(crate) fn release(&mut self, pos: &Positions<'_>, n: usize) {
        self.head = self.head.wrapping_add(n as u64);
        // Release: the loan's reads happen-before the producer's rewrites.
        pos.head.store(self.head, Ordering::Release);
    }
}

#[cfg(all(test, not(shmproc_loom)))]
mod tests {
    use super::*;
    use crate::queue::tests::CellSlots;

    fn ring(cap: usize) -> (AtomicU64, AtomicU64, CellSlots) {
        (AtomicU64::new(0), AtomicU64::new(0), CellSlots::new(cap))
    }

    #[test]
    fn fifo_order_wraps_and_fills() {
        let (h, t, s) = ring(4);
        let pos = Positions { head: &h, tail: &t };
        let mut p = ProducerCore::<u64>::attach(&pos);
        let mut c = ConsumerCore::<u64>::attach(&pos);
        for round in 0..10u64 {
            for i in 0..4 {
                assert!(p.push(&pos, &s, round * 10 + i).expect("ok"));
            }
            assert!(!p.push(&pos, &s, 99).expect("ok"), "full");
            for i in 0..4 {
                assert_eq!(c.pop(&pos, &s).expect("ok"), Some(round * 10 + i));
            }
            assert_eq!(c.pop(&pos, &s).expect("ok"), None);
        }
    }

    #[test]
    fn batches_and_loans() {
        let (h, t, s) = ring(8);
        let pos = Positions { head: &h, tail: &t };
        let mut p = ProducerCore::<u64>::attach(&pos);
        let mut c = ConsumerCore::<u64>::attach(&pos);
        assert_eq!(p.push_slice(&pos, &s, &[1, 2, 3, 4, 5, 6]).expect("ok"), 6);
        let mut out = [0u64; 4];
        assert_eq!(c.pop_into(&pos, &s, &mut out).expect("ok"), 4);
        assert_eq!(out, [1, 2, 3, 4]);
        // Wrap: 2 slots at the end, then the rest at the start.
        let (start, n) = p.reserve(&pos, 8, 100).expect("ok");
        assert_eq!((start, n), (6, 2));
        p.commit(&pos, n);
        let (start, n) = p.reserve(&pos, 8, 100).expect("ok");
        assert_eq!((start, n), (0, 4));
        let (start, n) = c.peek(&pos, 8, 100).expect("ok");
        assert_eq!((start, n), (4, 4));
        c.release(&pos, n);
    }

    #[test]
    fn garbage_positions_are_corrupt() {
        let (h, t, s) = ring(4);
        let pos = Positions { head: &h, tail: &t };
        let mut p = ProducerCore::<u64>::attach(&pos);
        let mut c = ConsumerCore::<u64>::attach(&pos);
        t.store(u64::MAX, Ordering::Relaxed);
        assert_eq!(c.pop(&pos, &s), Err(RingError::Corrupt));
        t.store(5, Ordering::Relaxed);
        assert_eq!(c.available(&pos, 4), Err(RingError::Corrupt));
        t.store(0, Ordering::Relaxed);
        // Fill the ring so the producer must reload `head`, then garble it.
        for i in 0..4 {
            assert!(p.push(&pos, &s, i).expect("ok"));
        }
        h.store(1 << 40, Ordering::Relaxed);
        assert_eq!(p.push(&pos, &s, 1), Err(RingError::Corrupt));
        h.store(u64::MAX, Ordering::Relaxed); // "behind" zero: backwards
        assert_eq!(p.push(&pos, &s, 1), Err(RingError::Corrupt));
    }
}

// ---------------------------------------------------------------------
// The ring in a segment.

use crate::error::{Error, Result};
use crate::loom::atomic::AtomicU32;
use crate::owner::probe::ProbeRate;
use crate::queue::error::{PopError, PushError, try_iter_step};
use crate::queue::role::{self, Claim};
use crate::shm::header::kind;
use crate::shm::layout::{CachePadded, ShmSafe, layout_hash, layout_hash_mix};
use crate::shm::segment::Segment;

/// The ring's control words at the start of its segment's payload; the
/// slots follow at [`SLOTS_OFFSET`].
#[derive(Debug)]
#[repr(C)]
pub(crate) struct SpscHeader {
    head: CachePadded<AtomicU64>,
    tail: CachePadded<AtomicU64>,
    /// Number of slots, a power of two; set at creation.
    capacity: AtomicU64,
    /// `size_of::<T>()` at creation, checked on every open.
    elem_size: AtomicU64,
    /// Owner id (as in the lock words) of the producer and consumer
    /// handles' holders, 0 if none; with their process nonces.
    producer: AtomicU32,
    consumer: AtomicU32,
    producer_nonce: AtomicU64,
    consumer_nonce: AtomicU64,
}

// SAFETY: repr(C) over atomics (two padded): no pointers; any bits are
// valid values (positions and capacity are checked before every use,
// unknown claimers are probed like lock owners); all interior-mutable.
unsafe impl ShmSafe for SpscHeader {
    const TAG: &'static str = "shmproc::SpscHeader";
}

/// Field offsets of a [`SpscHeader`], for read-only inspection
/// (`shmproc::inspect` reads them with `pread`, never maps).
#[cfg(feature = "inspect")]
pub(crate) mod peek {
    use super::SpscHeader;
    /// Consumer position.
    pub(crate) const HEAD: usize = core::mem::offset_of!(SpscHeader, head);
    /// Producer position.
    pub(crate) const TAIL: usize = core::mem::offset_of!(SpscHeader, tail);
    /// Capacity (slots or bytes).
    pub(crate) const CAPACITY: usize = core::mem::offset_of!(SpscHeader, capacity);
    /// Owner id of the producer handle's holder (0: none).
    pub(crate) const PRODUCER: usize = core::mem::offset_of!(SpscHeader, producer);
    /// Owner id of the consumer handle's holder (0: none).
    pub(crate) const CONSUMER: usize = core::mem::offset_of!(SpscHeader, consumer);
    /// Bytes per value.
    pub(crate) const ELEM_SIZE: usize = core::mem::offset_of!(SpscHeader, elem_size);
}

/// Where the slots start in the payload (after the header, 128-aligned).
const SLOTS_OFFSET: usize = 384;
const _: () = assert!(core::mem::size_of::<SpscHeader>() <= SLOTS_OFFSET);

fn ring_hash<T>() -> u64 {
    layout_hash_mix(
        layout_hash("shmproc::Spsc", core::mem::size_of::<T>(), core::mem::align_of::<T>()),
        SLOTS_OFFSET as u64,
    )
}

/// Slots in a mapped segment (also the MPMC ring's values).
pub(crate) struct ShmSlots<T> {
    base: *mut T,
    cap: u64,
}

impl<T> ShmSlots<T> {
    /// Slots `base[0..cap]`.
    ///
    /// # Safety
    ///
    /// `base..base + cap` are aligned slots of `T` inside a live, writable
    /// mapping that outlives the value (its owner keeps the segment).
    pub(crate) unsafe fn new(base: *mut T, cap: u64) -> Self {
        ShmSlots { base, cap }
    }
}

// SAFETY: `base` points at `cap` slots inside the segment's live mapping
// (bounds checked in `SpscRing::slots`, which also checks alignment); every
// `i` passed in is masked below `cap` by the protocol; `T: Pod` so any bytes
// a peer left are a valid `T`. The protocol gives each slot to one side at a
// time; a hostile peer could still race on a slot's bytes, the one accepted
// deviation of SAFETY.md (plain data copied, never referenced in place).
unsafe impl<T: Pod> Slots<T> for ShmSlots<T> {
    fn capacity(&self) -> u64 {
        self.cap
    }
    unsafe fn read(&self, i: u64) -> T {
        debug_assert!(i < self.cap);
        let p = self.base.wrapping_add(i as usize);
        // SAFETY: i < cap (caller), so `p` is an aligned slot inside the
        // mapping; T: Pod, so its bytes are a valid T.
        unsafe { p.read() }
    }
    unsafe fn write(&self, i: u64, v: T) {
        debug_assert!(i < self.cap);
        let p = self.base.wrapping_add(i as usize);
        // SAFETY: i < cap (caller), so `p` is an aligned, writable slot
        // inside the mapping.
        unsafe { p.write(v) }
    }
    fn slot_ptr(&self, i: u64) -> *mut T {
        self.base.wrapping_add(i as usize)
    }
}

/// A single-producer single-consumer ring of `T: Pod` in shared memory: the
/// fastest way to stream plain values from one process to another.
///
/// The ring is a cheap handle (clone it, pass it to a child, or create it
/// by name); one process at a time takes the [`Producer`] role and one the
/// [`Consumer`] role. Roles belong to processes (the role handles are
/// `Send`): a role held by a process that died is taken over by the next
/// `producer()`/`consumer()` call, continuing at the published positions,
/// so a value the dead producer wrote but did not publish is never seen.
///
/// # Examples
///
#[cfg_attr(feature = "serde", doc = "```")]
#[cfg_attr(not(feature = "serde"), doc = "```ignore")]
/// use shmproc::{PopError, SpscRing};
///
/// fn produce(ring: SpscRing<u64>) {
///     let mut tx = ring.producer().expect("producer role");
///     for i in 0..1000 {
///         while let Err(e) = tx.push(i) {
///             assert!(e.is_full(), "ring ok");
///             std::thread::yield_now(); // full: the consumer catches up
///         }
///     }
/// }
///
/// let ring = SpscRing::<u64>::new(64)?;
/// let mut rx = ring.consumer()?;
/// let mut child = shmproc::Process::spawn(produce, ring.clone())?;
/// let mut sum = 0;
/// let mut got = 0;
/// while got < 1000 {
///     match rx.pop() {
///         Ok(v) => { sum += v; got += 1; }
///         Err(PopError::Empty) => std::thread::yield_now(),
///         Err(e) => return Err(e.into()),
///     }
/// }
/// child.join()?;
/// assert_eq!(sum, 999 * 1000 / 2);
/// # Ok::<(), shmproc::Error>(())
/// ```
pub struct SpscRing<T: Pod + Send> {
    seg: Segment,
    _t: PhantomData<T>,
}

impl<T: Pod + Send> Clone for SpscRing<T> {
    fn clone(&self) -> Self {
        SpscRing { seg: self.seg.clone(), _t: PhantomData }
    }
}

impl<T: Pod + Send> std::fmt::Debug for SpscRing<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpscRing").field("capacity", &self.capacity()).field("segment", &self.seg).finish()
    }
}

fn check_capacity(capacity: usize) -> Result<u64> {
    if capacity == 0 || !capacity.is_power_of_two() || capacity > (1 << 40) {
        return Err(Error::InvalidArgument { what: "ring capacity must be a power of two between 1 and 2^40" });
    }
    Ok(capacity as u64)
}

impl<T: Pod + Send> SpscRing<T> {
    fn builder(capacity: u64) -> Result<crate::shm::segment::SegmentBuilder> {
        let bytes = (capacity as usize)
            .checked_mul(core::mem::size_of::<T>())
            .and_then(|b| b.checked_add(SLOTS_OFFSET))
            .ok_or_else(|| Error::InvalidArgument { what: "ring too large" })?;
        Ok(Segment::builder().size(bytes).typed(kind::SPSC, ring_hash::<T>()))
    }

    fn init(seg: &Segment, capacity: u64) -> Result<()> {
        let h = seg.typed_in::<SpscHeader>(0)?;
        h.capacity.store(capacity, Ordering::Relaxed);
        h.elem_size.store(core::mem::size_of::<T>() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn wrap(seg: Segment) -> Result<Self> {
        let ring = SpscRing { seg, _t: PhantomData };
        ring.slots()?; // validates capacity and bounds once
        Ok(ring)
    }

    /// An anonymous ring with room for `capacity` values (a power of two).
    ///
    /// # Examples
    ///
    /// ```
    /// let ring = shmproc::SpscRing::<[u8; 64]>::new(1024)?;
    /// assert_eq!(ring.capacity(), 1024);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a capacity that is not a power of two;
    /// as for [`Segment::anonymous`].
    pub fn new(capacity: usize) -> Result<Self> {
        let cap = check_capacity(capacity)?;
        Self::wrap(Self::builder(cap)?.anonymous_with(|s| Self::init(s, cap))?)
    }

    /// A named ring that unrelated processes can [`open`](SpscRing::open).
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-spsc-{}", std::process::id());
    /// let ring = shmproc::SpscRing::<u32>::create(&name, 8)?;
    /// assert_eq!(shmproc::SpscRing::<u32>::open(&name)?.capacity(), 8);
    /// # drop(ring);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`new`](SpscRing::new) and [`Segment::create`].
    pub fn create(name: &str, capacity: usize) -> Result<Self> {
        let cap = check_capacity(capacity)?;
        Self::wrap(Self::builder(cap)?.name(name).create_with(|s| Self::init(s, cap))?)
    }

    /// Opens a named ring made for the same `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(shmproc::SpscRing::<u32>::open("no-such-ring").is_err());
    /// ```
    ///
    /// # Errors
    /// As for [`Segment::open`]; [`Error::LayoutMismatch`] for another `T`;
    /// [`Error::Corrupt`] if the header makes no sense.
    pub fn open(name: &str) -> Result<Self> {
        Self::wrap(Segment::builder().name(name).typed(kind::SPSC, ring_hash::<T>()).open()?)
    }

    fn header(&self) -> &SpscHeader {
        self.seg.typed_in::<SpscHeader>(0).expect("invariant: checked in SpscRing::wrap")
    }

    /// The slots, after checking the header's capacity and element size
    /// against the segment (a peer may have written anything).
    fn slots(&self) -> Result<ShmSlots<T>> {
        let h = self.seg.typed_in::<SpscHeader>(0)?;
        let cap = h.capacity.load(Ordering::Relaxed);
        if h.elem_size.load(Ordering::Relaxed) != core::mem::size_of::<T>() as u64 || cap == 0 || !cap.is_power_of_two()
        {
            return Err(Error::Corrupt { what: "ring header" });
        }
        let bytes = usize::try_from(cap)
            .ok()
            .and_then(|c| c.checked_mul(core::mem::size_of::<T>()))
            .ok_or_else(|| Error::Corrupt { what: "ring capacity" })?;
        if SLOTS_OFFSET.checked_add(bytes).is_none_or(|end| end > self.seg.len()) {
            return Err(Error::Corrupt { what: "ring capacity exceeds its segment" });
        }
        let base = self.seg.as_ptr().wrapping_add(SLOTS_OFFSET).cast::<T>();
        if !(base as usize).is_multiple_of(core::mem::align_of::<T>()) {
            return Err(Error::Corrupt { what: "ring slots misaligned" });
        }
        Ok(ShmSlots { base, cap })
    }

    fn positions(&self) -> Positions<'_> {
        let h = self.header();
        Positions { head: &h.head, tail: &h.tail }
    }

    /// The number of slots.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shmproc::SpscRing::<u8>::new(16)?.capacity(), 16);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn capacity(&self) -> usize {
        self.header().capacity.load(Ordering::Relaxed) as usize
    }

    /// Values in the ring now (a snapshot).
    ///
    /// # Examples
    ///
    /// ```
    /// let ring = shmproc::SpscRing::<u8>::new(16)?;
    /// ring.producer()?.push(1)?;
    /// assert_eq!(ring.len(), 1);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        let h = self.header();
        let n = h.tail.load(Ordering::Acquire).wrapping_sub(h.head.load(Ordering::Acquire));
        (n.min(h.capacity.load(Ordering::Relaxed))) as usize
    }

    /// Whether the ring is empty now.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(shmproc::SpscRing::<u8>::new(16)?.is_empty());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes the producer role (one holder at a time; taken over if its
    /// holder died).
    ///
    /// # Examples
    ///
    /// ```
    /// let ring = shmproc::SpscRing::<u8>::new(4)?;
    /// let tx = ring.producer()?;
    /// assert!(matches!(ring.producer(), Err(shmproc::Error::WouldBlock)));
    /// drop(tx);
    /// assert!(ring.producer().is_ok());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::WouldBlock`] if a live holder has it; [`Error::Corrupt`].
    pub fn producer(&self) -> Result<Producer<T>> {
        // Validate first: a refused claim must not keep the role.
        let slots = self.slots()?;
        let h = self.header();
        let claim = role::claim(&h.producer, &h.producer_nonce)?;
        let hdr = HeaderPtr(self.header());
        Ok(Producer { core: ProducerCore::attach(&self.positions()), slots, hdr, loan: 0, claim, ring: self.clone() })
    }

    /// Takes the consumer role.
    ///
    /// # Examples
    ///
    /// ```
    /// let ring = shmproc::SpscRing::<u8>::new(4)?;
    /// let rx = ring.consumer()?;
    /// # drop(rx);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`producer`](SpscRing::producer).
    pub fn consumer(&self) -> Result<Consumer<T>> {
        // Validate first: a refused claim must not keep the role.
        let slots = self.slots()?;
        let h = self.header();
        let claim = role::claim(&h.consumer, &h.consumer_nonce)?;
        let hdr = HeaderPtr(self.header());
        Ok(Consumer {
            core: ConsumerCore::attach(&self.positions()),
            slots,
            hdr,
            loan: 0,
            claim,
            probe: ProbeRate::new(),
            ring: self.clone(),
        })
    }
}

/// The header of a ring, resolved once when a role is taken.
struct HeaderPtr(*const SpscHeader);

impl HeaderPtr {
    fn positions(&self) -> Positions<'_> {
        // SAFETY: the pointer came from `Segment::typed::<SpscHeader>(0)` (bounds and alignment checked) of the
        // segment that the role handle keeps alive through its `ring` field; SpscHeader is made of atomics, so a
        // shared reference is sound while peers write it.
        let h = unsafe { &*self.0 };
        Positions { head: &h.head, tail: &h.tail }
    }
}

/// The writing end of an [`SpscRing`]; gives the role back on drop.
///
/// # Examples
///
/// ```
/// let ring = shmproc::SpscRing::<u64>::new(8)?;
/// let mut tx = ring.producer()?;
/// tx.push(1)?;
/// assert!(ring.producer().is_err()); // one producer at a time
/// drop(tx);
/// assert!(ring.producer().is_ok());
/// # Ok::<(), shmproc::Error>(())
/// ```
pub struct Producer<T: Pod + Send> {
    core: ProducerCore<T>,
    slots: ShmSlots<T>,
    hdr: HeaderPtr,
    /// Length of the last loan from `reserve` (what `commit` may publish).
    loan: usize,
    /// The role, held in this process's name.
    claim: Claim,
    ring: SpscRing<T>,
}

/// The reading end of an [`SpscRing`]; gives the role back on drop.
///
/// # Examples
///
/// ```
/// let ring = shmproc::SpscRing::<u64>::new(8)?;
/// ring.producer()?.push_slice(&[1, 2, 3])?;
/// let mut rx = ring.consumer()?;
/// assert_eq!(rx.pop()?, 1);
/// assert_eq!(ring.len(), 2);
/// # Ok::<(), shmproc::Error>(())
/// ```
pub struct Consumer<T: Pod + Send> {
    core: ConsumerCore<T>,
    slots: ShmSlots<T>,
    hdr: HeaderPtr,
    /// Length of the last loan from `peek` (what `release` may free).
    loan: usize,
    /// The role, held in this process's name.
    claim: Claim,
    /// Whether the producer role's holder died (asked at a bounded rate).
    probe: ProbeRate,
    ring: SpscRing<T>,
}

// SAFETY: the raw slot and header pointers point into the segment owned
// (through an Arc) by `ring`, valid in this process whichever thread uses
// it; the role is not shared (the handle is not Clone, and its operations
// take &mut self).
unsafe impl<T: Pod + Send> Send for Producer<T> {}
// SAFETY: as for Producer.
unsafe impl<T: Pod + Send> Send for Consumer<T> {}

impl<T: Pod + Send> std::fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer").field("ring", &self.ring).finish()
    }
}

impl<T: Pod + Send> std::fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer").field("ring", &self.ring).finish()
    }
}

impl<T: Pod + Send> Producer<T> {
    /// Pushes `value` if there is room now; never waits.
    ///
    /// This is the non-blocking (`try_`) form of the crate's calling
    /// convention, under the name rtrb and crossbeam's `ArrayQueue` give
    /// it: a ring has no blocking form to tell it from, and
    /// [`PushError::Full`] says "not now" (with the value back). To wait
    /// for room, retry (yielding or backing off), or use a
    /// [`Queue`](crate::Queue).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmproc::PushError;
    /// let ring = shmproc::SpscRing::<u8>::new(1)?;
    /// let mut tx = ring.producer()?;
    /// tx.push(1)?;
    /// match tx.push(2) {
    ///     Err(PushError::Full(v)) => assert_eq!(v, 2), // the value comes back
    ///     other => panic!("{other:?}"),
    /// }
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`PushError::Full`] if the ring is full; [`PushError::Failed`] if
    /// the consumer's position makes no sense ([`Error::Corrupt`]), the
    /// role was lost to the other process of a fork ([`Error::RoleLost`]),
    /// or a forked child could make no liveness token ([`Error::Os`]).
    #[inline]
    #[doc(alias = "try_push")]
    pub fn push(&mut self, value: T) -> std::result::Result<(), PushError<T>> {
        if let Err(e) = self.check_role() {
            return Err(PushError::Failed(value, e));
        }
        self.loan = 0;
        let pos = self.hdr.positions();
        match self.core.push(&pos, &self.slots, value) {
            Ok(true) => Ok(()),
            Ok(false) => Err(PushError::Full(value)),
            Err(e) => Err(PushError::Failed(value, e.into())),
        }
    }

    /// Pushes as many of `values` as fit; returns how many (0 if the ring
    /// is full: a count, not an error, as a batch may be cut anywhere; the
    /// values stay with the caller).
    ///
    /// # Examples
    ///
    /// ```
    /// let ring = shmproc::SpscRing::<u8>::new(4)?;
    /// assert_eq!(ring.producer()?.push_slice(&[1, 2, 3, 4, 5, 6])?, 4);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// The failures of [`push`](Producer::push) ([`PushError::Failed`]):
    /// [`Error::Corrupt`], [`Error::RoleLost`], [`Error::Os`].
    pub fn push_slice(&mut self, values: &[T]) -> Result<usize> {
        self.check_role()?;
        self.loan = 0;
        let pos = self.hdr.positions();
        self.core.push_slice(&pos, &self.slots, values).map_err(Error::from)
    }

    /// Lends up to `max` free slots, contiguous in memory, to write in
    /// place; [`commit`](Producer::commit) publishes how many were written.
    /// The slice may be shorter than `max` (ring end, or full).
    ///
    /// # Examples
    ///
    /// ```
    /// let ring = shmproc::SpscRing::<u32>::new(8)?;
    /// let mut tx = ring.producer()?;
    /// let slots = tx.reserve(3)?;
    /// slots.copy_from_slice(&[7, 8, 9]);
    /// tx.commit(3);
    /// assert_eq!(ring.len(), 3);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`push_slice`](Producer::push_slice).
    pub fn reserve(&mut self, max: usize) -> Result<&mut [T]> {
        self.check_role()?;
        let pos = self.hdr.positions();
        let (start, n) = self.core.reserve(&pos, self.slots.cap, max).map_err(Error::from)?;
        self.loan = n;
        // SAFETY: slots start..start+n are free (not yet published, so the consumer does not touch them), inside the
        // mapping (start + n <= cap, from `reserve`) and aligned (checked in `slots`); T: Pod makes whatever bytes
        // they hold a valid T; the slice borrows `self` mutably, so no other loan or push can overlap it.
        Ok(unsafe { std::slice::from_raw_parts_mut(self.slots.slot_ptr(start), n) })
    }

    /// Publishes `n` slots written through [`reserve`](Producer::reserve).
    ///
    /// # Examples
    ///
    /// ```
    /// let ring = shmproc::SpscRing::<u32>::new(8)?;
    /// let mut tx = ring.producer()?;
    /// let slots = tx.reserve(4)?;
    /// slots[..2].copy_from_slice(&[10, 20]);
    /// tx.commit(2); // only the two written
    /// assert_eq!(ring.len(), 2);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Panics
    /// If `n` is more than the last loan held.
    pub fn commit(&mut self, n: usize) {
        assert!(n <= self.loan, "commit of more slots than the last reserve lent");
        self.loan -= n;
        let pos = self.hdr.positions();
        self.core.commit(&pos, n);
    }
}

impl<T: Pod + Send> Consumer<T> {
    /// Pops the oldest value if there is one now; never waits.
    ///
    /// The non-blocking (`try_`) form of the convention, named as in rtrb
    /// and crossbeam's `ArrayQueue` (see [`Producer::push`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmproc::PopError;
    /// let ring = shmproc::SpscRing::<u8>::new(4)?;
    /// ring.producer()?.push(5)?;
    /// let mut rx = ring.consumer()?;
    /// assert_eq!(rx.pop()?, 5);
    /// assert!(matches!(rx.pop(), Err(PopError::Empty)));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`PopError::Empty`] if nothing is there now;
    /// [`PopError::Disconnected`] if the ring is empty and the producer
    /// role is held by a process the OS confirms dead (asked at most every
    /// few milliseconds; a new producer taking the role over ends it);
    /// [`PopError::Failed`] if the producer's position makes no sense
    /// ([`Error::Corrupt`]), the role was lost to the other process of a
    /// fork ([`Error::RoleLost`]), or a forked child could make no
    /// liveness token ([`Error::Os`]).
    #[inline]
    #[doc(alias = "try_pop")]
    pub fn pop(&mut self) -> std::result::Result<T, PopError> {
        self.check_role().map_err(PopError::Failed)?;
        self.loan = 0;
        let pos = self.hdr.positions();
        match self.core.pop(&pos, &self.slots) {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(self.empty()),
            Err(e) => Err(PopError::Failed(e.into())),
        }
    }

    /// An iterator over the values there now: each `next` is a
    /// [`pop`](Consumer::pop); it ends when the ring is empty (or its
    /// producer is gone). A failure ([`PopError::Failed`]: a corrupt ring,
    /// a lost role) is yielded once as `Err`, then the iterator ends: unlike
    /// a [`Queue`](crate::Queue)'s undecodable item, it would fail again
    /// on every call. `for v in &mut consumer` is the same iterator.
    ///
    /// # Examples
    ///
    /// ```
    /// let ring = shmproc::SpscRing::<u32>::new(8)?;
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

    /// On an empty ring: `Disconnected` if the producer died holding its
    /// role, else `Empty` (or `Failed` if the ring turned corrupt).
    #[cold]
    fn empty(&mut self) -> PopError {
        let h = self.ring.header();
        if role::holder_dead(&self.probe, &h.producer, &h.producer_nonce) {
            // Its last publication may have landed after our empty look.
            let pos = self.hdr.positions();
            match self.core.peek(&pos, self.slots.cap, 1) {
                Ok((_, 0)) => return PopError::Disconnected,
                Ok(_) => {}
                Err(e) => return PopError::Failed(e.into()),
            }
        }
        PopError::Empty
    }

    /// `empty`, for the batch calls: `Ok` if merely empty.
    #[cold]
    fn empty_batch(&mut self) -> Result<()> {
        match self.empty() {
            PopError::Empty => Ok(()),
            e => Err(e.into()),
        }
    }

    /// Pops up to `out.len()` values; returns how many (0 if the ring is
    /// empty: a count, not an error).
    ///
    /// # Examples
    ///
    /// ```
    /// let ring = shmproc::SpscRing::<u8>::new(4)?;
    /// ring.producer()?.push_slice(&[1, 2, 3])?;
    /// let mut out = [0u8; 8];
    /// assert_eq!(ring.consumer()?.pop_into(&mut out)?, 3);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Disconnected`] as [`PopError::Disconnected`]; the failures
    /// of [`pop`](Consumer::pop) ([`PopError::Failed`]):
    /// [`Error::Corrupt`], [`Error::RoleLost`], [`Error::Os`].
    pub fn pop_into(&mut self, out: &mut [T]) -> Result<usize> {
        self.check_role()?;
        self.loan = 0;
        let pos = self.hdr.positions();
        let n = self.core.pop_into(&pos, &self.slots, out)?;
        if n == 0 && !out.is_empty() {
            self.empty_batch()?;
        }
        Ok(n)
    }

    /// Lends up to `max` published values, contiguous in memory, to read in
    /// place; [`release`](Consumer::release) frees how many were used.
    ///
    /// # Examples
    ///
    /// ```
    /// let ring = shmproc::SpscRing::<u32>::new(8)?;
    /// ring.producer()?.push_slice(&[4, 5])?;
    /// let mut rx = ring.consumer()?;
    /// assert_eq!(rx.peek(10)?, &[4, 5]);
    /// rx.release(2);
    /// assert!(ring.is_empty());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`pop_into`](Consumer::pop_into).
    pub fn peek(&mut self, max: usize) -> Result<&[T]> {
        self.check_role()?;
        let (mut start, mut n) = self.core.peek(&self.hdr.positions(), self.slots.cap, max)?;
        if n == 0 && max != 0 {
            self.empty_batch()?;
            (start, n) = self.core.peek(&self.hdr.positions(), self.slots.cap, max)?;
        }
        self.loan = n;
        // SAFETY: slots start..start+n are published (n <= available) and the producer does not rewrite them until
        // `release`; they are inside the mapping and aligned (checked in `slots`); T: Pod; the slice borrows `self`,
        // so no release can happen while it is alive.
        Ok(unsafe { std::slice::from_raw_parts(self.slots.slot_ptr(start), n) })
    }

    /// Frees `n` values read through [`peek`](Consumer::peek).
    ///
    /// # Examples
    ///
    /// ```
    /// let ring = shmproc::SpscRing::<u32>::new(8)?;
    /// ring.producer()?.push_slice(&[1, 2, 3])?;
    /// let mut rx = ring.consumer()?;
    /// assert_eq!(rx.peek(8)?, &[1, 2, 3]);
    /// rx.release(2);
    /// assert_eq!(rx.pop()?, 3);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Panics
    /// If `n` is more than the last peek lent.
    pub fn release(&mut self, n: usize) {
        assert!(n <= self.loan, "release of more slots than the last peek lent");
        self.loan -= n;
        let pos = self.hdr.positions();
        self.core.release(&pos, n);
    }
}

/// The iterator of [`Consumer::try_iter`] (also `for v in &mut consumer`):
/// the values there now, as `Ok`; a failure is yielded once as `Err`, then
/// it ends.
///
/// # Examples
///
/// ```
/// let ring = shmproc::SpscRing::<u8>::new(4)?;
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
    rx: &'a mut Consumer<T>,
    /// Set after a failure or once the ring is empty.
    done: bool,
}

impl<T: Pod + Send> std::fmt::Debug for TryIter<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpscTryIter").field("done", &self.done).finish_non_exhaustive()
    }
}

impl<T: Pod + Send> Iterator for TryIter<'_, T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        try_iter_step(&mut self.done, || self.rx.pop())
    }
}

impl<T: Pod + Send> std::iter::FusedIterator for TryIter<'_, T> {}

impl<'a, T: Pod + Send> IntoIterator for &'a mut Consumer<T> {
    type Item = Result<T>;
    type IntoIter = TryIter<'a, T>;

    /// [`Consumer::try_iter`]: the values there now (a ring never waits).
    fn into_iter(self) -> TryIter<'a, T> {
        self.try_iter()
    }
}

impl<T: Pod + Send> Producer<T> {
    /// In a forked child that received this handle, moves the role to it.
    #[inline]
    fn check_role(&mut self) -> Result<()> {
        let ring = &self.ring;
        self.claim.check(|| {
            let h = ring.header();
            (&h.producer, &h.producer_nonce)
        })
    }
}

impl<T: Pod + Send> Consumer<T> {
    /// In a forked child that received this handle, moves the role to it.
    #[inline]
    fn check_role(&mut self) -> Result<()> {
        let ring = &self.ring;
        self.claim.check(|| {
            let h = ring.header();
            (&h.consumer, &h.consumer_nonce)
        })
    }
}

impl<T: Pod + Send> Drop for Producer<T> {
    fn drop(&mut self) {
        let h = self.ring.header();
        self.claim.release(&h.producer, &h.producer_nonce);
    }
}

impl<T: Pod + Send> Drop for Consumer<T> {
    fn drop(&mut self) {
        let h = self.ring.header();
        self.claim.release(&h.consumer, &h.consumer_nonce);
    }
}

#[cfg(feature = "serde")]
impl<T: Pod + Send> serde::Serialize for SpscRing<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.seg.serialize(s)
    }
}

#[cfg(feature = "serde")]
impl<'de, T: Pod + Send> serde::Deserialize<'de> for SpscRing<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let seg = Segment::deserialize(d)?;
        if seg.layout_identity() != (kind::SPSC, ring_hash::<T>()) {
            return Err(D::Error::custom(Error::LayoutMismatch {
                expected: ring_hash::<T>(),
                found: seg.layout_identity().1,
            }));
        }
        SpscRing::wrap(seg).map_err(D::Error::custom)
    }
}
