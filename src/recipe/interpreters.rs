//! The interpreter catalogue a store knows: the built-in table plus what `pystore python update`
//! fetched, kept in the store as one fixed-output entry (a canonical, sorted TSV file) that the
//! gc root [`CATALOGUE_ROOT`] points at.
//!
//! `lock` reads the catalogue to choose and pin an interpreter archive per target; `realise`
//! reads only the lock's pins, so a bundle never depends on the catalogue it was locked with.

use std::path::PathBuf;

use crate::python::builds::{
    parse_table, render_catalogue, Catalogue, KnownBuild, Origin, TableError,
};
use crate::remote::github::pbs::{fetch_pbs_catalogue, ReleaseReport};
use crate::remote::{RemoteConfig, RemoteError};
use crate::store::{Store, StoreError};

/// The gc root naming the current fetched catalogue.
pub const CATALOGUE_ROOT: &str = "python-catalogue";
/// The catalogue entry's name.
pub const CATALOGUE_NAME: &str = "python-build-standalone-catalogue.tsv";

/// Why the catalogue cannot be read or updated.
#[derive(Debug, thiserror::Error)]
pub enum InterpretersError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// GitHub failed.
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// The catalogue entry cannot be read or is not a catalogue.
    #[error("the interpreter catalogue {}: {problem}; run `pystore python update` to fetch it again (or `pystore root remove {CATALOGUE_ROOT}` to use the built-in table only)", path.display())]
    Damaged {
        path: PathBuf,
        #[source]
        problem: CatalogueProblem,
    },
    /// Scratch space for the download.
    #[error("cannot create a temporary directory: {0}")]
    Scratch(std::io::Error),
}

/// What is wrong with the store's catalogue entry.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueProblem {
    /// The gc root names an entry that is gone or damaged.
    #[error("the root points at no valid entry")]
    NoEntry,
    /// The entry cannot be read.
    #[error(transparent)]
    Read(std::io::Error),
    /// The entry is not a catalogue table.
    #[error(transparent)]
    Table(#[from] TableError),
}

/// The rows `pystore python update` fetched into this store (none before the first update).
pub fn fetched_builds(store: &Store) -> Result<Vec<KnownBuild>, InterpretersError> {
    let Some(root) = store
        .roots()?
        .into_iter()
        .find(|r| r.name == CATALOGUE_ROOT)
    else {
        return Ok(Vec::new());
    };
    let damaged = |problem: CatalogueProblem| InterpretersError::Damaged {
        path: root.path.clone(),
        problem,
    };
    if !root.valid {
        return Err(damaged(CatalogueProblem::NoEntry));
    }
    let text =
        std::fs::read_to_string(&root.path).map_err(|e| damaged(CatalogueProblem::Read(e)))?;
    parse_table(&text, Origin::Fetched).map_err(|e| damaged(e.into()))
}

/// The built-in table and this store's fetched catalogue.
pub fn catalogue(store: &Store) -> Result<Catalogue, InterpretersError> {
    Ok(Catalogue::with_fetched(fetched_builds(store)?))
}

/// What `pystore python update` did.
#[derive(Clone, Debug)]
pub struct UpdateOutcome {
    /// The catalogue entry's path.
    pub path: PathBuf,
    /// Rows in the fetched catalogue now.
    pub rows: usize,
    /// Rows that were not in it before.
    pub added: usize,
    /// One report per release read.
    pub releases: Vec<ReleaseReport>,
}

/// Fetches the newest `releases` releases of `repository` and stores the catalogue: the rows
/// fetched before, with this fetch's rows added (a row for the same archive file replaced), as
/// a new entry that the root [`CATALOGUE_ROOT`] then names. On any error the store's catalogue
/// is unchanged.
pub fn update(
    store: &Store,
    config: &RemoteConfig,
    repository: &str,
    releases: usize,
) -> Result<UpdateOutcome, InterpretersError> {
    let previous = fetched_builds(store).unwrap_or_default();
    let scratch = tempfile::tempdir().map_err(InterpretersError::Scratch)?;
    let fetched = fetch_pbs_catalogue(config, repository, releases, scratch.path())?;
    let before: std::collections::BTreeSet<String> =
        previous.iter().map(|b| b.file_name.clone()).collect();
    let added = fetched
        .builds
        .iter()
        .filter(|b| !before.contains(&b.file_name))
        .count();
    // Newer facts first: render_catalogue keeps the first row per archive file.
    let mut rows = fetched.builds;
    rows.extend(previous);
    let text = render_catalogue(&rows);
    let count = text.lines().count().saturating_sub(1);
    let file = scratch.path().join(CATALOGUE_NAME);
    std::fs::write(&file, &text).map_err(InterpretersError::Scratch)?;
    let entry = store.add_path(&file, Some(CATALOGUE_NAME))?.entry;
    store.add_root(CATALOGUE_ROOT, &entry)?;
    Ok(UpdateOutcome {
        path: entry.path,
        rows: count,
        added,
        releases: fetched.releases,
    })
}

/// The entry path of the current catalogue, if one was fetched.
pub fn catalogue_path(store: &Store) -> Result<Option<PathBuf>, InterpretersError> {
    Ok(store
        .roots()?
        .into_iter()
        .find(|r| r.name == CATALOGUE_ROOT && r.valid)
        .map(|r| r.path))
}
