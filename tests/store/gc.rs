//! gc keeps what roots reach (closures included), removes the rest; --dry-run removes nothing.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use crate::common::*;
use pystore::store::{EntryInfo, EntryName, Fingerprint, Store};
use serde_json::json;

/// A derived entry: a file holding `content`, built from `inputs`.
fn derived(store: &Store, name: &str, inputs: &[&EntryInfo]) -> EntryInfo {
    let fingerprint = Fingerprint::Derived {
        name: EntryName::new(name).unwrap(),
        builder: "test-writer".into(),
        builder_version: "1".into(),
        params: json!({ "content": name }),
        inputs: inputs
            .iter()
            .enumerate()
            .map(|(i, e)| (format!("in{i}"), e.id.clone()))
            .collect::<BTreeMap<_, _>>(),
    };
    let content = name.to_owned();
    store
        .build(&fingerprint, move |out| {
            fs::create_dir(out)?;
            fs::write(out.join("content"), content)?;
            Ok(())
        })
        .unwrap()
        .entry
}

/// leaf ← lib ← app (rooted); leaf ← orphan; lonely. Returns (app, lib, leaf, orphan, lonely).
fn graph(root: &Path) -> [EntryInfo; 5] {
    let store = Store::open(root).unwrap();
    let leaf = derived(&store, "leaf", &[]);
    let lib = derived(&store, "lib", &[&leaf]);
    let app = derived(&store, "app", &[&lib, &leaf]);
    let orphan = derived(&store, "orphan", &[&leaf]);
    let lonely = derived(&store, "lonely", &[]);
    [app, lib, leaf, orphan, lonely]
    // The store is dropped here, releasing its shared lock so a gc can run.
}

fn valid(store: &Path) -> Vec<String> {
    let report = json(pystore(store).arg("verify"));
    assert_eq!(report["ok"], true);
    let mut names: Vec<String> = list(&store.join("entries"))
        .into_iter()
        .map(|n| n[33..].to_owned())
        .collect();
    names.sort();
    assert_eq!(report["checked"].as_u64().unwrap() as usize, names.len());
    names
}

#[test]
fn gc_keeps_rooted_closures_and_removes_the_rest() {
    let store = TempStore::new();
    let [app, lib, leaf, orphan, lonely] = graph(store.path());
    run_ok(
        pystore(store.path())
            .args(["root", "add", "app"])
            .arg(&app.path),
    );

    let closure = run_ok(
        pystore(store.path())
            .args(["path-info", "--closure"])
            .arg(&app.path),
    );
    let mut expected = [app.path.clone(), lib.path.clone(), leaf.path.clone()];
    expected.sort();
    let expected_text: String = expected
        .iter()
        .map(|p| format!("{}\n", p.display()))
        .collect();
    assert_eq!(closure, expected_text);

    // Dry run: names what it would free, removes nothing.
    let dry = run_ok(pystore(store.path()).args(["gc", "--dry-run"]));
    let mut would: Vec<String> = vec![
        orphan.path.display().to_string(),
        lonely.path.display().to_string(),
    ];
    would.sort();
    assert_eq!(
        dry,
        format!(
            "{}\n{}\nwould free 2 entries, 12 bytes (12 B); 3 entries kept alive by roots\n",
            would[0], would[1]
        )
    );
    assert_eq!(
        valid(store.path()),
        ["app", "leaf", "lib", "lonely", "orphan"]
    );

    // An unregistered leftover directory is collected too.
    let leftover = store
        .path()
        .join("entries/0000000000000000000000000000000z-leftover");
    fs::create_dir(&leftover).unwrap();
    fs::write(leftover.join("junk"), b"1234").unwrap();

    // What the caches keep for one entry (store-layout.md §10a) goes with it; the rest stays.
    let cache = store.path().join("cache");
    let dir_name = |e: &EntryInfo| e.path.file_name().unwrap().to_str().unwrap().to_owned();
    for (dir, name) in [
        ("intact", orphan.id.to_string()),
        ("intact", app.id.to_string()),
        ("wheel-members-1", dir_name(&lonely)),
        ("wheel-members-1", dir_name(&leaf)),
        ("deflate-test", "0123.pack".to_owned()),
    ] {
        fs::create_dir_all(cache.join(dir)).unwrap();
        fs::write(cache.join(dir).join(name), b"cached").unwrap();
    }

    let report = json(pystore(store.path()).arg("gc"));
    assert_eq!(report["entries"], 3);
    assert_eq!(report["bytes"], 6 + 6 + 4);
    assert_eq!(list(&cache.join("intact")), [app.id.to_string()]);
    assert_eq!(list(&cache.join("wheel-members-1")), [dir_name(&leaf)]);
    assert_eq!(list(&cache.join("deflate-test")), ["0123.pack"]);
    assert_eq!(report["kept"], 3);
    assert_eq!(valid(store.path()), ["app", "leaf", "lib"]);
    run_fails(pystore(store.path()).arg("path-info").arg(&orphan.path), 1);
    assert!(!store
        .path()
        .join(format!("locks/{}.lock", orphan.id))
        .exists());

    // Without the root, everything goes.
    run_ok(pystore(store.path()).args(["root", "remove", "app"]));
    let report = json(pystore(store.path()).arg("gc"));
    assert_eq!(report["entries"], 3);
    assert!(list(&store.path().join("entries")).is_empty());
    assert!(valid(store.path()).is_empty());
}

#[test]
fn a_reference_to_an_unregistered_entry_is_refused() {
    let store = TempStore::new();
    let s = Store::open(store.path()).unwrap();
    let ghost = pystore::store::EntryId::parse("0000000000000000000000000000000z").unwrap();
    let fingerprint = Fingerprint::Derived {
        name: EntryName::new("needs-ghost").unwrap(),
        builder: "test-writer".into(),
        builder_version: "1".into(),
        params: json!({}),
        inputs: [("x".to_owned(), ghost)].into_iter().collect(),
    };
    let err = s
        .build(&fingerprint, |out| Ok(fs::write(out, b"x")?))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("refers to 0000000000000000000000000000000z, which is not in the store"),
        "{err}"
    );
    drop(s);
    assert!(list(&store.path().join("entries")).is_empty());
    assert!(list(&store.path().join("tmp")).is_empty());
}

#[test]
fn roots_are_listed_replaced_and_validated() {
    let store = TempStore::new();
    let [app, lib, ..] = graph(store.path());
    run_ok(
        pystore(store.path())
            .args(["root", "add", "r"])
            .arg(&app.path),
    );
    run_ok(
        pystore(store.path())
            .args(["root", "add", "r"])
            .arg(&lib.path),
    );
    let listed = run_ok(pystore(store.path()).args(["root", "list"]));
    assert_eq!(listed, format!("r -> {}\n", lib.path.display()));
    assert_eq!(
        fs::read_link(store.path().join("roots/r")).unwrap(),
        Path::new("../entries").join(lib.path.file_name().unwrap())
    );
    let err = run_fails(pystore(store.path()).args(["root", "remove", "nope"]), 1);
    assert!(err.contains("there is no root named \"nope\""), "{err}");
    let err = run_fails(
        pystore(store.path())
            .args(["root", "add", "../evil"])
            .arg(&app.path),
        1,
    );
    assert!(err.contains("not a valid root name"), "{err}");
}
