//! Cross-process bulk transfer: a shmproc [`Segment`] against an OS pipe.
//!
//! Each criterion group starts one peer process (this binary, re-executed
//! with `SHMPROC_BENCH_ROLE=peer`) and measures, side by side:
//!
//! - `shm_segment`: the parent copies the message into an anonymous segment
//!   (`write_at`), rings the doorbell, and the peer copies it out into its
//!   own buffer (`read_at`) and acknowledges;
//! - `os_pipe`: the parent rings the doorbell and writes the message into a
//!   pipe, and the peer reads all of it into its own buffer and
//!   acknowledges.
//!
//! The doorbell is the same for both: one byte over the peer's stdin pipe,
//! one byte back over its stdout pipe. In the pipe case the message follows
//! the doorbell byte on the same stdin pipe, so the data path is the only
//! difference. The segment reaches the peer as an inherited descriptor.
//!
//! Groups: `transfer_64MiB` (bandwidth) and `handoff_4KiB` (latency). After
//! each group a one-line summary gives both rates and their ratio, taken
//! from the medians of the measured `iter_custom` samples.
//!
//! The parent and the peer are pinned to two different CPUs while a group
//! runs (as docs/performance.md measures); `SHMPROC_BENCH_PIN=0` leaves placement
//! to the scheduler. On a 2-vCPU VM this matters most to the pipe: pinned
//! apart, every 64 KiB refill of the pipe costs a cross-CPU wake-up.
//!
//! Run with `cargo bench --bench segment`.

mod common;

use std::cell::RefCell;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use common::{PeerProcess, Pinning, SAMPLES, is_role, measured, measuring, median};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group};
use shmproc::Segment;

/// The inherited segment descriptor's number.
const FD_ENV: &str = "SHMPROC_BENCH_FD";
/// The message length in bytes.
const LEN_ENV: &str = "SHMPROC_BENCH_LEN";

/// Peer commands (one byte over the peer's stdin).
const CMD_SHM: u8 = b'S';
const CMD_PIPE: u8 = b'P';
const CMD_CHECKSUM: u8 = b'C';
/// The peer's acknowledgement (one byte over its stdout).
const ACK: u8 = b'A';

const MIB: usize = 1 << 20;

fn main() {
    if is_role("peer") {
        peer_main();
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = transfer_64mib, handoff_4kib
}

fn transfer_64mib(c: &mut Criterion) {
    compare(c, "transfer_64MiB", 64 * MIB);
}

fn handoff_4kib(c: &mut Criterion) {
    compare(c, "handoff_4KiB", 4096);
}

/// One group: the segment and the pipe, same peer, same message size.
fn compare(c: &mut Criterion, group_name: &str, len: usize) {
    let pinning = Pinning::new();
    let peer: RefCell<Option<Peer>> = RefCell::new(None);
    let shm_samples = RefCell::new(Vec::new());
    let pipe_samples = RefCell::new(Vec::new());
    // The peer starts on first use, so `--list` or a filter that skips
    // this group starts no process.
    let with_peer = |f: &mut dyn FnMut(&mut Peer)| {
        let mut slot = peer.borrow_mut();
        let p = slot.get_or_insert_with(|| Peer::start(len, pinning.peer_cpu));
        f(p);
    };

    let mut group = c.benchmark_group(group_name);
    group.throughput(Throughput::Bytes(len as u64));
    group.sample_size(SAMPLES);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    if len >= MIB {
        // A 64 MiB pipe transfer takes ~0.2 s: linear sampling would need
        // 55 of them; flat sampling fits 10 samples into the 5 s.
        group.sampling_mode(SamplingMode::Flat);
    }

    group.bench_function("shm_segment", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            with_peer(&mut |p| {
                let start = Instant::now();
                for _ in 0..iters {
                    p.shm_once();
                }
                elapsed = start.elapsed();
            });
            shm_samples.borrow_mut().push(elapsed.as_secs_f64() / iters.max(1) as f64);
            elapsed
        });
    });
    group.bench_function("os_pipe", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            with_peer(&mut |p| {
                let start = Instant::now();
                for _ in 0..iters {
                    p.pipe_once();
                }
                elapsed = start.elapsed();
            });
            pipe_samples.borrow_mut().push(elapsed.as_secs_f64() / iters.max(1) as f64);
            elapsed
        });
    });
    group.finish();
    drop(peer.into_inner());
    drop(pinning);

    let shm = median(measured(&shm_samples.into_inner()).to_vec());
    let pipe = median(measured(&pipe_samples.into_inner()).to_vec());
    if measuring()
        && let Some(line) = summary(group_name, len, shm, pipe)
    {
        println!("{line}");
    }
}

/// `transfer_64MiB: shm X GB/s, pipe Y GB/s, ratio Z.Zx`, with the time per
/// message for small messages.
fn summary(group: &str, len: usize, shm: Option<f64>, pipe: Option<f64>) -> Option<String> {
    let rate = |secs: f64| len as f64 / secs / 1e9;
    let side = |label: &str, secs: f64| {
        if len < MIB {
            format!("{label} {:.2} GB/s ({:.1} µs/msg)", rate(secs), secs * 1e6)
        } else {
            format!("{label} {:.2} GB/s", rate(secs))
        }
    };
    match (shm, pipe) {
        (Some(s), Some(p)) => Some(format!("{group}: {}, {}, ratio {:.1}x", side("shm", s), side("pipe", p), p / s)),
        (Some(s), None) => Some(format!("{group}: {}", side("shm", s))),
        (None, Some(p)) => Some(format!("{group}: {}", side("pipe", p))),
        (None, None) => None,
    }
}

/// The parent's handle on the peer process.
struct Peer {
    /// Doorbells (and pipe data) to the peer, acknowledgements back.
    link: PeerProcess,
    seg: Segment,
    /// The prepared message, written from here each iteration.
    msg: Vec<u8>,
}

impl Peer {
    fn start(len: usize, cpu: Option<usize>) -> Peer {
        let seg = Segment::anonymous(len).expect("create the anonymous segment");
        let msg: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add((i >> 12) as u8)).collect();
        let fd = seg.inheritable_fd().expect("an inheritable descriptor");
        let link = PeerProcess::start("segment bench", cpu, |cmd| {
            cmd.env(FD_ENV, fd.as_raw_fd().to_string()).env(LEN_ENV, len.to_string());
        });
        drop(fd); // the child has its copy
        let mut peer = Peer { link, seg, msg };

        // Check both data paths once before anything is timed.
        let want = checksum(&peer.msg);
        peer.shm_once();
        assert_eq!(peer.peer_checksum(), want, "the peer read wrong bytes from the segment");
        peer.pipe_once();
        assert_eq!(peer.peer_checksum(), want, "the peer read wrong bytes from the pipe");
        peer
    }

    fn shm_once(&mut self) {
        self.seg.write_at(0, &self.msg).expect("write_at within the segment");
        self.link.tx().write_all(&[CMD_SHM]).expect("ring the peer");
        self.wait_ack();
    }

    fn pipe_once(&mut self) {
        let mut tx = self.link.tx.take().expect("invariant: open until drop");
        tx.write_all(&[CMD_PIPE]).expect("ring the peer");
        tx.write_all(&self.msg).expect("write the message into the pipe");
        self.link.tx = Some(tx);
        self.wait_ack();
    }

    fn wait_ack(&mut self) {
        self.link.expect(ACK);
    }

    /// The checksum of what the peer received last (it then clears its buffer).
    fn peer_checksum(&mut self) -> u64 {
        self.link.tx().write_all(&[CMD_CHECKSUM]).expect("ring the peer");
        let mut b = [0u8; 8];
        self.link.rx.read_exact(&mut b).expect("the peer exited (see its stderr above)");
        u64::from_le_bytes(b)
    }
}

/// A cheap position-sensitive checksum (for verification, never timed).
fn checksum(bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        h = (h.rotate_left(7) ^ u64::from_le_bytes(w.try_into().expect("8 bytes"))).wrapping_mul(0x0000_0100_0000_01b3);
    }
    for &b in words.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn env_number(key: &str) -> usize {
    let v = std::env::var(key).unwrap_or_else(|_| panic!("peer: {key} is not set"));
    v.parse().unwrap_or_else(|_| panic!("peer: {key}={v:?} is not a number"))
}

/// The peer: copies each message out of the segment or the pipe into its
/// own buffer and acknowledges, until its stdin closes.
#[allow(unsafe_code)] // from_inherited_fd: the number our parent passed
fn peer_main() {
    common::pin_peer_from_env();
    let fd = i32::try_from(env_number(FD_ENV)).expect("peer: descriptor number out of range");
    let len = env_number(LEN_ENV);
    // SAFETY: the number came from our parent for this purpose, in our
    // environment; nothing else in this process uses it.
    let seg = unsafe { Segment::from_inherited_fd(fd) }.expect("peer: open the inherited segment");
    assert!(seg.len() >= len, "peer: segment smaller than the message");
    // Unbuffered handles on the stdin/stdout pipes: a buffered reader would
    // swallow pipe data along with the doorbell byte.
    let (mut rx, mut tx) = common::peer_stdio();
    let mut buf = vec![0u8; len]; // zero-filled and then touched: no page faults while timed
    buf.fill(1);
    while let Some(cmd) = common::read_command(&mut rx, "the doorbell") {
        match cmd {
            CMD_SHM => seg.read_at(0, &mut buf).expect("peer: read_at within the segment"),
            CMD_PIPE => rx.read_exact(&mut buf).expect("peer: read the message from the pipe"),
            CMD_CHECKSUM => {
                tx.write_all(&checksum(&buf).to_le_bytes()).expect("peer: reply");
                buf.fill(0);
                continue;
            }
            other => panic!("peer: unknown command {other:#x}"),
        }
        tx.write_all(&[ACK]).expect("peer: acknowledge");
    }
}
