//! A manager shared by workers (scenario 13): four worker processes each
//! score a range of words, put their results into one shared dict and a
//! line into one shared list, and count what they did with atomic
//! server-side updates. The parent prints the merged dict.
//!
//! Python:
//!
//! ```python
//! with Manager() as m:
//!     scores, log, stats = m.dict(), m.list(), m.dict()
//!     def work(i, words, scores, log, stats, lock):
//!         for w in words:
//!             scores[w] = sum(map(ord, w))
//!         log.append(f"worker {i}: {len(words)} words")
//!         with lock:                     # d[k] += n is not atomic
//!             stats["words"] = stats.get("words", 0) + len(words)
//! ```
//!
//! In shmproc the proxies ([`DictProxy`], [`ListProxy`]) are plain
//! arguments of the workers, and `stats["words"] += n` is
//! [`DictProxy::update`] with a function that runs in the manager's server
//! under its lock: no separate lock, no lost increment.
//!
//! Run it with `cargo run --release --example manager`.

use std::error::Error;

use shmproc::{DictProxy, ListProxy, Manager, Process};

const WORDS: [&str; 12] =
    ["apple", "banana", "cherry", "date", "elder", "fig", "grape", "hazel", "iris", "juniper", "kiwi", "lime"];
const WORKERS: usize = 4;

/// A word's score: the sum of its letters' codes.
fn score(word: &str) -> u32 {
    word.bytes().map(u32::from).sum()
}

/// Adds `n` to a counter (runs in the manager's server, atomically).
fn add(old: Option<u64>, n: u64) -> Option<u64> {
    Some(old.unwrap_or(0) + n)
}

type Args = (usize, DictProxy<String, u32>, ListProxy<String>, DictProxy<String, u64>);

/// A worker: scores its share of the words.
fn work((i, scores, log, stats): Args) -> Result<(), String> {
    let mine: Vec<&str> = WORDS.iter().copied().skip(i).step_by(WORKERS).collect();
    let run = || -> shmproc::Result<()> {
        scores.extend(mine.iter().map(|w| (w.to_string(), score(w))))?;
        log.push(format!("worker {i}: {} words", mine.len()))?;
        stats.update(&"words".into(), add, mine.len() as u64)?;
        stats.update(&"letters".into(), add, mine.iter().map(|w| w.len() as u64).sum())?;
        Ok(())
    };
    run().map_err(|e| e.to_string())
}

fn main() -> Result<(), Box<dyn Error>> {
    shmproc::init();
    let mgr = Manager::start()?;
    println!("manager server: pid {}", mgr.pid());
    let scores = mgr.dict::<String, u32>()?;
    let log = mgr.list::<String>()?;
    let stats = mgr.dict::<String, u64>()?;

    let mut workers = (0..WORKERS)
        .map(|i| Process::spawn(work, (i, scores.clone(), log.clone(), stats.clone())))
        .collect::<Result<Vec<_>, _>>()?;
    for w in &mut workers {
        w.join()??;
    }

    let mut lines = log.to_vec()?;
    lines.sort();
    for l in &lines {
        println!("{l}");
    }
    let mut merged = scores.items()?;
    merged.sort();
    println!("merged dict ({} entries):", merged.len());
    for (word, s) in &merged {
        println!("  {word:8} {s}");
    }
    let words = stats.get(&"words".into())?.unwrap_or(0);
    let letters = stats.get(&"letters".into())?.unwrap_or(0);
    println!("counters: {words} words, {letters} letters");
    assert_eq!(words as usize, WORDS.len(), "no increment was lost");
    mgr.shutdown()?;
    println!("manager stopped; a proxy now says: {}", scores.len().err().map(|e| e.to_string()).unwrap_or_default());
    Ok(())
}
