//! gc roots: symlinks `roots/<NAME>` → `../entries/<id>-<name>`.
//!
//! Relative targets, so a store root can be moved or copied with its roots intact.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::layout::{entry_dir_name, parse_entry_dir_name, ENTRIES_DIR};
use super::{io_err, EntryId, EntryInfo, Result, Store, StoreError};

/// A gc root.
#[derive(Clone, Debug, Serialize)]
pub struct Root {
    /// The root's name (its file name under roots/).
    pub name: String,
    /// The entry path it keeps alive (absolute), as its link says.
    pub path: PathBuf,
    /// The id it points to, when its link names an entry.
    #[serde(skip)]
    pub id: Option<EntryId>,
    /// Whether that entry is valid.
    pub valid: bool,
}

/// Checks a root name: the same rules as entry names.
fn check_root_name(name: &str) -> Result<()> {
    super::EntryName::new(name).map(|_| ()).map_err(|err| {
        StoreError::Root(format!("{name:?} is not a valid root name: {}", err.reason))
    })
}

impl Store {
    /// Makes `entry` a gc root called `name`, replacing any root of that name atomically.
    pub fn add_root(&self, name: &str, entry: &EntryInfo) -> Result<PathBuf> {
        check_root_name(name)?;
        let dir = self.layout().roots_dir();
        let link = dir.join(name);
        let target = Path::new("..")
            .join(ENTRIES_DIR)
            .join(entry_dir_name(&entry.id, &entry.name));
        let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let _ = fs::remove_file(&temp);
        symlink(&target, &temp).map_err(io_err("create root", &temp))?;
        fs::rename(&temp, &link).map_err(io_err("create root", &link))?;
        Ok(link)
    }

    /// Removes the gc root `name`.
    pub fn remove_root(&self, name: &str) -> Result<()> {
        check_root_name(name)?;
        let link = self.layout().roots_dir().join(name);
        match fs::symlink_metadata(&link) {
            Ok(meta) if meta.file_type().is_symlink() => {
                fs::remove_file(&link).map_err(io_err("remove root", &link))
            }
            _ => Err(StoreError::Root(format!(
                "there is no root named {name:?}; `pystore root list` shows the roots"
            ))),
        }
    }

    /// Every gc root, ordered by name.
    pub fn roots(&self) -> Result<Vec<Root>> {
        let dir = self.layout().roots_dir();
        let mut roots = Vec::new();
        for child in fs::read_dir(&dir).map_err(io_err("list", &dir))? {
            let child = child.map_err(io_err("list", &dir))?;
            let Some(name) = child.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            let Ok(target) = fs::read_link(child.path()) else {
                continue;
            };
            let entry_name = target
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let parsed = parse_entry_dir_name(entry_name);
            let (path, id, valid) = match parsed {
                Some((id, entry_name)) => {
                    let valid = self
                        .query(&id)?
                        .is_some_and(|e| e.name == entry_name.as_str());
                    (
                        self.layout().entry_path(&id, entry_name.as_str()),
                        Some(id),
                        valid,
                    )
                }
                None => (dir.join(&target), None, false),
            };
            roots.push(Root {
                name,
                path,
                id,
                valid,
            });
        }
        roots.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(roots)
    }
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(windows)]
fn symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::windows::fs::symlink_dir(target, link)
}
