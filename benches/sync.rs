//! Locks, semaphores and events: shmproc's primitives against their C, std
//! and OS-pipe counterparts, side by side in each criterion group.
//!
//! In-process groups (one thread, nobody else touches the lock):
//!
//! - `lock_uncontended`: lock + increment a `u64` + unlock with
//!   `shmproc_mutex` ([`Mutex<u64>`]), `pthread_robust` (a
//!   `PTHREAD_MUTEX_ROBUST` + `PTHREAD_PROCESS_SHARED` mutex in an anonymous
//!   segment's bytes, through libc), `std_mutex` (`std::sync::Mutex<u64>`,
//!   in-process only, for reference) and `pipe_token` (the pipe way: read a
//!   token byte from a pipe to lock, write it back to unlock).
//! - `semaphore`: acquire + release of a [`Semaphore`] with one permit,
//!   against a process-shared POSIX `sem_t` (`posix_sem`) and the pipe token.
//!
//! Cross-process groups (a peer process, this binary re-executed with
//! `SHMPROC_BENCH_ROLE=peer`, started once per group; it opens the parent's
//! named objects and takes commands over its stdin pipe):
//!
//! - `lock_handoff_2proc`: the parent and the peer take turns strictly on a
//!   [`Mutex<u64>`] turn counter with a [`Condvar`] (each side waits until
//!   the parity says it is its turn, increments, notifies), against a token
//!   byte bounced through two OS pipes. One iteration is two hand-offs.
//! - `event_roundtrip`: the parent sets [`Event`] A, the peer waits for A,
//!   clears it and sets B, the parent waits for B and clears it; against a
//!   byte round trip through two pipes.
//! - `value_increment_2proc`: the parent and the peer each increment one
//!   [`Mutex<u64>`] `iters` times at once; against the same with the pthread
//!   robust mutex; the summary sets the rate next to Python's `Value += 1`
//!   under its lock by 2 processes, 0.9 M ops/s (docs/performance.md). The
//!   counter is checked after every sample.
//!
//! While a cross-process group runs, the parent and the peer are pinned to
//! two different CPUs (as docs/performance.md measures); `SHMPROC_BENCH_PIN=0`
//! leaves placement to the scheduler. After each group a one-line summary
//! gives both sides and their ratio, from the medians of the measured
//! `iter_custom` samples.
//!
//! Criterion's plots are off (they would double the run time here); its
//! estimates and the summary lines are the report.
//!
//! Run with `cargo bench --bench sync` (about 50 s).
// The crate denies unsafe code; this bench allows it only for its C
// baselines (the pthread robust mutex and the POSIX semaphore called through
// libc on a segment's bytes). shmproc is used through its safe API.
#![allow(unsafe_code)]

mod common;

use std::hint::black_box;
use std::io::{Read, Write};
use std::mem::{MaybeUninit, size_of};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{LazyPeer, PeerProcess, Pinning, Recorder, SAMPLES, is_role, measuring, timed};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput};
use rustix::io::Errno;
use shmproc::{Condvar, Event, Mutex, MutexGuard, Segment, Semaphore};

/// The name prefix of the objects the peer opens.
const NAME_ENV: &str = "SHMPROC_BENCH_NAME";

/// Peer commands: one byte, then the iteration count (8 bytes, LE), over
/// the peer's stdin. The peer answers [`READY`] at once, then runs it.
const CMD_HANDOFF: u8 = b'H';
const CMD_PIPE_PINGPONG: u8 = b'P';
const CMD_EVENTS: u8 = b'E';
const CMD_VALUE: u8 = b'V';
const CMD_PTHREAD_VALUE: u8 = b'T';
/// The peer's replies (one byte over its stdout).
const READY: u8 = b'R';
const DONE: u8 = b'D';

/// Python's `Value += 1` under its lock, 2 processes (docs/performance.md).
const PYTHON_VALUE_OPS: f64 = 0.9e6;
/// docs/performance.md's targets: lock+unlock <= 1.2x pthread; Value >= 10x Python.
const PTHREAD_TARGET: f64 = 1.2;
const PYTHON_TARGET: f64 = 10.0;

/// How long one side waits for the other before it gives up (the other
/// side died): the bench fails instead of hanging.
const HANG_GUARD: Duration = Duration::from_secs(10);

/// Where the pthread baseline's counter sits in its segment: on the cache
/// line after the mutex.
const PTHREAD_COUNTER_AT: usize = 64;
/// Bytes of every baseline segment.
const BASELINE_SEGMENT: usize = 4096;

fn main() {
    if is_role("peer") {
        peer_main();
        return;
    }
    // No plots: rendering them costs seconds per function on a 2-vCPU VM,
    // and the summary lines are the report.
    let mut c = Criterion::default().without_plots().configure_from_args();
    lock_uncontended(&mut c);
    lock_handoff_2proc(&mut c);
    semaphore(&mut c);
    event_roundtrip(&mut c);
    value_increment_2proc(&mut c);
    c.final_summary();
}

// ---------------------------------------------------------------------------
// Groups

fn lock_uncontended(c: &mut Criterion) {
    let rec = Recorder::default();
    let mut group = in_process_group(c, "lock_uncontended");

    let m = Mutex::new(0u64).expect("create the mutex");
    timed(&mut group, &rec, "shmproc_mutex", |iters| {
        let start = Instant::now();
        for _ in 0..iters {
            *m.lock().expect("lock") += 1;
        }
        start.elapsed()
    });
    let pthread = PthreadMutex::init(Segment::anonymous(BASELINE_SEGMENT).expect("create the pthread segment"));
    timed(&mut group, &rec, "pthread_robust", |iters| {
        let start = Instant::now();
        for _ in 0..iters {
            pthread.increment();
        }
        start.elapsed()
    });
    let std_mutex = std::sync::Mutex::new(0u64);
    timed(&mut group, &rec, "std_mutex", |iters| {
        let start = Instant::now();
        for _ in 0..iters {
            *std_mutex.lock().expect("lock") += 1;
        }
        start.elapsed()
    });
    let token = PipeToken::new();
    let mut piped = 0u64;
    timed(&mut group, &rec, "pipe_token", |iters| {
        let start = Instant::now();
        for _ in 0..iters {
            token.take();
            piped = black_box(piped + 1);
            token.put_back();
        }
        start.elapsed()
    });
    group.finish();

    // Every increment happened (untimed check).
    let total = rec.total_iters("shmproc_mutex");
    assert_eq!(*m.lock().expect("lock"), total, "shmproc_mutex lost increments");
    assert_eq!(pthread.counter(), rec.total_iters("pthread_robust"), "pthread_robust lost increments");

    if measuring()
        && let (Some(s), Some(p)) = (rec.median("shmproc_mutex"), rec.median("pthread_robust"))
    {
        let ratio = s / p;
        let mut line = format!(
            "lock_uncontended: shmproc {}, pthread robust {} per lock+increment+unlock, ratio {ratio:.2}x \
             (shmproc / pthread; target <= {PTHREAD_TARGET}x: {})",
            fmt_time(s),
            fmt_time(p),
            verdict(ratio <= PTHREAD_TARGET)
        );
        if let Some(t) = rec.median("std_mutex") {
            line += &format!("; std::sync::Mutex {}", fmt_time(t));
        }
        if let Some(t) = rec.median("pipe_token") {
            line += &format!("; pipe token {} ({:.0}x shmproc)", fmt_time(t), t / s);
        }
        println!("{line}");
    }
}

fn semaphore(c: &mut Criterion) {
    let rec = Recorder::default();
    let mut group = in_process_group(c, "semaphore");

    let sem = Semaphore::new(1).expect("create the semaphore");
    timed(&mut group, &rec, "shmproc_semaphore", |iters| {
        let start = Instant::now();
        for _ in 0..iters {
            sem.acquire();
            sem.release().expect("release");
        }
        start.elapsed()
    });
    let posix = PosixSemaphore::init(Segment::anonymous(BASELINE_SEGMENT).expect("create the sem_t segment"));
    timed(&mut group, &rec, "posix_sem", |iters| {
        let start = Instant::now();
        for _ in 0..iters {
            posix.wait();
            posix.post();
        }
        start.elapsed()
    });
    let token = PipeToken::new();
    timed(&mut group, &rec, "pipe_token", |iters| {
        let start = Instant::now();
        for _ in 0..iters {
            token.take();
            token.put_back();
        }
        start.elapsed()
    });
    group.finish();
    assert_eq!(sem.value(), 1, "the semaphore lost or gained a permit");

    if measuring()
        && let (Some(s), Some(p)) = (rec.median("shmproc_semaphore"), rec.median("pipe_token"))
    {
        let mut line = format!(
            "semaphore: shmproc {}, pipe token {} per acquire+release, ratio {:.0}x (pipe / shmproc)",
            fmt_time(s),
            fmt_time(p),
            p / s
        );
        if let Some(t) = rec.median("posix_sem") {
            line += &format!("; POSIX sem_t {} (shmproc {:.2}x its time)", fmt_time(t), s / t);
        }
        println!("{line}");
    }
}

fn lock_handoff_2proc(c: &mut Criterion) {
    let rec = Recorder::default();
    let pinning = Pinning::new();
    let peer = LazyPeer::new(pinning.peer_cpu, Peer::start);
    let mut group = cross_process_group(c, "lock_handoff_2proc");
    timed(&mut group, &rec, "shmproc_mutex_condvar", |iters| peer.with(|p| p.handoff(iters)));
    timed(&mut group, &rec, "os_pipes", |iters| peer.with(|p| p.pipe_pingpong(iters)));
    group.finish();
    drop(peer);
    drop(pinning);

    if measuring()
        && let (Some(s), Some(p)) = (rec.median("shmproc_mutex_condvar"), rec.median("os_pipes"))
    {
        println!(
            "lock_handoff_2proc: shmproc Mutex+Condvar {} per hand-off ({} round trip), two OS pipes {} per hand-off \
             ({} round trip), ratio {:.2}x (pipe / shmproc)",
            fmt_time(s / 2.0),
            fmt_time(s),
            fmt_time(p / 2.0),
            fmt_time(p),
            p / s
        );
    }
}

fn event_roundtrip(c: &mut Criterion) {
    let rec = Recorder::default();
    let pinning = Pinning::new();
    let peer = LazyPeer::new(pinning.peer_cpu, Peer::start);
    let mut group = cross_process_group(c, "event_roundtrip");
    timed(&mut group, &rec, "shmproc_events", |iters| peer.with(|p| p.events(iters)));
    timed(&mut group, &rec, "os_pipes", |iters| peer.with(|p| p.pipe_pingpong(iters)));
    group.finish();
    drop(peer);
    drop(pinning);

    if measuring()
        && let (Some(s), Some(p)) = (rec.median("shmproc_events"), rec.median("os_pipes"))
    {
        println!(
            "event_roundtrip: shmproc Event set/wait/clear {} per round trip, two OS pipes {} per round trip, \
             ratio {:.2}x (pipe / shmproc)",
            fmt_time(s),
            fmt_time(p),
            p / s
        );
    }
}

fn value_increment_2proc(c: &mut Criterion) {
    let rec = Recorder::default();
    let pinning = Pinning::new();
    let peer = LazyPeer::new(pinning.peer_cpu, Peer::start);
    let mut group = cross_process_group(c, "value_increment_2proc");
    // One iteration: one increment by each process.
    group.throughput(Throughput::Elements(2));
    timed(&mut group, &rec, "shmproc_mutex", |iters| peer.with(|p| p.value(iters)));
    timed(&mut group, &rec, "pthread_robust", |iters| peer.with(|p| p.pthread_value(iters)));
    group.finish();
    drop(peer);
    drop(pinning);

    let ops = |secs_per_iter: f64| 2.0 / secs_per_iter;
    if measuring()
        && let (Some(s), Some(p)) = (rec.median("shmproc_mutex"), rec.median("pthread_robust"))
    {
        let (s, p) = (ops(s), ops(p));
        let vs_python = s / PYTHON_VALUE_OPS;
        println!(
            "value_increment_2proc: shmproc {:.1} M ops/s, pthread robust {:.1} M ops/s (shmproc {:.2}x), \
             Python 0.9 M ops/s: shmproc {vs_python:.1}x Python (target >= {PYTHON_TARGET}x: {})",
            s / 1e6,
            p / 1e6,
            s / p,
            verdict(vs_python >= PYTHON_TARGET)
        );
    }
}

// ---------------------------------------------------------------------------
// Group plumbing and summaries

fn in_process_group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group.sample_size(SAMPLES);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    group
}

fn cross_process_group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group.sample_size(SAMPLES);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    group
}

fn verdict(met: bool) -> &'static str {
    if met { "meets" } else { "misses" }
}

/// `12.3 ns`, `4.56 µs` or `7.89 ms`.
fn fmt_time(secs: f64) -> String {
    if secs < 1e-6 {
        format!("{:.1} ns", secs * 1e9)
    } else if secs < 1e-3 {
        format!("{:.2} µs", secs * 1e6)
    } else {
        format!("{:.2} ms", secs * 1e3)
    }
}

// ---------------------------------------------------------------------------
// The C and pipe baselines

/// Panics with `what` unless a pthread/libc call returned 0.
fn check(rc: libc::c_int, what: &str) {
    assert_eq!(rc, 0, "{what} failed: {}", std::io::Error::from_raw_os_error(rc));
}

/// A pthread mutex (robust, process-shared) at the start of a segment's
/// payload, and the `u64` counter it protects at [`PTHREAD_COUNTER_AT`]:
/// the C way to share a counter between processes.
struct PthreadMutex {
    seg: Segment,
}

impl PthreadMutex {
    /// Initialises the mutex in a fresh segment (zero-filled, not yet seen
    /// by another process).
    fn init(seg: Segment) -> PthreadMutex {
        assert!(size_of::<libc::pthread_mutex_t>() <= PTHREAD_COUNTER_AT && seg.len() >= PTHREAD_COUNTER_AT + 8);
        let m = PthreadMutex { seg };
        let mut attr = MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
        // SAFETY: `attr` is writable storage for an attribute object.
        check(unsafe { libc::pthread_mutexattr_init(attr.as_mut_ptr()) }, "pthread_mutexattr_init");
        // SAFETY: `attr` was initialised just above.
        let rc = unsafe { libc::pthread_mutexattr_setpshared(attr.as_mut_ptr(), libc::PTHREAD_PROCESS_SHARED) };
        check(rc, "pthread_mutexattr_setpshared");
        // SAFETY: as above.
        let rc = unsafe { libc::pthread_mutexattr_setrobust(attr.as_mut_ptr(), libc::PTHREAD_MUTEX_ROBUST) };
        check(rc, "pthread_mutexattr_setrobust");
        // SAFETY: the payload is 128-byte aligned and holds a
        // pthread_mutex_t (asserted above); no other process or thread has
        // the segment yet, so nothing uses the mutex while it is initialised.
        check(unsafe { libc::pthread_mutex_init(m.mutex(), attr.as_ptr()) }, "pthread_mutex_init");
        // SAFETY: `attr` is initialised and no longer needed.
        check(unsafe { libc::pthread_mutexattr_destroy(attr.as_mut_ptr()) }, "pthread_mutexattr_destroy");
        m
    }

    /// Uses the mutex another process initialised in `seg`.
    fn open(seg: Segment) -> PthreadMutex {
        assert!(seg.len() >= PTHREAD_COUNTER_AT + 8, "the pthread segment is too small");
        PthreadMutex { seg }
    }

    fn mutex(&self) -> *mut libc::pthread_mutex_t {
        self.seg.as_ptr().cast()
    }

    fn counter_ptr(&self) -> *mut u64 {
        self.seg.as_ptr().wrapping_add(PTHREAD_COUNTER_AT).cast()
    }

    #[inline]
    fn lock(&self) {
        // SAFETY: the mutex was initialised by `init` (in this process or
        // the parent) and the segment stays mapped while `self` lives.
        match unsafe { libc::pthread_mutex_lock(self.mutex()) } {
            0 => {}
            libc::EOWNERDEAD => {
                // A holder died; the counter is a plain integer, so it is
                // consistent as it is.
                // SAFETY: we hold the mutex (EOWNERDEAD acquires it).
                check(unsafe { libc::pthread_mutex_consistent(self.mutex()) }, "pthread_mutex_consistent");
            }
            rc => check(rc, "pthread_mutex_lock"),
        }
    }

    #[inline]
    fn unlock(&self) {
        // SAFETY: this thread holds the mutex (`lock` returned).
        let rc = unsafe { libc::pthread_mutex_unlock(self.mutex()) };
        debug_assert_eq!(rc, 0);
    }

    /// Lock, increment the counter, unlock.
    #[inline]
    fn increment(&self) {
        self.lock();
        // SAFETY: the counter is in bounds and 8-byte aligned (128-aligned
        // payload + 64), and every process touches it only under the mutex,
        // which we hold.
        unsafe { *self.counter_ptr() += 1 };
        self.unlock();
    }

    /// The counter, read under the mutex.
    fn counter(&self) -> u64 {
        self.lock();
        // SAFETY: as in `increment`.
        let v = unsafe { self.counter_ptr().read() };
        self.unlock();
        v
    }
}

/// A process-shared POSIX semaphore (`sem_init(.., 1, 1)`) at the start of
/// a segment's payload.
struct PosixSemaphore {
    seg: Segment,
}

impl PosixSemaphore {
    fn init(seg: Segment) -> PosixSemaphore {
        assert!(seg.len() >= size_of::<libc::sem_t>());
        let s = PosixSemaphore { seg };
        // SAFETY: the payload is 128-byte aligned and large enough (asserted
        // above), and nothing else uses it yet.
        let rc = unsafe { libc::sem_init(s.sem(), 1, 1) };
        assert_eq!(rc, 0, "sem_init failed: {}", std::io::Error::last_os_error());
        s
    }

    fn sem(&self) -> *mut libc::sem_t {
        self.seg.as_ptr().cast()
    }

    #[inline]
    fn wait(&self) {
        loop {
            // SAFETY: initialised by `init`; the segment stays mapped while
            // `self` lives.
            if unsafe { libc::sem_wait(self.sem()) } == 0 {
                return;
            }
            let e = std::io::Error::last_os_error();
            assert_eq!(e.kind(), std::io::ErrorKind::Interrupted, "sem_wait failed: {e}");
        }
    }

    #[inline]
    fn post(&self) {
        // SAFETY: as in `wait`.
        let rc = unsafe { libc::sem_post(self.sem()) };
        debug_assert_eq!(rc, 0);
    }
}

impl Drop for PosixSemaphore {
    fn drop(&mut self) {
        // SAFETY: initialised by `init`, and nobody waits on it any more.
        unsafe { libc::sem_destroy(self.sem()) };
    }
}

/// The pipe way to lock (one process): a single token byte in a pipe; read
/// it to take the lock (blocking while someone else has it), write it back
/// to release.
struct PipeToken {
    rx: OwnedFd,
    tx: OwnedFd,
}

impl PipeToken {
    fn new() -> PipeToken {
        let (rx, tx) = rustix::pipe::pipe().expect("create a pipe");
        let t = PipeToken { rx, tx };
        t.put_back();
        t
    }

    #[inline]
    fn take(&self) {
        let mut b = [0u8];
        loop {
            match rustix::io::read(&self.rx, &mut b) {
                Ok(1) => return,
                Err(Errno::INTR) => continue,
                other => panic!("reading the token: {other:?}"),
            }
        }
    }

    #[inline]
    fn put_back(&self) {
        loop {
            match rustix::io::write(&self.tx, &[1]) {
                Ok(1) => return,
                Err(Errno::INTR) => continue,
                other => panic!("writing the token: {other:?}"),
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The peer process

/// The named objects the parent creates and the peer opens.
struct Objects {
    /// `lock_handoff_2proc`: even = the parent's turn, odd = the peer's.
    turn: Mutex<u64>,
    turn_changed: Condvar,
    /// `event_roundtrip`: A (parent -> peer) and B (peer -> parent).
    ping: Event,
    pong: Event,
    /// `value_increment_2proc`: starts the peer's increments.
    go: Event,
    counter: Mutex<u64>,
    pthread: PthreadMutex,
}

impl Objects {
    fn create(prefix: &str) -> Objects {
        let name = |what: &str| format!("{prefix}-{what}");
        let pthread_seg = Segment::create(&name("pthread"), BASELINE_SEGMENT).expect("create the pthread segment");
        Objects {
            turn: Mutex::create(&name("turn"), 0).expect("create the turn mutex"),
            turn_changed: Condvar::create(&name("turn-changed")).expect("create the condvar"),
            ping: Event::create(&name("ping")).expect("create event A"),
            pong: Event::create(&name("pong")).expect("create event B"),
            go: Event::create(&name("go")).expect("create the go event"),
            counter: Mutex::create(&name("counter"), 0).expect("create the counter mutex"),
            pthread: PthreadMutex::init(pthread_seg),
        }
    }

    fn open(prefix: &str) -> Objects {
        let name = |what: &str| format!("{prefix}-{what}");
        Objects {
            turn: Mutex::open(&name("turn")).expect("peer: open the turn mutex"),
            turn_changed: Condvar::open(&name("turn-changed")).expect("peer: open the condvar"),
            ping: Event::open(&name("ping")).expect("peer: open event A"),
            pong: Event::open(&name("pong")).expect("peer: open event B"),
            go: Event::open(&name("go")).expect("peer: open the go event"),
            counter: Mutex::open(&name("counter")).expect("peer: open the counter mutex"),
            pthread: PthreadMutex::open(Segment::open(&name("pthread")).expect("peer: open the pthread segment")),
        }
    }

    /// Takes `turns` turns on the turn counter: waits (on the condvar)
    /// until its parity is `mine`, increments it, notifies the other side.
    fn take_turns(&self, turns: u64, mine: u64) {
        let mut g = self.turn.lock().expect("lock the turn counter");
        for _ in 0..turns {
            while *g % 2 != mine {
                g = wait_for_turn(&self.turn_changed, g);
            }
            *g += 1;
            self.turn_changed.notify_one();
        }
    }
}

/// One condvar wait for the other side's turn; fails after [`HANG_GUARD`]
/// without a notify (the other side died).
fn wait_for_turn<'a>(cv: &Condvar, g: MutexGuard<'a, u64>) -> MutexGuard<'a, u64> {
    cv.wait_timeout(g, HANG_GUARD).expect("a turn within the hang guard (did the other process die?)")
}

/// Waits for `event`; fails after [`HANG_GUARD`] (the other side died).
fn wait_for(event: &Event, what: &str) {
    assert!(event.wait_timeout(HANG_GUARD).is_ok(), "{what} not set within {HANG_GUARD:?}: the other process died?");
}

/// The parent's handle on the peer process.
struct Peer {
    /// Commands (and the pipe ping-pong's pings) to the peer, replies (and
    /// pongs) back.
    link: PeerProcess,
    objects: Objects,
}

impl Peer {
    fn start(cpu: Option<usize>) -> Peer {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let prefix = format!("bench-sync-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let objects = Objects::create(&prefix);
        let link = PeerProcess::start("sync bench", cpu, |cmd| {
            cmd.env(NAME_ENV, &prefix);
        });
        let mut peer = Peer { link, objects };
        peer.expect(READY); // it opened every object

        // Check every path once before anything is timed.
        peer.handoff(3);
        assert_eq!(*peer.objects.turn.lock().expect("lock"), 6, "the turn counter after 3 round trips");
        peer.pipe_pingpong(3);
        peer.events(3);
        peer.value(1000);
        peer.pthread_value(1000);
        peer
    }

    fn expect(&mut self, reply: u8) {
        self.link.expect(reply);
    }

    /// Sends a command and waits until the peer has taken it.
    fn command(&mut self, cmd: u8, iters: u64) {
        self.link.command(cmd, iters);
        self.expect(READY);
    }

    /// `iters` round trips of the turn counter (2 hand-offs each).
    fn handoff(&mut self, iters: u64) -> Duration {
        self.command(CMD_HANDOFF, iters);
        let start = Instant::now();
        self.objects.take_turns(iters, 0);
        // Wait for the peer's last turn.
        let mut g = self.objects.turn.lock().expect("lock the turn counter");
        while *g % 2 == 1 {
            g = wait_for_turn(&self.objects.turn_changed, g);
        }
        let elapsed = start.elapsed();
        drop(g);
        self.expect(DONE);
        elapsed
    }

    /// `iters` one-byte round trips through the peer's stdin and stdout
    /// pipes.
    fn pipe_pingpong(&mut self, iters: u64) -> Duration {
        self.command(CMD_PIPE_PINGPONG, iters);
        let mut tx = self.link.tx.take().expect("invariant: open until drop");
        let mut b = [0u8];
        let start = Instant::now();
        for _ in 0..iters {
            tx.write_all(&[1]).expect("ping the peer");
            self.link.rx.read_exact(&mut b).expect("the peer's pong");
        }
        let elapsed = start.elapsed();
        self.link.tx = Some(tx);
        elapsed
    }

    /// `iters` event round trips: set A, wait for B, clear B.
    fn events(&mut self, iters: u64) -> Duration {
        self.command(CMD_EVENTS, iters);
        let o = &self.objects;
        let start = Instant::now();
        for _ in 0..iters {
            o.ping.set();
            wait_for(&o.pong, "event B");
            o.pong.clear();
        }
        let elapsed = start.elapsed();
        self.expect(DONE);
        elapsed
    }

    /// `iters` increments of the shared mutex here while the peer does as
    /// many; checks the total.
    fn value(&mut self, iters: u64) -> Duration {
        let before = *self.objects.counter.lock().expect("lock the counter");
        self.command(CMD_VALUE, iters);
        let start = Instant::now();
        self.objects.go.set();
        for _ in 0..iters {
            *self.objects.counter.lock().expect("lock the counter") += 1;
        }
        self.expect(DONE);
        let elapsed = start.elapsed();
        assert_eq!(*self.objects.counter.lock().expect("lock"), before + 2 * iters, "shmproc lost increments");
        elapsed
    }

    /// [`value`](Peer::value) with the pthread robust mutex.
    fn pthread_value(&mut self, iters: u64) -> Duration {
        let before = self.objects.pthread.counter();
        self.command(CMD_PTHREAD_VALUE, iters);
        let start = Instant::now();
        self.objects.go.set();
        for _ in 0..iters {
            self.objects.pthread.increment();
        }
        self.expect(DONE);
        let elapsed = start.elapsed();
        assert_eq!(self.objects.pthread.counter(), before + 2 * iters, "pthread lost increments");
        elapsed
    }
}

/// The peer: opens the parent's objects, then runs commands until its
/// stdin closes.
fn peer_main() {
    common::pin_peer_from_env();
    let prefix = std::env::var(NAME_ENV).expect("peer: SHMPROC_BENCH_NAME is not set");
    let o = Objects::open(&prefix);
    // Unbuffered handles on the stdin/stdout pipes.
    let (mut rx, mut tx) = common::peer_stdio();
    tx.write_all(&[READY]).expect("peer: hello");
    let mut count = [0u8; 8];
    let mut b = [0u8];
    while let Some(cmd) = common::read_command(&mut rx, "a command") {
        rx.read_exact(&mut count).expect("peer: read the iteration count");
        let iters = u64::from_le_bytes(count);
        tx.write_all(&[READY]).expect("peer: ready");
        match cmd {
            CMD_HANDOFF => o.take_turns(iters, 1),
            CMD_PIPE_PINGPONG => {
                for _ in 0..iters {
                    rx.read_exact(&mut b).expect("peer: ping");
                    tx.write_all(&b).expect("peer: pong");
                }
                continue; // the last pong was the reply
            }
            CMD_EVENTS => {
                for _ in 0..iters {
                    wait_for(&o.ping, "event A");
                    o.ping.clear();
                    o.pong.set();
                }
            }
            CMD_VALUE => {
                wait_for(&o.go, "the go event");
                o.go.clear();
                for _ in 0..iters {
                    *o.counter.lock().expect("peer: lock the counter") += 1;
                }
            }
            CMD_PTHREAD_VALUE => {
                wait_for(&o.go, "the go event");
                o.go.clear();
                for _ in 0..iters {
                    o.pthread.increment();
                }
            }
            other => panic!("peer: unknown command {other:#x}"),
        }
        tx.write_all(&[DONE]).expect("peer: done");
    }
}
