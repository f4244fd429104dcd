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

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use pep440_rs::{Version, VersionSpecifiers};
use serde::{Deserialize, Serialize};

use super::filename::{TagPriorities, WheelFilename};
use super::lockfile::{Lock, LockedPackage, LockedTarget, LOCK_VERSION};
use super::markers::{evaluate_marker, marker_values};
use super::normalize_name;
use super::target::Target;

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

/// A target to read a `pylock.toml` for (as a recipe names it).
#[derive(Clone, Debug)]
pub struct PylockTarget {
    /// Target name.
    pub name: String,
    /// Platform triple.
    pub platform: String,
    /// glibc floor.
    pub glibc: Option<String>,
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
    targets: Vec<ToolTarget>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct ToolTarget {
    name: String,
    platform: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    glibc: Option<String>,
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

/// The marker that holds in `target`'s environment and tells it from other platforms.
fn target_marker(target: &Target) -> String {
    let values = marker_values(target);
    let get = |key: &str| values.get(key).cloned().unwrap_or_default();
    format!(
        "sys_platform == '{}' and platform_machine == '{}'",
        get("sys_platform"),
        get("platform_machine")
    )
}

fn lock_target(target: &LockedTarget, python: &str) -> Result<Target, String> {
    Target::new(&target.platform, target.glibc.as_deref(), python).map_err(|e| e.to_string())
}

/// Writes `lock` as `pylock.toml` text. `locations` gives, by wheel file name, where each
/// wheel can be downloaded; a wheel missing from it is written without one (PEP 751 wants a
/// `url` or `path`, so other installers will need an index for it).
pub fn to_pylock(
    lock: &Lock,
    locations: &BTreeMap<String, WheelLocation>,
) -> Result<String, String> {
    let mut targets: Vec<&LockedTarget> = lock.targets.iter().collect();
    targets.sort_by(|a, b| a.name.cmp(&b.name));
    // The release the targets run: the pinned interpreter's (the lock's `python` may be a
    // minor version such as 3.12, which markers and requires-python must not read as 3.12.0).
    let python = targets
        .iter()
        .find_map(|t| t.interpreter.as_ref().map(|i| i.version.clone()))
        .unwrap_or_else(|| lock.python.clone());
    let mut markers = BTreeMap::new();
    for target in &targets {
        markers.insert(
            target.name.as_str(),
            target_marker(&lock_target(target, &python)?),
        );
    }
    let environments: BTreeSet<&String> = markers.values().collect();
    // One entry per project version: its pins by target, and every wheel they use.
    let mut versions: BTreeMap<(&str, &str), Vec<(&str, &LockedPackage)>> = BTreeMap::new();
    for target in &targets {
        for package in &target.packages {
            versions
                .entry((package.name.as_str(), package.version.as_str()))
                .or_default()
                .push((target.name.as_str(), package));
        }
    }
    let mut packages = Vec::new();
    for ((name, version), pins) in versions {
        let mut wheels: BTreeMap<&str, &LockedPackage> = BTreeMap::new();
        for (_, package) in &pins {
            wheels.insert(package.wheel.as_str(), package);
        }
        let pinned_markers: BTreeSet<&String> = pins.iter().map(|(t, _)| &markers[t]).collect();
        let marker = match pinned_markers.len() {
            n if n == environments.len() => None,
            1 => pinned_markers.first().map(|m| (*m).clone()),
            _ => Some(
                pinned_markers
                    .iter()
                    .map(|m| format!("({m})"))
                    .collect::<Vec<_>>()
                    .join(" or "),
            ),
        };
        let mut tool_pins: Vec<ToolPin> = pins
            .iter()
            .map(|(target, package)| {
                let mut required_by = package.required_by.clone();
                required_by.sort();
                required_by.dedup();
                ToolPin {
                    target: (*target).to_owned(),
                    wheel: package.wheel.clone(),
                    required_by,
                }
            })
            .collect();
        tool_pins.sort_by(|a, b| a.target.cmp(&b.target));
        let tool =
            toml::Value::try_from(ToolPackage { targets: tool_pins }).map_err(|e| e.to_string())?;
        packages.push(PylockPackage {
            name: name.to_owned(),
            version: Some(version.to_owned()),
            marker,
            requires_python: None,
            dependencies: Vec::new(),
            index: None,
            vcs: None,
            directory: None,
            archive: None,
            sdist: None,
            wheels: wheels
                .into_iter()
                .map(|(file, package)| {
                    let (url, path) = match locations.get(file) {
                        Some(WheelLocation::Url(url)) => (Some(url.clone()), None),
                        Some(WheelLocation::Path(path)) => (None, Some(path.clone())),
                        None => (None, None),
                    };
                    PylockWheel {
                        name: Some(file.to_owned()),
                        url,
                        path,
                        size: Some(package.size),
                        hashes: BTreeMap::from([("sha256".to_owned(), package.sha256.clone())]),
                    }
                })
                .collect(),
            tool: BTreeMap::from([(TOOL.to_owned(), tool)]),
        });
    }
    let tool = toml::Value::try_from(ToolLock {
        lock_version: lock.version,
        python: lock.python.clone(),
        inputs: lock.inputs.clone(),
        targets: targets
            .iter()
            .map(|t| ToolTarget {
                name: t.name.clone(),
                platform: t.platform.clone(),
                glibc: t.glibc.clone(),
            })
            .collect(),
    })
    .map_err(|e| e.to_string())?;
    let file = PylockFile {
        lock_version: PYLOCK_VERSION.to_owned(),
        environments: environments.into_iter().cloned().collect(),
        requires_python: Some(format!("=={python}")),
        extras: Vec::new(),
        dependency_groups: Vec::new(),
        default_groups: Vec::new(),
        created_by: TOOL.to_owned(),
        packages,
        tool: BTreeMap::from([(TOOL.to_owned(), tool)]),
    };
    let body = toml::to_string(&file).map_err(|e| e.to_string())?;
    Ok(format!(
        "# Written by `pystore lock --export-pylock` (PEP 751); generated, do not edit.\n{body}"
    ))
}

/// What reading a `pylock.toml` gave.
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
    targets: &[PylockTarget],
) -> Result<ReadPylock, PylockError> {
    let text = crate::hash::files::read_text_input(path, "pylock file")?;
    parse_pylock(path, &text, python, targets)
}

/// Parses `pylock.toml` text (`path` names it in errors) for `targets` and CPython `python`.
pub fn parse_pylock(
    path: &Path,
    text: &str,
    python: &str,
    targets: &[PylockTarget],
) -> Result<ReadPylock, PylockError> {
    let parse_error = |message: String| PylockError::Parse {
        path: path.to_path_buf(),
        message,
    };
    let file: PylockFile =
        toml::from_str(text).map_err(|e| parse_error(e.to_string().trim_end().to_owned()))?;
    if file.lock_version.split('.').next() != Some("1") {
        return Err(parse_error(format!(
            "lock-version {:?} is not one pystore reads (1.x)",
            file.lock_version
        )));
    }
    let tool = match file.tool.get(TOOL) {
        Some(value) => Some(
            value
                .clone()
                .try_into::<ToolLock>()
                .map_err(|e| parse_error(format!("[tool.{TOOL}]: {e}")))?,
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
    wanted: &[PylockTarget],
) -> Result<Lock, PylockError> {
    let package_error = |package: &str, message: String| PylockError::Package {
        path: path.to_path_buf(),
        package: package.to_owned(),
        message,
    };
    let mut targets: BTreeMap<String, LockedTarget> = tool
        .targets
        .iter()
        .map(|t| {
            let locked = LockedTarget {
                name: t.name.clone(),
                platform: t.platform.clone(),
                glibc: t.glibc.clone(),
                interpreter: None,
                packages: Vec::new(),
            };
            (t.name.clone(), locked)
        })
        .collect();
    for package in &file.packages {
        let Some(value) = package.tool.get(TOOL) else {
            return Err(package_error(
                &package.name,
                format!("has no [packages.tool.{TOOL}] table, though the file has [tool.{TOOL}]: it was edited by hand or by another tool; run `pystore lock` again"),
            ));
        };
        let pins: ToolPackage = value
            .clone()
            .try_into()
            .map_err(|e| package_error(&package.name, format!("[packages.tool.{TOOL}]: {e}")))?;
        let version = package
            .version
            .clone()
            .ok_or_else(|| package_error(&package.name, "has no version".to_owned()))?;
        for pin in pins.targets {
            let wheel = package
                .wheels
                .iter()
                .find(|w| w.file_name().as_deref() == Some(pin.wheel.as_str()))
                .ok_or_else(|| {
                    package_error(
                        &package.name,
                        format!(
                            "target {} pins {}, which the package's wheels do not list",
                            pin.target, pin.wheel
                        ),
                    )
                })?;
            let (size, sha256) = wheel_facts(wheel, &pin.wheel)
                .map_err(|message| package_error(&package.name, message))?;
            let target = targets.get_mut(&pin.target).ok_or_else(|| {
                package_error(
                    &package.name,
                    format!(
                        "pinned for target {}, which [tool.{TOOL}] does not list",
                        pin.target
                    ),
                )
            })?;
            target.packages.push(LockedPackage {
                name: normalize_name(&package.name),
                version: version.clone(),
                wheel: pin.wheel,
                size,
                sha256,
                required_by: pin.required_by,
            });
        }
    }
    // The lock's inputs hash vouches for all its targets: keep them all, but every target
    // asked for must be there, as locked for the same platform.
    for want in wanted {
        let matches = targets
            .get(&want.name)
            .is_some_and(|t| t.platform == want.platform && t.glibc == want.glibc);
        if !matches {
            return Err(PylockError::Target {
                path: path.to_path_buf(),
                target: want.name.clone(),
                message: "is not locked in this file (or for another platform); run `pystore lock` to lock it".to_owned(),
            });
        }
    }
    if tool.python != python {
        return Err(PylockError::Parse {
            path: path.to_path_buf(),
            message: format!(
                "locked for CPython {}, not {python}; run `pystore lock` again",
                tool.python
            ),
        });
    }
    Ok(Lock {
        version: tool.lock_version,
        python: tool.python,
        inputs: tool.inputs,
        targets: targets.into_values().collect(),
    })
}

/// The size and sha256 a pin needs, from a wheel entry.
fn wheel_facts(wheel: &PylockWheel, file_name: &str) -> Result<(u64, String), String> {
    let sha256 = wheel
        .hashes
        .get("sha256")
        .filter(|h| hex::decode(h.as_str()).map(|b| b.len()) == Ok(32))
        .ok_or_else(|| {
            format!("{file_name} has no sha256 in its hashes (pystore pins every wheel by sha256)")
        })?;
    let size = wheel.size.ok_or_else(|| {
        format!("{file_name} has no size (pystore pins every wheel by size and sha256)")
    })?;
    Ok((size, sha256.to_ascii_lowercase()))
}

/// A file another tool wrote: the packages that apply to `target`, each with its best wheel.
fn select_for_target(
    path: &Path,
    file: &PylockFile,
    python: &str,
    want: &PylockTarget,
) -> Result<LockedTarget, PylockError> {
    let target_error = |message: String| PylockError::Target {
        path: path.to_path_buf(),
        target: want.name.clone(),
        message,
    };
    let package_error = |package: &str, message: String| PylockError::Package {
        path: path.to_path_buf(),
        package: package.to_owned(),
        message: format!("{message} (target {})", want.name),
    };
    let target = Target::new(&want.platform, want.glibc.as_deref(), python)
        .map_err(|e| target_error(e.to_string()))?;
    let version = Version::from_str(python).map_err(|e| target_error(e.to_string()))?;
    let python_fits = |specifiers: &Option<String>, what: &str| -> Result<bool, PylockError> {
        match specifiers {
            None => Ok(true),
            Some(text) => VersionSpecifiers::from_str(text)
                .map(|s| s.contains(&version))
                .map_err(|e| package_error(what, format!("requires-python {text:?}: {e}"))),
        }
    };
    if !python_fits(&file.requires_python, "(the file)")? {
        return Err(target_error(format!(
            "the file's requires-python {:?} excludes CPython {python}",
            file.requires_python.as_deref().unwrap_or_default()
        )));
    }
    let priorities = TagPriorities::new(&target);
    let mut chosen: BTreeMap<String, LockedPackage> = BTreeMap::new();
    let mut dependencies: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for package in &file.packages {
        let name = normalize_name(&package.name);
        let applies = evaluate_marker(package.marker.as_deref().unwrap_or(""), &target, &[])
            .map_err(|e| package_error(&name, e.to_string()))?;
        if !applies || !python_fits(&package.requires_python, &name)? {
            continue;
        }
        if package.wheels.is_empty() {
            let kind = if package.sdist.is_some() {
                "only a source distribution"
            } else if package.vcs.is_some() {
                "a VCS checkout"
            } else if package.directory.is_some() {
                "a local directory"
            } else if package.archive.is_some() {
                "an archive"
            } else {
                "no files"
            };
            return Err(package_error(
                &name,
                format!("has {kind}; pystore installs wheels only (building from source is not supported yet)"),
            ));
        }
        let mut best: Option<(usize, String, &PylockWheel)> = None;
        for wheel in &package.wheels {
            let Some(file_name) = wheel.file_name() else {
                return Err(package_error(
                    &name,
                    "a wheel has no name, url or path".to_owned(),
                ));
            };
            let parsed = WheelFilename::parse(&file_name)
                .map_err(|e| package_error(&name, e.to_string()))?;
            if let Some(rank) = priorities.rank(&parsed) {
                if best
                    .as_ref()
                    .map_or(true, |(r, f, _)| (rank, &file_name) < (*r, f))
                {
                    best = Some((rank, file_name, wheel));
                }
            }
        }
        let Some((_, file_name, wheel)) = best else {
            return Err(package_error(
                &name,
                format!(
                    "none of its wheels ({}) fits the target's tags",
                    package
                        .wheels
                        .iter()
                        .filter_map(PylockWheel::file_name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        };
        let (size, sha256) =
            wheel_facts(wheel, &file_name).map_err(|message| package_error(&name, message))?;
        let version = match &package.version {
            Some(version) => version.clone(),
            None => WheelFilename::parse(&file_name)
                .map(|w| w.version.to_string())
                .map_err(|e| package_error(&name, e.to_string()))?,
        };
        if chosen.contains_key(&name) {
            return Err(package_error(
                &name,
                "more than one entry applies to the target's environment".to_owned(),
            ));
        }
        for dependency in &package.dependencies {
            if let Some(dep) = dependency.get("name").and_then(toml::Value::as_str) {
                dependencies
                    .entry(normalize_name(dep))
                    .or_default()
                    .push(name.clone());
            }
        }
        chosen.insert(
            name.clone(),
            LockedPackage {
                name,
                version,
                wheel: file_name,
                size,
                sha256,
                required_by: Vec::new(),
            },
        );
    }
    // What required a package: the chosen packages that list it among their dependencies.
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
    Ok(LockedTarget {
        name: want.name.clone(),
        platform: want.platform.clone(),
        glibc: want.glibc.clone(),
        interpreter: None,
        packages: chosen.into_values().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(name: &str, version: &str, wheel: &str, by: &[&str]) -> LockedPackage {
        LockedPackage {
            name: name.into(),
            version: version.into(),
            wheel: wheel.into(),
            size: wheel.len() as u64 * 1000,
            sha256: blake3::hash(wheel.as_bytes()).to_hex().to_string(),
            required_by: by.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    fn sample() -> Lock {
        Lock {
            version: LOCK_VERSION,
            python: "3.12.7".into(),
            inputs: "blake3:0123".into(),
            targets: vec![
                LockedTarget {
                    name: "windows-x86_64".into(),
                    platform: "x86_64-pc-windows-msvc".into(),
                    glibc: None,
                    interpreter: None,
                    packages: vec![
                        package("lxml", "6.1.3", "lxml-6.1.3-cp312-cp312-win_amd64.whl", &["requirements.txt:2"]),
                        package("psycopg2", "2.9.10", "psycopg2-2.9.10-cp312-cp312-win_amd64.whl", &["requirements.txt:1"]),
                        package("six", "1.17.0", "six-1.17.0-py2.py3-none-any.whl", &["lxml"]),
                    ],
                },
                LockedTarget {
                    name: "linux-x86_64".into(),
                    platform: "x86_64-unknown-linux-gnu".into(),
                    glibc: Some("2.28".into()),
                    interpreter: None,
                    packages: vec![
                        package("lxml", "6.1.3", "lxml-6.1.3-cp312-cp312-manylinux_2_28_x86_64.whl", &["requirements.txt:2"]),
                        package("psycopg2-binary", "2.9.10", "psycopg2_binary-2.9.10-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", &["requirements.txt:3"]),
                        package("six", "1.16.0", "six-1.16.0-py2.py3-none-any.whl", &["lxml"]),
                    ],
                },
            ],
        }
    }

    fn targets_of(lock: &Lock) -> Vec<PylockTarget> {
        lock.targets
            .iter()
            .map(|t| PylockTarget {
                name: t.name.clone(),
                platform: t.platform.clone(),
                glibc: t.glibc.clone(),
            })
            .collect()
    }

    #[test]
    fn pystore_lock_round_trips_through_pylock() {
        let lock = sample();
        let text = to_pylock(&lock, &BTreeMap::new()).unwrap();
        let back = parse_pylock(
            Path::new("pylock.toml"),
            &text,
            "3.12.7",
            &targets_of(&lock),
        )
        .unwrap();
        assert!(back.written_by_pystore);
        assert_eq!(back.lock.to_toml(), lock.to_toml());
        // Writing is deterministic.
        assert_eq!(to_pylock(&back.lock, &BTreeMap::new()).unwrap(), text);
    }

    #[test]
    fn written_file_is_standard_pep_751() {
        let mut locations = BTreeMap::new();
        locations.insert(
            "six-1.17.0-py2.py3-none-any.whl".to_owned(),
            WheelLocation::Url("http://127.0.0.1:9/files/six-1.17.0-py2.py3-none-any.whl".into()),
        );
        let text = to_pylock(&sample(), &locations).unwrap();
        let value: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(value["lock-version"].as_str(), Some("1.0"));
        assert_eq!(value["created-by"].as_str(), Some("pystore"));
        assert_eq!(value["requires-python"].as_str(), Some("==3.12.7"));
        let environments = value["environments"].as_array().unwrap();
        assert_eq!(environments.len(), 2);
        // A lock of `python = "3.12"` is for the release its interpreters pin, not 3.12.0.
        let mut minor = sample();
        minor.python = "3.12".into();
        for target in &mut minor.targets {
            target.interpreter = Some(crate::python::lockfile::LockedInterpreter {
                version: "3.12.14".into(),
                url: "https://example.invalid/cpython.tar.gz".into(),
                size: None,
                sha256: "ab".repeat(32),
            });
        }
        let pinned: toml::Table = toml::from_str(&to_pylock(&minor, &locations).unwrap()).unwrap();
        assert_eq!(pinned["requires-python"].as_str(), Some("==3.12.14"));
        let packages = value["packages"].as_array().unwrap();
        let names: Vec<(&str, &str)> = packages
            .iter()
            .map(|p| (p["name"].as_str().unwrap(), p["version"].as_str().unwrap()))
            .collect();
        assert_eq!(
            names,
            [
                ("lxml", "6.1.3"),
                ("psycopg2", "2.9.10"),
                ("psycopg2-binary", "2.9.10"),
                ("six", "1.16.0"),
                ("six", "1.17.0")
            ]
        );
        // lxml is on both targets: no marker, both wheels.
        assert!(packages[0].get("marker").is_none());
        assert_eq!(packages[0]["wheels"].as_array().unwrap().len(), 2);
        // psycopg2 only on Windows.
        assert_eq!(
            packages[1]["marker"].as_str(),
            Some("sys_platform == 'win32' and platform_machine == 'AMD64'")
        );
        let six = &packages[4]["wheels"].as_array().unwrap()[0];
        assert_eq!(
            six["url"].as_str(),
            Some("http://127.0.0.1:9/files/six-1.17.0-py2.py3-none-any.whl")
        );
        assert_eq!(
            six["hashes"]["sha256"].as_str().unwrap(),
            blake3::hash(b"six-1.17.0-py2.py3-none-any.whl")
                .to_hex()
                .as_str()
        );
    }

    /// A lock in the shape uv and pip write: markers, several wheels, no `[tool.pystore]`.
    const FOREIGN: &str = r#"
lock-version = "1.0"
requires-python = ">=3.9"
created-by = "some-tool"

[[packages]]
name = "LXML"
version = "6.1.3"
dependencies = [{ name = "six" }]
wheels = [
  { url = "https://example.com/lxml-6.1.3-cp312-cp312-win_amd64.whl", size = 10, hashes = { sha256 = "1111111111111111111111111111111111111111111111111111111111111111" } },
  { url = "https://example.com/lxml-6.1.3-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", size = 11, hashes = { sha256 = "2222222222222222222222222222222222222222222222222222222222222222" } },
  { url = "https://example.com/lxml-6.1.3-cp312-cp312-manylinux_2_28_x86_64.whl", size = 12, hashes = { sha256 = "3333333333333333333333333333333333333333333333333333333333333333" } },
]

[[packages]]
name = "pywin32"
version = "311"
marker = "sys_platform == 'win32'"
wheels = [{ name = "pywin32-311-cp312-cp312-win_amd64.whl", path = "wheels/pywin32-311-cp312-cp312-win_amd64.whl", size = 20, hashes = { sha256 = "4444444444444444444444444444444444444444444444444444444444444444" } }]

[[packages]]
name = "six"
version = "1.17.0"
wheels = [{ url = "https://example.com/six-1.17.0-py2.py3-none-any.whl", upload-time = 2024-12-04T17:35:26Z, size = 30, hashes = { sha256 = "5555555555555555555555555555555555555555555555555555555555555555" } }]
"#;

    fn foreign_targets() -> Vec<PylockTarget> {
        vec![
            PylockTarget {
                name: "linux".into(),
                platform: "x86_64-unknown-linux-gnu".into(),
                glibc: None,
            },
            PylockTarget {
                name: "linux-228".into(),
                platform: "x86_64-unknown-linux-gnu".into(),
                glibc: Some("2.28".into()),
            },
            PylockTarget {
                name: "win".into(),
                platform: "x86_64-pc-windows-msvc".into(),
                glibc: None,
            },
        ]
    }

    #[test]
    fn foreign_locks_pick_per_target_by_marker_and_tags() {
        let read = parse_pylock(
            Path::new("pylock.toml"),
            FOREIGN,
            "3.12.7",
            &foreign_targets(),
        )
        .unwrap();
        assert!(!read.written_by_pystore);
        let wheels = |t: &str| -> Vec<String> {
            read.lock
                .target(t)
                .unwrap()
                .packages
                .iter()
                .map(|p| p.wheel.clone())
                .collect()
        };
        assert_eq!(
            wheels("linux"),
            [
                "lxml-6.1.3-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                "six-1.17.0-py2.py3-none-any.whl"
            ]
        );
        assert_eq!(
            wheels("linux-228")[0],
            "lxml-6.1.3-cp312-cp312-manylinux_2_28_x86_64.whl"
        );
        assert_eq!(
            wheels("win"),
            [
                "lxml-6.1.3-cp312-cp312-win_amd64.whl",
                "pywin32-311-cp312-cp312-win_amd64.whl",
                "six-1.17.0-py2.py3-none-any.whl"
            ]
        );
        let win = read.lock.packages_of("win");
        assert_eq!(win["lxml"].size, 10);
        assert_eq!(win["six"].required_by, ["lxml"]);
        assert_eq!(win["pywin32"].sha256, "4".repeat(64));
    }

    #[test]
    fn foreign_locks_that_cannot_be_pinned_are_refused_by_name() {
        let path = Path::new("/p/pylock.toml");
        let err = |text: &str| {
            parse_pylock(path, text, "3.12.7", &foreign_targets())
                .unwrap_err()
                .to_string()
        };
        let sdist = "lock-version = \"1.0\"\ncreated-by = \"x\"\n[[packages]]\nname = \"foo\"\nversion = \"1\"\nsdist = { name = \"foo-1.tar.gz\", size = 1, hashes = { sha256 = \"00\" } }\n";
        let e = err(sdist);
        assert!(
            e.contains("/p/pylock.toml: package foo: has only a source distribution"),
            "{e}"
        );
        let no_size = FOREIGN.replace("size = 30, ", "");
        let e = err(&no_size);
        assert!(
            e.contains("package six: six-1.17.0-py2.py3-none-any.whl has no size"),
            "{e}"
        );
        let linux_only = FOREIGN.replace(
            "{ url = \"https://example.com/lxml-6.1.3-cp312-cp312-win_amd64.whl\", size = 10, hashes = { sha256 = \"1111111111111111111111111111111111111111111111111111111111111111\" } },",
            "",
        );
        let e = err(&linux_only);
        assert!(
            e.contains("package lxml: none of its wheels") && e.contains("(target win)"),
            "{e}"
        );
        let e = err(&FOREIGN.replace(">=3.9", ">=3.13"));
        assert!(
            e.contains(
                "target linux: the file's requires-python \">=3.13\" excludes CPython 3.12.7"
            ),
            "{e}"
        );
        let e = err(&FOREIGN.replace("lock-version = \"1.0\"", "lock-version = \"2.0\""));
        assert!(e.contains("lock-version \"2.0\""), "{e}");
    }

    #[test]
    fn own_files_must_lock_the_targets_asked_for() {
        let lock = sample();
        let text = to_pylock(&lock, &BTreeMap::new()).unwrap();
        let mut targets = targets_of(&lock);
        targets[1].glibc = None;
        let e = parse_pylock(Path::new("pylock.toml"), &text, "3.12.7", &targets)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("target linux-x86_64: is not locked in this file"),
            "{e}"
        );
        let e = parse_pylock(
            Path::new("pylock.toml"),
            &text,
            "3.13.1",
            &targets_of(&lock),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("locked for CPython 3.12.7, not 3.13.1"), "{e}");
    }

    #[test]
    fn pylock_file_names() {
        assert!(is_pylock_name("pylock.toml"));
        assert!(is_pylock_name("pylock.samai.toml"));
        assert!(!is_pylock_name("pylock..toml"));
        assert!(!is_pylock_name("pylock.a.b.toml"));
        assert!(!is_pylock_name("pystore.lock"));
    }
}
