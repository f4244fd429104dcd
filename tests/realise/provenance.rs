//! What describes a bundle ZIP: signing keys, SLSA provenance (signed or not), the CycloneDX
//! SBOM, and `pystore verify FILE.zip [--provenance FILE]`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use crate::pyfixtures::WheelBuilder;
use crate::recipe_fixtures::{interpreter_archive, recipe, workspace};
use base64::Engine;
use serde_json::Value;

/// A recipe in a fresh workspace: (workspace, recipe dir, wheelhouse, wheel paths).
fn demo() -> (tempfile::TempDir, PathBuf, PathBuf, Vec<PathBuf>) {
    let (work, wheel_dir) = workspace();
    let greet = WheelBuilder::new("greet_lib", "2.1.0", "py3-none-any").file(
        "greet_lib/__init__.py",
        b"def hello(who):\n    return 'hello ' + who\n",
    );
    let app = WheelBuilder::new("app_core", "0.3", "py3-none-any")
        .file("app_core/__init__.py", b"from greet_lib import hello\n")
        .file("app_core/data.txt", b"payload\n");
    let wheels = vec![greet.build(&wheel_dir), app.build(&wheel_dir)];
    let recipe = recipe(work.path(), &wheels, &[]);
    (work, recipe, wheel_dir, wheels)
}

/// `pystore --json --find-links WHEELS realise RECIPE ARGS...`, configured by `env`.
fn realise(
    store: &Path,
    recipe: &Path,
    wheels: &Path,
    args: &[&str],
    env: &[(&str, &Path)],
) -> Value {
    let mut cmd = pystore(store);
    cmd.args(["--json", "--find-links"])
        .arg(wheels)
        .arg("realise")
        .arg(recipe)
        .args(args);
    for (key, value) in env {
        cmd.env(key, value);
    }
    let value: Value = serde_json::from_str(&run_ok(&mut cmd)).unwrap();
    value[0].clone()
}

fn path_of(value: &Value) -> PathBuf {
    PathBuf::from(value.as_str().unwrap())
}

/// A key pair made by `pystore key generate NAME` in `dir`; returns (secret file, public key).
fn key(dir: &Path, name: &str) -> (PathBuf, String) {
    fs::create_dir_all(dir).unwrap();
    let out = run_ok(
        Command::new(bin())
            .args(["key", "generate", name, "--out"])
            .arg(dir),
    );
    let public = out.lines().last().unwrap().to_owned();
    (dir.join(format!("{name}.secret")), public)
}

#[test]
fn key_generate_writes_a_private_secret_file_and_prints_the_public_key_last() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (secret, public) = key(dir.path(), "ci-1");
    let mode = fs::metadata(&secret).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let (name, encoded) = public.split_once(':').unwrap();
    assert_eq!(name, "ci-1");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    assert_eq!(bytes.len(), 32);
    assert_eq!(
        fs::read_to_string(dir.path().join("ci-1.public"))
            .unwrap()
            .trim(),
        public
    );
    // The secret is in the file only: not printed, and not the public key.
    let secret_text = fs::read_to_string(&secret).unwrap();
    let secret_b64 = secret_text.trim().split_once(':').unwrap().1;
    assert_ne!(secret_b64, encoded);
    // Never replaces an existing key.
    let err = run_fails(
        Command::new(bin())
            .args(["key", "generate", "ci-1", "--out"])
            .arg(dir.path()),
        1,
    );
    assert!(err.contains("ci-1.secret"), "{err}");
    assert_eq!(fs::read_to_string(&secret).unwrap(), secret_text);
}

#[test]
fn provenance_and_sbom_are_deterministic_entries_beside_the_zip() {
    let (work, recipe, wheels, wheel_files) = demo();
    let outs: Vec<(Value, PathBuf)> = (0..2)
        .map(|i| {
            let store = work.path().join(format!("store-{i}"));
            let out = work.path().join(format!("out-{i}"));
            let value = realise(
                &store,
                &recipe,
                &wheels,
                &["--out", out.to_str().unwrap()],
                &[],
            );
            (value, store)
        })
        .collect();
    let read = |v: &Value, key: &str| fs::read(path_of(&v[key])).unwrap();
    let (first, store) = &outs[0];
    assert_eq!(
        read(first, "provenance"),
        read(&outs[1].0, "provenance"),
        "byte-identical"
    );
    assert_eq!(
        read(first, "sbom"),
        read(&outs[1].0, "sbom"),
        "byte-identical"
    );
    assert!(first["provenance"]
        .as_str()
        .unwrap()
        .ends_with("-demo-1.0.0-t.zip.provenance.json"));
    assert!(first["sbom"]
        .as_str()
        .unwrap()
        .ends_with("-demo-1.0.0-t.zip.cdx.json"));
    for key in ["provenance", "sbom"] {
        let text = String::from_utf8(read(first, key)).unwrap();
        for path in [work.path(), store.as_path(), interpreter_archive()] {
            assert!(
                !text.contains(path.to_str().unwrap()),
                "{key} has no absolute path"
            );
        }
        let copy = path_of(&first[&format!("{key}_copied_to")]);
        let copy = fs::read(copy).unwrap();
        if key == "sbom" {
            assert_eq!(copy, text.as_bytes(), "--out copies the SBOM");
        } else {
            // The copy adds this run's times; the entry has none.
            let mut copy: Value = serde_json::from_slice(&copy).unwrap();
            let metadata = copy["predicate"]["runDetails"]
                .as_object_mut()
                .unwrap()
                .remove("metadata")
                .unwrap();
            for field in ["startedOn", "finishedOn"] {
                let time = metadata[field].as_str().unwrap();
                assert!(time.len() == 20 && time.ends_with('Z'), "{time}");
            }
            assert!(metadata["startedOn"].as_str() <= metadata["finishedOn"].as_str());
            let entry: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(copy, entry, "otherwise the same statement");
            assert!(!text.contains("startedOn"));
        }
    }
    // gc keeps them.
    let ran = run_ok(pystore(store).args(["gc"]));
    assert!(path_of(&first["provenance"]).exists(), "{ran}");
    assert!(path_of(&first["sbom"]).exists());

    let zip = path_of(&first["zip"]);
    let zip_sha = sha256_hex(&fs::read(&zip).unwrap());
    let statement: Value = serde_json::from_slice(&read(first, "provenance")).unwrap();
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(statement["predicateType"], "https://slsa.dev/provenance/v1");
    assert_eq!(
        statement["subject"],
        serde_json::json!([{"name": "demo-1.0.0-t.zip", "digest": {"sha256": zip_sha}}])
    );
    let definition = &statement["predicate"]["buildDefinition"];
    assert!(definition["buildType"]
        .as_str()
        .unwrap()
        .starts_with("urn:pystore:"));
    let external = &definition["externalParameters"];
    assert_eq!(
        external["recipe"]["digest"]["sha256"],
        sha256_hex(&fs::read(recipe.join("recipe.toml")).unwrap())
    );
    assert_eq!(
        external["lock"]["digest"]["sha256"],
        sha256_hex(&fs::read(recipe.join("pystore.lock")).unwrap())
    );
    assert_eq!(external["target"]["platform"], "x86_64-unknown-linux-gnu");
    assert_eq!(
        definition["internalParameters"]["deflate"],
        "libdeflater 1.26.1"
    );
    // Every fetched artifact: the interpreter archive and each wheel, by sha256.
    let mut digests: Vec<String> = definition["resolvedDependencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["digest"]["sha256"].as_str().unwrap().to_owned())
        .collect();
    let mut expected: Vec<String> = wheel_files
        .iter()
        .chain([&interpreter_archive().to_path_buf()])
        .map(|p| sha256_hex(&fs::read(p).unwrap()))
        .collect();
    digests.sort();
    expected.sort();
    assert_eq!(digests, expected);
    let uris: Vec<&str> = definition["resolvedDependencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["uri"].as_str().unwrap())
        .collect();
    assert!(
        uris.contains(&"pkg:pypi/greet-lib@2.1.0?file_name=greet_lib-2.1.0-py3-none-any.whl"),
        "{uris:?}"
    );
    assert!(statement["predicate"]["runDetails"]["builder"]["id"].is_string());

    // The SBOM: the packages with purls and hashes, and the interpreter.
    let bom: Value = serde_json::from_slice(&read(first, "sbom")).unwrap();
    assert_eq!(bom["specVersion"], "1.5");
    let purls: Vec<&str> = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["purl"].as_str().unwrap())
        .collect();
    assert_eq!(
        purls,
        [
            "pkg:generic/cpython@3.11.2",
            "pkg:pypi/app-core@0.3",
            "pkg:pypi/greet-lib@2.1.0"
        ]
    );
    assert_eq!(
        bom["metadata"]["component"]["hashes"][0]["content"],
        zip_sha
    );
    assert!(bom["serialNumber"]
        .as_str()
        .unwrap()
        .starts_with("urn:uuid:"));
    assert!(bom["metadata"].get("timestamp").is_none());
}

/// Validates with Python's `jsonschema` against the CycloneDX 1.5 schema in tests/data; the
/// other schemas it refers to are registered under the URIs its `$ref`s resolve to.
const VALIDATOR: &str = r#"
import json, sys, pathlib, urllib.parse
import jsonschema
data = pathlib.Path(sys.argv[1])
bom_schema = json.loads((data / "bom-1.5.SNAPSHOT.schema.json").read_text())
others = {}
for name in ["spdx.SNAPSHOT.schema.json", "jsf-0.82.SNAPSHOT.schema.json"]:
    others[urllib.parse.urljoin(bom_schema["$id"], name)] = json.loads((data / name).read_text())
try:
    from referencing import Registry, Resource
    registry = Registry().with_resources(
        [(uri, Resource.from_contents(s)) for uri, s in others.items()])
    validator = jsonschema.Draft7Validator(bom_schema, registry=registry,
                                           format_checker=jsonschema.FormatChecker())
except ImportError:
    resolver = jsonschema.RefResolver.from_schema(bom_schema, store=others)
    validator = jsonschema.Draft7Validator(bom_schema, resolver=resolver,
                                           format_checker=jsonschema.FormatChecker())
errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(json.load(sys.stdin))]
print("\n".join(errors))
sys.exit(1 if errors else 0)
"#;

fn validate(python: &Path, bom: &[u8]) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(python)
        .arg("-c")
        .arg(VALIDATOR)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cyclonedx"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(bom).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn the_sbom_validates_against_the_cyclonedx_1_5_schema() {
    let Some(python) = crate::common::pytools::python_or_skip("jsonschema") else {
        return;
    };
    let (_work, recipe, wheels, _) = demo();
    let store = TempStore::new();
    let value = realise(store.path(), &recipe, &wheels, &[], &[]);
    let bom = fs::read(path_of(&value["sbom"])).unwrap();
    let out = validate(&python, &bom);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The validator does reject what the schema forbids.
    let mut broken: Value = serde_json::from_slice(&bom).unwrap();
    broken["components"][1]["hashes"][0]["alg"] = "SHA-257".into();
    let out = validate(&python, &serde_json::to_vec(&broken).unwrap());
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("SHA-257"));
}

#[test]
fn signed_provenance_verifies_only_against_its_key() {
    let (work, recipe, wheels, _) = demo();
    let keys = work.path().join("keys");
    let (secret, public) = key(&keys.join("a"), "release");
    // Same name, another key: the signature must not match; another name: not trusted.
    let (_, impostor) = key(&keys.join("b"), "release");
    let (_, stranger) = key(&keys.join("c"), "other");
    let store = TempStore::new();
    let out = work.path().join("out");
    let value = realise(
        store.path(),
        &recipe,
        &wheels,
        &["--out", out.to_str().unwrap()],
        &[("PYSTORE_SIGNING_KEY", &secret)],
    );
    let provenance = path_of(&value["provenance"]);
    assert!(provenance
        .to_str()
        .unwrap()
        .ends_with("-demo-1.0.0-t.zip.intoto.jsonl"));
    let text = fs::read_to_string(&provenance).unwrap();
    assert_eq!(text.lines().count(), 1, "one envelope per line");
    let envelope: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(envelope["payloadType"], "application/vnd.in-toto+json");
    assert_eq!(envelope["signatures"][0]["keyid"], "release");
    // Signing again (same key, same inputs) gives the same entry: ed25519 is deterministic.
    let again = realise(
        store.path(),
        &recipe,
        &wheels,
        &[],
        &[("PYSTORE_SIGNING_KEY", &secret)],
    );
    assert_eq!(again["provenance"], value["provenance"]);

    let zip = out.join("demo-1.0.0-t.zip");
    let copied = out.join("demo-1.0.0-t.zip.intoto.jsonl");
    let verify = |trusted: &str| {
        run(pystore(store.path())
            .arg("verify")
            .arg(&zip)
            .arg("--provenance")
            .arg(&copied)
            .env("PYSTORE_TRUSTED_KEYS", trusted))
    };
    let ok = verify(&public);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("signed by release"));
    for (other, why) in [
        (&impostor, "does not match"),
        (&stranger, "none of these is a trusted key"),
    ] {
        let bad = verify(other);
        let stdout = String::from_utf8_lossy(&bad.stdout);
        assert_eq!(bad.status.code(), Some(1), "{stdout}");
        assert!(stdout.contains(why), "{stdout}");
    }
    // Trusting several keys, one of them the signer's, is fine.
    assert_eq!(
        verify(&format!("{stranger} {public}")).status.code(),
        Some(0)
    );
}

/// Rewrites the ZIP with one member's contents replaced (the manifest kept as it was).
const TAMPER: &str = r##"
import sys, zipfile
src, dst, name = sys.argv[1:4]
with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
    for info in zin.infolist():
        data = zin.read(info)
        if info.filename == name:
            data += b"# injected\n"
        zout.writestr(info, data)
"##;

#[test]
fn a_tampered_zip_fails_verify() {
    let (work, recipe, wheels, _) = demo();
    let store = TempStore::new();
    let out = work.path().join("out");
    realise(
        store.path(),
        &recipe,
        &wheels,
        &["--out", out.to_str().unwrap()],
        &[],
    );
    let zip = out.join("demo-1.0.0-t.zip");
    let provenance = out.join("demo-1.0.0-t.zip.provenance.json");
    let verify = |zip: &Path, provenance: Option<&Path>| {
        let mut cmd = pystore(store.path());
        cmd.arg("verify").arg(zip);
        if let Some(p) = provenance {
            cmd.arg("--provenance").arg(p);
        }
        run(&mut cmd)
    };
    let ok = verify(&zip, Some(&provenance));
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );

    let member = "lib/python3.11/site-packages/app_core/__init__.py";
    let tampered = work.path().join("tampered.zip");
    let status = Command::new("python3")
        .arg("-c")
        .arg(TAMPER)
        .arg(&zip)
        .arg(&tampered)
        .arg(member)
        .status()
        .unwrap();
    assert!(status.success());
    let bad = verify(&tampered, None);
    let stdout = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains(&format!("{member}: size")), "{stdout}");
    assert!(stdout.contains(&format!("{member}: blake3")), "{stdout}");
    let lines = stdout.lines().filter(|l| l.starts_with("  ")).count();
    assert_eq!(lines, 2, "only the tampered member is named: {stdout}");
    // A member the manifest does not list is named too.
    let added = work.path().join("added.zip");
    let status = Command::new("python3")
        .arg("-c")
        .arg("import shutil, sys, zipfile; shutil.copy(sys.argv[1], sys.argv[2]); zipfile.ZipFile(sys.argv[2], 'a').writestr('lib/extra.py', 'x = 1')")
        .arg(&zip)
        .arg(&added)
        .status()
        .unwrap();
    assert!(status.success());
    let bad = verify(&added, None);
    let stdout = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("lib/extra.py: in the ZIP but not in its manifest"),
        "{stdout}"
    );
    // Its provenance no longer matches either.
    let bad = verify(&tampered, Some(&provenance));
    assert!(String::from_utf8_lossy(&bad.stdout).contains("subject: the ZIP's sha256 is"));

    // Flipped bytes in compressed data: the member is named as unreadable or wrong.
    let mut bytes = fs::read(&zip).unwrap();
    let at = bytes.len() / 3;
    bytes[at] ^= 0xff;
    let flipped = work.path().join("flipped.zip");
    fs::write(&flipped, &bytes).unwrap();
    let bad = verify(&flipped, None);
    assert_eq!(
        bad.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&bad.stdout)
    );
}
