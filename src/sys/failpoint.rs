//! Named kill points for crash tests.
//!
//! A test sets `SHMPROC_FAILPOINT=<name>` in a child's environment; when the
//! child passes that point it sends itself SIGKILL, so its death lands
//! exactly in the window under test. The variable is read once; after that
//! a disarmed point costs one relaxed load, so points may sit on hot paths
//! (inside `lock` and `unlock`).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

use rustix::process::{Signal, getpid, kill_process};

const UNKNOWN: u8 = 0;
const DISARMED: u8 = 1;
const ARMED: u8 = 2;

static STATE: AtomicU8 = AtomicU8::new(UNKNOWN);
static NAME: OnceLock<Option<String>> = OnceLock::new();

/// Kills this process with SIGKILL if the failpoint `name` is armed.
#[inline(always)]
pub(crate) fn hit(name: &'static str) {
    // Relaxed: a cache of an environment variable that never changes.
    if STATE.load(Ordering::Relaxed) != DISARMED {
        hit_slow(name);
    }
}

#[cold]
#[inline(never)]
fn hit_slow(name: &'static str) {
    let armed = NAME.get_or_init(|| std::env::var("SHMPROC_FAILPOINT").ok());
    STATE.store(if armed.is_some() { ARMED } else { DISARMED }, Ordering::Relaxed);
    if armed.as_deref() == Some(name) {
        // Async-signal-safe: only kill(2).
        let _ = kill_process(getpid(), Signal::KILL);
        // SIGKILL cannot be caught; we never get here.
        std::process::abort();
    }
}
