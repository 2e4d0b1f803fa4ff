//! Segment lifecycle across processes: attach and exit, churn, passing
//! anonymous segments, external unlink, wrong size or type, creators dying
//! mid-initialization, racing creators, bad names and truncation.
//! RELIABILITY cases 23, 24, 25, 27, 28, 31, 32, 33, 37.

use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use shmproc::{Access, Error, Segment, Shared};

use crate::harness::{
    self, Ctx, HANG_GUARD, arg, arg_num, arg_opt, command, distinct, fd_count, list_prefixed, outcome, say, shm_maps,
    shm_path, wait_for_parent,
};

/// Reads the little-endian u64 at payload `offset`.
pub(crate) fn read_u64(seg: &Segment, offset: usize) -> u64 {
    let mut b = [0u8; 8];
    seg.read_at(offset, &mut b).expect("read_at");
    u64::from_le_bytes(b)
}

/// Writes a little-endian u64 at payload `offset`.
pub(crate) fn write_u64(seg: &Segment, offset: usize, v: u64) {
    seg.write_at(offset, &v.to_le_bytes()).expect("write_at");
}

// ---------------------------------------------------------------------------
// Roles
// ---------------------------------------------------------------------------

/// Role `hold`: makes or opens segment `NAME` (in `DIR` if given) with
/// `SIZE` bytes (default 4096) by `MODE` (`create`, the default, `open`,
/// `open_or_create`, `open_or_recover`), writes `MARK` at offset 0 if given,
/// runs `cleanup_stale()` if `CLEANUP_STALE` is set (only in a private
/// `/dev/shm`), says `ready <pid> <is_creator>`, then serves commands until stdin closes:
/// `read` (says `value <u64 at 0>`), `write <v>` (says `done`), `alive`
/// (says `alive <creator_alive>`), `exit`.
pub(crate) fn role_hold() {
    let name = arg("NAME");
    let size = arg_opt("SIZE").map_or(4096, |s| s.parse().expect("SIZE"));
    let mut b = Segment::builder().name(&name).size(size);
    if let Some(d) = arg_opt("DIR") {
        b = b.dir(d);
    }
    let mode = arg_opt("MODE").unwrap_or_else(|| "create".to_owned());
    let seg = match mode.as_str() {
        "create" => b.create(),
        "open" => b.open(),
        "open_or_create" => b.open_or_create(),
        "open_or_recover" => b.open_or_recover(),
        m => panic!("unknown MODE {m}"),
    }
    .unwrap_or_else(|e| panic!("hold {name} ({mode}): {e}"));
    if let Some(m) = arg_opt("MARK") {
        write_u64(&seg, 0, m.parse().expect("MARK"));
    }
    if arg_opt("CLEANUP_STALE").is_some() {
        let r = shmproc::cleanup_stale().expect("cleanup_stale");
        assert!(r.removed.is_empty(), "{r:?}");
    }
    if arg_opt("CLEANUP_STALE").is_some() {
        let r = shmproc::cleanup_stale().expect("cleanup_stale");
        assert!(r.removed.is_empty(), "{r:?}");
    }
    say(format_args!("ready {} {}", std::process::id(), seg.is_creator()));
    while let Some(c) = command() {
        let words: Vec<&str> = c.split_whitespace().collect();
        match words.as_slice() {
            ["exit"] => break,
            ["read"] => say(format_args!("value {}", read_u64(&seg, 0))),
            ["write", v] => {
                write_u64(&seg, 0, v.parse().expect("value"));
                say("done");
            }
            ["alive"] => say(format_args!("alive {}", seg.creator_alive())),
            other => panic!("unknown command {other:?}"),
        }
    }
}

/// Role `open_report`: one attempt on `NAME` (in `DIR` if given), as
/// `KIND` (`seg`, the default; `u32`, `u64`, `i64` for `Shared<_>`;
/// `raw_ro`, `raw_rw` for `open_raw` of the file name) with `SIZE`,
/// `TIMEOUT_MS` and `WAIT_MS` builder options, or `ACTION=cleanup`. Says
/// `result <Ok len | Variant> <Debug of the error>`.
pub(crate) fn role_open_report() {
    let name = arg("NAME");
    let line = match arg_opt("ACTION").as_deref() {
        Some("cleanup") => match Segment::cleanup(&name) {
            Ok(()) => "Ok".to_owned(),
            Err(e) => format!("{} {e:?}", harness::variant(&e)),
        },
        Some("create") => {
            let r = Segment::create(&name, 4096);
            format!("{} {:?}", outcome(&r, Segment::len), r.as_ref().err())
        }
        Some(a) => panic!("unknown ACTION {a}"),
        None => {
            let mut b = Segment::builder().name(&name);
            if let Some(d) = arg_opt("DIR") {
                b = b.dir(d);
            }
            if let Some(s) = arg_opt("SIZE") {
                b = b.size(s.parse().expect("SIZE"));
            }
            if let Some(t) = arg_opt("TIMEOUT_MS") {
                b = b.open_timeout(Duration::from_millis(t.parse().expect("TIMEOUT_MS")));
            }
            if let Some(t) = arg_opt("WAIT_MS") {
                b = b.wait_for_name(Duration::from_millis(t.parse().expect("WAIT_MS")));
            }
            fn line<T>(r: shmproc::Result<T>, len: impl Fn(&T) -> usize) -> String {
                format!("{} {:?}", outcome(&r, len), r.as_ref().err())
            }
            match arg_opt("KIND").as_deref().unwrap_or("seg") {
                "seg" => line(b.open(), Segment::len),
                "u32" => line(Shared::<AtomicU32>::open(&name), |s| s.segment().len()),
                "u64" => line(Shared::<AtomicU64>::open(&name), |s| s.segment().len()),
                "i64" => line(Shared::<AtomicI64>::open(&name), |s| s.segment().len()),
                "raw_ro" => line(Segment::open_raw(&format!("shmproc.{name}"), Access::ReadOnly), Segment::len),
                "raw_rw" => line(Segment::open_raw(&format!("shmproc.{name}"), Access::ReadWrite), Segment::len),
                k => panic!("unknown KIND {k}"),
            }
        }
    };
    say(format_args!("result {line}"));
}

/// One create/attach/drop cycle of case 24, in one of three styles.
fn churn_cycle(name: &str, i: u64) {
    match i % 3 {
        0 => {
            let a = Segment::create(name, 4096).expect("create");
            let b = Segment::open(name).expect("open");
            assert!(a.is_creator() && !b.is_creator());
            write_u64(&a, 64, i);
            assert_eq!(read_u64(&b, 64), i);
        }
        1 => {
            let a = Segment::open_or_create(name, 8192).expect("open_or_create");
            let b = Segment::open_or_create(name, 8192).expect("open_or_create (2)");
            assert!(a.is_creator() && !b.is_creator());
            write_u64(&b, 8184, i);
            assert_eq!(read_u64(&a, 8184), i);
        }
        _ => {
            let a = Shared::<AtomicU64>::create(name, |v| v.store(i, Ordering::Relaxed)).expect("Shared::create");
            let b = Shared::<AtomicU64>::open(name).expect("Shared::open");
            b.fetch_add(1, Ordering::Relaxed);
            assert_eq!(a.load(Ordering::Relaxed), i + 1);
        }
    }
    // The creator's drop removed the name.
    assert!(matches!(Segment::open(name), Err(Error::NotFound { .. })), "{name} left behind");
}

/// Role `churn`: `COUNT` create/attach/drop cycles on names under `PREFIX`,
/// then checks that this process's fds, shm mappings and names are back to
/// their baseline. Says `done <fds> <maps>`.
pub(crate) fn role_churn() {
    let prefix = arg("PREFIX");
    let count: u64 = arg_num("COUNT");
    // Warm-up: the liveness token, the /dev/shm directory fd and the
    // allocator's caches are made once per process.
    churn_cycle(&format!("{prefix}.warm"), 0);
    churn_cycle(&format!("{prefix}.warm"), 1);
    churn_cycle(&format!("{prefix}.warm"), 2);
    let fds0 = fd_count();
    let maps0 = shm_maps();
    for i in 0..count {
        churn_cycle(&format!("{prefix}.{}", i % 8), i);
    }
    let fds1 = fd_count();
    let maps1 = shm_maps();
    assert_eq!(fds1, fds0, "fd count changed over {count} cycles");
    assert_eq!(maps1, maps0, "shm mappings changed over {count} cycles");
    let left = list_prefixed(std::path::Path::new(harness::SHM_DIR), &format!("shmproc.{prefix}."));
    assert!(left.is_empty(), "names left: {left:?}");
    say(format_args!("done {fds1} {}", maps1.len()));
}

/// Role `inherit_fd`: opens the segment whose fd number is `FD` (inherited
/// across exec), checks `MARK` at offset 0, writes `MARK + 1` at offset 8,
/// and checks that dropping it returns fds and mappings to the baseline;
/// with `TYPED_FD`, also adds 5 to the inherited `Shared<AtomicU64>` (and
/// checks that the wrong type is refused). Says `target <fd link target>`
/// then `wrote`.
pub(crate) fn role_inherit_fd() {
    let fd: i32 = arg_num("FD");
    let mark: u64 = arg_num("MARK");
    let target = std::fs::read_link(format!("/proc/self/fd/{fd}")).expect("inherited fd is open");
    say(format_args!("target {}", target.display()));
    let fds0 = fd_count();
    let maps0 = shm_maps();
    {
        let seg = inherited(fd).expect("from_inherited_fd");
        assert_eq!(seg.name(), None);
        assert_eq!(seg.creator_pid(), None, "anonymous segments record no creator");
        assert!(seg.creator_alive());
        assert!(!seg.is_creator());
        assert_eq!(seg.len(), 4096);
        assert_eq!(read_u64(&seg, 0), mark);
        write_u64(&seg, 8, mark + 1);
        assert_eq!(shm_maps().len(), maps0.len() + 1, "one more mapping while open");
    }
    if let Some(t) = arg_opt("TYPED_FD") {
        let t: i32 = t.parse().expect("TYPED_FD");
        let v = inherited_shared::<AtomicU64>(t).expect("Shared::from_inherited_fd");
        assert_eq!(v.fetch_add(5, Ordering::Relaxed), 10);
        assert!(matches!(inherited(t), Err(Error::KindMismatch { .. })));
        assert!(matches!(inherited_shared::<AtomicU32>(t), Err(Error::LayoutMismatch { .. })));
        assert!(matches!(inherited_shared::<AtomicU64>(fd), Err(Error::KindMismatch { .. })));
    }
    assert_eq!(fd_count(), fds0, "fds back to baseline after drop");
    assert_eq!(shm_maps(), maps0, "mappings back to baseline after drop");
    assert!(matches!(inherited(-1), Err(Error::Os { .. })));
    assert!(matches!(inherited(987_654), Err(Error::Os { .. })));
    say("wrote");
}

/// Role `socket_peer`: connects to the Unix socket `SOCK`, receives a
/// segment (`recv_from`), checks `MARK` at 0 and writes `MARK + 1` at 8,
/// then sends back a new anonymous segment holding `MARK + 2` and exits
/// without waiting (the parent reads it after we are gone).
pub(crate) fn role_socket_peer() {
    let mark: u64 = arg_num("MARK");
    let s = UnixStream::connect(arg("SOCK")).expect("connect");
    s.set_read_timeout(Some(HANG_GUARD)).expect("timeout");
    let got = Segment::recv_from(&s).expect("recv_from");
    assert_eq!(got.name(), None);
    assert_eq!(read_u64(&got, 0), mark);
    write_u64(&got, 8, mark + 1);
    let mine = Segment::anonymous(4096).expect("anonymous");
    write_u64(&mine, 0, mark + 2);
    mine.send_to(&s).expect("send_to");
    say("sent");
}

/// Role `race`: waits at the barrier `BARRIER` (a `Shared<AtomicU32>`)
/// until `N` processes arrived, then races on `NAME` with `MODE`
/// (`open_or_create` or `create`). Says `result created <creator_pid> <len>`,
/// `result opened <creator_pid> <len>` or `result exists`, then holds its
/// handle until stdin closes.
pub(crate) fn role_race() {
    let name = arg("NAME");
    let n: u32 = arg_num("N");
    let barrier = Shared::<AtomicU32>::open(&arg("BARRIER")).expect("open barrier");
    barrier.fetch_add(1, Ordering::AcqRel);
    let deadline = Instant::now() + HANG_GUARD;
    while barrier.load(Ordering::Acquire) < n {
        assert!(Instant::now() < deadline, "barrier: only {} of {n} arrived", barrier.load(Ordering::Relaxed));
        std::thread::sleep(Duration::from_micros(200));
    }
    let b = Segment::builder().name(&name).size(8192);
    let r = match arg("MODE").as_str() {
        "open_or_create" => b.open_or_create(),
        "create" => b.create(),
        m => panic!("unknown MODE {m}"),
    };
    let _held = match r {
        Ok(seg) => {
            let what = if seg.is_creator() { "created" } else { "opened" };
            say(format_args!("result {what} {} {}", seg.creator_pid().unwrap_or(0), seg.len()));
            Some(seg)
        }
        Err(Error::Exists { .. }) => {
            say("result exists");
            None
        }
        Err(e) => panic!("race on {name}: {e}"),
    };
    wait_for_parent();
}

/// What `shared_init` stores in every word before publication.
const INIT_MARK: u64 = 0x5eed_0000_c0de_0001;

/// Role `shared_init`: creates `Shared<[AtomicU64; 16]>` `NAME`, filling
/// every word in the init closure (before the name is visible), says
/// `ready`, and holds it until stdin closes.
pub(crate) fn role_shared_init() {
    let s = Shared::<[AtomicU64; 16]>::create(&arg("NAME"), |a| {
        for w in a {
            w.store(INIT_MARK, Ordering::Relaxed);
        }
    })
    .expect("Shared::create");
    say("ready");
    wait_for_parent();
    drop(s);
}

/// Role `truncate_file`: a peer that truncates the file `PATH` to `LEN`.
pub(crate) fn role_truncate_file() {
    let f = std::fs::OpenOptions::new().write(true).open(arg("PATH")).expect("open");
    f.set_len(arg_num("LEN")).expect("ftruncate");
    say("truncated");
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

/// RELIABILITY case 23: process B opens A's segment and exits normally (and
/// another opener is SIGKILLed) -> A's segment still exists and works; only
/// the creator's drop removes the name (Python gh-82300 must not recur).
#[test]
fn opener_exit_keeps_segment() {
    let ctx = Ctx::new("c23");
    let n = ctx.name("seg");
    let a = Segment::create(&n, 4096).expect("create");
    write_u64(&a, 0, 23);

    let mut b = ctx.child("hold").arg("NAME", &n).arg("MODE", "open").start();
    assert_eq!(b.expect("ready").split_whitespace().nth(1), Some("false"), "B did not create");
    b.send("read");
    assert_eq!(b.expect("value"), "23");
    b.send("write 2323");
    b.expect("done");
    b.finish();
    assert_eq!(ctx.shm_names().len(), 1, "B's normal exit removed nothing");
    assert_eq!(read_u64(&a, 0), 2323, "B's write is visible to A");

    let mut k = ctx.child("hold").arg("NAME", &n).arg("MODE", "open").start();
    k.expect("ready");
    k.kill_and_reap();
    assert_eq!(ctx.shm_names().len(), 1, "a SIGKILLed opener removed nothing");

    let again = Segment::open(&n).expect("reopen after openers left");
    write_u64(&again, 8, 7);
    assert_eq!(read_u64(&a, 8), 7);
    drop(again);
    assert_eq!(ctx.shm_names().len(), 1, "an opener's drop in the creator process keeps the name");
    drop(a);
    ctx.finish();
}

/// RELIABILITY case 24: 10 000 create/attach/drop cycles across 4 processes
/// (2 500 each, names unique per process) -> zero leaked names; each
/// process checks that its fd count and shm mappings are back to baseline.
#[test]
fn churn_10k_cycles_4_processes() {
    let ctx = Ctx::new("c24");
    let mut kids: Vec<_> = (0..4)
        .map(|i| ctx.child("churn").arg("PREFIX", ctx.name(&format!("p{i}"))).arg("COUNT", "2500").start())
        .collect();
    for k in &mut kids {
        k.expect("done");
        k.wait_ok();
    }
    ctx.finish();
}

/// RELIABILITY case 25 (inheritance): an anonymous (memfd) segment handed to
/// a re-executed child by fd inheritance (`inheritable_fd` +
/// `from_inherited_fd`, also for a `Shared<AtomicU64>`) -> the child's fd
/// is a memfd (no name in `/dev/shm`), it reads what the parent wrote, the
/// parent reads what it wrote, a wrong type is refused, and in the child
/// fds and mappings return to baseline on drop.
#[test]
fn anonymous_segment_inherited_by_child() {
    let ctx = Ctx::new("c25i");
    let seg = Segment::anonymous(4096).expect("anonymous");
    assert_eq!(seg.name(), None);
    write_u64(&seg, 0, 2525);
    let typed = Shared::<AtomicU64>::anonymous(|v| v.store(10, Ordering::Relaxed)).expect("Shared::anonymous");
    let fd = seg.inheritable_fd().expect("inheritable_fd");
    let tfd = typed.segment().inheritable_fd().expect("inheritable_fd");
    let mut c = ctx
        .child("inherit_fd")
        .arg("FD", fd.as_raw_fd().to_string())
        .arg("TYPED_FD", tfd.as_raw_fd().to_string())
        .arg("MARK", "2525")
        .start();
    drop((fd, tfd));
    let target = c.expect("target");
    assert!(target.starts_with("/memfd:shmproc"), "inherited fd is a memfd, not a /dev/shm name: {target}");
    c.expect("wrote");
    c.wait_ok();
    assert_eq!(read_u64(&seg, 8), 2526);
    assert_eq!(typed.load(Ordering::Relaxed), 15);
    drop((seg, typed));
    ctx.finish();
}

/// RELIABILITY case 25 (SCM_RIGHTS): anonymous segments passed both ways
/// over a Unix socket between two processes (`send_to`/`recv_from`) -> both
/// sides see each other's writes, the segment a child sent stays readable
/// after that child exited, and no name is involved.
#[test]
fn anonymous_segment_over_unix_socket_between_processes() {
    let ctx = Ctx::new("c25s");
    let sock = std::env::temp_dir().join(format!("shmproc-{}.sock", ctx.prefix()));
    let _ = std::fs::remove_file(&sock);
    let listener = UnixListener::bind(&sock).expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let mut c = ctx.child("socket_peer").arg("SOCK", &sock).arg("MARK", "700").start();
    let deadline = Instant::now() + HANG_GUARD;
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "hang guard: helper never connected");
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    drop(listener);
    std::fs::remove_file(&sock).expect("remove socket");
    stream.set_nonblocking(false).expect("blocking");
    stream.set_read_timeout(Some(HANG_GUARD)).expect("timeout");
    let seg = Segment::anonymous(4096).expect("anonymous");
    write_u64(&seg, 0, 700);
    seg.send_to(&stream).expect("send_to");
    c.expect("sent");
    c.wait_ok();
    assert_eq!(read_u64(&seg, 8), 701, "the child's write through the passed fd");
    let back = Segment::recv_from(&stream).expect("recv_from after the sender exited");
    assert_eq!(back.name(), None);
    assert_eq!(read_u64(&back, 0), 702);
    drop((seg, back));
    ctx.finish();
}

/// RELIABILITY case 25 (in-process SCM_RIGHTS path): `send_to`/`recv_from`
/// over `UnixStream::pair()` between two threads, for an anonymous and a
/// named segment -> writes are shared; the receiver of a named segment is
/// not its creator and its drop keeps the name.
#[test]
fn segments_over_socketpair_between_threads() {
    let ctx = Ctx::new("c25p");
    let (a, b) = UnixStream::pair().expect("socketpair");
    b.set_read_timeout(Some(HANG_GUARD)).expect("timeout");
    let n = ctx.name("named");
    let named = Segment::create(&n, 4096).expect("create");
    let anon = Segment::anonymous(4096).expect("anonymous");
    write_u64(&anon, 0, 1);
    write_u64(&named, 0, 2);
    let t = std::thread::spawn(move || {
        let x = Segment::recv_from(&b).expect("recv anon");
        let y = Segment::recv_from(&b).expect("recv named");
        assert_eq!((read_u64(&x, 0), read_u64(&y, 0)), (1, 2));
        assert!(!y.is_creator());
        write_u64(&x, 8, 11);
        write_u64(&y, 8, 22);
    });
    anon.send_to(&a).expect("send anon");
    named.send_to(&a).expect("send named");
    t.join().expect("receiver thread");
    assert_eq!((read_u64(&anon, 8), read_u64(&named, 8)), (11, 22));
    assert_eq!(ctx.shm_names().len(), 1, "the receiver's drop kept the name");
    // A message without a descriptor is refused, not trusted.
    let (c, d) = UnixStream::pair().expect("socketpair");
    d.set_read_timeout(Some(HANG_GUARD)).expect("timeout");
    std::io::Write::write_all(&mut &c, b"x").expect("write");
    assert!(matches!(Segment::recv_from(&d), Err(Error::Corrupt { .. })));
    drop((named, anon));
    ctx.finish();
}

/// RELIABILITY case 25 (release): a 64 MiB anonymous segment held only by
/// a child (the parent dropped its handle and fd) is released when that
/// child is SIGKILLed: the system's `Shmem` (from `/proc/meminfo`) drops by
/// about that much (polled under the hang guard; other processes may
/// allocate meanwhile, so only a drop of at least 48 MiB is required).
#[test]
fn anonymous_segment_released_after_sigkill_of_last_holder() {
    let ctx = Ctx::new("c25r");
    const SIZE: usize = 64 << 20;
    let seg = Segment::anonymous(SIZE).expect("anonymous 64 MiB");
    write_u64(&seg, 0, 9);
    let fd = seg.inheritable_fd().expect("inheritable_fd");
    let mut c = ctx.child("inherit_fd_hold").arg("FD", fd.as_raw_fd().to_string()).start();
    drop(fd);
    c.expect("holding");
    let peak = shmem_kib();
    drop(seg);
    c.kill_and_reap();
    harness::wait_until("release of the 64 MiB memfd", || shmem_kib() + 48 * 1024 <= peak);
    ctx.finish();
}

/// `Shmem` from `/proc/meminfo`, in KiB.
fn shmem_kib() -> u64 {
    let m = std::fs::read_to_string("/proc/meminfo").expect("meminfo");
    m.lines()
        .find_map(|l| l.strip_prefix("Shmem:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("Shmem line")
}

/// Role `inherit_fd_hold`: opens the inherited segment `FD`, says
/// `holding`, and keeps it until killed or stdin closes.
pub(crate) fn role_inherit_fd_hold() {
    let seg = inherited(arg_num("FD")).expect("from_inherited_fd");
    assert_eq!(read_u64(&seg, 0), 9);
    say("holding");
    wait_for_parent();
}

/// RELIABILITY case 27: the name is unlinked externally while mapped
/// (systemd `RemoveIPC`) -> existing handles (here and in another process)
/// keep working, reopening returns `NotFound` naming the segment, a new
/// create makes an independent segment, and dropping the OLD creator handle
/// does not remove the NEW segment's name.
#[test]
fn external_unlink_while_mapped() {
    let ctx = Ctx::new("c27");
    let n = ctx.name("seg");
    let old = Segment::create(&n, 4096).expect("create");
    write_u64(&old, 0, 1);
    let mut peer = ctx.child("hold").arg("NAME", &n).arg("MODE", "open").start();
    peer.expect("ready");

    std::fs::remove_file(shm_path(&n)).expect("external unlink");
    write_u64(&old, 8, 2);
    assert_eq!(read_u64(&old, 8), 2, "the old mapping still works");
    old.check().expect("the old object is whole");
    match Segment::open(&n) {
        Err(e @ Error::NotFound { .. }) => assert!(e.to_string().contains(&n), "message names it: {e}"),
        other => panic!("reopen after external unlink: {other:?}"),
    }

    let new = Segment::create(&n, 4096).expect("create again under the same name");
    assert!(new.is_creator());
    write_u64(&new, 0, 3);
    assert_eq!(read_u64(&old, 0), 1, "independent objects");
    peer.send("read");
    assert_eq!(peer.expect("value"), "1", "the peer still sees the old object");
    peer.send("write 4");
    peer.expect("done");
    assert_eq!(read_u64(&old, 0), 4);
    assert_eq!(read_u64(&new, 0), 3);

    drop(old);
    assert_eq!(ctx.shm_names().len(), 1, "dropping the old creator kept the new name");
    assert_eq!(read_u64(&Segment::open(&n).expect("open the new one"), 0), 3);
    peer.finish();
    assert_eq!(ctx.shm_names().len(), 1);
    drop(new);
    ctx.finish();
}

/// Spawns an `open_report` helper with `args` and returns its result line
/// (variant first).
fn report(ctx: &Ctx, args: &[(&str, &str)]) -> String {
    let mut cmd = ctx.child("open_report");
    for (k, v) in args {
        cmd = cmd.arg(k, v);
    }
    let mut c = cmd.start();
    let r = c.expect("result");
    c.wait_ok();
    r
}

/// RELIABILITY case 28: opening with a larger expected size than the
/// object -> `SizeMismatch`; opening a `Shared<AtomicU64>` as
/// `Shared<AtomicU32>` or `Shared<AtomicI64>` -> `LayoutMismatch`; as a
/// plain segment (or a raw segment as `Shared`) -> `KindMismatch`. The
/// opens run in helpers, which exit normally (no SIGBUS or SIGSEGV).
#[test]
fn wrong_size_or_type_is_refused() {
    let ctx = Ctx::new("c28");
    let raw = ctx.name("raw");
    let typed = ctx.name("typed");
    let r = Segment::create(&raw, 4096).expect("create");
    let t = Shared::<AtomicU64>::create(&typed, |v| v.store(5, Ordering::Relaxed)).expect("Shared::create");

    let big = (1usize << 20).to_string();
    let got = report(&ctx, &[("NAME", &raw), ("SIZE", &big)]);
    assert!(got.starts_with("SizeMismatch"), "{got}");
    assert!(got.contains("expected: 1048576") && got.contains("found: 4096"), "{got}");
    assert!(report(&ctx, &[("NAME", &raw), ("SIZE", "4097")]).starts_with("SizeMismatch"));
    assert_eq!(report(&ctx, &[("NAME", &raw), ("SIZE", "4096")]), "Ok 4096 None");
    assert!(report(&ctx, &[("NAME", &raw), ("KIND", "u64")]).starts_with("KindMismatch"));

    let got = report(&ctx, &[("NAME", &typed), ("KIND", "u32")]);
    assert!(got.starts_with("LayoutMismatch"), "{got}");
    assert!(report(&ctx, &[("NAME", &typed), ("KIND", "i64")]).starts_with("LayoutMismatch"));
    assert!(report(&ctx, &[("NAME", &typed), ("KIND", "seg")]).starts_with("KindMismatch"));
    assert_eq!(report(&ctx, &[("NAME", &typed), ("KIND", "u64")]), "Ok 8 None");

    // The same checks in this process give the expected and found values.
    match Shared::<AtomicU32>::open(&typed) {
        Err(Error::LayoutMismatch { expected, found }) => {
            assert_eq!(found, <AtomicU64 as shmproc::ShmSafe>::LAYOUT_HASH);
            assert_eq!(expected, <AtomicU32 as shmproc::ShmSafe>::LAYOUT_HASH);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(t.load(Ordering::Relaxed), 5);
    drop((r, t));
    ctx.finish();
}

/// RELIABILITY case 31 (creator dies mid-initialization): a creator
/// SIGKILLed at `segment.create.allocated` or `segment.create.before_link`
/// -> openers get `NotFound` (also after `wait_for_name(200 ms)`), nothing
/// is left under the name (the object was never linked), and
/// `open_or_recover` then creates it afresh.
#[test]
fn creator_killed_mid_initialization_leaves_nothing() {
    let ctx = Ctx::new("c31k");
    for fp in ["segment.create.allocated", "segment.create.before_link"] {
        let n = ctx.name(fp);
        let mut c = ctx.child("hold").arg("NAME", &n).arg("SIZE", "65536").failpoint(fp).start();
        c.wait_killed();
        assert!(matches!(Segment::open(&n), Err(Error::NotFound { .. })), "{fp}");
        let waited = Segment::builder().name(&n).wait_for_name(Duration::from_millis(200)).open();
        assert!(matches!(waited, Err(Error::NotFound { .. })), "{fp}: {waited:?}");
        assert!(ctx.shm_names().is_empty(), "{fp}: {:?}", ctx.shm_names());
        let fresh = Segment::builder().name(&n).size(4096).open_or_recover().expect("open_or_recover");
        assert!(fresh.is_creator());
        drop(fresh);
    }
    ctx.finish();
}

/// RELIABILITY case 31 (opener races the creator): an opener waiting with
/// `wait_for_name(10 s)` before a helper creates the segment -> `Ok` with a
/// full header (size, creator pid, live creator); and a `Shared<T>` opener
/// polling while a helper creates it always sees the values the creator's
/// init closure wrote, never a half-initialized object.
#[test]
fn opener_racing_creator_sees_full_object() {
    let ctx = Ctx::new("c31r");
    let n = ctx.name("seg");
    let (tx, rx) = std::sync::mpsc::channel();
    let n2 = n.clone();
    let opener = std::thread::spawn(move || {
        tx.send(()).expect("signal");
        Segment::builder().name(&n2).wait_for_name(Duration::from_secs(10)).open()
    });
    rx.recv().expect("opener started");
    let mut c = ctx.child("hold").arg("NAME", &n).arg("SIZE", "12345").start();
    let pid: u32 = c.expect("ready").split_whitespace().next().expect("pid").parse().expect("pid");
    let seg = opener.join().expect("opener thread").expect("open with wait_for_name");
    assert_eq!(seg.len(), 12345);
    assert_eq!(seg.creator_pid(), Some(pid));
    assert!(seg.creator_alive());
    assert!(!seg.is_creator());
    drop(seg);
    c.finish();

    let s = ctx.name("shared");
    let mut c = ctx.child("shared_init").arg("NAME", &s).start();
    let deadline = Instant::now() + HANG_GUARD;
    let mut misses = 0u64;
    let opened = loop {
        match Shared::<[AtomicU64; 16]>::open(&s) {
            Ok(o) => break o,
            Err(Error::NotFound { .. }) => {
                misses += 1;
                assert!(Instant::now() < deadline, "hang guard: never appeared");
                std::thread::yield_now();
            }
            Err(e) => panic!("open while racing the creator: {e}"),
        }
    };
    for (i, w) in opened.iter().enumerate() {
        assert_eq!(w.load(Ordering::Relaxed), INIT_MARK, "word {i} not initialized (after {misses} misses)");
    }
    c.expect("ready");
    drop(opened);
    c.finish();
    ctx.finish();
}

/// Runs 16 `race` helpers on one name with `mode`; returns their result lines.
fn race16(ctx: &Ctx, label: &str, mode: &str) -> Vec<String> {
    const N: u32 = 16;
    let n = ctx.name(label);
    let bname = ctx.name(&format!("{label}-barrier"));
    let barrier = Shared::<AtomicU32>::create(&bname, |_| ()).expect("barrier");
    let mut kids: Vec<_> = (0..N)
        .map(|_| {
            ctx.child("race").arg("NAME", &n).arg("BARRIER", &bname).arg("N", N.to_string()).arg("MODE", mode).start()
        })
        .collect();
    let lines: Vec<String> = kids.iter_mut().map(|k| k.expect("result")).collect();
    for k in &mut kids {
        k.finish();
    }
    assert_eq!(barrier.load(Ordering::Relaxed), N);
    drop(barrier);
    lines
}

/// RELIABILITY case 32: 16 processes `open_or_create` the same name at once
/// (released together by a barrier) -> exactly one reports `is_creator`,
/// 15 opened, and all see the same creator pid and length; in exclusive
/// mode (`create`) exactly one succeeds and 15 get `Exists`.
#[test]
fn sixteen_racing_creators() {
    let ctx = Ctx::new("c32");
    let lines = race16(&ctx, "ooc", "open_or_create");
    let created = lines.iter().filter(|l| l.starts_with("created")).count();
    let opened = lines.iter().filter(|l| l.starts_with("opened")).count();
    assert_eq!((created, opened), (1, 15), "{lines:?}");
    let headers: Vec<String> = lines.iter().map(|l| l.split_once(' ').expect("fields").1.to_owned()).collect();
    assert_eq!(distinct(&headers).len(), 1, "all saw one header: {lines:?}");
    assert!(headers[0].ends_with(" 8192"), "{headers:?}");

    let lines = race16(&ctx, "excl", "create");
    let created = lines.iter().filter(|l| l.starts_with("created")).count();
    let exists = lines.iter().filter(|l| *l == "exists").count();
    assert_eq!((created, exists), (1, 15), "{lines:?}");
    ctx.finish();
}

/// RELIABILITY case 33: invalid names -> `InvalidName` from every entry
/// point (create, open, open_or_create, open_or_recover, unlink, cleanup,
/// `Shared`), and `open_raw` applies the `shm_open` rules; the longest
/// valid name (247 bytes) works and one byte more is refused.
#[test]
fn invalid_names_are_refused() {
    let ctx = Ctx::new("c33");
    let long = "x".repeat(300);
    let bad = ["", ".", "..", "a/b", "../x", "a\0b", ".hidden", "sp ace", "é", long.as_str()];
    let is_invalid = |r: Result<(), Error>| matches!(r, Err(Error::InvalidName { .. }));
    for name in bad {
        let b = || Segment::builder().name(name).size(64);
        assert!(is_invalid(Segment::create(name, 64).map(drop)), "create {name:?}");
        assert!(is_invalid(Segment::open(name).map(drop)), "open {name:?}");
        assert!(is_invalid(Segment::open_or_create(name, 64).map(drop)), "open_or_create {name:?}");
        assert!(is_invalid(b().open_or_recover().map(drop)), "open_or_recover {name:?}");
        assert!(is_invalid(b().wait_for_name(Duration::from_secs(5)).open().map(drop)), "open wait {name:?}");
        assert!(is_invalid(Segment::unlink(name)), "unlink {name:?}");
        assert!(is_invalid(Segment::cleanup(name)), "cleanup {name:?}");
        assert!(is_invalid(Shared::<AtomicU64>::create(name, |_| ()).map(drop)), "Shared::create {name:?}");
        assert!(is_invalid(Shared::<AtomicU64>::open(name).map(drop)), "Shared::open {name:?}");
    }
    let raw_long = "y".repeat(256);
    for name in ["", "/", ".", "..", "/..", "a/b", "../x", "/a/b", "a\0b", raw_long.as_str()] {
        assert!(is_invalid(Segment::open_raw(name, Access::ReadOnly).map(drop)), "open_raw {name:?}");
    }
    // Length boundary: 247 bytes is the longest name ("shmproc." + 247 = NAME_MAX).
    let base = ctx.name("L");
    let max = format!("{base}{}", "L".repeat(247 - base.len()));
    let seg = Segment::create(&max, 64).expect("247-byte name");
    assert_eq!(ctx.shm_names().len(), 1);
    let over = format!("{max}L");
    assert!(is_invalid(Segment::create(&over, 64).map(drop)));
    drop(seg);
    ctx.finish();
}

/// RELIABILITY case 37: a sealed memfd segment cannot be truncated (or
/// grown) by a holder of its fd (`EPERM`), and keeps working; a named
/// segment truncated by a peer process is reported by `check()` and by a
/// fresh open as `Truncated` (down to a few bytes: `Corrupt`), without this
/// process touching the vanished pages.
#[test]
fn truncation_is_sealed_or_detected() {
    let ctx = Ctx::new("c37");
    let anon = Segment::anonymous(4096).expect("anonymous");
    let f = std::fs::File::from(anon.share_fd().expect("share_fd"));
    for len in [0, 100, 1 << 20] {
        let e = f.set_len(len).expect_err("sealed memfd must refuse ftruncate");
        assert_eq!(e.raw_os_error(), Some(1), "EPERM for set_len({len}): {e}");
    }
    drop(f);
    write_u64(&anon, 4088, 37);
    assert_eq!(read_u64(&anon, 4088), 37);
    anon.check().expect("memfd unchanged");

    let n = ctx.name("named");
    let seg = Segment::create(&n, 65536).expect("create");
    seg.check().expect("whole");
    let mapped = 65536 + 4096; // header + payload, rounded to pages
    let mut t = ctx.child("truncate_file").arg("PATH", shm_path(&n)).arg("LEN", "4096").start();
    t.expect("truncated");
    t.wait_ok();
    match seg.check() {
        Err(Error::Truncated { expected, found }) => assert_eq!((expected, found), (mapped, 4096)),
        other => panic!("check after truncation: {other:?}"),
    }
    match Segment::open(&n) {
        Err(Error::Truncated { expected, found }) => assert_eq!((expected, found), (mapped, 4096)),
        other => panic!("open after truncation: {other:?}"),
    }
    assert!(report(&ctx, &[("NAME", &n)]).starts_with("Truncated"));
    let mut t = ctx.child("truncate_file").arg("PATH", shm_path(&n)).arg("LEN", "64").start();
    t.wait_ok();
    assert!(matches!(seg.check(), Err(Error::Truncated { found: 64, .. })));
    assert!(matches!(Segment::open(&n), Err(Error::Corrupt { .. })));
    drop(seg); // unmaps and unlinks without touching the pages
    drop(anon);
    ctx.finish();
}

/// `Segment::from_inherited_fd` for the descriptor numbers this test uses:
/// its own open descriptors (inherited from its parent, or made here and
/// kept open for the call) or numbers that are not open.
#[allow(unsafe_code)]
fn inherited(fd: i32) -> shmproc::Result<Segment> {
    // SAFETY: every caller passes a number it owns for the call, or one that is not open.
    unsafe { Segment::from_inherited_fd(fd) }
}

/// `Shared::from_inherited_fd`, on the same terms as [`inherited`].
#[allow(unsafe_code)]
fn inherited_shared<T: shmproc::ShmSafe>(fd: i32) -> shmproc::Result<Shared<T>> {
    // SAFETY: as in `inherited`.
    unsafe { Shared::<T>::from_inherited_fd(fd) }
}
