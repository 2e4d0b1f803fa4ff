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
//! Trust: the offsets arrive from our parent (in a memfd only it and we
//! hold). A process able to write them could already run any code as us.

use std::io;
use std::os::unix::fs::MetadataExt;

/// The reference point of offsets. Never called; only its address matters.
#[inline(never)]
fn anchor() {}

fn anchor_addr() -> usize {
    let f: fn() = anchor;
    f as usize
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

/// A function named by its offset in the image, with a fingerprint of its
/// type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "codec", derive(serde::Serialize, serde::Deserialize))]
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
    pub(crate) fn of<F: FnPtr>(f: F) -> io::Result<FnRef> {
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
        debug_assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<usize>());
        // SAFETY: F is a fn-pointer type (FnPtr contract) of pointer size; `addr` is the address `FnRef::of` took
        // from a value of the same type F (type hash checked above) in a process running the same executable file
        // (ExeId checked above), shifted by the image's load offset, so it is that same function here.
        Ok(unsafe { std::mem::transmute_copy::<usize, F>(&addr) })
    }
}

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
#[cfg_attr(feature = "codec", derive(serde::Serialize, serde::Deserialize))]
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

    #[test]
    fn exe_identity_is_stable() {
        assert_eq!(ExeId::current().expect("exe"), ExeId::current().expect("exe"));
    }
}
