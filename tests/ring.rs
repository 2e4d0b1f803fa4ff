//! The public SPSC ring API (`SpscRing`, `Producer`, `Consumer`): FIFO
//! order across the wrap point for several capacities and element types,
//! full and empty rings, batches, zero-copy loans, role claims, named
//! rings, bad capacities, and a stream of a million values from a child
//! process (`Process::spawn` under Spawn and ForkServer).
//!
//! Deaths by SIGKILL and hostile peers are in `tests/mp/ring.rs`
//! (RELIABILITY cases 13 and 35); here a role holder dies only the gentle
//! way (a thread exiting with its handle leaked). Every test that makes
//! named rings uses names unique to the test and this process, and checks
//! that none is left in `/dev/shm`.

mod common;

use std::time::Duration;
#[cfg(feature = "serde")]
use std::time::Instant;

use bytemuck::{Pod, Zeroable};
use common::Names;
#[cfg(feature = "serde")]
use shmproc::{Context, StartMethod};
use shmproc::{Error, PopError, PushError, SpscRing};

#[cfg(feature = "serde")]
const METHODS: [StartMethod; 2] = [StartMethod::Spawn, StartMethod::ForkServer];
/// Every wait that should end does so long before this.
const GUARD: Duration = Duration::from_secs(30);

fn test_names(tag: &str) -> Names {
    Names::new("ringtest", tag)
}

/// A plain struct with padding-free mixed fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
struct Sample {
    seq: u64,
    a: u32,
    b: u16,
    c: u8,
    d: u8,
    tail: [u16; 4],
}

/// Element types the generic tests run over: value number `i` of a stream.
trait Elem: Pod + Send + PartialEq + std::fmt::Debug {
    fn nth(i: u64) -> Self;
}

impl Elem for u64 {
    fn nth(i: u64) -> Self {
        i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i
    }
}

impl Elem for [u8; 64] {
    fn nth(i: u64) -> Self {
        let mut v = [0u8; 64];
        for (k, b) in v.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(31).wrapping_add(k as u8) ^ (i >> 8) as u8;
        }
        v[..8].copy_from_slice(&i.to_le_bytes());
        v
    }
}

impl Elem for Sample {
    fn nth(i: u64) -> Self {
        Sample {
            seq: i,
            a: (i as u32).wrapping_mul(2_654_435_761),
            b: (i >> 3) as u16,
            c: i as u8,
            d: !(i as u8),
            tail: [i as u16, (i >> 16) as u16, 7, (i as u16) ^ 0xffff],
        }
    }
}

/// Whether `push` pushed (`false` if the ring was full; any other error
/// fails the test).
fn pushed<T>(r: Result<(), PushError<T>>) -> bool {
    match r {
        Ok(()) => true,
        Err(PushError::Full(_)) => false,
        Err(e) => panic!("push: {e}"),
    }
}

/// The value `pop` popped (`None` if the ring was empty; any other error
/// fails the test).
fn popped<T>(r: Result<T, PopError>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(PopError::Empty) => None,
        Err(e) => panic!("pop: {e}"),
    }
}

/// Pushes and pops `rounds` fills of the ring, checking FIFO order, full
/// and empty at every round (so the positions wrap many times).
fn fifo_rounds<T: Elem>(cap: usize, rounds: u64) {
    let ring = SpscRing::<T>::new(cap).expect("ring");
    assert_eq!(ring.capacity(), cap);
    let mut tx = ring.producer().expect("producer");
    let mut rx = ring.consumer().expect("consumer");
    let mut next_in = 0u64;
    let mut next_out = 0u64;
    // Offset by an odd count first so fills straddle the wrap point.
    let offset = (cap as u64 / 2) | 1;
    for _ in 0..offset.min(cap as u64) {
        tx.push(T::nth(next_in)).expect("room");
        next_in += 1;
    }
    for _ in 0..rounds {
        while ring.len() < cap {
            tx.push(T::nth(next_in)).expect("room");
            next_in += 1;
        }
        assert_eq!(ring.len(), cap);
        assert!(!ring.is_empty());
        let extra = T::nth(u64::MAX);
        assert!(matches!(tx.push(extra), Err(PushError::Full(v)) if v == extra), "full ring gives the value back");
        assert_eq!(tx.push_slice(&[T::nth(1), T::nth(2)]).expect("push_slice"), 0);
        assert!(tx.reserve(4).expect("reserve").is_empty(), "no loan from a full ring");
        while let Some(v) = popped(rx.pop()) {
            assert_eq!(v, T::nth(next_out), "cap {cap}: value {next_out}");
            next_out += 1;
        }
        assert_eq!(next_out, next_in);
        assert!(ring.is_empty());
        assert!(rx.peek(8).expect("peek").is_empty(), "no loan from an empty ring");
        let mut out = [T::nth(0); 3];
        assert_eq!(rx.pop_into(&mut out).expect("pop_into"), 0);
    }
}

#[test]
fn fifo_across_wrap_for_u64() {
    for cap in [1, 2, 4, 8, 64, 1024] {
        fifo_rounds::<u64>(cap, 20);
    }
}

#[test]
fn fifo_across_wrap_for_64_byte_arrays() {
    for cap in [1, 2, 16, 256] {
        fifo_rounds::<[u8; 64]>(cap, 20);
    }
}

#[test]
fn fifo_across_wrap_for_a_pod_struct() {
    for cap in [1, 4, 32, 512] {
        fifo_rounds::<Sample>(cap, 20);
    }
}

/// Interleaved single pushes and pops with the ring never full or empty
/// for long: the positions pass the wrap point at every possible offset.
#[test]
fn interleaved_push_pop_keeps_order() {
    let ring = SpscRing::<u64>::new(8).expect("ring");
    let mut tx = ring.producer().expect("producer");
    let mut rx = ring.consumer().expect("consumer");
    let (mut i, mut o) = (0u64, 0u64);
    for step in 0..10_000u64 {
        let pushes = 1 + step % 3;
        for _ in 0..pushes {
            if pushed(tx.push(i)) {
                i += 1;
            }
        }
        for _ in 0..(1 + (step * 7) % 3) {
            if let Some(v) = popped(rx.pop()) {
                assert_eq!(v, o);
                o += 1;
            }
        }
        assert_eq!(ring.len() as u64, i - o);
    }
    while let Some(v) = popped(rx.pop()) {
        assert_eq!(v, o);
        o += 1;
    }
    assert_eq!(o, i);
}

#[test]
fn push_slice_and_pop_into_partial_batches() {
    let ring = SpscRing::<u64>::new(8).expect("ring");
    let mut tx = ring.producer().expect("producer");
    let mut rx = ring.consumer().expect("consumer");
    // More than fits: only 8 go in.
    let vals: Vec<u64> = (0..20).collect();
    assert_eq!(tx.push_slice(&vals).expect("push_slice"), 8);
    assert_eq!(tx.push_slice(&vals[8..]).expect("push_slice"), 0, "full");
    // A short read, then one that asks for more than there is.
    let mut out = [0u64; 3];
    assert_eq!(rx.pop_into(&mut out).expect("pop_into"), 3);
    assert_eq!(out, [0, 1, 2]);
    assert_eq!(tx.push_slice(&vals[8..]).expect("push_slice"), 3, "room for 3 (across the wrap)");
    let mut big = [u64::MAX; 32];
    assert_eq!(rx.pop_into(&mut big).expect("pop_into"), 8);
    assert_eq!(&big[..8], &[3, 4, 5, 6, 7, 8, 9, 10]);
    assert!(big[8..].iter().all(|&v| v == u64::MAX), "pop_into leaves the rest of out alone");
    // Empty slices are no-ops.
    assert_eq!(tx.push_slice(&[]).expect("push_slice"), 0);
    assert_eq!(rx.pop_into(&mut []).expect("pop_into"), 0);
    assert!(ring.is_empty());
    // Many batches of odd sizes through a small ring keep the order.
    let (mut next_in, mut next_out) = (0u64, 0u64);
    let mut buf = [0u64; 5];
    for step in 0..5_000usize {
        let batch: Vec<u64> = (next_in..next_in + (step % 7) as u64).collect();
        next_in += tx.push_slice(&batch).expect("push_slice") as u64;
        let want = step % 5 + 1;
        let got = rx.pop_into(&mut buf[..want]).expect("pop_into");
        for &v in &buf[..got] {
            assert_eq!(v, next_out);
            next_out += 1;
        }
    }
    let got = rx.pop_into(&mut big).expect("pop_into");
    for &v in &big[..got] {
        assert_eq!(v, next_out);
        next_out += 1;
    }
    assert_eq!(next_out, next_in);
}

#[test]
fn reserve_commit_and_peek_release_across_the_wrap() {
    let ring = SpscRing::<u32>::new(8).expect("ring");
    let mut tx = ring.producer().expect("producer");
    let mut rx = ring.consumer().expect("consumer");
    // Move both positions to 6: the next loan straddles the end.
    assert_eq!(tx.push_slice(&[0, 1, 2, 3, 4, 5]).expect("push"), 6);
    let mut out = [0u32; 6];
    assert_eq!(rx.pop_into(&mut out).expect("pop"), 6);

    // A loan stops at the end of the buffer: 2 slots, then the rest.
    let loan = tx.reserve(100).expect("reserve");
    assert_eq!(loan.len(), 2, "loan ends at the buffer's end");
    loan.copy_from_slice(&[10, 11]);
    tx.commit(2);
    let loan = tx.reserve(100).expect("reserve");
    assert_eq!(loan.len(), 6, "the rest of the free slots, from index 0");
    loan[..4].copy_from_slice(&[12, 13, 14, 15]);
    tx.commit(4); // a partial commit of the loan
    assert_eq!(ring.len(), 6);
    let loan = tx.reserve(1).expect("reserve");
    assert_eq!(loan.len(), 1, "max limits the loan");
    loan[0] = 16;
    tx.commit(1);
    assert_eq!(tx.reserve(10).expect("reserve").len(), 1, "one slot left");
    tx.commit(0);

    // Read loans: the first stops at the buffer's end too.
    assert_eq!(rx.peek(100).expect("peek"), &[10, 11]);
    rx.release(1);
    assert_eq!(rx.peek(100).expect("peek"), &[11]);
    rx.release(1);
    assert_eq!(rx.peek(2).expect("peek"), &[12, 13], "max limits the loan");
    assert_eq!(rx.peek(100).expect("peek"), &[12, 13, 14, 15, 16], "peek without release shows the same values");
    rx.release(0);
    rx.release(3);
    assert_eq!(rx.pop().expect("pop"), 15);
    assert_eq!(rx.peek(100).expect("peek"), &[16]);
    rx.release(1);
    assert!(ring.is_empty());
    assert!(rx.peek(100).expect("peek").is_empty());

    // Loans and copies mixed over many wraps keep FIFO order.
    let (mut next_in, mut next_out) = (100u32, 100u32);
    for step in 0..3_000u32 {
        if step % 2 == 0 {
            let loan = tx.reserve((step % 5 + 1) as usize).expect("reserve");
            let n = loan.len();
            for (k, s) in loan.iter_mut().enumerate() {
                *s = next_in + k as u32;
            }
            tx.commit(n);
            next_in += n as u32;
        } else if pushed(tx.push(next_in)) {
            next_in += 1;
        }
        if step % 3 == 0 {
            let loan = rx.peek((step % 4 + 1) as usize).expect("peek");
            let n = loan.len();
            for (k, &v) in loan.iter().enumerate() {
                assert_eq!(v, next_out + k as u32);
            }
            rx.release(n);
            next_out += n as u32;
        } else if let Some(v) = popped(rx.pop()) {
            assert_eq!(v, next_out);
            next_out += 1;
        }
    }
    while let Some(v) = popped(rx.pop()) {
        assert_eq!(v, next_out);
        next_out += 1;
    }
    assert_eq!(next_out, next_in);
}

#[test]
fn loans_of_a_struct_are_written_in_place() {
    let ring = SpscRing::<Sample>::new(4).expect("ring");
    let mut tx = ring.producer().expect("producer");
    let mut rx = ring.consumer().expect("consumer");
    for round in 0..10u64 {
        let loan = tx.reserve(4).expect("reserve");
        let n = loan.len();
        assert!(n >= 1);
        for (k, s) in loan.iter_mut().enumerate() {
            *s = Sample::nth(round * 10 + k as u64);
        }
        tx.commit(n);
        let got = rx.peek(4).expect("peek");
        assert_eq!(got.len(), n);
        for (k, s) in got.iter().enumerate() {
            assert_eq!(*s, Sample::nth(round * 10 + k as u64));
        }
        rx.release(n);
        // Shift the positions by one so loans start at every index.
        tx.push(Sample::nth(0)).expect("room");
        rx.pop().expect("value");
    }
}

#[test]
#[should_panic(expected = "commit of more slots than the last reserve lent")]
fn commit_of_more_than_free_panics() {
    let ring = SpscRing::<u64>::new(2).expect("ring");
    let mut tx = ring.producer().expect("producer");
    let _ = tx.reserve(2).expect("reserve");
    tx.commit(3);
}

#[test]
#[should_panic(expected = "release of more slots than the last peek lent")]
fn release_of_more_than_published_panics() {
    let ring = SpscRing::<u64>::new(4).expect("ring");
    ring.producer().expect("producer").push(1).expect("room");
    let mut rx = ring.consumer().expect("consumer");
    let _ = rx.peek(4).expect("peek");
    rx.release(2);
}

#[test]
fn roles_are_claimed_once_and_freed_on_drop() {
    let ring = SpscRing::<u64>::new(16).expect("ring");
    let clone = ring.clone();
    let tx = ring.producer().expect("producer");
    assert!(matches!(ring.producer(), Err(Error::WouldBlock)));
    assert!(matches!(clone.producer(), Err(Error::WouldBlock)), "through another handle too");
    // The roles are independent.
    let rx = clone.consumer().expect("consumer");
    assert!(matches!(ring.consumer(), Err(Error::WouldBlock)));
    // Another thread of this process cannot take a held role either.
    let c2 = ring.clone();
    std::thread::spawn(move || {
        assert!(matches!(c2.producer(), Err(Error::WouldBlock)));
        assert!(matches!(c2.consumer(), Err(Error::WouldBlock)));
    })
    .join()
    .expect("thread");
    drop(tx);
    let mut tx = clone.producer().expect("free after drop");
    tx.push(5).expect("room");
    drop(rx);
    let c2 = ring.clone();
    let got =
        std::thread::spawn(move || c2.consumer().expect("free after drop").pop().expect("pop")).join().expect("thread");
    assert_eq!(got, 5);
    // A new holder continues at the positions the old one left.
    tx.push(6).expect("room");
    drop(tx);
    let mut tx = ring.producer().expect("producer again");
    tx.push(7).expect("room");
    let mut rx = ring.consumer().expect("consumer again");
    assert_eq!(rx.pop().expect("pop"), 6);
    assert_eq!(rx.pop().expect("pop"), 7);
    assert!(matches!(rx.pop(), Err(PopError::Empty)));
}

/// Roles belong to processes (role handles are `Send`): a role leaked by a
/// thread that exited stays held while its process lives, so no second
/// producer can appear beside a handle another thread may still use. (A
/// dead *process* loses its roles: see the mp case 13 tests.)
#[test]
fn a_role_leaked_by_an_exited_thread_stays_with_its_process() {
    let ring = SpscRing::<u64>::new(8).expect("ring");
    let r2 = ring.clone();
    std::thread::spawn(move || {
        let mut tx = r2.producer().expect("producer in the thread");
        tx.push_slice(&[1, 2, 3]).expect("push");
        std::mem::forget(tx);
    })
    .join()
    .expect("thread");
    assert!(matches!(ring.producer(), Err(Error::WouldBlock)), "still held by this process");
    let mut rx = ring.consumer().expect("consumer");
    let mut out = [0u64; 8];
    assert_eq!(rx.pop_into(&mut out).expect("pop_into"), 3);
    assert_eq!(&out[..3], &[1, 2, 3]);
}

#[test]
fn a_role_held_by_a_live_thread_is_not_taken_over() {
    let ring = SpscRing::<u64>::new(8).expect("ring");
    let r2 = ring.clone();
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let t = std::thread::spawn(move || {
        let tx = r2.producer().expect("producer in the thread");
        held_tx.send(()).expect("send");
        let _ = go_rx.recv_timeout(GUARD);
        drop(tx);
    });
    held_rx.recv_timeout(GUARD).expect("the thread took the role");
    for _ in 0..10 {
        assert!(matches!(ring.producer(), Err(Error::WouldBlock)));
    }
    go_tx.send(()).expect("send");
    t.join().expect("thread");
    assert!(ring.producer().is_ok());
}

#[test]
fn named_rings_open_and_check_the_element_type() {
    let names = test_names("named");
    let n = names.name("r");
    let ring = SpscRing::<u64>::create(&n, 64).expect("create");
    assert!(matches!(SpscRing::<u64>::create(&n, 64), Err(Error::Exists { .. })));
    let opened = SpscRing::<u64>::open(&n).expect("open");
    assert_eq!(opened.capacity(), 64);
    ring.producer().expect("producer").push_slice(&[1, 2, 3]).expect("push");
    assert_eq!(opened.len(), 3, "both handles see one ring");
    let mut rx = opened.consumer().expect("consumer");
    assert!(matches!(ring.consumer(), Err(Error::WouldBlock)), "the role is per ring, not per handle");
    assert_eq!(rx.pop().expect("pop"), 1);
    drop(rx);
    // Another element type: same size, other size, other alignment.
    assert!(matches!(SpscRing::<i64>::open(&n), Ok(_) | Err(Error::LayoutMismatch { .. })));
    assert!(matches!(SpscRing::<u32>::open(&n), Err(Error::LayoutMismatch { .. })));
    assert!(matches!(SpscRing::<[u8; 64]>::open(&n), Err(Error::LayoutMismatch { .. })));
    assert!(matches!(SpscRing::<Sample>::open(&n), Err(Error::LayoutMismatch { .. })));
    assert!(matches!(SpscRing::<[u32; 2]>::open(&n), Err(Error::LayoutMismatch { .. })), "same size, other alignment");
    assert!(matches!(SpscRing::<u64>::open(&names.name("none")), Err(Error::NotFound { .. })));
    // Not a ring at all.
    let other = names.name("seg");
    let seg = shmproc::Segment::builder().name(&other).size(4096).create().expect("segment");
    assert!(SpscRing::<u64>::open(&other).is_err());
    drop(seg);
    drop((ring, opened));
    names.finish();
}

#[test]
fn invalid_capacities_are_rejected() {
    let names = test_names("badcap");
    for cap in [0usize, 3, 6, 1000, 1 << 41, usize::MAX] {
        assert!(matches!(SpscRing::<u64>::new(cap), Err(Error::InvalidArgument { .. })), "new({cap})");
        assert!(
            matches!(SpscRing::<u8>::create(&names.name("c"), cap), Err(Error::InvalidArgument { .. })),
            "create({cap})"
        );
    }
    assert_eq!(SpscRing::<u8>::new(1).expect("1 is a power of two").capacity(), 1);
    names.finish();
}

#[cfg(feature = "serde")]
/// Pushes `0..n` in batches, spinning with `yield_now` while the ring is
/// full; returns the sum pushed.
fn produce_stream((ring, n): (SpscRing<u64>, u64)) -> u64 {
    let mut tx = ring.producer().expect("producer role in the child");
    let mut buf = [0u64; 256];
    let mut next = 0u64;
    let mut sum = 0u64;
    let deadline = Instant::now() + GUARD;
    while next < n {
        let k = (n - next).min(buf.len() as u64) as usize;
        for (j, b) in buf[..k].iter_mut().enumerate() {
            *b = next + j as u64;
        }
        let mut done = 0;
        while done < k {
            let m = tx.push_slice(&buf[done..k]).expect("push_slice");
            if m == 0 {
                assert!(Instant::now() < deadline, "consumer stalled");
                std::thread::yield_now();
            }
            done += m;
        }
        sum = sum.wrapping_add(buf[..k].iter().fold(0u64, |a, &v| a.wrapping_add(v)));
        next += k as u64;
    }
    sum
}

#[cfg(feature = "serde")]
#[test]
fn a_million_values_stream_from_a_child_in_order() {
    const N: u64 = 1_000_000;
    for method in METHODS {
        let ring = SpscRing::<u64>::new(1024).expect("ring");
        let mut rx = ring.consumer().expect("consumer");
        let mut child = Context::new(method).spawn(produce_stream, (ring.clone(), N)).expect("spawn");
        let start = Instant::now();
        let mut buf = [0u64; 512];
        let (mut expect, mut sum) = (0u64, 0u64);
        while expect < N {
            let got = rx.pop_into(&mut buf).expect("pop_into");
            if got == 0 {
                if start.elapsed() > GUARD {
                    panic!("hang guard: {method}: stream stalled at {expect}");
                }
                std::thread::yield_now();
                continue;
            }
            for &v in &buf[..got] {
                assert_eq!(v, expect, "{method}: out of order");
                expect += 1;
                sum = sum.wrapping_add(v);
            }
        }
        let sent = child.join().expect("join");
        assert_eq!(sum, N * (N - 1) / 2, "{method}: exact checksum");
        assert_eq!(sent, sum, "{method}: the child pushed what we popped");
        assert!(matches!(rx.pop(), Err(PopError::Empty)), "{method}: nothing extra");
        assert!(ring.producer().is_ok(), "{method}: the child's role is free after it exited");
    }
}

/// `try_iter` takes what is there now and ends when the ring is empty; a
/// later call takes what came since; `for v in &mut rx` is the same.
#[test]
fn try_iter_drains_what_is_there_now() {
    let ring = SpscRing::<u64>::new(8).expect("ring");
    let mut tx = ring.producer().expect("producer");
    let mut rx = ring.consumer().expect("consumer");
    assert_eq!(rx.try_iter().count(), 0);
    tx.push_slice(&[1, 2, 3]).expect("push_slice");
    let mut it = rx.try_iter();
    assert_eq!(it.next().map(|r| r.expect("value")), Some(1));
    drop(it); // the rest stays in the ring
    assert_eq!(ring.len(), 2);
    tx.push(4).expect("room");
    let mut got = Vec::new();
    for v in &mut rx {
        got.push(v.expect("value"));
    }
    assert_eq!(got, [2, 3, 4]);
    assert!(matches!(rx.pop(), Err(PopError::Empty)));
}
