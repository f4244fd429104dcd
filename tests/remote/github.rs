//! push and pull through `github:OWNER/REPO@TAG` against a fake GitHub API on loopback: a release
//! created by a racing job (422 already_exists), more than 100 assets (pagination), a 502 that
//! leaves a starter asset, and a secondary rate limit; the push still ends complete, a second
//! push uploads nothing, a pull gives the same entries and ZIP, and the token appears nowhere.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::common::github::{FakeGithub, Faults, State, OWNER, REPO};
use crate::common::http::{Response, Server};
use crate::common::*;
use crate::remote_fixtures::{closure, Setup};

const TOKEN: &str = "ghp_fakeTOKEN0123456789secretvalue";
const TAG: &str = "v1.0.0";

fn remote() -> String {
    format!("github:{OWNER}/{REPO}@{TAG}")
}

fn with_github(cmd: &mut Command, github: &FakeGithub) {
    cmd.arg("--json")
        .env("PYSTORE_GITHUB_API", github.api())
        .env("GITHUB_TOKEN", TOKEN)
        .env("RUST_LOG", "debug");
}

/// Runs, requires success, and checks the token is in neither stdout nor stderr.
fn run_clean(cmd: &mut Command) -> serde_json::Value {
    let out = run(cmd);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{cmd:?}\n{stdout}\n{stderr}");
    assert!(
        !stdout.contains(TOKEN) && !stderr.contains(TOKEN),
        "token leaked:\n{stderr}"
    );
    serde_json::from_str(&stdout).unwrap()
}

/// No file under `dir` contains the token.
fn assert_token_absent(dir: &Path) {
    let out = Command::new("grep")
        .args(["-r", "-l", "-a", "-F", TOKEN])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.stdout.is_empty(),
        "token found in {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn push_survives_races_502s_rate_limits_and_pagination_then_pulls_back_identically() {
    let setup = Setup::new();
    let github = FakeGithub::start(
        TOKEN,
        State {
            faults: Faults {
                create_races: true,
                upload_502_suffix: Some(".tar.zst".into()),
                rate_limit_page_2: true,
            },
            seed_assets: 150,
            digests: true,
            ..Default::default()
        },
    );
    let a = TempStore::new();
    let mut push = setup.pystore(a.path());
    push.args(["push"])
        .arg(&setup.recipe)
        .args(["--to", &remote()])
        .env("PYSTORE_SIGNING_KEY", &setup.secret);
    with_github(&mut push, &github);
    let first = run_clean(&mut push);
    let uploaded = first["uploaded"].as_array().unwrap().len();
    assert!(uploaded > 3, "{first}");

    {
        let state = github.state.lock().unwrap();
        assert_eq!(state.releases.len(), 1, "one release, found after the race");
        let release = &state.releases[0];
        assert!(!release.draft, "published last");
        assert!(
            release.assets.iter().all(|a| a.state == "uploaded"),
            "no starter asset left"
        );
        assert_eq!(release.assets.len(), 150 + uploaded, "seeded assets kept");
        let names: Vec<&str> = release.assets.iter().map(|a| a.name.as_str()).collect();
        for name in [
            "demo-1.0.0-t.zip",
            "demo-1.0.0-t.zip.intoto.jsonl",
            "demo-1.0.0-t.zip.cdx.json",
            "pystore-index.json",
        ] {
            assert_eq!(names.iter().filter(|n| **n == name).count(), 1, "{name}");
        }
        // Every uploaded asset has the bytes of the local file it came from.
        let zip = release
            .assets
            .iter()
            .find(|a| a.name == "demo-1.0.0-t.zip")
            .unwrap();
        let local = setup.realise(a.path())["zip"].as_str().unwrap().to_owned();
        assert_eq!(zip.bytes, fs::read(&local).unwrap());
        for asset in &release.assets {
            assert!(
                !asset
                    .bytes
                    .windows(TOKEN.len())
                    .any(|w| w == TOKEN.as_bytes()),
                "token in asset {}",
                asset.name
            );
        }
    }
    assert!(
        github.count("DELETE", "/repos/") >= 1,
        "the starter asset was deleted"
    );
    // Uploads and API calls carried the token; nothing else did.
    for request in github.server.requests() {
        assert!(!request.path.contains(TOKEN));
    }

    // A second push uploads nothing and does not even pack.
    let uploads_before = github.uploads();
    let second = run_clean(&mut push);
    assert_eq!(second["uploaded"], serde_json::json!([]), "{second}");
    assert_eq!(github.uploads(), uploads_before);

    // Pull into an empty store: the same entries and ZIP. Downloads are redirected to another
    // host (as GitHub redirects to its CDN), which must not see the token.
    let state = github.state.clone();
    let cdn = Server::start(move |req| {
        let id = req
            .route()
            .strip_prefix("/dl/")
            .and_then(|i| i.parse().ok());
        match id.and_then(|id| state.lock().unwrap().asset_bytes(id)) {
            Some(bytes) => Response::ok(bytes),
            None => Response::status(404),
        }
    });
    github.state.lock().unwrap().redirect_downloads_to = Some(cdn.url(""));
    let b = TempStore::new();
    let mut pull = pystore(b.path());
    pull.args(["pull", &remote()])
        .env("PYSTORE_TRUSTED_KEYS", &setup.public);
    with_github(&mut pull, &github);
    let pulled = run_clean(&mut pull);
    assert!(!pulled["downloaded"].as_array().unwrap().is_empty());
    // Each asset download sent one Accept, the binary type (two would be folded into one
    // list by the server, which then describes the asset in JSON instead).
    let downloads: Vec<String> = github
        .server
        .requests()
        .iter()
        .filter(|r| {
            r.method == "GET"
                && r.route()
                    .starts_with("/repos/acme/bundles/releases/assets/")
        })
        .map(|r| r.header("accept").unwrap_or_default().to_owned())
        .collect();
    assert!(!downloads.is_empty());
    assert!(
        downloads.iter().all(|a| a == "application/octet-stream"),
        "{downloads:?}"
    );
    let zip_a = setup.realise(a.path())["zip"].as_str().unwrap().to_owned();
    let zip_b = b
        .path()
        .join("entries")
        .join(Path::new(&zip_a).file_name().unwrap());
    assert_eq!(fs::read(&zip_b).unwrap(), fs::read(&zip_a).unwrap());
    assert_eq!(
        closure(b.path(), zip_b.to_str().unwrap()),
        closure(a.path(), &zip_a)
    );

    // The release as a substituter: realise downloads instead of building, without a token
    // (the release is published).
    let c = TempStore::new();
    let out = run(pystore(c.path())
        .args(["--json", "realise"])
        .arg(&setup.recipe)
        .env("PYSTORE_GITHUB_API", github.api())
        .env("PYSTORE_SUBSTITUTERS", remote())
        .env("PYSTORE_TRUSTED_KEYS", &setup.public)
        .env("PYSTORE_SIGNING_KEY", &setup.secret));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("5 substituted, 0 fetched, 0 built"),
        "{stderr}"
    );
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        fs::read(value[0]["zip"].as_str().unwrap()).unwrap(),
        fs::read(&zip_a).unwrap()
    );

    assert_token_absent(a.path());
    assert_token_absent(b.path());
    assert_token_absent(c.path());
    assert_token_absent(setup.work.path());
}

#[test]
fn without_digests_assets_are_matched_by_name_and_size_and_limits_are_checked_first() {
    let setup = Setup::new();
    let github = FakeGithub::start(TOKEN, State::default());
    let a = TempStore::new();
    let mut push = setup.pystore(a.path());
    push.args(["push"])
        .arg(&setup.recipe)
        .args(["--to", &remote()])
        .env("PYSTORE_SIGNING_KEY", &setup.secret);
    with_github(&mut push, &github);
    run_clean(&mut push);
    let uploads = github.uploads();
    assert_eq!(run_clean(&mut push)["uploaded"], serde_json::json!([]));
    assert_eq!(github.uploads(), uploads);

    // Same name and size, other bytes (no digest to tell): found out and replaced.
    let original = {
        let mut state = github.state.lock().unwrap();
        let index = state.releases[0]
            .assets
            .iter_mut()
            .find(|a| a.name == "pystore-index.json")
            .unwrap();
        let original = index.bytes.clone();
        let last = index.bytes.len() - 3;
        index.bytes[last] = if index.bytes[last] == b'A' {
            b'B'
        } else {
            b'A'
        };
        original
    };
    let third = run_clean(&mut push);
    assert_eq!(
        third["uploaded"],
        serde_json::json!(["pystore-index.json"]),
        "{third}"
    );
    let state = github.state.lock().unwrap();
    let index = state.releases[0]
        .assets
        .iter()
        .find(|a| a.name == "pystore-index.json")
        .unwrap();
    assert_eq!(index.bytes, original);
    drop(state);

    // No token: refused before any request.
    let requests = github.server.requests().len();
    let mut cmd = setup.pystore(a.path());
    cmd.args(["push"])
        .arg(&setup.recipe)
        .args(["--to", &remote()])
        .env("PYSTORE_GITHUB_API", github.api());
    let stderr = run_fails(&mut cmd, 1);
    assert!(stderr.contains("set GITHUB_TOKEN or GH_TOKEN"), "{stderr}");
    assert_eq!(github.server.requests().len(), requests);

    // A release that would pass 1000 assets: refused before uploading anything.
    let full = FakeGithub::start(
        TOKEN,
        State {
            faults: Faults {
                create_races: true,
                ..Default::default()
            },
            seed_assets: 995,
            ..Default::default()
        },
    );
    let mut cmd = setup.pystore(a.path());
    cmd.args(["push"])
        .arg(&setup.recipe)
        .args(["--to", &remote()])
        .env("PYSTORE_SIGNING_KEY", &setup.secret);
    with_github(&mut cmd, &full);
    let stderr = run_fails(&mut cmd, 1);
    assert!(stderr.contains("at most 1000"), "{stderr}");
    assert!(!stderr.contains(TOKEN));
    assert_eq!(full.uploads(), 0);

    // A wrong token is reported without being shown.
    let mut cmd = setup.pystore(a.path());
    cmd.args(["push"])
        .arg(&setup.recipe)
        .args(["--to", &remote()])
        .env("PYSTORE_GITHUB_API", github.api())
        .env("GH_TOKEN", "ghp_wrongwrongwrong");
    let stderr = run_fails(&mut cmd, 1);
    assert!(stderr.contains("401"), "{stderr}");
    assert!(!stderr.contains("ghp_wrongwrongwrong"), "{stderr}");
}
