//! The robust mutex: mutual exclusion, no lost wake-up, and exactly one
//! taker after an owner dies.

use loom::sync::Arc;
use loom::sync::atomic::{AtomicU32, Ordering};

use crate::loom::owner;
use crate::sync::raw_mutex::{Acquired, RawMutex};

/// Two threads increment under the lock with a non-atomic read-modify-write:
/// the total is exact, and a waiter that sleeps is always woken.
#[test]
fn mutual_exclusion_and_wakeup() {
    loom::model(|| {
        let m = Arc::new(RawMutex::new());
        let v = Arc::new(AtomicU32::new(0));
        let ts: Vec<_> = (0..2)
            .map(|_| {
                let (m, v) = (m.clone(), v.clone());
                loom::thread::spawn(move || {
                    assert_eq!(m.lock(None).expect("lock"), Acquired::Clean);
                    let x = v.load(Ordering::Relaxed);
                    v.store(x + 1, Ordering::Relaxed);
                    m.unlock();
                })
            })
            .collect();
        for t in ts {
            t.join().expect("thread");
        }
        assert_eq!(v.load(Ordering::Relaxed), 2);
    });
}

/// The holder died holding the lock; two waiters race to take it over:
/// exactly one gets `OwnerDied`, repairs and marks consistent, and the other
/// then gets it clean.
#[test]
fn owner_death_has_exactly_one_recoverer() {
    loom::model(|| {
        owner::simulate_deaths();
        let m = Arc::new(RawMutex::new());
        {
            let m = m.clone();
            loom::thread::spawn(move || {
                m.lock(None).expect("lock");
                owner::kill(); // dies holding it
            })
            .join()
            .expect("holder");
        }
        let died = Arc::new(AtomicU32::new(0));
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let (m, died) = (m.clone(), died.clone());
                loom::thread::spawn(move || match m.lock(None).expect("lock") {
                    Acquired::OwnerDied => {
                        died.fetch_add(1, Ordering::Relaxed);
                        m.mark_consistent();
                        m.unlock();
                    }
                    Acquired::Clean => m.unlock(),
                })
            })
            .collect();
        for w in waiters {
            w.join().expect("waiter");
        }
        assert_eq!(died.load(Ordering::Relaxed), 1);
    });
}

/// A holder that dies while another thread waits: the waiter ends up with
/// the lock (`OwnerDied` if the holder died holding it), never waits forever.
#[test]
fn a_waiter_outlives_a_dying_holder() {
    loom::model(|| {
        owner::simulate_deaths();
        let m = Arc::new(RawMutex::new());
        let holder = {
            let m = m.clone();
            loom::thread::spawn(move || {
                m.lock(None).expect("lock");
                owner::kill();
            })
        };
        let got = m.lock(None).expect("lock");
        if got == Acquired::OwnerDied {
            m.mark_consistent();
        }
        m.unlock();
        holder.join().expect("holder");
    });
}
