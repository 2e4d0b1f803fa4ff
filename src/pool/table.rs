//! The pool's worker table in shared memory: one slot per worker (the pid
//! and the job it holds) and the cancellation table.
//!
//! | word | written by | meaning |
//! |---|---|---|
//! | slot `JOB` | the worker, inside the task queue's get critical section (before the record leaves the queue), and back to 0 after its result is put | the job the worker holds (0: none) |
//! | slot `PID` | the worker, at start | its pid (for messages) |
//! | slot `DONE` | the worker | jobs finished |
//! | slot `QUICK` | the worker (0 at its start; only one that may take batches sets it) | 1 while its last tasks finished within the batch threshold each: a `map` then packs several items into one task |
//! | slot `HELD[k]` | the worker: `HELD[1..]` inside the get critical section of a batch (`get_raw_more`), `HELD[0]` (the batch's first job, also in `JOB`) right after it; all back to 0 after the batch's results are put | the jobs of a batch (several records taken at once) not yet answered |
//! | `cancel[id % CANCEL_ENTRIES]` | the parent (`cancel`) | `id` if job `id` was cancelled before it started |
//!
//! A worker killed at any point leaves `JOB` and `HELD` naming the jobs it
//! may have started or holds unanswered, or 0 if it took none (the queue's robust lock gives a record
//! taken by a dying consumer back to the ring). All words are read with
//! SeqCst: `cancel` is a Dekker pair (the parent stores the cancel entry
//! then loads the slots; a worker stores its slot then loads the entry),
//! so either the parent sees the job running or the worker sees it
//! cancelled.
//!
//! The cancellation table is a hash table without collision handling: a
//! job whose entry was overwritten by another cancelled job simply runs
//! (its result is dropped); a job is never skipped unless it was
//! cancelled, because the entry holds the whole id.

use std::sync::atomic::AtomicU64;

use crate::error::{Error, Result};
use crate::shm::header::kind;
use crate::shm::layout::{CachePadded, layout_hash};
use crate::shm::segment::Segment;

/// A worker's slot.
pub(crate) type Slot = CachePadded<[AtomicU64; 16]>;
/// Slot word: the job held (0: none).
pub(crate) const JOB: usize = 0;
/// Slot word: the worker's pid.
pub(crate) const PID: usize = 1;
/// Slot word: jobs finished by the worker in this slot.
pub(crate) const DONE: usize = 2;
/// Slot word: 1 while the worker's last tasks were quick (see `worker`).
pub(crate) const QUICK: usize = 3;
/// Slot words: the jobs of the batch the worker holds (0: none).
pub(crate) const HELD: std::ops::Range<usize> = 4..16;

/// Entries of the cancellation table.
pub(crate) const CANCEL_ENTRIES: usize = 4096;

const SLOT_BYTES: usize = core::mem::size_of::<Slot>();
const LAYOUT: u64 = layout_hash("shmproc::pool::Table", SLOT_BYTES, CANCEL_ENTRIES);

/// The table (a cheap handle; serializes as its segment).
#[derive(Debug, Clone)]
pub(crate) struct Table {
    seg: Segment,
    workers: usize,
}

impl Table {
    /// A table for `workers` workers.
    pub(crate) fn new(workers: usize) -> Result<Table> {
        let size = workers
            .checked_mul(SLOT_BYTES)
            .and_then(|s| s.checked_add(CANCEL_ENTRIES * 8))
            .ok_or(Error::InvalidArgument { what: "too many pool workers" })?;
        let seg = Segment::builder().size(size).typed(kind::POOL, LAYOUT).anonymous()?;
        Table::wrap(seg)
    }

    fn wrap(seg: Segment) -> Result<Table> {
        let workers =
            seg.len().checked_sub(CANCEL_ENTRIES * 8).ok_or(Error::Corrupt { what: "pool table size" })? / SLOT_BYTES;
        let t = Table { seg, workers };
        t.seg.slice_in::<Slot>(0, workers)?;
        t.seg.slice_in::<AtomicU64>(workers * SLOT_BYTES, CANCEL_ENTRIES)?;
        Ok(t)
    }

    /// How many slots (workers) the table has.
    pub(crate) fn workers(&self) -> usize {
        self.workers
    }

    /// The slots, one per worker.
    pub(crate) fn slots(&self) -> &[Slot] {
        self.seg.slice_in::<Slot>(0, self.workers).expect("invariant: checked in Table::wrap")
    }

    /// Slot `i`.
    pub(crate) fn slot(&self, i: usize) -> Option<&Slot> {
        self.slots().get(i)
    }

    /// The cancellation table.
    pub(crate) fn cancels(&self) -> &[AtomicU64] {
        self.seg
            .slice_in::<AtomicU64>(self.workers * SLOT_BYTES, CANCEL_ENTRIES)
            .expect("invariant: checked in Table::wrap")
    }

    /// The cancellation entry of job `id`.
    pub(crate) fn cancel_entry(&self, id: u64) -> &AtomicU64 {
        &self.cancels()[(id % CANCEL_ENTRIES as u64) as usize]
    }
}

impl serde::Serialize for Table {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.seg.serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Table {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let seg = Segment::deserialize(d)?;
        if seg.layout_identity() != (kind::POOL, LAYOUT) {
            return Err(D::Error::custom(Error::LayoutMismatch { expected: LAYOUT, found: seg.layout_identity().1 }));
        }
        Table::wrap(seg).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn slots_and_cancels_are_separate() {
        let t = Table::new(3).expect("table");
        assert_eq!(t.slots().len(), 3);
        t.slot(2).expect("slot")[JOB].store(9, Ordering::SeqCst);
        t.cancel_entry(9).store(9, Ordering::SeqCst);
        assert_eq!(t.cancel_entry(9 + CANCEL_ENTRIES as u64).load(Ordering::SeqCst), 9);
        assert_eq!(t.slot(2).expect("slot")[JOB].load(Ordering::SeqCst), 9);
        assert!(t.slot(3).is_none());
    }
}
