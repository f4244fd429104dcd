//! The hardened zip reader (wheels, Windows embeddable distributions): every member checked
//! when the archive is opened, local headers against the central directory, data against the
//! declared size and CRC-32.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::{member_err, write_err, FormatProblem, Limits, MemberKind, MemberSet, UnpackError};

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
        let file = fs_err::File::open(path)?.into_file();
        let format_err = |problem: FormatProblem| UnpackError::Format {
            archive: path.to_path_buf(),
            format: "zip",
            problem,
        };
        let mut zip = zip::ZipArchive::new(file).map_err(|e| format_err(FormatProblem::Zip(e)))?;
        let mut raw = fs_err::File::open(path)?.into_file();
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
            return Err(format_err(FormatProblem::MemberCount {
                listed: names.len(),
                found: zip.len(),
            }));
        }
        let mut set = MemberSet::default();
        let mut members = BTreeMap::new();
        for index in 0..zip.len() {
            let entry = zip
                .by_index_raw(index)
                .map_err(|source| format_err(FormatProblem::ZipMember { index, source }))?;
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
        let mut entry = self
            .zip
            .by_index(index)
            .map_err(|source| UnpackError::Format {
                archive: path.clone(),
                format: "zip",
                problem: FormatProblem::ZipMemberNamed {
                    name: name.to_owned(),
                    source,
                },
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

    /// Where a deflated file member's compressed data lies in the archive (offset, length), as
    /// [`crate::archive::reuse`] indexes it, and its declared CRC-32 (which
    /// [`CheckedZip::copy_member`] checks the data against); `None` for a member stored or
    /// missing.
    pub fn deflated_data(&mut self, name: &str) -> Option<(u64, u64, u32)> {
        let &(index, _) = self.members.get(name)?;
        let entry = self.zip.by_index_raw(index).ok()?;
        (entry.compression() == zip::CompressionMethod::Deflated)
            .then(|| (entry.data_start(), entry.compressed_size(), entry.crc32()))
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
fn central_directory_names(raw: &mut File) -> Result<Vec<Vec<u8>>, FormatProblem> {
    let len = raw.seek(SeekFrom::End(0)).map_err(FormatProblem::Read)?;
    let tail_len = len.min(22 + 65_535);
    let mut tail = vec![0u8; tail_len as usize];
    raw.seek(SeekFrom::Start(len - tail_len))
        .and_then(|_| raw.read_exact(&mut tail))
        .map_err(FormatProblem::Read)?;
    let eocd = (0..tail.len().saturating_sub(21))
        .rev()
        .find(|&i| tail[i..i + 4] == [0x50, 0x4b, 0x05, 0x06])
        .ok_or(FormatProblem::NoEndRecord)?;
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
        let locator = eocd
            .checked_sub(20)
            .ok_or(FormatProblem::TruncatedZip64Locator)?;
        if tail[locator..locator + 4] != [0x50, 0x4b, 0x06, 0x07] {
            return Err(FormatProblem::NoZip64Locator);
        }
        let record_at = u64_at(&tail, locator + 8);
        let mut record = [0u8; 56];
        raw.seek(SeekFrom::Start(record_at))
            .and_then(|_| raw.read_exact(&mut record))
            .map_err(FormatProblem::Read)?;
        if record[..4] != [0x50, 0x4b, 0x06, 0x06] {
            return Err(FormatProblem::BadZip64Record);
        }
        count = u64_at(&record, 32);
        offset = u64_at(&record, 48);
    }
    raw.seek(SeekFrom::Start(offset))
        .map_err(FormatProblem::Read)?;
    let mut reader = io::BufReader::new(&mut *raw);
    let mut names = Vec::new();
    for index in 0..count {
        let mut fixed = [0u8; 46];
        let record = |source| FormatProblem::Record { index, source };
        reader.read_exact(&mut fixed).map_err(record)?;
        if fixed[..4] != [0x50, 0x4b, 0x01, 0x02] {
            return Err(FormatProblem::RecordSignature(index));
        }
        let (name_len, extra_len, comment_len) =
            (u16_at(&fixed, 28), u16_at(&fixed, 30), u16_at(&fixed, 32));
        let mut name = vec![0u8; name_len as usize];
        reader.read_exact(&mut name).map_err(record)?;
        let mut skip = vec![0u8; (extra_len + comment_len) as usize];
        reader.read_exact(&mut skip).map_err(record)?;
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

#[cfg(test)]
mod tests {
    use std::fs;

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
}
