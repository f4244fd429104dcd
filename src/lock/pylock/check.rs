//! A `pylock.toml` (PEP 751) as a recipe's lock: read for realise (`lock = "pylock.toml"` in the
//! recipe) and imported by `pystore lock --from-pylock`.
//!
//! A file pystore wrote records the inputs hash it was resolved from, so it is checked like
//! `pystore.lock`. A file another tool wrote has no such hash: its pins are checked against the
//! recipe's requirements instead ([`check_pins`]: every requirement that applies to a target is
//! pinned, at a version it allows), and only then vouched for with the recipe's inputs hash.

use std::path::{Path, PathBuf};

use pep440_rs::Version;
use pep508_rs::VersionOrUrl;

use super::PylockError;
use crate::lock::Lock;
use crate::python::markers::{marker_environment, MarkerError};
use crate::python::requirements::{Origin, RequirementsFile};
use crate::python::target::TargetError;
use crate::python::{normalize_name, TargetSpec};

/// Why a `pylock.toml` cannot serve as a recipe's lock.
#[derive(Debug, thiserror::Error)]
pub enum PylockLockError {
    /// The file itself.
    #[error(transparent)]
    Pylock(#[from] PylockError),
    /// Written by pystore for other inputs.
    #[error("{} was locked from other requirements, Python version or targets than {recipe}'s (they changed since it was written); run `pystore lock {recipe}`", path.display())]
    Stale { recipe: String, path: PathBuf },
    /// A requirement the file does not pin (or pins at a version it excludes).
    #[error("{}: target {target}: {requirement} ({origin}) is {problem}; the file is not a lock of {recipe}'s requirements: lock them again (`pystore lock {recipe}`) or fix the file", path.display())]
    Unsatisfied {
        path: PathBuf,
        target: String,
        /// The requirement, as parsed.
        requirement: String,
        /// Where the recipe gives it (boxed: the error stays small).
        origin: Box<Origin>,
        recipe: String,
        #[source]
        problem: PinProblem,
    },
    /// A target the python layer refuses.
    #[error("target {target}: {problem}")]
    Target {
        target: String,
        #[source]
        problem: CheckTargetProblem,
    },
    /// A minor `python` (`3.13`), whose release only a `pystore.lock` can pin.
    #[error("{recipe}: python = {python:?} with a pylock.toml: a pylock.toml cannot pin the interpreter archive a minor version resolves to; give `python` as an exact version (like \"{python}.1\"), or use `lock = \"pystore.lock\"`")]
    MinorPython { recipe: String, python: String },
}

/// How a pin fails a requirement.
#[derive(Debug, thiserror::Error)]
pub enum PinProblem {
    /// A requirement (not a constraint) the file does not pin.
    #[error("not pinned")]
    NotPinned,
    /// Pinned at a version the requirement excludes.
    #[error("pinned at {0}")]
    PinnedAt(Version),
}

/// Why a target's environment cannot be had to check the pins in.
#[derive(Debug, thiserror::Error)]
pub enum CheckTargetProblem {
    /// The target with this CPython version.
    #[error("{0}")]
    Target(#[source] TargetError),
    /// Its marker environment.
    #[error("{0}")]
    Marker(#[source] MarkerError),
}

/// Every requirement and constraint that applies to a target is met by the target's pins.
/// `recipe` (its name, for messages), `python` and `targets` are what the lock is for; `path`
/// names the file.
pub fn check_pins(
    recipe: &str,
    python: &str,
    targets: &[TargetSpec],
    requirements: &RequirementsFile,
    lock: &Lock,
    path: &Path,
) -> Result<(), PylockLockError> {
    for recipe_target in targets {
        let target_error = |problem: CheckTargetProblem| PylockLockError::Target {
            target: recipe_target.name.clone(),
            problem,
        };
        let target = recipe_target
            .target(python)
            .map_err(|e| target_error(CheckTargetProblem::Target(e)))?;
        let env =
            marker_environment(&target).map_err(|e| target_error(CheckTargetProblem::Marker(e)))?;
        let pins = lock.packages_of(&recipe_target.name);
        let lines = requirements
            .requirements
            .iter()
            .map(|line| (line, true))
            .chain(requirements.constraints.iter().map(|line| (line, false)));
        for (line, required) in lines {
            let requirement = &line.requirement;
            if !requirement.marker.evaluate(&env, &[]) {
                continue;
            }
            let unsatisfied = |problem: PinProblem| PylockLockError::Unsatisfied {
                path: path.to_path_buf(),
                target: recipe_target.name.clone(),
                requirement: requirement.to_string(),
                origin: Box::new(line.origin.clone()),
                recipe: recipe.to_owned(),
                problem,
            };
            let name = normalize_name(requirement.name.as_ref());
            let Some(pin) = pins.get(name.as_str()) else {
                if required {
                    return Err(unsatisfied(PinProblem::NotPinned));
                }
                continue;
            };
            if let Some(VersionOrUrl::VersionSpecifier(specifiers)) = &requirement.version_or_url {
                if !specifiers.contains(&pin.version) {
                    return Err(unsatisfied(PinProblem::PinnedAt(pin.version.clone())));
                }
            }
        }
    }
    Ok(())
}
