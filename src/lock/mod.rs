//! The lock: every wheel of every target pinned by file name, size and sha256, and per target
//! its interpreter archive, held in the one [`Lock`] type; and the formats a lock is written as
//! and read from, one file each:
//! - [`pystore`]: `pystore.lock`, pystore's own TOML (the serde shape of [`Lock`]);
//! - [`pylock`]: `pylock.toml` (PEP 751), written from a [`Lock`] and read into one;
//! - [`hashed`]: hashed requirements files (pip's `--require-hashes` format), exported per
//!   target and read as a target's pins.
//!
//! Beside the formats, what `pystore lock` needs that is not about a recipe: [`source`], the
//! index and local wheelhouses as the resolver's package source (with the sizes and hashes it
//! learns), and [`import`], matching a hashed requirements file's lines to wheels. Resolution
//! itself is [`crate::python::resolve`]; choosing what to lock for a recipe (its targets, its
//! interpreter, where the lock file lies) is the recipe layer's `lock` module, which calls in
//! here. A new lock format is one more file here, reading into and writing from [`Lock`].
//!
//! Each target may also pin its interpreter archive (version, URL, size, sha256), chosen from
//! the catalogue at lock time, so realise never consults the catalogue. `inputs` is a hash of
//! what the lock was resolved from (the parsed requirements, the Python version and the
//! targets), so realise can refuse a lock that no longer matches the recipe.

pub mod hashed;
pub mod import;
pub mod pylock;
pub mod pystore;
pub mod source;

pub use pystore::{LockError, LockProblem, TomlError};

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::json;

use pep440_rs::Version;

use crate::hash::{canonical_json, to_hex, Sha256Digest};
use crate::python::requirements::{Origin, RequirementLine, RequirementsFile};
use crate::python::resolve::ResolvedPackage;
use crate::python::TargetSpec;
use crate::python::{PackageName, WheelFilename};

/// The format version written and read.
pub const LOCK_VERSION: u32 = 1;

/// blake3 derive-key context of the inputs hash.
const INPUTS_CONTEXT: &str = "pystore 2026-11 lock inputs v1";

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
    /// The target (name, platform, glibc floor), as in the recipe; flattened, so its keys
    /// are the table's first keys, as they always were.
    #[serde(flatten)]
    pub spec: TargetSpec,
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
    /// The archive's sha256 (hex in the file; a bad one fails when the lock is read).
    pub sha256: Sha256Digest,
}

/// One pinned wheel, parsed when the lock is read: a bad name, version, wheel file name or
/// sha256 is refused then, naming the package and the value, so nothing later handles an
/// unchecked pin.
///
/// Serialised field by field as the strings it was read from: `name` is normalised (locks
/// only ever held normalised names), `version` is written as [`Version`]'s `Display`, which
/// is the form every lock writer has used (`pystore lock` writes the resolver's parsed
/// version; the importers parse too), and `wheel` keeps the exact file name it was read as.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "LockedPackageWire", rename_all = "kebab-case")]
pub struct LockedPackage {
    /// Normalised project name.
    pub name: PackageName,
    /// Version.
    #[serde(serialize_with = "serialize_display")]
    pub version: Version,
    /// The wheel's file name.
    pub wheel: WheelFilename,
    /// The wheel's size in bytes.
    pub size: u64,
    /// The wheel's sha256.
    pub sha256: Sha256Digest,
    /// What pulled it in: requirement lines (`requirements.txt:3`) or package names, sorted.
    #[serde(default)]
    pub required_by: Vec<String>,
}

/// A [`LockedPackage`] as the file holds it, before its fields are parsed (so an error can name
/// the package).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct LockedPackageWire {
    name: String,
    version: String,
    wheel: String,
    size: u64,
    sha256: String,
    #[serde(default)]
    required_by: Vec<String>,
}

impl TryFrom<LockedPackageWire> for LockedPackage {
    type Error = String;

    fn try_from(wire: LockedPackageWire) -> Result<LockedPackage, String> {
        let name: PackageName = wire.name.parse().map_err(|e| format!("package {e}"))?;
        let version = Version::from_str(&wire.version)
            .map_err(|e| format!("{name}: version {:?}: {e}", wire.version))?;
        let wheel = WheelFilename::parse(&wire.wheel).map_err(|e| format!("{name}: {e}"))?;
        let sha256 = wire.sha256.parse().map_err(|e| format!("{name}: {e}"))?;
        Ok(LockedPackage {
            name,
            version,
            wheel,
            size: wire.size,
            sha256,
            required_by: wire.required_by,
        })
    }
}

/// Serialises a value as its `Display` text.
fn serialize_display<T: std::fmt::Display, S: serde::Serializer>(
    value: &T,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

/// Hash of what a lock is resolved from: the requirements and constraints as parsed (so
/// comments and formatting do not matter), `--pre`, the Python version and the targets.
pub fn inputs_hash(
    requirements: &RequirementsFile,
    python: &str,
    targets: &[&TargetSpec],
) -> String {
    let lines = |list: &[RequirementLine]| -> Vec<String> {
        let mut out: Vec<String> = list.iter().map(|r| r.requirement.to_string()).collect();
        out.sort();
        out
    };
    let mut targets: Vec<_> = targets
        .iter()
        .map(|t| json!({"name": t.name, "platform": t.platform.triple(), "glibc": t.glibc}))
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
    /// The pins of target `name`.
    pub fn target(&self, name: &str) -> Option<&LockedTarget> {
        self.targets.iter().find(|t| t.spec.name == name)
    }

    /// Packages by name for a target (for diffs and checks).
    pub fn packages_of(&self, name: &str) -> BTreeMap<&str, &LockedPackage> {
        self.target(name)
            .map(|t| t.packages.iter().map(|p| (p.name.as_str(), p)).collect())
            .unwrap_or_default()
    }
}

impl LockedPackage {
    /// The pin of a resolved package: its wheel with `size` and `sha256`, and what required it
    /// (requirement lines named relative to `recipe_dir`, then package names).
    pub fn from_resolved(
        package: ResolvedPackage,
        size: u64,
        sha256: Sha256Digest,
        recipe_dir: &Path,
    ) -> LockedPackage {
        let mut required_by: Vec<String> = package
            .requested_at
            .iter()
            .map(|origin| relative_origin(origin, recipe_dir))
            .collect();
        required_by.extend(package.required_by);
        LockedPackage {
            name: package.name,
            version: package.version,
            wheel: package.wheel,
            size,
            sha256,
            required_by,
        }
    }
}

/// `requirements.txt:3`, relative to the recipe (a lock holds no absolute paths).
fn relative_origin(origin: &Origin, recipe_dir: &Path) -> String {
    let file = origin
        .file
        .strip_prefix(recipe_dir)
        .ok()
        .or_else(|| origin.file.file_name().map(Path::new))
        .unwrap_or(&origin.file);
    let file = file.to_string_lossy().replace('\\', "/");
    format!("{file}:{}", origin.line)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A lock of two targets, one with an interpreter pin and a package.
    pub(crate) fn sample() -> Lock {
        Lock {
            version: LOCK_VERSION,
            python: "3.12.7".into(),
            inputs: "blake3:00".into(),
            targets: vec![
                LockedTarget {
                    spec: TargetSpec::new("windows-x86_64", "x86_64-pc-windows-msvc", None)
                        .unwrap(),
                    interpreter: Some(LockedInterpreter {
                        version: "3.12.7".into(),
                        url: "https://HOST/cpython-3.12.7.tar.gz".into(),
                        size: Some(1234),
                        sha256: "cd".repeat(32).parse().unwrap(),
                    }),
                    packages: vec![LockedPackage {
                        name: "lxml".parse().unwrap(),
                        version: "6.1.3".parse().unwrap(),
                        wheel: "lxml-6.1.3-cp312-cp312-win_amd64.whl".parse().unwrap(),
                        size: 3_900_000,
                        sha256: "ab".repeat(32).parse().unwrap(),
                        required_by: vec!["requirements.txt:2".into()],
                    }],
                },
                LockedTarget {
                    spec: TargetSpec::new("linux-x86_64", "x86_64-unknown-linux-gnu", Some("2.28"))
                        .unwrap(),
                    interpreter: None,
                    packages: vec![],
                },
            ],
        }
    }

    /// The hash the inputs had before targets became `TargetSpec`s (held from that code): a
    /// change here makes every lock stale.
    #[test]
    fn inputs_hash_is_held() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("requirements.txt");
        std::fs::write(&path, "lxml>=5\nopenai\n").unwrap();
        let linux = TargetSpec::new("linux", "x86_64-unknown-linux-gnu", Some("2.28")).unwrap();
        let win = TargetSpec::new("win", "x86_64-pc-windows-msvc", None).unwrap();
        let requirements = crate::python::requirements::read(&path).unwrap();
        assert_eq!(
            inputs_hash(&requirements, "3.12.7", &[&win, &linux]),
            "blake3:53ae400ed32928564d270110ee477cade6ef17fded622205ab6ef31304ac5521"
        );
    }

    #[test]
    fn inputs_hash_ignores_formatting_but_not_content() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.txt");
        let b = dir.path().join("b.txt");
        std::fs::write(&a, "lxml>=5\nopenai # the API\n").unwrap();
        std::fs::write(&b, "# reordered, reformatted\nopenai\nlxml >= 5\n").unwrap();
        let target = TargetSpec::new("t", "x86_64-unknown-linux-gnu", None).unwrap();
        let targets = [&target];
        let ha = inputs_hash(
            &crate::python::requirements::read(&a).unwrap(),
            "3.12.7",
            &targets,
        );
        let hb = inputs_hash(
            &crate::python::requirements::read(&b).unwrap(),
            "3.12.7",
            &targets,
        );
        assert_eq!(ha, hb);
        std::fs::write(&b, "openai\nlxml >= 6\n").unwrap();
        let hc = inputs_hash(
            &crate::python::requirements::read(&b).unwrap(),
            "3.12.7",
            &targets,
        );
        assert_ne!(ha, hc);
        let hd = inputs_hash(
            &crate::python::requirements::read(&a).unwrap(),
            "3.13.0",
            &targets,
        );
        assert_ne!(ha, hd);
    }
}
