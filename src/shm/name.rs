//! Name rules, checked before any system call.

use crate::error::{Error, Result};

/// Prefix of every named shmproc segment in `/dev/shm`.
pub(crate) const SEGMENT_PREFIX: &str = "shmproc.";
/// Longest file name Linux accepts (`NAME_MAX`).
const NAME_MAX: usize = 255;
/// Longest name a user may give (the prefix takes the rest of `NAME_MAX`).
pub(crate) const MAX_NAME_LEN: usize = NAME_MAX - SEGMENT_PREFIX.len();

fn refuse(name: &str, reason: &'static str) -> Error {
    Error::InvalidName { name: name.to_owned(), reason }
}

/// Checks a shmproc object name and returns its file name in `/dev/shm`.
///
/// Allowed: 1 to 247 bytes of ASCII letters, digits, `_`, `-` and `.`,
/// not `.` or `..`, not starting with `.`.
pub(crate) fn file_name(name: &str) -> Result<String> {
    if name.is_empty() {
        return Err(refuse(name, "empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(refuse(name, "longer than 247 bytes"));
    }
    if name.starts_with('.') {
        return Err(refuse(name, "starts with '.' (\".\", \"..\" and hidden names are refused)"));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))) {
        return Err(refuse(
            name,
            if c == '/' {
                "contains '/'"
            } else if c == '\0' {
                "contains a NUL byte"
            } else {
                "only ASCII letters, digits, '_', '-' and '.' are allowed"
            },
        ));
    }
    Ok(format!("{SEGMENT_PREFIX}{name}"))
}

/// Checks the name of a foreign POSIX shared-memory object (as given to
/// `shm_open`, with or without its leading `/`) and returns its file name.
pub(crate) fn raw_file_name(name: &str) -> Result<String> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    if bare.is_empty() {
        return Err(refuse(name, "empty"));
    }
    if bare.len() > NAME_MAX {
        return Err(refuse(name, "longer than 255 bytes"));
    }
    if bare == "." || bare == ".." {
        return Err(refuse(name, "\".\" and \"..\" are not objects"));
    }
    if bare.contains('/') {
        return Err(refuse(name, "contains '/' after the leading one"));
    }
    if bare.contains('\0') {
        return Err(refuse(name, "contains a NUL byte"));
    }
    if bare.starts_with(SEGMENT_PREFIX) || bare.starts_with(crate::owner::token::TOKEN_PREFIX) {
        return Err(refuse(name, "names a shmproc object or liveness token: open it with its own type"));
    }
    Ok(bare.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RELIABILITY case 33: bad names are refused before any syscall.
    #[test]
    fn bad_names_are_refused() {
        let long = "x".repeat(MAX_NAME_LEN + 1);
        for bad in ["", ".", "..", "a/b", "../x", "a\0b", ".hidden", "sp ace", "é", long.as_str()] {
            assert!(matches!(file_name(bad), Err(Error::InvalidName { .. })), "{bad:?}");
        }
        for bad in ["", "/", ".", "..", "/..", "a/b", "../x", "a\0b", "shmproc.q", "/shmproc.q", "shmproc@01abcd"] {
            assert!(matches!(raw_file_name(bad), Err(Error::InvalidName { .. })), "{bad:?}");
        }
        assert!(raw_file_name(&"y".repeat(256)).is_err());
    }

    #[test]
    fn good_names_are_prefixed() {
        assert_eq!(file_name("jobs-1.q_2").expect("valid"), "shmproc.jobs-1.q_2");
        assert_eq!(file_name(&"x".repeat(MAX_NAME_LEN)).expect("valid").len(), 255);
        assert_eq!(raw_file_name("/psm_1234").expect("valid"), "psm_1234");
        assert_eq!(raw_file_name("psm_1234").expect("valid"), "psm_1234");
    }
}
