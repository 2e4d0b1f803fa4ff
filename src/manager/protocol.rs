//! The manager's wire format: compact binary requests and replies that
//! travel as whole pipe messages.
//!
//! A request is `[op: u8][object id: u64 LE][payload]`; a reply is
//! `[OK][payload]` or `[ERR][code: u8][message: UTF-8]`. Payloads are made
//! of byte strings (`[len: u32 LE][bytes]`), `u64`s, and a final "rest"
//! string that runs to the end of the message. Keys, values and arguments
//! inside them are the user's values encoded with the crate's codec; the
//! server stores those bytes and never decodes a user type (except through
//! an update function, see `server.rs`).
//!
//! The accept queue carries a hello, `[MAGIC: u64][manager nonce: u64]
//! [pipe name: UTF-8]` (nonce 0: "whichever manager runs under this name",
//! from [`Manager::connect`](crate::Manager::connect)), and the server acks
//! on the named pipe with `[OK][nonce: u64][token pid: u32][token nonce:
//! u64]` or refuses with an error reply.

use crate::error::{Error, Result};

/// First word of every hello: "SHMPMGR1".
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"SHMPMGR1");

/// Prefix of the client pipes' names (the server opens nothing else).
pub(crate) const PIPE_PREFIX: &str = "shmproc-mgr-";

/// Longest pipe name the server accepts in a hello.
pub(crate) const MAX_PIPE_NAME: usize = 100;

/// Request operations.
pub(crate) mod op {
    /// Make a dict (`id` 0): payload `[fingerprint u64][name rest]` (empty
    /// name: anonymous). Reply: the object id.
    pub(crate) const NEW_DICT: u8 = 1;
    /// Make a list; as [`NEW_DICT`].
    pub(crate) const NEW_LIST: u8 = 2;
    /// Number of entries (dict or list). Reply: `u64`.
    pub(crate) const LEN: u8 = 3;
    /// Remove every entry (dict or list). Reply: empty.
    pub(crate) const CLEAR: u8 = 4;
    /// Dict insert: `[key][value rest]`. Reply: option of the old value.
    pub(crate) const INSERT: u8 = 10;
    /// Dict get: `[key rest]`. Reply: option of the value.
    pub(crate) const GET: u8 = 11;
    /// Dict remove: `[key rest]`. Reply: option of the value.
    pub(crate) const REMOVE: u8 = 12;
    /// Dict membership: `[key rest]`. Reply: one byte, 0 or 1.
    pub(crate) const CONTAINS: u8 = 13;
    /// Dict keys in insertion order. Reply: sequence.
    pub(crate) const KEYS: u8 = 14;
    /// Dict values in insertion order. Reply: sequence.
    pub(crate) const VALUES: u8 = 15;
    /// Dict items in insertion order. Reply: sequence of key, value pairs.
    pub(crate) const ITEMS: u8 = 16;
    /// Dict server-side update: `[fns][key][arg rest]`, `fns` the encoded
    /// `(trampoline, function)` pair of `FnRef`s. Reply: option of the new
    /// value.
    pub(crate) const UPDATE: u8 = 17;
    /// List push: `[value rest]`. Reply: empty.
    pub(crate) const PUSH: u8 = 20;
    /// List get: `[index u64]`. Reply: option of the value.
    pub(crate) const LGET: u8 = 21;
    /// List set: `[index u64][value rest]`. Reply: empty (error if out of
    /// range).
    pub(crate) const LSET: u8 = 22;
    /// List pop: `[has index u8][index u64]`. Reply: option of the value.
    pub(crate) const POP: u8 = 23;
    /// List insert: `[index u64][value rest]` (index clamped). Reply: empty.
    pub(crate) const LINSERT: u8 = 24;
    /// List contents. Reply: sequence.
    pub(crate) const TO_VEC: u8 = 25;
    /// Stop the server (its owner only sends it). Reply: empty.
    pub(crate) const SHUTDOWN: u8 = 30;
    /// Several requests in one message (`id` 0): each a byte string.
    /// Reply: each sub-request's reply as a byte string, in order. Batches
    /// do not nest.
    pub(crate) const BATCH: u8 = 31;

    // Blocking objects (40..=79; `served.rs`). Every request after
    // NEW_SYNC carries the caller header `[pid u32][token u64][thread u64]
    // [wait ns u64]` (wait: 0 do not wait, `u64::MAX` forever) before its
    // payload; they never travel in a batch.

    /// Make a blocking object (`id` 0): `[kind u8][arg u64][arg2 u64]
    /// [fingerprint u64][name rest]`. Reply: the object id.
    pub(crate) const NEW_SYNC: u8 = 40;
    /// Queue put: `[item rest]`. Reply: empty.
    pub(crate) const Q_PUT: u8 = 41;
    /// Queue get. Reply: the item.
    pub(crate) const Q_GET: u8 = 42;
    /// Queue size. Reply: `[len u64][maxsize u64]`.
    pub(crate) const Q_SIZE: u8 = 43;
    /// Joinable queue: one item done. Reply: empty.
    pub(crate) const Q_TASK_DONE: u8 = 44;
    /// Joinable queue: wait until every item is done. Reply: empty.
    pub(crate) const Q_JOIN: u8 = 45;
    /// Acquire a lock, rlock, semaphore or condition's lock. Reply:
    /// `[died u8][pid u32]` (died 1: taken over from a dead holder `pid`).
    pub(crate) const ACQUIRE: u8 = 50;
    /// Release (as [`ACQUIRE`]). Reply: empty.
    pub(crate) const RELEASE: u8 = 51;
    /// Event set. Reply: empty.
    pub(crate) const EV_SET: u8 = 55;
    /// Event clear. Reply: empty.
    pub(crate) const EV_CLEAR: u8 = 56;
    /// Event state. Reply: one byte.
    pub(crate) const EV_IS_SET: u8 = 57;
    /// Event wait. Reply: empty (error TIMEOUT if the time ran out).
    pub(crate) const EV_WAIT: u8 = 58;
    /// Condition wait (the caller holds its lock). Reply: `[notified u8]
    /// [died u8][pid u32]` (the lock is held again in every case).
    pub(crate) const CV_WAIT: u8 = 60;
    /// Condition notify: `[n u64]`. Reply: empty.
    pub(crate) const CV_NOTIFY: u8 = 61;
    /// Barrier wait. Reply: `[arrival index u64]`.
    pub(crate) const BAR_WAIT: u8 = 65;
    /// Barrier reset. Reply: empty.
    pub(crate) const BAR_RESET: u8 = 66;
    /// Barrier abort. Reply: empty.
    pub(crate) const BAR_ABORT: u8 = 67;
    /// Barrier state. Reply: `[parties u64][waiting u64][broken u8]`.
    pub(crate) const BAR_INFO: u8 = 68;
    /// First and last op codes of the blocking objects' requests.
    pub(crate) const SYNC_FIRST: u8 = 41;
    pub(crate) const SYNC_LAST: u8 = 79;
    // Namespaces, values, arrays, served user objects: 80..=119
    // (`server/values.rs`). Every `NEW_*` takes `id` 0 and answers the
    // object id; a name that exists gives that object if kind and types
    // match (the initial contents are then ignored).
    /// Make a namespace: `[fingerprint u64][name bytes]`.
    pub(crate) const NEW_NAMESPACE: u8 = 80;
    /// Make a value: `[fingerprint u64][name bytes][value rest]`.
    pub(crate) const NEW_VALUE: u8 = 81;
    /// Make an array: `[fingerprint u64][name bytes][elements: byte
    /// strings to the end]`.
    pub(crate) const NEW_ARRAY: u8 = 82;
    /// Make a served object: `[fingerprint u64][name bytes][constructor
    /// FnRef bytes][value rest]`.
    pub(crate) const NEW_OBJECT: u8 = 83;
    /// Namespace set: `[field bytes][field fingerprint u64][value rest]`.
    /// Reply: empty.
    pub(crate) const NS_SET: u8 = 84;
    /// Namespace get: `[field rest]`. Reply: `[0]` or `[1][fingerprint
    /// u64][value rest]` (the client checks the fingerprint).
    pub(crate) const NS_GET: u8 = 85;
    /// Namespace remove: `[field rest]`. Reply: one byte, 0 or 1.
    pub(crate) const NS_REMOVE: u8 = 86;
    /// Namespace membership: `[field rest]`. Reply: one byte, 0 or 1.
    pub(crate) const NS_CONTAINS: u8 = 87;
    /// Namespace field names, sorted. Reply: sequence.
    pub(crate) const NS_FIELDS: u8 = 88;
    /// Value get. Reply: `[value rest]`.
    pub(crate) const VGET: u8 = 90;
    /// Value set: `[value rest]`. Reply: `[old value rest]`.
    pub(crate) const VSET: u8 = 91;
    /// Value server-side update: `[fns bytes][arg rest]` (as [`UPDATE`]).
    /// Reply: `[new value rest]`.
    pub(crate) const VUPDATE: u8 = 92;
    /// Array length. Reply: `u64`.
    pub(crate) const ALEN: u8 = 95;
    /// Array get: `[index u64]`. Reply: `[value rest]` (error if out of
    /// range).
    pub(crate) const AGET: u8 = 96;
    /// Array set: `[index u64][value rest]`. Reply: empty.
    pub(crate) const ASET: u8 = 97;
    /// Array slice set: `[start u64][elements: byte strings to the end]`,
    /// all or nothing. Reply: empty.
    pub(crate) const ASLICE: u8 = 98;
    /// Array contents. Reply: sequence.
    pub(crate) const AVEC: u8 = 99;
    /// Served object method call: `[method bytes][arguments rest]`. Reply:
    /// `[result rest]`.
    pub(crate) const CALL: u8 = 100;
}

/// Reply status: success.
pub(crate) const OK: u8 = 0;
/// Reply status: error (`[code][message]` follow).
pub(crate) const ERR: u8 = 1;

/// Error codes of error replies.
pub(crate) mod code {
    /// The request was malformed (unknown op, truncated payload, ...).
    pub(crate) const BAD_REQUEST: u8 = 1;
    /// No object has that id, or it is of the other kind.
    pub(crate) const NO_OBJECT: u8 = 2;
    /// A list index was out of range.
    pub(crate) const INDEX: u8 = 3;
    /// A named object holds another type. The message starts with the two
    /// type fingerprints (asked for, found; 16 hex digits each): see
    /// [`type_error`](super::type_error).
    pub(crate) const TYPE: u8 = 4;
    /// A server-side update function failed or panicked.
    pub(crate) const UPDATE: u8 = 5;
    /// The hello named another manager instance (restarted under the name).
    pub(crate) const STALE: u8 = 6;
    /// A blocking call's wait ended (or, not waiting, it would have had to).
    pub(crate) const TIMEOUT: u8 = 40;
    /// The calling thread holds this (non-reentrant) lock already.
    pub(crate) const DEADLOCK: u8 = 41;
    /// A release or wait or notify without holding the lock.
    pub(crate) const NOT_OWNER: u8 = 42;
    /// The barrier is broken; the message is a dead party's pid or empty.
    pub(crate) const BROKEN: u8 = 43;
    /// Released or marked done more often than acquired or put.
    pub(crate) const VALUE: u8 = 44;
    /// A served object has no such method (the message is its name).
    pub(crate) const NO_METHOD: u8 = 80;
    /// A served object's method failed or panicked.
    pub(crate) const CALL: u8 = 81;
    /// An array index or slice was out of range.
    pub(crate) const ARRAY_INDEX: u8 = 82;
}

/// A [`code::TYPE`] failure: a named object holds types of fingerprint
/// `found`, not the `expected` ones asked for.
pub(crate) fn type_error(expected: u64, found: u64, what: &str) -> (u8, String) {
    (code::TYPE, format!("{expected:016x}{found:016x}{what}"))
}

/// Starts a request.
pub(crate) fn request(op: u8, id: u64) -> Vec<u8> {
    let mut r = Vec::with_capacity(32);
    r.push(op);
    r.extend_from_slice(&id.to_le_bytes());
    r
}

/// Appends a length-prefixed byte string.
pub(crate) fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) -> Result<()> {
    let len = u32::try_from(b.len()).map_err(|_| Error::TooLarge { len: b.len(), max: u32::MAX as usize })?;
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(b);
    Ok(())
}

/// An error reply.
pub(crate) fn error_reply(code: u8, message: &str) -> Vec<u8> {
    let mut r = Vec::with_capacity(2 + message.len());
    r.push(ERR);
    r.push(code);
    r.extend_from_slice(message.as_bytes());
    r
}

/// A reader over a received message; every read is bounds-checked (the
/// bytes come from another process).
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

/// A message ended early or had a length that does not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Truncated;

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Truncated> {
        if self.buf.len() < n {
            return Err(Truncated);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Truncated> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32, Truncated> {
        let b: [u8; 4] = self.take(4)?.try_into().map_err(|_| Truncated)?;
        Ok(u32::from_le_bytes(b))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, Truncated> {
        let b: [u8; 8] = self.take(8)?.try_into().map_err(|_| Truncated)?;
        Ok(u64::from_le_bytes(b))
    }

    /// A length-prefixed byte string.
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], Truncated> {
        let len = usize::try_from(self.u32()?).map_err(|_| Truncated)?;
        self.take(len)
    }

    /// Everything left.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    /// Whether nothing is left.
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// Turns a reply into its payload, or the error it carries.
pub(crate) fn payload(reply: &[u8]) -> Result<&[u8]> {
    match reply.split_first() {
        Some((&OK, rest)) => Ok(rest),
        Some((&ERR, rest)) => {
            let (code, message) = rest.split_first().map_or((code::BAD_REQUEST, &[][..]), |(c, m)| (*c, m));
            let hex = |b: Option<&[u8]>| u64::from_str_radix(std::str::from_utf8(b?).ok()?, 16).ok();
            if let (code::TYPE, Some(expected), Some(found)) = (code, hex(message.get(..16)), hex(message.get(16..32)))
            {
                return Err(Error::LayoutMismatch { expected, found });
            }
            let message = String::from_utf8_lossy(message).into_owned();
            Err(match code {
                code::INDEX => Error::InvalidArgument { what: "list index out of range" },
                code::ARRAY_INDEX => Error::InvalidArgument { what: "array index out of range" },
                code::STALE => Error::ManagerDead,
                code::TIMEOUT => Error::Timeout,
                code::DEADLOCK => Error::Deadlock,
                code::NOT_OWNER => Error::NotOwner,
                code::BROKEN => Error::Broken { dead: message.parse().ok() },
                code::NO_METHOD => {
                    Error::InvalidArgument { what: "the served object has no such method (see Served::methods)" }
                }
                _ => Error::Remote { message },
            })
        }
        _ => Err(Error::Corrupt { what: "manager reply" }),
    }
}

/// A reply that is an option of bytes: `[0]` or `[1][bytes rest]`.
pub(crate) fn option(p: &[u8]) -> Result<Option<&[u8]>> {
    match p.split_first() {
        Some((0, [])) => Ok(None),
        Some((1, rest)) => Ok(Some(rest)),
        _ => Err(Error::Corrupt { what: "manager reply (option)" }),
    }
}

/// A reply that is a sequence of `width` byte strings per element.
pub(crate) fn sequence(p: &[u8], width: usize) -> Result<Vec<&[u8]>> {
    let bad = |_| Error::Corrupt { what: "manager reply (sequence)" };
    let mut r = Reader::new(p);
    let n = r.u64().map_err(bad)?;
    // Each string takes at least its 4-byte length: a count larger than
    // the message allows is refused before allocating for it.
    let strings = usize::try_from(n).ok().and_then(|n| n.checked_mul(width)).filter(|s| s.saturating_mul(4) <= p.len());
    let strings = strings.ok_or_else(|| Error::Corrupt { what: "manager reply (sequence length)" })?;
    let mut out = Vec::with_capacity(strings);
    for _ in 0..strings {
        out.push(r.bytes().map_err(bad)?);
    }
    if !r.is_empty() {
        return Err(Error::Corrupt { what: "manager reply (trailing bytes)" });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_refuses_truncation() {
        let mut buf = Vec::new();
        put_bytes(&mut buf, b"abc").expect("small");
        let mut r = Reader::new(&buf);
        assert_eq!(r.bytes(), Ok(&b"abc"[..]));
        assert!(r.is_empty());
        let mut r = Reader::new(&buf[..5]);
        assert_eq!(r.bytes(), Err(Truncated));
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff, 1]);
        assert_eq!(r.bytes(), Err(Truncated));
        assert_eq!(Reader::new(&[1, 2]).u64(), Err(Truncated));
    }

    #[test]
    fn replies_decode_or_fail_cleanly() {
        assert_eq!(payload(&[OK, 7]).expect("ok"), &[7]);
        assert!(matches!(payload(&error_reply(code::INDEX, "x")), Err(Error::InvalidArgument { .. })));
        assert!(matches!(payload(&error_reply(code::STALE, "x")), Err(Error::ManagerDead)));
        assert!(matches!(payload(&error_reply(code::NO_METHOD, "m")), Err(Error::InvalidArgument { .. })));
        assert!(
            matches!(payload(&error_reply(code::ARRAY_INDEX, "x")), Err(Error::InvalidArgument { what }) if what.contains("array"))
        );
        let (c, m) = type_error(7, u64::MAX, "other types");
        assert!(matches!(payload(&error_reply(c, &m)), Err(Error::LayoutMismatch { expected: 7, found: u64::MAX })));
        assert!(matches!(payload(&error_reply(code::TYPE, "no")), Err(Error::Remote { .. })), "no fingerprints");
        assert!(matches!(payload(&[]), Err(Error::Corrupt { .. })));
        assert!(matches!(payload(&[9]), Err(Error::Corrupt { .. })));
        assert_eq!(option(&[0]).expect("none"), None);
        assert_eq!(option(&[1, 5]).expect("some"), Some(&[5][..]));
        assert!(option(&[2]).is_err());
        let mut seq = 2u64.to_le_bytes().to_vec();
        put_bytes(&mut seq, b"a").expect("small");
        put_bytes(&mut seq, b"").expect("small");
        assert_eq!(sequence(&seq, 1).expect("seq"), [&b"a"[..], &b""[..]]);
        assert!(sequence(&seq, 2).is_err());
        assert!(sequence(&u64::MAX.to_le_bytes(), 1).is_err());
    }
}
