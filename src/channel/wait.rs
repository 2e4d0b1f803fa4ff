//! Waiting on several objects at once (Python's
//! `multiprocessing.connection.wait`): connections, queues and typed
//! receivers (a message is there, or a receive would end at once),
//! processes (exited) and events (set).
//!
//! Every object is a [`Waitable`]: it says whether it is ready now and
//! how to be told when it may have become ready: the receiving side of a
//! channel lane (its eventcount, entered as an async receiver does, see
//! `lane_async.rs`), a descriptor (a process's pidfd), or a futex word (an
//! event's flag). [`wait_async`] polls them all and registers each one
//! that is not ready with the waiting service under the task's waker;
//! [`wait`] runs the same future on the calling thread.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::lane::{Ends, Lane, Other, Stop, Wait, Woke};
use super::lane_async::{EcRef, Side, SleepState, something_left};
use crate::error::{Error, Result};
use crate::watch::{self, AsyncFd, AsyncWord, Ticket};

/// An object [`wait`] can wait on: a [`Connection`](crate::Connection)
/// (a message to receive, or the other end closed or gone), a
/// [`Queue`](crate::Queue) or [`JoinableQueue`](crate::JoinableQueue) (an
/// item, or a `get` that would end at once: closed and drained, or every
/// producer gone), a [`channel::Receiver`](crate::channel::Receiver) (an
/// item, or every sender gone), a [`Process`](crate::Process) (exited:
/// Python's sentinel) or an [`Event`](crate::Event) (set).
///
/// Sealed: implemented for those types only.
///
/// # Examples
///
/// ```
/// use shmproc::connection::Waitable;
/// let (a, b) = shmproc::Pipe::new()?;
/// assert!(!b.is_ready()?);
/// a.send(&1u8)?;
/// assert!(b.is_ready()?);
/// # Ok::<(), shmproc::Error>(())
/// ```
pub trait Waitable: private::Sealed + Sync {
    /// Whether the object is ready now (what [`wait`] would report).
    ///
    /// # Errors
    /// As for the object's [`wait`]: a connection closed at this end or
    /// that only sends.
    fn is_ready(&self) -> Result<bool> {
        Ok(self.target()?.0.ready())
    }

    /// The object as `wait` sees it (crate-internal).
    #[doc(hidden)]
    fn target(&self) -> Result<WaitTarget<'_>>;
}

pub(crate) mod private {
    /// Seals [`Waitable`](super::Waitable).
    pub trait Sealed {}
}

/// How [`wait`] sees one object (opaque).
#[doc(hidden)]
pub struct WaitTarget<'a>(Box<dyn Ready + Send + Sync + 'a>);

impl std::fmt::Debug for WaitTarget<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WaitTarget")
    }
}

/// One object's readiness and its registration with the service.
trait Ready {
    /// Whether the object is ready now.
    fn ready(&self) -> bool;
    /// Ready, or registered under the task's waker.
    fn poll_ready(&self, slot: &mut Slot, cx: &mut Context<'_>) -> Poll<Result<()>>;
    /// Withdraws a registration (the wait is over).
    fn cancel(&self, slot: &mut Slot);
}

/// One object's registration across polls.
#[derive(Debug)]
struct Slot {
    sleep: SleepState,
    ticket: Option<Ticket>,
    /// Whether the object's waiter count has this wait in it (events).
    announced: bool,
}

impl Default for Slot {
    fn default() -> Self {
        Slot { sleep: SleepState::without_spin(), ticket: None, announced: false }
    }
}

impl<'a> WaitTarget<'a> {
    /// The receiving side of `lane`, whose ends are `ends`.
    pub(crate) fn lane<E: Ends + Send + Sync + 'a>(lane: &'a Lane, ends: E) -> WaitTarget<'a> {
        WaitTarget(Box::new(LaneReady { lane, ends }))
    }

    /// A descriptor, ready when `ready()` says so (the descriptor becomes
    /// readable then).
    pub(crate) fn fd(source: Arc<dyn AsyncFd>, ready: impl Fn() -> bool + Send + Sync + 'a) -> WaitTarget<'a> {
        WaitTarget(Box::new(FdReady { source, ready }))
    }

    /// A futex word that holds `idle` while the object is not ready;
    /// `announce(true)` counts a waiter in (so a notifier wakes the word),
    /// `announce(false)` out.
    pub(crate) fn word(
        source: Arc<dyn AsyncWord>,
        idle: u32,
        announce: impl Fn(bool) + Send + Sync + 'a,
    ) -> WaitTarget<'a> {
        WaitTarget(Box::new(WordReady { source, idle, announce }))
    }
}

struct LaneReady<'a, E> {
    lane: &'a Lane,
    ends: E,
}

impl<E: Ends> Ready for LaneReady<'_, E> {
    fn ready(&self) -> bool {
        let e = &self.ends;
        self.lane.has_message() || e.recv_stop().is_some() || e.drained_stop().is_some()
    }

    fn poll_ready(&self, slot: &mut Slot, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let look = || self.ready();
        let other = Other {
            gone: || self.ends.senders_gone(),
            rate: self.lane.senders_probe(),
            ask_first: E::PROBE_BEFORE_SLEEP,
        };
        let at = EcRef::lane(self.lane, Side::Receiving);
        match slot.sleep.poll_wait(at, cx, &look, &|| false, Wait::Forever, &other) {
            Poll::Pending => Poll::Pending,
            // A receive would end at once: ready, as Python's `wait` says
            // of a connection at EOF.
            Poll::Ready(Ok(Woke::Gone)) => Poll::Ready(Ok(())),
            Poll::Ready(Ok(Woke::Look)) if look() => Poll::Ready(Ok(())),
            Poll::Ready(Ok(Woke::Look)) => {
                // Woken, not ready (someone else took the message): wait
                // again on the next poll.
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Poll::Ready(Err(Stop::Failed(e))) => Poll::Ready(Err(e)),
            Poll::Ready(Err(stop)) => Poll::Ready(Err(stop.into_error())),
        }
    }

    fn cancel(&self, slot: &mut Slot) {
        let lane = self.lane;
        slot.sleep.cancel(EcRef::lane(lane, Side::Receiving), || something_left(lane, Side::Receiving));
    }
}

struct FdReady<F> {
    source: Arc<dyn AsyncFd>,
    ready: F,
}

impl<F: Fn() -> bool> Ready for FdReady<F> {
    fn ready(&self) -> bool {
        (self.ready)()
    }

    fn poll_ready(&self, slot: &mut Slot, cx: &mut Context<'_>) -> Poll<Result<()>> {
        if let Some(t) = &slot.ticket {
            if t.fired().is_none() {
                t.set_waker(cx.waker());
                return Poll::Pending;
            }
            slot.ticket = None;
        }
        if self.ready() {
            return Poll::Ready(Ok(()));
        }
        let t = watch::watch_fd(&self.source, None, cx.waker()).map_err(|e| Error::os("poll", e))?;
        slot.ticket = Some(t);
        Poll::Pending
    }

    fn cancel(&self, slot: &mut Slot) {
        slot.ticket = None;
    }
}

struct WordReady<F> {
    source: Arc<dyn AsyncWord>,
    idle: u32,
    announce: F,
}

impl<F: Fn(bool)> Ready for WordReady<F> {
    fn ready(&self) -> bool {
        // SeqCst: after the announcement (the waiter's half of the pair
        // with the notifier's store and its look at the waiter count).
        self.source.word().load(std::sync::atomic::Ordering::SeqCst) != self.idle
    }

    fn poll_ready(&self, slot: &mut Slot, cx: &mut Context<'_>) -> Poll<Result<()>> {
        if let Some(t) = &slot.ticket {
            if t.fired().is_none() && !self.ready() {
                t.set_waker(cx.waker());
                return Poll::Pending;
            }
            slot.ticket = None;
        }
        if !slot.announced {
            (self.announce)(true);
            slot.announced = true;
        }
        if self.ready() {
            self.cancel(slot);
            return Poll::Ready(Ok(()));
        }
        let t =
            watch::watch_word(&self.source, self.idle, None, cx.waker()).map_err(|e| Error::os("futex_waitv", e))?;
        slot.ticket = Some(t);
        Poll::Pending
    }

    fn cancel(&self, slot: &mut Slot) {
        slot.ticket = None;
        if slot.announced {
            (self.announce)(false);
            slot.announced = false;
        }
    }
}

/// The wait over several objects, as a future: the indices of the ready
/// ones. Registrations are withdrawn when it ends or is dropped.
struct WaitAll<'a> {
    targets: Vec<WaitTarget<'a>>,
    slots: Vec<Slot>,
    /// The caller's deadline, and its registration (a deadline alone).
    deadline: Option<Instant>,
    timer: Option<Ticket>,
}

impl WaitAll<'_> {
    fn cancel_all(&mut self) {
        for (t, s) in self.targets.iter().zip(&mut self.slots) {
            t.0.cancel(s);
        }
        self.timer = None;
    }
}

impl Future for WaitAll<'_> {
    type Output = Result<Vec<usize>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Vec<usize>>> {
        let this = self.get_mut();
        let ready: Vec<usize> = (0..this.targets.len()).filter(|&i| this.targets[i].0.ready()).collect();
        if !ready.is_empty() {
            this.cancel_all();
            return Poll::Ready(Ok(ready));
        }
        let mut ready = Vec::new();
        for (i, (t, s)) in this.targets.iter().zip(&mut this.slots).enumerate() {
            match t.0.poll_ready(s, cx) {
                Poll::Pending => {}
                Poll::Ready(Ok(())) => ready.push(i),
                Poll::Ready(Err(e)) => {
                    this.cancel_all();
                    return Poll::Ready(Err(e));
                }
            }
        }
        if !ready.is_empty() {
            this.cancel_all();
            return Poll::Ready(Ok(ready));
        }
        if let Some(d) = this.deadline {
            if Instant::now() >= d {
                this.cancel_all();
                return Poll::Ready(Ok(Vec::new()));
            }
            match &this.timer {
                Some(t) => t.set_waker(cx.waker()),
                None => match watch::watch_deadline(d, cx.waker()) {
                    Ok(t) => this.timer = Some(t),
                    Err(e) => {
                        this.cancel_all();
                        return Poll::Ready(Err(Error::os("futex_waitv", e)));
                    }
                },
            }
        }
        Poll::Pending
    }
}

impl Drop for WaitAll<'_> {
    fn drop(&mut self) {
        self.cancel_all();
    }
}

fn wait_all<'a>(objects: &'a [&'a dyn Waitable], timeout: Option<Duration>) -> Result<WaitAll<'a>> {
    let targets = objects.iter().map(|o| o.target()).collect::<Result<Vec<_>>>()?;
    let slots = targets.iter().map(|_| Slot::default()).collect();
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    Ok(WaitAll { targets, slots, deadline, timer: None })
}

/// Waits until at least one of `objects` is ready, or `timeout` passes
/// (`None`: no limit): the indices of the ready objects, in order, or an
/// empty `Vec` when the timeout passed first (Python:
/// `multiprocessing.connection.wait(object_list, timeout)`, which returns
/// the ready objects themselves).
///
/// What "ready" means for each kind of object is in [`Waitable`]. The
/// objects may be of different types: `&[&a, &queue, &process, &event]`.
/// The wait uses the waiting service (one thread per process, started on
/// first use; it makes the process multithreaded, so `StartMethod::Fork`
/// is refused afterwards, as with any thread).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// fn nap(ms: u64) { std::thread::sleep(Duration::from_millis(ms)) }
///
/// let (a, b) = shmproc::Pipe::new()?;
/// let q = shmproc::Queue::<u32>::new(0)?;
/// let ev = shmproc::Event::new()?;
/// let mut child = shmproc::Process::spawn(nap, 10)?;
/// // Nothing ready within a millisecond (the child naps longer).
/// let none = shmproc::connection::wait(&[&b, &q, &ev, &child], Some(Duration::from_millis(1)))?;
/// assert!(none.is_empty());
/// q.put(7)?;
/// assert_eq!(shmproc::connection::wait(&[&b, &q, &ev], None)?, [1]);
/// a.send(&"hi")?;
/// assert_eq!(shmproc::connection::wait(&[&b, &ev], None)?, [0]);
/// assert!(shmproc::connection::wait(&[&ev, &child], None)?.contains(&1)); // the child exits
/// child.join()?;
/// # Ok::<(), shmproc::Error>(())
/// ```
///
/// # Errors
/// [`Error::Closed`] for a connection closed at this end,
/// [`Error::InvalidArgument`] for the sending end of a simplex pipe, an
/// OS error if the waiting service cannot start (or, on Linux before
/// 5.16, has no `futex_waitv`).
pub fn wait(objects: &[&dyn Waitable], timeout: Option<Duration>) -> Result<Vec<usize>> {
    let fut = wait_all(objects, timeout)?;
    // The future ends by itself at the deadline (its timer ticket).
    watch::block_on(fut)
}

/// The async form of [`wait`]: the same result, without blocking the
/// thread.
///
/// Cancellation: dropping the future withdraws every registration; it
/// takes nothing from any object.
///
/// # Examples
///
/// ```
/// let (a, b) = shmproc::Pipe::new()?;
/// let q = shmproc::Queue::<u32>::new(0)?;
/// let producer = q.clone();
/// std::thread::spawn(move || producer.put(1));
/// let ready = futures::executor::block_on(shmproc::connection::wait_async(&[&b, &q], None))?;
/// assert_eq!(ready, [1]);
/// # drop(a);
/// # Ok::<(), shmproc::Error>(())
/// ```
///
/// # Errors
/// As for [`wait`].
pub async fn wait_async(objects: &[&dyn Waitable], timeout: Option<Duration>) -> Result<Vec<usize>> {
    wait_all(objects, timeout)?.await
}

impl private::Sealed for crate::Event {}

/// Ready when set.
impl Waitable for crate::Event {
    fn target(&self) -> Result<WaitTarget<'_>> {
        let home = self.raw_home();
        let source = watch::HomeWord::shared(home, |e| &e.flag);
        Ok(WaitTarget::word(source, 0, move |on| if on { home.waiters.announce() } else { home.waiters.withdraw() }))
    }
}
