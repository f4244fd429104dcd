//! The reproducibility check at library level: a graph with a deterministic builder and one
//! that writes the time (a builder no production path has), realised and then rebuilt.

use std::collections::BTreeMap;
use std::fs;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::common::TempStore;
use pystore::build::check::derived_closure;
use pystore::build::{check, realise, CheckError, Graph};
use pystore::fetch::credentials::Credentials;
use pystore::fetch::{FetchConfig, Fetcher};
use pystore::hash::to_hex;
use pystore::store::{Store, CHECK_PREFIX};
use serde_json::json;

fn fetcher(store: &Store) -> Fetcher<'_> {
    Fetcher::new(store, FetchConfig::default(), Credentials::default())
}

/// base (a tree) ← stamped (base + a file with the time) ← top (a file from stamped's listing).
/// `base` is deterministic; `stamped` is not, unless `stamp` is false.
fn graph(stamp: bool, builds: &Arc<AtomicUsize>) -> (Graph, usize, usize, usize) {
    let mut graph = Graph::new();
    let counter = builds.clone();
    let base = graph
        .derive(
            pystore::store::EntryName::new("base").unwrap(),
            ("base", "1"),
            json!({}),
            BTreeMap::new(),
            Box::new(move |ctx| {
                counter.fetch_add(1, Ordering::SeqCst);
                fs::create_dir_all(ctx.out.join("lib"))?;
                fs::write(ctx.out.join("lib/a.py"), "A = 1\n")?;
                fs::write(ctx.out.join("README"), "base\n")?;
                Ok(())
            }),
        )
        .unwrap();
    let counter = builds.clone();
    let stamped = graph
        .derive(
            pystore::store::EntryName::new("stamped").unwrap(),
            ("stamped", "1"),
            json!({ "stamp": stamp }),
            BTreeMap::from([("base".to_owned(), base)]),
            Box::new(move |ctx| {
                counter.fetch_add(1, Ordering::SeqCst);
                fs::create_dir(ctx.out)?;
                let text = fs::read_to_string(ctx.input("base")?.path.join("lib/a.py"))?;
                fs::write(ctx.out.join("a.py"), text)?;
                let built_at = if stamp {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)?
                        .as_nanos();
                    format!("{now}\n")
                } else {
                    "0\n".to_owned()
                };
                fs::write(ctx.out.join("BUILD_TIME"), built_at)?;
                Ok(())
            }),
        )
        .unwrap();
    let top = graph
        .derive(
            pystore::store::EntryName::new("top.txt").unwrap(),
            ("top", "1"),
            json!({}),
            BTreeMap::from([("stamped".to_owned(), stamped)]),
            Box::new(move |ctx| {
                let a = fs::read_to_string(ctx.input("stamped")?.path.join("a.py"))?;
                fs::write(ctx.out, format!("top of {a}"))?;
                Ok(())
            }),
        )
        .unwrap();
    (graph, base, stamped, top)
}

#[test]
fn a_deterministic_closure_checks_clean_and_leaves_nothing_behind() {
    let dir = TempStore::new();
    let store = Store::open(dir.path()).unwrap();
    let builds = Arc::new(AtomicUsize::new(0));
    let (graph, base, stamped, top) = graph(false, &builds);
    realise(&store, &fetcher(&store), &graph, &[top], 2, false).unwrap();
    assert_eq!(builds.load(Ordering::SeqCst), 2);
    let nodes = derived_closure(&graph, &[top]);
    assert_eq!(nodes, [base, stamped, top]);

    let report = check(&store, &graph, &[top], 3, 2, false).unwrap();
    assert!(report.reproducible());
    assert_eq!(report.rounds, 3);
    let names: Vec<&str> = report
        .entries
        .iter()
        .map(|e| e.entry.name.as_str())
        .collect();
    assert_eq!(names, ["base", "stamped", "top.txt"]);
    assert_eq!(
        builds.load(Ordering::SeqCst),
        2 + 2 * 3,
        "each rebuilt 3 times"
    );
    assert_eq!(
        crate::common::list(&dir.path().join("tmp")),
        Vec::<String>::new()
    );
    assert_eq!(store.entries().unwrap().len(), 3, "nothing registered");
}

#[test]
fn a_builder_that_writes_the_time_fails_naming_that_file_and_keeps_the_rebuild() {
    let dir = TempStore::new();
    let store = Store::open(dir.path()).unwrap();
    let builds = Arc::new(AtomicUsize::new(0));
    let (graph, _, _, top) = graph(true, &builds);
    realise(&store, &fetcher(&store), &graph, &[top], 2, false).unwrap();
    let registered = store.entries().unwrap();
    let stamped = registered.iter().find(|e| e.name == "stamped").unwrap();

    let report = check(&store, &graph, &[top], 2, 1, false).unwrap();
    assert!(!report.reproducible());
    let bad: Vec<_> = report
        .entries
        .iter()
        .filter(|e| !e.mismatches.is_empty())
        .collect();
    assert_eq!(bad.len(), 1, "only the stamped entry differs: {report:?}");
    assert_eq!(bad[0].entry.name, "stamped");
    let rounds: Vec<usize> = bad[0].mismatches.iter().map(|m| m.round).collect();
    assert_eq!(rounds, [1, 2]);
    for mismatch in &bad[0].mismatches {
        assert_eq!(mismatch.total_differences, 1);
        let difference = &mismatch.differences[0];
        assert_eq!(difference.path, "BUILD_TIME");
        let (old, new) = (
            difference.registered.as_ref().unwrap(),
            difference.rebuilt.as_ref().unwrap(),
        );
        assert_eq!(old.kind, "file");
        assert_ne!(old.blake3, new.blake3);
        // The registered side is what the store recorded for the file.
        let recorded = fs::read(stamped.path.join("BUILD_TIME")).unwrap();
        assert_eq!(old.size, Some(recorded.len() as u64));
        assert_eq!(
            old.blake3.as_deref(),
            Some(to_hex(blake3::hash(&recorded).as_bytes()).as_str())
        );
        // The rebuild is kept, outside the entries and never registered.
        let kept = &mismatch.kept;
        assert!(kept.starts_with(dir.path().join("tmp")), "{kept:?}");
        let holder = kept
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap();
        assert!(holder.starts_with(CHECK_PREFIX), "{holder}");
        let rebuilt = fs::read(kept.join("BUILD_TIME")).unwrap();
        assert_eq!(new.size, Some(rebuilt.len() as u64));
        assert_eq!(fs::read_to_string(kept.join("a.py")).unwrap(), "A = 1\n");
        assert_ne!(mismatch.content_hash, to_hex(&stamped.content_hash));
    }
    assert_eq!(store.entries().unwrap().len(), registered.len());
    // Kept rebuilds survive the next open (crash recovery leaves them alone).
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(crate::common::list(&dir.path().join("tmp")).len(), 2);
    let verified = store.verify(None, &|_| {}).unwrap();
    assert!(verified.damaged.is_empty() && verified.unregistered.is_empty());
}

#[test]
fn checking_what_was_never_built_says_to_realise_first() {
    let dir = TempStore::new();
    let store = Store::open(dir.path()).unwrap();
    let builds = Arc::new(AtomicUsize::new(0));
    let (graph, _, _, top) = graph(false, &builds);
    let err = check(&store, &graph, &[top], 1, 1, false).unwrap_err();
    assert!(matches!(err, CheckError::NotRealised { .. }), "{err}");
    assert!(err.to_string().contains("realise it first"), "{err}");
    assert_eq!(builds.load(Ordering::SeqCst), 0);
}

#[test]
fn a_check_killed_mid_rebuild_is_cleaned_up_by_the_next_open() {
    let dir = TempStore::new();
    let store = Store::open(dir.path()).unwrap();
    let builds = Arc::new(AtomicUsize::new(0));
    let (graph, _, _, top) = graph(false, &builds);
    realise(&store, &fetcher(&store), &graph, &[top], 1, false).unwrap();
    let entry = store
        .entries()
        .unwrap()
        .into_iter()
        .find(|e| e.name == "stamped")
        .unwrap();
    drop(store);
    // What a rebuild leaves when its process dies: its build directory, lock released.
    let leftover = dir
        .path()
        .join("tmp")
        .join(format!("{}-{}~deadbeef", entry.id, entry.name));
    fs::create_dir_all(leftover.join("out")).unwrap();
    fs::write(leftover.join("out/BUILD_TIME"), "half written").unwrap();
    // A kept differing rebuild is not a leftover.
    let kept = dir.path().join("tmp").join(format!(
        "{CHECK_PREFIX}{}-{}~cafef00d",
        entry.id, entry.name
    ));
    fs::create_dir_all(kept.join("out")).unwrap();

    let store = Store::open(dir.path()).unwrap();
    assert!(!leftover.exists(), "the dead check's directory is removed");
    assert!(kept.exists(), "a kept rebuild stays for the user");
    assert!(
        store.query(&entry.id).unwrap().is_some(),
        "the entry stays valid"
    );
    assert!(entry.path.join("BUILD_TIME").is_file());
}
