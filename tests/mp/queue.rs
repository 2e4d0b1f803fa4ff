//! (queue: to come.)

/// Runs a helper role of this area (roles are named `queue_*`).
pub(crate) fn run_role(role: &str) {
    panic!("unknown queue role {role:?}")
}
