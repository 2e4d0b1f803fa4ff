//! `RawEvent`, `RawCondvar` and `RawBarrier`: the other futex state
//! machines.
//!
//! Event: `flag` (0 clear, 1 set) is the futex word; `waiters` lets `set`
//! skip the wake syscall (SeqCst Dekker pair, as in `raw_semaphore.rs`). A
//! setter that dies before `set` leaves waiters to their timeouts.
//!
//! Condvar: `seq` is the futex word; `state` packs two counts, `waiting`
//! (waiters counted and not yet granted a wake-up, low half) and `signals`
//! (wake-ups granted and not yet taken, high half), changed together by one
//! CAS. A waiter counts itself while it still holds the mutex
//! ([`RawCondvar::prepare`]); `notify(n)` moves `k = min(n, waiting)` from
//! `waiting` to `signals`, then bumps `seq` and wakes `k` sleepers; a
//! waiter returns only by taking one signal, so `notify(n)` ends at most
//! `n` waits (Python's `notify(n)`), and `notify` with nobody counted costs
//! no syscall. See [`RawCondvar`] for the state table.
//!
//! Barrier: `generation` is the futex word, bumped when the last party arrives.
//! `arrived` counts arrivals in the current generation; `broken` is 0, or
//! the pid of a dead party + 1, or `BROKEN_OTHER` (timeout, abort). Parties
//! register their process (owner id and nonce) in `members`, so a waiting
//! party can find a member that died and break the barrier instead of
//! waiting for an arrival that will never come.
#![allow(unsafe_code)]

use std::time::Instant;

use crate::loom::atomic::{AtomicU32, AtomicU64, Ordering};
use crate::loom::{futex, owner};
use crate::owner::registry::{BARRIER_ENTRIES, Dead, RawRegistry};
use crate::shm::layout::{CachePadded, ShmSafe};
use crate::sync::waiters::Waiters;

/// An event's state.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct RawEvent {
    pub(crate) flag: AtomicU32,
    pub(crate) waiters: Waiters,
}

// SAFETY: repr(C) over two atomics: no pointers, any bits valid (any
// non-zero flag reads as set), interior-mutable.
unsafe impl ShmSafe for RawEvent {
    const TAG: &'static str = "shmproc::Event";
}

/// A condition variable's state.
///
/// `state` = `signals << 32 | waiting`:
///
/// | event | `waiting` | `signals` | `seq` |
/// |---|---|---|---|
/// | a waiter prepares (mutex held) | +1 | | |
/// | `notify(n)`, `k = min(n, waiting)` | -k | +k | +1 if k > 0 (then wake k) |
/// | a waiter takes a signal (woken) | | -1 | |
/// | a waiter's deadline passes, no signal | -1 | | |
/// | a waiter's deadline passes, a signal there | | -1 (woken, not timed out) | |
/// | a counted waiter dies | stays counted | | |
///
/// Every waiter in its loop is counted in `waiting` or holds a claim on
/// one of `signals`: `waiting + signals` = live waiters + dead ones still
/// counted. A dead waiter only over-counts: a later notify may grant it a
/// signal that some later waiter then takes (one spurious wake-up, never a
/// lost one). Signals are not tied to a waiter: a waiter that starts to
/// wait after a notify may take that notify's signal in place of an
/// earlier waiter, which then stays counted (the number woken is exact).
/// Both halves saturate instead of wrapping, as a peer may have written
/// any bits.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct RawCondvar {
    /// The futex word: bumped by every notify that granted a signal.
    pub(crate) seq: AtomicU32,
    /// Unused (keeps `state` at offset 8 without implicit padding).
    pub(crate) _reserved: AtomicU32,
    /// `signals << 32 | waiting`.
    pub(crate) state: AtomicU64,
}

// SAFETY: repr(C) over three atomics with no implicit padding: no
// pointers, any bits valid (garbage counts only cause spurious wake-ups
// or let waiters sleep to their timeouts), interior-mutable.
unsafe impl ShmSafe for RawCondvar {
    // "/2": the layout with counted signals (the first one had a bare
    // sequence word and a sleeper count), so that no build opens the
    // other's segment.
    const TAG: &'static str = "shmproc::Condvar/2";
}

// (Loom's atomics are larger than the real ones.)
#[cfg(not(shmproc_loom))]
const _: () = assert!(core::mem::size_of::<RawCondvar>() == 16 && core::mem::offset_of!(RawCondvar, state) == 8);

/// How a condition-variable wait ended ([`RawCondvar::sleep`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CondvarWake {
    /// It took a notify's signal.
    Notified,
    /// The deadline passed with no signal for it.
    TimedOut,
}

/// Why [`RawBarrier::wait`] returned without the barrier tripping.
#[derive(Debug)]
pub(crate) enum BarrierStop {
    /// This waiter's deadline passed; it broke the barrier for everyone.
    TimedOut,
    /// The barrier is broken: `Some(pid)` of a dead party, or `None`.
    Broken(Option<u32>),
    /// This party was the last; its run of the action failed, which broke
    /// the barrier.
    Action(ActionFailed),
}

/// How a party's arrival at a barrier went ([`RawBarrier::arrive`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arrival {
    /// It was the last party: the barrier tripped; its arrival index.
    Tripped(usize),
    /// Others are still to come: wait.
    Waiting(Waiting),
}

/// A party waiting at a barrier: the generation and reset count it arrived
/// in, and its arrival index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Waiting {
    generation: u32,
    resets: u32,
    index: usize,
}

/// A barrier's state.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct RawBarrier {
    pub(crate) generation: CachePadded<AtomicU32>,
    pub(crate) arrived: AtomicU32,
    pub(crate) parties: AtomicU32,
    pub(crate) broken: AtomicU32,
    pub(crate) resets: AtomicU32,
    /// The default timeout of a wait without one, in nanoseconds;
    /// `NO_TIMEOUT`: none. Written by the creator only.
    pub(crate) timeout_ns: AtomicU64,
    /// Non-zero if `action` names the barrier's action. Written by the
    /// creator only.
    pub(crate) has_action: AtomicU64,
    /// The action, as the words of a function reference (validated by the
    /// process that runs it). Written by the creator only.
    pub(crate) action: [AtomicU64; 7],
    /// The processes that took part (their deaths break the barrier).
    pub(crate) members: RawRegistry<BARRIER_ENTRIES>,
}

// SAFETY: repr(C) over atomics and a registry (a repr(C) table of
// atomics): no pointers, any bits valid (member ids are only compared and
// probed; the action words are only a candidate reference, checked
// against this executable before use), interior-mutable.
unsafe impl ShmSafe for RawBarrier {
    // "/2": the layout with a default timeout and an action.
    const TAG: &'static str = "shmproc::Barrier/2";
}

/// `timeout_ns` of a barrier without a default timeout.
pub(crate) const NO_TIMEOUT: u64 = u64::MAX;

/// Why the last party's action failed ([`RawBarrier::wait`]'s `action`):
/// it broke the barrier.
#[derive(Debug)]
pub(crate) enum ActionFailed {
    /// The action panicked; the message.
    #[cfg_attr(not(feature = "serde"), allow(dead_code))] // actions need `serde`
    Panicked(String),
    /// The action could not be found in this process (another executable).
    Unresolved(std::io::Error),
}

impl RawEvent {
    #[cfg(shmproc_loom)]
    pub(crate) fn new() -> RawEvent {
        RawEvent { flag: AtomicU32::new(0), waiters: Waiters::new() }
    }

    /// Sets the flag and wakes every waiter.
    pub(crate) fn set(&self) {
        // SeqCst: the notifier's half of the pair with `wait` (see
        // `waiters.rs`).
        self.flag.store(1, Ordering::SeqCst);
        if self.waiters.any_after_seqcst() {
            futex::wake_all(&self.flag);
        }
    }

    /// Clears the flag.
    pub(crate) fn clear(&self) {
        self.flag.store(0, Ordering::Relaxed);
    }

    /// Whether the flag is set.
    pub(crate) fn is_set(&self) -> bool {
        // Acquire: pairs with the SeqCst store in `set`.
        self.flag.load(Ordering::Acquire) != 0
    }

    /// Waits until set or `deadline`; returns the flag.
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> bool {
        if crate::loom::spin_until(|| self.is_set()) {
            return true;
        }
        loop {
            if self.is_set() {
                return true;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
            // The waiter's half of the pair with `set`; the kernel looks
            // at the flag once more before it sleeps.
            self.waiters.announce();
            let w = futex::wait(&self.flag, 0, deadline);
            self.waiters.withdraw();
            if w == futex::Wake::TimedOut {
                return self.is_set();
            }
        }
    }
}

#[cfg(feature = "async")]
impl RawEvent {
    /// The async twin of [`wait`](RawEvent::wait) without deadline: the
    /// same steps up to the sleep (announce, look once more), then the
    /// waiting service watches `flag` (`source` makes this event's `flag`
    /// as the service sees it, once, if the call must wait). Errors: the
    /// waiting service failed.
    pub(crate) async fn wait_async(
        &self,
        source: impl FnOnce() -> std::sync::Arc<dyn crate::watch::AsyncWord>,
    ) -> std::io::Result<()> {
        if self.is_set() {
            return Ok(());
        }
        let source = source();
        loop {
            if self.is_set() {
                return Ok(());
            }
            // The waiter's half of the pair with `set`; the service looks
            // at the flag once more (SeqCst) before it sleeps. Withdrawn
            // when dropped, also if this future is dropped while it sleeps.
            let announced = self.waiters.announced();
            crate::watch::word_changed(&source, 0, None).await?;
            drop(announced);
        }
    }
}

/// The `waiting` half of a condvar's `state`.
fn waiting_of(state: u64) -> u32 {
    state as u32
}

/// The `signals` half of a condvar's `state`.
fn signals_of(state: u64) -> u32 {
    (state >> 32) as u32
}

/// A condvar's `state` from its halves.
fn pack(waiting: u32, signals: u32) -> u64 {
    u64::from(signals) << 32 | u64::from(waiting)
}

impl RawCondvar {
    #[cfg(shmproc_loom)]
    pub(crate) fn new() -> RawCondvar {
        RawCondvar { seq: AtomicU32::new(0), _reserved: AtomicU32::new(0), state: AtomicU64::new(0) }
    }

    /// First half of a wait, called while the mutex is still held: counts
    /// the caller as waiting, so a notify that follows (it must take the
    /// mutex to change the predicate, or comes after our unlock) grants it
    /// a signal.
    pub(crate) fn prepare(&self) {
        // SeqCst: ordered before the notifier's CAS of a notify that
        // follows our unlock (the mutex orders them too; SeqCst keeps the
        // loom model simple).
        let _ = self.state.fetch_update(Ordering::SeqCst, Ordering::Relaxed, |s| {
            Some(pack(waiting_of(s).saturating_add(1), signals_of(s)))
        });
    }

    /// Takes one signal if there is one: whether it did.
    fn take_signal(&self) -> bool {
        // SeqCst: pairs with the CAS of `notify` that granted the signal.
        self.state
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |s| {
                (signals_of(s) > 0).then(|| pack(waiting_of(s), signals_of(s) - 1))
            })
            .is_ok()
    }

    /// At the deadline: takes a signal if one is there (then the wait was
    /// notified after all), else stops counting the caller as waiting.
    fn take_or_leave(&self) -> CondvarWake {
        let mut woken = false;
        let _ = self.state.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |s| {
            woken = signals_of(s) > 0;
            Some(if woken {
                pack(waiting_of(s), signals_of(s) - 1)
            } else {
                pack(waiting_of(s).saturating_sub(1), signals_of(s))
            })
        });
        if woken { CondvarWake::Notified } else { CondvarWake::TimedOut }
    }

    /// Second half, after the mutex was released: sleeps until this waiter
    /// takes a signal, or until `deadline`.
    pub(crate) fn sleep(&self, deadline: Option<Instant>) -> CondvarWake {
        loop {
            // SeqCst, and before looking at the signals: a notify that
            // granted its signal after our look bumps `seq` after its CAS,
            // so the futex wait below sees a changed word and we look
            // again (pairs with the SeqCst bump in `notify`).
            let seq = self.seq.load(Ordering::SeqCst);
            if self.take_signal() {
                return CondvarWake::Notified;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return self.take_or_leave();
            }
            if crate::loom::spin_until(|| self.seq.load(Ordering::Relaxed) != seq) {
                continue;
            }
            // Whatever the wake (a notify, another waiter's signal taken
            // first, a timeout, a signal of the OS): look again above.
            let _ = futex::wait(&self.seq, seq, deadline);
        }
    }

    /// Grants up to `n` of the counted waiters a signal and wakes as many
    /// sleepers; returns how many were granted.
    pub(crate) fn notify(&self, n: u32) -> u32 {
        if n == 0 {
            return 0;
        }
        let mut k = 0;
        // SeqCst: pairs with the waiters' `take_signal` and `prepare`.
        let _ = self.state.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |s| {
            k = n.min(waiting_of(s));
            (k > 0).then(|| pack(waiting_of(s) - k, signals_of(s).saturating_add(k)))
        });
        if k > 0 {
            // SeqCst: after the grant, for the waiters' `seq` load (see
            // `sleep`).
            self.seq.fetch_add(1, Ordering::SeqCst);
            futex::wake(&self.seq, k);
        }
        k
    }

    /// Waiters counted and not yet granted a signal (for models).
    #[cfg(shmproc_loom)]
    pub(crate) fn waiting(&self) -> u32 {
        waiting_of(self.state.load(Ordering::Relaxed))
    }

    /// Signals granted and not yet taken (for models).
    #[cfg(shmproc_loom)]
    pub(crate) fn signals(&self) -> u32 {
        signals_of(self.state.load(Ordering::Relaxed))
    }
}

/// `broken` value for a timeout or an abort.
pub(crate) const BROKEN_OTHER: u32 = u32::MAX;

impl RawBarrier {
    #[cfg(shmproc_loom)]
    pub(crate) fn new(parties: u32) -> Box<RawBarrier> {
        Box::new(RawBarrier {
            generation: CachePadded::new(AtomicU32::new(0)),
            arrived: AtomicU32::new(0),
            parties: AtomicU32::new(parties),
            broken: AtomicU32::new(0),
            resets: AtomicU32::new(0),
            timeout_ns: AtomicU64::new(NO_TIMEOUT),
            has_action: AtomicU64::new(0),
            action: std::array::from_fn(|_| AtomicU64::new(0)),
            members: RawRegistry::default(),
        })
    }

    /// Registers the calling process, so that its death breaks the barrier
    /// (beyond [`BARRIER_ENTRIES`] processes, the rest are not tracked).
    pub(crate) fn register(&self) -> std::io::Result<()> {
        self.members.register(Dead::Keep).map(drop)
    }

    /// The pid of a registered member that is dead, if any.
    fn dead_member(&self) -> Option<u32> {
        self.members.first_dead()
    }

    /// Why the barrier is broken: `Some(pid)` of a dead party, or `None`.
    pub(crate) fn broken_by(&self) -> Option<Option<u32>> {
        match self.broken.load(Ordering::Acquire) {
            0 => None,
            BROKEN_OTHER => Some(None),
            pid_plus_one => Some(Some(pid_plus_one - 1)),
        }
    }

    /// Breaks the barrier with `code` (kept if already broken) and wakes all.
    pub(crate) fn break_with(&self, code: u32) {
        let _ = self.broken.compare_exchange(0, code, Ordering::AcqRel, Ordering::Relaxed);
        // Bump the generation word so sleepers wake and see `broken`.
        self.generation.fetch_add(1, Ordering::Release);
        futex::wake_all(&self.generation);
    }

    /// Waits for all parties; `Ok(arrival index)`, or why not: this
    /// waiter's deadline passed (it broke the barrier), or the barrier is
    /// broken (`Some(dead pid)`, or `None`: a timeout elsewhere, an abort,
    /// a reset).
    pub(crate) fn wait(
        &self,
        deadline: Option<Instant>,
        action: impl FnOnce() -> Result<(), ActionFailed>,
    ) -> Result<usize, BarrierStop> {
        let at = match self.arrive(action)? {
            Arrival::Tripped(index) => return Ok(index),
            Arrival::Waiting(at) => at,
        };
        crate::loom::spin_until(|| self.generation.load(Ordering::Acquire) != at.generation);
        let mut poll = owner::LivenessPoll::new();
        loop {
            if let Some(done) = self.passed(&at) {
                return done;
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                self.break_with(BROKEN_OTHER);
                return Err(BarrierStop::TimedOut);
            }
            let wake_at = poll.wake_at(now, deadline);
            let w = futex::wait(&self.generation, at.generation, wake_at);
            if let Some(done) = self.after_sleep(w, &at, &mut poll) {
                return done;
            }
        }
    }

    /// A party arrives: the last one runs `action` (the others still
    /// wait), then trips the barrier (`Tripped` with its index); the
    /// others wait (`Waiting`); `Err` if it is broken already, or the
    /// action failed (which breaks it).
    pub(crate) fn arrive(&self, action: impl FnOnce() -> Result<(), ActionFailed>) -> Result<Arrival, BarrierStop> {
        // Acquire: pairs with the Release bump of the last arrival.
        let generation = self.generation.load(Ordering::Acquire);
        let resets = self.resets.load(Ordering::Acquire);
        if let Some(why) = self.broken_by() {
            return Err(BarrierStop::Broken(why));
        }
        let parties = self.parties.load(Ordering::Relaxed).max(1);
        let index = self.arrived.fetch_add(1, Ordering::AcqRel);
        if index + 1 >= parties {
            // All arrived, none released yet (the generation is unchanged):
            // the action runs here, once per trip.
            let failed = action().err();
            // A `reset` while the action ran started a new round (it
            // bumped the generation and cleared `arrived`): this trip is
            // void, and the new round's arrivals must stay counted.
            let same_round = || {
                self.generation.load(Ordering::Acquire) == generation && self.resets.load(Ordering::Acquire) == resets
            };
            if let Some(failed) = failed {
                if same_round() {
                    self.arrived.store(0, Ordering::Relaxed);
                    self.break_with(BROKEN_OTHER);
                }
                return Err(BarrierStop::Action(failed));
            }
            if !same_round() {
                return Err(BarrierStop::Broken(None));
            }
            self.arrived.store(0, Ordering::Relaxed);
            if let Some(why) = self.broken_by() {
                // A waiter timed out (or someone aborted) meanwhile.
                return Err(BarrierStop::Broken(why));
            }
            // Release: pairs with the Acquire loads of the waiters. From
            // the generation read at arrival only: a reset since then
            // keeps its round.
            if self
                .generation
                .compare_exchange(generation, generation.wrapping_add(1), Ordering::Release, Ordering::Relaxed)
                .is_err()
            {
                return Err(BarrierStop::Broken(None));
            }
            futex::wake_all(&self.generation);
            return Ok(Arrival::Tripped(index as usize));
        }
        Ok(Arrival::Waiting(Waiting { generation, resets, index: index as usize }))
    }

    /// Whether the generation `at` waits in has ended: `Some` outcome
    /// (tripped, or reset meanwhile) or `None` (wait on).
    pub(crate) fn passed(&self, at: &Waiting) -> Option<Result<usize, BarrierStop>> {
        if self.generation.load(Ordering::Acquire) != at.generation && self.broken_by().is_none() {
            if self.resets.load(Ordering::Acquire) != at.resets {
                return Some(Err(BarrierStop::Broken(None)));
            }
            return Some(Ok(at.index));
        }
        None
    }

    /// After a sleep of `at` that ended `w`: `Some` outcome (broken,
    /// tripped or reset, or a dead member found at a liveness wake-up,
    /// which breaks the barrier) or `None` (look again).
    pub(crate) fn after_sleep(
        &self,
        w: futex::Wake,
        at: &Waiting,
        poll: &mut owner::LivenessPoll,
    ) -> Option<Result<usize, BarrierStop>> {
        if let Some(why) = self.broken_by() {
            return Some(Err(BarrierStop::Broken(why)));
        }
        if self.generation.load(Ordering::Acquire) != at.generation {
            if self.resets.load(Ordering::Acquire) != at.resets {
                return Some(Err(BarrierStop::Broken(None)));
            }
            return Some(Ok(at.index));
        }
        if w == futex::Wake::TimedOut && owner::checks_liveness() {
            if let Some(pid) = self.dead_member() {
                // The barrier may have tripped (and that party exited)
                // between our generation check and the death check.
                if self.generation.load(Ordering::Acquire) != at.generation && self.broken_by().is_none() {
                    return None;
                }
                self.break_with(pid.saturating_add(1));
                return Some(Err(BarrierStop::Broken(self.broken_by().flatten())));
            }
            poll.slower();
        }
        None
    }

    /// Puts the barrier back in service; dead members are forgotten.
    pub(crate) fn reset(&self) {
        self.members.forget_dead();
        self.arrived.store(0, Ordering::Relaxed);
        self.broken.store(0, Ordering::Release);
        self.resets.fetch_add(1, Ordering::Release);
        self.generation.fetch_add(1, Ordering::Release);
        futex::wake_all(&self.generation);
    }
}

#[cfg(feature = "async")]
impl RawBarrier {
    /// The async twin of [`wait`](RawBarrier::wait) without deadline: the
    /// same arrival, then the waiting service watches `generation`
    /// (`source` makes it, as for [`RawEvent::wait_async`]) with the
    /// liveness schedule of a sleeper, so a dead member still breaks the
    /// barrier. Dropped after it arrived but before the barrier tripped,
    /// the future breaks the barrier, as a timeout does. Outer `Err`: the
    /// waiting service failed (this party leaves, so the barrier is broken
    /// too).
    pub(crate) async fn wait_async(
        &self,
        source: impl FnOnce() -> std::sync::Arc<dyn crate::watch::AsyncWord>,
        action: impl FnOnce() -> Result<(), ActionFailed>,
    ) -> std::io::Result<Result<usize, BarrierStop>> {
        let at = match self.arrive(action) {
            Err(stop) => return Ok(Err(stop)),
            Ok(Arrival::Tripped(index)) => return Ok(Ok(index)),
            Ok(Arrival::Waiting(at)) => at,
        };
        let mut leaving = Leaving { barrier: self, at, armed: true };
        let source = source();
        let mut poll = owner::LivenessPoll::new();
        loop {
            if let Some(done) = self.passed(&at) {
                leaving.armed = false;
                return Ok(done);
            }
            let wake_at = poll.wake_at(Instant::now(), None);
            let w = crate::watch::word_changed(&source, at.generation, wake_at).await?;
            if let Some(done) = self.after_sleep(w, &at, &mut poll) {
                leaving.armed = false;
                return Ok(done);
            }
        }
    }
}

/// A party that arrived and waits asynchronously: if it leaves before its
/// generation ended (its future dropped, or the waiting service failed),
/// it breaks the barrier, as a timeout does, so the others do not wait for
/// it forever.
#[cfg(feature = "async")]
struct Leaving<'a> {
    barrier: &'a RawBarrier,
    at: Waiting,
    armed: bool,
}

#[cfg(feature = "async")]
impl Drop for Leaving<'_> {
    fn drop(&mut self) {
        if self.armed && self.barrier.passed(&self.at).is_none() && self.barrier.broken_by().is_none() {
            self.barrier.break_with(BROKEN_OTHER);
        }
    }
}
