//! Lock, RLock, Semaphore, Event, Condition and Barrier proxies: objects
//! that live in the manager's server and whose calls may wait there.
//!
//! How a call that may wait travels (see `served.rs` for the server):
//! a call with a wait goes over a connection of its own, checked out of a
//! small per-process set of spare connections for its duration, so one
//! thread's `acquire` never blocks another thread's `release` in the same
//! process; a call that does not wait (`try_` calls, `release`, `set`)
//! goes over the process's shared connection. The wait travels as a
//! remaining duration and the server ends it; the caller's identity
//! (pid, liveness nonce, thread) travels too and makes lock ownership.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::manager::ObjRef;
use crate::manager::protocol::{self, ERR, OK, code, op};
use crate::owner::token;
use crate::sync::error::{AcquireError, AcquireTimeoutError, BarrierError, BarrierTimeoutError, TryAcquireError};

/// How long a call may wait in the server.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Wait {
    /// Not at all (a `try_` call).
    Try,
    /// As long as it takes.
    Forever,
    /// Until this instant.
    Until(Instant),
}

impl Wait {
    pub(crate) fn after(d: Duration) -> Wait {
        Instant::now().checked_add(d).map_or(Wait::Forever, Wait::Until)
    }

    /// The wait as the request carries it: a remaining duration in ns (0:
    /// do not wait, `u64::MAX`: forever).
    fn ns(self) -> u64 {
        match self {
            Wait::Try => 0,
            Wait::Forever => u64::MAX,
            Wait::Until(t) => {
                let left = t.saturating_duration_since(Instant::now()).as_nanos();
                u64::try_from(left).unwrap_or(u64::MAX - 1).min(u64::MAX - 1)
            }
        }
    }
}

/// Why the server refused a blocking call.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// The wait ended (or a `try_` call would have had to wait).
    Timeout,
    /// The calling thread holds the (non-reentrant) lock already.
    Deadlock,
    /// The barrier is broken (a dead party's pid).
    Broken(Option<u32>),
    /// Released or marked done too often.
    Value,
    /// Anything else (the server gone, a transport error, a bad reply).
    Failed(Error),
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Refusal {
        Refusal::Failed(e)
    }
}

/// A number for the calling thread, unique in its process.
fn thread_number() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static ME: u64 = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    ME.with(|m| *m)
}

/// A blocking object's request: `[op][id][pid][token][thread][wait]`.
pub(crate) fn request(obj: &ObjRef, opcode: u8, wait: Wait) -> Result<Vec<u8>> {
    let me = token::current().map_err(|e| Error::os("liveness token", e))?;
    let mut r = obj.request(opcode);
    r.extend_from_slice(&me.pid.to_le_bytes());
    r.extend_from_slice(&me.nonce.to_le_bytes());
    r.extend_from_slice(&thread_number().to_le_bytes());
    r.extend_from_slice(&wait.ns().to_le_bytes());
    Ok(r)
}

/// Sends a blocking object's request (over a connection of its own if it
/// may wait); the reply's payload.
pub(crate) fn call(obj: &ObjRef, req: &[u8], wait: Wait) -> std::result::Result<Vec<u8>, Refusal> {
    let client = obj.client()?;
    let reply = match wait {
        Wait::Try => client.call(req)?,
        _ => client.call_waiting(&obj.info, req)?,
    };
    match reply.split_first() {
        Some((&OK, rest)) => Ok(rest.to_vec()),
        Some((&ERR, [c, msg @ ..])) => Err(match *c {
            code::TIMEOUT => Refusal::Timeout,
            code::DEADLOCK => Refusal::Deadlock,
            code::VALUE => Refusal::Value,
            code::BROKEN => Refusal::Broken(std::str::from_utf8(msg).ok().and_then(|m| m.parse().ok())),
            _ => Refusal::Failed(protocol::payload(&reply).err().unwrap_or(Error::Corrupt { what: "manager reply" })),
        }),
        _ => Err(Refusal::Failed(Error::Corrupt { what: "manager reply" })),
    }
}

/// A request with no payload, sent; the reply's payload.
fn simple(obj: &ObjRef, opcode: u8, wait: Wait) -> std::result::Result<Vec<u8>, Refusal> {
    call(obj, &request(obj, opcode, wait)?, wait)
}

/// A call that cannot wait and has no refusal but failures.
fn quick(obj: &ObjRef, opcode: u8) -> Result<Vec<u8>> {
    simple(obj, opcode, Wait::Try).map_err(|r| match r {
        Refusal::Failed(e) => e,
        Refusal::Value => Error::InvalidArgument { what: "released more often than acquired" },
        Refusal::Deadlock => Error::Deadlock,
        Refusal::Timeout => Error::Timeout,
        Refusal::Broken(dead) => Error::Broken { dead },
    })
}

fn corrupt() -> Error {
    Error::Corrupt { what: "manager reply (blocking object)" }
}

/// What an acquire of a [`LockProxy`] or [`RLockProxy`] found: the lock is
/// held by the caller in both cases.
///
/// # Examples
///
/// ```
/// let mgr = shmproc::Manager::start()?;
/// let l = mgr.lock()?;
/// assert_eq!(l.acquire()?, shmproc::Acquired::Clean);
/// assert_eq!(l.release()?, ());
/// # Ok::<(), shmproc::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[must_use = "tells whether a holder died while holding the lock"]
pub enum Acquired {
    /// The lock was free (or held by this thread, for an RLock).
    Clean,
    /// The previous holder's process died while it held the lock; the
    /// server gave it to this caller. What the dead holder protected may
    /// be half-changed (as with the crate's `Mutex`'s `OwnerDied`).
    OwnerDied {
        /// The dead holder's pid.
        pid: u32,
    },
}

impl Acquired {
    /// The pid of a holder that died while holding the lock, if that is how
    /// it was taken.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shmproc::Acquired::OwnerDied { pid: 7 }.owner_died(), Some(7));
    /// assert_eq!(shmproc::Acquired::Clean.owner_died(), None);
    /// ```
    pub fn owner_died(self) -> Option<u32> {
        match self {
            Acquired::Clean => None,
            Acquired::OwnerDied { pid } => Some(pid),
        }
    }

    fn parse(p: &[u8]) -> Result<Acquired> {
        match p {
            [0, _, _, _, _] => Ok(Acquired::Clean),
            [1, pid @ ..] => {
                Ok(Acquired::OwnerDied { pid: u32::from_le_bytes(pid.try_into().map_err(|_| corrupt())?) })
            }
            _ => Err(corrupt()),
        }
    }
}

/// The acquire calls shared by the lock-like proxies.
fn acquire_wait(obj: &ObjRef, wait: Wait) -> std::result::Result<Acquired, Refusal> {
    let p = simple(obj, op::ACQUIRE, wait)?;
    Ok(Acquired::parse(&p)?)
}

fn acquire(obj: &ObjRef) -> std::result::Result<Acquired, AcquireError> {
    acquire_wait(obj, Wait::Forever).map_err(|r| match r {
        Refusal::Deadlock => AcquireError::Deadlock,
        Refusal::Failed(e) => AcquireError::Failed(e),
        _ => AcquireError::Failed(corrupt()),
    })
}

fn try_acquire(obj: &ObjRef) -> std::result::Result<Acquired, TryAcquireError> {
    acquire_wait(obj, Wait::Try).map_err(|r| match r {
        Refusal::Timeout | Refusal::Deadlock => TryAcquireError::WouldBlock,
        Refusal::Failed(e) => TryAcquireError::Failed(e),
        _ => TryAcquireError::Failed(corrupt()),
    })
}

fn acquire_deadline(obj: &ObjRef, deadline: Instant) -> std::result::Result<Acquired, AcquireTimeoutError> {
    acquire_wait(obj, Wait::Until(deadline)).map_err(|r| match r {
        Refusal::Timeout => AcquireTimeoutError::Timeout,
        Refusal::Deadlock => AcquireTimeoutError::Deadlock,
        Refusal::Failed(e) => AcquireTimeoutError::Failed(e),
        _ => AcquireTimeoutError::Failed(corrupt()),
    })
}

fn release(obj: &ObjRef) -> Result<()> {
    match simple(obj, op::RELEASE, Wait::Try) {
        Ok(_) => Ok(()),
        Err(Refusal::Failed(e)) => Err(e),
        Err(_) => Err(corrupt()),
    }
}

proxy_common! {
    /// A lock in a [`Manager`](crate::Manager)'s server (Python:
    /// `manager.Lock()`).
    ///
    /// Its owner is the calling thread of the calling process: only the owner
    /// releases it, and an owner's second `acquire` is
    /// [`AcquireError::Deadlock`] instead of a hang. If the owner's process
    /// dies, the next acquirer gets the lock with
    /// [`Acquired::OwnerDied`]. Every process holding a clone (passed as an
    /// argument, or by [`Manager::lock_named`](crate::Manager::lock_named))
    /// uses the same lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let lock = mgr.lock()?;
    /// {
    ///     let _g = lock.lock()?; // released on drop
    ///     assert!(lock.try_acquire().is_err());
    /// }
    /// let _ = lock.try_acquire()?;
    /// lock.release()?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `AcquirerProxy` of `manager.Lock()`. Differences: an owner
    /// (Python's Lock may be released by anyone), owner-died takeover.
    pub struct LockProxy,
    "shmproc::LockProxy"
}

proxy_common! {
    /// A re-entrant lock in a [`Manager`](crate::Manager)'s server (Python:
    /// `manager.RLock()`): the owning thread may acquire it again, and
    /// releases it as often.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let rl = mgr.rlock()?;
    /// let _ = rl.acquire()?;
    /// let _ = rl.acquire()?; // re-entered
    /// rl.release()?;
    /// rl.release()?;
    /// assert!(rl.release().is_err()); // not held any more
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `AcquirerProxy` of `manager.RLock()`.
    pub struct RLockProxy,
    "shmproc::RLockProxy"
}

/// Releases a [`LockProxy`], [`RLockProxy`] or [`ConditionProxy`] when
/// dropped (a release that fails, because the manager died, is ignored).
///
/// # Examples
///
/// ```
/// let mgr = shmproc::Manager::start()?;
/// let lock = mgr.lock()?;
/// let g = lock.lock()?;
/// assert_eq!(g.owner_died(), None);
/// drop(g);
/// let _ = lock.try_acquire()?;
/// # Ok::<(), shmproc::Error>(())
/// ```
#[must_use = "the lock is released when the guard is dropped"]
pub struct LockProxyGuard<'a> {
    obj: &'a ObjRef,
    acquired: Acquired,
}

impl LockProxyGuard<'_> {
    /// The pid of a holder that died holding the lock, if that is how it
    /// was taken (see [`Acquired::OwnerDied`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let rl = mgr.rlock()?;
    /// assert_eq!(rl.lock()?.owner_died(), None);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn owner_died(&self) -> Option<u32> {
        self.acquired.owner_died()
    }
}

impl Drop for LockProxyGuard<'_> {
    fn drop(&mut self) {
        let _ = release(self.obj);
    }
}

impl std::fmt::Debug for LockProxyGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockProxyGuard").field("id", &self.obj.id).field("acquired", &self.acquired).finish()
    }
}

macro_rules! lock_methods {
    ($ty:ident, $make:literal) => {
        impl $ty {
            /// Acquires, waiting as long as it takes (a dead holder's lock
            /// is taken over: [`Acquired::OwnerDied`]).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let mgr = shmproc::Manager::start()?; let l = mgr.", $make, "()?;")]
            /// let _ = l.acquire()?;
            /// l.release()?;
            /// # Ok::<(), shmproc::Error>(())
            /// ```
            ///
            /// # Errors
            /// [`AcquireError::Deadlock`] if this thread holds a (non
            /// re-entrant) lock already; [`AcquireError::Failed`] with
            /// [`Error::ManagerDead`] if the server is gone.
            ///
            /// Python: `acquire()`.
            pub fn acquire(&self) -> std::result::Result<Acquired, AcquireError> {
                acquire(&self.obj)
            }

            /// Acquires if free now (or its holder is dead).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let mgr = shmproc::Manager::start()?; let l = mgr.", $make, "()?;")]
            /// let _ = l.try_acquire()?;
            /// l.release()?;
            /// # Ok::<(), shmproc::Error>(())
            /// ```
            ///
            /// # Errors
            /// [`TryAcquireError::WouldBlock`] if another thread holds it
            /// (or this one holds a non re-entrant lock);
            /// [`TryAcquireError::Failed`] as for `acquire`.
            ///
            /// Python: `acquire(blocking=False)`.
            pub fn try_acquire(&self) -> std::result::Result<Acquired, TryAcquireError> {
                try_acquire(&self.obj)
            }

            /// Acquires, waiting at most `timeout`.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let mgr = shmproc::Manager::start()?; let l = mgr.", $make, "()?;")]
            /// let _ = l.acquire_timeout(std::time::Duration::from_secs(5))?;
            /// l.release()?;
            /// # Ok::<(), shmproc::Error>(())
            /// ```
            ///
            /// # Errors
            /// [`AcquireTimeoutError::Timeout`] if still held when the time
            /// ran out; otherwise as for `acquire`.
            ///
            /// Python: `acquire(timeout=t)`.
            pub fn acquire_timeout(&self, timeout: Duration) -> std::result::Result<Acquired, AcquireTimeoutError> {
                match Wait::after(timeout) {
                    Wait::Until(t) => acquire_deadline(&self.obj, t),
                    _ => self.acquire().map_err(|e| match e {
                        AcquireError::Deadlock => AcquireTimeoutError::Deadlock,
                        AcquireError::Failed(e) => AcquireTimeoutError::Failed(e),
                    }),
                }
            }

            /// Acquires, waiting until `deadline` at most.
            ///
            /// # Examples
            ///
            /// ```
            /// use std::time::{Duration, Instant};
            #[doc = concat!("let mgr = shmproc::Manager::start()?; let l = mgr.", $make, "()?;")]
            /// let _ = l.acquire_deadline(Instant::now() + Duration::from_secs(5))?;
            /// l.release()?;
            /// # Ok::<(), shmproc::Error>(())
            /// ```
            ///
            /// # Errors
            /// As for `acquire_timeout`.
            pub fn acquire_deadline(&self, deadline: Instant) -> std::result::Result<Acquired, AcquireTimeoutError> {
                acquire_deadline(&self.obj, deadline)
            }

            /// Releases (one level of an RLock).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let mgr = shmproc::Manager::start()?; let l = mgr.", $make, "()?;")]
            /// let _ = l.acquire()?;
            /// l.release()?;
            /// assert!(matches!(l.release(), Err(shmproc::Error::NotOwner)));
            /// # Ok::<(), shmproc::Error>(())
            /// ```
            ///
            /// # Errors
            /// [`Error::NotOwner`] if the calling thread does not hold it;
            /// [`Error::ManagerDead`] if the server is gone.
            ///
            /// Python: `release()`.
            pub fn release(&self) -> Result<()> {
                release(&self.obj)
            }

            /// Acquires and returns a guard that releases on drop.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let mgr = shmproc::Manager::start()?; let l = mgr.", $make, "()?;")]
            /// {
            ///     let _g = l.lock()?;
            /// }
            /// let _ = l.try_acquire()?;
            /// # Ok::<(), shmproc::Error>(())
            /// ```
            ///
            /// # Errors
            /// As for `acquire`.
            ///
            /// Python: `with lock:`.
            pub fn lock(&self) -> std::result::Result<LockProxyGuard<'_>, AcquireError> {
                let acquired = self.acquire()?;
                Ok(LockProxyGuard { obj: &self.obj, acquired })
            }

            /// As [`lock`](Self::lock), waiting at most `timeout`.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let mgr = shmproc::Manager::start()?; let l = mgr.", $make, "()?;")]
            /// let g = l.lock_timeout(std::time::Duration::from_secs(5))?;
            /// # drop(g);
            /// # Ok::<(), shmproc::Error>(())
            /// ```
            ///
            /// # Errors
            /// As for `acquire_timeout`.
            pub fn lock_timeout(
                &self,
                timeout: Duration,
            ) -> std::result::Result<LockProxyGuard<'_>, AcquireTimeoutError> {
                let acquired = self.acquire_timeout(timeout)?;
                Ok(LockProxyGuard { obj: &self.obj, acquired })
            }
        }
    };
}

lock_methods!(LockProxy, "lock");
lock_methods!(RLockProxy, "rlock");

proxy_common! {
    /// A semaphore in a [`Manager`](crate::Manager)'s server (Python:
    /// `manager.Semaphore(n)` and `manager.BoundedSemaphore(n)`).
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let s = mgr.semaphore(1)?;
    /// s.acquire()?;
    /// assert!(s.try_acquire().is_err());
    /// s.release()?;
    /// let b = mgr.bounded_semaphore(1)?;
    /// assert!(b.release().is_err()); // above its initial value
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `AcquirerProxy` of `manager.Semaphore(n)`. No owner: a
    /// process that dies holding a permit keeps it (as in Python).
    pub struct SemaphoreProxy,
    "shmproc::SemaphoreProxy"
}

impl SemaphoreProxy {
    /// Takes a permit, waiting as long as it takes.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let s = mgr.semaphore(2)?;
    /// s.acquire()?;
    /// s.acquire()?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`AcquireError::Failed`] with [`Error::ManagerDead`] if the server
    /// is gone (never `Deadlock`).
    ///
    /// Python: `acquire()`.
    pub fn acquire(&self) -> std::result::Result<(), AcquireError> {
        acquire(&self.obj).map(drop)
    }

    /// Takes a permit if one is free now.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let s = mgr.semaphore(0)?;
    /// assert!(matches!(s.try_acquire(), Err(shmproc::TryAcquireError::WouldBlock)));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`TryAcquireError::WouldBlock`] if none is free; `Failed` as for
    /// `acquire`.
    ///
    /// Python: `acquire(blocking=False)`.
    pub fn try_acquire(&self) -> std::result::Result<(), TryAcquireError> {
        try_acquire(&self.obj).map(drop)
    }

    /// Takes a permit, waiting at most `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let mgr = shmproc::Manager::start()?;
    /// let s = mgr.semaphore(0)?;
    /// assert!(matches!(s.acquire_timeout(Duration::from_millis(1)), Err(shmproc::AcquireTimeoutError::Timeout)));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`AcquireTimeoutError::Timeout`] if none was free in time; `Failed`
    /// as for `acquire`.
    ///
    /// Python: `acquire(timeout=t)`.
    pub fn acquire_timeout(&self, timeout: Duration) -> std::result::Result<(), AcquireTimeoutError> {
        match Wait::after(timeout) {
            Wait::Until(t) => self.acquire_deadline(t),
            _ => self.acquire().map_err(|e| match e {
                AcquireError::Failed(e) => AcquireTimeoutError::Failed(e),
                AcquireError::Deadlock => AcquireTimeoutError::Deadlock,
            }),
        }
    }

    /// Takes a permit, waiting until `deadline` at most.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let mgr = shmproc::Manager::start()?;
    /// let s = mgr.semaphore(1)?;
    /// s.acquire_deadline(Instant::now() + Duration::from_secs(5))?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`acquire_timeout`](SemaphoreProxy::acquire_timeout).
    pub fn acquire_deadline(&self, deadline: Instant) -> std::result::Result<(), AcquireTimeoutError> {
        acquire_deadline(&self.obj, deadline).map(drop)
    }

    /// Gives a permit back (anyone may).
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let s = mgr.semaphore(0)?;
    /// s.release()?;
    /// s.try_acquire()?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if a bounded semaphore would go above its
    /// initial value (Python: `ValueError`); [`Error::ManagerDead`].
    ///
    /// Python: `release()`.
    pub fn release(&self) -> Result<()> {
        quick(&self.obj, op::RELEASE).map(drop)
    }
}

proxy_common! {
    /// An event in a [`Manager`](crate::Manager)'s server (Python:
    /// `manager.Event()`).
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let e = mgr.event()?;
    /// assert!(!e.is_set()?);
    /// e.set()?;
    /// e.wait()?;
    /// assert!(e.wait_timeout(std::time::Duration::ZERO)?);
    /// e.clear()?;
    /// assert!(!e.wait_timeout(std::time::Duration::from_millis(1))?);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `EventProxy`.
    pub struct EventProxy,
    "shmproc::EventProxy"
}

impl EventProxy {
    /// Sets the flag and wakes every waiter.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let e = mgr.event()?;
    /// e.set()?;
    /// assert!(e.is_set()?);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::ManagerDead`] if the server is gone.
    ///
    /// Python: `set()`.
    pub fn set(&self) -> Result<()> {
        quick(&self.obj, op::EV_SET).map(drop)
    }

    /// Clears the flag.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let e = mgr.event()?;
    /// e.set()?;
    /// e.clear()?;
    /// assert!(!e.is_set()?);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`set`](EventProxy::set).
    ///
    /// Python: `clear()`.
    pub fn clear(&self) -> Result<()> {
        quick(&self.obj, op::EV_CLEAR).map(drop)
    }

    /// Whether the flag is set.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!shmproc::Manager::start()?.event()?.is_set()?);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`set`](EventProxy::set).
    ///
    /// Python: `is_set()`.
    pub fn is_set(&self) -> Result<bool> {
        match quick(&self.obj, op::EV_IS_SET)?.as_slice() {
            [b] => Ok(*b != 0),
            _ => Err(corrupt()),
        }
    }

    fn wait_for(&self, wait: Wait) -> Result<bool> {
        match simple(&self.obj, op::EV_WAIT, wait) {
            Ok(_) => Ok(true),
            Err(Refusal::Timeout) => Ok(false),
            Err(Refusal::Failed(e)) => Err(e),
            Err(_) => Err(corrupt()),
        }
    }

    /// Waits until the flag is set.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let e = mgr.event()?;
    /// e.set()?;
    /// e.wait()?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`set`](EventProxy::set).
    ///
    /// Python: `wait()`.
    pub fn wait(&self) -> Result<()> {
        self.wait_for(Wait::Forever).map(drop)
    }

    /// Waits at most `timeout`; whether the flag is set.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let e = mgr.event()?;
    /// assert!(!e.wait_timeout(std::time::Duration::from_millis(1))?);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`set`](EventProxy::set).
    ///
    /// Python: `wait(timeout)`.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool> {
        self.wait_for(Wait::after(timeout))
    }

    /// Waits until `deadline` at most; whether the flag is set.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let e = mgr.event()?;
    /// e.set()?;
    /// assert!(e.wait_deadline(std::time::Instant::now())?);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`set`](EventProxy::set).
    pub fn wait_deadline(&self, deadline: Instant) -> Result<bool> {
        self.wait_for(Wait::Until(deadline))
    }
}

proxy_common! {
    /// A condition variable in a [`Manager`](crate::Manager)'s server, with its
    /// lock (its own re-entrant one, or a [`LockProxy`]/[`RLockProxy`] given
    /// to [`Manager::condition_with_lock`](crate::Manager::condition_with_lock)
    /// or `condition_with_rlock`). Python: `manager.Condition()`.
    ///
    /// `wait` releases the lock (every level of an RLock), waits for a
    /// notify, and takes the lock again before it returns. A predicate cannot
    /// run in the server (it is a closure of the caller): `wait_for` runs it
    /// here, between waits, as Python's `wait_for` does; the predicate should
    /// read state that the notifier changes before notifying (a
    /// [`DictProxy`](crate::DictProxy), say).
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let c = mgr.condition()?;
    /// let g = c.lock()?;
    /// c.notify_all()?; // nobody waits: nothing happens
    /// assert!(!c.wait_timeout(std::time::Duration::from_millis(1))?); // the lock is held again
    /// drop(g);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `manager.Condition()` (its proxy). Differences: a dead
    /// holder's lock is taken over (`acquire` tells it).
    pub struct ConditionProxy,
    "shmproc::ConditionProxy"
}

lock_methods!(ConditionProxy, "condition");

impl ConditionProxy {
    fn wait_with(&self, wait: Wait) -> Result<bool> {
        match simple(&self.obj, op::CV_WAIT, wait) {
            Ok(p) => match p.as_slice() {
                [notified, _, _, _, _, _] => Ok(*notified != 0),
                _ => Err(corrupt()),
            },
            Err(Refusal::Failed(e)) => Err(e),
            Err(_) => Err(corrupt()),
        }
    }

    /// Releases the lock, waits for a notify, takes the lock again.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let c = mgr.condition()?;
    /// assert!(matches!(c.wait(), Err(shmproc::Error::NotOwner))); // lock not held
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::NotOwner`] if the calling thread does not hold the lock;
    /// [`Error::ManagerDead`] if the server is gone.
    ///
    /// Python: `wait()`.
    pub fn wait(&self) -> Result<()> {
        self.wait_with(Wait::Forever).map(drop)
    }

    /// As [`wait`](ConditionProxy::wait), waiting for the notify at most
    /// `timeout`; whether it was notified (the lock is held again either
    /// way).
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let c = mgr.condition()?;
    /// let _g = c.lock()?;
    /// assert!(!c.wait_timeout(std::time::Duration::from_millis(1))?);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`wait`](ConditionProxy::wait).
    ///
    /// Python: `wait(timeout)`.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool> {
        self.wait_with(Wait::after(timeout))
    }

    /// As [`wait_timeout`](ConditionProxy::wait_timeout) with a deadline.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let c = mgr.condition()?;
    /// let _g = c.lock()?;
    /// assert!(!c.wait_deadline(std::time::Instant::now())?);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`wait`](ConditionProxy::wait).
    pub fn wait_deadline(&self, deadline: Instant) -> Result<bool> {
        self.wait_with(Wait::Until(deadline))
    }

    /// Waits until `pred()` is true (checked first, then after each
    /// notify, here in the caller), at most until `deadline` (None:
    /// forever); the last value of `pred()`.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let c = mgr.condition()?;
    /// let _g = c.lock()?;
    /// assert!(c.wait_for(|| true, None)?);
    /// assert!(!c.wait_for(|| false, Some(std::time::Instant::now()))?);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`wait`](ConditionProxy::wait).
    ///
    /// Python: `wait_for(predicate, timeout)`.
    pub fn wait_for(&self, mut pred: impl FnMut() -> bool, deadline: Option<Instant>) -> Result<bool> {
        loop {
            if pred() {
                return Ok(true);
            }
            match deadline {
                Some(d) if Instant::now() >= d => return Ok(false),
                Some(d) => self.wait_deadline(d)?,
                None => self.wait_with(Wait::Forever)?,
            };
        }
    }

    fn notify_count(&self, n: u64) -> Result<()> {
        let mut req = request(&self.obj, op::CV_NOTIFY, Wait::Try)?;
        req.extend_from_slice(&n.to_le_bytes());
        match call(&self.obj, &req, Wait::Try) {
            Ok(_) => Ok(()),
            Err(Refusal::Failed(e)) => Err(e),
            Err(_) => Err(corrupt()),
        }
    }

    /// Wakes the longest waiting waiter, if any (the caller holds the
    /// lock).
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let c = mgr.condition()?;
    /// assert!(matches!(c.notify(), Err(shmproc::Error::NotOwner)));
    /// let _g = c.lock()?;
    /// c.notify()?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::NotOwner`] without the lock; [`Error::ManagerDead`].
    ///
    /// Python: `notify()`.
    pub fn notify(&self) -> Result<()> {
        self.notify_count(1)
    }

    /// Wakes up to `n` waiters, longest waiting first.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let c = mgr.condition()?;
    /// let _g = c.lock()?;
    /// c.notify_n(3)?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`notify`](ConditionProxy::notify).
    ///
    /// Python: `notify(n)`.
    pub fn notify_n(&self, n: usize) -> Result<()> {
        self.notify_count(n as u64)
    }

    /// Wakes every waiter.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let c = mgr.condition()?;
    /// let _g = c.lock()?;
    /// c.notify_all()?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`notify`](ConditionProxy::notify).
    ///
    /// Python: `notify_all()`.
    pub fn notify_all(&self) -> Result<()> {
        self.notify_count(u64::MAX)
    }
}

proxy_common! {
    /// A barrier in a [`Manager`](crate::Manager)'s server, with
    /// `threading.Barrier`'s semantics (Python: `manager.Barrier(n)`): the
    /// `n`th party to arrive releases all; a timeout, an
    /// [`abort`](BarrierProxy::abort) or a waiting party's death breaks it
    /// until [`reset`](BarrierProxy::reset).
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let b = mgr.barrier(1)?;
    /// assert_eq!(b.wait()?, 0); // one party: released at once
    /// b.abort()?;
    /// assert!(matches!(b.wait(), Err(shmproc::BarrierError::Broken { dead: None })));
    /// b.reset()?;
    /// assert!(!b.broken()?);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `BarrierProxy`. Differences: no action (use the crate's
    /// [`Barrier`](crate::Barrier) for one).
    pub struct BarrierProxy,
    "shmproc::BarrierProxy"
}

impl BarrierProxy {
    fn wait_with(&self, wait: Wait) -> std::result::Result<u64, Refusal> {
        let p = simple(&self.obj, op::BAR_WAIT, wait)?;
        Ok(p.as_slice().try_into().map(u64::from_le_bytes).map_err(|_| corrupt())?)
    }

    /// Waits for every party (or the barrier's own timeout, if it has
    /// one); this party's arrival index (0 for the first).
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let b = mgr.barrier(1)?;
    /// assert_eq!(b.wait()?, 0);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`BarrierError::Broken`] if the barrier is or gets broken (with the
    /// pid of a party that died waiting, if that is why; the barrier's own
    /// timeout running out is `Broken` too); `Failed` with
    /// [`Error::ManagerDead`].
    ///
    /// Python: `wait()`.
    pub fn wait(&self) -> std::result::Result<u64, BarrierError> {
        self.wait_with(Wait::Forever).map_err(|r| match r {
            Refusal::Broken(dead) => BarrierError::Broken { dead },
            Refusal::Timeout => BarrierError::Broken { dead: None },
            Refusal::Failed(e) => BarrierError::Failed(e),
            _ => BarrierError::Failed(corrupt()),
        })
    }

    /// Waits at most `timeout`; a timeout breaks the barrier for everyone.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let mgr = shmproc::Manager::start()?;
    /// let b = mgr.barrier(2)?;
    /// assert!(matches!(b.wait_timeout(Duration::from_millis(1)), Err(shmproc::BarrierTimeoutError::Timeout)));
    /// assert!(b.broken()?);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`BarrierTimeoutError::Timeout`]; otherwise as for
    /// [`wait`](BarrierProxy::wait).
    ///
    /// Python: `wait(timeout)`.
    pub fn wait_timeout(&self, timeout: Duration) -> std::result::Result<u64, BarrierTimeoutError> {
        self.wait_waiting(Wait::after(timeout))
    }

    /// As [`wait_timeout`](BarrierProxy::wait_timeout) with a deadline.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let b = mgr.barrier(1)?;
    /// assert_eq!(b.wait_deadline(std::time::Instant::now())?, 0);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`wait_timeout`](BarrierProxy::wait_timeout).
    pub fn wait_deadline(&self, deadline: Instant) -> std::result::Result<u64, BarrierTimeoutError> {
        self.wait_waiting(Wait::Until(deadline))
    }

    fn wait_waiting(&self, wait: Wait) -> std::result::Result<u64, BarrierTimeoutError> {
        self.wait_with(wait).map_err(|r| match r {
            Refusal::Broken(dead) => BarrierTimeoutError::Broken { dead },
            Refusal::Timeout => BarrierTimeoutError::Timeout,
            Refusal::Failed(e) => BarrierTimeoutError::Failed(e),
            _ => BarrierTimeoutError::Failed(corrupt()),
        })
    }

    /// Back to the empty, unbroken state; parties waiting now get
    /// `Broken`.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let b = mgr.barrier(2)?;
    /// b.abort()?;
    /// b.reset()?;
    /// assert!(!b.broken()?);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::ManagerDead`] if the server is gone.
    ///
    /// Python: `reset()`.
    pub fn reset(&self) -> Result<()> {
        quick(&self.obj, op::BAR_RESET).map(drop)
    }

    /// Breaks the barrier: waiting and later parties get `Broken`.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let b = mgr.barrier(2)?;
    /// b.abort()?;
    /// assert!(b.broken()?);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`reset`](BarrierProxy::reset).
    ///
    /// Python: `abort()`.
    pub fn abort(&self) -> Result<()> {
        quick(&self.obj, op::BAR_ABORT).map(drop)
    }

    fn info(&self) -> Result<(u64, u64, bool)> {
        let p = quick(&self.obj, op::BAR_INFO)?;
        let mut r = protocol::Reader::new(&p);
        let bad = |_| corrupt();
        Ok((r.u64().map_err(bad)?, r.u64().map_err(bad)?, r.u8().map_err(bad)? != 0))
    }

    /// How many parties the barrier waits for.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shmproc::Manager::start()?.barrier(3)?.parties()?, 3);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`reset`](BarrierProxy::reset).
    ///
    /// Python: `parties`.
    pub fn parties(&self) -> Result<u64> {
        self.info().map(|i| i.0)
    }

    /// How many parties wait now.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shmproc::Manager::start()?.barrier(3)?.n_waiting()?, 0);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`reset`](BarrierProxy::reset).
    ///
    /// Python: `n_waiting`.
    pub fn n_waiting(&self) -> Result<u64> {
        self.info().map(|i| i.1)
    }

    /// Whether the barrier is broken.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!shmproc::Manager::start()?.barrier(3)?.broken()?);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`reset`](BarrierProxy::reset).
    ///
    /// Python: `broken`.
    pub fn broken(&self) -> Result<bool> {
        self.info().map(|i| i.2)
    }
}
