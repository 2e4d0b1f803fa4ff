//! `Lock` and `RLock`: Python's lock API over the robust mutex.

use std::marker::PhantomData;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::loom::atomic::{AtomicU32, Ordering};
use crate::shm::layout::ShmSafe;
use crate::shm::segment::Segment;
use crate::shm::typed::Home;
use crate::sync::error::{AcquireError, AcquireTimeoutError, TryAcquireError, failed};
use crate::sync::guard::sealed::Sealed;
use crate::sync::guard::{CondvarGuard, LockError, deadline_after};
use crate::sync::raw_mutex::{Acquired, Fail, RawMutex};

// A Lock protects no data of its own: after a holder's death the lock is
// simply ours, and consistent again. These turn a raw outcome into the
// error type of each call (a raw `WouldBlock` or `Timeout` can only come
// from the call that may meet it).
fn acquired(r: std::result::Result<Acquired, Fail>) -> std::result::Result<(), AcquireError> {
    match r {
        Ok(_) => Ok(()),
        Err(Fail::Deadlock) => Err(AcquireError::Deadlock),
        Err(f) => Err(AcquireError::Failed(failed(f))),
    }
}

fn tried(r: std::result::Result<Acquired, Fail>) -> std::result::Result<(), TryAcquireError> {
    match r {
        Ok(_) => Ok(()),
        Err(Fail::WouldBlock | Fail::Timeout | Fail::Deadlock) => Err(TryAcquireError::WouldBlock),
        Err(f) => Err(TryAcquireError::Failed(failed(f))),
    }
}

fn timed(r: std::result::Result<Acquired, Fail>) -> std::result::Result<(), AcquireTimeoutError> {
    match r {
        Ok(_) => Ok(()),
        Err(Fail::WouldBlock | Fail::Timeout) => Err(AcquireTimeoutError::Timeout),
        Err(Fail::Deadlock) => Err(AcquireTimeoutError::Deadlock),
        Err(f) => Err(AcquireTimeoutError::Failed(failed(f))),
    }
}

/// For the async twins: an outcome of [`RawMutex::lock_async`], where the
/// outer `Err` is the waiting service's failure.
#[cfg(feature = "async")]
fn acquired_async(r: std::io::Result<std::result::Result<Acquired, Fail>>) -> std::result::Result<(), AcquireError> {
    match r {
        Ok(r) => acquired(r),
        Err(e) => Err(AcquireError::Failed(Error::os("futex_waitv", e))),
    }
}

/// A process-shared lock with Python's API (Python: `multiprocessing.Lock`).
///
/// Unlike Python's, it has an owner: if the holder dies, the next
/// `acquire` takes the lock instead of waiting forever, and `release` must
/// come from the thread that acquired it.
///
/// # Examples
///
/// ```
/// let lock = shmproc::Lock::new()?;
/// lock.acquire()?;
/// assert!(lock.try_acquire().is_err()); // held (by us: try_acquire does not re-enter)
/// lock.release()?;
/// {
///     let _g = lock.lock()?; // or a guard that releases on drop
/// }
/// # Ok::<(), shmproc::Error>(())
/// ```
#[derive(Clone)]
pub struct Lock {
    shared: Home<RawMutex>,
}

impl std::fmt::Debug for Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lock").field("locked", &self.shared.is_locked()).finish()
    }
}

/// Holds a [`Lock`] (or [`RLock`]) until dropped.
///
/// # Examples
///
/// ```
/// let lock = shmproc::Lock::new()?;
/// let g = lock.lock()?;
/// drop(g); // released
/// lock.try_acquire()?;
/// # lock.release()?;
/// # Ok::<(), shmproc::Error>(())
/// ```
#[derive(Debug)]
#[must_use = "the lock is released when the guard is dropped"]
pub struct LockGuard<'a> {
    release: Release<'a>,
    _not_send: PhantomData<*const ()>,
}

#[derive(Debug, Clone, Copy)]
enum Release<'a> {
    Lock(&'a Lock),
    RLock(&'a RLock),
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        let _ = match self.release {
            Release::Lock(l) => l.release(),
            Release::RLock(l) => l.release(),
        };
    }
}

impl Sealed for LockGuard<'_> {}

impl CondvarGuard for LockGuard<'_> {
    type Data = ();

    fn data_mut(&mut self) -> &mut () {
        // A zero-sized box allocates nothing: this leaks nothing.
        Box::leak(Box::new(()))
    }

    fn unlocked<R>(self, f: impl FnOnce() -> R) -> (R, std::result::Result<Self, LockError<Self>>) {
        // The guard's own release is done here (its drop would release
        // one level only).
        match std::mem::ManuallyDrop::new(self).release {
            Release::Lock(l) => {
                let _ = l.release();
                let r = f();
                (r, l.acquire().map(|()| l.guard()).map_err(lock_error))
            }
            Release::RLock(l) => {
                // Every level, as Python's Condition does with an RLock;
                // the same number is taken again below.
                let depth = l.release_all();
                let r = f();
                let relocked = l.entered(acquired(l.shared.raw.lock(None)));
                (r, relocked.map(|()| l.restore(depth)).map_err(lock_error))
            }
        }
    }
}

/// A relock's failure as a condition variable's wait reports it.
fn lock_error<G>(e: AcquireError) -> LockError<G> {
    match e {
        AcquireError::Deadlock => LockError::Deadlock,
        AcquireError::Failed(Error::NotRecoverable) => LockError::NotRecoverable,
        AcquireError::Failed(Error::Os { source, .. }) => LockError::Os(source),
        AcquireError::Failed(other) => LockError::Os(std::io::Error::other(other.to_string())),
    }
}

impl Lock {
    /// An anonymous lock, to share with children.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = shmproc::Lock::new()?;
    /// # let _ = lock;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`Segment::anonymous`].
    pub fn new() -> Result<Lock> {
        Ok(Lock { shared: Home::anonymous(|_| {})? })
    }

    /// A named lock that unrelated processes can [`open`](Lock::open).
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-lock-{}", std::process::id());
    /// let a = shmproc::Lock::create(&name)?;
    /// let b = shmproc::Lock::open(&name)?;
    /// a.acquire()?;
    /// assert!(b.is_locked());
    /// a.release()?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`Segment::create`].
    pub fn create(name: &str) -> Result<Lock> {
        Ok(Lock { shared: Home::create(name, |_| {})? })
    }

    /// Opens a named lock.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(shmproc::Lock::open("no-such-lock").is_err());
    /// ```
    ///
    /// # Errors
    /// As for [`Segment::open`].
    pub fn open(name: &str) -> Result<Lock> {
        Ok(Lock { shared: Home::open(name)? })
    }

    /// Acquires, waiting as long as it takes (never for a dead holder: the
    /// lock is then taken over).
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = shmproc::Lock::new()?;
    /// lock.acquire()?;
    /// lock.release()?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`AcquireError::Deadlock`] if this thread holds it already;
    /// [`AcquireError::Failed`] if no liveness token can be made.
    pub fn acquire(&self) -> std::result::Result<(), AcquireError> {
        acquired(self.shared.lock(None))
    }

    /// Acquires if free now (or its holder is dead).
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = shmproc::Lock::new()?;
    /// lock.try_acquire()?;
    /// assert!(lock.try_acquire().is_err()); // held (by us: trying does not re-enter)
    /// # lock.release()?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`TryAcquireError::WouldBlock`] if held (also by this thread);
    /// [`TryAcquireError::Failed`] as for [`acquire`](Lock::acquire).
    pub fn try_acquire(&self) -> std::result::Result<(), TryAcquireError> {
        tried(self.shared.try_lock())
    }

    /// Acquires, giving up after `timeout` (`Duration::MAX`: never).
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = shmproc::Lock::new()?;
    /// lock.acquire_timeout(std::time::Duration::from_millis(10))?;
    /// # lock.release()?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`AcquireTimeoutError::Timeout`], and the cases of
    /// [`acquire`](Lock::acquire).
    pub fn acquire_timeout(&self, timeout: Duration) -> std::result::Result<(), AcquireTimeoutError> {
        timed(self.shared.lock(deadline_after(timeout)))
    }

    /// Acquires, giving up at `deadline`.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = shmproc::Lock::new()?;
    /// let _g = lock.lock()?;
    /// let now = std::time::Instant::now();
    /// assert!(lock.acquire_deadline(now).is_err()); // ours already: Deadlock
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`acquire_timeout`](Lock::acquire_timeout).
    pub fn acquire_deadline(&self, deadline: Instant) -> std::result::Result<(), AcquireTimeoutError> {
        timed(self.shared.lock(Some(deadline)))
    }

    /// Releases a lock this thread holds.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = shmproc::Lock::new()?;
    /// assert!(matches!(lock.release(), Err(shmproc::Error::NotOwner)));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::NotOwner`] if this thread does not hold it.
    pub fn release(&self) -> Result<()> {
        if !self.shared.held_by_me() {
            return Err(Error::NotOwner);
        }
        self.shared.mark_consistent();
        self.shared.unlock();
        Ok(())
    }

    /// Acquires and returns a guard that releases on drop.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = shmproc::Lock::new()?;
    /// let _g = lock.lock()?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`acquire`](Lock::acquire).
    pub fn lock(&self) -> std::result::Result<LockGuard<'_>, AcquireError> {
        self.acquire().map(|()| self.guard())
    }

    /// [`try_acquire`](Lock::try_acquire) with a guard.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = shmproc::Lock::new()?;
    /// let g = lock.try_lock()?;
    /// assert!(lock.try_lock().is_err());
    /// drop(g);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`try_acquire`](Lock::try_acquire).
    pub fn try_lock(&self) -> std::result::Result<LockGuard<'_>, TryAcquireError> {
        self.try_acquire().map(|()| self.guard())
    }

    /// [`acquire_timeout`](Lock::acquire_timeout) with a guard.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = shmproc::Lock::new()?;
    /// let _g = lock.lock_timeout(std::time::Duration::from_secs(1))?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`acquire_timeout`](Lock::acquire_timeout).
    pub fn lock_timeout(&self, timeout: Duration) -> std::result::Result<LockGuard<'_>, AcquireTimeoutError> {
        self.acquire_timeout(timeout).map(|()| self.guard())
    }

    /// [`acquire_deadline`](Lock::acquire_deadline) with a guard.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = shmproc::Lock::new()?;
    /// let soon = std::time::Instant::now() + std::time::Duration::from_secs(1);
    /// let _g = lock.lock_deadline(soon)?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`acquire_timeout`](Lock::acquire_timeout).
    pub fn lock_deadline(&self, deadline: Instant) -> std::result::Result<LockGuard<'_>, AcquireTimeoutError> {
        self.acquire_deadline(deadline).map(|()| self.guard())
    }

    fn guard(&self) -> LockGuard<'_> {
        LockGuard { release: Release::Lock(self), _not_send: PhantomData }
    }

    /// Whether someone holds the lock now (a snapshot).
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = shmproc::Lock::new()?;
    /// assert!(!lock.is_locked());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn is_locked(&self) -> bool {
        self.shared.is_locked()
    }

    /// The segment holding the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = shmproc::Lock::new()?;
    /// assert!(lock.segment().len() > 0);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn segment(&self) -> &Segment {
        self.shared.segment()
    }
}

#[cfg(feature = "async")]
impl Lock {
    /// Acquires, waiting as long as it takes without blocking the thread
    /// (never for a dead holder: the lock is then taken over): the async
    /// twin of [`acquire`](Lock::acquire). The task sleeps in no thread of
    /// the executor; the process's waiting service wakes it when the lock
    /// is released, and at the liveness checks that find a dead holder.
    ///
    /// The holder is the thread that polled the future to completion, as
    /// for [`acquire`](Lock::acquire): [`release`](Lock::release) must come
    /// from that thread, so on a multi-thread runtime release before the
    /// task's next `.await`, or take the guard of
    /// [`lock_async`](Lock::lock_async) (not `Send`: the compiler keeps it
    /// from crossing an `.await` of a `Send` task). Awaiting a lock that a
    /// guard on this very thread holds (another task of a current-thread
    /// runtime) reports [`AcquireError::Deadlock`], as the blocking form
    /// does.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = shmproc::Lock::new()?;
    /// futures::executor::block_on(lock.acquire_async())?;
    /// assert!(lock.is_locked());
    /// lock.release()?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Cancellation
    /// A future dropped before it completes holds nothing: the lock is
    /// taken within the one poll that completes it. If a release's wake-up
    /// reached it just before it was dropped, it passes the wake-up on to
    /// another waiter.
    ///
    /// # Errors
    /// As for [`acquire`](Lock::acquire); [`AcquireError::Failed`] also if
    /// the process's waiting service cannot wait (the kernel lacks
    /// `futex_waitv`, Linux 5.16 or later is needed; or the OS refused the
    /// service its thread).
    pub async fn acquire_async(&self) -> std::result::Result<(), AcquireError> {
        let source = || crate::watch::HomeWord::shared(&self.shared, RawMutex::word);
        acquired_async(self.shared.lock_async(source).await)
    }

    /// [`acquire_async`](Lock::acquire_async) with a guard that releases on
    /// drop: the async twin of [`lock`](Lock::lock).
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = shmproc::Lock::new()?;
    /// futures::executor::block_on(async {
    ///     let g = lock.lock_async().await?;
    ///     assert!(lock.is_locked());
    ///     drop(g);
    ///     Ok::<(), shmproc::AcquireError>(())
    /// })?;
    /// assert!(!lock.is_locked());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Cancellation
    /// As for [`acquire_async`](Lock::acquire_async).
    ///
    /// # Errors
    /// As for [`acquire_async`](Lock::acquire_async).
    pub async fn lock_async(&self) -> std::result::Result<LockGuard<'_>, AcquireError> {
        self.acquire_async().await.map(|()| self.guard())
    }
}

/// A re-entrant process-shared lock (Python: `multiprocessing.RLock`): the
/// holding thread may acquire it again, and must release it as many times.
///
/// # Examples
///
/// ```
/// let r = shmproc::RLock::new()?;
/// r.acquire()?;
/// r.acquire()?; // again, same thread
/// assert_eq!(r.depth(), 2);
/// r.release()?;
/// r.release()?;
/// assert!(!r.is_locked());
/// # Ok::<(), shmproc::Error>(())
/// ```
#[derive(Clone)]
pub struct RLock {
    shared: Home<RLockState>,
}

impl std::fmt::Debug for RLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RLock").field("locked", &self.is_locked()).finish()
    }
}

impl RLock {
    /// An anonymous re-entrant lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let r = shmproc::RLock::new()?;
    /// # let _ = r;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`Segment::anonymous`].
    pub fn new() -> Result<RLock> {
        Ok(RLock { shared: Home::anonymous(|_| {})? })
    }

    /// A named re-entrant lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-rlock-{}", std::process::id());
    /// let r = shmproc::RLock::create(&name)?;
    /// assert!(shmproc::RLock::open(&name).is_ok());
    /// # drop(r);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`Segment::create`].
    pub fn create(name: &str) -> Result<RLock> {
        Ok(RLock { shared: Home::create(name, |_| {})? })
    }

    /// Opens a named re-entrant lock.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(shmproc::RLock::open("no-such-rlock").is_err());
    /// ```
    ///
    /// # Errors
    /// As for [`Segment::open`].
    pub fn open(name: &str) -> Result<RLock> {
        Ok(RLock { shared: Home::open(name)? })
    }

    /// Takes one more level if this thread holds the lock: whether it did.
    fn again(&self) -> bool {
        let mine = self.shared.raw.held_by_me();
        if mine {
            self.shared.depth.fetch_add(1, Ordering::Relaxed);
        }
        mine
    }

    /// Records the first level of a lock just taken.
    fn entered<E>(&self, r: std::result::Result<(), E>) -> std::result::Result<(), E> {
        r.inspect(|()| self.shared.depth.store(1, Ordering::Relaxed))
    }

    /// Releases every level this thread holds: how many (0 if it held
    /// none, and then nothing changes).
    fn release_all(&self) -> u32 {
        if !self.shared.raw.held_by_me() {
            return 0;
        }
        let depth = self.shared.depth.load(Ordering::Relaxed).max(1);
        self.shared.depth.store(0, Ordering::Relaxed);
        self.shared.raw.mark_consistent();
        self.shared.raw.unlock();
        depth
    }

    /// After [`release_all`](RLock::release_all) and a relock: the depth
    /// back, and a guard for it.
    fn restore(&self, depth: u32) -> LockGuard<'_> {
        self.shared.depth.store(depth.max(1), Ordering::Relaxed);
        LockGuard { release: Release::RLock(self), _not_send: PhantomData }
    }

    /// Acquires (again, if this thread holds it).
    ///
    /// # Examples
    ///
    /// ```
    /// let r = shmproc::RLock::new()?;
    /// r.acquire()?;
    /// r.release()?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`AcquireError::Failed`] if no liveness token can be made (never
    /// [`AcquireError::Deadlock`]: an `RLock` counts instead).
    pub fn acquire(&self) -> std::result::Result<(), AcquireError> {
        if self.again() {
            return Ok(());
        }
        self.entered(acquired(self.shared.raw.lock(None)))
    }

    /// Acquires if free now, or held by this thread.
    ///
    /// # Examples
    ///
    /// ```
    /// let r = shmproc::RLock::new()?;
    /// r.try_acquire()?;
    /// r.try_acquire()?; // re-entrant
    /// r.release()?;
    /// r.release()?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`TryAcquireError::WouldBlock`] if another thread holds it;
    /// [`TryAcquireError::Failed`] as for [`acquire`](RLock::acquire).
    pub fn try_acquire(&self) -> std::result::Result<(), TryAcquireError> {
        if self.again() {
            return Ok(());
        }
        self.entered(tried(self.shared.raw.try_lock()))
    }

    /// Acquires, giving up after `timeout` (`Duration::MAX`: never).
    ///
    /// # Examples
    ///
    /// ```
    /// let r = shmproc::RLock::new()?;
    /// r.acquire_timeout(std::time::Duration::from_millis(10))?;
    /// # r.release()?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`AcquireTimeoutError::Timeout`], and the cases of
    /// [`acquire`](RLock::acquire).
    pub fn acquire_timeout(&self, timeout: Duration) -> std::result::Result<(), AcquireTimeoutError> {
        if self.again() {
            return Ok(());
        }
        self.entered(timed(self.shared.raw.lock(deadline_after(timeout))))
    }

    /// Acquires, giving up at `deadline`.
    ///
    /// # Examples
    ///
    /// ```
    /// let r = shmproc::RLock::new()?;
    /// r.acquire_deadline(std::time::Instant::now())?; // free: taken at once
    /// # r.release()?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`acquire_timeout`](RLock::acquire_timeout).
    pub fn acquire_deadline(&self, deadline: Instant) -> std::result::Result<(), AcquireTimeoutError> {
        if self.again() {
            return Ok(());
        }
        self.entered(timed(self.shared.raw.lock(Some(deadline))))
    }

    /// Releases one level; the lock is free when the depth reaches 0.
    ///
    /// # Examples
    ///
    /// ```
    /// let r = shmproc::RLock::new()?;
    /// assert!(matches!(r.release(), Err(shmproc::Error::NotOwner)));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::NotOwner`] if this thread does not hold it.
    pub fn release(&self) -> Result<()> {
        if !self.shared.raw.held_by_me() {
            return Err(Error::NotOwner);
        }
        let depth = self.shared.depth.load(Ordering::Relaxed);
        if depth > 1 {
            self.shared.depth.store(depth - 1, Ordering::Relaxed);
            return Ok(());
        }
        self.shared.depth.store(0, Ordering::Relaxed);
        self.shared.raw.mark_consistent();
        self.shared.raw.unlock();
        Ok(())
    }

    /// Acquires and returns a guard that releases one level on drop.
    ///
    /// # Examples
    ///
    /// ```
    /// let r = shmproc::RLock::new()?;
    /// let a = r.lock()?;
    /// let b = r.lock()?;
    /// drop((b, a));
    /// assert!(!r.is_locked());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`acquire`](RLock::acquire).
    pub fn lock(&self) -> std::result::Result<LockGuard<'_>, AcquireError> {
        self.acquire()?;
        Ok(LockGuard { release: Release::RLock(self), _not_send: PhantomData })
    }

    /// How many times the holder has acquired it (0 when free).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shmproc::RLock::new()?.depth(), 0);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn depth(&self) -> u32 {
        if self.is_locked() { self.shared.depth.load(Ordering::Relaxed) } else { 0 }
    }

    /// Whether someone holds the lock now (a snapshot).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!shmproc::RLock::new()?.is_locked());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn is_locked(&self) -> bool {
        self.shared.raw.is_locked()
    }
}

#[cfg(feature = "async")]
impl RLock {
    /// Acquires (again, if this thread holds it), waiting as long as it
    /// takes without blocking the thread: the async twin of
    /// [`acquire`](RLock::acquire). A dead holder's lock is taken over.
    ///
    /// The holder is the thread that polled the future to completion: a
    /// later acquire on that thread (by any task) re-enters, and
    /// [`release`](RLock::release) must come from that thread, so on a
    /// multi-thread runtime release before the task's next `.await`, or
    /// take the guard of [`lock_async`](RLock::lock_async).
    ///
    /// # Examples
    ///
    /// ```
    /// let r = shmproc::RLock::new()?;
    /// futures::executor::block_on(async {
    ///     r.acquire_async().await?;
    ///     r.acquire_async().await?; // again, same thread
    ///     Ok::<(), shmproc::AcquireError>(())
    /// })?;
    /// assert_eq!(r.depth(), 2);
    /// r.release()?;
    /// r.release()?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Cancellation
    /// As for [`Lock::acquire_async`]: a future dropped before it
    /// completes holds nothing and adds no level.
    ///
    /// # Errors
    /// As for [`acquire`](RLock::acquire); [`AcquireError::Failed`] also if
    /// the process's waiting service cannot wait (see
    /// [`Lock::acquire_async`]).
    pub async fn acquire_async(&self) -> std::result::Result<(), AcquireError> {
        if self.again() {
            return Ok(());
        }
        let source = || crate::watch::HomeWord::shared(&self.shared, |s: &RLockState| s.raw.word());
        self.entered(acquired_async(self.shared.raw.lock_async(source).await))
    }

    /// [`acquire_async`](RLock::acquire_async) with a guard that releases
    /// one level on drop: the async twin of [`lock`](RLock::lock).
    ///
    /// # Examples
    ///
    /// ```
    /// let r = shmproc::RLock::new()?;
    /// futures::executor::block_on(async {
    ///     let a = r.lock_async().await?;
    ///     let b = r.lock_async().await?;
    ///     drop((b, a));
    ///     Ok::<(), shmproc::AcquireError>(())
    /// })?;
    /// assert!(!r.is_locked());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Cancellation
    /// As for [`acquire_async`](RLock::acquire_async).
    ///
    /// # Errors
    /// As for [`acquire_async`](RLock::acquire_async).
    pub async fn lock_async(&self) -> std::result::Result<LockGuard<'_>, AcquireError> {
        self.acquire_async().await?;
        Ok(LockGuard { release: Release::RLock(self), _not_send: PhantomData })
    }
}

#[cfg(feature = "serde")]
macro_rules! serde_via_shared {
    ($t:ty) => {
        #[cfg(feature = "serde")]
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                self.shared.serialize(s)
            }
        }
        #[cfg(feature = "serde")]
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                Ok(Self { shared: Home::deserialize(d)? })
            }
        }
    };
}
#[cfg(feature = "serde")]
pub(crate) use serde_via_shared;

#[cfg(feature = "serde")]
serde_via_shared!(Lock);
#[cfg(feature = "serde")]
serde_via_shared!(RLock);

/// A re-entrant lock's state: the mutex and the depth of the owner's
/// recursion (written only by the owner).
#[derive(Debug)]
#[repr(C)]
pub(crate) struct RLockState {
    pub(crate) raw: RawMutex,
    pub(crate) depth: AtomicU32,
}

#[allow(unsafe_code)] // the layout promise of a type placed in shared memory
// SAFETY: repr(C) over a RawMutex and an atomic: no pointers, any bits
// valid (a garbage depth only mis-counts the owner's own releases), all
// interior-mutable.
unsafe impl ShmSafe for RLockState {
    const TAG: &'static str = "shmproc::RLock";
}
