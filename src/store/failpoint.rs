//! Test seam: `PYSTORE_FAILPOINT=<name>` makes a process stop at a named point of registration
//! and wait there until it is killed, so tests can check crash recovery at exact moments.
//! It changes no output; see store-layout.md, "Crash recovery".

use std::io::Write;

/// The names of the points, in the order registration passes them.
pub const POINTS: &[&str] = &["mid-copy", "before-rename", "after-rename", "after-commit"];

/// The armed failpoint, read once when the store is opened.
#[derive(Clone, Debug, Default)]
pub struct Failpoints {
    armed: Option<String>,
}

impl Failpoints {
    /// Reads `PYSTORE_FAILPOINT`.
    pub fn from_env() -> Failpoints {
        Failpoints {
            armed: std::env::var("PYSTORE_FAILPOINT")
                .ok()
                .filter(|s| !s.is_empty()),
        }
    }

    /// At point `name`: if armed, announce it on stderr and wait to be killed.
    pub fn hit(&self, name: &str) {
        if self.armed.as_deref() == Some(name) {
            let _ = writeln!(std::io::stderr(), "pystore: failpoint {name} reached");
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
    }
}
