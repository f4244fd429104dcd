//! Damaged entries are never used or shipped: a flipped byte in a ZIP entry, a bundle file or an
//! interpreter file makes realise (`--out`), push and `--check` refuse, naming the entry and
//! `pystore verify --repair`; after the repair, realise rebuilds the original bytes.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::common::*;
use crate::recipe_fixtures::{demo_wheels as wheels, index_server as index, recipe, workspace};

/// Replaces `file` (a read-only store file) with a copy that has one bit flipped, keeping its
/// mode. A new file, not a write into the old one: the store hard-links identical files of
/// different entries, and only this entry is to be damaged.
fn flip_byte(file: &Path) {
    let mode = fs::metadata(file).unwrap().permissions().mode();
    let dir = file.parent().unwrap();
    let dir_mode = fs::metadata(dir).unwrap().permissions().mode();
    let mut bytes = fs::read(file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    fs::remove_file(file).unwrap();
    fs::write(file, &bytes).unwrap();
    fs::set_permissions(file, fs::Permissions::from_mode(mode)).unwrap();
    fs::set_permissions(dir, fs::Permissions::from_mode(dir_mode)).unwrap();
}

struct Case {
    store: TempStore,
    recipe: PathBuf,
    server: crate::common::http::Server,
    work: tempfile::TempDir,
}

impl Case {
    fn new() -> Case {
        let (work, wheel_dir) = workspace();
        let wheels = wheels(&wheel_dir);
        let server = index(&wheels);
        let recipe = recipe(work.path(), &wheels, &["app_core"]);
        Case {
            store: TempStore::new(),
            recipe,
            server,
            work,
        }
    }

    fn cmd(&self) -> std::process::Command {
        let mut cmd = pystore(self.store.path());
        cmd.env("PYSTORE_INDEX_URL", self.server.url("/simple/"));
        cmd
    }

    fn out_dir(&self) -> PathBuf {
        self.work.path().join("out")
    }

    /// `realise --json --out DIR`: the one target's JSON.
    fn realise(&self) -> serde_json::Value {
        let out = run_ok(
            self.cmd()
                .args(["--json", "realise"])
                .arg(&self.recipe)
                .arg("--out")
                .arg(self.out_dir()),
        );
        serde_json::from_str::<serde_json::Value>(&out).unwrap()[0].clone()
    }

    /// Every way of using the store that must refuse while `entry` is damaged; each names it
    /// and the repair.
    fn assert_refused(&self, entry: &Path, zip: &Path) {
        let named = |err: &str| {
            assert!(
                err.contains(&format!("{} is damaged", entry.display()))
                    && err.contains("pystore verify --repair"),
                "{err}"
            );
        };
        let copied = self.out_dir().join("demo-1.0.0-t.zip");
        let _ = fs::remove_file(&copied);
        named(&run_fails(
            self.cmd()
                .arg("realise")
                .arg(&self.recipe)
                .arg("--out")
                .arg(self.out_dir()),
            1,
        ));
        assert!(!copied.exists(), "nothing copied out");
        let remote = self.work.path().join("remote");
        named(&run_fails(
            self.cmd()
                .arg("push")
                .arg(zip)
                .arg("--to")
                .arg(format!("file://{}", remote.display())),
            1,
        ));
        assert!(
            list(&remote).iter().all(|name| !name.ends_with(".tar.zst")),
            "no archive pushed: {:?}",
            list(&remote)
        );
        named(&run_fails(
            self.cmd().arg("realise").arg(&self.recipe).arg("--check"),
            1,
        ));
    }

    /// `verify` names the entry and exits 1; `verify --repair` invalidates it and what was
    /// built from it; realising again gives the original bytes.
    fn repair_and_rebuild(&self, entry: &Path, file: &Path, original: &[u8], zip_bytes: &[u8]) {
        let out = run_fails(self.cmd().arg("verify"), 1);
        assert!(out.is_empty() || !out.contains("error"), "{out}");
        let report = run(self.cmd().arg("verify"));
        let stdout = String::from_utf8_lossy(&report.stdout);
        assert!(
            stdout.contains(&format!("damaged: {}", entry.display())),
            "{stdout}"
        );
        let repaired = run_ok(self.cmd().args(["verify", "--repair"]));
        assert!(
            repaired.contains(&format!("invalidated: {}", entry.display())),
            "{repaired}"
        );
        run_ok(self.cmd().arg("verify"));
        let again = self.realise();
        assert_eq!(fs::read(file).unwrap(), original, "{}", file.display());
        let zip = PathBuf::from(again["zip"].as_str().unwrap());
        assert_eq!(fs::read(zip).unwrap(), zip_bytes);
        assert_eq!(
            fs::read(self.out_dir().join("demo-1.0.0-t.zip")).unwrap(),
            zip_bytes
        );
    }
}

#[test]
fn a_damaged_zip_bundle_file_or_interpreter_file_is_refused_until_repaired() {
    let case = Case::new();
    let first = case.realise();
    let zip = PathBuf::from(first["zip"].as_str().unwrap());
    let bundle = PathBuf::from(first["bundle"].as_str().unwrap());
    let zip_bytes = fs::read(&zip).unwrap();

    // 1. One byte of the ZIP entry.
    let original = zip_bytes.clone();
    flip_byte(&zip);
    case.assert_refused(&zip, &zip);
    case.repair_and_rebuild(&zip, &zip, &original, &zip_bytes);

    // 2. One byte of a file in the bundle.
    let file = bundle.join("lib/python3.11/site-packages/app_core/data.txt");
    let original = fs::read(&file).unwrap();
    flip_byte(&file);
    case.assert_refused(&bundle, &zip);
    case.repair_and_rebuild(&bundle, &file, &original, &zip_bytes);

    // 3. One byte of a file of the interpreter entry: realise itself uses only the bundle, so
    // it refuses when it builds something new from the interpreter (here: another version).
    let closure: serde_json::Value = serde_json::from_str(&run_ok(
        case.cmd()
            .args(["--json", "path-info", "--closure"])
            .arg(&bundle),
    ))
    .unwrap();
    let interpreter = closure
        .as_array()
        .unwrap()
        .iter()
        .map(|e| PathBuf::from(e["path"].as_str().unwrap()))
        .find(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            // The interpreter, not its standard library's bytecode entry.
            name.contains("-cpython-") && !name.ends_with("-pyc") && p.is_dir()
        })
        .expect("the interpreter entry is in the bundle's closure");
    let file = interpreter.join("lib/python3.11/os.py");
    let original = fs::read(&file).unwrap();
    flip_byte(&file);
    let push = run_fails(
        case.cmd().arg("push").arg(&zip).arg("--to").arg(format!(
            "file://{}",
            case.work.path().join("remote").display()
        )),
        1,
    );
    assert!(
        push.contains(&format!("{} is damaged", interpreter.display())),
        "{push}"
    );
    let check = run_fails(
        case.cmd().arg("realise").arg(&case.recipe).arg("--check"),
        1,
    );
    assert!(
        check.contains(&format!("{} is damaged", interpreter.display()))
            && !check.contains("reproducible"),
        "{check}"
    );
    let toml = case.recipe.join("recipe.toml");
    let text = fs::read_to_string(&toml).unwrap();
    fs::write(
        &toml,
        text.replace("version = \"1.0.0\"", "version = \"1.0.1\""),
    )
    .unwrap();
    let newer = run_fails(case.cmd().arg("realise").arg(&case.recipe), 1);
    assert!(
        newer.contains(&format!("{} is damaged", interpreter.display())),
        "{newer}"
    );
    fs::write(&toml, text).unwrap();
    case.repair_and_rebuild(&interpreter, &file, &original, &zip_bytes);
}

#[test]
fn a_registered_entry_whose_directory_is_gone_is_named_and_repairable() {
    let case = Case::new();
    let first = case.realise();
    let zip = PathBuf::from(first["zip"].as_str().unwrap());
    let bundle = PathBuf::from(first["bundle"].as_str().unwrap());
    let zip_bytes = fs::read(&zip).unwrap();
    let file = bundle.join("lib/python3.11/site-packages/app_core/data.txt");
    let original = fs::read(&file).unwrap();
    make_writable_tree(&bundle);
    fs::remove_dir_all(&bundle).unwrap();
    let err = run_fails(case.cmd().arg("realise").arg(&case.recipe), 1);
    assert!(
        err.contains(&format!(
            "{} is damaged (its directory is missing)",
            bundle.display()
        )) && err.contains("pystore verify --repair"),
        "{err}"
    );
    case.repair_and_rebuild(&bundle, &file, &original, &zip_bytes);
}

/// Makes a store entry's directories writable so that the test can delete it.
fn make_writable_tree(path: &Path) {
    let meta = fs::symlink_metadata(path).unwrap();
    if meta.is_dir() {
        fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
        for child in fs::read_dir(path).unwrap() {
            make_writable_tree(&child.unwrap().path());
        }
    }
}
