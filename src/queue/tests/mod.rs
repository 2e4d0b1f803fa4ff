//! Slot storage for the rings' protocol tests, and the loom models of the
//! rings and the eventcount (RELIABILITY case 49).

#![allow(unsafe_code)] // implements the rings' `unsafe trait Slots` over cells

#[cfg(shmproc_loom)]
mod loom_bytes;
#[cfg(shmproc_loom)]
mod loom_eventcount;
#[cfg(shmproc_loom)]
mod loom_mpmc;
#[cfg(shmproc_loom)]
mod loom_spsc;

#[cfg(shmproc_loom)]
use loom::cell::UnsafeCell;
#[cfg(not(shmproc_loom))]
use std::cell::UnsafeCell;

use crate::queue::spsc::Slots;

/// Slots of `u64` in cells: std cells in unit tests, loom cells in models
/// (which report any concurrent access of a slot, and any read of a slot
/// while another thread writes it).
pub(crate) struct CellSlots(Vec<UnsafeCell<u64>>);

impl CellSlots {
    /// `n` slots holding 0.
    pub(crate) fn new(n: usize) -> CellSlots {
        CellSlots((0..n).map(|_| UnsafeCell::new(0)).collect())
    }
}

// SAFETY: every access goes through a cell (loom's checks concurrent access
// itself); indices are below capacity (the rings' protocol); a slot's
// accesses do not overlap, which is what the protocols guarantee and the
// tests check.
unsafe impl Slots<u64> for CellSlots {
    fn capacity(&self) -> u64 {
        self.0.len() as u64
    }
    unsafe fn read(&self, i: u64) -> u64 {
        #[cfg(shmproc_loom)]
        // SAFETY: loom checks the access.
        return self.0[i as usize].with(|p| unsafe { *p });
        #[cfg(not(shmproc_loom))]
        // SAFETY: caller: i < capacity, no concurrent write.
        unsafe {
            *self.0[i as usize].get()
        }
    }
    unsafe fn write(&self, i: u64, v: u64) {
        #[cfg(shmproc_loom)]
        // SAFETY: loom checks the access.
        self.0[i as usize].with_mut(|p| unsafe { *p = v });
        #[cfg(not(shmproc_loom))]
        // SAFETY: caller: i < capacity, no concurrent access.
        unsafe {
            *self.0[i as usize].get() = v
        }
    }
    fn slot_ptr(&self, i: u64) -> *mut u64 {
        #[cfg(shmproc_loom)]
        unreachable!("loans of slot {i} are not modelled under loom");
        #[cfg(not(shmproc_loom))]
        self.0[i as usize].get()
    }
}
