//! Submitting chunks of items, and the iterator over their results that
//! `Pool::imap`, `Pool::imap_unordered` and `ProcessPoolExecutor::map`
//! return.

use std::collections::{HashMap, VecDeque};
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::pool::cell::{Batch, decode_result};
use crate::pool::engine::Shared;
use crate::pool::error::TaskError;
use crate::pool::wire::{self, Failure, ItemOutcome, JobOutcome, TaskFns, TaskRecord, TaskWriter};
use crate::pool::worker::{PoolTrampoline, trampoline};
use crate::process::task::TaskFn;
use crate::shm::fnref::FnRef;
use crate::sync::error::TimedOut;
use crate::sys::signal::InterruptibleWait;

/// The compact ids of the trampoline for `(F, A, R)` and of `f`, and
/// `f`'s encoded captures (encoded here, once per call).
pub(crate) fn task_fns<F, A, R>(f: &F) -> Result<TaskFns>
where
    F: TaskFn<A, R>,
    A: DeserializeOwned + 'static,
    R: Serialize + 'static,
{
    let t: PoolTrampoline = trampoline::<F, A, R>;
    let stat = |e| Error::os("stat /proc/self/exe", e);
    let (function, captures) = f.__name(crate::process::task::TOKEN)?;
    TaskFns::new(FnRef::of(t).map_err(stat)?.id(), FnRef::from_words(function).id(), captures)
}

/// One chunk taken from an input: its job id, record and item count, or
/// the error of the item that did not encode (with the count so far), or
/// the panic of the input iterator (the chunk's items are dropped and the
/// input must not be read again).
pub(crate) enum Chunk {
    Ready { id: u64, record: TaskRecord, items: u32 },
    Bad { items: u32, error: Error },
    Panicked { error: Error },
}

/// The next item of `input`; a panic of its `next` becomes
/// [`Error::InputPanicked`] (the iterator must not be used again then).
pub(crate) fn next_guarded<A>(input: &mut impl Iterator<Item = A>) -> Result<Option<A>> {
    // AssertUnwindSafe: after a panic the iterator is never called again
    // (its callers drop or fuse it), so a broken invariant inside it is
    // never observed.
    catch_unwind(AssertUnwindSafe(|| input.next()))
        .map_err(|p| Error::InputPanicked { message: crate::error::panic_message(p.as_ref()) })
}

/// How many items a chunk takes: `items` at most; those beyond `asked`
/// (packed: see `Pool::map_chunked`) only while its record holds fewer than
/// [`PACK_BYTES`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChunkSize {
    pub(crate) items: usize,
    pub(crate) asked: usize,
}

impl ChunkSize {
    /// Exactly `n` items.
    pub(crate) fn exactly(n: usize) -> ChunkSize {
        ChunkSize { items: n, asked: n }
    }
}

/// The record size past which a chunk takes no more packed items.
const PACK_BYTES: usize = 64 * 1024;

/// Takes up to `size` items from `input` into a task record (fewer once
/// they hold [`wire::CHUNK_FDS`] descriptors); `None` if the input is
/// exhausted.
pub(crate) fn next_chunk<A: Serialize>(
    sh: &Shared,
    fns: &TaskFns,
    input: &mut impl Iterator<Item = A>,
    size: ChunkSize,
) -> Option<Chunk> {
    let id = sh.next_id();
    let mut w = TaskWriter::new(id, fns);
    for k in 0..size.items {
        // Items beyond those asked for (packed) only while the record is small.
        if k >= size.asked && w.bytes() >= PACK_BYTES {
            break;
        }
        let item = match next_guarded(input) {
            Ok(Some(item)) => item,
            Ok(None) => break,
            Err(error) => return Some(Chunk::Panicked { error }),
        };
        if let Err(error) = w.push(&item) {
            return Some(Chunk::Bad { items: w.len() + 1, error });
        }
        // Room for the results' descriptors too (see `wire`).
        if w.fds() >= wire::CHUNK_FDS {
            break;
        }
    }
    if w.len() == 0 {
        return None;
    }
    let items = w.len();
    Some(Chunk::Ready { id, record: w.finish(), items })
}

/// The results of `f` over a stream of chunks, in order or in completion
/// order. Returned by [`Pool::imap`](crate::Pool::imap),
/// [`Pool::imap_unordered`](crate::Pool::imap_unordered) and
/// [`ProcessPoolExecutor::map`](crate::ProcessPoolExecutor::map).
///
/// It reads its input lazily (at most a window of chunks is in the pool at
/// once) and yields `Err` ([`TaskError`](crate::TaskError), as for
/// [`AsyncResult::get`](crate::AsyncResult::get)) for an item that failed
/// (a panic, a worker that died, ...) and goes on with the next. If the
/// input iterator panics, the chunk it was filling yields one
/// `Err(TaskError::Failed(Error::InputPanicked { .. }))` in its place, and
/// that is the last item (Python raises the iterator's exception from
/// `next()` there). Dropping it early cancels the chunks not yet started.
///
/// # Examples
///
/// ```
/// fn square(x: u64) -> u64 {
///     x * x
/// }
/// let pool = shmproc::Pool::new(2)?;
/// let squares: Vec<u64> = pool.imap(square, 1..=4)?.collect::<Result<_, _>>()?;
/// assert_eq!(squares, [1, 4, 9, 16]);
/// # Ok::<(), shmproc::Error>(())
/// ```
#[must_use = "iterators are lazy, and dropping an Imap cancels its tasks"]
pub struct Imap<R, I> {
    sh: Arc<Shared>,
    batch: Arc<Batch>,
    fns: TaskFns,
    input: Option<I>,
    chunksize: usize,
    window: u64,
    unordered: bool,
    /// Chunks submitted (indices `0..submitted`) and taken.
    submitted: u64,
    taken: u64,
    /// Outstanding chunks: index -> (job id, items).
    outstanding: HashMap<u64, (u64, u32)>,
    /// Items of the chunk being read.
    current: VecDeque<ItemOutcome>,
    _r: PhantomData<fn() -> R>,
}

impl<R, I> std::fmt::Debug for Imap<R, I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Imap")
            .field("submitted", &self.submitted)
            .field("taken", &self.taken)
            .field("unordered", &self.unordered)
            .finish_non_exhaustive()
    }
}

impl<A, R, I> Imap<R, I>
where
    A: Serialize,
    R: DeserializeOwned,
    I: Iterator<Item = A>,
{
    /// An iterator over `f` applied to `input` in chunks of `chunksize`,
    /// with at most `window` chunks in the pool at once.
    pub(crate) fn new(
        sh: Arc<Shared>,
        fns: TaskFns,
        input: I,
        chunksize: usize,
        window: u64,
        unordered: bool,
    ) -> Imap<R, I> {
        Imap {
            sh,
            batch: Arc::new(Batch::new(unordered)),
            fns,
            input: Some(input),
            chunksize: chunksize.max(1),
            window: window.max(1),
            unordered,
            submitted: 0,
            taken: 0,
            outstanding: HashMap::new(),
            current: VecDeque::new(),
            _r: PhantomData,
        }
    }

    /// Submits chunks until the window is full or the input ends. With
    /// `strict`, an argument that does not encode or a refused submission
    /// is returned (after cancelling what was submitted); otherwise it
    /// becomes that chunk's outcome.
    pub(crate) fn fill(&mut self, strict: bool) -> Result<()> {
        while self.submitted - self.taken < self.window {
            let Some(input) = self.input.as_mut() else { break };
            let Some(chunk) = next_chunk(&self.sh, &self.fns, input, ChunkSize::exactly(self.chunksize)) else {
                self.input = None;
                break;
            };
            let index = self.submitted;
            let (id, items, failure, refused) = match chunk {
                Chunk::Ready { id, record, items } => match self.sh.submit(id, record, self.batch.clone(), index) {
                    Ok(()) => (id, items, None, false),
                    Err(e) => (id, items, Some(e), true),
                },
                Chunk::Bad { items, error } => (0, items, Some(error), false),
                Chunk::Panicked { error } => {
                    // The input is read no further; one item reports it.
                    self.input = None;
                    (0, 1, Some(error), false)
                }
            };
            if let Some(e) = failure {
                if strict {
                    self.input = None;
                    return Err(e);
                }
                self.batch.fail_local(index, Failure::from_error(&e));
                if refused {
                    // Closed, terminated or broken: this chunk reports it,
                    // and the input is read no further.
                    self.input = None;
                }
            }
            self.outstanding.insert(index, (id, items));
            self.submitted += 1;
        }
        Ok(())
    }

    fn next_outcome(&mut self) -> Option<ItemOutcome> {
        loop {
            if let Some(item) = self.current.pop_front() {
                return Some(item);
            }
            let _ = self.fill(false);
            if self.taken == self.submitted {
                return None;
            }
            let (chunk, outcome) =
                if self.unordered { self.batch.take_any() } else { (self.taken, self.batch.take(self.taken)) };
            self.absorb(chunk, outcome);
        }
    }

    /// As [`next_outcome`](Self::next_outcome), never waiting: `Pending`
    /// (with `waker` registered) if the next chunk is not delivered yet.
    #[cfg(feature = "async")]
    fn poll_outcome(&mut self, waker: &std::task::Waker) -> std::task::Poll<Option<ItemOutcome>> {
        loop {
            if let Some(item) = self.current.pop_front() {
                return std::task::Poll::Ready(Some(item));
            }
            // Submitting never blocks: a full task queue spills into the
            // backlog the supervisor feeds.
            let _ = self.fill(false);
            if self.taken == self.submitted {
                return std::task::Poll::Ready(None);
            }
            let got = if self.unordered {
                self.batch.poll_take_any(waker)
            } else {
                self.batch.poll_take(self.taken, waker).map(|o| (self.taken, o))
            };
            let Some((chunk, outcome)) = got else { return std::task::Poll::Pending };
            self.absorb(chunk, outcome);
        }
    }

    /// Counts chunk `chunk` as taken and queues its items.
    fn absorb(&mut self, chunk: u64, outcome: JobOutcome) {
        self.taken += 1;
        let items = self.outstanding.remove(&chunk).map_or(0, |(_, n)| n as usize);
        match outcome {
            JobOutcome::Items(v) if v.len() == items => self.current.extend(v),
            JobOutcome::Items(_) => self.current.extend(
                (0..items).map(|_| Err(Failure::TaskError("a result record with the wrong number of items".into()))),
            ),
            JobOutcome::Failed(f) => self.current.extend((0..items).map(|_| Err(f.clone()))),
        }
    }

    /// As `next`, waiting for the next chunk only until `deadline`
    /// (executor `map_timeout`): `Err(TimedOut)` if it was not delivered by
    /// then; items delivered before are still yielded. In order only.
    pub(crate) fn next_until(
        &mut self,
        deadline: Option<Instant>,
    ) -> Option<std::result::Result<std::result::Result<R, TaskError>, TimedOut>> {
        debug_assert!(!self.unordered, "next_until reads chunks in order");
        let _w = InterruptibleWait::new();
        loop {
            if let Some(item) = self.current.pop_front() {
                return Some(Ok(decode_item(item)));
            }
            let _ = self.fill(false);
            if self.taken == self.submitted {
                return None;
            }
            let Some(outcome) = self.batch.take_until(self.taken, deadline) else { return Some(Err(TimedOut)) };
            self.absorb(self.taken, outcome);
        }
    }
}

/// An item's outcome as the caller sees it.
fn decode_item<R: DeserializeOwned>(o: ItemOutcome) -> std::result::Result<R, TaskError> {
    match o {
        Ok(item) => decode_result(&item).map_err(TaskError::Failed),
        Err(f) => Err(TaskError::from_failure(&f)),
    }
}

impl<A, R, I> Iterator for Imap<R, I>
where
    A: Serialize,
    R: DeserializeOwned,
    I: Iterator<Item = A>,
{
    type Item = std::result::Result<R, TaskError>;

    fn next(&mut self) -> Option<std::result::Result<R, TaskError>> {
        let _w = InterruptibleWait::new();
        self.next_outcome().map(decode_item)
    }
}

/// The same items as the iterator, in the same order, as a stream:
/// `poll_next` never blocks the thread (the pool's supervisor thread wakes
/// it). It keeps the same window, submitting more chunks as results are
/// taken; it reads the input iterator in `poll_next`, on the executor's
/// thread, so that iterator should not block.
///
/// Made by [`Imap::into_stream`]: a type of its own, so that `next()`
/// from `futures`' `StreamExt` is not confused with `Iterator::next`.
///
/// # Cancellation safety
///
/// An item is taken only when it is yielded: dropping a pending `next()`
/// loses none.
///
/// # Examples
///
/// ```
/// use futures::StreamExt;
/// fn square(x: u64) -> u64 {
///     x * x
/// }
/// let pool = shmproc::Pool::new(2)?;
/// let mut squares = pool.imap(square, 1..=4)?.into_stream();
/// let got = futures::executor::block_on(async {
///     let mut got = Vec::new();
///     while let Some(r) = squares.next().await {
///         got.push(r?);
///     }
///     Ok::<_, shmproc::TaskError>(got)
/// })?;
/// assert_eq!(got, [1, 4, 9, 16]);
/// # Ok::<(), shmproc::Error>(())
/// ```
#[cfg(feature = "async")]
#[derive(Debug)]
#[must_use = "streams do nothing unless polled, and dropping one cancels its tasks"]
pub struct ImapStream<R, I>(Imap<R, I>);

#[cfg(feature = "async")]
impl<R, I> Imap<R, I> {
    /// The same items as a `futures_core::Stream` ([`ImapStream`]):
    /// awaiting the next one never blocks the thread.
    ///
    /// # Examples
    ///
    /// ```
    /// use futures::StreamExt;
    /// fn double(x: u32) -> u32 {
    ///     2 * x
    /// }
    /// let pool = shmproc::Pool::new(1)?;
    /// let doubled = pool.imap(double, [1, 2])?.into_stream();
    /// let got: Vec<_> = futures::executor::block_on(doubled.collect());
    /// assert_eq!(got.into_iter().collect::<Result<Vec<_>, _>>()?, [2, 4]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn into_stream(self) -> ImapStream<R, I> {
        ImapStream(self)
    }
}

#[cfg(feature = "async")]
impl<A, R, I> futures_core::Stream for ImapStream<R, I>
where
    A: Serialize,
    R: DeserializeOwned,
    I: Iterator<Item = A>,
{
    type Item = std::result::Result<R, TaskError>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<std::result::Result<R, TaskError>>> {
        self.get_mut().0.poll_outcome(cx.waker()).map(|o| o.map(decode_item))
    }
}

// The input iterator is never pinned (it is only called through `&mut`),
// so an `Imap` may move whatever its input: it is a `Stream` over any
// iterator.
impl<R, I> Unpin for Imap<R, I> {}

impl<R, I> Drop for Imap<R, I> {
    fn drop(&mut self) {
        self.sh.abandon(self.outstanding.values().map(|(id, _)| *id).filter(|&id| id != 0));
    }
}
