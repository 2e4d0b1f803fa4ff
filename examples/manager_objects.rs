//! A manager holding more than dicts and lists: a `Namespace` of run
//! settings, a `Value` counter, an `Array` of per-worker slots, a served
//! object of our own type (a small cache), and a dict whose values are
//! proxies (one result list per worker).
//!
//! Python:
//!
//! ```python
//! class Cache:
//!     def __init__(self): self.d, self.hits = {}, 0
//!     def get(self, k): ...
//!     def put(self, k, v): ...
//! class MyManager(BaseManager): pass
//! MyManager.register('Cache', Cache)
//! with MyManager() as m:             # plus a SyncManager for the rest
//!     ns = m.Namespace(); ns.rounds = 3
//!     done = m.Value('i', 0); slots = m.Array('i', [0] * 4)
//!     results = m.dict(); results[f"w{i}"] = m.list()
//!     cache = m.Cache()
//! ```
//!
//! Run it with `cargo run --release --example manager_objects`.

use std::collections::HashMap;
use std::error::Error;

use serde::{Deserialize, Serialize};
use shmproc::{
    Args, ArrayProxy, DictProxy, ListProxy, Manager, NamespaceProxy, ObjectProxy, Process, Reply, Served, ValueProxy,
};

const WORKERS: usize = 4;

/// A memo of squares, shared by the workers, living in the manager.
#[derive(Default, Serialize, Deserialize)]
struct Cache {
    squares: HashMap<u64, u64>,
    hits: u64,
}

impl Served for Cache {
    fn methods(&self) -> &'static [&'static str] {
        &["square", "hits"]
    }

    fn call(&mut self, method: &str, args: Args<'_>) -> shmproc::Result<Reply> {
        if method == "hits" {
            return Reply::new(&self.hits);
        }
        let n: u64 = args.decode()?;
        if self.squares.contains_key(&n) {
            self.hits += 1;
        }
        Reply::new(self.squares.entry(n).or_insert(n * n))
    }
}

fn add(v: u64, n: u64) -> u64 {
    v + n
}

type Work =
    (usize, NamespaceProxy, ValueProxy<u64>, ArrayProxy<u64>, ObjectProxy<Cache>, DictProxy<String, ListProxy<u64>>);

/// A worker: reads the settings, squares a few numbers through the cache,
/// and records what it did.
fn work((i, settings, done, slots, cache, results): Work) -> Result<(), String> {
    let run = || -> shmproc::Result<()> {
        let rounds = settings.get::<u64>("rounds")?.unwrap_or(1);
        let mine = results.get(&format!("w{i}"))?.expect("the parent made every worker's list");
        for n in 0..rounds {
            mine.push(cache.call("square", &n)?)?;
        }
        slots.set(i, &rounds)?;
        done.update(add, 1)?;
        Ok(())
    };
    run().map_err(|e| e.to_string())
}

fn main() -> Result<(), Box<dyn Error>> {
    shmproc::init();
    let mgr = Manager::start()?;
    let settings = mgr.namespace()?;
    settings.set("rounds", &3u64)?;
    settings.set("label", &String::from("squares"))?;
    let done = mgr.value(0u64)?;
    let slots = mgr.array(&[0u64; WORKERS])?;
    let cache = mgr.serve(Cache::default())?;
    let results = mgr.dict::<String, ListProxy<u64>>()?;
    for i in 0..WORKERS {
        results.insert(format!("w{i}"), mgr.list()?)?; // a proxy as a value
    }

    let mut workers = (0..WORKERS)
        .map(|i| {
            let args = (i, settings.clone(), done.clone(), slots.clone(), cache.clone(), results.clone());
            Process::spawn(work, args)
        })
        .collect::<Result<Vec<_>, _>>()?;
    for w in &mut workers {
        w.join()??;
    }

    println!("label: {}", settings.get::<String>("label")?.unwrap_or_default());
    println!("workers done: {}", done.get()?);
    println!("slots: {:?}", slots.to_vec()?);
    for (name, list) in results.items()? {
        println!("{name}: {:?}", list.to_vec()?);
    }
    println!("cache hits: {}", cache.call::<(), u64>("hits", &())?);
    match settings.get::<u32>("label") {
        Err(e) => println!("reading a string field as a number: {e}"),
        Ok(v) => println!("unexpected: {v:?}"),
    }
    mgr.shutdown()?;
    Ok(())
}
