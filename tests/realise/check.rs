//! `pystore realise --check` / `--rounds N` end to end, from a local wheelhouse and an
//! interpreter archive made from the machine's Debian python3.11 (no network at all).

use std::path::{Path, PathBuf};

use sha2::Digest;

use crate::common::*;
use crate::pyfixtures::WheelBuilder;
use crate::recipe_fixtures::{recipe, workspace};

fn wheels(dir: &Path) -> Vec<PathBuf> {
    // A module large enough for its ZIP member to be copied from the wheel.
    let module = format!(
        "\"\"\"{}\"\"\"\ndef hello(who):\n    return 'hello ' + who\n",
        "Greets. ".repeat(60)
    );
    let greet = WheelBuilder::new("greet_lib", "2.1.0", "py3-none-any")
        .file("greet_lib/__init__.py", module.as_bytes());
    let app = WheelBuilder::new("app_core", "0.3", "py3-none-any").file(
        "app_core/__init__.py",
        b"from greet_lib import hello\nMESSAGE = hello('bundle')\n",
    );
    vec![greet.build(dir), app.build(dir)]
}

/// interpreter, its standard library's bytecode, two installed wheels and their bytecode,
/// bundle, its validation report, ZIP, provenance, SBOM.
const DERIVED: usize = 11;

#[test]
fn check_realises_first_then_rebuilds_every_derived_entry_identically() {
    let (work, wheel_dir) = workspace();
    let wheels = wheels(&wheel_dir);
    let recipe = recipe(work.path(), &wheels, &[]);
    let store = TempStore::new();
    let realise = || {
        let mut cmd = pystore(store.path());
        cmd.arg("realise")
            .arg(&recipe)
            .env("PYSTORE_FIND_LINKS", &wheel_dir);
        cmd
    };

    // Nothing built yet: --check realises, then rebuilds.
    let report = json(realise().arg("--check"));
    let check = &report["check"];
    assert_eq!(check["reproducible"], true, "{report:#}");
    assert_eq!(check["rounds"], 1);
    let entries = check["entries"].as_array().unwrap();
    assert_eq!(entries.len(), DERIVED, "{report:#}");
    let names: Vec<&str> = entries
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    for expected in [
        "demo-1.0.0-t",
        "demo-1.0.0-t.zip",
        "cpython-3.11.2-x86_64-unknown-linux-gnu",
    ] {
        assert!(names.contains(&expected), "{names:?}");
    }
    assert!(entries
        .iter()
        .all(|e| e["mismatches"] == serde_json::json!([])));
    let zip = report["targets"][0]["zip"].as_str().unwrap();
    assert!(Path::new(zip).is_file());
    let before = entries_and_tmp(store.path());
    assert_eq!(before.1, Vec::<String>::new(), "no rebuild is left in tmp/");

    let text = run_ok(realise().args(["--rounds", "2"]));
    assert!(
        text.contains(&format!(
            "check: {DERIVED} derived entries rebuilt 2 times: all reproducible"
        )),
        "{text}"
    );
    assert_eq!(
        entries_and_tmp(store.path()),
        before,
        "the store is unchanged"
    );

    let err = run_fails(realise().args(["--rounds", "0"]), 2);
    assert!(err.contains("--rounds"), "{err}");
    let err = run_fails(realise().args(["--check", "--dry-run"]), 2);
    assert!(err.contains("--dry-run"), "{err}");
}

#[test]
fn check_fails_naming_the_file_an_injected_nondeterminism_writes() {
    let (work, wheel_dir) = workspace();
    let wheels = wheels(&wheel_dir);
    let recipe = recipe(work.path(), &wheels, &[]);
    let store = TempStore::new();
    let realise = || {
        let mut cmd = pystore(store.path());
        cmd.arg("realise")
            .arg(&recipe)
            .env("PYSTORE_FIND_LINKS", &wheel_dir);
        cmd
    };
    run_ok(&mut realise());
    let entries_before = list(&store.path().join("entries"));

    // The test seam writes the time into every directory this process builds: the rebuilt
    // directories differ from the registered ones by that one file.
    let out = run(realise()
        .arg("--check")
        .env("PYSTORE_FAILPOINT", "nondeterministic-output"));
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("not reproducible: "), "{text}");
    assert!(
        text.contains("pystore-failpoint-time-demo-1.0.0-t: only in the rebuild (file, "),
        "{text}"
    );
    assert!(text.contains("derived entries not reproducible"), "{text}");
    let kept: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_once(", kept at ").map(|(_, p)| p))
        .collect();
    // interpreter, two installed wheels, the three bytecode entries and the bundle are
    // directories; the ZIP, provenance and SBOM are files rebuilt from the registered bundle, so
    // they agree.
    assert_eq!(kept.len(), 7, "{text}");
    for path in kept {
        let seam_files = std::fs::read_dir(path)
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_str()
                    .unwrap()
                    .starts_with("pystore-failpoint-time-")
            })
            .count();
        assert_eq!(seam_files, 1, "{path}");
    }
    assert_eq!(
        list(&store.path().join("entries")),
        entries_before,
        "nothing registered"
    );

    let report = serde_json::from_slice::<serde_json::Value>(
        &run(realise()
            .args(["--json", "--check"])
            .env("PYSTORE_FAILPOINT", "nondeterministic-output"))
        .stdout,
    )
    .unwrap();
    assert_eq!(report["check"]["reproducible"], false);
    let bundle = report["check"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "demo-1.0.0-t")
        .unwrap();
    let difference = &bundle["mismatches"][0]["differences"][0];
    assert_eq!(difference["path"], "pystore-failpoint-time-demo-1.0.0-t");
    assert_eq!(difference["registered"], serde_json::Value::Null);
    assert_eq!(difference["rebuilt"]["type"], "file");
}

/// The store's deflate cache and wheel member records make a second ZIP of the same bundle copy
/// compressed bytes, and the ZIP is byte-identical to one made without any cache.
#[test]
fn a_zip_made_from_the_deflate_cache_is_the_zip_made_without_it() {
    let (work, wheel_dir) = workspace();
    let wheels = wheels(&wheel_dir);
    let recipe = recipe(work.path(), &wheels, &[]);
    let warm = TempStore::new();
    let cold = TempStore::new();
    let realise = |store: &Path, epoch: &str| {
        let report = json(
            pystore(store)
                .arg("realise")
                .arg(&recipe)
                .env("PYSTORE_FIND_LINKS", &wheel_dir)
                .env("SOURCE_DATE_EPOCH", epoch),
        );
        std::fs::read(report[0]["zip"].as_str().unwrap()).unwrap()
    };
    let packs = |store: &Path| {
        let dir = store
            .join("cache")
            .join(pystore::archive::deflate_cache::dir_name());
        list(&dir)
            .into_iter()
            .filter(|n| n.ends_with(".pack"))
            .count()
    };
    let first = realise(warm.path(), "1700000000");
    assert_eq!(packs(warm.path()), 1, "the first ZIP fills the cache");
    // The installs recorded what the wheels' members hold (store-layout.md §10a): the second
    // ZIP copies those members without proving the match again.
    let records = list(
        &warm
            .path()
            .join("cache")
            .join(pystore::archive::member_cache::DIR_NAME),
    );
    assert_eq!(records.len(), 1, "{records:?}");
    assert!(
        records[0].ends_with("-greet_lib-2.1.0-py3-none-any.whl"),
        "{records:?}"
    );
    // A new time: a new ZIP entry of the same bundle, every deflated member a cache hit.
    let from_cache = realise(warm.path(), "1800000000");
    assert_ne!(first, from_cache);
    assert_eq!(packs(warm.path()), 1, "nothing new to cache");
    let without = realise(cold.path(), "1800000000");
    assert_eq!(
        pystore::hash::to_hex(&sha2::Sha256::digest(&from_cache)),
        pystore::hash::to_hex(&sha2::Sha256::digest(&without)),
    );
    // --check rebuilds without the cache and agrees.
    let text = run_ok(
        pystore(warm.path())
            .arg("realise")
            .arg(&recipe)
            .arg("--check")
            .env("PYSTORE_FIND_LINKS", &wheel_dir)
            .env("SOURCE_DATE_EPOCH", "1800000000"),
    );
    assert!(text.contains("all reproducible"), "{text}");
}
