//! Validation of a bundle before its ZIP is made: the recipe's `validate` modules must come
//! from the bundle itself, and its native code must find its libraries.
//!
//! - Statically, for every target: each module resolves, as CPython's path finder would, to a
//!   package, module, extension module or namespace package in the bundle's stdlib zip, stdlib
//!   directory, `lib-dynload`/`DLLs` or site-packages (in `sys.path` order); each native file a
//!   package installed passes [`super::native`].
//! - Dynamically, for targets that can run on this machine: the bundle's own python runs in the
//!   sandbox (`-I`, the fixed environment), imports every module, and each module's file — and
//!   every file any import loaded — must lie inside the bundle.
//!
//! The report ([`Report`]) is canonical JSON: paths bundle-relative, lists sorted.

mod imports;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::manifest::{BundleManifest, MANIFEST_NAME};
use super::native::{self, BundleFiles, NativeError};
use crate::build::sandbox::{Level, Sandbox, SandboxError};
use crate::python::interpreter::{InterpreterInfo, METADATA_FILE};
use crate::python::target::{Arch, Os};
use crate::python::Target;
use imports::run_imports;

/// Why a bundle failed validation (or could not be validated).
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    /// A validated module is not in the bundle.
    #[error("target {target}: module {module} (in the recipe's validate list) is not in the bundle; searched {}. Add the package that provides it to the requirements and run `pystore lock`, or remove it from validate", searched.join(", "))]
    ModuleMissing {
        /// The target.
        target: String,
        /// The dotted module name.
        module: String,
        /// Where it was looked for (bundle-relative).
        searched: Vec<String>,
    },
    /// Native code needs a library that is neither in the bundle nor on the system.
    #[error("target {target}: {file} needs {library}, which is not in the bundle and not a {system} system library; use a wheel that bundles it (auditwheel/delvewheel-repaired) or add the package that provides it")]
    LibraryMissing {
        /// The target.
        target: String,
        /// The native file (bundle-relative).
        file: String,
        /// The library it imports.
        library: String,
        /// `Windows`, `macOS`, or the Linux policy applied
        /// (`manylinux_2_17 (auditwheel 6.8.2 policy)`).
        system: String,
    },
    /// A native file that cannot be parsed.
    #[error("target {target}: {cause}")]
    Native {
        /// The target.
        target: String,
        /// The cause.
        cause: NativeError,
    },
    /// Importing in the sandbox failed.
    #[error("target {target}: `import {module}` failed with the bundle's own python (sandbox level {level}): {python_error}")]
    ImportFailed {
        /// The target.
        target: String,
        /// The module.
        module: String,
        /// The sandbox level.
        level: Level,
        /// The exception python reported (its own text: it comes from another program).
        python_error: String,
    },
    /// A module was loaded from outside the bundle.
    #[error("target {target}: `import {module}` loaded {file}, which is outside the bundle (sandbox level {level}); the bundle must not depend on the host")]
    OutsideBundle {
        /// The target.
        target: String,
        /// The module.
        module: String,
        /// The file python reported.
        file: String,
        /// The sandbox level.
        level: Level,
    },
    /// The python run itself failed.
    #[error("target {target}: running the bundle's python ({}) for validation: {problem}", program.display())]
    Run {
        /// The target.
        target: String,
        /// The interpreter.
        program: PathBuf,
        /// What went wrong.
        #[source]
        problem: RunProblem,
    },
    /// The sandbox could not be prepared.
    #[error("target {target}: {cause}")]
    Sandbox {
        /// The target.
        target: String,
        /// The cause.
        cause: SandboxError,
    },
    /// Reading the bundle.
    #[error("reading {} for validation: {problem}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        problem: ReadProblem,
    },
}

/// Why a file of the bundle could not be read for validation.
#[derive(Debug, thiserror::Error)]
pub enum ReadProblem {
    /// The file could not be read.
    #[error("{0}")]
    Io(#[source] std::io::Error),
    /// The bundle manifest does not parse.
    #[error("{0}")]
    Manifest(#[source] serde_json::Error),
    /// The standard library ZIP is not a readable ZIP.
    #[error("{0}")]
    Zip(#[source] zip::result::ZipError),
}

/// Why running the bundle's python for validation failed.
#[derive(Debug, thiserror::Error)]
pub enum RunProblem {
    /// It could not be started.
    #[error("cannot start it: {}", describe_start(.0))]
    Start(#[source] std::io::Error),
    /// It ran past the deadline and was stopped.
    #[error("importing {modules} did not finish within {seconds} seconds; it was stopped")]
    TimedOut {
        /// The modules, comma-separated.
        modules: String,
        /// The deadline.
        seconds: u64,
    },
    /// It exited with an error.
    #[error("it exited with {status}: {stderr}")]
    Exited {
        /// How it exited.
        status: std::process::ExitStatus,
        /// What it wrote to stderr (trimmed).
        stderr: String,
    },
    /// Its report is not the JSON the import script writes.
    #[error("unreadable report ({source}): {stdout}")]
    Report {
        /// Why it does not parse.
        source: serde_json::Error,
        /// What it wrote to stdout.
        stdout: String,
    },
}

/// A start failure; on Linux, the sandbox's child reports the step that failed in the errno.
fn describe_start(err: &std::io::Error) -> String {
    #[cfg(target_os = "linux")]
    if let Some(raw) = err.raw_os_error() {
        return crate::build::sandbox::linux::describe(raw);
    }
    err.to_string()
}

/// How a module resolved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedModule {
    /// Dotted name.
    pub name: String,
    /// `package`, `module`, `extension`, `namespace` or `builtin`.
    pub kind: String,
    /// Bundle-relative files: the module's file, or a namespace package's directories; inside
    /// a stdlib zip, `python312.zip/os.pyc`.
    pub files: Vec<String>,
}

/// What the dynamic check saw.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DynamicReport {
    /// The sandbox level it ran at.
    pub sandbox: String,
    /// Module name → bundle-relative file (or `built-in`), as python reported.
    pub modules: BTreeMap<String, String>,
    /// How many modules with a file the imports loaded in all (every one inside the bundle).
    pub loaded: usize,
}

/// The validation report, the content of the `validate` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Format version (1).
    pub format: u32,
    /// The target's name.
    pub target: String,
    /// Every validated module, statically resolved, sorted by name.
    pub modules: Vec<ResolvedModule>,
    /// How many native files of packages were checked (all resolved).
    pub native_files: usize,
    /// The dynamic check, or `None` when the target cannot run on this machine.
    pub dynamic: Option<DynamicReport>,
}

impl Report {
    /// How the bundle was validated: the sandbox level the imports ran at (`full`, `none`,
    /// `off`), or `static` when the target cannot run on the machine that validated it (no
    /// imports ran). Provenance and realise's output both say this.
    pub fn validated_at(&self) -> &str {
        self.dynamic
            .as_ref()
            .map_or("static", |d| d.sandbox.as_str())
    }
}

/// Modules compiled into every CPython 3 build (they have no file).
const ALWAYS_BUILTIN: &[&str] = &[
    "_abc",
    "_codecs",
    "_collections",
    "_functools",
    "_imp",
    "_io",
    "_locale",
    "_operator",
    "_signal",
    "_sre",
    "_stat",
    "_string",
    "_symtable",
    "_thread",
    "_tracemalloc",
    "_warnings",
    "_weakref",
    "atexit",
    "builtins",
    "errno",
    "faulthandler",
    "gc",
    "itertools",
    "marshal",
    "sys",
    "time",
];

/// The bundle's files, for resolution: every file and symlink path, the directories holding
/// them, and the members of a stdlib zip as `<zip>/<member>`.
struct View {
    files: BTreeSet<String>,
    dirs: BTreeSet<String>,
}

impl View {
    fn new(files: BTreeSet<String>) -> View {
        let mut dirs = BTreeSet::new();
        for file in &files {
            let mut at = file.as_str();
            while let Some((dir, _)) = at.rsplit_once('/') {
                if !dirs.insert(dir.to_owned()) {
                    break;
                }
                at = dir;
            }
        }
        View { files, dirs }
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

/// Extension-module suffixes the target's CPython imports, in its finder's order.
fn extension_suffixes(target: &Target) -> Vec<String> {
    let nodot = target.python.nodot();
    match target.platform.os {
        Os::Windows => {
            let platform = match target.platform.arch {
                Arch::X86_64 => "win_amd64",
                Arch::X86 => "win32",
                Arch::Aarch64 => "win_arm64",
            };
            vec![format!(".cp{nodot}-{platform}.pyd"), ".pyd".into()]
        }
        Os::LinuxGnu { .. } | Os::LinuxMusl { .. } => {
            let arch = match target.platform.arch {
                Arch::X86_64 => "x86_64",
                Arch::X86 => "i386",
                Arch::Aarch64 => "aarch64",
            };
            let libc = if matches!(target.platform.os, Os::LinuxMusl { .. }) {
                "musl"
            } else {
                "gnu"
            };
            vec![
                format!(".cpython-{nodot}-{arch}-linux-{libc}.so"),
                ".abi3.so".into(),
                ".so".into(),
            ]
        }
        Os::MacOs { .. } => vec![
            format!(".cpython-{nodot}-darwin.so"),
            ".abi3.so".into(),
            ".so".into(),
        ],
    }
}

/// `sys.path` of the bundle's python, bundle-relative, in order.
fn search_path(info: &InterpreterInfo, windows: bool) -> Vec<String> {
    let mut path = vec![info.stdlib.clone()];
    if windows {
        path.push("DLLs".into());
        // Embeddable distributions keep their extension modules beside python.exe.
        path.push(String::new());
    } else {
        path.push(join(&info.stdlib, "lib-dynload"));
    }
    for site in [&info.purelib, &info.platlib] {
        if !path.contains(site) {
            path.push(site.clone());
        }
    }
    path
}

/// One path finder step: `name` in the directories `path`, as CPython's `FileFinder` looks.
fn find(
    view: &View,
    path: &[String],
    name: &str,
    suffixes: &[String],
) -> Option<(String, Vec<String>)> {
    let mut portions = Vec::new();
    for dir in path {
        let base = join(dir, name);
        if view.dirs.contains(&base) {
            for init in ["__init__.py", "__init__.pyc"] {
                let file = join(&base, init);
                if view.files.contains(&file) {
                    return Some(("package".into(), vec![file]));
                }
            }
        }
        for suffix in suffixes {
            let file = format!("{base}{suffix}");
            if view.files.contains(&file) {
                return Some(("extension".into(), vec![file]));
            }
        }
        for suffix in [".py", ".pyc"] {
            let file = format!("{base}{suffix}");
            if view.files.contains(&file) {
                return Some(("module".into(), vec![file]));
            }
        }
        if view.dirs.contains(&base) {
            portions.push(base);
        }
    }
    (!portions.is_empty()).then(|| ("namespace".into(), portions))
}

/// Resolves dotted `module` in the bundle, or says where it looked.
fn resolve(
    view: &View,
    path: &[String],
    module: &str,
    suffixes: &[String],
) -> Result<ResolvedModule, Vec<String>> {
    if ALWAYS_BUILTIN.contains(&module) {
        return Ok(ResolvedModule {
            name: module.to_owned(),
            kind: "builtin".into(),
            files: Vec::new(),
        });
    }
    let mut search: Vec<String> = path.to_vec();
    let mut found: Option<(String, Vec<String>)> = None;
    for (i, part) in module.split('.').enumerate() {
        if i > 0 {
            match &found {
                Some((kind, files)) if kind == "package" => {
                    let file: &String = &files[0];
                    search = vec![file.rsplit_once('/').map_or("", |(d, _)| d).to_owned()];
                }
                Some((kind, dirs)) if kind == "namespace" => search = dirs.clone(),
                _ => return Err(search),
            }
        }
        found = Some(find(view, &search, part, suffixes).ok_or_else(|| search.clone())?);
    }
    let (kind, files) = found.ok_or_else(|| search.clone())?;
    Ok(ResolvedModule {
        name: module.to_owned(),
        kind,
        files,
    })
}

/// True when the bundle of `target` can run on this machine.
pub fn runs_here(target: &Target) -> bool {
    let arch_matches = match target.platform.arch {
        Arch::X86_64 => cfg!(target_arch = "x86_64"),
        Arch::Aarch64 => cfg!(target_arch = "aarch64"),
        Arch::X86 => false,
    };
    arch_matches && cfg!(target_os = "linux") && matches!(target.platform.os, Os::LinuxGnu { .. })
}

/// Validates the bundle at `root` for `target` (named `target_name`): statically always,
/// dynamically in `sandbox` when `dynamic` (the caller decided with [`runs_here`]).
///
/// The imports (seconds: interpreters executing the modules) start first and run while the
/// static checks (tens of milliseconds: the manifest, the modules' files, every native
/// library) are made. A static failure is still the error reported, as when the static checks
/// ran first, once the imports have finished (a failing bundle is reported seconds later; a
/// passing one, which is every published one, tens of milliseconds sooner).
pub fn validate(
    root: &Path,
    target_name: &str,
    target: &Target,
    modules: &[String],
    sandbox: &Sandbox,
    dynamic: bool,
    scratch: &Path,
) -> Result<Report, ValidateError> {
    let info = InterpreterInfo::read(root).map_err(|e| ValidateError::Read {
        path: root.join(METADATA_FILE),
        problem: ReadProblem::Io(e),
    })?;
    let mut names: Vec<String> = modules.to_vec();
    names.sort();
    names.dedup();
    std::thread::scope(|scope| {
        let imports = dynamic.then(|| {
            scope.spawn(|| run_imports(root, target_name, &info, &names, sandbox, scratch))
        });
        let statics = check_statically(root, target_name, target, &info, &names);
        let dynamic = imports.map(|imports| {
            imports
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        });
        let (resolved, native_files) = statics?;
        Ok(Report {
            format: 1,
            target: target_name.to_owned(),
            modules: resolved,
            native_files,
            dynamic: dynamic.transpose()?,
        })
    })
}

/// The static half of [`validate`]: resolves `names` (sorted, once each) against the bundle's
/// files, and checks that every native library of its packages finds what it links against.
/// Returns the resolved modules and how many native files were checked.
fn check_statically(
    root: &Path,
    target_name: &str,
    target: &Target,
    info: &InterpreterInfo,
    names: &[String],
) -> Result<(Vec<ResolvedModule>, usize), ValidateError> {
    let read = |path: PathBuf, problem: ReadProblem| ValidateError::Read { path, problem };
    let manifest_path = root.join(MANIFEST_NAME);
    let manifest = fs::read(&manifest_path)
        .map_err(ReadProblem::Io)
        .and_then(|b| BundleManifest::parse(&b).map_err(ReadProblem::Manifest))
        .map_err(|problem| read(manifest_path.clone(), problem))?;
    let windows = target.platform.is_windows();
    let mut files: BTreeSet<String> = manifest.files.iter().map(|f| f.path.clone()).collect();
    if info.stdlib.ends_with(".zip") {
        let zip_path = root.join(&info.stdlib);
        let file =
            fs::File::open(&zip_path).map_err(|e| read(zip_path.clone(), ReadProblem::Io(e)))?;
        let archive =
            zip::ZipArchive::new(file).map_err(|e| read(zip_path.clone(), ReadProblem::Zip(e)))?;
        for name in archive.file_names() {
            if !name.ends_with('/') {
                files.insert(join(&info.stdlib, name));
            }
        }
    }
    let view = View::new(files);
    let path = search_path(info, windows);
    let suffixes = extension_suffixes(target);
    let mut resolved = Vec::new();
    for module in names {
        let found = resolve(&view, &path, module, &suffixes).map_err(|searched| {
            ValidateError::ModuleMissing {
                target: target_name.to_owned(),
                module: module.clone(),
                searched: searched
                    .into_iter()
                    .map(|d| if d.is_empty() { ".".into() } else { d })
                    .collect(),
            }
        })?;
        resolved.push(found);
    }

    let bundle_files = BundleFiles::new(&view.files);
    let native_error = |cause| ValidateError::Native {
        target: target_name.to_owned(),
        cause,
    };
    let system = native::System::for_platform(&target.platform).map_err(native_error)?;
    let format = system.format();
    let mut native_files = 0;
    for file in manifest
        .files
        .iter()
        .filter(|f| f.package.is_some() && f.kind != "l" && native::is_native(&f.path, format))
    {
        let full = root.join(&file.path);
        let bytes = fs::read(&full).map_err(|e| read(full.clone(), ReadProblem::Io(e)))?;
        let missing =
            native::unresolved(&file.path, &bytes, &system, &bundle_files).map_err(native_error)?;
        if let Some(first) = missing.into_iter().next() {
            return Err(ValidateError::LibraryMissing {
                target: target_name.to_owned(),
                file: first.file,
                library: first.library,
                system: system.describe(),
            });
        }
        native_files += 1;
    }
    Ok((resolved, native_files))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(files: &[&str]) -> View {
        View::new(files.iter().map(|s| s.to_string()).collect())
    }

    fn linux() -> Target {
        Target::new("x86_64-unknown-linux-gnu", None, "3.12.7").unwrap()
    }

    fn windows() -> Target {
        Target::new("x86_64-pc-windows-msvc", None, "3.12.7").unwrap()
    }

    const SITE: &str = "lib/python3.12/site-packages";

    fn path() -> Vec<String> {
        vec![
            "lib/python3.12".into(),
            "lib/python3.12/lib-dynload".into(),
            SITE.into(),
        ]
    }

    #[test]
    fn packages_modules_extensions_and_namespaces_resolve() {
        let v = view(&[
            "lib/python3.12/os.py",
            "lib/python3.12/lib-dynload/_ssl.cpython-312-x86_64-linux-gnu.so",
            "lib/python3.12/site-packages/lxml/__init__.py",
            "lib/python3.12/site-packages/lxml/etree.cpython-312-x86_64-linux-gnu.so",
            "lib/python3.12/site-packages/fast.abi3.so",
            "lib/python3.12/site-packages/ns/part/mod.py",
            "lib/python3.12/site-packages/a/__init__.py",
            "lib/python3.12/site-packages/a/b/__init__.py",
            "lib/python3.12/site-packages/a/b/c.py",
        ]);
        let s = extension_suffixes(&linux());
        let r = |m: &str| resolve(&v, &path(), m, &s);
        assert_eq!(r("os").unwrap().files, vec!["lib/python3.12/os.py"]);
        assert_eq!(r("_ssl").unwrap().kind, "extension");
        assert_eq!(r("lxml").unwrap().kind, "package");
        assert_eq!(
            r("lxml.etree").unwrap().files,
            vec![format!("{SITE}/lxml/etree.cpython-312-x86_64-linux-gnu.so")]
        );
        assert_eq!(r("fast").unwrap().kind, "extension");
        assert_eq!(r("ns").unwrap().kind, "namespace");
        assert_eq!(
            r("ns.part.mod").unwrap().files,
            vec![format!("{SITE}/ns/part/mod.py")]
        );
        assert_eq!(r("a.b.c").unwrap().files, vec![format!("{SITE}/a/b/c.py")]);
        assert_eq!(r("sys").unwrap().kind, "builtin");
        assert_eq!(r("missing").unwrap_err(), path());
        assert_eq!(r("a.nope").unwrap_err(), vec![format!("{SITE}/a")]);
        // A module is not a package.
        assert!(r("os.path").is_err());
        // A Windows extension is not a Linux one.
        let v = view(&["lib/python3.12/site-packages/w.cp312-win_amd64.pyd"]);
        assert!(resolve(&v, &path(), "w", &s).is_err());
    }

    #[test]
    fn an_embeddable_stdlib_zip_and_windows_suffixes_resolve() {
        let v = view(&[
            "python312.zip/os.pyc",
            "python312.zip/json/__init__.pyc",
            "_ssl.pyd",
            "Lib/site-packages/lxml/__init__.py",
            "Lib/site-packages/lxml/etree.cp312-win_amd64.pyd",
        ]);
        let info = InterpreterInfo {
            implementation: "cpython".into(),
            version: "3.12.7".into(),
            abi: "cp312".into(),
            platform: "x86_64-pc-windows-msvc".into(),
            source: "windows-embeddable".into(),
            executable: "python.exe".into(),
            stdlib: "python312.zip".into(),
            purelib: "Lib/site-packages".into(),
            platlib: "Lib/site-packages".into(),
            scripts: "Scripts".into(),
            pyc_magic: String::new(),
            relocated: vec![],
        };
        let p = search_path(&info, true);
        let s = extension_suffixes(&windows());
        assert_eq!(resolve(&v, &p, "os", &s).unwrap().kind, "module");
        assert_eq!(resolve(&v, &p, "json", &s).unwrap().kind, "package");
        assert_eq!(resolve(&v, &p, "_ssl", &s).unwrap().files, vec!["_ssl.pyd"]);
        assert_eq!(resolve(&v, &p, "lxml.etree", &s).unwrap().kind, "extension");
        assert!(resolve(&v, &p, "psycopg2", &s).is_err());
    }

    #[test]
    fn only_matching_linux_targets_run_here() {
        assert_eq!(
            runs_here(&linux()),
            cfg!(all(target_os = "linux", target_arch = "x86_64"))
        );
        assert!(!runs_here(&windows()));
        assert!(!runs_here(
            &Target::new("x86_64-apple-darwin", None, "3.12.7").unwrap()
        ));
    }
}
