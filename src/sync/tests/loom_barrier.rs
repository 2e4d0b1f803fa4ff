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
            loom::thread::spawn(move || b.wait(None).expect("pass"))
        };
        let mine = b.wait(None).expect("pass");
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
        assert!(b.wait(None).is_err());
    });
}
