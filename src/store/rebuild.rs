//! Rebuilding a valid entry beside the store to check that its builder is reproducible.
//!
//! The builder runs exactly as registration runs it (a build directory in tmp/, `out` inside it),
//! but the result is never registered: its canonical tree is compared with the entry's recorded
//! manifest. A matching rebuild is removed; a differing one is kept for inspection under a name
//! that crash recovery leaves alone (see `store-layout.md` §6a).

use std::fs;
use std::path::PathBuf;

use super::canonicalise::remove_tree;
use super::layout::{entry_dir_name, TMP_SEPARATOR};
use super::lock::{self, LockMode};
use super::register::BuildError;
use super::{io_err, EntryInfo, Result, Store, StoreError};
use crate::hash::tree::Tree;

/// Prefix of the directories in tmp/ that keep differing rebuilds.
pub const CHECK_PREFIX: &str = "check-";

/// What a rebuild gave.
#[derive(Debug)]
pub enum Rebuild {
    /// The same canonical tree as the registered entry (the rebuild was removed).
    Same,
    /// Another tree; the rebuilt output is kept at `kept`.
    Differs {
        /// The rebuilt output: `<store>/tmp/check-<id>-<name>~<random>/out`.
        kept: PathBuf,
        /// Its canonical tree.
        tree: Tree,
    },
}

impl Store {
    /// Runs `builder` again for the valid `entry` and compares the output's canonical tree with
    /// the entry's content hash, registering nothing.
    ///
    /// The build directory is `tmp/<id>-<name>~<random>`, held under a *shared* entry lock, so
    /// rounds may run at once, a crashed check is cleaned up by the next open (§8) and a live one
    /// is left alone. A differing output is renamed to `tmp/check-<id>-<name>~<random>/out` and
    /// left as built (writable) for the user to inspect and delete.
    pub fn rebuild(
        &self,
        entry: &EntryInfo,
        builder: impl FnOnce(&std::path::Path) -> std::result::Result<(), BuildError>,
    ) -> Result<Rebuild> {
        let lock_path = self.layout.lock_path(&entry.id);
        let _lock = lock::acquire(&lock_path, LockMode::Shared, || {
            tracing::info!("waiting for another process that holds {}", entry.name)
        })
        .map_err(io_err("lock", &lock_path))?;
        let dir_name = entry_dir_name(&entry.id, &entry.name);
        let scratch = tempfile::Builder::new()
            .prefix(&format!("{dir_name}{TMP_SEPARATOR}"))
            .rand_bytes(8)
            .tempdir_in(self.layout.tmp_dir())
            .map_err(io_err("create build directory in", &self.layout.tmp_dir()))?
            .keep();
        let outcome = self.rebuild_in(entry, &scratch, builder);
        let kept = match &outcome {
            Ok(tree) if tree.content_hash() != entry.content_hash => {
                let suffix = scratch
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.rsplit_once(TMP_SEPARATOR))
                    .map_or("0", |(_, random)| random);
                let keep = self
                    .layout
                    .tmp_dir()
                    .join(format!("{CHECK_PREFIX}{dir_name}{TMP_SEPARATOR}{suffix}"));
                fs::rename(&scratch, &keep).map_err(io_err("keep the rebuild at", &keep))?;
                Some(keep)
            }
            _ => None,
        };
        if kept.is_none() {
            let _ = remove_tree(&scratch);
        }
        let tree = outcome?;
        Ok(match kept {
            Some(dir) => {
                // The builder's own scratch files beside `out` (a wheel link) are not its output.
                if let Ok(children) = fs::read_dir(&dir) {
                    for child in children.flatten() {
                        if child.file_name() != "out" {
                            let _ = remove_tree(&child.path());
                        }
                    }
                }
                Rebuild::Differs {
                    kept: dir.join("out"),
                    tree,
                }
            }
            None => Rebuild::Same,
        })
    }

    fn rebuild_in(
        &self,
        entry: &EntryInfo,
        scratch: &std::path::Path,
        builder: impl FnOnce(&std::path::Path) -> std::result::Result<(), BuildError>,
    ) -> Result<Tree> {
        let out = scratch.join("out");
        builder(&out).map_err(|source| StoreError::Build {
            name: entry.name.clone(),
            source,
        })?;
        self.failpoints.inject_nondeterminism(&out, &entry.name);
        Ok(Tree::read(&out)?)
    }
}
