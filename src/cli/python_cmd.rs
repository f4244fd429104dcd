//! `pystore python list` and `pystore python update`: the interpreter catalogue.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Context, Result};
use serde_json::json;

use super::fetch_cmds::NetSettings;
use super::output::{print_json, Ui};
use crate::python::builds::{KnownBuild, PBS_REPOSITORY};
use crate::recipe::interpreters::{self, update};
use crate::recipe::{find, load};
use crate::store::Store;

/// `pystore python list [--all] [--recipe RECIPE]`
pub(super) fn list(store: &Store, ui: Ui, all: bool, recipe: Option<&str>) -> Result<bool> {
    let catalogue = interpreters::catalogue(store)?;
    // Which of the recipe's targets each triple serves.
    let mut serves: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if let Some(recipe) = recipe {
        let cwd = std::env::current_dir().context("cannot read the current directory")?;
        let recipe = load(&find(recipe, &cwd)?)?;
        for target in &recipe.targets {
            serves
                .entry(target.spec.platform.triple().to_owned())
                .or_default()
                .push(target.spec.name.clone());
        }
    }
    // Without --all, only the newest patch release of each minor version (the catalogue is
    // sorted newest first).
    let mut newest: BTreeMap<(u16, u16), crate::python::PythonVersion> = BTreeMap::new();
    for build in catalogue.builds() {
        newest
            .entry((build.version.major, build.version.minor))
            .or_insert(build.version);
    }
    let shown: Vec<&KnownBuild> = catalogue
        .builds()
        .iter()
        .filter(|b| all || newest.get(&(b.version.major, b.version.minor)) == Some(&b.version))
        .filter(|b| recipe.is_none() || serves.contains_key(&b.triple))
        .collect();
    let targets_of = |b: &KnownBuild| serves.get(&b.triple).cloned().unwrap_or_default();
    if ui.json {
        let builds: Vec<_> = shown
            .iter()
            .map(|b| {
                json!({
                    "version": b.version.to_string(),
                    "tag": b.tag,
                    "triple": b.triple,
                    "flavour": b.flavour,
                    "size": b.size,
                    "sha256": b.sha256,
                    "url": b.url,
                    "origin": b.origin.as_str(),
                    "targets": targets_of(b),
                })
            })
            .collect();
        print_json(&json!({
            "catalogue": interpreters::catalogue_path(store)?,
            "builds": builds,
        }))?;
        return Ok(true);
    }
    let versions: BTreeSet<_> = shown.iter().map(|b| b.version).collect();
    let mut out = String::new();
    for b in &shown {
        let size = b.size.map_or("-".to_owned(), |s| s.to_string());
        let targets = targets_of(b);
        let serves = if targets.is_empty() {
            String::new()
        } else {
            format!("  [{}]", targets.join(", "))
        };
        out.push_str(&format!(
            "{:<7}  {}  {:<26}  {:<21}  {:>9}  {}  {}{serves}\n",
            b.version.to_string(),
            b.tag,
            b.triple,
            b.flavour,
            size,
            b.sha256,
            b.origin
        ));
    }
    // A reader that stops early (`| head`) is not an error.
    match std::io::Write::write_all(&mut std::io::stdout().lock(), out.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
        _ => {}
    }
    if !ui.quiet {
        let what = if all {
            "releases"
        } else {
            "newest releases per minor version; --all for every release"
        };
        eprintln!("{} builds of {} {what}", shown.len(), versions.len());
    }
    Ok(true)
}

/// `pystore python update [--repository OWNER/REPO] [--releases N]`
pub(super) fn update_cmd(
    store: &Store,
    ui: Ui,
    net: &NetSettings,
    repository: Option<&str>,
    releases: usize,
) -> Result<bool> {
    if net.fetch.offline {
        bail!("--offline: `pystore python update` has to ask GitHub for python-build-standalone's releases");
    }
    let config = super::remote_cmds::remote_config(net)?;
    let repository = repository.unwrap_or(PBS_REPOSITORY);
    let outcome = update(store, &config, repository, releases)
        .with_context(|| format!("updating the interpreter catalogue from {repository}"))?;
    if ui.json {
        let releases: Vec<_> = outcome
            .releases
            .iter()
            .map(|r| {
                json!({
                    "tag": r.tag,
                    "sha256sums": r.has_sums,
                    "archives": r.archives,
                    "unlisted": r.unlisted,
                    "dangling": r.dangling,
                })
            })
            .collect();
        print_json(&json!({
            "catalogue": outcome.path,
            "builds": outcome.rows,
            "added": outcome.added,
            "releases": releases,
        }))?;
        return Ok(true);
    }
    for r in &outcome.releases {
        if !r.has_sums {
            println!("{}: no SHA256SUMS asset; nothing taken from it", r.tag);
            continue;
        }
        let mut notes = Vec::new();
        if !r.unlisted.is_empty() {
            notes.push(format!(
                "{} not in SHA256SUMS, ignored: {}",
                r.unlisted.len(),
                r.unlisted.join(", ")
            ));
        }
        if r.dangling > 0 {
            notes.push(format!(
                "{} SHA256SUMS lines name no asset, ignored",
                r.dangling
            ));
        }
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", notes.join("; "))
        };
        println!("{}: {} archives{notes}", r.tag, r.archives);
    }
    println!(
        "{} builds in the catalogue ({} new): {}",
        outcome.rows,
        outcome.added,
        outcome.path.display()
    );
    Ok(true)
}
