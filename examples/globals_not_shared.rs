//! Globals are not shared: each child has its own copy of every global, so
//! a change made in a child stays there. State meant to be shared lives in
//! shared memory and is passed to the child as an argument.
//!
//! Python:
//!
//! ```python
//! counter = 0                      # a global
//! def add(n): global counter; counter += n
//! p = Process(target=add, args=(10,)); p.start(); p.join()
//! print(counter)                   # 0: the child changed its own copy
//!
//! shared = Value("q", 0)           # shared memory
//! def add_shared(v, n): v.value += n
//! ```
//!
//! Run it with `cargo run --release --example globals_not_shared`.

use std::sync::atomic::{AtomicI64, Ordering};

use shmproc::{Process, StartMethod, Value};

/// A global: every process has its own.
static COUNTER: AtomicI64 = AtomicI64::new(0);

/// Adds `n` to this process's copy of the global; returns what the child sees.
fn add_to_global(n: i64) -> i64 {
    COUNTER.fetch_add(n, Ordering::Relaxed) + n
}

/// Adds `n` to the shared counter under its lock; returns what the child sees.
fn add_to_shared((counter, n): (Value<i64>, i64)) -> i64 {
    let mut v = counter.lock().expect("no holder of the counter died");
    *v += n;
    *v
}

fn main() -> shmproc::Result<()> {
    shmproc::init();

    println!("-- a global --");
    COUNTER.store(1, Ordering::Relaxed);
    println!("parent sets COUNTER = 1");
    // A forked child starts from a copy of the parent's memory; a ForkServer
    // (or Spawn) child starts from the program's initial value, as in Python.
    for method in [StartMethod::Fork, StartMethod::ForkServer] {
        let mut p = Process::builder().start_method(method).spawn(add_to_global, 10)?;
        let name = method.as_str();
        println!("{name:>10} child adds 10: the child sees COUNTER = {}", p.join()?);
        println!("{name:>10} parent still sees COUNTER = {}", COUNTER.load(Ordering::Relaxed));
    }

    println!("-- a Value in shared memory --");
    let counter = Value::new(1i64)?;
    println!("parent sets shared counter = 1");
    let mut p = Process::spawn(add_to_shared, (counter.clone(), 10))?;
    println!("child adds 10: the child sees shared counter = {}", p.join()?);
    println!("parent now sees shared counter = {}", counter.load()?);
    Ok(())
}
