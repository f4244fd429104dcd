//! `pystore push`: a closure (and files beside it) to a remote, sending only what is missing.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::archive::pack;
use super::description::{archive_name, description_name, ArchiveRef, Description};
use super::index::{FileRef, Index, INDEX_NAME, MAX_INDEX_SIZE};
use super::{io_err, PutReport, Remote, RemoteError, Upload};
use crate::sign::{SecretKey, TrustedKeys};
use crate::store::{EntryId, EntryInfo, Store};

/// What to push.
pub struct PushRequest<'a> {
    /// Named roots: they and their closures are pushed, and `pull REMOTE` fetches them.
    pub roots: Vec<(String, EntryInfo)>,
    /// Files pushed as they are, by name (a bundle ZIP, its provenance, its SBOM).
    pub files: Vec<(String, PathBuf)>,
    /// Signs the descriptions and the index.
    pub key: Option<&'a SecretKey>,
}

/// What a push did.
#[derive(Clone, Debug)]
pub struct PushOutcome {
    /// Entries in the pushed closure.
    pub closure: Vec<EntryId>,
    /// Entries the remote did not have.
    pub new_entries: Vec<EntryId>,
    /// Blobs sent and skipped.
    pub report: PutReport,
}

/// Pushes `request` to `remote`: the closure's entries the remote lacks (archive, then signed
/// description), the files, and last the merged, signed closure index.
pub fn push(
    store: &Store,
    remote: &dyn Remote,
    request: &PushRequest<'_>,
) -> Result<PushOutcome, RemoteError> {
    let files = request
        .files
        .iter()
        .map(|(name, path)| Upload::of_file(name.clone(), path.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    // The files' names and sizes are known now: check them before the remote is even listed.
    remote.check_writable(&files)?;
    let roots: Vec<EntryInfo> = request.roots.iter().map(|(_, e)| e.clone()).collect();
    let closure = store.closure(&roots)?;
    // Never ship a damaged entry: every entry of the closure is re-hashed against its manifest.
    store.check_all_intact(&closure)?;
    let listing = remote.list()?.unwrap_or_default();
    let staging =
        tempfile::tempdir().map_err(io_err("create a staging directory for", store.root()))?;
    let mut archives = Vec::new();
    let mut descriptions = Vec::new();
    let mut new_entries = Vec::new();
    for entry in &closure {
        let (archive, description) = (archive_name(&entry.id), description_name(&entry.id));
        if listing.contains_key(&archive) && listing.contains_key(&description) {
            continue;
        }
        let archive_path = staging.path().join(&archive);
        let packed = pack(&entry.path, &store.manifest(entry)?, &archive_path)?;
        let described = Description::of(
            entry,
            ArchiveRef {
                file: archive.clone(),
                sha256: packed.sha256,
                size: packed.size,
            },
        )?;
        let description_path = staging.path().join(&description);
        std::fs::write(&description_path, described.seal(request.key))
            .map_err(io_err("write", &description_path))?;
        archives.push(Upload {
            name: archive,
            path: archive_path,
            size: packed.size,
            sha256: packed.sha256,
        });
        descriptions.push(Upload::of_file(description, description_path)?);
        new_entries.push(entry.id.clone());
    }
    let mut index = previous_index(remote, request.key)?;
    index.merge(Index {
        entries: closure
            .iter()
            .map(|e| (e.id.clone(), e.name.clone()))
            .collect(),
        roots: request
            .roots
            .iter()
            .map(|(name, e)| (name.clone(), e.id.clone()))
            .collect(),
        files: files
            .iter()
            .map(|f| {
                (
                    f.name.clone(),
                    FileRef {
                        sha256: f.sha256,
                        size: f.size,
                    },
                )
            })
            .collect::<BTreeMap<_, _>>(),
    });
    let index_path = staging.path().join(INDEX_NAME);
    std::fs::write(&index_path, index.seal(request.key)).map_err(io_err("write", &index_path))?;

    // Archives before descriptions before the index: a reader never finds a description whose
    // archive is missing, nor an index naming entries that are not there yet.
    let mut uploads = archives;
    uploads.extend(descriptions);
    uploads.extend(files);
    uploads.push(Upload::of_file(INDEX_NAME.to_owned(), index_path)?);
    let report = remote.put(&uploads)?;
    Ok(PushOutcome {
        closure: closure.into_iter().map(|e| e.id).collect(),
        new_entries,
        report,
    })
}

/// The remote's index to merge into. With a key, only an index signed by that same key is
/// kept (we would otherwise sign what someone else wrote); without one, whatever is there.
fn previous_index(remote: &dyn Remote, key: Option<&SecretKey>) -> Result<Index, RemoteError> {
    let Some(bytes) = remote.get_bytes(INDEX_NAME, MAX_INDEX_SIZE)? else {
        return Ok(Index::default());
    };
    let what = format!("{INDEX_NAME} on {}", remote.location());
    let opened = match key {
        Some(key) => Index::open(&bytes, &what, &TrustedKeys(vec![key.public()]), true),
        None => Index::open(&bytes, &what, &TrustedKeys::default(), false),
    };
    match opened {
        Ok(index) => Ok(index),
        Err(err) => {
            tracing::warn!("{err}; writing a new index");
            Ok(Index::default())
        }
    }
}
