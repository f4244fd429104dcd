//! `pystore-manifest.json`: what a bundle is made of, embedded in the bundle (and so its ZIP).
//!
//! Canonical JSON (sorted keys, no white space), so the same bundle always has the same bytes.
//! It lists the recipe, the target, the interpreter, every package (version, wheel file name and
//! sha256, entry ids) and every file (size and blake3, and the package that installed it).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::hash::canonical_json;
use crate::hash::to_hex;
use crate::hash::tree::{NodeKind, Tree};

/// The manifest's file name at the bundle root.
pub const MANIFEST_NAME: &str = "pystore-manifest.json";

/// The manifest format version.
pub const MANIFEST_FORMAT: u32 = 1;

/// A bundle's manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleManifest {
    /// Format version.
    pub format: u32,
    /// Recipe name and version.
    pub recipe: RecipeRef,
    /// The target.
    pub target: TargetRef,
    /// The interpreter.
    pub interpreter: InterpreterRef,
    /// Packages, sorted by name.
    pub packages: Vec<PackageRef>,
    /// How the packages were byte-compiled; absent when the recipe says `bytecode = false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytecode: Option<BytecodeRef>,
    /// Files, sorted by path (the manifest itself excluded).
    pub files: Vec<FileRef>,
}

/// Recipe identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipeRef {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
}

/// Target identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetRef {
    /// Target name.
    pub name: String,
    /// Platform triple.
    pub platform: String,
    /// CPython version.
    pub python: String,
}

/// The interpreter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterpreterRef {
    /// Entry name.
    pub name: String,
    /// Entry id.
    pub entry: String,
    /// sha256 of the archive it came from, when it came from one.
    pub archive_sha256: Option<String>,
}

/// One installed package.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageRef {
    /// Normalised name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Wheel file name.
    pub wheel: String,
    /// Wheel sha256.
    pub sha256: String,
    /// Entry id of the installed package.
    pub entry: String,
}

/// The packages' bytecode: compiled (by which interpreter, how validated at import), or not
/// and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BytecodeRef {
    /// PEP 552 invalidation mode of the packages' pycs (`checked-hash`), when they have pycs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalidation: Option<String>,
    /// Entry name of the interpreter that compiled them, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compiler: Option<String>,
    /// Why the packages have no pycs, when they have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<String>,
}

/// One file of the bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    /// Path from the bundle root.
    pub path: String,
    /// `f` file, `x` executable file, `l` symlink.
    pub kind: String,
    /// Size in bytes (files).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// blake3, hex (files).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blake3: Option<String>,
    /// Link target (symlinks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The package that installed it; none for the interpreter's files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
}

impl BundleManifest {
    /// Fills `files` from the bundle's tree; `owners` maps paths to package names.
    pub fn set_files(&mut self, tree: &Tree, owners: &BTreeMap<String, String>) {
        self.files = tree
            .nodes
            .iter()
            .filter(|node| node.path != MANIFEST_NAME)
            .filter_map(|node| {
                let package = owners.get(&node.path).cloned();
                match &node.kind {
                    NodeKind::Directory => None,
                    NodeKind::File {
                        executable,
                        size,
                        blake3,
                    } => Some(FileRef {
                        path: node.path.clone(),
                        kind: if *executable { "x" } else { "f" }.into(),
                        size: Some(*size),
                        blake3: Some(to_hex(blake3)),
                        target: None,
                        package,
                    }),
                    NodeKind::Symlink { target } => Some(FileRef {
                        path: node.path.clone(),
                        kind: "l".into(),
                        size: None,
                        blake3: None,
                        target: Some(target.clone()),
                        package,
                    }),
                }
            })
            .collect();
    }

    /// The canonical bytes.
    pub fn to_canonical(&self) -> Vec<u8> {
        let mut packages = self.packages.clone();
        packages.sort_by(|a, b| a.name.cmp(&b.name));
        let mut files: Vec<&FileRef> = self.files.iter().collect();
        files.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
        // Everything but the file list is small and goes through a JSON value. The file list
        // (tens of thousands of objects in a real bundle) is written directly: building a value
        // of it was most of a bundle's manifest time.
        let head = BundleManifest {
            format: self.format,
            recipe: self.recipe.clone(),
            target: self.target.clone(),
            interpreter: self.interpreter.clone(),
            packages,
            bytecode: self.bytecode.clone(),
            files: Vec::new(),
        };
        let serde_json::Value::Object(mut fields) =
            serde_json::to_value(&head).expect("a manifest is JSON")
        else {
            unreachable!("a struct serialises as an object")
        };
        fields.remove("files");
        let mut keys: Vec<&str> = fields.keys().map(String::as_str).chain(["files"]).collect();
        keys.sort_unstable();
        let mut out = Vec::with_capacity(256 * files.len() + 4096);
        out.push(b'{');
        for (index, key) in keys.into_iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            canonical_json::write_string(key, &mut out);
            out.push(b':');
            match fields.get(key) {
                // Only strings and integers: always canonical.
                Some(value) => {
                    canonical_json::write_value(value, &mut out).expect("a manifest has no floats")
                }
                None => write_files(&files, &mut out),
            }
        }
        out.extend_from_slice(b"}\n");
        out
    }

    /// Parses manifest bytes.
    pub fn parse(bytes: &[u8]) -> Result<BundleManifest, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// Writes `files` as a canonical JSON array: each object's keys in byte order, and the keys
/// whose value is `None` left out, as `FileRef`'s serde attributes do.
fn write_files(files: &[&FileRef], out: &mut Vec<u8>) {
    out.push(b'[');
    for (index, file) in files.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        let FileRef {
            path,
            kind,
            size,
            blake3,
            target,
            package,
        } = file;
        let mut first = true;
        let mut key = |name: &str, out: &mut Vec<u8>| {
            out.extend_from_slice(if first { b"{\"" } else { b",\"" });
            first = false;
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"\":");
        };
        if let Some(blake3) = blake3 {
            key("blake3", out);
            canonical_json::write_string(blake3, out);
        }
        key("kind", out);
        canonical_json::write_string(kind, out);
        if let Some(package) = package {
            key("package", out);
            canonical_json::write_string(package, out);
        }
        key("path", out);
        canonical_json::write_string(path, out);
        if let Some(size) = size {
            key("size", out);
            out.extend_from_slice(size.to_string().as_bytes());
        }
        if let Some(target) = target {
            key("target", out);
            canonical_json::write_string(target, out);
        }
        out.push(b'}');
    }
    out.push(b']');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, package: Option<&str>, target: Option<&str>) -> FileRef {
        FileRef {
            path: path.into(),
            kind: if target.is_some() { "l" } else { "f" }.into(),
            size: target.is_none().then_some(12),
            blake3: target.is_none().then(|| "ab".repeat(32)),
            target: target.map(Into::into),
            package: package.map(Into::into),
        }
    }

    /// The direct writer gives the bytes of the generic one (a JSON value of the whole
    /// manifest, written canonically), for every kind of file and for names that need escapes.
    #[test]
    fn canonical_bytes_are_those_of_the_generic_canonical_writer() {
        let manifest = BundleManifest {
            format: MANIFEST_FORMAT,
            recipe: RecipeRef {
                name: "samai".into(),
                version: "1.0".into(),
            },
            target: TargetRef {
                name: "linux-x86_64".into(),
                platform: "x86_64-unknown-linux-gnu".into(),
                python: "3.11".into(),
            },
            interpreter: InterpreterRef {
                name: "cpython-3.11.2".into(),
                entry: "abc-cpython".into(),
                archive_sha256: None,
            },
            packages: vec![
                PackageRef {
                    name: "zeta".into(),
                    version: "2".into(),
                    wheel: "zeta-2-py3-none-any.whl".into(),
                    sha256: "00".repeat(32),
                    entry: "z".into(),
                },
                PackageRef {
                    name: "alpha".into(),
                    version: "1".into(),
                    wheel: "alpha-1-py3-none-any.whl".into(),
                    sha256: "11".repeat(32),
                    entry: "a".into(),
                },
            ],
            bytecode: Some(BytecodeRef {
                invalidation: Some("checked-hash".into()),
                compiler: None,
                missing: None,
            }),
            files: vec![
                file("lib/z\"q\\.py", Some("zeta"), None),
                file("bin/python3", None, Some("python3.11")),
                file("lib/é\u{1}.py", Some("alpha"), None),
                file("bin/python3.11", None, None),
            ],
        };
        let mut sorted = manifest.clone();
        sorted.packages.sort_by(|a, b| a.name.cmp(&b.name));
        sorted
            .files
            .sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
        let mut generic = canonical_json::to_vec(&serde_json::to_value(&sorted).unwrap()).unwrap();
        generic.push(b'\n');
        let direct = manifest.to_canonical();
        assert_eq!(
            String::from_utf8(direct.clone()).unwrap(),
            String::from_utf8(generic).unwrap()
        );
        assert_eq!(BundleManifest::parse(&direct).unwrap(), sorted);
    }
}
