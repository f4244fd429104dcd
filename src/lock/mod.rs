//! `pystore.lock`: every wheel of every target pinned by file name, size and sha256.
//!
//! TOML, written in one stable order (targets by name, packages by normalised name), with no
//! wheel URLs: any index, mirror or wheelhouse can serve the pinned bytes. Each target may also
//! pin its interpreter archive (version, URL, size, sha256), chosen from the catalogue at lock
//! time, so realise never consults the catalogue. `inputs` is a hash of what
//! the lock was resolved from (the parsed requirements, the Python version and the targets), so
//! realise can refuse a lock that no longer matches the recipe.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::requirements::RequirementsFile;
use crate::hash::{canonical_json, to_hex};

/// The format version written and read.
pub const LOCK_VERSION: u32 = 1;

/// blake3 derive-key context of the inputs hash.
const INPUTS_CONTEXT: &str = "pystore 2026-11 lock inputs v1";

const HEADER: &str = "# Written by `pystore lock`; edit the requirements and run it again instead of editing this.\n";

/// A whole lock file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Lock {
    /// Format version.
    pub version: u32,
    /// The CPython version every target was resolved for.
    pub python: String,
    /// Hash of the inputs (see [`inputs_hash`]).
    pub inputs: String,
    /// One table per target, sorted by name.
    #[serde(default)]
    pub targets: Vec<LockedTarget>,
}

/// The pins of one target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LockedTarget {
    /// Target name, as in the recipe.
    pub name: String,
    /// Platform triple.
    pub platform: String,
    /// glibc floor, for Linux targets that set one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glibc: Option<String>,
    /// The interpreter archive chosen for the target, when it comes from the catalogue (a
    /// target whose recipe names its own interpreter, and locks written before pins existed,
    /// have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interpreter: Option<LockedInterpreter>,
    /// Packages, sorted by normalised name.
    #[serde(default)]
    pub packages: Vec<LockedPackage>,
}

/// A pinned interpreter archive: realise fetches exactly these bytes, whatever the catalogue
/// says later.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LockedInterpreter {
    /// The CPython release, `3.13.9`.
    pub version: String,
    /// Where the archive was found (any mirror serving the same sha256 does as well).
    pub url: String,
    /// The archive's size in bytes, when the catalogue knew it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The archive's sha256, hex.
    pub sha256: String,
}

/// One pinned wheel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LockedPackage {
    /// Normalised project name.
    pub name: String,
    /// Version.
    pub version: String,
    /// The wheel's file name.
    pub wheel: String,
    /// The wheel's size in bytes.
    pub size: u64,
    /// The wheel's sha256, hex.
    pub sha256: String,
    /// What pulled it in: requirement lines (`requirements.txt:3`) or package names, sorted.
    #[serde(default)]
    pub required_by: Vec<String>,
}

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
    #[error("{}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    /// Not a regular file, or too large.
    #[error(transparent)]
    Input(#[from] crate::hash::files::InputError),
}

/// A target as the inputs hash sees it.
#[derive(Clone, Debug)]
pub struct TargetInput<'a> {
    /// Target name.
    pub name: &'a str,
    /// Platform triple.
    pub platform: &'a str,
    /// glibc floor.
    pub glibc: Option<&'a str>,
}

/// Hash of what a lock is resolved from: the requirements and constraints as parsed (so
/// comments and formatting do not matter), `--pre`, the Python version and the targets.
pub fn inputs_hash(
    requirements: &RequirementsFile,
    python: &str,
    targets: &[TargetInput<'_>],
) -> String {
    let lines = |list: &[super::requirements::RequirementLine]| -> Vec<String> {
        let mut out: Vec<String> = list.iter().map(|r| r.requirement.to_string()).collect();
        out.sort();
        out
    };
    let mut targets: Vec<_> = targets
        .iter()
        .map(|t| json!({"name": t.name, "platform": t.platform, "glibc": t.glibc}))
        .collect();
    targets.sort_by_key(|t| t["name"].as_str().unwrap_or_default().to_owned());
    let value = json!({
        "requirements": lines(&requirements.requirements),
        "constraints": lines(&requirements.constraints),
        "pre": requirements.pre,
        "python": python,
        "targets": targets,
    });
    let canonical = canonical_json::to_vec(&value).expect("only strings and booleans");
    format!(
        "blake3:{}",
        to_hex(blake3::derive_key(INPUTS_CONTEXT, &canonical).as_slice())
    )
}

impl Lock {
    /// Reads a lock file.
    pub fn read(path: &Path) -> Result<Lock, LockError> {
        let text = crate::hash::files::read_text_input(path, "lock")?;
        Lock::parse(path, &text)
    }

    /// Parses lock text (`path` names the file in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Lock, LockError> {
        let parse_error = |message: String| LockError::Parse {
            path: path.to_path_buf(),
            message,
        };
        let lock: Lock =
            toml::from_str(text).map_err(|e| parse_error(e.to_string().trim_end().to_owned()))?;
        if lock.version != LOCK_VERSION {
            return Err(parse_error(format!(
                "lock format version {} is not {LOCK_VERSION}; run `pystore lock` to rewrite it",
                lock.version
            )));
        }
        for target in &lock.targets {
            if let Some(interpreter) = &target.interpreter {
                if hex::decode(&interpreter.sha256).map(|b| b.len()) != Ok(32) {
                    return Err(parse_error(format!(
                        "the interpreter of target {}: sha256 {:?} is not 64 hex digits",
                        target.name, interpreter.sha256
                    )));
                }
                if interpreter.version.split('.').count() != 3
                    || super::PythonVersion::parse(&interpreter.version).is_err()
                {
                    return Err(parse_error(format!(
                        "the interpreter of target {}: {:?} is not a version like 3.13.9",
                        target.name, interpreter.version
                    )));
                }
            }
            for package in &target.packages {
                if hex::decode(&package.sha256).map(|b| b.len()) != Ok(32) {
                    return Err(parse_error(format!(
                        "{} in target {}: sha256 {:?} is not 64 hex digits",
                        package.name, target.name, package.sha256
                    )));
                }
            }
        }
        Ok(lock)
    }

    /// The canonical text: sorted, stable, ending in a newline.
    pub fn to_toml(&self) -> String {
        let mut sorted = self.clone();
        sorted.targets.sort_by(|a, b| a.name.cmp(&b.name));
        for target in &mut sorted.targets {
            target
                .packages
                .sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
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

    /// Target `name`'s pins as a hashed requirements file (pip's `--require-hashes` format, as
    /// pip-compile writes it): `name==version --hash=sha256:HEX`, one wheel per package, so
    /// other tools install exactly the bytes the lock names. `None` without that target.
    pub fn hashed_requirements(&self, name: &str) -> Option<String> {
        let target = self.target(name)?;
        let mut packages: Vec<&LockedPackage> = target.packages.iter().collect();
        packages.sort_by(|a, b| a.name.cmp(&b.name));
        let mut out = format!(
            "# Written by `pystore lock` for target {} (CPython {} on {}); do not edit.\n\
             # Install with: pip install --no-deps --only-binary :all: --require-hashes -r THIS_FILE\n",
            target.name, self.python, target.platform
        );
        for package in packages {
            out.push_str(&format!(
                "{}=={} \\\n    --hash=sha256:{}\n",
                package.name, package.version, package.sha256
            ));
        }
        Some(out)
    }

    /// The pins of target `name`.
    pub fn target(&self, name: &str) -> Option<&LockedTarget> {
        self.targets.iter().find(|t| t.name == name)
    }

    /// Packages by name for a target (for diffs and checks).
    pub fn packages_of(&self, name: &str) -> BTreeMap<&str, &LockedPackage> {
        self.target(name)
            .map(|t| t.packages.iter().map(|p| (p.name.as_str(), p)).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Lock {
        Lock {
            version: LOCK_VERSION,
            python: "3.12.7".into(),
            inputs: "blake3:00".into(),
            targets: vec![
                LockedTarget {
                    name: "windows-x86_64".into(),
                    platform: "x86_64-pc-windows-msvc".into(),
                    glibc: None,
                    interpreter: Some(LockedInterpreter {
                        version: "3.12.7".into(),
                        url: "https://HOST/cpython-3.12.7.tar.gz".into(),
                        size: Some(1234),
                        sha256: "cd".repeat(32),
                    }),
                    packages: vec![LockedPackage {
                        name: "lxml".into(),
                        version: "6.1.3".into(),
                        wheel: "lxml-6.1.3-cp312-cp312-win_amd64.whl".into(),
                        size: 3_900_000,
                        sha256: "ab".repeat(32),
                        required_by: vec!["requirements.txt:2".into()],
                    }],
                },
                LockedTarget {
                    name: "linux-x86_64".into(),
                    platform: "x86_64-unknown-linux-gnu".into(),
                    glibc: Some("2.28".into()),
                    interpreter: None,
                    packages: vec![],
                },
            ],
        }
    }

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
        assert!(
            err.contains("the interpreter of target windows-x86_64: sha256"),
            "{err}"
        );
    }

    #[test]
    fn bad_locks_are_refused_with_the_file_name() {
        let text = sample().to_toml().replace(&"ab".repeat(32), "xyz");
        let err = Lock::parse(Path::new("/r/pystore.lock"), &text)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("/r/pystore.lock: lxml in target windows-x86_64: sha256 \"xyz\""),
            "{err}"
        );
        let err = Lock::parse(
            Path::new("p.lock"),
            "version = 9\npython = \"3\"\ninputs = \"x\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("run `pystore lock`"), "{err}");
    }

    #[test]
    fn exports_hashed_requirements_that_read_back() {
        let lock = sample();
        assert!(lock.hashed_requirements("nope").is_none());
        let text = lock.hashed_requirements("windows-x86_64").unwrap();
        assert!(text.contains("target windows-x86_64 (CPython 3.12.7 on x86_64-pc-windows-msvc)"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("requirements.txt");
        std::fs::write(&path, &text).unwrap();
        let back = super::super::requirements::read(&path).unwrap();
        assert_eq!(back.requirements.len(), 1);
        assert_eq!(back.requirements[0].requirement.to_string(), "lxml==6.1.3");
        assert_eq!(
            back.requirements[0].hashes,
            [("sha256".to_owned(), "ab".repeat(32))]
        );
    }

    #[test]
    fn inputs_hash_ignores_formatting_but_not_content() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.txt");
        let b = dir.path().join("b.txt");
        std::fs::write(&a, "lxml>=5\nopenai # the API\n").unwrap();
        std::fs::write(&b, "# reordered, reformatted\nopenai\nlxml >= 5\n").unwrap();
        let targets = [TargetInput {
            name: "t",
            platform: "x86_64-unknown-linux-gnu",
            glibc: None,
        }];
        let ha = inputs_hash(
            &super::super::requirements::read(&a).unwrap(),
            "3.12.7",
            &targets,
        );
        let hb = inputs_hash(
            &super::super::requirements::read(&b).unwrap(),
            "3.12.7",
            &targets,
        );
        assert_eq!(ha, hb);
        std::fs::write(&b, "openai\nlxml >= 6\n").unwrap();
        let hc = inputs_hash(
            &super::super::requirements::read(&b).unwrap(),
            "3.12.7",
            &targets,
        );
        assert_ne!(ha, hc);
        let hd = inputs_hash(
            &super::super::requirements::read(&a).unwrap(),
            "3.13.0",
            &targets,
        );
        assert_ne!(ha, hd);
    }
}
