//! Pipes and byte rings between two processes, against an OS pipe and a
//! Unix stream socket, side by side:
//!
//! - `pipe_64B_round_trip`: a 64-byte message to a peer process and back,
//!   through a shmproc [`Pipe`] (`send_bytes` / `recv_bytes_into`), an OS
//!   pipe pair (the peer's stdin and stdout) and a Unix stream socket;
//!   with steady traffic, and `*_after_sleep`: the parent sleeps about
//!   1 ms before each round trip (not timed), so the peer is asleep in its
//!   receive when the message comes (a wake-up on each side).
//! - `bytes_one_way`: messages of 64 B, 4 KiB and 1 MiB streamed from the
//!   peer through a [`ByteRing`] (copies: `push` / `pop_into`), an OS pipe
//!   and a Unix socket; and at 1 MiB the ring's loans (`reserve` +
//!   `commit`, `peek`), which write and read only the message's first 8
//!   bytes in place: the hand-off alone, what zero-copy costs whatever the
//!   size.
//!
//! A peer process (this binary re-executed with `SHMPROC_BENCH_ROLE=peer`)
//! opens the parent's named pipe (end 1) and byte ring (producer) and
//! connects to its socket; each `iter_custom` call sends it a command and a
//! count over its stdin. Every message carries its sequence number in its
//! first 8 bytes, which the receiver checks. Processes are pinned to two
//! CPUs while the groups run (`SHMPROC_BENCH_PIN=0` turns that off).
//!
//! After each group a summary line gives the medians, the ratios and
//! whether docs/performance.md's targets are met: Pipe round trip with steady
//! traffic <= 1/30 of the OS pipe's and below 0.9 us; after the peer slept,
//! no worse than the OS pipe; 1 MiB messages >= 5x the OS pipe and >= 1.5x
//! the Unix socket, loans independent of size.
//!
//! Run with `cargo bench --bench pipe` (about two minutes).

mod common;

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{LazyPeer, PeerProcess, Pinning, Recorder, SAMPLES, is_role, measuring, timed};
use criterion::{Criterion, Throughput};
use shmproc::{BytePopError, ByteRing, Connection, Pipe};

const PIPE_ENV: &str = "SHMPROC_BENCH_PIPE";
const RING_ENV: &str = "SHMPROC_BENCH_RING";
const SOCK_ENV: &str = "SHMPROC_BENCH_SOCK";
/// With a number: instead of criterion, `rounds` blocks of 50 round trips
/// after a nap, shmproc Pipe and OS pipe interleaved, and the percentiles
/// of each (a profile of the idle-gap case that one noisy median hides).
const PROFILE_ENV: &str = "SHMPROC_BENCH_IDLE_PROFILE";

/// The round-trip message.
const RT_LEN: usize = 64;
/// The byte ring's buffer: room for two 1 MiB messages.
const RING_CAPACITY: usize = 4 << 20;
/// One-way message sizes.
const SIZES: [(usize, &str); 3] = [(64, "64B"), (4096, "4KiB"), (1 << 20, "1MiB")];

/// Peer commands: one byte, the count (8 bytes LE), the size (8 bytes LE).
const CMD_PIPE_RT: u8 = b'P';
const CMD_OS_RT: u8 = b'O';
const CMD_SOCK_RT: u8 = b'U';
const CMD_RING: u8 = b'B';
const CMD_RING_LOAN: u8 = b'L';
const CMD_OS_STREAM: u8 = b'W';
const CMD_SOCK_STREAM: u8 = b'S';

/// How long one side waits for the other before it gives up.
const HANG_GUARD: Duration = Duration::from_secs(10);
/// The parent's sleep before each round trip of the `*_after_sleep` cases.
const NAP: Duration = Duration::from_millis(1);

const RT_GROUP: &str = "pipe_64B_round_trip";
const BYTES_GROUP: &str = "bytes_one_way";

fn main() {
    if is_role("peer") {
        peer_main();
        return;
    }
    let pinning = Pinning::new();
    if let Some(rounds) = std::env::var(PROFILE_ENV).ok().and_then(|v| v.parse().ok()) {
        idle_gap_profile(&LazyPeer::new(pinning.peer_cpu, Peer::start), rounds);
        return;
    }
    let mut c = Criterion::default().without_plots().configure_from_args();
    let peer = LazyPeer::new(pinning.peer_cpu, Peer::start);
    let rec = Recorder::default();
    round_trips(&mut c, &peer, &rec);
    one_way(&mut c, &peer, &rec);
    drop(peer);
    drop(pinning);
    if measuring() {
        for line in [rt_summary(&rec), bytes_summary(&rec)].into_iter().flatten() {
            println!("{line}");
        }
    }
    c.final_summary();
}

fn round_trips(c: &mut Criterion, peer: &LazyPeer<Peer>, rec: &Recorder) {
    let mut group = c.benchmark_group(RT_GROUP);
    group.throughput(Throughput::Elements(1));
    group.sample_size(SAMPLES);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    timed(&mut group, rec, "shmproc_pipe", |n| peer.with(|p| p.round_trips(CMD_PIPE_RT, n, None)));
    timed(&mut group, rec, "os_pipe", |n| peer.with(|p| p.round_trips(CMD_OS_RT, n, None)));
    timed(&mut group, rec, "unix_socket", |n| peer.with(|p| p.round_trips(CMD_SOCK_RT, n, None)));
    // Each iteration also sleeps (untimed): keep the iteration counts low.
    group.warm_up_time(Duration::from_millis(100));
    group.measurement_time(Duration::from_millis(200));
    timed(&mut group, rec, "shmproc_pipe_after_sleep", |n| peer.with(|p| p.round_trips(CMD_PIPE_RT, n, Some(NAP))));
    timed(&mut group, rec, "os_pipe_after_sleep", |n| peer.with(|p| p.round_trips(CMD_OS_RT, n, Some(NAP))));
    timed(&mut group, rec, "unix_socket_after_sleep", |n| peer.with(|p| p.round_trips(CMD_SOCK_RT, n, Some(NAP))));
    group.finish();
}

/// See [`PROFILE_ENV`].
fn idle_gap_profile(peer: &LazyPeer<Peer>, rounds: usize) {
    let kinds = [(CMD_PIPE_RT, "shmproc_pipe"), (CMD_OS_RT, "os_pipe")];
    let mut samples = vec![Vec::new(); kinds.len()];
    for _ in 0..rounds {
        for (k, (cmd, _)) in kinds.iter().enumerate() {
            peer.with(|p| p.round_trips_each(*cmd, 50, NAP, &mut samples[k]));
        }
    }
    for ((_, name), s) in kinds.iter().zip(&mut samples) {
        s.sort();
        let at = |q: f64| s[((s.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
        println!(
            "{name}_after_sleep: n {} min {:.1} p10 {:.1} p25 {:.1} median {:.1} p75 {:.1} p90 {:.1} us",
            s.len(),
            at(0.0),
            at(0.1),
            at(0.25),
            at(0.5),
            at(0.75),
            at(0.9)
        );
    }
}

fn one_way(c: &mut Criterion, peer: &LazyPeer<Peer>, rec: &Recorder) {
    let mut group = c.benchmark_group(BYTES_GROUP);
    group.sample_size(SAMPLES);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    for (size, label) in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        let name = |what: &str| -> &'static str { Box::leak(format!("{what}_{label}").into_boxed_str()) };
        timed(&mut group, rec, name("byte_ring"), |n| peer.with(|p| p.stream(CMD_RING, size, n)));
        if size == 1 << 20 {
            timed(&mut group, rec, name("byte_ring_loan"), |n| peer.with(|p| p.stream(CMD_RING_LOAN, size, n)));
        }
        timed(&mut group, rec, name("os_pipe"), |n| peer.with(|p| p.stream(CMD_OS_STREAM, size, n)));
        timed(&mut group, rec, name("unix_socket"), |n| peer.with(|p| p.stream(CMD_SOCK_STREAM, size, n)));
    }
    group.finish();
}

fn rt_summary(rec: &Recorder) -> Option<String> {
    let us = |name: &str| rec.median(name).map(|s| s * 1e6);
    let (pipe, os, sock) = (us("shmproc_pipe")?, us("os_pipe")?, us("unix_socket")?);
    let mut line = format!(
        "{RT_GROUP}: steady: shmproc Pipe {pipe:.2} us, OS pipe {os:.1} us (1/{:.0}), Unix socket {sock:.1} us (1/{:.0}); \
         target <= 1/30 of the OS pipe and < 0.9 us: {}",
        os / pipe,
        sock / pipe,
        if os / pipe >= 30.0 && pipe < 0.9 { "met" } else { "missed" }
    );
    if let (Some(p), Some(o), Some(s)) =
        (us("shmproc_pipe_after_sleep"), us("os_pipe_after_sleep"), us("unix_socket_after_sleep"))
    {
        line += &format!(
            "; after the peer slept: shmproc Pipe {p:.1} us, OS pipe {o:.1} us ({:.2}x), Unix socket {s:.1} us; \
             target no worse than the OS pipe: {}",
            p / o,
            if p <= o { "met" } else { "missed" }
        );
    }
    Some(line)
}

fn bytes_summary(rec: &Recorder) -> Option<String> {
    let gbs = |name: &str, size: usize| rec.median(name).map(|s| size as f64 / s / 1e9);
    let mut parts = Vec::new();
    let mut verdict = String::new();
    for (size, label) in SIZES {
        let ring = gbs(&format!("byte_ring_{label}"), size)?;
        let os = gbs(&format!("os_pipe_{label}"), size)?;
        let sock = gbs(&format!("unix_socket_{label}"), size)?;
        parts.push(format!(
            "{label}: ring {ring:.2} GB/s ({:.1}x pipe, {:.1}x socket), pipe {os:.2}, socket {sock:.2}",
            ring / os,
            ring / sock
        ));
        if size == 1 << 20 {
            let met = ring / os >= 5.0 && ring / sock >= 1.5;
            verdict = format!("target 1 MiB >= 5x pipe and >= 1.5x socket: {}", if met { "met" } else { "missed" });
            if let Some(loan) = rec.median(&format!("byte_ring_loan_{label}")) {
                let small = rec.median("byte_ring_64B").unwrap_or(f64::NAN);
                parts.push(format!(
                    "1MiB loaned: {:.2} us per message ({:.0} GB/s equivalent; a 64 B copy takes {:.2} us)",
                    loan * 1e6,
                    size as f64 / loan / 1e9,
                    small * 1e6
                ));
            }
        }
    }
    Some(format!("{BYTES_GROUP}: {}; {verdict}", parts.join("; ")))
}

/// Writes `seq` into the first 8 bytes of `msg`.
#[inline]
fn stamp(msg: &mut [u8], seq: u64) {
    msg[..8].copy_from_slice(&seq.to_le_bytes());
}

/// Checks that `msg` has `len` bytes and is message `seq`.
#[inline]
fn check(msg: &[u8], len: usize, seq: u64) {
    assert_eq!(msg.len(), len, "message length");
    assert_eq!(u64::from_le_bytes(msg[..8].try_into().expect("8 bytes")), seq, "message out of order or corrupt");
}

/// Spinning, then yielding, on an empty or full ring; fails after the
/// hang guard.
fn wait(since: &mut Option<Instant>, spins: &mut u32, what: &str) {
    if *spins < 64 {
        *spins += 1;
        std::hint::spin_loop();
        return;
    }
    let t = *since.get_or_insert_with(Instant::now);
    assert!(t.elapsed() < HANG_GUARD, "{what} for {HANG_GUARD:?}: the other process died?");
    std::thread::yield_now();
}

// ---------------------------------------------------------------------------
// The parent

struct Peer {
    link: PeerProcess,
    conn: Connection,
    rx: shmproc::ByteConsumer,
    sock: UnixStream,
    buf: Vec<u8>,
    sock_path: std::path::PathBuf,
}

impl Peer {
    fn start(cpu: Option<usize>) -> Peer {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let tag = format!("{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let pipe_name = format!("bench-pipe-{tag}");
        let ring_name = format!("bench-bytes-{tag}");
        let sock_path = std::env::temp_dir().join(format!("shmproc-bench-{tag}.sock"));
        let (conn, _other) = Pipe::builder().name(&pipe_name).capacity(64 * 1024).duplex().expect("create the pipe");
        let ring = ByteRing::create(&ring_name, RING_CAPACITY).expect("create the byte ring");
        let rx = ring.consumer().expect("consumer role");
        let listener = UnixListener::bind(&sock_path).expect("bind the socket");
        let link = PeerProcess::start("pipe bench", cpu, |cmd| {
            cmd.env(PIPE_ENV, &pipe_name).env(RING_ENV, &ring_name).env(SOCK_ENV, &sock_path);
        });
        let (sock, _) = listener.accept().expect("accept the peer");
        let mut peer = Peer { link, conn, rx, sock, buf: vec![0; 1 << 20], sock_path };
        // Every path once before anything is timed.
        for cmd in [CMD_PIPE_RT, CMD_OS_RT, CMD_SOCK_RT] {
            peer.round_trips(cmd, 1000, None);
        }
        for (size, _) in SIZES {
            for cmd in [CMD_RING, CMD_RING_LOAN, CMD_OS_STREAM, CMD_SOCK_STREAM] {
                peer.stream(cmd, size, 20);
            }
        }
        peer
    }

    fn command(&mut self, cmd: u8, n: u64, size: usize) {
        let mut msg = [0u8; 17];
        msg[0] = cmd;
        msg[1..9].copy_from_slice(&n.to_le_bytes());
        msg[9..].copy_from_slice(&(size as u64).to_le_bytes());
        self.link.tx().write_all(&msg).expect("send the peer a command");
    }

    /// `n` round trips of 64 bytes; with `nap`, sleeps that long before
    /// each (not timed). Returns the time of the round trips alone.
    fn round_trips(&mut self, cmd: u8, n: u64, nap: Option<Duration>) -> Duration {
        self.command(cmd, n, RT_LEN);
        let mut msg = [0u8; RT_LEN];
        let mut back = [0u8; RT_LEN];
        let mut total = Duration::ZERO;
        let mut start = Instant::now();
        for seq in 0..n {
            if let Some(d) = nap {
                std::thread::sleep(d);
                start = Instant::now();
            }
            stamp(&mut msg, seq);
            match cmd {
                CMD_PIPE_RT => {
                    self.conn.send_bytes(&msg).expect("send");
                    self.conn.recv_bytes_into(&mut self.buf).expect("recv");
                    check(&self.buf, RT_LEN, seq);
                }
                CMD_OS_RT => {
                    self.link.tx().write_all(&msg).expect("write");
                    self.link.rx.read_exact(&mut back).expect("read");
                    check(&back, RT_LEN, seq);
                }
                _ => {
                    self.sock.write_all(&msg).expect("write");
                    self.sock.read_exact(&mut back).expect("read");
                    check(&back, RT_LEN, seq);
                }
            }
            if nap.is_some() {
                total += start.elapsed();
            }
        }
        if nap.is_none() { start.elapsed() } else { total }
    }

    /// `n` round trips after a nap each, timing each into `out`.
    fn round_trips_each(&mut self, cmd: u8, n: u64, nap: Duration, out: &mut Vec<Duration>) -> Duration {
        self.command(cmd, n, RT_LEN);
        let mut msg = [0u8; RT_LEN];
        let mut back = [0u8; RT_LEN];
        for seq in 0..n {
            std::thread::sleep(nap);
            let start = Instant::now();
            stamp(&mut msg, seq);
            if cmd == CMD_PIPE_RT {
                self.conn.send_bytes(&msg).expect("send");
                self.conn.recv_bytes_into(&mut self.buf).expect("recv");
                out.push(start.elapsed());
                check(&self.buf, RT_LEN, seq);
            } else {
                self.link.tx().write_all(&msg).expect("write");
                self.link.rx.read_exact(&mut back).expect("read");
                out.push(start.elapsed());
                check(&back, RT_LEN, seq);
            }
        }
        Duration::ZERO
    }

    /// `n` messages of `size` bytes from the peer.
    fn stream(&mut self, cmd: u8, size: usize, n: u64) -> Duration {
        let start = Instant::now();
        self.command(cmd, n, size);
        match cmd {
            CMD_RING | CMD_RING_LOAN => {
                let (mut since, mut spins) = (None, 0);
                let mut seq = 0;
                while seq < n {
                    let got = if cmd == CMD_RING {
                        match self.rx.pop_into(&mut self.buf) {
                            Ok(len) => {
                                check(&self.buf[..len], size, seq);
                                true
                            }
                            Err(BytePopError::Empty) => false,
                            Err(e) => panic!("pop: {e}"),
                        }
                    } else {
                        match self.rx.peek() {
                            Ok(m) => {
                                check(&m[..8], 8, seq); // in place: only the stamp is read
                                assert_eq!(m.len(), size);
                                true
                            }
                            Err(BytePopError::Empty) => false,
                            Err(e) => panic!("peek: {e}"),
                        }
                    };
                    if got {
                        seq += 1;
                        (since, spins) = (None, 0);
                    } else {
                        wait(&mut since, &mut spins, "ring empty");
                    }
                }
            }
            _ => {
                self.buf.resize(size, 0);
                for seq in 0..n {
                    if cmd == CMD_OS_STREAM {
                        self.link.rx.read_exact(&mut self.buf).expect("read");
                    } else {
                        self.sock.read_exact(&mut self.buf).expect("read");
                    }
                    check(&self.buf, size, seq);
                }
            }
        }
        start.elapsed()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.sock_path);
    }
}

// ---------------------------------------------------------------------------
// The peer

fn peer_main() {
    common::pin_peer_from_env();
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("peer: {k} is not set"));
    let (_a, conn) = Pipe::open(&var(PIPE_ENV)).expect("peer: open the pipe");
    let ring = ByteRing::open(&var(RING_ENV)).expect("peer: open the byte ring");
    let mut tx = ring.producer().expect("peer: producer role");
    let mut sock = UnixStream::connect(var(SOCK_ENV)).expect("peer: connect");
    let (mut cmd_rx, mut pipe_tx) = common::peer_stdio();
    let mut buf = Vec::with_capacity(1 << 20);
    let mut msg = vec![0xa5u8; 1 << 20];
    let mut head = [0u8; 16];
    while let Some(cmd) = common::read_command(&mut cmd_rx, "a command") {
        cmd_rx.read_exact(&mut head).expect("peer: read the count and size");
        let n = u64::from_le_bytes(head[..8].try_into().expect("8"));
        let size = u64::from_le_bytes(head[8..].try_into().expect("8")) as usize;
        let mut rt = [0u8; RT_LEN];
        for seq in 0..n {
            match cmd {
                CMD_PIPE_RT => {
                    conn.recv_bytes_into(&mut buf).expect("peer: recv");
                    conn.send_bytes(&buf).expect("peer: send");
                }
                CMD_OS_RT => {
                    cmd_rx.read_exact(&mut rt).expect("peer: read");
                    pipe_tx.write_all(&rt).expect("peer: write");
                }
                CMD_SOCK_RT => {
                    sock.read_exact(&mut rt).expect("peer: read");
                    sock.write_all(&rt).expect("peer: write");
                }
                CMD_RING => {
                    stamp(&mut msg, seq);
                    let (mut since, mut spins) = (None, 0);
                    while let Err(e) = tx.push(&msg[..size]) {
                        assert!(e.is_full(), "peer: push: {e}");
                        wait(&mut since, &mut spins, "ring full");
                    }
                }
                CMD_RING_LOAN => {
                    let (mut since, mut spins) = (None, 0);
                    loop {
                        match tx.reserve(size) {
                            Ok(mut loan) => {
                                stamp(&mut loan[..], seq); // in place: only the stamp is written
                                loan.commit(size);
                                break;
                            }
                            Err(e) => assert!(e.is_full(), "peer: reserve: {e}"),
                        }
                        wait(&mut since, &mut spins, "ring full");
                    }
                }
                CMD_OS_STREAM => {
                    stamp(&mut msg, seq);
                    pipe_tx.write_all(&msg[..size]).expect("peer: write");
                }
                CMD_SOCK_STREAM => {
                    stamp(&mut msg, seq);
                    sock.write_all(&msg[..size]).expect("peer: write");
                }
                other => panic!("peer: unknown command {other:#x}"),
            }
        }
    }
}
