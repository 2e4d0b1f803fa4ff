//! The channel engine: one direction of a channel ("lane") in shared
//! memory, and the one path that sends and receives over it.
//!
//! A lane is seven words ([`LaneWords`]) beside a byte buffer that holds the
//! records of the byte protocol (`queue/bytes.rs`). `Queue` is one lane;
//! a duplex `Pipe` is two.
//!
//! | word | written by | meaning |
//! |---|---|---|
//! | `head`, `tail` | the receiver / sender holding the lock | byte-protocol positions, each published in one store |
//! | `readable` | senders notify after publishing; receivers wait | "a message may have arrived" |
//! | `writable` | receivers notify after freeing; senders wait | "room may have appeared" |
//! | `sending.lock`, `receiving.lock` | robust mutexes | one sender / one receiver at a time; an owner that died passes the lock on (positions are never half-published) |
//! | `sending.awake`, `receiving.awake` | every sender / receiver, in [`Call`] | callers of that side inside a call and not asleep: notifiers wake nobody while one is |
//! | `spares` | receivers hand back, senders take, the creator closes | spill segments kept for reuse (`spill.rs`) |
//!
//! Every send and receive takes the same steps: count itself awake
//! ([`Call`]), try under the side's robust lock; if that found no room (no
//! message), spin briefly without
//! yielding (only while the peer last ran on another CPU: see
//! `RawEventCount::spin_for_notifier`), announce itself on the eventcount,
//! leave the awake count, look again, sleep, and at liveness intervals ask
//! the OS whether every process on the other side is gone ([`Ends`]). A
//! call that ends as the last awake caller of its side passes a wake-up on
//! if it leaves something another caller of its side can use (a message,
//! room); see `queue/eventcount.rs` for why this wakes as many callers as
//! can proceed and loses no wake-up. Messages larger than half
//! the buffer travel through a spill segment (`spill.rs`) whose reference
//! is the record.
//!
//! What differs between a queue and a pipe (who may close what, whether a
//! send fails while nobody can receive) is the [`Ends`] a caller passes.
//!
//! A message whose encoding holds descriptors travels as a parcel
//! ([`Lane::send_parcel`]): its descriptors go over the channel's socket
//! pair under the send lock just before the record, which is tagged
//! `PARCEL` and carries the parcel's id; the receive path takes them under
//! the receive lock (`post.rs` has the protocol and what a crash does at
//! each step). The pool can reuse both halves: `send_parcel` and the
//! `fds` of [`Lane::recv_message`].

use std::sync::atomic::{AtomicU32 as StdAtomicU32, AtomicU64 as StdAtomicU64, Ordering as StdOrdering};
use std::time::{Duration, Instant};

use crate::channel::post::{DATAGRAM, LanePost, MAX_DISCARDS, NO_SOCKET, NO_SOCKET_RECV, PARCEL};
use crate::channel::spill;
use crate::error::{Error, Result};
use crate::loom::atomic::{AtomicU64, Ordering};
use crate::loom::futex::Wake;
use crate::loom::owner::LivenessPoll;
use crate::owner::probe::ProbeRate;
use crate::owner::token::Token;
use crate::queue::bytes::{self, ByteConsumerCore, ByteProducerCore, ByteSlots, ShmBytes, TAG_INLINE, TAG_SPILL};
use crate::queue::eventcount::{Awake, RawEventCount};
use crate::queue::spsc::{Positions, RingError};
use crate::shm::layout::{CachePadded, ShmSafe};
use crate::shm::segment::Segment;
use crate::shm::typed::Placed;
use crate::sync::raw_mutex::{Acquired, Fail, RawMutex};
use std::os::fd::{AsFd, OwnedFd};

/// The shared words of one lane (see the module docs for the table).
#[derive(Debug)]
#[repr(C)]
pub(crate) struct LaneWords {
    pub(crate) head: CachePadded<AtomicU64>,
    pub(crate) tail: CachePadded<AtomicU64>,
    pub(crate) readable: CachePadded<RawEventCount>,
    pub(crate) writable: CachePadded<RawEventCount>,
    pub(crate) sending: CachePadded<Side>,
    pub(crate) receiving: CachePadded<Side>,
    /// Spill segments handed back for reuse (see `spill.rs`).
    pub(crate) spares: CachePadded<spill::Spares>,
}

/// One side's words: its lock, and its callers that are awake (in one
/// cache line: a call writes both).
#[derive(Debug)]
#[repr(C)]
pub(crate) struct Side {
    pub(crate) lock: RawMutex,
    pub(crate) awake: Awake,
    /// The sending side's last parcel id (advanced under the send lock
    /// before its datagram is sent: see `post.rs`); unused on the
    /// receiving side.
    pub(crate) parcels: AtomicU64,
}

#[allow(unsafe_code)] // the layout promise of a type placed in shared memory
// SAFETY: repr(C) over atomics only (RawEventCount, RawMutex, Side: repr(C)
// atomics; Awake: a transparent atomic; Spares: repr(C) atomics holding
// ids that are checked when used), each group padded to 128 bytes: no pointers, every bit pattern
// valid (positions are checked by the protocol, lock words by the mutex),
// all interior-mutable.
unsafe impl ShmSafe for LaneWords {
    const TAG: &'static str = "shmproc::LaneWords";
}

impl LaneWords {
    /// The positions of the byte protocol.
    fn positions(&self) -> Positions<'_> {
        Positions { head: &self.head, tail: &self.tail }
    }
}

/// How long a call may wait: the one deadline type of the channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Not at all (`try_` calls). A lock held by another sender or
    /// receiver is waited for briefly (see [`TRY_LOCK_WAIT`]), so a call
    /// in progress elsewhere is not taken for "full" or "empty".
    No,
    /// Until the call can go on.
    Forever,
    /// Until this instant at most.
    Until(Instant),
}

impl Wait {
    /// A wait of `timeout` from now (forever if that overflows `Instant`).
    pub(crate) fn after(timeout: Duration) -> Wait {
        Instant::now().checked_add(timeout).map_or(Wait::Forever, Wait::Until)
    }

    /// The deadline as an `Instant` (`Wait::No`: now).
    pub(crate) fn deadline(self) -> Option<Instant> {
        match self {
            Wait::No => Some(Instant::now()),
            Wait::Forever => None,
            Wait::Until(d) => Some(d),
        }
    }

    /// Whether the wait is over at `now`.
    pub(crate) fn passed(self, now: Instant) -> bool {
        match self {
            Wait::No => true,
            Wait::Forever => false,
            Wait::Until(d) => now >= d,
        }
    }
}

/// Why a send or receive ended without its message.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The wait ended: no room (no message) before the deadline, or at
    /// once for [`Wait::No`].
    Timeout,
    /// This side may not go on (the queue, or this pipe end, was closed).
    Closed,
    /// The queue was shut down (puts at once; gets once it is drained,
    /// or at once after an immediate shutdown). Only a queue's ends give it.
    ShutDown,
    /// Nobody is left on the other side: it was closed, or the OS confirms
    /// every process on it dead.
    Disconnected,
    /// Anything else (a corrupt lane, an OS error, a failed spill).
    Failed(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Stop {
        Stop::Failed(e)
    }
}

impl From<RingError> for Stop {
    fn from(e: RingError) -> Stop {
        Stop::Failed(e.into())
    }
}

impl Stop {
    /// What a channel's iterator yields for a receive that ended with
    /// `got`: the item, `None` (the end) for a `Timeout`, `Closed` or
    /// `Disconnected`, and any other failure as an `Err` (the iteration
    /// goes on: an item that does not decode is one item lost).
    pub(crate) fn next_item<T>(got: Result<T, Stop>) -> Option<Result<T, Error>> {
        match got {
            Ok(item) => Some(Ok(item)),
            Err(Stop::Timeout | Stop::Closed | Stop::ShutDown | Stop::Disconnected) => None,
            Err(Stop::Failed(e)) => Some(Err(e)),
        }
    }

    /// The error a caller without a special mapping reports.
    pub(crate) fn into_error(self) -> Error {
        match self {
            Stop::Timeout => Error::Timeout,
            Stop::Closed => Error::Closed,
            Stop::ShutDown => Error::ShutDown,
            Stop::Disconnected => Error::Disconnected,
            Stop::Failed(e) => e,
        }
    }
}

/// What a channel tells the engine about its ends: the flags that stop a
/// call, and how to ask the OS about the other side.
pub(crate) trait Ends {
    /// Whether a send fails once every receiver is gone even while there is
    /// room (a pipe: nobody will read it). Otherwise only a send that has
    /// to wait learns it (a queue keeps items for consumers yet to come).
    const SEND_NEEDS_RECEIVER: bool;
    /// Whether a call about to sleep asks about the other side first (a
    /// pipe: its other end's holders registered when they got the end).
    /// Otherwise the first question comes after a sleep (a queue: the
    /// processes of a side register with their first call, so one that is
    /// about to make it must be given that moment).
    const PROBE_BEFORE_SLEEP: bool;
    /// Whether receives only discard (an immediate shutdown's draining): a
    /// handle without the channel's socket then still takes an item with
    /// descriptors off the ring (it fails, and is gone for everyone).
    const DISCARDS: bool = false;
    /// Checked before each attempt to send: `Some` ends the send.
    fn send_stop(&self) -> Option<Stop>;
    /// Checked before each attempt to receive: `Some` ends the receive.
    fn recv_stop(&self) -> Option<Stop>;
    /// After an attempt found nothing: `Some` if no message can come any
    /// more (the lane is then looked at once more before it ends the call:
    /// messages sent before the flag was set happened-before it).
    fn drained_stop(&self) -> Option<Stop>;
    /// Whether the OS confirms every receiving process gone (system calls).
    fn receivers_gone(&self) -> bool;
    /// Whether the OS confirms every sending process gone (system calls).
    fn senders_gone(&self) -> bool;
}

/// A reference to a channel's ends is its ends.
impl<E: Ends> Ends for &E {
    const SEND_NEEDS_RECEIVER: bool = E::SEND_NEEDS_RECEIVER;
    const PROBE_BEFORE_SLEEP: bool = E::PROBE_BEFORE_SLEEP;
    const DISCARDS: bool = E::DISCARDS;

    fn send_stop(&self) -> Option<Stop> {
        (**self).send_stop()
    }

    fn recv_stop(&self) -> Option<Stop> {
        (**self).recv_stop()
    }

    fn drained_stop(&self) -> Option<Stop> {
        (**self).drained_stop()
    }

    fn receivers_gone(&self) -> bool {
        (**self).receivers_gone()
    }

    fn senders_gone(&self) -> bool {
        (**self).senders_gone()
    }
}

/// The longest spin of a blocked call before it sleeps: a peer on another
/// CPU answers well within it (a cache-line hand-off is 0.1 µs, a futex
/// wake about 20 µs).
pub(crate) const SPIN: Duration = Duration::from_micros(10);

/// How long a [`Wait::No`] call waits for a lock another sender or
/// receiver holds: a stopped holder must not make `try_put` block.
pub(crate) const TRY_LOCK_WAIT: Duration = Duration::from_millis(1);

/// How a wait for readiness ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Woke {
    /// The condition may hold: look again.
    Look,
    /// The OS confirms every process on the other side gone.
    Gone,
}

/// How a waiter asks about the other side: `gone()` asks the OS (system
/// calls) at each liveness wake-up, and also before the first sleep, at
/// the rate `rate` allows, if `ask_first`.
pub(crate) struct Other<'a, G: Fn() -> bool> {
    pub(crate) gone: G,
    pub(crate) rate: &'a ProbeRate,
    pub(crate) ask_first: bool,
}

/// One call of one side, counted awake from its start to its end (see
/// the module docs): on drop it leaves the count, and if it was the last
/// caller awake and `more()` says it leaves something behind that another
/// caller of its side can use, it wakes one sleeper. Also on a panic that
/// unwinds through the call, so a count is never left high by a live
/// process. `position` is the side's own position (it moves whenever a
/// caller of the side makes progress).
pub(crate) struct Call<'a, M: Fn() -> bool> {
    pub(crate) ec: &'a RawEventCount,
    pub(crate) awake: &'a Awake,
    pub(crate) position: &'a AtomicU64,
    more: M,
}

impl<'a, M: Fn() -> bool> Call<'a, M> {
    /// Counts a caller of the side that waits on `ec` in.
    #[inline]
    pub(crate) fn enter(ec: &'a RawEventCount, awake: &'a Awake, position: &'a AtomicU64, more: M) -> Self {
        awake.enter();
        Call { ec, awake, position, more }
    }
}

impl<M: Fn() -> bool> Drop for Call<'_, M> {
    #[inline]
    fn drop(&mut self) {
        // Announced sleepers first: nobody sleeps in the usual fast case,
        // and that word is read-mostly, unlike the positions `more` loads.
        if self.awake.leave() && self.ec.anyone_announced() && (self.more)() {
            self.ec.notify_one(self.awake);
        }
    }
}

/// Waits on the call's eventcount until `look()` may hold, the other side
/// is gone (see [`Other`]), or `wait` ends (`Err(Stop::Timeout)`): spin,
/// announce, leave the awake count, look again, sleep, count in again. The
/// one wait of the channels.
///
/// `spare()` says whether what changed may serve another waiter even though
/// it does not serve this one (room too small for this sender's record,
/// where a smaller one fits): a waiter about to sleep as the last one awake
/// passes a wake-up on for it, once per wait, which bounds the passes by
/// the waiters and never makes two waiters pass one back and forth.
pub(crate) fn wait_on<G: Fn() -> bool, M: Fn() -> bool>(
    call: &Call<'_, M>,
    look: impl Fn() -> bool,
    spare: impl Fn() -> bool,
    wait: Wait,
    other: &Other<'_, G>,
) -> Result<Woke, Stop> {
    let Other { gone, rate: probe, ask_first: probe_first } = other;
    let (ec, awake, position) = (call.ec, call.awake, call.position);
    if ec.spin_for_notifier(SPIN, &look) {
        return Ok(Woke::Look);
    }
    if wait.passed(Instant::now()) {
        return Err(Stop::Timeout);
    }
    // About to sleep: the other side may be long gone (asked at a bounded
    // rate, so a busy channel with pauses does not pay for it).
    if *probe_first && probe.ask(gone) {
        return Ok(Woke::Gone);
    }
    let deadline = wait.deadline();
    // Long liveness intervals from the start: see `LivenessPoll::patient`
    // (a 2 ms first interval cost an idle-gap round trip of a Pipe about
    // 10 us over two OS pipes).
    let mut poll = LivenessPoll::patient();
    let mut passed = false;
    loop {
        let key = ec.prepare();
        let last = awake.leave();
        if look() {
            awake.enter();
            ec.finish();
            return Ok(Woke::Look);
        }
        let now = Instant::now();
        if wait.passed(now) {
            awake.enter();
            ec.finish();
            return Err(Stop::Timeout);
        }
        if last && !passed && spare() {
            passed = true;
            ec.notify_one(awake);
        }
        // Relaxed: compared with itself only, as a sign of progress.
        let before = position.load(Ordering::Relaxed);
        let woke = ec.wait(key, poll.wake_at(now, deadline), awake);
        ec.finish();
        // A liveness wake-up that finds the condition true while no caller
        // of this side moved the position during the whole sleep: nobody
        // counted awake is looking (a caller killed while counted), so the
        // counts are stuck. (With progress, callers awake are serving what
        // is there, and this waiter only looks once more itself.)
        if woke == Wake::TimedOut && look() && position.load(Ordering::Relaxed) == before {
            ec.stranded(awake);
        }
        if woke == Wake::TimedOut && !wait.passed(Instant::now()) {
            if probe.ask_now(gone) {
                return Ok(Woke::Gone);
            }
            poll.slower();
        }
    }
}

/// Takes one of a lane's robust locks; `Ok(None)` if another holder keeps
/// it past a [`Wait::No`]'s brief wait. A dead holder is taken over: the
/// positions are published by single stores, so whatever it was doing is
/// either fully visible or not at all.
fn take(lock: &RawMutex, wait: Wait) -> Result<Option<LockedBy<'_>>, Stop> {
    let got = match wait {
        // The clock is read only if the lock is busy.
        Wait::No => match lock.try_lock() {
            Err(Fail::WouldBlock) => lock.lock(Some(Instant::now() + TRY_LOCK_WAIT)),
            other => other,
        },
        Wait::Forever => lock.lock(None),
        Wait::Until(d) => lock.lock(Some(d)),
    };
    held(lock, got, wait == Wait::No)
}

/// Takes one of a lane's robust locks if it is free now (a dead holder's
/// is taken over, as in [`take`]); `Ok(None)` if it is held.
#[cfg(feature = "pool")]
fn take_if_free(lock: &RawMutex) -> Result<Option<LockedBy<'_>>, Stop> {
    held(lock, lock.try_lock(), true)
}

/// What a lock attempt got: the lock, `Ok(None)` for a busy lock if the
/// caller does not wait (`no_wait`), or the error.
fn held(lock: &RawMutex, got: Result<Acquired, Fail>, no_wait: bool) -> Result<Option<LockedBy<'_>>, Stop> {
    match got {
        Ok(Acquired::Clean) => Ok(Some(LockedBy(lock))),
        Ok(Acquired::OwnerDied) => {
            lock.mark_consistent();
            Ok(Some(LockedBy(lock)))
        }
        Err(Fail::WouldBlock | Fail::Timeout) if no_wait => Ok(None),
        Err(Fail::WouldBlock | Fail::Timeout) => Err(Stop::Timeout),
        Err(Fail::Os(e)) => Err(Stop::Failed(Error::os("liveness token", e))),
        Err(Fail::Deadlock) => Err(Stop::Failed(Error::Deadlock)),
        Err(Fail::NotRecoverable) => Err(Stop::Failed(Error::Corrupt { what: "channel lock" })),
    }
}

/// What one attempt to send did.
enum Tried {
    /// The record is published.
    Sent,
    /// No room in the ring (or the lock stayed busy past a `try_`).
    NoRoom,
    /// The parcel socket had no room for the datagram (`pollable`: a poll
    /// for `POLLOUT` says when it may have; not for the per-user limit on
    /// descriptors in flight).
    SocketFull { pollable: bool },
}

/// Unlocks on drop (also when a panic unwinds through a send or receive).
struct LockedBy<'a>(&'a RawMutex);

impl Drop for LockedBy<'_> {
    fn drop(&mut self) {
        self.0.unlock();
    }
}

/// One lane as one process sees it: the words, the buffer (its capacity
/// checked against the segment once, ours from then on whatever a peer
/// writes), and this process's hints and probe rates.
#[derive(Debug)]
pub(crate) struct Lane {
    words: Placed<LaneWords>,
    buf: ShmBytes,
    /// Most messages at once (0: limited by bytes only), read once.
    max_messages: u64,
    /// The token spill segments are recorded under (the channel's
    /// creator's), so they outlive a sender that exits while they wait.
    spill_owner: Option<Token>,
    /// The receivers' and senders' positions as this process last loaded
    /// them (under the locks), so a call usually finds room or a message
    /// without loading the other side's cache line.
    head_hint: StdAtomicU64,
    tail_hint: StdAtomicU64,
    /// Sends since the last look at the clock (approximate across threads).
    sends: StdAtomicU32,
    /// Rate limits of the questions about receivers and senders.
    receivers_probe: ProbeRate,
    senders_probe: ProbeRate,
    /// The two eventcount words as the waiting service sees them, made
    /// on a first async wait.
    #[cfg(feature = "async")]
    async_words: std::sync::OnceLock<super::lane_async::LaneWordsAsync>,
    /// The channel's socket pair as this lane uses it (none for a channel
    /// opened by name): see `post.rs`.
    post: Option<LanePost>,
    /// This process's mappings of the lane's reused spill segments.
    spill_cache: spill::SpillCache,
}

impl Drop for Lane {
    /// The channel's creator process closes the spill slots on its way
    /// out, so a dropped channel keeps no spare segment (`spill.rs`).
    fn drop(&mut self) {
        // The pid first: another process makes no token on its way out.
        if let Some(owner) = self.spill_owner
            && owner.pid == crate::sys::process::pid()
            && crate::owner::token::current().is_ok_and(|me| me == owner)
        {
            spill::close_spares(&self.words.spares);
        }
    }
}

impl Lane {
    /// The lane whose words are at payload offset `words_at` of `seg` and
    /// whose `capacity`-byte buffer is at `buf_at`.
    pub(crate) fn new(seg: &Segment, words_at: usize, buf_at: usize, capacity: u64, max_messages: u64) -> Result<Lane> {
        let words: Placed<LaneWords> = Placed::new(seg, words_at)?;
        let buf = ShmBytes::in_segment(seg, buf_at, capacity)?;
        // Relaxed: a hint only (checked before use, see attach_cached).
        let head = words.head.load(Ordering::Relaxed);
        Ok(Lane {
            words,
            buf,
            max_messages,
            spill_owner: seg.creator_token(),
            head_hint: StdAtomicU64::new(head),
            tail_hint: StdAtomicU64::new(head),
            sends: StdAtomicU32::new(0),
            receivers_probe: ProbeRate::new(),
            senders_probe: ProbeRate::new(),
            #[cfg(feature = "async")]
            async_words: std::sync::OnceLock::new(),
            post: None,
            spill_cache: spill::SpillCache::default(),
        })
    }

    /// The receivers' position (it moves when a record leaves the ring).
    pub(crate) fn head_position(&self) -> u64 {
        self.words.head.load(Ordering::Acquire)
    }

    /// This lane with the channel's socket pair (see `post.rs`).
    pub(crate) fn with_post(mut self, post: Option<LanePost>) -> Lane {
        self.post = post;
        self
    }

    /// The shared words.
    #[cfg(feature = "async")]
    pub(crate) fn words(&self) -> &LaneWords {
        &self.words
    }

    /// The rate limit of questions about the receivers.
    #[cfg(feature = "async")]
    pub(crate) fn receivers_probe(&self) -> &ProbeRate {
        &self.receivers_probe
    }

    /// The rate limit of questions about the senders.
    #[cfg(feature = "async")]
    pub(crate) fn senders_probe(&self) -> &ProbeRate {
        &self.senders_probe
    }

    /// The eventcount words as the waiting service sees them, and this
    /// process's per-side liveness roles.
    #[cfg(feature = "async")]
    pub(crate) fn async_words(&self) -> &super::lane_async::LaneWordsAsync {
        self.async_words.get_or_init(|| super::lane_async::LaneWordsAsync::new(&self.words))
    }

    /// Buffer bytes.
    pub(crate) fn capacity(&self) -> u64 {
        self.buf.capacity()
    }

    /// The largest message that travels inline.
    pub(crate) fn max_message(&self) -> u64 {
        bytes::max_message(self.buf.capacity())
    }

    /// The positions as published now (at least Acquire: pairs with the
    /// Release stores of the positions).
    fn snapshot(&self) -> (u64, u64) {
        // SeqCst (no dearer than Acquire on x86-64 and AArch64): a call
        // that left its side's awake count looks with these, the later
        // half of the pair with a notifier's fence (queue/eventcount.rs).
        (self.words.head.load(Ordering::SeqCst), self.words.tail.load(Ordering::SeqCst))
    }

    /// Messages published and not yet received (lock-free look).
    pub(crate) fn len(&self) -> u64 {
        let (head, tail) = self.snapshot();
        bytes::messages_between(head, tail, self.buf.capacity())
    }

    /// Whether a message is published (lock-free look).
    pub(crate) fn has_message(&self) -> bool {
        let (head, tail) = self.snapshot();
        bytes::has_message(head, tail)
    }

    /// Whether a `len`-byte record fits now: the message limit and the
    /// bytes (lock-free look).
    pub(crate) fn has_room(&self, len: u64) -> bool {
        let (head, tail) = self.snapshot();
        let cap = self.buf.capacity();
        if self.max_messages != 0 && bytes::messages_between(head, tail, cap) >= self.max_messages {
            return false;
        }
        bytes::fits(head, tail, cap, len)
    }

    /// A call of the receiving side (see [`Call`]).
    fn receive_call(&self) -> Call<'_, impl Fn() -> bool + '_> {
        Call::enter(&self.words.readable, &self.words.receiving.awake, &self.words.head, || self.has_message())
    }

    /// Wakes every sleeper of both eventcounts (after a close).
    pub(crate) fn wake_all(&self) {
        self.words.readable.notify_all();
        self.words.writable.notify_all();
    }

    /// Waits until a message may be there, the other side is gone, or the
    /// wait ends (a pipe's `poll`).
    pub(crate) fn wait_readable<E: Ends>(&self, look: impl Fn() -> bool, wait: Wait, ends: &E) -> Result<Woke, Stop> {
        let look = || self.has_message() || look();
        if look() {
            return Ok(Woke::Look);
        }
        let other = Other { gone: || ends.senders_gone(), rate: &self.senders_probe, ask_first: E::PROBE_BEFORE_SLEEP };
        // A poll takes nothing: ending the call passes on what it saw.
        let call = self.receive_call();
        wait_on(&call, look, || false, wait, &other)
    }

    /// Whether the senders are gone, asked at the rate the lane allows
    /// (`false` between probes).
    pub(crate) fn senders_gone_lately(&self, ends: &impl Ends) -> bool {
        self.senders_probe.ask(|| ends.senders_gone())
    }

    // -- sending ---------------------------------------------------------

    /// One attempt to publish a record, under the send lock. With a
    /// parcel (`rec` then starts with 8 bytes for its id), the datagram
    /// goes first, once the ring has room for the record (see `post.rs`).
    fn try_send(&self, rec: &[u8], tag: u32, wait: Wait, parcel: Option<&[OwnedFd]>) -> Result<Tried, Stop> {
        let Some(_locked) = take(&self.words.sending.lock, wait)? else { return Ok(Tried::NoRoom) };
        if let Some(fds) = parcel {
            return self.try_send_parcel(rec, tag, fds);
        }
        let pos = self.words.positions();
        let mut core = ByteProducerCore::attach_cached(&pos, self.head_hint.load(StdOrdering::Relaxed));
        let pushed = self.push_locked(&pos, &mut core, rec, tag);
        // Stored under the lock: the next holder in this process inherits
        // the happens-before of our load (see attach_cached).
        self.head_hint.store(core.head_hint(), StdOrdering::Relaxed);
        Ok(if pushed? { Tried::Sent } else { Tried::NoRoom })
    }

    /// Pushes one record under the send lock, within the message limit:
    /// whether it fit.
    fn push_locked(
        &self,
        pos: &Positions<'_>,
        core: &mut ByteProducerCore,
        rec: &[u8],
        tag: u32,
    ) -> Result<bool, Stop> {
        // The count from the hint is an upper bound; reload only if it
        // reaches the limit.
        let max = self.max_messages;
        if max != 0 && core.messages_upper_bound() >= max && core.messages(pos, self.buf.capacity())? >= max {
            return Ok(false);
        }
        Ok(core.push(pos, &self.buf, rec, tag)?)
    }

    /// [`try_send`](Self::try_send) of a parcel, under the send lock: one
    /// attempt at the datagram, never a wait on the socket (a full socket
    /// is waited for by the caller, without the lock).
    fn try_send_parcel(&self, rec: &[u8], tag: u32, fds: &[OwnedFd]) -> Result<Tried, Stop> {
        let post = self.post.as_ref().ok_or_else(|| Stop::Failed(Error::Unsupported { what: NO_SOCKET }))?;
        // Under the send lock the room only grows (receivers free it).
        if !self.has_room(rec.len() as u64) {
            return Ok(Tried::NoRoom);
        }
        // Advanced before the datagram: a sender killed in between (or a
        // datagram the socket refused) leaves a gap, never two datagrams
        // with one id.
        let id = self.words.sending.parcels.load(Ordering::Relaxed).wrapping_add(1);
        self.words.sending.parcels.store(id, Ordering::Relaxed);
        let mut dg = [0u8; DATAGRAM];
        dg[..8].copy_from_slice(&id.to_le_bytes());
        dg[8..].copy_from_slice(&(fds.len() as u32).to_le_bytes());
        let borrowed: Vec<_> = fds.iter().map(AsFd::as_fd).collect();
        match crate::sys::parcel::send(post.send_end(), &dg, &borrowed) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(Tried::SocketFull { pollable: true }),
            Err(e) if crate::sys::parcel::is_too_many_in_flight(&e) => {
                return Ok(Tried::SocketFull { pollable: false });
            }
            Err(e) => return Err(Stop::Failed(Error::os("send descriptors", e))),
        }
        crate::sys::failpoint::hit("post.after_datagram");
        let mut r = rec.to_vec();
        r[..8].copy_from_slice(&id.to_le_bytes());
        let pos = self.words.positions();
        let mut core = ByteProducerCore::attach_cached(&pos, self.head_hint.load(StdOrdering::Relaxed));
        let pushed = core.push(&pos, &self.buf, &r, tag)?;
        self.head_hint.store(core.head_hint(), StdOrdering::Relaxed);
        // Not pushed (cannot happen: the room was there): the datagram is an
        // orphan the next parcel get discards.
        Ok(if pushed { Tried::Sent } else { Tried::NoRoom })
    }

    /// Waits, WITHOUT the send lock, for room on a full parcel socket: one
    /// bounded wait (a slice of a blocking call, or up to the deadline),
    /// after which the caller tries again from scratch. `pollable` is
    /// false for the per-user limit on descriptors in flight, which no
    /// poll reports: then it sleeps a short slice.
    fn wait_for_socket<E: Ends>(&self, pollable: bool, wait: Wait, ends: &E) -> Result<(), Stop> {
        const SLICE: Duration = Duration::from_millis(100);
        const NAP: Duration = Duration::from_millis(5);
        let slice = match wait {
            Wait::No => return Err(Stop::Timeout),
            Wait::Forever => SLICE,
            Wait::Until(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => left.min(SLICE),
                _ => return Err(Stop::Timeout),
            },
        };
        if let Some(stop) = ends.send_stop() {
            return Err(stop);
        }
        if self.receivers_probe.ask(|| ends.receivers_gone()) {
            return Err(Stop::Disconnected);
        }
        let Some(post) = self.post.as_ref() else { return Ok(()) };
        if pollable {
            crate::sys::parcel::wait_writable(post.send_end(), slice)
                .map_err(|e| Stop::Failed(Error::os("wait for room on the parcel socket", e)))?;
        } else {
            std::thread::sleep(slice.min(NAP));
        }
        Ok(())
    }

    /// Takes parcel `id`'s descriptors off the socket, under the receive
    /// lock: datagrams with smaller ids are orphans (taken and closed);
    /// a larger one, or none, means this item's datagram is gone.
    fn take_parcel(&self, id: u64) -> Result<Vec<OwnedFd>, Stop> {
        use crate::sys::parcel;
        let lost = || {
            Stop::Failed(Error::Codec {
                message: "the descriptors of this item are gone (taken by a receiver that died, or the item came \
                          to a handle without the channel's socket): the item is dropped"
                    .to_owned(),
            })
        };
        let os = |e| Stop::Failed(Error::os("receive descriptors", e));
        let post = self.post.as_ref().ok_or_else(lost)?;
        let sock = post.recv_end();
        // Each round removes a datagram; a peer that keeps sending garbage
        // cannot keep this get (and the receive lock) forever.
        for _ in 0..MAX_DISCARDS {
            let mut head = [0u8; DATAGRAM];
            let Some(n) = parcel::peek(sock, &mut head).map_err(os)? else { return Err(lost()) };
            let head_id = u64::from_le_bytes(head[..8].try_into().unwrap_or_default());
            // An id above every id issued so far (read after the peek: the
            // counter moves before its datagram is sent) was never issued.
            let forged = head_id > self.words.sending.parcels.load(Ordering::SeqCst);
            if n != DATAGRAM || head_id < id || forged {
                // An orphan (or garbage): its descriptors close here.
                drop(parcel::take(sock, &mut head, parcel::MAX_FDS).map_err(os)?);
                continue;
            }
            if head_id > id {
                return Err(lost());
            }
            let t = parcel::take(sock, &mut head, parcel::MAX_FDS).map_err(os)?.ok_or_else(lost)?;
            let count = u32::from_le_bytes(head[8..].try_into().unwrap_or_default());
            if t.truncated || t.len != DATAGRAM || t.fds.len() != count as usize {
                return Err(Stop::Failed(Error::Corrupt { what: "parcel datagram (descriptor count)" }));
            }
            return Ok(t.fds);
        }
        Err(Stop::Failed(Error::Corrupt { what: "parcel socket (a flood of datagrams that belong to no item)" }))
    }

    /// Whether a send should ask about the receivers before it tries (for
    /// channels whose sends need a receiver): every send once the last
    /// probe said "gone", else every 64th send looks at the clock and asks
    /// at the probe rate.
    fn periodic_probe(&self) -> bool {
        let n = self.sends.load(StdOrdering::Relaxed);
        self.sends.store(n.wrapping_add(1), StdOrdering::Relaxed);
        self.receivers_probe.said_dead() || (n.is_multiple_of(64) && self.receivers_probe.due())
    }

    /// Sends one record (`rec.len() <= max_message`) tagged `tag`.
    ///
    /// A call that ends as the last awake sender passes a wake-up on to a
    /// sleeping sender when it leaves room behind: after its send if
    /// another record like its own fits, and after a failure if any does.
    pub(crate) fn send_record<E: Ends>(&self, rec: &[u8], tag: u32, wait: Wait, ends: &E) -> Result<(), Stop> {
        self.send_record_with(rec, tag, wait, ends, None)
    }

    /// [`send_record`](Self::send_record), with a parcel's descriptors.
    pub(crate) fn send_record_with<E: Ends>(
        &self,
        rec: &[u8],
        tag: u32,
        wait: Wait,
        ends: &E,
        parcel: Option<&[OwnedFd]>,
    ) -> Result<(), Stop> {
        // The room a sleeping sender would need, as far as this one knows:
        // a record like its own after a send, any after a failure.
        let left = std::cell::Cell::new(0);
        let call = Call::enter(&self.words.writable, &self.words.sending.awake, &self.words.tail, || {
            self.has_room(left.get())
        });
        let sent = self.send_record_inner(&call, rec, tag, wait, ends, parcel);
        if sent.is_ok() {
            left.set(rec.len() as u64);
        }
        sent
    }

    fn send_record_inner<E: Ends, M: Fn() -> bool>(
        &self,
        call: &Call<'_, M>,
        rec: &[u8],
        tag: u32,
        wait: Wait,
        ends: &E,
        parcel: Option<&[OwnedFd]>,
    ) -> Result<(), Stop> {
        let len = rec.len() as u64;
        let mut probe = E::SEND_NEEDS_RECEIVER && self.periodic_probe();
        loop {
            if let Some(stop) = ends.send_stop() {
                return Err(stop);
            }
            if probe && self.receivers_probe.ask_now(|| ends.receivers_gone()) {
                return Err(Stop::Disconnected);
            }
            match self.try_send(rec, tag, wait, parcel)? {
                Tried::Sent => {
                    self.words.readable.notify_one_from_here(&self.words.receiving.awake);
                    return Ok(());
                }
                Tried::SocketFull { pollable } => {
                    self.wait_for_socket(pollable, wait, ends)?;
                    continue;
                }
                Tried::NoRoom => {}
            }
            if wait == Wait::No {
                if self.receivers_probe.ask(|| ends.receivers_gone()) && !self.has_room(len) {
                    return Err(Stop::Disconnected);
                }
                return Err(Stop::Timeout);
            }
            let look = || self.has_room(len) || ends.send_stop().is_some();
            // Room too small for this record may fit a smaller one.
            let spare = || len > 0 && self.has_room(0);
            let other =
                Other { gone: || ends.receivers_gone(), rate: &self.receivers_probe, ask_first: E::PROBE_BEFORE_SLEEP };
            match wait_on(call, look, spare, wait, &other)? {
                Woke::Look => probe = false,
                Woke::Gone if E::SEND_NEEDS_RECEIVER || !self.has_room(len) => return Err(Stop::Disconnected),
                Woke::Gone => probe = false,
            }
        }
    }

    /// Publishes plain inline records, `buf[from..ends[0]]`, then
    /// `buf[ends[0]..ends[1]]` and so on (each at most
    /// [`max_message`](Self::max_message) bytes), in order under one hold
    /// of the send lock and with one wake-up, never waiting for room: the
    /// number published, which stops at the first record that does not fit
    /// (0 also when another sender keeps the lock past a `try_`'s brief
    /// wait).
    #[cfg(feature = "pool")]
    pub(crate) fn send_many<E: Ends>(&self, buf: &[u8], from: usize, ends: &[usize], stops: &E) -> Result<usize, Stop> {
        if let Some(stop) = stops.send_stop() {
            return Err(stop);
        }
        let Some(locked) = take(&self.words.sending.lock, Wait::No)? else { return Ok(0) };
        let pos = self.words.positions();
        let mut core = ByteProducerCore::attach_cached(&pos, self.head_hint.load(StdOrdering::Relaxed));
        let mut sent = 0;
        let mut start = from;
        let result = (|| -> Result<(), Stop> {
            for &end in ends {
                let rec = buf
                    .get(start..end)
                    .ok_or_else(|| Stop::Failed(Error::InvalidArgument { what: "record bounds" }))?;
                if rec.len() as u64 > self.max_message() {
                    let max = self.max_message() as usize;
                    return Err(Stop::Failed(Error::TooLarge { len: rec.len(), max }));
                }
                if !self.push_locked(&pos, &mut core, rec, TAG_INLINE)? {
                    return Ok(());
                }
                sent += 1;
                start = end;
            }
            Ok(())
        })();
        // Stored under the lock, as in `try_send`.
        self.head_hint.store(core.head_hint(), StdOrdering::Relaxed);
        drop(locked);
        if sent > 0 {
            self.words.readable.notify_one_from_here(&self.words.receiving.awake);
            return Ok(sent); // an error recurs at the next send
        }
        result.map(|()| 0)
    }

    /// Sends `msg` whole: inline if it fits, else through a spill segment
    /// whose reference is the record.
    pub(crate) fn send_message<E: Ends>(&self, msg: &[u8], wait: Wait, ends: &E) -> Result<(), Stop> {
        if msg.len() as u64 <= self.max_message() {
            return self.send_record(msg, TAG_INLINE, wait, ends);
        }
        if let Some(stop) = ends.send_stop() {
            return Err(stop); // no spill segment for a send that cannot happen
        }
        let reference = self.spill_out(msg)?;
        self.send_record(&reference, TAG_SPILL, wait, ends).inspect_err(|_| spill::discard(&reference))
    }

    /// Sends `msg` with the descriptors its encoding collected: as
    /// [`send_message`](Self::send_message) without any, else as a parcel
    /// (see `post.rs`).
    pub(crate) fn send_parcel<E: Ends>(&self, msg: &[u8], fds: &[OwnedFd], wait: Wait, ends: &E) -> Result<(), Stop> {
        if fds.is_empty() {
            return self.send_message(msg, wait, ends);
        }
        self.check_parcel(fds, ends)?;
        let mut rec = vec![0u8; 8];
        if msg.len() as u64 + 8 <= self.max_message() {
            rec.extend_from_slice(msg);
            return self.send_record_with(&rec, TAG_INLINE | PARCEL, wait, ends, Some(fds));
        }
        let reference = self.spill_out(msg)?;
        rec.extend_from_slice(&reference);
        self.send_record_with(&rec, TAG_SPILL | PARCEL, wait, ends, Some(fds))
            .inspect_err(|_| spill::discard(&reference))
    }

    /// Writes `msg` into a spill segment, reused if the lane has a spare
    /// (`spill.rs`): the reference to send.
    pub(crate) fn spill_out(&self, msg: &[u8]) -> Result<Vec<u8>> {
        match self.spill_owner {
            Some(owner) => spill::reuse_out(&self.words.spares, &self.spill_cache, msg, owner),
            None => spill::spill_out(msg, None),
        }
    }

    /// Reads the message a spill reference names into `out`, handing a
    /// reused segment back to the lane.
    pub(crate) fn spill_in(&self, reference: &[u8], out: &mut Vec<u8>) -> Result<()> {
        match self.spill_owner {
            Some(owner) => spill::reuse_in(&self.words.spares, &self.spill_cache, owner, reference, out),
            None => spill::spill_in(reference, out),
        }
    }

    /// Whether a parcel of `fds` can be sent at all (a socket, not too
    /// many descriptors, the channel open).
    pub(crate) fn check_parcel<E: Ends>(&self, fds: &[OwnedFd], ends: &E) -> Result<(), Stop> {
        if self.post.is_none() {
            return Err(Stop::Failed(Error::Unsupported { what: NO_SOCKET }));
        }
        if fds.len() > crate::sys::parcel::MAX_FDS {
            return Err(Stop::Failed(Error::InvalidArgument { what: "more than 253 descriptors in one item" }));
        }
        match ends.send_stop() {
            Some(stop) => Err(stop),
            None => Ok(()),
        }
    }

    /// The token spill segments of this lane are recorded under, for
    /// callers that spill records themselves (the pool, async sends).
    #[cfg(any(feature = "pool", feature = "async"))]
    pub(crate) fn spill_owner(&self) -> Option<Token> {
        self.spill_owner
    }

    // -- receiving -------------------------------------------------------

    /// One attempt to take a record into `out`, under the receive lock:
    /// its tag, or `None`. `hook` sees the bytes before the record leaves
    /// the ring (a receiver killed in between leaves it for the next).
    /// A parcel record's descriptors go to `fds` (taken under the lock,
    /// after the record left the ring: see `post.rs`).
    fn try_recv(
        &self,
        out: &mut Vec<u8>,
        wait: Wait,
        hook: &mut dyn FnMut(&[u8]),
        fds: &mut Vec<OwnedFd>,
        discards: bool,
    ) -> Result<Option<u32>, Stop> {
        let Some(_locked) = take(&self.words.receiving.lock, wait)? else { return Ok(None) };
        let pos = self.words.positions();
        let mut core = ByteConsumerCore::attach_cached(&pos, self.tail_hint.load(StdOrdering::Relaxed));
        if self.post.is_none() && !discards {
            // Without the socket a parcel record cannot be received here:
            // it stays for a handle that has the socket.
            let head = core.peek(&pos, &self.buf);
            self.tail_hint.store(core.tail_hint(), StdOrdering::Relaxed);
            if head?.is_some_and(|span| span.tag & PARCEL != 0) {
                return Err(Stop::Failed(Error::Unsupported { what: NO_SOCKET_RECV }));
            }
        }
        // The hook sees the record without a parcel's id (a pool worker
        // reads its job id from the first bytes).
        let got = core.pop_into_then(&pos, &self.buf, out, |bytes, tag| {
            hook(if tag & PARCEL != 0 { bytes.get(8..).unwrap_or_default() } else { bytes });
        })?;
        self.tail_hint.store(core.tail_hint(), StdOrdering::Relaxed);
        match got {
            Some(tag) if tag & PARCEL != 0 => {
                let Some(id) = out.get(..8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes) else {
                    return Err(Stop::Failed(Error::Corrupt { what: "parcel record" }));
                };
                out.drain(..8);
                let tag = tag & !PARCEL;
                // A receiver killed here leaves its datagram an orphan.
                crate::sys::failpoint::hit("post.before_take");
                match self.take_parcel(id) {
                    Ok(got) => *fds = got,
                    Err(e) => {
                        if tag == TAG_SPILL {
                            spill::discard(out);
                        }
                        // The record left the ring: its room may serve a
                        // waiting sender.
                        self.words.writable.notify_one_from_here(&self.words.sending.awake);
                        return Err(e);
                    }
                }
                Ok(Some(tag))
            }
            other => Ok(other),
        }
    }

    /// [`try_recv`](Self::try_recv), waking a blocked sender on success.
    fn take_record(
        &self,
        out: &mut Vec<u8>,
        wait: Wait,
        hook: &mut dyn FnMut(&[u8]),
        fds: &mut Vec<OwnedFd>,
        discards: bool,
    ) -> Result<Option<u32>, Stop> {
        let got = self.try_recv(out, wait, hook, fds, discards)?;
        if got.is_some() {
            self.words.writable.notify_one_from_here(&self.words.sending.awake);
        }
        Ok(got)
    }

    /// Receives one record into `out`: its tag. `hook` runs on the record's
    /// bytes inside the receive critical section. A call that ends as the
    /// last awake receiver passes a wake-up on to a sleeping receiver when
    /// a message is left (after ours, or one this call did not take).
    pub(crate) fn recv_record<E: Ends>(
        &self,
        out: &mut Vec<u8>,
        wait: Wait,
        ends: &E,
        hook: &mut dyn FnMut(&[u8]),
        fds: &mut Vec<OwnedFd>,
    ) -> Result<u32, Stop> {
        let call = self.receive_call();
        self.recv_record_inner(&call, out, wait, ends, hook, fds)
    }

    fn recv_record_inner<E: Ends, M: Fn() -> bool>(
        &self,
        call: &Call<'_, M>,
        out: &mut Vec<u8>,
        wait: Wait,
        ends: &E,
        hook: &mut dyn FnMut(&[u8]),
        fds: &mut Vec<OwnedFd>,
    ) -> Result<u32, Stop> {
        loop {
            if let Some(stop) = ends.recv_stop() {
                return Err(stop);
            }
            if let Some(tag) = self.take_record(out, wait, hook, fds, E::DISCARDS)? {
                return Ok(tag);
            }
            if let Some(stop) = ends.drained_stop() {
                // Messages sent before the flag happened-before it.
                return self.take_record(out, wait, hook, fds, E::DISCARDS)?.ok_or(stop);
            }
            if wait == Wait::No {
                if self.senders_probe.ask(|| ends.senders_gone()) && !self.has_message() {
                    return Err(Stop::Disconnected);
                }
                return Err(Stop::Timeout);
            }
            let look = || self.has_message() || ends.recv_stop().is_some() || ends.drained_stop().is_some();
            let other =
                Other { gone: || ends.senders_gone(), rate: &self.senders_probe, ask_first: E::PROBE_BEFORE_SLEEP };
            if wait_on(call, look, || false, wait, &other)? == Woke::Gone {
                // Dead first, then empty: a sender may publish and die.
                return self.take_record(out, wait, hook, fds, E::DISCARDS)?.ok_or_else(|| Stop::Disconnected);
            }
        }
    }

    /// Takes up to `max` more plain inline records (no spill reference, no
    /// parcel) under one hold of the receive lock, if the lock is free, and
    /// never waits: each record's bytes are appended to `out` and its end
    /// offset in `out` pushed to `ends`. `take` sees each record's bytes
    /// before it leaves the ring, as a hook of
    /// [`recv_record`](Self::recv_record) does, and says whether to take
    /// it. Stops at the first record not taken or of another kind, leaving
    /// it in the ring. The number taken.
    #[cfg(feature = "pool")]
    pub(crate) fn recv_more(
        &self,
        out: &mut Vec<u8>,
        ends: &mut Vec<usize>,
        max: usize,
        take: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<usize, Stop> {
        if max == 0 {
            return Ok(0);
        }
        let Some(locked) = take_if_free(&self.words.receiving.lock)? else { return Ok(0) };
        let pos = self.words.positions();
        let mut core = ByteConsumerCore::attach_cached(&pos, self.tail_hint.load(StdOrdering::Relaxed));
        let mut taken = 0;
        let result = loop {
            if taken == max {
                break Ok(());
            }
            match core.pop_append_then(&pos, &self.buf, out, |bytes, tag| tag == TAG_INLINE && take(bytes)) {
                Ok(Some(_)) => {
                    taken += 1;
                    ends.push(out.len());
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        self.tail_hint.store(core.tail_hint(), StdOrdering::Relaxed);
        drop(locked);
        if taken > 0 {
            self.words.writable.notify_one_from_here(&self.words.sending.awake);
            return Ok(taken); // an error recurs at the next receive
        }
        result.map(|()| 0).map_err(Stop::from)
    }

    /// Receives one message into `out`, replacing a spill reference by the
    /// message it names; the descriptors that came with it (a parcel) go
    /// to `fds`.
    pub(crate) fn recv_message(
        &self,
        out: &mut Vec<u8>,
        wait: Wait,
        ends: &impl Ends,
        hook: &mut dyn FnMut(&[u8]),
        fds: &mut Vec<OwnedFd>,
    ) -> Result<(), Stop> {
        match self.recv_record(out, wait, ends, hook, fds)? {
            TAG_INLINE => Ok(()),
            TAG_SPILL => {
                let reference = std::mem::take(out);
                self.spill_in(&reference, out).map_err(Stop::Failed)
            }
            _ => Err(Stop::Failed(Error::Corrupt { what: "channel record tag" })),
        }
    }
}

#[cfg(all(test, not(shmproc_loom)))]
mod tests {
    use super::*;

    #[test]
    fn layout_is_stable() {
        assert_eq!(core::mem::size_of::<LaneWords>(), 7 * 128);
        assert_eq!(core::mem::align_of::<LaneWords>(), 128);
    }

    #[test]
    fn wait_deadlines() {
        assert!(Wait::Forever.deadline().is_none());
        assert!(Wait::No.deadline().is_some_and(|d| d <= Instant::now()));
        assert!(Wait::No.passed(Instant::now()));
        assert!(!Wait::Forever.passed(Instant::now()));
        assert_eq!(Wait::after(Duration::MAX), Wait::Forever, "an overflowing timeout waits forever");
        let w = Wait::after(Duration::from_secs(3600));
        assert!(matches!(w, Wait::Until(_)) && !w.passed(Instant::now()));
    }
}
