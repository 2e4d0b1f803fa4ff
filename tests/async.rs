//! The async twins across real processes, from three executors: a tokio
//! multi-thread runtime, a tokio current-thread runtime and
//! `futures::executor::block_on` (and smol's executor in one test). Peers that die during an await,
//! cancellation (a dropped pending future loses no item and sends nothing
//! half), ten thousand tasks awaiting at once, and the CPU time of a
//! process awaiting an idle queue.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use shmproc::channel::{Receiver, RecvError, SendError, Sender};
use shmproc::{Connection, Event, GetError, JoinableQueue, Pipe, Process, Queue};

#[path = "common/executors.rs"]
mod executors;

use executors::{EXECS, HANG_GUARD, run};

fn produce((q, n): (Queue<u64>, u64)) {
    for i in 0..n {
        q.put(i).expect("put");
    }
}

fn consume((q, n): (Queue<u64>, u64)) -> u64 {
    (0..n).map(|_| q.get().expect("get")).sum()
}

fn send_all((tx, n): (Sender<u64>, u64)) {
    for i in 0..n {
        tx.send(i).expect("send");
    }
}

fn echo(conn: Connection) {
    while let Ok(v) = conn.recv::<u64>() {
        if conn.send(&(v + 1)).is_err() {
            return;
        }
    }
}

fn echo_bytes(conn: Connection) {
    while let Ok(v) = conn.recv_bytes() {
        if conn.send_bytes(&v).is_err() {
            return;
        }
    }
}

fn hold_then_exit((_tx, started): (Sender<u64>, Event)) {
    started.set();
    std::thread::sleep(Duration::from_secs(3600));
}

fn hold_conn_forever((_conn, started): (Connection, Event)) {
    started.set();
    std::thread::sleep(Duration::from_secs(3600));
}

fn hold_queue_forever((q, started): (Queue<u64>, Event)) {
    // Registers as a producer (a put), then waits to be killed.
    q.put(0).expect("put");
    started.set();
    std::thread::sleep(Duration::from_secs(3600));
}

fn add_one(x: u64) -> u64 {
    x + 1
}

fn done_items((q, n): (JoinableQueue<u64>, u64)) {
    for _ in 0..n {
        q.get().expect("get");
        q.task_done().expect("done");
    }
}

#[test]
fn queue_get_and_put_async_across_processes() {
    for exec in EXECS {
        let q = Queue::<u64>::new(4).expect("queue");
        let n = 500;
        // This process counts as a consumer from here on (a side's
        // processes register with their first call): were the consumer
        // child done before this side's first get, a full queue with no
        // live consumer would rightly refuse a put with Disconnected.
        assert!(q.try_get().is_err());
        let mut producer = Process::spawn(produce, (q.clone(), n)).expect("producer");
        let mut consumer = Process::spawn(consume, (q.clone(), n)).expect("consumer");
        let q2 = q.clone();
        let sum = run(exec, async move {
            // Puts and gets at once (the consumer child may be done
            // before this side has put everything).
            let puts = async {
                for i in 0..n {
                    q2.put_async(1000 + i).await.expect("put_async");
                }
            };
            let gets = async {
                let mut got = 0;
                for _ in 0..n {
                    got += q2.get_async().await.expect("get_async");
                }
                got
            };
            futures::join!(puts, gets).1
        });
        producer.join().expect("producer");
        let child_sum = consumer.join().expect("consumer");
        let all: u64 = (0..n).sum::<u64>() + (1000..1000 + n).sum::<u64>();
        assert_eq!(sum + child_sum, all, "{exec:?}");
    }
}

#[test]
fn channel_send_recv_async_and_stream_across_processes() {
    for exec in EXECS {
        let (tx, rx) = shmproc::channel::<u64>(8).expect("channel");
        let n = 300;
        let mut child = Process::spawn(send_all, (tx.clone(), n)).expect("child");
        let got = run(exec, async move {
            // Sends and receives at once: the child may have filled the
            // channel before this side's send.
            let send = async move {
                tx.send_async(n).await.expect("send_async");
            };
            let receive = async move {
                let first = rx.recv_async().await.expect("recv_async");
                let mut rx = rx;
                let mut rest = Vec::new();
                while let Some(item) = rx.next().await {
                    rest.push(item.expect("item"));
                }
                (first, rest)
            };
            futures::join!(send, receive).1
        });
        child.join().expect("child");
        let mut all: Vec<u64> = std::iter::once(got.0).chain(got.1).collect();
        all.sort_unstable();
        assert_eq!(all, (0..=n).collect::<Vec<_>>(), "{exec:?}: every item once, then the end");
    }
}

#[test]
fn connection_async_round_trips_across_processes() {
    for exec in EXECS {
        let (a, b) = Pipe::new().expect("pipe");
        let (c, d) = Pipe::new().expect("pipe");
        let mut child = Process::spawn(echo, b).expect("child");
        let mut child2 = Process::spawn(echo_bytes, d).expect("child");
        run(exec, async move {
            for i in 0..200u64 {
                a.send_async(&i).await.expect("send_async");
                assert_eq!(a.recv_async::<u64>().await.expect("recv_async"), i + 1);
                c.send_bytes_async(&i.to_le_bytes()).await.expect("send_bytes_async");
                assert_eq!(c.recv_bytes_async().await.expect("recv_bytes_async"), i.to_le_bytes());
            }
            // A message larger than the pipe's buffer travels whole.
            let big = vec![7u8; 1 << 20];
            c.send_bytes_async(&big).await.expect("big send");
            assert_eq!(c.recv_bytes_async().await.expect("big recv"), big);
            a.close();
            c.close();
        });
        child.join().expect("child");
        child2.join().expect("child2");
    }
}

#[test]
fn join_async_and_joinable_queue_join_async() {
    for exec in EXECS {
        let mut p = Process::spawn(add_one, 41).expect("child");
        let q = JoinableQueue::<u64>::new(0).expect("queue");
        for i in 0..20 {
            q.put(i).expect("put");
        }
        let mut worker = Process::spawn(done_items, (q.clone(), 20)).expect("worker");
        let (r, joined) = run(exec, async move {
            let r = p.join_async().await.expect("join_async");
            let joined = q.join_async().await;
            (r, joined)
        });
        assert_eq!(r, 42, "{exec:?}");
        joined.expect("all done");
        worker.join().expect("worker");
    }
}

#[test]
fn a_peer_killed_during_an_await_gives_disconnected() {
    for exec in EXECS {
        // A typed channel: its only sender's process is killed.
        let (tx, rx) = shmproc::channel::<u64>(1).expect("channel");
        let started = Event::new().expect("event");
        let child = Process::spawn(hold_then_exit, (tx, started.clone())).expect("child");
        started.wait_timeout(HANG_GUARD).expect("child started");
        let killer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            child.kill().expect("kill");
            child
        });
        let got = run(exec, async move { rx.recv_async().await });
        assert!(matches!(got, Err(RecvError::Disconnected)), "{exec:?}: {got:?}");
        let mut child = killer.join().expect("killer");
        let _ = child.join();

        // A connection: the other end's only holder is killed.
        let (a, b) = Pipe::new().expect("pipe");
        let started = Event::new().expect("event");
        let child = Process::spawn(hold_conn_forever, (b, started.clone())).expect("child");
        started.wait_timeout(HANG_GUARD).expect("child started");
        let killer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            child.kill().expect("kill");
            child
        });
        let got = run(exec, async move { a.recv_async::<u64>().await });
        assert!(matches!(got, Err(shmproc::RecvError::Disconnected)), "{exec:?}: {got:?}");
        let mut child = killer.join().expect("killer");
        let _ = child.join();

        // A queue: its only producer is killed after one item.
        let q = Queue::<u64>::new(0).expect("queue");
        let started = Event::new().expect("event");
        let child = Process::spawn(hold_queue_forever, (q.clone(), started.clone())).expect("child");
        started.wait_timeout(HANG_GUARD).expect("child started");
        let killer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            child.kill().expect("kill");
            child
        });
        let got = run(exec, async move {
            let first = q.get_async().await;
            let second = q.get_async().await;
            (first, second)
        });
        assert_eq!(got.0.expect("the item put before the death"), 0);
        assert!(matches!(got.1, Err(GetError::Disconnected)), "{exec:?}: {:?}", got.1);
        let mut child = killer.join().expect("killer");
        let _ = child.join();
    }
}

#[test]
fn a_dropped_pending_receive_loses_no_item_and_a_dropped_send_sends_nothing_half() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
    rt.block_on(async {
        // Receives cancelled by a timeout while items arrive: every item
        // is received exactly once by a later receive.
        let (tx, rx) = shmproc::channel::<u64>(4).expect("channel");
        let n = 2000u64;
        let producer = std::thread::spawn(move || {
            for i in 0..n {
                tx.send(i).expect("send");
                if i % 64 == 0 {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        });
        let mut got = Vec::new();
        let guard = Instant::now() + HANG_GUARD;
        while got.len() < n as usize && Instant::now() < guard {
            match tokio::time::timeout(Duration::from_micros(50), rx.recv_async()).await {
                Ok(Ok(v)) => got.push(v),
                Ok(Err(e)) => panic!("{e:?}"),
                Err(_) => {} // cancelled while pending
            }
        }
        producer.join().expect("producer");
        assert_eq!(got, (0..n).collect::<Vec<_>>(), "in order, none lost, none twice");

        // Sends cancelled while the queue is full: each item is either
        // received whole or never sent.
        let q = Queue::<Vec<u8>>::new(1).expect("queue");
        let mut sent = Vec::new();
        for i in 0..200u8 {
            let item = vec![i; 1 + usize::from(i) * 3000]; // small and spilled items
            let r = tokio::time::timeout(Duration::from_micros(20), q.put_async(item)).await;
            if matches!(r, Ok(Ok(()))) {
                sent.push(i);
            }
            if i % 2 == 0 {
                // Make room now and then (the receiver is this task).
                if let Ok(v) = q.try_get() {
                    assert!(v.iter().all(|&b| b == v[0]) && v.len() == 1 + usize::from(v[0]) * 3000, "whole");
                    sent.retain(|&s| s != v[0]);
                }
            }
        }
        while let Ok(v) = q.try_get() {
            assert!(v.iter().all(|&b| b == v[0]) && v.len() == 1 + usize::from(v[0]) * 3000, "whole");
            sent.retain(|&s| s != v[0]);
        }
        assert!(sent.is_empty(), "every item whose put completed was received: {sent:?}");
    });
}

#[test]
fn ten_thousand_tasks_await_at_once() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
    rt.block_on(async {
        let (tx, rx) = shmproc::channel::<u64>(64).expect("channel");
        let n = 10_000u64;
        let total = std::sync::Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..n {
            let (rx, total) = (rx.clone(), total.clone());
            tasks.push(tokio::spawn(async move {
                let v = rx.recv_async().await.expect("recv");
                total.fetch_add(v, Ordering::Relaxed);
            }));
        }
        let mut child = Process::spawn(send_all, (tx.clone(), n)).expect("child");
        for t in tasks {
            tokio::time::timeout(HANG_GUARD, t).await.expect("hang guard").expect("task");
        }
        child.join().expect("child");
        assert_eq!(total.load(Ordering::Relaxed), (0..n).sum::<u64>());
    });
}

/// The process's CPU time (every thread).
fn cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// In a child of its own (the test harness's other threads would count):
/// awaits an idle queue for a second on a tokio runtime; the CPU time the
/// process used meanwhile and the wall time, in nanoseconds.
fn await_idle_queue(q: Queue<u64>) -> (u64, u64) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt");
    let waiter = rt.spawn(async move { q.get_async().await });
    // Let the waiter register (its first poll) and the service start.
    std::thread::sleep(Duration::from_millis(200));
    let (wall, cpu) = (Instant::now(), cpu_time());
    std::thread::sleep(Duration::from_secs(1));
    let used = cpu_time() - cpu;
    let elapsed = wall.elapsed();
    waiter.abort();
    (used.as_nanos() as u64, elapsed.as_nanos() as u64)
}

#[test]
fn awaiting_an_idle_queue_uses_no_measurable_cpu() {
    let q = Queue::<u64>::new(0).expect("queue");
    let (used, elapsed) = Process::spawn(await_idle_queue, q).expect("child").join().expect("child");
    let (used, elapsed) = (Duration::from_nanos(used), Duration::from_nanos(elapsed));
    // A busy poller would use about `elapsed` of CPU; the liveness
    // wake-ups (a few in a second) and the runtime's idle threads use
    // well under a twentieth of it.
    assert!(used < elapsed / 20, "{used:?} of CPU in {elapsed:?} awaiting an idle queue");
    eprintln!("awaiting an idle queue for {elapsed:?} used {used:?} of CPU");
}

#[test]
fn send_async_to_a_closed_pipe_and_dropped_receivers_fail_with_the_item() {
    let (tx, rx) = shmproc::channel::<String>(1).expect("channel");
    drop(rx);
    let err = futures::executor::block_on(tx.send_async("x".into())).unwrap_err();
    assert!(matches!(&err, SendError::Disconnected(s) if s == "x"), "{err:?}");
    let (a, b) = Pipe::new().expect("pipe");
    b.close();
    assert!(matches!(futures::executor::block_on(a.send_async(&1u8)), Err(shmproc::SendError::Disconnected(()))));
    let _: Receiver<u8> = shmproc::channel::<u8>(1).expect("channel").1;
}

#[test]
fn futures_are_send() {
    fn is_send<T: Send>(_: &T) {}
    let q = Queue::<u64>::new(1).expect("queue");
    is_send(&q.get_async());
    is_send(&q.put_async(1));
    let (tx, rx) = shmproc::channel::<u64>(1).expect("channel");
    is_send(&tx.send_async(1));
    is_send(&rx.recv_async());
    let (a, _b) = Pipe::new().expect("pipe");
    is_send(&a.recv_async::<u64>());
    is_send(&a.send_async(&1u64));
    is_send(&a.recv_bytes_async());
    let jq = JoinableQueue::<u64>::new(1).expect("queue");
    is_send(&jq.join_async());
}

fn set_later((ev, ms): (Event, u64)) {
    std::thread::sleep(Duration::from_millis(ms));
    ev.set();
}

fn send_later((conn, ms): (Connection, u64)) {
    std::thread::sleep(Duration::from_millis(ms));
    conn.send(&"late").expect("send");
}

fn sleep_forever(_: ()) {
    std::thread::sleep(Duration::from_secs(3600));
}

#[test]
fn wait_over_a_mix_of_objects_with_a_timeout_and_a_dead_process() {
    use shmproc::connection::{Waitable, wait};
    let (a, b) = Pipe::new().expect("pipe");
    let q = Queue::<u64>::new(0).expect("queue");
    let (tx, rx) = shmproc::channel::<u64>(4).expect("channel");
    let ev = Event::new().expect("event");
    let sleeper = Process::spawn(sleep_forever, ()).expect("sleeper");

    // Nothing ready: the timeout ends the wait with no index.
    let objects: [&dyn Waitable; 5] = [&b, &q, &rx, &ev, &sleeper];
    assert!(wait(&objects, Some(Duration::from_millis(20))).expect("wait").is_empty());
    assert!(objects.iter().all(|o| !o.is_ready().expect("is_ready")));

    // A dead process among them: killed while we wait.
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        sleeper.kill().expect("kill");
        sleeper
    });
    let got = wait(&[&b, &q, &rx, &ev], Some(Duration::from_millis(100))).map(|v| v.is_empty());
    assert!(got.expect("wait"), "nothing else becomes ready");
    let mut sleeper = killer.join().expect("killer");
    assert_eq!(wait(&[&b, &q, &rx, &ev, &sleeper], None).expect("wait"), [4], "the dead process is ready");
    let _ = sleeper.join();

    // Each kind becomes ready from another process.
    let mut setter = Process::spawn(set_later, (ev.clone(), 20)).expect("setter");
    assert_eq!(wait(&[&b, &q, &rx, &ev], Some(HANG_GUARD)).expect("wait"), [3]);
    setter.join().expect("setter");
    ev.clear();
    // The only holder of the other end is the child: ready with its
    // message, and ready again once it exited (a receive ends at once).
    let mut sender = Process::spawn(send_later, (a, 20)).expect("sender");
    assert_eq!(wait(&[&b, &q, &rx, &ev], Some(HANG_GUARD)).expect("wait"), [0]);
    assert_eq!(b.recv::<String>().expect("recv"), "late");
    sender.join().expect("sender");
    assert_eq!(wait(&[&q, &rx, &ev, &b], Some(HANG_GUARD)).expect("wait"), [3]);
    assert!(matches!(b.recv::<String>(), Err(shmproc::RecvError::Disconnected)));
    let (a, b) = Pipe::new().expect("pipe");
    let mut child = Process::spawn(send_all, (tx.clone(), 1)).expect("child");
    assert_eq!(wait(&[&b, &q, &rx, &ev], Some(HANG_GUARD)).expect("wait"), [2]);
    child.join().expect("child");
    assert_eq!(rx.recv().expect("recv"), 0);
    let mut producer = Process::spawn(produce, (q.clone(), 1)).expect("producer");
    assert_eq!(wait(&[&b, &q, &rx, &ev], Some(HANG_GUARD)).expect("wait"), [1]);
    producer.join().expect("producer");
    assert_eq!(q.get().expect("get"), 0);
    // Its only producer exited: ready (a get ends at once).
    assert_eq!(wait(&[&b, &q, &ev], Some(HANG_GUARD)).expect("wait"), [1]);
    assert!(matches!(q.get(), Err(GetError::Disconnected)));

    // Every sender gone: the receiver is ready (a receive ends at once).
    drop(tx);
    assert_eq!(wait(&[&b, &q, &rx, &ev], Some(HANG_GUARD)).expect("wait"), [2]);
    // The other end closed: the connection is ready.
    a.close();
    assert_eq!(wait(&[&b, &q, &ev], Some(HANG_GUARD)).expect("wait"), [0]);
    // Closed at this end: an error, not a wait.
    b.close();
    assert!(matches!(wait(&[&b], None), Err(shmproc::Error::Closed)));
}

#[test]
fn wait_async_from_every_executor() {
    for exec in EXECS {
        let q = Queue::<u64>::new(0).expect("queue");
        let ev = Event::new().expect("event");
        let mut setter = Process::spawn(set_later, (ev.clone(), 20)).expect("setter");
        let (q2, ev2) = (q.clone(), ev.clone());
        let ready = run(exec, async move {
            let none = shmproc::connection::wait_async(&[&q2, &ev2], Some(Duration::from_millis(1))).await;
            let some = shmproc::connection::wait_async(&[&q2, &ev2], None).await;
            (none.expect("wait"), some.expect("wait"))
        });
        assert!(ready.0.is_empty() || ready.0 == [1], "{exec:?}: {:?}", ready.0);
        assert_eq!(ready.1, [1], "{exec:?}");
        setter.join().expect("setter");
    }
}

#[test]
fn under_smol_too() {
    let q = Queue::<u64>::new(4).expect("queue");
    let (tx, rx) = shmproc::channel::<u64>(4).expect("channel");
    let mut producer = Process::spawn(produce, (q.clone(), 100)).expect("producer");
    let mut sender = Process::spawn(send_all, (tx, 100)).expect("sender");
    let ex = smol::Executor::new();
    let (from_queue, from_channel) = smol::block_on(ex.run(async {
        let a = ex.spawn(async move {
            let mut sum = 0;
            for _ in 0..100 {
                sum += q.get_async().await.expect("get_async");
            }
            sum
        });
        let b = ex.spawn(async move {
            let mut rx = rx;
            let mut sum = 0;
            while let Some(x) = rx.next().await {
                sum += x.expect("item");
            }
            sum
        });
        (a.await, b.await)
    }));
    assert_eq!((from_queue, from_channel), (4950, 4950));
    producer.join().expect("producer");
    sender.join().expect("sender");
}

fn typed_echo(end: shmproc::channel::Duplex<u64, u64>) {
    while let Ok(v) = end.recv() {
        if end.send(v * 2).is_err() {
            return;
        }
    }
}

#[test]
fn duplex_and_readable_async_across_processes() {
    for exec in EXECS {
        let (mine, theirs) = Pipe::typed::<u64, u64>().expect("typed pipe");
        let mut child = Process::spawn(typed_echo, theirs).expect("child");
        let (a, b) = Pipe::new().expect("pipe");
        let mut sender = Process::spawn(send_later, (a, 10)).expect("sender");
        run(exec, async move {
            for i in 0..100 {
                mine.send_async(i).await.expect("send_async");
                assert_eq!(mine.recv_async().await.expect("recv_async"), 2 * i);
            }
            drop(mine);
            b.readable_async().await.expect("readable");
            assert_eq!(b.recv::<String>().expect("recv"), "late");
            // The sender exits: readable again, and a receive ends at once.
            b.readable_async().await.expect("readable at the end");
            assert!(matches!(b.try_recv::<String>(), Err(shmproc::TryRecvError::Disconnected)));
        });
        child.join().expect("child");
        sender.join().expect("sender");
    }
}

fn nap(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

#[test]
fn wait_on_a_process_reaped_elsewhere_reports_it_ready() {
    let mut child = Process::spawn(nap, 1).expect("spawn");
    let pid = rustix::process::Pid::from_raw(child.pid() as i32).expect("pid");
    let reaped = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty()).expect("waitpid");
    assert!(reaped.is_some());
    let got = shmproc::connection::wait(&[&child], Some(HANG_GUARD)).expect("wait");
    assert_eq!(got, [0], "the exited (reaped) process is ready");
    assert!(child.join().is_err(), "join reports that the exit cannot be read");
}
