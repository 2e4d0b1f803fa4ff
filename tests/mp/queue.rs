//! The blocking `Queue` and `JoinableQueue` against dying, stopped and
//! hostile peers: RELIABILITY case 17 (every peer on the other side gone:
//! `Disconnected`, never a hang), the queue forms of cases 13, 14 and 16 (a
//! producer SIGKILLed at `bytes.push.before_commit` holding the put lock, a
//! consumer at `bytes.pop.before_release` holding the get lock, and a
//! `JoinableQueue` consumer dying before `task_done`), case 19 (chaos: 8
//! producers and 8 consumers, one random SIGKILL every 50 ms with respawn),
//! the queue part of case 35 (garbage in the queue's position words and
//! record headers), case 42 (an item that fails to serialize), case 50
//! (soak with SIGKILL, SIGSTOP and SIGCONT) and reused spill segments while
//! producers and consumers started by the fork server and by spawn are
//! SIGKILLed (`queue_reused_spill_segments_survive_sigkills`: no item
//! corrupt, twice or lost beyond what a killed consumer held, and the
//! spare slots' bookkeeping).
//!
//! Items ([`Item`]) carry their producer, the producer's incarnation and a
//! sequence number, and every byte of them derives from those, so a torn
//! or invented item fails [`verify`]. Chaos and soak producers publish how
//! many items they committed (put returned `Ok`) in a `Shared` counter after
//! each put; consumers append one fixed-size record per item they got to a
//! log file of their own (one `write(2)`, so a SIGKILL leaves whole records).
//! The parent reads both at the end: no item twice, none invented, and every
//! committed item consumed except at most one per consumer killed (the item
//! it got and had not recorded yet).
//!
//! Items larger than half the ring travel through spill segments
//! (`shmproc.spill.<pid>.*`). A producer killed after spilling and before
//! its commit, or a consumer killed between taking a spill reference and
//! unlinking it, leaves such a segment behind (documented in
//! `src/channel/spill.rs`); tests that kill unlink those by name once
//! their makers are dead and then check that no spill segment of any of
//! their processes is left. A spill segment records the queue's creator
//! (the test process) as its creator, so `cleanup_stale()` keeps it while
//! that process lives; the tests in which a dead producer's spilled item
//! waits in the queue still hold `harness::default_dir_cleanup_lock()`, so
//! no concurrent cleanup test runs beside them.
//!
//! The sweeps are short by default (`SHMPROC_MP_SWEEP` scales them); the
//! chaos run lasts `SHMPROC_MP_CHAOS_SECS` (default 8) and the soak
//! `SHMPROC_MP_SOAK_SECS` (default 5). Both stay below the harness's 90 s
//! test watchdog, so runs of about 80 s are the longest possible without
//! raising it. Nothing asserts on timing; latencies are printed.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};
use rustix::time::{ClockId, clock_gettime};
use serde::{Deserialize, Serialize};
use shmproc::{
    Context, Error, GetError, GetTimeoutError, JoinableQueue, PutError, PutTimeoutError, Queue, Segment, Shared,
    StartMethod, TryGetError, TryPutError,
};

use crate::harness::{self, Ctx, HANG_GUARD, Helper, Rng, arg, arg_num, arg_opt, hdr, poke, say, shm_path};

// ---------------------------------------------------------------------------
// Items, records and small tools
// ---------------------------------------------------------------------------

/// One queued item. `check` and every byte of `body` derive from
/// `(producer, inc, seq, put_ns, body.len())`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Item {
    producer: u32,
    inc: u32,
    seq: u64,
    put_ns: u64,
    body: Vec<u8>,
    check: u64,
}

/// splitmix64's finalizer.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn item_key(producer: u32, inc: u32, seq: u64) -> u64 {
    mix((u64::from(producer) << 48) ^ (u64::from(inc) << 32) ^ seq ^ 0x5151_5151)
}

fn body_bytes(key: u64, len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    let mut j = 0u64;
    while v.len() < len {
        let w = mix(key ^ j).to_le_bytes();
        let n = (len - v.len()).min(8);
        v.extend_from_slice(&w[..n]);
        j += 1;
    }
    v
}

fn make_item(producer: u32, inc: u32, seq: u64, len: usize) -> Item {
    let key = item_key(producer, inc, seq);
    let put_ns = mono_ns();
    Item { producer, inc, seq, put_ns, body: body_bytes(key, len), check: mix(key ^ put_ns ^ len as u64) }
}

/// Whether an item is exactly as its producer made it.
fn verify(it: &Item) -> Result<(), String> {
    let key = item_key(it.producer, it.inc, it.seq);
    if it.check != mix(key ^ it.put_ns ^ it.body.len() as u64) || it.body != body_bytes(key, it.body.len()) {
        let head: Vec<u8> = it.body.iter().copied().take(16).collect();
        return Err(format!(
            "torn or invented item: producer {} inc {} seq {} len {} body {head:x?}...",
            it.producer,
            it.inc,
            it.seq,
            it.body.len()
        ));
    }
    Ok(())
}

/// Body length of item `seq`: mostly small (0..=`max_small`), every
/// `big_every`-th one `big` bytes (spilled when `big` exceeds half the ring).
fn body_len(seq: u64, max_small: usize, big_every: u64, big: usize) -> usize {
    if big_every != 0 && seq % big_every == big_every - 1 {
        big
    } else {
        (mix(seq ^ 0xb0d1) % (max_small as u64 + 1)) as usize
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds (the same clock in every process).
fn mono_ns() -> u64 {
    let t = clock_gettime(ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// A consumer's log record: one item it got.
#[derive(Debug, Clone, Copy)]
struct Rec {
    producer: u32,
    inc: u32,
    seq: u64,
    put_ns: u64,
    get_ns: u64,
}

/// Bytes of a log record, four words: `producer << 48 | inc << 32 |
/// check`, `seq`, `put_ns`, `get_ns` (32 bytes keep a 60 s soak's logs
/// near half a gigabyte).
const REC: usize = 32;

/// The check of a record's words (`w[0]` without its check bits).
fn rec_check(w: &[u64; 4]) -> u64 {
    mix(w[0] ^ mix(w[1] ^ mix(w[2] ^ mix(w[3])))) & 0xffff_ffff
}

fn encode_rec(it: &Item, get_ns: u64) -> [u8; REC] {
    assert!(it.producer < 1 << 16 && it.inc < 1 << 16, "ids fit a record");
    let mut w = [(u64::from(it.producer) << 48) | (u64::from(it.inc) << 32), it.seq, it.put_ns, get_ns];
    w[0] |= rec_check(&w);
    let mut b = [0u8; REC];
    for (k, x) in w.iter().enumerate() {
        b[k * 8..k * 8 + 8].copy_from_slice(&x.to_le_bytes());
    }
    b
}

fn decode_rec(b: &[u8]) -> Option<Rec> {
    let word = |k: usize| u64::from_le_bytes(b[k * 8..k * 8 + 8].try_into().expect("8 bytes"));
    let w = [word(0) & !0xffff_ffff, word(1), word(2), word(3)];
    (word(0) & 0xffff_ffff == rec_check(&w)).then(|| Rec {
        producer: (w[0] >> 48) as u32,
        inc: (w[0] >> 32) as u32 & 0xffff,
        seq: w[1],
        put_ns: w[2],
        get_ns: w[3],
    })
}

/// Enqueue-to-dequeue latencies: a histogram in microseconds up to 1 s.
struct Latency {
    us: Vec<u64>,
    over: u64,
    n: u64,
    max_ns: u64,
}

impl Latency {
    fn new() -> Self {
        Latency { us: vec![0; 1_000_000], over: 0, n: 0, max_ns: 0 }
    }

    fn add(&mut self, ns: u64) {
        match self.us.get_mut((ns / 1000) as usize) {
            Some(c) => *c += 1,
            None => self.over += 1,
        }
        self.n += 1;
        self.max_ns = self.max_ns.max(ns);
    }

    /// The `p`-th percentile, at microsecond resolution (`None` beyond 1 s).
    fn percentile(&self, p: u64) -> Option<Duration> {
        let rank = (self.n * p).div_ceil(100).max(1);
        let mut seen = 0;
        self.us
            .iter()
            .position(|&c| {
                seen += c;
                seen >= rank
            })
            .map(|us| Duration::from_micros(us as u64))
    }

    fn report(&self) -> String {
        let show = |p| self.percentile(p).map_or_else(|| ">1s".to_owned(), |d| format!("{d:?}"));
        format!("n={} p50={} p99={} max={:?}", self.n, show(50), show(99), Duration::from_nanos(self.max_ns))
    }
}

/// Per-producer commit counters plus a stop word, in one `Shared`.
type Counters = [AtomicU64; 64];
/// The counter word that tells chaos producers to stop.
const STOP: usize = 63;
/// A counter word holds `inc << INC_SHIFT | committed`.
const INC_SHIFT: u32 = 40;

/// The name of an error's variant (harness's, plus the queue's errors).
fn what(e: &Error) -> String {
    match e {
        Error::Disconnected => "Disconnected".into(),
        Error::Closed => "Closed".into(),
        Error::Full => "Full".into(),
        Error::Empty => "Empty".into(),
        Error::Abandoned { items } => format!("Abandoned{{items:{items}}}"),
        Error::OwnerDied => "OwnerDied".into(),
        Error::NotRecoverable => "NotRecoverable".into(),
        e => harness::variant(e).into(),
    }
}

fn try_get_word(r: &Result<Item, TryGetError>) -> String {
    match r {
        Ok(_) => "Ok".into(),
        Err(TryGetError::Empty) => "Empty".into(),
        Err(TryGetError::Closed) => "Closed".into(),
        Err(TryGetError::Disconnected) => "Disconnected".into(),
        Err(TryGetError::Failed(e)) => what(e),
        Err(_) => "Other".into(),
    }
}

fn get_timeout_word<T>(r: &Result<T, GetTimeoutError>) -> String {
    match r {
        Ok(_) => "Ok".into(),
        Err(GetTimeoutError::Timeout) => "Timeout".into(),
        Err(GetTimeoutError::Closed) => "Closed".into(),
        Err(GetTimeoutError::Disconnected) => "Disconnected".into(),
        Err(GetTimeoutError::Failed(e)) => what(e),
        Err(_) => "Other".into(),
    }
}

fn try_put_word<T>(r: &Result<(), TryPutError<T>>) -> String {
    match r {
        Ok(()) => "Ok".into(),
        Err(TryPutError::Full(_)) => "Full".into(),
        Err(TryPutError::Closed(_)) => "Closed".into(),
        Err(TryPutError::Disconnected(_)) => "Disconnected".into(),
        Err(TryPutError::Failed(_, e)) => what(e),
        Err(_) => "Other".into(),
    }
}

fn put_timeout_word<T>(r: &Result<(), PutTimeoutError<T>>) -> String {
    match r {
        Ok(()) => "Ok".into(),
        Err(PutTimeoutError::Timeout(_)) => "Timeout".into(),
        Err(PutTimeoutError::Closed(_)) => "Closed".into(),
        Err(PutTimeoutError::Disconnected(_)) => "Disconnected".into(),
        Err(PutTimeoutError::Failed(_, e)) => what(e),
        Err(_) => "Other".into(),
    }
}

/// How many runs a sweep makes: `default`, or `SHMPROC_MP_SWEEP`.
fn sweep(default: u64) -> u64 {
    std::env::var("SHMPROC_MP_SWEEP").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Seconds from an environment variable, or `default`.
fn secs_env(var: &str, default: f64) -> Duration {
    let s = std::env::var(var).ok().and_then(|v| v.parse::<f64>().ok()).unwrap_or(default);
    Duration::from_secs_f64(s.max(0.5))
}

/// Runs a blocking call on a thread and waits at most the hang guard for it.
fn guarded<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    Pending::start(f).finish(what)
}

/// A blocking call running on a thread of the parent.
struct Pending<R>(mpsc::Receiver<R>);

impl<R: Send + 'static> Pending<R> {
    fn start(f: impl FnOnce() -> R + Send + 'static) -> Self {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        Pending(rx)
    }

    /// Its result, waiting at most the hang guard (the thread is left
    /// behind if it hangs; the test fails).
    fn finish(self, what: &str) -> R {
        self.0
            .recv_timeout(HANG_GUARD)
            .unwrap_or_else(|_| panic!("hang guard: {what} still blocked after {HANG_GUARD:?}"))
    }
}

/// Sends a signal to a helper.
fn signal(pid: u32, sig: Signal) {
    let p = Pid::from_raw(pid as i32).expect("non-zero pid");
    let _ = kill_process(p, sig);
}

/// The spill segments (`spill.<pid>.*`, without the `shmproc.` prefix)
/// made by any of `pids`.
fn spills_of(pids: &HashSet<u32>) -> Vec<String> {
    harness::list_prefixed(Path::new(harness::SHM_DIR), "shmproc.spill.")
        .into_iter()
        .filter_map(|n| n.strip_prefix("shmproc.").map(str::to_owned))
        .filter(|n| {
            n.strip_prefix("spill.")
                .and_then(|r| r.split('.').next())
                .and_then(|p| p.parse::<u32>().ok())
                .is_some_and(|p| pids.contains(&p))
        })
        .collect()
}

/// Removes the spill segments that `pids` (all dead by now) left behind
/// and checks that none is left. Returns how many there were.
fn clean_spills(pids: &HashSet<u32>) -> usize {
    // A spill segment records the queue's creator (this process) as its
    // creator, so cleanup_stale keeps it while the queue lives; one a
    // producer made and died before publishing is unlinked by name here.
    let mut cleaned = 0;
    for n in spills_of(pids) {
        match Segment::unlink(&n) {
            Ok(()) => cleaned += 1,
            Err(Error::NotFound { .. }) => {}
            Err(e) => panic!("unlink of leftover spill segment {n}: {e}"),
        }
    }
    let left = spills_of(pids);
    assert!(left.is_empty(), "spill segments left after cleanup: {left:?}");
    cleaned
}

/// Tests in which this process itself puts spilled items hold this lock,
/// so each can check at its end that no spill segment of this process's
/// pid is left ([`assert_no_own_spills`]) without seeing another's.
fn own_spills() -> std::sync::MutexGuard<'static, ()> {
    static OWN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    OWN.lock().unwrap_or_else(|p| p.into_inner())
}

/// No spill segment made by this process is left.
fn assert_no_own_spills() {
    let left = spills_of(&[std::process::id()].into());
    assert!(left.is_empty(), "this process's spill segments left: {left:?}");
}

/// Heavy tests (many helpers) run one at a time: the machine has 2 cores.
fn heavy() -> std::sync::MutexGuard<'static, ()> {
    static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());
    HEAVY.lock().unwrap_or_else(|p| p.into_inner())
}

/// A directory for consumer logs, removed on drop.
struct LogDir(PathBuf);

impl LogDir {
    fn new(ctx: &Ctx) -> LogDir {
        let d = std::env::temp_dir().join(format!("shmproc-{}-logs", ctx.prefix()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap_or_else(|e| panic!("mkdir {}: {e}", d.display()));
        LogDir(d)
    }

    fn file(&self, id: usize, inc: u32) -> PathBuf {
        self.0.join(format!("c{id}.{inc}.log"))
    }

    /// Calls `f` with every record of every log; returns how many logs
    /// ended in a torn record.
    fn scan(&self, mut f: impl FnMut(Rec)) -> usize {
        let mut torn = 0;
        for e in fs::read_dir(&self.0).expect("read log dir").flatten() {
            let bytes = fs::read(e.path()).expect("read log");
            let mut chunks = bytes.chunks(REC).peekable();
            while let Some(c) = chunks.next() {
                match (c.len() == REC).then(|| decode_rec(c)).flatten() {
                    Some(r) => f(r),
                    None if chunks.peek().is_none() => torn += 1,
                    None => panic!("{}: a bad record in the middle of a log", e.path().display()),
                }
            }
        }
        torn
    }

    /// Total bytes logged so far (for the progress watchdog).
    fn bytes(&self) -> u64 {
        fs::read_dir(&self.0)
            .map(|rd| rd.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
            .unwrap_or(0)
    }
}

impl Drop for LogDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------
// Roles
// ---------------------------------------------------------------------------

/// Runs a helper role of this area (roles are named `queue_*`).
pub(crate) fn run_role(role: &str) {
    match role {
        "queue_script" => role_script(),
        "queue_producer" => role_producer(),
        "queue_consumer" => role_consumer(),
        "queue_hostile_ops" => role_hostile_ops(),
        "queue_hostile_poke" => role_hostile_poke(),
        "queue_garbage_states" => role_garbage_states(),
        "queue_jobs" => role_jobs(),
        other => panic!("unknown queue role {role:?}", role = other),
    }
}

/// Role `queue_script`: opens the `Queue<Item>` `NAME` (a `JoinableQueue`
/// with `JOINABLE` set), then runs the `;`-separated commands of `SCRIPT`
/// and exits after the last one (or at `exit`). Items it puts are
/// `(ID, INC, seq)`.
///
/// - `put <seq> <len>`: one put; says `put <outcome>`.
/// - `putn <start> <count> <max_small> <big_every>`: puts a run (panics on
///   an error); says `putn <count>`.
/// - `get`: one get; says `got <producer> <inc> <seq>` or `get <outcome>`.
/// - `getn <count>`: `count` gets, a `got` line each (panics on an error).
/// - `done`: `task_done`; says `done <outcome>`.
/// - `wait`: waits for the parent (EOF or `exit` on stdin).
/// - `say <word>`.
fn role_script() {
    let name = arg("NAME");
    let joinable = arg_opt("JOINABLE").is_some();
    let (q, jq) = if joinable {
        let jq = JoinableQueue::<Item>::open(&name).unwrap_or_else(|e| panic!("open joinable {name}: {e}"));
        (Queue::clone(&jq), Some(jq))
    } else {
        (Queue::<Item>::open(&name).unwrap_or_else(|e| panic!("open {name}: {e}")), None)
    };
    let id: u32 = arg_opt("ID").and_then(|v| v.parse().ok()).unwrap_or(0);
    let inc: u32 = arg_opt("INC").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut queued: std::collections::VecDeque<String> = arg_opt("SCRIPT")
        .map(|s| s.split(';').map(|c| c.trim().to_owned()).filter(|c| !c.is_empty()).collect())
        .unwrap_or_default();
    let got = |it: &Item| {
        verify(it).unwrap_or_else(|m| panic!("helper got {m}"));
        say(format!("got {} {} {}", it.producer, it.inc, it.seq));
    };
    while let Some(c) = queued.pop_front() {
        let words: Vec<&str> = c.split_whitespace().collect();
        let num = |i: usize| -> u64 { words[i].parse().unwrap_or_else(|_| panic!("bad number in {c:?}")) };
        match words.as_slice() {
            ["exit"] => break,
            ["say", w] => say(w),
            ["wait"] => harness::wait_for_parent(),
            ["put", _, _] => {
                let r = q.put(make_item(id, inc, num(1), num(2) as usize));
                say(format!("put {}", r.map_or_else(|e| what(&e.into()), |_| "Ok".into())));
            }
            ["putn", _, _, _, _] => {
                let (start, count, small, big_every) = (num(1), num(2), num(3) as usize, num(4));
                let big = q.capacity_bytes() * 2;
                for seq in start..start + count {
                    let it = make_item(id, inc, seq, body_len(seq, small, big_every, big));
                    q.put(it).unwrap_or_else(|e| panic!("helper {id}.{inc}: put {seq}: {e}"));
                }
                say(format!("putn {count}"));
            }
            ["get"] => match q.get() {
                Ok(it) => got(&it),
                Err(e) => say(format!("get {}", what(&e.into()))),
            },
            ["getn", _] => {
                for k in 0..num(1) {
                    let it = q.get().unwrap_or_else(|e| panic!("helper: get {k}: {e}"));
                    got(&it);
                }
            }
            ["done"] => {
                let r = jq.as_ref().expect("done needs JOINABLE").task_done();
                say(format!("done {}", r.map_or_else(|e| what(&e), |_| "Ok".into())));
            }
            _ => panic!("unknown command {c:?}"),
        }
    }
}

/// Role `queue_producer` (chaos and soak): opens the queue `NAME` and the
/// counters `PROGRESS`, says `ready`, then puts items `(ID, INC, 0..)`
/// until the counters' stop word is set, storing `INC << 40 | committed` in
/// its counter after each put that returned `Ok`. Every `BIG_EVERY`-th item
/// is `BIG_LEN` bytes (spilled). Says `stopped <n>`. Any put error panics.
fn role_producer() {
    let q = Queue::<Item>::open(&arg("NAME")).expect("open queue");
    let progress = Shared::<Counters>::open(&arg("PROGRESS")).expect("open counters");
    let id: u32 = arg_num("ID");
    let inc: u32 = arg_num("INC");
    let big_every: u64 = arg_num("BIG_EVERY");
    let big: usize = arg_num("BIG_LEN");
    let slot = &progress[id as usize];
    say("ready");
    let mut seq = 0u64;
    while progress[STOP].load(Ordering::SeqCst) == 0 {
        let mut it = make_item(id, inc, seq, body_len(seq, 64, big_every, big));
        // Mix the blocking, timed and non-blocking puts.
        let r: Result<(), String> = match seq % 4 {
            0 | 1 => q.put(it).map_err(|e| what(&e.into())),
            2 => loop {
                match q.put_timeout(it, Duration::from_millis(20)) {
                    Ok(()) => break Ok(()),
                    Err(PutTimeoutError::Timeout(back)) => it = back,
                    Err(e) => break Err(put_timeout_word(&Err::<(), _>(e))),
                }
            },
            _ => loop {
                match q.try_put(it) {
                    Ok(()) => break Ok(()),
                    Err(TryPutError::Full(back)) => {
                        it = back;
                        std::thread::sleep(Duration::from_micros(200));
                    }
                    Err(e) => break Err(try_put_word(&Err::<(), _>(e))),
                }
            },
        };
        if let Err(w) = r {
            panic!("producer {id}.{inc}: put {seq}: {w}");
        }
        seq += 1;
        slot.store((u64::from(inc) << INC_SHIFT) | seq, Ordering::SeqCst);
    }
    say(format!("stopped {seq}"));
}

/// Role `queue_consumer` (chaos and soak): opens the queue `NAME`, says
/// `ready`, and gets items (mixing `get`, `get_timeout` and `try_get`),
/// checking each and appending its record to the log file `LOG`, until the
/// queue is empty and every producer is gone (`Disconnected`) or it is
/// closed. Says `disconnected` or `closed`. A bad item or an unexpected
/// error panics.
fn role_consumer() {
    let q = Queue::<Item>::open(&arg("NAME")).expect("open queue");
    let path = arg("LOG");
    let mut log =
        fs::OpenOptions::new().create(true).append(true).open(&path).unwrap_or_else(|e| panic!("open log {path}: {e}"));
    say("ready");
    let mut i = 0u64;
    loop {
        i += 1;
        let r: Result<Item, String> = match i % 4 {
            0 | 1 => q.get().map_err(|e| what(&e.into())),
            2 => q.get_timeout(Duration::from_millis(20)).map_err(|e| get_timeout_word(&Err::<(), _>(e))),
            _ => {
                let r = q.try_get();
                if matches!(r, Err(TryGetError::Empty)) {
                    std::thread::sleep(Duration::from_micros(200));
                }
                r.map_err(|e| try_get_word(&Err(e)))
            }
        };
        match r {
            Ok(it) => {
                verify(&it).unwrap_or_else(|m| panic!("consumer got {m}"));
                log.write_all(&encode_rec(&it, mono_ns())).expect("write log");
            }
            Err(w) if w == "Timeout" || w == "Empty" => {}
            Err(w) if w == "Disconnected" => {
                say("disconnected");
                return;
            }
            Err(w) if w == "Closed" => {
                say("closed");
                return;
            }
            Err(w) => panic!("consumer: get: {w}"),
        }
    }
}

// ---------------------------------------------------------------------------
// Case 17
// ---------------------------------------------------------------------------

/// RELIABILITY case 17, get side: a `get` on an empty queue whose producer
/// helpers all exited (one normally, one SIGKILLed) returns
/// `Err(Disconnected)`, after first delivering what they left; a `get`
/// blocked while the last producer lives wakes with `Disconnected` when it
/// is SIGKILLed; `get_timeout` returns `Disconnected` (or `Timeout` when
/// shorter than the liveness interval), and `try_get` returns
/// `Disconnected` once the OS confirmed the deaths. Never a hang.
#[test]
fn case17_get_on_empty_queue_with_dead_producers_is_disconnected() {
    let _serial = harness::default_dir_cleanup_lock(); // a dead producer's spilled item waits in the queue
    let ctx = Ctx::new("q17get");
    let name = ctx.name("q");
    let q = Queue::<Item>::builder().capacity_bytes(1024).name(&name).build().expect("create queue");
    let script = |id: u32, s: &str| {
        ctx.child("queue_script").arg("NAME", &name).arg("ID", id.to_string()).arg("SCRIPT", s).start()
    };
    // One producer exits normally, one is SIGKILLed; they leave 3 items.
    let mut a = script(1, "put 0 10;put 1 3000");
    assert_eq!(a.line(), "put Ok");
    assert_eq!(a.line(), "put Ok");
    a.wait_ok();
    let mut b = script(2, "put 0 5;wait");
    assert_eq!(b.line(), "put Ok");
    b.kill_and_reap();
    let mut got = Vec::new();
    for _ in 0..3 {
        let q2 = q.clone();
        let it = guarded("get of a dead producer's item", move || q2.get()).expect("items left by dead producers");
        verify(&it).expect("valid");
        got.push((it.producer, it.seq));
    }
    assert_eq!(got, [(1, 0), (1, 1), (2, 0)]);
    let q2 = q.clone();
    let r = guarded("get() with every producer dead", move || q2.get().map(|_| ()));
    assert!(matches!(r, Err(GetError::Disconnected)), "get: {r:?}");
    let q2 = q.clone();
    let r = guarded("get_timeout(10 s)", move || q2.get_timeout(Duration::from_secs(10)).map(|_| ()));
    assert!(matches!(r, Err(GetTimeoutError::Disconnected)), "get_timeout(10 s): {r:?}");
    let q2 = q.clone();
    let r = guarded("get_timeout(1 ms)", move || q2.get_timeout(Duration::from_millis(1)).map(|_| ()));
    assert!(matches!(r, Err(GetTimeoutError::Disconnected | GetTimeoutError::Timeout)), "get_timeout(1 ms): {r:?}");
    let deadline = Instant::now() + HANG_GUARD;
    loop {
        match q.try_get() {
            Err(TryGetError::Disconnected) => break,
            Err(TryGetError::Empty) => assert!(Instant::now() < deadline, "hang guard: try_get never Disconnected"),
            other => panic!("try_get: {:?}", other.map(|_| ())),
        }
        std::thread::sleep(Duration::from_millis(1));
    }

    // A get blocked while a producer lives wakes when it is SIGKILLed.
    let mut c = script(3, "put 0 1;wait");
    assert_eq!(c.line(), "put Ok");
    let q2 = q.clone();
    assert_eq!(guarded("get", move || q2.get()).expect("item").producer, 3);
    let q2 = q.clone();
    let pending = Pending::start(move || q2.get().map(|_| ()));
    std::thread::sleep(Duration::from_millis(30));
    c.kill_and_reap();
    let r = pending.finish("get() blocked when its last producer was SIGKILLed");
    assert!(matches!(r, Err(GetError::Disconnected)), "blocked get: {r:?}");

    // Disconnected is not sticky: a new producer is served.
    let mut d = script(4, "put 0 2");
    assert_eq!(d.line(), "put Ok");
    d.wait_ok();
    let q2 = q.clone();
    assert_eq!(guarded("get", move || q2.get()).expect("item").producer, 4);
    let q2 = q.clone();
    assert!(matches!(guarded("get", move || q2.get().map(|_| ())), Err(GetError::Disconnected)));
    let pids: HashSet<u32> = [a.pid(), b.pid(), c.pid(), d.pid()].into();
    drop(q);
    assert_eq!(clean_spills(&pids), 0, "the spilled item was consumed and unlinked");
    ctx.finish();
}

/// RELIABILITY case 17, put side: a `put` on a full queue whose consumer
/// helpers all died (one exited, one SIGKILLed) returns
/// `Err(Disconnected)`; a `put` blocked while the last consumer lives
/// wakes with `Disconnected` when it is SIGKILLed; `put_timeout` returns
/// `Disconnected` (or `Timeout` when shorter than the liveness interval)
/// with the item given back, and `try_put` `Disconnected` once the OS
/// confirmed the deaths. Never a hang.
#[test]
fn case17_put_on_full_queue_with_dead_consumers_is_disconnected() {
    let ctx = Ctx::new("q17put");
    let name = ctx.name("q");
    let q = Queue::<Item>::create(&name, 2).expect("create queue");
    let script = |s: &str| ctx.child("queue_script").arg("NAME", &name).arg("SCRIPT", s).start();
    let mut a = script("get");
    let mut b = script("get;wait");
    q.put(make_item(0, 0, 0, 4)).expect("put");
    q.put(make_item(0, 0, 1, 4)).expect("put");
    for h in [&mut a, &mut b] {
        assert!(h.line().starts_with("got 0 0 "));
    }
    a.wait_ok();
    b.kill_and_reap();
    q.put(make_item(0, 0, 2, 4)).expect("room");
    q.put(make_item(0, 0, 3, 4)).expect("room");
    assert!(q.is_full());
    let q2 = q.clone();
    let r = guarded("put() with every consumer dead", move || q2.put(make_item(0, 0, 4, 4)));
    assert!(matches!(r, Err(PutError::Disconnected(_))), "put: {r:?}");
    let q2 = q.clone();
    let r = guarded("put_timeout(10 s)", move || q2.put_timeout(make_item(0, 0, 4, 4), Duration::from_secs(10)));
    match r {
        Err(PutTimeoutError::Disconnected(it)) => assert_eq!(it.seq, 4, "the item comes back"),
        other => panic!("put_timeout(10 s): {}", put_timeout_word(&other)),
    }
    let q2 = q.clone();
    let r = guarded("put_timeout(1 ms)", move || q2.put_timeout(make_item(0, 0, 4, 4), Duration::from_millis(1)));
    assert!(
        matches!(r, Err(PutTimeoutError::Disconnected(_) | PutTimeoutError::Timeout(_))),
        "put_timeout(1 ms): {}",
        put_timeout_word(&r)
    );
    let deadline = Instant::now() + HANG_GUARD;
    loop {
        match q.try_put(make_item(0, 0, 4, 4)) {
            Err(TryPutError::Disconnected(it)) => {
                assert_eq!(it.seq, 4);
                break;
            }
            Err(TryPutError::Full(_)) => assert!(Instant::now() < deadline, "hang guard: try_put never Disconnected"),
            other => panic!("try_put: {}", try_put_word(&other)),
        }
        std::thread::sleep(Duration::from_millis(1));
    }

    // A put blocked while a consumer lives wakes when it is SIGKILLed.
    let mut c = script("get;wait");
    assert_eq!(c.line(), "got 0 0 2");
    q.put(make_item(0, 0, 4, 4)).expect("room again");
    let q2 = q.clone();
    let pending = Pending::start(move || q2.put(make_item(0, 0, 5, 4)));
    std::thread::sleep(Duration::from_millis(30));
    c.kill_and_reap();
    let r = pending.finish("put() blocked when its last consumer was SIGKILLed");
    assert!(matches!(r, Err(PutError::Disconnected(_))), "blocked put: {r:?}");
    // The queue still holds seq 3 and 4, and a new consumer gets them.
    let mut d = script("getn 2");
    assert_eq!(d.line(), "got 0 0 3");
    assert_eq!(d.line(), "got 0 0 4");
    d.wait_ok();
    drop(q);
    assert_eq!(clean_spills(&[a.pid(), b.pid(), c.pid(), d.pid()].into()), 0);
    ctx.finish();
}

// ---------------------------------------------------------------------------
// Producer killed before its commit (queue form of cases 13 and 14)
// ---------------------------------------------------------------------------

/// Checks items from one consumer: each is valid, each `(producer, inc)`
/// stream arrives in order without gaps, nothing comes from `forbidden`.
struct InOrder {
    next: HashMap<(u32, u32), u64>,
    forbidden: u32,
}

impl InOrder {
    fn new(forbidden: u32) -> Self {
        InOrder { next: HashMap::new(), forbidden }
    }

    fn take(&mut self, it: &Item) {
        verify(it).unwrap_or_else(|m| panic!("consumer got {m}"));
        assert_ne!(it.producer, self.forbidden, "an item of the producer killed before its commit was delivered");
        let n = self.next.entry((it.producer, it.inc)).or_insert(0);
        assert_eq!(it.seq, *n, "producer {}.{}: expected seq {}, got {}", it.producer, it.inc, *n, it.seq);
        *n += 1;
    }

    fn count(&self, producer: u32, inc: u32) -> u64 {
        self.next.get(&(producer, inc)).copied().unwrap_or(0)
    }
}

/// The queue form of RELIABILITY cases 13 and 14: a producer helper is
/// SIGKILLed at the failpoint `bytes.push.before_commit`, holding the put
/// lock with its record copied into the ring but not published (every
/// third round the item is spilled, so its spill segment exists too). Then
/// another producer helper and the parent put concurrently (taking the
/// dead holder's lock over) while the parent consumes: every committed
/// item arrives exactly once, whole and in per-producer order, the dead
/// producer's item never appears, and the queue holds nothing else. The
/// dead producer's spill segment is left behind (see `spill.rs`) and
/// removed by `Segment::cleanup`. Items before the kill vary in number and
/// size, so the uncommitted record lands at different ring offsets,
/// across the wrap too.
#[test]
fn queue_producer_killed_before_commit_never_shows_a_torn_item() {
    let _serial = harness::default_dir_cleanup_lock(); // dead producers' spill segments must stay put
    let _own = own_spills(); // the parent spills too
    let ctx = Ctx::new("q13commit");
    let name = ctx.name("q");
    let q = Queue::<Item>::builder().capacity_bytes(1024).name(&name).build().expect("create queue");
    // The parent puts too: counted from the start, so that between a dead
    // producer and the next one's first put (slow under a sanitizer) the
    // queue never looks disconnected to the parent's gets.
    q.register_producer().expect("register the parent as a producer");
    let mut order = InOrder::new(9);
    let mut pids = HashSet::new();
    let mut dead_spills = 0;
    for round in 0..sweep(12) as u32 {
        ctx.step(format!("round {round}"));
        let n = 1 + u64::from(round) % 5;
        let mut a = ctx
            .child("queue_script")
            .arg("NAME", &name)
            .arg("ID", "1")
            .arg("INC", round.to_string())
            .arg("SCRIPT", format!("putn 0 {n} 16 0"))
            .start();
        assert_eq!(a.line(), format!("putn {n}"));
        a.wait_ok();
        if round % 2 == 0 {
            for _ in 0..n {
                order.take(&q.get_timeout(HANG_GUARD).expect("A's item"));
            }
        }
        let big = round % 3 == 2;
        let len = if big { 3000 } else { 40 + (round as usize * 37) % 260 };
        let mut f = ctx
            .child("queue_script")
            .failpoint("bytes.push.before_commit")
            .arg("NAME", &name)
            .arg("ID", "9")
            .arg("SCRIPT", format!("put 0 {len}"))
            .start();
        f.wait_killed();
        pids.insert(f.pid());
        if big {
            // Its spill segment: a fresh one (named by its pid) or a spare
            // it took, which an earlier producer or the parent made.
            let mut all = pids.clone();
            all.insert(std::process::id());
            let left = spills_of(&all);
            assert!(!left.is_empty(), "the dead producer's spill segment: {left:?}");
        }
        // B and the parent put while the parent consumes.
        let m = 60u64;
        let mut b = ctx
            .child("queue_script")
            .arg("NAME", &name)
            .arg("ID", "3")
            .arg("INC", round.to_string())
            .arg("SCRIPT", format!("putn 0 {m} 120 17"))
            .start();
        let q2 = q.clone();
        let parent_put = Pending::start(move || {
            for seq in 0..m {
                q2.put(make_item(2, round, seq, body_len(seq, 120, 23, 3000)))?;
            }
            Ok::<(), Error>(())
        });
        let want = m * 2 + if round % 2 == 0 { 0 } else { n };
        for k in 0..want {
            match q.get_timeout(HANG_GUARD) {
                Ok(it) => order.take(&it),
                Err(e) => panic!("round {round}: item {k} of {want}: {}", get_timeout_word(&Err::<(), _>(e))),
            }
        }
        parent_put.finish("the parent's puts").expect("parent puts");
        assert_eq!(b.line(), format!("putn {m}"));
        b.wait_ok();
        pids.insert(b.pid());
        assert_eq!(order.count(1, round), n);
        assert_eq!(order.count(2, round), m);
        assert_eq!(order.count(3, round), m);
        assert!(matches!(q.try_get(), Err(TryGetError::Empty)), "nothing else in the queue");
        assert_eq!(q.qsize(), 0);
        // The queue is drained: the dead producer's segment and the spares
        // the queue keeps for reuse (named by whoever made them, the
        // parent too) are all that is left.
        let mut all = pids.clone();
        all.insert(std::process::id());
        dead_spills += clean_spills(&all);
    }
    eprintln!(
        "producer killed before commit: {} rounds, {dead_spills} dead producers' spill segments removed",
        sweep(12)
    );
    // Big rounds are those with `round % 3 == 2` among `0..sweep(12)`.
    assert!(dead_spills as u64 >= sweep(12) / 3, "one spill segment per big round at least (and the spares)");
    drop(q);
    assert_no_own_spills();
    ctx.finish();
}

// ---------------------------------------------------------------------------
// Consumer killed before its release (queue form of case 16)
// ---------------------------------------------------------------------------

/// The queue form of RELIABILITY case 16: a consumer helper SIGKILLed at
/// the failpoint `bytes.pop.before_release` (holding the get lock, the
/// item copied out but not released) takes nothing away: the item stays
/// in the queue (`qsize` unchanged) and the next consumer, a helper or the
/// parent, gets it, then the rest, in order (every other round the first
/// item is spilled: the spill segment waits for the next consumer too).
#[test]
fn queue_consumer_killed_before_release_loses_nothing() {
    let _own = own_spills(); // the parent spills
    let ctx = Ctx::new("q16release");
    let name = ctx.name("q");
    let q = Queue::<Item>::builder().capacity_bytes(1024).name(&name).build().expect("create queue");
    let mut pids = HashSet::new();
    for round in 0..sweep(8) as u32 {
        ctx.step(format!("round {round}"));
        let k = 3u64;
        for seq in 0..k {
            let len =
                if seq == 0 && round % 2 == 1 { 3000 } else { 8 + (seq as usize * 50 + round as usize * 13) % 200 };
            q.put(make_item(0, round, seq, len)).expect("put");
        }
        let mut c = ctx
            .child("queue_script")
            .failpoint("bytes.pop.before_release")
            .arg("NAME", &name)
            .arg("SCRIPT", "get")
            .start();
        c.wait_killed();
        pids.insert(c.pid());
        assert_eq!(q.qsize(), k as usize, "round {round}: the item stays in the queue");
        let mut order = InOrder::new(u32::MAX);
        if round % 2 == 0 {
            let mut d = ctx.child("queue_script").arg("NAME", &name).arg("SCRIPT", format!("getn {k}")).start();
            for seq in 0..k {
                assert_eq!(d.line(), format!("got 0 {round} {seq}"));
            }
            d.wait_ok();
        } else {
            for _ in 0..k {
                order.take(&q.get_timeout(HANG_GUARD).expect("item"));
            }
            assert_eq!(order.count(0, round), k);
        }
        assert_eq!(q.qsize(), 0);
    }
    drop(q);
    assert_eq!(clean_spills(&pids), 0, "no helper spilled");
    assert_no_own_spills(); // the next consumer unlinked each spilled item
    ctx.finish();
}

/// The `JoinableQueue` forms of RELIABILITY cases 16 and 17:
///
/// 1. A consumer SIGKILLed at `bytes.pop.before_release` takes nothing
///    away, and once another consumer took and marked every item done,
///    `join` returns `Ok(())`. Why `Ok` and not `Abandoned`: the failpoint
///    sits before the consumer charges the item to itself (the `taken`
///    count is bumped after the copy, just before the release), so the dead
///    consumer held nothing; the item was delivered again and finished.
///    (A death between that count and the release would be charged: join
///    would report `Abandoned{items: 1}` although the item was delivered
///    again; `src/channel/queue.rs` documents that bias.)
/// 2. A consumer that took an item with `get` and was SIGKILLed before
///    `task_done` makes `join` return `Err(Abandoned{items: 1})` once the
///    other items are done, instead of waiting forever; a second join
///    reports the same.
#[test]
fn queue_joinable_consumer_deaths_do_not_hang_join() {
    let ctx = Ctx::new("q16join");
    let name = ctx.name("jq");
    let jq = JoinableQueue::<Item>::create(&name, 0).expect("create");
    let script = |s: &str, fp: Option<&str>| {
        let mut c = ctx.child("queue_script").arg("NAME", &name).arg("JOINABLE", "1").arg("SCRIPT", s);
        if let Some(fp) = fp {
            c = c.failpoint(fp);
        }
        c.start()
    };
    // 1. Killed before the release.
    for seq in 0..3 {
        jq.put(make_item(0, 0, seq, 20)).expect("put");
    }
    let mut c = script("get", Some("bytes.pop.before_release"));
    c.wait_killed();
    assert_eq!(jq.qsize(), 3);
    assert_eq!(jq.unfinished(), 3);
    let mut d = script("get;done;get;done;get;done", None);
    for seq in 0..3 {
        assert_eq!(d.line(), format!("got 0 0 {seq}"));
        assert_eq!(d.line(), "done Ok");
    }
    d.wait_ok();
    let j = jq.clone();
    let r = guarded("join after a consumer died before its release", move || j.join());
    assert!(r.is_ok(), "join: {r:?} (the dead consumer had charged nothing)");
    assert_eq!(jq.abandoned(), 0);

    // 2. Killed after get, before task_done.
    jq.put(make_item(0, 1, 0, 20)).expect("put");
    let mut e = script("get;wait", None);
    assert_eq!(e.line(), "got 0 1 0");
    jq.put(make_item(0, 1, 1, 20)).expect("put");
    jq.put(make_item(0, 1, 2, 20)).expect("put");
    let mut d2 = script("get;done;get;done", None);
    for seq in 1..3 {
        assert_eq!(d2.line(), format!("got 0 1 {seq}"));
        assert_eq!(d2.line(), "done Ok");
    }
    d2.wait_ok();
    // E is alive and holds one item: join waits.
    assert!(matches!(jq.join_timeout(Duration::from_millis(50)), Err(shmproc::QueueJoinTimeoutError::Timeout)));
    let j = jq.clone();
    let pending = Pending::start(move || j.join());
    std::thread::sleep(Duration::from_millis(30));
    e.kill_and_reap();
    let r = pending.finish("join() when a consumer died holding an item");
    assert!(matches!(r, Err(shmproc::QueueJoinError::Abandoned { items: 1 })), "join: {r:?}");
    let j = jq.clone();
    let r = guarded("second join", move || j.join());
    assert!(matches!(r, Err(shmproc::QueueJoinError::Abandoned { items: 1 })), "second join: {r:?}");
    assert_eq!(jq.abandoned(), 1);
    assert_eq!(jq.unfinished(), 0);
    drop(jq);
    assert_eq!(clean_spills(&[c.pid(), d.pid(), e.pid(), d2.pid()].into()), 0);
    ctx.finish();
}

// ---------------------------------------------------------------------------
// Chaos (case 19) and soak (case 50)
// ---------------------------------------------------------------------------

/// A chaos or soak configuration.
struct Chaos {
    label: &'static str,
    producers: usize,
    consumers: usize,
    run: Duration,
    /// Time between two disruptions.
    every: Duration,
    /// SIGSTOP/SIGCONT as well as SIGKILL.
    stops: bool,
    capacity: usize,
    /// Every `big_every`-th item of a producer is spilled (0: none).
    big_every: u64,
}

/// One helper place in a chaos run.
struct Slot {
    h: Helper,
    producer: bool,
    id: usize,
    inc: u32,
    born: Instant,
    stopped_until: Option<Instant>,
}

/// The outcome of a chaos run, for the printed report.
#[derive(Debug, Default)]
struct Report {
    committed: u64,
    consumed: u64,
    beyond_counter: u64,
    lost_with_killed_consumers: u64,
    producer_kills: u64,
    consumer_kills: u64,
    stops: u64,
    torn_log_tails: usize,
    leaked_spills: usize,
    max_qsize: usize,
    max_spills: usize,
    max_spill_bytes: u64,
}

/// Whether a helper has exited (it is a zombie waiting for us).
fn exited(pid: u32) -> bool {
    harness::proc_state(pid).is_none_or(|(s, _)| s == 'Z' || s == 'X')
}

/// Spill segments of `pids` in /dev/shm: (count, bytes).
fn spill_usage(pids: &HashSet<u32>) -> (usize, u64) {
    let names = spills_of(pids);
    let bytes = names
        .iter()
        .filter_map(|n| fs::metadata(Path::new(harness::SHM_DIR).join(format!("shmproc.{n}"))).ok())
        .map(|m| m.len())
        .sum();
    (names.len(), bytes)
}

/// Runs producers and consumers on one queue while disrupting one helper
/// at a time, then stops the producers, lets the consumers drain until
/// `Disconnected`, and checks every log against the commit counters.
fn chaos_run(ctx: &Ctx, cfg: &Chaos) -> Report {
    let qname = ctx.name("q");
    let q = Queue::<Item>::builder().capacity_bytes(cfg.capacity).name(&qname).build().expect("create queue");
    let pname = ctx.name("progress");
    let progress = Shared::<Counters>::create(&pname, |_| {}).expect("create counters");
    let logs = LogDir::new(ctx);
    let big_len = cfg.capacity; // larger than half the ring: spilled
    let spawn = |producer: bool, id: usize, inc: u32| -> Slot {
        let role = if producer { "queue_producer" } else { "queue_consumer" };
        let mut c = ctx.child(role).arg("NAME", &qname).arg("ID", id.to_string()).arg("INC", inc.to_string());
        c = if producer {
            c.arg("PROGRESS", &pname).arg("BIG_EVERY", cfg.big_every.to_string()).arg("BIG_LEN", big_len.to_string())
        } else {
            c.arg("LOG", logs.file(id, inc))
        };
        Slot { h: c.start(), producer, id, inc, born: Instant::now(), stopped_until: None }
    };
    let mut slots: Vec<Slot> =
        (0..cfg.producers).map(|i| spawn(true, i, 0)).chain((0..cfg.consumers).map(|i| spawn(false, i, 0))).collect();
    let mut pids: HashSet<u32> = slots.iter().map(|s| s.h.pid()).collect();
    let mut committed: HashMap<(u32, u32), u64> = HashMap::new();
    let read_counter = |id: usize, inc: u32| -> u64 {
        let w = progress[id].load(Ordering::SeqCst);
        if (w >> INC_SHIFT) as u32 == inc { w & ((1 << INC_SHIFT) - 1) } else { 0 }
    };
    let mut rep = Report::default();
    let seed = mono_ns();
    let mut rng = Rng::new(seed);
    let started = Instant::now();
    let activity = |logs: &LogDir| -> u64 {
        logs.bytes() + (0..cfg.producers).map(|i| progress[i].load(Ordering::Relaxed) & 0xffff_ffff).sum::<u64>()
    };
    let mut last_activity = (activity(&logs), Instant::now());
    let qsize_bound = cfg.capacity / 8; // a record takes at least 8 bytes
    let mut tick = 0u64;
    while started.elapsed() < cfg.run {
        tick += 1;
        ctx.step(format!("{} tick {tick}", cfg.label));
        std::thread::sleep(cfg.every);
        let now = Instant::now();
        for s in &mut slots {
            if s.stopped_until.is_some_and(|t| now >= t) {
                signal(s.h.pid(), Signal::CONT);
                s.stopped_until = None;
            }
        }
        for s in &mut slots {
            if exited(s.h.pid()) {
                s.h.wait_ok();
                panic!("seed {seed}: helper {} {} exited by itself during the run", s.id, s.inc);
            }
        }
        // A helper near the harness's 60 s helper watchdog is killed first.
        let old = slots.iter().position(|s| s.born.elapsed() > Duration::from_secs(40));
        let i = old.unwrap_or(rng.next() as usize % slots.len());
        let stopped = slots.iter().filter(|s| s.stopped_until.is_some()).count();
        let kill = old.is_some() || !cfg.stops || rng.next().is_multiple_of(3) || stopped >= 4;
        if kill {
            let s = &mut slots[i];
            s.h.kill_and_reap();
            if s.producer {
                committed.insert((s.id as u32, s.inc), read_counter(s.id, s.inc));
                rep.producer_kills += 1;
            } else {
                rep.consumer_kills += 1;
            }
            let (producer, id, inc) = (s.producer, s.id, s.inc + 1);
            slots[i] = spawn(producer, id, inc);
            pids.insert(slots[i].h.pid());
        } else if slots[i].stopped_until.is_none() {
            signal(slots[i].h.pid(), Signal::STOP);
            slots[i].stopped_until = Some(now + Duration::from_millis(5 + rng.next() % 120));
            rep.stops += 1;
        }
        // Bounded memory: the queue and the spill segments.
        let qs = q.qsize();
        assert!(qs <= qsize_bound, "qsize {qs} beyond what the ring can hold");
        rep.max_qsize = rep.max_qsize.max(qs);
        let (n, bytes) = spill_usage(&pids);
        rep.max_spills = rep.max_spills.max(n);
        rep.max_spill_bytes = rep.max_spill_bytes.max(bytes);
        // In flight: what the ring holds plus one per helper, and the
        // ones killed producers and consumers left.
        let bound = qsize_bound + slots.len() + (rep.producer_kills + rep.consumer_kills) as usize;
        assert!(n <= bound, "{n} spill segments: not bounded ({bound})");
        // The deadlock watchdog: something must move.
        let a = activity(&logs);
        if a != last_activity.0 {
            last_activity = (a, Instant::now());
        }
        assert!(
            last_activity.1.elapsed() < HANG_GUARD,
            "seed {seed}: no progress for {HANG_GUARD:?} (qsize {}; deadlock?)",
            q.qsize()
        );
    }
    ctx.step(format!("{}: stopping", cfg.label));
    for s in &mut slots {
        if s.stopped_until.take().is_some() {
            signal(s.h.pid(), Signal::CONT);
        }
    }
    progress[STOP].store(1, Ordering::SeqCst);
    for s in slots.iter_mut().filter(|s| s.producer) {
        loop {
            let l = s.h.line();
            if l.starts_with("stopped") {
                break;
            }
            assert_eq!(l, "ready", "producer {}", s.id);
        }
        s.h.wait_ok();
        committed.insert((s.id as u32, s.inc), read_counter(s.id, s.inc));
    }
    ctx.step(format!("{}: draining", cfg.label));
    for s in slots.iter_mut().filter(|s| !s.producer) {
        loop {
            let l = s.h.line();
            if l == "disconnected" {
                break;
            }
            assert_eq!(l, "ready", "consumer {}: expected disconnected", s.id);
        }
        s.h.wait_ok();
    }
    assert_eq!(q.qsize(), 0, "drained");

    // The accounting: a flag per committed item (and one for an item
    // committed by a producer killed before it counted it).
    let mut seen: HashMap<(u32, u32), Vec<bool>> =
        committed.iter().map(|(&k, &c)| (k, vec![false; c as usize + 1])).collect();
    let mut lat = Latency::new();
    let torn = logs.scan(|r| {
        let flags = seen.get_mut(&(r.producer, r.inc));
        let flags = flags.unwrap_or_else(|| panic!("seed {seed}: item {r:?} from an unknown producer"));
        let c = flags.len() as u64 - 1;
        assert!(r.seq <= c, "seed {seed}: item {r:?} beyond what its producer put ({c})");
        assert!(!flags[r.seq as usize], "seed {seed}: item {r:?} consumed twice");
        flags[r.seq as usize] = true;
        rep.beyond_counter += u64::from(r.seq == c);
        rep.consumed += 1;
        lat.add(r.get_ns.saturating_sub(r.put_ns));
    });
    rep.torn_log_tails = torn;
    let mut missing = Vec::new();
    for (&(p, inc), flags) in &seen {
        let c = flags.len() - 1;
        rep.committed += c as u64;
        let lost = flags[..c].iter().enumerate().filter(|(_, f)| !**f);
        rep.lost_with_killed_consumers += lost.clone().count() as u64;
        missing.extend(lost.take(20).map(|(s, _)| (p, inc, s)));
    }
    missing.sort_unstable();
    missing.truncate(20);
    assert!(
        rep.lost_with_killed_consumers <= rep.consumer_kills,
        "seed {seed}: {} committed items never consumed, more than the {} consumers killed (each can lose the one \
         item it got and had not logged): first ones {missing:?}",
        rep.lost_with_killed_consumers,
        rep.consumer_kills
    );
    assert!(torn as u64 <= rep.consumer_kills, "torn log tails without a kill");
    drop(q);
    drop(progress);
    drop(logs);
    rep.leaked_spills = clean_spills(&pids);
    assert!(
        rep.leaked_spills as u64 <= rep.producer_kills + rep.consumer_kills,
        "more spill segments left than processes killed"
    );
    eprintln!("{} (seed {seed}, {:?}): {rep:?}; enqueue->dequeue latency {}", cfg.label, cfg.run, lat.report());
    rep
}

/// RELIABILITY case 19, chaos: 8 producer and 8 consumer helpers on one
/// queue (a 16 KiB ring, every 50th item spilled), one random SIGKILL every
/// 50 ms with respawn, for `SHMPROC_MP_CHAOS_SECS` (default 8; CI's 20 s
/// by hand). No item is consumed twice or invented; every item a producer
/// committed (its counter, written after `put` returned `Ok`) is consumed,
/// except at most one per consumer killed (the item it got and had not
/// logged yet: counted and printed, not a failure); nothing deadlocks
/// (progress watchdog, hang guards on the final drain, which ends with
/// every consumer getting `Disconnected` once the producers stopped).
#[test]
fn case19_queue_chaos_sigkill_every_50ms() {
    let _heavy = heavy();
    let _serial = harness::default_dir_cleanup_lock(); // dead producers' spill segments must stay put
    let ctx = Ctx::new("q19chaos");
    let cfg = Chaos {
        label: "case 19 chaos",
        producers: 8,
        consumers: 8,
        run: secs_env("SHMPROC_MP_CHAOS_SECS", 8.0),
        every: Duration::from_millis(50),
        stops: false,
        capacity: 16 * 1024,
        big_every: 50,
    };
    let rep = chaos_run(&ctx, &cfg);
    assert!(rep.producer_kills + rep.consumer_kills > 0, "nothing was killed");
    assert!(rep.consumed > 0, "nothing flowed");
    ctx.finish();
}

/// RELIABILITY case 50, soak: 16 helper processes (8 producers, 8
/// consumers) on one queue with random SIGKILL (with respawn), SIGSTOP and
/// SIGCONT every 50 ms, for `SHMPROC_MP_SOAK_SECS` (default 5; CI runs 60
/// by hand, the harness's 90 s test watchdog is the ceiling). No loss or
/// duplication (the chaos accounting), bounded memory (qsize within the
/// ring, spill segments bounded), zero leaks at the end; the p99
/// enqueue->dequeue latency is printed, not asserted (no baseline here).
#[test]
fn case50_queue_soak_sigkill_sigstop_sigcont() {
    let _heavy = heavy();
    let _serial = harness::default_dir_cleanup_lock(); // dead producers' spill segments must stay put
    let ctx = Ctx::new("q50soak");
    let cfg = Chaos {
        label: "case 50 soak",
        producers: 8,
        consumers: 8,
        run: secs_env("SHMPROC_MP_SOAK_SECS", 5.0),
        every: Duration::from_millis(50),
        stops: true,
        capacity: 64 * 1024,
        big_every: 200,
    };
    let rep = chaos_run(&ctx, &cfg);
    assert!(rep.consumed > 0, "nothing flowed");
    ctx.finish();
}

// ---------------------------------------------------------------------------
// Reused spill segments under SIGKILL (issue 20)
// ---------------------------------------------------------------------------

/// Spare slots per lane (`SPARES` in `src/channel/spill.rs`).
const SPILL_SPARES: usize = 8;

/// The first counter word of the spill-kill consumers (producers use the
/// words from 0).
const SPILL_CONSUMERS: usize = 32;

/// A spill-kill counter word: `(inc + 1) << INC_SHIFT | count`, so a word
/// names the incarnation that wrote it (0: none yet).
fn spill_word(inc: u32, count: u64) -> u64 {
    (u64::from(inc + 1) << INC_SHIFT) | count
}

/// The count in `w` if incarnation `inc` wrote it.
fn spill_count(w: u64, inc: u32) -> Option<u64> {
    ((w >> INC_SHIFT) == u64::from(inc + 1)).then_some(w & ((1 << INC_SHIFT) - 1))
}

/// Body length of a spill-kill item: 3 KiB to 64 KiB, and every 32nd one
/// 64 KiB, whose message (with the serialized fields) needs the next
/// reused size up: a spare too small is then unlinked and replaced.
fn spill_body_len(id: u32, inc: u32, seq: u64) -> usize {
    if seq % 32 == 31 { 64 << 10 } else { (3 << 10) + (item_key(id, inc, seq) % ((61 << 10) + 1)) as usize }
}

/// Task: registers as a producer of `q`, marks its counter word ready,
/// then puts big items (all spilled: the ring is 4 KiB) until the stop
/// word is set, storing its count after each put that returned `Ok`.
fn spill_producer((q, progress, id, inc): (Queue<Item>, String, u32, u32)) -> u64 {
    let progress = Shared::<Counters>::open(&progress).expect("open counters");
    q.register_producer().expect("register as a producer");
    let word = &progress[id as usize];
    word.store(spill_word(inc, 0), Ordering::SeqCst);
    let mut seq = 0u64;
    while progress[STOP].load(Ordering::SeqCst) == 0 {
        let it = make_item(id, inc, seq, spill_body_len(id, inc, seq));
        if let Err(e) = q.put(it) {
            panic!("spill producer {id}.{inc}: put {seq}: {}", what(&e.into()));
        }
        seq += 1;
        word.store(spill_word(inc, seq), Ordering::SeqCst);
    }
    seq
}

/// Task: registers as a consumer of `q`, marks its counter word ready,
/// then gets items, checking each and appending its record to `log`
/// (one `write(2)`), until `Disconnected`. Returns how many it got.
fn spill_consumer((q, progress, log, id, inc): (Queue<Item>, String, String, u32, u32)) -> u64 {
    let progress = Shared::<Counters>::open(&progress).expect("open counters");
    let mut file =
        fs::OpenOptions::new().create(true).append(true).open(&log).unwrap_or_else(|e| panic!("open log {log}: {e}"));
    q.register_consumer().expect("register as a consumer");
    progress[SPILL_CONSUMERS + id as usize].store(spill_word(inc, 0), Ordering::SeqCst);
    let mut n = 0u64;
    loop {
        match q.get() {
            Ok(it) => {
                verify(&it).unwrap_or_else(|m| panic!("spill consumer {id}.{inc} got {m}"));
                file.write_all(&encode_rec(&it, mono_ns())).expect("write log");
                n += 1;
            }
            Err(e) => match what(&e.into()).as_str() {
                "Disconnected" => return n,
                w => panic!("spill consumer {id}.{inc}: get: {w}"),
            },
        }
    }
}

/// Task: puts `n` items of 64 KiB bodies as producer `id`.
fn spill_put_n((q, id, n): (Queue<Item>, u32, u64)) {
    for seq in 0..n {
        q.put(make_item(id, 0, seq, 64 << 10)).unwrap_or_else(|e| panic!("put {seq}: {}", what(&e.into())));
    }
}

/// Task: gets `n` items, checking each: their `(producer, seq)`.
fn spill_get_n((q, n): (Queue<Item>, u64)) -> Vec<(u32, u64)> {
    let get = |k| {
        let it =
            q.get_timeout(HANG_GUARD).unwrap_or_else(|e| panic!("get {k}: {}", get_timeout_word(&Err::<(), _>(e))));
        verify(&it).unwrap_or_else(|m| panic!("got {m}"));
        (it.producer, it.seq)
    };
    (0..n).map(get).collect()
}

/// One process of a spill-kill run (`None` once joined).
struct SpillProc {
    p: Option<shmproc::Process<u64>>,
    producer: bool,
    id: u32,
    inc: u32,
}

/// The processes of a spill-kill run and the pids of all it started: if
/// the test fails, those still running are SIGKILLed and joined and the
/// spill segments of all are removed.
struct SpillCrew {
    procs: Vec<SpillProc>,
    pids: HashSet<u32>,
}

impl Drop for SpillCrew {
    fn drop(&mut self) {
        for s in &mut self.procs {
            if let Some(mut p) = s.p.take() {
                let _ = p.kill();
                let _ = p.join_timeout(HANG_GUARD);
            }
        }
        if std::thread::panicking() {
            for n in spills_of(&self.pids) {
                let _ = Segment::unlink(&n);
            }
        }
    }
}

/// The reusable spill segments (`spill.<pid>.r<id>`) of `pids`, and the
/// other spill segments of `pids`.
fn reusable_spills(pids: &HashSet<u32>) -> (HashSet<String>, Vec<String>) {
    let (reusable, other): (Vec<String>, Vec<String>) = spills_of(pids).into_iter().partition(|n| {
        n.split('.')
            .nth(2)
            .is_some_and(|r| r.len() == 11 && r.starts_with('r') && r[1..].bytes().all(|b| b.is_ascii_hexdigit()))
    });
    (reusable.into_iter().collect(), other)
}

/// The names of the reused segments in the spare slots of the queue whose
/// file is `path` (`reusable_name` of each id in `src/channel/spill.rs`),
/// checking that no slot is closed (the creator holds the queue) and no
/// id is in two slots.
fn spare_names(path: &Path) -> HashSet<String> {
    let ids: Vec<u64> = (0..SPILL_SPARES as u64).map(|k| peek_u64(path, words::SPARES + 8 * k)).collect();
    assert!(!ids.contains(&u64::MAX), "a spare slot is closed while the creator holds the queue: {ids:x?}");
    let held: Vec<u64> = ids.into_iter().filter(|&id| id != 0).collect();
    let names: HashSet<String> =
        held.iter().map(|id| format!("spill.{}.r{:010x}", id >> 40, id & ((1 << 40) - 1))).collect();
    assert_eq!(names.len(), held.len(), "a segment handed back into two slots: {held:x?}");
    names
}

/// What a spill-kill run reports.
#[derive(Debug, Default)]
struct SpillKillReport {
    committed: u64,
    consumed: u64,
    lost_with_killed_consumers: u64,
    producer_kills: u64,
    consumer_kills: u64,
    max_reusable: usize,
    spares_at_end: usize,
    left_by_dead: usize,
}

/// One spill-kill run under `method` (see the test).
fn spill_kill_run(ctx: &Ctx, method: StartMethod, label: &str) -> SpillKillReport {
    const PRODUCERS: u32 = 3;
    const CONSUMERS: u32 = 3;
    const CAPACITY: usize = 4096;
    let qname = ctx.name(&format!("{label}-q"));
    let q = Queue::<Item>::builder().capacity_bytes(CAPACITY).name(&qname).build().expect("create queue");
    let qpath = shm_path(&qname);
    let pname = ctx.name(&format!("{label}-progress"));
    let progress = Shared::<Counters>::create(&pname, |_| {}).expect("create counters");
    let logs = LogDir::new(ctx);
    let pctx = Context::new(method);
    let start = |producer: bool, id: u32, inc: u32| -> SpillProc {
        let p = if producer {
            pctx.spawn(spill_producer, (q.clone(), pname.clone(), id, inc))
        } else {
            let log = logs.file(id as usize, inc).display().to_string();
            pctx.spawn(spill_consumer, (q.clone(), pname.clone(), log, id, inc))
        };
        let p = p.unwrap_or_else(|e| panic!("{label}: start: {e}"));
        let w = if producer { id as usize } else { SPILL_CONSUMERS + id as usize };
        // Wait for the state: registered, so one side never looks gone
        // to the other while a killed process is being replaced.
        harness::wait_until("a spill-kill process registered", || {
            spill_count(progress[w].load(Ordering::SeqCst), inc).is_some()
        });
        SpillProc { p: Some(p), producer, id, inc }
    };
    let mut crew = SpillCrew { procs: Vec::new(), pids: HashSet::new() };
    for (producer, n) in [(true, PRODUCERS), (false, CONSUMERS)] {
        for id in 0..n {
            let s = start(producer, id, 0);
            crew.pids.insert(s.p.as_ref().expect("started").pid());
            crew.procs.push(s);
        }
    }
    let mut committed: HashMap<(u32, u32), u64> = HashMap::new();
    let read_committed =
        |id: u32, inc: u32| spill_count(progress[id as usize].load(Ordering::SeqCst), inc).unwrap_or(0);
    let mut rep = SpillKillReport::default();
    let seed = mono_ns();
    let mut rng = Rng::new(seed);
    let run = secs_env("SHMPROC_MP_SPILLKILL_SECS", 3.0);
    let started = Instant::now();
    let mut tick = 0u64;
    while started.elapsed() < run {
        tick += 1;
        ctx.step(format!("{label} tick {tick}"));
        // A random moment: most of a process's time goes to writing or
        // reading a spilled item, or waiting while holding one.
        std::thread::sleep(Duration::from_millis(10 + rng.next() % 90));
        for s in &mut crew.procs {
            let p = s.p.as_mut().expect("running");
            if !p.is_alive() {
                let r = p.join_timeout(HANG_GUARD);
                panic!("seed {seed}: {label}: process {} {}.{} exited by itself: {r:?}", s.producer, s.id, s.inc);
            }
        }
        let i = rng.next() as usize % crew.procs.len();
        let mut p = crew.procs[i].p.take().expect("running");
        p.kill().expect("SIGKILL");
        assert!(p.join_timeout(HANG_GUARD).is_err(), "{label}: a killed process returned");
        let (producer, id, inc) = (crew.procs[i].producer, crew.procs[i].id, crew.procs[i].inc);
        if producer {
            committed.insert((id, inc), read_committed(id, inc));
            rep.producer_kills += 1;
        } else {
            rep.consumer_kills += 1;
        }
        crew.procs[i] = start(producer, id, inc + 1);
        crew.pids.insert(crew.procs[i].p.as_ref().expect("started").pid());
        // While segments circulate: at most the spares, the references
        // the ring can hold (a record takes at least 40 bytes), one per
        // live process and one per killed one.
        let (reusable, _) = reusable_spills(&crew.pids);
        rep.max_reusable = rep.max_reusable.max(reusable.len());
        let kills = (rep.producer_kills + rep.consumer_kills) as usize;
        let bound = SPILL_SPARES + CAPACITY / 40 + crew.procs.len() + kills;
        assert!(reusable.len() <= bound, "seed {seed}: {label}: {} reusable segments, beyond {bound}", reusable.len());
    }

    ctx.step(format!("{label}: stopping"));
    progress[STOP].store(1, Ordering::SeqCst);
    for s in crew.procs.iter_mut().filter(|s| s.producer) {
        let mut p = s.p.take().expect("running");
        let n = p.join_timeout(HANG_GUARD).unwrap_or_else(|e| panic!("seed {seed}: {label}: producer {}: {e:?}", s.id));
        assert_eq!(Some(n), spill_count(progress[s.id as usize].load(Ordering::SeqCst), s.inc));
        committed.insert((s.id, s.inc), n);
    }
    ctx.step(format!("{label}: draining"));
    for s in crew.procs.iter_mut().filter(|s| !s.producer) {
        let mut p = s.p.take().expect("running");
        p.join_timeout(HANG_GUARD).unwrap_or_else(|e| panic!("seed {seed}: {label}: consumer {}: {e:?}", s.id));
    }
    assert_eq!(q.qsize(), 0, "drained");

    // No item twice, none invented, none lost but one per consumer killed
    // (the one it got and had not logged). A producer killed after its put
    // returned and before it counted it makes one item beyond its count.
    let mut seen: HashMap<(u32, u32), Vec<bool>> =
        committed.iter().map(|(&k, &c)| (k, vec![false; c as usize + 1])).collect();
    let torn = logs.scan(|r| {
        let flags = seen.get_mut(&(r.producer, r.inc));
        let flags = flags.unwrap_or_else(|| panic!("seed {seed}: {label}: item {r:?} from an unknown producer"));
        assert!(r.seq < flags.len() as u64, "seed {seed}: {label}: item {r:?} beyond what its producer put");
        assert!(!flags[r.seq as usize], "seed {seed}: {label}: item {r:?} delivered twice");
        flags[r.seq as usize] = true;
        rep.consumed += 1;
    });
    assert!(torn as u64 <= rep.consumer_kills, "torn log tails without a kill");
    for flags in seen.values() {
        let c = flags.len() - 1;
        rep.committed += c as u64;
        rep.lost_with_killed_consumers += flags[..c].iter().filter(|f| !**f).count() as u64;
    }
    assert!(
        rep.lost_with_killed_consumers <= rep.consumer_kills,
        "seed {seed}: {label}: {} committed items never delivered, more than the {} consumers killed",
        rep.lost_with_killed_consumers,
        rep.consumer_kills
    );

    // The bookkeeping, with every process gone and the queue empty: each
    // reusable segment is in a slot or was held by a process that died
    // holding it (a sender between taking and publishing, a receiver
    // between taking the reference and handing the segment back).
    let kills = (rep.producer_kills + rep.consumer_kills) as usize;
    let spares = spare_names(&qpath);
    let (reusable, other) = reusable_spills(&crew.pids);
    assert!(other.is_empty(), "{label}: spill segments that are not reusable ones: {other:?}");
    let missing: Vec<_> = spares.difference(&reusable).collect();
    assert!(missing.is_empty(), "{label}: slots name segments that do not exist: {missing:?}");
    let left_by_dead: HashSet<String> = reusable.difference(&spares).cloned().collect();
    // A killed producer holds at most one (taken, not yet published); a
    // killed consumer holds one only if it took the reference, and then
    // the item is lost (or it is the one item beyond a killed producer's
    // count, and that producer held none, its put having returned).
    let holders = rep.producer_kills + rep.lost_with_killed_consumers;
    assert!(
        left_by_dead.len() as u64 <= holders,
        "seed {seed}: {label}: {} reusable segments outside the slots, more than the {} killed producers and the {} \
         items lost with killed consumers: {left_by_dead:?}",
        left_by_dead.len(),
        rep.producer_kills,
        rep.lost_with_killed_consumers
    );
    assert!(reusable.len() <= SPILL_SPARES + kills);

    // The queue still works: a fresh producer and consumer move big items
    // through it (the spares are reused).
    ctx.step(format!("{label}: a fresh pair"));
    const PAIR: u64 = 24;
    let mut put = pctx.spawn(spill_put_n, (q.clone(), 60, PAIR)).expect("start the fresh producer");
    // The consumer starts once an item waits: with every producer so far
    // gone, an empty queue would be `Disconnected` (the items fit the ring).
    harness::wait_until("the fresh producer's first item", || q.qsize() > 0);
    let mut get = pctx.spawn(spill_get_n, (q.clone(), PAIR)).expect("start the fresh consumer");
    crew.pids.extend([put.pid(), get.pid()]);
    put.join_timeout(HANG_GUARD).unwrap_or_else(|e| panic!("{label}: the fresh producer: {e:?}"));
    let got = get.join_timeout(HANG_GUARD).unwrap_or_else(|e| panic!("{label}: the fresh consumer: {e:?}"));
    assert_eq!(got, (0..PAIR).map(|s| (60, s)).collect::<Vec<_>>(), "{label}: the fresh pair's items, in order");
    assert_eq!(q.qsize(), 0);
    let spares = spare_names(&qpath);
    assert!(!spares.is_empty(), "{label}: the fresh consumer handed its segment back");
    let (reusable, other) = reusable_spills(&crew.pids);
    assert!(other.is_empty(), "{label}: {other:?}");
    let expect: HashSet<String> = spares.union(&left_by_dead).cloned().collect();
    assert_eq!(reusable, expect, "{label}: after the fresh pair: the slots' segments and the dead processes' ones");
    rep.spares_at_end = spares.len();
    rep.left_by_dead = left_by_dead.len();

    // The creator drops the queue: the slots are closed and their
    // segments unlinked; only what dead processes held is left, and it is
    // removed by name (as `clean_spills` does).
    drop(q);
    drop(progress);
    drop(logs);
    let (reusable, _) = reusable_spills(&crew.pids);
    assert_eq!(
        reusable, left_by_dead,
        "{label}: after the creator dropped the queue only dead holders' segments are left"
    );
    assert_eq!(clean_spills(&crew.pids), left_by_dead.len());
    eprintln!("spill kill ({label}, seed {seed}, {run:?}): {rep:?}");
    rep
}

/// Reused spill segments (issue 20) while producers and consumers are
/// SIGKILLed, under the fork server and spawn start methods: 3 producer
/// and 3 consumer processes on a queue with a 4 KiB ring, every item 3 to
/// 64 KiB (all spilled, through the lane's reused segments), one random
/// process SIGKILLed every 10-100 ms and restarted, for
/// `SHMPROC_MP_SPILLKILL_SECS` (default 3) per start method. Then the
/// producers stop and the consumers drain. Checks: no item delivered
/// corrupt (each consumer verifies) or twice, every delivered item was
/// put, at most one committed item lost per consumer killed; while
/// running, the reusable segments stay bounded; with every process gone,
/// each reusable segment is in a spare slot (no id in two slots, each
/// slot's segment exists) or was held by a process that died holding it
/// (at most one per kill); a fresh producer and consumer still move big
/// items, in order, and leave the same segments; once the creator drops
/// the queue only the dead holders' segments are left, and none after
/// removing those. CPython has no counterpart (no spill segments).
#[test]
fn queue_reused_spill_segments_survive_sigkills() {
    let _heavy = heavy();
    let _serial = harness::default_dir_cleanup_lock(); // dead holders' spill segments must stay put
    let ctx = Ctx::new("qspillkill");
    let mut kills = 0;
    for (method, label) in [(StartMethod::ForkServer, "forkserver"), (StartMethod::Spawn, "spawn")] {
        let rep = spill_kill_run(&ctx, method, label);
        assert!(rep.consumed > 0, "{label}: nothing flowed");
        kills += rep.producer_kills + rep.consumer_kills;
    }
    assert!(kills > 0, "nothing was killed");
    ctx.finish();
}

// ---------------------------------------------------------------------------
// Case 35: garbage in the queue's words
// ---------------------------------------------------------------------------

/// Byte offsets in the queue segment's file: the segment header is
/// `hdr::SIZE` = 128 bytes, then `QueueHeader` (`src/channel/queue.rs`)
/// starts with its lane (`src/channel/lane.rs`: `head` and `tail` first,
/// six 128-byte words in all) and then `capacity`. Where the ring starts depends on the rest of the header
/// (locks, eventcounts, registries), which changes as the queue evolves, so
/// [`find_ring`] finds it on a live queue instead.
mod words {
    use super::hdr;
    pub(super) const HEAD: u64 = hdr::SIZE;
    pub(super) const TAIL: u64 = hdr::SIZE + 128;
    /// After the lane's seven words (128 bytes each: the seventh holds the
    /// spill spares).
    pub(super) const CAPACITY: u64 = hdr::SIZE + 7 * 128;
    /// The lane's seventh word: the spill spares' slots (8 ids).
    pub(super) const SPARES: u64 = hdr::SIZE + 6 * 128;
    /// The producers' and consumers' counts of callers awake (after each
    /// side's 16-byte lock).
    pub(super) const SENDERS_AWAKE: u64 = hdr::SIZE + 4 * 128 + 16;
    pub(super) const RECEIVERS_AWAKE: u64 = hdr::SIZE + 5 * 128 + 16;
    /// Waiters announced on "readable" and on "writable" (the second word
    /// of each eventcount).
    pub(super) const READABLE_SLEEPERS: u64 = hdr::SIZE + 2 * 128 + 4;
    pub(super) const WRITABLE_SLEEPERS: u64 = hdr::SIZE + 3 * 128 + 4;
}

fn peek_u32(path: &Path, off: u64) -> u32 {
    u32::from_ne_bytes(harness::peek(path, off, 4).try_into().expect("4 bytes"))
}

/// Waits (at most the hang guard) until a waiter is announced at `off`.
fn until_announced(path: &Path, off: u64) {
    harness::wait_until("a waiter announced", || peek_u32(path, off) != 0);
}

/// A process killed inside a `put` or `get` leaves its side's count of
/// awake callers one too high, and notifiers then skip their wake-ups (an
/// awake caller would see the change). The sleepers must still get their
/// item and their room: the first liveness wake-up that finds its
/// condition true clears the count (so later notifiers wake again). The
/// count is set as the killed process would leave it.
#[test]
fn a_caller_counted_awake_and_killed_strands_no_waiter() {
    let ctx = Ctx::new("qawake");
    let name = ctx.name("q");
    let q = Queue::<u64>::builder().maxsize(1).name(&name).build().expect("create");
    let path = shm_path(&name);
    ctx.step("a consumer asleep on an empty queue, the consumers' count stuck at 1");
    poke(&path, words::RECEIVERS_AWAKE, &1u32.to_ne_bytes());
    let getter = {
        let q = q.clone();
        Pending::start(move || q.get())
    };
    until_announced(&path, words::READABLE_SLEEPERS);
    q.put(7).expect("put");
    assert_eq!(getter.finish("get with a stuck count").expect("get"), 7);
    assert!(peek_u32(&path, words::RECEIVERS_AWAKE) as i32 <= 0, "the stuck count was cleared");
    ctx.step("a producer asleep on a full queue, the producers' count stuck at 1");
    q.put(8).expect("put"); // full: maxsize 1
    poke(&path, words::SENDERS_AWAKE, &1u32.to_ne_bytes());
    let putter = {
        let q = q.clone();
        Pending::start(move || q.put(9))
    };
    until_announced(&path, words::WRITABLE_SLEEPERS);
    assert_eq!(q.get().expect("get"), 8);
    putter.finish("put with a stuck count").expect("put");
    assert!(peek_u32(&path, words::SENDERS_AWAKE) as i32 <= 0, "the stuck count was cleared");
    assert_eq!(q.get().expect("get"), 9);
}

fn peek_u64(path: &Path, off: u64) -> u64 {
    u64::from_ne_bytes(harness::peek(path, off, 8).try_into().expect("8 bytes"))
}

/// Checks the offsets in [`words`] on an empty queue of `cap` ring bytes
/// and returns the file offset of its ring: puts one item, finds its
/// record (header: length, tag 1; the item's body in the payload) at a
/// 128-aligned offset, checks that `tail` moved by that record, gets the
/// item and checks that `head` caught up.
fn find_ring(q: &Queue<Item>, path: &Path, cap: u64) -> u64 {
    assert_eq!(peek_u64(path, words::CAPACITY), cap, "capacity word offset");
    let tail = peek_u64(path, words::TAIL);
    assert_eq!(peek_u64(path, words::HEAD), tail, "an empty queue");
    let it = make_item(7, 7, 7, 24);
    let body = it.body.clone();
    q.put(it).expect("put");
    let tail2 = peek_u64(path, words::TAIL);
    assert_eq!((tail2 >> 40) - (tail >> 40), 1, "one message published (tail offset)");
    let size = (tail2 & ((1 << 40) - 1)) - (tail & ((1 << 40) - 1));
    let file_len = fs::metadata(path).expect("stat").len();
    let pos = tail & (cap - 1);
    let ring = (words::CAPACITY + 8..file_len.saturating_sub(cap) + 1)
        .filter(|o| o % 128 == 0)
        .find(|&o| {
            let h = peek_u64(path, o + pos);
            let (len, tag) = (u64::from(h as u32), h >> 32);
            tag == 1
                && 8 + len.div_ceil(8) * 8 == size
                && harness::peek(path, o + pos + 8, len as usize).windows(body.len()).any(|w| w == body)
        })
        .unwrap_or_else(|| panic!("no record of the item found in {}", path.display()));
    let got = q.get().expect("get");
    assert_eq!(got.body, body);
    assert_eq!(peek_u64(path, words::HEAD), tail2, "head offset");
    ring
}

/// Role `queue_hostile_ops`: opens the queue `NAME` and runs, on a thread,
/// `SIDE` = `put` (put_timeout, try_put, a spilled put_timeout) or `get`
/// (get_timeout, try_get) until told to stop. Says `ready` after the first
/// operation. Commands on stdin: `check` waits until the thread finished
/// two more operations and says `ack`, or says `stuck` after the hang
/// guard (an operation that does not return); EOF stops the thread and
/// says `done <outcome>=<count> ...`. An `Ok` item that fails [`verify`]
/// counts as `OkGarbage`.
fn role_hostile_ops() {
    let q = Queue::<Item>::open(&arg("NAME")).expect("open");
    let put_side = arg("SIDE") == "put";
    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(AtomicU64::new(0));
    let counts = Arc::new(std::sync::Mutex::new(HashMap::<String, u64>::new()));
    let (s, n, c, q2) = (Arc::clone(&stop), Arc::clone(&ops), Arc::clone(&counts), q.clone());
    let worker = std::thread::spawn(move || {
        let mut i = 0u64;
        let short = Duration::from_millis(2);
        while !s.load(Ordering::Relaxed) {
            i += 1;
            let w = if put_side {
                let it = make_item(1, 0, i, if i.is_multiple_of(16) { 3000 } else { (i % 50) as usize });
                if i.is_multiple_of(2) {
                    put_timeout_word(&q2.put_timeout(it, short))
                } else {
                    try_put_word(&q2.try_put(it))
                }
            } else {
                let r = if i.is_multiple_of(2) {
                    q2.get_timeout(short).map_err(|e| get_timeout_word(&Err::<(), _>(e)))
                } else {
                    q2.try_get().map_err(|e| try_get_word(&Err(e)))
                };
                match r {
                    Ok(it) if verify(&it).is_ok() => "Ok".into(),
                    Ok(_) => "OkGarbage".into(),
                    Err(w) => w,
                }
            };
            *c.lock().expect("counts").entry(w).or_insert(0) += 1;
            n.fetch_add(1, Ordering::SeqCst);
        }
    });
    let progressed = |from: u64| {
        let deadline = Instant::now() + HANG_GUARD;
        while ops.load(Ordering::SeqCst) < from + 2 {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        true
    };
    assert!(progressed(0), "the first operations did not return");
    say("ready");
    while let Some(cmd) = harness::command() {
        match cmd.as_str() {
            "check" => say(if progressed(ops.load(Ordering::SeqCst)) { "ack" } else { "stuck" }),
            "exit" => break,
            other => panic!("unknown command {other:?}"),
        }
    }
    stop.store(true, Ordering::Relaxed);
    worker.join().expect("worker");
    let mut v: Vec<(String, u64)> = counts.lock().expect("counts").clone().into_iter().collect();
    v.sort();
    let s: Vec<String> = v.iter().map(|(k, n)| format!("{k}={n}")).collect();
    say(format!("done {}", s.join(" ")));
}

/// Repairs a queue's positions as far as words go: `head = tail` (an
/// empty queue; what was in it is lost).
fn repair(path: &Path) {
    let tail = peek_u64(path, words::TAIL);
    poke(path, words::HEAD, &tail.to_ne_bytes());
}

/// A garbage value for `head` or `tail` whose current value is `cur`.
fn garbage_word(rng: &mut Rng, round: u64, cur: u64, cap: u64) -> u64 {
    match round % 9 {
        0 => u64::MAX,
        1 => 0,
        2 => cur ^ (1 << 40),
        3 => cur.wrapping_add(cap * 2),
        4 => cur.wrapping_add(3),
        5 => u64::MAX - 63,
        6 => cur.wrapping_add(0xff_ffff << 40),
        7 => cur.wrapping_sub(16),
        _ => rng.next(),
    }
}

/// A garbage record header (`len | tag << 32`).
fn garbage_header(rng: &mut Rng, round: u64, cap: u64) -> u64 {
    let hdr = |len: u64, tag: u64| len | (tag << 32);
    match round % 7 {
        0 => hdr(u64::from(u32::MAX), 1),
        1 => hdr(0, 1),
        2 => hdr(8, 2),
        3 => hdr(cap, 0),
        4 => hdr(3, 0),
        5 => hdr(cap / 2, 1),
        _ => rng.next(),
    }
}

/// Role `queue_hostile_poke`: writes garbage into the queue `NAME`'s (of
/// `CAP` ring bytes at file offset `RING`) `head` and `tail` words and
/// into record headers (the one at the consumer's position and random
/// ones) for `ROUNDS` rounds, putting each value back after a moment (which
/// can itself move a position backwards, since the owners moved on) and
/// making the positions consistent again (`head = tail`) every 8th round;
/// says `done`.
fn role_hostile_poke() {
    let path = shm_path(&arg("NAME"));
    let cap: u64 = arg_num("CAP");
    let ring: u64 = arg_num("RING");
    let rounds: u64 = arg_num("ROUNDS");
    let mut rng = Rng::new(arg_num("SEED"));
    for round in 0..rounds {
        let off = match round % 4 {
            0 => words::HEAD,
            1 => words::TAIL,
            2 => ring + (peek_u64(&path, words::HEAD) & (cap - 1) & !7),
            _ => ring + ((rng.next() % cap) & !7),
        };
        let v = if off == words::HEAD || off == words::TAIL {
            garbage_word(&mut rng, round / 4, peek_u64(&path, off), cap)
        } else {
            garbage_header(&mut rng, round / 4, cap)
        };
        let saved = harness::peek(&path, off, 8);
        poke(&path, off, &v.to_ne_bytes());
        std::thread::sleep(Duration::from_micros(300));
        poke(&path, off, &saved);
        if round % 8 == 7 {
            repair(&path);
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    say("done");
}

/// Parses a `done k=v ...` line into a map.
fn outcome_counts(line: &str) -> HashMap<String, u64> {
    line.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.parse().expect("count")))
        .collect()
}

/// Asks both operation helpers whether their operations still return.
fn check_both(p: &mut Helper, c: &mut Helper, when: &str) {
    for (side, h) in [("put", p), ("get", c)] {
        h.send("check");
        assert_eq!(h.line(), "ack", "{side} side: an operation did not return {when}");
    }
}

/// RELIABILITY case 35, queue part: a hostile helper writes garbage into
/// the queue's `head` and `tail` words and into record headers while a
/// producer helper and a consumer helper operate (timed and non-blocking
/// calls, spilled items too); then the parent leaves each of a set of
/// garbage states in place and checks that both helpers' operations still
/// return. Every operation returns, with `Ok` or one of its ordinary
/// outcomes (`Timeout`, `Full`, `Empty`) or `Err(Corrupt)`; `Err(Codec)`
/// also counts, when garbage that passes the ring's bounds checks (a
/// shortened length, a shifted position) hands the decoder bytes that are
/// not an item (the ring can check bounds, not content), and so do `Ok`
/// items that are not what a producer put (printed). A position moved
/// backwards can also replay a spill reference whose segment the consumer
/// already unlinked, or cut one short: that `get` returns `Err(NotFound)`
/// or `Err(InvalidName)` from opening the named segment, not `Corrupt`
/// (`spill_in` passes the open's error through). Never a crash (the
/// helpers would die of a signal), never a hang (the helpers must answer
/// within the hang guard). Run with no item limit and with one (the limit
/// check reads the message count from the garbage words).
#[test]
fn case35_queue_garbage_in_positions_and_record_headers() {
    let ctx = Ctx::new("q35");
    for maxsize in [0usize, 16] {
        let name = ctx.name(&format!("q{maxsize}"));
        let cap = 1024u64;
        let q =
            Queue::<Item>::builder().capacity_bytes(cap as usize).maxsize(maxsize).name(&name).build().expect("create");
        let path = shm_path(&name);
        let ring = find_ring(&q, &path, cap);
        let mut pids = HashSet::new();
        let mut p = ctx.child("queue_hostile_ops").arg("NAME", &name).arg("SIDE", "put").start();
        let mut c = ctx.child("queue_hostile_ops").arg("NAME", &name).arg("SIDE", "get").start();
        assert_eq!(p.line(), "ready");
        assert_eq!(c.line(), "ready");
        ctx.step(format!("maxsize {maxsize}: bursts of garbage"));
        let mut poker = ctx
            .child("queue_hostile_poke")
            .arg("NAME", &name)
            .arg("CAP", cap.to_string())
            .arg("RING", ring.to_string())
            .arg("ROUNDS", sweep(600).to_string())
            .arg("SEED", (0x35 + maxsize as u64).to_string())
            .start();
        assert_eq!(poker.line(), "done");
        poker.wait_ok();
        // Garbage left in place: operations must keep returning.
        let mut rng = Rng::new(0x3535 + maxsize as u64);
        for round in 0..36u64 {
            ctx.step(format!("maxsize {maxsize}: persistent garbage {round}"));
            repair(&path);
            check_both(&mut p, &mut c, &format!("after repair {round}"));
            let (off, v) = match round % 4 {
                0 => (words::HEAD, garbage_word(&mut rng, round / 4, peek_u64(&path, words::HEAD), cap)),
                1 => (words::TAIL, garbage_word(&mut rng, round / 4, peek_u64(&path, words::TAIL), cap)),
                2 => {
                    // A record at the consumer's position: stop the
                    // consumer from taking it first by writing the header
                    // of whatever is there now.
                    let at = ring + (peek_u64(&path, words::HEAD) & (cap - 1) & !7);
                    (at, garbage_header(&mut rng, round / 4, cap))
                }
                _ => (ring + ((rng.next() % cap) & !7), garbage_header(&mut rng, round / 4, cap)),
            };
            poke(&path, off, &v.to_ne_bytes());
            check_both(&mut p, &mut c, &format!("with garbage {v:#x} left at offset {off}"));
        }
        let mut results = Vec::new();
        for (side, h) in [("put", &mut p), ("get", &mut c)] {
            ctx.step(format!("maxsize {maxsize}: stopping the {side} helper"));
            h.close_stdin();
            let done = outcome_counts(&h.expect("done"));
            h.wait_ok();
            pids.insert(h.pid());
            results.push((side, done));
        }
        eprintln!("case 35 queue (maxsize {maxsize}): {results:?}");
        for (side, done) in &results {
            let allowed: &[&str] = if *side == "put" {
                &["Ok", "Timeout", "Full", "Corrupt"]
            } else {
                &["Ok", "OkGarbage", "Timeout", "Empty", "Corrupt", "Codec", "NotFound", "InvalidName"]
            };
            for (k, n) in done {
                assert!(allowed.contains(&k.as_str()), "{side} side: {n} operations returned {k}: {done:?}");
            }
            assert!(done.get("Ok").copied().unwrap_or(0) > 10, "{side} side worked between the garbage: {done:?}");
        }
        let corrupt: u64 = results.iter().filter_map(|(_, d)| d.get("Corrupt")).sum();
        assert!(corrupt > 0, "garbage was noticed: {results:?}");
        drop(q);
        let left = clean_spills(&pids);
        eprintln!("case 35 queue (maxsize {maxsize}): {left} spill segments skipped over by garbage removed");
    }
    ctx.finish();
}

/// The garbage states of [`role_garbage_states`]: a label and the pokes
/// `(offset, value)` to make, given the file offset of the ring, the ring
/// size, and the current `head` and `tail` (two items queued).
fn garbage_states(ring: u64, cap: u64, h: u64, t: u64) -> Vec<(&'static str, Vec<(u64, u64)>)> {
    let at_head = ring + (h & (cap - 1));
    let hdr = |len: u64, tag: u64| len | (tag << 32);
    let msgs = |p: u64| p & !((1 << 40) - 1);
    // An empty queue whose (equal) positions are 3 bytes before the end.
    let near_end = msgs(t) | ((t & ((1 << 40) - 1) & !(cap - 1)) + cap - 3);
    vec![
        ("tail_msgs_behind", vec![(words::TAIL, t.wrapping_sub(5 << 40))]),
        ("tail_msgs_ahead", vec![(words::TAIL, t.wrapping_add(100 << 40))]),
        ("tail_misaligned", vec![(words::TAIL, t + 3)]),
        ("tail_misaligned_near_end", vec![(words::HEAD, near_end), (words::TAIL, near_end)]),
        ("tail_far_ahead", vec![(words::TAIL, h.wrapping_add(cap * 2))]),
        ("tail_max", vec![(words::TAIL, u64::MAX)]),
        ("head_past_tail", vec![(words::HEAD, t + 16)]),
        ("head_max", vec![(words::HEAD, u64::MAX)]),
        ("head_misaligned", vec![(words::HEAD, h + 4)]),
        ("header_len_huge", vec![(at_head, hdr(u64::from(u32::MAX), 1))]),
        ("header_len_short", vec![(at_head, hdr(3, 1))]),
        ("header_pad_wrong_size", vec![(at_head, hdr(cap, 0))]),
        ("header_tag_spill", vec![(at_head, hdr(8, 2))]),
        ("header_tag_unknown", vec![(at_head, hdr(8, 77))]),
    ]
}

/// Role `queue_garbage_states`: for each of [`garbage_states`], creates
/// the queue `<NAME>.<k>` (1024 ring bytes, `MAXSIZE` items), queues two
/// items, writes the garbage into its own segment's file, runs
/// `put_timeout(20 ms)`, `try_put`, `get_timeout(20 ms)` and `try_get` one
/// after the other, each on a thread that must return within a third of
/// the hang guard, and says `state <label> <op>=<outcome> ...` (`stuck` for a call
/// that did not return; the helper then exits).
fn role_garbage_states() {
    let prefix = arg("NAME");
    let maxsize: usize = arg_num("MAXSIZE");
    let cap = 1024u64;
    for k in 0..garbage_states(0, cap, 0, 0).len() {
        let name = format!("{prefix}.{k}");
        let q =
            Queue::<Item>::builder().capacity_bytes(cap as usize).maxsize(maxsize).name(&name).build().expect("create");
        let path = shm_path(&name);
        let ring = find_ring(&q, &path, cap);
        q.put(make_item(0, 0, 1, 40)).expect("put");
        q.put(make_item(0, 0, 2, 3000)).expect("put"); // spilled
        let (h, t) = (peek_u64(&path, words::HEAD), peek_u64(&path, words::TAIL));
        let (label, pokes) = garbage_states(ring, cap, h, t).swap_remove(k);
        for (off, v) in &pokes {
            poke(&path, *off, &v.to_ne_bytes());
        }
        let mut out = Vec::new();
        type Op = fn(&Queue<Item>) -> String;
        let ops: [(&str, Op); 4] = [
            ("put_timeout", |q| put_timeout_word(&q.put_timeout(make_item(0, 0, 3, 8), Duration::from_millis(20)))),
            ("try_put", |q| try_put_word(&q.try_put(make_item(0, 0, 4, 8)))),
            ("get_timeout", |q| match q.get_timeout(Duration::from_millis(20)) {
                Ok(it) if verify(&it).is_err() => "OkGarbage".into(),
                r => get_timeout_word(&r),
            }),
            ("try_get", |q| match q.try_get() {
                Ok(it) if verify(&it).is_err() => "OkGarbage".into(),
                r => try_get_word(&r),
            }),
        ];
        for (op, f) in ops {
            let q2 = q.clone();
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                let w = f(&q2);
                drop(q2); // before the answer: the helper may exit right after it
                let _ = tx.send(w);
            });
            // Shorter than the parent's hang guard, so "stuck" reaches it.
            match rx.recv_timeout(HANG_GUARD / 3) {
                Ok(w) => out.push(format!("{op}={w}")),
                Err(_) => {
                    say(format!("state {label} {} {op}=stuck", out.join(" ")));
                    let _ = Segment::unlink(&name); // the stuck thread keeps a handle
                    std::process::exit(0);
                }
            }
        }
        say(format!("state {label} {}", out.join(" ")));
    }
    say("end");
}

/// RELIABILITY case 35, queue part, deterministically: each of a set of
/// garbage states ([`garbage_states`]: message counts that disagree with
/// the byte counts, misaligned or far-off positions, a head past the tail,
/// bad record lengths and tags) is written into a queue holding two items
/// (one spilled), and each of `put_timeout`, `try_put`, `get_timeout` and
/// `try_get` must return: the puts with `Ok`, `Timeout`, `Full` or
/// `Corrupt`, the gets as in the racing test above. A misaligned `tail` in
/// particular must be `Corrupt` for the producer: taken at face value it
/// makes a misaligned record header write, up to 5 bytes past the ring's
/// end when it sits in the ring's last 8 bytes. Run in a helper, so a crash
/// shows as its death by a signal; with no item limit and with one.
#[test]
fn case35_queue_persistent_garbage_states_never_hang() {
    let ctx = Ctx::new("q35states");
    let mut bad = Vec::new();
    for maxsize in [0usize, 16] {
        let mut h = ctx
            .child("queue_garbage_states")
            .arg("NAME", ctx.name(&format!("m{maxsize}")))
            .arg("MAXSIZE", maxsize.to_string())
            .start();
        let mut lines = Vec::new();
        loop {
            let l = h.line();
            if l == "end" {
                break;
            }
            let stuck = l.contains("=stuck");
            lines.push(l);
            if stuck {
                break;
            }
        }
        h.wait_ok();
        let pids: HashSet<u32> = [h.pid()].into();
        let spills = clean_spills(&pids);
        eprintln!("case 35 garbage states (maxsize {maxsize}):\n  {}", lines.join("\n  "));
        for l in &lines {
            let mut w = l.split_whitespace().skip(1);
            let label = w.next().unwrap_or_default();
            for kv in w {
                let (op, outcome) = kv.split_once('=').unwrap_or((kv, ""));
                let allowed: &[&str] = match op {
                    _ if label.starts_with("tail_misaligned") && op.contains("put") => &["Corrupt"],
                    "put_timeout" | "try_put" => &["Ok", "Timeout", "Full", "Corrupt"],
                    _ => &["Ok", "OkGarbage", "Timeout", "Empty", "Corrupt", "Codec", "NotFound", "InvalidName"],
                };
                if !allowed.contains(&outcome) {
                    bad.push(format!("maxsize {maxsize}: {label}: {op} returned {outcome}"));
                }
            }
        }
        if lines.len() != garbage_states(0, 1024, 0, 0).len() {
            bad.push(format!("maxsize {maxsize}: not every state ran: {lines:?}"));
        }
        eprintln!("case 35 garbage states (maxsize {maxsize}): {spills} spill segments left by garbage removed");
    }
    ctx.finish();
    assert!(bad.is_empty(), "{bad:#?}");
}

// ---------------------------------------------------------------------------
// Case 42: an item that fails to serialize
// ---------------------------------------------------------------------------

/// A job: `Work` travels; `Poison` fails to serialize (after writing part
/// of its output); `BadOnRead` serializes but fails to deserialize.
#[derive(Debug, Clone, PartialEq)]
enum Job {
    Work(u64),
    Poison,
    BadOnRead(u64),
}

/// How a `Job` travels.
#[derive(Serialize, Deserialize)]
enum Wire {
    Work(u64),
    BadOnRead(u64),
}

impl Serialize for Job {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error as _, SerializeTuple};
        match self {
            Job::Work(n) => Wire::Work(*n).serialize(s),
            Job::BadOnRead(n) => Wire::BadOnRead(*n).serialize(s),
            Job::Poison => {
                let mut t = s.serialize_tuple(2)?;
                t.serialize_element(&0xdead_u64)?;
                Err(S::Error::custom("poison pill: refuses to serialize"))
            }
        }
    }
}

impl<'de> Deserialize<'de> for Job {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        match Wire::deserialize(d)? {
            Wire::Work(n) => Ok(Job::Work(n)),
            Wire::BadOnRead(_) => Err(D::Error::custom("refuses to deserialize")),
        }
    }
}

/// Role `queue_jobs`: opens the `Queue<Job>` `NAME` and runs the
/// `;`-separated `SCRIPT`: `put <n>` (says `put <outcome>`), `poison` (a
/// `Poison` put: says `poison <outcome>`), `get` (says `got <n>` or
/// `get <outcome>`).
fn role_jobs() {
    let q = Queue::<Job>::open(&arg("NAME")).expect("open");
    for c in arg("SCRIPT").split(';').map(str::trim).filter(|c| !c.is_empty()) {
        let words: Vec<&str> = c.split_whitespace().collect();
        match words.as_slice() {
            ["put", n] => {
                let r = q.put(Job::Work(n.parse().expect("number")));
                say(format!("put {}", r.map_or_else(|e| what(&e.into()), |_| "Ok".into())));
            }
            ["poison"] => {
                say(format!("poison {}", q.put(Job::Poison).map_or_else(|e| what(&e.into()), |_| "Ok".into())))
            }
            ["get"] => match q.get() {
                Ok(Job::Work(n)) => say(format!("got {n}")),
                Ok(other) => say(format!("got {other:?}")),
                Err(e) => say(format!("get {}", what(&e.into()))),
            },
            _ => panic!("unknown command {c:?}"),
        }
    }
}

/// RELIABILITY case 42: an item whose `Serialize` fails makes `put`
/// (`try_put`, `put_timeout`) return `Err(Codec)` synchronously, with the
/// item given back and nothing queued, even on a full queue (encoding comes
/// first); the queue stays usable by this and other processes. The other
/// direction too: an item that fails to deserialize is one `get` returning
/// `Err(Codec)` (the item is consumed), and the next `get` works.
#[test]
fn case42_queue_unserializable_item_fails_put_synchronously() {
    let ctx = Ctx::new("q42");
    let name = ctx.name("q");
    let q = Queue::<Job>::create(&name, 4).expect("create");
    q.put(Job::Work(1)).expect("put");
    assert!(matches!(q.put(Job::Poison), Err(PutError::Failed(_, Error::Codec { .. }))));
    match q.try_put(Job::Poison) {
        Err(TryPutError::Failed(Job::Poison, Error::Codec { .. })) => {}
        other => panic!("try_put(Poison): {}", try_put_word(&other)),
    }
    match q.put_timeout(Job::Poison, Duration::from_secs(1)) {
        Err(PutTimeoutError::Failed(Job::Poison, Error::Codec { .. })) => {}
        other => panic!("put_timeout(Poison): {}", put_timeout_word(&other)),
    }
    assert_eq!(q.qsize(), 1, "nothing was queued by the failed puts");
    q.put(Job::Work(2)).expect("put");
    q.put(Job::BadOnRead(3)).expect("put");
    q.put(Job::Work(4)).expect("put");
    assert!(q.is_full());
    match q.try_put(Job::Poison) {
        Err(TryPutError::Failed(Job::Poison, Error::Codec { .. })) => {}
        other => panic!("try_put(Poison) on a full queue: {}", try_put_word(&other)),
    }
    // Another process: its own poison fails the same way, then it works.
    let mut h = ctx.child("queue_jobs").arg("NAME", &name).arg("SCRIPT", "poison;get;get;get;put 5;get;get").start();
    assert_eq!(h.line(), "poison Codec");
    assert_eq!(h.line(), "got 1");
    assert_eq!(h.line(), "got 2");
    assert_eq!(h.line(), "get Codec", "the item that fails to deserialize");
    assert_eq!(h.line(), "put Ok");
    assert_eq!(h.line(), "got 4");
    assert_eq!(h.line(), "got 5");
    h.wait_ok();
    assert!(q.is_empty());
    q.put(Job::Work(6)).expect("put");
    let mut h2 = ctx.child("queue_jobs").arg("NAME", &name).arg("SCRIPT", "get").start();
    assert_eq!(h2.line(), "got 6");
    h2.wait_ok();
    drop(q);
    assert_eq!(clean_spills(&[h.pid(), h2.pid()].into()), 0);
    ctx.finish();
}
