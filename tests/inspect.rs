//! `shmproc::inspect`: every kind of named object is recognised and
//! described, inspection changes nothing (no role registered, no lock
//! taken), and hostile files are reported, never trusted.

use std::sync::atomic::{AtomicU32, Ordering};

use shmproc::inspect::{self, Kind, Status};
use shmproc::{
    Array, BoundedSemaphore, ByteRing, Condvar, Event, Manager, MpmcRing, Pipe, Queue, RLock, RawArray, RawValue,
    Segment, Semaphore, SpscRing, Value,
};

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique(tag: &str) -> String {
    format!("insp-{tag}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

fn describe(name: &str, kind: Kind) -> inspect::Report {
    let r = inspect::describe(name).expect("describe");
    assert_eq!(r.object.kind, kind, "{r}");
    assert_eq!(r.object.status, Status::Alive, "{r}");
    assert_eq!(r.object.creator_pid, Some(std::process::id()), "{r}");
    assert!(r.field("error").is_none(), "{r}");
    r
}

#[test]
fn semaphores_show_value_and_bound() {
    let (a, b) = (unique("sem"), unique("bsem"));
    let s = Semaphore::create(&a, 5).expect("semaphore");
    assert!(s.try_acquire().is_ok());
    let r = describe(&a, Kind::Semaphore);
    assert_eq!((r.field("value"), r.field("bound")), (Some("4"), Some("none")), "{r}");
    let _bs = BoundedSemaphore::create(&b, 2).expect("bounded");
    let r = describe(&b, Kind::Semaphore);
    assert_eq!((r.field("value"), r.field("bound")), (Some("2"), Some("2")), "{r}");
}

#[test]
fn events_condvars_and_rlocks() {
    let (e, c, l) = (unique("event"), unique("condvar"), unique("rlock"));
    let event = Event::create(&e).expect("event");
    assert_eq!(describe(&e, Kind::Event).field("set"), Some("no"));
    event.set();
    assert_eq!(describe(&e, Kind::Event).field("set"), Some("yes"));
    let _cv = Condvar::create(&c).expect("condvar");
    assert_eq!(describe(&c, Kind::Condvar).field("waiters"), Some("0"));
    let rl = RLock::create(&l).expect("rlock");
    rl.acquire().expect("acquire");
    rl.acquire().expect("again");
    let r = describe(&l, Kind::RLock);
    assert_eq!(r.field("depth"), Some("2"), "{r}");
    assert!(r.field("owner").is_some_and(|o| o.starts_with(&format!("pid {}", std::process::id()))), "{r}");
    rl.release().expect("release");
    rl.release().expect("release");
    assert_eq!(describe(&l, Kind::RLock).field("owner"), Some("none (unlocked)"));
}

#[test]
fn rings_show_depth() {
    let (s, m, b) = (unique("spsc"), unique("mpmc"), unique("bytes"));
    let spsc = SpscRing::<u64>::create(&s, 8).expect("spsc");
    let mut tx = spsc.producer().expect("producer");
    for i in 0..3 {
        tx.push(i).expect("room");
    }
    let r = describe(&s, Kind::Spsc);
    assert_eq!(r.field("depth"), Some("3 of 8 slots"), "{r}");
    assert!(r.field("producer").is_some_and(|p| p.contains("alive")), "{r}");
    assert_eq!(r.field("consumer"), Some("none"), "{r}");

    let mpmc = MpmcRing::<u32>::create(&m, 4).expect("mpmc");
    mpmc.producer().expect("producer").push(7).expect("room");
    assert_eq!(describe(&m, Kind::Mpmc).field("depth"), Some("1 of 4 slots"));

    let ring = ByteRing::create(&b, 4096).expect("byte ring");
    let mut btx = ring.producer().expect("producer");
    btx.push(b"hello").expect("push");
    btx.push(b"world!").expect("push");
    let r = describe(&b, Kind::Bytes);
    assert_eq!(r.field("depth"), Some("2"), "{r}");
}

#[test]
fn pipes_show_depth_per_direction() {
    let name = unique("pipe");
    let (a, b) = Pipe::builder().name(&name).duplex().expect("pipe");
    a.send_bytes(b"one").expect("send");
    a.send_bytes(b"two").expect("send");
    b.send_bytes(b"back").expect("send");
    let r = describe(&name, Kind::Pipe);
    assert_eq!(r.field("duplex"), Some("yes"), "{r}");
    assert!(r.field("depth 0->1").is_some_and(|d| d.starts_with("2 messages")), "{r}");
    assert!(r.field("depth 1->0").is_some_and(|d| d.starts_with("1 messages")), "{r}");
    assert_eq!(r.field("end 1 closed"), Some("no"), "{r}");
    b.close();
    assert_eq!(describe(&name, Kind::Pipe).field("end 1 closed"), Some("yes"));
}

#[test]
fn inspecting_registers_nobody_and_changes_nothing() {
    let name = unique("quiet");
    let q = Queue::<u8>::builder().name(&name).build().expect("queue");
    let before = describe(&name, Kind::Queue);
    assert_eq!(before.field("producers"), Some("0 registered, 0 alive"), "{before}");
    assert_eq!(before.field("consumers"), Some("0 registered, 0 alive"), "{before}");
    for _ in 0..3 {
        let again = describe(&name, Kind::Queue);
        assert_eq!(again.fields, before.fields, "a look changed the object");
    }
    q.put(1).expect("put");
    let r = describe(&name, Kind::Queue);
    assert_eq!(r.field("producers"), Some("1 registered, 1 alive"), "{r}");
    assert_eq!(r.field("put lock"), Some("none (unlocked)"), "{r}");
    assert_eq!(q.get().expect("get"), 1);
}

#[test]
fn hostile_headers_are_reported_not_trusted() {
    let dir = std::env::temp_dir().join(unique("hostile"));
    std::fs::create_dir_all(&dir).expect("mkdir");
    // A real object, then its header's payload length and kind garbled.
    let seg = Segment::builder().dir(&dir).name("victim").size(4096).keep_name(true).create().expect("segment");
    drop(seg);
    let path = dir.join("shmproc.victim");
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[48..56].copy_from_slice(&u64::MAX.to_ne_bytes()); // payload_len
    bytes[12..16].copy_from_slice(&7u32.to_ne_bytes()); // kind: QUEUE
    std::fs::write(&path, &bytes).expect("write");
    let r = inspect::describe_in(&dir, "victim").expect("a report, not an error");
    assert_eq!(r.object.kind, Kind::Queue);
    assert!(r.fields.is_empty() || r.field("error").is_some(), "{r}");
    // A file cut short after its header was written.
    bytes.truncate(200);
    bytes[48..56].copy_from_slice(&4096u64.to_ne_bytes());
    std::fs::write(&path, &bytes).expect("write");
    let r = inspect::describe_in(&dir, "victim").expect("a report");
    assert!(r.fields.is_empty() || r.field("error").is_some(), "{r}");
    let listed = inspect::objects_in(&dir).expect("list");
    assert_eq!(listed.len(), 1);
    std::fs::remove_dir_all(&dir).expect("rmdir");
}

#[test]
fn paths_and_missing_names() {
    let dir = std::env::temp_dir().join(unique("paths"));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let seg = Segment::builder().dir(&dir).name("x").size(10).create().expect("segment");
    let by_path = inspect::describe(dir.join("shmproc.x").to_str().expect("utf-8")).expect("by path");
    assert_eq!(by_path.object.name, "x");
    assert_eq!(by_path.field("payload bytes"), Some("10"));
    assert!(matches!(inspect::describe_in(&dir, "nope"), Err(shmproc::Error::NotFound { .. })));
    assert!(inspect::describe("bad/../name").is_err());
    assert!(matches!(inspect::describe_in(&dir, "a b"), Err(shmproc::Error::InvalidName { .. })));
    drop(seg);
    std::fs::remove_dir_all(&dir).expect("rmdir");
}

#[test]
fn values_show_size_lock_owner_and_sequence() {
    let (v, big, raw) = (unique("value"), unique("bigvalue"), unique("rawvalue"));
    let value = Value::create(&v, [1u32; 3]).expect("value");
    let r = describe(&v, Kind::Value);
    assert_eq!(r.field("value size"), Some("12 bytes (align 4)"), "{r}");
    assert_eq!(r.field("owner"), Some("none (unlocked)"), "{r}");
    assert_eq!(r.field("lock-free reads"), Some("yes"), "{r}");
    assert_eq!(r.field("write in progress"), Some("no"), "{r}");
    value.store([2; 3]).expect("store");
    {
        let Ok(_g) = value.lock() else { panic!("lock") };
        let r = describe(&v, Kind::Value);
        let owner = r.field("owner").expect("owner");
        assert!(owner.starts_with(&format!("pid {}", std::process::id())) && owner.ends_with("alive"), "{r}");
        // A guard works on a copy: the sequence word is even until its drop.
        assert_eq!(r.field("write in progress"), Some("no"), "{r}");
        assert!(r.field("sequence").and_then(|s| s.parse::<u64>().ok()).is_some_and(|s| s >= 2 && s % 2 == 0), "{r}");
    }
    let _big = Value::create(&big, [0u64; 20]).expect("big value");
    let r = describe(&big, Kind::Value);
    assert_eq!((r.field("value size"), r.field("lock-free reads")), (Some("160 bytes (align 8)"), Some("no")), "{r}");
    assert!(r.field("sequence").is_none(), "{r}");
    let _raw = RawValue::create(&raw, 7u16).expect("raw value");
    assert_eq!(describe(&raw, Kind::RawValue).field("value size"), Some("2 bytes"));
}

#[test]
fn arrays_show_length_element_size_and_owner() {
    let (a, r) = (unique("array"), unique("rawarray"));
    let array = Array::<u64>::create(&a, 5).expect("array");
    let rep = describe(&a, Kind::Array);
    assert_eq!((rep.field("length"), rep.field("element size")), (Some("5"), Some("8 bytes (align 8)")), "{rep}");
    assert_eq!(rep.field("owner"), Some("none (unlocked)"), "{rep}");
    {
        let Ok(_g) = array.lock() else { panic!("lock") };
        let rep = describe(&a, Kind::Array);
        assert!(rep.field("owner").is_some_and(|o| o.starts_with(&format!("pid {}", std::process::id()))), "{rep}");
    }
    let _raw = RawArray::<u8>::create(&r, 3).expect("raw array");
    let rep = describe(&r, Kind::RawArray);
    assert_eq!((rep.field("length"), rep.field("element size")), (Some("3"), Some("1 bytes (align 1)")), "{rep}");
    assert!(rep.field("owner").is_none(), "{rep}");
    let listed = inspect::objects().expect("list");
    assert!(listed.iter().any(|o| o.name == r && o.kind == Kind::RawArray));
}

#[test]
fn a_named_manager_shows_its_server() {
    let name = unique("manager");
    let mgr = Manager::builder().name(&name).start().expect("manager");
    let r = describe(&name, Kind::Manager);
    assert_eq!(r.field("server"), Some(format!("pid {}, alive", mgr.pid()).as_str()), "{r}");
    assert_eq!(r.field("pending connects"), Some("0"), "{r}");
    assert_eq!(r.field("stopped"), Some("no"), "{r}");
    // A user's queue is not taken for a manager.
    let q = unique("notmanager");
    let _q = Queue::<Vec<u8>>::builder().name(&q).build().expect("queue");
    describe(&q, Kind::Queue);
    mgr.shutdown().expect("shutdown");
    match inspect::describe(&name) {
        Err(shmproc::Error::NotFound { .. }) => {}
        Ok(r) => assert!(r.object.status.is_stale() || r.field("server").is_some_and(|s| s.ends_with("dead")), "{r}"),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn a_garbled_array_header_is_reported_not_trusted() {
    use std::os::unix::fs::FileExt;
    let name = unique("badarray");
    let _a = RawArray::<u32>::create(&name, 3).expect("raw array");
    let file =
        std::fs::OpenOptions::new().read(true).write(true).open(format!("/dev/shm/shmproc.{name}")).expect("open");
    // The payload follows the 128-byte header; len and elem_size at 16 and 24 in it.
    let word = |at: u64| {
        let mut b = [0u8; 8];
        file.read_exact_at(&mut b, at).expect("read");
        u64::from_ne_bytes(b)
    };
    assert_eq!((word(144), word(152)), (3, 4), "the layout this test garbles");
    file.write_all_at(&u64::MAX.to_ne_bytes(), 144).expect("write len");
    let r = inspect::describe(&name).expect("a report");
    assert!(r.field("error").is_some_and(|e| e.contains("length")), "{r}");
    file.write_all_at(&u64::MAX.to_ne_bytes(), 152).expect("write elem_size");
    let r = inspect::describe(&name).expect("a report");
    assert_eq!(r.object.kind, Kind::Array, "{r}");
    assert!(r.field("error").is_some_and(|e| e.contains("element size")), "{r}");
}

/// Anonymous small objects live in arenas, which have no name: a process's
/// arenas are found through its descriptors, and each report counts the
/// objects in it by kind (a path from the list also works with `describe`).
#[test]
fn arenas_are_found_and_counted() {
    let locks: Vec<shmproc::Lock> = (0..300).map(|_| shmproc::Lock::new().expect("lock")).collect();
    let events: Vec<shmproc::Event> = (0..5).map(|_| shmproc::Event::new().expect("event")).collect();
    let arrays: Vec<Array<u16>> = (0..3).map(|_| Array::new(5).expect("array")).collect();
    let arenas = inspect::arenas(std::process::id()).expect("arenas");
    assert!(!arenas.is_empty());
    let count = |kind: &str| -> usize {
        arenas
            .iter()
            .flat_map(|r| r.fields.iter())
            .filter(|(k, _)| *k == "objects")
            .filter_map(|(_, v)| v.strip_suffix(&format!(" {kind}"))?.parse::<usize>().ok())
            .sum()
    };
    // Other tests of this binary may hold objects of their own meanwhile.
    assert!(count("lock") >= 300, "{arenas:?}");
    assert!(count("event") >= 5, "{arenas:?}");
    assert!(count("array") >= 3, "{arenas:?}");
    let again = inspect::describe(&arenas[0].object.name).expect("describe by path");
    assert_eq!(again.object.kind, Kind::Arena);
    assert!(again.field("cell bytes").is_some());
    drop((locks, events, arrays));
}
