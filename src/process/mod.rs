//! Processes and start methods: `Process`, fork, spawn, forkserver.

pub(crate) mod bootstrap;
mod channel;
pub(crate) mod current;
pub(crate) mod error;
pub(crate) mod forkserver;
pub(crate) mod handle;
pub(crate) mod loader;
pub(crate) mod spawn;
pub(crate) mod start;
pub(crate) mod task;

use crate::sys::process::{self as sysproc, ForkPermit, Forked};

/// `fork(2)` (the system-call layer's), then the fork hooks of the owner
/// layer in parent and child (the liveness token and the role epoch) and
/// of the arenas in the child (references for inherited cells); they also
/// run from `pthread_atfork` handlers once registered, and running them
/// twice is harmless: called from here, above both layers, so the
/// system-call layer never calls up.
pub(crate) fn fork(permit: ForkPermit) -> std::io::Result<Forked> {
    let forked = sysproc::fork(permit)?;
    match forked {
        Forked::Child => {
            crate::owner::token::after_fork_in_child();
            crate::shm::heap::after_fork_in_child();
        }
        Forked::Parent(_) => crate::owner::token::after_fork_in_parent(),
    }
    Ok(forked)
}

/// `clone(CLONE_PARENT)` (see the system-call layer's), then the owner
/// layer's child hook: no `pthread_atfork` handler runs in such a child.
pub(crate) fn clone_parent() -> std::io::Result<Forked> {
    let forked = sysproc::clone_parent()?;
    if forked == Forked::Child {
        crate::owner::token::after_fork_in_child();
        crate::shm::heap::after_fork_in_child();
    }
    Ok(forked)
}
