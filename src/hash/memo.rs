//! The blake3 digests of files this process has hashed, by the state of the file they were
//! hashed in, so that a file read again (an entry's files hashed by its builder and then by the
//! store, a bundle hashed when it is registered and again when it is zipped) is not read again.
//!
//! A state is the device, inode, size, modification time and change time. Any write changes
//! the modification and change times, and any `chmod` or new hard link the change time (which
//! the kernel sets, not the user), so an unchanged state means unchanged bytes: the argument of
//! the store's intact stamps (`store-layout.md` §10a), here only for the life of one process.
//! A digest is remembered only when the file's state was the same after it was read as before,
//! so a file written while it was hashed is hashed again next time.

use std::collections::HashMap;
use std::fs;
use std::sync::{Mutex, OnceLock};

/// What identifies a file's contents for as long as it is not changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileState {
    dev: u64,
    ino: u64,
    size: u64,
    modified: (i64, i64),
    changed: (i64, i64),
}

impl FileState {
    /// The state of a file on device `dev` with inode `ino`, `size` bytes, and modification and
    /// change times `modified` and `changed` (seconds and nanoseconds since the epoch): for a
    /// caller that keeps only these fields of many `lstat`s.
    pub fn new(dev: u64, ino: u64, size: u64, modified: (i64, i64), changed: (i64, i64)) -> Self {
        FileState {
            dev,
            ino,
            size,
            modified,
            changed,
        }
    }

    /// The state `meta` describes; `None` where the platform gives no inode.
    #[cfg(unix)]
    pub fn of(meta: &fs::Metadata) -> Option<FileState> {
        use std::os::unix::fs::MetadataExt;
        Some(FileState::new(
            meta.dev(),
            meta.ino(),
            meta.size(),
            (meta.mtime(), meta.mtime_nsec()),
            (meta.ctime(), meta.ctime_nsec()),
        ))
    }

    /// The state `meta` describes; `None` where the platform gives no inode.
    #[cfg(not(unix))]
    pub fn of(_meta: &fs::Metadata) -> Option<FileState> {
        None
    }
}

fn table() -> &'static Mutex<HashMap<FileState, [u8; 32]>> {
    static TABLE: OnceLock<Mutex<HashMap<FileState, [u8; 32]>>> = OnceLock::new();
    TABLE.get_or_init(Mutex::default)
}

/// The digest this process knows for a file in `state` (from an `lstat` of it), if it hashed
/// or linked one in exactly that state: for a caller that has stat'ed a whole tree and wants to
/// know whether its files are still the bytes they were.
pub fn known_digest(state: &FileState) -> Option<[u8; 32]> {
    // The table only ever gains complete pairs: a poisoned lock still holds a valid table.
    let table = table().lock().unwrap_or_else(|p| p.into_inner());
    table.get(state).copied()
}

/// Remembers `digest` for a file in `state`, whose bytes are known to have it: hashed here, or
/// known by other means than reading them (an intact stamp that still matches, the bytes just
/// written). Later hard links of it then carry the digest over ([`hard_link_keeping_digest`]).
pub fn remember_digest(state: FileState, digest: [u8; 32]) {
    let mut table = table().lock().unwrap_or_else(|p| p.into_inner());
    table.insert(state, digest);
}

/// Remembers, for the file at `path` as it is now, the digest `digest` that its bytes are known
/// to have: for a caller that changed only the file's metadata (a mode, the mtime, a new hard
/// link), which changes its change time and so would otherwise make the next hash read it again.
pub fn remember_current(path: &std::path::Path, digest: [u8; 32]) {
    if let Some(state) = fs::symlink_metadata(path)
        .ok()
        .as_ref()
        .and_then(FileState::of)
    {
        remember_digest(state, digest);
    }
}

/// Hard-links `source` at `target` (`fs_err::hard_link`, whose error names both paths), and
/// when this process knows the digest of `source` as it was just before, remembers it for the
/// file's state after the link, which differs only in its change time (and link count). The
/// file's bytes are never read: only its states before and after, a few microseconds apart, are
/// compared, so a write in between (which moves the modification time) is not carried over.
pub fn hard_link_keeping_digest(
    source: &std::path::Path,
    target: &std::path::Path,
) -> std::io::Result<()> {
    let before = fs::symlink_metadata(source)
        .ok()
        .as_ref()
        .and_then(FileState::of);
    fs_err::hard_link(source, target)?;
    let Some((before, digest)) = before.and_then(|state| Some((state, known_digest(&state)?)))
    else {
        return Ok(());
    };
    if let Some(after) = fs::symlink_metadata(target)
        .ok()
        .as_ref()
        .and_then(FileState::of)
    {
        let same_file = FileState {
            changed: before.changed,
            ..after
        } == before;
        if same_file {
            remember_digest(after, digest);
        }
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn state(path: &std::path::Path) -> FileState {
        FileState::of(&fs::symlink_metadata(path).unwrap()).unwrap()
    }

    #[test]
    fn a_link_keeps_a_known_digest_and_an_unknown_one_stays_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let (known, unknown) = (dir.path().join("known"), dir.path().join("unknown"));
        fs::write(&known, b"hashed before").unwrap();
        fs::write(&unknown, b"never hashed").unwrap();
        let digest = [7u8; 32];
        remember_digest(state(&known), digest);
        let (linked, linked_unknown) = (dir.path().join("linked"), dir.path().join("linked2"));
        hard_link_keeping_digest(&known, &linked).unwrap();
        hard_link_keeping_digest(&unknown, &linked_unknown).unwrap();
        // Both names are one inode in the new state, whose change time the link moved.
        assert_eq!(state(&known), state(&linked));
        assert_eq!(known_digest(&state(&linked)), Some(digest));
        assert_eq!(known_digest(&state(&linked_unknown)), None);
        // A later write is a new state: nothing is known of it.
        fs::write(&linked, b"written after").unwrap();
        assert_eq!(known_digest(&state(&linked)), None);
    }

    #[test]
    fn a_failed_link_is_an_error_naming_the_paths() {
        let dir = tempfile::tempdir().unwrap();
        let err = hard_link_keeping_digest(&dir.path().join("absent"), &dir.path().join("x"))
            .unwrap_err();
        assert!(err.to_string().contains("absent"), "{err}");
    }
}
