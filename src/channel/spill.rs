//! Messages larger than a ring can hold travel through a spill segment: the
//! sender writes the message into a fresh named segment and puts only a
//! small reference (length and name) into the ring; the receiver opens the
//! segment, copies the message out and unlinks the name.
//!
//! A spill segment records the channel's creator as its own creator, so
//! [`cleanup_stale`](crate::cleanup_stale) removes it only once the channel's
//! creator is dead, never while the message waits in a live channel. A
//! sender killed before it published the reference, or a receiver killed
//! between reading the reference and unlinking, leaves the segment until the
//! channel's creator has exited and a cleanup runs.
//!
//! # Reuse
//!
//! Creating a segment per message (create, size, map, fault every page in,
//! unmap, unlink) costs more than copying the message: 1 MiB items ran at
//! 0.66x an OS pipe. So a lane's spill segments are reused. Of the three
//! ways out (reuse segments, grow the ring, loan the bytes to the
//! receiver) reuse was chosen: growing the ring makes every queue pay the
//! largest item's memory up front (a segment's size is fixed and
//! allocated at creation), and a loan changes the receive API. Reuse keeps
//! the API and the ring, and costs memory only on lanes that carry big
//! items.
//!
//! The hand-back protocol: each lane has [`SPARES`] slot words
//! ([`Spares`], in the lane's shared words). A slot holds `EMPTY`, the id
//! of a spill segment nobody uses (its name is [`reusable_name`] of the
//! id), or `CLOSED`. The receiver, after it copied a message out, hands the
//! segment back by a compare-exchange `EMPTY -> id` (Release: its reads
//! happen-before the next writer's writes); a sender takes a segment by a
//! compare-exchange `id -> EMPTY` (Acquire), and from then on is its only
//! user until it publishes the reference. So a segment is at any time in
//! exactly one place: a slot, one sender, the ring (as a reference), or one
//! receiver; the receiver of a reused segment never sees the next write
//! while it reads, because no sender can take it before it is handed back.
//! A receiver that finds no empty slot (or a `CLOSED` one) unlinks the
//! segment as before. When the channel's creator process drops its lane,
//! it closes every slot (swap to `CLOSED`) and unlinks what it finds: from
//! then on segments are not kept, so a dropped channel keeps none.
//!
//! Crashes: a segment is recorded under the channel's creator's token as
//! before, so a sender killed while writing, or a receiver killed while
//! reading a reused segment, leaves it for [`cleanup_stale`](crate::cleanup_stale)
//! once the creator is dead, exactly as a fresh one. An id in a slot is read
//! once (by the compare-exchange that takes it), and what it names is
//! checked when opened (a spill segment of this channel's creator, large
//! enough) or unlinked and replaced.
//!
//! Each process keeps its last few mappings of reused segments
//! ([`SpillCache`]), so a reused segment is neither opened nor mapped
//! again. Memory kept: at most [`SPARES`] segments per lane (each the
//! largest item size seen, rounded up to a power of two) while the
//! channel's creator holds it, and up to [`CACHED`] mappings per process
//! per lane (an unlinked segment's memory lives until its mapping is
//! dropped from the cache or the lane is dropped).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::owner::token::Token;

use crate::error::{Error, Result};
use crate::shm::segment::Segment;

/// The longest spill name (the reference must stay small).
const MAX_NAME: usize = 96;

/// Writes `msg` into a new spill segment and returns the reference to put
/// into the ring: the message length (8 bytes, LE) then the name. `owner`
/// (the channel's creator) is recorded as the segment's creator: the
/// segment then counts as stale for [`cleanup_stale`](crate::cleanup_stale)
/// only once `owner` is dead, not as soon as the sending process exits
/// while the message waits in the channel.
pub(crate) fn spill_out(msg: &[u8], owner: Option<crate::owner::token::Token>) -> Result<Vec<u8>> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nonce = crate::sys::random_u64().map_err(|e| Error::os("getrandom", e))?;
    let name =
        format!("spill.{}.{}.{:016x}", crate::sys::process::pid(), COUNTER.fetch_add(1, Ordering::Relaxed), nonce);
    let mut b = Segment::builder().name(&name).size(msg.len().max(1)).keep_name(true);
    if let Some(owner) = owner {
        b = b.on_behalf_of(owner);
    }
    let seg = b.create()?;
    seg.write_bytes(0, msg)?;
    let mut r = Vec::with_capacity(8 + name.len());
    r.extend_from_slice(&(msg.len() as u64).to_le_bytes());
    r.extend_from_slice(name.as_bytes());
    Ok(r)
}

/// Reads the message a spill reference names into `out` and unlinks the
/// segment. The reference comes from shared memory: it is checked.
pub(crate) fn spill_in(reference: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let corrupt = Error::Corrupt { what: "spill reference" };
    if reference.len() < 9 || reference.len() > 8 + MAX_NAME {
        return Err(corrupt);
    }
    let (len, name) = reference.split_at(8);
    let len = u64::from_le_bytes(len.try_into().expect("invariant: split at 8"));
    let name = std::str::from_utf8(name).map_err(|_| Error::Corrupt { what: "spill reference" })?;
    if !name.starts_with("spill.") {
        return Err(corrupt);
    }
    // A reference that names nothing (a replayed or invented one) is as
    // corrupt as any other bad record.
    let seg = Segment::open(name).map_err(|e| match e {
        Error::Os { .. } | Error::PermissionDenied { .. } => e,
        _ => Error::Corrupt { what: "spill reference names no spill segment" },
    })?;
    let len = usize::try_from(len).ok().filter(|&l| l <= seg.len()).ok_or(corrupt)?;
    out.clear();
    out.resize(len, 0);
    let read = seg.read_bytes(0, out);
    // Unlink even if the read failed: nobody else will read it.
    let _ = Segment::unlink(name);
    read
}

/// Spare segments kept per lane (slot words in shared memory).
pub(crate) const SPARES: usize = 8;

/// Mappings of reused segments a process keeps per lane.
pub(crate) const CACHED: usize = 16;

/// A slot that holds no segment.
const EMPTY: u64 = 0;

/// A slot of a lane whose creator dropped it: no segment goes in any more.
const CLOSED: u64 = u64::MAX;

/// The smallest reused segment (smaller items rarely spill: half a ring).
const MIN_REUSED: usize = 64 << 10;

/// The hand-back slots of one lane, in shared memory (see the module docs).
#[derive(Debug)]
#[repr(C)]
pub(crate) struct Spares {
    pub(crate) slots: [crate::loom::atomic::AtomicU64; SPARES],
}

impl Spares {
    /// Takes the id of a spare from a slot (leaving it `EMPTY`), starting
    /// after the slots already tried (`from`): the id and the next slot to
    /// try, or `None` when no slot holds one. From then on the caller is
    /// the segment's only holder.
    pub(crate) fn take(&self, from: usize) -> Option<(u64, usize)> {
        use crate::loom::atomic::Ordering as O;
        for (i, slot) in self.slots.iter().enumerate().skip(from) {
            // Relaxed: a guess, confirmed by the compare-exchange.
            let id = slot.load(O::Relaxed);
            if id == EMPTY || id == CLOSED {
                continue;
            }
            // Acquire: the receiver's reads (and its hand-back) happen-before
            // our writes. The id is read once, here.
            if slot.compare_exchange(id, EMPTY, O::Acquire, O::Relaxed).is_ok() {
                return Some((id, i + 1));
            }
        }
        None
    }

    /// Puts `id` into an empty slot: `false` if none is empty (or the
    /// slots are closed), and then the caller still holds it.
    pub(crate) fn put(&self, id: u64) -> bool {
        use crate::loom::atomic::Ordering as O;
        // Release: our reads happen-before the next sender's writes.
        self.slots.iter().any(|slot| slot.compare_exchange(EMPTY, id, O::Release, O::Relaxed).is_ok())
    }

    /// Closes every slot: the ids that were in them (now the caller's).
    pub(crate) fn close(&self) -> Vec<u64> {
        let ids = self.slots.iter().map(|slot| slot.swap(CLOSED, crate::loom::atomic::Ordering::AcqRel));
        ids.filter(|&id| id != EMPTY && id != CLOSED).collect()
    }
}

/// The name of the reused spill segment `id`: its creating process's pid
/// (the high 24 bits) and 40 random bits, so tests and tools that look for
/// `spill.<pid>.*` find it like any spill segment.
pub(crate) fn reusable_name(id: u64) -> String {
    format!("spill.{}.r{:010x}", id >> 40, id & ((1 << 40) - 1))
}

/// The id a reusable spill name stands for, if it is one (checked text
/// from another process: any other name gives `None`).
fn reusable_id(name: &str) -> Option<u64> {
    let rest = name.strip_prefix("spill.")?;
    let (pid, low) = rest.split_once(".r")?;
    if low.len() != 10 || !low.bytes().all(|b| b.is_ascii_hexdigit()) || pid.is_empty() || pid.len() > 8 {
        return None;
    }
    let pid: u64 = pid.parse().ok().filter(|&p| p < 1 << 24)?;
    let low = u64::from_str_radix(low, 16).ok()?;
    let id = (pid << 40) | low;
    (id != EMPTY && id != CLOSED).then_some(id)
}

/// A fresh id for a reused segment made by this process.
fn fresh_id() -> Result<u64> {
    let pid = u64::from(crate::sys::process::pid()) & ((1 << 24) - 1);
    loop {
        let low = crate::sys::random_u64().map_err(|e| Error::os("getrandom", e))? & ((1 << 40) - 1);
        let id = (pid << 40) | low;
        if id != EMPTY && id != CLOSED {
            return Ok(id);
        }
    }
}

/// This process's mappings of a lane's reused spill segments (most
/// recently used last), so a reused segment is not opened and mapped for
/// every message.
#[derive(Debug, Default)]
pub(crate) struct SpillCache {
    maps: Mutex<Vec<(u64, Segment)>>,
}

impl SpillCache {
    /// The mapping of segment `id`: cached, or opened and checked (a spill
    /// segment recorded under `owner`). `None` if it cannot be used.
    fn get(&self, id: u64, owner: Token) -> Option<Segment> {
        if let Some(seg) = self.find(id) {
            return Some(seg);
        }
        let seg = Segment::open(&reusable_name(id)).ok().filter(|s| s.creator_token() == Some(owner))?;
        self.insert(id, seg.clone());
        Some(seg)
    }

    fn find(&self, id: u64) -> Option<Segment> {
        let mut maps = self.maps.lock().unwrap_or_else(|e| e.into_inner());
        let at = maps.iter().position(|(i, _)| *i == id)?;
        let entry = maps.remove(at);
        let seg = entry.1.clone();
        maps.push(entry);
        Some(seg)
    }

    fn insert(&self, id: u64, seg: Segment) {
        let mut maps = self.maps.lock().unwrap_or_else(|e| e.into_inner());
        maps.retain(|(i, _)| *i != id);
        if maps.len() >= CACHED {
            maps.remove(0);
        }
        maps.push((id, seg));
    }

    /// Drops the mapping of `id` (its name was unlinked).
    fn forget(&self, id: u64) {
        self.maps.lock().unwrap_or_else(|e| e.into_inner()).retain(|(i, _)| *i != id);
    }
}

/// [`spill_out`] through a reused segment of the lane whose slots are
/// `spares`: takes a spare large enough (unlinking one too small), else
/// creates one recorded under `owner`. Returns the reference.
pub(crate) fn reuse_out(spares: &Spares, cache: &SpillCache, msg: &[u8], owner: Token) -> Result<Vec<u8>> {
    let mut got = None;
    let mut from = 0;
    while let Some((id, next)) = spares.take(from) {
        from = next;
        match cache.get(id, owner) {
            Some(seg) if seg.len() >= msg.len() => {
                got = Some((id, seg));
                break;
            }
            _ => {
                // Too small, gone or not ours: it is ours to remove.
                cache.forget(id);
                let _ = Segment::unlink(&reusable_name(id));
            }
        }
    }
    let (id, seg) = match got {
        Some(got) => got,
        None => {
            let id = fresh_id()?;
            let size = msg.len().max(MIN_REUSED).checked_next_power_of_two().unwrap_or(msg.len());
            let seg =
                Segment::builder().name(&reusable_name(id)).size(size).keep_name(true).on_behalf_of(owner).create()?;
            cache.insert(id, seg.clone());
            (id, seg)
        }
    };
    let name = reusable_name(id);
    if let Err(e) = seg.write_bytes(0, msg) {
        cache.forget(id);
        let _ = Segment::unlink(&name);
        return Err(e);
    }
    let mut r = Vec::with_capacity(8 + name.len());
    r.extend_from_slice(&(msg.len() as u64).to_le_bytes());
    r.extend_from_slice(name.as_bytes());
    Ok(r)
}

/// [`spill_in`] for a lane with hand-back slots: a reused segment is read
/// through the cached mapping and handed back to a slot (or unlinked if
/// none is empty); any other reference as [`spill_in`].
pub(crate) fn reuse_in(
    spares: &Spares,
    cache: &SpillCache,
    owner: Token,
    reference: &[u8],
    out: &mut Vec<u8>,
) -> Result<()> {
    let corrupt = Error::Corrupt { what: "spill reference" };
    if reference.len() < 9 || reference.len() > 8 + MAX_NAME {
        return Err(corrupt);
    }
    let (len, name) = reference.split_at(8);
    let Some(id) = std::str::from_utf8(name).ok().and_then(reusable_id) else {
        return spill_in(reference, out);
    };
    let len = u64::from_le_bytes(len.try_into().expect("invariant: split at 8"));
    let Some(seg) = cache.get(id, owner) else {
        // Not a segment of this channel: as corrupt as any bad record (and
        // not ours to unlink).
        return Err(Error::Corrupt { what: "spill reference names no spill segment of this channel" });
    };
    let read = usize::try_from(len).ok().filter(|&l| l <= seg.len()).ok_or(corrupt).and_then(|len| {
        out.clear();
        out.resize(len, 0);
        seg.read_bytes(0, out)
    });
    give_back(spares, cache, id);
    read
}

/// Hands segment `id` back to an empty slot, or unlinks it.
fn give_back(spares: &Spares, cache: &SpillCache, id: u64) {
    if spares.put(id) {
        return;
    }
    cache.forget(id);
    let _ = Segment::unlink(&reusable_name(id));
}

/// Closes the slots of a lane whose creator drops it: unlinks every spare
/// segment, and no segment is kept from then on.
pub(crate) fn close_spares(spares: &Spares) {
    for id in spares.close() {
        let _ = Segment::unlink(&reusable_name(id));
    }
}

/// Unlinks the segment a spill reference names without reading it (a
/// reference that will never be delivered).
pub(crate) fn discard(reference: &[u8]) {
    if let Some(name) = reference.get(8..).and_then(|n| std::str::from_utf8(n).ok())
        && name.starts_with("spill.")
    {
        let _ = Segment::unlink(name);
    }
}

#[cfg(all(test, not(shmproc_loom)))]
mod tests {
    use super::*;

    fn spares() -> Spares {
        Spares { slots: std::array::from_fn(|_| crate::loom::atomic::AtomicU64::new(EMPTY)) }
    }

    fn me() -> Token {
        crate::owner::token::current().expect("token")
    }

    fn name_of(reference: &[u8]) -> String {
        String::from_utf8(reference[8..].to_vec()).expect("utf-8")
    }

    fn exists(name: &str) -> bool {
        Segment::open(name).is_ok()
    }

    #[test]
    fn a_handed_back_segment_is_reused_and_closing_unlinks_it() {
        let (s, cache, owner) = (spares(), SpillCache::default(), me());
        let msg = vec![7u8; 100_000];
        let r1 = reuse_out(&s, &cache, &msg, owner).expect("spill");
        let mut out = Vec::new();
        reuse_in(&s, &cache, owner, &r1, &mut out).expect("read");
        assert_eq!(out, msg);
        // Handed back, not unlinked: the next item goes through it.
        assert!(exists(&name_of(&r1)));
        let r2 = reuse_out(&s, &cache, &[9u8; 90_000], owner).expect("spill");
        assert_eq!(name_of(&r1), name_of(&r2), "the spare is reused");
        reuse_in(&s, &cache, owner, &r2, &mut out).expect("read");
        assert_eq!(out, [9u8; 90_000]);
        close_spares(&s);
        assert!(!exists(&name_of(&r2)), "closing unlinks the spare");
        // Closed: what is read now is unlinked, not kept.
        let r3 = reuse_out(&s, &cache, &msg, owner).expect("spill");
        assert_ne!(name_of(&r3), name_of(&r2));
        reuse_in(&s, &cache, owner, &r3, &mut out).expect("read");
        assert!(!exists(&name_of(&r3)), "no spare is kept after closing");
    }

    #[test]
    fn a_spare_too_small_is_replaced_and_unlinked() {
        let (s, cache, owner) = (spares(), SpillCache::default(), me());
        let r1 = reuse_out(&s, &cache, &[1u8; 1000], owner).expect("spill");
        let mut out = Vec::new();
        reuse_in(&s, &cache, owner, &r1, &mut out).expect("read");
        let big = vec![2u8; MIN_REUSED * 2 + 1];
        let r2 = reuse_out(&s, &cache, &big, owner).expect("spill");
        assert_ne!(name_of(&r1), name_of(&r2));
        assert!(!exists(&name_of(&r1)), "the small spare is unlinked");
        reuse_in(&s, &cache, owner, &r2, &mut out).expect("read");
        assert_eq!(out, big);
        close_spares(&s);
        assert!(!exists(&name_of(&r2)));
    }

    #[test]
    fn full_slots_make_the_receiver_unlink() {
        let (s, cache, owner) = (spares(), SpillCache::default(), me());
        let refs: Vec<_> =
            (0..SPARES + 1).map(|i| reuse_out(&s, &cache, &[i as u8; 10], owner).expect("spill")).collect();
        let mut out = Vec::new();
        for (i, r) in refs.iter().enumerate() {
            reuse_in(&s, &cache, owner, r, &mut out).expect("read");
            assert_eq!(out, [i as u8; 10]);
        }
        let kept = refs.iter().filter(|r| exists(&name_of(r))).count();
        assert_eq!(kept, SPARES, "one segment more than the slots is unlinked");
        close_spares(&s);
        assert!(refs.iter().all(|r| !exists(&name_of(r))));
    }

    #[test]
    fn a_reference_to_another_channels_segment_is_refused() {
        let (s, cache, owner) = (spares(), SpillCache::default(), me());
        // A reusable-looking name recorded under another token.
        let id = fresh_id().expect("id");
        let other = Token { nonce: owner.nonce.wrapping_add(1), ..owner };
        let seg = Segment::builder().name(&reusable_name(id)).size(64).keep_name(true).on_behalf_of(other).create();
        let seg = seg.expect("create");
        let mut reference = 8u64.to_le_bytes().to_vec();
        reference.extend_from_slice(reusable_name(id).as_bytes());
        let mut out = Vec::new();
        assert!(matches!(reuse_in(&s, &cache, owner, &reference, &mut out), Err(Error::Corrupt { .. })));
        assert!(exists(&reusable_name(id)), "not ours to unlink");
        // A length beyond the segment is refused too (ours this time).
        drop(seg);
        Segment::unlink(&reusable_name(id)).expect("unlink");
        let r = reuse_out(&s, &cache, &[3u8; 10], owner).expect("spill");
        let mut bad = u64::MAX.to_le_bytes().to_vec();
        bad.extend_from_slice(&r[8..]);
        assert!(matches!(reuse_in(&s, &cache, owner, &bad, &mut out), Err(Error::Corrupt { .. })));
        close_spares(&s);
        assert!(!exists(&name_of(&r)));
    }

    #[test]
    fn reusable_names_parse_back_and_others_do_not() {
        let id = fresh_id().expect("id");
        assert_eq!(reusable_id(&reusable_name(id)), Some(id));
        for bad in ["spill.1.2.0123456789abcdef", "spill..r0000000001", "spill.1.r00000000zz", "spill.1.r000001", "x"] {
            assert_eq!(reusable_id(bad), None, "{bad}");
        }
    }
}
