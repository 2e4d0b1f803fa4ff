//! The server's namespaces, values, arrays and served user objects (ops
//! 80..=119). Like the rest of the server: every request is parsed with
//! bounds checks and anything malformed gets an error reply; user types
//! are never decoded here except by the functions the client names
//! (`FnRef`, checked as for `DictProxy::update`), called under
//! `catch_unwind`.
//!
//! User code (a served object's constructor and methods, a value's or a
//! dict's update function) never runs under the state lock: it may use proxies of this
//! same manager, whose requests other server threads answer under that
//! lock. Under the state lock the server only looks up (and clones the
//! `Arc` of) what the user code needs; a served object's calls then run
//! under the object's own lock, and a value's (a dict's) updates under the
//! value's (dict's) update lock, with the result written back under the
//! state lock only if no `set` (no other request) changed the value (the
//! key's entry) meanwhile (else the update runs again).

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use parking_lot::Mutex;

use super::{Data, Failure, OK, Server, State, option_reply, run_update, sequence_reply, truncated};
use crate::codec;
use crate::error::panic_message;
use crate::manager::custom::{Args, Construct, Served, running};
use crate::manager::protocol::{self, Reader, code, op};
use crate::shm::fnref::FnRef;

/// How often an update runs again because a `set` changed the value while
/// the update function ran, before it gives up with an error.
const MAX_UPDATE_RETRIES: usize = 64;

/// A served user object, as the server holds it: the object under its own
/// lock, and its method names (read once, when it was made).
pub(crate) struct ServedBox {
    object: Mutex<Box<dyn Served>>,
    methods: &'static [&'static str],
}

impl std::fmt::Debug for ServedBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServedBox").field("methods", &self.methods).finish()
    }
}

/// A value, as the server holds it: its bytes, and the lock its updates
/// run under (one at a time, outside the state lock).
#[derive(Debug)]
pub(crate) struct ValueCell {
    bytes: Vec<u8>,
    updating: Arc<Mutex<()>>,
}

impl ValueCell {
    fn new(bytes: Vec<u8>) -> ValueCell {
        ValueCell { bytes, updating: Arc::new(Mutex::new(())) }
    }
}

/// Whether a request runs user code, so that the server must handle it
/// with [`handle_unlocked`] (not under the state lock).
pub(super) fn runs_user_code(req: &[u8]) -> bool {
    matches!(req.first(), Some(&(op::CALL | op::VUPDATE | op::UPDATE | op::NEW_OBJECT)))
}

/// Handles a request that runs user code ([`runs_user_code`]): takes the
/// state lock only to look things up and to store results, never while the
/// user code runs. The reply (an error reply on any failure).
pub(super) fn handle_unlocked(server: &Server, req: &[u8]) -> Vec<u8> {
    unlocked(server, req).unwrap_or_else(|(c, m)| protocol::error_reply(c, &m))
}

fn unlocked(server: &Server, req: &[u8]) -> Result<Vec<u8>, Failure> {
    let mut r = Reader::new(req);
    let opcode = r.u8().map_err(truncated)?;
    let id = r.u64().map_err(truncated)?;
    match opcode {
        op::NEW_OBJECT => {
            let fp = r.u64().map_err(truncated)?;
            let name = utf8(r.bytes().map_err(truncated)?)?;
            let fns = r.bytes().map_err(truncated)?;
            let init = r.rest().to_vec();
            if let Some(reply) = server.state.lock().existing(name, fp, "served object")? {
                return Ok(reply);
            }
            let made = construct(fns, fp, init)?;
            // Another client may have made one under the name meanwhile:
            // `named` then answers with that one (and ours is dropped).
            server.state.lock().named(name, fp, "served object", || Ok(Data::Served(Arc::new(made))))
        }
        op::CALL => {
            let method = utf8(r.bytes().map_err(truncated)?)?;
            let args = r.rest();
            let obj = server.state.lock().served(id)?;
            let Some(&method) = obj.methods.iter().find(|&&m| m == method) else {
                return Err((code::NO_METHOD, format!("method {method:?} (this object has {:?})", obj.methods)));
            };
            let _running = running(server.nonce, id);
            let mut object = obj.object.lock();
            match catch_unwind(AssertUnwindSafe(|| object.call(method, Args::new(args)))) {
                Ok(Ok(reply)) => Ok(ok_with(&reply.into_bytes())),
                Ok(Err(e)) => Err((code::CALL, format!("method {method:?} failed: {e}"))),
                Err(p) => Err((code::CALL, format!("method {method:?} panicked: {}", panic_message(p.as_ref())))),
            }
        }
        op::UPDATE => {
            let fns = r.bytes().map_err(truncated)?;
            let key = r.bytes().map_err(truncated)?;
            let arg = r.rest();
            let updating = server.state.lock().dict(id)?.updating.clone();
            let _running = running(server.nonce, id);
            let _one_at_a_time = updating.lock();
            for _ in 0..MAX_UPDATE_RETRIES {
                let old = server.state.lock().dict(id)?.get(key).cloned();
                let new = run_update(fns, old.clone(), arg.to_vec())?;
                let mut state = server.state.lock();
                let d = state.dict(id)?;
                if d.get(key) == old.as_ref() {
                    return Ok(match new {
                        Some(v) => {
                            let reply = option_reply(Some(&v));
                            d.insert(key, v);
                            reply
                        }
                        None => {
                            d.remove(key);
                            option_reply(None)
                        }
                    });
                }
            }
            Err(changed_under_every_update())
        }
        op::VUPDATE => {
            let fns = r.bytes().map_err(truncated)?;
            let arg = r.rest();
            let updating = server.state.lock().value(id)?.updating.clone();
            let _running = running(server.nonce, id);
            let _one_at_a_time = updating.lock();
            for _ in 0..MAX_UPDATE_RETRIES {
                let old = server.state.lock().value(id)?.bytes.clone();
                let new = run_update(fns, Some(old.clone()), arg.to_vec())?
                    .ok_or_else(|| (code::UPDATE, "the update function returned no value".to_owned()))?;
                let mut state = server.state.lock();
                let v = state.value(id)?;
                if v.bytes == old {
                    v.bytes = new;
                    return Ok(ok_with(&v.bytes));
                }
            }
            Err(changed_under_every_update())
        }
        other => Err((code::BAD_REQUEST, format!("unknown operation {other}"))),
    }
}

fn changed_under_every_update() -> Failure {
    (
        code::UPDATE,
        format!("the value changed under every one of {MAX_UPDATE_RETRIES} updates (does the update function set it?)"),
    )
}

/// What an object of one of these kinds is called in messages.
pub(super) fn kind_name(data: &Data) -> &'static str {
    match data {
        Data::Dict(_) => "dict",
        Data::List(_) => "list",
        Data::Namespace(_) => "namespace",
        Data::Value(_) => "value",
        Data::Array(_) => "array",
        Data::Served(_) => "served object",
        Data::Sync(s) => s.what(),
    }
}

fn no_object(id: u64, kind: &str) -> Failure {
    (code::NO_OBJECT, format!("no {kind} with id {id} on this manager"))
}

fn bad(what: &str) -> Failure {
    (code::BAD_REQUEST, what.to_owned())
}

fn utf8(b: &[u8]) -> Result<&str, Failure> {
    std::str::from_utf8(b).map_err(|_| bad("a name is not UTF-8"))
}

fn ok_with(bytes: &[u8]) -> Vec<u8> {
    [&[OK][..], bytes].concat()
}

fn flag(b: bool) -> Vec<u8> {
    vec![OK, u8::from(b)]
}

/// The byte strings that run to the end of a request.
fn strings(r: &mut Reader<'_>) -> Result<Vec<Vec<u8>>, Failure> {
    let mut out = Vec::new();
    while !r.is_empty() {
        out.push(r.bytes().map_err(truncated)?.to_vec());
    }
    Ok(out)
}

/// Makes the object a served object's constructor (named by `fns`) builds
/// from `init`, and reads its method names; a panic is caught.
fn construct(fns: &[u8], _fp: u64, init: Vec<u8>) -> Result<ServedBox, Failure> {
    let f: FnRef = codec::decode(fns).map_err(|e| bad(&e.to_string()))?;
    let f: Construct =
        f.resolve().map_err(|e| (code::CALL, format!("cannot find the object's constructor in the server: {e}")))?;
    let object = match catch_unwind(AssertUnwindSafe(|| f(init))) {
        Ok(Ok(b)) => b,
        Ok(Err(m)) => return Err((code::CALL, m)),
        Err(p) => {
            return Err((code::CALL, format!("the object's constructor panicked: {}", panic_message(p.as_ref()))));
        }
    };
    match catch_unwind(AssertUnwindSafe(|| object.methods())) {
        Ok(methods) => Ok(ServedBox { object: Mutex::new(object), methods }),
        Err(p) => Err((code::CALL, format!("the object's methods() panicked: {}", panic_message(p.as_ref())))),
    }
}

impl State {
    fn namespace(&mut self, id: u64) -> Result<&mut BTreeMap<String, (u64, Vec<u8>)>, Failure> {
        match self.objects.get_mut(&id).map(|o| &mut o.data) {
            Some(Data::Namespace(n)) => Ok(n),
            _ => Err(no_object(id, "namespace")),
        }
    }

    fn value(&mut self, id: u64) -> Result<&mut ValueCell, Failure> {
        match self.objects.get_mut(&id).map(|o| &mut o.data) {
            Some(Data::Value(v)) => Ok(v),
            _ => Err(no_object(id, "value")),
        }
    }

    fn array(&mut self, id: u64) -> Result<&mut Vec<Vec<u8>>, Failure> {
        match self.objects.get_mut(&id).map(|o| &mut o.data) {
            Some(Data::Array(a)) => Ok(a),
            _ => Err(no_object(id, "array")),
        }
    }

    fn served(&mut self, id: u64) -> Result<Arc<ServedBox>, Failure> {
        match self.objects.get(&id).map(|o| &o.data) {
            Some(Data::Served(s)) => Ok(s.clone()),
            _ => Err(no_object(id, "served object")),
        }
    }

    /// The reply naming the existing object called `name` (if its kind and
    /// types match), or `None` if there is none (or `name` is empty).
    fn existing(&self, name: &str, fingerprint: u64, kind: &'static str) -> Result<Option<Vec<u8>>, Failure> {
        match self.names.get(name) {
            Some(&id) if !name.is_empty() => {
                let o = self.objects.get(&id).ok_or_else(|| (code::NO_OBJECT, "named object vanished".to_owned()))?;
                if kind_name(&o.data) != kind || o.fingerprint != fingerprint {
                    let what = kind_name(&o.data);
                    let m = format!("the object named {name:?} is a {what} of other types than the {kind} asked for");
                    return Err(protocol::type_error(fingerprint, o.fingerprint, &m));
                }
                Ok(Some(ok_with(&id.to_le_bytes())))
            }
            _ => Ok(None),
        }
    }

    /// A new object of `kind`, or (named) the existing one if its kind and
    /// types match; `make` runs only for a new one.
    fn named(
        &mut self,
        name: &str,
        fingerprint: u64,
        kind: &'static str,
        make: impl FnOnce() -> Result<Data, Failure>,
    ) -> Result<Vec<u8>, Failure> {
        if let Some(reply) = self.existing(name, fingerprint, kind)? {
            return Ok(reply);
        }
        let id = self.new_object(fingerprint, make()?);
        if !name.is_empty() {
            self.names.insert(name.to_owned(), id);
        }
        Ok(ok_with(&id.to_le_bytes()))
    }

    pub(super) fn apply_values(&mut self, opcode: u8, id: u64, r: &mut Reader<'_>) -> Result<Vec<u8>, Failure> {
        let unit = || Ok(vec![OK]);
        match opcode {
            op::NEW_NAMESPACE => {
                let fp = r.u64().map_err(truncated)?;
                let name = utf8(r.bytes().map_err(truncated)?)?;
                self.named(name, fp, "namespace", || Ok(Data::Namespace(BTreeMap::new())))
            }
            op::NEW_VALUE => {
                let fp = r.u64().map_err(truncated)?;
                let name = utf8(r.bytes().map_err(truncated)?)?;
                let init = r.rest().to_vec();
                self.named(name, fp, "value", || Ok(Data::Value(ValueCell::new(init))))
            }
            op::NEW_ARRAY => {
                let fp = r.u64().map_err(truncated)?;
                let name = utf8(r.bytes().map_err(truncated)?)?;
                let init = strings(r)?;
                self.named(name, fp, "array", || Ok(Data::Array(init)))
            }
            // User code runs only outside the state lock (see
            // `handle_unlocked`); such a request cannot be part of a batch.
            op::NEW_OBJECT | op::VUPDATE | op::CALL => {
                Err((code::BAD_REQUEST, format!("operation {opcode} cannot be part of a batch")))
            }
            op::NS_SET => {
                let field = utf8(r.bytes().map_err(truncated)?)?.to_owned();
                let fp = r.u64().map_err(truncated)?;
                let value = r.rest().to_vec();
                let ns = self.namespace(id)?;
                ns.insert(field, (fp, value));
                unit()
            }
            op::NS_GET | op::NS_REMOVE | op::NS_CONTAINS => {
                let field = utf8(r.rest())?;
                let ns = self.namespace(id)?;
                Ok(match opcode {
                    op::NS_GET => match ns.get(field) {
                        None => vec![OK, 0],
                        Some((fp, v)) => [&[OK, 1][..], &fp.to_le_bytes(), v].concat(),
                    },
                    op::NS_REMOVE => flag(ns.remove(field).is_some()),
                    _ => flag(ns.contains_key(field)),
                })
            }
            op::NS_FIELDS => {
                let ns = self.namespace(id)?;
                sequence_reply(ns.len(), ns.keys().map(String::as_bytes))
            }
            op::VGET => {
                let v = self.value(id)?;
                Ok(ok_with(&v.bytes))
            }
            op::VSET => {
                let new = r.rest().to_vec();
                let v = self.value(id)?;
                Ok(ok_with(&std::mem::replace(&mut v.bytes, new)))
            }
            op::ALEN | op::AVEC => {
                let a = self.array(id)?;
                if opcode == op::ALEN {
                    Ok(ok_with(&(a.len() as u64).to_le_bytes()))
                } else {
                    sequence_reply(a.len(), a.iter().map(Vec::as_slice))
                }
            }
            op::AGET | op::ASET => {
                let i = r.u64().map_err(truncated)?;
                let new = r.rest();
                let a = self.array(id)?;
                let len = a.len();
                let slot = usize::try_from(i).ok().and_then(|i| a.get_mut(i));
                let slot =
                    slot.ok_or_else(|| (code::ARRAY_INDEX, format!("array index {i} out of range (length {len})")))?;
                if opcode == op::AGET {
                    Ok(ok_with(slot))
                } else {
                    *slot = new.to_vec();
                    unit()
                }
            }
            op::ASLICE => {
                let start = r.u64().map_err(truncated)?;
                let new = strings(r)?;
                let a = self.array(id)?;
                let len = a.len();
                let range = usize::try_from(start)
                    .ok()
                    .and_then(|s| Some(s..s.checked_add(new.len())?))
                    .filter(|r| r.end <= len)
                    .ok_or_else(|| {
                        (code::ARRAY_INDEX, format!("array slice at {start} of {} out of range", new.len()))
                    })?;
                for (slot, v) in a[range].iter_mut().zip(new) {
                    *slot = v;
                }
                unit()
            }
            other => Err((code::BAD_REQUEST, format!("unknown operation {other}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manager::protocol::{self, ERR};

    fn req(op: u8, id: u64, payload: &[u8]) -> Vec<u8> {
        let mut r = protocol::request(op, id);
        r.extend_from_slice(payload);
        r
    }

    fn id_of(reply: &[u8]) -> u64 {
        assert_eq!(reply[0], OK, "{reply:?}");
        u64::from_le_bytes(reply[1..9].try_into().expect("an id"))
    }

    fn new(s: &mut State, op: u8, fp: u64, name: &[u8], rest: &[u8]) -> Vec<u8> {
        let mut p = fp.to_le_bytes().to_vec();
        protocol::put_bytes(&mut p, name).expect("small");
        p.extend_from_slice(rest);
        s.handle(&req(op, 0, &p), false, &mut false)
    }

    // Extends `server::tests::garbage_requests_get_error_replies` to ops
    // 80..=119: truncated, wrong kind, unknown id, out of range, bad names,
    // garbage function references; none panics, each gets an error reply.
    #[test]
    fn garbage_requests_for_values_get_error_replies() {
        let mut s = State::default();
        let mut stop = false;
        let ns = id_of(&new(&mut s, op::NEW_NAMESPACE, 1, b"", b""));
        let v = id_of(&new(&mut s, op::NEW_VALUE, 2, b"", b"\x05"));
        let mut two = Vec::new();
        protocol::put_bytes(&mut two, b"a").expect("small");
        protocol::put_bytes(&mut two, b"b").expect("small");
        let a = id_of(&new(&mut s, op::NEW_ARRAY, 3, b"", &two));
        let mut garbage: Vec<Vec<u8>> = vec![
            // Truncated creations and bad names.
            req(op::NEW_NAMESPACE, 0, &[1, 2]),
            req(op::NEW_VALUE, 0, &[0; 8]),
            req(op::NEW_ARRAY, 0, &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0]),
            [req(op::NEW_NAMESPACE, 0, &[0; 8]), vec![2, 0, 0, 0, 0xff, 0xfe]].concat(),
            // Garbage constructor and update function references.
            [req(op::NEW_OBJECT, 0, &[0; 8]), vec![0, 0, 0, 0, 2, 0, 0, 0, 0xff, 0xff]].concat(),
            [req(op::VUPDATE, v, &[]), vec![2, 0, 0, 0, 0xff, 0xff]].concat(),
            // Unknown ids and wrong kinds.
            req(op::NS_GET, 999, b"x"),
            req(op::NS_SET, v, &[1, 0, 0, 0, b'x', 0, 0, 0, 0, 0, 0, 0, 0]),
            req(op::VGET, ns, &[]),
            req(op::AGET, v, &[0; 8]),
            req(op::CALL, a, &[1, 0, 0, 0, b'm']),
            // Truncated payloads.
            req(op::NS_SET, ns, &[5, 0, 0, 0, b'x']),
            req(op::AGET, a, &[1, 2]),
            req(op::ASLICE, a, &[0; 8 + 3]),
            req(op::CALL, a, &[9]),
            // Out of range, including indices that overflow.
            req(op::AGET, a, &2u64.to_le_bytes()),
            req(op::ASET, a, &u64::MAX.to_le_bytes()),
            [req(op::ASLICE, a, &u64::MAX.to_le_bytes()), vec![0, 0, 0, 0]].concat(),
            [req(op::ASLICE, a, &1u64.to_le_bytes()), two.clone()].concat(),
            // Unused op codes of the range.
            req(op::NS_FIELDS + 1, ns, &[]),
            req(119, 0, &[]),
        ];
        garbage.push(req(op::NS_GET, ns, &[0xff]));
        for g in &garbage {
            let r = s.handle(g, false, &mut stop);
            assert_eq!(r[0], ERR, "{g:?}");
        }
        assert!(!stop);
        // The objects are intact.
        assert_eq!(s.handle(&req(op::VGET, v, &[]), false, &mut stop), [OK, 5]);
        assert_eq!(s.handle(&req(op::ALEN, a, &[]), false, &mut stop), [&[OK][..], &2u64.to_le_bytes()].concat());
        assert_eq!(s.handle(&req(op::NS_FIELDS, ns, &[]), false, &mut stop), [&[OK][..], &0u64.to_le_bytes()].concat());
        // A named object of another kind or fingerprint is refused.
        assert_eq!(
            id_of(&new(&mut s, op::NEW_VALUE, 2, b"n", b"\x01")),
            id_of(&new(&mut s, op::NEW_VALUE, 2, b"n", b""))
        );
        assert_eq!(new(&mut s, op::NEW_VALUE, 3, b"n", b"")[..2], [ERR, code::TYPE]);
        assert_eq!(new(&mut s, op::NEW_NAMESPACE, 2, b"n", b"")[..2], [ERR, code::TYPE]);
    }
}
