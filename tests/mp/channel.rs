//! Typed channels across real processes: handles passed to children under
//! every start method (counted for the child, so the parent may drop its
//! own at once), senders and receivers SIGKILLed (the other side gets
//! `Disconnected` once the OS confirms the death, never a hang), a
//! SIGSTOPped sender (the channel stays open: a receive times out, then
//! the sender resumes and finishes), a drop in a child seen by a receiver
//! in the parent, and a child killed before it began to decode the
//! sender it was given (the parent gives the in-flight handle back when
//! it joins or drops that child).

use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process};
use shmproc::channel::{Receiver, RecvTimeoutError, SendTimeoutError, Sender, TryRecvError};
use shmproc::{Context, Event, Process, StartMethod};

use crate::harness::{self, Ctx, HANG_GUARD, say};

/// Task: sends `n` numbers from `base`, then returns.
fn produce((tx, base, n): (Sender<u64>, u64, u64)) {
    for i in 0..n {
        tx.send(base + i).expect("send");
    }
}

/// Task: sends one number, says so, and waits to be killed (or stopped).
fn send_then_hold((tx, started): (Sender<u64>, Event)) {
    tx.send(7).expect("send");
    started.set();
    std::thread::sleep(HANG_GUARD);
}

/// Task: holds a receiver, says so, and waits to be killed.
fn hold_receiver((_rx, started): (Receiver<u64>, Event)) {
    started.set();
    std::thread::sleep(HANG_GUARD);
}

/// Task: under Fork (this child has one thread), two grandchildren send
/// through clones; returns what the child received once both are done.
fn fork_family(n: u64) -> Vec<u64> {
    let (tx, rx) = shmproc::channel::<u64>(4).expect("channel");
    let ctx = Context::new(StartMethod::Fork);
    let kids: Vec<_> = (0..2).map(|k| ctx.spawn(produce, (tx.clone(), k * 1000, n)).expect("fork")).collect();
    drop(tx);
    let mut got: Vec<u64> = rx.iter().collect::<Result<_, _>>().expect("items");
    for mut k in kids {
        k.join().expect("join");
    }
    got.sort_unstable();
    got
}

fn expected(n: u64) -> Vec<u64> {
    let mut v: Vec<u64> = (0..2).flat_map(|k| (0..n).map(move |i| k * 1000 + i)).collect();
    v.sort_unstable();
    v
}

/// Children started every way hold the only senders: the parent drops its
/// own right after starting them, and its iteration ends exactly when
/// both children are done, with every item.
#[test]
fn channel_children_of_every_start_method_hold_their_senders() {
    let ctx = Ctx::new("chan-methods");
    for m in [StartMethod::ForkServer, StartMethod::Spawn] {
        ctx.step(format!("{m:?}"));
        let (tx, rx) = shmproc::channel::<u64>(4).expect("channel");
        let kids: Vec<_> =
            (0..2).map(|k| Context::new(m).spawn(produce, (tx.clone(), k * 1000, 200)).expect("start")).collect();
        drop(tx);
        let mut got: Vec<u64> = rx.iter().collect::<Result<_, _>>().expect("items");
        got.sort_unstable();
        assert_eq!(got, expected(200), "under {m:?}");
        for mut k in kids {
            k.join().expect("join");
        }
    }
    ctx.step("Fork, from a single-threaded child");
    let mut p = Context::new(StartMethod::Spawn).spawn(fork_family, 200).expect("start");
    assert_eq!(p.join().expect("join"), expected(200));
    ctx.finish();
}

/// A sender SIGKILLed while it holds the only sender: what it sent is
/// received, then `Disconnected`; a receive blocked in another thread at
/// the time ends too.
#[test]
fn channel_a_killed_sender_disconnects_its_receivers() {
    let ctx = Ctx::new("chan-killtx");
    let (tx, rx) = shmproc::channel::<u64>(4).expect("channel");
    let started = Event::new().expect("event");
    let mut child = Process::spawn(send_then_hold, (tx.clone(), started.clone())).expect("spawn");
    drop(tx);
    assert!(started.wait_timeout(HANG_GUARD).is_ok(), "hang guard: the child did not start");
    assert_eq!(rx.recv_timeout(HANG_GUARD).expect("the item sent before"), 7);
    let rx2 = rx.clone();
    let blocked = std::thread::spawn(move || rx2.recv_timeout(HANG_GUARD));
    ctx.step("killing the sender");
    child.kill().expect("kill");
    assert!(child.join().is_err(), "the child was killed");
    let r = blocked.join().expect("receiver thread");
    assert!(matches!(r, Err(RecvTimeoutError::Disconnected)), "blocked recv after the sender died: {r:?}");
    assert!(matches!(rx.try_recv(), Err(TryRecvError::Disconnected)));
    ctx.finish();
}

/// A receiver SIGKILLed while it holds the only receiver: a send blocked
/// on the full channel ends with `Disconnected` and its item back.
#[test]
fn channel_a_killed_receiver_disconnects_its_senders() {
    let ctx = Ctx::new("chan-killrx");
    let (tx, rx) = shmproc::channel::<u64>(1).expect("channel");
    let started = Event::new().expect("event");
    let mut child = Process::spawn(hold_receiver, (rx.clone(), started.clone())).expect("spawn");
    drop(rx);
    assert!(started.wait_timeout(HANG_GUARD).is_ok(), "hang guard: the child did not start");
    tx.send(1).expect("room for one");
    let tx2 = tx.clone();
    let blocked = std::thread::spawn(move || tx2.send_timeout(2, HANG_GUARD));
    ctx.step("killing the receiver");
    child.kill().expect("kill");
    assert!(child.join().is_err(), "the child was killed");
    let r = blocked.join().expect("sender thread");
    assert!(matches!(r, Err(SendTimeoutError::Disconnected(2))), "blocked send after the receiver died: {r:?}");
    assert!(tx.send(3).is_err_and(|e| e.is_disconnected()));
    ctx.finish();
}

/// A SIGSTOPped sender keeps the channel open (a receive times out rather
/// than reporting `Disconnected`); after SIGCONT it finishes and the
/// channel disconnects when it exits.
#[test]
fn channel_a_stopped_sender_keeps_it_open() {
    let ctx = Ctx::new("chan-stop");
    let (tx, rx) = shmproc::channel::<u64>(4).expect("channel");
    let go = Event::new().expect("event");
    let mut child = Process::spawn(wait_then_produce, (tx.clone(), go.clone())).expect("spawn");
    drop(tx);
    let pid = Pid::from_raw(child.pid() as i32).expect("pid");
    kill_process(pid, Signal::STOP).expect("SIGSTOP");
    ctx.step("receiving from a stopped sender");
    let r = rx.recv_timeout(Duration::from_millis(300));
    assert!(matches!(r, Err(RecvTimeoutError::Timeout)), "a stopped sender is not gone: {r:?}");
    kill_process(pid, Signal::CONT).expect("SIGCONT");
    go.set();
    let got: Vec<u64> = rx.iter().collect::<Result<_, _>>().expect("items");
    assert_eq!(got, (0..50).collect::<Vec<_>>());
    child.join().expect("join");
    ctx.finish();
}

/// Task: waits for `go`, then sends 0..50.
fn wait_then_produce((tx, go): (Sender<u64>, Event)) {
    assert!(go.wait_timeout(HANG_GUARD).is_ok(), "hang guard: no go");
    produce((tx, 0, 50));
}

/// Task: takes the items of its receiver until the senders are gone and
/// returns how many it got; drops its receiver by returning.
fn count_all(rx: Receiver<u64>) -> usize {
    rx.iter().filter(Result::is_ok).count()
}

/// Receivers in two children share the items (each once) and end when
/// the parent drops its sender.
#[test]
fn channel_receivers_in_children_share_the_items_and_end_on_drop() {
    let ctx = Ctx::new("chan-mpmc");
    let (tx, rx) = shmproc::channel::<u64>(8).expect("channel");
    let kids: Vec<_> = (0..2).map(|_| Process::spawn(count_all, rx.clone()).expect("spawn")).collect();
    drop(rx);
    for i in 0..1000 {
        tx.send(i).expect("send");
    }
    drop(tx);
    let total: usize = kids.into_iter().map(|mut k| k.join().expect("join")).sum();
    assert_eq!(total, 1000);
    ctx.finish();
}

/// Role (run with the failpoint `process.child.before_running` armed, so
/// every child it starts dies before it begins to decode its argument):
/// starts two children with senders and drops its own; the first is
/// joined, the second only dropped once it has exited. Says what a receive
/// gets after each.
pub(crate) fn role_unstarted_child() {
    let (tx, rx) = shmproc::channel::<u64>(4).expect("channel");
    let (tx2, rx2) = shmproc::channel::<u64>(4).expect("channel");
    let mut joined = Context::new(StartMethod::Spawn).spawn(produce, (tx.clone(), 0, 1)).expect("spawn");
    let dropped = Context::new(StartMethod::Spawn).spawn(produce, (tx2.clone(), 0, 1)).expect("spawn");
    drop((tx, tx2));
    assert!(joined.join().is_err(), "the child was killed before it ran");
    let first = rx.recv_timeout(HANG_GUARD);
    harness::wait_until("the second child to exit", || !dropped.is_alive());
    drop(dropped);
    let second = rx2.recv_timeout(HANG_GUARD);
    say(format!("{first:?} {second:?}"));
}

/// A child killed before it began to decode its argument (a failpoint in
/// the child's start) never took its sender over: the parent gives the
/// in-flight handle back once it sees the child gone, so the receiver
/// learns that every sender is gone.
#[test]
fn channel_a_child_killed_before_it_decoded_its_sender_gives_it_back() {
    let ctx = Ctx::new("chan-unstarted");
    let mut k = ctx.child("chan_unstarted").failpoint("process.child.before_running").start();
    assert_eq!(k.line(), "Err(Disconnected) Err(Disconnected)");
    k.wait_ok();
    ctx.finish();
}
