//! SIGINT: the interrupt hook that pools install while they exist, and the
//! disposition of pool workers (ignore).
//!
//! While at least one [`SigintHook`] is alive, SIGINT runs [`on_sigint`]:
//! - if some thread is inside an interruptible pool wait (an
//!   [`InterruptibleWait`] is alive), it bumps the interrupt generation (a
//!   futex word, woken) and returns: the pools see the new generation,
//!   terminate their workers and fail their waits with `Interrupted`;
//! - otherwise, if the previous disposition was the default, it restores
//!   the default and raises SIGINT again, so the program ends exactly as
//!   it would have without pools (the signal is blocked while the handler
//!   runs, so the re-raised one is delivered when it returns);
//! - a previous handler function is always called too (chained), so a
//!   program's own Ctrl-C handler keeps working.
//!
//! When the last hook is dropped the previous disposition is put back (if
//! ours is still the installed one). A previous disposition of "ignore"
//! is respected: nothing is installed, and SIGINT stays ignored.
//!
//! The handler touches only atomics and makes only async-signal-safe
//! system calls (`futex`, `sigaction`, `raise`), and saves and restores
//! `errno`.
//!
//! # References
//! - [sigaction(2)](https://man7.org/linux/man-pages/man2/sigaction.2.html)
//! - [signal-safety(7)](https://man7.org/linux/man-pages/man7/signal-safety.7.html)
//! - [raise(3)](https://man7.org/linux/man-pages/man3/raise.3.html)

use std::io;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering};

use parking_lot::Mutex;

/// Bumped by the handler for every SIGINT that interrupted a pool wait;
/// a futex word (woken by the handler).
static GENERATION: AtomicU32 = AtomicU32::new(0);
/// How many threads are inside an interruptible pool wait.
static WAITING: AtomicUsize = AtomicUsize::new(0);
/// The disposition installed before ours, as the handler needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Prev {
    /// Its `sa_sigaction` value (`SIG_DFL` = 0, `SIG_IGN` = 1, else a
    /// function).
    action: usize,
    /// Whether its `sa_flags` had `SA_SIGINFO` (the three-argument form).
    siginfo: bool,
}

/// What the handler chains to: null for `SIG_DFL`, else a `Prev` that is
/// never freed nor changed. One atomic load gives the handler the action
/// and its flags together, even while another thread installs the hook
/// anew (two separate words could pair one disposition's function with
/// another's flags).
static PREV: AtomicPtr<Prev> = AtomicPtr::new(std::ptr::null_mut());

/// Installed hooks: their count and the disposition to restore.
struct Installed {
    users: usize,
    /// `None` if nothing was installed (SIGINT was ignored).
    prev: Option<libc::sigaction>,
    /// Every `Prev` published so far (leaked: a handler may still read an
    /// old one), reused when the same disposition comes back.
    published: Vec<&'static Prev>,
}

static INSTALLED: Mutex<Installed> = Mutex::new(Installed { users: 0, prev: None, published: Vec::new() });

/// The interrupt generation now (compare with an earlier reading).
pub(crate) fn interrupts() -> u32 {
    // SeqCst: pairs with the handler's SeqCst increment.
    GENERATION.load(Ordering::SeqCst)
}

/// Counts the calling thread as waiting on a pool while it lives: a SIGINT
/// then interrupts the pools instead of ending the program.
#[derive(Debug)]
pub(crate) struct InterruptibleWait(());

impl InterruptibleWait {
    /// Starts an interruptible wait.
    pub(crate) fn new() -> InterruptibleWait {
        WAITING.fetch_add(1, Ordering::SeqCst);
        InterruptibleWait(())
    }
}

impl Drop for InterruptibleWait {
    fn drop(&mut self) {
        WAITING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Keeps the SIGINT hook installed while it lives (see the module docs).
#[derive(Debug)]
pub(crate) struct SigintHook(());

/// `sigaction(SIGINT, new)`, returning the old disposition.
fn swap_action(new: Option<&libc::sigaction>) -> io::Result<libc::sigaction> {
    // SAFETY: an all-zero `struct sigaction` is a valid value (SIG_DFL, empty mask, no flags).
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    let new_ptr = new.map_or(std::ptr::null(), |n| n as *const libc::sigaction);
    // SAFETY: `new_ptr` is null or points to a fully initialised sigaction that outlives the call; `old` is a
    // valid, exclusively borrowed sigaction the kernel writes into.
    if unsafe { libc::sigaction(libc::SIGINT, new_ptr, &mut old) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(old)
}

fn our_action() -> libc::sigaction {
    // SAFETY: an all-zero `struct sigaction` is a valid value; the fields are set below.
    let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
    act.sa_sigaction = on_sigint as extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) as usize;
    act.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
    act
}

impl SigintHook {
    /// Installs the hook, or counts one more user of it.
    ///
    /// # Errors
    /// What `sigaction` says.
    pub(crate) fn acquire() -> io::Result<SigintHook> {
        let mut g = INSTALLED.lock();
        if g.users == 0 {
            let current = swap_action(None)?;
            if current.sa_sigaction == libc::SIG_IGN {
                g.prev = None;
            } else {
                let prev = Prev { action: current.sa_sigaction, siginfo: current.sa_flags & libc::SA_SIGINFO != 0 };
                let published = match g.published.iter().find(|p| ***p == prev) {
                    Some(p) => *p,
                    None => {
                        let p: &'static Prev = Box::leak(Box::new(prev));
                        g.published.push(p);
                        p
                    }
                };
                PREV.store(std::ptr::from_ref(published).cast_mut(), Ordering::SeqCst);
                swap_action(Some(&our_action()))?;
                g.prev = Some(current);
            }
        }
        g.users += 1;
        Ok(SigintHook(()))
    }
}

impl Drop for SigintHook {
    fn drop(&mut self) {
        let mut g = INSTALLED.lock();
        g.users -= 1;
        if g.users == 0
            && let Some(prev) = g.prev.take()
        {
            // Put the previous disposition back only if ours is still the
            // installed one (the program may have installed its own since).
            if let Ok(current) = swap_action(Some(&prev))
                && current.sa_sigaction != our_action().sa_sigaction
            {
                // Not ours: give the program its disposition back. An
                // error here leaves a disposition the program chose.
                let _ = swap_action(Some(&current));
            }
        }
    }
}

/// Ignores SIGINT in this process (pool workers: a Ctrl-C to the process
/// group is the parent's to handle; it terminates the workers itself).
///
/// # Errors
/// What `sigaction` says.
pub(crate) fn ignore_sigint() -> io::Result<()> {
    // SAFETY: an all-zero `struct sigaction` is a valid value; the handler is set to SIG_IGN below.
    let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
    act.sa_sigaction = libc::SIG_IGN;
    swap_action(Some(&act)).map(drop)
}

/// The SIGINT handler (see the module docs). Async-signal-safe.
extern "C" fn on_sigint(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: no preconditions; returns the calling thread's errno slot, valid for the thread's life.
    let slot = unsafe { libc::__errno_location() };
    // SAFETY: `slot` is this thread's errno, valid and aligned.
    let errno = unsafe { *slot };
    let published = PREV.load(Ordering::SeqCst);
    let prev = if published.is_null() {
        Prev { action: libc::SIG_DFL, siginfo: false }
    } else {
        // SAFETY: a non-null PREV points to a `Prev` leaked in `acquire`: never freed, never written after it was
        // published (SeqCst store after the write), so reading it here, even in a signal handler, is sound.
        unsafe { *published }
    };
    if WAITING.load(Ordering::SeqCst) > 0 {
        GENERATION.fetch_add(1, Ordering::SeqCst);
        super::futex::wake_all(&GENERATION);
    } else if prev.action == libc::SIG_DFL {
        // Nobody waits on a pool: behave as if we were not installed.
        // SAFETY: an all-zero `struct sigaction` is SIG_DFL with an empty mask and no flags.
        let dfl: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: `dfl` is a valid sigaction; sigaction is async-signal-safe.
        unsafe { libc::sigaction(libc::SIGINT, &dfl, std::ptr::null_mut()) };
        // SAFETY: raise is async-signal-safe; SIGINT is blocked while this handler runs, so it is delivered (with
        // the default action) when the handler returns.
        unsafe { libc::raise(libc::SIGINT) };
    }
    if prev.action != libc::SIG_DFL && prev.action != libc::SIG_IGN {
        if prev.siginfo {
            type Handler = extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void);
            // SAFETY: `prev` is the sa_sigaction of the disposition installed before ours, with SA_SIGINFO: a
            // function of this signature that stays valid (handlers are static functions); we pass our own arguments.
            let f: Handler = unsafe { std::mem::transmute::<usize, Handler>(prev.action) };
            f(sig, info, ctx);
        } else {
            // SAFETY: as above, without SA_SIGINFO: a one-argument handler.
            let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute::<usize, _>(prev.action) };
            f(sig);
        }
    }
    // SAFETY: as above: the calling thread's errno slot.
    unsafe { *slot = errno };
}

#[cfg(test)]
mod tests {
    use super::*;

    static CHAINED: AtomicU32 = AtomicU32::new(0);

    extern "C" fn counting(_: libc::c_int) {
        CHAINED.fetch_add(1, Ordering::SeqCst);
    }

    /// One test (the disposition is process-wide): hooks nest, a SIGINT
    /// during a wait bumps the generation and reaches a chained handler,
    /// and the program's own handler comes back when the last hook goes.
    #[test]
    fn hooks_nest_chain_and_restore() {
        // SAFETY: an all-zero sigaction is valid; the handler is set below.
        let mut mine: libc::sigaction = unsafe { std::mem::zeroed() };
        mine.sa_sigaction = counting as extern "C" fn(libc::c_int) as usize;
        let before = swap_action(Some(&mine)).expect("install a program handler");
        let a = SigintHook::acquire().expect("install");
        let b = SigintHook::acquire().expect("count");
        drop(a);
        let first = interrupts();
        {
            let _w = InterruptibleWait::new();
            // SAFETY: raise has no preconditions; our handler swallows the signal (a wait is in progress).
            unsafe { libc::raise(libc::SIGINT) };
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while interrupts() == first || CHAINED.load(Ordering::SeqCst) == 0 {
                assert!(std::time::Instant::now() < deadline, "the handler did not run");
                std::thread::yield_now();
            }
        }
        drop(b);
        let now = swap_action(Some(&before)).expect("restore");
        assert_eq!(now.sa_sigaction, mine.sa_sigaction, "the program's handler is back");
    }
}
