//! `pystore add` of many paths at once (group commit: one sync per batch): the same entries, in
//! the order given, as adding them one by one; an error stops at the bad path and leaves the
//! paths before it registered and the rest not; concurrent adds of overlapping sets agree.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

fn files(dir: &Path, n: usize) -> Vec<PathBuf> {
    fs::create_dir_all(dir).unwrap();
    (0..n)
        .map(|i| {
            let path = dir.join(format!("f{i:04}.txt"));
            fs::write(&path, format!("file number {i}\n")).unwrap();
            path
        })
        .collect()
}

#[test]
fn many_paths_in_one_add_give_the_entries_of_adding_them_one_by_one() {
    let work = tempfile::tempdir().unwrap();
    // More than one batch (pystore::store::ADD_BATCH), a duplicate inside a batch, a directory.
    let mut paths = files(&work.path().join("in"), pystore::store::ADD_BATCH + 20);
    paths.insert(3, paths[1].clone());
    let tree = work.path().join("tree");
    make_sample_tree(&tree);
    paths.push(tree);

    let batch = TempStore::new();
    let printed = run_ok(pystore(batch.path()).arg("add").args(&paths));
    let printed: Vec<&str> = printed.lines().collect();
    assert_eq!(printed.len(), paths.len());
    assert_eq!(printed[1], printed[3], "the same content is the same entry");

    let single = TempStore::new();
    for (path, line) in paths.iter().zip(&printed) {
        let one = add(single.path(), path);
        let relative = |p: &Path, root: &Path| p.strip_prefix(root).unwrap().to_path_buf();
        assert_eq!(
            relative(&one, single.path()),
            relative(Path::new(line), batch.path()),
            "{}",
            path.display()
        );
    }
    assert_eq!(
        list(&batch.path().join("entries")),
        list(&single.path().join("entries"))
    );
    assert_eq!(list(&batch.path().join("tmp")), Vec::<String>::new());
    run_ok(pystore(batch.path()).arg("verify"));
}

#[test]
fn a_bad_path_stops_the_add_there_and_names_it() {
    let work = tempfile::tempdir().unwrap();
    let mut paths = files(&work.path().join("in"), 5);
    let fifo = work.path().join("in/a-fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    paths.insert(2, fifo.clone());
    let store = TempStore::new();
    let err = run_fails(pystore(store.path()).arg("add").args(&paths), 1);
    assert!(err.contains("a-fifo") && err.contains("fifo"), "{err}");
    let entries = list(&store.path().join("entries"));
    assert_eq!(
        entries.len(),
        2,
        "the two paths before the fifo: {entries:?}"
    );
    assert!(entries[0].ends_with("-f0000.txt") || entries[1].ends_with("-f0000.txt"));
    assert!(entries.iter().any(|e| e.ends_with("-f0001.txt")));
    assert_eq!(list(&store.path().join("tmp")), Vec::<String>::new());
}

#[test]
fn concurrent_adds_of_overlapping_sets_agree() {
    let work = tempfile::tempdir().unwrap();
    let paths = files(&work.path().join("in"), 400);
    let store = TempStore::new();
    let children: Vec<_> = (0..4)
        .map(|k| {
            // Each process adds the files in another order, so batches contend for locks.
            let mut mine = paths.clone();
            mine.rotate_left(k * 100);
            pystore(store.path())
                .arg("add")
                .args(&mine)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 400);
    }
    assert_eq!(list(&store.path().join("entries")).len(), 400);
    run_ok(pystore(store.path()).arg("verify"));
}
