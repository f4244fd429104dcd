//! The SQLite database: which entries are valid, their manifests and references.
//!
//! WAL journal, `synchronous = NORMAL` (entry files are synced before their row is written, so a
//! commit lost to power failure only leaves an unregistered directory that is rebuilt or
//! collected), `BEGIN IMMEDIATE` for every write, and a long busy timeout instead of "database is
//! busy" errors.

use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::id::{EntryId, EntryKind};
use crate::hash::tree::{Node, NodeKind, Tree};

/// The schema version this build writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 1;

/// How long a writer waits for another writer before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(600);

/// Migrations: `MIGRATIONS[n]` takes the schema from version `n` to `n + 1`.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE entries (
    rowid        INTEGER PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('fixed', 'source', 'derived')),
    fingerprint  TEXT NOT NULL,
    content_hash BLOB NOT NULL CHECK (length(content_hash) = 32),
    size         INTEGER NOT NULL,
    nodes        INTEGER NOT NULL
) STRICT;
CREATE TABLE files (
    entry  INTEGER NOT NULL REFERENCES entries(rowid) ON DELETE CASCADE,
    path   TEXT NOT NULL,
    type   TEXT NOT NULL CHECK (type IN ('d', 'f', 'x', 'l')),
    size   INTEGER,
    blake3 BLOB,
    target TEXT,
    PRIMARY KEY (entry, path)
) STRICT, WITHOUT ROWID;
CREATE TABLE refs (
    referrer  INTEGER NOT NULL REFERENCES entries(rowid) ON DELETE CASCADE,
    reference INTEGER NOT NULL REFERENCES entries(rowid) DEFERRABLE INITIALLY DEFERRED,
    PRIMARY KEY (referrer, reference)
) STRICT, WITHOUT ROWID;
CREATE INDEX refs_by_reference ON refs(reference);
"#];

/// A database error with what we were doing.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// SQLite failed.
    #[error("store database {what}: {source}")]
    Sqlite {
        what: &'static str,
        source: rusqlite::Error,
    },
    /// The database was written by a newer pystore.
    #[error("the store database has schema version {found}, but this pystore knows only up to {SCHEMA_VERSION}; upgrade pystore or use another store (--store)")]
    SchemaTooNew { found: i64 },
    /// A row that cannot be read back (the database was edited by hand or damaged).
    #[error("the store database has a malformed row for {what}; run `pystore verify`")]
    Malformed { what: String },
    /// A reference to an entry that is not registered.
    #[error("entry {referrer} refers to {reference}, which is not in the store")]
    MissingReference {
        referrer: EntryId,
        reference: EntryId,
    },
}

trait Context<T> {
    fn context(self, what: &'static str) -> Result<T, DbError>;
}

impl<T> Context<T> for Result<T, rusqlite::Error> {
    fn context(self, what: &'static str) -> Result<T, DbError> {
        self.map_err(|source| DbError::Sqlite { what, source })
    }
}

/// One entry's row.
#[derive(Clone, Debug)]
pub struct EntryRow {
    /// SQLite row id (internal).
    pub rowid: i64,
    /// Entry id.
    pub id: EntryId,
    /// Entry name.
    pub name: String,
    /// How it came to be.
    pub kind: EntryKind,
    /// Canonical JSON the id was computed from.
    pub fingerprint: String,
    /// Content hash of its tree.
    pub content_hash: [u8; 32],
    /// Bytes of regular files.
    pub size: u64,
    /// Number of nodes in its manifest.
    pub nodes: u64,
}

/// What registration writes.
pub struct NewEntry<'a> {
    /// Entry id.
    pub id: &'a EntryId,
    /// Entry name.
    pub name: &'a str,
    /// How it came to be.
    pub kind: EntryKind,
    /// Canonical JSON of the fingerprint.
    pub fingerprint: &'a str,
    /// The canonical tree.
    pub tree: &'a Tree,
    /// The entries it was built from.
    pub references: &'a [EntryId],
}

/// An open database connection.
pub struct Db {
    conn: Connection,
}

const ENTRY_COLUMNS: &str = "rowid, id, name, kind, fingerprint, content_hash, size, nodes";

fn read_entry(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<EntryRow, DbError>> {
    let id: String = row.get(1)?;
    let kind: String = row.get(3)?;
    let hash: Vec<u8> = row.get(5)?;
    let malformed = || DbError::Malformed {
        what: format!("entry {id:?}"),
    };
    Ok((|| {
        Ok(EntryRow {
            rowid: row.get(0).map_err(|_| malformed())?,
            id: EntryId::parse(&id).ok_or_else(malformed)?,
            name: row.get(2).map_err(|_| malformed())?,
            kind: EntryKind::parse(&kind).ok_or_else(malformed)?,
            fingerprint: row.get(4).map_err(|_| malformed())?,
            content_hash: hash.try_into().map_err(|_| malformed())?,
            size: row.get::<_, i64>(6).map_err(|_| malformed())? as u64,
            nodes: row.get::<_, i64>(7).map_err(|_| malformed())? as u64,
        })
    })())
}

/// Switches the database to WAL mode unless it is already. Switching needs an exclusive lock,
/// and SQLite answers `SQLITE_BUSY` at once, without the busy handler, when processes opening a
/// new store at the same moment contend for it (waiting could deadlock); so it is retried here,
/// with short sleeps, for as long as the busy timeout.
fn enable_wal(conn: &Connection) -> Result<(), rusqlite::Error> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        let mode: Result<String, _> = conn.pragma_query_value(None, "journal_mode", |r| r.get(0));
        let attempt = match mode {
            Ok(mode) if mode.eq_ignore_ascii_case("wal") => return Ok(()),
            Ok(_) => conn.pragma_update(None, "journal_mode", "WAL"),
            Err(err) => Err(err),
        };
        match attempt {
            Ok(()) => return Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5 + fastrand::u64(0..20)));
            }
            Err(err) => return Err(err),
        }
    }
}

/// `path` escaped for an SQLite URI (`%`, `?` and `#` would end or change it).
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3f"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out
}

/// Whether `err` says the file is not an SQLite database or is corrupt.
pub fn is_corrupt(err: &DbError) -> bool {
    matches!(
        err,
        DbError::Sqlite {
            source: rusqlite::Error::SqliteFailure(e, _),
            ..
        } if matches!(e.code, rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
    )
}

impl Db {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Db, DbError> {
        let conn = Connection::open(path).context("open")?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .context("set busy timeout")?;
        enable_wal(&conn).context("enable WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .context("set synchronous")?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .context("enable foreign keys")?;
        let mut db = Db { conn };
        db.migrate()?;
        Ok(db)
    }

    /// Opens the database at `path` for reading only: no migration, no WAL switch, nothing
    /// written (a store the user cannot write, or on a read-only file system). When SQLite
    /// cannot set up its shared memory beside the file (the directory is not writable), the
    /// database is opened as immutable: no other process can be writing it then either.
    pub fn open_read_only(path: &Path) -> Result<Db, DbError> {
        use rusqlite::OpenFlags;
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let try_open = |conn: Connection| -> Result<Db, DbError> {
            conn.busy_timeout(BUSY_TIMEOUT)
                .context("set busy timeout")?;
            let version: i64 = conn
                .pragma_query_value(None, "user_version", |row| row.get(0))
                .context("read schema version")?;
            if version > SCHEMA_VERSION {
                return Err(DbError::SchemaTooNew { found: version });
            }
            if version < SCHEMA_VERSION {
                return Err(DbError::Malformed {
                    what: format!("schema version {version} (it needs a migration, which a read-only store cannot have)"),
                });
            }
            Ok(Db { conn })
        };
        let first = Connection::open_with_flags(path, flags)
            .context("open")
            .and_then(try_open);
        match first {
            Ok(db) => Ok(db),
            Err(DbError::Sqlite { .. }) => {
                let uri = format!("file:{}?immutable=1", uri_path(path));
                let conn = Connection::open_with_flags(uri, flags | OpenFlags::SQLITE_OPEN_URI)
                    .context("open read-only")?;
                try_open(conn)
            }
            Err(err) => Err(err),
        }
    }

    /// Whether the database has no entry at all.
    pub fn is_empty(&self) -> Result<bool, DbError> {
        let count: i64 = self
            .conn
            .query_row("SELECT count(*) FROM entries", [], |row| row.get(0))
            .context("count entries")?;
        Ok(count == 0)
    }

    fn migrate(&mut self) -> Result<(), DbError> {
        let version = |conn: &Connection| -> Result<i64, DbError> {
            conn.pragma_query_value(None, "user_version", |row| row.get(0))
                .context("read schema version")
        };
        if version(&self.conn)? == SCHEMA_VERSION {
            return Ok(());
        }
        // Another process may be migrating too: decide inside the write transaction.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .context("begin migration")?;
        let found = version(&tx)?;
        if found > SCHEMA_VERSION {
            return Err(DbError::SchemaTooNew { found });
        }
        for migration in &MIGRATIONS[found as usize..] {
            tx.execute_batch(migration).context("migrate schema")?;
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .context("write schema version")?;
        tx.commit().context("commit migration")
    }

    /// The row of entry `id`, if it is valid.
    pub fn lookup(&self, id: &EntryId) -> Result<Option<EntryRow>, DbError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {ENTRY_COLUMNS} FROM entries WHERE id = ?1"
            ))
            .context("look up an entry")?;
        stmt.query_row([id.as_str()], read_entry)
            .optional()
            .context("look up an entry")?
            .transpose()
    }

    /// Every valid entry, ordered by id.
    pub fn all_entries(&self) -> Result<Vec<EntryRow>, DbError> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {ENTRY_COLUMNS} FROM entries ORDER BY id"))
            .context("list entries")?;
        let rows = stmt.query_map([], read_entry).context("list entries")?;
        rows.map(|row| row.context("list entries")?).collect()
    }

    /// Every reference as (referrer rowid, reference rowid).
    pub fn all_references(&self) -> Result<Vec<(i64, i64)>, DbError> {
        let mut stmt = self
            .conn
            .prepare("SELECT referrer, reference FROM refs")
            .context("list references")?;
        let rows = stmt
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .context("list references")?;
        rows.map(|row| row.context("list references")).collect()
    }

    /// The direct references of the entry with `rowid`, ordered by id.
    pub fn references_of(&self, rowid: i64) -> Result<Vec<EntryRow>, DbError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {} FROM refs JOIN entries e ON e.rowid = refs.reference \
                 WHERE refs.referrer = ?1 ORDER BY e.id",
                ENTRY_COLUMNS
                    .split(", ")
                    .map(|c| format!("e.{c}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .context("list references")?;
        let rows = stmt
            .query_map([rowid], read_entry)
            .context("list references")?;
        rows.map(|row| row.context("list references")?).collect()
    }

    /// The manifest of the entry with `rowid`.
    pub fn manifest(&self, rowid: i64) -> Result<Tree, DbError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT path, type, size, blake3, target FROM files WHERE entry = ?1")
            .context("read a manifest")?;
        let rows = stmt
            .query_map([rowid], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, Option<i64>>(2)?,
                    row.get::<_, Option<Vec<u8>>>(3)?,
                    row.get::<_, Option<String>>(4)?,
                ))
            })
            .context("read a manifest")?;
        let mut nodes = Vec::new();
        for row in rows {
            let (path, kind, size, blake3, target) = row.context("read a manifest")?;
            let malformed = || DbError::Malformed {
                what: format!("file {path:?} of entry row {rowid}"),
            };
            let kind = match (kind.as_str(), size, blake3, target) {
                ("d", None, None, None) => NodeKind::Directory,
                ("f" | "x", Some(size), Some(hash), None) => NodeKind::File {
                    executable: kind == "x",
                    size: size as u64,
                    blake3: hash.try_into().map_err(|_| malformed())?,
                },
                ("l", None, None, Some(target)) => NodeKind::Symlink { target },
                _ => return Err(malformed()),
            };
            nodes.push(Node { path, kind });
        }
        // SQLite orders TEXT with memcmp, but sort here so the order never depends on a query plan.
        nodes.sort_unstable_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
        Ok(Tree { nodes })
    }

    /// Registers an entry: its row, manifest and references, in one transaction.
    pub fn insert(&mut self, entry: &NewEntry<'_>) -> Result<(), DbError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .context("begin registration")?;
        tx.execute(
            "INSERT INTO entries (id, name, kind, fingerprint, content_hash, size, nodes) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                entry.id.as_str(),
                entry.name,
                entry.kind.as_str(),
                entry.fingerprint,
                entry.tree.content_hash().as_slice(),
                entry.tree.size() as i64,
                entry.tree.nodes.len() as i64,
            ],
        )
        .context("insert an entry")?;
        let rowid = tx.last_insert_rowid();
        {
            let mut insert_file = tx
                .prepare_cached(
                    "INSERT INTO files (entry, path, type, size, blake3, target) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .context("insert a manifest")?;
            for node in &entry.tree.nodes {
                let code = node.kind.type_code().to_string();
                let (size, hash, target) = match &node.kind {
                    NodeKind::Directory => (None, None, None),
                    NodeKind::File { size, blake3, .. } => {
                        (Some(*size as i64), Some(blake3.as_slice()), None)
                    }
                    NodeKind::Symlink { target } => (None, None, Some(target.as_str())),
                };
                insert_file
                    .execute(params![rowid, node.path, code, size, hash, target])
                    .context("insert a manifest")?;
            }
            let mut insert_ref = tx
                .prepare_cached(
                    "INSERT INTO refs (referrer, reference) SELECT ?1, rowid FROM entries WHERE id = ?2",
                )
                .context("insert references")?;
            for reference in entry.references {
                if insert_ref
                    .execute(params![rowid, reference.as_str()])
                    .context("insert references")?
                    == 0
                {
                    return Err(DbError::MissingReference {
                        referrer: entry.id.clone(),
                        reference: reference.clone(),
                    });
                }
            }
        }
        tx.commit().context("commit registration")
    }

    /// Deletes the entries with these rowids (and their manifests and references) in one
    /// transaction. Fails, deleting nothing, if a remaining entry still refers to one of them.
    pub fn delete(&mut self, rowids: &[i64]) -> Result<(), DbError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .context("begin deletion")?;
        {
            let mut stmt = tx
                .prepare("DELETE FROM entries WHERE rowid = ?1")
                .context("delete entries")?;
            for rowid in rowids {
                stmt.execute([rowid]).context("delete entries")?;
            }
        }
        tx.commit().context("commit deletion")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Many processes opening a new store at once all get to WAL mode: the switch is retried
    /// while another connection holds the lock it needs.
    #[test]
    fn concurrent_opens_of_a_new_database_all_succeed() {
        for round in 0..10 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("db.sqlite");
            let barrier = std::sync::Barrier::new(12);
            let results: Vec<Result<(), String>> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..12)
                    .map(|_| {
                        scope.spawn(|| {
                            barrier.wait();
                            Db::open(&path).map(|_| ()).map_err(|e| e.to_string())
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            for result in results {
                assert_eq!(result, Ok(()), "round {round}");
            }
        }
    }
}
