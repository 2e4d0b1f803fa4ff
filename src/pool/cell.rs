//! Parent-side completions: [`Cell`] (one job, one result: `AsyncResult`,
//! `TaskFuture`) and [`Batch`] (many chunks: `map`, `imap`, executor `map`),
//! and the decoding of results.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Weak};
#[cfg(feature = "async")]
use std::task::Waker;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::pool::engine::{Shared, Sink};
use crate::pool::error::{TaskError, TaskTimeoutError};
use crate::pool::wire::{Encoded, Failure, ItemOutcome, JobOutcome, Outcomes};
use crate::shm::handoff;
use crate::sys::signal::InterruptibleWait;

/// Decodes a result in the parent (with its record's descriptors); a
/// panic of the type's `Deserialize` becomes an error.
pub(crate) fn decode_result<R: DeserializeOwned>(item: &Encoded) -> Result<R> {
    decoding_guarded(|| handoff::decoding_with(item.fds.as_ref(), || crate::codec::decode::<R>(&item.bytes)))
}

/// Runs a decoding of results; a panic (of a type's `Deserialize`)
/// becomes an error.
fn decoding_guarded<T>(decode: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(decode)).unwrap_or_else(|p| {
        Err(Error::Codec {
            message: format!("decoding the result panicked: {}", crate::error::panic_message(p.as_ref())),
        })
    })
}

/// Decodes the items of `outcomes` onto `out`, in order, up to the first
/// that failed or does not decode: that one's error. Packed items (no
/// descriptors) are decoded under one panic guard for the run.
pub(crate) fn decode_items<R: DeserializeOwned>(outcomes: Outcomes, out: &mut Vec<R>) -> Option<Error> {
    let Outcomes::Packed(packed) = outcomes else {
        return outcomes.into_iter().find_map(|item| {
            match item.map_err(|f| f.error()).and_then(|item| decode_result::<R>(&item)) {
                Ok(value) => {
                    out.push(value);
                    None
                }
                Err(e) => Some(e),
            }
        });
    };
    decoding_guarded(|| packed.items().try_for_each(|bytes| crate::codec::decode::<R>(bytes).map(|r| out.push(r))))
        .err()
}

/// Runs a user callback; its panic becomes its message.
pub(crate) fn guarded(f: impl FnOnce()) -> std::result::Result<(), String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| crate::error::panic_message(p.as_ref()))
}

/// The single item of a one-item job.
pub(crate) fn single(outcome: JobOutcome) -> ItemOutcome {
    match outcome {
        JobOutcome::Items(v) if v.len() == 1 => v.into_iter().next().expect("invariant: one item"),
        JobOutcome::Items(_) => Err(Failure::TaskError("a result record with the wrong number of items".into())),
        JobOutcome::Failed(f) => Err(f),
    }
}

/// Stores `waker` in `slot`, replacing what is there unless it would wake
/// the same task (a future polled again with another waker keeps one
/// waker, the latest).
#[cfg(feature = "async")]
pub(crate) fn set_waker(slot: &mut Option<Waker>, waker: &Waker) {
    match slot {
        Some(w) if w.will_wake(waker) => {}
        _ => *slot = Some(waker.clone()),
    }
}

/// What a [`Watcher`] holds under its lock.
#[derive(Debug, Default)]
struct WatcherState {
    /// Completed indices not yet taken, in completion order.
    ready: VecDeque<usize>,
    /// The task of an `AsCompleted` stream waiting for the next index.
    #[cfg(feature = "async")]
    waker: Option<Waker>,
}

/// Waits for the completion of several cells (`as_completed`, `wait`).
#[derive(Debug, Default)]
pub(crate) struct Watcher {
    state: Mutex<WatcherState>,
    cond: Condvar,
}

impl Watcher {
    /// The next completed index, waiting until `deadline`.
    pub(crate) fn next(&self, deadline: Option<Instant>) -> Option<usize> {
        let _w = InterruptibleWait::new();
        let mut st = self.state.lock();
        loop {
            if let Some(i) = st.ready.pop_front() {
                return Some(i);
            }
            match deadline {
                None => self.cond.wait(&mut st),
                Some(d) => {
                    if self.cond.wait_until(&mut st, d).timed_out() {
                        return st.ready.pop_front();
                    }
                }
            }
        }
    }

    /// The next completed index if there is one; otherwise `waker` is
    /// woken at the next completion. An index is taken only when it is
    /// returned, so a poll that is dropped loses none.
    #[cfg(feature = "async")]
    pub(crate) fn poll_next(&self, waker: &Waker) -> Option<usize> {
        let mut st = self.state.lock();
        let next = st.ready.pop_front();
        if next.is_none() {
            set_waker(&mut st.waker, waker);
        }
        next
    }

    fn notify(&self, index: usize) {
        let mut st = self.state.lock();
        st.ready.push_back(index);
        #[cfg(feature = "async")]
        let waker = st.waker.take();
        drop(st);
        self.cond.notify_all();
        #[cfg(feature = "async")]
        if let Some(w) = waker {
            w.wake();
        }
    }
}

type Callback = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct CellState {
    outcome: Option<ItemOutcome>,
    /// The outcome held descriptors and was decoded once (they went to
    /// that value).
    given: bool,
    on_done: Vec<Callback>,
    watchers: Vec<(Arc<Watcher>, usize)>,
    /// The wakers of the pending futures awaiting this cell
    /// (`TaskFutureAwait`, `AsyncResultAwait`), one per future, by key.
    #[cfg(feature = "async")]
    wakers: Vec<(u64, Waker)>,
    /// The key the next future to register gets.
    #[cfg(feature = "async")]
    next_key: u64,
}

/// One job's completion.
pub(crate) struct Cell {
    id: u64,
    engine: Weak<Shared>,
    state: Mutex<CellState>,
    cond: Condvar,
}

impl std::fmt::Debug for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cell").field("id", &self.id).field("done", &self.is_done()).finish()
    }
}

impl Cell {
    pub(crate) fn new(id: u64, engine: Weak<Shared>) -> Cell {
        Cell { id, engine, state: Mutex::new(CellState::default()), cond: Condvar::new() }
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn engine(&self) -> Option<Arc<Shared>> {
        self.engine.upgrade()
    }

    /// Sets the outcome (first one wins) and runs what waits for it:
    /// blocked threads, the wakers of futures, done callbacks, watchers.
    pub(crate) fn complete(&self, outcome: ItemOutcome) -> bool {
        self.complete_given(outcome, false)
    }

    /// [`complete`](Self::complete), with the outcome's descriptors
    /// already `given` (to a callback).
    pub(crate) fn complete_given(&self, outcome: ItemOutcome, given: bool) -> bool {
        let mut st = self.state.lock();
        if st.outcome.is_some() {
            return false;
        }
        st.outcome = Some(outcome);
        st.given = given;
        let callbacks = std::mem::take(&mut st.on_done);
        let watchers = std::mem::take(&mut st.watchers);
        #[cfg(feature = "async")]
        let wakers = std::mem::take(&mut st.wakers);
        // Everything runs outside the lock: a woken future may be polled
        // at once on another thread, and polling takes the lock.
        drop(st);
        self.cond.notify_all();
        #[cfg(feature = "async")]
        for (_, w) in wakers {
            w.wake();
        }
        for cb in callbacks {
            if let Err(m) = guarded(cb) {
                eprintln!("shmproc: a done callback panicked: {m}");
            }
        }
        for (w, i) in watchers {
            w.notify(i);
        }
        true
    }

    pub(crate) fn is_done(&self) -> bool {
        self.state.lock().outcome.is_some()
    }

    /// Whether it completed with `Cancelled`.
    pub(crate) fn is_cancelled(&self) -> bool {
        matches!(self.state.lock().outcome, Some(Err(Failure::Cancelled)))
    }

    /// Whether it completed with a failure other than a cancellation
    /// (Python: the future raised; `FIRST_EXCEPTION`).
    pub(crate) fn raised(&self) -> bool {
        matches!(self.state.lock().outcome, Some(Err(ref f)) if *f != Failure::Cancelled)
    }

    /// Waits until done or `deadline`; whether done.
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> bool {
        let mut st = self.state.lock();
        if st.outcome.is_some() {
            return true;
        }
        let _w = InterruptibleWait::new();
        while st.outcome.is_none() {
            match deadline {
                None => self.cond.wait(&mut st),
                Some(d) => {
                    if self.cond.wait_until(&mut st, d).timed_out() {
                        break;
                    }
                }
            }
        }
        st.outcome.is_some()
    }

    /// Applies `f` to the outcome (`None` while pending).
    pub(crate) fn with_outcome<T>(&self, f: impl FnOnce(Option<&ItemOutcome>) -> T) -> T {
        f(self.state.lock().outcome.as_ref())
    }

    /// The decoded result (the cell must be done).
    pub(crate) fn value<R: DeserializeOwned>(&self) -> std::result::Result<R, TaskError> {
        // Decoded outside the lock: a slow or panicking Deserialize must
        // not hold it.
        let item = {
            let mut st = self.state.lock();
            let st = &mut *st;
            match &st.outcome {
                // Descriptors have one owner: the first value decoded.
                Some(Ok(b)) if b.fds.is_some() && st.given => Err(TaskError::Failed(Error::InvalidArgument {
                    what: "the result held descriptors: they went to the first get (or its callback)",
                })),
                Some(Ok(b)) => {
                    st.given |= b.fds.is_some();
                    Ok(b.clone())
                }
                Some(Err(f)) => Err(TaskError::from_failure(f)),
                None => Err(TaskError::Failed(Error::InvalidArgument { what: "the task is not done" })),
            }
        }?;
        decode_result(&item).map_err(TaskError::Failed)
    }

    /// Waits until done or `deadline`, then the decoded result.
    pub(crate) fn value_until<R: DeserializeOwned>(
        &self,
        deadline: Option<Instant>,
    ) -> std::result::Result<R, TaskTimeoutError> {
        if !self.wait(deadline) {
            return Err(TaskTimeoutError::Timeout);
        }
        self.value().map_err(TaskTimeoutError::from)
    }

    /// Whether done; if not, `waker` is woken when it is. `key` names the
    /// polling future's entry (given on its first registration): a later
    /// poll replaces that entry's waker unless it would wake the same task
    /// ([`Waker::will_wake`]), so a future keeps one waker however often it
    /// is polled.
    #[cfg(feature = "async")]
    pub(crate) fn poll_done(&self, key: &mut Option<u64>, waker: &Waker) -> bool {
        let mut st = self.state.lock();
        if st.outcome.is_some() {
            return true;
        }
        let st = &mut *st;
        match key.and_then(|k| st.wakers.iter_mut().find(|(id, _)| *id == k)) {
            Some((_, w)) => {
                if !w.will_wake(waker) {
                    *w = waker.clone();
                }
            }
            None => {
                let k = st.next_key;
                st.next_key += 1;
                st.wakers.push((k, waker.clone()));
                *key = Some(k);
            }
        }
        false
    }

    /// Forgets the waker registered under `key` (a pending future was
    /// dropped); the task goes on.
    #[cfg(feature = "async")]
    pub(crate) fn forget_waker(&self, key: u64) {
        self.state.lock().wakers.retain(|(id, _)| *id != key);
    }

    /// How many futures have a waker registered (for tests).
    #[cfg(all(test, feature = "async"))]
    fn wakers(&self) -> usize {
        self.state.lock().wakers.len()
    }

    /// Runs `cb` when done (now, in this thread, if already done).
    pub(crate) fn on_done(&self, cb: Callback) {
        let mut st = self.state.lock();
        if st.outcome.is_none() {
            st.on_done.push(cb);
            return;
        }
        drop(st);
        if let Err(m) = guarded(cb) {
            eprintln!("shmproc: a done callback panicked: {m}");
        }
    }

    /// Reports `index` to `w` when done (now if already done).
    pub(crate) fn watch(&self, w: &Arc<Watcher>, index: usize) {
        let mut st = self.state.lock();
        if st.outcome.is_none() {
            st.watchers.push((w.clone(), index));
            return;
        }
        drop(st);
        w.notify(index);
    }
}

/// The awaiting of one cell by one future (`TaskFutureAwait`,
/// `AsyncResultAwait`): its waker's key, forgotten when it is dropped.
#[cfg(feature = "async")]
#[derive(Debug)]
pub(crate) struct CellAwait {
    cell: Arc<Cell>,
    /// This future's entry in the cell's wakers, once it registered.
    key: Option<u64>,
}

#[cfg(feature = "async")]
impl CellAwait {
    pub(crate) fn new(cell: Arc<Cell>) -> CellAwait {
        CellAwait { cell, key: None }
    }

    /// The decoded result once the cell is done; until then its waker is
    /// registered (and `Pending`). Never waits.
    pub(crate) fn poll_value<R: DeserializeOwned>(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::result::Result<R, TaskError>> {
        if !self.cell.poll_done(&mut self.key, cx.waker()) {
            return std::task::Poll::Pending;
        }
        // complete() took every waker: nothing left to forget.
        self.key = None;
        std::task::Poll::Ready(self.cell.value())
    }
}

#[cfg(feature = "async")]
impl Drop for CellAwait {
    fn drop(&mut self) {
        if let Some(k) = self.key {
            self.cell.forget_waker(k);
        }
    }
}

impl Sink for Cell {
    fn deliver(&self, _chunk: u64, outcome: JobOutcome) {
        self.complete(single(outcome));
    }
}

/// What runs on a job's outcome before its cell completes (the callbacks
/// of `apply_async_with` and `map_async_with`); it returns the outcome to
/// complete with.
pub(crate) type Finish = Box<dyn FnOnce(ItemOutcome) -> ItemOutcome + Send>;

/// `on_ok(value)` (the outcome's bytes decoded as an `R`) or
/// `on_err(error)`, run in the supervisor thread; a panic of either makes
/// the outcome `CallbackPanicked`.
pub(crate) fn callbacks_finish<R, F, E>(on_ok: F, on_err: E) -> Finish
where
    R: DeserializeOwned,
    F: FnOnce(R) + Send + 'static,
    E: FnOnce(Error) + Send + 'static,
{
    Box::new(move |outcome: ItemOutcome| {
        let ran = match &outcome {
            Ok(bytes) => match decode_result::<R>(bytes) {
                Ok(v) => guarded(move || on_ok(v)),
                Err(e) => guarded(move || on_err(e)),
            },
            Err(f) => {
                let e = f.error();
                guarded(move || on_err(e))
            }
        };
        match ran {
            Ok(()) => outcome,
            Err(m) => Err(Failure::CallbackPanicked(m)),
        }
    })
}

/// A job whose result goes through callbacks first
/// (`Pool::apply_async_with`): its [`Finish`] runs in the supervisor
/// thread, then the cell completes.
pub(crate) struct CallbackSink {
    pub(crate) cell: Arc<Cell>,
    pub(crate) finish: Mutex<Option<Finish>>,
}

impl CallbackSink {
    /// Runs the finish (once) on `item`, then completes the cell.
    pub(crate) fn complete(&self, item: ItemOutcome) {
        // Taken before it runs: the lock is not held during the callbacks.
        let finish = self.finish.lock().take();
        let fds = matches!(&item, Ok(e) if e.fds.is_some());
        let given = fds && finish.is_some();
        self.cell.complete_given(
            match finish {
                Some(f) => f(item),
                None => item,
            },
            given,
        );
    }
}

impl Sink for CallbackSink {
    fn deliver(&self, _chunk: u64, outcome: JobOutcome) {
        self.complete(single(outcome));
    }
}

/// A chunk's place in a batch.
enum Slot {
    Pending,
    Ready(JobOutcome),
    Taken,
}

#[derive(Default)]
struct BatchState {
    /// The chunk index of `slots[0]`: every chunk before it was taken.
    base: u64,
    /// Chunks `base..`, by index: a ring, so lookups are O(1) and taken
    /// chunks at the front are dropped.
    slots: VecDeque<Slot>,
    /// Delivered chunk indices in completion order (for unordered reads).
    order: VecDeque<u64>,
    /// Chunks delivered so far.
    delivered: u64,
    /// Whether a delivered chunk failed (in whole or in one item).
    failed: bool,
    /// What the reader waits for (deliveries wake it only then).
    waiting: Waiting,
    /// The task of an `Imap` stream waiting for what `waiting` says.
    #[cfg(feature = "async")]
    waker: Option<Waker>,
}

impl BatchState {
    /// Places chunk `chunk`'s outcome unless it has one (first wins):
    /// whether the reader waits for it.
    fn place(&mut self, chunk: u64, outcome: JobOutcome, unordered: bool) -> bool {
        let Some(i) = chunk.checked_sub(self.base).and_then(|i| usize::try_from(i).ok()) else { return false };
        if self.slots.len() <= i {
            self.slots.resize_with(i + 1, || Slot::Pending);
        }
        if !matches!(self.slots[i], Slot::Pending) {
            return false;
        }
        self.failed |= match &outcome {
            JobOutcome::Failed(_) => true,
            JobOutcome::Items(v) => v.any_failed(),
        };
        self.slots[i] = Slot::Ready(outcome);
        if unordered {
            self.order.push_back(chunk);
        }
        self.delivered += 1;
        match self.waiting {
            Waiting::Nothing => false,
            Waiting::All(total) => self.delivered >= total || self.failed,
            Waiting::Chunk(c) => c == chunk,
            Waiting::Any => true,
        }
    }

    /// Takes chunk `chunk` if it was delivered and not taken.
    fn take(&mut self, chunk: u64) -> Option<JobOutcome> {
        let i = usize::try_from(chunk.checked_sub(self.base)?).ok()?;
        let slot = self.slots.get_mut(i)?;
        if !matches!(slot, Slot::Ready(_)) {
            return None;
        }
        let Slot::Ready(o) = std::mem::replace(slot, Slot::Taken) else { unreachable!("matched Ready above") };
        while matches!(self.slots.front(), Some(Slot::Taken)) {
            self.slots.pop_front();
            self.base += 1;
        }
        Some(o)
    }
}

/// What a batch's reader waits for.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    #[default]
    Nothing,
    /// This many deliveries, or a failure.
    All(u64),
    /// This chunk.
    Chunk(u64),
    /// Any chunk.
    Any,
}

/// The chunks of one `map`/`imap`.
#[derive(Default)]
pub(crate) struct Batch {
    state: Mutex<BatchState>,
    cond: Condvar,
    /// Whether chunks are read in completion order (`take_any`).
    unordered: bool,
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch").field("delivered", &self.state.lock().delivered).finish()
    }
}

impl Sink for Batch {
    fn deliver(&self, chunk: u64, outcome: JobOutcome) {
        self.deliver_many(&mut std::iter::once((chunk, outcome)));
    }

    fn deliver_many(&self, outcomes: &mut dyn Iterator<Item = (u64, JobOutcome)>) {
        let mut st = self.state.lock();
        let mut wake = false;
        for (chunk, outcome) in outcomes {
            wake |= st.place(chunk, outcome, self.unordered);
        }
        #[cfg(feature = "async")]
        let waker = if wake { st.waker.take() } else { None };
        drop(st);
        if wake {
            self.cond.notify_all();
        }
        #[cfg(feature = "async")]
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl Batch {
    /// A batch read in chunk order, or in completion order (`unordered`).
    pub(crate) fn new(unordered: bool) -> Batch {
        Batch { unordered, ..Batch::default() }
    }

    /// Waits until `total` chunks were delivered, or one failed.
    pub(crate) fn wait_all(&self, total: u64) {
        let mut st = self.state.lock();
        if st.delivered >= total || st.failed {
            return;
        }
        let _w = InterruptibleWait::new();
        st.waiting = Waiting::All(total);
        while st.delivered < total && !st.failed {
            self.cond.wait(&mut st);
        }
        st.waiting = Waiting::Nothing;
    }

    /// Takes chunk `from` and the chunks after it that were delivered, up
    /// to the first that was not, in order, into `out` (one lock hold for
    /// the run); never waits.
    pub(crate) fn take_delivered(&self, from: u64, out: &mut Vec<JobOutcome>) {
        let mut st = self.state.lock();
        let mut chunk = from;
        while let Some(o) = st.take(chunk) {
            out.push(o);
            chunk += 1;
        }
    }

    /// Takes chunk `chunk`, waiting for it.
    pub(crate) fn take(&self, chunk: u64) -> JobOutcome {
        self.take_until(chunk, None).expect("invariant: without a deadline the wait ends only with the chunk")
    }

    /// Takes chunk `chunk`, waiting for it until `deadline`; `None` if it
    /// was not delivered by then (executor `map_timeout`).
    pub(crate) fn take_until(&self, chunk: u64, deadline: Option<Instant>) -> Option<JobOutcome> {
        let mut st = self.state.lock();
        if let Some(o) = st.take(chunk) {
            return Some(o);
        }
        let _w = InterruptibleWait::new();
        st.waiting = Waiting::Chunk(chunk);
        loop {
            if let Some(o) = st.take(chunk) {
                st.waiting = Waiting::Nothing;
                return Some(o);
            }
            match deadline {
                None => self.cond.wait(&mut st),
                Some(d) => {
                    if self.cond.wait_until(&mut st, d).timed_out() {
                        let o = st.take(chunk);
                        st.waiting = Waiting::Nothing;
                        return o;
                    }
                }
            }
        }
    }

    /// Takes the first chunk delivered and not taken yet, waiting for one;
    /// with its index.
    pub(crate) fn take_any(&self) -> (u64, JobOutcome) {
        let mut st = self.state.lock();
        let _w = InterruptibleWait::new();
        st.waiting = Waiting::Any;
        loop {
            while let Some(c) = st.order.pop_front() {
                if let Some(o) = st.take(c) {
                    st.waiting = Waiting::Nothing;
                    return (c, o);
                }
            }
            self.cond.wait(&mut st);
        }
    }

    /// Takes chunk `chunk` if it was delivered; otherwise `waker` is woken
    /// when it is. Never waits.
    #[cfg(feature = "async")]
    pub(crate) fn poll_take(&self, chunk: u64, waker: &Waker) -> Option<JobOutcome> {
        let mut st = self.state.lock();
        if let Some(o) = st.take(chunk) {
            st.waiting = Waiting::Nothing;
            st.waker = None;
            return Some(o);
        }
        st.waiting = Waiting::Chunk(chunk);
        set_waker(&mut st.waker, waker);
        None
    }

    /// Takes the first chunk delivered and not taken yet, with its index;
    /// if there is none, `waker` is woken at the next delivery. Never
    /// waits.
    #[cfg(feature = "async")]
    pub(crate) fn poll_take_any(&self, waker: &Waker) -> Option<(u64, JobOutcome)> {
        let mut st = self.state.lock();
        while let Some(c) = st.order.pop_front() {
            if let Some(o) = st.take(c) {
                st.waiting = Waiting::Nothing;
                st.waker = None;
                return Some((c, o));
            }
        }
        st.waiting = Waiting::Any;
        set_waker(&mut st.waker, waker);
        None
    }

    /// Delivers a failure for a chunk that was never submitted (its
    /// argument did not encode).
    pub(crate) fn fail_local(&self, chunk: u64, failure: Failure) {
        self.deliver(chunk, JobOutcome::Failed(failure));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(n: u8) -> JobOutcome {
        JobOutcome::Items(vec![Ok(Encoded::plain(vec![n]))].into())
    }

    #[test]
    fn batches_deliver_once_in_any_order() {
        let b = Batch::new(false);
        b.deliver(2, ok(2));
        b.deliver(0, ok(0));
        b.deliver(0, ok(9)); // a second outcome is dropped
        b.deliver(1, JobOutcome::Failed(Failure::Cancelled));
        assert!(matches!(b.take(0), JobOutcome::Items(Outcomes::One(o)) if o == Ok(Encoded::plain(vec![0]))));
        assert!(matches!(b.take(1), JobOutcome::Failed(Failure::Cancelled)));
        b.deliver(1, ok(1)); // after it was taken: dropped
        assert!(matches!(b.take(2), JobOutcome::Items(Outcomes::One(o)) if o == Ok(Encoded::plain(vec![2]))));
        b.wait_all(3);
        let u = Batch::new(true);
        u.deliver(5, ok(5));
        u.deliver(3, ok(3));
        assert_eq!(u.take_any().0, 5);
        assert_eq!(u.take_any().0, 3);
    }

    /// A waker that counts its wakes.
    #[cfg(feature = "async")]
    #[derive(Default)]
    struct Count(std::sync::atomic::AtomicUsize);

    #[cfg(feature = "async")]
    impl std::task::Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[cfg(feature = "async")]
    fn counting() -> (Arc<Count>, Waker) {
        let c = Arc::new(Count::default());
        (c.clone(), Waker::from(c))
    }

    #[cfg(feature = "async")]
    fn wakes(c: &Count) -> usize {
        c.0.load(std::sync::atomic::Ordering::SeqCst)
    }

    #[cfg(feature = "async")]
    #[test]
    fn a_future_keeps_one_waker_the_latest_and_forgets_it_on_drop() {
        let cell = Cell::new(1, Weak::new());
        let (a, wa) = counting();
        let (b, wb) = counting();
        let (c, wc) = counting();
        let mut first = None;
        assert!(!cell.poll_done(&mut first, &wa));
        assert!(!cell.poll_done(&mut first, &wa)); // the same waker: kept
        assert!(!cell.poll_done(&mut first, &wb)); // another: replaces it
        assert_eq!(cell.wakers(), 1);
        let mut second = None;
        assert!(!cell.poll_done(&mut second, &wc));
        assert_eq!(cell.wakers(), 2);
        cell.forget_waker(second.expect("registered")); // a dropped future
        assert_eq!(cell.wakers(), 1);
        assert!(cell.complete(Ok(Encoded::plain(vec![1]))));
        assert_eq!((wakes(&a), wakes(&b), wakes(&c)), (0, 1, 0));
        assert_eq!(cell.wakers(), 0);
        assert!(cell.poll_done(&mut first, &wa));
        assert!(!cell.complete(Ok(Encoded::plain(vec![2]))));
        assert_eq!(wakes(&b), 1);
    }

    #[cfg(feature = "async")]
    #[test]
    fn batch_and_watcher_polls_take_nothing_until_ready() {
        let b = Batch::new(false);
        let (a, wa) = counting();
        let (n, wn) = counting();
        assert!(b.poll_take(0, &wa).is_none());
        assert!(b.poll_take(0, &wn).is_none()); // replaced
        b.deliver(1, ok(1)); // not the chunk waited for
        assert_eq!((wakes(&a), wakes(&n)), (0, 0));
        b.deliver(0, ok(0));
        assert_eq!((wakes(&a), wakes(&n)), (0, 1));
        assert!(b.poll_take(0, &wn).is_some());
        assert!(b.poll_take(1, &wn).is_some());
        assert_eq!(wakes(&n), 1);

        let u = Batch::new(true);
        assert!(u.poll_take_any(&wa).is_none());
        u.deliver(4, ok(4));
        assert_eq!(wakes(&a), 1);
        assert_eq!(u.poll_take_any(&wa).map(|(c, _)| c), Some(4));

        let w = Watcher::default();
        assert_eq!(w.poll_next(&wa), None);
        w.notify(7);
        w.notify(3);
        assert_eq!(wakes(&a), 2);
        assert_eq!(w.poll_next(&wa), Some(7));
        assert_eq!(w.poll_next(&wa), Some(3));
    }
}
