//! `pystore push` and `pystore pull`, and the substituters realise consults.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use reqwest::Url;
use serde_json::json;

use super::fetch_cmds::NetSettings;
use super::output::{print_differences, print_json, Ui};
use crate::bundle::derivations::provenance_name;
use crate::fetch::credentials::Login;
use crate::fetch::Fetcher;
use crate::hash::to_hex;
use crate::recipe::realise::{realise as realise_recipe, Outcome, RealiseOptions, TargetOutcome};
use crate::recipe::{find, load, Recipe};
use crate::remote::challenge::{challenge as challenge_entries, Verdict};
use crate::remote::oci::credentials::OciCredentialSources;
use crate::remote::oci::{OciConfig, DEFAULT_CHUNK_SIZE};
use crate::remote::pull::{pull as pull_entries, Trust};
use crate::remote::push::{push as push_closure, PushRequest};
use crate::remote::substitute::Substituters;
use crate::remote::{self, Index, RemoteConfig};
use crate::sign::{SecretKey, TrustedKeys};
use crate::store::{layout, EntryId, EntryInfo, Store};

/// Default GitHub API base URL (GitHub Enterprise: `https://HOST/api/v3`).
const GITHUB_API: &str = "https://api.github.com";

/// How remotes are reached: HTTP settings, `PYSTORE_GITHUB_API`, `GITHUB_TOKEN`/`GH_TOKEN`.
pub(super) fn remote_config(net: &NetSettings) -> Result<RemoteConfig> {
    let api = std::env::var("PYSTORE_GITHUB_API")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| GITHUB_API.to_owned());
    let github_api = Url::parse(api.trim())
        .with_context(|| format!("PYSTORE_GITHUB_API={api:?} is not a URL"))?;
    let github_token = ["GITHUB_TOKEN", "GH_TOKEN"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|t| !t.trim().is_empty()))
        .map(|t| t.trim().to_owned());
    Ok(RemoteConfig {
        http: net.fetch.http.clone(),
        github_api,
        github_token,
        oci: oci_config()?,
    })
}

/// OCI registry settings: `PYSTORE_OCI_USERNAME`/`PYSTORE_OCI_PASSWORD`, the docker config
/// (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`), `PYSTORE_OCI_CHUNK_SIZE`.
fn oci_config() -> Result<OciConfig> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let login = match (env("PYSTORE_OCI_USERNAME"), env("PYSTORE_OCI_PASSWORD")) {
        (Some(user), Some(password)) => Some(Login { user, password }),
        (None, None) => None,
        _ => anyhow::bail!(
            "set both PYSTORE_OCI_USERNAME and PYSTORE_OCI_PASSWORD, or neither (for GHCR: any user name and GITHUB_TOKEN)"
        ),
    };
    let docker_config = env("DOCKER_CONFIG")
        .map(|dir| PathBuf::from(dir).join("config.json"))
        .or_else(|| env("HOME").map(|home| PathBuf::from(home).join(".docker/config.json")));
    let chunk_size = match env("PYSTORE_OCI_CHUNK_SIZE") {
        Some(text) => text
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .with_context(|| {
                format!("PYSTORE_OCI_CHUNK_SIZE={text:?} is not a positive number of bytes")
            })?,
        None => DEFAULT_CHUNK_SIZE,
    };
    Ok(OciConfig {
        credentials: OciCredentialSources {
            login,
            docker_config,
        },
        chunk_size,
    })
}

/// The trust settings: `PYSTORE_TRUSTED_KEYS` (or `--trusted-keys`), `--no-require-sigs`.
pub(super) fn trust(trusted_keys: Option<&str>, no_require_sigs: bool) -> Result<Trust> {
    Ok(Trust {
        keys: TrustedKeys::parse(trusted_keys.unwrap_or(""))
            .context("PYSTORE_TRUSTED_KEYS must be space-separated NAME:BASE64 public keys")?,
        require_sigs: !no_require_sigs,
    })
}

/// The substituters of `PYSTORE_SUBSTITUTERS` (space-separated remotes), if any; with
/// `--offline`, only the `file://` ones.
pub(super) fn substituters(
    specs: Option<&str>,
    net: &NetSettings,
    trust: Trust,
    offline: bool,
) -> Result<Option<Arc<Substituters>>> {
    let specs: Vec<&str> = specs
        .unwrap_or("")
        .split_whitespace()
        .filter(|spec| {
            let local = spec.starts_with("file:");
            if offline && !local {
                tracing::info!("--offline: not substituting from {spec}");
            }
            local || !offline
        })
        .collect();
    if specs.is_empty() {
        return Ok(None);
    }
    let config = remote_config(net)?;
    let remotes = specs
        .iter()
        .map(|spec| remote::open(spec, &config))
        .collect::<Result<Vec<_>, _>>()
        .context("PYSTORE_SUBSTITUTERS")?;
    Ok(Some(Arc::new(Substituters::new(remotes, trust))))
}

/// Arguments of `pystore push`.
pub(super) struct PushArgs<'a> {
    /// A recipe, or store paths.
    pub what: &'a [String],
    /// `--to`.
    pub to: &'a str,
    /// `--target` (recipes).
    pub targets: &'a [String],
    /// `--sign-key` / `PYSTORE_SIGNING_KEY`.
    pub sign_key: Option<PathBuf>,
    /// `-j`.
    pub jobs: Option<usize>,
}

/// `pystore push RECIPE|PATH... --to REMOTE`
pub(super) fn push(store: &Store, ui: Ui, net: NetSettings, args: PushArgs<'_>) -> Result<bool> {
    let config = remote_config(&net)?;
    let target = remote::open(args.to, &config)?;
    target.check_writable(&[])?;
    let key = match &args.sign_key {
        Some(path) => Some(Arc::new(SecretKey::read(path)?)),
        None => {
            if !ui.quiet {
                eprintln!("warning: no signing key (--sign-key or PYSTORE_SIGNING_KEY): pushing unsigned entries, which pull refuses unless --no-require-sigs");
            }
            None
        }
    };
    let mut roots: Vec<(String, EntryInfo)> = Vec::new();
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    let entries: Option<Vec<EntryInfo>> = args
        .what
        .iter()
        .map(|arg| store.resolve(arg).ok())
        .collect();
    match entries {
        Some(entries) => {
            roots.extend(entries.into_iter().map(|e| (e.name.clone(), e)));
        }
        None => {
            let [recipe_arg] = args.what else {
                anyhow::bail!("push takes one RECIPE, or store paths that are all valid entries of this store (not valid: {})", args.what.iter().filter(|a| store.resolve(a).is_err()).cloned().collect::<Vec<_>>().join(", "));
            };
            let (recipe, targets) = realise_targets(
                store,
                &net,
                recipe_arg,
                args.targets,
                args.jobs,
                key.clone(),
            )?;
            for t in targets {
                let root = format!("{}-{}", recipe.name, t.target);
                let zip_name = format!("{}-{}-{}.zip", recipe.name, recipe.version, t.target);
                files.push((zip_name.clone(), t.zip.path.clone()));
                files.push((
                    provenance_name(&zip_name, key.is_some()),
                    t.provenance.path.clone(),
                ));
                files.push((format!("{zip_name}.cdx.json"), t.sbom.path.clone()));
                roots.push((root.clone(), t.zip));
                roots.push((format!("{root}.provenance"), t.provenance));
                roots.push((format!("{root}.sbom"), t.sbom));
            }
        }
    }
    let outcome = push_closure(
        store,
        target.as_ref(),
        &PushRequest {
            roots,
            files,
            key: key.as_deref(),
        },
    )?;
    if ui.json {
        print_json(&json!({
            "remote": target.location(),
            "closure": outcome.closure.len(),
            "new_entries": outcome.new_entries.iter().map(|i| i.as_str()).collect::<Vec<_>>(),
            "uploaded": outcome.report.uploaded,
            "skipped": outcome.report.skipped,
        }))?;
    } else {
        for name in &outcome.report.uploaded {
            println!("uploaded {name}");
        }
        if !ui.quiet {
            eprintln!(
                "{}: {} entries in the closure, {} new; {} uploaded, {} already there",
                target.location(),
                outcome.closure.len(),
                outcome.new_entries.len(),
                outcome.report.uploaded.len(),
                outcome.report.skipped.len()
            );
        }
    }
    Ok(true)
}

/// Realises `recipe_arg` for `targets` (all when empty) with no substituter: what push
/// publishes and what challenge compares are built here.
fn realise_targets(
    store: &Store,
    net: &NetSettings,
    recipe_arg: &str,
    targets: &[String],
    jobs: Option<usize>,
    key: Option<Arc<SecretKey>>,
) -> Result<(Recipe, Vec<TargetOutcome>)> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let recipe = load(&find(recipe_arg, &cwd)?)?;
    let options = RealiseOptions {
        targets: targets.to_vec(),
        jobs: jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        progress: net.fetch.progress,
        indexes: net.indexes.clone(),
        signing_key: key,
        ..Default::default()
    };
    let find_links = net.fetch.find_links.clone();
    let fetcher = Fetcher::new(store, net.fetch.clone(), net.credentials.clone());
    match realise_recipe(store, &fetcher, &find_links, &recipe, &options)? {
        Outcome::Realised(targets, _) => Ok((recipe, targets)),
        _ => anyhow::bail!("realising {} planned only", recipe.name),
    }
}

/// Arguments of `pystore challenge`.
pub(super) struct ChallengeArgs<'a> {
    /// The remote.
    pub remote: &'a str,
    /// The recipe.
    pub recipe: &'a str,
    /// `--target`.
    pub targets: &'a [String],
    /// `-j`.
    pub jobs: Option<usize>,
    /// `--sign-key`: realise the provenance signed, as the publisher did, so it is compared too.
    pub sign_key: Option<PathBuf>,
    /// How the published descriptions are trusted.
    pub trust: Trust,
}

/// `pystore challenge REMOTE RECIPE`: false when a published entry differs.
pub(super) fn challenge(
    store: &Store,
    ui: Ui,
    net: NetSettings,
    args: ChallengeArgs<'_>,
) -> Result<bool> {
    let config = remote_config(&net)?;
    let source = remote::open(args.remote, &config)?;
    let key = match &args.sign_key {
        Some(path) => Some(Arc::new(SecretKey::read(path)?)),
        None => None,
    };
    let (_, targets) = realise_targets(store, &net, args.recipe, args.targets, args.jobs, key)?;
    let roots: Vec<EntryInfo> = targets
        .iter()
        .flat_map(|t| [t.zip.clone(), t.provenance.clone(), t.sbom.clone()])
        .collect();
    let closure = store.closure(&roots)?;
    let report = challenge_entries(store, source.as_ref(), &closure, &args.trust)?;
    let same = report.count(|v| matches!(v, Verdict::Same));
    let differ = report.count(|v| matches!(v, Verdict::Differs { .. }));
    let absent = report.count(|v| matches!(v, Verdict::NotPublished));
    if ui.json {
        let entries: Vec<_> = report
            .entries
            .iter()
            .map(|c| {
                let mut value = json!({
                    "name": c.entry.name,
                    "path": c.entry.path,
                    "content_hash": to_hex(&c.entry.content_hash),
                });
                match &c.verdict {
                    Verdict::Same => value["verdict"] = json!("same"),
                    Verdict::NotPublished => value["verdict"] = json!("not-published"),
                    Verdict::Differs {
                        published,
                        differences,
                        total_differences,
                    } => {
                        value["verdict"] = json!("differs");
                        value["published_content_hash"] = json!(published);
                        value["differences"] = json!(differences
                            .iter()
                            .map(|d| json!({"path": d.path, "local": d.registered, "published": d.rebuilt}))
                            .collect::<Vec<_>>());
                        value["total_differences"] = json!(total_differences);
                    }
                }
                value
            })
            .collect();
        print_json(&json!({
            "remote": report.remote,
            "same": same,
            "differ": differ,
            "not_published": absent,
            "entries": entries,
        }))?;
    } else {
        for c in &report.entries {
            match &c.verdict {
                Verdict::Same => println!("same           {}", c.entry.path.display()),
                Verdict::NotPublished => println!("not published  {}", c.entry.path.display()),
                Verdict::Differs {
                    published,
                    differences,
                    total_differences,
                } => {
                    println!("DIFFERS        {}", c.entry.path.display());
                    println!(
                        "  content hash here {}, published {published}",
                        to_hex(&c.entry.content_hash)
                    );
                    print_differences(
                        differences,
                        *total_differences,
                        ("here", "the published entry"),
                    );
                }
            }
        }
        if !ui.quiet {
            eprintln!(
                "challenge against {}: {} derived entries: {same} the same, {differ} different, {absent} not published",
                report.remote,
                same + differ + absent
            );
        }
    }
    Ok(report.agrees())
}

/// The id a `pull` argument names: an id, `<id>-<name>`, or a store path from any store.
fn id_of(arg: &str) -> Option<EntryId> {
    if let Some(id) = EntryId::parse(arg) {
        return Some(id);
    }
    let path = std::path::Path::new(arg);
    let mut components = path
        .components()
        .rev()
        .filter_map(|c| c.as_os_str().to_str());
    components.find_map(|c| layout::parse_entry_dir_name(c).map(|(id, _)| id))
}

/// `pystore pull REMOTE [PATH...]`
pub(super) fn pull(
    store: &Store,
    ui: Ui,
    net: NetSettings,
    from: &str,
    paths: &[String],
    trust: Trust,
) -> Result<bool> {
    let config = remote_config(&net)?;
    let source = remote::open(from, &config)?;
    let mut root_names: Vec<(String, EntryId)> = Vec::new();
    let ids: Vec<EntryId> = if paths.is_empty() {
        let what = format!("{} on {}", remote::index::INDEX_NAME, source.location());
        let bytes = source
            .get_bytes(remote::index::INDEX_NAME, remote::index::MAX_INDEX_SIZE)?
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{} has no {}: pass the store paths to pull",
                    source.location(),
                    remote::index::INDEX_NAME
                )
            })?;
        let index = Index::open(&bytes, &what, &trust.keys, trust.require_sigs)?;
        root_names = index.roots.into_iter().collect();
        root_names.iter().map(|(_, id)| id.clone()).collect()
    } else {
        paths
            .iter()
            .map(|p| {
                id_of(p).ok_or_else(|| {
                    anyhow::anyhow!("{p:?} is not an entry id, <id>-<name> or a store path")
                })
            })
            .collect::<Result<_>>()?
    };
    let pulled = pull_entries(store, source.as_ref(), &ids, &trust)?;
    // Pulled roots are kept like realised ones (gc would otherwise remove them).
    for (name, id) in &root_names {
        if let Some(entry) = pulled.entries.iter().find(|e| &e.id == id) {
            store.add_root(name, entry)?;
        }
    }
    if ui.json {
        print_json(&json!({
            "remote": source.location(),
            "entries": pulled.entries.iter().map(|e| e.path.clone()).collect::<Vec<_>>(),
            "downloaded": pulled.downloaded.iter().map(|i| i.as_str()).collect::<Vec<_>>(),
        }))?;
    } else {
        for entry in &pulled.entries {
            println!("{}", entry.path.display());
        }
        if !ui.quiet {
            eprintln!(
                "{} entries downloaded from {}",
                pulled.downloaded.len(),
                source.location()
            );
        }
    }
    Ok(true)
}
