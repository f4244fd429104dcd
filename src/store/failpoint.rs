//! Test seam: `PYSTORE_FAILPOINT=<point>` makes a process stop at a named point of registration
//! and wait there until it is killed, so tests can check crash recovery at exact moments;
//! `PYSTORE_FAILPOINT=<point>:sleep=<ms>` pauses there for that long and then goes on, so tests
//! can hold a builder while others queue behind it. Either way the process first prints
//! `pystore: failpoint <point> reached` on stderr. It changes no output; see store-layout.md.
//!
//! One more value exists to prove that reproducibility checks can fail:
//! `PYSTORE_FAILPOINT=nondeterministic-output` writes the current time into a file
//! `<NONDETERMINISM_FILE>-<entry name>` at the root of every directory this process builds
//! (entries and `realise --check` rebuilds alike; the name keeps the files of an interpreter and
//! its packages apart when a bundle merges them), so the reproducibility harness and `--check`
//! see a difference. It is never set by pystore itself.
//!
//! Release builds ignore the variable: the seams exist only where [`SEAMS`] is true (debug builds,
//! which `cargo test` and the reproducibility harness use, or the `test-seams` cargo feature).

use std::io::Write;
use std::time::Duration;

/// The names of the points, in the order registration passes them.
pub const POINTS: &[&str] = &["mid-copy", "before-rename", "after-rename", "after-commit"];

/// The `PYSTORE_FAILPOINT` value that makes every built directory non-deterministic.
pub const NONDETERMINISTIC_OUTPUT: &str = "nondeterministic-output";

/// The prefix of the file `nondeterministic-output` writes the time into.
pub const NONDETERMINISM_FILE: &str = "pystore-failpoint-time";

/// Whether this build honours the test seams (`PYSTORE_FAILPOINT`,
/// `PYSTORE_TEST_SANDBOX_UNAVAILABLE`): debug builds and builds with the `test-seams` feature.
/// A release build must not let an environment variable hang it or weaken its sandbox.
pub const SEAMS: bool = cfg!(any(debug_assertions, feature = "test-seams"));

/// The armed failpoint, read once when the store is opened.
#[derive(Clone, Debug, Default)]
pub struct Failpoints {
    armed: Option<(String, Option<Duration>)>,
    nondeterministic: bool,
}

impl Failpoints {
    /// Reads `PYSTORE_FAILPOINT` (only where [`SEAMS`] is true; never armed otherwise).
    pub fn from_env() -> Failpoints {
        Failpoints::from_spec(if SEAMS {
            std::env::var("PYSTORE_FAILPOINT").ok()
        } else {
            None
        })
    }

    /// The failpoints a `PYSTORE_FAILPOINT` value arms.
    fn from_spec(spec: Option<String>) -> Failpoints {
        let nondeterministic = spec.as_deref() == Some(NONDETERMINISTIC_OUTPUT);
        let armed = spec.and_then(|spec| {
            let (point, action) = spec.split_once(':').unwrap_or((&spec, ""));
            let pause = action
                .strip_prefix("sleep=")
                .and_then(|ms| ms.parse().ok())
                .map(Duration::from_millis);
            POINTS.contains(&point).then(|| (point.to_owned(), pause))
        });
        Failpoints {
            armed,
            nondeterministic,
        }
    }

    /// With `nondeterministic-output`: writes the wall-clock time (nanoseconds) into
    /// `<NONDETERMINISM_FILE>-<name>` inside `out` when `out` is a directory.
    pub fn inject_nondeterminism(&self, out: &std::path::Path, name: &str) {
        if !self.nondeterministic || !out.is_dir() {
            return;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let _ = std::fs::write(
            out.join(format!("{NONDETERMINISM_FILE}-{name}")),
            format!("{now}\n"),
        );
    }

    /// At point `name`: if armed, announce it on stderr and wait (to be killed, or for the
    /// configured pause).
    pub fn hit(&self, name: &str) {
        let Some((point, pause)) = &self.armed else {
            return;
        };
        if point != name {
            return;
        }
        let _ = writeln!(std::io::stderr(), "pystore: failpoint {name} reached");
        match pause {
            Some(pause) => std::thread::sleep(*pause),
            None => loop {
                std::thread::sleep(Duration::from_secs(3600));
            },
        }
    }
}
