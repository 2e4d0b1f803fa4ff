//! The manager's server process: an acceptor on the accept queue, one
//! thread per client connection, and the objects' state under one lock.
//!
//! Hostile or dying peers: the server reads hellos only after checking
//! their magic and opens nothing but a pipe under the client prefix; every
//! request is parsed with bounds checks and answered with an error reply if
//! it makes no sense; a request is applied only once its whole message has
//! arrived (pipe messages are whole), so a client killed mid-send changes
//! nothing; a client that stops (SIGSTOP) or dies blocks only its own
//! thread, which exits when the pipe reports the client gone. The state
//! lock is never held while sending or receiving.

use std::collections::{BTreeMap, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::channel::error::GetTimeoutError;
use crate::channel::pipe::{Connection, Pipe};
use crate::channel::queue::Queue;
use crate::codec;
use crate::error::panic_message;
use crate::manager::client::Info;
use crate::manager::protocol::{self, MAGIC, MAX_PIPE_NAME, OK, PIPE_PREFIX, Reader, Truncated, code, op};
use crate::manager::refs;
use crate::manager::served::{self, Served};
use crate::owner::token::{self, Token};
use crate::shm::fnref::FnRef;
use crate::shm::segment::Segment;

mod values;

/// Most requests applied under one acquisition of the state lock.
const MAX_BATCH: usize = 64;

/// What the starting process passes to the server process.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ServerArgs {
    /// Hellos from new clients.
    pub(crate) accept: Queue<Vec<u8>>,
    /// The owner's connection (the server's end).
    pub(crate) boot: Connection,
    /// This manager instance's random nonce.
    pub(crate) nonce: u64,
}

/// The argument of an update trampoline: the current value's bytes (if
/// the key is present) and the encoded argument.
#[derive(Debug)]
pub(crate) struct UpdateCall {
    pub(crate) old: Option<Vec<u8>>,
    pub(crate) arg: Vec<u8>,
}

/// A monomorphized trampoline that resolves the user's update function
/// (the `FnRef`), decodes, calls it, and encodes the new value.
pub(crate) type UpdateTrampoline = fn(FnRef, UpdateCall) -> Result<Option<Vec<u8>>, String>;

/// The ack a server sends on a new connection: `[OK][nonce][pid][token]`.
pub(crate) fn ack(nonce: u64, me: Token) -> Vec<u8> {
    let mut r = vec![OK];
    r.extend_from_slice(&nonce.to_le_bytes());
    r.extend_from_slice(&me.pid.to_le_bytes());
    r.extend_from_slice(&me.nonce.to_le_bytes());
    r
}

/// A dict that keeps insertion order, over encoded keys and values.
#[derive(Debug, Default)]
struct Dict {
    /// Key bytes -> (insertion sequence number, value bytes).
    map: HashMap<Vec<u8>, (u64, Vec<u8>)>,
    /// Sequence number -> key bytes, in insertion order.
    order: BTreeMap<u64, Vec<u8>>,
    next: u64,
    /// The lock its updates run under (one at a time, outside the state
    /// lock: `values::handle_unlocked`).
    updating: Arc<Mutex<()>>,
}

impl Dict {
    fn insert(&mut self, key: &[u8], value: Vec<u8>) -> Option<Vec<u8>> {
        if let Some(e) = self.map.get_mut(key) {
            return Some(std::mem::replace(&mut e.1, value));
        }
        let seq = self.next;
        self.next += 1;
        self.order.insert(seq, key.to_vec());
        self.map.insert(key.to_vec(), (seq, value));
        None
    }

    fn remove(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        let (seq, v) = self.map.remove(key)?;
        self.order.remove(&seq);
        Some(v)
    }

    fn get(&self, key: &[u8]) -> Option<&Vec<u8>> {
        self.map.get(key).map(|e| &e.1)
    }

    /// Entries in insertion order.
    fn entries(&self) -> impl Iterator<Item = (&Vec<u8>, &Vec<u8>)> {
        self.order.values().filter_map(|k| self.map.get(k).map(|e| (k, &e.1)))
    }

    fn len(&self) -> usize {
        self.map.len()
    }

    fn clear(&mut self) {
        self.map.clear();
        self.order.clear();
    }
}

#[derive(Debug)]
enum Data {
    Dict(Dict),
    List(Vec<Vec<u8>>),
    /// A blocking object: it waits outside the state lock (`served.rs`).
    Sync(Served),
    /// Field name -> (the value type's fingerprint, value bytes).
    Namespace(BTreeMap<String, (u64, Vec<u8>)>),
    Value(values::ValueCell),
    Array(Vec<Vec<u8>>),
    Served(Arc<values::ServedBox>),
}

#[derive(Debug)]
struct Object {
    /// Fingerprint of the element types the creator asked for.
    fingerprint: u64,
    data: Data,
}

/// Every object of the manager.
#[derive(Debug, Default)]
struct State {
    objects: HashMap<u64, Object>,
    names: HashMap<String, u64>,
    next_id: u64,
}

/// Why a request failed: an error code and a message.
type Failure = (u8, String);

fn truncated(_: Truncated) -> Failure {
    (code::BAD_REQUEST, "truncated request".to_owned())
}

/// An option-of-bytes reply.
fn option_reply(v: Option<&[u8]>) -> Vec<u8> {
    match v {
        None => vec![OK, 0],
        Some(b) => {
            let mut r = Vec::with_capacity(2 + b.len());
            r.extend_from_slice(&[OK, 1]);
            r.extend_from_slice(b);
            r
        }
    }
}

/// A sequence reply of `n` elements whose strings `strings` yields.
fn sequence_reply<'a>(n: usize, strings: impl Iterator<Item = &'a [u8]>) -> Result<Vec<u8>, Failure> {
    let mut r = vec![OK];
    r.extend_from_slice(&(n as u64).to_le_bytes());
    for s in strings {
        protocol::put_bytes(&mut r, s).map_err(|e| (code::BAD_REQUEST, e.to_string()))?;
    }
    Ok(r)
}

impl State {
    fn new_object(&mut self, fingerprint: u64, data: Data) -> u64 {
        self.next_id += 1;
        self.objects.insert(self.next_id, Object { fingerprint, data });
        self.next_id
    }

    fn dict(&mut self, id: u64) -> Result<&mut Dict, Failure> {
        match self.objects.get_mut(&id).map(|o| &mut o.data) {
            Some(Data::Dict(d)) => Ok(d),
            _ => Err((code::NO_OBJECT, format!("no dict with id {id} on this manager"))),
        }
    }

    fn list(&mut self, id: u64) -> Result<&mut Vec<Vec<u8>>, Failure> {
        match self.objects.get_mut(&id).map(|o| &mut o.data) {
            Some(Data::List(l)) => Ok(l),
            _ => Err((code::NO_OBJECT, format!("no list with id {id} on this manager"))),
        }
    }

    /// Applies one request; the reply (an error reply on any failure).
    fn handle(&mut self, req: &[u8], owner: bool, stop: &mut bool) -> Vec<u8> {
        self.apply(req, owner, stop, false).unwrap_or_else(|(c, m)| protocol::error_reply(c, &m))
    }

    fn apply(&mut self, req: &[u8], owner: bool, stop: &mut bool, nested: bool) -> Result<Vec<u8>, Failure> {
        let mut r = Reader::new(req);
        let opcode = r.u8().map_err(truncated)?;
        let id = r.u64().map_err(truncated)?;
        let unit = || Ok(vec![OK]);
        match opcode {
            op::BATCH if !nested => {
                let mut out = vec![OK];
                while !r.is_empty() {
                    let sub = r.bytes().map_err(truncated)?;
                    let reply =
                        self.apply(sub, owner, stop, true).unwrap_or_else(|(c, m)| protocol::error_reply(c, &m));
                    protocol::put_bytes(&mut out, &reply).map_err(|e| (code::BAD_REQUEST, e.to_string()))?;
                }
                Ok(out)
            }
            op::NEW_DICT | op::NEW_LIST => {
                let fingerprint = r.u64().map_err(truncated)?;
                let name = std::str::from_utf8(r.rest())
                    .map_err(|_| (code::BAD_REQUEST, "object name is not UTF-8".to_owned()))?;
                self.new_or_named(opcode == op::NEW_DICT, fingerprint, name).map(|id| {
                    let mut out = vec![OK];
                    out.extend_from_slice(&id.to_le_bytes());
                    out
                })
            }
            op::LEN => match self.objects.get(&id).map(|o| &o.data) {
                Some(Data::Dict(d)) => Ok([&[OK][..], &(d.len() as u64).to_le_bytes()].concat()),
                Some(Data::List(l)) => Ok([&[OK][..], &(l.len() as u64).to_le_bytes()].concat()),
                _ => Err((code::NO_OBJECT, format!("no object with id {id} on this manager"))),
            },
            op::CLEAR => match self.objects.get_mut(&id).map(|o| &mut o.data) {
                Some(Data::Dict(d)) => {
                    d.clear();
                    unit()
                }
                Some(Data::List(l)) => {
                    l.clear();
                    unit()
                }
                _ => Err((code::NO_OBJECT, format!("no object with id {id} on this manager"))),
            },
            op::INSERT => {
                let key = r.bytes().map_err(truncated)?;
                let value = r.rest().to_vec();
                Ok(option_reply(self.dict(id)?.insert(key, value).as_deref()))
            }
            op::GET => Ok(option_reply(self.dict(id)?.get(r.rest()).map(Vec::as_slice))),
            op::REMOVE => Ok(option_reply(self.dict(id)?.remove(r.rest()).as_deref())),
            op::CONTAINS => Ok(vec![OK, u8::from(self.dict(id)?.get(r.rest()).is_some())]),
            op::KEYS => {
                let d = self.dict(id)?;
                sequence_reply(d.len(), d.entries().map(|(k, _)| k.as_slice()))
            }
            op::VALUES => {
                let d = self.dict(id)?;
                sequence_reply(d.len(), d.entries().map(|(_, v)| v.as_slice()))
            }
            op::ITEMS => {
                let d = self.dict(id)?;
                sequence_reply(d.len(), d.entries().flat_map(|(k, v)| [k.as_slice(), v.as_slice()]))
            }
            // User code runs only outside the state lock (see
            // `values::handle_unlocked`); such a request cannot be part of
            // a batch.
            op::UPDATE => Err((code::BAD_REQUEST, format!("operation {opcode} cannot be part of a batch"))),
            op::PUSH => {
                let v = r.rest().to_vec();
                self.list(id)?.push(v);
                unit()
            }
            op::LGET => {
                let i = r.u64().map_err(truncated)?;
                let l = self.list(id)?;
                Ok(option_reply(usize::try_from(i).ok().and_then(|i| l.get(i)).map(Vec::as_slice)))
            }
            op::LSET => {
                let i = r.u64().map_err(truncated)?;
                let v = r.rest().to_vec();
                let slot = usize::try_from(i).ok().and_then(|i| self.list(id).ok()?.get_mut(i));
                match slot {
                    Some(s) => {
                        *s = v;
                        unit()
                    }
                    None => {
                        self.list(id)?;
                        Err((code::INDEX, format!("list index {i} out of range")))
                    }
                }
            }
            op::POP => {
                let has_index = r.u8().map_err(truncated)? != 0;
                let i = r.u64().map_err(truncated)?;
                let l = self.list(id)?;
                let v = if has_index {
                    match usize::try_from(i).ok().filter(|&i| i < l.len()) {
                        Some(i) => Some(l.remove(i)),
                        None => return Err((code::INDEX, format!("pop index {i} out of range"))),
                    }
                } else {
                    l.pop()
                };
                Ok(option_reply(v.as_deref()))
            }
            op::LINSERT => {
                let i = r.u64().map_err(truncated)?;
                let v = r.rest().to_vec();
                let l = self.list(id)?;
                let i = usize::try_from(i).unwrap_or(usize::MAX).min(l.len());
                l.insert(i, v);
                unit()
            }
            op::TO_VEC => {
                let l = self.list(id)?;
                sequence_reply(l.len(), l.iter().map(Vec::as_slice))
            }
            op::NEW_SYNC => {
                let kind = r.u8().map_err(truncated)?;
                let (arg, arg2, fingerprint) =
                    (r.u64().map_err(truncated)?, r.u64().map_err(truncated)?, r.u64().map_err(truncated)?);
                let name = std::str::from_utf8(r.rest())
                    .map_err(|_| (code::BAD_REQUEST, "object name is not UTF-8".to_owned()))?;
                let id = self.new_or_named_sync(kind, arg, arg2, fingerprint, name)?;
                Ok([&[OK][..], &id.to_le_bytes()].concat())
            }
            op::SYNC_FIRST..=op::SYNC_LAST => {
                Err((code::BAD_REQUEST, format!("operation {opcode} may block: it cannot travel in a batch")))
            }
            op::NEW_NAMESPACE..=op::CALL => self.apply_values(opcode, id, &mut r),
            op::SHUTDOWN if owner => {
                *stop = true;
                unit()
            }
            other => Err((code::BAD_REQUEST, format!("unknown or forbidden operation {other}"))),
        }
    }

    /// A new object, or (named) the existing one if its kind and types
    /// match.
    fn new_or_named(&mut self, dict: bool, fingerprint: u64, name: &str) -> Result<u64, Failure> {
        let data = || if dict { Data::Dict(Dict::default()) } else { Data::List(Vec::new()) };
        if name.is_empty() {
            return Ok(self.new_object(fingerprint, data()));
        }
        if let Some(&id) = self.names.get(name) {
            let o = self.objects.get(&id).ok_or_else(|| (code::NO_OBJECT, "named object vanished".to_owned()))?;
            let same_kind = matches!((&o.data, dict), (Data::Dict(_), true) | (Data::List(_), false));
            if !same_kind || o.fingerprint != fingerprint {
                let what = match &o.data {
                    Data::Dict(_) => "dict",
                    Data::List(_) => "list",
                    _ => values::kind_name(&o.data),
                };
                let m = format!("the object named {name:?} is a {what} of other element types than asked for");
                return Err(protocol::type_error(fingerprint, o.fingerprint, &m));
            }
            return Ok(id);
        }
        let id = self.new_object(fingerprint, data());
        self.names.insert(name.to_owned(), id);
        Ok(id)
    }
}

impl State {
    /// A new blocking object, or (named) the existing one if its kind and
    /// types (the fingerprint) match.
    fn new_or_named_sync(&mut self, kind: u8, arg: u64, arg2: u64, fp: u64, name: &str) -> Result<u64, Failure> {
        if let Some(&id) = self.names.get(name).filter(|_| !name.is_empty()) {
            let o = self.objects.get(&id).ok_or_else(|| (code::NO_OBJECT, "named object vanished".to_owned()))?;
            if !matches!(o.data, Data::Sync(_)) || o.fingerprint != fp {
                return Err((code::TYPE, format!("the object named {name:?} is of another kind or type")));
            }
            return Ok(id);
        }
        let obj = Served::new(kind, arg, arg2, |id| self.blocking(id))?;
        let id = self.new_object(fp, Data::Sync(obj));
        if !name.is_empty() {
            self.names.insert(name.to_owned(), id);
        }
        Ok(id)
    }

    /// The blocking object `id`, if there is one.
    fn blocking(&self, id: u64) -> Option<Served> {
        match self.objects.get(&id).map(|o| &o.data) {
            Some(Data::Sync(s)) => Some(s.clone()),
            _ => None,
        }
    }
}

/// Runs an update function (see [`UpdateTrampoline`]); a panic is caught
/// and reported. Never called under the state lock.
fn run_update(fns: &[u8], old: Option<Vec<u8>>, arg: Vec<u8>) -> Result<Option<Vec<u8>>, Failure> {
    let fail = |m: String| (code::UPDATE, m);
    let (tramp, f): (FnRef, FnRef) = codec::decode(fns).map_err(|e| (code::BAD_REQUEST, e.to_string()))?;
    let tramp: UpdateTrampoline =
        tramp.resolve().map_err(|e| fail(format!("cannot find the update function in the server: {e}")))?;
    match catch_unwind(AssertUnwindSafe(|| tramp(f, UpdateCall { old, arg }))) {
        Ok(Ok(new)) => Ok(new),
        Ok(Err(m)) => Err(fail(m)),
        Err(p) => Err(fail(format!("the update function panicked: {}", panic_message(p.as_ref())))),
    }
}

/// What the server's threads share.
#[derive(Debug)]
struct Server {
    state: Mutex<State>,
    nonce: u64,
    me: Token,
    accept: Queue<Vec<u8>>,
    stopping: AtomicBool,
}

/// The server process's task (a plain `fn` so every start method can run
/// it). Returns when the owner asks it to stop.
pub(crate) fn server_main(args: ServerArgs) {
    let ServerArgs { accept, boot, nonce } = args;
    // Registered before the owner's `start` returns: from then on a dead
    // server shows as a dead consumer of the accept queue.
    if accept.register_consumer().is_err() {
        return;
    }
    let Ok(me) = token::current() else { return };
    // The server knows its own manager: proxies of it inside the values
    // user code decodes here (a served object holding a list proxy)
    // resolve, and user code may use them. Kept until the server returns.
    let _known = refs::remember(Arc::new(Info { nonce, accept: accept.clone(), server: me, name: None }));
    let server = Arc::new(Server {
        state: Mutex::new(State::default()),
        nonce,
        me,
        accept: accept.clone(),
        stopping: AtomicBool::new(false),
    });
    if boot.send_bytes(&ack(nonce, me)).is_err() {
        return;
    }
    let owner = {
        let server = server.clone();
        std::thread::Builder::new().name("manager-owner".into()).spawn(move || serve(&server, &boot, true))
    };
    if owner.is_err() {
        return;
    }
    while !server.stopping.load(Ordering::Acquire) {
        match accept.get_timeout(Duration::from_secs(1)) {
            Ok(hello) => accept_client(&server, &hello),
            Err(GetTimeoutError::Timeout) => {}
            // Every client that ever said hello has exited: wait for new
            // ones at a calm pace (the owner normally keeps this from
            // happening: it registers as a producer).
            Err(GetTimeoutError::Disconnected) => std::thread::sleep(Duration::from_millis(20)),
            Err(GetTimeoutError::Closed | GetTimeoutError::ShutDown | GetTimeoutError::Failed(_)) => break,
        }
    }
}

/// Checks a hello, opens the client's pipe, and starts its thread.
fn accept_client(server: &Arc<Server>, hello: &[u8]) {
    let mut r = Reader::new(hello);
    // The magic is checked before anything else is looked at.
    if r.u64() != Ok(MAGIC) {
        return;
    }
    let Ok(want) = r.u64() else { return };
    let Ok(name) = std::str::from_utf8(r.rest()) else { return };
    if !name.starts_with(PIPE_PREFIX) || name.len() > MAX_PIPE_NAME {
        return;
    }
    let Ok((_, conn)) = Pipe::open(name) else { return };
    // Opened: the name is no longer needed, and nothing lingers even if
    // the client dies before it removes the name itself.
    let _ = Segment::unlink(name);
    if want != 0 && want != server.nonce {
        let msg = "this proxy belongs to an earlier manager that ran under this name";
        let _ = conn.send_bytes(&protocol::error_reply(code::STALE, msg));
        return;
    }
    let s = server.clone();
    let theirs = conn.clone();
    let started = std::thread::Builder::new().name("manager-client".into()).spawn(move || {
        if theirs.send_bytes(&ack(s.nonce, s.me)).is_ok() {
            serve(&s, &theirs, false);
        }
    });
    if started.is_err() {
        let _ = conn.send_bytes(&protocol::error_reply(code::BAD_REQUEST, "the server cannot start a thread"));
    }
}

/// Serves one client until its pipe reports it gone (or the server stops).
fn serve(server: &Server, conn: &Connection, owner: bool) {
    let mut batch: Vec<Vec<u8>> = Vec::with_capacity(MAX_BATCH);
    let mut replies: Vec<Vec<u8>> = Vec::with_capacity(MAX_BATCH);
    loop {
        match conn.recv_bytes() {
            Ok(b) => batch.push(b),
            Err(_) => return, // Disconnected: the client is gone
        }
        while batch.len() < MAX_BATCH {
            match conn.try_recv_bytes() {
                Ok(b) => batch.push(b),
                Err(_) => break,
            }
        }
        let mut stop = false;
        {
            // The state lock is held across the requests of a batch, but
            // never while user code runs (`values::handle_unlocked`) nor
            // while a request waits (`served::handle`: looked up under the
            // lock, served without it; a client gone while waiting shows
            // in the poll, as a waiting request is alone on its
            // connection). Any panic in handling a request becomes its
            // error reply: the client never waits for a reply that will
            // not come.
            let mut state = None;
            for req in batch.drain(..) {
                let reply = catch_unwind(AssertUnwindSafe(|| {
                    if served::is_sync_request(&req) {
                        state = None;
                        let obj = server.state.lock().blocking(served::request_id(&req));
                        let gone = || !matches!(conn.poll(Duration::ZERO), Ok(false));
                        served::handle(obj, &req, &gone)
                    } else if values::runs_user_code(&req) {
                        state = None;
                        values::handle_unlocked(server, &req)
                    } else {
                        state.get_or_insert_with(|| server.state.lock()).handle(&req, owner, &mut stop)
                    }
                }));
                replies.push(reply.unwrap_or_else(|p| {
                    let m = format!("the server failed on this request: {}", panic_message(p.as_ref()));
                    protocol::error_reply(code::BAD_REQUEST, &m)
                }));
            }
        }
        for r in replies.drain(..) {
            if conn.send_bytes(&r).is_err() {
                return;
            }
        }
        if stop {
            // Release: the acceptor's Acquire load sees it and returns.
            server.stopping.store(true, Ordering::Release);
            server.accept.close();
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(op: u8, id: u64, payload: &[u8]) -> Vec<u8> {
        let mut r = protocol::request(op, id);
        r.extend_from_slice(payload);
        r
    }

    fn new_dict(s: &mut State, fp: u64, name: &str) -> Vec<u8> {
        let mut p = fp.to_le_bytes().to_vec();
        p.extend_from_slice(name.as_bytes());
        s.handle(&req(op::NEW_DICT, 0, &p), false, &mut false)
    }

    #[test]
    fn dict_keeps_insertion_order() {
        let mut d = Dict::default();
        assert_eq!(d.insert(b"b", vec![1]), None);
        assert_eq!(d.insert(b"a", vec![2]), None);
        assert_eq!(d.insert(b"b", vec![3]), Some(vec![1]));
        let keys: Vec<_> = d.entries().map(|(k, _)| k.clone()).collect();
        assert_eq!(keys, [b"b".to_vec(), b"a".to_vec()]);
        assert_eq!(d.remove(b"b"), Some(vec![3]));
        d.insert(b"b", vec![4]);
        let keys: Vec<_> = d.entries().map(|(k, _)| k.clone()).collect();
        assert_eq!(keys, [b"a".to_vec(), b"b".to_vec()]);
    }

    #[test]
    fn garbage_requests_get_error_replies() {
        let mut s = State::default();
        let mut stop = false;
        for garbage in [&[][..], &[op::GET], &[200, 0, 0, 0, 0, 0, 0, 0, 0], &[op::INSERT, 1, 0, 0, 0, 0, 0, 0, 0, 9]] {
            let r = s.handle(garbage, false, &mut stop);
            assert_eq!(r[0], protocol::ERR, "{garbage:?}");
        }
        // Unknown id, wrong kind, shutdown from a non-owner.
        assert_eq!(s.handle(&req(op::GET, 99, b"k"), false, &mut stop)[0], protocol::ERR);
        let id = u64::from_le_bytes(new_dict(&mut s, 7, "")[1..9].try_into().expect("id"));
        assert_eq!(s.handle(&req(op::PUSH, id, b"v"), false, &mut stop)[0], protocol::ERR);
        assert_eq!(s.handle(&req(op::SHUTDOWN, 0, b""), false, &mut stop)[0], protocol::ERR);
        assert!(!stop);
        let mut fns = Vec::new();
        protocol::put_bytes(&mut fns, b"\xff\xff").expect("small");
        protocol::put_bytes(&mut fns, b"k").expect("small");
        assert_eq!(s.handle(&req(op::UPDATE, id, &fns), false, &mut stop)[0], protocol::ERR);
        // A batch answers each part; batches do not nest.
        let mut batch = protocol::request(op::BATCH, 0);
        protocol::put_bytes(&mut batch, &req(op::LEN, id, b"")).expect("small");
        protocol::put_bytes(&mut batch, &req(op::BATCH, 0, b"")).expect("small");
        let reply = s.handle(&batch, false, &mut stop);
        let framed = [&2u64.to_le_bytes()[..], &reply[1..]].concat();
        let parts = protocol::sequence(&framed, 1).expect("two parts");
        assert_eq!(parts[0], [&[OK][..], &0u64.to_le_bytes()].concat());
        assert_eq!(parts[1][0], protocol::ERR);
        batch.extend_from_slice(&[9, 0]);
        assert_eq!(s.handle(&batch, false, &mut stop)[0], protocol::ERR, "a truncated part");
        // Blocking objects: a bad kind, a truncated make, a blocking op in
        // a batch (it would wait under the state lock), a named lock asked
        // for as another kind.
        let mut p = vec![99];
        p.extend_from_slice(&[0; 24]);
        assert_eq!(s.handle(&req(op::NEW_SYNC, 0, &p), false, &mut stop)[0], protocol::ERR);
        assert_eq!(s.handle(&req(op::NEW_SYNC, 0, &[2, 0]), false, &mut stop)[0], protocol::ERR);
        let mut lock = vec![served::kind::LOCK];
        lock.extend_from_slice(&[0; 16]);
        lock.extend_from_slice(&5u64.to_le_bytes());
        lock.extend_from_slice(b"l");
        assert_eq!(s.handle(&req(op::NEW_SYNC, 0, &lock), false, &mut stop)[0], OK);
        let lock_id =
            u64::from_le_bytes(s.handle(&req(op::NEW_SYNC, 0, &lock), false, &mut stop)[1..9].try_into().expect("id"));
        assert!(s.blocking(lock_id).is_some());
        *lock.last_mut().expect("name") = b'm';
        lock[17] = 6; // another fingerprint
        assert_eq!(s.handle(&req(op::NEW_SYNC, 0, &lock), false, &mut stop)[0], OK);
        *lock.last_mut().expect("name") = b'l';
        assert_eq!(s.handle(&req(op::NEW_SYNC, 0, &lock), false, &mut stop)[..2], [protocol::ERR, code::TYPE]);
        assert_eq!(new_dict(&mut s, 5, "l")[..2], [protocol::ERR, code::TYPE], "a lock is not a dict");
        let mut batch = protocol::request(op::BATCH, 0);
        protocol::put_bytes(&mut batch, &req(op::Q_GET, lock_id, &[0; 28])).expect("small");
        let reply = s.handle(&batch, false, &mut stop);
        let framed = [&1u64.to_le_bytes()[..], &reply[1..]].concat();
        assert_eq!(protocol::sequence(&framed, 1).expect("one part")[0][0], protocol::ERR);
        assert_eq!(s.handle(&req(op::SHUTDOWN, 0, b""), true, &mut stop), [OK]);
        assert!(stop);
    }

    #[test]
    fn named_objects_check_kind_and_types() {
        let mut s = State::default();
        let a = new_dict(&mut s, 7, "x");
        assert_eq!(new_dict(&mut s, 7, "x"), a);
        assert_eq!(new_dict(&mut s, 8, "x")[..2], [protocol::ERR, code::TYPE]);
        let mut p = 7u64.to_le_bytes().to_vec();
        p.extend_from_slice(b"x");
        assert_eq!(s.handle(&req(op::NEW_LIST, 0, &p), false, &mut false)[..2], [protocol::ERR, code::TYPE]);
    }
}
