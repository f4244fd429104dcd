//! Realising a graph: only what is needed, fetches in parallel, builds `jobs` at a time in
//! dependency order.
//!
//! A node is *needed* when a needed node (or a requested root) depends on it and its entry is
//! not valid yet. So an unchanged realisation costs one store lookup per root and touches
//! nothing else, not even the network.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Condvar, Mutex};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::graph::{Action, BuildContext, BuildError, Graph, Node, NodeIndex};
use super::timings::{How, Timeline};
use crate::fetch::{FetchError, Fetcher};
use crate::store::{EntryId, EntryInfo, Registration, Store, StoreError};

/// Somewhere built entries can be downloaded from instead of being built (a binary cache).
///
/// The build layer knows nothing of where: the recipe layer passes one in.
pub trait Substituter: Send + Sync + std::fmt::Debug {
    /// Whether the entry `id` can be substituted (a cheap lookup, e.g. in a remote's index).
    fn has(&self, id: &EntryId) -> bool;
    /// Downloads, verifies and registers entry `id` (with its closure); returns it.
    fn substitute(&self, store: &Store, id: &EntryId) -> Result<EntryInfo, BuildError>;
}

/// How many entries a realisation substituted, fetched and built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Downloaded from a substituter instead of being built.
    pub substituted: usize,
    /// Fixed-output entries fetched.
    pub fetched: usize,
    /// Entries built here.
    pub built: usize,
}

/// What `realise_with` returns.
#[derive(Clone, Debug)]
pub struct Realised {
    /// Every needed or valid node's entry, by node index.
    pub entries: BTreeMap<NodeIndex, EntryInfo>,
    /// What was done.
    pub counts: Counts,
}

/// What realising would do to a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Valid already.
    Valid,
    /// To be fetched.
    Fetch,
    /// To be built.
    Build,
    /// To be downloaded from a substituter (its inputs are then not needed).
    Substitute,
    /// Not needed (everything that depends on it is valid).
    Unneeded,
}

/// Why a realisation failed.
#[derive(Debug, thiserror::Error)]
pub enum RealiseError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Fetching failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// Builds failed.
    #[error("{}", .0.iter().map(with_causes).collect::<Vec<_>>().join("\n"))]
    Builds(Vec<StoreError>),
    /// A node that is fetched or already present reached the build queue: planning and
    /// scheduling disagree (a bug in pystore, not in the recipe or the store).
    #[error(
        "{name} is not built but was scheduled as a build; this is a bug in pystore's scheduler"
    )]
    NotABuild { name: String },
}

/// An error and its causes on one line: `building x failed: cannot read ...`, each cause once.
fn with_causes(err: &StoreError) -> String {
    crate::errors::one_line(err)
}

/// The status of every node when realising `roots`.
pub fn plan(store: &Store, graph: &Graph, roots: &[NodeIndex]) -> Result<Vec<Status>, StoreError> {
    plan_with(store, graph, roots, None, &BTreeSet::new())
}

/// The status of every node when realising `roots`, substituting what `substituter` has (except
/// the ids in `skip`) instead of building it.
pub fn plan_with(
    store: &Store,
    graph: &Graph,
    roots: &[NodeIndex],
    substituter: Option<&dyn Substituter>,
    skip: &BTreeSet<EntryId>,
) -> Result<Vec<Status>, StoreError> {
    let mut status = vec![Status::Unneeded; graph.nodes().len()];
    let mut visited = vec![false; graph.nodes().len()];
    let mut stack: Vec<NodeIndex> = roots.to_vec();
    while let Some(index) = stack.pop() {
        if std::mem::replace(&mut visited[index], true) {
            continue;
        }
        let node = graph.node(index);
        if store.query(&node.id)?.is_some() {
            status[index] = Status::Valid;
            continue;
        }
        status[index] = match node.action {
            Action::Fetch(_) => Status::Fetch,
            Action::Build(_)
                if !skip.contains(&node.id) && substituter.is_some_and(|s| s.has(&node.id)) =>
            {
                status[index] = Status::Substitute;
                continue; // its inputs come with it, as its closure
            }
            Action::Build(_) => Status::Build,
            Action::Present => {
                return Err(StoreError::NotValid {
                    what: format!("{} (registered before planning)", node.fingerprint.name()),
                    store: store.root().to_path_buf(),
                })
            }
        };
        stack.extend(node.inputs.values());
        stack.extend(&node.after);
    }
    Ok(status)
}

fn lock(queue: &Mutex<Queue>) -> std::sync::MutexGuard<'_, Queue> {
    queue.lock().unwrap_or_else(|p| p.into_inner())
}

/// Marks one node as running; dropped without [`RunningGuard::finish`] (a panic unwinding
/// through the worker), it records the failure and wakes the other workers, which would
/// otherwise wait forever for `running` to drop to zero (cargo's job queue does the same).
struct RunningGuard<'a> {
    queue: &'a Mutex<Queue>,
    wake: &'a Condvar,
    name: String,
    done: bool,
}

impl<'a> RunningGuard<'a> {
    /// The node finished (successfully or not): the queue, locked, with `running` and
    /// `remaining` already counted down. The caller records the outcome and notifies.
    fn finish(mut self) -> std::sync::MutexGuard<'a, Queue> {
        self.done = true;
        let mut q = lock(self.queue);
        q.running -= 1;
        q.remaining -= 1;
        q
    }
}

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut q = lock(self.queue);
        q.running = q.running.saturating_sub(1);
        q.remaining = q.remaining.saturating_sub(1);
        q.errors.push(RealiseError::Store(StoreError::Build {
            name: self.name.clone(),
            source: "the build stopped by a panic".into(),
        }));
        drop(q);
        self.wake.notify_all();
    }
}

/// The text of a panic's payload (`panic!("...")` gives a `&str` or a `String`).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned());
    format!("the builder panicked: {text}")
}

struct Queue {
    ready: Vec<NodeIndex>,
    waiting_on: Vec<usize>,
    running: usize,
    remaining: usize,
    /// Failed builds (`RealiseError::Store`), or a scheduling bug.
    errors: Vec<RealiseError>,
    built: usize,
}

/// How urgent each node is: the estimated work on the longest chain from it to a root
/// (the critical path, as list schedulers rank tasks), so that on few cores the big wheels'
/// install and compile start first and do not finish last while the other core idles.
///
/// The work of a build is estimated by the bytes it reads: a download's size, and for a derived
/// entry the sum of its inputs' estimates (an installed wheel is about as big as the wheel).
fn ranks(graph: &Graph, dependents: &[Vec<NodeIndex>]) -> Vec<u64> {
    let nodes = graph.nodes();
    let mut bytes = vec![0u64; nodes.len()];
    // Inputs are added to a graph before the nodes that use them: one pass in index order.
    for (index, node) in nodes.iter().enumerate() {
        bytes[index] = match &node.action {
            Action::Fetch(item) => item.size.unwrap_or(1 << 20),
            Action::Present => 1 << 20,
            Action::Build(_) => node
                .inputs
                .values()
                .fold(0u64, |sum, &input| sum.saturating_add(bytes[input])),
        };
    }
    let mut rank = vec![0u64; nodes.len()];
    for index in (0..nodes.len()).rev() {
        let after = dependents[index]
            .iter()
            .map(|&d| rank[d])
            .max()
            .unwrap_or(0);
        let own = match nodes[index].action {
            Action::Build(_) => bytes[index],
            Action::Fetch(_) | Action::Present => 0,
        };
        rank[index] = own.saturating_add(after);
    }
    rank
}

/// Removes and returns the ready node of highest rank (the first planned among equals).
fn take_first(ready: &mut Vec<NodeIndex>, rank: &[u64]) -> Option<NodeIndex> {
    let best = (0..ready.len()).max_by(|&a, &b| {
        rank[ready[a]]
            .cmp(&rank[ready[b]])
            .then(ready[b].cmp(&ready[a]))
    })?;
    Some(ready.swap_remove(best))
}

/// Realises `roots`, returning every needed or valid node's entry (by node index).
pub fn realise(
    store: &Store,
    fetcher: &Fetcher<'_>,
    graph: &Graph,
    roots: &[NodeIndex],
    jobs: usize,
    progress: bool,
) -> Result<BTreeMap<NodeIndex, EntryInfo>, RealiseError> {
    realise_counted(store, fetcher, graph, roots, jobs, progress).map(|r| r.entries)
}

/// Substitutes what `substituter` offers of the entries realising `roots` would build, from
/// the top (a substituted entry brings its closure, so its inputs are not asked for). A failed
/// substitution (a remote down, an entry refused by its signature or hashes) is logged, and
/// that entry is left to be built: afterwards [`plan`] shows exactly what remains to fetch and
/// build. Returns how many entries were substituted; each substitution's span (the entry asked
/// for, its closure coming with it) goes into `timeline`.
pub fn substitute(
    store: &Store,
    graph: &Graph,
    roots: &[NodeIndex],
    substituter: &dyn Substituter,
    timeline: &Timeline,
) -> Result<usize, StoreError> {
    let mut substituted = 0;
    let mut skip = BTreeSet::new();
    loop {
        let status = plan_with(store, graph, roots, Some(substituter), &skip)?;
        let mut failed = false;
        for index in (0..status.len()).filter(|&i| status[i] == Status::Substitute) {
            let node = graph.node(index);
            if store.query(&node.id)?.is_some() {
                continue; // came with the closure of one substituted before it
            }
            let started = Instant::now();
            match substituter.substitute(store, &node.id) {
                Ok(_) => {
                    substituted += 1;
                    timeline.record_substituted(
                        &node.id,
                        &node.fingerprint,
                        started,
                        Instant::now(),
                    );
                }
                Err(err) => {
                    tracing::warn!(
                        "substituting {}: {err}; building it instead",
                        node.fingerprint.name()
                    );
                    skip.insert(node.id.clone());
                    failed = true;
                }
            }
        }
        // After a failure its inputs are needed: they may be substitutable themselves.
        if !failed {
            return Ok(substituted);
        }
    }
}

/// Realises `roots`: every needed or valid node's entry, and how many were fetched and built.
/// Substitution is a separate step before it ([`substitute`]), so that the caller can plan what
/// is left (which downloads still need URLs) in between.
pub fn realise_counted(
    store: &Store,
    fetcher: &Fetcher<'_>,
    graph: &Graph,
    roots: &[NodeIndex],
    jobs: usize,
    progress: bool,
) -> Result<Realised, RealiseError> {
    realise_timed(
        store,
        fetcher,
        graph,
        roots,
        jobs,
        progress,
        &Timeline::new(),
    )
}

/// [`realise_counted`], recording when each entry was fetched, built or found valid in
/// `timeline`.
pub fn realise_timed(
    store: &Store,
    fetcher: &Fetcher<'_>,
    graph: &Graph,
    roots: &[NodeIndex],
    jobs: usize,
    progress: bool,
    timeline: &Timeline,
) -> Result<Realised, RealiseError> {
    let status = plan(store, graph, roots)?;
    let mut done = valid_entries(store, graph, &status, timeline)?;
    let fetched = fetch_needed(fetcher, graph, &status, timeline, &mut done)?;
    let mut counts = Counts {
        fetched,
        ..Counts::default()
    };
    let builds: Vec<NodeIndex> = (0..status.len())
        .filter(|&i| status[i] == Status::Build)
        .collect();
    if builds.is_empty() {
        return Ok(Realised {
            entries: done,
            counts,
        });
    }
    let workers = Workers::new(store, graph, timeline, &status, &builds, done, progress);
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, builds.len()) {
            scope.spawn(|| workers.work());
        }
    });
    let (entries, built) = workers.finish()?;
    counts.built = built;
    Ok(Realised { entries, counts })
}

/// The entries of the nodes `status` found valid, by node index.
fn valid_entries(
    store: &Store,
    graph: &Graph,
    status: &[Status],
    timeline: &Timeline,
) -> Result<BTreeMap<NodeIndex, EntryInfo>, StoreError> {
    let mut done = BTreeMap::new();
    for (index, s) in status.iter().enumerate() {
        if *s == Status::Valid {
            if let Some(entry) = store.query(&graph.node(index).id)? {
                let now = Instant::now();
                let node = graph.node(index);
                timeline.record_valid(&node.id, &node.fingerprint, now);
                done.insert(index, entry);
            }
        }
    }
    Ok(done)
}

/// Fetches every node `status` says to fetch, in parallel, into `done`; returns how many.
fn fetch_needed(
    fetcher: &Fetcher<'_>,
    graph: &Graph,
    status: &[Status],
    timeline: &Timeline,
    done: &mut BTreeMap<NodeIndex, EntryInfo>,
) -> Result<usize, FetchError> {
    let fetches: Vec<NodeIndex> = (0..status.len())
        .filter(|&i| status[i] == Status::Fetch)
        .collect();
    let items: Vec<_> = fetches
        .iter()
        .filter_map(|&i| match &graph.node(i).action {
            Action::Fetch(item) => Some(item.clone()),
            Action::Build(_) | Action::Present => None,
        })
        .collect();
    let mut count = 0;
    for (index, fetched) in fetches.iter().zip(fetcher.fetch_all(&items)?) {
        timeline.record(
            &graph.node(*index).fingerprint,
            How::Fetched,
            fetched.started,
            fetched.finished,
        );
        done.insert(*index, fetched.entry);
        count += 1;
    }
    Ok(count)
}

/// What the build workers share: the queue of ready nodes and the entries realised so far.
struct Workers<'a> {
    store: &'a Store,
    graph: &'a Graph,
    timeline: &'a Timeline,
    queue: Mutex<Queue>,
    wake: Condvar,
    results: Mutex<BTreeMap<NodeIndex, EntryInfo>>,
    /// The builds waiting on each node.
    dependents: Vec<Vec<NodeIndex>>,
    rank: Vec<u64>,
    cache_dir: std::path::PathBuf,
    bar: ProgressBar,
}

impl<'a> Workers<'a> {
    /// Workers building `builds` (the nodes `status` says to build) on top of `done`.
    fn new(
        store: &'a Store,
        graph: &'a Graph,
        timeline: &'a Timeline,
        status: &[Status],
        builds: &[NodeIndex],
        done: BTreeMap<NodeIndex, EntryInfo>,
        progress: bool,
    ) -> Workers<'a> {
        let mut waiting_on = vec![0usize; status.len()];
        let mut dependents: Vec<Vec<NodeIndex>> = vec![Vec::new(); status.len()];
        for &index in builds {
            let node = graph.node(index);
            for &input in node.inputs.values().chain(&node.after) {
                if status[input] == Status::Build {
                    waiting_on[index] += 1;
                    dependents[input].push(index);
                }
            }
        }
        let rank = ranks(graph, &dependents);
        let ready: Vec<NodeIndex> = builds
            .iter()
            .copied()
            .filter(|&i| waiting_on[i] == 0)
            .collect();
        let queue = Mutex::new(Queue {
            ready,
            waiting_on,
            running: 0,
            remaining: builds.len(),
            errors: Vec::new(),
            built: 0,
        });
        Workers {
            store,
            graph,
            timeline,
            queue,
            wake: Condvar::new(),
            results: Mutex::new(done),
            dependents,
            rank,
            cache_dir: store.layout().cache_dir(),
            bar: progress_bar(progress, builds.len() as u64),
        }
    }

    /// One worker: builds ready nodes until none is left or a build failed.
    fn work(&self) {
        while let Some(index) = self.next() {
            self.build(index);
        }
    }

    /// Waits for a ready node and marks it running; `None` when the worker should stop.
    fn next(&self) -> Option<NodeIndex> {
        let mut q = lock(&self.queue);
        loop {
            if !q.errors.is_empty() || q.remaining == 0 {
                return None;
            }
            if let Some(index) = take_first(&mut q.ready, &self.rank) {
                q.running += 1;
                return Some(index);
            }
            if q.running == 0 {
                return None; // nothing runs and nothing is ready: cannot happen in a DAG
            }
            q = self.wake.wait(q).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Builds node `index` (marked running) and records the outcome.
    fn build(&self, index: NodeIndex) {
        let node = self.graph.node(index);
        self.bar.set_message(node.fingerprint.name().to_string());
        let inputs: BTreeMap<String, EntryInfo> = {
            let results = self.results.lock().unwrap_or_else(|p| p.into_inner());
            node.inputs
                .iter()
                .filter_map(|(label, i)| Some((label.clone(), results.get(i)?.clone())))
                .collect()
        };
        // Whatever happens from here on (a builder panicking included), this node stops
        // counting as running when the guard drops, and the other workers wake up.
        let guard = RunningGuard {
            queue: &self.queue,
            wake: &self.wake,
            name: node.fingerprint.name().to_string(),
            done: false,
        };
        let started = Instant::now();
        let outcome = self.run_builder(node, &inputs);
        self.bar.inc(1);
        let mut q = guard.finish();
        match outcome {
            Ok(registration) => self.built(&mut q, index, registration, started),
            Err(err) => q.errors.push(err),
        }
        self.wake.notify_all();
    }

    /// Runs `node`'s builder on `inputs` into the store.
    fn run_builder(
        &self,
        node: &Node,
        inputs: &BTreeMap<String, EntryInfo>,
    ) -> Result<Registration, RealiseError> {
        // A damaged input is never built from: its hash is checked before it is read.
        let damaged = inputs
            .values()
            .try_for_each(|input| self.store.check_input_intact(input));
        match (&node.action, damaged) {
            (_, Err(err)) => Err(RealiseError::Store(err)),
            (Action::Build(builder), Ok(())) => self
                .store
                .build(&node.fingerprint, |out| {
                    let context = BuildContext {
                        out,
                        inputs,
                        cache: Some(&self.cache_dir),
                    };
                    // A panic in a builder is that build's failure, not the process's.
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| builder(&context)))
                        .unwrap_or_else(|panic| Err(panic_message(&*panic).into()))
                })
                .map_err(RealiseError::Store),
            (Action::Fetch(_) | Action::Present, Ok(())) => Err(RealiseError::NotABuild {
                name: node.fingerprint.name().to_string(),
            }),
        }
    }

    /// Records node `index`'s entry and readies the builds that waited only on it.
    fn built(&self, q: &mut Queue, index: NodeIndex, registration: Registration, started: Instant) {
        let how = if registration.built {
            q.built += 1;
            How::Built
        } else {
            How::Valid
        };
        let node = self.graph.node(index);
        self.timeline
            .record(&node.fingerprint, how, started, Instant::now());
        self.results
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(index, registration.entry);
        for &dependent in &self.dependents[index] {
            q.waiting_on[dependent] -= 1;
            if q.waiting_on[dependent] == 0 {
                q.ready.push(dependent);
            }
        }
    }

    /// Every entry realised and how many were built here, or every build's error.
    fn finish(self) -> Result<(BTreeMap<NodeIndex, EntryInfo>, usize), RealiseError> {
        self.bar.finish_and_clear();
        let queue = self.queue.into_inner().unwrap_or_else(|p| p.into_inner());
        if !queue.errors.is_empty() {
            let mut failed = Vec::new();
            for err in queue.errors {
                match err {
                    RealiseError::Store(err) => failed.push(err),
                    bug => return Err(bug),
                }
            }
            return Err(RealiseError::Builds(failed));
        }
        let entries = self.results.into_inner().unwrap_or_else(|p| p.into_inner());
        Ok((entries, queue.built))
    }
}

/// A bar of `len` builds, drawn only when `progress`.
fn progress_bar(progress: bool, len: u64) -> ProgressBar {
    let bar = if progress {
        ProgressBar::new(len)
    } else {
        ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden())
    };
    if let Ok(style) = ProgressStyle::with_template("building [{bar:30}] {pos}/{len} {wide_msg}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_build_error_names_each_cause_once() {
        let full = std::io::Error::from_raw_os_error(libc::ENOSPC);
        let text = full.to_string();
        let err = RealiseError::Builds(vec![StoreError::Build {
            name: "x".into(),
            source: Box::new(StoreError::Io {
                what: "write",
                path: "/s/tmp/x".into(),
                source: full,
            }),
        }]);
        assert_eq!(
            err.to_string(),
            format!("building x failed: write /s/tmp/x: {text}")
        );
    }
}
