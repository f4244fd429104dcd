//! Recipes for the integration tests that realise bundles: an interpreter archive made from the
//! machine's Debian python3.11, recipe directories, and locks pinning the wheels a test built.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::common::http::{Response, Server};
use crate::common::sha256_hex;
use crate::pyfixtures::{upstream_like_pbs_archive, WheelBuilder};
use pystore::lock::{inputs_hash, Lock, LockedPackage, LockedTarget};
use pystore::python::{requirements, TargetSpec};

/// The interpreter archive, made once for all tests (it takes a few seconds).
pub(crate) fn interpreter_archive() -> &'static Path {
    static ARCHIVE: OnceLock<PathBuf> = OnceLock::new();
    ARCHIVE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        upstream_like_pbs_archive(&dir)
    })
}

/// A scratch directory with an empty `wheels/` directory in it.
pub(crate) fn workspace() -> (tempfile::TempDir, PathBuf) {
    let work = tempfile::tempdir().unwrap();
    let wheel_dir = work.path().join("wheels");
    fs::create_dir(&wheel_dir).unwrap();
    (work, wheel_dir)
}

/// What a test recipe targets.
pub(crate) struct Spec<'a> {
    pub python: &'a str,
    pub platform: &'a str,
    pub archive: &'a Path,
}

pub(crate) fn linux() -> Spec<'static> {
    Spec {
        python: "3.11.2",
        platform: "x86_64-unknown-linux-gnu",
        archive: interpreter_archive(),
    }
}

/// A recipe directory with requirements and a matching lock.
pub(crate) fn recipe(dir: &Path, wheels: &[PathBuf], validate: &[&str]) -> PathBuf {
    recipe_for(dir, &linux(), wheels, validate)
}

pub(crate) fn recipe_for(
    dir: &Path,
    spec: &Spec<'_>,
    wheels: &[PathBuf],
    validate: &[&str],
) -> PathBuf {
    let root = dir.join("recipes/demo");
    fs::create_dir_all(&root).unwrap();
    let archive_sha = sha256_hex(&fs::read(spec.archive).unwrap());
    let validate: Vec<String> = validate.iter().map(|m| format!("{m:?}")).collect();
    fs::write(
        root.join("recipe.toml"),
        format!(
            "name = \"demo\"\nversion = \"1.0.0\"\npython = \"{}\"\nvalidate = [{}]\n\n[[targets]]\nname = \"t\"\n\
             platform = \"{}\"\ninterpreter = {{ url = \"file://{}\", sha256 = \"{archive_sha}\" }}\n",
            spec.python,
            validate.join(", "),
            spec.platform,
            spec.archive.display()
        ),
    )
    .unwrap();
    fs::write(root.join("requirements.txt"), "app-core\n").unwrap();
    write_lock(&root, spec, wheels);
    root
}

pub(crate) fn write_lock(root: &Path, spec: &Spec<'_>, wheels: &[PathBuf]) {
    let requirements = requirements::read(&root.join("requirements.txt")).unwrap();
    let target = TargetSpec::new("t", spec.platform, None).unwrap();
    let packages = wheels
        .iter()
        .map(|path| {
            let file = path.file_name().unwrap().to_str().unwrap().to_owned();
            let mut parts = file.split('-');
            let bytes = fs::read(path).unwrap();
            LockedPackage {
                name: parts.next().unwrap().parse().unwrap(),
                version: parts.next().unwrap().parse().unwrap(),
                wheel: file.parse().unwrap(),
                size: bytes.len() as u64,
                sha256: sha256_hex(&bytes).parse().unwrap(),
                required_by: vec![],
            }
        })
        .collect();
    Lock {
        version: 1,
        python: spec.python.into(),
        inputs: inputs_hash(&requirements, spec.python, &[&target]),
        targets: vec![LockedTarget {
            spec: target,
            interpreter: None,
            packages,
        }],
    }
    .write(&root.join("pystore.lock"))
    .unwrap();
}

/// A python-build-standalone-style Windows archive (the binaries are stand-ins: nothing runs).
pub(crate) fn windows_archive(dir: &Path) -> PathBuf {
    let path = dir.join("cpython-3.12.7-x86_64-pc-windows-msvc-install_only.tar.gz");
    let mut tar = crate::pyfixtures::tar_gz(&path);
    crate::pyfixtures::tar_dir(&mut tar, "python");
    for (name, data) in [
        ("python/python.exe", &b"MZ stand-in"[..]),
        ("python/pythonw.exe", b"MZ stand-in"),
        ("python/python312.dll", b"MZ stand-in"),
        ("python/DLLs/_ssl.pyd", b"MZ stand-in"),
        ("python/Lib/os.py", b"# os\n"),
        (
            "python/Lib/importlib/_bootstrap_external.py",
            b"MAGIC_NUMBER = (3531).to_bytes(2, 'little') + b'\\r\\n'\n",
        ),
        (
            "python/include/patchlevel.h",
            b"#define PY_MINOR_VERSION 12\n#define PY_VERSION \"3.12.7\"\n",
        ),
    ] {
        crate::pyfixtures::tar_file(&mut tar, name, data, 0o644);
    }
    crate::pyfixtures::finish_tar_gz(tar);
    path
}

/// `greet_lib` 2.1.0: a pure-Python library with a console script `greet`.
pub(crate) fn greet_wheel() -> WheelBuilder {
    let greet = WheelBuilder::new("greet_lib", "2.1.0", "py3-none-any").file(
        "greet_lib/__init__.py",
        b"def hello(who):\n    return 'hello ' + who\n\ndef main():\n    print(hello('from the script'))\n",
    );
    let info = greet.dist_info();
    greet.file(
        &format!("{info}/entry_points.txt"),
        b"[console_scripts]\ngreet = greet_lib:main\n",
    )
}

/// Two pure-Python wheels for the demo recipe: `greet_lib` (with a console script) and
/// `app_core`, which imports it.
pub(crate) fn demo_wheels(dir: &Path) -> Vec<PathBuf> {
    let greet = greet_wheel();
    let app = WheelBuilder::new("app_core", "0.3", "py3-none-any")
        .file(
            "app_core/__init__.py",
            b"from greet_lib import hello\nMESSAGE = hello('bundle')\n",
        )
        .file("app_core/data.txt", b"payload\n");
    vec![greet.build(dir), app.build(dir)]
}

/// A loopback simple index (JSON) serving the wheels; counts requests.
pub(crate) fn index_server(wheels: &[PathBuf]) -> Server {
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
