//! Reading a bundle's manifest from a bundle directory, a ZIP, or the manifest file itself.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::bundle::check::BundleZipProblem;
use crate::bundle::manifest::{BundleManifest, MANIFEST_NAME};

/// Why a side of a diff could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// Reading a file.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A ZIP that cannot be read, or has no manifest.
    #[error("{}: {problem}; is it a pystore bundle ZIP?", path.display())]
    Zip {
        path: PathBuf,
        #[source]
        problem: BundleZipProblem,
    },
    /// A directory without a manifest.
    #[error("{} has no {MANIFEST_NAME}: give a bundle's store path, a bundle ZIP or a manifest file", path.display())]
    NotABundle { path: PathBuf },
    /// A manifest that does not parse.
    #[error("{} is not a pystore bundle manifest: {source}", path.display())]
    Manifest {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// Manifests larger than this are refused (a large bundle's is a few MiB).
const MANIFEST_LIMIT: u64 = 256 << 20;

/// Reads the manifest of the bundle directory, ZIP or manifest file at `path`.
pub fn load(path: &Path) -> Result<BundleManifest, DiffError> {
    let io = |source| DiffError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = fs::metadata(path).map_err(io)?;
    let bytes = if meta.is_dir() {
        let file = path.join(MANIFEST_NAME);
        if !file.is_file() {
            return Err(DiffError::NotABundle {
                path: path.to_path_buf(),
            });
        }
        fs::read(&file).map_err(|source| DiffError::Io { path: file, source })?
    } else {
        let mut magic = [0u8; 4];
        let mut file = fs::File::open(path).map_err(io)?;
        let is_zip = file.read_exact(&mut magic).is_ok() && magic == *b"PK\x03\x04";
        if is_zip {
            read_zip_member(path, MANIFEST_NAME)?
        } else {
            fs::read(path).map_err(io)?
        }
    };
    BundleManifest::parse(&bytes).map_err(|source| DiffError::Manifest {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads one member of the ZIP at `path`.
pub fn read_zip_member(path: &Path, name: &str) -> Result<Vec<u8>, DiffError> {
    let zip_err = |problem: BundleZipProblem| DiffError::Zip {
        path: path.to_path_buf(),
        problem,
    };
    let file = fs::File::open(path).map_err(|source| DiffError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut archive =
        zip::ZipArchive::new(file).map_err(|e| zip_err(BundleZipProblem::NotZip(e)))?;
    let member = archive
        .by_name(name)
        .map_err(|_| zip_err(BundleZipProblem::NoMember(name.to_owned())))?;
    let mut bytes = Vec::new();
    member
        .take(MANIFEST_LIMIT)
        .read_to_end(&mut bytes)
        .map_err(|source| {
            zip_err(BundleZipProblem::Read {
                member: name.to_owned(),
                source,
            })
        })?;
    Ok(bytes)
}
