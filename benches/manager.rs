//! The manager's dict and list proxies against the same manager logic over
//! a Unix-socket transport, side by side, with one and two client
//! processes:
//!
//! - `manager_1_client`: `dict_set` (`d.insert(k, v)`, 1000 distinct
//!   keys), `dict_get` (`d.get(&k)`), `list_push` (`l.push(v)`), each
//!   through a shmproc [`Manager`] (a server process; one shared-memory
//!   pipe per client) and through `socket_*`: a server process written
//!   here (a `HashMap` of encoded keys and values and a `Vec` under one
//!   mutex, a thread per connection) that clients reach over a
//!   `UnixStream` with length-prefixed postcard frames: what a
//!   straightforward socket manager does, without Python's pickling and
//!   dispatch.
//! - `dict_set_batched`: sets in batches of 100, with
//!   [`DictProxy::extend`] (requests packed into pipelined batch messages)
//!   and, on the socket, 100 frames written at once before the 100 replies
//!   are read.
//! - `manager_2_clients`: the same, with the work split between this
//!   process and a second client process running at the same time (one
//!   iteration is still one operation).
//!
//! The summary lines give operations per second, the ratio to the socket
//! version and to Python's Manager (docs/performance.md: 21 k dict sets/s with
//! one client, 51 k with two), and whether the targets are met (>= 20x
//! Python and >= 3x the socket transport, one client).
//!
//! - `manager queue proxy put+get`: a [`QueueProxy`] in one process (`put`
//!   then `get`, `one_process`), and a round trip through a child
//!   (`through_child`: this process puts into one queue, a child gets it
//!   and puts it into a second, this process gets it back). Python's
//!   `multiprocessing.Manager().Queue()` measured the same way by
//!   `benches/python/manager_queue.py` (Python 3.11.7, 2 CPUs, "Intel(R)
//!   Xeon(R) Processor", run once while a cargo build used the other
//!   CPU): 94.6 us per put+get in one process (10.6 k/s), 282 us per round
//!   trip through a child (3.5 k/s).
//!
//! Run with `cargo bench --bench manager` (about a minute).

mod common;

use std::collections::HashMap;
use std::io::{BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Pinning, Recorder, SAMPLES, measuring, timed};
use criterion::{Criterion, Throughput};
use serde::{Deserialize, Serialize};
use shmproc::{Connection, DictProxy, ListProxy, Manager, Pipe, Process, QueueProxy};

/// Python's Manager dict sets per second (docs/performance.md), 1 and 2 clients.
const PYTHON_OPS: [f64; 2] = [21_000.0, 51_000.0];
/// Distinct keys the sets and gets cycle through.
const KEYS: u64 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Op {
    Set,
    Get,
    Push,
    /// Sets in batches of [`BATCH`]: `extend` here, pipelined frames on
    /// the socket.
    SetBatched,
}

const OPS: [(Op, &str); 4] =
    [(Op::Set, "dict_set"), (Op::Get, "dict_get"), (Op::Push, "list_push"), (Op::SetBatched, "dict_set_batched")];

/// Sets per batch of `dict_set_batched`.
const BATCH: u64 = 100;

// ---------------------------------------------------------------------------
// The socket manager
// ---------------------------------------------------------------------------

/// A request of the socket manager: keys and values encoded, as ours.
#[derive(Serialize, Deserialize)]
enum Request {
    Set(Vec<u8>, Vec<u8>),
    Get(Vec<u8>),
    Push(Vec<u8>),
    ClearList,
}

#[derive(Default)]
struct SockState {
    dict: HashMap<Vec<u8>, Vec<u8>>,
    list: Vec<Vec<u8>>,
}

fn write_frame(w: &mut impl Write, body: &[u8], buf: &mut Vec<u8>) -> std::io::Result<()> {
    buf.clear();
    buf.extend_from_slice(&(body.len() as u32).to_le_bytes());
    buf.extend_from_slice(body);
    w.write_all(buf)
}

fn read_frame(r: &mut impl Read, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    buf.resize(u32::from_le_bytes(len) as usize, 0);
    r.read_exact(buf)
}

/// One connection of the socket manager.
fn sock_serve(stream: UnixStream, state: Arc<Mutex<SockState>>) {
    let mut r = BufReader::new(stream.try_clone().expect("clone the stream"));
    let mut w = stream;
    let (mut req, mut out) = (Vec::new(), Vec::new());
    while read_frame(&mut r, &mut req).is_ok() {
        let Ok(request) = postcard::from_bytes::<Request>(&req) else { return };
        let reply: Option<Vec<u8>> = {
            let mut s = state.lock().expect("state");
            match request {
                Request::Set(k, v) => s.dict.insert(k, v),
                Request::Get(k) => s.dict.get(&k).cloned(),
                Request::Push(v) => {
                    s.list.push(v);
                    None
                }
                Request::ClearList => {
                    s.list.clear();
                    None
                }
            }
        };
        let body = postcard::to_allocvec(&reply).expect("encode");
        if write_frame(&mut w, &body, &mut out).is_err() {
            return;
        }
    }
}

/// The socket manager's server process: accepts on `path` forever (a
/// daemon: it ends with the bench).
fn sock_server(path: String) {
    let listener = UnixListener::bind(&path).expect("bind");
    let state = Arc::new(Mutex::new(SockState::default()));
    for s in listener.incoming().flatten() {
        let state = state.clone();
        std::thread::spawn(move || sock_serve(s, state));
    }
}

/// A client of the socket manager.
struct SockClient {
    r: BufReader<UnixStream>,
    w: UnixStream,
    buf: Vec<u8>,
    frame: Vec<u8>,
}

impl SockClient {
    fn connect(path: &str) -> SockClient {
        let deadline = Instant::now() + Duration::from_secs(10);
        let w = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e) if Instant::now() > deadline => panic!("connect {path}: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        };
        SockClient { r: BufReader::new(w.try_clone().expect("clone")), w, buf: Vec::new(), frame: Vec::new() }
    }

    /// Sends every request, then reads every reply (pipelined).
    fn call_many(&mut self, reqs: &[Request]) {
        let mut out = Vec::new();
        for req in reqs {
            let body = postcard::to_allocvec(req).expect("encode");
            out.extend_from_slice(&(body.len() as u32).to_le_bytes());
            out.extend_from_slice(&body);
        }
        self.w.write_all(&out).expect("send");
        for _ in reqs {
            read_frame(&mut self.r, &mut self.buf).expect("receive");
        }
    }

    fn call(&mut self, req: &Request) -> Option<Vec<u8>> {
        let body = postcard::to_allocvec(req).expect("encode");
        write_frame(&mut self.w, &body, &mut self.frame).expect("send");
        read_frame(&mut self.r, &mut self.buf).expect("receive");
        postcard::from_bytes(&self.buf).expect("decode")
    }
}

// ---------------------------------------------------------------------------
// The clients' work
// ---------------------------------------------------------------------------

/// `n` operations through the shmproc proxies, from sequence `base`.
fn run_shmproc(d: &DictProxy<u64, u64>, l: &ListProxy<u64>, op: Op, base: u64, n: u64) {
    for i in base..base + n {
        match op {
            Op::Set => drop(d.insert(i % KEYS, i).expect("insert")),
            Op::Get => assert!(d.get(&(i % KEYS)).expect("get").is_some()),
            Op::Push => l.push(i).expect("push"),
            Op::SetBatched => unreachable!("batched below"),
        }
    }
}

/// `n` sets in batches, through the shmproc proxy.
fn run_shmproc_batched(d: &DictProxy<u64, u64>, base: u64, n: u64) {
    let mut i = base;
    while i < base + n {
        let end = (i + BATCH).min(base + n);
        d.extend((i..end).map(|k| (k % KEYS, k))).expect("extend");
        i = end;
    }
}

/// `n` sets in pipelined batches, through the socket manager.
fn run_socket_batched(c: &mut SockClient, base: u64, n: u64) {
    let enc = |v: u64| postcard::to_allocvec(&v).expect("encode");
    let mut i = base;
    while i < base + n {
        let end = (i + BATCH).min(base + n);
        let reqs: Vec<Request> = (i..end).map(|k| Request::Set(enc(k % KEYS), enc(k))).collect();
        c.call_many(&reqs);
        i = end;
    }
}

/// `n` operations through the socket manager.
fn run_socket(c: &mut SockClient, op: Op, base: u64, n: u64) {
    let enc = |v: u64| postcard::to_allocvec(&v).expect("encode");
    for i in base..base + n {
        match op {
            Op::Set => drop(c.call(&Request::Set(enc(i % KEYS), enc(i)))),
            Op::Get => assert!(c.call(&Request::Get(enc(i % KEYS))).is_some()),
            Op::Push => drop(c.call(&Request::Push(enc(i)))),
            Op::SetBatched => unreachable!("batched below"),
        }
    }
}

/// `n` operations through one transport.
fn run(shm: bool, d: &DictProxy<u64, u64>, l: &ListProxy<u64>, sock: &mut SockClient, op: Op, base: u64, n: u64) {
    match (shm, op) {
        (true, Op::SetBatched) => run_shmproc_batched(d, base, n),
        (false, Op::SetBatched) => run_socket_batched(sock, base, n),
        (true, _) => run_shmproc(d, l, op, base, n),
        (false, _) => run_socket(sock, op, base, n),
    }
}

/// Waits until the second client has connected to both servers (its
/// answer to a zero-length command), so that every server thread exists.
fn second_ready(ctl: &Connection) {
    for shm in [true, false] {
        ctl.send(&(shm, Op::Get, 0u64)).expect("command the second client");
        ctl.recv::<()>().expect("the second client answers");
    }
}

/// Pins every thread of process `pid` to `cpu`.
fn pin_process(pid: u32, cpu: usize) {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return };
    for t in tasks.flatten() {
        if let Some(tid) =
            t.file_name().to_str().and_then(|s| s.parse::<i32>().ok()).and_then(rustix::thread::Pid::from_raw)
        {
            // Best effort: an unpinned server only measures differently.
            let _ = rustix::thread::sched_setaffinity(Some(tid), &set);
        }
    }
}

/// A command to the second client: transport (true: shmproc), op, count.
type Command = (bool, Op, u64);

/// The second client process: runs commands from `ctl` until it closes.
fn second_client((ctl, d, l, path): (Connection, DictProxy<u64, u64>, ListProxy<u64>, String)) {
    let mut sock = SockClient::connect(&path);
    d.len().expect("connect to the manager");
    while let Ok((shm, op, n)) = ctl.recv::<Command>() {
        run(shm, &d, &l, &mut sock, op, 1 << 40, n);
        if ctl.send(&()).is_err() {
            return;
        }
    }
}

struct Bench {
    _pinning: Pinning,
    _mgr: Manager,
    d: DictProxy<u64, u64>,
    l: ListProxy<u64>,
    sock: SockClient,
    ctl: Connection,
    _server: Process<()>,
    _second: Process<()>,
    path: String,
}

impl Drop for Bench {
    fn drop(&mut self) {
        self.ctl.close();
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Bench {
    fn start() -> Bench {
        // This thread on one CPU, both servers on another (as the other
        // cross-process benches measure); the second client is not pinned.
        let pinning = Pinning::new();
        let mgr = Manager::start().expect("start the manager");
        let d = mgr.dict::<u64, u64>().expect("dict");
        let l = mgr.list::<u64>().expect("list");
        let path = format!("/tmp/shmproc-bench-manager-{}.sock", std::process::id());
        let _ = std::fs::remove_file(&path);
        let server = Process::builder().daemon(true).spawn(sock_server, path.clone()).expect("socket server");
        let mut sock = SockClient::connect(&path);
        let (ctl, theirs) = Pipe::new().expect("pipe");
        let second = Process::builder()
            .daemon(true)
            .spawn(second_client, (theirs, d.clone(), l.clone(), path.clone()))
            .expect("second client");
        // Fill both dicts so that gets find their keys.
        d.extend((0..KEYS).map(|k| (k, k))).expect("fill");
        run_socket(&mut sock, Op::Set, 0, KEYS);
        second_ready(&ctl);
        if let Some(cpu) = pinning.peer_cpu {
            pin_process(mgr.pid(), cpu);
            pin_process(server.pid(), cpu);
        }
        Bench { _pinning: pinning, _mgr: mgr, d, l, sock, ctl, _server: server, _second: second, path }
    }

    /// `n` operations, split between this process and the second client
    /// when `two`.
    fn run(&mut self, shm: bool, op: Op, n: u64, two: bool) -> Duration {
        // Keep the lists short (untimed).
        if op == Op::Push {
            if shm {
                self.l.clear().expect("clear");
            } else {
                self.sock.call(&Request::ClearList);
            }
        }
        let theirs = if two { n / 2 } else { 0 };
        let t = Instant::now();
        if theirs > 0 {
            self.ctl.send(&(shm, op, theirs)).expect("command the second client");
        }
        run(shm, &self.d, &self.l, &mut self.sock, op, 0, n - theirs);
        if theirs > 0 {
            self.ctl.recv::<()>().expect("the second client finished");
        }
        t.elapsed()
    }
}

fn groups(c: &mut Criterion, rec: &Recorder) {
    let bench = std::cell::RefCell::new(None::<Bench>);
    for (clients, group_name) in [(1, "manager_1_client"), (2, "manager_2_clients")] {
        let mut group = c.benchmark_group(group_name);
        group.throughput(Throughput::Elements(1));
        group.sample_size(SAMPLES);
        group.warm_up_time(Duration::from_secs(1));
        group.measurement_time(Duration::from_secs(3));
        for (op, label) in OPS {
            for (shm, transport) in [(true, "shmproc"), (false, "socket")] {
                let name: &'static str = Box::leak(format!("{transport}_{label}_{clients}c").into_boxed_str());
                timed(&mut group, rec, name, |n| {
                    let mut b = bench.borrow_mut();
                    b.get_or_insert_with(Bench::start).run(shm, op, n, clients == 2)
                });
            }
        }
        group.finish();
    }
}

/// Python's Manager queue: microseconds per put+get in one process and per
/// round trip through a child (`benches/python/manager_queue.py`).
const PYTHON_QUEUE_US: [f64; 2] = [94.6, 282.2];

/// The child of `through_child`: gets from `q_in`, puts into `q_out`,
/// until `u64::MAX`.
fn echo((q_in, q_out): (QueueProxy<u64>, QueueProxy<u64>)) {
    loop {
        match q_in.get().expect("get") {
            u64::MAX => return,
            x => q_out.put(x).expect("put"),
        }
    }
}

fn queue_group(c: &mut Criterion, rec: &Recorder) {
    let mgr = Manager::start().expect("start the manager");
    let q = mgr.queue::<u64>(0).expect("queue");
    let (q_in, q_out) = (mgr.queue::<u64>(0).expect("queue"), mgr.queue::<u64>(0).expect("queue"));
    let mut child = Process::builder().daemon(true).spawn(echo, (q_in.clone(), q_out.clone())).expect("echo child");
    let mut group = c.benchmark_group("manager queue proxy put+get");
    group.throughput(Throughput::Elements(1));
    group.sample_size(SAMPLES);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    timed(&mut group, rec, "queue_one_process", |n| {
        let t = Instant::now();
        for i in 0..n {
            q.put(i).expect("put");
            q.get().expect("get");
        }
        t.elapsed()
    });
    timed(&mut group, rec, "queue_through_child", |n| {
        let t = Instant::now();
        for i in 0..n {
            q_in.put(i).expect("put");
            q_out.get().expect("get");
        }
        t.elapsed()
    });
    group.finish();
    q_in.put(u64::MAX).expect("stop the child");
    let _ = child.join_timeout(Duration::from_secs(10));
}

fn summary(rec: &Recorder) -> Vec<String> {
    let mut lines = Vec::new();
    for clients in [1usize, 2] {
        let mut parts = Vec::new();
        let mut verdict = String::new();
        for (op, label) in OPS {
            let ops = |t: &str| rec.median(&format!("{t}_{label}_{clients}c")).map(|s| 1.0 / s);
            let (Some(shm), Some(sock)) = (ops("shmproc"), ops("socket")) else { continue };
            let python = PYTHON_OPS[clients - 1];
            parts.push(format!(
                "{label}: shmproc {:.0} k ops/s, socket {:.0} k ops/s ({:.1}x socket, {:.0}x Python's {:.0} k)",
                shm / 1e3,
                sock / 1e3,
                shm / sock,
                shm / python,
                python / 1e3
            ));
            if clients == 1 && op == Op::Set {
                let met = shm / python >= 20.0 && shm / sock >= 3.0;
                verdict =
                    format!("; target dict set >= 20x Python and >= 3x socket: {}", if met { "met" } else { "missed" });
            }
        }
        if !parts.is_empty() {
            lines.push(format!("manager, {clients} client(s): {}{verdict}", parts.join("; ")));
        }
    }
    for (i, name) in ["queue_one_process", "queue_through_child"].into_iter().enumerate() {
        if let Some(secs) = rec.median(name) {
            let us = secs * 1e6;
            lines.push(format!(
                "manager queue proxy, {name}: {us:.1} us per put+get ({:.1}x Python's {:.1} us)",
                PYTHON_QUEUE_US[i] / us,
                PYTHON_QUEUE_US[i]
            ));
        }
    }
    lines
}

fn main() {
    shmproc::init();
    let mut c = Criterion::default().without_plots().configure_from_args();
    let rec = Recorder::default();
    groups(&mut c, &rec);
    queue_group(&mut c, &rec);
    if measuring() {
        for line in summary(&rec) {
            println!("{line}");
        }
    }
    c.final_summary();
}
