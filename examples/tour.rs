//! A tour of shmproc: named and anonymous segments shared with child
//! processes, a shared atomic counter, a 64 MiB transfer against an OS pipe,
//! cleanup after a creator killed with SIGKILL, shmproc's own child
//! processes under each start method, a lock whose holder is killed, a
//! stream of a million values through a lock-free ring, strings through a
//! `Queue` next to an OS pipe, a `Pipe` ping-pong next to OS pipes, a `Pool`
//! and a `ProcessPoolExecutor`, a `Value` and an `Array` changed by a child,
//! a `Manager` whose dict and list several workers share (and what its
//! proxies say once its server is killed), and async twins awaited by tokio
//! tasks next to `connection::wait` over several kinds of objects.
//!
//! Run it with `cargo run --release --example tour`.
//!
//! In sections 1 to 5 the children are started by hand: this same program,
//! re-executed with `SHMPROC_TOUR_ROLE` set, so the segments are seen by
//! processes that share nothing else with the parent. Sections 6 to 10 use
//! [`shmproc::Process`] (the OS-pipe peers of sections 9 and 10 are again
//! started by hand).
//! Each section is one function; `main` runs them in order.

use std::error::Error;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use shmproc::{
    Array, Connection, Context, DictProxy, Error as ShmError, Event, ListProxy, LockError, Manager, Mutex, Pipe, Pool,
    Process, ProcessPoolExecutor, Queue, Segment, Shared, SpscRing, StartMethod, Value,
};

type Result<T = (), E = Box<dyn Error>> = std::result::Result<T, E>;

/// Which child role a re-executed tour plays.
const ROLE_ENV: &str = "SHMPROC_TOUR_ROLE";
/// A segment name handed to a child.
const NAME_ENV: &str = "SHMPROC_TOUR_NAME";
/// An inherited descriptor number handed to a child.
const FD_ENV: &str = "SHMPROC_TOUR_FD";

/// Where the parent's message and the child's reply sit in a segment.
const MESSAGE_AT: usize = 0;
const REPLY_AT: usize = 2048;

/// Section 3: increments per child.
const INCREMENTS: u64 = 100_000;
/// Section 4: bytes moved per transfer.
const TRANSFER: usize = 64 << 20;
/// Section 6: children timed per start method.
const TIMED_CHILDREN: u32 = 10;

fn main() -> Result {
    shmproc::init();
    if let Ok(role) = std::env::var(ROLE_ENV) {
        return child_main(&role);
    }
    let started = Instant::now();
    println!("shmproc tour: parent pid {}", std::process::id());
    named_segment()?;
    anonymous_by_fd()?;
    shared_counter()?;
    bulk_transfer()?;
    stale_cleanup()?;
    processes()?;
    killed_holder()?;
    ring_stream()?;
    queue_stream()?;
    pipe_ping_pong()?;
    pools()?;
    shared_data()?;
    manager()?;
    async_twins()?;
    println!();
    println!(
        "Leftovers: `cargo run --release --bin shmproc -- ls` lists shmproc objects in /dev/shm, `clean` removes \
         stale ones, `bench` compares shm, OS pipes and Unix sockets"
    );
    println!("tour finished in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn heading(title: &str) {
    println!();
    println!("== {title} ==");
}

/// Dispatches a re-executed child to its role.
fn child_main(role: &str) -> Result {
    match role {
        "named" => named_child(),
        "fd" => fd_child(),
        "counter" => counter_child(),
        "sink" => sink_child(),
        "crasher" => crasher_child(),
        "pipe_writer" => pipe_writer_child(),
        "echo" => echo_child(),
        other => Err(format!("unknown {ROLE_ENV}={other:?}").into()),
    }
}

/// This program again, in the given child role.
fn child(role: &str) -> Result<Command> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.env(ROLE_ENV, role);
    Ok(cmd)
}

fn check_exit(what: &str, status: ExitStatus) -> Result {
    if status.success() { Ok(()) } else { Err(format!("{what} failed: {status}").into()) }
}

fn env_value(key: &str) -> Result<String> {
    std::env::var(key).map_err(|_| format!("{key} is not set").into())
}

/// Writes a length-prefixed string at `offset`.
fn put_str(seg: &Segment, offset: usize, s: &str) -> Result {
    let len = u32::try_from(s.len())?;
    seg.write_at(offset, &len.to_le_bytes())?;
    seg.write_at(offset + 4, s.as_bytes())?;
    Ok(())
}

/// Reads a string written by [`put_str`].
fn get_str(seg: &Segment, offset: usize) -> Result<String> {
    let mut len = [0u8; 4];
    seg.read_at(offset, &mut len)?;
    let mut bytes = vec![0u8; u32::from_le_bytes(len) as usize];
    seg.read_at(offset + 4, &mut bytes)?;
    Ok(String::from_utf8(bytes)?)
}

// ---------------------------------------------------------------------------
// 1. A named segment

fn named_segment() -> Result {
    heading("1. Named segment: the parent writes, a child opens it by name");
    let me = std::process::id();
    let name = format!("tour-{me}");
    let seg = Segment::create(&name, 4096)?;
    let message = format!("hello from parent {me}");
    put_str(&seg, MESSAGE_AT, &message)?;
    println!("parent {me}: created {name:?} ({} bytes), wrote {message:?}", seg.len());

    let status = child("named")?.env(NAME_ENV, &name).status()?;
    check_exit("the named-segment child", status)?;
    println!("parent {me}: the child replied {:?}", get_str(&seg, REPLY_AT)?);

    drop(seg); // the creator's last handle: the name goes with it
    match Segment::open(&name) {
        Err(e) => println!("parent {me}: after the creator's drop, open fails: {e}"),
        Ok(_) => return Err("the name outlived its creator".into()),
    }
    Ok(())
}

fn named_child() -> Result {
    let me = std::process::id();
    let name = env_value(NAME_ENV)?;
    let seg = Segment::open(&name)?;
    println!("child  {me}: opened {name:?}, read {:?}", get_str(&seg, MESSAGE_AT)?);
    put_str(&seg, REPLY_AT, &format!("hello back from child {me}"))?;
    Ok(()) // an opener's drop leaves the name alone
}

// ---------------------------------------------------------------------------
// 2. An anonymous segment, inherited

fn anonymous_by_fd() -> Result {
    heading("2. Anonymous segment: no name anywhere, handed to a child as an fd");
    let me = std::process::id();
    let seg = Segment::anonymous(4096)?;
    put_str(&seg, MESSAGE_AT, "a memfd needs no name")?;
    // Close-on-exec is cleared on this duplicate only; keep it until spawned.
    let fd = seg.inheritable_fd()?;
    println!("parent {me}: anonymous segment, passing fd {} in {FD_ENV}", fd.as_raw_fd());
    let mut running = child("fd")?.env(FD_ENV, fd.as_raw_fd().to_string()).spawn()?;
    drop(fd);
    check_exit("the fd child", running.wait()?)?;
    println!("parent {me}: the child replied {:?}", get_str(&seg, REPLY_AT)?);
    Ok(())
}

#[allow(unsafe_code)] // from_inherited_fd: the number our parent passed
fn fd_child() -> Result {
    let me = std::process::id();
    let fd: i32 = env_value(FD_ENV)?.parse()?;
    // SAFETY: the number came from our parent for this purpose; nothing
    // else in this process uses it.
    let seg = unsafe { Segment::from_inherited_fd(fd) }?;
    println!("child  {me}: opened inherited fd {fd}, read {:?}", get_str(&seg, MESSAGE_AT)?);
    put_str(&seg, REPLY_AT, &format!("got it, child {me}"))?;
    Ok(())
}

// ---------------------------------------------------------------------------
// 3. A shared counter

fn shared_counter() -> Result {
    heading("3. Shared<AtomicU64>: 2 children increment one counter");
    let me = std::process::id();
    let name = format!("tour-counter-{me}");
    let counter = Shared::<AtomicU64>::create(&name, |c| c.store(0, Ordering::Relaxed))?;
    let children = (0..2).map(|_| child("counter")?.env(NAME_ENV, &name).spawn().map_err(Into::into));
    let children: Vec<Child> = children.collect::<Result<_>>()?;
    for mut c in children {
        check_exit("a counter child", c.wait()?)?;
    }
    let total = counter.load(Ordering::Relaxed);
    println!("parent {me}: counter = {total} (2 x {INCREMENTS} = {})", 2 * INCREMENTS);
    if total != 2 * INCREMENTS {
        return Err("increments were lost".into());
    }
    Ok(())
}

fn counter_child() -> Result {
    let counter = Shared::<AtomicU64>::open(&env_value(NAME_ENV)?)?;
    for _ in 0..INCREMENTS {
        counter.fetch_add(1, Ordering::Relaxed);
    }
    println!("child  {}: added {INCREMENTS}", std::process::id());
    Ok(())
}

// ---------------------------------------------------------------------------
// 4. Bulk transfer: segment vs pipe

/// Sink commands, one byte over its stdin; it acknowledges with one byte.
const CMD_SHM: u8 = b'S';
const CMD_PIPE: u8 = b'P';

fn bulk_transfer() -> Result {
    heading("4. Moving 64 MiB to a child: a segment vs an OS pipe");
    let seg = Segment::anonymous(TRANSFER)?;
    let data: Vec<u8> = (0..TRANSFER).map(|i| (i % 251) as u8).collect();
    let fd = seg.inheritable_fd()?;
    let mut sink =
        child("sink")?.env(FD_ENV, fd.as_raw_fd().to_string()).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
    drop(fd);
    let mut tx = sink.stdin.take().ok_or("no stdin pipe")?;
    let mut rx = sink.stdout.take().ok_or("no stdout pipe")?;

    // The same doorbell either way; only the path of the 64 MiB differs.
    let mut shm_best = Duration::MAX;
    let mut pipe_best = Duration::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        seg.write_at(0, &data)?;
        tx.write_all(&[CMD_SHM])?;
        ack(&mut rx)?;
        shm_best = shm_best.min(t.elapsed());

        let t = Instant::now();
        tx.write_all(&[CMD_PIPE])?;
        tx.write_all(&data)?;
        ack(&mut rx)?;
        pipe_best = pipe_best.min(t.elapsed());
    }
    drop(tx);
    check_exit("the sink child", sink.wait()?)?;

    let gbps = |d: Duration| TRANSFER as f64 / d.as_secs_f64() / 1e9;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("segment: 64 MiB in {:7.1} ms ({:.2} GB/s)", ms(shm_best), gbps(shm_best));
    println!("pipe:    64 MiB in {:7.1} ms ({:.2} GB/s)", ms(pipe_best), gbps(pipe_best));
    let ratio = pipe_best.as_secs_f64() / shm_best.as_secs_f64();
    let verdict = if ratio >= 1.0 {
        format!("the segment is {ratio:.1}x faster")
    } else {
        format!("the pipe was {:.1}x faster this time", 1.0 / ratio)
    };
    println!("{verdict} (best of 5; `cargo bench --bench segment` measures properly)");
    Ok(())
}

/// Waits for the sink's one-byte acknowledgement.
fn ack(rx: &mut impl Read) -> Result {
    let mut b = [0u8];
    rx.read_exact(&mut b)?;
    Ok(())
}

/// Copies each 64 MiB message out of the segment or the pipe into its own
/// buffer, and acknowledges.
#[allow(unsafe_code)] // from_inherited_fd: the number our parent passed
fn sink_child() -> Result {
    let fd = env_value(FD_ENV)?.parse()?;
    // SAFETY: as in `fd_child`.
    let seg = unsafe { Segment::from_inherited_fd(fd) }?;
    // Unbuffered: the pipe data follows the doorbell byte on stdin.
    let mut rx = File::from(std::io::stdin().as_fd().try_clone_to_owned()?);
    let mut tx = File::from(std::io::stdout().as_fd().try_clone_to_owned()?);
    let mut buf = vec![1u8; TRANSFER];
    let mut cmd = [0u8];
    while rx.read(&mut cmd)? == 1 {
        match cmd[0] {
            CMD_SHM => seg.read_at(0, &mut buf)?,
            CMD_PIPE => rx.read_exact(&mut buf)?,
            other => return Err(format!("unknown command {other:#x}").into()),
        }
        if buf[TRANSFER - 1] != ((TRANSFER - 1) % 251) as u8 {
            return Err("wrong bytes arrived".into());
        }
        buf.fill(0);
        tx.write_all(&[1])?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// 5. Cleanup after a crash

fn stale_cleanup() -> Result {
    heading("5. cleanup_stale(): the creator was killed with SIGKILL");
    let me = std::process::id();
    let name = format!("tour-stale-{me}");
    let path = format!("/dev/shm/shmproc.{name}");
    let mut crasher = child("crasher")?.env(NAME_ENV, &name).stdout(Stdio::piped()).spawn()?;
    let mut line = String::new();
    BufReader::new(crasher.stdout.take().ok_or("no stdout pipe")?).read_line(&mut line)?;
    if line.trim() != "ready" {
        let _ = crasher.kill();
        let _ = crasher.wait();
        return Err(format!("the crasher said {line:?}").into());
    }
    println!("child  {}: created {name:?}, says \"ready\"", crasher.id());
    crasher.kill()?; // SIGKILL: no destructor runs, the name stays
    let status = crasher.wait()?;
    println!("parent {me}: killed the child ({status}); {path} exists: {}", Path::new(&path).exists());

    let report = shmproc::cleanup_stale()?;
    let ours = report.removed.contains(&name);
    let others = report.removed.len() - usize::from(ours);
    println!(
        "parent {me}: cleanup_stale() removed {name:?}: {ours} (other stale names: {others}, \
         live creators left alone: {}, dead tokens swept: {})",
        report.alive, report.tokens_removed
    );
    println!("parent {me}: {path} exists: {}", Path::new(&path).exists());
    if !ours || Path::new(&path).exists() {
        return Err("the stale segment was not removed".into());
    }
    Ok(())
}

fn crasher_child() -> Result {
    let _seg = Segment::create(&env_value(NAME_ENV)?, 4096)?;
    println!("ready");
    std::io::stdout().flush()?;
    // The parent kills us; if it died first, do not linger forever.
    std::thread::sleep(Duration::from_secs(60));
    Ok(())
}

// ---------------------------------------------------------------------------
// 6. shmproc processes

/// A tour child's work: its pid and the sum of the squares of 1..=n.
fn sum_of_squares(n: u64) -> (u32, u64) {
    (std::process::id(), (1..=n).map(|i| i * i).sum())
}

fn explode(_: ()) -> u64 {
    panic!("this child panics on purpose")
}

fn processes() -> Result {
    heading("6. Processes: children under each start method");
    let me = std::process::id();
    // Fork needs a single-threaded parent: no section above starts a thread
    // (std's Command does not), so it runs here in the tour's own process.
    for method in [StartMethod::Fork, StartMethod::Spawn, StartMethod::ForkServer] {
        let ctx = Context::new(method);
        let (pid, sum) = ctx.spawn(sum_of_squares, 1000)?.join()?;
        // Timed apart from the first child, which also starts the fork server.
        let t = Instant::now();
        for _ in 0..TIMED_CHILDREN {
            ctx.spawn(sum_of_squares, 1000)?.join()?;
        }
        let mean = t.elapsed() / TIMED_CHILDREN;
        println!(
            "{:<10}: child {pid} returned sum of squares 1..=1000 = {sum}; start+join {:.2} ms (mean of {TIMED_CHILDREN})",
            method.as_str(),
            mean.as_secs_f64() * 1e3
        );
    }
    let mut p = Process::spawn(explode, ())?;
    match p.join() {
        Err(e) => println!("parent {me}: join() of a child that panicked: {e}"),
        Ok(_) => return Err("the panicking child returned a value".into()),
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// 7. A lock whose holder is killed

/// Two accounts that always hold 100 between them.
type Accounts = Mutex<[u64; 2]>;

/// Locks the accounts, takes 10 out of the first (half of a transfer to
/// the second), says so, and waits to be killed before finishing.
fn transfer_and_hang((accounts, holding): (Accounts, Event)) {
    let mut guard = accounts.lock().expect("lock the accounts");
    guard[0] -= 10;
    println!("child  {}: holds the lock, took 10 out of account 0, not yet into account 1", std::process::id());
    holding.set();
    // The parent kills us; if it died first, do not linger forever.
    std::thread::sleep(Duration::from_secs(60));
    guard[1] += 10;
}

fn killed_holder() -> Result {
    heading("7. Locks survive a killed holder");
    let me = std::process::id();
    let accounts: Accounts = Mutex::new([100, 0])?;
    let holding = Event::new()?;
    let mut child = Process::spawn(transfer_and_hang, (accounts.clone(), holding.clone()))?;
    if holding.wait_timeout(Duration::from_secs(30)).is_err() {
        child.kill()?;
        return Err("the child never took the lock".into());
    }
    println!("parent {me}: the lock is held: is_locked() = {}", accounts.is_locked());
    child.kill()?;
    match child.join() {
        Err(e) => println!("parent {me}: kill() sent SIGKILL; join(): {e}"),
        Ok(()) => return Err("the killed child finished its transfer".into()),
    }

    // A plain mutex would now be locked forever. This one hands the lock
    // over, and says the data may be half-written.
    match accounts.lock() {
        Err(LockError::OwnerDied(mut guard)) => {
            println!("parent {me}: lock() returned OwnerDied: accounts = {:?} (sum {})", *guard, guard[0] + guard[1]);
            guard[1] = 100 - guard[0]; // finish the transfer the child began
            guard.mark_consistent();
            println!("parent {me}: repaired to {:?} and called mark_consistent()", *guard);
        }
        Ok(_) => return Err("lock() did not report the holder's death".into()),
        Err(e) => return Err(shmproc::Error::from(e).into()),
    }
    let guard = accounts.lock().map_err(shmproc::Error::from)?;
    println!(
        "parent {me}: second lock(): clean (is_recovering() = {}), accounts = {:?}",
        guard.is_recovering(),
        *guard
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// 8. Streaming values through a lock-free ring

/// Values streamed in section 8.
const STREAM: u64 = 1_000_000;

/// Takes the producer role and pushes 1..=STREAM in batches.
fn stream_numbers(ring: SpscRing<u64>) -> u64 {
    let mut tx = ring.producer().expect("producer role");
    let mut next = 1;
    let mut batch = Vec::with_capacity(256);
    while next <= STREAM {
        batch.clear();
        batch.extend(next..(next + 256).min(STREAM + 1));
        let mut sent = 0;
        while sent < batch.len() {
            let n = tx.push_slice(&batch[sent..]).expect("ring positions");
            if n == 0 {
                std::thread::yield_now(); // full: the consumer catches up
            }
            sent += n;
        }
        next += batch.len() as u64;
    }
    STREAM
}

fn ring_stream() -> Result {
    heading("8. Streaming values through a lock-free ring");
    let me = std::process::id();
    let ring = SpscRing::<u64>::new(4096)?;
    let mut rx = ring.consumer()?;
    let started = Instant::now();
    let mut child = Process::spawn(stream_numbers, ring.clone())?;
    let (mut got, mut sum) = (0u64, 0u64);
    let mut buf = vec![0u64; 1024];
    let deadline = Instant::now() + Duration::from_secs(60);
    while got < STREAM {
        let n = rx.pop_into(&mut buf)?;
        if n == 0 {
            if Instant::now() > deadline {
                child.kill()?;
                return Err("the producer stalled".into());
            }
            std::thread::yield_now();
        }
        for v in &buf[..n] {
            sum = sum.wrapping_add(*v);
        }
        got += n as u64;
    }
    let secs = started.elapsed().as_secs_f64();
    let sent = child.join()?;
    println!("parent {me}: received {got} of {sent} values from child {}, sum {sum}", child.pid());
    println!(
        "parent {me}: {:.1} M values/s, including the child's start (`cargo bench --bench ring` measures properly)",
        got as f64 / secs / 1e6
    );
    if sum != STREAM * (STREAM + 1) / 2 {
        return Err("the stream lost or duplicated values".into());
    }
    println!("parent {me}: every value arrived once, in order of the sum 1 + 2 + ... + {STREAM}");
    Ok(())
}

// ---------------------------------------------------------------------------
// 9. Strings through a Queue, next to an OS pipe

/// Strings sent in section 9, each way.
const MESSAGES: u32 = 100_000;

/// Message `i` of section 9.
fn message(i: u32) -> String {
    format!("message {i}")
}

/// Puts the section's strings into the queue.
fn put_messages(q: Queue<String>) -> u32 {
    for i in 0..MESSAGES {
        q.put(message(i)).expect("put a string");
    }
    MESSAGES
}

/// Sends the section's strings through a typed channel.
fn send_messages(tx: shmproc::channel::Sender<String>) {
    for i in 0..MESSAGES {
        tx.send(message(i)).expect("send a string");
    }
}

/// Takes `MESSAGES` strings from `next`, checking each; returns the rate
/// from the first one to the last (the child's start is not counted).
fn receive_all(mut next: impl FnMut() -> Result<String>) -> Result<f64> {
    let mut started = Instant::now();
    for i in 0..MESSAGES {
        let s = next()?;
        if s != message(i) {
            return Err(format!("string {i} arrived as {s:?}").into());
        }
        if i == 0 {
            started = Instant::now();
        }
    }
    Ok(f64::from(MESSAGES - 1) / started.elapsed().as_secs_f64())
}

fn queue_stream() -> Result {
    heading("9. A Queue<String> and a typed channel between processes, next to an OS pipe");
    let me = std::process::id();
    let q = Queue::<String>::new(0)?;
    let mut producer = Process::spawn(put_messages, q.clone())?;
    let queue_rate = receive_all(|| Ok(q.get()?))?;
    let sent = producer.join()?;
    println!("parent {me}: got {sent} strings from child {} through the Queue, each as sent", producer.pid());

    // A typed channel: two children hold the only senders, so the parent's
    // loop ends by itself once both have finished (dropped their senders).
    let (tx, rx) = shmproc::channel::<String>(64)?;
    let kids = [Process::spawn(send_messages, tx.clone())?, Process::spawn(send_messages, tx.clone())?];
    drop(tx);
    let mut got = 0u32;
    for s in &rx {
        s?;
        got += 1;
    }
    for mut k in kids {
        k.join()?;
    }
    println!(
        "parent {me}: got {got} strings through a typed channel from two children; the loop ended when both were done"
    );

    // The same strings from a child writing length-prefixed frames into a
    // pipe, one write per string (a queue delivers each at once, too).
    let mut writer = child("pipe_writer")?.stdout(Stdio::piped()).spawn()?;
    let mut rx = BufReader::new(writer.stdout.take().ok_or("no stdout pipe")?);
    let pipe_rate = receive_all(|| {
        let mut len = [0u8; 4];
        rx.read_exact(&mut len)?;
        let mut bytes = vec![0u8; u32::from_le_bytes(len) as usize];
        rx.read_exact(&mut bytes)?;
        Ok(String::from_utf8(bytes)?)
    })?;
    check_exit("the pipe writer", writer.wait()?)?;
    println!("parent {me}: got {MESSAGES} strings from child {} through a pipe, each as sent", writer.id());
    println!(
        "Queue: {:.2} M strings/s; pipe: {:.2} M strings/s (one short run, timed from the first string to the \
         last; `cargo bench --bench queue` measures properly)",
        queue_rate / 1e6,
        pipe_rate / 1e6
    );
    Ok(())
}

fn pipe_writer_child() -> Result {
    let mut tx = File::from(std::io::stdout().as_fd().try_clone_to_owned()?);
    let mut frame = Vec::new();
    for i in 0..MESSAGES {
        let s = message(i);
        frame.clear();
        frame.extend_from_slice(&u32::try_from(s.len())?.to_le_bytes());
        frame.extend_from_slice(s.as_bytes());
        tx.write_all(&frame)?;
    }
    Ok(())
}

/// Section 10: round trips per run.
const ROUND_TRIPS: u64 = 20_000;

/// Answers every number with the next one until the parent sends `u64::MAX`.
fn ping_pong(conn: Connection) -> u64 {
    let mut answered = 0;
    loop {
        let n: u64 = conn.recv().expect("a number");
        if n == u64::MAX {
            return answered;
        }
        conn.send(&(n + 1)).expect("the answer");
        answered += 1;
    }
}

/// `ROUND_TRIPS` round trips through `send`/`recv`; the mean time of one.
fn time_round_trips(mut send: impl FnMut(u64) -> Result, mut recv: impl FnMut() -> Result<u64>) -> Result<Duration> {
    // A few unmeasured round trips first: the peer is up and running.
    for n in 0..100 {
        send(n)?;
        recv()?;
    }
    let start = Instant::now();
    for n in 0..ROUND_TRIPS {
        send(n)?;
        let got = recv()?;
        if got != n + 1 {
            return Err(format!("sent {n}, got {got} back").into());
        }
    }
    Ok(start.elapsed() / u32::try_from(ROUND_TRIPS)?)
}

fn pipe_ping_pong() -> Result {
    heading("10. A Pipe ping-pong between two processes, next to two OS pipes");
    let me = std::process::id();
    let (parent, child_end) = Pipe::new()?;
    let mut peer = Process::spawn(ping_pong, child_end)?;
    let shm = time_round_trips(|n| Ok(parent.send(&n)?), || Ok(parent.recv::<u64>()?))?;
    parent.send(&u64::MAX)?;
    let answered = peer.join()?;
    println!("parent {me}: child {} answered {answered} numbers through a shmproc Pipe", peer.pid());

    // The same through the child's stdin and stdout (two OS pipes).
    let mut echo = child("echo")?.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
    let mut tx = echo.stdin.take().ok_or("no stdin pipe")?;
    let mut rx = echo.stdout.take().ok_or("no stdout pipe")?;
    let os = time_round_trips(
        |n| Ok(tx.write_all(&n.to_le_bytes())?),
        || {
            let mut b = [0u8; 8];
            rx.read_exact(&mut b)?;
            Ok(u64::from_le_bytes(b))
        },
    )?;
    drop(tx);
    check_exit("the echo child", echo.wait()?)?;
    println!("parent {me}: child {} answered the same through two OS pipes", echo.id());
    println!(
        "round trip: Pipe {:.2} us, OS pipes {:.2} us (mean of {ROUND_TRIPS}; one short run, `cargo bench --bench \
         pipe` measures properly)",
        shm.as_secs_f64() * 1e6,
        os.as_secs_f64() * 1e6
    );
    Ok(())
}

/// Echoes each 8-byte number on stdin as the next number on stdout.
fn echo_child() -> Result {
    let mut rx = std::io::stdin().lock();
    let mut tx = File::from(std::io::stdout().as_fd().try_clone_to_owned()?);
    let mut b = [0u8; 8];
    loop {
        match rx.read_exact(&mut b) {
            Ok(()) => tx.write_all(&(u64::from_le_bytes(b) + 1).to_le_bytes())?,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
}

// ---------------------------------------------------------------------------
// 11. Pools of worker processes

/// Section 11: trivial tasks timed through `Pool::map`.
const POOL_TASKS: u64 = 20_000;
/// Python's `Pool(2).map` of trivial tasks at chunksize 1 on this kind of
/// machine (docs/performance.md), tasks per second.
const PYTHON_POOL_MAP: f64 = 41_000.0;

/// A pool task: the worker's pid and the square of `x`.
fn square_in_worker(x: u64) -> (u32, u64) {
    (std::process::id(), x * x)
}

/// A pool task that kills the worker running it.
fn abort_worker(_: ()) -> u64 {
    std::process::abort()
}

/// A trivial task, for timing.
fn add_one(x: u64) -> u64 {
    x + 1
}

fn pools() -> Result {
    heading("11. A Pool and a ProcessPoolExecutor of 2 worker processes");
    let me = std::process::id();
    let pool = Pool::new(2)?;
    let results = pool.map(square_in_worker, 1..=8)?;
    let mut pids: Vec<u32> = results.iter().map(|&(pid, _)| pid).collect();
    pids.sort_unstable();
    pids.dedup();
    let squares: Vec<u64> = results.iter().map(|&(_, sq)| sq).collect();
    println!("parent {me}: map(square, 1..=8) -> {squares:?}, computed in workers {pids:?}");
    if pids.contains(&me) || squares != (1..=8u64).map(|x| x * x).collect::<Vec<_>>() {
        return Err("map must run in the workers and keep the order".into());
    }
    match pool.apply(abort_worker, ()) {
        Err(e @ ShmError::WorkerDied { .. }) => println!("a task that aborts its worker fails alone: {e}"),
        other => return Err(format!("the aborting task returned {other:?}").into()),
    }
    let after = pool.map(square_in_worker, [9])?;
    println!("the pool replaced the worker: map(square, [9]) -> {} in worker {}", after[0].1, after[0].0);

    let t = Instant::now();
    let out = pool.map(add_one, 0..POOL_TASKS)?;
    let rate = POOL_TASKS as f64 / t.elapsed().as_secs_f64();
    if out.len() as u64 != POOL_TASKS {
        return Err("map lost tasks".into());
    }
    println!(
        "map of {POOL_TASKS} trivial tasks, chunksize 1: {:.0} k tasks/s; Python's Pool(2).map on this kind of \
         machine: {:.0} k/s ({:.0}x; `cargo bench --bench pool` measures properly)",
        rate / 1e3,
        PYTHON_POOL_MAP / 1e3,
        rate / PYTHON_POOL_MAP
    );
    drop(pool);

    let ex = ProcessPoolExecutor::new(2)?;
    let futures = (1..=4).map(|x| ex.submit(square_in_worker, x)).collect::<std::result::Result<Vec<_>, _>>()?;
    let mut done = Vec::new();
    for f in shmproc::as_completed(&futures) {
        done.push(f.result()?.1);
    }
    done.sort_unstable();
    println!("executor: 4 futures completed (as_completed), squares {done:?}");
    if done != [1, 4, 9, 16] {
        return Err("the executor lost a result".into());
    }
    ex.shutdown(true, false)?;
    Ok(())
}

// ---------------------------------------------------------------------------
// 12. Value and Array

/// Section 12: increments per process.
const VALUE_INCREMENTS: u64 = 200_000;
/// Python's `Value` += 1 under its lock by 2 processes on this kind of
/// machine (docs/performance.md), increments per second.
const PYTHON_VALUE: f64 = 900_000.0;

/// Sets the value to pi and negates the array (scenario 12).
fn pi_and_negate((v, a): (Value<f64>, Array<i32>)) -> u32 {
    v.store(std::f64::consts::PI).expect("store");
    let mut xs = a.lock().expect("no holder died");
    for x in xs.iter_mut() {
        *x = -*x;
    }
    std::process::id()
}

/// Adds 1 to the counter `n` times, each under the value's lock.
fn increment(counter: Value<u64>) -> u64 {
    for _ in 0..VALUE_INCREMENTS {
        *counter.lock().expect("no holder died") += 1;
    }
    VALUE_INCREMENTS
}

fn shared_data() -> Result {
    heading("12. A Value and an Array in shared memory");
    let me = std::process::id();
    let v = Value::new(0.0f64)?;
    let a = Array::from_slice(&(0..10).collect::<Vec<i32>>())?;
    let mut child = Process::spawn(pi_and_negate, (v.clone(), a.clone()))?;
    let pid = child.join()?;
    println!("parent {me}: child {pid} set the Value to {} and negated the Array: {:?}", v.load()?, a.to_vec()?);
    if v.load()? != std::f64::consts::PI || a.to_vec()? != (0..10).map(|x: i32| -x).collect::<Vec<_>>() {
        return Err("the child's changes are not visible".into());
    }

    let counter = Value::new(0u64)?;
    let t = Instant::now();
    let mut peer = Process::spawn(increment, counter.clone())?;
    increment(counter.clone());
    peer.join()?;
    let rate = (2 * VALUE_INCREMENTS) as f64 / t.elapsed().as_secs_f64();
    let total = counter.load()?;
    println!(
        "parent {me} and child {}: {total} increments of a Value<u64>, each under its lock, none lost; {:.1} M/s \
         (Python's Value under its Lock: {:.1} M/s; `cargo bench --bench shared` measures properly)",
        peer.pid(),
        rate / 1e6,
        PYTHON_VALUE / 1e6
    );
    if total != 2 * VALUE_INCREMENTS {
        return Err(format!("lost increments: {total}").into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// 13. A Manager

/// Section 13: manager calls timed.
const MANAGER_CALLS: u64 = 20_000;
/// Python's Manager dict set with 1 client on this kind of machine
/// (docs/performance.md), calls per second.
const PYTHON_MANAGER: f64 = 21_000.0;

fn add(old: Option<u64>, n: u64) -> Option<u64> {
    Some(old.unwrap_or(0) + n)
}

/// A worker: counts words of its text into the shared dict (atomically, in
/// the server) and logs what it did to the shared list.
fn count_words((words, log, text): (DictProxy<String, u64>, ListProxy<String>, String)) -> u32 {
    for w in text.split_whitespace() {
        words.update(&w.to_owned(), add, 1).expect("update");
    }
    log.push(format!("pid {} counted {:?}", std::process::id(), text)).expect("push");
    std::process::id()
}

fn manager() -> Result {
    heading("13. A Manager: a dict and a list shared by several workers");
    let me = std::process::id();
    let mgr = Manager::start()?;
    let words = mgr.dict::<String, u64>()?;
    let log = mgr.list::<String>()?;
    let texts = ["the cat sat", "the dog sat", "the cat ran"];
    let mut workers = Vec::new();
    for text in texts {
        workers.push(Process::spawn(count_words, (words.clone(), log.clone(), text.to_owned()))?);
    }
    for w in &mut workers {
        w.join()?;
    }
    println!("parent {me}: manager server pid {}; the shared list:", mgr.pid());
    for line in log.to_vec()? {
        println!("  {line}");
    }
    let mut items = words.items()?;
    items.sort();
    println!("merged dict (updated in the server, no lost count): {items:?}");
    if words.get(&"the".to_owned())? != Some(3) || words.get(&"sat".to_owned())? != Some(2) {
        return Err("lost word counts".into());
    }

    let timing = mgr.dict::<u64, u64>()?;
    let t = Instant::now();
    for i in 0..MANAGER_CALLS {
        timing.insert(i % 100, i)?;
    }
    let rate = MANAGER_CALLS as f64 / t.elapsed().as_secs_f64();
    println!(
        "dict insert, one call at a time: {:.0} k calls/s; Python's Manager: {:.0} k/s ({:.0}x; `cargo bench --bench \
         manager` measures properly)",
        rate / 1e3,
        PYTHON_MANAGER / 1e3,
        rate / PYTHON_MANAGER
    );

    let pid = rustix::process::Pid::from_raw(i32::try_from(mgr.pid())?).ok_or("bad pid")?;
    rustix::process::kill_process(pid, rustix::process::Signal::KILL)?;
    let t = Instant::now();
    let err = loop {
        match words.len() {
            Err(e) => break e,
            // The call raced the kill: ask again.
            Ok(_) if t.elapsed() < Duration::from_secs(10) => std::thread::sleep(Duration::from_millis(1)),
            Ok(_) => return Err("the killed manager still answers".into()),
        }
    };
    let again = log.len();
    println!("after kill -9 of the server: words.len() -> {err:?} (\"{err}\"); log.len() -> {again:?} at once");
    if !matches!(err, ShmError::ManagerDead) || !matches!(again, Err(ShmError::ManagerDead)) {
        return Err(format!("expected ManagerDead, got {err} and {again:?}").into());
    }
    Ok(())
}

/// Section 14: sends `count` numbers starting at `base` into a typed channel.
fn async_sender((tx, base, count): (shmproc::channel::Sender<u64>, u64, u64)) {
    for i in base..base + count {
        tx.send(i).expect("send");
    }
}

/// Section 14: answers each number with the next one, until the pipe ends.
fn async_echo(conn: Connection) {
    while let Ok(n) = conn.recv::<u64>() {
        if conn.send(&(n + 1)).is_err() {
            return;
        }
    }
}

/// Section 14: sets `ev` after `ms` milliseconds, then exits when `done`
/// is set.
fn set_after((ev, done, ms): (Event, Event, u64)) {
    std::thread::sleep(Duration::from_millis(ms));
    ev.set();
    done.wait();
}

/// Section 14: numbers per sender and round trips.
const ASYNC_ITEMS: u64 = 50_000;
const ASYNC_ROUND_TRIPS: u64 = 2_000;

fn async_twins() -> Result {
    use futures::StreamExt;
    heading("14. Async: tokio tasks await a typed channel, a Pipe and children; connection::wait");
    let (tx, mut rx) = shmproc::channel::<u64>(256)?;
    let mut senders = Vec::new();
    for i in 0..2 {
        senders.push(Process::spawn(async_sender, (tx.clone(), i * ASYNC_ITEMS, ASYNC_ITEMS))?);
    }
    drop(tx);
    let (mine, theirs) = Pipe::new()?;
    let mut echo = Process::spawn(async_echo, theirs)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (received, round_trip, joined) = runtime.block_on(async {
        // Two tasks on one thread: one drains the channel's Stream, the
        // other plays ping-pong on the Pipe; neither blocks the thread.
        let drain = async {
            let (mut n, mut sum) = (0u64, 0u64);
            while let Some(item) = rx.next().await {
                sum += item?;
                n += 1;
            }
            Ok::<_, ShmError>((n, sum))
        };
        let ping = async {
            let t = Instant::now();
            for i in 0..ASYNC_ROUND_TRIPS {
                mine.send_async(&i).await?;
                if mine.recv_async::<u64>().await? != i + 1 {
                    return Err(ShmError::Corrupt { what: "echo" });
                }
            }
            mine.close();
            Ok::<_, ShmError>(t.elapsed() / ASYNC_ROUND_TRIPS as u32)
        };
        let (received, round_trip) = tokio::join!(drain, ping);
        let mut joined = 0;
        for s in &mut senders {
            s.join_async().await?;
            joined += 1;
        }
        echo.join_async().await?;
        Ok::<_, Box<dyn Error>>((received?, round_trip?, joined))
    })?;
    let (n, sum) = received;
    println!(
        "one tokio thread: {n} numbers (sum {sum}) from 2 children through a typed channel's Stream, while {} \
         Pipe round trips took {:.1} us each; join_async() of {joined} senders and the echo child",
        ASYNC_ROUND_TRIPS,
        round_trip.as_secs_f64() * 1e6
    );
    let expected: u64 = (0..2 * ASYNC_ITEMS).sum();
    if n != 2 * ASYNC_ITEMS || sum != expected {
        return Err(format!("expected {} numbers summing to {expected}", 2 * ASYNC_ITEMS).into());
    }

    let q = Queue::<u64>::new(0)?;
    let ev = Event::new()?;
    let done = Event::new()?;
    let mut setter = Process::spawn(set_after, (ev.clone(), done.clone(), 20))?;
    let ready = shmproc::connection::wait(&[&q, &ev, &setter], Some(Duration::from_secs(30)))?;
    println!("connection::wait over a Queue, an Event and a Process: ready {ready:?} (the Event, set by the child)");
    done.set();
    setter.join()?;
    let ready = shmproc::connection::wait(&[&q, &setter], Some(Duration::from_secs(30)))?;
    println!("and over the Queue and the exited Process: ready {ready:?}");
    Ok(())
}
