//! The channel engine's waiting with many waiters on one side: notifiers
//! wake one waiter per change and none while a caller of that side is
//! awake or a wake-up is on its way (`RawEventCount::notify_one`), and the
//! last awake call of a side passes a wake-up on when it ends with more
//! there (`Call`). The models
//! block three producers on a full ring and three consumers on an empty
//! one, so that woken waiters find their room or item taken by another
//! (the interleavings where a wake-up could be stranded). Loom's emulated
//! futex turns a stranded waiter into a deadlock report.
//!
//! The ring is a count of records against a capacity, changed by CAS (the
//! byte protocol's positions under its locks behave alike for this
//! question: an operation either takes a unit or finds none). The steps
//! around it are the engine's: a `Call` counted awake, `wait_on` with the
//! same arguments as a send or a receive, a `notify_one` of the other side
//! after each success, and the pass-on of the call's end.

use loom::sync::Arc;

use crate::channel::lane::{Call, Other, Wait, wait_on};
use crate::loom::atomic::{AtomicU32, AtomicU64, Ordering};
use crate::owner::probe::ProbeRate;
use crate::queue::eventcount::{Awake, RawEventCount};

struct Ring {
    len: AtomicU32,
    capacity: u32,
    readable: RawEventCount,
    writable: RawEventCount,
    senders: Awake,
    receivers: Awake,
}

impl Ring {
    fn new(capacity: u32) -> Arc<Ring> {
        Arc::new(Ring {
            len: AtomicU32::new(0),
            capacity,
            readable: RawEventCount::new(),
            writable: RawEventCount::new(),
            senders: Awake::new(),
            receivers: Awake::new(),
        })
    }

    fn has_room(&self) -> bool {
        self.len.load(Ordering::Acquire) < self.capacity
    }

    fn has_item(&self) -> bool {
        self.len.load(Ordering::Acquire) > 0
    }

    /// Adds `d` (+1 or -1) to the count if `ok` holds for it.
    fn try_change(&self, ok: impl Fn(u32) -> bool, d: i32) -> bool {
        self.len.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| ok(n).then(|| n.wrapping_add_signed(d))).is_ok()
    }

    /// One blocking operation the way `Lane::send_record` and
    /// `Lane::recv_record` run it: a call of the side that waits on `mine`
    /// (awake count `mine_awake`); `theirs` is notified after the operation.
    fn op(
        &self,
        (mine, mine_awake): (&RawEventCount, &Awake),
        (theirs, theirs_awake): (&RawEventCount, &Awake),
        ready: impl Fn() -> bool,
        apply: impl Fn() -> bool,
    ) {
        let probe = ProbeRate::new();
        // No deaths in these models: no liveness wake-ups look at it.
        let position = AtomicU64::new(0);
        let call = Call::enter(mine, mine_awake, &position, &ready);
        loop {
            if apply() {
                theirs.notify_one(theirs_awake);
                break;
            }
            let other = Other { gone: || false, rate: &probe, ask_first: false };
            wait_on(&call, &ready, || false, Wait::Forever, &other).expect("no deadline");
        }
    }

    fn put(&self) {
        let cap = self.capacity;
        let (w, r) = ((&self.writable, &self.senders), (&self.readable, &self.receivers));
        self.op(w, r, || self.has_room(), || self.try_change(|n| n < cap, 1));
    }

    fn get(&self) {
        let (w, r) = ((&self.writable, &self.senders), (&self.readable, &self.receivers));
        self.op(r, w, || self.has_item(), || self.try_change(|n| n > 0, -1));
    }
}

/// A bound on preemptions keeps four threads with futex waits tractable
/// (a pass-on left out is found with two).
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(2);
    b.check(f);
}

/// Starts `n` threads that each run `f` on the ring, one at a time, each
/// asleep on `ec` before the next starts: the models check what follows,
/// not how the waiters got to sleep.
fn asleep(
    ring: &Arc<Ring>,
    n: usize,
    ec: fn(&Ring) -> &RawEventCount,
    f: fn(&Ring),
) -> Vec<loom::thread::JoinHandle<()>> {
    (0..n)
        .map(|k| {
            let r = ring.clone();
            let t = loom::thread::spawn(move || f(&r));
            while ec(ring).asleep() < k + 1 {
                loom::thread::yield_now();
            }
            t
        })
        .collect()
}

#[test]
fn three_producers_on_a_full_ring_are_all_served() {
    model(|| {
        // Room for two: two gets while one woken producer is on its way
        // leave room that only a passed-on wake-up gives to another.
        let ring = Ring::new(2);
        ring.put();
        ring.put(); // full
        let producers = asleep(&ring, 3, |r| &r.writable, Ring::put);
        for _ in 0..5 {
            ring.get();
        }
        for p in producers {
            p.join().expect("producer");
        }
        assert_eq!(ring.len.load(Ordering::Relaxed), 0);
    });
}

#[test]
fn three_consumers_on_an_empty_ring_are_all_served() {
    model(|| {
        // Room for all three items: puts while one woken consumer is on its
        // way leave items that only a passed-on wake-up gives to another.
        let ring = Ring::new(3);
        let consumers = asleep(&ring, 3, |r| &r.readable, Ring::get);
        for _ in 0..3 {
            ring.put();
        }
        for c in consumers {
            c.join().expect("consumer");
        }
        assert_eq!(ring.len.load(Ordering::Relaxed), 0);
    });
}
