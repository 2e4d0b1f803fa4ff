//! `Pipe`/`Connection` and `ByteRing` in one process (threads on both ends)
//! and with children started by `Process::spawn`: every method, timeouts,
//! close semantics, messages larger than the ring (spill segments, none
//! left behind), simplex direction errors, handles passed to a child, and
//! the byte ring's copies, loans and wrap-around. The crash cases
//! (RELIABILITY 13, 18, 35) are in `tests/mp/pipe.rs`.
//!
//! Timing is never asserted: every wait has a generous hang guard only.

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::outcome::{Lent, Popped, Pushed};
use shmproc::{BytePopError, BytePushError, ByteRing, Connection, Error, Pipe, Process};

/// The hang guard of every wait in these tests.
const GUARD: Duration = Duration::from_secs(30);

/// Tests that check `/dev/shm` for spill segments of this process run one
/// at a time (spill names carry the sender's pid, shared by all tests).
static SPILL: Mutex<()> = Mutex::new(());

fn spill_lock() -> std::sync::MutexGuard<'static, ()> {
    SPILL.lock().unwrap_or_else(|p| p.into_inner())
}

/// Spill segments this process made that are still in `/dev/shm`.
fn spill_leftovers() -> Vec<String> {
    let prefix = format!("shmproc.spill.{}.", std::process::id());
    std::fs::read_dir(common::SHM_DIR)
        .expect("readdir /dev/shm")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

fn is<T: std::fmt::Debug, E: Into<Error>>(r: Result<T, E>, want: fn(&Error) -> bool, what: &str) {
    match r.map_err(Into::into) {
        Err(e) if want(&e) => {}
        other => panic!("{what}: unexpected {other:?}"),
    }
}

#[test]
fn duplex_both_ends_send_and_receive_objects_as_copies() {
    let (a, b) = Pipe::new().expect("pipe");
    assert!(a.readable() && a.writable() && b.readable() && b.writable());
    let original = vec![String::from("x"); 3];
    a.send(&original).expect("send");
    let mut copy: Vec<String> = b.recv().expect("recv");
    copy.push("changed".into());
    assert_eq!(original.len(), 3, "the sender's value is untouched");
    b.send(&copy).expect("send back");
    assert_eq!(a.recv::<Vec<String>>().expect("recv"), copy);
    // Bytes, into a reused buffer, try_ and timeout forms.
    a.send_bytes(b"abc").expect("send_bytes");
    a.send_bytes(b"").expect("empty message");
    a.try_send_bytes(b"try").expect("try_send_bytes");
    a.send_bytes_timeout(b"timed", GUARD).expect("send_bytes_timeout");
    a.try_send(&5u16).expect("try_send");
    a.send_timeout(&6u16, GUARD).expect("send_timeout");
    let mut buf = Vec::new();
    assert_eq!(b.recv_bytes_into(&mut buf).expect("into"), 3);
    assert_eq!(buf, b"abc");
    assert_eq!(b.recv_bytes().expect("empty"), b"");
    assert_eq!(b.try_recv_bytes().expect("try"), b"try");
    assert_eq!(b.recv_bytes_timeout(GUARD).expect("timed"), b"timed");
    assert_eq!(b.try_recv::<u16>().expect("try_recv"), 5);
    assert_eq!(b.recv_timeout::<u16>(GUARD).expect("recv_timeout"), 6);
    assert!(matches!(b.try_recv::<u16>(), Err(shmproc::TryRecvError::Empty)));
    assert!(matches!(b.try_recv_bytes(), Err(shmproc::TryRecvError::Empty)));
    assert!(format!("{a:?}").contains("Connection"));
}

#[test]
fn threads_on_both_ends_keep_order() {
    let (a, b) = Pipe::builder().capacity(512).duplex().expect("pipe");
    const N: u64 = 20_000;
    let echo = std::thread::spawn(move || {
        for _ in 0..N {
            let v: u64 = b.recv_timeout(GUARD).expect("recv");
            b.send_timeout(&(v + 1), GUARD).expect("send");
        }
    });
    let sender = {
        let a = a.clone();
        std::thread::spawn(move || {
            for i in 0..N {
                a.send_timeout(&i, GUARD).expect("send"); // blocks when full
            }
        })
    };
    for i in 0..N {
        assert_eq!(a.recv_timeout::<u64>(GUARD).expect("recv"), i + 1);
    }
    sender.join().expect("sender");
    echo.join().expect("echo");
}

#[test]
fn clones_on_many_threads_deliver_each_message_once() {
    let (a, b) = Pipe::builder().capacity(1024).simplex().map(|(r, w)| (w, r)).expect("pipe");
    const PER: u32 = 5_000;
    let senders: Vec<_> = (0..3u32)
        .map(|t| {
            let a = a.clone();
            std::thread::spawn(move || {
                for i in 0..PER {
                    a.send_timeout(&(t, i), GUARD).expect("send");
                }
            })
        })
        .collect();
    let receivers: Vec<_> = (0..2)
        .map(|_| {
            let b = b.clone();
            std::thread::spawn(move || {
                let mut got = Vec::new();
                while let Ok((t, i)) = b.recv_timeout::<(u32, u32)>(Duration::from_millis(500)) {
                    got.push((t, i));
                }
                got
            })
        })
        .collect();
    for s in senders {
        s.join().expect("sender");
    }
    let mut all: Vec<(u32, u32)> = receivers.into_iter().flat_map(|r| r.join().expect("receiver")).collect();
    assert_eq!(all.len(), 3 * PER as usize, "every message once");
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 3 * PER as usize, "no duplicates");
}

#[test]
fn simplex_is_reader_then_writer_and_refuses_the_wrong_direction() {
    let (r, w) = Pipe::simplex().expect("pipe");
    assert!(r.readable() && !r.writable());
    assert!(w.writable() && !w.readable());
    let invalid = |e: &Error| matches!(e, Error::InvalidArgument { .. });
    is(r.send(&1u8), invalid, "send on the reader");
    is(r.send_bytes(b"x"), invalid, "send_bytes on the reader");
    is(r.try_send(&1u8), invalid, "try_send on the reader");
    is(w.recv::<u8>(), invalid, "recv on the writer");
    is(w.recv_bytes(), invalid, "recv_bytes on the writer");
    is(w.poll(Duration::ZERO), invalid, "poll on the writer");
    w.send(&7u8).expect("send");
    assert_eq!(r.recv::<u8>().expect("recv"), 7);
}

#[test]
fn timeouts_and_full_pipes() {
    let (a, b) = Pipe::builder().capacity(256).duplex().expect("pipe");
    let timeout = |e: &Error| matches!(e, Error::Timeout);
    is(b.recv_timeout::<u8>(Duration::from_millis(20)), timeout, "recv on an empty pipe");
    is(b.recv_bytes_timeout(Duration::ZERO), timeout, "recv_bytes with a zero timeout");
    assert!(!b.poll(Duration::from_millis(20)).expect("poll"));
    assert!(!b.poll(Duration::ZERO).expect("poll"));
    let msg = [9u8; 120]; // a 128-byte record: two fill the 256-byte buffer
    a.send_bytes(&msg).expect("room for one");
    a.send_bytes(&msg).expect("room for two");
    is(a.send_bytes_timeout(&msg, Duration::from_millis(20)), timeout, "send on a full pipe");
    is(a.try_send_bytes(&msg), |e| matches!(e, Error::Full), "try_send on a full pipe");
    assert!(b.poll(Duration::ZERO).expect("poll"));
    assert_eq!(b.recv_bytes().expect("recv"), msg);
    a.send_bytes(&msg).expect("room again");
    // A blocked sender is woken by the receive that makes room.
    let a2 = a.clone();
    let t = std::thread::spawn(move || a2.send_bytes_timeout(&[1u8; 120], GUARD));
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(b.recv_bytes_timeout(GUARD).expect("recv"), msg);
    t.join().expect("thread").expect("the blocked send completes");
    assert_eq!(b.recv_bytes_timeout(GUARD).expect("recv"), msg);
    assert_eq!(b.recv_bytes_timeout(GUARD).expect("recv"), [1u8; 120]);
}

#[test]
fn close_drains_then_disconnects_and_breaks_the_pipe() {
    let (a, b) = Pipe::new().expect("pipe");
    a.send(&1u32).expect("send");
    a.send(&2u32).expect("send");
    a.close();
    a.close(); // idempotent
    assert!(a.is_closed() && !b.is_closed());
    let closed = |e: &Error| matches!(e, Error::Closed);
    is(a.send(&3u32), closed, "send on a closed end");
    is(a.recv::<u32>(), closed, "recv on a closed end");
    is(a.poll(Duration::ZERO), closed, "poll on a closed end");
    assert!(b.poll(Duration::ZERO).expect("poll"));
    assert_eq!(b.recv::<u32>().expect("drain"), 1);
    assert_eq!(b.try_recv::<u32>().expect("drain"), 2);
    assert!(b.poll(Duration::ZERO).expect("poll: recv would return at once"));
    is(b.recv::<u32>(), |e| matches!(e, Error::Disconnected), "recv after the drain");
    is(b.try_recv::<u32>(), |e| matches!(e, Error::Disconnected), "try_recv after the drain");
    is(b.send(&0u8), |e| matches!(e, Error::BrokenPipe), "send to a closed end");
    // A clone sees the close too (the end is closed for every holder).
    let a2 = a.clone();
    is(a2.send(&0u8), closed, "a clone of a closed end");
}

#[test]
fn close_wakes_blocked_receivers_and_senders() {
    let (a, b) = Pipe::builder().capacity(256).duplex().expect("pipe");
    let b2 = b.clone();
    let receiver = std::thread::spawn(move || b2.recv_timeout::<u8>(GUARD));
    let b3 = b.clone();
    let sender = std::thread::spawn(move || {
        loop {
            match b3.send_bytes_timeout(&[0u8; 100], GUARD) {
                Ok(()) => continue, // until the pipe to `a` is full and it blocks
                r => return r,
            }
        }
    });
    std::thread::sleep(Duration::from_millis(20));
    a.close();
    let r = receiver.join().expect("receiver");
    assert!(
        matches!(r, Err(shmproc::RecvTimeoutError::Disconnected)),
        "a receiver blocked on an empty pipe whose sender closed: {r:?}"
    );
    let s = sender.join().expect("sender");
    assert!(
        matches!(s, Err(shmproc::SendTimeoutError::Disconnected(()))),
        "a sender blocked on a full pipe whose reader closed: {s:?}"
    );
    // Closing an end also wakes its own blocked receivers.
    let (c, _d) = Pipe::new().expect("pipe");
    let c2 = c.clone();
    let own = std::thread::spawn(move || c2.recv_timeout::<u8>(GUARD));
    std::thread::sleep(Duration::from_millis(20));
    c.close();
    let r = own.join().expect("own receiver");
    assert!(matches!(r, Err(shmproc::RecvTimeoutError::Closed)), "a receiver on the end that was closed: {r:?}");
}

#[test]
fn big_messages_travel_through_spill_segments_and_leave_none() {
    let _g = spill_lock();
    let (a, b) = Pipe::builder().capacity(4096).duplex().expect("pipe");
    assert_eq!(a.max_message(), 2040);
    let sizes = [2040usize, 2041, 10_000, 1 << 20, 3 << 20];
    let t = std::thread::spawn(move || {
        for (k, &n) in sizes.iter().enumerate() {
            let v: Vec<u8> = (0..n).map(|i| (i + k) as u8).collect();
            a.send_bytes(&v).expect("send big");
        }
        a.send(&vec![7u64; 100_000]).expect("send a big object");
        a
    });
    for (k, &n) in sizes.iter().enumerate() {
        let got = b.recv_bytes_timeout(GUARD).expect("recv big");
        assert_eq!(got.len(), n);
        assert!(got.iter().enumerate().all(|(i, &x)| x == (i + k) as u8), "message {k} intact");
    }
    assert_eq!(b.recv_timeout::<Vec<u64>>(GUARD).expect("object"), vec![7u64; 100_000]);
    let a = t.join().expect("sender");
    // What is left while the pipe lives are the spares its receivers
    // handed back for reuse (named `.r...`); they go with the pipe.
    let spares = spill_leftovers();
    assert!(spares.iter().all(|n| n.contains(".r")), "spill segments left: {spares:?}");
    // A big send that cannot be delivered removes its spill segment.
    b.close();
    is(a.send_bytes(&vec![1u8; 100_000]), |e| matches!(e, Error::BrokenPipe), "send to a closed end");
    drop((a, b));
    let (c, _d) = Pipe::builder().capacity(256).duplex().expect("pipe");
    c.send_bytes(&[0u8; 120]).expect("fill");
    c.send_bytes(&[0u8; 120]).expect("fill");
    is(c.send_bytes_timeout(&vec![1u8; 5000], Duration::from_millis(20)), |e| matches!(e, Error::Timeout), "full");
    assert!(spill_leftovers().is_empty(), "spill segments left: {:?}", spill_leftovers());
}

#[test]
fn named_pipes_open_by_name_and_vanish_with_their_creator() {
    let names = common::Names::new("pipetest", "named");
    let name = names.name("p");
    let (a, b) = Pipe::builder().name(&name).capacity(1024).duplex().expect("create");
    let (a2, b2) = Pipe::open(&name).expect("open");
    a2.send(&"via the opened end").expect("send");
    assert_eq!(b.recv::<String>().expect("recv"), "via the opened end");
    b2.send(&1i8).expect("send");
    assert_eq!(a.recv::<i8>().expect("recv"), 1);
    assert!(shmproc::SpscRing::<u8>::open(&name).is_err(), "not a ring");
    drop((a, b, a2, b2));
    assert!(Pipe::open(&name).is_err(), "the creator's drop removed the name");
    names.finish();
}

fn echo_child(conn: Connection) -> u64 {
    let mut n = 0;
    while let Ok(v) = conn.recv::<Vec<u32>>() {
        conn.send(&v.iter().map(|x| x * 2).collect::<Vec<u32>>()).expect("reply");
        n += 1;
    }
    n
}

#[test]
fn an_end_passed_to_a_child_process() {
    let _g = spill_lock(); // its big messages spill under this process's pid
    let (a, b) = Pipe::builder().capacity(4096).duplex().expect("pipe");
    let mut child = Process::spawn(echo_child, b).expect("spawn");
    for k in 0..50u32 {
        let v: Vec<u32> = (0..k * 100).collect(); // some above the inline limit
        a.send(&v).expect("send");
        let back: Vec<u32> = a.recv_timeout(GUARD).expect("reply");
        assert_eq!(back, v.iter().map(|x| x * 2).collect::<Vec<u32>>());
    }
    a.close();
    assert_eq!(child.join().expect("child"), 50);
}

/// Runs `f` on a thread and returns its result, waiting at most [`GUARD`]
/// (a hang guard for a blocking iteration).
fn guarded<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(f()).expect("send the result"));
    rx.recv_timeout(GUARD).expect("hang guard: the iteration did not end")
}

/// `try_iter()` takes what is there now and does not end the pipe;
/// `iter()` blocks and ends when the other end is closed and the pipe
/// drained, or when this end is closed; a message that does not decode is
/// an `Err` in the middle of the iteration, which goes on; `for msg in
/// &conn` yields the messages' bytes.
#[test]
fn iterators_end_on_close_and_yield_decode_failures() {
    let (a, b) = Pipe::new().expect("pipe");
    for i in 0..3u32 {
        a.send(&i).expect("send");
    }
    assert_eq!(b.try_iter::<u32>().collect::<Result<Vec<_>, _>>().expect("decoded"), [0, 1, 2]);
    assert_eq!(b.try_iter::<u32>().count(), 0, "nothing there now");
    assert_eq!(b.try_iter_bytes().count(), 0, "nothing there now");
    // A message that does not decode (an empty one is no u32) comes out as
    // an `Err`, and the iteration goes on.
    a.send(&5u32).expect("send");
    a.send_bytes(&[]).expect("send");
    a.send(&6u32).expect("send");
    let items: Vec<_> = b.try_iter::<u32>().collect();
    assert_eq!(items.len(), 3, "all three yielded: {items:?}");
    assert!(matches!(items[0], Ok(5)) && matches!(items[2], Ok(6)), "{items:?}");
    assert!(matches!(items[1], Err(Error::Codec { .. })), "{items:?}");
    // A sender thread sends while this one iterates; close ends the loop.
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 10..20u32 {
                a.send(&i).expect("send");
            }
            a.close();
        });
        let mut got = Vec::new();
        for x in b.iter::<u32>() {
            got.push(x.expect("decoded"));
        }
        assert_eq!(got, (10..20).collect::<Vec<_>>());
    });
    assert_eq!(b.iter::<u32>().count(), 0, "the other end closed, drained: ends at once");
    assert_eq!(b.iter_bytes().count(), 0, "the bytes too");
    // `for msg in &conn`: the bytes as sent.
    let (c, d) = Pipe::new().expect("pipe");
    c.send_bytes(b"ab").expect("send");
    c.send_bytes(b"c").expect("send");
    c.close();
    let mut got = Vec::new();
    for msg in &d {
        got.push(msg.expect("received"));
    }
    assert_eq!(got, [&b"ab"[..], b"c"]);
    // Closing this end ends its own iteration.
    let (e, f) = Pipe::new().expect("pipe");
    let (tx, rx) = std::sync::mpsc::channel();
    let f2 = f.clone();
    let iterating = std::thread::spawn(move || {
        for x in f2.iter::<u8>() {
            tx.send(x).expect("report");
        }
    });
    e.send(&1u8).expect("send");
    assert!(matches!(rx.recv_timeout(GUARD), Ok(Ok(1))), "the iteration received the first message");
    f.close();
    let end = rx.recv_timeout(GUARD);
    assert!(
        matches!(end, Err(std::sync::mpsc::RecvTimeoutError::Disconnected)),
        "the iteration ends when its end is closed (not a timeout of the hang guard): {end:?}"
    );
    iterating.join().expect("iterating thread");
}

fn send_three_and_exit(conn: Connection) {
    for i in 0..3u32 {
        conn.send(&i).expect("send");
    }
}

/// A blocking iteration ends when the process holding the other end exits
/// (its handles go with it), after what it sent.
#[test]
fn iteration_ends_when_the_peer_process_exits() {
    let (a, b) = Pipe::new().expect("pipe");
    let mut child = Process::spawn(send_three_and_exit, b).expect("spawn");
    let got: Vec<u32> = guarded(move || a.iter().collect::<Result<_, _>>().expect("decoded"));
    assert_eq!(got, [0, 1, 2]);
    child.join().expect("child");
}

fn exit_child(conn: Connection) {
    conn.send(&"bye").expect("send");
}

#[test]
fn a_child_that_exits_disconnects_its_end() {
    let (a, b) = Pipe::new().expect("pipe");
    let mut child = Process::spawn(exit_child, b).expect("spawn");
    child.join().expect("child");
    assert_eq!(a.recv_timeout::<String>(GUARD).expect("its last message"), "bye");
    is(a.recv_timeout::<String>(GUARD), |e| matches!(e, Error::Disconnected), "recv after the child exited");
    is(a.send_timeout(&1u8, GUARD), |e| matches!(e, Error::BrokenPipe), "send after the child exited");
    assert!(a.poll(GUARD).expect("poll"));
}

// ---------------------------------------------------------------------
// ByteRing

#[test]
fn byte_ring_copies_wrap_around_and_refuse_what_does_not_fit() {
    let ring = ByteRing::new(256).expect("ring");
    assert_eq!((ring.capacity(), ring.max_message()), (256, 120));
    let mut tx = ring.producer().expect("producer");
    let mut rx = ring.consumer().expect("consumer");
    let too_large = |r: Result<(), BytePushError>| {
        matches!(r, Err(BytePushError::Failed((), Error::TooLarge { len: 121, max: 120 })))
    };
    assert!(too_large(tx.push(&[0; 121])), "too large");
    assert!(too_large(tx.reserve(121).map(drop)), "loan too large");
    assert!(matches!(rx.pop(), Err(BytePopError::Empty)));
    assert!(matches!(rx.peek(), Err(BytePopError::Empty)));
    let mut buf = vec![7];
    assert!(matches!(rx.pop_into(&mut buf), Err(BytePopError::Empty)));
    assert_eq!(buf, [7], "left as it was without a message");
    for round in 0..500usize {
        let len = (round * 37) % 121;
        let msg: Vec<u8> = (0..len).map(|i| (i ^ round) as u8).collect();
        tx.push(&msg).expect("room in a drained ring");
        if round % 2 == 0 {
            assert_eq!(ring.len(), 1);
            assert_eq!(rx.pop().expect("pop"), msg);
        } else {
            assert_eq!(rx.pop_into(&mut buf).expect("pop_into"), len);
            assert_eq!(buf, msg);
        }
        assert!(ring.is_empty());
        assert_eq!(rx.pop().popped(), None);
    }
    // Fill to the brim, then drain in order.
    let mut n = 0u8;
    while tx.push(&[n; 20]).pushed().is_ok() {
        n += 1;
    }
    assert!(matches!(tx.push(&[0; 20]), Err(BytePushError::Full(()))));
    assert!(tx.reserve(20).is_err_and(|e| e.is_full()), "no loan from a full ring");
    assert!(too_large(tx.push(&[0; 121])), "too large, even when full");
    assert_eq!(ring.len(), n as usize);
    let got: Vec<Vec<u8>> = rx.try_iter().collect::<shmproc::Result<_>>().expect("try_iter");
    assert_eq!(got, (0..n).map(|k| vec![k; 20]).collect::<Vec<_>>());
    assert_eq!(rx.try_iter().count(), 0, "nothing there now");
    // An ended iteration resumes on a later call; `for msg in &mut rx` is
    // the same iterator, and an empty message is a message.
    tx.push(b"").expect("an empty message");
    tx.push(b"x").expect("push");
    let mut seen = Vec::new();
    for msg in &mut rx {
        seen.push(msg.expect("msg"));
    }
    assert_eq!(seen, [b"".to_vec(), b"x".to_vec()]);
    assert!(format!("{:?}", rx.try_iter()).contains("ByteTryIter"));
}

#[test]
fn byte_ring_loans_write_and_read_in_place() {
    let ring = ByteRing::new(1 << 16).expect("ring");
    let mut tx = ring.producer().expect("producer");
    let mut rx = ring.consumer().expect("consumer");
    for round in 0..200u32 {
        let len = 1 + (round as usize * 997) % ring.max_message();
        let mut loan = tx.reserve(len).lent().expect("room");
        assert_eq!(loan.len(), len);
        for (i, b) in loan.iter_mut().enumerate() {
            *b = (i as u32 ^ round) as u8;
        }
        if round % 7 == 0 {
            {
                let _uncommitted = loan; // dropped here: publishes nothing
            }
            assert!(rx.peek().popped().is_none());
            continue;
        }
        let n = if round % 3 == 0 { len / 2 } else { len };
        loan.commit(n);
        let msg = rx.peek().expect("a message");
        assert_eq!(msg.len(), n);
        assert!(msg.iter().enumerate().all(|(i, &b)| b == (i as u32 ^ round) as u8));
        drop(msg);
        assert!(ring.is_empty());
    }
}

#[test]
fn byte_ring_roles_names_and_debug() {
    let names = common::Names::new("pipetest", "bytering");
    let name = names.name("r");
    let ring = ByteRing::create(&name, 1024).expect("create");
    let other = ByteRing::open(&name).expect("open");
    let tx = ring.producer().expect("producer");
    is(other.producer().map(|_| ()), |e| matches!(e, Error::WouldBlock), "a second producer");
    drop(tx);
    let mut tx = other.producer().expect("the role is free again");
    tx.push(b"named").expect("push");
    assert_eq!(ring.consumer().expect("consumer").pop().expect("pop"), b"named");
    assert!(format!("{ring:?} {tx:?}").contains("ByteRing"));
    assert!(matches!(ByteRing::new(100), Err(Error::InvalidArgument { .. })));
    assert!(matches!(ByteRing::new(32), Err(Error::InvalidArgument { .. })));
    assert!(shmproc::SpscRing::<u64>::open(&name).is_err(), "not an SPSC ring");
    drop((tx, ring, other));
    names.finish();
}

fn byte_child(ring: ByteRing) -> usize {
    let mut tx = ring.producer().expect("producer");
    let mut sent = 0;
    for k in 0..1000usize {
        let msg = vec![k as u8; k % 300];
        let deadline = Instant::now() + GUARD;
        while let Err(e) = tx.push(&msg) {
            assert!(e.is_full(), "push: {e}");
            assert!(Instant::now() < deadline, "hang guard");
            std::thread::yield_now();
        }
        sent += 1;
    }
    sent
}

#[test]
fn byte_ring_passed_to_a_child() {
    let ring = ByteRing::new(4096).expect("ring");
    let mut rx = ring.consumer().expect("consumer");
    let mut child = Process::spawn(byte_child, ring.clone()).expect("spawn");
    let deadline = Instant::now() + GUARD;
    for k in 0..1000usize {
        loop {
            match rx.pop() {
                Ok(m) => {
                    assert_eq!(m, vec![k as u8; k % 300]);
                    break;
                }
                Err(e) => {
                    assert!(matches!(e, BytePopError::Empty), "pop: {e}");
                    assert!(Instant::now() < deadline, "hang guard");
                    std::thread::yield_now();
                }
            }
        }
    }
    assert_eq!(child.join().expect("child"), 1000);
    // The producer dropped its role normally: empty, not disconnected.
    assert!(matches!(rx.pop(), Err(BytePopError::Empty)));
}

// CPython: _TestConnection.test_connection, the recv_bytes_into part:
// the message lands at the offset and its length comes back; a buffer too
// short raises BufferTooShort holding the whole message (consumed); an
// offset beyond the buffer is a ValueError (here before anything is
// received).
#[test]
fn recv_bytes_into_a_slice_at_an_offset() {
    use shmproc::RecvIntoError;
    let (a, b) = Pipe::new().expect("pipe");
    let msg = b"abcdefghijklmnopqrstuvwxyz";
    let mut buf = [0u8; 40];

    a.send_bytes(msg).expect("send");
    assert_eq!(b.recv_bytes_into_slice(&mut buf, 0).expect("fits"), msg.len());
    assert_eq!(&buf[..msg.len()], msg);

    let mut buf = [0u8; 40];
    a.send_bytes(msg).expect("send");
    assert_eq!(b.recv_bytes_into_slice(&mut buf, 3).expect("fits"), msg.len());
    assert_eq!(&buf[..3], &[0u8; 3]);
    assert_eq!(&buf[3..3 + msg.len()], msg);
    assert!(buf[3 + msg.len()..].iter().all(|&x| x == 0));

    // Exactly the room left after the offset.
    let mut buf = [0u8; 30];
    a.send_bytes(msg).expect("send");
    assert_eq!(b.recv_bytes_into_slice(&mut buf, 4).expect("fits exactly"), 26);

    // Too short: the whole message comes back in the error, the buffer is
    // untouched, and the message is gone from the pipe.
    let mut short = [7u8; 30];
    a.send_bytes(msg).expect("send");
    a.send_bytes(b"next").expect("send");
    match b.recv_bytes_into_slice(&mut short, 5) {
        Err(RecvIntoError::BufferTooShort(m)) => assert_eq!(m, msg),
        other => panic!("expected BufferTooShort, got {other:?}"),
    }
    assert_eq!(short, [7u8; 30]);
    assert_eq!(b.recv_bytes().expect("the next message"), b"next");

    // An offset beyond the end: refused before receiving.
    a.send_bytes(b"kept").expect("send");
    match b.recv_bytes_into_slice(&mut [0u8; 4], 5) {
        Err(RecvIntoError::Failed(Error::InvalidArgument { .. })) => {}
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    let mut four = [0u8; 4];
    assert_eq!(b.recv_bytes_into_slice(&mut four, 0).expect("still there"), 4);
    assert_eq!(&four, b"kept");
    // An empty message fits at the very end.
    a.send_bytes(b"").expect("send");
    assert_eq!(b.recv_bytes_into_slice(&mut four, 4).expect("empty"), 0);

    // The other variants: Disconnected once the writer closed, Closed on
    // a closed end; each converts into Error.
    a.close();
    let e = b.recv_bytes_into_slice(&mut four, 0).expect_err("nothing more");
    assert!(matches!(e, RecvIntoError::Disconnected), "{e:?}");
    assert!(matches!(Error::from(e), Error::Disconnected));
    b.close();
    let e = b.recv_bytes_into_slice(&mut four, 0).expect_err("closed");
    assert!(matches!(e, RecvIntoError::Closed), "{e:?}");
    assert!(matches!(Error::from(e), Error::Closed));
    let e = RecvIntoError::BufferTooShort(vec![1, 2, 3]);
    assert_eq!(format!("{e:?}"), "BufferTooShort(3 bytes)");
    assert!(e.to_string().contains("3-byte"), "{e}");
    assert!(matches!(Error::from(e), Error::BufferTooShort { len: 3 }));
    let e = RecvIntoError::Failed(Error::Corrupt { what: "x" });
    assert!(std::error::Error::source(&e).is_some());
}

// CPython: _TestConnection.test_connection, the send_bytes(buffer, offset,
// size) part: the slice is sent; an offset or offset + size beyond the
// buffer is a ValueError (here InvalidArgument, nothing sent).
#[test]
fn send_bytes_range_sends_a_slice_and_checks_the_range() {
    let (a, b) = Pipe::new().expect("pipe");
    let data: Vec<u8> = (0..10).collect();
    a.send_bytes_range(&data, 0, None).expect("all");
    a.send_bytes_range(&data, 4, None).expect("tail");
    a.send_bytes_range(&data, 2, Some(5)).expect("middle");
    a.send_bytes_range(&data, 10, None).expect("empty at the end");
    a.send_bytes_range(&data, 3, Some(0)).expect("empty");
    assert_eq!(b.recv_bytes().expect("recv"), data);
    assert_eq!(b.recv_bytes().expect("recv"), &data[4..]);
    assert_eq!(b.recv_bytes().expect("recv"), &data[2..7]);
    assert_eq!(b.recv_bytes().expect("recv"), b"");
    assert_eq!(b.recv_bytes().expect("recv"), b"");
    for (offset, size) in [(11, None), (11, Some(0)), (8, Some(3)), (0, Some(11)), (1, Some(usize::MAX))] {
        match a.send_bytes_range(&data, offset, size) {
            Err(shmproc::SendError::Failed((), Error::InvalidArgument { .. })) => {}
            other => panic!("({offset}, {size:?}): expected InvalidArgument, got {other:?}"),
        }
    }
    assert!(b.try_recv_bytes().is_err(), "nothing was sent by the refused calls");
}
