//! The single-producer single-consumer protocol for variable-size byte
//! messages, the core of [`ByteRing`](crate::ByteRing), `Queue` and `Pipe`.
//!
//! The buffer is `capacity` bytes (a power of two). A message is a record:
//! an 8-byte header (`len: u32`, `tag: u32`) and `len` payload bytes padded
//! to a multiple of 8. A record never wraps: when it does not fit before the
//! end of the buffer, the producer first writes a padding record (tag
//! [`PAD`]) that fills the end, and the record starts at offset 0. A
//! message may be at most `capacity / 2 - 8` bytes long, so it always fits
//! once the consumer has drained the ring.
//!
//! | word | written by | meaning |
//! |---|---|---|
//! | `tail` | the producer (Release) | messages published `<< 40` \| bytes published (mod 2^40) |
//! | `head` | the consumer (Release) | messages consumed `<< 40` \| bytes consumed (mod 2^40) |
//!
//! Both counts live in one word so a single store publishes a record and
//! counts it (a producer killed between two stores could not leave them
//! disagreeing). Each side loads only the other's word (Acquire, pairing
//! with the other's Release store) and checks it: a position that moves
//! backwards, more bytes in use than the buffer holds, or a record header
//! whose length runs past the published bytes or the buffer end is
//! [`Corrupt`](RingError::Corrupt), never an out-of-bounds access. A header
//! is read once and the copy is checked (RELIABILITY cases 35, 36).
#![allow(unsafe_code)]

use crate::loom::atomic::Ordering;
use crate::queue::spsc::{Positions, RingError};

/// Bytes of a record header.
pub(crate) const HEADER: u64 = 8;
/// The tag of a padding record (skipped by consumers, never shown).
pub(crate) const PAD: u32 = 0;
/// The tag of a record that holds the message itself.
pub(crate) const TAG_INLINE: u32 = 1;
/// The tag of a record that holds a spill reference (see `spill.rs`).
#[cfg(feature = "serde")]
pub(crate) const TAG_SPILL: u32 = 2;
/// The smallest and largest buffer sizes.
pub(crate) const MIN_CAPACITY: u64 = 64;
pub(crate) const MAX_CAPACITY: u64 = 1 << 32;

const BYTE_BITS: u32 = 40;
const BYTE_MASK: u64 = (1 << BYTE_BITS) - 1;
const MSG_MASK: u64 = (1 << (64 - BYTE_BITS)) - 1;

/// The largest message (payload bytes) a buffer of `capacity` bytes takes.
pub(crate) const fn max_message(capacity: u64) -> u64 {
    capacity / 2 - HEADER
}

/// Record size of a `len`-byte payload: header plus payload rounded to 8.
const fn record_size(len: u64) -> u64 {
    HEADER + len.div_ceil(8) * 8
}

fn bytes(p: u64) -> u64 {
    p & BYTE_MASK
}

fn msgs(p: u64) -> u64 {
    p >> BYTE_BITS
}

fn advance(p: u64, nbytes: u64, nmsgs: u64) -> u64 {
    ((msgs(p).wrapping_add(nmsgs) & MSG_MASK) << BYTE_BITS) | (bytes(p).wrapping_add(nbytes) & BYTE_MASK)
}

/// Bytes from `from` to `to` (positions, mod 2^40).
fn byte_distance(from: u64, to: u64) -> u64 {
    bytes(to).wrapping_sub(bytes(from)) & BYTE_MASK
}

#[cfg(feature = "serde")]
/// Whether position `to` can be at most one ring ahead of `from`, by both
/// of its counters: at most [`MAX_CAPACITY`] bytes, and no more messages
/// than those bytes hold headers. A cached hint that fails this is stale
/// (older than the counters' wrap) or garbage and is not used. Both
/// counters wrap (bytes mod 2^40, messages mod 2^24), so a hint that passes
/// is a recent value unless the queue carried an exact multiple of both in
/// between; the reads it leads to are checked as any others.
fn behind_by_a_ring(from: u64, to: u64) -> bool {
    let n = byte_distance(from, to);
    n <= MAX_CAPACITY && msg_distance(from, to) <= n / HEADER
}

/// Messages from `from` to `to` (mod 2^24).
fn msg_distance(from: u64, to: u64) -> u64 {
    msgs(to).wrapping_sub(msgs(from)) & MSG_MASK
}

/// Messages between two positions as seen by anyone (for `len`): clamped,
/// since the two words are loaded at different times.
pub(crate) fn messages_between(head: u64, tail: u64, capacity: u64) -> u64 {
    let n = msg_distance(head, tail);
    if n > capacity / HEADER || byte_distance(head, tail) > capacity { 0 } else { n }
}

/// Whether a position pair shows a published message (for a waiter's
/// lock-free check; padding is published only together with the record
/// after it, so any published byte means a message).
pub(crate) fn has_message(head: u64, tail: u64) -> bool {
    bytes(head) != bytes(tail)
}

#[cfg(feature = "serde")]
/// Whether a `len`-byte message (`len <= max_message`) would fit behind
/// `tail` now (for a waiter's lock-free check; the push itself decides).
pub(crate) fn fits(head: u64, tail: u64, capacity: u64, len: u64) -> bool {
    let used = byte_distance(head, tail);
    if used > capacity {
        return true; // garbage: let the push report it
    }
    let start = bytes(tail) & (capacity - 1);
    let need = record_size(len);
    let pad = if need > capacity - start { capacity - start } else { 0 };
    capacity - used >= pad + need
}

#[cfg(feature = "inspect")]
/// Bytes between two positions as seen by anyone (clamped).
pub(crate) fn bytes_between(head: u64, tail: u64, capacity: u64) -> u64 {
    let n = byte_distance(head, tail);
    if n > capacity { 0 } else { n }
}

/// Where the buffer lives: a segment in real use, loom cells in models.
///
/// # Safety
///
/// Implementors guarantee that the methods are sound for every `off` that
/// is 8-aligned with `off + len <= capacity()`, as long as no two calls for
/// overlapping bytes overlap in time unless both read (the protocol gives
/// every byte to one side at a time).
pub(crate) unsafe trait ByteSlots {
    /// Buffer size in bytes (a power of two, `MIN_CAPACITY..=MAX_CAPACITY`).
    fn capacity(&self) -> u64;
    /// Reads the record header at `off`: `(len, tag)`.
    ///
    /// # Safety
    /// `off` 8-aligned, `off + 8 <= capacity()`, no concurrent write there.
    unsafe fn read_header(&self, off: u64) -> (u32, u32);
    /// Writes a record header at `off`.
    ///
    /// # Safety
    /// As for `read_header`, and no other access there runs concurrently.
    unsafe fn write_header(&self, off: u64, len: u32, tag: u32);
    /// Copies `src` to `off`.
    ///
    /// # Safety
    /// `off` 8-aligned, `off + src.len() <= capacity()`, no other access of
    /// those bytes runs concurrently.
    unsafe fn copy_in(&self, off: u64, src: &[u8]);
    /// Copies bytes at `off` into `dst`.
    ///
    /// # Safety
    /// `off` 8-aligned, `off + dst.len() <= capacity()`, no concurrent write.
    unsafe fn copy_out(&self, off: u64, dst: &mut [u8]);
    /// A pointer to byte `off`, for loans.
    fn ptr(&self, off: u64) -> *mut u8;
}

/// A reserved record, not yet published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WriteSpan {
    /// Padding written before the record (0 if none).
    pad: u64,
    /// Buffer offset of the record's header.
    rec: u64,
    /// Payload bytes reserved.
    pub(crate) max: u64,
}

impl WriteSpan {
    /// Buffer offset of the payload.
    pub(crate) fn payload(&self) -> u64 {
        self.rec + HEADER
    }
}

/// A published record at the consumer's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReadSpan {
    /// Buffer offset of the payload.
    pub(crate) payload: u64,
    /// Payload length.
    pub(crate) len: u64,
    /// The record's tag (never [`PAD`]).
    pub(crate) tag: u32,
}

impl ReadSpan {
    fn size(&self) -> u64 {
        record_size(self.len)
    }
}

/// The producer's half of the protocol.
#[derive(Debug)]
pub(crate) struct ByteProducerCore {
    tail: u64,
    cached_head: u64,
}

/// The consumer's half of the protocol.
#[derive(Debug)]
pub(crate) struct ByteConsumerCore {
    head: u64,
    cached_tail: u64,
}

impl ByteProducerCore {
    /// Takes over the producer role at the published `tail`.
    pub(crate) fn attach(pos: &Positions<'_>) -> Self {
        // Acquire: our own position as its last holder published it (one
        // that died never released the role, so the claim's CAS alone does
        // not order its stores before us).
        let tail = pos.tail.load(Ordering::Acquire);
        // Acquire: pairs with the consumer's Release store of `head`.
        let head = pos.head.load(Ordering::Acquire);
        ByteProducerCore { tail, cached_head: head }
    }

    #[cfg(feature = "serde")]
    /// Takes the producer role at the published `tail`, trusting `head_hint`
    /// (a value of `head` loaded earlier: positions only grow, so it is a
    /// lower bound) until it shows too little room. Saves the load of a
    /// cache line the consumer keeps writing.
    pub(crate) fn attach_cached(pos: &Positions<'_>, head_hint: u64) -> Self {
        let tail = pos.tail.load(Ordering::Acquire);
        if !behind_by_a_ring(head_hint, tail) {
            // Not a recent value of `head` (or garbage): look it up.
            // Acquire: as in `attach`.
            return ByteProducerCore { tail, cached_head: pos.head.load(Ordering::Acquire) };
        }
        ByteProducerCore { tail, cached_head: head_hint }
    }

    #[cfg(feature = "serde")]
    /// The consumer position this side last loaded (a hint for the next
    /// [`attach_cached`](Self::attach_cached)).
    pub(crate) fn head_hint(&self) -> u64 {
        self.cached_head
    }

    /// Free bytes: at least `want` if the cached consumer position shows
    /// them, else after reloading (and checking) it.
    fn room(&mut self, pos: &Positions<'_>, cap: u64, want: u64) -> Result<u64, RingError> {
        let used = byte_distance(self.cached_head, self.tail);
        if cap - used.min(cap) >= want {
            return Ok(cap - used.min(cap));
        }
        // Acquire: pairs with the consumer's Release store of `head`: its
        // reads of the bytes we are about to reuse are done.
        let head = pos.head.load(Ordering::Acquire);
        let used = byte_distance(head, self.tail);
        // The consumer's position moves forward only, up to ours.
        if used > cap || byte_distance(self.cached_head, head) > byte_distance(self.cached_head, self.tail) {
            return Err(RingError::Corrupt);
        }
        self.cached_head = head;
        Ok(cap - used)
    }

    #[cfg(feature = "serde")]
    /// Messages in the ring as of the last load of the consumer's position
    /// (an upper bound: the consumer may have taken more since).
    pub(crate) fn messages_upper_bound(&self) -> u64 {
        msg_distance(self.cached_head, self.tail)
    }

    #[cfg(feature = "serde")]
    /// Messages in the ring now (reloads the consumer's position).
    pub(crate) fn messages(&mut self, pos: &Positions<'_>, cap: u64) -> Result<u64, RingError> {
        self.room(pos, cap, u64::MAX)?;
        let n = msg_distance(self.cached_head, self.tail);
        // Every message takes at least a header's bytes: a larger count is
        // garbage (the consumer checks the same in `available`), not a full
        // ring; taken as full it makes a blocked put spin forever.
        if n > byte_distance(self.cached_head, self.tail) / HEADER {
            return Err(RingError::Corrupt);
        }
        Ok(n)
    }

    /// Reserves room for a `len`-byte payload (`len <= max_message`), or
    /// `None` if the ring has no room for it now. Nothing is visible to the
    /// consumer until [`commit`](Self::commit).
    pub(crate) fn reserve<S: ByteSlots>(
        &mut self,
        pos: &Positions<'_>,
        slots: &S,
        len: u64,
    ) -> Result<Option<WriteSpan>, RingError> {
        let cap = slots.capacity();
        debug_assert!(len <= max_message(cap));
        let need = record_size(len);
        let start = bytes(self.tail) & (cap - 1);
        // `tail` was loaded from shared memory: a misaligned one is garbage,
        // and would put a header off its word, up to 5 bytes past the end.
        if !start.is_multiple_of(8) {
            return Err(RingError::Corrupt);
        }
        let to_end = cap - start;
        let pad = if need > to_end { to_end } else { 0 };
        if self.room(pos, cap, pad + need)? < pad + need {
            return Ok(None);
        }
        if pad > 0 {
            // SAFETY: `start` is 8-aligned (checked above) and start + 8 <=
            // cap (to_end >= 8); the bytes from tail on are free (room
            // checked) and unpublished.
            unsafe { slots.write_header(start, (pad - HEADER) as u32, PAD) };
        }
        Ok(Some(WriteSpan { pad, rec: (start + pad) & (cap - 1), max: len }))
    }

    /// Publishes a reserved record with `len <= span.max` payload bytes
    /// (written through [`ByteSlots::copy_in`] or a loan) and `tag`.
    pub(crate) fn commit<S: ByteSlots>(&mut self, pos: &Positions<'_>, slots: &S, span: WriteSpan, len: u64, tag: u32) {
        debug_assert!(len <= span.max && tag != PAD);
        // SAFETY: the record's bytes were reserved by `reserve` (free,
        // unpublished, in bounds: rec + record_size(max) <= cap).
        unsafe { slots.write_header(span.rec, len as u32, tag) };
        self.tail = advance(self.tail, span.pad + record_size(len), 1);
        // Release: the record's bytes happen-before the consumer's reads.
        pos.tail.store(self.tail, Ordering::Release);
    }

    /// Copies one message in; `Ok(false)` if there is no room now.
    pub(crate) fn push<S: ByteSlots>(
        &mut self,
        pos: &Positions<'_>,
        slots: &S,
        msg: &[u8],
        tag: u32,
    ) -> Result<bool, RingError> {
        let Some(span) = self.reserve(pos, slots, msg.len() as u64)? else { return Ok(false) };
        // SAFETY: the span's payload bytes are reserved for us (free,
        // unpublished, in bounds) and 8-aligned.
        unsafe { slots.copy_in(span.payload(), msg) };
        crate::sys::failpoint::hit("bytes.push.before_commit");
        self.commit(pos, slots, span, msg.len() as u64, tag);
        Ok(true)
    }
}

impl ByteConsumerCore {
    /// Takes over the consumer role at the published `head`.
    pub(crate) fn attach(pos: &Positions<'_>) -> Self {
        // Acquire: our own position as its last holder published it (one
        // that died never released the role, so the claim's CAS alone does
        // not order its stores before us).
        let head = pos.head.load(Ordering::Acquire);
        ByteConsumerCore { head, cached_tail: head }
    }

    #[cfg(feature = "serde")]
    /// Takes the consumer role at the published `head`, trusting
    /// `tail_hint` (a value of `tail` loaded earlier) while it shows
    /// published bytes; a hint that other consumers have passed is dropped.
    pub(crate) fn attach_cached(pos: &Positions<'_>, tail_hint: u64) -> Self {
        // Acquire: our own position as its last holder published it (one
        // that died never released the role, so the claim's CAS alone does
        // not order its stores before us).
        let head = pos.head.load(Ordering::Acquire);
        let cached_tail = if behind_by_a_ring(head, tail_hint) { tail_hint } else { head };
        ByteConsumerCore { head, cached_tail }
    }

    #[cfg(feature = "serde")]
    /// The producer position this side last loaded.
    pub(crate) fn tail_hint(&self) -> u64 {
        self.cached_tail
    }

    /// Published bytes: reloads the producer's position when the cached one
    /// shows none.
    fn available(&mut self, pos: &Positions<'_>, cap: u64) -> Result<u64, RingError> {
        let have = byte_distance(self.head, self.cached_tail);
        if have != 0 && have <= cap {
            return Ok(have);
        }
        // Acquire: pairs with the producer's Release store of `tail`: the
        // records' bytes are visible.
        let tail = pos.tail.load(Ordering::Acquire);
        let n = byte_distance(self.head, tail);
        if n > cap || byte_distance(self.cached_tail, tail) > n || msg_distance(self.head, tail) > n / HEADER {
            return Err(RingError::Corrupt);
        }
        self.cached_tail = tail;
        Ok(n)
    }

    /// Whether a message is published (reloads the producer's position).
    pub(crate) fn has_message(&mut self, pos: &Positions<'_>, cap: u64) -> Result<bool, RingError> {
        Ok(self.available(pos, cap)? != 0)
    }

    /// The oldest published message, skipping padding, or `None`. The
    /// record stays in the ring until [`release`](Self::release).
    pub(crate) fn peek<S: ByteSlots>(&mut self, pos: &Positions<'_>, slots: &S) -> Result<Option<ReadSpan>, RingError> {
        let cap = slots.capacity();
        loop {
            let avail = self.available(pos, cap)?;
            if avail == 0 {
                return Ok(None);
            }
            let start = bytes(self.head) & (cap - 1);
            let to_end = cap - start;
            if avail < HEADER || !start.is_multiple_of(8) {
                return Err(RingError::Corrupt);
            }
            // SAFETY: `start` is 8-aligned with start + 8 <= cap (checked:
            // cap is a multiple of 8), and the header is published (avail
            // >= 8), so the producer does not write it until we release.
            let (len, tag) = unsafe { slots.read_header(start) };
            let size = record_size(u64::from(len));
            if size > avail || size > to_end {
                return Err(RingError::Corrupt);
            }
            if tag == PAD {
                if size != to_end {
                    return Err(RingError::Corrupt);
                }
                self.head = advance(self.head, size, 0);
                // Release: our (header) read happens-before the reuse.
                pos.head.store(self.head, Ordering::Release);
                continue;
            }
            return Ok(Some(ReadSpan { payload: start + HEADER, len: u64::from(len), tag }));
        }
    }

    /// Frees the record returned by the last [`peek`](Self::peek).
    pub(crate) fn release(&mut self, pos: &Positions<'_>, span: ReadSpan) {
        self.head = advance(self.head, span.size(), 1);
        // Release: our reads of the record happen-before the producer reuses it.
        pos.head.store(self.head, Ordering::Release);
    }

    /// Pops the oldest message into `out` (cleared first): its tag, or
    /// `None` if there is none.
    pub(crate) fn pop_into<S: ByteSlots>(
        &mut self,
        pos: &Positions<'_>,
        slots: &S,
        out: &mut Vec<u8>,
    ) -> Result<Option<u32>, RingError> {
        self.pop_into_then(pos, slots, out, |_, _| {})
    }

    /// As [`pop_into`](Self::pop_into), calling `before_release` with the
    /// copied bytes after the copy and before the record is released (a
    /// consumer that dies inside it leaves the record in the ring).
    pub(crate) fn pop_into_then<S: ByteSlots>(
        &mut self,
        pos: &Positions<'_>,
        slots: &S,
        out: &mut Vec<u8>,
        before_release: impl FnOnce(&[u8], u32),
    ) -> Result<Option<u32>, RingError> {
        let Some(span) = self.peek(pos, slots)? else { return Ok(None) };
        out.clear();
        Ok(self.copy_then(pos, slots, span, out, |bytes, tag| {
            before_release(bytes, tag);
            true
        }))
    }

    /// Appends a copy of the oldest message to `out`, then asks `take`
    /// (with the copied bytes and the tag) whether to take it: if so the
    /// record is released (a consumer that dies inside `take` leaves it
    /// in the ring, as in [`pop_into_then`](Self::pop_into_then)) and its
    /// tag returned; if not, the copy is removed from `out` and the record
    /// stays. `None` also when there is no message.
    #[cfg(feature = "pool")]
    pub(crate) fn pop_append_then<S: ByteSlots>(
        &mut self,
        pos: &Positions<'_>,
        slots: &S,
        out: &mut Vec<u8>,
        take: impl FnOnce(&[u8], u32) -> bool,
    ) -> Result<Option<u32>, RingError> {
        let Some(span) = self.peek(pos, slots)? else { return Ok(None) };
        Ok(self.copy_then(pos, slots, span, out, take))
    }

    /// Appends a copy of the record `span` (just peeked) to `out`, then
    /// releases it if `take` says so: its tag, or `None` (the copy removed
    /// again, the record left in the ring).
    fn copy_then<S: ByteSlots>(
        &mut self,
        pos: &Positions<'_>,
        slots: &S,
        span: ReadSpan,
        out: &mut Vec<u8>,
        take: impl FnOnce(&[u8], u32) -> bool,
    ) -> Option<u32> {
        let at = out.len();
        out.resize(at + span.len as usize, 0);
        // SAFETY: the payload is published and in bounds (checked in peek)
        // and 8-aligned; the producer does not rewrite it until release.
        unsafe { slots.copy_out(span.payload, &mut out[at..]) };
        crate::sys::failpoint::hit("bytes.pop.before_release");
        if !take(&out[at..], span.tag) {
            out.truncate(at);
            return None;
        }
        self.release(pos, span);
        Some(span.tag)
    }
}

/// A byte buffer inside a mapped segment.
#[derive(Debug)]
pub(crate) struct ShmBytes {
    base: *mut u8,
    cap: u64,
}

impl ShmBytes {
    /// The buffer of `cap` bytes at `offset` in `seg`, after checking that
    /// it lies inside the mapping and is 8-aligned (`cap` may come from
    /// shared memory: it is checked here).
    pub(crate) fn in_segment(seg: &crate::shm::segment::Segment, offset: usize, cap: u64) -> crate::Result<ShmBytes> {
        if !cap.is_power_of_two() || !(MIN_CAPACITY..=MAX_CAPACITY).contains(&cap) {
            return Err(crate::Error::Corrupt { what: "byte ring capacity" });
        }
        let end = usize::try_from(cap).ok().and_then(|c| c.checked_add(offset));
        if end.is_none_or(|end| end > seg.len()) {
            return Err(crate::Error::Corrupt { what: "byte ring exceeds its segment" });
        }
        let base = seg.as_ptr().wrapping_add(offset);
        if !(base as usize).is_multiple_of(8) {
            return Err(crate::Error::Corrupt { what: "byte ring misaligned" });
        }
        Ok(ShmBytes { base, cap })
    }
}

// SAFETY: `base..base + cap` lies inside a live mapping of the segment that
// the owner of this value keeps alive (checked in `in_segment`), 8-aligned;
// callers pass offsets with `off + len <= cap` (the protocol checks every
// length it reads from shared memory first). Headers are read and written as
// atomics, so a racing peer cannot make them undefined; payload bytes are
// plain data copied in and out, the accepted deviation of SAFETY.md.
unsafe impl ByteSlots for ShmBytes {
    fn capacity(&self) -> u64 {
        self.cap
    }
    unsafe fn read_header(&self, off: u64) -> (u32, u32) {
        // SAFETY: off is 8-aligned and off + 8 <= cap (caller), so the word
        // is aligned and inside the mapping; shared memory is only accessed
        // atomically or by plain copies.
        let w = unsafe { &*self.base.wrapping_add(off as usize).cast::<std::sync::atomic::AtomicU64>() };
        let v = w.load(std::sync::atomic::Ordering::Relaxed);
        (v as u32, (v >> 32) as u32)
    }
    unsafe fn write_header(&self, off: u64, len: u32, tag: u32) {
        // SAFETY: as for read_header.
        let w = unsafe { &*self.base.wrapping_add(off as usize).cast::<std::sync::atomic::AtomicU64>() };
        w.store(u64::from(len) | (u64::from(tag) << 32), std::sync::atomic::Ordering::Relaxed);
    }
    unsafe fn copy_in(&self, off: u64, src: &[u8]) {
        // SAFETY: off + src.len() <= cap (caller): the bytes are inside the
        // mapping and reserved for us.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), self.base.wrapping_add(off as usize), src.len()) };
    }
    unsafe fn copy_out(&self, off: u64, dst: &mut [u8]) {
        // SAFETY: off + dst.len() <= cap (caller): the bytes are inside the
        // mapping and published to us.
        unsafe { std::ptr::copy_nonoverlapping(self.base.wrapping_add(off as usize), dst.as_mut_ptr(), dst.len()) };
    }
    fn ptr(&self, off: u64) -> *mut u8 {
        self.base.wrapping_add(off as usize)
    }
}

// SAFETY: the pointer refers to shared memory mapped in this process, valid
// from any thread; the protocol (under the caller's locks or roles) decides
// who touches which bytes.
unsafe impl Send for ShmBytes {}
// SAFETY: as for Send; all methods take &self and the protocol serializes
// conflicting accesses.
unsafe impl Sync for ShmBytes {}

/// Validates a buffer size chosen by a caller.
pub(crate) fn check_capacity(capacity: usize) -> crate::Result<u64> {
    let c = capacity as u64;
    if !capacity.is_power_of_two() || !(MIN_CAPACITY..=MAX_CAPACITY).contains(&c) {
        return Err(crate::Error::InvalidArgument {
            what: "byte capacity must be a power of two from 64 bytes to 4 GiB",
        });
    }
    Ok(c)
}

/// A fresh pair of position words (for tests and models).
#[cfg(test)]
pub(crate) fn positions() -> (crate::loom::atomic::AtomicU64, crate::loom::atomic::AtomicU64) {
    (crate::loom::atomic::AtomicU64::new(0), crate::loom::atomic::AtomicU64::new(0))
}

#[cfg(all(test, not(shmproc_loom)))]
pub(crate) mod tests {
    use super::*;
    use std::cell::UnsafeCell;

    /// A heap buffer of 8-byte words.
    pub(crate) struct HeapBytes(Vec<UnsafeCell<u64>>);

    impl HeapBytes {
        pub(crate) fn new(cap: usize) -> Self {
            HeapBytes((0..cap / 8).map(|_| UnsafeCell::new(0)).collect())
        }
    }

    // SAFETY: all accesses go through the cells; offsets are in bounds
    // (callers) and the protocol keeps accesses from overlapping.
    unsafe impl ByteSlots for HeapBytes {
        fn capacity(&self) -> u64 {
            (self.0.len() * 8) as u64
        }
        unsafe fn read_header(&self, off: u64) -> (u32, u32) {
            // SAFETY: caller: in bounds, aligned, no concurrent write.
            let w = unsafe { *self.0[(off / 8) as usize].get() };
            (w as u32, (w >> 32) as u32)
        }
        unsafe fn write_header(&self, off: u64, len: u32, tag: u32) {
            // SAFETY: caller: in bounds, aligned, exclusive.
            unsafe { *self.0[(off / 8) as usize].get() = u64::from(len) | (u64::from(tag) << 32) };
        }
        unsafe fn copy_in(&self, off: u64, src: &[u8]) {
            // SAFETY: caller: in bounds and exclusive.
            unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), self.ptr(off), src.len()) };
        }
        unsafe fn copy_out(&self, off: u64, dst: &mut [u8]) {
            // SAFETY: caller: in bounds, no concurrent write.
            unsafe { std::ptr::copy_nonoverlapping(self.ptr(off), dst.as_mut_ptr(), dst.len()) };
        }
        fn ptr(&self, off: u64) -> *mut u8 {
            self.0.as_ptr().cast::<u8>().cast_mut().wrapping_add(off as usize)
        }
    }

    /// A cached position hint is used only while it can be a recent value:
    /// a hint whose message count runs ahead of its bytes (stale across the
    /// counters' wrap, or garbage) is dropped for a fresh load.
    #[cfg(feature = "serde")]
    #[test]
    fn stale_or_garbage_hints_are_not_used() {
        let p = advance(0, 4096, 3);
        assert!(behind_by_a_ring(0, p), "a recent hint");
        assert!(behind_by_a_ring(p, p), "no distance");
        assert!(!behind_by_a_ring(0, advance(0, 16, 9)), "more messages than headers fit");
        assert!(!behind_by_a_ring(0, advance(0, MAX_CAPACITY + 8, 1)), "more than a ring");
        // A hint from 2^40 + 64 bytes ago looks 64 bytes old by its bytes;
        // its message count (thousands behind) gives it away.
        let wrapped = advance(advance(0, BYTE_MASK, 70_000), 65, 1);
        assert_eq!(byte_distance(0, wrapped), 64);
        assert!(!behind_by_a_ring(0, wrapped));

        let (h, t) = positions();
        let pos = Positions { head: &h, tail: &t };
        t.store(advance(0, 64, 2), Ordering::Relaxed);
        h.store(advance(0, 32, 1), Ordering::Relaxed);
        let garbage = advance(0, 8, 200);
        assert_eq!(ByteProducerCore::attach_cached(&pos, garbage).head_hint(), h.load(Ordering::Relaxed));
        assert_eq!(ByteProducerCore::attach_cached(&pos, 0).head_hint(), 0, "an older, plausible hint is kept");
        assert_eq!(ByteConsumerCore::attach_cached(&pos, garbage).tail_hint(), h.load(Ordering::Relaxed));
    }

    /// Runs `f` on a fresh heap buffer of `cap` bytes with a producer and
    /// a consumer attached.
    #[cfg(feature = "serde")]
    fn with_ring(cap: usize, f: impl FnOnce(&Positions<'_>, &HeapBytes, &mut ByteProducerCore, &mut ByteConsumerCore)) {
        let (h, t) = positions();
        let pos = Positions { head: &h, tail: &t };
        let s = HeapBytes::new(cap);
        let mut p = ByteProducerCore::attach(&pos);
        let mut c = ByteConsumerCore::attach(&pos);
        f(&pos, &s, &mut p, &mut c);
    }

    /// `pop_append_then` appends after what the buffer holds, across the
    /// wrap, and leaves a record it does not take in the ring (and its copy
    /// out of the buffer).
    #[cfg(feature = "pool")]
    #[test]
    fn appended_pops_keep_what_came_before_and_refused_records_stay() {
        with_ring(128, |pos, s, p, c| {
            let mut out = b"head".to_vec();
            let mut seen = Vec::new();
            for round in 0..20u8 {
                let msg = vec![round; 1 + round as usize % 40];
                assert!(p.push(pos, s, &msg, 1 + u32::from(round % 2)).expect("ok"));
                // A tag-2 record is refused once, then taken.
                if round % 2 == 1 {
                    let refused = c.pop_append_then(pos, s, &mut out, |_, tag| tag == 1);
                    assert_eq!(refused.expect("ok"), None);
                }
                let at = out.len();
                let got = c.pop_append_then(pos, s, &mut out, |bytes, tag| {
                    seen.push((bytes.to_vec(), tag));
                    true
                });
                assert_eq!(got.expect("ok"), Some(1 + u32::from(round % 2)));
                assert_eq!(&out[at..], &msg[..]);
                assert_eq!(seen.last(), Some(&(msg, 1 + u32::from(round % 2))));
            }
            assert!(out.starts_with(b"head"));
            assert_eq!(c.pop_append_then(pos, s, &mut out, |_, _| true).expect("ok"), None);
        });
    }

    #[cfg(feature = "serde")]
    #[test]
    fn messages_round_trip_with_wrap_and_padding() {
        with_ring(128, |pos, s, p, c| {
            let mut out = Vec::new();
            for round in 0..50u8 {
                let len = (round as usize * 7) % (max_message(128) as usize + 1);
                let msg: Vec<u8> = (0..len).map(|i| round ^ i as u8).collect();
                assert!(p.push(pos, s, &msg, 1).expect("ok"));
                assert_eq!(p.messages(pos, 128).expect("ok"), 1);
                assert_eq!(c.pop_into(pos, s, &mut out).expect("ok"), Some(1));
                assert_eq!(out, msg);
                assert_eq!(c.pop_into(pos, s, &mut out).expect("ok"), None);
            }
        });
    }

    #[test]
    fn full_ring_refuses_then_accepts() {
        let (h, t) = positions();
        let pos = Positions { head: &h, tail: &t };
        let s = HeapBytes::new(64);
        let mut p = ByteProducerCore::attach(&pos);
        let mut c = ByteConsumerCore::attach(&pos);
        assert!(p.push(&pos, &s, &[1; 24], 3).expect("ok"));
        assert!(p.push(&pos, &s, &[2; 24], 3).expect("ok"));
        assert!(!p.push(&pos, &s, &[3; 1], 3).expect("ok"), "64 bytes used");
        let mut out = Vec::new();
        assert_eq!(c.pop_into(&pos, &s, &mut out).expect("ok"), Some(3));
        assert!(p.push(&pos, &s, &[3; 1], 3).expect("ok"));
        assert_eq!(messages_between(h.load(Ordering::Relaxed), t.load(Ordering::Relaxed), 64), 2);
    }

    #[cfg(feature = "serde")]
    #[test]
    fn garbage_is_corrupt() {
        let (h, t) = positions();
        let pos = Positions { head: &h, tail: &t };
        let s = HeapBytes::new(64);
        let mut p = ByteProducerCore::attach(&pos);
        let mut c = ByteConsumerCore::attach(&pos);
        assert!(p.push(&pos, &s, &[1; 8], 1).expect("ok"));
        // A header claiming more bytes than were published.
        // SAFETY: offset 0 is in bounds; no other access runs.
        unsafe { s.write_header(0, 40, 1) };
        assert_eq!(c.peek(&pos, &s), Err(RingError::Corrupt));
        // SAFETY: as above.
        unsafe { s.write_header(0, 8, 1) };
        assert!(c.peek(&pos, &s).expect("ok").is_some());
        // A tail far ahead of the head.
        t.store(1 << 20, Ordering::Relaxed);
        let mut c2 = ByteConsumerCore::attach(&pos);
        assert_eq!(c2.peek(&pos, &s), Err(RingError::Corrupt));
        t.store(u64::MAX, Ordering::Relaxed);
        assert_eq!(c2.peek(&pos, &s), Err(RingError::Corrupt));
        // A head that runs past the tail.
        t.store(16 | (1 << 40), Ordering::Relaxed);
        h.store(1 << 30, Ordering::Relaxed);
        assert_eq!(p.messages(&pos, 64), Err(RingError::Corrupt));
    }

    /// A producer that attaches to a misaligned tail (a peer's garbage)
    /// refuses to write: a header there would straddle words or run past
    /// the buffer end.
    #[test]
    fn misaligned_tail_is_corrupt() {
        let (h, t) = positions();
        let pos = Positions { head: &h, tail: &t };
        let s = HeapBytes::new(64);
        for bad in [60u64, 4, 63, 1] {
            h.store(bad, Ordering::Relaxed);
            t.store(bad, Ordering::Relaxed);
            let mut p = ByteProducerCore::attach(&pos);
            assert_eq!(p.push(&pos, &s, &[1; 8], 1), Err(RingError::Corrupt), "tail {bad}");
            assert_eq!(p.reserve(&pos, &s, 0), Err(RingError::Corrupt), "tail {bad}");
        }
    }

    #[cfg(feature = "serde")]
    #[test]
    fn fits_and_has_message_agree_with_push() {
        with_ring(128, |pos, s, p, c| {
            let now = || (pos.head.load(Ordering::Relaxed), pos.tail.load(Ordering::Relaxed));
            let mut out = Vec::new();
            for round in 0..200u64 {
                let len = (round * 13) % (max_message(128) + 1);
                let (hd, tl) = now();
                let predicted = fits(hd, tl, 128, len);
                assert_eq!(p.push(pos, s, &vec![7; len as usize], 1).expect("ok"), predicted, "round {round}");
                let (hd, tl) = now();
                assert!(has_message(hd, tl));
                if round % 3 == 0 {
                    while c.pop_into(pos, s, &mut out).expect("ok").is_some() {}
                    let (hd, tl) = now();
                    assert!(!has_message(hd, tl));
                }
            }
        });
    }
}
