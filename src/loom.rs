//! The one facade for atomics and futex waiting used by shmproc's
//! algorithms: std and the real futex normally, loom and an emulated futex
//! under `--cfg shmproc_loom`, so that model checking runs the same code.

/// Atomics: `std::sync::atomic`, or loom's under `cfg(shmproc_loom)`.
pub(crate) mod atomic {
    #[cfg(not(shmproc_loom))]
    pub(crate) use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

    #[cfg(shmproc_loom)]
    pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering};
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
    #[allow(unused_imports)] // `wake` is used by the sync layer
    pub(crate) use emulated::{wait, wake, wake_all};

    /// A futex emulated with a loom mutex and condition variable: the
    /// compare-and-sleep is atomic with respect to wake, as in the kernel,
    /// so a lost wake-up in an algorithm shows up as a loom deadlock.
    /// Deadlines are ignored (a model must not rely on timing out).
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

        pub(crate) fn wait(word: &AtomicU32, expected: u32, _deadline: Option<Instant>) -> Wake {
            let addr = word as *const AtomicU32 as usize;
            let (lock, cv) = &*TABLE;
            let mut t = lock.lock().expect("invariant: loom mutex not poisoned");
            if word.load(Ordering::SeqCst) != expected {
                return Wake::Woken;
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
    }
}
