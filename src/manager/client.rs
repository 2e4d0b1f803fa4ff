//! The client side: one connection per process and manager instance,
//! shared by every proxy and thread of the process, plus a few spare
//! connections for calls that may wait in the server
//! ([`Client::call_waiting`]).
//!
//! Connecting: the client makes a duplex pipe under a random name (prefix
//! [`PIPE_PREFIX`]), puts a hello with the name into the manager's accept
//! queue, and waits for the ack on its end while watching the server's
//! liveness; then it removes the name (the server removes it too, as soon
//! as it has opened the pipe).
//!
//! A connection whose server is gone is remembered as dead: every later
//! call returns [`Error::ManagerDead`] at once, without touching the rings.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::channel::error::{PutTimeoutError, RecvTimeoutError, TrySendError};
use crate::channel::pipe::{Connection, Pipe};
use crate::channel::queue::Queue;
use crate::error::{Error, Result};
use crate::manager::protocol::{self, MAGIC, PIPE_PREFIX, Reader, op};
use crate::owner::registry;
use crate::owner::token::{self, Liveness, Token};
use crate::shm::segment::Segment;

/// How long a connect waits for a live server's ack before giving up.
const CONNECT_LIMIT: Duration = Duration::from_secs(30);
/// How often a connect looks at the server's liveness while it waits.
const CONNECT_POLL: Duration = Duration::from_millis(20);

/// What names one manager instance: enough to connect to it from any
/// process. This is what a `Manager` handle and every proxy serialize.
#[derive(Debug)]
pub(crate) struct Info {
    /// The instance's random nonce (never 0).
    pub(crate) nonce: u64,
    /// Hellos go here.
    pub(crate) accept: Queue<Vec<u8>>,
    /// The server process's liveness token.
    pub(crate) server: Token,
    /// The manager's name, if it has one.
    pub(crate) name: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct InfoRepr {
    nonce: u64,
    accept: Queue<Vec<u8>>,
    pid: u32,
    token: u64,
    name: Option<String>,
}

impl Serialize for Info {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        InfoRepr {
            nonce: self.nonce,
            accept: self.accept.clone(),
            pid: self.server.pid,
            token: self.server.nonce,
            name: self.name.clone(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Info {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let r = InfoRepr::deserialize(d)?;
        Ok(Info { nonce: r.nonce, accept: r.accept, server: Token { pid: r.pid, nonce: r.token }, name: r.name })
    }
}

/// This process's connection to one manager instance.
#[derive(Debug)]
pub(crate) struct Client {
    /// The manager instance.
    nonce: u64,
    /// The liveness nonce of the process that made the connection: a
    /// forked child must not use its parent's.
    process: u64,
    conn: Connection,
    /// One request/reply exchange at a time.
    lock: Mutex<()>,
    dead: AtomicBool,
    /// Idle extra connections for calls that may wait (see
    /// [`call_waiting`](Client::call_waiting)).
    spare: Mutex<Vec<Connection>>,
}

/// Most idle extra connections a process keeps per manager; more are
/// closed after their call (their server threads exit).
pub(crate) const MAX_SPARE: usize = 4;

/// Every live connection of this process.
static CLIENTS: Mutex<Vec<Arc<Client>>> = Mutex::new(Vec::new());

/// Nonces of the manager instances this process saw die: calls to them
/// fail at once, and their connections (pipe mappings) are released.
static DEAD: Mutex<Vec<u64>> = Mutex::new(Vec::new());

/// Records manager `nonce` as dead in this process and drops its
/// connection.
fn bury(nonce: u64) {
    let mut dead = DEAD.lock();
    if !dead.contains(&nonce) {
        dead.push(nonce);
    }
    drop(dead);
    let mut all = CLIENTS.lock();
    for c in all.iter().filter(|c| c.nonce == nonce) {
        c.dead.store(true, Ordering::Relaxed);
    }
    all.retain(|c| c.nonce != nonce);
}

/// In a forked child: the parent's connections and what it knew of dead
/// managers go without being read (a parent thread may have held their
/// locks at the fork). The child makes its own connections.
extern "C" fn after_fork_in_child() {
    crate::sys::process::reset_in_child(&CLIENTS, Vec::new());
    crate::sys::process::reset_in_child(&DEAD, Vec::new());
}

fn this_process() -> Result<u64> {
    static REGISTERED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    crate::sys::process::at_fork_child_once(&REGISTERED, after_fork_in_child);
    registry::process_id().map(|(_, nonce)| nonce).map_err(|e| Error::os("liveness token", e))
}

/// Maps a transport error: the server's end gone means the manager is.
fn transport(e: Error) -> Error {
    match e {
        Error::BrokenPipe | Error::Disconnected | Error::Closed => Error::ManagerDead,
        e => e,
    }
}

impl Client {
    /// Records `conn` (already acked) as this process's connection to
    /// manager `nonce`.
    pub(crate) fn install(nonce: u64, conn: Connection) -> Result<Arc<Client>> {
        let c = Arc::new(Client {
            nonce,
            process: this_process()?,
            conn,
            lock: Mutex::new(()),
            dead: AtomicBool::new(false),
            spare: Mutex::new(Vec::new()),
        });
        let mut all = CLIENTS.lock();
        all.retain(|o| o.nonce != nonce);
        all.push(c.clone());
        Ok(c)
    }

    /// This process's connection to the manager `info` names, made on
    /// first use.
    pub(crate) fn of(info: &Info) -> Result<Arc<Client>> {
        let me = this_process()?;
        if DEAD.lock().contains(&info.nonce) {
            return Err(Error::ManagerDead);
        }
        let find = |all: &Vec<Arc<Client>>| all.iter().find(|c| c.nonce == info.nonce && c.process == me).cloned();
        if let Some(c) = find(&CLIENTS.lock()) {
            return Ok(c);
        }
        // Connecting without the lock (a slow server must not hold up calls
        // to other managers); a forked child's inherited entry is replaced.
        let (conn, nonce, _) = match handshake(&info.accept, info.nonce, Some(info.server)) {
            Err(Error::ManagerDead) => {
                bury(info.nonce);
                return Err(Error::ManagerDead);
            }
            r => r?,
        };
        let mut all = CLIENTS.lock();
        if let Some(c) = find(&all) {
            // Another thread connected meanwhile: closing ours ends its
            // server thread.
            conn.close();
            return Ok(c);
        }
        let c = Arc::new(Client {
            nonce,
            process: me,
            conn,
            lock: Mutex::new(()),
            dead: AtomicBool::new(false),
            spare: Mutex::new(Vec::new()),
        });
        all.retain(|o| o.nonce != nonce);
        all.push(c.clone());
        Ok(c)
    }

    /// Marks the connection dead: every later call returns
    /// [`Error::ManagerDead`] at once.
    fn mark_dead(&self) {
        self.dead.store(true, Ordering::Relaxed);
        bury(self.nonce);
    }

    fn check(&self) -> Result<()> {
        if self.dead.load(Ordering::Relaxed) { Err(Error::ManagerDead) } else { Ok(()) }
    }

    fn fail(&self, e: Error) -> Error {
        let e = transport(e);
        if matches!(e, Error::ManagerDead) {
            self.mark_dead();
        }
        e
    }

    /// Sends one request and returns its reply's payload bytes (with the
    /// status byte).
    pub(crate) fn call(&self, req: &[u8]) -> Result<Vec<u8>> {
        self.check()?;
        let _turn = self.lock.lock();
        self.check()?;
        self.conn.send_bytes(req).map_err(|e| self.fail(e.into()))?;
        self.conn.recv_bytes().map_err(|e| self.fail(e.into()))
    }

    /// Like [`call`](Client::call), giving up after `timeout` (then the
    /// connection is unusable and marked dead: a late reply would be taken
    /// for the next request's).
    pub(crate) fn call_timeout(&self, req: &[u8], timeout: Duration) -> Result<Vec<u8>> {
        self.check()?;
        let deadline = Instant::now() + timeout;
        let Some(_turn) = self.lock.try_lock_until(deadline) else {
            return Err(Error::Timeout);
        };
        self.check()?;
        let left = || deadline.saturating_duration_since(Instant::now());
        let r = self
            .conn
            .send_bytes_timeout(req, left())
            .map_err(Error::from)
            .and_then(|()| self.conn.recv_bytes_timeout(left()).map_err(Error::from));
        r.map_err(|e| {
            if matches!(e, Error::Timeout) {
                self.mark_dead();
                return e;
            }
            self.fail(e)
        })
    }

    /// Sends one request that may wait in the server (a blocking get, an
    /// acquire) over a connection of its own, so that it holds up no other
    /// thread of this process: an idle spare connection, or a new one
    /// (made like the first, with a hello naming this manager instance).
    /// Afterwards the connection is kept for reuse, or closed if
    /// [`MAX_SPARE`] are idle already. The server ends the wait (the
    /// request carries it); a dead server ends it with
    /// [`Error::ManagerDead`].
    pub(crate) fn call_waiting(&self, info: &Info, req: &[u8]) -> Result<Vec<u8>> {
        self.check()?;
        let spare = self.spare.lock().pop();
        let conn = match spare {
            Some(c) => c,
            None => match handshake(&info.accept, self.nonce, Some(info.server)) {
                Ok((c, _, _)) => c,
                Err(e) => return Err(self.fail(e)),
            },
        };
        let r = conn.send_bytes(req).map_err(Error::from).and_then(|()| conn.recv_bytes().map_err(Error::from));
        match r {
            Ok(reply) => {
                let mut spare = self.spare.lock();
                if spare.len() < MAX_SPARE {
                    spare.push(conn);
                } else {
                    drop(spare);
                    conn.close();
                }
                Ok(reply)
            }
            Err(e) => {
                conn.close();
                Err(self.fail(e))
            }
        }
    }

    /// Sends every request, pipelined, and returns the replies in order.
    ///
    /// Requests travel packed into batch messages of about
    /// [`FRAME_BYTES`]; the server applies each batch under one lock
    /// acquisition. Never deadlocks on two full rings: when the request
    /// ring is full the client takes a reply first (the server only ever
    /// waits for room in the reply ring, which this frees).
    pub(crate) fn call_many(&self, reqs: impl IntoIterator<Item = Result<Vec<u8>>>) -> Result<Vec<Vec<u8>>> {
        self.check()?;
        let _turn = self.lock.lock();
        self.check()?;
        let mut io = Pipelined { client: self, sent: Vec::new(), replies: Vec::new(), err: None };
        let mut frame = protocol::request(op::BATCH, 0);
        let mut parts = 0usize;
        let mut first_err = None;
        for req in reqs {
            match req.and_then(|r| protocol::put_bytes(&mut frame, &r)) {
                Ok(()) => parts += 1,
                Err(e) => {
                    first_err = Some(e);
                    break;
                }
            }
            if frame.len() >= FRAME_BYTES {
                io.send(&frame, parts)?;
                frame.truncate(9);
                parts = 0;
            }
        }
        if parts > 0 {
            io.send(&frame, parts)?;
        }
        // Every sent batch is answered, even after an error, so the
        // stream stays in step.
        io.drain()?;
        match first_err.or(io.err) {
            Some(e) => Err(e),
            None => Ok(io.replies),
        }
    }
}

/// Bytes of requests packed into one batch message: small, so that the
/// server applies one batch while the client packs the next (larger
/// batches made the client wait, asleep, for each; measured under load).
const FRAME_BYTES: usize = 1024;

/// The pipelining state of one [`Client::call_many`].
struct Pipelined<'a> {
    client: &'a Client,
    /// Parts of each batch sent and not yet answered, oldest first.
    sent: Vec<usize>,
    replies: Vec<Vec<u8>>,
    /// The first reply that failed (the stream stays in step: each batch
    /// is one message).
    err: Option<Error>,
}

impl Pipelined<'_> {
    fn send(&mut self, frame: &[u8], parts: usize) -> Result<()> {
        let c = self.client;
        loop {
            match c.conn.try_send_bytes(frame) {
                Ok(()) => break,
                Err(TrySendError::Full(_)) if !self.sent.is_empty() => self.take_reply()?,
                Err(TrySendError::Full(_)) => {
                    c.conn.send_bytes(frame).map_err(|e| c.fail(e.into()))?;
                    break;
                }
                Err(e) => return Err(c.fail(e.into())),
            }
        }
        self.sent.push(parts);
        Ok(())
    }

    /// Receives the oldest outstanding batch reply and splits it; fails
    /// only if the transport does (a bad reply is kept in `err`).
    fn take_reply(&mut self) -> Result<()> {
        let c = self.client;
        let reply = c.conn.recv_bytes().map_err(|e| c.fail(e.into()))?;
        let parts = self.sent.remove(0);
        if let Err(e) = split(&reply, parts, &mut self.replies) {
            self.err.get_or_insert(e);
        }
        Ok(())
    }

    fn drain(&mut self) -> Result<()> {
        while !self.sent.is_empty() {
            self.take_reply()?;
        }
        Ok(())
    }
}

/// Appends the `parts` replies of a batch reply to `out`.
fn split(reply: &[u8], parts: usize, out: &mut Vec<Vec<u8>>) -> Result<()> {
    let mut r = Reader::new(protocol::payload(reply)?);
    for _ in 0..parts {
        let part = r.bytes().map_err(|_| Error::Corrupt { what: "manager reply (batch)" })?;
        out.push(part.to_vec());
    }
    if !r.is_empty() {
        return Err(Error::Corrupt { what: "manager reply (batch length)" });
    }
    Ok(())
}

/// Forgets this process's connection to manager `nonce`, which was shut
/// down: later calls return [`Error::ManagerDead`] at once.
pub(crate) fn forget(nonce: u64) {
    bury(nonce);
}

/// Parses an ack: the manager's nonce and its server's token.
pub(crate) fn parse_ack(reply: &[u8]) -> Result<(u64, Token)> {
    let p = protocol::payload(reply)?;
    let bad = |_| Error::Corrupt { what: "manager ack" };
    let mut r = Reader::new(p);
    let nonce = r.u64().map_err(bad)?;
    let pid = r.u32().map_err(bad)?;
    let token = r.u64().map_err(bad)?;
    Ok((nonce, Token { pid, nonce: token }))
}

/// Connects to the manager behind `accept`: expects instance `want` (0:
/// any) whose server is `server` (if known). Returns the connection, the
/// instance's nonce and its server's token.
pub(crate) fn handshake(accept: &Queue<Vec<u8>>, want: u64, server: Option<Token>) -> Result<(Connection, u64, Token)> {
    let dead = || server.is_some_and(|t| token::liveness(t) == Liveness::Dead) || accept.consumers_gone();
    if dead() {
        return Err(Error::ManagerDead);
    }
    let name = format!(
        "{PIPE_PREFIX}{:x}-{:016x}",
        crate::sys::process::pid(),
        crate::sys::random_u64().map_err(|e| Error::os("getrandom", e))?
    );
    let (mine, _theirs) = Pipe::builder().name(&name).duplex()?;
    let result = (|| {
        let mut hello = Vec::with_capacity(16 + name.len());
        hello.extend_from_slice(&MAGIC.to_le_bytes());
        hello.extend_from_slice(&want.to_le_bytes());
        hello.extend_from_slice(name.as_bytes());
        let start = Instant::now();
        // A full accept queue (a stopped server, a flood of hellos) is
        // waited on with the same liveness checks and limit as the ack.
        loop {
            match accept.put_timeout(hello, CONNECT_POLL) {
                Ok(()) => break,
                Err(PutTimeoutError::Timeout(h)) if !dead() && start.elapsed() <= CONNECT_LIMIT => hello = h,
                Err(PutTimeoutError::Timeout(_)) if !dead() => return Err(Error::Timeout),
                Err(PutTimeoutError::Failed(_, e)) => return Err(e),
                Err(_) => return Err(Error::ManagerDead),
            }
        }
        loop {
            match mine.recv_bytes_timeout(CONNECT_POLL) {
                Ok(reply) => return parse_ack(&reply),
                Err(RecvTimeoutError::Timeout) if dead() => return Err(Error::ManagerDead),
                Err(RecvTimeoutError::Timeout) if start.elapsed() > CONNECT_LIMIT => return Err(Error::Timeout),
                Err(RecvTimeoutError::Timeout) => {}
                Err(e) => return Err(transport(e.into())),
            }
        }
    })();
    // Opened by the server or not, the name goes now.
    let _ = Segment::unlink(&name);
    let (nonce, token) = result?;
    if want != 0 && nonce != want {
        return Err(Error::ManagerDead);
    }
    Ok((mine, nonce, token))
}
