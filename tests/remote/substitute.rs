//! realise with PYSTORE_SUBSTITUTERS: entries are downloaded from a static HTTP cache instead of
//! being built, giving the same ZIP as the local build; a refused substitute is built instead.

use std::fs;
use std::path::{Path, PathBuf};

use crate::common::http::{Response, Server};
use crate::common::*;
use crate::remote_fixtures::{blobs, closure, copy_dir, Setup};

/// A static file server for `dir`, as any web server would serve a pushed directory.
fn serve(dir: PathBuf) -> Server {
    Server::start(move |req| {
        let name = req.route().trim_start_matches('/');
        if name.contains('/') || name.starts_with('.') {
            return Response::status(404);
        }
        match fs::read(dir.join(name)) {
            Ok(bytes) => Response::ok(bytes),
            Err(_) => Response::status(404),
        }
    })
}

/// Pushes the recipe (signed) from a fresh store to a new directory; (store, cache dir, ZIP path).
fn pushed(setup: &Setup) -> (TempStore, PathBuf, String) {
    let a = TempStore::new();
    let cache = setup.work.path().join("cache");
    run_ok(
        setup
            .pystore(a.path())
            .arg("push")
            .arg(&setup.recipe)
            .arg("--to")
            .arg(format!("file://{}", cache.display()))
            .env("PYSTORE_SIGNING_KEY", &setup.secret),
    );
    let zip = setup.realise(a.path())["zip"].as_str().unwrap().to_owned();
    (a, cache, zip)
}

fn counts(stderr: &str) -> (usize, usize, usize) {
    let line = stderr
        .lines()
        .find(|l| l.contains(" substituted, "))
        .unwrap_or_else(|| panic!("no counts in:\n{stderr}"));
    let numbers: Vec<usize> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    (numbers[0], numbers[1], numbers[2])
}

#[test]
fn realise_downloads_from_a_substituter_instead_of_building() {
    let setup = Setup::new();
    let (a, cache, zip_a) = pushed(&setup);
    let server = serve(cache.clone());
    let b = TempStore::new();
    // No wheelhouse and no index: building is impossible, only substitution can succeed.
    let mut realise = pystore(b.path());
    realise
        .args(["--json", "realise"])
        .arg(&setup.recipe)
        .env("PYSTORE_SUBSTITUTERS", server.url("/"))
        .env("PYSTORE_TRUSTED_KEYS", &setup.public)
        .env("PYSTORE_SIGNING_KEY", &setup.secret);

    // The plan says what will be substituted.
    let mut dry = pystore(b.path());
    dry.args(["--json", "realise", "--dry-run"])
        .arg(&setup.recipe)
        .env("PYSTORE_SUBSTITUTERS", server.url("/"))
        .env("PYSTORE_TRUSTED_KEYS", &setup.public)
        .env("PYSTORE_SIGNING_KEY", &setup.secret);
    let plan: serde_json::Value = serde_json::from_str(&run_ok(&mut dry)).unwrap();
    let statuses: Vec<&str> = plan
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["substitute"; 5], "{plan}");

    assert_eq!(
        server.count("/pystore-index.json"),
        1,
        "the plan read the index"
    );
    let planned = server.requests().len();
    let timings = b.path().join("timings-substituted");
    let out = run(realise.arg(format!("--timings={}", timings.display())));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let (substituted, fetched, built) = counts(&stderr);
    // The bundle, its validation report, its ZIP, the ZIP's provenance and SBOM.
    assert_eq!((substituted, fetched, built), (5, 0, 0), "{stderr}");
    // --timings has one span per entry, each saying it was substituted.
    let report: serde_json::Value =
        serde_json::from_slice(&fs::read(timings.with_extension("json")).unwrap()).unwrap();
    let hows: Vec<&str> = report["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["how"].as_str().unwrap())
        .collect();
    assert_eq!(hows, ["substituted"; 5], "{report}");
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let zip_b = value[0]["zip"].as_str().unwrap();
    assert_eq!(
        fs::read(zip_b).unwrap(),
        fs::read(&zip_a).unwrap(),
        "same ZIP"
    );
    assert_eq!(closure(b.path(), zip_b), closure(a.path(), &zip_a));
    // One index read, and each entry of the closure downloaded once.
    let entries = closure(a.path(), &zip_a).len();
    let requests = server.requests()[planned..].to_vec();
    assert_eq!(
        requests
            .iter()
            .filter(|r| r.path == "/pystore-index.json")
            .count(),
        1,
        "one index read per run"
    );
    let archives = requests
        .iter()
        .filter(|r| r.path.ends_with(".tar.zst"))
        .count();
    assert!(
        archives >= entries,
        "{archives} archives for {entries} entries"
    );
    assert_eq!(
        archives,
        requests
            .iter()
            .filter(|r| r.path.ends_with(".tar.zst"))
            .map(|r| &r.path)
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        "no archive downloaded twice"
    );
    // Realising again asks nobody anything.
    let before = server.requests().len();
    let again = run(&mut realise);
    assert!(again.status.success());
    assert_eq!(counts(&String::from_utf8_lossy(&again.stderr)), (0, 0, 0));
    assert_eq!(server.requests().len(), before);
}

#[test]
fn a_refused_substitute_is_built_instead_and_the_zip_is_the_same() {
    let setup = Setup::new();
    let (_a, cache, zip_a) = pushed(&setup);
    // Every archive tampered with: nothing can be substituted.
    let tampered = setup.work.path().join("tampered");
    copy_dir(&cache, &tampered);
    for archive in blobs(&tampered, ".tar.zst") {
        let mut bytes = fs::read(&archive).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&archive, bytes).unwrap();
    }
    let server = serve(tampered);
    let c = TempStore::new();
    // Not --offline (which leaves out substituters other than file://); once substitution
    // fails, the wheels come from the index.
    let index =
        crate::recipe_fixtures::index_server(&crate::remote_fixtures::blobs(&setup.wheels, ".whl"));
    let out = run(pystore(c.path())
        .env("PYSTORE_INDEX_URL", index.url("/simple/"))
        .args(["--json", "realise"])
        .arg(&setup.recipe)
        .env("PYSTORE_SUBSTITUTERS", server.url("/"))
        .env("PYSTORE_TRUSTED_KEYS", &setup.public)
        .env("PYSTORE_SIGNING_KEY", &setup.secret));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("building it instead"), "{stderr}");
    let (substituted, fetched, built) = counts(&stderr);
    assert_eq!(substituted, 0, "{stderr}");
    assert!(
        fetched >= 2,
        "the wheels (and interpreter) were fetched: {stderr}"
    );
    assert_eq!(index.count("/simple/app-core/"), 1);
    assert!(built > 3, "{stderr}");
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        fs::read(value[0]["zip"].as_str().unwrap()).unwrap(),
        fs::read(Path::new(&zip_a)).unwrap()
    );
    run_ok(pystore(c.path()).arg("verify"));

    // --offline: only file:// substituters are consulted.
    let d = TempStore::new();
    let before = server.requests().len();
    let out = run(setup
        .pystore(d.path())
        .args(["realise"])
        .arg(&setup.recipe)
        .env("PYSTORE_SUBSTITUTERS", server.url("/"))
        .env("PYSTORE_TRUSTED_KEYS", &setup.public)
        .env("PYSTORE_SIGNING_KEY", &setup.secret));
    assert!(out.status.success());
    assert_eq!(
        server.requests().len(),
        before,
        "offline: the HTTP cache is not asked"
    );
}

#[test]
fn unsigned_caches_substitute_only_with_no_require_sigs() {
    let setup = Setup::new();
    let a = TempStore::new();
    let cache = setup.work.path().join("cache");
    run_ok(
        setup
            .pystore(a.path())
            .arg("push")
            .arg(&setup.recipe)
            .arg("--to")
            .arg(format!("file://{}", cache.display())),
    );
    let zip_a = setup.realise(a.path())["zip"].as_str().unwrap().to_owned();
    let realise = |store: &Path, extra: &[&str]| {
        let out = run(setup
            .pystore(store)
            .args(["--json", "realise"])
            .arg(&setup.recipe)
            .args(extra)
            .env(
                "PYSTORE_SUBSTITUTERS",
                format!("file://{}", cache.display()),
            )
            .env("PYSTORE_TRUSTED_KEYS", &setup.public));
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (stderr, value[0]["zip"].as_str().unwrap().to_owned())
    };
    // Signatures required (the default): the unsigned index is refused, everything is built.
    let b = TempStore::new();
    let (stderr, zip_b) = realise(b.path(), &[]);
    assert!(stderr.contains("is not signed"), "{stderr}");
    let (substituted, _, built) = counts(&stderr);
    assert_eq!(substituted, 0, "{stderr}");
    assert!(built > 0, "{stderr}");
    assert_eq!(fs::read(&zip_b).unwrap(), fs::read(&zip_a).unwrap());
    // --no-require-sigs: substituted (the hashes are still checked).
    let c = TempStore::new();
    let (stderr, zip_c) = realise(c.path(), &["--no-require-sigs"]);
    assert_eq!(counts(&stderr), (5, 0, 0), "{stderr}");
    assert_eq!(fs::read(&zip_c).unwrap(), fs::read(&zip_a).unwrap());
}
