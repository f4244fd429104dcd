//! Interpreter trees from python-build-standalone archives, Windows embeddable zips and
//! installed prefixes; hostile archives.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::pyfixtures::*;
use pystore::archive::extract::Limits;
use pystore::python::interpreter::{rewrite_pth, METADATA_FILE};
use pystore::python::{capture_installed, unpack_embeddable, unpack_pbs, PbsFormat, Target};

fn linux(version: &str) -> Target {
    Target::new("x86_64-unknown-linux-gnu", None, version).unwrap()
}

fn windows(version: &str) -> Target {
    Target::new("x86_64-pc-windows-msvc", None, version).unwrap()
}

/// Runs the tree's python with an empty environment, isolated (-I: no user site, no
/// PYTHON* variables), from `/`.
fn run_python(python: &Path, code: &str) -> String {
    let out = Command::new(python)
        .args(["-I", "-c", code])
        .env_clear()
        .current_dir("/")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

const PROBE: &str = "import sys, sysconfig, json, sqlite3, ssl, hashlib\n\
print(sys.prefix)\n\
print(sysconfig.get_config_var('LIBDIR'))\n\
print(sysconfig.get_config_var('INCLUDEPY'))\n\
print(':'.join(sys.path))";

fn check_runs_inside(root: &Path) {
    let root = root.canonicalize().unwrap();
    let out = run_python(&root.join("bin/python3.11"), PROBE);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], root.to_str().unwrap(), "sys.prefix");
    assert!(
        lines[1].starts_with(root.to_str().unwrap()),
        "LIBDIR {}",
        lines[1]
    );
    assert!(
        lines[2].starts_with(root.to_str().unwrap()),
        "INCLUDEPY {}",
        lines[2]
    );
    for entry in lines[3].split(':') {
        assert!(
            entry.starts_with(root.to_str().unwrap()),
            "sys.path entry {entry} is outside the tree"
        );
    }
}

#[test]
fn debian_python_as_pbs_archive_runs_from_its_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = debian_pbs_archive(tmp.path());
    let out = tmp.path().join("interp");
    let info = unpack_pbs(
        &archive,
        PbsFormat::InstallOnly,
        &linux("3.11.2"),
        &out,
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(info.executable, "bin/python3.11");
    assert_eq!(info.stdlib, "lib/python3.11");
    assert_eq!(info.purelib, "lib/python3.11/site-packages");
    assert_eq!(info.scripts, "bin");
    assert_eq!(info.abi, "cp311");
    assert_eq!(info.pyc_magic, "a70d0d0a", "3495 is CPython 3.11's magic");
    assert_eq!(
        info.relocated,
        [
            "lib/python3.11/_sysconfigdata__x86_64-linux-gnu.py",
            "lib/python3.11/config-3.11-x86_64-linux-gnu/Makefile"
        ]
    );
    // Canonical JSON metadata.
    let text = fs::read_to_string(out.join(METADATA_FILE)).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        text,
        format!(
            "{}\n",
            pystore::hash::canonical_json::to_string(&value).unwrap()
        )
    );
    assert_eq!(value["version"], "3.11.2");
    // No build-machine path left in what was rewritten.
    let data = fs::read_to_string(out.join(&info.relocated[0])).unwrap();
    assert!(
        !data.contains("'/usr") && !data.contains("/build/"),
        "absolute paths remain"
    );
    check_runs_inside(&out);
    // The tree also runs after being moved.
    let moved = tmp.path().join("elsewhere/interp");
    fs::create_dir_all(moved.parent().unwrap()).unwrap();
    fs::rename(&out, &moved).unwrap();
    check_runs_inside(&moved);
    // And via bin/python3 -> python3.11.
    let prefix = run_python(&moved.join("bin/python3"), "import sys; print(sys.prefix)");
    assert_eq!(
        prefix.trim(),
        moved.canonicalize().unwrap().to_str().unwrap()
    );

    // Capturing that installed tree leaves out site-packages contents, caches and the marker.
    let site = moved.join("lib/python3.11/site-packages");
    fs::create_dir_all(site.join("junk")).unwrap();
    fs::write(site.join("junk/__init__.py"), "").unwrap();
    fs::create_dir_all(moved.join("lib/python3.11/__pycache__")).unwrap();
    fs::write(
        moved.join("lib/python3.11/__pycache__/os.cpython-311.pyc"),
        "x",
    )
    .unwrap();
    fs::write(
        moved.join("lib/python3.11/EXTERNALLY-MANAGED"),
        "[externally-managed]\n",
    )
    .unwrap();
    let captured = tmp.path().join("captured");
    let info = capture_installed(&moved, &linux("3.11.2"), &captured, &Limits::default()).unwrap();
    assert_eq!(info.source, "installed");
    assert!(captured.join("lib/python3.11/site-packages").is_dir());
    assert_eq!(
        fs::read_dir(captured.join("lib/python3.11/site-packages"))
            .unwrap()
            .count(),
        0
    );
    assert!(!captured.join("lib/python3.11/__pycache__").exists());
    assert!(!captured.join("lib/python3.11/EXTERNALLY-MANAGED").exists());
    check_runs_inside(&captured);
}

#[test]
fn declared_version_must_match_the_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = debian_pbs_archive(tmp.path());
    let out = tmp.path().join("interp");
    let err = unpack_pbs(
        &archive,
        PbsFormat::InstallOnly,
        &linux("3.12.7"),
        &out,
        &Limits::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("lib/python3.12") && err.contains("python3.11"),
        "{err}"
    );
    assert!(!out.exists());
}

fn windows_pbs_archive(dir: &Path, patchlevel: &str) -> std::path::PathBuf {
    let path = dir.join("cpython-3.12.7-x86_64-pc-windows-msvc-install_only.tar.gz");
    let mut tar = tar_gz(&path);
    tar_dir(&mut tar, "python");
    for (name, data) in [
        ("python/python.exe", &b"MZ fake"[..]),
        ("python/pythonw.exe", b"MZ fake"),
        ("python/python312.dll", b"MZ fake"),
        ("python/python3.dll", b"MZ fake"),
        ("python/DLLs/_ssl.pyd", b"MZ fake"),
        ("python/Lib/os.py", b"# os\n"),
        (
            "python/Lib/importlib/_bootstrap_external.py",
            b"# importlib\nMAGIC_NUMBER = (3531).to_bytes(2, 'little') + b'\\r\\n'\n",
        ),
        ("python/Lib/site-packages/README.txt", b"site-packages\n"),
    ] {
        tar_file(&mut tar, name, data, 0o644);
    }
    let patch = format!("#define PY_MINOR_VERSION 12\n#define PY_VERSION \"{patchlevel}\"\n");
    tar_file(
        &mut tar,
        "python/include/patchlevel.h",
        patch.as_bytes(),
        0o644,
    );
    finish_tar_gz(tar);
    path
}

#[test]
fn windows_pbs_archive_gets_windows_metadata() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = windows_pbs_archive(tmp.path(), "3.12.7");
    let out = tmp.path().join("win");
    let info = unpack_pbs(
        &archive,
        PbsFormat::InstallOnly,
        &windows("3.12.7"),
        &out,
        &Limits::default(),
    )
    .unwrap();
    let text = fs::read_to_string(out.join(METADATA_FILE)).unwrap();
    assert_eq!(
        text,
        "{\"abi\":\"cp312\",\"executable\":\"python.exe\",\"implementation\":\"cpython\",\
         \"platform\":\"x86_64-pc-windows-msvc\",\"platlib\":\"Lib/site-packages\",\
         \"purelib\":\"Lib/site-packages\",\"pyc_magic\":\"cb0d0d0a\",\"relocated\":[],\
         \"scripts\":\"Scripts\",\"source\":\"python-build-standalone\",\"stdlib\":\"Lib\",\
         \"version\":\"3.12.7\"}\n"
    );
    assert_eq!(info.pyc_magic, "cb0d0d0a");
    assert!(out.join("DLLs/_ssl.pyd").is_file());

    // patchlevel.h says 3.12.6: the declared 3.12.7 is wrong.
    let archive = windows_pbs_archive(tmp.path(), "3.12.6");
    let out = tmp.path().join("win2");
    let err = unpack_pbs(
        &archive,
        PbsFormat::InstallOnly,
        &windows("3.12.7"),
        &out,
        &Limits::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("3.12.6") && err.contains("3.12.7"), "{err}");
    assert!(!out.exists());
    // Declaring 3.13 for a python312.dll tree.
    let err = unpack_pbs(
        &archive,
        PbsFormat::InstallOnly,
        &windows("3.13.0"),
        &out,
        &Limits::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("python313.dll") && err.contains("python312.dll"),
        "{err}"
    );
}

#[test]
fn embeddable_zip_gets_site_packages_and_import_site() {
    let tmp = tempfile::tempdir().unwrap();
    let stdlib_zip = tmp.path().join("python312.zip");
    let mut pyc = vec![0xcb, 0x0d, 0x0d, 0x0a];
    pyc.extend_from_slice(&[0; 12]);
    write_zip(&stdlib_zip, &[ZipMember::file("os.pyc", &pyc)]);
    let pth = "python312.zip\r\n.\r\n\r\n# Uncomment to run site.main() automatically\r\n#import site\r\n";
    let archive = tmp.path().join("python-3.12.7-embed-amd64.zip");
    write_zip(
        &archive,
        &[
            ZipMember::file("python.exe", b"MZ fake"),
            ZipMember::file("pythonw.exe", b"MZ fake"),
            ZipMember::file("python312.dll", b"MZ fake"),
            ZipMember::file("python3.dll", b"MZ fake"),
            ZipMember::file("python312.zip", &fs::read(&stdlib_zip).unwrap()),
            ZipMember::file("python312._pth", pth.as_bytes()),
        ],
    );
    let out = tmp.path().join("embed");
    let info = unpack_embeddable(&archive, &windows("3.12.7"), &out, &Limits::default()).unwrap();
    assert_eq!(info.stdlib, "python312.zip");
    assert_eq!(info.source, "windows-embeddable");
    assert_eq!(info.pyc_magic, "cb0d0d0a");
    assert_eq!(
        fs::read_to_string(out.join("python312._pth")).unwrap(),
        "python312.zip\r\n.\r\n\r\n# Uncomment to run site.main() automatically\r\nLib\\site-packages\r\nimport site\r\n"
    );
    assert!(out.join("Lib/site-packages").is_dir());
    // Idempotent.
    let again = rewrite_pth(&fs::read_to_string(out.join("python312._pth")).unwrap());
    assert_eq!(
        again,
        fs::read_to_string(out.join("python312._pth")).unwrap()
    );
    // Wrong version: no python313._pth.
    let err = unpack_embeddable(
        &archive,
        &windows("3.13.0"),
        &tmp.path().join("e2"),
        &Limits::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("python313._pth"), "{err}");
    assert!(!tmp.path().join("e2").exists());
}

fn hostile(build: impl FnOnce(&mut tar::Builder<flate2::write::GzEncoder<fs::File>>)) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("hostile.tar.gz");
    let mut tar = tar_gz(&path);
    tar_dir(&mut tar, "python");
    tar_dir(&mut tar, "python/lib");
    tar_file(&mut tar, "python/lib/ok.txt", b"ok", 0o644);
    build(&mut tar);
    finish_tar_gz(tar);
    let out = tmp.path().join("out");
    let err = unpack_pbs(
        &path,
        PbsFormat::InstallOnly,
        &linux("3.11.2"),
        &out,
        &Limits::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(!out.exists(), "nothing may be left ({err})");
    assert!(
        !tmp.path().join("x").exists() && !tmp.path().join("evil").exists(),
        "wrote outside"
    );
    err
}

#[test]
fn hostile_archives_are_refused_naming_the_member() {
    let err = hostile(|t| tar_raw(t, "python/../../x", tar::EntryType::Regular, b"x", ""));
    assert!(
        err.contains("python/../../x") && err.contains("traversal"),
        "{err}"
    );
    let err = hostile(|t| tar_raw(t, "/tmp/abs", tar::EntryType::Regular, b"x", ""));
    assert!(
        err.contains("/tmp/abs") && err.contains("absolute"),
        "{err}"
    );
    let err = hostile(|t| tar_symlink(t, "python/lib/esc", "../../../evil"));
    assert!(
        err.contains("python/lib/esc") && err.contains("outside"),
        "{err}"
    );
    let err = hostile(|t| tar_symlink(t, "python/lib/abs", "/etc"));
    assert!(
        err.contains("python/lib/abs") && err.contains("relative"),
        "{err}"
    );
    let err = hostile(|t| {
        tar_symlink(t, "python/lib/d", "..");
        tar_file(t, "python/lib/d/evil", b"x", 0o644);
    });
    assert!(
        err.contains("python/lib/d/evil") && err.contains("below the symlink"),
        "{err}"
    );
    let err = hostile(|t| tar_raw(t, "python/lib/fifo", tar::EntryType::Fifo, b"", ""));
    assert!(
        err.contains("python/lib/fifo") && err.contains("fifo"),
        "{err}"
    );
    let err = hostile(|t| tar_raw(t, "python/lib/dev", tar::EntryType::Char, b"", ""));
    assert!(
        err.contains("python/lib/dev") && err.contains("device"),
        "{err}"
    );
    let err = hostile(|t| {
        tar_raw(
            t,
            "python/lib/hard",
            tar::EntryType::Link,
            b"",
            "python/lib/ok.txt",
        )
    });
    assert!(
        err.contains("python/lib/hard") && err.contains("hard link"),
        "{err}"
    );
    let err = hostile(|t| tar_file(t, "python/lib/ok.txt", b"again", 0o644));
    assert!(
        err.contains("python/lib/ok.txt") && err.contains("duplicate"),
        "{err}"
    );
}
