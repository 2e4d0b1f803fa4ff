//! Named kill points for crash tests.
//!
//! A test sets `SHMPROC_FAILPOINT=<name>` in a child's environment; when the
//! child passes that point it sends itself SIGKILL, so its death lands
//! exactly in the window under test. The variable is read once; on the cold
//! paths that call [`hit`] the cost is one relaxed load.

use std::sync::OnceLock;

use rustix::process::{Signal, getpid, kill_process};

static ARMED: OnceLock<Option<String>> = OnceLock::new();

/// Kills this process with SIGKILL if the failpoint `name` is armed.
#[inline]
pub(crate) fn hit(name: &'static str) {
    let armed = ARMED.get_or_init(|| std::env::var("SHMPROC_FAILPOINT").ok());
    if armed.as_deref() == Some(name) {
        // Async-signal-safe: only kill(2).
        let _ = kill_process(getpid(), Signal::KILL);
        // SIGKILL cannot be caught; we never get here.
        std::process::abort();
    }
}
