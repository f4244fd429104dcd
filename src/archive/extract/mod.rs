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

use std::fs::{self, File};
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

#[cfg(unix)]
fn make_symlink(target: &str, link: &Path) -> Result<(), UnpackError> {
    std::os::unix::fs::symlink(target, link).map_err(io_err("create symlink", link))
}

#[cfg(not(unix))]
fn make_symlink(target: &str, link: &Path) -> Result<(), UnpackError> {
    std::os::windows::fs::symlink_file(target, link).map_err(io_err("create symlink", link))
}
