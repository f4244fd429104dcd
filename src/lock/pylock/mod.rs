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

pub use check::{check_pins, PylockLockError};
pub use read::{parse_pylock, read_pylock, ReadPylock};
pub use write::{to_pylock, to_pylock_at};

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::python::TargetSpec;

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
    #[error("{}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    /// A package pystore cannot install from this file.
    #[error("{}: package {package}: {message}", path.display())]
    Package {
        path: PathBuf,
        package: String,
        message: String,
    },
    /// Nothing in the file fits a target, or too much does.
    #[error("{}: target {target}: {message}", path.display())]
    Target {
        path: PathBuf,
        target: String,
        message: String,
    },
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
