//! Looking at shmproc objects from outside: list what is in `/dev/shm`
//! (kind, size, creator, alive or stale) and describe one object (a
//! queue's depth, a lock's owner, a barrier's count, ...). This is the
//! library behind the `shmproc` command-line tool.
//!
//! Inspection is read-only: files are opened `O_RDONLY` and read with
//! `pread`; nothing is mapped, no lock is taken, no producer, consumer or
//! holder is registered, and no liveness token is created. Every value read
//! is checked before use (another process may be buggy or hostile): a file
//! that is not a shmproc object of this version, or cannot be read, is
//! listed as [`Status::Foreign`] or [`Status::Unreadable`], never a crash.
//! Objects change while they are read, so a report is a snapshot whose
//! fields may come from slightly different moments.
//!
//! # The `shmproc` tool
//!
//! ```text
//! shmproc ls [--all] [--dir DIR]          list objects: name, kind, size, creator pid, status
//! shmproc inspect NAME [--dir DIR]        kind-specific state of one object (NAME or a path)
//! shmproc arenas PID                      the shared arenas of a process and what they hold
//! shmproc clean [--dry-run] [--dir DIR] [NAME...]
//!                                         remove objects whose creator is confirmed dead
//! shmproc bench [--quick] [--svg PATH]    shm vs OS pipe vs Unix socket, 64 B to 1 MiB
//! shmproc help | --help
//! ```
//!
//! `--all` also lists liveness-token files (`shmproc@<tag>`) and spill
//! segments (large queue messages in transit). `clean` never removes an
//! object whose creator lives (the check is repeated under a lock just
//! before the unlink). Bad usage exits with code 2 and a message.
//!
//! # Examples
//!
//! ```
//! use shmproc::inspect::{self, Kind, Status};
//!
//! let name = format!("doc-inspect-{}", std::process::id());
//! let q = shmproc::Queue::<u32>::builder().name(&name).build()?;
//! q.put(1)?;
//! q.put(2)?;
//! let all = inspect::objects()?;
//! let mine = all.iter().find(|o| o.name == name).expect("listed");
//! assert_eq!((mine.kind, &mine.status), (Kind::Queue, &Status::Alive));
//! let report = inspect::describe(&name)?;
//! assert_eq!(report.field("depth"), Some("2"));
//! # Ok::<(), shmproc::Error>(())
//! ```
//!
//! Python: no equivalent in `multiprocessing` (the closest is listing
//! `/dev/shm` and `resource_tracker`'s cleanup at exit).

use std::fmt;
use std::path::Path;

use crate::channel::queue as blocking;
use crate::error::{Error, Result};
use crate::owner::registry;
use crate::queue::{byte_ring, bytes, mpmc, spsc};
use crate::shared::array::{self, Flavor, array_layout_hash};
use crate::shared::raw::RawCell;
use crate::shared::value::{self, value_layout_hash};
use crate::shm::header::{HeaderSnapshot, INITIALIZING, POISONED, READY, kind};
use crate::shm::layout::ShmSafe;
use crate::shm::peek::{self, Peek, PeekDir, SEGMENT_PREFIX, TOKEN_PREFIX};
use crate::sync::lock::RLockState;
use crate::sync::mutex::mutex_layout_hash;
use crate::sync::raw_event::{BROKEN_OTHER, RawBarrier, RawCondvar, RawEvent};
use crate::sync::raw_mutex::{self, RawMutex, WAITERS};
use crate::sync::raw_semaphore::{self, RawSemaphore};

/// What an object is.
///
/// `#[non_exhaustive]`: new kinds of objects add variants.
///
/// # Examples
///
/// ```
/// assert_eq!(shmproc::inspect::Kind::Queue.to_string(), "queue");
/// ```
///
/// Python: the classes of `multiprocessing` (`Queue`, `Lock`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// Untyped bytes ([`Segment`](crate::Segment)).
    Raw,
    /// A spill segment: a large queue or pipe message in transit.
    Spill,
    /// A typed segment of a type this tool does not know ([`Shared<T>`](crate::Shared)).
    Typed,
    /// A [`Mutex<T>`](crate::Mutex).
    Mutex,
    /// A [`Lock`](crate::Lock).
    Lock,
    /// An [`RLock`](crate::RLock).
    RLock,
    /// A [`Semaphore`](crate::Semaphore) or [`BoundedSemaphore`](crate::BoundedSemaphore).
    Semaphore,
    /// A [`Condvar`](crate::Condvar).
    Condvar,
    /// An [`Event`](crate::Event).
    Event,
    /// A [`Barrier`](crate::Barrier).
    Barrier,
    /// A child process's task and result channel.
    Channel,
    /// An [`SpscRing`](crate::SpscRing).
    Spsc,
    /// An [`MpmcRing`](crate::MpmcRing).
    Mpmc,
    /// A [`ByteRing`](crate::ByteRing).
    Bytes,
    /// A [`Queue`](crate::Queue) or [`JoinableQueue`](crate::JoinableQueue).
    Queue,
    /// A [`Pipe`](crate::Pipe).
    Pipe,
    /// A [`Value<T>`](crate::Value).
    Value,
    /// A [`RawValue<T>`](crate::RawValue).
    RawValue,
    /// An [`Array<T>`](crate::Array).
    Array,
    /// A [`RawArray<T>`](crate::RawArray).
    RawArray,
    /// A [`Manager`](crate::Manager)'s accept queue (the manager's name).
    Manager,
    /// A pool's worker table ([`Pool`](crate::Pool), [`ProcessPoolExecutor`](crate::ProcessPoolExecutor)).
    Pool,
    /// A shared arena: equal cells, each holding one small anonymous
    /// object (a [`Lock`](crate::Lock), a [`Value`](crate::Value), ...).
    /// Arenas have no name; see [`arenas`].
    Arena,
    /// A liveness-token file (`shmproc@<tag>`): one per process using locks
    /// or queues, locked while the process lives.
    Token,
    /// A header kind this version does not know (the number).
    Unknown(u32),
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Kind::Raw => "raw",
            Kind::Spill => "spill",
            Kind::Typed => "typed",
            Kind::Mutex => "mutex",
            Kind::Lock => "lock",
            Kind::RLock => "rlock",
            Kind::Semaphore => "semaphore",
            Kind::Condvar => "condvar",
            Kind::Event => "event",
            Kind::Barrier => "barrier",
            Kind::Channel => "channel",
            Kind::Spsc => "spsc-ring",
            Kind::Mpmc => "mpmc-ring",
            Kind::Bytes => "byte-ring",
            Kind::Queue => "queue",
            Kind::Pipe => "pipe",
            Kind::Value => "value",
            Kind::RawValue => "raw-value",
            Kind::Array => "array",
            Kind::RawArray => "raw-array",
            Kind::Manager => "manager",
            Kind::Pool => "pool",
            Kind::Arena => "arena",
            Kind::Token => "token",
            Kind::Unknown(k) => return write!(f, "unknown({k})"),
        };
        f.write_str(s)
    }
}

/// Whether an object's creator lives, or why that cannot be told.
///
/// `#[non_exhaustive]`: finer states may be added.
///
/// # Examples
///
/// ```
/// use shmproc::inspect::Status;
/// assert!(Status::Stale.is_stale());
/// assert_eq!(Status::Foreign("bad magic".into()).to_string(), "foreign (bad magic)");
/// ```
///
/// Python: no equivalent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Status {
    /// The creator lives (or the kernel could not say it is dead).
    Alive,
    /// The kernel confirms the creator dead: [`clean`](crate::cleanup_stale) removes it.
    Stale,
    /// The header records no creator (left alone by cleanup).
    NoCreator,
    /// The creator is still building it.
    Initializing,
    /// Not a shmproc object of this version, or another user's: left alone.
    Foreign(String),
    /// The file could not be read (the reason).
    Unreadable(String),
}

impl Status {
    /// Whether the object is stale (its creator confirmed dead).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!shmproc::inspect::Status::Alive.is_stale());
    /// ```
    ///
    /// Python: no equivalent.
    pub fn is_stale(&self) -> bool {
        matches!(self, Status::Stale)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Alive => f.write_str("alive"),
            Status::Stale => f.write_str("stale"),
            Status::NoCreator => f.write_str("no-creator"),
            Status::Initializing => f.write_str("initializing"),
            Status::Foreign(why) => write!(f, "foreign ({why})"),
            Status::Unreadable(why) => write!(f, "unreadable ({why})"),
        }
    }
}

/// One entry of [`objects`]: a named object or a token file.
///
/// # Examples
///
/// ```
/// for o in shmproc::inspect::objects()? {
///     println!("{} {} {} bytes {:?} {}", o.name, o.kind, o.size, o.creator_pid, o.status);
/// }
/// # Ok::<(), shmproc::Error>(())
/// ```
///
/// Python: no equivalent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ObjectInfo {
    /// The object's name (as given to `create`/`open`), or the token file's name.
    pub name: String,
    /// The file name in the directory.
    pub file: String,
    /// What it is.
    pub kind: Kind,
    /// The file's length in bytes.
    pub size: u64,
    /// The creator's pid as recorded (a token's owner for [`Kind::Token`]).
    pub creator_pid: Option<u32>,
    /// Alive, stale, or why that cannot be told.
    pub status: Status,
    /// Plumbing rather than a user's object (token files, spill segments):
    /// the tool hides these unless asked (`--all`).
    pub internal: bool,
}

/// What [`describe`] tells about one object: its [`ObjectInfo`] and
/// kind-specific fields (name and value, in display order).
///
/// # Examples
///
/// ```
/// let name = format!("doc-report-{}", std::process::id());
/// let sem = shmproc::Semaphore::create(&name, 3)?;
/// let r = shmproc::inspect::describe(&name)?;
/// assert_eq!(r.field("value"), Some("3"));
/// println!("{r}");
/// # drop(sem);
/// # Ok::<(), shmproc::Error>(())
/// ```
///
/// Python: no equivalent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// The object.
    pub object: ObjectInfo,
    /// Kind-specific fields: `("depth", "2")`, `("owner", "pid 1234 ...")`, ...
    pub fields: Vec<(&'static str, String)>,
}

impl Report {
    /// The value of field `key`, if the report has it.
    ///
    /// # Examples
    ///
    /// ```
    /// let name = format!("doc-field-{}", std::process::id());
    /// let e = shmproc::Event::create(&name)?;
    /// e.set();
    /// assert_eq!(shmproc::inspect::describe(&name)?.field("set"), Some("yes"));
    /// # Ok::<(), shmproc::Error>(())
    /// ```
    ///
    /// Python: no equivalent.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.object;
        let pid = o.creator_pid.map_or_else(|| "-".to_owned(), |p| p.to_string());
        writeln!(f, "{:<14} {}", "name", o.name)?;
        writeln!(f, "{:<14} {}", "kind", o.kind)?;
        writeln!(f, "{:<14} {}", "size", o.size)?;
        writeln!(f, "{:<14} {}", "creator pid", pid)?;
        write!(f, "{:<14} {}", "status", o.status)?;
        for (k, v) in &self.fields {
            write!(f, "\n{k:<14} {v}")?;
        }
        Ok(())
    }
}

/// Lists the shmproc objects in `/dev/shm`: named segments of every kind
/// and liveness-token files, sorted by file name.
///
/// # Examples
///
/// ```
/// let name = format!("doc-objects-{}", std::process::id());
/// let _lock = shmproc::Lock::create(&name)?;
/// let all = shmproc::inspect::objects()?;
/// assert!(all.iter().any(|o| o.name == name && o.kind == shmproc::inspect::Kind::Lock));
/// # Ok::<(), shmproc::Error>(())
/// ```
///
/// # Errors
/// [`Error::Os`] if the directory cannot be read. A file that cannot be
/// read is listed with [`Status::Unreadable`], not an error.
///
/// Python: no equivalent (`ls /dev/shm`).
pub fn objects() -> Result<Vec<ObjectInfo>> {
    list(&PeekDir::open(None)?)
}

/// [`objects`] in a directory given to [`SegmentBuilder::dir`](crate::SegmentBuilder::dir).
///
/// # Examples
///
/// ```
/// let dir = std::env::temp_dir().join(format!("doc-objects-in-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).expect("mkdir");
/// let seg = shmproc::Segment::builder().dir(&dir).name("bytes").size(64).create()?;
/// let all = shmproc::inspect::objects_in(&dir)?;
/// assert_eq!(all.len(), 1);
/// assert_eq!(all[0].kind, shmproc::inspect::Kind::Raw);
/// drop(seg);
/// # std::fs::remove_dir_all(&dir).expect("rmdir");
/// # Ok::<(), shmproc::Error>(())
/// ```
///
/// # Errors
/// As for [`objects`].
///
/// Python: no equivalent.
pub fn objects_in(dir: impl AsRef<Path>) -> Result<Vec<ObjectInfo>> {
    list(&PeekDir::open(Some(dir.as_ref()))?)
}

fn list(dir: &PeekDir) -> Result<Vec<ObjectInfo>> {
    // An object removed between the listing and its reading is skipped.
    Ok(dir.list()?.into_iter().filter_map(|file| entry(dir, &file).map(|e| e.0)).collect())
}

/// Describes the named object `name` in `/dev/shm`. `name` may also be a
/// path to the file (`/dev/shm/shmproc.jobs`, `/tmp/d/shmproc.jobs`).
///
/// # Examples
///
/// ```
/// let name = format!("doc-describe-{}", std::process::id());
/// let b = shmproc::Barrier::create(&name, 3)?;
/// let r = shmproc::inspect::describe(&name)?;
/// assert_eq!(r.object.kind, shmproc::inspect::Kind::Barrier);
/// assert_eq!(r.field("parties"), Some("3"));
/// assert_eq!(r.field("waiting"), Some("0"));
/// # drop(b);
/// # Ok::<(), shmproc::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidName`], [`Error::NotFound`], [`Error::Os`]. A foreign or
/// unreadable object is a report with that status and no fields.
///
/// Python: no equivalent.
pub fn describe(name: &str) -> Result<Report> {
    if name.starts_with("/proc/") {
        return describe_path(name);
    }
    if name.contains('/') {
        let p = Path::new(name);
        let dir = p.parent().ok_or_else(|| Error::InvalidArgument { what: "a path needs a directory" })?;
        let file = p.file_name().and_then(|f| f.to_str()).ok_or_else(|| Error::InvalidName {
            name: name.to_owned(),
            reason: "the path does not end in a UTF-8 file name",
        })?;
        let user = file.strip_prefix(SEGMENT_PREFIX).unwrap_or(file);
        return describe_in(dir, user);
    }
    describe_at(&PeekDir::open(None)?, name)
}

/// [`describe`] for an object in a directory given to
/// [`SegmentBuilder::dir`](crate::SegmentBuilder::dir).
///
/// # Examples
///
/// ```
/// let dir = std::env::temp_dir();
/// let name = format!("doc-describe-in-{}", std::process::id());
/// let seg = shmproc::Segment::builder().dir(&dir).name(&name).size(100).create()?;
/// let r = shmproc::inspect::describe_in(&dir, &name)?;
/// assert_eq!(r.field("payload bytes"), Some("100"));
/// # drop(seg);
/// # Ok::<(), shmproc::Error>(())
/// ```
///
/// # Errors
/// As for [`describe`].
///
/// Python: no equivalent.
pub fn describe_in(dir: impl AsRef<Path>, name: &str) -> Result<Report> {
    describe_at(&PeekDir::open(Some(dir.as_ref()))?, name)
}

fn describe_at(dir: &PeekDir, name: &str) -> Result<Report> {
    if name.starts_with(TOKEN_PREFIX) {
        if !dir.list()?.iter().any(|f| f == name) {
            return Err(Error::NotFound { name: name.to_owned() });
        }
        let object = entry(dir, name).ok_or_else(|| Error::NotFound { name: name.to_owned() })?.0;
        return Ok(Report { object, fields: Vec::new() });
    }
    let file = crate::shm::name::file_name(name)?;
    // A missing object is an error; everything else is a report.
    let (object, opened) = entry(dir, &file).ok_or_else(|| Error::NotFound { name: name.to_owned() })?;
    let fields = match opened {
        Some((p, h)) => match fields(&p, &h, object.kind) {
            Ok(f) => f,
            Err(e) => vec![("error", format!("the object's state makes no sense: {e}"))],
        },
        None => Vec::new(),
    };
    Ok(Report { object, fields })
}

/// What [`entry`] found: the object, and its open file and header if it is
/// a readable shmproc object of this version.
type Entry = (ObjectInfo, Option<(Peek, HeaderSnapshot)>);

/// Reads one directory entry; `None` if there is no such file (any more).
fn entry(dir: &PeekDir, file: &str) -> Option<Entry> {
    let mut info = ObjectInfo {
        name: file.to_owned(),
        file: file.to_owned(),
        kind: Kind::Raw,
        size: 0,
        creator_pid: None,
        status: Status::Alive,
        internal: false,
    };
    if file.starts_with(TOKEN_PREFIX) {
        info.kind = Kind::Token;
        info.internal = true;
        info.size = dir.file_len(file).unwrap_or(0);
        match peek::token_file_info(file) {
            Some((pid, alive)) => {
                info.creator_pid = pid;
                info.status = if alive { Status::Alive } else { Status::Stale };
            }
            None => info.status = Status::Foreign("not a token file name".to_owned()),
        }
        return Some((info, None));
    }
    let user = file.strip_prefix(SEGMENT_PREFIX).unwrap_or(file);
    info.name = user.to_owned();
    info.internal = user.starts_with("spill.");
    examine(info, dir.open_segment(user))
}

/// [`entry`] for a file opened (or not) as `opened`.
fn examine(mut info: ObjectInfo, opened: Result<Peek>) -> Option<Entry> {
    let p = match opened {
        Ok(p) => p,
        Err(Error::NotFound { .. }) => return None,
        Err(Error::Corrupt { what }) => {
            info.status = Status::Foreign(what.to_owned());
            return Some((info, None));
        }
        Err(Error::InvalidName { reason, .. }) => {
            info.status = Status::Foreign(format!("not a valid object name: {reason}"));
            return Some((info, None));
        }
        Err(e) => {
            info.status = Status::Unreadable(e.to_string());
            return Some((info, None));
        }
    };
    info.size = p.file_len();
    if !p.owned_by_me() {
        info.status = Status::Foreign("belongs to another user".to_owned());
        return Some((info, None));
    }
    let h = match p.header().and_then(|h| h.check_identity().map(|()| h)) {
        Ok(h) => h,
        Err(e) => {
            info.status = Status::Foreign(e.to_string());
            return Some((info, None));
        }
    };
    info.kind = classify(&h, info.internal);
    info.creator_pid = (h.creator_pid != 0).then_some(h.creator_pid);
    let alive = peek::creator_alive(&h);
    info.status = match (h.state, alive) {
        (_, Some(false)) => Status::Stale,
        (READY, Some(true)) => Status::Alive,
        (READY, None) => Status::NoCreator,
        (INITIALIZING, _) => Status::Initializing,
        (POISONED, _) => Status::Foreign("its creator failed while building it".to_owned()),
        _ => Status::Foreign("unknown header state".to_owned()),
    };
    let usable = h.state == READY && h.payload_len <= h.len && h.len <= p.file_len();
    if usable {
        info.kind = refine(&p, &h, info.kind);
    }
    Some((info, usable.then_some((p, h))))
}

/// The shared arenas a process maps, described: each arena holds many
/// small anonymous objects (locks, values, events, ...), one per cell.
/// Arenas have no name in `/dev/shm`; they are found through the
/// process's open descriptors (`/proc/<pid>/fd`), and each report's name
/// is that descriptor's path, which [`describe`] also takes.
///
/// # Examples
///
/// ```
/// use shmproc::inspect::{self, Kind};
///
/// let locks: Vec<shmproc::Lock> = (0..10).map(|_| shmproc::Lock::new()).collect::<Result<_, _>>()?;
/// locks[3].acquire()?;
/// let arenas = inspect::arenas(std::process::id())?;
/// assert!(arenas.iter().all(|r| r.object.kind == Kind::Arena));
/// let taken: usize = arenas.iter().filter_map(|r| r.field("taken")?.parse::<usize>().ok()).sum();
/// assert!(taken >= 10);
/// # locks[3].release()?;
/// # Ok::<(), shmproc::Error>(())
/// ```
///
/// # Errors
/// [`Error::Os`] if the process's descriptors cannot be listed (no such
/// process, or another user's).
///
/// Python: no equivalent (its arenas are private to `multiprocessing.heap`).
pub fn arenas(pid: u32) -> Result<Vec<Report>> {
    let dir = format!("/proc/{pid}/fd");
    let listing = std::fs::read_dir(&dir).map_err(|e| Error::os("read /proc/<pid>/fd", e))?;
    let mut out = Vec::new();
    for e in listing.flatten() {
        let is_memfd = std::fs::read_link(e.path()).is_ok_and(|t| t.to_string_lossy().starts_with("/memfd:shmproc"));
        if !is_memfd {
            continue;
        }
        let path = e.path().to_string_lossy().into_owned();
        if let Ok(r) = describe_path(&path)
            && r.object.kind == Kind::Arena
        {
            out.push(r);
        }
    }
    Ok(out)
}

/// [`describe`] for a file reached by a path outside any object directory
/// (a process's descriptor under `/proc`).
fn describe_path(path: &str) -> Result<Report> {
    let info = ObjectInfo {
        name: path.to_owned(),
        file: path.to_owned(),
        kind: Kind::Raw,
        size: 0,
        creator_pid: None,
        status: Status::Alive,
        internal: false,
    };
    let (object, opened) =
        examine(info, Peek::open_path(Path::new(path))).ok_or_else(|| Error::NotFound { name: path.to_owned() })?;
    let fields = match opened {
        Some((p, h)) => fields(&p, &h, object.kind).unwrap_or_else(|e| vec![("error", e.to_string())]),
        None => Vec::new(),
    };
    Ok(Report { object, fields })
}

/// The kind of a segment, from its header. New kinds: one arm here, one in
/// [`fields`].
fn classify(h: &HeaderSnapshot, spill: bool) -> Kind {
    match h.kind {
        kind::RAW if spill => Kind::Spill,
        kind::RAW => Kind::Raw,
        kind::TYPED => typed_kind(h),
        kind::CHANNEL => Kind::Channel,
        kind::SPSC => Kind::Spsc,
        kind::MPMC => Kind::Mpmc,
        kind::BYTES => Kind::Bytes,
        kind::QUEUE => Kind::Queue,
        kind::PIPE => Kind::Pipe,
        kind::POOL => Kind::Pool,
        kind::HEAP => Kind::Arena,
        kind::ARRAY => Kind::Array,
        k => Kind::Unknown(k),
    }
}

/// Kinds that the header alone does not tell apart, told from the payload:
/// a raw array from a locked one (the element size picks the layout hash),
/// a manager's accept queue from a user's queue (a flag).
fn refine(p: &Peek, h: &HeaderSnapshot, k: Kind) -> Kind {
    match k {
        Kind::Array if matches!(array_layout(p, h), Ok((Flavor::Raw, _, _))) => Kind::RawArray,
        Kind::Queue if p.u32_at(h, blocking::peek::FLAGS).is_ok_and(|f| f & blocking::peek::MANAGER != 0) => {
            Kind::Manager
        }
        k => k,
    }
}

/// The flavour, element size and alignment of an array, from its
/// `elem_size` word checked against the header's layout hash.
fn array_layout(p: &Peek, h: &HeaderSnapshot) -> Result<(Flavor, usize, usize)> {
    let size = p.u64_at(h, array::peek::ELEM_SIZE)?;
    let size = usize::try_from(size)
        .ok()
        .filter(|&s| s as u64 <= h.payload_len)
        .ok_or_else(|| Error::Corrupt { what: "array element size" })?;
    (0..8)
        .map(|s| 1usize << s)
        .flat_map(|align| [(Flavor::Locked, align), (Flavor::Raw, align)])
        .find(|&(flavor, align)| array_layout_hash(flavor, size, align) == h.layout_hash)
        .map(|(flavor, align)| (flavor, size, align))
        .ok_or_else(|| Error::Corrupt { what: "array element size does not match its layout hash" })
}

/// Sync objects are TYPED segments told apart by their layout hash.
fn typed_kind(h: &HeaderSnapshot) -> Kind {
    let known: [(u64, Kind); 10] = [
        (RawMutex::LAYOUT_HASH, Kind::Lock),
        (RLockState::LAYOUT_HASH, Kind::RLock),
        (RawSemaphore::LAYOUT_HASH, Kind::Semaphore),
        (RawCondvar::LAYOUT_HASH, Kind::Condvar),
        (RawEvent::LAYOUT_HASH, Kind::Event),
        (RawBarrier::LAYOUT_HASH, Kind::Barrier),
        (RawCell::<u8>::LAYOUT_HASH, Kind::RawValue),
        (RawCell::<u16>::LAYOUT_HASH, Kind::RawValue),
        (RawCell::<u32>::LAYOUT_HASH, Kind::RawValue),
        (RawCell::<u64>::LAYOUT_HASH, Kind::RawValue),
    ];
    if let Some((_, k)) = known.iter().find(|(hash, _)| *hash == h.layout_hash) {
        return *k;
    }
    if mutex_value_layout(h).is_some() {
        Kind::Mutex
    } else if value_layout(h).is_some() {
        Kind::Value
    } else {
        Kind::Typed
    }
}

/// The size and alignment of the `T` of a lock-guarded value (a
/// `Mutex<T>` or `Value<T>`) whose layout hash is in `h`, found by trying
/// every `T` layout that fits: the state is `data` bytes of fixed fields
/// (8-aligned), then `T` at its alignment, the whole rounded up to the
/// larger of 8 and `T`'s alignment; so `T` takes all but at most
/// `data + 2 * align` bytes of the state. `hash` is the type's
/// layout-hash formula.
fn guarded_layout(
    h: &HeaderSnapshot,
    data: usize,
    hash: fn(usize, usize, usize, usize) -> u64,
) -> Option<(usize, usize)> {
    let state = usize::try_from(h.payload_len).ok()?;
    if state < data {
        return None;
    }
    (0..8).map(|s| 1usize << s).find_map(|align| {
        let state_align = align.max(8);
        if !state.is_multiple_of(state_align) {
            return None;
        }
        let lowest = state.saturating_sub(data + 2 * align);
        (lowest..=state - data)
            .filter(|size| size.is_multiple_of(align))
            .find(|&size| hash(state, state_align, size, align) == h.layout_hash)
            .map(|size| (size, align))
    })
}

/// The size and alignment of a `Value<T>`'s `T` (the data follows the lock
/// and the sequence word).
fn value_layout(h: &HeaderSnapshot) -> Option<(usize, usize)> {
    guarded_layout(h, value::peek::DATA, value_layout_hash)
}

/// The size and alignment of a `Mutex<T>`'s `T` (the data follows the
/// lock).
fn mutex_value_layout(h: &HeaderSnapshot) -> Option<(usize, usize)> {
    guarded_layout(h, raw_mutex::peek::MUTEX_DATA, mutex_layout_hash)
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_owned()
}

/// "pid 1234 (thread slot 2), alive" for owner id `id`.
fn owner_text(id: u32, nonce: u64) -> String {
    let o = peek::owner_info(id, nonce);
    let pid = o.pid.map_or_else(|| "unknown pid".to_owned(), |p| format!("pid {p}"));
    format!("{pid} (thread slot {}), {}", o.slot, if o.alive { "alive" } else { "dead" })
}

/// A lock word at payload offset `at`: owner, waiters, consistency.
fn lock_fields(p: &Peek, h: &HeaderSnapshot, at: usize, prefix: &'static str) -> Result<Vec<(&'static str, String)>> {
    let word = p.u32_at(h, at + raw_mutex::peek::WORD)?;
    let state = p.u32_at(h, at + raw_mutex::peek::STATE)?;
    let nonce = p.u64_at(h, at + raw_mutex::peek::OWNER_NONCE)?;
    let id = word & raw_mutex::peek::OWNER_MASK;
    let owner = if id == 0 { "none (unlocked)".to_owned() } else { owner_text(id, nonce) };
    let mut f = vec![(prefix, owner)];
    if prefix == "owner" {
        f.push(("waiters", yes_no(word & WAITERS != 0)));
        f.push(("state", raw_mutex::peek::state_name(state).to_owned()));
    }
    Ok(f)
}

/// The processes registered in a registry at payload offset `at`.
fn registry_members(p: &Peek, h: &HeaderSnapshot, at: usize, entries: usize) -> Result<Vec<peek::OwnerInfo>> {
    use registry::peek::{CLAIMING, ENTRIES, ENTRY_ID, ENTRY_NONCE, ENTRY_SIZE};
    let mut members = Vec::new();
    for i in 0..entries {
        let e = at + ENTRIES + i * ENTRY_SIZE;
        let id = p.u32_at(h, e + ENTRY_ID)?;
        if id == 0 {
            continue;
        }
        let nonce = if id & CLAIMING != 0 { 0 } else { p.u64_at(h, e + ENTRY_NONCE)? };
        members.push(peek::owner_info(id & !CLAIMING, nonce));
    }
    Ok(members)
}

/// Registered and alive processes of a registry at payload offset `at`.
fn registry_text(p: &Peek, h: &HeaderSnapshot, at: usize, entries: usize) -> Result<String> {
    let members = registry_members(p, h, at, entries)?;
    let alive = members.iter().filter(|m| m.alive).count();
    Ok(format!("{} registered, {alive} alive", members.len()))
}

/// Head, tail and capacity of a ring header at payload offset 0.
fn ring_words(p: &Peek, h: &HeaderSnapshot, head: usize, tail: usize, cap: usize) -> Result<(u64, u64, u64)> {
    Ok((p.u64_at(h, head)?, p.u64_at(h, tail)?, p.u64_at(h, cap)?))
}

/// The kind-specific fields of a READY object.
fn fields(p: &Peek, h: &HeaderSnapshot, kind: Kind) -> Result<Vec<(&'static str, String)>> {
    let mut f = vec![("payload bytes", h.payload_len.to_string())];
    match kind {
        Kind::Lock => f.extend(lock_fields(p, h, 0, "owner")?),
        Kind::RLock => {
            f.extend(lock_fields(p, h, 0, "owner")?);
            let depth = p.u32_at(h, core::mem::offset_of!(RLockState, depth))?;
            f.push(("depth", depth.to_string()));
        }
        Kind::Mutex => {
            f.extend(lock_fields(p, h, 0, "owner")?);
            if let Some((size, align)) = mutex_value_layout(h) {
                f.push(("value size", format!("{size} bytes (align {align})")));
            }
        }
        Kind::Semaphore => {
            let max = p.u32_at(h, raw_semaphore::peek::MAX)?;
            f.push(("value", p.u32_at(h, raw_semaphore::peek::COUNT)?.to_string()));
            f.push(("bound", if max == 0 { "none".to_owned() } else { max.to_string() }));
            f.push(("waiters", p.u32_at(h, raw_semaphore::peek::WAITERS)?.to_string()));
        }
        Kind::Event => {
            f.push(("set", yes_no(p.u32_at(h, core::mem::offset_of!(RawEvent, flag))? != 0)));
            f.push(("waiters", p.u32_at(h, core::mem::offset_of!(RawEvent, waiters))?.to_string()));
        }
        Kind::Condvar => {
            let state = p.u64_at(h, core::mem::offset_of!(RawCondvar, state))?;
            f.push(("waiters", (state as u32).to_string()));
            f.push(("pending wake-ups", (state >> 32).to_string()));
            f.push(("notifications", p.u32_at(h, core::mem::offset_of!(RawCondvar, seq))?.to_string()));
        }
        Kind::Barrier => f.extend(barrier_fields(p, h)?),
        Kind::Queue => f.extend(queue_fields(p, h)?),
        Kind::Manager => f.extend(manager_fields(p, h)?),
        Kind::Value => f.extend(value_fields(p, h)?),
        Kind::RawValue => f.push(("value size", format!("{} bytes", raw_value_size(h)))),
        Kind::Array | Kind::RawArray => f.extend(array_fields(p, h)?),
        Kind::Spsc | Kind::Mpmc | Kind::Bytes => f.extend(ring_fields(p, h, kind)?),
        Kind::Pipe => f.extend(pipe_fields(p, h)?),
        Kind::Pool => f.extend(pool_fields(p, h)?),
        Kind::Arena => f.extend(arena_fields(p, h)?),
        Kind::Raw | Kind::Spill | Kind::Typed | Kind::Channel | Kind::Token | Kind::Unknown(_) => {}
    }
    Ok(f)
}

fn value_fields(p: &Peek, h: &HeaderSnapshot) -> Result<Vec<(&'static str, String)>> {
    let mut f = lock_fields(p, h, value::peek::LOCK, "owner")?;
    let Some((size, align)) = value_layout(h) else { return Ok(f) };
    f.push(("value size", format!("{size} bytes (align {align})")));
    // Small values are read without the lock, guarded by the sequence word.
    let seqlocked = size <= value::peek::SEQLOCK_MAX && align <= 8;
    f.push(("lock-free reads", yes_no(seqlocked)));
    if seqlocked {
        let seq = p.u64_at(h, value::peek::SEQ)?;
        f.push(("sequence", seq.to_string()));
        let writing = if seq & 1 == 1 { "yes (odd sequence; or its writer died)" } else { "no" };
        f.push(("write in progress", writing.to_owned()));
    }
    Ok(f)
}

/// A `RawValue<T>`'s `T` size (its layout hash is one of four).
fn raw_value_size(h: &HeaderSnapshot) -> usize {
    let known = [
        (RawCell::<u8>::LAYOUT_HASH, 1),
        (RawCell::<u16>::LAYOUT_HASH, 2),
        (RawCell::<u32>::LAYOUT_HASH, 4),
        (RawCell::<u64>::LAYOUT_HASH, 8),
    ];
    known.iter().find(|(hash, _)| *hash == h.layout_hash).map_or(0, |(_, s)| *s)
}

fn array_fields(p: &Peek, h: &HeaderSnapshot) -> Result<Vec<(&'static str, String)>> {
    let (flavor, size, align) = array_layout(p, h)?;
    let len = p.u64_at(h, array::peek::LEN)?;
    // The elements must fit the payload, as a handle checks when it is made.
    let fits = usize::try_from(len)
        .ok()
        .and_then(|n| n.checked_mul(size))
        .and_then(|b| b.checked_add(array::peek::data_offset(align)))
        .is_some_and(|end| end as u64 <= h.payload_len);
    if !fits {
        return Err(Error::Corrupt { what: "array length exceeds its segment" });
    }
    let mut f = vec![("length", len.to_string()), ("element size", format!("{size} bytes (align {align})"))];
    if flavor == Flavor::Locked {
        f.extend(lock_fields(p, h, array::peek::LOCK, "owner")?);
    }
    Ok(f)
}

fn manager_fields(p: &Peek, h: &HeaderSnapshot) -> Result<Vec<(&'static str, String)>> {
    use blocking::peek as q;
    // The server is the accept queue's one consumer; every process that
    // connected (the starter included) registered as a producer.
    let server = match registry_members(p, h, q::CONSUMERS, registry::QUEUE_ENTRIES)?.first() {
        None => "none (not started, or gone)".to_owned(),
        Some(o) => {
            let pid = o.pid.map_or_else(|| "unknown pid".to_owned(), |p| format!("pid {p}"));
            format!("{pid}, {}", if o.alive { "alive" } else { "dead" })
        }
    };
    let (head, tail, cap) = ring_words(p, h, q::HEAD, q::TAIL, q::CAPACITY)?;
    let flags = p.u32_at(h, q::FLAGS)?;
    Ok(vec![
        ("server", server),
        ("client processes", registry_text(p, h, q::PRODUCERS, registry::QUEUE_ENTRIES)?),
        ("pending connects", bytes::messages_between(head, tail, cap).to_string()),
        ("stopped", yes_no(flags & q::CLOSED != 0)),
    ])
}

fn barrier_fields(p: &Peek, h: &HeaderSnapshot) -> Result<Vec<(&'static str, String)>> {
    use core::mem::offset_of;
    let parties = p.u32_at(h, offset_of!(RawBarrier, parties))?;
    let arrived = p.u32_at(h, offset_of!(RawBarrier, arrived))?;
    let broken = match p.u32_at(h, offset_of!(RawBarrier, broken))? {
        0 => "no".to_owned(),
        BROKEN_OTHER => "yes (timeout or abort)".to_owned(),
        pid => format!("yes (party pid {pid} died)"),
    };
    let members = registry_members(p, h, offset_of!(RawBarrier, members), registry::BARRIER_ENTRIES)?.len();
    Ok(vec![
        ("parties", parties.to_string()),
        ("waiting", arrived.to_string()),
        ("generation", p.u32_at(h, offset_of!(RawBarrier, generation))?.to_string()),
        ("broken", broken),
        ("processes", members.to_string()),
    ])
}

fn queue_fields(p: &Peek, h: &HeaderSnapshot) -> Result<Vec<(&'static str, String)>> {
    use blocking::peek as q;
    let (head, tail, cap) = ring_words(p, h, q::HEAD, q::TAIL, q::CAPACITY)?;
    let flags = p.u32_at(h, q::FLAGS)?;
    let maxsize = p.u64_at(h, q::MAXSIZE)?;
    let mut f = vec![
        ("depth", bytes::messages_between(head, tail, cap).to_string()),
        ("bytes used", format!("{} of {cap}", bytes::bytes_between(head, tail, cap))),
        ("maxsize", if maxsize == 0 { "none (bytes only)".to_owned() } else { maxsize.to_string() }),
        ("joinable", yes_no(flags & q::JOINABLE != 0)),
        ("closed", yes_no(flags & q::CLOSED != 0)),
    ];
    if flags & q::JOINABLE != 0 {
        f.push(("abandoned", p.u64_at(h, q::ABANDONED)?.to_string()));
    }
    f.extend(lock_fields(p, h, q::PUT_LOCK, "put lock")?);
    f.extend(lock_fields(p, h, q::GET_LOCK, "get lock")?);
    f.push(("producers", registry_text(p, h, q::PRODUCERS, registry::QUEUE_ENTRIES)?));
    f.push(("consumers", registry_text(p, h, q::CONSUMERS, registry::QUEUE_ENTRIES)?));
    Ok(f)
}

fn pipe_fields(p: &Peek, h: &HeaderSnapshot) -> Result<Vec<(&'static str, String)>> {
    use crate::channel::lane::LaneWords;
    use crate::channel::pipe::EndWords;
    use crate::channel::pipe::peek as pp;
    use core::mem::offset_of;
    let cap = p.u64_at(h, pp::CAPACITY)?;
    let directions = p.u64_at(h, pp::DIRECTIONS)?;
    if !(1..=2).contains(&directions) {
        return Err(Error::Corrupt { what: "pipe direction count" });
    }
    let mut f = vec![("duplex", yes_no(directions == 2)), ("buffer bytes", cap.to_string())];
    const DEPTH: [&str; 2] = ["depth 0->1", "depth 1->0"];
    const CLOSED: [&str; 2] = ["end 0 closed", "end 1 closed"];
    const HOLDERS: [&str; 2] = ["end 0 holders", "end 1 holders"];
    for (label, lane) in DEPTH.into_iter().zip(pp::LANE_OFF).take(directions as usize) {
        let head = p.u64_at(h, lane + offset_of!(LaneWords, head))?;
        let tail = p.u64_at(h, lane + offset_of!(LaneWords, tail))?;
        let bytes_used = bytes::bytes_between(head, tail, cap);
        f.push((label, format!("{} messages, {bytes_used} bytes", bytes::messages_between(head, tail, cap))));
    }
    for ((closed, holders), end) in CLOSED.into_iter().zip(HOLDERS).zip(pp::END_OFF) {
        f.push((closed, yes_no(p.u32_at(h, end + offset_of!(EndWords, closed))? != 0)));
        f.push((holders, registry_text(p, h, end + offset_of!(EndWords, holders), registry::ENTRIES)?));
    }
    Ok(f)
}

/// An arena's cell size and count, and what its taken cells hold.
fn arena_fields(p: &Peek, h: &HeaderSnapshot) -> Result<Vec<(&'static str, String)>> {
    use crate::shm::heap::peek::{CELL_HASH, CELLS, CLASS, ID, MAX_CELL, USED, cells_for, data_offset};
    let class = p.u32_at(h, CLASS)? as usize;
    let cells = p.u32_at(h, CELLS)? as usize;
    if !(64..=MAX_CELL).contains(&class) || !class.is_multiple_of(64) || cells != cells_for(class) {
        return Err(Error::Corrupt { what: "arena head (cell size or count)" });
    }
    let data = data_offset(cells);
    let mut kinds: Vec<(Kind, usize)> = Vec::new();
    let mut seen: Vec<(u64, Kind)> = Vec::new();
    let mut taken = 0;
    for w in 0..cells / 64 {
        let word = p.u64_at(h, crate::shm::heap::peek::BITMAP + w * 8)?;
        for bit in (0..64).filter(|b| word & (1u64 << b) != 0) {
            taken += 1;
            let hash = p.u64_at(h, data + (w * 64 + bit) * class + CELL_HASH)?;
            let kind = match seen.iter().find(|(x, _)| *x == hash) {
                Some((_, k)) => *k,
                None => {
                    let k = cell_kind(hash, class);
                    seen.push((hash, k));
                    k
                }
            };
            match kinds.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, n)) => *n += 1,
                None => kinds.push((kind, 1)),
            }
        }
    }
    let mut f = vec![
        ("id", format!("{:016x}", p.u64_at(h, ID)?)),
        ("cell bytes", class.to_string()),
        ("cells", cells.to_string()),
        ("taken", taken.to_string()),
        ("taken (counter)", p.u32_at(h, USED)?.to_string()),
    ];
    kinds.sort_by_key(|(k, n)| (usize::MAX - n, k.to_string()));
    f.extend(kinds.into_iter().map(|(k, n)| ("objects", format!("{n} {k}"))));
    Ok(f)
}

/// The kind of the object in an arena cell of `class` bytes whose layout
/// hash is `hash` (a state of at most `class - 16` bytes).
fn cell_kind(hash: u64, class: usize) -> Kind {
    let array = (0..8).map(|s| 1usize << s).find_map(|align| {
        (align..class).step_by(align).find_map(|size| {
            [(Flavor::Locked, Kind::Array), (Flavor::Raw, Kind::RawArray)]
                .into_iter()
                .find(|(f, _)| array_layout_hash(*f, size, align) == hash)
                .map(|(_, k)| k)
        })
    });
    if let Some(k) = array {
        return k;
    }
    let mut h = HeaderSnapshot { kind: kind::TYPED, layout_hash: hash, ..HeaderSnapshot::default() };
    (1..=class.saturating_sub(16) / 8)
        .map(|words| words * 8)
        .map(|size| {
            h.payload_len = size as u64;
            typed_kind(&h)
        })
        .find(|k| *k != Kind::Typed)
        .unwrap_or(Kind::Typed)
}

fn pool_fields(p: &Peek, h: &HeaderSnapshot) -> Result<Vec<(&'static str, String)>> {
    use crate::pool::table::{CANCEL_ENTRIES, DONE, JOB, PID, Slot};
    const SHOWN: usize = 64;
    // Slots read at most (a hostile payload length must not make us read
    // a gigabyte of slots); pools have a few workers.
    const READ: usize = 4096;
    let slot = core::mem::size_of::<Slot>();
    let workers = usize::try_from(h.payload_len)
        .ok()
        .and_then(|n| n.checked_sub(CANCEL_ENTRIES * 8))
        .ok_or_else(|| Error::Corrupt { what: "pool table size" })?
        / slot;
    let mut busy = 0;
    let mut lines = Vec::new();
    for i in 0..workers.min(READ) {
        let job = p.u64_at(h, i * slot + JOB * 8)?;
        busy += usize::from(job != 0);
        if i < SHOWN {
            let pid = p.u64_at(h, i * slot + PID * 8)?;
            let done = p.u64_at(h, i * slot + DONE * 8)?;
            let job = if job == 0 { "idle".to_owned() } else { format!("job {job}") };
            lines.push(format!("pid {pid} {job}, {done} done"));
        }
    }
    let mut f = vec![("workers", workers.to_string()), ("busy", busy.to_string())];
    f.extend(lines.into_iter().map(|l| ("worker", l)));
    Ok(f)
}

fn ring_fields(p: &Peek, h: &HeaderSnapshot, kind: Kind) -> Result<Vec<(&'static str, String)>> {
    let holder = |at: usize| -> Result<String> {
        let id = p.u32_at(h, at)?;
        Ok(if id == 0 { "none".to_owned() } else { owner_text(id, 0) })
    };
    let mut f = Vec::new();
    match kind {
        Kind::Bytes => {
            use byte_ring::peek as r;
            let (head, tail, cap) = ring_words(p, h, r::HEAD, r::TAIL, r::CAPACITY)?;
            f.push(("depth", bytes::messages_between(head, tail, cap).to_string()));
            f.push(("bytes used", format!("{} of {cap}", bytes::bytes_between(head, tail, cap))));
            f.push(("head", head.to_string()));
            f.push(("tail", tail.to_string()));
            f.push(("producer", holder(r::PRODUCER)?));
            f.push(("consumer", holder(r::CONSUMER)?));
        }
        Kind::Spsc => {
            use spsc::peek as r;
            let (head, tail, cap) = ring_words(p, h, r::HEAD, r::TAIL, r::CAPACITY)?;
            f.push(("depth", format!("{} of {cap} slots", tail.wrapping_sub(head).min(cap))));
            f.push(("slot bytes", p.u64_at(h, r::ELEM_SIZE)?.to_string()));
            f.push(("head", head.to_string()));
            f.push(("tail", tail.to_string()));
            f.push(("producer", holder(r::PRODUCER)?));
            f.push(("consumer", holder(r::CONSUMER)?));
        }
        _ => {
            use mpmc::peek as r;
            let (head, tail, cap) = ring_words(p, h, r::HEAD, r::TAIL, r::CAPACITY)?;
            f.push(("depth", format!("{} of {cap} slots", tail.wrapping_sub(head).min(cap))));
            f.push(("slot bytes", p.u64_at(h, r::ELEM_SIZE)?.to_string()));
            f.push(("head", head.to_string()));
            f.push(("tail", tail.to_string()));
        }
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sync_kind_is_recognised() {
        let h = |layout_hash, payload_len| HeaderSnapshot {
            kind: kind::TYPED,
            layout_hash,
            payload_len,
            ..HeaderSnapshot::default()
        };
        assert_eq!(typed_kind(&h(RawEvent::LAYOUT_HASH, 8)), Kind::Event);
        assert_eq!(typed_kind(&h(RawBarrier::LAYOUT_HASH, 8)), Kind::Barrier);
        type M = crate::sync::mutex::MutexState<[u64; 3]>;
        let m = h(<M as ShmSafe>::LAYOUT_HASH, core::mem::size_of::<M>() as u64);
        assert_eq!(typed_kind(&m), Kind::Mutex);
        assert_eq!(mutex_value_layout(&m), Some((24, 8)));
        type V = crate::shared::value::ValueState<[u16; 3]>;
        let v = h(<V as ShmSafe>::LAYOUT_HASH, core::mem::size_of::<V>() as u64);
        assert_eq!((typed_kind(&v), value_layout(&v)), (Kind::Value, Some((6, 2))));
        type Big = crate::shared::value::ValueState<[u64; 32]>;
        let big = h(<Big as ShmSafe>::LAYOUT_HASH, core::mem::size_of::<Big>() as u64);
        assert_eq!((typed_kind(&big), value_layout(&big)), (Kind::Value, Some((256, 8))));
        assert_eq!(typed_kind(&h(RawCell::<u16>::LAYOUT_HASH, 8)), Kind::RawValue);
        assert_eq!(raw_value_size(&h(RawCell::<u32>::LAYOUT_HASH, 8)), 4);
        assert_eq!(typed_kind(&h(12345, 256)), Kind::Typed);
        assert_eq!(classify(&HeaderSnapshot { kind: 99, ..HeaderSnapshot::default() }, false), Kind::Unknown(99));
    }
}
