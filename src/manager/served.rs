//! The server side of the blocking objects: queues, locks, semaphores,
//! events, conditions and barriers.
//!
//! How a blocking call travels (the client side is
//! [`Client::call_waiting`](crate::manager::client::Client::call_waiting)):
//! a call that may wait goes over a connection of its own, checked out of
//! the process's small set of spare connections (made on demand, kept for
//! reuse, closed beyond [`MAX_SPARE`](crate::manager::client::MAX_SPARE)
//! idle ones), so it blocks only that connection's server thread; quick
//! calls (and `try_` calls, which never wait) keep using the shared
//! connection. The server looks the object up under the state lock, clones
//! its `Arc`, releases the state lock, and only then waits, on the
//! object's own mutex and condvar: a waiting call never holds up another
//! client or another object.
//!
//! A waiting request carries its wait as a remaining duration (the
//! deadline is the server's `now + wait`), and the caller's identity (pid,
//! liveness nonce, thread number), which makes lock ownership: a lock held
//! by a process that died is taken over by the next acquirer, who is told
//! the dead holder's pid. While it waits, the server thread wakes every
//! [`SLICE`] to look at its client: a client that died (or closed its
//! connection) ends the wait without changing anything, and a barrier
//! party that died breaks the barrier (as the crate's own `Barrier` does).
//!
//! Known limit: an item that a get took from a queue is lost if its client
//! dies before the reply reaches it (the server cannot know whether the
//! reply was read).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::manager::protocol::{self, OK, Reader, code, op};
use crate::owner::token::{self, Liveness, Token};

/// How often a waiting server thread looks at its client's (and a lock
/// holder's) liveness.
pub(crate) const SLICE: Duration = Duration::from_millis(50);

/// Kinds of blocking objects (the `kind` byte of `NEW_SYNC`).
pub(crate) mod kind {
    /// A queue: `arg` maxsize (0 unbounded), `arg2` 1 if joinable.
    pub(crate) const QUEUE: u8 = 1;
    /// A lock: `arg2` 1 if reentrant (an RLock).
    pub(crate) const LOCK: u8 = 2;
    /// A semaphore: `arg` the initial value, `arg2` 1 if bounded.
    pub(crate) const SEMAPHORE: u8 = 3;
    /// An event.
    pub(crate) const EVENT: u8 = 4;
    /// A condition: `arg` the id of its lock (0: a new RLock of its own).
    pub(crate) const CONDITION: u8 = 5;
    /// A barrier: `arg` the parties, `arg2` the default timeout in ns
    /// (0: none).
    pub(crate) const BARRIER: u8 = 6;
}

/// Who calls: the owner identity of locks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Caller {
    pub(crate) pid: u32,
    pub(crate) token: u64,
    pub(crate) thread: u64,
}

impl Caller {
    fn is_dead(&self) -> bool {
        token::liveness(Token { pid: self.pid, nonce: self.token }) == Liveness::Dead
    }
}

/// Why a wait ended without what it waited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Timeout,
    /// The client is gone: nothing was changed, no reply is read.
    Gone,
}

/// How long a request may wait, and how to see that its client is gone.
struct Wait<'a> {
    /// None: forever.
    deadline: Option<Instant>,
    gone: &'a dyn Fn() -> bool,
}

impl Wait<'_> {
    /// Waits on `cv` until `ready` gives a value, the deadline passes, or
    /// the client is gone. `ready` runs under `m`'s lock.
    fn until<S, R>(&self, m: &Mutex<S>, cv: &Condvar, mut ready: impl FnMut(&mut S) -> Option<R>) -> Result<R, Stop> {
        let mut g = m.lock();
        // A request that may wait came alone on its connection: its client
        // is looked at first (on entry and after each wake-up), so that a
        // dead getter's thread never takes an item (the request may have
        // been read after its client died).
        let mut look = self.deadline.is_none_or(|d| d > Instant::now());
        loop {
            if look && (self.gone)() {
                return Err(Stop::Gone);
            }
            if let Some(r) = ready(&mut g) {
                return Ok(r);
            }
            let now = Instant::now();
            if self.deadline.is_some_and(|d| now >= d) {
                return Err(Stop::Timeout);
            }
            if (self.gone)() {
                return Err(Stop::Gone);
            }
            look = true;
            let slice = now + SLICE;
            let until = self.deadline.map_or(slice, |d| d.min(slice));
            let _ = cv.wait_until(&mut g, until);
        }
    }
}

/// A queue's items (encoded; the server never decodes them).
#[derive(Debug, Default)]
struct QueueState {
    items: VecDeque<Vec<u8>>,
    /// Items put and not yet marked done (joinable queues).
    unfinished: u64,
}

#[derive(Debug)]
pub(crate) struct QueueObj {
    maxsize: usize,
    joinable: bool,
    st: Mutex<QueueState>,
    cv: Condvar,
}

#[derive(Debug, Default)]
struct LockState {
    owner: Option<Caller>,
    depth: u32,
}

#[derive(Debug)]
pub(crate) struct LockObj {
    reentrant: bool,
    st: Mutex<LockState>,
    cv: Condvar,
}

/// What an acquire found: `Some(pid)` if it took the lock over from a
/// dead holder.
type Died = Option<u32>;

enum Take {
    Got(Died),
    Deadlock,
}

impl LockObj {
    fn new(reentrant: bool) -> LockObj {
        LockObj { reentrant, st: Mutex::new(LockState::default()), cv: Condvar::new() }
    }

    fn try_take(&self, s: &mut LockState, me: Caller, depth: u32) -> Option<Take> {
        match s.owner {
            None => {
                s.owner = Some(me);
                s.depth = depth;
                Some(Take::Got(None))
            }
            Some(o) if o == me && self.reentrant => {
                s.depth = s.depth.saturating_add(depth);
                Some(Take::Got(None))
            }
            Some(o) if o == me => Some(Take::Deadlock),
            Some(o) if o.is_dead() => {
                s.owner = Some(me);
                s.depth = depth;
                Some(Take::Got(Some(o.pid)))
            }
            Some(_) => None,
        }
    }

    fn acquire(&self, me: Caller, depth: u32, w: &Wait<'_>) -> Result<Take, Stop> {
        w.until(&self.st, &self.cv, |s| self.try_take(s, me, depth))
    }

    /// Releases one level; `all`: every level (a condition's wait), giving
    /// back the depth. Err if `me` does not hold it.
    fn release(&self, me: Caller, all: bool) -> Result<u32, ()> {
        let mut s = self.st.lock();
        if s.owner != Some(me) {
            return Err(());
        }
        let released = if all { s.depth } else { 1 };
        s.depth -= released;
        if s.depth == 0 {
            s.owner = None;
            self.cv.notify_all();
        }
        Ok(released)
    }

    fn holds(&self, me: Caller) -> bool {
        self.st.lock().owner == Some(me)
    }
}

#[derive(Debug)]
pub(crate) struct SemObj {
    /// The initial value, the bound of a bounded semaphore.
    bound: Option<u64>,
    value: Mutex<u64>,
    cv: Condvar,
}

#[derive(Debug)]
pub(crate) struct EventObj {
    set: Mutex<bool>,
    cv: Condvar,
}

#[derive(Debug, Default)]
struct CondState {
    next: u64,
    /// Tickets of the waiters not yet notified, oldest first.
    waiting: VecDeque<u64>,
}

#[derive(Debug)]
pub(crate) struct CondObj {
    lock: Arc<LockObj>,
    st: Mutex<CondState>,
    cv: Condvar,
}

#[derive(Debug, Default)]
struct BarrierState {
    /// Parties waiting now.
    count: u64,
    /// Completed rounds.
    generation: u64,
    /// Resets done (they break the waiting parties).
    resets: u64,
    /// Broken, and by whom (a dead party's pid).
    broken: Option<Option<u32>>,
    /// Who waits now (their liveness is looked at on each arrival).
    waiters: Vec<Caller>,
}

impl BarrierState {
    /// Breaks the barrier (`dead`: a party that died) for the waiters.
    fn break_for(&mut self, dead: Option<u32>) {
        self.broken = Some(dead);
        self.count = 0;
        self.waiters.clear();
    }
}

#[derive(Debug)]
pub(crate) struct BarrierObj {
    parties: u64,
    timeout: Option<Duration>,
    st: Mutex<BarrierState>,
    cv: Condvar,
}

/// A blocking object of the server.
#[derive(Debug, Clone)]
pub(crate) enum Served {
    Queue(Arc<QueueObj>),
    Lock(Arc<LockObj>),
    Semaphore(Arc<SemObj>),
    Event(Arc<EventObj>),
    Condition(Arc<CondObj>),
    Barrier(Arc<BarrierObj>),
}

/// Why a request failed: an error code and a message.
type Failure = (u8, String);

fn bad(what: &str) -> Failure {
    (code::BAD_REQUEST, what.to_owned())
}

impl Served {
    /// A new object of `kind`; `lock_of` finds an existing lock by id
    /// (for a condition over it).
    pub(crate) fn new(
        kind: u8,
        arg: u64,
        arg2: u64,
        lock_of: impl FnOnce(u64) -> Option<Served>,
    ) -> Result<Served, Failure> {
        Ok(match kind {
            kind::QUEUE => Served::Queue(Arc::new(QueueObj {
                maxsize: usize::try_from(arg).map_err(|_| bad("queue maxsize too large"))?,
                joinable: arg2 == 1,
                st: Mutex::new(QueueState::default()),
                cv: Condvar::new(),
            })),
            kind::LOCK => Served::Lock(Arc::new(LockObj::new(arg2 == 1))),
            kind::SEMAPHORE => Served::Semaphore(Arc::new(SemObj {
                bound: (arg2 == 1).then_some(arg),
                value: Mutex::new(arg),
                cv: Condvar::new(),
            })),
            kind::EVENT => Served::Event(Arc::new(EventObj { set: Mutex::new(false), cv: Condvar::new() })),
            kind::CONDITION => {
                let lock = match arg {
                    0 => Arc::new(LockObj::new(true)),
                    id => match lock_of(id) {
                        Some(Served::Lock(l)) => l,
                        _ => return Err((code::NO_OBJECT, format!("no lock with id {id} on this manager"))),
                    },
                };
                Served::Condition(Arc::new(CondObj { lock, st: Mutex::new(CondState::default()), cv: Condvar::new() }))
            }
            kind::BARRIER if arg > 0 => Served::Barrier(Arc::new(BarrierObj {
                parties: arg,
                timeout: (arg2 > 0).then(|| Duration::from_nanos(arg2)),
                st: Mutex::new(BarrierState::default()),
                cv: Condvar::new(),
            })),
            kind::BARRIER => return Err(bad("a barrier needs at least one party")),
            other => return Err(bad(&format!("unknown kind of blocking object {other}"))),
        })
    }

    /// The kind's name, for messages.
    pub(crate) fn what(&self) -> &'static str {
        match self {
            Served::Queue(_) => "queue",
            Served::Lock(_) => "lock",
            Served::Semaphore(_) => "semaphore",
            Served::Event(_) => "event",
            Served::Condition(_) => "condition",
            Served::Barrier(_) => "barrier",
        }
    }
}

/// Whether `req` is a request for a blocking object (served outside the
/// state lock by [`handle`]).
pub(crate) fn is_sync_request(req: &[u8]) -> bool {
    req.first().is_some_and(|&o| (op::SYNC_FIRST..=op::SYNC_LAST).contains(&o))
}

/// The id a request names (0 if it is too short).
pub(crate) fn request_id(req: &[u8]) -> u64 {
    let mut r = Reader::new(req);
    let _ = r.u8();
    r.u64().unwrap_or(0)
}

fn unit() -> Vec<u8> {
    vec![OK]
}

fn stop(s: Stop) -> Failure {
    match s {
        Stop::Timeout => (code::TIMEOUT, "the wait ended".to_owned()),
        Stop::Gone => (code::BAD_REQUEST, "the client is gone".to_owned()),
    }
}

fn got(t: Take) -> Result<Vec<u8>, Failure> {
    match t {
        Take::Got(died) => {
            let mut r = vec![OK, u8::from(died.is_some())];
            r.extend_from_slice(&died.unwrap_or(0).to_le_bytes());
            Ok(r)
        }
        Take::Deadlock => Err((code::DEADLOCK, "this thread holds the lock already".to_owned())),
    }
}

fn not_owner() -> Failure {
    (code::NOT_OWNER, "the calling thread does not hold the lock".to_owned())
}

/// Serves one request for the blocking object `obj` (None: no such
/// object); `gone` tells whether the client has gone away.
pub(crate) fn handle(obj: Option<Served>, req: &[u8], gone: &dyn Fn() -> bool) -> Vec<u8> {
    apply(obj, req, gone).unwrap_or_else(|(c, m)| protocol::error_reply(c, &m))
}

fn truncated(_: protocol::Truncated) -> Failure {
    bad("truncated request")
}

fn apply(obj: Option<Served>, req: &[u8], gone: &dyn Fn() -> bool) -> Result<Vec<u8>, Failure> {
    let mut r = Reader::new(req);
    let opcode = r.u8().map_err(truncated)?;
    let id = r.u64().map_err(truncated)?;
    let me = Caller {
        pid: r.u32().map_err(truncated)?,
        token: r.u64().map_err(truncated)?,
        thread: r.u64().map_err(truncated)?,
    };
    let wait_ns = r.u64().map_err(truncated)?;
    let now = Instant::now();
    let deadline = match wait_ns {
        u64::MAX => None,
        ns => Some(now.checked_add(Duration::from_nanos(ns)).unwrap_or(now + Duration::from_secs(1 << 32))),
    };
    // The caller's own liveness is asked directly (the pipe's look at its
    // peer is rate-limited): a request read after its client died never
    // takes anything.
    let gone_or_dead = || me.is_dead() || gone();
    let w = Wait { deadline, gone: &gone_or_dead };
    let obj = obj.ok_or_else(|| (code::NO_OBJECT, format!("no blocking object with id {id} on this manager")))?;
    let wrong = || (code::NO_OBJECT, format!("operation {opcode} does not apply to the {} with id {id}", obj.what()));
    match (opcode, &obj) {
        (op::Q_PUT, Served::Queue(q)) => {
            let item = r.rest().to_vec();
            let mut item = Some(item);
            w.until(&q.st, &q.cv, |s| {
                if q.maxsize != 0 && s.items.len() >= q.maxsize {
                    return None;
                }
                s.items.extend(item.take());
                s.unfinished += 1;
                Some(())
            })
            .map_err(stop)?;
            q.cv.notify_all();
            Ok(unit())
        }
        (op::Q_GET, Served::Queue(q)) => {
            let item = w.until(&q.st, &q.cv, |s| s.items.pop_front()).map_err(stop)?;
            q.cv.notify_all();
            Ok([&[OK][..], &item].concat())
        }
        (op::Q_SIZE, Served::Queue(q)) => {
            let len = q.st.lock().items.len() as u64;
            Ok([&[OK][..], &len.to_le_bytes(), &(q.maxsize as u64).to_le_bytes()].concat())
        }
        (op::Q_TASK_DONE, Served::Queue(q)) if q.joinable => {
            let mut s = q.st.lock();
            if s.unfinished == 0 {
                return Err((code::VALUE, "task_done() called more times than there were items".to_owned()));
            }
            s.unfinished -= 1;
            if s.unfinished == 0 {
                q.cv.notify_all();
            }
            Ok(unit())
        }
        (op::Q_JOIN, Served::Queue(q)) if q.joinable => {
            w.until(&q.st, &q.cv, |s| (s.unfinished == 0).then_some(())).map_err(stop)?;
            Ok(unit())
        }
        (op::ACQUIRE, Served::Lock(l)) => got(l.acquire(me, 1, &w).map_err(stop)?),
        (op::ACQUIRE, Served::Condition(c)) => got(c.lock.acquire(me, 1, &w).map_err(stop)?),
        (op::RELEASE, Served::Lock(l)) => l.release(me, false).map(|_| unit()).map_err(|()| not_owner()),
        (op::RELEASE, Served::Condition(c)) => c.lock.release(me, false).map(|_| unit()).map_err(|()| not_owner()),
        (op::ACQUIRE, Served::Semaphore(s)) => {
            w.until(&s.value, &s.cv, |v| {
                let taken = (*v > 0).then_some(());
                *v -= u64::from(taken.is_some());
                taken
            })
            .map_err(stop)?;
            got(Take::Got(None))
        }
        (op::RELEASE, Served::Semaphore(s)) => {
            let mut v = s.value.lock();
            if s.bound.is_some_and(|b| *v >= b) {
                return Err((code::VALUE, "a bounded semaphore was released too many times".to_owned()));
            }
            *v = v.saturating_add(1);
            s.cv.notify_all();
            Ok(unit())
        }
        (op::EV_SET, Served::Event(e)) => {
            *e.set.lock() = true;
            e.cv.notify_all();
            Ok(unit())
        }
        (op::EV_CLEAR, Served::Event(e)) => {
            *e.set.lock() = false;
            Ok(unit())
        }
        (op::EV_IS_SET, Served::Event(e)) => Ok(vec![OK, u8::from(*e.set.lock())]),
        (op::EV_WAIT, Served::Event(e)) => {
            w.until(&e.set, &e.cv, |s| s.then_some(())).map_err(stop)?;
            Ok(unit())
        }
        (op::CV_WAIT, Served::Condition(c)) => condition_wait(c, me, &w),
        (op::CV_NOTIFY, Served::Condition(c)) => {
            let n = r.u64().map_err(truncated)?;
            if !c.lock.holds(me) {
                return Err(not_owner());
            }
            let mut s = c.st.lock();
            let n = usize::try_from(n).unwrap_or(usize::MAX).min(s.waiting.len());
            s.waiting.drain(..n);
            c.cv.notify_all();
            Ok(unit())
        }
        (op::BAR_WAIT, Served::Barrier(b)) => barrier_wait(b, me, &w, wait_ns),
        (op::BAR_RESET, Served::Barrier(b)) => {
            let mut s = b.st.lock();
            if s.count > 0 || s.broken.is_some() {
                s.resets += 1;
            }
            s.count = 0;
            s.broken = None;
            s.waiters.clear();
            b.cv.notify_all();
            Ok(unit())
        }
        (op::BAR_ABORT, Served::Barrier(b)) => {
            b.st.lock().break_for(None);
            b.cv.notify_all();
            Ok(unit())
        }
        (op::BAR_INFO, Served::Barrier(b)) => {
            let s = b.st.lock();
            Ok([&[OK][..], &b.parties.to_le_bytes(), &s.count.to_le_bytes(), &[u8::from(s.broken.is_some())]].concat())
        }
        _ => Err(wrong()),
    }
}

/// Python's `Condition.wait`: releases the lock (every level of an RLock),
/// waits for a notify (or the deadline), takes the lock again (waiting as
/// long as it takes, as Python does).
fn condition_wait(c: &CondObj, me: Caller, w: &Wait<'_>) -> Result<Vec<u8>, Failure> {
    let ticket = {
        let mut s = c.st.lock();
        // Enqueued before the lock goes: a notify right after the release
        // finds this waiter.
        if !c.lock.holds(me) {
            return Err(not_owner());
        }
        let t = s.next;
        s.next += 1;
        s.waiting.push_back(t);
        t
    };
    let depth = c.lock.release(me, true).map_err(|()| not_owner())?;
    let waited = w.until(&c.st, &c.cv, |s| (!s.waiting.contains(&ticket)).then_some(()));
    if waited.is_err() {
        c.st.lock().waiting.retain(|&t| t != ticket);
    }
    if waited == Err(Stop::Gone) {
        return Err(stop(Stop::Gone));
    }
    let forever = Wait { deadline: None, gone: w.gone };
    match c.lock.acquire(me, depth, &forever).map_err(stop)? {
        Take::Got(died) => {
            let mut r = vec![OK, u8::from(waited.is_ok()), u8::from(died.is_some())];
            r.extend_from_slice(&died.unwrap_or(0).to_le_bytes());
            Ok(r)
        }
        Take::Deadlock => Err(bad("the condition's lock was taken by the waiter itself")),
    }
}

/// `threading.Barrier.wait`: the arrival index, or broken.
fn barrier_wait(b: &BarrierObj, me: Caller, w: &Wait<'_>, wait_ns: u64) -> Result<Vec<u8>, Failure> {
    let broken = |dead: Option<u32>| (code::BROKEN, dead.map(|p| p.to_string()).unwrap_or_default());
    // The barrier's own timeout applies when the call gives none.
    let deadline = match (wait_ns, b.timeout) {
        (u64::MAX, Some(t)) => Instant::now().checked_add(t),
        _ => w.deadline,
    };
    let w = Wait { deadline, gone: w.gone };
    let (index, generation, resets) = {
        let mut s = b.st.lock();
        if let Some(dead) = s.broken {
            return Err(broken(dead));
        }
        // A waiting party that died breaks the barrier now, rather than
        // when its server thread next looks at its client.
        if let Some(dead) = s.waiters.iter().find(|c| c.is_dead()).map(|c| c.pid) {
            s.break_for(Some(dead));
            b.cv.notify_all();
            return Err(broken(Some(dead)));
        }
        let index = s.count;
        s.count += 1;
        if s.count == b.parties {
            s.count = 0;
            s.waiters.clear();
            s.generation += 1;
            b.cv.notify_all();
            return Ok([&[OK][..], &index.to_le_bytes()].concat());
        }
        s.waiters.push(me);
        (index, s.generation, s.resets)
    };
    let r = w.until(&b.st, &b.cv, |s| {
        if s.generation != generation {
            Some(Ok(()))
        } else if s.resets != resets {
            Some(Err(None))
        } else {
            s.broken.map(Err)
        }
    });
    match r {
        Ok(Ok(())) => Ok([&[OK][..], &index.to_le_bytes()].concat()),
        Ok(Err(dead)) => Err(broken(dead)),
        Err(why) => {
            let mut s = b.st.lock();
            if s.generation != generation {
                // Released meanwhile.
                return Ok([&[OK][..], &index.to_le_bytes()].concat());
            }
            if s.broken.is_none() && s.resets == resets {
                s.break_for(if why == Stop::Gone { Some(me.pid) } else { None });
            }
            b.cv.notify_all();
            Err(match why {
                Stop::Timeout => stop(Stop::Timeout),
                Stop::Gone => stop(Stop::Gone),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(opcode: u8, id: u64, wait_ns: u64, payload: &[u8]) -> Vec<u8> {
        let me = token::current().expect("token");
        let mut r = protocol::request(opcode, id);
        r.extend_from_slice(&me.pid.to_le_bytes());
        r.extend_from_slice(&me.nonce.to_le_bytes());
        r.extend_from_slice(&3u64.to_le_bytes());
        r.extend_from_slice(&wait_ns.to_le_bytes());
        r.extend_from_slice(payload);
        r
    }

    fn never() -> bool {
        false
    }

    #[test]
    fn garbage_sync_requests_get_error_replies() {
        let q = Served::new(kind::QUEUE, 1, 0, |_| None).expect("queue");
        let l = Served::new(kind::LOCK, 0, 0, |_| None).expect("lock");
        assert!(Served::new(99, 0, 0, |_| None).is_err());
        assert!(Served::new(kind::BARRIER, 0, 0, |_| None).is_err());
        assert!(Served::new(kind::CONDITION, 5, 0, |_| Some(q.clone())).is_err(), "a condition over a queue");
        for garbage in
            [&[][..], &[op::Q_GET], &[op::Q_GET, 1, 0, 0, 0, 0, 0, 0, 0, 9, 9], &req(op::Q_GET, 1, 0, b"")[..30]]
        {
            assert_eq!(handle(Some(q.clone()), garbage, &never)[0], protocol::ERR, "{garbage:?}");
        }
        assert_eq!(handle(None, &req(op::Q_GET, 1, 0, b""), &never)[..2], [protocol::ERR, code::NO_OBJECT]);
        assert_eq!(handle(Some(l.clone()), &req(op::Q_GET, 1, 0, b""), &never)[..2], [protocol::ERR, code::NO_OBJECT]);
        assert_eq!(handle(Some(q.clone()), &req(op::Q_TASK_DONE, 1, 0, b""), &never)[0], protocol::ERR, "not joinable");
        assert_eq!(handle(Some(q.clone()), &req(op::Q_GET, 1, 0, b""), &never)[..2], [protocol::ERR, code::TIMEOUT]);
        assert_eq!(handle(Some(q.clone()), &req(op::Q_PUT, 1, 0, b"x"), &never), [OK]);
        assert_eq!(handle(Some(q.clone()), &req(op::Q_PUT, 1, 0, b"y"), &never)[..2], [protocol::ERR, code::TIMEOUT]);
        assert_eq!(handle(Some(q.clone()), &req(op::Q_GET, 1, u64::MAX, b""), &never), [OK, b'x']);
        assert_eq!(
            handle(Some(l.clone()), &req(op::RELEASE, 2, 0, b""), &never)[..2],
            [protocol::ERR, code::NOT_OWNER]
        );
        assert_eq!(handle(Some(l.clone()), &req(op::ACQUIRE, 2, 0, b""), &never)[..2], [OK, 0]);
        assert_eq!(handle(Some(l.clone()), &req(op::ACQUIRE, 2, 0, b""), &never)[..2], [protocol::ERR, code::DEADLOCK]);
        // A waiting call whose client is gone ends at once.
        let gone = || true;
        assert_eq!(handle(Some(q), &req(op::Q_GET, 1, u64::MAX, b""), &gone)[0], protocol::ERR);
        assert!(is_sync_request(&[op::Q_GET]) && !is_sync_request(&[op::NEW_SYNC]) && !is_sync_request(&[]));
    }
}
