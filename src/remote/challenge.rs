//! `pystore challenge`: compare entries built here with the ones a remote publishes, entry by
//! entry, as `guix challenge` does with substitute servers.
//!
//! For each local derived entry the remote's signed description of the same id is fetched and
//! verified (as for a pull); equal content hashes mean the remote built the same bytes from the
//! same inputs. When they differ, the published archive is downloaded (size and sha256 checked
//! against the description), unpacked in a temporary directory outside the store and its
//! canonical tree compared with the local manifest, so the report names the first differing
//! files. Nothing is registered.

use std::path::Path;

use super::archive::unpack;
use super::pull::{fetch_archive, fetch_description, Trust};
use super::{io_err, Remote, RemoteError};
use crate::build::check::{first_differences, PathDifference};
use crate::hash::to_hex;
use crate::hash::tree::Tree;
use crate::store::{EntryInfo, EntryKind, Store};

/// How one entry compares with its published counterpart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The remote publishes the same content hash.
    Same,
    /// The remote has no description of this id.
    NotPublished,
    /// The remote publishes other bytes for the same id.
    Differs {
        /// The published content hash (hex).
        published: String,
        /// The first differing paths (`registered` is the local side, `rebuilt` the remote's).
        differences: Vec<PathDifference>,
        /// How many paths differ in all.
        total_differences: usize,
    },
}

/// One compared entry.
#[derive(Clone, Debug)]
pub struct Challenged {
    /// The local entry.
    pub entry: EntryInfo,
    /// What the remote has.
    pub verdict: Verdict,
}

/// The result of a challenge.
#[derive(Clone, Debug)]
pub struct ChallengeReport {
    /// The remote, as the user named it.
    pub remote: String,
    /// Every derived entry compared, in the order given.
    pub entries: Vec<Challenged>,
}

impl ChallengeReport {
    /// How many entries have `verdict`'s kind.
    pub fn count(&self, kind: fn(&Verdict) -> bool) -> usize {
        self.entries.iter().filter(|e| kind(&e.verdict)).count()
    }

    /// True when no published entry differs from the local one.
    pub fn agrees(&self) -> bool {
        self.count(|v| matches!(v, Verdict::Differs { .. })) == 0
    }
}

/// Compares each derived entry of `entries` (others are skipped: a download is known by its
/// sha256, so a remote cannot hold other bytes under its id) with `remote`'s.
pub fn challenge(
    store: &Store,
    remote: &dyn Remote,
    entries: &[EntryInfo],
    trust: &Trust,
) -> Result<ChallengeReport, RemoteError> {
    let mut out = Vec::new();
    for entry in entries.iter().filter(|e| e.kind == EntryKind::Derived) {
        let verdict = match fetch_description(remote, &entry.id, trust)? {
            None => Verdict::NotPublished,
            Some(description) if description.content_hash == entry.content_hash => Verdict::Same,
            Some(description) => {
                // Outside the store, as pull stages: nothing here may look like a build.
                let scratch = tempfile::tempdir()
                    .map_err(io_err("create a staging directory for", store.root()))?;
                let archive = fetch_archive(remote, &description, scratch.path())?;
                let published = published_tree(&archive, scratch.path(), description.size)?;
                let local = store.manifest(entry)?;
                let (differences, total_differences) = first_differences(&local, &published);
                Verdict::Differs {
                    published: to_hex(&description.content_hash),
                    differences,
                    total_differences,
                }
            }
        };
        out.push(Challenged {
            entry: entry.clone(),
            verdict,
        });
    }
    Ok(ChallengeReport {
        remote: remote.location(),
        entries: out,
    })
}

/// Unpacks a published archive under `scratch` and reads its canonical tree.
fn published_tree(archive: &Path, scratch: &Path, size: u64) -> Result<Tree, RemoteError> {
    let out = scratch.join("published");
    unpack(archive, &out, size)?;
    Ok(Tree::read(&out).map_err(crate::store::StoreError::from)?)
}
