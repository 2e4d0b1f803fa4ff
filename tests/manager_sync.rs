//! The manager's blocking objects (`QueueProxy`, `LockProxy`,
//! `RLockProxy`, `SemaphoreProxy`, `EventProxy`, `ConditionProxy`,
//! `BarrierProxy`) in one process (threads) and across children started
//! under every start method (Fork runs inside a single-threaded Spawn
//! child, as in `tests/manager.rs`): producer/consumer, a get and a put in
//! two threads of one process (no deadlock on the shared connection),
//! mutual exclusion between processes, a holder killed (owner-died
//! takeover), a getter killed while blocked (its server thread stops
//! waiting), events, barriers, conditions, timeouts, and a restarted
//! manager refusing old proxies.
//!
//! Timing is never asserted: every wait has a generous hang guard only.

mod common;

use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process};
use shmproc::{
    AcquireTimeoutError, Acquired, BarrierProxy, BarrierTimeoutError, ConditionProxy, Context, DictProxy, Error,
    EventProxy, GetTimeoutError, LockProxy, Manager, Process, PutTimeoutError, QueueProxy, StartMethod,
};

/// The hang guard of every wait in these tests.
const GUARD: Duration = Duration::from_secs(60);

const METHODS: [StartMethod; 2] = [StartMethod::Spawn, StartMethod::ForkServer];

fn s<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// Runs `scenario` under Fork: in a single-threaded Spawn child, with a
/// manager and children started by Fork (Fork is refused in the threaded
/// test harness).
fn under_fork(scenario: fn(StartMethod) -> Result<(), String>) {
    let mut p = Process::builder().start_method(StartMethod::Spawn).spawn(scenario, StartMethod::Fork).expect("spawn");
    p.join_timeout(GUARD).expect("join: hang guard").expect("the fork scenario");
}

fn manager(method: StartMethod) -> Result<Manager, String> {
    Manager::builder().start_method(method).start().map_err(s)
}

// ---------------------------------------------------------------------------
// Producer / consumer
// ---------------------------------------------------------------------------

fn produce((q, n): (QueueProxy<u64>, u64)) -> Result<(), String> {
    for i in 0..n {
        q.put(i).map_err(s)?;
    }
    q.put(u64::MAX).map_err(s)
}

fn consume(q: QueueProxy<u64>) -> Result<u64, String> {
    let mut sum = 0;
    loop {
        match q.get_timeout(GUARD).map_err(s)? {
            u64::MAX => return Ok(sum),
            v => sum += v,
        }
    }
}

fn producer_consumer(method: StartMethod) -> Result<(), String> {
    let mgr = manager(method)?;
    let ctx = Context::new(method);
    // A small bound: the producer waits for room, the consumer for items.
    let q = mgr.queue::<u64>(3).map_err(s)?;
    let mut c = ctx.spawn(consume, q.clone()).map_err(s)?;
    let mut p = ctx.spawn(produce, (q.clone(), 100)).map_err(s)?;
    p.join_timeout(GUARD).map_err(s)??;
    let sum = c.join_timeout(GUARD).map_err(s)??;
    if sum != 99 * 100 / 2 {
        return Err(format!("the consumer got a sum of {sum}"));
    }
    mgr.shutdown().map_err(s)
}

#[test]
fn producer_and_consumer_children_meet_in_a_manager_queue() {
    // CPython: _TestQueue.test_put / test_get (through a manager queue).
    for m in METHODS {
        producer_consumer(m).unwrap_or_else(|e| panic!("{m:?}: {e}"));
    }
    under_fork(producer_consumer);
}

// ---------------------------------------------------------------------------
// A get and a put in two threads of one process
// ---------------------------------------------------------------------------

fn get_and_put_in_threads(q: QueueProxy<String>) -> Result<(), String> {
    std::thread::scope(|sc| {
        let getter = sc.spawn(|| q.get_timeout(GUARD).map_err(s));
        // The getter may or may not be waiting yet: either way the put must
        // not wait behind it.
        let items: Vec<String> = (0..20).map(|i| format!("x{i}")).collect();
        let q2 = &q;
        let putter = sc.spawn(move || {
            for i in items {
                q2.put(i).map_err(s)?;
            }
            Ok::<(), String>(())
        });
        putter.join().map_err(|_| "the putter panicked".to_string())??;
        let got = getter.join().map_err(|_| "the getter panicked".to_string())??;
        if got != "x0" {
            return Err(format!("the getter got {got}"));
        }
        Ok(())
    })?;
    if q.qsize().map_err(s)? != 19 {
        return Err("items lost".into());
    }
    Ok(())
}

#[test]
fn a_blocked_get_does_not_block_a_put_of_another_thread() {
    let mgr = Manager::start().expect("start");
    let q = mgr.queue::<String>(0).expect("queue");
    get_and_put_in_threads(q.clone()).expect("in this process");
    let q = mgr.queue::<String>(0).expect("queue");
    let mut p = Process::spawn(get_and_put_in_threads, q).expect("spawn");
    p.join_timeout(GUARD).expect("join: hang guard").expect("in a child");
    mgr.shutdown().expect("shutdown");
}

// ---------------------------------------------------------------------------
// Locks
// ---------------------------------------------------------------------------

fn count_under_lock((lock, d, n): (LockProxy, DictProxy<String, u64>, u64)) -> Result<(), String> {
    for _ in 0..n {
        let _g = lock.lock().map_err(s)?;
        // A read then a write: without the lock, increments are lost.
        let v = d.get(&"count".into()).map_err(s)?.unwrap_or(0);
        d.insert("count".into(), v + 1).map_err(s)?;
    }
    Ok(())
}

fn mutual_exclusion(method: StartMethod) -> Result<(), String> {
    let mgr = manager(method)?;
    let ctx = Context::new(method);
    let lock = mgr.lock().map_err(s)?;
    let d = mgr.dict::<String, u64>().map_err(s)?;
    let mut kids = (0..4)
        .map(|_| ctx.spawn(count_under_lock, (lock.clone(), d.clone(), 25)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(s)?;
    for k in &mut kids {
        k.join_timeout(GUARD).map_err(s)??;
    }
    match d.get(&"count".into()).map_err(s)? {
        Some(100) => mgr.shutdown().map_err(s),
        other => Err(format!("count {other:?}, expected 100")),
    }
}

#[test]
fn a_lock_proxy_excludes_other_processes() {
    // CPython: _TestLock.test_lock (with a manager lock).
    for m in METHODS {
        mutual_exclusion(m).unwrap_or_else(|e| panic!("{m:?}: {e}"));
    }
    under_fork(mutual_exclusion);
}

fn hold_forever((lock, ready): (LockProxy, EventProxy)) -> Result<(), String> {
    let taken = lock.acquire().map_err(s)?;
    assert_eq!(taken, Acquired::Clean);
    ready.set().map_err(s)?;
    std::thread::sleep(Duration::from_secs(600));
    Ok(())
}

fn killed_holder(method: StartMethod) -> Result<(), String> {
    let mgr = manager(method)?;
    let lock = mgr.lock().map_err(s)?;
    let ready = mgr.event().map_err(s)?;
    let mut p = Context::new(method).spawn(hold_forever, (lock.clone(), ready.clone())).map_err(s)?;
    if !ready.wait_timeout(GUARD).map_err(s)? {
        return Err("the holder never took the lock".into());
    }
    if !matches!(lock.try_acquire(), Err(shmproc::TryAcquireError::WouldBlock)) {
        return Err("the lock was free while held".into());
    }
    let pid = p.pid();
    p.kill().map_err(s)?;
    let _ = p.join_timeout(GUARD);
    match lock.acquire_timeout(GUARD) {
        Ok(Acquired::OwnerDied { pid: dead }) if dead == pid => {}
        other => return Err(format!("expected the owner-died takeover from {pid}, got {other:?}")),
    }
    lock.release().map_err(s)?;
    match lock.acquire_timeout(GUARD) {
        Ok(Acquired::Clean) => lock.release().map_err(s)?,
        other => return Err(format!("a clean acquire after the takeover: {other:?}")),
    }
    mgr.shutdown().map_err(s)
}

#[test]
fn a_lock_held_by_a_killed_child_is_taken_over_with_the_owner_died_report() {
    for m in METHODS {
        killed_holder(m).unwrap_or_else(|e| panic!("{m:?}: {e}"));
    }
    under_fork(killed_holder);
}

fn block_in_get((q, ready): (QueueProxy<u64>, EventProxy)) -> Result<u64, String> {
    ready.set().map_err(s)?;
    q.get().map_err(s)
}

fn killed_getter(method: StartMethod) -> Result<(), String> {
    let mgr = manager(method)?;
    let q = mgr.queue::<u64>(0).map_err(s)?;
    let ready = mgr.event().map_err(s)?;
    let mut p = Context::new(method).spawn(block_in_get, (q.clone(), ready.clone())).map_err(s)?;
    if !ready.wait_timeout(GUARD).map_err(s)? {
        return Err("the getter never started".into());
    }
    p.kill().map_err(s)?;
    let _ = p.join_timeout(GUARD);
    // The dead getter's server thread has stopped waiting: it takes none
    // of these items.
    for i in 0..3 {
        q.put(i).map_err(s)?;
    }
    for i in 0..3 {
        match q.get_timeout(GUARD) {
            Ok(v) if v == i => {}
            other => return Err(format!("item {i}: {other:?}")),
        }
    }
    mgr.shutdown().map_err(s)
}

#[test]
fn a_child_killed_while_blocked_in_get_takes_nothing_and_others_go_on() {
    for m in METHODS {
        killed_getter(m).unwrap_or_else(|e| panic!("{m:?}: {e}"));
    }
    under_fork(killed_getter);
}

// ---------------------------------------------------------------------------
// Events, barriers, conditions
// ---------------------------------------------------------------------------

fn wait_event(e: EventProxy) -> Result<bool, String> {
    e.wait_timeout(GUARD).map_err(s)
}

fn barrier_party(b: BarrierProxy) -> Result<u64, String> {
    b.wait_timeout(GUARD).map_err(s)
}

fn wait_for_go((c, d): (ConditionProxy, DictProxy<String, u64>)) -> Result<(), String> {
    let _g = c.lock().map_err(s)?;
    d.insert("waiting".into(), 1).map_err(s)?;
    let deadline = std::time::Instant::now() + GUARD;
    let go = || d.get(&"go".into()).map(|v| v == Some(1)).unwrap_or(true);
    if !c.wait_for(go, Some(deadline)).map_err(s)? {
        return Err("no notify in time".into());
    }
    Ok(())
}

fn events_barriers_conditions(method: StartMethod) -> Result<(), String> {
    let mgr = manager(method)?;
    let ctx = Context::new(method);
    // Event: three children wait, the parent sets.
    let e = mgr.event().map_err(s)?;
    let mut kids = (0..3).map(|_| ctx.spawn(wait_event, e.clone())).collect::<Result<Vec<_>, _>>().map_err(s)?;
    e.set().map_err(s)?;
    for k in &mut kids {
        if !k.join_timeout(GUARD).map_err(s)?? {
            return Err("an event waiter timed out".into());
        }
    }
    // Barrier of three processes: arrival indices 0, 1, 2.
    let b = mgr.barrier(3).map_err(s)?;
    let mut kids = (0..3).map(|_| ctx.spawn(barrier_party, b.clone())).collect::<Result<Vec<_>, _>>().map_err(s)?;
    let mut idx = Vec::new();
    for k in &mut kids {
        idx.push(k.join_timeout(GUARD).map_err(s)??);
    }
    idx.sort();
    if idx != [0, 1, 2] {
        return Err(format!("barrier indices {idx:?}"));
    }
    // Condition: the child waits for "go", the parent sets it and notifies.
    let c = mgr.condition().map_err(s)?;
    let d = mgr.dict::<String, u64>().map_err(s)?;
    let mut k = ctx.spawn(wait_for_go, (c.clone(), d.clone())).map_err(s)?;
    {
        let _g = c.lock().map_err(s)?;
        d.insert("go".into(), 1).map_err(s)?;
        c.notify_all().map_err(s)?;
    }
    k.join_timeout(GUARD).map_err(s)??;
    mgr.shutdown().map_err(s)
}

#[test]
fn events_barriers_and_conditions_across_processes() {
    // CPython: _TestEvent.test_event, _TestBarrier.test_barrier,
    // _TestCondition.test_notify (with manager objects).
    for m in METHODS {
        events_barriers_conditions(m).unwrap_or_else(|e| panic!("{m:?}: {e}"));
    }
    under_fork(events_barriers_conditions);
}

#[test]
fn barrier_reset_abort_and_a_dead_party() {
    // CPython: _TestBarrier.test_abort / test_reset.
    let mgr = Manager::start().expect("start");
    let b = mgr.barrier(2).expect("barrier");
    assert_eq!(b.parties().expect("parties"), 2);
    b.abort().expect("abort");
    assert!(matches!(b.wait(), Err(shmproc::BarrierError::Broken { dead: None })));
    b.reset().expect("reset");
    assert!(!b.broken().expect("broken"));
    // A party that dies while waiting breaks it, naming its pid.
    let mut p = Process::spawn(barrier_party, b.clone()).expect("spawn");
    let pid = p.pid();
    let mut waited = 0;
    while b.n_waiting().expect("n_waiting") == 0 {
        std::thread::sleep(Duration::from_millis(5));
        waited += 1;
        assert!(waited < 12_000, "hang guard: the party never arrived");
    }
    kill_process(Pid::from_raw(pid as i32).expect("pid"), Signal::KILL).expect("kill");
    let _ = p.join_timeout(GUARD);
    match b.wait_timeout(GUARD) {
        Err(BarrierTimeoutError::Broken { dead: Some(d) }) => assert_eq!(d, pid),
        other => panic!("expected broken by {pid}, got {other:?}"),
    }
    mgr.shutdown().expect("shutdown");
}

// ---------------------------------------------------------------------------
// Timeouts, try_, errors
// ---------------------------------------------------------------------------

#[test]
fn timeouts_return_the_timeout_errors() {
    let mgr = Manager::start().expect("start");
    let short = Duration::from_millis(10);
    let q = mgr.queue::<u8>(1).expect("queue");
    assert!(matches!(q.get_timeout(short), Err(GetTimeoutError::Timeout)));
    assert!(matches!(q.try_get(), Err(shmproc::TryGetError::Empty)));
    q.put(1).expect("put");
    assert!(matches!(q.put_timeout(2, short), Err(PutTimeoutError::Timeout(2))), "the item comes back");
    assert!(matches!(q.try_put(3), Err(shmproc::TryPutError::Full(3))));
    assert!(q.is_full().expect("full"));
    let lock = mgr.lock().expect("lock");
    let _g = lock.lock().expect("lock");
    assert!(matches!(lock.acquire_timeout(short), Err(AcquireTimeoutError::Deadlock)), "the owner again");
    let other = std::thread::scope(|sc| sc.spawn(|| lock.acquire_timeout(short).map(drop)).join().expect("thread"));
    assert!(matches!(other, Err(AcquireTimeoutError::Timeout)), "{other:?}");
    assert!(matches!(std::thread::scope(|sc| sc.spawn(|| lock.release()).join().expect("t")), Err(Error::NotOwner)));
    let sem = mgr.semaphore(0).expect("semaphore");
    assert!(matches!(sem.acquire_timeout(short), Err(AcquireTimeoutError::Timeout)));
    let e = mgr.event().expect("event");
    assert!(!e.wait_timeout(short).expect("wait"));
    let c = mgr.condition().expect("condition");
    let _cg = c.lock().expect("lock");
    assert!(!c.wait_timeout(short).expect("wait"), "not notified, the lock held again");
    c.notify().expect("still the holder");
    let jq = mgr.joinable_queue::<u8>(0).expect("joinable");
    jq.put(1).expect("put");
    assert!(matches!(jq.join_timeout(short), Err(Error::Timeout)));
    let b = mgr.barrier(2).expect("barrier");
    assert!(matches!(b.wait_timeout(short), Err(BarrierTimeoutError::Timeout)));
    assert!(b.broken().expect("broken"), "a timeout breaks the barrier");
    let b = mgr.barrier_with_timeout(2, short).expect("barrier");
    assert!(matches!(b.wait(), Err(shmproc::BarrierError::Broken { dead: None })), "its own timeout");
    assert!(matches!(mgr.barrier(0), Err(Error::Remote { .. })));
    let other = Manager::start().expect("start");
    assert!(matches!(other.condition_with_lock(&lock), Err(Error::InvalidArgument { .. })));
    mgr.shutdown().expect("shutdown");
    assert!(matches!(q.get_timeout(short), Err(GetTimeoutError::Failed(Error::ManagerDead))));
    assert!(matches!(e.wait(), Err(Error::ManagerDead)));
}

#[test]
fn a_waiting_call_ends_with_manager_dead_when_the_server_stops() {
    let mgr = Manager::start().expect("start");
    let q = mgr.queue::<u8>(0).expect("queue");
    let ready = mgr.event().expect("event");
    std::thread::scope(|sc| {
        let getter = sc.spawn(|| {
            ready.set().expect("set");
            q.get()
        });
        assert!(ready.wait_timeout(GUARD).expect("wait"));
        mgr.shutdown().expect("shutdown");
        assert!(matches!(getter.join().expect("getter"), Err(shmproc::GetError::Failed(Error::ManagerDead))));
    });
}

fn use_old((q, l): (QueueProxy<u8>, LockProxy)) -> String {
    match (q.put(1), l.acquire()) {
        (
            Err(shmproc::PutError::Failed(_, Error::ManagerDead)),
            Err(shmproc::AcquireError::Failed(Error::ManagerDead)),
        ) => "refused".into(),
        other => format!("{other:?}"),
    }
}

#[test]
fn a_restarted_manager_refuses_the_old_proxies() {
    // CPython: _TestManagerRestart.test_rapid_restart.
    let names = common::Names::new("mgrsynctest", "restart");
    let name = names.name("m");
    let mgr = Manager::builder().name(&name).start().expect("start");
    let q = mgr.queue_named::<u8>("q", 0).expect("queue");
    let l = mgr.lock_named("l").expect("lock");
    let bytes = postcard::to_allocvec(&(q.clone(), l.clone())).expect("encode");
    mgr.shutdown().expect("shutdown");
    let again = Manager::builder().name(&name).start().expect("restart under the same name");
    again.queue_named::<u8>("q", 0).expect("queue").put(9).expect("put");
    let old: (QueueProxy<u8>, LockProxy) = postcard::from_bytes(&bytes).expect("decode");
    assert_eq!(use_old(old), "refused");
    let mut p = Process::spawn(use_old, postcard::from_bytes(&bytes).expect("decode")).expect("spawn");
    assert_eq!(p.join_timeout(GUARD).expect("join: hang guard"), "refused");
    assert_eq!(again.queue_named::<u8>("q", 0).expect("queue").get().expect("get"), 9, "the new one is untouched");
    assert!(postcard::from_bytes::<QueueProxy<u16>>(&bytes).is_err(), "another item type");
    again.shutdown().expect("shutdown");
    names.finish();
}

/// Task: reaches the manager by name alone (as an unrelated program
/// would), takes the named lock, passes an item back through the named
/// queue, sets the named event.
fn by_name(name: String) -> Result<(), String> {
    let mgr = Manager::connect(&name).map_err(s)?;
    let lock = mgr.lock_named("lock").map_err(s)?;
    let _g = lock.lock_timeout(GUARD).map_err(s)?;
    let q = mgr.queue_named::<String>("q", 0).map_err(s)?;
    let got = q.get_timeout(GUARD).map_err(s)?;
    q.put(format!("{got} back")).map_err(s)?;
    mgr.event_named("done").map_err(s)?.set().map_err(s)
}

#[test]
fn named_blocking_objects_are_reached_through_connect() {
    let names = common::Names::new("mgrsynctest", "connect");
    let name = names.name("m");
    let mgr = Manager::builder().name(&name).start().expect("start");
    let q = mgr.queue_named::<String>("q", 0).expect("queue");
    let done = mgr.event_named("done").expect("event");
    assert!(matches!(mgr.queue_named::<u8>("q", 0), Err(Error::Remote { .. })), "another item type");
    assert!(matches!(mgr.event_named("q"), Err(Error::Remote { .. })), "another kind");
    let mut p = Process::spawn(by_name, name.clone()).expect("spawn");
    q.put("ping".into()).expect("put");
    assert!(done.wait_timeout(GUARD).expect("wait"), "hang guard");
    p.join_timeout(GUARD).expect("join: hang guard").expect("by name");
    assert_eq!(q.get_timeout(GUARD).expect("get"), "ping back");
    mgr.shutdown().expect("shutdown");
    names.finish();
}
