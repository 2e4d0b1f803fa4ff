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
//! runs (as PERFORMANCE.md measures); `SHMPROC_BENCH_PIN=0` leaves placement
//! to the scheduler. On a 2-vCPU VM this matters most to the pipe: pinned
//! apart, every 64 KiB refill of the pipe costs a cross-CPU wake-up.
//!
//! Run with `cargo bench --bench segment`.

use std::cell::RefCell;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group};
use rustix::thread::{CpuSet, sched_getaffinity, sched_setaffinity};
use shmproc::Segment;

/// Selects the peer role in a re-executed bench binary.
const ROLE_ENV: &str = "SHMPROC_BENCH_ROLE";
/// The inherited segment descriptor's number.
const FD_ENV: &str = "SHMPROC_BENCH_FD";
/// The message length in bytes.
const LEN_ENV: &str = "SHMPROC_BENCH_LEN";
/// The CPU the peer pins itself to, if any.
const CPU_ENV: &str = "SHMPROC_BENCH_CPU";
/// `0` turns pinning off.
const PIN_ENV: &str = "SHMPROC_BENCH_PIN";

/// Peer commands (one byte over the peer's stdin).
const CMD_SHM: u8 = b'S';
const CMD_PIPE: u8 = b'P';
const CMD_CHECKSUM: u8 = b'C';
/// The peer's acknowledgement (one byte over its stdout).
const ACK: u8 = b'A';

const MIB: usize = 1 << 20;
/// Criterion samples per benchmark (its minimum).
const SAMPLES: usize = 10;

fn main() {
    if std::env::var_os(ROLE_ENV).is_some_and(|r| r == "peer") {
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

    let shm = median(measured(shm_samples.into_inner()));
    let pipe = median(measured(pipe_samples.into_inner()));
    if measuring()
        && let Some(line) = summary(group_name, len, shm, pipe)
    {
        println!("{line}");
    }
}

/// Whether criterion measures (as under `cargo bench`), rather than running
/// each routine once (`cargo test --benches`, `--test`) or listing.
fn measuring() -> bool {
    let args: Vec<String> = std::env::args().collect();
    let has = |flag: &str| args.iter().any(|a| a == flag || a.starts_with(&format!("{flag}=")));
    has("--bench") && !has("--test") && !has("--list") && !has("--profile-time")
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

/// The measurement samples: criterion's warm-up calls come first, then
/// exactly [`SAMPLES`] calls.
fn measured(mut samples: Vec<f64>) -> Vec<f64> {
    samples.drain(..samples.len().saturating_sub(SAMPLES));
    samples
}

/// The median of per-message times in seconds.
fn median(mut samples: Vec<f64>) -> Option<f64> {
    samples.sort_unstable_by(f64::total_cmp);
    samples.get(samples.len() / 2).copied()
}

/// Pins this thread to one CPU and the peer to another while a group runs
/// (PERFORMANCE.md measures processes on different CPUs), and restores the
/// original affinity afterwards. Does nothing on a single-CPU machine or
/// with `SHMPROC_BENCH_PIN=0`.
struct Pinning {
    original: Option<CpuSet>,
    peer_cpu: Option<usize>,
}

impl Pinning {
    fn new() -> Pinning {
        if std::env::var_os(PIN_ENV).is_some_and(|v| v == "0") {
            return Pinning { original: None, peer_cpu: None };
        }
        let Ok(original) = sched_getaffinity(None) else {
            return Pinning { original: None, peer_cpu: None };
        };
        let cpus: Vec<usize> = (0..CpuSet::MAX_CPU).filter(|&c| original.is_set(c)).take(2).collect();
        if cpus.len() < 2 {
            return Pinning { original: None, peer_cpu: None };
        }
        let mut mine = CpuSet::new();
        mine.set(cpus[0]);
        if sched_setaffinity(None, &mine).is_err() {
            return Pinning { original: None, peer_cpu: None };
        }
        Pinning { original: Some(original), peer_cpu: Some(cpus[1]) }
    }
}

impl Drop for Pinning {
    fn drop(&mut self) {
        if let Some(set) = &self.original {
            // Best effort: criterion's analysis merely runs slower pinned.
            let _ = sched_setaffinity(None, set);
        }
    }
}

/// The parent's handle on the peer process.
struct Peer {
    child: Child,
    /// Doorbell (and pipe data) to the peer; `None` once closed.
    tx: Option<ChildStdin>,
    /// Acknowledgements from the peer.
    rx: ChildStdout,
    seg: Segment,
    /// The prepared message, written from here each iteration.
    msg: Vec<u8>,
}

impl Peer {
    fn start(len: usize, cpu: Option<usize>) -> Peer {
        let seg = Segment::anonymous(len).expect("create the anonymous segment");
        let msg: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add((i >> 12) as u8)).collect();
        let fd = seg.inheritable_fd().expect("an inheritable descriptor");
        let mut cmd = Command::new(std::env::current_exe().expect("the bench binary's path"));
        cmd.env(ROLE_ENV, "peer")
            .env(FD_ENV, fd.as_raw_fd().to_string())
            .env(LEN_ENV, len.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(c) = cpu {
            cmd.env(CPU_ENV, c.to_string());
        }
        let mut child = cmd.spawn().expect("start the peer process");
        drop(fd); // the child has its copy
        let tx = child.stdin.take().expect("piped stdin");
        let rx = child.stdout.take().expect("piped stdout");
        let mut peer = Peer { child, tx: Some(tx), rx, seg, msg };

        // Check both data paths once before anything is timed.
        let want = checksum(&peer.msg);
        peer.shm_once();
        assert_eq!(peer.peer_checksum(), want, "the peer read wrong bytes from the segment");
        peer.pipe_once();
        assert_eq!(peer.peer_checksum(), want, "the peer read wrong bytes from the pipe");
        peer
    }

    fn tx(&mut self) -> &mut ChildStdin {
        self.tx.as_mut().expect("invariant: open until drop")
    }

    fn shm_once(&mut self) {
        self.seg.write_at(0, &self.msg).expect("write_at within the segment");
        self.tx().write_all(&[CMD_SHM]).expect("ring the peer");
        self.wait_ack();
    }

    fn pipe_once(&mut self) {
        let mut tx = self.tx.take().expect("invariant: open until drop");
        tx.write_all(&[CMD_PIPE]).expect("ring the peer");
        tx.write_all(&self.msg).expect("write the message into the pipe");
        self.tx = Some(tx);
        self.wait_ack();
    }

    fn wait_ack(&mut self) {
        let mut b = [0u8];
        self.rx.read_exact(&mut b).expect("the peer exited (see its stderr above)");
        assert_eq!(b[0], ACK, "unexpected reply from the peer");
    }

    /// The checksum of what the peer received last (it then clears its buffer).
    fn peer_checksum(&mut self) -> u64 {
        self.tx().write_all(&[CMD_CHECKSUM]).expect("ring the peer");
        let mut b = [0u8; 8];
        self.rx.read_exact(&mut b).expect("the peer exited (see its stderr above)");
        u64::from_le_bytes(b)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        drop(self.tx.take()); // EOF: the peer's loop ends
        match self.child.wait() {
            Ok(s) if s.success() => {}
            Ok(s) => eprintln!("segment bench: the peer ended with {s}"),
            Err(e) => eprintln!("segment bench: waiting for the peer failed: {e}"),
        }
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
fn peer_main() {
    if let Ok(cpu) = std::env::var(CPU_ENV)
        && let Ok(cpu) = cpu.parse::<usize>()
    {
        let mut set = CpuSet::new();
        set.set(cpu);
        let _ = sched_setaffinity(None, &set);
    }
    let fd = i32::try_from(env_number(FD_ENV)).expect("peer: descriptor number out of range");
    let len = env_number(LEN_ENV);
    let seg = Segment::from_inherited_fd(fd).expect("peer: open the inherited segment");
    assert!(seg.len() >= len, "peer: segment smaller than the message");
    // Unbuffered handles on the stdin/stdout pipes: a buffered reader would
    // swallow pipe data along with the doorbell byte.
    let mut rx = File::from(std::io::stdin().as_fd().try_clone_to_owned().expect("peer: dup stdin"));
    let mut tx = File::from(std::io::stdout().as_fd().try_clone_to_owned().expect("peer: dup stdout"));
    let mut buf = vec![0u8; len]; // zero-filled and then touched: no page faults while timed
    buf.fill(1);
    let mut cmd = [0u8];
    loop {
        match rx.read(&mut cmd) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => panic!("peer: reading the doorbell: {e}"),
        }
        match cmd[0] {
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
