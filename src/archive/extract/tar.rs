//! The hardened tar reader (python-build-standalone archives, remote entry archives): gzip or
//! zstd, regular files, directories and relative symlinks only, links created last.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Read};
use std::path::Path;

use super::{
    create_dirs, create_file, make_symlink, member_err, write_err, FormatProblem, Limits,
    MemberKind, MemberSet, UnpackError,
};

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
    fs_err::create_dir(out)?;
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
    // The plain file: read errors are reported as the archive's format problem, which names it.
    let file = fs_err::File::open(archive)?.into_file();
    let reader: Box<dyn Read> = match compression {
        TarCompression::Gzip => Box::new(flate2::read::GzDecoder::new(io::BufReader::new(file))),
        TarCompression::Zstd => Box::new(
            ruzstd::decoding::StreamingDecoder::new(io::BufReader::new(file)).map_err(|e| {
                UnpackError::Format {
                    archive: archive.to_path_buf(),
                    format: "zstd",
                    problem: FormatProblem::Zstd(e),
                }
            })?,
        ),
    };
    let format_err = |problem: FormatProblem| UnpackError::Format {
        archive: archive.to_path_buf(),
        format: "tar",
        problem,
    };
    let mut tar = tar::Archive::new(reader);
    let mut set = MemberSet::default();
    let mut symlinks: Vec<(String, String)> = Vec::new();
    let mut extracted = Vec::new();
    let mut skipped_dirs = BTreeSet::new();
    for entry in tar
        .entries()
        .map_err(|e| format_err(FormatProblem::Tar(e)))?
    {
        let mut entry = entry.map_err(|e| format_err(FormatProblem::Tar(e)))?;
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
                size: header
                    .size()
                    .map_err(|e| format_err(FormatProblem::Tar(e)))?,
                executable: header
                    .mode()
                    .map_err(|e| format_err(FormatProblem::Tar(e)))?
                    & 0o100
                    != 0,
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
        return Err(format_err(FormatProblem::NothingUnder {
            strip: strip.to_owned(),
            found: skipped_dirs.into_iter().take(3).collect(),
        }));
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
