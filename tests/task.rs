//! What every function-taking call accepts (`TaskFn`): fn items, fn
//! pointers, closures that capture nothing, and `shmproc::task!` with
//! named captures, over `Process` (all three start methods), `Pool`
//! (all three), the executor and `DictProxy::update_with`.
//!
//! Fork is refused in a multi-threaded test harness, so the Fork cases
//! run inside a Spawn child's task (a re-executed child runs its task
//! before `main`, single-threaded), as in tests/pool.rs and
//! tests/process.rs.
//!
//! The compile-fail cases (a capture not listed, a capture that cannot
//! travel, a capturing closure without the macro) are doc tests on
//! `shmproc::task!`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use shmproc::{Context, Error, Pool, ProcessPoolExecutor, StartMethod, task};

/// Every wait that should end does so long before this.
const GUARD: Duration = Duration::from_secs(30);

fn square(x: u64) -> u64 {
    x * x
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Scale {
    factor: u64,
    offset: u64,
}

/// What each case computes for `x`, with the captures below.
fn expected(x: u64) -> (u64, u64, u64, u64) {
    (x * x, x * x, x * 2, (x * 3 + 1) * 2 + 3 + 5 + 6)
}

/// The four kinds of task over one process each under method `m`: a fn
/// item, a fn pointer, a capture-free closure, a `task!` capturing a
/// String, a Vec and a struct.
fn four_processes(m: StartMethod, x: u64) -> Result<(u64, u64, u64, u64), Error> {
    let ctx = Context::new(m);
    let ptr: fn(u64) -> u64 = square;
    let (name, list, scale) = (String::from("abc"), vec![1u64, 4], Scale { factor: 3, offset: 1 });
    let captured = task!((name, list, scale) |x: u64| {
        (x * scale.factor + scale.offset) * 2 + name.len() as u64 + list.iter().sum::<u64>() + 6
    });
    let mut a = ctx.spawn(square, x)?;
    let mut b = ctx.spawn(ptr, x)?;
    let mut c = ctx.spawn(|x: u64| x * 2, x)?;
    let mut d = ctx.spawn(captured, x)?;
    Ok((a.join()?, b.join()?, c.join()?, d.join()?))
}

#[test]
fn every_kind_of_task_runs_in_a_process_under_spawn_and_the_fork_server() {
    for m in [StartMethod::Spawn, StartMethod::ForkServer] {
        assert_eq!(four_processes(m, 4).expect("processes"), expected(4), "{m:?}");
    }
}

/// Task: the same under Fork, in a single-threaded Spawn child.
fn four_forked(x: u64) -> Result<(u64, u64, u64, u64), String> {
    four_processes(StartMethod::Fork, x).map_err(|e| e.to_string())
}

#[test]
fn every_kind_of_task_runs_in_a_forked_process() {
    let mut p = Context::new(StartMethod::Spawn).spawn(four_forked, 5).expect("start");
    assert_eq!(p.join_timeout(GUARD).expect("join: finished within the guard"), Ok(expected(5)));
}

#[test]
fn a_zero_argument_task_and_a_task_that_captures_nothing() {
    let greeting = String::from("hello");
    let mut p = shmproc::Process::spawn(task!((greeting) || format!("{greeting}, world")), ()).expect("start");
    assert_eq!(p.join().expect("join"), "hello, world");
    let mut q = shmproc::Process::spawn(task!(() |x: u8| x + 1), 1).expect("start");
    assert_eq!(q.join().expect("join"), 2);
}

/// The pool calls with each kind of task under method `m`.
fn pool_calls(m: StartMethod) -> Result<Vec<Vec<u64>>, Error> {
    let pool = Pool::builder().processes(2).start_method(m).build()?;
    let ptr: fn(u64) -> u64 = square;
    let (k, name) = (3u64, String::from("ab"));
    let t = task!((k, name) |x: u64| x * *k + name.len() as u64);
    let mut out = vec![
        pool.map(square, 0..6)?,
        pool.map(ptr, 0..6)?,
        pool.map(|x: u64| x * 2, 0..6)?,
        pool.map(t.clone(), 0..6)?,
        pool.map_chunked(t.clone(), 0..6, 4)?,
        vec![pool.apply(t.clone(), 10)?, pool.apply_async(t.clone(), 11)?.get_timeout(GUARD).map_err(Error::from)?],
    ];
    out.push(pool.imap(t.clone(), 0..6)?.collect::<Result<_, _>>().map_err(Error::from)?);
    let mut un: Vec<u64> = pool.imap_unordered(t.clone(), 0..6)?.collect::<Result<_, _>>().map_err(Error::from)?;
    un.sort_unstable();
    out.push(un);
    out.push(pool.map_async(t, 0..3)?.get_timeout(GUARD).map_err(Error::from)?);
    pool.close();
    pool.join().map_err(Error::from)?;
    Ok(out)
}

fn pool_expected() -> Vec<Vec<u64>> {
    let t: Vec<u64> = (0..6).map(|x| x * 3 + 2).collect();
    vec![
        (0..6).map(|x| x * x).collect(),
        (0..6).map(|x| x * x).collect(),
        (0..6).map(|x| x * 2).collect(),
        t.clone(),
        t.clone(),
        vec![32, 35],
        t.clone(),
        t,
        vec![2, 5, 8],
    ]
}

#[test]
fn pool_calls_take_every_kind_of_task_under_spawn_and_the_fork_server() {
    for m in [StartMethod::Spawn, StartMethod::ForkServer] {
        assert_eq!(pool_calls(m).expect("pool"), pool_expected(), "{m:?}");
    }
}

/// Task: the pool calls under Fork, in a single-threaded Spawn child.
fn forked_pool_calls(_: ()) -> Result<Vec<Vec<u64>>, String> {
    pool_calls(StartMethod::Fork).map_err(|e| e.to_string())
}

#[test]
fn pool_calls_take_every_kind_of_task_under_fork() {
    let mut p = Context::new(StartMethod::Spawn).spawn(forked_pool_calls, ()).expect("start");
    assert_eq!(p.join_timeout(GUARD).expect("join: finished within the guard"), Ok(pool_expected()));
}

#[test]
fn executor_submit_and_map_take_tasks_with_captures() {
    let ex = ProcessPoolExecutor::new(2).expect("executor");
    let words = vec![String::from("a"), String::from("bcd")];
    let t = task!((words) |i: usize| words[i % 2].len() * 10 + i);
    assert_eq!(ex.submit(t.clone(), 3).expect("submit").result_timeout(GUARD).expect("result"), 33);
    let r: Vec<usize> = ex.map(t.clone(), 0..4, 1).expect("map").collect::<Result<_, _>>().expect("results");
    assert_eq!(r, [10, 31, 12, 33]);
    let r: Vec<usize> = ex.map_timeout(t, 0..2, 1, GUARD).expect("map").collect::<Result<_, _>>().expect("results");
    assert_eq!(r, [10, 31]);
    assert_eq!(ex.submit(|x: u8| x + 1, 1).expect("submit").result_timeout(GUARD).expect("result"), 2);
}

// CPython: _TestPool.test_map_unpicklable / test_apply (an exception in a
// task comes back with its message); here a panic in a `task!` body.
#[test]
fn a_panicking_task_with_captures_reports_its_message() {
    let pool = Pool::new(1).expect("pool");
    let what = String::from("captured boom");
    let t = task!((what) |x: u64| -> u64 { panic!("{what} {x}") });
    match pool.apply(t.clone(), 7) {
        Err(Error::TaskPanicked { message, .. }) => assert!(message.contains("captured boom 7"), "{message}"),
        other => panic!("expected a panic, got {other:?}"),
    }
    assert_eq!(pool.apply(square, 3).expect("the pool lives on"), 9);
    let mut p = shmproc::Process::spawn(t, 8).expect("start");
    let err = p.join().expect_err("the child panicked");
    assert!(err.to_string().contains("captured boom 8"), "{err}");
}

#[test]
fn dict_update_takes_a_task_with_captures() {
    let mgr = shmproc::Manager::start().expect("manager");
    let d = mgr.dict::<String, Vec<String>>().expect("dict");
    let key = format!("task-{}", std::process::id());
    let (word, times) = (String::from("ha"), 2usize);
    let push = task!((word, times) |old: Option<Vec<String>>| {
        let mut v = old.unwrap_or_default();
        v.extend(std::iter::repeat_n(word.clone(), *times));
        Some(v)
    });
    assert_eq!(d.update_with(&key, push.clone()).expect("update").map(|v| v.len()), Some(2));
    assert_eq!(d.update_with(&key, push).expect("update").map(|v| v.len()), Some(4));
    let clear = |_: Option<Vec<String>>| -> Option<Vec<String>> { None };
    assert_eq!(d.update_with(&key, clear).expect("update"), None);
    assert!(!d.contains_key(&key).expect("contains"));
    let name = key.clone();
    let fail = task!((name) |_old: Option<Vec<String>>| -> Option<Vec<String>> { panic!("no {name}") });
    assert!(matches!(d.update_with(&key, fail), Err(Error::Remote { .. })));
    mgr.shutdown().expect("shutdown");
}

#[test]
fn a_closure_capturing_one_word_is_refused_with_a_clear_error() {
    let k = 7u64;
    let c = move |x: u64| x + k;
    match shmproc::Process::spawn(c, 1) {
        Err(Error::InvalidArgument { what }) => assert!(what.contains("shmproc::task!"), "{what}"),
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }
}

/// Each worker's initializer sets this; the task reads it.
static SEEN: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

fn seen(_: ()) -> String {
    SEEN.lock().expect("lock").clone()
}

fn initialized_pools(m: StartMethod) -> Result<Vec<String>, Error> {
    let prefix = String::from("worker-");
    let again = prefix.clone();
    let with_captures = task!((prefix) |n: u32| *SEEN.lock().expect("lock") = format!("{prefix}{n}"));
    let a = Pool::builder().processes(1).start_method(m).initializer(with_captures, 7).build()?;
    let b = Pool::builder()
        .processes(1)
        .start_method(m)
        .initializer(|n: u32| *SEEN.lock().expect("lock") = format!("plain-{n}"), 8)
        .build()?;
    let ex = ProcessPoolExecutor::builder()
        .max_workers(1)
        .start_method(m)
        .initializer(task!((again) |n: u32| *SEEN.lock().expect("lock") = format!("{again}{n}")), 9)
        .build()?;
    let from_ex = ex.submit(seen, ())?.result().map_err(|e| Error::Codec { message: e.to_string() })?;
    Ok(vec![a.apply(seen, ())?, b.apply(seen, ())?, from_ex])
}

#[test]
fn initializers_take_closures_and_captures() {
    for m in [StartMethod::Spawn, StartMethod::ForkServer] {
        assert_eq!(initialized_pools(m).expect("pools"), ["worker-7", "plain-8", "worker-9"], "{m:?}");
    }
}
