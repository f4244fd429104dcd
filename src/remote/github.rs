//! `github:OWNER/REPO@TAG`: the assets of a GitHub release, read and written through the REST
//! API (`PYSTORE_GITHUB_API`, default `https://api.github.com`).
//!
//! Pushing is idempotent and safe to repeat after any failure: the release is found by its tag
//! (or as a draft with that tag), created as a draft if there is none, its assets listed with
//! pagination, assets whose name, size and digest already match skipped, the rest uploaded,
//! and the release published last (which also suits immutable releases: nothing changes after
//! publication). Requests are retried on 5xx, on rate limits (`Retry-After`,
//! `x-ratelimit-reset`) and on connection errors, with exponential backoff and jitter; an
//! upload that failed half-way leaves a "starter" asset, which is deleted before trying again.
//! Limits (2 GiB per asset, 1000 assets per release, safe names) are checked before any
//! request. The token is sent only to the API host and the upload host the API names, and is
//! never logged, printed or stored.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::{
    HeaderMap, ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, LINK, RETRY_AFTER,
};
use reqwest::{Method, StatusCode, Url};
use serde_json::{json, Value};

use super::{copy_limited, Blob, PutReport, Remote, RemoteConfig, RemoteError, Size, Upload};
use crate::fetch::http::HttpConfig;

/// GitHub's limit on one release asset (strictly below 2 GiB).
pub const MAX_ASSET_SIZE: u64 = 2 << 30;
/// GitHub's limit on assets per release.
pub const MAX_ASSETS: usize = 1000;
/// Longest wait we accept from a rate limit before giving up.
const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(15 * 60);
/// Assets without a reported digest and at most this large are downloaded to compare them.
const VERIFY_BY_DOWNLOAD: u64 = 64 << 20;
/// Longest exponential backoff step.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// A GitHub release as a remote.
pub struct GithubRemote {
    owner: String,
    repo: String,
    tag: String,
    api: Url,
    token: Option<String>,
    client: Client,
    http: HttpConfig,
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

enum Attempt {
    Done(Response),
    Retry {
        reason: String,
        after: Option<Duration>,
    },
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
        let client = Client::builder()
            .user_agent(concat!("pystore/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(config.http.timeout)
            .timeout(Duration::from_secs(30 * 60))
            .build()
            .map_err(|e| RemoteError::BadSpec {
                spec: spec.clone(),
                reason: e.to_string(),
            })?;
        let mut api = config.github_api.clone();
        if !api.path().ends_with('/') {
            api.set_path(&format!("{}/", api.path()));
        }
        Ok(GithubRemote {
            owner: owner.to_owned(),
            repo: repo.to_owned(),
            tag: tag.to_owned(),
            api,
            token: config.github_token.clone().filter(|t| !t.trim().is_empty()),
            client,
            http: config.http.clone(),
            cache: Mutex::new(None),
        })
    }

    fn endpoint(&self, path: &str) -> Result<Url, RemoteError> {
        self.api
            .join(&format!("repos/{}/{}/{path}", self.owner, self.repo))
            .map_err(|e| RemoteError::BadSpec {
                spec: self.location(),
                reason: e.to_string(),
            })
    }

    /// Removes the token from text that may quote a request.
    fn scrub(&self, text: &str) -> String {
        match &self.token {
            Some(token) => text.replace(token.as_str(), "****"),
            None => text.to_owned(),
        }
    }

    fn api_error(&self, method: &Method, url: &Url, message: String) -> RemoteError {
        RemoteError::Api {
            method: method_name(method),
            url: url.to_string(),
            message: self.scrub(&message),
        }
    }

    /// A request with the API headers and, to the hosts that may have it, the token.
    fn request(&self, method: Method, url: &Url, token_ok: bool) -> RequestBuilder {
        let mut request = self
            .client
            .request(method, url.clone())
            .header(ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28");
        if let (Some(token), true) = (&self.token, token_ok) {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        request
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let step = self
            .http
            .backoff
            .saturating_mul(1 << attempt.min(16))
            .min(MAX_BACKOFF);
        step.mul_f64(0.5 + fastrand::f64() * 0.5)
    }

    /// Sends once and sorts the answer: done (any status a caller handles), or retry.
    fn attempt(&self, request: RequestBuilder) -> Attempt {
        let response = match request.send() {
            Ok(response) => response,
            Err(err) => {
                return Attempt::Retry {
                    reason: error_chain(&err),
                    after: None,
                }
            }
        };
        let status = response.status();
        if status.is_server_error() {
            return Attempt::Retry {
                reason: format!("HTTP {status}"),
                after: retry_after(response.headers()),
            };
        }
        if status == StatusCode::TOO_MANY_REQUESTS
            || (status == StatusCode::FORBIDDEN && is_rate_limited(response.headers()))
        {
            // Secondary limits without a hint: GitHub asks for at least a minute.
            let after = retry_after(response.headers()).or(Some(Duration::from_secs(60)));
            return Attempt::Retry {
                reason: format!("rate limited (HTTP {status})"),
                after,
            };
        }
        Attempt::Done(response)
    }

    /// Sends `build()` until it is answered with something other than a retryable status, or
    /// retries run out. `on_retry` runs before each retry (an upload cleans up there).
    fn call(
        &self,
        method: Method,
        url: &Url,
        build: &dyn Fn() -> Result<RequestBuilder, RemoteError>,
        on_retry: &dyn Fn() -> Result<(), RemoteError>,
    ) -> Result<Response, RemoteError> {
        let mut attempt = 0;
        loop {
            match self.attempt(build()?) {
                Attempt::Done(response) => return Ok(response),
                Attempt::Retry { reason, after } => {
                    if attempt >= self.http.retries {
                        return Err(self.api_error(
                            &method,
                            url,
                            format!("gave up after {} attempts; last: {reason}", attempt + 1),
                        ));
                    }
                    let delay = match after {
                        Some(after) if after > MAX_RATE_LIMIT_WAIT => {
                            return Err(self.api_error(
                                &method,
                                url,
                                format!(
                                    "{reason}; the limit resets in {}s, try again then",
                                    after.as_secs()
                                ),
                            ))
                        }
                        Some(after) => after,
                        None => self.backoff(attempt),
                    };
                    tracing::info!(
                        "{} {url}: {reason}; retrying in {delay:?}",
                        method_name(&method)
                    );
                    std::thread::sleep(delay);
                    on_retry()?;
                    attempt += 1;
                }
            }
        }
    }

    /// A JSON request to the API; `Ok((status, body))` for statuses the caller handles.
    fn json(
        &self,
        method: Method,
        url: &Url,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), RemoteError> {
        let build = || {
            let mut request = self.request(method.clone(), url, true);
            if let Some(body) = body {
                request = request
                    .header(CONTENT_TYPE, "application/json")
                    .body(serde_json::to_vec(body).unwrap_or_default());
            }
            Ok(request)
        };
        let response = self.call(method.clone(), url, &build, &|| Ok(()))?;
        let status = response.status();
        let text = response
            .text()
            .map_err(|e| self.api_error(&method, url, error_chain(&e)))?;
        let value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok((status, value))
    }

    fn fail(&self, method: Method, url: &Url, status: StatusCode, body: &Value) -> RemoteError {
        let message = body
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let hint = match status.as_u16() {
            401 => "; check GITHUB_TOKEN / GH_TOKEN",
            403 | 404 if self.token.is_none() => "; set GITHUB_TOKEN or GH_TOKEN",
            403 | 404 => "; the token may lack contents: write permission on the repository",
            _ => "",
        };
        self.api_error(&method, url, format!("HTTP {status} {message}{hint}"))
    }

    /// GETs every page of a list, following `Link: rel="next"` (only on the API's own origin).
    fn pages(&self, first: Url) -> Result<Option<Vec<Value>>, RemoteError> {
        let mut items = Vec::new();
        let mut next = Some(first);
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            if pages > 100 {
                return Err(self.api_error(&Method::GET, &url, "more than 100 pages".into()));
            }
            let build = || Ok(self.request(Method::GET, &url, true));
            let response = self.call(Method::GET, &url, &build, &|| Ok(()))?;
            let status = response.status();
            if status == StatusCode::NOT_FOUND {
                return Ok(None);
            }
            next = next_link(response.headers()).filter(|n| same_origin(n, &self.api));
            let text = response
                .text()
                .map_err(|e| self.api_error(&Method::GET, &url, error_chain(&e)))?;
            let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if !status.is_success() {
                return Err(self.fail(Method::GET, &url, status, &value));
            }
            let Value::Array(page) = value else {
                return Err(self.api_error(&Method::GET, &url, "expected a JSON list".into()));
            };
            items.extend(page);
        }
        Ok(Some(items))
    }

    fn parse_release(&self, value: &Value) -> Result<Release, RemoteError> {
        let bad = |what: &str| RemoteError::Api {
            method: "GET",
            url: self.location(),
            message: format!("the release has no valid {what}"),
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
        let url = self.endpoint(&format!("releases/tags/{}", self.tag))?;
        let (status, body) = self.json(Method::GET, &url, None)?;
        if status.is_success() {
            return self.parse_release(&body).map(Some);
        }
        if status != StatusCode::NOT_FOUND {
            return Err(self.fail(Method::GET, &url, status, &body));
        }
        // Drafts are not found by tag; they are listed (to those who may push).
        let mut list = self.endpoint("releases")?;
        list.query_pairs_mut().append_pair("per_page", "100");
        let Some(releases) = self.pages(list)? else {
            return Ok(None);
        };
        releases
            .iter()
            .find(|r| r.get("tag_name").and_then(Value::as_str) == Some(self.tag.as_str()))
            .map(|r| self.parse_release(r))
            .transpose()
    }

    fn create_release(&self) -> Result<Release, RemoteError> {
        let url = self.endpoint("releases")?;
        let body = json!({"tag_name": self.tag, "name": self.tag, "draft": true});
        let (status, response) = self.json(Method::POST, &url, Some(&body))?;
        if status.is_success() {
            return self.parse_release(&response);
        }
        if status == StatusCode::UNPROCESSABLE_ENTITY && is_already_exists(&response) {
            // Someone else created it meanwhile.
            if let Some(release) = self.find_release()? {
                return Ok(release);
            }
        }
        Err(self.fail(Method::POST, &url, status, &response))
    }

    fn list_assets(&self, release: &mut Release) -> Result<(), RemoteError> {
        let mut url = self.endpoint(&format!("releases/{}/assets", release.id))?;
        url.query_pairs_mut().append_pair("per_page", "100");
        let assets = self.pages(url)?.unwrap_or_default();
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
                .and_then(|h| hex::decode(h).ok())
                .and_then(|b| <[u8; 32]>::try_from(b).ok());
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
        let url = self.endpoint(&format!("releases/assets/{id}"))?;
        let (status, body) = self.json(Method::DELETE, &url, None)?;
        if status.is_success() || status == StatusCode::NOT_FOUND {
            return Ok(());
        }
        Err(self.fail(Method::DELETE, &url, status, &body))
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

    /// Downloads asset `id` into `dest` (at most `size`).
    fn download(&self, id: u64, name: &str, dest: &Path, size: Size) -> Result<(), RemoteError> {
        let url = self.endpoint(&format!("releases/assets/{id}"))?;
        let build = || {
            Ok(self
                .request(Method::GET, &url, true)
                .header(ACCEPT, "application/octet-stream"))
        };
        let response = self.call(Method::GET, &url, &build, &|| Ok(()))?;
        let status = response.status();
        if !status.is_success() {
            let body: Value =
                serde_json::from_str(&response.text().unwrap_or_default()).unwrap_or(Value::Null);
            return Err(self.fail(Method::GET, &url, status, &body));
        }
        copy_limited(response, dest, size, &self.location(), name)
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
        self.download(asset.id, &upload.name, temp.path(), Size::Exact(asset.size))?;
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
                .request(Method::POST, &url, true)
                .header(CONTENT_TYPE, "application/octet-stream")
                .header(CONTENT_LENGTH, upload.size)
                .body(reqwest::blocking::Body::sized(file, upload.size)))
        };
        let cleanup = std::cell::RefCell::new(release.clone());
        for round in 0..2 {
            let on_retry = || self.clear(&mut cleanup.borrow_mut(), &upload.name);
            let response = self.call(Method::POST, &url, &build, &on_retry)?;
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
            return Err(self.fail(Method::POST, &url, status, &body));
        }
        Err(self.api_error(
            &Method::POST,
            &url,
            "the asset exists and cannot be replaced".into(),
        ))
    }

    fn publish(&self, release: &Release) -> Result<(), RemoteError> {
        let url = self.endpoint(&format!("releases/{}", release.id))?;
        let (status, body) = self.json(Method::PATCH, &url, Some(&json!({"draft": false})))?;
        if status.is_success() {
            return Ok(());
        }
        Err(self.fail(Method::PATCH, &url, status, &body))
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
        self.download(asset.id, name, dest, size)?;
        Ok(true)
    }

    fn check_writable(&self) -> Result<(), RemoteError> {
        if self.token.is_none() {
            return Err(RemoteError::NoToken {
                remote: self.location(),
            });
        }
        Ok(())
    }

    fn put(&self, uploads: &[Upload]) -> Result<PutReport, RemoteError> {
        self.check_writable()?;
        self.preflight(uploads, None)?;
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

fn method_name(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        _ => "request",
    }
}

fn is_already_exists(body: &Value) -> bool {
    body.get("errors")
        .and_then(Value::as_array)
        .is_some_and(|errors| {
            errors
                .iter()
                .any(|e| e.get("code").and_then(Value::as_str) == Some("already_exists"))
        })
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name)?.to_str().ok()
}

/// A 403 is a rate limit (primary or secondary) when it says when to come back.
fn is_rate_limited(headers: &HeaderMap) -> bool {
    header(headers, "x-ratelimit-remaining") == Some("0") || headers.contains_key(RETRY_AFTER)
}

/// How long a rate-limited or failing server asks us to wait: `Retry-After` (seconds or a date),
/// else `x-ratelimit-reset` (epoch seconds) when no requests remain.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    if let Some(value) = header(headers, "retry-after") {
        if let Ok(seconds) = value.trim().parse::<u64>() {
            return Some(Duration::from_secs(seconds));
        }
        if let Ok(when) = httpdate::parse_http_date(value.trim()) {
            return Some(when.duration_since(SystemTime::now()).unwrap_or_default());
        }
    }
    if header(headers, "x-ratelimit-remaining") == Some("0") {
        let reset: u64 = header(headers, "x-ratelimit-reset")?.trim().parse().ok()?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
        return Some(Duration::from_secs(reset.saturating_sub(now) + 1));
    }
    None
}

fn next_link(headers: &HeaderMap) -> Option<Url> {
    let value = header(headers, LINK.as_str())?;
    value.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim() == "rel=\"next\"")
            .then(|| Url::parse(target.trim().trim_start_matches('<').trim_end_matches('>')).ok())?
    })
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn rate_limits_say_how_long_to_wait() {
        assert_eq!(
            retry_after(&headers(&[("retry-after", "7")])),
            Some(Duration::from_secs(7))
        );
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let reset = now + 30;
        let wait = retry_after(&headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", &reset.to_string()),
        ]))
        .unwrap();
        assert!((29..=31).contains(&wait.as_secs()), "{wait:?}");
        assert!(is_rate_limited(&headers(&[("x-ratelimit-remaining", "0")])));
        assert!(!is_rate_limited(&headers(&[(
            "x-ratelimit-remaining",
            "12"
        )])));
        assert_eq!(
            retry_after(&headers(&[
                ("x-ratelimit-remaining", "5"),
                ("x-ratelimit-reset", "1")
            ])),
            None
        );
    }

    #[test]
    fn the_next_page_comes_from_the_link_header() {
        let link = "<http://127.0.0.1:1/r?page=2>; rel=\"next\", <http://127.0.0.1:1/r?page=5>; rel=\"last\"";
        assert_eq!(
            next_link(&headers(&[("link", link)])).unwrap().as_str(),
            "http://127.0.0.1:1/r?page=2"
        );
        let last = "<http://127.0.0.1:1/r?page=1>; rel=\"prev\"";
        assert_eq!(next_link(&headers(&[("link", last)])), None);
        let api = Url::parse("http://127.0.0.1:1/").unwrap();
        assert!(same_origin(
            &Url::parse("http://127.0.0.1:1/x").unwrap(),
            &api
        ));
        assert!(!same_origin(
            &Url::parse("http://127.0.0.2:1/x").unwrap(),
            &api
        ));
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
