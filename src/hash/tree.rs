//! The canonical tree: how a file or directory is described, walked and hashed.
//!
//! A tree is the sorted list of its nodes. Each node has a relative path (`/`-separated, UTF-8,
//! the root is the empty path) and a kind: a directory, a regular file (executable or not, its
//! size and blake3 digest) or a relative symlink. Ownership, timestamps and permission bits other
//! than the owner's execute bit are not part of a tree: they are made canonical on registration.
//!
//! The *content hash* of a tree is blake3 in derive-key mode (context [`TREE_HASH_CONTEXT`]) over
//! its canonical serialisation (see [`Tree::write_canonical`] and `store-layout.md`).

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::memo::{self, FileState};

/// blake3 derive-key context of the content hash.
pub const TREE_HASH_CONTEXT: &str = "pystore 2026-11 tree v1";

/// Files at least this large are hashed with blake3's multi-threaded mode.
const PARALLEL_HASH_THRESHOLD: u64 = 1 << 20;

/// How many symlinks one path may pass through before we call it a loop (as Linux does).
const MAX_SYMLINK_HOPS: usize = 40;

/// One node of a canonical tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// Path relative to the tree's root, `/`-separated; `""` is the root itself.
    pub path: String,
    /// What is at that path.
    pub kind: NodeKind,
}

/// The kinds of node a canonical tree may hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// A directory; its children are the nodes whose paths extend its own.
    Directory,
    /// A regular file.
    File {
        /// The owner's execute bit.
        executable: bool,
        /// Length in bytes.
        size: u64,
        /// blake3 digest of the contents.
        blake3: [u8; 32],
    },
    /// A symbolic link with a relative target that stays inside the tree.
    Symlink {
        /// The link's target, exactly as stored.
        target: String,
    },
}

impl NodeKind {
    /// The one-letter type code used in serialisations and the database.
    pub fn type_code(&self) -> char {
        match self {
            NodeKind::Directory => 'd',
            NodeKind::File {
                executable: false, ..
            } => 'f',
            NodeKind::File {
                executable: true, ..
            } => 'x',
            NodeKind::Symlink { .. } => 'l',
        }
    }
}

/// One path where two trees differ (see [`Tree::differences`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeDifference<'a> {
    /// The path, relative to the trees' roots.
    pub path: &'a str,
    /// What the first tree has there, if anything.
    pub left: Option<&'a NodeKind>,
    /// What the second tree has there, if anything.
    pub right: Option<&'a NodeKind>,
}

/// A canonical tree: its nodes sorted by the bytes of their paths.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tree {
    /// Sorted by path; parents always precede their children.
    pub nodes: Vec<Node>,
}

/// Why a path could not be read as a canonical tree.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// An I/O error while reading.
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    /// A name that is not UTF-8 (bundles must unpack on every platform).
    #[error("{path}: file name is not valid UTF-8; rename it")]
    NonUtf8Name { path: PathBuf },
    /// A device, fifo or socket.
    #[error("{path} is a {kind}; only regular files, directories and symlinks can be stored")]
    SpecialFile { path: PathBuf, kind: &'static str },
    /// An absolute symlink.
    #[error("{path} is a symlink to the absolute path {target:?}; only relative links inside the entry are allowed")]
    AbsoluteSymlink { path: PathBuf, target: String },
    /// A symlink whose target leaves the tree.
    #[error("{path} is a symlink to {target:?}, which points outside the entry; only links inside the entry are allowed")]
    EscapingSymlink { path: PathBuf, target: String },
    /// A symlink loop or an overlong chain.
    #[error("{path} is a symlink to {target:?}, which does not resolve (a loop or more than {MAX_SYMLINK_HOPS} links)")]
    SymlinkLoop { path: PathBuf, target: String },
    /// The root is neither a file nor a directory.
    #[error("{path} is a symlink; give the file or directory it points to instead")]
    RootIsSymlink { path: PathBuf },
    /// A file changed size while it was read.
    #[error("{path} changed while it was being read (expected {expected} bytes, read {actual}); try again when nothing writes to it")]
    ChangedWhileReading {
        path: PathBuf,
        expected: u64,
        actual: u64,
    },
}

impl Tree {
    /// Walks `root` (a file or directory), hashing every regular file (in parallel).
    ///
    /// Refuses what a canonical tree cannot hold: devices, fifos, sockets, names that are not
    /// UTF-8, absolute symlinks and symlinks that resolve outside `root`.
    pub fn read(root: &Path) -> Result<Tree, TreeError> {
        let mut pending = Vec::new();
        let meta = fs::symlink_metadata(root).map_err(|source| io_error(root, source))?;
        if meta.file_type().is_symlink() {
            return Err(TreeError::RootIsSymlink {
                path: root.to_path_buf(),
            });
        }
        walk(root, String::new(), &meta, &mut pending)?;
        pending.sort_unstable_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
        let nodes = pending
            .into_par_iter()
            .map(|pending| pending.finish(root))
            .collect::<Result<Vec<Node>, TreeError>>()?;
        let tree = Tree { nodes };
        tree.check_symlinks(root)?;
        Ok(tree)
    }

    /// Total bytes of the regular files.
    pub fn size(&self) -> u64 {
        self.nodes
            .iter()
            .map(|node| match node.kind {
                NodeKind::File { size, .. } => size,
                _ => 0,
            })
            .sum()
    }

    /// True when the tree is a single regular file (the root itself).
    pub fn is_single_file(&self) -> bool {
        matches!(self.nodes.as_slice(), [Node { path, kind: NodeKind::File { .. } }] if path.is_empty())
    }

    /// Writes the canonical serialisation: for each node in path order, the path's UTF-8 bytes,
    /// a NUL, the type code, then for files the size (u64 little-endian) and the 32-byte blake3
    /// digest, for symlinks the target's length (u64 little-endian) and bytes.
    pub fn write_canonical(&self, out: &mut impl io::Write) -> io::Result<()> {
        for node in &self.nodes {
            out.write_all(node.path.as_bytes())?;
            out.write_all(&[0, node.kind.type_code() as u8])?;
            match &node.kind {
                NodeKind::Directory => {}
                NodeKind::File { size, blake3, .. } => {
                    out.write_all(&size.to_le_bytes())?;
                    out.write_all(blake3)?;
                }
                NodeKind::Symlink { target } => {
                    out.write_all(&(target.len() as u64).to_le_bytes())?;
                    out.write_all(target.as_bytes())?;
                }
            }
        }
        Ok(())
    }

    /// The content hash: blake3 (derive-key mode, [`TREE_HASH_CONTEXT`]) of the canonical
    /// serialisation.
    pub fn content_hash(&self) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new_derive_key(TREE_HASH_CONTEXT);
        self.write_canonical(&mut hasher)
            .expect("hashing never fails to write");
        *hasher.finalize().as_bytes()
    }

    /// The nodes that differ between `self` and `other`, in path order: a path present in one
    /// only, or present in both with another type, executable bit, size, digest or target.
    pub fn differences<'a>(&'a self, other: &'a Tree) -> Vec<TreeDifference<'a>> {
        let mut out = Vec::new();
        let (mut a, mut b) = (self.nodes.iter().peekable(), other.nodes.iter().peekable());
        loop {
            let order = match (a.peek(), b.peek()) {
                (None, None) => break,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some(x), Some(y)) => x.path.as_bytes().cmp(y.path.as_bytes()),
            };
            let (left, right) = match order {
                std::cmp::Ordering::Less => (a.next(), None),
                std::cmp::Ordering::Greater => (None, b.next()),
                std::cmp::Ordering::Equal => (a.next(), b.next()),
            };
            if let (Some(x), Some(y)) = (left, right) {
                if x.kind == y.kind {
                    continue;
                }
            }
            let path = left.or(right).map_or("", |node| node.path.as_str());
            out.push(TreeDifference {
                path,
                left: left.map(|node| &node.kind),
                right: right.map(|node| &node.kind),
            });
        }
        out
    }

    /// Checks that every symlink resolves, through the tree's own links, to a place inside the
    /// tree. A lexical check is not enough: `d/s/..` is the parent of wherever `d/s` points.
    fn check_symlinks(&self, root: &Path) -> Result<(), TreeError> {
        let links: HashMap<&str, &str> = self
            .nodes
            .iter()
            .filter_map(|node| match &node.kind {
                NodeKind::Symlink { target } => Some((node.path.as_str(), target.as_str())),
                _ => None,
            })
            .collect();
        for (&path, &target) in &links {
            let err_path = root.join(path);
            if target.starts_with('/') || target.is_empty() {
                return Err(TreeError::AbsoluteSymlink {
                    path: err_path,
                    target: target.into(),
                });
            }
            let parent: Vec<&str> = path.split('/').collect::<Vec<_>>();
            let start = parent[..parent.len() - 1].to_vec();
            match resolve(&links, start, target, &mut 0) {
                Ok(_) => {}
                Err(Resolve::Escapes) => {
                    return Err(TreeError::EscapingSymlink {
                        path: err_path,
                        target: target.into(),
                    })
                }
                Err(Resolve::Loop) => {
                    return Err(TreeError::SymlinkLoop {
                        path: err_path,
                        target: target.into(),
                    })
                }
            }
        }
        Ok(())
    }
}

enum Resolve {
    Escapes,
    Loop,
}

/// Resolves `target` from directory `dir` (components below the root), following the tree's own
/// symlinks; fails when the walk climbs above the root.
fn resolve<'a>(
    links: &HashMap<&'a str, &'a str>,
    mut dir: Vec<&'a str>,
    target: &'a str,
    hops: &mut usize,
) -> Result<Vec<&'a str>, Resolve> {
    if target.starts_with('/') {
        return Err(Resolve::Escapes);
    }
    for component in target.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                if dir.pop().is_none() {
                    return Err(Resolve::Escapes);
                }
            }
            name => {
                dir.push(name);
                let joined = dir.join("/");
                if let Some((&_, &next)) = links.get_key_value(joined.as_str()) {
                    *hops += 1;
                    if *hops > MAX_SYMLINK_HOPS {
                        return Err(Resolve::Loop);
                    }
                    dir.pop();
                    dir = resolve(links, dir, next, hops)?;
                }
            }
        }
    }
    Ok(dir)
}

/// A node found by the walk whose file contents are not hashed yet.
struct PendingNode {
    path: String,
    kind: PendingKind,
}

enum PendingKind {
    Directory,
    File {
        executable: bool,
        size: u64,
        state: Option<FileState>,
    },
    Symlink {
        target: String,
    },
}

impl PendingNode {
    fn finish(self, root: &Path) -> Result<Node, TreeError> {
        let kind = match self.kind {
            PendingKind::Directory => NodeKind::Directory,
            PendingKind::Symlink { target } => NodeKind::Symlink { target },
            PendingKind::File {
                executable,
                size,
                state,
            } => {
                let full = if self.path.is_empty() {
                    root.to_path_buf()
                } else {
                    root.join(&self.path)
                };
                let blake3 = hash_file_once(&full, size, state)?;
                NodeKind::File {
                    executable,
                    size,
                    blake3,
                }
            }
        };
        Ok(Node {
            path: self.path,
            kind,
        })
    }
}

fn io_error(path: &Path, source: io::Error) -> TreeError {
    TreeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn walk(
    full: &Path,
    rel: String,
    meta: &fs::Metadata,
    out: &mut Vec<PendingNode>,
) -> Result<(), TreeError> {
    let file_type = meta.file_type();
    if file_type.is_dir() {
        out.push(PendingNode {
            path: rel.clone(),
            kind: PendingKind::Directory,
        });
        let mut children = Vec::new();
        for child in fs::read_dir(full).map_err(|source| io_error(full, source))? {
            let child = child.map_err(|source| io_error(full, source))?;
            let name = child.file_name();
            let name = name
                .to_str()
                .ok_or_else(|| TreeError::NonUtf8Name { path: child.path() })?
                .to_owned();
            children.push((name, child));
        }
        children.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut subdirs = Vec::new();
        for (name, child) in children {
            let child_full = full.join(&name);
            // An `lstat` relative to the open directory, not a walk of the whole path again.
            let child_meta = child
                .metadata()
                .map_err(|source| io_error(&child_full, source))?;
            let child_rel = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if child_meta.is_dir() {
                subdirs.push((child_full, child_rel, child_meta));
            } else {
                walk(&child_full, child_rel, &child_meta, out)?;
            }
        }
        // Subdirectories are walked in parallel (a bundle has hundreds; the walk is mostly
        // `lstat` system calls). Results stay in name order, so the error reported (a
        // directory's own entries first, then its subdirectories') is the same on every run.
        let nested: Vec<Result<Vec<PendingNode>, TreeError>> = subdirs
            .into_par_iter()
            .map(|(child_full, child_rel, child_meta)| {
                let mut nodes = Vec::new();
                walk(&child_full, child_rel, &child_meta, &mut nodes).map(|()| nodes)
            })
            .collect();
        for nodes in nested {
            out.extend(nodes?);
        }
    } else if file_type.is_file() {
        out.push(PendingNode {
            path: rel,
            kind: PendingKind::File {
                executable: is_executable(meta),
                size: meta.len(),
                state: FileState::of(meta),
            },
        });
    } else if file_type.is_symlink() {
        let target = fs::read_link(full).map_err(|source| io_error(full, source))?;
        let target = target
            .into_os_string()
            .into_string()
            .map_err(|_| TreeError::NonUtf8Name {
                path: full.to_path_buf(),
            })?;
        out.push(PendingNode {
            path: rel,
            kind: PendingKind::Symlink { target },
        });
    } else {
        return Err(TreeError::SpecialFile {
            path: full.to_path_buf(),
            kind: special_kind(meta),
        });
    }
    Ok(())
}

/// [`hash_file`], unless this process hashed the file in the same `state` before (see
/// [`super::memo`]).
fn hash_file_once(
    path: &Path,
    expected_size: u64,
    state: Option<FileState>,
) -> Result<[u8; 32], TreeError> {
    if let Some(digest) = state.as_ref().and_then(memo::known_digest) {
        return Ok(digest);
    }
    let digest = hash_file(path, expected_size)?;
    let after = fs::symlink_metadata(path).ok();
    if let Some(state) = state.filter(|s| after.as_ref().and_then(FileState::of) == Some(*s)) {
        memo::remember_digest(state, digest);
    }
    Ok(digest)
}

/// Hashes one file, checking that exactly `expected_size` bytes are read.
pub fn hash_file(path: &Path, expected_size: u64) -> Result<[u8; 32], TreeError> {
    thread_local! {
        /// The read buffer, kept per thread instead of a zeroed allocation per file.
        static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let mut file = fs::File::open(path).map_err(|source| io_error(path, source))?;
    let mut hasher = blake3::Hasher::new();
    let wanted = if expected_size >= PARALLEL_HASH_THRESHOLD {
        1 << 20
    } else {
        64 << 10
    };
    // Taken out while in use: a hash that rayon runs on this thread meanwhile (work stealing
    // inside `update_rayon`) finds none and makes its own.
    let mut buf = BUFFER.with(|b| std::mem::take(&mut *b.borrow_mut()));
    if buf.len() < wanted {
        buf.resize(wanted, 0);
    }
    let result = read_hashing(&mut file, path, &mut buf[..wanted], &mut hasher);
    BUFFER.with(|b| *b.borrow_mut() = buf);
    let total = result?;
    if total != expected_size {
        return Err(TreeError::ChangedWhileReading {
            path: path.to_path_buf(),
            expected: expected_size,
            actual: total,
        });
    }
    Ok(*hasher.finalize().as_bytes())
}

/// Reads `file` to its end through `buf`, feeding `hasher`; returns how many bytes it read.
fn read_hashing(
    file: &mut fs::File,
    path: &Path,
    buf: &mut [u8],
    hasher: &mut blake3::Hasher,
) -> Result<u64, TreeError> {
    let mut total = 0u64;
    loop {
        let n = file.read(buf).map_err(|source| io_error(path, source))?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if n as u64 >= PARALLEL_HASH_THRESHOLD {
            hasher.update_rayon(&buf[..n]);
        } else {
            hasher.update(&buf[..n]);
        }
    }
    Ok(total)
}

/// The owner's execute bit of `meta`: what a tree records of a file's mode.
#[cfg(unix)]
pub fn is_executable(meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o100 != 0
}

/// The owner's execute bit of `meta`: what a tree records of a file's mode.
#[cfg(not(unix))]
pub fn is_executable(_meta: &fs::Metadata) -> bool {
    false
}

#[cfg(unix)]
fn special_kind(meta: &fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_fifo() {
        "fifo"
    } else if t.is_socket() {
        "socket"
    } else if t.is_block_device() {
        "block device"
    } else if t.is_char_device() {
        "character device"
    } else {
        "special file"
    }
}

#[cfg(not(unix))]
fn special_kind(_meta: &fs::Metadata) -> &'static str {
    "special file"
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree_of(dir: &Path) -> Result<Tree, TreeError> {
        Tree::read(dir)
    }

    #[test]
    fn walks_in_byte_order_with_parents_first() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::create_dir(root.join("a")).unwrap();
        fs::write(root.join("a/z"), b"z").unwrap();
        fs::write(root.join("a-b"), b"ab").unwrap();
        fs::write(root.join("B"), b"").unwrap();
        symlink("a/z", root.join("link")).unwrap();
        let tree = tree_of(root).unwrap();
        let paths: Vec<&str> = tree.nodes.iter().map(|n| n.path.as_str()).collect();
        assert_eq!(paths, ["", "B", "a", "a-b", "a/z", "link"]);
        assert_eq!(tree.size(), 3);
    }

    #[test]
    fn symlink_that_climbs_through_another_link_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::create_dir(root.join("d")).unwrap();
        symlink("../d", root.join("d/s")).unwrap();
        // Lexically "d/s/../.." is the root, but d/s is d, so this is the root's parent.
        symlink("d/s/../..", root.join("x")).unwrap();
        let err = tree_of(root).unwrap_err();
        assert!(matches!(err, TreeError::EscapingSymlink { .. }), "{err}");
    }

    #[test]
    fn symlink_loops_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        symlink("b", tmp.path().join("a")).unwrap();
        symlink("a", tmp.path().join("b")).unwrap();
        let err = tree_of(tmp.path()).unwrap_err();
        assert!(matches!(err, TreeError::SymlinkLoop { .. }), "{err}");
    }

    #[test]
    fn inner_relative_links_are_fine() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::create_dir_all(root.join("lib/x")).unwrap();
        symlink("../lib", root.join("lib/x/up")).unwrap();
        symlink("lib/x/up/x/./", root.join("dangling-but-inside")).unwrap();
        symlink("missing/file", root.join("dangling")).unwrap();
        tree_of(root).unwrap();
    }

    #[test]
    fn content_hash_ignores_mode_bits_other_than_owner_execute() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("f");
        fs::write(&file, b"hello").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
        let a = tree_of(&file).unwrap().content_hash();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(tree_of(&file).unwrap().content_hash(), a);
        fs::set_permissions(&file, fs::Permissions::from_mode(0o700)).unwrap();
        assert_ne!(tree_of(&file).unwrap().content_hash(), a);
    }

    #[test]
    fn differences_name_changed_added_and_removed_paths_in_order() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        for root in [a.path(), b.path()] {
            fs::create_dir(root.join("d")).unwrap();
            fs::write(root.join("d/same"), b"same").unwrap();
        }
        fs::write(a.path().join("d/changed"), b"one").unwrap();
        fs::write(b.path().join("d/changed"), b"other").unwrap();
        fs::write(a.path().join("gone"), b"x").unwrap();
        fs::write(b.path().join("added"), b"y").unwrap();
        let (ta, tb) = (tree_of(a.path()).unwrap(), tree_of(b.path()).unwrap());
        let diffs = ta.differences(&tb);
        let summary: Vec<(&str, bool, bool)> = diffs
            .iter()
            .map(|d| (d.path, d.left.is_some(), d.right.is_some()))
            .collect();
        assert_eq!(
            summary,
            [
                ("added", false, true),
                ("d/changed", true, true),
                ("gone", true, false)
            ]
        );
        match (diffs[1].left, diffs[1].right) {
            (Some(NodeKind::File { size: 3, .. }), Some(NodeKind::File { size: 5, .. })) => {}
            other => panic!("unexpected {other:?}"),
        }
        assert!(ta.differences(&ta).is_empty());
    }
}
