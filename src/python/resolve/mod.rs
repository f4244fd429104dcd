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

use super::filename::WheelFilename;
use super::metadata::CoreMetadata;
use super::requirements::{Origin, RequirementsFile};
use super::target::Target;
use crate::fetch::index::{IndexFile, ProjectPage};
use crate::fetch::name::PackageName;

pub use provider::Pkg;

/// A failure of a [`PackageSource`] (a fetch or a malformed file).
pub type SourceError = Box<dyn std::error::Error + Send + Sync>;

/// Where the resolver gets projects' files and metadata (an index, in practice).
pub trait PackageSource {
    /// The files of project `name` (normalised); an empty page when no index has it.
    fn project(&self, name: &str) -> Result<ProjectPage, SourceError>;
    /// The core metadata of `file` (a wheel the index lists).
    fn metadata(&self, file: &IndexFile) -> Result<CoreMetadata, SourceError>;
    /// A hint: these projects' pages will be asked for soon (a source may fetch them in
    /// parallel now). Errors are left for the later [`PackageSource::project`] call to report.
    fn prefetch_projects(&self, _names: &[String]) {}
    /// A hint: these files' metadata will likely be asked for soon.
    fn prefetch_metadata(&self, _files: &[IndexFile]) {}
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
    pub name: PackageName,
    /// Chosen version.
    pub version: Version,
    /// The chosen wheel's file name, parsed.
    pub wheel: WheelFilename,
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::str::FromStr;

    use reqwest::Url;

    use super::*;
    use crate::fetch::index::CoreMetadata as IndexMetadata;

    /// An in-memory index: file name → METADATA text.
    struct Memory(BTreeMap<&'static str, &'static str>);

    impl PackageSource for Memory {
        fn project(&self, name: &str) -> Result<ProjectPage, SourceError> {
            let files = self
                .0
                .keys()
                .filter(|f| crate::python::normalize_name(f.split('-').next().unwrap()) == name)
                .map(|f| IndexFile {
                    filename: (*f).to_owned(),
                    url: Url::parse(&format!("http://127.0.0.1:1/{f}")).unwrap(),
                    // A stand-in hash: the file name's, so tests can name it.
                    hashes: BTreeMap::from([("sha256".to_owned(), fake_sha256(f))]),
                    requires_python: None,
                    yanked: None,
                    core_metadata: IndexMetadata::Absent,
                    size: None,
                })
                .collect();
            Ok(ProjectPage {
                name: name.to_owned(),
                files,
            })
        }
        fn metadata(&self, file: &IndexFile) -> Result<CoreMetadata, SourceError> {
            Ok(CoreMetadata::parse(
                self.0[file.filename.as_str()].as_bytes(),
                &file.filename,
            )?)
        }
    }

    fn fake_sha256(filename: &str) -> String {
        use sha2::Digest;
        crate::hash::to_hex(&sha2::Sha256::digest(filename.as_bytes()))
    }

    fn index() -> Memory {
        Memory(BTreeMap::from([
            ("lib-1.0-py3-none-any.whl", "Name: lib\nVersion: 1.0\n"),
            ("lib-2.0-py3-none-any.whl", "Name: lib\nVersion: 2.0\n"),
            ("lib-3.0b1-py3-none-any.whl", "Name: lib\nVersion: 3.0b1\n"),
            ("src_only-1.0.tar.gz", ""),
        ]))
    }

    fn run(requirements: &str, preferences: &[(&str, &str)]) -> Result<Vec<String>, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("requirements.txt");
        std::fs::write(&path, requirements).unwrap();
        std::fs::write(dir.path().join("constraints.txt"), "lib<2\nunused>=1\n").unwrap();
        let requirements = crate::python::requirements::read(&path).unwrap();
        let target = Target::new("x86_64-unknown-linux-gnu", None, "3.12.7").unwrap();
        let input = ResolveInput {
            target: &target,
            requirements: &requirements,
            preferences: preferences
                .iter()
                .map(|(n, v)| ((*n).to_owned(), Version::from_str(v).unwrap()))
                .collect(),
        };
        resolve(&index(), &input)
            .map(|packages| {
                packages
                    .iter()
                    .map(|p| format!("{} {}", p.name, p.version))
                    .collect()
            })
            .map_err(|e| e.to_string())
    }

    #[test]
    fn prereleases_only_when_asked_for() {
        assert_eq!(run("lib\n", &[]).unwrap(), ["lib 2.0"]);
        assert_eq!(run("--pre\nlib\n", &[]).unwrap(), ["lib 3.0b1"]);
        assert_eq!(run("lib>=3.0a1\n", &[]).unwrap(), ["lib 3.0b1"]);
    }

    #[test]
    fn locked_versions_are_kept_while_they_fit() {
        assert_eq!(run("lib\n", &[("lib", "1.0")]).unwrap(), ["lib 1.0"]);
        assert_eq!(run("lib>1\n", &[("lib", "1.0")]).unwrap(), ["lib 2.0"]);
    }

    #[test]
    fn constraints_limit_versions_but_add_nothing() {
        assert_eq!(run("-c constraints.txt\nlib\n", &[]).unwrap(), ["lib 1.0"]);
        let err = run("-c constraints.txt\nlib>=2\n", &[]).unwrap_err();
        assert!(err.contains("lib"), "{err}");
    }

    #[test]
    fn hashes_in_requirements_limit_the_files() {
        let line = |hashes: &[&str]| {
            let mut line = "lib".to_owned();
            for file in hashes {
                line.push_str(&format!(" --hash=sha256:{}", fake_sha256(file)));
            }
            line + "\n"
        };
        let one = line(&["lib-1.0-py3-none-any.whl"]);
        assert_eq!(run(&one, &[]).unwrap(), ["lib 1.0"]);
        let both = line(&["lib-1.0-py3-none-any.whl", "lib-2.0-py3-none-any.whl"]);
        assert_eq!(run(&both, &[]).unwrap(), ["lib 2.0"]);
        let err = run(&line(&["other.whl"]), &[]).unwrap_err();
        assert!(
            err.contains("not among the requirement's --hash values"),
            "{err}"
        );
    }

    #[test]
    fn a_project_with_only_sdists_says_so() {
        let err = run("src-only\n", &[]).unwrap_err();
        assert!(
            err.contains("1.0: only a source distribution (pystore installs wheels only"),
            "{err}"
        );
        let err = run("lib>=4\n", &[]).unwrap_err();
        assert!(err.contains("lib >=4"), "{err}");
    }
}
