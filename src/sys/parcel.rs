//! The socket calls of the parcel post (`channel/post.rs`): a
//! `SOCK_SEQPACKET` pair, one datagram with `SCM_RIGHTS` per parcel, a peek
//! at the head datagram's bytes, and a wait for room. All safe rustix
//! calls; the sockets are non-blocking, so no call here waits unless it is
//! [`wait_writable`].
//!
//! # References
//! - [unix(7)](https://man7.org/linux/man-pages/man7/unix.7.html), `SCM_RIGHTS`, `SOCK_SEQPACKET`
//! - [recvmsg(2)](https://man7.org/linux/man-pages/man2/recvmsg.2.html), `MSG_PEEK`, `MSG_CMSG_CLOEXEC`, `MSG_CTRUNC`

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::io::Errno;
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};

/// Most descriptors one `SCM_RIGHTS` message carries (the kernel's
/// `SCM_MAX_FD`).
pub(crate) const MAX_FDS: usize = 253;

/// A connected `SOCK_SEQPACKET` pair, both ends close-on-exec and
/// non-blocking: what is sent on one end is received on the other.
/// Each end's send buffer is raised towards [`SEND_BUFFER`] (the kernel
/// caps it at `net.core.wmem_max`; a refusal is ignored).
pub(crate) fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let (a, b) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )?;
    for end in [&a, &b] {
        // Ignored on failure: the default buffer works, it only fills sooner.
        let _ = rustix::net::sockopt::set_socket_send_buffer_size(end, SEND_BUFFER);
    }
    Ok((a, b))
}

/// The send buffer asked for on each end of a pair (bytes).
pub(crate) const SEND_BUFFER: usize = 4 << 20;

/// Whether a [`send`] failed on the per-user limit of descriptors in
/// flight (`ETOOMANYREFS`): like a full socket, it passes once receivers
/// take descriptors, but no poll says when.
pub(crate) fn is_too_many_in_flight(e: &io::Error) -> bool {
    e.raw_os_error() == Some(Errno::TOOMANYREFS.raw_os_error())
}

/// Sends `bytes` with `fds` as one datagram. `Err(WouldBlock)` if the
/// socket has no room now (the kernel's limit on queued bytes).
pub(crate) fn send(sock: BorrowedFd<'_>, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    if fds.len() > MAX_FDS {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "more than 253 descriptors in one message"));
    }
    let mut space = vec![std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(fds.len().max(1)))];
    let mut cmsg = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !cmsg.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "too many descriptors"));
    }
    loop {
        match rustix::net::sendmsg(
            sock,
            &[io::IoSlice::new(bytes)],
            &mut cmsg,
            SendFlags::NOSIGNAL | SendFlags::DONTWAIT,
        ) {
            Ok(n) if n == bytes.len() => return Ok(()),
            Ok(_) => return Err(io::Error::new(io::ErrorKind::WriteZero, "datagram sent in part")),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// The head datagram's first `buf.len()` bytes, without taking it and
/// without installing its descriptors (no control buffer): its length, or
/// `None` if the socket holds no datagram.
pub(crate) fn peek(sock: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Option<usize>> {
    loop {
        match rustix::net::recv(sock, &mut *buf, RecvFlags::PEEK | RecvFlags::DONTWAIT | RecvFlags::TRUNC) {
            Ok((_, n)) => return Ok(Some(n)),
            Err(Errno::INTR) => continue,
            Err(Errno::AGAIN) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
}

/// One datagram taken off a socket.
#[derive(Debug)]
pub(crate) struct Taken {
    /// Its length (it may be larger than the buffer).
    pub(crate) len: usize,
    /// The descriptors that came with it (close-on-exec).
    pub(crate) fds: Vec<OwnedFd>,
    /// Whether the kernel dropped descriptors for lack of room.
    pub(crate) truncated: bool,
}

/// Takes the head datagram into `buf` with up to `max_fds` descriptors
/// (close-on-exec); `None` if the socket holds none.
pub(crate) fn take(sock: BorrowedFd<'_>, buf: &mut [u8], max_fds: usize) -> io::Result<Option<Taken>> {
    let mut space = vec![std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(max_fds.max(1)))];
    let mut cmsg = RecvAncillaryBuffer::new(&mut space);
    let msg = loop {
        match rustix::net::recvmsg(
            sock,
            &mut [io::IoSliceMut::new(&mut *buf)],
            &mut cmsg,
            RecvFlags::CMSG_CLOEXEC | RecvFlags::DONTWAIT | RecvFlags::TRUNC,
        ) {
            Ok(m) => break m,
            Err(Errno::INTR) => continue,
            Err(Errno::AGAIN) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    };
    let mut fds = Vec::new();
    for m in cmsg.drain() {
        if let RecvAncillaryMessage::ScmRights(got) = m {
            fds.extend(got);
        }
    }
    Ok(Some(Taken { len: msg.bytes, fds, truncated: msg.flags.contains(ReturnFlags::CTRUNC) }))
}

/// Waits until `sock` may take a datagram, at most `timeout`: `false` if
/// the time ran out.
pub(crate) fn wait_writable(sock: BorrowedFd<'_>, timeout: Duration) -> io::Result<bool> {
    let ts = rustix::time::Timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: i64::from(timeout.subsec_nanos()),
    };
    let mut fds = [rustix::event::PollFd::new(&sock, rustix::event::PollFlags::OUT)];
    match rustix::event::poll(&mut fds, Some(&ts)) {
        Ok(n) => Ok(n > 0),
        Err(Errno::INTR) => Ok(false),
        Err(e) => Err(e.into()),
    }
}
