//! Resolving loose requirements to one wheel per package for one target, with pubgrub.
//!
//! Everything is decided for the *target* — its marker environment, its wheel tags, its Python
//! version — never for the machine running pystore. Packages are pubgrub packages; an extra
//! (`name[extra]`) is a package of its own that depends on its base at the same version, so
//! "A needs B[fast]" pulls B's `fast` dependencies only when someone asks for them.
//!
//! A version is a candidate only if the index offers a wheel for it that the target can
//! install (the best-ranked such wheel is chosen), it is not yanked (unless pinned exactly),
//! its `Requires-Python` admits the target's Python, and it is not a pre-release (unless `--pre`
//! or a specifier names one). Newest versions are preferred; a version from an existing lock is
//! preferred while it still fits. The same index state gives the same resolution.

mod provider;
pub mod ranges;

use std::collections::{BTreeMap, BTreeSet};

use pep440_rs::Version;

use super::metadata::{CoreMetadata, MetadataError};
use super::requirements::{Origin, RequirementsFile};
use super::target::Target;
use crate::fetch::index::{IndexFile, ProjectPage};

pub use provider::Pkg;

/// A failure of a [`PackageSource`] (a fetch or a malformed file).
pub type SourceError = Box<dyn std::error::Error + Send + Sync>;

/// Where the resolver gets projects' files and metadata (an index, in practice).
pub trait PackageSource {
    /// The files of project `name` (normalised); an empty page when no index has it.
    fn project(&self, name: &str) -> Result<ProjectPage, SourceError>;
    /// The core metadata of `file` (a wheel the index lists).
    fn metadata(&self, file: &IndexFile) -> Result<CoreMetadata, SourceError>;
}

/// What to resolve.
#[derive(Clone, Debug)]
pub struct ResolveInput<'a> {
    /// The target everything is resolved for.
    pub target: &'a Target,
    /// Requirements, constraints and `--pre`.
    pub requirements: &'a RequirementsFile,
    /// Versions to keep when they still fit (from an existing lock), by normalised name.
    pub preferences: BTreeMap<String, Version>,
}

/// One chosen package.
#[derive(Clone, Debug)]
pub struct ResolvedPackage {
    /// Normalised name.
    pub name: String,
    /// Chosen version.
    pub version: Version,
    /// The chosen wheel, as the index lists it.
    pub file: IndexFile,
    /// Requirement lines that ask for it directly.
    pub requested_at: Vec<Origin>,
    /// Packages (`name` or `name[extra]`) that depend on it.
    pub required_by: BTreeSet<String>,
}

/// Why requirements cannot be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The index or a download failed.
    #[error("{package}: {error}")]
    Source { package: String, error: SourceError },
    /// A wheel's metadata is unusable.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// A wheel whose metadata names another project or version than the index said.
    #[error("{wheel}: its metadata says {found}, not {expected}; the index or the file is wrong")]
    MetadataMismatch {
        wheel: String,
        expected: String,
        found: String,
    },
    /// The target's marker environment (a bug in the target tables).
    #[error(transparent)]
    Marker(#[from] super::markers::MarkerError),
    /// No set of versions satisfies everything.
    #[error("cannot resolve the requirements for {target}:\n{explanation}")]
    NoSolution { target: String, explanation: String },
}

/// Resolves `input` against `source`; packages sorted by name.
pub fn resolve(
    source: &dyn PackageSource,
    input: &ResolveInput<'_>,
) -> Result<Vec<ResolvedPackage>, ResolveError> {
    provider::Provider::new(source, input)?.solve()
}
