//! The build graph: every entry a realisation may need, with its id computed up front.
//!
//! Planning is pure: nodes are added with their fingerprints (derived nodes from their inputs'
//! ids), so every id is known before anything is fetched or built.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde_json::Value;

use crate::fetch::FixedOutput;
use crate::store::{EntryId, EntryInfo, EntryName, Fingerprint};

/// Index of a node in its graph.
pub type NodeIndex = usize;

/// What a builder gets: where to write, and its inputs by label.
pub struct BuildContext<'a> {
    /// The output path (does not exist yet): create a file or a directory there.
    pub out: &'a Path,
    /// The input entries, by the labels the node gave them.
    pub inputs: &'a BTreeMap<String, EntryInfo>,
    /// A directory of caches that may make a builder faster but never change its output (the
    /// store's `cache/`); `None` when a builder must compute everything afresh, as
    /// `realise --check` does.
    pub cache: Option<&'a Path>,
}

impl BuildContext<'_> {
    /// The input labelled `label`.
    pub fn input(&self, label: &str) -> Result<&EntryInfo, BuildError> {
        self.inputs
            .get(label)
            .ok_or_else(|| format!("builder input {label:?} is missing").into())
    }
}

pub use crate::store::BuildError;

/// A builder function: pure, reading only its inputs.
pub type Builder = Box<dyn Fn(&BuildContext<'_>) -> Result<(), BuildError> + Send + Sync>;

/// How a node's entry is made.
pub enum Action {
    /// Downloaded (or found) by hash.
    Fetch(FixedOutput),
    /// Built from its inputs.
    Build(Builder),
    /// Registered before planning (a captured interpreter): always valid.
    Present,
}

/// A node: an entry and how to make it.
pub struct Node {
    /// Its fingerprint (and so its id).
    pub fingerprint: Fingerprint,
    /// Its id.
    pub id: EntryId,
    /// Inputs by label.
    pub inputs: BTreeMap<String, NodeIndex>,
    /// Nodes that must be realised before this one is built, without being its inputs: not
    /// part of its id, not given to its builder, not references of its entry. A check that
    /// must pass first (validation before the ZIP) without changing what is built.
    pub after: Vec<NodeIndex>,
    /// How it is made.
    pub action: Action,
}

/// A set of nodes; adding a node whose id is already present returns the existing node.
#[derive(Default)]
pub struct Graph {
    nodes: Vec<Node>,
    by_id: HashMap<EntryId, NodeIndex>,
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Graph {
        Graph::default()
    }

    /// The nodes.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Node `index`.
    pub fn node(&self, index: NodeIndex) -> &Node {
        &self.nodes[index]
    }

    fn insert(
        &mut self,
        fingerprint: Fingerprint,
        inputs: BTreeMap<String, NodeIndex>,
        action: Action,
    ) -> Result<NodeIndex, BuildError> {
        let id = fingerprint.id()?;
        if let Some(&existing) = self.by_id.get(&id) {
            return Ok(existing);
        }
        self.nodes.push(Node {
            fingerprint,
            id: id.clone(),
            inputs,
            after: Vec::new(),
            action,
        });
        self.by_id.insert(id, self.nodes.len() - 1);
        Ok(self.nodes.len() - 1)
    }

    /// Adds a file to fetch.
    pub fn fetch(&mut self, item: FixedOutput) -> Result<NodeIndex, BuildError> {
        self.insert(item.fingerprint(), BTreeMap::new(), Action::Fetch(item))
    }

    /// Adds an entry registered before planning.
    pub fn present(&mut self, fingerprint: Fingerprint) -> Result<NodeIndex, BuildError> {
        self.insert(fingerprint, BTreeMap::new(), Action::Present)
    }

    /// Sets the URLs of a fetch node (found once planning shows the file is needed).
    pub fn set_urls(&mut self, index: NodeIndex, urls: Vec<reqwest::Url>) {
        if let Action::Fetch(item) = &mut self.nodes[index].action {
            item.urls = urls;
        }
    }

    /// Makes `node` wait for `first` (see [`Node::after`]); its id does not change.
    pub fn after(&mut self, node: NodeIndex, first: NodeIndex) {
        let after = &mut self.nodes[node].after;
        if !after.contains(&first) {
            after.push(first);
        }
    }

    /// Adds a derived entry: `builder` (name and version, both part of the id) run with `params`
    /// on `inputs`.
    pub fn derive(
        &mut self,
        name: EntryName,
        builder: (&str, &str),
        params: Value,
        inputs: BTreeMap<String, NodeIndex>,
        build: Builder,
    ) -> Result<NodeIndex, BuildError> {
        let input_ids = inputs
            .iter()
            .map(|(label, &i)| (label.clone(), self.nodes[i].id.clone()))
            .collect();
        let fingerprint = Fingerprint::Derived {
            name,
            builder: builder.0.to_owned(),
            builder_version: builder.1.to_owned(),
            params,
            inputs: input_ids,
        };
        self.insert(fingerprint, inputs, Action::Build(build))
    }
}
