//! The lane's async twins: the same sends and receives as `lane.rs`, whose
//! waits hand the eventcount's word to the waiting service
//! (`crate::watch`) instead of sleeping in the kernel.
//!
//! Each attempt is the blocking engine's own non-blocking call
//! ([`Wait::No`]): the same locks, counts, liveness probes and pass-ons.
//! Between attempts a caller waits as a blocking one does up to its sleep
//! (spin briefly, announce itself on the eventcount, look once more), then
//! registers the word and the key it took with the service and returns
//! `Pending`. Woken, it withdraws its announcement and tries again; at a
//! liveness wake-up it asks the OS about the other side, as a sleeper does.
//!
//! Cancellation: an attempt runs whole inside one `poll`, so a future
//! dropped while pending has taken no message and published none (a send
//! spilled to a segment discards it). A future dropped while registered
//! withdraws its announcement and, if it leaves a message (room) behind,
//! passes a wake-up on, since the service's wake-up may have been meant
//! for it ([`Sleeper`]'s drop).

use std::future::poll_fn;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::task::{Context, Poll};
use std::time::Instant;

use super::lane::{Ends, Lane, LaneWords, Other, SPIN, Stop, Wait, Woke};
use crate::channel::post::PARCEL;
use crate::channel::spill;
use crate::error::Error;
use crate::loom::atomic::{AtomicU64, Ordering};
use crate::loom::owner::LivenessPoll;
use crate::queue::bytes::{TAG_INLINE, TAG_SPILL};
use crate::queue::eventcount::{Awake, RawEventCount};
use crate::shm::typed::Placed;
use crate::watch::{self, AsyncWord, Ticket, Wake};

/// Which of a lane's two eventcounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// `readable`: receivers wait for a message.
    Receiving = 0,
    /// `writable`: senders wait for room.
    Sending = 1,
}

/// One eventcount's word as the service sees it: the lane's words (whose
/// mapping it keeps) and which eventcount.
#[derive(Debug)]
pub(crate) struct LaneWord {
    words: Placed<LaneWords>,
    side: Side,
}

impl LaneWord {
    fn ec(&self) -> &RawEventCount {
        match self.side {
            Side::Receiving => &self.words.readable,
            Side::Sending => &self.words.writable,
        }
    }
}

impl AsyncWord for LaneWord {
    fn word(&self) -> &AtomicU32 {
        self.ec().seq_word()
    }

    fn woken(&self) {
        self.ec().arrived();
    }
}

/// The two words of a lane, made once per lane.
#[derive(Debug)]
pub(crate) struct LaneWordsAsync {
    receiving: Arc<dyn AsyncWord>,
    sending: Arc<dyn AsyncWord>,
    /// Per side: whether one of this process's async waiters has the
    /// liveness schedule (see [`SleepState`]).
    probers: [std::sync::atomic::AtomicBool; 2],
}

impl LaneWordsAsync {
    pub(crate) fn get(&self, side: Side) -> &Arc<dyn AsyncWord> {
        match side {
            Side::Receiving => &self.receiving,
            Side::Sending => &self.sending,
        }
    }

    /// The side's prober flag.
    pub(crate) fn prober(&self, side: Side) -> &std::sync::atomic::AtomicBool {
        &self.probers[side as usize]
    }

    pub(crate) fn new(words: &Placed<LaneWords>) -> LaneWordsAsync {
        LaneWordsAsync {
            receiving: Arc::new(LaneWord { words: words.clone(), side: Side::Receiving }),
            sending: Arc::new(LaneWord { words: words.clone(), side: Side::Sending }),
            probers: Default::default(),
        }
    }
}

/// An eventcount as an async waiter uses it: the eventcount, the awake
/// count and position of its side (callers count themselves in `awake`
/// and move `position` when they make progress), and its word as the
/// service sees it.
#[derive(Clone, Copy)]
pub(crate) struct EcRef<'a> {
    pub(crate) ec: &'a RawEventCount,
    pub(crate) awake: &'a Awake,
    pub(crate) position: &'a AtomicU64,
    pub(crate) source: &'a Arc<dyn AsyncWord>,
    /// Whether one of this process's async waiters on `ec` has the
    /// liveness schedule (see [`SleepState`]).
    pub(crate) prober: &'a std::sync::atomic::AtomicBool,
}

impl<'a> EcRef<'a> {
    /// One side of a lane.
    pub(crate) fn lane(lane: &'a Lane, side: Side) -> EcRef<'a> {
        let w = lane.words();
        let (ec, awake, position) = match side {
            Side::Receiving => (&w.readable, &w.receiving.awake, &w.head),
            Side::Sending => (&w.writable, &w.sending.awake, &w.tail),
        };
        let words = lane.async_words();
        EcRef { ec, awake, position, source: words.get(side), prober: words.prober(side) }
    }
}

/// Whether what callers of `side` wait for is there for someone (a
/// message; room for the smallest record).
pub(crate) fn something_left(lane: &Lane, side: Side) -> bool {
    match side {
        Side::Receiving => lane.has_message(),
        Side::Sending => lane.has_room(0),
    }
}

/// One async caller's wait on an eventcount, across polls: its
/// registration while it sleeps, and its liveness schedule. Owned (no
/// borrow), so a `Stream` can keep it in itself; the eventcount is passed
/// to each call. A state dropped while registered must first be
/// [`cancel`](SleepState::cancel)led ([`Sleeper`] does it).
///
/// Liveness: a blocking sleeper wakes at liveness intervals to ask the OS
/// about the other side. Of the async waiters of one side of one object in
/// a process, one at a time does so (the "prober", flagged in
/// [`EcRef::prober`]); the others sleep with the caller's deadline only, so
/// ten thousand tasks awaiting one idle queue cost one wake-up per
/// interval, not ten thousand. A prober that finds the other side gone
/// wakes every waiter of the word (they learn it from the engine's own
/// rate-limited probe, whose answer is then cached); one that stops
/// waiting hands the role on by nudging another waiter of the word, which
/// takes it when it registers again.
#[derive(Debug)]
pub(crate) struct SleepState {
    ticket: Option<Ticket>,
    poll: LivenessPoll,
    /// The side's position when the caller registered (see `stranded`).
    before: u64,
    /// Whether this wait passed a spare wake-up on (once per wait).
    passed: bool,
    /// Whether the first sleep's question about the other side was asked.
    asked_first: bool,
    /// Whether a wait spins briefly before it registers (not when one
    /// caller waits on many objects at once).
    spin: bool,
    /// Whether this waiter has the liveness schedule of its side.
    prober: bool,
}

impl Default for SleepState {
    fn default() -> Self {
        SleepState {
            ticket: None,
            poll: LivenessPoll::new(),
            before: 0,
            passed: false,
            asked_first: false,
            spin: true,
            prober: false,
        }
    }
}

impl SleepState {
    /// A state whose waits register at once, without spinning first.
    pub(crate) fn without_spin() -> SleepState {
        SleepState { spin: false, ..SleepState::default() }
    }

    /// The async twin of the engine's `wait_on`: ready with `Look` when
    /// `look()` may hold, `Gone` when the OS confirms the other side gone,
    /// `Err(Timeout)` when `wait` ends; pending while registered.
    pub(crate) fn poll_wait<G: Fn() -> bool>(
        &mut self,
        at: EcRef<'_>,
        cx: &mut Context<'_>,
        look: &impl Fn() -> bool,
        spare: &impl Fn() -> bool,
        wait: Wait,
        other: &Other<'_, G>,
    ) -> Poll<Result<Woke, Stop>> {
        let EcRef { ec, awake, position, .. } = at;
        if let Some(ticket) = self.ticket.take() {
            let Some(woke) = ticket.fired() else {
                if !look() {
                    // Polled for another reason (a select, a moved task).
                    ticket.set_waker(cx.waker());
                    self.ticket = Some(ticket);
                    return Poll::Pending;
                }
                drop(ticket);
                ec.finish();
                self.release(at);
                return Poll::Ready(Ok(Woke::Look));
            };
            drop(ticket);
            ec.finish();
            let now = Instant::now();
            // As a sleeper does: a liveness wake-up that finds the
            // condition true with no progress of this side meanwhile
            // means the counts are stuck (see `wait_on`).
            // Relaxed: compared with itself only.
            if woke == Wake::TimedOut && look() && position.load(Ordering::Relaxed) == self.before {
                ec.stranded(awake);
            }
            let passed = wait.passed(now);
            if woke == Wake::TimedOut && !passed && self.prober {
                if other.rate.ask_now(&other.gone) {
                    // Every other waiter of the word learns it too.
                    ec.notify_all();
                    self.release(at);
                    return Poll::Ready(Ok(Woke::Gone));
                }
                self.poll.slower();
                if !look() {
                    // Alive and nothing to do: sleep on, keeping the role
                    // (below), as a blocking sleeper loops in `wait_on`.
                    return self.register(at, cx, look, spare, wait, now);
                }
            }
            self.release(at);
            return Poll::Ready(if passed && !look() { Err(Stop::Timeout) } else { Ok(Woke::Look) });
        }
        if self.spin && ec.spin_for_notifier(SPIN, look) {
            return Poll::Ready(Ok(Woke::Look));
        }
        let now = Instant::now();
        if wait.passed(now) {
            return Poll::Ready(Err(Stop::Timeout));
        }
        if other.ask_first && !self.asked_first {
            self.asked_first = true;
            if other.rate.ask(&other.gone) {
                return Poll::Ready(Ok(Woke::Gone));
            }
        }
        self.register(at, cx, look, spare, wait, now)
    }

    /// Announces the caller, looks once more, and registers the key with
    /// the service: `Pending`, or `Look` if the look found the condition.
    fn register(
        &mut self,
        at: EcRef<'_>,
        cx: &mut Context<'_>,
        look: &impl Fn() -> bool,
        spare: &impl Fn() -> bool,
        wait: Wait,
        now: Instant,
    ) -> Poll<Result<Woke, Stop>> {
        let EcRef { ec, awake, position, source, prober } = at;
        let key = ec.prepare();
        if look() {
            ec.finish();
            self.release(at);
            return Poll::Ready(Ok(Woke::Look));
        }
        if !self.passed && awake.none() && spare() {
            self.passed = true;
            ec.notify_one(awake);
        }
        self.before = position.load(Ordering::Relaxed);
        if !self.prober {
            // AcqRel: a handed-on role is seen with its holder's release.
            self.prober = !prober.swap(true, std::sync::atomic::Ordering::AcqRel);
        }
        let deadline = if self.prober { self.poll.wake_at(now, wait.deadline()) } else { wait.deadline() };
        match watch::watch_word(source, key.value(), deadline, cx.waker()) {
            Ok(t) => {
                self.ticket = Some(t);
                Poll::Pending
            }
            Err(e) => {
                ec.finish();
                self.release(at);
                Poll::Ready(Err(Stop::Failed(Error::os("futex_waitv", e))))
            }
        }
    }

    /// Gives the liveness role up, if this waiter has it, and nudges
    /// another waiter of the word to take it.
    fn release(&mut self, at: EcRef<'_>) {
        if std::mem::take(&mut self.prober) {
            // Release: the next holder sees this one's schedule as done.
            at.prober.store(false, std::sync::atomic::Ordering::Release);
            watch::nudge(at.source);
        }
    }

    /// Withdraws a registration (the caller will not look): its
    /// announcement, and, since the service's wake-up may have been meant
    /// for it, a wake-up passed on if `left()` says it leaves something.
    pub(crate) fn cancel(&mut self, at: EcRef<'_>, left: impl FnOnce() -> bool) {
        let Some(ticket) = self.ticket.take() else { return };
        drop(ticket);
        at.ec.finish();
        self.release(at);
        if at.ec.anyone_announced() && left() {
            at.ec.notify_one(at.awake);
        }
    }
}

/// A [`SleepState`] with its eventcount, cancelled on drop.
pub(crate) struct Sleeper<'a, L: Fn() -> bool> {
    at: EcRef<'a>,
    left: L,
    state: SleepState,
}

/// A sleeper on one side of a lane.
pub(crate) fn lane_sleeper(lane: &Lane, side: Side) -> Sleeper<'_, impl Fn() -> bool + '_> {
    Sleeper::new(EcRef::lane(lane, side), move || something_left(lane, side))
}

impl<'a, L: Fn() -> bool> Sleeper<'a, L> {
    /// A sleeper on `at`; `left()` says whether what callers of its side
    /// wait for is there for someone (see [`SleepState::cancel`]).
    pub(crate) fn new(at: EcRef<'a>, left: L) -> Self {
        Sleeper { at, left, state: SleepState::default() }
    }

    /// Waits (asynchronously) as [`SleepState::poll_wait`] says.
    pub(crate) async fn wait<G: Fn() -> bool>(
        &mut self,
        look: impl Fn() -> bool,
        spare: impl Fn() -> bool,
        wait: Wait,
        other: &Other<'_, G>,
    ) -> Result<Woke, Stop> {
        poll_fn(|cx| self.state.poll_wait(self.at, cx, &look, &spare, wait, other)).await
    }
}

impl<L: Fn() -> bool> Drop for Sleeper<'_, L> {
    fn drop(&mut self) {
        self.state.cancel(self.at, &self.left);
    }
}

/// Discards a spill segment unless its reference was sent.
struct SpillGuard(Option<Vec<u8>>);

impl Drop for SpillGuard {
    fn drop(&mut self) {
        if let Some(reference) = self.0.take() {
            spill::discard(&reference);
        }
    }
}

/// Looks within one poll before a caller gives its thread back (wakes
/// itself and returns `Pending`): a condition that keeps looking true
/// while attempts keep failing (a lock held by a caller that is slow to
/// let go) must not hold the executor's thread.
const LOOKS_PER_POLL: u32 = 4;

/// A [`SleepState`] on one side of a lane, cancelled on drop: the state
/// of one async send or receive.
pub(crate) struct LaneSleep<'a> {
    lane: &'a Lane,
    side: Side,
    pub(crate) state: SleepState,
}

impl<'a> LaneSleep<'a> {
    pub(crate) fn new(lane: &'a Lane, side: Side) -> Self {
        LaneSleep { lane, side, state: SleepState::default() }
    }
}

impl Drop for LaneSleep<'_> {
    fn drop(&mut self) {
        let (lane, side) = (self.lane, self.side);
        self.state.cancel(EcRef::lane(lane, side), || something_left(lane, side));
    }
}

impl Lane {
    /// One poll of an async receive: `attempt` is a receive that does not
    /// wait ([`Wait::No`]: `Err(Stop::Timeout)` means "nothing now");
    /// between attempts the caller waits on `state`.
    pub(crate) fn poll_recv_with<T, E: Ends>(
        &self,
        state: &mut SleepState,
        cx: &mut Context<'_>,
        ends: &E,
        mut attempt: impl FnMut() -> Result<T, Stop>,
    ) -> Poll<Result<T, Stop>> {
        for _ in 0..LOOKS_PER_POLL {
            match attempt() {
                Err(Stop::Timeout) => {}
                done => {
                    // A registration left from an earlier poll (a stream
                    // woken by its ticket that found its item at once)
                    // is withdrawn now, not when the stream is next polled.
                    state.cancel(EcRef::lane(self, Side::Receiving), || self.has_message());
                    return Poll::Ready(done);
                }
            }
            let look = || self.has_message() || ends.recv_stop().is_some() || ends.drained_stop().is_some();
            let other =
                Other { gone: || ends.senders_gone(), rate: self.senders_probe(), ask_first: E::PROBE_BEFORE_SLEEP };
            let at = EcRef::lane(self, Side::Receiving);
            match state.poll_wait(at, cx, &look, &|| false, Wait::Forever, &other) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(stop)) => return Poll::Ready(Err(stop)),
                Poll::Ready(Ok(Woke::Look)) => {}
                // Dead first, then empty: a sender may publish and die.
                Poll::Ready(Ok(Woke::Gone)) => {
                    return Poll::Ready(match attempt() {
                        Err(Stop::Timeout) => Err(Stop::Disconnected),
                        done => done,
                    });
                }
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// One poll of an async send of a `len`-byte record: `attempt` is a
    /// send that does not wait, as for [`poll_recv_with`](Lane::poll_recv_with).
    pub(crate) fn poll_send_with<E: Ends>(
        &self,
        state: &mut SleepState,
        cx: &mut Context<'_>,
        len: u64,
        ends: &E,
        mut attempt: impl FnMut() -> Result<(), Stop>,
    ) -> Poll<Result<(), Stop>> {
        for _ in 0..LOOKS_PER_POLL {
            match attempt() {
                Err(Stop::Timeout) => {}
                done => {
                    state.cancel(EcRef::lane(self, Side::Sending), || self.has_room(0));
                    return Poll::Ready(done);
                }
            }
            let look = || self.has_room(len) || ends.send_stop().is_some();
            // Room too small for this record may fit a smaller one.
            let spare = || len > 0 && self.has_room(0);
            let other = Other {
                gone: || ends.receivers_gone(),
                rate: self.receivers_probe(),
                ask_first: E::PROBE_BEFORE_SLEEP,
            };
            let at = EcRef::lane(self, Side::Sending);
            match state.poll_wait(at, cx, &look, &spare, Wait::Forever, &other) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(stop)) => return Poll::Ready(Err(stop)),
                Poll::Ready(Ok(Woke::Gone)) if E::SEND_NEEDS_RECEIVER || !self.has_room(len) => {
                    return Poll::Ready(Err(Stop::Disconnected));
                }
                Poll::Ready(Ok(_)) => {}
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// The async twin of [`send_message`](Lane::send_message): sends `msg`
    /// whole, inline or through a spill segment, waiting for room.
    pub(crate) async fn send_message_async<E: Ends>(&self, msg: &[u8], ends: &E) -> Result<(), Stop> {
        let (rec, tag, mut guard) = if msg.len() as u64 <= self.max_message() {
            (msg.to_vec(), TAG_INLINE, SpillGuard(None))
        } else {
            if let Some(stop) = ends.send_stop() {
                return Err(stop); // no spill segment for a send that cannot happen
            }
            let reference = self.spill_out(msg)?;
            (reference.clone(), TAG_SPILL, SpillGuard(Some(reference)))
        };
        let mut sleep = LaneSleep::new(self, Side::Sending);
        let sent = poll_fn(|cx| {
            self.poll_send_with(&mut sleep.state, cx, rec.len() as u64, ends, || {
                self.send_record(&rec, tag, Wait::No, ends)
            })
        })
        .await;
        if sent.is_ok() {
            guard.0 = None;
        }
        sent
    }

    /// The async twin of [`send_parcel`](Lane::send_parcel): `msg` with the
    /// descriptors its encoding collected. A full parcel socket (a few
    /// hundred items with descriptors in flight) cannot be waited for
    /// through the waiting service: the future then yields to the executor
    /// and tries again on its next poll until receivers take parcels.
    pub(crate) async fn send_parcel_async<E: Ends>(&self, msg: &[u8], fds: &[OwnedFd], ends: &E) -> Result<(), Stop> {
        if fds.is_empty() {
            return self.send_message_async(msg, ends).await;
        }
        self.check_parcel(fds, ends)?;
        let mut rec = vec![0u8; 8];
        let (tag, mut guard) = if msg.len() as u64 + 8 <= self.max_message() {
            rec.extend_from_slice(msg);
            (TAG_INLINE | PARCEL, SpillGuard(None))
        } else {
            let reference = self.spill_out(msg)?;
            rec.extend_from_slice(&reference);
            (TAG_SPILL | PARCEL, SpillGuard(Some(reference)))
        };
        let mut sleep = LaneSleep::new(self, Side::Sending);
        let sent = poll_fn(|cx| {
            self.poll_send_with(&mut sleep.state, cx, rec.len() as u64, ends, || {
                self.send_record_with(&rec, tag, Wait::No, ends, Some(fds))
            })
        })
        .await;
        if sent.is_ok() {
            guard.0 = None;
        }
        sent
    }

    /// The async twin of [`recv_message`](Lane::recv_message).
    pub(crate) async fn recv_message_async<E: Ends>(
        &self,
        out: &mut Vec<u8>,
        ends: &E,
        hook: &mut (dyn FnMut(&[u8]) + Send),
        fds: &mut Vec<std::os::fd::OwnedFd>,
    ) -> Result<(), Stop> {
        let mut sleep = LaneSleep::new(self, Side::Receiving);
        poll_fn(|cx| {
            self.poll_recv_with(&mut sleep.state, cx, ends, || self.recv_message(out, Wait::No, ends, hook, fds))
        })
        .await
    }

    /// The async twin of [`wait_readable`](Lane::wait_readable).
    pub(crate) async fn wait_readable_async<E: Ends>(&self, look: impl Fn() -> bool, ends: &E) -> Result<Woke, Stop> {
        let look = || self.has_message() || look();
        if look() {
            return Ok(Woke::Look);
        }
        let other =
            Other { gone: || ends.senders_gone(), rate: self.senders_probe(), ask_first: E::PROBE_BEFORE_SLEEP };
        lane_sleeper(self, Side::Receiving).wait(look, || false, Wait::Forever, &other).await
    }
}
