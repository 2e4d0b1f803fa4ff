//! How shared handles travel inside encoded values.
//!
//! Every shared object is a handle around one or more [`Segment`]s, and the
//! handle is what serializes. A named segment could travel by name, but an
//! anonymous one is only a descriptor, and a name can vanish before the
//! receiver opens it. So while the process layer encodes a child's argument
//! it *collects* descriptors: each segment serializes as an index into the
//! list, and the list goes to the child beside the bytes (inherited across
//! `exec`, or passed with `SCM_RIGHTS` to the fork server). The child decodes
//! *with* the list in place. Outside such a scope a named segment encodes
//! its name, and an anonymous one refuses to encode.

use std::cell::RefCell;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::shm::segment::Segment;
use crate::sys::shm as sysshm;

thread_local! {
    static OUTGOING: RefCell<Option<Vec<OwnedFd>>> = const { RefCell::new(None) };
    static INCOMING: RefCell<Option<Vec<OwnedFd>>> = const { RefCell::new(None) };
}

/// Runs `f` (which encodes something) collecting the descriptors of the
/// segments it serializes.
pub(crate) fn collecting_fds<T>(f: impl FnOnce() -> T) -> (T, Vec<OwnedFd>) {
    let outer = OUTGOING.with(|o| o.replace(Some(Vec::new())));
    let out = f();
    let fds = OUTGOING.with(|o| o.replace(outer)).unwrap_or_default();
    (out, fds)
}

/// Runs `f` (which decodes something) with `fds` available to the segments
/// it deserializes.
pub(crate) fn with_fds<T>(fds: Vec<OwnedFd>, f: impl FnOnce() -> T) -> T {
    let outer = INCOMING.with(|i| i.replace(Some(fds)));
    let out = f();
    INCOMING.with(|i| i.replace(outer));
    out
}

fn push_fd(fd: BorrowedFd<'_>) -> Option<std::io::Result<u32>> {
    OUTGOING.with(|o| {
        let mut o = o.borrow_mut();
        let list = o.as_mut()?;
        Some(sysshm::dup(fd).map(|d| {
            list.push(d);
            (list.len() - 1) as u32
        }))
    })
}

fn take_fd(index: u32) -> Option<std::io::Result<OwnedFd>> {
    INCOMING.with(|i| {
        let i = i.borrow();
        let list = i.as_ref()?;
        // Duplicate: the same handle may be referenced twice in one value.
        list.get(index as usize).map(|fd| sysshm::dup(fd.as_fd()))
    })
}

/// The serialized form of a segment handle.
#[derive(Serialize, Deserialize)]
enum Repr {
    /// An entry of the descriptor list that travels beside the bytes.
    Fd { index: u32, kind: u32, layout_hash: u64 },
    /// A name in the default directory.
    Named { name: String, kind: u32, layout_hash: u64 },
}

impl Serialize for Segment {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error as _;
        let (kind, layout_hash) = self.layout_identity();
        match push_fd(self.fd()) {
            Some(Ok(index)) => Repr::Fd { index, kind, layout_hash }.serialize(s),
            Some(Err(e)) => Err(S::Error::custom(format!("cannot pass the segment's descriptor: {e}"))),
            None => match self.name() {
                Some(n) if !self.is_raw() && !self.has_custom_dir() => {
                    Repr::Named { name: n.to_owned(), kind, layout_hash }.serialize(s)
                }
                _ => Err(S::Error::custom(
                    "an anonymous or raw segment can only be passed to a child process as an argument",
                )),
            },
        }
    }
}

impl<'de> Deserialize<'de> for Segment {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Segment, D::Error> {
        use serde::de::Error as _;
        match Repr::deserialize(d)? {
            Repr::Fd { index, kind, layout_hash } => {
                let fd = take_fd(index)
                    .ok_or_else(|| {
                        D::Error::custom("segment descriptor missing: decode it in the child it was sent to")
                    })?
                    .map_err(|e| D::Error::custom(format!("cannot duplicate the segment's descriptor: {e}")))?;
                Segment::from_fd_expecting(fd, kind, layout_hash).map_err(D::Error::custom)
            }
            Repr::Named { name, kind, layout_hash } => {
                Segment::builder().name(&name).typed(kind, layout_hash).open().map_err(D::Error::custom)
            }
        }
    }
}
