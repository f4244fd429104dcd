//! `pystore diff`: what changed between two bundles, read from their embedded manifests.
//!
//! Both sides may be a bundle directory (a store path), a bundle ZIP (in the store or anywhere),
//! or a `pystore-manifest.json` file: the manifest says everything needed (packages, versions,
//! every file's size and blake3), so nothing else is read and no store is needed.

pub mod load;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::bundle::manifest::{BundleManifest, FileRef};
pub use load::{load, DiffError};

/// A value on each side; `None` for absent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change<T> {
    /// Before.
    pub from: Option<T>,
    /// After.
    pub to: Option<T>,
}

/// A changed, added or removed package.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PackageChange {
    /// Normalised name.
    pub name: String,
    /// Versions before and after (`None`: not in that bundle).
    pub version: Change<String>,
    /// Wheel file names before and after (a rebuilt wheel may keep its version).
    pub wheel: Change<String>,
    /// Change in the total size of the package's files, in bytes.
    pub size_delta: i64,
}

/// The interpreter's change: CPython version and entry, and its files' size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InterpreterChange {
    /// CPython versions.
    pub python: Change<String>,
    /// Interpreter entry names.
    pub name: Change<String>,
    /// sha256 of the archives it came from.
    pub archive_sha256: Change<Option<String>>,
    /// Change in the total size of the interpreter's files (those no package installed).
    pub size_delta: i64,
}

/// A file that differs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FileChange {
    /// Path from the bundle root.
    pub path: String,
    /// Before (`None`: added).
    pub from: Option<FileRef>,
    /// After (`None`: removed).
    pub to: Option<FileRef>,
}

/// Everything that differs between two bundles.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BundleDiff {
    /// Recipe `NAME VERSION`, when it changed.
    pub recipe: Option<Change<String>>,
    /// Target `NAME (PLATFORM)`, when it changed.
    pub target: Option<Change<String>>,
    /// The interpreter, when it changed.
    pub interpreter: Option<InterpreterChange>,
    /// Packages added, removed or changed, by name.
    pub packages: Vec<PackageChange>,
    /// Files added, removed or changed (content, size, type or link target), by path.
    pub files: Vec<FileChange>,
    /// Total size before and after, in bytes.
    pub size: Change<u64>,
}

impl BundleDiff {
    /// True when the two bundles are the same.
    pub fn is_empty(&self) -> bool {
        self.recipe.is_none()
            && self.target.is_none()
            && self.interpreter.is_none()
            && self.packages.is_empty()
            && self.files.is_empty()
    }
}

fn change<T: PartialEq + Clone>(a: T, b: T) -> Option<Change<T>> {
    (a != b).then(|| Change {
        from: Some(a),
        to: Some(b),
    })
}

/// Sum of file sizes per owning package (`None`: the interpreter).
fn sizes(manifest: &BundleManifest) -> BTreeMap<Option<&str>, u64> {
    let mut sizes = BTreeMap::new();
    for file in &manifest.files {
        *sizes.entry(file.package.as_deref()).or_insert(0) += file.size.unwrap_or(0);
    }
    sizes
}

fn delta(a: u64, b: u64) -> i64 {
    // Bundles are far below 2^63 bytes.
    b as i64 - a as i64
}

/// The same content: what a file is, not which package it belongs to.
fn same_file(a: &FileRef, b: &FileRef) -> bool {
    a.kind == b.kind && a.size == b.size && a.blake3 == b.blake3 && a.target == b.target
}

/// Compares two manifests.
pub fn diff(a: &BundleManifest, b: &BundleManifest) -> BundleDiff {
    let (size_a, size_b) = (sizes(a), sizes(b));
    let size_of = |sizes: &BTreeMap<Option<&str>, u64>, key: Option<&str>| {
        sizes.get(&key).copied().unwrap_or(0)
    };

    let packages_a: BTreeMap<&str, _> = a.packages.iter().map(|p| (p.name.as_str(), p)).collect();
    let packages_b: BTreeMap<&str, _> = b.packages.iter().map(|p| (p.name.as_str(), p)).collect();
    let mut names: Vec<&str> = packages_a
        .keys()
        .chain(packages_b.keys())
        .copied()
        .collect();
    names.sort_unstable();
    names.dedup();
    let packages = names
        .into_iter()
        .filter_map(|name| {
            let (pa, pb) = (packages_a.get(name), packages_b.get(name));
            if let (Some(pa), Some(pb)) = (pa, pb) {
                if pa.version == pb.version && pa.sha256 == pb.sha256 {
                    return None;
                }
            }
            Some(PackageChange {
                name: name.to_owned(),
                version: Change {
                    from: pa.map(|p| p.version.clone()),
                    to: pb.map(|p| p.version.clone()),
                },
                wheel: Change {
                    from: pa.map(|p| p.wheel.clone()),
                    to: pb.map(|p| p.wheel.clone()),
                },
                size_delta: delta(size_of(&size_a, Some(name)), size_of(&size_b, Some(name))),
            })
        })
        .collect();

    let interpreter =
        (a.interpreter != b.interpreter || a.target.python != b.target.python).then(|| {
            InterpreterChange {
                python: Change {
                    from: Some(a.target.python.clone()),
                    to: Some(b.target.python.clone()),
                },
                name: Change {
                    from: Some(a.interpreter.name.clone()),
                    to: Some(b.interpreter.name.clone()),
                },
                archive_sha256: Change {
                    from: Some(a.interpreter.archive_sha256.clone()),
                    to: Some(b.interpreter.archive_sha256.clone()),
                },
                size_delta: delta(size_of(&size_a, None), size_of(&size_b, None)),
            }
        });

    let files_a: BTreeMap<&str, &FileRef> = a.files.iter().map(|f| (f.path.as_str(), f)).collect();
    let files_b: BTreeMap<&str, &FileRef> = b.files.iter().map(|f| (f.path.as_str(), f)).collect();
    let mut paths: Vec<&str> = files_a.keys().chain(files_b.keys()).copied().collect();
    paths.sort_unstable_by(|x, y| x.as_bytes().cmp(y.as_bytes()));
    paths.dedup();
    let files = paths
        .into_iter()
        .filter_map(|path| {
            let (fa, fb) = (files_a.get(path), files_b.get(path));
            match (fa, fb) {
                (Some(fa), Some(fb)) if same_file(fa, fb) => None,
                _ => Some(FileChange {
                    path: path.to_owned(),
                    from: fa.map(|f| (*f).clone()),
                    to: fb.map(|f| (*f).clone()),
                }),
            }
        })
        .collect();

    BundleDiff {
        recipe: change(
            format!("{} {}", a.recipe.name, a.recipe.version),
            format!("{} {}", b.recipe.name, b.recipe.version),
        ),
        target: change(
            format!("{} ({})", a.target.name, a.target.platform),
            format!("{} ({})", b.target.name, b.target.platform),
        ),
        interpreter,
        packages,
        files,
        size: Change {
            from: Some(size_a.values().sum()),
            to: Some(size_b.values().sum()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::manifest::{InterpreterRef, PackageRef, RecipeRef, TargetRef};

    fn file(path: &str, size: u64, hash: &str, package: Option<&str>) -> FileRef {
        FileRef {
            path: path.into(),
            kind: "f".into(),
            size: Some(size),
            blake3: Some(hash.into()),
            target: None,
            package: package.map(Into::into),
        }
    }

    fn manifest(packages: &[(&str, &str)], files: Vec<FileRef>) -> BundleManifest {
        BundleManifest {
            format: 1,
            recipe: RecipeRef {
                name: "demo".into(),
                version: "1.0".into(),
            },
            target: TargetRef {
                name: "t".into(),
                platform: "x86_64-unknown-linux-gnu".into(),
                python: "3.12.7".into(),
            },
            interpreter: InterpreterRef {
                name: "cpython".into(),
                entry: "id".into(),
                archive_sha256: None,
            },
            packages: packages
                .iter()
                .map(|(name, version)| PackageRef {
                    name: (*name).into(),
                    version: (*version).into(),
                    wheel: format!("{name}-{version}-py3-none-any.whl"),
                    sha256: format!("sha-{name}-{version}"),
                    entry: "e".into(),
                })
                .collect(),
            bytecode: None,
            files,
        }
    }

    #[test]
    fn reports_versions_sizes_and_files() {
        let a = manifest(
            &[("lxml", "6.1.2"), ("old", "2.0")],
            vec![
                file("bin/python", 10, "p", None),
                file("lxml/a.py", 100, "a1", Some("lxml")),
                file("old/x.py", 5, "x", Some("old")),
            ],
        );
        let b = manifest(
            &[("lxml", "6.1.3"), ("new", "1.0")],
            vec![
                file("bin/python", 10, "p", None),
                file("lxml/a.py", 130, "a2", Some("lxml")),
                file("new/y.py", 7, "y", Some("new")),
            ],
        );
        let d = diff(&a, &b);
        assert!(d.recipe.is_none() && d.target.is_none() && d.interpreter.is_none());
        let summary: Vec<_> = d
            .packages
            .iter()
            .map(|p| {
                (
                    p.name.as_str(),
                    p.version.from.as_deref(),
                    p.version.to.as_deref(),
                    p.size_delta,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("lxml", Some("6.1.2"), Some("6.1.3"), 30),
                ("new", None, Some("1.0"), 7),
                ("old", Some("2.0"), None, -5),
            ]
        );
        let paths: Vec<_> = d.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["lxml/a.py", "new/y.py", "old/x.py"]);
        assert!(diff(&a, &a).is_empty());
    }
}
