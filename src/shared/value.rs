//! `Value<T>`: one `T: Pod` in shared memory with a robust lock and
//! lock-free reads of small values.
//!
//! # Layout (payload offsets)
//!
//! | offset | size | field | written by |
//! |---|---|---|---|
//! | 0 | 16 | `RawMutex` | lockers (see `sync/raw_mutex.rs`) |
//! | 16 | 8 | sequence word | the lock holder (see `seqlock.rs`) |
//! | 24 (or the next multiple of `align_of::<T>()`) | `size_of::<T>()` rounded up to 8 | the value | the lock holder |
//!
//! The lock, the sequence word and a small value share one cache line: a
//! reader and a writer touch all three, so splitting them would only add
//! lines to move. An anonymous `Value` lives in a shared arena cell (see
//! `shm/heap.rs`) that is a whole number of cache lines, so two values
//! never share a line.
//!
//! Values of at most [`SEQLOCK_MAX`] bytes (aligned to at most 8) are
//! *seqlocked*: every access to their bytes is a word-wise atomic load or
//! store, a guard works on a private copy and writes it back on drop, and
//! `load` reads without the lock. Bigger values are reached only under the
//! lock, in place, like [`Mutex<T>`](crate::Mutex).
#![allow(unsafe_code)]

use std::cell::UnsafeCell;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use bytemuck::Pod;

use crate::error::{Error, Result};
use crate::loom::atomic::AtomicU64;
use crate::shared::seqlock;
use crate::shm::layout::{ShmSafe, layout_hash, layout_hash_mix};
use crate::shm::segment::Segment;
use crate::shm::typed::Home;
use crate::sync::guard::{LockError, LockTimeoutError, Locked, RawGuard, TryLockError, deadline_after};
use crate::sync::raw_mutex::{Acquired, Fail, RawMutex};

/// The largest value (in bytes) that [`Value::load`] reads without the lock.
pub(crate) const SEQLOCK_MAX: usize = 64;
const MAX_WORDS: usize = SEQLOCK_MAX / 8;

/// Whether `T` is read with the seqlock (small, aligned to at most 8).
const fn seqlocked<T>() -> bool {
    core::mem::size_of::<T>() <= SEQLOCK_MAX && core::mem::align_of::<T>() <= 8
}

/// The value's cell: aligned to 8 at least, so its size is a whole number
/// of 8-byte words (the padding words are written only from zeroed
/// buffers). The `UnsafeCell` spans the padding too, so a pointer from
/// it may reach every word (the seqlock's atomic view of the value).
#[repr(transparent)]
struct Cell<T>(UnsafeCell<Padded<T>>);

/// `T` padded to whole 8-byte words.
#[repr(C, align(8))]
struct Padded<T>(T);

impl<T> Cell<T> {
    /// The value, as a pointer whose provenance covers the padded words.
    fn ptr(&self) -> *mut T {
        self.0.get().cast::<T>()
    }
}

/// A value's words, as one seqlock write or read moves them.
type Words = [u64; MAX_WORDS];

fn n_words<T>() -> usize {
    core::mem::size_of::<Cell<T>>() / 8
}

fn encode<T: Pod>(v: &T) -> Words {
    let mut w = [0u64; MAX_WORDS];
    bytemuck::cast_slice_mut::<u64, u8>(&mut w)[..core::mem::size_of::<T>()].copy_from_slice(bytemuck::bytes_of(v));
    w
}

fn as_value<T: Pod>(w: &Words) -> &T {
    bytemuck::try_from_bytes(&bytemuck::cast_slice::<u64, u8>(w)[..core::mem::size_of::<T>()])
        .expect("invariant: seqlocked T fits the 8-aligned word buffer")
}

fn as_value_mut<T: Pod>(w: &mut Words) -> &mut T {
    bytemuck::try_from_bytes_mut(&mut bytemuck::cast_slice_mut::<u64, u8>(w)[..core::mem::size_of::<T>()])
        .expect("invariant: seqlocked T fits the 8-aligned word buffer")
}

/// A `Value<T>`'s state in its segment (see the module docs).
#[repr(C)]
pub(crate) struct ValueState<T> {
    raw: RawMutex,
    /// Even: stable; odd: a write-back is in progress or died (seqlock.rs).
    seq: AtomicU64,
    data: Cell<T>,
}

// SAFETY: a seqlocked value's bytes are reached only through atomic words;
// a bigger one only through a guard, which exists only while the lock is
// held (one thread at a time, in any process); T: Send so it may be used
// from whichever thread holds the lock.
unsafe impl<T: Pod + Send> Sync for ValueState<T> {}

// SAFETY: repr(C): a RawMutex (ShmSafe), an atomic and an
// UnsafeCell<T> with T: Pod (no pointers, every bit pattern valid, so a
// value half-written by a dead holder is still a valid T); all
// interior-mutable.
unsafe impl<T: Pod + Send> ShmSafe for ValueState<T> {
    const TAG: &'static str = "shmproc::Value";
    const LAYOUT_HASH: u64 = value_layout_hash(
        core::mem::size_of::<Self>(),
        core::mem::align_of::<Self>(),
        core::mem::size_of::<T>(),
        core::mem::align_of::<T>(),
    );
}

/// The layout hash of a `Value<T>` whose state has `size`/`align` and whose
/// `T` has `t_size`/`t_align` (one formula, so `shmproc::inspect` can
/// recognise a value of any `T` from its header).
pub(crate) const fn value_layout_hash(size: usize, align: usize, t_size: usize, t_align: usize) -> u64 {
    layout_hash_mix(layout_hash_mix(layout_hash("shmproc::Value", size, align), t_size as u64), t_align as u64)
}

/// Field offsets of a [`ValueState`], for read-only inspection
/// (`shmproc::inspect` reads them with `pread`, never maps).
#[cfg(feature = "inspect")]
pub(crate) mod peek {
    use super::ValueState;
    /// The lock (a `RawMutex`).
    pub(crate) const LOCK: usize = core::mem::offset_of!(ValueState<u8>, raw);
    /// The sequence word (odd: a write-back in progress or died).
    pub(crate) const SEQ: usize = core::mem::offset_of!(ValueState<u8>, seq);
    /// Where the value starts for a `T` aligned to at most 8.
    pub(crate) const DATA: usize = core::mem::offset_of!(ValueState<u8>, data);
    // The same for every `T` (the value follows the sequence word).
    const _: () = assert!(SEQ == core::mem::offset_of!(ValueState<[u8; 4096]>, seq));
    /// The largest value read without the lock.
    pub(crate) const SEQLOCK_MAX: usize = super::SEQLOCK_MAX;
}

impl<T: Pod + Send> ValueState<T> {
    /// The value's bytes as atomic words (seqlocked `T` only: no `&T` or
    /// `&mut T` is ever made over them).
    fn words(&self) -> &[std::sync::atomic::AtomicU64] {
        debug_assert!(seqlocked::<T>());
        // SAFETY: `Padded<T>` is 8-aligned, a multiple of 8 long, and wholly inside the UnsafeCell the pointer comes
        // from (so all n_words are in provenance) and inside this ValueState, checked in bounds, aligned, writable by
        // `Home`; AtomicU64 takes any bits, and seqlocked T's bytes are only accessed atomically; borrows `self`.
        unsafe { std::slice::from_raw_parts(self.data.0.get().cast::<std::sync::atomic::AtomicU64>(), n_words::<T>()) }
    }

    /// Writes the initial value (creator only, before publication).
    fn init(&self, value: T) {
        if seqlocked::<T>() {
            seqlock::write(&self.seq, self.words(), &encode(&value)[..n_words::<T>()]);
        } else {
            // SAFETY: called only inside `Home`'s init closure, before the segment (or the arena cell, which no
            // other handle names yet) is visible to any other thread or process, so nothing else can access it.
            unsafe { self.data.ptr().write(value) }
        }
    }

    fn guard(&self, r: std::result::Result<Acquired, Fail>) -> Locked<ValueGuard<'_, T>> {
        RawGuard::wrap(&self.raw, r, |lock| ValueGuard::new(self, lock))
    }
}

/// What [`Value::lock`] and friends return.
type LockResult<'a, T> = std::result::Result<ValueGuard<'a, T>, LockError<ValueGuard<'a, T>>>;
type TryLockResult<'a, T> = std::result::Result<ValueGuard<'a, T>, TryLockError<ValueGuard<'a, T>>>;
type LockTimeoutResult<'a, T> = std::result::Result<ValueGuard<'a, T>, LockTimeoutError<ValueGuard<'a, T>>>;

/// A `T` in shared memory with a lock attached: Python's
/// `multiprocessing.Value`.
///
/// `T: Pod` (plain data: numbers, arrays and `#[repr(C)]` structs of them),
/// so every bit pattern is a valid `T` and a value half-written by a
/// process that died is still a valid `T`. [`load`](Value::load) and
/// [`store`](Value::store) are whole-value reads and writes;
/// [`lock`](Value::lock) gives a guard for read-modify-write (`+= 1`).
/// Values of at most 64 bytes are read without taking the lock (a
/// sequence word detects a concurrent write and retries, and falls back to
/// the lock after 64 tries); bigger ones take the lock.
///
/// A cheap handle: clone it, pass it to children as an argument (any start
/// method), or [`create`](Value::create) it by name for unrelated processes.
///
/// # Examples
///
#[cfg_attr(feature = "serde", doc = "```")]
#[cfg_attr(not(feature = "serde"), doc = "```ignore")]
/// use shmproc::Value;
///
/// fn add(v: Value<i64>) {
///     for _ in 0..100 {
///         *v.lock().expect("lock") += 1;
///     }
/// }
///
/// let v = Value::new(0i64)?;
/// let mut kids: Vec<_> = (0..3).map(|_| shmproc::Process::spawn(add, v.clone())).collect::<Result<_, _>>()?;
/// for k in &mut kids {
///     k.join()?;
/// }
/// assert_eq!(v.load()?, 300);
/// # Ok::<(), shmproc::Error>(())
/// ```
///
/// Python: `Value('q', 0)` with `v.value` ([`load`](Value::load),
/// [`store`](Value::store)) and `with v.get_lock():` ([`lock`](Value::lock),
/// which gives the data too). Unlike Python's, `v.value` never tears and a
/// holder that dies never hangs the others: the next `lock` gets
/// [`LockError::OwnerDied`].
pub struct Value<T: Pod + Send> {
    shared: Home<ValueState<T>>,
}

impl<T: Pod + Send> Clone for Value<T> {
    fn clone(&self) -> Self {
        Value { shared: self.shared.clone() }
    }
}

impl<T: Pod + Send> fmt::Debug for Value<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Value")
            .field("type", &std::any::type_name::<T>())
            .field("locked", &self.is_locked())
            .field("segment", self.shared.segment())
            .finish()
    }
}

impl<T: Pod + Send> Value<T> {
    /// An anonymous value, to share with children.
    ///
    /// # Examples
    ///
    /// ```
    /// let v = shmproc::Value::new(2.5f64)?;
    /// assert_eq!(v.load()?, 2.5);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `Value('d', 2.5)`.
    ///
    /// # Errors
    /// As for [`Segment::anonymous`].
    pub fn new(value: T) -> Result<Self> {
        Ok(Value { shared: Home::anonymous(|s: &ValueState<T>| s.init(value))? })
    }

    /// A named value that unrelated processes can [`open`](Value::open).
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-value-{}", std::process::id());
    /// let v = shmproc::Value::create(&name, 1u32)?;
    /// shmproc::Value::<u32>::open(&name)?.store(2)?;
    /// assert_eq!(v.load()?, 2);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: no named `Value`; the nearest is `SharedMemory(name, create=True)`.
    ///
    /// # Errors
    /// As for [`Segment::create`].
    pub fn create(name: &str, value: T) -> Result<Self> {
        Ok(Value { shared: Home::create(name, |s: &ValueState<T>| s.init(value))? })
    }

    /// Opens a named value made by [`create`](Value::create) with the same `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-value-open-{}", std::process::id());
    /// let _v = shmproc::Value::create(&name, 1u32)?;
    /// assert!(matches!(shmproc::Value::<u64>::open(&name), Err(shmproc::Error::LayoutMismatch { .. })));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `SharedMemory(name)`, with the type checked.
    ///
    /// # Errors
    /// As for [`Segment::open`]; [`Error::LayoutMismatch`] for a `T` of
    /// another size or alignment, or another kind of object.
    pub fn open(name: &str) -> Result<Self> {
        Ok(Value { shared: Home::open(name)? })
    }

    /// A copy of the value.
    ///
    /// Values of at most 64 bytes are read without the lock, so `load`
    /// does not wait for a guard held elsewhere (it sees the value as of
    /// the last guard dropped or `store`); after 64 reads that overlapped
    /// a write, and for bigger values, it takes the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let v = shmproc::Value::new([1u16, 2, 3])?;
    /// assert_eq!(v.load()?, [1, 2, 3]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `v.value`.
    ///
    /// # Errors
    /// When it takes the lock: [`Error::OwnerDied`] if a holder died
    /// mid-write (the lock stays marked, so the next [`lock`](Value::lock)
    /// gets the recovery guard), [`Error::NotRecoverable`],
    /// [`Error::Deadlock`] if this thread holds the guard.
    #[doc(alias = "value")]
    #[inline]
    pub fn load(&self) -> Result<T> {
        if seqlocked::<T>() {
            let s = &*self.shared;
            let mut w = [0u64; MAX_WORDS];
            if seqlock::read(&s.seq, s.words(), &mut w[..n_words::<T>()]) {
                return Ok(*as_value(&w));
            }
        }
        self.load_slow()
    }

    #[cold]
    fn load_slow(&self) -> Result<T> {
        match self.lock() {
            Ok(g) => Ok(*g),
            Err(LockError::OwnerDied(mut g)) => {
                g.lock.release_unrepaired();
                Err(Error::OwnerDied)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Replaces the value (under the lock).
    ///
    /// A store writes the whole value, so it also repairs a value left
    /// half-written by a holder that died: the lock is marked consistent.
    ///
    /// # Examples
    ///
    /// ```
    /// let v = shmproc::Value::new(0u8)?;
    /// v.store(7)?;
    /// assert_eq!(v.load()?, 7);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `v.value = x`.
    ///
    /// # Errors
    /// [`Error::NotRecoverable`]; [`Error::Deadlock`] if this thread holds
    /// the guard.
    #[doc(alias = "value")]
    pub fn store(&self, value: T) -> Result<()> {
        let mut g = match self.lock() {
            Ok(g) => g,
            Err(LockError::OwnerDied(mut g)) => {
                g.mark_consistent();
                g
            }
            Err(e) => return Err(e.into()),
        };
        *g = value;
        Ok(())
    }

    /// Locks, waiting as long as it takes (but never for a dead holder),
    /// and gives the value to read and change.
    ///
    /// # Examples
    ///
    /// ```
    /// let v = shmproc::Value::new(1i64)?;
    /// *v.lock()? *= 10;
    /// assert_eq!(v.load()?, 10);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `with v.get_lock(): v.value += 1`.
    ///
    /// # Errors
    /// [`LockError::OwnerDied`] (with a recovery guard: the data as the
    /// dead holder left it), [`LockError::NotRecoverable`],
    /// [`LockError::Deadlock`] if this thread holds it already.
    #[doc(alias = "get_lock")]
    #[inline]
    pub fn lock(&self) -> LockResult<'_, T> {
        self.shared.guard(self.shared.raw.lock(None)).blocking()
    }

    /// Locks if the lock is free now (or its holder is dead).
    ///
    /// # Examples
    ///
    /// ```
    /// let v = shmproc::Value::new(0u32)?;
    /// let g = v.try_lock()?;
    /// assert!(matches!(v.try_lock(), Err(shmproc::TryLockError::Deadlock)));
    /// drop(g);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `v.get_lock().acquire(False)`.
    ///
    /// # Errors
    /// [`TryLockError::WouldBlock`] if held, and the cases of
    /// [`lock`](Value::lock).
    pub fn try_lock(&self) -> TryLockResult<'_, T> {
        self.shared.guard(self.shared.raw.try_lock()).tried()
    }

    /// Locks, giving up after `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// let v = shmproc::Value::new(0u32)?;
    /// *v.lock_timeout(std::time::Duration::from_secs(1))? += 1;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `v.get_lock().acquire(timeout=t)`.
    ///
    /// # Errors
    /// [`LockTimeoutError::Timeout`], and the cases of [`lock`](Value::lock).
    pub fn lock_timeout(&self, timeout: Duration) -> LockTimeoutResult<'_, T> {
        self.shared.guard(self.shared.raw.lock(deadline_after(timeout))).timed()
    }

    /// Locks, giving up at `deadline`.
    ///
    /// # Examples
    ///
    /// ```
    /// let v = shmproc::Value::new(0u32)?;
    /// let soon = std::time::Instant::now() + std::time::Duration::from_secs(1);
    /// drop(v.lock_deadline(soon)?);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: as [`lock_timeout`](Value::lock_timeout).
    ///
    /// # Errors
    /// As for [`lock_timeout`](Value::lock_timeout).
    pub fn lock_deadline(&self, deadline: Instant) -> LockTimeoutResult<'_, T> {
        self.shared.guard(self.shared.raw.lock(Some(deadline))).timed()
    }

    /// Whether someone holds the lock now (a snapshot).
    ///
    /// # Examples
    ///
    /// ```
    /// let v = shmproc::Value::new(0u8)?;
    /// let g = v.lock()?;
    /// assert!(v.is_locked());
    /// drop(g);
    /// assert!(!v.is_locked());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: no equivalent (`Lock.locked()` of 3.13's `SemLock`).
    pub fn is_locked(&self) -> bool {
        self.shared.raw.is_locked()
    }

    /// The segment holding the value.
    ///
    /// # Examples
    ///
    /// ```
    /// let v = shmproc::Value::new(0u64)?;
    /// assert!(v.segment().name().is_none());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: no equivalent (a `Value`'s memory is private to it).
    pub fn segment(&self) -> &Segment {
        self.shared.segment()
    }
}

#[cfg(feature = "async")]
impl<T: Pod + Send> Value<T> {
    /// Locks, waiting as long as it takes without blocking the thread (but
    /// never for a dead holder): the async twin of [`lock`](Value::lock),
    /// as [`Mutex::lock_async`](crate::Mutex::lock_async) is of
    /// `Mutex::lock` (the guard belongs to the thread that polled the
    /// future to completion and is not `Send`).
    ///
    /// # Examples
    ///
    /// ```
    /// let v = shmproc::Value::new(1u64)?;
    /// futures::executor::block_on(async {
    ///     *v.lock_async().await? += 1;
    ///     Ok::<(), shmproc::Error>(())
    /// })?;
    /// assert_eq!(v.load()?, 2);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Cancellation
    /// A future dropped before it completes holds nothing: the lock is
    /// taken within the one poll that completes it.
    ///
    /// # Errors
    /// As for [`lock`](Value::lock); [`LockError::Os`] also if the
    /// process's waiting service cannot wait (the kernel lacks
    /// `futex_waitv`, Linux 5.16 or later is needed; or the OS refused the
    /// service its thread).
    #[doc(alias = "get_lock")]
    pub async fn lock_async(&self) -> LockResult<'_, T> {
        let source = || crate::watch::HomeWord::shared(&self.shared, |s: &ValueState<T>| s.raw.word());
        match self.shared.raw.lock_async(source).await {
            Ok(r) => self.shared.guard(r).blocking(),
            Err(e) => Err(LockError::Os(e)),
        }
    }
}

#[cfg(feature = "serde")]
impl<T: Pod + Send> serde::Serialize for Value<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.shared.serialize(s)
    }
}

#[cfg(feature = "serde")]
impl<'de, T: Pod + Send> serde::Deserialize<'de> for Value<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(Value { shared: Home::deserialize(d)? })
    }
}

/// Exclusive access to a [`Value`]'s data; unlocks on drop.
///
/// For values of at most 64 bytes the guard works on a copy taken when it
/// locked, written back (as one seqlock write) when it drops, so readers
/// without the lock see the old value until then and never a half-changed
/// one. Bigger values are changed in place.
///
/// A guard returned inside [`LockError::OwnerDied`] is a *recovery* guard:
/// repair the data and call [`mark_consistent`](ValueGuard::mark_consistent),
/// or dropping it makes the value unrecoverable (its last written state
/// stays readable with [`Value::load`] unless the holder died mid-write).
///
/// # Examples
///
/// ```
/// let v = shmproc::Value::new(1.0f32)?;
/// let mut g = v.lock()?;
/// *g *= 4.0;
/// drop(g);
/// assert_eq!(v.load()?, 4.0);
/// # Ok::<(), shmproc::Error>(())
/// ```
///
/// Python: the body of `with v.get_lock():`.
#[must_use = "the lock is released when the guard is dropped"]
pub struct ValueGuard<'a, T: Pod + Send> {
    state: &'a ValueState<T>,
    /// The value while the guard lives (seqlocked `T` only).
    copy: Words,
    /// Whether `copy` was handed out mutably (and must be written back).
    dirty: bool,
    /// Holds the lock; unlocks on drop (neither Send nor Sync).
    lock: RawGuard<'a>,
}

impl<'a, T: Pod + Send> ValueGuard<'a, T> {
    fn new(state: &'a ValueState<T>, lock: RawGuard<'a>) -> Self {
        let mut copy = [0u64; MAX_WORDS];
        if seqlocked::<T>() {
            // Under the lock no one else writes the words: a plain copy is
            // consistent (or as torn as a dead holder left it).
            for (c, w) in copy.iter_mut().zip(state.words()) {
                *c = seqlock::Word::get(w);
            }
        }
        ValueGuard { state, copy, dirty: false, lock }
    }

    /// Declares the data repaired after an owner died: the value is
    /// consistent again, and later lockers get plain guards.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmproc::{LockError, Value};
    /// let v = Value::new(1u32)?;
    /// if let Err(LockError::OwnerDied(mut g)) = v.lock() {
    ///     *g = 0;
    ///     g.mark_consistent();
    /// }
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: no equivalent (a dead holder hangs Python's lock).
    pub fn mark_consistent(&mut self) {
        self.lock.mark_consistent();
    }

    /// Whether this is a recovery guard not yet marked consistent.
    ///
    /// # Examples
    ///
    /// ```
    /// let v = shmproc::Value::new(1u32)?;
    /// assert!(!v.lock()?.is_recovering());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: no equivalent.
    pub fn is_recovering(&self) -> bool {
        self.lock.is_recovering()
    }
}

impl<T: Pod + Send> Deref for ValueGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        if seqlocked::<T>() {
            return as_value(&self.copy);
        }
        // SAFETY: not seqlocked, so the cell's bytes are reached only under the lock, which this guard holds (no
        // other thread or process accesses the cell until it drops); aligned and in bounds (checked by `Home`).
        unsafe { &*self.state.data.ptr() }
    }
}

impl<T: Pod + Send> DerefMut for ValueGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        if seqlocked::<T>() {
            self.dirty = true;
            return as_value_mut(&mut self.copy);
        }
        // SAFETY: as in `deref`; `&mut self` makes the access unique within this thread too.
        unsafe { &mut *self.state.data.ptr() }
    }
}

impl<T: Pod + Send> Drop for ValueGuard<'_, T> {
    fn drop(&mut self) {
        // A recovery guard (or one released unrepaired) leaves the data,
        // and an odd sequence word if the dead holder was mid-write, as
        // they were. A clean holder publishes its copy and also mends an
        // odd word (a writer that died before its data was marked
        // consistent, or garbage from a peer). `lock` unlocks after this.
        let s = self.state;
        if self.lock.is_clean() && seqlocked::<T>() && (self.dirty || seqlock::is_odd(&s.seq)) {
            seqlock::write(&s.seq, s.words(), &self.copy[..n_words::<T>()]);
        }
    }
}

impl<T: Pod + Send + fmt::Debug> fmt::Debug for ValueGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValueGuard").field("data", &**self).field("recovering", &self.is_recovering()).finish()
    }
}

/// The seqlock path of a `ValueState` on heap memory (so Miri can run it):
/// a 12-byte value occupies two words, the second half padding, and every
/// word is reached through the cell's pointer.
#[cfg(all(test, not(shmproc_loom)))]
mod tests {
    use super::*;

    fn state<T: Pod + Send>(v: T) -> ValueState<T> {
        ValueState { raw: RawMutex::new(), seq: AtomicU64::new(0), data: Cell(UnsafeCell::new(Padded(v))) }
    }

    #[test]
    fn words_cover_the_padded_value_and_reads_never_tear() {
        type T = [u32; 3];
        assert_eq!(n_words::<T>(), 2);
        let s = state::<T>([0; 3]);
        s.init([1, 2, 3]);
        let mut out = [0u64; MAX_WORDS];
        assert!(seqlock::read(&s.seq, s.words(), &mut out[..2]));
        assert_eq!(*as_value::<T>(&out), [1, 2, 3]);
        std::thread::scope(|sc| {
            sc.spawn(|| {
                for i in 0..200u32 {
                    seqlock::write(&s.seq, s.words(), &encode(&[i, i, i])[..2]);
                }
            });
            for _ in 0..200 {
                let mut out = [0u64; MAX_WORDS];
                if seqlock::read(&s.seq, s.words(), &mut out[..2]) {
                    let v = *as_value::<T>(&out);
                    assert!(v == [1, 2, 3] || (v[0] == v[1] && v[1] == v[2]), "torn read {v:?}");
                }
            }
        });
    }
}
