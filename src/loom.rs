//! The one facade for atomics and futex waiting used by shmproc's
//! algorithms: std and the real futex normally, loom and an emulated futex
//! under `--cfg shmproc_loom`, so that model checking runs the same code.

/// Atomics: `std::sync::atomic`, or loom's under `cfg(shmproc_loom)`.
pub(crate) mod atomic {
    #[cfg(not(shmproc_loom))]
    pub(crate) use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

    #[cfg(shmproc_loom)]
    pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering};

    /// A full fence: orders a caller's earlier store (of any ordering)
    /// before its later loads, for a Dekker pair whose store is not SeqCst.
    #[inline(always)]
    pub(crate) fn fence_seq_cst() {
        #[cfg(not(shmproc_loom))]
        std::sync::atomic::fence(Ordering::SeqCst);
        #[cfg(shmproc_loom)]
        loom::sync::atomic::fence(Ordering::SeqCst);
    }

    /// A release fence: orders a caller's earlier loads and stores before
    /// its later stores (the writer side of a seqlock).
    #[inline(always)]
    pub(crate) fn fence_release() {
        #[cfg(not(shmproc_loom))]
        std::sync::atomic::fence(Ordering::Release);
        #[cfg(shmproc_loom)]
        loom::sync::atomic::fence(Ordering::Release);
    }

    /// An acquire fence: orders a caller's earlier loads before its later
    /// loads and stores (the reader side of a seqlock).
    #[inline(always)]
    pub(crate) fn fence_acquire() {
        #[cfg(not(shmproc_loom))]
        std::sync::atomic::fence(Ordering::Acquire);
        #[cfg(shmproc_loom)]
        loom::sync::atomic::fence(Ordering::Acquire);
    }

    /// Between the two halves of a Dekker pair (a SeqCst store or RMW of
    /// one word, then a SeqCst load of another). In real builds the SeqCst
    /// accesses already order them (one total order), so this is nothing;
    /// loom downgrades SeqCst accesses to AcqRel but models SeqCst fences,
    /// so under loom it is a fence.
    #[inline(always)]
    pub(crate) fn dekker_fence() {
        #[cfg(shmproc_loom)]
        loom::sync::atomic::fence(Ordering::SeqCst);
    }
}

/// Spins briefly (adaptive, bounded: a few microseconds) until `ready()`,
/// before a caller sleeps on a futex: a peer on another CPU often answers
/// within a cache-line hand-off, far cheaper than a futex wake (about 20 µs
/// here). Returns whether `ready()` came true. Under loom it does not spin.
#[inline]
pub(crate) fn spin_until(mut ready: impl FnMut() -> bool) -> bool {
    #[cfg(not(shmproc_loom))]
    {
        let backoff = crossbeam_utils::Backoff::new();
        while !backoff.is_completed() {
            if ready() {
                return true;
            }
            backoff.snooze();
        }
    }
    ready()
}

/// Gives the CPU to other runnable threads up to `times` times until
/// `ready()`, before a caller sleeps on a futex: for a peer that needs the
/// caller's CPU to answer (a notifier the caller preempted on its CPU).
/// Returns whether `ready()` came true. Under loom it does not yield.
#[cfg(feature = "serde")]
#[inline]
pub(crate) fn yield_until(times: u32, mut ready: impl FnMut() -> bool) -> bool {
    #[cfg(not(shmproc_loom))]
    for _ in 0..times {
        std::thread::yield_now();
        if ready() {
            return true;
        }
    }
    #[cfg(shmproc_loom)]
    let _ = times;
    ready()
}

#[cfg(feature = "serde")]
/// Spins for at most `budget` until `ready()`, without ever yielding the
/// CPU, before a caller sleeps on a futex. Unlike [`spin_until`], which
/// ends in `sched_yield` calls, it never hands the CPU to another runnable
/// process (on a busy machine a yield can cost a whole time slice, while a
/// futex sleeper is woken with the scheduler's wake-up credit). Returns
/// whether `ready()` came true. Under loom it does not spin.
#[inline]
pub(crate) fn spin_for(budget: std::time::Duration, mut ready: impl FnMut() -> bool) -> bool {
    #[cfg(not(shmproc_loom))]
    {
        let start = std::time::Instant::now();
        loop {
            for _ in 0..8 {
                if ready() {
                    return true;
                }
                // A few pauses between looks: each look pulls the peer's
                // cache line to us, and a peer about to write it must pull
                // it back.
                for _ in 0..4 {
                    std::hint::spin_loop();
                }
            }
            if start.elapsed() >= budget {
                break;
            }
        }
    }
    #[cfg(shmproc_loom)]
    let _ = budget;
    ready()
}

#[cfg(feature = "serde")]
/// The CPU this thread runs on, plus one (0: unknown). Under loom always
/// unknown.
#[inline]
pub(crate) fn current_cpu() -> u32 {
    #[cfg(not(shmproc_loom))]
    return crate::sys::process::current_cpu();
    #[cfg(shmproc_loom)]
    0
}

/// Futex wait/wake on an [`atomic::AtomicU32`].
pub(crate) mod futex {
    use std::time::Instant;

    pub(crate) use crate::sys::futex::Wake;

    use super::atomic::AtomicU32;

    /// Sleeps while `*word == expected`, until woken or `deadline`.
    #[cfg(not(shmproc_loom))]
    #[inline]
    pub(crate) fn wait(word: &AtomicU32, expected: u32, deadline: Option<Instant>) -> Wake {
        crate::sys::futex::wait(word, expected, deadline)
    }

    /// Wakes every waiter on `word`.
    #[cfg(not(shmproc_loom))]
    #[inline]
    pub(crate) fn wake_all(word: &AtomicU32) -> usize {
        crate::sys::futex::wake_all(word)
    }

    /// Wakes at most `n` waiters on `word`.
    #[cfg(not(shmproc_loom))]
    #[inline]
    #[allow(dead_code)] // used by the sync layer
    pub(crate) fn wake(word: &AtomicU32, n: u32) -> usize {
        crate::sys::futex::wake(word, n)
    }

    #[cfg(shmproc_loom)]
    #[allow(unused_imports)] // `wake` is used by the sync layer, `sleeping` by models
    pub(crate) use emulated::{sleeping, wait, wake, wake_all};

    /// A futex emulated with a loom mutex and condition variable: the
    /// compare-and-sleep is atomic with respect to wake, as in the kernel,
    /// so a lost wake-up in an algorithm shows up as a loom deadlock.
    /// A timed wait yields and times out at once (models use timed waits
    /// only to poll for dead owners).
    #[cfg(shmproc_loom)]
    mod emulated {
        use super::{AtomicU32, Instant, Wake};
        use crate::loom::atomic::Ordering;
        use loom::sync::{Condvar, Mutex};

        struct Table {
            next_id: u64,
            waiters: Vec<(usize, u64, bool)>,
        }

        loom::lazy_static! {
            static ref TABLE: (Mutex<Table>, Condvar) =
                (Mutex::new(Table { next_id: 0, waiters: Vec::new() }), Condvar::new());
        }

        pub(crate) fn wait(word: &AtomicU32, expected: u32, deadline: Option<Instant>) -> Wake {
            if deadline.is_some() {
                // Timed waits time out at once (after a yield): models use
                // them only where an owner may have died.
                loom::thread::yield_now();
                return Wake::TimedOut;
            }
            let addr = word as *const AtomicU32 as usize;
            let (lock, cv) = &*TABLE;
            let mut t = lock.lock().expect("invariant: loom mutex not poisoned");
            // The kernel's futex_wait has a full barrier before it reads
            // the word (it pairs with the waker's).
            loom::sync::atomic::fence(Ordering::SeqCst);
            if word.load(Ordering::SeqCst) != expected {
                return Wake::Changed;
            }
            let id = t.next_id;
            t.next_id += 1;
            t.waiters.push((addr, id, false));
            loop {
                t = cv.wait(t).expect("invariant: loom mutex not poisoned");
                if let Some(i) = t.waiters.iter().position(|w| w.1 == id && w.2) {
                    t.waiters.remove(i);
                    return Wake::Woken;
                }
            }
        }

        pub(crate) fn wake(word: &AtomicU32, n: u32) -> usize {
            let addr = word as *const AtomicU32 as usize;
            let (lock, cv) = &*TABLE;
            let mut t = lock.lock().expect("invariant: loom mutex not poisoned");
            let mut woken = 0;
            for w in t.waiters.iter_mut() {
                if woken as u32 >= n {
                    break;
                }
                if w.0 == addr && !w.2 {
                    w.2 = true;
                    woken += 1;
                }
            }
            cv.notify_all();
            woken
        }

        pub(crate) fn wake_all(word: &AtomicU32) -> usize {
            wake(word, u32::MAX)
        }

        /// Waiters asleep on `word` and not yet woken (for models that set
        /// up sleepers before the part they check).
        pub(crate) fn sleeping(word: &AtomicU32) -> usize {
            let addr = word as *const AtomicU32 as usize;
            let t = TABLE.0.lock().expect("invariant: loom mutex not poisoned");
            t.waiters.iter().filter(|w| w.0 == addr && !w.2).count()
        }
    }
}

/// Who owns a lock, and whether that owner is dead: the liveness tokens
/// normally; under loom, loom threads and a set of "killed" owners that a
/// model fills to simulate a death.
pub(crate) mod owner {
    use std::time::Duration;

    /// How long a waiter sleeps before it checks whether the owner died
    /// (doubling up to `LIVENESS_MAX`), or `None` under loom without
    /// simulated deaths (so a lost wake-up shows as a deadlock).
    pub(crate) const LIVENESS_MIN: Duration = Duration::from_millis(2);
    /// The longest sleep between two liveness checks.
    pub(crate) const LIVENESS_MAX: Duration = Duration::from_millis(25);

    /// When a waiter should next wake to check for a dead owner: the
    /// interval starts at [`LIVENESS_MIN`] and doubles up to
    /// [`LIVENESS_MAX`] after each check that found the owner alive.
    #[derive(Debug)]
    pub(crate) struct LivenessPoll {
        interval: Duration,
    }

    impl LivenessPoll {
        pub(crate) fn new() -> LivenessPoll {
            LivenessPoll { interval: LIVENESS_MIN }
        }

        /// A poll that starts at [`LIVENESS_MAX`]: for waits whose first
        /// wake-up usually comes from a peer after an idle gap (a channel's
        /// receive). A short timer there is most often the CPU's next timer
        /// event, and cancelling it when the peer's wake-up comes first
        /// reprograms the timer hardware on the wake-up path (a VM exit in a
        /// guest: about 10 us per round trip on a Firecracker guest,
        /// 2026-12-07); one due after the next scheduler tick is cancelled
        /// without that. A peer that died before the sleep is found by the
        /// probe a pipe or typed channel runs before it sleeps; one that
        /// dies during it, within this interval.
        #[cfg(feature = "serde")] // the channels' waits
        pub(crate) fn patient() -> LivenessPoll {
            LivenessPoll { interval: LIVENESS_MAX }
        }

        /// The wake-up time for a sleep starting `now`: the earlier of the
        /// caller's `deadline` and the next liveness check (no check when
        /// liveness is not polled, as in loom models without deaths).
        pub(crate) fn wake_at(
            &self,
            now: std::time::Instant,
            deadline: Option<std::time::Instant>,
        ) -> Option<std::time::Instant> {
            let check = checks_liveness().then(|| now + self.interval);
            match (deadline, check) {
                (Some(d), Some(c)) => Some(d.min(c)),
                (d, c) => d.or(c),
            }
        }

        /// Called after a check found the owner alive.
        pub(crate) fn slower(&mut self) {
            self.interval = (self.interval * 2).min(LIVENESS_MAX);
        }
    }

    #[cfg(not(shmproc_loom))]
    pub(crate) use crate::owner::token::{me, note_acquired, note_released, owner_dead, process_me, role_epoch};

    /// Whether waits check for dead owners.
    #[cfg(not(shmproc_loom))]
    pub(crate) fn checks_liveness() -> bool {
        true
    }

    #[cfg(shmproc_loom)]
    pub(crate) use model::{
        checks_liveness, kill, me, note_acquired, note_released, owner_dead, process_me, reuse_tag, role_epoch,
        simulate_deaths,
    };

    #[cfg(shmproc_loom)]
    mod model {
        use loom::sync::Mutex;
        use std::cell::Cell;

        use crate::owner::id;
        use crate::owner::token::{TokenState, judge};

        /// One simulated token file: the tag, the nonce of the "process"
        /// that holds it, and whether that process is alive.
        struct File {
            tag: u32,
            nonce: u64,
            alive: bool,
        }

        loom::lazy_static! {
            static ref FILES: Mutex<Vec<File>> = Mutex::new(Vec::new());
            static ref NEXT: Mutex<u32> = Mutex::new(1);
            static ref DEATHS: Mutex<bool> = Mutex::new(false);
        }
        loom::thread_local! {
            static ID: Cell<(u32, u64)> = Cell::new((0, 0));
        }

        /// Each loom thread plays a process of its own: a new tag `n`,
        /// slot 1, nonce `n` (unless it took a dead tag with [`reuse_tag`]).
        pub(crate) fn me() -> std::io::Result<(u32, u64)> {
            let me = ID.with(|c| {
                if c.get().0 == 0 {
                    let mut n = NEXT.lock().expect("loom");
                    let tag = *n;
                    *n += 1;
                    FILES.lock().expect("loom").push(File { tag, nonce: u64::from(tag), alive: true });
                    c.set((id::compose(tag, 1), u64::from(tag)));
                }
                c.get()
            });
            Ok(me)
        }

        /// The calling thread's "process" id (slot bits 0) and nonce.
        #[allow(dead_code)] // used by the ring roles
        pub(crate) fn process_me() -> std::io::Result<(u32, u64)> {
            let (id, nonce) = me()?;
            Ok((id::process_of(id), nonce))
        }

        /// Models never fork.
        #[allow(dead_code)] // used by the ring roles
        pub(crate) fn role_epoch() -> u32 {
            1
        }

        /// Marks the calling thread's "process" dead (a model's "SIGKILL").
        pub(crate) fn kill() {
            let (id, nonce) = me().expect("loom");
            let tag = id::tag_of(id);
            for f in FILES.lock().expect("loom").iter_mut() {
                if f.tag == tag && f.nonce == nonce {
                    f.alive = false;
                }
            }
        }

        /// The calling thread becomes a new process that got the tag of
        /// `dead_id`'s process, after that one died and its token file was
        /// removed: same tag, another nonce. Call before the thread's first
        /// lock.
        #[allow(dead_code)] // used by the tag-reuse model
        pub(crate) fn reuse_tag(dead_id: u32) {
            let tag = id::tag_of(dead_id);
            // NEXT before FILES, as in `me` (one lock order).
            let nonce = u64::from(tag) | (u64::from(*NEXT.lock().expect("loom")) << 32);
            let mut files = FILES.lock().expect("loom");
            assert!(files.iter().all(|f| f.tag != tag || !f.alive), "a tag is reused only after its holder died");
            files.push(File { tag, nonce, alive: true });
            ID.with(|c| c.set((id::compose(tag, 1), nonce)));
        }

        /// The real judgement ([`judge`]) over the simulated token files.
        pub(crate) fn owner_dead(id: u32, nonce: u64) -> bool {
            let tag = id::tag_of(id);
            let files = FILES.lock().expect("loom");
            let token = match files.iter().rev().find(|f| f.tag == tag && f.alive) {
                Some(f) => TokenState::Alive { nonce: f.nonce, slot_dead: false },
                None => TokenState::Dead,
            };
            judge(id, nonce, token)
        }

        /// Makes waits poll for dead owners (timed waits time out at once
        /// under loom); call first in a model where an owner dies.
        pub(crate) fn simulate_deaths() {
            *DEATHS.lock().expect("loom") = true;
        }

        pub(crate) fn checks_liveness() -> bool {
            *DEATHS.lock().expect("loom")
        }

        pub(crate) fn note_acquired() {}
        pub(crate) fn note_released() {}
    }
}
