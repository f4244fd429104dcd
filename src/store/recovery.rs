//! Crash recovery, run every time a store is opened.
//!
//! Every build directory in tmp/ is named `<id>-<name>~<random>` and exists only while its
//! builder holds the entry's lock (it is removed after the commit). So a build directory whose
//! entry lock is free belongs to a dead process: it is removed, together with the entry's
//! directory if that was renamed into place but never registered. Directories whose lock is held
//! belong to live builds and are left alone. tmp/ is normally empty, so this costs one readdir.

use std::fs;

use super::canonicalise::remove_tree;
use super::layout::{parse_entry_dir_name, TMP_SEPARATOR};
use super::lock::{self, LockMode};
use super::{io_err, Result, Store};

pub(super) fn recover(store: &Store) -> Result<()> {
    let tmp = store.layout().tmp_dir();
    for child in fs::read_dir(&tmp).map_err(io_err("list", &tmp))? {
        let child = child.map_err(io_err("list", &tmp))?;
        let file_name = child.file_name();
        let Some((entry_dir, _)) = file_name
            .to_str()
            .and_then(|n| n.rsplit_once(TMP_SEPARATOR))
        else {
            continue;
        };
        let Some((id, _)) = parse_entry_dir_name(entry_dir) else {
            continue;
        };
        let lock_path = store.layout().lock_path(&id);
        let Some(_lock) = lock::try_acquire(&lock_path, LockMode::Exclusive)
            .map_err(io_err("lock", &lock_path))?
        else {
            continue; // a live build
        };
        if store.query(&id)?.is_none() {
            let partial = store.layout().entries_dir().join(entry_dir);
            remove_tree(&partial).map_err(io_err("remove partial entry", &partial))?;
        }
        remove_tree(&child.path()).map_err(io_err("remove build directory", &child.path()))?;
        tracing::debug!("cleaned up after an interrupted build of {entry_dir}");
    }
    Ok(())
}
