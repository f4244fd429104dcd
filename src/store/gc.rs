//! Garbage collection: delete every entry not reachable from a gc root.
//!
//! gc holds the store-wide lock exclusively (every other process holds it shared while it has the
//! store open), so nothing is built, registered or referenced while it runs. It loads every entry
//! and reference into memory once, marks from the roots, deletes the dead rows in one
//! transaction, then their files (in parallel), then what the caches keep for those entries
//! alone. A crash after the commit leaves unregistered directories, which the next gc removes.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::PathBuf;

use rayon::prelude::*;

use super::canonicalise::remove_tree;
use super::layout::entry_dir_name;
use super::lock::LockMode;
use super::{io_err, Result, Store, StoreError};

/// What a gc removed (or, with `dry_run`, would remove).
#[derive(Clone, Debug, Default)]
pub struct GcReport {
    /// True when nothing was removed.
    pub dry_run: bool,
    /// Entries removed (or to be removed), as (path, bytes), ordered by path.
    pub removed: Vec<(PathBuf, u64)>,
    /// Unregistered directories removed (or to be removed).
    pub unregistered: Vec<PathBuf>,
    /// Total bytes of file contents freed.
    pub bytes: u64,
    /// Entries kept alive by roots.
    pub kept: usize,
}

impl Store {
    /// Collects garbage. Waits until no other process has this store open.
    ///
    /// Refused when the database was found missing or empty beside entry directories (it would
    /// delete every entry). A dry run deletes nothing, so it takes no exclusive lock (and works
    /// on a read-only store).
    pub fn gc(&mut self, dry_run: bool) -> Result<GcReport> {
        if let Some(message) = self.lost_database() {
            return Err(StoreError::DatabaseLost(message.to_owned()));
        }
        if dry_run {
            return self.collect(true);
        }
        self.with_exclusive_lock(|store| store.collect(dry_run))
    }

    /// Runs `work` holding the store's gc lock exclusively (no other process uses the store
    /// meanwhile), then returns to the shared lock every open store holds.
    pub(super) fn with_exclusive_lock<T>(
        &mut self,
        work: impl FnOnce(&mut Self) -> Result<T>,
    ) -> Result<T> {
        let lock_path = self.layout().gc_lock_path();
        let shared = self
            .gc_lock
            .take()
            .ok_or_else(|| StoreError::Root("gc lock lost".into()))?;
        let exclusive = shared
            .convert(LockMode::Exclusive, || {
                tracing::info!("waiting for other pystore processes using this store to finish")
            })
            .map_err(io_err("lock", &lock_path))?;
        let result = work(self);
        self.gc_lock = Some(
            exclusive
                .convert(LockMode::Shared, || {})
                .map_err(io_err("lock", &lock_path))?,
        );
        result
    }

    fn collect(&self, dry_run: bool) -> Result<GcReport> {
        let rows = self.db().all_entries()?;
        let references = self.db().all_references()?;
        let index: HashMap<i64, usize> = rows
            .iter()
            .enumerate()
            .map(|(i, row)| (row.rowid, i))
            .collect();
        let mut edges: Vec<Vec<usize>> = vec![Vec::new(); rows.len()];
        for (referrer, reference) in references {
            if let (Some(&from), Some(&to)) = (index.get(&referrer), index.get(&reference)) {
                edges[from].push(to);
            }
        }
        let by_id: HashMap<&str, usize> = rows
            .iter()
            .enumerate()
            .map(|(i, row)| (row.id.as_str(), i))
            .collect();
        let mut live = vec![false; rows.len()];
        let mut stack: Vec<usize> = Vec::new();
        for root in self.roots()? {
            if let Some(&i) = root.id.as_ref().and_then(|id| by_id.get(id.as_str())) {
                stack.push(i);
            }
        }
        while let Some(i) = stack.pop() {
            if !std::mem::replace(&mut live[i], true) {
                stack.extend(&edges[i]);
            }
        }
        let dead: Vec<usize> = (0..rows.len()).filter(|&i| !live[i]).collect();
        let mut removed: Vec<(PathBuf, u64)> = dead
            .iter()
            .map(|&i| {
                (
                    self.layout().entry_path(&rows[i].id, &rows[i].name),
                    rows[i].size,
                )
            })
            .collect();
        removed.sort();
        let registered: HashSet<String> = rows
            .iter()
            .map(|row| entry_dir_name(&row.id, &row.name))
            .collect();
        let unregistered = self.unregistered_dirs_given(&registered)?;
        let unregistered_bytes: u64 = unregistered.iter().map(|p| tree_bytes(p)).sum();
        let report = GcReport {
            dry_run,
            bytes: removed.iter().map(|(_, size)| size).sum::<u64>() + unregistered_bytes,
            removed,
            unregistered,
            kept: live.iter().filter(|&&l| l).count(),
        };
        if dry_run {
            return Ok(report);
        }
        // Rows first: from the commit on, these entries are not valid, whatever happens next.
        self.db()
            .delete(&dead.iter().map(|&i| rows[i].rowid).collect::<Vec<_>>())?;
        let lock_paths: Vec<PathBuf> = dead
            .iter()
            .map(|&i| self.layout().lock_path(&rows[i].id))
            .collect();
        let removed = report
            .removed
            .par_iter()
            .map(|(path, _)| path)
            .chain(report.unregistered.par_iter())
            .try_for_each(|path| remove_tree(path).map_err(io_err("remove", path)));
        // No other process has the store open, so no one can be waiting on these locks. The
        // rows are gone, so locks and caches go even when a directory could not be removed.
        for path in lock_paths {
            let _ = fs::remove_file(path);
        }
        let names: HashSet<String> = dead
            .iter()
            .flat_map(|&i| {
                [
                    rows[i].id.to_string(),
                    entry_dir_name(&rows[i].id, &rows[i].name),
                ]
            })
            .collect();
        self.remove_entry_caches(&names);
        removed?;
        Ok(report)
    }

    /// Removes what the caches keep for single entries that are gone: a file named after an
    /// entry's id or its directory name in any directory of `cache/` (store-layout.md §10a).
    /// Best effort: caches may be deleted at any time, and a leftover is only wasted space.
    fn remove_entry_caches(&self, names: &HashSet<String>) {
        let Ok(dirs) = fs::read_dir(self.layout().cache_dir()) else {
            return;
        };
        for dir in dirs.flatten() {
            if !dir.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let Ok(files) = fs::read_dir(dir.path()) else {
                continue;
            };
            for file in files.flatten() {
                if file.file_name().to_str().is_some_and(|n| names.contains(n)) {
                    let _ = fs::remove_file(file.path());
                }
            }
        }
    }
}

/// Bytes of regular files under `path` (best effort: unreadable parts count as zero).
fn tree_bytes(path: &std::path::Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if meta.is_file() {
        return meta.len();
    }
    if !meta.is_dir() {
        return 0;
    }
    fs::read_dir(path)
        .map(|children| children.flatten().map(|c| tree_bytes(&c.path())).sum())
        .unwrap_or(0)
}
