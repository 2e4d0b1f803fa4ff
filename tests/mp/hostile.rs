//! Bad input on open and resource exhaustion: RELIABILITY cases 29, 30
//! (with the segment-header parts of 35 and 36), 34 and 38.
//!
//! The hostile opens run in helpers, so a SIGBUS or SIGSEGV would show as a
//! helper killed by a signal instead of taking the whole test binary down.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use shmproc::{Error, Segment, Shared, cleanup_stale_in};

use crate::harness::{
    self, Ctx, Rng, arg, hdr, list_prefixed, path_in, peek, poke, say, shm_path, variant, wait_for_parent,
};
use crate::segment::{read_u64, write_u64};

/// The errors an open of a damaged object may return.
const DAMAGE_ERRORS: [&str; 7] =
    ["Corrupt", "VersionMismatch", "KindMismatch", "LayoutMismatch", "Truncated", "NotReady", "SizeMismatch"];

fn open_in(dir: &Path, name: &str, timeout: Duration) -> shmproc::Result<Segment> {
    Segment::builder().name(name).dir(dir).open_timeout(timeout).open()
}

/// Checks an open result of a damaged object: an error from
/// [`DAMAGE_ERRORS`], or `Ok` with a payload length inside the file, whose
/// last byte can be read. Returns the outcome's name.
fn sane(r: &shmproc::Result<Segment>, file_len: u64) -> Result<&'static str, String> {
    match r {
        Ok(seg) => {
            if seg.len() as u64 > file_len.saturating_sub(hdr::SIZE) {
                return Err(format!("Ok with len {} beyond the file ({file_len} bytes)", seg.len()));
            }
            if !seg.is_empty() {
                let mut b = [0u8];
                seg.read_at(seg.len() - 1, &mut b).map_err(|e| format!("read of the last byte: {e}"))?;
            }
            Ok("Ok")
        }
        Err(e) if DAMAGE_ERRORS.contains(&variant(e)) => Ok(variant(e)),
        Err(e) => Err(format!("unexpected error {e:?}")),
    }
}

// ---------------------------------------------------------------------------
// Roles
// ---------------------------------------------------------------------------

/// Role `hostile_fields`: creates segments in `DIR` and, one header field
/// at a time, writes garbage over it through the file (as a hostile peer
/// would), opens, and checks the outcome; then fuzzes whole headers with
/// `ROUNDS` random variants. Also checks that a handle opened before the
/// damage keeps its copied length. Says `done <n opens>`.
pub(crate) fn role_hostile_fields() {
    let dir = PathBuf::from(arg("DIR"));
    let name = arg("NAME");
    let rounds: u64 = harness::arg_num("ROUNDS");
    let seg = Segment::builder().name(&name).dir(&dir).size(10_000).create().expect("create");
    let path = path_in(&dir, &name);
    let file_len = fs::metadata(&path).expect("stat").len();
    let good = peek(&path, 0, hdr::SIZE as usize);
    let early = open_in(&dir, &name, Duration::from_secs(5)).expect("open before the damage");
    let t = Duration::from_millis(50);

    let u32s = |v: u32| v.to_ne_bytes().to_vec();
    let u64s = |v: u64| v.to_ne_bytes().to_vec();
    let real_len = file_len;
    let payload = real_len - hdr::SIZE;
    // (field, offset, garbage, allowed outcomes)
    let cases: Vec<(&str, u64, Vec<u8>, &[&str])> = vec![
        ("magic", hdr::MAGIC, u64s(0), &["Corrupt"]),
        ("magic", hdr::MAGIC, u64s(u64::MAX), &["Corrupt"]),
        ("magic", hdr::MAGIC, b"SHMPROD\0".to_vec(), &["Corrupt"]),
        ("format", hdr::FORMAT, u32s(0), &["VersionMismatch"]),
        ("format", hdr::FORMAT, u32s(u32::MAX), &["VersionMismatch"]),
        ("format", hdr::FORMAT, u32s(2 | (5 << 16)), &["VersionMismatch"]),
        ("kind", hdr::KIND, u32s(0), &["KindMismatch"]),
        ("kind", hdr::KIND, u32s(2), &["KindMismatch"]),
        ("kind", hdr::KIND, u32s(u32::MAX), &["KindMismatch"]),
        ("layout_hash", hdr::LAYOUT_HASH, u64s(1), &["LayoutMismatch"]),
        ("layout_hash", hdr::LAYOUT_HASH, u64s(u64::MAX), &["LayoutMismatch"]),
        ("len", hdr::LEN, u64s(0), &["Corrupt"]),
        ("len", hdr::LEN, u64s(1), &["Corrupt"]),
        ("len", hdr::LEN, u64s(127), &["Corrupt"]),
        ("len", hdr::LEN, u64s(128), &["Corrupt"]),
        ("len", hdr::LEN, u64s(real_len - 1), &["Corrupt"]),
        ("len", hdr::LEN, u64s(real_len + 1), &["Truncated"]),
        ("len", hdr::LEN, u64s(real_len + 4096), &["Truncated"]),
        ("len", hdr::LEN, u64s(1 << 63), &["Truncated"]),
        ("len", hdr::LEN, u64s(u64::MAX), &["Truncated"]),
        ("state", hdr::STATE, u32s(0), &["NotReady"]),
        ("state", hdr::STATE, u32s(1), &["Corrupt"]),
        ("state", hdr::STATE, u32s(0x504f_4953), &["Corrupt"]),
        ("state", hdr::STATE, u32s(u32::MAX), &["Corrupt"]),
        ("state", hdr::STATE, u32s(hdr::READY), &["Ok"]),
        ("creator_pid", hdr::CREATOR_PID, u32s(0), &["Ok"]),
        ("creator_pid", hdr::CREATOR_PID, u32s(u32::MAX), &["Ok"]),
        ("creator_nonce", hdr::CREATOR_NONCE, u64s(0), &["Ok"]),
        ("creator_nonce", hdr::CREATOR_NONCE, u64s(u64::MAX), &["Ok"]),
        ("payload_len", hdr::PAYLOAD_LEN, u64s(u64::MAX), &["Corrupt"]),
        ("payload_len", hdr::PAYLOAD_LEN, u64s(1 << 63), &["Corrupt"]),
        ("payload_len", hdr::PAYLOAD_LEN, u64s(payload + 1), &["Corrupt"]),
        ("payload_len", hdr::PAYLOAD_LEN, u64s(real_len), &["Corrupt"]),
        ("payload_len", hdr::PAYLOAD_LEN, u64s(payload), &["Ok"]),
        ("payload_len", hdr::PAYLOAD_LEN, u64s(0), &["Ok"]),
        ("reserved", 56, vec![0xff; 72], &["Ok"]),
    ];
    let mut failures = Vec::new();
    let mut opens = 0u64;
    for (field, off, bytes, allowed) in &cases {
        poke(&path, *off, bytes);
        let r = open_in(&dir, &name, t);
        opens += 1;
        match sane(&r, file_len) {
            Ok(got) if allowed.contains(&got) => {}
            Ok(got) => failures.push(format!("{field} = {bytes:02x?}: got {got} ({:?}), want {allowed:?}", r.err())),
            Err(e) => failures.push(format!("{field} = {bytes:02x?}: {e}")),
        }
        // The handle opened before the damage copied its length once.
        if early.len() != 10_000 {
            failures.push(format!("{field}: an earlier handle's len changed to {}", early.len()));
        }
        poke(&path, 0, &good);
    }
    // A payload_len of 0 or the whole rest is used as given, and no more.
    poke(&path, hdr::PAYLOAD_LEN, &u64s(payload));
    let whole = open_in(&dir, &name, t).expect("payload_len = len - header");
    assert_eq!(whole.len() as u64, payload);
    assert!(whole.write_at(whole.len(), &[1]).is_err(), "one past the payload is refused");
    drop(whole);
    poke(&path, 0, &good);

    // Whole-header fuzz: random bytes, keeping a growing valid prefix of
    // fields so that the later checks are reached too.
    let mut rng = Rng::new(0x3030_3636 ^ rounds);
    let mut counts = std::collections::BTreeMap::new();
    for i in 0..rounds {
        let mut h = [0u8; hdr::SIZE as usize];
        rng.fill(&mut h);
        let keep = [0, 12, 16, 24, 32, 36, 56][(i % 7) as usize];
        h[..keep].copy_from_slice(&good[..keep]);
        if i % 3 == 0 {
            h[32..36].copy_from_slice(&good[32..36]); // state READY
        }
        poke(&path, 0, &h);
        let r = open_in(&dir, &name, t);
        opens += 1;
        match sane(&r, file_len) {
            Ok(got) => *counts.entry(got).or_insert(0u32) += 1,
            Err(e) => failures.push(format!("fuzz round {i} (keep {keep}): {e}; header {h:02x?}")),
        }
    }
    poke(&path, 0, &good);
    eprintln!("hostile_fields: fuzz outcomes {counts:?}");
    assert!(failures.is_empty(), "{} bad outcomes:\n{}", failures.len(), failures.join("\n"));
    let again = open_in(&dir, &name, t).expect("restored header opens");
    write_u64(&again, 9992, 1);
    assert_eq!(read_u64(&seg, 9992), 1);
    drop((again, early, seg));
    say(format_args!("done {opens}"));
}

/// Role `foreign_files`: files under our prefix in `DIR` that shmproc did
/// not make (random bytes of many sizes including 0, files with a valid
/// magic and format but random rest, a directory, a symlink) -> every open
/// returns an error (`Corrupt` for the random ones) without waiting out the
/// 5 s open timeout; `cleanup_stale_in` leaves every file without our magic
/// (reported foreign).
/// Says `done <n files> <slowest open in ms>`.
pub(crate) fn role_foreign_files() {
    let dir = PathBuf::from(arg("DIR"));
    let prefix = arg("NAME");
    let mut rng = Rng::new(0xf0e1_d2c3);
    let good = {
        let n = format!("{prefix}.model");
        let s = Segment::builder().name(&n).dir(&dir).size(100).create().expect("create");
        let g = peek(&path_in(&dir, &n), 0, hdr::SIZE as usize);
        drop(s);
        g
    };
    let mut made = Vec::new();
    let mut failures = Vec::new();
    let mut slowest = Duration::ZERO;
    let sizes = [0usize, 1, 7, 8, 100, 127, 128, 129, 4095, 4096, 4097, 8192];
    for (i, &size) in sizes.iter().enumerate() {
        for with_magic in [false, true] {
            if with_magic && size < 16 {
                continue;
            }
            let n = format!("{prefix}.f{i}-{with_magic}");
            let mut bytes = vec![0u8; size];
            rng.fill(&mut bytes);
            if with_magic {
                bytes[..12].copy_from_slice(&good[..12]);
            }
            fs::write(path_in(&dir, &n), &bytes).expect("write foreign file");
            made.push(n.clone());
            let start = Instant::now();
            let r = Segment::builder().name(&n).dir(&dir).open();
            slowest = slowest.max(start.elapsed());
            let want_corrupt = !with_magic || size < hdr::SIZE as usize;
            match &r {
                Err(Error::Corrupt { .. }) => {}
                Err(e) if !want_corrupt && DAMAGE_ERRORS.contains(&variant(e)) => {}
                other => failures.push(format!("{size} bytes (magic: {with_magic}): {other:?}")),
            }
        }
    }
    // All zeroes: no magic.
    let z = format!("{prefix}.zero");
    fs::write(path_in(&dir, &z), vec![0u8; 4096]).expect("write");
    made.push(z.clone());
    if !matches!(Segment::builder().name(&z).dir(&dir).open(), Err(Error::Corrupt { .. })) {
        failures.push("all-zero file not Corrupt".to_owned());
    }
    // A directory and a symlink under our prefix.
    let d = format!("{prefix}.dir");
    fs::create_dir(path_in(&dir, &d)).expect("mkdir");
    let l = format!("{prefix}.link");
    std::os::unix::fs::symlink(path_in(&dir, &z), path_in(&dir, &l)).expect("symlink");
    for n in [&d, &l] {
        let r = Segment::builder().name(n).dir(&dir).open();
        if r.is_ok() {
            failures.push(format!("{n} opened: {r:?}"));
        }
    }
    // Files without our magic and format are never removed. Files that
    // carry them (and a random creator token, which no live process holds)
    // pass the cleaner's identity check and may go: shmproc made-looking
    // objects of dead creators are what cleanup is for.
    let report = cleanup_stale_in(&dir).expect("cleanup_stale_in");
    for n in &made {
        let ours = n.ends_with("-true");
        let removed = report.removed.contains(n);
        let foreign = report.foreign.contains(&format!("shmproc.{n}"));
        if removed == foreign || (removed && !ours) {
            failures.push(format!("cleanup_stale_in on {n}: {report:?}"));
        }
        if !removed {
            fs::remove_file(path_in(&dir, n)).expect("foreign file left alone");
        }
    }
    for n in [&d, &l] {
        if !report.foreign.contains(&format!("shmproc.{n}")) {
            failures.push(format!("{n} not reported foreign: {report:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    fs::remove_dir(path_in(&dir, &d)).expect("rmdir");
    fs::remove_file(path_in(&dir, &l)).expect("rm symlink");
    say(format_args!("done {} {}", made.len() + 2, slowest.as_millis()));
}

/// Role `double_fetch`: a thread keeps flipping the `len` and `payload_len`
/// fields of a live segment in `DIR` between good values and garbage while
/// the main thread opens it `OPENS` times -> every open is `Ok` with a sane
/// length (whose last byte is readable) or a damage error. Says
/// `done <ok> <err>`.
pub(crate) fn role_double_fetch() {
    let dir = PathBuf::from(arg("DIR"));
    let name = arg("NAME");
    let opens: u32 = harness::arg_num("OPENS");
    let seg = Segment::builder().name(&name).dir(&dir).size(65536).create().expect("create");
    let path = path_in(&dir, &name);
    let file_len = fs::metadata(&path).expect("stat").len();
    let payload = 65536u64;
    let stop = Arc::new(AtomicBool::new(false));
    let flips = Arc::new(AtomicU64::new(0));
    let mutator = {
        let (stop, flips, path) = (Arc::clone(&stop), Arc::clone(&flips), path.clone());
        std::thread::spawn(move || {
            use std::os::unix::fs::FileExt;
            let f = fs::OpenOptions::new().write(true).open(&path).expect("open for writing");
            let lens = [file_len, 0, u64::MAX, file_len + 4096, 128, file_len - 1, 1 << 40];
            let pls = [payload, u64::MAX, file_len, file_len - 128, 0, 1 << 40, payload + 1];
            let mut rng = Rng::new(0x36);
            while !stop.load(Ordering::Relaxed) {
                let r = rng.next();
                let (off, v) = if r & 1 == 0 {
                    (hdr::LEN, lens[(r >> 8) as usize % lens.len()])
                } else {
                    (hdr::PAYLOAD_LEN, pls[(r >> 8) as usize % pls.len()])
                };
                f.write_all_at(&v.to_ne_bytes(), off).expect("pwrite");
                flips.fetch_add(1, Ordering::Relaxed);
            }
            f.write_all_at(&file_len.to_ne_bytes(), hdr::LEN).expect("restore len");
            f.write_all_at(&payload.to_ne_bytes(), hdr::PAYLOAD_LEN).expect("restore payload_len");
        })
    };
    harness::wait_until("the mutator to start", || flips.load(Ordering::Relaxed) > 0);
    let (mut ok, mut err) = (0u32, 0u32);
    let mut failures = Vec::new();
    for i in 0..opens {
        let r = open_in(&dir, &name, Duration::from_millis(50));
        match sane(&r, file_len) {
            Ok("Ok") => ok += 1,
            Ok(_) => err += 1,
            Err(e) => failures.push(format!("open {i}: {e}")),
        }
    }
    stop.store(true, Ordering::Relaxed);
    mutator.join().expect("mutator");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(open_in(&dir, &name, Duration::from_secs(5)).expect("restored").len(), 65536);
    drop(seg);
    say(format_args!("done {ok} {err} {}", flips.load(Ordering::Relaxed)));
}

/// Role `small_tmpfs`: in `DIR` (a 64 KiB tmpfs), a 1 MiB segment ->
/// `NoSpace` (create, open_or_create, open_or_recover) with nothing left
/// behind; a 4 KiB one works; then 4 KiB segments until `NoSpace`, each
/// touched on its last byte (no SIGBUS). Says `done <n small segments>`.
pub(crate) fn role_small_tmpfs() {
    let dir = PathBuf::from(arg("DIR"));
    let name = arg("NAME");
    let b = || Segment::builder().dir(&dir).name(&name);
    for (what, r) in [
        ("create", b().size(1 << 20).create()),
        ("open_or_create", b().size(1 << 20).open_or_create()),
        ("open_or_recover", b().size(1 << 20).open_or_recover()),
    ] {
        match r {
            Err(Error::NoSpace { requested }) => assert!(requested >= 1 << 20, "{what}: requested {requested}"),
            other => panic!("{what} of 1 MiB in a 64 KiB tmpfs: {other:?}"),
        }
        assert!(list_prefixed(&dir, "").is_empty(), "{what} left {:?}", list_prefixed(&dir, ""));
    }
    let small = b().size(4096).create().expect("a 4 KiB segment fits");
    write_u64(&small, 4088, 38);
    let other = b().open().expect("open it");
    assert_eq!(read_u64(&other, 4088), 38);
    drop(other);
    let mut fill = vec![small];
    let end = loop {
        let r = Segment::builder().dir(&dir).name(&format!("{name}.{}", fill.len())).size(4096).create();
        match r {
            Ok(s) => {
                write_u64(&s, 4088, 1);
                fill.push(s);
                assert!(fill.len() < 64, "a 64 KiB tmpfs took {} segments of 8 KiB", fill.len());
            }
            Err(e) => break e,
        }
    };
    assert!(matches!(end, Error::NoSpace { .. }), "filling up ended with {end:?}");
    assert_eq!(read_u64(&fill[0], 4088), 38);
    for s in &fill[1..] {
        assert_eq!(read_u64(s, 4088), 1);
    }
    let n = fill.len();
    drop(fill);
    assert!(list_prefixed(&dir, "").is_empty(), "left {:?}", list_prefixed(&dir, ""));
    say(format_args!("done {n}"));
}

/// Role `umask_create`: run under `umask 000`; checks the umask is in
/// effect (a plain file comes out 0666), creates segment `NAME`, and says
/// `modes <segment mode> <token mode>` (octal); holds it until stdin closes.
pub(crate) fn role_umask_create() {
    let probe = std::env::temp_dir().join(format!("shmproc-umask-probe-{}", std::process::id()));
    fs::write(&probe, b"").expect("probe file");
    let probe_mode = fs::metadata(&probe).expect("stat").permissions().mode() & 0o777;
    fs::remove_file(&probe).expect("rm probe");
    assert_eq!(probe_mode, 0o666, "umask 000 is not in effect");
    let name = arg("NAME");
    let seg = Segment::create(&name, 4096).expect("create");
    let mode = fs::metadata(shm_path(&name)).expect("stat").permissions().mode() & 0o7777;
    // Token files are named by a tag; ours has our pid in bytes 8..12.
    let token: Vec<_> = list_prefixed(Path::new(harness::SHM_DIR), "shmproc@")
        .into_iter()
        .filter(|n| {
            let bytes = std::fs::read(Path::new(harness::SHM_DIR).join(n)).ok();
            bytes.is_some_and(|b| b.len() >= 12 && b[8..12] == std::process::id().to_ne_bytes())
        })
        .collect();
    assert_eq!(token.len(), 1, "one liveness token: {token:?}");
    let tmode = fs::metadata(Path::new(harness::SHM_DIR).join(&token[0])).expect("stat").permissions().mode() & 0o7777;
    say(format_args!("modes {mode:o} {tmode:o}"));
    wait_for_parent();
    drop(seg);
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

/// RELIABILITY case 29: a header with another format version or ABI (bytes
/// 8..12 rewritten) -> open returns `VersionMismatch{found}`, in another
/// process too; `Segment::cleanup` refuses with `VersionMismatch` even when
/// the creator is dead (it cannot trust the token of a foreign format), and
/// `cleanup_stale_in` lists it as foreign; the file stays. With the format
/// restored, everything works again.
#[test]
fn foreign_format_version_refused() {
    let ctx = Ctx::new("c29");
    let n = ctx.name("seg");
    let seg = Segment::create(&n, 4096).expect("create");
    let path = shm_path(&n);
    let orig = u32::from_ne_bytes(peek(&path, hdr::FORMAT, 4).try_into().expect("4 bytes"));
    let (version, abi) = (orig & 0xffff, orig >> 16);
    for bad in [(version + 1) | (abi << 16), version | ((abi ^ 0xc) << 16), version, u32::MAX] {
        poke(&path, hdr::FORMAT, &bad.to_ne_bytes());
        match Segment::open(&n) {
            Err(Error::VersionMismatch { expected, found }) => assert_eq!((expected, found), (orig, bad)),
            other => panic!("format {bad:#x}: {other:?}"),
        }
        let mut c = ctx.child("open_report").arg("NAME", &n).start();
        let got = c.expect("result");
        c.wait_ok();
        assert!(got.starts_with("VersionMismatch"), "{got}");
        assert!(matches!(Segment::cleanup(&n), Err(Error::VersionMismatch { .. })), "format {bad:#x}");
        assert!(path.exists());
    }
    poke(&path, hdr::FORMAT, &orig.to_ne_bytes());
    Segment::open(&n).expect("restored format opens");
    drop(seg);

    // With a dead creator: cleanup still refuses.
    let dir = ctx.private_dir("d");
    let mut h = ctx.child("hold").arg("NAME", &n).arg("DIR", &dir).start();
    h.expect("ready");
    h.kill_and_reap();
    let p = path_in(&dir, &n);
    poke(&p, hdr::FORMAT, &((version + 1) | (abi << 16)).to_ne_bytes());
    assert!(matches!(Segment::cleanup_in(&dir, &n), Err(Error::VersionMismatch { .. })));
    let r = cleanup_stale_in(&dir).expect("cleanup_stale_in");
    assert_eq!((r.removed.len(), r.foreign.clone()), (0, vec![format!("shmproc.{n}")]), "{r:?}");
    assert!(p.exists(), "a foreign-format object is never removed");
    poke(&p, hdr::FORMAT, &orig.to_ne_bytes());
    let r = cleanup_stale_in(&dir).expect("cleanup_stale_in");
    assert_eq!(r.removed, vec![n.clone()], "{r:?}");
    ctx.finish();
}

/// RELIABILITY case 30 (also case 35 and 36, segment-header part):
/// garbage over every header field of a real segment (magic, format, kind,
/// layout hash, len, state, payload_len = `u64::MAX` and friends, creator
/// fields, reserved bytes), plus 1 400 fuzzed whole headers -> every open
/// returns the matching error (Corrupt/VersionMismatch/KindMismatch/
/// LayoutMismatch/Truncated/NotReady) or `Ok` with an in-bounds length;
/// a handle opened before the damage keeps its copied length. Runs in a
/// helper: no panic, no signal. (Ring-header garbage, the rest of 35,
/// arrives with the queues.)
#[test]
fn hostile_header_fields() {
    let ctx = Ctx::new("c30");
    let dir = ctx.private_dir("d");
    let mut c = ctx.child("hostile_fields").arg("DIR", &dir).arg("NAME", ctx.name("seg")).arg("ROUNDS", "1400").start();
    c.expect("done");
    c.wait_ok();
    ctx.finish();
}

/// RELIABILITY case 30 (foreign files): files under our prefix that are not
/// shmproc objects (random bytes of sizes 0 to 8192, some with a valid
/// magic and format, an all-zero file, a directory, a symlink) -> every
/// open is an error, `Corrupt` for the random ones, without waiting for a
/// READY that never comes; `cleanup_stale_in` leaves every file without
/// our magic and format alone (reported foreign).
#[test]
fn foreign_files_under_prefix() {
    let ctx = Ctx::new("c30f");
    let dir = ctx.private_dir("d");
    let mut c = ctx.child("foreign_files").arg("DIR", &dir).arg("NAME", ctx.name("f")).start();
    let done = c.expect("done");
    c.wait_ok();
    println!("foreign files: {done} (files, slowest open in ms)");
    ctx.finish();
}

/// RELIABILITY case 30 (FIFO squatting): a FIFO under our prefix -> open
/// fails with an error and `cleanup_stale_in` lists it as foreign, both
/// without blocking (opening a FIFO read-only blocks until a writer comes).
#[test]
fn fifo_under_prefix_does_not_block() {
    let ctx = Ctx::new("c30p");
    let dir = ctx.private_dir("d");
    let n = ctx.name("fifo");
    let st = std::process::Command::new("mkfifo").arg(path_in(&dir, &n)).status().expect("mkfifo");
    assert!(st.success());
    let mut c = ctx.child("cleaner").arg("NAME", &n).arg("MODE", "stale_in").arg("DIR", &dir).start();
    assert_eq!(c.expect("result"), format!("removed= alive=0 busy=0 foreign=1"));
    c.wait_ok();
    let mut c = ctx.child("open_report").arg("NAME", &n).arg("DIR", &dir).start();
    assert!(c.expect("result").starts_with("Corrupt"));
    c.wait_ok();
    fs::remove_file(path_in(&dir, &n)).expect("rm fifo");
    ctx.finish();
}

/// RELIABILITY case 30 (FIFOs squatting our names in `/dev/shm`, which is
/// world-writable, so any user can make them): with a FIFO named like a
/// liveness token (`shmproc@<6 hex tag>`) and one under the segment
/// prefix -> a new process still creates its token and a segment, and
/// `cleanup_stale` returns; `open_raw(.., ReadOnly)` of the FIFO fails
/// instead of blocking. Each helper runs in its own mount namespace with a
/// private tmpfs on `/dev/shm`, so the FIFOs disturb nothing else; skipped,
/// with the reason printed, where that cannot be set up.
#[test]
fn fifos_in_dev_shm_do_not_block() {
    let ctx = Ctx::new("c30t");
    if let Err(why) = harness::private_dev_shm_works() {
        println!("skipped: cannot give a helper a private /dev/shm: {why}");
        ctx.finish();
        return;
    }
    let fifos = "mkfifo -m 0666 /dev/shm/shmproc@0abcde /dev/shm/shmproc.fifo";
    let private = |role: &str| ctx.child(role).in_private_dev_shm(fifos);
    let mut h = private("hold").arg("NAME", ctx.name("seg")).arg("CLEANUP_STALE", "1").start();
    h.expect("ready");
    h.finish();
    let mut r = private("open_report").arg("NAME", "fifo").arg("KIND", "raw_ro").start();
    let got = r.expect("result");
    r.wait_ok();
    assert!(!got.starts_with("Ok"), "open_raw of a FIFO: {got}");
    ctx.finish();
}

/// RELIABILITY case 36: a thread flips the `len` and `payload_len` fields
/// of a live segment between good values and garbage while 2 000 opens run
/// -> each open is `Ok` with a sane, in-bounds length or an error (each
/// field is loaded once, then validated); no crash. Runs in a helper.
#[test]
fn double_fetch_of_length_fields() {
    let ctx = Ctx::new("c36");
    let dir = ctx.private_dir("d");
    let mut c = ctx.child("double_fetch").arg("DIR", &dir).arg("NAME", ctx.name("seg")).arg("OPENS", "2000").start();
    let done = c.expect("done");
    c.wait_ok();
    println!("double fetch: {done} (ok, err, flips)");
    ctx.finish();
}

/// RELIABILITY case 34 (mode, other uid): a segment created under `umask
/// 000` is mode 0600 (its liveness token too); a process of another uid
/// (65534) cannot open it or clean it up (`PermissionDenied`), nor map it
/// raw (`InvalidName`: `open_raw` refuses shmproc names).
/// The other-uid part is skipped, with the reason printed, where this test
/// cannot switch users.
#[test]
fn mode_0600_and_other_uid_refused() {
    let ctx = Ctx::new("c34m");
    let n = ctx.name("seg");
    let mut h =
        ctx.child("umask_create").wrapped("sh", &["-c", "umask 000; exec \"$0\" \"$@\""]).arg("NAME", &n).start();
    assert_eq!(h.expect("modes"), "600 600");
    let meta = fs::metadata(shm_path(&n)).expect("stat");
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
    let mut skipped = None;
    for (kind, action) in [(Some("seg"), None), (Some("raw_ro"), None), (None, Some("cleanup"))] {
        let mut cmd = ctx.child("open_report").arg("NAME", &n).user(65534, 65534);
        if let Some(k) = kind {
            cmd = cmd.arg("KIND", k);
        }
        if let Some(a) = action {
            cmd = cmd.arg("ACTION", a);
        }
        match cmd.spawn() {
            Ok(mut c) => {
                let got = c.expect("result");
                c.wait_ok();
                // A raw open of a shmproc object's name is refused by its
                // name alone, before any system call.
                let refused = if kind == Some("raw_ro") { "InvalidName" } else { "PermissionDenied" };
                assert!(got.starts_with(refused), "uid 65534, {kind:?} {action:?}: {got}");
            }
            Err(e) => {
                skipped = Some(e.to_string());
                break;
            }
        }
    }
    if let Some(why) = skipped {
        println!("skipped (other-uid part): cannot start a helper as uid 65534: {why}");
    }
    h.finish();
    ctx.finish();
}

/// RELIABILITY case 34 (squatting): a name pre-created by another uid
/// (a copy of a valid segment file, chowned to 65534 and made mode 0666)
/// -> `create` fails with `Exists`; `open`, `open_or_create`,
/// `open_or_recover`, `open_raw` and `cleanup` refuse with
/// `PermissionDenied` (the owner is checked with `fstat`).
#[test]
fn squatted_name_refused() {
    let ctx = Ctx::new("c34s");
    let model = ctx.name("model");
    let n = ctx.name("squat");
    let bytes = {
        let m = Segment::create(&model, 4096).expect("create");
        let b = fs::read(shm_path(&model)).expect("read model");
        drop(m);
        b
    };
    let path = shm_path(&n);
    fs::write(&path, &bytes).expect("write squat");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).expect("chmod");
    if let Err(e) = std::os::unix::fs::chown(&path, Some(65534), Some(65534)) {
        fs::remove_file(&path).expect("rm");
        println!("skipped: cannot chown to uid 65534: {e}");
        ctx.finish();
        return;
    }
    assert_eq!(fs::metadata(&path).expect("stat").uid(), 65534);
    let denied = |r: shmproc::Result<Segment>| matches!(r, Err(Error::PermissionDenied { .. }));
    assert!(matches!(Segment::create(&n, 4096), Err(Error::Exists { .. })));
    assert!(denied(Segment::open(&n)));
    assert!(denied(Segment::open_or_create(&n, 4096)));
    assert!(denied(Segment::builder().name(&n).size(4096).open_or_recover()));
    // open_raw never maps a shmproc object's name, squatted or not.
    assert!(matches!(
        Segment::open_raw(&format!("shmproc.{n}"), shmproc::Access::ReadOnly),
        Err(Error::InvalidName { .. })
    ));
    assert!(denied(Shared::<AtomicU64>::open(&n).map(|s| s.segment().clone())));
    assert!(matches!(Segment::cleanup(&n), Err(Error::PermissionDenied { .. })));
    assert!(path.exists());
    fs::remove_file(&path).expect("rm squat");
    ctx.finish();
}

/// Mounts a small tmpfs and always unmounts and removes it on drop.
struct TmpfsGuard {
    dir: PathBuf,
    mounted: bool,
}

impl TmpfsGuard {
    fn mount(dir: PathBuf, size: &str) -> Result<TmpfsGuard, String> {
        fs::create_dir(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        let mut g = TmpfsGuard { dir, mounted: false };
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"])
            .arg(&g.dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim()));
        }
        g.mounted = true;
        Ok(g)
    }
}

impl Drop for TmpfsGuard {
    fn drop(&mut self) {
        if self.mounted {
            let ok = std::process::Command::new("umount").arg(&self.dir).status().is_ok_and(|s| s.success());
            if !ok {
                let _ = std::process::Command::new("umount").arg("-l").arg(&self.dir).status();
            }
        }
        let _ = fs::remove_dir(&self.dir);
        if self.dir.exists() && !self.mounted {
            harness::remove_tree(&self.dir);
        }
    }
}

/// RELIABILITY case 38: in a 64 KiB tmpfs, creating a 1 MiB segment ->
/// `NoSpace` (via `create`, `open_or_create` and `open_or_recover`) with no
/// SIGBUS and no file left; a 4 KiB segment works, and filling the tmpfs
/// with them ends in `NoSpace` with every created page usable. Runs in a
/// helper; the tmpfs is unmounted and removed even on failure. Skipped,
/// with the reason printed, where tmpfs cannot be mounted.
#[test]
fn small_tmpfs_no_space() {
    let ctx = Ctx::new("c38");
    let dir = std::env::temp_dir().join(format!("shmproc-{}-tmpfs", ctx.prefix()));
    let guard = match TmpfsGuard::mount(dir, "64k") {
        Ok(g) => g,
        Err(why) => {
            println!("skipped: cannot mount tmpfs: {why}");
            ctx.finish();
            return;
        }
    };
    let mut c = ctx.child("small_tmpfs").arg("DIR", &guard.dir).arg("NAME", ctx.name("seg")).start();
    let done = c.expect("done");
    c.wait_ok();
    println!("small tmpfs: {done} small segments fitted");
    assert!(list_prefixed(&guard.dir, "").is_empty());
    drop(guard);
    ctx.finish();
}
