//! Regressions for issue 13 (soundness from safe code) that need no second
//! process: a shmproc object's bytes are reachable only through that
//! object. (The multi-process ones are in `tests/mp/soundness.rs`; a guard
//! captured by a fork closure is a compile-fail doctest on `Process::fork`.)

use std::sync::atomic::AtomicU8;

use shmproc::{Access, Array, Error, Mutex, Segment, Value};

fn unique(label: &str) -> String {
    format!("issue13-{label}-{}", std::process::id())
}

/// `open_raw` maps foreign objects only: never a shmproc object or token,
/// under its own name, another name (a hard link) or a copy of its header.
#[test]
fn open_raw_refuses_shmproc_objects() {
    let name = unique("raw");
    let m = Mutex::create(&name, 0u64).expect("mutex");
    let _g = m.lock().expect("lock");
    for bad in [format!("shmproc.{name}"), format!("/shmproc.{name}"), "shmproc@000001".to_owned()] {
        assert!(
            matches!(Segment::open_raw(&bad, Access::ReadWrite), Err(Error::InvalidName { .. })),
            "{bad} was opened raw"
        );
    }
    let link = unique("link");
    std::fs::hard_link(format!("/dev/shm/shmproc.{name}"), format!("/dev/shm/{link}")).expect("hard link");
    let linked = Segment::open_raw(&link, Access::ReadWrite);
    std::fs::remove_file(format!("/dev/shm/{link}")).expect("remove the link");
    assert!(matches!(linked, Err(Error::InvalidName { .. })), "a hard link to a mutex was opened raw");

    let copy = unique("copy");
    let bytes = std::fs::read(format!("/dev/shm/shmproc.{name}")).expect("read the mutex file");
    std::fs::write(format!("/dev/shm/{copy}"), &bytes).expect("write the copy");
    let copied = Segment::open_raw(&copy, Access::ReadOnly);
    std::fs::remove_file(format!("/dev/shm/{copy}")).expect("remove the copy");
    assert!(matches!(copied, Err(Error::InvalidName { .. })), "a file with a shmproc header was opened raw");

    let plain = unique("plain");
    std::fs::write(format!("/dev/shm/{plain}"), [7u8; 16]).expect("write a foreign object");
    let seg = Segment::open_raw(&plain, Access::ReadOnly);
    std::fs::remove_file(format!("/dev/shm/{plain}")).expect("remove it");
    let mut first = [0u8; 1];
    seg.expect("a foreign object opens").read_at(0, &mut first).expect("read");
    assert_eq!(first, [7]);
}

fn refuses_bytes(seg: &Segment) {
    let mut buf = [0u8; 1];
    let no = |r: Result<(), Error>| matches!(r, Err(Error::InvalidArgument { .. }));
    assert!(no(seg.read_at(0, &mut buf)), "read_at");
    assert!(no(seg.write_at(0, &buf)), "write_at");
    assert!(no(seg.typed::<AtomicU8>(0).map(|_| ())), "typed");
    assert!(no(seg.slice::<AtomicU8>(0, 1).map(|_| ())), "slice");
}

/// The segment behind a `Mutex`, `Value` or `Array` names and describes it
/// but gives no second path to the bytes a guard lends as `&mut T`.
#[test]
fn object_segments_give_no_raw_bytes() {
    let m = Mutex::new(5u64).expect("mutex");
    let g = m.lock().expect("lock");
    refuses_bytes(m.segment());
    drop(g);
    let v = Value::new(1u32).expect("value");
    refuses_bytes(v.segment());
    let a = Array::<f64>::new(4).expect("array");
    refuses_bytes(a.segment());
    // A plain segment's bytes stay the caller's.
    let seg = Segment::anonymous(8).expect("segment");
    seg.write_at(0, &[1]).expect("write");
    assert!(seg.typed::<AtomicU8>(0).is_ok());
}

/// A named ring's serialized handle decodes as a `Segment` (the form is
/// shared), but that segment gives no bytes: the ring's slots are reached
/// only through its roles and their loans.
#[cfg(feature = "serde")]
#[test]
fn a_ring_decoded_as_a_segment_gives_no_bytes() {
    let name = unique("ring");
    let ring = shmproc::SpscRing::<u64>::create(&name, 8).expect("ring");
    let mut tx = ring.producer().expect("producer");
    let loan = tx.reserve(1).expect("loan");
    loan[0] = 7;
    let bytes = postcard::to_allocvec(&ring).expect("encode");
    let seg: Segment = postcard::from_bytes(&bytes).expect("decode as a segment");
    refuses_bytes(&seg);
    tx.commit(1);
}
