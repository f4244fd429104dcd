//! Intact stamps after a build's hard links (store-layout.md §10a): a build that hard-links an
//! input's files moves their change times, and `stamp_checked` records the stamp a full check
//! would, without reading the files; a file written after it was hashed is never stamped, and the
//! next check finds the damage.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use pystore::store::{EntryInfo, EntryName, Fingerprint, Store};
use serde_json::json;

/// What `realise` does to a bundle's inputs, in small: an input directory of two files, and a
/// derived entry hard-linking them. Returns the store, the input and the linking entry.
fn input_and_linker(root: &Path) -> (Store, EntryInfo, EntryInfo) {
    let source = tempfile::tempdir().unwrap();
    fs::write(source.path().join("a.py"), b"print('a')\n".repeat(50)).unwrap();
    fs::write(source.path().join("b.py"), b"print('b')\n".repeat(50)).unwrap();
    let store = Store::open(root).unwrap();
    let input = store.add_path(source.path(), Some("input")).unwrap().entry;
    store.check_input_intact(&input).unwrap();
    let fingerprint = Fingerprint::Derived {
        name: EntryName::new("linker").unwrap(),
        builder: "test-linker".into(),
        builder_version: "1".into(),
        params: json!({}),
        inputs: BTreeMap::from([("in".to_owned(), input.id.clone())]),
    };
    let from = input.path.clone();
    let linker = store
        .build(&fingerprint, move |out| {
            fs::create_dir(out)?;
            for name in ["a.py", "b.py"] {
                pystore::hash::hard_link_keeping_digest(&from.join(name), &out.join(name))?;
            }
            Ok(())
        })
        .unwrap()
        .entry;
    (store, input, linker)
}

fn stamp_file(root: &Path, entry: &EntryInfo) -> PathBuf {
    root.join("cache/intact").join(entry.id.to_string())
}

/// Long enough for every change to have settled (store-layout.md §10a: one second).
fn settle() {
    std::thread::sleep(std::time::Duration::from_millis(1100));
}

#[test]
fn linked_inputs_are_stamped_again_exactly_as_a_full_check_would() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let (store, input, linker) = input_and_linker(&root);
    assert!(!stamp_file(&root, &input).exists(), "no stamp before");
    settle();
    assert_eq!(store.stamp_checked(), 2, "the input and the new entry");
    let restamped = fs::read(stamp_file(&root, &input)).unwrap();
    assert_eq!(restamped.len(), 32);
    assert!(stamp_file(&root, &linker).exists());
    // Nothing changed since: nothing to stamp again.
    assert_eq!(store.stamp_checked(), 0);
    drop(store);
    // The stamp a full re-hash records in a fresh store handle is the same bytes.
    fs::remove_file(stamp_file(&root, &input)).unwrap();
    let fresh = Store::open(&root).unwrap();
    fresh.check_intact(&input).unwrap();
    assert_eq!(fs::read(stamp_file(&root, &input)).unwrap(), restamped);
}

#[test]
fn a_file_written_after_it_was_hashed_is_not_stamped_and_is_found_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let (store, input, linker) = input_and_linker(&root);
    // Same size, other bytes, through the link: both entries hold the written inode.
    let file = linker.path.join("a.py");
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&file, b"print('x')\n".repeat(50)).unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o444)).unwrap();
    settle();
    assert_eq!(
        store.stamp_checked(),
        0,
        "no digest is known for the written state"
    );
    assert!(!stamp_file(&root, &input).exists());
    drop(store);
    let fresh = Store::open(&root).unwrap();
    let err = fresh.check_intact(&input).unwrap_err().to_string();
    assert!(
        err.contains(&format!("{} is damaged", input.path.display())) && err.contains("a.py"),
        "{err}"
    );
}
