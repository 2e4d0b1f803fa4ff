//! A bounded buffer shared by three processes: one producer and two
//! consumers around a ring of 4 slots in a [`Mutex`], with two
//! [`Condvar`]s: the producer waits on `not_full` when the ring is full,
//! the consumers wait on `not_empty` when it is empty. The producer puts
//! 1..=500, then one end-of-stream marker per consumer; the parent checks
//! that every item was consumed exactly once.
//!
//! Python:
//!
//! ```python
//! lock = Lock()
//! not_empty, not_full = Condition(lock), Condition(lock)
//! def put(item):
//!     with not_full:
//!         while len(ring) == CAPACITY: not_full.wait()
//!         ring.append(item); not_empty.notify()
//! ```
//!
//! In shmproc a condition variable is separate from its mutex and takes
//! the guard: `guard = cond.wait(guard)?` unlocks, sleeps, and locks again.
//! Wake-ups may be spurious, so every wait sits in a `while` loop over the
//! condition. The ring is plain data (`bytemuck::Pod`), as everything in a
//! [`Mutex`] must be: no pointers, so it means the same in every process.
//!
//! Run it with `cargo run --release --example condvar_producer_consumer`.

use std::error::Error;

use bytemuck::{Pod, Zeroable};
use shmproc::{Condvar, Mutex, Process};

/// Slots in the ring.
const CAPACITY: usize = 4;
/// The producer puts 1..=ITEMS.
const ITEMS: u64 = 500;
/// Consumer processes.
const CONSUMERS: u64 = 2;
/// The end-of-stream marker (items start at 1).
const END: u64 = 0;

/// A fixed-size ring of `u64`s. `head` and `tail` count pops and pushes
/// since the start; the slot of position `i` is `i % CAPACITY`.
#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct Ring {
    slots: [u64; CAPACITY],
    /// Items popped so far (the next one to pop is at `head`).
    head: u64,
    /// Items pushed so far (the next push goes to `tail`).
    tail: u64,
}

impl Ring {
    fn is_empty(&self) -> bool {
        self.head == self.tail
    }

    fn is_full(&self) -> bool {
        self.tail - self.head == CAPACITY as u64
    }

    fn push(&mut self, item: u64) {
        self.slots[(self.tail % CAPACITY as u64) as usize] = item;
        self.tail += 1;
    }

    fn pop(&mut self) -> u64 {
        let item = self.slots[(self.head % CAPACITY as u64) as usize];
        self.head += 1;
        item
    }
}

/// What every process gets: the ring and its two conditions.
type Buffer = (Mutex<Ring>, Condvar, Condvar);

/// Puts `item`, waiting while the ring is full; returns how many times it
/// had to wait.
fn put((ring, not_empty, not_full): &Buffer, item: u64) -> u64 {
    let mut guard = ring.lock().expect("lock the ring");
    let mut waits = 0;
    while guard.is_full() {
        waits += 1;
        guard = not_full.wait(guard).expect("wait for room");
    }
    guard.push(item);
    drop(guard);
    not_empty.notify_one();
    waits
}

/// Takes the oldest item, waiting while the ring is empty.
fn take((ring, not_empty, not_full): &Buffer) -> u64 {
    let mut guard = ring.lock().expect("lock the ring");
    while guard.is_empty() {
        guard = not_empty.wait(guard).expect("wait for an item");
    }
    let item = guard.pop();
    drop(guard);
    not_full.notify_one();
    item
}

/// Puts 1..=ITEMS and one end marker per consumer; returns its pid and how
/// often the ring was full.
fn producer(buffer: Buffer) -> (u32, u64) {
    let mut waits = 0;
    for item in 1..=ITEMS {
        waits += put(&buffer, item);
    }
    for _ in 0..CONSUMERS {
        waits += put(&buffer, END);
    }
    (std::process::id(), waits)
}

/// Takes items until an end marker; returns its pid and what it took.
fn consumer(buffer: Buffer) -> (u32, Vec<u64>) {
    let mut taken = Vec::new();
    loop {
        match take(&buffer) {
            END => return (std::process::id(), taken),
            item => taken.push(item),
        }
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    shmproc::init();
    let buffer: Buffer = (Mutex::new(Ring::zeroed())?, Condvar::new()?, Condvar::new()?);
    println!("a ring of {CAPACITY} slots; 1 producer of {ITEMS} items, {CONSUMERS} consumers");

    let mut consumers =
        (0..CONSUMERS).map(|_| Process::spawn(consumer, buffer.clone())).collect::<Result<Vec<_>, _>>()?;
    let mut producer = Process::spawn(producer, buffer.clone())?;

    let (pid, waits) = producer.join()?;
    println!(
        "producer   (pid {pid}): put {ITEMS} items and {CONSUMERS} end-of-stream markers; found the ring full {waits} times"
    );
    let mut all = Vec::new();
    for (n, c) in consumers.iter_mut().enumerate() {
        let (pid, taken) = c.join()?;
        let in_order = taken.is_sorted();
        println!("consumer {} (pid {pid}): took {} items, each after the one before: {in_order}", n + 1, taken.len());
        all.extend(taken);
    }

    let ring = *buffer.0.lock().map_err(shmproc::Error::from)?;
    println!("ring at the end: {} pushed, {} popped, empty: {}", ring.tail, ring.head, ring.is_empty());
    let total = all.len();
    all.sort_unstable();
    all.dedup();
    if total != ITEMS as usize || all != (1..=ITEMS).collect::<Vec<_>>() || !ring.is_empty() {
        return Err(format!("items lost or duplicated: {total} taken, {} distinct", all.len()).into());
    }
    println!("every item 1..={ITEMS} consumed exactly once ({total} in all)");
    Ok(())
}
