//! The deterministic ZIP writer: one canonical byte form for a given list of members.
//!
//! Members sorted by the UTF-8 bytes of their names; one timestamp; no extra fields except zip64
//! ones where a size or offset needs them; no comment; no data descriptors; modes 0644/0755 for
//! files, 0755 for directories, 0777 for symlinks, with a constant version-made-by (Unix, 2.0).
//! Contents are deflated with the pinned implementation of [`super::deflate`] in parallel, or
//! stored when deflating does not make them smaller; members that arrive already deflated (from
//! a wheel) are copied as they are.

use std::io::{self, Write};
use std::path::PathBuf;

use rayon::prelude::*;

use super::deflate;
use super::timestamp::DosDateTime;

const LOCAL_HEADER: u32 = 0x0403_4b50;
const CENTRAL_HEADER: u32 = 0x0201_4b50;
const END_OF_CENTRAL_DIRECTORY: u32 = 0x0605_4b50;
const ZIP64_END_OF_CENTRAL_DIRECTORY: u32 = 0x0606_4b50;
const ZIP64_LOCATOR: u32 = 0x0706_4b50;
/// Unix (3) in the high byte, ZIP spec 2.0 in the low byte.
const VERSION_MADE_BY: u16 = (3 << 8) | 20;
const VERSION_NEEDED: u16 = 20;
const VERSION_NEEDED_ZIP64: u16 = 45;
const FLAG_UTF8: u16 = 1 << 11;
const METHOD_STORED: u16 = 0;
const METHOD_DEFLATED: u16 = 8;
/// How much member data is prepared (read and compressed) at once.
const BATCH_BYTES: u64 = 64 << 20;

/// Where a file member's bytes come from.
#[derive(Clone, Debug)]
pub enum Contents {
    /// A file to read and compress.
    Path(PathBuf),
    /// Bytes to compress.
    Bytes(Vec<u8>),
    /// Raw deflate data copied as it is, with the CRC-32 and size of what it inflates to.
    Deflated {
        data: Vec<u8>,
        crc32: u32,
        size: u64,
    },
}

/// What a member is.
#[derive(Clone, Debug)]
pub enum MemberKind {
    /// A directory (its name gets a trailing `/`).
    Directory,
    /// A regular file.
    File {
        executable: bool,
        contents: Contents,
    },
    /// A symbolic link (Info-ZIP convention: mode 0120777, the target as contents).
    Symlink { target: String },
}

/// One member of the archive.
#[derive(Clone, Debug)]
pub struct Member {
    /// `/`-separated relative path, without a trailing `/`.
    pub name: String,
    /// What it is.
    pub kind: MemberKind,
}

/// What was written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ZipSummary {
    /// Members written.
    pub members: usize,
    /// Size of the archive in bytes.
    pub bytes: u64,
    /// Members whose deflate data was copied as it came.
    pub copied: usize,
    /// Members deflated here.
    pub deflated: usize,
    /// Members stored uncompressed.
    pub stored: usize,
}

/// Why an archive could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ZipError {
    /// A member name that cannot be in a portable archive.
    #[error("cannot put {name:?} in a ZIP: {reason}")]
    InvalidName { name: String, reason: &'static str },
    /// Two members with one name.
    #[error("two members are named {name:?}")]
    Duplicate { name: String },
    /// A member file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    /// The archive could not be written.
    #[error("cannot write the ZIP: {0}")]
    Write(#[from] io::Error),
}

struct Prepared {
    name: String,
    method: u16,
    crc32: u32,
    size: u64,
    data: Vec<u8>,
    mode: u32,
    origin: Origin,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Origin {
    Copied,
    Deflated,
    Stored,
}

fn check_name(name: &str) -> Result<(), ZipError> {
    let invalid = |reason| {
        Err(ZipError::InvalidName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return invalid("the name is empty");
    }
    if name.starts_with('/') {
        return invalid("it is absolute");
    }
    if name.contains('\\') {
        return invalid("it contains a backslash");
    }
    if name
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return invalid("it has an empty, '.' or '..' component");
    }
    if name.len() > u16::MAX as usize {
        return invalid("it is longer than 65535 bytes");
    }
    Ok(())
}

fn prepare(member: Member) -> Result<Prepared, ZipError> {
    let (name, kind) = (member.name, member.kind);
    let simple = |name: String, mode: u32, data: Vec<u8>| Prepared {
        crc32: crc32fast::hash(&data),
        size: data.len() as u64,
        name,
        method: METHOD_STORED,
        data,
        mode,
        origin: Origin::Stored,
    };
    Ok(match kind {
        MemberKind::Directory => simple(format!("{name}/"), 0o040755, Vec::new()),
        MemberKind::Symlink { target } => simple(name, 0o120777, target.into_bytes()),
        MemberKind::File {
            executable,
            contents,
        } => {
            let mode = if executable { 0o100755 } else { 0o100644 };
            match contents {
                Contents::Deflated { data, crc32, size } => Prepared {
                    name,
                    method: METHOD_DEFLATED,
                    crc32,
                    size,
                    data,
                    mode,
                    origin: Origin::Copied,
                },
                Contents::Bytes(raw) => compress(name, raw, mode),
                Contents::Path(path) => {
                    let raw =
                        std::fs::read(&path).map_err(|source| ZipError::Read { path, source })?;
                    compress(name, raw, mode)
                }
            }
        }
    })
}

fn compress(name: String, raw: Vec<u8>, mode: u32) -> Prepared {
    let crc32 = crc32fast::hash(&raw);
    let size = raw.len() as u64;
    let packed = deflate::deflate(&raw);
    if packed.len() < raw.len() {
        Prepared {
            name,
            method: METHOD_DEFLATED,
            crc32,
            size,
            data: packed,
            mode,
            origin: Origin::Deflated,
        }
    } else {
        Prepared {
            name,
            method: METHOD_STORED,
            crc32,
            size,
            data: raw,
            mode,
            origin: Origin::Stored,
        }
    }
}

fn estimated_input(member: &Member) -> u64 {
    match &member.kind {
        MemberKind::File {
            contents: Contents::Path(path),
            ..
        } => std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
        MemberKind::File {
            contents: Contents::Bytes(b),
            ..
        } => b.len() as u64,
        MemberKind::File {
            contents: Contents::Deflated { data, .. },
            ..
        } => data.len() as u64,
        _ => 0,
    }
}

/// The members of a file tree (its root excluded), for [`write_zip`]: every directory, file
/// (read when written) and symlink, by its path from the root.
pub fn members_of_tree(tree: &crate::hash::tree::Tree, root: &std::path::Path) -> Vec<Member> {
    use crate::hash::tree::NodeKind;
    tree.nodes
        .iter()
        .filter(|node| !node.path.is_empty())
        .map(|node| Member {
            name: node.path.clone(),
            kind: match &node.kind {
                NodeKind::Directory => MemberKind::Directory,
                NodeKind::File { executable, .. } => MemberKind::File {
                    executable: *executable,
                    contents: Contents::Path(root.join(&node.path)),
                },
                NodeKind::Symlink { target } => MemberKind::Symlink {
                    target: target.clone(),
                },
            },
        })
        .collect()
}

struct CentralRecord {
    name: String,
    method: u16,
    crc32: u32,
    size: u64,
    compressed: u64,
    offset: u64,
    mode: u32,
}

/// Writes `members` as a canonical ZIP to `out`.
pub fn write_zip(
    out: impl Write,
    members: Vec<Member>,
    time: DosDateTime,
) -> Result<ZipSummary, ZipError> {
    write_zip_observed(out, members, time, &mut |_: &Deflated<'_>| Ok(()))
}

/// A member this writer deflated itself (not copied, not stored), as [`write_zip_observed`]
/// reports it.
pub struct Deflated<'a> {
    /// The member's name.
    pub name: &'a str,
    /// Uncompressed size.
    pub size: u64,
    /// CRC-32 of the uncompressed bytes.
    pub crc32: u32,
    /// The raw deflate data.
    pub data: &'a [u8],
}

/// Like [`write_zip`], and calls `on_deflated` with every member it deflated (to cache the
/// compressed bytes); an error from it stops the write.
pub fn write_zip_observed(
    out: impl Write,
    mut members: Vec<Member>,
    time: DosDateTime,
    on_deflated: &mut dyn FnMut(&Deflated<'_>) -> io::Result<()>,
) -> Result<ZipSummary, ZipError> {
    for member in &members {
        check_name(&member.name)?;
    }
    let key = |m: &Member| match m.kind {
        MemberKind::Directory => format!("{}/", m.name),
        _ => m.name.clone(),
    };
    members.sort_by(|a, b| key(a).as_bytes().cmp(key(b).as_bytes()));
    for pair in members.windows(2) {
        if key(&pair[0]) == key(&pair[1]) || pair[0].name == pair[1].name {
            return Err(ZipError::Duplicate {
                name: pair[1].name.clone(),
            });
        }
    }
    let mut writer = CountingWriter {
        inner: io::BufWriter::with_capacity(1 << 20, out),
        written: 0,
    };
    let mut central = Vec::with_capacity(members.len());
    let mut summary = ZipSummary::default();
    let mut pending = members.into_iter().peekable();
    while pending.peek().is_some() {
        let mut batch = Vec::new();
        let mut batch_bytes = 0;
        while let Some(member) = pending.next_if(|_| batch_bytes < BATCH_BYTES) {
            batch_bytes += estimated_input(&member).max(1);
            batch.push(member);
        }
        let prepared: Vec<Prepared> = batch
            .into_par_iter()
            .map(prepare)
            .collect::<Result<_, _>>()?;
        for member in prepared {
            match member.origin {
                Origin::Copied => summary.copied += 1,
                Origin::Deflated => {
                    summary.deflated += 1;
                    on_deflated(&Deflated {
                        name: &member.name,
                        size: member.size,
                        crc32: member.crc32,
                        data: &member.data,
                    })?;
                }
                Origin::Stored => summary.stored += 1,
            }
            let offset = writer.written;
            write_local_header(&mut writer, &member, time)?;
            writer.write_all(&member.data)?;
            central.push(CentralRecord {
                compressed: member.data.len() as u64,
                name: member.name,
                method: member.method,
                crc32: member.crc32,
                size: member.size,
                offset,
                mode: member.mode,
            });
        }
    }
    let directory_offset = writer.written;
    for record in &central {
        write_central_header(&mut writer, record, time)?;
    }
    let directory_size = writer.written - directory_offset;
    write_end(
        &mut writer,
        central.len() as u64,
        directory_size,
        directory_offset,
    )?;
    writer.inner.flush()?;
    summary.members = central.len();
    summary.bytes = writer.written;
    Ok(summary)
}

struct CountingWriter<W: Write> {
    inner: W,
    written: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn flags(name: &str) -> u16 {
    if name.is_ascii() {
        0
    } else {
        FLAG_UTF8
    }
}

const U32_MAX: u64 = 0xFFFF_FFFF;

fn write_local_header(w: &mut impl Write, m: &Prepared, time: DosDateTime) -> io::Result<()> {
    let zip64 = m.size >= U32_MAX || m.data.len() as u64 >= U32_MAX;
    let mut head = Vec::with_capacity(30 + m.name.len() + 20);
    head.extend_from_slice(&LOCAL_HEADER.to_le_bytes());
    head.extend_from_slice(
        &(if zip64 {
            VERSION_NEEDED_ZIP64
        } else {
            VERSION_NEEDED
        })
        .to_le_bytes(),
    );
    head.extend_from_slice(&flags(&m.name).to_le_bytes());
    head.extend_from_slice(&m.method.to_le_bytes());
    head.extend_from_slice(&time.time.to_le_bytes());
    head.extend_from_slice(&time.date.to_le_bytes());
    head.extend_from_slice(&m.crc32.to_le_bytes());
    if zip64 {
        head.extend_from_slice(&u32::MAX.to_le_bytes());
        head.extend_from_slice(&u32::MAX.to_le_bytes());
    } else {
        head.extend_from_slice(&(m.data.len() as u32).to_le_bytes());
        head.extend_from_slice(&(m.size as u32).to_le_bytes());
    }
    head.extend_from_slice(&(m.name.len() as u16).to_le_bytes());
    head.extend_from_slice(&(if zip64 { 20u16 } else { 0 }).to_le_bytes());
    head.extend_from_slice(m.name.as_bytes());
    if zip64 {
        head.extend_from_slice(&1u16.to_le_bytes());
        head.extend_from_slice(&16u16.to_le_bytes());
        head.extend_from_slice(&m.size.to_le_bytes());
        head.extend_from_slice(&(m.data.len() as u64).to_le_bytes());
    }
    w.write_all(&head)
}

fn write_central_header(
    w: &mut impl Write,
    r: &CentralRecord,
    time: DosDateTime,
) -> io::Result<()> {
    // zip64 extra fields only for the values that overflow, in the order the spec gives.
    let mut extra = Vec::new();
    let field = |value: u64, extra: &mut Vec<u8>| -> u32 {
        if value >= U32_MAX {
            extra.extend_from_slice(&value.to_le_bytes());
            u32::MAX
        } else {
            value as u32
        }
    };
    let size = field(r.size, &mut extra);
    let compressed = field(r.compressed, &mut extra);
    let offset = field(r.offset, &mut extra);
    let zip64 = !extra.is_empty();
    let mut head = Vec::with_capacity(46 + r.name.len() + 28);
    head.extend_from_slice(&CENTRAL_HEADER.to_le_bytes());
    head.extend_from_slice(&VERSION_MADE_BY.to_le_bytes());
    head.extend_from_slice(
        &(if zip64 {
            VERSION_NEEDED_ZIP64
        } else {
            VERSION_NEEDED
        })
        .to_le_bytes(),
    );
    head.extend_from_slice(&flags(&r.name).to_le_bytes());
    head.extend_from_slice(&r.method.to_le_bytes());
    head.extend_from_slice(&time.time.to_le_bytes());
    head.extend_from_slice(&time.date.to_le_bytes());
    head.extend_from_slice(&r.crc32.to_le_bytes());
    head.extend_from_slice(&compressed.to_le_bytes());
    head.extend_from_slice(&size.to_le_bytes());
    head.extend_from_slice(&(r.name.len() as u16).to_le_bytes());
    head.extend_from_slice(&(if zip64 { extra.len() as u16 + 4 } else { 0 }).to_le_bytes());
    head.extend_from_slice(&0u16.to_le_bytes()); // comment length
    head.extend_from_slice(&0u16.to_le_bytes()); // disk number start
    head.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
    let dos_directory = if r.mode & 0o170000 == 0o040000 {
        0x10
    } else {
        0
    };
    head.extend_from_slice(&((r.mode << 16) | dos_directory).to_le_bytes());
    head.extend_from_slice(&offset.to_le_bytes());
    head.extend_from_slice(r.name.as_bytes());
    if zip64 {
        head.extend_from_slice(&1u16.to_le_bytes());
        head.extend_from_slice(&(extra.len() as u16).to_le_bytes());
        head.extend_from_slice(&extra);
    }
    w.write_all(&head)
}

fn write_end(
    w: &mut CountingWriter<impl Write>,
    entries: u64,
    size: u64,
    offset: u64,
) -> io::Result<()> {
    let zip64 = entries >= 0xFFFF || size >= U32_MAX || offset >= U32_MAX;
    if zip64 {
        let record_offset = w.written;
        let mut rec = Vec::with_capacity(56 + 20);
        rec.extend_from_slice(&ZIP64_END_OF_CENTRAL_DIRECTORY.to_le_bytes());
        rec.extend_from_slice(&44u64.to_le_bytes());
        rec.extend_from_slice(&VERSION_MADE_BY.to_le_bytes());
        rec.extend_from_slice(&VERSION_NEEDED_ZIP64.to_le_bytes());
        rec.extend_from_slice(&0u32.to_le_bytes());
        rec.extend_from_slice(&0u32.to_le_bytes());
        rec.extend_from_slice(&entries.to_le_bytes());
        rec.extend_from_slice(&entries.to_le_bytes());
        rec.extend_from_slice(&size.to_le_bytes());
        rec.extend_from_slice(&offset.to_le_bytes());
        rec.extend_from_slice(&ZIP64_LOCATOR.to_le_bytes());
        rec.extend_from_slice(&0u32.to_le_bytes());
        rec.extend_from_slice(&record_offset.to_le_bytes());
        rec.extend_from_slice(&1u32.to_le_bytes());
        w.write_all(&rec)?;
    }
    let mut end = Vec::with_capacity(22);
    end.extend_from_slice(&END_OF_CENTRAL_DIRECTORY.to_le_bytes());
    end.extend_from_slice(&0u16.to_le_bytes());
    end.extend_from_slice(&0u16.to_le_bytes());
    let count = entries.min(0xFFFF) as u16;
    end.extend_from_slice(&count.to_le_bytes());
    end.extend_from_slice(&count.to_le_bytes());
    end.extend_from_slice(&(size.min(U32_MAX) as u32).to_le_bytes());
    end.extend_from_slice(&(offset.min(U32_MAX) as u32).to_le_bytes());
    end.extend_from_slice(&0u16.to_le_bytes());
    w.write_all(&end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, bytes: &[u8]) -> Member {
        Member {
            name: name.into(),
            kind: MemberKind::File {
                executable: false,
                contents: Contents::Bytes(bytes.to_vec()),
            },
        }
    }

    #[test]
    fn refuses_bad_and_duplicate_names() {
        for bad in ["", "/abs", "a/../b", "a//b", "a\\b", "./a"] {
            let err =
                write_zip(Vec::new(), vec![file(bad, b"x")], DosDateTime::DEFAULT).unwrap_err();
            assert!(
                matches!(err, ZipError::InvalidName { .. }),
                "{bad:?}: {err}"
            );
        }
        let err = write_zip(
            Vec::new(),
            vec![file("a", b"1"), file("a", b"2")],
            DosDateTime::DEFAULT,
        )
        .unwrap_err();
        assert!(matches!(err, ZipError::Duplicate { .. }));
    }

    #[test]
    fn input_order_does_not_matter() {
        let members = vec![file("b", b"bbbb"), file("a/x", &[7; 1000]), file("a-", b"")];
        let mut reversed = members.clone();
        reversed.reverse();
        let (mut one, mut two) = (Vec::new(), Vec::new());
        write_zip(&mut one, members, DosDateTime::DEFAULT).unwrap();
        write_zip(&mut two, reversed, DosDateTime::DEFAULT).unwrap();
        assert_eq!(one, two);
    }
}
