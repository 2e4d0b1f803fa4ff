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
//! A channel message (a `Queue` item, a typed channel's or a `Pipe`'s
//! message, a pool record's item) is encoded first *probing*, without a
//! list ([`encoding_message`]): most messages hold no handle and pay
//! nothing. A handle that needs the list (an anonymous segment, an arena
//! cell, a plain descriptor, a typed channel's end, which counts itself in
//! flight) refuses a probing encoding at once, before any side effect, and
//! the message is encoded again inside a collecting scope. A named segment
//! does not need it: in a probing encoding it travels by name, without its
//! channel's descriptor socket, as a handle opened by name would, so a
//! receiver that opened the channel by name can take it too.
//!
//! An object in an arena cell (`shm/heap.rs`) encodes its arena's id, its
//! cell and the cell's generation, and takes a reference for the receiver
//! (`CellRef::lend`); the arena's descriptor joins the list once per
//! encoding, however many of its cells the value holds. The receiver maps
//! each arena once per process, and finds it by id on later decodes.

use std::cell::{Cell, RefCell};
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

/// An [`Undo`] that runs when dropped (an async send's future dropped
/// before it sent), unless [`forget`](UndoOnDrop::forget)ten.
#[cfg(feature = "async")]
pub(crate) struct UndoOnDrop(pub(crate) Option<Undo>);

#[cfg(feature = "async")]
impl UndoOnDrop {
    /// The encoding reached its decoder: nothing to give back.
    pub(crate) fn forget(mut self) {
        self.0 = None;
    }
}

#[cfg(feature = "async")]
impl Drop for UndoOnDrop {
    fn drop(&mut self) {
        if let Some(u) = self.0.take() {
            u.run();
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
    /// The message of the last error this module gave the codec (postcard
    /// keeps no message of a custom error): see [`take_message`].
    static MESSAGE: RefCell<Option<String>> = const { RefCell::new(None) };
    static OUTGOING: RefCell<Option<Outgoing>> = const { RefCell::new(None) };
    static INCOMING: RefCell<Option<Vec<Option<OwnedFd>>>> = const { RefCell::new(None) };
    /// A probing encoding is under way ([`PROBING`]), or one found a
    /// handle ([`WANTED`]); [`IDLE`] otherwise.
    static PROBE: Cell<u8> = const { Cell::new(IDLE) };
}

const IDLE: u8 = 0;
const PROBING: u8 = 1;
const WANTED: u8 = 2;

/// Runs `f` (which encodes something) collecting the descriptors of the
/// segments it serializes, and what to give back if the encoding never
/// reaches a decoder.
pub(crate) fn collecting<T>(f: impl FnOnce() -> T) -> (T, Vec<OwnedFd>, Undo) {
    let mut c = Collector::default();
    let out = c.collect(f);
    let (fds, undo) = c.take();
    (out, fds, undo)
}

/// Encodes a channel message: first without a collecting scope (the
/// common message holds no handle and pays nothing for one), and only if
/// that encoding met a handle or descriptor, which then refused before
/// doing anything ([`wants_scope`]), again inside one. `f` may run twice.
pub(crate) fn encoding_message<T>(mut f: impl FnMut() -> T) -> (T, Vec<OwnedFd>, Undo) {
    match probing(&mut f) {
        Some(out) => (out, Vec::new(), Undo::default()),
        None => collecting(f),
    }
}

/// Runs `f` as a probing encoding: its outcome, or `None` if it met a
/// handle that wants a collecting scope (the outcome is then dropped).
fn probing<T>(f: &mut impl FnMut() -> T) -> Option<T> {
    /// Puts the thread's previous probe state back if `f` panics.
    struct Back(Option<u8>);
    impl Drop for Back {
        fn drop(&mut self) {
            if let Some(outer) = self.0 {
                PROBE.with(|p| p.set(outer));
            }
        }
    }
    let mut back = Back(Some(PROBE.with(|p| p.replace(PROBING))));
    let out = f();
    let outer = back.0.take().unwrap_or(IDLE);
    let wanted = PROBE.with(|p| p.replace(outer)) == WANTED;
    (!wanted).then_some(out)
}

/// Called first by every handle's `Serialize`: `true` during a probing
/// encoding (see [`encoding_message`]) outside a collecting scope, which
/// the handle must then fail at once, with no side effect, with
/// [`probe_error`].
pub(crate) fn wants_scope() -> bool {
    PROBE.with(|p| {
        let probing = p.get() != IDLE && !is_collecting();
        if probing {
            p.set(WANTED);
        }
        probing
    })
}

/// The error a handle gives a probing encoding (never seen by a caller:
/// the encoding runs again).
pub(crate) fn probe_error<E: serde::ser::Error>() -> E {
    E::custom("a handle: encode again, collecting descriptors")
}

/// A collecting scope that lasts across several encodings (the items of
/// one pool record): the descriptors of all of them form one list, an
/// arena's descriptor joins it once, and each encoding is one
/// [`collect`](Collector::collect) call. Only the encodings run inside the
/// scope, never the user's task (whose own encodings are its business).
#[derive(Default)]
pub(crate) struct Collector(Outgoing);

/// Where a [`Collector`] was before an encoding (see
/// [`Collector::rollback`]).
#[derive(Debug, Clone, Copy)]
#[cfg(feature = "pool")]
pub(crate) struct Mark {
    fds: usize,
    arenas: usize,
    undo: usize,
}

impl Collector {
    /// Runs `f` (which encodes something) inside this scope.
    pub(crate) fn collect<T>(&mut self, f: impl FnOnce() -> T) -> T {
        /// Takes the scope back (also when `f` panics).
        struct Back<'a>(&'a mut Outgoing, Option<Outgoing>);
        impl Drop for Back<'_> {
            fn drop(&mut self) {
                let outer = self.1.take();
                *self.0 = OUTGOING.with(|o| o.replace(outer)).unwrap_or_default();
            }
        }
        // A message left by an earlier failure must not name this one's.
        MESSAGE.with(|m| m.replace(None));
        let outer = OUTGOING.with(|o| o.replace(Some(std::mem::take(&mut self.0))));
        let _back = Back(&mut self.0, outer);
        f()
    }

    /// As [`collect`](Self::collect), but only if the encoding holds a
    /// handle or descriptor: `f` runs first outside the scope (see
    /// [`encoding_message`]); `reset` runs before a second run.
    #[cfg(feature = "pool")]
    pub(crate) fn collect_if_needed<T>(&mut self, mut f: impl FnMut() -> T, reset: impl FnOnce()) -> T {
        match probing(&mut f) {
            Some(out) => out,
            None => {
                reset();
                self.collect(f)
            }
        }
    }

    /// Descriptors collected so far.
    #[cfg(feature = "pool")]
    pub(crate) fn len(&self) -> usize {
        self.0.fds.len()
    }

    /// The current position, to [`rollback`](Self::rollback) to.
    #[cfg(feature = "pool")]
    pub(crate) fn mark(&self) -> Mark {
        Mark { fds: self.0.fds.len(), arenas: self.0.arenas.len(), undo: self.0.undo.0.len() }
    }

    /// Forgets what was collected since `mark` (an encoding that failed,
    /// or one that would carry too many descriptors): closes its
    /// descriptors and gives back what it took.
    #[cfg(feature = "pool")]
    pub(crate) fn rollback(&mut self, mark: Mark) {
        self.0.fds.truncate(mark.fds);
        self.0.arenas.truncate(mark.arenas);
        let undone: Vec<_> = self.0.undo.0.drain(mark.undo.min(self.0.undo.0.len())..).collect();
        Undo(undone).run();
    }

    /// Takes what was collected, leaving the scope empty (for reuse).
    pub(crate) fn take(&mut self) -> (Vec<OwnedFd>, Undo) {
        let o = std::mem::take(&mut self.0);
        (o.fds, o.undo)
    }
}

/// Runs `f` (which decodes something) with `fds` available to the segments
/// it deserializes.
pub(crate) fn with_fds<T>(fds: Vec<OwnedFd>, f: impl FnOnce() -> T) -> T {
    MESSAGE.with(|m| m.replace(None));
    // The common case: no descriptors, and no list of an outer decoding
    // to hide.
    if fds.is_empty() && INCOMING.with(|i| i.borrow().is_none()) {
        return f();
    }
    /// Puts the outer list back (also when `f` panics).
    struct Back(Option<Vec<Option<OwnedFd>>>);
    impl Drop for Back {
        fn drop(&mut self) {
            let outer = self.0.take();
            INCOMING.with(|i| i.replace(outer));
        }
    }
    let outer = INCOMING.with(|i| i.replace(Some(fds.into_iter().map(Some).collect())));
    let _back = Back(outer);
    f()
}

/// The descriptors that came with a message, shared by the decodings of
/// its parts (the items of a pool record, decoded one by one, maybe by
/// different threads): each part takes its own entries out of the list; a
/// part decoded twice finds its plain descriptors taken.
#[cfg(feature = "pool")]
#[derive(Clone)]
pub(crate) struct Received(std::sync::Arc<parking_lot::Mutex<Vec<Option<OwnedFd>>>>);

#[cfg(feature = "pool")]
impl std::fmt::Debug for Received {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Received").field("fds", &self.0.lock().len()).finish()
    }
}

#[cfg(feature = "pool")]
impl Received {
    /// The list of `fds`.
    pub(crate) fn of(fds: Vec<OwnedFd>) -> Received {
        Received(std::sync::Arc::new(parking_lot::Mutex::new(fds.into_iter().map(Some).collect())))
    }

    /// The list of `fds`, or `None` if there are none (the common case
    /// costs nothing).
    pub(crate) fn some(fds: Vec<OwnedFd>) -> Option<Received> {
        (!fds.is_empty()).then(|| Received::of(fds))
    }

    /// Whether both are the same list.
    pub(crate) fn same(&self, other: &Received) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }

    /// Runs `f` (which decodes something) with the list in place. The
    /// list is not locked while `f` runs: a decoding of the same message
    /// inside `f` finds it empty.
    pub(crate) fn decoding<T>(&self, f: impl FnOnce() -> T) -> T {
        /// Puts the outer list back and this one's rest into `self` (also
        /// when `f` panics). Entries taken meanwhile stay taken.
        struct Back<'a>(&'a Received, Option<Vec<Option<OwnedFd>>>);
        impl Drop for Back<'_> {
            fn drop(&mut self) {
                let outer = self.1.take();
                if let Some(ours) = INCOMING.with(|i| i.replace(outer)) {
                    *self.0.0.lock() = ours;
                }
            }
        }
        MESSAGE.with(|m| m.replace(None));
        let list = std::mem::take(&mut *self.0.lock());
        let outer = INCOMING.with(|i| i.replace(Some(list)));
        let _back = Back(self, outer);
        f()
    }
}

/// Runs `f` (which decodes something) with the descriptors of `fds`, if
/// any, available to it.
#[cfg(feature = "pool")]
pub(crate) fn decoding_with<T>(fds: Option<&Received>, f: impl FnOnce() -> T) -> T {
    match fds {
        Some(r) => r.decoding(f),
        None => f(),
    }
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
        list.get(index as usize).map(|fd| match fd {
            Some(fd) => sysshm::dup(fd.as_fd()),
            None => Err(std::io::Error::new(std::io::ErrorKind::NotFound, "descriptor already taken")),
        })
    })
}

/// Takes entry `index` of the list out (a plain descriptor: it has one
/// owner). `None` outside a decoding with a list.
fn take_plain(index: u32) -> Option<std::result::Result<OwnedFd, &'static str>> {
    INCOMING.with(|i| {
        let mut i = i.borrow_mut();
        let list = i.as_mut()?;
        Some(match list.get_mut(index as usize) {
            Some(slot) => {
                slot.take().ok_or("descriptor already taken (a message's descriptors go to its first decoding, once)")
            }
            None => Err("descriptor index out of range"),
        })
    })
}

/// A serializer's custom error whose message the codec can report
/// ([`take_message`]).
pub(crate) fn ser_error<E: serde::ser::Error>(msg: impl std::fmt::Display) -> E {
    let msg = msg.to_string();
    let e = E::custom(&msg);
    MESSAGE.with(|m| m.replace(Some(msg)));
    e
}

/// A deserializer's custom error whose message the codec can report.
pub(crate) fn de_error<E: serde::de::Error>(msg: impl std::fmt::Display) -> E {
    let msg = msg.to_string();
    let e = E::custom(&msg);
    MESSAGE.with(|m| m.replace(Some(msg)));
    e
}

/// The message of the last custom error given on this thread, taken (the
/// codec reports it instead of postcard's message-less one).
pub(crate) fn take_message() -> Option<String> {
    MESSAGE.with(|m| m.borrow_mut().take())
}

/// Whether an encoding that collects descriptors is running on this thread.
pub(crate) fn is_collecting() -> bool {
    OUTGOING.with(|o| o.borrow().is_some())
}

/// Where descriptors may travel (the error outside such a scope).
pub(crate) const FDS_ONLY_IN: &str = "descriptors travel only in Queue, JoinableQueue, typed channel and Pipe \
     messages (through handles that came from the channel's creator, not opened by name), in Process \
     arguments and results, and in Pool and ProcessPoolExecutor task arguments and results";

/// Encodes a plain descriptor (`shmproc::Fd`, `shmproc::fd`): a duplicate
/// joins the list, the sender keeps its own.
pub(crate) fn serialize_plain<S: Serializer>(fd: BorrowedFd<'_>, s: S) -> Result<S::Ok, S::Error> {
    if wants_scope() {
        return Err(probe_error());
    }
    match push_fd(fd) {
        Some(Ok(index)) => Repr::Plain { index }.serialize(s),
        Some(Err(e)) => Err(ser_error::<S::Error>(format!("cannot duplicate the descriptor: {e}"))),
        None => Err(ser_error::<S::Error>(FDS_ONLY_IN)),
    }
}

/// Decodes a plain descriptor: takes it out of the list (close-on-exec).
pub(crate) fn deserialize_plain<'de, D: Deserializer<'de>>(d: D) -> Result<OwnedFd, D::Error> {
    match Repr::deserialize(d)? {
        Repr::Plain { index } => match take_plain(index) {
            Some(Ok(fd)) => Ok(fd),
            Some(Err(e)) => Err(de_error::<D::Error>(e)),
            None => Err(de_error::<D::Error>(MISSING_PLAIN)),
        },
        _ => Err(de_error::<D::Error>("expected a plain descriptor, found a shared object's handle")),
    }
}

const MISSING_PLAIN: &str = "descriptor missing: it decodes only where it was sent (a Queue, channel or Pipe \
     message, a Process or pool task argument or result)";

/// The serialized form of a segment handle.
#[derive(Serialize, Deserialize)]
enum Repr {
    /// An entry of the descriptor list that travels beside the bytes.
    Fd { index: u32, kind: u32, layout_hash: u64 },
    /// A name in the default directory.
    Named { name: String, kind: u32, layout_hash: u64 },
    /// A cell of an arena whose descriptor is entry `index` of the list.
    Cell { index: u32, lent: Lent, layout_hash: u64 },
    /// A plain descriptor (`shmproc::Fd`): entry `index` of the list,
    /// taken out by the receiver.
    Plain { index: u32 },
}

/// What a shared object's handle decodes to.
pub(crate) enum Handle {
    Segment(Segment),
    Cell(CellRef),
}

const NOT_HERE: &str = "an anonymous shared object can only be passed to a child process as an argument";

/// Encodes an object that lives in an arena cell (see the module docs).
pub(crate) fn serialize_cell<S: Serializer>(cell: &CellRef, layout_hash: u64, s: S) -> Result<S::Ok, S::Error> {
    if wants_scope() {
        return Err(probe_error());
    }
    let (id, fd) = cell.arena();
    let index = match push_arena_fd(id, fd) {
        Some(Ok(index)) => index,
        Some(Err(e)) => return Err(ser_error::<S::Error>(format!("cannot pass the arena's descriptor: {e}"))),
        None => return Err(ser_error::<S::Error>(NOT_HERE)),
    };
    let lent = cell.lend().map_err(ser_error::<S::Error>)?;
    // Given back if the encoding never reaches a decoder (inside a
    // collecting scope, as `push_arena_fd` just found).
    on_undo(cell.unlend());
    Repr::Cell { index, lent, layout_hash }.serialize(s)
}

/// Decodes a shared object's handle: a segment, or an arena cell holding
/// an object with `layout_hash`.
pub(crate) fn deserialize_handle<'de, D: Deserializer<'de>>(d: D, layout_hash: u64) -> Result<Handle, D::Error> {
    match Repr::deserialize(d)? {
        Repr::Cell { index, lent, layout_hash: sent } => {
            if sent != layout_hash {
                return Err(de_error::<D::Error>(crate::Error::LayoutMismatch { expected: layout_hash, found: sent }));
            }
            let fd = || {
                take_fd(index)
                    .ok_or_else(|| crate::Error::InvalidArgument { what: MISSING })
                    .and_then(|r| r.map_err(|e| crate::Error::os("dup the arena's descriptor", e)))
            };
            CellRef::adopt(lent, layout_hash, fd).map(Handle::Cell).map_err(de_error::<D::Error>)
        }
        other => segment_from(other).map(Handle::Segment).map_err(de_error::<D::Error>),
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
        Repr::Plain { .. } => Err("expected a segment, found a plain descriptor".to_owned()),
    }
}

impl Serialize for Segment {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let name = self.name().filter(|_| !self.is_raw() && !self.has_custom_dir());
        // A channel message names a named segment (see the module docs);
        // only an anonymous one needs the descriptor list.
        if name.is_none() && wants_scope() {
            return Err(probe_error());
        }
        let (kind, layout_hash) = self.layout_identity();
        match push_fd(self.fd()) {
            Some(Ok(index)) => Repr::Fd { index, kind, layout_hash }.serialize(s),
            Some(Err(e)) => Err(ser_error::<S::Error>(format!("cannot pass the segment's descriptor: {e}"))),
            None => match name {
                Some(n) => Repr::Named { name: n.to_owned(), kind, layout_hash }.serialize(s),
                None => Err(ser_error::<S::Error>(NOT_HERE)),
            },
        }
    }
}

impl<'de> Deserialize<'de> for Segment {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Segment, D::Error> {
        segment_from(Repr::deserialize(d)?).map_err(de_error::<D::Error>)
    }
}
