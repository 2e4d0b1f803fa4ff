//! 64-byte messages between two processes: shmproc beside iceoryx2
//! (0.10.0, publish-subscribe over `ipc::Service`), in the criterion groups
//! `iceoryx2_64B_round_trip` and `iceoryx2_64B_one_way`.
//!
//! - `iceoryx2_64B_round_trip`: a 64-byte message to the peer and back.
//!   `shmproc_pipe`: a default [`Pipe`] (`send_bytes` /
//!   `recv_bytes_into`, the peer echoes), what a user picks for a
//!   request and its reply. `iceoryx2`: two publish-subscribe services,
//!   ping (parent to peer) and pong (peer to parent), of `[u8; 64]`
//!   payloads sent with `send_copy`; iceoryx2's subscribers have no
//!   blocking receive (its own benchmark polls), so each side polls
//!   `receive` (a few spins, then a yield per try; a WaitSet with an event
//!   service would add a wake-up on each side).
//! - `iceoryx2_64B_one_way`: the peer streams `[u8; 64]` messages to the
//!   parent. `shmproc_ring`: an [`SpscRing`] of 1024 slots, `push` /
//!   `pop` one at a time (the primitive for fixed-size `Pod` messages
//!   between one producer and one consumer, as iceoryx2's payloads are
//!   fixed-size zero-copy types). `iceoryx2`: a service whose subscriber
//!   buffer holds 1024 samples, no safe overflow, and a publisher with
//!   `BackpressureStrategy::RetryUntilDelivered`, so nothing is lost; the
//!   parent polls `receive`.
//!
//! Every message carries its sequence number in its first 8 bytes, which
//! the parent checks. The peer is this binary re-executed with
//! `SHMPROC_BENCH_ROLE=peer`: it opens the parent's pipe and ring by name
//! and the parent's iceoryx2 services by name, makes its ports, and
//! answers a ready byte; each `iter_custom` call then sends it a command
//! and a count over its stdin (the time includes the command). Parent and
//! peer are pinned to two different CPUs while a group runs
//! (`SHMPROC_BENCH_PIN=0` turns that off). After each group a summary
//! line gives both figures and shmproc's ratio to iceoryx2.
//!
//! Run with `cargo bench -p shmproc-peers --bench iceoryx2` (about 20 s).

#[path = "../../benches/common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{PeerProcess, Recorder, StreamFn, check_seq as check, seq_message as message};
use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::prelude::*;
use iceoryx2::service::port_factory::publish_subscribe::PortFactory;
use shmproc::{Connection, Pipe, SpscRing};

const NAME_ENV: &str = "SHMPROC_BENCH_NAME";

/// One message.
type Msg = [u8; 64];
const SIZE: usize = size_of::<Msg>();
/// Ring slots, and samples in iceoryx2's subscriber buffer.
const SLOTS: usize = 1024;

const CMD_PIPE: u8 = b'p';
const CMD_ICEORYX_RT: u8 = b'i';
const CMD_RING: u8 = b'r';
const CMD_ICEORYX_STREAM: u8 = b's';
/// The peer's answer once its ports exist.
const READY: u8 = b'R';

const RT_GROUP: &str = "iceoryx2_64B_round_trip";
const STREAM_GROUP: &str = "iceoryx2_64B_one_way";

type Service = PortFactory<ipc::Service, Msg, ()>;
type Pub = Publisher<ipc::Service, Msg, ()>;
type Sub = Subscriber<ipc::Service, Msg, ()>;

fn main() {
    common::bench_main(peer_main, |c| {
        let rt: [StreamFn<Peer>; 2] = [("shmproc_pipe", Peer::pipe), ("iceoryx2", Peer::iceoryx_round_trips)];
        common::stream_bench(c, RT_GROUP, Peer::start, &rt, rt_summary);
        let stream: [StreamFn<Peer>; 2] = [("shmproc_ring", Peer::ring), ("iceoryx2", Peer::iceoryx_stream)];
        common::stream_bench(c, STREAM_GROUP, Peer::start, &stream, stream_summary);
    });
}

fn rt_summary(rec: &Recorder) -> Option<String> {
    let us = |f: &str| rec.median(f).map(|s| s * 1e6);
    let (pipe, ice) = (us("shmproc_pipe")?, us("iceoryx2")?);
    Some(format!(
        "{RT_GROUP}: shmproc Pipe {pipe:.2} us, iceoryx2 {ice:.2} us; shmproc/best peer (iceoryx2) {:.2}x faster",
        ice / pipe
    ))
}

fn stream_summary(rec: &Recorder) -> Option<String> {
    let rate = |f: &str| rec.median(f).map(|s| 1.0 / s);
    let (ring, ice) = (rate("shmproc_ring")?, rate("iceoryx2")?);
    Some(format!(
        "{STREAM_GROUP}: shmproc SpscRing {:.2} M msg/s, iceoryx2 {:.2} M msg/s; shmproc/best peer (iceoryx2) {:.2}x",
        ring / 1e6,
        ice / 1e6,
        ring / ice
    ))
}

/// The three services, named after `tag`: ping (parent to peer), pong and
/// stream (peer to parent). Created by the parent, opened by the peer.
fn services(node: &Node<ipc::Service>, tag: &str) -> [Service; 3] {
    ["ping", "pong", "stream"].map(|what| {
        let name = ServiceName::new(&format!("shmproc-bench/{tag}/{what}")).expect("a service name");
        node.service_builder(&name)
            .publish_subscribe::<Msg>()
            .max_publishers(1)
            .max_subscribers(1)
            .history_size(0)
            .subscriber_max_buffer_size(SLOTS)
            .enable_safe_overflow(false)
            .open_or_create()
            .expect("create or open an iceoryx2 service")
    })
}

fn publisher(service: &Service) -> Pub {
    service
        .publisher_builder()
        .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
        .create()
        .expect("an iceoryx2 publisher")
}

fn subscriber(service: &Service) -> Sub {
    service.subscriber_builder().buffer_size(SLOTS).create().expect("an iceoryx2 subscriber")
}

/// Receives one message, polling (a few spins, then yields; fails after
/// the hang guard).
fn receive(sub: &Sub) -> Msg {
    let mut out = None;
    common::pop_each(1, || sub.receive().expect("iceoryx2 receive"), |s| out = Some(**s));
    out.expect("received")
}

/// Sends one message to the one subscriber.
fn send(publisher: &Pub, m: Msg) {
    let delivered = publisher.send_copy(m).expect("iceoryx2 send");
    assert_eq!(delivered, 1, "iceoryx2: the subscriber is gone?");
}

// ---------------------------------------------------------------------------
// The parent

struct Peer {
    link: PeerProcess,
    pipe: Connection,
    _pipe_other: Connection,
    rx: shmproc::Consumer<Msg>,
    _ring: SpscRing<Msg>,
    ping: Pub,
    pong: Sub,
    stream: Sub,
    _services: [Service; 3],
    _node: Node<ipc::Service>,
    buf: Vec<u8>,
}

impl Peer {
    fn start(cpu: Option<usize>) -> Peer {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let tag = format!("{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let (pipe, pipe_other) =
            Pipe::builder().name(&format!("bench-ice-pipe-{tag}")).duplex().expect("create the pipe");
        let ring = SpscRing::<Msg>::create(&format!("bench-ice-ring-{tag}"), SLOTS).expect("create the ring");
        let rx = ring.consumer().expect("the consumer role");
        let node = NodeBuilder::new().create::<ipc::Service>().expect("an iceoryx2 node");
        let services = services(&node, &tag);
        let (ping, pong, stream) = (publisher(&services[0]), subscriber(&services[1]), subscriber(&services[2]));
        let mut link = PeerProcess::start("iceoryx2 bench", cpu, |cmd| {
            cmd.env(NAME_ENV, &tag);
        });
        link.expect(READY);
        let mut peer = Peer {
            link,
            pipe,
            _pipe_other: pipe_other,
            rx,
            _ring: ring,
            ping,
            pong,
            stream,
            _services: services,
            _node: node,
            buf: Vec::with_capacity(SIZE),
        };
        // Every path, more than a ring holds, before anything is timed.
        peer.pipe(1000);
        peer.iceoryx_round_trips(1000);
        peer.ring(3 * SLOTS as u64);
        peer.iceoryx_stream(3 * SLOTS as u64);
        peer
    }

    fn pipe(&mut self, n: u64) -> Duration {
        let start = Instant::now();
        self.link.command(CMD_PIPE, n);
        for seq in 0..n {
            self.pipe.send_bytes(&message(seq)).expect("pipe send");
            self.pipe.recv_bytes_into(&mut self.buf).expect("pipe recv");
            check(&self.buf, seq);
        }
        start.elapsed()
    }

    fn iceoryx_round_trips(&mut self, n: u64) -> Duration {
        let start = Instant::now();
        self.link.command(CMD_ICEORYX_RT, n);
        for seq in 0..n {
            send(&self.ping, message(seq));
            check(&receive(&self.pong), seq);
        }
        start.elapsed()
    }

    fn ring(&mut self, n: u64) -> Duration {
        let start = Instant::now();
        self.link.command(CMD_RING, n);
        common::pop_ring(&mut self.rx, n);
        start.elapsed()
    }

    fn iceoryx_stream(&mut self, n: u64) -> Duration {
        let start = Instant::now();
        self.link.command(CMD_ICEORYX_STREAM, n);
        let mut seq = 0;
        common::pop_each(
            n,
            || self.stream.receive().expect("iceoryx2 receive"),
            |s| {
                check(&s[..], seq);
                seq += 1;
            },
        );
        start.elapsed()
    }
}

// ---------------------------------------------------------------------------
// The peer

fn peer_main() {
    common::pin_peer_from_env();
    let tag = std::env::var(NAME_ENV).expect("peer: SHMPROC_BENCH_NAME is not set");
    let (_pipe_other, pipe) = Pipe::open(&format!("bench-ice-pipe-{tag}")).expect("peer: open the pipe");
    let ring = SpscRing::<Msg>::open(&format!("bench-ice-ring-{tag}")).expect("peer: open the ring");
    let mut tx = ring.producer().expect("peer: the producer role");
    let node = NodeBuilder::new().create::<ipc::Service>().expect("peer: an iceoryx2 node");
    let services = services(&node, &tag);
    let (ping, pong, stream) = (subscriber(&services[0]), publisher(&services[1]), publisher(&services[2]));
    let (mut cmd_rx, mut out) = common::peer_stdio();
    out.write_all(&[READY]).expect("peer: ready");
    let mut count = [0u8; 8];
    let mut buf = Vec::with_capacity(SIZE);
    while let Some(cmd) = common::read_command(&mut cmd_rx, "a command") {
        cmd_rx.read_exact(&mut count).expect("peer: read the count");
        let n = u64::from_le_bytes(count);
        match cmd {
            CMD_PIPE => {
                for _ in 0..n {
                    pipe.recv_bytes_into(&mut buf).expect("peer: pipe recv");
                    pipe.send_bytes(&buf).expect("peer: pipe send");
                }
            }
            CMD_ICEORYX_RT => {
                for _ in 0..n {
                    send(&pong, receive(&ping));
                }
            }
            CMD_RING => common::push_ring(&mut tx, n),
            CMD_ICEORYX_STREAM => {
                for seq in 0..n {
                    send(&stream, message(seq));
                }
            }
            other => panic!("peer: unknown command {other:#x}"),
        }
    }
}
