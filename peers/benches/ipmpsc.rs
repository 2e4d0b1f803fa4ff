//! One-way streaming of 64-byte messages from a peer process: shmproc's
//! [`Queue`] beside ipmpsc (0.5.1), in the criterion group
//! `ipmpsc_64B_one_way`.
//!
//! Both carry serde values through a ring in shared memory and block
//! while it is empty or full, so the job is the same: the peer sends a
//! [`Blob`] of 64 bytes (encoded as one byte string, the way serde codecs
//! copy bytes as one piece), the parent receives it and checks the
//! sequence number in its first 8 bytes.
//!
//! - `shmproc_queue`: `Queue<Blob>::put` in the peer, `get` here (postcard,
//!   the default 256 KiB ring, `maxsize` 1024).
//! - `ipmpsc`: `Sender::send(&Blob)` in the peer (bincode), and here
//!   `Receiver::zero_copy_context().recv::<&[u8]>()`, ipmpsc's fastest
//!   receive (the bytes are read in place); a 256 KiB ring too.
//! - `shmproc_spsc_ring`: for context, not like for like: an [`SpscRing`]
//!   of 1024 `[u8; 64]` slots (`push` / `pop`, spinning then yielding while
//!   full or empty), what a user streaming fixed-size records from one
//!   producer picks; no codec, one producer only.
//!
//! The peer is this binary re-executed with `SHMPROC_BENCH_ROLE=peer`; it
//! opens the parent's queue by name and ipmpsc's ring by path, and each
//! `iter_custom` call sends it a command and a count over its stdin (the
//! time includes the command). Parent and peer are pinned to two
//! different CPUs while the group runs (`SHMPROC_BENCH_PIN=0` turns that
//! off). After the group a summary line gives the rates and shmproc's
//! ratios to ipmpsc (the `Queue`'s is the like-for-like one).
//!
//! Run with `cargo bench -p shmproc-peers --bench ipmpsc` (about 10 s).

#[path = "../../benches/common/blob.rs"]
mod blob;
#[path = "../../benches/common/mod.rs"]
mod common;

use std::io::Read;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use blob::Blob;
use common::{PeerProcess, Recorder, StreamFn, check_seq as check};
use shmproc::{Queue, SpscRing};

const QUEUE_ENV: &str = "SHMPROC_BENCH_QUEUE";
const IPMPSC_ENV: &str = "SHMPROC_BENCH_IPMPSC";

/// The message size.
const SIZE: usize = 64;
/// Bytes of each ring (shmproc's default queue ring).
const RING_BYTES: u32 = 256 * 1024;
/// The queue's `maxsize`.
const MAXSIZE: usize = 1024;

/// How long ipmpsc's receive waits before the bench fails (the peer
/// died) instead of hanging; the same code path as its `recv`.
const HANG_GUARD: Duration = Duration::from_secs(10);

const CMD_QUEUE: u8 = b'q';
const CMD_IPMPSC: u8 = b'i';
const CMD_RING: u8 = b'r';

/// The SPSC ring's record.
type Record = [u8; SIZE];

const GROUP: &str = "ipmpsc_64B_one_way";

fn main() {
    common::bench_main(peer_main, |c| {
        let functions: [StreamFn<Peer>; 3] =
            [("shmproc_queue", Peer::queue), ("ipmpsc", Peer::ipmpsc), ("shmproc_spsc_ring", Peer::ring)];
        common::stream_bench(c, GROUP, Peer::start, &functions, summary);
    });
}

fn summary(rec: &Recorder) -> Option<String> {
    let rate = |f: &str| rec.median(f).map(|s| 1.0 / s);
    let (queue, ipmpsc) = (rate("shmproc_queue")?, rate("ipmpsc")?);
    let mut line = format!(
        "{GROUP}: shmproc Queue<Blob> {:.2} M msg/s, ipmpsc {:.2} M msg/s; shmproc/best peer (ipmpsc) {:.2}x",
        queue / 1e6,
        ipmpsc / 1e6,
        queue / ipmpsc
    );
    if let Some(ring) = rate("shmproc_spsc_ring") {
        line += &format!(
            "; shmproc SpscRing<[u8; 64]> {:.2} M msg/s ({:.1}x ipmpsc; no codec, one producer)",
            ring / 1e6,
            ring / ipmpsc
        );
    }
    Some(line)
}

fn message(seq: u64) -> Blob {
    Blob(common::seq_message(seq).to_vec())
}

// ---------------------------------------------------------------------------
// The parent

struct Peer {
    link: PeerProcess,
    queue: Queue<Blob>,
    ipmpsc: ipmpsc::Receiver,
    rx: shmproc::Consumer<Record>,
    _ring: SpscRing<Record>,
}

impl Peer {
    fn start(cpu: Option<usize>) -> Peer {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!("bench-ipmpsc-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let queue = Queue::<Blob>::builder().name(&name).maxsize(MAXSIZE).build().expect("create the queue");
        // A temporary file, removed when the receiver goes.
        let (path, ring) = ipmpsc::SharedRingBuffer::create_temp(RING_BYTES).expect("create ipmpsc's ring");
        let spsc = SpscRing::<Record>::create(&format!("{name}-ring"), MAXSIZE).expect("create the SPSC ring");
        let rx = spsc.consumer().expect("the consumer role");
        let link = PeerProcess::start("ipmpsc bench", cpu, |cmd| {
            cmd.env(QUEUE_ENV, &name).env(IPMPSC_ENV, &path);
        });
        let mut peer = Peer { link, queue, ipmpsc: ipmpsc::Receiver::new(ring), rx, _ring: spsc };
        // Both paths once, more than a ring holds, before anything is timed.
        peer.queue(3 * MAXSIZE as u64);
        peer.ipmpsc(3 * MAXSIZE as u64);
        peer.ring(3 * MAXSIZE as u64);
        peer
    }

    fn queue(&mut self, n: u64) -> Duration {
        let start = Instant::now();
        self.link.command(CMD_QUEUE, n);
        for seq in 0..n {
            let m = self.queue.get().expect("get from the queue");
            check(&m.0, seq);
        }
        start.elapsed()
    }

    fn ipmpsc(&mut self, n: u64) -> Duration {
        let start = Instant::now();
        self.link.command(CMD_IPMPSC, n);
        for seq in 0..n {
            let mut cx = self.ipmpsc.zero_copy_context();
            let m = cx.recv_timeout::<&[u8]>(HANG_GUARD).expect("ipmpsc recv");
            check(m.expect("ipmpsc: nothing for 10 s: the peer died?"), seq);
        }
        start.elapsed()
    }

    fn ring(&mut self, n: u64) -> Duration {
        let start = Instant::now();
        self.link.command(CMD_RING, n);
        common::pop_ring(&mut self.rx, n);
        start.elapsed()
    }
}

// ---------------------------------------------------------------------------
// The peer

fn peer_main() {
    common::pin_peer_from_env();
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("peer: {k} is not set"));
    let queue = Queue::<Blob>::open(&var(QUEUE_ENV)).expect("peer: open the queue");
    let ring = ipmpsc::SharedRingBuffer::open(&var(IPMPSC_ENV)).expect("peer: open ipmpsc's ring");
    let tx = ipmpsc::Sender::new(ring);
    let spsc = SpscRing::<Record>::open(&format!("{}-ring", var(QUEUE_ENV))).expect("peer: open the SPSC ring");
    let mut ring_tx = spsc.producer().expect("peer: the producer role");
    let (mut cmd_rx, _) = common::peer_stdio();
    let mut count = [0u8; 8];
    while let Some(cmd) = common::read_command(&mut cmd_rx, "a command") {
        cmd_rx.read_exact(&mut count).expect("peer: read the count");
        let n = u64::from_le_bytes(count);
        if cmd == CMD_RING {
            common::push_ring(&mut ring_tx, n);
            continue;
        }
        for seq in 0..n {
            let m = message(seq);
            match cmd {
                CMD_QUEUE => queue.put(m).map_err(drop).expect("peer: put"),
                CMD_IPMPSC => tx.send(&m).expect("peer: ipmpsc send"),
                other => panic!("peer: unknown command {other:#x}"),
            }
        }
    }
}
