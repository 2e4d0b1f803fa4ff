//! The condition variable: a notify after the predicate changes is never
//! lost, whatever the interleaving with the waiter's unlock and sleep; a
//! notify ends exactly as many waits as it granted; a timeout racing a
//! notify loses no grant.

use loom::sync::Arc;
use loom::sync::atomic::{AtomicU32, Ordering};

use crate::loom::futex;
use crate::sync::raw_event::{CondvarWake, RawCondvar};
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
            c.prepare();
            m.unlock();
            assert_eq!(c.sleep(None), CondvarWake::Notified);
            m.lock(None).expect("relock");
        }
        m.unlock();
        producer.join().expect("producer");
    });
}

/// `waiters` threads count themselves (as under the mutex) and sleep;
/// once all are asleep in the futex, `notify(n)`: exactly `n` sleeps end
/// (the model joins those and checks that the rest are still asleep and
/// still counted).
fn notify_n_of(waiters: usize, n: u32, max_preemptions: usize) {
    let mut model = loom::model::Builder::new();
    // The waiters' spin until all sleep multiplies the interleavings: a
    // bound keeps the larger model to a minute.
    model.preemption_bound = Some(model.preemption_bound.unwrap_or(max_preemptions).min(max_preemptions));
    model.check(move || {
        let c = Arc::new(RawCondvar::new());
        let woken = Arc::new(AtomicU32::new(0));
        let ts: Vec<_> = (0..waiters)
            .map(|_| {
                let (c, woken) = (c.clone(), woken.clone());
                c.prepare();
                loom::thread::spawn(move || {
                    assert_eq!(c.sleep(None), CondvarWake::Notified);
                    woken.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        // Wait until every waiter sleeps in the futex: a notify then meets
        // sleepers only (the interleavings of sleeping and notifying are
        // in `notify_is_not_lost` and `timeout_racing_a_notify_loses_nothing`).
        while futex::sleeping(&c.seq) < waiters {
            loom::thread::yield_now();
        }
        c.notify(n);
        while woken.load(Ordering::SeqCst) < n {
            loom::thread::yield_now();
        }
        assert_eq!(c.signals(), 0, "every grant was taken");
        assert_eq!(c.waiting(), waiters as u32 - n, "the others are still counted");
        // Then let the others go, so the model ends.
        c.notify(u32::MAX);
        for t in ts {
            t.join().expect("waiter");
        }
        assert_eq!(woken.load(Ordering::SeqCst), waiters as u32);
        assert_eq!((c.waiting(), c.signals()), (0, 0));
    });
}

/// Two waiters, `notify(1)`: exactly one returns, the other stays asleep
/// and counted. CPython: _TestCondition.test_notify.
#[test]
fn notify_one_of_two_wakes_exactly_one() {
    notify_n_of(2, 1, 3);
}

/// Three waiters, `notify(2)`. CPython: _TestCondition.test_notify_n.
#[test]
fn notify_two_of_three_wakes_exactly_two() {
    notify_n_of(3, 2, 1);
}

/// Two timed waiters that may still be on their way to sleep when
/// `notify(1)` comes (under loom a timed wait gives up at once unless a
/// signal is there): exactly as many return notified as the notify
/// granted (one, or none if both had left already), and nothing is left.
#[test]
fn notify_one_of_two_racing_timed_waiters() {
    loom::model(|| {
        let c = Arc::new(RawCondvar::new());
        let woken = Arc::new(AtomicU32::new(0));
        c.prepare();
        c.prepare();
        let ts: Vec<_> = (0..2)
            .map(|_| {
                let (c, woken) = (c.clone(), woken.clone());
                loom::thread::spawn(move || {
                    if c.sleep(Some(std::time::Instant::now())) == CondvarWake::Notified {
                        woken.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        let granted = c.notify(1);
        for t in ts {
            t.join().expect("waiter");
        }
        assert!(granted <= 1);
        assert_eq!(woken.load(Ordering::SeqCst), granted, "one wake per grant");
        assert_eq!((c.waiting(), c.signals()), (0, 0));
    });
}

/// A waiter's deadline racing a notify: the waiter returns notified
/// exactly when the notify granted it a signal (a timeout takes a pending
/// grant); otherwise it had left, and the notify granted nothing.
#[test]
fn timeout_racing_a_notify_loses_nothing() {
    loom::model(|| {
        let c = Arc::new(RawCondvar::new());
        c.prepare();
        let notifier = {
            let c = c.clone();
            loom::thread::spawn(move || c.notify(1))
        };
        let how = c.sleep(Some(std::time::Instant::now()));
        let granted = notifier.join().expect("notifier");
        let expected = if granted == 1 { CondvarWake::Notified } else { CondvarWake::TimedOut };
        assert_eq!(how, expected);
        assert_eq!((c.waiting(), c.signals()), (0, 0), "a grant left behind, or a waiter still counted");
    });
}
