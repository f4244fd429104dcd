//! python-build-standalone's GitHub releases read as an interpreter catalogue.
//!
//! The newest releases are listed through the REST API (the same client as the releases remote:
//! retries, rate limits, pagination, `GITHUB_TOKEN`), and each release's `SHA256SUMS` asset is
//! downloaded. Only archives that are both a release asset and named in that release's sums file
//! become catalogue rows: an asset the sums file does not name is ignored (nothing vouches for
//! its bytes), and so is a sums line for an asset the release does not have. A release without
//! a `SHA256SUMS` asset contributes nothing.

use std::collections::BTreeSet;
use std::path::Path;

use reqwest::{Method, Url};
use serde_json::Value;

use super::super::{RemoteConfig, RemoteError, Size};
use super::{api::Api, is_safe_part, ApiProblem};
use crate::python::builds::{
    asset_name, parse_asset_name, parse_sha256sums, release_url, KnownBuild, Origin,
};

/// The sums file each release carries.
pub const SUMS_ASSET: &str = "SHA256SUMS";
/// The largest sums file accepted (a release of ~1500 archives has a ~200 KiB one).
const MAX_SUMS: u64 = 16 << 20;

/// What one release contributed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseReport {
    /// The release's tag.
    pub tag: String,
    /// Archives taken into the catalogue.
    pub archives: usize,
    /// Usable-looking archives the sums file does not name (ignored), sorted.
    pub unlisted: Vec<String>,
    /// Sums lines naming an archive the release does not have (ignored).
    pub dangling: usize,
    /// Whether the release has a `SHA256SUMS` asset at all.
    pub has_sums: bool,
}

/// The rows fetched and what each release contributed.
#[derive(Clone, Debug)]
pub struct FetchedCatalogue {
    /// Catalogue rows, origin [`Origin::Fetched`].
    pub builds: Vec<KnownBuild>,
    /// One report per release read, newest first.
    pub releases: Vec<ReleaseReport>,
}

struct AssetInfo {
    id: u64,
    name: String,
    size: u64,
    url: Option<String>,
}

/// Reads the newest `releases` published releases of `repository` (`OWNER/REPO`); `scratch`
/// is an empty directory for the downloaded sums files.
pub fn fetch_pbs_catalogue(
    config: &RemoteConfig,
    repository: &str,
    releases: usize,
    scratch: &Path,
) -> Result<FetchedCatalogue, RemoteError> {
    let spec = format!("github:{repository}");
    let Some((owner, repo)) = repository
        .split_once('/')
        .filter(|(o, r)| is_safe_part(o) && is_safe_part(r))
    else {
        return Err(RemoteError::BadSpec {
            spec,
            reason: "expected OWNER/REPO".into(),
        });
    };
    let api = Api::new(
        &config.github_api,
        owner,
        repo,
        spec.clone(),
        config.github_token.clone(),
        &config.http,
    )?;
    // One page of the newest releases: a release lists ~1500 assets, so reading every release
    // would take thousands of requests; older ones are in the built-in table already.
    let per_page = releases.clamp(1, 100);
    let url = api.endpoint(&format!("releases?per_page={per_page}"))?;
    let (status, body) = api.json(Method::GET, &url, None)?;
    if !status.is_success() {
        return Err(api.fail(Method::GET, &url, status, &body));
    }
    let Value::Array(list) = body else {
        return Err(api.error(&Method::GET, &url, ApiProblem::NotAList("releases")));
    };
    let mut fetched = FetchedCatalogue {
        builds: Vec::new(),
        releases: Vec::new(),
    };
    let published = list.iter().filter(|r| {
        !r.get("draft").and_then(Value::as_bool).unwrap_or(false)
            && !r
                .get("prerelease")
                .and_then(Value::as_bool)
                .unwrap_or(false)
    });
    for release in published.take(releases) {
        let (Some(id), Some(tag)) = (
            release.get("id").and_then(Value::as_u64),
            release.get("tag_name").and_then(Value::as_str),
        ) else {
            return Err(api.error(
                &Method::GET,
                &url,
                ApiProblem::BadRelease {
                    field: "id or tag_name",
                },
            ));
        };
        let assets = release_assets(&api, id, release)?;
        let (builds, report) = read_release(&api, repository, tag, &assets, scratch)?;
        fetched.builds.extend(builds);
        fetched.releases.push(report);
    }
    Ok(fetched)
}

/// The release's assets: listed in the release itself where the API includes them, else
/// through the paginated assets endpoint.
fn release_assets(api: &Api, id: u64, release: &Value) -> Result<Vec<AssetInfo>, RemoteError> {
    let items = match release.get("assets") {
        Some(Value::Array(items)) => items.clone(),
        _ => {
            let url = api.endpoint(&format!("releases/{id}/assets?per_page=100"))?;
            api.pages(url)?.unwrap_or_default()
        }
    };
    Ok(items.iter().filter_map(asset_info).collect())
}

fn asset_info(value: &Value) -> Option<AssetInfo> {
    // An upload that did not finish is not an asset.
    if value
        .get("state")
        .and_then(Value::as_str)
        .is_some_and(|s| s != "uploaded")
    {
        return None;
    }
    Some(AssetInfo {
        id: value.get("id")?.as_u64()?,
        name: value.get("name")?.as_str()?.to_owned(),
        size: value.get("size")?.as_u64()?,
        url: value
            .get("browser_download_url")
            .and_then(Value::as_str)
            .filter(|u| Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https")))
            .map(str::to_owned),
    })
}

fn read_release(
    api: &Api,
    repository: &str,
    tag: &str,
    assets: &[AssetInfo],
    scratch: &Path,
) -> Result<(Vec<KnownBuild>, ReleaseReport), RemoteError> {
    let mut report = ReleaseReport {
        tag: tag.to_owned(),
        archives: 0,
        unlisted: Vec::new(),
        dangling: 0,
        has_sums: false,
    };
    let Some(sums_asset) = assets.iter().find(|a| a.name == SUMS_ASSET) else {
        return Ok((Vec::new(), report));
    };
    report.has_sums = true;
    let file_name: String = tag
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let dest = scratch.join(format!("{file_name}-{SUMS_ASSET}"));
    api.download(sums_asset.id, SUMS_ASSET, &dest, Size::AtMost(MAX_SUMS))?;
    let text = std::fs::read(&dest).map_err(super::super::io_err("read", &dest))?;
    let sums = parse_sha256sums(&String::from_utf8_lossy(&text));
    let names: BTreeSet<&str> = assets.iter().map(|a| a.name.as_str()).collect();
    report.dangling = sums.keys().filter(|n| !names.contains(n.as_str())).count();
    let mut builds = Vec::new();
    for asset in assets {
        let Some((version, asset_tag, triple, flavour)) = parse_asset_name(&asset.name) else {
            continue;
        };
        // An archive of another release re-uploaded here is not this release's.
        if asset_tag != tag {
            continue;
        }
        let Some(sha256) = sums.get(&asset.name) else {
            report.unlisted.push(asset.name.clone());
            continue;
        };
        let file_name = asset_name(&version, tag, &triple, &flavour);
        builds.push(KnownBuild {
            version,
            tag: tag.to_owned(),
            url: asset
                .url
                .clone()
                .unwrap_or_else(|| release_url(repository, tag, &file_name)),
            triple,
            flavour,
            size: Some(asset.size),
            sha256: *sha256,
            file_name,
            origin: Origin::Fetched,
        });
    }
    report.unlisted.sort();
    report.archives = builds.len();
    Ok((builds, report))
}
