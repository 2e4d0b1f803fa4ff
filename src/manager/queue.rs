//! `QueueProxy<T>`: a queue (plain or joinable) that lives in the
//! manager's server, whose `put` and `get` may wait there (see `sync.rs`
//! for how a waiting call travels).

use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::channel::error::{GetError, GetTimeoutError, PutError, PutTimeoutError, TryGetError, TryPutError};
use crate::codec;
use crate::error::{Error, Result};
use crate::manager::ObjRef;
use crate::manager::protocol::op;
use crate::manager::sync::{self, Refusal, Wait};

proxy_common! {
    /// A proxy for a queue in a [`Manager`](crate::Manager)'s server (Python:
    /// `manager.Queue(maxsize)` and `manager.JoinableQueue(maxsize)`).
    ///
    /// Items travel encoded (serde + postcard); the server keeps the bytes. A
    /// `put` or `get` that waits holds up no other thread of the process: it
    /// travels over a connection of its own. A get in one process and a put
    /// in another meet in the server, so producers and consumers may be any
    /// processes holding a clone (passed as an argument, or by
    /// [`Manager::queue_named`](crate::Manager::queue_named)).
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let q = mgr.queue::<String>(2)?;
    /// q.put("a".into())?;
    /// q.put("b".into())?;
    /// assert!(q.is_full()?);
    /// assert!(q.try_put("c".into()).is_err()); // the item comes back in the error
    /// assert_eq!(q.get()?, "a");
    /// assert_eq!(q.qsize()?, 1);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: the `AutoProxy` of `manager.Queue()`. Differences: typed; an
    /// item a `get` took is lost if the getter's process dies before the reply
    /// reaches it (Python loses it too).
    pub struct QueueProxy<T>,
    "shmproc::QueueProxy"
}

/// A put's outcome before the item is given back.
fn put_raw(obj: &ObjRef, bytes: &[u8], wait: Wait) -> std::result::Result<(), Refusal> {
    let mut req = sync::request(obj, op::Q_PUT, wait)?;
    req.extend_from_slice(bytes);
    sync::call(obj, &req, wait).map(drop)
}

fn failed(r: Refusal) -> Error {
    match r {
        Refusal::Failed(e) => e,
        Refusal::Value => Error::InvalidArgument { what: "task_done called more times than items were put" },
        Refusal::Timeout => Error::Timeout,
        Refusal::Deadlock => Error::Deadlock,
        Refusal::Broken(dead) => Error::Broken { dead },
    }
}

impl<T> QueueProxy<T>
where
    T: Serialize + DeserializeOwned + 'static,
{
    fn get_raw(&self, wait: Wait) -> std::result::Result<T, Refusal> {
        let p = sync::call(&self.obj, &sync::request(&self.obj, op::Q_GET, wait)?, wait)?;
        Ok(codec::decode(&p)?)
    }

    /// Puts `item`, waiting for room as long as it takes.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let q = mgr.queue::<u32>(0)?; // unbounded
    /// q.put(7)?;
    /// assert_eq!(q.get()?, 7);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`PutError::Failed`] with the item and [`Error::ManagerDead`] if the
    /// server is gone, or [`Error::Codec`] if it cannot be encoded.
    ///
    /// Python: `put(item)`.
    pub fn put(&self, item: T) -> std::result::Result<(), PutError<T>> {
        let bytes = match codec::encode(&item) {
            Ok(b) => b,
            Err(e) => return Err(PutError::Failed(item, e)),
        };
        put_raw(&self.obj, &bytes, Wait::Forever).map_err(|r| PutError::Failed(item, failed(r)))
    }

    /// Puts `item` if there is room now.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmproc::TryPutError;
    /// let mgr = shmproc::Manager::start()?;
    /// let q = mgr.queue::<u32>(1)?;
    /// q.try_put(1)?;
    /// assert!(matches!(q.try_put(2), Err(TryPutError::Full(2))));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`TryPutError::Full`] with the item if there is no room;
    /// `Failed` as for [`put`](QueueProxy::put).
    ///
    /// Python: `put_nowait(item)`.
    pub fn try_put(&self, item: T) -> std::result::Result<(), TryPutError<T>> {
        let bytes = match codec::encode(&item) {
            Ok(b) => b,
            Err(e) => return Err(TryPutError::Failed(item, e)),
        };
        put_raw(&self.obj, &bytes, Wait::Try).map_err(|r| match r {
            Refusal::Timeout => TryPutError::Full(item),
            r => TryPutError::Failed(item, failed(r)),
        })
    }

    /// Puts `item`, waiting for room at most `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmproc::PutTimeoutError;
    /// use std::time::Duration;
    /// let mgr = shmproc::Manager::start()?;
    /// let q = mgr.queue::<u32>(1)?;
    /// q.put_timeout(1, Duration::from_secs(5))?;
    /// assert!(matches!(q.put_timeout(2, Duration::from_millis(1)), Err(PutTimeoutError::Timeout(2))));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`PutTimeoutError::Timeout`] with the item if there was no room in
    /// time; `Failed` as for [`put`](QueueProxy::put).
    ///
    /// Python: `put(item, timeout=t)`.
    pub fn put_timeout(&self, item: T, timeout: Duration) -> std::result::Result<(), PutTimeoutError<T>> {
        self.put_waiting(item, Wait::after(timeout))
    }

    /// Puts `item`, waiting for room until `deadline` at most.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let q = mgr.queue::<u32>(1)?;
    /// q.put_deadline(1, std::time::Instant::now())?; // room now: no wait needed
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`put_timeout`](QueueProxy::put_timeout).
    pub fn put_deadline(&self, item: T, deadline: Instant) -> std::result::Result<(), PutTimeoutError<T>> {
        self.put_waiting(item, Wait::Until(deadline))
    }

    fn put_waiting(&self, item: T, wait: Wait) -> std::result::Result<(), PutTimeoutError<T>> {
        let bytes = match codec::encode(&item) {
            Ok(b) => b,
            Err(e) => return Err(PutTimeoutError::Failed(item, e)),
        };
        put_raw(&self.obj, &bytes, wait).map_err(|r| match r {
            Refusal::Timeout => PutTimeoutError::Timeout(item),
            r => PutTimeoutError::Failed(item, failed(r)),
        })
    }

    /// Takes the oldest item, waiting as long as it takes.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let q = mgr.queue::<String>(0)?;
    /// q.put("x".into())?;
    /// assert_eq!(q.get()?, "x");
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`GetError::Failed`] with [`Error::ManagerDead`] if the server is
    /// gone, or [`Error::Codec`] if the item does not decode.
    ///
    /// Python: `get()`.
    pub fn get(&self) -> std::result::Result<T, GetError> {
        self.get_raw(Wait::Forever).map_err(|r| GetError::Failed(failed(r)))
    }

    /// Takes the oldest item if there is one now.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let q = mgr.queue::<u8>(0)?;
    /// assert!(matches!(q.try_get(), Err(shmproc::TryGetError::Empty)));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`TryGetError::Empty`]; `Failed` as for [`get`](QueueProxy::get).
    ///
    /// Python: `get_nowait()`.
    pub fn try_get(&self) -> std::result::Result<T, TryGetError> {
        self.get_raw(Wait::Try).map_err(|r| match r {
            Refusal::Timeout => TryGetError::Empty,
            r => TryGetError::Failed(failed(r)),
        })
    }

    /// Takes the oldest item, waiting at most `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let mgr = shmproc::Manager::start()?;
    /// let q = mgr.queue::<u8>(0)?;
    /// assert!(matches!(q.get_timeout(Duration::from_millis(1)), Err(shmproc::GetTimeoutError::Timeout)));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`GetTimeoutError::Timeout`]; `Failed` as for
    /// [`get`](QueueProxy::get).
    ///
    /// Python: `get(timeout=t)`.
    pub fn get_timeout(&self, timeout: Duration) -> std::result::Result<T, GetTimeoutError> {
        self.get_waiting(Wait::after(timeout))
    }

    /// Takes the oldest item, waiting until `deadline` at most.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let q = mgr.queue::<u8>(0)?;
    /// q.put(1)?;
    /// assert_eq!(q.get_deadline(std::time::Instant::now())?, 1);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`get_timeout`](QueueProxy::get_timeout).
    pub fn get_deadline(&self, deadline: Instant) -> std::result::Result<T, GetTimeoutError> {
        self.get_waiting(Wait::Until(deadline))
    }

    fn get_waiting(&self, wait: Wait) -> std::result::Result<T, GetTimeoutError> {
        self.get_raw(wait).map_err(|r| match r {
            Refusal::Timeout => GetTimeoutError::Timeout,
            r => GetTimeoutError::Failed(failed(r)),
        })
    }

    fn size(&self) -> Result<(u64, u64)> {
        let p = sync::call(&self.obj, &sync::request(&self.obj, op::Q_SIZE, Wait::Try)?, Wait::Try).map_err(failed)?;
        let bad = || Error::Corrupt { what: "manager reply (queue size)" };
        let (a, b) = p.split_at_checked(8).ok_or_else(bad)?;
        let n = |x: &[u8]| x.try_into().map(u64::from_le_bytes).map_err(|_| bad());
        Ok((n(a)?, n(b)?))
    }

    /// The number of items in the queue now.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let q = mgr.queue::<u8>(0)?;
    /// q.put(1)?;
    /// assert_eq!(q.qsize()?, 1);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::ManagerDead`] if the server is gone.
    ///
    /// Python: `qsize()`.
    pub fn qsize(&self) -> Result<usize> {
        self.size().map(|(n, _)| usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// Whether the queue is empty now.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// assert!(mgr.queue::<u8>(0)?.is_empty()?);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`qsize`](QueueProxy::qsize).
    ///
    /// Python: `empty()`.
    pub fn is_empty(&self) -> Result<bool> {
        self.size().map(|(n, _)| n == 0)
    }

    /// Whether the queue is full now (never, for an unbounded one).
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let q = mgr.queue::<u8>(1)?;
    /// q.put(1)?;
    /// assert!(q.is_full()?);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`qsize`](QueueProxy::qsize).
    ///
    /// Python: `full()`.
    pub fn is_full(&self) -> Result<bool> {
        self.size().map(|(n, max)| max != 0 && n >= max)
    }

    /// Marks one item taken by a get as done (a joinable queue).
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// let q = mgr.joinable_queue::<u8>(0)?;
    /// q.put(1)?;
    /// q.get()?;
    /// q.task_done()?;
    /// q.join()?;
    /// assert!(q.task_done().is_err()); // more than were put
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if every item is done already (Python:
    /// `ValueError`); [`Error::Remote`] on a queue that is not joinable;
    /// [`Error::ManagerDead`].
    ///
    /// Python: `task_done()`.
    pub fn task_done(&self) -> Result<()> {
        let req = sync::request(&self.obj, op::Q_TASK_DONE, Wait::Try)?;
        sync::call(&self.obj, &req, Wait::Try).map(drop).map_err(failed)
    }

    fn join_waiting(&self, wait: Wait) -> Result<()> {
        let req = sync::request(&self.obj, op::Q_JOIN, wait)?;
        sync::call(&self.obj, &req, wait).map(drop).map_err(failed)
    }

    /// Waits until every item put is marked done (a joinable queue).
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// mgr.joinable_queue::<u8>(0)?.join()?; // nothing put
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`task_done`](QueueProxy::task_done).
    ///
    /// Python: `join()`.
    pub fn join(&self) -> Result<()> {
        self.join_waiting(Wait::Forever)
    }

    /// As [`join`](QueueProxy::join), waiting at most `timeout`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let mgr = shmproc::Manager::start()?;
    /// let q = mgr.joinable_queue::<u8>(0)?;
    /// q.put(1)?;
    /// assert!(matches!(q.join_timeout(Duration::from_millis(1)), Err(shmproc::Error::Timeout)));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Timeout`] if items were still unfinished in time; otherwise
    /// as for [`task_done`](QueueProxy::task_done).
    pub fn join_timeout(&self, timeout: Duration) -> Result<()> {
        self.join_waiting(Wait::after(timeout))
    }

    /// As [`join`](QueueProxy::join), waiting until `deadline` at most.
    ///
    /// # Examples
    ///
    /// ```
    /// let mgr = shmproc::Manager::start()?;
    /// mgr.joinable_queue::<u8>(0)?.join_deadline(std::time::Instant::now())?;
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`join_timeout`](QueueProxy::join_timeout).
    pub fn join_deadline(&self, deadline: Instant) -> Result<()> {
        self.join_waiting(Wait::Until(deadline))
    }
}
