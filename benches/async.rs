//! The async twins between two processes, against tokio's `UnixStream` and
//! against the blocking calls, side by side in each group.
//!
//! One peer process (a `shmproc::Process` child) serves commands that the
//! parent sends through a typed channel:
//!
//! - `async_round_trip_64B`: the parent sends a 64-byte message and awaits
//!   the peer's echo, `n` times. `pipe_async` is `Connection::
//!   send_bytes_async` + `recv_bytes_async` on a tokio current-thread
//!   runtime; `tokio_unix` is `write_all` + `read_exact` on a tokio
//!   `UnixStream` on the same runtime (the peer echoes with blocking std
//!   calls on its end of the socket pair); `pipe_blocking` is
//!   `send_bytes` + `recv_bytes` on the same pipe. The peer's side is
//!   blocking in all three, so the figures differ by the parent's side.
//! - `async_queue_64B_one_way`: the peer puts `n` 64-byte items into a
//!   `Queue`; the parent takes them with `get_async` on the runtime
//!   (`queue_async`) or with `get` (`queue_blocking`).
//!
//! Every message carries its sequence number in its first 8 bytes and the
//! parent checks each one. While a group runs, the parent and the peer are
//! pinned to two different CPUs (`SHMPROC_BENCH_PIN=0` leaves placement to
//! the scheduler). After each group a summary line gives the figures and
//! the ratios the targets are stated in.
//!
//! Run with `cargo bench --bench async` (about 30 s).

#[path = "common/blob.rs"]
mod blob;
mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use blob::Blob;
use common::{Pinning, Recorder, measuring, stream_group, timed};
use serde::{Deserialize, Serialize};
use shmproc::channel::{Receiver, Sender};
use shmproc::{Connection, Pipe, Process, Queue};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SIZE: usize = 64;

fn stamp(msg: &mut [u8], seq: u64) {
    msg[..8].copy_from_slice(&seq.to_le_bytes());
}

fn check(msg: &[u8], seq: u64) {
    assert_eq!(msg.len(), SIZE, "message {seq}: length");
    assert_eq!(msg[..8], seq.to_le_bytes(), "message {seq}: out of order or torn");
}

/// What the parent asks the peer.
#[derive(Serialize, Deserialize, Clone, Copy)]
enum Way {
    /// Echo `n` messages on the pipe.
    PipeEcho,
    /// Echo `n` messages on the Unix socket.
    UnixEcho,
    /// Put `n` items into the queue.
    QueuePut,
}

/// The peer's argument (it connects to the parent's Unix socket by path).
#[derive(Serialize, Deserialize)]
struct PeerArgs {
    commands: Receiver<(Way, u64)>,
    conn: Connection,
    queue: Queue<Blob>,
    socket: String,
    cpu: Option<usize>,
}

fn peer(args: PeerArgs) {
    if let Some(c) = args.cpu {
        let mut set = rustix::thread::CpuSet::new();
        set.set(c);
        let _ = rustix::thread::sched_setaffinity(None, &set);
    }
    let mut unix = UnixStream::connect(&args.socket).expect("connect to the parent's socket");
    let mut buf = [0u8; SIZE];
    for cmd in &args.commands {
        let (way, n) = cmd.expect("command");
        for seq in 0..n {
            match way {
                Way::PipeEcho => {
                    let m = args.conn.recv_bytes().expect("pipe recv");
                    args.conn.send_bytes(&m).expect("pipe send");
                }
                Way::UnixEcho => {
                    unix.read_exact(&mut buf).expect("unix read");
                    unix.write_all(&buf).expect("unix write");
                }
                Way::QueuePut => {
                    let mut m = vec![0u8; SIZE];
                    stamp(&mut m, seq);
                    args.queue.put(Blob(m)).map_err(drop).expect("queue put");
                }
            }
        }
    }
}

/// The parent's side of the peer.
struct Peer {
    commands: Option<Sender<(Way, u64)>>,
    conn: Connection,
    unix: tokio::net::UnixStream,
    queue: Queue<Blob>,
    rt: tokio::runtime::Runtime,
    child: Process<()>,
    socket: std::path::PathBuf,
}

impl Peer {
    fn start(cpu: Option<usize>) -> Peer {
        let (cmd_tx, cmd_rx) = shmproc::channel(4).expect("command channel");
        let (mine, theirs) = Pipe::new().expect("pipe");
        let queue = Queue::<Blob>::new(1024).expect("queue");
        let socket = std::env::temp_dir().join(format!("shmproc-bench-async-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&socket);
        let listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind");
        let args = PeerArgs {
            commands: cmd_rx,
            conn: theirs,
            queue: queue.clone(),
            socket: socket.to_string_lossy().into_owned(),
            cpu,
        };
        let child = Process::spawn(peer, args).expect("start the peer");
        let (unix, _) = listener.accept().expect("the peer connects");
        unix.set_nonblocking(true).expect("nonblocking");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let unix = {
            let _entered = rt.enter();
            tokio::net::UnixStream::from_std(unix).expect("tokio UnixStream")
        };
        Peer { commands: Some(cmd_tx), conn: mine, unix, queue, rt, child, socket }
    }

    fn command(&self, way: Way, n: u64) {
        self.commands.as_ref().expect("open").send((way, n)).map_err(drop).expect("command");
    }

    fn pipe_async(&mut self, n: u64) -> Duration {
        let start = Instant::now();
        self.command(Way::PipeEcho, n);
        let conn = &self.conn;
        self.rt.block_on(async {
            let mut msg = vec![0u8; SIZE];
            for seq in 0..n {
                stamp(&mut msg, seq);
                conn.send_bytes_async(&msg).await.expect("send_bytes_async");
                check(&conn.recv_bytes_async().await.expect("recv_bytes_async"), seq);
            }
        });
        start.elapsed()
    }

    fn pipe_blocking(&mut self, n: u64) -> Duration {
        let start = Instant::now();
        self.command(Way::PipeEcho, n);
        let mut msg = vec![0u8; SIZE];
        for seq in 0..n {
            stamp(&mut msg, seq);
            self.conn.send_bytes(&msg).expect("send_bytes");
            check(&self.conn.recv_bytes().expect("recv_bytes"), seq);
        }
        start.elapsed()
    }

    fn tokio_unix(&mut self, n: u64) -> Duration {
        let start = Instant::now();
        self.command(Way::UnixEcho, n);
        let unix = &mut self.unix;
        self.rt.block_on(async {
            let mut msg = [0u8; SIZE];
            let mut back = [0u8; SIZE];
            for seq in 0..n {
                stamp(&mut msg, seq);
                unix.write_all(&msg).await.expect("write_all");
                unix.read_exact(&mut back).await.expect("read_exact");
                check(&back, seq);
            }
        });
        start.elapsed()
    }

    fn queue_async(&mut self, n: u64) -> Duration {
        let start = Instant::now();
        self.command(Way::QueuePut, n);
        let q = &self.queue;
        self.rt.block_on(async {
            for seq in 0..n {
                check(&q.get_async().await.expect("get_async").0, seq);
            }
        });
        start.elapsed()
    }

    fn queue_blocking(&mut self, n: u64) -> Duration {
        let start = Instant::now();
        self.command(Way::QueuePut, n);
        for seq in 0..n {
            check(&self.queue.get().expect("get").0, seq);
        }
        start.elapsed()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        drop(self.commands.take()); // the peer's loop ends
        if let Err(e) = self.child.join() {
            eprintln!("async bench: the peer ended with {e}");
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

fn round_trips(c: &mut criterion::Criterion) {
    let name = "async_round_trip_64B";
    let rec = Recorder::default();
    let pinning = Pinning::new();
    let mut peer = Peer::start(pinning.peer_cpu);
    let mut g = stream_group(c, name);
    timed(&mut g, &rec, "pipe_async", |n| peer.pipe_async(n));
    timed(&mut g, &rec, "tokio_unix", |n| peer.tokio_unix(n));
    timed(&mut g, &rec, "pipe_blocking", |n| peer.pipe_blocking(n));
    g.finish();
    drop(peer);
    drop(pinning);
    if !measuring() {
        return;
    }
    let us = |f: &str| rec.median(f).map(|s| s * 1e6);
    if let (Some(a), Some(u), Some(b)) = (us("pipe_async"), us("tokio_unix"), us("pipe_blocking")) {
        println!(
            "{name}: Connection async {a:.2} us, tokio UnixStream {u:.2} us, blocking Pipe {b:.2} us per round \
             trip; async is {:.1}x faster than tokio UnixStream (target 10x), {:.2}x the blocking Pipe's time",
            u / a,
            a / b
        );
    }
}

fn one_way(c: &mut criterion::Criterion) {
    let name = "async_queue_64B_one_way";
    let rec = Recorder::default();
    let pinning = Pinning::new();
    let mut peer = Peer::start(pinning.peer_cpu);
    let mut g = stream_group(c, name);
    timed(&mut g, &rec, "queue_async", |n| peer.queue_async(n));
    timed(&mut g, &rec, "queue_blocking", |n| peer.queue_blocking(n));
    g.finish();
    drop(peer);
    drop(pinning);
    if !measuring() {
        return;
    }
    let rate = |f: &str| rec.median(f).map(|s| 1.0 / s);
    if let (Some(a), Some(b)) = (rate("queue_async"), rate("queue_blocking")) {
        println!(
            "{name}: get_async {:.2} M msg/s, get {:.2} M msg/s; async/blocking {:.2}x (target 0.5x)",
            a / 1e6,
            b / 1e6,
            a / b
        );
    }
}

fn main() {
    let mut c = criterion::Criterion::default().without_plots().configure_from_args();
    round_trips(&mut c);
    one_way(&mut c);
    c.final_summary();
}
