//! The parcel post: how descriptors ride beside a channel's messages.
//!
//! A message's bytes travel through the lane's ring; descriptors cannot
//! (they are per-process). So every `Queue`, `JoinableQueue`, typed channel
//! and `Pipe` made by [`Post::new`] has a `SOCK_SEQPACKET` socket pair
//! (both ends close-on-exec and non-blocking). Its two descriptors travel
//! with the channel's handle wherever the handle travels (they join the
//! handoff list beside the segment's descriptor). A lane sends on one end
//! and receives on the other (a duplex pipe's two lanes use the pair in
//! the two directions).
//!
//! A put that collected descriptors while encoding its item (see
//! `shm/handoff.rs`) sends, under the lane's send lock and only once the
//! ring has room for the record, one datagram `[parcel id: u64][count:
//! u32]` with the descriptors (`SCM_RIGHTS`), and then publishes the
//! record, tagged [`PARCEL`] and prefixed by the parcel id. Parcel ids come
//! from the lane's shared counter (`Side::parcels` of the sending side),
//! advanced under the send lock: socket order is ring order. Records
//! without descriptors are unchanged (the hot path).
//!
//! A get that pops a parcel record, still under the receive lock, peeks at
//! the head datagram's id (no control buffer: nothing is installed), takes
//! and closes datagrams with smaller ids, takes its own
//! (`MSG_CMSG_CLOEXEC`), checks the count against the descriptors that
//! came and `MSG_CTRUNC`, and decodes the item with them.
//!
//! What a crash does at each step:
//! - a sender killed after its datagram and before publishing: the
//!   datagram is an orphan; the next parcel get discards it (smaller id);
//! - a receiver killed after popping a record and before taking its
//!   datagram: the same (the item is lost with its taker, as any item);
//! - a receiver killed after taking a datagram (its descriptors die with
//!   it) and before the record left the ring cannot happen: the record is
//!   popped first;
//! - a datagram missing for a record (the head id is larger, or the socket
//!   is empty): that get fails with [`Error::Codec`] naming it, the item is
//!   dropped, and the next get goes on;
//! - descriptors in flight when the last process holding the channel
//!   exits are closed by the kernel with the socket.
//!
//! A full socket (the kernel's limit on queued bytes, raised at creation
//! as far as `net.core.wmem_max` allows; a few hundred parcels by default)
//! or the per-user limit on descriptors in flight (`ETOOMANYREFS`, about
//! `RLIMIT_NOFILE`) makes a put wait as a put to a full queue does: a `try_`
//! put gives its item back as `Full`, a timed one waits until its deadline,
//! a blocking one waits until receivers take parcels (or the queue is
//! closed or shut down, or every receiver is gone). It waits WITHOUT the
//! send lock (polling the socket for room, or napping on the in-flight
//! limit, which no poll reports) and then tries again from scratch: other
//! producers go on meanwhile, and the id it spent is only a gap. So one
//! thread that puts more parcels than that and gets them only afterwards
//! waits forever on a blocking put, as with a bounded queue.
//!
//! A queue opened by name from an unrelated process has no socket: a put
//! whose item carries descriptors fails there with [`Error::Codec`] naming
//! where descriptors travel (the item comes back in the error); a get that
//! finds an item with descriptors at the head fails with
//! [`Error::Unsupported`] and leaves the item for a handle with the socket
//! (only an immediate shutdown from such a handle removes it, as it removes
//! every item). Items without descriptors work as before.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};
use crate::shm::handoff;

/// The record-tag flag of a record whose first 8 bytes are a parcel id.
pub(crate) const PARCEL: u32 = 0x100;

/// Bytes of a datagram: parcel id, descriptor count.
pub(crate) const DATAGRAM: usize = 12;

/// Most datagrams one get discards (orphans, garbage) before it gives up
/// with an error.
pub(crate) const MAX_DISCARDS: usize = 1 << 16;

/// Why a put with descriptors cannot happen on a channel without a socket.
pub(crate) const NO_SOCKET: &str = "descriptors in an item of a channel opened by name (it has no socket to carry \
     them; pass the channel's handle to the process instead)";

/// Why a get on a channel without a socket stops at an item with
/// descriptors (it leaves the item in the queue).
pub(crate) const NO_SOCKET_RECV: &str = "an item with descriptors at the head of a channel opened by name (it has \
     no socket to receive them; the item stays for a handle that came from the channel's creator)";

/// A channel's socket pair (see the module docs).
#[derive(Debug, Clone)]
pub(crate) struct Post {
    pair: Arc<[OwnedFd; 2]>,
}

impl Post {
    /// A new socket pair.
    pub(crate) fn new() -> Result<Post> {
        let (a, b) = crate::sys::parcel::seqpacket_pair().map_err(|e| Error::os("socketpair", e))?;
        Ok(Post { pair: Arc::new([a, b]) })
    }

    /// The ends as lane `dir` (0 or 1) uses them: it sends on end `dir`
    /// and receives on the other.
    pub(crate) fn lane(&self, dir: usize) -> LanePost {
        LanePost { pair: Arc::clone(&self.pair), dir: dir & 1 }
    }
}

/// One lane's view of a channel's socket pair.
#[derive(Debug)]
pub(crate) struct LanePost {
    pair: Arc<[OwnedFd; 2]>,
    dir: usize,
}

impl LanePost {
    /// The end this lane sends on.
    pub(crate) fn send_end(&self) -> std::os::fd::BorrowedFd<'_> {
        self.pair[self.dir].as_fd()
    }

    /// The end this lane receives on.
    pub(crate) fn recv_end(&self) -> std::os::fd::BorrowedFd<'_> {
        self.pair[1 - self.dir].as_fd()
    }
}

/// A handle's socket pair, serialized beside its segment: its two
/// descriptors inside an encoding that collects them, nothing elsewhere
/// (a named channel's handle then decodes without a socket).
pub(crate) fn serialize<S: Serializer>(post: Option<&Post>, s: S) -> std::result::Result<S::Ok, S::Error> {
    struct Plain<'a>(&'a OwnedFd);
    impl Serialize for Plain<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
            handoff::serialize_plain(self.0.as_fd(), s)
        }
    }
    // A probing encoding (a channel message whose handles are named) sends
    // no socket: the handle arrives as one opened by name would.
    match post {
        Some(p) if handoff::is_collecting() => Some((Plain(&p.pair[0]), Plain(&p.pair[1]))).serialize(s),
        _ => None::<(Plain<'_>, Plain<'_>)>.serialize(s),
    }
}

/// Decodes what [`serialize`] wrote.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<Post>, D::Error> {
    struct Plain(OwnedFd);
    impl<'de> Deserialize<'de> for Plain {
        fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Plain, D::Error> {
            handoff::deserialize_plain(d).map(Plain)
        }
    }
    let got = Option::<(Plain, Plain)>::deserialize(d)?;
    Ok(got.map(|(a, b)| Post { pair: Arc::new([a.0, b.0]) }))
}

/// The handle's socket pair as a serde value (for tuples).
pub(crate) struct Wire<'a>(pub(crate) Option<&'a Post>);

impl Serialize for Wire<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        serialize(self.0, s)
    }
}

/// A decoded socket pair (for tuples).
pub(crate) struct Received(pub(crate) Option<Post>);

impl<'de> Deserialize<'de> for Received {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Received, D::Error> {
        deserialize(d).map(Received)
    }
}

#[cfg(all(test, not(shmproc_loom)))]
mod tests {
    use std::os::fd::AsFd;

    use crate::channel::queue::Queue;
    use crate::sys::parcel;
    use crate::{Error, Fd, GetError};

    fn file() -> std::fs::File {
        std::fs::File::open("/proc/self/exe").expect("open")
    }

    /// An orphan datagram (a sender killed after sending it, before
    /// publishing its item; or a receiver killed after popping an item,
    /// before taking its datagram) is discarded by the next parcel get.
    #[test]
    fn orphans_are_discarded_by_the_next_get() {
        let q = Queue::<Fd<std::fs::File>>::new(0).expect("queue");
        let post = q.post().expect("a made queue has a socket").lane(0);
        let mut dg = [0u8; super::DATAGRAM];
        dg[8..].copy_from_slice(&1u32.to_le_bytes());
        let orphan = file();
        parcel::send(post.send_end(), &dg, &[orphan.as_fd()]).expect("orphan");
        q.put(Fd::new(file())).expect("put");
        assert!(q.get().expect("get").metadata().expect("meta").is_file());
        let mut buf = [0u8; super::DATAGRAM];
        assert!(parcel::peek(post.recv_end(), &mut buf).expect("peek").is_none(), "the orphan is gone too");
    }

    /// An item whose datagram is gone (taken by a receiver that died) is a
    /// typed error for that get, and the next get goes on.
    #[test]
    fn an_item_whose_descriptors_are_gone_is_an_error_not_a_hang() {
        let q = Queue::<Fd<std::fs::File>>::new(0).expect("queue");
        let post = q.post().expect("socket").lane(0);
        q.put(Fd::new(file())).expect("put");
        let mut buf = [0u8; super::DATAGRAM];
        let stolen = parcel::take(post.recv_end(), &mut buf, parcel::MAX_FDS).expect("take").expect("a datagram");
        assert_eq!(stolen.fds.len(), 1);
        match q.get() {
            Err(GetError::Failed(Error::Codec { message })) => assert!(message.contains("gone"), "{message}"),
            other => panic!("unexpected {other:?}"),
        }
        q.put(Fd::new(file())).expect("put");
        // The datagram of a later item is at the head: an earlier item
        // without its datagram fails, later ones do not.
        q.put(Fd::new(file())).expect("put");
        let mut b = [0u8; super::DATAGRAM];
        drop(parcel::take(post.recv_end(), &mut b, parcel::MAX_FDS).expect("take"));
        assert!(q.get().is_err(), "its datagram was taken");
        assert!(q.get().expect("the next one").metadata().is_ok());
    }

    /// A `JoinableQueue` item whose descriptors are gone fails its get and
    /// is not counted as taken: nobody could mark it done, and `join` must
    /// not wait for it.
    #[test]
    fn a_joinable_item_whose_descriptors_are_gone_is_not_left_unfinished() {
        let q = crate::JoinableQueue::<Fd<std::fs::File>>::new(0).expect("queue");
        let post = q.queue().post().expect("socket").lane(0);
        q.put(Fd::new(file())).expect("put");
        let mut buf = [0u8; super::DATAGRAM];
        drop(parcel::take(post.recv_end(), &mut buf, parcel::MAX_FDS).expect("take"));
        assert!(q.get().is_err(), "its datagram was taken");
        assert_eq!(q.unfinished(), 0);
        q.join_timeout(std::time::Duration::from_secs(10)).expect("join returns");
    }

    /// A datagram whose id was never issued (forged by a peer holding the
    /// socket) is discarded, not left at the head to fail every later get.
    #[test]
    fn a_forged_datagram_id_is_discarded() {
        let q = Queue::<Fd<std::fs::File>>::new(0).expect("queue");
        let post = q.post().expect("socket").lane(0);
        let f = file();
        let mut dg = [0u8; super::DATAGRAM];
        dg[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        dg[8..].copy_from_slice(&1u32.to_le_bytes());
        parcel::send(post.send_end(), &dg, &[f.as_fd()]).expect("forge");
        q.put(Fd::new(file())).expect("put");
        assert!(q.get().expect("the real item").metadata().is_ok());
        q.put(Fd::new(file())).expect("put");
        assert!(q.get().expect("and the next").metadata().is_ok());
    }

    /// A full socket: a `try_` put gives its item back, a timed one times
    /// out, and what was sent still arrives.
    #[test]
    fn a_full_socket_respects_the_call_s_wait() {
        let q = Queue::<Fd<std::fs::File>>::new(0).expect("queue");
        let post = q.post().expect("socket").lane(0);
        fill(&post);
        assert!(matches!(q.try_put(Fd::new(file())), Err(crate::TryPutError::Full(_))));
        let r = q.put_timeout(Fd::new(file()), std::time::Duration::from_millis(20));
        assert!(r.is_err_and(|e| e.is_timeout()));
        assert!(q.is_empty(), "nothing was published without its datagram");
        // Drain the orphans by hand; then a put goes through.
        let mut b = [0u8; super::DATAGRAM];
        while parcel::take(post.recv_end(), &mut b, parcel::MAX_FDS).expect("take").is_some() {}
        q.put(Fd::new(file())).expect("put");
        assert!(q.get().is_ok());
    }

    /// Fills the socket with orphan datagrams until the kernel says no.
    fn fill(post: &super::LanePost) -> usize {
        let f = file();
        let dg = [0u8; super::DATAGRAM];
        let mut n = 0;
        loop {
            match parcel::send(post.send_end(), &dg, &[f.as_fd()]) {
                Ok(()) => n += 1,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
            assert!(n < 1_000_000, "the socket never filled");
        }
        n
    }

    /// Takes the `n` orphans `fill` left, by hand.
    fn drain(post: &super::LanePost, n: usize) {
        let mut b = [0u8; super::DATAGRAM];
        for _ in 0..n {
            assert!(parcel::take(post.recv_end(), &mut b, parcel::MAX_FDS).expect("take").is_some());
        }
    }

    /// A put waiting for room on a full socket does not hold the send
    /// lock: another producer's item without descriptors goes through
    /// meanwhile, and the waiting put completes once there is room.
    #[test]
    fn a_put_waiting_on_a_full_socket_blocks_no_other_producer() {
        let q = Queue::<Option<Fd<std::fs::File>>>::new(0).expect("queue");
        let post = q.post().expect("socket").lane(0);
        let orphans = fill(&post);
        let waiting = {
            let q = q.clone();
            std::thread::spawn(move || q.put_timeout(Some(Fd::new(file())), std::time::Duration::from_secs(60)))
        };
        // Hang guard only: before the fix the waiting put held the lock.
        q.put_timeout(None, std::time::Duration::from_secs(30)).expect("a put without descriptors goes through");
        // A `try_` put on the full socket gives its item back.
        match q.try_put(Some(Fd::new(file()))) {
            Err(crate::TryPutError::Full(back)) => assert!(back.is_some_and(|f| f.metadata().is_ok())),
            other => panic!("unexpected {other:?}"),
        }
        drain(&post, orphans);
        waiting.join().expect("thread").expect("the waiting put completes");
        let mut got = [q.get().expect("get"), q.get().expect("get")];
        got.sort_by_key(Option::is_some);
        assert!(got[0].is_none() && got[1].as_ref().is_some_and(|f| f.metadata().is_ok()));
    }

    /// Encoding a descriptor outside any message is a clear codec error.
    #[test]
    fn outside_a_message_descriptors_do_not_encode() {
        match crate::codec::encode(&Fd::new(file())) {
            Err(Error::Codec { message }) => assert!(message.contains("descriptors travel only"), "{message}"),
            other => panic!("unexpected {other:?}"),
        }
    }
}
