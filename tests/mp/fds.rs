//! Descriptors in queue items (the parcel post): a receiver SIGKILLed
//! between popping an item and taking its descriptors.

use shmproc::{Context, Fd, Queue, StartMethod};

use crate::harness::{self, Ctx, HANG_GUARD, say};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

fn file() -> Fd<std::fs::File> {
    Fd::new(std::fs::File::open("/proc/self/exe").expect("open"))
}

/// Gets two items; run with `post.before_take@2` armed, it dies after
/// popping the second, before taking its descriptors.
fn get_two(q: Queue<Fd<std::fs::File>>) {
    for _ in 0..2 {
        let _ = q.get_timeout(HANG_GUARD);
    }
}

/// Role (run with `post.before_take@2` armed, which this process passes
/// once; argument `method`: `spawn` or `forkserver`): a child takes one item and is
/// killed with the second popped and its datagram still on the socket;
/// the next get here discards that orphan and takes the third item's
/// descriptor. Says whether every get worked and whether this process
/// holds any descriptor more than before the puts.
pub(crate) fn role_receiver_killed_mid_get() {
    let mut out = Vec::new();
    let m = if harness::arg("method") == "spawn" { StartMethod::Spawn } else { StartMethod::ForkServer };
    {
        let q = Queue::<Fd<std::fs::File>>::new(0).expect("queue");
        let mut child = Context::new(m).spawn(get_two, q.clone()).expect("spawn");
        let before = open_fds();
        q.put(file()).expect("put");
        q.put(file()).expect("put");
        let killed = child.join().is_err();
        drop(child);
        q.put(file()).expect("put");
        let got = q.get_timeout(HANG_GUARD).map(|f| f.metadata().is_ok());
        out.push(format!("{killed} {got:?} {}", open_fds() <= before));
    }
    say(out.join(" "));
}

/// The orphan of a receiver killed mid-get is discarded by the next get,
/// which is not confused, and the sender leaks nothing (Spawn and
/// ForkServer receivers; a Fork receiver is the same code after `fork`).
#[test]
fn fds_a_receiver_killed_mid_get_leaves_nothing_that_confuses_the_next() {
    let ctx = Ctx::new("fds-mid-get");
    for method in ["spawn", "forkserver"] {
        let mut k = ctx.child("fds_mid_get").arg("method", method).failpoint("post.before_take@2").start();
        assert_eq!(k.line(), "true Ok(true) true", "{method}");
        k.wait_ok();
    }
    ctx.finish();
}
