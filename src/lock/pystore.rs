//! `pystore.lock`: pystore's own lock format, the TOML shape of [`Lock`].
//!
//! Written in one stable order (targets by name, packages by normalised name), with no wheel
//! URLs: any index, mirror or wheelhouse can serve the pinned bytes.

use std::path::{Path, PathBuf};

use super::{Lock, LOCK_VERSION};

const HEADER: &str = "# Written by `pystore lock`; edit the requirements and run it again instead of editing this.\n";

/// Why a lock cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The file cannot be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not a valid lock.
    #[error("{}: {problem}", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        problem: LockProblem,
    },
    /// Not a regular file, or too large.
    #[error(transparent)]
    Input(#[from] crate::hash::files::InputError),
}

/// What is wrong with the text of a `pystore.lock`.
#[derive(Debug, thiserror::Error)]
pub enum LockProblem {
    /// Not TOML, or not the shape of a lock (a bad pin names its package and value).
    #[error("{0}")]
    Toml(#[source] TomlError),
    /// Another format version.
    #[error("lock format version {found} is not {LOCK_VERSION}; run `pystore lock` to rewrite it")]
    Version { found: u32 },
    /// A pinned interpreter whose version is not `X.Y.Z`.
    #[error("the interpreter of target {target}: {version:?} is not a version like 3.13.9")]
    InterpreterVersion { target: String, version: String },
}

/// A TOML error, shown without the line break `toml` ends its text with, so it reads as the
/// end of a message naming the file. Its text is the whole of what `toml` says, so it has no
/// `source()` of its own: a chain ends with it. The lock formats and the recipe parser use it.
#[derive(Debug)]
pub struct TomlError(pub toml::de::Error);

impl std::fmt::Display for TomlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.to_string().trim_end())
    }
}

impl std::error::Error for TomlError {}

impl Lock {
    /// Reads a lock file.
    pub fn read(path: &Path) -> Result<Lock, LockError> {
        let text = crate::hash::files::read_text_input(path, "lock")?;
        Lock::parse(path, &text)
    }

    /// Parses lock text (`path` names the file in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Lock, LockError> {
        let parse_error = |problem: LockProblem| LockError::Parse {
            path: path.to_path_buf(),
            problem,
        };
        let lock: Lock =
            toml::from_str(text).map_err(|e| parse_error(LockProblem::Toml(TomlError(e))))?;
        if lock.version != LOCK_VERSION {
            return Err(parse_error(LockProblem::Version {
                found: lock.version,
            }));
        }
        for target in &lock.targets {
            // Digests, names, versions and wheel file names were parsed with the TOML (see
            // `LockedPackage`), each error naming its package and value.
            if let Some(interpreter) = &target.interpreter {
                if interpreter.version.split('.').count() != 3
                    || crate::python::PythonVersion::parse(&interpreter.version).is_err()
                {
                    return Err(parse_error(LockProblem::InterpreterVersion {
                        target: target.spec.name.clone(),
                        version: interpreter.version.clone(),
                    }));
                }
            }
        }
        Ok(lock)
    }

    /// The canonical text: sorted, stable, ending in a newline.
    pub fn to_toml(&self) -> String {
        let mut sorted = self.clone();
        sorted.targets.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
        for target in &mut sorted.targets {
            // Versions compare as their text, as when they were strings, so the order (and the
            // bytes) of a lock holding one name twice stay what they were.
            target.packages.sort_by(|a, b| {
                (&a.name, a.version.to_string()).cmp(&(&b.name, b.version.to_string()))
            });
            for package in &mut target.packages {
                package.required_by.sort();
                package.required_by.dedup();
            }
        }
        // Serialising plain strings, numbers and tables cannot fail.
        let body = toml::to_string(&sorted).expect("a lock serialises");
        format!("{HEADER}{body}")
    }

    /// Writes the lock atomically (a temporary file renamed over the old one, so a symlink
    /// there is replaced, never followed), mode 0666 less the umask.
    pub fn write(&self, path: &Path) -> Result<(), LockError> {
        crate::hash::files::write_user_file(path, self.to_toml().as_bytes()).map_err(|source| {
            LockError::Io {
                path: path.to_path_buf(),
                source,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;

    #[test]
    fn round_trips_in_a_stable_order() {
        let text = sample().to_toml();
        assert!(text.starts_with(HEADER));
        assert!(
            text.find("linux-x86_64").unwrap() < text.find("windows-x86_64").unwrap(),
            "targets sorted"
        );
        assert_eq!(text.matches("http").count(), 1, "no wheel URLs: {text}");
        assert!(
            text.contains("[targets.interpreter]\nversion = \"3.12.7\"\nurl = \"https://HOST/cpython-3.12.7.tar.gz\"\nsize = 1234\n"),
            "{text}"
        );
        let back = Lock::parse(Path::new("pystore.lock"), &text).unwrap();
        assert_eq!(back, {
            let mut sorted = sample();
            sorted.targets.reverse();
            sorted
        });
        assert_eq!(back.to_toml(), text);
        // A lock written before interpreters were pinned still reads.
        let old = text.replace(
            &text[text.find("[targets.interpreter]").unwrap()
                ..text.find("[[targets.packages]]").unwrap()],
            "",
        );
        let old = Lock::parse(Path::new("pystore.lock"), &old).unwrap();
        assert!(old.targets.iter().all(|t| t.interpreter.is_none()));
        let bad = text.replace(&"cd".repeat(32), "cd");
        let err = Lock::parse(Path::new("pystore.lock"), &bad)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("pystore.lock: "), "{err}");
        assert!(err.contains("sha256 = \"cd\""), "the line: {err}");
        assert!(
            err.contains("\"cd\" is not a sha256 (64 hex digits)"),
            "{err}"
        );
    }

    #[test]
    fn a_toml_error_is_said_once_without_a_trailing_line_break() {
        let err = Lock::parse(Path::new("/r/pystore.lock"), "version = \n").unwrap_err();
        let chain = crate::errors::chain(&err);
        assert_eq!(chain.len(), 1, "{chain:?}");
        assert!(
            chain[0].starts_with("/r/pystore.lock: TOML parse error"),
            "{chain:?}"
        );
        assert_eq!(chain[0].trim_end(), chain[0]);
        assert!(matches!(
            err,
            LockError::Parse {
                problem: LockProblem::Toml(_),
                ..
            }
        ));
    }

    /// The bytes `to_toml` wrote for the sample before targets became `TargetSpec`s (the held
    /// file was written by that code).
    #[test]
    fn written_bytes_are_held() {
        let held = include_str!("../../tests/data/lock/sample.pystore.lock");
        assert_eq!(sample().to_toml(), held);
        assert_eq!(
            Lock::parse(Path::new("pystore.lock"), held)
                .unwrap()
                .to_toml(),
            held
        );
    }

    #[test]
    fn a_bad_platform_or_floor_is_refused_when_the_lock_is_read() {
        let text = sample().to_toml();
        let bad = text.replace("x86_64-unknown-linux-gnu", "x86_64-unknown-linux-gnux");
        let err = Lock::parse(Path::new("/r/pystore.lock"), &bad)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("/r/pystore.lock: ")
                && err.contains("unsupported platform \"x86_64-unknown-linux-gnux\"; supported: "),
            "{err}"
        );
        let bad = text.replace("glibc = \"2.28\"", "glibc = \"2.x\"");
        let err = Lock::parse(Path::new("/r/pystore.lock"), &bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid glibc version \"2.x\""), "{err}");
        let bad = text.replace("glibc = \"2.28\"", "glibc = \"2.28\"\ncolour = \"red\"");
        let err = Lock::parse(Path::new("/r/pystore.lock"), &bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `colour`"), "{err}");
    }

    #[test]
    fn committed_locks_round_trip_byte_for_byte() {
        // Names, versions, wheel names and digests are parsed now: what `pystore lock` wrote
        // must come back out unchanged.
        for (name, text) in [
            (
                "acceptance",
                include_str!("../../tests/acceptance/samai311/pystore.lock"),
            ),
            (
                "samai-head",
                include_str!("../../tests/fuzz_corpus/lock/samai-head.toml"),
            ),
            (
                "two-targets",
                include_str!("../../tests/fuzz_corpus/lock/two-targets.toml"),
            ),
        ] {
            let lock = Lock::parse(Path::new(name), text).unwrap();
            // The corpus's hand-made two-targets lock has no header; everything else is equal.
            let expected = match text.starts_with(HEADER) {
                true => text.to_owned(),
                false => format!("{HEADER}{text}"),
            };
            assert_eq!(lock.to_toml(), expected, "{name}");
        }
    }

    #[test]
    fn upper_case_digests_read_and_are_written_lower_case() {
        let text = sample().to_toml();
        let upper = text.replace(&"ab".repeat(32), &"AB".repeat(32));
        let lock = Lock::parse(Path::new("pystore.lock"), &upper).unwrap();
        assert_eq!(lock.to_toml(), text);
    }

    #[test]
    fn bad_locks_are_refused_with_the_file_name() {
        // A bad pin fails when the lock is read, naming the file, the package and the value.
        let text = sample().to_toml();
        for (from, to, expected) in [
            (
                "ab".repeat(32),
                "xyz".to_owned(),
                "lxml: \"xyz\" is not a sha256 (64 hex digits)",
            ),
            (
                "lxml-6.1.3-cp312-cp312-win_amd64.whl".to_owned(),
                "lxml-6.1.3.zip".to_owned(),
                "lxml: \"lxml-6.1.3.zip\" is not a valid wheel file name",
            ),
            (
                "version = \"6.1.3\"".to_owned(),
                "version = \"six\"".to_owned(),
                "lxml: version \"six\"",
            ),
            (
                "name = \"lxml\"".to_owned(),
                "name = \"lx ml\"".to_owned(),
                "package \"lx ml\" is not a project name",
            ),
        ] {
            assert!(text.contains(&from), "{from}");
            let err = Lock::parse(Path::new("/r/pystore.lock"), &text.replace(&from, &to))
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("/r/pystore.lock: "), "{err}");
            assert!(err.contains(expected), "{expected}: {err}");
        }
        let err = Lock::parse(
            Path::new("p.lock"),
            "version = 9\npython = \"3\"\ninputs = \"x\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("run `pystore lock`"), "{err}");
    }
}
