//! `Value` and `Array` across processes: children counting under the lock
//! with each start method (no lost update), a holder SIGKILLed with the
//! guard (`OwnerDied` with the data; RELIABILITY case 1 for shared data), a
//! writer that died mid-write (an odd sequence word: readers fall back to
//! the lock, never spin forever), opening by name from another process
//! with the right and a wrong type, and a garbage length written into an
//! array's segment (RELIABILITY case 35: `Corrupt`, never an out-of-bounds
//! view).
//!
//! Helpers run the roles `shared_*` below; garbage is written from the test
//! process into the segment's file, as in `ring.rs`.

use shmproc::{Array, Error, LockError, Value};
#[cfg(feature = "serde")]
use shmproc::{Context, StartMethod};

use crate::harness::{Ctx, arg, arg_num, peek, poke, say, shm_path, wait_for_parent};

/// File offsets of a `Value`'s sequence word and an `Array`'s length
/// (segment header 128 + payload offset 16, after the lock; see
/// `src/shared/value.rs` and `src/shared/array.rs`).
const SEQ: u64 = 144;
const ARRAY_LEN: u64 = 144;

/// Runs a helper role of this area (roles are named `shared_*`).
pub(crate) fn run_role(role: &str) {
    match role {
        "shared_holder" => role_holder(),
        "shared_open" => role_open(),
        other => panic!("unknown shared role {other:?}"),
    }
}

/// Role `shared_holder`: opens `Value<u64>` or `Array<u64>` `NAME` (by
/// `KIND`), locks it, changes the data (the value in its guard's copy, the
/// array's first element in place), says `held` and waits to be killed.
fn role_holder() {
    let name = arg("NAME");
    match arg("KIND").as_str() {
        "value" => {
            let v = Value::<u64>::open(&name).expect("open value");
            let mut g = v.lock().expect("lock");
            *g = 999;
            say("held");
            wait_for_parent();
        }
        "array" => {
            let a = Array::<u64>::open(&name).expect("open array");
            let mut g = a.lock().expect("lock");
            g[0] = 999; // half of an update that would also change g[1]
            say("held");
            wait_for_parent();
        }
        k => panic!("unknown kind {k}"),
    }
}

/// Role `shared_open`: opens `Value<i64>` `NAME`, adds `ADD` under the
/// lock and says `value <v>`; then opens it as `Value<u32>` and says
/// `wrong <outcome>`; then opens `Array<u64>` `ARRAY` and says
/// `array <outcome>`.
fn role_open() {
    let v = Value::<i64>::open(&arg("NAME")).expect("open value");
    *v.lock().expect("lock") += arg_num::<i64>("ADD");
    say(format_args!("value {}", v.load().expect("load")));
    say(format_args!("wrong {}", outcome(Value::<u32>::open(&arg("NAME")).map(|_| ()))));
    say(format_args!("array {}", outcome(Array::<u64>::open(&arg("ARRAY")).map(|a| a.len()))));
}

fn outcome<T: std::fmt::Debug>(r: shmproc::Result<T>) -> String {
    match r {
        Ok(x) => format!("Ok({x:?})"),
        Err(Error::LayoutMismatch { .. }) => "LayoutMismatch".into(),
        Err(Error::Corrupt { .. }) => "Corrupt".into(),
        Err(e) => format!("{e:?}"),
    }
}

// ---------------------------------------------------------------------------
// Counting under each start method
// ---------------------------------------------------------------------------

#[cfg(feature = "serde")]
fn add_1000(v: Value<i64>) -> i64 {
    for _ in 0..1000 {
        *v.lock().expect("lock") += 1;
    }
    v.load().expect("load")
}

#[cfg(feature = "serde")]
fn negate_all(a: Array<i32>) {
    for x in a.lock().expect("lock").iter_mut() {
        *x = -*x;
    }
}

#[cfg(feature = "serde")]
/// Task: two children started with Fork (this Spawn child has one thread)
/// add 1000 each to `v`, and one negates `a`; returns the final value.
fn fork_counting((v, a): (Value<i64>, Array<i32>)) -> Result<i64, String> {
    let e = |e: Error| e.to_string();
    let ctx = Context::new(StartMethod::Fork);
    let mut kids = vec![ctx.spawn(add_1000, v.clone()).map_err(e)?, ctx.spawn(add_1000, v.clone()).map_err(e)?];
    let mut n = ctx.spawn(negate_all, a).map_err(e)?;
    for k in &mut kids {
        k.join().map_err(|x| e(x.into()))?;
    }
    n.join().map_err(|x| e(x.into()))?;
    v.load().map_err(e)
}

#[cfg(feature = "serde")]
#[test]
fn shared_children_count_under_the_lock_with_each_start_method() {
    let ctx = Ctx::new("shared-count");
    for m in [StartMethod::Spawn, StartMethod::ForkServer] {
        ctx.step(format!("counting under {m:?}"));
        let v = Value::new(0i64).expect("value");
        let a = Array::from_slice(&[1, 2, 3]).expect("array");
        let mut kids: Vec<_> = (0..3).map(|_| Context::new(m).spawn(add_1000, v.clone()).expect("start")).collect();
        let mut n = Context::new(m).spawn(negate_all, a.clone()).expect("start");
        *v.lock().expect("lock") += 1; // the parent takes part too
        for k in &mut kids {
            k.join().expect("join");
        }
        n.join().expect("join");
        assert_eq!(v.load().expect("load"), 3001, "lost updates under {m:?}");
        assert_eq!(a.to_vec().expect("to_vec"), [-1, -2, -3]);
    }
    ctx.step("counting under Fork");
    let v = Value::create(&ctx.name("fork"), 0i64).expect("value");
    let a = Array::from_slice(&[4, 5]).expect("array");
    let mut p = Context::new(StartMethod::Spawn).spawn(fork_counting, (v.clone(), a.clone())).expect("start");
    assert_eq!(p.join().expect("join"), Ok(2000));
    assert_eq!(a.to_vec().expect("to_vec"), [-4, -5]);
    drop(v);
    ctx.finish();
}

// ---------------------------------------------------------------------------
// A holder killed with the guard
// ---------------------------------------------------------------------------

/// A named `Value<u64>` holding 5, whose lock a `shared_holder` helper
/// took and died with (SIGKILL); the value's name comes back too.
fn value_with_a_dead_holder(ctx: &Ctx) -> (Value<u64>, String) {
    let name = ctx.name("v");
    let v = Value::create(&name, 5u64).expect("value");
    let mut h = ctx.child("shared_holder").arg("NAME", &name).arg("KIND", "value").start();
    h.expect("held");
    h.kill_and_reap();
    ctx.step("after the kill");
    (v, name)
}

/// Takes the recovery guard of `v` (the previous holder died), checks the
/// data is `seen`, stores `new` and marks it consistent.
fn recover(v: &Value<u64>, seen: Option<u64>, new: u64) {
    match v.lock() {
        Err(LockError::OwnerDied(mut g)) => {
            if let Some(seen) = seen {
                assert_eq!(*g, seen, "the recovery guard shows the data as left");
            }
            *g = new;
            g.mark_consistent();
        }
        other => panic!("expected OwnerDied, got {other:?}"),
    }
}

#[test]
fn shared_value_holder_killed_gives_owner_died_with_data() {
    let ctx = Ctx::new("shared-holder-v");
    let (v, _) = value_with_a_dead_holder(&ctx);
    // The holder died before writing back: the last complete value is still
    // readable without the lock.
    assert_eq!(v.load().expect("load"), 5);
    recover(&v, Some(5), 6);
    assert_eq!(v.load().expect("load"), 6);
    drop(v);
    ctx.finish();
}

#[test]
fn shared_array_holder_killed_gives_owner_died_with_data() {
    let ctx = Ctx::new("shared-holder-a");
    let name = ctx.name("a");
    let a = Array::<u64>::create(&name, 2).expect("array");
    let mut h = ctx.child("shared_holder").arg("NAME", &name).arg("KIND", "array").start();
    h.expect("held");
    h.kill_and_reap();
    ctx.step("after the kill");
    assert!(matches!(a.to_vec(), Err(Error::OwnerDied)), "a copy must report the dead holder");
    match a.lock() {
        Err(LockError::OwnerDied(mut g)) => {
            assert_eq!(&g[..], [999, 0], "the half-done update is visible to the recoverer");
            g[1] = 999;
            g.mark_consistent();
        }
        other => panic!("expected OwnerDied, got {other:?}"),
    }
    assert_eq!(a.to_vec().expect("clean"), [999, 999]);
    drop(a);
    ctx.finish();
}

/// A holder killed in the middle of its write-back leaves the sequence word
/// odd (simulated: the holder is killed with the guard, then the word is
/// made odd in the file). `load` must not spin forever: it falls back to
/// the lock and reports the dead owner; the recoverer's guard makes the
/// word even again.
#[test]
fn shared_writer_dead_mid_write_bounds_readers() {
    let ctx = Ctx::new("shared-midwrite");
    let (v, name) = value_with_a_dead_holder(&ctx);
    let path = shm_path(&name);
    let seq = u64::from_le_bytes(peek(&path, SEQ, 8).try_into().expect("8 bytes"));
    poke(&path, SEQ, &(seq | 1).to_le_bytes());
    ctx.step("load with an odd sequence word and a dead holder");
    assert!(matches!(v.load(), Err(Error::OwnerDied)));
    assert!(matches!(v.load(), Err(Error::OwnerDied)), "a load does not consume the recovery");
    recover(&v, None, 7);
    assert_eq!(v.load().expect("load"), 7);
    let seq = u64::from_le_bytes(peek(&path, SEQ, 8).try_into().expect("8 bytes"));
    assert_eq!(seq & 1, 0, "the recoverer made the word even");
    drop(v);
    ctx.finish();
}

// ---------------------------------------------------------------------------
// By name, wrong type, garbage length
// ---------------------------------------------------------------------------

#[test]
fn shared_open_by_name_wrong_type_and_garbage_length() {
    let ctx = Ctx::new("shared-open");
    let (vn, an) = (ctx.name("v"), ctx.name("a"));
    let v = Value::create(&vn, 40i64).expect("value");
    let a = Array::<u64>::create(&an, 4).expect("array");
    let mut h = ctx.child("shared_open").arg("NAME", &vn).arg("ADD", "2").arg("ARRAY", &an).start();
    assert_eq!(h.expect("value"), "42");
    assert_eq!(h.expect("wrong"), "LayoutMismatch");
    assert_eq!(h.expect("array"), "Ok(4)");
    h.wait_ok();
    assert_eq!(v.load().expect("load"), 42);

    for bad in [u64::MAX, 1 << 61, 5, 1 << 20] {
        ctx.step(format!("garbage length {bad:#x}"));
        poke(&shm_path(&an), ARRAY_LEN, &bad.to_le_bytes());
        let mut h = ctx.child("shared_open").arg("NAME", &vn).arg("ADD", "0").arg("ARRAY", &an).start();
        h.expect("value");
        h.expect("wrong");
        assert_eq!(h.expect("array"), "Corrupt", "garbage length {bad:#x}");
        h.wait_ok();
    }
    // The handle made before the garbage keeps its own checked length.
    assert_eq!(a.len(), 4);
    a.store(3, 1).expect("store");
    drop((v, a));
    ctx.finish();
}
