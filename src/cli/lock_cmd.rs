//! `pystore lock`.

use anyhow::{bail, Context, Result};
use serde_json::json;

use super::fetch_cmds::NetSettings;
use super::output::{print_json, Ui};
use crate::fetch::index::IndexClient;
use crate::fetch::Fetcher;
use crate::recipe::import::import_requirements;
use crate::recipe::lock::{import_pylock, lock as lock_recipe, LockOptions, LockOutcome};
use crate::recipe::{find, load};
use crate::store::Store;

/// Arguments of `pystore lock` beyond the global ones.
pub(super) struct LockArgs<'a> {
    /// Recipe name, directory or file.
    pub recipe: &'a str,
    /// `--target`.
    pub targets: &'a [String],
    /// `--upgrade`.
    pub upgrade: bool,
    /// `--upgrade-package`.
    pub upgrade_packages: &'a [crate::python::PackageName],
    /// `--export-requirements`.
    pub export_requirements: Option<std::path::PathBuf>,
    /// `--export-pylock`.
    pub export_pylock: Option<std::path::PathBuf>,
    /// `--from-pylock`.
    pub from_pylock: Option<std::path::PathBuf>,
    /// `--no-index`.
    pub no_index: bool,
    /// `--from-requirements TARGET=FILE`.
    pub from_requirements: &'a [(String, std::path::PathBuf)],
}

/// `pystore lock RECIPE`
pub(super) fn lock(store: &Store, ui: Ui, net: NetSettings, args: LockArgs<'_>) -> Result<bool> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    if let Some(file) = &args.from_pylock {
        let recipe = load(&find(args.recipe, &cwd)?)?;
        let outcome = import_pylock(&recipe, file)?;
        render(ui, &outcome)?;
        return Ok(true);
    }
    if args.no_index && net.fetch.find_links.is_empty() {
        bail!("--no-index: `pystore lock` then resolves from wheelhouses alone, and none is given; pass --find-links DIR (or set PYSTORE_FIND_LINKS)");
    }
    if net.fetch.offline && !args.no_index && args.from_requirements.is_empty() {
        bail!("--offline: `pystore lock` has to ask the index which versions exist; resolve from wheelhouses alone with --no-index --find-links DIR, or take pins from a pylock.toml with --from-pylock");
    }
    let recipe = load(&find(args.recipe, &cwd)?)?;
    let options = LockOptions {
        targets: args.targets.to_vec(),
        upgrade: args.upgrade,
        upgrade_packages: args.upgrade_packages.to_vec(),
        progress: net.fetch.progress,
        export_requirements: args.export_requirements,
        export_pylock: args.export_pylock,
        catalogue: Some(crate::recipe::interpreters::catalogue(store)?),
        wheelhouses: net.fetch.find_links.clone(),
    };
    let net_offline = net.fetch.offline;
    let importing = !args.from_requirements.is_empty();
    // --no-index (or an import under --offline): no index is looked up at all, not even pip's.
    let indexes = if args.no_index || (importing && net_offline) {
        Vec::new()
    } else {
        net.indexes.resolve()
    };
    let fetcher = Fetcher::new(store, net.fetch, net.credentials);
    // With --no-index no index client exists at all, so none can be asked anything; an import
    // under --offline takes wheels from the wheelhouses alone too. An import needs the index
    // only for wheels the wheelhouses lack, so having none configured is not an error yet.
    let index = if args.no_index || (importing && (net_offline || indexes.is_empty())) {
        None
    } else {
        Some(IndexClient::new(fetcher.http()?, indexes)?)
    };
    let outcome = if args.from_requirements.is_empty() {
        lock_recipe(&fetcher, index.as_ref(), &recipe, &options)?
    } else {
        import_requirements(
            &fetcher,
            index.as_ref(),
            &recipe,
            args.from_requirements,
            &options,
        )?
    };
    render(ui, &outcome)?;
    Ok(true)
}

/// Prints what `lock` wrote: the pins per target (or JSON), and on stderr the files written.
fn render(ui: Ui, outcome: &LockOutcome) -> Result<()> {
    if ui.json {
        let targets: Vec<_> = outcome
            .lock
            .targets
            .iter()
            .map(|t| {
                let packages: Vec<_> = t
                    .packages
                    .iter()
                    .map(|p| {
                        json!({
                            "name": p.name.as_str(),
                            "version": p.version.to_string(),
                            "wheel": p.wheel.as_str(),
                        })
                    })
                    .collect();
                let interpreter = t.interpreter.as_ref().map(|i| {
                    json!({"version": i.version, "url": i.url, "size": i.size, "sha256": i.sha256.to_string()})
                });
                json!({"name": t.spec.name, "interpreter": interpreter, "packages": packages})
            })
            .collect();
        print_json(&json!({
            "lock": outcome.path,
            "changed": outcome.changed,
            "exported": outcome.exported,
            "targets": targets,
        }))?;
    } else {
        for target in &outcome.lock.targets {
            match &target.interpreter {
                Some(pin) => println!(
                    "{}: {} packages, CPython {} (sha256 {})",
                    target.spec.name,
                    target.packages.len(),
                    pin.version,
                    pin.sha256
                ),
                None => println!("{}: {} packages", target.spec.name, target.packages.len()),
            }
            for p in &target.packages {
                println!("  {} {}", p.name, p.version);
            }
        }
        if !ui.quiet {
            let verb = if outcome.changed {
                "wrote"
            } else {
                "unchanged:"
            };
            eprintln!("{verb} {}", outcome.path.display());
            for path in &outcome.exported {
                eprintln!("wrote {}", path.display());
            }
        }
    }
    Ok(())
}
