//! The SPSC protocol with loom cells as slots: loom reports any access of a
//! slot by both sides at once, and any value read before it was written.

use loom::sync::Arc;

use super::CellSlots;
use crate::loom::atomic::AtomicU64;
use crate::queue::spsc::{ConsumerCore, Positions, ProducerCore};

struct Ring {
    head: AtomicU64,
    tail: AtomicU64,
    slots: CellSlots,
}

impl Ring {
    /// An empty ring of `n` slots.
    fn new(n: usize) -> Arc<Ring> {
        Arc::new(Ring { head: AtomicU64::new(0), tail: AtomicU64::new(0), slots: CellSlots::new(n) })
    }

    fn pos(&self) -> Positions<'_> {
        Positions { head: &self.head, tail: &self.tail }
    }
}

/// Three values through a ring of two slots: the consumer sees 1, 2, 3 in
/// order, and the slot reuse after wrap-around never races.
#[test]
fn values_arrive_in_order_without_races() {
    loom::model(|| {
        let r = Ring::new(2);
        let producer = {
            let r = r.clone();
            loom::thread::spawn(move || {
                let mut p = ProducerCore::<u64>::attach(&r.pos());
                let mut next = 1;
                while next <= 3 {
                    if p.push(&r.pos(), &r.slots, next).expect("positions ok") {
                        next += 1;
                    } else {
                        loom::thread::yield_now();
                    }
                }
            })
        };
        let mut c = ConsumerCore::<u64>::attach(&r.pos());
        let mut expect = 1;
        while expect <= 3 {
            match c.pop(&r.pos(), &r.slots).expect("positions ok") {
                Some(v) => {
                    assert_eq!(v, expect);
                    expect += 1;
                }
                None => loom::thread::yield_now(),
            }
        }
        producer.join().expect("producer");
    });
}

/// A batch push and a batch pop race safely too.
#[test]
fn batches_do_not_race() {
    loom::model(|| {
        let r = Ring::new(2);
        let producer = {
            let r = r.clone();
            loom::thread::spawn(move || {
                let mut p = ProducerCore::<u64>::attach(&r.pos());
                assert_eq!(p.push_slice(&r.pos(), &r.slots, &[7, 8]).expect("ok"), 2);
            })
        };
        let mut c = ConsumerCore::<u64>::attach(&r.pos());
        let mut out = [0u64; 2];
        let mut got = 0;
        while got < 2 {
            let n = c.pop_into(&r.pos(), &r.slots, &mut out[got..]).expect("ok");
            if n == 0 {
                loom::thread::yield_now();
            }
            got += n;
        }
        assert_eq!(out, [7, 8]);
        producer.join().expect("producer");
    });
}
