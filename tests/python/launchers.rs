//! Windows `.exe` launchers made on Linux: valid PE files that name the bundle's python
//! relative to themselves, with a working appended `__main__.py`.

use std::fs;
use std::process::Command;

use crate::pyfixtures::demo_wheel;
use goblin::pe::PE;
use pystore::python::launcher::ScriptKind;
use pystore::python::launcher_windows::stub;
use pystore::python::{install_wheel, InstallOptions, Scheme, Target};
use sha2::Digest;

const IMAGE_SUBSYSTEM_WINDOWS_GUI: u16 = 2;
const IMAGE_SUBSYSTEM_WINDOWS_CUI: u16 = 3;

#[test]
fn vendored_stubs_are_the_documented_ones() {
    let source = fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/python/data/launchers/SOURCE.md"
    ))
    .unwrap();
    for (kind, is_32bit, file) in [
        (ScriptKind::Console, false, "t64.exe"),
        (ScriptKind::Gui, false, "w64.exe"),
        (ScriptKind::Console, true, "t32.exe"),
        (ScriptKind::Gui, true, "w32.exe"),
    ] {
        let digest = hex::encode(sha2::Sha256::digest(stub(kind, is_32bit)));
        let row = format!("| {file} | {} | {digest} |", stub(kind, is_32bit).len());
        assert!(source.contains(&row), "SOURCE.md lacks {row}");
    }
}

#[test]
fn windows_entry_points_get_relative_exe_launchers() {
    let tmp = tempfile::tempdir().unwrap();
    let wheel = demo_wheel().build(tmp.path());
    for (triple, is_64) in [
        ("x86_64-pc-windows-msvc", true),
        ("i686-pc-windows-msvc", false),
    ] {
        let target = Target::new(triple, None, "3.12.7").unwrap();
        let out = tmp.path().join(triple);
        let installed = install_wheel(
            &wheel,
            &target,
            &Scheme::for_target(&target),
            &out,
            &InstallOptions::default(),
        )
        .unwrap();
        assert!(installed.files.contains(&"Scripts/demo-cli.exe".to_owned()));
        assert!(out.join("Lib/site-packages/demo_pkg/cli.py").is_file());
        assert!(out.join("share/demo_pkg/readme.txt").is_file());
        let record =
            fs::read_to_string(out.join("Lib/site-packages/demo_pkg-1.0.dist-info/RECORD"))
                .unwrap();
        assert!(
            record.contains("../../Scripts/demo-cli.exe,sha256="),
            "{record}"
        );

        for (name, subsystem, python) in [
            ("demo-cli.exe", IMAGE_SUBSYSTEM_WINDOWS_CUI, "python.exe"),
            ("demo-gui.exe", IMAGE_SUBSYSTEM_WINDOWS_GUI, "pythonw.exe"),
        ] {
            let bytes = fs::read(out.join("Scripts").join(name)).unwrap();
            let pe = PE::parse(&bytes).unwrap_or_else(|e| panic!("{name} is not a valid PE: {e}"));
            assert_eq!(pe.is_64, is_64, "{triple} {name}");
            let optional = pe.header.optional_header.expect("optional header");
            assert_eq!(optional.windows_fields.subsystem, subsystem, "{name}");
            assert!(pe.entry != 0);
            // The shebang names the bundle's interpreter relative to the launcher's directory.
            let shebang = format!("#!<launcher_dir>\\..\\{python}\r\n");
            let at = bytes
                .windows(shebang.len())
                .position(|w| w == shebang.as_bytes())
                .unwrap_or_else(|| panic!("{name} lacks {shebang:?}"));
            assert!(!String::from_utf8_lossy(&bytes).contains(tmp.path().to_str().unwrap()));
            // The appended archive holds the same entry-point body as on Unix.
            let mut zip =
                zip::ZipArchive::new(std::io::Cursor::new(&bytes[at + shebang.len()..])).unwrap();
            let mut main = String::new();
            std::io::Read::read_to_string(&mut zip.by_name("__main__.py").unwrap(), &mut main)
                .unwrap();
            assert!(main.contains("from demo_pkg.cli import"), "{main}");
        }
    }
}

#[test]
fn appended_archive_runs_under_cpython() {
    // CPython runs a zip with data in front of it, which is how the launcher invokes it
    // ("python.exe" "<launcher>.exe" args). Check that with the host python.
    let tmp = tempfile::tempdir().unwrap();
    let wheel = demo_wheel().build(tmp.path());
    let target = Target::new("x86_64-pc-windows-msvc", None, "3.12.7").unwrap();
    let out = tmp.path().join("win");
    install_wheel(
        &wheel,
        &target,
        &Scheme::for_target(&target),
        &out,
        &InstallOptions::default(),
    )
    .unwrap();
    let run = Command::new("python3")
        .arg(out.join("Scripts/demo-cli.exe"))
        .arg("hello")
        .env_clear()
        .env("PYTHONPATH", out.join("Lib/site-packages"))
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        "demo main ['hello']\n"
    );
}

#[test]
fn launchers_are_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    let wheel = demo_wheel().build(tmp.path());
    let target = Target::new("x86_64-pc-windows-msvc", None, "3.12.7").unwrap();
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    for out in [&a, &b] {
        install_wheel(
            &wheel,
            &target,
            &Scheme::for_target(&target),
            out,
            &InstallOptions::default(),
        )
        .unwrap();
    }
    assert_eq!(
        fs::read(a.join("Scripts/demo-cli.exe")).unwrap(),
        fs::read(b.join("Scripts/demo-cli.exe")).unwrap()
    );
}
