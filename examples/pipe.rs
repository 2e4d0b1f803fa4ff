//! A pipe between two processes (scenario 11): both ends send and receive;
//! what arrives is a copy of what was sent (changing it changes nothing on
//! the other side); `poll` with a timeout tells whether something is ready.
//!
//! Python:
//!
//! ```python
//! def worker(conn):
//!     job = conn.recv()                  # a dict, copied
//!     job["items"].append(99)            # the parent's dict is untouched
//!     conn.send({"sum": sum(job["items"]), "items": job["items"]})
//!     if not conn.poll(0.2):             # nothing more within 200 ms
//!         conn.send("idle")
//!     print(conn.recv())                 # "bye"
//!
//! parent, child = Pipe()
//! p = Process(target=worker, args=(child,)); p.start()
//! parent.send(job); print(parent.recv()); ...
//! ```
//!
//! In shmproc both ends of [`Pipe::new`] are [`Connection`]s; the child
//! gets its end as the argument of a plain `fn`. Objects travel encoded
//! (serde), so any `Serialize + Deserialize` type goes through, and the
//! receiver always owns a copy. The pipe is shared memory: no OS pipe and
//! no SIGPIPE.
//!
//! Run it with `cargo run --release --example pipe`.

use std::error::Error;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use shmproc::{Connection, Pipe, Process};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Job {
    name: String,
    items: Vec<i64>,
}

#[derive(Debug, Serialize, Deserialize)]
enum Reply {
    Done { sum: i64, items: Vec<i64> },
    Idle,
}

/// The child: receives a job, changes its own copy, answers; tells the
/// parent when nothing more came within 200 ms; waits for the goodbye.
fn worker(conn: Connection) -> String {
    let mut job: Job = conn.recv().expect("a job");
    job.items.push(99); // our copy only
    let sum = job.items.iter().sum();
    conn.send(&Reply::Done { sum, items: job.items }).expect("reply");
    if !conn.poll(Duration::from_millis(200)).expect("poll") {
        conn.send(&Reply::Idle).expect("idle");
    }
    conn.recv::<String>().expect("goodbye")
}

fn main() -> Result<(), Box<dyn Error>> {
    shmproc::init();
    let (parent, child) = Pipe::new()?;
    println!("a duplex pipe: parent end readable {} writable {}", parent.readable(), parent.writable());
    let mut p = Process::spawn(worker, child)?;

    let job = Job { name: "numbers".into(), items: vec![1, 2, 3] };
    parent.send(&job)?;
    println!("parent sent {job:?}");

    let t0 = Instant::now();
    let ready = parent.poll(Duration::from_secs(10))?;
    println!("parent: poll(10 s) = {ready} (a reply is ready)");
    match parent.recv::<Reply>()? {
        Reply::Done { sum, items } => {
            println!("parent received: sum {sum}, items {items:?}");
            println!("parent's own job is unchanged: {:?} (objects arrive as copies)", job.items);
            if items != [1, 2, 3, 99] || job.items != [1, 2, 3] {
                return Err("the copies are not independent".into());
            }
        }
        other => return Err(format!("unexpected {other:?}").into()),
    }
    // The child waits 200 ms for more, then says it is idle.
    let idle = parent.recv::<Reply>()?;
    println!("parent received {idle:?} (the child's poll(200 ms) timed out)");
    println!("parent: poll(0) = {} (nothing else is pending)", parent.poll(Duration::ZERO)?);

    parent.send(&"bye")?;
    let last = p.join()?;
    println!("child said goodbye with {last:?} and exited");
    println!("round trip and wait took {:?}", t0.elapsed());
    Ok(())
}
