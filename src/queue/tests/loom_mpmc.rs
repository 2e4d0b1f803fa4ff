//! The MPMC protocol with loom cells as values (RELIABILITY case 49): no
//! value lost or delivered twice, per-producer order, no slot written while
//! it is read; a producer killed holding a claim is tombstoned by the
//! consumer (case 14), and a consumer killed holding a claim is reclaimed by
//! the producer (case 16). Positions are checked on the slow paths, so a
//! false `Corrupt` in any interleaving fails the model too.
//!
//! Callers wait for progress instead of spinning: a thread that finds the
//! ring full or empty sleeps until another operation completes (or an
//! owner dies). Under loom a spinning thread may be rescheduled forever
//! while the thread it waits for never runs, which is no property of the
//! ring; the real blocking queue waits on a futex the same way.

use loom::sync::{Arc, Condvar, Mutex};

use super::CellSlots;
use crate::loom::atomic::{AtomicU64, Ordering};
use crate::loom::owner;
use crate::queue::mpmc::{Core, Stuck, Word};

struct Ring {
    head: AtomicU64,
    tail: AtomicU64,
    words: Vec<Word>,
    slots: CellSlots,
    /// Completed operations and deaths, to wait for: an eventcount, as the
    /// blocking queue's futex word. An attempt that starts after seeing an
    /// operation's bump sees that operation (Acquire/Release); attempts
    /// that race an operation rely on the ring's own orderings alone.
    progress: AtomicU64,
    lock: Mutex<()>,
    moved: Condvar,
}

impl Ring {
    /// An empty ring of `n` slots.
    fn new(n: usize) -> Arc<Ring> {
        Arc::new(Ring {
            head: AtomicU64::new(0),
            tail: AtomicU64::new(0),
            words: (0..n).map(|_| Word::new(0)).collect(),
            slots: CellSlots::new(n),
            progress: AtomicU64::new(0),
            lock: Mutex::new(()),
            moved: Condvar::new(),
        })
    }

    fn core(&self) -> Core<'_, u64, CellSlots> {
        Core::new(&self.head, &self.tail, &self.words, &self.slots)
    }

    /// Records that something happened that may unblock a waiter.
    fn moved(&self) {
        // Release: pairs with the Acquire loads in `until` and `wait`.
        self.progress.fetch_add(1, Ordering::Release);
        drop(self.lock.lock().expect("loom mutex"));
        self.moved.notify_all();
    }

    /// Sleeps until something happened after `seen`.
    fn wait(&self, seen: u64) {
        let mut g = self.lock.lock().expect("loom mutex");
        while self.progress.load(Ordering::Acquire) == seen {
            g = self.moved.wait(g).expect("loom mutex");
        }
    }

    /// Runs `op` until it returns `Some`, waiting for progress between
    /// tries; then records progress if `others_wait` (skipped where no other
    /// thread ever sleeps: fewer operations for loom to interleave).
    fn until<R>(&self, others_wait: bool, mut op: impl FnMut() -> Option<R>) -> R {
        loop {
            let seen = self.progress.load(Ordering::Acquire);
            if let Some(r) = op() {
                if others_wait {
                    self.moved();
                }
                return r;
            }
            self.wait(seen);
        }
    }

    fn push(&self, stuck: &mut Stuck, v: u64) {
        let me = me();
        self.until(true, || self.core().push(me, stuck, v).expect("no false Corrupt").then_some(()));
    }

    fn pop(&self, stuck: &mut Stuck) -> u64 {
        let me = me();
        self.until(true, || self.core().pop(me, stuck).expect("no false Corrupt"))
    }

    /// Dies: the model's SIGKILL, which waiters notice.
    fn die(&self) {
        owner::kill();
        self.moved();
    }
}

fn me() -> u32 {
    owner::me().expect("loom owner id").0
}

/// Two producers (one pushes 10 then 11, the other 20) and one consumer:
/// the consumer gets each value exactly once, and 10 before 11. With four
/// slots the producers never find the ring full, so only the consumer ever
/// waits, and it may simply yield (the cheapest model of the three-thread
/// ones).
#[test]
fn two_producers_one_consumer_lose_and_repeat_nothing() {
    loom::model(|| {
        let r = Ring::new(4);
        let producers: Vec<_> = [&[10u64, 11][..], &[20]]
            .into_iter()
            .map(|vals| {
                let r = r.clone();
                loom::thread::spawn(move || {
                    let (me, mut stuck) = (me(), Stuck::new());
                    for &v in vals {
                        assert!(r.core().push(me, &mut stuck, v).expect("no false Corrupt"), "never full");
                    }
                })
            })
            .collect();
        let (me, mut stuck) = (me(), Stuck::new());
        let mut got = Vec::new();
        while got.len() < 3 {
            match r.core().pop(me, &mut stuck).expect("no false Corrupt") {
                Some(v) => got.push(v),
                None => loom::thread::yield_now(),
            }
        }
        for p in producers {
            p.join().expect("producer");
        }
        let mut sorted = got.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [10, 11, 20], "each value exactly once: {got:?}");
        let at = |v| got.iter().position(|&g| g == v);
        assert!(at(10) < at(11), "one producer's values in order: {got:?}");
        assert_eq!(r.core().pop(me, &mut stuck).expect("ok"), None, "nothing extra");
        assert_eq!(r.core().len(), 0);
    });
}

/// Two producers through a single slot: the second value goes in on the
/// next lap, after the first was consumed, and never overwrites it. The
/// producers sleep while the ring is full; the consumer, the only thread
/// that spins, wakes them after each pop.
#[test]
fn two_producers_wrap_around_one_slot() {
    loom::model(|| {
        let r = Ring::new(1);
        let producers: Vec<_> = [10, 20]
            .into_iter()
            .map(|v| {
                let r = r.clone();
                loom::thread::spawn(move || {
                    let (me, mut stuck) = (me(), Stuck::new());
                    r.until(false, || r.core().push(me, &mut stuck, v).expect("no false Corrupt").then_some(()));
                })
            })
            .collect();
        let (me, mut stuck) = (me(), Stuck::new());
        let mut pop = || loop {
            if let Some(v) = r.core().pop(me, &mut stuck).expect("no false Corrupt") {
                r.moved();
                return v;
            }
            loom::thread::yield_now();
        };
        let mut got = [pop(), pop()];
        for p in producers {
            p.join().expect("producer");
        }
        got.sort_unstable();
        assert_eq!(got, [10, 20], "each value exactly once");
        assert_eq!(r.core().pop(me, &mut stuck).expect("ok"), None, "nothing extra");
    });
}

/// A producer killed after claiming a slot (before writing it): the
/// consumer makes the slot a tombstone once the death is confirmed, skips
/// it, and still gets the other producer's value; the ring ends empty.
#[test]
fn a_producer_killed_mid_claim_is_tombstoned() {
    loom::model(|| {
        owner::simulate_deaths();
        let r = Ring::new(2);
        let victim = {
            let r = r.clone();
            loom::thread::spawn(move || {
                let claimed = r.core().claim_push(me(), 1, &mut Stuck::new()).expect("ok");
                assert!(claimed.is_some(), "room for the claim");
                r.die(); // holding the claim
            })
        };
        let survivor = {
            let r = r.clone();
            loom::thread::spawn(move || r.push(&mut Stuck::new(), 7))
        };
        let mut stuck = Stuck::new();
        assert_eq!(r.pop(&mut stuck), 7);
        victim.join().expect("victim");
        survivor.join().expect("survivor");
        // The dead claim, if it came after 7, is skipped now.
        assert_eq!(r.core().pop(me(), &mut stuck).expect("ok"), None);
        assert_eq!(r.core().len(), 0, "every position was consumed or skipped");
    });
}

/// A consumer killed after claiming the only value (before copying it
/// out): the producer reclaims the slot once the death is confirmed, and
/// the next value gets through; the claimed value is lost, never repeated.
#[test]
fn a_consumer_killed_mid_claim_is_reclaimed() {
    loom::model(|| {
        owner::simulate_deaths();
        let r = Ring::new(1);
        r.push(&mut Stuck::new(), 1);
        let victim = {
            let r = r.clone();
            loom::thread::spawn(move || {
                let me = me();
                let mut stuck = Stuck::new();
                r.until(true, || r.core().claim_pop(me, 1, &mut stuck).expect("ok"));
                r.die(); // holding the claim
            })
        };
        let producer = {
            let r = r.clone();
            loom::thread::spawn(move || r.push(&mut Stuck::new(), 2))
        };
        producer.join().expect("producer: never stuck behind a dead consumer");
        victim.join().expect("victim");
        let mut stuck = Stuck::new();
        assert_eq!(r.core().pop(me(), &mut stuck).expect("ok"), Some(2), "1 was lost with its consumer");
        assert_eq!(r.core().pop(me(), &mut stuck).expect("ok"), None);
    });
}
