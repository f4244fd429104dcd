//! The database: a lost or emptied one is not reported as a healthy empty store (and gc refuses
//! to delete every entry), a damaged one says how to recover; a read-only store can still be
//! verified and listed.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

fn store_with_entries() -> (TempStore, Vec<PathBuf>) {
    let store = TempStore::new();
    let src = tempfile::tempdir().unwrap();
    make_sample_tree(&src.path().join("sample"));
    make_tree(&src.path().join("other"), 5);
    let entries = vec![
        add(store.path(), &src.path().join("sample")),
        add(store.path(), &src.path().join("other")),
    ];
    (store, entries)
}

fn remove_database(store: &Path) {
    for name in ["db.sqlite", "db.sqlite-wal", "db.sqlite-shm"] {
        let _ = fs::remove_file(store.join(name));
    }
}

#[test]
fn a_lost_database_is_reported_and_gc_refuses_to_delete_the_entries() {
    let (store, entries) = store_with_entries();
    remove_database(store.path());
    for args in [&["gc"][..], &["gc", "--dry-run"], &["verify"]] {
        let err = run_fails(pystore(store.path()).args(args), 1);
        assert!(
            err.contains("has no entries, but")
                && err.contains("holds 2 entry directories")
                && err.contains("`pystore gc` refuses to run")
                && err.contains(&format!("mv {} ", store.path().display())),
            "{args:?}: {err}"
        );
        assert_eq!(err.matches("has no entries").count(), 1, "said once: {err}");
    }
    for entry in &entries {
        assert!(entry.exists(), "gc deleted nothing: {}", entry.display());
    }
    // An emptied (zero-byte) database is the same.
    fs::write(store.path().join("db.sqlite"), b"").unwrap();
    let err = run_fails(pystore(store.path()).arg("gc"), 1);
    assert!(err.contains("has no entries, but"), "{err}");
}

#[test]
fn a_damaged_database_says_how_to_recover() {
    let (store, _) = store_with_entries();
    remove_database(store.path());
    fs::write(store.path().join("db.sqlite"), vec![0x5a; 8192]).unwrap();
    let err = run_fails(pystore(store.path()).arg("verify"), 1);
    assert!(
        err.contains(&format!(
            "the store database {} is damaged",
            store.path().join("db.sqlite").display()
        )) && err.contains("Move the store aside"),
        "{err}"
    );
}

/// `pystore ARGS` as a user who cannot write the store: as root, run as `nobody` (root ignores
/// permissions); otherwise with every write bit of the store removed.
fn read_only_pystore(store: &Path, args: &[&str]) -> std::process::Output {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", bin()])
            .arg("--store")
            .arg(store)
            .args(args)
            .env("HOME", "/nonexistent");
        cmd.output().expect("setpriv runs")
    } else {
        let mut cmd = pystore(store);
        cmd.args(args);
        cmd.output().unwrap()
    }
}

fn snapshot(dir: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for entry in walk(dir) {
        let meta = fs::symlink_metadata(&entry).unwrap();
        out.push((
            entry.strip_prefix(dir).unwrap().display().to_string(),
            if meta.is_file() { meta.len() } else { 0 },
        ));
    }
    out.sort();
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for child in fs::read_dir(dir).unwrap() {
        let path = child.unwrap().path();
        if fs::symlink_metadata(&path).unwrap().is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}

/// Sets the modes of the store's own directories and files; entries (already read-only, and
/// checked by verify) are left as they are.
fn set_tree_mode(path: &Path, dirs: u32, files: u32) {
    let meta = fs::symlink_metadata(path).unwrap();
    if meta.is_dir() {
        fs::set_permissions(path, fs::Permissions::from_mode(dirs)).unwrap();
        if path.file_name().is_some_and(|n| n == "entries") {
            return;
        }
        for child in fs::read_dir(path).unwrap() {
            set_tree_mode(&child.unwrap().path(), dirs, files);
        }
    } else if meta.is_file() {
        fs::set_permissions(path, fs::Permissions::from_mode(files)).unwrap();
    }
}

#[test]
fn a_read_only_store_can_be_verified_and_listed() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if root && Command::new("setpriv").arg("--version").output().is_err() {
        eprintln!("skipped: running as root without setpriv, a read-only store cannot be made");
        return;
    }
    let (store, entries) = store_with_entries();
    run_ok(
        pystore(store.path())
            .args(["root", "add", "keep"])
            .arg(&entries[0]),
    );
    // Readable by everyone, writable by no one else (and by no one at all when not root).
    let (dirs, files) = if root { (0o755, 0o644) } else { (0o555, 0o444) };
    set_tree_mode(store.path(), dirs, files);
    let before = snapshot(store.path());

    let verify = read_only_pystore(store.path(), &["verify"]);
    let stderr = String::from_utf8_lossy(&verify.stderr);
    assert_eq!(verify.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("verified 2 entries"), "{stderr}");
    let info = read_only_pystore(store.path(), &["path-info", entries[1].to_str().unwrap()]);
    assert_eq!(
        info.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&info.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&info.stdout),
        format!("{}\n", entries[1].display())
    );
    let roots = read_only_pystore(store.path(), &["root", "list"]);
    assert_eq!(
        roots.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&roots.stderr)
    );
    assert!(String::from_utf8_lossy(&roots.stdout).starts_with("keep -> "));
    let gc = read_only_pystore(store.path(), &["gc", "--dry-run"]);
    assert_eq!(
        gc.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&gc.stderr)
    );
    assert!(
        String::from_utf8_lossy(&gc.stdout).contains("would free 1 entry"),
        "{}",
        String::from_utf8_lossy(&gc.stdout)
    );
    assert_eq!(snapshot(store.path()), before, "nothing was written");
    set_tree_mode(store.path(), 0o755, 0o644);
}
