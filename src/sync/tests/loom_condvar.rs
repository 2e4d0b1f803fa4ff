//! The condition variable: a notify after the predicate changes is never
//! lost, whatever the interleaving with the waiter's unlock and sleep.

use loom::sync::Arc;
use loom::sync::atomic::{AtomicU32, Ordering};

use crate::sync::raw_event::RawCondvar;
use crate::sync::raw_mutex::RawMutex;

#[test]
fn notify_is_not_lost() {
    loom::model(|| {
        let m = Arc::new(RawMutex::new());
        let c = Arc::new(RawCondvar::new());
        let ready = Arc::new(AtomicU32::new(0));
        let producer = {
            let (m, c, ready) = (m.clone(), c.clone(), ready.clone());
            loom::thread::spawn(move || {
                m.lock(None).expect("lock");
                ready.store(1, Ordering::Relaxed);
                m.unlock();
                c.notify(1);
            })
        };
        m.lock(None).expect("lock");
        while ready.load(Ordering::Relaxed) == 0 {
            let seq = c.prepare();
            m.unlock();
            c.sleep(seq, None);
            m.lock(None).expect("relock");
        }
        m.unlock();
        producer.join().expect("producer");
    });
}
