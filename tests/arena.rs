//! Small anonymous objects (locks, values, small arrays, ...) live in shared
//! arenas (`src/shm/heap.rs`): a process makes 100 000 of them under a low
//! descriptor limit, passes a thousand to a child for one descriptor per
//! arena, survives a child killed while holding some, and never sees two
//! objects in one cell.

#![cfg(feature = "serde")]

use std::time::Duration;

use shmproc::{Array, Event, Lock, LockError, Mutex, Process, RawArray, Value};

/// A hang guard only.
const GUARD: Duration = Duration::from_secs(60);

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").expect("list /proc/self/fd").count()
}

/// In a child (the limit is the child's own): 100 000 values and 100 000
/// locks under `ulimit -n 1024`, each used once. Returns the descriptors
/// open at the end.
fn many_under_a_low_limit(n: u64) -> usize {
    let limit = rustix::process::Rlimit { current: Some(1024), maximum: None };
    let old = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    rustix::process::setrlimit(
        rustix::process::Resource::Nofile,
        rustix::process::Rlimit { maximum: old.maximum, ..limit },
    )
    .expect("lower RLIMIT_NOFILE");
    let values: Vec<Value<u64>> = (0..n).map(|i| Value::new(i).expect("Value::new under ulimit -n 1024")).collect();
    let locks: Vec<Lock> = (0..n).map(|_| Lock::new().expect("Lock::new under ulimit -n 1024")).collect();
    for (i, (v, l)) in values.iter().zip(&locks).enumerate() {
        let _g = l.lock().expect("lock");
        *v.lock().expect("value lock") += 1;
        assert_eq!(v.load().expect("load"), i as u64 + 1, "value {i} is its own");
    }
    open_fds()
}

#[test]
fn a_hundred_thousand_values_and_locks_under_ulimit_1024() {
    let mut p = Process::spawn(many_under_a_low_limit, 100_000).expect("child");
    let fds = p.join_timeout(GUARD * 4).expect("join: child finished");
    assert!(fds < 64, "200 000 objects in a few arenas, not one descriptor each: {fds} open");
}

type Objects = (Vec<Lock>, Vec<Value<u64>>, Vec<Array<u64>>, Vec<RawArray<u32>>);

fn count_and_use((locks, values, arrays, raws): Objects) -> usize {
    let fds = open_fds();
    for (i, (l, v)) in locks.iter().zip(&values).enumerate() {
        let _g = l.lock().expect("lock");
        v.store(v.load().expect("load") + i as u64).expect("store");
    }
    for (i, a) in arrays.iter().enumerate() {
        a.lock().expect("lock").iter_mut().for_each(|x| *x += i as u64);
    }
    for (i, r) in raws.iter().enumerate() {
        r.store(2, i as u32).expect("store");
    }
    fds
}

fn count_only(_: ()) -> usize {
    open_fds()
}

#[test]
fn a_thousand_objects_cost_a_child_one_descriptor_per_arena() {
    let locks: Vec<Lock> = (0..1000).map(|_| Lock::new().expect("lock")).collect();
    let values: Vec<Value<u64>> = (0..1000).map(|_| Value::new(1).expect("value")).collect();
    let arrays: Vec<Array<u64>> = (0..100).map(|_| Array::from_slice(&[1, 2, 3, 4]).expect("array")).collect();
    let raws: Vec<RawArray<u32>> = (0..100).map(|_| RawArray::new(3).expect("raw array")).collect();
    let mut bare = Process::spawn(count_only, ()).expect("child");
    let baseline = bare.join_timeout(GUARD).expect("join: finished");
    let objects = (locks.clone(), values.clone(), arrays.clone(), raws.clone());
    let mut p = Process::spawn(count_and_use, objects).expect("child");
    let fds = p.join_timeout(GUARD).expect("join: finished");
    // Locks, u64 values and the raw arrays take 64-byte cells, the arrays
    // of four u64s 128-byte ones: two arenas (or one more if another test
    // of this binary filled one meanwhile).
    assert!(fds <= baseline + 3, "{fds} descriptors against {baseline} for a child given nothing");
    for (i, v) in values.iter().enumerate() {
        assert_eq!(v.load().expect("load"), 1 + i as u64, "the child's write to value {i}");
    }
    for (i, a) in arrays.iter().enumerate() {
        let i = i as u64;
        assert_eq!(a.to_vec().expect("to_vec"), [1 + i, 2 + i, 3 + i, 4 + i], "array {i}");
    }
    for (i, r) in raws.iter().enumerate() {
        assert_eq!(r.to_vec(), [0, 0, i as u32], "raw array {i}");
    }
    for l in &locks {
        assert!(l.try_acquire().is_ok(), "released by the child");
        l.release().expect("release");
    }
}

/// Holds lock 500 and mutex 7, says so, and waits to be killed.
fn hold_and_wait((locks, mutexes, held): (Vec<Lock>, Vec<Mutex<u64>>, Event)) {
    locks[500].acquire().expect("acquire");
    let mut g = mutexes[7].lock().expect("lock");
    *g = 99;
    held.set();
    std::thread::sleep(GUARD * 2);
    drop(g);
}

#[test]
fn a_killed_holder_leaves_the_rest_of_the_arena_usable() {
    let locks: Vec<Lock> = (0..1000).map(|_| Lock::new().expect("lock")).collect();
    let mutexes: Vec<Mutex<u64>> = (0..10).map(|i| Mutex::new(i).expect("mutex")).collect();
    let held = Event::new().expect("event");
    let mut p = Process::spawn(hold_and_wait, (locks.clone(), mutexes.clone(), held.clone())).expect("child");
    assert!(held.wait_timeout(GUARD).is_ok(), "the child took its locks");
    p.kill().expect("kill");
    assert!(p.join_timeout(GUARD).is_err(), "killed, so no result");
    for (i, l) in locks.iter().enumerate() {
        assert!(l.acquire_timeout(GUARD).is_ok(), "lock {i}, the dead holder's included");
        l.release().expect("release");
    }
    for (i, m) in mutexes.iter().enumerate() {
        match m.lock() {
            Ok(g) => assert_eq!(*g, i as u64),
            Err(LockError::OwnerDied(mut g)) => {
                assert_eq!((i, *g), (7, 99), "only mutex 7 had a holder, and it wrote 99");
                *g = 7;
                g.mark_consistent();
            }
            Err(e) => panic!("mutex {i}: {e:?}"),
        }
    }
    // New objects come from the same arenas and work.
    let more: Vec<Value<u64>> = (0..100).map(|i| Value::new(i).expect("value")).collect();
    assert!(more.iter().enumerate().all(|(i, v)| v.load().expect("load") == i as u64));
}

/// Waits until the parent made new objects, then reads its own value.
fn read_later((v, go): (Value<u64>, Event)) -> u64 {
    assert!(go.wait_timeout(GUARD).is_ok(), "the parent says go");
    v.load().expect("load")
}

#[test]
fn a_sent_object_outlives_the_senders_handle() {
    let v = Value::new(4242u64).expect("value");
    let go = Event::new().expect("event");
    let mut p = Process::spawn(read_later, (v, go.clone())).expect("child");
    // The parent's handle went into the argument and was dropped with it:
    // the child's reference keeps the cell, so new values take other cells.
    let others: Vec<Value<u64>> = (0..1000).map(|i| Value::new(i).expect("value")).collect();
    go.set();
    assert_eq!(p.join_timeout(GUARD).expect("join: finished"), 4242);
    assert!(others.iter().enumerate().all(|(i, o)| o.load().expect("load") == i as u64));
}

#[cfg(any(feature = "pool", feature = "inspect"))]
fn square(x: u64) -> u64 {
    x * x
}

/// Runs in a (single-threaded) child, so that it may fork: a forked child
/// and a pool whose workers are forked from a copy of this process inherit
/// handles to its arena objects; those processes end and give back only
/// the references they took, so the objects stay this process's. Returns
/// what its values read at the end.
#[cfg(feature = "pool")]
fn forked_copies_keep_the_cells(_: ()) -> Vec<u64> {
    let mine: Vec<Value<u64>> = (0..100).map(|i| Value::new(1000 + i).expect("value")).collect();
    let copy = mine[0].clone();
    let mut p = Process::fork(move || copy.load().expect("load")).expect("fork");
    assert_eq!(p.join_timeout(GUARD).expect("join: finished"), 1000);
    let pool = shmproc::Pool::builder()
        .processes(2)
        .maxtasksperchild(1)
        .start_method(shmproc::StartMethod::Fork)
        .build()
        .expect("pool");
    assert_eq!(pool.map(square, 0..20u64).expect("map")[19], 361);
    pool.close();
    pool.join().expect("join");
    let fresh: Vec<Value<u64>> = (0..1000).map(|i| Value::new(i).expect("value")).collect();
    assert!(fresh.iter().enumerate().all(|(i, v)| v.load().expect("load") == i as u64));
    mine.iter().map(|v| v.load().expect("load")).collect()
}

#[cfg(feature = "pool")]
#[test]
fn forked_copies_of_handles_do_not_free_the_parents_cells() {
    let mut p = Process::spawn(forked_copies_keep_the_cells, ()).expect("child");
    let seen = p.join_timeout(GUARD).expect("join: finished");
    assert_eq!(seen, (1000..1100).collect::<Vec<u64>>(), "no value handed out again");
}

/// An arena object passed where no descriptor can travel (outside a child's
/// arguments) is refused with an encoding error, not sent as a dangling
/// index.
#[test]
fn an_arena_object_travels_inside_a_queue_item() {
    // Queue items carry descriptors (the queue's socket pair), so an
    // anonymous lock in an arena cell travels as it does as an argument.
    let q = shmproc::Queue::<Lock>::new(0).expect("queue");
    let lock = Lock::new().expect("lock");
    q.put(lock.clone()).expect("an anonymous lock travels in a queue item");
    let got = q.get().expect("get");
    let held = got.lock().expect("lock");
    assert!(lock.try_lock().is_err(), "the same lock");
    drop(held);
    assert!(lock.try_lock().is_ok());
}

/// In a (single-threaded) child: pools with the fork start method come and
/// go while this process holds 100 values; then the values are dropped.
/// Returns the cells taken in this process's arenas before the pools and
/// at the end.
#[cfg(feature = "inspect")]
fn pools_come_and_go(_: ()) -> (usize, usize) {
    let taken = || -> usize {
        let arenas = shmproc::inspect::arenas(std::process::id()).expect("arenas");
        arenas.iter().filter_map(|r| r.field("taken")?.parse::<usize>().ok()).sum()
    };
    let mine: Vec<Value<u64>> = (0..100).map(|i| Value::new(i).expect("value")).collect();
    let before = taken();
    for _ in 0..3 {
        let pool =
            shmproc::Pool::builder().processes(1).start_method(shmproc::StartMethod::Fork).build().expect("pool");
        assert_eq!(pool.map(square, 0..4u64).expect("map"), [0, 1, 4, 9]);
        pool.close();
        pool.join().expect("join");
    }
    drop(mine);
    (before, taken())
}

/// The processes a pool forks from a copy of this process (its private
/// fork server, its workers) give back the references they took for this
/// process's cells when they end, so the cells are free again once this
/// process drops its objects.
#[cfg(feature = "inspect")]
#[test]
fn forked_pools_give_their_references_back() {
    let mut p = Process::spawn(pools_come_and_go, ()).expect("child");
    let (before, after) = p.join_timeout(GUARD).expect("join: finished");
    assert!(after + 100 <= before, "the 100 values' cells are free: {before} taken before, {after} after");
}
