//! loom model of the create/open handshake: whatever the interleaving, an
//! opener that returns from `wait_ready` sees everything the creator wrote
//! before `publish`, and never sleeps through the wake-up.

use super::*;
use loom::sync::Arc;

#[test]
fn opener_sees_initialized_payload() {
    loom::model(|| {
        let state = Arc::new(AtomicU32::new(INITIALIZING));
        let payload = Arc::new(AtomicU64::new(0));
        let (s2, p2) = (state.clone(), payload.clone());
        let creator = loom::thread::spawn(move || {
            p2.store(42, Ordering::Relaxed);
            publish(&s2);
        });
        wait_ready(&state, None).expect("ready");
        assert_eq!(payload.load(Ordering::Relaxed), 42);
        creator.join().expect("creator");
    });
}

#[test]
fn two_openers_both_wake() {
    loom::model(|| {
        let state = Arc::new(AtomicU32::new(INITIALIZING));
        let s1 = state.clone();
        let s2 = state.clone();
        let a = loom::thread::spawn(move || wait_ready(&s1, None).expect("ready"));
        let b = loom::thread::spawn(move || wait_ready(&s2, None).expect("ready"));
        publish(&state);
        a.join().expect("a");
        b.join().expect("b");
    });
}
