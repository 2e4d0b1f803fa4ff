//! Messages larger than a ring can hold travel through a spill segment: the
//! sender writes the message into a fresh named segment and puts only a
//! small reference (length and name) into the ring; the receiver opens the
//! segment, copies the message out and unlinks the name.
//!
//! A spill segment records the channel's creator as its own creator, so
//! [`cleanup_stale`](crate::cleanup_stale) removes it only once the channel's
//! creator is dead, never while the message waits in a live channel. A
//! sender killed before it published the reference, or a receiver killed
//! between reading the reference and unlinking, leaves the segment until the
//! channel's creator has exited and a cleanup runs.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::shm::segment::Segment;

/// The longest spill name (the reference must stay small).
const MAX_NAME: usize = 96;

/// Writes `msg` into a new spill segment and returns the reference to put
/// into the ring: the message length (8 bytes, LE) then the name. `owner`
/// (the channel's creator) is recorded as the segment's creator: the
/// segment then counts as stale for [`cleanup_stale`](crate::cleanup_stale)
/// only once `owner` is dead, not as soon as the sending process exits
/// while the message waits in the channel.
pub(crate) fn spill_out(msg: &[u8], owner: Option<crate::owner::token::Token>) -> Result<Vec<u8>> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nonce = crate::sys::random_u64().map_err(|e| Error::os("getrandom", e))?;
    let name =
        format!("spill.{}.{}.{:016x}", crate::sys::process::pid(), COUNTER.fetch_add(1, Ordering::Relaxed), nonce);
    let mut b = Segment::builder().name(&name).size(msg.len().max(1)).keep_name(true);
    if let Some(owner) = owner {
        b = b.on_behalf_of(owner);
    }
    let seg = b.create()?;
    seg.write_bytes(0, msg)?;
    let mut r = Vec::with_capacity(8 + name.len());
    r.extend_from_slice(&(msg.len() as u64).to_le_bytes());
    r.extend_from_slice(name.as_bytes());
    Ok(r)
}

/// Reads the message a spill reference names into `out` and unlinks the
/// segment. The reference comes from shared memory: it is checked.
pub(crate) fn spill_in(reference: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let corrupt = Error::Corrupt { what: "spill reference" };
    if reference.len() < 9 || reference.len() > 8 + MAX_NAME {
        return Err(corrupt);
    }
    let (len, name) = reference.split_at(8);
    let len = u64::from_le_bytes(len.try_into().expect("invariant: split at 8"));
    let name = std::str::from_utf8(name).map_err(|_| Error::Corrupt { what: "spill reference" })?;
    if !name.starts_with("spill.") {
        return Err(corrupt);
    }
    // A reference that names nothing (a replayed or invented one) is as
    // corrupt as any other bad record.
    let seg = Segment::open(name).map_err(|e| match e {
        Error::Os { .. } | Error::PermissionDenied { .. } => e,
        _ => Error::Corrupt { what: "spill reference names no spill segment" },
    })?;
    let len = usize::try_from(len).ok().filter(|&l| l <= seg.len()).ok_or(corrupt)?;
    out.clear();
    out.resize(len, 0);
    let read = seg.read_bytes(0, out);
    // Unlink even if the read failed: nobody else will read it.
    let _ = Segment::unlink(name);
    read
}

/// Unlinks the segment a spill reference names without reading it (a
/// reference that will never be delivered).
pub(crate) fn discard(reference: &[u8]) {
    if let Some(name) = reference.get(8..).and_then(|n| std::str::from_utf8(n).ok())
        && name.starts_with("spill.")
    {
        let _ = Segment::unlink(name);
    }
}
