//! `github:OWNER/REPO@TAG`: the assets of a GitHub release, read and written through the REST
//! API (`PYSTORE_GITHUB_API`, default `https://api.github.com`).
//!
//! Pushing is idempotent and safe to repeat after any failure: the release is found by its tag
//! (or as a draft with that tag), created as a draft if there is none, its assets listed with
//! pagination, assets whose name, size and digest already match skipped, the rest uploaded,
//! and the release published last (which also suits immutable releases: nothing changes after
//! publication). An upload that failed half-way leaves a "starter" asset, which is deleted
//! before trying again. Limits (2 GiB per asset, 1000 assets per release, safe names) are
//! checked before any request. Retries, rate limits and the token's handling are in [`api`].

mod api;
pub mod pbs;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::sync::Mutex;

use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::{Method, StatusCode, Url};
use serde_json::{json, Value};

use super::{Blob, PutReport, Remote, RemoteConfig, RemoteError, Size, Upload};
use crate::hash::Sha256Digest;
pub use api::ApiProblem;
use api::{is_already_exists, Api};

/// GitHub's limit on one release asset (strictly below 2 GiB).
pub const MAX_ASSET_SIZE: u64 = 2 << 30;
/// GitHub's limit on assets per release.
pub const MAX_ASSETS: usize = 1000;
/// Assets without a reported digest and at most this large are downloaded to compare them.
const VERIFY_BY_DOWNLOAD: u64 = 64 << 20;

/// A GitHub release as a remote.
pub struct GithubRemote {
    owner: String,
    repo: String,
    tag: String,
    api: Api,
    /// The release and its assets, once looked up.
    cache: Mutex<Option<Release>>,
}

#[derive(Clone, Debug)]
struct Release {
    id: u64,
    draft: bool,
    upload_url: Url,
    assets: BTreeMap<String, Asset>,
}

#[derive(Clone, Debug)]
struct Asset {
    id: u64,
    size: u64,
    sha256: Option<[u8; 32]>,
    /// `uploaded`, or `starter`/`open` for an upload that did not finish.
    state: String,
}

fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"._+-".contains(&c))
}

fn is_safe_part(part: &str) -> bool {
    !part.is_empty()
        && part
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(&c))
}

impl GithubRemote {
    /// The release `tag` of `owner/repo`.
    pub fn new(
        owner: &str,
        repo: &str,
        tag: &str,
        config: &RemoteConfig,
    ) -> Result<GithubRemote, RemoteError> {
        let spec = format!("github:{owner}/{repo}@{tag}");
        if !is_safe_part(owner) || !is_safe_part(repo) || !is_safe_tag(tag) {
            return Err(RemoteError::BadSpec {
                spec,
                reason: "owner, repository and tag must be plain names".into(),
            });
        }
        let api = Api::new(
            &config.github_api,
            owner,
            repo,
            spec,
            config.github_token.clone(),
            &config.http,
        )?;
        Ok(GithubRemote {
            owner: owner.to_owned(),
            repo: repo.to_owned(),
            tag: tag.to_owned(),
            api,
            cache: Mutex::new(None),
        })
    }

    fn parse_release(&self, value: &Value) -> Result<Release, RemoteError> {
        let bad = |field: &'static str| RemoteError::Api {
            method: "GET",
            url: self.location(),
            problem: ApiProblem::BadRelease { field },
        };
        let id = value
            .get("id")
            .and_then(Value::as_u64)
            .ok_or_else(|| bad("id"))?;
        let template = value
            .get("upload_url")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("upload_url"))?;
        // `https://uploads.../assets{?name,label}`: drop the URI template part.
        let upload_url = Url::parse(template.split('{').next().unwrap_or(template))
            .map_err(|_| bad("upload_url"))?;
        Ok(Release {
            id,
            draft: value.get("draft").and_then(Value::as_bool).unwrap_or(false),
            upload_url,
            assets: BTreeMap::new(),
        })
    }

    /// The release with our tag: published (by tag), else a draft with that tag.
    fn find_release(&self) -> Result<Option<Release>, RemoteError> {
        let url = self.api.endpoint(&format!("releases/tags/{}", self.tag))?;
        let (status, body) = self.api.json(Method::GET, &url, None)?;
        if status.is_success() {
            return self.parse_release(&body).map(Some);
        }
        if status != StatusCode::NOT_FOUND {
            return Err(self.api.fail(Method::GET, &url, status, &body));
        }
        // Drafts are not found by tag; they are listed (to those who may push).
        let mut list = self.api.endpoint("releases")?;
        list.query_pairs_mut().append_pair("per_page", "100");
        let Some(releases) = self.api.pages(list)? else {
            return Ok(None);
        };
        releases
            .iter()
            .find(|r| r.get("tag_name").and_then(Value::as_str) == Some(self.tag.as_str()))
            .map(|r| self.parse_release(r))
            .transpose()
    }

    fn create_release(&self) -> Result<Release, RemoteError> {
        let url = self.api.endpoint("releases")?;
        let body = json!({"tag_name": self.tag, "name": self.tag, "draft": true});
        let (status, response) = self.api.json(Method::POST, &url, Some(&body))?;
        if status.is_success() {
            return self.parse_release(&response);
        }
        if status == StatusCode::UNPROCESSABLE_ENTITY && is_already_exists(&response) {
            // Someone else created it meanwhile.
            if let Some(release) = self.find_release()? {
                return Ok(release);
            }
        }
        Err(self.api.fail(Method::POST, &url, status, &response))
    }

    fn list_assets(&self, release: &mut Release) -> Result<(), RemoteError> {
        let mut url = self
            .api
            .endpoint(&format!("releases/{}/assets", release.id))?;
        url.query_pairs_mut().append_pair("per_page", "100");
        let assets = self.api.pages(url)?.unwrap_or_default();
        release.assets.clear();
        for asset in assets {
            let (Some(name), Some(id), Some(size)) = (
                asset.get("name").and_then(Value::as_str),
                asset.get("id").and_then(Value::as_u64),
                asset.get("size").and_then(Value::as_u64),
            ) else {
                continue;
            };
            let sha256 = asset
                .get("digest")
                .and_then(Value::as_str)
                .and_then(|d| d.strip_prefix("sha256:"))
                .and_then(|h| h.parse::<Sha256Digest>().ok())
                .map(Sha256Digest::to_bytes);
            let state = asset
                .get("state")
                .and_then(Value::as_str)
                .unwrap_or("uploaded")
                .to_owned();
            release.assets.insert(
                name.to_owned(),
                Asset {
                    id,
                    size,
                    sha256,
                    state,
                },
            );
        }
        Ok(())
    }

    /// The release and its assets (looked up once; `None` when there is no such release).
    fn release(&self) -> Result<Option<Release>, RemoteError> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.is_none() {
            if let Some(mut release) = self.find_release()? {
                self.list_assets(&mut release)?;
                *cache = Some(release);
            }
        }
        Ok(cache.clone())
    }

    fn delete_asset(&self, id: u64) -> Result<(), RemoteError> {
        let url = self.api.endpoint(&format!("releases/assets/{id}"))?;
        let (status, body) = self.api.json(Method::DELETE, &url, None)?;
        if status.is_success() || status == StatusCode::NOT_FOUND {
            return Ok(());
        }
        Err(self.api.fail(Method::DELETE, &url, status, &body))
    }

    /// Deletes a half-uploaded or different asset called `name`, if the release has one.
    fn clear(&self, release: &mut Release, name: &str) -> Result<(), RemoteError> {
        self.list_assets(release)?;
        if let Some(asset) = release.assets.remove(name) {
            tracing::info!(
                "deleting the asset {name} (state {}) before uploading it again",
                asset.state
            );
            self.delete_asset(asset.id)?;
        }
        Ok(())
    }

    /// Whether `asset` already is `upload`: complete, same size, and the same digest — from the
    /// API when it reports one, else (for assets up to [`VERIFY_BY_DOWNLOAD`]) by downloading
    /// it, since a changed index or ZIP can keep its size; larger ones by name and size.
    fn is_same(&self, asset: &Asset, upload: &Upload) -> Result<bool, RemoteError> {
        let blob = Blob {
            name: upload.name.clone(),
            size: asset.size,
            sha256: asset.sha256,
        };
        if asset.state != "uploaded" || !upload.matches(&blob) {
            return Ok(false);
        }
        if asset.sha256.is_some() || asset.size > VERIFY_BY_DOWNLOAD {
            return Ok(true);
        }
        let temp = tempfile::NamedTempFile::new().map_err(super::io_err(
            "create a temporary file for",
            Path::new(&upload.name),
        ))?;
        self.api
            .download(asset.id, &upload.name, temp.path(), Size::Exact(asset.size))?;
        let digest =
            crate::hash::sha256_file(temp.path()).map_err(super::io_err("hash", temp.path()))?;
        Ok(digest == upload.sha256)
    }

    fn upload(&self, release: &mut Release, upload: &Upload) -> Result<bool, RemoteError> {
        if let Some(asset) = release.assets.get(&upload.name) {
            if self.is_same(asset, upload)? {
                return Ok(false);
            }
            let id = asset.id;
            release.assets.remove(&upload.name);
            self.delete_asset(id)?;
        }
        let mut url = release.upload_url.clone();
        url.query_pairs_mut().append_pair("name", &upload.name);
        // The upload host is the one the API named for this release.
        let build = || {
            let file = File::open(&upload.path).map_err(super::io_err("read", &upload.path))?;
            Ok(self
                .api
                .request(Method::POST, &url)
                .header(CONTENT_TYPE, "application/octet-stream")
                .header(CONTENT_LENGTH, upload.size)
                .body(reqwest::blocking::Body::sized(file, upload.size)))
        };
        let cleanup = std::cell::RefCell::new(release.clone());
        for round in 0..2 {
            let on_retry = || self.clear(&mut cleanup.borrow_mut(), &upload.name);
            let response = self.api.call(Method::POST, &url, &build, &on_retry)?;
            let status = response.status();
            let text = response.text().unwrap_or_default();
            let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if status.is_success() {
                return Ok(true);
            }
            if status == StatusCode::UNPROCESSABLE_ENTITY && is_already_exists(&body) && round == 0
            {
                // Uploaded by an earlier attempt whose answer we lost, or by someone else:
                // keep it if it is ours, else replace it.
                let mut current = cleanup.borrow().clone();
                self.list_assets(&mut current)?;
                if let Some(asset) = current.assets.get(&upload.name) {
                    if self.is_same(asset, upload)? {
                        return Ok(false);
                    }
                }
                self.clear(&mut current, &upload.name)?;
                *cleanup.borrow_mut() = current;
                continue;
            }
            return Err(self.api.fail(Method::POST, &url, status, &body));
        }
        Err(self.api.error(&Method::POST, &url, ApiProblem::AssetExists))
    }

    fn publish(&self, release: &Release) -> Result<(), RemoteError> {
        let url = self.api.endpoint(&format!("releases/{}", release.id))?;
        let (status, body) = self
            .api
            .json(Method::PATCH, &url, Some(&json!({"draft": false})))?;
        if status.is_success() {
            return Ok(());
        }
        Err(self.api.fail(Method::PATCH, &url, status, &body))
    }

    fn preflight(&self, uploads: &[Upload], existing: Option<&Release>) -> Result<(), RemoteError> {
        let refuse = |reason: String| RemoteError::Preflight {
            remote: self.location(),
            reason,
        };
        for upload in uploads {
            if !is_safe_name(&upload.name) {
                return Err(refuse(format!(
                    "{:?} is not a safe asset name (letters, digits, . _ + - only; GitHub would rename it)",
                    upload.name
                )));
            }
            if upload.size >= MAX_ASSET_SIZE {
                return Err(refuse(format!(
                    "{} is {} bytes; GitHub release assets must be under 2 GiB",
                    upload.name, upload.size
                )));
            }
        }
        let mut names: std::collections::BTreeSet<&str> =
            uploads.iter().map(|u| u.name.as_str()).collect();
        if let Some(release) = existing {
            names.extend(release.assets.keys().map(String::as_str));
        }
        if names.len() > MAX_ASSETS {
            return Err(refuse(format!(
                "the release would have {} assets; GitHub allows at most {MAX_ASSETS}: push to another tag",
                names.len()
            )));
        }
        Ok(())
    }
}

fn is_safe_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 255
        && tag
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"._+-".contains(&c))
}

impl Remote for GithubRemote {
    fn location(&self) -> String {
        format!("github:{}/{}@{}", self.owner, self.repo, self.tag)
    }

    fn list(&self) -> Result<Option<BTreeMap<String, Blob>>, RemoteError> {
        // Fresh: a push must see what is there now.
        *self.cache.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let Some(release) = self.release()? else {
            return Ok(Some(BTreeMap::new()));
        };
        Ok(Some(
            release
                .assets
                .iter()
                .filter(|(_, a)| a.state == "uploaded")
                .map(|(name, a)| {
                    (
                        name.clone(),
                        Blob {
                            name: name.clone(),
                            size: a.size,
                            sha256: a.sha256,
                        },
                    )
                })
                .collect(),
        ))
    }

    fn get(&self, name: &str, dest: &Path, size: Size) -> Result<bool, RemoteError> {
        let Some(release) = self.release()? else {
            return Ok(false);
        };
        let Some(asset) = release.assets.get(name).filter(|a| a.state == "uploaded") else {
            return Ok(false);
        };
        self.api.download(asset.id, name, dest, size)?;
        Ok(true)
    }

    fn check_writable(&self, files: &[Upload]) -> Result<(), RemoteError> {
        if self.api.token.is_none() {
            return Err(RemoteError::NoToken {
                remote: self.location(),
            });
        }
        self.preflight(files, None)
    }

    fn put(&self, uploads: &[Upload]) -> Result<PutReport, RemoteError> {
        // Every upload's name and size, before any request.
        self.check_writable(uploads)?;
        let mut release = match self.find_release()? {
            Some(release) => release,
            None => self.create_release()?,
        };
        self.list_assets(&mut release)?;
        self.preflight(uploads, Some(&release))?;
        let mut report = PutReport::default();
        for upload in uploads {
            if self.upload(&mut release, upload)? {
                report.uploaded.push(upload.name.clone());
            } else {
                report.skipped.push(upload.name.clone());
            }
        }
        if release.draft {
            self.publish(&release)?;
        }
        *self.cache.lock().unwrap_or_else(|p| p.into_inner()) = None;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_checked_before_any_request() {
        // Port 9 on loopback: nothing is listening, and nothing here may try.
        let config = RemoteConfig {
            http: crate::fetch::http::HttpConfig::default(),
            github_api: Url::parse("http://127.0.0.1:9/").unwrap(),
            github_token: Some("t0ken".into()),
            oci: crate::remote::oci::OciConfig::default(),
        };
        let remote = GithubRemote::new("acme", "bundles", "v1.0.0", &config).unwrap();
        let upload = |name: &str, size: u64| Upload {
            name: name.into(),
            path: "/nonexistent".into(),
            size,
            sha256: [0; 32],
        };
        assert!(remote.check_writable(&[upload("ok.zip", 1)]).is_ok());
        let refused = |uploads: &[Upload], why: &str| {
            let err = remote.check_writable(uploads).unwrap_err().to_string();
            assert!(err.contains(why), "{err}");
        };
        refused(&[upload("a b.zip", 1)], "not a safe asset name");
        refused(&[upload("big.zip", MAX_ASSET_SIZE)], "under 2 GiB");
        let many: Vec<Upload> = (0..=MAX_ASSETS)
            .map(|i| upload(&format!("f{i}"), 1))
            .collect();
        refused(&many, "at most 1000");
        let anonymous = GithubRemote::new(
            "acme",
            "bundles",
            "v1.0.0",
            &RemoteConfig {
                github_token: None,
                ..config
            },
        )
        .unwrap();
        assert!(anonymous
            .check_writable(&[])
            .unwrap_err()
            .to_string()
            .contains("GITHUB_TOKEN"));
    }

    #[test]
    fn asset_names_are_checked() {
        assert!(is_safe_name("0123abcd.tar.zst"));
        assert!(is_safe_name("samai-1.0.0-linux-x86_64.zip"));
        for bad in ["", ".hidden", "a b", "a/b", "ü", &"x".repeat(256)] {
            assert!(!is_safe_name(bad), "{bad:?}");
        }
    }
}
