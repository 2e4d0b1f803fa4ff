//! Descriptors in pool tasks: `shmproc::Fd` (sockets, files, pipe ends) and
//! shmproc's own anonymous handles inside `Pool` and `ProcessPoolExecutor`
//! task arguments and results, one task at a time, in map chunks and
//! through `map_async` (whose chunks' results are joined), given once,
//! refused past the per-record limit, and leaked nowhere when a worker is
//! killed while it holds them.
//!
//! Each scenario runs inside a dedicated child started with Spawn: it is
//! single-threaded when it starts (so the Fork start method is allowed)
//! and has an fd table of its own, so counting `/proc/self/fd` is not
//! disturbed by the other tests of this binary. The scenario starts its
//! pool with each of the three start methods.
//!
//! Timing is never asserted: every wait has a generous hang guard only.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::OwnedFd;

use shmproc::{Error, Fd, Pool, ProcessPoolExecutor, Queue, StartMethod, TaskError};

#[path = "common/scenarios.rs"]
mod scenarios;
use scenarios::{GUARD, Outcome, check, e, each_method, open_fds};

fn pool(m: StartMethod) -> Result<Pool, String> {
    Pool::builder().processes(2).start_method(m).build().map_err(e("pool"))
}

/// A connected pair over loopback: (the accepted end, the client end).
fn connection(l: &TcpListener) -> Result<(TcpStream, TcpStream), String> {
    let client = TcpStream::connect(l.local_addr().map_err(e("addr"))?).map_err(e("connect"))?;
    client.set_read_timeout(Some(GUARD)).map_err(e("timeout"))?;
    let (conn, _) = l.accept().map_err(e("accept"))?;
    Ok((conn, client))
}

// -- the server pattern: the parent accepts, a worker serves ---------------

fn echo(conn: Fd<TcpStream>) -> u32 {
    let mut conn = conn.into_inner();
    let mut b = [0u8; 5];
    conn.read_exact(&mut b).expect("read");
    conn.write_all(&b).expect("echo");
    std::process::id()
}

fn server_scenario(m: StartMethod) -> Outcome {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(e("bind"))?;
    let pool = pool(m)?;
    let base = open_fds();
    for i in 0..6u8 {
        let (conn, mut client) = connection(&listener)?;
        let h = pool.apply_async(echo, Fd::new(conn)).map_err(e("apply_async"))?;
        client.write_all(&[i; 5]).map_err(e("write"))?;
        let mut b = [0u8; 5];
        client.read_exact(&mut b).map_err(e("read"))?;
        check(b == [i; 5], "the worker echoed what this client sent")?;
        check(h.get_timeout(GUARD).map_err(e("get"))? != std::process::id(), "served in a worker")?;
    }
    check(open_fds() == base, "the parent keeps no copy of any connection")
}

#[test]
fn a_worker_serves_a_connection_the_parent_accepted() {
    each_method(server_scenario);
}

// -- descriptors in map chunks and in results -------------------------------

/// Writes its index into the pipe end it got; gives back the index.
fn write_index(job: (u8, Fd<OwnedFd>)) -> u8 {
    let (i, w) = job;
    File::from(w.into_inner()).write_all(&[i]).expect("write");
    i
}

/// Makes a pipe, writes `i` into it and gives back its read end.
fn pipe_with(i: u8) -> Fd<File> {
    let (r, mut w) = std::io::pipe().expect("pipe");
    w.write_all(&[i]).expect("write");
    Fd::new(File::from(OwnedFd::from(r)))
}

fn read_one(f: &mut File) -> Result<u8, String> {
    let mut b = [0u8; 1];
    f.read_exact(&mut b).map_err(e("read"))?;
    Ok(b[0])
}

fn map_scenario(m: StartMethod) -> Outcome {
    let pool = pool(m)?;
    let base = open_fds();
    // Arguments: ten pipe write ends in chunks of four.
    let mut readers = Vec::new();
    let mut jobs = Vec::new();
    for i in 0..10u8 {
        let (r, w) = std::io::pipe().map_err(e("pipe"))?;
        readers.push(File::from(OwnedFd::from(r)));
        jobs.push((i, Fd::new(OwnedFd::from(w))));
    }
    let got = pool.map_chunked(write_index, jobs, 4).map_err(e("map"))?;
    check(got == (0..10).collect::<Vec<u8>>(), "map results in order")?;
    for (i, r) in readers.iter_mut().enumerate() {
        check(read_one(r)? == i as u8, "each worker wrote into its own pipe")?;
    }
    drop(readers);
    // Results: read ends made in the workers, through map, map_async (its
    // chunks' results joined) and imap.
    let from_map = pool.map_chunked(pipe_with, 0..7u8, 3).map_err(e("map results"))?;
    let from_async = pool.map_async_chunked(pipe_with, 0..7u8, 3).map_err(e("map_async"))?;
    let from_async = from_async.get_timeout(GUARD).map_err(e("map_async get"))?;
    let from_imap = pool.imap_chunked(pipe_with, 0..7u8, 2).map_err(e("imap"))?;
    let from_imap = from_imap.collect::<Result<Vec<_>, _>>().map_err(e("imap item"))?;
    for mut all in [from_map, from_async, from_imap] {
        for (i, f) in all.iter_mut().enumerate() {
            check(read_one(f)? == i as u8, "each result is its own worker's pipe")?;
        }
    }
    check(open_fds() == base, "nothing left open once the values are dropped")
}

#[test]
fn descriptors_travel_in_map_chunks_and_come_back_in_results() {
    each_method(map_scenario);
}

// -- given once; the executor; shmproc's own handles ------------------------

fn put_into(q: Queue<u32>) -> u32 {
    q.put(42).expect("put");
    7
}

fn once_scenario(m: StartMethod) -> Outcome {
    let pool = pool(m)?;
    let h = pool.apply_async(pipe_with, 9).map_err(e("apply_async"))?;
    let mut f = h.get_timeout(GUARD).map_err(e("get"))?;
    check(read_one(&mut f)? == 9, "the first get has the descriptor")?;
    match h.get() {
        Err(TaskError::Failed(Error::InvalidArgument { .. })) => {}
        Err(other) => return Err(format!("a second get: {other}")),
        Ok(_) => return Err("a second get decoded the descriptor again".into()),
    }
    // An anonymous queue as a task argument.
    let q = Queue::<u32>::new(0).map_err(e("queue"))?;
    check(pool.apply(put_into, q.clone()).map_err(e("apply"))? == 7, "task ran")?;
    check(q.get_timeout(GUARD).map_err(e("get"))? == 42, "the worker put into this process's queue")?;
    drop(pool);
    // The executor, both ways.
    let ex = ProcessPoolExecutor::builder().max_workers(2).start_method(m).build().map_err(e("executor"))?;
    let (r, w) = std::io::pipe().map_err(e("pipe"))?;
    let fut = ex.submit(write_index, (5, Fd::new(OwnedFd::from(w)))).map_err(e("submit"))?;
    check(fut.result_timeout(GUARD).map_err(e("result"))? == 5, "result")?;
    check(read_one(&mut File::from(OwnedFd::from(r)))? == 5, "written through the sent end")?;
    let mut f = ex.submit(pipe_with, 3).map_err(e("submit"))?.result_timeout(GUARD).map_err(e("result"))?;
    check(read_one(&mut f)? == 3, "a descriptor in an executor result")
}

#[test]
fn a_result_with_descriptors_is_given_once_and_handles_travel_too() {
    each_method(once_scenario);
}

// -- too many in one record ----------------------------------------------

fn count(fds: Vec<Fd<OwnedFd>>) -> usize {
    fds.len()
}

fn too_many_scenario(m: StartMethod) -> Outcome {
    let pool = pool(m)?;
    let base = open_fds();
    let file = File::open("/proc/self/exe").map_err(e("open"))?;
    let many = |n: usize| -> Result<Vec<Fd<OwnedFd>>, String> {
        (0..n).map(|_| file.try_clone().map(|f| Fd::new(OwnedFd::from(f))).map_err(e("clone"))).collect()
    };
    check(pool.apply(count, many(200)?).map_err(e("200"))? == 200, "200 descriptors in one task")?;
    match pool.apply(count, many(300)?) {
        Err(Error::Codec { message }) => check(message.contains("253"), "the error names the limit")?,
        Err(other) => return Err(format!("300 descriptors: {other}")),
        Ok(_) => return Err("300 descriptors in one record".into()),
    }
    // A map of many single descriptors is chunked to fit.
    let items = (0..150).map(|_| many(1)).collect::<Result<Vec<_>, _>>()?;
    let got = pool.map_chunked(count, items, 150).map_err(e("map"))?;
    check(got.len() == 150 && got.iter().all(|&n| n == 1), "every item")?;
    drop(file);
    check(open_fds() == base, "nothing leaked by the refused task")
}

#[test]
fn a_record_past_the_descriptor_limit_is_refused_and_maps_are_chunked_to_fit() {
    each_method(too_many_scenario);
}

// -- a worker killed while it holds descriptors ----------------------------

/// Tells the parent it runs (its pid through `ready`), then blocks reading
/// `conn` (which never gets anything).
fn hold(job: (Fd<OwnedFd>, Fd<TcpStream>)) -> u8 {
    let (ready, conn) = job;
    File::from(ready.into_inner()).write_all(&std::process::id().to_le_bytes()).expect("ready");
    let mut b = [0u8; 1];
    let _ = conn.into_inner().read(&mut b);
    b[0]
}

fn killed_scenario(m: StartMethod) -> Outcome {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(e("bind"))?;
    // A first pool starts what stays for later ones (the fork server).
    let first = pool(m)?;
    first.close();
    first.join().map_err(e("join"))?;
    drop(first);
    let base = open_fds();
    let pool = Pool::builder().processes(1).start_method(m).build().map_err(e("pool"))?;
    let (conn, mut client) = connection(&listener)?;
    let (r, w) = std::io::pipe().map_err(e("pipe"))?;
    let h = pool.apply_async(hold, (Fd::new(OwnedFd::from(w)), Fd::new(conn))).map_err(e("apply_async"))?;
    // Queued behind it.
    let (queued, queued_client) = connection(&listener)?;
    let (r2, w2) = std::io::pipe().map_err(e("pipe"))?;
    let later = pool.apply_async(hold, (Fd::new(OwnedFd::from(w2)), Fd::new(queued))).map_err(e("apply_async"))?;
    let mut pid = [0u8; 4];
    File::from(OwnedFd::from(r)).read_exact(&mut pid).map_err(e("ready"))?;
    let pid = rustix::process::Pid::from_raw(u32::from_le_bytes(pid) as i32).ok_or("pid")?;
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).map_err(e("kill"))?;
    match h.get_timeout(GUARD) {
        Err(shmproc::TaskTimeoutError::WorkerDied { .. }) => {}
        Err(other) => return Err(format!("the killed task: {other}")),
        Ok(_) => return Err("the killed task has a result".into()),
    }
    // The connection the dead worker held is closed for the client: no
    // process holds it any more.
    let mut b = [0u8; 1];
    check(client.read(&mut b).map_err(e("read"))? == 0, "EOF: the dead worker's copy was the last")?;
    pool.terminate().map_err(e("terminate"))?;
    pool.join().map_err(e("join"))?;
    let _ = later.get_timeout(GUARD);
    drop((pool, later, h, client, queued_client, r2));
    check(open_fds() == base, "nothing leaked in the parent")
}

#[test]
fn a_worker_killed_while_holding_descriptors_leaks_nothing() {
    each_method(killed_scenario);
}

// -- records too large for the queue (spilled) with descriptors -----------

/// Writes the payload's length into the pipe end; gives back a big payload
/// and a new pipe's read end holding one byte.
fn big_both_ways(job: (Vec<u8>, Fd<OwnedFd>)) -> (Vec<u8>, Fd<File>) {
    let (payload, w) = job;
    File::from(w.into_inner()).write_all(&(payload.len() as u32).to_le_bytes()).expect("write");
    (vec![9u8; 3 << 20], pipe_with(5))
}

fn spilled_scenario(m: StartMethod) -> Outcome {
    let pool = pool(m)?;
    let base = open_fds();
    let (r, w) = std::io::pipe().map_err(e("pipe"))?;
    let (big, mut f) =
        pool.apply(big_both_ways, (vec![1u8; 2 << 20], Fd::new(OwnedFd::from(w)))).map_err(e("apply"))?;
    let mut len = [0u8; 4];
    File::from(OwnedFd::from(r)).read_exact(&mut len).map_err(e("read"))?;
    check(u32::from_le_bytes(len) == 2 << 20, "the worker got the whole argument and the descriptor")?;
    check(big.len() == 3 << 20 && big.iter().all(|&b| b == 9), "the whole result")?;
    check(read_one(&mut f)? == 5, "the descriptor in the spilled result")?;
    drop(f);
    check(open_fds() == base, "nothing left open")
}

#[test]
fn spilled_records_carry_their_descriptors() {
    each_method(spilled_scenario);
}
