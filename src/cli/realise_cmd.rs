//! `pystore realise`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use serde_json::json;

use super::fetch_cmds::NetSettings;
use super::output::{print_json, Ui};
use crate::build::check::{CheckReport, PathState};
use crate::build::Status;
use crate::fetch::Fetcher;
use crate::hash::to_hex;
use crate::recipe::realise::{realise as realise_recipe, Outcome, RealiseOptions, TargetOutcome};
use crate::recipe::{find, load};
use crate::sign::SecretKey;
use crate::store::Store;

/// Arguments of `pystore realise` beyond the global ones.
pub struct RealiseArgs<'a> {
    /// Recipe name, directory or file.
    pub recipe: &'a str,
    /// `--target`.
    pub targets: &'a [String],
    /// `--dry-run`.
    pub dry_run: bool,
    /// `--out`.
    pub out: Option<PathBuf>,
    /// `--sign-key` / `PYSTORE_SIGNING_KEY`.
    pub sign_key: Option<PathBuf>,
    /// `-j`.
    pub jobs: Option<usize>,
    /// `--check` (1) or `--rounds N`.
    pub check_rounds: Option<usize>,
}

/// `pystore realise RECIPE`
pub fn realise(store: &Store, ui: Ui, net: NetSettings, args: RealiseArgs<'_>) -> Result<bool> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let recipe = load(&find(args.recipe, &cwd)?)?;
    let source_date_epoch = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(value) if !value.trim().is_empty() => {
            Some(value.trim().parse::<i64>().with_context(|| {
                format!("SOURCE_DATE_EPOCH={value:?} is not a number of seconds")
            })?)
        }
        _ => None,
    };
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let signing_key = match &args.sign_key {
        Some(path) => Some(std::sync::Arc::new(SecretKey::read(path)?)),
        None => None,
    };
    let options = RealiseOptions {
        targets: args.targets.to_vec(),
        jobs,
        progress: net.fetch.progress,
        dry_run: args.dry_run,
        source_date_epoch,
        out_dir: args.out,
        indexes: net.indexes.urls.clone(),
        signing_key,
        check_rounds: args.check_rounds,
    };
    let find_links = net.fetch.find_links.clone();
    let fetcher = Fetcher::new(store, net.fetch, net.credentials);
    match realise_recipe(store, &fetcher, &find_links, &recipe, &options)? {
        Outcome::Planned(entries) => {
            let word = |s: Status| match s {
                Status::Valid => "valid",
                Status::Fetch => "fetch",
                Status::Build => "build",
                Status::Unneeded => "unneeded",
            };
            if ui.json {
                let list: Vec<_> = entries
                    .iter()
                    .map(|e| json!({"name": e.name, "path": e.path, "status": word(e.status)}))
                    .collect();
                print_json(&list)?;
            } else {
                for entry in &entries {
                    println!("{:5}  {}", word(entry.status), entry.path.display());
                }
                let count = |s| entries.iter().filter(|e| e.status == s).count();
                eprintln!(
                    "{} to fetch, {} to build, {} valid",
                    count(Status::Fetch),
                    count(Status::Build),
                    count(Status::Valid)
                );
            }
        }
        Outcome::Realised(targets) => {
            if ui.json {
                print_json(&targets.iter().map(target_json).collect::<Vec<_>>())?;
            } else {
                print_targets(&targets);
            }
        }
        Outcome::Checked(targets, report) => {
            if ui.json {
                print_json(&json!({
                    "targets": targets.iter().map(target_json).collect::<Vec<_>>(),
                    "check": check_json(&report),
                }))?;
            } else {
                print_targets(&targets);
                print_check(&report);
            }
            return Ok(report.reproducible());
        }
    }
    Ok(true)
}

fn target_json(t: &TargetOutcome) -> serde_json::Value {
    json!({
        "target": t.target,
        "bundle": t.bundle.path,
        "zip": t.zip.path,
        "zip_size": t.zip.size,
        "provenance": t.provenance.path,
        "sbom": t.sbom.path,
        "root": t.root,
        "copied_to": t.copied_to,
        "provenance_copied_to": t.provenance_copied_to,
        "sbom_copied_to": t.sbom_copied_to,
    })
}

fn print_targets(targets: &[TargetOutcome]) {
    for t in targets {
        println!("{}: {}", t.target, t.zip.path.display());
        println!("  bundle: {}", t.bundle.path.display());
        println!("  provenance: {}", t.provenance.path.display());
        println!("  sbom: {}", t.sbom.path.display());
        if let Some(copy) = &t.copied_to {
            println!("  copied to: {}", copy.display());
        }
    }
}

fn check_json(report: &CheckReport) -> serde_json::Value {
    json!({
        "rounds": report.rounds,
        "reproducible": report.reproducible(),
        "entries": report.entries.iter().map(|e| json!({
            "name": e.entry.name,
            "path": e.entry.path,
            "content_hash": to_hex(&e.entry.content_hash),
            "reproducible": e.mismatches.is_empty(),
            "mismatches": e.mismatches,
        })).collect::<Vec<_>>(),
    })
}

/// `file, 12 bytes, blake3 1a2b3c4d5e6f`
fn describe(state: &PathState) -> String {
    let mut text = state.kind.to_owned();
    if let Some(size) = state.size {
        text.push_str(&format!(", {size} bytes"));
    }
    if let Some(blake3) = &state.blake3 {
        text.push_str(&format!(", blake3 {blake3}"));
    }
    if let Some(target) = &state.target {
        text.push_str(&format!(" to {target:?}"));
    }
    text
}

fn print_check(report: &CheckReport) {
    let times = if report.rounds == 1 { "once" } else { "times" };
    let rounds = if report.rounds == 1 {
        String::new()
    } else {
        format!("{} ", report.rounds)
    };
    let bad: Vec<_> = report
        .entries
        .iter()
        .filter(|e| !e.mismatches.is_empty())
        .collect();
    for entry in &bad {
        println!("not reproducible: {}", entry.entry.path.display());
        for m in &entry.mismatches {
            println!(
                "  rebuild {}: content hash {} (registered {}), kept at {}",
                m.round,
                m.content_hash,
                to_hex(&entry.entry.content_hash),
                m.kept.display()
            );
            for d in &m.differences {
                let path = if d.path.is_empty() {
                    "(the entry itself)"
                } else {
                    &d.path
                };
                match (&d.registered, &d.rebuilt) {
                    (Some(a), Some(b)) => {
                        println!("    {path}: {} -> {}", describe(a), describe(b))
                    }
                    (Some(a), None) => {
                        println!("    {path}: only in the registered entry ({})", describe(a))
                    }
                    (None, Some(b)) => {
                        println!("    {path}: only in the rebuild ({})", describe(b))
                    }
                    (None, None) => {}
                }
            }
            if m.total_differences > m.differences.len() {
                println!(
                    "    ... and {} more differing paths",
                    m.total_differences - m.differences.len()
                );
            }
        }
    }
    if bad.is_empty() {
        println!(
            "check: {} derived entries rebuilt {rounds}{times}: all reproducible",
            report.entries.len()
        );
    } else {
        println!(
            "check: {} of {} derived entries not reproducible (rebuilt {rounds}{times})",
            bad.len(),
            report.entries.len()
        );
    }
}
