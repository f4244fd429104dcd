//! Hardened archive reading: zip (wheels, Windows embeddable distributions) and tar
//! (python-build-standalone archives).
//!
//! Every member is checked before anything is written: its name must be a relative `/`-separated
//! UTF-8 path with no empty, `.` or `..` component, no backslash, no drive letter and no NUL;
//! no two members may have the same name; only regular files, directories and symlinks are
//! allowed; a symlink's target must be relative and, resolved through the archive's own
//! symlinks, stay inside the output; no member may be written through a symlink; sizes are
//! bounded ([`Limits`]). For zip, each member's local header must agree with its central
//! directory record, and its data must decompress to exactly the declared size with the declared
//! CRC-32 (so a member that inflates past its declared size — a decompression bomb — is cut off
//! and refused). Output files are created with `create_new`, so nothing is ever overwritten or
//! followed.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Size limits for reading an archive.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest uncompressed member.
    pub max_member: u64,
    /// Largest sum of uncompressed members.
    pub max_total: u64,
    /// Most members.
    pub max_members: usize,
}

impl Default for Limits {
    /// 4 GiB per member, 16 GiB in all, a million members: above the largest real wheels and
    /// interpreters (CUDA wheels reach a few GiB), far below what would fill a disk by surprise.
    fn default() -> Self {
        Limits {
            max_member: 4 << 30,
            max_total: 16 << 30,
            max_members: 1_000_000,
        }
    }
}

/// Why an archive was refused or could not be read.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// A file-system operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// The archive is not readable as its format.
    #[error("{archive} is not a valid {format} archive: {message}")]
    Format {
        archive: PathBuf,
        format: &'static str,
        message: String,
    },
    /// A member that is not allowed.
    #[error("{archive}: refusing member {member:?}: {reason}")]
    Member {
        archive: PathBuf,
        member: String,
        reason: String,
    },
    /// The disk (or the quota on it) filled up while a member was written: not the archive's
    /// fault, so not worded as a refusal.
    #[error("no space left on the device while writing {member:?} of {archive} ({cause}); free some space (`pystore gc` removes entries nothing needs) and try again")]
    DiskFull {
        archive: PathBuf,
        member: String,
        cause: String,
    },
    /// A limit was exceeded.
    #[error("{archive}: member {member:?} exceeds the limit of {limit} bytes for {what}; the archive may be a decompression bomb")]
    TooLarge {
        archive: PathBuf,
        member: String,
        what: &'static str,
        limit: u64,
    },
}

fn member_err(archive: &Path, member: &str, reason: impl Into<String>) -> UnpackError {
    UnpackError::Member {
        archive: archive.to_path_buf(),
        member: member.to_owned(),
        reason: reason.into(),
    }
}

/// A failed write of a member: a full disk says so; anything else is the archive's member.
fn write_err(archive: &Path, member: &str, err: io::Error) -> UnpackError {
    if crate::errors::is_disk_full(&err) {
        UnpackError::DiskFull {
            archive: archive.to_path_buf(),
            member: member.to_owned(),
            cause: err.to_string(),
        }
    } else {
        member_err(archive, member, format!("write failed: {err}"))
    }
}

pub(crate) fn io_err<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> UnpackError + 'a {
    move |source| UnpackError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Checks a member name and returns it without a trailing `/` (directories).
pub fn check_member_name(name: &str) -> Result<&str, String> {
    let trimmed = name.strip_suffix('/').unwrap_or(name);
    if trimmed.is_empty() {
        return Err("empty name".into());
    }
    if trimmed.starts_with('/') {
        return Err("absolute path".into());
    }
    if trimmed.contains('\\') {
        return Err("backslash in name (ambiguous on Windows)".into());
    }
    if trimmed.contains('\0') {
        return Err("NUL in name".into());
    }
    let first = trimmed.split('/').next().unwrap_or_default();
    if first.len() >= 2 && first.as_bytes()[1] == b':' {
        return Err("drive letter in name".into());
    }
    for component in trimmed.split('/') {
        match component {
            "" => return Err("empty path component".into()),
            "." | ".." => return Err(format!("{component:?} component (path traversal)")),
            _ => {}
        }
    }
    Ok(trimmed)
}

/// What a member is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberKind {
    /// A directory.
    Dir,
    /// A regular file.
    File {
        /// Uncompressed size.
        size: u64,
        /// Owner-executable.
        executable: bool,
    },
    /// A symbolic link with this target.
    Symlink(String),
}

/// Tracks the members seen so far: duplicate names, writes through symlinks, limits.
#[derive(Default)]
pub(crate) struct MemberSet {
    kinds: BTreeMap<String, MemberKind>,
    total: u64,
}

impl MemberSet {
    /// Admits `name` of `kind`, or says why not.
    pub(crate) fn admit(
        &mut self,
        archive: &Path,
        name: &str,
        kind: MemberKind,
        limits: &Limits,
    ) -> Result<String, UnpackError> {
        let clean = check_member_name(name).map_err(|reason| member_err(archive, name, reason))?;
        if self.kinds.len() >= limits.max_members {
            return Err(member_err(
                archive,
                name,
                format!("more than {} members", limits.max_members),
            ));
        }
        // No member below a symlink: writing it would follow the link.
        let mut prefix = String::new();
        for component in clean.split('/') {
            if !prefix.is_empty() {
                if let Some(MemberKind::Symlink(_)) = self.kinds.get(&prefix) {
                    return Err(member_err(
                        archive,
                        name,
                        format!("it lies below the symlink {prefix:?}"),
                    ));
                }
                if let Some(MemberKind::File { .. }) = self.kinds.get(&prefix) {
                    return Err(member_err(archive, name, format!("{prefix:?} is a file")));
                }
                prefix.push('/');
            }
            prefix.push_str(component);
        }
        if let MemberKind::File { size, .. } = kind {
            if size > limits.max_member {
                return Err(UnpackError::TooLarge {
                    archive: archive.to_path_buf(),
                    member: name.to_owned(),
                    what: "one member",
                    limit: limits.max_member,
                });
            }
            self.total = self.total.saturating_add(size);
            if self.total > limits.max_total {
                return Err(UnpackError::TooLarge {
                    archive: archive.to_path_buf(),
                    member: name.to_owned(),
                    what: "the whole archive",
                    limit: limits.max_total,
                });
            }
        }
        if let MemberKind::Symlink(target) = &kind {
            if target.is_empty() || target.starts_with('/') || target.contains('\\') {
                return Err(member_err(
                    archive,
                    name,
                    format!("symlink to {target:?}: only relative links are allowed"),
                ));
            }
        }
        match self.kinds.get(clean) {
            // Tar archives may list a directory again; a repeated directory is harmless.
            Some(MemberKind::Dir) if kind == MemberKind::Dir => {}
            Some(_) => return Err(member_err(archive, name, "duplicate member name")),
            None => {
                self.kinds.insert(clean.to_owned(), kind);
            }
        }
        Ok(clean.to_owned())
    }

    /// Checks that every symlink, resolved through the others, stays inside the output.
    pub(crate) fn check_symlinks(&self, archive: &Path) -> Result<(), UnpackError> {
        for (name, kind) in &self.kinds {
            if let MemberKind::Symlink(target) = kind {
                let parent: Vec<&str> = match name.rsplit_once('/') {
                    Some((dir, _)) => dir.split('/').collect(),
                    None => Vec::new(),
                };
                self.resolve(parent, target, 0).map_err(|why| {
                    member_err(archive, name, format!("symlink to {target:?} {why}"))
                })?;
            }
        }
        Ok(())
    }

    /// Resolves `target` from the directory `base` (components from the root).
    fn resolve<'a>(
        &'a self,
        mut stack: Vec<&'a str>,
        target: &'a str,
        hops: usize,
    ) -> Result<Vec<&'a str>, &'static str> {
        if hops > 40 {
            return Err("does not resolve (a loop or more than 40 links)");
        }
        for component in target.split('/') {
            match component {
                "" | "." => {}
                ".." => {
                    stack.pop().ok_or("points outside the archive's tree")?;
                }
                _ => {
                    stack.push(component);
                    let path = stack.join("/");
                    if let Some(MemberKind::Symlink(next)) = self.kinds.get(&path) {
                        stack.pop();
                        stack = self.resolve(stack, next, hops + 1)?;
                    }
                }
            }
        }
        Ok(stack)
    }
}

/// A zip archive whose members have all been checked.
pub struct CheckedZip {
    path: PathBuf,
    zip: zip::ZipArchive<File>,
    /// Member names (directories without their trailing `/`) with their index and kind, sorted.
    members: BTreeMap<String, (usize, MemberKind)>,
}

impl CheckedZip {
    /// Opens `path` and checks every member (names, duplicates, kinds, local headers, limits).
    pub fn open(path: &Path, limits: &Limits) -> Result<CheckedZip, UnpackError> {
        let file = File::open(path).map_err(io_err("open", path))?;
        let format_err = |message: String| UnpackError::Format {
            archive: path.to_path_buf(),
            format: "zip",
            message,
        };
        let mut zip = zip::ZipArchive::new(file).map_err(|e| format_err(e.to_string()))?;
        let mut raw = File::open(path).map_err(io_err("open", path))?;
        // The zip crate keeps one member per name, so duplicates are found in the raw central
        // directory.
        let names = central_directory_names(&mut raw).map_err(format_err)?;
        let mut seen = BTreeSet::new();
        for name in &names {
            if !seen.insert(name.as_slice()) {
                return Err(member_err(
                    path,
                    &String::from_utf8_lossy(name),
                    "duplicate member name",
                ));
            }
        }
        if names.len() != zip.len() {
            return Err(format_err(format!(
                "its central directory lists {} members, the zip reader found {}",
                names.len(),
                zip.len()
            )));
        }
        let mut set = MemberSet::default();
        let mut members = BTreeMap::new();
        for index in 0..zip.len() {
            let entry = zip
                .by_index_raw(index)
                .map_err(|e| format_err(format!("member #{index}: {e}")))?;
            let name = std::str::from_utf8(entry.name_raw())
                .map_err(|_| {
                    member_err(
                        path,
                        &String::from_utf8_lossy(entry.name_raw()),
                        "name is not UTF-8",
                    )
                })?
                .to_owned();
            if entry.encrypted() {
                return Err(member_err(path, &name, "encrypted"));
            }
            let mode = entry.unix_mode().unwrap_or(0);
            let file_type = mode & 0o170000;
            let kind = if entry.is_dir() {
                MemberKind::Dir
            } else if file_type == 0 || file_type == 0o100000 {
                MemberKind::File {
                    size: entry.size(),
                    executable: mode & 0o100 != 0,
                }
            } else {
                let what = match file_type {
                    0o120000 => "a symlink (zip archives here may hold only files and directories)",
                    0o020000 => "a character device",
                    0o060000 => "a block device",
                    0o010000 => "a fifo",
                    0o140000 => "a socket",
                    _ => "a special file",
                };
                return Err(member_err(path, &name, format!("it is {what}")));
            };
            check_local_header(&mut raw, path, &name, &entry)?;
            let clean = set.admit(path, &name, kind.clone(), limits)?;
            members.insert(clean, (index, kind));
        }
        Ok(CheckedZip {
            path: path.to_path_buf(),
            zip,
            members,
        })
    }

    /// The archive's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Member names and kinds, sorted by name.
    pub fn members(&self) -> impl Iterator<Item = (&str, &MemberKind)> {
        self.members
            .iter()
            .map(|(name, (_, kind))| (name.as_str(), kind))
    }

    /// True if a member (file or directory) has this name.
    pub fn contains(&self, name: &str) -> bool {
        self.members.contains_key(name)
    }

    /// Streams a file member into `out`, checking its size and CRC-32; returns the bytes written.
    pub fn copy_member(&mut self, name: &str, out: &mut dyn Write) -> Result<u64, UnpackError> {
        let path = self.path.clone();
        let Some((index, MemberKind::File { size, .. })) = self.members.get(name).cloned() else {
            return Err(member_err(&path, name, "no such file in the archive"));
        };
        let mut entry = self.zip.by_index(index).map_err(|e| UnpackError::Format {
            archive: path.clone(),
            format: "zip",
            message: format!("member {name:?}: {e}"),
        })?;
        let expected_crc = entry.crc32();
        let mut hasher = crc32fast::Hasher::new();
        let mut written = 0u64;
        let mut buf = vec![0u8; 64 << 10];
        loop {
            // Never read more than one byte past the declared size: a member that inflates
            // further is refused without inflating it.
            let want = (size + 1 - written).min(buf.len() as u64) as usize;
            let n = match entry.read(&mut buf[..want]) {
                Ok(n) => n,
                // The zip crate checks the CRC itself at the end; report ours instead.
                Err(e)
                    if e.kind() == io::ErrorKind::InvalidData
                        || e.kind() == io::ErrorKind::Other =>
                {
                    return Err(member_err(&path, name, format!("corrupt data: {e}")));
                }
                Err(e) => return Err(member_err(&path, name, format!("read failed: {e}"))),
            };
            if n == 0 {
                break;
            }
            written += n as u64;
            if written > size {
                return Err(member_err(
                    &path,
                    name,
                    format!("it decompresses to more than its declared {size} bytes (a decompression bomb?)"),
                ));
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])
                .map_err(|e| write_err(&path, name, e))?;
        }
        if written != size {
            return Err(member_err(
                &path,
                name,
                format!("it decompresses to {written} bytes, not the declared {size}"),
            ));
        }
        let crc = hasher.finalize();
        if crc != expected_crc {
            return Err(member_err(
                &path,
                name,
                format!("CRC-32 mismatch: data has {crc:08x}, header says {expected_crc:08x}"),
            ));
        }
        Ok(written)
    }

    /// Reads a small file member into memory (at most `max` bytes).
    pub fn read_member(&mut self, name: &str, max: u64) -> Result<Vec<u8>, UnpackError> {
        if let Some((_, MemberKind::File { size, .. })) = self.members.get(name) {
            if *size > max {
                return Err(UnpackError::TooLarge {
                    archive: self.path.clone(),
                    member: name.to_owned(),
                    what: "a metadata file",
                    limit: max,
                });
            }
        }
        let mut out = Vec::new();
        self.copy_member(name, &mut out)?;
        Ok(out)
    }
}

/// The raw member names of the central directory, in order.
fn central_directory_names(raw: &mut File) -> Result<Vec<Vec<u8>>, String> {
    let len = raw.seek(SeekFrom::End(0)).map_err(|e| e.to_string())?;
    let tail_len = len.min(22 + 65_535);
    let mut tail = vec![0u8; tail_len as usize];
    raw.seek(SeekFrom::Start(len - tail_len))
        .and_then(|_| raw.read_exact(&mut tail))
        .map_err(|e| e.to_string())?;
    let eocd = (0..tail.len().saturating_sub(21))
        .rev()
        .find(|&i| tail[i..i + 4] == [0x50, 0x4b, 0x05, 0x06])
        .ok_or("no end of central directory record")?;
    let u16_at = |b: &[u8], i: usize| u64::from(u16::from_le_bytes([b[i], b[i + 1]]));
    let u32_at =
        |b: &[u8], i: usize| u64::from(u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]));
    let u64_at = |b: &[u8], i: usize| {
        let mut x = [0u8; 8];
        x.copy_from_slice(&b[i..i + 8]);
        u64::from_le_bytes(x)
    };
    let mut count = u16_at(&tail, eocd + 10);
    let mut offset = u32_at(&tail, eocd + 16);
    if count == 0xFFFF || offset == 0xFFFF_FFFF {
        // zip64: the locator sits just before the end record.
        let locator = eocd.checked_sub(20).ok_or("truncated zip64 locator")?;
        if tail[locator..locator + 4] != [0x50, 0x4b, 0x06, 0x07] {
            return Err("missing zip64 end of central directory locator".into());
        }
        let record_at = u64_at(&tail, locator + 8);
        let mut record = [0u8; 56];
        raw.seek(SeekFrom::Start(record_at))
            .and_then(|_| raw.read_exact(&mut record))
            .map_err(|e| e.to_string())?;
        if record[..4] != [0x50, 0x4b, 0x06, 0x06] {
            return Err("bad zip64 end of central directory record".into());
        }
        count = u64_at(&record, 32);
        offset = u64_at(&record, 48);
    }
    raw.seek(SeekFrom::Start(offset))
        .map_err(|e| e.to_string())?;
    let mut reader = io::BufReader::new(&mut *raw);
    let mut names = Vec::new();
    for index in 0..count {
        let mut fixed = [0u8; 46];
        reader
            .read_exact(&mut fixed)
            .map_err(|e| format!("central directory record #{index}: {e}"))?;
        if fixed[..4] != [0x50, 0x4b, 0x01, 0x02] {
            return Err(format!(
                "central directory record #{index} has a bad signature"
            ));
        }
        let (name_len, extra_len, comment_len) =
            (u16_at(&fixed, 28), u16_at(&fixed, 30), u16_at(&fixed, 32));
        let mut name = vec![0u8; name_len as usize];
        reader
            .read_exact(&mut name)
            .map_err(|e| format!("central directory record #{index}: {e}"))?;
        let mut skip = vec![0u8; (extra_len + comment_len) as usize];
        reader
            .read_exact(&mut skip)
            .map_err(|e| format!("central directory record #{index}: {e}"))?;
        names.push(name);
    }
    Ok(names)
}

/// Compares a member's local header with its central directory record.
fn check_local_header(
    raw: &mut File,
    archive: &Path,
    name: &str,
    entry: &zip::read::ZipFile<'_, File>,
) -> Result<(), UnpackError> {
    let mut header = [0u8; 30];
    raw.seek(SeekFrom::Start(entry.header_start()))
        .and_then(|_| raw.read_exact(&mut header))
        .map_err(|e| member_err(archive, name, format!("cannot read its local header: {e}")))?;
    let u16_at = |i: usize| u16::from_le_bytes([header[i], header[i + 1]]);
    let u32_at =
        |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
    if u32_at(0) != 0x0403_4b50 {
        return Err(member_err(archive, name, "its local header is missing"));
    }
    let flags = u16_at(6);
    let method = u16_at(8);
    let name_len = u16_at(26) as usize;
    let mut local_name = vec![0u8; name_len];
    raw.read_exact(&mut local_name)
        .map_err(|e| member_err(archive, name, format!("cannot read its local header: {e}")))?;
    let disagree = |what: &str| {
        member_err(
            archive,
            name,
            format!("its local header disagrees with the central directory ({what})"),
        )
    };
    if local_name != name.as_bytes() {
        return Err(disagree(&format!(
            "local name {:?}",
            String::from_utf8_lossy(&local_name)
        )));
    }
    #[allow(deprecated)]
    let central_method = entry.compression().to_u16();
    if method != central_method {
        return Err(disagree("compression method"));
    }
    // With a data descriptor (flag bit 3) the local CRC and sizes are zero; the central record
    // and our own CRC check of the data are then what counts.
    if flags & 0x8 == 0 {
        let (crc, csize, usize_) = (u32_at(14), u32_at(18), u32_at(22));
        if crc != entry.crc32() {
            return Err(disagree("CRC-32"));
        }
        // 0xFFFFFFFF means the real sizes are in the zip64 extra field.
        if csize != u32::MAX && u64::from(csize) != entry.compressed_size() {
            return Err(disagree("compressed size"));
        }
        if usize_ != u32::MAX && u64::from(usize_) != entry.size() {
            return Err(disagree("size"));
        }
    }
    Ok(())
}

/// Creates a new file (never following or replacing anything) with the given mode bits.
pub(crate) fn create_file(path: &Path, executable: bool) -> Result<File, UnpackError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if executable { 0o755 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = executable;
    options.open(path).map_err(io_err("create", path))
}

/// Creates a directory and its parents.
pub(crate) fn create_dirs(path: &Path) -> Result<(), UnpackError> {
    fs::create_dir_all(path).map_err(io_err("create directory", path))
}

/// Compression of a tar archive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TarCompression {
    /// `.tar.gz`.
    Gzip,
    /// `.tar.zst`.
    Zstd,
}

/// Extracts a tar archive into `out` (created; must not exist), keeping only members under
/// `strip` (a top directory such as `python`, removed from the names). Returns the members
/// extracted (names relative to `out`). On error `out` is removed.
pub fn extract_tar(
    archive: &Path,
    compression: TarCompression,
    strip: &str,
    out: &Path,
    limits: &Limits,
) -> Result<Vec<String>, UnpackError> {
    fs::create_dir(out).map_err(io_err("create", out))?;
    let result = extract_tar_into(archive, compression, strip, out, limits);
    if result.is_err() {
        let _ = fs::remove_dir_all(out);
    }
    result
}

fn extract_tar_into(
    archive: &Path,
    compression: TarCompression,
    strip: &str,
    out: &Path,
    limits: &Limits,
) -> Result<Vec<String>, UnpackError> {
    let file = File::open(archive).map_err(io_err("open", archive))?;
    let reader: Box<dyn Read> = match compression {
        TarCompression::Gzip => Box::new(flate2::read::GzDecoder::new(io::BufReader::new(file))),
        TarCompression::Zstd => Box::new(
            ruzstd::decoding::StreamingDecoder::new(io::BufReader::new(file)).map_err(|e| {
                UnpackError::Format {
                    archive: archive.to_path_buf(),
                    format: "zstd",
                    message: e.to_string(),
                }
            })?,
        ),
    };
    let format_err = |message: String| UnpackError::Format {
        archive: archive.to_path_buf(),
        format: "tar",
        message,
    };
    let mut tar = tar::Archive::new(reader);
    let mut set = MemberSet::default();
    let mut symlinks: Vec<(String, String)> = Vec::new();
    let mut extracted = Vec::new();
    let mut skipped_dirs = BTreeSet::new();
    for entry in tar.entries().map_err(|e| format_err(e.to_string()))? {
        let mut entry = entry.map_err(|e| format_err(e.to_string()))?;
        let raw_name = entry.path_bytes().into_owned();
        let name = String::from_utf8(raw_name).map_err(|e| {
            member_err(
                archive,
                &String::from_utf8_lossy(e.as_bytes()),
                "name is not UTF-8",
            )
        })?;
        let header = entry.header();
        let entry_type = header.entry_type();
        let kind = match entry_type {
            tar::EntryType::Directory => MemberKind::Dir,
            tar::EntryType::Regular | tar::EntryType::Continuous => MemberKind::File {
                size: header.size().map_err(|e| format_err(e.to_string()))?,
                executable: header.mode().map_err(|e| format_err(e.to_string()))? & 0o100 != 0,
            },
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t[..]).into_owned())
                    .unwrap_or_default();
                MemberKind::Symlink(target)
            }
            tar::EntryType::Link => {
                return Err(member_err(archive, &name, "hard links are not allowed"));
            }
            tar::EntryType::XGlobalHeader
            | tar::EntryType::XHeader
            | tar::EntryType::GNULongName
            | tar::EntryType::GNULongLink => continue,
            other => {
                let what = match other {
                    tar::EntryType::Char => "a character device",
                    tar::EntryType::Block => "a block device",
                    tar::EntryType::Fifo => "a fifo",
                    _ => "a special member",
                };
                return Err(member_err(archive, &name, format!("it is {what}")));
            }
        };
        let clean = set.admit(archive, &name, kind.clone(), limits)?;
        // Keep only what is under the top directory.
        let relative = if strip.is_empty() {
            clean.clone()
        } else if clean == strip {
            continue;
        } else if let Some(rest) = clean.strip_prefix(strip).and_then(|r| r.strip_prefix('/')) {
            rest.to_owned()
        } else {
            skipped_dirs.insert(clean);
            continue;
        };
        let dest = out.join(&relative);
        match kind {
            MemberKind::Dir => create_dirs(&dest)?,
            MemberKind::File { size, executable } => {
                if let Some(parent) = dest.parent() {
                    create_dirs(parent)?;
                }
                let mut file = create_file(&dest, executable)?;
                let mut limited = (&mut entry).take(size);
                let copied = io::copy(&mut limited, &mut file).map_err(|e| {
                    if crate::errors::is_disk_full(&e) {
                        write_err(archive, &name, e)
                    } else {
                        member_err(archive, &name, format!("read failed: {e}"))
                    }
                })?;
                if copied != size {
                    return Err(member_err(archive, &name, "truncated"));
                }
            }
            MemberKind::Symlink(target) => symlinks.push((relative.clone(), target)),
        }
        extracted.push(relative);
    }
    if extracted.is_empty() {
        return Err(format_err(format!(
            "nothing under the top directory {strip:?} (found {})",
            skipped_dirs
                .into_iter()
                .take(3)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    // Links last, once they are known to stay inside: nothing is ever written through one.
    set.check_symlinks(archive)?;
    for (relative, target) in symlinks {
        let dest = out.join(&relative);
        if let Some(parent) = dest.parent() {
            create_dirs(parent)?;
        }
        make_symlink(&target, &dest)?;
    }
    extracted.sort();
    Ok(extracted)
}

#[cfg(unix)]
fn make_symlink(target: &str, link: &Path) -> Result<(), UnpackError> {
    std::os::unix::fs::symlink(target, link).map_err(io_err("create symlink", link))
}

#[cfg(not(unix))]
fn make_symlink(target: &str, link: &Path) -> Result<(), UnpackError> {
    std::os::windows::fs::symlink_file(target, link).map_err(io_err("create symlink", link))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn a_full_disk_is_reported_as_such_not_as_a_bad_member() {
        use std::io::Write as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.whl");
        let mut zip = zip::ZipWriter::new(fs::File::create(&path).unwrap());
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("a/big.bin", options).unwrap();
        zip.write_all(&vec![7u8; 200_000]).unwrap();
        zip.finish().unwrap();
        let mut checked = CheckedZip::open(&path, &Limits::default()).unwrap();
        // /dev/full: every write fails with ENOSPC.
        let mut full = fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let err = checked.copy_member("a/big.bin", &mut full).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, UnpackError::DiskFull { .. }), "{text}");
        assert!(
            text.contains("no space left on the device while writing \"a/big.bin\"")
                && !text.contains("refusing"),
            "{text}"
        );
    }

    #[test]
    fn member_names() {
        for ok in ["a", "a/b.py", "dir/", "a.dist-info/RECORD"] {
            assert!(check_member_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "./a",
            "C:/x",
            "a\\b",
            "a/./b",
        ] {
            assert!(check_member_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn symlink_resolution_through_links() {
        let archive = Path::new("t.tar");
        let limits = Limits::default();
        let mut set = MemberSet::default();
        set.admit(archive, "a", MemberKind::Dir, &limits).unwrap();
        set.admit(archive, "a/l", MemberKind::Symlink("..".into()), &limits)
            .unwrap();
        set.admit(archive, "b", MemberKind::Dir, &limits).unwrap();
        // Lexically inside (b/../a/l/.. = a/..= root), really the parent of the root.
        set.admit(
            archive,
            "b/m",
            MemberKind::Symlink("../a/l/..".into()),
            &limits,
        )
        .unwrap();
        let err = set.check_symlinks(archive).unwrap_err().to_string();
        assert!(err.contains("b/m") && err.contains("outside"), "{err}");

        let mut set = MemberSet::default();
        set.admit(
            archive,
            "bin/python3",
            MemberKind::Symlink("python3.12".into()),
            &limits,
        )
        .unwrap();
        set.admit(archive, "x", MemberKind::Symlink("y".into()), &limits)
            .unwrap();
        set.admit(archive, "y", MemberKind::Symlink("x".into()), &limits)
            .unwrap();
        let err = set.check_symlinks(archive).unwrap_err().to_string();
        assert!(err.contains("loop"), "{err}");

        let mut set = MemberSet::default();
        set.admit(archive, "l", MemberKind::Symlink("d".into()), &limits)
            .unwrap();
        let err = set
            .admit(
                archive,
                "l/f",
                MemberKind::File {
                    size: 1,
                    executable: false,
                },
                &limits,
            )
            .unwrap_err();
        assert!(err.to_string().contains("below the symlink"), "{err}");
    }
}
