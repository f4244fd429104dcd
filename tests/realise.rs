//! `pystore realise` end to end: an interpreter archive made from the machine's Debian
//! python3.11, wheels built by the test and served by a loopback index, a lock written by the
//! test; the ZIP must work unzipped anywhere, and realising again must do nothing.

mod common;
mod pyfixtures;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::http::{Response, Server};
use common::*;
use pyfixtures::{upstream_like_pbs_archive, WheelBuilder};
use pystore::python::lockfile::{inputs_hash, Lock, LockedPackage, LockedTarget, TargetInput};
use pystore::python::requirements;
use sha2::Digest;

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The interpreter archive, made once for all tests (it takes a few seconds).
fn interpreter_archive() -> &'static Path {
    static ARCHIVE: OnceLock<PathBuf> = OnceLock::new();
    ARCHIVE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        upstream_like_pbs_archive(&dir)
    })
}

fn wheels(dir: &Path) -> Vec<PathBuf> {
    let greet = WheelBuilder::new("greet_lib", "2.1.0", "py3-none-any")
        .file(
            "greet_lib/__init__.py",
            b"def hello(who):\n    return 'hello ' + who\n\ndef main():\n    print(hello('from the script'))\n",
        );
    let info = greet.dist_info();
    let greet = greet.file(
        &format!("{info}/entry_points.txt"),
        b"[console_scripts]\ngreet = greet_lib:main\n",
    );
    let app = WheelBuilder::new("app_core", "0.3", "py3-none-any")
        .file(
            "app_core/__init__.py",
            b"from greet_lib import hello\nMESSAGE = hello('bundle')\n",
        )
        .file("app_core/data.txt", b"payload\n");
    vec![greet.build(dir), app.build(dir)]
}

/// A loopback simple index (JSON) serving the wheels; counts requests.
fn index(wheels: &[PathBuf]) -> Server {
    let files: Vec<(String, Vec<u8>)> = wheels
        .iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_str().unwrap().to_owned(),
                fs::read(p).unwrap(),
            )
        })
        .collect();
    Server::start(move |req| {
        for (name, bytes) in &files {
            let project = name
                .split('-')
                .next()
                .unwrap()
                .to_lowercase()
                .replace('_', "-");
            if req.path == format!("/simple/{project}/") {
                let page = format!(
                    r#"{{"meta":{{"api-version":"1.0"}},"name":"{project}","files":[{{"filename":"{name}","url":"/files/{name}","hashes":{{"sha256":"{}"}}}}]}}"#,
                    sha256_hex(bytes)
                );
                return Response::ok(page)
                    .header("Content-Type", "application/vnd.pypi.simple.v1+json");
            }
            if req.path == format!("/files/{name}") {
                return Response::ok(bytes.clone());
            }
        }
        Response::status(404)
    })
}

/// A recipe directory with requirements and a matching lock.
fn recipe(dir: &Path, wheels: &[PathBuf], validate: &[&str]) -> PathBuf {
    let root = dir.join("recipes/demo");
    fs::create_dir_all(&root).unwrap();
    let archive = interpreter_archive();
    let archive_sha = sha256_hex(&fs::read(archive).unwrap());
    let validate: Vec<String> = validate.iter().map(|m| format!("{m:?}")).collect();
    fs::write(
        root.join("recipe.toml"),
        format!(
            "name = \"demo\"\nversion = \"1.0.0\"\npython = \"3.11.2\"\nvalidate = [{}]\n\n[[targets]]\nname = \"linux-x86_64\"\n\
             platform = \"x86_64-unknown-linux-gnu\"\ninterpreter = {{ url = \"file://{}\", sha256 = \"{archive_sha}\" }}\n",
            validate.join(", "),
            archive.display()
        ),
    )
    .unwrap();
    fs::write(root.join("requirements.txt"), "app-core\n").unwrap();
    write_lock(&root, wheels);
    root
}

fn write_lock(root: &Path, wheels: &[PathBuf]) {
    let requirements = requirements::read(&root.join("requirements.txt")).unwrap();
    let targets = [TargetInput {
        name: "linux-x86_64",
        platform: "x86_64-unknown-linux-gnu",
        glibc: None,
    }];
    let packages = wheels
        .iter()
        .map(|path| {
            let file = path.file_name().unwrap().to_str().unwrap().to_owned();
            let mut parts = file.split('-');
            let bytes = fs::read(path).unwrap();
            LockedPackage {
                name: parts.next().unwrap().replace('_', "-"),
                version: parts.next().unwrap().to_owned(),
                wheel: file,
                size: bytes.len() as u64,
                sha256: sha256_hex(&bytes),
                required_by: vec![],
            }
        })
        .collect();
    Lock {
        version: 1,
        python: "3.11.2".into(),
        inputs: inputs_hash(&requirements, "3.11.2", &targets),
        targets: vec![LockedTarget {
            name: "linux-x86_64".into(),
            platform: "x86_64-unknown-linux-gnu".into(),
            glibc: None,
            packages,
        }],
    }
    .write(&root.join("pystore.lock"))
    .unwrap();
}

#[test]
fn realises_a_zip_that_works_unzipped_anywhere_and_then_does_nothing() {
    let work = tempfile::tempdir().unwrap();
    let wheel_dir = work.path().join("wheels");
    fs::create_dir(&wheel_dir).unwrap();
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
        .ends_with("-demo-1.0.0-linux-x86_64.zip"));
    let copied = out_dir.join("demo-1.0.0-linux-x86_64.zip");
    assert_eq!(fs::read(&copied).unwrap(), fs::read(&zip).unwrap());
    assert!(
        store.path().join("roots/demo-linux-x86_64").exists(),
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
    let work = tempfile::tempdir().unwrap();
    let wheel_dir = work.path().join("wheels");
    fs::create_dir(&wheel_dir).unwrap();
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
