//! A fake GitHub REST API for releases on a loopback server, with faults to inject: a release
//! created by someone else between our lookup and our create (422 already_exists), an upload
//! that fails with 502 after leaving a "starter" asset, a secondary rate limit (403 with
//! Retry-After), and pagination of long asset lists (Link headers). It reads headers strictly
//! (a repeated field is one comma-separated list, tests/common/http.rs): an asset download that
//! does not accept exactly `application/octet-stream` gets the asset's JSON description.

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::common::http::{Request, Response, Server};
use crate::common::sha256_hex;

pub(crate) const OWNER: &str = "acme";
pub(crate) const REPO: &str = "bundles";

#[derive(Clone, Debug)]
pub(crate) struct Asset {
    pub id: u64,
    pub name: String,
    pub state: String,
    pub bytes: Vec<u8>,
    /// sha256 of `bytes`, hex, computed once when stored (listing large releases hashed every
    /// asset on every page otherwise).
    pub sha256: String,
}

#[derive(Clone, Debug)]
pub(crate) struct Release {
    pub id: u64,
    pub tag: String,
    pub draft: bool,
    pub assets: Vec<Asset>,
}

/// Faults, each happening once.
#[derive(Clone, Debug, Default)]
pub(crate) struct Faults {
    /// The first create: make the release (with `seed_assets` assets) as a racing job would,
    /// then answer 422 already_exists.
    pub create_races: bool,
    /// The first upload of an asset whose name ends with this: store a starter asset, answer 502.
    pub upload_502_suffix: Option<String>,
    /// The first request for page 2 of an asset list: 403 secondary rate limit, Retry-After: 1.
    pub rate_limit_page_2: bool,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    pub releases: Vec<Release>,
    pub next_id: u64,
    pub faults: Faults,
    /// Assets a racing creator leaves in the release.
    pub seed_assets: usize,
    /// Report `digest` on assets (newer API versions do).
    pub digests: bool,
    /// Answer asset downloads with a redirect to `BASE/dl/ID` (GitHub redirects to a CDN).
    pub redirect_downloads_to: Option<String>,
}

impl State {
    /// The bytes of asset `id` (what a CDN serving it would send).
    pub(crate) fn asset_bytes(&self, id: u64) -> Option<Vec<u8>> {
        self.releases
            .iter()
            .flat_map(|r| &r.assets)
            .find(|a| a.id == id)
            .map(|a| a.bytes.clone())
    }
}

impl State {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub(crate) fn release(&self, tag: &str) -> Option<&Release> {
        self.releases.iter().find(|r| r.tag == tag)
    }

    pub(crate) fn create(&mut self, tag: &str, draft: bool, seeded: usize) -> u64 {
        let id = self.id();
        let mut assets = Vec::new();
        for i in 0..seeded {
            let asset_id = self.id();
            assets.push(Asset {
                id: asset_id,
                name: format!("other-{i:04}.txt"),
                state: "uploaded".into(),
                sha256: sha256_hex(format!("other {i}\n").as_bytes()),
                bytes: format!("other {i}\n").into_bytes(),
            });
        }
        self.releases.push(Release {
            id,
            tag: tag.to_owned(),
            draft,
            assets,
        });
        id
    }
}

pub(crate) struct FakeGithub {
    pub server: Server,
    pub state: Arc<Mutex<State>>,
    pub token: String,
}

fn json_response(status: u16, value: Value) -> Response {
    Response {
        status,
        body: serde_json::to_vec(&value).unwrap(),
        ..Default::default()
    }
    .header("Content-Type", "application/json")
}

fn already_exists(resource: &str, field: &str) -> Response {
    json_response(
        422,
        json!({"message": "Validation Failed", "errors": [{"resource": resource, "code": "already_exists", "field": field}]}),
    )
}

impl FakeGithub {
    pub(crate) fn start(token: &str, state: State) -> FakeGithub {
        let state = Arc::new(Mutex::new(state));
        let shared = state.clone();
        let token_owned = token.to_owned();
        let port = Arc::new(Mutex::new(0u16));
        let port_in = port.clone();
        let server = Server::start(move |req| {
            let base = format!("http://127.0.0.1:{}", *port_in.lock().unwrap());
            handle(req, &mut shared.lock().unwrap(), &token_owned, &base)
        });
        *port.lock().unwrap() = server.port();
        FakeGithub {
            server,
            state,
            token: token.to_owned(),
        }
    }

    /// `PYSTORE_GITHUB_API`.
    pub(crate) fn api(&self) -> String {
        self.server.url("/")
    }

    /// Requests whose method is `method` and whose path starts with `prefix`.
    pub(crate) fn count(&self, method: &str, prefix: &str) -> usize {
        self.server
            .requests()
            .iter()
            .filter(|r| r.method == method && r.path.starts_with(prefix))
            .count()
    }

    pub(crate) fn uploads(&self) -> usize {
        self.count("POST", "/uploads/")
    }
}

fn release_json(release: &Release, base: &str) -> Value {
    json!({
        "id": release.id,
        "tag_name": release.tag,
        "draft": release.draft,
        "upload_url": format!("{base}/uploads/repos/{OWNER}/{REPO}/releases/{}/assets{{?name,label}}", release.id),
    })
}

fn asset_json(asset: &Asset, digests: bool) -> Value {
    let mut value = json!({
        "id": asset.id,
        "name": asset.name,
        "size": asset.bytes.len(),
        "state": asset.state,
        "content_type": "application/octet-stream",
    });
    if digests {
        value["digest"] = format!("sha256:{}", asset.sha256).into();
    }
    value
}

/// A page of `items` with a GitHub-style Link header.
fn page(req: &Request, items: Vec<Value>, base: &str) -> Response {
    let per_page: usize = req
        .query("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    let page: usize = req.query("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let start = (page - 1) * per_page;
    let slice: Vec<Value> = items.iter().skip(start).take(per_page).cloned().collect();
    let mut response = json_response(200, Value::Array(slice));
    if start + per_page < items.len() {
        response = response.header(
            "Link",
            &format!(
                "<{base}{}?per_page={per_page}&page={}>; rel=\"next\", <{base}{}?per_page={per_page}&page={}>; rel=\"last\"",
                req.route(),
                page + 1,
                req.route(),
                items.len().div_ceil(per_page)
            ),
        );
    }
    response
}

fn handle(req: &Request, state: &mut State, token: &str, base: &str) -> Response {
    let authed = req.header("authorization") == Some(&format!("Bearer {token}"));
    if req.header("authorization").is_some() && !authed {
        return json_response(401, json!({"message": "Bad credentials"}));
    }
    let repo = format!("/repos/{OWNER}/{REPO}");
    let uploads = format!("/uploads{repo}/releases/");
    let route = req.route().to_owned();
    let method = req.method.as_str();
    let write = method != "GET";
    if write && !authed {
        return json_response(404, json!({"message": "Not Found"}));
    }
    if let Some(tag) = route.strip_prefix(&format!("{repo}/releases/tags/")) {
        return match state.release(tag).filter(|r| !r.draft) {
            Some(release) => json_response(200, release_json(release, base)),
            None => json_response(404, json!({"message": "Not Found"})),
        };
    }
    if route == format!("{repo}/releases") && method == "GET" {
        let list = state
            .releases
            .iter()
            .filter(|r| authed || !r.draft)
            .map(|r| release_json(r, base))
            .collect();
        return page(req, list, base);
    }
    if route == format!("{repo}/releases") && method == "POST" {
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let tag = body["tag_name"].as_str().unwrap_or_default().to_owned();
        let draft = body["draft"].as_bool().unwrap_or(false);
        if std::mem::take(&mut state.faults.create_races) {
            let seeded = state.seed_assets;
            state.create(&tag, true, seeded);
            return already_exists("Release", "tag_name");
        }
        if state.release(&tag).is_some() {
            return already_exists("Release", "tag_name");
        }
        let id = state.create(&tag, draft, 0);
        let release = state.releases.iter().find(|r| r.id == id).unwrap();
        return json_response(201, release_json(release, base));
    }
    if let Some(rest) = route.strip_prefix(&format!("{repo}/releases/assets/")) {
        let id: u64 = rest.parse().unwrap_or(0);
        let digests = state.digests;
        for release in &mut state.releases {
            let Some(pos) = release.assets.iter().position(|a| a.id == id) else {
                continue;
            };
            if method == "DELETE" {
                release.assets.remove(pos);
                return Response::status(204);
            }
            if release.draft && !authed {
                break;
            }
            let asset = &release.assets[pos];
            // GitHub sends an asset's bytes only when the request accepts exactly
            // `application/octet-stream`; otherwise (the API's `application/vnd.github+json`,
            // or both, as two Accept fields folded into one list) it describes the asset in
            // JSON. A client that sends two Accept headers gets JSON, as from GitHub.
            if req.header("accept") == Some("application/octet-stream") {
                if let Some(cdn) = &state.redirect_downloads_to {
                    let mut redirect = Response::status(302);
                    redirect.body.clear();
                    return redirect.header("Location", &format!("{cdn}/dl/{}", asset.id));
                }
                return Response::ok(asset.bytes.clone())
                    .header("Content-Type", "application/octet-stream");
            }
            return json_response(200, asset_json(asset, digests));
        }
        return json_response(404, json!({"message": "Not Found"}));
    }
    if let Some(rest) = route.strip_prefix(&format!("{repo}/releases/")) {
        let (id, tail) = rest.split_once('/').unwrap_or((rest, ""));
        let id: u64 = id.parse().unwrap_or(0);
        let digests = state.digests;
        let rate_limit = tail == "assets"
            && req.query("page").as_deref() == Some("2")
            && std::mem::take(&mut state.faults.rate_limit_page_2);
        if rate_limit {
            return json_response(
                403,
                json!({"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}),
            )
            .header("Retry-After", "1");
        }
        let Some(release) = state.releases.iter_mut().find(|r| r.id == id) else {
            return json_response(404, json!({"message": "Not Found"}));
        };
        if release.draft && !authed {
            return json_response(404, json!({"message": "Not Found"}));
        }
        if tail == "assets" && method == "GET" {
            let list = release
                .assets
                .iter()
                .map(|a| asset_json(a, digests))
                .collect();
            return page(req, list, base);
        }
        if tail.is_empty() && method == "PATCH" {
            let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
            if let Some(draft) = body["draft"].as_bool() {
                release.draft = draft;
            }
            return json_response(200, release_json(release, base));
        }
    }
    if let Some(rest) = route.strip_prefix(&uploads) {
        let id: u64 = rest
            .strip_suffix("/assets")
            .and_then(|i| i.parse().ok())
            .unwrap_or(0);
        let Some(name) = req.query("name") else {
            return json_response(400, json!({"message": "name is required"}));
        };
        let fail = state
            .faults
            .upload_502_suffix
            .as_ref()
            .is_some_and(|suffix| name.ends_with(suffix.as_str()));
        let asset_id = state.id();
        let Some(release) = state.releases.iter_mut().find(|r| r.id == id) else {
            return json_response(404, json!({"message": "Not Found"}));
        };
        if release.assets.iter().any(|a| a.name == name) {
            return already_exists("ReleaseAsset", "name");
        }
        if fail {
            state.faults.upload_502_suffix = None;
            let half = req.body[..req.body.len() / 2].to_vec();
            let release = state.releases.iter_mut().find(|r| r.id == id).unwrap();
            release.assets.push(Asset {
                id: asset_id,
                name,
                state: "starter".into(),
                sha256: sha256_hex(&half),
                bytes: half,
            });
            return Response::status(502);
        }
        let asset = Asset {
            id: asset_id,
            name,
            state: "uploaded".into(),
            sha256: sha256_hex(&req.body),
            bytes: req.body.clone(),
        };
        let value = asset_json(&asset, state.digests);
        let release = state.releases.iter_mut().find(|r| r.id == id).unwrap();
        release.assets.push(asset);
        return json_response(201, value);
    }
    json_response(404, json!({"message": "Not Found"}))
}
