//! Helpers shared by the integration tests: run the real binary against temporary stores.

pub(crate) mod github;
pub(crate) mod http;
pub(crate) mod pytools;

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// sha256 of `bytes`, lower-case hex.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The binary under test.
pub(crate) fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_pystore")
}

/// `pystore --store STORE`, with no pystore configuration inherited from the environment.
pub(crate) fn pystore(store: &Path) -> Command {
    let mut cmd = Command::new(bin());
    cmd.arg("--store").arg(store);
    // No pip.conf or netrc of the machine's: tests configure what they use.
    cmd.env("PIP_CONFIG_FILE", "/dev/null")
        .env("NETRC", "/dev/null");
    for (key, _) in std::env::vars_os() {
        let name = key.to_string_lossy();
        if name.starts_with("PYSTORE_")
            || name.starts_with("PIP_")
            || name == "RUST_LOG"
            || name == "NETRC"
        {
            cmd.env_remove(key);
        }
    }
    // Never ask the machine's pip for an index: tests name the indexes they use.
    cmd.env("PYSTORE_PIP_PYTHON", "");
    cmd
}

/// Runs and returns the output, whatever the exit code.
pub(crate) fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run pystore")
}

/// Runs, requires exit 0, returns stdout.
pub(crate) fn run_ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed with {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("stdout is UTF-8")
}

/// Runs, requires exit code `code`, returns stderr.
pub(crate) fn run_fails(cmd: &mut Command, code: i32) -> String {
    let out = run(cmd);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{cmd:?}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stderr).expect("stderr is UTF-8")
}

/// Parses stdout as JSON.
pub(crate) fn json(cmd: &mut Command) -> serde_json::Value {
    serde_json::from_str(&run_ok(cmd.arg("--json"))).expect("stdout is JSON")
}

/// The "sample tree" of store-layout.md's golden vectors.
pub(crate) fn make_sample_tree(dir: &Path) {
    fs::create_dir_all(dir.join("bin")).unwrap();
    fs::create_dir_all(dir.join("empty")).unwrap();
    fs::write(dir.join("a.txt"), b"hello\n").unwrap();
    fs::write(dir.join("bin/run"), b"#!/bin/sh\necho hi\n").unwrap();
    fs::set_permissions(dir.join("bin/run"), fs::Permissions::from_mode(0o755)).unwrap();
    symlink("../a.txt", dir.join("bin/link")).unwrap();
}

/// A tree with `n` files of a few KiB each, spread over directories.
pub(crate) fn make_tree(dir: &Path, n: usize) {
    for i in 0..n {
        let sub = dir.join(format!("d{}", i % 10));
        fs::create_dir_all(&sub).unwrap();
        let body: Vec<u8> = (0..(1024 + i * 37))
            .map(|j| (i * 31 + j * 7) as u8)
            .collect();
        fs::write(sub.join(format!("f{i}.bin")), body).unwrap();
    }
}

/// Names in a directory, sorted (empty when it does not exist).
pub(crate) fn list(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = match fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

/// Lock files are allowed to stay; everything else under tmp/ and entries/ is listed.
pub(crate) fn entries_and_tmp(store: &Path) -> (Vec<String>, Vec<String>) {
    (list(&store.join("entries")), list(&store.join("tmp")))
}

/// Makes a read-only tree writable again so a tempdir can be removed.
pub(crate) fn make_writable(path: &Path) {
    let _ = Command::new("chmod")
        .arg("-R")
        .arg("u+w")
        .arg(path)
        .status();
}

/// The single path printed by `add`.
pub(crate) fn add(store: &Path, path: &Path) -> PathBuf {
    PathBuf::from(run_ok(pystore(store).arg("add").arg(path)).trim())
}

/// A temporary directory that is made writable before removal (entries are read-only).
pub(crate) struct TempStore(pub tempfile::TempDir);

impl TempStore {
    pub(crate) fn new() -> TempStore {
        TempStore(tempfile::tempdir().unwrap())
    }
    pub(crate) fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for TempStore {
    fn drop(&mut self) {
        make_writable(self.0.path());
    }
}

/// Says that a test checked nothing because `tool` is missing from this machine — unless
/// `PYSTORE_REQUIRE_HOST_TOOLS` is set (as `.ci/run` sets it once it has installed them all),
/// where a missing tool is a failure, never a silent pass.
pub(crate) fn skip_without(tool: &str, install: &str) {
    assert!(
        std::env::var_os("PYSTORE_REQUIRE_HOST_TOOLS").is_none(),
        "{tool} is required here (PYSTORE_REQUIRE_HOST_TOOLS is set): {install}"
    );
    eprintln!("SKIPPED: {tool} is missing ({install})");
}
