//! Bundle validation before anything is published: a contaminated host (PYTHONPATH, a raising
//! user-site sitecustomize.py, PYTHONHOME) changes nothing; modules only the host has, modules a
//! Windows bundle lacks, DLLs and shared libraries nobody provides fail, naming what is
//! missing, who needs it and the target, and no gc root or provenance is made.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use crate::pyfixtures::WheelBuilder;
use crate::recipe_fixtures::{recipe, recipe_for, windows_archive, workspace, Spec};

const SEAM: &str = "PYSTORE_TEST_SANDBOX_UNAVAILABLE";

/// A host whose Python setup would hijack an unisolated import: PYTHONPATH holds `app_core`
/// (which raises) and `host_only`; the user site has a sitecustomize.py that raises.
struct DirtyHost {
    home: PathBuf,
    pythonpath: PathBuf,
}

fn dirty_host(dir: &Path) -> DirtyHost {
    let pythonpath = dir.join("host-pythonpath");
    fs::create_dir_all(pythonpath.join("app_core")).unwrap();
    fs::write(
        pythonpath.join("app_core/__init__.py"),
        "raise RuntimeError('the host app_core was imported')\n",
    )
    .unwrap();
    fs::write(pythonpath.join("host_only.py"), "HOST = True\n").unwrap();
    fs::write(pythonpath.join("missing_dep.py"), "HOST = True\n").unwrap();
    let home = dir.join("home");
    let site = home.join(".local/lib/python3.11/site-packages");
    fs::create_dir_all(&site).unwrap();
    fs::write(
        site.join("sitecustomize.py"),
        "raise RuntimeError('the user site was read')\n",
    )
    .unwrap();
    DirtyHost { home, pythonpath }
}

fn dirty<'c>(cmd: &'c mut Command, host: &DirtyHost) -> &'c mut Command {
    cmd.env("HOME", &host.home)
        .env("PYTHONPATH", &host.pythonpath)
        .env("PYTHONHOME", "/nonexistent/pythonhome")
        .env("PYTHONSTARTUP", host.pythonpath.join("host_only.py"))
}

fn app_wheel(dir: &Path, init: &[u8]) -> Vec<PathBuf> {
    vec![WheelBuilder::new("app_core", "0.3", "py3-none-any")
        .file("app_core/__init__.py", init)
        .file("app_core/sub/__init__.py", b"")
        .file("app_core/sub/leaf.py", b"LEAF = 1\n")
        .build(dir)]
}

fn realise(store: &Path, wheel_dir: &Path, recipe: &Path) -> Command {
    let mut cmd = pystore(store);
    cmd.arg("--find-links")
        .arg(wheel_dir)
        .arg("realise")
        .arg(recipe);
    cmd
}

/// No ZIP entry was registered (validation comes first).
fn assert_not_published(store: &Path) {
    // The ZIP is built beside the validation, so a failed validation may leave it in the store;
    // but nothing publishes it: no gc root keeps it and no provenance vouches for it.
    let list = |dir: &str| -> Vec<String> {
        fs::read_dir(store.join(dir))
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let roots = list("roots");
    assert!(roots.is_empty(), "a gc root was made: {roots:?}");
    let names = list("entries");
    assert!(
        !names
            .iter()
            .any(|n| n.ends_with(".provenance.json") || n.ends_with(".intoto.jsonl")),
        "a provenance was made: {names:?}"
    );
}

#[test]
fn a_dirty_host_does_not_change_what_validates_at_either_level() {
    let (work, wheel_dir) = workspace();
    let host = dirty_host(work.path());
    let wheels = app_wheel(&wheel_dir, b"MESSAGE = 'bundle'\n");
    let recipe = recipe(
        work.path(),
        &wheels,
        &["app_core", "app_core.sub.leaf", "json"],
    );
    for seam in [None, Some("test: no namespaces")] {
        let store = TempStore::new();
        let mut cmd = realise(store.path(), &wheel_dir, &recipe);
        dirty(&mut cmd, &host).arg("--json");
        if let Some(reason) = seam {
            cmd.env(SEAM, reason);
        }
        let out: serde_json::Value = serde_json::from_str(&run_ok(&mut cmd)).unwrap();
        let report: serde_json::Value =
            serde_json::from_slice(&fs::read(out[0]["validation"].as_str().unwrap()).unwrap())
                .unwrap();
        let site = "lib/python3.11/site-packages";
        assert_eq!(
            report["modules"],
            serde_json::json!([
                {"name": "app_core", "kind": "package", "files": [format!("{site}/app_core/__init__.py")]},
                {"name": "app_core.sub.leaf", "kind": "module", "files": [format!("{site}/app_core/sub/leaf.py")]},
                {"name": "json", "kind": "package", "files": ["lib/python3.11/json/__init__.py"]},
            ]),
            "{report}"
        );
        let dynamic = &report["dynamic"];
        // Full where the machine allows namespaces (this one does; some CI runners do not).
        assert_eq!(dynamic["sandbox"], out[0]["sandbox"], "{report}");
        if seam.is_some() {
            assert_eq!(dynamic["sandbox"], "none", "{report}");
        }
        assert_eq!(
            dynamic["modules"],
            serde_json::json!({
                "app_core": format!("{site}/app_core/__init__.py"),
                "app_core.sub.leaf": format!("{site}/app_core/sub/leaf.py"),
                "json": "lib/python3.11/json/__init__.py",
            }),
            "{report}"
        );
        assert!(dynamic["loaded"].as_u64().unwrap() > 3, "{report}");
    }
}

#[test]
fn a_module_only_the_host_has_fails_naming_it() {
    let (work, wheel_dir) = workspace();
    let host = dirty_host(work.path());
    let wheels = app_wheel(&wheel_dir, b"");
    let recipe = recipe(work.path(), &wheels, &["app_core", "host_only"]);
    let store = TempStore::new();
    let err = run_fails(
        dirty(&mut realise(store.path(), &wheel_dir, &recipe), &host),
        1,
    );
    assert!(
        err.contains("target t: module host_only (in the recipe's validate list) is not in the bundle; searched lib/python3.11, lib/python3.11/lib-dynload, lib/python3.11/site-packages"),
        "{err}"
    );
    assert_not_published(store.path());
}

#[test]
fn an_import_that_needs_what_only_the_host_has_fails_in_the_sandbox() {
    let (work, wheel_dir) = workspace();
    let host = dirty_host(work.path());
    // Statically app_core is there; importing it needs missing_dep, which only the host's
    // PYTHONPATH has.
    let wheels = app_wheel(&wheel_dir, b"import missing_dep\n");
    let recipe = recipe(work.path(), &wheels, &["app_core"]);
    for seam in [None, Some("test: no namespaces")] {
        let store = TempStore::new();
        let mut cmd = realise(store.path(), &wheel_dir, &recipe);
        dirty(&mut cmd, &host);
        if let Some(reason) = seam {
            cmd.env(SEAM, reason);
        }
        let err = run_fails(&mut cmd, 1);
        assert!(
            err.contains(
                "target t: `import app_core` failed with the bundle's own python (sandbox level "
            ) && err.contains("): ModuleNotFoundError: No module named 'missing_dep'"),
            "{err}"
        );
        if seam.is_some() {
            assert!(err.contains("(sandbox level none)"), "{err}");
        }
        assert_not_published(store.path());
    }
}

#[test]
fn a_module_whose_atexit_handler_fails_fails_the_validation() {
    // The report is written before the interpreter exits, and the check still waits for the
    // exit (atexit handlers and all): a handler that fails is the app failing at every exit.
    let (work, wheel_dir) = workspace();
    let init = b"import atexit, os\natexit.register(os._exit, 3)\n";
    let wheels = app_wheel(&wheel_dir, init);
    let recipe = recipe(work.path(), &wheels, &["app_core"]);
    let store = TempStore::new();
    let err = run_fails(&mut realise(store.path(), &wheel_dir, &recipe), 1);
    assert!(
        err.contains("target t: running the bundle's python (")
            && err.contains("for validation: it exited with exit status: 3"),
        "{err}"
    );
    assert_not_published(store.path());
}

/// Sets the recipe's (single, last) target's glibc floor and rewrites its lock to match.
fn with_glibc(root: &Path, floor: &str) {
    let recipe = root.join("recipe.toml");
    let mut text = fs::read_to_string(&recipe).unwrap();
    text.push_str(&format!("glibc = \"{floor}\"\n"));
    fs::write(&recipe, text).unwrap();
    let lock_path = root.join("pystore.lock");
    let mut lock = pystore::lock::Lock::read(&lock_path).unwrap();
    let requirements = pystore::python::requirements::read(&root.join("requirements.txt")).unwrap();
    let target =
        pystore::python::TargetSpec::new("t", "x86_64-unknown-linux-gnu", Some(floor)).unwrap();
    lock.inputs = pystore::lock::inputs_hash(&requirements, &lock.python, &[&target]);
    lock.targets[0].spec = target;
    lock.write(&lock_path).unwrap();
}

/// A platform wheel whose extension module is Debian's python3.11 ELF, which needs libm, libz,
/// libexpat and libc.
fn expat_wheel(wheel_dir: &Path, tag: &str) -> Vec<PathBuf> {
    let native = WheelBuilder::new("native_ext", "2.0", tag);
    let mut native = native.file("native_ext/__init__.py", b"").executable(
        "native_ext/_speed.cpython-311-x86_64-linux-gnu.so",
        &fs::read(crate::pyfixtures::DEBIAN_PYTHON).unwrap(),
    );
    native.root_is_purelib = false;
    vec![native.build(wheel_dir)]
}

#[test]
fn a_library_the_floors_policy_lacks_is_refused_naming_the_policy() {
    // manylinux1 (glibc 2.5) does not promise libexpat.so.1; manylinux2014 does.
    let (work, wheel_dir) = workspace();
    let wheels = expat_wheel(&wheel_dir, "cp311-cp311-manylinux_2_5_x86_64");
    let recipe = recipe(work.path(), &wheels, &["native_ext"]);
    with_glibc(&recipe, "2.5");
    let store = TempStore::new();
    let err = run_fails(&mut realise(store.path(), &wheel_dir, &recipe), 1);
    assert!(
        err.contains("target t: lib/python3.11/site-packages/native_ext/_speed.cpython-311-x86_64-linux-gnu.so needs libexpat.so.1, which is not in the bundle and not a manylinux_2_5 (auditwheel 6.8.2 policy) system library"),
        "{err}"
    );
    assert_not_published(store.path());
}

#[test]
fn a_linux_extension_needing_libexpat_and_libz_validates_for_manylinux2014() {
    let (work, wheel_dir) = workspace();
    let wheels = expat_wheel(&wheel_dir, "cp311-cp311-manylinux_2_17_x86_64");
    let recipe = recipe(work.path(), &wheels, &["native_ext"]);
    let store = TempStore::new();
    let out: serde_json::Value = serde_json::from_str(&run_ok(
        realise(store.path(), &wheel_dir, &recipe).arg("--json"),
    ))
    .unwrap();
    let report: serde_json::Value =
        serde_json::from_slice(&fs::read(out[0]["validation"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(report["native_files"], 1, "{report}");
}

/// Compiles `source` (C) into a shared library `out` with `cc`, with extra linker `args`.
fn cc_shared(out: &Path, soname: &str, source: &str, args: &[&str]) {
    let c = out.with_extension("c");
    fs::write(&c, source).unwrap();
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(out)
        .arg(format!("-Wl,-soname,{soname}"))
        .arg(&c)
        .args(args)
        .status()
        .expect("cc (the C compiler Rust links with) runs");
    assert!(status.success(), "cc failed for {}", out.display());
}

/// psycopg2-binary's shape: an extension module finding `libcrypto-….so.3` through
/// `$ORIGIN/../psycopg2_binary.libs`, and that libcrypto needing the system's libz.so.1 (and
/// `needs`, when given: a library the floor's policy may lack).
fn psycopg2_binary_like(dir: &Path, wheel_dir: &Path, tag: &str, needs: &str) -> Vec<PathBuf> {
    let build = dir.join("cc");
    fs::create_dir_all(&build).unwrap();
    let crypto_name = "libcrypto-5f3a1c9e.so.3";
    let crypto = build.join(crypto_name);
    cc_shared(
        &crypto,
        crypto_name,
        "extern unsigned long zlibCompileFlags(void);\nunsigned long crypto_flags(void) { return zlibCompileFlags(); }\n",
        &["-Wl,--no-as-needed", "-l:libz.so.1", needs],
    );
    let ext = build.join("_psycopg.so");
    cc_shared(
        &ext,
        "_psycopg.cpython-311-x86_64-linux-gnu.so",
        "extern unsigned long crypto_flags(void);\nunsigned long psycopg_flags(void) { return crypto_flags(); }\n",
        &[
            "-Wl,--no-as-needed",
            &format!("-L{}", build.display()),
            &format!("-l:{crypto_name}"),
            "-Wl,-rpath,$ORIGIN/../psycopg2_binary.libs",
        ],
    );
    let mut wheel = WheelBuilder::new("psycopg2_binary", "2.9.10", tag)
        .file("psycopg2/__init__.py", b"")
        .executable(
            "psycopg2/_psycopg.cpython-311-x86_64-linux-gnu.so",
            &fs::read(&ext).unwrap(),
        )
        .executable(
            &format!("psycopg2_binary.libs/{crypto_name}"),
            &fs::read(&crypto).unwrap(),
        );
    wheel.root_is_purelib = false;
    vec![wheel.build(wheel_dir)]
}

#[test]
fn a_bundled_libcrypto_needing_libz_validates_for_manylinux2014() {
    // The real failure (issue 14, item 1): psycopg2-binary's libcrypto needs libz.so.1, which
    // every manylinux policy lets a wheel take from the system.
    let (work, wheel_dir) = workspace();
    let wheels = psycopg2_binary_like(
        work.path(),
        &wheel_dir,
        "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64",
        "-l:libz.so.1",
    );
    let recipe = recipe(work.path(), &wheels, &["psycopg2"]);
    let store = TempStore::new();
    let out: serde_json::Value = serde_json::from_str(&run_ok(
        realise(store.path(), &wheel_dir, &recipe).arg("--json"),
    ))
    .unwrap();
    let report: serde_json::Value =
        serde_json::from_slice(&fs::read(out[0]["validation"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(report["native_files"], 2, "{report}");
}

#[test]
fn a_bundled_library_needing_one_no_policy_has_is_refused() {
    // libssl is in no manylinux policy: a wheel must bundle it.
    let (work, wheel_dir) = workspace();
    let wheels = psycopg2_binary_like(
        work.path(),
        &wheel_dir,
        "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64",
        "-l:libssl.so.3",
    );
    let recipe = recipe(work.path(), &wheels, &["psycopg2"]);
    let store = TempStore::new();
    let err = run_fails(&mut realise(store.path(), &wheel_dir, &recipe), 1);
    assert!(
        err.contains("target t: lib/python3.11/site-packages/psycopg2_binary.libs/libcrypto-5f3a1c9e.so.3 needs libssl.so.3, which is not in the bundle and not a manylinux_2_17 (auditwheel 6.8.2 policy) system library"),
        "{err}"
    );
    assert_not_published(store.path());
}

/// The 64-bit launcher stub: a real PE that imports system DLLs only.
fn launcher() -> Vec<u8> {
    fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/python/data/launchers/t64.exe"
    ))
    .unwrap()
}

/// The launcher with its first imported DLL renamed to `name` (same length).
fn importing(name: &str) -> Vec<u8> {
    let mut bytes = launcher();
    let first = "KERNEL32.dll";
    assert_eq!(first.len(), name.len());
    let at = bytes
        .windows(first.len() + 1)
        .position(|w| {
            w[..first.len()].eq_ignore_ascii_case(first.as_bytes()) && w[first.len()] == 0
        })
        .expect("the launcher imports KERNEL32.dll");
    bytes[at..at + first.len()].copy_from_slice(name.as_bytes());
    bytes
}

fn windows_recipe(work: &Path, wheel_dir: &Path, pyd: Vec<u8>, validate: &[&str]) -> PathBuf {
    windows_recipe_with(work, wheel_dir, pyd, &[], validate)
}

fn windows_recipe_with(
    work: &Path,
    wheel_dir: &Path,
    pyd: Vec<u8>,
    extra: &[(&str, Vec<u8>)],
    validate: &[&str],
) -> PathBuf {
    let mut native = WheelBuilder::new("fast_ext", "1.2", "cp312-cp312-win_amd64")
        .file("fast_ext/__init__.py", b"from ._speed import go\n")
        .file("fast_ext/_speed.cp312-win_amd64.pyd", &pyd);
    for (name, data) in extra {
        native = native.file(name, data);
    }
    let wheels = vec![native.build(wheel_dir)];
    let archive = windows_archive(work);
    let spec = Spec {
        python: "3.12.7",
        platform: "x86_64-pc-windows-msvc",
        archive: &archive,
    };
    recipe_for(work, &spec, &wheels, validate)
}

#[test]
fn a_windows_pyd_importing_a_dll_the_bundle_lacks_fails_naming_both() {
    let (work, wheel_dir) = workspace();
    let recipe = windows_recipe(
        work.path(),
        &wheel_dir,
        importing("libfoo-9.dll"),
        &["fast_ext"],
    );
    let store = TempStore::new();
    let err = run_fails(&mut realise(store.path(), &wheel_dir, &recipe), 1);
    assert!(
        err.contains("target t: Lib/site-packages/fast_ext/_speed.cp312-win_amd64.pyd needs libfoo-9.dll, which is not in the bundle and not a Windows system library"),
        "{err}"
    );
    assert_not_published(store.path());
}

#[test]
fn a_windows_pyd_importing_system_and_bundled_dlls_validates() {
    let (work, wheel_dir) = workspace();
    // The DLL ships in the wheel's delvewheel-style .libs directory (a real PE, with another
    // case: Windows file names are case-insensitive).
    let recipe = windows_recipe_with(
        work.path(),
        &wheel_dir,
        importing("libfoo-9.dll"),
        &[("fast_ext.libs/LIBFOO-9.DLL", launcher())],
        &["fast_ext", "fast_ext._speed", "os"],
    );
    let store = TempStore::new();
    let out: serde_json::Value = serde_json::from_str(&run_ok(
        realise(store.path(), &wheel_dir, &recipe).arg("--json"),
    ))
    .unwrap();
    let report: serde_json::Value =
        serde_json::from_slice(&fs::read(out[0]["validation"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(report["dynamic"], serde_json::Value::Null, "{report}");
    assert_eq!(report["native_files"], 2, "{report}");
    assert_eq!(
        report["modules"][1]["files"],
        serde_json::json!(["Lib/site-packages/fast_ext/_speed.cp312-win_amd64.pyd"])
    );
    assert_eq!(
        report["modules"][2]["files"],
        serde_json::json!(["Lib/os.py"])
    );
    let provenance: serde_json::Value =
        serde_json::from_slice(&fs::read(out[0]["provenance"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(
        provenance["predicate"]["buildDefinition"]["internalParameters"]["sandbox"],
        "static"
    );
    // realise says what provenance says: a target that cannot run here validated statically,
    // whatever sandbox this machine has (issue 14, item 5).
    assert_eq!(out[0]["sandbox"], "static", "{out}");
    let text = run_ok(&mut realise(store.path(), &wheel_dir, &recipe));
    let validated = text
        .lines()
        .find(|l| l.trim_start().starts_with("validated: "))
        .unwrap_or_default();
    assert!(validated.ends_with(" (static)"), "{text}");
}

#[test]
fn a_module_absent_from_a_windows_bundle_fails_naming_it() {
    let (work, wheel_dir) = workspace();
    let recipe = windows_recipe(
        work.path(),
        &wheel_dir,
        launcher(),
        &["fast_ext", "lxml.etree"],
    );
    let store = TempStore::new();
    let err = run_fails(&mut realise(store.path(), &wheel_dir, &recipe), 1);
    assert!(
        err.contains("target t: module lxml.etree (in the recipe's validate list) is not in the bundle; searched Lib, DLLs, ., Lib/site-packages"),
        "{err}"
    );
    assert_not_published(store.path());
}

/// A Windows embeddable distribution: the stdlib as `python312.zip` of `.pyc` files.
fn embeddable_archive(dir: &Path) -> PathBuf {
    use crate::pyfixtures::{write_zip, ZipMember};
    let mut pyc = vec![0xcb, 0x0d, 0x0d, 0x0a];
    pyc.extend_from_slice(&[0; 12]);
    let stdlib = dir.join("python312.zip");
    write_zip(
        &stdlib,
        &[
            ZipMember::file("os.pyc", &pyc),
            ZipMember::file("json/__init__.pyc", &pyc),
            ZipMember::file("json/decoder.pyc", &pyc),
        ],
    );
    let archive = dir.join("python-3.12.7-embed-amd64.zip");
    write_zip(
        &archive,
        &[
            ZipMember::file("python.exe", &launcher()),
            ZipMember::file("python312.dll", b"MZ stand-in"),
            ZipMember::file("_socket.pyd", b"MZ stand-in"),
            ZipMember::file("python312.zip", &fs::read(&stdlib).unwrap()),
            ZipMember::file("python312._pth", b"python312.zip\r\n.\r\n#import site\r\n"),
        ],
    );
    archive
}

#[test]
fn an_embeddable_interpreters_stdlib_zip_and_root_extensions_resolve() {
    let (work, wheel_dir) = workspace();
    let wheels = vec![WheelBuilder::new("app_core", "0.3", "py3-none-any")
        .file("app_core/__init__.py", b"")
        .build(&wheel_dir)];
    let archive = embeddable_archive(work.path());
    let spec = Spec {
        python: "3.12.7",
        platform: "x86_64-pc-windows-msvc",
        archive: &archive,
    };
    let recipe = recipe_for(
        work.path(),
        &spec,
        &wheels,
        &["app_core", "json.decoder", "os", "_socket"],
    );
    let store = TempStore::new();
    let out: serde_json::Value = serde_json::from_str(&run_ok(
        realise(store.path(), &wheel_dir, &recipe).arg("--json"),
    ))
    .unwrap();
    let report: serde_json::Value =
        serde_json::from_slice(&fs::read(out[0]["validation"].as_str().unwrap()).unwrap()).unwrap();
    let files: Vec<&serde_json::Value> = report["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["files"][0])
        .collect();
    assert_eq!(
        files,
        [
            "_socket.pyd",
            "Lib/site-packages/app_core/__init__.py",
            "python312.zip/json/decoder.pyc",
            "python312.zip/os.pyc"
        ],
        "{report}"
    );

    let recipe = recipe_for(work.path(), &spec, &wheels, &["xml.dom"]);
    let err = run_fails(&mut realise(store.path(), &wheel_dir, &recipe), 1);
    assert!(
        err.contains("module xml.dom (in the recipe's validate list) is not in the bundle; searched python312.zip, DLLs, ., Lib/site-packages"),
        "{err}"
    );
}

#[test]
fn each_module_is_imported_by_an_interpreter_of_its_own_and_the_report_is_the_same_at_every_j() {
    let (work, wheel_dir) = workspace();
    let wheels = vec![WheelBuilder::new("app_core", "0.3", "py3-none-any")
        .file("app_core/__init__.py", b"")
        .file("app_core/early.py", b"import builtins\nbuiltins.EARLY_RAN = True\n")
        .file(
            "app_core/late.py",
            b"import builtins\nif not getattr(builtins, 'EARLY_RAN', False):\n    raise ImportError('app_core.early did not run first in this interpreter')\n",
        )
        .file("app_core/sub/__init__.py", b"")
        .file("app_core/sub/leaf.py", b"LEAF = 1\n")
        .build(&wheel_dir)];
    // Together, early (sorted first) would make late pass; an application that imports only
    // late would fail, and so does the validation.
    let recipe_dir = work.path().join("together");
    fs::create_dir_all(&recipe_dir).unwrap();
    let together = recipe(&recipe_dir, &wheels, &["app_core.early", "app_core.late"]);
    for jobs in ["1", "2"] {
        let store = TempStore::new();
        let mut cmd = pystore(store.path());
        cmd.args(["-j", jobs, "--find-links"])
            .arg(&wheel_dir)
            .arg("realise")
            .arg(&together);
        let err = run_fails(&mut cmd, 1);
        assert!(
            err.contains("target t: `import app_core.late` failed with the bundle's own python")
                && err
                    .contains("ImportError: app_core.early did not run first in this interpreter"),
            "-j {jobs}: {err}"
        );
        assert_not_published(store.path());
    }

    let recipe_dir = work.path().join("apart");
    fs::create_dir_all(&recipe_dir).unwrap();
    let apart = recipe(
        &recipe_dir,
        &wheels,
        &["app_core.sub.leaf", "app_core", "app_core.early", "json"],
    );
    let reports: Vec<(String, Vec<u8>)> = ["1", "3"]
        .iter()
        .map(|jobs| {
            let store = TempStore::new();
            let mut cmd = pystore(store.path());
            cmd.args(["-j", jobs, "--find-links"])
                .arg(&wheel_dir)
                .arg("realise")
                .arg(&apart)
                .arg("--json");
            let out: serde_json::Value = serde_json::from_str(&run_ok(&mut cmd)).unwrap();
            let path = out[0]["validation"].as_str().unwrap().to_owned();
            let bytes = fs::read(&path).unwrap();
            let name = Path::new(&path)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (name, bytes)
        })
        .collect();
    assert_eq!(
        reports[0], reports[1],
        "the validation entry differs between -j 1 and -j 3"
    );
    let report: serde_json::Value = serde_json::from_slice(&reports[0].1).unwrap();
    let site = "lib/python3.11/site-packages";
    assert_eq!(
        report["dynamic"]["modules"],
        serde_json::json!({
            "app_core": format!("{site}/app_core/__init__.py"),
            "app_core.early": format!("{site}/app_core/early.py"),
            "app_core.sub.leaf": format!("{site}/app_core/sub/leaf.py"),
            "json": "lib/python3.11/json/__init__.py",
        }),
        "{report}"
    );
}
