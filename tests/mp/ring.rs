//! The SPSC ring against dying and hostile peers: RELIABILITY case 13 (a
//! producer SIGKILLed mid-stream, and one killed holding a half-written
//! loan) and the ring part of case 35 (garbage in the ring's header words
//! while a producer and a consumer operate, and opens of a ring whose
//! capacity word is garbage).
//!
//! Hostile operations run in helpers, so a SIGSEGV or SIGBUS shows as a
//! helper killed by a signal instead of taking the test binary down.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use shmproc::{Error, PopError, PushError, SpscRing};

use crate::harness::{self, Ctx, HANG_GUARD, arg, arg_num, command, hdr, poke, say, shm_path, variant};
use crate::outcome::{Popped, Pushed};

/// One element: every word derives from the sequence number, so a torn or
/// invented element fails [`check`].
type Elem = [u64; 8];

/// [`variant`], plus the ring's `WouldBlock`.
fn what(e: &Error) -> &'static str {
    if matches!(e, Error::WouldBlock) { "WouldBlock" } else { variant(e) }
}

fn make(seq: u64) -> Elem {
    let mut e = [0u64; 8];
    e[0] = seq;
    for (k, w) in e.iter_mut().enumerate().skip(1) {
        *w = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(8 * k as u32) ^ (k as u64);
    }
    e
}

fn check(e: &Elem) -> Result<u64, String> {
    if *e == make(e[0]) { Ok(e[0]) } else { Err(format!("torn or invented element {e:x?}")) }
}

/// Byte offsets of the ring header's words in the segment's file.
mod words {
    use super::hdr;
    pub(super) const HEAD: u64 = hdr::SIZE;
    pub(super) const TAIL: u64 = hdr::SIZE + 128;
    pub(super) const CAPACITY: u64 = hdr::SIZE + 256;
    pub(super) const ELEM_SIZE: u64 = hdr::SIZE + 264;
}

// ---------------------------------------------------------------------------
// Roles
// ---------------------------------------------------------------------------

/// Role `ring_producer`: opens ring `NAME`, takes the producer role (says
/// `claimed`, or `refused <variant>`), then produces `COUNT` elements from
/// `START` (forever if `COUNT` is 0), alternating single pushes, batches
/// and loans written one word at a time. With `STALL` set, it instead
/// produces `COUNT` elements, then reserves a loan, half-writes it, says
/// `stalled` and waits for its parent without committing.
pub(crate) fn role_ring_producer() {
    let ring = SpscRing::<Elem>::open(&arg("NAME")).expect("open ring");
    let start: u64 = arg_num("START");
    let count: u64 = arg_num("COUNT");
    let stall = harness::arg_opt("STALL").is_some();
    let mut tx = match ring.producer() {
        Ok(tx) => tx,
        Err(e) => {
            say(format!("refused {}", what(&e)));
            return;
        }
    };
    say("claimed");
    let end = if count == 0 { u64::MAX } else { start + count };
    let mut seq = start;
    let mut step = 0u64;
    while seq < end {
        step += 1;
        let room = (end - seq).min(8) as usize;
        let pushed = match step % 3 {
            0 => usize::from(tx.push(make(seq)).pushed().is_ok()),
            1 => {
                let batch: Vec<Elem> = (seq..seq + room as u64).map(make).collect();
                tx.push_slice(&batch).expect("push_slice")
            }
            _ => {
                let loan = tx.reserve(room).expect("reserve");
                let n = loan.len();
                for (k, slot) in loan.iter_mut().enumerate() {
                    let e = make(seq + k as u64);
                    for (w, v) in slot.iter_mut().zip(e) {
                        *w = v;
                        std::hint::spin_loop();
                    }
                }
                tx.commit(n);
                n
            }
        };
        seq += pushed as u64;
        if pushed == 0 {
            std::thread::yield_now();
        }
    }
    if stall {
        let loan = tx.reserve(4).expect("reserve");
        assert!(!loan.is_empty(), "room for the stalled loan");
        for (k, slot) in loan.iter_mut().enumerate() {
            slot[..4].copy_from_slice(&make(seq + k as u64)[..4]); // half an element
            slot[7] = 0xdead_beef;
        }
        say("stalled");
        harness::wait_for_parent();
        return;
    }
    say(format!("done {seq}"));
}

/// Pops from `rx` until `want` more elements arrived (checking each is the
/// next in sequence from `*next`) or, with `want` 0, until the ring stays
/// empty. Panics on a torn, invented or out-of-order element, and at the
/// hang guard.
fn consume(rx: &mut shmproc::Consumer<Elem>, next: &mut u64, want: u64) {
    let deadline = Instant::now() + HANG_GUARD;
    let goal = *next + want;
    let mut buf = [[0u64; 8]; 16];
    loop {
        let got = match rx.pop_into(&mut buf) {
            Ok(n) => n,
            // The producer died and the ring is drained.
            Err(Error::Disconnected) if want == 0 => return,
            Err(e) => panic!("pop_into: {e:?}"),
        };
        for e in &buf[..got] {
            let seq = check(e).unwrap_or_else(|m| panic!("after {}: {m}", *next));
            assert_eq!(seq, *next, "out of order: expected {}, got {seq}", *next);
            *next += 1;
        }
        if want == 0 && got == 0 {
            return;
        }
        if want != 0 && *next >= goal {
            return;
        }
        if got == 0 {
            assert!(Instant::now() < deadline, "hang guard: stream stalled at {}", *next);
            std::thread::yield_now();
        }
    }
}

/// Case 13: a producer SIGKILLed mid-stream, several times; each time the
/// consumer sees only whole elements in order, and a new producer process
/// takes the role over and continues the stream.
#[test]
fn case13_producer_killed_mid_stream_then_taken_over() {
    let ctx = Ctx::new("ring13");
    let name = ctx.name("ring");
    let ring = SpscRing::<Elem>::create(&name, 64).expect("create");
    let mut rx = ring.consumer().expect("consumer");
    let mut next = 0u64;
    for round in 0..4u64 {
        ctx.step(format!("round {round}: streaming"));
        let mut p =
            ctx.child("ring_producer").arg("NAME", &name).arg("START", next.to_string()).arg("COUNT", "0").start();
        assert_eq!(p.line(), "claimed", "round {round}: the new producer takes the role over");
        assert!(matches!(ring.producer(), Err(Error::WouldBlock)), "a live producer keeps the role");
        // Let it run into a full ring and wrap many times, then kill it
        // at a point that varies with timing (mid-push, mid-loan, or
        // spinning on a full ring).
        consume(&mut rx, &mut next, 20_000 + round * 7_919);
        if round % 2 == 1 {
            std::thread::sleep(Duration::from_millis(3));
        }
        p.kill_and_reap();
        ctx.step(format!("round {round}: draining"));
        consume(&mut rx, &mut next, 0);
        assert!(ring.is_empty(), "nothing appears after the drain");
        // Case 13: once drained, the dead producer is reported (the probe
        // is rate-limited: within a few ms).
        harness::wait_until("Disconnected after the drain", || match rx.pop() {
            Err(PopError::Disconnected) => true,
            Err(PopError::Empty) => false,
            other => panic!("pop after the drain: {other:?}"),
        });
        assert_eq!(rx.try_iter().count(), 0, "a disconnected ring ends the iteration, without an error");
    }
    // A last producer finishes a bounded stream normally.
    let mut p =
        ctx.child("ring_producer").arg("NAME", &name).arg("START", next.to_string()).arg("COUNT", "5000").start();
    assert_eq!(p.line(), "claimed");
    let end = next + 5000;
    consume(&mut rx, &mut next, 5000);
    assert_eq!(p.expect("done"), end.to_string());
    p.finish();
    assert_eq!(next, end);
    assert_eq!(rx.pop().popped(), None);
    assert!(ring.producer().is_ok(), "the role is free after the last producer exited");
    drop(rx);
    drop(ring);
    ctx.finish();
}

/// Case 13 proper: a producer killed after reserving (and half-writing) a
/// loan, before its commit: the half-written slots never reach the
/// consumer, and the next producer overwrites them.
#[test]
fn case13_producer_killed_between_reserve_and_commit() {
    let ctx = Ctx::new("ring13loan");
    let name = ctx.name("ring");
    let ring = SpscRing::<Elem>::create(&name, 16).expect("create");
    let mut rx = ring.consumer().expect("consumer");
    let mut next = 0u64;
    for round in 0..3u64 {
        let count = 5 + round * 3; // moves the loan across the wrap point
        let mut p = ctx
            .child("ring_producer")
            .arg("NAME", &name)
            .arg("START", next.to_string())
            .arg("COUNT", count.to_string())
            .arg("STALL", "1")
            .start();
        assert_eq!(p.line(), "claimed");
        consume(&mut rx, &mut next, count);
        assert_eq!(p.line(), "stalled");
        assert_eq!(rx.pop().popped(), None, "an uncommitted loan is invisible");
        assert!(rx.peek(16).expect("peek").is_empty());
        p.kill_and_reap();
        // The dead producer's loan stays invisible: the ring reads as
        // drained, and the death is reported (within the probe interval).
        harness::wait_until("Disconnected after the kill", || match rx.pop() {
            Err(PopError::Disconnected) => true,
            Err(PopError::Empty) => false,
            other => panic!("the dead producer's loan became visible: {other:?}"),
        });
        assert!(rx.peek(16).is_err_and(|e| matches!(e, Error::Disconnected)));
        assert_eq!(ring.len(), 0);
    }
    let mut p =
        ctx.child("ring_producer").arg("NAME", &name).arg("START", next.to_string()).arg("COUNT", "100").start();
    assert_eq!(p.line(), "claimed", "a new producer takes over from the dead one");
    consume(&mut rx, &mut next, 100);
    p.expect("done");
    p.finish();
    assert_eq!(rx.pop().popped(), None);
    drop(rx);
    drop(ring);
    ctx.finish();
}

/// Checks an operation's outcome: `Ok` (or a ring found empty or full, as
/// `Err(Empty)` and `Err(Full)`) or `Err(Corrupt)`; returns whether it was
/// `Corrupt`.
pub(crate) fn ok_or_corrupt<T>(op: &str, r: shmproc::Result<T>) -> bool {
    match r {
        Ok(_) | Err(Error::Empty | Error::Full) => false,
        Err(Error::Corrupt { .. }) => true,
        Err(e) => panic!("{op}: unexpected error {e:?}"),
    }
}

/// Role `ring_hostile`: creates ring `NAME` (capacity 64), says `ready`,
/// and runs a producer thread and a consumer thread through every copying
/// operation (plus reserve and peek; with `LOANS` set also commit and
/// release) until the parent closes stdin, while the parent writes garbage
/// into the ring's words. Every result must be `Ok` or `Err(Corrupt)`,
/// and every slice length within bounds. Says `done <ops> <corrupt>`.
pub(crate) fn role_ring_hostile() {
    let name = arg("NAME");
    let loans = harness::arg_opt("LOANS").is_some();
    let ring = SpscRing::<u64>::create(&name, 64).expect("create");
    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(AtomicU64::new(0));
    let corrupt = Arc::new(AtomicU64::new(0));
    let mut tx = ring.producer().expect("producer");
    let mut rx = ring.consumer().expect("consumer");
    let (s1, o1, c1) = (Arc::clone(&stop), Arc::clone(&ops), Arc::clone(&corrupt));
    let producer = std::thread::spawn(move || {
        let mut i = 0u64;
        while !s1.load(Ordering::Relaxed) {
            i += 1;
            let bad = match i % 3 {
                0 => match tx.push(i) {
                    Ok(()) | Err(PushError::Full(_)) => false,
                    Err(PushError::Failed(v, e)) => {
                        assert_eq!(v, i, "a failed push gives its value back");
                        ok_or_corrupt::<()>("push", Err(e))
                    }
                    Err(e) => panic!("push: unexpected {e:?}"),
                },
                1 => ok_or_corrupt("push_slice", tx.push_slice(&[i; 100]).inspect(|&n| assert!(n <= 100))),
                _ => match tx.reserve(1000) {
                    Ok(loan) => {
                        assert!(loan.len() <= 64, "loan of {} slots from a ring of 64", loan.len());
                        loan.fill(i);
                        let n = loan.len();
                        if loans {
                            tx.commit(n);
                        }
                        false
                    }
                    Err(e) => ok_or_corrupt::<()>("reserve", Err(e)),
                },
            };
            o1.fetch_add(1, Ordering::Relaxed);
            c1.fetch_add(u64::from(bad), Ordering::Relaxed);
        }
    });
    let (s2, o2, c2) = (Arc::clone(&stop), Arc::clone(&ops), Arc::clone(&corrupt));
    let consumer = std::thread::spawn(move || {
        let mut buf = [0u64; 100];
        let mut i = 0u64;
        while !s2.load(Ordering::Relaxed) {
            i += 1;
            let bad = match i % 3 {
                0 => ok_or_corrupt("pop", rx.pop().map_err(Error::from)),
                1 => ok_or_corrupt("pop_into", rx.pop_into(&mut buf).inspect(|&n| assert!(n <= 100))),
                _ => match rx.peek(1000) {
                    Ok(loan) => {
                        assert!(loan.len() <= 64, "loan of {} slots from a ring of 64", loan.len());
                        let n = loan.len();
                        std::hint::black_box(loan.iter().sum::<u64>());
                        if loans {
                            rx.release(n);
                        }
                        false
                    }
                    Err(e) => ok_or_corrupt::<()>("peek", Err(e)),
                },
            };
            o2.fetch_add(1, Ordering::Relaxed);
            c2.fetch_add(u64::from(bad), Ordering::Relaxed);
        }
    });
    say("ready");
    while let Some(c) = command() {
        if c == "exit" {
            break;
        }
        // A reader's view while the words are garbage: no crash.
        assert!(ring.len() <= ring.capacity());
        let _ = ring.is_empty();
        let _ = format!("{ring:?}");
        say("ack");
    }
    stop.store(true, Ordering::Relaxed);
    producer.join().expect("producer thread");
    consumer.join().expect("consumer thread");
    say(format!("done {} {}", ops.load(Ordering::Relaxed), corrupt.load(Ordering::Relaxed)));
}

fn hostile_run(ctx: &Ctx, loans: bool) {
    let name = ctx.name("ring");
    let mut cmd = ctx.child("ring_hostile").arg("NAME", &name);
    if loans {
        cmd = cmd.arg("LOANS", "1");
    }
    let mut h = cmd.start();
    assert_eq!(h.line(), "ready");
    harness::garbage_rounds(ctx, &mut h, &shm_path(&name), 0x35 + u64::from(loans), |rng, round| {
        let off = [words::HEAD, words::TAIL, words::CAPACITY, words::ELEM_SIZE][(round % 4) as usize];
        (off, harness::garbage_value(rng, round))
    });
}

/// Case 35, ring part: garbage in head, tail, capacity and elem_size while
/// a producer and a consumer copy values: every operation is `Ok` or
/// `Err(Corrupt)`, never a crash or an out-of-bounds access.
#[test]
fn case35_garbage_ring_words_under_copying_operations() {
    let ctx = Ctx::new("ring35");
    hostile_run(&ctx, false);
    ctx.finish();
}

/// As above, with loans committed and released. (A deterministic
/// write between `reserve` and `commit` is in
/// `case35_garbage_between_reserve_and_commit_does_not_panic`; here the
/// window is short, as in real use, so the bug shows only sometimes.)
#[test]
fn case35_garbage_ring_words_under_loans() {
    let ctx = Ctx::new("ring35loan");
    hostile_run(&ctx, true);
    ctx.finish();
}

/// Role `ring_open_garbage`: creates ring `NAME` (capacity 64 of u64),
/// writes garbage into its capacity and elem_size words one at a time and
/// reports each open's outcome and each role claim's outcome on a handle
/// opened before the damage: `open <value> <outcome>` and
/// `claim <value> <outcome>`; finally `reclaim <outcome>` after repairing
/// the words, and `end`.
pub(crate) fn role_ring_open_garbage() {
    let name = arg("NAME");
    let ring = SpscRing::<u64>::create(&name, 64).expect("create");
    let path = shm_path(&name);
    let early = SpscRing::<u64>::open(&name).expect("open before the damage");
    let show = |r: &shmproc::Result<SpscRing<u64>>| match r {
        Ok(r) => format!("Ok {}", r.capacity()),
        Err(e) => variant(e).to_owned(),
    };
    let cases: [(u64, u64); 9] = [
        (words::CAPACITY, 128),
        (words::CAPACITY, 1 << 20),
        (words::CAPACITY, 1 << 62),
        (words::CAPACITY, u64::MAX),
        (words::CAPACITY, 0),
        (words::CAPACITY, 48),
        (words::ELEM_SIZE, 4),
        (words::ELEM_SIZE, u64::MAX),
        (words::CAPACITY, 32),
    ];
    for (off, v) in cases {
        poke(&path, off, &v.to_ne_bytes());
        let which = if off == words::CAPACITY { "capacity" } else { "elem_size" };
        say(format!("open {which}={v} {}", show(&SpscRing::<u64>::open(&name))));
        let claim = match early.producer() {
            Ok(_) => "Ok".to_owned(),
            Err(e) => what(&e).to_owned(),
        };
        say(format!("claim {which}={v} {claim}"));
        poke(&path, words::CAPACITY, &64u64.to_ne_bytes());
        poke(&path, words::ELEM_SIZE, &8u64.to_ne_bytes());
    }
    let r = match early.producer() {
        Ok(_) => "Ok".to_owned(),
        Err(e) => what(&e).to_owned(),
    };
    say(format!("reclaim {r}"));
    drop(early);
    drop(ring);
    say("end");
}

/// Runs `ring_open_garbage` and returns its (kind, field, outcome) lines.
fn open_garbage_lines(ctx: &Ctx) -> Vec<(String, String, String)> {
    let name = ctx.name("ring");
    let mut h = ctx.child("ring_open_garbage").arg("NAME", &name).start();
    let mut lines = Vec::new();
    loop {
        let l = h.line();
        if l == "end" {
            break;
        }
        let mut w = l.splitn(3, ' ').map(str::to_owned);
        let kind = w.next().unwrap_or_default();
        let field = w.next().unwrap_or_default();
        let outcome = w.next().unwrap_or_default();
        lines.push((kind, field, outcome));
    }
    h.wait_ok();
    lines
}

/// Case 35: opening a ring whose capacity word exceeds its segment (or
/// makes no sense, or whose elem_size is wrong) is `Err(Corrupt)`, never a
/// handle that reads past the end; a smaller power of two stays inside the
/// segment and may be accepted. Claims on a handle opened before the
/// damage never succeed while the words are garbage.
#[test]
fn case35_open_with_garbage_capacity_is_an_error() {
    let ctx = Ctx::new("ring35open");
    let lines = open_garbage_lines(&ctx);
    ctx.finish();
    let opens: Vec<_> = lines.iter().filter(|l| l.0 == "open").collect();
    assert_eq!(opens.len(), 9, "{lines:?}");
    for (_, field, outcome) in opens {
        if field == "capacity=32" {
            assert!(outcome == "Ok 32" || outcome == "Corrupt", "open {field}: {outcome}");
        } else {
            assert_eq!(outcome, "Corrupt", "open {field}");
        }
    }
    for (_, field, outcome) in lines.iter().filter(|l| l.0 == "claim") {
        if field != "capacity=32" {
            // WouldBlock here is the leaked claim reported below.
            assert!(outcome == "Corrupt" || outcome == "WouldBlock", "claim {field}: {outcome}");
        }
    }
}

/// A claim refused because the header is garbage must not keep the role:
/// once the words are repaired, the role can be taken.
#[test]
fn case35_a_claim_refused_as_corrupt_gives_the_role_back() {
    let ctx = Ctx::new("ring35claim");
    let lines = open_garbage_lines(&ctx);
    ctx.finish();
    for (kind, field, outcome) in &lines {
        if kind == "claim" && field != "capacity=32" {
            assert_eq!(outcome, "Corrupt", "claim {field}");
        }
    }
    let re: Vec<_> = lines.iter().filter(|l| l.0 == "reclaim").collect();
    assert_eq!(re.len(), 1);
    assert_eq!(re[0].1, "Ok", "the role is free once the header is sane again");
}

/// A hostile write of the consumer's position between `reserve` and
/// `commit` must not panic the honest producer (the loan is its own).
#[test]
fn case35_garbage_between_reserve_and_commit_does_not_panic() {
    let ctx = Ctx::new("ring35commit");
    let name = ctx.name("ring");
    let ring = SpscRing::<u64>::create(&name, 8).expect("create");
    let mut tx = ring.producer().expect("producer");
    let loan = tx.reserve(4).expect("reserve");
    assert_eq!(loan.len(), 4);
    loan.fill(1);
    poke(&shm_path(&name), words::HEAD, &(1u64 << 40).to_ne_bytes());
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| tx.commit(4)));
    poke(&shm_path(&name), words::HEAD, &0u64.to_ne_bytes());
    drop(tx);
    drop(ring);
    ctx.finish();
    assert!(r.is_ok(), "commit panicked on a peer's garbage");
}

/// Every outcome of a push and a pop, on a ring whose words the test
/// writes itself: `Full` with the value back, `Empty`, and `Failed` (the
/// value back too) once a position is garbage; the iterator yields the
/// failure once, then ends, and carries on once the words are sane again.
#[test]
fn case35_garbage_positions_fail_push_and_pop_with_the_value_back() {
    let ctx = Ctx::new("ring35outcome");
    let name = ctx.name("ring");
    let path = shm_path(&name);
    let ring = SpscRing::<u64>::create(&name, 4).expect("create");
    let mut tx = ring.producer().expect("producer");
    let mut rx = ring.consumer().expect("consumer");
    assert!(matches!(rx.pop(), Err(PopError::Empty)));
    assert_eq!(rx.try_iter().count(), 0, "an empty ring ends the iteration at once");
    assert_eq!(tx.push_slice(&[1, 2, 3, 4]).expect("push_slice"), 4);
    assert!(matches!(tx.push(5), Err(PushError::Full(5))), "a full ring gives the value back");

    // The producer reloads `head` only when its copy shows no room: now.
    poke(&path, words::HEAD, &(1u64 << 40).to_ne_bytes());
    match tx.push(6) {
        Err(PushError::Failed(v, Error::Corrupt { .. })) => assert_eq!(v, 6, "the value comes back"),
        other => panic!("push over a garbage head: {other:?}"),
    }
    assert!(matches!(tx.push_slice(&[7]), Err(Error::Corrupt { .. })));
    poke(&path, words::HEAD, &0u64.to_ne_bytes());
    assert!(matches!(tx.push(6), Err(PushError::Full(6))), "sane again");

    // The consumer has not loaded `tail` since it was 0: garbage there.
    poke(&path, words::TAIL, &u64::MAX.to_ne_bytes());
    assert!(matches!(rx.pop(), Err(PopError::Failed(Error::Corrupt { .. }))));
    let mut it = rx.try_iter();
    assert!(matches!(it.next(), Some(Err(Error::Corrupt { .. }))), "the failure is yielded");
    assert!(it.next().is_none(), "then the iteration ends");
    assert!(it.next().is_none(), "and stays ended");
    poke(&path, words::TAIL, &4u64.to_ne_bytes());
    let got: Vec<u64> = (&mut rx).into_iter().collect::<Result<_, _>>().expect("sane again");
    assert_eq!(got, [1, 2, 3, 4], "`for v in &mut rx` is try_iter");
    drop((tx, rx, ring));
    ctx.finish();
}
