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
        let mut sorted = self.clone();
        sorted.packages.sort_by(|a, b| a.name.cmp(&b.name));
        sorted
            .files
            .sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
        // Only strings and integers: always canonical.
        let value = serde_json::to_value(&sorted).expect("a manifest is JSON");
        let mut bytes = canonical_json::to_vec(&value).expect("a manifest has no floats");
        bytes.push(b'\n');
        bytes
    }

    /// Parses manifest bytes.
    pub fn parse(bytes: &[u8]) -> Result<BundleManifest, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}
