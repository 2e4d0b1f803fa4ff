//! The semaphore: never more holders than permits, and a release always
//! reaches a sleeper.

use loom::sync::Arc;
use loom::sync::atomic::{AtomicU32, Ordering};

use crate::sync::raw_semaphore::RawSemaphore;

#[test]
fn permits_bound_concurrency() {
    loom::model(|| {
        let s = Arc::new(RawSemaphore::new(1, 0));
        let inside = Arc::new(AtomicU32::new(0));
        let ts: Vec<_> = (0..2)
            .map(|_| {
                let (s, inside) = (s.clone(), inside.clone());
                loom::thread::spawn(move || {
                    assert!(s.acquire(None));
                    assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders of one permit");
                    inside.fetch_sub(1, Ordering::SeqCst);
                    assert!(s.release(1));
                })
            })
            .collect();
        for t in ts {
            t.join().expect("thread");
        }
        assert_eq!(s.value(), 1);
    });
}

#[test]
fn bounded_refuses_overflow() {
    loom::model(|| {
        let s = RawSemaphore::new(1, 1);
        assert!(!s.release(1));
        assert!(s.try_acquire());
        assert!(s.release(1));
    });
}
