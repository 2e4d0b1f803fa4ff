//! Closures as tasks: Python's `functools.partial` and lambda patterns with
//! `shmproc::task!`.
//!
//! Python:
//!
//! ```python
//! from functools import partial
//! with Pool(2) as pool:
//!     pool.map(partial(scale, 3), range(5))                 # bound arguments
//!     pool.map(lambda x: x * 2, range(5))                   # a lambda (pickle refuses it: Python needs a def)
//!     pool.map(partial(tag, prefix="item-"), range(3))      # a bound string
//! with ProcessPoolExecutor() as ex:
//!     ex.submit(partial(count_words, stop_words), text).result()
//! d = Manager().dict(); d["seen"] = d.get("seen", []) + names   # not atomic in Python
//! ```
//!
//! In shmproc a closure that captures nothing is a task as it is; one that
//! captures names its captures: `task!((a, b) |x: T| body)`. The captures
//! are encoded once per call (once per chunk for a map) and decoded once in
//! the worker, where the body sees them by reference.
//!
//! Run it with `cargo run --release --example closures`.

use std::collections::BTreeSet;
use std::error::Error;

use serde::{Deserialize, Serialize};
use shmproc::{Manager, Pool, Process, ProcessPoolExecutor, task};

fn scale(x: u64) -> u64 {
    x * 3
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pricing {
    unit_cents: u64,
    discount_percent: u64,
}

fn main() -> Result<(), Box<dyn Error>> {
    shmproc::init();
    let pool = Pool::new(2)?;

    // A plain function, as before.
    println!("map(scale, 0..5) -> {:?}", pool.map(scale, 0..5)?);

    // A lambda that captures nothing.
    println!("map(|x| x * 2, 0..5) -> {:?}", pool.map(|x: u64| x * 2, 0..5)?);

    // functools.partial: bound arguments travel as captures.
    let (factor, prefix) = (10u64, String::from("item-"));
    let tag = task!((factor, prefix) |x: u64| format!("{prefix}{}", x * *factor));
    println!("map(partial(tag, 10, \"item-\"), 0..3) -> {:?}", pool.map(tag, 0..3)?);

    // A struct as a capture; apply and imap.
    let pricing = Pricing { unit_cents: 250, discount_percent: 10 };
    let price = task!((pricing) |qty: u64| qty * pricing.unit_cents * (100 - pricing.discount_percent) / 100);
    println!("apply(price, 4) -> {} cents", pool.apply(price.clone(), 4)?);
    let prices: Vec<u64> = pool.imap(price, [1, 2, 3])?.collect::<Result<_, _>>()?;
    println!("imap(price, [1, 2, 3]) -> {prices:?}");
    pool.close();
    pool.join()?;

    // The executor: a set of stop words captured once.
    let ex = ProcessPoolExecutor::new(2)?;
    let stop: BTreeSet<String> = ["the", "a", "of"].into_iter().map(String::from).collect();
    let count = task!((stop) |text: String| text.split_whitespace().filter(|w| !stop.contains(*w)).count());
    let n = ex.submit(count, String::from("the shape of a thing to come"))?.result()?;
    println!("submit(count_words, ..) -> {n} words that are not stop words");
    drop(ex);

    // One process, a zero-argument task.
    let greeting = String::from("hello from a child");
    let mut p = Process::spawn(task!((greeting) || format!("{greeting}, pid {}", std::process::id())), ())?;
    println!("Process::spawn(task!(..)) -> {:?}", p.join()?.split(", pid").next().unwrap_or_default());

    // The manager: an atomic read-modify-write with captures.
    let mgr = Manager::start()?;
    let d = mgr.dict::<String, Vec<String>>()?;
    let names = vec![String::from("ada"), String::from("alan")];
    let add = task!((names) |old: Option<Vec<String>>| {
        let mut v = old.unwrap_or_default();
        v.extend(names.iter().cloned());
        Some(v)
    });
    d.update_with(&"seen".into(), add.clone())?;
    let seen = d.update_with(&"seen".into(), add)?.unwrap_or_default();
    println!("update_with(\"seen\", task!(..)) twice -> {seen:?}");
    mgr.shutdown()?;
    Ok(())
}
