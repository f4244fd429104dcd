//! `pystore add`: identity across locations, umasks and stores; canonical form; hostile trees.

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use crate::common::*;

fn add_with_umask(store: &Path, path: &Path, umask: &str) -> String {
    let script = format!("umask {umask} && exec \"$0\" --store \"$1\" add \"$2\"");
    let out = run_ok(
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(bin())
            .arg(store)
            .arg(path),
    );
    out.trim().to_owned()
}

#[test]
fn same_tree_from_two_locations_and_umasks_is_one_entry() {
    let store = TempStore::new();
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    // Same name, different absolute locations; created under different umasks.
    let (src_a, src_b) = (a.path().join("pkg"), b.path().join("nested/deeper/pkg"));
    let script = |umask: &str, dir: &Path| {
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "umask {umask} && mkdir -p \"$0/bin\" && printf 'hello\\n' > \"$0/a.txt\" && \
                 printf '#!/bin/sh\\n' > \"$0/bin/run\" && chmod u+x \"$0/bin/run\" && ln -s ../a.txt \"$0/bin/link\""
            ))
            .arg(dir)
            .status()
            .unwrap();
        assert!(status.success());
    };
    script("022", &src_a);
    script("077", &src_b);
    let first = add_with_umask(store.path(), &src_a, "022");
    let second = add_with_umask(store.path(), &src_b, "077");
    assert_eq!(first, second);
    assert_eq!(list(&store.path().join("entries")).len(), 1);

    // Canonical form on disk: read-only, mtime 1, executable bit kept.
    let entry = Path::new(&first);
    let meta = |p: &Path| fs::symlink_metadata(p).unwrap();
    assert_eq!(meta(entry).mode() & 0o7777, 0o555);
    assert_eq!(meta(&entry.join("a.txt")).mode() & 0o7777, 0o444);
    assert_eq!(meta(&entry.join("bin/run")).mode() & 0o7777, 0o555);
    assert_eq!(meta(&entry.join("bin")).mode() & 0o7777, 0o555);
    for p in [
        entry.to_path_buf(),
        entry.join("a.txt"),
        entry.join("bin"),
        entry.join("bin/link"),
    ] {
        assert_eq!(meta(&p).mtime(), 1, "{}", p.display());
    }
    assert_eq!(
        fs::read_link(entry.join("bin/link")).unwrap(),
        Path::new("../a.txt")
    );
}

#[test]
fn same_tree_in_two_store_roots_has_the_same_id() {
    let (s1, s2) = (TempStore::new(), TempStore::new());
    let src = tempfile::tempdir().unwrap();
    make_sample_tree(&src.path().join("sample"));
    let p1 = add(s1.path(), &src.path().join("sample"));
    let p2 = add(s2.path(), &src.path().join("sample"));
    assert_ne!(p1, p2);
    assert_eq!(p1.file_name(), p2.file_name());
    let info1 = json(pystore(s1.path()).arg("path-info").arg(&p1));
    let info2 = json(pystore(s2.path()).arg("path-info").arg(&p2));
    assert_eq!(info1[0]["content_hash"], info2[0]["content_hash"]);
    assert_eq!(info1[0]["id"], info2[0]["id"]);
}

#[test]
fn a_file_is_a_fixed_output_entry_keyed_by_sha256() {
    let store = TempStore::new();
    let src = tempfile::tempdir().unwrap();
    let file = src.path().join("data.bin");
    fs::write(&file, b"hello\n").unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o755)).unwrap();
    let path = add(store.path(), &file);
    let info = json(pystore(store.path()).arg("path-info").arg(&path));
    assert_eq!(info[0]["kind"], "fixed");
    // sha256("hello\n"), as sha256sum prints it.
    assert_eq!(
        info[0]["fingerprint"]["sha256"],
        "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
    );
    // Data, identified by its bytes alone: never executable.
    assert_eq!(fs::metadata(&path).unwrap().mode() & 0o7777, 0o444);
    assert_eq!(fs::read(&path).unwrap(), b"hello\n");
    // Adding again (from another place, same name) is a no-op that prints the same path.
    let again = tempfile::tempdir().unwrap();
    fs::write(again.path().join("data.bin"), b"hello\n").unwrap();
    let second = json(
        pystore(store.path())
            .arg("add")
            .arg(again.path().join("data.bin")),
    );
    assert_eq!(second[0]["built"], false);
    assert_eq!(second[0]["path"], path.to_str().unwrap());
}

#[test]
fn names_can_be_chosen_and_bad_names_are_refused() {
    let store = TempStore::new();
    let src = tempfile::tempdir().unwrap();
    let dir = src.path().join("has space");
    make_sample_tree(&dir);
    let err = run_fails(pystore(store.path()).arg("add").arg(&dir), 1);
    assert!(
        err.contains("\"has space\" is not a valid entry name"),
        "{err}"
    );
    assert!(err.contains("--name"), "the error says what to do: {err}");
    let path = run_ok(
        pystore(store.path())
            .arg("add")
            .arg(&dir)
            .arg("--name")
            .arg("good-name"),
    );
    assert!(path.trim().ends_with("-good-name"), "{path}");
}

fn assert_refused(setup: impl FnOnce(&Path), expected: &str) {
    let store = TempStore::new();
    let src = tempfile::tempdir().unwrap();
    let tree = src.path().join("tree");
    make_sample_tree(&tree);
    setup(&tree);
    let err = run_fails(pystore(store.path()).arg("add").arg(&tree), 1);
    assert!(err.contains(expected), "expected {expected:?} in: {err}");
    let (entries, tmp) = entries_and_tmp(store.path());
    assert!(entries.is_empty(), "no entry: {entries:?}");
    assert!(tmp.is_empty(), "no build directory left: {tmp:?}");
    let verify = json(pystore(store.path()).arg("verify"));
    assert_eq!(verify["checked"], 0, "no row");
}

#[test]
fn a_symlink_pointing_outside_the_entry_is_refused() {
    assert_refused(
        |tree| symlink("../../outside", tree.join("bin/escape")).unwrap(),
        "bin/escape is a symlink to \"../../outside\", which points outside the entry",
    );
}

#[test]
fn a_symlink_escaping_through_another_symlink_is_refused() {
    assert_refused(
        |tree| {
            symlink("../bin", tree.join("bin/self")).unwrap();
            symlink("bin/self/../..", tree.join("sneaky")).unwrap();
        },
        "sneaky is a symlink to \"bin/self/../..\", which points outside the entry",
    );
}

#[test]
fn an_absolute_symlink_is_refused() {
    assert_refused(
        |tree| symlink("/etc/passwd", tree.join("passwd")).unwrap(),
        "passwd is a symlink to the absolute path \"/etc/passwd\"",
    );
}

#[test]
fn a_fifo_is_refused() {
    assert_refused(
        |tree| {
            let path = std::ffi::CString::new(tree.join("pipe").to_str().unwrap()).unwrap();
            // SAFETY: `path` is a NUL-terminated C string, live for the call, which only reads
            // it.
            assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o644) }, 0);
        },
        "pipe is a fifo; only regular files, directories and symlinks can be stored",
    );
}

#[test]
fn a_non_utf8_name_is_refused() {
    use std::os::unix::ffi::OsStrExt;
    assert_refused(
        |tree| fs::write(tree.join(std::ffi::OsStr::from_bytes(b"bad\xff")), b"x").unwrap(),
        "file name is not valid UTF-8",
    );
}

#[test]
fn a_missing_path_is_a_clear_error() {
    let store = TempStore::new();
    let err = run_fails(
        pystore(store.path())
            .arg("add")
            .arg("/nonexistent/pystore-test"),
        1,
    );
    assert!(
        err.contains("cannot read /nonexistent/pystore-test"),
        "{err}"
    );
}

#[test]
fn path_info_accepts_paths_inside_entries_ids_and_roots() {
    let store = TempStore::new();
    let src = tempfile::tempdir().unwrap();
    make_sample_tree(&src.path().join("sample"));
    let path = add(store.path(), &src.path().join("sample"));
    let id = path.file_name().unwrap().to_str().unwrap()[..32].to_owned();
    run_ok(
        pystore(store.path())
            .args(["root", "add", "keep"])
            .arg(&path),
    );
    for arg in [
        path.to_str().unwrap().to_owned(),
        path.join("bin/run").to_str().unwrap().to_owned(),
        id.clone(),
        store.path().join("roots/keep").to_str().unwrap().to_owned(),
    ] {
        let out = run_ok(pystore(store.path()).arg("path-info").arg(&arg));
        assert_eq!(out.trim(), path.to_str().unwrap(), "for {arg}");
    }
    let sized = run_ok(
        pystore(store.path())
            .args(["path-info", "--size"])
            .arg(&path),
    );
    assert_eq!(sized.trim(), format!("{}\t{}", path.display(), 6 + 18));
    let err = run_fails(pystore(store.path()).arg("path-info").arg("/etc/passwd"), 1);
    assert!(err.contains("/etc/passwd is not in the store"), "{err}");
}
