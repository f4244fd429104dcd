//! Bytecode in bundles: every package and the standard library ship PEP 552 checked-hash pycs,
//! compiled once per wheel and Python version, the same whatever the jobs or the store; the
//! bundle's python uses them; `bytecode = false` ships none; a target no interpreter here can
//! run gets none, and says so.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use crate::pyfixtures::WheelBuilder;
use crate::recipe_fixtures::{demo_wheels, recipe, recipe_for, windows_archive, workspace, Spec};

/// The demo wheels plus one with a file CPython cannot compile (Python 2 syntax) and one that
/// ships its own pyc.
fn wheels(dir: &Path) -> Vec<PathBuf> {
    let mut wheels = demo_wheels(dir);
    let odd = WheelBuilder::new("odd_lib", "1.0", "py3-none-any")
        .file("odd_lib/__init__.py", b"VALUE = 1\n")
        .file("odd_lib/legacy.py", b"print 'python 2'\n")
        .file("odd_lib/shipped.py", b"X = 2\n")
        .file(
            "odd_lib/__pycache__/shipped.cpython-311.pyc",
            b"not a real pyc",
        );
    wheels.push(odd.build(dir));
    wheels
}

fn realise(
    store: &TempStore,
    recipe: &Path,
    wheel_dir: &Path,
    extra: &[&str],
) -> serde_json::Value {
    let out = run_ok(
        pystore(store.path())
            .args(["--json", "--find-links"])
            .arg(wheel_dir)
            .args(extra)
            .arg("realise")
            .arg(recipe),
    );
    serde_json::from_str(&out).unwrap()
}

/// The PEP 552 flags word of a pyc.
fn flags(pyc: &Path) -> u32 {
    let bytes = fs::read(pyc).unwrap();
    u32::from_le_bytes(bytes[4..8].try_into().unwrap())
}

fn pycs_under(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "pyc") {
                found.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    found.sort();
    found
}

#[test]
fn packages_and_the_stdlib_ship_checked_hash_pycs_that_the_bundle_uses() {
    let (work, wheel_dir) = workspace();
    let wheels = wheels(&wheel_dir);
    let recipe = recipe(work.path(), &wheels, &["app_core"]);
    let store = TempStore::new();
    let value = realise(&store, &recipe, &wheel_dir, &[]);
    let bundle = PathBuf::from(value[0]["bundle"].as_str().unwrap());
    let site = bundle.join("lib/python3.11/site-packages");
    assert_eq!(
        pycs_under(&site),
        [
            "app_core/__pycache__/__init__.cpython-311.pyc",
            "greet_lib/__pycache__/__init__.cpython-311.pyc",
            "odd_lib/__pycache__/__init__.cpython-311.pyc",
            // The wheel's own pyc stays as it shipped; legacy.py does not compile: no pyc.
            "odd_lib/__pycache__/shipped.cpython-311.pyc",
        ]
    );
    assert_eq!(
        fs::read(site.join("odd_lib/__pycache__/shipped.cpython-311.pyc")).unwrap(),
        b"not a real pyc"
    );
    for pyc in [
        "app_core/__pycache__/__init__.cpython-311.pyc",
        "greet_lib/__pycache__/__init__.cpython-311.pyc",
    ] {
        assert_eq!(flags(&site.join(pyc)), 0b11, "{pyc} is not checked-hash");
    }
    // The standard library is compiled too.
    let json_pyc = bundle.join("lib/python3.11/json/__pycache__/__init__.cpython-311.pyc");
    assert_eq!(flags(&json_pyc), 0b11);

    // Manifest and provenance say who compiled them, and how they are validated.
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(bundle.join("pystore-manifest.json")).unwrap()).unwrap();
    let expected = serde_json::json!({
        "compiler": "cpython-3.11.2-x86_64-unknown-linux-gnu",
        "invalidation": "checked-hash",
    });
    assert_eq!(manifest["bytecode"], expected);
    let files = manifest["files"].as_array().unwrap();
    let pyc_entry = files
        .iter()
        .find(|f| {
            f["path"]
                == "lib/python3.11/site-packages/app_core/__pycache__/__init__.cpython-311.pyc"
        })
        .expect("the pyc is in the manifest");
    assert_eq!(
        pyc_entry["package"], "app-core",
        "a package's pycs are its files"
    );
    let provenance: serde_json::Value =
        serde_json::from_slice(&fs::read(value[0]["provenance"].as_str().unwrap()).unwrap())
            .unwrap();
    assert_eq!(
        provenance["predicate"]["buildDefinition"]["internalParameters"]["bytecode"],
        expected
    );

    // Unzipped and read-only (-B: nothing may be written), the bundle's python loads the pycs
    // instead of compiling: `-v` says the cached code matches its source.
    let unpacked = work.path().join("unzipped");
    let status = Command::new("unzip")
        .arg("-q")
        .arg(value[0]["zip"].as_str().unwrap())
        .arg("-d")
        .arg(&unpacked)
        .status()
        .unwrap();
    assert!(status.success());
    let out = Command::new("env")
        .arg("-i")
        .arg(unpacked.join("bin/python3.11"))
        .args(["-I", "-B", "-v", "-c", "import app_core, json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = String::from_utf8_lossy(&out.stderr);
    let site = unpacked.join("lib/python3.11/site-packages");
    for module in ["app_core/__init__", "greet_lib/__init__"] {
        let (dir, name) = module.split_once('/').unwrap();
        let line = format!(
            "{} matches {}",
            site.join(dir)
                .join("__pycache__")
                .join(format!("{name}.cpython-311.pyc"))
                .display(),
            site.join(format!("{module}.py")).display()
        );
        assert!(log.contains(&line), "{line} not in:\n{log}");
    }
    assert!(
        log.contains(&format!(
            "{} matches",
            unpacked
                .join("lib/python3.11/json/__pycache__/__init__.cpython-311.pyc")
                .display()
        )),
        "{log}"
    );
    // A changed source is never run from its old pyc: checked-hash pycs notice.
    fs::write(site.join("app_core/__init__.py"), "MESSAGE = 'patched'\n").unwrap();
    let out = Command::new("env")
        .arg("-i")
        .arg(unpacked.join("bin/python3.11"))
        .args(["-I", "-B", "-c", "import app_core; print(app_core.MESSAGE)"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "patched\n");
}

#[test]
fn the_pycs_and_zip_are_the_same_whatever_the_jobs_and_a_check_rebuilds_them_identically() {
    let (work, wheel_dir) = workspace();
    let wheels = wheels(&wheel_dir);
    let recipe = recipe(work.path(), &wheels, &["app_core"]);
    let one = TempStore::new();
    let two = TempStore::new();
    let a = realise(&one, &recipe, &wheel_dir, &["-j", "1"]);
    let b = realise(&two, &recipe, &wheel_dir, &["-j", "2"]);
    assert_eq!(
        fs::read(a[0]["zip"].as_str().unwrap()).unwrap(),
        fs::read(b[0]["zip"].as_str().unwrap()).unwrap()
    );
    // Every derived entry (the bytecode entries included) rebuilt twice from its inputs gives
    // the same content hash.
    let out = run_ok(
        pystore(one.path())
            .args(["--json", "--find-links"])
            .arg(&wheel_dir)
            .args(["realise", "--rounds", "2"])
            .arg(&recipe),
    );
    let value: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(value["check"]["reproducible"], true, "{value}");
    let checked = value["check"]["entries"].as_array().unwrap();
    let names: Vec<&str> = checked.iter().filter_map(|c| c["name"].as_str()).collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("app-core-0.3-py311") && n.ends_with("-pyc")),
        "{names:?}"
    );
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("cpython-3.11.2") && n.ends_with("-pyc")),
        "{names:?}"
    );
}

#[test]
fn bytecode_false_ships_no_pycs() {
    let (work, wheel_dir) = workspace();
    let wheels = wheels(&wheel_dir);
    let recipe = recipe(work.path(), &wheels, &["app_core"]);
    let toml = recipe.join("recipe.toml");
    let text = fs::read_to_string(&toml).unwrap();
    fs::write(
        &toml,
        text.replace("validate =", "bytecode = false\nvalidate ="),
    )
    .unwrap();
    let store = TempStore::new();
    let value = realise(&store, &recipe, &wheel_dir, &[]);
    let bundle = PathBuf::from(value[0]["bundle"].as_str().unwrap());
    assert_eq!(
        pycs_under(&bundle.join("lib/python3.11/site-packages")),
        ["odd_lib/__pycache__/shipped.cpython-311.pyc"],
        "only what a wheel shipped itself"
    );
    assert!(!bundle.join("lib/python3.11/json/__pycache__").exists());
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(bundle.join("pystore-manifest.json")).unwrap()).unwrap();
    assert!(manifest.get("bytecode").is_none(), "{manifest}");
}

#[test]
fn a_target_that_no_interpreter_here_can_compile_for_gets_no_pycs_and_says_so() {
    let (work, wheel_dir) = workspace();
    let wheels = demo_wheels(&wheel_dir);
    let archive = windows_archive(work.path());
    let spec = Spec {
        python: "3.12.7",
        platform: "x86_64-pc-windows-msvc",
        archive: &archive,
    };
    let recipe = recipe_for(work.path(), &spec, &wheels, &["app_core"]);
    let store = TempStore::new();
    let out = run(pystore(store.path())
        .args(["--json", "--find-links"])
        .arg(&wheel_dir)
        .arg("realise")
        .arg(&recipe));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr
            .matches("notice: no pycs for t (CPython 3.12.7)")
            .count(),
        1,
        "{stderr}"
    );
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let bundle = PathBuf::from(value[0]["bundle"].as_str().unwrap());
    assert!(pycs_under(&bundle).is_empty());
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(bundle.join("pystore-manifest.json")).unwrap()).unwrap();
    assert_eq!(
        manifest["bytecode"],
        serde_json::json!({"missing": "no interpreter of CPython 3.12.7 that runs on the building machine"})
    );
}

#[test]
fn timings_report_each_entry_and_step_as_json_and_html() {
    let (work, wheel_dir) = workspace();
    let wheels = demo_wheels(&wheel_dir);
    let recipe = recipe(work.path(), &wheels, &["app_core"]);
    let store = TempStore::new();
    let report = work.path().join("reports/cold");
    let out = run(pystore(store.path())
        .arg("--find-links")
        .arg(&wheel_dir)
        .arg("realise")
        .arg(&recipe)
        .arg(format!("--timings={}", report.display())));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "timings: {}",
            report.with_extension("html").display()
        )),
        "{stderr}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&fs::read(report.with_extension("json")).unwrap()).unwrap();
    assert_eq!(json["recipe"], "demo");
    let entries = json["entries"].as_array().unwrap();
    let step_of = |name: &str| {
        entries
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("{name} not in {entries:?}"))
    };
    let compile = step_of("app-core-0.3-py311-x86_64-unknown-linux-gnu-pyc");
    assert_eq!(compile["step"], "compile");
    assert_eq!(compile["how"], "built");
    assert!(compile["end"].as_f64().unwrap() >= compile["start"].as_f64().unwrap());
    assert_eq!(step_of("demo-1.0.0-t.zip")["step"], "zip");
    assert_eq!(step_of("app_core-0.3-py3-none-any.whl")["how"], "fetched");
    for step in [
        "fetch", "unpack", "install", "compile", "bundle", "validate", "zip",
    ] {
        assert!(
            json["steps"][step]["done"].as_u64().unwrap() >= 1,
            "{step}: {json}"
        );
    }
    let html = fs::read_to_string(report.with_extension("html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(
        html.contains("app-core-0.3-py311-x86_64-unknown-linux-gnu-pyc"),
        "{html}"
    );

    // Again, into the store's tmp/: everything was valid already.
    let out = run(pystore(store.path())
        .arg("--find-links")
        .arg(&wheel_dir)
        .args(["realise", "--timings"])
        .arg(&recipe));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written: Vec<PathBuf> = fs::read_dir(store.path().join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("timings-")
        })
        .collect();
    let json_path = written
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .expect("a JSON report in <store>/tmp");
    assert!(written
        .iter()
        .any(|p| p.extension().is_some_and(|e| e == "html")));
    let json: serde_json::Value = serde_json::from_slice(&fs::read(json_path).unwrap()).unwrap();
    let entries = json["entries"].as_array().unwrap();
    assert!(!entries.is_empty());
    assert!(entries.iter().all(|e| e["how"] == "valid"), "{json}");
}
