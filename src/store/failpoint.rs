//! Test seam: `PYSTORE_FAILPOINT=<point>` makes a process stop at a named point of registration
//! and wait there until it is killed, so tests can check crash recovery at exact moments;
//! `PYSTORE_FAILPOINT=<point>:sleep=<ms>` pauses there for that long and then goes on, so tests
//! can hold a builder while others queue behind it. Either way the process first prints
//! `pystore: failpoint <point> reached` on stderr. It changes no output; see store-layout.md.

use std::io::Write;
use std::time::Duration;

/// The names of the points, in the order registration passes them.
pub const POINTS: &[&str] = &["mid-copy", "before-rename", "after-rename", "after-commit"];

/// The armed failpoint, read once when the store is opened.
#[derive(Clone, Debug, Default)]
pub struct Failpoints {
    armed: Option<(String, Option<Duration>)>,
}

impl Failpoints {
    /// Reads `PYSTORE_FAILPOINT`.
    pub fn from_env() -> Failpoints {
        let armed = std::env::var("PYSTORE_FAILPOINT").ok().and_then(|spec| {
            let (point, action) = spec.split_once(':').unwrap_or((&spec, ""));
            let pause = action
                .strip_prefix("sleep=")
                .and_then(|ms| ms.parse().ok())
                .map(Duration::from_millis);
            POINTS.contains(&point).then(|| (point.to_owned(), pause))
        });
        Failpoints { armed }
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
