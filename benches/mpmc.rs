//! Two producer processes streaming 64-byte messages to this one:
//! shmproc's [`MpmcRing`] against two writers into one OS pipe, side by
//! side in the criterion group `mpmc_64B_2p1c`.
//!
//! Two peer processes (this binary re-executed with
//! `SHMPROC_BENCH_ROLE=peer`) open the parent's named ring and take a
//! producer handle each; the parent holds a consumer. Both peers' stdout is
//! the write end of one pipe, which the parent reads. For each
//! `iter_custom` call the parent sends each peer a command and its share of
//! the message count over the peer's stdin (the first peer takes the odd
//! one), and the peers stream that many `[u8; 64]` messages, each carrying
//! its sequence number in its first 8 bytes and its producer in byte 8; the
//! parent checks every one (each producer's messages arrive in order, none
//! lost or repeated):
//!
//! - `ring`: `MpmcProducer::push` / `MpmcConsumer::pop`, one at a time;
//! - `ring_batch64`: `push_slice` / `pop_into` in batches of 64;
//! - `pipe`: each peer writes each message into the shared pipe (one
//!   `write` of 64 bytes, below `PIPE_BUF`, so messages never interleave),
//!   the parent reads each with `read_exact` of 64.
//!
//! The ring has 1024 slots (64 KiB, the size of a default pipe buffer). When
//! the ring is full (producer) or empty (consumer), a side spins a few times,
//! then yields the CPU. The time includes sending the commands, so every
//! function pays the same start-up.
//!
//! While the group runs, the parent is pinned to one CPU and both peers to
//! another (on a 2-CPU machine the producers share one); `SHMPROC_BENCH_PIN=0`
//! leaves placement to the scheduler. After the group, a one-line summary
//! gives the rates (medians of the measured `iter_custom` samples), the
//! ratios to the pipe and whether docs/performance.md's target is met: the MPMC
//! ring of `T: Pod`, 64 B, 2 producers and 1 consumer, at >= 5x the OS pipe.
//!
//! Run with `cargo bench --bench mpmc` (about 20 s).

mod common;

use std::io::{PipeReader, PipeWriter, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{CPU_ENV, ROLE_ENV, Recorder};
use shmproc::{MpmcConsumer, MpmcPopError, MpmcPushError, MpmcRing};

/// The ring's name (the peers open it).
const NAME_ENV: &str = "SHMPROC_BENCH_NAME";
/// The peer's producer number (0 or 1).
const PRODUCER_ENV: &str = "SHMPROC_BENCH_PRODUCER";

/// One message.
type Msg = [u8; 64];
const MSG_LEN: usize = size_of::<Msg>();
const PRODUCERS: usize = 2;

/// Ring slots: 64 KiB of messages, as much as a default pipe buffer holds.
const RING_CAPACITY: usize = 1024;
/// Messages per `push_slice` / `pop_into`.
const BATCH: usize = 64;

/// Peer commands: one byte, then the message count (8 bytes, LE), over the
/// peer's stdin. The peer answers nothing: the messages are the answer.
const CMD_RING: u8 = b'R';
const CMD_RING_BATCH: u8 = b'B';
const CMD_PIPE: u8 = b'P';

/// docs/performance.md: MPMC ring of `T: Pod`, 64 B, 2 producers 1 consumer.
const PIPE_RATIO_TARGET: f64 = 5.0;

const GROUP: &str = "mpmc_64B_2p1c";

fn main() {
    common::bench_main(peer_main, |c| {
        common::stream_bench(
            c,
            GROUP,
            Peers::start,
            &[("ring", Peers::ring), ("ring_batch64", Peers::ring_batch), ("pipe", Peers::pipe)],
            summary,
        )
    });
}

/// `mpmc_64B_2p1c: ring X M msg/s (Nx pipe), ...; target ...`, or `None`
/// unless the ring and the pipe were both measured.
fn summary(rec: &Recorder) -> Option<String> {
    let rate = |name: &str| rec.median(name).map(|secs| 1.0 / secs);
    let ring = rate("ring")?;
    let pipe = rate("pipe")?;
    let batch = rate("ring_batch64");
    let m = |r: f64| format!("{:.1} M msg/s", r / 1e6);
    let verdict = |r: f64| if r / pipe >= PIPE_RATIO_TARGET { "met" } else { "missed" };
    let mut line = format!("{GROUP}: ring {} ({:.1}x pipe)", m(ring), ring / pipe);
    if let Some(b) = batch {
        line += &format!(", batched ring {} ({:.1}x pipe)", m(b), b / pipe);
    }
    line += &format!(", pipe {}; target >= {PIPE_RATIO_TARGET}x pipe: ring {}", m(pipe), verdict(ring));
    if let Some(b) = batch {
        line += &format!(", batched ring {}", verdict(b));
    }
    Some(line)
}

/// Message `seq` of producer `p`.
#[inline]
fn message(p: usize, seq: u64) -> Msg {
    let mut m = [0u8; MSG_LEN];
    m[..8].copy_from_slice(&seq.to_le_bytes());
    m[8] = p as u8;
    m
}

/// Checks that `msg` is the next message of its producer (`next[p]`).
#[inline]
fn check(msg: &[u8], next: &mut [u64; PRODUCERS]) {
    let p = usize::from(msg[8]);
    let seq = u64::from_le_bytes(msg[..8].try_into().expect("8 bytes"));
    let want = next.get_mut(p).expect("a producer number");
    assert_eq!(seq, *want, "producer {p}: message out of order, lost, repeated or corrupt");
    *want += 1;
}

/// Producer `p`'s share of `n` messages.
fn share(p: usize, n: u64) -> u64 {
    n / PRODUCERS as u64 + u64::from((p as u64) < n % PRODUCERS as u64)
}

// ---------------------------------------------------------------------------
// The parent

/// One producer process: commands go to its stdin; its stdout is the shared
/// pipe. Dropping it closes its stdin (its loop ends) and waits for it.
struct Producer {
    child: Child,
    tx: Option<ChildStdin>,
}

impl Producer {
    fn start(p: usize, cpu: Option<usize>, name: &str, pipe: &PipeWriter) -> Producer {
        let mut cmd = Command::new(std::env::current_exe().expect("the bench binary's path"));
        cmd.env(ROLE_ENV, "peer").env(NAME_ENV, name).env(PRODUCER_ENV, p.to_string());
        cmd.stdin(Stdio::piped()).stdout(pipe.try_clone().expect("dup the pipe")).stderr(Stdio::inherit());
        if let Some(c) = cpu {
            cmd.env(CPU_ENV, c.to_string());
        }
        let mut child = cmd.spawn().expect("start a producer process");
        let tx = child.stdin.take();
        Producer { child, tx }
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        drop(self.tx.take()); // EOF: the peer's loop ends
        match self.child.wait() {
            Ok(s) if s.success() => {}
            Ok(s) => eprintln!("mpmc bench: a producer ended with {s}"),
            Err(e) => eprintln!("mpmc bench: waiting for a producer failed: {e}"),
        }
    }
}

/// The parent's side: the two producers, the pipe and the consumer.
struct Peers {
    producers: Vec<Producer>,
    pipe: PipeReader,
    rx: MpmcConsumer<Msg>,
    batch: Vec<Msg>,
    _ring: MpmcRing<Msg>,
}

impl Peers {
    fn start(cpu: Option<usize>) -> Peers {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!("bench-mpmc-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let ring = MpmcRing::<Msg>::create(&name, RING_CAPACITY).expect("create the ring");
        let rx = ring.consumer().expect("a consumer");
        let (pipe, writer) = std::io::pipe().expect("a pipe");
        let producers = (0..PRODUCERS).map(|p| Producer::start(p, cpu, &name, &writer)).collect();
        drop(writer); // the producers hold the write ends
        let mut peers = Peers { producers, pipe, rx, batch: vec![[0; MSG_LEN]; BATCH], _ring: ring };
        // Every path once before anything is timed (more than the ring
        // holds, an odd count to leave partial batches).
        for _ in 0..2 {
            peers.ring(3 * RING_CAPACITY as u64 + 7);
            peers.ring_batch(3 * RING_CAPACITY as u64 + 7);
            peers.pipe(3 * RING_CAPACITY as u64 + 7);
        }
        peers
    }

    /// Asks each producer for its share of `n` messages.
    fn command(&mut self, cmd: u8, n: u64) {
        for (p, prod) in self.producers.iter_mut().enumerate() {
            let mut msg = [0u8; 9];
            msg[0] = cmd;
            msg[1..].copy_from_slice(&share(p, n).to_le_bytes());
            prod.tx.as_mut().expect("open until drop").write_all(&msg).expect("send a producer a command");
        }
    }

    /// `n` messages through the ring, popped one at a time.
    fn ring(&mut self, n: u64) -> Duration {
        let start = Instant::now();
        self.command(CMD_RING, n);
        let (rx, mut next) = (&mut self.rx, [0; PRODUCERS]);
        common::pop_each(
            n,
            || match rx.pop() {
                Ok(m) => Some(m),
                Err(MpmcPopError::Empty) => None,
                Err(e) => panic!("pop from the ring: {e}"),
            },
            |m| check(m, &mut next),
        );
        start.elapsed()
    }

    /// `n` messages through the ring, popped up to [`BATCH`] at a time.
    fn ring_batch(&mut self, n: u64) -> Duration {
        let start = Instant::now();
        self.command(CMD_RING_BATCH, n);
        let (rx, mut next) = (&mut self.rx, [0; PRODUCERS]);
        common::pop_batches(
            n,
            &mut self.batch,
            |b| rx.pop_into(b).expect("pop from the ring"),
            |m| check(m, &mut next),
        );
        start.elapsed()
    }

    /// `n` messages through the shared pipe, one `read_exact` each.
    fn pipe(&mut self, n: u64) -> Duration {
        let start = Instant::now();
        self.command(CMD_PIPE, n);
        let mut m = [0u8; MSG_LEN];
        let mut next = [0; PRODUCERS];
        for _ in 0..n {
            self.pipe.read_exact(&mut m).expect("read a message from the pipe");
            check(&m, &mut next);
        }
        start.elapsed()
    }
}

// ---------------------------------------------------------------------------
// The peers

/// A producer: opens the parent's ring, takes a producer handle, then
/// streams messages as commanded until its stdin closes.
fn peer_main() {
    common::pin_peer_from_env();
    let name = std::env::var(NAME_ENV).expect("peer: SHMPROC_BENCH_NAME is not set");
    let p: usize = std::env::var(PRODUCER_ENV).ok().and_then(|v| v.parse().ok()).expect("peer: producer number");
    let ring = MpmcRing::<Msg>::open(&name).expect("peer: open the ring");
    let mut tx = ring.producer().expect("peer: a producer");
    // Unbuffered handles on stdin and on stdout, the shared pipe.
    let (mut cmd_rx, mut pipe_tx) = common::peer_stdio();
    let mut batch = vec![[0u8; MSG_LEN]; BATCH];
    let mut count = [0u8; 8];
    while let Some(cmd) = common::read_command(&mut cmd_rx, "a command") {
        cmd_rx.read_exact(&mut count).expect("peer: read the message count");
        let n = u64::from_le_bytes(count);
        let message = |seq| message(p, seq);
        match cmd {
            CMD_RING => common::push_each(n, message, |m| match tx.push(m) {
                Ok(()) => Ok(()),
                Err(MpmcPushError::Full(m)) => Err(m),
                Err(e) => panic!("peer: push into the ring: {e}"),
            }),
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
