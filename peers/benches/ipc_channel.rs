//! Round trips of 64 B and 1 MiB to a peer process and back: shmproc's
//! [`Pipe`] beside ipc-channel (0.23.1), in the criterion groups
//! `ipc_channel_64B_round_trip` and `ipc_channel_1MiB_round_trip`.
//!
//! - `shmproc_pipe`: `Connection::send_bytes` / `recv_bytes_into` on both
//!   sides (the peer echoes each message). At 64 B a default pipe (64 KiB
//!   per direction); at 1 MiB a pipe of 4 MiB per direction, so the
//!   message travels inline, as a user sending such messages would build
//!   it (`Pipe::builder().capacity(..)`).
//! - `ipc_bytes`: ipc-channel's `IpcBytesSender::send` /
//!   `IpcBytesReceiver::recv` (raw bytes through a Unix socket, no codec).
//! - `ipc_shared_memory` (1 MiB only): what ipc-channel's docs recommend
//!   for big payloads: the parent copies the message into a new
//!   `IpcSharedMemory::from_bytes` and sends it through an
//!   `IpcSender<IpcSharedMemory>` (the descriptor travels over the
//!   socket); the peer sends the same region back.
//!
//! Every message carries its sequence number in its first 8 bytes, which
//! the parent checks on its return. The peer is this binary re-executed
//! with `SHMPROC_BENCH_ROLE=peer`: it opens the parent's pipes by name,
//! makes the ipc-channel channels and hands the parent its ends through
//! an `IpcOneShotServer`; each `iter_custom` call sends it a command and
//! a count over its stdin (the time includes the command). Parent and peer
//! are pinned to two different CPUs while a group runs
//! (`SHMPROC_BENCH_PIN=0` turns that off). After each group a summary line
//! gives each round trip and shmproc's ratio to the best peer.
//!
//! Run with `cargo bench -p shmproc-peers --bench ipc_channel` (about 20 s).

#[path = "../../benches/common/mod.rs"]
mod common;

use std::io::Read;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{PeerProcess, Recorder, StreamFn};
use ipc_channel::ipc::{
    self, IpcBytesReceiver, IpcBytesSender, IpcOneShotServer, IpcReceiver, IpcSender, IpcSharedMemory,
};
use serde::{Deserialize, Serialize};
use shmproc::{Connection, Pipe};

const SMALL_PIPE_ENV: &str = "SHMPROC_BENCH_PIPE_SMALL";
const LARGE_PIPE_ENV: &str = "SHMPROC_BENCH_PIPE_LARGE";
const SERVER_ENV: &str = "SHMPROC_BENCH_IPC_SERVER";

const SMALL: usize = 64;
const LARGE: usize = 1 << 20;
/// The 1 MiB pipe's buffer per direction (messages up to half travel inline).
const LARGE_PIPE: usize = 4 << 20;

const CMD_PIPE_SMALL: u8 = b'p';
const CMD_PIPE_LARGE: u8 = b'P';
const CMD_BYTES: u8 = b'b';
const CMD_SHM: u8 = b'm';

const SMALL_GROUP: &str = "ipc_channel_64B_round_trip";
const LARGE_GROUP: &str = "ipc_channel_1MiB_round_trip";

fn main() {
    common::bench_main(peer_main, |c| {
        let small: [StreamFn<Peer>; 2] =
            [("shmproc_pipe", |p, n| p.pipe(true, n)), ("ipc_bytes", |p, n| p.bytes(SMALL, n))];
        common::stream_bench(c, SMALL_GROUP, Peer::start, &small, |rec| summary(rec, SMALL_GROUP));
        let large: [StreamFn<Peer>; 3] = [
            ("shmproc_pipe", |p, n| p.pipe(false, n)),
            ("ipc_bytes", |p, n| p.bytes(LARGE, n)),
            ("ipc_shared_memory", Peer::shm),
        ];
        common::stream_bench(c, LARGE_GROUP, Peer::start, &large, |rec| summary(rec, LARGE_GROUP));
    });
}

fn summary(rec: &Recorder, group: &str) -> Option<String> {
    let us = |f: &str| rec.median(f).map(|s| s * 1e6);
    let pipe = us("shmproc_pipe")?;
    let mut peers = vec![("ipc-channel bytes", us("ipc_bytes")?)];
    if let Some(shm) = us("ipc_shared_memory") {
        peers.push(("ipc-channel IpcSharedMemory", shm));
    }
    let list: Vec<String> = peers.iter().map(|(n, t)| format!("{n} {t:.2} us")).collect();
    let (best, t) = peers.iter().copied().min_by(|a, b| a.1.total_cmp(&b.1))?;
    Some(format!(
        "{group}: shmproc Pipe {pipe:.2} us, {}; shmproc/best peer ({best}) {:.2}x faster",
        list.join(", "),
        t / pipe
    ))
}

fn stamp(msg: &mut [u8], seq: u64) {
    msg[..8].copy_from_slice(&seq.to_le_bytes());
}

fn check(msg: &[u8], len: usize, seq: u64) {
    assert_eq!(msg.len(), len, "message {seq}: length");
    assert_eq!(msg[..8], seq.to_le_bytes(), "message {seq}: out of order or torn");
}

/// The peer's ipc-channel ends for the parent, sent through the one-shot
/// server.
#[derive(Serialize, Deserialize)]
struct Ends {
    bytes_tx: IpcBytesSender,
    bytes_rx: IpcBytesReceiver,
    shm_tx: IpcSender<IpcSharedMemory>,
    shm_rx: IpcReceiver<IpcSharedMemory>,
}

// ---------------------------------------------------------------------------
// The parent

struct Peer {
    link: PeerProcess,
    small: Connection,
    large: Connection,
    /// The peer's ends, held as long as ours (the peer opens its own).
    _others: (Connection, Connection),
    ends: Ends,
    msg: Vec<u8>,
    buf: Vec<u8>,
}

impl Peer {
    fn start(cpu: Option<usize>) -> Peer {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let tag = format!("{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let (small_name, large_name) = (format!("bench-ipcc-s-{tag}"), format!("bench-ipcc-l-{tag}"));
        let (small, small_other) = Pipe::builder().name(&small_name).duplex().expect("create the 64 KiB pipe");
        let (large, large_other) =
            Pipe::builder().name(&large_name).capacity(LARGE_PIPE).duplex().expect("create the 4 MiB pipe");
        let (server, server_name) = IpcOneShotServer::<Ends>::new().expect("ipc-channel server");
        let link = PeerProcess::start("ipc_channel bench", cpu, |cmd| {
            cmd.env(SMALL_PIPE_ENV, &small_name).env(LARGE_PIPE_ENV, &large_name).env(SERVER_ENV, &server_name);
        });
        let (_rx, ends) = server.accept().expect("the peer connects");
        let mut peer = Peer {
            link,
            small,
            large,
            _others: (small_other, large_other),
            ends,
            msg: vec![0xa5; LARGE],
            buf: Vec::with_capacity(LARGE),
        };
        // Every path before anything is timed.
        peer.pipe(true, 1000);
        peer.bytes(SMALL, 1000);
        peer.pipe(false, 20);
        peer.bytes(LARGE, 20);
        peer.shm(20);
        peer
    }

    /// `n` round trips through the small (64 B) or the large (1 MiB) pipe.
    fn pipe(&mut self, small: bool, n: u64) -> Duration {
        let (cmd, conn, size) =
            if small { (CMD_PIPE_SMALL, &self.small, SMALL) } else { (CMD_PIPE_LARGE, &self.large, LARGE) };
        let start = Instant::now();
        self.link.command(cmd, n);
        for seq in 0..n {
            stamp(&mut self.msg, seq);
            conn.send_bytes(&self.msg[..size]).expect("pipe send");
            conn.recv_bytes_into(&mut self.buf).expect("pipe recv");
            check(&self.buf, size, seq);
        }
        start.elapsed()
    }

    /// `n` round trips of `size` bytes through ipc-channel's bytes channels.
    fn bytes(&mut self, size: usize, n: u64) -> Duration {
        let start = Instant::now();
        self.link.command(CMD_BYTES, n);
        for seq in 0..n {
            stamp(&mut self.msg, seq);
            self.ends.bytes_tx.send(&self.msg[..size]).expect("ipc bytes send");
            let back = self.ends.bytes_rx.recv().expect("ipc bytes recv");
            check(&back, size, seq);
        }
        start.elapsed()
    }

    /// `n` round trips of 1 MiB through `IpcSharedMemory` regions.
    fn shm(&mut self, n: u64) -> Duration {
        let start = Instant::now();
        self.link.command(CMD_SHM, n);
        for seq in 0..n {
            stamp(&mut self.msg, seq);
            let region = IpcSharedMemory::from_bytes(&self.msg[..LARGE]);
            self.ends.shm_tx.send(region).expect("ipc shm send");
            let back = self.ends.shm_rx.recv().expect("ipc shm recv");
            check(&back, LARGE, seq);
        }
        start.elapsed()
    }
}

// ---------------------------------------------------------------------------
// The peer

fn peer_main() {
    common::pin_peer_from_env();
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("peer: {k} is not set"));
    let (_small_other, small) = Pipe::open(&var(SMALL_PIPE_ENV)).expect("peer: open the 64 KiB pipe");
    let (_large_other, large) = Pipe::open(&var(LARGE_PIPE_ENV)).expect("peer: open the 4 MiB pipe");
    let (bytes_tx, bytes_rx_mine) = ipc::bytes_channel().expect("peer: bytes channel");
    let (bytes_tx_mine, bytes_rx) = ipc::bytes_channel().expect("peer: bytes channel");
    let (shm_tx, shm_rx_mine) = ipc::channel::<IpcSharedMemory>().expect("peer: shm channel");
    let (shm_tx_mine, shm_rx) = ipc::channel::<IpcSharedMemory>().expect("peer: shm channel");
    let server = IpcSender::<Ends>::connect(var(SERVER_ENV)).expect("peer: connect to the server");
    server.send(Ends { bytes_tx, bytes_rx, shm_tx, shm_rx }).expect("peer: hand over the ends");
    let (mut cmd_rx, _) = common::peer_stdio();
    let mut count = [0u8; 8];
    let mut buf = Vec::with_capacity(LARGE);
    while let Some(cmd) = common::read_command(&mut cmd_rx, "a command") {
        cmd_rx.read_exact(&mut count).expect("peer: read the count");
        for _ in 0..u64::from_le_bytes(count) {
            match cmd {
                CMD_PIPE_SMALL | CMD_PIPE_LARGE => {
                    let conn = if cmd == CMD_PIPE_SMALL { &small } else { &large };
                    conn.recv_bytes_into(&mut buf).expect("peer: pipe recv");
                    conn.send_bytes(&buf).expect("peer: pipe send");
                }
                CMD_BYTES => {
                    let m = bytes_rx_mine.recv().expect("peer: ipc bytes recv");
                    bytes_tx_mine.send(&m).expect("peer: ipc bytes send");
                }
                CMD_SHM => {
                    let m = shm_rx_mine.recv().expect("peer: ipc shm recv");
                    shm_tx_mine.send(m).expect("peer: ipc shm send");
                }
                other => panic!("peer: unknown command {other:#x}"),
            }
        }
    }
}
