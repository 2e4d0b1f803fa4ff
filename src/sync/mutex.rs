//! `Mutex<T>`: pointer-free data in shared memory behind a robust lock, its
//! state in the segment ([`MutexState`]) and its guard.
#![allow(unsafe_code)] // the data cell: Sync and placement promises, guarded access

use std::cell::UnsafeCell;
use std::fmt;
use std::ops::{Deref, DerefMut};

use std::time::{Duration, Instant};

use bytemuck::Pod;

use crate::error::Result;
use crate::shm::layout::{ShmSafe, layout_hash, layout_hash_mix};
use crate::shm::segment::Segment;
use crate::shm::typed::Home;
use crate::sync::guard::sealed::Sealed;
use crate::sync::guard::{CondvarGuard, LockError, LockTimeoutError, Locked, RawGuard, TryLockError, deadline_after};
use crate::sync::raw_mutex::{Acquired, Fail, RawMutex};

/// A `T` in shared memory that one thread (of any process) at a time may
/// use. If the holder dies (any signal, SIGKILL included, or its thread
/// exits with a leaked guard), the next `lock` gets
/// [`LockError::OwnerDied`] with a recovery guard instead of waiting
/// forever.
///
/// `T: Pod`: plain data without pointers, valid for every bit pattern, so a
/// value half-written by a dead holder is still a valid `T`.
///
/// # Examples
///
#[cfg_attr(feature = "serde", doc = "```")]
#[cfg_attr(not(feature = "serde"), doc = "```ignore")]
/// use shmproc::Mutex;
///
/// fn add(m: Mutex<u64>) {
///     *m.lock().expect("lock") += 1;
/// }
///
/// let m = Mutex::new(0u64)?;
/// let mut kids: Vec<_> = (0..3).map(|_| shmproc::Process::spawn(add, m.clone())).collect::<Result<_, _>>()?;
/// for k in &mut kids {
///     k.join()?;
/// }
/// assert_eq!(*m.lock()?, 3);
/// # Ok::<(), shmproc::Error>(())
/// ```
///
/// Python: `multiprocessing.Lock` plus a `Value`; unlike Python's lock, a
/// dead holder never hangs the others.
pub struct Mutex<T: Pod + Send> {
    shared: Home<MutexState<T>>,
}

impl<T: Pod + Send> Clone for Mutex<T> {
    fn clone(&self) -> Self {
        Mutex { shared: self.shared.clone() }
    }
}

impl<T: Pod + Send> std::fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mutex").field("locked", &self.is_locked()).field("segment", self.shared.segment()).finish()
    }
}

impl<T: Pod + Send> Mutex<T> {
    /// An anonymous mutex holding `value`, to share with children.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = shmproc::Mutex::new(5i32)?;
    /// assert_eq!(*m.lock()?, 5);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`Segment::anonymous`].
    pub fn new(value: T) -> Result<Self> {
        Ok(Mutex { shared: Home::anonymous(|s: &MutexState<T>| s.init(value))? })
    }

    /// A named mutex holding `value`, that unrelated processes can
    /// [`open`](Mutex::open).
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-mutex-{}", std::process::id());
    /// let m = shmproc::Mutex::create(&name, 1u32)?;
    /// let other = shmproc::Mutex::<u32>::open(&name)?;
    /// *other.lock()? += 1;
    /// assert_eq!(*m.lock()?, 2);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`Segment::create`].
    pub fn create(name: &str, value: T) -> Result<Self> {
        Ok(Mutex { shared: Home::create(name, |s: &MutexState<T>| s.init(value))? })
    }

    /// Opens a named mutex made by [`create`](Mutex::create) with the same `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(shmproc::Mutex::<u8>::open("no-such-mutex").is_err());
    /// ```
    ///
    /// # Errors
    /// As for [`Segment::open`]; [`Error::LayoutMismatch`](crate::Error::LayoutMismatch)
    /// for another `T` layout.
    pub fn open(name: &str) -> Result<Self> {
        Ok(Mutex { shared: Home::open(name)? })
    }

    /// Locks, waiting as long as it takes (but never for a dead holder).
    ///
    /// # Examples
    ///
    /// ```
    /// let m = shmproc::Mutex::new(0u8)?;
    /// *m.lock()? = 9;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`LockError::OwnerDied`] (with a recovery guard),
    /// [`LockError::NotRecoverable`], [`LockError::Deadlock`] if this thread
    /// holds it already.
    #[inline]
    pub fn lock(&self) -> std::result::Result<MutexGuard<'_, T>, LockError<MutexGuard<'_, T>>> {
        self.shared.guard(self.shared.raw().lock(None)).blocking()
    }

    /// Locks if the lock is free now (or its holder is dead).
    ///
    /// # Examples
    ///
    /// ```
    /// let m = shmproc::Mutex::new(0u8)?;
    /// let g = m.try_lock()?;
    /// assert!(matches!(m.try_lock(), Err(shmproc::TryLockError::Deadlock)));
    /// drop(g);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`TryLockError::WouldBlock`] if held, and the cases of
    /// [`lock`](Mutex::lock).
    pub fn try_lock(&self) -> std::result::Result<MutexGuard<'_, T>, TryLockError<MutexGuard<'_, T>>> {
        self.shared.guard(self.shared.raw().try_lock()).tried()
    }

    /// Locks, giving up after `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = shmproc::Mutex::new(0u8)?;
    /// let g = m.lock_timeout(std::time::Duration::from_secs(1))?;
    /// # drop(g);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`LockTimeoutError::Timeout`], and the cases of [`lock`](Mutex::lock).
    pub fn lock_timeout(
        &self,
        timeout: Duration,
    ) -> std::result::Result<MutexGuard<'_, T>, LockTimeoutError<MutexGuard<'_, T>>> {
        self.shared.guard(self.shared.raw().lock(deadline_after(timeout))).timed()
    }

    /// Locks, giving up at `deadline`.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = shmproc::Mutex::new(0u8)?;
    /// let soon = std::time::Instant::now() + std::time::Duration::from_secs(1);
    /// drop(m.lock_deadline(soon)?);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`lock_timeout`](Mutex::lock_timeout).
    pub fn lock_deadline(
        &self,
        deadline: Instant,
    ) -> std::result::Result<MutexGuard<'_, T>, LockTimeoutError<MutexGuard<'_, T>>> {
        self.shared.guard(self.shared.raw().lock(Some(deadline))).timed()
    }

    /// Whether someone holds the lock now (a snapshot).
    ///
    /// # Examples
    ///
    /// ```
    /// let m = shmproc::Mutex::new(0u8)?;
    /// assert!(!m.is_locked());
    /// let _g = m.lock()?;
    /// assert!(m.is_locked());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn is_locked(&self) -> bool {
        self.shared.raw().is_locked()
    }

    /// The segment holding the mutex.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = shmproc::Mutex::new(0u64)?;
    /// assert!(m.segment().name().is_none());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn segment(&self) -> &Segment {
        self.shared.segment()
    }
}

#[cfg(feature = "async")]
impl<T: Pod + Send> Mutex<T> {
    /// Locks, waiting as long as it takes without blocking the thread (but
    /// never for a dead holder): the async twin of [`lock`](Mutex::lock).
    /// The task sleeps in no thread of the executor; the process's waiting
    /// service wakes it when the lock is released, and at the liveness
    /// checks that find a dead holder, whose lock is taken over and
    /// reported as by [`lock`](Mutex::lock).
    ///
    /// The guard belongs to the thread that polled the future to
    /// completion; it is not `Send`, so a `Send` task drops it before its
    /// next `.await`. Awaiting a mutex that a guard on this very thread
    /// holds (another task of a current-thread runtime) reports
    /// [`LockError::Deadlock`], as the blocking form does.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = shmproc::Mutex::new(0u32)?;
    /// futures::executor::block_on(async {
    ///     *m.lock_async().await? += 1;
    ///     Ok::<(), shmproc::Error>(())
    /// })?;
    /// assert_eq!(*m.lock()?, 1);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Cancellation
    /// A future dropped before it completes holds nothing: the lock is
    /// taken within the one poll that completes it. If an unlock's wake-up
    /// reached it just before it was dropped, it passes the wake-up on to
    /// another waiter.
    ///
    /// # Errors
    /// As for [`lock`](Mutex::lock); [`LockError::Os`] also if the
    /// process's waiting service cannot wait (the kernel lacks
    /// `futex_waitv`, Linux 5.16 or later is needed; or the OS refused the
    /// service its thread).
    pub async fn lock_async(&self) -> std::result::Result<MutexGuard<'_, T>, LockError<MutexGuard<'_, T>>> {
        let source = || crate::watch::HomeWord::shared(&self.shared, |s: &MutexState<T>| s.raw().word());
        match self.shared.raw().lock_async(source).await {
            Ok(r) => self.shared.guard(r).blocking(),
            Err(e) => Err(LockError::Os(e)),
        }
    }
}

#[cfg(feature = "serde")]
impl<T: Pod + Send> serde::Serialize for Mutex<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.shared.serialize(s)
    }
}

#[cfg(feature = "serde")]
impl<'de, T: Pod + Send> serde::Deserialize<'de> for Mutex<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(Mutex { shared: Home::deserialize(d)? })
    }
}

/// A `RawMutex` and the `T` it protects, as laid out in a segment.
#[repr(C)]
pub(crate) struct MutexState<T> {
    raw: RawMutex,
    data: UnsafeCell<T>,
}

// SAFETY: the data is reached only through a guard, which exists only while
// the lock is held (one thread at a time, in any process); T: Send so it may
// be used from whichever thread holds the lock.
unsafe impl<T: Pod + Send> Sync for MutexState<T> {}

// SAFETY: repr(C): a RawMutex (ShmSafe) and an UnsafeCell<T> with
// T: Pod (no pointers, every bit pattern valid, so a half-written value left
// by a dead owner is still a valid T); all interior-mutable.
unsafe impl<T: Pod + Send> ShmSafe for MutexState<T> {
    const TAG: &'static str = "shmproc::Mutex";
    const LAYOUT_HASH: u64 = mutex_layout_hash(
        core::mem::size_of::<Self>(),
        core::mem::align_of::<Self>(),
        core::mem::size_of::<T>(),
        core::mem::align_of::<T>(),
    );
}

/// The layout hash of a `Mutex<T>` whose state has `size`/`align` and whose
/// `T` has `t_size`/`t_align` (one formula, so `shmproc::inspect` can
/// recognise a mutex of any `T` from its header).
pub(crate) const fn mutex_layout_hash(size: usize, align: usize, t_size: usize, t_align: usize) -> u64 {
    layout_hash_mix(layout_hash_mix(layout_hash("shmproc::Mutex", size, align), t_size as u64), t_align as u64)
}

impl<T: Pod + Send> MutexState<T> {
    pub(crate) fn raw(&self) -> &RawMutex {
        &self.raw
    }

    /// Writes the initial value (creator only, before publication).
    pub(crate) fn init(&self, value: T) {
        // SAFETY: only the creator calls this, in `Home::create`/`anonymous`'s
        // init closure, before the segment or arena cell is visible to any
        // other thread or process: nothing else can access the cell.
        unsafe { self.data.get().write(value) }
    }

    /// Wraps the outcome of locking this mutex in guards.
    #[inline(always)]
    pub(crate) fn guard(&self, r: Result<Acquired, Fail>) -> Locked<MutexGuard<'_, T>> {
        RawGuard::wrap(self.raw(), r, |lock| MutexGuard { state: self, lock })
    }
}

/// Exclusive access to a [`Mutex`](crate::Mutex)'s data; unlocks on drop.
///
/// A guard returned inside [`LockError::OwnerDied`] is a *recovery* guard:
/// repair the data and call [`mark_consistent`](MutexGuard::mark_consistent),
/// or dropping it makes the mutex unrecoverable.
///
/// The guard borrows the mutex handle, and so its mapping: the segment
/// cannot be unmapped while a guard exists (RELIABILITY case 7).
///
/// ```compile_fail
/// let m = shmproc::Mutex::new(1u32).unwrap();
/// let g = m.lock().unwrap();
/// drop(m); // error: `m` is borrowed by `g`
/// drop(g);
/// ```
///
/// # Examples
///
/// ```
/// let m = shmproc::Mutex::new([0u8; 4])?;
/// let mut g = m.lock()?;
/// g[0] = 7;
/// drop(g);
/// assert_eq!(m.lock()?[0], 7);
/// # Ok::<(), shmproc::Error>(())
/// ```
#[must_use = "the lock is released when the guard is dropped"]
pub struct MutexGuard<'a, T: Pod + Send> {
    state: &'a MutexState<T>,
    /// Holds the lock; unlocks on drop (neither Send nor Sync).
    lock: RawGuard<'a>,
}

impl<'a, T: Pod + Send> MutexGuard<'a, T> {
    /// Declares the data repaired after an owner died: the mutex is
    /// consistent again, and later lockers get plain guards.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmproc::{LockError, Mutex};
    /// let m = Mutex::new(1u32)?;
    /// if let Err(LockError::OwnerDied(mut g)) = m.lock() {
    ///     *g = 0;
    ///     g.mark_consistent();
    /// }
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn mark_consistent(&mut self) {
        self.lock.mark_consistent();
    }

    /// Whether this is a recovery guard not yet marked consistent.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = shmproc::Mutex::new(1u32)?;
    /// assert!(!m.lock()?.is_recovering());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn is_recovering(&self) -> bool {
        self.lock.is_recovering()
    }
}

impl<T: Pod + Send> Sealed for MutexGuard<'_, T> {}

impl<T: Pod + Send> CondvarGuard for MutexGuard<'_, T> {
    type Data = T;

    fn data_mut(&mut self) -> &mut T {
        self
    }

    fn unlocked<R>(self, f: impl FnOnce() -> R) -> (R, std::result::Result<Self, LockError<Self>>) {
        let state = self.state;
        drop(self);
        let r = f();
        (r, state.guard(state.raw().lock(None)).blocking())
    }
}

impl<T: Pod + Send> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: a guard exists only while this thread holds the lock, so no other thread or process accesses the
        // cell until it drops; the cell is aligned and in bounds (checked when the segment was opened as this type).
        unsafe { &*self.state.data.get() }
    }
}

impl<T: Pod + Send> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes the access unique within
        // this thread too.
        unsafe { &mut *self.state.data.get() }
    }
}

impl<T: Pod + Send + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MutexGuard").field("data", &**self).field("recovering", &self.is_recovering()).finish()
    }
}
