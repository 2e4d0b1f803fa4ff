//! Typed channels in one process: every variant of every error type, the
//! iterators, clones and drops seen across threads, `Pod` items, the typed
//! duplex pipe, and handles that travel through encoding. The multi-process
//! cases (killed and stopped peers, every start method) are in
//! `tests/mp/channel.rs`.
#![cfg(feature = "serde")]

use std::time::{Duration, Instant};

use shmproc::Error;
use shmproc::channel::{
    Pod, RecvError, RecvTimeoutError, SendError, SendTimeoutError, Sender, TryRecvError, TrySendError,
};

/// Generous: only a guard against hangs.
const HANG_GUARD: Duration = Duration::from_secs(30);

/// A type whose encoding always fails.
struct Unencodable;

impl serde::Serialize for Unencodable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("refuses to encode"))
    }
}

impl<'de> serde::Deserialize<'de> for Unencodable {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(serde::de::Error::custom("refuses to decode"))
    }
}

#[test]
fn send_errors_give_the_item_back_and_convert() {
    let (tx, rx) = shmproc::channel::<String>(1).expect("channel");
    tx.try_send("one".into()).expect("room");
    let full = tx.try_send("two".into()).unwrap_err();
    assert!(full.is_full() && !full.is_disconnected());
    assert_eq!(format!("{full:?}"), "Full(..)");
    assert_eq!(full.into_inner(), "two");
    let t = tx.send_timeout("three".into(), Duration::from_millis(1)).unwrap_err();
    assert!(t.is_timeout());
    assert!(matches!(Error::from(t), Error::Timeout));
    let t = tx.send_deadline("four".into(), Instant::now()).unwrap_err();
    assert!(matches!(t, SendTimeoutError::Timeout(ref s) if s == "four"));
    assert!(matches!(Error::from(TrySendError::Full(())), Error::Full));
    drop(rx);
    let d = tx.send("five".into()).unwrap_err();
    assert!(d.is_disconnected());
    assert!(!d.to_string().is_empty());
    assert!(matches!(d, SendError::Disconnected(ref s) if s == "five"));
    assert!(matches!(Error::from(d), Error::Disconnected));
    assert!(matches!(tx.try_send("six".into()), Err(TrySendError::Disconnected(_))));
    assert!(matches!(tx.send_timeout("seven".into(), HANG_GUARD), Err(SendTimeoutError::Disconnected(_))));
}

#[test]
fn a_failed_send_gives_the_item_back_and_leaves_the_channel_usable() {
    let (tx, rx) = shmproc::channel::<Unencodable>(2).expect("channel");
    let e = tx.send(Unencodable).unwrap_err();
    assert!(matches!(e, SendError::Failed(Unencodable, Error::Codec { .. })), "{e:?}");
    assert!(matches!(tx.try_send(Unencodable), Err(TrySendError::Failed(_, Error::Codec { .. }))));
    assert!(matches!(tx.send_timeout(Unencodable, HANG_GUARD), Err(SendTimeoutError::Failed(_, Error::Codec { .. }))));
    assert!(matches!(Error::from(SendError::Failed((), Error::Full)), Error::Full));
    assert!(rx.is_empty());
}

#[test]
fn recv_errors_say_empty_timeout_disconnected_and_failed() {
    let (tx, rx) = shmproc::channel::<u32>(4).expect("channel");
    let e = rx.try_recv().unwrap_err();
    assert!(e.is_empty() && !e.is_disconnected());
    assert!(matches!(Error::from(e), Error::Empty));
    let t = rx.recv_timeout(Duration::from_millis(1)).unwrap_err();
    assert!(t.is_timeout());
    assert!(matches!(Error::from(t), Error::Timeout));
    assert!(matches!(rx.recv_deadline(Instant::now()), Err(RecvTimeoutError::Timeout)));
    tx.send(1).expect("send");
    drop(tx);
    assert_eq!(rx.recv().expect("what was sent comes first"), 1);
    let d = rx.recv().unwrap_err();
    assert!(d.is_disconnected());
    assert!(matches!(Error::from(d), Error::Disconnected));
    assert!(matches!(rx.try_recv(), Err(TryRecvError::Disconnected)));
    assert!(matches!(rx.recv_timeout(HANG_GUARD), Err(RecvTimeoutError::Disconnected)));
    assert!(!RecvError::Disconnected.to_string().is_empty());
    assert!(matches!(Error::from(RecvError::Failed(Error::Full)), Error::Full));
    assert!(matches!(Error::from(TryRecvError::Failed(Error::Full)), Error::Full));
    assert!(matches!(Error::from(RecvTimeoutError::Failed(Error::Full)), Error::Full));
}

/// A type that encodes (as nothing) and never decodes.
struct OneWay;

impl serde::Serialize for OneWay {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }
}

impl<'de> serde::Deserialize<'de> for OneWay {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(serde::de::Error::custom("refuses to decode"))
    }
}

#[test]
fn an_item_that_does_not_decode_is_failed_and_the_iteration_goes_on() {
    let (tx, rx) = shmproc::channel::<OneWay>(4).expect("channel");
    tx.send(OneWay).expect("send");
    assert!(matches!(rx.recv(), Err(RecvError::Failed(Error::Codec { .. }))));
    tx.send(OneWay).expect("send");
    assert!(matches!(rx.try_recv(), Err(TryRecvError::Failed(Error::Codec { .. }))));
    tx.send(OneWay).expect("send");
    assert!(matches!(rx.recv_timeout(HANG_GUARD), Err(RecvTimeoutError::Failed(Error::Codec { .. }))));
    tx.send(OneWay).expect("send");
    tx.send(OneWay).expect("send");
    drop(tx);
    let items: Vec<_> = rx.iter().collect();
    assert_eq!(items.len(), 2, "each failure yielded, then the end");
    assert!(items.iter().all(|r| matches!(r, Err(Error::Codec { .. }))));
}

#[test]
fn iterators_take_what_is_there_or_wait_until_every_sender_is_gone() {
    let (tx, rx) = shmproc::channel::<u32>(8).expect("channel");
    for i in 0..3 {
        tx.send(i).expect("send");
    }
    let now: Vec<u32> = rx.try_iter().collect::<Result<_, _>>().expect("items");
    assert_eq!(now, [0, 1, 2]);
    assert_eq!(rx.try_iter().count(), 0, "try_iter ends when empty, senders or not");
    let tx2 = tx.clone();
    let producer = std::thread::spawn(move || {
        for i in 10..20 {
            tx2.send(i).expect("send");
        }
    });
    drop(tx);
    let mut got = Vec::new();
    for x in &rx {
        got.push(x.expect("item"));
    }
    producer.join().expect("producer");
    assert_eq!(got, (10..20).collect::<Vec<_>>());
    let (tx, rx) = shmproc::channel::unbounded::<u8>().expect("unbounded");
    tx.send(5).expect("send");
    drop(tx);
    let owned: Vec<u8> = rx.into_iter().collect::<Result<_, _>>().expect("items");
    assert_eq!(owned, [5]);
}

#[test]
fn the_last_sender_dropped_in_one_thread_wakes_a_receiver_blocked_in_another() {
    let (tx, rx) = shmproc::channel::<u8>(2).expect("channel");
    let clones: Vec<Sender<u8>> = (0..4).map(|_| tx.clone()).collect();
    drop(tx);
    let waiter = std::thread::spawn(move || rx.recv_timeout(HANG_GUARD));
    for c in clones {
        std::thread::spawn(move || drop(c)).join().expect("dropper");
    }
    assert!(matches!(waiter.join().expect("waiter"), Err(RecvTimeoutError::Disconnected)));
}

#[test]
fn the_last_receiver_dropped_wakes_a_sender_blocked_on_a_full_channel() {
    let (tx, rx) = shmproc::channel::<u8>(1).expect("channel");
    tx.send(1).expect("send");
    let waiter = std::thread::spawn(move || tx.send_timeout(2, HANG_GUARD));
    let rx2 = rx.clone();
    drop(rx);
    std::thread::spawn(move || drop(rx2)).join().expect("dropper");
    let r = waiter.join().expect("waiter");
    assert!(matches!(r, Err(SendTimeoutError::Disconnected(2))), "{r:?}");
}

#[test]
fn many_senders_and_receivers_in_threads_deliver_each_item_once() {
    let (tx, rx) = shmproc::channel::<(u8, u32)>(16).expect("channel");
    let producers: Vec<_> = (0..3u8)
        .map(|p| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for i in 0..500 {
                    tx.send((p, i)).expect("send");
                }
            })
        })
        .collect();
    drop(tx);
    let consumers: Vec<_> = (0..3)
        .map(|_| {
            let rx = rx.clone();
            std::thread::spawn(move || rx.iter().collect::<Result<Vec<_>, _>>().expect("items"))
        })
        .collect();
    drop(rx);
    for p in producers {
        p.join().expect("producer");
    }
    let mut all: Vec<(u8, u32)> = consumers.into_iter().flat_map(|c| c.join().expect("consumer")).collect();
    all.sort_unstable();
    let want: Vec<(u8, u32)> = (0..3u8).flat_map(|p| (0..500).map(move |i| (p, i))).collect();
    assert_eq!(all, want);
}

#[test]
fn queries_and_capacity() {
    let (tx, rx) = shmproc::channel::<u8>(2).expect("channel");
    assert_eq!((tx.capacity(), rx.capacity()), (Some(2), Some(2)));
    assert!(tx.is_empty() && !tx.is_full());
    tx.send(1).expect("send");
    tx.send(2).expect("send");
    assert!(rx.is_full());
    assert_eq!(rx.len(), 2);
    assert!(format!("{tx:?}").contains("len: 2"));
    let (utx, _urx) = shmproc::channel::unbounded::<u8>().expect("unbounded");
    assert_eq!(utx.capacity(), None);
    assert!(matches!(shmproc::channel::<u8>(0), Err(Error::InvalidArgument { .. })));
}

#[test]
fn an_anonymous_handle_does_not_encode_outside_a_hand_off_and_counts_nothing() {
    let (tx, rx) = shmproc::channel::<u16>(4).expect("channel");
    let bytes = postcard::to_allocvec(&tx);
    // Anonymous segments encode only while a process hand-off collects
    // descriptors: outside one the encoding fails, and counts nothing.
    assert!(bytes.is_err(), "an anonymous channel does not encode outside a hand-off");
    drop(tx);
    assert!(matches!(rx.recv_timeout(HANG_GUARD), Err(RecvTimeoutError::Disconnected)));
}

#[test]
fn pod_items_travel_as_their_bytes() {
    #[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
    #[repr(C)]
    struct Sample {
        t: u64,
        v: [f32; 6],
    }
    let (tx, rx) = shmproc::channel::<Pod<Sample>>(8).expect("channel");
    let s = Sample { t: 7, v: [1.5; 6] };
    tx.send(Pod(s)).expect("send");
    assert_eq!(rx.recv().expect("recv").0, s);
    let q = shmproc::Queue::<Pod<u64>>::new(0).expect("queue");
    q.put(Pod(42)).expect("put");
    assert_eq!(q.get().expect("get"), Pod(42));
}

#[test]
fn typed_pipe_ends_send_and_receive_each_way() {
    let (a, b) = shmproc::Pipe::typed::<u32, String>().expect("typed pipe");
    a.send(3).expect("send");
    assert_eq!(b.recv().expect("recv"), 3);
    b.send("three".into()).expect("send");
    assert_eq!(a.recv().expect("recv"), "three");
    let c = a.clone();
    drop(a);
    c.tx.send(4).expect("a clone still sends");
    drop(c);
    assert_eq!(b.recv().expect("recv"), 4);
    assert!(matches!(b.recv(), Err(RecvError::Disconnected)));
    assert!(matches!(b.send("gone".into()), Err(SendError::Disconnected(_))));
}

/// A child's task that is never run (its start fails).
fn never_runs(_: (Sender<u8>, Unencodable)) {}

/// A child's task that is never run (its start fails).
fn never_forked(_: Sender<u8>) {}

/// A `spawn` that fails after encoding its argument (here: an argument
/// that does not encode after a sender did; and a fork refused in a
/// multi-threaded process) gives the in-flight handles back: the receiver
/// still learns that every sender is gone.
#[test]
fn a_spawn_that_fails_gives_its_in_flight_handles_back() {
    let (tx, rx) = shmproc::channel::<u8>(4).expect("channel");
    let r = shmproc::Process::spawn(never_runs, (tx.clone(), Unencodable));
    assert!(r.is_err(), "the argument does not encode");
    // A second thread, alive during the fork attempt: fork is refused.
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let other = std::thread::spawn(move || stop_rx.recv());
    let r = shmproc::Context::new(shmproc::StartMethod::Fork).spawn(never_forked, tx.clone());
    assert!(matches!(r, Err(Error::ForkUnsafe { .. })), "{:?}", r.err());
    stop_tx.send(()).expect("stop");
    other.join().expect("thread").expect("recv");
    drop(tx);
    assert!(matches!(rx.recv_timeout(HANG_GUARD), Err(RecvTimeoutError::Disconnected)));
}

thread_local! {
    static KEPT: std::cell::RefCell<Option<Sender<u8>>> = const { std::cell::RefCell::new(None) };
}

/// A sender dropped by a thread-local destructor (the thread ends) is
/// given back like any other.
#[test]
fn a_sender_dropped_in_a_thread_local_destructor_counts_out() {
    let (tx, rx) = shmproc::channel::<u8>(4).expect("channel");
    std::thread::spawn(move || {
        tx.send(1).expect("send"); // this thread has used shmproc
        KEPT.with(|k| *k.borrow_mut() = Some(tx));
    })
    .join()
    .expect("thread");
    assert_eq!(rx.recv_timeout(HANG_GUARD).expect("the item"), 1);
    assert!(matches!(rx.recv_timeout(HANG_GUARD), Err(RecvTimeoutError::Disconnected)));
}
