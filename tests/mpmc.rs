//! The public MPMC ring API (`MpmcRing`, `MpmcProducer`, `MpmcConsumer`,
//! `MpmcWriteLoan`, `MpmcReadLoan`): FIFO order across the wrap point, full and
//! empty, threads as producers and consumers (nothing lost or repeated,
//! each producer's values in order), batches, loans committed, abandoned
//! and leaked by exiting threads, named rings and layout checks, bad
//! capacities, and rings passed to children (`Process::spawn` under Spawn
//! and ForkServer).
//!
//! Deaths by SIGKILL and SIGSTOP and hostile peers are in `tests/mp/mpmc.rs`
//! (RELIABILITY cases 14, 15, 16 and 35); here an owner dies only the gentle
//! way (a thread exiting with its loan leaked).

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use bytemuck::{Pod, Zeroable};
use common::Names;
use common::outcome::{Lent, Popped, Pushed};
#[cfg(feature = "serde")]
use shmproc::{Context, StartMethod};
use shmproc::{Error, MpmcConsumer, MpmcPopError, MpmcPushError, MpmcRing, SpscRing};

#[cfg(feature = "serde")]
const METHODS: [StartMethod; 2] = [StartMethod::Spawn, StartMethod::ForkServer];
/// Every wait that should end does so long before this.
const GUARD: Duration = Duration::from_secs(30);

fn test_names(tag: &str) -> Names {
    Names::new("mpmctest", tag)
}

/// A value that says who made it: producer `p`, its sequence number `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Pod, Zeroable)]
#[repr(C)]
struct Tagged {
    p: u64,
    seq: u64,
    check: u64,
}

impl Tagged {
    fn new(p: u64, seq: u64) -> Tagged {
        Tagged { p, seq, check: (p << 40) ^ seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) }
    }

    fn valid(&self) -> bool {
        *self == Tagged::new(self.p, self.seq)
    }
}

/// Fails the test if a wait that should end started more than [`GUARD`]
/// ago: a guard against hangs, never a measurement.
#[track_caller]
fn hang_guard(since: Instant, what: &str) {
    if since.elapsed() >= GUARD {
        panic!("hang guard ({GUARD:?}): {what}");
    }
}

/// Pops one value, yielding while the ring is empty (hang guard).
fn pop_wait<T: Pod + Send>(rx: &mut MpmcConsumer<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = rx.pop().popped() {
            return v;
        }
        hang_guard(start, "nothing to pop");
        std::thread::yield_now();
    }
}

#[test]
fn fifo_across_wrap_full_and_empty() {
    for cap in [1usize, 2, 8, 64] {
        let ring = MpmcRing::<[u8; 64]>::new(cap).expect("ring");
        let mut tx = ring.producer().expect("producer");
        let mut rx = ring.consumer().expect("consumer");
        for round in 0..(1000 / cap as u64 + 3) {
            for i in 0..cap as u64 {
                let v = [(round * 7 + i) as u8; 64];
                tx.push(v).expect("room");
            }
            let back = [9; 64];
            assert!(
                matches!(tx.push(back), Err(MpmcPushError::Full(v)) if v == back),
                "cap {cap}: full gives the value back"
            );
            assert_eq!(ring.len(), cap);
            for i in 0..cap as u64 {
                assert_eq!(rx.pop().expect("pop"), [(round * 7 + i) as u8; 64], "cap {cap}");
            }
            assert!(matches!(rx.pop(), Err(MpmcPopError::Empty)), "cap {cap}: empty");
            assert!(ring.is_empty());
        }
    }
}

/// 4 producer threads and 3 consumer threads on a small ring: every value
/// is delivered exactly once, and each consumer sees each producer's
/// values in the order they were pushed.
#[test]
fn threads_as_producers_and_consumers() {
    const PRODUCERS: u64 = 4;
    const PER: u64 = 20_000;
    let ring = MpmcRing::<Tagged>::new(16).expect("ring");
    let start = Arc::new(Barrier::new(PRODUCERS as usize + 3));
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let (ring, start) = (ring.clone(), Arc::clone(&start));
            std::thread::spawn(move || {
                let mut tx = ring.producer().expect("producer");
                start.wait();
                let t0 = Instant::now();
                for seq in 0..PER {
                    let mut v = Tagged::new(p, seq);
                    while let Err(back) = tx.push(v).pushed() {
                        v = back;
                        hang_guard(t0, "ring stays full");
                        std::thread::yield_now();
                    }
                }
            })
        })
        .collect();
    let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let consumers: Vec<_> = (0..3)
        .map(|c| {
            let (ring, start, done) = (ring.clone(), Arc::clone(&start), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut rx = ring.consumer().expect("consumer");
                start.wait();
                let t0 = Instant::now();
                let mut last = [None::<u64>; PRODUCERS as usize];
                let mut got = Vec::new();
                let mut buf = [Tagged::zeroed(); 7];
                while done.load(std::sync::atomic::Ordering::Relaxed) < PRODUCERS * PER {
                    // Alternate single pops and batches.
                    let n = if c == 0 || got.len() % 2 == 0 {
                        usize::from(rx.pop().popped().map(|v| buf[0] = v).is_some())
                    } else {
                        rx.pop_into(&mut buf).expect("pop_into")
                    };
                    for v in &buf[..n] {
                        assert!(v.valid(), "torn value {v:?}");
                        let l = &mut last[v.p as usize];
                        assert!(l.is_none_or(|s| s < v.seq), "producer {} out of order: {l:?} then {}", v.p, v.seq);
                        *l = Some(v.seq);
                        got.push(*v);
                    }
                    done.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                    if n == 0 {
                        hang_guard(t0, "ring stays empty");
                        std::thread::yield_now();
                    }
                }
                got
            })
        })
        .collect();
    for p in producers {
        p.join().expect("producer thread");
    }
    let mut all = HashSet::new();
    for c in consumers {
        for v in c.join().expect("consumer thread") {
            assert!(all.insert(v), "{v:?} delivered twice");
        }
    }
    assert_eq!(all.len() as u64, PRODUCERS * PER, "every value delivered");
    assert!(ring.is_empty());
}

#[test]
fn batches_stop_at_full_and_empty() {
    let ring = MpmcRing::<u32>::new(8).expect("ring");
    let mut tx = ring.producer().expect("producer");
    let mut rx = ring.consumer().expect("consumer");
    assert_eq!(tx.push_slice(&[]).expect("empty slice"), 0);
    assert_eq!(tx.push_slice(&(0..20).collect::<Vec<_>>()).expect("push_slice"), 8);
    let mut out = [0u32; 3];
    assert_eq!(rx.pop_into(&mut out).expect("pop_into"), 3);
    assert_eq!(out, [0, 1, 2]);
    assert_eq!(tx.push_slice(&[100, 101, 102, 103]).expect("push_slice"), 3, "3 free across the wrap");
    let mut out = [0u32; 20];
    assert_eq!(rx.pop_into(&mut out).expect("pop_into"), 8);
    assert_eq!(out[..8], [3, 4, 5, 6, 7, 100, 101, 102]);
    assert_eq!(rx.pop_into(&mut out).expect("pop_into"), 0);
    assert_eq!(rx.pop_into(&mut []).expect("empty out"), 0);
}

#[test]
fn loans_commit_abandon_and_read_in_place() {
    let ring = MpmcRing::<[u64; 8]>::new(4).expect("ring");
    let mut tx = ring.producer().expect("producer");
    let mut tx2 = ring.producer().expect("second producer");
    let mut rx = ring.consumer().expect("consumer");
    // Two loans open at once (two handles), committed out of order.
    let mut a = tx.reserve().expect("room");
    let mut b = tx2.reserve().expect("room");
    a.fill(1);
    b.fill(2);
    b.commit();
    assert_eq!(rx.pop().popped(), None, "FIFO: the first slot is still being written");
    a.commit();
    assert_eq!(rx.pop().expect("pop"), [1; 8]);
    assert_eq!(rx.pop().expect("pop"), [2; 8]);
    // An abandoned loan is skipped.
    let mut c = tx.reserve().expect("room");
    c.fill(3);
    drop(c);
    tx.push([4; 8]).expect("room");
    assert_eq!(rx.pop().expect("pop"), [4; 8], "the tombstone is skipped");
    // Read in place; the slot is freed when the loan drops.
    tx.push_slice(&[[5; 8], [6; 8], [7; 8], [8; 8]]).expect("push_slice");
    assert!(matches!(tx.reserve(), Err(MpmcPushError::Full(()))), "full");
    {
        let loan = rx.peek().expect("a value");
        assert_eq!(*loan, [5; 8]);
        assert!(tx.reserve().lent().is_none(), "still full while the loan lives");
    }
    let mut w = tx.reserve().expect("room after the read loan dropped");
    w[0] = 9;
    w.commit();
    assert_eq!(rx.pop().expect("pop"), [6; 8]);
    let mut rest = [[0u64; 8]; 4];
    assert_eq!(rx.pop_into(&mut rest).expect("pop_into"), 3);
    assert_eq!(rest[2][0], 9);
    assert!(matches!(rx.peek(), Err(MpmcPopError::Empty)));
}

/// A thread that exits with a write loan leaked counts as dead: the
/// consumer tombstones its slot (after asking the OS) and later values get
/// through.
#[test]
fn a_write_loan_leaked_by_an_exited_thread_is_tombstoned() {
    let ring = MpmcRing::<u64>::new(4).expect("ring");
    let r = ring.clone();
    std::thread::spawn(move || {
        let mut tx = r.producer().expect("producer");
        std::mem::forget(tx.reserve().expect("room"));
    })
    .join()
    .expect("thread");
    let mut tx = ring.producer().expect("producer");
    tx.push(42).expect("room");
    let mut rx = ring.consumer().expect("consumer");
    assert_eq!(pop_wait(&mut rx), 42);
    assert_eq!(rx.pop().popped(), None);
    assert!(ring.is_empty());
}

/// A thread that exits with a read loan leaked counts as dead: the
/// producer reuses its slot (after asking the OS); its value is gone.
#[test]
fn a_read_loan_leaked_by_an_exited_thread_is_reclaimed() {
    let ring = MpmcRing::<u64>::new(2).expect("ring");
    let mut tx = ring.producer().expect("producer");
    tx.push_slice(&[1, 2]).expect("push_slice");
    let r = ring.clone();
    std::thread::spawn(move || {
        let mut rx = r.consumer().expect("consumer");
        std::mem::forget(rx.peek().expect("a value"));
    })
    .join()
    .expect("thread");
    let mut rx = ring.consumer().expect("consumer");
    assert_eq!(rx.pop().expect("pop"), 2);
    let start = Instant::now();
    while tx.push(3).pushed().is_err() {
        hang_guard(start, "the dead reader's slot is never reclaimed");
        std::thread::sleep(Duration::from_millis(1));
    }
    tx.push(4).expect("room");
    assert_eq!(rx.pop().expect("pop"), 3);
    assert_eq!(rx.pop().expect("pop"), 4);
    assert_eq!(rx.pop().popped(), None, "1 was lost with its reader, never repeated");
}

/// A live thread's loan is never taken over, however long it is held.
#[test]
fn a_live_threads_loan_is_not_taken_over() {
    let ring = MpmcRing::<u64>::new(2).expect("ring");
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let (held_tx, held_rx) = std::sync::mpsc::channel::<()>();
    let r = ring.clone();
    let t = std::thread::spawn(move || {
        let mut tx = r.producer().expect("producer");
        let mut loan = tx.reserve().expect("room");
        *loan = 5;
        held_tx.send(()).expect("send");
        go_rx.recv().expect("recv");
        loan.commit();
    });
    held_rx.recv().expect("recv");
    let mut tx = ring.producer().expect("producer");
    tx.push(6).expect("room");
    let mut rx = ring.consumer().expect("consumer");
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(100) {
        assert_eq!(rx.pop().popped(), None, "the first value is still being written");
        std::thread::sleep(Duration::from_millis(1));
    }
    go_tx.send(()).expect("send");
    t.join().expect("thread");
    assert_eq!(pop_wait(&mut rx), 5);
    assert_eq!(pop_wait(&mut rx), 6);
}

#[test]
fn named_rings_open_and_check_the_element_type() {
    let names = test_names("named");
    let n = names.name("r");
    let ring = MpmcRing::<u64>::create(&n, 64).expect("create");
    assert!(matches!(MpmcRing::<u64>::create(&n, 64), Err(Error::Exists { .. })));
    let opened = MpmcRing::<u64>::open(&n).expect("open");
    assert_eq!(opened.capacity(), 64);
    ring.producer().expect("producer").push_slice(&[1, 2, 3]).expect("push");
    assert_eq!(opened.len(), 3, "both handles see one ring");
    assert_eq!(opened.consumer().expect("consumer").pop().expect("pop"), 1);
    assert_eq!(ring.consumer().expect("consumer").pop().expect("pop"), 2);
    // Another element type, or another kind of ring under the name.
    assert!(matches!(MpmcRing::<u32>::open(&n), Err(Error::LayoutMismatch { .. })));
    assert!(matches!(MpmcRing::<[u8; 64]>::open(&n), Err(Error::LayoutMismatch { .. })));
    assert!(matches!(MpmcRing::<[u32; 2]>::open(&n), Err(Error::LayoutMismatch { .. })), "same size, other alignment");
    assert!(SpscRing::<u64>::open(&n).is_err(), "an MPMC ring is not an SPSC ring");
    let spsc = names.name("spsc");
    let s = SpscRing::<u64>::create(&spsc, 64).expect("spsc");
    assert!(MpmcRing::<u64>::open(&spsc).is_err(), "an SPSC ring is not an MPMC ring");
    assert!(matches!(MpmcRing::<u64>::open(&names.name("none")), Err(Error::NotFound { .. })));
    drop((ring, opened, s));
    names.finish();
}

#[test]
fn invalid_capacities_are_rejected() {
    #[derive(Clone, Copy, Pod, Zeroable)]
    #[repr(C, align(256))]
    struct Huge([u8; 256]);

    let names = test_names("badcap");
    for cap in [0usize, 3, 6, 1000, 1 << 41, usize::MAX] {
        assert!(matches!(MpmcRing::<u64>::new(cap), Err(Error::InvalidArgument { .. })), "new({cap})");
        assert!(
            matches!(MpmcRing::<u8>::create(&names.name("c"), cap), Err(Error::InvalidArgument { .. })),
            "create({cap})"
        );
    }
    assert!(matches!(MpmcRing::<Huge>::new(4), Err(Error::InvalidArgument { .. })), "alignment above 128");
    assert_eq!(MpmcRing::<u8>::new(1).expect("1 is a power of two").capacity(), 1);
    names.finish();
}

#[cfg(feature = "serde")]
/// In a child: pushes `n` values tagged `p`, yielding while full.
fn produce((ring, p, n): (MpmcRing<Tagged>, u64, u64)) -> u64 {
    let mut tx = ring.producer().expect("producer in the child");
    let start = Instant::now();
    for seq in 0..n {
        let mut v = Tagged::new(p, seq);
        while let Err(back) = tx.push(v).pushed() {
            v = back;
            hang_guard(start, "consumer stalled");
            std::thread::yield_now();
        }
    }
    n
}

#[cfg(feature = "serde")]
/// In a child: pops until it has seen `n` values, then returns their
/// sequence numbers summed.
fn consume((ring, n): (MpmcRing<Tagged>, u64)) -> u64 {
    let mut rx = ring.consumer().expect("consumer in the child");
    (0..n).map(|_| pop_wait(&mut rx).seq).sum()
}

#[cfg(feature = "serde")]
/// The ring travels to children as an argument (the handle serializes as
/// its segment): two producer children and a consumer child, with this
/// process consuming too.
#[test]
fn rings_pass_to_children_under_spawn_and_forkserver() {
    const N: u64 = 20_000;
    for method in METHODS {
        let ring = MpmcRing::<Tagged>::new(64).expect("ring");
        let ctx = Context::new(method);
        let producers: Vec<_> =
            (0..2).map(|p| ctx.spawn(produce, (ring.clone(), p, N)).expect("spawn producer")).collect();
        let mut child_consumer = ctx.spawn(consume, (ring.clone(), 500)).expect("spawn consumer");
        let mut rx = ring.consumer().expect("consumer");
        let mut seen = HashSet::new();
        let mut last = [None::<u64>; 2];
        let start = Instant::now();
        while (seen.len() as u64) < 2 * N - 500 {
            match rx.pop().popped() {
                Some(v) => {
                    assert!(v.valid(), "{method}: torn value {v:?}");
                    assert!(last[v.p as usize].is_none_or(|s| s < v.seq), "{method}: out of order");
                    last[v.p as usize] = Some(v.seq);
                    assert!(seen.insert(v), "{method}: {v:?} twice");
                }
                None => {
                    hang_guard(start, &method.to_string());
                    std::thread::yield_now();
                }
            }
        }
        for mut p in producers {
            assert_eq!(p.join().expect("producer child"), N);
        }
        let child_sum = child_consumer.join().expect("consumer child");
        let our_sum: u64 = seen.iter().map(|v| v.seq).sum();
        assert_eq!(our_sum + child_sum, N * (N - 1), "{method}: every value once, between us and the child");
        assert_eq!(rx.pop().popped(), None, "{method}: nothing extra");
        assert!(ring.is_empty());
    }
}

/// `try_iter` takes what is ready now and ends when nothing is; a later
/// call takes what came since; `for v in &mut rx` is the same.
#[test]
fn try_iter_drains_what_is_ready_now() {
    let ring = MpmcRing::<u64>::new(8).expect("ring");
    let mut tx = ring.producer().expect("producer");
    let mut rx = ring.consumer().expect("consumer");
    assert_eq!(rx.try_iter().count(), 0);
    tx.push_slice(&[1, 2, 3]).expect("push_slice");
    let mut it = rx.try_iter();
    assert_eq!(it.next().map(|r| r.expect("value")), Some(1));
    drop(it); // the rest stays in the ring
    assert_eq!(ring.len(), 2);
    tx.push(4).expect("room");
    let mut got = Vec::new();
    for v in &mut rx {
        got.push(v.expect("value"));
    }
    assert_eq!(got, [2, 3, 4]);
    // A value still being written stops the iteration (FIFO), like `pop`.
    let mut loan = tx.reserve().expect("room");
    *loan = 9;
    tx2_push(&ring, 5);
    assert_eq!(rx.try_iter().count(), 0, "the loan blocks what follows it");
    loan.commit();
    let got: Vec<u64> = rx.try_iter().collect::<Result<_, _>>().expect("values");
    assert_eq!(got, [9, 5]);
    assert!(matches!(rx.pop(), Err(MpmcPopError::Empty)));
}

/// Pushes `v` through a second producer of `ring`.
fn tx2_push(ring: &MpmcRing<u64>, v: u64) {
    ring.producer().expect("producer").push(v).expect("room");
}
