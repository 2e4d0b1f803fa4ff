//! Daemon children, `terminate()` and `kill()`, and what a child knows about
//! its parent.
//!
//! - A daemon cannot start children of its own: it gets a clear error.
//! - A busy child is stopped with `terminate()` (SIGTERM) or `kill()`
//!   (SIGKILL); `is_alive()` and `exitcode()` say so before and after, and
//!   `exitcode().python()` gives Python's `-15` / `-9`.
//! - A child sees its parent through `shmproc::parent_process()`.
//! - At normal exit, the program waits for its non-daemon children and
//!   terminates its daemon children, as Python does: the last section starts
//!   a daemon that would sleep for a minute, and the program still ends at
//!   once.
//!
//! Run it with `cargo run --release --example daemons_and_signals`.

use std::time::Duration;

use shmproc::Process;

fn square(x: u64) -> u64 {
    x * x
}

/// Tries to start a child; a daemon is refused.
fn try_to_have_a_child(x: u64) -> Result<u64, String> {
    let mut p = Process::spawn(square, x).map_err(|e| e.to_string())?;
    p.join().map_err(|e| e.to_string())
}

/// Works until stopped.
fn busy(_: ()) {
    let mut n = 0u64;
    loop {
        n = std::hint::black_box(n.wrapping_add(1));
    }
}

fn sleep_secs(secs: u64) {
    std::thread::sleep(Duration::from_secs(secs));
}

/// The child's view: its own pid, and the name and pid of its parent.
fn who_is_my_parent(_: ()) -> (u32, Option<(String, u32)>) {
    let parent = shmproc::parent_process().map(|p| (p.name().to_owned(), p.pid()));
    (std::process::id(), parent)
}

/// Starts a child that works until stopped, and shows it running.
fn start_busy_child() -> shmproc::Result<Process> {
    let p = Process::spawn(busy, ())?;
    std::thread::sleep(Duration::from_millis(100)); // let it get busy
    println!("{} pid {}: is_alive() = {}, exitcode() = {:?}", p.name(), p.pid(), p.is_alive(), p.exitcode());
    Ok(p)
}

/// Joins a child stopped by a signal and shows how it ended.
fn show_how_it_ended(mut p: Process, call: &str) {
    // join() waits; the child produced no result, so it is an error.
    let error = p.join().expect_err("the child was stopped by a signal");
    let status = p.exitcode().expect("a joined child has exited");
    println!("after {call}: is_alive() = {}, exitcode() = {status}, Python exitcode {}", p.is_alive(), status.python());
    println!("  join(): {error}");
}

fn main() -> shmproc::Result<()> {
    shmproc::init();
    let me = shmproc::current_process();
    println!("{} pid {}", me.name(), me.pid());

    println!("\n-- a daemon cannot have children --");
    let mut normal = Process::spawn(try_to_have_a_child, 3)?;
    println!("non-daemon child {}: its own child returned {:?}", normal.pid(), normal.join()?);
    let mut daemon = Process::builder().daemon(true).spawn(try_to_have_a_child, 3)?;
    match daemon.join()? {
        Err(message) => println!("daemon child {}: error: {message}", daemon.pid()),
        Ok(v) => println!("daemon child {}: unexpectedly started a child ({v})", daemon.pid()),
    }

    println!("\n-- terminate() and kill() of a busy child --");
    let p = start_busy_child()?;
    p.terminate()?;
    show_how_it_ended(p, "terminate()");
    let p = start_busy_child()?;
    p.kill()?;
    show_how_it_ended(p, "kill()");

    println!("\n-- the child's view of its parent --");
    let mut p = Process::spawn(who_is_my_parent, ())?;
    let (pid, parent) = p.join()?;
    match parent {
        Some((name, ppid)) => println!("child {pid}: parent_process() is {name} pid {ppid}"),
        None => println!("child {pid}: parent_process() is None"),
    }

    println!("\n-- a daemon is terminated when its parent exits --");
    let sleeper = Process::builder().name("sleeper").daemon(true).spawn(sleep_secs, 60)?;
    println!("daemon {} pid {} sleeps for 60 s: is_alive() = {}", sleeper.name(), sleeper.pid(), sleeper.is_alive());
    println!("main returns now; the exit handler terminates daemon pid {} instead of waiting", sleeper.pid());
    Ok(())
}
