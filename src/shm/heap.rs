//! Shared arenas: many small anonymous objects in one segment.
//!
//! An anonymous `Lock`, `Value<T>`, `Mutex<T>`, `Event`, ... whose state
//! fits in [`MAX_CELL`] bytes is not a segment of its own (a descriptor and
//! a page each) but a *cell* of an arena: a memfd segment of equal cells,
//! one arena per cell size. A process holds one descriptor per arena it
//! maps, and passing a thousand objects to a child passes one descriptor
//! per arena (see `shm/handoff.rs`).
//!
//! # Layout (payload offsets)
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 32 | [`HeapHead`]: random id, cell size, cell count, cells in use |
//! | 64 | cells / 8 | the free bitmap: bit set = cell taken |
//! | data (a multiple of 128) | cells × class | the cells |
//!
//! A cell starts with a [`CellHead`] (16 bytes: the *state* word, and the
//! layout hash of the object in it); the object follows at its alignment.
//! Cell sizes are multiples of 64 bytes (of 128 for objects aligned to
//! 128), and cells start on such a boundary, so two objects never share a
//! cache line. A `Value<u64>` or a `Lock` takes one 64-byte cell.
//!
//! # Who frees a cell
//!
//! The state word holds a generation (high 32 bits) and a count of
//! *process* references (low 32 bits). A process counts its handles to a
//! cell in a private array ([`HeapMap::local`]); the 0 → 1 step of that
//! count takes one process reference, the 1 → 0 step gives it back. Giving
//! back the last one frees the cell in one compare-and-swap that also
//! bumps the generation, then clears its bitmap bit. A handle encoded for
//! a child (`lend`) takes one more reference, *in flight*, which the child
//! adopts when it decodes the handle (or gives back at once if it holds
//! that cell already); the encoding names the generation, and a decoder
//! that finds another one refuses it. A forked child gets copies of its
//! parent's handles without any counting of its own, so a fork hook
//! ([`after_fork_in_child`]) takes one reference for every cell the child
//! inherited a handle to; a child that ends through the process layer
//! gives all of its references back ([`release_all`]).
//!
//! A process killed while holding references never gives them back: its
//! cells stay taken until the arena itself goes (when the last process
//! mapping it exits). A cell is leaked that way, never handed out twice.
//!
//! Arenas are never unmapped by a process that mapped them (a handle is a
//! `&'static` reference to its arena's mapping, and the fork hook can walk
//! them without a lock); a free cell is reused by the next object of its
//! size made by any process that maps the arena.

#[cfg(feature = "serde")]
use std::os::fd::OwnedFd;
use std::sync::OnceLock;
// This process's own counters.
use std::sync::atomic::{AtomicU32 as LocalU32, AtomicUsize};

// The words in the arena (loom's under `--cfg shmproc_loom`, for the model
// of the cell protocol in `loom_heap.rs`).
use crate::loom::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::shm::header::kind;
use crate::shm::layout::{ShmSafe, layout_hash_mix};
use crate::shm::segment::Segment;

/// The largest cell; bigger objects get a segment of their own.
pub(crate) const MAX_CELL: usize = 4096;
/// Cells are multiples of a cache line.
const LINE: usize = 64;
/// The largest alignment an object in a cell may ask for.
const MAX_ALIGN: usize = 128;
/// Bytes of cells per arena.
const ARENA_DATA: usize = 1 << 20;
/// Where the bitmap starts.
pub(crate) const BITMAP: usize = 64;
/// How many arenas one process can map.
const MAX_HEAPS: usize = 4096;
const REFS: u64 = 0xffff_ffff;

/// The head of an arena's payload.
#[repr(C)]
pub(crate) struct HeapHead {
    /// Random, nonzero: names the arena inside encodings.
    pub(crate) id: AtomicU64,
    /// Bytes per cell.
    pub(crate) class: AtomicU32,
    /// Number of cells (a multiple of 64).
    pub(crate) cells: AtomicU32,
    /// Cells taken (a statistic for inspection; never trusted).
    pub(crate) used: AtomicU32,
    _reserved: AtomicU32,
    _reserved2: AtomicU64,
}

#[allow(unsafe_code)] // the layout promise of a type placed in shared memory
// SAFETY: repr(C) over atomics: no pointers, any bit pattern valid (every
// field is validated or only displayed), all interior-mutable.
unsafe impl ShmSafe for HeapHead {
    const TAG: &'static str = "shmproc::heap::Head";
}

/// The first 16 bytes of every cell.
#[repr(C)]
pub(crate) struct CellHead {
    /// Generation (high 32 bits) and process references (low 32 bits).
    pub(crate) state: AtomicU64,
    /// The layout hash of the object in the cell; 0 while free.
    pub(crate) layout_hash: AtomicU64,
}

#[allow(unsafe_code)] // the layout promise of a type placed in shared memory
// SAFETY: repr(C) over two atomics: no pointers, any bits valid (a garbage
// state or hash makes decoders refuse the cell), interior-mutable.
unsafe impl ShmSafe for CellHead {
    const TAG: &'static str = "shmproc::heap::CellHead";
}

/// The cell's own head; the object follows at its alignment.
pub(crate) const CELL_HEAD: usize = core::mem::size_of::<CellHead>();

/// One word of the free bitmap.
#[repr(C)]
pub(crate) struct BitWord(AtomicU64);

#[allow(unsafe_code)] // the layout promise of a type placed in shared memory
// SAFETY: repr(C) over one atomic: no pointers, any bits valid (a garbage
// bit only makes a cell look taken or free: claims and frees still go
// through the reference count), interior-mutable.
unsafe impl ShmSafe for BitWord {
    const TAG: &'static str = "shmproc::heap::BitWord";
}

impl BitWord {
    #[cfg(all(test, shmproc_loom))]
    pub(crate) fn new(v: u64) -> BitWord {
        BitWord(AtomicU64::new(v))
    }
}

impl CellHead {
    #[cfg(all(test, shmproc_loom))]
    pub(crate) fn new() -> CellHead {
        CellHead { state: AtomicU64::new(0), layout_hash: AtomicU64::new(0) }
    }
}

/// Takes a clear bit of `words`, looking from word `start` on (then from
/// the first): its index, or `None` if every bit is set.
pub(crate) fn claim_bit(words: &[BitWord], start: usize) -> Option<usize> {
    let start = start.min(words.len().saturating_sub(1));
    for w in (start..words.len()).chain(0..start) {
        let mut v = words[w].0.load(Ordering::Relaxed);
        while v != u64::MAX {
            let bit = (!v).trailing_zeros();
            let mask = 1u64 << bit;
            let before = words[w].0.fetch_or(mask, Ordering::AcqRel);
            if before & mask == 0 {
                return Some(w * 64 + bit as usize);
            }
            v = before | mask;
        }
    }
    None
}

/// Clears the bit of cell `index` (after [`release_ref`] freed it).
pub(crate) fn free_bit(words: &[BitWord], index: usize) {
    let _ = words[index / 64].0.fetch_and(!(1u64 << (index % 64)), Ordering::Release);
}

/// Makes a cell whose bit this process just claimed live, with one
/// reference, holding an object with `layout_hash`.
pub(crate) fn start_cell(c: &CellHead, layout_hash: u64) {
    c.layout_hash.store(layout_hash, Ordering::Relaxed);
    let generation = c.state.load(Ordering::Relaxed) >> 32;
    c.state.store(generation << 32 | 1, Ordering::Release);
}

/// Gives one reference back; `true` if it was the last: the cell is free
/// (generation bumped in the same step, layout hash cleared), and the
/// caller clears its bit.
pub(crate) fn release_ref(c: &CellHead) -> bool {
    let mut s = c.state.load(Ordering::Relaxed);
    loop {
        let refs = s & REFS;
        if refs == 0 {
            return false; // garbage written by another process: leave the cell alone
        }
        let next = if refs == 1 { ((s >> 32).wrapping_add(1)) << 32 } else { s - 1 };
        match c.state.compare_exchange_weak(s, next, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) if refs == 1 => break,
            Ok(_) => return false,
            Err(now) => s = now,
        }
    }
    c.layout_hash.store(0, Ordering::Relaxed);
    true
}

/// Takes one more reference to a live cell (its holder lends it): the
/// cell's generation, or `None` if it is free or its count is garbage.
#[cfg(any(feature = "serde", all(test, shmproc_loom)))]
pub(crate) fn acquire_ref(c: &CellHead) -> Option<u32> {
    let mut s = c.state.load(Ordering::Relaxed);
    loop {
        let refs = s & REFS;
        if refs == 0 || refs == REFS {
            return None;
        }
        match c.state.compare_exchange_weak(s, s + 1, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => return Some((s >> 32) as u32),
            Err(now) => s = now,
        }
    }
}

/// Whether a cell is live in `generation` (a decoder's check of a lent
/// reference, which keeps it live until adopted).
#[cfg(any(feature = "serde", all(test, shmproc_loom)))]
pub(crate) fn live_in(c: &CellHead, generation: u32) -> bool {
    let s = c.state.load(Ordering::Acquire);
    (s >> 32) as u32 == generation && s & REFS != 0
}

/// The arena layout every process agrees on (the segment header records it).
pub(crate) const HEAP_LAYOUT_HASH: u64 =
    layout_hash_mix(layout_hash_mix(HeapHead::LAYOUT_HASH, CellHead::LAYOUT_HASH), ARENA_DATA as u64);

/// Where an `S` starts inside its cell.
pub(crate) const fn state_offset<S>() -> usize {
    CELL_HEAD.next_multiple_of(core::mem::align_of::<S>())
}

/// The cell size for an `S`, or `None` if it gets a segment of its own.
pub(crate) const fn class_of<S>() -> Option<usize> {
    class_for(state_offset::<S>() + core::mem::size_of::<S>(), core::mem::align_of::<S>())
}

/// The cell size for `bytes` (cell head included) aligned to `align`, or
/// `None` if they get a segment of their own.
pub(crate) const fn class_for(bytes: usize, align: usize) -> Option<usize> {
    if align > MAX_ALIGN || bytes > MAX_CELL {
        return None;
    }
    let unit = if align > LINE { align } else { LINE };
    let class = bytes.next_multiple_of(unit);
    if class > MAX_CELL { None } else { Some(class) }
}

/// Cells per arena of `class`-byte cells.
pub(crate) fn cells_for(class: usize) -> usize {
    (ARENA_DATA / class) / 64 * 64
}

/// Where the cells start, for `cells` cells.
pub(crate) fn data_offset(cells: usize) -> usize {
    (BITMAP + cells / 8).next_multiple_of(MAX_ALIGN)
}

/// One arena as mapped in this process.
pub(crate) struct HeapMap {
    seg: Segment,
    id: u64,
    class: usize,
    cells: usize,
    data: usize,
    /// This process's handles per cell.
    local: Box<[LocalU32]>,
    /// The bitmap word where the last claim succeeded.
    hint: AtomicUsize,
}

static HEAPS: [OnceLock<&'static HeapMap>; MAX_HEAPS] = [const { OnceLock::new() }; MAX_HEAPS];
static COUNT: AtomicUsize = AtomicUsize::new(0);

/// Every arena this process maps (inherited ones included).
fn heaps() -> impl Iterator<Item = &'static HeapMap> {
    let n = COUNT.load(Ordering::Acquire).min(MAX_HEAPS);
    HEAPS[..n].iter().filter_map(|h| h.get().copied())
}

/// Keeps `map` for the life of the process.
fn publish(map: HeapMap) -> Result<&'static HeapMap> {
    let i = COUNT.fetch_add(1, Ordering::AcqRel);
    if i >= MAX_HEAPS {
        return Err(Error::InvalidArgument { what: "this process maps the largest number of arenas it can (4096)" });
    }
    register_fork_hook();
    let map: &'static HeapMap = Box::leak(Box::new(map));
    // A fresh index: nobody else sets this entry.
    let _ = HEAPS[i].set(map);
    Ok(map)
}

impl HeapMap {
    fn new(seg: Segment) -> Result<HeapMap> {
        let head = seg.typed_in::<HeapHead>(0)?;
        let (id, class, cells) = (
            head.id.load(Ordering::Acquire),
            head.class.load(Ordering::Relaxed) as usize,
            head.cells.load(Ordering::Relaxed) as usize,
        );
        let class_ok = (LINE..=MAX_CELL).contains(&class) && class.is_multiple_of(LINE);
        if id == 0 || !class_ok || cells == 0 || cells != cells_for(class) {
            return Err(Error::Corrupt { what: "arena head (id, cell size or cell count)" });
        }
        let data = data_offset(cells);
        if data + cells * class > seg.len() {
            return Err(Error::Corrupt { what: "arena shorter than its cells" });
        }
        let local = (0..cells).map(|_| LocalU32::new(0)).collect();
        Ok(HeapMap { seg, id, class, cells, data, local, hint: AtomicUsize::new(0) })
    }

    fn create(class: usize) -> Result<&'static HeapMap> {
        let cells = cells_for(class);
        let size = data_offset(cells) + cells * class;
        let id = loop {
            let id = crate::sys::random_u64().map_err(|e| Error::os("getrandom", e))?;
            if id != 0 {
                break id;
            }
        };
        let seg = Segment::builder().size(size).typed(kind::HEAP, HEAP_LAYOUT_HASH).anonymous_with(|s| {
            let head = s.typed_in::<HeapHead>(0)?;
            head.class.store(class as u32, Ordering::Relaxed);
            head.cells.store(cells as u32, Ordering::Relaxed);
            head.id.store(id, Ordering::Release);
            Ok(())
        })?;
        publish(HeapMap::new(seg)?)
    }

    fn head(&self) -> &HeapHead {
        self.seg.typed_in::<HeapHead>(0).expect("invariant: checked in HeapMap::new")
    }

    fn bitmap(&self) -> &[BitWord] {
        self.seg.slice_in::<BitWord>(BITMAP, self.cells / 64).expect("invariant: checked in HeapMap::new")
    }

    fn cell_offset(&self, index: usize) -> usize {
        self.data + index * self.class
    }

    fn cell(&self, index: usize) -> &CellHead {
        assert!(index < self.cells, "invariant: cell indices are checked against the count");
        self.seg.typed_in::<CellHead>(self.cell_offset(index)).expect("invariant: checked in HeapMap::new")
    }

    /// Takes a free cell, or `None` if the arena is full.
    fn claim(&self) -> Option<usize> {
        let head = self.head();
        if head.used.load(Ordering::Relaxed) as usize >= self.cells {
            return None;
        }
        let index = claim_bit(self.bitmap(), self.hint.load(std::sync::atomic::Ordering::Relaxed))?;
        self.hint.store(index / 64, std::sync::atomic::Ordering::Relaxed);
        let _ = head.used.fetch_add(1, Ordering::Relaxed);
        Some(index)
    }

    /// Gives one process reference to cell `index` back; the last one
    /// frees the cell.
    fn release(&self, index: usize) {
        if release_ref(self.cell(index)) {
            let head = self.head();
            let _ = head.used.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| Some(u.saturating_sub(1)));
            free_bit(self.bitmap(), index);
        }
    }

    /// Takes one more process reference to a live cell; its generation.
    #[cfg(feature = "serde")]
    fn acquire(&self, index: usize) -> Result<u32> {
        acquire_ref(self.cell(index)).ok_or_else(|| Error::Corrupt { what: "arena cell reference count" })
    }
}

/// A handle's share of one cell: `Clone` and `Drop` keep this process's
/// count of handles, and through it the cell's process references.
pub(crate) struct CellRef {
    heap: &'static HeapMap,
    index: usize,
}

impl CellRef {
    /// A zero-filled cell of `class` bytes for an object with `layout_hash`,
    /// from any arena this process maps, or from a new one.
    ///
    /// # Errors
    /// As for [`Segment::anonymous`] when a new arena is needed.
    pub(crate) fn alloc(class: usize, layout_hash: u64) -> Result<CellRef> {
        let found = heaps().filter(|h| h.class == class).find_map(|h| h.claim().map(|i| (h, i)));
        let (heap, index) = match found {
            Some(x) => x,
            None => {
                let h = HeapMap::create(class)?;
                (h, h.claim().ok_or_else(|| Error::Corrupt { what: "a new arena has no free cell" })?)
            }
        };
        let words = (class - CELL_HEAD) / 8;
        let body = heap.seg.slice_in::<BitWord>(heap.cell_offset(index) + CELL_HEAD, words)?;
        for w in body {
            w.0.store(0, Ordering::Relaxed);
        }
        start_cell(heap.cell(index), layout_hash);
        let _ = heap.local[index].fetch_add(1, Ordering::Relaxed);
        Ok(CellRef { heap, index })
    }

    /// The arena segment the cell is in.
    pub(crate) fn segment(&self) -> &'static Segment {
        &self.heap.seg
    }

    /// The payload offset of an `S` in this cell.
    pub(crate) fn offset_of<S>(&self) -> usize {
        self.offset() + state_offset::<S>()
    }

    /// The payload offset of the cell (its head).
    pub(crate) fn offset(&self) -> usize {
        self.heap.cell_offset(self.index)
    }

    /// The cell's size.
    #[cfg(feature = "serde")]
    pub(crate) fn class(&self) -> usize {
        self.heap.class
    }

    /// Takes a reference for a child that will [`adopt`](CellRef::adopt)
    /// this cell: what the encoding names.
    #[cfg(feature = "serde")]
    pub(crate) fn lend(&self) -> Result<Lent> {
        let generation = self.heap.acquire(self.index)?;
        Ok(Lent { heap: self.heap.id, cell: self.index as u32, generation })
    }

    /// What gives back a reference made by [`lend`](CellRef::lend) that
    /// never reached a receiver (a put that failed after encoding).
    #[cfg(feature = "serde")]
    pub(crate) fn unlend(&self) -> impl FnOnce() + Send + Sync + 'static {
        let (heap, index) = (self.heap, self.index);
        move || heap.release(index)
    }

    /// The arena's id and descriptor, for an encoding.
    #[cfg(feature = "serde")]
    pub(crate) fn arena(&self) -> (u64, std::os::fd::BorrowedFd<'static>) {
        (self.heap.id, self.heap.seg.fd())
    }

    /// Takes over a reference made by [`lend`](CellRef::lend) in another
    /// process. `fd` gives the arena's descriptor if this process does not
    /// map the arena yet.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if the arena or cell does not match what was
    /// lent; [`Error::LayoutMismatch`] if the cell holds another type;
    /// as for [`Segment::from_fd`] when mapping the arena.
    #[cfg(feature = "serde")]
    pub(crate) fn adopt(lent: Lent, layout_hash: u64, fd: impl FnOnce() -> Result<OwnedFd>) -> Result<CellRef> {
        let heap = match heaps().find(|h| h.id == lent.heap) {
            Some(h) => h,
            None => {
                let seg = Segment::from_fd_expecting(fd()?, kind::HEAP, HEAP_LAYOUT_HASH)?;
                let map = HeapMap::new(seg)?;
                if map.id != lent.heap {
                    return Err(Error::Corrupt { what: "arena descriptor does not match its id" });
                }
                publish(map)?
            }
        };
        let index = lent.cell as usize;
        if index >= heap.cells {
            return Err(Error::Corrupt { what: "arena cell index" });
        }
        let c = heap.cell(index);
        if !live_in(c, lent.generation) {
            return Err(Error::Corrupt { what: "arena cell (freed or reused since it was sent)" });
        }
        let found = c.layout_hash.load(Ordering::Relaxed);
        if found != layout_hash {
            return Err(Error::LayoutMismatch { expected: layout_hash, found });
        }
        if heap.local[index].fetch_add(1, Ordering::AcqRel) > 0 {
            // This process held the cell already: the lent reference is
            // one too many.
            heap.release(index);
        }
        Ok(CellRef { heap, index })
    }
}

impl Clone for CellRef {
    fn clone(&self) -> Self {
        let _ = self.heap.local[self.index].fetch_add(1, Ordering::Relaxed);
        CellRef { heap: self.heap, index: self.index }
    }
}

impl Drop for CellRef {
    fn drop(&mut self) {
        let local = &self.heap.local[self.index];
        // After `release_all` the count is 0: nothing is ours to give back.
        if local.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1)) == Ok(1) {
            self.heap.release(self.index);
        }
    }
}

impl std::fmt::Debug for CellRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CellRef").field("arena", &self.heap.id).field("cell", &self.index).finish()
    }
}

/// What an encoding says about a lent cell.
#[cfg(feature = "serde")]
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub(crate) struct Lent {
    pub(crate) heap: u64,
    pub(crate) cell: u32,
    pub(crate) generation: u32,
}

/// The pid the fork hook last ran in (it may run twice per fork: from our
/// fork path and from the `pthread_atfork` handler).
static HOOKED: LocalU32 = LocalU32::new(0);

/// In a forked child, right after the fork: takes one process reference
/// for every cell this process inherited a handle to. Only atomics and
/// `getpid`: safe in a child of a multi-threaded parent.
pub(crate) fn after_fork_in_child() {
    let me = crate::sys::process::pid();
    if HOOKED.swap(me, std::sync::atomic::Ordering::Relaxed) == me {
        return;
    }
    for heap in heaps() {
        for (i, local) in heap.local.iter().enumerate() {
            if local.load(Ordering::Relaxed) > 0 {
                let _ = heap.cell(i).state.fetch_add(1, Ordering::AcqRel);
            }
        }
    }
}

extern "C" fn atfork_child() {
    after_fork_in_child();
}

/// Registers [`after_fork_in_child`] for forks made through libc by
/// other code (ours call it directly).
pub(crate) fn register_fork_hook() {
    static REGISTERED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    crate::sys::process::at_fork_child_once(&REGISTERED, atfork_child);
}

/// Gives back every reference this process holds (a child about to
/// exit): its cells can be reused at once instead of when the arena goes.
#[cfg(feature = "serde")]
pub(crate) fn release_all() {
    for heap in heaps() {
        for (i, local) in heap.local.iter().enumerate() {
            if local.swap(0, Ordering::AcqRel) > 0 {
                heap.release(i);
            }
        }
    }
}

/// Field offsets of an arena, for read-only inspection.
#[cfg(feature = "inspect")]
pub(crate) mod peek {
    pub(crate) use super::{BITMAP, cells_for, data_offset};
    use super::{CellHead, HeapHead};
    /// Offsets of the head's fields.
    pub(crate) const ID: usize = core::mem::offset_of!(HeapHead, id);
    pub(crate) const CLASS: usize = core::mem::offset_of!(HeapHead, class);
    pub(crate) const CELLS: usize = core::mem::offset_of!(HeapHead, cells);
    pub(crate) const USED: usize = core::mem::offset_of!(HeapHead, used);
    /// Offset of the layout hash inside a cell.
    pub(crate) const CELL_HASH: usize = core::mem::offset_of!(CellHead, layout_hash);
    /// The largest cell.
    pub(crate) const MAX_CELL: usize = super::MAX_CELL;
}

#[cfg(all(test, shmproc_loom))]
mod loom_heap;

#[cfg(all(test, not(shmproc_loom)))]
mod tests {
    use super::*;

    #[test]
    fn classes_are_whole_cache_lines() {
        assert_eq!(class_of::<AtomicU64>(), Some(64));
        assert_eq!(class_of::<[AtomicU64; 6]>(), Some(64));
        assert_eq!(class_of::<[AtomicU64; 7]>(), Some(128));
        assert_eq!(class_of::<crate::CachePadded<AtomicU64>>(), Some(256));
        assert_eq!(class_of::<[AtomicU64; 600]>(), None);
        assert_eq!(cells_for(64), 16384);
        assert_eq!(cells_for(4096), 256);
        assert_eq!(cells_for(192) % 64, 0);
    }

    #[test]
    fn a_freed_cell_is_reused_with_a_new_generation() {
        let h = 0x5eed_0001;
        let a = CellRef::alloc(64, h).expect("alloc");
        let (heap, index) = (a.heap.id, a.index);
        let gen1 = a.heap.cell(index).state.load(Ordering::Relaxed) >> 32;
        let b = a.clone();
        drop(a);
        assert_eq!(b.heap.cell(index).state.load(Ordering::Relaxed) & REFS, 1, "one process reference");
        drop(b);
        // Another test may take the freed cell first; look for ours.
        let cells: Vec<_> = (0..64).map(|_| CellRef::alloc(64, h).expect("alloc")).collect();
        if let Some(c) = cells.iter().find(|c| c.heap.id == heap && c.index == index) {
            let gen2 = c.heap.cell(index).state.load(Ordering::Relaxed) >> 32;
            assert_eq!(gen2, gen1 + 1);
        }
    }

    /// A reference lent by an encoding that never reaches a decoder (a
    /// failed put) is given back by the encoding's undo, not leaked.
    #[cfg(feature = "serde")]
    #[test]
    fn a_lent_reference_that_never_arrives_is_given_back() {
        struct Holder<'a>(&'a CellRef);
        impl serde::Serialize for Holder<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                crate::shm::handoff::serialize_cell(self.0, 0x5eed_0003, s)
            }
        }
        let a = CellRef::alloc(64, 0x5eed_0003).expect("alloc");
        let refs = || a.heap.cell(a.index).state.load(Ordering::Relaxed) & REFS;
        assert_eq!(refs(), 1);
        let (bytes, fds, undo) = crate::shm::handoff::collecting(|| crate::codec::encode(&Holder(&a)));
        assert!(bytes.is_ok() && fds.len() == 1);
        assert_eq!(refs(), 2, "one reference lent for the receiver");
        undo.run();
        assert_eq!(refs(), 1, "given back");
    }

    #[test]
    fn threads_share_an_arena_without_losing_cells() {
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    let mut held = Vec::new();
                    for i in 0..2000 {
                        held.push(CellRef::alloc(128, 0x5eed_0002).expect("alloc"));
                        if i % 3 == 0 {
                            held.swap_remove(i % held.len());
                        }
                    }
                    held
                })
            })
            .collect();
        // Every thread's cells are still held here.
        let held: Vec<CellRef> = threads.into_iter().flat_map(|t| t.join().expect("thread")).collect();
        let mut all: Vec<_> = held.iter().map(|c| (c.heap.id, c.index)).collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n, "no cell handed out twice");
    }
}
