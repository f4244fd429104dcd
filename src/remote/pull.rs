//! `pystore pull` and substitution: download descriptions, check signatures and identity,
//! download archives, check their sha256, and only then register, references first.
//!
//! Nothing is registered until every description of the closure verified and every archive's
//! bytes matched its description, so a refused blob leaves the store unchanged.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Read;

use sha2::Digest;

use super::archive::unpack;
use super::description::{description_name, Description};
use super::{io_err, Remote, RemoteError, Size};
use crate::hash::to_hex;
use crate::sign::TrustedKeys;
use crate::store::{EntryId, EntryInfo, Store};

/// Largest description accepted.
const MAX_DESCRIPTION_SIZE: u64 = 16 << 20;

/// How pulled entries are trusted.
#[derive(Clone, Debug, Default)]
pub struct Trust {
    /// Keys a description must be signed by.
    pub keys: TrustedKeys,
    /// Refuse unsigned and untrusted descriptions (`--no-require-sigs` turns this off).
    pub require_sigs: bool,
}

/// What a pull did.
#[derive(Clone, Debug)]
pub struct Pulled {
    /// The requested entries, now valid.
    pub entries: Vec<EntryInfo>,
    /// Entries downloaded and registered (the rest were valid already).
    pub downloaded: Vec<EntryId>,
}

/// Pulls `ids` and their closures from `remote` into `store`.
pub fn pull(
    store: &Store,
    remote: &dyn Remote,
    ids: &[EntryId],
    trust: &Trust,
) -> Result<Pulled, RemoteError> {
    // 1. Every missing entry's description, verified.
    let mut described: BTreeMap<EntryId, Description> = BTreeMap::new();
    let mut queue: Vec<EntryId> = ids.to_vec();
    let mut seen = BTreeSet::new();
    while let Some(id) = queue.pop() {
        if !seen.insert(id.clone()) || store.query(&id)?.is_some() {
            continue;
        }
        let description =
            fetch_description(remote, &id, trust)?.ok_or_else(|| RemoteError::NotFound {
                remote: remote.location(),
                what: format!("entry {id} ({})", description_name(&id)),
            })?;
        queue.extend(description.references.iter().cloned());
        described.insert(id, description);
    }

    // 2. Every archive, checked against its description before anything is registered.
    let staging =
        tempfile::tempdir().map_err(io_err("create a staging directory for", store.root()))?;
    for description in described.values() {
        fetch_archive(remote, description, staging.path())?;
    }

    // 3. Register, references before referrers.
    let mut order = Vec::new();
    let mut placed = BTreeSet::new();
    for id in described.keys() {
        post_order(id, &described, &mut placed, &mut order);
    }
    let mut downloaded = Vec::new();
    for id in order {
        let description = &described[&id];
        let archive = staging.path().join(&description.archive.file);
        let registration = store.build_checked(
            &description.fingerprint,
            Some(description.content_hash),
            |out| unpack(&archive, out, description.size).map_err(Into::into),
        )?;
        if registration.built {
            downloaded.push(id);
        }
    }
    let entries = ids
        .iter()
        .map(|id| {
            store.query(id)?.ok_or_else(|| RemoteError::NotFound {
                remote: remote.location(),
                what: format!("entry {id}"),
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(Pulled {
        entries,
        downloaded,
    })
}

/// The verified description of entry `id` on `remote` (signature per `trust`, then every
/// field); `None` when the remote does not have it.
pub fn fetch_description(
    remote: &dyn Remote,
    id: &EntryId,
    trust: &Trust,
) -> Result<Option<Description>, RemoteError> {
    let name = description_name(id);
    let Some(bytes) = remote.get_bytes(&name, MAX_DESCRIPTION_SIZE)? else {
        return Ok(None);
    };
    let what = format!("{name} from {}", remote.location());
    Ok(Some(Description::open(
        &bytes,
        &what,
        id,
        &trust.keys,
        trust.require_sigs,
    )?))
}

/// Downloads the archive `description` names into `dir` and checks its size and sha256
/// against the (verified) description; its path.
pub fn fetch_archive(
    remote: &dyn Remote,
    description: &Description,
    dir: &std::path::Path,
) -> Result<std::path::PathBuf, RemoteError> {
    let file = &description.archive.file;
    let path = dir.join(file);
    if !remote.get(file, &path, Size::Exact(description.archive.size))? {
        return Err(RemoteError::NotFound {
            remote: remote.location(),
            what: format!("archive {file} of {}", description.fingerprint.name()),
        });
    }
    let tampered = |reason: String| RemoteError::Tampered {
        remote: remote.location(),
        name: file.clone(),
        reason,
    };
    let size = std::fs::metadata(&path)
        .map_err(io_err("inspect", &path))?
        .len();
    if size != description.archive.size {
        return Err(tampered(format!(
            "{size} bytes, but its signed description says {}",
            description.archive.size
        )));
    }
    let sha256 = sha256_of(&path)?;
    if sha256 != description.archive.sha256 {
        return Err(tampered(format!(
            "sha256 {}, but its signed description says {}",
            to_hex(&sha256),
            to_hex(&description.archive.sha256)
        )));
    }
    Ok(path)
}

fn post_order(
    id: &EntryId,
    described: &BTreeMap<EntryId, Description>,
    placed: &mut BTreeSet<EntryId>,
    order: &mut Vec<EntryId>,
) {
    // Ids are hashes of their inputs' ids, so references form no cycle; `placed` is marked
    // before descending all the same, so a hostile set of descriptions cannot loop.
    if !placed.insert(id.clone()) {
        return;
    }
    if let Some(description) = described.get(id) {
        for reference in &description.references {
            post_order(reference, described, placed, order);
        }
        order.push(id.clone());
    }
}

fn sha256_of(path: &std::path::Path) -> Result<[u8; 32], RemoteError> {
    let mut file = File::open(path).map_err(io_err("read", path))?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(io_err("read", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().into())
}
