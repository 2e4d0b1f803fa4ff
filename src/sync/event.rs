//! `Event`, `Condvar` and `Barrier`.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::loom::atomic::Ordering;
use crate::shm::typed::Home;
use crate::sync::error::TimedOut;
use crate::sync::error::{BarrierError, BarrierTimeoutError};
use crate::sync::guard::{CondvarGuard, LockError, WaitTimeoutError, deadline_after};
#[cfg(feature = "serde")]
use crate::sync::lock::serde_via_shared;
use crate::sync::mutex::MutexGuard;
use crate::sync::raw_event::{
    ActionFailed, BROKEN_OTHER, BarrierStop, CondvarWake, NO_TIMEOUT, RawBarrier, RawCondvar, RawEvent,
};

/// A process-shared flag that processes can wait for (Python:
/// `multiprocessing.Event`).
///
/// # Examples
///
/// ```
/// let e = shmproc::Event::new()?;
/// assert!(!e.is_set());
/// assert!(e.wait_timeout(std::time::Duration::from_millis(1)).is_err());
/// e.set();
/// e.wait_timeout(std::time::Duration::from_secs(1))?;
/// e.clear();
/// # Ok::<(), shmproc::Error>(())
/// ```
#[derive(Clone)]
pub struct Event {
    shared: Home<RawEvent>,
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Event").field("set", &self.is_set()).finish()
    }
}

impl Event {
    /// An anonymous event, clear.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!shmproc::Event::new()?.is_set());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`Segment::anonymous`](crate::Segment::anonymous).
    pub fn new() -> Result<Event> {
        Ok(Event { shared: Home::anonymous(|_| {})? })
    }

    /// A named event, clear.
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-event-{}", std::process::id());
    /// let e = shmproc::Event::create(&name)?;
    /// shmproc::Event::open(&name)?.set();
    /// assert!(e.is_set());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`Segment::create`](crate::Segment::create).
    pub fn create(name: &str) -> Result<Event> {
        Ok(Event { shared: Home::create(name, |_| {})? })
    }

    /// Opens a named event.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(shmproc::Event::open("no-such-event").is_err());
    /// ```
    ///
    /// # Errors
    /// As for [`Segment::open`](crate::Segment::open).
    pub fn open(name: &str) -> Result<Event> {
        Ok(Event { shared: Home::open(name)? })
    }

    /// Sets the flag and wakes every waiter.
    ///
    /// # Examples
    ///
    /// ```
    /// let e = shmproc::Event::new()?;
    /// e.set();
    /// assert!(e.is_set());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn set(&self) {
        self.shared.set();
    }

    /// Clears the flag.
    ///
    /// # Examples
    ///
    /// ```
    /// let e = shmproc::Event::new()?;
    /// e.set();
    /// e.clear();
    /// assert!(!e.is_set());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn clear(&self) {
        self.shared.clear();
    }

    /// Whether the flag is set.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!shmproc::Event::new()?.is_set());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn is_set(&self) -> bool {
        self.shared.is_set()
    }

    /// Waits until the flag is set.
    ///
    /// # Examples
    ///
    /// ```
    /// let e = shmproc::Event::new()?;
    /// e.set();
    /// e.wait();
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn wait(&self) {
        self.shared.wait(None);
    }

    /// Waits until the flag is set, giving up after `timeout`
    /// (`Duration::MAX`: never).
    ///
    /// # Examples
    ///
    /// ```
    /// let e = shmproc::Event::new()?;
    /// assert_eq!(e.wait_timeout(std::time::Duration::from_millis(2)), Err(shmproc::TimedOut));
    /// e.set();
    /// e.wait_timeout(std::time::Duration::from_secs(1))?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`TimedOut`] if the flag was still clear when the time ran out.
    pub fn wait_timeout(&self, timeout: Duration) -> std::result::Result<(), TimedOut> {
        if self.shared.wait(deadline_after(timeout)) { Ok(()) } else { Err(TimedOut) }
    }

    /// Waits until the flag is set, giving up at `deadline`.
    ///
    /// # Examples
    ///
    /// ```
    /// let e = shmproc::Event::new()?;
    /// e.set();
    /// e.wait_deadline(std::time::Instant::now())?; // set: returns at once
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`wait_timeout`](Event::wait_timeout).
    pub fn wait_deadline(&self, deadline: Instant) -> std::result::Result<(), TimedOut> {
        if self.shared.wait(Some(deadline)) { Ok(()) } else { Err(TimedOut) }
    }
}

#[cfg(feature = "async")]
impl Event {
    /// Waits until the flag is set without blocking the thread: the async
    /// twin of [`wait`](Event::wait). The task sleeps in no thread of the
    /// executor; the process's waiting service wakes it when the flag is
    /// set.
    ///
    /// # Examples
    ///
    /// ```
    /// let e = shmproc::Event::new()?;
    /// let setter = e.clone();
    /// let t = std::thread::spawn(move || setter.set());
    /// futures::executor::block_on(e.wait_async());
    /// assert!(e.is_set());
    /// t.join().expect("setter");
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Cancellation
    /// A future dropped before it completes changes nothing: it withdraws
    /// its announcement as a waiter (a later [`set`](Event::set) then
    /// skips the wake-up for it).
    ///
    /// # Panics
    /// If the process's waiting service cannot wait, as [`wait`](Event::wait)
    /// has no error to report it with: the kernel lacks `futex_waitv`
    /// (Linux 5.16 or later is needed), or the OS refused the service its
    /// thread.
    pub async fn wait_async(&self) {
        let source = || crate::watch::HomeWord::shared(&self.shared, |e: &RawEvent| &e.flag);
        if let Err(e) = self.shared.wait_async(source).await {
            panic!("Event::wait_async: the waiting service failed ({e}); futex_waitv needs Linux 5.16 or later");
        }
    }
}

/// A condition variable for a [`Mutex`](crate::Mutex), a
/// [`Lock`](crate::Lock) or an [`RLock`](crate::RLock) (Python:
/// `multiprocessing.Condition`; the lock is not part of the condition
/// variable: each wait is handed the guard of the lock it releases).
///
/// # Examples
///
#[cfg_attr(feature = "serde", doc = "```")]
#[cfg_attr(not(feature = "serde"), doc = "```ignore")]
/// use shmproc::{Condvar, Mutex};
///
/// fn produce((m, c): (Mutex<u32>, Condvar)) {
///     *m.lock().expect("lock") = 42;
///     c.notify_all();
/// }
///
/// let m = Mutex::new(0u32)?;
/// let c = Condvar::new()?;
/// let mut p = shmproc::Process::spawn(produce, (m.clone(), c.clone()))?;
/// let mut g = m.lock()?;
/// while *g == 0 {
///     g = c.wait(g)?;
/// }
/// assert_eq!(*g, 42);
/// drop(g);
/// p.join()?;
/// # Ok::<(), shmproc::Error>(())
/// ```
#[derive(Clone)]
pub struct Condvar {
    shared: Home<RawCondvar>,
}

impl std::fmt::Debug for Condvar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Condvar").finish_non_exhaustive()
    }
}

/// The result of [`Condvar::wait`]: the guard back, or why not.
///
/// # Examples
///
/// ```
/// use shmproc::{Condvar, Mutex, WaitResult};
/// let (m, c) = (Mutex::new(1u32)?, Condvar::new()?);
/// let g = m.lock().expect("no holder died");
/// let check = |g| -> WaitResult<'_, u32> { Ok(g) }; // a wait's result type
/// assert_eq!(*check(g).expect("locked"), 1);
/// # drop(c);
/// # Ok::<(), shmproc::Error>(())
/// ```
pub type WaitResult<'a, T> = std::result::Result<MutexGuard<'a, T>, LockError<MutexGuard<'a, T>>>;

/// The result of [`Condvar::wait_timeout`] and
/// [`wait_deadline`](Condvar::wait_deadline): the guard back, or why not
/// (a timeout hands the guard back too).
pub type WaitTimeoutResult<'a, T> = std::result::Result<MutexGuard<'a, T>, WaitTimeoutError<MutexGuard<'a, T>>>;

impl Condvar {
    /// An anonymous condition variable.
    ///
    /// # Examples
    ///
    /// ```
    /// let c = shmproc::Condvar::new()?;
    /// c.notify_one(); // nobody waits: nothing happens
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`Segment::anonymous`](crate::Segment::anonymous).
    pub fn new() -> Result<Condvar> {
        Ok(Condvar { shared: Home::anonymous(|_| {})? })
    }

    /// A named condition variable.
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-condvar-{}", std::process::id());
    /// let c = shmproc::Condvar::create(&name)?;
    /// assert!(shmproc::Condvar::open(&name).is_ok());
    /// # drop(c);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`Segment::create`](crate::Segment::create).
    pub fn create(name: &str) -> Result<Condvar> {
        Ok(Condvar { shared: Home::create(name, |_| {})? })
    }

    /// Opens a named condition variable.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(shmproc::Condvar::open("no-such-condvar").is_err());
    /// ```
    ///
    /// # Errors
    /// As for [`Segment::open`](crate::Segment::open).
    pub fn open(name: &str) -> Result<Condvar> {
        Ok(Condvar { shared: Home::open(name)? })
    }

    /// Unlocks `guard`'s lock, waits for a notify, and locks it again.
    ///
    /// The guard is a [`MutexGuard`] or a [`LockGuard`](crate::LockGuard)
    /// (see [`CondvarGuard`]). A wait ends only when a notify chose it
    /// ([`notify_one`](Condvar::notify_one) ends one wait, `notify(n)` up
    /// to `n`), but the condition may have changed again by the time the
    /// lock is back: wait in a loop over your condition, or use
    /// [`wait_while`](Condvar::wait_while).
    ///
    /// Waiting unlocks the mutex, so a recovery guard (from
    /// [`LockError::OwnerDied`]) must be marked consistent first; waiting
    /// with one makes the mutex unrecoverable, as with POSIX robust mutexes.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmproc::{Condvar, Mutex};
    /// let (ready, cv) = (Mutex::new(0u32)?, Condvar::new()?);
    /// let (r2, cv2) = (ready.clone(), cv.clone());
    /// let t = std::thread::spawn(move || {
    ///     *r2.lock().expect("no holder died") = 1;
    ///     cv2.notify_all();
    /// });
    /// let mut g = ready.lock().expect("no holder died");
    /// while *g == 0 {
    ///     g = cv.wait(g).expect("no holder died");
    /// }
    /// # drop(g);
    /// t.join().expect("the notifier");
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// Those of [`Mutex::lock`](crate::Mutex::lock) when locking again:
    /// [`LockError::OwnerDied`] if the mutex's holder died meanwhile (a
    /// [`Lock`](crate::Lock) is simply taken over); [`LockError::Os`] if
    /// the relock failed otherwise.
    ///
    /// Python: `Condition.wait()`; Python's `False` on a timeout is
    /// [`wait_timeout`](Condvar::wait_timeout)'s error.
    pub fn wait<G: CondvarGuard>(&self, guard: G) -> std::result::Result<G, LockError<G>> {
        self.wait_until(guard, None).1
    }

    /// Like [`wait`](Condvar::wait), giving up after `timeout`:
    /// [`WaitTimeoutError::Timeout`] then, with the guard (locked again).
    /// The timeout bounds the wait for a notify; locking the mutex again
    /// afterwards waits as long as its holder keeps it (never for a dead
    /// holder).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmproc::WaitTimeoutError;
    /// let m = shmproc::Mutex::new(0u8)?;
    /// let c = shmproc::Condvar::new()?;
    /// let r = c.wait_timeout(m.lock()?, std::time::Duration::from_millis(5));
    /// let Err(WaitTimeoutError::Timeout(g)) = r else { panic!("nobody notified") };
    /// drop(g);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`WaitTimeoutError::Timeout`] (with the guard), and the cases of
    /// [`wait`](Condvar::wait).
    pub fn wait_timeout<G: CondvarGuard>(
        &self,
        guard: G,
        timeout: Duration,
    ) -> std::result::Result<G, WaitTimeoutError<G>> {
        self.timed_wait(guard, deadline_after(timeout))
    }

    /// Like [`wait_timeout`](Condvar::wait_timeout), giving up at
    /// `deadline`.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = shmproc::Mutex::new(0u8)?;
    /// let c = shmproc::Condvar::new()?;
    /// let past = std::time::Instant::now();
    /// assert!(c.wait_deadline(m.lock()?, past).is_err()); // timed out at once
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`wait_timeout`](Condvar::wait_timeout).
    pub fn wait_deadline<G: CondvarGuard>(
        &self,
        guard: G,
        deadline: Instant,
    ) -> std::result::Result<G, WaitTimeoutError<G>> {
        self.timed_wait(guard, Some(deadline))
    }

    /// Waits while `condition` holds: returns at once if it is false, else
    /// waits for notifies until it is false, looking at it under the lock
    /// after each (std's name).
    ///
    /// Python's `wait_for(predicate)` waits *until* its predicate is true:
    /// `condition` here is its negation.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmproc::{Condvar, Mutex};
    /// let (m, c) = (Mutex::new(0u32)?, Condvar::new()?);
    /// let (m2, c2) = (m.clone(), c.clone());
    /// let t = std::thread::spawn(move || {
    ///     *m2.lock().expect("no holder died") = 3;
    ///     c2.notify_all();
    /// });
    /// let g = c.wait_while(m.lock()?, |n| *n == 0)?;
    /// assert_eq!(*g, 3);
    /// # drop(g);
    /// t.join().expect("the notifier");
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`wait`](Condvar::wait).
    #[doc(alias = "wait_for")]
    pub fn wait_while<G: CondvarGuard>(
        &self,
        mut guard: G,
        mut condition: impl FnMut(&mut G::Data) -> bool,
    ) -> std::result::Result<G, LockError<G>> {
        while condition(guard.data_mut()) {
            guard = self.wait(guard)?;
        }
        Ok(guard)
    }

    /// Like [`wait_while`](Condvar::wait_while), giving up after
    /// `timeout`: [`WaitTimeoutError::Timeout`] (with the guard) if
    /// `condition` still holds then. It is looked at once more after the
    /// time ran out, as Python's `wait_for(predicate, timeout)` does (whose
    /// `False` is this error).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmproc::WaitTimeoutError;
    /// let (m, c) = (shmproc::Mutex::new(0u32)?, shmproc::Condvar::new()?);
    /// let r = c.wait_while_timeout(m.lock()?, std::time::Duration::from_millis(5), |n| *n == 0);
    /// let Err(WaitTimeoutError::Timeout(g)) = r else { panic!("nobody changed it") };
    /// assert_eq!(*g, 0);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`WaitTimeoutError::Timeout`] (with the guard), and the cases of
    /// [`wait`](Condvar::wait).
    #[doc(alias = "wait_for")]
    pub fn wait_while_timeout<G: CondvarGuard>(
        &self,
        guard: G,
        timeout: Duration,
        condition: impl FnMut(&mut G::Data) -> bool,
    ) -> std::result::Result<G, WaitTimeoutError<G>> {
        self.timed_wait_while(guard, deadline_after(timeout), condition)
    }

    /// Like [`wait_while_timeout`](Condvar::wait_while_timeout), giving up
    /// at `deadline`.
    ///
    /// # Examples
    ///
    /// ```
    /// let (m, c) = (shmproc::Mutex::new(1u32)?, shmproc::Condvar::new()?);
    /// let past = std::time::Instant::now();
    /// let g = c.wait_while_deadline(m.lock()?, past, |n| *n == 0)?; // false already
    /// assert_eq!(*g, 1);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`wait_while_timeout`](Condvar::wait_while_timeout).
    #[doc(alias = "wait_for")]
    pub fn wait_while_deadline<G: CondvarGuard>(
        &self,
        guard: G,
        deadline: Instant,
        condition: impl FnMut(&mut G::Data) -> bool,
    ) -> std::result::Result<G, WaitTimeoutError<G>> {
        self.timed_wait_while(guard, Some(deadline), condition)
    }

    fn timed_wait_while<G: CondvarGuard>(
        &self,
        mut guard: G,
        deadline: Option<Instant>,
        mut condition: impl FnMut(&mut G::Data) -> bool,
    ) -> std::result::Result<G, WaitTimeoutError<G>> {
        while condition(guard.data_mut()) {
            guard = match self.timed_wait(guard, deadline) {
                Ok(g) => g,
                Err(WaitTimeoutError::Timeout(mut g)) => {
                    // Once more after the time ran out (Python's last look).
                    return if condition(g.data_mut()) { Err(WaitTimeoutError::Timeout(g)) } else { Ok(g) };
                }
                Err(e) => return Err(e),
            };
        }
        Ok(guard)
    }

    fn timed_wait<G: CondvarGuard>(
        &self,
        guard: G,
        deadline: Option<Instant>,
    ) -> std::result::Result<G, WaitTimeoutError<G>> {
        match self.wait_until(guard, deadline) {
            (CondvarWake::TimedOut, Ok(g)) => Err(WaitTimeoutError::Timeout(g)),
            (_, relocked) => relocked.map_err(|e| match e {
                LockError::OwnerDied(g) => WaitTimeoutError::OwnerDied(g),
                LockError::NotRecoverable => WaitTimeoutError::NotRecoverable,
                // Relocking after a wait: this thread gave the lock up.
                LockError::Deadlock => {
                    WaitTimeoutError::Os(std::io::Error::other("relock found the lock held by this thread"))
                }
                LockError::Os(e) => WaitTimeoutError::Os(e),
            }),
        }
    }

    /// Counts the caller as waiting (lock held), then sleeps until notified
    /// or `deadline`, then locks again: how the sleep ended, and the
    /// relock's outcome.
    fn wait_until<G: CondvarGuard>(
        &self,
        guard: G,
        deadline: Option<Instant>,
    ) -> (CondvarWake, std::result::Result<G, LockError<G>>) {
        self.shared.prepare();
        guard.unlocked(|| self.shared.sleep(deadline))
    }

    /// Wakes one waiter: exactly one wait ends, if any is waiting.
    ///
    /// # Examples
    ///
    /// ```
    /// shmproc::Condvar::new()?.notify_one(); // nobody waits: nothing happens
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `notify()` (that is, `notify(1)`).
    pub fn notify_one(&self) {
        self.notify(1);
    }

    /// Wakes every waiter counted now (each wait that began, under the
    /// lock, before this call).
    ///
    /// # Examples
    ///
    /// ```
    /// shmproc::Condvar::new()?.notify_all();
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `notify_all()`.
    pub fn notify_all(&self) {
        self.notify(u32::MAX);
    }

    /// Wakes up to `n` waiters: as many waits end as there are waiters, up
    /// to `n`. A waiter that begins its wait after this call may take one
    /// of these wake-ups in place of an earlier waiter (the number woken is
    /// exact, their order is not promised; Python wakes the earliest).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmproc::{Condvar, Mutex};
    /// let (m, c) = (Mutex::new(0u32)?, Condvar::new()?);
    /// let waiters: Vec<_> = (0..3)
    ///     .map(|_| {
    ///         let (m, c) = (m.clone(), c.clone());
    ///         std::thread::spawn(move || {
    ///             let mut g = m.lock().expect("no holder died");
    ///             *g += 1; // "I wait": counted under the lock, before the wait
    ///             let mut g = c.wait(g).expect("no holder died");
    ///             *g += 100; // woken
    ///         })
    ///     })
    ///     .collect();
    /// while *m.lock()? < 3 {
    ///     std::thread::yield_now();
    /// }
    /// c.notify(2);
    /// while *m.lock()? < 203 {
    ///     std::thread::yield_now();
    /// }
    /// c.notify(1);
    /// for w in waiters {
    ///     w.join().expect("waiter");
    /// }
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: `notify(n)`.
    pub fn notify(&self, n: u32) {
        self.shared.notify(n);
    }
}

/// A process-shared barrier for `parties` participants (Python:
/// `multiprocessing.Barrier`).
///
/// Every process that receives the barrier (as a child's argument, or with
/// [`open`](Barrier::open)) or waits on it is registered; if a registered
/// process dies while others wait, they get [`Error::Broken`] naming its pid
/// instead of waiting forever. A broken barrier stays broken until
/// [`reset`](Barrier::reset).
///
/// # Examples
///
#[cfg_attr(feature = "serde", doc = "```")]
#[cfg_attr(not(feature = "serde"), doc = "```ignore")]
/// fn party(b: shmproc::Barrier) -> usize {
///     b.wait().expect("barrier")
/// }
///
/// let b = shmproc::Barrier::new(3)?;
/// let mut kids: Vec<_> = (0..2).map(|_| shmproc::Process::spawn(party, b.clone())).collect::<Result<_, _>>()?;
/// let mine = b.wait()?;
/// let mut seen = vec![mine];
/// for k in &mut kids {
///     seen.push(k.join()?);
/// }
/// seen.sort();
/// assert_eq!(seen, [0, 1, 2]);
/// # Ok::<(), shmproc::Error>(())
/// ```
#[derive(Clone)]
pub struct Barrier {
    shared: Home<RawBarrier>,
}

impl std::fmt::Debug for Barrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Barrier").field("parties", &self.parties()).field("waiting", &self.n_waiting()).finish()
    }
}

impl Barrier {
    fn wrap(shared: Home<RawBarrier>) -> Result<Barrier> {
        let b = Barrier { shared };
        b.register()?;
        Ok(b)
    }

    /// An anonymous barrier for `parties` participants (no action, no
    /// default timeout: see [`builder`](Barrier::builder)).
    ///
    /// # Examples
    ///
    /// ```
    /// let b = shmproc::Barrier::new(1)?;
    /// assert_eq!(b.wait()?, 0); // one party: passes at once
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for 0 parties; as for
    /// [`Segment::anonymous`](crate::Segment::anonymous).
    pub fn new(parties: u32) -> Result<Barrier> {
        Barrier::builder(parties).build()
    }

    /// A named barrier.
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-barrier-{}", std::process::id());
    /// let b = shmproc::Barrier::create(&name, 2)?;
    /// assert_eq!(shmproc::Barrier::open(&name)?.parties(), 2);
    /// # drop(b);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`new`](Barrier::new) and [`Segment::create`](crate::Segment::create).
    pub fn create(name: &str, parties: u32) -> Result<Barrier> {
        Barrier::builder(parties).create(name)
    }

    /// A builder for a barrier with an action or a default timeout
    /// (Python: `Barrier(parties, action=None, timeout=None)`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let b = shmproc::Barrier::builder(2).timeout(Duration::from_millis(5)).build()?;
    /// assert_eq!(b.timeout(), Some(Duration::from_millis(5)));
    /// assert!(b.wait().is_err()); // the other party never came: broken
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn builder(parties: u32) -> BarrierBuilder {
        BarrierBuilder { parties, timeout: None, action: None }
    }

    /// Opens a named barrier (and registers this process with it).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(shmproc::Barrier::open("no-such-barrier").is_err());
    /// ```
    ///
    /// # Errors
    /// As for [`Segment::open`](crate::Segment::open).
    pub fn open(name: &str) -> Result<Barrier> {
        Barrier::wrap(Home::open(name)?)
    }

    fn register(&self) -> Result<()> {
        self.shared.register().map_err(|e| Error::os("liveness token", e))
    }

    /// Waits until all parties have called `wait`; returns this party's
    /// arrival index (0 to parties - 1; Python returns the same). The last
    /// party to arrive runs the barrier's action, if it has one, before any
    /// party is released. With a default timeout (see
    /// [`builder`](Barrier::builder)), a wait that outlasts it breaks the
    /// barrier, as [`wait_timeout`](Barrier::wait_timeout) does.
    ///
    /// # Examples
    ///
    /// ```
    /// let b = shmproc::Barrier::new(2)?;
    /// let b2 = b.clone();
    /// let t = std::thread::spawn(move || b2.wait());
    /// let mine = b.wait()?;
    /// let theirs = t.join().expect("the other party")?;
    /// assert_eq!(mine + theirs, 1); // arrival indices 0 and 1
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`BarrierError::Broken`] if the barrier is or becomes broken (also
    /// when this party's default timeout ran out: Python raises
    /// `BrokenBarrierError` then too); [`BarrierError::ActionPanicked`] if
    /// this party ran the action and it panicked; [`BarrierError::Failed`]
    /// if no liveness token can be made, or this process cannot run the
    /// action.
    pub fn wait(&self) -> std::result::Result<usize, BarrierError> {
        self.register().map_err(BarrierError::Failed)?;
        let deadline = self.timeout().and_then(deadline_after);
        self.shared.wait(deadline, || run_action(&self.shared)).map_err(untimed_barrier_error)
    }

    /// Like [`wait`](Barrier::wait), breaking the barrier if `timeout`
    /// passes (as Python does); `timeout` replaces the default timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// let b = shmproc::Barrier::new(2)?;
    /// assert!(b.wait_timeout(std::time::Duration::from_millis(5)).is_err());
    /// assert!(b.is_broken());
    /// b.reset();
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`BarrierTimeoutError::Timeout`] if this party's time ran out (the
    /// barrier is then broken for everyone, as in Python), and the cases of
    /// [`wait`](Barrier::wait).
    pub fn wait_timeout(&self, timeout: Duration) -> std::result::Result<usize, BarrierTimeoutError> {
        self.timed_wait(deadline_after(timeout))
    }

    /// Like [`wait_timeout`](Barrier::wait_timeout), giving up at
    /// `deadline`.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmproc::BarrierTimeoutError;
    /// let b = shmproc::Barrier::new(2)?;
    /// let now = std::time::Instant::now();
    /// assert!(matches!(b.wait_deadline(now), Err(BarrierTimeoutError::Timeout)));
    /// assert!(b.is_broken());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`wait_timeout`](Barrier::wait_timeout).
    pub fn wait_deadline(&self, deadline: Instant) -> std::result::Result<usize, BarrierTimeoutError> {
        self.timed_wait(Some(deadline))
    }

    fn timed_wait(&self, deadline: Option<Instant>) -> std::result::Result<usize, BarrierTimeoutError> {
        self.register().map_err(BarrierTimeoutError::Failed)?;
        self.shared.wait(deadline, || run_action(&self.shared)).map_err(|stop| match stop {
            BarrierStop::TimedOut => BarrierTimeoutError::Timeout,
            BarrierStop::Broken(dead) => BarrierTimeoutError::Broken { dead },
            BarrierStop::Action(ActionFailed::Panicked(message)) => BarrierTimeoutError::ActionPanicked { message },
            BarrierStop::Action(ActionFailed::Unresolved(e)) => {
                BarrierTimeoutError::Failed(Error::os("barrier action", e))
            }
        })
    }

    /// The default timeout of [`wait`](Barrier::wait), if any (Python:
    /// the `timeout` given to `Barrier`).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shmproc::Barrier::new(2)?.timeout(), None);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn timeout(&self) -> Option<Duration> {
        match self.shared.timeout_ns.load(Ordering::Relaxed) {
            NO_TIMEOUT => None,
            ns => Some(Duration::from_nanos(ns)),
        }
    }

    /// Puts a broken barrier back in service (Python: `reset()`); parties
    /// waiting now get [`Error::Broken`]. Dead members are forgotten.
    ///
    /// # Examples
    ///
    /// ```
    /// let b = shmproc::Barrier::new(2)?;
    /// b.abort();
    /// b.reset();
    /// assert!(!b.is_broken());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Breaks the barrier (Python: `abort()`).
    ///
    /// # Examples
    ///
    /// ```
    /// let b = shmproc::Barrier::new(2)?;
    /// b.abort();
    /// assert!(matches!(b.wait(), Err(shmproc::BarrierError::Broken { dead: None })));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn abort(&self) {
        self.shared.break_with(BROKEN_OTHER);
    }

    /// The number of parties.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shmproc::Barrier::new(4)?.parties(), 4);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn parties(&self) -> u32 {
        self.shared.parties.load(Ordering::Relaxed)
    }

    /// How many parties wait now (Python: `n_waiting`).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shmproc::Barrier::new(4)?.n_waiting(), 0);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn n_waiting(&self) -> u32 {
        self.shared.arrived.load(Ordering::Relaxed)
    }

    /// Whether the barrier is broken.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!shmproc::Barrier::new(2)?.is_broken());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn is_broken(&self) -> bool {
        self.shared.broken_by().is_some()
    }
}

/// Builds a [`Barrier`] with an action and a default timeout
/// ([`Barrier::builder`]; Python: `Barrier(parties, action, timeout)`).
///
/// # Examples
///
#[cfg_attr(feature = "serde", doc = "```")]
#[cfg_attr(not(feature = "serde"), doc = "```ignore")]
/// use std::sync::atomic::{AtomicU32, Ordering};
/// static TRIPS: AtomicU32 = AtomicU32::new(0);
/// fn count_trip() {
///     TRIPS.fetch_add(1, Ordering::Relaxed);
/// }
///
/// let b = shmproc::Barrier::builder(1).action(count_trip).build()?;
/// b.wait()?;
/// b.wait()?;
/// assert_eq!(TRIPS.load(Ordering::Relaxed), 2); // once per trip
/// # Ok::<(), shmproc::Error>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder makes nothing until `build` or `create`"]
pub struct BarrierBuilder {
    parties: u32,
    timeout: Option<Duration>,
    action: Option<fn()>,
}

impl BarrierBuilder {
    /// The action: run by exactly one party, the last to arrive, after all
    /// arrived and before any is released, once per trip. A plain `fn()`
    /// of the executable, so that every process of the same executable
    /// can run it (a child spawned with the barrier runs the same action;
    /// it is named by its place in the executable and checked in the
    /// process that runs it). If it panics, the barrier breaks: that party
    /// gets [`BarrierError::ActionPanicked`], the others
    /// [`BarrierError::Broken`].
    ///
    /// # Examples
    ///
    /// ```
    /// fn hello() {}
    /// let b = shmproc::Barrier::builder(1).action(hello).build()?;
    /// b.wait()?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    #[cfg(feature = "serde")]
    pub fn action(mut self, action: fn()) -> Self {
        self.action = Some(action);
        self
    }

    /// The default timeout of [`Barrier::wait`] (`Duration::MAX`: none).
    ///
    /// # Examples
    ///
    /// ```
    /// let b = shmproc::Barrier::builder(3).timeout(std::time::Duration::from_secs(9)).build()?;
    /// assert_eq!(b.timeout(), Some(std::time::Duration::from_secs(9)));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// An anonymous barrier, to share with children.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(shmproc::Barrier::builder(2).build()?.parties(), 2);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for 0 parties, or an action that is not
    /// a function of the executable (one of a shared library); as for
    /// [`Segment::anonymous`](crate::Segment::anonymous).
    pub fn build(self) -> Result<Barrier> {
        let init = self.init()?;
        Barrier::wrap(Home::anonymous(init)?)
    }

    /// A named barrier, that unrelated processes can
    /// [`open`](Barrier::open).
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-barrier-builder-{}", std::process::id());
    /// let b = shmproc::Barrier::builder(2).timeout(std::time::Duration::from_secs(5)).create(&name)?;
    /// assert_eq!(shmproc::Barrier::open(&name)?.timeout(), b.timeout());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`build`](BarrierBuilder::build) and
    /// [`Segment::create`](crate::Segment::create).
    pub fn create(self, name: &str) -> Result<Barrier> {
        let init = self.init()?;
        Barrier::wrap(Home::create(name, init)?)
    }

    /// Checks the arguments; the creator's initialisation of the state.
    fn init(self) -> Result<impl FnOnce(&RawBarrier)> {
        let parties = self.parties;
        if parties == 0 {
            return Err(Error::InvalidArgument { what: "a barrier needs at least 1 party" });
        }
        let timeout_ns = match self.timeout {
            None | Some(Duration::MAX) => NO_TIMEOUT,
            Some(d) => u64::try_from(d.as_nanos()).unwrap_or(NO_TIMEOUT - 1).min(NO_TIMEOUT - 1),
        };
        // Without `serde` no action can be given (`action` needs it).
        #[cfg(feature = "serde")]
        let action = match self.action {
            None => None,
            Some(f) => Some(crate::shm::fnref::FnRef::of(f).map_err(|e| match e.kind() {
                std::io::ErrorKind::InvalidInput => Error::InvalidArgument {
                    what: "a barrier's action must be a function of the executable, not of a shared library",
                },
                _ => Error::os("stat /proc/self/exe", e),
            })?),
        };
        #[cfg(not(feature = "serde"))]
        let _ = self.action;
        Ok(move |b: &RawBarrier| {
            b.parties.store(parties, Ordering::Relaxed);
            b.timeout_ns.store(timeout_ns, Ordering::Relaxed);
            #[cfg(feature = "serde")]
            if let Some(f) = action {
                for (word, w) in b.action.iter().zip(f.to_words()) {
                    word.store(w, Ordering::Relaxed);
                }
                b.has_action.store(1, Ordering::Relaxed);
            }
        })
    }
}

/// Why a [`Barrier::wait`] (or `wait_async`) passed no index. A deadline
/// there is only the default timeout, which Python reports as a broken
/// barrier too (without one, only a broken barrier ends the wait early).
fn untimed_barrier_error(stop: BarrierStop) -> BarrierError {
    match stop {
        BarrierStop::Broken(dead) => BarrierError::Broken { dead },
        BarrierStop::TimedOut => BarrierError::Broken { dead: None },
        BarrierStop::Action(ActionFailed::Panicked(message)) => BarrierError::ActionPanicked { message },
        BarrierStop::Action(ActionFailed::Unresolved(e)) => BarrierError::Failed(Error::os("barrier action", e)),
    }
}

/// Runs `b`'s action, if it has one, in this process: found by its words
/// (checked against this executable), called with panics caught.
fn run_action(b: &RawBarrier) -> std::result::Result<(), ActionFailed> {
    // Relaxed: written by the creator before the segment was published
    // (the open's handshake orders it).
    if b.has_action.load(Ordering::Relaxed) == 0 {
        return Ok(());
    }
    #[cfg(feature = "serde")]
    {
        let words = std::array::from_fn(|i| b.action[i].load(Ordering::Relaxed));
        let f: fn() = crate::shm::fnref::FnRef::from_words(words).resolve().map_err(ActionFailed::Unresolved)?;
        std::panic::catch_unwind(f).map_err(|p| ActionFailed::Panicked(crate::error::panic_message(p.as_ref())))
    }
    #[cfg(not(feature = "serde"))]
    Err(ActionFailed::Unresolved(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "this build cannot run barrier actions (the `serde` feature is off)",
    )))
}

#[cfg(feature = "async")]
impl Barrier {
    /// Waits until all parties have arrived without blocking the thread:
    /// the async twin of [`wait`](Barrier::wait), with the same result (the
    /// arrival index; the last party runs the action). A party that dies
    /// while others await breaks the barrier for them, as for blocking
    /// waiters. The default timeout does not apply (wrap the future in
    /// your runtime's timeout: dropping it breaks the barrier, as a
    /// timeout does).
    ///
    /// # Examples
    ///
    /// ```
    /// let b = shmproc::Barrier::new(2)?;
    /// let other = b.clone();
    /// let t = std::thread::spawn(move || other.wait());
    /// let mine = futures::executor::block_on(b.wait_async())?;
    /// let theirs = t.join().expect("the other party")?;
    /// assert_eq!(mine + theirs, 1); // arrival indices 0 and 1
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Cancellation
    /// The party arrives at the future's first poll. A future dropped
    /// after that but before the barrier tripped breaks the barrier for
    /// everyone, as a timeout of [`wait_timeout`](Barrier::wait_timeout)
    /// does (and as in Python, where a party that leaves breaks it): the
    /// others get [`BarrierError::Broken`] instead of waiting for an
    /// arrival that was withdrawn. A future dropped before its first poll
    /// changes nothing.
    ///
    /// # Errors
    /// As for [`wait`](Barrier::wait); [`BarrierError::Failed`] also if
    /// the process's waiting service cannot wait (the kernel lacks
    /// `futex_waitv`, Linux 5.16 or later is needed; or the OS refused the
    /// service its thread): the barrier is then broken, as this party
    /// leaves.
    pub async fn wait_async(&self) -> std::result::Result<usize, BarrierError> {
        self.register().map_err(BarrierError::Failed)?;
        let source = || crate::watch::HomeWord::shared(&self.shared, |b: &RawBarrier| &*b.generation);
        match self.shared.wait_async(source, || run_action(&self.shared)).await {
            Ok(r) => r.map_err(untimed_barrier_error),
            Err(e) => Err(BarrierError::Failed(Error::os("futex_waitv", e))),
        }
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Barrier {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.shared.serialize(s)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Barrier {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        Barrier::wrap(Home::deserialize(d)?).map_err(D::Error::custom)
    }
}

#[cfg(feature = "serde")]
serde_via_shared!(Event);
#[cfg(feature = "serde")]
serde_via_shared!(Condvar);

#[cfg(all(feature = "serde", feature = "async"))]
impl Event {
    /// The shared state, for `connection::wait`.
    pub(crate) fn raw_home(&self) -> &Home<RawEvent> {
        &self.shared
    }
}
