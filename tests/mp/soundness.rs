//! Soundness regressions: programs in safe code, as a new user would write
//! them, that once made two threads (in two processes) believe they held
//! the same role or lock.
//!
//! - A ring role moved into a `Process::fork` closure: the parent used to
//!   drop its copy of the closure when `fork` returned, giving the role back
//!   while the child still used it. Now the parent forgets the closure, and
//!   the child holds the role in its own name from its first use.
//! - A process that reads its own liveness token file (any code doing
//!   `std::fs::read` on `/dev/shm`, a backup, a diagnostic) used to drop its
//!   token lock (a POSIX record lock goes with any close of the file), so a
//!   peer found the live holder of a mutex "dead" and took the lock over.
//!   Tokens now hold open-file-description locks.
//!
//! The fork cases run in a single-threaded Spawn child (the test harness has
//! many threads, where fork is refused).

use std::time::Duration;

use shmproc::{
    ByteConsumer, BytePopError, ByteProducer, BytePushError, ByteRing, Context, Error, Event, LockTimeoutError, Mutex,
    PopError, Process, PushError, SpscRing, StartMethod,
};

use crate::harness::{Ctx, HANG_GUARD};

/// Task: a producer moved into a fork closure belongs to the child. While
/// the child lives, nobody else can claim the role (the parent forgot its
/// copy instead of giving the role back); after the child pushed (taking
/// the role in its own name) and died holding it, the role is free to take
/// over, though the parent that first claimed it still lives.
fn moved_producer_belongs_to_the_child(gate_name: String) -> Result<(), String> {
    let s = |e: Error| e.to_string();
    let ring = SpscRing::<u64>::new(8).map_err(s)?;
    let gate = Event::open(&gate_name).map_err(s)?;
    let mut tx = ring.producer().map_err(s)?;
    tx.push(1).map_err(|e| e.to_string())?;
    let child_gate = gate.clone();
    let mut child = Process::fork(move || -> u8 {
        if child_gate.wait_timeout(HANG_GUARD).is_err() {
            std::process::exit(3);
        }
        tx.push(2).expect("room");
        std::process::abort(); // dies holding the role
    })
    .map_err(s)?;
    let held = matches!(ring.producer(), Err(Error::WouldBlock));
    gate.set();
    let _ = child.join(); // killed by SIGABRT
    if !held {
        return Err("the role was free while the child held the moved producer".to_owned());
    }
    let _tx = ring.producer().map_err(|e| format!("take over from the dead child: {e}"))?;
    let mut rx = ring.consumer().map_err(s)?;
    let got = (rx.pop().ok(), rx.pop().ok(), rx.pop());
    if !matches!(got, (Some(1), Some(2), Err(PopError::Empty))) {
        return Err(format!("ring holds {got:?}"));
    }
    Ok(())
}

/// A ring role handle moved into a fork closure passes to the child alone.
#[test]
fn a_producer_moved_into_a_fork_child_is_the_childs() {
    let ctx = Ctx::new("sound-fork-role");
    let gate = Event::create(&ctx.name("gate")).expect("event");
    let mut p = Context::new(StartMethod::Spawn)
        .spawn(moved_producer_belongs_to_the_child, ctx.name("gate"))
        .expect("start the task");
    p.join().expect("join").unwrap_or_else(|e| panic!("{e}"));
    drop(gate);
    ctx.finish();
}

/// Task: locks the named mutex, reads every liveness token file in
/// `/dev/shm` (its own among them) and closes them again, says so through
/// `held`, and unlocks when `release` is set.
fn hold_and_read_tokens((mutex, held, release): (String, String, String)) -> Result<usize, String> {
    let s = |e: Error| e.to_string();
    let m = Mutex::<u64>::open(&mutex).map_err(s)?;
    let (held, release) = (Event::open(&held).map_err(s)?, Event::open(&release).map_err(s)?);
    let mut g = m.lock().map_err(|e| e.to_string())?;
    *g += 1;
    let mut read = 0;
    for entry in std::fs::read_dir("/dev/shm").map_err(|e| e.to_string())?.flatten() {
        if entry.file_name().to_string_lossy().starts_with("shmproc@") && std::fs::read(entry.path()).is_ok() {
            read += 1;
        }
    }
    held.set();
    if release.wait_timeout(HANG_GUARD).is_err() {
        return Err("never released".to_owned());
    }
    drop(g);
    Ok(read)
}

/// A holder that opens and closes its own token file stays alive to its
/// peers: a waiter times out, never gets `OwnerDied`.
#[test]
fn reading_ones_own_token_file_keeps_one_alive() {
    let ctx = Ctx::new("sound-token-read");
    let m = Mutex::create(&ctx.name("m"), 0u64).expect("mutex");
    let held = Event::create(&ctx.name("held")).expect("event");
    let release = Event::create(&ctx.name("release")).expect("event");
    let args = (ctx.name("m"), ctx.name("held"), ctx.name("release"));
    let mut p = Context::new(StartMethod::Spawn).spawn(hold_and_read_tokens, args).expect("start the holder");
    assert!(held.wait_timeout(HANG_GUARD).is_ok(), "the holder never locked");
    // Long enough for several liveness checks (2 ms, doubling): a dead
    // owner would be found and the lock taken over.
    match m.lock_timeout(Duration::from_millis(300)) {
        Err(LockTimeoutError::Timeout) => {}
        Err(LockTimeoutError::OwnerDied(_)) => panic!("a live holder was taken for dead"),
        other => panic!("lock while held: {:?}", other.map(|g| *g)),
    }
    release.set();
    let read = p.join().expect("join").unwrap_or_else(|e| panic!("{e}"));
    assert!(read >= 1, "the holder read no token file");
    assert_eq!(*m.lock().expect("clean after the holder's unlock"), 1);
    drop((m, held, release));
    ctx.finish();
}

/// Task: while a second thread keeps entering shmproc's process-wide
/// state (the process registry through `current_process`, the liveness
/// token through `try_acquire` on a lock held by this thread), forks
/// `rounds` children under `allow_fork_with_threads`; each child takes a
/// lock of its own (a new liveness token) and reads its process record.
/// A child forked while the other thread held one of those locks used to
/// wait forever for it; the fork handlers reset them. Returns how many
/// children came back.
fn fork_beside_a_busy_thread(rounds: u32) -> Result<u32, String> {
    let s = |e: Error| e.to_string();
    let held = shmproc::Lock::new().map_err(s)?;
    held.acquire().map_err(|e| e.to_string())?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let busy = {
        let (stop, held) = (stop.clone(), held.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = shmproc::current_process();
                let _ = held.try_acquire();
            }
        })
    };
    let mut back = 0;
    for _ in 0..rounds {
        // SAFETY: the other thread takes no lock of ours or std's that the
        // child needs, other than shmproc's own, which the fork handlers
        // reset (the subject of this test); it neither prints nor panics.
        #[allow(unsafe_code)]
        let b = unsafe { Process::builder().allow_fork_with_threads() };
        let mut p = b
            .fork(|| -> u32 {
                let mine = shmproc::Lock::new().expect("lock");
                mine.acquire().expect("acquire");
                shmproc::current_process().pid()
            })
            .map_err(s)?;
        match p.join_timeout(HANG_GUARD) {
            Ok(pid) if pid == p.pid() => back += 1,
            Ok(pid) => return Err(format!("child says pid {pid}, is {}", p.pid())),
            Err(e) if !matches!(e, shmproc::JoinTimeoutError::Timeout) => return Err(s(e.into())),
            Err(_) => {
                let _ = p.kill();
                return Err("a child forked beside a busy thread hung".to_owned());
            }
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    busy.join().map_err(|_| "the busy thread panicked".to_owned())?;
    Ok(back)
}

/// Children forked with other threads inside shmproc calls never wait for
/// a lock a vanished parent thread held.
#[test]
fn a_fork_beside_a_busy_thread_finds_shmproc_unlocked() {
    let ctx = Ctx::new("sound-fork-busy");
    let mut p = Context::new(StartMethod::Spawn).spawn(fork_beside_a_busy_thread, 200).expect("start the task");
    assert_eq!(p.join().expect("join").unwrap_or_else(|e| panic!("{e}")), 200);
    ctx.finish();
}

/// Task: 1 023 threads take every thread slot of this process's token
/// (each takes a lock once, so it gets an owner id) and stay alive; then
/// two more threads try the same `RLock` in turn while the first of them
/// still holds it. Those two used to share slot 0, so the re-entrant lock
/// let both in. Returns how many of the two held it (at most one).
fn slots_run_out(_: ()) -> Result<u32, String> {
    use std::sync::{Arc, Barrier, mpsc};
    let s = |e: Error| e.to_string();
    let dummy = shmproc::Lock::new().map_err(s)?;
    let rlock = shmproc::RLock::new().map_err(s)?;
    let parked = Arc::new(Barrier::new(1024));
    let release = Arc::new(Barrier::new(1024));
    let mut threads = Vec::new();
    for _ in 0..1023 {
        let (dummy, parked, release) = (dummy.clone(), parked.clone(), release.clone());
        let t = std::thread::Builder::new().stack_size(64 * 1024).spawn(move || {
            let _ = dummy.try_acquire().map(|()| dummy.release());
            parked.wait();
            release.wait();
        });
        threads.push(t.map_err(|e| format!("thread: {e}"))?);
    }
    parked.wait(); // every slot is taken now (this thread took none)
    let (held_tx, held_rx) = mpsc::channel::<bool>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let first = {
        let rlock = rlock.clone();
        let held_tx = held_tx.clone();
        std::thread::spawn(move || {
            let held = rlock.try_acquire().is_ok();
            let _ = held_tx.send(held);
            let _ = go_rx.recv(); // hold it while the second one tries
            if held {
                let _ = rlock.release();
            }
        })
    };
    let first_held = held_rx.recv().map_err(|_| "first thread died".to_owned())?;
    let second_held = std::thread::spawn(move || rlock.try_acquire().is_ok())
        .join()
        .map_err(|_| "second thread panicked".to_owned())?;
    let _ = go_tx.send(());
    first.join().map_err(|_| "first thread panicked".to_owned())?;
    release.wait();
    for t in threads {
        t.join().map_err(|_| "a slot thread panicked".to_owned())?;
    }
    Ok(u32::from(first_held) + u32::from(second_held))
}

/// Past the last thread slot, a thread gets an error instead of sharing an
/// owner id with another thread: a re-entrant lock never admits two.
#[test]
fn two_threads_never_share_an_owner_id() {
    let ctx = Ctx::new("sound-slots");
    let mut p = Context::new(StartMethod::Spawn).spawn(slots_run_out, ()).expect("start the task");
    let holders = p.join().expect("join").unwrap_or_else(|e| panic!("{e}"));
    assert!(holders <= 1, "{holders} threads held one re-entrant lock at once");
    ctx.finish();
}

/// A producer kept in a static: both processes of a fork can reach it.
static STATIC_TX: std::sync::Mutex<Option<shmproc::Producer<u64>>> = std::sync::Mutex::new(None);

/// What a push through the static producer gave.
fn push_static(v: u64) -> String {
    let mut g = STATIC_TX.lock().unwrap_or_else(|p| p.into_inner());
    match g.as_mut().map(|tx| tx.push(v)) {
        Some(Ok(())) => "pushed".to_owned(),
        Some(Err(PushError::Failed(back, Error::RoleLost))) => {
            assert_eq!(back, v, "a push refused for a lost role gives its value back");
            "lost".to_owned()
        }
        other => format!("{other:?}"),
    }
}

/// Task: a producer in a static, reachable by parent and child after a
/// fork. Round 1: the child pushes first and keeps the role; the parent's
/// copy then says `RoleLost`. Round 2: the parent pushes first and keeps
/// it; the child's copy says `RoleLost`. Never do both push.
fn static_producer_has_one_holder(gate_name: String) -> Result<(), String> {
    let s = |e: Error| e.to_string();
    let gate = Event::open(&gate_name).map_err(s)?;
    for child_first in [true, false] {
        gate.clear();
        let ring = SpscRing::<u64>::new(8).map_err(s)?;
        *STATIC_TX.lock().map_err(|_| "poisoned")? = Some(ring.producer().map_err(s)?);
        let child_gate = gate.clone();
        let mut child = Process::fork(move || -> String {
            if !child_first && child_gate.wait_timeout(HANG_GUARD).is_err() {
                return "never released".to_owned();
            }
            push_static(2)
        })
        .map_err(s)?;
        let (parent_said, child_said) = if child_first {
            let c = child.join().map_err(|e| s(e.into()))?;
            (push_static(1), c)
        } else {
            let p = push_static(1);
            gate.set();
            (p, child.join().map_err(|e| s(e.into()))?)
        };
        let want = if child_first { ("lost", "pushed") } else { ("pushed", "lost") };
        if (parent_said.as_str(), child_said.as_str()) != want {
            return Err(format!("child first {child_first}: parent {parent_said}, child {child_said}"));
        }
        *STATIC_TX.lock().map_err(|_| "poisoned")? = None;
        let mut rx = ring.consumer().map_err(s)?;
        let first = rx.pop().map_err(|e| e.to_string())?;
        // Then empty: the role's holder was the child, now dead
        // (`Disconnected`), or the parent, which let go (`Empty`).
        let then = rx.pop();
        let one = if child_first { 2 } else { 1 };
        let then_ok = if child_first {
            matches!(then, Err(PopError::Disconnected))
        } else {
            matches!(then, Err(PopError::Empty))
        };
        if first != one || !then_ok {
            return Err(format!("child first {child_first}: the ring gave {first:?}, then {then:?}"));
        }
    }
    Ok(())
}

/// A role handle that both processes of a fork can reach (through a
/// static) has one holder: the first to use it after the fork.
#[test]
fn a_producer_in_a_static_has_one_holder_after_a_fork() {
    let ctx = Ctx::new("sound-static-role");
    let gate = Event::create(&ctx.name("gate")).expect("event");
    let mut p = Context::new(StartMethod::Spawn)
        .spawn(static_producer_has_one_holder, ctx.name("gate"))
        .expect("start the task");
    p.join().expect("join").unwrap_or_else(|e| panic!("{e}"));
    drop(gate);
    ctx.finish();
}

/// Both roles of a byte ring, kept in a static: both processes of a fork
/// can reach them.
static STATIC_BYTES: std::sync::Mutex<Option<(ByteProducer, ByteConsumer)>> = std::sync::Mutex::new(None);

/// Task: the child of a fork uses the byte ring's roles first (a push, a
/// pop) and keeps them; then every call on the parent's copies fails with
/// `RoleLost`, and the iterator yields that failure once.
fn static_byte_roles_have_one_holder((): ()) -> Result<(), String> {
    let s = |e: Error| e.to_string();
    let ring = ByteRing::new(256).map_err(s)?;
    *STATIC_BYTES.lock().map_err(|_| "poisoned")? = Some((ring.producer().map_err(s)?, ring.consumer().map_err(s)?));
    let mut child = Process::fork(|| -> String {
        let mut g = STATIC_BYTES.lock().unwrap_or_else(|p| p.into_inner());
        let Some((tx, rx)) = g.as_mut() else { return "no roles".to_owned() };
        match (tx.push(b"child"), rx.pop()) {
            (Ok(()), Ok(m)) if m == b"child" => "ok".to_owned(),
            (push, pop) => format!("push {push:?}, pop {:?}", pop.map(|m| m.len())),
        }
    })
    .map_err(s)?;
    let said = child.join().map_err(|e| e.to_string())?;
    if said != "ok" {
        return Err(format!("child: {said}"));
    }
    let mut g = STATIC_BYTES.lock().map_err(|_| "poisoned")?;
    let (tx, rx) = g.as_mut().ok_or("no roles")?;
    let lost_push = |r: Result<(), BytePushError>| matches!(r, Err(BytePushError::Failed((), Error::RoleLost)));
    let lost_pop = |r: Result<(), BytePopError>| matches!(r, Err(BytePopError::Failed(Error::RoleLost)));
    let outcomes = [
        lost_push(tx.push(b"parent")),
        lost_push(tx.reserve(1).map(drop)),
        lost_pop(rx.pop().map(drop)),
        lost_pop(rx.pop_into(&mut Vec::new()).map(drop)),
        lost_pop(rx.peek().map(drop)),
    ];
    if outcomes != [true; 5] {
        return Err(format!("the parent's calls after the child took the roles: {outcomes:?} (true: RoleLost)"));
    }
    let mut it = rx.try_iter();
    if !matches!(it.next(), Some(Err(Error::RoleLost))) || it.next().is_some() {
        return Err("try_iter did not yield RoleLost once, then end".to_owned());
    }
    *g = None;
    Ok(())
}

/// A byte ring's roles reachable from both processes of a fork (through a
/// static) have one holder: the child, which used them first; the parent's
/// copies say `RoleLost`.
#[test]
fn byte_ring_roles_in_a_static_have_one_holder_after_a_fork() {
    let ctx = Ctx::new("sound-static-bytes");
    let mut p = Context::new(StartMethod::Spawn).spawn(static_byte_roles_have_one_holder, ()).expect("start the task");
    p.join().expect("join").unwrap_or_else(|e| panic!("{e}"));
    ctx.finish();
}
