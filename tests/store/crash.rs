//! A process killed with SIGKILL at each point of registration leaves a store that opens cleanly,
//! verifies, holds no partial entry, and lets a retry succeed.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use crate::common::*;

/// Starts `pystore add TREE` with a failpoint and waits until it reports reaching it.
fn add_until_failpoint(
    store: &std::path::Path,
    tree: &std::path::Path,
    failpoint: &str,
) -> std::process::Child {
    let point = failpoint.split(':').next().unwrap();
    let mut child = pystore(store)
        .arg("add")
        .arg(tree)
        .env("PYSTORE_FAILPOINT", failpoint)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), format!("pystore: failpoint {point} reached"));
    child
}

fn kill_at(point: &str) {
    let store = TempStore::new();
    let src = tempfile::tempdir().unwrap();
    let tree = src.path().join("victim");
    make_tree(&tree, 60);

    let mut child = add_until_failpoint(store.path(), &tree, point);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let (entries, tmp) = entries_and_tmp(store.path());
    assert_eq!(tmp.len(), 1, "the killed build left its directory: {tmp:?}");
    let committed = point == "after-commit";
    if point == "after-rename" || committed {
        assert_eq!(
            entries.len(),
            1,
            "the entry was renamed into place: {entries:?}"
        );
    }

    // Opening the store (any command) cleans up; verify passes.
    let verify = json(pystore(store.path()).arg("verify"));
    assert_eq!(verify["ok"], true, "{verify}");
    assert_eq!(verify["checked"], if committed { 1 } else { 0 }, "{verify}");
    assert_eq!(verify["unregistered"], serde_json::json!([]), "{verify}");
    let (entries, tmp) = entries_and_tmp(store.path());
    assert!(tmp.is_empty(), "tmp/ cleaned: {tmp:?}");
    assert_eq!(
        entries.len(),
        usize::from(committed),
        "no partial entry: {entries:?}"
    );

    // A retry succeeds and gives the entry a clean store gives.
    let retry = json(pystore(store.path()).arg("add").arg(&tree));
    assert_eq!(retry[0]["built"], !committed);
    let clean = TempStore::new();
    let expected = json(pystore(clean.path()).arg("add").arg(&tree));
    assert_eq!(retry[0]["id"], expected[0]["id"]);
    assert_eq!(retry[0]["content_hash"], expected[0]["content_hash"]);
    assert_eq!(json(pystore(store.path()).arg("verify"))["ok"], true);
}

#[test]
fn killed_mid_copy() {
    kill_at("mid-copy");
}

#[test]
fn killed_before_rename() {
    kill_at("before-rename");
}

#[test]
fn killed_after_rename_before_commit() {
    kill_at("after-rename");
}

#[test]
fn killed_after_commit() {
    kill_at("after-commit");
}

#[test]
fn a_live_build_is_not_cleaned_up_by_another_process() {
    let store = TempStore::new();
    let src = tempfile::tempdir().unwrap();
    let tree = src.path().join("slow");
    make_tree(&tree, 20);
    let child = add_until_failpoint(store.path(), &tree, "after-rename:sleep=1500");
    // Another process opens the store while the build is between rename and commit.
    run_ok(pystore(store.path()).args(["root", "list"]));
    let (entries, tmp) = entries_and_tmp(store.path());
    assert_eq!(
        (entries.len(), tmp.len()),
        (1, 1),
        "the live build was left alone"
    );
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let verify = json(pystore(store.path()).arg("verify"));
    assert_eq!(
        (verify["checked"].as_u64(), verify["ok"].as_bool()),
        (Some(1), Some(true))
    );
}
