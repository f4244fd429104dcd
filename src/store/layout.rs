//! Where things live under a store root.

use std::path::{Path, PathBuf};

use super::id::{EntryId, EntryName};

/// Sub-directory holding the entries.
pub const ENTRIES_DIR: &str = "entries";
/// Sub-directory where entries are built before registration.
pub const TMP_DIR: &str = "tmp";
/// Sub-directory of per-entry lock files.
pub const LOCKS_DIR: &str = "locks";
/// Sub-directory of caches that speed builders up without changing what they make.
pub const CACHE_DIR: &str = "cache";
/// Sub-directory of gc roots (symlinks to entries).
pub const ROOTS_DIR: &str = "roots";
/// The SQLite database.
pub const DB_FILE: &str = "db.sqlite";
/// The store-wide lock: shared by every process using the store, exclusive for gc.
pub const GC_LOCK_FILE: &str = "gc.lock";
/// Separates an entry's directory name from the random suffix of its build directory in tmp/.
pub const TMP_SEPARATOR: char = '~';

/// Paths under one store root.
#[derive(Clone, Debug)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// A layout rooted at `root` (which should be absolute).
    pub fn new(root: PathBuf) -> Layout {
        Layout { root }
    }

    /// The store root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/entries`.
    pub fn entries_dir(&self) -> PathBuf {
        self.root.join(ENTRIES_DIR)
    }

    /// `<root>/tmp`.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join(TMP_DIR)
    }

    /// `<root>/locks`.
    pub fn locks_dir(&self) -> PathBuf {
        self.root.join(LOCKS_DIR)
    }

    /// `<root>/cache`.
    pub fn cache_dir(&self) -> PathBuf {
        self.root.join(CACHE_DIR)
    }

    /// `<root>/roots`.
    pub fn roots_dir(&self) -> PathBuf {
        self.root.join(ROOTS_DIR)
    }

    /// `<root>/db.sqlite`.
    pub fn db_path(&self) -> PathBuf {
        self.root.join(DB_FILE)
    }

    /// `<root>/gc.lock`.
    pub fn gc_lock_path(&self) -> PathBuf {
        self.root.join(GC_LOCK_FILE)
    }

    /// `<root>/entries/<id>-<name>`.
    pub fn entry_path(&self, id: &EntryId, name: &str) -> PathBuf {
        self.entries_dir().join(entry_dir_name(id, name))
    }

    /// `<root>/locks/<id>.lock`.
    pub fn lock_path(&self, id: &EntryId) -> PathBuf {
        self.locks_dir().join(format!("{id}.lock"))
    }
}

/// `<id>-<name>`, the directory name of an entry.
pub fn entry_dir_name(id: &EntryId, name: &str) -> String {
    format!("{id}-{name}")
}

/// Splits `<id>-<name>` into its parts, validating both.
pub fn parse_entry_dir_name(text: &str) -> Option<(EntryId, EntryName)> {
    let (id, name) = text.split_at_checked(super::id::ID_LEN)?;
    let name = name.strip_prefix('-')?;
    Some((EntryId::parse(id)?, EntryName::new(name).ok()?))
}

/// The default store root: `$XDG_DATA_HOME/pystore`, else `$HOME/.local/share/pystore`.
pub fn default_root() -> Option<PathBuf> {
    let data_home = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share"))
        })?;
    Some(data_home.join("pystore"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_dir_names_round_trip() {
        let id = EntryId::parse("0123456789abcdfghijklmnpqrsvwxyz").unwrap();
        let name = entry_dir_name(&id, "lxml-6.1.3");
        assert_eq!(name, "0123456789abcdfghijklmnpqrsvwxyz-lxml-6.1.3");
        let (pid, pname) = parse_entry_dir_name(&name).unwrap();
        assert_eq!((pid, pname.as_str()), (id, "lxml-6.1.3"));
        assert!(parse_entry_dir_name("short-name").is_none());
        assert!(parse_entry_dir_name("0123456789abcdfghijklmnpqrsvwxyz_x").is_none());
    }
}
