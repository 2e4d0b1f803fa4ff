//! `Process` and the start methods, driven from the (multi-threaded) test
//! harness: Spawn and ForkServer never fork the harness itself; the Fork
//! start method is exercised inside a spawned child, which is
//! single-threaded.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shmproc::{
    CloseError, Context, Error, JoinError, JoinTimeoutError, Process, ProcessFailure, Segment, Shared, StartMethod,
    Task,
};

const METHODS: [StartMethod; 2] = [StartMethod::Spawn, StartMethod::ForkServer];

fn square(x: u64) -> u64 {
    x * x
}

fn boom(_: ()) -> u32 {
    panic!("kaboom")
}

fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms))
}

fn exit_with(code: i32) {
    std::process::exit(code)
}

fn who_am_i(_: ()) -> (u32, String, bool, Option<u32>) {
    let me = shmproc::current_process();
    (me.pid(), me.name().to_owned(), me.is_daemon(), shmproc::parent_process().map(|p| p.pid()))
}

fn unique(tag: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!("t-process-{tag}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

#[test]
fn results_come_back_under_each_method() {
    for m in METHODS {
        let ctx = Context::new(m);
        let mut children: Vec<_> = (1..=5).map(|i| ctx.spawn(square, i).expect("start")).collect();
        let pids: Vec<u32> = children.iter().map(|p| p.pid()).collect();
        assert!(pids.iter().all(|&p| p != std::process::id()));
        let out: Vec<u64> = children.iter_mut().map(|p| p.join().expect("join")).collect();
        assert_eq!(out, [1, 4, 9, 16, 25], "{m}");
        for p in &mut children {
            assert!(!p.is_alive());
            assert!(p.exitcode().expect("exited").success());
            let first = p.join().expect("join again");
            assert_eq!(p.join().expect("and again"), first, "join is repeatable");
        }
    }
}

#[test]
fn names_daemon_flag_and_parent_are_visible_in_the_child() {
    for m in METHODS {
        let mut p =
            Process::builder().name("worker-7").daemon(true).start_method(m).spawn(who_am_i, ()).expect("start");
        assert_eq!(p.name(), "worker-7");
        assert!(p.is_daemon());
        let (pid, name, daemon, parent) = p.join().expect("join");
        assert_eq!(pid, p.pid());
        assert_eq!(name, "worker-7");
        assert!(daemon);
        assert_eq!(parent, Some(std::process::id()));
        let mut q = Context::new(m).spawn(who_am_i, ()).expect("start");
        assert!(q.name().starts_with("Process-"), "{}", q.name());
        assert!(!q.join().expect("join").2);
    }
}

#[test]
fn a_panic_is_reported_with_its_message() {
    for m in METHODS {
        let mut p = Context::new(m).spawn(boom, ()).expect("start");
        match p.join() {
            Err(JoinError::Panicked { message: msg, pid, .. }) => {
                assert!(msg.contains("kaboom"), "{msg}");
                assert_eq!(pid, p.pid());
            }
            other => panic!("{m}: {other:?}"),
        }
        assert_eq!(p.exitcode().expect("exited").code(), Some(1));
    }
}

/// Encodes fine in the child, never decodes in the parent.
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

fn give_undecodable(_: ()) -> Undecodable {
    Undecodable
}

/// Encodes in the parent, never decodes in the child.
fn take_undecodable(_: Undecodable) -> u8 {
    1
}

/// Which variant a join error is, named the same for both error types.
fn join_variant(e: &JoinError) -> &'static str {
    match e {
        JoinError::Panicked { .. } => "Panicked",
        JoinError::Signaled { .. } => "Signaled",
        JoinError::Exited { .. } => "Exited",
        JoinError::CouldNotRun { .. } => "CouldNotRun",
        JoinError::Failed(_) => "Failed",
        _ => "other",
    }
}

fn join_timeout_variant(e: &JoinTimeoutError) -> &'static str {
    match e {
        JoinTimeoutError::Timeout => "Timeout",
        JoinTimeoutError::Panicked { .. } => "Panicked",
        JoinTimeoutError::Signaled { .. } => "Signaled",
        JoinTimeoutError::Exited { .. } => "Exited",
        JoinTimeoutError::CouldNotRun { .. } => "CouldNotRun",
        JoinTimeoutError::Failed(_) => "Failed",
        _ => "other",
    }
}

/// Joins one child with `join` and with a bounded twin.
type JoinTwice = dyn FnMut() -> (Result<(), JoinError>, Result<(), JoinTimeoutError>);

/// Every variant of `JoinError` and `JoinTimeoutError`, each reached by a
/// child (the same child gives the same error to `join`, `join_timeout`
/// and `join_deadline`), and each converted into `Error` by `?`.
#[test]
fn every_join_error_variant_is_reached() {
    let guard = Duration::from_secs(60);
    for m in METHODS {
        let ctx = Context::new(m);
        let children: Vec<(&str, Box<JoinTwice>)> = vec![
            ("Panicked", {
                let mut p = ctx.spawn(boom, ()).expect("start");
                Box::new(move || (p.join().map(drop), p.join_timeout(guard).map(drop)))
            }),
            ("Signaled", {
                let mut p = ctx.spawn(sleep_ms, 60_000).expect("start");
                p.kill().expect("kill");
                Box::new(move || (p.join(), p.join_deadline(std::time::Instant::now() + guard)))
            }),
            ("Exited", {
                let mut p = ctx.spawn(exit_with, 4).expect("start");
                Box::new(move || (p.join(), p.join_timeout(Duration::MAX)))
            }),
            ("CouldNotRun", {
                let mut p = ctx.spawn(take_undecodable, Undecodable).expect("start");
                Box::new(move || (p.join().map(drop), p.join_timeout(guard).map(drop)))
            }),
            ("Failed", {
                let mut p = ctx.spawn(give_undecodable, ()).expect("start");
                Box::new(move || (p.join().map(drop), p.join_timeout(guard).map(drop)))
            }),
        ];
        for (want, mut join) in children {
            let (e, t) = join();
            let e = e.expect_err(want);
            let t = t.expect_err(want);
            assert_eq!(join_variant(&e), want, "{m}: {e:?}");
            assert_eq!(join_timeout_variant(&t), want, "{m}: {t:?}");
            assert_eq!(e.to_string(), t.to_string());
            let converted = Error::from(e);
            match (want, &converted) {
                ("Failed", Error::Codec { .. }) => {}
                ("Panicked", Error::ProcessFailed { failure: ProcessFailure::Panicked(_), .. })
                | ("Signaled", Error::ProcessFailed { failure: ProcessFailure::Signaled(9), .. })
                | ("Exited", Error::ProcessFailed { failure: ProcessFailure::Exited(4), .. })
                | ("CouldNotRun", Error::ProcessFailed { failure: ProcessFailure::TaskError(_), .. }) => {}
                _ => panic!("{m}: {want} became {converted:?}"),
            }
            assert_eq!(Error::from(t).to_string(), converted.to_string());
        }
        let mut slow = ctx.spawn(sleep_ms, 60_000).expect("start");
        let t = slow.join_timeout(Duration::ZERO).expect_err("still running");
        assert_eq!(join_timeout_variant(&t), "Timeout");
        assert!(matches!(Error::from(t), Error::Timeout));
        let t = slow.join_deadline(std::time::Instant::now()).expect_err("still running");
        assert_eq!(join_timeout_variant(&t), "Timeout");
        slow.kill().expect("kill");
        assert!(matches!(slow.join(), Err(JoinError::Signaled { signal: 9, .. })));
    }
}

#[test]
fn exit_codes_and_signals_are_reported() {
    for m in METHODS {
        let mut p = Context::new(m).spawn(exit_with, 3).expect("start");
        match p.join() {
            Err(JoinError::Exited { code: 3, .. }) => {}
            other => panic!("{m}: {other:?}"),
        }
        assert_eq!(p.exitcode().expect("exited").python(), 3);

        let mut k = Context::new(m).spawn(sleep_ms, 60_000).expect("start");
        assert!(k.is_alive());
        assert!(matches!(k.join_timeout(Duration::from_millis(20)), Err(JoinTimeoutError::Timeout)));
        k.kill().expect("kill");
        match k.join() {
            Err(JoinError::Signaled { signal: 9, .. }) => {}
            other => panic!("{m}: {other:?}"),
        }
        assert_eq!(k.exitcode().expect("exited").python(), -9);

        let mut t = Context::new(m).spawn(sleep_ms, 60_000).expect("start");
        t.terminate().expect("terminate");
        match t.join() {
            Err(JoinError::Signaled { signal: 15, .. }) => {}
            other => panic!("{m}: {other:?}"),
        }
        // Signalling a reaped child is harmless.
        t.kill().expect("kill after exit");
    }
}

#[derive(Serialize, Deserialize)]
struct Job {
    base: u64,
    items: Vec<u64>,
}

impl Task for Job {
    type Output = u64;
    fn run(self) -> u64 {
        self.items.iter().map(|i| i + self.base).sum()
    }
}

#[test]
fn task_types_run_like_subclassed_processes() {
    for m in METHODS {
        let mut p = Context::new(m).start(Job { base: 10, items: vec![1, 2, 3] }).expect("start");
        assert_eq!(p.join().expect("join"), 36);
    }
    let mut p = Process::start(Job { base: 0, items: vec![5] }).expect("start");
    assert_eq!(p.join().expect("join"), 5);
}

fn sum_len(v: Vec<u8>) -> (usize, Vec<u8>) {
    (v.len(), vec![v.iter().fold(0u8, |a, b| a.wrapping_add(*b)); v.len()])
}

#[test]
fn large_arguments_and_results_travel() {
    for m in METHODS {
        let big: Vec<u8> = (0..3 * 1024 * 1024).map(|i| i as u8).collect();
        let mut p = Context::new(m).spawn(sum_len, big.clone()).expect("start");
        let (n, back) = p.join().expect("join");
        assert_eq!(n, big.len());
        assert_eq!(back.len(), big.len());
    }
}

fn write_into(seg: Segment) -> usize {
    seg.write_at(0, b"from the child").expect("write");
    seg.len()
}

fn bump(counter: Shared<AtomicU64>) -> u64 {
    for _ in 0..1000 {
        counter.fetch_add(1, Ordering::Relaxed);
    }
    counter.load(Ordering::Relaxed)
}

#[test]
fn shared_handles_pass_as_arguments() {
    for m in METHODS {
        let anon = Segment::anonymous(64).expect("segment");
        let mut p = Context::new(m).spawn(write_into, anon.clone()).expect("start");
        assert_eq!(p.join().expect("join"), 64);
        let mut buf = [0u8; 14];
        anon.read_at(0, &mut buf).expect("read");
        assert_eq!(&buf, b"from the child");

        let name = unique("named");
        let named = Segment::create(&name, 32).expect("segment");
        let mut p = Context::new(m).spawn(write_into, named.clone()).expect("start");
        assert_eq!(p.join().expect("join"), 32);
        named.read_at(0, &mut buf).expect("read");
        assert_eq!(&buf, b"from the child");

        let counter = Shared::<AtomicU64>::anonymous(|_| {}).expect("counter");
        let mut kids: Vec<_> = (0..4).map(|_| Context::new(m).spawn(bump, counter.clone()).expect("start")).collect();
        for k in &mut kids {
            k.join().expect("join");
        }
        assert_eq!(counter.load(Ordering::Relaxed), 4000);
    }
}

fn nested(m: StartMethod) -> Result<u64, String> {
    let mut p = Context::new(m).spawn(square, 9).map_err(|e| e.to_string())?;
    p.join().map_err(|e| e.to_string())
}

fn forked_in_child(_: ()) -> Result<(u64, u64), String> {
    // A spawned child runs its task before `main`, single-threaded, so the
    // fork start method is allowed here.
    let mut p = Process::builder().start_method(StartMethod::Fork).spawn(square, 12).map_err(|e| e.to_string())?;
    let mut q = Process::fork(|| 5u64 + 6).map_err(|e| e.to_string())?;
    Ok((p.join().map_err(|e| e.to_string())?, q.join().map_err(|e| e.to_string())?))
}

#[test]
fn fork_works_in_a_single_threaded_child() {
    let mut p = Context::new(StartMethod::Spawn).spawn(forked_in_child, ()).expect("start");
    assert_eq!(p.join().expect("join"), Ok((144, 11)));
}

#[test]
fn children_can_start_children_but_daemons_cannot() {
    for m in METHODS {
        let mut p = Context::new(m).spawn(nested, m).expect("start");
        assert_eq!(p.join().expect("join"), Ok(81));
        let mut d = Context::new(m).process().daemon(true).spawn(nested, m).expect("start");
        let err = d.join().expect("join").expect_err("a daemon cannot have children");
        assert!(err.contains("daemonic"), "{err}");
    }
}

/// RELIABILITY case 43: fork is refused while the parent has several
/// threads; spawn and forkserver work with 16 busy threads holding locks.
#[test]
fn fork_is_refused_with_threads_and_others_work_under_load() {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let lock = std::sync::Arc::new(std::sync::Mutex::new(0u64));
    let busy: Vec<_> = (0..16)
        .map(|_| {
            let (stop, lock) = (stop.clone(), lock.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let mut g = lock.lock().expect("lock");
                    *g += 1;
                    let v: Vec<u8> = vec![0; 4096]; // malloc under the lock
                    std::hint::black_box(v);
                    println!("busy {}", *g % 2); // stdout's lock too
                }
            })
        })
        .collect();
    let r = Process::builder().start_method(StartMethod::Fork).spawn(square, 2);
    match r {
        Err(Error::ForkUnsafe { threads }) => assert!(threads > 16),
        other => panic!("{other:?}"),
    }
    assert!(matches!(Process::fork(|| 1u8), Err(Error::ForkUnsafe { .. })));
    for m in METHODS {
        for i in 0..5u64 {
            let mut p = Context::new(m).spawn(square, i).expect("start");
            assert_eq!(p.join().expect("join"), i * i);
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in busy {
        t.join().expect("busy thread");
    }
}

/// How many of `children` are zombies of `pid`. Only this test's own
/// children are looked at: other tests of this binary run at the same
/// time, and their children are zombies for a moment before their joins.
fn zombies_among(pid: u32, children: &[u32]) -> usize {
    let mut n = 0;
    for child in children {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else { continue };
        let Some(rest) = stat.rsplit_once(") ").map(|x| x.1) else { continue };
        let mut f = rest.split_whitespace();
        let state = f.next();
        let ppid: Option<u32> = f.next().and_then(|p| p.parse().ok());
        if state == Some("Z") && ppid == Some(pid) {
            n += 1;
        }
    }
    n
}

fn nothing(_: ()) {}

/// RELIABILITY case 45: 1 000 short-lived children, half of the handles
/// dropped without join -> no zombie is left once `active_children()` ran.
#[test]
fn no_zombies_after_many_short_children() {
    let ctx = Context::new(StartMethod::ForkServer);
    let mut kept = Vec::new();
    let mut pids = Vec::new();
    for i in 0..1000 {
        let p = ctx.spawn(nothing, ()).expect("start");
        pids.push(p.pid());
        if i % 2 == 0 {
            kept.push(p);
        }
    }
    for p in &mut kept {
        p.join().expect("join");
    }
    // The dropped ones finish on their own; reap them.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !shmproc::active_children().is_empty() {
        assert!(std::time::Instant::now() < deadline, "children still running after 30 s");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(zombies_among(std::process::id(), &pids), 0);
}

#[test]
fn start_methods_parse_and_switch() {
    assert_eq!("forkserver".parse::<StartMethod>().expect("parse"), StartMethod::ForkServer);
    assert!("thread".parse::<StartMethod>().is_err());
    assert_eq!(StartMethod::all().len(), 3);
    assert!(shmproc::cpu_count() >= 1);
    assert_eq!(shmproc::current_process().name(), "MainProcess");
    assert!(shmproc::parent_process().is_none());
}

fn late_write(seg: Segment) {
    std::thread::sleep(Duration::from_millis(200));
    seg.write_at(0, b"grandchild done").expect("write");
}

fn leave_a_grandchild((m, seg): (StartMethod, Segment)) -> u32 {
    // Not joined: the child's end waits for it, as Python's does.
    let p = Context::new(m).spawn(late_write, seg).expect("grandchild");
    p.pid()
}

/// Regression: a child's unjoined non-daemon children are waited for when
/// its task returns (they used to be killed by the parent-death signal).
#[test]
fn a_child_waits_for_its_own_children() {
    for m in METHODS {
        let seg = Segment::anonymous(16).expect("segment");
        let mut p = Context::new(m).spawn(leave_a_grandchild, (m, seg.clone())).expect("start");
        p.join().expect("join");
        let mut buf = [0u8; 15];
        seg.read_at(0, &mut buf).expect("read");
        assert_eq!(&buf, b"grandchild done", "{m}");
    }
}

/// Set by a process just before it starts a child: a child that sees it
/// (with another pid than its own) is a forked copy of its parent.
static STARTER_PID: AtomicU64 = AtomicU64::new(0);

/// How this process was really started, read from what it inherited: a
/// forked copy sees its parent's `STARTER_PID`; a fork-server child was
/// forked from a process executed as the fork server; a spawned child was
/// executed with its task's variable.
fn how_started() -> String {
    let mark = STARTER_PID.load(Ordering::SeqCst);
    if mark != 0 && mark != u64::from(std::process::id()) {
        return "fork".into();
    }
    let env = std::fs::read("/proc/self/environ").unwrap_or_default();
    let has = |prefix: &[u8]| env.split(|&b| b == 0).any(|var| var.starts_with(prefix));
    if has(b"SHMPROC_FORKSERVER=") {
        "forkserver".into()
    } else if has(b"SHMPROC_CHILD=") {
        "spawn".into()
    } else {
        "unknown".into()
    }
}

/// What a child reports: its default start method, how it was started,
/// and the same two for a grandchild it starts with its default method.
type Lineage = ((StartMethod, String), (StartMethod, String));

fn report_method(_: ()) -> (StartMethod, String) {
    (shmproc::start_method(), how_started())
}

fn report_lineage(_: ()) -> Result<Lineage, String> {
    let me = (shmproc::start_method(), how_started());
    STARTER_PID.store(u64::from(std::process::id()), Ordering::SeqCst);
    let mut g = Process::spawn(report_method, ()).map_err(|e| e.to_string())?;
    Ok((me, g.join().map_err(|e| e.to_string())?))
}

/// Runs in a spawned child (single-threaded, so the fork method is
/// allowed): for each method, a child started through a `Context` and one
/// started after `set_start_method`, each with its grandchild.
fn lineages(_: ()) -> Result<Vec<(StartMethod, Lineage, Lineage)>, String> {
    let mut out = Vec::new();
    for m in StartMethod::all() {
        STARTER_PID.store(u64::from(std::process::id()), Ordering::SeqCst);
        let mut c = Context::new(m).spawn(report_lineage, ()).map_err(|e| e.to_string())?;
        let via_ctx = c.join().map_err(|e| e.to_string())??;
        shmproc::set_start_method(m).map_err(|e| e.to_string())?;
        let mut p = Process::spawn(report_lineage, ()).map_err(|e| e.to_string())?;
        let via_default = p.join().map_err(|e| e.to_string())??;
        out.push((m, via_ctx, via_default));
    }
    Ok(out)
}

// CPython: _TestStartMethod.test_context (a context's child reports the
// context's method from `get_start_method()`) and test_set_get (likewise
// after `set_start_method`); here the grandchild, started with the child's
// default, is checked to start the same way too.
#[test]
fn children_inherit_their_start_method() {
    let mut p = Context::new(StartMethod::Spawn).spawn(lineages, ()).expect("start");
    let all = p.join().expect("join").expect("lineages");
    assert_eq!(all.len(), 3);
    for (m, via_ctx, via_default) in all {
        let want = (m, m.as_str().to_owned());
        for (how, (child, grandchild)) in [("context", via_ctx), ("set_start_method", via_default)] {
            assert_eq!(child, want, "child started with {m} via {how}");
            assert_eq!(grandchild, want, "grandchild of a {m} child via {how}");
        }
    }
}

/// The state letter of `pid` in `/proc` (`Z` for a zombie), if it exists.
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

/// Blocks until the child's pidfd is readable (it exited), without
/// reaping it.
fn wait_exited<R>(p: &Process<R>) {
    use std::os::fd::AsFd;
    let fd = p.as_fd();
    let mut fds = [rustix::event::PollFd::new(&fd, rustix::event::PollFlags::IN)];
    let guard = rustix::time::Timespec { tv_sec: 30, tv_nsec: 0 };
    let n = rustix::event::poll(&mut fds, Some(&guard)).expect("poll");
    assert_eq!(n, 1, "hang guard: the child did not exit");
}

// CPython: _TestProcess.test_close: close() refuses a running process
// (ValueError; here the handle comes back), and once the process exited
// it releases what the handle holds. Later calls on a closed process
// (ValueError in Python) do not compile here: `close` takes the handle.
#[test]
fn close_refuses_a_running_child_and_releases_an_exited_one() {
    for m in METHODS {
        let p = Context::new(m).spawn(sleep_ms, 60_000).expect("start");
        let pid = p.pid();
        let err = p.close().expect_err("still running");
        assert!(err.to_string().contains("still running"), "{err}");
        assert!(format!("{err:?}").starts_with("Running"));
        assert!(matches!(err, CloseError::Running(_)));
        let p = err.into_inner();
        assert!(p.is_alive(), "the handle came back untouched");
        let err = p.close().expect_err("still running");
        // Killed first, so that the handle dropped by the conversion leaves
        // a child that the registry reaps (at the next start below).
        rustix::process::kill_process(
            rustix::process::Pid::from_raw(pid as i32).expect("pid"),
            rustix::process::Signal::KILL,
        )
        .expect("kill");
        assert!(matches!(Error::from(err), Error::InvalidArgument { .. }));
    }
    let mut p = Context::new(StartMethod::Spawn).spawn(close_releases, ()).expect("start");
    assert_eq!(p.join().expect("join"), Ok(()));
}

/// The descriptor number of this process's pidfd of `pid` (not yet
/// reaped: the fdinfo of a pidfd of a reaped child says `Pid: -1`).
fn pidfd_number_of(pid: u32) -> Option<String> {
    let want = format!("Pid:\t{pid}\n");
    std::fs::read_dir("/proc/self/fdinfo")
        .ok()?
        .flatten()
        .find(|e| std::fs::read_to_string(e.path()).is_ok_and(|info| info.contains(&want)))
        .map(|e| e.file_name().to_string_lossy().into_owned())
}

/// In a spawned child (one thread, so no other thread opens descriptors
/// meanwhile and a closed descriptor number stays free): under each
/// method, `close` of a joined child and of an exited, unjoined one
/// releases the pidfd and reaps the zombie.
fn close_releases(_: ()) -> Result<(), String> {
    let fd_open = |n: &str| std::fs::symlink_metadata(format!("/proc/self/fd/{n}")).is_ok();
    for m in StartMethod::all() {
        // Joined, then closed.
        let mut p = Context::new(m).spawn(square, 2).map_err(|e| e.to_string())?;
        wait_exited(&p);
        let fd = pidfd_number_of(p.pid()).ok_or(format!("{m}: no pidfd"))?;
        assert_eq!(p.join().map_err(|e| e.to_string())?, 4);
        p.close().map_err(|e| e.to_string())?;
        assert!(!fd_open(&fd), "{m}: the pidfd was closed");

        // Exited, never joined: close reaps the zombie.
        let p = Context::new(m).spawn(square, 3).map_err(|e| e.to_string())?;
        let pid = p.pid();
        wait_exited(&p);
        let fd = pidfd_number_of(pid).ok_or(format!("{m}: no pidfd"))?;
        assert_eq!(proc_state(pid), Some('Z'), "{m}: exited, not yet reaped");
        p.close().map_err(|e| e.to_string())?;
        assert_eq!(proc_state(pid), None, "{m}: reaped by close");
        assert!(!fd_open(&fd), "{m}: the pidfd was closed");
        assert!(shmproc::active_children().iter().all(|c| c.pid() != pid));
    }
    Ok(())
}

/// Marks that the task runs, then blocks forever.
fn block_forever(started: Shared<AtomicU64>) {
    started.store(1, Ordering::SeqCst);
    loop {
        std::thread::park();
    }
}

/// Waits (hang guard 30 s) until `flag` is set.
fn wait_set(flag: &Shared<AtomicU64>) -> Result<(), String> {
    let guard = std::time::Instant::now() + Duration::from_secs(30);
    while flag.load(Ordering::SeqCst) == 0 {
        if std::time::Instant::now() > guard {
            return Err("hang guard: the child never started".into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

/// `interrupt` on a blocked child of method `m`; the signal `join` reports.
fn interrupt_blocked(m: StartMethod) -> Result<i32, String> {
    let started = Shared::<AtomicU64>::anonymous(|_| {}).map_err(|e| e.to_string())?;
    let mut p = Context::new(m).spawn(block_forever, started.clone()).map_err(|e| e.to_string())?;
    wait_set(&started)?;
    p.interrupt().map_err(|e| e.to_string())?;
    match p.join() {
        Err(JoinError::Signaled { signal, .. }) => {
            assert_eq!(p.exitcode().map(|e| e.python()), Some(-signal));
            Ok(signal)
        }
        other => Err(format!("{m}: {:?}", other.map_err(|e| e.to_string()))),
    }
}

fn interrupt_forked(_: ()) -> Result<i32, String> {
    // A spawned child is single-threaded: the fork method is allowed here.
    interrupt_blocked(StartMethod::Fork)
}

// CPython: _TestProcess.test_interrupt_no_handler (3.14): interrupt()
// sends SIGINT; a child whose SIGINT action is the default ends by it
// (exitcode -SIGINT). Python's test_interrupt expects exit code 1 from a
// child's KeyboardInterrupt; a Rust child has no such handler.
#[test]
fn interrupt_ends_a_blocked_child_with_sigint() {
    for m in METHODS {
        assert_eq!(interrupt_blocked(m), Ok(2), "{m}");
    }
    let mut p = Context::new(StartMethod::Spawn).spawn(interrupt_forked, ()).expect("start");
    assert_eq!(p.join().expect("join"), Ok(2), "fork");
}
