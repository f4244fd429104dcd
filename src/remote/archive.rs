//! The transfer archive of an entry: its canonical tree as a tar, zstd-compressed.
//!
//! The tar holds one top member `entry` (the entry root: a directory or a single file) and, for a
//! directory, `entry/<path>` for every node, in canonical-tree order. Headers are GNU, with mode
//! `0444`/`0555` (`0777` for symlinks), uid/gid 0, no user or group names and mtime 0, so the same
//! entry always gives the same bytes (and a second push can skip by name, size and digest).
//! Reading goes through the hardened tar reader of `archive::extract` (no traversal, no links out,
//! no duplicates, bounded sizes); the store then checks the content hash on registration.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Seek, Write};
use std::path::{Path, PathBuf};

use sha2::Digest;

use crate::archive::extract::{extract_tar, Limits, TarCompression};
use crate::hash::tree::{NodeKind, Tree};

/// The name of the top member.
pub const TOP: &str = "entry";

/// Why an archive could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// A file-system operation failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// The entry on disk no longer matches its manifest.
    #[error("{} does not match its manifest ({what}); run `pystore verify` and rebuild it before pushing", path.display())]
    Damaged { path: PathBuf, what: String },
    /// The archive is refused by the hardened reader.
    #[error(transparent)]
    Unpack(#[from] crate::archive::extract::UnpackError),
    /// The archive has members outside `entry`.
    #[error("{}: member {member:?} is outside the top member {TOP:?}; this is not a pystore entry archive", archive.display())]
    Stray { archive: PathBuf, member: String },
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ArchiveError + 'a {
    move |source| ArchiveError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// What packing wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packed {
    /// Bytes of the compressed archive.
    pub size: u64,
    /// sha256 of the compressed archive.
    pub sha256: [u8; 32],
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header
}

/// Writes the archive of the entry at `root` (whose recorded manifest is `tree`) to `dest`.
///
/// Every file is checked against the manifest (size and blake3) as it is read, so a damaged
/// entry is never pushed.
pub fn pack(root: &Path, tree: &Tree, dest: &Path) -> Result<Packed, ArchiveError> {
    let scratch = tempfile::tempfile().map_err(io_err("create a temporary file for", dest))?;
    let mut builder = tar::Builder::new(scratch);
    for node in &tree.nodes {
        let (member, disk) = if node.path.is_empty() {
            (TOP.to_owned(), root.to_path_buf())
        } else {
            (format!("{TOP}/{}", node.path), root.join(&node.path))
        };
        let damaged = |what: String| ArchiveError::Damaged {
            path: disk.clone(),
            what,
        };
        match &node.kind {
            NodeKind::Directory => {
                let mut h = header(tar::EntryType::Directory, 0o555, 0);
                builder
                    .append_data(&mut h, &member, io::empty())
                    .map_err(io_err("write the archive of", root))?;
            }
            NodeKind::File {
                executable,
                size,
                blake3,
            } => {
                let file = File::open(&disk).map_err(io_err("read", &disk))?;
                let mut h = header(
                    tar::EntryType::Regular,
                    if *executable { 0o555 } else { 0o444 },
                    *size,
                );
                let mut reader = HashingReader {
                    inner: file.take(*size),
                    hasher: blake3::Hasher::new(),
                    read: 0,
                };
                builder
                    .append_data(&mut h, &member, &mut reader)
                    .map_err(|e| damaged(format!("reading it failed: {e}")))?;
                if reader.read != *size || reader.hasher.finalize().as_bytes() != blake3 {
                    return Err(damaged(format!("{} changed", node.path)));
                }
            }
            NodeKind::Symlink { target } => {
                let mut h = header(tar::EntryType::Symlink, 0o777, 0);
                builder
                    .append_link(&mut h, &member, target)
                    .map_err(io_err("write the archive of", root))?;
            }
        }
    }
    let mut tar = builder
        .into_inner()
        .map_err(io_err("write the archive of", root))?;
    tar.rewind()
        .map_err(io_err("read back the archive of", root))?;
    let mut compressed = Vec::new();
    ruzstd::encoding::compress(
        BufReader::new(tar),
        &mut compressed,
        ruzstd::encoding::CompressionLevel::Fastest,
    );
    let mut out = File::create(dest).map_err(io_err("create", dest))?;
    out.write_all(&compressed)
        .and_then(|()| out.sync_all())
        .map_err(io_err("write", dest))?;
    Ok(Packed {
        size: compressed.len() as u64,
        sha256: sha2::Sha256::digest(&compressed).into(),
    })
}

struct HashingReader<R> {
    inner: R,
    hasher: blake3::Hasher,
    read: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

/// Unpacks `archive` so that the entry root lands at `out` (which must not exist; its parent is
/// used as scratch space). `max_size` bounds the sum of file sizes (the described entry size).
pub fn unpack(archive: &Path, out: &Path, max_size: u64) -> Result<(), ArchiveError> {
    let parent = out.parent().unwrap_or(Path::new("."));
    let scratch = parent.join(".unpack");
    let limits = Limits {
        max_member: max_size,
        max_total: max_size,
        ..Limits::default()
    };
    let members = extract_tar(archive, TarCompression::Zstd, "", &scratch, &limits)?;
    let result = (|| {
        if let Some(stray) = members
            .iter()
            .find(|m| *m != TOP && !m.starts_with(&format!("{TOP}/")))
        {
            return Err(ArchiveError::Stray {
                archive: archive.to_path_buf(),
                member: stray.clone(),
            });
        }
        let top = scratch.join(TOP);
        fs::rename(&top, out).map_err(io_err("move into place", out))
    })();
    let _ = fs::remove_dir_all(&scratch);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn sample(dir: &Path) {
        fs::create_dir_all(dir.join("bin")).unwrap();
        fs::create_dir_all(dir.join("empty")).unwrap();
        fs::write(dir.join("a.txt"), b"hello\n").unwrap();
        fs::write(dir.join("bin/run"), b"#!/bin/sh\necho hi\n").unwrap();
        fs::set_permissions(dir.join("bin/run"), fs::Permissions::from_mode(0o755)).unwrap();
        symlink("../a.txt", dir.join("bin/link")).unwrap();
        let long = "d".repeat(120);
        fs::create_dir_all(dir.join(&long)).unwrap();
        fs::write(dir.join(&long).join("f".repeat(120)), b"long name").unwrap();
    }

    #[test]
    fn round_trips_a_tree_and_packs_the_same_bytes_twice() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        sample(&src);
        let tree = Tree::read(&src).unwrap();
        let (a, b) = (dir.path().join("a.tar.zst"), dir.path().join("b.tar.zst"));
        let packed = pack(&src, &tree, &a).unwrap();
        assert_eq!(pack(&src, &tree, &b).unwrap(), packed);
        assert_eq!(
            fs::read(&a).unwrap(),
            fs::read(&b).unwrap(),
            "deterministic"
        );
        assert_eq!(packed.size, fs::metadata(&a).unwrap().len());
        let work = dir.path().join("work");
        fs::create_dir(&work).unwrap();
        unpack(&a, &work.join("out"), tree.size()).unwrap();
        assert_eq!(
            Tree::read(&work.join("out")).unwrap().content_hash(),
            tree.content_hash()
        );
        assert_eq!(
            fs::read_dir(&work).unwrap().count(),
            1,
            "no scratch left behind"
        );
    }

    #[test]
    fn a_single_file_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("f.whl");
        fs::write(&src, b"bytes").unwrap();
        let tree = Tree::read(&src).unwrap();
        let archive = dir.path().join("x.tar.zst");
        pack(&src, &tree, &archive).unwrap();
        let work = dir.path().join("work");
        fs::create_dir(&work).unwrap();
        unpack(&archive, &work.join("out"), 5).unwrap();
        assert_eq!(fs::read(work.join("out")).unwrap(), b"bytes");
    }

    #[test]
    fn the_archive_bytes_are_pinned() {
        // store-layout.md §12: the hello-file of the golden vectors. Fails when a tar or zstd
        // change alters the bytes (a push after such a bump re-uploads every archive).
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("hello.txt");
        fs::write(&src, b"hello\n").unwrap();
        let packed = pack(&src, &Tree::read(&src).unwrap(), &dir.path().join("a")).unwrap();
        assert_eq!(
            crate::hash::to_hex(&packed.sha256),
            "725e5cf2fb1216ad44e154063b4eddc784ad931783313412192a8796a2e26dfd"
        );
    }

    #[test]
    fn a_changed_file_is_not_packed() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        sample(&src);
        let tree = Tree::read(&src).unwrap();
        fs::write(src.join("a.txt"), b"HELLO\n").unwrap();
        let err = pack(&src, &tree, &dir.path().join("x")).unwrap_err();
        assert!(err.to_string().contains("a.txt changed"), "{err}");
    }

    /// name, type, contents, link target.
    type Member<'a> = (&'a str, tar::EntryType, &'a [u8], &'a str);

    fn zst_tar(path: &Path, members: &[Member<'_>]) {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, kind, data, link) in members {
            let mut h = header(*kind, 0o644, data.len() as u64);
            if *kind == tar::EntryType::Symlink {
                builder.append_link(&mut h, name, link).unwrap();
            } else {
                // Bypass the tar crate's own path checks, as a hostile archive would.
                h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
                h.set_cksum();
                builder.append(&h, *data).unwrap();
            }
        }
        let tar = builder.into_inner().unwrap();
        let mut out = Vec::new();
        ruzstd::encoding::compress(
            &tar[..],
            &mut out,
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        fs::write(path, out).unwrap();
    }

    #[test]
    fn hostile_archives_are_refused_and_leave_nothing() {
        use tar::EntryType::{Directory, Regular, Symlink};
        let cases: Vec<(&str, Vec<Member<'_>>)> = vec![
            (
                "traversal",
                vec![
                    ("entry", Directory, b"", ""),
                    ("entry/../x", Regular, b"x", ""),
                ],
            ),
            (
                "escaping link",
                vec![
                    ("entry", Directory, b"", ""),
                    ("entry/l", Symlink, b"", "../../etc"),
                ],
            ),
            (
                "duplicate",
                vec![
                    ("entry", Directory, b"", ""),
                    ("entry/a", Regular, b"1", ""),
                    ("entry/a", Regular, b"2", ""),
                ],
            ),
            ("stray", vec![("other", Regular, b"x", "")]),
            (
                "too large",
                vec![
                    ("entry", Directory, b"", ""),
                    ("entry/a", Regular, &[0u8; 64], ""),
                ],
            ),
        ];
        for (what, members) in cases {
            let dir = tempfile::tempdir().unwrap();
            let archive = dir.path().join("a.tar.zst");
            zst_tar(&archive, &members);
            let work = dir.path().join("work");
            fs::create_dir(&work).unwrap();
            let result = unpack(&archive, &work.join("out"), 16);
            assert!(result.is_err(), "{what} was accepted");
            assert_eq!(fs::read_dir(&work).unwrap().count(), 0, "{what} left files");
        }
    }
}
