//! (pipe: to come.)

/// Runs a helper role of this area (roles are named `pipe_*`).
pub(crate) fn run_role(role: &str) {
    panic!("unknown pipe role {role:?}")
}
