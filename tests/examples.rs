//! Runs the examples end to end the way README.md tells readers to, and
//! checks their output (never their timings: the machine may be busy).
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

impl Output {
    /// Both streams, for failure messages.
    fn all(&self) -> String {
        format!("--- stdout ---\n{}\n--- stderr ---\n{}", self.stdout, self.stderr)
    }

    /// Panics unless stdout contains every one of `lines`.
    fn assert_contains(&self, lines: &[&str]) {
        for line in lines {
            assert!(self.stdout.contains(line), "missing {line:?}\n{}", self.all());
        }
    }

    /// The number after `prefix` on the first stdout line that has it.
    fn number_after(&self, prefix: &str) -> u32 {
        let at = self.stdout.find(prefix).unwrap_or_else(|| panic!("missing {prefix:?}\n{}", self.all()));
        let digits: String = self.stdout[at + prefix.len()..].chars().take_while(char::is_ascii_digit).collect();
        digits.parse().unwrap_or_else(|_| panic!("no number after {prefix:?}\n{}", self.all()))
    }
}

/// Runs an example that must succeed without any panic, child or parent.
fn run_clean(name: &str) -> Output {
    let out = cargo_run_example(name);
    assert!(out.status.success(), "example {name} failed: {}\n{}", out.status, out.all());
    assert!(!out.stderr.contains("panicked"), "example {name} panicked\n{}", out.all());
    out
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
        "== 6. Processes: children under each start method",
        "== 7. Locks survive a killed holder",
        "== 8. Streaming values through a lock-free ring",
        "== 9. A Queue<String> and a typed channel between processes, next to an OS pipe",
        "== 10. A Pipe ping-pong between two processes, next to two OS pipes",
        "== 11. A Pool and a ProcessPoolExecutor of 2 worker processes",
        "== 12. A Value and an Array in shared memory",
        "== 13. A Manager: a dict and a list shared by several workers",
        "== 14. Async: tokio tasks await a typed channel, a Pipe and children; connection::wait",
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
        "join() of a child that panicked: process Process-",
        "panicked: this child panics on purpose",
        "got 200000 strings through a typed channel from two children; the loop ended when both were done",
        ": holds the lock, took 10 out of account 0, not yet into account 1",
        ": the lock is held: is_locked() = true",
        ": kill() sent SIGKILL; join(): process Process-",
        ") killed by signal 9 (SIGKILL)",
        ": lock() returned OwnerDied: accounts = [90, 0] (sum 90)",
        ": repaired to [90, 10] and called mark_consistent()",
        ": second lock(): clean (is_recovering() = false), accounts = [90, 10]",
        ": received 1000000 of 1000000 values from child",
        "sum 500000500000",
        "every value arrived once",
        ": got 100000 strings from child ",
        " through the Queue, each as sent",
        " through a pipe, each as sent",
        "Queue: ",
        " M strings/s; pipe: ",
        "(one short run, timed from the first string to the last;",
        " answered 20100 numbers through a shmproc Pipe",
        " answered the same through two OS pipes",
        "round trip: Pipe ",
        ": map(square, 1..=8) -> [1, 4, 9, 16, 25, 36, 49, 64], computed in workers",
        "a task that aborts its worker fails alone: pool worker pid",
        "the pool replaced the worker: map(square, [9]) -> 81 in worker",
        "map of 20000 trivial tasks, chunksize 1:",
        "executor: 4 futures completed (as_completed), squares [1, 4, 9, 16]",
        " set the Value to 3.141592653589793 and negated the Array: [0, -1, -2, -3, -4, -5, -6, -7, -8, -9]",
        ": 400000 increments of a Value<u64>, each under its lock, none lost;",
        "merged dict (updated in the server, no lost count): [(\"cat\", 2), (\"dog\", 1), (\"ran\", 1), (\"sat\", 2), (\"the\", 3)]",
        "dict insert, one call at a time:",
        "after kill -9 of the server: words.len() -> ManagerDead",
        "log.len() -> Err(ManagerDead) at once",
        "one tokio thread: 100000 numbers (sum 4999950000) from 2 children through a typed channel's Stream",
        "join_async() of 2 senders and the echo child",
        "connection::wait over a Queue, an Event and a Process: ready [1] (the Event, set by the child)",
        "and over the Queue and the exited Process: ready [1]",
        "Leftovers: `cargo run --release --bin shmproc -- ls`",
        "tour finished in",
    ] {
        assert!(out.stdout.contains(line), "missing {line:?}\n{all}");
    }
    assert_eq!(out.stdout.matches(": added 100000").count(), 2, "both counter children report\n{all}");
    for method in ["fork      :", "spawn     :", "forkserver:"] {
        let line = out.stdout.lines().find(|l| l.starts_with(method)).unwrap_or_else(|| panic!("no {method}\n{all}"));
        assert!(line.contains("returned sum of squares 1..=1000 = 333833500; start+join"), "{line}\n{all}");
    }
    assert!(out.stderr.contains("this child panics on purpose"), "the child's panic message on its stderr\n{all}");
}

#[test]
fn async_service() {
    let out = run_clean("async_service");
    for i in 0..4 {
        out.assert_contains(&[&format!("worker {i} (pid "), ": 100 answers, 600 words counted by the service"]);
    }
    out.assert_contains(&[
        "answered 400 requests from 4 worker processes in ",
        "2400 words in all",
        "the request stream ended when every worker had dropped its sender",
    ]);
}

#[test]
fn one_process_per_input() {
    let out = run_clean("one_process_per_input");
    for i in 1..=5 {
        out.assert_contains(&[&format!(": exitcode 0, square({i}) = {}", i * i)]);
    }
    assert_eq!(out.stdout.matches("child  pid ").count(), 5, "each child reports\n{}", out.all());
    assert_eq!(out.stdout.lines().last(), Some("all finished"), "\n{}", out.all());
}

#[test]
fn arguments_and_tasks() {
    let out = run_clean("arguments_and_tasks");
    out.assert_contains(&[
        "by position: 3 x widget at 2.50 = 7.50",
        "by name:     Hello, Ada! Hello, Ada!",
        "by name:     HI, GRACE!",
        "task:        word-counter (pid ",
        "counted 5 words of 4+ letters",
    ]);
}

#[test]
fn daemons_and_signals() {
    let out = run_clean("daemons_and_signals");
    let main_pid = out.number_after("MainProcess pid ");
    out.assert_contains(&[
        "non-daemon child ",
        "its own child returned Ok(9)",
        ": error: daemonic processes are not allowed to have children",
        "after terminate(): is_alive() = false, exitcode() = signal 15 (SIGTERM), Python exitcode -15",
        "join(): process Process-3 (pid ",
        ") killed by signal 15 (SIGTERM)",
        "after kill(): is_alive() = false, exitcode() = signal 9 (SIGKILL), Python exitcode -9",
        ") killed by signal 9 (SIGKILL)",
        &format!(": parent_process() is MainProcess pid {main_pid}"),
        "daemon sleeper pid ",
        "sleeps for 60 s: is_alive() = true",
    ]);
    assert_eq!(out.stdout.matches("is_alive() = true, exitcode() = None").count(), 2, "\n{}", out.all());
    // The example has exited: its exit handler terminated (and reaped) the
    // daemon instead of waiting out its 60 s sleep.
    let daemon = out.number_after("terminates daemon pid ");
    let cmdline = std::fs::read(format!("/proc/{daemon}/cmdline")).unwrap_or_default();
    assert!(
        !String::from_utf8_lossy(&cmdline).contains("daemons_and_signals"),
        "the daemon {daemon} outlived its parent\n{}",
        out.all()
    );
}

#[test]
fn globals_not_shared() {
    let out = run_clean("globals_not_shared");
    out.assert_contains(&[
        "parent sets COUNTER = 1",
        "      fork child adds 10: the child sees COUNTER = 11",
        "forkserver child adds 10: the child sees COUNTER = 10",
        "child adds 10: the child sees shared counter = 11",
        "parent now sees shared counter = 11",
    ]);
    assert_eq!(out.stdout.matches("parent still sees COUNTER = 1\n").count(), 2, "\n{}", out.all());
}

#[test]
fn start_methods() {
    let out = run_clean("start_methods");
    out.assert_contains(&[
        "default start method: forkserver",
        "fork closure returned 123",
        "compared with Python's multiprocessing",
    ]);
    for (method, python) in [("fork", "4.0"), ("spawn", "91.0"), ("forkserver", "22.0")] {
        let global = format!("{method:>10}: child pid ");
        let lines: Vec<&str> = out.stdout.lines().filter(|l| l.starts_with(&global)).collect();
        assert_eq!(lines.len(), 2, "{method}: once set globally, once through a Context\n{}", out.all());
        assert!(lines[0].contains("returned 49; start+join mean"), "{}\n{}", lines[0], out.all());
        assert!(lines[1].ends_with("returned 81"), "{}\n{}", lines[1], out.all());
        let compared = format!(" ms vs Python {python} ms (");
        let line = out.stdout.lines().find(|l| l.starts_with(&format!("{method:>10}: ")) && l.contains(&compared));
        assert!(line.is_some(), "{method}: no comparison with Python\n{}", out.all());
    }
}

#[test]
fn cpu_speedup() {
    let out = run_clean("cpu_speedup");
    assert_eq!(out.stdout.matches(": counted to 10000000 (").count(), 5, "each child reports\n{}", out.all());
    out.assert_contains(&[
        "5 processes each counting to 10000000",
        "wall time ",
        " s vs sum of child times ",
        "speed-up ",
    ]);
}

#[test]
fn closures() {
    let out = run_clean("closures");
    out.assert_contains(&[
        "map(scale, 0..5) -> [0, 3, 6, 9, 12]",
        "map(|x| x * 2, 0..5) -> [0, 2, 4, 6, 8]",
        "map(partial(tag, 10, \"item-\"), 0..3) -> [\"item-0\", \"item-10\", \"item-20\"]",
        "apply(price, 4) -> 900 cents",
        "imap(price, [1, 2, 3]) -> [225, 450, 675]",
        "submit(count_words, ..) -> 4 words that are not stop words",
        "Process::spawn(task!(..)) -> \"hello from a child\"",
        "update_with(\"seen\", task!(..)) twice -> [\"ada\", \"alan\", \"ada\", \"alan\"]",
    ]);
}

#[test]
fn ticket_counter() {
    let out = run_clean("ticket_counter");
    out.assert_contains(&[
        "start method: forkserver",
        "stock: 20 tickets, 100 customers",
        "all 100 customers started; the doors open",
        "sold 20 tickets, 0 left, 80 customers turned away",
        "every ticket 1..=20 sold exactly once: never more than the stock",
    ]);
    assert_eq!(out.stdout.matches(": bought ticket ").count(), 20, "exactly 20 buyers\n{}", out.all());
    assert_eq!(out.stdout.matches(": sold out\n").count(), 80, "80 turned away\n{}", out.all());
    for ticket in 1..=20 {
        let line = format!(": bought ticket {ticket}\n");
        assert_eq!(out.stdout.matches(&line).count(), 1, "ticket {ticket} sold once\n{}", out.all());
    }
}

#[test]
fn condvar_producer_consumer() {
    let out = run_clean("condvar_producer_consumer");
    out.assert_contains(&[
        "a ring of 4 slots; 1 producer of 500 items, 2 consumers",
        ": put 500 items and 2 end-of-stream markers; found the ring full ",
        "ring at the end: 502 pushed, 502 popped, empty: true",
        "every item 1..=500 consumed exactly once (500 in all)",
    ]);
    let consumers: Vec<&str> = out.stdout.lines().filter(|l| l.starts_with("consumer ")).collect();
    assert_eq!(consumers.len(), 2, "both consumers report\n{}", out.all());
    for line in consumers {
        assert!(line.ends_with("each after the one before: true"), "{line}\n{}", out.all());
    }
}

#[test]
fn queue_basics() {
    let out = run_clean("queue_basics");
    let child = out.number_after("the child ");
    for n in 1..=3 {
        out.assert_contains(&[&format!(": get() -> \"hello {n} from pid {child}\"")]);
    }
    out.assert_contains(&[
        ": try_get() -> Empty; is_empty() = true",
        ": try_put 0, 1, 2: qsize() = 3, is_full() = true",
        ": try_put(3) -> Full, item 3 given back",
        ": sees qsize() = 3, is_full() = true",
        ": get() -> 0\n",
        ": put(3) returned after ",
        ": the child took 0; qsize() = 3, is_full() = true",
        ": put_timeout(4, 100 ms) on a full queue -> Timeout after ",
        ": get_timeout(100 ms) -> [1, 2, 3], then Timeout after ",
        ": qsize() = 0, is_empty() = true, is_full() = false, maxsize() = 3",
        ": put 10..15, then close(); is_closed() = true",
        ": put(15) after close -> the queue or pipe was closed",
        ": got [10, 11, 12, 13, 14], then get() -> the queue or pipe was closed",
        "every item arrived once, in order",
    ]);
    // The child looked at the full queue before its get() made room for
    // the parent's blocked put(3).
    let seen = out.stdout.find(": sees qsize() = 3").expect("checked above");
    let returned = out.stdout.find(": put(3) returned after ").expect("checked above");
    assert!(seen < returned, "put(3) returned before the child made room\n{}", out.all());
}

#[test]
fn producer_consumer() {
    let out = run_clean("producer_consumer");
    out.assert_contains(&[
        "-- 1 producer, 1 consumer, None as the end-of-stream marker --",
        ": put 10 lines, then None",
        ": got 10 lines, then None: \"line 1\" .. \"line 10\"",
        "every line arrived once, in order; the consumer stopped at the marker",
        "-- 2 producers, 2 daemon consumers, a JoinableQueue --",
        "producer 0 (pid ",
        "producer 1 (pid ",
        "join() returned: every task was marked done (unfinished() = 0)",
        "all 20 results arrived; each task was done exactly once",
    ]);
    assert_eq!(out.stdout.matches(": put 10 tasks\n").count(), 2, "both producers report\n{}", out.all());
    let stopped = out.stdout.matches(": is_alive() = false, exitcode() = signal 15 (SIGTERM)\n").count();
    assert_eq!(stopped, 2, "both consumers terminated\n{}", out.all());
    let done: u32 = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("consumer pid ") && l.ends_with(" tasks"))
        .map(|l| l.rsplit(' ').nth(1).and_then(|n| n.parse().ok()).unwrap_or(0))
        .sum();
    assert_eq!(done, 20, "the consumers' counts add up to every task\n{}", out.all());
}

#[test]
fn pipe() {
    let out = run_clean("pipe");
    out.assert_contains(&[
        "a duplex pipe: parent end readable true writable true",
        "parent sent Job { name: \"numbers\", items: [1, 2, 3] }",
        "parent: poll(10 s) = true (a reply is ready)",
        "parent received: sum 105, items [1, 2, 3, 99]",
        "parent's own job is unchanged: [1, 2, 3] (objects arrive as copies)",
        "parent received Idle (the child's poll(200 ms) timed out)",
        "parent: poll(0) = false (nothing else is pending)",
        "child said goodbye with \"bye\" and exited",
    ]);
}

#[test]
fn shared_data() {
    let out = run_clean("shared_data");
    out.assert_contains(&[
        "before: num = 0, arr = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]",
        "after the child: num = 3.1415927",
        "after the child: arr = [0, -1, -2, -3, -4, -5, -6, -7, -8, -9]",
    ]);
}

#[test]
fn pool() {
    let out = run_clean("pool");
    let parent = out.number_after("the parent is pid ");
    out.assert_contains(&[
        "a pool of 3 workers; the parent is pid ",
        "get() -> 144; ready() = true, successful() = Some(true)",
        &format!("error_callback in pid {parent} (the parent), thread "),
        ": the task panicked in pool worker pid ",
        ": cannot fetch \"ftp://old.example\": not an https address",
        "3 pages fetched and parsed, 1 fetch failed; the other tasks were not affected",
        "map(square, 1..=10) -> [1, 4, 9, 16, 25, 36, 49, 64, 81, 100]",
        "map(power, [(2, 10), (3, 4), (10, 3)]) -> [1024, 81, 1000] (Python's starmap)",
        "apply(total, Order { item, quantity, unit_cents }) -> 3 x widget at 2.50 = 7.50",
        "imap yielded           [1, 2, 3, 4, 5, 6]: submission order",
        "imap_unordered yielded [",
        "join() before close() -> invalid argument: join() needs close() or terminate() first",
        "apply_async after close() -> the pool is closed or terminated: it accepts no more tasks",
        "join() returned: 5 of 5 tasks submitted before close() are done: [1, 4, 9, 16, 25]",
    ]);
    // The blocking applies ran in the pool's 3 workers, never in the parent.
    let mut pids: Vec<u32> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("apply(whoami, "))
        .map(|l| l.rsplit(' ').next().and_then(|p| p.parse().ok()).unwrap_or(0))
        .collect();
    assert_eq!(pids.len(), 6, "six applies\n{}", out.all());
    pids.sort_unstable();
    pids.dedup();
    assert!(pids.len() <= 3 && !pids.contains(&parent) && !pids.contains(&0), "{pids:?}\n{}", out.all());
    // The callbacks ran in the parent, on the pool's thread, not on main.
    let callbacks = format!("callback in pid {parent} (the parent), thread ");
    assert_eq!(out.stdout.matches(&callbacks).count(), 4, "3 callbacks, 1 error callback\n{}", out.all());
    assert!(!out.stdout.contains(", thread main:"), "\n{}", out.all());
    for site in ["example.org", "rust-lang.org", "python.org"] {
        let line = format!(": parsed {site:?}, 7 words\n");
        assert_eq!(out.stdout.matches(&line).count(), 1, "{line}\n{}", out.all());
    }
}

#[test]
fn executor() {
    let out = run_clean("executor");
    out.assert_contains(&[
        "an executor of 2 workers",
        "as_completed yielded [",
        "the futures in submission order: [1, 2, 3, 4]",
        "12 results, in order",
        "result_timeout(100 ms) on a 600 ms task -> timed out; done() = false",
        "result_timeout(10 s) -> 7 (it kept running)",
        "divide(5) -> 20\n",
        "divide(0) -> error: the task panicked in pool worker pid ",
        ": attempt to divide by zero",
        "divide(20) -> 5\n",
        "the executor still works: divide(4) -> 25",
        "it waits in the queue, running() = false",
        "cancel() -> true; cancelled() = true",
        "its result() -> error: the task was cancelled",
        "the two running tasks finished: [1, 2]",
        "shutdown(wait = true) returned with 3 of 3 submitted tasks done",
        "submit after shutdown -> the pool is closed or terminated: it accepts no more tasks",
        "dropping a second executor waited too: 3 of 3 tasks done, results [1, 2, 3]",
    ]);
    assert_eq!(out.stdout.matches("as_completed: task ").count(), 4, "each future once\n{}", out.all());
    out.assert_contains(&[
        "items 1..=4: [1, 4, 9, 16], all in worker pid ",
        "items 5..=8: [25, 36, 49, 64], all in worker pid ",
        "items 9..=12: [81, 100, 121, 144], all in worker pid ",
    ]);
}

#[test]
fn echo_server() {
    let out = run_clean("echo_server");
    out.assert_contains(&[
        "echo server listening on 127.0.0.1:",
        "-- one process per connection: 3 clients --",
        "3 connections, 3 handler processes, each used once",
        "served 21 connections in ",
    ]);
    assert_eq!(out.stdout.matches(": forked handler pid ").count(), 3, "\n{}", out.all());
    assert_eq!(out.stdout.matches(" echoed 51 bytes to client port ").count(), 3, "\n{}", out.all());
    assert_eq!(out.stdout.matches(", then exited (exit code 0)\n").count(), 3, "\n{}", out.all());
    assert_eq!(out.stdout.matches("; got its 3 lines back: true\n").count(), 21, "every client\n{}", out.all());
    // The parent accepts, a pool worker serves (the descriptor travels with
    // the task), under each start method.
    for method in ["fork", "spawn", "forkserver"] {
        let part = format!("-- a pool of 4 workers, start method {method}: 6 clients --\n");
        let at = out.stdout.find(&part).unwrap_or_else(|| panic!("no {method} part\n{}", out.all()));
        let rest = &out.stdout[at + part.len()..];
        let text = &rest[..rest.find("\n-- ").unwrap_or(rest.len())];
        assert!(
            text.contains("accepted 6 connections; each went to the pool with apply_async(serve, Fd::new(conn))"),
            "{method}\n{}",
            out.all()
        );
        for n in 1..=6 {
            assert!(text.contains(&format!("connection {n}: client ")), "{method}: connection {n}\n{}", out.all());
        }
        let after = |prefix: &str| -> u32 {
            let tail = &text[text.find(prefix).unwrap_or_else(|| panic!("{method}: no {prefix:?}\n{}", out.all()))
                + prefix.len()..];
            tail.split(|c: char| !c.is_ascii_digit()).next().and_then(|n| n.parse().ok()).unwrap_or(u32::MAX)
        };
        assert!(after("6 connections served by ") <= 4, "{method}\n{}", out.all());
        assert!(after("; at most ") <= 4, "{method}: never more connections than workers\n{}", out.all());
        let waited = text.lines().find_map(|l| l.strip_suffix(" connections waited their turn in the task queue"));
        let waited: u32 = waited.and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("no wait count\n{}", out.all()));
        assert!(waited >= 2, "{method}: 6 connections, 4 workers: at least 2 wait\n{}", out.all());
    }
}

#[test]
fn manager() {
    let out = run_clean("manager");
    out.assert_contains(&[
        "manager server: pid ",
        "worker 0: 3 words\nworker 1: 3 words\nworker 2: 3 words\nworker 3: 3 words\n",
        "merged dict (12 entries):\n  apple    530\n  banana   609\n",
        "  lime     423\n",
        "counters: 12 words, 58 letters",
        "manager stopped; a proxy now says: the manager's server process is gone",
    ]);
}

#[test]
fn manager_objects() {
    let out = run_clean("manager_objects");
    out.assert_contains(&[
        "label: squares\nworkers done: 4\nslots: [3, 3, 3, 3]\n",
        "w0: [0, 1, 4]\nw1: [0, 1, 4]\nw2: [0, 1, 4]\nw3: [0, 1, 4]\n",
        "cache hits: 9\n",
        "reading a string field as a number: ",
    ]);
}
