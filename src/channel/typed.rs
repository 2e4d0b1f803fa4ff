//! Typed channels: `Sender<T>` and `Receiver<T>` over one queue.
//!
//! A channel is a [`Queue`] marked as one (its own layout hash, so neither
//! opens as the other), sent to and received from through the same engine
//! path; what a channel adds is that it knows its ends. Each side counts
//! its live handles twice:
//!
//! - in the header (`QueueHeader::handles`, one word per side): the fast
//!   answer. A receiver that finds the channel empty while the senders'
//!   word is 0 gets `Disconnected`, and a send while the receivers' word
//!   is 0 fails; the handle whose drop takes a word to 0 wakes every
//!   sleeper of the channel.
//! - in its process's entry of the side's registry (the entry's `taken`
//!   word: a stamp of the process in the high half, its handles in the low
//!   half): the answer that survives a crash. A process killed while it
//!   holds handles never gives them back; a waiter that asks the OS (at
//!   the engine's liveness intervals) finds every process still holding a
//!   handle of the other side dead, and the dead entries' counts leave the
//!   header word (once per entry: a compare-and-swap from the word read
//!   before the death was confirmed, so an entry that changed since, by a
//!   take-over or a new process, is left alone and asked about again).
//!
//! A handle is counted in the header before its entry, and given back from
//! its entry before the header, so the header word is never below the sum
//! of the entries and a reclaim never takes it below zero; a process killed
//! between the two steps leaves the header word high, and only the OS
//! answer ends the other side's wait then.
//!
//! # Handles that travel
//!
//! A handle serializes (to become a child's argument) as its segment, its
//! process's entry index and stamp, and counts one more handle for the
//! encoding process, *in flight*. The decoding process takes it over: it
//! takes the handle out of the encoder's entry (a compare-and-swap that
//! checks the stamp, so an entry reused by another process since is left
//! alone) and adds it to its own, without touching the header. So a parent that sends a `Sender` to a
//! child and drops its own never leaves the count at zero in between. A
//! decoder that finds the in-flight handle gone from the encoder's entry
//! (the encoder died and was reclaimed) counts its handle afresh. An
//! encoding that fails, or whose child cannot be started or exits before
//! it begins to decode its argument, is undone: the process layer runs
//! the encoding's give-backs (when `spawn` fails, or when the parent joins
//! or drops such a child). One whose child dies while decoding stays
//! counted for the encoding process until that process exits.
//!
//! A fork child's copies of its parent's handles are not its own (the
//! stamp differs): dropping one there gives nothing back, and they count
//! for the parent. `Process::spawn` therefore encodes its argument under
//! every start method, fork included, so a handle passed as an argument
//! counts for the child.

use std::marker::PhantomData;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::channel::lane::{Ends, Stop, Wait};
use crate::channel::queue::{DEFAULT_QUEUE_CAPACITY, End, Inner, Queue, QueueBuilder, channel_hash};
use crate::channel::typed_error::{
    RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};
use crate::error::{Error, Result};
use crate::loom::atomic::Ordering;
use crate::owner::registry::Entry;
use crate::shm::header::kind;
use crate::shm::segment::Segment;

/// The ring of an unbounded channel: 1 MiB (items up to 512 KiB travel
/// inline; a send waits only while the ring holds 1 MiB of items).
pub const UNBOUNDED_RING: usize = 1 << 20;

/// A handle's place in its process's registry entry; `entry == NONE`: not
/// counted (this process could not register, see [`Sender`]).
#[derive(Debug, Clone, Copy)]
struct Mark {
    entry: usize,
    stamp: u32,
}

const NONE: usize = usize::MAX;

/// The calling process's stamp: its liveness token's nonce folded to 32
/// bits, never 0 (a new process, fork children included, has a new
/// nonce). Process-wide and cached per pid: a drop from a thread-local
/// destructor, or from a thread past the owner layer's limit, still
/// finds it.
fn stamp() -> Result<u32> {
    static CACHED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let pid = u64::from(crate::sys::process::pid());
    let c = CACHED.load(std::sync::atomic::Ordering::Relaxed);
    if c >> 32 == pid && c != 0 {
        return Ok(c as u32);
    }
    let token = crate::owner::token::current().map_err(|e| Error::os("liveness token", e))?;
    let stamp = (token.nonce ^ (token.nonce >> 32)) as u32 | 1;
    CACHED.store(pid << 32 | u64::from(stamp), std::sync::atomic::Ordering::Relaxed);
    Ok(stamp)
}

fn total(inner: &Inner, end: End) -> &crate::loom::atomic::AtomicU64 {
    &inner.header().handles[end as usize]
}

/// This process's entry of `end` (registering it).
fn my_entry<T>(q: &Queue<T>, end: End) -> Result<(usize, &Entry)> {
    let full = Error::InvalidArgument { what: "a channel side held by more live processes than it can track (256)" };
    let i = q.role(end)?.ok_or(full)?;
    let e = q.inner().registry(end).entry(i).ok_or_else(|| Error::Corrupt { what: "channel registry" })?;
    Ok((i, e))
}

const TOO_MANY: Error =
    Error::InvalidArgument { what: "more than 2^32 - 1 handles of one channel side in one process" };

/// Counts one handle of `end` for the calling process (header first, then
/// its entry).
fn count_in<T>(q: &Queue<T>, end: End) -> Result<Mark> {
    let stamp = stamp()?;
    let (i, e) = my_entry(q, end)?;
    if !words::count_in(total(q.inner(), end), &e.taken, stamp) {
        return Err(TOO_MANY);
    }
    Ok(Mark { entry: i, stamp })
}

/// Takes over a decoded handle that its encoder counted in flight in its
/// entry `from` under `from_stamp`: from that entry to ours, the header
/// unchanged. If the encoder's entry no longer holds it (the encoder died
/// and its entry was reclaimed), the handle is counted afresh. If ours
/// cannot be had, the in-flight handle is given back (the handle stops
/// existing) and the error returned.
fn take_over<T>(q: &Queue<T>, end: End, from: usize, from_stamp: u32) -> Result<Mark> {
    let inner = q.inner();
    let mine = stamp().and_then(|s| my_entry(q, end).map(|(i, e)| (s, i, e)));
    let (stamp, i, e) = match mine {
        Ok(m) => m,
        Err(err) => {
            give_back(inner, end, from, from_stamp);
            return Err(err);
        }
    };
    let held = inner.registry(end).entry(from).is_some_and(|f| words::leave(&f.taken, from_stamp));
    if !held {
        return count_in(q, end);
    }
    if words::enter(&e.taken, stamp) {
        return Ok(Mark { entry: i, stamp });
    }
    if words::take(total(inner, end), 1) {
        inner.lane().wake_all();
    }
    Err(TOO_MANY)
}

/// Gives back one handle counted in entry `i` under `stamp`; nothing if
/// the entry holds no handle of that stamp. The step to 0 wakes every
/// sleeper (a receiver then finds the senders gone, a sender the
/// receivers).
fn give_back(inner: &Inner, end: End, i: usize, stamp: u32) {
    let Some(e) = inner.registry(end).entry(i) else { return };
    if words::give_back(total(inner, end), &e.taken, stamp) {
        inner.lane().wake_all();
    }
}

/// A dead process's entry of `end`, taken over by a registering process
/// (see `Inner::reclaim`): its handles leave the header word.
pub(crate) fn reclaim(inner: &Inner, end: End, e: &Entry) {
    if words::reclaim(total(inner, end), &e.taken) {
        inner.lane().wake_all();
    }
}

/// The counting words of one side (see the module docs): the header's
/// count of live handles, and one process's registry entry (its stamp in
/// the high half, its count in the low half).
pub(crate) mod words {
    use crate::loom::atomic::{AtomicU64, Ordering};

    const LOW: u64 = 0xffff_ffff;

    /// Counts one handle under `stamp`: the header first, then the entry.
    /// `false` (nothing counted) if the entry's count is at its limit.
    pub(crate) fn count_in(total: &AtomicU64, entry: &AtomicU64, stamp: u32) -> bool {
        total.fetch_add(1, Ordering::SeqCst);
        if enter(entry, stamp) {
            return true;
        }
        take(total, 1);
        false
    }

    /// Adds one handle to an entry under `stamp` (the header already
    /// counts it). A word with another stamp is a previous holder's
    /// (reclaimed, so its count already left the header) or junk: ours
    /// starts over. `false` at the count's limit.
    pub(crate) fn enter(entry: &AtomicU64, stamp: u32) -> bool {
        let mine = u64::from(stamp) << 32;
        entry
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |w| match (w & !LOW == mine, w & LOW) {
                (true, LOW) => None,
                (true, _) => Some(w + 1),
                (false, _) => Some(mine | 1),
            })
            .is_ok()
    }

    /// Takes one handle out of an entry if it holds one under `stamp`
    /// (the header unchanged); whether it did.
    pub(crate) fn leave(entry: &AtomicU64, stamp: u32) -> bool {
        let mine = u64::from(stamp) << 32;
        entry
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |w| (w & !LOW == mine && w & LOW != 0).then(|| w - 1))
            .is_ok()
    }

    /// Gives back one handle counted under `stamp`: the entry first (only
    /// if it holds one of that stamp), then the header. Whether the header
    /// reached 0.
    pub(crate) fn give_back(total: &AtomicU64, entry: &AtomicU64, stamp: u32) -> bool {
        leave(entry, stamp) && take(total, 1)
    }

    /// A dead holder's entry, taken over by the caller (nobody else
    /// changes it): its whole count leaves the header, once (the swap).
    /// Whether the header reached 0.
    pub(crate) fn reclaim(total: &AtomicU64, entry: &AtomicU64) -> bool {
        let n = entry.swap(0, Ordering::SeqCst) & LOW;
        n != 0 && take(total, n)
    }

    /// A dead holder's entry that still holds `seen` (read before its
    /// death was confirmed): its count leaves the header. `None` if the
    /// entry changed since (a decoder took a handle over, or a new
    /// process took the entry): nothing is taken. Else whether the header
    /// reached 0.
    pub(crate) fn reclaim_seen(total: &AtomicU64, entry: &AtomicU64, seen: u64) -> Option<bool> {
        entry.compare_exchange(seen, 0, Ordering::SeqCst, Ordering::SeqCst).ok()?;
        Some(held(seen) != 0 && take(total, held(seen)))
    }

    /// The count of live handles in an entry word.
    pub(crate) fn held(word: u64) -> u64 {
        word & LOW
    }

    /// Takes `n` from the header (never below 0); whether it reached 0.
    pub(crate) fn take(total: &AtomicU64, n: u64) -> bool {
        let before = total.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| Some(t.saturating_sub(n)));
        matches!(before, Ok(t) if t != 0 && t <= n)
    }
}

/// Gives a handle's count back if this process counted it (a fork child's
/// copy of its parent's handle is not its own).
fn drop_mark(inner: &Inner, end: End, mark: Mark) {
    if mark.entry != NONE && stamp().ok() == Some(mark.stamp) {
        give_back(inner, end, mark.entry, mark.stamp);
    }
}

/// A channel's ends for the engine: a send fails once no receiver is left
/// (nobody will take it), a receive ends once it finds the channel empty
/// with no sender left; the OS is asked about the processes still
/// counted as holding handles.
struct ChannelEnds<'a>(&'a Inner);

impl Ends for ChannelEnds<'_> {
    const SEND_NEEDS_RECEIVER: bool = true;
    const PROBE_BEFORE_SLEEP: bool = true;

    fn send_stop(&self) -> Option<Stop> {
        (total(self.0, End::Recv).load(Ordering::SeqCst) == 0).then_some(Stop::Disconnected)
    }

    fn recv_stop(&self) -> Option<Stop> {
        None
    }

    fn drained_stop(&self) -> Option<Stop> {
        (total(self.0, End::Send).load(Ordering::SeqCst) == 0).then_some(Stop::Disconnected)
    }

    fn receivers_gone(&self) -> bool {
        holders_gone(self.0, End::Recv)
    }

    fn senders_gone(&self) -> bool {
        holders_gone(self.0, End::Send)
    }
}

/// Whether every process counted as holding a handle of `end` is
/// confirmed dead (system calls; see the module docs). A dead holder's
/// count is reclaimed on the way.
fn holders_gone(inner: &Inner, end: End) -> bool {
    let t = total(inner, end);
    let held = |e: &Entry| {
        let w = e.taken.load(Ordering::SeqCst);
        if words::held(w) != 0 { w } else { 0 }
    };
    let reclaim = |e: &Entry, seen: u64| match words::reclaim_seen(t, &e.taken, seen) {
        Some(zero) => {
            if zero {
                inner.lane().wake_all();
            }
            true
        }
        None => false,
    };
    t.load(Ordering::SeqCst) == 0 || inner.registry(end).holders_dead(held, reclaim)
}

/// Makes a channel holding at most `cap` items (Python has no typed
/// channel; crossbeam: `bounded`). Both handles are `Clone`, serialize
/// (pass them to children as arguments, under every start method), and
/// work from any number of threads and processes.
///
/// # Examples
///
/// ```
/// fn work(tx: shmproc::channel::Sender<u64>) {
///     for i in 0..3 {
///         tx.send(i * i).expect("send");
///     }
/// }
///
/// let (tx, rx) = shmproc::channel::<u64>(16)?;
/// let mut children = Vec::new();
/// for _ in 0..2 {
///     children.push(shmproc::Process::spawn(work, tx.clone())?);
/// }
/// drop(tx); // the children hold the only senders now
/// let mut got: Vec<u64> = rx.iter().collect::<Result<_, _>>()?; // ends when both children are done
/// got.sort();
/// assert_eq!(got, [0, 0, 1, 1, 4, 4]);
/// for mut c in children {
///     c.join()?;
/// }
/// # Ok::<(), shmproc::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidArgument`] for `cap` 0 (a rendezvous channel is not
/// offered: use 1); as for [`Segment::anonymous`].
pub fn channel<T: Serialize + DeserializeOwned>(cap: usize) -> Result<(Sender<T>, Receiver<T>)> {
    if cap == 0 {
        return Err(Error::InvalidArgument { what: "channel capacity 0 (rendezvous channels are not offered; use 1)" });
    }
    make(Queue::builder().maxsize(cap).capacity_bytes(DEFAULT_QUEUE_CAPACITY))
}

/// Makes a channel without an item limit, bounded by bytes: a send waits
/// (and `try_send` gives `Full`) only while the ring holds
/// [`UNBOUNDED_RING`] bytes of items, which crossbeam's unbounded channel
/// never does (items larger than half of it travel through their own
/// segment).
///
/// # Examples
///
/// ```
/// let (tx, rx) = shmproc::channel::unbounded::<String>()?;
/// for i in 0..1000 {
///     tx.send(format!("item {i}"))?;
/// }
/// assert_eq!(rx.len(), 1000);
/// assert_eq!(rx.recv()?, "item 0");
/// # Ok::<(), shmproc::Error>(())
/// ```
///
/// # Errors
/// As for [`Segment::anonymous`].
pub fn unbounded<T: Serialize + DeserializeOwned>() -> Result<(Sender<T>, Receiver<T>)> {
    make(Queue::builder().capacity_bytes(UNBOUNDED_RING))
}

fn make<T: Serialize + DeserializeOwned>(b: QueueBuilder<T>) -> Result<(Sender<T>, Receiver<T>)> {
    let q = b.build_channel()?;
    let tx = Sender { mark: count_in(&q, End::Send)?, q: q.clone(), stream: StreamState::default() };
    let rx = Receiver { mark: count_in(&q, End::Recv)?, q, stream: StreamState::default() };
    Ok((tx, rx))
}

/// The sending side of a typed channel made by [`channel`] or
/// [`unbounded`] (crossbeam: `Sender`).
///
/// Cloning counts one more sender; the channel's receivers get
/// [`RecvError::Disconnected`] once every sender is dropped (in any
/// thread of any process) or its process died, and they have taken what
/// was sent. A process holds at most 2^32 - 1 handles of one side, and at
/// most 256 processes hold senders at once: decoding a handle in a
/// process past that fails, and a clone there (of a fork's inherited
/// copy) works but does not count, so the other side may see
/// `Disconnected` while it lives.
///
/// # Examples
///
/// ```
/// let (tx, rx) = shmproc::channel::<String>(4)?;
/// let tx2 = tx.clone();
/// std::thread::spawn(move || tx2.send("from a thread".into()).expect("send"));
/// assert_eq!(rx.recv()?, "from a thread");
/// # Ok::<(), shmproc::Error>(())
/// ```
#[must_use = "dropping the last sender disconnects the channel"]
pub struct Sender<T> {
    q: Queue<T>,
    mark: Mark,
    /// Unused (a receiver's `Stream` state; one shape for both sides).
    #[allow(dead_code)]
    stream: StreamState,
}

/// The receiving side of a typed channel made by [`channel`] or
/// [`unbounded`] (crossbeam: `Receiver`): any number of receivers, in any
/// threads and processes, share the items (each item goes to one).
///
/// Senders get [`SendError::Disconnected`] (with their item) once every
/// receiver is dropped or its process died.
///
/// # Examples
///
/// ```
/// let (tx, rx) = shmproc::channel::<u32>(4)?;
/// tx.send(1)?;
/// tx.send(2)?;
/// drop(tx);
/// let all: Vec<u32> = rx.iter().collect::<Result<_, _>>()?;
/// assert_eq!(all, [1, 2]);
/// # Ok::<(), shmproc::Error>(())
/// ```
#[must_use = "dropping the last receiver disconnects the channel"]
pub struct Receiver<T> {
    q: Queue<T>,
    mark: Mark,
    /// Where the `Stream` of this receiver waits between polls.
    #[cfg_attr(not(feature = "async"), allow(dead_code))]
    stream: StreamState,
}

/// A receiver's `Stream` state (with the `async` feature).
#[cfg(feature = "async")]
type StreamState = crate::channel::lane_async::SleepState;
#[cfg(not(feature = "async"))]
type StreamState = ();

/// What both sides offer: the queue's snapshot queries.
macro_rules! side_common {
    ($ty:ident, $end:expr, $var:ident) => {
        impl<T> $ty<T> {
            /// Items in the channel now (a snapshot).
            ///
            /// # Examples
            ///
            /// ```
            /// let (tx, rx) = shmproc::channel::<u8>(4)?;
            /// tx.send(1)?;
            #[doc = concat!("assert_eq!(", stringify!($var), ".len(), 1);")]
            /// drop((tx, rx));
            /// # Ok::<(), shmproc::Error>(())
            /// ```
            pub fn len(&self) -> usize {
                self.q.qsize()
            }

            /// Whether the channel holds no item now.
            ///
            /// # Examples
            ///
            /// ```
            /// let (tx, rx) = shmproc::channel::<u8>(4)?;
            #[doc = concat!("assert!(", stringify!($var), ".is_empty());")]
            /// drop((tx, rx));
            /// # Ok::<(), shmproc::Error>(())
            /// ```
            pub fn is_empty(&self) -> bool {
                self.q.is_empty()
            }

            /// Whether the channel holds as many items as it may now.
            ///
            /// # Examples
            ///
            /// ```
            /// let (tx, rx) = shmproc::channel::<u8>(1)?;
            /// tx.send(1)?;
            #[doc = concat!("assert!(", stringify!($var), ".is_full());")]
            /// drop((tx, rx));
            /// # Ok::<(), shmproc::Error>(())
            /// ```
            pub fn is_full(&self) -> bool {
                self.q.is_full()
            }

            /// The item limit: `Some(cap)` for [`channel`], `None` for
            /// [`unbounded`].
            ///
            /// # Examples
            ///
            /// ```
            /// let (tx, rx) = shmproc::channel::<u8>(3)?;
            #[doc = concat!("assert_eq!(", stringify!($var), ".capacity(), Some(3));")]
            /// drop((tx, rx));
            /// # Ok::<(), shmproc::Error>(())
            /// ```
            pub fn capacity(&self) -> Option<usize> {
                Some(self.q.maxsize()).filter(|&n| n != 0)
            }
        }

        impl<T> Clone for $ty<T> {
            /// One more handle of this side, counted for the calling
            /// process.
            fn clone(&self) -> Self {
                let none = Mark { entry: NONE, stamp: 0 };
                $ty { q: self.q.clone(), mark: count_in(&self.q, $end).unwrap_or(none), stream: StreamState::default() }
            }
        }

        impl<T> Drop for $ty<T> {
            fn drop(&mut self) {
                #[cfg(feature = "async")]
                self.q.cancel_get(&mut self.stream);
                drop_mark(self.q.inner(), $end, self.mark);
            }
        }

        impl<T> std::fmt::Debug for $ty<T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field("len", &self.len())
                    .field("capacity", &self.capacity())
                    .finish_non_exhaustive()
            }
        }

        impl<T> Serialize for $ty<T> {
            /// The segment, and this process's entry and stamp: one more
            /// handle counts for this process until a decoder takes it
            /// over (see the module docs).
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                use serde::ser::Error as _;
                // Before any side effect (see `handoff::encoding_message`).
                if crate::shm::handoff::wants_scope() {
                    return Err(crate::shm::handoff::probe_error());
                }
                let mark = count_in(&self.q, $end).map_err(S::Error::custom)?;
                let post = crate::channel::post::Wire(self.q.post());
                let out = (self.q.inner().header_segment(), mark.entry as u64, mark.stamp, post).serialize(s);
                let inner = std::sync::Arc::clone(self.q.inner());
                let give = move || give_back(&inner, $end, mark.entry, mark.stamp);
                // Given back at once if this fails, or later if the whole
                // encoding never reaches a decoder (a child that could not
                // be started).
                if out.is_err() {
                    give();
                } else {
                    crate::shm::handoff::on_undo(give);
                }
                out
            }
        }

        impl<'de, T> serde::Deserialize<'de> for $ty<T> {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                use serde::de::Error as _;
                let (seg, entry, stamp, post) = <(Segment, u64, u32, crate::channel::post::Received)>::deserialize(d)?;
                let q = open::<T>(seg, post.0).map_err(D::Error::custom)?;
                // The in-flight handle, checked against the encoder's stamp
                // (an index out of range is ignored by the registry).
                let from = usize::try_from(entry).unwrap_or(NONE);
                let mark = take_over(&q, $end, from, stamp).map_err(D::Error::custom)?;
                Ok($ty { q, mark, stream: StreamState::default() })
            }
        }
    };
}

side_common!(Sender, End::Send, tx);
side_common!(Receiver, End::Recv, rx);

/// A decoded channel segment, checked to be a channel of `T`.
fn open<T>(seg: Segment, post: Option<crate::channel::post::Post>) -> Result<Queue<T>> {
    if seg.layout_identity() != (kind::QUEUE, channel_hash::<T>()) {
        return Err(Error::LayoutMismatch { expected: channel_hash::<T>(), found: seg.layout_identity().1 });
    }
    Queue::wrap(seg, post)
}

impl<T: Serialize> Sender<T> {
    fn send_with(&self, item: T, wait: Wait) -> std::result::Result<(), (T, Stop)> {
        self.q.put_via(item, wait, &ChannelEnds(self.q.inner()))
    }

    /// Sends `item`, waiting while the channel is full.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = shmproc::channel::<Vec<u8>>(1)?;
    /// tx.send(vec![1, 2, 3])?;
    /// assert_eq!(rx.recv()?, [1, 2, 3]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`SendError`], with the item: `Disconnected` once every receiver
    /// is gone (even with room: nobody would take it); `Failed` if it does
    /// not encode or a peer broke the channel.
    pub fn send(&self, item: T) -> std::result::Result<(), SendError<T>> {
        self.send_with(item, Wait::Forever).map_err(|(t, stop)| SendError::from_stop(t, stop))
    }

    /// Sends `item` if there is room now, never waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = shmproc::channel::<u8>(1)?;
    /// tx.try_send(1)?;
    /// assert_eq!(tx.try_send(2).unwrap_err().into_inner(), 2); // full
    /// assert_eq!(rx.recv()?, 1);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`TrySendError`], with the item: `Full`, `Disconnected`, `Failed`.
    pub fn try_send(&self, item: T) -> std::result::Result<(), TrySendError<T>> {
        self.send_with(item, Wait::No).map_err(|(t, stop)| TrySendError::from_stop(t, stop))
    }

    /// Sends `item`, waiting at most `timeout` for room.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, _rx) = shmproc::channel::<u8>(1)?;
    /// tx.send_timeout(1, std::time::Duration::from_secs(1))?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`SendTimeoutError`], with the item: `Timeout`, `Disconnected`,
    /// `Failed`.
    pub fn send_timeout(&self, item: T, timeout: Duration) -> std::result::Result<(), SendTimeoutError<T>> {
        self.send_with(item, Wait::after(timeout)).map_err(|(t, stop)| SendTimeoutError::from_stop(t, stop))
    }

    /// Sends `item`, waiting for room until `deadline` at most.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let (tx, _rx) = shmproc::channel::<u8>(1)?;
    /// tx.send_deadline(1, Instant::now() + Duration::from_secs(1))?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`send_timeout`](Sender::send_timeout).
    pub fn send_deadline(&self, item: T, deadline: Instant) -> std::result::Result<(), SendTimeoutError<T>> {
        self.send_with(item, Wait::Until(deadline)).map_err(|(t, stop)| SendTimeoutError::from_stop(t, stop))
    }
}

impl<T: DeserializeOwned> Receiver<T> {
    fn recv_with(&self, wait: Wait) -> std::result::Result<T, Stop> {
        self.q.get_via(wait, &ChannelEnds(self.q.inner()))
    }

    /// Takes the oldest item, waiting while the channel is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = shmproc::channel::<String>(4)?;
    /// tx.send("hi".into())?;
    /// assert_eq!(rx.recv()?, "hi");
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`RecvError`]: `Disconnected` once the channel is empty and every
    /// sender is gone; `Failed` if the bytes do not decode or a peer broke
    /// the channel.
    pub fn recv(&self) -> std::result::Result<T, RecvError> {
        self.recv_with(Wait::Forever).map_err(RecvError::from_stop)
    }

    /// Takes the oldest item if there is one now, never waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = shmproc::channel::<u8>(4)?;
    /// assert!(rx.try_recv().is_err());
    /// tx.send(5)?;
    /// assert_eq!(rx.try_recv()?, 5);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`TryRecvError`]: `Empty`, `Disconnected`, `Failed`.
    pub fn try_recv(&self) -> std::result::Result<T, TryRecvError> {
        self.recv_with(Wait::No).map_err(TryRecvError::from_stop)
    }

    /// Takes the oldest item, waiting at most `timeout` for one.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = shmproc::channel::<u8>(4)?;
    /// tx.send(5)?;
    /// assert_eq!(rx.recv_timeout(std::time::Duration::from_secs(1))?, 5);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`RecvTimeoutError`]: `Timeout`, `Disconnected`, `Failed`.
    pub fn recv_timeout(&self, timeout: Duration) -> std::result::Result<T, RecvTimeoutError> {
        self.recv_with(Wait::after(timeout)).map_err(RecvTimeoutError::from_stop)
    }

    /// Takes the oldest item, waiting for one until `deadline` at most.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let (tx, rx) = shmproc::channel::<u8>(4)?;
    /// tx.send(5)?;
    /// assert_eq!(rx.recv_deadline(Instant::now() + Duration::from_secs(1))?, 5);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`recv_timeout`](Receiver::recv_timeout).
    pub fn recv_deadline(&self, deadline: Instant) -> std::result::Result<T, RecvTimeoutError> {
        self.recv_with(Wait::Until(deadline)).map_err(RecvTimeoutError::from_stop)
    }

    /// A blocking iterator: each item as it comes, until the channel is
    /// empty and every sender is gone. An item that does not decode is
    /// yielded as its error, and the iteration goes on.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = shmproc::channel::<u8>(4)?;
    /// std::thread::spawn(move || {
    ///     for i in 0..3 {
    ///         tx.send(i).expect("send");
    ///     }
    /// });
    /// let got: Vec<u8> = rx.iter().collect::<Result<_, _>>()?;
    /// assert_eq!(got, [0, 1, 2]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self, wait: Wait::Forever }
    }

    /// The items there now, never waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = shmproc::channel::<u8>(4)?;
    /// tx.send(1)?;
    /// tx.send(2)?;
    /// assert_eq!(rx.try_iter().count(), 2);
    /// assert_eq!(rx.try_iter().count(), 0); // nothing now; tx still lives
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn try_iter(&self) -> Iter<'_, T> {
        Iter { rx: self, wait: Wait::No }
    }
}

/// The iterator of [`Receiver::iter`] (blocking) and
/// [`Receiver::try_iter`] (what is there now); also `for x in &rx`.
#[must_use = "iterators do nothing unless consumed"]
pub struct Iter<'a, T> {
    rx: &'a Receiver<T>,
    wait: Wait,
}

impl<T> std::fmt::Debug for Iter<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iter").field("blocking", &(self.wait == Wait::Forever)).finish_non_exhaustive()
    }
}

#[cfg(feature = "async")]
impl<T> crate::channel::wait::private::Sealed for Receiver<T> {}

/// Ready when an item is there, or every sender is gone.
#[cfg(feature = "async")]
impl<T> crate::channel::wait::Waitable for Receiver<T> {
    fn target(&self) -> Result<crate::channel::wait::WaitTarget<'_>> {
        let inner = self.q.inner();
        Ok(crate::channel::wait::WaitTarget::lane(inner.lane(), ChannelEnds(inner)))
    }
}

#[cfg(feature = "async")]
impl<T: Serialize> Sender<T> {
    /// Sends `item`, waiting for room without blocking the thread: the
    /// async twin of [`send`](Sender::send).
    ///
    /// Cancellation: a future dropped before it completes has sent
    /// nothing (the item is sent whole, in one step of one poll, or not
    /// at all).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = shmproc::channel::<u32>(1)?;
    /// futures::executor::block_on(tx.send_async(5))?;
    /// assert_eq!(rx.recv()?, 5);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`send`](Sender::send), with the item.
    pub async fn send_async(&self, item: T) -> std::result::Result<(), SendError<T>> {
        let ends = ChannelEnds(self.q.inner());
        self.q.put_via_async(item, &ends).await.map_err(|(t, stop)| SendError::from_stop(t, stop))
    }
}

#[cfg(feature = "async")]
impl<T: DeserializeOwned> Receiver<T> {
    /// Receives an item, waiting without blocking the thread: the async
    /// twin of [`recv`](Receiver::recv). The receiver is also a
    /// `futures_core::Stream` of the items [`iter`](Receiver::iter) yields.
    ///
    /// Cancellation: a future dropped before it completes has taken no
    /// item (an item is taken and decoded in one step of one poll).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = shmproc::channel::<String>(4)?;
    /// std::thread::spawn(move || tx.send("hello".into()));
    /// assert_eq!(futures::executor::block_on(rx.recv_async())?, "hello");
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`recv`](Receiver::recv).
    pub async fn recv_async(&self) -> std::result::Result<T, RecvError> {
        let ends = ChannelEnds(self.q.inner());
        self.q.get_via_async(&ends).await.map_err(RecvError::from_stop)
    }
}

/// The items of [`Receiver::iter`], without blocking the thread: the
/// stream ends once every sender is gone and the channel is drained.
///
/// Cancellation: a `poll_next` that returns `Pending` has taken nothing,
/// so dropping the receiver or not polling it again loses no item.
///
/// # Examples
///
/// ```
/// use futures::StreamExt;
/// let (tx, mut rx) = shmproc::channel::<u32>(4)?;
/// std::thread::spawn(move || (1..=3).try_for_each(|i| tx.send(i)));
/// let got: Vec<u32> = futures::executor::block_on(async {
///     let mut all = Vec::new();
///     while let Some(item) = rx.next().await {
///         all.push(item?);
///     }
///     Ok::<_, shmproc::Error>(all)
/// })?;
/// assert_eq!(got, [1, 2, 3]);
/// # Ok::<(), shmproc::Error>(())
/// ```
#[cfg(feature = "async")]
impl<T: DeserializeOwned> futures_core::Stream for Receiver<T> {
    type Item = Result<T>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<T>>> {
        let this = self.get_mut();
        let ends = ChannelEnds(this.q.inner());
        this.q.poll_get_via(&mut this.stream, cx, &ends).map(Stop::next_item)
    }
}

#[cfg(feature = "async")]
impl<S: Serialize, R: DeserializeOwned> Duplex<S, R> {
    /// [`Sender::send_async`] on the sending half.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = shmproc::Pipe::typed::<String, u32>()?;
    /// futures::executor::block_on(async {
    ///     a.send_async("ping".into()).await?;
    ///     let got = b.recv_async().await?;
    ///     b.send_async(got.len() as u32).await?;
    ///     assert_eq!(a.recv_async().await?, 4);
    ///     Ok::<(), shmproc::Error>(())
    /// })?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`Sender::send`].
    pub async fn send_async(&self, item: S) -> std::result::Result<(), SendError<S>> {
        self.tx.send_async(item).await
    }

    /// [`Receiver::recv_async`] on the receiving half.
    ///
    /// # Examples
    ///
    /// As for [`send_async`](Duplex::send_async).
    ///
    /// # Errors
    /// As for [`Receiver::recv`].
    pub async fn recv_async(&self) -> std::result::Result<R, RecvError> {
        self.rx.recv_async().await
    }
}

fn next_item<T: DeserializeOwned>(rx: &Receiver<T>, wait: Wait) -> Option<Result<T>> {
    Stop::next_item(rx.recv_with(wait))
}

impl<T: DeserializeOwned> Iterator for Iter<'_, T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        next_item(self.rx, self.wait)
    }
}

impl<'a, T: DeserializeOwned> IntoIterator for &'a Receiver<T> {
    type Item = Result<T>;
    type IntoIter = Iter<'a, T>;

    /// [`Receiver::iter`].
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

/// The owning iterator of `for x in rx` (blocking, as
/// [`Receiver::iter`]).
#[must_use = "iterators do nothing unless consumed"]
#[derive(Debug)]
pub struct IntoIter<T> {
    rx: Receiver<T>,
}

impl<T: DeserializeOwned> Iterator for IntoIter<T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        next_item(&self.rx, Wait::Forever)
    }
}

impl<T: DeserializeOwned> IntoIterator for Receiver<T> {
    type Item = Result<T>;
    type IntoIter = IntoIter<T>;

    /// Blocking, as [`Receiver::iter`].
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}

/// One end of a typed duplex pipe made by
/// [`Pipe::typed`](crate::Pipe::typed): sends `S`, receives `R` (two
/// channels, one each way).
///
/// # Examples
///
/// ```
/// fn server(end: shmproc::channel::Duplex<u64, String>) {
///     while let Ok(s) = end.recv() {
///         end.send(s.len() as u64).expect("send");
///     }
/// }
///
/// let (mine, theirs) = shmproc::Pipe::typed::<String, u64>()?;
/// let mut child = shmproc::Process::spawn(server, theirs)?;
/// mine.send("four".into())?;
/// assert_eq!(mine.recv()?, 4);
/// drop(mine); // the server's recv ends
/// child.join()?;
/// # Ok::<(), shmproc::Error>(())
/// ```
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(bound = "")]
pub struct Duplex<S, R> {
    /// The sending half.
    pub tx: Sender<S>,
    /// The receiving half.
    pub rx: Receiver<R>,
}

impl<S: Serialize, R: DeserializeOwned> Duplex<S, R> {
    /// [`Sender::send`] on the sending half.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = shmproc::Pipe::typed::<u8, u8>()?;
    /// a.send(1)?;
    /// assert_eq!(b.recv()?, 1);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`Sender::send`].
    pub fn send(&self, item: S) -> std::result::Result<(), SendError<S>> {
        self.tx.send(item)
    }

    /// [`Receiver::recv`] on the receiving half.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = shmproc::Pipe::typed::<u8, String>()?;
    /// b.send("back".into())?;
    /// assert_eq!(a.recv()?, "back");
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`Receiver::recv`].
    pub fn recv(&self) -> std::result::Result<R, RecvError> {
        self.rx.recv()
    }
}

impl crate::Pipe {
    /// A typed duplex pipe: two [`Duplex`] ends, the first sends `S` and
    /// receives `R`, the second the other way round. Each direction is an
    /// [`unbounded`] channel (bounded by [`UNBOUNDED_RING`] bytes: two
    /// peers that each send that much before receiving wait on each
    /// other), so an end's drop (or its process's death) ends the other
    /// end's receive with `Disconnected`.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = shmproc::Pipe::typed::<u32, String>()?;
    /// a.send(7)?;
    /// assert_eq!(b.recv()?, 7);
    /// b.send("seven".into())?;
    /// assert_eq!(a.recv()?, "seven");
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`unbounded`].
    pub fn typed<S, R>() -> Result<(Duplex<S, R>, Duplex<R, S>)>
    where
        S: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        let (s_tx, s_rx) = unbounded::<S>()?;
        let (r_tx, r_rx) = unbounded::<R>()?;
        Ok((Duplex { tx: s_tx, rx: r_rx }, Duplex { tx: r_tx, rx: s_rx }))
    }
}

/// Plain data sent as its bytes (the `Pod` fast path): no encoding, one
/// copy in and one out. Wrap a [`bytemuck::Pod`] value to send it through
/// a channel, a [`Queue`] or a `Connection` without serde.
///
/// # Examples
///
/// ```
/// use shmproc::channel::Pod;
/// let (tx, rx) = shmproc::channel::<Pod<[f32; 4]>>(8)?;
/// tx.send(Pod([1.0, 2.0, 3.0, 4.0]))?;
/// let Pod(v) = rx.recv()?;
/// assert_eq!(v, [1.0, 2.0, 3.0, 4.0]);
/// # Ok::<(), shmproc::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(transparent)]
pub struct Pod<T>(pub T);

impl<T: bytemuck::Pod> Serialize for Pod<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_bytes(bytemuck::bytes_of(&self.0))
    }
}

impl<'de, T: bytemuck::Pod> serde::Deserialize<'de> for Pod<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Bytes<T>(PhantomData<T>);
        impl<T: bytemuck::Pod> serde::de::Visitor<'_> for Bytes<T> {
            type Value = Pod<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{} bytes", core::mem::size_of::<T>())
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> std::result::Result<Pod<T>, E> {
                bytemuck::try_pod_read_unaligned(v).map(Pod).map_err(|_| E::invalid_length(v.len(), &self))
            }
        }
        d.deserialize_bytes(Bytes(PhantomData))
    }
}

#[cfg(all(test, not(shmproc_loom)))]
mod tests {
    use super::*;
    use crate::channel::typed_error::TryRecvError;
    use crate::loom::atomic::AtomicU64;
    use crate::shm::handoff;

    #[test]
    fn a_handle_in_flight_counts_until_it_is_decoded() {
        let (tx, rx) = channel::<u8>(4).expect("channel");
        let (bytes, fds, undo) = handoff::collecting(|| crate::codec::encode(&tx));
        let bytes = bytes.expect("encode");
        drop(tx);
        assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)), "the encoded sender still counts");
        drop(undo); // decoded below: not given back
        let tx2: Sender<u8> = handoff::with_fds(fds, || crate::codec::decode(&bytes)).expect("decode");
        assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)), "now the decoded one does");
        tx2.send(1).expect("send");
        drop(tx2);
        assert_eq!(rx.recv().expect("recv"), 1);
        assert!(matches!(rx.try_recv(), Err(TryRecvError::Disconnected)), "nothing left in flight");
    }

    #[test]
    fn a_decoded_receiver_of_another_type_is_refused() {
        let (tx, _rx) = channel::<u8>(4).expect("channel");
        let (bytes, fds, undo) = handoff::collecting(|| crate::codec::encode(&tx));
        let bytes = bytes.expect("encode");
        let wrong: Result<Sender<u16>> = handoff::with_fds(fds, || crate::codec::decode(&bytes));
        assert!(wrong.is_err(), "a channel of u8 is not one of u16");
        undo.run();
    }

    #[test]
    fn an_encoding_that_never_reaches_a_decoder_is_undone() {
        let (tx, rx) = channel::<u8>(4).expect("channel");
        let (bytes, _fds, undo) = handoff::collecting(|| crate::codec::encode(&(tx.clone(), tx.clone())));
        assert!(bytes.is_ok());
        drop(tx);
        assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)), "two handles in flight");
        undo.run();
        assert!(matches!(rx.try_recv(), Err(TryRecvError::Disconnected)), "both given back");
    }

    #[test]
    fn a_decoder_whose_encoder_was_reclaimed_counts_afresh() {
        let (tx, rx) = channel::<u8>(4).expect("channel");
        let (bytes, fds, undo) = handoff::collecting(|| crate::codec::encode(&tx));
        let bytes = bytes.expect("encode");
        drop(undo);
        // As if the encoder had died and its entry been reclaimed: the
        // in-flight handle left the header with it.
        let mut tx = tx;
        let inner = tx.q.inner();
        let e = inner.registry(End::Send).entry(tx.mark.entry).expect("entry");
        assert!(words::reclaim(total(inner, End::Send), &e.taken), "both handles left: zero");
        tx.mark.entry = NONE; // its count went with the reclaim
        drop(tx);
        let tx2: Sender<u8> = handoff::with_fds(fds, || crate::codec::decode(&bytes)).expect("decode");
        assert_eq!(total(tx2.q.inner(), End::Send).load(Ordering::SeqCst), 1, "counted afresh");
        drop(tx2);
        assert!(matches!(rx.try_recv(), Err(TryRecvError::Disconnected)));
    }

    #[test]
    fn counting_words_check_the_stamp_and_reclaim_once() {
        let (total, e) = (AtomicU64::new(0), AtomicU64::new(0));
        assert!(words::count_in(&total, &e, 7));
        assert!(!words::give_back(&total, &e, 8), "another stamp gives nothing back");
        assert_eq!(total.load(Ordering::SeqCst), 1);
        assert!(words::count_in(&total, &e, 7));
        let seen = e.load(Ordering::SeqCst);
        assert!(words::leave(&e, 7) && words::enter(&e, 7), "a take-over in the same process");
        assert_eq!(words::reclaim_seen(&total, &e, seen ^ 1), None, "changed since seen: nothing taken");
        assert_eq!(words::reclaim_seen(&total, &e, seen), Some(true), "both handles leave; zero");
        assert!(words::count_in(&total, &e, 7) && words::count_in(&total, &e, 7));
        assert!(words::reclaim(&total, &e), "both handles leave; the count reaches zero");
        assert!(!words::reclaim(&total, &e), "once");
        assert!(!words::give_back(&total, &e, 7), "nothing left to give back");
        assert_eq!(total.load(Ordering::SeqCst), 0);
        // A word of another stamp (a reclaimed previous holder's) starts over.
        e.store((9u64 << 32) | 5, Ordering::SeqCst);
        assert!(words::count_in(&total, &e, 7));
        assert_eq!(words::held(e.load(Ordering::SeqCst)), 1);
        // The count's limit.
        e.store((7u64 << 32) | 0xffff_ffff, Ordering::SeqCst);
        assert!(!words::count_in(&total, &e, 7));
        assert_eq!(total.load(Ordering::SeqCst), 1, "nothing counted past the limit");
    }
}
