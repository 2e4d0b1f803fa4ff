//! `Value`, `Array`, `RawValue` and `RawArray` in one process (threads):
//! the API, lock-free reads that never tear, owner death of a thread,
//! garbage in the segment, and handles passed to children. Multi-process
//! cases (SIGKILLed holders, start methods) are in `tests/mp/shared.rs`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use shmproc::{Array, Error, LockError, LockTimeoutError, RawArray, RawValue, TryLockError, Value};

fn unique(tag: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!("t-shared-{tag}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
struct Point {
    x: f64,
    y: f64,
    tag: u32,
    pad: u32,
}

#[test]
fn value_load_store_lock() {
    let v = Value::new(Point { x: 1.0, y: 2.0, tag: 3, pad: 0 }).expect("value");
    assert_eq!(v.load().expect("load").tag, 3);
    v.store(Point { x: -1.0, y: 0.5, tag: 9, pad: 0 }).expect("store");
    {
        let mut g = v.lock().expect("lock");
        g.x += 10.0;
        assert!(v.is_locked());
        // A reader without the lock sees the last value written back.
        assert_eq!(v.load().expect("load while held").x, -1.0);
        assert!(matches!(v.try_lock(), Err(TryLockError::Deadlock)));
    }
    assert_eq!(v.load().expect("load"), Point { x: 9.0, y: 0.5, tag: 9, pad: 0 });
    assert!(!v.is_locked());
    let d = format!("{v:?}");
    assert!(d.contains("Value") && d.contains("Point"), "{d}");
}

#[test]
fn large_values_take_the_lock() {
    let v = Value::new([7u64; 64]).expect("value");
    assert_eq!(v.load().expect("load")[63], 7);
    v.lock().expect("lock")[0] = 1;
    v.store([3; 64]).expect("store");
    assert_eq!(v.load().expect("load"), [3; 64]);
    let g = v.lock().expect("lock");
    assert!(matches!(v.load(), Err(Error::Deadlock)));
    drop(g);
    // Over-aligned small values are not seqlocked either.
    let w = Value::new(5u128).expect("u128");
    *w.lock().expect("lock") += 1;
    assert_eq!(w.load().expect("load"), 6);
}

#[test]
fn value_timeouts_and_try_lock_from_another_thread() {
    let v = Value::new(0u32).expect("value");
    let g = v.lock().expect("lock");
    std::thread::scope(|s| {
        s.spawn(|| {
            assert!(matches!(v.try_lock(), Err(TryLockError::WouldBlock)));
            assert!(matches!(v.lock_timeout(Duration::from_millis(20)), Err(LockTimeoutError::Timeout)));
            assert_eq!(v.load().expect("lock-free load"), 0);
        });
    });
    drop(g);
}

/// Writers store values whose eight words are all equal; readers without
/// the lock must never see two different words.
#[test]
fn lock_free_loads_never_tear() {
    let v = Value::new([0u64; 8]).expect("value");
    std::thread::scope(|s| {
        for t in 0..2u64 {
            let v = &v;
            s.spawn(move || {
                for i in 0..20_000u64 {
                    if i % 2 == 0 {
                        v.store([i * 2 + t; 8]).expect("store");
                    } else {
                        let mut g = v.lock().expect("lock");
                        *g = [g[0] + 1; 8];
                    }
                }
            });
        }
        for _ in 0..2 {
            s.spawn(|| {
                for _ in 0..50_000 {
                    let x = v.load().expect("load");
                    assert!(x.iter().all(|w| *w == x[0]), "torn read {x:?}");
                }
            });
        }
    });
}

#[test]
fn counting_under_the_lock_is_exact() {
    let v = Value::new(0i64).expect("value");
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..5_000 {
                    *v.lock().expect("lock") += 1;
                }
            });
        }
    });
    assert_eq!(v.load().expect("load"), 20_000);
}

#[test]
fn a_thread_dying_with_the_guard_is_an_owner_death() {
    let v = Value::new(1u64).expect("value");
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut g = v.lock().expect("lock");
            *g = 99; // never written back: the copy dies with the thread
            std::mem::forget(g);
        });
    });
    // The last complete value stays readable without the lock.
    assert_eq!(v.load().expect("load"), 1);
    match v.lock() {
        Err(LockError::OwnerDied(mut g)) => {
            assert!(g.is_recovering());
            assert_eq!(*g, 1);
            *g = 2;
            g.mark_consistent();
        }
        other => panic!("expected OwnerDied, got {other:?}"),
    }
    assert_eq!(v.load().expect("load"), 2);
    assert!(!v.lock().expect("clean").is_recovering());
}

#[test]
fn array_api() {
    let a = Array::from_slice(&[1i32, 2, 3, 4]).expect("array");
    assert_eq!((a.len(), a.is_empty()), (4, false));
    assert_eq!(a.load(2).expect("load"), 3);
    a.store(0, -1).expect("store");
    assert!(matches!(a.load(4), Err(Error::InvalidArgument { .. })));
    assert!(matches!(a.store(usize::MAX, 0), Err(Error::InvalidArgument { .. })));
    assert!(matches!(a.copy_from_slice(&[1, 2]), Err(Error::InvalidArgument { .. })));
    {
        let mut g = a.lock().expect("lock");
        g.reverse();
        assert!(matches!(a.try_lock(), Err(TryLockError::Deadlock)));
    }
    assert_eq!(a.to_vec().expect("to_vec"), [4, 3, 2, -1]);
    a.copy_from_slice(&[5, 6, 7, 8]).expect("copy in");
    let mut out = [0; 4];
    a.copy_to_slice(&mut out).expect("copy out");
    assert_eq!(out, [5, 6, 7, 8]);
    let e = Array::<f64>::new(0).expect("empty");
    assert!(e.is_empty() && e.to_vec().expect("to_vec").is_empty());
    assert!(format!("{a:?}").contains("len: 4"));
}

#[test]
fn array_owner_death_is_reported_and_repaired() {
    let a = Array::<u32>::new(3).expect("array");
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut g = a.lock().expect("lock");
            g[0] = 1;
            std::mem::forget(g);
        });
    });
    // Element calls report it and leave it for `lock` to repair.
    assert!(matches!(a.load(0), Err(Error::OwnerDied)));
    assert!(matches!(a.to_vec(), Err(Error::OwnerDied)));
    match a.lock() {
        Err(LockError::OwnerDied(mut g)) => {
            assert_eq!(g[0], 1);
            g.fill(0);
            g.mark_consistent();
        }
        other => panic!("expected OwnerDied, got {other:?}"),
    }
    assert_eq!(a.to_vec().expect("clean"), [0, 0, 0]);
}

#[test]
fn named_objects_and_wrong_types() {
    let n = unique("v");
    let v = Value::create(&n, 5u32).expect("create");
    Value::<u32>::open(&n).expect("open").store(6).expect("store");
    assert_eq!(v.load().expect("load"), 6);
    assert!(matches!(Value::<u64>::open(&n), Err(Error::LayoutMismatch { .. })));
    assert!(matches!(Array::<u32>::open(&n), Err(Error::KindMismatch { .. } | Error::LayoutMismatch { .. })));
    assert!(matches!(RawValue::<u32>::open(&n), Err(Error::LayoutMismatch { .. })));

    let n = unique("a");
    let a = Array::<u16>::create(&n, 3).expect("create");
    Array::<u16>::open(&n).expect("open").store(1, 9).expect("store");
    assert_eq!(a.to_vec().expect("to_vec"), [0, 9, 0]);
    assert!(matches!(Array::<u32>::open(&n), Err(Error::LayoutMismatch { .. })));
    assert!(matches!(RawArray::<u16>::open(&n), Err(Error::LayoutMismatch { .. })));

    let n = unique("r");
    let r = RawArray::<u64>::create(&n, 2).expect("create");
    RawArray::<u64>::open(&n).expect("open").store(1, 4).expect("store");
    assert_eq!(r.to_vec(), [0, 4]);
    assert!(matches!(Array::<u64>::open(&n), Err(Error::LayoutMismatch { .. })));
}

#[test]
fn raw_value_and_array() {
    let v = RawValue::new(1.25f32).expect("raw value");
    v.store(2.5);
    assert_eq!(v.load(), 2.5);
    let c = RawValue::new(0i16).expect("counter");
    assert_eq!(c.fetch_add(-2), 0);
    assert_eq!(c.load(), -2);
    let n = RawValue::new(0u64).expect("counter");
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                (0..10_000).for_each(|_| {
                    n.fetch_add(1);
                })
            });
        }
    });
    assert_eq!(n.load(), 40_000);
    assert!(format!("{n:?}").contains("RawValue"));

    let a = RawArray::from_slice(&[1u8, 2, 3]).expect("raw array");
    assert_eq!(a.fetch_add(2, 250).expect("add"), 3);
    assert_eq!(a.to_vec(), [1, 2, 253]);
    assert!(a.load(3).is_err() && a.store(3, 0).is_err() && a.fetch_add(9, 1).is_err());
    a.copy_from_slice(&[7, 8, 9]).expect("copy in");
    let mut out = [0; 3];
    a.copy_to_slice(&mut out).expect("copy out");
    assert_eq!(out, [7, 8, 9]);
    assert!(a.copy_to_slice(&mut [0; 2]).is_err());
    let f = RawArray::<f64>::new(2).expect("f64");
    f.store(1, 0.5).expect("store");
    assert_eq!(f.to_vec(), [0.0, 0.5]);
}

/// Garbage in the stored length or element size (as a hostile peer would
/// write) is an error when a handle is made, never an out-of-bounds view.
#[test]
fn garbage_array_header_is_an_error() {
    for (field, bad) in [(0u64, u64::MAX), (0, 1 << 40), (0, 1000), (8, 3), (8, u64::MAX)] {
        let n = unique("garbage");
        let _a = Array::<u32>::create(&n, 16).expect("create");
        let path = format!("/dev/shm/shmproc.{n}");
        let f = std::fs::OpenOptions::new().write(true).open(&path).expect("open file");
        // Segment header (128) + the array's `len` at payload offset 16.
        std::os::unix::fs::FileExt::write_all_at(&f, &bad.to_le_bytes(), 128 + 16 + field).expect("poke");
        match Array::<u32>::open(&n) {
            Err(Error::Corrupt { .. }) => {}
            other => panic!("len/elem_size {bad:#x} at +{field}: expected Corrupt, got {other:?}"),
        }
        assert!(matches!(RawArray::<u32>::open(&n), Err(Error::LayoutMismatch { .. })));
    }
}

/// An odd sequence word (a writer that died mid-write, or garbage) makes
/// `load` fall back to the lock after a bounded number of tries; a clean
/// holder mends it.
#[test]
fn garbage_sequence_word_is_bounded() {
    let n = unique("seq");
    let v = Value::create(&n, 41u32).expect("create");
    let path = format!("/dev/shm/shmproc.{n}");
    let f = std::fs::OpenOptions::new().read(true).write(true).open(&path).expect("open file");
    // Segment header (128) + the lock (16): the sequence word.
    std::os::unix::fs::FileExt::write_all_at(&f, &u64::MAX.to_le_bytes(), 144).expect("poke");
    assert_eq!(v.load().expect("load falls back to the lock"), 41);
    // The fallback's clean guard made the word even again: the lock-free path works.
    let mut w = [0u8; 8];
    std::os::unix::fs::FileExt::read_exact_at(&f, &mut w, 144).expect("peek");
    assert_eq!(u64::from_le_bytes(w) & 1, 0);
    *v.lock().expect("lock") += 1;
    assert_eq!(v.load().expect("load"), 42);
}

#[cfg(feature = "serde")]
fn bump((v, a, r, ra): (Value<i64>, Array<f64>, RawValue<u32>, RawArray<i32>)) -> i64 {
    *v.lock().expect("lock") += 1;
    a.lock().expect("lock").iter_mut().for_each(|x| *x *= 2.0);
    r.fetch_add(1);
    ra.fetch_add(0, 5).expect("in range");
    v.load().expect("load")
}

#[cfg(feature = "serde")]
#[test]
fn handles_pass_to_children() {
    for m in [shmproc::StartMethod::Spawn, shmproc::StartMethod::ForkServer] {
        let v = Value::new(10i64).expect("value");
        let a = Array::from_slice(&[1.0, 2.0]).expect("array");
        let r = RawValue::new(0u32).expect("raw");
        let ra = RawArray::<i32>::new(1).expect("raw array");
        let mut p = shmproc::Context::new(m).spawn(bump, (v.clone(), a.clone(), r.clone(), ra.clone())).expect("start");
        assert_eq!(p.join().expect("join"), 11);
        assert_eq!(v.load().expect("load"), 11);
        assert_eq!(a.to_vec().expect("to_vec"), [2.0, 4.0]);
        assert_eq!(r.load(), 1);
        assert_eq!(ra.load(0).expect("load"), 5);
    }
}
