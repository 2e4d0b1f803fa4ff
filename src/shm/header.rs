//! The header at the start of every shmproc segment, and the
//! create/open handshake.
//!
//! ```text
//! offset size field          written by                   checked on open
//!      0    8 magic          creator, before publication  == MAGIC, else Corrupt
//!      8    4 format         creator                      == FORMAT, else VersionMismatch
//!     12    4 kind           creator                      == expected, else KindMismatch
//!     16    8 layout_hash    creator                      == expected, else LayoutMismatch
//!     24    8 len            creator                      == file size, else Truncated/Corrupt
//!     32    4 state          creator: INITIALIZING->READY  READY (waited for), else NotReady/Corrupt
//!     36    4 creator_pid    creator                      (display; liveness uses the token)
//!     40    8 creator_nonce  creator                      (liveness token with creator_pid)
//!     48    8 payload_len    creator                      <= len - HEADER_SIZE, else Corrupt
//!     56   72 (reserved, zero)
//!    128      payload
//! ```
//!
//! Every field is an atomic: after publication a buggy or hostile peer may
//! write any of them at any time, and `&SegmentHeader` must stay sound.
//! Openers load each field exactly once into a [`HeaderSnapshot`] and
//! validate the copy, so a value that changes between check and use (a
//! double fetch) cannot pass the check and then be used differently.

use std::time::Instant;

use crate::error::{Error, Result};
use crate::loom::atomic::{AtomicU32, AtomicU64, Ordering};
use crate::loom::futex;

/// `b"SHMPROC\0"` read as a little-endian u64.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"SHMPROC\0");
/// Bumped on any change of any layout shmproc puts in shared memory.
pub(crate) const FORMAT_VERSION: u32 = 1;
/// The ABI part of the format word: byte order and pointer width of the
/// writer, so a 32-bit or big-endian peer is told apart, not misread.
pub(crate) const ABI: u32 =
    (if cfg!(target_endian = "little") { 1 } else { 2 }) | (if cfg!(target_pointer_width = "64") { 4 } else { 8 });
/// The format word: version in the low 16 bits, ABI above.
pub(crate) const FORMAT: u32 = FORMAT_VERSION | (ABI << 16);
/// Size of the header; the payload starts here (a 128-byte boundary).
pub(crate) const HEADER_SIZE: usize = 128;

/// State word: still being built. Zero, so a fresh zero-filled file starts here.
pub(crate) const INITIALIZING: u32 = 0;
/// State word: fully built and published.
pub(crate) const READY: u32 = 0x5245_4459; // "READY" in spirit: b"YDER"
/// State word: the creator gave up; the object must not be used.
pub(crate) const POISONED: u32 = 0x504f_4953;

/// Object kinds stored in the header's `kind` field.
///
/// Every kind is listed here whatever features are built, so that no two
/// layers can pick the same number; the kinds of optional layers (queues,
/// pipes, pools, process channels) are unused in a build without them.
#[allow(dead_code)]
pub(crate) mod kind {
    /// Untyped bytes.
    pub(crate) const RAW: u32 = 1;
    /// One `T: ShmSafe` (the layout hash names `T`).
    pub(crate) const TYPED: u32 = 2;
    /// A child process's task and result channel.
    pub(crate) const CHANNEL: u32 = 3;
    /// A single-producer single-consumer ring.
    pub(crate) const SPSC: u32 = 4;
    /// A multi-producer multi-consumer ring of fixed-size values.
    pub(crate) const MPMC: u32 = 5;
    /// A single-producer single-consumer ring of byte messages.
    pub(crate) const BYTES: u32 = 6;
    /// A `Queue` or `JoinableQueue`.
    pub(crate) const QUEUE: u32 = 7;
    /// A `Pipe` (both directions).
    pub(crate) const PIPE: u32 = 8;
    /// A pool's worker table (`Pool`, `ProcessPoolExecutor`).
    pub(crate) const POOL: u32 = 9;
    /// An `Array` or `RawArray` (a length and the elements).
    pub(crate) const ARRAY: u32 = 11;
    /// An arena of small anonymous objects (`shm/heap.rs`).
    pub(crate) const HEAP: u32 = 12;
}

/// The header in shared memory. See the module docs for the table.
#[repr(C, align(128))]
pub(crate) struct SegmentHeader {
    pub(crate) magic: AtomicU64,
    pub(crate) format: AtomicU32,
    pub(crate) kind: AtomicU32,
    pub(crate) layout_hash: AtomicU64,
    pub(crate) len: AtomicU64,
    /// INITIALIZING -> READY, written once by the creator with Release
    /// (pairs with the Acquire in [`wait_ready`]); POISONED by a creator
    /// that failed. Nobody else writes it.
    pub(crate) state: AtomicU32,
    pub(crate) creator_pid: AtomicU32,
    pub(crate) creator_nonce: AtomicU64,
    pub(crate) payload_len: AtomicU64,
}

#[cfg(not(shmproc_loom))]
const _: () = {
    use core::mem::{align_of, offset_of, size_of};
    assert!(size_of::<SegmentHeader>() == HEADER_SIZE);
    assert!(align_of::<SegmentHeader>() == 128);
    assert!(offset_of!(SegmentHeader, magic) == 0);
    assert!(offset_of!(SegmentHeader, format) == 8);
    assert!(offset_of!(SegmentHeader, kind) == 12);
    assert!(offset_of!(SegmentHeader, layout_hash) == 16);
    assert!(offset_of!(SegmentHeader, len) == 24);
    assert!(offset_of!(SegmentHeader, state) == 32);
    assert!(offset_of!(SegmentHeader, creator_pid) == 36);
    assert!(offset_of!(SegmentHeader, creator_nonce) == 40);
    assert!(offset_of!(SegmentHeader, payload_len) == 48);
};

/// The values a creator writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeaderInit {
    pub(crate) kind: u32,
    pub(crate) layout_hash: u64,
    pub(crate) len: u64,
    pub(crate) payload_len: u64,
    pub(crate) creator_pid: u32,
    pub(crate) creator_nonce: u64,
}

impl SegmentHeader {
    /// Fills every field but `state` (which stays INITIALIZING). Relaxed:
    /// [`publish`] orders them all before READY.
    pub(crate) fn init(&self, v: &HeaderInit) {
        self.magic.store(MAGIC, Ordering::Relaxed);
        self.format.store(FORMAT, Ordering::Relaxed);
        self.kind.store(v.kind, Ordering::Relaxed);
        self.layout_hash.store(v.layout_hash, Ordering::Relaxed);
        self.len.store(v.len, Ordering::Relaxed);
        self.creator_pid.store(v.creator_pid, Ordering::Relaxed);
        self.creator_nonce.store(v.creator_nonce, Ordering::Relaxed);
        self.payload_len.store(v.payload_len, Ordering::Relaxed);
    }

    /// Loads every field once. Relaxed: called after [`wait_ready`]'s
    /// Acquire, which makes the creator's writes visible.
    pub(crate) fn snapshot(&self) -> HeaderSnapshot {
        HeaderSnapshot {
            magic: self.magic.load(Ordering::Relaxed),
            format: self.format.load(Ordering::Relaxed),
            kind: self.kind.load(Ordering::Relaxed),
            layout_hash: self.layout_hash.load(Ordering::Relaxed),
            len: self.len.load(Ordering::Relaxed),
            state: self.state.load(Ordering::Relaxed),
            creator_pid: self.creator_pid.load(Ordering::Relaxed),
            creator_nonce: self.creator_nonce.load(Ordering::Relaxed),
            payload_len: self.payload_len.load(Ordering::Relaxed),
        }
    }
}

/// Marks a header READY and wakes openers waiting for it.
pub(crate) fn publish(state: &AtomicU32) {
    // Release: pairs with the Acquire in `wait_ready`; everything the
    // creator wrote (header fields, payload) happens-before an opener's use.
    state.store(READY, Ordering::Release);
    futex::wake_all(state);
}

/// Waits until `state` is READY or `deadline` passes.
///
/// # Errors
/// [`Error::NotReady`] on timeout; [`Error::Corrupt`] if the state word
/// holds neither INITIALIZING nor READY.
pub(crate) fn wait_ready(state: &AtomicU32, deadline: Option<Instant>) -> Result<()> {
    loop {
        // Acquire: pairs with the Release store in `publish`.
        match state.load(Ordering::Acquire) {
            READY => return Ok(()),
            INITIALIZING => {}
            POISONED => return Err(Error::Corrupt { what: "its creator failed while building it" }),
            _ => return Err(Error::Corrupt { what: "unknown header state" }),
        }
        if let Some(d) = deadline
            && Instant::now() >= d
        {
            return Err(Error::NotReady);
        }
        let _ = futex::wait(state, INITIALIZING, deadline);
    }
}

/// One consistent copy of a header, taken by loading each field once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct HeaderSnapshot {
    pub(crate) magic: u64,
    pub(crate) format: u32,
    pub(crate) kind: u32,
    pub(crate) layout_hash: u64,
    pub(crate) len: u64,
    pub(crate) state: u32,
    pub(crate) creator_pid: u32,
    pub(crate) creator_nonce: u64,
    pub(crate) payload_len: u64,
}

/// What an opener expects to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Expect {
    /// The kind, or `None` for any.
    pub(crate) kind: Option<u32>,
    /// The layout hash, or `None` for any.
    pub(crate) layout_hash: Option<u64>,
    /// The least payload length acceptable.
    pub(crate) min_payload: u64,
}

impl HeaderSnapshot {
    /// Decodes a header from raw bytes (little-endian x86/ARM layout as in
    /// the table), e.g. read with `pread` by a cleaner that does not map.
    pub(crate) fn from_bytes(b: &[u8; HEADER_SIZE]) -> HeaderSnapshot {
        let u64_at = |o: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[o..o + 8]);
            u64::from_ne_bytes(a)
        };
        let u32_at = |o: usize| {
            let mut a = [0u8; 4];
            a.copy_from_slice(&b[o..o + 4]);
            u32::from_ne_bytes(a)
        };
        HeaderSnapshot {
            magic: u64_at(0),
            format: u32_at(8),
            kind: u32_at(12),
            layout_hash: u64_at(16),
            len: u64_at(24),
            state: u32_at(32),
            creator_pid: u32_at(36),
            creator_nonce: u64_at(40),
            payload_len: u64_at(48),
        }
    }

    /// Checks magic and format only: "is this a shmproc object of our
    /// version?" (what a cleaner needs before trusting the creator token).
    pub(crate) fn check_identity(&self) -> Result<()> {
        if self.magic != MAGIC {
            return Err(Error::Corrupt { what: "not a shmproc object (bad magic)" });
        }
        if self.format != FORMAT {
            return Err(Error::VersionMismatch { expected: FORMAT, found: self.format });
        }
        Ok(())
    }

    /// Validates a READY header against what the opener expects and the
    /// file's real size. Pure: no memory is touched beyond the snapshot.
    pub(crate) fn validate(&self, expect: &Expect, file_len: u64) -> Result<()> {
        self.check_identity()?;
        if self.state != READY {
            return Err(Error::Corrupt { what: "header state is not READY" });
        }
        if let Some(k) = expect.kind
            && self.kind != k
        {
            return Err(Error::KindMismatch { expected: k, found: self.kind });
        }
        if let Some(h) = expect.layout_hash
            && self.layout_hash != h
        {
            return Err(Error::LayoutMismatch { expected: h, found: self.layout_hash });
        }
        if self.len > file_len {
            return Err(Error::Truncated { expected: self.len, found: file_len });
        }
        if self.len < file_len {
            return Err(Error::Corrupt { what: "file is longer than its header says" });
        }
        if self.len < HEADER_SIZE as u64 {
            return Err(Error::Corrupt { what: "header length smaller than the header" });
        }
        if self.payload_len > self.len - HEADER_SIZE as u64 {
            return Err(Error::Corrupt { what: "payload length exceeds the segment" });
        }
        if self.payload_len < expect.min_payload {
            return Err(Error::SizeMismatch { expected: expect.min_payload, found: self.payload_len });
        }
        Ok(())
    }
}

#[cfg(all(test, not(shmproc_loom)))]
mod tests;

#[cfg(all(test, shmproc_loom))]
mod loom_handshake;
