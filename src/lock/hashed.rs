//! Hashed requirements files: pip's `--require-hashes` format, written from a [`Lock`] per target
//! ([`Lock::hashed_requirements`], `pystore lock --export-requirements`) and read as a target's
//! pins (`pystore lock --from-requirements`, see [`super::import`]) as pip-compile
//! `--generate-hashes`, `uv pip compile --generate-hashes` and pystore write it. Every requirement
//! line must pin one version (`name==version`) and give at least one `--hash=sha256:`; markers
//! say which targets a line applies to.
//!
//! Comments (`# via …` included), `\` continuations and the index options those tools write at
//! the top (`--index-url`, `--extra-index-url`, `--find-links`, `--trusted-host`, `--no-index`)
//! are accepted and ignored: the hashes name the bytes, so where they come from is pystore's own
//! configuration. Includes (`-r`, `-c`) and editable lines are refused, as is any other option.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use pep440_rs::{Operator, Version};
use pep508_rs::{Pep508Error, Requirement, VersionOrUrl};

use super::{Lock, LockedPackage};
use crate::hash::Sha256Digest;
use crate::python::markers::{marker_environment, MarkerError};
use crate::python::requirements::{logical_lines, Origin};
use crate::python::target::Target;
use crate::python::PackageName;

/// One pinned line.
#[derive(Clone, Debug)]
pub struct HashedPin {
    /// Normalised project name.
    pub name: PackageName,
    /// The pinned version.
    pub version: Version,
    /// The sha256 values listed, in file order.
    pub sha256: Vec<Sha256Digest>,
    /// The requirement as parsed (its marker decides which targets it applies to).
    pub requirement: Requirement,
    /// Where it was written.
    pub origin: Origin,
}

/// Why a hashed requirements file cannot serve as a lock.
#[derive(Debug, thiserror::Error)]
pub enum HashedError {
    /// The file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A line that is not a hashed pin (or an option pystore cannot honour).
    #[error("{origin}: {problem}")]
    Line {
        origin: Origin,
        #[source]
        problem: LineProblem,
    },
    /// The target's marker environment (a bug in the target tables).
    #[error("{}: target {target}: {source}", path.display())]
    Target {
        path: PathBuf,
        target: String,
        source: MarkerError,
    },
}

/// Why a line of a hashed requirements file is not a pin pystore can use.
#[derive(Debug, thiserror::Error)]
pub enum LineProblem {
    /// `-r`/`-c`: another file's lines.
    #[error("{option} is not supported: a lock is one file: pystore does not follow includes here; import the file that holds the pins")]
    Include { option: String },
    /// `-e`: an editable project.
    #[error("{option} is not supported: pystore installs wheels, not editable projects")]
    Editable { option: String },
    /// Any other option pystore does not ignore.
    #[error("{option} is not supported: pystore does not know this option in a hashed requirements file")]
    UnknownOption { option: String },
    /// A `--hash` value without an algorithm.
    #[error("--hash={value} is not ALGORITHM:HEX")]
    HashFormat { value: String },
    /// A sha256 that is not 64 hex digits.
    #[error("--hash=sha256:{hex} is not 64 hexadecimal digits")]
    Sha256 { hex: String },
    /// An option after a requirement.
    #[error("{word} is not supported on a requirement line")]
    RequirementOption { word: String },
    /// The requirement does not parse.
    #[error("{0}")]
    Requirement(#[source] Box<Pep508Error>),
    /// Not `name==version`.
    #[error("{requirement} is not pinned: every line of a lock must be name==version with --hash=sha256: values (generate the file with --generate-hashes)")]
    NotPinned { requirement: String },
    /// A direct URL instead of a version.
    #[error("{requirement}: a direct URL is not supported: pin name==version and serve the wheel from an index or a wheelhouse")]
    DirectUrl { requirement: String },
    /// No sha256 among the hashes.
    #[error("{requirement} has no --hash=sha256: value; pystore pins every wheel by sha256 (generate the file with --generate-hashes)")]
    NoSha256 { requirement: String },
    /// A second line for one project that applies to the same target.
    #[error("{name} is pinned again for target {target} (also at line {other_line}); give each project one line per target (use markers)")]
    PinnedAgain {
        name: PackageName,
        target: String,
        other_line: usize,
    },
}

/// Options the generating tools write that only say where files come from: ignored.
const IGNORED_OPTIONS: &[&str] = &[
    "-i",
    "--index-url",
    "--extra-index-url",
    "-f",
    "--find-links",
    "--trusted-host",
    "--no-index",
    "--prefer-binary",
    "--only-binary",
    "--require-hashes",
    "--pre",
];

/// Reads the hashed requirements file at `path`.
pub fn read_hashed(path: &Path) -> Result<Vec<HashedPin>, HashedError> {
    let text = std::fs::read_to_string(path).map_err(|source| HashedError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_hashed(path, &text)
}

/// Parses hashed requirements `text`; `path` names the file in errors.
pub fn parse_hashed(path: &Path, text: &str) -> Result<Vec<HashedPin>, HashedError> {
    let mut pins = Vec::new();
    for (line, content) in logical_lines(text) {
        let origin = Origin {
            file: path.to_path_buf(),
            line,
        };
        if let Some(pin) = parse_line(&content, origin)? {
            pins.push(pin);
        }
    }
    Ok(pins)
}

fn parse_line(line: &str, origin: Origin) -> Result<Option<HashedPin>, HashedError> {
    let fail = |problem: LineProblem| HashedError::Line {
        origin: origin.clone(),
        problem,
    };
    if line.starts_with('-') {
        let option = line.split([' ', '\t', '=']).next().unwrap_or(line);
        if IGNORED_OPTIONS.contains(&option) {
            return Ok(None);
        }
        let option = option.to_owned();
        return Err(fail(match option.as_str() {
            "-r" | "--requirement" | "-c" | "--constraint" => LineProblem::Include { option },
            "-e" | "--editable" => LineProblem::Editable { option },
            _ => LineProblem::UnknownOption { option },
        }));
    }
    let mut sha256 = Vec::new();
    let mut requirement_text = String::new();
    let mut words = line.split_whitespace();
    while let Some(word) = words.next() {
        let value = match word.strip_prefix("--hash=") {
            Some(value) => Some(value),
            None if word == "--hash" => Some(words.next().unwrap_or_default()),
            None => None,
        };
        if let Some(value) = value {
            let (algorithm, hex) = value.split_once(':').ok_or_else(|| {
                fail(LineProblem::HashFormat {
                    value: value.to_owned(),
                })
            })?;
            // Other algorithms (sha384, sha512) are allowed by pip; the lock pins by sha256.
            if algorithm.eq_ignore_ascii_case("sha256") {
                let digest = hex.parse::<Sha256Digest>().map_err(|_| {
                    fail(LineProblem::Sha256 {
                        hex: hex.to_owned(),
                    })
                })?;
                sha256.push(digest);
            }
        } else if word.starts_with("--") {
            return Err(fail(LineProblem::RequirementOption {
                word: word.to_owned(),
            }));
        } else {
            if !requirement_text.is_empty() {
                requirement_text.push(' ');
            }
            requirement_text.push_str(word);
        }
    }
    let requirement = Requirement::from_str(&requirement_text)
        .map_err(|e| fail(LineProblem::Requirement(Box::new(e))))?;
    let unpinned = || {
        fail(LineProblem::NotPinned {
            requirement: requirement_text.clone(),
        })
    };
    let version = match &requirement.version_or_url {
        Some(VersionOrUrl::VersionSpecifier(specifiers)) => {
            match specifiers.iter().collect::<Vec<_>>()[..] {
                [only] if matches!(only.operator(), Operator::Equal | Operator::ExactEqual) => {
                    only.version().clone()
                }
                _ => return Err(unpinned()),
            }
        }
        Some(VersionOrUrl::Url(_)) => {
            return Err(fail(LineProblem::DirectUrl {
                requirement: requirement_text,
            }))
        }
        None => return Err(unpinned()),
    };
    if sha256.is_empty() {
        return Err(fail(LineProblem::NoSha256 {
            requirement: requirement_text,
        }));
    }
    Ok(Some(HashedPin {
        name: PackageName::new(requirement.name.as_ref()),
        version,
        sha256,
        requirement,
        origin,
    }))
}

/// The pins that apply to `target` (their markers hold in its environment), one per project:
/// two lines for one project that both apply are refused, naming both.
pub fn pins_for_target<'p>(
    path: &Path,
    pins: &'p [HashedPin],
    target: &Target,
    target_name: &str,
) -> Result<Vec<&'p HashedPin>, HashedError> {
    let env = marker_environment(target).map_err(|source| HashedError::Target {
        path: path.to_path_buf(),
        target: target_name.to_owned(),
        source,
    })?;
    let mut out: Vec<&HashedPin> = Vec::new();
    for pin in pins {
        if !pin.requirement.marker.evaluate(&env, &[]) {
            continue;
        }
        if let Some(other) = out.iter().find(|p| p.name == pin.name) {
            return Err(HashedError::Line {
                origin: pin.origin.clone(),
                problem: LineProblem::PinnedAgain {
                    name: pin.name.clone(),
                    target: target_name.to_owned(),
                    other_line: other.origin.line,
                },
            });
        }
        out.push(pin);
    }
    Ok(out)
}

impl Lock {
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
            target.spec.name,
            self.python,
            target.spec.platform.triple()
        );
        for package in packages {
            out.push_str(&format!(
                "{}=={} \\\n    --hash=sha256:{}\n",
                package.name, package.version, package.sha256
            ));
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";

    fn parse(text: &str) -> Result<Vec<HashedPin>, String> {
        parse_hashed(Path::new("/r/req.txt"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn reads_what_pip_compile_and_uv_write() {
        let text = format!(
            "#\n# This file is autogenerated by pip-compile with Python 3.11\n\
             --index-url http://127.0.0.1:1/simple\n--extra-index-url=http://127.0.0.1:2/simple\n\
             --trusted-host 127.0.0.1\n\n\
             colorama==0.4.6 ; sys_platform == \"win32\" \\\n    --hash=sha256:{A}\n    # via web\n\
             Web_Kit[extra]==1.0 \\\n    --hash=sha256:{A} \\\n    --hash=sha512:00 \\\n    --hash=sha256:{B}\n\
             # via\n    #   -r requirements.in\n    #   other\n"
        );
        let pins = parse(&text).unwrap();
        assert_eq!(pins.len(), 2);
        assert_eq!(pins[0].name, "colorama");
        assert_eq!(pins[0].origin.line, 7);
        assert_eq!(pins[1].name, "web-kit");
        assert_eq!(pins[1].version.to_string(), "1.0");
        assert_eq!(pins[1].origin.line, 10);
        let hex: Vec<String> = pins[1].sha256.iter().map(|d| d.to_string()).collect();
        assert_eq!(hex, [A.to_owned(), B.to_ascii_lowercase()]);
        let linux = Target::new("x86_64-unknown-linux-gnu", None, "3.12.7").unwrap();
        let windows = Target::new("x86_64-pc-windows-msvc", None, "3.12.7").unwrap();
        let names = |target: &Target| -> Vec<String> {
            pins_for_target(Path::new("r"), &pins, target, "t")
                .unwrap()
                .iter()
                .map(|p| p.name.to_string())
                .collect()
        };
        assert_eq!(names(&linux), ["web-kit"]);
        assert_eq!(names(&windows), ["colorama", "web-kit"]);
    }

    #[test]
    fn refuses_lines_that_do_not_pin_by_hash_naming_the_line() {
        let cases = [
            (
                "lxml>=5 --hash=sha256:{A}\n",
                "/r/req.txt:1: lxml>=5 is not pinned",
            ),
            ("\nlxml\n", "/r/req.txt:2: lxml is not pinned"),
            (
                "lxml==5.*  --hash=sha256:{A}\n",
                ":1: lxml==5.* is not pinned",
            ),
            ("lxml==5.0\n", ":1: lxml==5.0 has no --hash=sha256: value"),
            (
                "lxml==5.0 --hash=sha512:00\n",
                ":1: lxml==5.0 has no --hash=sha256:",
            ),
            (
                "lxml==5.0 --hash=sha256:abc\n",
                ":1: --hash=sha256:abc is not 64",
            ),
            (
                "lxml==5.0 --hash=md5\n",
                ":1: --hash=md5 is not ALGORITHM:HEX",
            ),
            (
                "-r other.txt\n",
                ":1: -r is not supported: a lock is one file",
            ),
            (
                "-e ./src\n",
                ":1: -e is not supported: pystore installs wheels",
            ),
            ("--no-deps\n", ":1: --no-deps is not supported"),
            (
                "x @ https://HOST/x.whl --hash=sha256:{A}\n",
                ":1: x @ https://HOST/x.whl: a direct URL",
            ),
        ];
        for (text, expected) in cases {
            let err = parse(&text.replace("{A}", A)).unwrap_err();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
    }

    #[test]
    fn one_line_per_project_and_target() {
        let text = format!(
            "six==1.16 ; sys_platform == 'linux' --hash=sha256:{A}\n\
             six==1.17 ; sys_platform == 'win32' --hash=sha256:{A}\nsix==1.15 --hash=sha256:{A}\n"
        );
        let pins = parse(&text).unwrap();
        let linux = Target::new("x86_64-unknown-linux-gnu", None, "3.12.7").unwrap();
        let err = pins_for_target(Path::new("r"), &pins[..2], &linux, "lin").unwrap();
        assert_eq!(err.len(), 1);
        let err = pins_for_target(Path::new("r"), &pins, &linux, "lin")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/r/req.txt:3: six is pinned again for target lin (also at line 1)"),
            "{err}"
        );
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
        let back = crate::python::requirements::read(&path).unwrap();
        assert_eq!(back.requirements.len(), 1);
        assert_eq!(back.requirements[0].requirement.to_string(), "lxml==6.1.3");
        assert_eq!(
            back.requirements[0].hashes,
            [("sha256".to_owned(), "ab".repeat(32))]
        );
    }
}
