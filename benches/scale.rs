//! Many processes on one [`Queue`]: time per item and context switches per
//! item against the number of producers (and, separately, consumers), from
//! 1 to 256 on whatever number of CPUs the machine has, beside Python's
//! `multiprocessing.Queue` doing the same work.
//!
//! - `scale_producers/N`: N worker processes each `put` [`ITEMS`] `u64`s
//!   into one `Queue::new(0)` (the default 256 KiB ring) while this process
//!   `get`s all N x ITEMS. With many producers most of them wait on a full
//!   ring: this measures how room is handed out.
//! - `scale_consumers/N`: this process `put`s N x ITEMS `u64`s, N workers
//!   each `get` ITEMS of them (and then release a semaphore this process
//!   waits on). Most consumers wait on an empty ring.
//!
//! - `scale_joinable/N`: as `consumers`, on a `JoinableQueue`: each worker
//!   calls `task_done` after each `get`, and this process `join`s.
//! - `scale_pipe/N`: N workers each `send` ITEMS `u64`s on the same end of
//!   one `Pipe::simplex()` while this process `recv`s them (Python: one
//!   `mp.Pipe(duplex=False)`; its small sends are single writes).
//! - `scale_pool/N` (N up to 64): `Pool::new(N).map_chunked(square, 0..N x
//!   ITEMS, 1)`: one task per item, so the task queue has N consumers that
//!   are idle most of the time; Python's side is `Pool(N).map(square,
//!   range(N * ITEMS), chunksize=1)`.
//! - `scale_manager/N` (N up to 64): N client processes each set
//!   [`MANAGER_OPS`] keys of one manager dict (`d[i % 64] = i`); an item
//!   is one request and its reply. Python: `mp.Manager().dict()`.
//!
//! The workers are started once per N (forkserver, the default start
//! method) and wait on a semaphore between rounds, so a round measures the
//! items only; one criterion iteration is one round (flat sampling,
//! [`SAMPLES`] samples). The context switches are the machine's (the
//! `ctxt` line of `/proc/stat`) over the measured rounds, divided by the
//! items: run on a quiet machine.
//!
//! Python's side runs [`PYTHON_SCRIPT`] (written to a temporary file and
//! run with `python3`, forkserver start method): the same workers, the same
//! rounds, an unbounded `mp.Queue` (Python's default), the median of
//! [`PYTHON_ROUNDS`] rounds and the context switches counted the same way.
//! `SHMPROC_SCALE_PYTHON=0` skips it; `SHMPROC_SCALE_MAX=n` stops at N = n;
//! `SHMPROC_SCALE_ONLY=pool` (a group's suffix, or `objects`) runs that
//! part alone (and the CSV then holds that part alone).
//!
//! After each group one line per N gives the median time per item, the
//! context switches per item, Python's time per item and the ratio, and
//! whether the targets hold: time per item within 2x of the N = 2 figure,
//! at least 10x Python, fewer than 2 context switches per item.
//!
//! Then objects at scale, counted rather than timed: a fresh child process
//! per count makes 100, 1 000, 10 000 and 100 000 anonymous `Value<u64>`s
//! (and, apart, `Lock`s), touches each, and reports the resident memory
//! and the file descriptors it gained per object (`/proc/self/status`,
//! `/proc/self/fd`: the shared cells, the handles and the vector holding
//! them), with the soft `RLIMIT_NOFILE` raised to the hard one; a count
//! that fails is reported with its error. [`PYTHON_OBJECTS`] does the same with
//! `mp.Value('q')` and `mp.Lock()`.
//!
//! The figures also go to `target/shmproc-scale.csv` (`shmproc plot`
//! draws them).

use std::io::Write;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use serde::{Deserialize, Serialize};
use shmproc::{Connection, DictProxy, JoinableQueue, Manager, Pipe, Process, Queue, Semaphore, Value};

mod common;
use common::{SAMPLES, measured, measuring, median};

/// Items each worker puts (producers) or gets (consumers) per round.
const ITEMS: u64 = 1_000;
/// Requests each manager client makes per round (each is a round trip
/// through the server, so fewer keep Python's side short).
const MANAGER_OPS: u64 = 200;
/// The numbers of workers measured.
const COUNTS: [u32; 9] = [1, 2, 4, 8, 16, 32, 64, 128, 256];
/// Rounds of the Python script per N (the median is reported).
const PYTHON_ROUNDS: u32 = 3;
/// Where the figures go, relative to the package root (cargo bench's
/// working directory).
const CSV: &str = "target/shmproc-scale.csv";

/// The Python side: argv = mode (`producers` / `consumers`), N, items per
/// worker, rounds. Prints the median seconds per item and the context
/// switches per item over all rounds.
const PYTHON_SCRIPT: &str = r#"
import multiprocessing as mp, sys, time

def ctxt():
    with open('/proc/stat') as f:
        for line in f:
            if line.startswith('ctxt '):
                return int(line.split()[1])

def producer(q, go, done, k):
    while True:
        go.acquire()
        n = k.value
        if n == 0:
            return
        for i in range(n):
            q.put(i)

def consumer(q, go, done, k):
    while True:
        go.acquire()
        n = k.value
        if n == 0:
            return
        for _ in range(n):
            q.get()
        done.release()

def joinable(q, go, done, k):
    while True:
        go.acquire()
        n = k.value
        if n == 0:
            return
        for _ in range(n):
            q.get()
            q.task_done()

def sender(w, go, done, k):
    while True:
        go.acquire()
        n = k.value
        if n == 0:
            return
        for i in range(n):
            w.send(i)

def client(d, go, done, k):
    while True:
        go.acquire()
        n = k.value
        if n == 0:
            return
        for i in range(n):
            d[i % 64] = i
        done.release()

def square(x):
    return x * x

def pool(n, items, rounds):
    times, switches = [], 0
    with mp.Pool(n) as p:
        p.map(square, range(n), chunksize=1)  # every worker started
        for _ in range(rounds):
            c0, t0 = ctxt(), time.perf_counter()
            p.map(square, range(n * items), chunksize=1)
            times.append(time.perf_counter() - t0)
            switches += ctxt() - c0
    times.sort()
    print(times[len(times) // 2] / (n * items), switches / (rounds * n * items))

def main():
    mode, n, items, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    mp.set_start_method('forkserver')
    if mode == 'pool':
        return pool(n, items, rounds)
    go, done, k = mp.Semaphore(0), mp.Semaphore(0), mp.Value('q', items)
    manager = None
    if mode == 'joinable':
        q = mp.JoinableQueue()
        link, target = q, joinable
    elif mode == 'pipe':
        r, w = mp.Pipe(duplex=False)
        link, target = w, sender
    elif mode == 'manager':
        manager = mp.Manager()
        link, target = manager.dict(), client
    else:
        q = mp.Queue()
        link, target = q, producer if mode == 'producers' else consumer
    procs = [mp.Process(target=target, args=(link, go, done, k)) for _ in range(n)]
    for p in procs:
        p.start()
    times, switches = [], 0
    for _ in range(rounds):
        c0, t0 = ctxt(), time.perf_counter()
        for _ in range(n):
            go.release()
        if mode == 'producers':
            for _ in range(n * items):
                q.get()
        elif mode == 'pipe':
            for _ in range(n * items):
                r.recv()
        elif mode == 'manager':
            for _ in range(n):
                done.acquire()
        elif mode == 'joinable':
            for i in range(n * items):
                q.put(i)
            q.join()
        else:
            for i in range(n * items):
                q.put(i)
            for _ in range(n):
                done.acquire()
        times.append(time.perf_counter() - t0)
        switches += ctxt() - c0
    k.value = 0
    for _ in range(n):
        go.release()
    for p in procs:
        p.join()
    if manager is not None:
        manager.shutdown()
    times.sort()
    print(times[len(times) // 2] / (n * items), switches / (rounds * n * items))

if __name__ == '__main__':
    main()
"#;

/// Python's objects: argv = kind (`value` / `lock`), count. Prints the
/// resident bytes and the descriptors gained per object.
const PYTHON_OBJECTS: &str = r#"
import multiprocessing as mp, os, sys

def rss():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) * 1024

def main():
    kind, count = sys.argv[1], int(sys.argv[2])
    fds0, rss0 = len(os.listdir('/proc/self/fd')), rss()
    if kind == 'value':
        objs = [mp.Value('q', 0) for _ in range(count)]
        for o in objs:
            o.value = 1
    else:
        objs = [mp.Lock() for _ in range(count)]
        for o in objs:
            o.acquire()
            o.release()
    fds1, rss1 = len(os.listdir('/proc/self/fd')), rss()
    print((rss1 - rss0) / count, (fds1 - fds0) / count)

if __name__ == '__main__':
    main()
"#;

/// Object counts of the memory and descriptor figures.
const OBJECT_COUNTS: [usize; 4] = [100, 1_000, 10_000, 100_000];

/// Which side has the N workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Producers,
    Consumers,
    Joinable,
    Pipe,
    Pool,
    Manager,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Producers => "producers",
            Mode::Consumers => "consumers",
            Mode::Joinable => "joinable",
            Mode::Pipe => "pipe",
            Mode::Pool => "pool",
            Mode::Manager => "manager",
        }
    }

    /// The largest N measured.
    fn max_n(self) -> u32 {
        let limit = std::env::var("SHMPROC_SCALE_MAX").ok().and_then(|v| v.parse().ok()).unwrap_or(u32::MAX);
        if matches!(self, Mode::Pool | Mode::Manager) { limit.min(64) } else { limit }
    }

    /// Items each worker handles per round.
    fn items(self) -> u64 {
        if self == Mode::Manager { MANAGER_OPS } else { ITEMS }
    }
}

/// What the workers share with this process besides the signals.
#[derive(Clone, Serialize, Deserialize)]
enum Link {
    Producers(Queue<u64>),
    Consumers(Queue<u64>),
    Joinable(JoinableQueue<u64>),
    /// A named simplex pipe: each worker opens it and sends on its writer
    /// (a `Connection` is not `Clone`, so it cannot be passed N times).
    Pipe(String),
    Dict(DictProxy<u64, u64>),
}

/// What a worker gets: the link, the round's start and end signals, and
/// the items per round (0: exit).
type Args = (Link, Semaphore, Semaphore, Value<u64>);

/// A worker: each round, waits for `go`, handles its items (the mode is
/// the link's), and releases `done` where this process waits for it.
fn worker((link, go, done, items): Args) {
    let pipe = match &link {
        Link::Pipe(name) => Some(Pipe::open(name).expect("open the pipe").1),
        _ => None,
    };
    loop {
        go.acquire();
        let n = items.load().expect("items");
        if n == 0 {
            return;
        }
        match &link {
            Link::Producers(q) => (0..n).for_each(|i| q.put(i).expect("put")),
            Link::Consumers(q) => {
                (0..n).for_each(|_| {
                    q.get().expect("get");
                });
                done.release().expect("done");
            }
            Link::Joinable(q) => (0..n).for_each(|_| {
                q.get().expect("get");
                q.task_done().expect("task_done");
            }),
            Link::Pipe(_) => {
                let tx = pipe.as_ref().expect("opened above");
                (0..n).for_each(|i| tx.send(&i).expect("send"));
            }
            Link::Dict(d) => {
                (0..n).for_each(|i| {
                    d.insert(i % 64, i).expect("insert");
                });
                done.release().expect("done");
            }
        }
    }
}

/// This process's side of a mode.
enum Mine {
    Queue(Queue<u64>),
    Joinable(JoinableQueue<u64>),
    /// The reader, and the pipe's name (unlinked at the end).
    Pipe(Connection, String),
    /// The manager, kept running while the workers hold its dict.
    Manager(#[allow(dead_code)] Manager),
    Pool(shmproc::Pool),
}

/// N started workers and the objects they share (a pool's are its own).
struct Workers {
    mode: Mode,
    n: u32,
    mine: Mine,
    signals: (Semaphore, Semaphore, Value<u64>),
    procs: Vec<Process<()>>,
}

fn square(x: u64) -> u64 {
    x.wrapping_mul(x)
}

impl Workers {
    fn start(mode: Mode, n: u32) -> Workers {
        let signals = (
            Semaphore::new(0).expect("go"),
            Semaphore::new(0).expect("done"),
            Value::new(mode.items()).expect("items"),
        );
        let (mine, link) = match mode {
            Mode::Producers | Mode::Consumers => {
                let q = Queue::new(0).expect("queue");
                let link =
                    if mode == Mode::Producers { Link::Producers(q.clone()) } else { Link::Consumers(q.clone()) };
                (Mine::Queue(q), Some(link))
            }
            Mode::Joinable => {
                let q = JoinableQueue::new(0).expect("joinable queue");
                (Mine::Joinable(q.clone()), Some(Link::Joinable(q)))
            }
            Mode::Pipe => {
                let name = format!("scale-pipe-{}-{n}", std::process::id());
                let (rx, _tx) = Pipe::builder().name(&name).simplex().expect("pipe");
                (Mine::Pipe(rx, name.clone()), Some(Link::Pipe(name)))
            }
            Mode::Manager => {
                let m = Manager::start().expect("manager");
                let d = m.dict::<u64, u64>().expect("dict");
                (Mine::Manager(m), Some(Link::Dict(d)))
            }
            Mode::Pool => {
                let pool = shmproc::Pool::new(n as usize).expect("pool");
                pool.map_chunked(square, 0..u64::from(n), 1).expect("every worker started");
                (Mine::Pool(pool), None)
            }
        };
        let procs = link.map_or_else(Vec::new, |link| {
            let args: Args = (link, signals.0.clone(), signals.1.clone(), signals.2.clone());
            (0..n).map(|_| Process::spawn(worker, args.clone()).expect("worker")).collect()
        });
        Workers { mode, n, mine, signals, procs }
    }

    /// One round: every worker handles its items; the time taken.
    fn round(&self) -> Duration {
        let (go, done, _) = &self.signals;
        let total = u64::from(self.n) * self.mode.items();
        let start = Instant::now();
        if let Mine::Pool(pool) = &self.mine {
            let got = pool.map_chunked(square, 0..total, 1).expect("map");
            assert_eq!(got.len() as u64, total);
            return start.elapsed();
        }
        go.release_n(self.n).expect("go");
        let wait_done = || (0..self.n).for_each(|_| done.acquire());
        match (&self.mine, self.mode) {
            (Mine::Queue(q), Mode::Producers) => (0..total).for_each(|_| {
                q.get().expect("get");
            }),
            (Mine::Queue(q), _) => {
                (0..total).for_each(|i| q.put(i).expect("put"));
                wait_done();
            }
            (Mine::Joinable(q), _) => {
                (0..total).for_each(|i| q.put(i).expect("put"));
                q.join().expect("join");
            }
            (Mine::Pipe(rx, _), _) => (0..total).for_each(|_| {
                rx.recv::<u64>().expect("recv");
            }),
            (Mine::Manager(_), _) => wait_done(),
            (Mine::Pool(_), _) => unreachable!("a pool's round returned above"),
        }
        start.elapsed()
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        let (go, _, items) = &self.signals;
        let _ = items.store(0);
        let _ = go.release_n(self.n);
        for p in &mut self.procs {
            let _ = p.join();
        }
        if let Mine::Pipe(_, name) = &self.mine {
            let _ = shmproc::Segment::unlink(name);
        }
    }
}

/// The machine's context switches so far (`/proc/stat`), 0 if unknown.
fn context_switches() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    stat.lines().find_map(|l| l.strip_prefix("ctxt ")).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

/// One N's measured figures.
#[derive(Debug, Clone, Copy)]
struct Point {
    n: u32,
    /// Median seconds per item.
    per_item: f64,
    switches_per_item: f64,
    python: Option<(f64, f64)>,
}

/// Runs `script` with `python3` and `args` (unless
/// `SHMPROC_SCALE_PYTHON=0`): the two figures it prints.
fn run_python(script: &str, args: &[String]) -> Option<(f64, f64)> {
    if std::env::var_os("SHMPROC_SCALE_PYTHON").is_some_and(|v| v == "0") {
        return None;
    }
    let path = std::env::temp_dir().join(format!("shmproc-scale-{}.py", std::process::id()));
    std::fs::write(&path, script).ok()?;
    let out = std::process::Command::new("python3").arg(&path).args(args).output();
    let _ = std::fs::remove_file(&path);
    let out = out.ok().filter(|o| o.status.success())?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.split_whitespace().map(str::parse::<f64>);
    Some((it.next()?.ok()?, it.next()?.ok()?))
}

/// Python's side of a group: (seconds per item, context switches per item).
fn python(mode: Mode, n: u32) -> Option<(f64, f64)> {
    let args = [mode.name().to_owned(), n.to_string(), mode.items().to_string(), PYTHON_ROUNDS.to_string()];
    run_python(PYTHON_SCRIPT, &args)
}

fn group(c: &mut Criterion, mode: Mode) -> Vec<Point> {
    let mut points = Vec::new();
    let mut g = c.benchmark_group(format!("scale_{}", mode.name()));
    g.sample_size(SAMPLES);
    g.sampling_mode(SamplingMode::Flat);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(2));
    for n in COUNTS.into_iter().filter(|&n| n <= mode.max_n()) {
        let workers = Workers::start(mode, n);
        let mut samples: Vec<(f64, u64, u64)> = Vec::new();
        g.throughput(Throughput::Elements(u64::from(n) * mode.items()));
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter_custom(|iters| {
                let c0 = context_switches();
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += workers.round();
                }
                let items = iters * u64::from(n) * mode.items();
                samples.push((total.as_secs_f64() / items as f64, context_switches() - c0, items));
                total
            });
        });
        drop(workers);
        if !measuring() {
            continue;
        }
        let kept = measured(&samples);
        let per_item = median(kept.iter().map(|s| s.0).collect()).unwrap_or(f64::NAN);
        let (cs, items) = kept.iter().fold((0, 0), |(c, i), s| (c + s.1, i + s.2));
        let switches_per_item = cs as f64 / items.max(1) as f64;
        points.push(Point { n, per_item, switches_per_item, python: python(mode, n) });
    }
    g.finish();
    points
}

/// The summary lines of one group, with the targets.
fn summary(mode: Mode, points: &[Point]) {
    let base = points.iter().find(|p| p.n == 2).map(|p| p.per_item);
    for p in points {
        let mut line = format!(
            "scale_{}/{}: shmproc {:.0} ns/item, {:.2} context switches/item",
            mode.name(),
            p.n,
            p.per_item * 1e9,
            p.switches_per_item
        );
        if let Some(b) = base {
            line += &format!(", {:.2}x the N=2 time", p.per_item / b);
        }
        if let Some((py, py_cs)) = p.python {
            line += &format!("; Python {:.0} ns/item, {:.2} cs/item ({:.0}x Python)", py * 1e9, py_cs, py / p.per_item);
        }
        let met = base.is_none_or(|b| p.per_item <= 2.0 * b)
            && p.python.is_none_or(|(py, _)| py >= 10.0 * p.per_item)
            && p.switches_per_item < 2.0;
        line += if met { " [targets met]" } else { " [targets missed]" };
        println!("{line}");
    }
}

/// Both parts' figures, one row each: `scale` rows (mode, N, seconds and
/// context switches per item, Python's two) and `objects` rows (kind,
/// count, bytes and descriptors per object, Python's two); a field is empty
/// where there is no figure.
fn write_csv(rows: &[(Mode, Point)], objs: &[(Object, Objects)]) {
    let Ok(mut f) = std::fs::File::create(CSV) else { return };
    let _ = writeln!(f, "part,what,n,shmproc_a,shmproc_b,python_a,python_b");
    let pair =
        |p: Option<(f64, f64)>| p.map_or((String::new(), String::new()), |(a, b)| (a.to_string(), b.to_string()));
    for (mode, p) in rows {
        let (py, py_cs) = pair(p.python);
        let _ = writeln!(f, "scale,{},{},{},{},{py},{py_cs}", mode.name(), p.n, p.per_item, p.switches_per_item);
    }
    for (kind, o) in objs {
        let (a, b) = pair(o.got.as_ref().ok().copied());
        let (py, py_fds) = pair(o.python);
        let _ = writeln!(f, "objects,{},{},{a},{b},{py},{py_fds}", kind.name(), o.count);
    }
}

/// The objects measured for memory and descriptors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Object {
    Value,
    Lock,
}

impl Object {
    fn name(self) -> &'static str {
        match self {
            Object::Value => "value",
            Object::Lock => "lock",
        }
    }
}

/// One object count's figures: resident bytes and descriptors per object,
/// or the error that stopped the count.
struct Objects {
    count: usize,
    got: Result<(f64, f64), String>,
    python: Option<(f64, f64)>,
}

fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb =
        status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse().ok());
    kb.unwrap_or(0u64) * 1024
}

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

/// Makes `count` objects of `kind`, touches each, and returns the resident
/// bytes and descriptors gained per object.
fn make_objects(kind: Object, count: usize) -> Result<(f64, f64), String> {
    let (rss0, fds0) = (resident_bytes(), open_descriptors());
    let per = |rss1: u64, fds1: usize| {
        (rss1.saturating_sub(rss0) as f64 / count as f64, fds1.saturating_sub(fds0) as f64 / count as f64)
    };
    match kind {
        Object::Value => {
            let objs =
                (0..count).map(|_| Value::new(0u64)).collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())?;
            for o in &objs {
                o.store(1).map_err(|e| e.to_string())?;
            }
            Ok(per(resident_bytes(), open_descriptors()))
        }
        Object::Lock => {
            let objs =
                (0..count).map(|_| shmproc::Lock::new()).collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())?;
            for o in &objs {
                drop(o.lock().map_err(|e| e.to_string())?);
            }
            Ok(per(resident_bytes(), open_descriptors()))
        }
    }
}

fn python_objects(kind: Object, count: usize) -> Option<(f64, f64)> {
    run_python(PYTHON_OBJECTS, &[kind.name().to_owned(), count.to_string()])
}

/// [`make_objects`] in a fresh child process (so that no count reuses
/// memory an earlier one touched), with the soft descriptor limit raised
/// to the hard one (the first release needed a descriptor per object).
fn make_objects_in_child((value, count): (bool, usize)) -> Result<(f64, f64), String> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    limit.current = limit.maximum;
    let _ = setrlimit(Resource::Nofile, limit);
    make_objects(if value { Object::Value } else { Object::Lock }, count)
}

/// The memory and descriptor figures of `kind` (printed).
fn objects(kind: Object) -> Vec<Objects> {
    let mut rows = Vec::new();
    for count in OBJECT_COUNTS {
        let got = shmproc::Process::spawn(make_objects_in_child, (kind == Object::Value, count))
            .and_then(|mut p| Ok(p.join()?))
            .unwrap_or_else(|e| Err(e.to_string()));
        let python = python_objects(kind, count);
        let mut line = match &got {
            Ok((bytes, fds)) => {
                format!("objects_{}/{count}: shmproc {bytes:.0} bytes and {fds:.3} descriptors per object", kind.name())
            }
            Err(e) => format!("objects_{}/{count}: shmproc failed: {e}", kind.name()),
        };
        if let Some((bytes, fds)) = python {
            line += &format!("; Python {bytes:.0} bytes and {fds:.3} descriptors per object");
        }
        println!("{line}");
        rows.push(Objects { count, got, python });
    }
    rows
}

fn main() {
    shmproc::init();
    let mut c = Criterion::default().without_plots().configure_from_args();
    let mut rows = Vec::new();
    let only = std::env::var("SHMPROC_SCALE_ONLY").ok();
    let modes = [Mode::Producers, Mode::Consumers, Mode::Joinable, Mode::Pipe, Mode::Pool, Mode::Manager];
    for mode in modes.into_iter().filter(|m| only.as_deref().is_none_or(|o| o == m.name())) {
        let points = group(&mut c, mode);
        summary(mode, &points);
        rows.extend(points.into_iter().map(|p| (mode, p)));
    }
    let mut objs = Vec::new();
    if measuring() && only.as_deref().is_none_or(|o| o == "objects") {
        for kind in [Object::Value, Object::Lock] {
            objs.extend(objects(kind).into_iter().map(|o| (kind, o)));
        }
    }
    if measuring() {
        write_csv(&rows, &objs);
    }
    c.final_summary();
}
