//! Helpers shared by the integration tests (each includes it with
//! `mod common;`): names unique to one test, and the check that a test
//! leaves nothing in `/dev/shm`.
//!
//! Each test binary compiles this module on its own, and not every one
//! uses every item: those only some use carry `#[allow(dead_code)]`.

pub(crate) mod outcome;

/// Where POSIX shared-memory objects live.
pub(crate) const SHM_DIR: &str = "/dev/shm";

/// Names unique to one test in this process: `<kind>-<pid>-<tag>-<n>`.
/// `finish` asserts that none of them is left in `/dev/shm`; if the test
/// panics first, dropping this removes leftovers so other tests (and
/// reruns) stay clean.
pub(crate) struct Names {
    prefix: String,
    /// Foreign (raw) file names the test made, checked and removed too.
    raw: Vec<String>,
}

impl Names {
    /// `kind` names the test binary (`segtest`, `synctest`). `tag` must not
    /// contain `-`, so no test's prefix is another's.
    pub(crate) fn new(kind: &str, tag: &str) -> Names {
        assert!(!tag.contains('-'), "tags use '_' so prefixes never overlap");
        Names { prefix: format!("{kind}-{}-{tag}-", std::process::id()), raw: Vec::new() }
    }

    pub(crate) fn name(&self, n: &str) -> String {
        format!("{}{n}", self.prefix)
    }

    /// A name for a foreign object (no `shmproc.` prefix in `/dev/shm`).
    // Only `tests/segment.rs` makes foreign objects.
    #[allow(dead_code)]
    pub(crate) fn raw_name(&mut self, n: &str) -> String {
        let name = format!("raw_{}{n}", self.prefix);
        self.raw.push(name.clone());
        name
    }

    /// The `/dev/shm` path of the shmproc object named `name(n)`.
    // Only `tests/segment.rs` looks at the files themselves.
    #[allow(dead_code)]
    pub(crate) fn path_of(&self, n: &str) -> String {
        format!("{SHM_DIR}/shmproc.{}", self.name(n))
    }

    fn leftovers(&self) -> Vec<String> {
        let ours = format!("shmproc.{}", self.prefix);
        let mut left: Vec<String> = std::fs::read_dir(SHM_DIR)
            .expect("read /dev/shm")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|f| f.starts_with(&ours) || self.raw.contains(f))
            .collect();
        left.sort();
        left
    }

    pub(crate) fn finish(self) {
        assert_eq!(self.leftovers(), Vec::<String>::new(), "shared-memory objects left behind");
    }
}

impl Drop for Names {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for f in self.leftovers() {
                let _ = std::fs::remove_file(format!("{SHM_DIR}/{f}"));
            }
        }
    }
}

/// Names of spill segments this process made that are still in `/dev/shm`.
// Only the tests of types that spill large messages use it.
#[allow(dead_code)]
pub(crate) fn my_spills() -> Vec<String> {
    let prefix = format!("shmproc.spill.{}.", std::process::id());
    std::fs::read_dir(SHM_DIR)
        .expect("read /dev/shm")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|f| f.starts_with(&prefix))
        .collect()
}
