//! Shared mappings of a file descriptor.
//!
//! memmap2's `MmapRaw` does the `mmap`/`munmap` pair; it hands out only raw
//! pointers, which is what shared bytes need (another process may write them
//! at any time, so no `&[u8]` is ever made over them).
//!
//! # References
//! - [mmap(2)](https://man7.org/linux/man-pages/man2/mmap.2.html)

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use memmap2::{MmapOptions, MmapRaw};

/// A `MAP_SHARED` mapping of `len` bytes of a file; unmapped on drop.
#[derive(Debug)]
pub(crate) struct Mapping {
    raw: MmapRaw,
}

impl Mapping {
    /// Maps the first `len` bytes of `fd`, readable and (if `writable`)
    /// writable. The caller has checked that the file is at least `len`
    /// bytes long; pages past its end would raise SIGBUS when touched.
    pub(crate) fn map(fd: BorrowedFd<'_>, len: usize, writable: bool) -> io::Result<Self> {
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "cannot map 0 bytes"));
        }
        let mut opts = MmapOptions::new();
        opts.len(len);
        let raw = if writable { opts.map_raw(fd.as_raw_fd())? } else { opts.map_raw_read_only(fd.as_raw_fd())? };
        Ok(Mapping { raw })
    }

    /// The first byte of the mapping (page-aligned).
    pub(crate) fn ptr(&self) -> *mut u8 {
        self.raw.as_mut_ptr()
    }

    /// The length of the mapping in bytes.
    pub(crate) fn len(&self) -> usize {
        self.raw.len()
    }
}
