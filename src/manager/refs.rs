//! How a proxy travels: the form that works inside a manager's own values
//! (a dict of lists, a namespace field holding a proxy) as well as in a
//! child's arguments and through queues.
//!
//! A proxy encodes as `(manager nonce, object id, type fingerprint,
//! manager info)`, the info being the encoded [`Info`] when it can be
//! encoded here: inside a child's arguments always (segments travel by
//! descriptor), elsewhere only for a named manager (its accept queue
//! travels by name). A proxy of an unnamed manager stored in a value
//! carries no info: it is a reference "object N of the manager with nonce
//! X", resolved in the decoding process against the managers it knows (the
//! registry below). A value read through a proxy of manager X is decoded
//! in a process that holds X's info, so a proxy of X inside it always
//! resolves; a proxy of another, unnamed manager resolves only in
//! processes that know that manager, and elsewhere is refused with a typed
//! error ([`Error::Codec`] naming the reason).
//!
//! The nonce makes the old-manager rule hold for every form: a proxy of
//! an earlier manager that ran under the same name resolves to that
//! instance, which the new server refuses (`STALE`, [`Error::ManagerDead`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::codec;
use crate::error::Error;
use crate::manager::client::Info;
use crate::manager::schema;
use crate::shm::handoff::de_error;

/// The managers this process knows (holds an `Info` of), by nonce.
static KNOWN: Mutex<Vec<Weak<Info>>> = Mutex::new(Vec::new());

/// Set in a forked child, whose registry starts empty: the handles it
/// inherited register again as they are used ([`touch`]).
static FORKED: AtomicBool = AtomicBool::new(false);

/// In a forked child: a parent thread may have held the lock at the fork,
/// so the registry starts over (it only mirrors what live handles hold).
extern "C" fn after_fork_in_child() {
    crate::sys::process::reset_in_child(&KNOWN, Vec::new());
    FORKED.store(true, Ordering::Relaxed);
}

/// Called before each request of a proxy: in a forked child, records the
/// proxy's manager again (a value read through it may hold references to
/// that manager's objects).
pub(crate) fn touch(info: &Arc<Info>) {
    // Relaxed: set in the child's only thread before anything else runs.
    if FORKED.load(Ordering::Relaxed) {
        remember(info.clone());
    }
}

fn known() -> parking_lot::MutexGuard<'static, Vec<Weak<Info>>> {
    static REGISTERED: AtomicBool = AtomicBool::new(false);
    crate::sys::process::at_fork_child_once(&REGISTERED, after_fork_in_child);
    KNOWN.lock()
}

/// Records `info` as known to this process; returns the `Info` already
/// known for its nonce, if any (so a process maps each manager's accept
/// queue once, however many proxies it decodes).
pub(crate) fn remember(info: Arc<Info>) -> Arc<Info> {
    let mut all = known();
    all.retain(|w| w.strong_count() > 0);
    if let Some(i) = all.iter().filter_map(Weak::upgrade).find(|i| i.nonce == info.nonce) {
        return i;
    }
    all.push(Arc::downgrade(&info));
    info
}

/// The `Info` of manager `nonce`, if this process knows it.
fn lookup(nonce: u64) -> Option<Arc<Info>> {
    known().iter().filter_map(Weak::upgrade).find(|i| i.nonce == nonce)
}

/// What a proxy encodes as.
#[derive(Serialize, Deserialize)]
struct ProxyRepr {
    nonce: u64,
    id: u64,
    fingerprint: u64,
    /// The encoded `Info`, when it could be encoded here.
    info: Option<Vec<u8>>,
}

pub(crate) fn serialize<S: Serializer>(info: &Info, id: u64, fingerprint: u64, s: S) -> Result<S::Ok, S::Error> {
    // Fails (and is left out) for an unnamed manager outside a child's
    // arguments: then the nonce is the reference.
    let encoded = codec::encode(info).ok();
    ProxyRepr { nonce: info.nonce, id, fingerprint, info: encoded }.serialize(s)
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D, expected: u64) -> Result<(Arc<Info>, u64), D::Error> {
    if schema::tracing() {
        // A type fingerprint is being computed: a proxy adds its own
        // fingerprint (its kind and element types) and ends the trace.
        schema::note_value(expected);
        return Err(D::Error::custom("a proxy ends a type trace"));
    }
    let r = ProxyRepr::deserialize(d)?;
    if r.fingerprint != expected {
        return Err(de_error(Error::LayoutMismatch { expected, found: r.fingerprint }));
    }
    if let Some(info) = lookup(r.nonce) {
        return Ok((info, r.id));
    }
    let Some(bytes) = r.info else {
        return Err(de_error(
            "a proxy of an unnamed manager that this process does not know (store proxies of other managers only \
             if those managers are named, or pass the manager or a proxy of it to this process first)",
        ));
    };
    let info: Info = codec::decode(&bytes).map_err(de_error)?;
    if info.nonce != r.nonce {
        return Err(de_error(Error::Corrupt { what: "proxy (manager nonce)" }));
    }
    Ok((remember(Arc::new(info)), r.id))
}
