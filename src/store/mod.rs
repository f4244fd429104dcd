//! The store: immutable, content-addressed entries under one root, a SQLite database saying which
//! are valid, per-entry locks, crash recovery, verification and garbage collection.
//! `store-layout.md` is the normative description of everything on disk.

pub mod canonicalise;
pub mod db;
pub mod failpoint;
pub mod gc;
pub mod id;
pub mod layout;
pub mod lock;
mod rebuild;
mod recovery;
mod register;
pub mod roots;
pub mod verify;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

pub use id::{EntryId, EntryKind, EntryName, Fingerprint, InvalidFingerprint};
pub use layout::Layout;
pub use rebuild::{Rebuild, CHECK_PREFIX};
pub use register::{BuildError, Registration, ADD_BATCH};

use crate::hash::tree::TreeError;
use db::{Db, DbError, EntryRow};
use failpoint::Failpoints;
use lock::{HeldLock, LockMode};

/// A store error, with the file, entry or hash a user needs to act on it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file-system operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A tree could not be read or is not allowed in the store.
    #[error(transparent)]
    Tree(#[from] TreeError),
    /// A name is not a valid entry name.
    #[error(transparent)]
    InvalidName(#[from] id::InvalidName),
    /// A fingerprint had no canonical form.
    #[error(transparent)]
    Fingerprint(#[from] crate::hash::canonical_json::CanonicalJsonError),
    /// A path that is not inside this store.
    #[error("{path} is not in the store at {store}; pass a path under {store}/entries, an id, or use --store")]
    NotInStore { path: String, store: PathBuf },
    /// An entry that is not valid (not registered).
    #[error("{what} is not a valid entry of the store at {store}")]
    NotValid { what: String, store: PathBuf },
    /// A fixed-output build produced other bytes than declared.
    #[error("hash mismatch for {name}: expected sha256 {expected}, got {actual}; the entry was not added")]
    HashMismatch {
        name: String,
        expected: String,
        actual: String,
    },
    /// An imported tree whose content hash is not the one its description declares.
    #[error("content hash mismatch for {name}: expected {expected}, got {actual}; the entry was not added")]
    ContentMismatch {
        name: String,
        expected: String,
        actual: String,
    },
    /// A fixed-output build produced something other than one regular file.
    #[error("{name} must be a single regular file (it is declared by its sha256)")]
    FixedNotAFile { name: String },
    /// The source of an `add` changed between hashing and copying.
    #[error("{path} changed while it was being added; try again when nothing writes to it")]
    SourceChanged { path: PathBuf },
    /// A builder failed.
    #[error("building {name} failed")]
    Build {
        name: String,
        #[source]
        source: BuildError,
    },
    /// A gc root problem.
    #[error("{0}")]
    Root(String),
    /// A registered entry whose files are not what its manifest records (or whose directory is
    /// gone): it is not used, copied out or pushed.
    #[error("{} is damaged ({problem}); it was not used. Run `pystore verify --repair` to invalidate it and everything built from it, then run this command again to rebuild or refetch them", path.display())]
    Damaged { path: PathBuf, problem: String },
    /// The database cannot be read as one.
    #[error("the store database {} is damaged ({cause}). pystore cannot rebuild it: entries' fingerprints and references are kept only there. Move the store aside (`mv {root} {root}.damaged`) and realise again (or restore {} from a backup)", path.display(), path.display(), root = root.display())]
    DatabaseDamaged {
        path: PathBuf,
        root: PathBuf,
        cause: String,
    },
    /// The database is gone while entries remain: gc would delete them all.
    #[error("{0}")]
    DatabaseLost(String),
    /// Several damaged entries, each on its own line.
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    DamagedSeveral(Vec<StoreError>),
}

/// Whether the database file (or its write-ahead log) holds anything: a missing or zero-byte
/// file is a database SQLite would silently create afresh.
fn database_has_content(db_path: &Path) -> bool {
    let size = |path: &Path| std::fs::metadata(path).map_or(0, |m| m.len());
    let mut wal = db_path.as_os_str().to_owned();
    wal.push("-wal");
    size(db_path) > 0 || size(Path::new(&wal)) > 0
}

/// A database SQLite cannot read as one gets a message that says what to do.
fn damaged_database(layout: &Layout, err: DbError) -> StoreError {
    if db::is_corrupt(&err) {
        StoreError::DatabaseDamaged {
            path: layout.db_path(),
            root: layout.root().to_path_buf(),
            cause: err.to_string(),
        }
    } else {
        StoreError::Db(err)
    }
}

/// A database with no entry beside entry directories (after crash recovery, which removes the
/// leftovers of interrupted builds): the database was lost (deleted, emptied, replaced), every
/// entry has become unregistered, and gc would delete them all.
fn lost_database(layout: &Layout, db: &Db) -> Result<Option<String>> {
    if !db.is_empty()? {
        return Ok(None);
    }
    let entries = layout.entries_dir();
    let count = std::fs::read_dir(&entries)
        .map_err(io_err("list", &entries))?
        .filter(|child| child.is_ok())
        .count();
    if count == 0 {
        return Ok(None);
    }
    let root = layout.root().display();
    Ok(Some(format!(
        "the store database {} has no entries, but {} holds {count} entry {}: the database \
         was lost or emptied, and they are no longer registered. pystore cannot rebuild the \
         database from them (entries' fingerprints and references were kept only there), and \
         `pystore gc` refuses to run (it would delete them all). Restore the database from a \
         backup, or move the store aside (`mv {root} {root}.old`) and realise again",
        layout.db_path().display(),
        entries.display(),
        if count == 1 {
            "directory"
        } else {
            "directories"
        },
    )))
}

/// Errors that mean "this process may not write here".
fn cannot_write(err: &std::io::Error) -> bool {
    err.kind() == std::io::ErrorKind::PermissionDenied || err.raw_os_error() == Some(30)
    // EROFS
}

fn db_cannot_write(err: &DbError) -> bool {
    matches!(
        err,
        DbError::Sqlite {
            source: rusqlite::Error::SqliteFailure(e, _),
            ..
        } if matches!(e.code, rusqlite::ErrorCode::ReadOnly | rusqlite::ErrorCode::CannotOpen | rusqlite::ErrorCode::PermissionDenied)
    )
}

/// Shorthand for results of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

pub(crate) fn io_err<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// A valid entry.
#[derive(Clone, Debug)]
pub struct EntryInfo {
    /// Entry id.
    pub id: EntryId,
    /// Entry name.
    pub name: String,
    /// How it came to be.
    pub kind: EntryKind,
    /// The canonical JSON its id was computed from.
    pub fingerprint: String,
    /// Content hash of its canonical tree.
    pub content_hash: [u8; 32],
    /// Bytes of regular files.
    pub size: u64,
    /// Nodes in its manifest (files, directories, symlinks).
    pub nodes: u64,
    /// Its path: `<root>/entries/<id>-<name>`.
    pub path: PathBuf,
    pub(crate) rowid: i64,
}

/// The entries this process found intact (or registered itself), by id.
type IntactEntries = std::collections::HashMap<EntryId, EntryInfo>;

/// An open store.
pub struct Store {
    layout: Layout,
    db: Mutex<Db>,
    failpoints: Failpoints,
    /// Shared for as long as the store is open; gc converts it to exclusive.
    gc_lock: Option<HeldLock>,
    /// Entries this process has re-hashed and found intact ([`Store::check_intact`]): each is
    /// read once per process, however many builds use it.
    intact: Mutex<IntactEntries>,
    /// Group commit of concurrent registrations ([`Store::sync_entries`]).
    syncs: register::SyncGroup,
    /// Set when the database has no entry while entries/ holds directories.
    lost_database: Option<String>,
    /// Opened with [`Store::open_read_only`].
    read_only: bool,
}

impl Store {
    /// Opens the store at `root`, creating it if needed, and cleans up after crashed processes.
    ///
    /// Waits while a garbage collection runs on the same store.
    pub fn open(root: &Path) -> Result<Store> {
        let root = std::path::absolute(root).map_err(io_err("resolve store root", root))?;
        let layout = Layout::new(root);
        for dir in [
            layout.root().to_path_buf(),
            layout.entries_dir(),
            layout.tmp_dir(),
            layout.locks_dir(),
            layout.roots_dir(),
        ] {
            std::fs::create_dir_all(&dir).map_err(io_err("create store directory", &dir))?;
        }
        let gc_lock_path = layout.gc_lock_path();
        let gc_lock = lock::acquire(&gc_lock_path, LockMode::Shared, || {
            tracing::info!(
                "waiting for a garbage collection of {} to finish",
                layout.root().display()
            )
        })
        .map_err(io_err("lock", &gc_lock_path))?;
        let db_path = layout.db_path();
        let db = Db::open(&db_path).map_err(|err| damaged_database(&layout, err))?;
        let mut store = Store {
            layout,
            db: Mutex::new(db),
            failpoints: Failpoints::from_env(),
            gc_lock: Some(gc_lock),
            intact: Mutex::default(),
            syncs: register::SyncGroup::default(),
            lost_database: None,
            read_only: false,
        };
        recovery::recover(&store)?;
        let lost = lost_database(&store.layout, &store.db())?;
        store.lost_database = lost;
        Ok(store)
    }

    /// Opens the store at `root` for reading only, for commands that change nothing (`verify`,
    /// `path-info`, `root list`, `gc --dry-run`) on a store this process cannot write: nothing
    /// is created, migrated, recovered or written, and the store-wide lock is taken shared
    /// through a read-only descriptor when its file exists.
    pub fn open_read_only(root: &Path) -> Result<Store> {
        let root = std::path::absolute(root).map_err(io_err("resolve store root", root))?;
        let layout = Layout::new(root);
        let db_path = layout.db_path();
        if !database_has_content(&db_path) {
            return Err(StoreError::NotValid {
                what: format!("{} (no store database)", db_path.display()),
                store: layout.root().to_path_buf(),
            });
        }
        let gc_lock_path = layout.gc_lock_path();
        let gc_lock = lock::acquire_read_only(&gc_lock_path, LockMode::Shared, || {
            tracing::info!(
                "waiting for a garbage collection of {} to finish",
                layout.root().display()
            )
        })
        .map_err(io_err("lock", &gc_lock_path))?;
        let db = Db::open_read_only(&db_path).map_err(|err| damaged_database(&layout, err))?;
        let lost_database = lost_database(&layout, &db)?;
        Ok(Store {
            layout,
            db: Mutex::new(db),
            failpoints: Failpoints::default(),
            gc_lock,
            intact: Mutex::default(),
            syncs: register::SyncGroup::default(),
            lost_database,
            read_only: true,
        })
    }

    /// Opens the store at `root` for a command that only reads it: as [`Store::open`] when
    /// this process may write it, else read-only ([`Store::open_read_only`]).
    pub fn open_for_reading(root: &Path) -> Result<Store> {
        match Store::open(root) {
            Err(StoreError::Io { source, .. }) if cannot_write(&source) => {
                Store::open_read_only(root)
            }
            Err(StoreError::Db(err)) if db_cannot_write(&err) => Store::open_read_only(root),
            other => other,
        }
    }

    /// Why the store's entries are unregistered, when the database has no entry while
    /// entries/ holds directories (see [`StoreError::DatabaseLost`]).
    pub fn lost_database(&self) -> Option<&str> {
        self.lost_database.as_deref()
    }

    /// Whether the store was opened read-only.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The store's layout (its root and sub-directories).
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The store root.
    pub fn root(&self) -> &Path {
        self.layout.root()
    }

    pub(crate) fn db(&self) -> MutexGuard<'_, Db> {
        // A panic while holding the lock leaves nothing half-done in SQLite (transactions roll
        // back), so a poisoned mutex is still usable.
        self.db
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn info(&self, row: EntryRow) -> EntryInfo {
        EntryInfo {
            path: self.layout.entry_path(&row.id, &row.name),
            id: row.id,
            name: row.name,
            kind: row.kind,
            fingerprint: row.fingerprint,
            content_hash: row.content_hash,
            size: row.size,
            nodes: row.nodes,
            rowid: row.rowid,
        }
    }

    /// The entry with `id`, if valid.
    pub fn query(&self, id: &EntryId) -> Result<Option<EntryInfo>> {
        Ok(self.db().lookup(id)?.map(|row| self.info(row)))
    }

    /// Every valid entry, ordered by id.
    pub fn entries(&self) -> Result<Vec<EntryInfo>> {
        Ok(self
            .db()
            .all_entries()?
            .into_iter()
            .map(|row| self.info(row))
            .collect())
    }

    /// The direct references of `entry`, ordered by id.
    pub fn references(&self, entry: &EntryInfo) -> Result<Vec<EntryInfo>> {
        Ok(self
            .db()
            .references_of(entry.rowid)?
            .into_iter()
            .map(|row| self.info(row))
            .collect())
    }

    /// The closure of `entries`: them and everything they refer to, transitively; sorted by path.
    pub fn closure(&self, entries: &[EntryInfo]) -> Result<Vec<EntryInfo>> {
        let mut seen: std::collections::BTreeMap<PathBuf, EntryInfo> = Default::default();
        let mut queue: Vec<EntryInfo> = entries.to_vec();
        while let Some(entry) = queue.pop() {
            if seen.contains_key(&entry.path) {
                continue;
            }
            queue.extend(self.references(&entry)?);
            seen.insert(entry.path.clone(), entry);
        }
        Ok(seen.into_values().collect())
    }

    /// The manifest (canonical tree) recorded for `entry`.
    pub fn manifest(&self, entry: &EntryInfo) -> Result<crate::hash::tree::Tree> {
        Ok(self.db().manifest(entry.rowid)?)
    }

    /// Finds the valid entry a user means by `arg`: a store path (or a path inside an entry, or a
    /// symlink to one such as a gc root), an id, or `<id>-<name>`.
    pub fn resolve(&self, arg: &str) -> Result<EntryInfo> {
        let not_valid = |what: String| StoreError::NotValid {
            what,
            store: self.root().to_path_buf(),
        };
        let id = if let Some(id) = EntryId::parse(arg) {
            id
        } else if let Some((id, _)) = layout::parse_entry_dir_name(arg) {
            id
        } else {
            self.id_of_path(Path::new(arg))?
        };
        self.query(&id)?.ok_or_else(|| not_valid(arg.to_owned()))
    }

    fn id_of_path(&self, path: &Path) -> Result<EntryId> {
        let not_in_store = || StoreError::NotInStore {
            path: path.display().to_string(),
            store: self.root().to_path_buf(),
        };
        let entries = self.layout.entries_dir();
        let absolute = std::path::absolute(path).map_err(io_err("resolve", path))?;
        let relative = match absolute.strip_prefix(&entries) {
            Ok(relative) => relative.to_path_buf(),
            Err(_) => {
                // Through symlinks (a gc root, a symlinked store root).
                let real = std::fs::canonicalize(path).map_err(|_| not_in_store())?;
                let real_entries = std::fs::canonicalize(&entries).map_err(|_| not_in_store())?;
                real.strip_prefix(&real_entries)
                    .map_err(|_| not_in_store())?
                    .to_path_buf()
            }
        };
        let first = relative.components().next().ok_or_else(not_in_store)?;
        let first = first.as_os_str().to_str().ok_or_else(not_in_store)?;
        let (id, _) = layout::parse_entry_dir_name(first).ok_or_else(not_in_store)?;
        Ok(id)
    }
}
