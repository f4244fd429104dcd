//! The fetch commands: prefetch, index.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use reqwest::Url;
use serde_json::json;

use super::output::{print_json, Ui};
use crate::fetch::config::{self, IndexUrls};
use crate::fetch::credentials::{percent_decode, redact, Credentials};
use crate::fetch::http::HttpClient;
use crate::fetch::index::{CoreMetadata, IndexClient};
use crate::fetch::{FetchConfig, Fetcher, FixedOutput};
use crate::hash::{sha256_file, Sha256Digest};
use crate::store::{EntryName, Fingerprint, Store};

/// Network settings from flags, environment, pip.conf and netrc.
pub(super) struct NetSettings {
    /// Logins, never shown.
    pub credentials: Credentials,
    /// Indexes to query.
    pub indexes: IndexUrls,
    /// Mirrors, wheelhouses, offline, HTTP settings.
    pub fetch: FetchConfig,
}

/// Reads every fetch-related setting once.
pub(super) fn net_settings(
    ui: Ui,
    jobs: Option<usize>,
    offline: bool,
    index_url: Option<&str>,
    extra_index_urls: &[String],
    find_links: &[PathBuf],
) -> Result<NetSettings> {
    let env = |name: &str| std::env::var(name).ok();
    let mut credentials = Credentials::default();
    config::load_netrc(&env, &mut credentials);
    let indexes = config::index_urls(
        index_url,
        extra_index_urls,
        &env,
        &mut credentials,
        ui.quiet || ui.json,
    )?;
    let progress = !ui.quiet && !ui.json && std::io::stderr().is_terminal();
    let fetch = config::fetch_config(
        &env,
        find_links,
        offline,
        jobs.unwrap_or(8),
        progress,
        &mut credentials,
    )?;
    Ok(NetSettings {
        credentials,
        indexes,
        fetch,
    })
}

/// A URL argument, with the sha256 of a `#sha256=` fragment taken out.
fn parse_url_arg(arg: &str, credentials: &mut Credentials) -> Result<(Url, Option<[u8; 32]>)> {
    let url = if arg.starts_with('/') {
        Url::from_file_path(arg).map_err(|_| anyhow::anyhow!("{arg} is not a usable path"))?
    } else {
        let parsed = Url::parse(arg);
        parsed.with_context(|| format!("{} is not a URL", redact_text(arg)))?
    };
    let mut url = credentials.absorb(&url);
    let sha256 = match url.fragment().and_then(|f| f.strip_prefix("sha256=")) {
        Some(hex) => Some(parse_sha256(hex)?),
        None => None,
    };
    url.set_fragment(None);
    Ok((url, sha256))
}

/// Hides userinfo in text that failed to parse as a URL.
fn redact_text(text: &str) -> String {
    match (text.find("://"), text.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}****{}", &text[..scheme + 3], &text[at..])
        }
        _ => text.to_owned(),
    }
}

fn parse_sha256(hex: &str) -> Result<[u8; 32]> {
    let digest: Sha256Digest = hex.trim().parse()?;
    Ok(digest.to_bytes())
}

fn name_from_url(url: &Url) -> Result<EntryName> {
    let last = url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .unwrap_or_default();
    let decoded = percent_decode(last);
    EntryName::new(&decoded)
        .with_context(|| format!("cannot name the entry after {}: pass --name", redact(url)))
}

/// `pystore prefetch URL... [--sha256 HEX] [--name N]`
pub(super) fn prefetch(
    store: &Store,
    ui: Ui,
    net: NetSettings,
    urls: &[String],
    sha256: Option<&str>,
    name: Option<&str>,
) -> Result<bool> {
    if urls.len() > 1 && (sha256.is_some() || name.is_some()) {
        bail!("--sha256 and --name apply to one URL; give several URLs as URL#sha256=HEX instead");
    }
    let mut credentials = net.credentials.clone();
    let mut items: Vec<(Url, Option<FixedOutput>, EntryName)> = Vec::new();
    for arg in urls {
        let (url, fragment_hash) = parse_url_arg(arg, &mut credentials)?;
        let declared = match sha256 {
            Some(hex) => Some(parse_sha256(hex)?),
            None => fragment_hash,
        };
        let entry_name = match name {
            Some(name) => EntryName::new(name)?,
            None => name_from_url(&url)?,
        };
        let item = declared.map(|sha256| FixedOutput {
            name: entry_name.clone(),
            sha256,
            size: None,
            urls: vec![url.clone()],
        });
        items.push((url, item, entry_name));
    }
    let fetcher = Fetcher::new(store, net.fetch.clone(), credentials);
    let pinned: Vec<FixedOutput> = items
        .iter()
        .filter_map(|(_, item, _)| item.clone())
        .collect();
    let mut fetched = fetcher.fetch_all(&pinned)?.into_iter();
    let mut results = Vec::new();
    for (url, item, entry_name) in items {
        let (entry, source) = match item {
            Some(_) => {
                let f = fetched.next().context("a fetch result is missing")?;
                (f.entry, f.source)
            }
            None => (
                fetch_unpinned(store, &fetcher, &url, entry_name, net.fetch.offline)?,
                redact(&url),
            ),
        };
        let sha256 = match serde_json::from_str::<serde_json::Value>(&entry.fingerprint)?["sha256"]
            .as_str()
        {
            Some(hex) => hex.to_owned(),
            None => bail!("{} is not a fixed-output entry", entry.path.display()),
        };
        results.push((redact(&url), sha256, entry, source));
    }
    if ui.json {
        let values: Vec<_> = results
            .iter()
            .map(|(url, sha256, entry, source)| {
                json!({"url": url, "sha256": sha256, "path": entry.path, "id": entry.id.as_str(), "size": entry.size, "source": source})
            })
            .collect();
        print_json(&values)?;
    } else {
        for (_, sha256, entry, _) in &results {
            println!("{sha256} {}", entry.path.display());
        }
    }
    Ok(true)
}

/// Downloads a file whose hash is not known yet (like nix-prefetch-url), then registers it as a
/// fixed-output entry under the hash it turned out to have.
fn fetch_unpinned(
    store: &Store,
    fetcher: &Fetcher<'_>,
    url: &Url,
    name: EntryName,
    offline: bool,
) -> Result<crate::store::EntryInfo> {
    let temp = tempfile::NamedTempFile::new().context("create a temporary file")?;
    if url.scheme() == "file" {
        let path = url
            .to_file_path()
            .map_err(|_| anyhow::anyhow!("{url} is not a local path"))?;
        std::fs::copy(&path, temp.path())
            .with_context(|| format!("cannot read {}", path.display()))?;
    } else if offline {
        bail!(
            "--offline: {} would have to be downloaded (give its sha256 to use a local copy)",
            redact(url)
        );
    } else {
        fetcher.http()?.download(url, temp.path(), None, &|_| {})?;
    }
    let sha256 = sha256_file(temp.path()).context("hash the download")?;
    let fingerprint = Fingerprint::Fixed { name, sha256 };
    let registration = store.build(&fingerprint, |out| {
        std::fs::copy(temp.path(), out)?;
        Ok(())
    })?;
    Ok(registration.entry)
}

/// `pystore index PROJECT`
pub(super) fn index(ui: Ui, net: NetSettings, project: &str) -> Result<bool> {
    if net.fetch.offline {
        bail!("--offline: `pystore index` has to ask the index");
    }
    let http = HttpClient::new(net.fetch.http.clone(), net.credentials)?;
    let (indexes, origin) = net.indexes.resolve_with_origin();
    let client = IndexClient::new(&http, indexes.clone())?;
    let page = client.project(project)?;
    let origin = origin.unwrap_or_default();
    // (When pip chose the index, resolving it has printed the same notice already.)
    if !ui.json && !ui.quiet && !net.indexes.urls.is_empty() {
        eprintln!("index: {} ({origin})", redact(&indexes[0]));
    }
    if ui.json {
        let files: Vec<_> = page
            .files
            .iter()
            .map(|f| {
                json!({
                    "filename": f.filename,
                    "url": redact(&f.url),
                    "hashes": f.hashes,
                    "requires_python": f.requires_python,
                    "yanked": f.yanked,
                    "core_metadata": f.core_metadata != CoreMetadata::Absent,
                    "size": f.size,
                })
            })
            .collect();
        let index = json!({"url": redact(&indexes[0]), "origin": origin});
        print_json(&json!({"name": page.name, "index": index, "files": files}))?;
    } else {
        for f in &page.files {
            let mut line = f.filename.clone();
            if let Some(sha) = f.sha256() {
                line.push_str(&format!("  sha256={sha}"));
            }
            if let Some(rp) = &f.requires_python {
                line.push_str(&format!("  requires-python {rp}"));
            }
            if f.core_metadata != CoreMetadata::Absent {
                line.push_str("  +metadata");
            }
            if let Some(reason) = &f.yanked {
                line.push_str(
                    if reason.is_empty() {
                        "  yanked".into()
                    } else {
                        format!("  yanked ({reason})")
                    }
                    .as_str(),
                );
            }
            println!("{line}");
        }
    }
    Ok(true)
}
