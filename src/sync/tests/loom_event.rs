//! The event: a waiter always sees a `set`, and the setter's skip of the
//! wake syscall (no waiters) never strands a sleeper.

use loom::sync::Arc;

use crate::sync::raw_event::RawEvent;

#[test]
fn set_wakes_waiters() {
    loom::model(|| {
        let e = Arc::new(RawEvent::new());
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let e = e.clone();
                loom::thread::spawn(move || assert!(e.wait(None)))
            })
            .collect();
        e.set();
        for w in waiters {
            w.join().expect("waiter");
        }
    });
}
