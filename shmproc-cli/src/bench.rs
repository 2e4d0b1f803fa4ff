//! `shmproc bench`: shmproc's [`Pipe`] against an OS pipe and a Unix
//! socket, between this process and a child, at a few message sizes:
//! throughput of a one-way stream and the median round trip.
//!
//! The library's criterion benches (`benches/pipe.rs`) measure the same
//! things with statistics; this is the quick look a user can run anywhere
//! without cargo. The peers speak one tiny protocol: a 9-byte command (op,
//! message size, count), then the messages.

use std::fs::File;
use std::io::{IsTerminal, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressFinish, ProgressStyle};
use plotters::style::RGBColor;
use shmproc::{Connection, Pipe, Process};

use crate::svg::{self, Panel, Series};

/// Message sizes measured.
pub(crate) const SIZES: [usize; 4] = [64, 4096, 64 * 1024, 1024 * 1024];
/// Op: echo each message back.
const OP_ROUND_TRIP: u8 = b'r';
/// Op: read every message, then answer one byte.
const OP_STREAM: u8 = b't';
/// Op: exit.
const OP_QUIT: u8 = b'q';

/// The transports, in table order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Shm,
    OsPipe,
    Socket,
}

const TRANSPORTS: [Transport; 3] = [Transport::Shm, Transport::OsPipe, Transport::Socket];

impl Transport {
    fn label(self) -> &'static str {
        match self {
            Transport::Shm => "shmproc Pipe",
            Transport::OsPipe => "OS pipe",
            Transport::Socket => "Unix socket",
        }
    }

    fn color(self) -> RGBColor {
        match self {
            Transport::Shm => RGBColor(0xd6, 0x27, 0x28),
            Transport::OsPipe => RGBColor(0x1f, 0x77, 0xb4),
            Transport::Socket => RGBColor(0x2c, 0xa0, 0x2c),
        }
    }
}

fn command(op: u8, size: usize, count: u64) -> [u8; 9] {
    let mut c = [0u8; 9];
    c[0] = op;
    c[1..5].copy_from_slice(&(size as u32).to_le_bytes());
    c[5..9].copy_from_slice(&(count as u32).to_le_bytes());
    c
}

fn parse_command(c: &[u8]) -> Option<(u8, usize, u64)> {
    let c: &[u8; 9] = c.try_into().ok()?;
    let size = u32::from_le_bytes([c[1], c[2], c[3], c[4]]) as usize;
    let count = u64::from(u32::from_le_bytes([c[5], c[6], c[7], c[8]]));
    Some((c[0], size, count))
}

/// One side of a link to the peer.
trait Link {
    fn send(&mut self, msg: &[u8]) -> std::io::Result<()>;
    /// Receives one message of `size` bytes into `buf`.
    fn recv(&mut self, buf: &mut Vec<u8>, size: usize) -> std::io::Result<()>;
    /// Tells the peer to stop and waits for it.
    fn finish(self: Box<Self>) -> std::io::Result<()>;
}

fn io_err(e: impl Into<shmproc::Error>) -> std::io::Error {
    std::io::Error::other(e.into().to_string())
}

/// An OS pipe pair or a socket to a `shmproc __peer` child.
struct StreamLink {
    tx: File,
    rx: File,
    child: Child,
}

impl Link for StreamLink {
    fn send(&mut self, msg: &[u8]) -> std::io::Result<()> {
        self.tx.write_all(msg)
    }

    fn recv(&mut self, buf: &mut Vec<u8>, size: usize) -> std::io::Result<()> {
        buf.resize(size, 0);
        self.rx.read_exact(buf)
    }

    fn finish(mut self: Box<Self>) -> std::io::Result<()> {
        self.tx.write_all(&command(OP_QUIT, 0, 0))?;
        drop(self.tx);
        let status = self.child.wait()?;
        if status.success() { Ok(()) } else { Err(std::io::Error::other(format!("peer exited with {status}"))) }
    }
}

struct ShmLink {
    conn: Connection,
    peer: Process<()>,
}

impl Link for ShmLink {
    fn send(&mut self, msg: &[u8]) -> std::io::Result<()> {
        self.conn.send_bytes(msg).map_err(io_err)
    }

    fn recv(&mut self, buf: &mut Vec<u8>, size: usize) -> std::io::Result<()> {
        let n = self.conn.recv_bytes_into(buf).map_err(io_err)?;
        if n == size { Ok(()) } else { Err(std::io::Error::other("short message from the peer")) }
    }

    fn finish(mut self: Box<Self>) -> std::io::Result<()> {
        self.conn.send_bytes(&command(OP_QUIT, 0, 0)).map_err(io_err)?;
        self.peer.join().map_err(io_err)
    }
}

/// The shm peer, run in a child started with [`Process::spawn`].
fn shm_peer(conn: Connection) {
    let mut buf = Vec::new();
    while let Ok(cmd) = conn.recv_bytes() {
        let Some((op, _size, count)) = parse_command(&cmd) else { return };
        for _ in 0..count {
            if conn.recv_bytes_into(&mut buf).is_err() {
                return;
            }
            if op == OP_ROUND_TRIP && conn.send_bytes(&buf).is_err() {
                return;
            }
        }
        match op {
            OP_STREAM if conn.send_bytes(&[1]).is_err() => return,
            OP_QUIT => return,
            _ => {}
        }
    }
}

/// `shmproc __peer`: the stream peer; stdin and stdout are the link.
pub(crate) fn stream_peer() -> std::io::Result<()> {
    let mut rx = File::from(std::io::stdin().as_fd().try_clone_to_owned()?);
    let mut tx = File::from(std::io::stdout().as_fd().try_clone_to_owned()?);
    let mut cmd = [0u8; 9];
    let mut buf = Vec::new();
    loop {
        rx.read_exact(&mut cmd)?;
        let (op, size, count) = parse_command(&cmd).ok_or_else(|| std::io::Error::other("bad command"))?;
        if op == OP_QUIT {
            return Ok(());
        }
        buf.resize(size, 0);
        for _ in 0..count {
            rx.read_exact(&mut buf)?;
            if op == OP_ROUND_TRIP {
                tx.write_all(&buf)?;
            }
        }
        if op == OP_STREAM {
            tx.write_all(&[1])?;
        }
    }
}

fn start(t: Transport) -> std::io::Result<Box<dyn Link>> {
    let exe = std::env::current_exe()?;
    match t {
        Transport::Shm => {
            let (a, b) = Pipe::builder().capacity(4 << 20).duplex().map_err(io_err)?;
            let peer = Process::spawn(shm_peer, b).map_err(io_err)?;
            Ok(Box::new(ShmLink { conn: a, peer }))
        }
        Transport::OsPipe => {
            let mut child = Command::new(exe).arg("__peer").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
            let tx = child.stdin.take().map(OwnedFd::from).ok_or_else(|| std::io::Error::other("no stdin"))?;
            let rx = child.stdout.take().map(OwnedFd::from).ok_or_else(|| std::io::Error::other("no stdout"))?;
            Ok(Box::new(StreamLink { tx: File::from(tx), rx: File::from(rx), child }))
        }
        Transport::Socket => {
            let (mine, theirs) = UnixStream::pair()?;
            let theirs_out = theirs.try_clone()?;
            let child = Command::new(exe)
                .arg("__peer")
                .stdin(Stdio::from(OwnedFd::from(theirs)))
                .stdout(Stdio::from(OwnedFd::from(theirs_out)))
                .spawn()?;
            let rx = File::from(OwnedFd::from(mine.try_clone()?));
            Ok(Box::new(StreamLink { tx: File::from(OwnedFd::from(mine)), rx, child }))
        }
    }
}

/// One measured point.
#[derive(Debug, Clone, Copy)]
struct Point {
    size: usize,
    /// Bytes per second of a one-way stream.
    throughput: f64,
    /// Median round trip.
    round_trip: Duration,
}

fn stream(link: &mut dyn Link, size: usize, n: u64) -> std::io::Result<f64> {
    let msg = vec![0x5a; size];
    let mut ack = Vec::new();
    link.send(&command(OP_STREAM, size, n))?;
    let t0 = Instant::now();
    for _ in 0..n {
        link.send(&msg)?;
    }
    link.recv(&mut ack, 1)?;
    let secs = t0.elapsed().as_secs_f64().max(1e-9);
    Ok((n as f64 * size as f64) / secs)
}

fn round_trips(link: &mut dyn Link, size: usize, n: u64) -> std::io::Result<Duration> {
    let msg = vec![0xa5; size];
    let mut back = Vec::with_capacity(size);
    let mut times = Vec::with_capacity(n as usize);
    link.send(&command(OP_ROUND_TRIP, size, n))?;
    for _ in 0..n {
        let t0 = Instant::now();
        link.send(&msg)?;
        link.recv(&mut back, size)?;
        times.push(t0.elapsed());
    }
    times.sort_unstable();
    Ok(times.get(times.len() / 2).copied().unwrap_or_default())
}

/// Progress on stderr: an indicatif bar on a terminal. Elsewhere (a log, a
/// pipe) indicatif draws nothing, so each step gets a line of its own.
struct Progress {
    bar: ProgressBar,
    lines: bool,
}

impl Progress {
    fn new(steps: usize) -> Progress {
        let steps = steps as u64;
        if std::io::stderr().is_terminal() {
            let style = ProgressStyle::with_template("[{bar:30}] {pos:>2}/{len} {wide_msg}")
                .map(|s| s.progress_chars("##."))
                .unwrap_or_else(|_| ProgressStyle::default_bar());
            // A run that fails part-way leaves the bar where it stopped.
            let bar = ProgressBar::new(steps).with_style(style).with_finish(ProgressFinish::Abandon);
            Progress { bar, lines: false }
        } else {
            Progress { bar: ProgressBar::with_draw_target(Some(steps), ProgressDrawTarget::hidden()), lines: true }
        }
    }

    /// Starts a step: `what` is shown next to the count of steps done.
    fn start(&self, what: String) {
        if self.lines {
            eprintln!("[{:>2}/{}] {what}", self.bar.position(), self.bar.length().unwrap_or(0));
        }
        self.bar.set_message(what);
    }

    /// Ends the step started last.
    fn done(&self) {
        self.bar.inc(1);
    }

    fn finish(&self) {
        if self.lines {
            eprintln!("[{0}/{0}] done", self.bar.length().unwrap_or(0));
        }
        self.bar.finish_with_message("done");
    }
}

fn human_size(n: usize) -> String {
    match n {
        n if n >= 1 << 20 && n.is_multiple_of(1 << 20) => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n.is_multiple_of(1 << 10) => format!("{} KiB", n >> 10),
        n => format!("{n} B"),
    }
}

fn human_rate(bps: f64) -> String {
    if bps >= 1e9 { format!("{:.2} GB/s", bps / 1e9) } else { format!("{:.1} MB/s", bps / 1e6) }
}

fn human_time(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us >= 1000.0 { format!("{:.2} ms", us / 1000.0) } else { format!("{us:.1} µs") }
}

/// Runs the comparison, prints the table and writes the plot to `svg_path`.
pub(crate) fn run(quick: bool, svg_path: &Path) -> std::io::Result<()> {
    // Bytes streamed per point, and the round trips' byte budget.
    let (stream_bytes, rt_bytes, rt_max) =
        if quick { (64 << 20, 64 << 20, 1000) } else { (512 << 20, 512 << 20, 10_000) };
    let progress = Progress::new(TRANSPORTS.len() * SIZES.len() * 2);
    let mut results: Vec<(Transport, Vec<Point>)> = Vec::new();
    for t in TRANSPORTS {
        let mut link = start(t)?;
        // Warm up: page in buffers, start the peer's loop.
        round_trips(link.as_mut(), 64, 20)?;
        let mut points = Vec::new();
        for size in SIZES {
            progress.start(format!("{} {} stream", t.label(), human_size(size)));
            let n = (stream_bytes / size as u64).clamp(16, 200_000);
            let throughput = stream(link.as_mut(), size, n)?;
            progress.done();
            progress.start(format!("{} {} round trips", t.label(), human_size(size)));
            let n = (rt_bytes / size as u64).clamp(10, rt_max);
            let round_trip = round_trips(link.as_mut(), size, n)?;
            progress.done();
            points.push(Point { size, throughput, round_trip });
        }
        link.finish()?;
        results.push((t, points));
    }
    progress.finish();
    print_table(&results, quick);
    let panels = [
        Panel {
            title: "Throughput (one-way stream)".into(),
            x_label: "message size (bytes)".into(),
            y_label: "MB/s".into(),
            series: series(&results, |p| p.throughput / 1e6),
        },
        Panel {
            title: "Round-trip latency (median)".into(),
            x_label: "message size (bytes)".into(),
            y_label: "µs".into(),
            series: series(&results, |p| p.round_trip.as_secs_f64() * 1e6),
        },
    ];
    std::fs::write(svg_path, svg::render(&panels)?)?;
    println!("plot written to {}", svg_path.display());
    Ok(())
}

fn series(results: &[(Transport, Vec<Point>)], y: fn(&Point) -> f64) -> Vec<Series> {
    results
        .iter()
        .map(|(t, pts)| Series {
            label: t.label().to_owned(),
            color: t.color(),
            points: pts.iter().map(|p| (p.size as f64, y(p))).collect(),
        })
        .collect()
}

fn print_table(results: &[(Transport, Vec<Point>)], quick: bool) {
    println!(
        "shmproc bench{}: two processes; throughput of a one-way stream, median round trip",
        if quick { " --quick" } else { "" }
    );
    println!("{:<9} {:<13} {:>12} {:>11}   shm ÷ this", "size", "transport", "throughput", "round trip");
    let shm = results.iter().find(|(t, _)| *t == Transport::Shm).map(|(_, p)| p.as_slice()).unwrap_or_default();
    for (i, size) in SIZES.iter().enumerate() {
        for (t, pts) in results {
            let Some(p) = pts.get(i) else { continue };
            let ratio = match (t, shm.get(i)) {
                (Transport::Shm, _) | (_, None) => String::new(),
                (_, Some(s)) => format!(
                    "{:.2}x throughput, {:.2}x latency",
                    s.throughput / p.throughput,
                    s.round_trip.as_secs_f64() / p.round_trip.as_secs_f64().max(1e-12)
                ),
            };
            let first = if *t == Transport::Shm { human_size(*size) } else { String::new() };
            println!(
                "{first:<9} {:<13} {:>12} {:>11}   {ratio}",
                t.label(),
                human_rate(p.throughput),
                human_time(p.round_trip)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip() {
        assert_eq!(parse_command(&command(OP_STREAM, 65536, 12)), Some((OP_STREAM, 65536, 12)));
        assert_eq!(parse_command(&[1, 2, 3]), None);
    }

    #[test]
    fn human_units() {
        assert_eq!(human_size(64), "64 B");
        assert_eq!(human_size(4096), "4 KiB");
        assert_eq!(human_size(1 << 20), "1 MiB");
        assert_eq!(human_rate(2.5e9), "2.50 GB/s");
        assert_eq!(human_time(Duration::from_micros(3)), "3.0 µs");
    }
}
