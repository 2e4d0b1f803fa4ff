//! Many more processes than CPUs on one object: 64 and 128 producers on
//! one queue, 64 and 128 consumers on one queue, 64 consumers of one
//! joinable queue. Every item arrives once, in each producer's order, and
//! nothing hangs (the time per item against the number of processes is
//! measured by `benches/scale.rs`, not asserted here).

#![cfg(feature = "serde")]

use std::collections::HashSet;
use std::time::Duration;

use shmproc::{JoinableQueue, Process, Queue};

/// A hang guard only: every wait here ends long before it.
const GUARD: Duration = Duration::from_secs(120);

/// Items each producer puts, or each consumer gets.
const ITEMS: u64 = 1_000;

fn produce((q, id): (Queue<(u32, u64)>, u32)) {
    for s in 0..ITEMS {
        q.put((id, s)).expect("put");
    }
}

/// `n` producers on one default queue: the parent gets every item once,
/// each producer's in order.
fn producers_deliver_everything(n: u32) {
    let q = Queue::<(u32, u64)>::new(0).expect("queue");
    // A queue counts a process as a producer from its first put, so early
    // producers may all have finished and exited before a late one's first
    // put: a get would rightly find every counted producer gone
    // (`Disconnected`). This process counts as one while it starts them.
    q.register_producer().expect("register");
    let mut procs: Vec<_> = (0..n).map(|id| Process::spawn(produce, (q.clone(), id)).expect("producer")).collect();
    let mut next = vec![0u64; n as usize];
    for _ in 0..u64::from(n) * ITEMS {
        let (id, s) = q.get_timeout(GUARD).expect("an item before the guard");
        let want = &mut next[id as usize];
        assert_eq!(s, *want, "producer {id}'s items in order");
        *want += 1;
    }
    assert!(next.iter().all(|&k| k == ITEMS));
    for p in &mut procs {
        p.join_timeout(GUARD).expect("join: producer exits");
    }
}

#[test]
fn sixty_four_producers_on_one_queue() {
    producers_deliver_everything(64);
}

#[test]
fn a_hundred_and_twenty_eight_producers_on_one_queue() {
    producers_deliver_everything(128);
}

fn consume(q: Queue<u64>) -> Vec<u64> {
    (0..ITEMS).map(|_| q.get().expect("get")).collect()
}

/// `n` consumers on one default queue, each taking `ITEMS`: together they
/// took every item the parent put, each once.
fn consumers_take_everything(n: u32) {
    let q = Queue::<u64>::new(0).expect("queue");
    let mut procs: Vec<_> = (0..n).map(|_| Process::spawn(consume, q.clone()).expect("consumer")).collect();
    let total = u64::from(n) * ITEMS;
    for i in 0..total {
        q.put_timeout(i, GUARD).expect("room before the guard");
    }
    let mut seen = HashSet::new();
    for p in &mut procs {
        let got = p.join_timeout(GUARD).expect("join: consumer exits");
        assert!(got.windows(2).all(|w| w[0] < w[1]), "one consumer's items in FIFO order");
        for v in got {
            assert!(seen.insert(v), "{v} delivered twice");
        }
    }
    assert_eq!(seen.len() as u64, total);
}

#[test]
fn sixty_four_consumers_on_one_queue() {
    consumers_take_everything(64);
}

#[test]
fn a_hundred_and_twenty_eight_consumers_on_one_queue() {
    consumers_take_everything(128);
}

fn work(q: JoinableQueue<u64>) {
    for _ in 0..ITEMS {
        q.get().expect("get");
        q.task_done().expect("done");
    }
}

#[test]
fn sixty_four_joinable_consumers_finish_every_task() {
    let q = JoinableQueue::<u64>::new(0).expect("queue");
    let mut procs: Vec<_> = (0..64).map(|_| Process::spawn(work, q.clone()).expect("consumer")).collect();
    for i in 0..64 * ITEMS {
        q.put_timeout(i, GUARD).expect("room before the guard");
    }
    q.join_timeout(GUARD).expect("every task done");
    assert_eq!(q.unfinished(), 0);
    for p in &mut procs {
        p.join_timeout(GUARD).expect("join: consumer exits");
    }
}

#[cfg(feature = "pool")]
fn square(x: u64) -> u64 {
    x * x
}

/// A pool of 64 workers on two CPUs: its task queue has 64 consumers, most
/// of them idle.
#[cfg(feature = "pool")]
#[test]
fn a_pool_of_sixty_four_workers_maps_every_item() {
    let pool = shmproc::Pool::new(64).expect("pool");
    let got = pool.map(square, 0..20_000u64).expect("map");
    assert!(got.iter().enumerate().all(|(i, &v)| v == (i as u64) * (i as u64)));
    pool.close();
    pool.join().expect("workers exit");
}

#[cfg(feature = "manager")]
fn add(old: Option<u64>, n: u64) -> Option<u64> {
    Some(old.unwrap_or(0) + n)
}

#[cfg(feature = "manager")]
fn client(d: shmproc::DictProxy<String, u64>) -> Result<(), String> {
    for _ in 0..100 {
        d.update(&"total".into(), add, 1).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// A manager with 64 client processes updating one key: every update
/// lands once.
#[cfg(feature = "manager")]
#[test]
fn a_manager_serves_sixty_four_clients() {
    let mgr = shmproc::Manager::start().expect("manager");
    let d = mgr.dict::<String, u64>().expect("dict");
    let mut procs: Vec<_> = (0..64).map(|_| Process::spawn(client, d.clone()).expect("client")).collect();
    for p in &mut procs {
        p.join_timeout(GUARD).expect("join: client exits").expect("client's updates");
    }
    assert_eq!(d.get(&"total".into()).expect("get"), Some(64 * 100));
}
