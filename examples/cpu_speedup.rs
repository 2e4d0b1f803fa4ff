//! CPU-bound speed-up: 5 processes each count to 10^7. Each child reports
//! the CPU time its own count took; the parent measures the wall time of the
//! whole run. With a core per child the wall time is close to the slowest
//! child, not the sum; with fewer cores than children (say 2) it is about
//! children / cores times one count.
//!
//! Run it with `cargo run --release --example cpu_speedup`.

use std::time::Instant;

use shmproc::Process;

const CHILDREN: u64 = 5;
const COUNT: u64 = 10_000_000;
/// Rust counts to 10^7 in a few milliseconds, about what starting a process
/// costs, so each child counts to 10^7 this many times to make the times
/// worth comparing.
const ROUNDS: u64 = 20;

/// This process's CPU time in seconds (wall time would also count the
/// moments the child waits for a core while its siblings run).
fn cpu_seconds() -> f64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

/// Counts to `n`, `ROUNDS` times; returns the count and the CPU seconds it took.
fn count_to(n: u64) -> (u64, f64) {
    let start = cpu_seconds();
    let mut i = 0u64;
    for _ in 0..ROUNDS {
        i = 0;
        while i < n {
            i = std::hint::black_box(i + 1); // keeps the loop from being folded away
        }
    }
    (i, cpu_seconds() - start)
}

fn main() -> shmproc::Result<()> {
    shmproc::init();
    println!("{CHILDREN} processes each counting to {COUNT} ({ROUNDS} times) on {} CPUs", shmproc::cpu_count());

    let wall = Instant::now();
    let mut children = Vec::new();
    for _ in 0..CHILDREN {
        children.push(Process::spawn(count_to, COUNT)?);
    }
    let mut sum = 0.0;
    for p in &mut children {
        let (n, secs) = p.join()?;
        println!("{} pid {}: counted to {n} ({ROUNDS} times) in {secs:.3} s of CPU", p.name(), p.pid());
        sum += secs;
    }
    let wall = wall.elapsed().as_secs_f64();

    println!("wall time {wall:.3} s vs sum of child times {sum:.3} s (what one process would take in a row)");
    println!("speed-up {:.2}x", sum / wall);
    Ok(())
}
