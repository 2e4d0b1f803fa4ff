//! The waiting service: turns "this futex word changed" and "this
//! descriptor became readable" into [`Waker`] wake-ups, for the async
//! twins of the blocking calls and for `connection::wait`.
//!
//! A blocking call sleeps in the kernel on its object's futex word. An
//! async call cannot: its thread belongs to an executor. So it takes the
//! same steps up to the sleep (announce itself on the word, look once
//! more), then hands the word, the value it saw and its `Waker` to this
//! service and returns `Pending`. The service is a few threads per
//! process, started on first use:
//!
//! - futex threads ("shards"), each sleeping in one `futex_waitv` call on
//!   up to [`WORDS_PER_SHARD`] watched words plus a private control word
//!   (`futex_waitv` takes at most 128 words). A shard is started for each
//!   further 127 distinct words; one that watches nothing sleeps on its
//!   control word alone;
//! - one descriptor thread, started when a descriptor is first watched
//!   (a process's pidfd: readable once it exits), sleeping in `poll` on
//!   the watched descriptors plus an eventfd.
//!
//! A registration ([`Ticket`]) names its word and the value its caller
//! saw, or its descriptor, and a deadline (the caller's own, or the
//! liveness interval at which it asks whether its peers are alive). The
//! service fires it once: [`Wake::Woken`] when a wake call woke the
//! service on that word (or the descriptor became ready), `Changed` when
//! the word was seen to differ from the value the ticket saw, `TimedOut`
//! at the deadline; firing wakes the ticket's latest `Waker`. Every ticket
//! of a word fires together: the service cannot tell a wake-up meant for
//! one waiter from one meant for all, and waking more is always safe
//! (each caller looks at its condition again); see `channel/lane_async.rs`
//! for how a woken caller that is dropped before it looks passes its
//! wake-up on. Nothing here spins or polls: a process whose tasks await
//! an idle queue has its service threads asleep in the kernel.
//!
//! Each watched word's owner (an [`AsyncWord`]) keeps the memory of the
//! word mapped while the service may wait on it, and is told when a wake
//! call on the word woke the service, so it can count the wake-up as
//! arrived (the eventcount's `coming`).
//!
//! The service threads make the process multithreaded, so after the
//! first async wait `StartMethod::Fork` is refused, as with any thread.
//! A forked child (through the unsafe opt-in that forks anyway) starts a
//! service of its own on first use and never touches the parent's.
//!
//! Linux 5.16 or later is needed for `futex_waitv`; on an older kernel an
//! async wait on a futex word ends with an OS error naming `futex_waitv`
//! (`ENOSYS`). (The plan for such kernels, not built: one thread per
//! watched word in `FUTEX_WAIT`, interrupted by a wake on the word itself.)

// Without `serde` only the synchronisation objects' twins use the
// service: the descriptor thread, deadline timers, the liveness hand-over
// and `block_on` serve processes, channels and `connection::wait`.
#![cfg_attr(not(feature = "serde"), allow(dead_code, unused_imports))]

mod park;
mod shard;

use std::io;
use std::os::fd::BorrowedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};
use std::task::Waker;
use std::time::Instant;

use parking_lot::Mutex;

pub(crate) use crate::sys::futex::Wake;
pub(crate) use park::block_on;
use shard::{FdShard, WordShard};

/// The watched words of one futex thread (the 128 of `futex_waitv` less
/// the control word).
pub(crate) const WORDS_PER_SHARD: usize = 127;

/// A futex word the service may wait on, with what keeps it valid.
pub(crate) trait AsyncWord: Send + Sync + 'static {
    /// The word. Its memory must stay mapped as long as `self` lives.
    fn word(&self) -> &AtomicU32;
    /// A wake call on the word woke the service (a notifier counted one
    /// waiter woken): called once for each such wake-up.
    fn woken(&self) {}
}

impl std::fmt::Debug for dyn AsyncWord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncWord").field("at", &self.word().as_ptr()).finish()
    }
}

/// A word of a synchronisation object's shared state (`Home<S>` keeps its
/// mapping): `word` picks it out of the state.
pub(crate) struct HomeWord<S: crate::shm::layout::ShmSafe> {
    home: crate::shm::typed::Home<S>,
    word: fn(&S) -> &AtomicU32,
}

impl<S: crate::shm::layout::ShmSafe> HomeWord<S> {
    /// The word `word` picks out of `home`'s state, as the service sees it.
    pub(crate) fn shared(home: &crate::shm::typed::Home<S>, word: fn(&S) -> &AtomicU32) -> Arc<dyn AsyncWord>
    where
        crate::shm::typed::Home<S>: Send + Sync + 'static,
    {
        Arc::new(HomeWord { home: home.clone(), word })
    }
}

impl<S: crate::shm::layout::ShmSafe> AsyncWord for HomeWord<S>
where
    crate::shm::typed::Home<S>: Send + Sync + 'static,
{
    fn word(&self) -> &AtomicU32 {
        (self.word)(&self.home)
    }
}

/// A descriptor the service may wait on, readable when it is ready (a
/// pidfd once its process exited).
pub(crate) trait AsyncFd: Send + Sync + 'static {
    /// The descriptor. It must stay open as long as `self` lives.
    fn fd(&self) -> BorrowedFd<'_>;
}

const PENDING: u8 = 0;
const WOKEN: u8 = 1;
const CHANGED: u8 = 2;
const TIMED_OUT: u8 = 3;

/// One registration's state, shared by its [`Ticket`] and the service.
#[derive(Debug)]
pub(crate) struct Entry {
    id: u64,
    deadline: Option<Instant>,
    state: AtomicU8,
    waker: Mutex<Option<Waker>>,
}

impl Entry {
    fn new(id: u64, deadline: Option<Instant>, waker: &Waker) -> Arc<Entry> {
        Arc::new(Entry { id, deadline, state: AtomicU8::new(PENDING), waker: Mutex::new(Some(waker.clone())) })
    }

    /// Fires the entry once (later calls do nothing): the waker to wake,
    /// which the caller wakes after it let go of its own locks (a waker
    /// may run code of the executor's).
    fn fire(&self, how: Wake) -> Option<Waker> {
        let code = match how {
            Wake::Woken => WOKEN,
            Wake::Changed => CHANGED,
            Wake::TimedOut => TIMED_OUT,
        };
        // AcqRel: the ticket's reader sees everything the firing thread
        // saw (the changed word) once it sees the state.
        self.state.compare_exchange(PENDING, code, Ordering::AcqRel, Ordering::Acquire).ok()?;
        self.waker.lock().take()
    }

    fn fired(&self) -> Option<Wake> {
        match self.state.load(Ordering::Acquire) {
            WOKEN => Some(Wake::Woken),
            CHANGED => Some(Wake::Changed),
            TIMED_OUT => Some(Wake::TimedOut),
            _ => None,
        }
    }
}

/// Wakes what firing returned, outside every lock of the service.
fn wake_all(wakers: Vec<Waker>) {
    for w in wakers {
        w.wake();
    }
}

/// Which thread a ticket is registered with.
#[derive(Debug, Clone)]
enum Home {
    /// A futex thread, watching the word at this address (0: a deadline
    /// alone).
    Word(Arc<WordShard>, usize),
    /// The descriptor thread, watching this descriptor (`None`: a
    /// deadline alone).
    Fd(Arc<FdShard>, Option<std::os::fd::RawFd>),
}

/// One registration with the service: fires once, then stays fired. The
/// owner polls [`fired`](Ticket::fired) when its task is woken, and keeps
/// the waker current with [`set_waker`](Ticket::set_waker). Dropping it
/// withdraws the registration.
///
/// A ticket that crossed a fork (a forked child's copy of its parent's
/// future) belongs to threads the child does not have: in the child it
/// reads as fired (`Changed`, so its owner looks and registers anew) and
/// dropping it touches nothing.
#[derive(Debug)]
pub(crate) struct Ticket {
    entry: Arc<Entry>,
    home: Home,
    /// The process the ticket was registered in.
    pid: u32,
}

impl Ticket {
    fn new(entry: Arc<Entry>, home: Home) -> Ticket {
        Ticket { entry, home, pid: crate::sys::process::pid() }
    }

    /// Whether this process is the one the ticket was registered in.
    fn at_home(&self) -> bool {
        self.pid == crate::sys::process::pid()
    }

    /// How the ticket fired, or `None` while it waits.
    pub(crate) fn fired(&self) -> Option<Wake> {
        if !self.at_home() {
            return Some(Wake::Changed);
        }
        self.entry.fired()
    }

    /// Makes `waker` the one woken when the ticket fires (a task moved to
    /// another executor thread, or polled through another future). If it
    /// fired meanwhile, wakes `waker` at once.
    pub(crate) fn set_waker(&self, waker: &Waker) {
        if !self.at_home() {
            waker.wake_by_ref();
            return;
        }
        let mut slot = self.entry.waker.lock();
        if self.entry.fired().is_some() {
            drop(slot);
            waker.wake_by_ref();
            return;
        }
        match &*slot {
            Some(w) if w.will_wake(waker) => {}
            _ => *slot = Some(waker.clone()),
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.entry.fired().is_some() || !self.at_home() {
            return; // the service already forgot it, or is not here
        }
        match &self.home {
            Home::Word(s, addr) => s.forget(&self.entry, *addr),
            Home::Fd(s, fd) => s.forget(&self.entry, *fd),
        }
    }
}

/// The process's service: its futex shards and descriptor thread, and the
/// pid they belong to.
struct Service {
    pid: u32,
    shards: Vec<Arc<WordShard>>,
    fds: Option<Arc<FdShard>>,
    next_id: u64,
}

static SERVICE: Mutex<Option<Service>> = Mutex::new(None);

/// In a forked child, right after the fork (an atfork handler): the
/// parent's service threads are not here, and another parent thread may
/// have held the service's lock at the fork; the child starts afresh.
extern "C" fn after_fork_in_child() {
    crate::sys::process::reset_in_child(&SERVICE, None);
}

/// Runs `f` on this process's service, a fresh one in a forked child.
fn with_service<T>(f: impl FnOnce(&mut Service) -> T) -> T {
    static REGISTERED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    crate::sys::process::at_fork_child_once(&REGISTERED, after_fork_in_child);
    let pid = crate::sys::process::pid();
    let mut g = SERVICE.lock();
    if g.as_ref().is_none_or(|s| s.pid != pid) {
        // A forked child: the parent's threads are not here. Their state
        // is left alone (never dropped: a lock in it may have been held
        // at the fork).
        if let Some(old) = g.take() {
            std::mem::forget(old);
        }
        *g = Some(Service { pid, shards: Vec::new(), fds: None, next_id: 0 });
    }
    f(g.as_mut().expect("invariant: set above"))
}

/// Registers a wait on `source`'s word while it holds `expected`, until
/// `deadline`; `waker` is woken when the ticket fires. A word that no
/// longer holds `expected` gives a ticket already fired (`Changed`).
///
/// # Errors
/// The OS refused the service's thread.
pub(crate) fn watch_word(
    source: &Arc<dyn AsyncWord>,
    expected: u32,
    deadline: Option<Instant>,
    waker: &Waker,
) -> io::Result<Ticket> {
    let addr = source.word().as_ptr() as usize;
    let (ticket, fired) = with_service(|s| -> io::Result<_> {
        s.next_id += 1;
        let entry = Entry::new(s.next_id, deadline, waker);
        // A thread that stopped on an error serves nothing more.
        s.shards.retain(|sh| !sh.is_broken());
        let found = s.shards.iter().find(|sh| sh.watches(addr)).or_else(|| s.shards.iter().find(|sh| sh.has_room()));
        let shard = match found {
            Some(sh) => sh.clone(),
            None => {
                let sh = WordShard::start()?;
                s.shards.push(sh.clone());
                sh
            }
        };
        // Added under the service's lock: no other registration fills
        // the shard between the choice and the addition.
        let fired = shard.add(source, expected, &entry)?;
        Ok((Ticket::new(entry, Home::Word(shard, addr)), fired))
    })?;
    wake_all(fired);
    Ok(ticket)
}

/// Fires one waiting ticket of `source`'s word (`Changed`), if any: a
/// waiter that gave a role up (the liveness schedule of an object's
/// async waiters) wakes another to take it.
pub(crate) fn nudge(source: &Arc<dyn AsyncWord>) {
    let addr = source.word().as_ptr() as usize;
    let shard = with_service(|s| s.shards.iter().find(|sh| sh.watches(addr)).cloned());
    if let Some(waker) = shard.and_then(|sh| sh.nudge(addr)) {
        waker.wake();
    }
}

/// Registers a wait until `deadline` alone (a caller whose objects are
/// all ready-checked elsewhere): the ticket fires `TimedOut` then.
///
/// # Errors
/// The OS refused the service's thread.
pub(crate) fn watch_deadline(deadline: Instant, waker: &Waker) -> io::Result<Ticket> {
    // On the descriptor thread: `poll`'s timeout works on every kernel.
    let (entry, shard) = with_service(|s| -> io::Result<_> {
        s.next_id += 1;
        let entry = Entry::new(s.next_id, Some(deadline), waker);
        Ok((entry, fd_shard(s)?))
    })?;
    shard.add_timer(&entry)?;
    Ok(Ticket::new(entry, Home::Fd(shard, None)))
}

/// The descriptor thread, started if need be.
fn fd_shard(s: &mut Service) -> io::Result<Arc<FdShard>> {
    if let Some(sh) = &s.fds
        && !sh.is_broken()
    {
        return Ok(sh.clone());
    }
    let sh = FdShard::start()?;
    s.fds = Some(sh.clone());
    Ok(sh)
}

/// Registers a wait until `source`'s descriptor is readable, or
/// `deadline`.
///
/// # Errors
/// The OS refused the descriptor thread or its eventfd.
pub(crate) fn watch_fd(source: &Arc<dyn AsyncFd>, deadline: Option<Instant>, waker: &Waker) -> io::Result<Ticket> {
    let (entry, shard) = with_service(|s| -> io::Result<_> {
        s.next_id += 1;
        let entry = Entry::new(s.next_id, deadline, waker);
        Ok((entry, fd_shard(s)?))
    })?;
    shard.add(source, &entry)?;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&source.fd());
    Ok(Ticket::new(entry, Home::Fd(shard, Some(fd))))
}

/// Waits (asynchronously) until `source`'s descriptor is readable or
/// `deadline`: how the ticket fired.
///
/// # Errors
/// The OS refused the descriptor thread.
pub(crate) async fn fd_ready(source: &Arc<dyn AsyncFd>, deadline: Option<Instant>) -> io::Result<Wake> {
    let mut ticket: Option<Ticket> = None;
    std::future::poll_fn(|cx| match &ticket {
        None => {
            ticket = Some(watch_fd(source, deadline, cx.waker())?);
            std::task::Poll::Pending
        }
        Some(t) => match t.fired() {
            Some(w) => std::task::Poll::Ready(Ok(w)),
            None => {
                t.set_waker(cx.waker());
                std::task::Poll::Pending
            }
        },
    })
    .await
}

/// Waits (asynchronously) while `source`'s word holds `expected`, until a
/// wake call or `deadline`: how the ticket fired (`Changed` at once if
/// the word no longer holds it). Errors: the OS refused the service's
/// thread, or the kernel has no `futex_waitv`.
///
/// Dropped after a wake call woke the service for it but before it
/// returned, the future passes one wake-up on to another sleeper of the
/// word (the wake-up may have been meant for a single waiter: a
/// semaphore's release, a mutex's unlock).
pub(crate) fn word_changed<'a>(
    source: &'a Arc<dyn AsyncWord>,
    expected: u32,
    deadline: Option<Instant>,
) -> WordChanged<'a> {
    WordChanged { source, expected, deadline, ticket: None, done: false }
}

/// The future of [`word_changed`].
pub(crate) struct WordChanged<'a> {
    source: &'a Arc<dyn AsyncWord>,
    expected: u32,
    deadline: Option<Instant>,
    ticket: Option<Ticket>,
    done: bool,
}

impl std::future::Future for WordChanged<'_> {
    type Output = io::Result<Wake>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<io::Result<Wake>> {
        let this = self.get_mut();
        let fired = match &this.ticket {
            None => {
                let t = watch_word(this.source, this.expected, this.deadline, cx.waker())?;
                let fired = t.fired();
                this.ticket = Some(t);
                fired
            }
            Some(t) => {
                let fired = t.fired();
                if fired.is_none() {
                    t.set_waker(cx.waker());
                }
                fired
            }
        };
        match fired {
            Some(w) => {
                this.done = true;
                std::task::Poll::Ready(Ok(w))
            }
            None => std::task::Poll::Pending,
        }
    }
}

impl Drop for WordChanged<'_> {
    fn drop(&mut self) {
        if !self.done && self.ticket.as_ref().and_then(Ticket::fired) == Some(Wake::Woken) {
            crate::sys::futex::wake(self.source.word(), 1);
        }
    }
}

/// The service's threads started so far in this process (for tests).
#[cfg(test)]
pub(crate) fn threads() -> usize {
    with_service(|s| s.shards.len() + usize::from(s.fds.is_some()))
}

#[cfg(test)]
mod tests;
