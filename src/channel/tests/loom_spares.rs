//! The hand-back slots of reused spill segments (`spill.rs`, `Spares`): a
//! sender taking spares, a receiver handing one back and the lane's
//! creator closing the slots, all at once, leave every segment with
//! exactly one holder: taken by the sender, handed back and then taken or
//! closed, kept by the receiver when no slot was free (it unlinks it), or
//! returned by the close. None is lost and none has two holders.

use loom::sync::Arc;

use crate::channel::spill::Spares;
use crate::loom::atomic::AtomicU64;

/// Slots with spare `1` in the first one and the others empty.
fn slots() -> Spares {
    let s = Spares { slots: std::array::from_fn(|_| AtomicU64::new(0)) };
    assert!(s.put(1));
    s
}

#[test]
fn loom_spares_every_segment_has_one_holder() {
    loom::model(|| {
        let s = Arc::new(slots());
        // The sender takes what it finds (at most two tries, as a send
        // that finds a spare too small takes the next one).
        let sender = {
            let s = Arc::clone(&s);
            loom::thread::spawn(move || {
                let mut got = Vec::new();
                let mut from = 0;
                while let Some((id, next)) = s.take(from) {
                    got.push(id);
                    from = next;
                    if got.len() == 2 {
                        break;
                    }
                }
                got
            })
        };
        // The receiver hands segment 2 back (or keeps it: no free slot).
        let receiver = {
            let s = Arc::clone(&s);
            loom::thread::spawn(move || if s.put(2) { Vec::new() } else { vec![2] })
        };
        // The creator closes the slots.
        let closed = s.close();
        let mut holders = sender.join().expect("sender");
        holders.extend(receiver.join().expect("receiver"));
        holders.extend(closed);
        // What the slots still hold after the close (a hand-back that lost
        // the race to the close finds no empty slot, so nothing).
        holders.extend(s.close());
        holders.sort_unstable();
        assert_eq!(holders, [1, 2], "each segment exactly once");
    });
}
