//! The MPMC ring against dying, stopped and hostile peers: RELIABILITY
//! cases 14 (one of 4 producers SIGKILLed mid-reservation at a failpoint:
//! its slot becomes a tombstone once the OS confirms the death, and no live
//! value is lost or repeated), 15 (a producer SIGSTOPped for 5 s holding a
//! reservation is not declared dead, and its commit lands after SIGCONT),
//! 16 (a consumer killed after claiming a slot and before releasing it: the
//! slot is reclaimed and producers go on), and the MPMC part of 35 (garbage
//! in head, tail, capacity, element size and slot words while producers and
//! consumers run: every operation is `Ok` or `Err(Corrupt)`).
//!
//! Hostile operations run in helpers, so a SIGSEGV or SIGBUS shows as a
//! helper killed by a signal instead of taking the test binary down.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};
use shmproc::{Error, MpmcConsumer, MpmcPopError, MpmcProducer, MpmcPushError, MpmcRing};

use crate::harness::{self, Ctx, HANG_GUARD, Helper, arg, arg_num, command, hdr, poke, say, shm_path, variant};
use crate::outcome::{Lent, Popped, Pushed};
use crate::ring::ok_or_corrupt;

/// One element (64 bytes): producer, sequence number, and words derived
/// from both, so a torn or invented element fails [`check`].
type Elem = [u64; 8];

fn make(p: u64, seq: u64) -> Elem {
    let mut e = [0u64; 8];
    e[0] = p;
    e[1] = seq;
    for (k, w) in e.iter_mut().enumerate().skip(2) {
        *w = (seq ^ (p << 48)).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(8 * k as u32) ^ (k as u64);
    }
    e
}

/// `(producer, seq)` of a whole element.
fn check(e: &Elem) -> (u64, u64) {
    assert!(*e == make(e[0], e[1]), "torn or invented element {e:x?}");
    (e[0], e[1])
}

/// Byte offsets of the ring's words in its segment's file.
mod words {
    use super::hdr;
    pub(super) const HEAD: u64 = hdr::SIZE;
    pub(super) const TAIL: u64 = hdr::SIZE + 128;
    pub(super) const CAPACITY: u64 = hdr::SIZE + 256;
    pub(super) const ELEM_SIZE: u64 = hdr::SIZE + 264;
    /// Slot word `i`.
    pub(super) fn slot(i: u64) -> u64 {
        hdr::SIZE + 384 + 8 * i
    }
}

fn signal(h: &Helper, sig: Signal) {
    let pid = Pid::from_raw(h.pid() as i32).expect("a helper's pid");
    kill_process(pid, sig).expect("kill(2)");
}

/// Dispatches the helper roles of this area.
pub(crate) fn run_role(role: &str) {
    match role {
        "mpmc_producer" => role_producer(),
        "mpmc_stall" => role_stall(),
        "mpmc_consumer" => role_consumer(),
        "mpmc_hostile" => role_hostile(),
        "mpmc_open_garbage" => role_open_garbage(),
        other => panic!("unknown mpmc role {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Producers and consumers

/// Role `mpmc_producer`: opens ring `NAME` and pushes elements `0..COUNT`
/// of producer `P`, cycling through single pushes, batches and loans (full:
/// yield). Says `ready`, then `done <COUNT>`. Armed with the failpoint
/// `mpmc.push.after_claim@<k>`, it dies at its k-th claim.
fn role_producer() {
    let ring = MpmcRing::<Elem>::open(&arg("NAME")).expect("open ring");
    let p: u64 = arg_num("P");
    let count: u64 = arg_num("COUNT");
    let mut tx = ring.producer().expect("producer");
    say("ready");
    let deadline = Instant::now() + HANG_GUARD;
    let mut seq = 0;
    let mut step = 0u64;
    while seq < count {
        step += 1;
        let pushed = match step % 3 {
            0 => u64::from(tx.push(make(p, seq)).pushed().is_ok()),
            1 => {
                let batch: Vec<Elem> = (seq..count.min(seq + 8)).map(|s| make(p, s)).collect();
                tx.push_slice(&batch).expect("push_slice") as u64
            }
            _ => match tx.reserve().lent() {
                Some(mut loan) => {
                    // Word by word, so a torn write would show.
                    for (w, v) in loan.iter_mut().zip(make(p, seq)) {
                        *w = v;
                        std::hint::spin_loop();
                    }
                    loan.commit();
                    1
                }
                None => 0,
            },
        };
        seq += pushed;
        if pushed == 0 {
            assert!(Instant::now() < deadline, "hang guard: the ring stayed full");
            std::thread::yield_now();
        }
    }
    say(format!("done {seq}"));
}

/// Role `mpmc_stall`: opens ring `NAME`, pushes elements `0..PRE` of
/// producer `P`, reserves a slot and writes element `PRE` into it, says
/// `reserved`, and waits for the line `commit`; then commits, says
/// `committed`, pushes `PRE+1 ..= PRE+POST`, says `done`, and waits for its
/// parent.
fn role_stall() {
    let ring = MpmcRing::<Elem>::open(&arg("NAME")).expect("open ring");
    let p: u64 = arg_num("P");
    let pre: u64 = arg_num("PRE");
    let post: u64 = arg_num("POST");
    let mut tx = ring.producer().expect("producer");
    let push = |tx: &mut MpmcProducer<Elem>, seq| {
        let deadline = Instant::now() + HANG_GUARD;
        while tx.push(make(p, seq)).pushed().is_err() {
            assert!(Instant::now() < deadline, "hang guard: the ring stayed full");
            std::thread::yield_now();
        }
    };
    for seq in 0..pre {
        push(&mut tx, seq);
    }
    let mut loan = tx.reserve().expect("room for the reservation");
    *loan = make(p, pre);
    say("reserved");
    assert_eq!(command().as_deref(), Some("commit"));
    loan.commit();
    say("committed");
    for seq in pre + 1..=pre + post {
        push(&mut tx, seq);
    }
    say("done");
    harness::wait_for_parent();
}

/// Role `mpmc_consumer`: opens ring `NAME` and pops forever, saying
/// `got <p> <seq>` for each element (armed with `mpmc.pop.after_claim@<k>`,
/// it dies at its k-th claim). With `HOLD` set it instead takes one element
/// as a read loan, says `holding <p> <seq>` and waits for its parent.
fn role_consumer() {
    let ring = MpmcRing::<Elem>::open(&arg("NAME")).expect("open ring");
    let mut rx = ring.consumer().expect("consumer");
    say("ready");
    let deadline = Instant::now() + HANG_GUARD;
    if harness::arg_opt("HOLD").is_some() {
        loop {
            if let Some(loan) = rx.peek().popped() {
                let (p, seq) = check(&loan);
                say(format!("holding {p} {seq}"));
                harness::wait_for_parent();
                return;
            }
            assert!(Instant::now() < deadline, "hang guard: nothing to hold");
            std::thread::yield_now();
        }
    }
    loop {
        match rx.pop().popped() {
            Some(e) => {
                let (p, seq) = check(&e);
                say(format!("got {p} {seq}"));
            }
            None => {
                assert!(Instant::now() < deadline, "hang guard: nothing to pop");
                std::thread::yield_now();
            }
        }
    }
}

/// What one consumer saw: per producer, the sequence numbers in order.
#[derive(Default)]
struct Seen(BTreeMap<u64, Vec<u64>>);

impl Seen {
    fn add(&mut self, e: &Elem) {
        let (p, seq) = check(e);
        let v = self.0.entry(p).or_default();
        assert!(v.last().is_none_or(|&l| l < seq), "producer {p}: {seq} after {:?} (out of order or twice)", v.last());
        v.push(seq);
    }

    fn of(&self, p: u64) -> &[u64] {
        self.0.get(&p).map_or(&[], |v| v)
    }

    /// Pops from `rx` until `done(self)`, mixing single pops, batches and
    /// read loans (hang guard).
    fn drain_until(&mut self, rx: &mut MpmcConsumer<Elem>, what: &str, done: impl Fn(&Seen) -> bool) {
        let deadline = Instant::now() + HANG_GUARD;
        let mut buf = [[0u64; 8]; 5];
        let mut step = 0u32;
        while !done(self) {
            step += 1;
            let n = match step % 3 {
                0 => match rx.pop().popped() {
                    Some(e) => {
                        self.add(&e);
                        1
                    }
                    None => 0,
                },
                1 => {
                    let n = rx.pop_into(&mut buf).expect("pop_into");
                    for e in &buf[..n] {
                        self.add(e);
                    }
                    n
                }
                _ => match rx.peek().popped() {
                    Some(loan) => {
                        self.add(&loan);
                        1
                    }
                    None => 0,
                },
            };
            if n == 0 {
                assert!(Instant::now() < deadline, "hang guard: {what}");
                std::thread::yield_now();
            }
        }
    }
}

/// Case 14: one of 4 producer processes SIGKILLed mid-reservation (the
/// failpoint `mpmc.push.after_claim` on its k-th claim, k varied): the
/// abandoned slot becomes a tombstone once the OS confirms the death, the
/// consumer skips it, every survivor's values arrive exactly once and in
/// order (per-producer sequence numbers), and the dead producer's committed
/// values arrive at most once, in order, with no gap.
#[test]
fn case14_a_producer_killed_mid_reservation_is_tombstoned() {
    const PER: u64 = 5_000;
    let ctx = Ctx::new("mpmc14");
    for (round, k) in [1u64, 37, 700].into_iter().enumerate() {
        let name = ctx.name(&format!("ring{round}"));
        let ring = MpmcRing::<Elem>::create(&name, 32).expect("create");
        let mut rx = ring.consumer().expect("consumer");
        ctx.step(format!("round {round}: starting producers"));
        let mut producers: Vec<Helper> = (0..4u64)
            .map(|p| {
                let mut c = ctx.child("mpmc_producer").arg("NAME", &name).arg("P", p.to_string());
                c = c.arg("COUNT", PER.to_string());
                if p == 3 {
                    c = c.failpoint(&format!("mpmc.push.after_claim@{k}"));
                }
                c.start()
            })
            .collect();
        for h in &mut producers {
            assert_eq!(h.line(), "ready");
        }
        ctx.step(format!("round {round}: consuming"));
        // Keep consuming until the victim is dead: it dies only at its k-th
        // claim, which needs room in the ring.
        let mut victim = producers.pop().expect("the victim");
        let dead = Arc::new(AtomicBool::new(false));
        let reaper = {
            let dead = Arc::clone(&dead);
            std::thread::spawn(move || {
                victim.wait_killed();
                dead.store(true, Ordering::Relaxed);
                victim
            })
        };
        let mut seen = Seen::default();
        seen.drain_until(&mut rx, "survivors' values and the victim's death", |s| {
            (0..3).all(|p| s.of(p).len() as u64 == PER) && dead.load(Ordering::Relaxed)
        });
        let victim = reaper.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
        for h in &mut producers {
            assert_eq!(h.expect("done"), PER.to_string());
            h.wait_ok();
        }
        // Anything the victim committed and we did not see yet.
        seen.drain_until(&mut rx, "the rest", |_| ring.is_empty());
        assert_eq!(rx.pop().popped(), None, "nothing after the drain");
        drop(victim);
        for p in 0..3 {
            assert_eq!(seen.of(p), (0..PER).collect::<Vec<_>>(), "round {round}: survivor {p}");
        }
        let dead = seen.of(3);
        assert_eq!(dead, (0..dead.len() as u64).collect::<Vec<_>>(), "round {round}: the dead one's values");
        assert!(dead.len() as u64 <= PER, "round {round}");
        drop((rx, ring));
    }
    ctx.finish();
}

/// Case 15: a producer SIGSTOPped for 5 s while it holds a reservation is
/// not declared dead (liveness is the OS token, not time): its slot is not
/// reclaimed, nothing behind it is delivered out of order or overwritten
/// (another producer fills the ring and waits), and after SIGCONT its
/// commit lands and everything arrives intact.
#[test]
fn case15_a_stopped_producer_is_not_declared_dead() {
    const CAP: usize = 16;
    const PRE: u64 = 5;
    const POST: u64 = 20;
    const OTHER: u64 = 40;
    let ctx = Ctx::new("mpmc15");
    let name = ctx.name("ring");
    let ring = MpmcRing::<Elem>::create(&name, CAP).expect("create");
    let mut rx = ring.consumer().expect("consumer");
    let mut stall = ctx
        .child("mpmc_stall")
        .arg("NAME", &name)
        .arg("P", "0")
        .arg("PRE", PRE.to_string())
        .arg("POST", POST.to_string())
        .start();
    assert_eq!(stall.line(), "reserved");
    let mut seen = Seen::default();
    seen.drain_until(&mut rx, "the values before the reservation", |s| s.of(0).len() as u64 == PRE);
    signal(&stall, Signal::STOP);
    ctx.step("producer stopped");
    let mut other = ctx.child("mpmc_producer").arg("NAME", &name).arg("P", "1").arg("COUNT", OTHER.to_string()).start();
    assert_eq!(other.line(), "ready");
    // 5 s of polling: every pop finds the stopped producer's slot first and
    // must wait; the liveness probe runs many times and says "alive".
    let stop_until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < stop_until {
        assert_eq!(rx.pop().popped().map(|e| check(&e)), None, "nothing passes the reserved slot");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(ring.len(), CAP, "the other producer filled the ring behind the reservation");
    signal(&stall, Signal::CONT);
    stall.send("commit");
    assert_eq!(stall.line(), "committed", "the commit of the stopped producer succeeded");
    ctx.step("draining after SIGCONT");
    seen.drain_until(&mut rx, "everything after SIGCONT", |s| {
        s.of(0).len() as u64 == PRE + 1 + POST && s.of(1).len() as u64 == OTHER
    });
    assert_eq!(seen.of(0), (0..=PRE + POST).collect::<Vec<_>>(), "the reserved value arrived intact, in order");
    assert_eq!(seen.of(1), (0..OTHER).collect::<Vec<_>>());
    assert_eq!(other.expect("done"), OTHER.to_string());
    other.wait_ok();
    assert_eq!(stall.line(), "done");
    stall.finish();
    assert_eq!(rx.pop().popped(), None);
    drop((rx, ring));
    ctx.finish();
}

/// Pushes `seqs` of producer 9 from this process, waiting while the ring
/// is full; fails at the hang guard.
fn push_all(tx: &mut MpmcProducer<Elem>, seqs: std::ops::Range<u64>) {
    let deadline = Instant::now() + HANG_GUARD;
    for seq in seqs {
        while tx.push(make(9, seq)).pushed().is_err() {
            assert!(Instant::now() < deadline, "hang guard: the producer is stuck behind a dead consumer's slot");
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

/// Case 16: a consumer process killed after claiming a slot and before
/// releasing it (the failpoint `mpmc.pop.after_claim` on its k-th claim):
/// the producer reaching that slot a lap later reclaims it once the OS
/// confirms the death, and never spins forever. Exactly the one claimed
/// value is lost; every other value is consumed exactly once.
#[test]
fn case16_a_consumer_killed_mid_claim_is_reclaimed() {
    const CAP: usize = 8;
    const N: u64 = 200;
    let ctx = Ctx::new("mpmc16");
    for (round, k) in [1u64, 5, 50].into_iter().enumerate() {
        let name = ctx.name(&format!("ring{round}"));
        let ring = MpmcRing::<Elem>::create(&name, CAP).expect("create");
        let mut tx = ring.producer().expect("producer");
        let mut victim =
            ctx.child("mpmc_consumer").arg("NAME", &name).failpoint(&format!("mpmc.pop.after_claim@{k}")).start();
        assert_eq!(victim.line(), "ready");
        ctx.step(format!("round {round}: feeding the victim"));
        // Exactly k values for the victim, so its k-th claim is the last.
        push_all(&mut tx, 0..k);
        victim.wait_killed();
        let theirs: Vec<u64> = victim
            .remaining_lines()
            .iter()
            .map(|l| {
                let rest = l.strip_prefix("got 9 ").unwrap_or_else(|| panic!("unexpected line {l:?}"));
                rest.parse().expect("a sequence number")
            })
            .collect();
        assert_eq!(theirs, (0..k - 1).collect::<Vec<_>>(), "round {round}: the victim's pops before its death");
        // The victim holds value k - 1's slot. Push a full lap and more:
        // the push that reaches that slot must reclaim it.
        ctx.step(format!("round {round}: pushing past the dead claim"));
        let mut rx = ring.consumer().expect("consumer");
        let mut seen = Seen::default();
        let mut next = k;
        while next < k + N {
            push_all(&mut tx, next..next + CAP as u64 / 2);
            next += CAP as u64 / 2;
            seen.drain_until(&mut rx, "values after the dead claim", |s| {
                s.of(9).last().is_some_and(|&l| l + 1 == next)
            });
        }
        assert_eq!(seen.of(9), (k..k + N).collect::<Vec<_>>(), "round {round}: only value {} was lost", k - 1);
        assert_eq!(rx.pop().popped(), None);
        drop((tx, rx, ring));
    }
    ctx.finish();
}

/// Case 16 with a read loan: a consumer SIGKILLed while it holds a `peek`
/// loan loses that one value; producers reclaim its slot and go on.
#[test]
fn case16_a_consumer_killed_holding_a_read_loan_is_reclaimed() {
    const CAP: usize = 4;
    let ctx = Ctx::new("mpmc16loan");
    let name = ctx.name("ring");
    let ring = MpmcRing::<Elem>::create(&name, CAP).expect("create");
    let mut tx = ring.producer().expect("producer");
    push_all(&mut tx, 0..3);
    let mut victim = ctx.child("mpmc_consumer").arg("NAME", &name).arg("HOLD", "1").start();
    assert_eq!(victim.line(), "ready");
    assert_eq!(victim.line(), "holding 9 0");
    let mut rx = ring.consumer().expect("consumer");
    assert_eq!(rx.pop().popped().map(|e| check(&e)), Some((9, 1)), "the loan does not block later values");
    victim.kill_and_reap();
    let mut seen = Seen::default();
    let mut next = 3;
    while next < 40 {
        push_all(&mut tx, next..next + 2);
        next += 2;
        seen.drain_until(&mut rx, "values after the dead loan", |s| s.of(9).last().is_some_and(|&l| l + 1 == next));
    }
    assert_eq!(seen.of(9), (2..next).collect::<Vec<_>>(), "value 0 was lost with its reader, nothing else");
    drop((tx, rx, ring));
    ctx.finish();
}

// ---------------------------------------------------------------------------
// Hostile peers (case 35)

/// The shared state of the `mpmc_hostile` threads.
struct Hostile {
    ring: MpmcRing<u64>,
    stop: AtomicBool,
    ops: AtomicU64,
    corrupt: AtomicU64,
}

/// One thread of `mpmc_hostile`: every operation of a producer (`p` even)
/// or a consumer, in turn, with new handles now and then, until `stop`.
/// The first handles are taken before the garbage starts.
fn hostile_thread(h: &Hostile, p: u64, mut tx: MpmcProducer<u64>, mut rx: MpmcConsumer<u64>) {
    let Hostile { ring, stop, ops, corrupt } = h;
    let mut buf = [0u64; 100];
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let bad = match (p % 2, i % 4) {
            (0, 0) => match tx.push(i) {
                Ok(()) | Err(MpmcPushError::Full(_)) => false,
                Err(MpmcPushError::Failed(v, e)) => {
                    assert_eq!(v, i, "a failed push gives its value back");
                    ok_or_corrupt::<()>("push", Err(e))
                }
                Err(e) => panic!("push: unexpected {e:?}"),
            },
            (0, 1) => ok_or_corrupt("push_slice", tx.push_slice(&[i; 100]).inspect(|&n| assert!(n <= 100))),
            (0, 2) => match tx.reserve() {
                Ok(mut loan) => {
                    *loan = i;
                    if i % 8 == 2 {
                        loan.commit();
                    } // else dropped: a tombstone
                    false
                }
                Err(MpmcPushError::Full(())) => false,
                Err(e) => ok_or_corrupt::<()>("reserve", Err(e.into())),
            },
            (1, 0) => ok_or_corrupt("pop", rx.pop().map_err(Error::from)),
            (1, 1) => ok_or_corrupt("pop_into", rx.pop_into(&mut buf).inspect(|&n| assert!(n <= 100))),
            (1, 2) => match rx.peek() {
                Ok(loan) => {
                    std::hint::black_box(*loan);
                    false
                }
                Err(e) => ok_or_corrupt::<()>("peek", Err(e.into())),
            },
            // New handles validate the header as it is now.
            (0, _) => ok_or_corrupt("producer", ring.producer().map(|t| tx = t)),
            _ => ok_or_corrupt("consumer", ring.consumer().map(|r| rx = r)),
        };
        ops.fetch_add(1, Ordering::Relaxed);
        corrupt.fetch_add(u64::from(bad), Ordering::Relaxed);
    }
}

/// Role `mpmc_hostile`: creates ring `NAME` (64 slots of u64), says
/// `ready`, and runs 2 producer threads and 2 consumer threads through
/// every operation until the parent closes stdin, while the parent writes
/// garbage into the ring's words. Answers `check` with `ack` (after
/// reading `len`, `is_empty` and `Debug` of the damaged ring). Says
/// `done <ops> <corrupt>`.
fn role_hostile() {
    let ring = MpmcRing::<u64>::create(&arg("NAME"), 64).expect("create");
    let h = Arc::new(Hostile {
        ring: ring.clone(),
        stop: AtomicBool::new(false),
        ops: AtomicU64::new(0),
        corrupt: AtomicU64::new(0),
    });
    let threads: Vec<_> = (0..4)
        .map(|p| {
            let (h, tx, rx) = (Arc::clone(&h), ring.producer().expect("producer"), ring.consumer().expect("consumer"));
            std::thread::spawn(move || hostile_thread(&h, p, tx, rx))
        })
        .collect();
    say("ready");
    while let Some(c) = command() {
        assert!(ring.len() <= ring.capacity());
        let _ = (ring.is_empty(), format!("{ring:?}"));
        if c == "exit" {
            break;
        }
        say("ack");
    }
    h.stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("hostile thread");
    }
    say(format!("done {} {}", h.ops.load(Ordering::Relaxed), h.corrupt.load(Ordering::Relaxed)));
}

/// Case 35, MPMC part: garbage in head, tail, capacity, element size and
/// slot words (the extremes, random bits, and words no transition writes)
/// while 2 producers and 2 consumers run every operation (and take new
/// handles): every operation is `Ok` or `Err(Corrupt)`, never a crash, an
/// out-of-bounds access or a hang; the helper exits cleanly.
#[test]
fn case35_garbage_in_mpmc_ring_words() {
    let ctx = Ctx::new("mpmc35");
    let name = ctx.name("ring");
    let mut h = ctx.child("mpmc_hostile").arg("NAME", &name).start();
    assert_eq!(h.line(), "ready");
    harness::garbage_rounds(&ctx, &mut h, &shm_path(&name), 0x3535, |rng, round| match round % 6 {
        0 => (words::HEAD, harness::garbage_value(rng, round)),
        1 => (words::TAIL, harness::garbage_value(rng, round)),
        2 => (words::CAPACITY, harness::garbage_value(rng, round)),
        3 => (words::ELEM_SIZE, harness::garbage_value(rng, round)),
        4 => (words::slot(rng.next() % 64), harness::garbage_value(rng, round)),
        // Words no transition writes: EMPTY with an owner, WRITING with
        // none; and a READING claim by an owner id no process has.
        _ => (words::slot(rng.next() % 64), [5, (1 << 33) | (1 << 31), (3 << 31) | 1][(round % 3) as usize]),
    });
    ctx.finish();
}

/// Role `mpmc_open_garbage`: creates ring `NAME` (64 slots of u64), then
/// for each garbage capacity or element size says
/// `<field>=<value> <open outcome> <producer outcome>` (the producer taken
/// from a handle opened before the damage), repairing after each; `end`.
fn role_open_garbage() {
    let name = arg("NAME");
    let ring = MpmcRing::<u64>::create(&name, 64).expect("create");
    let path = shm_path(&name);
    let cases: [(&str, u64, u64); 8] = [
        ("capacity", words::CAPACITY, 128),
        ("capacity", words::CAPACITY, 1 << 20),
        ("capacity", words::CAPACITY, u64::MAX),
        ("capacity", words::CAPACITY, 0),
        ("capacity", words::CAPACITY, 48),
        ("elem_size", words::ELEM_SIZE, 4),
        ("elem_size", words::ELEM_SIZE, u64::MAX),
        ("capacity", words::CAPACITY, 32),
    ];
    for (field, off, v) in cases {
        poke(&path, off, &v.to_ne_bytes());
        let open = harness::outcome(&MpmcRing::<u64>::open(&name), |r| r.capacity());
        let role = match ring.producer() {
            Ok(_) => "Ok".to_owned(),
            Err(e) => variant(&e).to_owned(),
        };
        say(format!("{field}={v} {open} {role}"));
        poke(&path, words::CAPACITY, &64u64.to_ne_bytes());
        poke(&path, words::ELEM_SIZE, &8u64.to_ne_bytes());
    }
    say("end");
}

/// Case 35: a ring whose capacity exceeds its segment, is no power of two,
/// or whose element size is wrong cannot be opened, nor can handles be
/// taken from it (`Err(Corrupt)`); a smaller power of two stays inside the
/// segment and may be accepted.
#[test]
fn case35_mpmc_open_with_garbage_header_is_corrupt() {
    let ctx = Ctx::new("mpmc35open");
    let mut h = ctx.child("mpmc_open_garbage").arg("NAME", ctx.name("ring")).start();
    let mut lines = Vec::new();
    loop {
        let l = h.line();
        if l == "end" {
            break;
        }
        lines.push(l);
    }
    h.wait_ok();
    ctx.finish();
    assert_eq!(lines.len(), 8, "{lines:?}");
    for l in &lines {
        let mut w = l.split(' ');
        let (field, open, role) = (w.next().unwrap_or(""), w.next().unwrap_or(""), w.next().unwrap_or(""));
        if field == "capacity=32" {
            assert!(open == "Ok" || open == "Corrupt", "{l}");
        } else {
            assert_eq!((open, role), ("Corrupt", "Corrupt"), "{l}");
        }
    }
}

/// Every outcome of push, pop, reserve and peek, on a ring whose words the
/// test writes itself: `Full` with the value back, `Empty`, and `Failed`
/// (the value back too) for a slot word no transition writes; the iterator
/// yields the failure once, then ends, and carries on once the word is
/// sane again.
#[test]
fn case35_a_garbage_slot_word_fails_every_call_with_the_value_back() {
    let ctx = Ctx::new("mpmc35outcome");
    let name = ctx.name("ring");
    let path = shm_path(&name);
    let ring = MpmcRing::<u64>::create(&name, 4).expect("create");
    let mut tx = ring.producer().expect("producer");
    let mut rx = ring.consumer().expect("consumer");
    assert!(matches!(rx.pop(), Err(MpmcPopError::Empty)));
    assert!(matches!(rx.peek(), Err(MpmcPopError::Empty)));
    assert_eq!(rx.try_iter().count(), 0, "an empty ring ends the iteration at once");
    assert_eq!(tx.push_slice(&[1, 2, 3, 4]).expect("push_slice"), 4);
    assert!(matches!(tx.push(5), Err(MpmcPushError::Full(5))), "a full ring gives the value back");
    assert!(matches!(tx.reserve(), Err(MpmcPushError::Full(()))));

    // Slot 0 holds position 0 (read next) and position 4 (written next):
    // EMPTY with an owner is a word no transition writes.
    poke(&path, words::slot(0), &5u64.to_ne_bytes());
    match tx.push(6) {
        Err(MpmcPushError::Failed(v, Error::Corrupt { .. })) => assert_eq!(v, 6, "the value comes back"),
        other => panic!("push over a garbage word: {other:?}"),
    }
    assert!(matches!(tx.reserve(), Err(MpmcPushError::Failed((), Error::Corrupt { .. }))));
    assert!(matches!(rx.pop(), Err(MpmcPopError::Failed(Error::Corrupt { .. }))));
    assert!(matches!(rx.peek(), Err(MpmcPopError::Failed(Error::Corrupt { .. }))));
    let mut it = rx.try_iter();
    assert!(matches!(it.next(), Some(Err(Error::Corrupt { .. }))), "the failure is yielded");
    assert!(it.next().is_none(), "then the iteration ends");
    assert!(it.next().is_none(), "and stays ended");
    // FULL on lap 0 (state 2 at bit 31), as the push left it.
    poke(&path, words::slot(0), &(2u64 << 31).to_ne_bytes());
    let got: Vec<u64> = (&mut rx).into_iter().collect::<Result<_, _>>().expect("sane again");
    assert_eq!(got, [1, 2, 3, 4], "`for v in &mut rx` is try_iter");
    drop((tx, rx, ring));
    ctx.finish();
}
