//! Descriptors inside messages: `shmproc::Fd` and `#[serde(with =
//! "shmproc::fd")]` in Process arguments and results, Queue items, typed
//! channel messages and Pipe messages (the parcel post), anonymous handles
//! inside Queue items, and what a killed receiver leaves behind.
//!
//! Each scenario runs inside a dedicated child started with Spawn: it is
//! single-threaded there (so the Fork start method is allowed) and has an
//! fd table of its own, so counting `/proc/self/fd` is not disturbed by the
//! other tests of this binary. The scenario itself starts its children with
//! each of the three start methods.
//!
//! Timing is never asserted: every wait has a generous hang guard only.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::time::Duration;

use shmproc::{Fd, JoinError, JoinableQueue, Lock, Pipe, Process, Queue, StartMethod};

#[path = "common/scenarios.rs"]
mod scenarios;
use scenarios::{GUARD, Outcome, check, e, each_method, open_fds};

// -- a TcpListener passed to a child that accepts ---------------------------

fn accept_and_greet(l: Fd<TcpListener>) -> u32 {
    let (mut conn, _) = l.accept().expect("accept");
    conn.write_all(b"hi").expect("write");
    7
}

fn listener_scenario(m: StartMethod) -> Outcome {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(e("bind"))?;
    let addr = listener.local_addr().map_err(e("addr"))?;
    let mut p = Process::builder().start_method(m).spawn(accept_and_greet, Fd::new(listener)).map_err(e("spawn"))?;
    let mut c = TcpStream::connect(addr).map_err(e("connect"))?;
    c.set_read_timeout(Some(GUARD)).map_err(e("timeout"))?;
    let mut b = [0u8; 2];
    c.read_exact(&mut b).map_err(e("read"))?;
    check(&b == b"hi", "greeting")?;
    check(p.join().map_err(e("join"))? == 7, "result")
}

#[test]
fn a_listener_passed_to_a_child_accepts() {
    // CPython: _TestPicklingConnections.test_pickling (a listener to a child)
    each_method(listener_scenario);
}

// -- a TcpStream through a Queue to a child that serves it (echo) ---------

#[derive(serde::Serialize, serde::Deserialize)]
struct Job {
    id: u32,
    #[serde(with = "shmproc::fd")]
    conn: TcpStream,
}

fn serve_from_queue(q: Queue<Job>) -> u32 {
    let mut job = q.get_timeout(GUARD).expect("get");
    let mut b = [0u8; 4];
    job.conn.read_exact(&mut b).expect("read");
    job.conn.write_all(&b).expect("echo");
    job.id
}

fn queue_echo_scenario(m: StartMethod) -> Outcome {
    let q = Queue::<Job>::new(0).map_err(e("queue"))?;
    let mut p = Process::builder().start_method(m).spawn(serve_from_queue, q.clone()).map_err(e("spawn"))?;
    let listener = TcpListener::bind("127.0.0.1:0").map_err(e("bind"))?;
    let mut client = TcpStream::connect(listener.local_addr().map_err(e("addr"))?).map_err(e("connect"))?;
    client.set_read_timeout(Some(GUARD)).map_err(e("timeout"))?;
    let (conn, _) = listener.accept().map_err(e("accept"))?;
    let before = open_fds();
    q.put(Job { id: 5, conn }).map_err(e("put"))?;
    // The item (and its `conn`) was consumed by `put`: the sender holds
    // one descriptor less, and no duplicate stays behind.
    check(open_fds() == before - 1, "the sender holds no extra descriptor after a put")?;
    client.write_all(b"ping").map_err(e("write"))?;
    let mut b = [0u8; 4];
    client.read_exact(&mut b).map_err(e("read"))?;
    check(&b == b"ping", "echo")?;
    check(p.join().map_err(e("join"))? == 5, "result")
}

#[test]
fn a_stream_accepted_here_is_served_by_a_child_through_a_queue() {
    // CPython: _TestPicklingConnections.test_access (a socket through a Queue)
    each_method(queue_echo_scenario);
}

// -- a File through a Pipe ---------------------------------------------------

fn read_file_from_pipe(end: shmproc::Connection) -> String {
    let mut f: Fd<std::fs::File> = end.recv().expect("recv");
    let mut s = String::new();
    f.read_to_string(&mut s).expect("read");
    s
}

fn pipe_file_scenario(m: StartMethod) -> Outcome {
    let path = std::env::temp_dir().join(format!("shmproc-fds-{}-{m:?}", std::process::id()));
    std::fs::write(&path, "contents").map_err(e("write"))?;
    let f = std::fs::File::open(&path).map_err(e("open"))?;
    let _ = std::fs::remove_file(&path);
    let (a, b) = Pipe::new().map_err(e("pipe"))?;
    let mut p = Process::builder().start_method(m).spawn(read_file_from_pipe, b).map_err(e("spawn"))?;
    let before = open_fds();
    a.send(&Fd::new(&f)).map_err(e("send"))?;
    check(open_fds() == before, "the sender holds no extra descriptor after a send")?;
    check(p.join().map_err(e("join"))? == "contents", "the child read the file")
}

#[test]
fn a_file_travels_through_a_pipe() {
    each_method(pipe_file_scenario);
}

// -- an OwnedFd through a typed channel --------------------------------------

fn write_into_received(rx: shmproc::channel::Receiver<Fd<OwnedFd>>) {
    let w = rx.recv_timeout(GUARD).expect("recv").into_inner();
    let mut w = std::fs::File::from(w);
    w.write_all(b"hello").expect("write");
}

fn channel_scenario(m: StartMethod) -> Outcome {
    let (tx, rx) = shmproc::channel::<Fd<OwnedFd>>(4).map_err(e("channel"))?;
    let mut p = Process::builder().start_method(m).spawn(write_into_received, rx).map_err(e("spawn"))?;
    let (mut r, w) = std::io::pipe().map_err(e("os pipe"))?;
    tx.send(Fd::new(OwnedFd::from(w))).map_err(e("send"))?;
    // EOF comes only once every write end is closed: the child's, and no
    // copy left in this process by the encoding.
    let mut got = String::new();
    r.read_to_string(&mut got).map_err(e("read"))?;
    check(got == "hello", "what the child wrote")?;
    p.join().map_err(e("join"))?;
    Ok(())
}

#[test]
fn an_owned_fd_travels_through_a_typed_channel() {
    each_method(channel_scenario);
}

// -- a Queue handle inside a Queue item --------------------------------------

fn answer_through_inner(q: Queue<Queue<u32>>) {
    let inner = q.get_timeout(GUARD).expect("get");
    inner.put(42).expect("put");
}

fn nested_queue_scenario(m: StartMethod) -> Outcome {
    let outer = Queue::<Queue<u32>>::new(0).map_err(e("queue"))?;
    let mut p = Process::builder().start_method(m).spawn(answer_through_inner, outer.clone()).map_err(e("spawn"))?;
    let inner = Queue::<u32>::new(0).map_err(e("queue"))?;
    outer.put(inner.clone()).map_err(e("put"))?;
    check(inner.get_timeout(GUARD).map_err(e("get"))? == 42, "the answer")?;
    p.join().map_err(e("join"))?;
    // And a typed channel's sender inside a Pipe message.
    let (a, b) = Pipe::new().map_err(e("pipe"))?;
    let (tx, rx) = shmproc::channel::<u8>(1).map_err(e("channel"))?;
    a.send(&tx).map_err(e("send"))?;
    drop(tx);
    let tx2: shmproc::channel::Sender<u8> = b.recv().map_err(e("recv"))?;
    tx2.send(9).map_err(e("send"))?;
    check(rx.recv().map_err(e("recv"))? == 9, "through the decoded sender")
}

#[test]
fn anonymous_handles_travel_inside_items_and_messages() {
    each_method(nested_queue_scenario);
}

// -- descriptors where they cannot travel ------------------------------------

fn refused_scenario(_: StartMethod) -> Outcome {
    let name = format!("t-fds-named-{}", std::process::id());
    let made = Queue::<Fd<std::fs::File>>::create(&name, 0).map_err(e("create"))?;
    let opened = Queue::<Fd<std::fs::File>>::open(&name).map_err(e("open"))?;
    let _ = shmproc::Segment::unlink(&name);
    let f = std::fs::File::open("/proc/self/exe").map_err(e("open exe"))?;
    let copy = f.try_clone().map_err(e("clone"))?;
    let before = open_fds();
    let err = opened.put(Fd::new(copy)).err().ok_or("a put by name succeeded")?;
    check(err.to_string().contains("descriptors travel only"), &format!("the error names why: {err}"))?;
    check(open_fds() == before, "nothing left behind by the refused put (the item came back)")?;
    drop(err);
    // The creator's handle has the socket.
    made.put(Fd::new(f)).map_err(e("put"))?;
    let got = made.get().map_err(e("get"))?;
    check(got.metadata().map_err(e("meta"))?.is_file(), "the file")?;
    Ok(())
}

#[test]
fn a_queue_opened_by_name_refuses_descriptors_with_a_clear_error() {
    let mut p =
        Process::builder().start_method(StartMethod::Spawn).spawn(refused_scenario, StartMethod::Spawn).expect("start");
    p.join().expect("join").expect("scenario");
}

// -- killed receivers --------------------------------------------------------

fn get_one(q: Queue<Fd<std::fs::File>>) {
    let _ = q.get();
}

fn killed_receiver_scenario(m: StartMethod) -> Outcome {
    let q = Queue::<Fd<std::fs::File>>::new(0).map_err(e("queue"))?;
    let f = std::fs::File::open("/proc/self/exe").map_err(e("open"))?;
    // A receiver killed while blocked.
    let p = Process::builder().start_method(m).spawn(get_one, q.clone()).map_err(e("spawn"))?;
    // Killed whether it is still starting or already blocked in `get`:
    // both are cases of a receiver that never took an item (no timing is
    // asserted).
    std::thread::sleep(Duration::from_millis(50));
    p.kill().map_err(e("kill"))?;
    let mut p = p;
    let _ = p.join_timeout(GUARD);
    drop(p);
    let base = open_fds();
    for _ in 0..3 {
        q.put(Fd::new(f.try_clone().map_err(e("clone"))?)).map_err(e("put"))?;
    }
    check(open_fds() == base, "the sender holds nothing extra while items are in flight")?;
    // A receiver that takes one and exits with it.
    let mut p = Process::builder().start_method(m).spawn(get_one, q.clone()).map_err(e("spawn"))?;
    p.join_timeout(GUARD).map_err(e("join"))?;
    drop(p);
    // The next receivers are not confused.
    for _ in 0..2 {
        let got = q.get_timeout(GUARD).map_err(e("get"))?;
        check(got.metadata().map_err(e("meta"))?.is_file(), "a working descriptor")?;
    }
    check(q.is_empty(), "drained")?;
    check(open_fds() == base, "the sender leaks nothing")
}

#[test]
fn a_killed_receiver_leaks_nothing_and_confuses_no_one() {
    each_method(killed_receiver_scenario);
}

// -- descriptors in a Process result -----------------------------------------

fn open_a_pipe(_: ()) -> (Fd<std::fs::File>, Fd<OwnedFd>) {
    let (r, mut w) = std::io::pipe().expect("os pipe");
    w.write_all(b"from the child").expect("write");
    (Fd::new(std::fs::File::from(OwnedFd::from(r))), Fd::new(OwnedFd::from(w)))
}

fn result_scenario(m: StartMethod) -> Outcome {
    let mut p = Process::builder().start_method(m).spawn(open_a_pipe, ()).map_err(e("spawn"))?;
    let (mut r, w) = p.join().map_err(e("join"))?;
    // The result carried descriptors: it was given to the first join.
    match p.join() {
        Err(JoinError::Failed(shmproc::Error::InvalidArgument { .. })) => {}
        Err(other) => return Err(format!("a second join: {other}")),
        Ok(_) => return Err("a second join decoded the descriptors again".into()),
    }
    // The value owns the descriptors: dropping the write end leaves none
    // open (the `Process` keeps no copy), so the read sees EOF while the
    // `Process` lives.
    drop(w);
    let mut got = String::new();
    r.read_to_string(&mut got).map_err(e("read"))?;
    check(got == "from the child", "what the child wrote before returning the descriptors")?;
    drop(p);
    // A closure under Fork returns one too.
    if m == StartMethod::Fork {
        let mut p =
            Process::fork(|| Fd::new(std::fs::File::open("/proc/self/exe").expect("open"))).map_err(e("fork"))?;
        check(p.join().map_err(e("join"))?.metadata().map_err(e("meta"))?.is_file(), "the file")?;
    }
    Ok(())
}

#[test]
fn descriptors_come_back_in_a_process_result() {
    each_method(result_scenario);
}

// -- an anonymous handle in a Process result is given once --------------------

fn make_a_lock(_: ()) -> Lock {
    Lock::new().expect("lock")
}

fn returned_lock_scenario(m: StartMethod) -> Outcome {
    let mut p = Process::builder().start_method(m).spawn(make_a_lock, ()).map_err(e("spawn"))?;
    let lock = p.join().map_err(e("join"))?;
    // Decoding the cell again would release the one reference lent for
    // this process a second time: the second join is an error instead.
    match p.join() {
        Err(JoinError::Failed(shmproc::Error::InvalidArgument { .. })) => {}
        Err(other) => return Err(format!("a second join: {other}")),
        Ok(_) => return Err("a second join decoded the lock again".into()),
    }
    lock.acquire().map_err(e("acquire"))?;
    // Had the cell been freed, new locks would reuse it (and be held).
    let fresh = (0..16).map(|_| Lock::new()).collect::<Result<Vec<_>, _>>().map_err(e("new lock"))?;
    for f in &fresh {
        f.try_acquire().map_err(e("a new lock is free while the returned one is held"))?;
        check(lock.is_locked(), "the returned lock is still held")?;
        f.release().map_err(e("release a new lock"))?;
    }
    lock.release().map_err(e("release"))?;
    drop(p);
    Ok(())
}

#[test]
fn an_anonymous_lock_in_a_result_is_given_to_the_first_join_only() {
    // CPython: none (a Python result is a pickled copy; here the handle
    // shares the child's lock).
    each_method(returned_lock_scenario);
}

// -- what a live Process holds in the parent ----------------------------------

fn identity(x: u32) -> u32 {
    x
}

fn live_handles_scenario(m: StartMethod) -> Outcome {
    let start = || Process::builder().start_method(m).spawn(identity, 7).map_err(e("spawn"));
    // The first start may open what every later one shares (the fork
    // server's socket, the launcher).
    let mut warm = start()?;
    check(warm.join().map_err(e("join"))? == 7, "the warm-up result")?;
    drop(warm);
    let before = open_fds();
    let mut live = Vec::new();
    for _ in 0..20 {
        let mut p = start()?;
        check(p.join().map_err(e("join"))? == 7, "a result")?;
        live.push(p);
    }
    let per = (open_fds() - before) as f64 / 20.0;
    // Each joined handle holds its pidfd, its channel segment and its end
    // of the result socket; the child's end was closed once it had it.
    check(per <= 3.0, &format!("{per} descriptors per live Process (at most 3 expected)"))?;
    drop(live);
    Ok(())
}

#[test]
fn a_live_process_holds_no_copy_of_the_childs_result_socket() {
    each_method(live_handles_scenario);
}

// -- many descriptors in flight ----------------------------------------------

/// More parcels than the socket holds at once (a few hundred): a producer
/// thread with timed puts and a consumer thread getting them all; nothing
/// hangs, everything arrives.
#[test]
fn more_descriptors_than_the_socket_holds_flow_through() {
    const N: usize = 600;
    let q = Queue::<Fd<std::fs::File>>::new(0).expect("queue");
    let producer = {
        let q = q.clone();
        std::thread::spawn(move || {
            for i in 0..N {
                let f = std::fs::File::open("/proc/self/exe").expect("open");
                q.put_timeout(Fd::new(f), GUARD).unwrap_or_else(|e| panic!("put {i}: {e}"));
            }
        })
    };
    for i in 0..N {
        let f = q.get_timeout(GUARD).unwrap_or_else(|e| panic!("get {i}: {e}"));
        assert!(f.metadata().expect("meta").is_file());
    }
    producer.join().expect("producer");
    assert!(q.is_empty());
}

// -- a handle without the socket ---------------------------------------------

/// A handle opened by name (it has no socket) stops at an item with
/// descriptors with a clear error and leaves it for a handle that has the
/// socket; an immediate shutdown from it still empties the queue, and
/// `join` returns.
#[test]
fn a_handle_opened_by_name_leaves_items_with_descriptors_to_others() {
    let name = format!("t-fds-byname-get-{}", std::process::id());
    let made = JoinableQueue::<Option<Fd<std::fs::File>>>::create(&name, 0).expect("create");
    let opened = JoinableQueue::<Option<Fd<std::fs::File>>>::open(&name).expect("open");
    let _ = shmproc::Segment::unlink(&name);
    let file = || Some(Fd::new(std::fs::File::open("/proc/self/exe").expect("open exe")));
    made.put(file()).expect("put");
    let err = opened.try_get().expect_err("no socket here");
    assert!(err.to_string().contains("opened by name"), "{err}");
    let got = made.get_timeout(GUARD).expect("the item stayed for the creator");
    assert!(got.is_some_and(|f| f.metadata().is_ok()));
    made.task_done().expect("done");
    made.put(file()).expect("put");
    made.put(None).expect("put");
    made.put(file()).expect("put");
    opened.shutdown(true).expect("shutdown");
    assert!(made.is_empty(), "nothing left behind");
    made.join_timeout(GUARD).expect("join returns");
}

// -- async sends carry descriptors too ------------------------------------

#[cfg(feature = "async")]
fn write_what_came(q: Queue<Fd<OwnedFd>>) {
    for _ in 0..3 {
        let w = q.get_timeout(GUARD).expect("get");
        std::fs::File::from(w.into_inner()).write_all(b"x").expect("write");
    }
}

#[cfg(feature = "async")]
fn async_scenario(m: StartMethod) -> Outcome {
    use futures::executor::block_on;
    let q = Queue::<Fd<OwnedFd>>::new(0).map_err(e("queue"))?;
    let mut p = Process::builder().start_method(m).spawn(write_what_came, q.clone()).map_err(e("spawn"))?;
    let base = open_fds();
    let (tx, rx) = shmproc::channel::<Fd<OwnedFd>>(4).map_err(e("channel"))?;
    let (a, b) = Pipe::new().map_err(e("pipe"))?;
    let mut readers = Vec::new();
    for i in 0..3 {
        let (r, w) = std::io::pipe().map_err(e("os pipe"))?;
        readers.push(r);
        let w = Fd::new(OwnedFd::from(w));
        // Through the queue to the child, or through a channel or a Pipe
        // to this process, which passes it on to the child.
        let w = match i {
            0 => w,
            1 => {
                block_on(tx.send_async(w)).map_err(e("send_async"))?;
                rx.recv().map_err(e("recv"))?
            }
            _ => {
                block_on(a.send_async(&w)).map_err(e("pipe send_async"))?;
                drop(w);
                b.recv::<Fd<OwnedFd>>().map_err(e("pipe recv"))?
            }
        };
        block_on(q.put_async(w)).map_err(e("put_async"))?;
    }
    for mut r in readers {
        let mut got = [0u8; 1];
        r.read_exact(&mut got).map_err(e("read"))?;
        check(&got == b"x", "the child wrote through each end")?;
    }
    p.join_timeout(GUARD).map_err(e("join"))?;
    drop((tx, rx, a, b));
    check(open_fds() == base, "nothing left open")
}

#[cfg(feature = "async")]
#[test]
fn async_sends_carry_descriptors() {
    each_method(async_scenario);
}

// -- named handles inside items travel by name --------------------------------

#[test]
fn a_named_queue_inside_an_item_travels_by_name_to_a_handle_opened_by_name() {
    let name = format!("t-fds-outer-{}", std::process::id());
    let inner_name = format!("t-fds-inner-{}", std::process::id());
    let made = Queue::<Queue<u32>>::create(&name, 0).expect("create");
    let opened = Queue::<Queue<u32>>::open(&name).expect("open");
    let inner = Queue::<u32>::create(&inner_name, 0).expect("create inner");
    // The creator's handle puts a named queue; a handle opened by name (it
    // has no descriptor socket) takes it: the item carries the name, not a
    // descriptor.
    made.put(inner.clone()).expect("put");
    let got = opened.get_timeout(GUARD).expect("a by-name handle takes an item holding a named queue");
    got.put(5).expect("put through the received handle");
    assert_eq!(inner.get_timeout(GUARD).expect("get"), 5);
    // An anonymous one still needs the socket: the by-name handle refuses
    // to put it, with the reason.
    let anonymous = Queue::<u32>::new(0).expect("new");
    let err = opened.put(anonymous).expect_err("an anonymous handle through a by-name queue");
    assert!(err.to_string().contains("anonymous") || err.to_string().contains("descriptor"), "{err}");
    for n in [&name, &inner_name] {
        let _ = shmproc::Segment::unlink(n);
    }
}
