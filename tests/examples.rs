//! Runs the examples end to end the way README.md tells readers to, and
//! checks their output.
//!
//! The example is started through `cargo run` (the cargo that runs this
//! test, `env!("CARGO")`), so it is built with the same toolchain and flags.
//! Cargo holds no build lock while tests run, so the nested `cargo run`
//! does not wait on the outer one. A hang guard kills the whole process
//! group (cargo and the example's children) after 120 s.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long one `cargo run` may take, build included.
const HANG_GUARD: Duration = Duration::from_secs(120);

struct Output {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

fn drain(mut r: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = r.read_to_string(&mut s);
        s
    })
}

/// `cargo run --release --quiet --example <name>`, killed after [`HANG_GUARD`].
fn cargo_run_example(name: &str) -> Output {
    let mut child = Command::new(env!("CARGO"))
        .args(["run", "--release", "--quiet", "--example", name])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("SHMPROC_TOUR_ROLE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0) // a group of its own, so the guard can kill grandchildren too
        .spawn()
        .expect("start cargo");
    let out = drain(child.stdout.take().expect("stdout"));
    let err = drain(child.stderr.take().expect("stderr"));
    let deadline = Instant::now() + HANG_GUARD;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for cargo") {
            break status;
        }
        if Instant::now() >= deadline {
            if let Some(group) = rustix::process::Pid::from_raw(child.id() as i32) {
                let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
            }
            let _ = child.wait();
            let (stdout, stderr) = (out.join().unwrap_or_default(), err.join().unwrap_or_default());
            panic!(
                "`cargo run --example {name}` took longer than {HANG_GUARD:?} (a build lock, or a hang)\n\
                 --- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output { status, stdout: out.join().expect("stdout reader"), stderr: err.join().expect("stderr reader") }
}

#[test]
fn tour_runs_and_reports_each_section() {
    let out = cargo_run_example("tour");
    let all = format!("--- stdout ---\n{}\n--- stderr ---\n{}", out.stdout, out.stderr);
    assert!(out.status.success(), "the tour failed: {}\n{all}", out.status);
    for heading in [
        "== 1. Named segment",
        "== 2. Anonymous segment",
        "== 3. Shared<AtomicU64>",
        "== 4. Moving 64 MiB",
        "== 5. cleanup_stale()",
    ] {
        assert!(out.stdout.contains(heading), "missing section {heading:?}\n{all}");
    }
    for line in [
        "the child replied \"hello back from child",
        "after the creator's drop, open fails: no shared-memory object named",
        "read \"a memfd needs no name\"",
        "counter = 200000",
        "segment: 64 MiB in",
        "pipe:    64 MiB in",
        "faster",
        "says \"ready\"",
        "exists: true",
        "cleanup_stale() removed \"tour-stale-",
        ": true (other stale names",
        "exists: false",
        "tour finished in",
    ] {
        assert!(out.stdout.contains(line), "missing {line:?}\n{all}");
    }
    assert_eq!(out.stdout.matches(": added 100000").count(), 2, "both counter children report\n{all}");
}
