//! The `shmproc` command-line tool, run as a binary against objects these
//! tests create (unique names, or a private directory given with `--dir`).
//! Every run of the tool has a hang guard; nothing asserts on timing.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use shmproc::{Array, Barrier, Lock, Manager, Mutex, Queue, Segment, Value};

/// How long one run of the tool may take (the bench included).
const HANG_GUARD: Duration = Duration::from_secs(120);
/// Selects the child role of [`role_stale_creator`].
const ROLE_ENV: &str = "SHMPROC_CLI_TEST_ROLE";
const DIR_ENV: &str = "SHMPROC_CLI_TEST_DIR";

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique(tag: &str) -> String {
    format!("cli-{tag}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A private directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(unique(tag));
        std::fs::create_dir_all(&p).expect("create the test directory");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `shmproc args...`, killed after [`HANG_GUARD`].
fn shmproc(args: &[&str], cwd: Option<&Path>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shmproc"));
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some(d) = cwd {
        cmd.current_dir(d);
    }
    let child = cmd.spawn().expect("start shmproc");
    let pid = child.id();
    let deadline = Instant::now() + HANG_GUARD;
    let guard = std::thread::spawn(move || {
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            if std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z ")) {
                return false;
            }
        }
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        true
    });
    let Output { status, stdout, stderr } = child.wait_with_output().expect("wait for shmproc");
    let hung = guard.join().expect("hang guard");
    let run = Run {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    };
    assert!(!hung, "shmproc {args:?} ran longer than {HANG_GUARD:?}\n{}\n{}", run.stdout, run.stderr);
    run
}

/// The line of `out` whose first column is `name`.
fn line_of<'a>(out: &'a str, name: &str) -> Option<&'a str> {
    out.lines().find(|l| l.split_whitespace().next() == Some(name))
}

/// The value of field `key` in `shmproc inspect` output.
fn field<'a>(out: &'a str, key: &str) -> Option<&'a str> {
    out.lines().find_map(|l| l.strip_prefix(key).filter(|rest| rest.starts_with(' ')).map(str::trim))
}

#[test]
fn ls_shows_named_objects_with_kind_and_liveness() {
    let (q, m, b) = (unique("q"), unique("m"), unique("b"));
    let _queue = Queue::<u32>::builder().name(&q).build().expect("queue");
    let _mutex = Mutex::create(&m, 7u64).expect("mutex");
    let _barrier = Barrier::create(&b, 2).expect("barrier");
    let r = shmproc(&["ls"], None);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let me = std::process::id().to_string();
    for (name, kind) in [(&q, "queue"), (&m, "mutex"), (&b, "barrier")] {
        let line = line_of(&r.stdout, name).unwrap_or_else(|| panic!("{name} not listed:\n{}", r.stdout));
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols[1], kind, "{line}");
        assert!(cols[2].parse::<u64>().is_ok_and(|s| s > 0), "{line}");
        assert_eq!(cols[3], me, "{line}");
        assert_eq!(cols[4], "alive", "{line}");
    }
    assert!(r.stdout.lines().next().is_some_and(|h| h.starts_with("NAME")), "{}", r.stdout);
}

#[test]
fn inspect_shows_queue_depth() {
    let name = unique("depth");
    let q = Queue::<String>::builder().name(&name).maxsize(10).build().expect("queue");
    for s in ["a", "bb", "ccc"] {
        q.put(s.to_owned()).expect("put");
    }
    let r = shmproc(&["inspect", &name], None);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(field(&r.stdout, "kind"), Some("queue"), "{}", r.stdout);
    assert_eq!(field(&r.stdout, "depth"), Some("3"), "{}", r.stdout);
    assert_eq!(field(&r.stdout, "maxsize"), Some("10"), "{}", r.stdout);
    assert_eq!(field(&r.stdout, "closed"), Some("no"), "{}", r.stdout);
    q.get().expect("get");
    let r = shmproc(&["inspect", &name], None);
    assert_eq!(field(&r.stdout, "depth"), Some("2"), "{}", r.stdout);
    // Inspection registered nobody and took nothing: the queue still works.
    assert_eq!(q.qsize(), 2);
}

#[test]
fn inspect_shows_lock_owner_while_held() {
    let (l, m) = (unique("lock"), unique("mutex"));
    let lock = Lock::create(&l).expect("lock");
    let mutex = Mutex::create(&m, [0u32; 4]).expect("mutex");
    let me = format!("pid {}", std::process::id());
    let r = shmproc(&["inspect", &l], None);
    assert_eq!(field(&r.stdout, "owner"), Some("none (unlocked)"), "{}", r.stdout);
    {
        let _held = lock.lock().expect("lock");
        let Ok(_g) = mutex.lock() else { panic!("mutex") };
        for name in [&l, &m] {
            let r = shmproc(&["inspect", name], None);
            assert_eq!(r.code, Some(0), "{}", r.stderr);
            let owner = field(&r.stdout, "owner").unwrap_or_else(|| panic!("no owner:\n{}", r.stdout));
            assert!(owner.starts_with(&me) && owner.ends_with("alive"), "{owner}");
        }
        let r = shmproc(&["inspect", &m], None);
        assert_eq!(field(&r.stdout, "kind"), Some("mutex"), "{}", r.stdout);
        assert_eq!(field(&r.stdout, "value size"), Some("16 bytes (align 4)"), "{}", r.stdout);
    }
    let r = shmproc(&["inspect", &l], None);
    assert_eq!(field(&r.stdout, "owner"), Some("none (unlocked)"), "{}", r.stdout);
}

#[test]
fn value_array_and_manager_are_listed_and_described() {
    let (v, a, m) = (unique("value"), unique("array"), unique("manager"));
    let value = Value::create(&v, 5i64).expect("value");
    let _array = Array::<u32>::create(&a, 9).expect("array");
    let mgr = Manager::builder().name(&m).start().expect("manager");
    let r = shmproc(&["ls"], None);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    for (name, kind) in [(&v, "value"), (&a, "array"), (&m, "manager")] {
        let line = line_of(&r.stdout, name).unwrap_or_else(|| panic!("{name} not listed:\n{}", r.stdout));
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!((cols[1], cols[4]), (kind, "alive"), "{line}");
    }
    {
        let Ok(_g) = value.lock() else { panic!("lock") };
        let r = shmproc(&["inspect", &v], None);
        assert_eq!(field(&r.stdout, "kind"), Some("value"), "{}", r.stdout);
        assert_eq!(field(&r.stdout, "value size"), Some("8 bytes (align 8)"), "{}", r.stdout);
        let owner = field(&r.stdout, "owner").unwrap_or_else(|| panic!("no owner:\n{}", r.stdout));
        assert!(owner.starts_with(&format!("pid {}", std::process::id())) && owner.ends_with("alive"), "{owner}");
    }
    let r = shmproc(&["inspect", &a], None);
    assert_eq!(field(&r.stdout, "length"), Some("9"), "{}", r.stdout);
    let r = shmproc(&["inspect", &m], None);
    assert_eq!(field(&r.stdout, "kind"), Some("manager"), "{}", r.stdout);
    assert_eq!(field(&r.stdout, "server"), Some(format!("pid {}, alive", mgr.pid()).as_str()), "{}", r.stdout);
    mgr.shutdown().expect("shutdown");
    let r = shmproc(&["ls"], None);
    assert!(line_of(&r.stdout, &m).is_none_or(|l| l.contains("stale")), "{}", r.stdout);
}

#[test]
fn inspect_shows_barrier_count() {
    let name = unique("barrier");
    let b = Barrier::create(&name, 2).expect("barrier");
    let r = shmproc(&["inspect", &name], None);
    assert_eq!(field(&r.stdout, "parties"), Some("2"), "{}", r.stdout);
    assert_eq!(field(&r.stdout, "waiting"), Some("0"), "{}", r.stdout);
    let waiter = {
        let b = b.clone();
        std::thread::spawn(move || b.wait_timeout(Duration::from_secs(60)))
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = shmproc(&["inspect", &name], None);
        if field(&r.stdout, "waiting") == Some("1") {
            break;
        }
        assert!(Instant::now() < deadline, "the waiter never showed:\n{}", r.stdout);
        std::thread::sleep(Duration::from_millis(20));
    }
    b.wait_timeout(Duration::from_secs(60)).expect("second party");
    waiter.join().expect("waiter thread").expect("first party");
}

/// Child role for [`clean_removes_stale_objects_and_keeps_live_ones`]:
/// creates a segment in `DIR_ENV`, says READY, and waits to be killed.
#[test]
fn role_stale_creator() {
    if std::env::var_os(ROLE_ENV).is_none_or(|r| r != "stale-creator") {
        return;
    }
    let dir = std::env::var(DIR_ENV).expect("dir");
    let seg = Segment::builder().dir(&dir).name("orphan").size(4096).create().expect("create");
    println!("READY");
    // Killed long before this (it is the hang guard if the parent is gone).
    std::thread::sleep(Duration::from_secs(30));
    drop(seg);
}

#[test]
fn clean_removes_stale_objects_and_keeps_live_ones() {
    let dir = TempDir::new("clean");
    let d = dir.0.to_str().expect("utf-8 path");
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "role_stale_creator", "--nocapture", "--test-threads=1"])
        .env(ROLE_ENV, "stale-creator")
        .env(DIR_ENV, d)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the creator");
    let out = child.stdout.take().expect("stdout");
    let ready = BufReader::new(out).lines().map_while(Result::ok).any(|l| l.trim_end().ends_with("READY"));
    child.kill().expect("SIGKILL the creator");
    child.wait().expect("reap the creator");
    assert!(ready, "the creator never got ready");
    let live = Segment::builder().dir(d).name("live").size(64).create().expect("live segment");

    let ls = shmproc(&["ls", "--dir", d], None);
    assert!(line_of(&ls.stdout, "orphan").is_some_and(|l| l.ends_with("stale")), "{}", ls.stdout);
    assert!(line_of(&ls.stdout, "live").is_some_and(|l| l.ends_with("alive")), "{}", ls.stdout);

    let dry = shmproc(&["clean", "--dry-run", "--dir", d], None);
    assert_eq!(dry.code, Some(0), "{}", dry.stderr);
    assert!(dry.stdout.contains("would remove orphan"), "{}", dry.stdout);
    assert!(!dry.stdout.contains("would remove live"), "{}", dry.stdout);
    assert!(dir.0.join("shmproc.orphan").exists(), "a dry run removed something");

    let kept = shmproc(&["clean", "--dir", d, "live"], None);
    assert_eq!(kept.code, Some(0), "{}", kept.stderr);
    assert!(kept.stdout.contains("kept      live"), "{}", kept.stdout);

    let clean = shmproc(&["clean", "--dir", d], None);
    assert_eq!(clean.code, Some(0), "{}", clean.stderr);
    assert!(clean.stdout.contains("removed   orphan"), "{}", clean.stdout);
    assert!(!dir.0.join("shmproc.orphan").exists(), "the stale object is still there");
    assert!(dir.0.join("shmproc.live").exists(), "the live object was removed");
    drop(live);
}

#[test]
fn foreign_and_short_files_are_listed_not_fatal() {
    let dir = TempDir::new("foreign");
    let d = dir.0.to_str().expect("utf-8 path");
    std::fs::write(dir.0.join("shmproc.junk"), vec![0xab; 4096]).expect("write junk");
    std::fs::write(dir.0.join("shmproc.tiny"), b"SHMPROC").expect("write tiny");
    std::fs::create_dir(dir.0.join("shmproc.adir")).expect("mkdir");
    let r = shmproc(&["ls", "--dir", d], None);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    for n in ["junk", "tiny", "adir"] {
        let line = line_of(&r.stdout, n).unwrap_or_else(|| panic!("{n} not listed:\n{}", r.stdout));
        assert!(line.contains("foreign"), "{line}");
    }
    let r = shmproc(&["inspect", "--dir", d, "junk"], None);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(field(&r.stdout, "status").is_some_and(|s| s.starts_with("foreign")), "{}", r.stdout);
    let r = shmproc(&["clean", "--dir", d], None);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(dir.0.join("shmproc.junk").exists(), "clean removed a foreign file");
}

#[test]
fn bad_usage_exits_with_2_and_a_message() {
    for (args, says) in [
        (&[][..], "no command"),
        (&["frobnicate"][..], "unrecognized subcommand 'frobnicate'"),
        (&["ls", "--bogus"][..], "'--bogus'"),
        (&["inspect"][..], "<NAME>"),
        (&["ls", "--dir"][..], "a value is required"),
        (&["bench", "extra"][..], "'extra'"),
    ] {
        let r = shmproc(args, None);
        assert_eq!(r.code, Some(2), "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(says) && r.stderr.contains("--help"), "{args:?}: {}", r.stderr);
    }
    let r = shmproc(&["inspect", &unique("missing")], None);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("cannot inspect"), "{}", r.stderr);
    let r = shmproc(&["--help"], None);
    assert_eq!(r.code, Some(0));
    assert!(r.stdout.contains("Usage:") && r.stdout.contains("shmproc clean"), "{}", r.stdout);
}

/// Checks that every tag of `doc` is closed in order (a minimal XML check).
fn check_balanced(doc: &str) -> usize {
    let mut stack: Vec<&str> = Vec::new();
    let mut elements = 0;
    let mut rest = doc;
    while let Some(start) = rest.find('<') {
        let end = rest[start..].find('>').expect("unterminated tag") + start;
        let tag = &rest[start + 1..end];
        rest = &rest[end + 1..];
        if tag.starts_with('?') || tag.starts_with('!') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop(), Some(name.trim()), "mismatched </{name}>");
        } else {
            elements += 1;
            let name = tag.split_whitespace().next().expect("tag name").trim_end_matches('/');
            if !tag.ends_with('/') {
                stack.push(name);
            }
        }
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    elements
}

#[test]
fn bench_quick_prints_a_table_and_writes_an_svg() {
    let dir = TempDir::new("bench");
    let svg = dir.0.join("plot.svg");
    let r = shmproc(&["bench", "--quick", "--svg", svg.to_str().expect("utf-8")], Some(&dir.0));
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    for needle in
        ["throughput", "round trip", "64 B", "4 KiB", "64 KiB", "1 MiB", "shmproc Pipe", "OS pipe", "Unix socket"]
    {
        assert!(r.stdout.contains(needle), "{needle} missing:\n{}", r.stdout);
    }
    assert!(r.stderr.contains("24/24") || r.stderr.contains("23/24"), "no progress:\n{}", r.stderr);
    let doc = std::fs::read_to_string(&svg).expect("the SVG was written");
    assert!(doc.starts_with("<?xml") && doc.contains("<svg ") && doc.contains("xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(check_balanced(&doc) > 20);
    // Each series is one polyline (axes, grid, frame and legend are lines
    // and rectangles).
    assert_eq!(doc.matches("<polyline").count(), 6, "three transports in two panels");
    for poly in doc.split("<polyline").skip(1) {
        let points = poly.split("points=\"").nth(1).and_then(|p| p.split('"').next()).expect("points");
        assert_eq!(points.split_whitespace().count(), 4, "one point per size: {points}");
    }
    assert!(!dir.0.join("shmproc-bench.svg").exists(), "--svg was ignored");
}

#[test]
fn plot_draws_the_scale_figures_and_names_a_bad_line() {
    let dir = TempDir::new("plot");
    let csv = dir.0.join("scale.csv");
    std::fs::write(
        &csv,
        "part,what,n,shmproc_a,shmproc_b,python_a,python_b\n\
         scale,producers,2,2.5e-7,0.02,5e-6,0.17\n\
         scale,producers,256,6e-7,0.2,6.7e-6,0.37\n\
         scale,consumers,2,2.1e-7,0.01,6e-6,0.13\n\
         scale,consumers,256,7e-7,0.2,1.1e-5,1.04\n\
         objects,value,100,4096,1,17000,0.02\n\
         objects,value,1000,4096,1,7800,0.004\n\
         objects,lock,100,4096,1,10000,0.01\n\
         objects,lock,1000,4096,1,5400,0.002\n",
    )
    .expect("write csv");
    let (a, b) = (dir.0.join("a.svg"), dir.0.join("b.svg"));
    let path = |p: &Path| p.to_str().expect("utf-8").to_owned();
    let args = ["plot", &path(&csv), "--scale-svg", &path(&a), "--objects-svg", &path(&b)];
    let r = shmproc(&args, None);
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    for svg in [&a, &b] {
        let doc = std::fs::read_to_string(svg).expect("the SVG was written");
        assert!(check_balanced(&doc) > 20);
        assert_eq!(doc.matches("<polyline").count(), 8, "two sides x two lines x two panels");
    }
    std::fs::write(&csv, "header\nscale,producers,many,1,2,3,4\n").expect("write csv");
    let r = shmproc(&args, None);
    assert_eq!(r.code, Some(1));
    assert!(r.stderr.contains("line 2"), "{}", r.stderr);
}
