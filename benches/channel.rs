//! Typed channels between two processes, against `Queue<T>` (the same
//! engine without counted ends) and ipc-channel's `ipc::channel` (a Unix
//! socket per channel, serde with bincode), side by side in each group.
//!
//! One peer process (a `shmproc::Process` child) holds a `Sender<Blob>`, a
//! `Queue<Blob>` and an ipc-channel `IpcSender<Blob>` (connected through
//! an `IpcOneShotServer`); for each `iter_custom` call the parent sends it
//! a command and a count through a typed channel, and the peer sends that
//! many messages through the chosen way while the parent receives them.
//! The time includes the command, so every function pays the same
//! start-up. Every message carries its sequence number in its first 8
//! bytes and the parent checks each one.
//!
//! - `channel_64B_one_way`: 64-byte [`Blob`]s.
//! - `channel_16KiB_one_way`: 16 KiB blobs (inline in the channel's ring;
//!   ipc-channel sends them through its socket).
//!
//! While a group runs, the parent and the peer are pinned to two different
//! CPUs (`SHMPROC_BENCH_PIN=0` leaves placement to the scheduler). After
//! each group a summary line gives the three rates and the channel's
//! ratios to the other two.
//!
//! Run with `cargo bench --bench channel` (about 30 s).

#[path = "common/blob.rs"]
mod blob;
mod common;

use std::time::{Duration, Instant};

use blob::Blob;
use common::{Pinning, Recorder, measuring, stream_group, timed};
use ipc_channel::ipc::{IpcOneShotServer, IpcReceiver, IpcSender};
use serde::{Deserialize, Serialize};
use shmproc::channel::{Receiver, Sender};
use shmproc::{Process, Queue};

const SMALL: usize = 64;
const MEDIUM: usize = 16 * 1024;

fn blob(size: usize, seq: u64) -> Blob {
    let mut v = vec![0u8; size];
    v[..8].copy_from_slice(&seq.to_le_bytes());
    Blob(v)
}

fn check(b: &Blob, size: usize, seq: u64) {
    assert_eq!(b.0.len(), size, "message {seq}: length");
    assert_eq!(b.0[..8], seq.to_le_bytes(), "message {seq}: out of order or torn");
}

/// What the parent asks the peer: which way, the message size, how many.
#[derive(Serialize, Deserialize, Clone, Copy)]
enum Way {
    Channel,
    Queue,
    Ipc,
}

/// The peer's argument.
#[derive(Serialize, Deserialize)]
struct PeerArgs {
    commands: Receiver<(Way, usize, u64)>,
    channel: Sender<Blob>,
    queue: Queue<Blob>,
    ipc_server: String,
    cpu: Option<usize>,
}

/// The peer: pins itself, connects to the ipc-channel server, then sends
/// what each command asks for until the parent drops its command sender.
fn peer(args: PeerArgs) {
    if let Some(c) = args.cpu {
        let mut set = rustix::thread::CpuSet::new();
        set.set(c);
        let _ = rustix::thread::sched_setaffinity(None, &set);
    }
    let ipc = IpcSender::<Blob>::connect(args.ipc_server).expect("connect to the ipc-channel server");
    ipc.send(blob(SMALL, u64::MAX)).expect("hello");
    for cmd in &args.commands {
        let (way, size, n) = cmd.expect("command");
        let template = blob(size, 0).0;
        for seq in 0..n {
            let mut m = Blob(template.clone());
            m.0[..8].copy_from_slice(&seq.to_le_bytes());
            match way {
                Way::Channel => args.channel.send(m).map_err(drop).expect("channel send"),
                Way::Queue => args.queue.put(m).map_err(drop).expect("queue put"),
                Way::Ipc => ipc.send(m).expect("ipc send"),
            }
        }
    }
}

/// The parent's side of the peer.
struct Peer {
    commands: Option<Sender<(Way, usize, u64)>>,
    channel: Receiver<Blob>,
    queue: Queue<Blob>,
    ipc: IpcReceiver<Blob>,
    child: Process<()>,
}

impl Peer {
    fn start(cpu: Option<usize>) -> Peer {
        let (cmd_tx, cmd_rx) = shmproc::channel(4).expect("command channel");
        let (tx, rx) = shmproc::channel::<Blob>(1024).expect("channel");
        let queue = Queue::<Blob>::new(1024).expect("queue");
        let (server, name) = IpcOneShotServer::<Blob>::new().expect("ipc-channel server");
        let args = PeerArgs { commands: cmd_rx, channel: tx, queue: queue.clone(), ipc_server: name, cpu };
        let child = Process::spawn(peer, args).expect("start the peer");
        let (ipc, hello) = server.accept().expect("the peer connects");
        check(&hello, SMALL, u64::MAX);
        Peer { commands: Some(cmd_tx), channel: rx, queue, ipc, child }
    }

    fn run(&mut self, way: Way, size: usize, n: u64) -> Duration {
        let start = Instant::now();
        self.commands.as_ref().expect("open").send((way, size, n)).map_err(drop).expect("command");
        for seq in 0..n {
            let m = match way {
                Way::Channel => self.channel.recv().expect("channel recv"),
                Way::Queue => self.queue.get().expect("queue get"),
                Way::Ipc => self.ipc.recv().expect("ipc recv"),
            };
            check(&m, size, seq);
        }
        start.elapsed()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        drop(self.commands.take()); // the peer's loop ends
        if let Err(e) = self.child.join() {
            eprintln!("channel bench: the peer ended with {e}");
        }
    }
}

fn group(c: &mut criterion::Criterion, name: &'static str, size: usize) {
    let rec = Recorder::default();
    let pinning = Pinning::new();
    let mut peer = Peer::start(pinning.peer_cpu);
    let mut g = stream_group(c, name);
    timed(&mut g, &rec, "channel", |n| peer.run(Way::Channel, size, n));
    timed(&mut g, &rec, "queue", |n| peer.run(Way::Queue, size, n));
    timed(&mut g, &rec, "ipc_channel", |n| peer.run(Way::Ipc, size, n));
    g.finish();
    drop(peer);
    drop(pinning);
    if !measuring() {
        return;
    }
    let rate = |f: &str| rec.median(f).map(|s| 1.0 / s);
    if let (Some(ch), Some(q), Some(ipc)) = (rate("channel"), rate("queue"), rate("ipc_channel")) {
        println!(
            "{name}: channel {:.2} M msg/s, Queue {:.2} M msg/s, ipc-channel {:.3} M msg/s; \
             channel/Queue {:.2}x, channel/ipc-channel {:.1}x",
            ch / 1e6,
            q / 1e6,
            ipc / 1e6,
            ch / q,
            ch / ipc
        );
    }
}

fn groups(c: &mut criterion::Criterion) {
    group(c, "channel_64B_one_way", SMALL);
    group(c, "channel_16KiB_one_way", MEDIUM);
}

fn main() {
    let mut c = criterion::Criterion::default().without_plots().configure_from_args();
    groups(&mut c);
    c.final_summary();
}
