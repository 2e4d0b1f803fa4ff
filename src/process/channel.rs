//! The per-child channel: an anonymous segment that carries the task to the
//! child and the result back. Results larger than the channel travel
//! through a named spill segment that the parent removes after reading.
//!
//! Descriptors in a result (`shmproc::Fd`) ride beside it: the channel
//! has a `SOCK_SEQPACKET` pair (`channel/post.rs`); the child sends one
//! datagram `[count: u32]` with the descriptors on its end before it
//! writes DONE, and the parent takes it (non-blocking: it is there once
//! DONE is) before it decodes the result. A child killed in between takes
//! nothing with it that the parent waits for; the datagram's descriptors
//! close with the parent's `Process`. The parent closes its copy of the
//! child's end as soon as the child has its own (see `take_child_end`), so
//! a live `Process` holds one end only.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::channel::spill;
use crate::error::{Error, Result};
use crate::shm::header::kind;
use crate::shm::layout::layout_hash;
use crate::shm::segment::Segment;

const STATE: usize = 0;
const OUTCOME: usize = 4;
const TASK_LEN: usize = 8;
const RESULT_LEN: usize = 16;
const DATA: usize = 64;
/// Room for results that need no spill segment.
const MIN_CAPACITY: usize = 64 * 1024;

/// State word: the child has not started the task.
const PENDING: u32 = 0;
/// The child is running the task.
const RUNNING: u32 = 1;
/// The child wrote an outcome (Release; the parent reads with Acquire).
const DONE: u32 = 2;

/// The task returned a value (the bytes are its encoding).
pub(crate) const OK: u32 = 1;
/// The task panicked (the bytes are the message).
pub(crate) const PANIC: u32 = 2;
/// The task could not run (the bytes are the message).
pub(crate) const TASK_ERROR: u32 = 3;
/// Flag: the bytes are the name of a spill segment holding the real bytes.
const SPILLED: u32 = 0x100;

const LAYOUT: u64 = layout_hash("shmproc::process::Channel", DATA, 8);

/// A child's task and result channel.
#[derive(Debug)]
pub(crate) struct Channel {
    seg: Segment,
    /// The child's (sending) end of the result socket: in the parent until
    /// the child has its own copy (then taken and closed), in a forked
    /// child to send on. `None` in a re-executed child, which gets its end
    /// separately (see `bootstrap.rs`).
    child_end: Option<OwnedFd>,
    /// The parent's (receiving) end of the result socket.
    parent_end: Option<OwnedFd>,
}

impl Channel {
    /// A channel holding `task`.
    pub(crate) fn new(task: &[u8]) -> Result<Channel> {
        let cap = task.len().max(MIN_CAPACITY);
        let seg = Segment::builder().size(DATA + cap).typed(kind::CHANNEL, LAYOUT).anonymous()?;
        let (child_end, parent_end) =
            crate::sys::parcel::seqpacket_pair().map_err(|e| Error::os("socketpair (result socket)", e))?;
        let ch = Channel { seg, child_end: Some(child_end), parent_end: Some(parent_end) };
        ch.seg.write_bytes(DATA, task)?;
        ch.word64(TASK_LEN).store(task.len() as u64, Ordering::Relaxed);
        Ok(ch)
    }

    /// The channel handed to this (child) process.
    pub(crate) fn from_fd(fd: OwnedFd) -> Result<Channel> {
        let seg = Segment::from_fd_expecting(fd, kind::CHANNEL, LAYOUT)?;
        if seg.len() < DATA {
            return Err(Error::Corrupt { what: "process channel too small" });
        }
        Ok(Channel { seg, child_end: None, parent_end: None })
    }

    /// The child's end of the result socket (in the parent, to pass on;
    /// in a forked child, to send on).
    pub(crate) fn child_end(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.child_end.as_ref().map(AsFd::as_fd)
    }

    /// Takes the child's end of the result socket out of the parent's
    /// channel: to hand it to a starting child (which then holds the only
    /// copy besides the one in flight), or to close it after a fork.
    pub(crate) fn take_child_end(&mut self) -> Option<OwnedFd> {
        self.child_end.take()
    }

    /// Takes the descriptors the child sent with its result (in the
    /// parent, once the outcome is DONE): none if it sent none.
    pub(crate) fn take_result_fds(&self) -> Result<Vec<OwnedFd>> {
        let Some(end) = &self.parent_end else { return Ok(Vec::new()) };
        let mut head = [0u8; 4];
        let sys = crate::sys::parcel::MAX_FDS;
        let os = |e| Error::os("receive the result's descriptors", e);
        let Some(t) = crate::sys::parcel::take(end.as_fd(), &mut head, sys).map_err(os)? else {
            return Ok(Vec::new());
        };
        // The child closed its end without sending: end of file, no datagram.
        if t.len == 0 && t.fds.is_empty() && !t.truncated {
            return Ok(Vec::new());
        }
        let count = u32::from_le_bytes(head) as usize;
        if t.len != head.len() || count > sys {
            return Err(Error::Corrupt { what: "result descriptors (count)" });
        }
        if t.truncated && t.fds.len() < count {
            // Room was made for every descriptor the count names, so the
            // kernel dropped some because it could not install them: this
            // process is at its descriptor limit.
            let limit = std::io::Error::from_raw_os_error(libc::EMFILE);
            return Err(Error::os("receive the result's descriptors (some were dropped)", limit));
        }
        if t.truncated || t.fds.len() != count {
            return Err(Error::Corrupt { what: "result descriptors (count)" });
        }
        Ok(t.fds)
    }

    pub(crate) fn segment(&self) -> &Segment {
        &self.seg
    }

    fn word32(&self, off: usize) -> &AtomicU32 {
        self.seg.typed_in(off).expect("invariant: channel words lie inside the channel (checked at open)")
    }

    fn word64(&self, off: usize) -> &AtomicU64 {
        self.seg.typed_in(off).expect("invariant: channel words lie inside the channel (checked at open)")
    }

    fn capacity(&self) -> usize {
        self.seg.len() - DATA
    }

    /// Reads a length word from shared memory and checks it against the
    /// channel's capacity: the other side may be buggy.
    fn checked_len(&self, off: usize) -> Result<usize> {
        let n = self.word64(off).load(Ordering::Relaxed);
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.capacity())
            .ok_or_else(|| Error::Corrupt { what: "process channel length out of range" })
    }

    /// The task bytes (in the child).
    pub(crate) fn task(&self) -> Result<Vec<u8>> {
        let n = self.checked_len(TASK_LEN)?;
        let mut buf = vec![0u8; n];
        self.seg.read_bytes(DATA, &mut buf)?;
        Ok(buf)
    }

    /// Marks the task as started (in the child).
    pub(crate) fn mark_running(&self) {
        self.word32(STATE).store(RUNNING, Ordering::Relaxed);
    }

    /// Whether the child reached its task.
    pub(crate) fn started(&self) -> bool {
        self.word32(STATE).load(Ordering::Relaxed) != PENDING
    }

    /// Writes the outcome (in the child). Too-large results go to a spill
    /// segment; if even that fails, the outcome becomes a task error.
    pub(crate) fn finish(&self, outcome: u32, bytes: &[u8]) {
        let (code, payload) = if bytes.len() <= self.capacity() {
            (outcome, bytes.to_vec())
        } else {
            match spill::spill_out(bytes, None) {
                Ok(reference) => (outcome | SPILLED, reference),
                Err(e) => {
                    (TASK_ERROR, format!("result of {} bytes could not be returned: {e}", bytes.len()).into_bytes())
                }
            }
        };
        let payload = &payload[..payload.len().min(self.capacity())];
        if self.seg.write_bytes(DATA, payload).is_err() {
            return;
        }
        self.word64(RESULT_LEN).store(payload.len() as u64, Ordering::Relaxed);
        self.word32(OUTCOME).store(code, Ordering::Relaxed);
        // Release: pairs with the Acquire in `result`; the bytes and words
        // above are visible to the parent once it sees DONE.
        self.word32(STATE).store(DONE, Ordering::Release);
    }

    /// The outcome, if the child wrote one (in the parent).
    pub(crate) fn result(&self) -> Result<Option<(u32, Vec<u8>)>> {
        // Acquire: pairs with the Release store in `finish`.
        if self.word32(STATE).load(Ordering::Acquire) != DONE {
            return Ok(None);
        }
        let code = self.word32(OUTCOME).load(Ordering::Relaxed);
        let n = self.checked_len(RESULT_LEN)?;
        let mut buf = vec![0u8; n];
        self.seg.read_bytes(DATA, &mut buf)?;
        if code & SPILLED == 0 {
            return Ok(Some((code, buf)));
        }
        // The reference comes from the child: `spill_in` checks it (a spill
        // name, a length within the segment) before it opens or unlinks
        // anything, so a child cannot make us unlink another object.
        let mut bytes = Vec::new();
        spill::spill_in(&buf, &mut bytes)?;
        Ok(Some((code & !SPILLED, bytes)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_and_result_round_trip() {
        let ch = Channel::new(b"task").expect("channel");
        let child = Channel::from_fd(ch.segment().share_fd().expect("fd")).expect("open");
        assert_eq!(child.task().expect("task"), b"task");
        assert!(ch.result().expect("result").is_none());
        child.mark_running();
        assert!(ch.started());
        child.finish(OK, b"answer");
        assert_eq!(ch.result().expect("result"), Some((OK, b"answer".to_vec())));
    }

    #[test]
    fn large_results_spill_and_are_removed() {
        let ch = Channel::new(b"").expect("channel");
        let big = vec![7u8; MIN_CAPACITY * 3];
        ch.finish(OK, &big);
        let (code, bytes) = ch.result().expect("result").expect("done");
        assert_eq!(code, OK);
        assert_eq!(bytes, big);
    }

    #[test]
    fn hostile_lengths_are_refused() {
        let ch = Channel::new(b"x").expect("channel");
        ch.word64(TASK_LEN).store(u64::MAX, Ordering::Relaxed);
        assert!(matches!(ch.task(), Err(Error::Corrupt { .. })));
        ch.word64(RESULT_LEN).store(1 << 40, Ordering::Relaxed);
        ch.word32(STATE).store(DONE, Ordering::Release);
        assert!(matches!(ch.result(), Err(Error::Corrupt { .. })));
    }

    #[test]
    fn result_descriptors_are_checked_against_their_count() {
        let mut ch = Channel::new(b"").expect("channel");
        let end = ch.take_child_end().expect("child end");
        let file = std::fs::File::open("/proc/self/exe").expect("open");
        let one = [file.as_fd()];
        crate::sys::parcel::send(end.as_fd(), &2u32.to_le_bytes(), &one).expect("send");
        assert!(matches!(ch.take_result_fds(), Err(Error::Corrupt { .. })));
        crate::sys::parcel::send(end.as_fd(), &1u32.to_le_bytes(), &one).expect("send");
        assert_eq!(ch.take_result_fds().expect("take").len(), 1);
        drop(end);
        assert!(ch.take_result_fds().expect("end of file").is_empty());
    }

    /// A child that names another object as its spilled result makes the
    /// parent open or unlink nothing: the reference is not a spill one.
    #[test]
    fn a_spill_reference_naming_another_object_is_refused() {
        let victim = format!("channel-victim-{}", std::process::id());
        let seg = Segment::create(&victim, 16).expect("victim");
        let ch = Channel::new(b"").expect("channel");
        let mut reference = 16u64.to_le_bytes().to_vec();
        reference.extend_from_slice(victim.as_bytes());
        ch.seg.write_bytes(DATA, &reference).expect("write");
        ch.word64(RESULT_LEN).store(reference.len() as u64, Ordering::Relaxed);
        ch.word32(OUTCOME).store(OK | SPILLED, Ordering::Relaxed);
        ch.word32(STATE).store(DONE, Ordering::Release);
        assert!(matches!(ch.result(), Err(Error::Corrupt { .. })));
        assert!(Segment::open(&victim).is_ok(), "the named object is still there");
        drop(seg); // the creator's handle removes the name
    }
}
