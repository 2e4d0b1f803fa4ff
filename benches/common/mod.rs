//! Plumbing shared by the benches (each includes it with `mod common;`):
//! the re-executed peer process and its doorbell pipes, CPU pinning, and
//! the summary helpers over criterion's `iter_custom` samples.
//!
//! Not every bench uses every item: `benches/process.rs` starts no peer and
//! pins nothing, so the peer and pinning items carry
//! `#[allow(dead_code)]` (each bench compiles this module on its own).

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use rustix::thread::{CpuSet, sched_getaffinity, sched_setaffinity};

/// Selects a role in a re-executed bench binary.
pub(crate) const ROLE_ENV: &str = "SHMPROC_BENCH_ROLE";
/// The CPU the peer pins itself to, if any.
// Unused by `benches/process.rs`, which starts no peer.
#[allow(dead_code)]
pub(crate) const CPU_ENV: &str = "SHMPROC_BENCH_CPU";
/// `0` turns pinning off.
// Unused by `benches/process.rs`, which pins nothing.
#[allow(dead_code)]
pub(crate) const PIN_ENV: &str = "SHMPROC_BENCH_PIN";

/// Criterion samples per benchmark (its minimum).
pub(crate) const SAMPLES: usize = 10;

/// Whether this binary was re-executed in `role` (`ROLE_ENV=role`).
pub(crate) fn is_role(role: &str) -> bool {
    std::env::var_os(ROLE_ENV).is_some_and(|r| r == role)
}

/// Whether criterion measures (as under `cargo bench`), rather than running
/// each routine once (`cargo test --benches`, `--test`) or listing.
pub(crate) fn measuring() -> bool {
    let args: Vec<String> = std::env::args().collect();
    let has = |flag: &str| args.iter().any(|a| a == flag || a.starts_with(&format!("{flag}=")));
    has("--bench") && !has("--test") && !has("--list") && !has("--profile-time")
}

/// The measurement samples: criterion's warm-up calls come first, then
/// exactly [`SAMPLES`] calls.
pub(crate) fn measured<T>(samples: &[T]) -> &[T] {
    &samples[samples.len().saturating_sub(SAMPLES)..]
}

/// The median of per-iteration times in seconds.
// Unused by `benches/process.rs`, which reports means.
#[allow(dead_code)]
pub(crate) fn median(mut samples: Vec<f64>) -> Option<f64> {
    samples.sort_unstable_by(f64::total_cmp);
    samples.get(samples.len() / 2).copied()
}

/// The `main` of a bench whose binary is also its peer: the peer role when
/// re-executed as one (`ROLE_ENV=peer`), else `groups` under criterion,
/// without plots (rendering them costs seconds per function on a 2-vCPU
/// VM, and each group's summary line is the report).
#[allow(dead_code)] // as for `stream_group`
pub(crate) fn bench_main(peer: fn(), groups: fn(&mut criterion::Criterion)) {
    if is_role("peer") {
        peer();
        return;
    }
    let mut c = criterion::Criterion::default().without_plots().configure_from_args();
    groups(&mut c);
    c.final_summary();
}

/// A function of a streaming group: its name and how it streams `n`
/// messages through the peer `P`, returning the time taken.
#[allow(dead_code)] // as for `stream_group`
pub(crate) type StreamFn<P> = (&'static str, fn(&mut P, u64) -> std::time::Duration);

/// Runs the streaming group `name` (see [`stream_group`]): the peer is
/// started on first use by `start` (pinned to a CPU of its own while the
/// group runs, see [`Pinning`]) and stopped afterwards; then, when
/// measuring, prints `summary` of the recorded medians.
#[allow(dead_code)] // as for `stream_group`
pub(crate) fn stream_bench<P>(
    c: &mut criterion::Criterion,
    name: &str,
    start: fn(Option<usize>) -> P,
    functions: &[StreamFn<P>],
    summary: fn(&Recorder) -> Option<String>,
) {
    let rec = Recorder::default();
    let pinning = Pinning::new();
    let peer = LazyPeer::new(pinning.peer_cpu, start);
    let mut group = stream_group(c, name);
    for &(f, run) in functions {
        timed(&mut group, &rec, f, |n| peer.with(|p| run(p, n)));
    }
    group.finish();
    drop(peer);
    drop(pinning);
    if measuring()
        && let Some(line) = summary(&rec)
    {
        println!("{line}");
    }
}

/// A criterion group for a streaming bench: one iteration is one message,
/// [`SAMPLES`] samples, 1 s of warm-up and 3 s of measurement.
// Unused by the benches that are not about streams.
#[allow(dead_code)]
pub(crate) fn stream_group<'a>(
    c: &'a mut criterion::Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut group = c.benchmark_group(name);
    group.throughput(criterion::Throughput::Elements(1));
    group.sample_size(SAMPLES);
    group.warm_up_time(std::time::Duration::from_secs(1));
    group.measurement_time(std::time::Duration::from_secs(3));
    group
}

/// Producer side of a stream: messages `make(0..n)`, one at a time; `push`
/// gives a message back while the ring is full.
#[allow(dead_code)] // as for `stream_group`
pub(crate) fn push_each<M>(n: u64, mut make: impl FnMut(u64) -> M, mut push: impl FnMut(M) -> Result<(), M>) {
    let mut backoff = Backoff::new();
    for seq in 0..n {
        let mut m = make(seq);
        while let Err(back) = push(m) {
            m = back;
            backoff.wait("ring full");
        }
        backoff.reset();
    }
}

/// Producer side of a stream in batches of `batch.len()`; `push_slice`
/// returns how many of the messages it took.
#[allow(dead_code)] // as for `stream_group`
pub(crate) fn push_batches<M>(
    n: u64,
    batch: &mut [M],
    mut make: impl FnMut(u64) -> M,
    mut push_slice: impl FnMut(&[M]) -> usize,
) {
    let mut backoff = Backoff::new();
    let mut seq = 0;
    while seq < n {
        let len = (n - seq).min(batch.len() as u64) as usize;
        for (k, m) in batch[..len].iter_mut().enumerate() {
            *m = make(seq + k as u64);
        }
        let mut sent = 0;
        while sent < len {
            let pushed = push_slice(&batch[sent..len]);
            if pushed == 0 {
                backoff.wait("ring full");
            } else {
                sent += pushed;
                backoff.reset();
            }
        }
        seq += len as u64;
    }
}

/// Consumer side of a stream: `n` messages, one at a time (`pop` returns
/// `None` while the ring is empty), each handed to `check`.
#[allow(dead_code)] // as for `stream_group`
pub(crate) fn pop_each<M>(n: u64, mut pop: impl FnMut() -> Option<M>, mut check: impl FnMut(&M)) {
    let mut backoff = Backoff::new();
    let mut got = 0;
    while got < n {
        match pop() {
            Some(m) => {
                check(&m);
                got += 1;
                backoff.reset();
            }
            None => backoff.wait("ring empty"),
        }
    }
}

/// Message `seq` of a stream of 64-byte messages: its sequence number
/// (LE) in the first 8 bytes, the rest `0xa5`.
#[allow(dead_code)] // as for `stream_group`
pub(crate) fn seq_message(seq: u64) -> [u8; 64] {
    let mut m = [0xa5; 64];
    m[..8].copy_from_slice(&seq.to_le_bytes());
    m
}

/// Checks that `msg` is message `seq` of such a stream: 64 bytes, in the
/// order sent.
#[allow(dead_code)] // as for `stream_group`
#[inline]
pub(crate) fn check_seq(msg: &[u8], seq: u64) {
    assert_eq!(msg.len(), 64, "message {seq}: length");
    assert_eq!(msg[..8], seq.to_le_bytes(), "message {seq}: out of order or torn");
}

/// Consumer side of such a stream through an `SpscRing`: pops `n`
/// messages one at a time (waiting as [`pop_each`] does), checking each.
#[allow(dead_code)] // as for `stream_group`
pub(crate) fn pop_ring(rx: &mut shmproc::Consumer<[u8; 64]>, n: u64) {
    let mut seq = 0;
    pop_each(
        n,
        || match rx.pop() {
            Ok(m) => Some(m),
            Err(shmproc::PopError::Empty) => None,
            Err(e) => panic!("pop from the ring: {e}"),
        },
        |m| {
            check_seq(m, seq);
            seq += 1;
        },
    );
}

/// Producer side of [`pop_ring`]'s stream: pushes messages `0..n` one at
/// a time (waiting as [`push_each`] does).
#[allow(dead_code)] // as for `stream_group`
pub(crate) fn push_ring(tx: &mut shmproc::Producer<[u8; 64]>, n: u64) {
    push_each(n, seq_message, |m| match tx.push(m) {
        Ok(()) => Ok(()),
        Err(shmproc::PushError::Full(m)) => Err(m),
        Err(e) => panic!("peer: push into the ring: {e}"),
    });
}

/// Consumer side of a stream, up to `buf.len()` messages at a time
/// (`pop_into` returns how many it wrote), each handed to `check`.
#[allow(dead_code)] // as for `stream_group`
pub(crate) fn pop_batches<M>(
    n: u64,
    buf: &mut [M],
    mut pop_into: impl FnMut(&mut [M]) -> usize,
    mut check: impl FnMut(&M),
) {
    let mut backoff = Backoff::new();
    let mut got = 0;
    while got < n {
        let want = (n - got).min(buf.len() as u64) as usize;
        let k = pop_into(&mut buf[..want]);
        if k == 0 {
            backoff.wait("ring empty");
            continue;
        }
        for m in &buf[..k] {
            check(m);
        }
        got += k as u64;
        backoff.reset();
    }
}

/// Waiting on a full or empty ring: a few spins, then a yield per call;
/// fails (the other process died?) after 10 s without progress, so a bench
/// never hangs.
#[allow(dead_code)] // as for `stream_group`
struct Backoff {
    spins: u32,
    since: Option<std::time::Instant>,
}

#[allow(dead_code)] // as for `stream_group`
impl Backoff {
    /// Spins before each yield.
    const SPINS: u32 = 32;
    /// How long one side waits for the other before it gives up.
    const HANG_GUARD: std::time::Duration = std::time::Duration::from_secs(10);

    fn new() -> Backoff {
        Backoff { spins: 0, since: None }
    }

    /// The ring made progress.
    #[inline]
    fn reset(&mut self) {
        self.spins = 0;
        self.since = None;
    }

    /// The ring is full or empty: wait a little; fails after the hang guard.
    #[inline]
    fn wait(&mut self, what: &str) {
        if self.spins < Self::SPINS {
            self.spins += 1;
            std::hint::spin_loop();
            return;
        }
        let since = *self.since.get_or_insert_with(std::time::Instant::now);
        assert!(since.elapsed() < Self::HANG_GUARD, "{what} for {:?}: the other process died?", Self::HANG_GUARD);
        std::thread::yield_now();
    }
}

/// Pins this thread to one CPU and the peer to another while a group runs
/// (docs/performance.md measures processes on different CPUs), and restores the
/// original affinity afterwards. Does nothing on a single-CPU machine or
/// with `SHMPROC_BENCH_PIN=0`.
// Unused by `benches/process.rs`, which pins nothing.
#[allow(dead_code)]
pub(crate) struct Pinning {
    original: Option<CpuSet>,
    /// The CPU for the peer, if pinned.
    pub(crate) peer_cpu: Option<usize>,
}

// Unused by `benches/process.rs`, which pins nothing.
#[allow(dead_code)]
impl Pinning {
    pub(crate) fn new() -> Pinning {
        let none = Pinning { original: None, peer_cpu: None };
        if std::env::var_os(PIN_ENV).is_some_and(|v| v == "0") {
            return none;
        }
        let Ok(original) = sched_getaffinity(None) else { return none };
        let cpus: Vec<usize> = (0..CpuSet::MAX_CPU).filter(|&c| original.is_set(c)).take(2).collect();
        if cpus.len() < 2 {
            return none;
        }
        let mut mine = CpuSet::new();
        mine.set(cpus[0]);
        if sched_setaffinity(None, &mine).is_err() {
            return none;
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

/// The parent's side of a peer process: this bench binary re-executed with
/// `ROLE_ENV=peer`, talking over its stdin and stdout pipes. Dropping it
/// closes the peer's stdin (its loop ends) and waits for it.
// Unused by `benches/process.rs`, which starts no peer.
#[allow(dead_code)]
pub(crate) struct PeerProcess {
    /// Names the bench in messages about the peer's end.
    label: &'static str,
    child: Child,
    /// To the peer (doorbells, commands, pipe data); `None` once closed.
    pub(crate) tx: Option<ChildStdin>,
    /// From the peer (acknowledgements, replies, pipe data).
    pub(crate) rx: ChildStdout,
}

// Unused by `benches/process.rs`, which starts no peer.
#[allow(dead_code)]
impl PeerProcess {
    /// Starts the peer, pinned to `cpu` if any; `configure` adds the
    /// bench's own settings to the command.
    pub(crate) fn start(label: &'static str, cpu: Option<usize>, configure: impl FnOnce(&mut Command)) -> PeerProcess {
        let mut cmd = Command::new(std::env::current_exe().expect("the bench binary's path"));
        cmd.env(ROLE_ENV, "peer").stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        configure(&mut cmd);
        if let Some(c) = cpu {
            cmd.env(CPU_ENV, c.to_string());
        }
        let mut child = cmd.spawn().expect("start the peer process");
        let tx = child.stdin.take().expect("piped stdin");
        let rx = child.stdout.take().expect("piped stdout");
        PeerProcess { label, child, tx: Some(tx), rx }
    }

    pub(crate) fn tx(&mut self) -> &mut ChildStdin {
        self.tx.as_mut().expect("invariant: open until drop")
    }

    /// Sends the peer a command: its byte and a count (`[cmd][n: u64 LE]`,
    /// what the peers read after `read_command`).
    pub(crate) fn command(&mut self, cmd: u8, n: u64) {
        let mut msg = [0u8; 9];
        msg[0] = cmd;
        msg[1..].copy_from_slice(&n.to_le_bytes());
        self.tx().write_all(&msg).expect("send the peer a command");
    }

    /// Reads one byte from the peer and checks that it is `reply`.
    pub(crate) fn expect(&mut self, reply: u8) {
        let mut b = [0u8];
        self.rx.read_exact(&mut b).expect("the peer exited (see its stderr above)");
        assert_eq!(b[0], reply, "unexpected reply from the peer");
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        drop(self.tx.take()); // EOF: the peer's loop ends
        match self.child.wait() {
            Ok(s) if s.success() => {}
            Ok(s) => eprintln!("{}: the peer ended with {s}", self.label),
            Err(e) => eprintln!("{}: waiting for the peer failed: {e}", self.label),
        }
    }
}

/// In the peer: pins this process to the CPU the parent chose, if any.
// Unused by `benches/process.rs`, which starts no peer.
#[allow(dead_code)]
pub(crate) fn pin_peer_from_env() {
    if let Ok(cpu) = std::env::var(CPU_ENV)
        && let Ok(cpu) = cpu.parse::<usize>()
    {
        let mut set = CpuSet::new();
        set.set(cpu);
        let _ = sched_setaffinity(None, &set);
    }
}

/// In the peer: unbuffered handles on the stdin and stdout pipes (a
/// buffered reader would swallow pipe data along with a doorbell byte).
// Unused by `benches/process.rs`, which starts no peer.
#[allow(dead_code)]
pub(crate) fn peer_stdio() -> (File, File) {
    let rx = File::from(std::io::stdin().as_fd().try_clone_to_owned().expect("peer: dup stdin"));
    let tx = File::from(std::io::stdout().as_fd().try_clone_to_owned().expect("peer: dup stdout"));
    (rx, tx)
}

/// In the peer: the next command byte from the parent, or `None` once the
/// parent closed the pipe. `what` names the byte in the panic message.
// Unused by `benches/process.rs`, which starts no peer.
#[allow(dead_code)]
pub(crate) fn read_command(rx: &mut File, what: &str) -> Option<u8> {
    let mut cmd = [0u8];
    loop {
        match rx.read(&mut cmd) {
            Ok(0) => return None,
            Ok(_) => return Some(cmd[0]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => panic!("peer: reading {what}: {e}"),
        }
    }
}

/// A peer started on first use, so `--list` or a filter that skips the
/// group starts no process.
#[allow(dead_code)] // benches/process.rs starts no peer of its own
pub(crate) struct LazyPeer<P> {
    cpu: Option<usize>,
    start: fn(Option<usize>) -> P,
    peer: std::cell::RefCell<Option<P>>,
}

#[allow(dead_code)] // benches/process.rs starts no peer of its own
impl<P> LazyPeer<P> {
    /// A peer that `start(cpu)` will make on first use.
    pub(crate) fn new(cpu: Option<usize>, start: fn(Option<usize>) -> P) -> LazyPeer<P> {
        LazyPeer { cpu, start, peer: std::cell::RefCell::new(None) }
    }

    /// Runs `f` on the peer, starting it first if needed.
    pub(crate) fn with(&self, f: impl FnOnce(&mut P) -> std::time::Duration) -> std::time::Duration {
        let mut slot = self.peer.borrow_mut();
        f(slot.get_or_insert_with(|| (self.start)(self.cpu)))
    }
}

/// Benchmarks `routine` (iterations -> time taken) as `name` in `group`,
/// recording each call's time per iteration in `rec` for the summary line.
#[allow(dead_code)] // benches/process.rs reports differently
pub(crate) fn timed(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rec: &Recorder,
    name: &'static str,
    mut routine: impl FnMut(u64) -> std::time::Duration,
) {
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let elapsed = routine(iters);
            rec.record(name, elapsed, iters);
            elapsed
        });
    });
}

/// Per function: `(seconds per iteration, iterations)` of every
/// `iter_custom` call, criterion's warm-up calls first, then exactly
/// [`SAMPLES`] measured ones.
#[allow(dead_code)] // benches/process.rs reports differently
#[derive(Default)]
pub(crate) struct Recorder(std::cell::RefCell<std::collections::BTreeMap<&'static str, Vec<(f64, u64)>>>);

#[allow(dead_code)] // benches/process.rs reports differently; not every bench counts iterations
impl Recorder {
    pub(crate) fn record(&self, name: &'static str, elapsed: std::time::Duration, iters: u64) {
        self.0.borrow_mut().entry(name).or_default().push((elapsed.as_secs_f64() / iters.max(1) as f64, iters));
    }

    /// The median time per iteration over the measured samples.
    pub(crate) fn median(&self, name: &str) -> Option<f64> {
        let all = self.0.borrow();
        let calls = all.get(name)?;
        median(measured(calls).iter().map(|s| s.0).collect())
    }

    /// Iterations run so far, warm-up included.
    pub(crate) fn total_iters(&self, name: &str) -> u64 {
        self.0.borrow().get(name).map_or(0, |calls| calls.iter().map(|s| s.1).sum())
    }
}
