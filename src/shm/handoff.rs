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
//!
//! An object in an arena cell (`shm/heap.rs`) encodes its arena's id, its
//! cell and the cell's generation, and takes a reference for the receiver
//! (`CellRef::lend`); the arena's descriptor joins the list once per
//! encoding, however many of its cells the value holds. The receiver maps
//! each arena once per process, and finds it by id on later decodes.

use std::cell::RefCell;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::shm::heap::{CellRef, Lent};
use crate::shm::segment::Segment;
use crate::sys::shm as sysshm;

/// The descriptors an encoding collects, and which arenas are among them.
#[derive(Default)]
struct Outgoing {
    fds: Vec<OwnedFd>,
    /// (arena id, index in `fds`).
    arenas: Vec<(u64, u32)>,
    /// What to give back if the encoding never reaches a decoder.
    undo: Undo,
}

/// What an encoding took on behalf of its decoder (a typed channel's
/// in-flight handle counts): given back by [`Undo::run`] when the
/// encoding fails or never reaches its decoder (a child that could not be
/// started, or died before it began to decode); dropped without running
/// once a decoder may have taken it over.
#[derive(Default)]
#[must_use = "run it if the encoding never reaches a decoder"]
pub(crate) struct Undo(Vec<Box<dyn FnOnce() + Send + Sync>>);

impl Undo {
    /// Gives back everything the encoding took.
    pub(crate) fn run(self) {
        for f in self.0 {
            f();
        }
    }
}

/// Inside an encoding that collects descriptors: `f` runs if the encoding
/// is undone. Outside one: `false` (nothing is registered).
#[cfg_attr(not(feature = "serde"), allow(dead_code))]
pub(crate) fn on_undo(f: impl FnOnce() + Send + Sync + 'static) -> bool {
    let f: Box<dyn FnOnce() + Send + Sync> = Box::new(f);
    OUTGOING.with(|o| o.borrow_mut().as_mut().map(|o| o.undo.0.push(f)).is_some())
}

thread_local! {
    static OUTGOING: RefCell<Option<Outgoing>> = const { RefCell::new(None) };
    static INCOMING: RefCell<Option<Vec<OwnedFd>>> = const { RefCell::new(None) };
}

/// Runs `f` (which encodes something) collecting the descriptors of the
/// segments it serializes, and what to give back if the encoding never
/// reaches a decoder.
pub(crate) fn collecting<T>(f: impl FnOnce() -> T) -> (T, Vec<OwnedFd>, Undo) {
    let outer = OUTGOING.with(|o| o.replace(Some(Outgoing::default())));
    let out = f();
    let o = OUTGOING.with(|o| o.replace(outer)).unwrap_or_default();
    (out, o.fds, o.undo)
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
        let list = &mut o.as_mut()?.fds;
        Some(sysshm::dup(fd).map(|d| {
            list.push(d);
            (list.len() - 1) as u32
        }))
    })
}

/// The list index of arena `id`'s descriptor, adding it on first use.
fn push_arena_fd(id: u64, fd: BorrowedFd<'_>) -> Option<std::io::Result<u32>> {
    let known = OUTGOING.with(|o| {
        let o = o.borrow();
        o.as_ref().map(|o| o.arenas.iter().find(|(a, _)| *a == id).map(|(_, i)| *i))
    })?;
    if let Some(i) = known {
        return Some(Ok(i));
    }
    let pushed = push_fd(fd)?;
    if let Ok(i) = pushed {
        OUTGOING.with(|o| o.borrow_mut().as_mut().map(|o| o.arenas.push((id, i))));
    }
    Some(pushed)
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
    /// A cell of an arena whose descriptor is entry `index` of the list.
    Cell { index: u32, lent: Lent, layout_hash: u64 },
}

/// What a shared object's handle decodes to.
pub(crate) enum Handle {
    Segment(Segment),
    Cell(CellRef),
}

const NOT_HERE: &str = "an anonymous shared object can only be passed to a child process as an argument";

/// Encodes an object that lives in an arena cell (see the module docs).
pub(crate) fn serialize_cell<S: Serializer>(cell: &CellRef, layout_hash: u64, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::Error as _;
    let (id, fd) = cell.arena();
    let index = match push_arena_fd(id, fd) {
        Some(Ok(index)) => index,
        Some(Err(e)) => return Err(S::Error::custom(format!("cannot pass the arena's descriptor: {e}"))),
        None => return Err(S::Error::custom(NOT_HERE)),
    };
    let lent = cell.lend().map_err(S::Error::custom)?;
    Repr::Cell { index, lent, layout_hash }.serialize(s)
}

/// Decodes a shared object's handle: a segment, or an arena cell holding
/// an object with `layout_hash`.
pub(crate) fn deserialize_handle<'de, D: Deserializer<'de>>(d: D, layout_hash: u64) -> Result<Handle, D::Error> {
    use serde::de::Error as _;
    match Repr::deserialize(d)? {
        Repr::Cell { index, lent, layout_hash: sent } => {
            if sent != layout_hash {
                return Err(D::Error::custom(crate::Error::LayoutMismatch { expected: layout_hash, found: sent }));
            }
            let fd = || {
                take_fd(index)
                    .ok_or(crate::Error::InvalidArgument { what: MISSING })
                    .and_then(|r| r.map_err(|e| crate::Error::os("dup the arena's descriptor", e)))
            };
            CellRef::adopt(lent, layout_hash, fd).map(Handle::Cell).map_err(D::Error::custom)
        }
        other => segment_from(other).map(Handle::Segment).map_err(D::Error::custom),
    }
}

const MISSING: &str = "segment descriptor missing: decode it in the child it was sent to";

fn segment_from(repr: Repr) -> Result<Segment, String> {
    match repr {
        Repr::Fd { index, kind, layout_hash } => {
            let fd = take_fd(index)
                .ok_or_else(|| MISSING.to_owned())?
                .map_err(|e| format!("cannot duplicate the segment's descriptor: {e}"))?;
            Segment::from_fd_expecting(fd, kind, layout_hash).map_err(|e| e.to_string())
        }
        Repr::Named { name, kind, layout_hash } => {
            Segment::builder().name(&name).typed(kind, layout_hash).open().map_err(|e| e.to_string())
        }
        Repr::Cell { .. } => Err("expected a segment, found an object in a shared arena".to_owned()),
    }
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
                _ => Err(S::Error::custom(NOT_HERE)),
            },
        }
    }
}

impl<'de> Deserialize<'de> for Segment {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Segment, D::Error> {
        use serde::de::Error as _;
        segment_from(Repr::deserialize(d)?).map_err(D::Error::custom)
    }
}
