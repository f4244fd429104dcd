//! `pystore realise`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use serde_json::json;

use super::fetch_cmds::NetSettings;
use super::output::{print_json, Ui};
use crate::build::sandbox::Mode;
use crate::build::Status;
use crate::fetch::Fetcher;
use crate::recipe::realise::{realise as realise_recipe, Outcome, RealiseOptions};
use crate::recipe::{find, load, Recipe};
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
    /// `--sandbox`.
    pub sandbox: Mode,
    /// `PYSTORE_SUBSTITUTERS`.
    pub substituter: Option<std::sync::Arc<dyn crate::build::Substituter>>,
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
        indexes: net.indexes.urls.clone(),
        signing_key,
        sandbox: args.sandbox,
        substituter: args.substituter.clone(),
    };
    Ok((recipe, options))
}

/// `pystore run RECIPE [--target NAME] -- ARGS`: the bundle python's exit code.
pub fn run(
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
pub fn realise(store: &Store, ui: Ui, net: NetSettings, args: RealiseArgs<'_>) -> Result<bool> {
    let (recipe, options) = prepare(&args, &net)?;
    let find_links = net.fetch.find_links.clone();
    let fetcher = Fetcher::new(store, net.fetch, net.credentials);
    match realise_recipe(store, &fetcher, &find_links, &recipe, &options)? {
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
                eprintln!(
                    "{} substituted, {} fetched, {} built",
                    counts.substituted, counts.fetched, counts.built
                );
            }
            if ui.json {
                let list: Vec<_> = targets
                    .iter()
                    .map(|t| {
                        json!({
                            "target": t.target,
                            "bundle": t.bundle.path,
                            "zip": t.zip.path,
                            "zip_size": t.zip.size,
                            "provenance": t.provenance.path,
                            "sbom": t.sbom.path,
                            "validation": t.validation.path,
                            "sandbox": t.sandbox.as_str(),
                            "root": t.root,
                            "copied_to": t.copied_to,
                            "provenance_copied_to": t.provenance_copied_to,
                            "sbom_copied_to": t.sbom_copied_to,
                        })
                    })
                    .collect();
                print_json(&list)?;
            } else {
                for t in &targets {
                    println!("{}: {}", t.target, t.zip.path.display());
                    println!("  bundle: {}", t.bundle.path.display());
                    println!("  provenance: {}", t.provenance.path.display());
                    println!("  sbom: {}", t.sbom.path.display());
                    println!(
                        "  validated: {} (sandbox {})",
                        t.validation.path.display(),
                        t.sandbox
                    );
                    if let Some(copy) = &t.copied_to {
                        println!("  copied to: {}", copy.display());
                    }
                }
            }
        }
    }
    Ok(true)
}
