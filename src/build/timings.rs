//! When each entry of a realisation was fetched or built: the data of `realise --timings`.
//!
//! Times are seconds from the start of the realisation, read from a monotonic clock; they
//! describe one run on one machine and never enter the store.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;

use crate::store::{EntryId, Fingerprint};

/// How a node's entry was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum How {
    /// Valid in the store already (cached): nothing was done.
    Valid,
    /// Downloaded (or copied from a local source) by hash.
    Fetched,
    /// Built here.
    Built,
    /// Downloaded from a substituter.
    Substituted,
}

/// One entry's span.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Timing {
    /// The entry's name.
    pub name: String,
    /// The step it belongs to: `fetch`, `unpack`, `install`, `compile`, `bundle`, `validate`,
    /// `zip`, `provenance`, `sbom`, `present`.
    pub step: &'static str,
    /// How it was obtained.
    pub how: How,
    /// Start, in seconds from the start of the realisation.
    pub start: f64,
    /// End, in seconds from the start of the realisation.
    pub end: f64,
}

/// The step an entry with `fingerprint` belongs to, from its builder.
pub fn step_of(fingerprint: &Fingerprint) -> &'static str {
    match fingerprint {
        Fingerprint::Fixed { .. } => "fetch",
        Fingerprint::Source { .. } => "present",
        Fingerprint::Derived { builder, .. } => match builder.as_str() {
            "interpreter" => "unpack",
            "install-wheel" => "install",
            "bytecode" => "compile",
            "bundle" => "bundle",
            "validate" => "validate",
            "zip" => "zip",
            "provenance" => "provenance",
            "sbom-cyclonedx" => "sbom",
            _ => "build",
        },
    }
}

/// Collects spans from the threads of one realisation.
#[derive(Debug)]
pub struct Timeline {
    epoch: Instant,
    spans: Mutex<Vec<Timing>>,
    /// The entries substituted in this run.
    substituted: Mutex<BTreeSet<EntryId>>,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline::new()
    }
}

impl Timeline {
    /// A timeline starting now.
    pub fn new() -> Timeline {
        Timeline {
            epoch: Instant::now(),
            spans: Mutex::new(Vec::new()),
            substituted: Mutex::new(BTreeSet::new()),
        }
    }

    /// Seconds from the start to `at`.
    pub fn offset(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.epoch).as_secs_f64()
    }

    /// Records that the entry of `fingerprint` was obtained `how`, from `start` to `end`.
    pub fn record(&self, fingerprint: &Fingerprint, how: How, start: Instant, end: Instant) {
        let timing = Timing {
            name: fingerprint.name().to_string(),
            step: step_of(fingerprint),
            how,
            start: self.offset(start),
            end: self.offset(end),
        };
        self.spans
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(timing);
    }

    /// Records that entry `id` was substituted from `start` to `end`.
    pub fn record_substituted(
        &self,
        id: &EntryId,
        fingerprint: &Fingerprint,
        start: Instant,
        end: Instant,
    ) {
        self.substituted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.clone());
        self.record(fingerprint, How::Substituted, start, end);
    }

    /// Records that entry `id` was valid at `at`, unless this run substituted it: an entry
    /// substituted earlier in the run is valid when the builds start, and its span already says
    /// what the run did for it. (Entries that came with a substituted entry's closure are
    /// recorded valid.)
    pub fn record_valid(&self, id: &EntryId, fingerprint: &Fingerprint, at: Instant) {
        let substituted = self.substituted.lock().unwrap_or_else(|p| p.into_inner());
        if !substituted.contains(id) {
            drop(substituted);
            self.record(fingerprint, How::Valid, at, at);
        }
    }

    /// Every span recorded, by start time (then name).
    pub fn spans(&self) -> Vec<Timing> {
        let mut spans = self.spans.lock().unwrap_or_else(|p| p.into_inner()).clone();
        spans.sort_by(|a, b| a.start.total_cmp(&b.start).then(a.name.cmp(&b.name)));
        spans
    }

    /// Seconds since the start.
    pub fn elapsed(&self) -> f64 {
        self.epoch.elapsed().as_secs_f64()
    }
}
