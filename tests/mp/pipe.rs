//! `Pipe` and `ByteRing` against dying and hostile peers: RELIABILITY case
//! 18 (a peer SIGKILLed: `recv` returns `Disconnected`, `send` returns
//! `BrokenPipe`, a blocking iteration ends, and no process is killed by
//! SIGPIPE; also a peer killed while blocked in `send` on a full pipe, and
//! a child that received an end and died before using it), the pipe and
//! byte-ring part of case 35 (garbage in the positions and record headers
//! while a victim sends and receives: every operation is `Ok`, `Corrupt`
//! or, for timed ones, `Timeout`; never a crash or a hang, and every
//! outcome of the byte ring's calls with garbage the test writes itself),
//! and the byte-ring analogue of case 13 (a producer killed holding a
//! loan).
//!
//! As in `ring.rs`, the hostile writes come from the test process into
//! the segment's file while a helper (the victim) operates, so a crash
//! shows as a helper killed by a signal instead of taking the test binary
//! down.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use shmproc::{BytePopError, BytePushError, ByteRing, Connection, Error, Event, Pipe, Process};

use crate::harness::{self, Ctx, HANG_GUARD, Rng, arg, arg_num, command, hdr, peek, poke, say, shm_path, variant};
use crate::outcome::{Lent, Popped, Pushed};

/// Byte offsets in a pipe segment's file (segment header + payload
/// offsets of `src/channel/pipe.rs`: ends at 128 and 1024, directions at 1920 and
/// 2688, buffers from 4096).
mod pipe_words {
    use super::hdr;
    /// Direction `d`'s `head` (its `tail` is 128 bytes further).
    pub(super) const fn head(d: u64) -> u64 {
        hdr::SIZE + 1920 + d * 896
    }
    pub(super) const fn tail(d: u64) -> u64 {
        head(d) + 128
    }
    /// Byte `off` of direction `d`'s buffer of `cap` bytes.
    pub(super) const fn buf(d: u64, cap: u64, off: u64) -> u64 {
        hdr::SIZE + 4096 + d * cap + off
    }
}

/// Byte offsets in a byte ring's file.
mod ring_words {
    use super::hdr;
    pub(super) const HEAD: u64 = hdr::SIZE;
    pub(super) const TAIL: u64 = hdr::SIZE + 128;
    pub(super) const CAPACITY: u64 = hdr::SIZE + 256;
    pub(super) const BUF: u64 = hdr::SIZE + 384;
}

/// [`variant`], plus the errors of pipes and rings.
fn what(e: &Error) -> &'static str {
    match e {
        Error::Disconnected => "Disconnected",
        Error::BrokenPipe => "BrokenPipe",
        Error::Closed => "Closed",
        Error::WouldBlock => "WouldBlock",
        Error::Full => "Full",
        _ => variant(e),
    }
}

/// Runs a helper role of this area (roles are named `pipe_*`).
pub(crate) fn run_role(role: &str) {
    match role {
        "pipe_peer" => role_peer(),
        "pipe_sigpipe" => role_sigpipe(),
        "pipe_hostile" => role_pipe_hostile(),
        "pipe_ring_producer" => role_ring_producer(),
        "pipe_ring_hostile" => role_ring_hostile(),
        other => panic!("unknown pipe role {other:?}"),
    }
}

/// End `END` of the named pipe `NAME`.
fn open_end() -> Connection {
    let (a, b) = Pipe::open(&arg("NAME")).expect("open pipe");
    if arg_num::<u8>("END") == 0 { a } else { b }
}

// ---------------------------------------------------------------------------
// Case 18
// ---------------------------------------------------------------------------

/// Role `pipe_peer`: opens end `END` of pipe `NAME` and uses it (a poll
/// registers it), then by `MODE`: `hold` sends `hello`, says `ready` and
/// waits to be killed; `fill` says `filling` and sends 100-byte messages
/// until a send blocks on the full pipe (where it is killed).
fn role_peer() {
    let end = open_end();
    end.poll(Duration::ZERO).expect("poll");
    match arg("MODE").as_str() {
        "hold" => {
            end.send(&"hello").expect("send");
            say("ready");
            harness::wait_for_parent();
        }
        "fill" => {
            say("filling");
            let mut n = 0u64;
            loop {
                end.send_bytes(&[n as u8; 100]).expect("send");
                n += 1;
            }
        }
        m => panic!("unknown mode {m}"),
    }
}

/// Role `pipe_sigpipe`: restores SIGPIPE's default action (which kills a
/// process that writes to an OS pipe without readers), opens end `END` of
/// pipe `NAME`, uses it, says `ready`, and after `go` sends until the send
/// fails and receives until the receive fails; says `survived <send
/// error> <recv error>` and exits normally.
fn role_sigpipe() {
    #[allow(unsafe_code)]
    // SAFETY: signal(2) with SIG_DFL changes only this helper's disposition
    // of SIGPIPE; no handler runs.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL)
    };
    let end = open_end();
    end.poll(Duration::ZERO).expect("poll");
    say("ready");
    assert_eq!(command().as_deref(), Some("go"));
    let deadline = Instant::now() + HANG_GUARD;
    let send_err = loop {
        match end.send_bytes_timeout(b"into the void", HANG_GUARD) {
            Ok(()) => assert!(Instant::now() < deadline, "hang guard: sends to a dead peer keep succeeding"),
            Err(e) => break e,
        }
    };
    let recv_err = loop {
        match end.recv_bytes_timeout(HANG_GUARD) {
            Ok(_) => {}
            Err(e) => break e,
        }
    };
    say(format!("survived {} {}", what(&send_err.into()), what(&recv_err.into())));
}

/// A named 1024-byte duplex pipe whose end 1 a `pipe_peer` helper holds
/// (mode `hold`: it has sent `hello` and waits to be killed).
fn holding_peer(ctx: &Ctx) -> (Connection, Connection, harness::Helper) {
    let name = ctx.name("pipe");
    let (a, b) = Pipe::builder().name(&name).capacity(1024).duplex().expect("create");
    let mut peer = ctx.child("pipe_peer").arg("NAME", &name).arg("END", "1").arg("MODE", "hold").start();
    assert_eq!(peer.line(), "ready");
    (a, b, peer)
}

/// Case 18: the peer is SIGKILLed while this process is blocked in
/// `recv`: the receive returns `Disconnected` (within the liveness
/// interval), a later send `BrokenPipe`, and `poll` reports it.
#[test]
fn case18_peer_killed_recv_disconnected_send_broken() {
    let ctx = Ctx::new("pipe18");
    let (a, b, mut peer) = holding_peer(&ctx);
    assert_eq!(a.recv_timeout::<String>(HANG_GUARD).expect("hello"), "hello");
    let a2 = a.clone();
    let blocked = std::thread::spawn(move || a2.recv_timeout::<String>(HANG_GUARD));
    std::thread::sleep(Duration::from_millis(30));
    ctx.step("killing the peer");
    peer.kill_and_reap();
    let r = blocked.join().expect("receiver thread");
    assert!(matches!(r, Err(shmproc::RecvTimeoutError::Disconnected)), "blocked recv after the peer died: {r:?}");
    assert!(matches!(a.recv::<String>().map_err(Error::from), Err(Error::Disconnected)));
    assert!(matches!(a.send(&"anyone?").map_err(Error::from), Err(Error::BrokenPipe)));
    assert!(
        matches!(a.send_bytes(&vec![0u8; 10_000]).map_err(Error::from), Err(Error::BrokenPipe)),
        "a spilled send too"
    );
    assert!(a.poll(Duration::ZERO).expect("poll"), "poll: recv would return at once");
    drop((a, b));
    ctx.finish();
}

/// Case 18: the peer is SIGKILLed while this process iterates over its
/// messages: the blocking iteration yields what it sent and ends.
#[test]
fn case18_peer_killed_ends_a_blocking_iteration() {
    let ctx = Ctx::new("pipe18iter");
    let (a, b, mut peer) = holding_peer(&ctx);
    let a2 = a.clone();
    let iterating = std::thread::spawn(move || a2.iter::<String>().collect::<shmproc::Result<Vec<_>>>());
    ctx.step("killing the peer");
    peer.kill_and_reap();
    let got = iterating.join().expect("iterating thread").expect("decoded");
    assert_eq!(got, ["hello"], "what the peer sent, then the end");
    assert_eq!(a.iter::<String>().count(), 0, "ends at once now");
    drop((a, b));
    ctx.finish();
}

/// Case 18: the peer is killed while blocked in `send` on a full pipe:
/// what it sent is received whole, then `Disconnected`.
#[test]
fn case18_peer_killed_while_blocked_in_send_on_a_full_pipe() {
    let ctx = Ctx::new("pipe18fill");
    let name = ctx.name("pipe");
    let (a, b) = Pipe::builder().name(&name).capacity(1024).duplex().expect("create");
    let mut peer = ctx.child("pipe_peer").arg("NAME", &name).arg("END", "1").arg("MODE", "fill").start();
    assert_eq!(peer.line(), "filling");
    // 1024 bytes hold 9 records of 112 bytes: wait until the peer's
    // direction (1) shows them published, so its tenth send has no room.
    let path = shm_path(&name);
    harness::wait_until("the pipe to fill", || {
        let tail = u64::from_ne_bytes(harness::peek(&path, pipe_words::tail(1), 8).try_into().expect("8 bytes"));
        tail & ((1 << 40) - 1) >= 9 * 112
    });
    std::thread::sleep(Duration::from_millis(20)); // likely asleep in that send by now (not relied on)
    peer.kill_and_reap();
    let mut n = 0u64;
    let end = loop {
        match a.recv_bytes_timeout(HANG_GUARD) {
            Ok(m) => {
                assert_eq!(m, vec![n as u8; 100], "message {n} whole");
                n += 1;
            }
            Err(e) => break e,
        }
    };
    assert!(matches!(end, shmproc::RecvTimeoutError::Disconnected), "after the drain: {end:?}");
    assert!(n >= 9, "the full pipe's messages were delivered ({n})");
    assert!(matches!(a.send(&1u8).map_err(Error::from), Err(Error::BrokenPipe)));
    drop((a, b));
    ctx.finish();
}

/// Case 18: a process whose peer died is not killed by SIGPIPE (it has
/// SIGPIPE's default action): its sends fail with `BrokenPipe` and its
/// receives with `Disconnected`, and it exits normally.
#[test]
fn case18_no_sigpipe_for_a_writer_whose_peer_died() {
    let ctx = Ctx::new("pipe18sig");
    let name = ctx.name("pipe");
    let (a, b) = Pipe::builder().name(&name).capacity(1024).duplex().expect("create");
    let mut peer = ctx.child("pipe_peer").arg("NAME", &name).arg("END", "1").arg("MODE", "hold").start();
    assert_eq!(peer.line(), "ready");
    let mut writer = ctx.child("pipe_sigpipe").arg("NAME", &name).arg("END", "0").start();
    assert_eq!(writer.line(), "ready");
    peer.kill_and_reap();
    writer.send("go");
    // The peer's "hello" is delivered first, then the pipe is empty.
    assert_eq!(writer.expect("survived"), "BrokenPipe Disconnected");
    writer.wait_ok();
    drop((a, b));
    ctx.finish();
}

/// A child's task: says it started, then waits (it is killed).
fn sleeper((_end, started): (Connection, Event)) {
    started.set();
    std::thread::sleep(HANG_GUARD);
}

/// Case 18: a child that received an end as an argument and was killed
/// before it ever used it still counts as its holder: the other end gets
/// `Disconnected` and `BrokenPipe`, not a hang.
#[test]
fn case18_child_received_an_end_and_died_before_using_it() {
    let ctx = Ctx::new("pipe18unused");
    let (a, b) = Pipe::new().expect("pipe");
    let started = Event::new().expect("event");
    let mut child = Process::spawn(sleeper, (b, started.clone())).expect("spawn");
    assert!(started.wait_timeout(HANG_GUARD).is_ok(), "hang guard: the child did not start");
    child.kill().expect("kill");
    assert!(child.join().is_err(), "the child was killed");
    assert!(matches!(a.recv_timeout::<u8>(HANG_GUARD).map_err(Error::from), Err(Error::Disconnected)));
    assert!(matches!(a.send(&1u8).map_err(Error::from), Err(Error::BrokenPipe)));
    ctx.finish();
}

// ---------------------------------------------------------------------------
// Case 35
// ---------------------------------------------------------------------------

/// Checks an operation's outcome: `Ok`, `Err(Corrupt)` or `Err(Timeout)`;
/// returns whether it was `Corrupt`.
fn accepted<T, E: Into<Error>>(op: &str, r: Result<T, E>) -> bool {
    match r.map_err(Into::into) {
        Ok(_) | Err(Error::Timeout) => false,
        Err(Error::Corrupt { .. }) => true,
        Err(e) => panic!("{op}: unexpected error {e:?}"),
    }
}

/// A byte ring push's (or loan's) outcome for [`accepted`]: a full ring
/// is not a failure.
fn unless_full<T>(r: Result<T, BytePushError>) -> shmproc::Result<()> {
    match r {
        Ok(_) | Err(BytePushError::Full(())) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// A byte ring pop's (or loan's) outcome for [`accepted`]: an empty ring
/// is not a failure.
fn unless_empty<T>(r: Result<T, BytePopError>) -> shmproc::Result<()> {
    match r {
        Ok(_) | Err(BytePopError::Empty) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The honest payload: never starts with "spill." (so a record whose tag
/// was garbled into a spill reference is refused as corrupt).
const FILL: u8 = 0xab;

/// Role `pipe_hostile`: creates pipe `NAME` (1024 bytes per direction),
/// says `ready`, and runs a sender and a receiver thread on each
/// direction with timed operations (2 ms) until the parent closes stdin,
/// while the parent writes garbage into the positions and record headers.
/// Every result must be `Ok`, `Corrupt` or `Timeout`, and every received
/// message no longer than the ring allows. Says `done <ops> <corrupt>`.
fn role_pipe_hostile() {
    let (a, b) = Pipe::builder().name(&arg("NAME")).capacity(1024).duplex().expect("create");
    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(AtomicU64::new(0));
    let corrupt = Arc::new(AtomicU64::new(0));
    let short = Duration::from_millis(2);
    let mut threads = Vec::new();
    for (tx, rx) in [(a.clone(), b.clone()), (b, a)] {
        let (s, o, c) = (Arc::clone(&stop), Arc::clone(&ops), Arc::clone(&corrupt));
        threads.push(std::thread::spawn(move || {
            let mut i = 0usize;
            while !s.load(Ordering::Relaxed) {
                i += 1;
                let len = (i * 37) % 200;
                let bad = if i.is_multiple_of(2) {
                    accepted("send_bytes_timeout", tx.send_bytes_timeout(&vec![FILL; len], short))
                } else {
                    accepted(
                        "try_send_bytes",
                        tx.try_send_bytes(&vec![FILL; len]).or_else(|e| match e {
                            shmproc::TrySendError::Full(()) => Ok(()),
                            e => Err(e),
                        }),
                    )
                };
                o.fetch_add(1, Ordering::Relaxed);
                c.fetch_add(u64::from(bad), Ordering::Relaxed);
            }
        }));
        let (s, o, c) = (Arc::clone(&stop), Arc::clone(&ops), Arc::clone(&corrupt));
        threads.push(std::thread::spawn(move || {
            let mut buf = Vec::new();
            let mut i = 0usize;
            while !s.load(Ordering::Relaxed) {
                i += 1;
                let bad = match i % 3 {
                    0 => accepted("recv_bytes_timeout", rx.recv_bytes_timeout(short).map(|m| m.len())),
                    1 => accepted("poll", rx.poll(short).map(|_| 0)),
                    _ => accepted(
                        "try_recv_bytes",
                        rx.try_recv_bytes().map(|m| m.len()).or_else(|e| match e {
                            shmproc::TryRecvError::Empty => Ok(0),
                            e => Err(e),
                        }),
                    ),
                };
                if let Ok(m) = rx.try_recv_bytes() {
                    assert!(m.len() <= 504, "a message of {} bytes from a 1024-byte ring", m.len());
                    buf = m;
                }
                o.fetch_add(1, Ordering::Relaxed);
                c.fetch_add(u64::from(bad), Ordering::Relaxed);
            }
            drop(buf);
        }));
    }
    say("ready");
    while let Some(c) = command() {
        if c == "exit" {
            break;
        }
        say("ack");
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("victim thread");
    }
    say(format!("done {} {}", ops.load(Ordering::Relaxed), corrupt.load(Ordering::Relaxed)));
}

/// Runs the victim `role` on a segment of its own and writes garbage at
/// the offsets `target` picks (see [`harness::garbage_rounds`]).
fn hostile_run(ctx: &Ctx, role: &str, target: impl Fn(&mut Rng, u64) -> u64) {
    let name = ctx.name("victim");
    let mut h = ctx.child(role).arg("NAME", &name).start();
    assert_eq!(h.line(), "ready");
    harness::garbage_rounds(ctx, &mut h, &shm_path(&name), 0x3535, |rng, round| {
        let off = target(rng, round);
        (off, harness::garbage_value(rng, round))
    });
}

/// Case 35, pipe part: garbage in both directions' positions and in
/// record headers while threads send and receive: every operation is
/// `Ok`, `Corrupt` or `Timeout`, never a crash or a hang.
#[test]
fn case35_garbage_in_pipe_positions_and_record_headers() {
    let ctx = Ctx::new("pipe35");
    hostile_run(&ctx, "pipe_hostile", |rng, round| {
        let d = round % 2;
        match (round / 2) % 3 {
            0 => pipe_words::head(d),
            1 => pipe_words::tail(d),
            _ => pipe_words::buf(d, 1024, (rng.next() % 128) * 8), // a record header, or payload
        }
    });
    ctx.finish();
}

/// Role `pipe_ring_hostile`: creates byte ring `NAME` (1024 bytes), says
/// `ready`, and runs a producer thread (push, reserve + commit) and a
/// consumer thread (pop, pop_into, peek) until the parent closes stdin.
/// Every result must be `Ok`, `Full`, `Empty` or `Corrupt`, and every
/// message and loan within bounds. Says `done <ops> <corrupt>`.
fn role_ring_hostile() {
    let ring = ByteRing::create(&arg("NAME"), 1024).expect("create");
    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(AtomicU64::new(0));
    let corrupt = Arc::new(AtomicU64::new(0));
    let mut tx = ring.producer().expect("producer");
    let mut rx = ring.consumer().expect("consumer");
    let (s1, o1, c1) = (Arc::clone(&stop), Arc::clone(&ops), Arc::clone(&corrupt));
    let producer = std::thread::spawn(move || {
        let mut i = 0usize;
        while !s1.load(Ordering::Relaxed) {
            i += 1;
            let len = (i * 41) % 505;
            let bad = if i.is_multiple_of(2) {
                accepted("push", unless_full(tx.push(&vec![FILL; len])))
            } else {
                match tx.reserve(len) {
                    Ok(mut loan) => {
                        assert_eq!(loan.len(), len);
                        loan.fill(FILL);
                        loan.commit(len / 2);
                        false
                    }
                    r => accepted("reserve", unless_full(r)),
                }
            };
            o1.fetch_add(1, Ordering::Relaxed);
            c1.fetch_add(u64::from(bad), Ordering::Relaxed);
        }
    });
    let (s2, o2, c2) = (Arc::clone(&stop), Arc::clone(&ops), Arc::clone(&corrupt));
    let consumer = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let mut i = 0usize;
        while !s2.load(Ordering::Relaxed) {
            i += 1;
            let bad = match i % 3 {
                0 => accepted("pop", unless_empty(rx.pop().inspect(|m| assert!(m.len() <= 504)))),
                1 => accepted("pop_into", unless_empty(rx.pop_into(&mut buf).inspect(|&n| assert!(n <= 504)))),
                _ => match rx.peek() {
                    Ok(loan) => {
                        assert!(loan.len() <= 504, "a loan of {} bytes from a 1024-byte ring", loan.len());
                        std::hint::black_box(loan.iter().map(|&b| u64::from(b)).sum::<u64>());
                        false
                    }
                    r => accepted("peek", unless_empty(r)),
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
        assert!(ring.len() <= ring.capacity());
        let _ = (ring.is_empty(), format!("{ring:?}"));
        say("ack");
    }
    stop.store(true, Ordering::Relaxed);
    producer.join().expect("producer thread");
    consumer.join().expect("consumer thread");
    say(format!("done {} {}", ops.load(Ordering::Relaxed), corrupt.load(Ordering::Relaxed)));
}

/// Case 35, byte-ring part: garbage in head, tail, capacity and record
/// headers under copies and loans: `Ok` or `Corrupt`, never a crash.
#[test]
fn case35_garbage_in_byte_ring_positions_and_record_headers() {
    let ctx = Ctx::new("bring35");
    hostile_run(&ctx, "pipe_ring_hostile", |rng, round| match round % 4 {
        0 => ring_words::HEAD,
        1 => ring_words::TAIL,
        2 => ring_words::CAPACITY,
        _ => ring_words::BUF + (rng.next() % 128) * 8,
    });
    ctx.finish();
}

// ---------------------------------------------------------------------------
// Case 13 analogue for the byte ring
// ---------------------------------------------------------------------------

/// Message `seq`: its length and every byte derive from `seq`, so a torn
/// or invented message fails [`check`].
fn message(seq: u64) -> Vec<u8> {
    let len = 8 + (seq as usize * 13) % 300;
    let mut m = vec![(seq as u8) ^ 0x5a; len];
    m[..8].copy_from_slice(&seq.to_le_bytes());
    m
}

fn check(m: &[u8]) -> u64 {
    assert!(m.len() >= 8, "a message of {} bytes", m.len());
    let seq = u64::from_le_bytes(m[..8].try_into().expect("8 bytes"));
    assert_eq!(m, message(seq).as_slice(), "torn or invented message {seq}");
    seq
}

/// Role `pipe_ring_producer`: opens byte ring `NAME`, takes the producer
/// role (says `claimed`), pushes messages `START..START+COUNT` (loans and
/// copies alternating), then with `STALL` reserves a loan, writes half of
/// the next message into it, says `stalled` and waits to be killed;
/// without, says `done`.
fn role_ring_producer() {
    let ring = ByteRing::open(&arg("NAME")).expect("open");
    let mut tx = ring.producer().expect("producer role");
    say("claimed");
    let start: u64 = arg_num("START");
    let deadline = Instant::now() + HANG_GUARD;
    for seq in start..start + arg_num::<u64>("COUNT") {
        let m = message(seq);
        loop {
            let sent = if seq % 2 == 0 {
                tx.push(&m).pushed().is_ok()
            } else if let Some(mut loan) = tx.reserve(m.len()).lent() {
                loan.copy_from_slice(&m);
                loan.commit(m.len());
                true
            } else {
                false
            };
            if sent {
                break;
            }
            assert!(Instant::now() < deadline, "hang guard: the consumer stalled");
            std::thread::yield_now();
        }
    }
    if harness::arg_opt("STALL").is_some() {
        let seq = start + arg_num::<u64>("COUNT");
        let m = message(seq);
        // The consumer may not have drained the last messages yet: wait
        // for room (hang guard as above).
        let deadline = Instant::now() + HANG_GUARD;
        let mut loan = loop {
            // Re-borrowed each round: a `Full` ends the borrow.
            if tx.reserve(m.len()).lent().is_some() {
                break tx.reserve(m.len()).expect("room just seen");
            }
            assert!(Instant::now() < deadline, "hang guard: no room for the stalled loan");
            std::thread::yield_now();
        };
        loan[..m.len() / 2].copy_from_slice(&m[..m.len() / 2]);
        say("stalled");
        harness::wait_for_parent();
        loan[0] = 0; // the loan lives until here (never committed)
    }
    say("done");
}

/// Pops messages until `count` arrived in order from `*next`.
fn consume(rx: &mut shmproc::ByteConsumer, next: &mut u64, count: u64) {
    for _ in 0..count {
        let mut got = None;
        harness::wait_until("the next message", || {
            got = rx.pop().popped();
            got.is_some()
        });
        assert_eq!(check(&got.expect("popped")), *next, "out of order");
        *next += 1;
    }
}

/// Case 13, byte ring: a producer killed holding a half-written loan: the
/// consumer never sees it (no torn message), reports `Disconnected` once
/// drained, and a new producer takes the role over and continues.
#[test]
fn case13_byte_ring_producer_killed_holding_a_loan() {
    let ctx = Ctx::new("bring13");
    let name = ctx.name("ring");
    let ring = ByteRing::create(&name, 2048).expect("create");
    let mut rx = ring.consumer().expect("consumer");
    let mut next = 0u64;
    for round in 0..3u64 {
        let count = 20 + round * 7; // moves the loan across the wrap point
        let mut p = ctx
            .child("pipe_ring_producer")
            .arg("NAME", &name)
            .arg("START", next.to_string())
            .arg("COUNT", count.to_string())
            .arg("STALL", "1")
            .start();
        assert_eq!(p.line(), "claimed");
        consume(&mut rx, &mut next, count);
        assert_eq!(p.line(), "stalled");
        assert!(rx.peek().popped().is_none(), "an uncommitted loan is invisible");
        p.kill_and_reap();
        harness::wait_until("Disconnected after the kill", || match rx.pop() {
            Err(BytePopError::Disconnected) => true,
            Err(BytePopError::Empty) => false,
            other => panic!("the dead producer's loan became visible: {:?}", other.map(|m| m.len())),
        });
        assert!(matches!(rx.peek(), Err(BytePopError::Disconnected)));
        assert!(matches!(rx.pop_into(&mut Vec::new()), Err(BytePopError::Disconnected)));
        assert_eq!(rx.try_iter().count(), 0, "a disconnected ring ends the iteration, without an error");
        assert!(ring.is_empty());
    }
    let mut p =
        ctx.child("pipe_ring_producer").arg("NAME", &name).arg("START", next.to_string()).arg("COUNT", "100").start();
    assert_eq!(p.line(), "claimed", "a new producer takes over from the dead one");
    consume(&mut rx, &mut next, 100);
    assert_eq!(p.line(), "done");
    p.finish();
    assert!(matches!(rx.pop(), Err(BytePopError::Empty)), "the producer left normally: empty, not disconnected");
    drop((rx, ring));
    ctx.finish();
}

/// Every outcome of the byte ring's calls, on a ring whose words the test
/// writes itself: `Full` and `Empty`, `Failed` with `TooLarge` (the ring
/// stays usable), and `Failed` with `Corrupt` once a position or a record
/// header is garbage; the iterator yields the failure once, then ends, and
/// carries on once the words are sane again.
#[test]
fn case35_garbage_words_fail_byte_ring_push_and_pop() {
    let ctx = Ctx::new("bring35outcome");
    let name = ctx.name("ring");
    let path = shm_path(&name);
    let ring = ByteRing::create(&name, 1024).expect("create");
    let mut tx = ring.producer().expect("producer");
    let mut rx = ring.consumer().expect("consumer");
    assert!(matches!(rx.pop(), Err(BytePopError::Empty)));
    assert_eq!(rx.try_iter().count(), 0, "an empty ring ends the iteration at once");
    let too_large = |r: Result<(), BytePushError>| {
        matches!(r, Err(BytePushError::Failed((), Error::TooLarge { len: 505, max: 504 })))
    };
    assert!(too_large(tx.push(&[0; 505])));
    assert!(too_large(tx.reserve(505).map(drop)));
    // 20-byte messages take 32-byte records: 32 fill the ring.
    let mut n = 0u8;
    while tx.push(&[n; 20]).pushed().is_ok() {
        n += 1;
    }
    assert_eq!(n, 32);
    assert!(matches!(tx.push(&[0; 20]), Err(BytePushError::Full(()))));
    assert!(matches!(tx.reserve(1), Err(BytePushError::Full(()))));

    // The producer reloads `head` only when its copy shows no room: now.
    let head = peek(&path, ring_words::HEAD, 8);
    poke(&path, ring_words::HEAD, &(1u64 << 39).to_ne_bytes());
    assert!(matches!(tx.push(b"x"), Err(BytePushError::Failed((), Error::Corrupt { .. }))));
    assert!(matches!(tx.reserve(1), Err(BytePushError::Failed((), Error::Corrupt { .. }))));
    poke(&path, ring_words::HEAD, &head);
    assert!(matches!(tx.push(b"x"), Err(BytePushError::Full(()))), "sane again");

    // The consumer has not loaded `tail` since it was 0: garbage there.
    let tail = peek(&path, ring_words::TAIL, 8);
    poke(&path, ring_words::TAIL, &(1u64 << 39).to_ne_bytes());
    assert!(matches!(rx.pop(), Err(BytePopError::Failed(Error::Corrupt { .. }))));
    assert!(matches!(rx.pop_into(&mut Vec::new()), Err(BytePopError::Failed(Error::Corrupt { .. }))));
    assert!(matches!(rx.peek(), Err(BytePopError::Failed(Error::Corrupt { .. }))));
    let mut it = rx.try_iter();
    assert!(matches!(it.next(), Some(Err(Error::Corrupt { .. }))), "the failure is yielded");
    assert!(it.next().is_none(), "then the iteration ends");
    assert!(it.next().is_none(), "and stays ended");
    poke(&path, ring_words::TAIL, &tail);
    assert_eq!(rx.pop().expect("sane again"), [0; 20]);

    // The next record's header claims more bytes than were published.
    let header = peek(&path, ring_words::BUF + 32, 8);
    poke(&path, ring_words::BUF + 32, &[0xff; 8]);
    assert!(matches!(rx.peek(), Err(BytePopError::Failed(Error::Corrupt { .. }))));
    assert!(matches!(rx.pop(), Err(BytePopError::Failed(Error::Corrupt { .. }))));
    poke(&path, ring_words::BUF + 32, &header);
    let got: Vec<Vec<u8>> = (&mut rx).into_iter().collect::<shmproc::Result<_>>().expect("sane again");
    assert_eq!(got, (1..n).map(|k| vec![k; 20]).collect::<Vec<_>>(), "`for m in &mut rx` is try_iter");
    tx.push(&[0; 504]).expect("room again, for the longest message");
    drop((tx, rx, ring));
    ctx.finish();
}
