//! Wheel installation: the installed tree against pip's, and hostile wheels.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::pyfixtures::{demo_wheel, native_wheel, WheelBuilder, ZipMember};
use pystore::python::{install_wheel, InstallOptions, Scheme, Target};

fn linux311() -> Target {
    Target::new("x86_64-unknown-linux-gnu", None, "3.11.2").unwrap()
}

/// Files of a tree: relative path → (bytes, executable).
fn files(root: &Path) -> BTreeMap<String, (Vec<u8>, bool)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                let exec = meta.permissions().mode() & 0o100 != 0;
                out.insert(rel, (fs::read(&path).unwrap(), exec));
            }
        }
    }
    out
}

fn pip_install(wheel: &Path, dir: &Path, extra: &[&str]) {
    let out = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--isolated",
            "--no-index",
            "--no-deps",
            "--no-compile",
        ])
        .args(["--disable-pip-version-check", "--target"])
        .arg(dir)
        .args(extra)
        .arg(wheel)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run python3 -m pip (the tests need python3 with pip)");
    assert!(
        out.status.success(),
        "pip failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Installs with pystore and with pip --target and compares. pip --target puts the
/// site-packages contents at the top of DIR, scripts in DIR/bin and data files in DIR; ours are
/// under `lib/python3.11/site-packages`, `bin` and the root, so our paths are mapped first.
///
/// Allowed differences, each checked to exist only where expected:
/// - `*.dist-info/RECORD`: ours lists installed paths relative to site-packages with our
///   launchers' hashes; pip's reflects its own layout and scripts.
/// - `*.dist-info/INSTALLER`: `pystore` vs `pip`.
/// - `*.dist-info/REQUESTED`, `*.dist-info/direct_url.json`: pip writes them for a wheel named
///   on its command line; we write REQUESTED only when asked and never direct_url.json (it
///   would hold the absolute path of the wheel).
/// - launcher scripts (`launchers`): pip writes `#!/abs/path/python`; ours find the bundle's
///   python relative to themselves. Their Python bodies must still agree (checked).
fn compare_with_pip(wheel: &WheelBuilder, extra_pip_args: &[&str], launchers: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let path = wheel.build(tmp.path());
    let ours = tmp.path().join("ours");
    let installed = install_wheel(
        &path,
        &linux311(),
        &Scheme::for_target(&linux311()),
        &ours,
        &InstallOptions::default(),
    )
    .unwrap();
    let pip = tmp.path().join("pip");
    pip_install(&path, &pip, extra_pip_args);

    let site = "lib/python3.11/site-packages/";
    let ours_files: BTreeMap<String, (Vec<u8>, bool)> = files(&ours)
        .into_iter()
        .map(|(p, v)| (p.strip_prefix(site).map(str::to_owned).unwrap_or(p), v))
        .collect();
    let pip_files = files(&pip);
    assert_eq!(
        installed.files.len(),
        ours_files.len(),
        "Installed.files lists every file"
    );
    let info = wheel.dist_info();
    let allowed_meta = ["RECORD", "INSTALLER", "REQUESTED", "direct_url.json"];
    let is_meta = |p: &str| {
        allowed_meta
            .iter()
            .any(|m| p == format!("{info}/{m}").as_str())
    };
    for path in ours_files.keys().chain(pip_files.keys()) {
        if is_meta(path) {
            continue;
        }
        let (ours_file, pip_file) = (ours_files.get(path), pip_files.get(path));
        let (Some((ob, ox)), Some((pb, px))) = (ours_file, pip_file) else {
            panic!(
                "{path} only in {}",
                if ours_file.is_some() { "ours" } else { "pip's" }
            );
        };
        assert_eq!(ox, px, "{path}: executable bit differs");
        if launchers.contains(&path.as_str()) {
            // Same Python body after the interpreter line(s).
            let pip_body = String::from_utf8_lossy(pb);
            let pip_body = pip_body.split_once('\n').unwrap().1;
            let ours_text = String::from_utf8_lossy(ob);
            assert!(
                ours_text.starts_with("#!/bin/sh\n'''exec' "),
                "{path}: {ours_text}"
            );
            assert!(
                !ours_text.contains(tmp.path().to_str().unwrap()),
                "{path} has an absolute path"
            );
            assert!(
                ours_text.ends_with(pip_body),
                "{path}: body differs\nours:\n{ours_text}\npip:\n{pip_body}"
            );
        } else {
            assert!(ob == pb, "{path}: contents differ");
        }
    }
    for launcher in launchers {
        assert!(ours_files.contains_key(*launcher), "{launcher} missing");
    }
    assert_eq!(ours_files[&format!("{info}/INSTALLER")].0, b"pystore\n");
    assert!(!ours_files.contains_key(&format!("{info}/REQUESTED")));
    // Our RECORD lists every installed file but itself with its real hash.
    let record = String::from_utf8(ours_files[&format!("{info}/RECORD")].0.clone()).unwrap();
    let mut rows = 0;
    for line in record.lines() {
        let mut parts = line.rsplitn(3, ',');
        let (size, hash, rel) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        let full = ours.join(site).join(rel);
        let full = full.canonicalize().unwrap_or(full);
        if rel.ends_with("/RECORD") {
            assert_eq!((hash, size), ("", ""));
        } else {
            let bytes = fs::read(&full).unwrap_or_else(|_| panic!("RECORD row {rel} exists"));
            assert_eq!(hash, crate::pyfixtures::record_hash(&bytes), "{rel}");
            assert_eq!(size, bytes.len().to_string());
        }
        rows += 1;
    }
    assert_eq!(rows, ours_files.len());
}

#[test]
fn pure_wheel_with_scripts_and_data_matches_pip() {
    compare_with_pip(
        &demo_wheel(),
        &[],
        &["bin/demo-cli", "bin/demo-gui", "bin/demo-script"],
    );
}

#[test]
fn platlib_wheel_matches_pip() {
    compare_with_pip(
        &native_wheel(),
        &[
            "--platform",
            "manylinux_2_17_x86_64",
            "--python-version",
            "3.11",
            "--implementation",
            "cp",
            "--abi",
            "cp311",
            "--only-binary=:all:",
        ],
        &[],
    );
}

#[test]
fn unix_launchers_find_the_bundle_python_relatively() {
    let tmp = tempfile::tempdir().unwrap();
    let wheel = demo_wheel().build(tmp.path());
    // Install, then move the tree elsewhere: the launcher must not depend on where it was made.
    let first = tmp.path().join("first");
    install_wheel(
        &wheel,
        &linux311(),
        &Scheme::for_target(&linux311()),
        &first,
        &InstallOptions {
            requested: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(first
        .join("lib/python3.11/site-packages/demo_pkg-1.0.dist-info/REQUESTED")
        .exists());
    let bundle = tmp.path().join("moved/bundle");
    fs::create_dir_all(bundle.parent().unwrap()).unwrap();
    fs::rename(&first, &bundle).unwrap();
    // The bundle's interpreter: the machine's python3, as bin/python3.11 of the bundle.
    let host_python = which_python();
    std::os::unix::fs::symlink(&host_python, bundle.join("bin/python3.11")).unwrap();
    let site = bundle.join("lib/python3.11/site-packages");
    let run = |script: &str, args: &[&str]| {
        let out = Command::new(bundle.join("bin").join(script))
            .args(args)
            .env_clear()
            .env("PYTHONPATH", &site)
            .current_dir("/")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(run("demo-cli", &["a", "b c"]), "demo main ['a', 'b c']\n");
    assert_eq!(run("demo-gui", &[]), "demo gui\n");
    assert_eq!(run("demo-script", &[]), "script 1.0\n");
    // A script without `#!python` is copied as is, with the archive's (here non-executable)
    // mode, as pip does.
    let plain = fs::read(bundle.join("bin/plain.sh")).unwrap();
    assert_eq!(plain, b"#!/bin/sh\necho plain\n");
    // Through a symlink to the script, from another directory.
    let link = tmp.path().join("demo-link");
    std::os::unix::fs::symlink(bundle.join("bin/demo-cli"), &link).unwrap();
    let out = Command::new(&link)
        .env_clear()
        .env("PYTHONPATH", &site)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "demo main []\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn which_python() -> PathBuf {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .unwrap();
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

fn install_fails(wheel: &WheelBuilder, options: &InstallOptions) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let path = wheel.build(tmp.path());
    let out = tmp.path().join("out");
    let err = install_wheel(
        &path,
        &linux311(),
        &Scheme::for_target(&linux311()),
        &out,
        options,
    )
    .expect_err("install must fail");
    assert!(
        !out.exists(),
        "nothing may be left at the output path ({err})"
    );
    err.to_string()
}

#[test]
fn wrong_record_hash_is_refused_unless_allowed() {
    let mut wheel = demo_wheel();
    wheel.corrupt_record_for.push("demo_pkg/cli.py".into());
    let err = install_fails(&wheel, &InstallOptions::default());
    assert!(
        err.contains("demo_pkg/cli.py") && err.contains("RECORD says"),
        "{err}"
    );

    let tmp = tempfile::tempdir().unwrap();
    let path = wheel.build(tmp.path());
    let options = InstallOptions {
        allow_bad_record: ["demo-pkg".to_owned()].into(),
        ..Default::default()
    };
    install_wheel(
        &path,
        &linux311(),
        &Scheme::for_target(&linux311()),
        &tmp.path().join("out"),
        &options,
    )
    .expect("allowed");
}

#[test]
fn traversal_absolute_and_duplicate_members_are_refused() {
    for (name, expect) in [
        ("../evil.py", "path traversal"),
        ("demo_pkg/../../evil.py", "path traversal"),
        ("/tmp/evil.py", "absolute path"),
        ("C:/evil.py", "drive letter"),
    ] {
        let err = install_fails(&demo_wheel().file(name, b"x"), &InstallOptions::default());
        assert!(err.contains(name) && err.contains(expect), "{name}: {err}");
    }
    let err = install_fails(
        &demo_wheel().file("demo_pkg/__init__.py", b"other"),
        &InstallOptions::default(),
    );
    assert!(
        err.contains("demo_pkg/__init__.py") && err.contains("duplicate"),
        "{err}"
    );
}

#[test]
fn bombs_and_bad_headers_are_refused() {
    // Declares 1 KiB, inflates to 64 MiB.
    let mut bomb = ZipMember::file("demo_pkg/bomb.bin", &vec![0u8; 64 << 20]);
    bomb.declared_size = Some(1024);
    let err = install_fails(&demo_wheel().member(bomb), &InstallOptions::default());
    assert!(
        err.contains("demo_pkg/bomb.bin") && err.contains("more than its declared"),
        "{err}"
    );

    // Honest sizes, but above the limit.
    let big = ZipMember::file("demo_pkg/big.bin", &vec![0u8; 8 << 20]);
    let mut options = InstallOptions::default();
    options.limits.max_total = 4 << 20;
    let err = install_fails(&demo_wheel().member(big), &options);
    assert!(
        err.contains("demo_pkg/big.bin") && err.contains("decompression bomb"),
        "{err}"
    );

    let mut liar = ZipMember::file("demo_pkg/a.py", b"x");
    liar.local_name = Some("demo_pkg/b.py".into());
    let err = install_fails(&demo_wheel().member(liar), &InstallOptions::default());
    assert!(
        err.contains("demo_pkg/a.py") && err.contains("local header"),
        "{err}"
    );

    let mut link = ZipMember::file("demo_pkg/link", b"/etc/passwd");
    link.mode = 0o120777;
    let err = install_fails(&demo_wheel().member(link), &InstallOptions::default());
    assert!(
        err.contains("demo_pkg/link") && err.contains("symlink"),
        "{err}"
    );
}

#[test]
fn corrupt_data_fails_crc() {
    let tmp = tempfile::tempdir().unwrap();
    let path = demo_wheel().build(tmp.path());
    // Flip a byte inside the stored data of the first member (deflated, so the CRC or the
    // inflater catches it).
    let mut bytes = fs::read(&path).unwrap();
    let name = b"demo_pkg/__init__.py";
    let at = bytes.windows(name.len()).position(|w| w == name).unwrap() + name.len() + 2;
    bytes[at] ^= 0x55;
    fs::write(&path, bytes).unwrap();
    let out = tmp.path().join("out");
    let err = install_wheel(
        &path,
        &linux311(),
        &Scheme::for_target(&linux311()),
        &out,
        &InstallOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("demo_pkg/__init__.py"), "{err}");
    assert!(!out.exists());
}

#[test]
fn incompatible_wheel_is_refused_with_its_tags_and_the_target() {
    let wheel = WheelBuilder::new("winonly", "1.0", "cp312-cp312-win_amd64");
    let err = install_fails(&wheel, &InstallOptions::default());
    assert!(
        err.contains("winonly-1.0-cp312-cp312-win_amd64.whl")
            && err.contains("cp312-cp312-win_amd64")
            && err.contains("x86_64-unknown-linux-gnu"),
        "{err}"
    );
}

#[test]
fn record_missing_a_file_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let b = demo_wheel();
    let path = b.build(tmp.path());
    // Rebuild the archive with one extra member that RECORD does not list.
    let mut zip = zip::ZipArchive::new(fs::File::open(&path).unwrap()).unwrap();
    let mut members = Vec::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut f, &mut data).unwrap();
        members.push(ZipMember::file(f.name(), &data));
    }
    members.push(ZipMember::file("demo_pkg/sneaky.py", b"import os\n"));
    crate::pyfixtures::write_zip(&path, &members);
    let out = tmp.path().join("out");
    let err = install_wheel(
        &path,
        &linux311(),
        &Scheme::for_target(&linux311()),
        &out,
        &InstallOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("demo_pkg/sneaky.py") && err.contains("not listed in RECORD"),
        "{err}"
    );
    assert!(!out.exists());
}

/// Install reports, for each deflated member it wrote byte for byte, where its compressed data
/// lies and what it holds: the bytes at that place inflate to the installed file. Members too
/// small to be reused are left out.
#[test]
fn install_reports_what_each_deflated_member_holds() {
    let tmp = tempfile::tempdir().unwrap();
    let big = "x = 1\n# padding padding padding\n".repeat(100);
    let wheel = WheelBuilder::new("known", "1.0", "py3-none-any")
        .file("known/__init__.py", big.as_bytes())
        .file("known/tiny.py", b"y = 2\n")
        .build(tmp.path());
    let out = tmp.path().join("out");
    let installed = install_wheel(
        &wheel,
        &linux311(),
        &Scheme::for_target(&linux311()),
        &out,
        &InstallOptions::default(),
    )
    .unwrap();
    let raw = fs::read(&wheel).unwrap();
    let site = out.join("lib/python3.11/site-packages");
    let installed_digest = |rel: &str| *blake3::hash(&fs::read(site.join(rel)).unwrap()).as_bytes();
    let init = installed_digest("known/__init__.py");
    assert!(installed
        .known_members
        .iter()
        .any(|known| known.blake3 == init && known.size == big.len() as u64));
    assert!(!installed
        .known_members
        .iter()
        .any(|known| known.blake3 == installed_digest("known/tiny.py")));
    for known in &installed.known_members {
        let start = known.start as usize;
        let data = &raw[start..start + known.len as usize];
        let inflated = pystore::archive::deflate::inflate(data, known.size as usize).unwrap();
        assert_eq!(blake3::hash(&inflated).as_bytes(), &known.blake3);
        assert_eq!(crc32fast::hash(&inflated), known.crc32);
        assert!(known.size >= pystore::archive::reuse::MIN_REUSE_SIZE);
    }
}
