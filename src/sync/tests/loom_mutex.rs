//! The robust mutex: mutual exclusion, no lost wake-up, and exactly one
//! taker after an owner dies.
#![allow(unsafe_code)] // a loom cell's closures hand out raw pointers

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

/// Runs `threads` lockers; each increments a plain (loom-checked) cell under
/// the lock. Returns how many got `OwnerDied`. A locker that took the lock
/// from a live owner would touch the cell beside it, which loom reports.
fn lockers(m: &Arc<RawMutex>, threads: Vec<Box<dyn FnOnce() + Send>>) -> u32 {
    let cell = Arc::new(loom::cell::UnsafeCell::new(0u32));
    let died = Arc::new(AtomicU32::new(0));
    let n = threads.len() as u32;
    let ts: Vec<_> = threads
        .into_iter()
        .map(|before| {
            let (m, cell, died) = (m.clone(), cell.clone(), died.clone());
            loom::thread::spawn(move || {
                before();
                if m.lock(None).expect("lock") == Acquired::OwnerDied {
                    died.fetch_add(1, Ordering::Relaxed);
                    m.mark_consistent();
                }
                // SAFETY: under the lock: loom fails the model if another
                // thread touches the cell at the same time.
                cell.with_mut(|v| unsafe { *v += 1 });
                m.unlock();
            })
        })
        .collect();
    for t in ts {
        t.join().expect("locker");
    }
    // SAFETY: every locker joined.
    assert_eq!(cell.with(|v| unsafe { *v }), n);
    died.load(Ordering::Relaxed)
}

/// A "process" (thread) that locks `m`, unlocks it unless `holding`, and
/// dies; returns its owner id.
fn dead_locker(m: &Arc<RawMutex>, holding: bool) -> u32 {
    let m = m.clone();
    loom::thread::spawn(move || {
        m.lock(None).expect("lock");
        if !holding {
            m.unlock();
        }
        owner::kill(); // its tag may be handed out again
        owner::me().expect("id").0
    })
    .join()
    .expect("the earlier owner")
}

/// Two lockers: one that first takes the tag of the dead `earlier`, and
/// one plain.
fn reuse_and_plain(earlier: u32) -> Vec<Box<dyn FnOnce() + Send>> {
    vec![Box::new(move || owner::reuse_tag(earlier)), Box::new(|| {})]
}

/// A process locked and unlocked, then died; a new process got its tag
/// (same tag, another nonce) and locks while a third waits. Between the new
/// owner's CAS and its nonce store, the waiter must not pair it with the
/// dead process's nonce (same tag, another nonce: "reused, so dead") and
/// take the lock from a live owner.
#[test]
fn a_reused_tag_never_makes_a_live_owner_look_dead() {
    loom::model(|| {
        owner::simulate_deaths();
        let m = Arc::new(RawMutex::new());
        let earlier = dead_locker(&m, false);
        assert_eq!(lockers(&m, reuse_and_plain(earlier)), 0, "nobody died holding the lock");
    });
}

/// The holder died holding the lock; a process that got its tag and a
/// third one race to take over: exactly one recovers, and the other never
/// takes the lock from it while it holds it (between the taker's CAS and
/// its nonce store the dead holder's nonce is gone already).
#[test]
fn a_reused_tag_taking_over_has_the_lock_alone() {
    loom::model(|| {
        owner::simulate_deaths();
        let m = Arc::new(RawMutex::new());
        let dead = dead_locker(&m, true);
        assert_eq!(lockers(&m, reuse_and_plain(dead)), 1, "exactly one recoverer");
    });
}
