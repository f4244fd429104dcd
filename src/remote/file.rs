//! `file:///DIR`: a directory of blobs, read and written. Each blob is written to a temporary
//! file in the directory and renamed into place, so readers never see half a blob.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::{copy_limited, io_err, Blob, PutReport, Remote, RemoteError, Size, Upload};

/// A directory remote.
pub struct FileRemote {
    dir: PathBuf,
}

impl FileRemote {
    /// The remote at `dir` (created on the first push).
    pub fn new(dir: PathBuf) -> FileRemote {
        FileRemote { dir }
    }

    fn path(&self, name: &str) -> Result<PathBuf, RemoteError> {
        // Names are ours (ids, file names), but never let one leave the directory.
        if name.is_empty() || name.starts_with('.') || name.contains(['/', '\\', '\0']) {
            return Err(RemoteError::NotFound {
                remote: self.location(),
                what: format!("blob called {name:?} (not a plain file name)"),
            });
        }
        Ok(self.dir.join(name))
    }
}

impl Remote for FileRemote {
    fn location(&self) -> String {
        format!("file://{}", self.dir.display())
    }

    fn list(&self) -> Result<Option<BTreeMap<String, Blob>>, RemoteError> {
        let mut blobs = BTreeMap::new();
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Some(blobs)),
            Err(e) => return Err(io_err("list", &self.dir)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io_err("list", &self.dir))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let meta = entry.metadata().map_err(io_err("inspect", &entry.path()))?;
            if name.starts_with('.') || !meta.is_file() {
                continue;
            }
            // No digest: hashing every blob to list them would read the whole cache.
            blobs.insert(
                name.clone(),
                Blob {
                    name,
                    size: meta.len(),
                    sha256: None,
                },
            );
        }
        Ok(Some(blobs))
    }

    fn get(&self, name: &str, dest: &Path, size: Size) -> Result<bool, RemoteError> {
        let path = self.path(name)?;
        let file = match fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        copy_limited(file, dest, size, &self.location(), name)?;
        Ok(true)
    }

    fn put(&self, uploads: &[Upload]) -> Result<PutReport, RemoteError> {
        fs::create_dir_all(&self.dir).map_err(io_err("create", &self.dir))?;
        let mut report = PutReport::default();
        for upload in uploads {
            let path = self.path(&upload.name)?;
            let same = fs::metadata(&path).is_ok_and(|m| m.len() == upload.size)
                && crate::hash::sha256_file(&path).is_ok_and(|d| d == upload.sha256);
            if same {
                report.skipped.push(upload.name.clone());
                continue;
            }
            let temp = tempfile::Builder::new()
                .prefix(".upload")
                .tempfile_in(&self.dir)
                .map_err(io_err("create a temporary file in", &self.dir))?;
            fs::copy(&upload.path, temp.path()).map_err(io_err("write", temp.path()))?;
            temp.as_file()
                .sync_all()
                .map_err(io_err("write", temp.path()))?;
            temp.persist(&path)
                .map_err(|e| io_err("write", &path)(e.error))?;
            report.uploaded.push(upload.name.clone());
        }
        Ok(report)
    }
}
