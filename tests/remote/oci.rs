//! push, pull, substitution and challenge through `oci://` against the real CNCF distribution
//! server (Debian's `docker-registry`), started here on a free loopback port with a temporary
//! config and storage directory: idempotent re-push (counted in the registry's access log),
//! chunked uploads, an identical pull into an empty store, a tampered blob in the registry's
//! storage, a deleted tag, a registry that is down, and htpasswd auth with missing, wrong and
//! right credentials from the environment, `~/.docker/config.json` and a credential helper.
//!
//! Without the `docker-registry` binary the tests say so on stderr and pass (`.ci/oci.sh`
//! installs it, so CI always runs them).

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::remote_fixtures::{closure, Setup};
use serde_json::Value;

const REPO: &str = "acme/bundles";

/// A `docker-registry` process on loopback, killed on drop.
struct Registry {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

fn registry_binary() -> Option<PathBuf> {
    ["/usr/bin/docker-registry", "/usr/local/bin/docker-registry"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Registry {
    /// Starts a registry; with `htpasswd`, only that user gets in. `None` (with a message)
    /// when the binary or `htpasswd` is missing.
    fn start(htpasswd: Option<(&str, &str)>) -> Option<Registry> {
        let Some(binary) = registry_binary() else {
            skip_without(
                "/usr/bin/docker-registry",
                "apt-get install docker-registry; .ci/oci.sh does",
            );
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut auth = String::new();
        if let Some((user, password)) = htpasswd {
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .output();
            let Some(out) = out.ok().filter(|o| o.status.success()) else {
                skip_without("htpasswd", "apt-get install apache2-utils");
                return None;
            };
            fs::write(dir.path().join("htpasswd"), out.stdout).unwrap();
            auth = format!(
                "auth:\n  htpasswd:\n    realm: pystore-test\n    path: {}\n",
                dir.path().join("htpasswd").display()
            );
        }
        // Nothing here reaches the network: no notifications, no proxy (pull-through cache),
        // no redirects to storage, and upload purging off.
        let config = format!(
            "version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
  redirect:
    disable: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
  secret: pystore-test-secret
{auth}",
            storage = dir.path().join("storage").display(),
        );
        let config_path = dir.path().join("config.yml");
        fs::write(&config_path, config).unwrap();
        let log = fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let registry = Registry { child, dir, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the registry did not start:\n{}",
                registry.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(registry)
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn remote(&self, tag: &str) -> String {
        format!("oci://{}/{REPO}:{tag}", self.host())
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Access-log lines of `method` requests whose path contains `path`.
    fn requests(&self, method: &str, path: &str) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains(&format!("\"{method} /v2/")) && l.contains(path))
            .count()
    }

    /// Blob uploads finished (`PUT .../blobs/uploads/...?digest=`).
    fn blob_uploads(&self) -> usize {
        self.requests("PUT", "/blobs/uploads/")
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}/v2/{REPO}/{path}", self.host())
    }

    /// `GET` with an `Accept` header, as JSON.
    fn get_json(&self, path: &str) -> (Value, String) {
        let response = reqwest::blocking::Client::new()
            .get(self.url(path))
            .header(
                "Accept",
                "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json",
            )
            .send()
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        let digest = response
            .headers()
            .get("Docker-Content-Digest")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (
            serde_json::from_slice(&response.bytes().unwrap()).unwrap(),
            digest,
        )
    }

    /// The file holding blob `digest` in the registry's storage.
    fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn push(setup: &Setup, store: &Path, remote: &str) -> Command {
    let mut cmd = setup.pystore(store);
    cmd.args(["--json", "push"])
        .arg(&setup.recipe)
        .args(["--to", remote])
        .env("PYSTORE_SIGNING_KEY", &setup.secret)
        .env("PYSTORE_HTTP_RETRIES", "1")
        .env("PYSTORE_HTTP_BACKOFF_MS", "50");
    cmd
}

/// `pystore` with the wheelhouse but not `--offline` (which drops non-local substituters); the
/// package index is a closed loopback port, so nothing leaves the machine.
fn online(setup: &Setup, store: &Path) -> Command {
    let mut cmd = pystore(store);
    cmd.arg("--find-links")
        .arg(&setup.wheels)
        .env("PYSTORE_INDEX_URL", "http://127.0.0.1:9/simple/");
    cmd
}

fn ok_json(cmd: &mut Command) -> Value {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The path of the ZIP `zip_a` names, in `store`.
fn same_zip_in(store: &Path, zip_a: &str) -> PathBuf {
    store
        .join("entries")
        .join(Path::new(zip_a).file_name().unwrap())
}

#[test]
fn push_repush_pull_substitute_and_challenge_through_a_real_registry() {
    let Some(registry) = Registry::start(None) else {
        return;
    };
    let setup = Setup::new();
    let remote = registry.remote("v1.0.0");
    let a = TempStore::new();
    // 1 MiB chunks: the interpreter's archive goes up in PATCHes, small blobs in one PUT.
    let first = ok_json(push(&setup, a.path(), &remote).env("PYSTORE_OCI_CHUNK_SIZE", "1048576"));
    let uploaded = first["uploaded"].as_array().unwrap().len();
    assert!(uploaded > 3, "{first}");
    // Every blob plus the empty config, each finished by one PUT; large ones chunked.
    assert_eq!(registry.blob_uploads(), uploaded + 1, "{}", registry.log());
    assert!(
        registry.requests("PATCH", "/blobs/uploads/") > 0,
        "no chunked upload"
    );
    assert!(registry.requests("HEAD", "/blobs/sha256:") >= uploaded);

    // The tag names an image index of one manifest per root plus the catalog.
    let (index, _) = registry.get_json("manifests/v1.0.0");
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(index["artifactType"], "application/vnd.pystore.closure.v1");
    let manifests = index["manifests"].as_array().unwrap();
    let roots: Vec<&str> = manifests
        .iter()
        .filter_map(|m| m["annotations"]["vnd.pystore.root"].as_str())
        .collect();
    assert_eq!(
        roots,
        ["demo-t", "demo-t.provenance", "demo-t.sbom"],
        "{index}"
    );
    let catalog = manifests.last().unwrap();
    assert_eq!(
        catalog["artifactType"],
        "application/vnd.pystore.catalog.v1"
    );
    let (catalog, _) = registry.get_json(&format!(
        "manifests/{}",
        catalog["digest"].as_str().unwrap()
    ));
    let titles: Vec<&str> = catalog["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            l["annotations"]["org.opencontainers.image.title"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(
        titles,
        [
            "demo-1.0.0-t.zip",
            "demo-1.0.0-t.zip.cdx.json",
            "demo-1.0.0-t.zip.intoto.jsonl",
            "pystore-index.json"
        ]
    );
    let zip_root = &manifests[0];
    let (manifest, _) = registry.get_json(&format!(
        "manifests/{}",
        zip_root["digest"].as_str().unwrap()
    ));
    assert_eq!(manifest["artifactType"], "application/vnd.pystore.root.v1");
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.oci.empty.v1+json"
    );
    let zip_a = setup.realise(a.path())["zip"].as_str().unwrap().to_owned();
    let zip_closure = closure(a.path(), &zip_a);
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(
        layers.len(),
        2 * zip_closure.len(),
        "a description and an archive per entry"
    );
    for (id, name, _) in &zip_closure {
        let archive = layers
            .iter()
            .find(|l| l["annotations"]["org.opencontainers.image.title"] == format!("{id}.tar.zst"))
            .unwrap_or_else(|| panic!("no archive layer of {name}"));
        assert_eq!(
            archive["mediaType"],
            "application/vnd.pystore.archive.v1.tar+zstd"
        );
        assert_eq!(archive["annotations"]["vnd.pystore.entry.id"], id.as_str());
        assert_eq!(
            archive["annotations"]["vnd.pystore.entry.name"],
            name.as_str()
        );
        // The blob is what the archive's digest says.
        let mut data = Vec::new();
        fs::File::open(registry.blob_file(archive["digest"].as_str().unwrap()))
            .unwrap()
            .read_to_end(&mut data)
            .unwrap();
        assert_eq!(format!("sha256:{}", sha256_hex(&data)), archive["digest"]);
    }

    // A second push uploads nothing: no upload session, no manifest, no tag written.
    let (posts, puts) = (
        registry.requests("POST", "/blobs/uploads/"),
        registry.requests("PUT", "/"),
    );
    let second = ok_json(&mut push(&setup, a.path(), &remote));
    assert_eq!(second["uploaded"], serde_json::json!([]), "{second}");
    assert_eq!(registry.requests("POST", "/blobs/uploads/"), posts);
    assert_eq!(registry.requests("PUT", "/"), puts, "{}", registry.log());

    // Pull into an empty store: the same entries and ZIP.
    let b = TempStore::new();
    let pulled = ok_json(
        pystore(b.path())
            .args(["--json", "pull", &remote])
            .env("PYSTORE_TRUSTED_KEYS", &setup.public),
    );
    assert!(
        !pulled["downloaded"].as_array().unwrap().is_empty(),
        "{pulled}"
    );
    let zip_b = same_zip_in(b.path(), &zip_a);
    assert_eq!(fs::read(&zip_b).unwrap(), fs::read(&zip_a).unwrap());
    assert_eq!(closure(b.path(), zip_b.to_str().unwrap()), zip_closure);

    // The registry as a substituter: nothing is built.
    let c = TempStore::new();
    let out = run(online(&setup, c.path())
        .args(["--json", "realise"])
        .arg(&setup.recipe)
        .env("PYSTORE_SUBSTITUTERS", &remote)
        .env("PYSTORE_TRUSTED_KEYS", &setup.public)
        .env("PYSTORE_SIGNING_KEY", &setup.secret));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("substituted, 0 fetched, 0 built"),
        "{stderr}"
    );
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        fs::read(value[0]["zip"].as_str().unwrap()).unwrap(),
        fs::read(&zip_a).unwrap()
    );

    // An independent build agrees with what the registry publishes.
    let d = TempStore::new();
    let report = ok_json(
        setup
            .pystore(d.path())
            .args(["--json", "challenge", &remote])
            .arg(&setup.recipe)
            .arg("--sign-key")
            .arg(&setup.secret)
            .env("PYSTORE_TRUSTED_KEYS", &setup.public),
    );
    assert_eq!(report["differ"], 0, "{report}");
    assert_eq!(report["not_published"], 0, "{report}");
    assert!(report["same"].as_u64().unwrap() >= 5, "{report}");

    // Another tag of the same repository shares every blob: pushing it uploads none.
    let uploads = registry.blob_uploads();
    let other = ok_json(&mut push(&setup, a.path(), &registry.remote("v1.0.1")));
    assert_eq!(other["uploaded"], serde_json::json!([]), "{other}");
    assert_eq!(registry.blob_uploads(), uploads);
}

#[test]
fn a_tampered_blob_a_deleted_tag_and_a_registry_that_is_down() {
    let Some(mut registry) = Registry::start(None) else {
        return;
    };
    let setup = Setup::new();
    let remote = registry.remote("v1");
    let a = TempStore::new();
    ok_json(&mut push(&setup, a.path(), &remote));

    // Flip one byte of an entry archive in the registry's own storage.
    let (index, index_digest) = registry.get_json("manifests/v1");
    let root = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
    let (manifest, _) = registry.get_json(&format!("manifests/{root}"));
    let archive = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["mediaType"] == "application/vnd.pystore.archive.v1.tar+zstd")
        .max_by_key(|l| l["size"].as_u64().unwrap())
        .unwrap()
        .clone();
    let title = archive["annotations"]["org.opencontainers.image.title"]
        .as_str()
        .unwrap();
    let path = registry.blob_file(archive["digest"].as_str().unwrap());
    let mut file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let middle = archive["size"].as_u64().unwrap() / 2;
    let mut byte = [0u8];
    file.seek(SeekFrom::Start(middle)).unwrap();
    file.read_exact(&mut byte).unwrap();
    file.seek(SeekFrom::Start(middle)).unwrap();
    file.write_all(&[byte[0] ^ 0xff]).unwrap();
    drop(file);

    let b = TempStore::new();
    let stderr = run_fails(
        pystore(b.path())
            .args(["pull", &remote])
            .env("PYSTORE_TRUSTED_KEYS", &setup.public),
        1,
    );
    assert!(stderr.contains(title), "{stderr}");
    assert!(stderr.contains("nothing was registered"), "{stderr}");
    let (entries, _) = entries_and_tmp(b.path());
    assert!(entries.is_empty(), "registered: {entries:?}");

    // The tag deleted: pull says there is nothing, a substituter is skipped.
    let response = reqwest::blocking::Client::new()
        .delete(registry.url(&format!("manifests/{index_digest}")))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let stderr = run_fails(
        pystore(b.path())
            .args(["pull", &remote])
            .env("PYSTORE_TRUSTED_KEYS", &setup.public),
        1,
    );
    assert!(
        stderr.contains(&format!("{remote} has no pystore-index.json")),
        "{stderr}"
    );

    // The registry down: skipped with a warning, the recipe built all the same.
    let deleted_tag = remote.clone();
    let down = registry.remote("v1");
    let _ = registry.child.kill();
    let _ = registry.child.wait();
    let c = TempStore::new();
    let out = run(online(&setup, c.path())
        .args(["--json", "realise"])
        .arg(&setup.recipe)
        .env("PYSTORE_SUBSTITUTERS", format!("{down} {deleted_tag}"))
        .env("PYSTORE_HTTP_RETRIES", "1")
        .env("PYSTORE_HTTP_BACKOFF_MS", "10")
        .env("PYSTORE_TRUSTED_KEYS", &setup.public)
        .env("PYSTORE_SIGNING_KEY", &setup.secret));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("not substituting from {down}")),
        "{stderr}"
    );
    assert!(stderr.contains("gave up after 2 attempts"), "{stderr}");
    assert!(stderr.contains("0 substituted"), "{stderr}");
}

#[test]
fn auth_required_names_the_host_and_where_credentials_come_from() {
    const USER: &str = "ci";
    const PASSWORD: &str = "pw-Very-Secret-42";
    let Some(registry) = Registry::start(Some((USER, PASSWORD))) else {
        return;
    };
    let setup = Setup::new();
    let home = setup.work.path().join("home");
    fs::create_dir_all(home.join(".docker")).unwrap();
    let remote = registry.remote("v1");
    let a = TempStore::new();

    // No credentials anywhere.
    let stderr = run_fails(push(&setup, a.path(), &remote).env("HOME", &home), 1);
    assert!(
        stderr.contains(&format!("{} requires credentials", registry.host())),
        "{stderr}"
    );
    assert!(
        stderr.contains("PYSTORE_OCI_USERNAME/PYSTORE_OCI_PASSWORD"),
        "{stderr}"
    );
    assert!(stderr.contains(".docker/config.json"), "{stderr}");

    // Wrong ones from the environment: refused, named, never shown.
    let stderr = run_fails(
        push(&setup, a.path(), &remote)
            .env("HOME", &home)
            .env("PYSTORE_OCI_USERNAME", USER)
            .env("PYSTORE_OCI_PASSWORD", "wrong-Secret-99"),
        1,
    );
    assert!(
        stderr.contains(&format!(
            "{} refused the credentials from PYSTORE_OCI_USERNAME/PYSTORE_OCI_PASSWORD",
            registry.host()
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("wrong-Secret-99"), "{stderr}");
    assert_eq!(registry.blob_uploads(), 0);

    // Right ones from ~/.docker/config.json's `auths`.
    let auth = base64_encode(format!("{USER}:{PASSWORD}").as_bytes());
    fs::write(
        home.join(".docker/config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#,
            registry.host()
        ),
    )
    .unwrap();
    let out = run(push(&setup, a.path(), &remote).env("HOME", &home));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(!stdout.contains(PASSWORD) && !stderr.contains(PASSWORD));
    assert!(registry.blob_uploads() > 3);

    // Pull with a credential helper named in `credHelpers`.
    let bin_dir = setup.work.path().join("helpers");
    fs::create_dir_all(&bin_dir).unwrap();
    let helper = bin_dir.join("docker-credential-pystoretest");
    fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread host\n[ \"$1\" = get ] && [ \"$host\" = {} ] || exit 1\necho '{{\"ServerURL\":\"'$host'\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}'\n",
            registry.host()
        ),
    )
    .unwrap();
    fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    fs::write(
        home.join(".docker/config.json"),
        format!(
            r#"{{"credHelpers":{{"{}":"pystoretest"}}}}"#,
            registry.host()
        ),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let b = TempStore::new();
    let out = run(pystore(b.path())
        .args(["--json", "pull", &remote])
        .env("HOME", &home)
        .env("PATH", &path)
        .env("PYSTORE_TRUSTED_KEYS", &setup.public));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(!stdout.contains(PASSWORD) && !stderr.contains(PASSWORD));
    let zip_a = setup.realise(a.path())["zip"].as_str().unwrap().to_owned();
    assert_eq!(
        fs::read(same_zip_in(b.path(), &zip_a)).unwrap(),
        fs::read(&zip_a).unwrap()
    );
    // The password is in no store file.
    let grep = Command::new("grep")
        .args(["-r", "-l", "-a", "-F", PASSWORD])
        .arg(a.path())
        .arg(b.path())
        .output()
        .unwrap();
    assert!(
        grep.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&grep.stdout)
    );
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// What the auth proxy saw and did.
#[derive(Default)]
struct ProxyState {
    patches: usize,
    tokens_issued: usize,
}

/// Forwards `request` to the registry at `registry` (`http://HOST:PORT`), rewriting `Location`
/// to `public` (the proxy's own base URL).
fn forward(
    client: &reqwest::blocking::Client,
    registry: &str,
    public: &str,
    request: &crate::common::http::Request,
) -> crate::common::http::Response {
    let method = reqwest::Method::from_bytes(request.method.as_bytes()).unwrap();
    let mut outgoing = client.request(method, format!("{registry}{}", request.path));
    for name in ["content-type", "content-range", "accept"] {
        if let Some(value) = request.header(name) {
            outgoing = outgoing.header(name, value);
        }
    }
    let response = outgoing.body(request.body.clone()).send().unwrap();
    let mut answer = crate::common::http::Response {
        status: response.status().as_u16(),
        ..Default::default()
    };
    for name in [
        "location",
        "docker-content-digest",
        "range",
        "content-type",
        "docker-upload-uuid",
    ] {
        if let Some(value) = response.headers().get(name) {
            let value = value.to_str().unwrap().replace(registry, public);
            answer.headers.push((name.to_owned(), value));
        }
    }
    answer.body = response.bytes().unwrap().to_vec();
    answer
}

#[test]
fn bearer_tokens_resumed_chunks_and_redirected_downloads_through_a_proxy() {
    use crate::common::http::{Response, Server};
    use std::sync::{Arc, Mutex, OnceLock};
    const USER: &str = "ci";
    const PASSWORD: &str = "pw-for-the-token-service";
    const TOKEN: &str = "tok-0123456789-bearer-secret";
    let Some(registry) = Registry::start(None) else {
        return;
    };
    let setup = Setup::new();
    let upstream = format!("http://{}", registry.host());
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // The "storage host" blob downloads are redirected to: another origin, no auth.
    let cdn = {
        let (client, upstream) = (client.clone(), upstream.clone());
        Server::start(move |req| forward(&client, &upstream, &upstream, req))
    };
    let cdn_base = cdn.url("");

    // The registry's front: Bearer tokens from /token (for the Basic login), blob downloads
    // redirected to the cdn, the 2nd chunk dropped with a 503 (resumed from the session's
    // Range), the 4th stored but answered 502 (the session is then unusable: restarted).
    let state = Arc::new(Mutex::new(ProxyState::default()));
    let public: Arc<OnceLock<String>> = Arc::new(OnceLock::new());
    let proxy = {
        let (client, upstream, state, public) = (
            client.clone(),
            upstream.clone(),
            state.clone(),
            public.clone(),
        );
        Server::start(move |req| {
            let public = public.get().unwrap();
            if req.route() == "/token" {
                let expected = format!(
                    "Basic {}",
                    base64_encode(format!("{USER}:{PASSWORD}").as_bytes())
                );
                if req.header("authorization") != Some(expected.as_str()) {
                    return Response::status(401);
                }
                assert_eq!(req.query("service").as_deref(), Some("pystore-test"));
                state.lock().unwrap().tokens_issued += 1;
                return Response::ok(format!(r#"{{"token":"{TOKEN}","expires_in":300}}"#));
            }
            if req.header("authorization") != Some(&format!("Bearer {TOKEN}")) {
                return Response::status(401).header(
                    "WWW-Authenticate",
                    &format!(
                        r#"Bearer realm="{public}/token",service="pystore-test",scope="repository:{REPO}:pull,push""#
                    ),
                );
            }
            if req.method == "GET" && req.route().contains("/blobs/sha256:") {
                return Response::status(307)
                    .header("Location", &format!("{cdn_base}{}", req.path));
            }
            if req.method == "PATCH" {
                let n = {
                    let mut state = state.lock().unwrap();
                    state.patches += 1;
                    state.patches
                };
                if n == 2 {
                    return Response::status(503);
                }
                if n == 4 {
                    forward(&client, &upstream, public, req);
                    return Response::status(502);
                }
            }
            forward(&client, &upstream, public, req)
        })
    };
    public.set(proxy.url("")).unwrap();
    let remote = format!("oci://127.0.0.1:{}/{REPO}:v1", proxy.port());

    let a = TempStore::new();
    let out = run(push(&setup, a.path(), &remote)
        .env("PYSTORE_OCI_CHUNK_SIZE", "262144")
        .env("PYSTORE_HTTP_RETRIES", "3")
        .env("PYSTORE_OCI_USERNAME", USER)
        .env("PYSTORE_OCI_PASSWORD", PASSWORD)
        .env("RUST_LOG", "info"));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    for secret in [TOKEN, PASSWORD] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{secret} leaked:\n{stderr}"
        );
    }
    assert!(
        stderr.contains("resuming the upload of sha256:"),
        "{stderr}"
    );
    assert!(
        stderr.contains("restarting the upload of sha256:"),
        "{stderr}"
    );
    {
        let state = state.lock().unwrap();
        assert!(state.patches > 4, "chunked uploads: {}", state.patches);
        assert!(state.tokens_issued >= 1);
    }

    // Pull through the proxy: downloads go to the cdn, which never sees a credential.
    let b = TempStore::new();
    let out = run(pystore(b.path())
        .args(["--json", "pull", &remote])
        .env("PYSTORE_OCI_USERNAME", USER)
        .env("PYSTORE_OCI_PASSWORD", PASSWORD)
        .env("PYSTORE_TRUSTED_KEYS", &setup.public));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let zip_a = setup.realise(a.path())["zip"].as_str().unwrap().to_owned();
    assert_eq!(
        fs::read(same_zip_in(b.path(), &zip_a)).unwrap(),
        fs::read(&zip_a).unwrap()
    );
    let downloads = cdn.requests();
    assert!(downloads.len() > 3, "downloads went to the cdn");
    for request in &downloads {
        assert_eq!(request.header("authorization"), None, "{request:?}");
        assert!(!request.path.contains(TOKEN) && !request.path.contains(PASSWORD));
    }
    // Wrong password: the token service refuses, and the message says whose credentials.
    let c = TempStore::new();
    let stderr = run_fails(
        pystore(c.path())
            .args(["pull", &remote])
            .env("PYSTORE_OCI_USERNAME", USER)
            .env("PYSTORE_OCI_PASSWORD", "not-the-password")
            .env("PYSTORE_TRUSTED_KEYS", &setup.public),
        1,
    );
    assert!(
        stderr.contains("refused the credentials from PYSTORE_OCI_USERNAME/PYSTORE_OCI_PASSWORD at its token service"),
        "{stderr}"
    );
    assert!(!stderr.contains("not-the-password"));
}

#[test]
fn a_root_pushed_again_under_its_name_keeps_the_entries_the_index_still_lists() {
    let Some(registry) = Registry::start(None) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let a = TempStore::new();
    let remote = registry.remote("v1");
    // Two entries of the same name ("data"), hence the same root name.
    let mut paths = Vec::new();
    for (i, text) in ["first", "second"].iter().enumerate() {
        let dir = work.path().join(i.to_string()).join("data");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("file.txt"), text).unwrap();
        let path = add(a.path(), &dir);
        run_ok(pystore(a.path()).args(["push", "--to", &remote]).arg(&path));
        paths.push(path);
    }
    let (index, _) = registry.get_json("manifests/v1");
    let roots: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["annotations"]["vnd.pystore.root"].as_str())
        .collect();
    assert_eq!(roots, ["data"], "{index}");
    // The first entry is no root any more, but still listed by the closure index: pullable.
    for path in &paths {
        let b = TempStore::new();
        let id_name = path.file_name().unwrap().to_str().unwrap();
        run_ok(pystore(b.path()).args(["pull", "--no-require-sigs", &remote, id_name]));
        assert!(b.path().join("entries").join(id_name).exists(), "{id_name}");
    }
}
