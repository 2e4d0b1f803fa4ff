//! `Semaphore` and `BoundedSemaphore`.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::shm::typed::Home;
use crate::sync::error::{TimedOut, WouldBlock};
use crate::sync::guard::deadline_after;
#[cfg(feature = "serde")]
use crate::sync::lock::serde_via_shared;
use crate::sync::raw_semaphore::RawSemaphore;

/// A process-shared counting semaphore (Python: `multiprocessing.Semaphore`).
///
/// Permits have no owner: if a process dies holding some, they are lost
/// (as in Python and POSIX). Use [`acquire_timeout`](Semaphore::acquire_timeout)
/// where that matters: it returns instead of hanging.
///
/// # Examples
///
/// ```
/// let s = shmproc::Semaphore::new(2)?;
/// s.acquire();
/// s.try_acquire()?;
/// assert_eq!(s.try_acquire(), Err(shmproc::WouldBlock));
/// s.release()?;
/// assert_eq!(s.value(), 1);
/// # Ok::<(), shmproc::Error>(())
/// ```
#[derive(Clone)]
pub struct Semaphore {
    shared: Home<RawSemaphore>,
}

impl std::fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Semaphore").field("value", &self.value()).finish()
    }
}

impl Semaphore {
    fn make(value: u32, max: u32, name: Option<&str>) -> Result<Semaphore> {
        let init = move |s: &RawSemaphore| s.init(value, max);
        let shared = match name {
            Some(n) => Home::create(n, init)?,
            None => Home::anonymous(init)?,
        };
        Ok(Semaphore { shared })
    }

    /// An anonymous semaphore with `value` permits.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shmproc::Semaphore::new(3)?.value(), 3);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`Segment::anonymous`](crate::Segment::anonymous).
    pub fn new(value: u32) -> Result<Semaphore> {
        Semaphore::make(value, 0, None)
    }

    /// A named semaphore with `value` permits.
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-sem-{}", std::process::id());
    /// let s = shmproc::Semaphore::create(&name, 1)?;
    /// assert_eq!(shmproc::Semaphore::open(&name)?.value(), 1);
    /// # drop(s);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`Segment::create`](crate::Segment::create).
    pub fn create(name: &str, value: u32) -> Result<Semaphore> {
        Semaphore::make(value, 0, Some(name))
    }

    /// Opens a named semaphore (bounded or not).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(shmproc::Semaphore::open("no-such-semaphore").is_err());
    /// ```
    ///
    /// # Errors
    /// As for [`Segment::open`](crate::Segment::open).
    pub fn open(name: &str) -> Result<Semaphore> {
        Ok(Semaphore { shared: Home::open(name)? })
    }

    /// Takes a permit, waiting as long as it takes.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = shmproc::Semaphore::new(1)?;
    /// s.acquire();
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// It cannot fail: a permit is a count, owned by nobody.
    pub fn acquire(&self) {
        self.shared.acquire(None);
    }

    /// Takes a permit if one is free now.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = shmproc::Semaphore::new(1)?;
    /// s.try_acquire()?;
    /// assert_eq!(s.try_acquire(), Err(shmproc::WouldBlock));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`WouldBlock`] if no permit is free.
    pub fn try_acquire(&self) -> std::result::Result<(), WouldBlock> {
        if self.shared.try_acquire() { Ok(()) } else { Err(WouldBlock) }
    }

    /// Takes a permit, giving up after `timeout` (`Duration::MAX`: never).
    ///
    /// # Examples
    ///
    /// ```
    /// let s = shmproc::Semaphore::new(0)?;
    /// assert_eq!(s.acquire_timeout(std::time::Duration::from_millis(5)), Err(shmproc::TimedOut));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`TimedOut`] if no permit came free in time.
    pub fn acquire_timeout(&self, timeout: Duration) -> std::result::Result<(), TimedOut> {
        if self.shared.acquire(deadline_after(timeout)) { Ok(()) } else { Err(TimedOut) }
    }

    /// Takes a permit, giving up at `deadline`.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = shmproc::Semaphore::new(1)?;
    /// s.acquire_deadline(std::time::Instant::now())?; // free: taken at once
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`acquire_timeout`](Semaphore::acquire_timeout).
    pub fn acquire_deadline(&self, deadline: Instant) -> std::result::Result<(), TimedOut> {
        if self.shared.acquire(Some(deadline)) { Ok(()) } else { Err(TimedOut) }
    }

    /// Takes a permit and returns a guard that returns it when dropped
    /// (Python: `with sem:`), waiting as long as it takes.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = shmproc::Semaphore::new(1)?;
    /// {
    ///     let _permit = s.guard();
    ///     assert_eq!(s.value(), 0);
    /// }
    /// assert_eq!(s.value(), 1); // returned on drop
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// It cannot fail, as [`acquire`](Semaphore::acquire) cannot.
    pub fn guard(&self) -> SemaphoreGuard<'_> {
        self.acquire();
        SemaphoreGuard { sem: self }
    }

    /// [`try_acquire`](Semaphore::try_acquire) with a guard that returns
    /// the permit when dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = shmproc::Semaphore::new(1)?;
    /// let g = s.try_guard()?;
    /// assert_eq!(s.try_guard().err(), Some(shmproc::WouldBlock));
    /// drop(g);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`WouldBlock`] if no permit is free.
    pub fn try_guard(&self) -> std::result::Result<SemaphoreGuard<'_>, WouldBlock> {
        self.try_acquire().map(|()| SemaphoreGuard { sem: self })
    }

    /// [`acquire_timeout`](Semaphore::acquire_timeout) with a guard that
    /// returns the permit when dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = shmproc::Semaphore::new(1)?;
    /// let g = s.guard_timeout(std::time::Duration::from_secs(1))?;
    /// assert!(s.guard_timeout(std::time::Duration::from_millis(1)).is_err());
    /// drop(g);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`TimedOut`] if no permit came free in time.
    pub fn guard_timeout(&self, timeout: Duration) -> std::result::Result<SemaphoreGuard<'_>, TimedOut> {
        self.acquire_timeout(timeout).map(|()| SemaphoreGuard { sem: self })
    }

    /// [`acquire_deadline`](Semaphore::acquire_deadline) with a guard that
    /// returns the permit when dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = shmproc::Semaphore::new(0)?;
    /// let now = std::time::Instant::now();
    /// assert_eq!(s.guard_deadline(now).err(), Some(shmproc::TimedOut));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`guard_timeout`](Semaphore::guard_timeout).
    pub fn guard_deadline(&self, deadline: Instant) -> std::result::Result<SemaphoreGuard<'_>, TimedOut> {
        self.acquire_deadline(deadline).map(|()| SemaphoreGuard { sem: self })
    }

    /// Returns a permit.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = shmproc::Semaphore::new(0)?;
    /// s.release()?;
    /// s.try_acquire()?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::ReleasedTooMany`] for a [`BoundedSemaphore`] at its bound.
    pub fn release(&self) -> Result<()> {
        self.release_n(1)
    }

    /// Returns `n` permits at once (Python 3.9's `release(n)`).
    ///
    /// # Examples
    ///
    /// ```
    /// let s = shmproc::Semaphore::new(0)?;
    /// s.release_n(3)?;
    /// assert_eq!(s.value(), 3);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`release`](Semaphore::release).
    pub fn release_n(&self, n: u32) -> Result<()> {
        if self.shared.release(n) { Ok(()) } else { Err(Error::ReleasedTooMany) }
    }

    /// Permits available now (a snapshot; Python: `get_value()`).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shmproc::Semaphore::new(4)?.value(), 4);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn value(&self) -> u32 {
        self.shared.value()
    }
}

#[cfg(feature = "async")]
impl Semaphore {
    /// Takes a permit, waiting as long as it takes without blocking the
    /// thread: the async twin of [`acquire`](Semaphore::acquire) (also
    /// that of a [`BoundedSemaphore`], through `Deref`). The task sleeps in
    /// no thread of the executor; the process's waiting service wakes it
    /// when permits are released.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = shmproc::Semaphore::new(0)?;
    /// let releaser = s.clone();
    /// let t = std::thread::spawn(move || releaser.release());
    /// futures::executor::block_on(s.acquire_async());
    /// t.join().expect("releaser")?;
    /// assert_eq!(s.value(), 0); // the released permit was taken
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Cancellation
    /// A future dropped before it completes has taken no permit (a permit
    /// is taken within the one poll that completes it), and withdraws its
    /// announcement as a waiter. If a release's wake-up reached it just
    /// before it was dropped, it passes the wake-up on to another waiter.
    ///
    /// # Panics
    /// If the process's waiting service cannot wait, as
    /// [`acquire`](Semaphore::acquire) has no error to report it with: the
    /// kernel lacks `futex_waitv` (Linux 5.16 or later is needed), or the
    /// OS refused the service its thread.
    pub async fn acquire_async(&self) {
        let source = || crate::watch::HomeWord::shared(&self.shared, RawSemaphore::count_word);
        if let Err(e) = self.shared.acquire_async(source).await {
            panic!("Semaphore::acquire_async: the waiting service failed ({e}); futex_waitv needs Linux 5.16 or later");
        }
    }
}

/// A permit of a [`Semaphore`] (or [`BoundedSemaphore`]), returned when
/// the guard is dropped: [`Semaphore::guard`] and its `try_`, `_timeout`
/// and `_deadline` forms (Python: the body of `with sem:`).
///
/// A permit has no owner, so the guard may move to another thread.
///
/// # Examples
///
/// ```
/// let s = shmproc::BoundedSemaphore::new(2)?;
/// let a = s.guard();
/// let b = s.try_guard()?;
/// assert_eq!(s.value(), 0);
/// drop((a, b));
/// assert_eq!(s.value(), 2);
/// # Ok::<(), shmproc::Error>(())
/// ```
#[derive(Debug)]
#[must_use = "the permit is returned when the guard is dropped"]
pub struct SemaphoreGuard<'a> {
    sem: &'a Semaphore,
}

impl SemaphoreGuard<'_> {
    /// Keeps the permit taken: drops the guard without returning it (as an
    /// `acquire` without its `release`).
    ///
    /// # Examples
    ///
    /// ```
    /// let s = shmproc::Semaphore::new(1)?;
    /// s.guard().forget();
    /// assert_eq!(s.value(), 0);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for SemaphoreGuard<'_> {
    fn drop(&mut self) {
        // Fails only for a bounded semaphore that someone else released
        // beyond its bound meanwhile: the permit is then there already.
        let _ = self.sem.release();
    }
}

/// A semaphore that refuses to be released above its initial value
/// (Python: `multiprocessing.BoundedSemaphore`). Derefs to [`Semaphore`].
///
/// # Examples
///
/// ```
/// let s = shmproc::BoundedSemaphore::new(1)?;
/// assert!(matches!(s.release(), Err(shmproc::Error::ReleasedTooMany)));
/// s.acquire();
/// s.release()?;
/// # Ok::<(), shmproc::Error>(())
/// ```
#[derive(Clone, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct BoundedSemaphore(Semaphore);

impl BoundedSemaphore {
    /// An anonymous bounded semaphore with `value` permits (and bound).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shmproc::BoundedSemaphore::new(2)?.value(), 2);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`Semaphore::new`]; [`Error::InvalidArgument`] for 0.
    pub fn new(value: u32) -> Result<BoundedSemaphore> {
        if value == 0 {
            return Err(Error::InvalidArgument { what: "a bounded semaphore needs a bound of at least 1" });
        }
        Ok(BoundedSemaphore(Semaphore::make(value, value, None)?))
    }

    /// A named bounded semaphore.
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-bsem-{}", std::process::id());
    /// let s = shmproc::BoundedSemaphore::create(&name, 2)?;
    /// # drop(s);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`Semaphore::create`]; [`Error::InvalidArgument`] for 0.
    pub fn create(name: &str, value: u32) -> Result<BoundedSemaphore> {
        if value == 0 {
            return Err(Error::InvalidArgument { what: "a bounded semaphore needs a bound of at least 1" });
        }
        Ok(BoundedSemaphore(Semaphore::make(value, value, Some(name))?))
    }
}

impl std::ops::Deref for BoundedSemaphore {
    type Target = Semaphore;
    fn deref(&self) -> &Semaphore {
        &self.0
    }
}

#[cfg(feature = "serde")]
serde_via_shared!(Semaphore);
