//! The package index client against a loopback index serving both API forms.

mod common;

use std::collections::BTreeMap;
use std::fs;

use common::http::{Response, Server};
use common::*;
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
        let value = json(
            pystore(store.path())
                .args(["index", "Demo"])
                .env("PYSTORE_INDEX_URL", server.url(&format!("/{form}/simple/"))),
        );
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
    // Nothing configured: say exactly what to set.
    let err = run_fails(pystore(store.path()).args(["index", "demo"]), 1);
    assert!(
        err.contains("no package index is configured: set PYSTORE_INDEX_URL"),
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
