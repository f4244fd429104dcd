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
//!
//! The readers live in `zip.rs` and `tar.rs`; the member-name rules and the per-archive checks
//! (duplicates, links, limits) they share in `members.rs`.

mod members;
mod tar;
mod zip;

pub(crate) use members::MemberSet;
pub use members::{check_member_name, MemberKind};
pub use tar::{extract_tar, TarCompression};
pub use zip::CheckedZip;

use std::fs::File;
use std::io;
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
    /// A file-system operation failed. The error comes from `fs-err`, whose message names the
    /// operation and the path (`failed to create file `…`: File exists (os error 17)`).
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The archive is not readable as its format.
    #[error("{archive} is not a valid {format} archive: {problem}")]
    Format {
        archive: PathBuf,
        format: &'static str,
        #[source]
        problem: FormatProblem,
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

/// Why an archive is not readable as its format.
#[derive(Debug, thiserror::Error)]
pub enum FormatProblem {
    /// The zip reader refused the archive.
    #[error("{0}")]
    Zip(#[source] ::zip::result::ZipError),
    /// The zip reader refused a member, by index.
    #[error("member #{index}: {source}")]
    ZipMember {
        index: usize,
        source: ::zip::result::ZipError,
    },
    /// The zip reader refused a member, by name.
    #[error("member {name:?}: {source}")]
    ZipMemberNamed {
        name: String,
        source: ::zip::result::ZipError,
    },
    /// The raw central directory could not be read.
    #[error("{0}")]
    Read(#[source] io::Error),
    /// The end of central directory record is missing.
    #[error("no end of central directory record")]
    NoEndRecord,
    /// The zip64 locator does not fit before the end record.
    #[error("truncated zip64 locator")]
    TruncatedZip64Locator,
    /// The zip64 locator is missing.
    #[error("missing zip64 end of central directory locator")]
    NoZip64Locator,
    /// The zip64 end record has a bad signature.
    #[error("bad zip64 end of central directory record")]
    BadZip64Record,
    /// A central directory record could not be read.
    #[error("central directory record #{index}: {source}")]
    Record { index: u64, source: io::Error },
    /// A central directory record with a bad signature.
    #[error("central directory record #{0} has a bad signature")]
    RecordSignature(u64),
    /// The raw central directory and the zip reader disagree on the member count.
    #[error("its central directory lists {listed} members, the zip reader found {found}")]
    MemberCount { listed: usize, found: usize },
    /// The zstd frame header is not readable.
    #[error("{0}")]
    Zstd(#[source] ruzstd::decoding::errors::FrameDecoderError),
    /// The tar stream could not be read.
    #[error("{0}")]
    Tar(#[source] io::Error),
    /// Nothing under the directory every member must be in.
    #[error("nothing under the top directory {strip:?} (found {})", found.join(", "))]
    NothingUnder {
        strip: String,
        /// Up to three top directories that were found instead.
        found: Vec<String>,
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

/// Creates a new file (never following or replacing anything) with the given mode bits.
pub(crate) fn create_file(path: &Path, executable: bool) -> Result<File, UnpackError> {
    let mut options = fs_err::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use fs_err::os::unix::fs::OpenOptionsExt;
        options.mode(if executable { 0o755 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = executable;
    // The plain file from here on: a failed write is classified by its OS error (a full disk
    // is not the archive's fault), which `fs-err`'s wrapping would hide, and `write_err` names
    // the member and the archive.
    Ok(options.open(path)?.into_file())
}

/// Creates a directory and its parents.
pub(crate) fn create_dirs(path: &Path) -> Result<(), UnpackError> {
    Ok(fs_err::create_dir_all(path)?)
}

#[cfg(unix)]
fn make_symlink(target: &str, link: &Path) -> Result<(), UnpackError> {
    Ok(fs_err::os::unix::fs::symlink(target, link)?)
}

#[cfg(not(unix))]
fn make_symlink(target: &str, link: &Path) -> Result<(), UnpackError> {
    Ok(fs_err::os::windows::fs::symlink_file(target, link)?)
}
