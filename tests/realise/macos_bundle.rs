//! A macOS (`aarch64-apple-darwin`) bundle realised on Linux, as Windows bundles are: from a
//! python-build-standalone-shaped archive and macOS wheels built in code, validated statically
//! (Mach-O load commands of every extension module and bundled dylib), bit-identical across two
//! stores; and a wheel whose extension links a library from the build machine is refused.
//!
//! No real Mach-O can be compiled here, so the binaries are minimal Mach-O files made in code:
//! a header and the load commands validation reads (`LC_LOAD_DYLIB`, `LC_RPATH`).

use std::fs;
use std::path::{Path, PathBuf};

use crate::common::*;
use crate::pyfixtures::{finish_tar_gz, tar_dir, tar_file, tar_gz, tar_symlink, WheelBuilder};
use crate::recipe_fixtures::{recipe_for, workspace, Spec};

const CPU_TYPE_X86_64: u32 = 0x0100_0007;
const CPU_TYPE_ARM64: u32 = 0x0100_000c;

/// A minimal 64-bit Mach-O bundle for `cputype` with `LC_LOAD_DYLIB` for each of `dylibs` and
/// `LC_RPATH` for each of `rpaths`.
fn macho(cputype: u32, dylibs: &[&str], rpaths: &[&str]) -> Vec<u8> {
    fn padded(text: &str, fixed: usize) -> Vec<u8> {
        let mut bytes = text.as_bytes().to_vec();
        bytes.push(0);
        while (fixed + bytes.len()) % 8 != 0 {
            bytes.push(0);
        }
        bytes
    }
    let mut commands = Vec::new();
    for lib in dylibs {
        let name = padded(lib, 24);
        for word in [0xc, (24 + name.len()) as u32, 24, 2, 0x10000, 0x10000] {
            commands.extend(u32::to_le_bytes(word));
        }
        commands.extend(name);
    }
    for rpath in rpaths {
        let path = padded(rpath, 12);
        for word in [0x8000_001c, (12 + path.len()) as u32, 12] {
            commands.extend(u32::to_le_bytes(word));
        }
        commands.extend(path);
    }
    let subtype = if cputype == CPU_TYPE_X86_64 { 3 } else { 0 };
    let ncmds = (dylibs.len() + rpaths.len()) as u32;
    let mut out = Vec::new();
    for word in [
        0xfeed_facf,
        cputype,
        subtype,
        8,
        ncmds,
        commands.len() as u32,
        0,
        0,
    ] {
        out.extend(u32::to_le_bytes(word));
    }
    out.extend(commands);
    out
}

/// A universal binary of `slices`, as `lipo` makes.
fn fat(slices: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(0xcafe_babe_u32.to_be_bytes());
    out.extend((slices.len() as u32).to_be_bytes());
    let mut offset = 4096u32;
    let mut body = Vec::new();
    for slice in slices {
        let cputype = u32::from_le_bytes(slice[4..8].try_into().unwrap());
        let subtype = u32::from_le_bytes(slice[8..12].try_into().unwrap());
        for word in [cputype, subtype, offset, slice.len() as u32, 12] {
            out.extend(word.to_be_bytes());
        }
        let mut padded = slice.clone();
        padded.resize(slice.len().div_ceil(4096) * 4096, 0);
        offset += padded.len() as u32;
        body.extend(padded);
    }
    out.resize(4096, 0);
    out.extend(body);
    out
}

const LIBSYSTEM: &str = "/usr/lib/libSystem.B.dylib";

/// A python-build-standalone-shaped `install_only` archive of CPython 3.12.14 for
/// aarch64-apple-darwin: `python/bin/python3.12`, the stdlib's marker files, `libpython`, an
/// extension in `lib-dynload`, and `include/python3.12/patchlevel.h` naming 3.12.14 (which
/// unpacking checks against the declared version).
fn macos_archive(dir: &Path) -> PathBuf {
    let path =
        dir.join("cpython-3.12.14+20261201-aarch64-apple-darwin-install_only_stripped.tar.gz");
    let mut tar = tar_gz(&path);
    for d in [
        "python",
        "python/bin",
        "python/lib",
        "python/lib/python3.12",
        "python/lib/python3.12/importlib",
        "python/lib/python3.12/lib-dynload",
        "python/lib/python3.12/site-packages",
        "python/include",
        "python/include/python3.12",
    ] {
        tar_dir(&mut tar, d);
    }
    let libpython = "@executable_path/../lib/libpython3.12.dylib";
    tar_file(
        &mut tar,
        "python/bin/python3.12",
        &macho(CPU_TYPE_ARM64, &[LIBSYSTEM, libpython], &[]),
        0o755,
    );
    tar_symlink(&mut tar, "python/bin/python3", "python3.12");
    tar_file(
        &mut tar,
        "python/lib/libpython3.12.dylib",
        &macho(CPU_TYPE_ARM64, &[LIBSYSTEM], &[]),
        0o755,
    );
    tar_file(
        &mut tar,
        "python/lib/python3.12/lib-dynload/_ssl.cpython-312-darwin.so",
        &macho(CPU_TYPE_ARM64, &[LIBSYSTEM], &[]),
        0o755,
    );
    tar_file(&mut tar, "python/lib/python3.12/os.py", b"# os\n", 0o644);
    tar_file(
        &mut tar,
        "python/lib/python3.12/importlib/_bootstrap_external.py",
        b"MAGIC_NUMBER = (3531).to_bytes(2, 'little') + b'\\r\\n'\n",
        0o644,
    );
    tar_file(
        &mut tar,
        "python/include/python3.12/patchlevel.h",
        b"#define PY_MINOR_VERSION 12\n#define PY_VERSION \"3.12.14\"\n",
        0o644,
    );
    finish_tar_gz(tar);
    path
}

/// `fastmac` (arm64 extension with delocate-style `.dylibs`, one found through `@rpath`),
/// `unimac` (a universal2 extension) and the pure `app_core` importing both.
fn macos_wheels(dir: &Path) -> Vec<PathBuf> {
    let speed = macho(
        CPU_TYPE_ARM64,
        &[
            LIBSYSTEM,
            "/System/Library/Frameworks/Security.framework/Versions/A/Security",
            "@loader_path/.dylibs/libfast.1.dylib",
            "@rpath/libz.1.dylib",
        ],
        &["@loader_path/.dylibs"],
    );
    let fast = WheelBuilder::new("fastmac", "1.0", "cp312-cp312-macosx_11_0_arm64")
        .file("fastmac/__init__.py", b"from ._speed import go\n")
        .file("fastmac/_speed.cpython-312-darwin.so", &speed)
        .file(
            "fastmac/.dylibs/libfast.1.dylib",
            &macho(CPU_TYPE_ARM64, &[LIBSYSTEM], &[]),
        )
        .file(
            "fastmac/.dylibs/libz.1.dylib",
            &macho(CPU_TYPE_ARM64, &[LIBSYSTEM], &[]),
        );
    let universal = fat(&[
        macho(CPU_TYPE_X86_64, &[LIBSYSTEM], &[]),
        macho(CPU_TYPE_ARM64, &[LIBSYSTEM], &[]),
    ]);
    let uni = WheelBuilder::new("unimac", "2.0", "cp312-cp312-macosx_11_0_universal2")
        .file("unimac/__init__.py", b"")
        .file("unimac/_u.cpython-312-darwin.so", &universal);
    let app = WheelBuilder::new("app_core", "0.3", "py3-none-any")
        .file("app_core/__init__.py", b"import fastmac, unimac\n");
    vec![fast.build(dir), uni.build(dir), app.build(dir)]
}

fn realise(store: &Path, wheel_dir: &Path, recipe: &Path) -> std::process::Output {
    run(pystore(store)
        .args(["--json", "--offline", "--find-links"])
        .arg(wheel_dir)
        .arg("realise")
        .arg(recipe))
}

#[test]
fn a_macos_bundle_is_realised_on_linux_validated_statically_and_identical_across_stores() {
    let (work, wheel_dir) = workspace();
    let wheels = macos_wheels(&wheel_dir);
    let archive = macos_archive(work.path());
    let spec = Spec {
        python: "3.12.14",
        platform: "aarch64-apple-darwin",
        archive: &archive,
    };
    let recipe = recipe_for(
        work.path(),
        &spec,
        &wheels,
        &["app_core", "fastmac", "unimac"],
    );
    let mut zips = Vec::new();
    for _ in 0..2 {
        let store = TempStore::new();
        let out = realise(store.path(), &wheel_dir, &recipe);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let zip = PathBuf::from(value[0]["zip"].as_str().unwrap());
        let validation: serde_json::Value =
            serde_json::from_slice(&fs::read(value[0]["validation"].as_str().unwrap()).unwrap())
                .unwrap();
        // Static only (this machine cannot run a macOS python): the modules resolve in the
        // bundle, and the four Mach-O files of the wheels (two extensions, two dylibs) load.
        assert!(validation["dynamic"].is_null(), "{validation}");
        assert_eq!(validation["native_files"], 4, "{validation}");
        assert_eq!(validation["modules"].as_array().unwrap().len(), 3);
        zips.push(sha256_hex(&fs::read(&zip).unwrap()));
        let names = zip_names(&zip);
        for expected in [
            "bin/python3.12",
            "lib/libpython3.12.dylib",
            "lib/python3.12/site-packages/fastmac/.dylibs/libz.1.dylib",
            "lib/python3.12/site-packages/unimac/_u.cpython-312-darwin.so",
        ] {
            assert!(names.iter().any(|n| n == expected), "{expected}: {names:?}");
        }
    }
    assert_eq!(zips[0], zips[1], "the same ZIP from two stores");

    // An extension linking the build machine's Homebrew OpenSSL is refused, named.
    let (work, wheel_dir) = workspace();
    let bad = WheelBuilder::new("brewed", "1.0", "cp312-cp312-macosx_11_0_arm64")
        .file("brewed/__init__.py", b"")
        .file(
            "brewed/_ssl.cpython-312-darwin.so",
            &macho(
                CPU_TYPE_ARM64,
                &[LIBSYSTEM, "/opt/homebrew/opt/openssl@3/lib/libssl.3.dylib"],
                &[],
            ),
        );
    let archive = macos_archive(work.path());
    let spec = Spec {
        python: "3.12.14",
        platform: "aarch64-apple-darwin",
        archive: &archive,
    };
    let recipe = recipe_for(work.path(), &spec, &[bad.build(&wheel_dir)], &["brewed"]);
    let store = TempStore::new();
    let out = realise(store.path(), &wheel_dir, &recipe);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("lib/python3.12/site-packages/brewed/_ssl.cpython-312-darwin.so needs /opt/homebrew/opt/openssl@3/lib/libssl.3.dylib, which is not in the bundle and not a macOS system library"),
        "{stderr}"
    );
}

/// The member names of a ZIP.
fn zip_names(path: &Path) -> Vec<String> {
    let mut zip = zip::ZipArchive::new(fs::File::open(path).unwrap()).unwrap();
    (0..zip.len())
        .map(|i| zip.by_index(i).unwrap().name().to_owned())
        .collect()
}
