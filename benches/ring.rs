//! One-way streaming of 64-byte messages from a peer process to this one:
//! shmproc's [`SpscRing`] against an OS pipe, side by side in the criterion
//! group `spsc_64B_one_way`.
//!
//! A peer process (this binary re-executed with `SHMPROC_BENCH_ROLE=peer`)
//! opens the parent's named ring and takes the producer role; the parent
//! holds the consumer role. For each `iter_custom` call the parent sends the
//! peer a command and the message count over the peer's stdin, and the peer
//! streams that many `[u8; 64]` messages, each carrying its sequence number
//! in its first 8 bytes (the parent checks every one):
//!
//! - `ring`: `Producer::push` / `Consumer::pop`, one message at a time;
//! - `ring_batch64`: `Producer::push_slice` / `Consumer::pop_into` in
//!   batches of 64;
//! - `pipe`: the peer writes each message into its stdout pipe (one
//!   `write` of 64 bytes), the parent reads each with `read_exact` of 64;
//! - `pipe_64KiB_reads`: the same writes, the parent reads up to 64 KiB at
//!   a time and walks the messages in its buffer.
//!
//! The ring has 1024 slots (64 KiB, the size of a default pipe buffer). When
//! the ring is full (producer) or empty (consumer), a side spins
//! ([`std::hint::spin_loop`]) 32 times, then yields the CPU once per failed
//! call. The time includes sending the command, so every function pays the
//! same start-up.
//!
//! What a figure includes, per message, on both sides alike: the producer
//! builds the message (its sequence number in 8 bytes), the consumer checks
//! it; in between, `ring` does one `push` and one `pop` (each loads the
//! other side's position only when its cached copy shows the ring full or
//! empty, and stores its own), `pipe` one `write` and one `read` system
//! call. The sides are on their own CPUs, so the waiting above is polling:
//! a consumer that catches up spins or yields until the next message, and
//! that time counts (it is what a polling consumer pays). The ring's single
//! value figure thus measures the ring's hand-off, cache-line transfers
//! included, and nothing else: no system call is made unless a side finds
//! the ring empty or full for 32 spins in a row. (Runs in early December gave 2-35 M msg/s here; on 2026-12-08
//! three runs gave 46-55 M msg/s, above the 36.8 M a hand-written
//! busy-polling peer measured for the same ring.)
//!
//! While the group runs, the parent and the peer are pinned to two different
//! CPUs (as docs/performance.md measures); `SHMPROC_BENCH_PIN=0` leaves placement
//! to the scheduler. After the group, a one-line summary gives the rates
//! (medians of the measured `iter_custom` samples), the ratios to the pipe
//! and whether docs/performance.md's targets are met: the SPSC ring of `T: Pod`,
//! 64 B one way, at >= 10x the OS pipe and >= 18 M msg/s.
//!
//! Run with `cargo bench --bench ring` (about 30 s).

mod common;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{PeerProcess, Recorder, check_seq as check, seq_message as message};
use shmproc::SpscRing;

/// The ring's name (the peer opens it).
const NAME_ENV: &str = "SHMPROC_BENCH_NAME";

/// One message.
type Msg = [u8; 64];
const MSG_LEN: usize = size_of::<Msg>();

/// Ring slots: 64 KiB of messages, as much as a default pipe buffer holds.
const RING_CAPACITY: usize = 1024;
/// Messages per `push_slice` / `pop_into`.
const BATCH: usize = 64;
/// The parent's read size in `pipe_64KiB_reads`.
const CHUNK: usize = 64 * 1024;

/// Peer commands: one byte, then the message count (8 bytes, LE), over the
/// peer's stdin. The peer answers nothing: the messages are the answer.
const CMD_RING: u8 = b'R';
const CMD_RING_BATCH: u8 = b'B';
const CMD_PIPE: u8 = b'P';

/// docs/performance.md: SPSC ring of `T: Pod`, 64 B, one way.
const PIPE_RATIO_TARGET: f64 = 10.0;
const RATE_TARGET: f64 = 18e6;

const GROUP: &str = "spsc_64B_one_way";

fn main() {
    common::bench_main(peer_main, |c| {
        common::stream_bench(
            c,
            GROUP,
            Peer::start,
            &[
                ("ring", Peer::ring),
                ("ring_batch64", Peer::ring_batch),
                ("pipe", Peer::pipe),
                ("pipe_64KiB_reads", Peer::pipe_chunked),
            ],
            summary,
        )
    });
}

/// `spsc_64B_one_way: ring X M msg/s, ...; targets ...`, or `None` unless
/// the ring and the pipe were both measured.
fn summary(rec: &Recorder) -> Option<String> {
    let rate = |name: &str| rec.median(name).map(|secs| 1.0 / secs);
    let ring = rate("ring")?;
    let pipe = rate("pipe")?;
    let batch = rate("ring_batch64");
    let chunked = rate("pipe_64KiB_reads");
    let m = |r: f64| format!("{:.1} M msg/s", r / 1e6);
    let verdict = |r: f64| {
        let met = r / pipe >= PIPE_RATIO_TARGET && r >= RATE_TARGET;
        if met { "met" } else { "missed" }
    };
    let mut line = format!("{GROUP}: ring {} ({:.1}x pipe)", m(ring), ring / pipe);
    if let Some(b) = batch {
        line += &format!(", batched ring {} ({:.1}x pipe)", m(b), b / pipe);
    }
    line += &format!(", pipe {}", m(pipe));
    if let Some(ch) = chunked {
        line += &format!(", pipe 64 KiB reads {} (ring {:.1}x", m(ch), ring / ch);
        if let Some(b) = batch {
            line += &format!(", batched {:.1}x", b / ch);
        }
        line += ")";
    }
    line += &format!(
        "; target >= {PIPE_RATIO_TARGET}x pipe and >= {:.0} M msg/s: ring {}",
        RATE_TARGET / 1e6,
        verdict(ring)
    );
    if let Some(b) = batch {
        line += &format!(", batched ring {}", verdict(b));
    }
    Some(line)
}

// ---------------------------------------------------------------------------
// Group plumbing

// ---------------------------------------------------------------------------
// The parent

/// The parent's handle on the peer process.
struct Peer {
    /// Commands to the peer; the pipe messages come back on its stdout.
    link: PeerProcess,
    rx: shmproc::Consumer<Msg>,
    batch: Vec<Msg>,
    chunk: Vec<u8>,
    _ring: SpscRing<Msg>,
}

impl Peer {
    fn start(cpu: Option<usize>) -> Peer {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!("bench-ring-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let ring = SpscRing::<Msg>::create(&name, RING_CAPACITY).expect("create the ring");
        let rx = ring.consumer().expect("take the consumer role");
        let link = PeerProcess::start("ring bench", cpu, |cmd| {
            cmd.env(NAME_ENV, &name);
        });
        let mut peer = Peer { link, rx, batch: vec![[0; MSG_LEN]; BATCH], chunk: vec![1; CHUNK], _ring: ring };
        // Every path once before anything is timed (more than the ring
        // holds, an odd count to leave a partial batch).
        for _ in 0..2 {
            peer.ring(3 * RING_CAPACITY as u64 + 7);
            peer.ring_batch(3 * RING_CAPACITY as u64 + 7);
            peer.pipe(3 * RING_CAPACITY as u64 + 7);
            peer.pipe_chunked(3 * RING_CAPACITY as u64 + 7);
        }
        peer
    }

    /// `n` messages through the ring, popped one at a time.
    fn ring(&mut self, n: u64) -> Duration {
        let start = Instant::now();
        self.link.command(CMD_RING, n);
        common::pop_ring(&mut self.rx, n);
        start.elapsed()
    }

    /// `n` messages through the ring, popped up to [`BATCH`] at a time.
    fn ring_batch(&mut self, n: u64) -> Duration {
        let start = Instant::now();
        self.link.command(CMD_RING_BATCH, n);
        let (rx, mut seq) = (&mut self.rx, 0);
        common::pop_batches(
            n,
            &mut self.batch,
            |b| rx.pop_into(b).expect("pop from the ring"),
            |m| {
                check(m, seq);
                seq += 1;
            },
        );
        start.elapsed()
    }

    /// `n` messages through the peer's stdout pipe, one `read_exact` each.
    fn pipe(&mut self, n: u64) -> Duration {
        let start = Instant::now();
        self.link.command(CMD_PIPE, n);
        let mut m = [0u8; MSG_LEN];
        for seq in 0..n {
            self.link.rx.read_exact(&mut m).expect("read a message from the pipe");
            check(&m, seq);
        }
        start.elapsed()
    }

    /// `n` messages through the peer's stdout pipe, read up to [`CHUNK`]
    /// bytes at a time.
    fn pipe_chunked(&mut self, n: u64) -> Duration {
        let start = Instant::now();
        self.link.command(CMD_PIPE, n);
        let mut seq = 0;
        let mut filled = 0; // bytes of a partial message at the buffer's start
        while seq < n {
            let room = ((n - seq) as usize * MSG_LEN - filled).min(CHUNK - filled);
            let got = match self.link.rx.read(&mut self.chunk[filled..filled + room]) {
                Ok(0) => panic!("the peer closed its stdout (see its stderr above)"),
                Ok(got) => got,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => panic!("read from the pipe: {e}"),
            };
            filled += got;
            let whole = filled / MSG_LEN * MSG_LEN;
            for m in self.chunk[..whole].chunks_exact(MSG_LEN) {
                check(m, seq);
                seq += 1;
            }
            self.chunk.copy_within(whole..filled, 0);
            filled -= whole;
        }
        start.elapsed()
    }
}

// ---------------------------------------------------------------------------
// The peer

/// The peer: opens the parent's ring, takes the producer role, then streams
/// messages as commanded until its stdin closes.
fn peer_main() {
    common::pin_peer_from_env();
    let name = std::env::var(NAME_ENV).expect("peer: SHMPROC_BENCH_NAME is not set");
    let ring = SpscRing::<Msg>::open(&name).expect("peer: open the ring");
    let mut tx = ring.producer().expect("peer: take the producer role");
    // Unbuffered handles on the stdin/stdout pipes.
    let (mut cmd_rx, mut pipe_tx) = common::peer_stdio();
    let mut batch = vec![[0u8; MSG_LEN]; BATCH];
    let mut count = [0u8; 8];
    while let Some(cmd) = common::read_command(&mut cmd_rx, "a command") {
        cmd_rx.read_exact(&mut count).expect("peer: read the message count");
        let n = u64::from_le_bytes(count);
        match cmd {
            CMD_RING => common::push_ring(&mut tx, n),
            CMD_RING_BATCH => {
                common::push_batches(n, &mut batch, message, |b| tx.push_slice(b).expect("peer: push into the ring"))
            }
            CMD_PIPE => {
                for seq in 0..n {
                    pipe_tx.write_all(&message(seq)).expect("peer: write a message into the pipe");
                }
            }
            other => panic!("peer: unknown command {other:#x}"),
        }
    }
}
