//! `pylock.toml` (PEP 751): the standard lock format, written from a [`Lock`] and read into one.
//!
//! Writing: one `[[packages]]` entry per project version, listing every wheel any target pins,
//! with a `marker` saying which targets' environments install it (omitted where all do), and
//! `[tool.pystore]` / `[packages.tool.pystore]` tables that record what a marker cannot: the
//! targets (platform, glibc floor), the inputs hash, and per target the exact wheel and what
//! required it. Reading a file pystore wrote therefore gives back the identical [`Lock`].
//!
//! Reading a file another tool wrote: for each target, the packages whose `marker` and
//! `requires-python` hold in the target's environment, each with its best wheel for the
//! target's tags. Source distributions, VCS, directory and archive entries are refused (pystore
//! installs wheels only), as are wheels without a sha256 or a size, since a pin is by both.
//!
//! The file's schema and names are here; `write.rs` writes it, `read.rs` reads it, and
//! `check.rs` checks the pins of a file another tool wrote against the requirements they claim
//! to lock.

mod check;
mod read;
#[cfg(test)]
mod tests;
mod write;

pub use check::{check_pins, CheckTargetProblem, PinProblem, PylockLockError};
pub use read::{parse_pylock, read_pylock, ReadPylock};
pub use write::{to_pylock, to_pylock_at, PylockWriteError};

use std::collections::BTreeMap;
use std::path::PathBuf;

use pep440_rs::{VersionParseError, VersionSpecifiersParseError};
use serde::{Deserialize, Serialize};

use crate::hash::Sha256Error;
use crate::lock::TomlError;
use crate::python::filename::WheelFilenameError;
use crate::python::markers::MarkerError;
use crate::python::target::TargetError;
use crate::python::{PackageNameError, TargetSpec};

/// The `lock-version` written; files of another major version are refused.
pub const PYLOCK_VERSION: &str = "1.0";

/// The name of the `[tool]` table pystore writes and reads.
const TOOL: &str = "pystore";

/// Whether `file_name` is a PEP 751 lock file name (`pylock.toml` or `pylock.NAME.toml`).
pub fn is_pylock_name(file_name: &str) -> bool {
    file_name == "pylock.toml"
        || file_name
            .strip_prefix("pylock.")
            .and_then(|rest| rest.strip_suffix(".toml"))
            .is_some_and(|name| !name.is_empty() && !name.contains('.'))
}

/// Why a `pylock.toml` cannot be written or used.
#[derive(Debug, thiserror::Error)]
pub enum PylockError {
    /// The file cannot be read (missing, not a regular file, too large).
    #[error(transparent)]
    Io(#[from] crate::hash::files::InputError),
    /// Not valid TOML, or not the shape PEP 751 gives.
    #[error("{}: {problem}", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        problem: FileProblem,
    },
    /// A package pystore cannot install from this file.
    #[error("{}: package {package}: {problem}", path.display())]
    Package {
        path: PathBuf,
        package: String,
        /// Boxed: the error stays small.
        #[source]
        problem: Box<PackageProblem>,
    },
    /// A package of a file another tool wrote that cannot be pinned for one target.
    #[error("{}: package {package}: {problem} (target {target})", path.display())]
    PackageForTarget {
        path: PathBuf,
        package: String,
        target: String,
        /// Boxed: the error stays small.
        #[source]
        problem: Box<PackageProblem>,
    },
    /// Nothing in the file fits a target, or too much does.
    #[error("{}: target {target}: {problem}", path.display())]
    Target {
        path: PathBuf,
        target: String,
        #[source]
        problem: TargetProblem,
    },
}

/// What is wrong with a `pylock.toml` as a whole.
#[derive(Debug, thiserror::Error)]
pub enum FileProblem {
    /// Not TOML, or not PEP 751's shape.
    #[error("{0}")]
    Toml(#[source] TomlError),
    /// A major `lock-version` other than 1.
    #[error("lock-version {0:?} is not one pystore reads (1.x)")]
    LockVersion(String),
    /// `[tool.pystore]` is not the table pystore writes.
    #[error("[tool.{TOOL}]: {0}")]
    ToolTable(#[source] TomlError),
    /// Written by pystore for another CPython release.
    #[error("locked for CPython {locked}, not {asked}; run `pystore lock` again")]
    OtherPython { locked: String, asked: String },
}

/// Why a package of a `pylock.toml` cannot be pinned.
#[derive(Debug, thiserror::Error)]
pub enum PackageProblem {
    /// A file with `[tool.pystore]` whose package lacks its own table.
    #[error("has no [packages.tool.{TOOL}] table, though the file has [tool.{TOOL}]: it was edited by hand or by another tool; run `pystore lock` again")]
    NoToolTable,
    /// `[packages.tool.pystore]` is not the table pystore writes.
    #[error("[packages.tool.{TOOL}]: {0}")]
    ToolTable(#[source] TomlError),
    /// Not a project name.
    #[error("{0}")]
    Name(#[source] PackageNameError),
    /// A pystore-written package without a version.
    #[error("has no version")]
    NoVersion,
    /// A version that does not parse.
    #[error("version {version:?}: {source}")]
    Version {
        version: String,
        source: VersionParseError,
    },
    /// `[packages.tool.pystore]` pins a wheel the package's `wheels` do not list.
    #[error("target {target} pins {wheel}, which the package's wheels do not list")]
    WheelNotListed { target: String, wheel: String },
    /// `[packages.tool.pystore]` pins for a target `[tool.pystore]` does not list.
    #[error("pinned for target {target}, which [tool.{TOOL}] does not list")]
    TargetNotListed { target: String },
    /// Not a wheel file name.
    #[error("{0}")]
    WheelName(#[source] WheelFilenameError),
    /// A wheel without a sha256.
    #[error("{wheel} has no sha256 in its hashes (pystore pins every wheel by sha256)")]
    NoSha256 { wheel: String },
    /// A wheel whose sha256 is not one.
    #[error("{wheel}: its sha256 {source}")]
    Sha256 { wheel: String, source: Sha256Error },
    /// A wheel without a size.
    #[error("{wheel} has no size (pystore pins every wheel by size and sha256)")]
    NoSize { wheel: String },
    /// A `requires-python` that does not parse.
    #[error("requires-python {text:?}: {source}")]
    RequiresPython {
        text: String,
        source: VersionSpecifiersParseError,
    },
    /// A `marker` that does not parse.
    #[error("{0}")]
    Marker(#[source] MarkerError),
    /// Two entries of one project apply to one target.
    #[error("more than one entry applies to the target's environment")]
    MoreThanOneEntry,
    /// An entry without wheels.
    #[error("has {0}; pystore installs wheels only (building from source is not supported yet)")]
    NoWheels(NotAWheel),
    /// A wheel entry that does not say which file it is.
    #[error("a wheel has no name, url or path")]
    NamelessWheel,
    /// No wheel's tags fit the target.
    #[error("none of its wheels ({}) fits the target's tags", .wheels.join(", "))]
    NoWheelFits { wheels: Vec<String> },
}

/// What a package entry without wheels has instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotAWheel {
    /// An `sdist`.
    Sdist,
    /// A `vcs` checkout.
    Vcs,
    /// A local `directory`.
    Directory,
    /// An `archive`.
    Archive,
    /// Nothing at all.
    Nothing,
}

impl std::fmt::Display for NotAWheel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NotAWheel::Sdist => "only a source distribution",
            NotAWheel::Vcs => "a VCS checkout",
            NotAWheel::Directory => "a local directory",
            NotAWheel::Archive => "an archive",
            NotAWheel::Nothing => "no files",
        })
    }
}

/// Why a `pylock.toml` gives no pins for a target.
#[derive(Debug, thiserror::Error)]
pub enum TargetProblem {
    /// A file pystore wrote, without this target (or with it for another platform).
    #[error("is not locked in this file (or for another platform); run `pystore lock` to lock it")]
    NotLocked,
    /// The python layer refuses the target for this CPython version.
    #[error("{0}")]
    Target(#[source] TargetError),
    /// The CPython version is not a PEP 440 version.
    #[error("{0}")]
    PythonVersion(#[source] VersionParseError),
    /// The file's `requires-python` excludes the target's CPython.
    #[error("the file's requires-python {requires:?} excludes CPython {python}")]
    RequiresPython { requires: String, python: String },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct PylockFile {
    lock_version: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    environments: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    requires_python: Option<String>,
    #[serde(default)]
    extras: Vec<String>,
    #[serde(default)]
    dependency_groups: Vec<String>,
    #[serde(default)]
    default_groups: Vec<String>,
    created_by: String,
    #[serde(default)]
    packages: Vec<PylockPackage>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    tool: BTreeMap<String, toml::Value>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct PylockPackage {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    marker: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    requires_python: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    dependencies: Vec<toml::Table>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    index: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    vcs: Option<toml::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    directory: Option<toml::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    archive: Option<toml::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sdist: Option<toml::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    wheels: Vec<PylockWheel>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    tool: BTreeMap<String, toml::Value>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct PylockWheel {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(default)]
    hashes: BTreeMap<String, String>,
}

impl PylockWheel {
    /// The wheel's file name: given, or the last segment of its URL or path.
    fn file_name(&self) -> Option<String> {
        if let Some(name) = &self.name {
            return Some(name.clone());
        }
        let location = self.url.as_deref().or(self.path.as_deref())?;
        let last = location.rsplit(['/', '\\']).next()?;
        let last = last.split(['?', '#']).next().unwrap_or(last);
        (!last.is_empty()).then(|| crate::fetch::credentials::percent_decode(last))
    }
}

/// `[tool.pystore]`: what makes the file read back into the same [`Lock`].
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct ToolLock {
    lock_version: u32,
    python: String,
    inputs: String,
    targets: Vec<TargetSpec>,
}

/// `[packages.tool.pystore]`: which targets pin this version, with which wheel.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct ToolPackage {
    targets: Vec<ToolPin>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct ToolPin {
    target: String,
    wheel: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    required_by: Vec<String>,
}

/// Where a wheel can be downloaded, for the `url`/`path` PEP 751 asks of every wheel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WheelLocation {
    /// A URL (without credentials).
    Url(String),
    /// A local path.
    Path(String),
}
