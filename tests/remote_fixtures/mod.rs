//! Shared by the push/pull tests: a realisable demo recipe with its wheels in a wheelhouse,
//! signing keys, and closure comparisons.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use crate::recipe_fixtures::{demo_wheels, recipe, workspace};

/// A workspace with the demo recipe, its wheels and two key pairs (`ci`, trusted; `rogue`, not).
pub(crate) struct Setup {
    pub work: tempfile::TempDir,
    pub wheels: PathBuf,
    pub recipe: PathBuf,
    pub secret: PathBuf,
    pub public: String,
    pub rogue_secret: PathBuf,
    pub rogue_public: String,
}

impl Setup {
    pub(crate) fn new() -> Setup {
        let (work, wheels) = workspace();
        let files = demo_wheels(&wheels);
        let recipe = recipe(work.path(), &files, &["app_core"]);
        let keys = work.path().join("keys");
        let key = |name: &str| {
            let out = run_ok(
                Command::new(bin())
                    .args(["key", "generate", name, "--out"])
                    .arg(&keys),
            );
            (
                keys.join(format!("{name}.secret")),
                out.lines().last().unwrap().trim().to_owned(),
            )
        };
        let (secret, public) = key("ci");
        let (rogue_secret, rogue_public) = key("ci-rogue");
        Setup {
            work,
            wheels,
            recipe,
            secret,
            public,
            rogue_secret,
            rogue_public,
        }
    }

    /// `pystore --store STORE` with the wheelhouse configured and offline.
    pub(crate) fn pystore(&self, store: &Path) -> Command {
        let mut cmd = pystore(store);
        cmd.arg("--offline").arg("--find-links").arg(&self.wheels);
        cmd
    }

    /// Realises the recipe into `store`; the JSON of its one target.
    pub(crate) fn realise(&self, store: &Path) -> serde_json::Value {
        let value = json(self.pystore(store).arg("realise").arg(&self.recipe));
        value[0].clone()
    }
}

/// (id, name, content hash) of every entry in the closure of `path`, sorted.
pub(crate) fn closure(store: &Path, path: &str) -> Vec<(String, String, String)> {
    let value = json(pystore(store).args(["path-info", "--closure", path]));
    let mut out: Vec<_> = value
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["id"].as_str().unwrap().to_owned(),
                e["name"].as_str().unwrap().to_owned(),
                e["content_hash"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

/// The one file in `dir` whose name ends with `suffix` and is not `except`.
pub(crate) fn blobs(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_str().unwrap().ends_with(suffix))
        .collect();
    found.sort();
    found
}

/// Copies a flat directory.
pub(crate) fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}
