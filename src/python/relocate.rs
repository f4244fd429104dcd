//! Removing build-machine absolute paths from an interpreter tree's build configuration.
//!
//! CPython records its build prefix and the build machine's tool paths in a few text files.
//! python-build-standalone builds with prefix `/install`, dependencies under `/tools/deps` and
//! its compiler under `/tools/llvm` (some versions also mention `/build`); an installed
//! interpreter captured from a path records that path. What is rewritten, and how:
//!
//! - `lib/pythonX.Y/_sysconfigdata_*.py`: every occurrence of the build prefix becomes the
//!   placeholder `@PYSTORE_PREFIX@`, and a few lines appended to the module replace the
//!   placeholder with `sys.base_prefix` when it is imported, so `sysconfig.get_config_var()`
//!   answers with wherever the bundle really is.
//! - `lib/pythonX.Y/config-X.Y*/Makefile`: the `prefix=` assignment becomes
//!   `prefix := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))../../..)` (the Makefile's own
//!   location), and other occurrences of the build prefix become `$(prefix)`.
//! - `lib/pkgconfig/*.pc`: `prefix=` becomes `prefix=${pcfiledir}/../..`, other occurrences
//!   `${prefix}`.
//! - `bin/python*-config` shell scripts: they already compute their real prefix from `$0` and
//!   substitute it for the build prefix; the build prefix literal becomes `@PYSTORE_PREFIX@`
//!   everywhere, which they then substitute the same way.
//!
//! In all of these, a whitespace-separated word that names a path under a build-only root
//! (`/tools/`, `/build/`) is dropped if it is a flag (`-I/tools/deps/include`,
//! `-Wl,-rpath,/tools/deps/lib`) and reduced to its file name otherwise
//! (`/tools/llvm/bin/clang` → `clang`). Afterwards each rewritten file is checked to contain
//! neither the build prefix nor a build-only root; otherwise the interpreter is refused.

use std::fs;
use std::path::{Path, PathBuf};

/// Why a tree could not be relocated.
#[derive(Debug, thiserror::Error)]
pub enum RelocateError {
    /// A file-system operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A build-machine path survived the rewrite.
    #[error("{path} still contains the build-machine path {found:?} after relocation; pystore cannot make this interpreter relocatable")]
    Remains { path: PathBuf, found: String },
}

/// The placeholder written in place of the build prefix.
pub const PREFIX_PLACEHOLDER: &str = "@PYSTORE_PREFIX@";

/// Roots that exist only on python-build-standalone's build machines.
const BUILD_ONLY_ROOTS: &[&str] = &["/tools/", "/build/"];

/// Relocates the Unix interpreter tree at `root` (with stdlib at `stdlib`, relative). Returns
/// the rewritten files (relative paths, sorted). Windows trees need nothing: their sysconfig
/// derives every path from the interpreter's location.
pub fn relocate_unix_tree(root: &Path, stdlib: &str) -> Result<Vec<String>, RelocateError> {
    let stdlib_dir = root.join(stdlib);
    let mut rewritten: Vec<PathBuf> = Vec::new();
    let sysconfigdata = list(&stdlib_dir, |name| {
        name.starts_with("_sysconfigdata_") && name.ends_with(".py")
    })?;
    let Some(prefix) = sysconfigdata
        .iter()
        .find_map(|p| fs::read_to_string(p).ok().and_then(|t| build_prefix(&t)))
    else {
        // No build configuration: nothing records a build prefix.
        return Ok(Vec::new());
    };
    for path in &sysconfigdata {
        rewrite(path, &prefix, |text| {
            let mut text = replace_prefix(&strip_build_roots(text), &prefix, PREFIX_PLACEHOLDER);
            text.push_str(SYSCONFIGDATA_EPILOGUE);
            text
        })?;
        rewritten.push(path.clone());
    }
    for config in list(&stdlib_dir, |name| name.starts_with("config-"))? {
        let makefile = config.join("Makefile");
        if makefile.is_file() {
            rewrite(&makefile, &prefix, |text| rewrite_makefile(text, &prefix))?;
            rewritten.push(makefile);
        }
    }
    for pc in list(&root.join("lib/pkgconfig"), |name| name.ends_with(".pc"))? {
        if fs::symlink_metadata(&pc)
            .map(|m| m.is_file())
            .unwrap_or(false)
        {
            rewrite(&pc, &prefix, |text| rewrite_pc(text, &prefix))?;
            rewritten.push(pc);
        }
    }
    for script in list(&root.join("bin"), |name| {
        name.starts_with("python") && name.ends_with("-config")
    })? {
        let is_sh = fs::read(&script)
            .map(|b| b.starts_with(b"#!/bin/sh") || b.starts_with(b"#! /bin/sh"))
            .unwrap_or(false);
        if is_sh
            && fs::symlink_metadata(&script)
                .map(|m| m.is_file())
                .unwrap_or(false)
        {
            rewrite(&script, &prefix, |text| {
                replace_prefix(&strip_build_roots(text), &prefix, PREFIX_PLACEHOLDER)
            })?;
            rewritten.push(script);
        }
    }
    let mut relative: Vec<String> = rewritten
        .iter()
        .filter_map(|p| p.strip_prefix(root).ok())
        .map(|p| p.to_string_lossy().replace('\\', "/"))
        .collect();
    relative.sort();
    Ok(relative)
}

const SYSCONFIGDATA_EPILOGUE: &str = "
# Added by pystore: the build prefix was replaced by a placeholder so that no absolute path of the
# build machine remains; resolve it against this interpreter's actual location.
def _pystore_relocate():
    import sys
    for key, value in build_time_vars.items():
        if isinstance(value, str) and '@PYSTORE_PREFIX@' in value:
            build_time_vars[key] = value.replace('@PYSTORE_PREFIX@', sys.base_prefix)
_pystore_relocate()
del _pystore_relocate
";

/// The `'prefix': '...'` of a `_sysconfigdata` module.
pub fn build_prefix(text: &str) -> Option<String> {
    let start = text.find("'prefix': '")? + "'prefix': '".len();
    let end = text[start..].find('\'')? + start;
    let prefix = &text[start..end];
    (prefix.starts_with('/') && prefix.len() > 1).then(|| prefix.trim_end_matches('/').to_owned())
}

fn list(dir: &Path, keep: impl Fn(&str) -> bool) -> Result<Vec<PathBuf>, RelocateError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(_) => return Ok(Vec::new()),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| RelocateError::Io {
            what: "list",
            path: dir.to_path_buf(),
            source,
        })?;
        // Regular files and directories only: a symlink (Debian links one _sysconfigdata name
        // to another) is rewritten through its target, which is listed too.
        let is_link = entry.file_type().map(|t| t.is_symlink()).unwrap_or(true);
        if !is_link && entry.file_name().to_str().is_some_and(&keep) {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

fn rewrite(path: &Path, prefix: &str, f: impl FnOnce(&str) -> String) -> Result<(), RelocateError> {
    let io = |what| {
        move |source| RelocateError::Io {
            what,
            path: path.to_path_buf(),
            source,
        }
    };
    let bytes = fs::read(path).map_err(io("read"))?;
    // These files are ASCII in practice; a non-UTF-8 byte is kept as is via lossless Latin-1.
    let text: String = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => e.into_bytes().iter().map(|&b| b as char).collect(),
    };
    let new = f(&text);
    for needle in std::iter::once(prefix).chain(BUILD_ONLY_ROOTS.iter().copied()) {
        if find_bounded(&new, needle).is_some() {
            return Err(RelocateError::Remains {
                path: path.to_path_buf(),
                found: needle.to_owned(),
            });
        }
    }
    // Replace the file rather than writing through it (it may be a hard link elsewhere).
    let mode = fs::metadata(path).map_err(io("inspect"))?.permissions();
    fs::remove_file(path).map_err(io("replace"))?;
    fs::write(path, new.as_bytes()).map_err(io("write"))?;
    fs::set_permissions(path, mode).map_err(io("set permissions of"))
}

/// Finds `needle` where it is a whole path prefix: not followed by a path character.
fn find_bounded(text: &str, needle: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = text[from..].find(needle) {
        let start = from + at;
        let end = start + needle.len();
        let next = text[end..].chars().next();
        // A path starts at the beginning of a word, a value (`=`, `:`, `,`) or after a
        // compiler/linker flag (`-I/usr/include`); not inside another path (`/opt/usr`).
        let before = &text[..start];
        let before_ok = before.is_empty()
            || before.ends_with(|c: char| c.is_whitespace() || "'\"=:,;({".contains(c))
            || ["-I", "-L", "-R", "-F", "-isystem", "rpath,"]
                .iter()
                .any(|flag| before.ends_with(flag));
        let after_ok = needle.ends_with('/')
            || !next.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '.');
        if before_ok && after_ok {
            return Some(start);
        }
        from = start + 1;
    }
    None
}

fn replace_prefix(text: &str, prefix: &str, with: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = find_bounded(rest, prefix) {
        out.push_str(&rest[..at]);
        out.push_str(with);
        rest = &rest[at + prefix.len()..];
    }
    out.push_str(rest);
    out
}

/// Drops flags naming build-only paths and reduces other such words to their file names.
fn strip_build_roots(text: &str) -> String {
    let is_boundary = |c: char| c.is_whitespace() || matches!(c, '\'' | '"' | '=');
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let hit = BUILD_ONLY_ROOTS
            .iter()
            .filter_map(|root| rest.find(root))
            .min();
        let Some(at) = hit else { break };
        let start = rest[..at].rfind(is_boundary).map_or(0, |i| i + 1);
        let end = rest[at..].find(is_boundary).map_or(rest.len(), |i| at + i);
        let word = &rest[start..end];
        out.push_str(&rest[..start]);
        if word.starts_with('-') {
            // Drop the flag and one following space, if any.
            if out.ends_with(' ') && rest[end..].starts_with(' ') {
                out.pop();
            }
        } else {
            out.push_str(word.rsplit('/').next().unwrap_or(word));
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn rewrite_makefile(text: &str, prefix: &str) -> String {
    let text = strip_build_roots(text);
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with("prefix=")
            || trimmed.starts_with("prefix ")
            || trimmed.starts_with("prefix\t")
        {
            out.push_str("prefix := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))../../..)\n");
        } else {
            out.push_str(&replace_prefix(line, prefix, "$(prefix)"));
        }
    }
    out
}

fn rewrite_pc(text: &str, prefix: &str) -> String {
    let text = strip_build_roots(text);
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        if line.starts_with("prefix=") {
            out.push_str("prefix=${pcfiledir}/../..\n");
        } else {
            out.push_str(&replace_prefix(line, prefix, "${prefix}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_under_build_roots() {
        assert_eq!(
            strip_build_roots("'CC': '/tools/llvm/bin/clang -pthread', 'CFLAGS': '-O2 -I/tools/deps/include -fPIC'"),
            "'CC': 'clang -pthread', 'CFLAGS': '-O2 -fPIC'"
        );
        assert_eq!(
            strip_build_roots("LDFLAGS= -L/tools/deps/lib -Wl,-rpath,/tools/deps/lib\n"),
            "LDFLAGS= \n"
        );
    }

    #[test]
    fn prefixes_are_bounded() {
        assert_eq!(
            replace_prefix("/install/lib /installer /install", "/install", "P"),
            "P/lib /installer P"
        );
        assert_eq!(
            replace_prefix("-I/usr/include /opt/usr 'x=/usr'", "/usr", "P"),
            "-IP/include /opt/usr 'x=P'"
        );
        assert_eq!(
            build_prefix("build_time_vars = {'prefix': '/install',"),
            Some("/install".into())
        );
        let mk = rewrite_makefile(
            "prefix=\t\t/install\nLIBDIR=\t\t/install/lib\nCC= /tools/llvm/bin/clang\n",
            "/install",
        );
        assert_eq!(mk, "prefix := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))../../..)\nLIBDIR=\t\t$(prefix)/lib\nCC= clang\n");
        let pc = rewrite_pc(
            "prefix=/install\nlibdir=/install/lib\nCflags: -I${includedir}\n",
            "/install",
        );
        assert_eq!(
            pc,
            "prefix=${pcfiledir}/../..\nlibdir=${prefix}/lib\nCflags: -I${includedir}\n"
        );
    }
}
