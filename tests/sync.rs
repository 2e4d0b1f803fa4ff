//! The public synchronization API, per primitive: `Mutex<T>`, `Lock`,
//! `RLock`, `Semaphore`, `BoundedSemaphore`, `Condvar`, `Event` and
//! `Barrier`, used from threads of this process and from child processes
//! (`Process::spawn` under Spawn and ForkServer, with the primitives passed
//! as arguments or opened by name).
//!
//! Deaths by SIGKILL are in `tests/mp/sync.rs` (RELIABILITY cases 1-12);
//! here a holder dies only the gentle ways a thread or process can in
//! one test binary (a thread exiting with a leaked guard, a child
//! returning while holding a lock). Every test uses names unique to the
//! test and this process, and checks that none is left in `/dev/shm`.

mod common;

#[cfg(feature = "serde")]
use std::sync::atomic::AtomicU64;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::Names;
use shmproc::{
    AcquireError, AcquireTimeoutError, Barrier, BoundedSemaphore, Condvar, Error, Event, Lock, LockError, Mutex, RLock,
    Semaphore,
};
use shmproc::{
    BarrierError, BarrierTimeoutError, LockTimeoutError, TimedOut, TryLockError, WaitTimeoutError, WouldBlock,
};
#[cfg(feature = "serde")]
use shmproc::{Context, Shared, StartMethod};

#[cfg(feature = "serde")]
const METHODS: [StartMethod; 2] = [StartMethod::Spawn, StartMethod::ForkServer];
/// Every wait that should end does so long before this.
const GUARD: Duration = Duration::from_secs(30);
/// Short timeouts that must expire.
const SHORT: Duration = Duration::from_millis(50);

/// Names unique to one test in this process: `synctest-<pid>-<tag>-<n>`.
/// `finish` checks that none is left in `/dev/shm` (see [`Names`]).
fn test_names(tag: &str) -> Names {
    Names::new("synctest", tag)
}

/// Polls `cond` every millisecond until it holds; panics after [`GUARD`].
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + GUARD;
    while !cond() {
        assert!(Instant::now() < deadline, "{what} did not happen within {GUARD:?}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The name of a lock outcome's variant (any of the lock error types:
/// their `Debug` is the variant's name, with `(..)` for a guard inside).
fn word<G, E: std::fmt::Debug>(r: &Result<G, E>) -> String {
    match r {
        Ok(_) => "Ok".to_owned(),
        Err(e) => format!("{e:?}").split('(').next().unwrap_or_default().to_owned(),
    }
}

// ===========================================================================
// Mutex<T>
// ===========================================================================

#[test]
fn mutex_lock_try_lock_and_lock_timeout() {
    let m = Mutex::new(5u64).expect("mutex");
    assert!(!m.is_locked());
    assert!(m.segment().name().is_none(), "anonymous");
    let mut g = m.lock().expect("lock");
    assert_eq!(*g, 5);
    *g = 6;
    assert!(!g.is_recovering());
    assert!(m.is_locked());
    // The holding thread: every kind of relock is refused, never a hang.
    assert_eq!(word(&m.lock()), "Deadlock");
    assert_eq!(word(&m.try_lock()), "Deadlock");
    assert_eq!(word(&m.lock_timeout(Duration::from_secs(5))), "Deadlock");
    // Another thread waits.
    std::thread::scope(|s| {
        s.spawn(|| {
            assert_eq!(word(&m.try_lock()), "WouldBlock");
            assert_eq!(word(&m.lock_timeout(SHORT)), "Timeout");
            assert_eq!(word(&m.lock_deadline(Instant::now() + SHORT)), "Timeout");
        });
    });
    drop(g);
    assert!(!m.is_locked());
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut g = m.lock_timeout(GUARD).expect("free now");
            *g += 1;
        });
    });
    assert_eq!(*m.try_lock().expect("try_lock"), 7);
    assert_eq!(*m.lock_deadline(Instant::now() + GUARD).expect("lock_deadline"), 7);
    assert!(format!("{m:?}").contains("locked: false"), "{m:?}");
    let g = m.lock().expect("lock");
    assert!(format!("{g:?}").contains('7'), "{g:?}");
}

#[test]
fn a_blocked_lock_is_woken_by_the_unlock() {
    let m = Mutex::new(0u32).expect("mutex");
    let g = m.lock().expect("lock");
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let mut g = m.lock().expect("lock after the unlock");
            *g = 1;
            Instant::now()
        });
        std::thread::sleep(SHORT);
        let released = Instant::now();
        drop(g);
        let got = waiter.join().expect("waiter");
        assert!(got >= released, "the waiter got the lock only after the unlock");
    });
    assert_eq!(*m.lock().expect("lock"), 1);
}

#[test]
fn named_mutex_is_shared_by_name_and_removed_by_its_creator() {
    let names = test_names("named_mutex");
    let n = names.name("m");
    let a = Mutex::create(&n, [1u32, 2, 3, 4]).expect("create");
    assert_eq!(a.segment().name(), Some(n.as_str()));
    assert!(matches!(Mutex::<[u32; 4]>::create(&n, [0; 4]), Err(Error::Exists { .. })));
    let b = Mutex::<[u32; 4]>::open(&n).expect("open");
    b.lock().expect("lock")[3] = 40;
    assert_eq!(*a.lock().expect("lock"), [1, 2, 3, 40]);
    {
        let _held = a.lock().expect("lock");
        assert!(b.is_locked());
        assert_eq!(word(&b.try_lock()), "Deadlock", "same thread, through another handle");
    }
    drop(a); // the creator's last handle: the name goes, the opener's mapping stays
    assert!(matches!(Mutex::<[u32; 4]>::open(&n), Err(Error::NotFound { .. })));
    assert_eq!(*b.lock().expect("still usable"), [1, 2, 3, 40]);
    drop(b);
    assert!(matches!(Mutex::<u8>::open(&names.name("never-made")), Err(Error::NotFound { .. })));
    names.finish();
}

#[test]
fn opening_a_mutex_as_another_type_is_a_layout_mismatch() {
    let names = test_names("mutex_layout");
    let n = names.name("m");
    let m = Mutex::create(&n, 7u64).expect("create");
    match Mutex::<[u8; 16]>::open(&n) {
        Err(Error::LayoutMismatch { expected, found }) => assert_ne!(expected, found),
        other => panic!("expected LayoutMismatch, got {other:?}"),
    }
    match Mutex::<u32>::open(&n) {
        Err(Error::LayoutMismatch { .. }) => {}
        other => panic!("expected LayoutMismatch, got {other:?}"),
    }
    assert_eq!(*Mutex::<u64>::open(&n).expect("the right type").lock().expect("lock"), 7);
    drop(m);
    names.finish();
}

#[test]
fn mutex_counting_across_threads_is_exact() {
    let m = Mutex::new(0u64).expect("mutex");
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..10_000 {
                    *m.lock().expect("lock") += 1;
                }
            });
        }
    });
    assert_eq!(*m.lock().expect("lock"), 40_000);
}

#[cfg(feature = "serde")]
/// Adds 1 to the mutex `n` times (a read, a pause, a write: a lost update
/// would show without mutual exclusion).
fn bump((m, n): (Mutex<[u64; 2]>, u64)) -> u64 {
    for _ in 0..n {
        let mut g = m.lock().expect("lock in the child");
        let v = g[0];
        std::hint::spin_loop();
        g[0] = v + 1;
        g[1] += 1;
    }
    n
}

#[cfg(feature = "serde")]
/// Opens the named mutex and adds 1 to it `n` times.
fn bump_by_name((name, n): (String, u64)) -> u64 {
    let m = Mutex::<[u64; 2]>::open(&name).expect("open in the child");
    bump((m, n))
}

#[cfg(feature = "serde")]
#[test]
fn mutex_counting_across_four_processes_is_exact() {
    for method in METHODS {
        let ctx = Context::new(method);
        let m = Mutex::new([0u64; 2]).expect("mutex");
        let mut kids: Vec<_> = (0..4).map(|_| ctx.spawn(bump, (m.clone(), 10_000)).expect("spawn")).collect();
        for k in &mut kids {
            assert_eq!(k.join().expect("join"), 10_000, "{method}");
        }
        assert_eq!(*m.lock().expect("lock"), [40_000, 40_000], "{method}");
    }
}

#[cfg(feature = "serde")]
#[test]
fn named_mutex_counting_across_processes_is_exact() {
    let names = test_names("mutex_count_named");
    for method in METHODS {
        let n = names.name(&method.to_string());
        let m = Mutex::create(&n, [0u64; 2]).expect("create");
        let ctx = Context::new(method);
        let mut kids: Vec<_> = (0..2).map(|_| ctx.spawn(bump_by_name, (n.clone(), 5_000)).expect("spawn")).collect();
        bump((m.clone(), 5_000));
        for k in &mut kids {
            k.join().expect("join");
        }
        assert_eq!(*m.lock().expect("lock"), [15_000, 15_000], "{method}");
    }
    names.finish();
}

#[cfg(feature = "serde")]
/// Locks, writes 7, says so, and holds the lock until told to let go.
fn hold_until((m, held, go): (Mutex<u32>, Event, Event)) -> bool {
    let mut g = m.lock().expect("lock in the child");
    *g = 7;
    held.set();
    go.wait_timeout(GUARD).is_ok()
}

#[cfg(feature = "serde")]
#[test]
fn a_child_holding_the_mutex_excludes_the_parent() {
    for method in METHODS {
        let m = Mutex::new(0u32).expect("mutex");
        let (held, go) = (Event::new().expect("event"), Event::new().expect("event"));
        let mut kid = Context::new(method).spawn(hold_until, (m.clone(), held.clone(), go.clone())).expect("spawn");
        assert!(held.wait_timeout(GUARD).is_ok(), "{method}: the child locked");
        assert!(m.is_locked());
        assert_eq!(word(&m.try_lock()), "WouldBlock", "{method}");
        assert_eq!(word(&m.lock_timeout(SHORT)), "Timeout", "{method}");
        go.set();
        let g = m.lock_timeout(GUARD).expect("lock after the child let go");
        assert_eq!(*g, 7, "{method}");
        drop(g);
        assert!(kid.join().expect("join"), "{method}");
    }
}

#[test]
fn a_thread_exiting_with_a_leaked_guard_gives_owner_died() {
    let m = Mutex::new([0u64; 2]).expect("mutex");
    // An explicit join: it returns once the thread is gone, thread-local
    // destructors (which mark its slot dead) included; the end of a scope
    // alone may come a little earlier.
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut g = m.lock().expect("lock");
            g[0] = 1; // half of an update
            std::mem::forget(g);
        })
        .join()
        .expect("thread");
    });
    assert!(m.is_locked(), "the leaked guard still holds it");
    match m.lock() {
        Err(LockError::OwnerDied(mut g)) => {
            assert!(g.is_recovering());
            assert_eq!(*g, [1, 0], "the half-written data is readable");
            g[1] = 1;
            g.mark_consistent();
            assert!(!g.is_recovering());
            g.mark_consistent(); // a second call changes nothing
        }
        other => panic!("expected OwnerDied, got {}", word(&other)),
    }
    assert_eq!(*m.lock().expect("clean again"), [1, 1]);
    // try_lock also takes over from a dead thread.
    std::thread::scope(|s| s.spawn(|| std::mem::forget(m.lock().expect("lock"))).join().expect("thread"));
    assert_eq!(word(&m.try_lock()), "OwnerDied");
    // That recovery guard was dropped unmarked: the mutex is gone for good.
    for r in [word(&m.lock()), word(&m.try_lock()), word(&m.lock_timeout(GUARD))] {
        assert_eq!(r, "NotRecoverable");
    }
    std::thread::scope(|s| {
        s.spawn(|| assert_eq!(word(&m.lock_timeout(GUARD)), "NotRecoverable"));
    });
}

#[test]
fn lock_errors_convert_and_display() {
    type Is = fn(&Error) -> bool;
    let os = || std::io::Error::other("x");
    let cases: Vec<(Box<dyn std::error::Error>, Error, Is)> = vec![
        (Box::new(LockError::OwnerDied(())), LockError::OwnerDied(()).into(), |e| matches!(e, Error::OwnerDied)),
        (Box::new(LockError::<()>::NotRecoverable), LockError::<()>::NotRecoverable.into(), |e| {
            matches!(e, Error::NotRecoverable)
        }),
        (Box::new(LockError::<()>::Deadlock), LockError::<()>::Deadlock.into(), |e| matches!(e, Error::Deadlock)),
        (Box::new(LockError::<()>::Os(os())), LockError::<()>::Os(os()).into(), |e| matches!(e, Error::Os { .. })),
        (Box::new(TryLockError::<()>::WouldBlock), TryLockError::<()>::WouldBlock.into(), |e| {
            matches!(e, Error::WouldBlock)
        }),
        (Box::new(TryLockError::OwnerDied(())), TryLockError::OwnerDied(()).into(), |e| matches!(e, Error::OwnerDied)),
        (Box::new(TryLockError::<()>::NotRecoverable), TryLockError::<()>::NotRecoverable.into(), |e| {
            matches!(e, Error::NotRecoverable)
        }),
        (Box::new(TryLockError::<()>::Deadlock), TryLockError::<()>::Deadlock.into(), |e| matches!(e, Error::Deadlock)),
        (Box::new(TryLockError::<()>::Os(os())), TryLockError::<()>::Os(os()).into(), |e| {
            matches!(e, Error::Os { .. })
        }),
        (Box::new(LockTimeoutError::<()>::Timeout), LockTimeoutError::<()>::Timeout.into(), |e| {
            matches!(e, Error::Timeout)
        }),
        (Box::new(LockTimeoutError::OwnerDied(())), LockTimeoutError::OwnerDied(()).into(), |e| {
            matches!(e, Error::OwnerDied)
        }),
        (Box::new(LockTimeoutError::<()>::NotRecoverable), LockTimeoutError::<()>::NotRecoverable.into(), |e| {
            matches!(e, Error::NotRecoverable)
        }),
        (Box::new(LockTimeoutError::<()>::Deadlock), LockTimeoutError::<()>::Deadlock.into(), |e| {
            matches!(e, Error::Deadlock)
        }),
        (Box::new(LockTimeoutError::<()>::Os(os())), LockTimeoutError::<()>::Os(os()).into(), |e| {
            matches!(e, Error::Os { .. })
        }),
        (Box::new(WaitTimeoutError::Timeout(())), WaitTimeoutError::Timeout(()).into(), |e| {
            matches!(e, Error::Timeout)
        }),
        (Box::new(WaitTimeoutError::OwnerDied(())), WaitTimeoutError::OwnerDied(()).into(), |e| {
            matches!(e, Error::OwnerDied)
        }),
        (Box::new(WaitTimeoutError::<()>::NotRecoverable), WaitTimeoutError::<()>::NotRecoverable.into(), |e| {
            matches!(e, Error::NotRecoverable)
        }),
        (Box::new(WaitTimeoutError::<()>::Os(os())), WaitTimeoutError::<()>::Os(os()).into(), |e| {
            matches!(e, Error::Os { .. })
        }),
        (Box::new(AcquireError::Deadlock), AcquireError::Deadlock.into(), |e| matches!(e, Error::Deadlock)),
        (
            Box::new(AcquireError::Failed(Error::NotRecoverable)),
            AcquireError::Failed(Error::NotRecoverable).into(),
            |e| matches!(e, Error::NotRecoverable),
        ),
        (Box::new(shmproc::TryAcquireError::WouldBlock), shmproc::TryAcquireError::WouldBlock.into(), |e| {
            matches!(e, Error::WouldBlock)
        }),
        (
            Box::new(shmproc::TryAcquireError::Failed(Error::NotRecoverable)),
            shmproc::TryAcquireError::Failed(Error::NotRecoverable).into(),
            |e| matches!(e, Error::NotRecoverable),
        ),
        (Box::new(AcquireTimeoutError::Timeout), AcquireTimeoutError::Timeout.into(), |e| matches!(e, Error::Timeout)),
        (Box::new(AcquireTimeoutError::Deadlock), AcquireTimeoutError::Deadlock.into(), |e| {
            matches!(e, Error::Deadlock)
        }),
        (
            Box::new(AcquireTimeoutError::Failed(Error::NotRecoverable)),
            AcquireTimeoutError::Failed(Error::NotRecoverable).into(),
            |e| matches!(e, Error::NotRecoverable),
        ),
        (Box::new(WouldBlock), WouldBlock.into(), |e| matches!(e, Error::WouldBlock)),
        (Box::new(BarrierError::Broken { dead: Some(7) }), BarrierError::Broken { dead: Some(7) }.into(), |e| {
            matches!(e, Error::Broken { dead: Some(7) })
        }),
        (Box::new(BarrierError::Failed(Error::Timeout)), BarrierError::Failed(Error::Timeout).into(), |e| {
            matches!(e, Error::Timeout)
        }),
        (Box::new(BarrierTimeoutError::Timeout), BarrierTimeoutError::Timeout.into(), |e| matches!(e, Error::Timeout)),
        (
            Box::new(BarrierTimeoutError::Broken { dead: None }),
            BarrierTimeoutError::Broken { dead: None }.into(),
            |e| matches!(e, Error::Broken { dead: None }),
        ),
        (
            Box::new(BarrierTimeoutError::Failed(Error::Closed)),
            BarrierTimeoutError::Failed(Error::Closed).into(),
            |e| matches!(e, Error::Closed),
        ),
        (Box::new(TimedOut), TimedOut.into(), |e| matches!(e, Error::Timeout)),
        (
            Box::new(BarrierError::ActionPanicked { message: "boom".into() }),
            BarrierError::ActionPanicked { message: "boom".into() }.into(),
            |e| matches!(e, Error::BarrierActionPanicked { message } if message == "boom"),
        ),
        (
            Box::new(BarrierTimeoutError::ActionPanicked { message: "boom".into() }),
            BarrierTimeoutError::ActionPanicked { message: "boom".into() }.into(),
            |e| matches!(e, Error::BarrierActionPanicked { message } if message == "boom"),
        ),
    ];
    // Every variant of every lock and acquire error: a Debug name, a
    // message, and the crate error it converts to.
    for (le, e, is) in cases {
        let debug = format!("{le:?}");
        assert!(!debug.is_empty() && !le.to_string().is_empty(), "{debug}");
        assert!(is(&e), "{debug} -> {e:?}");
        assert!(!e.to_string().is_empty());
    }
    // `?` works in functions returning shmproc::Result.
    fn through_question_mark(m: &Mutex<u8>) -> shmproc::Result<u8> {
        Ok(*m.lock()?)
    }
    assert_eq!(through_question_mark(&Mutex::new(3u8).expect("mutex")).expect("ok"), 3);
}

// ===========================================================================
// Lock and RLock
// ===========================================================================

#[test]
fn lock_acquire_release_try_and_timeout() {
    let l = Lock::new().expect("lock");
    assert!(!l.is_locked());
    assert!(matches!(l.release(), Err(Error::NotOwner)), "release of a free lock");
    l.acquire().expect("acquire");
    assert!(l.is_locked());
    assert!(l.try_acquire().is_err(), "not re-entrant");
    assert!(matches!(l.acquire(), Err(AcquireError::Deadlock)));
    assert!(matches!(l.acquire_timeout(Duration::from_secs(5)), Err(AcquireTimeoutError::Deadlock)));
    assert!(matches!(l.acquire_deadline(Instant::now()), Err(AcquireTimeoutError::Deadlock)));
    std::thread::scope(|s| {
        s.spawn(|| {
            assert!(l.try_acquire().is_err());
            assert!(l.acquire_timeout(SHORT).is_err());
            assert!(matches!(l.release(), Err(Error::NotOwner)), "release by a thread that does not hold it");
        });
    });
    assert!(l.is_locked(), "the failed release changed nothing");
    l.release().expect("release");
    assert!(!l.is_locked());
    assert!(matches!(l.release(), Err(Error::NotOwner)), "released twice");
    {
        let _g = l.lock().expect("guard");
        assert!(l.is_locked());
        std::thread::scope(|s| {
            s.spawn(|| assert!(l.try_acquire().is_err()));
        });
    }
    assert!(!l.is_locked(), "the guard released it");
    assert!(l.acquire_timeout(SHORT).is_ok());
    l.release().expect("release");
    assert!(!l.segment().is_empty());
    assert!(format!("{l:?}").contains("locked: false"));
}

#[test]
fn a_blocked_acquire_is_woken_by_release_in_another_thread() {
    let l = Lock::new().expect("lock");
    l.acquire().expect("acquire");
    std::thread::scope(|s| {
        let h = s.spawn(|| {
            l.acquire().expect("acquire");
            let got = Instant::now();
            l.release().expect("release");
            got
        });
        std::thread::sleep(SHORT);
        let released = Instant::now();
        l.release().expect("release");
        let got = h.join().expect("thread");
        assert!(got >= released, "the waiter got the lock only after the release");
    });
}

#[test]
fn named_lock_and_rlock_are_shared_by_name() {
    let names = test_names("named_locks");
    let (ln, rn) = (names.name("lock"), names.name("rlock"));
    let a = Lock::create(&ln).expect("create");
    let b = Lock::open(&ln).expect("open");
    a.acquire().expect("acquire");
    assert!(b.is_locked());
    assert!(b.try_acquire().is_err());
    b.release().expect("same thread, other handle: the owner is the thread");
    assert!(!a.is_locked());
    let r = RLock::create(&rn).expect("create");
    let r2 = RLock::open(&rn).expect("open");
    r.acquire().expect("acquire");
    r2.acquire().expect("re-enter through the other handle");
    assert_eq!(r.depth(), 2);
    r2.release().expect("release");
    r.release().expect("release");
    assert!(!r.is_locked());
    assert!(matches!(Lock::open(&names.name("none")), Err(Error::NotFound { .. })));
    assert!(matches!(RLock::open(&names.name("none")), Err(Error::NotFound { .. })));
    drop((a, b, r, r2));
    names.finish();
}

#[cfg(feature = "serde")]
/// Increments a plain (non-atomic read-modify-write) counter under the
/// lock `n` times: only mutual exclusion keeps the count exact.
fn count_under_lock((l, c, n): (Lock, Shared<AtomicU64>, u64)) {
    for _ in 0..n {
        l.acquire().expect("acquire in the child");
        let v = c.load(Ordering::Relaxed);
        std::hint::spin_loop();
        c.store(v + 1, Ordering::Relaxed);
        l.release().expect("release in the child");
    }
}

#[cfg(feature = "serde")]
#[test]
fn lock_excludes_across_processes() {
    for method in METHODS {
        let ctx = Context::new(method);
        let l = Lock::new().expect("lock");
        let c = Shared::<AtomicU64>::anonymous(|_| {}).expect("counter");
        let mut kids: Vec<_> =
            (0..4).map(|_| ctx.spawn(count_under_lock, (l.clone(), c.clone(), 5_000)).expect("spawn")).collect();
        for k in &mut kids {
            k.join().expect("join");
        }
        assert_eq!(c.load(Ordering::Relaxed), 20_000, "{method}");
        assert!(!l.is_locked());
    }
}

#[cfg(feature = "serde")]
/// Acquires the lock and returns without releasing it: the child exits
/// holding it.
fn acquire_and_exit(l: Lock) {
    l.acquire().expect("acquire in the child");
}

#[cfg(feature = "serde")]
#[test]
fn a_lock_whose_holder_exited_is_taken_over_by_acquire() {
    // A thread.
    let l = Lock::new().expect("lock");
    std::thread::scope(|s| s.spawn(|| l.acquire().expect("acquire")).join().expect("thread"));
    assert!(l.is_locked());
    assert!(l.acquire_timeout(GUARD).is_ok(), "a Lock recovers a dead holder's lock by itself");
    l.release().expect("release");
    l.acquire().expect("and it is clean, not unrecoverable");
    l.release().expect("release");
    // A process (Python's Lock would hang here forever).
    for method in METHODS {
        let l = Lock::new().expect("lock");
        Context::new(method).spawn(acquire_and_exit, l.clone()).expect("spawn").join().expect("join");
        assert!(l.is_locked(), "{method}: the dead child's lock is held");
        assert!(l.acquire_timeout(GUARD).is_ok(), "{method}");
        l.release().expect("release");
    }
}

#[test]
fn rlock_counts_its_depth() {
    let r = RLock::new().expect("rlock");
    assert_eq!(r.depth(), 0);
    assert!(matches!(r.release(), Err(Error::NotOwner)));
    r.acquire().expect("acquire");
    assert!(r.try_acquire().is_ok());
    assert!(r.acquire_timeout(SHORT).is_ok());
    assert_eq!(r.depth(), 3);
    std::thread::scope(|s| {
        s.spawn(|| {
            assert!(r.try_acquire().is_err());
            assert!(r.acquire_timeout(SHORT).is_err());
            assert!(matches!(r.release(), Err(Error::NotOwner)));
        });
    });
    assert_eq!(r.depth(), 3, "another thread's failed calls changed nothing");
    r.release().expect("release");
    r.release().expect("release");
    assert_eq!(r.depth(), 1);
    std::thread::scope(|s| {
        s.spawn(|| assert!(r.try_acquire().is_err(), "still held at depth 1"));
    });
    r.release().expect("release");
    assert!(!r.is_locked());
    assert_eq!(r.depth(), 0);
    assert!(matches!(r.release(), Err(Error::NotOwner)), "one release too many");
    std::thread::scope(|s| {
        s.spawn(|| {
            assert!(r.try_acquire().is_ok());
            r.release().expect("release");
        });
    });
    {
        let a = r.lock().expect("guard");
        let b = r.lock().expect("nested guard");
        assert_eq!(r.depth(), 2);
        drop(b);
        assert_eq!(r.depth(), 1);
        drop(a);
    }
    assert!(!r.is_locked());
    assert!(format!("{r:?}").contains("locked: false"));
}

#[cfg(feature = "serde")]
/// Acquires the RLock twice, reports, and holds it until told to let go.
fn hold_rlock((r, held, go): (RLock, Event, Event)) -> u32 {
    r.acquire().expect("acquire");
    r.acquire().expect("again");
    let depth = r.depth();
    held.set();
    go.wait_timeout(GUARD).expect("told to let go");
    r.release().expect("release");
    r.release().expect("release");
    depth
}

#[cfg(feature = "serde")]
#[test]
fn rlock_held_by_a_child_excludes_the_parent() {
    for method in METHODS {
        let r = RLock::new().expect("rlock");
        let (held, go) = (Event::new().expect("event"), Event::new().expect("event"));
        let mut kid = Context::new(method).spawn(hold_rlock, (r.clone(), held.clone(), go.clone())).expect("spawn");
        assert!(held.wait_timeout(GUARD).is_ok());
        assert_eq!(r.depth(), 2, "{method}: the holder's depth is shared");
        assert!(r.try_acquire().is_err(), "{method}");
        assert!(matches!(r.release(), Err(Error::NotOwner)), "{method}");
        go.set();
        assert!(r.acquire_timeout(GUARD).is_ok(), "{method}");
        assert_eq!(r.depth(), 1);
        r.release().expect("release");
        assert_eq!(kid.join().expect("join"), 2);
    }
}

// ===========================================================================
// Semaphore and BoundedSemaphore
// ===========================================================================

#[test]
fn semaphore_counts_permits() {
    let s = Semaphore::new(3).expect("semaphore");
    assert_eq!(s.value(), 3);
    s.acquire();
    assert!(s.try_acquire().is_ok());
    assert!(s.acquire_timeout(SHORT).is_ok());
    assert_eq!(s.value(), 0);
    assert!(s.try_acquire().is_err());
    assert!(s.acquire_timeout(SHORT).is_err(), "no permit: times out");
    s.release().expect("release");
    assert_eq!(s.value(), 1);
    s.release_n(4).expect("release_n");
    assert_eq!(s.value(), 5, "an unbounded semaphore may grow past its initial value");
    assert_eq!(Semaphore::new(0).expect("semaphore").try_acquire(), Err(WouldBlock));
    assert_eq!(Semaphore::new(0).expect("semaphore").acquire_deadline(Instant::now()), Err(TimedOut));
    assert_eq!(Semaphore::new(1).expect("semaphore").acquire_timeout(Duration::MAX), Ok(()), "MAX: no deadline");
    assert!(format!("{s:?}").contains('5'));
}

#[test]
fn a_blocked_acquire_is_woken_by_a_release() {
    let s = Semaphore::new(0).expect("semaphore");
    std::thread::scope(|sc| {
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                sc.spawn(|| {
                    s.acquire();
                    Instant::now()
                })
            })
            .collect();
        std::thread::sleep(SHORT);
        let released = Instant::now();
        s.release_n(2).expect("release_n");
        for w in waiters {
            let got = w.join().expect("waiter");
            assert!(got >= released, "a waiter got a permit only after the release");
        }
    });
    assert_eq!(s.value(), 0);
}

#[test]
fn bounded_semaphore_refuses_to_exceed_its_bound() {
    let names = test_names("bounded_sem");
    let b = BoundedSemaphore::new(2).expect("bounded");
    assert!(matches!(b.release(), Err(Error::ReleasedTooMany)));
    assert_eq!(b.value(), 2, "a refused release changes nothing");
    b.acquire();
    b.acquire();
    assert!(matches!(b.release_n(3), Err(Error::ReleasedTooMany)));
    assert_eq!(b.value(), 0, "a refused release_n changes nothing");
    b.release_n(2).expect("release_n up to the bound");
    assert!(matches!(b.release(), Err(Error::ReleasedTooMany)));
    assert!(matches!(BoundedSemaphore::new(0), Err(Error::InvalidArgument { .. })));
    let n = names.name("bsem");
    assert!(matches!(BoundedSemaphore::create(&n, 0), Err(Error::InvalidArgument { .. })));
    let named = BoundedSemaphore::create(&n, 1).expect("create");
    // Opened as a plain Semaphore it keeps its bound.
    let opened = Semaphore::open(&n).expect("open");
    assert!(matches!(opened.release(), Err(Error::ReleasedTooMany)));
    assert!(opened.try_acquire().is_ok());
    assert!(named.try_acquire().is_err());
    opened.release().expect("release");
    assert_eq!(named.value(), 1);
    let plain = Semaphore::create(&names.name("sem"), 1).expect("create");
    let plain2 = Semaphore::open(&names.name("sem")).expect("open");
    plain2.release().expect("unbounded");
    assert_eq!(plain.value(), 2);
    assert!(matches!(Semaphore::open(&names.name("none")), Err(Error::NotFound { .. })));
    drop((named, opened, plain, plain2));
    names.finish();
}

#[cfg(feature = "serde")]
/// Takes a permit, counts itself in, records the most seen inside at
/// once, works a little, and leaves.
fn use_permit((s, inside): (Semaphore, Shared<[AtomicU32; 2]>)) {
    s.acquire();
    let now = inside[0].fetch_add(1, Ordering::SeqCst) + 1;
    inside[1].fetch_max(now, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(20));
    inside[0].fetch_sub(1, Ordering::SeqCst);
    s.release().expect("release in the child");
}

#[cfg(feature = "serde")]
#[test]
fn semaphore_limits_children_taking_permits() {
    for method in METHODS {
        let ctx = Context::new(method);
        let s = Semaphore::new(2).expect("semaphore");
        let inside = Shared::<[AtomicU32; 2]>::anonymous(|_| {}).expect("counters");
        let mut kids: Vec<_> =
            (0..6).map(|_| ctx.spawn(use_permit, (s.clone(), inside.clone())).expect("spawn")).collect();
        for k in &mut kids {
            k.join().expect("join");
        }
        let most = inside[1].load(Ordering::SeqCst);
        assert!((1..=2).contains(&most), "{method}: {most} children held permits at once");
        assert_eq!(inside[0].load(Ordering::SeqCst), 0);
        assert_eq!(s.value(), 2, "{method}: every permit came back");
    }
}

#[cfg(feature = "serde")]
/// Releases a permit after a pause.
fn release_later(s: Semaphore) {
    std::thread::sleep(SHORT);
    s.release().expect("release in the child");
}

#[cfg(feature = "serde")]
#[test]
fn a_child_release_wakes_a_blocked_acquire() {
    for method in METHODS {
        let s = Semaphore::new(0).expect("semaphore");
        let mut kid = Context::new(method).spawn(release_later, s.clone()).expect("spawn");
        assert!(s.acquire_timeout(GUARD).is_ok(), "{method}: woken by the child's release");
        kid.join().expect("join");
        assert_eq!(s.value(), 0);
    }
}

// ===========================================================================
// Condvar
// ===========================================================================

/// The bounded buffer of the producer/consumer test: `[full, value, ..]`.
type Slot = [u64; 2];

#[cfg(feature = "serde")]
/// Produces `1..=n` into a one-slot buffer.
fn produce((m, not_empty, not_full, n): (Mutex<Slot>, Condvar, Condvar, u64)) {
    for i in 1..=n {
        let mut g = m.lock().expect("lock");
        while g[0] == 1 {
            g = not_full.wait(g).expect("wait");
        }
        *g = [1, i];
        drop(g);
        not_empty.notify_one();
    }
}

#[cfg(feature = "serde")]
/// Consumes `n` values from the one-slot buffer; returns them.
fn consume((m, not_empty, not_full, n): (Mutex<Slot>, Condvar, Condvar, u64)) -> Vec<u64> {
    let mut got = Vec::new();
    for _ in 0..n {
        let mut g = m.lock().expect("lock");
        while g[0] == 0 {
            g = not_empty.wait(g).expect("wait");
        }
        got.push(g[1]);
        g[0] = 0;
        drop(g);
        not_full.notify_one();
    }
    got
}

#[cfg(feature = "serde")]
#[test]
fn condvar_producer_and_consumer_in_two_processes() {
    const N: u64 = 2_000;
    for method in METHODS {
        let ctx = Context::new(method);
        let m = Mutex::new([0u64; 2]).expect("mutex");
        let (ne, nf) = (Condvar::new().expect("condvar"), Condvar::new().expect("condvar"));
        let args = (m.clone(), ne.clone(), nf.clone(), N);
        let mut consumer = ctx.spawn(consume, args.clone()).expect("spawn consumer");
        let mut producer = ctx.spawn(produce, args).expect("spawn producer");
        producer.join().expect("producer");
        let got = consumer.join().expect("consumer");
        assert_eq!(got, (1..=N).collect::<Vec<_>>(), "{method}: every value once, in order");
    }
}

#[cfg(feature = "serde")]
#[test]
fn condvar_producer_in_a_child_consumer_in_the_parent() {
    const N: u64 = 500;
    let names = test_names("condvar_named");
    for method in METHODS {
        let m = Mutex::create(&names.name(&format!("{method}-m")), [0u64; 2]).expect("mutex");
        let ne_name = names.name(&format!("{method}-ne"));
        let ne = Condvar::create(&ne_name).expect("condvar");
        let nf = Condvar::new().expect("condvar");
        let opened = Condvar::open(&ne_name).expect("open by name");
        let mut producer = Context::new(method).spawn(produce, (m.clone(), opened, nf.clone(), N)).expect("spawn");
        let got = consume((m, ne, nf, N));
        producer.join().expect("producer");
        assert_eq!(got, (1..=N).collect::<Vec<_>>(), "{method}");
    }
    assert!(matches!(Condvar::open(&names.name("none")), Err(Error::NotFound { .. })));
    names.finish();
}

/// `n` threads that each wait on `c` until they can take a ticket
/// (`m[0]`), then count themselves in `m[1]`. Detached, so that a test
/// that fails does not hang joining them.
fn ticket_waiters(m: &Mutex<Slot>, c: &Condvar, n: u64) -> Vec<std::thread::JoinHandle<()>> {
    let handles = (0..n)
        .map(|_| {
            let (m, c) = (m.clone(), c.clone());
            std::thread::spawn(move || {
                let mut g = m.lock().expect("lock");
                g[1] += 1 << 32; // "I am waiting"
                loop {
                    g = c.wait(g).expect("wait");
                    if g[0] > 0 {
                        g[0] -= 1;
                        g[1] += 1;
                        return;
                    }
                }
            })
        })
        .collect();
    // All have registered under the mutex, so all have called `wait`
    // (which read the sequence number before unlocking).
    wait_until("waiters registered", || m.lock().expect("lock")[1] >> 32 == n);
    // Give them time to fall asleep, so that a wake-up is a notify's.
    std::thread::sleep(SHORT);
    handles
}

/// Hands out `tickets` and notifies with `notify`; waits until `woken`
/// tickets in all were taken (false after 5 s).
fn hand_out(m: &Mutex<Slot>, c: &Condvar, tickets: u64, notify: fn(&Condvar), woken: u64) -> bool {
    m.lock().expect("lock")[0] += tickets;
    notify(c);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if m.lock().expect("lock")[1] & 0xffff_ffff >= woken {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    false
}

#[test]
fn condvar_notify_one_wakes_one_waiter() {
    let m = Mutex::new([0u64; 2]).expect("mutex");
    let c = Condvar::new().expect("condvar");
    let handles = ticket_waiters(&m, &c, 3);
    for woken in 1..=3 {
        assert!(hand_out(&m, &c, 1, Condvar::notify_one, woken), "notify_one #{woken} woke nobody");
        std::thread::sleep(Duration::from_millis(20));
        let g = m.lock().expect("lock");
        assert_eq!((g[0], g[1] & 0xffff_ffff), (0, woken), "one ticket, one waiter");
    }
    for h in handles {
        h.join().expect("waiter");
    }
    c.notify_one(); // nobody waits: nothing happens
}

#[test]
fn condvar_notify_all_wakes_every_waiter() {
    let m = Mutex::new([0u64; 2]).expect("mutex");
    let c = Condvar::new().expect("condvar");
    let handles = ticket_waiters(&m, &c, 3);
    let ok = hand_out(&m, &c, 3, Condvar::notify_all, 3);
    if !ok {
        // Let the stragglers go before failing.
        for _ in 0..3 {
            c.notify_one();
        }
    }
    assert!(ok, "notify_all left waiters asleep: {:?}", *m.lock().expect("lock"));
    for h in handles {
        h.join().expect("waiter");
    }
}

#[cfg(feature = "serde")]
/// Waits on the condvar until `m[0]` is set; returns what it saw.
fn wait_for_flag((m, c, ready): (Mutex<Slot>, Condvar, Event)) -> u64 {
    let mut g = m.lock().expect("lock");
    g[1] += 1;
    ready.set();
    while g[0] == 0 {
        g = c.wait(g).expect("wait");
    }
    g[0]
}

#[cfg(feature = "serde")]
#[test]
fn condvar_notify_all_wakes_waiting_children() {
    for method in METHODS {
        let ctx = Context::new(method);
        let m = Mutex::new([0u64; 2]).expect("mutex");
        let c = Condvar::new().expect("condvar");
        let mut kids = Vec::new();
        for _ in 0..3 {
            let ready = Event::new().expect("event");
            kids.push(ctx.spawn(wait_for_flag, (m.clone(), c.clone(), ready.clone())).expect("spawn"));
            assert!(ready.wait_timeout(GUARD).is_ok());
        }
        {
            let mut g = m.lock().expect("lock"); // every child is inside wait now
            assert_eq!(g[1], 3);
            g[0] = 9;
        }
        std::thread::sleep(SHORT);
        c.notify_all();
        for k in &mut kids {
            let r = match k.join_timeout(Duration::from_secs(5)) {
                Err(shmproc::JoinTimeoutError::Timeout) => {
                    for _ in 0..3 {
                        c.notify_one();
                    }
                    None
                }
                r => Some(r.expect("join")),
            };
            assert_eq!(r, Some(9), "{method}: a child was not woken by notify_all");
        }
    }
}

#[cfg(feature = "serde")]
#[test]
fn condvar_notify_one_wakes_a_waiting_child() {
    for method in METHODS {
        let m = Mutex::new([0u64; 2]).expect("mutex");
        let c = Condvar::new().expect("condvar");
        let ready = Event::new().expect("event");
        let mut kid = Context::new(method).spawn(wait_for_flag, (m.clone(), c.clone(), ready.clone())).expect("spawn");
        assert!(ready.wait_timeout(GUARD).is_ok());
        m.lock().expect("lock")[0] = 4; // the child is inside wait once we hold the mutex
        c.notify_one();
        assert_eq!(kid.join_timeout(GUARD).expect("join"), 4, "{method}");
    }
}

#[test]
fn condvar_wait_timeout_times_out_or_is_notified() {
    let m = Mutex::new([0u64; 2]).expect("mutex");
    let c = Condvar::new().expect("condvar");
    let Err(WaitTimeoutError::Timeout(g)) = c.wait_timeout(m.lock().expect("lock"), SHORT) else {
        panic!("nobody notified: a timeout, with the mutex locked again")
    };
    assert!(m.is_locked());
    drop(g);
    let Err(WaitTimeoutError::Timeout(g)) = c.wait_deadline(m.lock().expect("lock"), Instant::now()) else {
        panic!("a deadline already past: a timeout")
    };
    drop(g);
    // Notified in time.
    std::thread::scope(|s| {
        let g = m.lock().expect("lock");
        s.spawn(|| {
            let mut g = m.lock().expect("lock"); // the waiter is inside wait now
            g[0] = 1;
            c.notify_one();
        });
        let t = Instant::now();
        let mut g = c.wait_timeout(g, GUARD).expect("notified, not timed out");
        while g[0] == 0 {
            g = c.wait_timeout(g, GUARD).expect("notified, not timed out");
        }
        assert_eq!(g[0], 1);
        if t.elapsed() > GUARD {
            panic!("hang guard: still waiting after {GUARD:?}");
        }
    });
    assert!(format!("{c:?}").contains("Condvar"));
}

// ===========================================================================
// Event
// ===========================================================================

#[test]
fn event_set_clear_and_wait() {
    let e = Event::new().expect("event");
    assert!(!e.is_set());
    assert!(e.wait_timeout(SHORT).is_err());
    e.set();
    assert!(e.is_set());
    e.wait();
    assert!(e.wait_timeout(Duration::ZERO).is_ok(), "set: returns at once");
    e.set(); // setting twice is harmless
    e.clear();
    assert!(!e.is_set());
    assert!(e.wait_timeout(Duration::from_millis(1)).is_err());
    std::thread::scope(|s| {
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                s.spawn(|| {
                    e.wait();
                    Instant::now()
                })
            })
            .collect();
        std::thread::sleep(SHORT);
        let set = Instant::now();
        e.set();
        for w in waiters {
            assert!(w.join().expect("waiter") >= set, "every waiter returned only after the set");
        }
    });
    assert!(format!("{e:?}").contains("true"));
}

#[cfg(feature = "serde")]
/// Waits for `go`, then sets `done`.
fn relay((go, done): (Event, Event)) -> bool {
    let woken = go.wait_timeout(GUARD).is_ok();
    done.set();
    woken
}

#[cfg(feature = "serde")]
#[test]
fn events_signal_between_processes() {
    for method in METHODS {
        let ctx = Context::new(method);
        let go = Event::new().expect("event");
        let dones: Vec<Event> = (0..3).map(|_| Event::new().expect("event")).collect();
        let mut kids: Vec<_> =
            dones.iter().map(|d| ctx.spawn(relay, (go.clone(), d.clone())).expect("spawn")).collect();
        std::thread::sleep(SHORT);
        assert!(dones.iter().all(|d| !d.is_set()), "{method}: nobody relayed before go");
        go.set();
        for d in &dones {
            assert!(d.wait_timeout(GUARD).is_ok(), "{method}: every waiting child was woken by one set");
        }
        for k in &mut kids {
            assert!(k.join().expect("join"), "{method}");
        }
    }
}

#[cfg(feature = "serde")]
/// Opens the event by name and sets it.
fn set_by_name(name: String) {
    Event::open(&name).expect("open in the child").set();
}

#[cfg(feature = "serde")]
#[test]
fn named_event_set_by_a_child() {
    let names = test_names("named_event");
    for method in METHODS {
        let n = names.name(&method.to_string());
        let e = Event::create(&n).expect("create");
        let mut kid = Context::new(method).spawn(set_by_name, n.clone()).expect("spawn");
        assert!(e.wait_timeout(GUARD).is_ok(), "{method}");
        kid.join().expect("join");
        e.clear();
        assert!(!Event::open(&n).expect("open").is_set());
    }
    assert!(matches!(Event::open(&names.name("none")), Err(Error::NotFound { .. })));
    names.finish();
}

// ===========================================================================
// Barrier
// ===========================================================================

/// Passes the barrier `rounds` times; returns its indices.
fn barrier_rounds((b, rounds): (Barrier, usize)) -> Vec<usize> {
    (0..rounds).map(|_| b.wait_timeout(GUARD).expect("barrier")).collect()
}

#[cfg(feature = "serde")]
/// Opens the barrier by name and passes it `rounds` times.
fn barrier_rounds_by_name((name, rounds): (String, usize)) -> Vec<usize> {
    barrier_rounds((Barrier::open(&name).expect("open in the child"), rounds))
}

#[cfg(feature = "serde")]
#[test]
fn barrier_three_parties_across_processes() {
    const ROUNDS: usize = 5;
    let names = test_names("barrier_procs");
    for method in METHODS {
        let ctx = Context::new(method);
        let n = names.name(&method.to_string());
        let b = Barrier::create(&n, 3).expect("create");
        assert_eq!(b.parties(), 3);
        let mut by_arg = ctx.spawn(barrier_rounds, (b.clone(), ROUNDS)).expect("spawn");
        let mut by_name = ctx.spawn(barrier_rounds_by_name, (n.clone(), ROUNDS)).expect("spawn");
        let mine = barrier_rounds((b.clone(), ROUNDS));
        let a = by_arg.join().expect("join");
        let c = by_name.join().expect("join");
        for r in 0..ROUNDS {
            let mut idx = [mine[r], a[r], c[r]];
            idx.sort_unstable();
            assert_eq!(idx, [0, 1, 2], "{method}: round {r}: indices are distinct");
        }
        assert!(!b.is_broken());
        assert_eq!(b.n_waiting(), 0);
    }
    assert!(matches!(Barrier::open(&names.name("none")), Err(Error::NotFound { .. })));
    names.finish();
}

#[test]
fn barrier_three_threads_many_rounds() {
    let b = Barrier::new(3).expect("barrier");
    let per_thread: Vec<Vec<usize>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..3).map(|_| s.spawn(|| barrier_rounds((b.clone(), 20)))).collect();
        hs.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    for r in 0..20 {
        let mut idx: Vec<usize> = per_thread.iter().map(|v| v[r]).collect();
        idx.sort_unstable();
        assert_eq!(idx, [0, 1, 2], "round {r}");
    }
    assert!(format!("{b:?}").contains("parties: 3"));
}

#[test]
fn barrier_abort_breaks_it_until_reset() {
    assert!(matches!(Barrier::new(0), Err(Error::InvalidArgument { .. })));
    assert_eq!(Barrier::new(1).expect("barrier").wait().expect("one party passes at once"), 0);
    let b = Barrier::new(2).expect("barrier");
    std::thread::scope(|s| {
        let waiter = s.spawn(|| b.wait());
        wait_until("the waiter arrived", || b.n_waiting() == 1);
        b.abort();
        assert!(matches!(waiter.join().expect("thread"), Err(BarrierError::Broken { dead: None })));
    });
    assert!(b.is_broken());
    assert!(matches!(b.wait(), Err(BarrierError::Broken { dead: None })), "stays broken");
    assert!(matches!(b.wait_timeout(GUARD), Err(BarrierTimeoutError::Broken { dead: None })));
    b.reset();
    assert!(!b.is_broken());
    assert_eq!(b.n_waiting(), 0);
    let idx: Vec<usize> = std::thread::scope(|s| {
        let h = s.spawn(|| b.wait_timeout(GUARD).expect("after reset"));
        let mine = b.wait_timeout(GUARD).expect("after reset");
        vec![mine, h.join().expect("thread")]
    });
    assert_eq!(idx.iter().sum::<usize>(), 1, "indices 0 and 1: {idx:?}");
}

/// `reset` is documented (as in Python) to make the parties waiting at that
/// moment fail with `Broken`.
#[test]
fn barrier_reset_breaks_current_waiters() {
    let b = Barrier::new(2).expect("barrier");
    std::thread::scope(|s| {
        let waiter = s.spawn(|| b.wait());
        wait_until("the waiter arrived", || b.n_waiting() == 1);
        b.reset();
        let r = waiter.join().expect("thread");
        assert!(matches!(r, Err(BarrierError::Broken { .. })), "a waiter released by reset: {r:?}");
    });
}

#[test]
fn barrier_wait_timeout_breaks_it() {
    let b = Barrier::new(2).expect("barrier");
    assert!(matches!(b.wait_timeout(SHORT), Err(BarrierTimeoutError::Timeout)));
    assert!(b.is_broken());
    let t = Instant::now();
    assert!(
        matches!(b.wait_timeout(GUARD), Err(BarrierTimeoutError::Broken { dead: None })),
        "the other party: at once"
    );
    if t.elapsed() > GUARD / 2 {
        panic!("hang guard: still waiting after {:?}", GUARD / 2);
    }
    b.reset();
    std::thread::scope(|s| {
        let h = s.spawn(|| b.wait_timeout(GUARD));
        assert!(b.wait_timeout(GUARD).is_ok());
        assert!(h.join().expect("thread").is_ok());
    });
}

#[cfg(feature = "serde")]
/// Passes the barrier once and exits.
fn pass_once(b: Barrier) -> usize {
    b.wait_timeout(GUARD).expect("barrier")
}

#[cfg(feature = "serde")]
/// A registered party that exited is a dead member: the next round breaks
/// with its pid instead of waiting for it forever, and `reset` forgets it.
#[test]
fn barrier_round_after_a_party_exited_is_broken_until_reset() {
    let b = Barrier::new(2).expect("barrier");
    let mut kid = Context::new(StartMethod::ForkServer).spawn(pass_once, b.clone()).expect("spawn");
    let mine = b.wait_timeout(GUARD).expect("round 1");
    assert_eq!(mine + kid.join().expect("join"), 1);
    match b.wait_timeout(GUARD) {
        Err(BarrierTimeoutError::Broken { dead }) => assert_eq!(dead, Some(kid.pid())),
        other => panic!("expected Broken naming the exited party, got {other:?}"),
    }
    b.reset();
    let mut kid2 = Context::new(StartMethod::ForkServer).spawn(pass_once, b.clone()).expect("spawn");
    let mine = b.wait_timeout(GUARD).expect("round after reset");
    assert_eq!(mine + kid2.join().expect("join"), 1);
}

// ===========================================================================
// Python parity: Condition.notify(n), wait_for, Condition over a Lock or an
// RLock, Barrier(action, timeout), `with sem:`
// ===========================================================================

/// `[waiting now, woken in all, stop]` of the notify-count tests.
type Counts = [u64; 3];

/// A waiter of the notify-count tests: counts itself as waiting (under
/// the mutex, so it has prepared its wait once the notifier sees the
/// count), waits, counts itself woken; again until told to stop.
fn counted_waiter((m, c): (Mutex<Counts>, Condvar)) {
    let mut g = m.lock().expect("lock");
    while g[2] == 0 {
        g[0] += 1;
        g = c.wait(g).expect("wait");
        g[0] -= 1;
        g[1] += 1;
    }
}

/// The notifier's side: with `n` waiters all waiting, each notify ends
/// exactly as many waits as it asked for (no more, even given time).
fn check_notify_counts(m: &Mutex<Counts>, c: &Condvar, n: u64, rounds: usize) {
    let all_waiting = || wait_until("all waiters waiting", || m.lock().expect("lock")[0] == n);
    let woken = || m.lock().expect("lock")[1];
    let expect_woken = |total: u64, what: &str| {
        wait_until(what, || woken() >= total);
        // Nothing to wait for when checking that no more woke: a short
        // sleep gives a wrongly woken waiter time to show up.
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(woken(), total, "{what}: woke too many");
    };
    let mut total = 0;
    for round in 0..rounds {
        all_waiting();
        c.notify_one();
        total += 1;
        expect_woken(total, &format!("notify_one, round {round}"));
        all_waiting();
        c.notify(2);
        total += 2;
        expect_woken(total, &format!("notify(2), round {round}"));
        all_waiting();
        c.notify_all();
        total += n;
        expect_woken(total, &format!("notify_all, round {round}"));
    }
    all_waiting();
    m.lock().expect("lock")[2] = 1;
    c.notify_all();
}

// CPython: _TestCondition.test_notify, test_notify_n (and test_notify_all).
#[test]
fn condvar_notify_wakes_exactly_as_many_as_asked_threads() {
    let m = Mutex::new([0u64; 3]).expect("mutex");
    let c = Condvar::new().expect("condvar");
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let args = (m.clone(), c.clone());
            std::thread::spawn(move || counted_waiter(args))
        })
        .collect();
    check_notify_counts(&m, &c, 3, 10);
    for h in handles {
        h.join().expect("waiter");
    }
}

// CPython: _TestCondition.test_notify, test_notify_n, with processes.
#[cfg(feature = "serde")]
#[test]
fn condvar_notify_wakes_exactly_as_many_as_asked_processes() {
    for method in METHODS {
        let ctx = Context::new(method);
        let m = Mutex::new([0u64; 3]).expect("mutex");
        let c = Condvar::new().expect("condvar");
        let mut kids: Vec<_> =
            (0..3).map(|_| ctx.spawn(counted_waiter, (m.clone(), c.clone())).expect("spawn")).collect();
        check_notify_counts(&m, &c, 3, 3);
        for k in &mut kids {
            k.join_timeout(GUARD).expect("waiter");
        }
    }
}

#[test]
fn condvar_notify_zero_and_without_waiters_does_nothing() {
    let m = Mutex::new([0u64; 3]).expect("mutex");
    let c = Condvar::new().expect("condvar");
    c.notify(5); // nobody waits: no wake-up is kept for later
    let Err(WaitTimeoutError::Timeout(g)) = c.wait_timeout(m.lock().expect("lock"), SHORT) else {
        panic!("an earlier notify woke a later waiter")
    };
    drop(g);
    let h = {
        let (m, c) = (m.clone(), c.clone());
        std::thread::spawn(move || counted_waiter((m, c)))
    };
    wait_until("waiter waiting", || m.lock().expect("lock")[0] == 1);
    c.notify(0);
    // Nothing to wait for: checking that notify(0) woke nobody.
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(m.lock().expect("lock")[1], 0, "notify(0) woke a waiter");
    m.lock().expect("lock")[2] = 1;
    c.notify_all();
    h.join().expect("waiter");
}

// CPython: _TestCondition.test_waitfor (wait_for's predicate is the
// negation of wait_while's).
#[test]
fn condvar_wait_while_waits_until_the_condition_is_false() {
    let m = Mutex::new(0u32).expect("mutex");
    let c = Condvar::new().expect("condvar");
    std::thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..4 {
                *m.lock().expect("lock") += 1;
                c.notify_all();
            }
        });
        let g = c.wait_while(m.lock().expect("lock"), |n| *n < 4).expect("wait_while");
        assert_eq!(*g, 4);
    });
    // False at once: no wait at all.
    let g = c.wait_while(m.lock().expect("lock"), |n| *n == 0).expect("no wait");
    assert_eq!(*g, 4);
}

// CPython: _TestCondition.test_waitfor_timeout: the predicate never comes
// true, the wait gives up with the lock held and the predicate's last value.
#[test]
fn condvar_wait_while_timeout_gives_up_with_the_guard() {
    let m = Mutex::new(0u32).expect("mutex");
    let c = Condvar::new().expect("condvar");
    let mut looks = 0;
    let r = c.wait_while_timeout(m.lock().expect("lock"), SHORT, |n| {
        looks += 1;
        *n == 0
    });
    let Err(WaitTimeoutError::Timeout(g)) = r else { panic!("the condition held throughout") };
    assert!(m.is_locked());
    assert_eq!(*g, 0);
    assert!(looks >= 2, "looked again after the time ran out");
    drop(g);
    let r = c.wait_while_deadline(m.lock().expect("lock"), Instant::now(), |n| *n == 0);
    assert!(matches!(r, Err(WaitTimeoutError::Timeout(_))));
    drop(r);
    // Notified in time.
    std::thread::scope(|s| {
        let g = m.lock().expect("lock");
        s.spawn(|| {
            *m.lock().expect("lock") = 2; // the waiter is inside its wait now
            c.notify_one();
        });
        let g = c.wait_while_timeout(g, GUARD, |n| *n == 0).expect("notified in time");
        assert_eq!(*g, 2);
    });
}

// CPython: _TestCondition (a Condition's wait releases its lock, which
// another thread then takes); the lock here is a `Lock`.
#[test]
fn condvar_waits_with_a_lock_guard() {
    let lock = Lock::new().expect("lock");
    let c = Condvar::new().expect("condvar");
    let flag = AtomicU32::new(0);
    std::thread::scope(|s| {
        let g = lock.lock().expect("lock");
        s.spawn(|| {
            let _g = lock.lock().expect("taken while the waiter waits");
            flag.store(1, Ordering::Relaxed);
            c.notify_one();
        });
        let g = c.wait_while_timeout(g, GUARD, |()| flag.load(Ordering::Relaxed) == 0).expect("notified");
        assert!(lock.is_locked());
        drop(g);
    });
    assert!(!lock.is_locked());
    let Err(WaitTimeoutError::Timeout(g)) = c.wait_timeout(lock.lock().expect("lock"), SHORT) else {
        panic!("nobody notified")
    };
    drop(g);
}

// CPython: _TestCondition with the default RLock: a wait releases every
// level of the RLock and takes them all back.
#[test]
fn condvar_waits_with_an_rlock_at_every_level() {
    let r = RLock::new().expect("rlock");
    let c = Condvar::new().expect("condvar");
    let flag = AtomicU32::new(0);
    std::thread::scope(|s| {
        let outer = r.lock().expect("level 1");
        let inner = r.lock().expect("level 2");
        assert_eq!(r.depth(), 2);
        s.spawn(|| {
            let _g = r.lock().expect("free while the waiter waits, though it held two levels");
            flag.store(1, Ordering::Relaxed);
            c.notify_all();
        });
        let inner = c.wait_while(inner, |()| flag.load(Ordering::Relaxed) == 0).expect("notified");
        assert_eq!(r.depth(), 2, "both levels back");
        drop(inner);
        assert_eq!(r.depth(), 1);
        drop(outer);
    });
    assert!(!r.is_locked());
}

#[cfg(feature = "serde")]
/// Sets `flag` under `lock` and notifies.
fn set_under_lock((lock, c, flag): (Lock, Condvar, Shared<AtomicU64>)) {
    let g = lock.lock().expect("lock");
    flag.store(7, Ordering::Relaxed);
    drop(g);
    c.notify_all();
}

// CPython: _TestCondition.test_waitfor with processes, the lock a `Lock`.
#[cfg(feature = "serde")]
#[test]
fn condvar_with_a_lock_across_processes() {
    for method in METHODS {
        let lock = Lock::new().expect("lock");
        let c = Condvar::new().expect("condvar");
        let flag = Shared::<AtomicU64>::anonymous(|_| ()).expect("flag");
        let g = lock.lock().expect("lock");
        let mut kid =
            Context::new(method).spawn(set_under_lock, (lock.clone(), c.clone(), flag.clone())).expect("spawn");
        let g = c.wait_while_timeout(g, GUARD, |()| flag.load(Ordering::Relaxed) == 0).expect("notified");
        assert_eq!(flag.load(Ordering::Relaxed), 7, "{method}");
        drop(g);
        kid.join_timeout(GUARD).expect("child");
    }
}

#[cfg(feature = "serde")]
/// How often [`count_action`] ran in this process.
static ACTION_RUNS: AtomicU32 = AtomicU32::new(0);

#[cfg(feature = "serde")]
fn count_action() {
    ACTION_RUNS.fetch_add(1, Ordering::SeqCst);
}

#[cfg(feature = "serde")]
/// Passes the barrier `rounds` times; returns how often this process ran
/// the action.
fn barrier_with_action_rounds((b, rounds): (Barrier, usize)) -> u32 {
    for _ in 0..rounds {
        b.wait_timeout(GUARD).expect("barrier");
    }
    ACTION_RUNS.load(Ordering::SeqCst)
}

// CPython: _TestBarrier.test_action: the action runs once per trip, before
// any party is released.
#[cfg(feature = "serde")]
#[test]
fn barrier_action_runs_once_per_trip_before_release() {
    static RUNS: AtomicU32 = AtomicU32::new(0);
    fn action() {
        RUNS.fetch_add(1, Ordering::SeqCst);
    }
    const ROUNDS: u32 = 20;
    let b = Barrier::builder(3).action(action).build().expect("barrier");
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                for round in 1..=ROUNDS {
                    b.wait_timeout(GUARD).expect("barrier");
                    let runs = RUNS.load(Ordering::SeqCst);
                    assert!(runs >= round, "released before the action of trip {round} ran ({runs})");
                }
            });
        }
    });
    assert_eq!(RUNS.load(Ordering::SeqCst), ROUNDS, "once per trip");
}

// CPython: _TestBarrier.test_action, with processes: a child spawned with
// the barrier runs the same action (each process counts its own runs).
#[cfg(feature = "serde")]
#[test]
fn barrier_action_runs_in_whichever_process_arrives_last() {
    const ROUNDS: usize = 10;
    let names = test_names("barrier_action");
    for method in METHODS {
        let before = ACTION_RUNS.load(Ordering::SeqCst);
        let name = names.name(&format!("{method}"));
        let b = Barrier::builder(3).action(count_action).create(&name).expect("create");
        let ctx = Context::new(method);
        let mut by_arg = ctx.spawn(barrier_with_action_rounds, (b.clone(), ROUNDS)).expect("spawn");
        let opened = Barrier::open(&name).expect("open");
        let mut by_name = ctx.spawn(barrier_with_action_rounds, (opened, ROUNDS)).expect("spawn");
        let mine = barrier_with_action_rounds((b, ROUNDS)) - before;
        let theirs = by_arg.join_timeout(GUARD).expect("child") + by_name.join_timeout(GUARD).expect("child");
        assert_eq!(mine + theirs, ROUNDS as u32, "{method}: once per trip, in some process");
    }
    names.finish();
}

// CPython: _TestBarrier.test_action (an action that raises): the party
// that ran it gets the panic, the others a broken barrier.
#[cfg(feature = "serde")]
#[test]
fn barrier_action_that_panics_breaks_the_barrier() {
    fn boom() {
        panic!("boom in the action");
    }
    for timed in [false, true] {
        let b = Barrier::builder(2).action(boom).build().expect("barrier");
        let outcomes: Vec<String> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        if timed {
                            match b.wait_timeout(GUARD) {
                                Err(BarrierTimeoutError::ActionPanicked { message }) => format!("panicked: {message}"),
                                Err(BarrierTimeoutError::Broken { dead: None }) => "broken".to_owned(),
                                r => format!("{r:?}"),
                            }
                        } else {
                            match b.wait() {
                                Err(BarrierError::ActionPanicked { message }) => format!("panicked: {message}"),
                                Err(BarrierError::Broken { dead: None }) => "broken".to_owned(),
                                r => format!("{r:?}"),
                            }
                        }
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().expect("party")).collect()
        });
        let mut outcomes = outcomes;
        outcomes.sort();
        assert_eq!(outcomes, ["broken", "panicked: boom in the action"], "timed: {timed}");
        assert!(b.is_broken());
        b.reset();
        assert!(!b.is_broken());
    }
}

// CPython: _TestBarrier.test_default_timeout: a wait without a timeout of
// its own gives up after the barrier's, and breaks it.
#[test]
fn barrier_default_timeout_breaks_the_barrier() {
    let b = Barrier::builder(2).timeout(SHORT).build().expect("barrier");
    assert_eq!(b.timeout(), Some(SHORT));
    assert!(matches!(b.wait(), Err(BarrierError::Broken { dead: None })));
    assert!(b.is_broken());
    b.reset();
    // A timeout of the call's own replaces the default.
    assert!(matches!(b.wait_timeout(Duration::ZERO), Err(BarrierTimeoutError::Timeout)));
    b.reset();
    // Within the default timeout, both pass.
    let long = Barrier::builder(2).timeout(GUARD).build().expect("barrier");
    std::thread::scope(|s| {
        s.spawn(|| long.wait().expect("pass"));
        long.wait().expect("pass");
    });
    assert_eq!(Barrier::builder(2).timeout(Duration::MAX).build().expect("barrier").timeout(), None);
    assert!(matches!(Barrier::builder(0).build(), Err(Error::InvalidArgument { .. })));
}

// CPython docs: Semaphore and BoundedSemaphore support the context manager
// protocol (`with sem:`); _TestSemaphore.test_semaphore's counts.
#[test]
fn semaphore_guard_returns_its_permit() {
    let s = Semaphore::new(2).expect("semaphore");
    {
        let _a = s.guard();
        let b = s.try_guard().expect("second permit");
        assert_eq!(s.value(), 0);
        assert_eq!(s.try_guard().err(), Some(WouldBlock));
        assert_eq!(s.guard_timeout(SHORT).err(), Some(TimedOut));
        assert_eq!(s.guard_deadline(Instant::now()).err(), Some(TimedOut));
        drop(b);
        assert_eq!(s.value(), 1);
        let _c = s.guard_deadline(Instant::now() + GUARD).expect("one free");
    }
    assert_eq!(s.value(), 2);
    s.guard().forget();
    assert_eq!(s.value(), 1);
    let bounded = BoundedSemaphore::new(1).expect("bounded");
    {
        let _g = bounded.guard_timeout(GUARD).expect("permit");
        assert_eq!(bounded.value(), 0);
    }
    assert_eq!(bounded.value(), 1);
    assert!(matches!(bounded.release(), Err(Error::ReleasedTooMany)), "the guard returned exactly one");
    // Guards bound concurrency across threads, and move between them.
    let inside = AtomicU32::new(0);
    std::thread::scope(|sc| {
        for _ in 0..4 {
            sc.spawn(|| {
                for _ in 0..50 {
                    let g = s.guard_timeout(GUARD).expect("permit");
                    assert!(inside.fetch_add(1, Ordering::SeqCst) < 1, "two holders of one permit");
                    inside.fetch_sub(1, Ordering::SeqCst);
                    std::thread::scope(|inner| {
                        inner.spawn(move || drop(g));
                    });
                }
            });
        }
    });
}

// CPython: _TestBarrier.test_reset with an action: a reset while the last
// party runs the action voids that trip; the round the reset started
// counts its own parties (the party that waits in it is not released by
// the voided trip, and trips with the next arrival).
#[cfg(feature = "serde")]
#[test]
fn a_reset_while_the_action_runs_voids_that_trip() {
    static RUNNING: AtomicU32 = AtomicU32::new(0);
    static GO: AtomicU32 = AtomicU32::new(0);
    fn action() {
        if RUNNING.fetch_add(1, Ordering::SeqCst) == 0 {
            // The first run blocks until the test lets it go.
            while GO.load(Ordering::SeqCst) == 0 {
                std::thread::yield_now();
            }
        }
    }
    let b = Barrier::builder(2).action(action).build().expect("barrier");
    std::thread::scope(|s| {
        let first = s.spawn(|| {
            let round1 = b.wait_timeout(GUARD);
            let round2 = b.wait_timeout(GUARD);
            (round1, round2)
        });
        while b.n_waiting() < 1 {
            std::thread::yield_now();
        }
        let last = s.spawn(|| b.wait_timeout(GUARD));
        while RUNNING.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        b.reset();
        // The first party left round 1 (broken by the reset) and waits in
        // round 2 before the action ends.
        while b.n_waiting() < 1 {
            std::thread::yield_now();
        }
        GO.store(1, Ordering::SeqCst);
        assert!(matches!(last.join().expect("last"), Err(BarrierTimeoutError::Broken { dead: None })));
        // Round 2 trips with this arrival, not before.
        assert_eq!(b.wait_timeout(GUARD).expect("round 2"), 1);
        let (round1, round2) = first.join().expect("first");
        assert!(matches!(round1, Err(BarrierTimeoutError::Broken { dead: None })));
        assert_eq!(round2.expect("round 2"), 0);
    });
}
