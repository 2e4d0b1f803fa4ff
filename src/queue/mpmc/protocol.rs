//! The MPMC ring's algorithm over any slot storage: the slot word
//! (state, lap and owner in one `u64`), the liveness-probe schedule
//! ([`Stuck`]) and [`Core`], the push and pop paths. The module docs of
//! `mpmc/mod.rs` describe the protocol.
#![allow(unsafe_code)]

use std::marker::PhantomData;

use bytemuck::Pod;

use crate::error::{Error, Result};
use crate::loom::atomic::{AtomicU64, Ordering};
use crate::loom::owner;
use crate::queue::spsc::Slots;
use crate::shm::layout::ShmSafe;
use crate::sys::failpoint;

// ---------------------------------------------------------------------
// The slot word.

const OWNER_BITS: u32 = 31;
const OWNER_MASK: u64 = (1 << OWNER_BITS) - 1;
const STATE_SHIFT: u32 = 31;
const LAP_SHIFT: u32 = 33;
/// Laps are counted modulo 2^31.
const LAP_MASK: u32 = (1 << 31) - 1;

const ST_EMPTY: u64 = 0;
const ST_WRITING: u64 = 1;
const ST_FULL: u64 = 2;
const ST_READING: u64 = 3;
/// The owner field of a FULL word that is a tombstone (real owner ids have
/// a non-zero tag above the 10 slot bits, so they are never 1).
const TOMB_MARK: u64 = 1;

const _: () = assert!(crate::owner::id::TAG_BITS + crate::owner::id::SLOT_BITS <= OWNER_BITS);

/// A slot's state (the word without its lap).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// Free for a producer of this lap.
    Empty,
    /// Claimed by a producer (owner id), which is writing the value.
    Writing(u32),
    /// Holds a published value.
    Full,
    /// Abandoned by its producer: consumers skip it.
    Tomb,
    /// Claimed by a consumer (owner id), which is copying the value out.
    Reading(u32),
}

/// The word for `lap` in state `s`.
#[inline]
pub(crate) fn encode(lap: u32, s: State) -> u64 {
    let (st, owner) = match s {
        State::Empty => (ST_EMPTY, 0),
        State::Writing(o) => (ST_WRITING, u64::from(o) & OWNER_MASK),
        State::Full => (ST_FULL, 0),
        State::Tomb => (ST_FULL, TOMB_MARK),
        State::Reading(o) => (ST_READING, u64::from(o) & OWNER_MASK),
    };
    (u64::from(lap & LAP_MASK) << LAP_SHIFT) | (st << STATE_SHIFT) | owner
}

/// The lap and state of a word; `None` for bits no transition writes.
#[inline]
pub(crate) fn decode(w: u64) -> Option<(u32, State)> {
    let lap = (w >> LAP_SHIFT) as u32;
    let owner = w & OWNER_MASK;
    let s = match ((w >> STATE_SHIFT) & 3, owner) {
        (ST_EMPTY, 0) => State::Empty,
        (ST_FULL, 0) => State::Full,
        (ST_FULL, TOMB_MARK) => State::Tomb,
        (ST_WRITING, o) if o != 0 => State::Writing(o as u32),
        (ST_READING, o) if o != 0 => State::Reading(o as u32),
        _ => return None,
    };
    Some((lap, s))
}

/// What a claim does after looking at one slot (see `Core::scan`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Look {
    /// Claimed it.
    Mine,
    /// Look at the same position again (its word changed).
    Again,
    /// The position is taken or done: move the shared position past it.
    Behind,
    /// The word cannot be at this position: reload the shared position
    /// (`Corrupt` if it has not moved).
    Stale,
    /// Full (producers) or nothing ready (consumers).
    Nothing,
}

/// Where a word's lap stands relative to the lap of the position looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lap {
    Prev,
    Same,
    Next,
    /// No transition can leave this lap here: a stale position or garbage.
    Other,
}

#[inline]
fn lap_of(word_lap: u32, lap: u32) -> Lap {
    match word_lap.wrapping_sub(lap) & LAP_MASK {
        0 => Lap::Same,
        1 => Lap::Next,
        LAP_MASK => Lap::Prev,
        _ => Lap::Other,
    }
}

/// One slot's state word.
#[derive(Debug)]
#[repr(transparent)]
pub(crate) struct Word(AtomicU64);

impl Word {
    /// A word holding `w` (0 is EMPTY on lap 0).
    #[cfg_attr(not(test), allow(dead_code))] // rings in segments start zeroed
    pub(crate) fn new(w: u64) -> Word {
        Word(AtomicU64::new(w))
    }

    /// The word now (Acquire: pairs with the Release that set it).
    #[inline]
    pub(crate) fn load(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// Overwrites the word (tests playing a hostile peer).
    #[cfg(test)]
    pub(crate) fn store(&self, w: u64) {
        self.0.store(w, Ordering::Relaxed);
    }

    /// One transition by CAS from exactly `from`.
    #[inline]
    fn cas(&self, from: u64, to: u64) -> bool {
        // AcqRel: Acquire pairs with the Release that ended the old state
        // (the previous holder's accesses of the value happen-before ours);
        // Release lets whoever loads `to` see what we saw.
        self.0.compare_exchange(from, to, Ordering::AcqRel, Ordering::Relaxed).is_ok()
    }

    /// Ends a claim we hold (Release: our access of the value
    /// happens-before whoever claims the slot next).
    #[inline]
    fn set(&self, to: u64) {
        self.0.store(to, Ordering::Release);
    }
}

// SAFETY: repr(transparent) over an atomic integer: no pointers, every bit
// pattern is a value (decoded and checked before any use), interior-mutable.
unsafe impl ShmSafe for Word {
    const TAG: &'static str = "shmproc::MpmcWord";
}

// ---------------------------------------------------------------------
// Rate limit of liveness probes.

/// Decides when a handle asks the OS whether the owner of a slot that
/// blocks it died (see the module docs).
#[derive(Debug)]
pub(crate) struct Stuck {
    /// The blocking word last seen (0 = none: EMPTY never blocks).
    word: u64,
    /// When the next probe is due, once the word was seen twice.
    #[cfg(not(shmproc_loom))]
    next: Option<std::time::Instant>,
    #[cfg(not(shmproc_loom))]
    interval: std::time::Duration,
    /// Under loom: whether the model simulates deaths (read once; the
    /// flag sits behind a loom mutex, which would add a branch per spin).
    #[cfg(shmproc_loom)]
    probes: bool,
}

impl Stuck {
    pub(crate) fn new() -> Stuck {
        Stuck {
            word: 0,
            #[cfg(not(shmproc_loom))]
            next: None,
            #[cfg(not(shmproc_loom))]
            interval: owner::LIVENESS_MIN,
            #[cfg(shmproc_loom)]
            probes: owner::checks_liveness(),
        }
    }

    /// Whether to probe the owner of `word`, which blocks us now.
    #[cfg(not(shmproc_loom))]
    fn due(&mut self, word: u64) -> bool {
        let now = std::time::Instant::now;
        if word != self.word {
            // First sighting: the owner is most likely just busy (no clock
            // read, no syscall).
            self.word = word;
            self.next = None;
            self.interval = owner::LIVENESS_MIN;
            return false;
        }
        match self.next {
            None => {
                self.next = Some(now() + self.interval);
                false
            }
            Some(t) if now() < t => false,
            Some(_) => {
                self.interval = (self.interval * 2).min(owner::LIVENESS_MAX);
                self.next = Some(now() + self.interval);
                true
            }
        }
    }

    /// Under loom there is no clock: probe whenever a model simulates deaths.
    #[cfg(shmproc_loom)]
    fn due(&mut self, word: u64) -> bool {
        self.word = word;
        self.probes
    }
}

// ---------------------------------------------------------------------
// The protocol, generic over where the values live.

/// Most positions one call claims before it moves the shared position, so
/// helpers never walk far over a batch.
const MAX_BATCH: usize = 64;
/// Rounds of one call between two checks of the positions.
const CHECK_EVERY: u32 = 64;
/// Rounds of one call before it gives up: each round that claims nothing
/// follows another handle's progress, so only garbage gets here.
const MAX_ROUNDS: u32 = 1 << 20;
/// Attempts at a consistent snapshot of both positions.
const SNAPSHOT_TRIES: u32 = 16;

fn corrupt_word() -> Error {
    Error::Corrupt { what: "mpmc ring: slot word" }
}

fn corrupt_positions() -> Error {
    Error::Corrupt { what: "mpmc ring: positions" }
}

/// The ring's shared words and its values, for one operation.
#[derive(Debug)]
pub(crate) struct Core<'a, T, S> {
    head: &'a AtomicU64,
    tail: &'a AtomicU64,
    words: &'a [Word],
    slots: &'a S,
    mask: u64,
    shift: u32,
    _t: PhantomData<T>,
}

impl<'a, T: Pod, S: Slots<T>> Core<'a, T, S> {
    /// The ring over `words` and `slots`, both of the same power-of-two
    /// length (validated by the caller).
    pub(crate) fn new(head: &'a AtomicU64, tail: &'a AtomicU64, words: &'a [Word], slots: &'a S) -> Self {
        let cap = slots.capacity();
        debug_assert!(cap.is_power_of_two() && words.len() as u64 == cap);
        Core { head, tail, words, slots, mask: cap - 1, shift: cap.trailing_zeros(), _t: PhantomData }
    }

    #[inline]
    fn cap(&self) -> u64 {
        self.mask + 1
    }

    /// Slot index and lap of position `pos`.
    #[inline]
    fn at(&self, pos: u64) -> (usize, u32) {
        ((pos & self.mask) as usize, ((pos >> self.shift) as u32) & LAP_MASK)
    }

    #[inline]
    fn word(&self, i: usize) -> &Word {
        &self.words[i]
    }

    /// Loads a position. SeqCst (pairs with the SeqCst `fetch_max` in
    /// `help`): at least Acquire, so the claims before the loaded value are
    /// visible; beyond that it costs nothing on x86 (a plain load), and it
    /// gives the latest value in the one total order of position updates,
    /// which keeps stale positions out of the helpers' path (and loom's).
    #[inline]
    fn load_pos(pos: &AtomicU64) -> u64 {
        pos.load(Ordering::SeqCst)
    }

    /// Moves `pos` (a position) past `to` if it is behind; returns where it
    /// stands now as far as we know.
    #[inline]
    fn help(pos: &AtomicU64, to: u64) -> u64 {
        // SeqCst (see `load_pos`): at least AcqRel; Release publishes the
        // claims before `to` to whoever loads the position.
        pos.fetch_max(to, Ordering::SeqCst).max(to)
    }

    /// Checks `0 <= tail - head <= cap` on a consistent snapshot (`tail`
    /// unchanged around the load of `head`); positions that keep moving
    /// are live peers and pass.
    pub(crate) fn check_positions(&self) -> Result<()> {
        for _ in 0..SNAPSHOT_TRIES {
            // See `load_pos`: the invariants in the module docs hold for
            // what we read.
            let t = Self::load_pos(self.tail);
            let h = Self::load_pos(self.head);
            if Self::load_pos(self.tail) == t {
                return if t.wrapping_sub(h) <= self.cap() { Ok(()) } else { Err(corrupt_positions()) };
            }
        }
        Ok(())
    }

    /// Values in the ring now (a snapshot, clamped to the capacity).
    pub(crate) fn len(&self) -> u64 {
        let mut n = 0;
        for _ in 0..SNAPSHOT_TRIES {
            let t = Self::load_pos(self.tail);
            let h = Self::load_pos(self.head);
            n = t.wrapping_sub(h);
            if Self::load_pos(self.tail) == t {
                break;
            }
        }
        n.min(self.cap())
    }

    /// Claims positions `pos + 1 ..` while their words are exactly `from`
    /// on their laps, up to `max` positions in all; returns how many in all.
    fn claim_run(&self, pos: u64, max: usize, from: State, to: State) -> usize {
        let mut n = 1;
        while n < max.min(MAX_BATCH) {
            let (i, lap) = self.at(pos.wrapping_add(n as u64));
            if !self.word(i).cas(encode(lap, from), encode(lap, to)) {
                break;
            }
            n += 1;
        }
        n
    }

    /// The loop both claims share: from the position in `at` (`tail` or
    /// `head`), looks at each slot's word and lets `look` decide, until a
    /// claim (`Some(position)`), a `None`, an error, or the round limit.
    #[inline(always)]
    fn scan(
        &self,
        at: &AtomicU64,
        mut look: impl FnMut(u64, usize, u32, u64, Lap, State) -> Result<Look>,
    ) -> Result<Option<u64>> {
        // The claims before a loaded position are visible (see `load_pos`),
        // so a word older than its position is garbage.
        let mut pos = Self::load_pos(at);
        for round in 1..=MAX_ROUNDS {
            if round % CHECK_EVERY == 0 {
                self.check_positions()?;
            }
            let (i, lap) = self.at(pos);
            let w = self.word(i).load();
            let (wlap, st) = decode(w).ok_or_else(corrupt_word)?;
            match look(pos, i, lap, w, lap_of(wlap, lap), st)? {
                Look::Mine => return Ok(Some(pos)),
                Look::Again => {}
                Look::Behind => pos = Self::help(at, pos.wrapping_add(1)),
                Look::Stale => pos = self.reload(at, pos)?,
                Look::Nothing => return Ok(None),
            }
        }
        Err(corrupt_positions())
    }

    /// Claims slot `i` (word `w`) by one CAS to `to` on `lap`; the failpoint
    /// `fp` sits right after a successful claim (a death there leaves the
    /// claim with no one to finish it: RELIABILITY cases 14 and 16).
    #[inline]
    fn take(&self, i: usize, w: u64, lap: u32, to: State, fp: &'static str) -> Look {
        if self.word(i).cas(w, encode(lap, to)) {
            failpoint::hit(fp);
            Look::Mine
        } else {
            Look::Again // lost the race: look at it again
        }
    }

    /// Claims up to `max` (>= 1) free positions from `tail` for `me`:
    /// `Some((pos, n))` has positions `pos .. pos + n` WRITING by `me` and
    /// `tail` past them; `None` if the ring is full.
    pub(crate) fn claim_push(&self, me: u32, max: usize, stuck: &mut Stuck) -> Result<Option<(u64, usize)>> {
        let found = self.scan(self.tail, |pos, i, lap, w, rel, st| {
            Ok(match (rel, st) {
                (Lap::Same, State::Empty) => self.take(i, w, lap, State::Writing(me), "mpmc.push.after_claim"),
                // Claimed (or done with) on this lap already: `tail` is
                // behind; move it on.
                (Lap::Same, _) | (Lap::Next, _) => Look::Behind,
                // The previous lap's value is still there: full. Producers
                // spin here, so the positions (`head` is the consumers' hot
                // line) are checked only once the same word has blocked us
                // for a while, like the liveness probe.
                (Lap::Prev, State::Full | State::Writing(_)) => {
                    if stuck.due(w) {
                        self.check_positions()?;
                    }
                    Look::Nothing
                }
                (Lap::Prev, State::Tomb) => {
                    self.recycle(pos, w, lap);
                    Look::Again
                }
                (Lap::Prev, State::Reading(o)) => {
                    if !stuck.due(w) {
                        return Ok(Look::Nothing);
                    }
                    self.check_positions()?;
                    if !owner::owner_dead(o, 0) {
                        return Ok(Look::Nothing);
                    }
                    // Its consumer died holding it: the value is lost with
                    // it (consumed at most once).
                    self.recycle(pos, w, lap);
                    Look::Again
                }
                (Lap::Prev, State::Empty) | (Lap::Other, _) => Look::Stale,
            })
        })?;
        Ok(found.map(|pos| {
            let n = self.claim_run(pos, max, State::Empty, State::Writing(me));
            Self::help(self.tail, pos.wrapping_add(n as u64));
            (pos, n)
        }))
    }

    /// Frees slot `pos & mask` (holding word `w` of the previous lap, a
    /// tombstone or a dead consumer's claim) for lap `lap`, after moving
    /// `head` past the position it held.
    fn recycle(&self, pos: u64, w: u64, lap: u32) {
        Self::help(self.head, pos.wrapping_sub(self.mask));
        // Failure is fine: someone else freed it, and we look again.
        let _ = self.word((pos & self.mask) as usize).cas(w, encode(lap, State::Empty));
    }

    /// After a word that cannot be at `pos`: the position moved on (we
    /// were stale), or the word is garbage.
    fn reload(&self, at: &AtomicU64, pos: u64) -> Result<u64> {
        let now = Self::load_pos(at);
        if now == pos { Err(corrupt_word()) } else { Ok(now) }
    }

    /// Publishes position `pos` (claimed by us, value written).
    #[inline]
    pub(crate) fn publish(&self, pos: u64) {
        let (i, lap) = self.at(pos);
        // Release (in `set`): pairs with the consumer's Acquire claim.
        self.word(i).set(encode(lap, State::Full));
    }

    /// Gives up position `pos` (claimed by us) without a value.
    pub(crate) fn abandon(&self, pos: u64) {
        let (i, lap) = self.at(pos);
        self.word(i).set(encode(lap, State::Tomb));
    }

    /// Claims up to `max` (>= 1) published positions from `head` for `me`:
    /// `Some((pos, n))` has positions `pos .. pos + n` READING by `me` and
    /// `head` past them; `None` if nothing is ready.
    pub(crate) fn claim_pop(&self, me: u32, max: usize, stuck: &mut Stuck) -> Result<Option<(u64, usize)>> {
        let found = self.scan(self.head, |pos, i, lap, w, rel, st| {
            Ok(match (rel, st) {
                (Lap::Same, State::Full) => self.take(i, w, lap, State::Reading(me), "mpmc.pop.after_claim"),
                (Lap::Same, State::Tomb) => {
                    // `head` passes it first, then anyone may free it (if
                    // we die in between, a producer a lap later does).
                    Self::help(self.head, pos.wrapping_add(1));
                    let _ = self.word(i).cas(w, encode(lap.wrapping_add(1), State::Empty));
                    Look::Behind
                }
                // Another consumer has it, or it is done: `head` is behind.
                (Lap::Same, State::Reading(_)) | (Lap::Next, _) => Look::Behind,
                // Nothing claimed at `pos` yet (or the previous lap's
                // consumer is still copying out): empty. (The word's lap
                // vouches for `pos`; a consumer polling an empty ring does
                // not touch `tail`, which producers write.)
                (Lap::Same, State::Empty) | (Lap::Prev, State::Reading(_)) => Look::Nothing,
                (Lap::Same, State::Writing(o)) => {
                    if !(stuck.due(w) && owner::owner_dead(o, 0)) {
                        // Being written: later values wait their turn.
                        return Ok(Look::Nothing);
                    }
                    // Its producer died mid-write (the OS says so): make it
                    // a tombstone, then skip it.
                    Self::help(self.tail, pos.wrapping_add(1));
                    let _ = self.word(i).cas(w, encode(lap, State::Tomb));
                    Look::Again
                }
                (Lap::Prev, _) | (Lap::Other, _) => Look::Stale,
            })
        })?;
        Ok(found.map(|pos| {
            let n = self.claim_run(pos, max, State::Full, State::Reading(me));
            Self::help(self.head, pos.wrapping_add(n as u64));
            (pos, n)
        }))
    }

    /// Frees position `pos` (claimed by us, value copied out) for the
    /// next lap.
    #[inline]
    pub(crate) fn release(&self, pos: u64) {
        let (i, lap) = self.at(pos);
        // Release (in `set`): our copy happens-before the next producer's
        // write (it claims with Acquire).
        self.word(i).set(encode(lap.wrapping_add(1), State::Empty));
    }

    /// Pushes one value; `Ok(false)` if the ring is full.
    #[inline]
    pub(crate) fn push(&self, me: u32, stuck: &mut Stuck, v: T) -> Result<bool> {
        let Some((pos, _)) = self.claim_push(me, 1, stuck)? else { return Ok(false) };
        // SAFETY: the index is masked below capacity; position `pos` is
        // WRITING by us, so no one else accesses the slot until we publish.
        unsafe { self.slots.write(pos & self.mask, v) };
        self.publish(pos);
        Ok(true)
    }

    /// Pushes as many of `vs` as fit, in order; returns how many. An error
    /// after some were pushed is left for the next call.
    pub(crate) fn push_slice(&self, me: u32, stuck: &mut Stuck, vs: &[T]) -> Result<usize> {
        let mut done = 0;
        while done < vs.len() {
            let claimed = match self.claim_push(me, vs.len() - done, stuck) {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            };
            let (pos, n) = claimed;
            for (k, v) in vs[done..done + n].iter().enumerate() {
                let p = pos.wrapping_add(k as u64);
                // SAFETY: as in `push`: position `p` is WRITING by us.
                unsafe { self.slots.write(p & self.mask, *v) };
                self.publish(p);
            }
            done += n;
        }
        Ok(done)
    }

    /// Pops the oldest value, if any.
    #[inline]
    pub(crate) fn pop(&self, me: u32, stuck: &mut Stuck) -> Result<Option<T>> {
        let Some((pos, _)) = self.claim_pop(me, 1, stuck)? else { return Ok(None) };
        // SAFETY: the index is masked below capacity; position `pos` is
        // READING by us, so no producer writes the slot until we release it.
        let v = unsafe { self.slots.read(pos & self.mask) };
        self.release(pos);
        Ok(Some(v))
    }

    /// Pops up to `out.len()` values, oldest first; returns how many. An
    /// error after some were popped is left for the next call.
    pub(crate) fn pop_into(&self, me: u32, stuck: &mut Stuck, out: &mut [T]) -> Result<usize> {
        let mut done = 0;
        while done < out.len() {
            let claimed = match self.claim_pop(me, out.len() - done, stuck) {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            };
            let (pos, n) = claimed;
            for (k, o) in out[done..done + n].iter_mut().enumerate() {
                let p = pos.wrapping_add(k as u64);
                // SAFETY: as in `pop`: position `p` is READING by us.
                *o = unsafe { self.slots.read(p & self.mask) };
                self.release(p);
            }
            done += n;
        }
        Ok(done)
    }
}

#[cfg(all(test, not(shmproc_loom)))]
mod tests;
