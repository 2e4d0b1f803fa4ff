//! The async twins of the synchronisation objects across real processes,
//! from three executors: a tokio multi-thread runtime, a tokio
//! current-thread runtime and `futures::executor::block_on`. Holders and
//! parties killed during an await, cancellation (a dropped pending acquire
//! takes nothing; a dropped barrier wait breaks the barrier), and a
//! thousand tasks awaiting one semaphore.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::Duration;

use shmproc::{
    Barrier, BarrierError, BoundedSemaphore, Event, Lock, LockError, Mutex, Process, RLock, Semaphore, Value,
};

#[path = "common/executors.rs"]
mod executors;

use executors::{EXECS, HANG_GUARD, run};

/// Polls `fut` once (so a call that must wait has looked and registered),
/// runs `then`, and awaits `fut`: `then` happens during the await.
async fn after_first_poll<F: Future>(fut: F, then: impl FnOnce()) -> F::Output {
    let mut fut = pin!(fut);
    let mut then = Some(then);
    poll_fn(|cx| {
        let r = fut.as_mut().poll(cx);
        if let Some(t) = then.take() {
            t();
        }
        r
    })
    .await
}

/// Polls `fut` once on this thread: whether it completed.
fn poll_once<F: Future>(fut: std::pin::Pin<&mut F>) -> bool {
    let mut fut = fut;
    futures::executor::block_on(poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx).is_ready())))
}

fn set_when((go, e): (Event, Event)) {
    go.wait();
    e.set();
}

fn release_when((go, s, n): (Event, Semaphore, u32)) {
    go.wait();
    for _ in 0..n {
        s.release().expect("release");
    }
}

fn release_bounded_when((go, s): (Event, BoundedSemaphore)) {
    go.wait();
    s.release().expect("release");
}

/// Adds 1 to `m` `n` times, with the blocking lock.
fn add_under_mutex((m, n): (Mutex<u64>, u64)) {
    for _ in 0..n {
        *m.lock().expect("lock") += 1;
    }
}

/// Adds 1 to `v` `n` times under `lock` (the load and store apart, so a
/// lock that let two in would lose counts).
fn add_under_lock((lock, v, n): (Lock, Value<u64>, u64)) {
    for _ in 0..n {
        let g = lock.lock().expect("lock");
        let x = v.load().expect("load");
        v.store(x + 1).expect("store");
        drop(g);
    }
}

fn add_under_rlock((lock, v, n): (RLock, Value<u64>, u64)) {
    for _ in 0..n {
        let g = lock.lock().expect("lock");
        let x = v.load().expect("load");
        v.store(x + 1).expect("store");
        drop(g);
    }
}

fn add_under_value((v, n): (Value<u64>, u64)) {
    for _ in 0..n {
        *v.lock().expect("lock") += 1;
    }
}

fn party(b: Barrier) -> usize {
    b.wait().expect("barrier")
}

#[test]
fn event_wait_async_across_processes() {
    for exec in EXECS {
        let (go, e) = (Event::new().expect("event"), Event::new().expect("event"));
        let mut child = Process::spawn(set_when, (go.clone(), e.clone())).expect("child");
        let e2 = e.clone();
        run(exec, async move { after_first_poll(e2.wait_async(), move || go.set()).await });
        assert!(e.is_set(), "{exec:?}");
        child.join().expect("child");
        // Set already: completes at its first poll.
        run(exec, async move { e.wait_async().await });
    }
}

#[test]
fn semaphore_acquire_async_across_processes() {
    for exec in EXECS {
        let n = 200;
        let (go, s) = (Event::new().expect("event"), Semaphore::new(0).expect("semaphore"));
        let mut child = Process::spawn(release_when, (go.clone(), s.clone(), n)).expect("child");
        let s2 = s.clone();
        run(exec, async move {
            after_first_poll(s2.acquire_async(), move || go.set()).await;
            for _ in 1..n {
                s2.acquire_async().await;
            }
        });
        child.join().expect("child");
        assert_eq!(s.value(), 0, "{exec:?}: every released permit taken once");

        // A bounded semaphore, through Deref.
        let (go, b) = (Event::new().expect("event"), BoundedSemaphore::new(1).expect("bounded"));
        b.try_acquire().expect("the one permit");
        let mut child = Process::spawn(release_bounded_when, (go.clone(), b.clone())).expect("child");
        let b2 = b.clone();
        run(exec, async move { after_first_poll(b2.acquire_async(), move || go.set()).await });
        child.join().expect("child");
        assert_eq!(b.value(), 0, "{exec:?}");
    }
}

#[test]
fn locks_async_exclude_a_contending_process() {
    for exec in EXECS {
        let n = 300;
        // Mutex<T>: the child's blocking lock against lock_async here.
        let m = Mutex::new(0u64).expect("mutex");
        let mut child = Process::spawn(add_under_mutex, (m.clone(), n)).expect("child");
        let m2 = m.clone();
        run(exec, async move {
            for _ in 0..n {
                *m2.lock_async().await.expect("lock_async") += 1;
            }
        });
        child.join().expect("child");
        assert_eq!(*m.lock().expect("lock"), 2 * n, "{exec:?}: Mutex");

        // Lock: acquire_async / release and lock_async's guard.
        let (lock, v) = (Lock::new().expect("lock"), Value::new(0u64).expect("value"));
        let mut child = Process::spawn(add_under_lock, (lock.clone(), v.clone(), n)).expect("child");
        let (lock2, v2) = (lock.clone(), v.clone());
        run(exec, async move {
            for i in 0..n {
                if i % 2 == 0 {
                    lock2.acquire_async().await.expect("acquire_async");
                    let x = v2.load().expect("load");
                    v2.store(x + 1).expect("store");
                    lock2.release().expect("release"); // on the acquiring thread: no await between
                } else {
                    let g = lock2.lock_async().await.expect("lock_async");
                    let x = v2.load().expect("load");
                    v2.store(x + 1).expect("store");
                    drop(g);
                }
            }
        });
        child.join().expect("child");
        assert_eq!(v.load().expect("load"), 2 * n, "{exec:?}: Lock");
        assert!(!lock.is_locked());

        // RLock: re-entered within one poll, released as often.
        let (lock, v) = (RLock::new().expect("rlock"), Value::new(0u64).expect("value"));
        let mut child = Process::spawn(add_under_rlock, (lock.clone(), v.clone(), n)).expect("child");
        let (lock2, v2) = (lock.clone(), v.clone());
        run(exec, async move {
            for i in 0..n {
                if i % 2 == 0 {
                    lock2.acquire_async().await.expect("acquire_async");
                    // Held by this thread now: completes at its first poll.
                    lock2.acquire_async().await.expect("again");
                    let x = v2.load().expect("load");
                    v2.store(x + 1).expect("store");
                    lock2.release().expect("release");
                    lock2.release().expect("release");
                } else {
                    let g = lock2.lock_async().await.expect("lock_async");
                    let x = v2.load().expect("load");
                    v2.store(x + 1).expect("store");
                    drop(g);
                }
            }
        });
        child.join().expect("child");
        assert_eq!(v.load().expect("load"), 2 * n, "{exec:?}: RLock");
        assert!(!lock.is_locked());

        // Value<T>'s own lock.
        let v = Value::new(0u64).expect("value");
        let mut child = Process::spawn(add_under_value, (v.clone(), n)).expect("child");
        let v2 = v.clone();
        run(exec, async move {
            for _ in 0..n {
                *v2.lock_async().await.expect("lock_async") += 1;
            }
        });
        child.join().expect("child");
        assert_eq!(v.load().expect("load"), 2 * n, "{exec:?}: Value");
    }
}

/// Locks `m` and `lock`, says so, and lets go when told.
fn hold_until((m, lock, held, go): (Mutex<u64>, Lock, Event, Event)) {
    let g = m.lock().expect("lock");
    lock.acquire().expect("acquire");
    held.set();
    go.wait();
    lock.release().expect("release");
    drop(g);
}

fn wait_when((b, go): (Barrier, Event)) -> usize {
    go.wait();
    b.wait().expect("barrier")
}

#[test]
fn an_await_is_woken_by_the_other_process() {
    for exec in EXECS {
        // Each call waits (the child holds the object, or has not
        // arrived) until its first poll has registered, then the child
        // is told to let go.
        let (m, lock) = (Mutex::new(0u64).expect("mutex"), Lock::new().expect("lock"));
        let (held, go) = (Event::new().expect("event"), Event::new().expect("event"));
        let mut child = Process::spawn(hold_until, (m.clone(), lock.clone(), held.clone(), go.clone())).expect("child");
        held.wait_timeout(HANG_GUARD).expect("child holds them");
        let (m2, lock2, go2) = (m.clone(), lock.clone(), go.clone());
        run(exec, async move {
            // The mutex is let go after the lock, so both wait here.
            let got = after_first_poll(lock2.acquire_async(), move || go2.set()).await;
            got.expect("acquire_async");
            lock2.release().expect("release");
            *m2.lock_async().await.expect("lock_async") += 1;
        });
        child.join().expect("child");
        assert_eq!(*m.lock().expect("lock"), 1, "{exec:?}");

        let (b, go) = (Barrier::new(2).expect("barrier"), Event::new().expect("event"));
        let mut child = Process::spawn(wait_when, (b.clone(), go.clone())).expect("child");
        let b2 = b.clone();
        let mine = run(exec, async move { after_first_poll(b2.wait_async(), move || go.set()).await });
        assert_eq!(mine.expect("wait_async"), 0, "{exec:?}: arrived first");
        assert_eq!(child.join().expect("child"), 1);
    }
}

#[test]
fn barrier_wait_async_across_processes() {
    for exec in EXECS {
        let b = Barrier::new(3).expect("barrier");
        let mut kids: Vec<_> = (0..2).map(|_| Process::spawn(party, b.clone()).expect("party")).collect();
        let b2 = b.clone();
        let mine = run(exec, async move { b2.wait_async().await }).expect("wait_async");
        let mut seen = vec![mine];
        for k in &mut kids {
            seen.push(k.join().expect("party"));
        }
        seen.sort_unstable();
        assert_eq!(seen, [0, 1, 2], "{exec:?}");
        // The last to arrive trips it at the first poll.
        let b = Barrier::new(1).expect("barrier");
        assert_eq!(run(exec, async move { b.wait_async().await }).expect("alone"), 0);
    }
}

/// Locks `m`, leaves 42 half-written behind, and waits to be killed.
fn hold_mutex((m, held): (Mutex<u64>, Event)) {
    let mut g = m.lock().expect("lock");
    *g = 42;
    held.set();
    std::thread::sleep(Duration::from_secs(3600));
    drop(g);
}

fn hold_value((v, held): (Value<u64>, Event)) {
    v.store(43).expect("store");
    let g = v.lock().expect("lock");
    held.set();
    std::thread::sleep(Duration::from_secs(3600));
    drop(g);
}

fn hold_lock((lock, held): (Lock, Event)) {
    lock.acquire().expect("acquire");
    held.set();
    std::thread::sleep(Duration::from_secs(3600));
}

fn hold_rlock((lock, held): (RLock, Event)) {
    lock.acquire().expect("acquire");
    lock.acquire().expect("again");
    held.set();
    std::thread::sleep(Duration::from_secs(3600));
}

/// Registers with the barrier (by receiving it) and never arrives.
fn stay_away((_b, started): (Barrier, Event)) {
    started.set();
    std::thread::sleep(Duration::from_secs(3600));
}

/// A thread that kills `child` when told to (at the first poll of an
/// await), and hands it back for reaping.
fn killer<R: Send + 'static>(child: Process<R>) -> (std::sync::mpsc::Sender<()>, std::thread::JoinHandle<Process<R>>) {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let t = std::thread::spawn(move || {
        rx.recv().expect("first poll");
        child.kill().expect("kill");
        child
    });
    (tx, t)
}

#[test]
fn a_holder_killed_during_the_await_gives_owner_died_as_lock_does() {
    for exec in EXECS {
        // Mutex<T>: OwnerDied with the data as the dead holder left it.
        let (m, held) = (Mutex::new(0u64).expect("mutex"), Event::new().expect("event"));
        let child = Process::spawn(hold_mutex, (m.clone(), held.clone())).expect("child");
        held.wait_timeout(HANG_GUARD).expect("child holds it");
        let (tx, k) = killer(child);
        let m2 = m.clone();
        let got = run(exec, async move {
            let r = after_first_poll(m2.lock_async(), move || tx.send(()).expect("killer")).await;
            match r {
                Err(LockError::OwnerDied(mut g)) => {
                    let left = *g;
                    *g = 0;
                    g.mark_consistent();
                    Ok(left)
                }
                Ok(_) => Err("a plain guard".to_string()),
                Err(e) => Err(format!("{e:?}")),
            }
        });
        assert_eq!(got, Ok(42), "{exec:?}: Mutex");
        assert_eq!(*m.lock().expect("consistent again"), 0);
        let _ = k.join().expect("killer").join();

        // Value<T>: the same.
        let (v, held) = (Value::new(0u64).expect("value"), Event::new().expect("event"));
        let child = Process::spawn(hold_value, (v.clone(), held.clone())).expect("child");
        held.wait_timeout(HANG_GUARD).expect("child holds it");
        let (tx, k) = killer(child);
        let v2 = v.clone();
        let got = run(exec, async move {
            match after_first_poll(v2.lock_async(), move || tx.send(()).expect("killer")).await {
                Err(LockError::OwnerDied(mut g)) => {
                    let left = *g;
                    g.mark_consistent();
                    Ok(left)
                }
                Ok(_) => Err("a plain guard".to_string()),
                Err(e) => Err(format!("{e:?}")),
            }
        });
        assert_eq!(got, Ok(43), "{exec:?}: Value");
        let _ = k.join().expect("killer").join();

        // Lock and RLock protect no data: taken over, as acquire does.
        let (lock, held) = (Lock::new().expect("lock"), Event::new().expect("event"));
        let child = Process::spawn(hold_lock, (lock.clone(), held.clone())).expect("child");
        held.wait_timeout(HANG_GUARD).expect("child holds it");
        let (tx, k) = killer(child);
        let lock2 = lock.clone();
        let got = run(exec, async move {
            let r = after_first_poll(lock2.acquire_async(), move || tx.send(()).expect("killer")).await;
            let released = r.is_ok() && lock2.release().is_ok();
            (r.map_err(|e| format!("{e:?}")), released)
        });
        assert_eq!(got, (Ok(()), true), "{exec:?}: Lock");
        assert!(!lock.is_locked());
        let _ = k.join().expect("killer").join();

        let (lock, held) = (RLock::new().expect("rlock"), Event::new().expect("event"));
        let child = Process::spawn(hold_rlock, (lock.clone(), held.clone())).expect("child");
        held.wait_timeout(HANG_GUARD).expect("child holds it");
        let (tx, k) = killer(child);
        let lock2 = lock.clone();
        let got = run(exec, async move {
            let r = after_first_poll(lock2.lock_async(), move || tx.send(()).expect("killer")).await;
            r.map(|g| {
                let depth = lock2.depth();
                drop(g);
                depth
            })
            .map_err(|e| format!("{e:?}"))
        });
        assert_eq!(got, Ok(1), "{exec:?}: RLock (the dead holder's levels are gone)");
        assert!(!lock.is_locked());
        let _ = k.join().expect("killer").join();
    }
}

#[test]
fn a_party_killed_during_the_await_breaks_the_barrier() {
    for exec in EXECS {
        let (b, started) = (Barrier::new(2).expect("barrier"), Event::new().expect("event"));
        let child = Process::spawn(stay_away, (b.clone(), started.clone())).expect("child");
        started.wait_timeout(HANG_GUARD).expect("child registered");
        let pid = child.pid();
        let (tx, k) = killer(child);
        let b2 = b.clone();
        let got =
            run(exec, async move { after_first_poll(b2.wait_async(), move || tx.send(()).expect("killer")).await });
        assert!(matches!(got, Err(BarrierError::Broken { dead: Some(p) }) if p == pid), "{exec:?}: {got:?}");
        assert!(b.is_broken());
        let _ = k.join().expect("killer").join();
    }
}

#[test]
fn a_dropped_barrier_wait_breaks_the_barrier_once_it_arrived() {
    let b = Barrier::new(2).expect("barrier");
    // Never polled: never arrived, nothing changes.
    drop(b.wait_async());
    assert!(!b.is_broken() && b.n_waiting() == 0);
    // Polled once: arrived; dropped before the barrier tripped.
    {
        let mut fut = pin!(b.wait_async());
        assert!(!poll_once(fut.as_mut()), "the other party has not arrived");
        assert_eq!(b.n_waiting(), 1);
    }
    assert!(b.is_broken(), "a party that left breaks the barrier, as a timeout does");
    assert!(matches!(b.wait(), Err(BarrierError::Broken { dead: None })));
    b.reset();
    // Completed: dropping it afterwards changes nothing.
    let b2 = b.clone();
    let t = std::thread::spawn(move || b2.wait());
    futures::executor::block_on(b.wait_async()).expect("tripped");
    t.join().expect("party").expect("tripped");
    assert!(!b.is_broken());
}

fn try_take(s: Semaphore) -> bool {
    s.try_acquire().is_ok()
}

fn try_take_lock(lock: Lock) -> bool {
    let ok = lock.try_acquire().is_ok();
    if ok {
        lock.release().expect("release");
    }
    ok
}

#[test]
fn a_dropped_pending_acquire_takes_nothing() {
    // Semaphore: pending, a permit released, then dropped.
    let s = Semaphore::new(0).expect("semaphore");
    {
        let mut fut = pin!(s.acquire_async());
        assert!(!poll_once(fut.as_mut()), "no permit yet");
        s.release().expect("release");
    }
    assert_eq!(s.value(), 1);
    assert!(Process::spawn(try_take, s.clone()).expect("child").join().expect("child"), "the permit is there");
    assert_eq!(s.value(), 0);

    // The same from a tokio runtime, cancelled by a timeout.
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
    let s2 = s.clone();
    let r = rt.block_on(async move { tokio::time::timeout(Duration::from_millis(20), s2.acquire_async()).await });
    assert!(r.is_err(), "no permit: timed out");
    s.release().expect("release");
    assert!(Process::spawn(try_take, s.clone()).expect("child").join().expect("child"));

    // Lock: pending while a thread holds it, dropped, then released.
    let lock = Lock::new().expect("lock");
    let (held, go) = (Event::new().expect("event"), Event::new().expect("event"));
    let (lock2, held2, go2) = (lock.clone(), held.clone(), go.clone());
    let holder = std::thread::spawn(move || {
        lock2.acquire().expect("acquire");
        held2.set();
        go2.wait();
        lock2.release().expect("release");
    });
    held.wait();
    {
        let mut fut = pin!(lock.acquire_async());
        assert!(!poll_once(fut.as_mut()), "held by the thread");
    }
    go.set();
    holder.join().expect("holder");
    assert!(!lock.is_locked(), "the dropped acquire took nothing");
    assert!(Process::spawn(try_take_lock, lock.clone()).expect("child").join().expect("child"));

    // Mutex: the same.
    let m = Mutex::new(0u8).expect("mutex");
    let (held, go) = (Event::new().expect("event"), Event::new().expect("event"));
    let (m2, held2, go2) = (m.clone(), held.clone(), go.clone());
    let holder = std::thread::spawn(move || {
        let g = m2.lock().expect("lock");
        held2.set();
        go2.wait();
        drop(g);
    });
    held.wait();
    {
        let mut fut = pin!(m.lock_async());
        assert!(!poll_once(fut.as_mut()), "held by the thread");
    }
    go.set();
    holder.join().expect("holder");
    assert!(!m.is_locked());
    drop(m.try_lock().expect("free"));
}

fn release_one_by_one((s, n): (Semaphore, u32)) {
    for _ in 0..n {
        s.release().expect("release");
    }
}

#[test]
fn a_thousand_tasks_await_one_semaphore() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
    rt.block_on(async {
        let s = Semaphore::new(0).expect("semaphore");
        let n = 1000u32;
        let through = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..n {
            let (s, through) = (s.clone(), through.clone());
            tasks.push(tokio::spawn(async move {
                s.acquire_async().await;
                through.fetch_add(1, Ordering::Relaxed);
            }));
        }
        let mut child = Process::spawn(release_one_by_one, (s.clone(), n)).expect("child");
        for t in tasks {
            tokio::time::timeout(HANG_GUARD, t).await.expect("hang guard").expect("task");
        }
        child.join().expect("child");
        assert_eq!(through.load(Ordering::Relaxed), u64::from(n));
        assert_eq!(s.value(), 0);
    });
}

#[test]
fn futures_are_send() {
    fn is_send<T: Send>(_: &T) {}
    let e = Event::new().expect("event");
    is_send(&e.wait_async());
    let s = Semaphore::new(1).expect("semaphore");
    is_send(&s.acquire_async());
    let bs = BoundedSemaphore::new(1).expect("bounded");
    is_send(&bs.acquire_async());
    let lock = Lock::new().expect("lock");
    is_send(&lock.acquire_async());
    is_send(&lock.lock_async());
    let r = RLock::new().expect("rlock");
    is_send(&r.acquire_async());
    is_send(&r.lock_async());
    let m = Mutex::new(0u64).expect("mutex");
    is_send(&m.lock_async());
    let v = Value::new(0u64).expect("value");
    is_send(&v.lock_async());
    let b = Barrier::new(1).expect("barrier");
    is_send(&b.wait_async());
}
