//! A pool of worker processes (scenario 8): `apply` (blocking; the same
//! few worker pids come back), `apply_async` and its result handle,
//! `apply_async_with` and callbacks that run in the parent (a fetch-then-parse
//! pipeline), `map`, `imap` (results in submission order), `imap_unordered`
//! (results in completion order), several parameters per task, and `close`
//! then `join`.
//!
//! Python:
//!
//! ```python
//! with Pool(3) as pool:
//!     pool.apply(whoami, (1,))                                   # blocks
//!     r = pool.apply_async(slow_square, (12,)); r.get()
//!     pool.apply_async(fetch, (url,), callback=parse, error_callback=report)
//!     pool.map(square, range(1, 11))
//!     pool.imap(nap, jobs); pool.imap_unordered(nap, jobs)
//!     pool.starmap(power, [(2, 10), (3, 4), (10, 3)])
//!     pool.close(); pool.join()
//! ```
//!
//! In shmproc a task is a plain `fn(A) -> R`: several parameters travel as
//! a tuple (Python's `starmap`) or a struct (its keyword arguments).
//! `apply_async_with` takes the two callbacks as closures; they run in this
//! process, on the pool's supervisor thread, before the handle is ready.
//! A task that panics fails alone: its error goes to its handle (or error
//! callback) and the worker goes on.
//!
//! Run it with `cargo run --release --example pool`.

use std::error::Error;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shmproc::Pool;

/// Worker processes in the pool.
const WORKERS: usize = 3;

/// Returns its argument and the pid of the worker that ran it.
fn whoami(n: u32) -> (u32, u32) {
    (n, std::process::id())
}

fn slow_square(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(200));
    x * x
}

fn square(x: u64) -> u64 {
    x * x
}

/// Sleeps `ms`, then returns `n`.
fn nap((n, ms): (u32, u64)) -> u32 {
    std::thread::sleep(Duration::from_millis(ms));
    n
}

// ---------------------------------------------------------------------------
// Fetch (in a worker), then parse (in the parent)

/// A pretend download: slow, done in a worker; fails on an address it
/// cannot fetch.
fn fetch(url: String) -> String {
    std::thread::sleep(Duration::from_millis(30));
    let Some(site) = url.strip_prefix("https://") else {
        panic!("cannot fetch {url:?}: not an https address");
    };
    format!("<title>{site}</title> served to pid {} for {url}", std::process::id())
}

/// The name of the thread running this (callbacks run on the pool's
/// supervisor thread).
fn thread_name() -> String {
    std::thread::current().name().unwrap_or("unnamed").to_owned()
}

/// What the parent makes of a page: its title and its number of words.
fn parse(page: &str) -> (String, usize) {
    let title = page.split("<title>").nth(1).and_then(|rest| rest.split("</title>").next()).unwrap_or("?");
    (title.to_owned(), page.split_whitespace().count())
}

// ---------------------------------------------------------------------------
// Several parameters per task

/// By position (Python's `starmap`): `base` to the power `exp`.
fn power((base, exp): (u64, u32)) -> u64 {
    base.pow(exp)
}

/// By name: an order line.
#[derive(Debug, Serialize, Deserialize)]
struct Order {
    item: String,
    quantity: u32,
    unit_cents: u64,
}

fn total(order: Order) -> String {
    let unit = order.unit_cents as f64 / 100.0;
    format!("{} x {} at {unit:.2} = {:.2}", order.quantity, order.item, unit * f64::from(order.quantity))
}

fn main() -> Result<(), Box<dyn Error>> {
    shmproc::init();
    let me = std::process::id();
    let pool = Pool::new(WORKERS)?;
    println!("a pool of {} workers; the parent is pid {me}", pool.processes());

    println!("\n-- apply: one task at a time, blocking --");
    let mut pids = Vec::new();
    for n in 1..=6 {
        let (back, pid) = pool.apply(whoami, n)?;
        println!("apply(whoami, {n}) -> {back}, ran in worker pid {pid}");
        pids.push(pid);
    }
    pids.sort_unstable();
    pids.dedup();
    println!("6 calls ran in {} worker processes: the pool reuses its workers", pids.len());
    if pids.len() > WORKERS || pids.contains(&me) {
        return Err(format!("more workers than the pool has, or the parent ran a task: {pids:?}").into());
    }

    println!("\n-- apply_async: a result handle --");
    let h = pool.apply_async(slow_square, 12)?;
    println!("apply_async(slow_square, 12) returned at once; ready() = {}", h.ready());
    let got = h.get()?;
    println!("get() -> {got}; ready() = {}, successful() = {:?}", h.ready(), h.successful());
    if got != 144 {
        return Err(format!("slow_square(12) = {got}").into());
    }

    println!("\n-- apply_async_with: fetch in the workers, parse in the parent --");
    let urls = ["https://example.org", "https://rust-lang.org", "ftp://old.example", "https://python.org"];
    // Each callback logs the pid and thread it runs on, and the parsed page or the error.
    let log = Arc::new(Mutex::new(Vec::<(u32, String, Result<(String, usize), String>)>::new()));
    let mut handles = Vec::new();
    for url in urls {
        let (ok_log, err_log) = (log.clone(), log.clone());
        let on_ok = move |page: String| {
            ok_log.lock().expect("no callback panics").push((std::process::id(), thread_name(), Ok(parse(&page))))
        };
        let on_err = move |e: shmproc::Error| {
            err_log.lock().expect("no callback panics").push((std::process::id(), thread_name(), Err(e.to_string())))
        };
        handles.push(pool.apply_async_with(fetch, url.to_owned(), on_ok, on_err)?);
    }
    for h in &handles {
        h.wait(); // the callback has run when the handle is ready
    }
    let log = std::mem::take(&mut *log.lock().expect("no callback panics"));
    let mut titles = Vec::new();
    for (pid, thread, outcome) in &log {
        let whose = if *pid == me { "the parent" } else { "not the parent!" };
        match outcome {
            Ok((title, words)) => {
                println!("callback in pid {pid} ({whose}), thread {thread}: parsed {title:?}, {words} words");
                titles.push(title.as_str());
            }
            Err(e) => println!("error_callback in pid {pid} ({whose}), thread {thread}: {e}"),
        }
        if *pid != me || thread == "main" {
            return Err("callbacks run in the parent, on the pool's thread".into());
        }
    }
    titles.sort_unstable();
    if titles != ["example.org", "python.org", "rust-lang.org"] || log.len() != urls.len() {
        return Err(format!("each page parsed once, the bad address reported once: {log:?}").into());
    }
    println!("3 pages fetched and parsed, 1 fetch failed; the other tasks were not affected");

    println!("\n-- map: every item, results in order --");
    let squares = pool.map(square, 1..=10)?;
    println!("map(square, 1..=10) -> {squares:?}");
    if squares != (1..=10u64).map(|x| x * x).collect::<Vec<_>>() {
        return Err("map results out of order".into());
    }

    println!("\n-- several parameters per task: a tuple or a struct --");
    let powers = pool.map(power, [(2, 10), (3, 4), (10, 3)])?;
    println!("map(power, [(2, 10), (3, 4), (10, 3)]) -> {powers:?} (Python's starmap)");
    let order = Order { item: "widget".into(), quantity: 3, unit_cents: 250 };
    let line = pool.apply(total, order)?;
    println!("apply(total, Order {{ item, quantity, unit_cents }}) -> {line}");
    if powers != [1024, 81, 1000] || line != "3 x widget at 2.50 = 7.50" {
        return Err("wrong results with several parameters".into());
    }

    println!("\n-- imap and imap_unordered: item 1 takes 300 ms, the others 10 to 150 ms --");
    let jobs = [(1, 300), (2, 10), (3, 150), (4, 10), (5, 10), (6, 10)];
    let ordered = pool.imap(nap, jobs)?.collect::<Result<Vec<u32>, _>>()?;
    println!("imap yielded           {ordered:?}: submission order");
    let unordered = pool.imap_unordered(nap, jobs)?.collect::<Result<Vec<u32>, _>>()?;
    println!("imap_unordered yielded {unordered:?}: completion order");
    let mut sorted = unordered.clone();
    sorted.sort_unstable();
    if ordered != [1, 2, 3, 4, 5, 6] || sorted != ordered || unordered == ordered {
        return Err("imap must keep the submission order, imap_unordered the completion order".into());
    }
    println!("the slow item 1 held imap back; imap_unordered gave the fast ones first");

    println!("\n-- close, then join --");
    if let Err(e) = pool.join() {
        println!("join() before close() -> {e}");
    }
    let handles = (1..=5).map(|x| pool.apply_async(slow_square, x)).collect::<Result<Vec<_>, _>>()?;
    pool.close();
    match pool.apply_async(square, 6) {
        Err(e) => println!("apply_async after close() -> {e}"),
        Ok(_) => return Err("a closed pool accepted a task".into()),
    }
    pool.join()?;
    let ready = handles.iter().filter(|h| h.ready()).count();
    let results = handles.iter().map(|h| h.get()).collect::<Result<Vec<u64>, _>>()?;
    println!("join() returned: {ready} of 5 tasks submitted before close() are done: {results:?}");
    if ready != 5 || results != [1, 4, 9, 16, 25] {
        return Err("join() returned before the queued tasks were done".into());
    }
    println!("the workers have exited; the pool is finished");
    Ok(())
}
