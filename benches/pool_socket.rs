//! A connection served by a pool worker: the cost per connection of
//! handing an accepted socket to a [`Pool`] worker, against workers that
//! accept on a listener they inherited, and against Python.
//!
//! One iteration is one connection: the client (this process, the bench's
//! thread) connects to a listener on 127.0.0.1, sends 64 bytes, reads them
//! back and closes; a pool worker echoes until EOF and returns the byte
//! count, which the parent waits for before the next connection (one
//! connection at a time, no window: a figure of latency per connection,
//! as Python's is measured). The group "pool socket per connection" has
//! two functions, both on the same [`Pool`] of 2 workers
//! ([`StartMethod::Fork`], built before anything else so that the workers
//! inherit the listener):
//!
//! - `handed_over`: the parent accepts and calls
//!   `pool.apply_async(serve, Fd::new(conn))` (the descriptor is duplicated
//!   into a socket pair made with the pool's task queue and received by
//!   the worker that takes the task); the parent's copy is closed when
//!   `apply_async` returns.
//! - `worker_accepts`: the pool task is "serve the next connection": the
//!   parent calls `pool.apply_async(serve_next, ())`, then connects; the
//!   worker accepts on its inherited copy of the listener. No descriptor
//!   travels; this is the way round it that `examples/echo_server.rs` used
//!   before descriptors travelled in pool tasks, and what a pre-fork
//!   server does.
//!
//! The summary line gives microseconds per connection for both, their
//! ratio, and the ratio to Python's figure for `handed_over`'s pattern,
//! measured by `benches/python/pool_socket.py` (`Pool(2).apply_async(echo,
//! (conn,))`, fork, the socket pickled through `multiprocessing.reduction`;
//! Python 3.11.7, 2 CPUs, "Intel(R) Xeon(R) Processor"; the best of 6
//! runs while cargo builds kept the CPUs busy, the others 466 to 914 us;
//! three runs on the idle machine gave 700, 700 and 850 us, so the figure
//! used is the one most favourable to Python): [`PYTHON_US`].
//!
//! Nothing is pinned: the caller (client and acceptor), the pool's thread
//! and the two workers share the 2 CPUs.
//!
//! Run with `cargo bench --bench pool_socket` (about 10 s).

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{Recorder, SAMPLES, measuring, timed};
use criterion::{Criterion, Throughput};
use shmproc::{Fd, Pool, StartMethod};

/// Worker processes (this machine has 2 CPUs).
const WORKERS: usize = 2;
/// The bytes each client sends and gets back.
const MESSAGE: [u8; 64] = [0x5a; 64];
/// The longest any read or result may take before the bench fails (a
/// worker died) instead of hanging.
const HANG_GUARD: Duration = Duration::from_secs(10);
/// Python's figure for `handed_over`'s pattern: microseconds per
/// connection (`benches/python/pool_socket.py`).
const PYTHON_US: f64 = 431.6;

/// The listener, made before the pool so that its (forked) workers have
/// it, as `worker_accepts` needs.
static LISTENER: OnceLock<TcpListener> = OnceLock::new();

fn listener() -> &'static TcpListener {
    LISTENER.get().expect("made in main before the pool")
}

/// Echoes until the client closes; the bytes echoed.
fn echo(mut conn: TcpStream) -> u64 {
    conn.set_read_timeout(Some(HANG_GUARD)).expect("read timeout");
    let mut buf = [0u8; 256];
    let mut total = 0;
    loop {
        let n = match conn.read(&mut buf) {
            Ok(0) => return total,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => panic!("worker: read: {e}"),
        };
        conn.write_all(&buf[..n]).expect("worker: write");
        total += n as u64;
    }
}

/// `handed_over`'s task: the connection came with it.
fn serve(conn: Fd<TcpStream>) -> u64 {
    echo(conn.into_inner())
}

/// `worker_accepts`'s task: accept the next connection on the inherited
/// listener, and serve it.
fn serve_next(_: ()) -> u64 {
    let (conn, _) = listener().accept().expect("worker: accept");
    echo(conn)
}

/// The client's side of one connection after `connect`: send, read back,
/// close.
fn talk(mut client: TcpStream) {
    client.write_all(&MESSAGE).expect("client: write");
    let mut back = [0u8; MESSAGE.len()];
    client.read_exact(&mut back).expect("client: read the echo");
    assert_eq!(back, MESSAGE, "the echo differs");
}

fn connect(addr: SocketAddr) -> TcpStream {
    let client = TcpStream::connect(addr).expect("client: connect");
    client.set_read_timeout(Some(HANG_GUARD)).expect("client: read timeout");
    client
}

/// `n` connections, each handed to a worker with its descriptor.
fn handed_over(pool: &Pool, addr: SocketAddr, n: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        let client = connect(addr);
        let (conn, _) = listener().accept().expect("accept");
        // `conn` is moved in: the parent's copy is closed once queued.
        let served = pool.apply_async(serve, Fd::new(conn)).expect("Pool::apply_async");
        talk(client);
        assert_eq!(served.get_timeout(HANG_GUARD).expect("the worker's result"), MESSAGE.len() as u64);
    }
    start.elapsed()
}

/// `n` connections, each accepted by a worker on its inherited listener.
fn worker_accepts(pool: &Pool, addr: SocketAddr, n: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        let served = pool.apply_async(serve_next, ()).expect("Pool::apply_async");
        talk(connect(addr));
        assert_eq!(served.get_timeout(HANG_GUARD).expect("the worker's result"), MESSAGE.len() as u64);
    }
    start.elapsed()
}

/// Prints `pool socket per connection: ...` if both were measured.
fn summary(rec: &Recorder) {
    let us = |name: &str| rec.median(name).map(|secs| secs * 1e6);
    let (Some(handed), Some(accepts)) = (us("handed_over"), us("worker_accepts")) else { return };
    println!(
        "pool socket per connection (2 workers, one connection at a time): apply_async(serve, Fd::new(conn)) \
         {handed:.1} us ({:.2} k/s); workers accepting on an inherited listener {accepts:.1} us (handing over \
         takes {:.2}x the time); Python's Pool(2).apply_async(echo, (conn,)) {PYTHON_US:.1} us: {:.1}x Python",
        1e3 / handed,
        handed / accepts,
        PYTHON_US / handed
    );
}

fn main() {
    shmproc::init();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a listener on 127.0.0.1");
    let addr = listener.local_addr().expect("the listener's address");
    LISTENER.set(listener).expect("set once");
    // Under fork the pool is built while this process has one thread
    // (before criterion, whose analysis may start threads).
    let pool = Pool::builder().processes(WORKERS).start_method(StartMethod::Fork).build().expect("create the pool");
    handed_over(&pool, addr, 1); // the workers are up, and descriptors travel
    worker_accepts(&pool, addr, 1);

    // No plots: rendering them costs seconds per function on a 2-vCPU VM,
    // and the summary line is the report.
    let mut c = Criterion::default().without_plots().configure_from_args();
    let rec = Recorder::default();
    let mut group = c.benchmark_group("pool socket per connection");
    group.throughput(Throughput::Elements(1));
    group.sample_size(SAMPLES);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    timed(&mut group, &rec, "handed_over", |n| handed_over(&pool, addr, n));
    timed(&mut group, &rec, "worker_accepts", |n| worker_accepts(&pool, addr, n));
    group.finish();
    if measuring() {
        summary(&rec);
    }
    pool.close();
    pool.join().expect("join the pool");
    c.final_summary();
}
