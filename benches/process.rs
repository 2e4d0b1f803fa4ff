//! Process start+join: the three shmproc start methods against
//! `std::process::Command`.
//!
//! Group `start_join`, each function starting an empty child and waiting
//! for it:
//!
//! - `fork`: `Process` with [`StartMethod::Fork`] running `fn noop(_: ()) {}`;
//! - `spawn`: the same with [`StartMethod::Spawn`] (re-executes this binary);
//! - `forkserver`: the same with [`StartMethod::ForkServer`] (the server is
//!   started by the warm-up, so only the per-child cost is timed);
//! - `std_command`: `Command::new(current_exe)` of this binary with
//!   `SHMPROC_BENCH_ROLE=exit`, which makes [`main`] exit at once, then
//!   `wait()`: the floor any re-executing method pays.
//!
//! Fork is refused in a process with several threads, and criterion's
//! analysis starts a rayon thread pool after the first benchmark. So `fork`
//! runs first and forks directly while this process has one thread; if it
//! has more (a second run of the group, or a filter that ran something
//! before), each sample is delegated to a child started with Spawn (single
//! threaded: it runs its task before `main`), which times its own forks and
//! reports the elapsed time through `iter_custom`. `SHMPROC_BENCH_FORK=child`
//! forces that way. The summary line says which way was used.
//!
//! After the group, one line per method gives the mean milliseconds per
//! start+join over the measured samples, the ratio to `std_command`, and
//! the ratio to Python's figure on this kind of machine (docs/performance.md:
//! fork 4.0 ms, spawn 91 ms, forkserver 22 ms; targets <= 1/4, 1/10, 1/5).
//!
//! Run with `cargo bench --bench process`.

mod common;

use std::cell::RefCell;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{ROLE_ENV, SAMPLES, is_role, measured, measuring};
use criterion::{Criterion, SamplingMode};
use shmproc::{Context, Process, StartMethod};

/// `child`: take the fork samples in a Spawn child even when this process
/// could fork itself.
const FORK_ENV: &str = "SHMPROC_BENCH_FORK";

/// The empty task every measured child runs.
fn noop(_: ()) {}

fn main() {
    shmproc::init();
    // `std_command` re-executes this binary with `ROLE_ENV=exit`: exit at once.
    if is_role("exit") {
        std::process::exit(0);
    }
    let mut c = Criterion::default().configure_from_args();
    start_join(&mut c);
    c.final_summary();
}

/// How the fork samples were taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ForkMode {
    /// Forked by this (single-threaded) process.
    Direct,
    /// Forked by a single-threaded Spawn child that timed itself.
    Delegated,
}

/// Per-sample `(elapsed, iterations)` of each function, warm-up included.
#[derive(Default)]
struct Samples {
    fork: Vec<(Duration, u64)>,
    spawn: Vec<(Duration, u64)>,
    forkserver: Vec<(Duration, u64)>,
    std_command: Vec<(Duration, u64)>,
    fork_modes: Vec<ForkMode>,
}

fn start_join(c: &mut Criterion) {
    let samples = RefCell::new(Samples::default());
    let mut group = c.benchmark_group("start_join");
    group.sample_size(SAMPLES);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    group.sampling_mode(SamplingMode::Flat);

    let force_child = std::env::var_os(FORK_ENV).is_some_and(|v| v == "child");
    group.bench_function("fork", |b| {
        b.iter_custom(|iters| {
            let (elapsed, mode) = if thread_count() == 1 && !force_child {
                (fork_loop(iters), ForkMode::Direct)
            } else {
                (fork_loop_in_child(iters), ForkMode::Delegated)
            };
            let mut s = samples.borrow_mut();
            s.fork.push((elapsed, iters));
            s.fork_modes.push(mode);
            elapsed
        });
    });
    group.bench_function("spawn", |b| {
        b.iter_custom(|iters| {
            let elapsed = method_loop(StartMethod::Spawn, iters);
            samples.borrow_mut().spawn.push((elapsed, iters));
            elapsed
        });
    });
    group.bench_function("forkserver", |b| {
        b.iter_custom(|iters| {
            let elapsed = method_loop(StartMethod::ForkServer, iters);
            samples.borrow_mut().forkserver.push((elapsed, iters));
            elapsed
        });
    });
    group.bench_function("std_command", |b| {
        let exe = std::env::current_exe().expect("the bench binary's path");
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let status = Command::new(&exe).env(ROLE_ENV, "exit").status().expect("run the bench binary");
                assert!(status.success(), "the exit role failed: {status}");
            }
            let elapsed = start.elapsed();
            samples.borrow_mut().std_command.push((elapsed, iters));
            elapsed
        });
    });
    group.finish();

    if measuring() {
        for line in summary(&samples.into_inner()) {
            println!("{line}");
        }
    }
}

/// Starts and joins `iters` empty children with `method`; the time taken.
fn method_loop(method: StartMethod, iters: u64) -> Duration {
    let ctx = Context::new(method);
    let start = Instant::now();
    for _ in 0..iters {
        let mut p = ctx.spawn(noop, ()).expect("start a child");
        p.join().expect("join the child");
    }
    start.elapsed()
}

/// Forks and joins `iters` empty children from this process, which must
/// be single-threaded.
fn fork_loop(iters: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        let mut p = Process::builder().start_method(StartMethod::Fork).spawn(noop, ()).expect("fork a child");
        p.join().expect("join the forked child");
    }
    start.elapsed()
}

/// The task of a delegated fork sample: runs in a Spawn child (single
/// threaded, before `main`) and returns the nanoseconds its forks took.
fn fork_loop_task(iters: u64) -> u64 {
    u64::try_from(fork_loop(iters).as_nanos()).unwrap_or(u64::MAX)
}

/// [`fork_loop`] in a Spawn child; the child's own measurement (its start
/// and the result's return are not timed).
fn fork_loop_in_child(iters: u64) -> Duration {
    let mut p = Context::new(StartMethod::Spawn).spawn(fork_loop_task, iters).expect("start the fork timer child");
    Duration::from_nanos(p.join().expect("the fork timer child"))
}

/// Threads of this process (entries of `/proc/self/task`).
fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

/// Mean milliseconds per start+join over the measured samples (the last
/// [`SAMPLES`] calls; criterion's warm-up calls come first).
fn mean_ms(samples: &[(Duration, u64)]) -> Option<f64> {
    let measured = measured(samples);
    let iters: u64 = measured.iter().map(|s| s.1).sum();
    if iters == 0 {
        return None;
    }
    let total: f64 = measured.iter().map(|s| s.0.as_secs_f64()).sum();
    Some(total / iters as f64 * 1e3)
}

/// One summary row: the method, its samples, Python's figure with the
/// target divisor, and a note.
struct Row<'a> {
    name: &'a str,
    samples: &'a [(Duration, u64)],
    python: Option<(f64, f64)>,
    note: &'a str,
}

/// One line per method that ran: mean, ratio to `std_command`, and the
/// ratio to Python with the docs/performance.md target.
fn summary(s: &Samples) -> Vec<String> {
    let base = mean_ms(&s.std_command);
    let measured_modes = measured(&s.fork_modes);
    let fork_how = if measured_modes.contains(&ForkMode::Delegated) {
        "forked by a single-threaded spawn child"
    } else {
        "forked by this process"
    };
    let rows = [
        Row { name: "fork", samples: &s.fork, python: Some((4.0, 4.0)), note: fork_how },
        Row { name: "spawn", samples: &s.spawn, python: Some((91.0, 10.0)), note: "" },
        Row { name: "forkserver", samples: &s.forkserver, python: Some((22.0, 5.0)), note: "" },
        Row { name: "std_command", samples: &s.std_command, python: None, note: "Command::new(current_exe) + wait" },
    ];
    let mut lines = Vec::new();
    for Row { name, samples, python, note } in rows {
        let Some(ms) = mean_ms(samples) else { continue };
        let mut line = format!("start_join/{name}: {ms:.3} ms per start+join");
        if let Some(b) = base
            && name != "std_command"
        {
            line += &format!(", {:.2}x std_command", ms / b);
        }
        if let Some((py, target)) = python {
            let verdict = if ms * target <= py { "meets" } else { "misses" };
            line += &format!(", 1/{:.1} of Python's {py} ms ({verdict} the 1/{target} target)", py / ms);
        }
        if !note.is_empty() {
            line += &format!(" [{note}]");
        }
        lines.push(line);
    }
    lines
}
