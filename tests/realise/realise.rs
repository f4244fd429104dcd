//! `pystore realise` end to end: an interpreter archive made from the machine's Debian
//! python3.11, wheels built by the test and served by a loopback index, a lock written by the
//! test; the ZIP must work unzipped anywhere, and realising again must do nothing.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use crate::pyfixtures::WheelBuilder;
use crate::recipe_fixtures::{
    demo_wheels as wheels, index_server as index, recipe, recipe_for, windows_archive, workspace,
    Spec,
};

#[test]
fn realises_a_zip_that_works_unzipped_anywhere_and_then_does_nothing() {
    let (work, wheel_dir) = workspace();
    let wheels = wheels(&wheel_dir);
    let server = index(&wheels);
    let recipe = recipe(work.path(), &wheels, &["app_core", "greet_lib"]);
    let store = TempStore::new();
    let out_dir = work.path().join("out");

    let realise = |extra: &[&str]| {
        let mut cmd = pystore(store.path());
        cmd.args(["--json", "realise"])
            .arg(&recipe)
            .args(extra)
            .env("PYSTORE_INDEX_URL", server.url("/simple/"));
        let out = run(&mut cmd);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let first = realise(&["--out", out_dir.to_str().unwrap()]);
    let zip = PathBuf::from(first[0]["zip"].as_str().unwrap());
    assert!(zip
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .ends_with("-demo-1.0.0-t.zip"));
    let copied = out_dir.join("demo-1.0.0-t.zip");
    assert_eq!(fs::read(&copied).unwrap(), fs::read(&zip).unwrap());
    assert!(
        store.path().join("roots/demo-t").exists(),
        "a gc root keeps it"
    );

    // Unzipped anywhere, the bundle's own python imports the packages from the unzipped tree,
    // with an empty environment and isolated mode.
    let unpacked = work.path().join("somewhere/else");
    fs::create_dir_all(&unpacked).unwrap();
    let status = Command::new("unzip")
        .arg("-q")
        .arg(&copied)
        .arg("-d")
        .arg(&unpacked)
        .status()
        .unwrap();
    assert!(status.success());
    let out = Command::new("env")
        .arg("-i")
        .arg(unpacked.join("bin/python3.11"))
        .args(["-I", "-c", "import app_core, greet_lib, sys; print(app_core.MESSAGE); print(app_core.__file__); print(greet_lib.__file__); print(sys.prefix)"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "hello bundle");
    let site = unpacked.join("lib/python3.11/site-packages");
    assert_eq!(
        lines[1],
        site.join("app_core/__init__.py").to_str().unwrap()
    );
    assert_eq!(
        lines[2],
        site.join("greet_lib/__init__.py").to_str().unwrap()
    );
    assert_eq!(lines[3], unpacked.to_str().unwrap());
    // The console script works too, relocated.
    let greet = Command::new("env")
        .arg("-i")
        .arg(unpacked.join("bin/greet"))
        .output()
        .unwrap();
    assert!(
        greet.status.success(),
        "{}",
        String::from_utf8_lossy(&greet.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&greet.stdout),
        "hello from the script\n"
    );
    // The manifest lists every package with its wheel hash.
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(unpacked.join("pystore-manifest.json")).unwrap()).unwrap();
    let packages: Vec<&str> = manifest["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(packages, ["app-core", "greet-lib"]);
    assert_eq!(manifest["target"]["platform"], "x86_64-unknown-linux-gnu");

    // Again: no request at all, nothing built, same paths.
    let before = server.requests().len();
    let entries_before = list(&store.path().join("entries"));
    let second = realise(&[]);
    assert_eq!(second[0]["zip"], first[0]["zip"]);
    assert_eq!(server.requests().len(), before, "no request");
    assert_eq!(
        list(&store.path().join("entries")),
        entries_before,
        "nothing new built"
    );
    // A dry run says everything is valid.
    let plan = realise(&["--dry-run"]);
    assert!(
        plan.as_array()
            .unwrap()
            .iter()
            .all(|e| e["status"] == "valid"),
        "{plan}"
    );
}

#[test]
fn a_stale_or_missing_lock_is_refused_with_what_to_do() {
    let (work, wheel_dir) = workspace();
    let wheels = wheels(&wheel_dir);
    let recipe = recipe(work.path(), &wheels, &[]);
    let store = TempStore::new();
    fs::write(recipe.join("requirements.txt"), "app-core\nsomething-new\n").unwrap();
    let err = run_fails(pystore(store.path()).arg("realise").arg(&recipe), 1);
    assert!(
        err.contains("does not match demo's requirements")
            && err.contains("run `pystore lock demo`"),
        "{err}"
    );
    fs::remove_file(recipe.join("pystore.lock")).unwrap();
    let err = run_fails(pystore(store.path()).arg("realise").arg(&recipe), 1);
    assert!(
        err.contains("demo has no lock at") && err.contains("run `pystore lock demo`"),
        "{err}"
    );
    let err = run_fails(pystore(store.path()).args(["realise", "no-such-recipe"]), 1);
    assert!(err.contains("no recipe \"no-such-recipe\""), "{err}");
    assert!(list(&store.path().join("entries")).is_empty());
}

fn zip_sha256(path: &Path) -> String {
    sha256_hex(&fs::read(path).unwrap())
}

const ZIP_ORACLE: &str = r#"
import json, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
infos = z.infolist()
print(json.dumps({
    "names": [i.filename for i in infos],
    "times": sorted({str(i.date_time) for i in infos}),
    "extras": sum(len(i.extra) for i in infos),
    "descriptors": sum(i.flag_bits & 8 for i in infos),
    "bad": z.testzip(),
}))
"#;

fn zip_report(path: &Path) -> serde_json::Value {
    let out = Command::new("python3")
        .arg("-c")
        .arg(ZIP_ORACLE)
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_same_recipe_gives_the_same_zip_whatever_the_environment() {
    let (work, wheel_dir) = workspace();
    let wheels = wheels(&wheel_dir);
    let server = index(&wheels);
    let recipe = recipe(work.path(), &wheels, &["app_core"]);

    // A contaminated host Python: a module named like a bundled one on PYTHONPATH, a user-site
    // sitecustomize that raises, and a PYTHONHOME pointing nowhere.
    let poison = work.path().join("poison");
    fs::create_dir_all(poison.join("app_core")).unwrap();
    fs::write(
        poison.join("app_core/__init__.py"),
        "raise SystemExit('host module leaked in')\n",
    )
    .unwrap();
    let home_b = work.path().join("home-b");
    let user_site = home_b.join(".local/lib/python3.11/site-packages");
    fs::create_dir_all(&user_site).unwrap();
    fs::write(
        user_site.join("sitecustomize.py"),
        "raise RuntimeError('user site leaked in')\n",
    )
    .unwrap();

    let variants: [(&str, &str, &str, &str, &str, bool); 2] = [
        ("GMT+12", "022", "C", "1", "home-a", false),
        ("GMT-14", "077", "C.UTF-8", "4", "home-b", true),
    ];
    let mut shas = Vec::new();
    for (i, (tz, umask, lang, jobs, home, contaminate)) in variants.iter().enumerate() {
        let store = work.path().join(format!("store-{i}"));
        let cwd = work.path().join(format!("cwd-{i}"));
        fs::create_dir_all(&cwd).unwrap();
        fs::create_dir_all(work.path().join(home)).unwrap();
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!(
                "umask {umask} && cd \"$1\" && shift && exec \"$@\""
            ))
            .arg("sh")
            .arg(&cwd)
            .arg(bin())
            .arg("--store")
            .arg(&store)
            .args(["-j", jobs, "--json", "realise"])
            .arg(&recipe)
            .env("TZ", tz)
            .env("LANG", lang)
            .env("LC_ALL", lang)
            .env("HOME", work.path().join(home))
            .env("PYSTORE_INDEX_URL", server.url("/simple/"))
            .env("PIP_CONFIG_FILE", "/dev/null");
        if *contaminate {
            cmd.env("PYTHONPATH", &poison)
                .env("PYTHONHOME", "/nonexistent")
                .env("PYTHONUSERBASE", home_b.join(".local"));
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        shas.push(zip_sha256(Path::new(value[0]["zip"].as_str().unwrap())));
        make_writable(&store);
    }
    assert_eq!(shas[0], shas[1], "bit-identical ZIPs");

    // And the ZIP is in canonical form, as an independent reader sees it.
    let store = work.path().join("store-0");
    let zip = fs::read_dir(store.join("entries"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_str().unwrap().ends_with("-demo-1.0.0-t.zip"))
        .unwrap();
    let report = zip_report(&zip);
    assert_eq!(report["bad"], serde_json::Value::Null);
    assert_eq!(
        report["times"],
        serde_json::json!(["(1980, 1, 1, 0, 0, 0)"]),
        "one timestamp"
    );
    assert_eq!(report["extras"], 0, "no extra fields");
    assert_eq!(report["descriptors"], 0, "no data descriptors");
    let names: Vec<&str> = report["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    let mut sorted = names.clone();
    sorted.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    assert_eq!(names, sorted, "names in byte order");
    assert!(names.contains(&"pystore-manifest.json"));

    // SOURCE_DATE_EPOCH sets the one timestamp.
    let mut cmd = pystore(&store);
    let out = run_ok(
        cmd.args(["--json", "realise"])
            .arg(&recipe)
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .env("PYSTORE_INDEX_URL", server.url("/simple/")),
    );
    let value: serde_json::Value = serde_json::from_str(&out).unwrap();
    let report = zip_report(Path::new(value[0]["zip"].as_str().unwrap()));
    assert_eq!(
        report["times"],
        serde_json::json!(["(2023, 11, 14, 22, 13, 20)"])
    );
}

#[test]
fn a_windows_bundle_is_assembled_on_linux() {
    let (work, wheel_dir) = workspace();
    let native = WheelBuilder::new("fast_ext", "1.2", "cp312-cp312-win_amd64");
    let info = native.dist_info();
    let native = native
        .file("fast_ext/__init__.py", b"from ._speed import go\n")
        .file(
            "fast_ext/_speed.cp312-win_amd64.pyd",
            // A real PE importing only system DLLs (static validation reads its imports).
            &std::fs::read(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/src/python/data/launchers/t64.exe"
            ))
            .unwrap(),
        )
        .file(
            &format!("{info}/entry_points.txt"),
            b"[console_scripts]\nfast = fast_ext:go\n",
        );
    let app = WheelBuilder::new("app_core", "0.3", "py3-none-any")
        .file("app_core/__init__.py", b"import fast_ext\n");
    let wheels = vec![native.build(&wheel_dir), app.build(&wheel_dir)];
    let archive = windows_archive(work.path());
    let spec = Spec {
        python: "3.12.7",
        platform: "x86_64-pc-windows-msvc",
        archive: &archive,
    };
    let recipe = recipe_for(work.path(), &spec, &wheels, &["app_core"]);
    let store = TempStore::new();
    let out = run_ok(
        pystore(store.path())
            .args(["--json", "--find-links"])
            .arg(&wheel_dir)
            .arg("realise")
            .arg(&recipe),
    );
    let value: serde_json::Value = serde_json::from_str(&out).unwrap();
    let report = zip_report(Path::new(value[0]["zip"].as_str().unwrap()));
    let names: Vec<&str> = report["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    for expected in [
        "python.exe",
        "Lib/os.py",
        "Lib/site-packages/fast_ext/_speed.cp312-win_amd64.pyd",
        "Lib/site-packages/app_core/__init__.py",
        "Lib/site-packages/fast_ext-1.2.dist-info/RECORD",
        "Scripts/fast.exe",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("lib/python") || n.starts_with("bin/")),
        "no Unix layout"
    );
}

#[test]
fn two_packages_writing_one_path_differently_fail_naming_both() {
    let (work, wheel_dir) = workspace();
    let one =
        WheelBuilder::new("app_core", "0.3", "py3-none-any").file("shared/util.py", b"ONE = 1\n");
    let two =
        WheelBuilder::new("other_pkg", "5.0", "py3-none-any").file("shared/util.py", b"TWO = 2\n");
    let wheels = vec![one.build(&wheel_dir), two.build(&wheel_dir)];
    let recipe = recipe(work.path(), &wheels, &[]);
    let store = TempStore::new();
    let err = run_fails(
        pystore(store.path())
            .arg("--find-links")
            .arg(&wheel_dir)
            .arg("realise")
            .arg(&recipe),
        1,
    );
    assert!(
        err.contains("lib/python3.11/site-packages/shared/util.py: app-core 0.3 and other-pkg 5.0 both install it, with different contents"),
        "{err}"
    );
}

#[test]
fn the_samai_recipe_and_its_lock_plan_offline() {
    let store = TempStore::new();
    let out = run_ok(
        pystore(store.path())
            .args(["--offline", "--json", "realise", "samai", "--dry-run"])
            .current_dir(env!("CARGO_MANIFEST_DIR")),
    );
    let plan: serde_json::Value = serde_json::from_str(&out).unwrap();
    let entries = plan.as_array().unwrap();
    let count = |status: &str| entries.iter().filter(|e| e["status"] == status).count();
    // 2 interpreter archives + 19 Windows wheels + the 4 Linux-only binary wheels (15 pure
    // wheels serve both targets); per target: interpreter, its standard library's bytecode,
    // 19 installs, their 19 bytecode entries, bundle, its validation, ZIP, the ZIP's
    // provenance and SBOM.
    assert_eq!(
        (count("fetch"), count("build"), count("valid")),
        (25, 90, 0)
    );
    let names: Vec<&str> = entries
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    for expected in [
        "samai-1.0.0-windows-x86_64.zip",
        "samai-1.0.0-linux-x86_64.zip",
        "samai-1.0.0-linux-x86_64.validation.json",
        "samai-1.0.0-windows-x86_64.validation.json",
        "psycopg2-2.9.13-cp312-cp312-win_amd64.whl",
        // The Windows target's packages compiled by the Linux target's CPython 3.12.14.
        "openai-3.57.0-py312-x86_64-pc-windows-msvc-pyc",
        // `python = "3.12"`: the archives the lock pinned, not the built-in table's choice.
        "cpython-3.12.14+20260814-x86_64-pc-windows-msvc-install_only_stripped.tar.gz",
        "cpython-3.12.14+20260814-x86_64-unknown-linux-gnu-install_only_stripped.tar.gz",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} not planned: {names:?}"
        );
    }
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("psycopg2_binary-") && n.contains("manylinux")),
        "{names:?}"
    );
}
