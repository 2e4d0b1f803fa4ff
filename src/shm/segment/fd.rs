//! Passing segments between processes as descriptors: duplicates,
//! inheritable copies for `exec`, and `SCM_RIGHTS` over a Unix socket.

use super::*;

impl Segment {
    /// Opens a segment from a descriptor (a memfd received over a socket or
    /// inherited by a re-executed child) and validates it like [`open`](Segment::open).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmproc::Segment;
    /// let a = Segment::anonymous(64)?;
    /// a.write_at(0, &[7])?;
    /// let b = Segment::from_fd(a.share_fd()?)?;
    /// let mut x = [0u8];
    /// b.read_at(0, &mut x)?;
    /// assert_eq!(x, [7]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`open`](Segment::open).
    pub fn from_fd(fd: OwnedFd) -> Result<Segment> {
        let expect = Expect { kind: Some(kind::RAW), layout_hash: Some(0), min_payload: 0 };
        Segment::adopt(fd, DirRef::Default, None, &expect, DEFAULT_OPEN_TIMEOUT)
    }

    pub(crate) fn from_fd_expecting(fd: OwnedFd, kind: u32, layout_hash: u64) -> Result<Segment> {
        let expect = Expect { kind: Some(kind), layout_hash: Some(layout_hash), min_payload: 0 };
        Segment::adopt(fd, DirRef::Default, None, &expect, DEFAULT_OPEN_TIMEOUT)
    }

    /// Opens a segment from a descriptor number this process inherited
    /// (see [`inheritable_fd`](Segment::inheritable_fd)). The number is
    /// duplicated, not taken over.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    /// let seg = shmproc::Segment::anonymous(8)?;
    /// let fd = seg.inheritable_fd()?; // in a real program: its number goes to a child
    /// // SAFETY: `fd` is open, and ours, for the whole call.
    /// let same = unsafe { shmproc::Segment::from_inherited_fd(fd.as_raw_fd()) }?;
    /// assert_eq!(same.len(), 8);
    /// // SAFETY: -1 is never an open descriptor.
    /// assert!(unsafe { shmproc::Segment::from_inherited_fd(-1) }.is_err());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Safety
    ///
    /// A descriptor number is like a raw pointer: this call reads the
    /// object behind whatever descriptor has that number now. The caller
    /// guarantees that `fd` is not open, or is a descriptor handed to this
    /// process for this purpose (its number passed by the parent, as
    /// `inheritable_fd` intends) that no other code in the process uses as
    /// its own or closes during the call. (A number that another part of
    /// the process owns would give this segment its object, beside that
    /// code's own views of it.)
    ///
    /// # Errors
    /// [`Error::Os`] if `fd` is not open; then as for [`from_fd`](Segment::from_fd).
    #[allow(unsafe_code)] // declares a contract only; the body is safe code
    pub unsafe fn from_inherited_fd(fd: i32) -> Result<Segment> {
        Segment::from_fd(sysshm::adopt_fd(fd).map_err(|e| Error::os("fcntl(F_GETFD)", e))?)
    }

    /// A duplicate of the segment's descriptor (close-on-exec), to pass to
    /// another process with [`send_to`](Segment::send_to) or [`from_fd`](Segment::from_fd).
    ///
    /// # Examples
    ///
    /// ```
    /// let seg = shmproc::Segment::anonymous(8)?;
    /// let copy = shmproc::Segment::from_fd(seg.share_fd()?)?;
    /// assert_eq!(copy.len(), 8);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Os`].
    pub fn share_fd(&self) -> Result<OwnedFd> {
        sysshm::dup(self.inner.fd.as_fd()).map_err(|e| Error::os("fcntl(F_DUPFD_CLOEXEC)", e))
    }

    /// A duplicate of the segment's descriptor that survives `exec`, for a
    /// child started with `std::process::Command`; pass its number (for
    /// example in an environment variable) and open it there with
    /// [`from_inherited_fd`](Segment::from_inherited_fd). Keep the returned
    /// `OwnedFd` alive until the child has started.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    /// let seg = shmproc::Segment::anonymous(8)?;
    /// let fd = seg.inheritable_fd()?;
    /// let child = std::process::Command::new("true").env("MY_SEGMENT_FD", fd.as_raw_fd().to_string()).status();
    /// assert!(child.is_ok());
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Os`].
    pub fn inheritable_fd(&self) -> Result<OwnedFd> {
        let fd = self.share_fd()?;
        sysshm::set_inheritable(fd.as_fd(), true).map_err(|e| Error::os("fcntl(F_SETFD)", e))?;
        Ok(fd)
    }

    /// Sends the segment's descriptor over a Unix socket (`SCM_RIGHTS`).
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = std::os::unix::net::UnixStream::pair().expect("socketpair");
    /// let seg = shmproc::Segment::anonymous(8)?;
    /// seg.write_at(0, &[42])?;
    /// seg.send_to(&a)?;
    /// let got = shmproc::Segment::recv_from(&b)?;
    /// let mut x = [0u8];
    /// got.read_at(0, &mut x)?;
    /// assert_eq!(x, [42]);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Os`].
    pub fn send_to(&self, socket: &UnixStream) -> Result<()> {
        sysshm::send_fds(socket.as_fd(), &[self.inner.fd.as_fd()]).map_err(|e| Error::os("sendmsg(SCM_RIGHTS)", e))
    }

    /// Receives a segment sent with [`send_to`](Segment::send_to) and
    /// validates it.
    ///
    /// # Examples
    ///
    /// ```
    /// let (a, b) = std::os::unix::net::UnixStream::pair().expect("socketpair");
    /// shmproc::Segment::anonymous(8)?.send_to(&a)?;
    /// assert_eq!(shmproc::Segment::recv_from(&b)?.len(), 8);
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Os`], [`Error::Corrupt`] if no descriptor came, then as for
    /// [`from_fd`](Segment::from_fd).
    pub fn recv_from(socket: &UnixStream) -> Result<Segment> {
        let mut fds = sysshm::recv_fds(socket.as_fd(), 1).map_err(|e| Error::os("recvmsg(SCM_RIGHTS)", e))?;
        let fd = fds.pop().ok_or_else(|| Error::Corrupt { what: "no descriptor in the message" })?;
        Segment::from_fd(fd)
    }
}
