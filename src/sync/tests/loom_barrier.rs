//! The barrier: all parties pass together with distinct indices; a party
//! that dies breaks it for the others instead of stranding them.

use loom::sync::Arc;

use crate::loom::owner;
use crate::sync::raw_event::RawBarrier;

#[test]
fn parties_pass_together() {
    loom::model(|| {
        let b: Arc<Box<RawBarrier>> = Arc::new(RawBarrier::new(2));
        let other = {
            let b = b.clone();
            loom::thread::spawn(move || b.wait(None, || Ok(())).expect("pass"))
        };
        let mine = b.wait(None, || Ok(())).expect("pass");
        let theirs = other.join().expect("party");
        assert_ne!(mine, theirs);
    });
}

#[test]
fn a_dead_member_breaks_it() {
    loom::model(|| {
        owner::simulate_deaths();
        let b: Arc<Box<RawBarrier>> = Arc::new(RawBarrier::new(2));
        let doomed = {
            let b = b.clone();
            loom::thread::spawn(move || {
                b.register().expect("register");
                owner::kill(); // dies before arriving
            })
        };
        doomed.join().expect("doomed");
        assert!(b.wait(None, || Ok(())).is_err());
    });
}

/// The action runs exactly once per trip, in the last party, before any
/// party is released: every party sees it done when it passes.
#[test]
fn the_action_runs_once_before_release() {
    use loom::sync::atomic::{AtomicU32, Ordering};
    loom::model(|| {
        let b: Arc<Box<RawBarrier>> = Arc::new(RawBarrier::new(2));
        let runs = Arc::new(AtomicU32::new(0));
        let party = |b: Arc<Box<RawBarrier>>, runs: Arc<AtomicU32>| {
            move || {
                let action = || {
                    runs.fetch_add(1, Ordering::Relaxed);
                    Ok(())
                };
                b.wait(None, action).expect("pass");
                // The generation's Release/Acquire pair orders the action
                // before this look.
                assert_eq!(runs.load(Ordering::Relaxed), 1, "passed before the action ran");
            }
        };
        let other = loom::thread::spawn(party(b.clone(), runs.clone()));
        party(b, runs.clone())();
        other.join().expect("party");
        assert_eq!(runs.load(Ordering::Relaxed), 1);
    });
}
