//! Start methods: the same program under Fork, Spawn and ForkServer, chosen
//! globally with `set_start_method` or per call through a `Context`, and what
//! each costs to start and join a child.
//!
//! - Fork: the child is a copy of the parent. Fastest; refused while the
//!   parent has several threads. The only method that can run a closure.
//! - Spawn: the program is executed again and the child finds its task in
//!   shared memory. Slowest; always safe.
//! - ForkServer (the default): a single-threaded server, started once, forks
//!   each child. Safe with threads, nearly as fast as Fork.
//!
//! Python: `multiprocessing.set_start_method(...)` and
//! `multiprocessing.get_context(...)`.
//!
//! Run it with `cargo run --release --example start_methods`.

use std::time::{Duration, Instant};

use shmproc::{Context, Process, StartMethod};

/// Children timed per method.
const CHILDREN: u32 = 20;

/// The program's work: its pid, its parent's pid, and a square.
fn work(x: u64) -> (u32, u32, u64) {
    (std::process::id(), std::os::unix::process::parent_id(), x * x)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Python's multiprocessing, start+join of one child, in ms (measured on
/// the project's 2-vCPU machine; docs/performance.md).
fn python_ms(method: StartMethod) -> f64 {
    match method {
        StartMethod::Fork => 4.0,
        StartMethod::Spawn => 91.0,
        StartMethod::ForkServer => 22.0,
    }
}

fn main() -> shmproc::Result<()> {
    shmproc::init();
    let me = std::process::id();
    println!("parent pid {me}; default start method: {}", shmproc::start_method());

    // Fork first: it needs a single-threaded parent, and nothing here starts
    // a thread (children started from the main thread need none).
    let methods = [StartMethod::Fork, StartMethod::Spawn, StartMethod::ForkServer];

    println!("\n-- chosen globally: set_start_method(m), then Process::spawn --");
    let mut means = Vec::new();
    for method in methods {
        shmproc::set_start_method(method)?;
        let t = Instant::now();
        let (pid, ppid, square) = Process::spawn(work, 7)?.join()?;
        let first = t.elapsed(); // for forkserver this includes starting the server
        let t = Instant::now();
        for i in 0..CHILDREN {
            Process::spawn(work, u64::from(i))?.join()?;
        }
        let mean = t.elapsed() / CHILDREN;
        means.push((method, mean));
        println!(
            "{:>10}: child pid {pid} (parent {ppid}) returned {square}; \
             start+join mean {:.2} ms per child over {CHILDREN} (first child {:.2} ms)",
            method.as_str(),
            ms(mean),
            ms(first)
        );
    }
    shmproc::set_start_method(StartMethod::ForkServer)?;

    println!("\n-- through a Context: the method is fixed per context --");
    for method in methods {
        let ctx = Context::new(method);
        let (pid, ppid, square) = ctx.spawn(work, 9)?.join()?;
        println!("{:>10}: child pid {pid} (parent {ppid}) returned {square}", ctx.start_method().as_str());
    }

    println!("\n-- only Fork runs a closure --");
    let offset = 100; // captured: a forked child has a copy of the parent's memory
    let mut p = Process::fork(move || offset + 23)?;
    println!("fork closure returned {}", p.join()?);

    println!("\nstart+join per child, compared with Python's multiprocessing:");
    for (method, mean) in means {
        let python = python_ms(method);
        println!("{:>10}: {:.2} ms vs Python {python:.1} ms ({:.0}x)", method.as_str(), ms(mean), python / ms(mean));
    }
    Ok(())
}
