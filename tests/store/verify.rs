//! `pystore verify`: exit 0 on an intact store; exit 1 naming each damaged entry and file.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::common::*;

fn store_with_two_entries() -> (TempStore, PathBuf, PathBuf) {
    let store = TempStore::new();
    let src = tempfile::tempdir().unwrap();
    make_sample_tree(&src.path().join("sample"));
    make_tree(&src.path().join("other"), 30);
    let sample = add(store.path(), &src.path().join("sample"));
    let other = add(store.path(), &src.path().join("other"));
    (store, sample, other)
}

fn writable(path: &Path) {
    fs::set_permissions(path, fs::Permissions::from_mode(0o644)).unwrap();
}

#[test]
fn an_untouched_store_verifies() {
    let (store, _, _) = store_with_two_entries();
    let out = run(pystore(store.path()).arg("verify"));
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("verified 2 entries"));
}

#[test]
fn one_flipped_byte_is_named_by_entry_and_file() {
    let (store, sample, other) = store_with_two_entries();
    let file = other.join("d3/f13.bin");
    writable(&file);
    let mut bytes = fs::read(&file).unwrap();
    bytes[100] ^= 1;
    fs::write(&file, &bytes).unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o444)).unwrap();

    let out = run(pystore(store.path()).arg("verify"));
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert_eq!(lines[0], format!("damaged: {}", other.display()));
    assert!(
        lines[1].starts_with("  d3/f13.bin: content: expected blake3 "),
        "{stdout}"
    );
    assert!(
        !stdout.contains(sample.to_str().unwrap()),
        "the intact entry is not named"
    );

    // The same through --json, and verifying only the intact entry passes.
    let report = serde_json::from_slice::<serde_json::Value>(
        &run(pystore(store.path()).args(["--json", "verify"])).stdout,
    )
    .unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["damaged"][0]["problems"][0]["file"], "d3/f13.bin");
    assert_eq!(report["damaged"][0]["problems"][0]["problem"], "content");
    run_ok(pystore(store.path()).arg("verify").arg(&sample));
    run_fails(pystore(store.path()).arg("verify").arg(&other), 1);
}

#[test]
fn missing_added_retyped_and_writable_files_are_all_reported() {
    let (store, sample, _) = store_with_two_entries();
    fs::set_permissions(&sample, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(sample.join("bin"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::remove_file(sample.join("a.txt")).unwrap();
    fs::write(sample.join("intruder"), b"x").unwrap();
    fs::remove_file(sample.join("bin/link")).unwrap();
    fs::write(sample.join("bin/link"), b"../a.txt").unwrap();
    fs::set_permissions(sample.join("bin/run"), fs::Permissions::from_mode(0o444)).unwrap();

    let report = json_any(
        pystore(store.path())
            .args(["--json", "verify"])
            .arg(&sample),
    );
    let problems: Vec<(String, String)> = report["damaged"][0]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["file"].as_str().unwrap().to_owned(),
                p["problem"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        (".", "mode"),
        ("a.txt", "missing"),
        ("bin", "mode"),
        ("bin/link", "type"),
        ("bin/run", "executable"),
        ("bin/link", "mode"),
        ("intruder", "unexpected"),
        ("intruder", "mode"),
    ];
    for (file, problem) in expected {
        assert!(
            problems.contains(&(file.to_owned(), problem.to_owned())),
            "{file}: {problem} missing from {problems:?}"
        );
    }
}

#[test]
fn a_deleted_entry_directory_is_reported() {
    let (store, sample, _) = store_with_two_entries();
    make_writable(&sample);
    fs::remove_dir_all(&sample).unwrap();
    let stdout = run_ok_code(pystore(store.path()).arg("verify"), 1);
    assert!(
        stdout.contains(&format!(
            "damaged: {}\n  .: missing-entry:",
            sample.display()
        )),
        "{stdout}"
    );
}

fn json_any(cmd: &mut std::process::Command) -> serde_json::Value {
    serde_json::from_slice(&run(cmd).stdout).unwrap()
}

fn run_ok_code(cmd: &mut std::process::Command, code: i32) -> String {
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(code));
    String::from_utf8(out.stdout).unwrap()
}
