//! A TCP echo server on loopback that hands each connection to a worker
//! process (scenario 14): first one process per connection (3 clients),
//! then a pool of 4 workers serving 6 clients, so 2 connections wait their
//! turn in the pool's task queue; the pool part runs once per start method
//! (fork, spawn, forkserver). It listens on 127.0.0.1 (a free port), serves
//! a fixed number of connections, gives up on any wait after a few seconds,
//! and stops by itself. The clients are processes too.
//!
//! Python:
//!
//! ```python
//! srv = socket.create_server(("127.0.0.1", 0))
//! for _ in range(3):                                  # one process per connection
//!     conn, addr = srv.accept()
//!     Process(target=echo, args=(conn,)).start()      # under fork: the child has conn
//!     conn.close()                                    # the parent's copy
//! with Pool(4) as pool:                               # the parent accepts,
//!     for _ in range(6):                              # a worker serves
//!         conn, addr = srv.accept()
//!         pool.apply_async(echo, (conn,))             # pickled later, on the pool's
//!                                                     # thread: no close() here
//! ```
//!
//! How a connection reaches a worker. A connected socket is a file
//! descriptor; the kernel passes descriptors between processes on a Unix
//! socket (`SCM_RIGHTS`), or copies them all at a `fork`.
//!
//! 1. One process per connection: the parent accepts, then calls
//!    [`Process::fork`] with a closure that owns the `TcpStream`. The forked
//!    child has a copy of every descriptor and serves the connection; in the
//!    parent the closure is dropped unrun, which closes the parent's copy.
//!    Fork needs a single-threaded parent, which this one is (its clients
//!    are processes, not threads).
//! 2. A pool: the parent accepts and calls
//!    `pool.apply_async(serve, Fd::new(conn))`. [`Fd`] marks a value that
//!    carries a descriptor: encoding the task duplicates the descriptor into
//!    a socket pair made with the pool's task queue, beside the task's
//!    bytes, and the worker that takes the task receives it there (a new
//!    descriptor for the same connection). `apply_async` takes `conn` by
//!    value and drops it once the task is queued, which closes the parent's
//!    copy (in Python the socket object lives on until it is collected):
//!    from then on the worker alone holds the connection, and its close
//!    ends it. With 6 tasks and 4 workers, the 5th and 6th connections are
//!    accepted at once but wait in the task queue until a worker is free.
//!    This works with every start method; the workers need no listener.
//!
//! Other ways: a worker could connect back to the parent, the workers
//! could accept on a listener inherited at fork (`StartMethod::Fork`, the
//! listener made before the pool), or the parent could relay the bytes
//! through a `Pipe` or `Queue` (a copy more per byte).
//!
//! Run it with `cargo run --release --example echo_server`.

use std::error::Error;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use shmproc::{Fd, Pool, Process, StartMethod};

/// Clients of part 1 (one process each) and part 2 (a pool).
const FORKED_CLIENTS: u32 = 3;
const POOL_CLIENTS: u32 = 6;
const POOL_WORKERS: usize = 4;
/// Lines each client sends, and its pause between them (so that a
/// connection stays open for a while).
const LINES: u32 = 3;
const THINK: Duration = Duration::from_millis(60);
/// The longest any accept, read or write may wait.
const LIMIT: Duration = Duration::from_secs(5);

/// A monotonic clock that all processes share, in microseconds
/// (`std::time::Instant` cannot leave its process).
fn now_us() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000 + t.tv_nsec as u64 / 1_000
}

/// What a server process did with one connection.
#[derive(Debug, Serialize, Deserialize)]
struct Served {
    pid: u32,
    peer_port: u16,
    bytes: u64,
    /// When this process began to serve the connection.
    started_us: u64,
    closed_us: u64,
}

/// Accepts one connection, waiting at most [`LIMIT`] (the listener is
/// non-blocking, so a missing client cannot hang the server).
fn accept(listener: &TcpListener) -> io::Result<TcpStream> {
    let deadline = Instant::now() + LIMIT;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false)?;
                return Ok(stream);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Echoes everything back until the client closes its end.
fn echo(mut stream: TcpStream) -> io::Result<Served> {
    let started_us = now_us();
    stream.set_read_timeout(Some(LIMIT))?;
    stream.set_write_timeout(Some(LIMIT))?;
    let peer_port = stream.peer_addr()?.port();
    let mut buf = [0u8; 1024];
    let mut bytes = 0;
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        stream.write_all(&buf[..n])?;
        bytes += n as u64;
    }
    Ok(Served { pid: std::process::id(), peer_port, bytes, started_us, closed_us: now_us() })
}

/// A pool task: serve the connection that came with the task (the worker
/// received its descriptor with the task's bytes).
fn serve(conn: Fd<TcpStream>) -> Served {
    echo(conn.into_inner()).expect("echo")
}

/// What a client saw.
#[derive(Debug, Serialize, Deserialize)]
struct ClientReport {
    id: u32,
    port: u16,
    sent: Vec<String>,
    echoed: Vec<String>,
    first_echo_ms: u128,
}

/// A client process: connects, sends [`LINES`] lines with pauses, reads
/// each one back, then closes.
fn client((port, id): (u16, u32)) -> ClientReport {
    let t0 = Instant::now();
    let stream = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), LIMIT).expect("connect");
    stream.set_read_timeout(Some(LIMIT)).expect("read timeout");
    let mut reader = BufReader::new(stream.try_clone().expect("clone the stream"));
    let mut writer = stream;
    let (mut sent, mut echoed, mut first_echo_ms) = (Vec::new(), Vec::new(), 0);
    for k in 1..=LINES {
        if k > 1 {
            std::thread::sleep(THINK);
        }
        let line = format!("client {id}, line {k}");
        writeln!(writer, "{line}").expect("send a line");
        sent.push(line);
        let mut back = String::new();
        reader.read_line(&mut back).expect("read the echo");
        if k == 1 {
            first_echo_ms = t0.elapsed().as_millis();
        }
        echoed.push(back.trim_end().to_owned());
    }
    ClientReport { id, port: writer.local_addr().expect("local address").port(), sent, echoed, first_echo_ms }
}

/// Starts `n` client processes numbered from 1.
fn start_clients(port: u16, n: u32) -> shmproc::Result<Vec<Process<ClientReport>>> {
    (1..=n).map(|id| Process::spawn(client, (port, id))).collect()
}

/// Joins the clients; checks that each got back exactly what it sent.
fn join_clients(clients: Vec<Process<ClientReport>>) -> Result<Vec<ClientReport>, Box<dyn Error>> {
    let mut reports = Vec::new();
    for mut c in clients {
        let r = c.join()?;
        println!(
            "client {} (pid {}, port {}): first echo after {} ms; got its {} lines back: {}",
            r.id,
            c.pid(),
            r.port,
            r.first_echo_ms,
            r.sent.len(),
            r.echoed == r.sent
        );
        if r.echoed != r.sent {
            return Err(format!("client {}: sent {:?}, got {:?}", r.id, r.sent, r.echoed).into());
        }
        reports.push(r);
    }
    Ok(reports)
}

fn one_process_per_connection(listener: &TcpListener, port: u16) -> Result<(), Box<dyn Error>> {
    println!("-- one process per connection: {FORKED_CLIENTS} clients --");
    let clients = start_clients(port, FORKED_CLIENTS)?;
    let mut handlers = Vec::new();
    for _ in 0..FORKED_CLIENTS {
        let stream = accept(listener)?;
        let peer = stream.peer_addr()?.port();
        // The child owns `stream`; here the closure is dropped, closing our copy.
        let handler = Process::fork(move || echo(stream).expect("echo"))?;
        println!("accepted client port {peer}: forked handler pid {}", handler.pid());
        handlers.push(handler);
    }
    let mut pids = Vec::new();
    for mut h in handlers {
        let served = h.join()?;
        let status = h.exitcode().ok_or("a joined handler has an exit code")?;
        println!(
            "handler pid {} echoed {} bytes to client port {}, then exited ({status})",
            served.pid, served.bytes, served.peer_port
        );
        pids.push(served.pid);
    }
    join_clients(clients)?;
    pids.sort_unstable();
    pids.dedup();
    if pids.len() != FORKED_CLIENTS as usize || pids.contains(&std::process::id()) {
        return Err(format!("each connection needs a process of its own: {pids:?}").into());
    }
    println!("{FORKED_CLIENTS} connections, {FORKED_CLIENTS} handler processes, each used once");
    Ok(())
}

fn pool_of_workers(listener: &TcpListener, port: u16, method: StartMethod) -> Result<(), Box<dyn Error>> {
    println!("\n-- a pool of {POOL_WORKERS} workers, start method {method}: {POOL_CLIENTS} clients --");
    let pool = Pool::builder().processes(POOL_WORKERS).start_method(method).build()?;
    let clients = start_clients(port, POOL_CLIENTS)?;
    let mut tasks = Vec::new();
    for _ in 0..POOL_CLIENTS {
        let conn = accept(listener)?;
        // The task carries a duplicate of the descriptor; `conn` is moved
        // in and dropped once the task is queued: the parent's copy is closed.
        tasks.push(pool.apply_async(serve, Fd::new(conn))?);
    }
    println!("accepted {POOL_CLIENTS} connections; each went to the pool with apply_async(serve, Fd::new(conn))");
    let mut served = tasks.iter().map(|t| t.get()).collect::<Result<Vec<_>, _>>()?;
    pool.close();
    pool.join()?;
    let reports = join_clients(clients)?;

    served.sort_by_key(|s| s.started_us);
    let t0 = served[0].started_us;
    let mut waited = 0;
    let mut most_open = 0;
    for (i, s) in served.iter().enumerate() {
        let id = reports.iter().find(|r| r.port == s.peer_port).map_or(0, |r| r.id);
        let open = served.iter().filter(|o| o.started_us <= s.started_us && s.started_us < o.closed_us).count();
        most_open = most_open.max(open);
        let after_close = served.iter().any(|o| o.closed_us <= s.started_us);
        waited += usize::from(after_close);
        println!(
            "connection {}: client {id}, worker pid {}, open {}..{} ms{}",
            i + 1,
            s.pid,
            (s.started_us - t0) / 1000,
            (s.closed_us - t0) / 1000,
            if after_close { ": served after another connection closed" } else { "" }
        );
    }
    let mut pids: Vec<u32> = served.iter().map(|s| s.pid).collect();
    pids.sort_unstable();
    pids.dedup();
    println!(
        "{} connections served by {} worker processes; at most {most_open} connections open at once",
        served.len(),
        pids.len()
    );
    println!("{waited} connections waited their turn in the task queue");
    let parent = std::process::id();
    if served.len() != POOL_CLIENTS as usize
        || pids.len() > POOL_WORKERS
        || pids.contains(&parent)
        || most_open > POOL_WORKERS
        || waited < 2
    {
        return Err(format!("the pool went beyond its {POOL_WORKERS} workers: {served:?}").into());
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    shmproc::init();
    let listener = TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let port = listener.local_addr()?.port();
    println!("echo server listening on 127.0.0.1:{port} (pid {})\n", std::process::id());
    let t0 = Instant::now();
    one_process_per_connection(&listener, port)?;
    // Fork first: a pool under fork must be built while this process has a
    // single thread (a pool has a thread of its own).
    let methods = [StartMethod::Fork, StartMethod::Spawn, StartMethod::ForkServer];
    for method in methods {
        pool_of_workers(&listener, port, method)?;
    }
    println!(
        "\nserved {} connections in {} ms; the server stops",
        FORKED_CLIENTS + POOL_CLIENTS * methods.len() as u32,
        t0.elapsed().as_millis()
    );
    Ok(())
}
