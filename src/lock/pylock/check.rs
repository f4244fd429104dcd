//! A `pylock.toml` (PEP 751) as a recipe's lock: read for realise (`lock = "pylock.toml"` in the
//! recipe) and imported by `pystore lock --from-pylock`.
//!
//! A file pystore wrote records the inputs hash it was resolved from, so it is checked like
//! `pystore.lock`. A file another tool wrote has no such hash: its pins are checked against the
//! recipe's requirements instead ([`check_pins`]: every requirement that applies to a target is
//! pinned, at a version it allows), and only then vouched for with the recipe's inputs hash.

use std::path::{Path, PathBuf};

use pep508_rs::VersionOrUrl;

use super::PylockError;
use crate::lock::Lock;
use crate::python::markers::marker_environment;
use crate::python::requirements::RequirementsFile;
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
    #[error("{}: {message}", path.display())]
    Unsatisfied { path: PathBuf, message: String },
    /// A target the python layer refuses.
    #[error("target {target}: {message}")]
    Target { target: String, message: String },
    /// A minor `python` (`3.13`), whose release only a `pystore.lock` can pin.
    #[error("{recipe}: python = {python:?} with a pylock.toml: a pylock.toml cannot pin the interpreter archive a minor version resolves to; give `python` as an exact version (like \"{python}.1\"), or use `lock = \"pystore.lock\"`")]
    MinorPython { recipe: String, python: String },
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
        let target_error = |message: String| PylockLockError::Target {
            target: recipe_target.name.clone(),
            message,
        };
        let target = recipe_target
            .target(python)
            .map_err(|e| target_error(e.to_string()))?;
        let env = marker_environment(&target).map_err(|e| target_error(e.to_string()))?;
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
            let unsatisfied = |problem: String| {
                PylockLockError::Unsatisfied {
                path: path.to_path_buf(),
                message: format!(
                    "target {}: {requirement} ({}) is {problem}; the file is not a lock of {}'s requirements: lock them again (`pystore lock {}`) or fix the file",
                    recipe_target.name, line.origin, recipe, recipe
                ),
            }
            };
            let name = normalize_name(requirement.name.as_ref());
            let Some(pin) = pins.get(name.as_str()) else {
                if required {
                    return Err(unsatisfied("not pinned".to_owned()));
                }
                continue;
            };
            if let Some(VersionOrUrl::VersionSpecifier(specifiers)) = &requirement.version_or_url {
                if !specifiers.contains(&pin.version) {
                    return Err(unsatisfied(format!("pinned at {}", pin.version)));
                }
            }
        }
    }
    Ok(())
}
