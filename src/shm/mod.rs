//! Shared-memory segments: mapping, validated header, typed placement of
//! `#[repr(C)]` pointer-free state.

pub(crate) mod arena;
#[cfg(feature = "codec")]
pub(crate) mod handoff;
pub(crate) mod header;
pub(crate) mod layout;
pub(crate) mod name;
#[cfg(feature = "codec")]
pub(crate) mod peek;
pub(crate) mod segment;
pub(crate) mod typed;
