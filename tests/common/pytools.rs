//! Python packages some tests use as independent oracles (jsonschema for the CycloneDX schema,
//! PyPA's packaging for PEP 751, uv and pip-tools for the hashed requirements files they write),
//! provisioned by the tests themselves so that `cargo test` works
//! on a fresh machine: a virtual environment under the target directory, made once with the
//! pinned versions below and reused by every test binary after that.

use std::path::PathBuf;
use std::process::Command;

/// The pinned oracle packages. Changing this list remakes the environment.
const REQUIREMENTS: &[&str] = &[
    "jsonschema==4.26.0",
    "packaging==26.4",
    "uv==0.13.9",
    "pip-tools==7.6.2",
];

/// The environment's python, or why there is none. Made (under a lock, so concurrent test
/// binaries make it once) with the machine's `python3 -m venv` and pip, which fetches from the
/// package index pip is configured with.
pub(crate) fn python() -> Result<PathBuf, String> {
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pytools");
    std::fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
    let lock_file = std::fs::File::create(root.join(".lock"))
        .map_err(|e| format!("{}: {e}", root.display()))?;
    let mut lock = fd_lock::RwLock::new(lock_file);
    let _guard = lock
        .write()
        .map_err(|e| format!("lock {}: {e}", root.display()))?;
    let venv = root.join("venv");
    let python = venv.join("bin/python");
    let stamp = root.join("ready");
    let wanted = REQUIREMENTS.join("\n");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) && python.exists() {
        return Ok(python);
    }
    let _ = std::fs::remove_file(&stamp);
    let _ = std::fs::remove_dir_all(&venv);
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .output()
        .map_err(|e| format!("python3 -m venv: {e}"))?;
    if !made.status.success() {
        return Err(format!(
            "python3 -m venv failed: {}",
            String::from_utf8_lossy(&made.stderr)
        ));
    }
    let installed = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(REQUIREMENTS)
        .output()
        .map_err(|e| format!("pip install: {e}"))?;
    if !installed.status.success() {
        return Err(format!(
            "pip install {} failed (it needs the package index once): {}",
            REQUIREMENTS.join(" "),
            String::from_utf8_lossy(&installed.stderr)
        ));
    }
    std::fs::write(&stamp, wanted).map_err(|e| format!("{}: {e}", stamp.display()))?;
    Ok(python)
}

/// [`python`], or — where it cannot be made — `None` after saying so on stderr. In CI (`CI`
/// set) a missing oracle is a failure, never a silent pass.
pub(crate) fn python_or_skip(test_needs: &str) -> Option<PathBuf> {
    match python() {
        Ok(python) => Some(python),
        Err(why) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must be able to provide {test_needs}: {why}"
            );
            eprintln!("SKIPPED: no Python with {test_needs}: {why}");
            None
        }
    }
}
