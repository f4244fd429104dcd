//! Substituters (`PYSTORE_SUBSTITUTERS`): remotes that realise consults before building.
//!
//! Each remote's closure index is read once per run (and its signature checked like an entry's);
//! an entry is substituted from the first remote whose index lists it, through [`pull`].

use std::sync::OnceLock;

use super::index::{Index, INDEX_NAME, MAX_INDEX_SIZE};
use super::pull::{pull, Trust};
use super::Remote;
use crate::build::{BuildError, Substituter};
use crate::store::{EntryId, EntryInfo, Store};

/// A remote and its index, read on first use (`None`: none, or refused).
type WithIndex = (Box<dyn Remote>, OnceLock<Option<Index>>);

/// Remotes to substitute from, in order.
pub struct Substituters {
    remotes: Vec<WithIndex>,
    trust: Trust,
}

impl std::fmt::Debug for Substituters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.remotes.iter().map(|(r, _)| r.location()).collect();
        write!(f, "Substituters({})", names.join(" "))
    }
}

impl Substituters {
    /// Substitutes from `remotes`, trusting what `trust` says.
    pub fn new(remotes: Vec<Box<dyn Remote>>, trust: Trust) -> Substituters {
        Substituters {
            remotes: remotes.into_iter().map(|r| (r, OnceLock::new())).collect(),
            trust,
        }
    }

    fn index(&self, remote: &dyn Remote, cell: &OnceLock<Option<Index>>) -> Option<Index> {
        cell.get_or_init(|| {
            let what = format!("{INDEX_NAME} on {}", remote.location());
            // A substituter that is down or refused makes the run slower, never failed.
            match remote.get_bytes(INDEX_NAME, MAX_INDEX_SIZE) {
                Ok(Some(bytes)) => {
                    match Index::open(&bytes, &what, &self.trust.keys, self.trust.require_sigs) {
                        Ok(index) => Some(index),
                        Err(err) => {
                            tracing::warn!("not substituting from {}: {err}", remote.location());
                            None
                        }
                    }
                }
                Ok(None) => None,
                Err(err) => {
                    tracing::warn!("not substituting from {}: {err}", remote.location());
                    None
                }
            }
        })
        .clone()
    }
}

impl Substituter for Substituters {
    fn has(&self, id: &EntryId) -> bool {
        self.remotes.iter().any(|(remote, cell)| {
            self.index(remote.as_ref(), cell)
                .is_some_and(|index| index.entries.contains_key(id))
        })
    }

    fn substitute(&self, store: &Store, id: &EntryId) -> Result<EntryInfo, BuildError> {
        let mut last: Option<BuildError> = None;
        for (remote, cell) in &self.remotes {
            if !self
                .index(remote.as_ref(), cell)
                .is_some_and(|index| index.entries.contains_key(id))
            {
                continue;
            }
            match pull(
                store,
                remote.as_ref(),
                std::slice::from_ref(id),
                &self.trust,
            ) {
                Ok(mut pulled) if !pulled.entries.is_empty() => {
                    return Ok(pulled.entries.remove(0))
                }
                Ok(_) => {}
                Err(err) => last = Some(err.into()),
            }
        }
        Err(last.unwrap_or_else(|| format!("no substituter has {id}").into()))
    }
}
