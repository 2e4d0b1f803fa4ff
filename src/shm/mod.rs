//! Shared-memory segments: mapping, validated header, typed placement of
//! `#[repr(C)]` pointer-free state; and the pointer-free name of a function
//! of this executable (`fnref`), which such state may hold.

pub(crate) mod arena;
#[cfg(feature = "serde")]
pub(crate) mod fnref;
#[cfg(feature = "serde")]
pub(crate) mod handoff;
pub(crate) mod header;
pub(crate) mod heap;
pub(crate) mod layout;
pub(crate) mod name;
#[cfg(feature = "inspect")]
pub(crate) mod peek;
pub(crate) mod segment;
pub(crate) mod typed;
