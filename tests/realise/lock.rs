//! `pystore lock` end to end: wheels built by the tests, served by a loopback simple index (some
//! projects with PEP 658 metadata files, some without, so their wheels are downloaded and read),
//! recipes with Windows and Linux targets resolved on this Linux machine.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::common::http::{ranged, Response, Server};
use crate::common::*;
use crate::pyfixtures::WheelBuilder;
use pystore::lock::Lock;

/// One file the test index offers.
#[derive(Clone)]
struct Dist {
    filename: String,
    bytes: Vec<u8>,
    metadata: String,
    yanked: bool,
    requires_python: Option<String>,
    /// Offer the PEP 658 metadata file (else the wheel must be read).
    pep658: bool,
    /// Serve the wheel's bytes in ranges (else whole, whatever is asked).
    ranges: bool,
}

/// A wheel `name-version-tag.whl` with extra METADATA lines.
fn wheel(dir: &Path, name: &str, version: &str, tag: &str, metadata: &[&str]) -> Dist {
    let mut builder = WheelBuilder::new(name, version, tag).file(
        &format!("{name}/__init__.py"),
        format!("VERSION = {version:?}\n").as_bytes(),
    );
    for line in metadata {
        builder = builder.metadata(line);
    }
    let path = builder.build(dir);
    Dist {
        filename: builder.file_name(),
        bytes: fs::read(path).unwrap(),
        metadata: builder.metadata_text(),
        yanked: false,
        requires_python: None,
        pep658: false,
        ranges: false,
    }
}

/// `psycopg2` for Windows and `psycopg2-binary` for Linux, as the real projects ship them.
fn psycopg_wheels(dir: &Path) -> Vec<Dist> {
    vec![
        wheel(dir, "psycopg2", "2.9.10", "cp312-cp312-win_amd64", &[]),
        wheel(
            dir,
            "psycopg2_binary",
            "2.9.10",
            "cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64",
            &[],
        ),
    ]
}

/// A pure-Python wheel.
fn pure(dir: &Path, name: &str, version: &str, metadata: &[&str]) -> Dist {
    wheel(dir, name, version, "py3-none-any", metadata)
}

type Dists = Arc<Mutex<Vec<Dist>>>;

/// A loopback PEP 691 index over `dists`, which the test may change while it runs. PEP 658
/// files also give the size (PEP 700); the others do not, so their size comes from the download.
fn index(dists: Dists) -> Server {
    slow_index(dists, std::time::Duration::ZERO)
}

/// [`index`], answering each request after `delay` (so parallel requests overlap visibly).
fn slow_index(dists: Dists, delay: std::time::Duration) -> Server {
    Server::start(move |req| {
        std::thread::sleep(delay);
        let dists = dists.lock().unwrap();
        if let Some(project) = req
            .path
            .strip_prefix("/simple/")
            .and_then(|p| p.strip_suffix('/'))
        {
            let files: Vec<serde_json::Value> = dists
                .iter()
                .filter(|d| {
                    d.filename
                        .split('-')
                        .next()
                        .unwrap()
                        .to_lowercase()
                        .replace('_', "-")
                        == project
                })
                .map(|d| {
                    let mut file = serde_json::json!({
                        "filename": d.filename,
                        "url": format!("/files/{}", d.filename),
                        "hashes": {"sha256": sha256_hex(&d.bytes)},
                        "yanked": d.yanked,
                    });
                    if let Some(rp) = &d.requires_python {
                        file["requires-python"] = rp.clone().into();
                    }
                    if d.pep658 {
                        file["core-metadata"] =
                            serde_json::json!({"sha256": sha256_hex(d.metadata.as_bytes())});
                        file["size"] = d.bytes.len().into();
                    }
                    file
                })
                .collect();
            if files.is_empty() {
                return Response::status(404);
            }
            let page = serde_json::json!({"meta": {"api-version": "1.1"}, "name": project, "files": files});
            return Response::ok(page.to_string())
                .header("Content-Type", "application/vnd.pypi.simple.v1+json");
        }
        for d in dists.iter() {
            if req.path == format!("/files/{}", d.filename) {
                if d.ranges {
                    return ranged(req, &d.bytes);
                }
                return Response::ok(d.bytes.clone());
            }
            if d.pep658 && req.path == format!("/files/{}.metadata", d.filename) {
                return Response::ok(d.metadata.clone());
            }
        }
        Response::status(404)
    })
}

const LINUX: (&str, &str) = ("linux-x86_64", "x86_64-unknown-linux-gnu");
const WINDOWS: (&str, &str) = ("windows-x86_64", "x86_64-pc-windows-msvc");

/// A recipe `demo` under `dir` with `requirements` and targets; interpreters are named by an
/// explicit archive that is never fetched (locking and planning need only its hash).
fn recipe(dir: &Path, python: &str, targets: &[(&str, &str)], requirements: &str) -> PathBuf {
    let root = dir.join("recipes/demo");
    fs::create_dir_all(&root).unwrap();
    let mut text = format!("name = \"demo\"\nversion = \"1.0.0\"\npython = \"{python}\"\n");
    for (name, platform) in targets {
        text.push_str(&format!(
            "\n[[targets]]\nname = \"{name}\"\nplatform = \"{platform}\"\n\
             interpreter = {{ url = \"file:///nonexistent/cpython-{python}-{platform}-install_only.tar.gz\", sha256 = \"{}\" }}\n",
            "0".repeat(64)
        ));
    }
    fs::write(root.join("recipe.toml"), text).unwrap();
    fs::write(root.join("requirements.txt"), requirements).unwrap();
    root
}

fn lock_cmd(store: &Path, server: &Server, recipe: &Path) -> std::process::Command {
    let mut cmd = pystore(store);
    cmd.arg("lock")
        .arg(recipe)
        .env("PYSTORE_INDEX_URL", server.url("/simple/"));
    cmd
}

/// `name -> (version, required_by)` of one target of the recipe's lock.
fn pins(recipe: &Path, target: &str) -> BTreeMap<String, (String, Vec<String>)> {
    let lock = Lock::read(&recipe.join("pystore.lock")).unwrap();
    lock.target(target)
        .unwrap_or_else(|| panic!("no target {target} in the lock"))
        .packages
        .iter()
        .map(|p| {
            let pin = (p.version.to_string(), p.required_by.clone());
            (p.name.to_string(), pin)
        })
        .collect()
}

fn versions(recipe: &Path, target: &str) -> Vec<(String, String)> {
    pins(recipe, target)
        .into_iter()
        .map(|(name, (version, _))| (name, version))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn backtracks_to_the_older_version_that_fits_the_other_constraint() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let mut dists = vec![
        // The newest A wants shared>=2, B wants shared<2: only A 1.0 fits with B.
        pure(w, "alpha", "2.0", &["Requires-Dist: shared>=2"]),
        pure(w, "alpha", "1.5", &["Requires-Dist: shared (>=2.0)"]),
        pure(w, "alpha", "1.0", &["Requires-Dist: shared>=1,<2"]),
        pure(w, "beta", "1.0", &["Requires-Dist: shared<2"]),
        pure(w, "shared", "2.1", &[]),
        pure(w, "shared", "1.4", &[]),
        pure(w, "shared", "1.3", &[]),
    ];
    for d in dists.iter_mut().filter(|d| d.filename.starts_with("alpha")) {
        d.pep658 = true;
    }
    let server = index(Arc::new(Mutex::new(dists)));
    let recipe = recipe(w, "3.12.7", &[LINUX], "alpha\nbeta\n");
    let store = TempStore::new();
    let summary = json(&mut lock_cmd(store.path(), &server, &recipe));
    assert_eq!(summary["changed"], true);
    let pins = pins(&recipe, "linux-x86_64");
    assert_eq!(pins["alpha"].0, "1.0");
    assert_eq!(pins["beta"].0, "1.0");
    assert_eq!(pins["shared"].0, "1.4");
    assert_eq!(pins["alpha"].1, ["requirements.txt:1"]);
    assert_eq!(pins["shared"].1, ["alpha", "beta"]);
    // alpha has PEP 658 files: only the chosen wheel is needed for its size... which the index
    // gave, so no alpha wheel is downloaded at all; beta's wheel was read for its metadata.
    let downloads: Vec<String> = server
        .requests()
        .iter()
        .map(|r| r.path.clone())
        .filter(|p| p.starts_with("/files/") && p.ends_with(".whl"))
        .collect();
    assert!(
        !downloads.iter().any(|p| p.contains("alpha")),
        "{downloads:?}"
    );
    assert!(
        downloads.contains(&"/files/beta-1.0-py3-none-any.whl".to_string()),
        "{downloads:?}"
    );
}

#[test]
fn an_unsatisfiable_conflict_explains_the_chain() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let dists = vec![
        pure(w, "app", "1.0", &["Requires-Dist: shared>=2"]),
        pure(w, "shared", "1.0", &[]),
        pure(w, "shared", "2.0", &[]),
    ];
    let server = index(Arc::new(Mutex::new(dists)));
    let recipe = recipe(w, "3.12.7", &[LINUX], "app\nshared==1.0\n");
    let store = TempStore::new();
    let err = run_fails(&mut lock_cmd(store.path(), &server, &recipe), 1);
    assert!(err.contains("target linux-x86_64"), "{err}");
    assert!(err.contains("cannot resolve the requirements"), "{err}");
    assert!(err.contains("app"), "{err}");
    assert!(err.contains("shared >=2"), "{err}");
    assert!(!recipe.join("pystore.lock").exists(), "no lock on failure");
}

#[test]
fn markers_pick_a_package_per_target_and_extras_pull_only_when_asked() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let mut dists = psycopg_wheels(w);
    dists.extend([
        pure(
            w,
            "web",
            "1.0",
            &[
                "Provides-Extra: fast",
                "Provides-Extra: docs",
                "Requires-Dist: ujson>=5; extra == \"fast\"",
                "Requires-Dist: sphinx; extra == \"docs\"",
                "Requires-Dist: colorama; sys_platform == \"win32\"",
            ],
        ),
        wheel(w, "ujson", "5.10.0", "cp312-cp312-win_amd64", &[]),
        wheel(
            w,
            "ujson",
            "5.10.0",
            "cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64",
            &[],
        ),
        pure(w, "colorama", "0.4.6", &[]),
        pure(w, "sphinx", "8.0", &[]),
    ]);
    for d in dists.iter_mut().filter(|d| d.filename.starts_with("web")) {
        d.pep658 = true;
    }
    let server = index(Arc::new(Mutex::new(dists)));
    let recipe = recipe(
        w,
        "3.12.7",
        &[WINDOWS, LINUX],
        "psycopg2; sys_platform == \"win32\"\n\
         psycopg2-binary ; sys_platform == \"linux\"\n\
         web[fast]\n",
    );
    let store = TempStore::new();
    let exports = w.join("exports");
    run_ok(
        lock_cmd(store.path(), &server, &recipe)
            .arg("--export-requirements")
            .arg(&exports),
    );
    assert_eq!(
        versions(&recipe, "windows-x86_64"),
        pairs(&[
            ("colorama", "0.4.6"),
            ("psycopg2", "2.9.10"),
            ("ujson", "5.10.0"),
            ("web", "1.0")
        ])
    );
    assert_eq!(
        versions(&recipe, "linux-x86_64"),
        pairs(&[
            ("psycopg2-binary", "2.9.10"),
            ("ujson", "5.10.0"),
            ("web", "1.0")
        ])
    );
    let lock = Lock::read(&recipe.join("pystore.lock")).unwrap();
    let wheels = |t: &str| -> Vec<String> {
        lock.target(t)
            .unwrap()
            .packages
            .iter()
            .map(|p| p.wheel.to_string())
            .collect()
    };
    assert!(wheels("windows-x86_64").contains(&"ujson-5.10.0-cp312-cp312-win_amd64.whl".into()));
    assert!(wheels("linux-x86_64")
        .iter()
        .any(|w| w.starts_with("ujson-5.10.0-cp312-cp312-manylinux")));
    assert_eq!(pins(&recipe, "linux-x86_64")["ujson"].1, ["web[fast]"]);
    assert_eq!(
        pins(&recipe, "linux-x86_64")["web"].1,
        ["requirements.txt:3"]
    );
    // The hashed export pins the same wheel per target.
    let exported = fs::read_to_string(exports.join("requirements-windows-x86_64.txt")).unwrap();
    let psycopg2 = &lock.target("windows-x86_64").unwrap().packages[1];
    assert_eq!(psycopg2.name, "psycopg2");
    assert!(
        exported.contains(&format!(
            "psycopg2==2.9.10 \\\n    --hash=sha256:{}\n",
            psycopg2.sha256
        )),
        "{exported}"
    );
    let exported = fs::read_to_string(exports.join("requirements-linux-x86_64.txt")).unwrap();
    assert!(exported.contains("psycopg2-binary==2.9.10"), "{exported}");
    assert!(!exported.contains("psycopg2=="), "{exported}");

    // Once the requirements change, re-resolving one target cannot keep the other's pins.
    fs::write(recipe.join("requirements.txt"), "web\n").unwrap();
    let before = fs::read(recipe.join("pystore.lock")).unwrap();
    let err = run_fails(
        lock_cmd(store.path(), &server, &recipe).args(["--target", "linux-x86_64"]),
        1,
    );
    assert!(
        err.contains("the pins of windows-x86_64 are stale"),
        "{err}"
    );
    assert_eq!(fs::read(recipe.join("pystore.lock")).unwrap(), before);
    run_ok(&mut lock_cmd(store.path(), &server, &recipe));
    assert_eq!(
        versions(&recipe, "windows-x86_64"),
        pairs(&[("colorama", "0.4.6"), ("web", "1.0")])
    );
}

#[test]
fn a_package_with_only_linux_wheels_fails_for_windows_naming_versions_and_tags() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let linux_tag = "cp312-cp312-manylinux_2_17_x86_64";
    let dists = vec![
        wheel(w, "linuxonly", "1.0", linux_tag, &[]),
        wheel(w, "linuxonly", "2.0", linux_tag, &[]),
    ];
    let server = index(Arc::new(Mutex::new(dists)));
    let recipe = recipe(w, "3.12.7", &[WINDOWS, LINUX], "linuxonly\n");
    let store = TempStore::new();
    let err = run_fails(&mut lock_cmd(store.path(), &server, &recipe), 1);
    assert!(err.contains("target windows-x86_64"), "{err}");
    assert!(err.contains("no wheel of linuxonly fits"), "{err}");
    assert!(
        err.contains(
            "2.0: no wheel for the target (linuxonly-2.0-cp312-cp312-manylinux_2_17_x86_64.whl)"
        ),
        "{err}"
    );
    assert!(err.contains("1.0: no wheel"), "{err}");
    assert!(err.contains("cp312-cp312-win_amd64"), "{err}");
    assert!(err.contains("sdists are not built"), "{err}");
    // The Linux target alone locks.
    run_ok(lock_cmd(store.path(), &server, &recipe).args(["--target", "linux-x86_64"]));
    assert_eq!(
        versions(&recipe, "linux-x86_64"),
        pairs(&[("linuxonly", "2.0")])
    );
}

#[test]
fn yanked_versions_and_requires_python_are_skipped_for_the_target() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let mut newer = pure(w, "modern", "3.0", &[]);
    newer.requires_python = Some(">=3.9".into());
    let mut yanked = pure(w, "modern", "2.5", &[]);
    yanked.yanked = true;
    let mut pinned_yanked = pure(w, "pinned", "1.1", &[]);
    pinned_yanked.yanked = true;
    let dists = vec![
        newer,
        yanked,
        pure(w, "modern", "2.0", &[]),
        // Requires-Python only in the metadata, not on the index page.
        pure(w, "metaonly", "2.0", &["Requires-Python: >=3.10"]),
        pure(w, "metaonly", "1.0", &["Requires-Python: >=3.7"]),
        pinned_yanked,
        pure(w, "pinned", "1.2", &[]),
    ];
    let server = index(Arc::new(Mutex::new(dists)));
    let recipe = recipe(w, "3.8.20", &[LINUX], "modern\nmetaonly\npinned==1.1\n");
    let store = TempStore::new();
    run_ok(&mut lock_cmd(store.path(), &server, &recipe));
    assert_eq!(
        versions(&recipe, "linux-x86_64"),
        pairs(&[("metaonly", "1.0"), ("modern", "2.0"), ("pinned", "1.1")])
    );
}

#[test]
fn locking_twice_is_byte_identical_and_realise_refuses_a_stale_lock() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let dists = vec![
        pure(
            w,
            "app",
            "1.0",
            &["Requires-Dist: lib>=1", "Requires-Dist: util"],
        ),
        pure(w, "lib", "1.0", &[]),
        pure(w, "util", "0.1", &[]),
    ];
    let dists = Arc::new(Mutex::new(dists));
    let server = index(dists.clone());
    let recipe = recipe(w, "3.12.7", &[LINUX], "app\n");
    let store = TempStore::new();
    run_ok(&mut lock_cmd(store.path(), &server, &recipe));
    let lock_path = recipe.join("pystore.lock");
    let first = fs::read(&lock_path).unwrap();
    let again = json(&mut lock_cmd(store.path(), &server, &recipe));
    assert_eq!(again["changed"], false);
    assert_eq!(fs::read(&lock_path).unwrap(), first);
    // From another store (nothing cached), the same bytes.
    let other = TempStore::new();
    run_ok(&mut lock_cmd(other.path(), &server, &recipe));
    assert_eq!(fs::read(&lock_path).unwrap(), first);

    // A newer lib appears: the lock keeps 1.0 until asked to upgrade it.
    dists.lock().unwrap().push(pure(w, "lib", "2.0", &[]));
    dists.lock().unwrap().push(pure(w, "util", "0.2", &[]));
    run_ok(&mut lock_cmd(store.path(), &server, &recipe));
    assert_eq!(fs::read(&lock_path).unwrap(), first);
    run_ok(lock_cmd(store.path(), &server, &recipe).args(["--upgrade-package", "LIB"]));
    assert_eq!(
        versions(&recipe, "linux-x86_64"),
        pairs(&[("app", "1.0"), ("lib", "2.0"), ("util", "0.1")])
    );
    run_ok(lock_cmd(store.path(), &server, &recipe).arg("--upgrade"));
    assert_eq!(
        versions(&recipe, "linux-x86_64"),
        pairs(&[("app", "1.0"), ("lib", "2.0"), ("util", "0.2")])
    );

    // The fresh lock plans; the wheels read while locking are already in the store.
    let plan = json(
        pystore(store.path())
            .args(["realise", "--dry-run"])
            .arg(&recipe)
            .env("PYSTORE_INDEX_URL", server.url("/simple/")),
    );
    let status = |name: &str| -> String {
        plan.as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"].as_str().unwrap().starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in {plan}"))["status"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(status("lib-2.0-py3-none-any.whl"), "valid");
    assert_eq!(status("app-1.0-py3-none-any.whl"), "valid");

    // Changing the requirements makes the lock stale: realise refuses it.
    fs::write(recipe.join("requirements.txt"), "app\nutil<0.2\n").unwrap();
    let err = run_fails(
        pystore(store.path())
            .args(["realise", "--dry-run"])
            .arg(&recipe)
            .env("PYSTORE_INDEX_URL", server.url("/simple/")),
        1,
    );
    assert!(err.contains("does not match"), "{err}");
    assert!(err.contains("run `pystore lock"), "{err}");
}

/// Each target's locked wheel file names, sorted.
fn wheels_of(lock: &Lock) -> BTreeMap<String, Vec<String>> {
    lock.targets
        .iter()
        .map(|t| {
            let mut wheels: Vec<String> = t.packages.iter().map(|p| p.wheel.to_string()).collect();
            wheels.sort();
            (t.spec.name.clone(), wheels)
        })
        .collect()
}

/// What PyPA's `packaging.pylock` (an independent PEP 751 implementation) installs from
/// `pylock` for each of the two targets: it validates the file and selects by marker and tag.
fn packaging_selects(python: &Path, pylock: &Path) -> BTreeMap<String, Vec<String>> {
    let script = r#"
import json, sys, tomllib
from packaging.pylock import Pylock
from packaging.tags import Tag
lock = Pylock.from_dict(tomllib.load(open(sys.argv[1], "rb")))
envs = {
    "windows-x86_64": ({"sys_platform": "win32", "platform_machine": "AMD64", "os_name": "nt",
                        "platform_system": "Windows", "python_version": "3.12",
                        "python_full_version": "3.12.7"},
                       [Tag("cp312", "cp312", "win_amd64"), Tag("py3", "none", "any")]),
    "linux-x86_64": ({"sys_platform": "linux", "platform_machine": "x86_64", "os_name": "posix",
                      "platform_system": "Linux", "python_version": "3.12",
                      "python_full_version": "3.12.7"},
                     [Tag("cp312", "cp312", "manylinux_2_17_x86_64"),
                      Tag("cp312", "cp312", "manylinux2014_x86_64"), Tag("py3", "none", "any")]),
}
out = {}
for name, (env, tags) in envs.items():
    out[name] = sorted(dist.filename for _, dist in lock.select(environment=env, tags=tags))
print(json.dumps(out))
"#;
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(pylock)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "packaging.pylock refused the file:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn pylock_export_is_valid_pep_751_and_imports_back_to_the_same_lock() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let mut dists = psycopg_wheels(w);
    dists.extend([
        pure(
            w,
            "web",
            "1.0",
            &[
                "Requires-Dist: colorama; sys_platform == \"win32\"",
                "Requires-Dist: util",
            ],
        ),
        wheel(w, "util", "2.0", "cp312-cp312-win_amd64", &[]),
        wheel(
            w,
            "util",
            "2.0",
            "cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64",
            &[],
        ),
        pure(w, "colorama", "0.4.6", &[]),
    ]);
    let server = index(Arc::new(Mutex::new(dists)));
    let requirements = "psycopg2; sys_platform == \"win32\"\n\
                        psycopg2-binary ; sys_platform == \"linux\"\n\
                        web\n";
    let recipe = recipe(w, "3.12.7", &[WINDOWS, LINUX], requirements);
    let store = TempStore::new();
    let pylock = w.join("out/pylock.toml");
    let out = json(
        lock_cmd(store.path(), &server, &recipe)
            .arg("--export-pylock")
            .arg(&pylock),
    );
    assert_eq!(out["exported"][0].as_str(), Some(pylock.to_str().unwrap()));
    let lock_path = recipe.join("pystore.lock");
    let original = fs::read_to_string(&lock_path).unwrap();
    let lock = Lock::read(&lock_path).unwrap();

    // Another implementation of PEP 751 reads it and installs exactly the locked wheels.
    // (Where that implementation cannot be had, this part says so and the rest still runs.)
    if let Some(python) = crate::common::pytools::python_or_skip("packaging (PEP 751)") {
        let selected = packaging_selects(&python, &pylock);
        assert_eq!(selected, wheels_of(&lock));
        assert_eq!(selected["windows-x86_64"].len(), 4, "{selected:?}");
    }
    // Every wheel has a URL on the index it came from.
    let text = fs::read_to_string(&pylock).unwrap();
    assert_eq!(
        text.matches("url = \"").count(),
        6,
        "one URL per distinct wheel:\n{text}"
    );
    assert!(text.contains(&server.url("/files/colorama-0.4.6-py3-none-any.whl")));

    // Round trip: pystore.lock -> pylock.toml -> pystore.lock, byte for byte, with no index.
    fs::remove_file(&lock_path).unwrap();
    let imported = json(
        pystore(store.path())
            .args(["--offline", "lock"])
            .arg(&recipe)
            .arg("--from-pylock")
            .arg(&pylock),
    );
    assert_eq!(imported["changed"], true);
    assert_eq!(fs::read_to_string(&lock_path).unwrap(), original);

    // The same file as the recipe's own lock: realise plans from it.
    let recipe_toml = recipe.join("recipe.toml");
    let with_pylock = fs::read_to_string(&recipe_toml).unwrap().replacen(
        "python = ",
        "lock = \"pylock.toml\"\npython = ",
        1,
    );
    fs::write(&recipe_toml, with_pylock).unwrap();
    fs::copy(&pylock, recipe.join("pylock.toml")).unwrap();
    let plan = json(
        pystore(store.path())
            .args(["realise", "--dry-run"])
            .arg(&recipe),
    );
    let names: Vec<&str> = plan
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"psycopg2-2.9.10-cp312-cp312-win_amd64.whl"),
        "{names:?}"
    );
    assert!(
        names.contains(&"colorama-0.4.6-py3-none-any.whl"),
        "{names:?}"
    );
    // And `pystore lock` keeps that recipe's lock in PEP 751 form: unchanged bytes.
    let relocked = json(&mut lock_cmd(store.path(), &server, &recipe));
    assert_eq!(relocked["changed"], false, "{relocked}");

    // Changed requirements make that pylock stale.
    fs::write(
        recipe.join("requirements.txt"),
        format!("{requirements}colorama\n"),
    )
    .unwrap();
    let err = run_fails(
        pystore(store.path())
            .args(["realise", "--dry-run"])
            .arg(&recipe),
        1,
    );
    assert!(err.contains("was locked from other requirements"), "{err}");
    assert!(err.contains("run `pystore lock demo`"), "{err}");
}

#[test]
fn a_foreign_pylock_is_checked_against_the_requirements() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let recipe = recipe(w, "3.12.7", &[WINDOWS, LINUX], "web>=1\nutil\n");
    let wheel_entry = |file: &str, digit: char| {
        format!(
            "{{ url = \"http://127.0.0.1:9/{file}\", size = 100, hashes = {{ sha256 = \"{}\" }} }}",
            digit.to_string().repeat(64)
        )
    };
    let foreign = |web_version: &str| {
        format!(
            "lock-version = \"1.0\"\ncreated-by = \"another-tool\"\n\n\
             [[packages]]\nname = \"web\"\nversion = \"{web_version}\"\ndependencies = [{{ name = \"util\" }}]\nwheels = [{}]\n\n\
             [[packages]]\nname = \"util\"\nversion = \"2.0\"\nwheels = [{}, {}]\n",
            wheel_entry(&format!("web-{web_version}-py3-none-any.whl"), '1'),
            wheel_entry("util-2.0-cp312-cp312-win_amd64.whl", '2'),
            wheel_entry("util-2.0-cp312-cp312-manylinux_2_17_x86_64.whl", '3'),
        )
    };
    let store = TempStore::new();
    let file = w.join("pylock.toml");
    fs::write(&file, foreign("0.9")).unwrap();
    let import = |file: &Path| {
        let mut cmd = pystore(store.path());
        cmd.arg("lock").arg(&recipe).arg("--from-pylock").arg(file);
        cmd
    };
    let err = run_fails(&mut import(&file), 1);
    assert!(
        err.contains("target windows-x86_64: web>=1 (")
            && err.contains("requirements.txt:1) is pinned at 0.9"),
        "{err}"
    );
    assert!(!recipe.join("pystore.lock").exists(), "nothing written");

    fs::write(&file, foreign("1.2")).unwrap();
    run_ok(&mut import(&file));
    let lock = Lock::read(&recipe.join("pystore.lock")).unwrap();
    let wheels = wheels_of(&lock);
    assert_eq!(
        wheels["linux-x86_64"],
        [
            "util-2.0-cp312-cp312-manylinux_2_17_x86_64.whl",
            "web-1.2-py3-none-any.whl"
        ]
    );
    assert_eq!(
        wheels["windows-x86_64"],
        [
            "util-2.0-cp312-cp312-win_amd64.whl",
            "web-1.2-py3-none-any.whl"
        ]
    );
    assert_eq!(
        lock.packages_of("linux-x86_64")["util"].required_by,
        ["web"]
    );
    // The imported lock is this recipe's: realise plans from it without a stale-lock error.
    run_ok(
        pystore(store.path())
            .args(["realise", "--dry-run"])
            .arg(&recipe),
    );
}

#[test]
fn without_pep_658_metadata_is_read_by_ranges_not_by_downloading_the_wheel() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    // A wheel of about 2 MiB that does not compress, whose server serves ranges.
    let mut x: u32 = 1;
    let noise: Vec<u8> = (0..2_000_000)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (x >> 16) as u8
        })
        .collect();
    let big = {
        let builder = WheelBuilder::new("big", "1.0", "py3-none-any")
            .file("big/__init__.py", b"")
            .file("big/noise.bin", &noise)
            .metadata("Requires-Dist: small");
        let path = builder.build(w);
        Dist {
            filename: builder.file_name(),
            bytes: fs::read(path).unwrap(),
            metadata: builder.metadata_text(),
            yanked: false,
            requires_python: None,
            pep658: false,
            ranges: true,
        }
    };
    let (size, sha256) = (big.bytes.len() as u64, sha256_hex(&big.bytes));
    let server = index(Arc::new(Mutex::new(vec![
        big,
        pure(w, "small", "1.0", &[]),
    ])));
    let recipe = recipe(w, "3.12.7", &[LINUX], "big\n");
    let store = TempStore::new();
    run_ok(&mut lock_cmd(store.path(), &server, &recipe));
    let lock = Lock::read(&recipe.join("pystore.lock")).unwrap();
    let pins = lock.packages_of("linux-x86_64");
    assert_eq!(
        pins["small"].required_by,
        ["big"],
        "big's METADATA was read"
    );
    assert_eq!(
        (pins["big"].size, pins["big"].sha256.to_string()),
        (size, sha256)
    );
    // Every request for the wheel asked for a range, and together far less than the wheel.
    let asked: Vec<String> = server
        .requests()
        .iter()
        .filter(|r| r.path == "/files/big-1.0-py3-none-any.whl")
        .map(|r| r.header("range").unwrap_or("(whole file)").to_owned())
        .collect();
    let bytes: u64 = asked
        .iter()
        .map(
            |r| match r.strip_prefix("bytes=").and_then(|r| r.split_once('-')) {
                Some(("", n)) => n.parse::<u64>().unwrap(),
                Some((a, b)) => b.parse::<u64>().unwrap() - a.parse::<u64>().unwrap() + 1,
                None => panic!("a request without a range: {asked:?}"),
            },
        )
        .sum();
    assert!(!asked.is_empty() && bytes < size / 10, "{asked:?}");
    // So the wheel is not in the store yet: realise will fetch it (and check size and sha256).
    let plan = json(
        pystore(store.path())
            .args(["realise", "--dry-run"])
            .arg(&recipe),
    );
    let status = plan
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "big-1.0-py3-none-any.whl")
        .map(|e| e["status"].clone());
    assert_eq!(status, Some(serde_json::json!("fetch")), "{plan}");
}

#[test]
fn pages_and_metadata_of_dependencies_are_fetched_in_parallel_with_the_same_result() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let libs: Vec<String> = (0..8).map(|i| format!("lib{i}")).collect();
    let requires: Vec<String> = libs.iter().map(|l| format!("Requires-Dist: {l}")).collect();
    let requires: Vec<&str> = requires.iter().map(String::as_str).collect();
    let make_index = || {
        let mut dists = vec![pure(w, "app", "1.0", &requires)];
        for (i, lib) in libs.iter().enumerate() {
            for version in ["1.0", "2.0"] {
                let mut dist = pure(w, lib, version, &[]);
                // Half with PEP 658 files, half read from the wheel by ranges.
                dist.pep658 = i % 2 == 0;
                dist.ranges = true;
                dists.push(dist);
            }
        }
        slow_index(
            Arc::new(Mutex::new(dists)),
            std::time::Duration::from_millis(60),
        )
    };
    let server = make_index();
    let recipe = recipe(w, "3.12.7", &[LINUX], "app\n");
    let lock_path = recipe.join("pystore.lock");
    let store = TempStore::new();
    run_ok(lock_cmd(store.path(), &server, &recipe).args(["-j", "1"]));
    let serial = fs::read(&lock_path).unwrap();
    // A closing connection may still count while the next one opens: 2 is "one at a time".
    assert!(
        server.max_concurrency() <= 2,
        "{}",
        server.max_concurrency()
    );
    assert_eq!(versions(&recipe, "linux-x86_64").len(), 9);
    let parallel_server = make_index();
    fs::remove_file(&lock_path).unwrap();
    let other = TempStore::new();
    run_ok(lock_cmd(other.path(), &parallel_server, &recipe).args(["-j", "4"]));
    assert_eq!(fs::read(&lock_path).unwrap(), serial, "same lock at -j 4");
    assert!(
        parallel_server.max_concurrency() >= 3,
        "requests overlapped: {}",
        parallel_server.max_concurrency()
    );
    // No page or metadata was asked for twice.
    let requests = parallel_server.requests();
    for path in ["/simple/lib3/", "/files/lib2-2.0-py3-none-any.whl.metadata"] {
        assert_eq!(
            requests.iter().filter(|r| r.path == path).count(),
            1,
            "{path}"
        );
    }
}

/// The wheels of the import and `--no-index` tests, built into `dir`: psycopg for both
/// targets, `web` needing `util` (and `colorama` on Windows), `util` for each platform in two
/// versions, `colorama` pure.
fn web_wheels(dir: &Path) -> Vec<Dist> {
    fs::create_dir_all(dir).unwrap();
    let mut dists = psycopg_wheels(dir);
    dists.extend([
        pure(
            dir,
            "web",
            "1.0",
            &[
                "Requires-Dist: colorama; sys_platform == \"win32\"",
                "Requires-Dist: util>=1.5",
            ],
        ),
        wheel(dir, "util", "1.0", "cp312-cp312-win_amd64", &[]),
        wheel(dir, "util", "2.0", "cp312-cp312-win_amd64", &[]),
        wheel(
            dir,
            "util",
            "2.0",
            "cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64",
            &[],
        ),
        pure(dir, "colorama", "0.4.6", &[]),
    ]);
    // Half the projects offer PEP 658 metadata (with sizes), half are read from the wheel.
    for (i, dist) in dists.iter_mut().enumerate() {
        dist.pep658 = i % 2 == 0;
    }
    dists
}

const WEB_REQUIREMENTS: &str = "psycopg2; sys_platform == \"win32\"\n\
                                psycopg2-binary ; sys_platform == \"linux\"\n\
                                web\n";

#[test]
fn no_index_resolves_from_wheelhouses_alone_without_a_request() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    // Two wheelhouses, as pip's --find-links takes them; a stray file is ignored.
    let first = w.join("wheelhouse");
    let second = w.join("more-wheels");
    let mut dists = web_wheels(&first);
    fs::create_dir_all(&second).unwrap();
    fs::rename(
        first.join("colorama-0.4.6-py3-none-any.whl"),
        second.join("colorama-0.4.6-py3-none-any.whl"),
    )
    .unwrap();
    fs::write(first.join("README.txt"), "not a wheel").unwrap();
    for dist in &mut dists {
        dist.ranges = true;
    }
    let server = index(Arc::new(Mutex::new(dists)));
    let recipe = recipe(w, "3.12.7", &[WINDOWS, LINUX], WEB_REQUIREMENTS);
    let lock_path = recipe.join("pystore.lock");

    // The reference: the same wheels locked from an index.
    run_ok(&mut lock_cmd(TempStore::new().path(), &server, &recipe));
    let from_index = fs::read_to_string(&lock_path).unwrap();
    fs::remove_file(&lock_path).unwrap();
    let asked = server.requests().len();

    // Air-gapped: an index is configured (PYSTORE_INDEX_URL) but --no-index keeps it out, and
    // --offline is accepted.
    let store = TempStore::new();
    let no_index = || {
        let mut cmd = lock_cmd(store.path(), &server, &recipe);
        cmd.arg("--no-index")
            .arg("--offline")
            .arg("--find-links")
            .arg(&first)
            .arg("--find-links")
            .arg(&second);
        cmd
    };
    let out = json(&mut no_index());
    assert_eq!(out["changed"], true, "{out}");
    assert_eq!(server.requests().len(), asked, "no request to the index");
    assert_eq!(
        fs::read_to_string(&lock_path).unwrap(),
        from_index,
        "the same pins, sizes, hashes and reasons as from the index"
    );
    assert_eq!(
        versions(&recipe, "windows-x86_64"),
        pairs(&[
            ("colorama", "0.4.6"),
            ("psycopg2", "2.9.10"),
            ("util", "2.0"),
            ("web", "1.0")
        ])
    );
    // Nothing was copied into the store: local wheels are read where they lie.
    assert_eq!(entries_and_tmp(store.path()).0, Vec::<String>::new());

    // A project no wheelhouse has: named, with the wheelhouses; the lock is left as it was.
    fs::write(
        recipe.join("requirements.txt"),
        format!("{WEB_REQUIREMENTS}absent>=1\n"),
    )
    .unwrap();
    let err = run_fails(&mut no_index(), 1);
    assert!(
        err.contains("absent: no wheel of absent in the wheelhouses (")
            && err.contains(first.to_str().unwrap())
            && err.contains(second.to_str().unwrap())
            && err.contains("--no-index"),
        "{err}"
    );
    assert_eq!(fs::read_to_string(&lock_path).unwrap(), from_index);
    assert_eq!(server.requests().len(), asked, "still no request");

    // --no-index needs a wheelhouse; an unreadable one is named.
    let err = run_fails(
        lock_cmd(store.path(), &server, &recipe).arg("--no-index"),
        1,
    );
    assert!(err.contains("pass --find-links DIR"), "{err}");
    let err = run_fails(
        lock_cmd(store.path(), &server, &recipe)
            .args(["--no-index", "--find-links"])
            .arg(w.join("nowhere")),
        1,
    );
    assert!(
        err.contains("cannot read the wheelhouse") && err.contains("nowhere"),
        "{err}"
    );
}

/// `pystore lock RECIPE --from-requirements T=FILE...` (more arguments after).
fn import_cmd(store: &Path, recipe: &Path, imports: &[(&str, &Path)]) -> std::process::Command {
    let mut cmd = pystore(store);
    cmd.arg("lock").arg(recipe);
    for (target, file) in imports {
        cmd.arg("--from-requirements")
            .arg(format!("{target}={}", file.display()));
    }
    cmd
}

#[test]
fn exported_requirements_import_back_to_the_identical_lock() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let wheelhouse = w.join("wheelhouse");
    let server = index(Arc::new(Mutex::new(web_wheels(&wheelhouse))));
    let recipe = recipe(w, "3.12.7", &[WINDOWS, LINUX], WEB_REQUIREMENTS);
    let lock_path = recipe.join("pystore.lock");
    let exported = w.join("exported");
    run_ok(
        lock_cmd(TempStore::new().path(), &server, &recipe)
            .arg("--export-requirements")
            .arg(&exported),
    );
    let original = fs::read_to_string(&lock_path).unwrap();
    let windows_file = exported.join("requirements-windows-x86_64.txt");
    let linux_file = exported.join("requirements-linux-x86_64.txt");
    let both = [
        ("windows-x86_64", windows_file.as_path()),
        ("linux-x86_64", linux_file.as_path()),
    ];

    // From the index: file names and sizes found by hash on its pages.
    fs::remove_file(&lock_path).unwrap();
    let out = json(
        import_cmd(TempStore::new().path(), &recipe, &both)
            .env("PYSTORE_INDEX_URL", server.url("/simple/")),
    );
    assert_eq!(out["changed"], true, "{out}");
    assert_eq!(fs::read_to_string(&lock_path).unwrap(), original);

    // From a wheelhouse, offline: no request at all, same bytes.
    fs::remove_file(&lock_path).unwrap();
    let asked = server.requests().len();
    let store = TempStore::new();
    run_ok(
        import_cmd(store.path(), &recipe, &both)
            .arg("--offline")
            .arg("--find-links")
            .arg(&wheelhouse)
            .env("PYSTORE_INDEX_URL", server.url("/simple/")),
    );
    assert_eq!(fs::read_to_string(&lock_path).unwrap(), original);
    assert_eq!(server.requests().len(), asked, "no request to the index");

    // A wheelhouse with some of the wheels: the index is asked only about the others.
    let partial = w.join("partial");
    fs::create_dir_all(&partial).unwrap();
    let web = "web-1.0-py3-none-any.whl";
    fs::copy(wheelhouse.join(web), partial.join(web)).unwrap();
    fs::remove_file(&lock_path).unwrap();
    let (web_pages, util_pages) = (server.count("/simple/web/"), server.count("/simple/util/"));
    run_ok(
        import_cmd(TempStore::new().path(), &recipe, &both)
            .arg("--find-links")
            .arg(&partial)
            .env("PYSTORE_INDEX_URL", server.url("/simple/")),
    );
    assert_eq!(fs::read_to_string(&lock_path).unwrap(), original);
    assert_eq!(
        server.count("/simple/web/"),
        web_pages,
        "web is in the wheelhouse"
    );
    assert_eq!(
        server.count("/simple/util/"),
        util_pages + 1,
        "util's page is asked for once, for both targets"
    );

    // One target named: the other keeps its pins (the lock matches the requirements).
    let out = json(
        import_cmd(store.path(), &recipe, &both[1..])
            .arg("--find-links")
            .arg(&wheelhouse),
    );
    assert_eq!(out["changed"], false, "{out}");
    // ... but not when the requirements changed since: then every target must be named.
    fs::write(
        recipe.join("requirements.txt"),
        format!("{WEB_REQUIREMENTS}# reformatted\nutil>=1\n"),
    )
    .unwrap();
    let err = run_fails(
        import_cmd(store.path(), &recipe, &both[1..])
            .arg("--find-links")
            .arg(&wheelhouse),
        1,
    );
    assert!(
        err.contains("so the pins of windows-x86_64 are stale too"),
        "{err}"
    );
    run_ok(
        import_cmd(store.path(), &recipe, &both)
            .arg("--find-links")
            .arg(&wheelhouse),
    );
    assert_ne!(fs::read_to_string(&lock_path).unwrap(), original);
    assert_eq!(
        pins(&recipe, "linux-x86_64")["util"].1,
        ["requirements.txt:5", "web"],
        "reasons recorded as `pystore lock` records them"
    );
}

#[test]
fn a_hashed_file_that_is_not_a_lock_of_the_target_is_refused_naming_the_line() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let wheelhouse = w.join("wheelhouse");
    let dists = web_wheels(&wheelhouse);
    let sha = |file: &str| {
        let dist = dists.iter().find(|d| d.filename == file).unwrap();
        sha256_hex(&dist.bytes)
    };
    let web = format!(
        "web==1.0 \\\n    --hash=sha256:{}\n    # via -r requirements.in\n",
        sha("web-1.0-py3-none-any.whl")
    );
    let util_win = sha("util-2.0-cp312-cp312-win_amd64.whl");
    let util_linux = sha("util-2.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl");
    let psycopg = format!(
        "psycopg2-binary==2.9.10 --hash=sha256:{}\n",
        sha("psycopg2_binary-2.9.10-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")
    );
    let recipe = recipe(w, "3.12.7", &[WINDOWS, LINUX], WEB_REQUIREMENTS);
    let store = TempStore::new();
    let file = w.join("requirements.lock.txt");
    let import = |text: &str| {
        fs::write(&file, text).unwrap();
        run_fails(
            import_cmd(store.path(), &recipe, &[("linux-x86_64", &file)])
                .arg("--offline")
                .arg("--find-links")
                .arg(&wheelhouse),
            1,
        )
    };
    let name = file.display().to_string();
    let cases = [
        (
            format!("{web}util>=2 --hash=sha256:{util_linux}\n{psycopg}"),
            format!("{name}:4: util>=2 is not pinned: every line"),
        ),
        (
            format!("{web}util==2.0\n{psycopg}"),
            format!("{name}:4: util==2.0 has no --hash=sha256: value"),
        ),
        (
            format!("{web}util==2.0 --hash=sha256:{}\n{psycopg}", "0".repeat(64)),
            format!("{name}:4: util==2.0: no file with any of its 1 sha256 hashes in the wheelhouses ("),
        ),
        (
            format!("{web}util==2.0 --hash=sha256:{util_win}\n{psycopg}"),
            format!("{name}:4: util==2.0: the files with its hashes (util-2.0-cp312-cp312-win_amd64.whl) do not fit target linux-x86_64"),
        ),
        (
            format!("{web}{psycopg}"),
            "pins no util for target linux-x86_64, though the requirements need it".to_owned(),
        ),
        (
            format!("{web}util==2.0 --hash=sha256:{util_linux}\n{psycopg}colorama==0.4.6 --hash=sha256:{}\n", sha("colorama-0.4.6-py3-none-any.whl")),
            format!("{name}:6: colorama==0.4.6 is not needed by demo's requirements for target linux-x86_64"),
        ),
        (
            format!("{web}util==1.0 --hash=sha256:{}\n{psycopg}", sha("util-1.0-cp312-cp312-win_amd64.whl")),
            format!("{name}:4: util==1.0: the files with its hashes (util-1.0-cp312-cp312-win_amd64.whl) do not fit"),
        ),
        (
            format!("--index-url http://127.0.0.1:9/simple\n-r more.txt\n{web}"),
            format!("{name}:2: -r is not supported"),
        ),
    ];
    for (text, expected) in &cases {
        let err = import(text);
        assert!(
            err.contains(expected.as_str()),
            "{text}\nexpected {expected:?} in:\n{err}"
        );
        assert!(
            !recipe.join("pystore.lock").exists(),
            "nothing written:\n{text}"
        );
    }
    // A pin at a version the requirements exclude: the resolver says which.
    fs::write(
        recipe.join("requirements.txt"),
        format!("{WEB_REQUIREMENTS}util<2\n"),
    )
    .unwrap();
    let err = import(&format!(
        "{web}util==2.0 --hash=sha256:{util_linux}\n{psycopg}"
    ));
    assert!(
        err.contains("target linux-x86_64: the pins do not satisfy demo's requirements")
            && err.contains("util"),
        "{err}"
    );
    assert!(!recipe.join("pystore.lock").exists());
    // Nothing was added to the store by any refusal.
    assert_eq!(entries_and_tmp(store.path()), (Vec::new(), Vec::new()));
}

/// `tool`'s executable in the tests' provisioned Python environment (`common::pytools`), or
/// `None` after saying on stderr why the calling test skips (never in CI).
fn python_tool(tool: &str) -> Option<PathBuf> {
    let python = crate::common::pytools::python_or_skip(&format!("{tool} (the format it writes)"))?;
    Some(python.with_file_name(tool))
}

/// Runs a Python packaging tool with no configuration of the machine's.
fn run_tool(cmd: &mut std::process::Command, home: &Path) -> String {
    for (key, _) in std::env::vars_os() {
        let name = key.to_string_lossy();
        if name.starts_with("PIP_") || name.starts_with("UV_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("HOME", home)
        .env("PIP_CONFIG_FILE", "/dev/null")
        .env("XDG_CONFIG_HOME", home.join("config"));
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn uv_pip_compile_output_imports_as_the_lock_pystore_writes() {
    let Some(uv) = python_tool("uv") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let server = index(Arc::new(Mutex::new(web_wheels(&w.join("wheelhouse")))));
    let recipe = recipe(w, "3.12.7", &[WINDOWS, LINUX], WEB_REQUIREMENTS);
    let lock_path = recipe.join("pystore.lock");
    let store = TempStore::new();
    run_ok(&mut lock_cmd(store.path(), &server, &recipe));
    let resolved = fs::read_to_string(&lock_path).unwrap();
    fs::remove_file(&lock_path).unwrap();

    // uv resolves each target's platform itself and lists every file of each pinned version.
    let mut imports = Vec::new();
    for (target, platform) in [
        ("windows-x86_64", "x86_64-pc-windows-msvc"),
        ("linux-x86_64", "x86_64-manylinux_2_17"),
    ] {
        let out = w.join(format!("uv-{target}.txt"));
        run_tool(
            std::process::Command::new(&uv)
                .args(["pip", "compile", "--no-config", "--generate-hashes"])
                .args(["--emit-index-url", "--python-version", "3.12"])
                .args(["--python-platform", platform, "--index-url"])
                .arg(server.url("/simple/"))
                .arg("--cache-dir")
                .arg(w.join("uv-cache"))
                .arg("-o")
                .arg(&out)
                .arg(recipe.join("requirements.txt")),
            w,
        );
        let text = fs::read_to_string(&out).unwrap();
        assert!(
            text.contains("--index-url") && text.contains("# via") && text.contains(" \\\n"),
            "uv's format: option lines, continuations, comments:\n{text}"
        );
        imports.push((target, out));
    }
    let util = fs::read_to_string(&imports[0].1).unwrap();
    assert!(
        util.matches("--hash=sha256:").count() > 4,
        "every file of a pinned version is listed:\n{util}"
    );
    let imports: Vec<(&str, &Path)> = imports.iter().map(|(t, f)| (*t, f.as_path())).collect();
    run_ok(
        import_cmd(store.path(), &recipe, &imports)
            .env("PYSTORE_INDEX_URL", server.url("/simple/")),
    );
    assert_eq!(fs::read_to_string(&lock_path).unwrap(), resolved);
}

#[test]
fn pip_compile_output_imports_as_the_lock_pystore_writes() {
    let Some(pip_compile) = python_tool("pip-compile") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    // pip-compile resolves for the Python running it, so these wheels fit any CPython 3 on
    // Linux; `util` also has a Windows wheel, whose hash pip-compile lists too.
    let wheelhouse = w.join("wheelhouse");
    fs::create_dir_all(&wheelhouse).unwrap();
    let dists = vec![
        pure(
            &wheelhouse,
            "web",
            "1.0",
            &[
                "Requires-Dist: colorama; sys_platform == \"win32\"",
                "Requires-Dist: util>=1.5",
            ],
        ),
        pure(&wheelhouse, "util", "1.0", &[]),
        pure(&wheelhouse, "util", "2.0", &[]),
        wheel(&wheelhouse, "util", "2.0", "cp312-cp312-win_amd64", &[]),
        pure(&wheelhouse, "colorama", "0.4.6", &[]),
    ];
    let server = index(Arc::new(Mutex::new(dists)));
    let recipe = recipe(w, "3.12.7", &[LINUX], "web\n");
    let lock_path = recipe.join("pystore.lock");
    let store = TempStore::new();
    run_ok(&mut lock_cmd(store.path(), &server, &recipe));
    let resolved = fs::read_to_string(&lock_path).unwrap();
    fs::remove_file(&lock_path).unwrap();

    let out = w.join("pip-compile.txt");
    run_tool(
        std::process::Command::new(&pip_compile)
            .args([
                "--no-config",
                "--quiet",
                "--generate-hashes",
                "--emit-index-url",
            ])
            .arg("--index-url")
            .arg(server.url("/simple/"))
            .arg("--cache-dir")
            .arg(w.join("pip-cache"))
            .arg("--output-file")
            .arg(&out)
            .arg(recipe.join("requirements.txt")),
        w,
    );
    let text = fs::read_to_string(&out).unwrap();
    assert!(
        text.contains("--index-url") && text.contains("# via") && text.contains(" \\\n"),
        "pip-compile's format: option lines, continuations, comments:\n{text}"
    );
    assert_eq!(
        text.matches("--hash=sha256:").count(),
        3,
        "both util 2.0 wheels are listed:\n{text}"
    );
    // From the wheelhouse, offline: the Windows wheel's hash is listed but does not fit Linux.
    run_ok(
        import_cmd(store.path(), &recipe, &[("linux-x86_64", &out)])
            .arg("--offline")
            .arg("--find-links")
            .arg(&wheelhouse),
    );
    assert_eq!(fs::read_to_string(&lock_path).unwrap(), resolved);
}
