//! The blocking [`Queue`] and [`JoinableQueue`] between two processes,
//! against an OS pipe, a Unix stream socket and Python's figures, side by
//! side in each criterion group.
//!
//! Each group starts one peer process (this binary re-executed with
//! `SHMPROC_BENCH_ROLE=peer`) that opens the parent's named queues and
//! connects to its Unix socket. For each `iter_custom` call the parent sends
//! the peer a command and a count over the peer's stdin; the time includes
//! that command, so every function pays the same start-up. Every message
//! carries its sequence number in its first 8 bytes and the parent checks
//! each one.
//!
//! - `queue_64B_one_way`: the peer sends 64-byte messages (65 bytes
//!   encoded, a [`Blob`]) to the parent. `queue`: `Queue<Blob>::put` / `get`.
//!   `pipe_framed`: the peer encodes the same message with the same codec
//!   (postcard) and writes it into its stdout pipe as one frame (4-byte
//!   length, then the 65 bytes: one `write` per message, delivered at once
//!   as a queue delivers); the parent reads through a 64 KiB buffer and
//!   decodes each frame. The summary also sets the queue's rate next to
//!   Python's `mp.Queue`, 108 k msg/s (docs/performance.md).
//! - `queue_1MiB_one_way`: 1 MiB messages. `queue_4MiB_ring`: a queue
//!   whose ring (`capacity_bytes(4 MiB)`) carries them inline;
//!   `queue_default_ring`: the default 256 KiB ring, so each message goes
//!   through a spill segment (one the receiver handed back for reuse,
//!   after the first few); `pipe` and `unix_socket`: the peer writes
//!   4-byte length + 1 MiB frames, the parent reads each into one reused
//!   buffer (no codec). The queue's messages are [`Blob`]s, a `Vec<u8>`
//!   the codec copies as one byte string (`serde_bytes`' way; a plain
//!   `Vec<u8>` is a sequence postcard walks byte by byte), and the peer
//!   clones its 1 MiB template for every `put`, which takes the message
//!   by value.
//! - `joinable_put_done_join`: the parent puts `n` `u64` items into a
//!   `JoinableQueue`, the peer gets each and calls `task_done`, the parent
//!   `join`s; items/s next to Python's `JoinableQueue` put + task_done +
//!   join, 108 k items/s (docs/performance.md, which sets no target for it).
//!
//! While a group runs, the parent and the peer are pinned to two different
//! CPUs (as docs/performance.md measures); `SHMPROC_BENCH_PIN=0` leaves placement
//! to the scheduler. After each group a one-line summary gives both sides
//! (medians of the measured `iter_custom` samples), their ratios and
//! whether docs/performance.md's targets are met: `Queue<T>` 64 B one way at
//! 3x the OS pipe framed and 30x Python's `mp.Queue` or more; 1 MiB
//! messages at 5x the OS pipe and 1.5x the Unix socket or more.
//!
//! Run with `cargo bench --bench queue` (about 35 s).

mod common;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::{BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{LazyPeer, PeerProcess, Pinning, SAMPLES, is_role, measured, measuring, median};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use shmproc::{JoinableQueue, Queue};

/// The prefix of the queues' names (the peer opens them).
const NAME_ENV: &str = "SHMPROC_BENCH_NAME";
/// The path of the parent's Unix socket (the peer connects to it).
const SOCKET_ENV: &str = "SHMPROC_BENCH_SOCKET";

/// Message sizes.
const SMALL: usize = 64;
const LARGE: usize = 1 << 20;
/// The ring that carries 1 MiB messages inline (up to half of it).
const BIG_RING: usize = 4 << 20;
/// The parent's read buffer for small frames (a default pipe buffer).
const READ_BUFFER: usize = 64 * 1024;

/// Peer commands: one byte, then the count (8 bytes, LE), over the peer's
/// stdin. The peer answers nothing: the messages are the answer.
const CMD_QUEUE_SMALL: u8 = b'q';
const CMD_PIPE_SMALL: u8 = b'p';
const CMD_QUEUE_INLINE: u8 = b'I';
const CMD_QUEUE_SPILL: u8 = b'S';
const CMD_PIPE_LARGE: u8 = b'P';
const CMD_SOCKET_LARGE: u8 = b'U';
const CMD_JOINABLE: u8 = b'J';

/// How long `join` waits for the peer before the bench fails (the peer
/// died) instead of hanging.
const HANG_GUARD: Duration = Duration::from_secs(10);

/// docs/performance.md: Python's figures and the targets.
const PYTHON_QUEUE: f64 = 108e3;
const PYTHON_JOINABLE: f64 = 108e3;
const SMALL_PIPE_TARGET: f64 = 3.0;
const SMALL_PYTHON_TARGET: f64 = 30.0;
const LARGE_PIPE_TARGET: f64 = 5.0;
const LARGE_SOCKET_TARGET: f64 = 1.5;

fn main() {
    if is_role("peer") {
        peer_main();
        return;
    }
    // No plots: rendering them costs seconds per function on a 2-vCPU VM,
    // and the summary lines are the report.
    let mut c = Criterion::default().without_plots().configure_from_args();
    queue_64b_one_way(&mut c);
    queue_1mib_one_way(&mut c);
    joinable_put_done_join(&mut c);
    c.final_summary();
}

// ---------------------------------------------------------------------------
// Groups

fn queue_64b_one_way(c: &mut Criterion) {
    let run = GroupRun::new(c, "queue_64B_one_way", Throughput::Elements(1));
    run.time("queue", CMD_QUEUE_SMALL, Peer::queue_small);
    run.time("pipe_framed", CMD_PIPE_SMALL, Peer::pipe_small);
    let Some(rec) = run.finish() else { return };
    let (Some(queue), Some(pipe)) = (rec.rate("queue"), rec.rate("pipe_framed")) else { return };
    let m = |r: f64| format!("{:.2} M msg/s", r / 1e6);
    println!(
        "queue_64B_one_way: Queue<Blob> {}, OS pipe framed {}: {:.1}x pipe (target >= {SMALL_PIPE_TARGET}x: {}); \
         Python mp.Queue 0.108 M msg/s: {:.0}x Python (target >= {SMALL_PYTHON_TARGET}x: {})",
        m(queue),
        m(pipe),
        queue / pipe,
        verdict(queue / pipe >= SMALL_PIPE_TARGET),
        queue / PYTHON_QUEUE,
        verdict(queue / PYTHON_QUEUE >= SMALL_PYTHON_TARGET)
    );
}

fn queue_1mib_one_way(c: &mut Criterion) {
    let run = GroupRun::new(c, "queue_1MiB_one_way", Throughput::Bytes(LARGE as u64));
    run.time("queue_4MiB_ring", CMD_QUEUE_INLINE, Peer::queue_inline);
    run.time("queue_default_ring", CMD_QUEUE_SPILL, Peer::queue_spill);
    run.time("pipe", CMD_PIPE_LARGE, Peer::pipe_large);
    run.time("unix_socket", CMD_SOCKET_LARGE, Peer::socket_large);
    let Some(rec) = run.finish() else { return };
    let gbps = |name: &str| rec.rate(name).map(|r| r * LARGE as f64 / 1e9);
    let (Some(pipe), Some(socket)) = (gbps("pipe"), gbps("unix_socket")) else { return };
    let mut line = String::from("queue_1MiB_one_way:");
    for (name, label) in
        [("queue_4MiB_ring", "Queue, 4 MiB ring (inline)"), ("queue_default_ring", "Queue, default ring (spilled)")]
    {
        if let Some(q) = gbps(name) {
            line += &format!(
                " {label} {q:.2} GB/s: {:.2}x pipe (target >= {LARGE_PIPE_TARGET}x: {}), {:.2}x socket \
                 (target >= {LARGE_SOCKET_TARGET}x: {});",
                q / pipe,
                verdict(q / pipe >= LARGE_PIPE_TARGET),
                q / socket,
                verdict(q / socket >= LARGE_SOCKET_TARGET)
            );
        }
    }
    line += &format!(" OS pipe {pipe:.2} GB/s, Unix socket {socket:.2} GB/s");
    println!("{line}");
}

fn joinable_put_done_join(c: &mut Criterion) {
    let run = GroupRun::new(c, "joinable_put_done_join", Throughput::Elements(1));
    run.time("joinable_queue", CMD_JOINABLE, Peer::joinable);
    let Some(rec) = run.finish() else { return };
    let Some(items) = rec.rate("joinable_queue") else { return };
    println!(
        "joinable_put_done_join: JoinableQueue<u64> {:.2} M items/s (put by this process, get + task_done by the \
         peer, one join per sample), Python JoinableQueue 0.108 M items/s: {:.1}x Python (docs/performance.md sets no \
         target for it)",
        items / 1e6,
        items / PYTHON_JOINABLE
    );
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "missed" }
}

// ---------------------------------------------------------------------------
// Group plumbing

/// One group's run: the pinning, the peer (started on first use), and the
/// time per message of every `iter_custom` call.
struct GroupRun<'a> {
    group: RefCell<BenchmarkGroup<'a, WallTime>>,
    /// Per function: seconds per message, criterion's warm-up calls first,
    /// then exactly [`SAMPLES`] measured ones.
    samples: RefCell<BTreeMap<&'static str, Vec<f64>>>,
    peer: LazyPeer<Peer>,
    pinning: Pinning,
}

impl<'a> GroupRun<'a> {
    /// `per_message`: criterion's throughput of one iteration.
    fn new(c: &'a mut Criterion, name: &str, per_message: Throughput) -> GroupRun<'a> {
        let pinning = Pinning::new();
        let peer = LazyPeer::new(pinning.peer_cpu, Peer::start);
        let mut group = c.benchmark_group(name);
        group.throughput(per_message);
        group.sample_size(SAMPLES);
        group.warm_up_time(Duration::from_secs(1));
        group.measurement_time(Duration::from_secs(3));
        GroupRun { group: RefCell::new(group), samples: RefCell::default(), peer, pinning }
    }

    /// Benchmarks, as `name`, the peer's `cmd` with this side's part
    /// `mine` (see [`Peer::run`]).
    fn time(&self, name: &'static str, cmd: u8, mine: fn(&mut Peer, u64)) {
        self.group.borrow_mut().bench_function(name, |b| {
            b.iter_custom(|n| {
                let elapsed = self.peer.with(|p| p.run(cmd, n, mine));
                self.samples.borrow_mut().entry(name).or_default().push(elapsed.as_secs_f64() / n.max(1) as f64);
                elapsed
            });
        });
    }

    /// Ends the group (the peer exits, the pinning is undone); the samples
    /// if criterion measured.
    fn finish(self) -> Option<Samples> {
        self.group.into_inner().finish();
        drop(self.peer);
        drop(self.pinning);
        measuring().then(|| Samples(self.samples.into_inner()))
    }
}

/// A finished group's samples.
struct Samples(BTreeMap<&'static str, Vec<f64>>);

impl Samples {
    /// Messages per second, from the median of the measured samples.
    fn rate(&self, name: &str) -> Option<f64> {
        median(measured(self.0.get(name)?).to_vec()).map(|secs| 1.0 / secs)
    }
}

// ---------------------------------------------------------------------------
// Messages

/// A message as one byte string for the codec, the way `serde_bytes`'
/// `ByteBuf` does it: postcard writes its length and copies its bytes in
/// one piece.
struct Blob(Vec<u8>);

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Blob, D::Error> {
        struct BlobVisitor;
        impl serde::de::Visitor<'_> for BlobVisitor {
            type Value = Blob;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Blob, E> {
                Ok(Blob(v.to_vec()))
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Blob, E> {
                Ok(Blob(v))
            }
        }
        d.deserialize_byte_buf(BlobVisitor)
    }
}

/// Writes sequence number `seq` into a message's first 8 bytes.
fn stamp(msg: &mut [u8], seq: u64) {
    msg[..8].copy_from_slice(&seq.to_le_bytes());
}

/// Checks that `msg` is message `seq` of the expected length, in order.
fn check(msg: &[u8], len: usize, seq: u64) {
    assert_eq!(msg.len(), len, "message {seq}: wrong length");
    let got = u64::from_le_bytes(msg[..8].try_into().expect("8 bytes"));
    assert_eq!(got, seq, "message out of order or corrupt");
}

/// Writes one frame: the length (4 bytes, LE), then `payload`, in one
/// `write` when it is small.
fn write_frame(w: &mut (impl Write + ?Sized), frame: &mut Vec<u8>, payload: &[u8]) {
    frame.clear();
    frame.extend_from_slice(&u32::try_from(payload.len()).expect("a frame under 4 GiB").to_le_bytes());
    if payload.len() <= SMALL * 2 {
        frame.extend_from_slice(payload);
        w.write_all(frame).expect("peer: write a frame");
    } else {
        w.write_all(frame).expect("peer: write a frame's length");
        w.write_all(payload).expect("peer: write a frame");
    }
}

/// Reads one frame's payload into `buf`.
fn read_frame(r: &mut (impl Read + ?Sized), buf: &mut Vec<u8>) {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).expect("read a frame's length (the peer exited? see its stderr above)");
    buf.resize(u32::from_le_bytes(len) as usize, 0);
    r.read_exact(buf).expect("read a frame");
}

// ---------------------------------------------------------------------------
// The parent

/// The parent's handle on the peer process and what they share.
struct Peer {
    /// Commands to the peer; the pipe frames come back on its stdout.
    link: PeerProcess,
    small: Queue<Blob>,
    inline: Queue<Blob>,
    spill: Queue<Blob>,
    jobs: JoinableQueue<u64>,
    socket: UnixStream,
    buf: Vec<u8>,
}

impl Peer {
    fn start(cpu: Option<usize>) -> Peer {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!("bench-queue-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let small = Queue::create(&format!("{name}-small"), 0).expect("create the 64 B queue");
        let inline = Queue::builder().capacity_bytes(BIG_RING).name(&format!("{name}-inline")).build();
        let inline = inline.expect("create the 4 MiB-ring queue");
        let spill = Queue::create(&format!("{name}-spill"), 0).expect("create the default-ring queue");
        let jobs = JoinableQueue::create(&format!("{name}-jobs"), 0).expect("create the joinable queue");
        let path: PathBuf = std::env::temp_dir().join(format!("shmproc-{name}.sock"));
        let listener = UnixListener::bind(&path).expect("bind the Unix socket");
        let link = PeerProcess::start("queue bench", cpu, |cmd| {
            cmd.env(NAME_ENV, &name).env(SOCKET_ENV, &path);
        });
        let (socket, _) = listener.accept().expect("accept the peer's connection");
        let _ = std::fs::remove_file(&path); // connected: the name is no longer needed
        Peer { link, small, inline, spill, jobs, socket, buf: Vec::with_capacity(LARGE) }
    }

    /// Sends the peer `cmd` for `n` messages and runs this side's part,
    /// `mine`; returns the time both took.
    fn run(&mut self, cmd: u8, n: u64, mine: fn(&mut Peer, u64)) -> Duration {
        let start = Instant::now();
        let mut msg = [cmd; 9];
        msg[1..].copy_from_slice(&n.to_le_bytes());
        self.link.tx().write_all(&msg).expect("send the peer a command");
        mine(self, n);
        start.elapsed()
    }

    /// Gets `n` 64-byte messages from the queue.
    fn queue_small(&mut self, n: u64) {
        for seq in 0..n {
            check(&self.small.get().expect("get from the queue").0, SMALL, seq);
        }
    }

    /// Reads and decodes `n` framed 64-byte messages from the peer's
    /// stdout pipe.
    fn pipe_small(&mut self, n: u64) {
        // The peer writes exactly the n frames: nothing is left buffered.
        let mut rx = BufReader::with_capacity(READ_BUFFER, &mut self.link.rx);
        for seq in 0..n {
            read_frame(&mut rx, &mut self.buf);
            let msg: Blob = postcard::from_bytes(&self.buf).expect("decode a frame");
            check(&msg.0, SMALL, seq);
        }
    }

    /// Gets `n` 1 MiB messages from the 4 MiB-ring queue.
    fn queue_inline(&mut self, n: u64) {
        get_large(&self.inline, n);
    }

    /// Gets `n` 1 MiB messages from the default-ring queue.
    fn queue_spill(&mut self, n: u64) {
        get_large(&self.spill, n);
    }

    /// Reads `n` 1 MiB frames from the peer's stdout pipe.
    fn pipe_large(&mut self, n: u64) {
        read_large(&mut self.link.rx, &mut self.buf, n);
    }

    /// Reads `n` 1 MiB frames from the socket.
    fn socket_large(&mut self, n: u64) {
        read_large(&mut self.socket, &mut self.buf, n);
    }

    /// Puts `n` items for the peer to take and mark done, then joins.
    fn joinable(&mut self, n: u64) {
        for item in 0..n {
            self.jobs.put(item).expect("put into the joinable queue");
        }
        self.jobs.join_timeout(HANG_GUARD).expect("join (the peer exited? see its stderr above)");
    }
}

fn get_large(q: &Queue<Blob>, n: u64) {
    for seq in 0..n {
        check(&q.get().expect("get from the queue").0, LARGE, seq);
    }
}

fn read_large(rx: &mut impl Read, buf: &mut Vec<u8>, n: u64) {
    for seq in 0..n {
        read_frame(rx, buf);
        check(buf, LARGE, seq);
    }
}

// ---------------------------------------------------------------------------
// The peer

/// The peer: opens the parent's queues, connects to its socket, then sends
/// or takes messages as commanded until its stdin closes.
fn peer_main() {
    common::pin_peer_from_env();
    let name = std::env::var(NAME_ENV).expect("peer: SHMPROC_BENCH_NAME is not set");
    let small = Queue::<Blob>::open(&format!("{name}-small")).expect("peer: open the 64 B queue");
    let inline = Queue::<Blob>::open(&format!("{name}-inline")).expect("peer: open the 4 MiB-ring queue");
    let spill = Queue::<Blob>::open(&format!("{name}-spill")).expect("peer: open the default-ring queue");
    let jobs = JoinableQueue::<u64>::open(&format!("{name}-jobs")).expect("peer: open the joinable queue");
    let socket_path = std::env::var_os(SOCKET_ENV).expect("peer: SHMPROC_BENCH_SOCKET is not set");
    let mut socket = UnixStream::connect(socket_path).expect("peer: connect to the parent's socket");
    // Unbuffered handles on the stdin/stdout pipes.
    let (mut cmd_rx, mut pipe_tx) = common::peer_stdio();
    let mut large = vec![0xa5u8; LARGE];
    let mut frame = Vec::new();
    let mut count = [0u8; 8];
    while let Some(cmd) = common::read_command(&mut cmd_rx, "a command") {
        cmd_rx.read_exact(&mut count).expect("peer: read the count");
        let n = u64::from_le_bytes(count);
        for seq in 0..n {
            match cmd {
                CMD_QUEUE_SMALL => {
                    let mut msg = vec![0u8; SMALL];
                    stamp(&mut msg, seq);
                    small.put(Blob(msg)).expect("peer: put into the 64 B queue");
                }
                CMD_PIPE_SMALL => {
                    let mut msg = vec![0u8; SMALL];
                    stamp(&mut msg, seq);
                    let encoded = postcard::to_stdvec(&Blob(msg)).expect("peer: encode");
                    write_frame(&mut pipe_tx, &mut frame, &encoded);
                }
                CMD_QUEUE_INLINE | CMD_QUEUE_SPILL => {
                    stamp(&mut large, seq);
                    let q = if cmd == CMD_QUEUE_INLINE { &inline } else { &spill };
                    q.put(Blob(large.clone())).expect("peer: put into a 1 MiB queue");
                }
                CMD_PIPE_LARGE | CMD_SOCKET_LARGE => {
                    stamp(&mut large, seq);
                    let tx: &mut dyn Write = if cmd == CMD_PIPE_LARGE { &mut pipe_tx } else { &mut socket };
                    write_frame(tx, &mut frame, &large);
                }
                CMD_JOINABLE => {
                    let item = jobs.get().expect("peer: get from the joinable queue");
                    assert_eq!(item, seq, "peer: joinable item out of order");
                    jobs.task_done().expect("peer: task_done");
                }
                other => panic!("peer: unknown command {other:#x}"),
            }
        }
    }
}
