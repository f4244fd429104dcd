//! Writing `pylock.toml`: one `[[packages]]` entry per project version, every wheel any target
//! pins, a marker per entry, and the `[tool.pystore]` tables that make it read back into the
//! identical [`Lock`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::{
    PylockFile, PylockPackage, PylockWheel, ToolLock, ToolPackage, ToolPin, WheelLocation,
    PYLOCK_VERSION, TOOL,
};
use crate::lock::{Lock, LockedPackage, LockedTarget};
use crate::python::markers::marker_values;
use crate::python::target::{Target, TargetError};

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

/// Why a lock cannot be written as `pylock.toml` (a bug in the lock's targets, or in the
/// tables written).
#[derive(Debug, thiserror::Error)]
pub enum PylockWriteError {
    /// A target the python layer refuses for the lock's CPython.
    #[error("target {target}: {source}")]
    Target { target: String, source: TargetError },
    /// A table that does not serialise.
    #[error("{0}")]
    Toml(#[from] toml::ser::Error),
}

fn lock_target(target: &LockedTarget, python: &str) -> Result<Target, PylockWriteError> {
    target
        .spec
        .target(python)
        .map_err(|source| PylockWriteError::Target {
            target: target.spec.name.clone(),
            source,
        })
}

/// Writes `lock` as `pylock.toml` text. `locations` gives, by wheel file name, where each
/// wheel can be downloaded; a wheel missing from it is written without one (PEP 751 wants a
/// `url` or `path`, so other installers will need an index for it).
pub fn to_pylock(
    lock: &Lock,
    locations: &BTreeMap<String, WheelLocation>,
) -> Result<String, PylockWriteError> {
    let mut targets: Vec<&LockedTarget> = lock.targets.iter().collect();
    targets.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
    // The release the targets run: the pinned interpreter's (the lock's `python` may be a
    // minor version such as 3.12, which markers and requires-python must not read as 3.12.0).
    let python = targets
        .iter()
        .find_map(|t| t.interpreter.as_ref().map(|i| i.version.clone()))
        .unwrap_or_else(|| lock.python.clone());
    let mut markers = BTreeMap::new();
    for target in &targets {
        markers.insert(
            target.spec.name.as_str(),
            target_marker(&lock_target(target, &python)?),
        );
    }
    let environments: BTreeSet<&String> = markers.values().collect();
    // One entry per project version: its pins by target, and every wheel they use.
    // Keyed by the version's text, so entries keep the order they had when versions were text.
    let mut versions: BTreeMap<(&str, String), Vec<(&str, &LockedPackage)>> = BTreeMap::new();
    for target in &targets {
        for package in &target.packages {
            versions
                .entry((package.name.as_str(), package.version.to_string()))
                .or_default()
                .push((target.spec.name.as_str(), package));
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
                    wheel: package.wheel.to_string(),
                    required_by,
                }
            })
            .collect();
        tool_pins.sort_by(|a, b| a.target.cmp(&b.target));
        let tool = toml::Value::try_from(ToolPackage { targets: tool_pins })?;
        packages.push(PylockPackage {
            name: name.to_owned(),
            version: Some(version),
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
                        hashes: BTreeMap::from([("sha256".to_owned(), package.sha256.to_string())]),
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
        targets: targets.iter().map(|t| t.spec.clone()).collect(),
    })?;
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
    let body = toml::to_string(&file)?;
    Ok(format!(
        "# Written by `pystore lock --export-pylock` (PEP 751); generated, do not edit.\n{body}"
    ))
}

/// [`to_pylock`] for a file at `path`: local wheels are named relative to the file's directory
/// where they lie below it.
pub fn to_pylock_at(
    lock: &Lock,
    locations: &BTreeMap<String, WheelLocation>,
    path: &Path,
) -> Result<String, PylockWriteError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let locations: BTreeMap<String, WheelLocation> = locations
        .iter()
        .map(|(name, location)| {
            let location = match location {
                WheelLocation::Path(p) => WheelLocation::Path(
                    Path::new(p)
                        .strip_prefix(dir)
                        .map(|rel| rel.to_string_lossy().replace('\\', "/"))
                        .unwrap_or_else(|_| p.clone()),
                ),
                url => url.clone(),
            };
            (name.clone(), location)
        })
        .collect();
    to_pylock(lock, &locations)
}
