//! A typed channel's counting of its ends (`typed.rs`, `words`): handles
//! dropped at once in several threads take the header's count to zero
//! exactly once (one wake-up of the other side, never none), and a dead
//! process's entry reclaimed while a decoder takes over that process's
//! in-flight handle never takes the count below the handles still alive
//! (nor leaves it above them).

use loom::sync::Arc;

use crate::channel::typed::words;
use crate::loom::atomic::{AtomicU64, Ordering};

#[test]
fn loom_ends_handles_dropped_at_once_reach_zero_exactly_once() {
    loom::model(|| {
        let w = Arc::new((AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)));
        // Two handles of process 7 and one of process 9, each dropped in a
        // thread of its own.
        assert!(words::count_in(&w.0, &w.1, 7));
        assert!(words::count_in(&w.0, &w.1, 7));
        assert!(words::count_in(&w.0, &w.2, 9));
        let drops: Vec<_> = [(1, 7), (1, 7), (2, 9)]
            .into_iter()
            .map(|(entry, stamp)| {
                let w = Arc::clone(&w);
                loom::thread::spawn(move || {
                    let e = if entry == 1 { &w.1 } else { &w.2 };
                    words::give_back(&w.0, e, stamp)
                })
            })
            .collect();
        let zeros = drops.into_iter().map(|h| h.join().expect("thread")).filter(|&z| z).count();
        assert_eq!(zeros, 1, "the last drop, and only it, sees zero");
        assert_eq!(w.0.load(Ordering::SeqCst), 0);
        assert_eq!(words::held(w.1.load(Ordering::SeqCst)), 0);
        assert_eq!(words::held(w.2.load(Ordering::SeqCst)), 0);
    });
}

#[test]
fn loom_ends_a_reclaim_racing_a_hand_off_keeps_the_live_count() {
    loom::model(|| {
        // Dead process D (stamp 3) held one handle and encoded one more (in
        // flight); live process L (stamp 5) holds one. A decoder Q (stamp
        // 9) takes D's in-flight handle over (out of D's entry, into its
        // own), while a prober that confirmed D dead reclaims D's entry
        // from the word it read before asking. A later probe reclaims
        // whatever is left.
        let w = Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]);
        let [total, d, l, _] = &*w;
        assert!(words::count_in(total, d, 3));
        assert!(words::count_in(total, d, 3));
        assert!(words::count_in(total, l, 5));
        let prober = {
            let w = Arc::clone(&w);
            loom::thread::spawn(move || {
                let seen = w[1].load(Ordering::SeqCst);
                words::reclaim_seen(&w[0], &w[1], seen)
            })
        };
        let decoder = {
            let w = Arc::clone(&w);
            loom::thread::spawn(move || {
                if words::leave(&w[1], 3) {
                    assert!(words::enter(&w[3], 9));
                } else {
                    assert!(words::count_in(&w[0], &w[3], 9), "counted afresh");
                }
            })
        };
        let probed = prober.join().expect("prober");
        decoder.join().expect("decoder");
        assert_ne!(probed, Some(true), "L and Q are alive: the count never reaches zero");
        let seen = w[1].load(Ordering::SeqCst);
        assert_ne!(words::reclaim_seen(&w[0], &w[1], seen), Some(true), "nor on the later probe");
        assert_eq!(w[0].load(Ordering::SeqCst), 2, "exactly L's and Q's handles");
        assert_eq!(words::held(w[1].load(Ordering::SeqCst)), 0);
        assert_eq!(words::held(w[3].load(Ordering::SeqCst)), 1);
    });
}
