//! The records that travel through a pool's two queues, and the outcomes
//! they carry.
//!
//! Records are laid out by hand (little-endian integers, length-prefixed
//! byte strings) rather than encoded as one serde value, so that the task
//! queue's get hook can read the job id from the first 8 bytes, and a
//! worker can append each item's result in place. Every length read from a
//! record is checked: a record is bytes from shared memory.
//!
//! Task record (parent -> worker):
//!
//! | bytes | field |
//! |---|---|
//! | 0..8 | job id (`u64`; 0 for control records) |
//! | 8 | kind: [`TASK`], [`STOP`], [`SPILLED`] |
//! | `TASK`: 9..13 | item count `n` (`u32`) |
//! | 13..29 | the trampoline (`FnId`: `i64` offset, `u64` type hash) |
//! | 29..45 | the user's function (`FnId`; a `task!`'s body) |
//! | 45..49 | length `c` of the captures (`u32`; 0 unless a `task!`) |
//! | 49..49+c | the encoded captures (once per record, not per item) |
//! | 49+c.. | `n` times: length (`u32`) + the encoded argument |
//! | `SPILLED`: 9.. | a spill reference; the spill segment holds the whole `TASK` record |
//!
//! Result record (worker -> parent):
//!
//! | bytes | field |
//! |---|---|
//! | 0..8 | job id |
//! | 8 | kind: [`RESULT`], [`SPILLED`], [`INIT_FAILED`], [`WAKE`] |
//! | `RESULT`: 9..13 | the worker's pid (`u32`) |
//! | 13..17 | item count `n` (`u32`) |
//! | 17.. | `n` times: status (`u8`: [`ITEM_OK`], ...) + length (`u32`) + bytes (the encoded result, or a message) |
//! | `INIT_FAILED`: 9..13 | pid; then the panic message |
//!
//! Descriptors (a `shmproc::Fd`, a socket inside an argument or result,
//! an anonymous shared object's segment) travel beside a record, as a
//! parcel of the queue (see `channel/post.rs`): every item of a record is
//! encoded in one collecting scope ([`Collector`]), so the record has one
//! list, which the receiver shares among the item decodings
//! ([`Received`]). A record carries at most [`MAX_RECORD_FDS`]; a map's
//! chunk ends early once it holds [`CHUNK_FDS`].

use std::os::fd::OwnedFd;

use crate::error::{Error, Result};
use crate::shm::fnref::FnId;
use crate::shm::handoff::{Collector, Received, Undo};

/// Most descriptors one record carries (the kernel's limit for one
/// message of descriptors).
pub(crate) const MAX_RECORD_FDS: usize = crate::sys::parcel::MAX_FDS;
/// A map's chunk ends after the item that brings its descriptors to this
/// many (so the chunk's results have room for as many).
pub(crate) const CHUNK_FDS: usize = 64;

/// Why an item was refused: its record would carry too many descriptors.
const TOO_MANY_FDS: &str = "more descriptors than one pool record carries (253 for a task's items, \
     or for a chunk's results): pass fewer per task, or use a smaller chunksize";

/// A task: run the function on the items.
pub(crate) const TASK: u8 = 1;
/// The worker is to exit (the pool is closing).
pub(crate) const STOP: u8 = 2;
/// The record's body is in a spill segment (a record larger than the
/// queue carries inline).
pub(crate) const SPILLED: u8 = 3;
/// Results of a task.
pub(crate) const RESULT: u8 = 4;
/// The worker's initializer panicked (the message follows the pid).
pub(crate) const INIT_FAILED: u8 = 5;
/// Nothing: wakes the supervisor.
pub(crate) const WAKE: u8 = 6;

/// An item's status: the bytes are the encoded result.
pub(crate) const ITEM_OK: u8 = 0;
/// The item panicked; the bytes are the message.
pub(crate) const ITEM_PANIC: u8 = 1;
/// The argument did not decode or the result did not encode; the message.
pub(crate) const ITEM_CODEC: u8 = 2;
/// The task could not run (its function could not be resolved); the message.
pub(crate) const ITEM_ERROR: u8 = 3;

/// Where a `TASK` record's captures start (after their length).
pub(crate) const TASK_CAPTURES: usize = 49;
/// Where a `RESULT` record's items start.
pub(crate) const RESULT_ITEMS: usize = 17;

/// Why a task (or one item of it) produced no value: the cloneable form
/// of the errors a pool hands out (a handle may be asked more than once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    Panicked {
        pid: u32,
        message: String,
    },
    Codec(String),
    TaskError(String),
    WorkerDied {
        pid: u32,
        signal: Option<i32>,
        code: Option<i32>,
    },
    Broken(String),
    TimedOut {
        pid: u32,
        limit: std::time::Duration,
    },
    Cancelled,
    Closed,
    Interrupted,
    CallbackPanicked(String),
    /// The input iterator panicked while the call read it (parent side).
    InputPanicked(String),
}

impl Failure {
    /// The failure that stands for `e` in a job's outcome.
    pub(crate) fn from_error(e: &Error) -> Failure {
        match e {
            Error::PoolClosed => Failure::Closed,
            Error::BrokenPool { reason } => Failure::Broken(reason.clone()),
            Error::Interrupted => Failure::Interrupted,
            Error::Cancelled => Failure::Cancelled,
            Error::Codec { message } => Failure::Codec(message.clone()),
            Error::InputPanicked { message } => Failure::InputPanicked(message.clone()),
            other => Failure::TaskError(other.to_string()),
        }
    }

    /// The error for a caller.
    pub(crate) fn error(&self) -> Error {
        match self {
            Failure::Panicked { pid, message } => Error::TaskPanicked { pid: *pid, message: message.clone() },
            Failure::Codec(m) => Error::Codec { message: m.clone() },
            Failure::TaskError(m) => Error::Codec { message: format!("the task could not run: {m}") },
            Failure::WorkerDied { pid, signal, code } => Error::WorkerDied { pid: *pid, signal: *signal, code: *code },
            Failure::Broken(r) => Error::BrokenPool { reason: r.clone() },
            Failure::TimedOut { pid, limit } => Error::TaskTimedOut { pid: *pid, limit: *limit },
            Failure::Cancelled => Error::Cancelled,
            Failure::Closed => Error::PoolClosed,
            Failure::Interrupted => Error::Interrupted,
            Failure::CallbackPanicked(m) => Error::CallbackPanicked { message: m.clone() },
            Failure::InputPanicked(m) => Error::InputPanicked { message: m.clone() },
        }
    }
}

/// An item's encoded result, and the descriptors of its record (shared by
/// the record's items).
#[derive(Debug, Clone)]
pub(crate) struct Encoded {
    pub(crate) bytes: ItemBytes,
    pub(crate) fds: Option<Received>,
}

impl Encoded {
    /// Bytes without descriptors.
    #[cfg(test)]
    pub(crate) fn plain(bytes: Vec<u8>) -> Encoded {
        Encoded { bytes: bytes.into(), fds: None }
    }
}

/// The most bytes an [`ItemBytes`] keeps in place.
const ITEM_INLINE: usize = 30;

/// An item's encoded bytes: short ones (most results of a `map`) kept in
/// place, so a result costs no allocation of its own; longer ones on the
/// heap.
#[derive(Clone)]
pub(crate) enum ItemBytes {
    Inline { len: u8, bytes: [u8; ITEM_INLINE] },
    Heap(Vec<u8>),
}

impl ItemBytes {
    /// A copy of `bytes`.
    pub(crate) fn copy_of(bytes: &[u8]) -> ItemBytes {
        match u8::try_from(bytes.len()) {
            Ok(len) if bytes.len() <= ITEM_INLINE => {
                let mut inline = [0; ITEM_INLINE];
                inline[..bytes.len()].copy_from_slice(bytes);
                ItemBytes::Inline { len, bytes: inline }
            }
            _ => ItemBytes::Heap(bytes.to_vec()),
        }
    }
}

impl From<Vec<u8>> for ItemBytes {
    fn from(bytes: Vec<u8>) -> ItemBytes {
        ItemBytes::Heap(bytes)
    }
}

impl std::ops::Deref for ItemBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            ItemBytes::Inline { len, bytes } => &bytes[..usize::from(*len).min(ITEM_INLINE)],
            ItemBytes::Heap(v) => v,
        }
    }
}

impl PartialEq for ItemBytes {
    fn eq(&self, other: &ItemBytes) -> bool {
        **self == **other
    }
}

impl Eq for ItemBytes {}

impl std::fmt::Debug for ItemBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The items' outcomes of a job: one (no allocation of its own), many, or
/// many that all succeeded, still as their record framed them.
#[derive(Debug)]
pub(crate) enum Outcomes {
    One(ItemOutcome),
    Many(Vec<ItemOutcome>),
    Packed(Packed),
}

/// The items of a result record whose every item succeeded and which
/// carried no descriptors: the record's item region (each item its
/// status, `u32` length and bytes), walked and checked once when parsed.
/// The supervisor keeps it whole (one copy per record, nothing per item);
/// the reader decodes the items from it.
#[derive(Debug)]
pub(crate) struct Packed {
    items: usize,
    bytes: Vec<u8>,
}

impl Packed {
    /// The items' bytes, in order.
    pub(crate) fn items(&self) -> PackedItems<'_> {
        PackedItems { bytes: &self.bytes, left: self.items }
    }
}

/// The items of a [`Packed`], in order.
pub(crate) struct PackedItems<'a> {
    bytes: &'a [u8],
    left: usize,
}

impl<'a> Iterator for PackedItems<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        self.left = self.left.checked_sub(1)?;
        // Checked when parsed; the bounds are kept anyway (an end).
        let (_, item, rest) = split_item(self.bytes).ok()?;
        self.bytes = rest;
        Some(item)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

/// One framed item off the front of `bytes`: its status, its bytes, and
/// what follows it.
fn split_item(bytes: &[u8]) -> Result<(u8, &[u8], &[u8])> {
    let (&status, rest) = bytes.split_first().ok_or_else(|| corrupt("pool result"))?;
    let (len, rest) = rest.split_first_chunk::<4>().ok_or_else(|| corrupt("pool result"))?;
    let len = u32::from_le_bytes(*len) as usize;
    if len > rest.len() {
        return Err(corrupt("pool result length"));
    }
    let (item, rest) = rest.split_at(len);
    Ok((status, item, rest))
}

impl Outcomes {
    /// How many items.
    pub(crate) fn len(&self) -> usize {
        match self {
            Outcomes::One(_) => 1,
            Outcomes::Many(v) => v.len(),
            Outcomes::Packed(p) => p.items,
        }
    }

    /// Whether an item failed.
    pub(crate) fn any_failed(&self) -> bool {
        match self {
            Outcomes::One(item) => item.is_err(),
            Outcomes::Many(v) => v.iter().any(Result::is_err),
            Outcomes::Packed(_) => false,
        }
    }
}

impl From<Vec<ItemOutcome>> for Outcomes {
    fn from(mut v: Vec<ItemOutcome>) -> Outcomes {
        match v.pop() {
            Some(item) if v.is_empty() => Outcomes::One(item),
            Some(item) => {
                v.push(item);
                Outcomes::Many(v)
            }
            None => Outcomes::Many(v),
        }
    }
}

impl IntoIterator for Outcomes {
    type Item = ItemOutcome;
    type IntoIter = OutcomesIter;
    fn into_iter(self) -> OutcomesIter {
        match self {
            Outcomes::One(item) => OutcomesIter::One(Some(item)),
            Outcomes::Many(v) => OutcomesIter::Many(v.into_iter()),
            Outcomes::Packed(p) => OutcomesIter::Packed { left: p.items, packed: p, at: 0 },
        }
    }
}

/// The owning iterator of [`Outcomes`].
pub(crate) enum OutcomesIter {
    One(Option<ItemOutcome>),
    Many(std::vec::IntoIter<ItemOutcome>),
    /// The items of `packed` from byte `at` on, `left` of them.
    Packed {
        packed: Packed,
        at: usize,
        left: usize,
    },
}

impl Iterator for OutcomesIter {
    type Item = ItemOutcome;
    fn next(&mut self) -> Option<ItemOutcome> {
        match self {
            OutcomesIter::One(item) => item.take(),
            OutcomesIter::Many(it) => it.next(),
            OutcomesIter::Packed { packed, at, left } => {
                // The items from `at` on, as `Packed::items` reads them.
                let mut items = PackedItems { bytes: packed.bytes.get(*at..).unwrap_or_default(), left: *left };
                let item = items.next()?;
                (*at, *left) = (packed.bytes.len() - items.bytes.len(), items.left);
                Some(Ok(Encoded { bytes: ItemBytes::copy_of(item), fds: None }))
            }
        }
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = match self {
            OutcomesIter::One(item) => usize::from(item.is_some()),
            OutcomesIter::Many(it) => it.len(),
            OutcomesIter::Packed { left, .. } => *left,
        };
        (n, Some(n))
    }
}

impl ExactSizeIterator for OutcomesIter {}

impl PartialEq for Encoded {
    fn eq(&self, other: &Encoded) -> bool {
        let same_fds = match (&self.fds, &other.fds) {
            (None, None) => true,
            (Some(a), Some(b)) => a.same(b),
            _ => false,
        };
        self.bytes == other.bytes && same_fds
    }
}

impl Eq for Encoded {}

/// One item's outcome: its encoded result, or why there is none.
pub(crate) type ItemOutcome = std::result::Result<Encoded, Failure>;

/// A job's outcome: one per item, or a failure of the whole job (its
/// worker died, it was cancelled, ...).
#[derive(Debug)]
pub(crate) enum JobOutcome {
    Items(Outcomes),
    Failed(Failure),
}

fn corrupt(what: &'static str) -> Error {
    Error::Corrupt { what }
}

/// The job id of a record (0 if it is too short to have one).
pub(crate) fn job_id(record: &[u8]) -> u64 {
    record.get(..8).map_or(0, |b| u64::from_le_bytes(b.try_into().expect("invariant: 8 bytes")))
}

/// The kind byte of a record.
pub(crate) fn kind(record: &[u8]) -> Result<u8> {
    record.get(8).copied().ok_or_else(|| corrupt("pool record too short"))
}

fn put_fn(buf: &mut Vec<u8>, f: FnId) {
    buf.extend_from_slice(&f.offset.to_le_bytes());
    buf.extend_from_slice(&f.type_hash.to_le_bytes());
}

fn get_u32(b: &[u8], at: usize) -> Result<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes(s.try_into().expect("invariant: 4 bytes")))
        .ok_or_else(|| corrupt("pool record"))
}

fn get_u64(b: &[u8], at: usize) -> Result<u64> {
    b.get(at..at + 8)
        .map(|s| u64::from_le_bytes(s.try_into().expect("invariant: 8 bytes")))
        .ok_or_else(|| corrupt("pool record"))
}

fn get_fn(b: &[u8], at: usize) -> Result<FnId> {
    Ok(FnId { offset: get_u64(b, at)? as i64, type_hash: get_u64(b, at + 8)? })
}

/// A record of one byte of kind and no body (`STOP`, `WAKE`).
pub(crate) fn control(kind: u8) -> [u8; 9] {
    let mut r = [0u8; 9];
    r[8] = kind;
    r
}

/// What names a task in its records: the trampoline, the user's function
/// and the encoded captures (encoded once per call, copied into each
/// record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TaskFns {
    pub(crate) trampoline: FnId,
    pub(crate) function: FnId,
    pub(crate) captures: std::sync::Arc<[u8]>,
}

impl TaskFns {
    /// The names and captures of a task.
    ///
    /// # Errors
    /// [`Error::TooLarge`] if the captures have more than `u32::MAX` bytes.
    pub(crate) fn new(trampoline: FnId, function: FnId, captures: Vec<u8>) -> Result<TaskFns> {
        if u32::try_from(captures.len()).is_err() {
            return Err(Error::TooLarge { len: captures.len(), max: u32::MAX as usize });
        }
        Ok(TaskFns { trampoline, function, captures: captures.into() })
    }
}

/// A finished task record, the descriptors its items hold, and what to
/// give back if it never reaches a worker.
pub(crate) struct TaskRecord {
    pub(crate) bytes: Vec<u8>,
    pub(crate) fds: Vec<OwnedFd>,
    pub(crate) undo: Undo,
}

impl std::fmt::Debug for TaskRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskRecord").field("bytes", &self.bytes.len()).field("fds", &self.fds.len()).finish()
    }
}

thread_local! {
    /// Buffers of task records already queued, for the next records this
    /// thread builds (a `map` builds thousands in a row).
    static SPARE: std::cell::RefCell<Vec<Vec<u8>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Buffers [`recycle`] keeps per thread, and the largest it keeps.
const SPARE_BUFFERS: usize = 256;
const SPARE_CAPACITY: usize = 4096;

/// An empty buffer: a recycled one if this thread has one.
fn spare_buffer(capacity: usize) -> Vec<u8> {
    let spare = SPARE.try_with(|s| s.borrow_mut().pop()).ok().flatten();
    match spare {
        Some(mut buf) => {
            buf.clear();
            buf.reserve(capacity);
            buf
        }
        None => Vec::with_capacity(capacity),
    }
}

/// Keeps the buffer of a queued task record for the next one this thread
/// builds (small ones, up to a bound).
pub(crate) fn recycle(buf: Vec<u8>) {
    if buf.capacity() <= SPARE_CAPACITY {
        let _ = SPARE.try_with(|s| {
            let mut s = s.borrow_mut();
            if s.len() < SPARE_BUFFERS {
                s.push(buf);
            }
        });
    }
}

/// Builds a `TASK` record item by item.
pub(crate) struct TaskWriter {
    buf: Vec<u8>,
    items: u32,
    fds: Collector,
}

impl std::fmt::Debug for TaskWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskWriter").field("bytes", &self.buf.len()).field("items", &self.items).finish()
    }
}

impl TaskWriter {
    /// Starts a task record for job `id`.
    pub(crate) fn new(id: u64, fns: &TaskFns) -> TaskWriter {
        let c = u32::try_from(fns.captures.len()).expect("invariant: TaskFns::new checks the captures' length");
        let mut buf = spare_buffer(64 + fns.captures.len());
        buf.extend_from_slice(&id.to_le_bytes());
        buf.push(TASK);
        buf.extend_from_slice(&0u32.to_le_bytes());
        put_fn(&mut buf, fns.trampoline);
        put_fn(&mut buf, fns.function);
        buf.extend_from_slice(&c.to_le_bytes());
        debug_assert_eq!(buf.len(), TASK_CAPTURES);
        buf.extend_from_slice(&fns.captures);
        TaskWriter { buf, items: 0, fds: Collector::default() }
    }

    /// Appends an item: the encoding of `arg` (its descriptors join the
    /// record's). On error (the argument cannot be encoded, or it would
    /// bring the record past [`MAX_RECORD_FDS`]) the record is unchanged.
    pub(crate) fn push<A: serde::Serialize>(&mut self, arg: &A) -> Result<()> {
        let at = self.buf.len();
        let mark = self.fds.mark();
        self.buf.extend_from_slice(&[0; 4]);
        let buf = std::cell::RefCell::new(&mut self.buf);
        let encode = || crate::codec::encode_append(arg, &mut buf.borrow_mut());
        let encoded = self.fds.collect_if_needed(encode, || buf.borrow_mut().truncate(at + 4));
        let encoded = encoded.and_then(|()| {
            if self.fds.len() > MAX_RECORD_FDS {
                return Err(Error::Codec { message: TOO_MANY_FDS.into() });
            }
            u32::try_from(self.buf.len() - at - 4)
                .map_err(|_| Error::TooLarge { len: usize::MAX, max: u32::MAX as usize })
        });
        match encoded {
            Ok(len) => {
                self.buf[at..at + 4].copy_from_slice(&len.to_le_bytes());
                self.items += 1;
                Ok(())
            }
            Err(e) => {
                self.buf.truncate(at);
                self.fds.rollback(mark);
                Err(e)
            }
        }
    }

    /// Items so far.
    pub(crate) fn len(&self) -> u32 {
        self.items
    }

    /// The record's bytes so far.
    pub(crate) fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// Descriptors so far.
    pub(crate) fn fds(&self) -> usize {
        self.fds.len()
    }

    /// The finished record.
    pub(crate) fn finish(mut self) -> TaskRecord {
        self.buf[9..13].copy_from_slice(&self.items.to_le_bytes());
        let (fds, undo) = self.fds.take();
        TaskRecord { bytes: self.buf, fds, undo }
    }
}

/// A `TASK` record, parsed.
#[derive(Debug)]
pub(crate) struct Task<'a> {
    pub(crate) trampoline: FnId,
    pub(crate) function: FnId,
    /// The encoded captures (empty unless a `task!`).
    pub(crate) captures: &'a [u8],
    pub(crate) items: Items<'a>,
}

/// Parses a `TASK` record.
pub(crate) fn parse_task(record: &[u8]) -> Result<Task<'_>> {
    if kind(record)? != TASK {
        return Err(corrupt("not a task record"));
    }
    let n = get_u32(record, 9)?;
    let c = get_u32(record, TASK_CAPTURES - 4)? as usize;
    let items = TASK_CAPTURES.checked_add(c).ok_or_else(|| corrupt("pool record captures length"))?;
    Ok(Task {
        trampoline: get_fn(record, 13)?,
        function: get_fn(record, 29)?,
        captures: record.get(TASK_CAPTURES..items).ok_or_else(|| corrupt("pool record captures length"))?,
        items: Items { rest: record.get(items..).ok_or_else(|| corrupt("pool record"))?, left: n },
    })
}

/// The items of a task record: each the encoded argument.
#[derive(Debug)]
pub(crate) struct Items<'a> {
    rest: &'a [u8],
    left: u32,
}

impl<'a> Iterator for Items<'a> {
    type Item = Result<&'a [u8]>;
    fn next(&mut self) -> Option<Result<&'a [u8]>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let item = get_u32(self.rest, 0).and_then(|len| {
            let end = 4usize.checked_add(len as usize).ok_or_else(|| corrupt("pool record item length"))?;
            let bytes = self.rest.get(4..end).ok_or_else(|| corrupt("pool record item length"))?;
            self.rest = &self.rest[end..];
            Ok(bytes)
        });
        if item.is_err() {
            self.left = 0;
        }
        Some(item)
    }
}

/// Builds a `RESULT` record item by item (a worker reuses one).
#[derive(Default)]
pub(crate) struct ResultWriter {
    pub(crate) buf: Vec<u8>,
    items: u32,
    item_start: usize,
    fds: Collector,
}

impl std::fmt::Debug for ResultWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResultWriter").field("bytes", &self.buf.len()).field("items", &self.items).finish()
    }
}

impl ResultWriter {
    /// Starts the results of job `id`, run by worker `pid`.
    pub(crate) fn start(&mut self, id: u64, pid: u32) {
        self.buf.clear();
        self.buf.extend_from_slice(&id.to_le_bytes());
        self.buf.push(RESULT);
        self.buf.extend_from_slice(&pid.to_le_bytes());
        self.buf.extend_from_slice(&0u32.to_le_bytes());
        self.items = 0;
        // Left by a record that could not be sent: dropped (closed).
        drop(self.fds.take());
    }

    /// Encodes `value` as the item begun last (its descriptors join the
    /// record's) and ends it; on error (it cannot be encoded, or it would
    /// bring the record past [`MAX_RECORD_FDS`]) the item's descriptors
    /// are dropped and the message comes back (the caller fails the item).
    pub(crate) fn encode_item<R: serde::Serialize>(&mut self, value: &R) -> std::result::Result<(), String> {
        let mark = self.fds.mark();
        let at = self.buf.len();
        let buf = std::cell::RefCell::new(&mut self.buf);
        let encode = || crate::codec::encode_append(value, &mut buf.borrow_mut());
        let encoded = self.fds.collect_if_needed(encode, || buf.borrow_mut().truncate(at));
        let failed = match encoded {
            Err(e) => Some(format!("the result did not encode: {e}")),
            Ok(()) if self.fds.len() > MAX_RECORD_FDS => Some(format!("the result did not encode: {TOO_MANY_FDS}")),
            Ok(()) => None,
        };
        match failed {
            Some(m) => {
                self.fds.rollback(mark);
                Err(m)
            }
            None => {
                self.end_item();
                Ok(())
            }
        }
    }

    /// The descriptors of the record and what to give back if it is not
    /// sent, taken (the writer starts empty for the next record).
    pub(crate) fn take_fds(&mut self) -> (Vec<OwnedFd>, Undo) {
        self.fds.take()
    }

    /// Whether the record holds no descriptors.
    pub(crate) fn fds_empty(&self) -> bool {
        self.fds.len() == 0
    }

    /// Starts an item: its bytes are appended to [`buf`](Self::buf), then
    /// [`end_item`](Self::end_item) or [`fail_item`](Self::fail_item).
    pub(crate) fn begin_item(&mut self) {
        self.item_start = self.buf.len();
        self.buf.push(ITEM_OK);
        self.buf.extend_from_slice(&[0; 4]);
    }

    /// Ends the item begun last with status `ITEM_OK`.
    pub(crate) fn end_item(&mut self) {
        let at = self.item_start;
        let len = (self.buf.len() - at - 5) as u32;
        self.buf[at + 1..at + 5].copy_from_slice(&len.to_le_bytes());
        self.items += 1;
    }

    /// Replaces the item begun last by a failure. The message is kept
    /// whole (a large record spills): only one past an item's `u32` length
    /// is cut, as [`cut_message`] does.
    pub(crate) fn fail_item(&mut self, status: u8, message: &str) {
        self.buf.truncate(self.item_start);
        self.buf.push(status);
        let m = cut_message(message, u32::MAX as usize);
        self.buf.extend_from_slice(&(m.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(m.as_bytes());
        self.items += 1;
    }

    /// The finished record.
    pub(crate) fn finish(&mut self) -> &[u8] {
        self.buf[13..17].copy_from_slice(&self.items.to_le_bytes());
        &self.buf
    }
}

/// Parses a `RESULT` record: the worker's pid and each item's outcome
/// (the items share `fds`, the record's descriptors).
pub(crate) fn parse_result(record: &[u8], fds: Option<Received>) -> Result<(u32, Outcomes)> {
    if kind(record)? != RESULT {
        return Err(corrupt("not a result record"));
    }
    let pid = get_u32(record, 9)?;
    let n = get_u32(record, 13)? as usize;
    let items = record.get(RESULT_ITEMS..).ok_or_else(|| corrupt("pool result"))?;
    // At least 5 bytes per item: a count larger than that is garbage.
    if n.saturating_mul(5) > items.len() {
        return Err(corrupt("pool result count"));
    }
    // One walk checks the framing; several items that all succeeded and
    // carry no descriptors stay packed.
    let (mut rest, mut all_ok) = (items, true);
    for _ in 0..n {
        let (status, _, after) = split_item(rest)?;
        all_ok &= status == ITEM_OK;
        rest = after;
    }
    let used = &items[..items.len() - rest.len()];
    if n > 1 && all_ok && fds.is_none() {
        return Ok((pid, Outcomes::Packed(Packed { items: n, bytes: used.to_vec() })));
    }
    let mut out = Vec::with_capacity(if n == 1 { 0 } else { n });
    let mut one = None;
    let mut rest = used;
    for _ in 0..n {
        let (status, bytes, after) = split_item(rest)?;
        rest = after;
        let text = || String::from_utf8_lossy(bytes).into_owned();
        let item = match status {
            ITEM_OK => Ok(Encoded { bytes: ItemBytes::copy_of(bytes), fds: fds.clone() }),
            ITEM_PANIC => Err(Failure::Panicked { pid, message: text() }),
            ITEM_CODEC => Err(Failure::Codec(text())),
            ITEM_ERROR => Err(Failure::TaskError(text())),
            _ => return Err(corrupt("pool result status")),
        };
        if n == 1 {
            one = Some(item);
        } else {
            out.push(item);
        }
    }
    Ok((pid, one.map_or(Outcomes::Many(out), Outcomes::One)))
}

/// The longest initializer panic message an `INIT_FAILED` record carries
/// (it goes inline, never spilled).
pub(crate) const INIT_MESSAGE_MAX: usize = 64 * 1024;

/// `message` if it has at most `max` bytes; otherwise its longest prefix
/// that ends on a character boundary and leaves room for a marker saying
/// how many bytes were left out, followed by that marker (at most `max`
/// bytes in all, for any `max` of 64 or more).
pub(crate) fn cut_message(message: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if message.len() <= max {
        return message.into();
    }
    // The marker has at most 64 bytes (a usize has at most 20 digits).
    let mut end = max.saturating_sub(64);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... [{} more bytes cut]", &message[..end], message.len() - end).into()
}

/// An `INIT_FAILED` record (the message cut to [`INIT_MESSAGE_MAX`]).
pub(crate) fn init_failed(pid: u32, message: &str) -> Vec<u8> {
    let mut r = control(INIT_FAILED).to_vec();
    r.extend_from_slice(&pid.to_le_bytes());
    r.extend_from_slice(cut_message(message, INIT_MESSAGE_MAX).as_bytes());
    r
}

/// Parses an `INIT_FAILED` record: the pid and the message.
pub(crate) fn parse_init_failed(record: &[u8]) -> Result<(u32, String)> {
    let pid = get_u32(record, 9)?;
    Ok((pid, String::from_utf8_lossy(record.get(13..).unwrap_or_default()).into_owned()))
}

/// A `SPILLED` record for job `id` whose body is the spill `reference`.
pub(crate) fn spilled(id: u64, reference: &[u8]) -> Vec<u8> {
    let mut r = Vec::with_capacity(9 + reference.len());
    r.extend_from_slice(&id.to_le_bytes());
    r.push(SPILLED);
    r.extend_from_slice(reference);
    r
}

/// The spill reference of a `SPILLED` record.
pub(crate) fn spill_reference(record: &[u8]) -> &[u8] {
    record.get(9..).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Short item bytes stay in place, long ones go to the heap; both
    /// read (and compare) as their bytes. One outcome needs no vector.
    #[test]
    fn item_bytes_and_outcomes_read_as_slices() {
        let short = ItemBytes::copy_of(b"abc");
        assert!(matches!(short, ItemBytes::Inline { .. }));
        assert_eq!(&*short, b"abc");
        assert_eq!(short, ItemBytes::from(b"abc".to_vec()));
        let long = ItemBytes::copy_of(&[7; ITEM_INLINE + 1]);
        assert!(matches!(long, ItemBytes::Heap(_)));
        assert_eq!(long.len(), ITEM_INLINE + 1);
        assert_eq!(&*ItemBytes::copy_of(&[]), b"");
        let one = Outcomes::from(vec![Ok(Encoded::plain(vec![1]))]);
        assert!(matches!(one, Outcomes::One(_)));
        assert_eq!(one.len(), 1);
        let many = Outcomes::from(vec![Ok(Encoded::plain(vec![1])), Err(Failure::Cancelled)]);
        assert_eq!((many.len(), many.any_failed()), (2, true));
        assert_eq!(many.into_iter().len(), 2);
        assert_eq!(Outcomes::from(Vec::new()).into_iter().count(), 0);
    }

    const F: FnId = FnId { offset: -5, type_hash: 77 };
    const G: FnId = FnId { offset: 9, type_hash: 1 };

    fn fns(captures: &[u8]) -> TaskFns {
        TaskFns::new(F, G, captures.to_vec()).expect("small")
    }

    #[test]
    fn task_records_round_trip() {
        let mut w = TaskWriter::new(42, &fns(b""));
        w.push(&(1u32, "a")).expect("encode");
        w.push(&(2u32, "bb")).expect("encode");
        assert_eq!(w.len(), 2);
        let r = w.finish().bytes;
        assert_eq!(job_id(&r), 42);
        let t = parse_task(&r).expect("parse");
        assert_eq!((t.trampoline, t.function, t.captures), (F, G, &b""[..]));
        let items: Vec<_> = t.items.map(|i| i.expect("item").to_vec()).collect();
        assert_eq!(crate::codec::decode::<(u32, String)>(&items[1]).expect("decode"), (2, "bb".into()));
    }

    #[test]
    fn task_records_carry_their_captures_once() {
        let mut w = TaskWriter::new(7, &fns(b"captured"));
        w.push(&1u8).expect("encode");
        w.push(&2u8).expect("encode");
        let r = w.finish().bytes;
        assert_eq!(r.windows(8).filter(|b| b == b"captured").count(), 1);
        let t = parse_task(&r).expect("parse");
        assert_eq!(t.captures, b"captured");
        let items: Vec<_> = t.items.map(|i| i.expect("item").to_vec()).collect();
        assert_eq!(items, [vec![1u8], vec![2u8]]);
    }

    #[test]
    fn result_records_round_trip() {
        let mut w = ResultWriter::default();
        w.start(7, 1234);
        w.begin_item();
        crate::codec::encode_append(&99u64, &mut w.buf).expect("encode");
        w.end_item();
        w.begin_item();
        w.buf.extend_from_slice(b"half-written");
        w.fail_item(ITEM_PANIC, "boom");
        let r = w.finish().to_vec();
        let (pid, items) = parse_result(&r, None).expect("parse");
        let items: Vec<_> = items.into_iter().collect();
        assert_eq!(pid, 1234);
        assert_eq!(crate::codec::decode::<u64>(&items[0].as_ref().expect("ok").bytes).expect("decode"), 99);
        assert_eq!(items[1], Err(Failure::Panicked { pid: 1234, message: "boom".into() }));
    }

    /// Several items that all succeeded, without descriptors, stay packed:
    /// read as items they are what they were; a framing error anywhere is
    /// found when parsed.
    #[test]
    fn successful_items_stay_packed() {
        let mut w = ResultWriter::default();
        w.start(5, 77);
        let values = [0u64, 1, 300, u64::MAX];
        for v in values {
            w.begin_item();
            crate::codec::encode_append(&v, &mut w.buf).expect("encode");
            w.end_item();
        }
        let r = w.finish().to_vec();
        let (_, items) = parse_result(&r, None).expect("parse");
        let Outcomes::Packed(p) = &items else { panic!("not packed: {items:?}") };
        let decoded: Vec<u64> = p.items().map(|b| crate::codec::decode(b).expect("decode")).collect();
        assert_eq!(decoded, values);
        assert_eq!((items.len(), items.any_failed()), (4, false));
        let each: Vec<u64> =
            items.into_iter().map(|i| crate::codec::decode(&i.expect("ok").bytes).expect("decode")).collect();
        assert_eq!(each, values);
        // The last item's length runs past the record.
        let mut cut = r.clone();
        cut.pop();
        assert!(parse_result(&cut, None).is_err());
        // A single item is not packed.
        let mut w = ResultWriter::default();
        w.start(6, 77);
        w.begin_item();
        crate::codec::encode_append(&1u64, &mut w.buf).expect("encode");
        w.end_item();
        assert!(matches!(parse_result(w.finish(), None).expect("parse").1, Outcomes::One(Ok(_))));
    }

    // CPython: the exception a task raised comes back whole (its traceback
    // text is not cut); a 200 KiB message of multi-byte characters does too.
    #[test]
    fn long_failure_messages_stay_whole() {
        let message = "é€😀".repeat(200 * 1024 / 9);
        assert!(message.len() > 64 * 1024);
        let mut w = ResultWriter::default();
        w.start(3, 9);
        w.begin_item();
        w.fail_item(ITEM_PANIC, &message);
        let (_, items) = parse_result(w.finish(), None).expect("parse");
        let items: Vec<_> = items.into_iter().collect();
        assert_eq!(items[0], Err(Failure::Panicked { pid: 9, message: message.clone() }));
    }

    #[test]
    fn cut_messages_end_on_a_char_boundary_with_a_marker() {
        let message = "😀".repeat(100_000); // 400 000 bytes, 4 per char
        let cut = cut_message(&message, INIT_MESSAGE_MAX);
        assert!(cut.len() <= INIT_MESSAGE_MAX);
        let (kept, marker) = cut.split_once("...").expect("a marker");
        assert!(kept.chars().all(|c| c == '😀'));
        assert_eq!(marker, format!(" [{} more bytes cut]", message.len() - kept.len()));
        assert_eq!(cut_message("short", INIT_MESSAGE_MAX), "short");
        let (pid, m) = parse_init_failed(&init_failed(5, &message)).expect("parse");
        assert_eq!((pid, m), (5, cut.into_owned()));
    }

    #[test]
    fn hostile_records_are_corrupt() {
        let mut r = TaskWriter::new(1, &fns(b"")).finish().bytes;
        r[9..13].copy_from_slice(&5u32.to_le_bytes()); // 5 items, none there
        let t = parse_task(&r).expect("header parses");
        assert!(t.items.map(|i| i.is_err()).next().expect("one error"));
        // A captures length past the end, or at u32::MAX; a record cut
        // inside its captures or before their length.
        let good = TaskWriter::new(1, &fns(b"abc")).finish().bytes;
        for c in [4u32, 1000, u32::MAX] {
            let mut r = good.clone();
            r[45..49].copy_from_slice(&c.to_le_bytes());
            assert!(matches!(parse_task(&r), Err(Error::Corrupt { .. })), "captures length {c}");
        }
        for cut in [13, 30, 46, 50] {
            assert!(matches!(parse_task(&good[..cut]), Err(Error::Corrupt { .. })), "cut at {cut}");
        }
        let mut w = ResultWriter::default();
        w.start(1, 1);
        let mut r = w.finish().to_vec();
        r[13..17].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(parse_result(&r, None), Err(Error::Corrupt { .. })));
        assert!(kind(&[1, 2]).is_err());
        assert_eq!(job_id(&[1]), 0);
    }
}
