//! `pystore realise`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use serde_json::json;

use super::fetch_cmds::NetSettings;
use super::output::{print_differences, print_json, Ui};
use crate::build::check::CheckReport;
use crate::build::sandbox::Mode;
use crate::build::Status;
use crate::fetch::Fetcher;
use crate::hash::to_hex;
use crate::recipe::realise::{realise as realise_recipe, Outcome, RealiseOptions, TargetOutcome};
use crate::recipe::{find, load, Recipe};
use crate::sign::SecretKey;
use crate::store::Store;

/// Arguments of `pystore realise` beyond the global ones.
pub(super) struct RealiseArgs<'a> {
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
    /// `--sandbox`.
    pub sandbox: Mode,
    /// `PYSTORE_SUBSTITUTERS`.
    pub substituter: Option<std::sync::Arc<dyn crate::build::Substituter>>,
    /// `--check` (1) or `--rounds N`.
    pub check_rounds: Option<usize>,
    /// `--timings[=FILE]`.
    pub timings: Option<Option<PathBuf>>,
}

/// The recipe and the realise options of `args`.
fn prepare(args: &RealiseArgs<'_>, net: &NetSettings) -> Result<(Recipe, RealiseOptions)> {
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
        out_dir: args.out.clone(),
        indexes: net.indexes.clone(),
        signing_key,
        sandbox: args.sandbox,
        substituter: args.substituter.clone(),
        check_rounds: args.check_rounds,
        timeline: args
            .timings
            .is_some()
            .then(|| std::sync::Arc::new(crate::build::timings::Timeline::new())),
    };
    Ok((recipe, options))
}

/// `pystore run RECIPE [--target NAME] -- ARGS`: the bundle python's exit code.
pub(super) fn run(
    store: &Store,
    net: NetSettings,
    args: RealiseArgs<'_>,
    target: Option<&str>,
    program_args: &[std::ffi::OsString],
) -> Result<i32> {
    let (recipe, options) = prepare(&args, &net)?;
    let find_links = net.fetch.find_links.clone();
    let fetcher = Fetcher::new(store, net.fetch, net.credentials);
    let outcome = crate::recipe::run::run(
        store,
        &fetcher,
        &find_links,
        &recipe,
        target,
        &options,
        program_args,
    )?;
    tracing::debug!("ran at sandbox level {}", outcome.level);
    if let Some(code) = outcome.status.code() {
        return Ok(code);
    }
    // Killed by a signal: the shell's convention, 128 + the signal.
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = outcome.status.signal() {
            return Ok(128 + signal);
        }
    }
    Ok(1)
}

/// `pystore realise RECIPE`
pub(super) fn realise(
    store: &Store,
    ui: Ui,
    net: NetSettings,
    args: RealiseArgs<'_>,
) -> Result<bool> {
    let (recipe, options) = prepare(&args, &net)?;
    let find_links = net.fetch.find_links.clone();
    let fetcher = Fetcher::new(store, net.fetch, net.credentials);
    let outcome = realise_recipe(store, &fetcher, &find_links, &recipe, &options);
    // The timings are written even when realise failed: where it stopped is worth seeing.
    if let (Some(requested), Some(timeline)) = (&args.timings, &options.timeline) {
        let (json_path, html_path) = super::timings::write(
            requested.as_deref(),
            &store.layout().tmp_dir(),
            &recipe.name,
            options.jobs,
            timeline.elapsed(),
            &timeline.spans(),
        )?;
        if !ui.quiet {
            eprintln!("timings: {} ({})", html_path.display(), json_path.display());
        }
    }
    match outcome? {
        Outcome::Planned(entries) => {
            let word = |s: Status| match s {
                Status::Valid => "valid",
                Status::Fetch => "fetch",
                Status::Build => "build",
                Status::Substitute => "substitute",
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
                    println!("{:10}  {}", word(entry.status), entry.path.display());
                }
                let count = |s| entries.iter().filter(|e| e.status == s).count();
                eprintln!(
                    "{} to substitute, {} to fetch, {} to build, {} valid",
                    count(Status::Substitute),
                    count(Status::Fetch),
                    count(Status::Build),
                    count(Status::Valid)
                );
            }
        }
        Outcome::Realised(targets, counts) => {
            if !ui.quiet {
                print_counts(&counts);
            }
            if ui.json {
                print_json(&targets.iter().map(target_json).collect::<Vec<_>>())?;
            } else {
                print_targets(&targets);
            }
        }
        Outcome::Checked(targets, counts, report) => {
            if !ui.quiet {
                print_counts(&counts);
            }
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

/// `N substituted, M fetched, K built`, on stderr.
fn print_counts(counts: &crate::build::Counts) {
    eprintln!(
        "{} substituted, {} fetched, {} built",
        counts.substituted, counts.fetched, counts.built
    );
}

fn target_json(t: &TargetOutcome) -> serde_json::Value {
    json!({
        "target": t.target,
        "bundle": t.bundle.path,
        "zip": t.zip.path,
        "zip_size": t.zip.size,
        "provenance": t.provenance.path,
        "sbom": t.sbom.path,
        "validation": t.validation.path,
        "sandbox": t.sandbox,
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
        println!(
            "  validated: {} ({})",
            t.validation.path.display(),
            validated_text(&t.sandbox)
        );
        if let Some(copy) = &t.copied_to {
            println!("  copied to: {}", copy.display());
        }
    }
}

/// `sandbox full` for a level the imports ran at; `static` as it is.
fn validated_text(how: &str) -> String {
    if how == "static" {
        how.to_owned()
    } else {
        format!("sandbox {how}")
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
            print_differences(
                &m.differences,
                m.total_differences,
                ("the registered entry", "the rebuild"),
            );
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
