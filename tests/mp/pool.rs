//! Pools across processes: RELIABILITY cases 40 (a worker SIGKILLed
//! mid-task), 41 (the crash matrix), 42 (values that cannot be encoded)
//! and 46 (Ctrl-C during `Pool::map`), each under the three start methods,
//! plus SIGKILLs at the worker's failpoints and random `kill -9` of
//! workers from outside.
//!
//! The process that owns a pool (the "pool parent") is a shmproc Spawn
//! child of this test process: a re-executed child runs its task before
//! `main`, single-threaded, so it may build a pool under the fork start
//! method too (the harness and its helpers are multi-threaded, where fork
//! is refused). Failpoint sweeps and the chaos run use helper roles
//! (`pool_*`), whose environment arms the failpoints of their workers.
//! Every wait has a hang guard; no test asserts on timing.

use std::collections::HashSet;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Resource, Rlimit, Signal, getpid, kill_process, setrlimit};
use serde::{Deserialize, Serialize};
use shmproc::{
    Context, Error, JoinTimeoutError, Pool, PoolJoinError, Process, ProcessFailure, ProcessPoolExecutor, Queue,
    StartMethod, TaskError, TaskTimeoutError,
};

use crate::harness::{self, Ctx, HANG_GUARD, arg, arg_num, say};

const METHODS: [StartMethod; 3] = [StartMethod::ForkServer, StartMethod::Spawn, StartMethod::Fork];

/// Heavy tests (many processes) run one at a time: the machine has 2 cores.
fn heavy() -> std::sync::MutexGuard<'static, ()> {
    static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());
    HEAVY.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts `f(arg)` in a pool parent (a Spawn child).
fn pool_parent<A, R>(f: fn(A) -> R, arg: A) -> Process<R>
where
    A: Serialize + serde::de::DeserializeOwned + 'static,
    R: Serialize + serde::de::DeserializeOwned + 'static,
{
    Context::new(StartMethod::Spawn).spawn(f, arg).expect("start the pool parent")
}

/// Joins a pool parent within the hang guard.
fn join_parent<R: serde::de::DeserializeOwned>(p: &mut Process<R>, what: &str) -> shmproc::Result<R> {
    match p.join_timeout(HANG_GUARD) {
        Err(JoinTimeoutError::Timeout) => {
            let _ = p.kill();
            let _ = p.join();
            panic!("hang guard: {what} (pid {}) still running after {HANG_GUARD:?}", p.pid());
        }
        r => Ok(r?),
    }
}

/// Waits until process `pid` is gone or a zombie (hang guard).
fn wait_gone(pid: u32) {
    harness::wait_until(&format!("pid {pid} to exit"), || harness::proc_state(pid).is_none_or(|(s, _)| s == 'Z'));
}

fn kill9(pid: u32) {
    if let Some(p) = Pid::from_raw(pid as i32) {
        let _ = kill_process(p, Signal::KILL);
    }
}

/// An error's short form for comparisons.
fn describe<T>(r: &shmproc::Result<T>) -> String {
    match r {
        Ok(_) => "Ok".into(),
        Err(Error::WorkerDied { signal: Some(s), .. }) => format!("WorkerDied(signal {s})"),
        Err(Error::WorkerDied { code: Some(c), .. }) => format!("WorkerDied(code {c})"),
        Err(Error::TaskPanicked { message, .. }) if message.contains("crash at") => "TaskPanicked".into(),
        Err(Error::Codec { message }) if message.contains("panicked") => "Codec(panicked)".into(),
        Err(Error::Codec { .. }) => "Codec".into(),
        Err(Error::BrokenPool { .. }) => "BrokenPool".into(),
        Err(e) => format!("{e:?}"),
    }
}

// ---------------------------------------------------------------------------
// Tasks
// ---------------------------------------------------------------------------

fn square(x: u64) -> u64 {
    x * x
}

fn pid(_: ()) -> u32 {
    std::process::id()
}

static GATE: OnceLock<Queue<u32>> = OnceLock::new();

fn set_gate(q: Queue<u32>) {
    let _ = GATE.set(q);
}

/// Task: reports its worker's pid, then sleeps.
fn report_then_sleep(ms: u64) -> u64 {
    GATE.get().expect("initializer ran").put(std::process::id()).expect("report pid");
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

/// Sends `sig` to this process until it takes effect (std's SIGSEGV
/// handler resets itself and would swallow the first one); no core file.
fn raise_forever(sig: Signal) -> ! {
    let _ = setrlimit(Resource::Core, Rlimit { current: Some(0), maximum: Some(0) });
    loop {
        let _ = kill_process(getpid(), sig);
        std::thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------
// Case 40: a worker SIGKILLed mid-task
// ---------------------------------------------------------------------------

/// Pool parent: a Pool worker is SIGKILLed while running a task; the task
/// fails with `WorkerDied` naming SIGKILL, the tasks queued behind it run
/// on the replacement, and the pool goes on.
fn case40_pool(method: StartMethod) -> Result<(), String> {
    let q = Queue::<u32>::new(0).map_err(|e| e.to_string())?;
    let pool = Pool::builder()
        .processes(1)
        .start_method(method)
        .initializer(set_gate, q.clone())
        .build()
        .map_err(|e| format!("{method}: build: {e}"))?;
    let long = pool.apply_async(report_then_sleep, 60_000).map_err(|e| e.to_string())?;
    let queued: Vec<_> =
        (0..5).map(|i| pool.apply_async(square, i)).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
    let victim = q.get_timeout(HANG_GUARD).map_err(|e| format!("{method}: no pid reported: {e:?}"))?;
    kill9(victim);
    match long.get_timeout(HANG_GUARD) {
        Err(TaskTimeoutError::WorkerDied { pid, signal: Some(9), .. }) if pid == victim => {}
        other => return Err(format!("{method}: the killed worker's task gave {:?}", other.map_err(|e| e.to_string()))),
    }
    for (i, h) in queued.iter().enumerate() {
        let v = h.get_timeout(HANG_GUARD).map_err(|e| format!("{method}: queued task {i}: {e}"))?;
        if v != (i * i) as u64 {
            return Err(format!("queued task {i} gave {v}"));
        }
    }
    let now = pool.apply(pid, ()).map_err(|e| e.to_string())?;
    if now == victim {
        return Err("the dead worker still answers".into());
    }
    drop(pool);
    if !shmproc::active_children().is_empty() {
        return Err(format!("children left: {:?}", shmproc::active_children()));
    }
    Ok(())
}

/// Pool parent: an executor worker is SIGKILLed mid-task; as in Python the
/// executor breaks: the running future fails with `WorkerDied`, the
/// pending ones with `BrokenPool`, and new submissions are refused.
fn case40_executor(method: StartMethod) -> Result<(), String> {
    let q = Queue::<u32>::new(0).map_err(|e| e.to_string())?;
    let ex = ProcessPoolExecutor::builder()
        .max_workers(1)
        .start_method(method)
        .initializer(set_gate, q.clone())
        .build()
        .map_err(|e| format!("{method}: build: {e}"))?;
    let long = ex.submit(report_then_sleep, 60_000).map_err(|e| e.to_string())?;
    let pending: Vec<_> = (0..3).map(|i| ex.submit(square, i)).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
    let victim = q.get_timeout(HANG_GUARD).map_err(|e| format!("{method}: no pid reported: {e:?}"))?;
    kill9(victim);
    match long.result_timeout(HANG_GUARD) {
        Err(TaskTimeoutError::WorkerDied { pid, signal: Some(9), .. }) if pid == victim => {}
        other => return Err(format!("{method}: the running future gave {:?}", other.map_err(|e| e.to_string()))),
    }
    for f in &pending {
        match f.result_timeout(HANG_GUARD) {
            Err(TaskTimeoutError::BrokenPool { .. }) => {}
            other => return Err(format!("{method}: a pending future gave {:?}", other.map_err(|e| e.to_string()))),
        }
    }
    match ex.submit(square, 1) {
        Err(Error::BrokenPool { .. }) => {}
        other => return Err(format!("{method}: submit after the break gave {:?}", other.map(|_| ()))),
    }
    drop(ex);
    if !shmproc::active_children().is_empty() {
        return Err(format!("children left: {:?}", shmproc::active_children()));
    }
    Ok(())
}

/// RELIABILITY case 40: a pool worker SIGKILLed mid-task → its task fails
/// with `WorkerDied { signal: Some(9) }`; the Pool replaces the worker and
/// runs the tasks queued behind it; the executor reports `BrokenPool` for
/// every pending future. Under fork, forkserver and spawn.
#[test]
fn case40_worker_sigkilled_mid_task() {
    let ctx = Ctx::new("pool40");
    for m in METHODS {
        ctx.step(format!("case 40, Pool, {m}"));
        let mut p = pool_parent(case40_pool, m);
        assert_eq!(join_parent(&mut p, "case 40 pool").expect("pool parent"), Ok(()), "{m}");
        ctx.step(format!("case 40, executor, {m}"));
        let mut p = pool_parent(case40_executor, m);
        assert_eq!(join_parent(&mut p, "case 40 executor").expect("pool parent"), Ok(()), "{m}");
    }
    ctx.finish();
}

// ---------------------------------------------------------------------------
// Case 41: the crash matrix
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum How {
    Segv,
    Exit,
    Panic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum At {
    TaskDecode,
    Exec,
    ResultEncode,
    ResultDecode,
}

fn crash(how: How, at: At) -> ! {
    match how {
        How::Segv => raise_forever(Signal::SEGV),
        How::Exit => std::process::exit(1),
        How::Panic => panic!("crash at {at:?}"),
    }
}

/// A value that crashes `how` when it is decoded in a worker (`TaskDecode`),
/// encoded in a worker (`ResultEncode`) or decoded in the pool parent
/// (`ResultDecode`): CPython's `test_deadlock` objects.
#[derive(Debug, Clone, Copy)]
struct Crash {
    how: How,
    at: At,
    parent: u32,
}

impl Serialize for Crash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.at == At::ResultEncode && std::process::id() != self.parent {
            crash(self.how, self.at);
        }
        (self.how, self.at, self.parent).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Crash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (how, at, parent) = <(How, At, u32)>::deserialize(d)?;
        let here = std::process::id();
        if (at == At::TaskDecode && here != parent) || (at == At::ResultDecode && here == parent) {
            crash(how, at);
        }
        Ok(Crash { how, at, parent })
    }
}

fn crash_task(c: Crash) -> Crash {
    if c.at == At::Exec {
        crash(c.how, c.at);
    }
    c
}

/// What each cell yields: a death is `WorkerDied` with the signal or the
/// exit code; a panic in a worker is `TaskPanicked` (the worker lives); a
/// panic while decoding the result here is a `Codec` error.
fn expected(how: How, at: At) -> &'static str {
    match (how, at) {
        (How::Segv, _) => "WorkerDied(signal 11)",
        (How::Exit, _) => "WorkerDied(code 1)",
        (How::Panic, At::ResultDecode) => "Codec(panicked)",
        (How::Panic, _) => "TaskPanicked",
    }
}

/// The cells a pool parent survives (a SIGSEGV or an exit while decoding
/// the result in the pool parent ends the pool parent itself).
fn survivable() -> Vec<(How, At)> {
    let mut cells = Vec::new();
    for how in [How::Segv, How::Exit, How::Panic] {
        for at in [At::TaskDecode, At::Exec, At::ResultEncode, At::ResultDecode] {
            if at != At::ResultDecode || how == How::Panic {
                cells.push((how, at));
            }
        }
    }
    cells
}

/// Pool parent: every survivable cell on one Pool (which replaces the
/// workers that die), then on a fresh executor each (which breaks after a
/// death, not after a panic). Returns one line per cell. (One pool at a
/// time: under fork a pool must be built while this process has a single
/// thread, and each pool has a thread of its own.)
fn crash_matrix(method: StartMethod) -> Result<Vec<String>, String> {
    let me = std::process::id();
    let pool = Pool::builder().processes(2).start_method(method).build().map_err(|e| format!("{method}: {e}"))?;
    let mut lines = Vec::new();
    for (how, at) in survivable() {
        let c = Crash { how, at, parent: me };
        let h = pool.apply_async(crash_task, c).map_err(|e| e.to_string())?;
        let got = describe(&h.get_timeout(HANG_GUARD).map_err(Error::from));
        let after = describe(&pool.apply(square, 3));
        lines.push(format!("pool {how:?} {at:?}: {got}; then {after}"));
    }
    drop(pool);
    for (how, at) in survivable() {
        let c = Crash { how, at, parent: me };
        let ex =
            ProcessPoolExecutor::builder().max_workers(1).start_method(method).build().map_err(|e| e.to_string())?;
        let f = ex.submit(crash_task, c).map_err(|e| e.to_string())?;
        let got = describe(&f.result_timeout(HANG_GUARD).map_err(Error::from));
        // Broken after a death: a submission fails, or (if the executor
        // has not noticed yet) its future does.
        let after = describe(&ex.submit(square, 3).and_then(|f| Ok(f.result_timeout(HANG_GUARD)?)));
        lines.push(format!("executor {how:?} {at:?}: {got}; then {after}"));
    }
    Ok(lines)
}

/// Pool parent: reports its worker's pid on `q`, then runs a task whose
/// result crashes `how` while this process decodes it. Never returns if
/// the crash works.
fn crash_in_parent((method, how, executor, q): (StartMethod, How, bool, Queue<u32>)) -> String {
    let c = Crash { how, at: At::ResultDecode, parent: std::process::id() };
    if executor {
        let ex = ProcessPoolExecutor::builder().max_workers(1).start_method(method).build().expect("executor");
        q.put(ex.submit(pid, ()).expect("submit").result().expect("pid")).expect("report");
        format!("{:?}", ex.submit(crash_task, c).expect("submit").result().map(|_| ()))
    } else {
        let pool = Pool::builder().processes(1).start_method(method).build().expect("pool");
        q.put(pool.apply(pid, ()).expect("pid")).expect("report");
        format!("{:?}", pool.apply(crash_task, c).map(|_| ()))
    }
}

/// RELIABILITY case 41: the crash matrix of CPython's `test_deadlock`:
/// {SIGSEGV, exit(1), panic} x {task decode in the worker, task execution,
/// result encode in the worker, result decode in the parent} x {fork,
/// forkserver, spawn}, on `Pool` and on `ProcessPoolExecutor`. Each cell
/// yields its specific error (no deadlock); a SIGSEGV or an exit while the
/// parent decodes a result ends the parent, as in any Rust program, and
/// then its workers go too.
#[test]
fn case41_crash_matrix() {
    let _heavy = heavy();
    let ctx = Ctx::new("pool41");
    for m in METHODS {
        ctx.step(format!("case 41, {m}"));
        let mut p = pool_parent(crash_matrix, m);
        let lines = join_parent(&mut p, "crash matrix").expect("pool parent").unwrap_or_else(|e| panic!("{e}"));
        let mut want: Vec<String> = survivable()
            .iter()
            .map(|&(how, at)| format!("pool {how:?} {at:?}: {}; then Ok", expected(how, at)))
            .collect();
        for (how, at) in survivable() {
            let then = if how == How::Panic { "Ok" } else { "BrokenPool" };
            want.push(format!("executor {how:?} {at:?}: {}; then {then}", expected(how, at)));
        }
        assert_eq!(lines, want, "{m}");
        for how in [How::Segv, How::Exit] {
            for executor in [false, true] {
                ctx.step(format!("case 41, {m}, {how:?} in the parent's result decode, executor {executor}"));
                let q = Queue::<u32>::new(0).expect("queue");
                let mut p = pool_parent(crash_in_parent, (m, how, executor, q.clone()));
                let worker = q.get_timeout(HANG_GUARD).expect("worker pid");
                let got = join_parent(&mut p, "crash in parent");
                let want = match how {
                    How::Segv => ProcessFailure::Signaled(11),
                    _ => ProcessFailure::Exited(1),
                };
                match got {
                    Err(Error::ProcessFailed { failure, .. }) => assert_eq!(failure, want, "{m} {how:?}"),
                    other => panic!("{m} {how:?}: the parent should have crashed: {other:?}"),
                }
                wait_gone(worker);
            }
        }
    }
    ctx.finish();
}

// ---------------------------------------------------------------------------
// Case 42: values that cannot be encoded, across processes
// ---------------------------------------------------------------------------

#[derive(Debug)]
struct Unencodable;

impl Serialize for Unencodable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("cannot encode"))
    }
}

impl<'de> Deserialize<'de> for Unencodable {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <()>::deserialize(d).map(|()| Unencodable)
    }
}

/// Encodes fine, never decodes.
#[derive(Debug)]
struct Undecodable;

impl Serialize for Undecodable {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        7u8.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Undecodable {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        u8::deserialize(d)?;
        Err(serde::de::Error::custom("cannot decode"))
    }
}

fn take_unencodable(_: Unencodable) -> u8 {
    1
}

fn take_undecodable(_: Undecodable) -> u8 {
    1
}

fn give_unencodable(_: ()) -> Unencodable {
    Unencodable
}

fn give_undecodable(_: ()) -> Undecodable {
    Undecodable
}

/// Pool parent: each encoding failure is reported where it happens: an
/// argument that cannot be encoded by the submitting call itself (nothing
/// is submitted); one that cannot be decoded, or a result that cannot be
/// encoded or decoded, by that task alone; the pool goes on every time.
fn case42(method: StartMethod) -> Result<Vec<String>, String> {
    let pool = Pool::builder().processes(2).start_method(method).build().map_err(|e| e.to_string())?;
    let mut out = vec![
        describe(&pool.apply_async(take_unencodable, Unencodable).map(|_| ())),
        describe(&pool.map(take_unencodable, vec![Unencodable, Unencodable])),
        describe(&pool.imap(take_unencodable, vec![Unencodable]).and_then(|mut it| Ok(it.next().expect("one item")?))),
        describe(&pool.apply(take_undecodable, Undecodable)),
        describe(&pool.apply(give_unencodable, ())),
        describe(&pool.apply(give_undecodable, ())),
        describe(&pool.map(square, 0..10)),
    ];
    drop(pool);
    // One pool at a time (see `crash_matrix`).
    let ex = ProcessPoolExecutor::builder().max_workers(1).start_method(method).build().map_err(|e| e.to_string())?;
    out.extend([
        describe(&ex.submit(take_unencodable, Unencodable).map(|_| ())),
        describe(&ex.map(take_unencodable, vec![Unencodable], 1).map(|_| ())),
        describe(&ex.submit(give_unencodable, ()).and_then(|f| Ok(f.result()?))),
        describe(&ex.submit(square, 2).and_then(|f| Ok(f.result()?))),
    ]);
    Ok(out)
}

/// RELIABILITY case 42: a task whose argument or result fails to
/// serialize → `apply_async`/`map`/`submit` return the error synchronously
/// for an argument; the task fails alone for a result; the pool stays
/// usable (Python gh-84376: silent loss). Under the three start methods.
#[test]
fn case42_unencodable_values() {
    let ctx = Ctx::new("pool42");
    for m in METHODS {
        ctx.step(format!("case 42, {m}"));
        let mut p = pool_parent(case42, m);
        let got = join_parent(&mut p, "case 42").expect("pool parent").unwrap_or_else(|e| panic!("{e}"));
        let want = ["Codec", "Codec", "Codec", "Codec", "Codec", "Codec", "Ok", "Codec", "Codec", "Codec", "Ok"];
        assert_eq!(got, want, "{m}");
    }
    ctx.finish();
}

// ---------------------------------------------------------------------------
// Case 46: Ctrl-C during Pool::map
// ---------------------------------------------------------------------------

/// Task: reports its pid, then sleeps 200 ms.
fn slow_report(i: u64) -> u64 {
    report_then_sleep(200) + i
}

/// Pool parent: becomes the leader of its own process group, starts a
/// `Pool::map` of slow tasks (each reports its worker's pid on `q`) and
/// returns how it ended and the children left then.
fn case46((method, q): (StartMethod, Queue<u32>)) -> String {
    rustix::process::setpgid(None, None).expect("setpgid");
    let pool = Pool::builder().processes(2).start_method(method).initializer(set_gate, q).build().expect("pool");
    // Holds one worker for the whole map; the pools' termination fails it.
    let pending = pool.apply_async(sleep_quietly, 60_000).expect("submit");
    let r = pool.map_chunked(slow_report, 0..1000, 1);
    let left = shmproc::active_children();
    let again = describe(&pool.apply(square, 2));
    let pending = match (pending.get(), pending.get_timeout(HANG_GUARD)) {
        (Err(TaskError::Interrupted), Err(TaskTimeoutError::Interrupted)) => "Interrupted".to_owned(),
        other => format!("{other:?}"),
    };
    let joined = match pool.join() {
        Err(PoolJoinError::Interrupted) => "Interrupted".to_owned(),
        other => format!("{other:?}"),
    };
    format!("{}; children left {}; then {again}; pending {pending}; join {joined}", describe(&r), left.len())
}

/// Task: sleeps `ms` without reporting.
fn sleep_quietly(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

/// Pool parent: makes a pool and waits, in no pool call, until it is
/// killed (by the SIGINT sent to its group).
fn case46_idle((method, q): (StartMethod, Queue<u32>)) -> String {
    rustix::process::setpgid(None, None).expect("setpgid");
    let pool = Pool::builder().processes(1).start_method(method).build().expect("pool");
    q.put(pool.apply(pid, ()).expect("pid")).expect("report");
    std::thread::sleep(HANG_GUARD);
    "not interrupted".into()
}

/// RELIABILITY case 46: Ctrl-C (SIGINT to the process group) during
/// `Pool::map` → the map returns `Err(Interrupted)`, the pool is
/// terminated and every worker is gone (reaped: no child left), no name
/// leaks. A SIGINT while no pool call waits ends the program as it would
/// without a pool (and its workers follow). Under the three start methods.
#[test]
fn case46_sigint_during_map() {
    let ctx = Ctx::new("pool46");
    for m in METHODS {
        ctx.step(format!("case 46, {m}"));
        let q = Queue::<u32>::new(0).expect("queue");
        let mut p = pool_parent(case46, (m, q.clone()));
        let first = q.get_timeout(HANG_GUARD).expect("a task started");
        let group = Pid::from_raw(p.pid() as i32).expect("pid");
        rustix::process::kill_process_group(group, Signal::INT).expect("SIGINT to the group");
        let got = join_parent(&mut p, "case 46").expect("pool parent");
        assert_eq!(got, "Interrupted; children left 0; then Interrupted; pending Interrupted; join Interrupted", "{m}");
        let mut workers: HashSet<u32> = HashSet::from([first]);
        while let Ok(w) = q.try_get() {
            workers.insert(w);
        }
        for w in workers {
            wait_gone(w);
        }
        ctx.step(format!("case 46, idle, {m}"));
        // A fresh queue: the last one's producers are all dead, so a get
        // on it would be `Disconnected` until the next one registers.
        let q = Queue::<u32>::new(0).expect("queue");
        let mut p = pool_parent(case46_idle, (m, q.clone()));
        let worker = q.get_timeout(HANG_GUARD).expect("worker pid");
        let group = Pid::from_raw(p.pid() as i32).expect("pid");
        rustix::process::kill_process_group(group, Signal::INT).expect("SIGINT to the group");
        match join_parent(&mut p, "case 46 idle") {
            Err(Error::ProcessFailed { failure: ProcessFailure::Signaled(2), .. }) => {}
            other => panic!("{m}: an idle pool parent should die of SIGINT: {other:?}"),
        }
        wait_gone(worker);
    }
    ctx.finish();
}

/// Pool parent: a `map` whose endless input raises SIGINT in this process
/// at its 100th item, so the Ctrl-C comes while the map is still
/// submitting; returns how the map ended and the children left then.
fn case46_submitting(method: StartMethod) -> String {
    let pool = Pool::builder().processes(2).start_method(method).build().expect("pool");
    let input = (0u64..).inspect(|&i| {
        if i == 100 {
            kill_process(getpid(), Signal::INT).expect("SIGINT to myself");
        }
    });
    let r = pool.map_chunked(square, input, 1);
    format!("{}; children left {}", describe(&r), shmproc::active_children().len())
}

/// RELIABILITY case 46, the Ctrl-C arriving while `map` still submits
/// (the pool refuses the next chunks): the map returns `Interrupted` only
/// once the pool is terminated and its workers reaped. Under the three
/// start methods.
#[test]
fn case46_sigint_while_map_submits() {
    let ctx = Ctx::new("pool46s");
    for m in METHODS {
        ctx.step(format!("case 46 while submitting, {m}"));
        let mut p = pool_parent(case46_submitting, m);
        let got = join_parent(&mut p, "case 46 while submitting").expect("pool parent");
        assert_eq!(got, "Interrupted; children left 0", "{m}");
    }
    ctx.finish();
}

// ---------------------------------------------------------------------------
// Failpoints and chaos (helpers)
// ---------------------------------------------------------------------------

/// Windows of the worker loop: (failpoint, tasks, what each task yields).
const WINDOWS: [(&str, u64, &str); 4] = [
    // Killed after putting the result, before clearing its slot: the
    // result still counts (the supervisor reads results before judging).
    ("pool.worker.after_result", 1000, "Ok"),
    // Killed after taking the task, before running it.
    ("pool.worker.after_get", 1000, "WorkerDied(signal 9)"),
    // Killed after running it, before putting the result.
    ("pool.worker.before_result", 1000, "WorkerDied(signal 9)"),
    // Killed inside the get critical section, after writing its slot: the
    // record stays in the queue, and every next worker dies at the same
    // point on it (a failpoint that always fires makes it a poison record),
    // so this window is checked once: the task fails, nothing hangs.
    ("pool.worker.in_get", 1, "WorkerDied(signal 9)"),
];

/// Role `pool_failpoint`: a pool of 4 workers (method `METHOD`) runs `N`
/// tasks through `imap` while the failpoint named in the environment kills
/// every worker at it; says `outcomes <outcome>=<count>,...`.
fn role_failpoint() {
    let method: StartMethod = arg("METHOD").parse().expect("method");
    let n: u64 = arg_num("N");
    let pool = Pool::builder().processes(4).start_method(method).build().expect("pool");
    let mut counts = std::collections::BTreeMap::<String, u64>::new();
    if n == 1 {
        *counts
            .entry(describe(&pool.apply_async(square, 3).expect("submit").get_timeout(HANG_GUARD).map_err(Error::from)))
            .or_default() += 1;
    } else {
        for (i, r) in pool.imap(square, 0..n).expect("imap").enumerate() {
            if let Ok(v) = &r {
                assert_eq!(*v, (i * i) as u64);
            }
            *counts.entry(describe(&r.map_err(Error::from))).or_default() += 1;
        }
    }
    let line: Vec<String> = counts.iter().map(|(k, v)| format!("{k}={v}")).collect();
    say(format!("outcomes {}", line.join(",")));
}

/// The worker's failpoint windows, each swept over 1 000 tasks under the
/// fork server (100 under spawn, whose starts are slower; every task runs
/// on a fresh worker that dies at the point): no task is lost or answered
/// twice, none hangs, and a result put before the death counts.
#[test]
fn worker_killed_at_each_failpoint() {
    let _heavy = heavy();
    let ctx = Ctx::new("poolfp");
    for (point, n, want) in WINDOWS {
        for m in [StartMethod::ForkServer, StartMethod::Spawn] {
            let n = if m == StartMethod::Spawn { n.min(100) } else { n };
            ctx.step(format!("failpoint {point}, {m}, {n} tasks"));
            let mut h =
                ctx.child("pool_failpoint").arg("METHOD", m.as_str()).arg("N", n.to_string()).failpoint(point).start();
            assert_eq!(h.expect("outcomes"), format!("{want}={n}"), "{point} {m}");
            h.wait_ok();
        }
    }
    ctx.finish();
}

/// Windows of a worker's batch (several quick tasks taken at once, their
/// results put together): the worker's first task runs alone, so the
/// batch windows are the second pass of the result points and the first
/// of the batch's get hook. (failpoint, what each task may yield.)
const BATCH_WINDOWS: [(&str, &[&str]); 3] = [
    // Killed inside the batch's get critical section, after naming some of
    // its records in the slot: those fail (and are skipped when taken again).
    ("pool.worker.in_get_more@1", &["Ok", "WorkerDied(signal 9)"]),
    // Killed with a batch's results gathered, before putting them: they fail.
    ("pool.worker.before_result@2", &["Ok", "WorkerDied(signal 9)"]),
    // Killed after putting them, before emptying the slot: they count.
    ("pool.worker.after_result@2", &["Ok"]),
];

/// The batch windows, each over 300 quick tasks (100 under spawn): every
/// task is answered once, with its result or its worker's death; none
/// hangs. Whether a worker takes a batch depends on how fast it runs, so
/// the test does not count them.
#[test]
fn worker_killed_in_a_batch() {
    let _heavy = heavy();
    let ctx = Ctx::new("poolbatchfp");
    for (point, allowed) in BATCH_WINDOWS {
        for m in [StartMethod::ForkServer, StartMethod::Spawn] {
            let n: u64 = if m == StartMethod::Spawn { 100 } else { 300 };
            ctx.step(format!("failpoint {point}, {m}, {n} tasks"));
            let mut h =
                ctx.child("pool_failpoint").arg("METHOD", m.as_str()).arg("N", n.to_string()).failpoint(point).start();
            let line = h.expect("outcomes");
            let mut total = 0;
            for part in line.split(',') {
                let (what, count) = part.split_once('=').expect("outcome=count");
                assert!(allowed.contains(&what), "{point} {m}: outcome {what} in {line}");
                total += count.parse::<u64>().expect("count");
            }
            assert_eq!(total, n, "{point} {m}: every task answered once: {line}");
            h.wait_ok();
        }
    }
    ctx.finish();
}

/// Role `pool_chaos`: says `ready`, then runs `N` short tasks through
/// `imap` on 3 workers (method `METHOD`) while the test SIGKILLs its
/// children at random; every item must be `Ok` or `WorkerDied`, and the
/// pool must work afterwards. Says `done ok=<n> died=<m>`.
fn role_chaos() {
    let method: StartMethod = arg("METHOD").parse().expect("method");
    let n: u64 = arg_num("N");
    let pool = Pool::builder().processes(3).start_method(method).build().expect("pool");
    say("ready");
    let (mut ok, mut died) = (0u64, 0u64);
    for (i, r) in pool.imap(square_slowly, 0..n).expect("imap").enumerate() {
        match r {
            Ok(v) => {
                assert_eq!(v, (i * i) as u64);
                ok += 1;
            }
            Err(TaskError::WorkerDied { .. }) => died += 1,
            Err(e) => panic!("item {i}: {e}"),
        }
    }
    assert_eq!(pool.apply(square, 5).expect("the pool works after the chaos"), 25);
    say(format!("done ok={ok} died={died}"));
}

fn square_slowly(x: u64) -> u64 {
    std::thread::sleep(Duration::from_micros(500));
    x * x
}

/// Children of `parent`, from `/proc`.
fn children_of(parent: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
                .filter(|&p| harness::proc_state(p).is_some_and(|(s, pp)| pp == parent && s != 'Z'))
                .collect()
        })
        .unwrap_or_default()
}

/// `kill -9` of a random child of `parent` every 15 to 45 ms, for `time`
/// or `max` kills; the kills made.
fn kill_children_randomly(parent: u32, seed: u64, time: Duration, max: usize) -> usize {
    let mut rng = harness::Rng::new(seed ^ u64::from(parent));
    let deadline = Instant::now() + time;
    let mut kills = 0;
    while Instant::now() < deadline && kills < max {
        let kids = children_of(parent);
        if !kids.is_empty() {
            kill9(kids[(rng.next() % kids.len() as u64) as usize]);
            kills += 1;
        }
        std::thread::sleep(Duration::from_millis(15 + rng.next() % 30));
    }
    kills
}

/// The numbers of a helper's `done a=1 b=2` line.
fn counts(done: &str) -> Vec<u64> {
    done.split(' ').map(|kv| kv.split('=').nth(1).expect("value").parse().expect("n")).collect()
}

/// Random `kill -9` of a pool parent's children (workers, and the fork
/// server) from outside, every few milliseconds while it maps: every item
/// is answered (a result or `WorkerDied`), nothing hangs, the pool
/// replaces what died.
#[test]
fn random_worker_sigkills_during_map() {
    let _heavy = heavy();
    let ctx = Ctx::new("poolchaos");
    for m in [StartMethod::ForkServer, StartMethod::Spawn] {
        ctx.step(format!("chaos, {m}"));
        let mut h = ctx.child("pool_chaos").arg("METHOD", m.as_str()).arg("N", "3000").start();
        h.expect("ready");
        kill_children_randomly(h.pid(), 0x5eed, Duration::from_secs(3), 40);
        let done = h.expect("done");
        assert_eq!(counts(&done).iter().sum::<u64>(), 3000, "{m}: every item answered once: {done}");
        h.wait_ok();
    }
    ctx.finish();
}

/// The same with quick tasks, whose `map`s are packed 32 items to a chunk
/// (and taken several chunks at a time): each map gives every result in
/// order or `WorkerDied`, nothing hangs, and a map after the kills gives
/// every result.
#[test]
fn random_worker_sigkills_during_packed_maps() {
    let _heavy = heavy();
    let ctx = Ctx::new("poolchaosq");
    for m in [StartMethod::ForkServer, StartMethod::Spawn] {
        ctx.step(format!("packed chaos, {m}"));
        let mut h = ctx.child("pool_chaos_quick").arg("METHOD", m.as_str()).start();
        h.expect("ready");
        let kills = kill_children_randomly(h.pid(), 0x9ac4, Duration::from_secs(2), 30);
        h.send("stop");
        let done = h.expect("done");
        eprintln!("{m}: {kills} kills, maps {done}");
        assert!(counts(&done).iter().sum::<u64>() > 0, "{m}: no map ended: {done}");
        h.wait_ok();
    }
    ctx.finish();
}

/// Helper of `random_worker_sigkills_during_packed_maps`: maps 20 000
/// quick items (`square_busily`) at chunksize 1 (`map` and `map_async` in turn) until told
/// to stop, then once more without kills.
fn role_chaos_quick() {
    let method: StartMethod = arg("METHOD").parse().expect("method");
    let pool = Pool::builder().processes(2).start_method(method).build().expect("pool");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufRead::read_line(&mut std::io::stdin().lock(), &mut line);
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    let want: Vec<u64> = (0..20_000).map(|x| x * x).collect();
    say("ready");
    let (mut ok, mut died) = (0u64, 0u64);
    for round in 0u64.. {
        if stop.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
        let got = if round % 2 == 0 {
            pool.map_chunked(square_busily, 0..20_000, 1)
        } else {
            let handle = pool.map_async_chunked(square_busily, 0..20_000, 1).expect("map_async");
            handle.get().map_err(|e| match e {
                TaskError::WorkerDied { pid, signal, code } => Error::WorkerDied { pid, signal, code },
                other => panic!("round {round}: {other}"),
            })
        };
        match got {
            Ok(v) => {
                assert_eq!(v, want, "round {round}");
                ok += 1;
            }
            Err(Error::WorkerDied { .. }) => died += 1,
            Err(e) => panic!("round {round}: {e}"),
        }
    }
    assert_eq!(pool.map_chunked(square_busily, 0..20_000, 1).expect("the pool works after the chaos"), want);
    say(format!("done ok={ok} died={died}"));
}

/// A quick task (about a microsecond: far under the 20 us that makes a
/// worker take batches) that keeps its worker busy, so most kills find it
/// holding a packed batch.
fn square_busily(x: u64) -> u64 {
    let mut acc = x;
    for i in 0..400u64 {
        acc = std::hint::black_box(acc.wrapping_add(i));
    }
    std::hint::black_box(acc);
    x * x
}

/// Dispatches the `pool_*` helper roles.
pub(crate) fn run_role(role: &str) {
    match role {
        "pool_failpoint" => role_failpoint(),
        "pool_chaos" => role_chaos(),
        "pool_chaos_quick" => role_chaos_quick(),
        other => panic!("unknown pool role {other:?}"),
    }
}
