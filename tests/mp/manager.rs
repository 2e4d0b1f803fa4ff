//! `Manager` against dying, stopped and hostile peers: RELIABILITY case 47
//! (the server SIGKILLed: every proxy call, one blocked at the time, new
//! proxies and children's proxies return `ManagerDead`; a manager restarted
//! under the same name does not serve the old proxies), clients SIGKILLed
//! and SIGSTOPped while others keep working and the data stays consistent,
//! `update` counters from several processes (no lost increment), case 39
//! (`Manager::start` with RLIMIT_NOFILE at 32.. and RLIMIT_NPROC
//! exhausted: `Err`, nothing leaked), case 44 (the starting process
//! SIGKILLed: its managers exit) and case 48's hello check plus garbage
//! requests (error replies; the server lives).

use std::time::{Duration, Instant};

use rustix::process::{Pid, Resource, Rlimit, Signal, getrlimit, kill_process, setrlimit};
use shmproc::{Context, DictProxy, Error, Manager, Pipe, Queue, StartMethod};

use crate::harness::{self, Ctx, HANG_GUARD, arg, fd_count, proc_state, say, variant};

/// The uid that the RLIMIT_NPROC helper runs as (root ignores the limit).
const LIMITED_UID: u32 = 64_998;

/// Runs a helper role of this area (roles are named `manager_*`).
pub(crate) fn run_role(role: &str) {
    match role {
        "manager_client" => role_client(),
        "manager_orphans" => role_orphans(),
        "manager_nofile" => role_nofile(),
        "manager_nproc" => role_nproc(),
        other => panic!("unknown manager role {other:?}"),
    }
}

fn add(old: Option<u64>, n: u64) -> Option<u64> {
    Some(old.unwrap_or(0) + n)
}

/// An update that never returns (it keeps the calling client blocked).
fn hang(old: Option<u64>, _: ()) -> Option<u64> {
    std::thread::sleep(Duration::from_secs(600));
    old
}

fn signal(pid: u32, sig: Signal) {
    let pid = Pid::from_raw(pid as i32).expect("pid");
    kill_process(pid, sig).unwrap_or_else(|e| panic!("kill({pid:?}, {sig:?}): {e}"));
}

fn is(what: &str, r: shmproc::Result<impl std::fmt::Debug>) {
    match r {
        Err(Error::ManagerDead) => {}
        other => panic!("{what}: expected ManagerDead, got {other:?}"),
    }
}

/// Whether `pid` has exited (gone, or a zombie).
fn gone(pid: u32) -> bool {
    proc_state(pid).is_none_or(|(s, _)| s == 'Z' || s == 'X')
}

fn wait_gone(what: &str, pid: u32) {
    harness::wait_until(what, || gone(pid));
}

// ---------------------------------------------------------------------------
// Case 47
// ---------------------------------------------------------------------------

/// Task: decodes a proxy from `bytes` and calls it; the error's variant.
fn call_decoded(bytes: Vec<u8>) -> String {
    match postcard::from_bytes::<DictProxy<String, u64>>(&bytes) {
        Ok(d) => match d.get(&"k".into()) {
            Err(e) => variant_or_dead(&e),
            Ok(v) => format!("answered {v:?}"),
        },
        Err(e) => format!("decode: {e}"),
    }
}

fn variant_or_dead(e: &Error) -> String {
    match e {
        Error::ManagerDead => "ManagerDead".into(),
        e => format!("{} ({e})", variant(e)),
    }
}

/// Task: calls a proxy it was given.
fn call_given(d: DictProxy<String, u64>) -> String {
    match d.get(&"k".into()) {
        Err(e) => variant_or_dead(&e),
        Ok(v) => format!("answered {v:?}"),
    }
}

/// RELIABILITY case 47: the server is SIGKILLed while one call is blocked
/// in it. The blocked call, every later call of every proxy, new proxies,
/// and a child given a proxy all return `ManagerDead`; a manager restarted
/// under the same name serves new proxies but never the old ones (here, or
/// in a new process decoding an old proxy).
#[test]
fn server_sigkill_makes_every_proxy_dead_and_a_restart_serves_no_stale_proxy() {
    let ctx = Ctx::new("mgr-kill");
    let name = ctx.name("m");
    let mgr = Manager::builder().name(&name).start().expect("start");
    let d = mgr.dict_named::<String, u64>("d").expect("dict");
    let l = mgr.list::<u64>().expect("list");
    d.insert("k".into(), 1).expect("insert");
    let old_bytes = postcard::to_allocvec(&d).expect("a named manager's proxy encodes");

    ctx.step("a call blocked in the server");
    let blocked = {
        let d = d.clone();
        std::thread::spawn(move || d.update(&"k".into(), hang, ()))
    };
    harness::wait_until("the blocked call is sent", || {
        std::thread::sleep(Duration::from_millis(50));
        !blocked.is_finished()
    });
    std::thread::sleep(Duration::from_millis(100));
    signal(mgr.pid(), Signal::KILL);
    ctx.step("the blocked call returns");
    let t = Instant::now();
    is("the blocked call", blocked.join().expect("thread"));
    println!("case 47: the blocked call returned ManagerDead {:?} after the kill", t.elapsed());
    wait_gone("the server exits", mgr.pid());
    assert!(!mgr.is_alive());

    ctx.step("every later call");
    is("get", d.get(&"k".into()));
    is("insert", d.insert("x".into(), 2));
    is("list push", l.push(1));
    is("list to_vec", l.to_vec());
    is("a new dict", mgr.dict::<u8, u8>());
    is("connecting by name to the dead server", Manager::connect(&name));
    let mut p = Context::new(StartMethod::Spawn).spawn(call_given, d.clone()).expect("spawn");
    assert_eq!(p.join_timeout(HANG_GUARD).expect("join: hang guard"), "ManagerDead");

    ctx.step("restart under the same name");
    drop(mgr); // the owner: removes the name
    let mgr2 = Manager::builder().name(&name).start().expect("restart under the same name");
    let d2 = mgr2.dict_named::<String, u64>("d").expect("new dict");
    assert_eq!(d2.get(&"k".into()).expect("get"), None, "a new manager starts empty");
    is("the old proxy after the restart", d.get(&"k".into()));
    let mut p = Context::new(StartMethod::Spawn).spawn(call_decoded, old_bytes).expect("spawn");
    assert_eq!(
        p.join_timeout(HANG_GUARD).expect("join: hang guard"),
        "ManagerDead",
        "an old proxy decoded in a new process"
    );
    mgr2.shutdown().expect("shutdown");
    drop((d, l, d2, mgr2));
    ctx.finish();
}

/// A SIGSTOPped server: stopping the manager (here, dropping the starting
/// handle) gives up on its answer after a bound and kills it; a call
/// blocked meanwhile then returns `ManagerDead`.
#[test]
fn a_stopped_server_does_not_hang_shutdown() {
    let ctx = Ctx::new("mgr-stopped");
    let mgr = Manager::start().expect("start");
    let d = mgr.dict::<String, u64>().expect("dict");
    d.insert("k".into(), 1).expect("insert");
    let pid = mgr.pid();
    signal(pid, Signal::STOP);
    ctx.step("drop the starting handle of a stopped server");
    let t = Instant::now();
    drop(mgr);
    println!("drop returned {:?} after the server was stopped", t.elapsed());
    wait_gone("the stopped server is killed", pid);
    is("a call after the stop", d.get(&"k".into()));
    drop(d);
    ctx.finish();
}

// ---------------------------------------------------------------------------
// Killed and stopped clients; counters from several processes
// ---------------------------------------------------------------------------

/// Role `manager_client`: connects to the manager `NAME` and, forever,
/// inserts `(ID, n) -> 2n` into dict `data` and adds 1 to `count-ID`;
/// says `running` after its first 100 rounds.
fn role_client() {
    let mgr = Manager::connect(&arg("NAME")).expect("connect");
    let id = arg("ID");
    let data = mgr.dict_named::<(String, u64), u64>("data").expect("data");
    let counts = mgr.dict_named::<String, u64>("counts").expect("counts");
    for n in 0u64.. {
        data.insert((id.clone(), n), 2 * n).expect("insert");
        counts.update(&format!("count-{id}"), add, 1).expect("update");
        if n == 100 {
            say("running");
        }
    }
}

/// A client SIGKILLed and another SIGSTOPped mid-stream (each at an
/// arbitrary point of a request) neither corrupt nor stall the server:
/// this process keeps working meanwhile, every entry is consistent, and
/// the stopped client works again after SIGCONT.
#[test]
fn killed_and_stopped_clients_do_not_stall_or_corrupt_the_server() {
    let ctx = Ctx::new("mgr-clients");
    let name = ctx.name("m");
    let mgr = Manager::builder().name(&name).start().expect("start");
    let counts = mgr.dict_named::<String, u64>("counts").expect("counts");
    let data = mgr.dict_named::<(String, u64), u64>("data").expect("data");
    let mut victim = ctx.child("manager_client").arg("NAME", &name).arg("ID", "killed").start();
    let mut sleeper = ctx.child("manager_client").arg("NAME", &name).arg("ID", "stopped").start();
    victim.expect("running");
    sleeper.expect("running");

    ctx.step("kill one client, stop the other");
    victim.kill();
    victim.wait_killed();
    signal(sleeper.pid(), Signal::STOP);
    let mine = "count-mine".to_string();
    for _ in 0..500 {
        counts.update(&mine, add, 1).expect("this client keeps working");
    }
    assert_eq!(counts.get(&mine).expect("get"), Some(500));
    let entries = data.items().expect("items");
    assert!(!entries.is_empty());
    for ((id, n), v) in &entries {
        assert_eq!(*v, 2 * n, "entry ({id}, {n}) is inconsistent");
    }
    let stopped_at = counts.get(&"count-stopped".into()).expect("get").expect("the stopped client counted");

    ctx.step("continue the stopped client");
    signal(sleeper.pid(), Signal::CONT);
    harness::wait_until("the stopped client works again", || {
        counts.get(&"count-stopped".into()).expect("get").is_some_and(|c| c > stopped_at + 10)
    });
    sleeper.kill();
    sleeper.wait_killed();
    mgr.shutdown().expect("shutdown");
    drop((counts, data, mgr));
    ctx.finish();
}

/// Task: `n` updates of `count` in dict `d`.
fn count_up((d, n): (DictProxy<String, u64>, u64)) -> Result<(), String> {
    for _ in 0..n {
        d.update(&"count".into(), add, 1).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Concurrent `update`s from several processes (Spawn and ForkServer
/// children, and this process's threads) lose no increment.
#[test]
fn concurrent_updates_from_several_processes_lose_nothing() {
    let ctx = Ctx::new("mgr-counters");
    let mgr = Manager::start().expect("start");
    let d = mgr.dict::<String, u64>().expect("dict");
    let mut kids = Vec::new();
    for m in [StartMethod::Spawn, StartMethod::ForkServer, StartMethod::Spawn, StartMethod::ForkServer] {
        kids.push(Context::new(m).spawn(count_up, (d.clone(), 500)).expect("spawn"));
    }
    count_up((d.clone(), 500)).expect("this process");
    for k in &mut kids {
        k.join_timeout(HANG_GUARD).expect("join: hang guard").expect("child");
    }
    assert_eq!(d.get(&"count".into()).expect("get"), Some(2500));
    mgr.shutdown().expect("shutdown");
    drop((d, mgr));
    ctx.finish();
}

// ---------------------------------------------------------------------------
// Hostile peers (case 48's hello check, garbage requests)
// ---------------------------------------------------------------------------

/// Garbage hellos (bad magic, bad pipe names, random bytes) are ignored;
/// a client that connects properly and sends garbage requests (unknown
/// operations, truncated payloads, unknown ids, a shutdown it may not
/// send, update records that name no function) gets an error reply for
/// each; the server lives and serves everyone else throughout.
#[test]
fn garbage_hellos_and_requests_get_nowhere() {
    let ctx = Ctx::new("mgr-garbage");
    let name = ctx.name("m");
    let mgr = Manager::builder().name(&name).start().expect("start");
    let d = mgr.dict::<String, u64>().expect("dict");
    let accept = Queue::<Vec<u8>>::open(&name).expect("open the accept queue");
    let mut rng = harness::Rng::new(0x6d67_7221);
    let magic = *b"SHMPMGR1";
    let mut hellos: Vec<Vec<u8>> = vec![
        vec![],
        b"hello".to_vec(),
        [&magic[..], &0u64.to_le_bytes(), b"/etc/passwd"].concat(),
        [&magic[..], &0u64.to_le_bytes(), b"shmproc-mgr-does-not-exist"].concat(),
        [&magic[..], &0u64.to_le_bytes(), &[0xff; 300][..]].concat(),
        [&magic[..], &0u64.to_le_bytes(), ctx.name("x").as_bytes()].concat(),
        [&magic[..], &[1, 2, 3][..]].concat(),
    ];
    for _ in 0..50 {
        let len = (rng.next() % 64) as usize;
        hellos.push((0..len).map(|_| rng.next() as u8).collect());
    }
    for h in hellos {
        accept.put(h).expect("put a garbage hello");
    }
    d.insert("alive".into(), 1).expect("the server serves after garbage hellos");

    ctx.step("a client sending garbage requests");
    let pipe_name = format!("shmproc-mgr-test-{}", ctx.prefix());
    let (mine, _theirs) = Pipe::builder().name(&pipe_name).duplex().expect("pipe");
    accept.put([&magic[..], &0u64.to_le_bytes(), pipe_name.as_bytes()].concat()).expect("hello");
    let ack = mine.recv_bytes_timeout(HANG_GUARD).expect("ack");
    assert_eq!(ack.first(), Some(&0), "ack {ack:?}");
    let _ = shmproc::Segment::unlink(&pipe_name);
    let mut requests: Vec<Vec<u8>> = vec![
        vec![],
        vec![10],
        vec![200, 0, 0, 0, 0, 0, 0, 0, 0],
        [&[30u8][..], &0u64.to_le_bytes()].concat(), // shutdown, not the owner
        [&[11u8][..], &12345u64.to_le_bytes(), b"key"].concat(),
        [&[1u8][..], &0u64.to_le_bytes(), &[1, 2]].concat(),
        [&[17u8][..], &1u64.to_le_bytes(), &[4, 0, 0, 0, 1, 2, 3, 4, 1, 0, 0, 0, 9]].concat(),
        [&[17u8][..], &1u64.to_le_bytes(), &[0xff, 0xff, 0xff, 0xff]].concat(),
        [&[22u8][..], &1u64.to_le_bytes()].concat(),
        [&[23u8][..], &1u64.to_le_bytes()].concat(),
    ];
    for _ in 0..200 {
        let len = (rng.next() % 40) as usize;
        let mut r: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if let Some(op) = r.first_mut() {
            *op %= 32; // mostly real operations, with garbage payloads
        }
        requests.push(r);
    }
    for r in &requests {
        mine.send_bytes(r).expect("send a garbage request");
        let reply = mine.recv_bytes_timeout(HANG_GUARD).expect("a reply to each request");
        assert!(matches!(reply.first(), Some(0 | 1)), "reply {reply:?} to {r:?}");
    }
    assert!(mgr.is_alive());
    assert_eq!(d.get(&"alive".into()).expect("get"), Some(1), "the server lives and kept its data");
    mine.close();
    mgr.shutdown().expect("shutdown");
    drop((d, mgr, accept, mine, _theirs));
    ctx.finish();
}

// ---------------------------------------------------------------------------
// Case 44
// ---------------------------------------------------------------------------

/// Role `manager_orphans`: starts a ForkServer and a Spawn manager, uses
/// them, says `pids <server> <server>`, and waits to be killed.
fn role_orphans() {
    let a = Manager::start().expect("forkserver manager");
    let b = Manager::builder().start_method(StartMethod::Spawn).start().expect("spawn manager");
    a.list::<u8>().expect("list").push(1).expect("push");
    b.list::<u8>().expect("list").push(1).expect("push");
    say(format!("pids {} {}", a.pid(), b.pid()));
    harness::wait_for_parent();
}

/// RELIABILITY case 44: the process that started two managers is
/// SIGKILLed; both servers exit (parent-death signal).
#[test]
fn parent_sigkill_takes_the_managers() {
    let ctx = Ctx::new("mgr-orphans");
    let mut h = ctx.child("manager_orphans").start();
    let pids: Vec<u32> = h.expect("pids").split_whitespace().map(|p| p.parse().expect("pid")).collect();
    assert_eq!(pids.len(), 2);
    for &p in &pids {
        assert!(!gone(p), "server {p} is running");
    }
    h.kill();
    h.wait_killed();
    let t = Instant::now();
    for &p in &pids {
        wait_gone("a manager server exits after its parent's SIGKILL", p);
    }
    println!("case 44: both manager servers gone {:?} after the parent's SIGKILL", t.elapsed());
    ctx.finish();
}

// ---------------------------------------------------------------------------
// Case 39
// ---------------------------------------------------------------------------

/// This process's children: `(pid, state)`.
fn children() -> Vec<(u32, char)> {
    let me = std::process::id();
    let Ok(rd) = std::fs::read_dir("/proc") else { return Vec::new() };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| proc_state(pid).filter(|&(_, ppid)| ppid == me).map(|(s, _)| (pid, s)))
        .collect()
}

fn set_soft(res: Resource, soft: Option<u64>) {
    let cur = getrlimit(res);
    setrlimit(res, Rlimit { current: soft, maximum: cur.maximum }).expect("setrlimit");
}

/// Role `manager_nofile` (case 39): with RLIMIT_NOFILE at 32 (and 33..36),
/// starts managers until a start fails; the failure is an `Err`, leaves no
/// child, and once the limit is restored a manager starts; when all are
/// stopped the descriptors are back to the baseline. Says `ok <limit>:
/// <error>` per limit, then `done`.
fn role_nofile() {
    let soft0 = getrlimit(Resource::Nofile).current;
    // Warm up: the fork server and the launcher thread exist from here on.
    Manager::start().expect("warm-up").shutdown().expect("shutdown");
    let _ = shmproc::active_children();
    let fds0 = fd_count();
    let kids0: Vec<u32> = children().into_iter().map(|(p, _)| p).collect();
    for limit in 32..37u64 {
        let mut held = Vec::new();
        set_soft(Resource::Nofile, Some(limit));
        let err = loop {
            match Manager::start() {
                Ok(m) if held.len() < 32 => held.push(m),
                Ok(_) => panic!("32 managers started with RLIMIT_NOFILE={limit}"),
                Err(e) => break e,
            }
        };
        set_soft(Resource::Nofile, soft0);
        let servers: Vec<u32> = held.iter().map(Manager::pid).collect();
        let stray: Vec<_> =
            children().into_iter().filter(|(p, s)| !kids0.contains(p) && !servers.contains(p) && *s != 'Z').collect();
        assert!(stray.is_empty(), "limit {limit}: the failed start left children {stray:?}");
        let m = Manager::start().expect("a start with the limit restored");
        m.dict::<u8, u8>().expect("dict").insert(1, 1).expect("insert");
        held.push(m);
        drop(held);
        let _ = shmproc::active_children();
        harness::wait_until("the stopped servers are reaped", || children().iter().all(|(p, _)| kids0.contains(p)));
        let _ = shmproc::active_children();
        assert_eq!(fd_count(), fds0, "limit {limit}: descriptors leaked");
        say(format!("ok {limit}: {err}"));
    }
    say("done");
}

/// Role `manager_nproc` (case 39, run as [`LIMITED_UID`]): with
/// RLIMIT_NPROC at 1, `Manager::start` (ForkServer and Spawn) returns
/// `Err` and leaves no child; once it is restored a manager starts.
fn role_nproc() {
    let soft0 = getrlimit(Resource::Nproc).current;
    for m in [StartMethod::ForkServer, StartMethod::Spawn] {
        set_soft(Resource::Nproc, Some(1));
        let r = Manager::builder().start_method(m).start();
        set_soft(Resource::Nproc, soft0);
        match r {
            Ok(mgr) => panic!("{m}: a manager (pid {}) started with RLIMIT_NPROC=1", mgr.pid()),
            Err(e) => say(format!("ok {m}: {e}")),
        }
        let live: Vec<_> = children().into_iter().filter(|&(_, s)| s != 'Z').collect();
        // The fork server may have started before the limit bit.
        assert!(live.len() <= 1, "{m}: the failed start left children {live:?}");
    }
    let mgr = Manager::start().expect("a start with the limit restored");
    mgr.list::<u8>().expect("list").push(1).expect("push");
    mgr.shutdown().expect("shutdown");
    say("done");
}

/// Reads a helper's `ok ...` lines up to `done`; how many there were.
fn ok_lines(h: &mut harness::Helper) -> usize {
    let mut n = 0;
    loop {
        let l = h.line();
        if l == "done" {
            return n;
        }
        assert!(l.starts_with("ok "), "unexpected line {l:?}");
        println!("{l}");
        n += 1;
    }
}

/// RELIABILITY case 39 (RLIMIT_NOFILE): `Manager::start` fails cleanly at
/// the descriptor limit and leaks nothing.
#[test]
fn manager_start_at_the_descriptor_limit_fails_cleanly() {
    let ctx = Ctx::new("mgr-nofile");
    let mut h = ctx.child("manager_nofile").start();
    assert_eq!(ok_lines(&mut h), 5);
    h.wait_ok();
    ctx.finish();
}

/// RELIABILITY case 39 (RLIMIT_NPROC): `Manager::start` fails cleanly when
/// no process can be made (as a non-root user: root ignores the limit).
#[test]
fn manager_start_at_the_process_limit_fails_cleanly() {
    let ctx = Ctx::new("mgr-nproc");
    if rustix::process::geteuid().as_raw() != 0 {
        println!("skipped: not root, cannot run a helper as uid {LIMITED_UID}");
        ctx.finish();
        return;
    }
    match ctx.child("manager_nproc").user(LIMITED_UID, LIMITED_UID).spawn() {
        Ok(mut h) => {
            assert_eq!(ok_lines(&mut h), 2);
            h.wait_ok();
        }
        Err(e) => println!("skipped: cannot start a helper as uid {LIMITED_UID}: {e}"),
    }
    ctx.finish();
}
