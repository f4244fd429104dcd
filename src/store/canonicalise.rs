//! Making a built tree canonical on disk, syncing it, and removing read-only trees.

use std::fs;
use std::io;
use std::path::Path;

use crate::hash::tree::{Node, NodeKind, Tree};

/// The mtime every entry file carries: one second past the epoch, as in Nix (zero means
/// "unknown" to some tools).
pub const CANONICAL_MTIME: i64 = 1;

/// Mode of non-executable files.
pub const FILE_MODE: u32 = 0o444;
/// Mode of executable files and of directories.
pub const EXEC_MODE: u32 = 0o555;

/// Sets canonical modes and mtimes on every node of `tree` (read from `root`): files and
/// symlinks first, then directories, each group in parallel (a bundle has tens of thousands of
/// nodes, nearly all canonical already, so this is mostly `lstat`s). Neither a `chmod` nor a
/// `utimensat` of a child changes its directory, and a directory's canonical mode keeps the
/// search bit the children's paths need, so no other order is required. The root directory
/// itself stays writable so it can still be renamed into place; see [`seal_root`].
pub fn apply(root: &Path, tree: &Tree) -> io::Result<()> {
    use rayon::prelude::*;
    let (dirs, others): (Vec<_>, Vec<_>) = tree
        .nodes
        .iter()
        .partition(|node| matches!(node.kind, NodeKind::Directory));
    for group in [others, dirs] {
        // Every result is kept in order, so the error reported is the same on every run.
        let results: Vec<io::Result<()>> = group
            .par_iter()
            .map(|node| apply_to_node(root, node))
            .collect();
        results.into_iter().collect::<io::Result<()>>()?;
    }
    Ok(())
}

/// [`apply`] for one node.
fn apply_to_node(root: &Path, node: &Node) -> io::Result<()> {
    let path = if node.path.is_empty() {
        root.to_path_buf()
    } else {
        root.join(&node.path)
    };
    // A file hard-linked from another entry is canonical already: leaving it alone keeps its
    // change time, so this process does not hash it again (hash::memo).
    let meta = fs::symlink_metadata(&path)?;
    let mode = match &node.kind {
        NodeKind::File { executable, .. } => Some(if *executable { EXEC_MODE } else { FILE_MODE }),
        NodeKind::Directory if !node.path.is_empty() => Some(EXEC_MODE),
        NodeKind::Directory | NodeKind::Symlink { .. } => None,
    };
    // A directory's mtime first: setting its mode does not change it.
    let mut changed = false;
    if !has_canonical_mtime(&meta) {
        set_mtime(&path)?;
        changed = true;
    }
    if let Some(mode) = mode.filter(|&mode| !has_mode(&meta, mode)) {
        set_mode(&path, mode)?;
        changed = true;
    }
    // The bytes are the ones `tree` was just hashed from; only the metadata moved, so the
    // digest is kept for the file's new state (the bundle that links it, the ZIP builder that
    // reads it, do not hash it again).
    if let (true, NodeKind::File { blake3, .. }) = (changed, &node.kind) {
        crate::hash::remember_current(&path, *blake3);
    }
    Ok(())
}

/// Whether `meta`'s mtime is [`CANONICAL_MTIME`].
fn has_canonical_mtime(meta: &fs::Metadata) -> bool {
    filetime::FileTime::from_last_modification_time(meta)
        == filetime::FileTime::from_unix_time(CANONICAL_MTIME, 0)
}

/// Whether `meta`'s permission bits are exactly `mode`.
#[cfg(unix)]
fn has_mode(meta: &fs::Metadata, mode: u32) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o7777 == mode
}

/// Whether `meta`'s permission bits are exactly `mode` (only read-only can be told here).
#[cfg(not(unix))]
fn has_mode(_meta: &fs::Metadata, _mode: u32) -> bool {
    false
}

/// Finishes a directory entry after it has been renamed into place: canonical mtime, mode 0555.
pub fn seal_root(path: &Path) -> io::Result<()> {
    if fs::symlink_metadata(path)?.is_dir() {
        set_mtime(path)?;
        set_mode(path, EXEC_MODE)?;
    }
    Ok(())
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    let mut perms = fs::metadata(path)?.permissions();
    perms.set_readonly(mode & 0o200 == 0);
    fs::set_permissions(path, perms)
}

/// Sets the access and modification times of `path` itself (not a symlink's target) to
/// [`CANONICAL_MTIME`].
fn set_mtime(path: &Path) -> io::Result<()> {
    let time = filetime::FileTime::from_unix_time(CANONICAL_MTIME, 0);
    filetime::set_symlink_file_times(path, time, time)
}

/// Makes everything written so far on the store's file system durable. On Linux one `syncfs`
/// replaces an fsync per file (tens of thousands for a large tree).
pub fn sync_filesystem(any_path_on_it: &Path) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let dir = fs::File::open(any_path_on_it)?;
        // SAFETY: syncfs(2) takes only a descriptor; `dir` owns it and stays open (it is not
        // dropped) until after the call.
        if unsafe { libc::syncfs(dir.as_raw_fd()) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    #[cfg(all(unix, not(target_os = "linux")))]
    {
        let _ = any_path_on_it;
        // SAFETY: sync(2) has no preconditions.
        unsafe { libc::sync() };
    }
    #[cfg(not(unix))]
    let _ = any_path_on_it;
    Ok(())
}

/// Removes a file or a tree whose directories may be read-only. Missing is fine.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err),
    };
    if !meta.is_dir() {
        return fs::remove_file(path);
    }
    make_dirs_writable(path)?;
    fs::remove_dir_all(path)
}

fn make_dirs_writable(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    set_mode(dir, 0o755)?;
    #[cfg(not(unix))]
    {
        let mut perms = fs::metadata(dir)?.permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        fs::set_permissions(dir, perms)?;
    }
    for child in fs::read_dir(dir)? {
        let child = child?;
        if child.file_type()?.is_dir() {
            make_dirs_writable(&child.path())?;
        }
    }
    Ok(())
}
