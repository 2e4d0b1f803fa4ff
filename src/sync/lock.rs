//! `Lock` and `RLock`: Python's lock API over the robust mutex.

use std::marker::PhantomData;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::loom::atomic::{AtomicU32, Ordering};
use crate::shm::layout::ShmSafe;
use crate::shm::segment::Segment;
use crate::shm::typed::Home;
use crate::sync::guard::map_fail;
use crate::sync::raw_mutex::{Acquired, Fail, RawMutex};

fn acquired(r: std::result::Result<Acquired, Fail>) -> Result<bool> {
    match r {
        // A Lock protects no data of its own: after a holder's death the
        // lock is simply ours, and consistent again.
        Ok(_) => Ok(true),
        Err(Fail::WouldBlock) | Err(Fail::Timeout) => Ok(false),
        Err(f) => Err(map_fail::<()>(f).into()),
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
/// assert!(!lock.try_acquire()?); // held (by us: try_acquire does not re-enter)
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
/// assert!(lock.try_acquire()?);
/// # lock.release()?;
/// # Ok::<(), shmproc::Error>(())
/// ```
#[derive(Debug)]
pub struct LockGuard<'a> {
    release: Release<'a>,
    _not_send: PhantomData<*const ()>,
}

#[derive(Debug)]
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
    /// [`Error::Deadlock`] if this thread holds it already.
    pub fn acquire(&self) -> Result<()> {
        acquired(self.shared.lock(None)).map(|_| ())
    }

    /// Acquires, giving up after `timeout`: `Ok(false)` then.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = shmproc::Lock::new()?;
    /// assert!(lock.acquire_timeout(std::time::Duration::from_millis(10))?);
    /// # lock.release()?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`acquire`](Lock::acquire).
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool> {
        acquired(self.shared.lock(Some(Instant::now() + timeout)))
    }

    /// Acquires if free now (or its holder is dead): `Ok(false)` if held.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = shmproc::Lock::new()?;
    /// assert!(lock.try_acquire()?);
    /// # lock.release()?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`acquire`](Lock::acquire).
    pub fn try_acquire(&self) -> Result<bool> {
        match self.shared.try_lock() {
            Err(Fail::Deadlock) => Ok(false),
            r => acquired(r),
        }
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
    pub fn lock(&self) -> Result<LockGuard<'_>> {
        self.acquire()?;
        Ok(LockGuard { release: Release::Lock(self), _not_send: PhantomData })
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

    fn enter(&self, r: std::result::Result<Acquired, Fail>) -> Result<bool> {
        let got = acquired(r)?;
        if got {
            self.shared.depth.store(1, Ordering::Relaxed);
        }
        Ok(got)
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
    /// [`Error::Os`] if no liveness token can be made.
    pub fn acquire(&self) -> Result<()> {
        if self.shared.raw.held_by_me() {
            self.shared.depth.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        self.enter(self.shared.raw.lock(None)).map(|_| ())
    }

    /// Acquires, giving up after `timeout`: `Ok(false)` then.
    ///
    /// # Examples
    ///
    /// ```
    /// let r = shmproc::RLock::new()?;
    /// assert!(r.acquire_timeout(std::time::Duration::from_millis(5))?);
    /// # r.release()?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`acquire`](RLock::acquire).
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool> {
        if self.shared.raw.held_by_me() {
            self.shared.depth.fetch_add(1, Ordering::Relaxed);
            return Ok(true);
        }
        self.enter(self.shared.raw.lock(Some(Instant::now() + timeout)))
    }

    /// Acquires if free now, or held by this thread.
    ///
    /// # Examples
    ///
    /// ```
    /// let r = shmproc::RLock::new()?;
    /// assert!(r.try_acquire()? && r.try_acquire()?);
    /// # r.release()?; r.release()?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`acquire`](RLock::acquire).
    pub fn try_acquire(&self) -> Result<bool> {
        if self.shared.raw.held_by_me() {
            self.shared.depth.fetch_add(1, Ordering::Relaxed);
            return Ok(true);
        }
        self.enter(self.shared.raw.try_lock())
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
    pub fn lock(&self) -> Result<LockGuard<'_>> {
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
