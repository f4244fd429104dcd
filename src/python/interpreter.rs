//! Interpreter trees: a local archive or an installed interpreter turned into a relocatable
//! CPython tree at an output path, with its metadata in `pystore-interpreter.json`.
//!
//! Sources:
//! - a python-build-standalone archive (`install_only`/`install_only_stripped` `.tar.gz`, or a
//!   full `.tar.zst`), whose single top directory `python/` (full archives: `python/install/`)
//!   becomes the tree;
//! - a Windows embeddable zip, whose `python3XY._pth` is rewritten so that `Lib\site-packages`
//!   is on the path and `site` is imported (and, as with any `._pth`, nothing outside the
//!   bundle: no PYTHONPATH, no user site-packages);
//! - an installed interpreter at a prefix, copied without the contents of its site-packages,
//!   `__pycache__` directories and `EXTERNALLY-MANAGED`.
//!
//! The declared version is checked against the tree (`lib/pythonX.Y` or `python3XY.dll`, and
//! `patchlevel.h` where present), and build-machine paths are removed (see [`super::relocate`]).

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::relocate::{relocate_unix_tree, RelocateError};
use super::scheme::Scheme;
use super::target::Target;
use crate::archive::extract::{
    create_dirs, create_file, extract_tar, CheckedZip, Limits, MemberKind, MemberSet,
    TarCompression, UnpackError,
};

/// The metadata file written at the root of every interpreter tree.
pub const METADATA_FILE: &str = "pystore-interpreter.json";

/// Why an interpreter tree could not be made.
#[derive(Debug, thiserror::Error)]
pub enum InterpreterError {
    /// The archive was refused.
    #[error(transparent)]
    Unpack(#[from] UnpackError),
    /// Build-machine paths could not be removed.
    #[error(transparent)]
    Relocate(#[from] RelocateError),
    /// The tree is not an interpreter of the declared version and platform.
    #[error("{source_path}: {reason}")]
    Mismatch {
        source_path: PathBuf,
        reason: String,
    },
    /// Metadata could not be serialised.
    #[error(transparent)]
    Json(#[from] crate::hash::canonical_json::CanonicalJsonError),
}

/// What an interpreter tree holds, as recorded in [`METADATA_FILE`]. Paths are relative to the
/// tree's root and `/`-separated.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InterpreterInfo {
    /// `cpython`.
    pub implementation: String,
    /// Full version (`3.12.7`).
    pub version: String,
    /// ABI tag (`cp312`).
    pub abi: String,
    /// Platform triple.
    pub platform: String,
    /// Where the tree came from: `python-build-standalone`, `windows-embeddable`, `installed`.
    pub source: String,
    /// The interpreter executable.
    pub executable: String,
    /// The standard library (a directory, or `python3XY.zip` in embeddable distributions).
    pub stdlib: String,
    /// Pure-Python packages.
    pub purelib: String,
    /// Platform packages.
    pub platlib: String,
    /// Scripts.
    pub scripts: String,
    /// The 4-byte `.pyc` magic of this version, hex (`cb0d0d0a`), for byte-compiling later.
    pub pyc_magic: String,
    /// Files rewritten to remove build-machine paths.
    pub relocated: Vec<String>,
}

impl InterpreterInfo {
    /// Reads the metadata of the interpreter tree at `root`.
    pub fn read(root: &Path) -> std::io::Result<InterpreterInfo> {
        let text = fs::read_to_string(root.join(METADATA_FILE))?;
        serde_json::from_str(&text)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }
}

/// Where the archive is and what format it has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PbsFormat {
    /// `install_only` or `install_only_stripped` `.tar.gz`: top directory `python/`.
    InstallOnly,
    /// Full `.tar.zst`: the install is under `python/install/`.
    Full,
}

impl PbsFormat {
    /// Guesses the format from the file name (`.tar.zst` is full, `.tar.gz` install-only).
    pub fn from_file_name(name: &str) -> Option<PbsFormat> {
        if name.ends_with(".tar.zst") {
            Some(PbsFormat::Full)
        } else if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
            Some(PbsFormat::InstallOnly)
        } else {
            None
        }
    }
}

/// Unpacks a python-build-standalone archive for `target` into `out` (created).
pub fn unpack_pbs(
    archive: &Path,
    format: PbsFormat,
    target: &Target,
    out: &Path,
    limits: &Limits,
) -> Result<InterpreterInfo, InterpreterError> {
    let (compression, strip) = match format {
        PbsFormat::InstallOnly => (TarCompression::Gzip, "python"),
        PbsFormat::Full => (TarCompression::Zstd, "python/install"),
    };
    extract_tar(archive, compression, strip, out, limits)?;
    let result = finish(out, archive, target, "python-build-standalone");
    if result.is_err() {
        let _ = fs::remove_dir_all(out);
    }
    result
}

/// Unpacks a Windows embeddable zip for `target` into `out` (created) and rewrites its `._pth`.
pub fn unpack_embeddable(
    archive: &Path,
    target: &Target,
    out: &Path,
    limits: &Limits,
) -> Result<InterpreterInfo, InterpreterError> {
    if !target.platform.is_windows() {
        return Err(InterpreterError::Mismatch {
            source_path: archive.to_path_buf(),
            reason: format!(
                "an embeddable zip is a Windows interpreter, but the target is {target}"
            ),
        });
    }
    let mut zip = CheckedZip::open(archive, limits)?;
    fs_err::create_dir(out).map_err(UnpackError::Io)?;
    let result = (|| {
        let members: Vec<(String, MemberKind)> = zip
            .members()
            .map(|(n, k)| (n.to_owned(), k.clone()))
            .collect();
        for (name, kind) in members {
            let dest = out.join(&name);
            match kind {
                MemberKind::Dir => create_dirs(&dest)?,
                MemberKind::File { executable, .. } => {
                    if let Some(parent) = dest.parent() {
                        create_dirs(parent)?;
                    }
                    let mut file = create_file(&dest, executable)?;
                    zip.copy_member(&name, &mut file)?;
                }
                // Refused when the zip is opened; kept as an error rather than a panic.
                MemberKind::Symlink(_) => {
                    return Err(InterpreterError::Mismatch {
                        source_path: archive.to_path_buf(),
                        reason: format!("{name} is a symlink"),
                    })
                }
            }
        }
        let pth = format!("python{}._pth", target.python.nodot());
        let pth_path = out.join(&pth);
        let original = fs::read_to_string(&pth_path).map_err(|_| InterpreterError::Mismatch {
            source_path: archive.to_path_buf(),
            reason: format!(
                "it has no {pth}; is it an embeddable distribution of Python {}?",
                target.python.major_minor()
            ),
        })?;
        fs_err::remove_file(&pth_path).map_err(UnpackError::Io)?;
        fs_err::write(&pth_path, rewrite_pth(&original)).map_err(UnpackError::Io)?;
        create_dirs(&out.join("Lib/site-packages"))?;
        finish(out, archive, target, "windows-embeddable")
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(out);
    }
    result
}

/// The `._pth` of an embeddable distribution with `Lib\site-packages` on the path and `site`
/// imported; comments and other entries are kept, `#import site` is uncommented.
pub fn rewrite_pth(original: &str) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut has_site_packages = false;
    let mut has_import_site = false;
    for line in original.lines() {
        let trimmed = line.trim();
        if trimmed.eq_ignore_ascii_case("lib\\site-packages")
            || trimmed.eq_ignore_ascii_case("lib/site-packages")
        {
            has_site_packages = true;
        }
        if trimmed == "import site" || trimmed == "#import site" {
            if !has_import_site {
                lines.push("import site".to_owned());
            }
            has_import_site = true;
            continue;
        }
        lines.push(line.to_owned());
    }
    if !has_site_packages {
        // Before `import site`, so the path is complete when site runs.
        let at = lines
            .iter()
            .position(|l| l == "import site")
            .unwrap_or(lines.len());
        lines.insert(at, "Lib\\site-packages".to_owned());
    }
    if !has_import_site {
        lines.push("import site".to_owned());
    }
    let mut out = lines.join("\r\n");
    out.push_str("\r\n");
    out
}

/// Copies the interpreter installed at `prefix` into `out` (created), without its
/// site-packages contents, `__pycache__` directories and `EXTERNALLY-MANAGED`.
pub fn capture_installed(
    prefix: &Path,
    target: &Target,
    out: &Path,
    limits: &Limits,
) -> Result<InterpreterInfo, InterpreterError> {
    let scheme = Scheme::for_target(target);
    let site = scheme.purelib.clone();
    // Check everything first (kinds, links), then copy.
    let mut set = MemberSet::default();
    let mut nodes: Vec<(String, MemberKind)> = Vec::new();
    walk(prefix, "", &site, &mut |rel, kind| {
        let clean = set.admit(prefix, rel, kind.clone(), limits)?;
        nodes.push((clean, kind));
        Ok(())
    })?;
    set.check_symlinks(prefix)?;
    fs_err::create_dir(out).map_err(UnpackError::Io)?;
    let result = (|| {
        for (rel, kind) in &nodes {
            let dest = out.join(rel);
            match kind {
                MemberKind::Dir => create_dirs(&dest)?,
                MemberKind::File { executable, .. } => {
                    let src = prefix.join(rel);
                    // Opened as an input file: if it was swapped for a FIFO or grew since the
                    // walk, this refuses it rather than hanging or copying without end.
                    let (reader, _) =
                        crate::hash::files::open_input(&src, "interpreter file", limits.max_member)
                            .map_err(|e| UnpackError::Member {
                                archive: prefix.to_path_buf(),
                                member: rel.clone(),
                                reason: e.reason(),
                            })?;
                    // Both ends wrapped by `fs-err`, so a failure names the file it happened in.
                    let reader = fs_err::File::from_parts(reader, &src);
                    let mut file =
                        fs_err::File::from_parts(create_file(&dest, *executable)?, &dest);
                    std::io::copy(&mut reader.take(limits.max_member), &mut file)
                        .map_err(UnpackError::Io)?;
                }
                MemberKind::Symlink(target) => {
                    #[cfg(unix)]
                    fs_err::os::unix::fs::symlink(target, &dest).map_err(UnpackError::Io)?;
                    #[cfg(not(unix))]
                    fs_err::os::windows::fs::symlink_file(target, &dest)
                        .map_err(UnpackError::Io)?;
                }
            }
        }
        create_dirs(&out.join(&site))?;
        finish(out, prefix, target, "installed")
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(out);
    }
    result
}

/// Walks `dir`, skipping what a captured interpreter must not carry.
fn walk(
    root: &Path,
    rel: &str,
    site: &str,
    visit: &mut dyn FnMut(&str, MemberKind) -> Result<(), UnpackError>,
) -> Result<(), UnpackError> {
    let dir = root.join(rel);
    let mut entries: Vec<_> = fs_err::read_dir(&dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let name = name.to_str().ok_or_else(|| UnpackError::Member {
            archive: root.to_path_buf(),
            member: format!("{rel}/{}", name.to_string_lossy()),
            reason: "name is not UTF-8".into(),
        })?;
        if name == "__pycache__" || name == "EXTERNALLY-MANAGED" {
            continue;
        }
        let child = if rel.is_empty() {
            name.to_owned()
        } else {
            format!("{rel}/{name}")
        };
        let path = entry.path();
        let meta = fs_err::symlink_metadata(&path)?;
        let kind = if meta.is_dir() {
            MemberKind::Dir
        } else if meta.is_file() {
            #[cfg(unix)]
            let executable =
                std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o100 != 0;
            #[cfg(not(unix))]
            let executable = false;
            MemberKind::File {
                size: meta.len(),
                executable,
            }
        } else if meta.file_type().is_symlink() {
            let target = fs_err::read_link(&path)?;
            MemberKind::Symlink(target.to_string_lossy().into_owned())
        } else {
            return Err(UnpackError::Member {
                archive: root.to_path_buf(),
                member: child,
                reason: "it is a special file (device, fifo or socket)".into(),
            });
        };
        let is_dir = kind == MemberKind::Dir;
        visit(&child, kind)?;
        // Keep site-packages itself (empty), not its contents.
        if is_dir && child != site && !child.eq_ignore_ascii_case("lib/site-packages") {
            walk(root, &child, site, visit)?;
        }
    }
    Ok(())
}

/// Checks the version, relocates, and writes the metadata.
fn finish(
    out: &Path,
    source: &Path,
    target: &Target,
    kind: &str,
) -> Result<InterpreterInfo, InterpreterError> {
    let mismatch = |reason: String| InterpreterError::Mismatch {
        source_path: source.to_path_buf(),
        reason,
    };
    let version = &target.python;
    let scheme = Scheme::for_target(target);
    let windows = target.platform.is_windows();
    let (stdlib, found) = if windows {
        let dll = format!("python{}.dll", version.nodot());
        let found = list_names(out, |n| {
            n.starts_with("python3") && n.ends_with(".dll") && n != "python3.dll"
        });
        if !out.join(&dll).is_file() {
            return Err(mismatch(format!(
                "it is not CPython {}: no {dll} (found {})",
                version.major_minor(),
                describe(&found)
            )));
        }
        let zip = format!("python{}.zip", version.nodot());
        // PBS ships the stdlib as sources in Lib; embeddable distributions as a zip of .pyc.
        let stdlib = if out.join("Lib/os.py").is_file() {
            "Lib".to_owned()
        } else {
            zip
        };
        (stdlib, found)
    } else {
        let dir = format!("lib/python{}", version.major_minor());
        let found = list_names(&out.join("lib"), |n| n.starts_with("python3."));
        if !out.join(&dir).is_dir() {
            return Err(mismatch(format!(
                "it is not CPython {}: no {dir} (found {})",
                version.major_minor(),
                describe(&found)
            )));
        }
        (dir, found)
    };
    if found.len() > 1 {
        return Err(mismatch(format!(
            "it holds several Python versions: {}",
            found.join(", ")
        )));
    }
    if !out.join(&scheme.python).is_file()
        && fs::symlink_metadata(out.join(&scheme.python)).is_err()
    {
        return Err(mismatch(format!("it has no {}", scheme.python)));
    }
    if let Some(full) = patchlevel_version(out, target) {
        if full != version.to_string() {
            return Err(mismatch(format!(
                "it is CPython {full} (patchlevel.h), not the declared {version}"
            )));
        }
    }
    let pyc_magic = pyc_magic(out, &stdlib).ok_or_else(|| {
        mismatch(format!("cannot find the .pyc magic number in {stdlib} (importlib/_bootstrap_external.py or a .pyc)"))
    })?;
    let relocated = if windows {
        Vec::new()
    } else {
        relocate_unix_tree(out, &stdlib)?
    };
    let info = InterpreterInfo {
        implementation: "cpython".into(),
        version: version.to_string(),
        abi: target.abi_tag(),
        platform: target.platform.triple().into(),
        source: kind.into(),
        executable: scheme.python.clone(),
        stdlib,
        purelib: scheme.purelib.clone(),
        platlib: scheme.platlib.clone(),
        scripts: scheme.scripts.clone(),
        pyc_magic,
        relocated,
    };
    let value = serde_json::to_value(&info).map_err(|e| mismatch(e.to_string()))?;
    let mut bytes = crate::hash::canonical_json::to_vec(&value)?;
    bytes.push(b'\n');
    let path = out.join(METADATA_FILE);
    fs_err::write(&path, bytes).map_err(UnpackError::Io)?;
    Ok(info)
}

fn list_names(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|n| keep(n))
        .collect();
    names.sort();
    names
}

fn describe(found: &[String]) -> String {
    if found.is_empty() {
        "no Python at all".into()
    } else {
        found.join(", ")
    }
}

/// `PY_VERSION` from `include/pythonX.Y/patchlevel.h` (Unix) or `include/patchlevel.h`.
fn patchlevel_version(out: &Path, target: &Target) -> Option<String> {
    let candidates = [
        out.join(format!(
            "include/python{}/patchlevel.h",
            target.python.major_minor()
        )),
        out.join("include/patchlevel.h"),
        out.join("Include/patchlevel.h"),
    ];
    let text = candidates.iter().find_map(|p| fs::read_to_string(p).ok())?;
    let line = text
        .lines()
        .find(|l| l.starts_with("#define PY_VERSION "))?;
    let version = line.split('"').nth(1)?;
    Some(version.to_owned())
}

/// The `.pyc` magic, from `importlib/_bootstrap_external.py` or the first `.pyc` of a stdlib zip.
fn pyc_magic(out: &Path, stdlib: &str) -> Option<String> {
    let source = out.join(stdlib).join("importlib/_bootstrap_external.py");
    if let Ok(text) = fs::read_to_string(source) {
        let line = text.lines().find(|l| l.starts_with("MAGIC_NUMBER = ("))?;
        let number: u16 = line.split(['(', ')']).nth(1)?.trim().parse().ok()?;
        let [a, b] = number.to_le_bytes();
        return Some(hex::encode([a, b, b'\r', b'\n']));
    }
    let file = fs::File::open(out.join(stdlib)).ok()?;
    let mut zip = zip::ZipArchive::new(file).ok()?;
    for index in 0..zip.len() {
        let mut entry = zip.by_index(index).ok()?;
        if entry.name().ends_with(".pyc") {
            let mut magic = [0u8; 4];
            entry.read_exact(&mut magic).ok()?;
            return (magic[2..] == *b"\r\n").then(|| hex::encode(magic));
        }
    }
    None
}
