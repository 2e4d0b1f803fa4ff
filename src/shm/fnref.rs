//! The executable image: naming a function across processes that run the
//! same binary.
//!
//! A re-executed child maps the binary at another address (ASLR), but the
//! distance between two functions of the same image is the same in every
//! process running it. A function is therefore named by its offset from
//! [`anchor`], a function of this module; [`FnRef::resolve`] turns the
//! offset back into a pointer in the receiving process, after checking that
//! the process runs the very same file and that the pointer type matches.
//!
//! Offsets hold only within one loaded object: a shared library (a dylib
//! crate, std under `-C prefer-dynamic`, a `dlopen`ed plugin) is loaded at
//! its own address, independently of the executable. So both ends check
//! that the function lies in the object that holds the anchor (the ranges
//! `/proc/self/maps` shows mapped from its file, read once):
//! [`FnRef::of`] refuses a function of another object, and
//! [`FnRef::resolve`] refuses an offset that lands outside it.
//!
//! Trust: the offsets arrive from our parent (in a memfd only it and we
//! hold). A process able to write them could already run any code as us.

#![allow(unsafe_code)] // FnRef::resolve turns a checked address back into a fn pointer

use std::io;
use std::os::unix::fs::MetadataExt;

/// The reference point of offsets. Never called; only its address matters.
#[inline(never)]
fn anchor() {}

fn anchor_addr() -> usize {
    let f: fn() = anchor;
    f as usize
}

/// The address ranges mapped from the file that holds the anchor (the
/// executable, or the shared library that links shmproc), read once from
/// `/proc/self/maps`; empty if that could not be read.
fn anchor_object() -> &'static [(usize, usize)] {
    static RANGES: std::sync::OnceLock<Vec<(usize, usize)>> = std::sync::OnceLock::new();
    RANGES.get_or_init(|| {
        std::fs::read_to_string("/proc/self/maps").map_or_else(|_| Vec::new(), |m| ranges_of(&m, anchor_addr()))
    })
}

/// In the text of `/proc/<pid>/maps`, the ranges mapped from the same file
/// (device and inode) as the mapping that contains `addr`.
fn ranges_of(maps: &str, addr: usize) -> Vec<(usize, usize)> {
    // start-end perms offset dev inode [path]
    let parse = |line: &str| -> Option<(usize, usize, String, u64)> {
        let mut f = line.split_whitespace();
        let (start, end) = f.next()?.split_once('-')?;
        let (start, end) = (usize::from_str_radix(start, 16).ok()?, usize::from_str_radix(end, 16).ok()?);
        let dev = f.nth(2)?.to_owned();
        let inode = f.next()?.parse().ok()?;
        Some((start, end, dev, inode))
    };
    let lines: Vec<_> = maps.lines().filter_map(parse).collect();
    let Some((_, _, dev, inode)) = lines.iter().find(|(s, e, _, ino)| *s <= addr && addr < *e && *ino != 0) else {
        return Vec::new();
    };
    lines.iter().filter(|(_, _, d, i)| d == dev && i == inode).map(|(s, e, _, _)| (*s, *e)).collect()
}

/// Whether `addr` lies in the same loaded object as the anchor: mapped
/// from the same file. (Where the maps could not be read, every address
/// passes; `/proc/self/exe` is then unreadable too, and [`ExeId`] fails
/// first.)
fn in_anchor_object(addr: usize) -> bool {
    let ranges = anchor_object();
    ranges.is_empty() || ranges.iter().any(|&(s, e)| s <= addr && addr < e)
}

/// Function-pointer types that may be named across processes.
///
/// # Safety
///
/// Implementors are plain `fn` pointer types: `Copy`, pointer-sized, and
/// every value made by [`FnRef::of`] is a valid function of that type.
pub(crate) unsafe trait FnPtr: Copy + 'static {
    /// The pointer as an address.
    fn addr(self) -> usize;
}

// SAFETY: `fn(A) -> R` is a pointer-sized, Copy function pointer.
unsafe impl<A: 'static, R: 'static> FnPtr for fn(A) -> R {
    fn addr(self) -> usize {
        self as usize
    }
}

// SAFETY: `fn(A, B) -> R` is a pointer-sized, Copy function pointer (the
// manager's server-side update functions have this type).
unsafe impl<A: 'static, B: 'static, R: 'static> FnPtr for fn(A, B) -> R {
    fn addr(self) -> usize {
        self as usize
    }
}

// SAFETY: `fn()` is a pointer-sized, Copy function pointer (a barrier's
// action has this type).
unsafe impl FnPtr for fn() {
    fn addr(self) -> usize {
        self as usize
    }
}

/// A function taking its first argument by reference (`for<'a> fn(&'a C,
/// A) -> R`: the body of a `shmproc::task!`, which receives the decoded
/// captures), wrapped so that it has a [`FnPtr`] impl of its own (an impl
/// for the higher-ranked pointer type beside the one for `fn(A, B) -> R`
/// would trip rustc's `coherence_leak_check`).
#[cfg(feature = "serde")]
#[repr(transparent)]
pub(crate) struct RefFn<C: 'static, A: 'static, R: 'static>(pub(crate) fn(&C, A) -> R);

#[cfg(feature = "serde")]
impl<C, A, R> Clone for RefFn<C, A, R> {
    fn clone(&self) -> Self {
        *self
    }
}

#[cfg(feature = "serde")]
impl<C, A, R> Copy for RefFn<C, A, R> {}

#[cfg(feature = "serde")]
// SAFETY: `RefFn` is `repr(transparent)` over a fn pointer: `Copy`,
// pointer-sized, and a value made by `FnRef::of` is that function.
unsafe impl<C: 'static, A: 'static, R: 'static> FnPtr for RefFn<C, A, R> {
    fn addr(self) -> usize {
        self.0 as usize
    }
}

/// The value of a zero-sized type `F` (a fn item, or a closure that
/// captures nothing), made again in a process that never received one:
/// what lets a worker call the very function the parent passed, without
/// naming it by address (a fn item has no address until it is cast).
///
/// The limit, stated honestly: a closure that captures only zero-sized
/// values (a unit struct, a `PhantomData`, another fn item) is zero-sized
/// too, and those captured values are made again here without running
/// their constructors. The bounds make that acceptable: `Copy` means the
/// type has no destructor and its values may be duplicated freely (the
/// parent could make any number of copies), `'static` means it borrows
/// nothing, and `Send + Sync` that it may be used from any thread. A
/// zero-sized value whose meaning is "this happened in this process" (a
/// proof token of a type with a private constructor) would be copied into
/// another process, where that may not hold: do not capture such tokens.
///
/// `None` if `F` is not zero-sized.
#[cfg(feature = "serde")]
pub(crate) fn recreate_zst<F: Copy + Send + Sync + 'static>() -> Option<F> {
    if std::mem::size_of::<F>() != 0 {
        return None;
    }
    // F is inhabited, since the parent held a value of it (the only way to
    // name this instantiation is through a `TaskFn` call with such a value:
    // its hidden methods take a token only the crate can make); and
    // F: Copy + Send + Sync + 'static has no destructor, borrows nothing
    // and may be used on any thread, so one more value of it breaks no
    // ownership.
    // SAFETY: F is zero-sized (checked just above), so a value of it has
    // no bytes to initialize; inhabited and unowned, as said above.
    Some(unsafe { std::mem::zeroed::<F>() })
}

/// A function named by its offset in the image, with a fingerprint of its
/// type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub(crate) struct FnRef {
    offset: i64,
    type_hash: u64,
    exe: ExeId,
}

fn type_hash<F: 'static>() -> u64 {
    let name = std::any::type_name::<F>();
    crate::shm::layout::layout_hash(name, std::mem::size_of::<F>(), std::mem::align_of::<F>())
}

impl FnRef {
    /// Names `f`.
    ///
    /// # Errors
    /// `InvalidInput` if `f` lives in another loaded object than shmproc's
    /// own code (a shared library): its offset would mean nothing in
    /// another process; an error reading `/proc/self/exe`.
    pub(crate) fn of<F: FnPtr>(f: F) -> io::Result<FnRef> {
        if !in_anchor_object(f.addr()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the function lives in a shared library, not in the executable: only functions of the \
                 executable that links shmproc can be named across processes",
            ));
        }
        Ok(FnRef {
            offset: f.addr().wrapping_sub(anchor_addr()) as i64,
            type_hash: type_hash::<F>(),
            exe: ExeId::cached()?,
        })
    }

    /// The function in this process, if this process runs the same
    /// executable file and the type matches.
    pub(crate) fn resolve<F: FnPtr>(self) -> io::Result<F> {
        if self.exe != ExeId::cached()? {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the executable changed on disk since the parent started",
            ));
        }
        if self.type_hash != type_hash::<F>() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "function type differs between processes"));
        }
        let addr = anchor_addr().wrapping_add(self.offset as usize);
        if !in_anchor_object(addr) {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "the function offset lands outside the executable"));
        }
        debug_assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<usize>());
        // SAFETY: F is a pointer-sized fn-pointer type (FnPtr contract); `addr` is where `FnRef::of` found a value of
        // type F (type hash checked) in a process of the same executable file (ExeId checked), in the anchor's loaded
        // object (checked there and here), at the same distance from the anchor: that same function here.
        Ok(unsafe { std::mem::transmute_copy::<usize, F>(&addr) })
    }
}

/// The words of a [`FnRef`], for a reference kept in shared memory (a
/// barrier's action): [`FnRef::from_words`] makes it again, and
/// [`FnRef::resolve`] checks it as usual.
pub(crate) type FnWords = [u64; 7];

impl FnRef {
    /// This reference as plain words.
    pub(crate) fn to_words(self) -> FnWords {
        let e = &self.exe;
        [self.offset as u64, self.type_hash, e.dev, e.ino, e.size, e.mtime as u64, e.mtime_nsec as u64]
    }

    /// A reference from the words of [`to_words`](FnRef::to_words) (any
    /// words: [`resolve`](FnRef::resolve) refuses those that do not name a
    /// function of this executable).
    pub(crate) fn from_words(w: FnWords) -> FnRef {
        FnRef {
            offset: w[0] as i64,
            type_hash: w[1],
            exe: ExeId { dev: w[2], ino: w[3], size: w[4], mtime: w[5] as i64, mtime_nsec: w[6] as i64 },
        }
    }
}

#[cfg(feature = "pool")]
/// A function named by its offset and type fingerprint only: the compact
/// form for records that travel often between processes already known to
/// run the same executable (a pool's tasks). It becomes a [`FnRef`] again
/// with [`FnRef::with_id`], which takes the executable identity from a full
/// `FnRef` that travelled once; [`FnRef::resolve`] then checks both as usual.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FnId {
    /// Offset from the anchor.
    pub(crate) offset: i64,
    /// Fingerprint of the function's type.
    pub(crate) type_hash: u64,
}

#[cfg(feature = "pool")]
impl FnRef {
    /// The compact form of this reference.
    pub(crate) fn id(&self) -> FnId {
        FnId { offset: self.offset, type_hash: self.type_hash }
    }

    /// The function `id`, in the executable this reference names.
    pub(crate) fn with_id(self, id: FnId) -> FnRef {
        FnRef { offset: id.offset, type_hash: id.type_hash, exe: self.exe }
    }
}

/// Identity of the running executable file: a spawned child checks that it
/// runs the same file as its parent before resolving any [`FnRef`] (a
/// binary rebuilt in between would make offsets meaningless).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub(crate) struct ExeId {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl ExeId {
    /// The identity of `/proc/self/exe` now.
    pub(crate) fn current() -> io::Result<ExeId> {
        let m = std::fs::metadata("/proc/self/exe")?;
        Ok(ExeId { dev: m.dev(), ino: m.ino(), size: m.size(), mtime: m.mtime(), mtime_nsec: m.mtime_nsec() })
    }

    /// The identity of the file this process image was loaded from, read
    /// once (an image does not change until `exec`, which resets statics).
    pub(crate) fn cached() -> io::Result<ExeId> {
        static EXE: std::sync::OnceLock<ExeId> = std::sync::OnceLock::new();
        if let Some(e) = EXE.get() {
            return Ok(*e);
        }
        let e = ExeId::current()?;
        Ok(*EXE.get_or_init(|| e))
    }
}

/// The path of the running executable, for re-executing it.
pub(crate) fn current_exe() -> io::Result<std::path::PathBuf> {
    std::env::current_exe()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn double(x: u32) -> u32 {
        x * 2
    }

    #[test]
    fn a_function_round_trips_through_its_offset() {
        let f: fn(u32) -> u32 = double;
        let r = FnRef::of(f).expect("exe identity");
        let g: fn(u32) -> u32 = r.resolve().expect("same type");
        assert_eq!(g(21), 42);
        assert!(r.resolve::<fn(u64) -> u64>().is_err(), "another type is refused");
    }

    #[cfg(feature = "pool")]
    #[test]
    fn a_compact_id_resolves_with_a_full_references_executable() {
        let r = FnRef::of(double as fn(u32) -> u32).expect("exe identity");
        let other: fn(u64) -> u64 = |x| x + 1;
        let compact = FnRef::of(other).expect("exe identity").id();
        let h: fn(u64) -> u64 = r.with_id(compact).resolve().expect("same exe, same type");
        assert_eq!(h(1), 2);
        assert!(r.with_id(compact).resolve::<fn(u32) -> u32>().is_err());
    }

    fn add(a: u32, b: u64) -> u64 {
        u64::from(a) + b
    }

    #[test]
    fn a_two_argument_function_round_trips() {
        let f: fn(u32, u64) -> u64 = add;
        let r = FnRef::of(f).expect("exe identity");
        let g: fn(u32, u64) -> u64 = r.resolve().expect("same type");
        assert_eq!(g(1, 2), 3);
        assert!(r.resolve::<fn(u64, u32) -> u64>().is_err(), "argument order is part of the type");
        assert!(r.resolve::<fn(u32) -> u64>().is_err());
    }

    /// A function of another loaded object (here libc's `abs`, through a
    /// pointer that is never called) cannot be named, and an offset that
    /// lands there does not resolve.
    #[test]
    fn functions_of_other_objects_are_refused() {
        let libc_fn = libc::abs as *const () as usize;
        if in_anchor_object(libc_fn) {
            return; // a static binary: libc is part of the executable
        }
        // SAFETY: only the address is used (never called); fn pointers are pointer-sized.
        let f: fn(i32) -> i32 = unsafe { std::mem::transmute::<usize, fn(i32) -> i32>(libc_fn) };
        assert_eq!(FnRef::of(f).map_err(|e| e.kind()), Err(io::ErrorKind::InvalidInput));
        let ours: fn(u32) -> u32 = double;
        let mut r = FnRef::of(ours).expect("ours");
        r.offset = libc_fn.wrapping_sub(anchor_addr()) as i64;
        assert_eq!(r.resolve::<fn(u32) -> u32>().map_err(|e| e.kind()).err(), Some(io::ErrorKind::InvalidData));
    }

    #[test]
    fn maps_lines_group_by_file() {
        let maps = "\
1000-2000 r--p 00000000 08:01 42 /bin/app
2000-5000 r-xp 00001000 08:01 42 /bin/app
5000-6000 rw-p 00000000 00:00 0
7000-8000 r-xp 00000000 08:01 77 /lib/libc.so
9000-a000 rw-p 00004000 08:01 42 /bin/app
";
        assert_eq!(ranges_of(maps, 0x2100), [(0x1000, 0x2000), (0x2000, 0x5000), (0x9000, 0xa000)]);
        assert_eq!(ranges_of(maps, 0x7100), [(0x7000, 0x8000)]);
        assert!(ranges_of(maps, 0x5100).is_empty(), "anonymous memory is no object");
        assert!(ranges_of("garbage\n", 0x10).is_empty());
    }

    fn nothing() {}

    #[test]
    fn a_reference_round_trips_through_its_words() {
        let r = FnRef::of(nothing as fn()).expect("exe identity");
        let back = FnRef::from_words(r.to_words());
        assert_eq!(back, r);
        let f: fn() = back.resolve().expect("same exe, same type");
        f();
        let mut w = r.to_words();
        w[2] ^= 1; // another device: another executable
        assert!(FnRef::from_words(w).resolve::<fn()>().is_err());
    }

    #[test]
    fn exe_identity_is_stable() {
        assert_eq!(ExeId::current().expect("exe"), ExeId::current().expect("exe"));
    }
}
