//! `pystore diff`: two recipes differing in one package diff to exactly that change, in text and
//! JSON, whatever form each side is given in; a bundle diffed with itself is unchanged.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::common::*;
use crate::pyfixtures::WheelBuilder;
use crate::recipe_fixtures::{recipe, workspace};

/// Wheels: `greet_lib` at `version` (its module body mentions the version, so it differs), and
/// an unchanging `app_core`.
fn wheels(dir: &Path, version: &str, extra: &str) -> Vec<PathBuf> {
    let greet = WheelBuilder::new("greet_lib", version, "py3-none-any").file(
        "greet_lib/__init__.py",
        format!("VERSION = {version:?}\n{extra}").as_bytes(),
    );
    let app = WheelBuilder::new("app_core", "0.3", "py3-none-any")
        .file("app_core/__init__.py", b"import greet_lib\n");
    vec![greet.build(dir), app.build(dir)]
}

/// Realises the demo recipe with these greet_lib details in its own workspace; returns
/// (workspace, ZIP path, bundle path).
fn realise(store: &Path, version: &str, extra: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let (work, wheel_dir) = workspace();
    let wheels = wheels(&wheel_dir, version, extra);
    let recipe = recipe(work.path(), &wheels, &[]);
    let out = run_ok(
        pystore(store)
            .args(["--json", "--find-links"])
            .arg(&wheel_dir)
            .arg("realise")
            .arg(&recipe),
    );
    let value: serde_json::Value = serde_json::from_str(&out).unwrap();
    let zip = PathBuf::from(value[0]["zip"].as_str().unwrap());
    let bundle = PathBuf::from(value[0]["bundle"].as_str().unwrap());
    (work, zip, bundle)
}

/// Every file and symlink of a bundle directory: path → contents (or link target), read from
/// disk (not from the manifest), the manifest itself left out.
fn walk(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn go(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_symlink() {
                let target = fs::read_link(&path).unwrap();
                out.insert(rel, target.to_str().unwrap().as_bytes().to_vec());
            } else if meta.is_dir() {
                go(root, &path, out);
            } else if rel != "pystore-manifest.json" {
                out.insert(rel, fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    go(root, root, &mut out);
    out
}

fn diff(store: &Path, a: &Path, b: &Path, extra: &[&str]) -> std::process::Output {
    run(pystore(store).arg("diff").arg(a).arg(b).args(extra))
}

#[test]
fn two_recipes_differing_in_one_package_diff_to_exactly_that_change() {
    let store = TempStore::new();
    let (_wa, zip_a, bundle_a) = realise(store.path(), "2.1.0", "");
    let (_wb, zip_b, bundle_b) = realise(store.path(), "2.2.0", "def more():\n    return 42\n");

    // The oracle, from the trees on disk: which paths differ, and by how many bytes in all (only
    // greet-lib changed, so all of it is greet-lib's).
    let (files_a, files_b) = (walk(&bundle_a), walk(&bundle_b));
    let mut changed: Vec<&String> = files_a
        .keys()
        .chain(files_b.keys())
        .filter(|p| files_a.get(*p) != files_b.get(*p))
        .collect();
    changed.sort();
    changed.dedup();
    assert!(
        changed.len() >= 3,
        "the dist-info moved and the module changed: {changed:?}"
    );
    let size = |files: &BTreeMap<String, Vec<u8>>, root: &Path| -> i64 {
        files
            .iter()
            .filter(|(p, _)| {
                !fs::symlink_metadata(root.join(p))
                    .unwrap()
                    .file_type()
                    .is_symlink()
            })
            .map(|(_, bytes)| bytes.len() as i64)
            .sum()
    };
    let delta = size(&files_b, &bundle_b) - size(&files_a, &bundle_a);
    assert!(delta > 0);

    // Text: exactly one package line, and a summary of the files.
    let out = diff(store.path(), &zip_a, &zip_b, &[]);
    assert_eq!(out.status.code(), Some(1), "different bundles exit 1");
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        format!("greet-lib: 2.1.0 → 2.2.0, +{delta} B"),
        "{text}"
    );
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[1].starts_with("files: "), "{text}");

    // JSON: the same single change, for tools.
    let out = diff(store.path(), &zip_a, &zip_b, &["--json"]);
    assert_eq!(out.status.code(), Some(1));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["recipe"], serde_json::Value::Null);
    assert_eq!(value["target"], serde_json::Value::Null);
    assert_eq!(value["interpreter"], serde_json::Value::Null);
    assert_eq!(
        value["packages"],
        serde_json::json!([{
            "name": "greet-lib",
            "version": {"from": "2.1.0", "to": "2.2.0"},
            "wheel": {"from": "greet_lib-2.1.0-py3-none-any.whl", "to": "greet_lib-2.2.0-py3-none-any.whl"},
            "size_delta": delta,
        }])
    );

    // --files: exactly the paths that differ on disk, marked added, removed or changed.
    let out = diff(store.path(), &zip_a, &zip_b, &["--files"]);
    let text = String::from_utf8(out.stdout).unwrap();
    let mut listed: Vec<String> = Vec::new();
    for line in text.lines().skip(1) {
        let (mark, rest) = line.split_at(2);
        let path = rest.split("  ").next().unwrap().to_owned();
        let expected = match (files_a.contains_key(&path), files_b.contains_key(&path)) {
            (false, true) => "+ ",
            (true, false) => "- ",
            _ => "~ ",
        };
        assert_eq!(mark, expected, "{line}");
        listed.push(path);
    }
    let changed: Vec<String> = changed.into_iter().cloned().collect();
    assert_eq!(listed, changed, "{text}");
    assert!(text.contains("blake3:"), "hashes are listed: {text}");

    // Any form of either side: bundle directory, ZIP, manifest file.
    let manifest_a = bundle_a.join("pystore-manifest.json");
    for (a, b) in [(&bundle_a, &zip_b), (&manifest_a, &bundle_b)] {
        let out = diff(store.path(), a, b, &[]);
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stdout).starts_with("greet-lib: 2.1.0 → 2.2.0"));
    }
    // A ZIP copied anywhere is read without a store.
    let elsewhere = tempfile::tempdir().unwrap();
    let copy = elsewhere.path().join("a.zip");
    fs::copy(&zip_a, &copy).unwrap();
    assert_eq!(
        diff(store.path(), &copy, &bundle_a, &[]).status.code(),
        Some(0)
    );
}

#[test]
fn a_bundle_diffed_with_itself_reports_no_change_and_exits_0() {
    let store = TempStore::new();
    let (_work, zip, bundle) = realise(store.path(), "2.1.0", "");
    for (a, b) in [(&zip, &zip), (&bundle, &zip)] {
        let out = diff(store.path(), a, b, &["--files"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    }
    let value = json(pystore(store.path()).arg("diff").arg(&zip).arg(&bundle));
    assert_eq!(value["packages"], serde_json::json!([]));
    assert_eq!(value["files"], serde_json::json!([]));
}

#[test]
fn diff_usage_errors_exit_2_and_unreadable_sides_exit_1() {
    let store = TempStore::new();
    run_fails(pystore(store.path()).args(["diff", "only-one"]), 2);
    let dir = tempfile::tempdir().unwrap();
    let not_json = dir.path().join("x.json");
    fs::write(&not_json, "{}").unwrap();
    let err = run_fails(
        pystore(store.path())
            .arg("diff")
            .arg(&not_json)
            .arg(&not_json),
        1,
    );
    assert!(err.contains("is not a pystore bundle manifest"), "{err}");
    let err = run_fails(
        pystore(store.path())
            .arg("diff")
            .arg(dir.path())
            .arg(&not_json),
        1,
    );
    assert!(err.contains("has no pystore-manifest.json"), "{err}");
}

/// The full text of an error from a typed chain (`DiffError::Zip` → `BundleZipProblem` → the
/// zip reader's error): each cause once, and the file named once.
#[test]
fn a_truncated_bundle_zip_is_named_once_with_its_cause() {
    let store = TempStore::new();
    let dir = tempfile::tempdir().unwrap();
    let truncated = dir.path().join("samai.zip");
    // A local file header and nothing after it: a ZIP cut off early.
    fs::write(&truncated, b"PK\x03\x04\x14\x00\x00\x00\x08\x00").unwrap();
    let shown = truncated.display().to_string();
    let expected = format!(
        "error: {shown}: invalid Zip archive: Could not find EOCD; is it a pystore bundle ZIP?\n"
    );
    for args in [&["diff"][..], &["verify"][..]] {
        let mut cmd = pystore(store.path());
        cmd.args(args).arg(&truncated);
        if args == ["diff"] {
            cmd.arg(&truncated);
        }
        let err = run_fails(&mut cmd, 1);
        assert_eq!(err, expected, "{args:?}");
        assert_eq!(err.matches(&shown).count(), 1, "{err}");
    }
}
