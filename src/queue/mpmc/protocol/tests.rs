//! Unit tests of the MPMC core over heap slots.

use super::*;
use crate::queue::tests::CellSlots;

/// A made-up owner id (tag 1, slot 1). Its liveness is never asked:
/// these tests never let a slot it holds block a handle twice.
const ME: u32 = (1 << 10) | 1;

struct Ring {
    head: AtomicU64,
    tail: AtomicU64,
    words: Vec<Word>,
    slots: CellSlots,
}

impl Ring {
    fn new(cap: usize) -> Ring {
        Ring {
            head: AtomicU64::new(0),
            tail: AtomicU64::new(0),
            words: (0..cap).map(|_| Word::new(0)).collect(),
            slots: CellSlots::new(cap),
        }
    }

    fn core(&self) -> Core<'_, u64, CellSlots> {
        Core::new(&self.head, &self.tail, &self.words, &self.slots)
    }
}

#[test]
fn words_encode_and_decode() {
    for lap in [0, 1, LAP_MASK - 1, LAP_MASK] {
        for s in [State::Empty, State::Writing(ME), State::Full, State::Tomb, State::Reading(u32::MAX >> 1)] {
            assert_eq!(decode(encode(lap, s)), Some((lap, s)), "{lap} {s:?}");
        }
    }
    assert_eq!(encode(0, State::Empty), 0, "zeroed memory is an empty ring");
    // Bits no transition writes.
    assert_eq!(decode(ST_EMPTY << STATE_SHIFT | 5), None);
    assert_eq!(decode(ST_FULL << STATE_SHIFT | 2), None);
    assert_eq!(decode(ST_WRITING << STATE_SHIFT), None);
    assert_eq!(decode(ST_READING << STATE_SHIFT), None);
    assert_eq!(lap_of(0, LAP_MASK), Lap::Next, "laps wrap");
    assert_eq!(lap_of(LAP_MASK, 0), Lap::Prev);
    assert_eq!(lap_of(5, 3), Lap::Other);
}

#[test]
fn fifo_across_wrap_full_and_empty() {
    let r = Ring::new(4);
    let c = r.core();
    let mut st = Stuck::new();
    for round in 0..10u64 {
        for i in 0..4 {
            assert!(c.push(ME, &mut st, round * 10 + i).expect("ok"));
        }
        assert!(!c.push(ME, &mut st, 99).expect("ok"), "full");
        assert_eq!(c.len(), 4);
        for i in 0..4 {
            assert_eq!(c.pop(ME, &mut st).expect("ok"), Some(round * 10 + i));
        }
        assert_eq!(c.pop(ME, &mut st).expect("ok"), None, "empty");
        assert_eq!(c.len(), 0);
    }
    assert_eq!(r.tail.load(Ordering::Relaxed), 40);
    assert_eq!(r.words[0].load(), encode(10, State::Empty), "slot 0 is free for lap 10");
}

#[test]
fn batches_wrap_and_stop_at_full() {
    let r = Ring::new(8);
    let c = r.core();
    let mut st = Stuck::new();
    assert_eq!(c.push_slice(ME, &mut st, &[1, 2, 3, 4, 5, 6]).expect("ok"), 6);
    let mut out = [0u64; 4];
    assert_eq!(c.pop_into(ME, &mut st, &mut out).expect("ok"), 4);
    assert_eq!(out, [1, 2, 3, 4]);
    // 6 free slots, across the end of the buffer.
    assert_eq!(c.push_slice(ME, &mut st, &[7, 8, 9, 10, 11, 12, 13]).expect("ok"), 6);
    let mut out = [0u64; 16];
    assert_eq!(c.pop_into(ME, &mut st, &mut out).expect("ok"), 8);
    assert_eq!(out[..8], [5, 6, 7, 8, 9, 10, 11, 12]);
    assert_eq!(c.pop_into(ME, &mut st, &mut out).expect("ok"), 0);
    // A batch larger than one claim run.
    let r = Ring::new(256);
    let c = r.core();
    let vs: Vec<u64> = (0..200).collect();
    assert_eq!(c.push_slice(ME, &mut st, &vs).expect("ok"), 200);
    let mut out = vec![0u64; 300];
    assert_eq!(c.pop_into(ME, &mut st, &mut out).expect("ok"), 200);
    assert_eq!(out[..200], vs[..]);
}

#[test]
fn a_lagging_tail_is_helped_along() {
    let r = Ring::new(4);
    let c = r.core();
    let mut st = Stuck::new();
    assert!(c.push(ME, &mut st, 1).expect("ok"));
    assert!(c.push(ME, &mut st, 2).expect("ok"));
    // As if both claimers died before moving `tail` and `head`.
    r.tail.store(0, Ordering::Relaxed);
    assert!(c.push(ME, &mut st, 3).expect("ok"));
    assert_eq!(r.tail.load(Ordering::Relaxed), 3);
    assert_eq!(c.pop(ME, &mut st).expect("ok"), Some(1));
    assert_eq!(c.pop(ME, &mut st).expect("ok"), Some(2));
    r.head.store(0, Ordering::Relaxed);
    assert_eq!(c.pop(ME, &mut st).expect("ok"), Some(3));
    assert_eq!(r.head.load(Ordering::Relaxed), 3);
}

#[test]
fn tombstones_are_skipped_by_consumers_and_recycled_by_producers() {
    let r = Ring::new(2);
    let c = r.core();
    let mut st = Stuck::new();
    // A loan dropped uncommitted, then a value.
    let (pos, n) = c.claim_push(ME, 1, &mut st).expect("ok").expect("room");
    assert_eq!((pos, n), (0, 1));
    assert!(c.push(ME, &mut st, 7).expect("ok"));
    assert_eq!(c.pop(ME, &mut st).expect("ok"), None, "the writer is alive and busy");
    c.abandon(pos);
    assert_eq!(c.pop(ME, &mut st).expect("ok"), Some(7), "the tombstone is skipped");
    assert_eq!(r.words[0].load(), encode(1, State::Empty));
    // A tombstone that no consumer reached (its skipper died after
    // moving `head`): the producer a lap later frees it.
    let (pos, _) = c.claim_push(ME, 1, &mut st).expect("ok").expect("room");
    c.abandon(pos);
    r.head.store(3, Ordering::Relaxed);
    assert!(c.push(ME, &mut st, 8).expect("ok"));
    assert!(c.push(ME, &mut st, 9).expect("ok"), "slot of position 2 recycled for position 4");
    assert_eq!(c.pop(ME, &mut st).expect("ok"), Some(8));
    assert_eq!(c.pop(ME, &mut st).expect("ok"), Some(9));
}

#[test]
fn a_live_readers_slot_is_not_reclaimed() {
    let r = Ring::new(1);
    let c = r.core();
    let mut st = Stuck::new();
    assert!(c.push(ME, &mut st, 1).expect("ok"));
    let (me, _) = owner::me().expect("token");
    let (pos, _) = c.claim_pop(me, 1, &mut st).expect("ok").expect("ready");
    // Seen many times, probed (we are alive): always full.
    let start = std::time::Instant::now();
    while start.elapsed() < owner::LIVENESS_MIN * 4 {
        assert!(!c.push(ME, &mut st, 2).expect("ok"), "the reader is alive");
    }
    c.release(pos);
    assert!(c.push(ME, &mut st, 2).expect("ok"));
}

#[test]
fn garbage_words_are_corrupt() {
    let r = Ring::new(4);
    let c = r.core();
    let mut st = Stuck::new();
    // Bits no transition writes (an EMPTY word with an owner).
    r.words[0].store(5);
    assert!(matches!(c.push(ME, &mut st, 1), Err(Error::Corrupt { .. })));
    assert!(matches!(c.pop(ME, &mut st), Err(Error::Corrupt { .. })));
    // A lap the position cannot have.
    r.words[0].store(encode(7, State::Full));
    assert!(matches!(c.push(ME, &mut st, 1), Err(Error::Corrupt { .. })));
    assert!(matches!(c.pop(ME, &mut st), Err(Error::Corrupt { .. })));
    // The previous lap's EMPTY at the producer's position.
    r.words[0].store(encode(LAP_MASK, State::Empty));
    assert!(matches!(c.push(ME, &mut st, 1), Err(Error::Corrupt { .. })));
    // All ones decode (READING on the previous lap by an unknown owner):
    // the ring is full until the OS answers for that owner.
    r.words[0].store(u64::MAX);
    assert!(!c.push(ME, &mut st, 1).expect("a plausible word"));
    r.words[0].store(0);
    assert!(c.push(ME, &mut st, 1).expect("repaired"));
    assert_eq!(c.pop(ME, &mut st).expect("ok"), Some(1));
}

#[test]
fn garbage_positions_are_corrupt_not_hangs() {
    for (head, tail) in [(0, u64::MAX), (1 << 40, 3), (0, 1 << 40), (5, 0), (0, 5), (u64::MAX - 1, 4)] {
        let r = Ring::new(4);
        let c = r.core();
        let mut st = Stuck::new();
        r.head.store(head, Ordering::Relaxed);
        r.tail.store(tail, Ordering::Relaxed);
        assert!(matches!(c.check_positions(), Err(Error::Corrupt { .. })), "{head} {tail}");
        let mut out = [0u64; 8];
        for _ in 0..3 {
            assert!(matches!(c.push(ME, &mut st, 1), Ok(_) | Err(Error::Corrupt { .. })));
            assert!(matches!(c.push_slice(ME, &mut st, &[1; 8]), Ok(_) | Err(Error::Corrupt { .. })));
            assert!(matches!(c.pop(ME, &mut st), Ok(_) | Err(Error::Corrupt { .. })));
            assert!(matches!(c.pop_into(ME, &mut st, &mut out), Ok(_) | Err(Error::Corrupt { .. })));
        }
        assert!(c.len() <= 4);
    }
    // Far ahead on both sides, consistent: still a working ring.
    let r = Ring::new(4);
    let c = r.core();
    let mut st = Stuck::new();
    r.head.store(u64::MAX - 1, Ordering::Relaxed);
    r.tail.store(u64::MAX - 1, Ordering::Relaxed);
    assert!(matches!(c.push(ME, &mut st, 1), Ok(true) | Err(Error::Corrupt { .. })));
}
