//! `Manager`, `DictProxy` and `ListProxy` in one process (threads) and with
//! children started under every start method: every method, insertion
//! order, type checks of named objects, server-side updates (atomic, and a
//! panicking one), pipelined batches larger than the pipe, proxies passed
//! to children, connecting by name, shutdown. The crash cases (RELIABILITY
//! 39, 44, 47, killed and stopped clients, garbage requests) are in
//! `tests/mp/manager.rs`.
//!
//! Timing is never asserted: every wait has a generous hang guard only.

mod common;

use std::time::Duration;

use shmproc::{Context, DictProxy, Error, ListProxy, Manager, Process, StartMethod};

/// The hang guard of every wait in these tests.
const GUARD: Duration = Duration::from_secs(60);

fn add(old: Option<u64>, n: u64) -> Option<u64> {
    Some(old.unwrap_or(0) + n)
}

fn remove_if_zero(old: Option<u64>, _: ()) -> Option<u64> {
    old.filter(|&v| v != 0)
}

fn explode(_: Option<u64>, why: String) -> Option<u64> {
    panic!("update refused: {why}")
}

#[test]
fn dict_methods_keep_insertion_order() {
    let mgr = Manager::start().expect("start");
    let d = mgr.dict::<String, u64>().expect("dict");
    assert!(d.is_empty().expect("is_empty"));
    assert_eq!(d.insert("b".into(), 1).expect("insert"), None);
    assert_eq!(d.insert("a".into(), 2).expect("insert"), None);
    assert_eq!(d.insert("b".into(), 3).expect("insert"), Some(1), "the old value comes back");
    assert_eq!(d.keys().expect("keys"), ["b", "a"], "insertion order, a re-insert keeps its place");
    assert_eq!(d.values().expect("values"), [3, 2]);
    assert_eq!(d.items().expect("items"), [("b".to_string(), 3), ("a".to_string(), 2)]);
    assert!(d.contains_key(&"a".into()).expect("contains"));
    assert!(!d.contains_key(&"c".into()).expect("contains"));
    assert_eq!(d.get(&"c".into()).expect("get"), None);
    assert_eq!(d.remove(&"b".into()).expect("remove"), Some(3));
    assert_eq!(d.remove(&"b".into()).expect("remove"), None);
    d.insert("b".into(), 4).expect("insert");
    assert_eq!(d.keys().expect("keys"), ["a", "b"], "removed then inserted: at the end");
    assert_eq!(d.len().expect("len"), 2);
    d.clear().expect("clear");
    assert_eq!(d.len().expect("len"), 0);
    let dbg = format!("{d:?}");
    assert!(dbg.contains("DictProxy"), "{dbg}");
    mgr.shutdown().expect("shutdown");
}

#[test]
fn list_methods() {
    let mgr = Manager::start().expect("start");
    let l = mgr.list::<String>().expect("list");
    l.push("a".into()).expect("push");
    l.extend(["b".to_string(), "c".to_string()]).expect("extend");
    l.insert(0, "z".into()).expect("insert");
    l.insert(100, "end".into()).expect("insert past the end appends");
    assert_eq!(l.to_vec().expect("to_vec"), ["z", "a", "b", "c", "end"]);
    assert_eq!(l.get(1).expect("get"), Some("a".to_string()));
    assert_eq!(l.get(5).expect("get"), None);
    l.set(1, "A".into()).expect("set");
    assert!(matches!(l.set(9, "x".into()), Err(Error::InvalidArgument { .. })));
    assert_eq!(l.remove(0).expect("remove"), "z");
    assert!(matches!(l.remove(9), Err(Error::InvalidArgument { .. })));
    assert_eq!(l.pop().expect("pop"), Some("end".to_string()));
    assert_eq!(l.len().expect("len"), 3);
    l.clear().expect("clear");
    assert!(l.is_empty().expect("is_empty"));
    assert_eq!(l.pop().expect("pop"), None);
    mgr.shutdown().expect("shutdown");
}

#[test]
fn update_runs_on_the_server_and_survives_a_panic() {
    let mgr = Manager::start().expect("start");
    let d = mgr.dict::<String, u64>().expect("dict");
    assert_eq!(d.update(&"n".into(), add, 5).expect("update"), Some(5));
    assert_eq!(d.update(&"n".into(), add, 1).expect("update"), Some(6));
    match d.update(&"n".into(), explode, "just because".into()) {
        Err(Error::Remote { message }) => assert!(message.contains("update refused: just because"), "{message}"),
        other => panic!("a panicking update: {other:?}"),
    }
    assert_eq!(d.get(&"n".into()).expect("get"), Some(6), "the entry is unchanged");
    d.insert("z".into(), 0).expect("insert");
    assert_eq!(d.update(&"z".into(), remove_if_zero, ()).expect("update"), None);
    assert!(!d.contains_key(&"z".into()).expect("contains"), "None removes the key");
    // Threads racing on one counter lose nothing.
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..250 {
                    d.update(&"n".into(), add, 1).expect("update");
                }
            });
        }
    });
    assert_eq!(d.get(&"n".into()).expect("get"), Some(1006));
    mgr.shutdown().expect("shutdown");
}

/// Runs `f` on a thread; its result, or a failure after the hang guard.
fn guarded<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(GUARD).expect("the manager did not answer (deadlock)")
}

/// A dict update that logs the old value to a list and adds another entry
/// of the same dict: requests to the manager from inside an update.
fn log_and_add(old: Option<u64>, (log, d): (ListProxy<u64>, DictProxy<String, u64>)) -> Option<u64> {
    log.push(old.unwrap_or(0)).expect("push from an update");
    let other = d.get(&"other".into()).expect("get from an update").unwrap_or(0);
    Some(old.unwrap_or(0) + other)
}

/// A dict update that updates its own dict.
fn update_myself(old: Option<u64>, me: DictProxy<String, u64>) -> Option<u64> {
    match me.update(&"other".into(), add, 1) {
        Ok(_) => Some(old.unwrap_or(0) + 100),
        Err(e) => panic!("refused: {e}"),
    }
}

/// A dict update that changes its own entry while it runs.
fn change_meanwhile(_: Option<u64>, me: DictProxy<String, u64>) -> Option<u64> {
    let n = me.get(&"n".into()).expect("get").unwrap_or(0);
    me.insert("n".into(), n + 1).expect("insert");
    Some(0)
}

// An update function may use the manager it runs in: it used to run under
// the server's state lock, so its first request waited for that lock
// forever (and with it every client). Now it runs outside the lock, and
// the result is stored only if the entry did not change meanwhile.
#[test]
fn an_update_function_may_use_the_manager() {
    let mgr = Manager::start().expect("start");
    let (d, log) = (mgr.dict::<String, u64>().expect("dict"), mgr.list::<u64>().expect("list"));
    d.insert("n".into(), 5).expect("insert");
    d.insert("other".into(), 10).expect("insert");
    let (d2, log2) = (d.clone(), log.clone());
    let new = guarded(move || d2.update(&"n".into(), log_and_add, (log2, d2.clone()))).expect("update");
    assert_eq!(new, Some(15));
    assert_eq!(log.to_vec().expect("to_vec"), [5]);
    // Updating its own dict from inside an update is refused, not a hang.
    let d2 = d.clone();
    let e = guarded(move || d2.update(&"n".into(), update_myself, d2.clone())).expect_err("updates itself");
    assert!(matches!(&e, Error::Remote { message } if message.contains("its own object")), "{e}");
    assert_eq!(d.get(&"n".into()).expect("get"), Some(15), "unchanged");
    // An entry changed under every run of the update: an error, not a
    // lost change.
    let d2 = d.clone();
    let e = guarded(move || d2.update(&"n".into(), change_meanwhile, d2.clone())).expect_err("changed meanwhile");
    assert!(matches!(&e, Error::Remote { message } if message.contains("changed under every")), "{e}");
    assert_ne!(d.get(&"n".into()).expect("get"), Some(0), "the update's result was never stored");
    mgr.shutdown().expect("shutdown");
}

#[test]
fn batches_larger_than_the_pipe_do_not_deadlock() {
    let mgr = Manager::start().expect("start");
    let d = mgr.dict::<u32, Vec<u8>>().expect("dict");
    // 4000 x ~1 KiB: far more than the 64 KiB pipe holds either way.
    d.extend((0..4000).map(|i| (i, vec![i as u8; 1000]))).expect("extend");
    assert_eq!(d.len().expect("len"), 4000);
    let keys: Vec<u32> = (0..4001).collect();
    let got = d.get_many(&keys).expect("get_many");
    assert_eq!(got.len(), 4001);
    assert!(got[..4000].iter().enumerate().all(|(i, v)| v.as_deref() == Some(&[i as u8; 1000][..])));
    assert_eq!(got[4000], None);
    // A reply larger than the pipe (travels through a spill segment).
    assert_eq!(d.items().expect("items").len(), 4000);
    let l = mgr.list::<u64>().expect("list");
    l.extend(0..20_000).expect("extend");
    assert_eq!(l.to_vec().expect("to_vec"), (0..20_000).collect::<Vec<_>>());
    mgr.shutdown().expect("shutdown");
}

#[test]
fn named_objects_are_shared_and_type_checked() {
    let mgr = Manager::start().expect("start");
    let a = mgr.dict_named::<String, u32>("config").expect("dict");
    a.insert("x".into(), 1).expect("insert");
    let b = mgr.dict_named::<String, u32>("config").expect("same dict");
    assert_eq!(b.get(&"x".into()).expect("get"), Some(1));
    match mgr.dict_named::<String, i64>("config") {
        Err(Error::LayoutMismatch { expected, found }) => assert_ne!(expected, found),
        other => panic!("another value type: {other:?}"),
    }
    assert!(matches!(mgr.list_named::<String>("config"), Err(Error::LayoutMismatch { .. })), "another kind");
    let l = mgr.list_named::<u8>("log").expect("list");
    l.push(1).expect("push");
    assert_eq!(mgr.list_named::<u8>("log").expect("list").to_vec().expect("to_vec"), [1]);
    mgr.shutdown().expect("shutdown");
}

fn child_work((d, l, i): (DictProxy<String, u64>, ListProxy<u64>, u64)) -> Result<u64, String> {
    let work = || -> shmproc::Result<()> {
        d.insert(format!("child-{i}"), i)?;
        d.update(&"total".into(), add, i)?;
        l.push(i)
    };
    work().map_err(|e| e.to_string())?;
    Ok(std::process::id().into())
}

fn run_children(mgr: &Manager, ctx: &Context, n: u64) {
    let d = mgr.dict::<String, u64>().expect("dict");
    let l = mgr.list::<u64>().expect("list");
    let mut kids: Vec<_> = (1..=n).map(|i| ctx.spawn(child_work, (d.clone(), l.clone(), i)).expect("spawn")).collect();
    for k in &mut kids {
        k.join_timeout(GUARD).expect("join: hang guard").expect("child work");
    }
    assert_eq!(d.len().expect("len"), n as usize + 1);
    assert_eq!(d.get(&"total".into()).expect("get"), Some(n * (n + 1) / 2));
    let mut pushed = l.to_vec().expect("to_vec");
    pushed.sort();
    assert_eq!(pushed, (1..=n).collect::<Vec<_>>());
}

/// Task: eight threads make their first calls at once (one connection is
/// kept, the extra ones are closed), then count.
fn threads_first_use(d: DictProxy<String, u64>) -> Result<(), String> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    for _ in 0..50 {
                        d.update(&"threads".into(), add, 1).map_err(|e| e.to_string())?;
                    }
                    Ok::<(), String>(())
                })
            })
            .collect();
        handles.into_iter().try_for_each(|h| h.join().map_err(|_| "a thread panicked".to_string())?)
    })
}

#[test]
fn threads_of_a_child_connect_at_once() {
    let mgr = Manager::start().expect("start");
    let d = mgr.dict::<String, u64>().expect("dict");
    let mut p = Process::spawn(threads_first_use, d.clone()).expect("spawn");
    p.join_timeout(GUARD).expect("join: hang guard").expect("threads");
    assert_eq!(d.get(&"threads".into()).expect("get"), Some(400));
    mgr.shutdown().expect("shutdown");
}

#[test]
fn proxies_pass_to_children_under_spawn_and_forkserver() {
    let mgr = Manager::start().expect("start");
    run_children(&mgr, &Context::new(StartMethod::Spawn), 3);
    run_children(&mgr, &Context::new(StartMethod::ForkServer), 3);
    mgr.shutdown().expect("shutdown");
}

/// In a single-threaded Spawn child: a manager started with Fork, proxies
/// passed to Fork children (Fork is refused in the threaded test harness).
fn fork_round(_: ()) -> Result<(), String> {
    let mgr = Manager::builder().start_method(StartMethod::Fork).start().map_err(|e| e.to_string())?;
    run_children(&mgr, &Context::new(StartMethod::Fork), 3);
    mgr.shutdown().map_err(|e| e.to_string())
}

#[test]
fn proxies_pass_to_children_under_fork() {
    let mut p = Process::builder().start_method(StartMethod::Spawn).spawn(fork_round, ()).expect("spawn");
    p.join_timeout(GUARD).expect("join: hang guard").expect("fork round");
}

fn use_manager(mgr: Manager) -> Result<usize, String> {
    let d = mgr.dict_named::<String, u64>("shared").map_err(|e| e.to_string())?;
    d.update(&"visits".into(), add, 1).map_err(|e| e.to_string())?;
    assert!(matches!(mgr.shutdown(), Err(Error::InvalidArgument { .. })), "only the owner stops it");
    d.len().map_err(|e| e.to_string())
}

#[test]
fn a_manager_handle_passes_to_a_child_and_connects_by_name() {
    let names = common::Names::new("mgrtest", "connect");
    let name = names.name("m");
    let mgr = Manager::builder().name(&name).start().expect("start");
    assert_eq!(mgr.name(), Some(name.as_str()));
    // RELIABILITY 48: only this user can reach the server.
    let mode =
        std::fs::metadata(format!("{}/shmproc.{name}", common::SHM_DIR)).expect("the accept queue").permissions();
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777, 0o600, "the accept queue is private");
    assert!(matches!(Manager::builder().name(&name).start(), Err(Error::Exists { .. })));
    let mut p = Process::spawn(use_manager, mgr.clone()).expect("spawn");
    assert_eq!(p.join_timeout(GUARD).expect("join: hang guard").expect("child"), 1);
    let other = Manager::connect(&name).expect("connect");
    assert_eq!(other.pid(), mgr.pid());
    assert_eq!(use_manager(other).expect("by name"), 1);
    let d = mgr.dict_named::<String, u64>("shared").expect("dict");
    assert_eq!(d.get(&"visits".into()).expect("get"), Some(2));
    mgr.shutdown().expect("shutdown");
    assert!(matches!(Manager::connect(&name), Err(Error::NotFound { .. })), "the name went with the manager");
    names.finish();
}

#[test]
fn shutdown_and_drop_stop_the_server() {
    let mgr = Manager::start().expect("start");
    let d = mgr.dict::<u8, u8>().expect("dict");
    let l = mgr.list::<u8>().expect("list");
    assert!(mgr.is_alive());
    mgr.shutdown().expect("shutdown");
    assert!(!mgr.is_alive());
    assert!(matches!(d.insert(1, 1), Err(Error::ManagerDead)));
    assert!(matches!(l.len(), Err(Error::ManagerDead)));
    assert!(matches!(mgr.dict::<u8, u8>(), Err(Error::ManagerDead)));
    mgr.shutdown().expect("a second shutdown does nothing");

    let mgr = Manager::start().expect("start");
    let l = mgr.list::<u8>().expect("list");
    let clone = mgr.clone();
    drop(mgr);
    l.push(1).expect("a clone of the starting handle keeps it running");
    let pid = clone.pid();
    drop(clone);
    assert!(matches!(l.push(1), Err(Error::ManagerDead)), "the last clone stopped the server (pid {pid})");
}

#[test]
fn a_proxy_decodes_only_as_its_own_type() {
    let names = common::Names::new("mgrtest", "retype");
    let anonymous = Manager::start().expect("start");
    let d = anonymous.dict::<String, u64>().expect("dict");
    // An anonymous manager's proxy encodes as a reference (manager nonce,
    // object id): it decodes in processes that know the manager (children
    // given it, readers of the manager's values), see tests/manager_values.rs.
    let same: DictProxy<String, u64> =
        postcard::from_bytes(&postcard::to_allocvec(&d).expect("encodes as a reference")).expect("known here");
    assert!(same.is_empty().expect("is_empty"));
    let mgr = Manager::builder().name(&names.name("m")).start().expect("start");
    let d = mgr.dict::<String, u64>().expect("dict");
    d.insert("k".into(), 7).expect("insert");
    let bytes = postcard::to_allocvec(&d).expect("a named manager's proxy encodes by name");
    let same: DictProxy<String, u64> = postcard::from_bytes(&bytes).expect("same type");
    assert_eq!(same.get(&"k".into()).expect("get"), Some(7));
    assert!(postcard::from_bytes::<DictProxy<String, String>>(&bytes).is_err(), "another value type");
    assert!(postcard::from_bytes::<ListProxy<u64>>(&bytes).is_err(), "another kind");
    mgr.shutdown().expect("shutdown");
    anonymous.shutdown().expect("shutdown");
    names.finish();
}
