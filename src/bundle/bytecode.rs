//! Byte-compiling an installed wheel: its `.py` files as PEP 552 hash-based pycs, compiled by
//! an interpreter of the target's exact CPython version in the sandbox, then normalised.
//!
//! The pycs are *checked-hash*: the header holds a SipHash of the source, and CPython
//! validates it against the `.py` beside it at each import. The check costs one read of the
//! source, which is far cheaper than compiling it, and a pyc can then never go stale: a user
//! who patches a file of an unzipped bundle gets their change, not the old code. Timestamp
//! pycs would not work at all (a ZIP's members all carry one fixed time, so after unzipping
//! every source looks changed), and unchecked-hash pycs would silently run stale code.
//!
//! Determinism: the compiler runs with `PYTHONHASHSEED=0` (the sandbox's fixed environment),
//! so frozenset constants keep one order; `co_filename` is the path relative to
//! site-packages, never where the compiler saw it (CPython replaces it with the real source
//! path at import); and `marshal` flags objects by their reference count at dump time, which
//! depends on what the compiling process had loaded, so every pyc is rewritten into its
//! canonical form ([`crate::python::pyc::normalize`]) before it enters the store.

use std::fs;
use std::path::{Path, PathBuf};

use crate::build::sandbox::{output_with_timeout, Input, Sandbox, SandboxError, Spec};
use crate::python::interpreter::{InterpreterInfo, METADATA_FILE};
use crate::python::pyc::{self, PycError};

/// How long compiling one wheel may take: a big package compiles in seconds.
const COMPILE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// How the pycs are validated at import (PEP 552), as recorded in manifests and provenance.
pub const INVALIDATION: &str = "checked-hash";

/// The script the compiling interpreter runs: `site listing`. Each line of `listing` is a `.py`
/// file relative to `site`. It writes nothing: for each file it prints one record to stdout,
/// `index` (the line, from 0) and `length` as little-endian u32s and then that many bytes of
/// pyc, exactly what `py_compile` would write, and pystore writes the normalised pyc itself.
/// Creating each pyc once (not a temporary file, a rename and a rewrite) matters: a new inode
/// is the dearest thing a build does on some file systems. A last record with index
/// `0xffffffff` holds the files that did not compile (Python 2 syntax in a test file, say), one
/// per line: they get no pyc, as pip and uv leave them. (No `json`: importing it costs more
/// than compiling a small wheel.)
const COMPILE_SCRIPT: &str = r#"
import importlib.machinery, importlib.util, os, struct, sys
from importlib._bootstrap_external import _code_to_hash_pyc
site, listing = sys.argv[1:3]
with open(listing, encoding="utf-8") as f:
    names = [line for line in f.read().split("\n") if line]
out = sys.stdout.buffer
failed = []
for index, rel in enumerate(names):
    path = os.path.join(site, rel)
    loader = importlib.machinery.SourceFileLoader("<py_compile>", path)
    source = loader.get_data(path)
    try:
        code = loader.source_to_code(source, rel)
    except Exception:
        failed.append(rel)
        continue
    pyc = _code_to_hash_pyc(code, importlib.util.source_hash(source), True)
    out.write(struct.pack("<II", index, len(pyc)))
    out.write(pyc)
report = "\n".join(failed).encode()
out.write(struct.pack("<II", 0xFFFFFFFF, len(report)))
out.write(report)
out.flush()
"#;

/// The index that marks the compile script's last record, its report.
const REPORT_RECORD: u32 = u32::MAX;

/// Why a wheel could not be byte-compiled.
#[derive(Debug, thiserror::Error)]
pub enum BytecodeError {
    /// Reading the installed tree or writing the pycs failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The compiling interpreter's metadata is unreadable.
    #[error("the compiling interpreter's {METADATA_FILE} at {}: {source}", path.display())]
    Interpreter {
        /// The metadata file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The sandbox could not be prepared.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// The interpreter did not run to the end.
    #[error("compiling with {}: {outcome}", program.display())]
    Run {
        /// The interpreter.
        program: PathBuf,
        /// What happened.
        outcome: RunOutcome,
    },
    /// A pyc the interpreter wrote is not one `normalize` can read.
    #[error("{}: {source}", path.display())]
    Pyc {
        /// The pyc.
        path: PathBuf,
        /// The cause.
        source: PycError,
    },
}

/// How a compiling run went wrong.
#[derive(Debug, thiserror::Error)]
pub enum RunOutcome {
    /// It could not be started.
    #[error("cannot start it: {0}")]
    Start(std::io::Error),
    /// It ran out of time and was stopped.
    #[error("it did not finish within {} seconds and was stopped", COMPILE_TIMEOUT.as_secs())]
    TimedOut,
    /// It exited with an error.
    #[error("it exited with {status}: {stderr}")]
    Failed {
        /// The exit status.
        status: std::process::ExitStatus,
        /// What it printed on stderr.
        stderr: String,
    },
    /// Its output is not the records the script prints.
    #[error("unreadable output: {0}")]
    Malformed(&'static str),
}

/// What compiling a wheel did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Compiled {
    /// pycs written.
    pub compiled: usize,
    /// Sources that did not compile (site-relative), sorted.
    pub failed: Vec<String>,
}

/// Calls `visit(dir, name, path)` for every regular file under `root` whose name is UTF-8
/// (CPython would not import another by that name either); symlinks are not followed.
fn for_each_file(
    root: &Path,
    visit: &mut dyn FnMut(&Path, &str, &Path) -> Result<(), BytecodeError>,
) -> Result<(), BytecodeError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BytecodeError::Io { path, source }
    };
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).map_err(io(&dir))? {
            let entry = entry.map_err(io(&dir))?;
            let path = entry.path();
            let file_type = entry.file_type().map_err(io(&path))?;
            if file_type.is_dir() {
                stack.push(path);
            } else if let (true, Ok(name)) = (file_type.is_file(), entry.file_name().into_string())
            {
                visit(&dir, &name, &path)?;
            }
        }
    }
    Ok(())
}

/// The `.py` files under `dir` (relative to it, `/`-separated, sorted) that need a pyc: regular
/// files only, and none whose pyc the tree ships already (the wheel's own stays).
pub fn sources(dir: &Path, cache_tag: &str) -> Result<Vec<String>, BytecodeError> {
    let mut found = Vec::new();
    for_each_file(dir, &mut |parent, name, path| {
        let Some(stem) = name.strip_suffix(".py").filter(|_| !name.contains('\n')) else {
            return Ok(());
        };
        if !pyc_place(parent, stem, cache_tag).exists() {
            if let Some(rel) = path.strip_prefix(dir).ok().and_then(Path::to_str) {
                found.push(rel.replace(std::path::MAIN_SEPARATOR, "/"));
            }
        }
        Ok(())
    })?;
    found.sort();
    Ok(found)
}

/// Where CPython looks for the pyc of `dir/STEM.py`: `dir/__pycache__/STEM.<cache_tag>.pyc`.
fn pyc_place(dir: &Path, stem: &str, cache_tag: &str) -> PathBuf {
    dir.join("__pycache__")
        .join(format!("{stem}.{cache_tag}.pyc"))
}

/// The interpreter's cache tag (`cpython-312`), from its version.
fn cache_tag(info: &InterpreterInfo) -> String {
    let mut parts = info.version.split('.');
    let major = parts.next().unwrap_or_default();
    let minor = parts.next().unwrap_or_default();
    format!("cpython-{major}{minor}")
}

/// Compiles every `.py` under `site` (a directory of the installed tree at `installed`,
/// relative to it) with the interpreter at `python`, writing the pycs at the same places under
/// `out` (created). `scratch` is the sandbox's scratch space (created and removed by the caller).
pub fn compile(
    installed: &Path,
    site: &str,
    python: &Path,
    sandbox: &Sandbox,
    scratch: &Path,
    out: &Path,
) -> Result<Compiled, BytecodeError> {
    let info = InterpreterInfo::read(python).map_err(|source| BytecodeError::Interpreter {
        path: python.join(METADATA_FILE),
        source,
    })?;
    let site_dir = installed.join(site);
    let files = if site_dir.is_dir() {
        sources(&site_dir, &cache_tag(&info))?
    } else {
        Vec::new()
    };
    let out_site = out.join(site);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BytecodeError::Io { path, source }
    };
    fs::create_dir_all(&out_site).map_err(io(&out_site))?;
    if files.is_empty() {
        return Ok(Compiled::default());
    }
    let build = scratch.join("build");
    fs::create_dir_all(&build).map_err(io(&build))?;
    let listing = build.join("files.txt");
    let mut text = files.join("\n");
    text.push('\n');
    fs::write(&listing, text).map_err(io(&listing))?;
    let mut spec = Spec {
        inputs: vec![
            Input {
                label: "python".into(),
                host: python.to_path_buf(),
            },
            Input {
                label: "installed".into(),
                host: installed.to_path_buf(),
            },
        ],
        scratch: scratch.to_path_buf(),
        program: ("python".into(), info.executable.clone()),
        args: Vec::new(),
        path: Vec::new(),
        system_libraries: true,
        source_date_epoch: None,
    };
    let inside = sandbox.build_path(&spec);
    // -S -s: no site module (nothing but the standard library is needed); -B: nothing written
    // into the read-only interpreter; not -I/-E, which would ignore the fixed PYTHONHASHSEED.
    spec.args = vec![
        "-S".into(),
        "-s".into(),
        "-B".into(),
        "-c".into(),
        COMPILE_SCRIPT.into(),
        sandbox
            .input_path("installed", installed)
            .join(site)
            .into_os_string(),
        inside.join("files.txt").into_os_string(),
    ];
    let program = sandbox.input_path("python", python).join(&info.executable);
    let run = |outcome| BytecodeError::Run {
        program: program.clone(),
        outcome,
    };
    let mut command = sandbox.command(&spec)?;
    let output = output_with_timeout(&mut command, COMPILE_TIMEOUT)
        .map_err(|e| run(RunOutcome::Start(e)))?
        .ok_or_else(|| run(RunOutcome::TimedOut))?;
    if !output.status.success() {
        return Err(run(RunOutcome::Failed {
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        }));
    }
    let mut failed = write_pycs(&output.stdout, &files, &cache_tag(&info), &out_site, &run)?;
    failed.sort();
    if !failed.is_empty() {
        tracing::debug!(
            "{}: {} of {} files did not compile: {}",
            installed.display(),
            failed.len(),
            files.len(),
            failed.join(", ")
        );
    }
    Ok(Compiled {
        compiled: files.len().saturating_sub(failed.len()),
        failed,
    })
}

/// Writes the pycs in the compile script's `records` (see [`COMPILE_SCRIPT`]) under `out`, each
/// normalised ([`pyc::normalize`]) and at the place CPython looks for it
/// (`dir/__pycache__/NAME.<cache_tag>.pyc` for `dir/NAME.py` in `files`); returns the files that
/// did not compile. The script chooses no path: a record names a line of `files`.
fn write_pycs(
    records: &[u8],
    files: &[String],
    cache_tag: &str,
    out: &Path,
    run: &dyn Fn(RunOutcome) -> BytecodeError,
) -> Result<Vec<String>, BytecodeError> {
    let malformed = |what| run(RunOutcome::Malformed(what));
    let mut rest = records;
    let mut made_dirs = std::collections::HashSet::new();
    loop {
        let Some((header, tail)) = rest.split_first_chunk::<8>() else {
            return Err(malformed("the compiler's output ended before its report"));
        };
        let index = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let Some((body, tail)) = (tail.len() >= len).then(|| tail.split_at(len)) else {
            return Err(malformed("the compiler's output ends inside a record"));
        };
        rest = tail;
        if index == REPORT_RECORD {
            let report = std::str::from_utf8(body)
                .map_err(|_| malformed("the compiler's report is not UTF-8"))?;
            return Ok(report.lines().map(str::to_owned).collect());
        }
        let Some(source) = files.get(index as usize) else {
            return Err(malformed("the compiler named a file it was not given"));
        };
        let (dir, name) = source.rsplit_once('/').unwrap_or(("", source));
        let stem = name.strip_suffix(".py").unwrap_or(name);
        let path = pyc_place(&out.join(dir), stem, cache_tag);
        let cache_dir = path.parent().unwrap_or(out).to_path_buf();
        let io = |source| BytecodeError::Io {
            path: path.clone(),
            source,
        };
        let canonical = pyc::normalize(body).map_err(|source| BytecodeError::Pyc {
            path: path.clone(),
            source,
        })?;
        if made_dirs.insert(cache_dir.clone()) {
            fs::create_dir_all(&cache_dir).map_err(io)?;
        }
        fs::write(&path, canonical).map_err(io)?;
    }
}

/// Where the `.py` files to compile are in the tree being compiled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sources {
    /// A directory of the tree (`/`-separated): an installed wheel's site-packages.
    Dir(String),
    /// The standard library of the interpreter tree being compiled, as its metadata says
    /// (nothing when it is a zip of pycs, as in Windows embeddable distributions).
    Stdlib,
}

impl Sources {
    /// The directory to compile under `tree`, or `None` when there is nothing to compile.
    pub fn resolve(&self, tree: &Path) -> Result<Option<String>, BytecodeError> {
        match self {
            Sources::Dir(dir) => Ok(Some(dir.clone())),
            Sources::Stdlib => {
                let info =
                    InterpreterInfo::read(tree).map_err(|source| BytecodeError::Interpreter {
                        path: tree.join(METADATA_FILE),
                        source,
                    })?;
                Ok((!info.stdlib.ends_with(".zip")).then_some(info.stdlib))
            }
        }
    }
}

/// Turns the timestamp pycs under `root` whose source sits beside their `__pycache__` into
/// checked-hash pycs with the same code (see [`pyc::timestamp_to_checked_hash`]): an interpreter
/// archive's pycs record the build machine's mtimes, which no file of a store entry or of an
/// unzipped bundle has, so as they are they would be stale everywhere. Returns how many.
pub fn convert_timestamp_pycs(root: &Path) -> Result<usize, BytecodeError> {
    let mut converted = 0;
    for_each_file(root, &mut |dir, name, path| {
        let in_cache = dir.file_name().is_some_and(|n| n == "__pycache__");
        if !in_cache || !name.ends_with(".pyc") {
            return Ok(());
        }
        // `NAME.cpython-311.pyc` or `NAME.cpython-311.opt-1.pyc`: the source is `../NAME.py`.
        let stem = name.split('.').next().unwrap_or(name);
        let Some(source_path) = dir.parent().map(|p| p.join(format!("{stem}.py"))) else {
            return Ok(());
        };
        let Ok(source) = fs::read(&source_path) else {
            return Ok(()); // a pyc without its source stays as it is
        };
        let io = |source| BytecodeError::Io {
            path: path.to_path_buf(),
            source,
        };
        let bytes = fs::read(path).map_err(io)?;
        if let Some(checked) = pyc::timestamp_to_checked_hash(&bytes, &source) {
            fs::write(path, checked).map_err(io)?;
            converted += 1;
        }
        Ok(())
    })?;
    Ok(converted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_pycs_beside_their_source_become_checked_hash() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("pkg/__pycache__")).unwrap();
        let source = b"X = 1\n";
        fs::write(root.join("pkg/m.py"), source).unwrap();
        // A timestamp pyc (flags 0, mtime, size) of CPython 3.11 (magic 3495) for m.py, one
        // recording another size (stale: left alone), and one without a source.
        let magic = [0xa7, 0x0d, 0x0d, 0x0a];
        let timestamp_pyc = |size: u32| {
            let mut pyc = magic.to_vec();
            pyc.extend_from_slice(&0u32.to_le_bytes());
            pyc.extend_from_slice(&1_700_000_000u32.to_le_bytes());
            pyc.extend_from_slice(&size.to_le_bytes());
            pyc.extend_from_slice(b"body");
            pyc
        };
        let cache = root.join("pkg/__pycache__");
        fs::write(cache.join("m.cpython-311.pyc"), timestamp_pyc(6)).unwrap();
        fs::write(cache.join("m.cpython-311.opt-1.pyc"), timestamp_pyc(7)).unwrap();
        fs::write(cache.join("gone.cpython-311.pyc"), timestamp_pyc(6)).unwrap();
        assert_eq!(convert_timestamp_pycs(root).unwrap(), 1);
        let converted = fs::read(cache.join("m.cpython-311.pyc")).unwrap();
        assert_eq!(&converted[..4], &magic);
        assert_eq!(&converted[4..8], &3u32.to_le_bytes());
        assert_eq!(&converted[8..16], &pyc::source_hash(magic, source));
        assert_eq!(&converted[16..], b"body");
        assert_eq!(
            fs::read(cache.join("m.cpython-311.opt-1.pyc")).unwrap(),
            timestamp_pyc(7)
        );
        assert_eq!(
            fs::read(cache.join("gone.cpython-311.pyc")).unwrap(),
            timestamp_pyc(6)
        );
    }

    #[test]
    fn sources_are_sorted_regular_py_files_without_a_shipped_pyc() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("pkg/__pycache__")).unwrap();
        fs::create_dir_all(root.join("pkg/sub")).unwrap();
        fs::write(root.join("pkg/__init__.py"), "").unwrap();
        fs::write(root.join("pkg/sub/b.py"), "").unwrap();
        fs::write(root.join("pkg/a.py"), "").unwrap();
        fs::write(root.join("pkg/data.txt"), "").unwrap();
        fs::write(root.join("pkg/shipped.py"), "").unwrap();
        fs::write(root.join("pkg/__pycache__/shipped.cpython-312.pyc"), "").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("a.py", root.join("pkg/link.py")).unwrap();
        assert_eq!(
            sources(root, "cpython-312").unwrap(),
            ["pkg/__init__.py", "pkg/a.py", "pkg/sub/b.py"]
        );
        // Another version's pyc does not count.
        assert!(sources(root, "cpython-311")
            .unwrap()
            .contains(&"pkg/shipped.py".to_owned()));
    }

    /// One record of the compile script's output.
    fn record(index: u32, body: &[u8]) -> Vec<u8> {
        let mut bytes = index.to_le_bytes().to_vec();
        bytes.extend_from_slice(&u32::try_from(body.len()).unwrap().to_le_bytes());
        bytes.extend_from_slice(body);
        bytes
    }

    fn write(records: &[u8], out: &Path) -> Result<Vec<String>, BytecodeError> {
        let files = ["top.py".to_owned(), "pkg/sub/m.py".to_owned()];
        let run = |outcome| BytecodeError::Run {
            program: PathBuf::from("python"),
            outcome,
        };
        write_pycs(records, &files, "cpython-311", out, &run)
    }

    #[test]
    fn compiler_records_become_pycs_at_the_places_cpython_reads() {
        let dir = tempfile::tempdir().unwrap();
        // A CPython 3.11 checked-hash pyc whose code object is `None`: normalising keeps it.
        let mut pyc = vec![0xa7, 0x0d, 0x0d, 0x0a, 3, 0, 0, 0];
        pyc.extend_from_slice(&[7; 8]);
        pyc.push(b'N');
        let mut records = record(1, &pyc);
        records.extend(record(0, &pyc));
        records.extend(record(REPORT_RECORD, b"bad.py\nworse.py"));
        assert_eq!(write(&records, dir.path()).unwrap(), ["bad.py", "worse.py"]);
        for place in [
            "__pycache__/top.cpython-311.pyc",
            "pkg/sub/__pycache__/m.cpython-311.pyc",
        ] {
            assert_eq!(fs::read(dir.path().join(place)).unwrap(), pyc, "{place}");
        }
    }

    #[test]
    fn compiler_output_that_is_not_its_records_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let report = record(REPORT_RECORD, b"bad.py");
        let mut unknown_file = record(2, b"");
        unknown_file.extend_from_slice(&report);
        let not_utf8 = record(REPORT_RECORD, b"\xff.py");
        let cases: [(&[u8], &str); 4] = [
            (
                &not_utf8,
                "unreadable output: the compiler's report is not UTF-8",
            ),
            (
                &unknown_file,
                "unreadable output: the compiler named a file it was not given",
            ),
            (
                &report[..report.len() - 1],
                "unreadable output: the compiler's output ends inside a record",
            ),
            (
                &[],
                "unreadable output: the compiler's output ended before its report",
            ),
        ];
        for (records, expected) in cases {
            let err = write(records, dir.path()).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("compiling with python: {expected}")
            );
        }
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            0,
            "nothing written"
        );
    }
}
