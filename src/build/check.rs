//! Checking reproducibility: rebuild every derived entry of a closure beside the store and
//! compare its canonical tree with the registered one (`pystore realise --check`, `--rounds N`).
//!
//! Fixed outputs (downloads) are not rebuilt: they are checked by hash whenever they are fetched.
//! Entries registered before planning (a captured interpreter) have no builder to run again.
//! Each rebuild gets the *registered* entries of its inputs, so a difference is the builder's
//! own doing, not an upstream one's.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::graph::{Action, BuildContext, Graph, NodeIndex};
use crate::hash::to_hex;
use crate::hash::tree::{NodeKind, Tree};
use crate::store::{EntryInfo, Rebuild, Store, StoreError};

/// How many differing paths a mismatch keeps (the first ones, in path order).
pub const MAX_DIFFERENCES: usize = 10;

/// Why a check could not be carried out (a difference is not an error: see [`CheckReport`]).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The store failed, or a builder failed while rebuilding.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An entry (or one of its inputs) to check is not valid: realise it first.
    #[error("cannot check {name}: {what} is not a valid entry of the store at {}; realise it first", store.display())]
    NotRealised {
        name: String,
        what: String,
        store: PathBuf,
    },
}

/// What one side of a difference has at a path.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PathState {
    /// `file`, `executable`, `directory` or `symlink`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Bytes, for files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// blake3 (hex), for files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blake3: Option<String>,
    /// The link target, for symlinks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

impl PathState {
    /// What a tree node is, for reports.
    pub fn of(kind: &NodeKind) -> PathState {
        match kind {
            NodeKind::Directory => PathState {
                kind: "directory",
                size: None,
                blake3: None,
                target: None,
            },
            NodeKind::File {
                executable,
                size,
                blake3,
            } => PathState {
                kind: if *executable { "executable" } else { "file" },
                size: Some(*size),
                blake3: Some(to_hex(blake3)),
                target: None,
            },
            NodeKind::Symlink { target } => PathState {
                kind: "symlink",
                size: None,
                blake3: None,
                target: Some(target.clone()),
            },
        }
    }
}

/// A path where a rebuild differs from the registered entry.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PathDifference {
    /// Relative to the entry's root (`""` for a single-file entry).
    pub path: String,
    /// What the registered entry has there (none: the rebuild added it).
    pub registered: Option<PathState>,
    /// What the rebuild has there (none: the rebuild lacks it).
    pub rebuilt: Option<PathState>,
}

/// One rebuild that differed.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Mismatch {
    /// Which rebuild (1-based).
    pub round: usize,
    /// Where the differing output was kept (never registered).
    pub kept: PathBuf,
    /// Its content hash (hex).
    pub content_hash: String,
    /// The first [`MAX_DIFFERENCES`] differing paths, in path order.
    pub differences: Vec<PathDifference>,
    /// How many paths differ in all.
    pub total_differences: usize,
}

/// The check of one entry.
#[derive(Clone, Debug)]
pub struct EntryCheck {
    /// The registered entry.
    pub entry: EntryInfo,
    /// Rebuilds that differed from it, by round.
    pub mismatches: Vec<Mismatch>,
}

/// The result of a check.
#[derive(Clone, Debug)]
pub struct CheckReport {
    /// Rebuilds per entry.
    pub rounds: usize,
    /// Every checked entry, in the order of the graph.
    pub entries: Vec<EntryCheck>,
}

impl CheckReport {
    /// True when every rebuild gave the registered bytes.
    pub fn reproducible(&self) -> bool {
        self.entries.iter().all(|e| e.mismatches.is_empty())
    }
}

/// The derived (buildable) nodes of the closure of `roots`, in graph order.
pub fn derived_closure(graph: &Graph, roots: &[NodeIndex]) -> Vec<NodeIndex> {
    let mut seen = vec![false; graph.nodes().len()];
    let mut stack = roots.to_vec();
    while let Some(index) = stack.pop() {
        if std::mem::replace(&mut seen[index], true) {
            continue;
        }
        stack.extend(graph.node(index).inputs.values());
    }
    (0..seen.len())
        .filter(|&i| seen[i] && matches!(graph.node(i).action, Action::Build(_)))
        .collect()
}

/// Rebuilds every derived entry of the closure of `roots` `rounds` times (at least once), `jobs`
/// rebuilds at a time, and compares each with the registered entry. Every entry of the closure
/// must be valid already.
pub fn check(
    store: &Store,
    graph: &Graph,
    roots: &[NodeIndex],
    rounds: usize,
    jobs: usize,
    progress: bool,
) -> Result<CheckReport, CheckError> {
    let rounds = rounds.max(1);
    let valid = |index: NodeIndex, of: NodeIndex| -> Result<EntryInfo, CheckError> {
        let node = graph.node(index);
        store
            .query(&node.id)?
            .ok_or_else(|| CheckError::NotRealised {
                name: graph.node(of).fingerprint.name().to_string(),
                what: node.fingerprint.name().to_string(),
                store: store.root().to_path_buf(),
            })
    };
    let mut targets = Vec::new();
    for index in derived_closure(graph, roots) {
        let entry = valid(index, index)?;
        let inputs = graph
            .node(index)
            .inputs
            .iter()
            .map(|(label, &input)| Ok((label.clone(), valid(input, index)?)))
            .collect::<Result<BTreeMap<String, EntryInfo>, CheckError>>()?;
        targets.push((index, entry, inputs));
    }
    // A damaged entry (or input) must fail the check: rebuilt from registered inputs and
    // compared with the registered manifest, it would otherwise look reproducible.
    let mut involved: Vec<EntryInfo> = targets
        .iter()
        .flat_map(|(_, entry, inputs)| std::iter::once(entry).chain(inputs.values()))
        .cloned()
        .collect();
    involved.sort_by(|a, b| a.path.cmp(&b.path));
    involved.dedup_by(|a, b| a.path == b.path);
    store.check_all_intact(&involved)?;
    let work: Vec<(usize, usize)> = (0..targets.len())
        .flat_map(|t| (1..=rounds).map(move |round| (t, round)))
        .collect();
    let bar = if progress {
        ProgressBar::new(work.len() as u64)
    } else {
        ProgressBar::with_draw_target(Some(work.len() as u64), ProgressDrawTarget::hidden())
    };
    if let Ok(style) = ProgressStyle::with_template("checking [{bar:30}] {pos}/{len} {wide_msg}") {
        bar.set_style(style.progress_chars("=> "));
    }
    let next = AtomicUsize::new(0);
    let outcomes: Mutex<Vec<(usize, Outcome)>> = Mutex::new(Vec::new());
    let failed = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, work.len().max(1)) {
            scope.spawn(|| loop {
                if failed.load(Ordering::SeqCst) {
                    return;
                }
                let Some(&(t, round)) = work.get(next.fetch_add(1, Ordering::SeqCst)) else {
                    return;
                };
                let (index, entry, inputs) = &targets[t];
                bar.set_message(entry.name.clone());
                let outcome = rebuild_once(store, graph, *index, entry, inputs, round);
                if outcome.is_err() {
                    failed.store(true, Ordering::SeqCst);
                }
                bar.inc(1);
                outcomes
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((t, outcome));
            });
        }
    });
    bar.finish_and_clear();
    let mut outcomes = outcomes.into_inner().unwrap_or_else(|p| p.into_inner());
    outcomes.sort_by_key(|(t, outcome)| {
        (
            *t,
            outcome
                .as_ref()
                .ok()
                .and_then(|m| m.as_ref().map(|m| m.round)),
        )
    });
    let mut mismatches: Vec<Vec<Mismatch>> = vec![Vec::new(); targets.len()];
    for (t, outcome) in outcomes {
        if let Some(mismatch) = outcome? {
            mismatches[t].push(mismatch);
        }
    }
    Ok(CheckReport {
        rounds,
        entries: targets
            .into_iter()
            .zip(mismatches)
            .map(|((_, entry, _), mismatches)| EntryCheck { entry, mismatches })
            .collect(),
    })
}

/// One rebuild: `None` when it matched.
type Outcome = Result<Option<Mismatch>, CheckError>;

fn rebuild_once(
    store: &Store,
    graph: &Graph,
    index: NodeIndex,
    entry: &EntryInfo,
    inputs: &BTreeMap<String, EntryInfo>,
    round: usize,
) -> Outcome {
    let Action::Build(builder) = &graph.node(index).action else {
        return Ok(None);
    };
    // No caches: a check recomputes everything, so a damaged cache cannot hide or cause a
    // difference.
    let rebuild = store.rebuild(entry, |out| {
        builder(&BuildContext {
            out,
            inputs,
            cache: None,
        })
    })?;
    let Rebuild::Differs { kept, tree } = rebuild else {
        return Ok(None);
    };
    let registered = store.manifest(entry)?;
    let (differences, total_differences) = first_differences(&registered, &tree);
    Ok(Some(Mismatch {
        round,
        kept,
        content_hash: to_hex(&tree.content_hash()),
        total_differences,
        differences,
    }))
}

/// The first [`MAX_DIFFERENCES`] paths where `other` differs from `registered`, in path order,
/// and how many paths differ in all.
pub fn first_differences(registered: &Tree, other: &Tree) -> (Vec<PathDifference>, usize) {
    let differences = registered.differences(other);
    let first = differences
        .iter()
        .take(MAX_DIFFERENCES)
        .map(|d| PathDifference {
            path: d.path.to_owned(),
            registered: d.left.map(PathState::of),
            rebuilt: d.right.map(PathState::of),
        })
        .collect();
    (first, differences.len())
}
