//! `pystore realise`: from a recipe and its lock to one bundle and one ZIP per target.
//!
//! Everything is planned first (every entry id computed without touching the network), then
//! only what is missing is fetched and built. Wheels are found by hash in the store, mirrors and
//! wheelhouses first; the index is asked for a wheel's URL only when nothing local has it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::plan::{find_wheel_urls, plan_recipe, Planned, PlannedTarget};
use super::Recipe;
use crate::build::check::{check as check_graph, derived_closure, CheckError, CheckReport};
use crate::build::sandbox::{Mode, Sandbox, SandboxError};
use crate::build::timings::Timeline;
use crate::build::{
    plan, plan_with, realise_timed, substitute, BuildError, Counts, NodeIndex, RealiseError,
    Status, Substituter,
};
use crate::bundle::derivations;
use crate::bundle::provenance::{with_run_times, StampError};
use crate::fetch::config::IndexUrls;
use crate::fetch::{FetchError, Fetcher};
use crate::python::interpreter::InterpreterError;
use crate::python::requirements;
use crate::python::target::TargetError;
use crate::sign::SecretKey;
use crate::store::{EntryInfo, Store, StoreError};

pub use super::plan::checked_lock;

/// Why a recipe could not be realised.
#[derive(Debug, thiserror::Error)]
pub enum RealiseRecipeError {
    /// The requirements file.
    #[error(transparent)]
    Requirements(#[from] requirements::RequirementsError),
    /// The lock file.
    #[error(transparent)]
    Lock(#[from] crate::lock::LockError),
    /// The lock file, given as `pylock.toml`.
    #[error(transparent)]
    Pylock(#[from] crate::lock::pylock::PylockLockError),
    /// No lock.
    #[error("{recipe} has no lock at {}; run `pystore lock {recipe}` to create it", path.display())]
    NoLock { recipe: String, path: PathBuf },
    /// A lock for other inputs.
    #[error("the lock {} does not match {}'s requirements, Python version or targets (they changed since it was written); run `pystore lock {recipe}`", path.display(), recipe)]
    StaleLock { recipe: String, path: PathBuf },
    /// A target missing from the lock.
    #[error("the lock {} has no target {target:?}; run `pystore lock {recipe}`", path.display())]
    TargetNotLocked {
        recipe: String,
        target: String,
        path: PathBuf,
    },
    /// `--target` names no target.
    #[error("{recipe} has no target {name:?} (it has: {})", available.join(", "))]
    UnknownTarget {
        recipe: String,
        name: String,
        available: Vec<String>,
    },
    /// A target the python layer refuses.
    #[error("target {target}: {source}")]
    Target {
        target: String,
        // Boxed: the variant would otherwise make every `Result<_, RealiseRecipeError>` large.
        #[source]
        source: Box<TargetError>,
    },
    /// A minor `python` whose lock pins no interpreter for the target.
    #[error("target {target}: {} pins no interpreter for python = {python:?}; run `pystore lock {recipe}` to choose and pin one", path.display())]
    NoPinnedInterpreter {
        recipe: String,
        target: String,
        python: String,
        path: PathBuf,
    },
    /// No interpreter known for the target.
    #[error("target {target}: no built-in interpreter for CPython {python} on {triple}; set `interpreter = {{ url = \"...\", sha256 = \"...\" }}` in the target")]
    NoInterpreter {
        target: String,
        python: String,
        triple: String,
    },
    /// An interpreter archive of unknown kind.
    #[error("target {target}: cannot tell what kind of interpreter archive {name} is (expected .tar.gz, .tar.zst or an embeddable .zip)")]
    UnknownArchive { target: String, name: String },
    /// A wheel that no index lists.
    #[error("{wheel} (sha256 {sha256}) is in the lock but not in the store, a mirror, a wheelhouse or the index's page for {project}; check the index configuration, or put the file in a wheelhouse (--find-links)")]
    WheelNotFound {
        wheel: String,
        sha256: String,
        project: String,
    },
    /// Capturing an installed interpreter.
    #[error("target {target}: capturing the interpreter at {}: {source}", path.display())]
    Capture {
        target: String,
        path: PathBuf,
        // Boxed: an interpreter error is large, and every `Result<_, RealiseRecipeError>` would be.
        #[source]
        source: Box<CaptureProblem>,
    },
    /// Planning failed.
    #[error("planning {recipe}: {source}")]
    Plan {
        recipe: String,
        #[source]
        source: PlanProblem,
    },
    /// Fetching failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// Building failed.
    #[error(transparent)]
    Realise(#[from] RealiseError),
    /// `--check` could not rebuild.
    #[error(transparent)]
    Check(#[from] CheckError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The sandbox (`--sandbox require` without namespaces).
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// Reading a recipe input to record its digest.
    #[error("cannot read {} to record its digest in provenance: {source}", path.display())]
    Digest {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Why an installed interpreter could not be captured.
#[derive(Debug, thiserror::Error)]
pub enum CaptureProblem {
    /// Scratch space to copy it into.
    #[error(transparent)]
    Scratch(std::io::Error),
    /// Copying and checking the interpreter tree.
    #[error(transparent)]
    Interpreter(#[from] InterpreterError),
}

/// What went wrong planning a recipe's graph or handing out its results.
#[derive(Debug, thiserror::Error)]
pub enum PlanProblem {
    /// A node of the graph could not be planned. Boxed: the largest cause.
    #[error(transparent)]
    Build(#[from] Box<BuildError>),
    /// The scheduler finished without an entry for one of a target's results (a bug).
    #[error("target {target} was not realised")]
    NotRealised { target: String },
    /// Run times could not be added to the `--out` copy of the provenance.
    #[error(transparent)]
    Stamp(#[from] StampError),
    /// A validation report entry that does not parse.
    #[error("{} is not a validation report: {source}", path.display())]
    ValidationReport {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// Options of a realisation.
#[derive(Clone, Debug, Default)]
pub struct RealiseOptions {
    /// Targets to realise; all when empty.
    pub targets: Vec<String>,
    /// Builds at once.
    pub jobs: usize,
    /// Progress bars.
    pub progress: bool,
    /// Only plan.
    pub dry_run: bool,
    /// `SOURCE_DATE_EPOCH`: the ZIP members' time.
    pub source_date_epoch: Option<i64>,
    /// Also copy each ZIP here as `<recipe>-<version>-<target>.zip`.
    pub out_dir: Option<PathBuf>,
    /// The indexes to ask for wheel URLs (resolved only when a wheel must be downloaded).
    pub indexes: IndexUrls,
    /// Sign each ZIP's provenance with this key (a DSSE envelope instead of a bare statement).
    pub signing_key: Option<Arc<SecretKey>>,
    /// `--sandbox`: how programs (the validation imports) are isolated.
    pub sandbox: Mode,
    /// Where built entries may be downloaded from instead of being built (substituters).
    pub substituter: Option<Arc<dyn Substituter>>,
    /// `--check` / `--rounds N`: after realising, rebuild every derived entry of the closure this
    /// many times and compare (see [`crate::build::check`]).
    pub check_rounds: Option<usize>,
    /// Where to record when each entry was fetched, built or found valid (`--timings`).
    pub timeline: Option<Arc<Timeline>>,
}

/// One planned entry.
#[derive(Clone, Debug)]
pub struct PlannedEntry {
    /// Entry name.
    pub name: String,
    /// Its path in the store (valid or to be).
    pub path: PathBuf,
    /// What realising does to it.
    pub status: Status,
}

/// A realised target.
#[derive(Clone, Debug)]
pub struct TargetOutcome {
    /// Target name.
    pub target: String,
    /// The bundle entry.
    pub bundle: EntryInfo,
    /// The ZIP entry.
    pub zip: EntryInfo,
    /// The ZIP's provenance entry (an in-toto statement, or its DSSE envelope when signed).
    pub provenance: EntryInfo,
    /// The ZIP's CycloneDX SBOM entry.
    pub sbom: EntryInfo,
    /// The bundle's validation report entry.
    pub validation: EntryInfo,
    /// How the bundle was validated, from its validation report (as its provenance says):
    /// the sandbox level the imports ran at (`full`, `none`, `off`), or `static` for a target
    /// that cannot run where it was validated.
    pub sandbox: String,
    /// The gc root keeping the ZIP and the bundle.
    pub root: PathBuf,
    /// Where `--out` copied the ZIP, its provenance (with this run's times added in
    /// `runDetails.metadata`, and signed again when signed) and its SBOM.
    pub copied_to: Option<PathBuf>,
    /// See `copied_to`.
    pub provenance_copied_to: Option<PathBuf>,
    /// See `copied_to`.
    pub sbom_copied_to: Option<PathBuf>,
}

/// What `realise` did.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// `--dry-run`: the plan.
    Planned(Vec<PlannedEntry>),
    /// The targets realised, and how many entries were substituted, fetched and built.
    Realised(Vec<TargetOutcome>, Counts),
    /// `--check`: the targets realised (with the counts), then rebuilt and compared.
    Checked(Vec<TargetOutcome>, Counts, CheckReport),
}

/// Realises `recipe` (or plans it, with `dry_run`).
pub fn realise(
    store: &Store,
    fetcher: &Fetcher<'_>,
    find_links: &[PathBuf],
    recipe: &Recipe,
    options: &RealiseOptions,
) -> Result<Outcome, RealiseRecipeError> {
    let sandbox = Arc::new(Sandbox::new(options.sandbox)?);
    let mut planned = plan_recipe(store, recipe, options, &sandbox)?;
    let roots = planned.root_nodes();
    let substituter = options.substituter.as_deref();
    if options.dry_run {
        return dry_run(store, &planned, &roots, substituter);
    }
    // This run's times go into the provenance copies --out writes, never into the store.
    let started = std::time::SystemTime::now();
    // Substitute first; then the plan shows what is left to fetch and build (what could not be
    // substituted included), and only those wheels' URLs are looked up.
    let untimed = Timeline::new();
    let timeline = options.timeline.as_deref().unwrap_or(&untimed);
    let substituted = match substituter {
        Some(substituter) => substitute(store, &planned.graph, &roots, substituter, timeline)?,
        None => 0,
    };
    // A check rebuilds every derived entry from its registered inputs, so they must all be
    // valid, intermediate ones (such as an installed wheel) included.
    let checked = match options.check_rounds {
        Some(_) => derived_closure(&planned.graph, &roots),
        None => Vec::new(),
    };
    let mut wanted = roots.clone();
    wanted.extend(&checked);
    let statuses = plan(store, &planned.graph, &wanted)?;
    find_wheel_urls(fetcher, &mut planned, &statuses, options, find_links)?;
    let realised = realise_timed(
        store,
        fetcher,
        &planned.graph,
        &wanted,
        options.jobs.max(1),
        options.progress,
        timeline,
    )?;
    let counts = Counts {
        substituted,
        ..realised.counts
    };
    let publisher = Publisher {
        store,
        recipe,
        options,
        entries: &realised.entries,
        run: RunTimes {
            started,
            finished: std::time::SystemTime::now(),
        },
    };
    let outcomes = planned
        .roots
        .iter()
        .map(|planned_target| publisher.publish(planned_target))
        .collect::<Result<Vec<_>, _>>()?;
    if counts.built > 0 {
        // The new bundles' hard links moved their inputs' change times: stamp them (and the
        // new entries) now, so that the next realise does not re-hash them.
        let started = std::time::Instant::now();
        let stamped = store.stamp_checked();
        tracing::debug!(
            "{stamped} intact stamps recorded in {:?}",
            started.elapsed()
        );
    }
    match options.check_rounds {
        Some(rounds) => {
            let report = check_graph(
                store,
                &planned.graph,
                &checked,
                rounds,
                options.jobs.max(1),
                options.progress,
            )?;
            Ok(Outcome::Checked(outcomes, counts, report))
        }
        None => Ok(Outcome::Realised(outcomes, counts)),
    }
}

/// `--dry-run`: what realising `roots` would do to each needed entry.
fn dry_run(
    store: &Store,
    planned: &Planned,
    roots: &[NodeIndex],
    substituter: Option<&dyn Substituter>,
) -> Result<Outcome, RealiseRecipeError> {
    let statuses = plan_with(
        store,
        &planned.graph,
        roots,
        substituter,
        &Default::default(),
    )?;
    let entries = planned
        .graph
        .nodes()
        .iter()
        .zip(&statuses)
        .filter(|(_, status)| **status != Status::Unneeded)
        .map(|(node, status)| PlannedEntry {
            name: node.fingerprint.name().to_string(),
            path: store
                .layout()
                .entry_path(&node.id, node.fingerprint.name().as_str()),
            status: *status,
        })
        .collect();
    Ok(Outcome::Planned(entries))
}

/// When this run started and finished realising (recorded only in `--out`'s provenance copy).
#[derive(Clone, Copy)]
struct RunTimes {
    started: std::time::SystemTime,
    finished: std::time::SystemTime,
}

/// Where `--out` copied a target's ZIP, provenance and SBOM.
#[derive(Default)]
struct Copies {
    zip: Option<PathBuf>,
    provenance: Option<PathBuf>,
    sbom: Option<PathBuf>,
}

/// Hands out the realised targets: checks them, adds their gc roots, copies them to `--out`.
struct Publisher<'a> {
    store: &'a Store,
    recipe: &'a Recipe,
    options: &'a RealiseOptions,
    /// Every realised entry, by node.
    entries: &'a BTreeMap<NodeIndex, EntryInfo>,
    run: RunTimes,
}

impl Publisher<'_> {
    /// The outcome of `planned_target`, once checked, rooted and copied out.
    fn publish(&self, planned_target: &PlannedTarget) -> Result<TargetOutcome, RealiseRecipeError> {
        let (store, recipe) = (self.store, self.recipe);
        let target = &planned_target.name;
        let get = |node: NodeIndex| {
            self.entries
                .get(&node)
                .cloned()
                .ok_or_else(|| RealiseRecipeError::Plan {
                    recipe: recipe.name.clone(),
                    source: PlanProblem::NotRealised {
                        target: target.clone(),
                    },
                })
        };
        let bundle = get(planned_target.bundle)?;
        let zip = get(planned_target.zip)?;
        let provenance = get(planned_target.provenance)?;
        let sbom = get(planned_target.sbom)?;
        let validation = get(planned_target.validation)?;
        // What realise hands out (and --out copies) is checked against its recorded hashes.
        store.check_all_intact(&[
            bundle.clone(),
            zip.clone(),
            provenance.clone(),
            sbom.clone(),
            validation.clone(),
        ])?;
        let root_name = format!("{}-{}", recipe.name, target);
        let root = store.add_root(&root_name, &zip)?;
        // Provenance and SBOM refer to the ZIP, not the other way round: they need roots too.
        store.add_root(&format!("{root_name}.provenance"), &provenance)?;
        store.add_root(&format!("{root_name}.sbom"), &sbom)?;
        let copies = match &self.options.out_dir {
            Some(dir) => self.copy_to_out_dir(dir, target, &zip, &provenance, &sbom)?,
            None => Copies::default(),
        };
        let sandbox = validated_at(&recipe.name, &validation)?;
        Ok(TargetOutcome {
            target: target.clone(),
            bundle,
            zip,
            provenance,
            sbom,
            validation,
            sandbox,
            root,
            copied_to: copies.zip,
            provenance_copied_to: copies.provenance,
            sbom_copied_to: copies.sbom,
        })
    }

    /// `--out`: copies `target`'s ZIP, its provenance (with this run's times, signed again when
    /// signed) and its SBOM into `dir`.
    fn copy_to_out_dir(
        &self,
        dir: &Path,
        target: &str,
        zip: &EntryInfo,
        provenance: &EntryInfo,
        sbom: &EntryInfo,
    ) -> Result<Copies, RealiseRecipeError> {
        let (recipe, options) = (self.recipe, self.options);
        let zip_name = format!("{}-{}-{}.zip", recipe.name, recipe.version, target);
        let signed = options.signing_key.is_some();
        let copy = |from: &EntryInfo, name: String| {
            let dest = dir.join(name);
            copy_out(&from.path, &dest).map_err(|source| StoreError::Io {
                what: "copy out of the store to",
                path: dest.clone(),
                source,
            })?;
            Ok::<_, StoreError>(dest)
        };
        let zip_copy = copy(zip, zip_name.clone())?;
        let dest = dir.join(derivations::provenance_name(&zip_name, signed));
        let io = |what| {
            let path = dest.clone();
            move |source| StoreError::Io { what, path, source }
        };
        let entry = std::fs::read(&provenance.path).map_err(io("read the provenance for"))?;
        let RunTimes { started, finished } = self.run;
        let stamped = with_run_times(&entry, started, finished, options.signing_key.as_deref())
            .map_err(|e| RealiseRecipeError::Plan {
                recipe: recipe.name.clone(),
                source: e.into(),
            })?;
        write_out(&stamped, &dest).map_err(io("write the provenance to"))?;
        Ok(Copies {
            zip: Some(zip_copy),
            provenance: Some(dest),
            sbom: Some(copy(sbom, format!("{zip_name}.cdx.json"))?),
        })
    }
}

/// How the bundle whose validation report is `validation` was validated
/// ([`crate::bundle::validate::Report::validated_at`]).
fn validated_at(recipe: &str, validation: &EntryInfo) -> Result<String, RealiseRecipeError> {
    let bytes = std::fs::read(&validation.path).map_err(|source| StoreError::Io {
        what: "read the validation report",
        path: validation.path.clone(),
        source,
    })?;
    let report: crate::bundle::validate::Report =
        serde_json::from_slice(&bytes).map_err(|source| RealiseRecipeError::Plan {
            recipe: recipe.to_owned(),
            source: PlanProblem::ValidationReport {
                path: validation.path.clone(),
                source,
            },
        })?;
    Ok(report.validated_at().to_owned())
}

/// Writes `bytes` to `to` for the user (mode 0666 less the umask), replacing what is there
/// atomically.
fn write_out(bytes: &[u8], to: &Path) -> std::io::Result<()> {
    let dir = to.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    crate::hash::files::write_user_file(to, bytes)
}

/// Copies a file out of the store for the user, replacing what is there atomically. The copy
/// is a new file of mode 0666 less the umask: not the entry's read-only mode (as
/// `fs::copy` would carry over), nor every write bit.
fn copy_out(from: &Path, to: &Path) -> std::io::Result<()> {
    let dir = to.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut temp = crate::hash::files::create_user_file(dir, false)?;
    std::io::copy(&mut std::fs::File::open(from)?, &mut temp)?;
    temp.as_file().sync_all()?;
    temp.persist(to).map_err(|e| e.error)?;
    Ok(())
}
