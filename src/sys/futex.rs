//! Futex wait and wake on words in shared memory.
//!
//! Always the shared form: `FUTEX_PRIVATE_FLAG` keys the wait queue by the
//! virtual address in one process, and a segment is mapped at different
//! addresses in different processes. Deadlines are absolute
//! `CLOCK_MONOTONIC` times (`FUTEX_WAIT_BITSET`), so a wait interrupted by a
//! signal resumes without stretching its deadline.
//!
//! # References
//! - [futex(2)](https://man7.org/linux/man-pages/man2/futex.2.html)

use std::num::NonZeroU32;
use std::sync::atomic::AtomicU32;
use std::time::Instant;

use rustix::io::Errno;
use rustix::thread::futex;
use rustix::time::{ClockId, Timespec, clock_gettime};

/// Why a wait returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Woken by a wake call (or, rarely, spuriously): the caller re-reads
    /// the word.
    Woken,
    /// The word no longer held the expected value: the wait never slept.
    Changed,
    /// The deadline passed.
    TimedOut,
}

/// Converts a deadline on `Instant`'s clock into an absolute
/// `CLOCK_MONOTONIC` timespec (on Linux `Instant` is `CLOCK_MONOTONIC`, but
/// std does not expose its raw value, so we add the remaining time to a fresh
/// reading).
fn absolute(deadline: Instant) -> Timespec {
    let remaining = deadline.saturating_duration_since(Instant::now());
    let now = clock_gettime(ClockId::Monotonic);
    let mut secs = now.tv_sec.saturating_add(remaining.as_secs() as i64);
    let mut nanos = now.tv_nsec + i64::from(remaining.subsec_nanos());
    if nanos >= 1_000_000_000 {
        nanos -= 1_000_000_000;
        secs = secs.saturating_add(1);
    }
    Timespec { tv_sec: secs, tv_nsec: nanos }
}

/// Sleeps while `*word == expected`, until woken or `deadline`.
///
/// `FUTEX_WAIT_BITSET` with `FUTEX_BITSET_MATCH_ANY`: the timeout is absolute
/// on `CLOCK_MONOTONIC`. `EINTR` is retried against the same deadline.
///
/// # References
/// - [futex(2)](https://man7.org/linux/man-pages/man2/futex.2.html), `FUTEX_WAIT_BITSET`
pub(crate) fn wait(word: &AtomicU32, expected: u32, deadline: Option<Instant>) -> Wake {
    let ts = deadline.map(absolute);
    loop {
        match futex::wait_bitset(word, futex::Flags::empty(), expected, ts.as_ref(), NonZeroU32::MAX) {
            Ok(()) => return Wake::Woken,
            Err(Errno::AGAIN) => return Wake::Changed,
            Err(Errno::INTR) => continue,
            Err(Errno::TIMEDOUT) => return Wake::TimedOut,
            // EFAULT cannot happen for a reference; anything else is treated
            // as a spurious return: callers re-check their condition.
            Err(_) => return Wake::Changed,
        }
    }
}

/// Wakes at most `n` waiters on `word`; returns how many were woken.
///
/// # References
/// - [futex(2)](https://man7.org/linux/man-pages/man2/futex.2.html), `FUTEX_WAKE`
pub(crate) fn wake(word: &AtomicU32, n: u32) -> usize {
    // FUTEX_WAKE reads the count as a C int: u32::MAX would be -1 (wake one).
    futex::wake(word, futex::Flags::empty(), n.min(i32::MAX as u32)).unwrap_or(0)
}

/// Wakes every waiter on `word`.
pub(crate) fn wake_all(word: &AtomicU32) -> usize {
    wake(word, i32::MAX as u32)
}

/// Sleeps until one of `words` no longer holds its expected value, a wake
/// call on one of them, or `deadline`: `Ok(i)` if a wake call woke the
/// caller on `words[i]`. Shared (not private) 32-bit futexes; `deadline`
/// is absolute on `CLOCK_MONOTONIC`. At most 128 words.
///
/// # Errors
/// `AGAIN`: a word did not hold its value (nothing slept); `TIMEDOUT`;
/// `INTR`; `NOSYS` before Linux 5.16; `INVAL` for more than 128 words.
///
/// # References
/// - [futex2](https://www.kernel.org/doc/html/latest/userspace-api/futex2.html), `futex_waitv`
#[cfg(feature = "async")]
pub(crate) fn waitv(words: &[(&AtomicU32, u32)], deadline: Option<Instant>) -> Result<usize, Errno> {
    let waits: Vec<futex::Wait> = words
        .iter()
        .map(|&(word, expected)| {
            let mut w = futex::Wait::new();
            w.val = u64::from(expected);
            w.uaddr = futex::WaitPtr::new(word.as_ptr().cast());
            w.flags = futex::WaitFlags::SIZE_U32;
            w
        })
        .collect();
    let ts = deadline.map(absolute);
    futex::waitv(&waits, futex::WaitvFlags::empty(), ts.as_ref(), ClockId::Monotonic)
}
