//! Named kill points for crash tests.
//!
//! A test sets `SHMPROC_FAILPOINT=<name>` in a child's environment; when the
//! child passes that point it sends itself SIGKILL, so its death lands
//! exactly in the window under test. `SHMPROC_FAILPOINT=<name>@<n>` fires on
//! the `n`-th pass instead of the first, so a process can work normally for
//! a while and die mid-stream. The variable is read once; after that a
//! disarmed point costs one relaxed load, so points may sit on hot paths
//! (inside `lock` and `unlock`).
//!
//! Only a build with the `failpoints` feature has them (the crate's own
//! tests turn it on); elsewhere [`hit`] is an empty function.

#[cfg(not(feature = "failpoints"))]
/// A failpoint: nothing in a build without the `failpoints` feature.
#[inline(always)]
pub(crate) fn hit(_name: &'static str) {}

#[cfg(feature = "failpoints")]
pub(crate) use armed::hit;

#[cfg(feature = "failpoints")]
mod armed {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

    use rustix::process::{Signal, getpid, kill_process};

    const UNKNOWN: u8 = 0;
    const DISARMED: u8 = 1;
    const ARMED: u8 = 2;

    static STATE: AtomicU8 = AtomicU8::new(UNKNOWN);
    /// The armed point's name and the pass (1-based) on which it fires.
    static ARMED_AT: OnceLock<Option<(String, u64)>> = OnceLock::new();
    /// Passes of the armed point so far.
    static PASSES: AtomicU64 = AtomicU64::new(0);

    /// Kills this process with SIGKILL if the failpoint `name` is armed (and
    /// this is the pass it was armed for).
    #[inline(always)]
    pub(crate) fn hit(name: &'static str) {
        // Relaxed: a cache of an environment variable that never changes.
        if STATE.load(Ordering::Relaxed) != DISARMED {
            hit_slow(name);
        }
    }

    /// `<name>` or `<name>@<n>` (n >= 1); anything else after `@` is part of
    /// the name, which then matches no point.
    pub(super) fn parse(spec: &str) -> (String, u64) {
        match spec.rsplit_once('@') {
            Some((name, n)) => match n.parse::<u64>() {
                Ok(n) if n >= 1 => (name.to_owned(), n),
                _ => (spec.to_owned(), 1),
            },
            None => (spec.to_owned(), 1),
        }
    }

    #[cold]
    #[inline(never)]
    fn hit_slow(name: &'static str) {
        let armed = ARMED_AT.get_or_init(|| std::env::var("SHMPROC_FAILPOINT").ok().map(|s| parse(&s)));
        STATE.store(if armed.is_some() { ARMED } else { DISARMED }, Ordering::Relaxed);
        if let Some((armed_name, at)) = armed
        && armed_name == name
        // Relaxed: a counter; the pass that reaches `at` is the one killed.
        && PASSES.fetch_add(1, Ordering::Relaxed) + 1 == *at
        {
            // Async-signal-safe: only kill(2).
            let _ = kill_process(getpid(), Signal::KILL);
            // SIGKILL cannot be caught; we never get here.
            std::process::abort();
        }
    }
}

#[cfg(all(test, feature = "failpoints", not(shmproc_loom)))]
mod tests {
    use super::armed::parse;

    #[test]
    fn specs_parse() {
        assert_eq!(parse("mutex.lock.before_cas"), ("mutex.lock.before_cas".to_owned(), 1));
        assert_eq!(parse("mpmc.push.after_claim@37"), ("mpmc.push.after_claim".to_owned(), 37));
        assert_eq!(parse("a@0"), ("a@0".to_owned(), 1));
        assert_eq!(parse("a@x"), ("a@x".to_owned(), 1));
    }
}
