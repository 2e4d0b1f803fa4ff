//! The loader hook: code that runs before `main` in every binary that links
//! shmproc, so that a re-executed child (spawn start method) or the fork
//! server takes its role even in binaries whose `main` is not ours (test
//! harnesses, examples without `shmproc::init()`).
//!
//! It reads (and, while the process has one thread, removes) two
//! environment variables; when neither is set (every ordinary start) it
//! returns at once. The hook is registered here, in the process layer that
//! it serves, so the system-call layer below never calls up.
#![allow(unsafe_code)] // the `.init_array` entry: a link-section attribute, no unsafe operation

/// The variable that tells a re-executed child where its task is.
pub(crate) const CHILD_VAR: &str = "SHMPROC_CHILD";
/// The variable that tells a re-executed process to be the fork server.
pub(crate) const SERVER_VAR: &str = "SHMPROC_FORKSERVER";

// Loader contract: `.init_array` entries are called by the dynamic loader (or the C
// runtime for static binaries) once, before `main`, with the usual C ABI and
// no arguments used; `on_load` is a valid `extern "C" fn()`.
#[used]
#[unsafe(link_section = ".init_array")]
static ON_LOAD: extern "C" fn() = on_load;

extern "C" fn on_load() {
    let child = take_env(CHILD_VAR);
    let server = take_env(SERVER_VAR);
    if child.is_some() || server.is_some() {
        super::bootstrap::on_load(child, server);
    }
}

/// The variable's value, removed from the environment (so that it does not
/// leak to the task's own children) when that is sound: only while this
/// process has one thread. Another constructor that ran before ours may
/// have started a thread; then the variable stays, and shmproc's own starts
/// set or remove both variables for each child they make explicitly.
fn take_env(key: &str) -> Option<String> {
    let value = std::env::var(key).ok()?;
    crate::sys::process::remove_env_if_single_threaded(key);
    Some(value)
}

/// Keeps the hook in the final binary: the linker may drop an unreferenced
/// object file of an rlib, and with it the `.init_array` entry. Every path
/// that starts a re-executed child calls this.
#[inline(never)]
pub(crate) fn keep_linked() {
    std::hint::black_box(&ON_LOAD);
}
