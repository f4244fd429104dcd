//! `pystore challenge`: a recipe built here compared, entry by entry, with what a remote
//! publishes: the same bytes, bytes that differ (a publisher whose builds were not
//! reproducible), and entries the remote does not have.

use std::path::Path;

use crate::common::*;
use crate::remote_fixtures::Setup;

fn file_url(dir: &Path) -> String {
    format!("file://{}", dir.display())
}

/// `pystore push` from `store` into the directory remote `remote`, signed with the CI key.
fn publish(setup: &Setup, store: &Path, remote: &Path, failpoint: Option<&str>) {
    let mut cmd = setup.pystore(store);
    cmd.args(["push"])
        .arg(&setup.recipe)
        .arg("--to")
        .arg(file_url(remote))
        .env("PYSTORE_SIGNING_KEY", &setup.secret);
    if let Some(failpoint) = failpoint {
        cmd.env("PYSTORE_FAILPOINT", failpoint);
    }
    run_ok(&mut cmd);
}

fn challenge(setup: &Setup, store: &Path, remote: &Path) -> std::process::Command {
    let mut cmd = setup.pystore(store);
    cmd.args(["challenge"])
        .arg(file_url(remote))
        .arg(&setup.recipe)
        .arg("--sign-key")
        .arg(&setup.secret)
        .env("PYSTORE_TRUSTED_KEYS", &setup.public);
    cmd
}

/// The derived entries of the closure of the recipe's ZIP, provenance and SBOM in `store`.
fn derived_entries(store: &Path, setup: &Setup) -> usize {
    let target = setup.realise(store);
    let mut names = std::collections::BTreeSet::new();
    for key in ["zip", "provenance", "sbom"] {
        let value =
            json(pystore(store).args(["path-info", "--closure", target[key].as_str().unwrap()]));
        for entry in value.as_array().unwrap() {
            if entry["kind"] == "derived" {
                names.insert(entry["id"].as_str().unwrap().to_owned());
            }
        }
    }
    names.len()
}

#[test]
fn an_independent_build_agrees_with_a_reproducible_publisher() {
    let setup = Setup::new();
    let publisher = TempStore::new();
    let remote = setup.work.path().join("cache");
    publish(&setup, publisher.path(), &remote, None);

    let here = TempStore::new();
    let report = json(&mut challenge(&setup, here.path(), &remote));
    let derived = derived_entries(here.path(), &setup);
    assert!(derived >= 5, "{report}");
    assert_eq!(report["same"], derived, "{report}");
    assert_eq!(report["differ"], 0, "{report}");
    assert_eq!(report["not_published"], 0, "{report}");
    // Each entry was built here, not pulled: the challenge realises without substituters.
    assert!(report["entries"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["path"]
            .as_str()
            .unwrap()
            .starts_with(here.path().to_str().unwrap())));
}

#[test]
fn a_publisher_whose_builds_differ_is_named_file_by_file_and_exits_1() {
    let setup = Setup::new();
    let publisher = TempStore::new();
    let remote = setup.work.path().join("cache");
    // The publisher's builder writes the time into every directory it builds.
    publish(
        &setup,
        publisher.path(),
        &remote,
        Some("nondeterministic-output"),
    );

    let here = TempStore::new();
    let out = run(&mut challenge(&setup, here.path(), &remote));
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("DIFFERS"), "{text}");
    assert!(
        text.contains("only in the published entry") && text.contains("pystore-failpoint-time-"),
        "{text}"
    );
    let out = run(challenge(&setup, here.path(), &remote).arg("--json"));
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let differing: Vec<&serde_json::Value> = report["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["verdict"] == "differs")
        .collect();
    assert!(!differing.is_empty(), "{report}");
    // The bundle's directory differs by the seam's file; the ZIP made from it differs as a whole.
    let bundle = differing
        .iter()
        .find(|e| e["name"] == "demo-1.0.0-t")
        .unwrap_or_else(|| panic!("the bundle differs: {report}"));
    let paths: Vec<&str> = bundle["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    assert!(
        paths
            .iter()
            .any(|p| p.starts_with("pystore-failpoint-time-")),
        "{paths:?}"
    );
    assert!(bundle["differences"][0]["local"].is_null(), "{bundle}");
    assert_ne!(bundle["published_content_hash"], bundle["content_hash"]);
    assert!(
        differing.iter().any(|e| e["name"] == "demo-1.0.0-t.zip"),
        "{report}"
    );
    // Nothing of the publisher's was registered here.
    run_ok(pystore(here.path()).arg("verify"));
    // and the local bundle is this machine's own build, without the publisher's files.
    let local = std::fs::read_dir(bundle["path"].as_str().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect::<Vec<_>>();
    assert!(
        local.contains(&"pystore-manifest.json".to_owned()),
        "{local:?}"
    );
    assert!(
        !local.iter().any(|n| n.starts_with("pystore-failpoint")),
        "{local:?}"
    );
}

#[test]
fn entries_a_remote_does_not_publish_are_listed_not_failed() {
    let setup = Setup::new();
    let empty = setup.work.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let here = TempStore::new();
    let report = json(&mut challenge(&setup, here.path(), &empty));
    assert_eq!(report["same"], 0, "{report}");
    assert_eq!(report["differ"], 0, "{report}");
    assert!(report["not_published"].as_u64().unwrap() >= 5, "{report}");
    // Signatures are checked as for a pull: an untrusted publisher is refused outright.
    let publisher = TempStore::new();
    let remote = setup.work.path().join("cache");
    publish(&setup, publisher.path(), &remote, None);
    let err = run_fails(
        challenge(&setup, here.path(), &remote).env("PYSTORE_TRUSTED_KEYS", &setup.rogue_public),
        1,
    );
    assert!(err.contains("entry.json"), "{err}");
}
