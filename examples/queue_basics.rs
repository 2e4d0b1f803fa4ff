//! Queue basics (scenario 6): `put`/`get` between processes, a queue of
//! `maxsize` 3 whose 4th `put` waits until a child takes an item,
//! `try_put`/`try_get` giving `Full`/`Empty`, `put_timeout`/`get_timeout`
//! timing out, `qsize`/`is_empty`/`is_full`, and `close`.
//!
//! Python:
//!
//! ```python
//! q = Queue(maxsize=3)
//! q.put(1); q.put(2); q.put(3)  # a 4th put() blocks until someone gets
//! q.put_nowait(4)               # raises queue.Full
//! q.get_nowait()                # on an empty queue: raises queue.Empty
//! q.get(timeout=0.1)            # raises queue.Empty after 0.1 s
//! q.qsize(), q.empty(), q.full()
//! ```
//!
//! In shmproc the non-blocking and timed calls return small error types
//! instead of raising: [`TryPutError::Full`] gives the item back, and
//! [`TryGetError::Empty`] says there was nothing. [`Queue::close`] closes
//! the queue for every process (Python's `close()` only stops the caller's
//! feeder thread): later puts fail, gets drain what is left and then return
//! `Err(Closed)`, so a consumer's `while let Ok(item) = q.get()` ends by
//! itself.
//!
//! Run it with `cargo run --release --example queue_basics`.

use std::error::Error;
use std::time::{Duration, Instant};

use shmproc::{GetTimeoutError, Process, PutTimeoutError, Queue, TryGetError, TryPutError};

/// How long the child waits before it takes an item off the full queue.
const CHILD_DELAY: Duration = Duration::from_millis(300);
/// How long the timed calls wait.
const TIMEOUT: Duration = Duration::from_millis(100);

/// Puts three greetings, then returns its pid.
fn greet(q: Queue<String>) -> u32 {
    let me = std::process::id();
    for n in 1..=3 {
        q.put(format!("hello {n} from pid {me}")).expect("put");
    }
    me
}

/// Looks at the full queue, waits a little, then takes one item.
fn take_one_later(q: Queue<u32>) -> u32 {
    println!("child  {}: sees qsize() = {}, is_full() = {}", std::process::id(), q.qsize(), q.is_full());
    std::thread::sleep(CHILD_DELAY);
    let item = q.get().expect("get");
    println!("child  {}: get() -> {item}", std::process::id());
    item
}

/// Gets until the queue is closed and drained; returns what it got and
/// how its last `get` ended.
fn drain(q: Queue<u32>) -> (Vec<u32>, String) {
    let mut got = Vec::new();
    loop {
        match q.get() {
            Ok(item) => got.push(item),
            Err(e) => return (got, e.to_string()),
        }
    }
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

fn main() -> Result<(), Box<dyn Error>> {
    shmproc::init();
    let me = std::process::id();

    println!("-- put and get between processes --");
    let greetings = Queue::<String>::new(0)?;
    let mut child = Process::spawn(greet, greetings.clone())?;
    for _ in 0..3 {
        println!("parent {me}: get() -> {:?}", greetings.get()?);
    }
    println!("parent {me}: the child {} put them", child.join()?);

    println!("\n-- a queue of maxsize 3: try_put and try_get never wait --");
    let q = Queue::<u32>::new(3)?;
    match q.try_get() {
        Err(TryGetError::Empty) => println!("parent {me}: try_get() -> Empty; is_empty() = {}", q.is_empty()),
        other => return Err(format!("try_get on an empty queue: {other:?}").into()),
    }
    for item in 0..3 {
        q.try_put(item)?;
    }
    println!("parent {me}: try_put 0, 1, 2: qsize() = {}, is_full() = {}", q.qsize(), q.is_full());
    match q.try_put(3) {
        Err(TryPutError::Full(item)) => println!("parent {me}: try_put(3) -> Full, item {item} given back"),
        other => return Err(format!("try_put on a full queue: {other:?}").into()),
    }

    println!("\n-- put waits for room --");
    let mut child = Process::spawn(take_one_later, q.clone())?;
    let t = Instant::now();
    q.put(3)?; // blocks until the child's get() makes room
    println!("parent {me}: put(3) returned after {} ms, once the child made room", ms(t.elapsed()));
    let taken = child.join()?;
    println!("parent {me}: the child took {taken}; qsize() = {}, is_full() = {}", q.qsize(), q.is_full());

    println!("\n-- put_timeout and get_timeout give up --");
    // The child that got from the queue has exited. A full queue whose
    // consumers are all gone reports Disconnected rather than Timeout; this
    // process counts as a consumer since its try_get() above.
    let t = Instant::now();
    match q.put_timeout(4, TIMEOUT) {
        Err(PutTimeoutError::Timeout(item)) => println!(
            "parent {me}: put_timeout(4, {} ms) on a full queue -> Timeout after {} ms, item {item} given back",
            ms(TIMEOUT),
            ms(t.elapsed())
        ),
        other => return Err(format!("put_timeout on a full queue: {other:?}").into()),
    }
    let mut got = Vec::new();
    let t = loop {
        let t = Instant::now();
        match q.get_timeout(TIMEOUT) {
            Ok(item) => got.push(item),
            Err(GetTimeoutError::Timeout) => break t,
            Err(e) => return Err(e.into()),
        }
    };
    println!(
        "parent {me}: get_timeout({} ms) -> {got:?}, then Timeout after {} ms on the empty queue",
        ms(TIMEOUT),
        ms(t.elapsed())
    );
    if got != [1, 2, 3] {
        return Err(format!("the queue held {got:?}, not [1, 2, 3]").into());
    }
    println!(
        "parent {me}: qsize() = {}, is_empty() = {}, is_full() = {}, maxsize() = {}",
        q.qsize(),
        q.is_empty(),
        q.is_full(),
        q.maxsize()
    );

    println!("\n-- close: the end of the stream for every process --");
    let mut consumer = Process::spawn(drain, q.clone())?;
    for item in 10..15 {
        q.put(item)?;
    }
    q.close();
    println!("parent {me}: put 10..15, then close(); is_closed() = {}", q.is_closed());
    match q.put(15) {
        Err(e) => println!("parent {me}: put(15) after close -> {e}"),
        Ok(()) => return Err("put after close succeeded".into()),
    }
    let (got, end) = consumer.join()?;
    println!("child  {}: got {got:?}, then get() -> {end}", consumer.pid());
    if got != [10, 11, 12, 13, 14] {
        return Err(format!("the consumer got {got:?}, not 10..15").into());
    }
    println!("every item arrived once, in order");
    Ok(())
}
