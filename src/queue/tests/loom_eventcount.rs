//! The eventcount over an atomic flag: a waiter that re-checks its
//! condition between `prepare` and `wait` never misses the notifier's
//! change, even though `notify` skips the wake when it sees no sleeper
//! (loom's emulated futex turns a lost wake-up into a deadlock report).

use loom::sync::Arc;

use crate::loom::atomic::{AtomicU32, Ordering};
use crate::queue::eventcount::{Awake, RawEventCount};

/// Waits until `flag` reaches `want`, the way the blocking queue and pipe
/// calls do.
fn wait_until(ec: &RawEventCount, flag: &AtomicU32, want: u32) {
    loop {
        if flag.load(Ordering::Acquire) >= want {
            return;
        }
        let key = ec.prepare();
        if flag.load(Ordering::Acquire) >= want {
            ec.finish();
            return;
        }
        ec.wait(key, None, &Awake::new());
        ec.finish();
    }
}

#[test]
fn one_waiter_one_notifier_no_lost_wakeup() {
    loom::model(|| {
        let ec = Arc::new(RawEventCount::new());
        let flag = Arc::new(AtomicU32::new(0));
        let waiter = {
            let (ec, flag) = (ec.clone(), flag.clone());
            loom::thread::spawn(move || wait_until(&ec, &flag, 1))
        };
        flag.store(1, Ordering::Release);
        ec.notify_one(&Awake::new());
        waiter.join().expect("waiter");
    });
}

#[test]
fn a_waiter_that_sleeps_twice_sees_both_changes() {
    loom::model(|| {
        let ec = Arc::new(RawEventCount::new());
        let flag = Arc::new(AtomicU32::new(0));
        let waiter = {
            let (ec, flag) = (ec.clone(), flag.clone());
            loom::thread::spawn(move || {
                wait_until(&ec, &flag, 1);
                wait_until(&ec, &flag, 2);
            })
        };
        for v in 1..=2 {
            flag.store(v, Ordering::Release);
            ec.notify_one(&Awake::new());
        }
        waiter.join().expect("waiter");
    });
}
