//! In-process tests of the public segment API: named and anonymous
//! segments, typed access, `Shared<T>`, `Arena`, `RelPtr`, descriptor
//! passing, cleanup refusals, foreign (`open_raw`) objects, and Python
//! `multiprocessing.shared_memory` interop.
//!
//! Threads stand in for processes here (multi-process cases live in
//! `tests/mp/`); the one child process is Python's, in the interop test.
//! Every test uses names unique to the test and this process, and checks
//! that none is left in `/dev/shm` when it ends.

mod common;

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::{Names, SHM_DIR};
use shmproc::{Access, Arena, CachePadded, Error, RelPtr, Segment, Shared, ShmSafe};

/// Names unique to one test in this process: `segtest-<pid>-<tag>-<n>`.
/// `finish` checks that none is left in `/dev/shm` (see [`Names`]).
fn test_names(tag: &str) -> Names {
    Names::new("segtest", tag)
}

fn exists(path: &str) -> bool {
    std::path::Path::new(path).exists()
}

#[test]
fn create_open_read_write_round_trip() {
    let names = test_names("round_trip");
    let name = names.name("a");
    let a = Segment::create(&name, 4096).expect("create");
    assert_eq!(a.len(), 4096);
    assert!(!a.is_empty());
    assert_eq!(a.name(), Some(name.as_str()));
    assert!(a.is_creator());
    assert!(a.is_writable());
    assert_eq!(a.creator_pid(), Some(std::process::id()));
    assert!(a.creator_alive());
    a.check().expect("full length");
    assert!(exists(&names.path_of("a")));

    a.write_at(0, b"hello").expect("write");
    a.write_at(4090, b"tail!!").expect("write up to the end");

    let b = Segment::open(&name).expect("open");
    assert!(!b.is_creator());
    assert_eq!(b.len(), 4096);
    assert_eq!(b.creator_pid(), Some(std::process::id()));
    let mut buf = [0u8; 5];
    b.read_at(0, &mut buf).expect("read");
    assert_eq!(&buf, b"hello");
    let mut tail = [0u8; 6];
    b.read_at(4090, &mut tail).expect("read up to the end");
    assert_eq!(&tail, b"tail!!");

    // Writes through either handle are seen through the other.
    b.write_at(100, &[9, 8, 7]).expect("write");
    let mut back = [0u8; 3];
    a.read_at(100, &mut back).expect("read");
    assert_eq!(back, [9, 8, 7]);

    // A clone shares the mapping.
    let c = a.clone();
    assert!(c.is_creator());
    assert!(format!("{c:?}").contains(&name));

    assert!(matches!(Segment::create(&name, 64), Err(Error::Exists { .. })));
    drop((a, b, c));
    names.finish();
}

#[test]
fn open_checks_size_and_existence() {
    let names = test_names("open_checks");
    let name = names.name("a");
    assert!(matches!(Segment::open(&name), Err(Error::NotFound { .. })));
    let a = Segment::create(&name, 100).expect("create");
    assert_eq!(Segment::builder().name(&name).size(100).open().expect("exact size").len(), 100);
    assert_eq!(Segment::builder().name(&name).size(10).open().expect("smaller is fine").len(), 100);
    match Segment::builder().name(&name).size(101).open() {
        Err(Error::SizeMismatch { expected: 101, found: 100 }) => {}
        other => panic!("expected SizeMismatch, got {other:?}"),
    }
    drop(a);

    // wait_for_name: gives up after its timeout, or sees a late creator.
    let r = Segment::builder().name(&name).wait_for_name(Duration::from_millis(50)).open();
    assert!(matches!(r, Err(Error::NotFound { .. })), "{r:?}");
    let late = {
        let name = name.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            Segment::create(&name, 64).expect("late create")
        })
    };
    let opened = Segment::builder().name(&name).wait_for_name(Duration::from_secs(10)).open().expect("waited");
    let creator = late.join().expect("creator thread");
    assert_eq!(opened.len(), 64);
    drop((opened, creator));
    names.finish();
}

#[test]
fn invalid_names_are_refused() {
    let long = "x".repeat(248);
    for bad in ["", ".", "..", ".hidden", "a/b", "a b", "é", "nul\0", long.as_str()] {
        assert!(matches!(Segment::create(bad, 64), Err(Error::InvalidName { .. })), "create {bad:?}");
        assert!(matches!(Segment::open(bad), Err(Error::InvalidName { .. })), "open {bad:?}");
        assert!(matches!(Segment::unlink(bad), Err(Error::InvalidName { .. })), "unlink {bad:?}");
    }
    for bad in ["", "/", "..", "a/b", "/a/b"] {
        assert!(matches!(Segment::open_raw(bad, Access::ReadOnly), Err(Error::InvalidName { .. })), "{bad:?}");
    }
    assert!(matches!(Segment::builder().size(64).create(), Err(Error::InvalidArgument { .. })));
    assert!(matches!(Segment::builder().open(), Err(Error::InvalidArgument { .. })));
}

#[test]
fn bounds_errors() {
    let seg = Segment::anonymous(100).expect("anonymous");
    let mut eight = [0u8; 8];
    assert!(matches!(seg.read_at(93, &mut eight), Err(Error::InvalidArgument { .. })));
    assert!(matches!(seg.write_at(93, &eight), Err(Error::InvalidArgument { .. })));
    assert!(matches!(seg.read_at(usize::MAX, &mut eight), Err(Error::InvalidArgument { .. })));
    assert!(matches!(seg.write_at(usize::MAX - 2, &eight), Err(Error::InvalidArgument { .. })));
    assert!(seg.read_at(101, &mut []).is_err());
    seg.read_at(92, &mut eight).expect("last 8 bytes");
    seg.write_at(92, &eight).expect("last 8 bytes");
    seg.read_at(100, &mut []).expect("empty read at the end");
    seg.write_at(100, &[]).expect("empty write at the end");

    // The payload is what was asked for, even though the mapping has whole pages.
    let mut big = vec![0u8; 4096];
    assert!(seg.read_at(0, &mut big).is_err());

    let one = Segment::anonymous(1).expect("one byte");
    assert!(!one.is_empty());
    assert_eq!(one.len(), 1);
    assert!(one.read_at(1, &mut [0u8]).is_err());
    one.read_at(1, &mut []).expect("nothing to read at the end");
}

// CPython: _TestSharedMemory.test_shared_memory_basics (creating with
// size 0 or less raises ValueError: "'size' must be a positive number
// different from zero"); here every creation path refuses 0.
#[test]
fn zero_size_creation_is_refused() {
    let names = test_names("zero");
    let name = names.name("a");
    let refused = |r: Result<Segment, Error>, how: &str| match r {
        Err(Error::InvalidArgument { what }) => assert!(what.contains("size"), "{how}: {what}"),
        other => panic!("{how}: {other:?}"),
    };
    refused(Segment::create(&name, 0), "create");
    refused(Segment::open_or_create(&name, 0), "open_or_create");
    refused(Segment::anonymous(0), "anonymous");
    refused(Segment::builder().name(&name).create(), "builder without a size");
    refused(Segment::builder().name(&name).open_or_recover(), "open_or_recover");
    refused(Segment::builder().size(0).anonymous(), "builder anonymous");
    // Nothing was made under the name.
    assert!(matches!(Segment::open(&name), Err(Error::NotFound { .. })));
    names.finish();
}

#[test]
fn typed_and_slice_check_alignment_and_bounds() {
    let seg = Segment::anonymous(256).expect("anonymous");
    let x = seg.typed::<AtomicU64>(0).expect("aligned, in bounds");
    x.store(0x0102_0304_0506_0708, Ordering::Relaxed);
    let mut bytes = [0u8; 8];
    seg.read_at(0, &mut bytes).expect("read");
    assert_eq!(u64::from_ne_bytes(bytes), 0x0102_0304_0506_0708);

    assert!(matches!(seg.typed::<AtomicU64>(4), Err(Error::InvalidArgument { .. })), "misaligned");
    assert!(matches!(seg.typed::<AtomicU64>(1), Err(Error::InvalidArgument { .. })), "misaligned");
    assert!(seg.typed::<AtomicU32>(4).is_ok());
    assert!(seg.typed::<AtomicU8>(255).is_ok());
    assert!(seg.typed::<AtomicU64>(248).is_ok(), "the last word");
    assert!(matches!(seg.typed::<AtomicU64>(256), Err(Error::InvalidArgument { .. })), "past the end");
    assert!(matches!(seg.typed::<AtomicU64>(usize::MAX - 7), Err(Error::InvalidArgument { .. })));

    let words = seg.slice::<AtomicU32>(0, 64).expect("the whole payload");
    assert_eq!(words.len(), 64);
    words[63].store(7, Ordering::Relaxed);
    assert_eq!(seg.typed::<AtomicU32>(252).expect("last").load(Ordering::Relaxed), 7);
    assert!(matches!(seg.slice::<AtomicU32>(0, 65), Err(Error::InvalidArgument { .. })), "one too many");
    assert!(matches!(seg.slice::<AtomicU32>(4, 64), Err(Error::InvalidArgument { .. })), "shifted past end");
    assert!(matches!(seg.slice::<AtomicU32>(2, 1), Err(Error::InvalidArgument { .. })), "misaligned");
    assert!(matches!(seg.slice::<AtomicU64>(0, usize::MAX), Err(Error::InvalidArgument { .. })), "overflow");
    assert!(seg.slice::<AtomicU64>(256, 0).expect("empty slice at the end").is_empty());

    // The payload is 128-aligned, so CachePadded fits at 0 and 128.
    assert!(seg.typed::<CachePadded<AtomicU64>>(128).is_ok());
    assert!(seg.typed::<CachePadded<AtomicU64>>(64).is_err());
    assert_eq!(seg.as_ptr() as usize % 128, 0);
}

#[test]
fn shared_create_open_anonymous_and_layout_mismatch() {
    let names = test_names("shared");
    let name = names.name("counter");
    let a = Shared::<AtomicU64>::create(&name, |c| c.store(5, Ordering::Relaxed)).expect("create");
    let b = Shared::<AtomicU64>::open(&name).expect("open as the same type");
    b.fetch_add(2, Ordering::Relaxed);
    assert_eq!(a.load(Ordering::Relaxed), 7);
    assert_eq!(a.segment().name(), Some(name.as_str()));
    assert!(a.segment().is_creator());
    assert!(!b.segment().is_creator());
    // The Debug output names the type as `std::any::type_name` spells it,
    // which differs between compilers (`AtomicU64`, `Atomic<u64>`): only
    // its presence is checked.
    assert!(format!("{a:?}").contains("type:"), "{a:?}");

    match Shared::<AtomicU32>::open(&name) {
        Err(Error::LayoutMismatch { expected, found }) => {
            assert_eq!(expected, <AtomicU32 as ShmSafe>::LAYOUT_HASH);
            assert_eq!(found, <AtomicU64 as ShmSafe>::LAYOUT_HASH);
        }
        other => panic!("expected LayoutMismatch, got {other:?}"),
    }
    assert!(matches!(Shared::<AtomicI32>::open(&name), Err(Error::LayoutMismatch { .. })));
    assert!(matches!(Shared::<[AtomicU64; 1]>::open(&name), Err(Error::LayoutMismatch { .. })));
    // A typed segment is not plain bytes, and plain bytes are not a type.
    assert!(matches!(Segment::open(&name), Err(Error::KindMismatch { .. })));
    let raw_name = names.name("bytes");
    let raw = Segment::create(&raw_name, 8).expect("create");
    assert!(matches!(Shared::<AtomicU64>::open(&raw_name), Err(Error::KindMismatch { .. })));
    assert!(matches!(Shared::<AtomicU64>::create(&name, |_| {}), Err(Error::Exists { .. })));

    // Anonymous, then passed on by descriptor.
    let anon = Shared::<[AtomicU64; 4]>::anonymous(|c| c[3].store(9, Ordering::Relaxed)).expect("anonymous");
    assert_eq!(anon.segment().name(), None);
    let again = Shared::<[AtomicU64; 4]>::from_fd(anon.segment().share_fd().expect("dup")).expect("from_fd");
    again[3].fetch_add(1, Ordering::Relaxed);
    assert_eq!(anon[3].load(Ordering::Relaxed), 10);
    let wrong = Shared::<[AtomicU64; 3]>::from_fd(anon.segment().share_fd().expect("dup"));
    assert!(matches!(wrong, Err(Error::LayoutMismatch { .. })), "{wrong:?}");
    let plain = Segment::from_fd(anon.segment().share_fd().expect("dup"));
    assert!(matches!(plain, Err(Error::KindMismatch { .. })), "{plain:?}");

    // Shared from threads: Send + Sync, and the increments all land.
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let c = a.clone();
            std::thread::spawn(move || {
                for _ in 0..10_000 {
                    c.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    assert_eq!(b.load(Ordering::Relaxed), 40_007);

    drop((a, b, raw));
    names.finish();
}

#[test]
fn arena_layout_on_a_named_segment() {
    let names = test_names("arena");
    let name = names.name("a");
    let layout = || {
        let mut arena = Arena::new();
        let flag = arena.place::<AtomicU8>().expect("fits");
        let head = arena.place::<CachePadded<AtomicU64>>().expect("fits");
        let slots = arena.place_slice::<AtomicU32>(10).expect("fits");
        let link = arena.place::<RelPtr<AtomicU32>>().expect("fits");
        (arena.size(), flag, head, slots, link)
    };
    let (size, flag, head, slots, link) = layout();
    assert_eq!((flag, head, slots, link), (0, 128, 256, 296));
    assert_eq!(size, 304);

    let creator = Segment::create(&name, size).expect("create");
    creator.typed::<AtomicU8>(flag).expect("flag").store(1, Ordering::Relaxed);
    creator.typed::<CachePadded<AtomicU64>>(head).expect("head").store(42, Ordering::Relaxed);
    for (i, s) in creator.slice::<AtomicU32>(slots, 10).expect("slots").iter().enumerate() {
        s.store(i as u32 * 10, Ordering::Relaxed);
    }
    creator.typed::<RelPtr<AtomicU32>>(link).expect("link").set((slots + 4 * 7) as u64);

    // An opener runs the same layout code and agrees on every offset.
    let opener = Segment::open(&name).expect("open");
    let (size2, flag2, head2, slots2, link2) = layout();
    assert_eq!((size2, flag2, head2, slots2, link2), (size, flag, head, slots, link));
    assert_eq!(opener.len(), size);
    assert_eq!(opener.typed::<AtomicU8>(flag2).expect("flag").load(Ordering::Relaxed), 1);
    assert_eq!(opener.typed::<CachePadded<AtomicU64>>(head2).expect("head").load(Ordering::Relaxed), 42);
    let seventh = opener.typed::<RelPtr<AtomicU32>>(link2).expect("link").resolve(&opener).expect("resolves");
    assert_eq!(seventh.load(Ordering::Relaxed), 70);

    // A layout that needs more than the segment has is refused, not faulted.
    assert!(opener.slice::<AtomicU32>(slots, 13).is_err());
    let mut huge = Arena::new();
    assert!(huge.place_slice::<AtomicU64>(usize::MAX / 8 + 1).is_err());

    drop((creator, opener));
    names.finish();
}

#[test]
fn relptr_resolve_errors() {
    let seg = Segment::anonymous(256).expect("anonymous");
    let link: &RelPtr<AtomicU64> = seg.typed(0).expect("link");
    assert_eq!(link.offset(), 0, "zero-filled");
    link.set(64);
    assert_eq!(link.offset(), 64);
    link.resolve(&seg).expect("in bounds").store(3, Ordering::Relaxed);
    assert_eq!(seg.typed::<AtomicU64>(64).expect("target").load(Ordering::Relaxed), 3);
    assert!(format!("{link:?}").contains("64"));

    // A peer may store any value: each is checked on every resolve.
    for bad in [3, 60 + 1, 249, 256, 1 << 40, u64::MAX] {
        link.set(bad);
        match link.resolve(&seg) {
            Err(Error::Corrupt { .. }) => {}
            other => panic!("offset {bad}: expected Corrupt, got {other:?}"),
        }
    }
    link.set(248);
    assert!(link.resolve(&seg).is_ok(), "the last aligned word");
}

#[test]
fn open_or_create_race_has_one_creator() {
    let names = test_names("race");
    for round in 0..5 {
        let name = names.name(&format!("r{round}"));
        let barrier = Arc::new(Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let (name, barrier) = (name.clone(), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    let seg = Segment::open_or_create(&name, 4096).expect("open_or_create");
                    seg.typed::<AtomicU64>(8 * i).expect("slot").store(i as u64 + 1, Ordering::Relaxed);
                    seg
                })
            })
            .collect();
        let segs: Vec<Segment> = threads.into_iter().map(|t| t.join().expect("thread")).collect();
        assert_eq!(segs.iter().filter(|s| s.is_creator()).count(), 1, "round {round}");
        // All eight handles map the same object.
        for s in &segs {
            for i in 0..8 {
                assert_eq!(s.typed::<AtomicU64>(8 * i).expect("slot").load(Ordering::Relaxed), i as u64 + 1);
            }
        }
        drop(segs);
        assert!(!exists(&names.path_of(&format!("r{round}"))), "the creator's drop removes the name");
    }
    names.finish();
}

#[test]
fn creator_drop_removes_the_name_opener_drop_does_not() {
    let names = test_names("drops");
    let name = names.name("a");
    let path = names.path_of("a");
    let creator = Segment::create(&name, 64).expect("create");
    let opener = Segment::open(&name).expect("open");
    drop(opener);
    assert!(exists(&path), "an opener's drop leaves the name");
    Segment::open(&name).expect("still openable");

    // A clone of the creator's handle keeps it alive.
    let clone = creator.clone();
    drop(creator);
    assert!(exists(&path), "a clone of the creator handle is still alive");

    let late = Segment::open(&name).expect("open");
    late.write_at(0, b"mapped").expect("write");
    drop(clone);
    assert!(!exists(&path), "the creator's last handle removes the name");
    assert!(matches!(Segment::open(&name), Err(Error::NotFound { .. })));
    // ...while handles that are still open keep the memory.
    let mut buf = [0u8; 6];
    late.read_at(0, &mut buf).expect("still mapped");
    assert_eq!(&buf, b"mapped");
    drop(late);

    // The name is free again.
    let again = Segment::create(&name, 64).expect("recreate");
    drop(again);
    names.finish();
}

#[test]
fn creator_drop_spares_a_replacement_object() {
    let names = test_names("replaced");
    let name = names.name("a");
    let first = Segment::create(&name, 64).expect("create");
    Segment::unlink(&name).expect("external unlink");
    let second = Segment::builder().name(&name).size(64).keep_name(true).create().expect("create anew");
    drop(first); // its name now belongs to another object: left alone
    assert!(exists(&names.path_of("a")));
    drop(second);
    Segment::unlink(&name).expect("unlink the kept name");
    names.finish();
}

#[test]
fn keep_name_outlives_the_creator_until_unlink() {
    let names = test_names("keep");
    let name = names.name("built");
    let seg = Segment::builder().name(&name).size(64).keep_name(true).create().expect("create");
    seg.write_at(0, b"kept").expect("write");
    assert!(seg.is_creator());
    drop(seg);
    assert!(exists(&names.path_of("built")));
    let reopened = Segment::open(&name).expect("reopen");
    assert!(!reopened.is_creator());
    let mut buf = [0u8; 4];
    reopened.read_at(0, &mut buf).expect("read");
    assert_eq!(&buf, b"kept");
    drop(reopened);
    Segment::unlink(&name).expect("unlink");
    assert!(matches!(Segment::unlink(&name), Err(Error::NotFound { .. })));
    assert!(matches!(Segment::open(&name), Err(Error::NotFound { .. })));

    // The same through the method on a live handle.
    let name = names.name("method");
    let seg = Segment::create(&name, 64).expect("create");
    seg.keep_name();
    drop(seg);
    assert!(exists(&names.path_of("method")));
    Segment::unlink(&name).expect("unlink");
    names.finish();
}

#[test]
fn unlink_keeps_existing_mappings() {
    let names = test_names("unlink");
    let name = names.name("a");
    let seg = Segment::create(&name, 64).expect("create");
    Segment::unlink(&name).expect("unlink");
    assert!(matches!(Segment::open(&name), Err(Error::NotFound { .. })));
    seg.write_at(0, b"still here").expect("write after unlink");
    drop(seg); // the name is gone already: nothing to remove, no error
    names.finish();
}

#[test]
fn anonymous_segments_pass_by_fd_and_socket() {
    let a = Segment::anonymous(1024).expect("anonymous");
    assert_eq!(a.name(), None);
    assert_eq!(a.creator_pid(), None);
    assert!(a.creator_alive());
    assert!(!a.is_creator(), "anonymous segments have no name to remove");
    a.write_at(0, b"shared").expect("write");

    let b = Segment::from_fd(a.share_fd().expect("dup")).expect("from_fd");
    assert_eq!(b.len(), 1024);
    let mut buf = [0u8; 6];
    b.read_at(0, &mut buf).expect("read");
    assert_eq!(&buf, b"shared");

    let (left, right) = UnixStream::pair().expect("socketpair");
    a.send_to(&left).expect("send");
    let c = Segment::recv_from(&right).expect("receive");
    c.write_at(10, b"back").expect("write");
    let mut back = [0u8; 4];
    a.read_at(10, &mut back).expect("read");
    assert_eq!(&back, b"back");
    assert_eq!(c.len(), 1024);

    // Several in flight, received in order.
    let d = Segment::anonymous(16).expect("anonymous");
    a.send_to(&left).expect("send a");
    d.send_to(&left).expect("send d");
    assert_eq!(Segment::recv_from(&right).expect("a").len(), 1024);
    assert_eq!(Segment::recv_from(&right).expect("d").len(), 16);

    // A message without a descriptor, then a closed socket.
    (&left).write_all(b"x").expect("plain byte");
    assert!(matches!(Segment::recv_from(&right), Err(Error::Corrupt { .. })));
    drop(left);
    let e = Segment::recv_from(&right).expect_err("peer closed");
    assert!(matches!(e, Error::Os { .. }), "{e:?}");
    assert!(a.send_to(&right).is_err(), "the other end is closed");

    // The inheritable duplicate is a different descriptor of the same object.
    let fd = a.inheritable_fd().expect("inheritable");
    let via_number = inherited(fd.as_raw_fd()).expect("from the number");
    via_number.read_at(10, &mut back).expect("read");
    assert_eq!(&back, b"back");
    drop(fd); // from_inherited_fd duplicated it
    via_number.read_at(0, &mut buf).expect("still mapped");
}

#[test]
fn from_fd_refuses_what_is_not_a_segment() {
    assert!(matches!(inherited(-1), Err(Error::Os { .. })));
    assert!(matches!(inherited(i32::MAX), Err(Error::Os { .. })));

    let dir = std::env::temp_dir().join(format!("segtest-{}-notseg", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let small = dir.join("small");
    std::fs::write(&small, b"tiny").expect("write");
    let f = File::options().read(true).write(true).open(&small).expect("open");
    let r = inherited(f.as_raw_fd());
    assert!(matches!(r, Err(Error::Corrupt { .. })), "{r:?}");
    let zeros = dir.join("zeros");
    std::fs::write(&zeros, vec![0u8; 8192]).expect("write");
    let f = File::options().read(true).write(true).open(&zeros).expect("open");
    let r = Segment::from_fd(OwnedFd::from(f));
    assert!(matches!(r, Err(Error::Corrupt { .. })), "{r:?}");
    std::fs::remove_dir_all(&dir).expect("remove temp dir");
}

#[test]
fn truncation_is_detected() {
    let names = test_names("truncated");
    let name = names.name("a");
    let seg = Segment::create(&name, 8192).expect("create");
    seg.check().expect("intact");
    // Another process (here: std::fs) truncates the file under the mapping.
    File::options().write(true).open(names.path_of("a")).expect("open file").set_len(4096).expect("truncate");
    match seg.check() {
        Err(Error::Truncated { found: 4096, .. }) => {}
        other => panic!("expected Truncated, got {other:?}"),
    }
    match Segment::open(&name) {
        Err(Error::Truncated { found: 4096, .. }) => {}
        other => panic!("expected Truncated on open, got {other:?}"),
    }
    drop(seg); // never touched past the new end
    names.finish();
}

#[test]
fn cleanup_refuses_a_live_creator() {
    let names = test_names("cleanup");
    let name = names.name("a");
    let seg = Segment::create(&name, 64).expect("create");
    match Segment::cleanup(&name) {
        Err(Error::StillAlive { pid }) => assert_eq!(pid, std::process::id()),
        other => panic!("expected StillAlive, got {other:?}"),
    }
    assert!(exists(&names.path_of("a")), "a live creator's segment stays");
    let opener = Segment::open(&name).expect("open");
    assert!(matches!(Segment::cleanup(&name), Err(Error::StillAlive { .. })), "opener handles do not matter");
    drop((seg, opener));
    assert!(matches!(Segment::cleanup(&name), Err(Error::NotFound { .. })));
    assert!(matches!(Segment::cleanup("a/b"), Err(Error::InvalidName { .. })));

    // A file under our prefix that is not a shmproc object is left alone.
    let foreign = names.path_of("foreign");
    std::fs::write(&foreign, vec![0u8; 4096]).expect("write a foreign file");
    assert!(matches!(Segment::cleanup(&names.name("foreign")), Err(Error::Corrupt { .. })));
    assert!(exists(&foreign));
    std::fs::remove_file(&foreign).expect("remove");
    names.finish();
}

#[test]
fn error_messages_are_not_empty() {
    let mut names = test_names("messages");
    let name = names.name("a");
    let seg = Segment::create(&name, 64).expect("create");
    let shared = Shared::<AtomicU64>::create(&names.name("t"), |_| {}).expect("create");
    let ro_target = names.raw_name("ro");
    std::fs::write(format!("{SHM_DIR}/{ro_target}"), vec![0u8; 64]).expect("write");
    let ro = Segment::open_raw(&ro_target, Access::ReadOnly).expect("open_raw");
    let errors: Vec<Error> = vec![
        Segment::create(&name, 64).expect_err("exists"),
        Segment::open(&names.name("missing")).expect_err("not found"),
        Segment::open("a/b").expect_err("invalid name"),
        Segment::builder().name(&name).size(65).open().expect_err("size"),
        Shared::<AtomicU32>::open(&names.name("t")).expect_err("layout"),
        Segment::open(&names.name("t")).expect_err("kind"),
        Segment::cleanup(&name).expect_err("still alive"),
        seg.read_at(60, &mut [0u8; 8]).expect_err("bounds"),
        seg.typed::<AtomicU64>(3).expect_err("alignment"),
        ro.write_at(0, b"x").expect_err("read-only"),
        inherited(-1).expect_err("bad fd"),
    ];
    for e in &errors {
        let msg = e.to_string();
        assert!(!msg.trim().is_empty(), "{e:?}");
        assert!(!format!("{e:?}").is_empty());
    }
    let os = inherited(-1).expect_err("bad fd");
    assert!(std::error::Error::source(&os).is_some(), "Os errors carry the io::Error");
    assert!(std::error::Error::source(&errors[0]).is_none());
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(os);
    assert!(!boxed.to_string().is_empty());
    drop((seg, shared, ro));
    std::fs::remove_file(format!("{SHM_DIR}/{ro_target}")).expect("remove");
    names.finish();
}

#[test]
fn open_raw_of_missing_and_empty_objects() {
    let mut names = test_names("raw_errors");
    let missing = names.raw_name("missing");
    assert!(matches!(Segment::open_raw(&missing, Access::ReadOnly), Err(Error::NotFound { .. })));
    assert!(matches!(Segment::open_raw(&format!("/{missing}"), Access::ReadWrite), Err(Error::NotFound { .. })));

    let empty = names.raw_name("empty");
    File::create(format!("{SHM_DIR}/{empty}")).expect("create an empty object");
    match Segment::open_raw(&empty, Access::ReadOnly) {
        Err(Error::SizeMismatch { found: 0, .. }) => {}
        other => panic!("expected SizeMismatch, got {other:?}"),
    }
    assert!(matches!(Segment::open_raw(&empty, Access::ReadWrite), Err(Error::SizeMismatch { .. })));
    std::fs::remove_file(format!("{SHM_DIR}/{empty}")).expect("remove");
    names.finish();
}

#[test]
fn open_raw_read_only_and_read_write() {
    let mut names = test_names("raw_access");
    let raw = names.raw_name("obj");
    let path = format!("{SHM_DIR}/{raw}");
    let content: Vec<u8> = (0..1000u32).map(|i| (i % 256) as u8).collect();
    std::fs::write(&path, &content).expect("make a foreign object");

    let ro = Segment::open_raw(&raw, Access::ReadOnly).expect("read-only");
    assert_eq!(ro.len(), 1000, "the real size: no header, no rounding");
    assert!(!ro.is_writable());
    assert!(!ro.is_creator());
    assert_eq!(ro.creator_pid(), None);
    let mut all = vec![0u8; 1000];
    ro.read_at(0, &mut all).expect("read");
    assert_eq!(all, content);
    assert!(ro.read_at(999, &mut [0u8; 2]).is_err());
    assert!(matches!(ro.write_at(0, b"no"), Err(Error::InvalidArgument { .. })));
    assert!(matches!(ro.typed::<AtomicU8>(0), Err(Error::InvalidArgument { .. })));
    assert!(matches!(ro.slice::<AtomicU32>(0, 1), Err(Error::InvalidArgument { .. })));

    let rw = Segment::open_raw(&format!("/{raw}"), Access::ReadWrite).expect("read-write, with a leading slash");
    assert!(rw.is_writable());
    rw.write_at(500, b"from rust").expect("write");
    rw.typed::<AtomicU32>(996).expect("typed works read-write").store(u32::from_ne_bytes(*b"END!"), Ordering::Relaxed);
    let mut back = [0u8; 9];
    ro.read_at(500, &mut back).expect("the read-only map sees it");
    assert_eq!(&back, b"from rust");
    let on_disk = std::fs::read(&path).expect("read the file");
    assert_eq!(&on_disk[500..509], b"from rust");
    assert_eq!(&on_disk[996..], b"END!");

    drop((ro, rw));
    assert!(exists(&path), "dropping a raw segment never removes a foreign name");
    std::fs::remove_file(&path).expect("remove");
    names.finish();
}

/// Runs `f` with a watchdog that SIGKILLs `pid` if `f` takes longer than
/// `limit` (the process must not be reaped before `f` returns).
fn with_watchdog<R>(pid: u32, limit: Duration, f: impl FnOnce() -> R) -> R {
    let done = Arc::new(AtomicBool::new(false));
    let guard = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let deadline = Instant::now() + limit;
            while !done.load(Ordering::Acquire) {
                if Instant::now() >= deadline {
                    eprintln!("watchdog: killing pid {pid} after {limit:?}");
                    if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
                        let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
                    }
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let r = f();
    done.store(true, Ordering::Release);
    guard.join().expect("watchdog");
    r
}

/// The Python side of the interop test: create, fill, report, wait, read
/// the reply, unlink (which also keeps the resource tracker quiet).
const PYTHON_PEER: &str = r#"
import sys
from multiprocessing import shared_memory
name = sys.argv[1]
shm = shared_memory.SharedMemory(name=name, create=True, size=1000)
shm.buf[:1000] = bytes((i * 7) % 256 for i in range(1000))
print("ready", flush=True)
if sys.stdin.readline().strip() != "go":
    shm.close(); shm.unlink(); sys.exit(2)
reply = bytes(shm.buf[200:200 + 15])
print("reply " + reply.decode(), flush=True)
shm.close()
shm.unlink()
print("unlinked", flush=True)
"#;

#[test]
fn open_raw_python_shared_memory() {
    let have_python = Command::new("python3")
        .args(["-c", "from multiprocessing import shared_memory"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !have_python {
        println!("skipped: python3 not found");
        return;
    }
    let mut names = test_names("python");
    let raw = names.raw_name("psm");
    let path = format!("{SHM_DIR}/{raw}");
    let mut py = Command::new("python3")
        .args(["-c", PYTHON_PEER, &raw])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start python3");
    let mut to_py = py.stdin.take().expect("stdin");
    let mut from_py = BufReader::new(py.stdout.take().expect("stdout"));
    let mut line = String::new();

    with_watchdog(py.id(), Duration::from_secs(60), || {
        from_py.read_line(&mut line).expect("read from python");
        assert_eq!(line.trim(), "ready", "python said {line:?}");

        // The real size of Python's object, as the kernel reports it.
        let real = std::fs::metadata(&path).expect("python's object exists").len();
        assert_eq!(real, 1000, "Python sizes the file exactly (ftruncate), no page rounding");

        let ro = Segment::open_raw(&raw, Access::ReadOnly).expect("open_raw read-only");
        assert_eq!(ro.len() as u64, real);
        assert!(!ro.is_writable());
        let mut all = vec![0u8; 1000];
        ro.read_at(0, &mut all).expect("read");
        assert!(all.iter().enumerate().all(|(i, &b)| b == ((i * 7) % 256) as u8), "python's bytes");
        assert!(ro.write_at(200, b"x").is_err());
        assert!(ro.typed::<AtomicU64>(0).is_err());

        let rw = Segment::open_raw(&format!("/{raw}"), Access::ReadWrite).expect("open_raw read-write");
        assert_eq!(rw.len(), 1000);
        rw.write_at(200, b"hello, python!!").expect("write the reply");
        drop(rw);

        writeln!(to_py, "go").expect("tell python");
        line.clear();
        from_py.read_line(&mut line).expect("read from python");
        assert_eq!(line.trim(), "reply hello, python!!");
        line.clear();
        from_py.read_line(&mut line).expect("read from python");
        assert_eq!(line.trim(), "unlinked");
        // Python unlinked the name; our mapping stays valid.
        ro.read_at(0, &mut all[..4]).expect("still mapped");
    });
    drop(to_py);
    let status = py.wait().expect("wait for python");
    assert!(status.success(), "python exited with {status}");
    assert!(!exists(&path), "python unlinked its object");
    names.finish();
}

/// `Segment::from_inherited_fd` for the descriptor numbers this test uses:
/// its own open descriptors (inherited from its parent, or made here and
/// kept open for the call) or numbers that are not open.
#[allow(unsafe_code)]
fn inherited(fd: i32) -> shmproc::Result<Segment> {
    // SAFETY: every caller passes a number it owns for the call, or one that is not open.
    unsafe { Segment::from_inherited_fd(fd) }
}
