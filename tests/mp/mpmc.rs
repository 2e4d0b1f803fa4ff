//! (mpmc: to come.)

/// Runs a helper role of this area (roles are named `mpmc_*`).
pub(crate) fn run_role(role: &str) {
    panic!("unknown mpmc role {role:?}")
}
