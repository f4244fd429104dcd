//! The package source `pystore lock` resolves against: the index (when there is one), local
//! wheelhouses (`--find-links`) and the store, with what it learns about the files it reads
//! (sizes and hashes of downloaded or local wheels) kept for the lock.
//!
//! Metadata comes from the index's PEP 658 files where offered; otherwise from the wheel's
//! METADATA member, read by HTTP range requests (the ZIP directory at the end, then that member:
//! a few kilobytes of a wheel of any size). Only when the server does not serve ranges is the
//! whole wheel downloaded — through the store, as the fixed-output entry realise will want later,
//! so locking then realising downloads it once.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::pylock::WheelLocation;
use crate::fetch::http::HttpClient;
use crate::fetch::index::{CoreMetadata as IndexCoreMetadata, IndexClient, IndexFile, ProjectPage};
use crate::fetch::ranged::RangedFile;
use crate::fetch::{FetchError, Fetcher, FixedOutput};
use crate::hash::Sha256Digest;
use crate::python::filename::WheelFilename;
use crate::python::metadata::CoreMetadata;
use crate::python::resolve::{PackageSource, SourceError};
use crate::store::EntryName;

/// How much of a wheel's end the first range request asks for: the ZIP directory of all but
/// the largest wheels, and often METADATA too (it is written near the end).
const RANGE_TAIL: u64 = 64 << 10;

/// A wheelhouse (`--find-links`) that cannot be listed.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the wheelhouse {}: {error}; check --find-links and PYSTORE_FIND_LINKS", path.display())]
pub struct WheelhouseError {
    /// The directory.
    pub path: PathBuf,
    /// Why it cannot be listed.
    pub error: std::io::Error,
}

/// What the source itself reports to the resolver (beside the index's and the downloads'
/// errors, which it passes on).
#[derive(Debug, thiserror::Error)]
pub enum SourceProblem {
    /// Without an index, a project none of the wheelhouses has.
    #[error("no wheel of {name} in the wheelhouses ({wheelhouses}); with --no-index they are the only source: put its wheels there")]
    NotInWheelhouses {
        name: String,
        /// The wheelhouses, described.
        wheelhouses: String,
    },
    /// A wheel downloaded whose size and sha256 were not recorded.
    #[error("{wheel}: downloaded but not measured (a bug)")]
    NotMeasured { wheel: String },
}

/// The index, local wheelhouses and the store as a [`PackageSource`], with what it learnt about
/// files kept for the lock (sizes and hashes of downloaded or local wheels).
pub struct IndexSource<'f, 'i> {
    fetcher: &'f Fetcher<'f>,
    /// `None` with `--no-index`: nothing is asked of any index.
    index: Option<&'i IndexClient<'i>>,
    /// Wheelhouse wheels by normalised project name, as `file://` index files.
    local: Wheelhouses,
    pages: RefCell<BTreeMap<String, ProjectPage>>,
    metadata: RefCell<BTreeMap<String, CoreMetadata>>,
    /// `(size, sha256)` of wheels downloaded or hashed, by file name.
    facts: RefCell<BTreeMap<String, (u64, Sha256Digest)>>,
    /// Wheels the index gives no sha256 for are downloaded here to be read.
    scratch: RefCell<Option<tempfile::TempDir>>,
}

/// The wheels of local wheelhouses (`--find-links`), listed once: by normalised project name,
/// in wheelhouse order then file name order; a file name seen in an earlier wheelhouse hides it
/// in later ones (realise looks them up by name in that order too).
#[derive(Clone, Debug, Default)]
pub struct Wheelhouses {
    /// The directories, as given.
    pub dirs: Vec<PathBuf>,
    /// Their wheels by normalised project name.
    pub files: BTreeMap<String, Vec<IndexFile>>,
}

impl Wheelhouses {
    /// Lists the wheels in `dirs` (files whose names are valid wheel names; others are ignored,
    /// as pip ignores them). An unreadable directory is an error naming it.
    pub fn list(dirs: &[PathBuf]) -> Result<Wheelhouses, WheelhouseError> {
        let mut files: BTreeMap<String, Vec<IndexFile>> = BTreeMap::new();
        let mut seen = std::collections::BTreeSet::new();
        for dir in dirs {
            let error = |error: std::io::Error| WheelhouseError {
                path: dir.clone(),
                error,
            };
            let absolute = std::path::absolute(dir).map_err(error)?;
            let mut names = Vec::new();
            for entry in std::fs::read_dir(&absolute).map_err(error)? {
                let entry = entry.map_err(error)?;
                if let Some(name) = entry.file_name().to_str() {
                    names.push(name.to_owned());
                }
            }
            names.sort();
            for name in names {
                let Ok(wheel) = WheelFilename::parse(&name) else {
                    continue;
                };
                let path = absolute.join(&name);
                let meta = std::fs::metadata(&path).map_err(error)?;
                if !meta.is_file() || !seen.insert(name.clone()) {
                    continue;
                }
                let Ok(url) = reqwest::Url::from_file_path(&path) else {
                    continue;
                };
                files
                    .entry(wheel.normalized_name())
                    .or_default()
                    .push(IndexFile {
                        filename: name,
                        url,
                        hashes: BTreeMap::new(),
                        requires_python: None,
                        yanked: None,
                        core_metadata: IndexCoreMetadata::Absent,
                        size: Some(meta.len()),
                    });
            }
        }
        Ok(Wheelhouses {
            dirs: dirs.to_vec(),
            files,
        })
    }

    /// The wheelhouse directories, for messages.
    pub fn describe(&self) -> String {
        self.dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The local path of a wheelhouse file (a `file://` URL), if it is one.
fn local_path(file: &IndexFile) -> Option<PathBuf> {
    (file.url.scheme() == "file")
        .then(|| file.url.to_file_path().ok())
        .flatten()
}

/// A project's files from the index (when there is one) and the wheelhouses: the index's first,
/// then wheelhouse files of other names. Without an index, a project no wheelhouse has is an
/// error naming the wheelhouses.
fn merged_page(
    index: Option<&IndexClient<'_>>,
    local: &Wheelhouses,
    name: &str,
) -> Result<ProjectPage, SourceError> {
    let mut files = match index {
        Some(index) => match index.project(name) {
            Ok(page) => page.files,
            Err(FetchError::ProjectNotFound { .. }) => Vec::new(),
            Err(err) => return Err(err.into()),
        },
        None => Vec::new(),
    };
    for file in local.files.get(name).into_iter().flatten() {
        if !files.iter().any(|f| f.filename == file.filename) {
            files.push(file.clone());
        }
    }
    if files.is_empty() && index.is_none() {
        return Err(Box::new(SourceProblem::NotInWheelhouses {
            name: name.to_owned(),
            wheelhouses: local.describe(),
        }));
    }
    Ok(ProjectPage {
        name: name.to_owned(),
        files,
    })
}

impl<'f, 'i> IndexSource<'f, 'i> {
    pub fn new(
        fetcher: &'f Fetcher<'f>,
        index: Option<&'i IndexClient<'i>>,
        wheelhouses: &[PathBuf],
    ) -> Result<Self, WheelhouseError> {
        Ok(IndexSource {
            fetcher,
            index,
            local: Wheelhouses::list(wheelhouses)?,
            pages: RefCell::default(),
            metadata: RefCell::default(),
            facts: RefCell::default(),
            scratch: RefCell::default(),
        })
    }

    /// The wheelhouses' wheels.
    pub fn wheelhouses(&self) -> &Wheelhouses {
        &self.local
    }

    /// The index, unless `--no-index`.
    pub fn index(&self) -> Option<&'i IndexClient<'i>> {
        self.index
    }

    /// Downloads `file` (into the store when its sha256 is known); reads `with` on its path.
    fn with_wheel<T>(
        &self,
        file: &IndexFile,
        with: impl FnOnce(&Path) -> Result<T, SourceError>,
    ) -> Result<T, SourceError> {
        if let Some(path) = local_path(file) {
            return with(&path);
        }
        if let Some(sha256) = file.sha256() {
            let fetched = self.fetcher.fetch(&FixedOutput {
                name: EntryName::new(&file.filename)?,
                sha256: sha256.to_bytes(),
                size: file.size,
                urls: vec![file.url.clone()],
            })?;
            let path = fetched.entry.path;
            let size = std::fs::metadata(&path)?.len();
            self.facts
                .borrow_mut()
                .insert(file.filename.clone(), (size, sha256));
            return with(&path);
        }
        // No hash to name a store entry by: download, hash, and read it from a scratch directory.
        let mut scratch = self.scratch.borrow_mut();
        if scratch.is_none() {
            *scratch = Some(tempfile::tempdir()?);
        }
        let dir = scratch
            .as_ref()
            .map(|d| d.path().to_path_buf())
            .unwrap_or_default();
        let path = dir.join(EntryName::new(&file.filename)?.as_str());
        if !path.is_file() {
            let document = self.fetcher.http()?.get(&file.url, "*/*")?;
            std::fs::File::create(&path)?.write_all(&document.body)?;
            let sha256 = Sha256Digest::of(&document.body);
            self.facts
                .borrow_mut()
                .insert(file.filename.clone(), (document.body.len() as u64, sha256));
        }
        with(&path)
    }

    /// Reads a remote wheel's METADATA with range requests (its ZIP directory and that one
    /// member), learning its size on the way. `None` when the wheel is not remote or its server
    /// does not serve ranges: then the whole wheel is downloaded.
    fn metadata_by_ranges(&self, file: &IndexFile) -> Result<Option<CoreMetadata>, SourceError> {
        let Some((meta, size)) = remote_metadata(self.fetcher.http()?, file)? else {
            return Ok(None);
        };
        self.note_size(file, size);
        Ok(Some(meta))
    }

    /// Records the size a range answer gave for `file`, when the index gives its sha256 (the
    /// size pinned is checked against the bytes when realise downloads them).
    fn note_size(&self, file: &IndexFile, size: u64) {
        if let Some(sha256) = file.sha256() {
            self.facts
                .borrow_mut()
                .insert(file.filename.clone(), (size, sha256));
        }
    }

    /// Runs `work` on each item, up to `-j` at once; results in input order.
    fn parallel<T: Sync, R: Send>(&self, items: &[T], work: impl Fn(&T) -> R + Sync) -> Vec<R> {
        crate::parallel::map_in_order(items, self.fetcher.jobs(), |_, item| work(item))
    }

    /// Where every file of every project page seen can be downloaded, by file name: a URL, or
    /// a local path for a wheelhouse's files.
    pub fn locations(&self) -> BTreeMap<String, WheelLocation> {
        let mut out = BTreeMap::new();
        for page in self.pages.borrow().values() {
            for file in &page.files {
                out.entry(file.filename.clone())
                    .or_insert_with(|| location(file));
            }
        }
        out
    }

    /// The size and sha256 of a chosen wheel: from the index when it gives both, else from the
    /// downloaded (or local) file.
    pub fn facts(&self, file: &IndexFile) -> Result<(u64, Sha256Digest), SourceError> {
        if let (Some(size), Some(sha256)) = (file.size, file.sha256()) {
            return Ok((size, sha256));
        }
        if let Some(known) = self.facts.borrow().get(&file.filename) {
            return Ok(*known);
        }
        if let Some(path) = local_path(file) {
            let size = std::fs::metadata(&path)?.len();
            let sha256 = Sha256Digest::new(crate::hash::sha256_file(&path)?);
            self.facts
                .borrow_mut()
                .insert(file.filename.clone(), (size, sha256));
            return Ok((size, sha256));
        }
        self.with_wheel(file, |_| Ok(()))?;
        self.facts
            .borrow()
            .get(&file.filename)
            .copied()
            .ok_or_else(|| {
                SourceProblem::NotMeasured {
                    wheel: file.filename.clone(),
                }
                .into()
            })
    }
}

/// Where `file` can be downloaded: its URL, or its path for a wheelhouse file.
pub fn location(file: &IndexFile) -> WheelLocation {
    match local_path(file) {
        Some(path) => WheelLocation::Path(path.to_string_lossy().into_owned()),
        None => WheelLocation::Url(file.url.to_string()),
    }
}

/// A remote wheel's METADATA and size, read by ranges; `None` when not remote or the server
/// does not serve ranges.
fn remote_metadata(
    http: &HttpClient,
    file: &IndexFile,
) -> Result<Option<(CoreMetadata, u64)>, SourceError> {
    if !matches!(file.url.scheme(), "http" | "https") {
        return Ok(None);
    }
    let Some(mut remote) = RangedFile::open(http, &file.url, RANGE_TAIL)? else {
        return Ok(None);
    };
    let meta = CoreMetadata::from_wheel_reader(&mut remote, Path::new(&file.filename))?;
    tracing::debug!(
        "{}: METADATA read in {} range requests, {} of {} bytes",
        file.filename,
        remote.requests(),
        remote.fetched(),
        remote.len()
    );
    Ok(Some((meta, remote.len())))
}

impl PackageSource for IndexSource<'_, '_> {
    fn prefetch_projects(&self, names: &[String]) {
        let missing: Vec<&String> = names
            .iter()
            .filter(|n| !self.pages.borrow().contains_key(n.as_str()))
            .collect();
        let (index, local) = (self.index, &self.local);
        let pages = self.parallel(&missing, |name| merged_page(index, local, name));
        for (name, page) in missing.into_iter().zip(pages) {
            // Failures are left for `project` to meet again and report.
            if let Ok(page) = page {
                self.pages.borrow_mut().insert(name.clone(), page);
            }
        }
    }

    fn prefetch_metadata(&self, files: &[IndexFile]) {
        let Some(index) = self.index else {
            return;
        };
        let Ok(http) = self.fetcher.http() else {
            return;
        };
        let missing: Vec<&IndexFile> = files
            .iter()
            .filter(|f| local_path(f).is_none())
            .filter(|f| !self.metadata.borrow().contains_key(&f.filename))
            .collect();
        let found = self.parallel(&missing, |file| {
            let meta = match index.core_metadata(file).ok()? {
                Some(bytes) => {
                    let source = format!("{}.metadata", file.filename);
                    (CoreMetadata::parse(&bytes, &source).ok()?, None)
                }
                None => {
                    let (meta, size) = remote_metadata(http, file).ok()??;
                    (meta, Some(size))
                }
            };
            Some(meta)
        });
        for (file, found) in missing.into_iter().zip(found) {
            // What could not be read here (or needs the whole wheel) is read later, in order.
            let Some((meta, size)) = found else { continue };
            if let Some(size) = size {
                self.note_size(file, size);
            }
            self.metadata
                .borrow_mut()
                .insert(file.filename.clone(), meta);
        }
    }

    fn project(&self, name: &str) -> Result<ProjectPage, SourceError> {
        if let Some(page) = self.pages.borrow().get(name) {
            return Ok(page.clone());
        }
        let page = merged_page(self.index, &self.local, name)?;
        self.pages
            .borrow_mut()
            .insert(name.to_owned(), page.clone());
        Ok(page)
    }

    fn metadata(&self, file: &IndexFile) -> Result<CoreMetadata, SourceError> {
        if let Some(meta) = self.metadata.borrow().get(&file.filename) {
            return Ok(meta.clone());
        }
        let from_index = match (local_path(file), self.index) {
            (None, Some(index)) => index.core_metadata(file)?,
            _ => None,
        };
        let meta = match from_index {
            Some(bytes) => CoreMetadata::parse(&bytes, &format!("{}.metadata", file.filename))?,
            None => match self.metadata_by_ranges(file)? {
                Some(meta) => meta,
                None => self.with_wheel(file, |path| Ok(CoreMetadata::from_wheel(path)?))?,
            },
        };
        self.metadata
            .borrow_mut()
            .insert(file.filename.clone(), meta.clone());
        Ok(meta)
    }
}
