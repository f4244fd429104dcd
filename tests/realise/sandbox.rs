//! The sandbox, asserted from inside: `pystore run` runs the bundle's own python (the Debian
//! python3.11 fixture), which tries to reach a loopback server, read a file planted in the
//! host's HOME, see /usr/local and write outside /build. Also: `--sandbox require` without user
//! namespaces (the test seam) fails clearly, `auto` records the lower level, and the ZIP is the
//! same entry and bytes at either level.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::http::{Response, Server};
use crate::common::*;
use crate::pyfixtures::WheelBuilder;
use crate::recipe_fixtures::{recipe, workspace};

const SEAM: &str = "PYSTORE_TEST_SANDBOX_UNAVAILABLE";

fn app_wheel(dir: &Path) -> Vec<PathBuf> {
    vec![WheelBuilder::new("app_core", "0.3", "py3-none-any")
        .file("app_core/__init__.py", b"MESSAGE = 'from the bundle'\n")
        .build(dir)]
}

fn pystore_with(store: &Path, wheel_dir: &Path) -> Command {
    let mut cmd = pystore(store);
    cmd.arg("--find-links").arg(wheel_dir);
    cmd
}

/// True when this machine gives the full sandbox (else the isolation test has nothing to test,
/// and says so).
fn full_sandbox_here(store: &Path, wheel_dir: &Path, recipe: &Path) -> bool {
    let out = run(pystore_with(store, wheel_dir)
        .args(["run", "--sandbox", "require"])
        .arg(recipe)
        .args(["--", "-c", "pass"]));
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("does not allow full isolation"), "{err}");
        eprintln!("skipped: no full sandbox on this machine: {err}");
        return false;
    }
    true
}

/// What the bundle's python sees, as JSON (see the checks in the test).
const PROBE: &str = r#"
import json, os, socket, sys
port, secret = int(sys.argv[1]), sys.argv[2]
r = {}
try:
    socket.create_connection(("127.0.0.1", port), timeout=3).close()
    r["tcp"] = "connected"
except OSError as e:
    r["tcp"] = type(e).__name__
try:
    r["home"] = open(secret).read()
except OSError as e:
    r["home"] = type(e).__name__
r["usr_local"] = os.path.exists("/usr/local")
r["root"] = sorted(os.listdir("/"))
writes = {}
for path in ["/x", "/etc/x", "/usr/lib/x", "/inputs/bundle/x", sys.prefix + "/x", "/tmp/x", "/proc/x", "/build/x"]:
    try:
        with open(path, "w") as f:
            f.write("x")
        writes[path] = "written"
    except OSError as e:
        writes[path] = type(e).__name__
r["writes"] = writes
r["cwd"] = os.getcwd()
r["pid"] = os.getpid()
r["uid"] = os.getuid()
r["env"] = sorted(os.environ)
r["prefix"] = sys.prefix
r["passwd"] = open("/etc/passwd").read().splitlines()[1]
r["path"] = [p for p in sys.path if p]
print(json.dumps(r))
"#;

#[test]
fn inside_the_sandbox_nothing_of_the_host_is_reachable() {
    let (work, wheel_dir) = workspace();
    let wheels = app_wheel(&wheel_dir);
    let recipe = recipe(work.path(), &wheels, &["app_core"]);
    let store = TempStore::new();
    if !full_sandbox_here(store.path(), &wheel_dir, &recipe) {
        return;
    }
    let server = Server::start(|_| Response::ok("reached"));
    let home = work.path().join("home");
    fs::create_dir_all(&home).unwrap();
    let secret = home.join("secret.txt");
    fs::write(&secret, "host secret").unwrap();
    let out = run_ok(
        pystore_with(store.path(), &wheel_dir)
            .env("HOME", &home)
            .env("PYTHONPATH", work.path())
            .env("PYTHONHOME", "/usr")
            .arg("run")
            .arg(&recipe)
            .args(["--target", "t", "--", "-c", PROBE])
            .arg(server.port().to_string())
            .arg(&secret),
    );
    let r: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(r["tcp"], "OSError", "{r}");
    assert_eq!(server.requests().len(), 0);
    assert_eq!(r["home"], "FileNotFoundError", "{r}");
    assert_eq!(r["usr_local"], false, "{r}");
    assert_eq!(
        r["root"],
        serde_json::json!(["build", "dev", "etc", "inputs", "lib", "lib64", "proc", "usr"]),
        "{r}"
    );
    let writes = r["writes"].as_object().unwrap();
    for (path, outcome) in writes {
        if path == "/build/x" {
            assert_eq!(outcome, "written", "{path}: {r}");
        } else {
            assert_ne!(outcome, "written", "{path} was writable: {r}");
        }
    }
    assert_eq!(r["cwd"], "/build");
    assert_eq!(r["pid"], 1);
    assert_eq!(r["uid"], 1000);
    assert_eq!(r["prefix"], "/inputs/bundle");
    assert!(r["passwd"]
        .as_str()
        .unwrap()
        .starts_with("pystore:x:1000:1000:"));
    // The environment is the fixed list; PYTHONPATH and PYTHONHOME never pass.
    assert_eq!(
        r["env"],
        serde_json::json!([
            "HOME",
            "LANG",
            "PATH",
            "PYTHONHASHSEED",
            "PYTHONNOUSERSITE",
            "SOURCE_DATE_EPOCH",
            "TMPDIR",
            "TZ"
        ]),
        "{r}"
    );
    for entry in r["path"].as_array().unwrap() {
        assert!(
            entry.as_str().unwrap().starts_with("/inputs/bundle/"),
            "{entry} on sys.path: {r}"
        );
    }
}

#[test]
fn run_passes_stdio_through_and_returns_pythons_exit_code() {
    let (work, wheel_dir) = workspace();
    let wheels = app_wheel(&wheel_dir);
    let recipe = recipe(work.path(), &wheels, &["app_core"]);
    let store = TempStore::new();
    let mut child = pystore_with(store.path(), &wheel_dir)
        .arg("run")
        .arg(&recipe)
        .args([
            "--",
            "-c",
            "import sys, app_core; print(app_core.MESSAGE); sys.exit(int(sys.stdin.read()))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"7").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from the bundle\n");
}

#[test]
fn run_refuses_a_target_that_cannot_run_here() {
    let (work, wheel_dir) = workspace();
    let archive = crate::recipe_fixtures::windows_archive(work.path());
    let spec = crate::recipe_fixtures::Spec {
        python: "3.12.7",
        platform: "x86_64-pc-windows-msvc",
        archive: &archive,
    };
    let wheels = vec![WheelBuilder::new("app_core", "0.3", "py3-none-any")
        .file("app_core/__init__.py", b"")
        .build(&wheel_dir)];
    let recipe = crate::recipe_fixtures::recipe_for(work.path(), &spec, &wheels, &[]);
    let store = TempStore::new();
    let err = run_fails(
        pystore_with(store.path(), &wheel_dir)
            .arg("run")
            .arg(&recipe)
            .args(["--", "-c", "pass"]),
        1,
    );
    assert!(
        err.contains("target t (x86_64-pc-windows-msvc) cannot run on this machine"),
        "{err}"
    );
}

fn realise_json(cmd: &mut Command) -> serde_json::Value {
    json(cmd)[0].clone()
}

#[test]
fn require_without_user_namespaces_fails_and_auto_records_the_lower_level() {
    let (work, wheel_dir) = workspace();
    let wheels = app_wheel(&wheel_dir);
    let recipe = recipe(work.path(), &wheels, &["app_core"]);

    let store = TempStore::new();
    let err = run_fails(
        pystore_with(store.path(), &wheel_dir)
            .env(SEAM, "user namespaces disabled by the test")
            .args(["realise", "--sandbox", "require"])
            .arg(&recipe),
        1,
    );
    assert!(
        err.contains("--sandbox require: this machine does not allow full isolation")
            && err.contains("user namespaces disabled by the test"),
        "{err}"
    );
    assert!(
        !store.path().join("entries").exists()
            || fs::read_dir(store.path().join("entries"))
                .unwrap()
                .next()
                .is_none(),
        "require left entries behind"
    );

    // auto: the lower level, recorded in the validation report and the provenance.
    let low = realise_json(
        pystore_with(store.path(), &wheel_dir)
            .env(SEAM, "user namespaces disabled by the test")
            .arg("realise")
            .arg(&recipe),
    );
    assert_eq!(low["sandbox"], "none");
    let report: serde_json::Value =
        serde_json::from_slice(&fs::read(low["validation"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(report["dynamic"]["sandbox"], "none", "{report}");
    assert_eq!(
        report["dynamic"]["modules"]["app_core"],
        "lib/python3.11/site-packages/app_core/__init__.py"
    );
    let provenance: serde_json::Value =
        serde_json::from_slice(&fs::read(low["provenance"].as_str().unwrap()).unwrap()).unwrap();
    let internal = &provenance["predicate"]["buildDefinition"]["internalParameters"];
    assert_eq!(internal["sandbox"], "none", "{provenance}");
    assert_eq!(internal["validated"], serde_json::json!(["app_core"]));

    // Without namespaces nothing stops python (the tests run as root) from writing into the
    // store, so it must not try: every entry is still intact.
    run_ok(pystore(store.path()).arg("verify"));

    // --sandbox off is recorded as such.
    let off = realise_json(
        pystore_with(store.path(), &wheel_dir)
            .args(["realise", "--sandbox", "off"])
            .arg(&recipe),
    );
    assert_eq!(off["sandbox"], "off");
    assert_eq!(off["zip"], low["zip"]);

    // This machine's own level, in another store: the same ZIP entry and bytes.
    let other = TempStore::new();
    let high = realise_json(
        pystore_with(other.path(), &wheel_dir)
            .arg("realise")
            .arg(&recipe),
    );
    let name = |v: &serde_json::Value| {
        Path::new(v["zip"].as_str().unwrap())
            .file_name()
            .unwrap()
            .to_owned()
    };
    assert_eq!(name(&high), name(&low));
    let digest = |v: &serde_json::Value| sha256_hex(&fs::read(v["zip"].as_str().unwrap()).unwrap());
    assert_eq!(digest(&high), digest(&low), "{high} {low}");
    if high["sandbox"] == "full" {
        let read = |v: &serde_json::Value| fs::read(v["provenance"].as_str().unwrap()).unwrap();
        assert_ne!(read(&high), read(&low), "the provenance records the level");
    }
}
