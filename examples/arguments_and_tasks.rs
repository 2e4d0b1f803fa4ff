//! Arguments by position and by name, and a task type with a `run` method.
//!
//! Python passes `args=(...)` and `kwargs={...}`, or subclasses `Process`
//! and overrides `run()`. Rust has no keyword arguments; the idioms are:
//!
//! - by position: a tuple, destructured in the function's parameter;
//! - by name: a struct with named fields, `Default` filling the optional ones;
//! - a subclass: a type implementing [`shmproc::Task`], whose fields are the
//!   constructor's arguments and whose `run(self)` runs in the child.
//!
//! Arguments and results travel encoded (serde), so they derive `Serialize`
//! and `Deserialize`.
//!
//! Run it with `cargo run --release --example arguments_and_tasks`.

use serde::{Deserialize, Serialize};
use shmproc::{Process, Task};

// ---------------------------------------------------------------------------
// By position: Process(target=price, args=("widget", 3, 2.5))

fn price((item, count, unit_price): (String, u32, f64)) -> String {
    format!("{count} x {item} at {unit_price:.2} = {:.2}", f64::from(count) * unit_price)
}

// ---------------------------------------------------------------------------
// By name: Process(target=greet, kwargs={"name": "Ada", "times": 2})
// with def greet(name, greeting="Hello", times=1, shout=False)

#[derive(Debug, Serialize, Deserialize)]
struct Greet {
    name: String,
    greeting: String,
    times: usize,
    shout: bool,
}

impl Default for Greet {
    fn default() -> Self {
        Greet { name: String::new(), greeting: "Hello".into(), times: 1, shout: false }
    }
}

fn greet(args: Greet) -> String {
    let line = format!("{}, {}!", args.greeting, args.name);
    let line = if args.shout { line.to_uppercase() } else { line };
    vec![line; args.times].join(" ")
}

// ---------------------------------------------------------------------------
// A task type: class WordCounter(Process) with __init__(text, min_len) and run()

#[derive(Debug, Serialize, Deserialize)]
struct WordCounter {
    text: String,
    min_len: usize,
}

impl Task for WordCounter {
    type Output = (u32, usize);

    fn run(self) -> (u32, usize) {
        let words = self.text.split_whitespace().filter(|w| w.len() >= self.min_len).count();
        (std::process::id(), words)
    }
}

fn main() -> shmproc::Result<()> {
    shmproc::init();

    let mut p = Process::spawn(price, ("widget".to_owned(), 3, 2.5))?;
    println!("by position: {}", p.join()?);

    let mut p = Process::spawn(greet, Greet { name: "Ada".into(), times: 2, ..Default::default() })?;
    println!("by name:     {}", p.join()?);
    let args = Greet { name: "Grace".into(), greeting: "Hi".into(), shout: true, ..Default::default() };
    let mut p = Process::spawn(greet, args)?;
    println!("by name:     {}", p.join()?);

    let task = WordCounter { text: "the quick brown fox jumps over the lazy dog".into(), min_len: 4 };
    let mut p = Process::builder().name("word-counter").start(task)?;
    let (pid, words) = p.join()?;
    println!("task:        {} (pid {pid}) counted {words} words of 4+ letters", p.name());
    Ok(())
}
