//! The multi-process harness: helper children by re-executing the test
//! binary, hang guards, unique names, private shm directories and the leak
//! check every test ends with.
//!
//! Parent side: [`Ctx`] (one per test) and [`ChildCmd`]/[`Helper`].
//! Child side: [`arg`], [`say`], [`wait_for_parent`] and the role functions
//! in the area modules, dispatched from `main.rs`.

use std::collections::HashSet;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::FileExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Environment variable that turns a run of `child_entry` into a helper.
pub(crate) const ROLE_ENV: &str = "SHMPROC_MP_ROLE";
/// Prefix of the environment variables that carry a role's arguments.
const ARG_ENV_PREFIX: &str = "SHMPROC_MP_ARG_";
/// Marks protocol lines on a helper's stdout (libtest prints its own text).
const LINE_TAG: &str = "MP:";
/// The hang guard on every wait for a child.
pub(crate) const HANG_GUARD: Duration = Duration::from_secs(30);
/// A test still running after this long aborts the test binary.
const TEST_WATCHDOG: Duration = Duration::from_secs(90);
/// A helper still running after this long exits on its own (its parent died
/// or forgot it).
const CHILD_WATCHDOG: Duration = Duration::from_secs(60);
/// Where named segments live.
pub(crate) const SHM_DIR: &str = "/dev/shm";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Serializes the tests of this binary that either call `cleanup_stale()` on
/// `/dev/shm` or need a dead creator's segment in `/dev/shm` to stay put
/// until they remove it themselves. Every other test that leaves a dead
/// creator's object behind works in a private directory ([`Ctx::private_dir`]).
pub(crate) fn default_dir_cleanup_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

// ---------------------------------------------------------------------------
// Parent side
// ---------------------------------------------------------------------------

/// One test's context: unique names, watchdog, the children it spawned and
/// the private directories it made. [`Ctx::finish`] runs the leak check.
pub(crate) struct Ctx {
    test: &'static str,
    prefix: String,
    spawned: Mutex<Vec<(u32, String, Arc<AtomicBool>)>>,
    dirs: Mutex<Vec<PathBuf>>,
    step: Arc<Mutex<String>>,
    watchdog: Option<(Sender<()>, JoinHandle<()>)>,
    finished: bool,
}

impl Ctx {
    /// A context for the test `test` (a short label that goes into names).
    pub(crate) fn new(test: &'static str) -> Ctx {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("mp-{test}-{}-{n}", std::process::id());
        let step = Arc::new(Mutex::new(String::from("start")));
        let (tx, rx) = mpsc::channel::<()>();
        let step2 = Arc::clone(&step);
        let watchdog = std::thread::spawn(move || {
            if let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(TEST_WATCHDOG) {
                let at = step2.lock().map(|s| s.clone()).unwrap_or_default();
                eprintln!("watchdog: test {test} still running after {TEST_WATCHDOG:?} (at: {at}); aborting");
                std::process::exit(101);
            }
        });
        let ctx = Ctx {
            test,
            prefix,
            spawned: Mutex::new(Vec::new()),
            dirs: Mutex::new(Vec::new()),
            step,
            watchdog: Some((tx, watchdog)),
            finished: false,
        };
        assert_eq!(ctx.shm_names().len(), 0, "names with our unique prefix exist before the test");
        ctx
    }

    /// A segment name unique to this test: `<prefix>.<label>`.
    pub(crate) fn name(&self, label: &str) -> String {
        format!("{}.{label}", self.prefix)
    }

    /// The unique prefix of every name this test makes.
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Records what the test is doing, for the watchdog's message.
    pub(crate) fn step(&self, what: impl Into<String>) {
        if let Ok(mut s) = self.step.lock() {
            *s = what.into();
        }
    }

    /// A new private directory on tmpfs (`/dev/shm/mp-priv-<prefix>-<label>`),
    /// for objects that a concurrent `cleanup_stale()` must not see. Removed
    /// by [`finish`](Ctx::finish), which checks that it is empty.
    pub(crate) fn private_dir(&self, label: &str) -> PathBuf {
        let dir = PathBuf::from(format!("{SHM_DIR}/mp-priv-{}-{label}", self.prefix));
        fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        self.dirs.lock().expect("dirs").push(dir.clone());
        dir
    }

    /// The `/dev/shm` entries whose names start with `shmproc.<prefix>.`.
    pub(crate) fn shm_names(&self) -> Vec<String> {
        list_prefixed(Path::new(SHM_DIR), &format!("shmproc.{}.", self.prefix))
    }

    /// Starts building a helper child running `role`.
    pub(crate) fn child(&self, role: &str) -> ChildCmd<'_> {
        ChildCmd::new(self, role)
    }

    fn record_spawn(&self, pid: u32, role: &str) -> Arc<AtomicBool> {
        let reaped = Arc::new(AtomicBool::new(false));
        self.spawned.lock().expect("spawned").push((pid, role.to_owned(), Arc::clone(&reaped)));
        reaped
    }

    /// The leak check that ends every test: no name with our prefix in
    /// `/dev/shm`, no fd and no mapping of this process pointing at one,
    /// every private directory empty (then removed), and every child this
    /// test spawned waited for (so none is a zombie or still running). Fds
    /// and mappings are matched by the test's prefix because tests run in
    /// parallel in this process; helpers that need whole-process counts
    /// (cases 24 and 25) check them in the helper.
    pub(crate) fn finish(mut self) {
        self.step("leak check");
        let names = self.shm_names();
        assert!(names.is_empty(), "leaked names in /dev/shm: {names:?}");
        let needle = format!("shmproc.{}.", self.prefix);
        let fds = fds_matching(&needle);
        assert!(fds.is_empty(), "leaked fds: {fds:?}");
        let maps = maps_matching(&needle);
        assert!(maps.is_empty(), "leaked mappings: {maps:?}");
        for dir in self.dirs.lock().expect("dirs").drain(..) {
            let left: Vec<_> = list_prefixed(&dir, "");
            assert!(left.is_empty(), "leaked files in {}: {left:?}", dir.display());
            let dmaps = maps_matching(&format!("{}/", dir.display()));
            assert!(dmaps.is_empty(), "leaked mappings of {}: {dmaps:?}", dir.display());
            fs::remove_dir(&dir).unwrap_or_else(|e| panic!("rmdir {}: {e}", dir.display()));
        }
        for (pid, role, reaped) in self.spawned.lock().expect("spawned").iter() {
            if !reaped.load(Ordering::Relaxed) {
                let state = proc_state(*pid).map_or('?', |(s, _)| s);
                panic!("helper {role} (pid {pid}) of test {} not reaped (state {state})", self.test);
            }
        }
        self.finished = true;
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        if let Some((tx, handle)) = self.watchdog.take() {
            let _ = tx.send(());
            let _ = handle.join();
        }
        if !self.finished {
            // The test failed: remove what it left, so reruns start clean.
            for n in self.shm_names() {
                let _ = fs::remove_file(Path::new(SHM_DIR).join(n));
            }
            if let Ok(mut dirs) = self.dirs.lock() {
                for d in dirs.drain(..) {
                    let _ = fs::remove_dir_all(d);
                }
            }
        }
    }
}

/// Entries of `dir` whose names start with `prefix`.
pub(crate) fn list_prefixed(dir: &Path, prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("readdir {}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(prefix))
        .collect();
    v.sort();
    v
}

/// This process's fds whose targets contain `needle`.
pub(crate) fn fds_matching(needle: &str) -> Vec<String> {
    let Ok(rd) = fs::read_dir("/proc/self/fd") else { return Vec::new() };
    rd.filter_map(|e| e.ok())
        .filter_map(|e| fs::read_link(e.path()).ok())
        .map(|t| t.to_string_lossy().into_owned())
        .filter(|t| t.contains(needle))
        .collect()
}

/// Number of open fds of this process.
pub(crate) fn fd_count() -> usize {
    fs::read_dir("/proc/self/fd").map(|rd| rd.count()).unwrap_or(0)
}

/// Lines of `/proc/self/maps` that contain `needle`.
pub(crate) fn maps_matching(needle: &str) -> Vec<String> {
    fs::read_to_string("/proc/self/maps")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_owned)
        .collect()
}

/// Lines of `/proc/self/maps` that belong to shmproc objects (named,
/// unnamed-in-/dev/shm, or memfd).
pub(crate) fn shm_maps() -> Vec<String> {
    fs::read_to_string("/proc/self/maps")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("/dev/shm/") || l.contains("memfd:shmproc"))
        .map(str::to_owned)
        .collect()
}

/// `(state, ppid)` of a process, from `/proc/<pid>/stat`.
pub(crate) fn proc_state(pid: u32) -> Option<(char, u32)> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let mut it = rest.split_whitespace();
    let state = it.next()?.chars().next()?;
    let ppid = it.next()?.parse().ok()?;
    Some((state, ppid))
}

/// A child command being built: the test binary re-executed with a role.
pub(crate) struct ChildCmd<'a> {
    ctx: &'a Ctx,
    role: String,
    cmd: Command,
}

impl<'a> ChildCmd<'a> {
    fn new(ctx: &'a Ctx, role: &str) -> Self {
        let exe = std::env::current_exe().expect("current_exe");
        let mut cmd = Command::new(exe);
        cmd.args(child_args());
        ChildCmd { ctx, role: role.to_owned(), cmd }.base_env()
    }

    fn base_env(mut self) -> Self {
        self.cmd
            .env(ROLE_ENV, &self.role)
            .env_remove("SHMPROC_FAILPOINT")
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        self
    }

    /// Runs the helper through a wrapper program instead of directly:
    /// `program wrapper_args... <test binary> <child args...>`.
    pub(crate) fn wrapped(self, program: &str, wrapper_args: &[&str]) -> Self {
        let exe = std::env::current_exe().expect("current_exe");
        let mut cmd = Command::new(program);
        cmd.args(wrapper_args).arg(exe).args(child_args());
        ChildCmd { ctx: self.ctx, role: self.role, cmd }.base_env()
    }

    /// Runs the helper in its own mount namespace with a fresh tmpfs on
    /// `/dev/shm` (`unshare --mount` + `mount`), after running the shell
    /// command `setup` there. Check [`private_dev_shm_works`] first.
    pub(crate) fn in_private_dev_shm(self, setup: &str) -> Self {
        let script = format!("mount -t tmpfs -o size=16m,mode=1777 tmpfs /dev/shm && {setup} && exec \"$0\" \"$@\"");
        self.wrapped("unshare", &["--mount", "--propagation", "private", "sh", "-c", &script])
    }

    /// A role argument (environment variable `SHMPROC_MP_ARG_<KEY>`).
    pub(crate) fn arg(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.env(format!("{ARG_ENV_PREFIX}{key}"), value);
        self
    }

    /// Arms a failpoint in the child (`SHMPROC_FAILPOINT`).
    pub(crate) fn failpoint(mut self, name: &str) -> Self {
        self.cmd.env("SHMPROC_FAILPOINT", name);
        self
    }

    /// Runs the child as another user (`setuid`/`setgid` before exec).
    pub(crate) fn user(mut self, uid: u32, gid: u32) -> Self {
        self.cmd.uid(uid).gid(gid); // std also drops supplementary groups when root
        self
    }

    /// Starts the child.
    pub(crate) fn spawn(self) -> std::io::Result<Helper> {
        let ChildCmd { ctx, role, mut cmd } = self;
        let mut child = cmd.spawn()?;
        let reaped = ctx.record_spawn(child.id(), &role);
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        // Detached: it ends at EOF, when the child (and anything it started
        // that kept the pipe) is gone.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(i) = line.find(LINE_TAG)
                    && tx.send(line[i + LINE_TAG.len()..].to_owned()).is_err()
                {
                    break;
                }
            }
        });
        let mut stderr = child.stderr.take().expect("piped stderr");
        let (etx, erx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            let _ = etx.send(s);
        });
        let stdin = child.stdin.take();
        Ok(Helper {
            pid: child.id(),
            role,
            child,
            stdin,
            lines: rx,
            stderr_rx: erx,
            reaped,
            stderr: None,
            status: None,
            step: Arc::clone(&ctx.step),
        })
    }

    /// Starts the child; panics if it cannot be started.
    pub(crate) fn start(self) -> Helper {
        let role = self.role.clone();
        self.spawn().unwrap_or_else(|e| panic!("spawning helper {role}: {e}"))
    }
}

/// Whether `unshare --mount` can give a helper its own `/dev/shm`
/// (see [`ChildCmd::in_private_dev_shm`]); the reason if not.
pub(crate) fn private_dev_shm_works() -> Result<(), String> {
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /dev/shm"])
        .output()
        .map_err(|e| format!("cannot run unshare: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// The libtest arguments that run exactly `child_entry`.
fn child_args() -> [&'static str; 4] {
    ["--exact", "child_entry", "--nocapture", "--test-threads=1"]
}

/// A running helper child. Dropping it unwaited kills and reaps it.
pub(crate) struct Helper {
    pid: u32,
    role: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr_rx: Receiver<String>,
    reaped: Arc<AtomicBool>,
    stderr: Option<String>,
    status: Option<ExitStatus>,
    step: Arc<Mutex<String>>,
}

impl Helper {
    /// The child's pid (in our pid namespace).
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    fn set_step(&self, what: String) {
        if let Ok(mut s) = self.step.lock() {
            *s = what;
        }
    }

    /// The next protocol line (`MP:<line>` on the child's stdout), waiting at
    /// most the hang guard. Panics (after killing the child) on timeout or
    /// if the child exits first.
    pub(crate) fn line(&mut self) -> String {
        self.set_step(format!("reading a line from helper {} (pid {})", self.role, self.pid));
        match self.lines.recv_timeout(HANG_GUARD) {
            Ok(l) => l,
            Err(RecvTimeoutError::Timeout) => {
                self.kill();
                let st = self.reap();
                panic!(
                    "hang guard: helper {} (pid {}) printed nothing for {HANG_GUARD:?}; killed ({st:?}); stderr:\n{}",
                    self.role,
                    self.pid,
                    self.stderr_text()
                );
            }
            Err(RecvTimeoutError::Disconnected) => {
                let st = self.reap();
                panic!(
                    "helper {} (pid {}) exited ({st:?}) without the expected line; stderr:\n{}",
                    self.role,
                    self.pid,
                    self.stderr_text()
                );
            }
        }
    }

    /// Every protocol line not read yet, up to the child's exit (its stdout
    /// closing); waits at most the hang guard for that.
    pub(crate) fn remaining_lines(&mut self) -> Vec<String> {
        self.set_step(format!("reading the last lines of helper {} (pid {})", self.role, self.pid));
        let mut v = Vec::new();
        loop {
            match self.lines.recv_timeout(HANG_GUARD) {
                Ok(l) => v.push(l),
                Err(RecvTimeoutError::Disconnected) => return v,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("hang guard: helper {} (pid {}) kept its stdout open", self.role, self.pid)
                }
            }
        }
    }

    /// Reads the next protocol line and checks that it starts with `word`;
    /// returns the rest of the line (trimmed).
    pub(crate) fn expect(&mut self, word: &str) -> String {
        let l = self.line();
        match l.strip_prefix(word) {
            Some(rest) => rest.trim().to_owned(),
            None => panic!("helper {} (pid {}): expected {word:?}, got {l:?}", self.role, self.pid),
        }
    }

    /// Sends one line to the child's stdin.
    pub(crate) fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        writeln!(stdin, "{line}").and_then(|_| stdin.flush()).expect("write to helper stdin");
    }

    /// Closes the child's stdin (the usual "exit now" signal).
    pub(crate) fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// SIGKILLs the child (no-op if it was reaped already).
    pub(crate) fn kill(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
        }
    }

    /// Waits for the child, at most the hang guard; kills it on timeout.
    fn reap(&mut self) -> Result<ExitStatus, String> {
        if let Some(st) = self.status {
            return Ok(st);
        }
        self.set_step(format!("waiting for helper {} (pid {})", self.role, self.pid));
        let deadline = Instant::now() + HANG_GUARD;
        let mut timed_out = false;
        let st = loop {
            match self.child.try_wait() {
                Ok(Some(st)) => break st,
                Ok(None) if Instant::now() >= deadline && !timed_out => {
                    timed_out = true;
                    let _ = self.child.kill();
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(2)),
                Err(e) => return Err(format!("waitpid: {e}")),
            }
        };
        self.status = Some(st);
        self.reaped.store(true, Ordering::Relaxed);
        self.stdin = None;
        // Bounded: a grandchild that inherited the pipe could keep it open.
        self.stderr = Some(
            self.stderr_rx.recv_timeout(HANG_GUARD).unwrap_or_else(|_| "<stderr still open after exit>".to_owned()),
        );
        if timed_out { Err(format!("hang guard: killed after {HANG_GUARD:?} ({st:?})")) } else { Ok(st) }
    }

    /// The child's stderr (complete once it was waited for).
    pub(crate) fn stderr_text(&self) -> &str {
        self.stderr.as_deref().unwrap_or("")
    }

    /// Waits for the child (hang guard) and returns its status.
    pub(crate) fn wait(&mut self) -> ExitStatus {
        match self.reap() {
            Ok(st) => st,
            Err(e) => panic!("helper {} (pid {}): {e}; stderr:\n{}", self.role, self.pid, self.stderr_text()),
        }
    }

    /// Waits and checks that the child exited with status 0.
    pub(crate) fn wait_ok(&mut self) {
        let st = self.wait();
        assert!(
            st.success(),
            "helper {} (pid {}) failed: {st:?}; stderr:\n{}",
            self.role,
            self.pid,
            self.stderr_text()
        );
    }

    /// Waits and checks that the child died of SIGKILL.
    pub(crate) fn wait_killed(&mut self) {
        let st = self.wait();
        assert_eq!(
            st.signal(),
            Some(9),
            "helper {} (pid {}) should have died of SIGKILL: {st:?}; stderr:\n{}",
            self.role,
            self.pid,
            self.stderr_text()
        );
    }

    /// Closes stdin (asking the child to finish) and checks it exits with 0.
    pub(crate) fn finish(&mut self) {
        self.close_stdin();
        self.wait_ok();
    }

    /// SIGKILLs the child and checks that it died of it.
    pub(crate) fn kill_and_reap(&mut self) {
        self.kill();
        self.wait_killed();
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.reap();
        }
    }
}

/// Result of an open attempt, as a helper reports it: `Ok <len>` or the
/// error variant's name.
pub(crate) fn outcome<T>(r: &shmproc::Result<T>, len: impl Fn(&T) -> usize) -> String {
    match r {
        Ok(v) => format!("Ok {}", len(v)),
        Err(e) => variant(e).to_owned(),
    }
}

/// The name of an error's variant.
pub(crate) fn variant(e: &shmproc::Error) -> &'static str {
    use shmproc::Error as E;
    match e {
        E::Os { .. } => "Os",
        E::InvalidName { .. } => "InvalidName",
        E::NotFound { .. } => "NotFound",
        E::Exists { .. } => "Exists",
        E::PermissionDenied { .. } => "PermissionDenied",
        E::NoSpace { .. } => "NoSpace",
        E::Corrupt { .. } => "Corrupt",
        E::VersionMismatch { .. } => "VersionMismatch",
        E::KindMismatch { .. } => "KindMismatch",
        E::LayoutMismatch { .. } => "LayoutMismatch",
        E::SizeMismatch { .. } => "SizeMismatch",
        E::Truncated { .. } => "Truncated",
        E::NotReady => "NotReady",
        E::Timeout => "Timeout",
        E::StillAlive { .. } => "StillAlive",
        E::AlreadyBeingCleaned => "AlreadyBeingCleaned",
        E::InvalidArgument { .. } => "InvalidArgument",
        E::Unsupported { .. } => "Unsupported",
        E::Codec { .. } => "Codec",
        _ => "Other",
    }
}

// ---------------------------------------------------------------------------
// Files of segments
// ---------------------------------------------------------------------------

/// The file of segment `name` in `/dev/shm`.
pub(crate) fn shm_path(name: &str) -> PathBuf {
    PathBuf::from(format!("{SHM_DIR}/shmproc.{name}"))
}

/// The file of segment `name` in `dir`.
pub(crate) fn path_in(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("shmproc.{name}"))
}

/// Writes `bytes` at `offset` of the file at `path` (as a hostile peer would).
pub(crate) fn poke(path: &Path, offset: u64, bytes: &[u8]) {
    let f = fs::OpenOptions::new().write(true).open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    f.write_all_at(bytes, offset).unwrap_or_else(|e| panic!("pwrite {}: {e}", path.display()));
}

/// Reads `n` bytes at `offset` of the file at `path`.
pub(crate) fn peek(path: &Path, offset: u64, n: usize) -> Vec<u8> {
    let f = fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut buf = vec![0u8; n];
    f.read_exact_at(&mut buf, offset).unwrap_or_else(|e| panic!("pread {}: {e}", path.display()));
    buf
}

/// Header field offsets (see the table in `src/shm/header.rs`).
pub(crate) mod hdr {
    /// `magic`, 8 bytes.
    pub(crate) const MAGIC: u64 = 0;
    /// `format`, 4 bytes.
    pub(crate) const FORMAT: u64 = 8;
    /// `kind`, 4 bytes.
    pub(crate) const KIND: u64 = 12;
    /// `layout_hash`, 8 bytes.
    pub(crate) const LAYOUT_HASH: u64 = 16;
    /// `len`, 8 bytes.
    pub(crate) const LEN: u64 = 24;
    /// `state`, 4 bytes.
    pub(crate) const STATE: u64 = 32;
    /// `creator_pid`, 4 bytes.
    pub(crate) const CREATOR_PID: u64 = 36;
    /// `creator_nonce`, 8 bytes.
    pub(crate) const CREATOR_NONCE: u64 = 40;
    /// `payload_len`, 8 bytes.
    pub(crate) const PAYLOAD_LEN: u64 = 48;
    /// Size of the header.
    pub(crate) const SIZE: u64 = 128;
    /// The READY state word.
    pub(crate) const READY: u32 = 0x5245_4459;
}

/// A tiny deterministic PRNG (xorshift64*), for garbage bytes.
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator from a non-zero seed.
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// The next 64 random bits.
    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Fills `buf` with random bytes.
    pub(crate) fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// Case 35's hostile peer: 400 rounds of garbage written into the file at
/// `path` while the victim helper `h` (which said `ready`) operates. Each
/// round `pick` chooses an (offset, value); the value stays for 300 µs and
/// is then put back (except every 7th round: the victim's own stores heal
/// those); every 16th round the victim must answer `check` with `ack`.
/// Then closes the victim's stdin, checks it exits with status 0, and
/// returns its final `done <ops> <corrupt>` counts, asserting that it kept
/// operating and noticed the garbage.
pub(crate) fn garbage_rounds(
    ctx: &Ctx,
    h: &mut Helper,
    path: &Path,
    seed: u64,
    mut pick: impl FnMut(&mut Rng, u64) -> (u64, u64),
) -> (u64, u64) {
    let mut rng = Rng::new(seed);
    for round in 0..400u64 {
        ctx.step(format!("garbage round {round}"));
        let (off, v) = pick(&mut rng, round);
        let saved = peek(path, off, 8);
        poke(path, off, &v.to_ne_bytes());
        std::thread::sleep(Duration::from_micros(300));
        if round % 7 != 6 {
            poke(path, off, &saved);
        }
        if round % 16 == 0 {
            h.send("check");
            assert_eq!(h.line(), "ack");
        }
    }
    h.close_stdin();
    let done = h.expect("done");
    let mut it = done.split_whitespace().map(|w| w.parse::<u64>().expect("number"));
    let (ops, corrupt) = (it.next().expect("ops"), it.next().expect("corrupt"));
    assert!(ops > 1000, "the victim kept operating ({ops} ops)");
    assert!(corrupt > 0, "garbage was noticed ({corrupt} of {ops} ops were Corrupt)");
    h.wait_ok();
    (ops, corrupt)
}

/// A garbage word for round `round`: the extremes, small and misaligned
/// values, a far position, or random bits.
pub(crate) fn garbage_value(rng: &mut Rng, round: u64) -> u64 {
    match round % 9 {
        0 => u64::MAX,
        1 => 0,
        2 => 1 << 40,
        3 => 65,
        4 => 3,
        5 => u64::MAX - 63,
        6 => 1 << 63,
        7 => 0x0000_0002_0000_0040, // as a byte-record header: tag 2, length 64
        _ => rng.next(),
    }
}

/// Polls `cond` every millisecond until it holds or the hang guard passes.
pub(crate) fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + HANG_GUARD;
    while !cond() {
        assert!(Instant::now() < deadline, "hang guard: {what} did not happen within {HANG_GUARD:?}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Removes a directory tree (best effort), used by guards.
pub(crate) fn remove_tree(p: &Path) {
    let _ = fs::remove_dir_all(p);
}

/// The distinct values in `v`.
pub(crate) fn distinct<T: std::hash::Hash + Eq + Clone>(v: &[T]) -> HashSet<T> {
    v.iter().cloned().collect()
}

// ---------------------------------------------------------------------------
// Child side
// ---------------------------------------------------------------------------

/// Starts the helper's own watchdog: it exits with status 3 after
/// [`CHILD_WATCHDOG`], so no helper outlives a dead or stuck parent for long.
pub(crate) fn child_watchdog() {
    std::thread::spawn(|| {
        std::thread::sleep(CHILD_WATCHDOG);
        eprintln!("helper watchdog: still running after {CHILD_WATCHDOG:?}; exiting");
        std::process::exit(3);
    });
}

/// A role argument; panics (failing the helper) if it is missing.
pub(crate) fn arg(key: &str) -> String {
    std::env::var(format!("{ARG_ENV_PREFIX}{key}")).unwrap_or_else(|_| panic!("helper argument {key} missing"))
}

/// An optional role argument.
pub(crate) fn arg_opt(key: &str) -> Option<String> {
    std::env::var(format!("{ARG_ENV_PREFIX}{key}")).ok()
}

/// A numeric role argument.
pub(crate) fn arg_num<T: std::str::FromStr>(key: &str) -> T {
    arg(key).parse().unwrap_or_else(|_| panic!("helper argument {key} is not a number"))
}

/// Prints one protocol line to the parent.
pub(crate) fn say(line: impl std::fmt::Display) {
    let mut out = std::io::stdout().lock();
    // A new line first: libtest may have printed "test child_entry ... ".
    let _ = writeln!(out, "\n{LINE_TAG}{line}");
    let _ = out.flush();
}

/// Reads the next command line from the parent; `None` at EOF.
pub(crate) fn command() -> Option<String> {
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim().to_owned()),
    }
}

/// Blocks until the parent closes our stdin or sends `exit`.
pub(crate) fn wait_for_parent() {
    while let Some(c) = command() {
        if c == "exit" {
            break;
        }
    }
}
