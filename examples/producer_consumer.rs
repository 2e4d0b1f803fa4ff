//! Producers and consumers (scenario 7), first with an end-of-stream marker,
//! then with a [`JoinableQueue`] and daemon consumers.
//!
//! 1. One producer process puts 10 lines into a [`Queue<Option<String>>`],
//!    then `None` as the end of the stream; one consumer process gets until
//!    it sees `None`.
//! 2. Two producer processes put 10 tasks each into a `JoinableQueue`; two
//!    daemon consumer processes get tasks forever, send each result back on
//!    a second queue, and call `task_done()`. The parent joins the
//!    producers, then `join()`s the queue (every task was marked done), then
//!    stops the consumers with `terminate()`.
//!
//! Python:
//!
//! ```python
//! def consumer(q, results):
//!     while True:
//!         n = q.get()
//!         results.put((os.getpid(), n, n * n))
//!         q.task_done()
//!
//! q, results = JoinableQueue(), Queue()
//! consumers = [Process(target=consumer, args=(q, results), daemon=True) for _ in range(2)]
//! producers = [Process(target=producer, args=(q, i)) for i in range(2)]
//! for p in consumers + producers: p.start()
//! for p in producers: p.join()
//! q.join()                          # every task is done
//! for c in consumers: c.terminate()
//! ```
//!
//! One difference from Python: a `get` on an empty queue whose producers
//! (the processes that have put, or called `register_producer`) have all
//! exited returns `Err(Disconnected)` instead of waiting forever. Here the
//! parent calls `register_producer()`, so the consumers wait for work until
//! they are terminated, as in Python; without it they would see
//! `Disconnected` once both producers had exited and could end by
//! themselves.
//!
//! Run it with `cargo run --release --example producer_consumer`.

use std::error::Error;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shmproc::{JoinableQueue, Process, Queue};

/// Lines in part 1.
const LINES: u32 = 10;
/// Producers in part 2, and tasks each.
const PRODUCERS: u64 = 2;
const TASKS: u64 = 10;
/// Consumers in part 2.
const CONSUMERS: usize = 2;

// ---------------------------------------------------------------------------
// 1. One producer, one consumer, an end-of-stream marker

/// Puts the lines, then `None`; returns its pid.
fn write_lines(q: Queue<Option<String>>) -> u32 {
    for n in 1..=LINES {
        q.put(Some(format!("line {n}"))).expect("put a line");
    }
    q.put(None).expect("put the end marker");
    std::process::id()
}

/// Gets lines until `None`; returns its pid and the lines.
fn read_lines(q: Queue<Option<String>>) -> (u32, Vec<String>) {
    let mut lines = Vec::new();
    while let Some(line) = q.get().expect("get a line") {
        lines.push(line);
    }
    (std::process::id(), lines)
}

fn end_marker() -> Result<(), Box<dyn Error>> {
    println!("-- 1 producer, 1 consumer, None as the end-of-stream marker --");
    let q = Queue::<Option<String>>::new(4)?;
    let mut consumer = Process::spawn(read_lines, q.clone())?;
    let mut producer = Process::spawn(write_lines, q.clone())?;
    let pid = producer.join()?;
    println!("producer (pid {pid}): put {LINES} lines, then None");
    let (pid, lines) = consumer.join()?;
    println!(
        "consumer (pid {pid}): got {} lines, then None: {:?} .. {:?}",
        lines.len(),
        lines[0],
        lines[lines.len() - 1]
    );
    let expected: Vec<String> = (1..=LINES).map(|n| format!("line {n}")).collect();
    if lines != expected {
        return Err(format!("lines lost, duplicated or out of order: {lines:?}").into());
    }
    println!("every line arrived once, in order; the consumer stopped at the marker");
    Ok(())
}

// ---------------------------------------------------------------------------
// 2. Two producers, two daemon consumers, a JoinableQueue

/// One unit of work: a number to square, and who put it.
#[derive(Debug, Serialize, Deserialize)]
struct Task {
    producer: u64,
    n: u64,
}

/// What a consumer sends back: its pid, the task's producer and number,
/// and the square.
type Outcome = (u32, u64, u64, u64);

/// Producer `p` puts tasks `p * TASKS + 1 ..= (p + 1) * TASKS`.
fn produce((q, p): (JoinableQueue<Task>, u64)) -> u32 {
    for n in p * TASKS + 1..=(p + 1) * TASKS {
        q.put(Task { producer: p, n }).expect("put a task");
    }
    std::process::id()
}

/// Does tasks until it is terminated.
fn consume((q, results): (JoinableQueue<Task>, Queue<Outcome>)) {
    let me = std::process::id();
    loop {
        let task = q.get().expect("get a task");
        std::thread::sleep(Duration::from_millis(2)); // the work
        results.put((me, task.producer, task.n, task.n * task.n)).expect("put a result");
        q.task_done().expect("one task_done per get");
    }
}

fn joinable() -> Result<(), Box<dyn Error>> {
    println!("\n-- {PRODUCERS} producers, {CONSUMERS} daemon consumers, a JoinableQueue --");
    let q = JoinableQueue::<Task>::new(0)?;
    // The parent may put more work later: consumers wait for it.
    q.register_producer()?;
    let results = Queue::<Outcome>::new(0)?;
    let consumers = (0..CONSUMERS)
        .map(|_| Process::builder().daemon(true).spawn(consume, (q.clone(), results.clone())))
        .collect::<Result<Vec<_>, _>>()?;
    let mut producers =
        (0..PRODUCERS).map(|p| Process::spawn(produce, (q.clone(), p))).collect::<Result<Vec<_>, _>>()?;
    for (p, producer) in producers.iter_mut().enumerate() {
        let pid = producer.join()?;
        println!("producer {p} (pid {pid}): put {TASKS} tasks");
    }

    q.join()?;
    println!("join() returned: every task was marked done (unfinished() = {})", q.unfinished());
    for c in &consumers {
        c.terminate()?;
    }
    for mut c in consumers {
        let stopped = c.join().expect_err("a terminated consumer returns nothing");
        let status = c.exitcode().ok_or("a joined consumer has an exit code")?;
        println!("terminate() consumer pid {}: is_alive() = {}, exitcode() = {status}", c.pid(), c.is_alive());
        if status.signal() != Some(15) {
            return Err(format!("the consumer did not end by SIGTERM: {stopped}").into());
        }
    }

    let mut outcomes = Vec::new();
    while let Ok(outcome) = results.try_get() {
        outcomes.push(outcome);
    }
    let mut pids: Vec<u32> = outcomes.iter().map(|o| o.0).collect();
    pids.sort_unstable();
    pids.dedup();
    for pid in pids {
        let done = outcomes.iter().filter(|o| o.0 == pid).count();
        println!("consumer pid {pid}: did {done} tasks");
    }
    let mut numbers: Vec<u64> = outcomes.iter().map(|o| o.2).collect();
    numbers.sort_unstable();
    let all = PRODUCERS * TASKS;
    if numbers != (1..=all).collect::<Vec<_>>()
        || outcomes.iter().any(|&(_, p, n, sq)| sq != n * n || (n - 1) / TASKS != p)
    {
        return Err(format!("tasks lost, duplicated or wrong: {outcomes:?}").into());
    }
    println!("all {all} results arrived; each task was done exactly once");
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    shmproc::init();
    end_marker()?;
    joinable()
}
