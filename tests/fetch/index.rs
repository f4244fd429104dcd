//! The package index client against a loopback index serving both API forms.

use std::collections::BTreeMap;
use std::fs;

use crate::common::http::{Response, Server};
use crate::common::*;
use pystore::fetch::credentials::Credentials;
use pystore::fetch::http::{HttpClient, HttpConfig};
use pystore::fetch::index::{CoreMetadata, IndexClient};
use reqwest::Url;

const WHEEL: &[u8] = b"not really a wheel, but bytes with a hash";
const METADATA: &[u8] =
    b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\nRequires-Dist: other>=2\n";

fn json_page() -> String {
    format!(
        r#"{{"meta":{{"api-version":"1.1"}},"name":"demo","files":[
        {{"filename":"demo-1.0-py3-none-any.whl","url":"/files/demo-1.0-py3-none-any.whl","hashes":{{"sha256":"{w}"}},
          "requires-python":">=3.8","core-metadata":{{"sha256":"{m}"}}}},
        {{"filename":"demo-0.9-py3-none-any.whl","url":"/files/demo-0.9-py3-none-any.whl","hashes":{{"sha256":"{w}"}},
          "yanked":"broken build"}}]}}"#,
        w = sha256_hex(WHEEL),
        m = sha256_hex(METADATA),
    )
}

fn html_page() -> String {
    format!(
        r#"<!DOCTYPE html><html><head><title>Links for demo</title></head><body><h1>Links for demo</h1>
        <a href="/files/demo-1.0-py3-none-any.whl#sha256={w}" data-requires-python="&gt;=3.8" data-core-metadata="sha256={m}">demo-1.0-py3-none-any.whl</a><br/>
        <a href="/files/demo-0.9-py3-none-any.whl#sha256={w}" data-yanked="broken build">demo-0.9-py3-none-any.whl</a><br/>
        </body></html>"#,
        w = sha256_hex(WHEEL),
        m = sha256_hex(METADATA)
    )
}

/// /json/simple/ answers JSON, /html/simple/ answers HTML, /files/ serves the files.
fn index_server() -> Server {
    Server::start(|req| match req.path.as_str() {
        "/json/simple/demo/" => {
            Response::ok(json_page()).header("Content-Type", "application/vnd.pypi.simple.v1+json")
        }
        "/html/simple/demo/" => {
            Response::ok(html_page()).header("Content-Type", "text/html; charset=utf-8")
        }
        "/files/demo-1.0-py3-none-any.whl" | "/files/demo-0.9-py3-none-any.whl" => {
            Response::ok(WHEEL.to_vec())
        }
        "/files/demo-1.0-py3-none-any.whl.metadata" => Response::ok(METADATA.to_vec()),
        _ => Response::status(404),
    })
}

#[test]
fn json_and_html_forms_read_identically() {
    let server = index_server();
    let store = TempStore::new();
    let mut listings = Vec::new();
    for form in ["json", "html"] {
        let index = server.url(&format!("/{form}/simple/"));
        let mut value = json(
            pystore(store.path())
                .args(["index", "Demo"])
                .env("PYSTORE_INDEX_URL", &index),
        );
        // The document names the index asked and why; the files are the same from both forms.
        assert_eq!(value["index"]["url"], index.as_str());
        assert_eq!(value["index"]["origin"], "PYSTORE_INDEX_URL");
        value.as_object_mut().unwrap().remove("index");
        listings.push(value);
    }
    assert_eq!(listings[0], listings[1]);
    let files = listings[0]["files"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(files[0]["filename"], "demo-1.0-py3-none-any.whl");
    assert_eq!(files[0]["requires_python"], ">=3.8");
    assert_eq!(files[0]["core_metadata"], true);
    assert_eq!(files[0]["hashes"]["sha256"], sha256_hex(WHEEL));
    assert_eq!(files[1]["yanked"], "broken build");
    // Content negotiation: JSON preferred, HTML accepted.
    let accept = server.requests()[0].headers["accept"].clone();
    assert!(
        accept.starts_with("application/vnd.pypi.simple.v1+json"),
        "{accept}"
    );
    assert!(accept.contains("text/html"), "{accept}");
    // The text form names yanked files and metadata.
    let text = run_ok(
        pystore(store.path())
            .args(["index", "demo"])
            .env("PIP_INDEX_URL", server.url("/html/simple")),
    );
    assert_eq!(
        text,
        format!(
            "demo-1.0-py3-none-any.whl  sha256={w}  requires-python >=3.8  +metadata\ndemo-0.9-py3-none-any.whl  sha256={w}  yanked (broken build)\n",
            w = sha256_hex(WHEEL)
        )
    );
}

#[test]
fn yanked_files_are_skipped_unless_pinned_and_pep658_metadata_is_used() {
    let server = index_server();
    for form in ["json", "html"] {
        let http = HttpClient::new(HttpConfig::default(), Credentials::default()).unwrap();
        let index = Url::parse(&server.url(&format!("/{form}/simple/"))).unwrap();
        let client = IndexClient::new(&http, vec![index]).unwrap();
        let page = client.project("DEMO").unwrap();
        let usable: Vec<&str> = page.usable(false).map(|f| f.filename.as_str()).collect();
        assert_eq!(usable, ["demo-1.0-py3-none-any.whl"], "{form}");
        assert_eq!(
            page.usable(true).count(),
            2,
            "a pin may use the yanked file"
        );
        let file = &page.files[0];
        assert_eq!(
            file.core_metadata,
            CoreMetadata::Present {
                hashes: BTreeMap::from([("sha256".into(), sha256_hex(METADATA))])
            }
        );
        assert_eq!(
            client.core_metadata(file).unwrap().as_deref(),
            Some(METADATA)
        );
        assert_eq!(
            client.core_metadata(&page.files[1]).unwrap(),
            None,
            "not offered for 0.9"
        );
    }
    assert_eq!(server.count("/files/demo-1.0-py3-none-any.whl.metadata"), 2);
    assert_eq!(
        server.count("/files/demo-1.0-py3-none-any.whl"),
        0,
        "metadata without downloading the wheel"
    );
}

#[test]
fn metadata_with_the_wrong_hash_is_refused() {
    let server = Server::start(|req| match req.path.as_str() {
        "/simple/demo/" => {
            Response::ok(json_page()).header("Content-Type", "application/vnd.pypi.simple.v1+json")
        }
        "/files/demo-1.0-py3-none-any.whl.metadata" => Response::ok(b"tampered".to_vec()),
        _ => Response::status(404),
    });
    let http = HttpClient::new(HttpConfig::default(), Credentials::default()).unwrap();
    let client =
        IndexClient::new(&http, vec![Url::parse(&server.url("/simple/")).unwrap()]).unwrap();
    let page = client.project("demo").unwrap();
    let err = client
        .core_metadata(&page.files[0])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("hash mismatch for demo-1.0-py3-none-any.whl.metadata"),
        "{err}"
    );
    assert!(
        err.contains(&sha256_hex(METADATA)) && err.contains(&sha256_hex(b"tampered")),
        "{err}"
    );
}

#[test]
fn index_configuration_precedence_and_missing_index() {
    let good = index_server();
    let store = TempStore::new();
    let bad = "http://127.0.0.1:9/simple/";
    let conf = tempfile::tempdir().unwrap();
    let pip_conf = conf.path().join("pip.conf");
    fs::write(
        &pip_conf,
        format!("[global]\nindex-url = {}\n", good.url("/json/simple/")),
    )
    .unwrap();

    // pip.conf alone is enough.
    run_ok(
        pystore(store.path())
            .args(["index", "demo"])
            .env("PIP_CONFIG_FILE", &pip_conf),
    );
    // PIP_INDEX_URL beats pip.conf; PYSTORE_INDEX_URL beats both; --index-url beats everything.
    let fails =
        |cmd: &mut std::process::Command| run_fails(cmd.env("PYSTORE_HTTP_RETRIES", "0"), 1);
    fails(
        pystore(store.path())
            .args(["index", "demo"])
            .env("PIP_CONFIG_FILE", &pip_conf)
            .env("PIP_INDEX_URL", bad),
    );
    run_ok(
        pystore(store.path())
            .args(["index", "demo"])
            .env("PIP_INDEX_URL", bad)
            .env("PYSTORE_INDEX_URL", good.url("/html/simple/")),
    );
    run_ok(
        pystore(store.path())
            .args(["index", "demo", "--index-url"])
            .arg(good.url("/json/simple/"))
            .env("PYSTORE_INDEX_URL", bad),
    );
    // An extra index is consulted when the primary lacks the project.
    run_ok(
        pystore(store.path())
            .args(["index", "demo", "--extra-index-url"])
            .arg(good.url("/json/simple/"))
            .env("PYSTORE_INDEX_URL", good.url("/empty/simple/")),
    );
    // Nothing configured and no pip to ask: say exactly what to set.
    let err = run_fails(
        pystore(store.path())
            .args(["index", "demo"])
            .env("PYSTORE_PIP_PYTHON", "/nonexistent/python3"),
        1,
    );
    assert!(
        err.contains("no package index is configured and no pip was found to ask for its own: set PYSTORE_INDEX_URL"),
        "{err}"
    );
    // A project no index has.
    let err = run_fails(
        pystore(store.path())
            .args(["index", "nope"])
            .env("PYSTORE_INDEX_URL", good.url("/json/simple/")),
        1,
    );
    assert!(
        err.contains("no index has a project named \"nope\""),
        "{err}"
    );
}

/// A Python whose pip reads `pip.conf` from a place pystore's own pip.conf reader does not know
/// (a virtual environment's site file, found through `sys.prefix`, with `VIRTUAL_ENV` unset),
/// with pip itself borrowed from the machine's python3. `None` when python3 has no pip.
fn python_with_site_pip_conf(dir: &std::path::Path, index: &str) -> Option<std::path::PathBuf> {
    let venv = dir.join("venv");
    let made = std::process::Command::new("python3")
        .args(["-m", "venv", "--without-pip", "--system-site-packages"])
        .arg(&venv)
        .status()
        .ok()?;
    let python = venv.join("bin/python");
    let has_pip = std::process::Command::new(&python)
        .args(["-c", "import pip"])
        .status()
        .ok()?;
    if !made.success() || !has_pip.success() {
        return None;
    }
    fs::write(
        venv.join("pip.conf"),
        format!("[global]\nindex-url = {index}\n"),
    )
    .unwrap();
    Some(python)
}

#[test]
fn with_no_index_configured_the_index_the_machines_pip_uses_is_taken_and_named() {
    let good = index_server();
    let store = TempStore::new();
    let work = tempfile::tempdir().unwrap();
    let index = good.url("/json/simple/");
    let Some(python) = python_with_site_pip_conf(work.path(), &index) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have python3 with pip"
        );
        eprintln!("SKIPPED: python3 has no pip, so there is no pip to ask");
        return;
    };
    let home = work.path().join("home");
    fs::create_dir(&home).unwrap();
    let asked = |cmd: &mut std::process::Command| {
        cmd.env_remove("PIP_CONFIG_FILE")
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_CONFIG_DIRS", &home)
            .env("PYSTORE_PIP_PYTHON", &python);
    };

    // The index comes from pip's own configuration, and one notice line says so.
    let mut cmd = pystore(store.path());
    cmd.args(["index", "demo"]);
    asked(&mut cmd);
    let out = run(&mut cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("demo-1.0-py3-none-any.whl"),
        "{out:?}"
    );
    let notices: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("notice:"))
        .collect();
    assert_eq!(notices.len(), 1, "{stderr}");
    assert!(
        notices[0].contains(&format!("using the index pip uses, {index}"))
            && notices[0].contains("'s configuration (global.index-url)")
            && notices[0].contains("set PYSTORE_INDEX_URL to choose another"),
        "{stderr}"
    );

    // `--json` names the choice in the document and prints no notice.
    let mut cmd = pystore(store.path());
    cmd.args(["index", "demo"]);
    asked(&mut cmd);
    let doc = json(&mut cmd);
    assert_eq!(doc["index"]["url"], index.as_str());
    assert!(
        doc["index"]["origin"]
            .as_str()
            .unwrap()
            .ends_with("'s configuration (global.index-url)"),
        "{doc}"
    );

    // A configured index wins, and pip is not asked (a python that would fail is never run).
    let mut cmd = pystore(store.path());
    cmd.args(["index", "demo"]).env("PYSTORE_INDEX_URL", &index);
    asked(&mut cmd);
    cmd.env("PYSTORE_PIP_PYTHON", "/nonexistent/python3");
    let out = run(&mut cmd);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("index: {index} (PYSTORE_INDEX_URL)"))
            && !stderr.contains("notice:"),
        "{stderr}"
    );
}
