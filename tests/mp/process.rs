//! Process lifecycle and crashes across processes: RELIABILITY cases 39
//! (descriptor and process limits), 41 (the plain-process part of the crash
//! matrix; pools come later), 43 (fork in a single-threaded child), 44
//! (parent SIGKILLed), 45 (dropped handles, no zombies) and Python's exit
//! semantics (non-daemon children waited for, daemons terminated).
//!
//! Every scenario runs in a helper (this test binary re-executed with a
//! role), which is the shmproc parent under test. A helper runs its role on
//! a libtest thread next to the harness's watchdog thread, so it is
//! multi-threaded and the fork start method is refused there (that refusal
//! is itself checked). Fork children are therefore started from inside a
//! Spawn child's task: a re-executed child runs its task before `main`,
//! single-threaded, where fork is allowed.

use std::collections::HashSet;
use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustix::process::{Resource, Rlimit, Signal, getpid, getrlimit, kill_process, setrlimit};
use shmproc::{Context, Error, JoinError, JoinTimeoutError, Process, ProcessFailure, Shared, StartMethod};

use crate::harness::{self, Ctx, HANG_GUARD, arg, arg_num, fd_count, proc_state, say, wait_for_parent};

/// How long a process may take to disappear after its parent died.
const GONE_GUARD: Duration = Duration::from_secs(10);
/// The start methods a multi-threaded helper can use directly.
const THREADED_METHODS: [StartMethod; 2] = [StartMethod::ForkServer, StartMethod::Spawn];
/// The uid that the RLIMIT_NPROC helpers run as (root ignores the limit):
/// one no other test uses, so that no other test's processes count against
/// the limit (hostile.rs runs helpers as 65534).
const LIMITED_UID: u32 = 64_999;

// ---------------------------------------------------------------------------
// Tasks run by the children
// ---------------------------------------------------------------------------

fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

fn square(x: u64) -> u64 {
    x * x
}

fn crash_panic(_: ()) -> u32 {
    panic!("deliberate panic in the task")
}

fn crash_exit(code: i32) -> u32 {
    std::process::exit(code)
}

/// Records that the task started, then SIGKILLs its own process.
fn crash_sigkill(progress: Shared<AtomicU64>) -> u32 {
    progress.fetch_add(1, Ordering::SeqCst);
    raise_forever(Signal::KILL)
}

/// Records that the task started, then SIGSEGVs its own process (no core
/// file: RLIMIT_CORE is set to 0 first).
fn crash_sigsegv(progress: Shared<AtomicU64>) -> u32 {
    let _ = setrlimit(Resource::Core, Rlimit { current: Some(0), maximum: Some(0) });
    progress.fetch_add(1, Ordering::SeqCst);
    raise_forever(Signal::SEGV)
}

/// Sends `sig` to this process until it takes effect (a handler that
/// resets itself to the default, as std's SIGSEGV handler does, would
/// swallow the first one).
fn raise_forever(sig: Signal) -> ! {
    loop {
        let _ = kill_process(getpid(), sig);
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sleeps `ms`, then writes `"done"` to the file at `path`.
fn write_marker_later((path, ms): (String, u64)) {
    std::thread::sleep(Duration::from_millis(ms));
    fs::write(&path, "done").expect("write the marker");
}

// ---------------------------------------------------------------------------
// /proc helpers
// ---------------------------------------------------------------------------

/// The processes whose parent is `parent`, with their state letters.
fn children_of(parent: u32) -> Vec<(u32, char)> {
    let mut v = Vec::new();
    for e in fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        if let Some((state, ppid)) = proc_state(pid)
            && ppid == parent
        {
            v.push((pid, state));
        }
    }
    v.sort_unstable();
    v
}

/// Zombie children of `parent`.
fn zombies_of(parent: u32) -> Vec<u32> {
    children_of(parent).into_iter().filter(|&(_, s)| s == 'Z').map(|(p, _)| p).collect()
}

/// Whether `pid`'s initial environment contains `SHMPROC_FORKSERVER=` (the
/// loader hook removes the variable from `environ`, but `/proc/<pid>/environ`
/// shows the block the process was executed with).
fn has_server_env(pid: u32) -> bool {
    let Ok(env) = fs::read(format!("/proc/{pid}/environ")) else { return false };
    env.split(|&b| b == 0).any(|var| var.starts_with(b"SHMPROC_FORKSERVER="))
}

/// The fork server of this process: its one live child that is not one of
/// its shmproc children (which the server's clones are) and that was
/// executed as a fork server.
fn fork_server() -> Option<u32> {
    let me = std::process::id();
    let ours: HashSet<u32> = shmproc::active_children().iter().map(|p| p.pid()).collect();
    let found: Vec<u32> = children_of(me)
        .into_iter()
        .filter(|&(p, s)| s != 'Z' && !ours.contains(&p) && has_server_env(p))
        .map(|(p, _)| p)
        .collect();
    assert!(found.len() <= 1, "several fork-server-like children: {found:?}");
    found.first().copied()
}

/// Children of this process other than `except` (the fork server and the
/// handles still held), any state: a zombie, or a live child nobody holds.
fn stray_children(except: &[u32]) -> Vec<(u32, char)> {
    children_of(std::process::id()).into_iter().filter(|(p, _)| !except.contains(p)).collect()
}

/// Start time (clock ticks since boot) of `pid`, to tell it from a reuse of
/// its pid.
fn start_time(pid: u32) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s[s.rfind(')')? + 2..].split_whitespace().nth(19)?.parse().ok()
}

/// Whether the process that had `pid` and `started` is gone: no such
/// process, a new one with that pid, or a zombie (dead, waiting for a
/// reaper: pid 1 may not reap promptly in a container).
fn is_gone(pid: u32, started: u64) -> bool {
    match (proc_state(pid), start_time(pid)) {
        (Some((s, _)), Some(t)) => t != started || s == 'Z' || s == 'X',
        _ => true,
    }
}

/// The tasks (threads) of all processes whose real uid is `uid`.
fn tasks_of_uid(uid: u32) -> u64 {
    let mut n = 0;
    for e in fs::read_dir("/proc").expect("/proc").flatten() {
        if !e.file_name().to_str().is_some_and(|s| s.bytes().all(|b| b.is_ascii_digit())) {
            continue;
        }
        let Ok(status) = fs::read_to_string(e.path().join("status")) else { continue };
        let field = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        };
        if field("Uid:") == Some(u64::from(uid)) {
            n += field("Threads:").unwrap_or(1);
        }
    }
    n
}

/// Sets the soft limit of `res`, keeping the hard one.
fn set_soft(res: Resource, soft: Option<u64>) {
    let cur = getrlimit(res);
    setrlimit(res, Rlimit { current: soft, maximum: cur.maximum })
        .unwrap_or_else(|e| panic!("setrlimit({res:?}, {soft:?}): {e}"));
}

/// The descriptors open now, after `active_children()` has dropped the
/// registry's entries (and pidfds) of children that were already joined.
fn baseline_fds() -> usize {
    let _ = shmproc::active_children();
    fd_count()
}

/// This process's descriptors and their targets.
fn fd_list() -> Vec<String> {
    let Ok(rd) = fs::read_dir("/proc/self/fd") else { return Vec::new() };
    let mut v: Vec<String> = rd
        .flatten()
        .map(|e| {
            format!(
                "{}->{}",
                e.file_name().to_string_lossy(),
                fs::read_link(e.path()).map(|t| t.display().to_string()).unwrap_or_default()
            )
        })
        .collect();
    v.sort();
    v
}

/// Lowers RLIMIT_NPROC to `limit` the first time, to 1 after (`lowered`
/// records the first time): the second attempt of [`exhaust`] must find
/// the limit exhausted even if processes of the same user ended meanwhile.
fn nproc_lower(lowered: &std::cell::Cell<bool>, limit: u64) {
    let soft = if lowered.replace(true) { 1 } else { limit };
    set_soft(Resource::Nproc, Some(soft));
}

/// Threads of this process.
fn thread_count() -> usize {
    fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

// ---------------------------------------------------------------------------
// Outcomes
// ---------------------------------------------------------------------------

/// A join result in a comparable form: `Ok(<value>)`, the failure
/// (`Panicked(..)`, `Exited(..)`, `Signaled(..)`, `TaskError(..)`), or
/// another error's variant, followed by Python's exit code.
fn describe<R>(p: &mut Process<R>) -> String
where
    R: std::fmt::Debug + serde::de::DeserializeOwned,
{
    let r = match p.join_timeout(HANG_GUARD) {
        Err(JoinTimeoutError::Timeout) => {
            let _ = p.kill();
            return format!("hang: still running after {HANG_GUARD:?}");
        }
        Ok(v) => format!("Ok({v:?})"),
        Err(e) => {
            let error = Error::from(e);
            match error {
                Error::ProcessFailed { failure, pid, .. } => {
                    assert_eq!(pid, p.pid(), "the error names the child");
                    match failure {
                        ProcessFailure::Panicked(m) => format!("Panicked({m})"),
                        ProcessFailure::Exited(c) => format!("Exited({c})"),
                        ProcessFailure::Signaled(s) => format!("Signaled({s})"),
                        ProcessFailure::TaskError(m) => format!("TaskError({m})"),
                        other => format!("{other:?}"),
                    }
                }
                e => format!("{}: {e}", harness::variant(&e)),
            }
        }
    };
    let code = p.exitcode().map_or_else(|| "?".to_owned(), |s| s.python().to_string());
    format!("{r} exit {code}")
}

/// What the crash matrix must yield, in order, under every start method.
const CRASH_EXPECTED: [&str; 4] = [
    "Panicked(deliberate panic in the task) exit 1",
    "Exited(7) exit 7",
    "Signaled(9) exit -9",
    "Signaled(11) exit -11",
];

/// Runs the crash matrix with `method` from this process: a panic, an exit
/// with code 7, SIGKILL and SIGSEGV in the middle of the task. Returns one
/// outcome per crash (see [`CRASH_EXPECTED`]) and checks that the two
/// signalled tasks had started.
fn crash_matrix(method: StartMethod) -> Result<Vec<String>, String> {
    let ctx = Context::new(method);
    let progress = Shared::<AtomicU64>::anonymous(|a| a.store(0, Ordering::SeqCst)).map_err(|e| e.to_string())?;
    let start = |r: shmproc::Result<Process<u32>>| r.map_err(|e| format!("{method}: start: {e}"));
    let out = vec![
        describe(&mut start(ctx.spawn(crash_panic, ()))?),
        describe(&mut start(ctx.spawn(crash_exit, 7))?),
        describe(&mut start(ctx.spawn(crash_sigkill, progress.clone()))?),
        describe(&mut start(ctx.spawn(crash_sigsegv, progress.clone()))?),
    ];
    let started = progress.load(Ordering::SeqCst);
    if started != 2 {
        return Err(format!("{method}: {started} of the 2 signalled tasks recorded their start"));
    }
    Ok(out)
}

/// Task: [`crash_matrix`] with the fork start method, in a single-threaded
/// Spawn child.
fn fork_crash_matrix(_: ()) -> Result<Vec<String>, String> {
    crash_matrix(StartMethod::Fork)
}

// ---------------------------------------------------------------------------
// Exhaustion (case 39)
// ---------------------------------------------------------------------------

/// What [`exhaust`] runs.
struct Exhaust<'a> {
    /// Names the round in messages.
    label: &'a str,
    /// Descriptors open before the round (checked at its end).
    fds0: usize,
    /// Children that stay (the fork server).
    keep: &'a [u32],
    /// Starts one daemon child that sleeps 30 s.
    start: &'a dyn Fn() -> shmproc::Result<Process<()>>,
    /// Lowers the limit.
    lower: &'a dyn Fn(),
    /// Restores the limit.
    restore: &'a dyn Fn(),
    /// Runs `square(7)` in a child.
    check: &'a dyn Fn() -> shmproc::Result<u64>,
}

/// Lowers the limit and starts children with `start` until it returns an
/// error (at most 64 tries), then checks the contract of case 39: no
/// attempt panicked, the failed attempt left no child (running, or a
/// zombie) besides the held ones and `keep`, a second attempt at the limit
/// fails as cleanly, and with the limit restored a child starts and
/// finishes. Kills and joins the held children, then checks that the
/// descriptors are back to `fds0`, that no child is left, and that
/// `active_children()` is empty. Returns the error message.
///
/// `/proc` is scanned only while the limit is restored (the scan needs a
/// descriptor); the held children are daemons, so a failing helper's exit
/// ends them instead of waiting 30 s for them.
fn exhaust(x: &Exhaust<'_>) -> Result<String, String> {
    let label = x.label;
    let attempt = || -> Result<shmproc::Result<Process<()>>, String> {
        catch_unwind(AssertUnwindSafe(x.start)).map_err(|p| {
            (x.restore)();
            format!("{label}: starting a child panicked: {}", panic_text(p.as_ref()))
        })
    };
    let mut held: Vec<Process<()>> = Vec::new();
    let mut error = None;
    (x.lower)();
    for _ in 0..64 {
        match attempt()? {
            Ok(p) => held.push(p),
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    (x.restore)();
    let Some(error) = error else {
        return Err(format!("{label}: 64 children started without an error"));
    };
    let mut problems = Vec::new();
    let mut allowed: Vec<u32> = held.iter().map(|p| p.pid()).chain(x.keep.iter().copied()).collect();
    let stray = stray_children(&allowed);
    if !stray.is_empty() {
        problems.push(format!("the failed start left children {stray:?} (pid, state)"));
    }
    (x.lower)();
    let second = attempt()?;
    (x.restore)();
    match second {
        Ok(p) => {
            allowed.push(p.pid());
            held.push(p);
            problems.push("a second start at the limit succeeded".to_owned());
        }
        Err(_) => {
            let stray = stray_children(&allowed);
            if !stray.is_empty() {
                problems.push(format!("the second failed start left children {stray:?}"));
            }
        }
    }
    match (x.check)() {
        Ok(49) => {}
        other => problems.push(format!("with the limit restored a child gave {other:?}")),
    }
    for mut p in held {
        let _ = p.kill();
        match p.join() {
            Err(JoinError::Signaled { signal: 9, .. }) => {}
            other => problems.push(format!("a held child (pid {}) joined as {other:?}", p.pid())),
        }
    }
    let active = shmproc::active_children();
    if !active.is_empty() {
        problems.push(format!("active_children() not empty: {active:?}"));
    }
    let stray = stray_children(x.keep);
    if !stray.is_empty() {
        problems.push(format!("children left at the end: {stray:?}"));
    }
    let fds = fd_count();
    if fds != x.fds0 {
        problems.push(format!("{fds} descriptors open, {} before; now {:?}", x.fds0, fd_list()));
    }
    if problems.is_empty() {
        Ok(format!("{} started, then: {error}", allowed.len() - x.keep.len()))
    } else {
        Err(format!("{label} (error was: {error}): {}", problems.join("; ")))
    }
}

/// The message of a panic payload.
fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

/// The soft RLIMIT_NOFILE values tried: RELIABILITY's 32 and the next
/// three, so that the last free descriptor falls on every step of a start.
const NOFILE_LIMITS: [u64; 4] = [32, 33, 34, 35];

/// RLIMIT_NOFILE exhaustion with `method` (ForkServer or Spawn in a helper,
/// Fork in a Spawn child). `keep`: the fork server's pid, if any.
fn nofile_rounds(method: StartMethod, keep: &[u32]) -> Result<Vec<String>, String> {
    let soft0 = getrlimit(Resource::Nofile).current;
    let ctx = Context::new(method);
    // Warm up (launches the fork server and the launcher thread) and take
    // the baseline.
    ctx.spawn(square, 2).and_then(|mut p| Ok(p.join()?)).map_err(|e| format!("{method}: warm-up: {e}"))?;
    let fds0 = baseline_fds();
    if fds0 + 4 >= 32 {
        return Err(format!("{fds0} descriptors already open: too many for a limit of 32"));
    }
    let mut out = Vec::new();
    for limit in NOFILE_LIMITS {
        let label = format!("{method}, RLIMIT_NOFILE={limit}");
        let msg = exhaust(&Exhaust {
            label: &label,
            fds0,
            keep,
            start: &|| ctx.process().daemon(true).spawn(sleep_ms, 30_000),
            lower: &|| set_soft(Resource::Nofile, Some(limit)),
            restore: &|| set_soft(Resource::Nofile, soft0),
            check: &|| ctx.spawn(square, 7).and_then(|mut p| Ok(p.join()?)),
        })?;
        out.push(format!("{label}: {msg}"));
    }
    Ok(out)
}

/// Task: [`nofile_rounds`] with the fork start method, in a single-threaded
/// Spawn child.
fn fork_nofile_rounds(_: ()) -> Result<Vec<String>, String> {
    nofile_rounds(StartMethod::Fork, &[])
}

/// Task: in a single-threaded Spawn child (running as [`LIMITED_UID`]),
/// lowers RLIMIT_NPROC to what this user runs plus two and forks until the
/// fork is refused, then checks as [`exhaust`] does (the limit restored,
/// fork works again).
fn fork_nproc_round(_: ()) -> Result<String, String> {
    let soft0 = getrlimit(Resource::Nproc).current;
    let fds0 = baseline_fds();
    let limit = tasks_of_uid(LIMITED_UID) + 2;
    let lowered = std::cell::Cell::new(false);
    let ctx = Context::new(StartMethod::Fork);
    let label = format!("fork, RLIMIT_NPROC={limit}");
    exhaust(&Exhaust {
        label: &label,
        fds0,
        keep: &[],
        start: &|| ctx.process().daemon(true).spawn(sleep_ms, 30_000),
        lower: &|| nproc_lower(&lowered, limit),
        restore: &|| set_soft(Resource::Nproc, soft0),
        check: &|| ctx.spawn(square, 7).and_then(|mut p| Ok(p.join()?)),
    })
    .map(|m| format!("{label}: {m}"))
}

// ---------------------------------------------------------------------------
// Fork in a single-threaded child (case 43)
// ---------------------------------------------------------------------------

/// Task: fork is accepted while this (Spawn child) process has one thread,
/// refused with `ForkUnsafe { threads: 2 }` while a second thread runs, and
/// accepted again after it ended; Spawn and ForkServer work here too.
fn fork_rules(_: ()) -> Result<(), String> {
    let fork = Context::new(StartMethod::Fork);
    if thread_count() != 1 {
        return Err(format!("the task runs with {} threads", thread_count()));
    }
    let got = fork.spawn(square, 5).and_then(|mut p| Ok(p.join()?)).map_err(|e| format!("fork, single thread: {e}"))?;
    if got != 25 {
        return Err(format!("fork gave {got}"));
    }
    let got = Process::fork(|| 6u64 * 7).and_then(|mut p| Ok(p.join()?)).map_err(|e| format!("Process::fork: {e}"))?;
    if got != 42 {
        return Err(format!("Process::fork gave {got}"));
    }

    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let t = std::thread::spawn(move || {
        let _ = rx.recv();
    });
    match fork.spawn(square, 5) {
        Err(Error::ForkUnsafe { threads: 2 }) => {}
        other => return Err(format!("fork with a second thread: {:?}", other.map(|p| p.pid()))),
    }
    match Process::fork(|| 1u8) {
        Err(Error::ForkUnsafe { threads: 2 }) => {}
        other => return Err(format!("Process::fork with a second thread: {:?}", other.map(|p| p.pid()))),
    }
    let _ = tx.send(());
    t.join().map_err(|_| "the second thread panicked".to_owned())?;
    // The kernel removes the thread from /proc/self/task shortly after join.
    let deadline = Instant::now() + HANG_GUARD;
    while thread_count() != 1 {
        if Instant::now() > deadline {
            return Err("the second thread never left /proc/self/task".to_owned());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let got = fork.spawn(square, 8).and_then(|mut p| Ok(p.join()?)).map_err(|e| format!("fork after join: {e}"))?;
    if got != 64 {
        return Err(format!("fork after join gave {got}"));
    }
    for m in THREADED_METHODS {
        let got = Context::new(m).spawn(square, 3).and_then(|mut p| Ok(p.join()?)).map_err(|e| format!("{m}: {e}"))?;
        if got != 9 {
            return Err(format!("{m} gave {got}"));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Parent death (case 44), dropped handles (case 45), exit
// ---------------------------------------------------------------------------

/// Task: forks a child that sleeps 60 s, publishes its pid in `slot`, and
/// waits for it (a Spawn child holding a Fork grandchild).
fn fork_and_hold(slot: Shared<AtomicU64>) {
    let mut p = Process::builder().start_method(StartMethod::Fork).spawn(sleep_ms, 60_000).expect("fork");
    slot.store(u64::from(p.pid()), Ordering::SeqCst);
    let _ = p.join();
}

/// Task: starts `n` children with `method` (Fork included: this runs in a
/// single-threaded Spawn child) that sleep 20 ms, drops their handles
/// unjoined, and reaps them through `active_children()`; checks that no
/// zombie and no descriptor is left.
fn drop_unjoined((method, n): (StartMethod, usize)) -> Result<usize, String> {
    let ctx = Context::new(method);
    ctx.spawn(square, 1).and_then(|mut p| Ok(p.join()?)).map_err(|e| format!("{method}: warm-up: {e}"))?;
    let keep: Vec<u32> = fork_server().into_iter().collect();
    let fds0 = baseline_fds();
    for i in 0..n {
        let p = ctx.spawn(sleep_ms, 20).map_err(|e| format!("{method}: start {i}: {e}"))?;
        drop(p);
    }
    let deadline = Instant::now() + HANG_GUARD;
    let mut polls = 0;
    while !shmproc::active_children().is_empty() {
        polls += 1;
        if Instant::now() > deadline {
            return Err(format!("{method}: children still running after {HANG_GUARD:?}"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let stray = stray_children(&keep);
    if !stray.is_empty() {
        return Err(format!("{method}: children left (pid, state): {stray:?}"));
    }
    let fds = fd_count();
    if fds != fds0 {
        return Err(format!("{method}: {fds} descriptors open, {fds0} before"));
    }
    Ok(polls)
}

/// Task: starts a non-daemon child with `method` that writes the marker
/// `path` after 300 ms, and returns its pid without joining it.
fn leave_child_running((method, path): (StartMethod, String)) -> u32 {
    let p = Context::new(method).spawn(write_marker_later, (path, 300)).expect("start the grandchild");
    p.pid()
}

// ---------------------------------------------------------------------------
// Roles
// ---------------------------------------------------------------------------

/// Role `proc_orphans` (case 44): starts a ForkServer child, a daemon
/// ForkServer child, a Spawn child, and a Spawn child that forks a
/// grandchild, all sleeping 60 s; says `pids <forkserver> <daemon> <spawn>
/// <fork holder> <forked> <fork server>`, then waits for its parent (which
/// SIGKILLs it).
pub(crate) fn role_orphans() {
    let fs = Context::new(StartMethod::ForkServer).spawn(sleep_ms, 60_000).expect("forkserver child");
    let daemon = Context::new(StartMethod::ForkServer)
        .process()
        .daemon(true)
        .spawn(sleep_ms, 60_000)
        .expect("daemon forkserver child");
    let sp = Context::new(StartMethod::Spawn).spawn(sleep_ms, 60_000).expect("spawn child");
    let slot = Shared::<AtomicU64>::anonymous(|a| a.store(0, Ordering::SeqCst)).expect("slot");
    let holder = Context::new(StartMethod::Spawn).spawn(fork_and_hold, slot.clone()).expect("fork holder");
    harness::wait_until("the fork holder reports its child", || slot.load(Ordering::SeqCst) != 0);
    let server = fork_server().expect("the fork server is running");
    say(format!(
        "pids {} {} {} {} {} {server}",
        fs.pid(),
        daemon.pid(),
        sp.pid(),
        holder.pid(),
        slot.load(Ordering::SeqCst)
    ));
    wait_for_parent();
}

/// Role `proc_nofile` (case 39): RLIMIT_NOFILE exhaustion with ForkServer
/// and Spawn from this helper, and with Fork from a Spawn child; says one
/// `ok <round>: <error>` line per round, then `done`.
pub(crate) fn role_nofile() {
    let mut lines = Vec::new();
    for m in THREADED_METHODS {
        // The fork server counts as a child that stays.
        Context::new(m).spawn(square, 1).and_then(|mut p| Ok(p.join()?)).expect("warm-up");
        let keep: Vec<u32> = fork_server().into_iter().collect();
        lines.extend(nofile_rounds(m, &keep).unwrap_or_else(|e| panic!("{e}")));
    }
    let mut p = Context::new(StartMethod::Spawn).spawn(fork_nofile_rounds, ()).expect("start the fork round");
    lines.extend(p.join().expect("fork round").unwrap_or_else(|e| panic!("{e}")));
    for l in lines {
        say(format!("ok {l}"));
    }
    say("done");
}

/// With RLIMIT_NPROC at 1 (no new task for this user at all), the next
/// start with each of [`THREADED_METHODS`] (ForkServer: launching the
/// server) must return `Err`, not panic, and leave no child. Says
/// `ok <method>, ...: <error>` per method.
fn first_starts_refused(when: &str) {
    let soft0 = getrlimit(Resource::Nproc).current;
    for m in THREADED_METHODS {
        set_soft(Resource::Nproc, Some(1));
        let r = catch_unwind(AssertUnwindSafe(|| Context::new(m).spawn(square, 3)));
        set_soft(Resource::Nproc, soft0);
        match r {
            Err(p) => panic!("{m}: {when} with RLIMIT_NPROC exhausted panicked: {}", panic_text(p.as_ref())),
            Ok(Ok(mut p)) => panic!("{m}: started pid {} with RLIMIT_NPROC exhausted ({:?})", p.pid(), p.join()),
            Ok(Err(e)) => say(format!("ok {m}, {when}, RLIMIT_NPROC=1: {e}")),
        }
    }
    let stray = stray_children(&[]);
    assert!(stray.is_empty(), "failed starts left children {stray:?}");
}

/// Role `proc_nproc_first` (case 39, run as uid [`LIMITED_UID`]): the very
/// first start of this helper, with RLIMIT_NPROC exhausted. This role is
/// not on the main thread, so that start first needs shmproc's launcher
/// thread, whose creation fails too. Says `ok ...` lines, then `done`.
pub(crate) fn role_nproc_first() {
    first_starts_refused("first start, no launcher thread yet");
    say("done");
}

/// Role `proc_nproc` (case 39, run as uid [`LIMITED_UID`]): once the launcher
/// thread exists, with RLIMIT_NPROC exhausted the fork server's launch and
/// a Spawn start fail cleanly; Spawn children fail cleanly at the limit and
/// start again once it is raised; Fork in a Spawn child the same. (The fork
/// server, once running, forks under its own limit, which was high when it
/// was launched, so its children are not refused by ours.) Says `ok ...`
/// lines, then `done`.
pub(crate) fn role_nproc() {
    let soft0 = getrlimit(Resource::Nproc).current;
    let ctx = Context::new(StartMethod::Spawn);
    ctx.spawn(square, 1).and_then(|mut p| Ok(p.join()?)).expect("warm-up (starts the launcher thread)");
    first_starts_refused("launcher thread running");
    Context::new(StartMethod::ForkServer)
        .spawn(square, 1)
        .and_then(|mut p| Ok(p.join()?))
        .expect("fork server works again");
    let keep: Vec<u32> = fork_server().into_iter().collect();
    let fds0 = baseline_fds();
    let limit = tasks_of_uid(LIMITED_UID) + 3;
    let lowered = std::cell::Cell::new(false);
    let label = format!("spawn, RLIMIT_NPROC={limit}");
    let msg = exhaust(&Exhaust {
        label: &label,
        fds0,
        keep: &keep,
        start: &|| ctx.process().daemon(true).spawn(sleep_ms, 30_000),
        lower: &|| nproc_lower(&lowered, limit),
        restore: &|| set_soft(Resource::Nproc, soft0),
        check: &|| ctx.spawn(square, 7).and_then(|mut p| Ok(p.join()?)),
    })
    .unwrap_or_else(|e| panic!("{e}"));
    say(format!("ok {label}: {msg}"));
    let mut p = ctx.spawn(fork_nproc_round, ()).expect("start the fork round");
    let msg = p.join().expect("fork round").unwrap_or_else(|e| panic!("{e}"));
    say(format!("ok {msg}"));
    say("done");
}

/// Role `proc_fork_rules` (case 43): fork is refused here (a libtest
/// thread next to the watchdog thread), accepted in a single-threaded Spawn
/// child, refused there while it has a second thread, accepted again after.
pub(crate) fn role_fork_rules() {
    assert!(thread_count() > 1, "the helper was expected to be multi-threaded");
    match Process::builder().start_method(StartMethod::Fork).spawn(square, 2) {
        Err(Error::ForkUnsafe { threads }) => assert!(threads > 1, "{threads}"),
        other => panic!("fork in a multi-threaded helper: {other:?}"),
    }
    assert!(matches!(Process::fork(|| 1u8), Err(Error::ForkUnsafe { .. })));
    let mut p = Context::new(StartMethod::Spawn).spawn(fork_rules, ()).expect("start");
    p.join().expect("join").unwrap_or_else(|e| panic!("{e}"));
    say("done");
}

/// Role `proc_crashes` (case 41, plain processes): the crash matrix under
/// ForkServer and Spawn from here, and under Fork from a Spawn child; says
/// `ok <method> <ms>` per method.
pub(crate) fn role_crashes() {
    let t = Instant::now();
    let fork = Context::new(StartMethod::Spawn).spawn(fork_crash_matrix, ()).expect("start the fork matrix");
    let mut results = Vec::new();
    for m in THREADED_METHODS {
        let t = Instant::now();
        results.push((m, crash_matrix(m), t.elapsed()));
    }
    let mut fork = fork;
    let fork_result = match fork.join() {
        Ok(r) => r,
        Err(e) => Err(format!("the fork matrix's child: {e}")),
    };
    results.push((StartMethod::Fork, fork_result, t.elapsed()));
    for (m, r, took) in results {
        let got = r.unwrap_or_else(|e| panic!("{m}: {e}"));
        assert_eq!(got, CRASH_EXPECTED, "{m}");
        say(format!("ok {m} {}", took.as_millis()));
    }
    let stray = stray_children(&fork_server().into_iter().collect::<Vec<_>>());
    assert!(stray.is_empty(), "children left: {stray:?}");
}

/// Role `proc_dropped` (case 45): `N` children per method, handles dropped
/// unjoined, reaped by `active_children()`: ForkServer and Spawn from
/// here, Fork from a Spawn child. Says `ok <method>` per method.
pub(crate) fn role_dropped() {
    let n: usize = arg_num("N");
    for m in THREADED_METHODS {
        drop_unjoined((m, n)).unwrap_or_else(|e| panic!("{e}"));
        say(format!("ok {m}"));
    }
    let mut p = Context::new(StartMethod::Spawn).spawn(drop_unjoined, (StartMethod::Fork, n)).expect("start");
    p.join().expect("join").unwrap_or_else(|e| panic!("{e}"));
    say("ok fork");
    let stray = stray_children(&fork_server().into_iter().collect::<Vec<_>>());
    assert!(stray.is_empty(), "children left: {stray:?}");
    assert!(zombies_of(std::process::id()).is_empty());
}

/// Role `proc_atexit`: starts with `METHOD` a non-daemon child that writes
/// the marker `PATH` after 300 ms and a daemon child that sleeps 60 s, says
/// `pids <non-daemon> <daemon> <fork server or 0>`, and returns without
/// joining: the process then exits normally through `exit(0)`.
pub(crate) fn role_atexit() {
    let method: StartMethod = arg("METHOD").parse().expect("METHOD");
    let path = arg("PATH");
    let ctx = Context::new(method);
    let worker = ctx.spawn(write_marker_later, (path, 300)).expect("non-daemon child");
    let daemon = ctx.process().daemon(true).spawn(sleep_ms, 60_000).expect("daemon child");
    say(format!("pids {} {} {}", worker.pid(), daemon.pid(), fork_server().unwrap_or(0)));
}

/// Role `proc_child_exit`: a Spawn child starts a non-daemon grandchild
/// with `METHOD` that writes the marker `PATH` after 300 ms, and returns
/// without joining it. Says `pids <child> <grandchild>` once the child has
/// been joined.
pub(crate) fn role_child_exit() {
    let method: StartMethod = arg("METHOD").parse().expect("METHOD");
    let mut p = Context::new(StartMethod::Spawn).spawn(leave_child_running, (method, arg("PATH"))).expect("start");
    let grandchild = p.join().expect("join the child");
    say(format!("pids {} {grandchild}", p.pid()));
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

/// Waits (up to [`GONE_GUARD`]) until every `(label, pid, start time)` is
/// gone; returns how long that took, or the ones still there.
fn wait_gone(procs: &[(&str, u32, u64)]) -> Result<Duration, Vec<String>> {
    let t = Instant::now();
    loop {
        let left: Vec<String> = procs
            .iter()
            .filter(|(_, pid, st)| !is_gone(*pid, *st))
            .map(|(l, pid, _)| format!("{l} (pid {pid}, state {:?})", proc_state(*pid).map(|s| s.0)))
            .collect();
        if left.is_empty() {
            return Ok(t.elapsed());
        }
        if t.elapsed() > GONE_GUARD {
            return Err(left);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// RELIABILITY case 44: the parent is SIGKILLed -> its ForkServer, daemon,
/// Spawn and Fork (grand)children and its fork server all exit (target 1 s;
/// the test allows 10 s), and no segment with the test's prefix is left.
/// The Fork child is forked by a Spawn child (the helper is multi-threaded)
/// and dies through the chain of parent-death signals.
#[test]
fn parent_sigkill_takes_children_and_fork_server() {
    let ctx = Ctx::new("proc-orphans");
    let mut h = ctx.child("proc_orphans").start();
    let pids: Vec<u32> = h.expect("pids").split_whitespace().map(|p| p.parse().expect("pid")).collect();
    let labels = ["forkserver child", "daemon child", "spawn child", "fork holder", "forked grandchild", "fork server"];
    assert_eq!(pids.len(), labels.len(), "{pids:?}");
    let mut procs = Vec::new();
    for (l, &pid) in labels.iter().zip(&pids) {
        let (state, ppid) = proc_state(pid).unwrap_or_else(|| panic!("{l} (pid {pid}) is not running"));
        assert_ne!(state, 'Z', "{l} (pid {pid}) already exited");
        let want_parent = if *l == "forked grandchild" { pids[3] } else { h.pid() };
        assert_eq!(ppid, want_parent, "{l} (pid {pid}) has parent {ppid}");
        procs.push((*l, pid, start_time(pid).expect("start time")));
    }
    ctx.step("waiting for the orphans to exit");
    h.kill();
    let gone = wait_gone(&procs);
    h.wait_killed();
    match gone {
        Ok(t) => println!("case 44: all {} processes gone {t:?} after the parent's SIGKILL", procs.len()),
        Err(left) => panic!("still running {GONE_GUARD:?} after the parent's SIGKILL: {left:?}"),
    }
    ctx.finish();
}

/// RELIABILITY case 39 (RLIMIT_NOFILE): with the soft limit at 32 (and 33,
/// 34, 35, so that the last free descriptor falls on each step of a start),
/// starting children with ForkServer, Spawn (from a helper) and Fork (from
/// a Spawn child) returns `Err` cleanly: no panic, no hang, no child left
/// behind by the failed start; after the limit is raised a child starts
/// again; descriptors return to the baseline and no zombie remains.
#[test]
fn nofile_exhaustion_fails_cleanly() {
    let ctx = Ctx::new("proc-nofile");
    let mut h = ctx.child("proc_nofile").start();
    let rounds = drain_ok_lines(&mut h);
    assert_eq!(rounds, 3 * NOFILE_LIMITS.len());
    h.wait_ok();
    ctx.finish();
}

/// Runs an RLIMIT_NPROC role as uid [`LIMITED_UID`] (root ignores the limit) and
/// prints its `ok` lines; `false` if the helper cannot run as that user
/// (the reason is printed).
fn run_nproc_role(ctx: &Ctx, role: &str) -> bool {
    if rustix::process::geteuid().as_raw() != 0 {
        println!("skipped: not root, cannot run a helper as uid {LIMITED_UID}");
        return false;
    }
    let mut h = match ctx.child(role).user(LIMITED_UID, LIMITED_UID).spawn() {
        Ok(h) => h,
        Err(e) => {
            println!("skipped: cannot start a helper as uid {LIMITED_UID}: {e}");
            return false;
        }
    };
    drain_ok_lines(&mut h);
    h.wait_ok();
    true
}

/// Reads a helper's `ok ...` lines up to `done`, echoing them; returns how
/// many there were.
fn drain_ok_lines(h: &mut harness::Helper) -> usize {
    let mut n = 0;
    loop {
        let l = h.line();
        if l == "done" {
            return n;
        }
        assert!(l.starts_with("ok "), "{l}");
        println!("case 39: {}", &l[3..]);
        n += 1;
    }
}

/// RELIABILITY case 39 (RLIMIT_NPROC), run as uid 64999 because root
/// ignores the limit: with the limit exhausted the fork server's launch and
/// a Spawn start return `Err`; Spawn children at the limit, and Fork in a
/// Spawn child, fail cleanly (no panic, no child or descriptor left) and
/// work again once the limit is raised. Skipped, with the reason printed,
/// where a helper cannot run as that uid.
#[test]
fn nproc_exhaustion_fails_cleanly() {
    let ctx = Ctx::new("proc-nproc");
    run_nproc_role(&ctx, "proc_nproc");
    ctx.finish();
}

/// RELIABILITY case 39 (RLIMIT_NPROC), first start: a program whose first
/// start happens off its main thread with RLIMIT_NPROC exhausted gets
/// `Err`, not a panic, although shmproc's launcher thread cannot be created
/// either. Run as uid 64999 (root ignores the limit).
#[test]
fn nproc_exhausted_first_start_off_main_thread_is_err() {
    let ctx = Ctx::new("proc-nproc1");
    run_nproc_role(&ctx, "proc_nproc_first");
    ctx.finish();
}

/// RELIABILITY case 43 (complement to tests/process.rs): fork is refused in
/// a multi-threaded helper, accepted in a single-threaded Spawn child,
/// refused there while a second thread runs and accepted after it ended.
/// (The `allow_fork_with_threads` override is `unsafe` and tests deny
/// `unsafe`, so it is not exercised here.)
#[test]
fn fork_only_when_single_threaded() {
    let ctx = Ctx::new("proc-forkrules");
    let mut h = ctx.child("proc_fork_rules").start();
    assert_eq!(h.line(), "done");
    h.wait_ok();
    ctx.finish();
}

/// RELIABILITY case 41, plain processes (pools come later): a panic, an
/// exit with code 7, SIGKILL and SIGSEGV in the middle of the task, under
/// ForkServer, Spawn and Fork (forked from a Spawn child), each give their
/// specific `ProcessFailed { failure: Panicked(msg) | Exited(7) |
/// Signaled(9) | Signaled(11) }` and exit code, within the hang guard.
#[test]
fn crashes_give_their_specific_errors() {
    let ctx = Ctx::new("proc-crashes");
    let mut h = ctx.child("proc_crashes").start();
    for m in ["forkserver", "spawn", "fork"] {
        let rest = h.expect(&format!("ok {m}"));
        println!("case 41: {m}: panic, exit 7, SIGKILL, SIGSEGV reported in {rest} ms");
    }
    h.wait_ok();
    ctx.finish();
}

/// RELIABILITY case 45: 50 children per start method (Fork from a Spawn
/// child) sleeping 20 ms, their handles dropped without `join` ->
/// `active_children()` empties (30 s guard), no zombie and no descriptor is
/// left in the parent.
#[test]
fn dropped_handles_leave_no_zombies() {
    let ctx = Ctx::new("proc-dropped");
    let mut h = ctx.child("proc_dropped").arg("N", "50").start();
    for m in ["forkserver", "spawn", "fork"] {
        assert_eq!(h.line(), format!("ok {m}"));
    }
    h.wait_ok();
    ctx.finish();
}

/// Python's exit semantics (RELIABILITY 44's normal-exit side): a parent
/// that returns without joining waits at exit for its non-daemon child (its
/// marker file exists once the parent has exited) and terminates its daemon
/// child; the daemon and the fork server are gone within 10 s of the
/// parent's exit. Under ForkServer and Spawn (the helper cannot fork).
#[test]
fn exit_waits_for_children_and_ends_daemons() {
    let ctx = Ctx::new("proc-atexit");
    let dir = ctx.private_dir("atexit");
    for m in THREADED_METHODS {
        let marker: PathBuf = dir.join(format!("marker-{m}"));
        let mut h = ctx.child("proc_atexit").arg("METHOD", m.as_str()).arg("PATH", &marker).start();
        let pids: Vec<u32> = h.expect("pids").split_whitespace().map(|p| p.parse().expect("pid")).collect();
        let mut procs = vec![("daemon child", pids[1], start_time(pids[1]).unwrap_or(0))];
        if pids[2] != 0 {
            procs.push(("fork server", pids[2], start_time(pids[2]).unwrap_or(0)));
        }
        h.wait_ok();
        assert_eq!(
            fs::read_to_string(&marker).ok().as_deref(),
            Some("done"),
            "{m}: the non-daemon child's marker is missing after the parent exited"
        );
        if let Err(left) = wait_gone(&procs) {
            panic!("{m}: still running {GONE_GUARD:?} after the parent exited: {left:?}");
        }
        fs::remove_file(&marker).expect("remove the marker");
    }
    ctx.finish();
}

/// Python's exit semantics in a child: a Spawn child whose task returns
/// while its non-daemon child still runs waits for it before exiting
/// (Python's `_bootstrap` calls `_exit_function`, which joins the
/// children), so the grandchild's marker appears.
#[test]
fn child_exit_waits_for_grandchildren() {
    let ctx = Ctx::new("proc-childexit");
    let dir = ctx.private_dir("childexit");
    for m in [StartMethod::Fork, StartMethod::Spawn, StartMethod::ForkServer] {
        let marker = dir.join(format!("marker-{m}"));
        let mut h = ctx.child("proc_child_exit").arg("METHOD", m.as_str()).arg("PATH", &marker).start();
        h.expect("pids");
        h.wait_ok();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !marker.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(marker.exists(), "{m}: the grandchild did not finish: it was killed with its parent");
        fs::remove_file(&marker).expect("remove the marker");
    }
    ctx.finish();
}
