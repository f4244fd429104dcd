//! Reading `pylock.toml`: a file pystore wrote gives back its [`Lock`] exactly; a file another
//! tool wrote gives, per target, the packages that apply with the best wheel of each.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::str::FromStr;

use pep440_rs::{Version, VersionSpecifiers};

use super::{
    FileProblem, NotAWheel, PackageProblem, PylockError, PylockFile, PylockPackage, PylockWheel,
    TargetProblem, ToolLock, ToolPackage, TOOL,
};
use crate::hash::Sha256Digest;
use crate::lock::{Lock, LockedPackage, LockedTarget, TomlError, LOCK_VERSION};
use crate::python::filename::{TagPriorities, WheelFilename};
use crate::python::markers::evaluate_marker;
use crate::python::target::{Target, TargetSpec};
use crate::python::{normalize_name, PackageName};

#[derive(Clone, Debug)]
pub struct ReadPylock {
    /// The lock, for the targets asked for.
    pub lock: Lock,
    /// Whether pystore wrote the file (its `[tool.pystore]` table was used), so the lock's
    /// inputs hash is the one recorded there; otherwise `inputs` is empty and the caller must
    /// check the pins against the requirements itself.
    pub written_by_pystore: bool,
}

/// Reads a `pylock.toml` for `targets` and CPython `python`.
pub fn read_pylock(
    path: &Path,
    python: &str,
    targets: &[TargetSpec],
) -> Result<ReadPylock, PylockError> {
    let text = crate::hash::files::read_text_input(path, "pylock file")?;
    parse_pylock(path, &text, python, targets)
}

/// Parses `pylock.toml` text (`path` names it in errors) for `targets` and CPython `python`.
pub fn parse_pylock(
    path: &Path,
    text: &str,
    python: &str,
    targets: &[TargetSpec],
) -> Result<ReadPylock, PylockError> {
    let parse_error = |problem: FileProblem| PylockError::Parse {
        path: path.to_path_buf(),
        problem,
    };
    let file: PylockFile =
        toml::from_str(text).map_err(|e| parse_error(FileProblem::Toml(TomlError(e))))?;
    if file.lock_version.split('.').next() != Some("1") {
        return Err(parse_error(FileProblem::LockVersion(
            file.lock_version.clone(),
        )));
    }
    let tool = match file.tool.get(TOOL) {
        Some(value) => Some(
            value
                .clone()
                .try_into::<ToolLock>()
                .map_err(|e| parse_error(FileProblem::ToolTable(TomlError(e))))?,
        ),
        None => None,
    };
    if let Some(tool) = tool {
        let lock = read_own(path, &file, tool, python, targets)?;
        return Ok(ReadPylock {
            lock,
            written_by_pystore: true,
        });
    }
    let mut locked = Vec::new();
    for target in targets {
        locked.push(select_for_target(path, &file, python, target)?);
    }
    Ok(ReadPylock {
        lock: Lock {
            version: LOCK_VERSION,
            python: python.to_owned(),
            inputs: String::new(),
            targets: locked,
        },
        written_by_pystore: false,
    })
}

/// A file pystore wrote: the pins exactly as `[packages.tool.pystore]` records them.
fn read_own(
    path: &Path,
    file: &PylockFile,
    tool: ToolLock,
    python: &str,
    wanted: &[TargetSpec],
) -> Result<Lock, PylockError> {
    let mut targets: BTreeMap<String, LockedTarget> = tool
        .targets
        .iter()
        .map(|t| {
            let locked = LockedTarget {
                spec: t.clone(),
                interpreter: None,
                packages: Vec::new(),
            };
            (t.name.clone(), locked)
        })
        .collect();
    for package in &file.packages {
        add_own_pins(path, package, &mut targets)?;
    }
    // The lock's inputs hash vouches for all its targets: keep them all, but every target
    // asked for must be there, as locked for the same platform.
    for want in wanted {
        let matches = targets
            .get(&want.name)
            .is_some_and(|t| t.spec.platform == want.platform && t.spec.glibc == want.glibc);
        if !matches {
            return Err(PylockError::Target {
                path: path.to_path_buf(),
                target: want.name.clone(),
                problem: TargetProblem::NotLocked,
            });
        }
    }
    if tool.python != python {
        return Err(PylockError::Parse {
            path: path.to_path_buf(),
            problem: FileProblem::OtherPython {
                locked: tool.python.clone(),
                asked: python.to_owned(),
            },
        });
    }
    Ok(Lock {
        version: tool.lock_version,
        python: tool.python,
        inputs: tool.inputs,
        targets: targets.into_values().collect(),
    })
}

/// Adds `package`, as its `[packages.tool.pystore]` table pins it, to each target it is
/// pinned for.
fn add_own_pins(
    path: &Path,
    package: &PylockPackage,
    targets: &mut BTreeMap<String, LockedTarget>,
) -> Result<(), PylockError> {
    let package_error = |problem: PackageProblem| PylockError::Package {
        path: path.to_path_buf(),
        package: package.name.clone(),
        problem: Box::new(problem),
    };
    let Some(value) = package.tool.get(TOOL) else {
        return Err(package_error(PackageProblem::NoToolTable));
    };
    let pins: ToolPackage = value
        .clone()
        .try_into()
        .map_err(|e| package_error(PackageProblem::ToolTable(TomlError(e))))?;
    let name: PackageName = package
        .name
        .parse()
        .map_err(|e| package_error(PackageProblem::Name(e)))?;
    let version = package
        .version
        .as_deref()
        .ok_or_else(|| package_error(PackageProblem::NoVersion))?;
    let version = Version::from_str(version).map_err(|source| {
        package_error(PackageProblem::Version {
            version: version.to_owned(),
            source,
        })
    })?;
    for pin in pins.targets {
        let wheel = package
            .wheels
            .iter()
            .find(|w| w.file_name().as_deref() == Some(pin.wheel.as_str()))
            .ok_or_else(|| {
                package_error(PackageProblem::WheelNotListed {
                    target: pin.target.clone(),
                    wheel: pin.wheel.clone(),
                })
            })?;
        let (size, sha256) = wheel_facts(wheel, &pin.wheel).map_err(package_error)?;
        let target = targets.get_mut(&pin.target).ok_or_else(|| {
            package_error(PackageProblem::TargetNotListed {
                target: pin.target.clone(),
            })
        })?;
        let wheel = WheelFilename::parse(&pin.wheel)
            .map_err(|e| package_error(PackageProblem::WheelName(e)))?;
        target.packages.push(LockedPackage {
            name: name.clone(),
            version: version.clone(),
            wheel,
            size,
            sha256,
            required_by: pin.required_by,
        });
    }
    Ok(())
}

/// The size and sha256 a pin needs, from a wheel entry.
fn wheel_facts(
    wheel: &PylockWheel,
    file_name: &str,
) -> Result<(u64, Sha256Digest), PackageProblem> {
    let sha256 = wheel
        .hashes
        .get("sha256")
        .ok_or_else(|| PackageProblem::NoSha256 {
            wheel: file_name.to_owned(),
        })?;
    let sha256: Sha256Digest = sha256.parse().map_err(|source| PackageProblem::Sha256 {
        wheel: file_name.to_owned(),
        source,
    })?;
    let size = wheel.size.ok_or_else(|| PackageProblem::NoSize {
        wheel: file_name.to_owned(),
    })?;
    Ok((size, sha256))
}

/// A file another tool wrote: the packages that apply to `target`, each with its best wheel.
fn select_for_target(
    path: &Path,
    file: &PylockFile,
    python: &str,
    want: &TargetSpec,
) -> Result<LockedTarget, PylockError> {
    let selector = Selector::new(path, python, want)?;
    if !selector.python_fits(&file.requires_python, "(the file)")? {
        return Err(selector.target_error(TargetProblem::RequiresPython {
            requires: file
                .requires_python
                .as_deref()
                .unwrap_or_default()
                .to_owned(),
            python: python.to_owned(),
        }));
    }
    let mut chosen: BTreeMap<String, LockedPackage> = BTreeMap::new();
    let mut dependencies: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for package in &file.packages {
        let Some(locked) = selector.select(package)? else {
            continue;
        };
        let name = locked.name.to_string();
        if chosen.contains_key(&name) {
            return Err(selector.package_error(&name, PackageProblem::MoreThanOneEntry));
        }
        for dependency in &package.dependencies {
            if let Some(dep) = dependency.get("name").and_then(toml::Value::as_str) {
                dependencies
                    .entry(normalize_name(dep))
                    .or_default()
                    .push(name.clone());
            }
        }
        chosen.insert(name, locked);
    }
    set_required_by(&mut chosen, dependencies);
    Ok(LockedTarget {
        spec: want.clone(),
        interpreter: None,
        packages: chosen.into_values().collect(),
    })
}

/// What choosing a foreign file's packages for one target needs.
struct Selector<'a> {
    path: &'a Path,
    want: &'a TargetSpec,
    target: Target,
    /// The CPython version, as `requires-python` compares it.
    version: Version,
    priorities: TagPriorities,
}

impl<'a> Selector<'a> {
    fn new(
        path: &'a Path,
        python: &str,
        want: &'a TargetSpec,
    ) -> Result<Selector<'a>, PylockError> {
        let target_error = |problem: TargetProblem| PylockError::Target {
            path: path.to_path_buf(),
            target: want.name.clone(),
            problem,
        };
        let target = want
            .target(python)
            .map_err(|e| target_error(TargetProblem::Target(e)))?;
        let version =
            Version::from_str(python).map_err(|e| target_error(TargetProblem::PythonVersion(e)))?;
        let priorities = TagPriorities::new(&target);
        Ok(Selector {
            path,
            want,
            target,
            version,
            priorities,
        })
    }

    fn target_error(&self, problem: TargetProblem) -> PylockError {
        PylockError::Target {
            path: self.path.to_path_buf(),
            target: self.want.name.clone(),
            problem,
        }
    }

    fn package_error(&self, package: &str, problem: PackageProblem) -> PylockError {
        PylockError::PackageForTarget {
            path: self.path.to_path_buf(),
            package: package.to_owned(),
            target: self.want.name.clone(),
            problem: Box::new(problem),
        }
    }

    /// Whether the target's CPython satisfies `specifiers` (`what` has them, for errors).
    fn python_fits(&self, specifiers: &Option<String>, what: &str) -> Result<bool, PylockError> {
        match specifiers {
            None => Ok(true),
            Some(text) => VersionSpecifiers::from_str(text)
                .map(|s| s.contains(&self.version))
                .map_err(|source| {
                    let problem = PackageProblem::RequiresPython {
                        text: text.clone(),
                        source,
                    };
                    self.package_error(what, problem)
                }),
        }
    }

    /// `package` pinned to its best wheel for the target (no `required_by` yet), or `None`
    /// when its marker or `requires-python` leaves it out.
    fn select(&self, package: &PylockPackage) -> Result<Option<LockedPackage>, PylockError> {
        let parsed: PackageName = package
            .name
            .parse()
            .map_err(|e| self.package_error(&package.name, PackageProblem::Name(e)))?;
        let name = parsed.to_string();
        let applies = evaluate_marker(package.marker.as_deref().unwrap_or(""), &self.target, &[])
            .map_err(|e| self.package_error(&name, PackageProblem::Marker(e)))?;
        if !applies || !self.python_fits(&package.requires_python, &name)? {
            return Ok(None);
        }
        if package.wheels.is_empty() {
            let kind = no_wheel_kind(package);
            return Err(self.package_error(&name, PackageProblem::NoWheels(kind)));
        }
        let (file_name, wheel) = self.best_wheel(package, &name)?;
        let (size, sha256) = wheel_facts(wheel, file_name.as_str())
            .map_err(|problem| self.package_error(&name, problem))?;
        let version = match &package.version {
            Some(version) => Version::from_str(version).map_err(|source| {
                let problem = PackageProblem::Version {
                    version: version.clone(),
                    source,
                };
                self.package_error(&name, problem)
            })?,
            None => file_name.version.clone(),
        };
        Ok(Some(LockedPackage {
            name: parsed,
            version,
            wheel: file_name,
            size,
            sha256,
            required_by: Vec::new(),
        }))
    }

    /// The wheel of `package` (normalised `name`) whose tags the target ranks best (the
    /// first file name among equals), with its file name.
    fn best_wheel<'p>(
        &self,
        package: &'p PylockPackage,
        name: &str,
    ) -> Result<(WheelFilename, &'p PylockWheel), PylockError> {
        let mut best: Option<(usize, WheelFilename, &PylockWheel)> = None;
        for wheel in &package.wheels {
            let Some(file_name) = wheel.file_name() else {
                return Err(self.package_error(name, PackageProblem::NamelessWheel));
            };
            let parsed = WheelFilename::parse(&file_name)
                .map_err(|e| self.package_error(name, PackageProblem::WheelName(e)))?;
            if let Some(rank) = self.priorities.rank(&parsed) {
                if best.as_ref().map_or(true, |(r, f, _)| {
                    (rank, file_name.as_str()) < (*r, f.as_str())
                }) {
                    best = Some((rank, parsed, wheel));
                }
            }
        }
        let Some((_, file_name, wheel)) = best else {
            let wheels = package
                .wheels
                .iter()
                .filter_map(PylockWheel::file_name)
                .collect();
            return Err(self.package_error(name, PackageProblem::NoWheelFits { wheels }));
        };
        Ok((file_name, wheel))
    }
}

/// What a package without wheels has instead, for the error refusing it.
fn no_wheel_kind(package: &PylockPackage) -> NotAWheel {
    if package.sdist.is_some() {
        NotAWheel::Sdist
    } else if package.vcs.is_some() {
        NotAWheel::Vcs
    } else if package.directory.is_some() {
        NotAWheel::Directory
    } else if package.archive.is_some() {
        NotAWheel::Archive
    } else {
        NotAWheel::Nothing
    }
}

/// What required each chosen package: the chosen packages that list it among their
/// `dependencies` (the dependents of each name, as found).
fn set_required_by(
    chosen: &mut BTreeMap<String, LockedPackage>,
    dependencies: BTreeMap<String, Vec<String>>,
) {
    let names: BTreeSet<String> = chosen.keys().cloned().collect();
    for (name, dependents) in dependencies {
        if let Some(package) = chosen.get_mut(&name) {
            let mut required_by: Vec<String> = dependents
                .into_iter()
                .filter(|d| names.contains(d))
                .collect();
            required_by.sort();
            required_by.dedup();
            package.required_by = required_by;
        }
    }
}
