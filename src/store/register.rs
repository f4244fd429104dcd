//! Atomic registration: build in tmp/, canonicalise, sync, rename, then one transaction.

use std::fs;
use std::path::{Path, PathBuf};

use super::canonicalise::{self, remove_tree};
use super::db::NewEntry;
use super::id::{EntryName, Fingerprint};
use super::layout::{entry_dir_name, TMP_SEPARATOR};
use super::lock::{self, LockMode};
use super::{io_err, EntryInfo, Result, Store, StoreError};
use crate::hash::tree::Tree;
use crate::hash::{sha256_file, to_hex};

/// The outcome of asking for an entry.
#[derive(Clone, Debug)]
pub struct Registration {
    /// The valid entry.
    pub entry: EntryInfo,
    /// True when this call built it; false when it was valid already (or another process built
    /// it while we waited).
    pub built: bool,
}

/// The state of group commit: how many syncs were asked for, how many are covered by a
/// finished `syncfs`, and whether one is running.
#[derive(Default)]
pub(super) struct SyncGroup {
    state: std::sync::Mutex<SyncState>,
    finished: std::sync::Condvar,
}

#[derive(Default)]
struct SyncState {
    requested: u64,
    done: u64,
    running: bool,
}

impl SyncGroup {
    fn lock(&self) -> std::sync::MutexGuard<'_, SyncState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Why a builder failed: whatever error it had, kept whole as the source of
/// [`StoreError::Build`](super::StoreError::Build). (A builder writes the entry's file or
/// directory at the path it is given, which does not exist yet, reading only its declared
/// inputs.) The one definition: `build` re-exports it.
pub type BuildError = Box<dyn std::error::Error + Send + Sync>;

impl Store {
    /// Returns the entry for `fingerprint`, building it with `builder` unless it is valid already.
    ///
    /// One process builds an entry at a time: others wait on its lock (woken the moment it is
    /// released) and then reuse the result. For a fixed-output fingerprint the output must be a
    /// single file with the declared sha256; for a source fingerprint it must have the declared
    /// content hash. Nothing is registered on any error, and nothing is left behind.
    pub fn build(
        &self,
        fingerprint: &Fingerprint,
        builder: impl FnOnce(&Path) -> std::result::Result<(), BuildError>,
    ) -> Result<Registration> {
        self.build_checked(fingerprint, None, builder)
    }

    /// Like [`Store::build`], and also requires the output's content hash to be `expected`
    /// when given: how an entry made elsewhere (pulled from a remote) is registered, so that a
    /// description cannot claim one tree and deliver another. Everything else (atomic
    /// registration, references registered first, fixed outputs' sha256) is as for `build`.
    pub fn build_checked(
        &self,
        fingerprint: &Fingerprint,
        expected: Option<[u8; 32]>,
        builder: impl FnOnce(&Path) -> std::result::Result<(), BuildError>,
    ) -> Result<Registration> {
        let id = fingerprint.id()?;
        if let Some(entry) = self.query(&id)? {
            return Ok(Registration {
                entry,
                built: false,
            });
        }
        let name = fingerprint.name();
        let lock_path = self.layout.lock_path(&id);
        let _lock = lock::acquire(&lock_path, LockMode::Exclusive, || {
            tracing::info!("waiting for another process that is building {name}")
        })
        .map_err(io_err("lock", &lock_path))?;
        if let Some(entry) = self.query(&id)? {
            return Ok(Registration {
                entry,
                built: false,
            });
        }
        let scratch = tempfile::Builder::new()
            .prefix(&format!(
                "{}{TMP_SEPARATOR}",
                entry_dir_name(&id, name.as_str())
            ))
            .rand_bytes(8)
            .tempdir_in(self.layout.tmp_dir())
            .map_err(io_err("create build directory in", &self.layout.tmp_dir()))?
            .keep();
        let target = self.layout.entry_path(&id, name.as_str());
        let result = self.build_in(fingerprint, expected, &scratch, &target, builder);
        if result.is_err() {
            // No row was written (registration is one transaction), and we hold the lock.
            let _ = remove_tree(&target);
        }
        let _ = remove_tree(&scratch);
        result?;
        let entry = self.query(&id)?.ok_or_else(|| StoreError::NotValid {
            what: target.display().to_string(),
            store: self.root().to_path_buf(),
        })?;
        // Hashed a moment ago, while this process held its lock: no need to hash it again
        // before a build reads it.
        self.intact_lock().insert(id, entry.clone());
        Ok(Registration { entry, built: true })
    }

    fn build_in(
        &self,
        fingerprint: &Fingerprint,
        expected: Option<[u8; 32]>,
        scratch: &Path,
        target: &Path,
        builder: impl FnOnce(&Path) -> std::result::Result<(), BuildError>,
    ) -> Result<()> {
        let tree = self.stage(fingerprint, expected, scratch, target, builder)?;
        self.sync_entries()?;
        self.commit(fingerprint, &tree)
    }

    /// Steps 4 to 8 of registration (store-layout.md §6) but the sync: build, check (against
    /// `expected`, the content hash a pulled entry's description gives, when there is one),
    /// canonicalise, rename into place. Returns the entry's tree.
    fn stage(
        &self,
        fingerprint: &Fingerprint,
        expected: Option<[u8; 32]>,
        scratch: &Path,
        target: &Path,
        builder: impl FnOnce(&Path) -> std::result::Result<(), BuildError>,
    ) -> Result<Tree> {
        let name = fingerprint.name().as_str();
        let out = scratch.join("out");
        builder(&out).map_err(|source| StoreError::Build {
            name: name.to_owned(),
            source,
        })?;
        if let Fingerprint::Derived { .. } = fingerprint {
            self.failpoints.inject_nondeterminism(&out, name);
        }
        if let Fingerprint::Fixed { .. } = fingerprint {
            // A fixed-output entry is data, identified by its bytes alone: never executable.
            make_plain_file(&out, name)?;
        }
        let tree = Tree::read(&out)?;
        if let Some(expected) = expected {
            let actual = tree.content_hash();
            if actual != expected {
                return Err(StoreError::ContentMismatch {
                    name: name.to_owned(),
                    expected: to_hex(&expected),
                    actual: to_hex(&actual),
                });
            }
        }
        match fingerprint {
            Fingerprint::Fixed { sha256, .. } => {
                let actual = sha256_file(&out).map_err(io_err("hash", &out))?;
                if &actual != sha256 {
                    return Err(StoreError::HashMismatch {
                        name: name.to_owned(),
                        expected: to_hex(sha256),
                        actual: to_hex(&actual),
                    });
                }
            }
            Fingerprint::Source { tree: expected, .. } if *expected != tree.content_hash() => {
                return Err(StoreError::SourceChanged { path: out });
            }
            _ => {}
        }
        canonicalise::apply(&out, &tree).map_err(io_err("canonicalise", &out))?;
        self.failpoints.hit("before-rename");
        // A directory here without a row is a leftover of a crash; we hold the entry's lock.
        remove_tree(target).map_err(io_err("remove stale", target))?;
        fs::rename(&out, target).map_err(io_err("move into place", target))?;
        self.failpoints.hit("after-rename");
        canonicalise::seal_root(target).map_err(io_err("canonicalise", target))?;
        Ok(tree)
    }

    /// Makes everything staged so far durable: one `syncfs` for any number of entries.
    ///
    /// Group commit: builds that finish staging while another thread's `syncfs` runs wait for
    /// the next one, which covers them all, instead of each calling its own (twenty wheels
    /// fetched at once are made durable by two or three `syncfs`, not twenty).
    fn sync_entries(&self) -> Result<()> {
        let group = &self.syncs;
        let mut state = group.lock();
        state.requested += 1;
        let ticket = state.requested;
        loop {
            if state.done >= ticket {
                return Ok(());
            }
            if state.running {
                state = group
                    .finished
                    .wait(state)
                    .unwrap_or_else(|p| p.into_inner());
                continue;
            }
            // Lead a sync covering every request made so far.
            state.running = true;
            let covers = state.requested;
            drop(state);
            let result = canonicalise::sync_filesystem(&self.layout.entries_dir())
                .map_err(io_err("sync", &self.layout.entries_dir()));
            state = group.lock();
            state.running = false;
            if result.is_ok() {
                state.done = state.done.max(covers);
            }
            group.finished.notify_all();
            // On failure the others retry with a sync of their own, and see their own error.
            result?;
        }
    }

    /// Registers a staged and synced entry: its row, in one transaction.
    fn commit(&self, fingerprint: &Fingerprint, tree: &Tree) -> Result<()> {
        let name = fingerprint.name().as_str();
        let canonical = fingerprint.canonical()?;
        let id = fingerprint.id()?;
        self.db().insert(&NewEntry {
            id: &id,
            name,
            kind: fingerprint.kind(),
            fingerprint: &canonical,
            tree,
            references: &fingerprint.references(),
        })?;
        self.failpoints.hit("after-commit");
        Ok(())
    }

    /// Adds a file or directory from outside the store and returns its entry.
    ///
    /// A regular file becomes a fixed-output entry (id from its sha256 and name, so it is the same
    /// entry a download of the same bytes would give); a directory becomes a source entry (id
    /// from its content hash and name). The name defaults to the path's file name.
    pub fn add_path(&self, source: &Path, name: Option<&str>) -> Result<Registration> {
        let (fingerprint, tree) = source_fingerprint(source, name)?;
        let total = tree.nodes.len();
        self.build(&fingerprint, |out| self.copy_source(source, out, total))
            .map_err(|err| changed(err, source))
    }

    /// Copies an `add` source to `out`, hitting the `mid-copy` failpoint half-way.
    fn copy_source(
        &self,
        source: &Path,
        out: &Path,
        total: usize,
    ) -> std::result::Result<(), BuildError> {
        let mut copied = 0usize;
        copy_tree(source, out, &mut |_| {
            copied += 1;
            if copied == total / 2 {
                self.failpoints.hit("mid-copy");
            }
        })
        .map_err(Into::into)
    }

    /// Adds several files or directories, as [`Store::add_path`] does each, but makes up to
    /// [`ADD_BATCH`] new entries durable with one `syncfs` (group commit) instead of one each.
    ///
    /// Entries are registered in order; on the first error, the ones before it are registered
    /// (as adding them one by one would), the others are not, and the error is returned. An
    /// entry whose lock another process holds is added on its own after the batch before it is
    /// committed, so a batch never waits while it holds locks.
    pub fn add_paths(&self, sources: &[PathBuf], name: Option<&str>) -> Result<Vec<Registration>> {
        let mut done = Vec::with_capacity(sources.len());
        for chunk in sources.chunks(ADD_BATCH) {
            let mut staged: Vec<Staged> = Vec::new();
            for source in chunk {
                match self.stage_source(source, name) {
                    Ok(StageOutcome::Valid(entry)) => done.push(Ok(entry)),
                    Ok(StageOutcome::Staged(entry)) => {
                        staged.push(*entry);
                        done.push(Err(staged.len() - 1));
                    }
                    Ok(StageOutcome::Busy) => {
                        // Commit what this batch holds first: the other process may be waiting
                        // for one of our locks.
                        self.commit_staged(&mut staged, &mut done)?;
                        done.push(Ok(self.add_path(source, name)?));
                    }
                    Err(err) => {
                        self.commit_staged(&mut staged, &mut done)?;
                        return Err(err);
                    }
                }
            }
            self.commit_staged(&mut staged, &mut done)?;
        }
        done.into_iter()
            .map(|d| d.map_err(|_| StoreError::Root("an added entry was not committed".into())))
            .collect()
    }

    fn stage_source(&self, source: &Path, name: Option<&str>) -> Result<StageOutcome> {
        let (fingerprint, tree) = source_fingerprint(source, name)?;
        let id = fingerprint.id()?;
        if let Some(entry) = self.query(&id)? {
            return Ok(StageOutcome::Valid(Registration {
                entry,
                built: false,
            }));
        }
        let lock_path = self.layout.lock_path(&id);
        let Some(lock) = lock::try_acquire(&lock_path, LockMode::Exclusive)
            .map_err(io_err("lock", &lock_path))?
        else {
            return Ok(StageOutcome::Busy);
        };
        if let Some(entry) = self.query(&id)? {
            return Ok(StageOutcome::Valid(Registration {
                entry,
                built: false,
            }));
        }
        let scratch = self.scratch_dir(&id, fingerprint.name())?;
        let target = self.layout.entry_path(&id, fingerprint.name().as_str());
        let total = tree.nodes.len();
        match self.stage(&fingerprint, None, &scratch, &target, |out| {
            self.copy_source(source, out, total)
        }) {
            Ok(tree) => Ok(StageOutcome::Staged(Box::new(Staged {
                fingerprint,
                tree,
                scratch,
                target,
                _lock: lock,
            }))),
            Err(err) => {
                let _ = remove_tree(&target);
                let _ = remove_tree(&scratch);
                Err(changed(err, source))
            }
        }
    }

    /// One sync, then the rows of every staged entry; fills their places in `done`.
    fn commit_staged(
        &self,
        staged: &mut Vec<Staged>,
        done: &mut [std::result::Result<Registration, usize>],
    ) -> Result<()> {
        if staged.is_empty() {
            return Ok(());
        }
        let mut entries = staged.drain(..);
        let mut result = self.sync_entries();
        let mut committed = Vec::new();
        if result.is_ok() {
            for entry in entries.by_ref() {
                let outcome = self.commit(&entry.fingerprint, &entry.tree);
                let _ = remove_tree(&entry.scratch);
                if let Err(err) = outcome {
                    let _ = remove_tree(&entry.target);
                    result = Err(err);
                    break;
                }
                committed.push(entry.fingerprint.id()?);
            }
        }
        // Not committed (a failed sync or commit): leave nothing behind.
        for entry in entries {
            let _ = remove_tree(&entry.target);
            let _ = remove_tree(&entry.scratch);
        }
        result?;
        let mut committed = committed.into_iter();
        for slot in done.iter_mut() {
            if slot.is_err() {
                let Some(id) = committed.next() else { break };
                let entry = self.query(&id)?.ok_or_else(|| StoreError::NotValid {
                    what: id.to_string(),
                    store: self.root().to_path_buf(),
                })?;
                *slot = Ok(Registration { entry, built: true });
            }
        }
        Ok(())
    }

    fn scratch_dir(&self, id: &super::EntryId, name: &EntryName) -> Result<PathBuf> {
        Ok(tempfile::Builder::new()
            .prefix(&format!(
                "{}{TMP_SEPARATOR}",
                entry_dir_name(id, name.as_str())
            ))
            .rand_bytes(8)
            .tempdir_in(self.layout.tmp_dir())
            .map_err(io_err("create build directory in", &self.layout.tmp_dir()))?
            .keep())
    }
}

/// New entries [`Store::add_paths`] makes durable with one sync (and holds locks for at once).
pub const ADD_BATCH: usize = 256;

/// An entry built, canonicalised and renamed into place, waiting for its sync and row.
struct Staged {
    fingerprint: Fingerprint,
    tree: Tree,
    scratch: PathBuf,
    target: PathBuf,
    _lock: lock::HeldLock,
}

enum StageOutcome {
    Valid(Registration),
    Staged(Box<Staged>),
    /// Another process holds the entry's lock.
    Busy,
}

/// A hash mismatch while adding means the source changed under us.
fn changed(err: StoreError, source: &Path) -> StoreError {
    match err {
        StoreError::SourceChanged { .. } | StoreError::HashMismatch { .. } => {
            StoreError::SourceChanged {
                path: source.to_path_buf(),
            }
        }
        other => other,
    }
}

/// The fingerprint an `add` of `source` registers, and the source's tree.
fn source_fingerprint(source: &Path, name: Option<&str>) -> Result<(Fingerprint, Tree)> {
    let name = match name {
        Some(name) => EntryName::new(name)?,
        None => {
            let file_name = source.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
                StoreError::InvalidName(super::id::InvalidName {
                    name: source.display().to_string(),
                    reason: "the path has no file name",
                })
            })?;
            EntryName::new(file_name)?
        }
    };
    let tree = Tree::read(source)?;
    let fingerprint = if tree.is_single_file() {
        Fingerprint::Fixed {
            name,
            sha256: sha256_file(source).map_err(io_err("hash", source))?,
        }
    } else {
        Fingerprint::Source {
            name,
            tree: tree.content_hash(),
        }
    };
    Ok((fingerprint, tree))
}

fn make_plain_file(out: &Path, name: &str) -> Result<()> {
    let meta = fs::symlink_metadata(out).map_err(io_err("inspect", out))?;
    if !meta.is_file() {
        return Err(StoreError::FixedNotAFile {
            name: name.to_owned(),
        });
    }
    let mut perms = meta.permissions();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        perms.set_mode(0o644);
    }
    #[cfg(not(unix))]
    perms.set_readonly(false);
    fs::set_permissions(out, perms).map_err(io_err("set permissions of", out))
}

/// Copies a file, directory or symlink tree; `on_node` is called after each node is copied.
fn copy_tree(source: &Path, dest: &Path, on_node: &mut dyn FnMut(&Path)) -> std::io::Result<()> {
    let meta = fs::symlink_metadata(source)?;
    if meta.is_dir() {
        fs::create_dir(dest)?;
        let mut children: Vec<PathBuf> = fs::read_dir(source)?
            .map(|child| child.map(|c| c.path()))
            .collect::<std::io::Result<_>>()?;
        children.sort();
        on_node(dest);
        for child in children {
            // Names were checked to be UTF-8 when the source was hashed.
            let name = child.file_name().unwrap_or_default();
            copy_tree(&child, &dest.join(name), on_node)?;
        }
    } else if meta.file_type().is_symlink() {
        let target = fs::read_link(source)?;
        symlink(&target, dest)?;
        on_node(dest);
    } else {
        fs::copy(source, dest)?;
        on_node(dest);
    }
    Ok(())
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(windows)]
fn symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::windows::fs::symlink_file(target, link)
}
