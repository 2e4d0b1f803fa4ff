//! Shared data: `Value` and `Array` against the pipe way and `memcpy`, side
//! by side in each criterion group.
//!
//! - `value_increment_2proc` (cross-process): `shmproc_value`: the parent
//!   and a peer process (this binary re-executed with
//!   `SHMPROC_BENCH_ROLE=peer`, started once, pinned to the other CPU) each
//!   do `*v.lock()? += 1` on one [`Value<i64>`] `iters` times at once (one
//!   iteration = 2 increments); `pipe_counter`: the pipe way, a counter
//!   owned by the peer that the parent increments by request and response
//!   over two OS pipes (one iteration = 1 increment). The summary gives
//!   both rates, their ratio, and shmproc's rate next to Python's
//!   `Value += 1` under its lock by 2 processes, 0.9 M ops/s
//!   (docs/performance.md: target >= 10x). The counter is checked after every
//!   sample.
//! - `array_bulk_copy_8mib` (one process): [`Array<f64>`] of 8 MiB,
//!   `copy_from_slice` (in) and `copy_to_slice` (out), each under the
//!   lock, against `memcpy` of the same size between two `Vec`s
//!   (docs/performance.md: target >= 90 % of memcpy). A second summary line
//!   gives the ratios from interleaved rounds (array in, array out,
//!   memcpy, repeated), which a busy machine skews less.
//!
//! Run with `cargo bench --bench shared` (about 20 s).

mod common;

use std::hint::black_box;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{LazyPeer, PeerProcess, Pinning, Recorder, SAMPLES, measuring, timed};
use criterion::{Criterion, Throughput};
use shmproc::{Array, Value};

/// The name of the value the peer opens.
const NAME_ENV: &str = "SHMPROC_BENCH_NAME";
/// Peer commands: one byte, then the iteration count (8 bytes, LE).
const CMD_VALUE: u8 = b'V';
const CMD_PIPE: u8 = b'P';
const READY: u8 = b'R';
const DONE: u8 = b'D';

/// Python's `Value += 1` under its lock, 2 processes (docs/performance.md).
const PYTHON_VALUE_OPS: f64 = 0.9e6;
const PYTHON_TARGET: f64 = 10.0;
const MEMCPY_TARGET: f64 = 0.9;
/// Elements of the bulk-copy array: 8 MiB of f64.
const BULK_LEN: usize = 1 << 20;

fn main() {
    common::bench_main(peer_main, |c| {
        value_increment_2proc(c);
        array_bulk_copy(c);
    });
}

fn value_increment_2proc(c: &mut Criterion) {
    let rec = Recorder::default();
    let pinning = Pinning::new();
    let peer = LazyPeer::new(pinning.peer_cpu, Peer::start);
    let mut group = c.benchmark_group("value_increment_2proc");
    group.sample_size(SAMPLES);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    timed(&mut group, &rec, "shmproc_value", |iters| peer.with(|p| p.value(iters)));
    timed(&mut group, &rec, "pipe_counter", |iters| peer.with(|p| p.pipe(iters)));
    group.finish();
    drop(peer);
    drop(pinning);
    if measuring()
        && let (Some(s), Some(p)) = (rec.median("shmproc_value"), rec.median("pipe_counter"))
    {
        let (s, p) = (2.0 / s, 1.0 / p); // ops/s: 2 increments per Value iteration, 1 per pipe one
        let vs_python = s / PYTHON_VALUE_OPS;
        println!(
            "value_increment_2proc: shmproc Value {:.2} M ops/s, pipe counter {:.3} M ops/s (ratio {:.1}x), \
             Python 0.9 M ops/s: shmproc {vs_python:.1}x Python (target >= {PYTHON_TARGET}x: {})",
            s / 1e6,
            p / 1e6,
            s / p,
            verdict(vs_python >= PYTHON_TARGET)
        );
    }
}

fn array_bulk_copy(c: &mut Criterion) {
    let rec = Recorder::default();
    let a = Array::<f64>::new(BULK_LEN).expect("array");
    let src: Vec<f64> = (0..BULK_LEN).map(|i| i as f64).collect();
    let mut dst = vec![0.0f64; BULK_LEN];
    // Touch every page first, so no sample pays for page faults.
    a.copy_from_slice(&src).expect("copy in");
    a.copy_to_slice(&mut dst).expect("copy out");
    assert_eq!(dst[BULK_LEN - 1], (BULK_LEN - 1) as f64);
    let mut group = c.benchmark_group("array_bulk_copy_8mib");
    group.sample_size(SAMPLES);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Bytes((BULK_LEN * 8) as u64));
    timed(&mut group, &rec, "array_copy_in", |iters| {
        let start = Instant::now();
        for _ in 0..iters {
            a.copy_from_slice(black_box(&src)).expect("copy in");
        }
        start.elapsed()
    });
    timed(&mut group, &rec, "array_copy_out", |iters| {
        let start = Instant::now();
        for _ in 0..iters {
            a.copy_to_slice(black_box(&mut dst)).expect("copy out");
        }
        start.elapsed()
    });
    timed(&mut group, &rec, "memcpy", |iters| {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(&mut dst).copy_from_slice(black_box(&src));
        }
        start.elapsed()
    });
    group.finish();
    if measuring()
        && let (Some(i), Some(o), Some(m)) =
            (rec.median("array_copy_in"), rec.median("array_copy_out"), rec.median("memcpy"))
    {
        let gbs = |secs: f64| (BULK_LEN * 8) as f64 / secs / 1e9;
        println!(
            "array_bulk_copy_8mib: Array copy in {:.1} GB/s ({:.0} % of memcpy), copy out {:.1} GB/s ({:.0} %), \
             memcpy {:.1} GB/s",
            gbs(i),
            100.0 * m / i,
            gbs(o),
            100.0 * m / o,
            gbs(m),
        );
        // Criterion runs the functions one after another, so a load change
        // on a busy machine skews their ratio; interleaved rounds do not.
        let (i, o, m) = interleaved(&a, &src, &mut dst);
        let worst = (m / i).min(m / o);
        println!(
            "array_bulk_copy_8mib interleaved: copy in {:.0} %, copy out {:.0} % of memcpy \
             (target >= {:.0} %: {})",
            100.0 * m / i,
            100.0 * m / o,
            100.0 * MEMCPY_TARGET,
            verdict(worst >= MEMCPY_TARGET)
        );
    }
}

/// Median seconds of one copy in, one copy out and one memcpy, measured
/// in alternating rounds.
fn interleaved(a: &Array<f64>, src: &[f64], dst: &mut [f64]) -> (f64, f64, f64) {
    const ROUNDS: usize = 41;
    const PER: u32 = 4;
    let mut t = [Vec::new(), Vec::new(), Vec::new()];
    for _ in 0..ROUNDS {
        let start = Instant::now();
        (0..PER).for_each(|_| a.copy_from_slice(black_box(src)).expect("copy in"));
        t[0].push(start.elapsed().as_secs_f64() / f64::from(PER));
        let start = Instant::now();
        (0..PER).for_each(|_| a.copy_to_slice(black_box(&mut *dst)).expect("copy out"));
        t[1].push(start.elapsed().as_secs_f64() / f64::from(PER));
        let start = Instant::now();
        (0..PER).for_each(|_| black_box(&mut *dst).copy_from_slice(black_box(src)));
        t[2].push(start.elapsed().as_secs_f64() / f64::from(PER));
    }
    let [i, o, m] = t.map(|v| common::median(v).expect("rounds"));
    (i, o, m)
}

fn verdict(met: bool) -> &'static str {
    if met { "meets" } else { "misses" }
}

/// The parent's handle on the peer process.
struct Peer {
    link: PeerProcess,
    value: Value<i64>,
    /// The pipe counter's expected value (the peer owns the real one).
    pipe_count: u64,
}

impl Peer {
    fn start(cpu: Option<usize>) -> Peer {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!("bench-shared-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let value = Value::create(&name, 0i64).expect("create the value");
        let link = PeerProcess::start("shared bench", cpu, |cmd| {
            cmd.env(NAME_ENV, &name);
        });
        let mut peer = Peer { link, value, pipe_count: 0 };
        peer.link.expect(READY); // it opened the value
        peer.value(1000);
        peer.pipe(1000);
        peer
    }

    /// Sends a command and waits until the peer has taken it.
    fn command(&mut self, cmd: u8, iters: u64) {
        self.link.command(cmd, iters);
        self.link.expect(READY);
    }

    /// `iters` increments here while the peer does as many; checks the total.
    fn value(&mut self, iters: u64) -> Duration {
        let before = self.value.load().expect("load");
        self.command(CMD_VALUE, iters);
        let start = Instant::now();
        for _ in 0..iters {
            *self.value.lock().expect("lock the value") += 1;
        }
        self.link.expect(DONE);
        let elapsed = start.elapsed();
        assert_eq!(self.value.load().expect("load"), before + 2 * iters as i64, "lost increments");
        elapsed
    }

    /// `iters` increments of the peer's counter, each a one-byte request
    /// and a one-byte reply (the counter's low byte, checked).
    fn pipe(&mut self, iters: u64) -> Duration {
        self.command(CMD_PIPE, iters);
        let mut tx = self.link.tx.take().expect("invariant: open until drop");
        let mut b = [0u8];
        let start = Instant::now();
        for _ in 0..iters {
            tx.write_all(&[1]).expect("request an increment");
            self.link.rx.read_exact(&mut b).expect("the peer's reply");
            self.pipe_count += 1;
            assert_eq!(b[0], self.pipe_count as u8, "the pipe counter");
        }
        let elapsed = start.elapsed();
        self.link.tx = Some(tx);
        elapsed
    }
}

/// The peer: opens the value, then runs commands until its stdin closes.
fn peer_main() {
    common::pin_peer_from_env();
    let name = std::env::var(NAME_ENV).expect("peer: SHMPROC_BENCH_NAME is not set");
    let value = Value::<i64>::open(&name).expect("peer: open the value");
    let (mut rx, mut tx) = common::peer_stdio();
    tx.write_all(&[READY]).expect("peer: hello");
    let mut count = [0u8; 8];
    let mut b = [0u8];
    let mut counter = 0u64; // the pipe way's counter, owned here
    while let Some(cmd) = common::read_command(&mut rx, "a command") {
        rx.read_exact(&mut count).expect("peer: read the iteration count");
        let iters = u64::from_le_bytes(count);
        tx.write_all(&[READY]).expect("peer: ready");
        match cmd {
            CMD_VALUE => {
                for _ in 0..iters {
                    *value.lock().expect("peer: lock the value") += 1;
                }
                tx.write_all(&[DONE]).expect("peer: done");
            }
            CMD_PIPE => {
                for _ in 0..iters {
                    rx.read_exact(&mut b).expect("peer: request");
                    counter += u64::from(b[0]);
                    tx.write_all(&[counter as u8]).expect("peer: reply");
                }
            }
            other => panic!("peer: unknown command {other:#x}"),
        }
    }
}
