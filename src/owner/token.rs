//! Liveness tokens: "is the process (or thread) that owns this alive?",
//! answered only by the kernel.
//!
//! Each process that needs one owns a token file `shmproc@<tag>` in
//! `/dev/shm` and holds an open file description lock
//! (`fcntl(F_OFD_SETLK, F_WRLCK)`) on it for as long as it lives. The
//! kernel drops that lock when the last descriptor of that open file
//! description closes: when the process dies (by any signal) or execs (the
//! fd is close-on-exec). Anyone can ask with `F_OFD_GETLK`: a conflicting
//! lock means alive; no lock, or no file, means dead. Unlike `kill(pid, 0)`,
//! this is not fooled by pid reuse or by pid namespaces.
//!
//! Identity. A token is a random 64-bit *nonce*; its low [`TAG_BITS`] bits,
//! the *tag*, name the file, and are unique among existing token files (the
//! `linkat` that publishes a token fails on a taken name). The tag is short
//! enough to sit in a 32-bit futex word beside a thread slot; the full nonce
//! is written at the start of the file, so a tag reused after its dead
//! owner's file was removed is told apart from the original.
//!
//! Threads. The file also holds a table of [`SLOTS`] thread slots. A thread
//! that takes a lock gets a slot; if it exits while still holding locks (a
//! leaked guard), its thread-local destructor marks the slot DEAD, and
//! waiters read that with `pread`. So the owner of a lock is `(tag, slot)`.
//!
//! Why OFD locks and not POSIX record locks: a record lock belongs to the
//! process, and closing *any* descriptor of the file drops it, so any code
//! in the process that opens and closes its own token file (a backup, a
//! diagnostic reading `/dev/shm`) would make it look dead while it lives.
//! An OFD lock belongs to the one open file description made in `create`,
//! which no other `open` shares. Its trap is the other way round: `fork`
//! copies the descriptor, and a child holding the copy would keep a dead
//! parent looking alive. So a forked child closes its copy at once, in
//! [`after_fork_in_child`] (run by our own fork paths and, through
//! `pthread_atfork`, by every fork made through libc); the descriptor
//! number lives in [`TOKEN_FD`] for that, so the child needs no lock to
//! find it.
//!
//! The file is created unnamed (`O_TMPFILE`), filled, locked, and only then
//! linked under its name, so nobody can ever see a live token unlocked.
//!
//! # References
//! - [fcntl(2)](https://man7.org/linux/man-pages/man2/fcntl.2.html), "Advisory record locking"
//! - iceoryx2's process-state monitor uses a lock file the same way.

#![allow(unsafe_code)] // the token descriptor's number, and the mapped slot table
use std::cell::Cell;
use std::io;
use std::os::fd::{AsFd, FromRawFd, IntoRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

use parking_lot::Mutex;

use crate::sys::mmap::Mapping;
use crate::sys::ofd::{lock_exclusive, lock_held};
use crate::sys::shm::Dir;

/// Prefix of token file names.
pub(crate) const TOKEN_PREFIX: &str = "shmproc@";
use crate::owner::id::{self, SLOTS, TAG_MASK};
/// Where the slot table starts in a token file.
const SLOT_BASE: usize = 64;
/// Bytes per slot.
const SLOT_SIZE: usize = 16;
/// Size of a token file.
const FILE_SIZE: usize = SLOT_BASE + SLOTS * SLOT_SIZE;

/// Slot state: not in use.
const SLOT_FREE: u32 = 0;
/// Slot state: a live thread uses it.
const SLOT_LIVE: u32 = 1;
/// Slot state: its thread exited while holding locks; never reused.
const SLOT_DEAD: u32 = 2;

/// Identifies one process for its whole life, across pid reuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Token {
    /// The pid at creation (for display).
    pub(crate) pid: u32,
    /// A random 64-bit number; its low bits are the tag.
    pub(crate) nonce: u64,
}

impl Token {
    /// The tag: the low bits of the nonce, which name the file.
    pub(crate) fn tag(&self) -> u32 {
        id::tag_of_nonce(self.nonce)
    }

    /// The token's file name in `/dev/shm`.
    pub(crate) fn file_name(&self) -> String {
        tag_file_name(self.tag())
    }
}

fn tag_file_name(tag: u32) -> String {
    format!("{TOKEN_PREFIX}{tag:06x}")
}

fn parse_tag(name: &str) -> Option<u32> {
    let hex = name.strip_prefix(TOKEN_PREFIX)?;
    if hex.len() != 6 {
        return None;
    }
    let tag = u32::from_str_radix(hex, 16).ok()?;
    (tag != 0 && u64::from(tag) <= TAG_MASK).then_some(tag)
}

/// The answer of [`liveness`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Liveness {
    /// The process holds its token lock (or we could not tell: we never
    /// guess "dead").
    Alive,
    /// The kernel confirms no process holds the token.
    Dead,
}

struct Held {
    token: Token,
    map: Mapping,
    free_slots: Vec<u16>,
    next_slot: u16,
}

impl Held {
    fn slot_state(&self, slot: u16) -> &AtomicU32 {
        let i = usize::from(slot);
        assert!(i < SLOTS, "invariant: slot numbers are below SLOTS");
        let off = SLOT_BASE + i * SLOT_SIZE;
        debug_assert!(off + 4 <= self.map.len());
        let p = self.map.ptr().wrapping_add(off).cast::<AtomicU32>();
        // SAFETY: off + 4 <= FILE_SIZE == the mapping's length (mapped in `create`), off is a multiple of 4 on a
        // page-aligned base, and an AtomicU32 is valid for any bits; the reference borrows `self`, which owns the
        // mapping.
        unsafe { &*p }
    }
}

static CURRENT: Mutex<Option<Held>> = Mutex::new(None);

/// The descriptor that holds this process's token lock, or -1. It is owned
/// here, not by [`Held`]: a forked child closes the copy it inherited in
/// [`after_fork_in_child`], without taking [`CURRENT`] (another thread of
/// the parent may have held that lock at the fork).
static TOKEN_FD: AtomicI32 = AtomicI32::new(-1);

/// Bumped in every child right after a fork, so threads notice that their
/// cached identity belongs to the parent.
static FORK_GEN: AtomicU32 = AtomicU32::new(1);

/// Called in a child right after `fork`/`clone` (and from a
/// `pthread_atfork` handler for forks made by others): the parent's
/// identity is no longer ours, and the inherited descriptor of the
/// parent's token lock is closed, so that the child never keeps its parent
/// looking alive. Async-signal-safe (an atomic swap and `close`); calling
/// it twice is harmless.
pub(crate) fn after_fork_in_child() {
    FORK_GEN.fetch_add(1, Ordering::Relaxed);
    forget_my_id();
    ROLE_EPOCH.fetch_add(1, Ordering::Relaxed);
    forget_parents_token();
    let fd = TOKEN_FD.swap(-1, Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: `fd` was the token descriptor, owned by TOKEN_FD alone
        // (nothing else closes it), and the swap above gave it to us once.
        drop(unsafe { OwnedFd::from_raw_fd(fd) });
    }
}

/// Drops the parent's token state in a forked child without reading it
/// (another thread of the parent may have held [`CURRENT`], mid-update, at
/// the fork: then the lock would stay held forever here, and the value
/// could be half-written).
fn forget_parents_token() {
    crate::sys::process::reset_in_child(&CURRENT, None);
}

/// Takes [`CURRENT`], making sure first that a forked child can take it
/// again ([`after_fork_in_child`] runs in every child forked through libc).
fn held() -> parking_lot::MutexGuard<'static, Option<Held>> {
    static REGISTERED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    crate::sys::process::at_fork_once(&REGISTERED, Some(atfork_parent), atfork_child);
    CURRENT.lock()
}

/// Changes in a forked child and, at each fork, in its parent: a ring role
/// handle compares it with the value it recorded, so the first use of a
/// role after a fork (in whichever process) goes through the slow path
/// that settles who holds it (`queue/role.rs`).
static ROLE_EPOCH: AtomicU32 = AtomicU32::new(1);

/// Called in the parent right after a fork (our fork path, and a
/// `pthread_atfork` handler for forks made by others).
pub(crate) fn after_fork_in_parent() {
    ROLE_EPOCH.fetch_add(1, Ordering::Relaxed);
}

extern "C" fn atfork_parent() {
    after_fork_in_parent();
}

/// See [`ROLE_EPOCH`].
#[inline]
#[cfg_attr(shmproc_loom, allow(dead_code))] // the loom model of owners has its own
pub(crate) fn role_epoch() -> u32 {
    ROLE_EPOCH.load(Ordering::Relaxed)
}

extern "C" fn atfork_child() {
    after_fork_in_child();
}

fn create(pid: u32) -> io::Result<Held> {
    let dir = Dir::default_dir()?;
    let fd = dir.create_unnamed()?;
    rustix::fs::ftruncate(&fd, FILE_SIZE as u64)?;
    let map = Mapping::map(fd.as_fd(), FILE_SIZE, true)?;
    lock_exclusive(&fd)?;
    for _ in 0..1000 {
        let nonce = crate::sys::random_u64()?;
        if nonce & TAG_MASK == 0 {
            continue;
        }
        let mut head = [0u8; 12];
        head[..8].copy_from_slice(&nonce.to_ne_bytes());
        head[8..].copy_from_slice(&pid.to_ne_bytes());
        rustix::io::pwrite(&fd, &head, 0)?;
        let token = Token { pid, nonce };
        match dir.link(fd.as_fd(), &token.file_name()) {
            Ok(()) => {
                // A forked child's inherited descriptor, if its fork ran no
                // atfork handler (a raw clone by other code), goes now.
                let old = TOKEN_FD.swap(fd.into_raw_fd(), Ordering::Relaxed);
                if old >= 0 {
                    // SAFETY: `old` was the parent's token descriptor, owned
                    // by TOKEN_FD alone; the swap took it out once.
                    drop(unsafe { OwnedFd::from_raw_fd(old) });
                }
                return Ok(Held { token, map, free_slots: Vec::new(), next_slot: 1 });
            }
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("no free token tag"))
}

/// This process's token, made on first use (and again in a forked child,
/// which must not pass for its parent).
pub(crate) fn current() -> io::Result<Token> {
    let pid = crate::sys::process::pid();
    let mut slot = held();
    if let Some(h) = slot.as_ref()
        && h.token.pid == pid
    {
        return Ok(h.token);
    }
    // First use, or a forked child whose fork ran no atfork handler (a raw
    // clone by other code): the parent's token is replaced.
    *slot = Some(create(pid)?);
    let token = slot.as_ref().expect("invariant: set above").token;
    drop(slot);
    // Tokens of dead processes are small files; tidy a bounded number so
    // that short-lived processes do not pile them up.
    if let Ok(dir) = Dir::default_dir() {
        let _ = sweep_dead(dir, 64);
    }
    Ok(token)
}

/// Whether the process that owns `token` is alive. Never says `Dead`
/// unless the kernel confirms it.
pub(crate) fn liveness(token: Token) -> Liveness {
    if let Some(h) = held().as_ref()
        && h.token.tag() == token.tag()
        && h.token.pid == crate::sys::process::pid()
    {
        // Never open our own token file: closing that fd would drop our
        // lock. Our tag with another nonce is an earlier owner of the
        // tag, whose file was gone (so it was dead) before we took it.
        return if h.token.nonce == token.nonce { Liveness::Alive } else { Liveness::Dead };
    }
    match probe(token.tag()) {
        Probe::Dead => Liveness::Dead,
        Probe::Unknown => Liveness::Alive,
        Probe::Alive { nonce, .. } if nonce != token.nonce => Liveness::Dead, // tag reused
        Probe::Alive { .. } => Liveness::Alive,
    }
}

enum Probe {
    Dead,
    Unknown,
    Alive { nonce: u64, fd: OwnedFd },
}

fn probe(tag: u32) -> Probe {
    let Ok(dir) = Dir::default_dir() else { return Probe::Unknown };
    let fd = match dir.open_file(&tag_file_name(tag), false) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Probe::Dead,
        Err(_) => return Probe::Unknown,
    };
    // A non-regular file under a token name is not a token: not ours to
    // judge, so never "dead".
    if !crate::sys::shm::fstat(fd.as_fd()).is_ok_and(|i| i.regular) {
        return Probe::Unknown;
    }
    match lock_held(&fd) {
        Ok(false) => Probe::Dead,
        Ok(true) => {
            let mut head = [0u8; 8];
            match crate::sys::shm::read_at(fd.as_fd(), &mut head, 0) {
                Ok(8) => Probe::Alive { nonce: u64::from_ne_bytes(head), fd },
                _ => Probe::Unknown,
            }
        }
        Err(_) => Probe::Unknown,
    }
}

#[cfg(feature = "inspect")]
/// What a token file says, read without taking or changing anything (for
/// `shmproc::inspect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TagInfo {
    /// The pid written in the token file (`None` if there is no file or it
    /// could not be read).
    pub(crate) pid: Option<u32>,
    /// The nonce written in the token file.
    pub(crate) nonce: Option<u64>,
    /// [`Liveness::Dead`] only if the kernel confirms no process holds it.
    pub(crate) liveness: Liveness,
}

#[cfg(feature = "inspect")]
/// Reads the token file of `tag`: the pid and nonce recorded there and
/// whether its owner lives. Never opens this process's own token (that
/// would drop its lock), and never creates a token.
pub(crate) fn tag_info(tag: u32) -> TagInfo {
    if let Some(h) = held().as_ref()
        && h.token.tag() == tag
        && h.token.pid == crate::sys::process::pid()
    {
        return TagInfo { pid: Some(h.token.pid), nonce: Some(h.token.nonce), liveness: Liveness::Alive };
    }
    match probe(tag) {
        Probe::Dead => TagInfo { pid: None, nonce: None, liveness: Liveness::Dead },
        Probe::Unknown => TagInfo { pid: None, nonce: None, liveness: Liveness::Alive },
        Probe::Alive { nonce, fd } => {
            let mut pid = [0u8; 4];
            let pid = match crate::sys::shm::read_at(fd.as_fd(), &mut pid, 8) {
                Ok(4) => Some(u32::from_ne_bytes(pid)),
                _ => None,
            };
            TagInfo { pid, nonce: Some(nonce), liveness: Liveness::Alive }
        }
    }
}

#[cfg(feature = "inspect")]
/// The tag a token file name stands for (`shmproc@<6 hex digits>`).
pub(crate) fn tag_of_file(name: &str) -> Option<u32> {
    parse_tag(name)
}

/// Removes up to `max` token files whose owners are confirmed dead; returns
/// how many were removed.
pub(crate) fn sweep_dead(dir: &Dir, max: usize) -> io::Result<usize> {
    let mut removed = 0;
    for name in dir.list(TOKEN_PREFIX)? {
        if removed >= max {
            break;
        }
        let Some(tag) = parse_tag(&name) else { continue };
        if held().as_ref().is_some_and(|h| h.token.tag() == tag) {
            continue;
        }
        if matches!(probe(tag), Probe::Dead) && dir.unlink(&name).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

// ---------------------------------------------------------------------
// Owner ids for locks: see `owner/id.rs`.

/// What a thread knows about itself, kept for its exit ([`ThreadSlot`]).
#[derive(Clone, Copy)]
struct Me {
    fork_gen: u32,
    id: u32,
    nonce: u64,
}

/// The thread's slot, freed (or marked DEAD) when the thread exits.
struct ThreadSlot {
    me: Cell<Option<Me>>,
}

impl Drop for ThreadSlot {
    fn drop(&mut self) {
        // From here on this thread has no id: a lock taken by a later
        // thread-local destructor gets an error (`me_slow`), never the id
        // of a slot another thread may be given next.
        let locks_held = FAST.with(|f| f.replace(Fast::NONE).held);
        let Some(me) = self.me.get() else { return };
        if me.fork_gen != FORK_GEN.load(Ordering::Relaxed) {
            return;
        }
        let slot = id::slot_of(me.id) as u16;
        if slot == 0 {
            return;
        }
        if let Some(h) = held().as_mut() {
            if h.token.nonce != me.nonce {
                return;
            }
            if locks_held > 0 {
                // Exiting while holding locks: waiters will find the owner
                // dead. The slot is never reused.
                h.slot_state(slot).store(SLOT_DEAD, Ordering::Release);
            } else {
                h.slot_state(slot).store(SLOT_FREE, Ordering::Relaxed);
                h.free_slots.push(slot);
            }
        }
    }
}

/// The lock fast path's view of the calling thread: its owner id (0: not
/// known, ask [`me_slow`]), its process's nonce, and how many locks it
/// holds now (guards not yet dropped, leaked ones included).
///
/// A `const` thread-local without a destructor: reading it is one load
/// at a fixed offset from the thread pointer, with no "registered yet?"
/// check, and it stays readable while other thread-locals are torn down.
/// A forked child must not use its parent's id: the fork hook
/// ([`after_fork_in_child`]) clears it, in the child's only thread, the
/// one that forked; so `me` needs no per-call fork check.
#[derive(Clone, Copy)]
struct Fast {
    id: u32,
    held: u32,
    nonce: u64,
}

impl Fast {
    const NONE: Fast = Fast { id: 0, held: 0, nonce: 0 };
}

thread_local! {
    static THREAD: ThreadSlot = const { ThreadSlot { me: Cell::new(None) } };
    static FAST: Cell<Fast> = const { Cell::new(Fast::NONE) };
}

/// The error of a thread that finds every thread slot taken.
const TOO_MANY_THREADS: &str = "more than 1023 threads of this process use shmproc locks at once";

/// This process's owner id with the thread slot bits 0 (for roles, which
/// belong to a process, not a thread), and its nonce. Needs no thread slot.
#[cfg_attr(shmproc_loom, allow(dead_code))] // the loom model of owners has its own
pub(crate) fn process_me() -> io::Result<(u32, u64)> {
    let token = current()?;
    Ok((id::compose(token.tag(), 0), token.nonce))
}

/// The calling thread's owner id and its process's nonce.
#[inline]
pub(crate) fn me() -> io::Result<(u32, u64)> {
    let f = FAST.with(Cell::get);
    if f.id != 0 {
        return Ok((f.id, f.nonce));
    }
    me_slow()
}

#[cold]
fn me_slow() -> io::Result<(u32, u64)> {
    // A thread whose thread-locals are being torn down could not keep the
    // id it is given, and would get another one on each call.
    if THREAD.try_with(|_| ()).is_err() {
        return Err(io::Error::other("shmproc locks cannot be used from a thread-local destructor"));
    }
    let fgen = FORK_GEN.load(Ordering::Relaxed);
    let token = current()?;
    let slot = {
        let mut g = held();
        let h = g.as_mut().ok_or_else(|| io::Error::other("token vanished"))?;
        let slot = if let Some(s) = h.free_slots.pop() {
            s
        } else if usize::from(h.next_slot) < SLOTS {
            h.next_slot += 1;
            h.next_slot - 1
        } else {
            // Two threads must never share an owner id (a lock would take
            // one for the other), so the next thread gets an error.
            return Err(io::Error::other(TOO_MANY_THREADS));
        };
        h.slot_state(slot).store(SLOT_LIVE, Ordering::Relaxed);
        slot
    };
    let id = id::compose(token.tag(), u32::from(slot));
    let me = Me { fork_gen: fgen, id, nonce: token.nonce };
    if THREAD.try_with(|t| t.me.set(Some(me))).is_ok() {
        FAST.with(|f| f.set(Fast { id, held: 0, nonce: token.nonce }));
    }
    Ok((id, token.nonce))
}

/// Forgets the calling thread's id (in a forked child: it was the
/// parent's). Async-signal-safe: one thread-local store.
fn forget_my_id() {
    FAST.with(|f| f.set(Fast::NONE));
}

/// Counts a lock taken by this thread.
#[inline]
pub(crate) fn note_acquired() {
    FAST.with(|f| {
        let mut v = f.get();
        v.held = v.held.wrapping_add(1);
        f.set(v);
    });
}

/// Counts a lock released by this thread.
#[inline]
pub(crate) fn note_released() {
    FAST.with(|f| {
        let mut v = f.get();
        v.held = v.held.saturating_sub(1);
        f.set(v);
    });
}

/// Whether the owner `id`, recorded with process nonce `nonce` (0 if the
/// record was not written yet), is confirmed dead.
pub(crate) fn owner_dead(id: u32, nonce: u64) -> bool {
    let tag = id::tag_of(id);
    let slot = id::slot_of(id) as usize;
    if let Some(h) = held().as_ref()
        && h.token.tag() == tag
        && h.token.pid == crate::sys::process::pid()
    {
        let slot_dead = slot != 0 && h.slot_state(slot as u16).load(Ordering::Acquire) == SLOT_DEAD;
        return judge(id, nonce, TokenState::Alive { nonce: h.token.nonce, slot_dead });
    }
    let token = match probe(tag) {
        Probe::Dead => TokenState::Dead,
        Probe::Unknown => TokenState::Unknown,
        Probe::Alive { nonce: file_nonce, fd } => {
            let mut st = [0u8; 4];
            let slot_dead = slot != 0
                && matches!(
                    crate::sys::shm::read_at(fd.as_fd(), &mut st, (SLOT_BASE + slot * SLOT_SIZE) as u64),
                    Ok(4)
                )
                && u32::from_ne_bytes(st) == SLOT_DEAD;
            TokenState::Alive { nonce: file_nonce, slot_dead }
        }
    };
    judge(id, nonce, token)
}

/// What the token of an owner's tag shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenState {
    /// No process holds a token with this tag (the kernel confirms it).
    Dead,
    /// The token could not be read: never judged dead.
    Unknown,
    /// A live process holds the tag's token, with this nonce; `slot_dead`:
    /// the owner's thread slot is marked dead in it.
    Alive {
        /// The nonce of the process that holds the tag now.
        nonce: u64,
        /// Whether the owner's thread exited holding locks.
        slot_dead: bool,
    },
}

/// The one rule for "is owner `id`, recorded with nonce `recorded` (0: not
/// known), dead?", given what its tag's token shows. A recorded nonce of
/// the same tag that differs from the token's names an earlier holder of
/// the tag, gone before the tag was reused. The record is trusted only
/// because objects keep it 0 or the nonce of the owner in their word (see
/// `sync/raw_mutex.rs`); a record of another tag was not written by this
/// owner, and the token alone decides. Used by the loom model of owners
/// too, so the models check this rule.
pub(crate) fn judge(id: u32, recorded: u64, token: TokenState) -> bool {
    let tag = id::tag_of(id);
    let record_matches = recorded != 0 && id::tag_of_nonce(recorded) == tag;
    match token {
        TokenState::Dead => true,
        TokenState::Unknown => false,
        TokenState::Alive { nonce, slot_dead } => (record_matches && nonce != recorded) || slot_dead,
    }
}

impl Probe {
    #[cfg(test)]
    fn is_dead(&self) -> bool {
        matches!(self, Probe::Dead)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_parse() {
        assert_eq!(parse_tag(&tag_file_name(0x12ab)), Some(0x12ab));
        assert_eq!(parse_tag("shmproc@000000"), None);
        assert_eq!(parse_tag("shmproc@zzzzzz"), None);
        assert_eq!(parse_tag("shmproc@1234"), None);
        assert_eq!(parse_tag("other"), None);
    }

    #[test]
    fn own_token_is_alive_and_a_missing_one_dead() {
        let me = current().expect("token");
        assert_eq!(current().expect("token"), me, "stable within a process");
        assert_eq!(liveness(me), Liveness::Alive);
        // Same tag, other nonce: an earlier owner of our tag, dead; and our
        // own file was not opened (our lock is still held: we stay alive).
        let ghost = Token { pid: me.pid, nonce: me.nonce ^ (1 << 40) };
        assert_eq!(liveness(ghost), Liveness::Dead);
        assert_eq!(liveness(me), Liveness::Alive);
        let missing = Token { pid: 1, nonce: (me.nonce & !TAG_MASK) | ((me.nonce + 1) & TAG_MASK).max(1) };
        // Another tag that (almost surely) has no file.
        if probe(missing.tag()).is_dead() {
            assert_eq!(liveness(missing), Liveness::Dead);
        }
    }

    #[test]
    fn owner_ids_identify_threads() {
        let (a, na) = me().expect("me");
        let (b, nb) = std::thread::spawn(|| me().expect("me")).join().expect("thread");
        assert_eq!(na, nb, "same process");
        assert_ne!(a, b, "threads get their own slots");
        assert_eq!(id::tag_of(a), id::tag_of(b), "same tag");
        assert!(!owner_dead(a, na));
        // Thread b exited holding nothing: its slot is free, not dead.
        assert!(!owner_dead(b, nb));
        // A thread that exits holding a lock is dead.
        let (c, nc) = std::thread::spawn(|| {
            let id = me().expect("me");
            note_acquired();
            id
        })
        .join()
        .expect("thread");
        assert!(owner_dead(c, nc));
    }
}
