//! `Mutex<T>`: pointer-free data in shared memory behind a robust lock.

use std::time::{Duration, Instant};

use bytemuck::Pod;

use crate::error::Result;
use crate::shm::segment::Segment;
use crate::shm::typed::Shared;
use crate::sync::raw_mutex::{LockError, MutexGuard, MutexState};

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
    shared: Shared<MutexState<T>>,
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
        Ok(Mutex { shared: Shared::anonymous(|s: &MutexState<T>| s.init(value))? })
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
        Ok(Mutex { shared: Shared::create(name, |s: &MutexState<T>| s.init(value))? })
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
        Ok(Mutex { shared: Shared::open(name)? })
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
        self.shared.guard(self.shared.raw().lock(None))
    }

    /// Locks if the lock is free now (or its holder is dead).
    ///
    /// # Examples
    ///
    /// ```
    /// let m = shmproc::Mutex::new(0u8)?;
    /// let g = m.try_lock()?;
    /// assert!(matches!(m.try_lock(), Err(shmproc::LockError::Deadlock)));
    /// drop(g);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`LockError::WouldBlock`] if held, and those of [`lock`](Mutex::lock).
    pub fn try_lock(&self) -> std::result::Result<MutexGuard<'_, T>, LockError<MutexGuard<'_, T>>> {
        self.shared.guard(self.shared.raw().try_lock())
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
    /// [`LockError::Timeout`], and those of [`lock`](Mutex::lock).
    pub fn lock_timeout(
        &self,
        timeout: Duration,
    ) -> std::result::Result<MutexGuard<'_, T>, LockError<MutexGuard<'_, T>>> {
        self.lock_deadline(Instant::now() + timeout)
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
    ) -> std::result::Result<MutexGuard<'_, T>, LockError<MutexGuard<'_, T>>> {
        self.shared.guard(self.shared.raw().lock(Some(deadline)))
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

#[cfg(feature = "serde")]
impl<T: Pod + Send> serde::Serialize for Mutex<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.shared.serialize(s)
    }
}

#[cfg(feature = "serde")]
impl<'de, T: Pod + Send> serde::Deserialize<'de> for Mutex<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(Mutex { shared: Shared::deserialize(d)? })
    }
}
