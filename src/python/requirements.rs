//! pip's requirements file format: PEP 508 requirements, comments, line continuations, `-r`
//! includes, `-c` constraints, `--hash` options (hashed requirement files as pip-compile and uv
//! write them) and `--pre`. Any other option is an error naming the file and line, since
//! silently ignoring it would build something other than what the file asks for.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use pep508_rs::{Requirement, VersionOrUrl};

/// Where a line came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The file.
    pub file: PathBuf,
    /// 1-based line number (of the first physical line of a continued line).
    pub line: usize,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// One requirement (or constraint) line.
#[derive(Clone, Debug)]
pub struct RequirementLine {
    /// The parsed requirement.
    pub requirement: Requirement,
    /// `--hash=ALGO:HEX` values, as `(algo, hex)`.
    pub hashes: Vec<(String, String)>,
    /// Where it was written.
    pub origin: Origin,
}

/// A requirements file with everything it includes.
#[derive(Clone, Debug, Default)]
pub struct RequirementsFile {
    /// Requirements, in file order (includes expanded in place).
    pub requirements: Vec<RequirementLine>,
    /// Constraints from `-c` files: they limit versions but add nothing.
    pub constraints: Vec<RequirementLine>,
    /// `--pre`: pre-releases allowed everywhere.
    pub pre: bool,
    /// Every file read, in order (for hashing into a lock).
    pub files: Vec<PathBuf>,
}

/// Why a requirements file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RequirementsError {
    /// A line is not a valid requirement.
    #[error("{origin}: {source}")]
    Invalid {
        origin: Origin,
        source: Box<pep508_rs::Pep508Error>,
    },
    /// A `--hash` value that is not `ALGORITHM:HEX`.
    #[error("{origin}: --hash={value} is not ALGORITHM:HEX")]
    Hash { origin: Origin, value: String },
    /// An option pystore does not support.
    #[error("{origin}: {option} is not supported{hint}")]
    Unsupported {
        origin: Origin,
        option: String,
        hint: &'static str,
    },
    /// `-r` or `-c` files that include each other.
    #[error("{origin}: {} includes itself", path.display())]
    Cycle { origin: Origin, path: PathBuf },
    /// A file that is not a regular file, or too large.
    #[error(transparent)]
    Input(#[from] crate::hash::files::InputError),
    /// A file outside the directory the requirements must stay in.
    #[error("{from}: refusing {what} {value:?}: {reason}; requirement files must stay inside {} (relative paths, no `..`, no symlinks leading out)", root.display())]
    Outside {
        /// The recipe (or including file) that names it.
        from: String,
        /// `requirements`, `-r` or `-c`.
        what: &'static str,
        /// The path as written.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
        /// The directory they must stay in.
        root: PathBuf,
    },
}

/// Reads a requirements file and everything it includes (`-r`/`-c` anywhere; each file
/// regular and at most [`crate::hash::files::TEXT_CAP`] bytes).
pub fn read(path: &Path) -> Result<RequirementsFile, RequirementsError> {
    let mut out = RequirementsFile::default();
    read_into(path, false, &mut out, &mut Vec::new(), None, None)?;
    Ok(out)
}

/// Reads a recipe's requirements file, which with everything it includes (`-r`/`-c`) must
/// stay inside `root` (the recipe's directory): a path written there is relative, without
/// `..`, and no symlink on it leads out. The path `path` itself must already be checked
/// lexically ([`check_relative`]); here it is checked for symlinks.
pub fn read_within(path: &Path, root: &Path) -> Result<RequirementsFile, RequirementsError> {
    let mut out = RequirementsFile::default();
    check_resolved(path, root, || RequirementsError::Outside {
        from: root.display().to_string(),
        what: "requirements",
        value: path.display().to_string(),
        reason: "a symlink on it leads out",
        root: root.to_path_buf(),
    })?;
    read_into(path, false, &mut out, &mut Vec::new(), None, Some(root))?;
    Ok(out)
}

/// Why `value`, a path written in a recipe or requirements file, may not be used inside the
/// recipe directory: `Some(reason)` for an absolute path or a `..` component.
pub fn check_relative(value: &str) -> Option<&'static str> {
    let path = Path::new(value);
    if value.is_empty() {
        return Some("it is empty");
    }
    // `C:\x` and `\\server\x` are absolute on Windows, wherever pystore runs.
    if path.has_root()
        || path.is_absolute()
        || value.starts_with(['/', '\\'])
        || value.as_bytes().get(1) == Some(&b':')
    {
        return Some("it is an absolute path");
    }
    if value.split(['/', '\\']).any(|part| part == "..") {
        return Some("it has a `..` component");
    }
    None
}

/// Checks that `path`, once symlinks are resolved, is inside `root` (also resolved). A path
/// that does not exist passes: reading it then fails with a clear "not found".
fn check_resolved(
    path: &Path,
    root: &Path,
    error: impl FnOnce() -> RequirementsError,
) -> Result<(), RequirementsError> {
    let (Ok(resolved), Ok(root)) = (std::fs::canonicalize(path), std::fs::canonicalize(root))
    else {
        return Ok(());
    };
    if resolved.starts_with(&root) {
        Ok(())
    } else {
        Err(error())
    }
}

fn read_into(
    path: &Path,
    as_constraints: bool,
    out: &mut RequirementsFile,
    stack: &mut Vec<PathBuf>,
    included_from: Option<&Origin>,
    root: Option<&Path>,
) -> Result<(), RequirementsError> {
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    if stack.contains(&canonical) {
        let origin = included_from.cloned().unwrap_or(Origin {
            file: path.to_path_buf(),
            line: 0,
        });
        return Err(RequirementsError::Cycle {
            origin,
            path: path.to_path_buf(),
        });
    }
    let text = crate::hash::files::read_text_input(path, "requirements file")?;
    stack.push(canonical);
    out.files.push(path.to_path_buf());
    for (line_no, line) in logical_lines(&text) {
        let origin = Origin {
            file: path.to_path_buf(),
            line: line_no,
        };
        parse_line(&line, origin, path, as_constraints, out, stack, root)?;
    }
    stack.pop();
    Ok(())
}

/// Joins continued lines and strips comments; yields (first line number, text).
pub(crate) fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    let mut current = String::new();
    let mut start = 0;
    for (i, raw) in text.lines().enumerate() {
        if current.is_empty() {
            start = i + 1;
        }
        // A comment starts at '#' at the beginning of a line or after white space.
        let without_comment = match raw.find(" #").or_else(|| raw.find("\t#")) {
            Some(pos) => &raw[..pos],
            None if raw.trim_start().starts_with('#') => "",
            None => raw,
        };
        if let Some(continued) = without_comment.strip_suffix('\\') {
            current.push_str(continued);
            current.push(' ');
            continue;
        }
        current.push_str(without_comment);
        let line = std::mem::take(&mut current);
        if !line.trim().is_empty() {
            lines.push((start, line.trim().to_owned()));
        }
    }
    if !current.trim().is_empty() {
        lines.push((start, current.trim().to_owned()));
    }
    lines
}

fn option_value<'a>(line: &'a str, names: &[&str]) -> Option<&'a str> {
    for name in names {
        if let Some(rest) = line.strip_prefix(name) {
            if let Some(value) = rest.strip_prefix('=') {
                return Some(value.trim());
            }
            if rest.starts_with([' ', '\t']) || (rest.is_empty() && name.len() == 2) {
                return Some(rest.trim());
            }
            if name.len() == 2 && !rest.is_empty() {
                return Some(rest.trim()); // -rfile
            }
        }
    }
    None
}

fn parse_line(
    line: &str,
    origin: Origin,
    path: &Path,
    as_constraints: bool,
    out: &mut RequirementsFile,
    stack: &mut Vec<PathBuf>,
    root: Option<&Path>,
) -> Result<(), RequirementsError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    if line.starts_with('-') {
        for (names, what, constraints) in [
            (&["--requirement", "-r"], "-r", as_constraints),
            (&["--constraint", "-c"], "-c", true),
        ] {
            let Some(file) = option_value(line, names) else {
                continue;
            };
            let include = dir.join(file);
            if let Some(root) = root {
                let outside = |reason| RequirementsError::Outside {
                    from: origin.to_string(),
                    what,
                    value: file.to_owned(),
                    reason,
                    root: root.to_path_buf(),
                };
                if let Some(reason) = check_relative(file) {
                    return Err(outside(reason));
                }
                check_resolved(&include, root, || outside("a symlink on it leads out"))?;
            }
            return read_into(&include, constraints, out, stack, Some(&origin), root);
        }
        if line == "--pre" {
            out.pre = true;
            return Ok(());
        }
        let option = line.split([' ', '=']).next().unwrap_or(line).to_owned();
        let hint = match option.as_str() {
            "-i" | "--index-url" | "--extra-index-url" => {
                ": configure the index with --index-url or PYSTORE_INDEX_URL"
            }
            "-f" | "--find-links" => ": use --find-links or PYSTORE_FIND_LINKS",
            "-e" | "--editable" => ": pystore installs wheels, not editable projects",
            "--no-binary" => ": pystore installs wheels only",
            _ => "",
        };
        return Err(RequirementsError::Unsupported {
            origin,
            option,
            hint,
        });
    }
    // Per-requirement options follow the requirement: `name==1.0 --hash=sha256:...`.
    let mut hashes = Vec::new();
    let mut requirement_text = String::new();
    let mut words = line.split_whitespace().peekable();
    while let Some(word) = words.next() {
        if let Some(value) = word
            .strip_prefix("--hash=")
            .or_else(|| (word == "--hash").then(|| words.next()).flatten())
        {
            let (algo, hex) = value
                .split_once(':')
                .ok_or_else(|| RequirementsError::Hash {
                    origin: origin.clone(),
                    value: value.to_owned(),
                })?;
            hashes.push((algo.to_ascii_lowercase(), hex.to_ascii_lowercase()));
        } else if word.starts_with("--") {
            return Err(RequirementsError::Unsupported {
                origin,
                option: word.to_owned(),
                hint: "",
            });
        } else {
            if !requirement_text.is_empty() {
                requirement_text.push(' ');
            }
            requirement_text.push_str(word);
        }
    }
    let requirement =
        Requirement::from_str(&requirement_text).map_err(|e| RequirementsError::Invalid {
            origin: origin.clone(),
            source: Box::new(e),
        })?;
    if let Some(VersionOrUrl::Url(_)) = requirement.version_or_url {
        return Err(RequirementsError::Unsupported {
            origin,
            option: "a direct URL requirement".into(),
            hint:
                ": name the package and a version, and serve the file from an index or a wheelhouse",
        });
    }
    let entry = RequirementLine {
        requirement,
        hashes,
        origin,
    };
    if as_constraints {
        out.constraints.push(entry);
    } else {
        out.requirements.push(entry);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_inside_the_recipe_directory_are_relative_without_dot_dot() {
        for ok in ["requirements.txt", "reqs/base.txt", "./a.txt", "a..b.txt"] {
            assert_eq!(check_relative(ok), None, "{ok}");
        }
        for (bad, why) in [
            ("/dev/zero", "absolute"),
            ("C:\\x.txt", "absolute"),
            ("\\\\server\\x.txt", "absolute"),
            ("../x.txt", "`..`"),
            ("a/../../x.txt", "`..`"),
            ("a\\..\\x.txt", "`..`"),
            ("", "empty"),
        ] {
            let reason = check_relative(bad).unwrap_or_default();
            assert!(reason.contains(why), "{bad:?}: {reason:?}");
        }
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn reads_requirements_includes_constraints_hashes_and_continuations() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "base.txt",
            "# shared\nlxml>=5 # inline comment\n",
        );
        write(dir.path(), "pins.txt", "lxml==6.1.3\n");
        let main = write(
            dir.path(),
            "requirements.txt",
            "-r base.txt\n--constraint=pins.txt\n--pre\n\npsycopg2; sys_platform == \"win32\"\n\
             psycopg2-binary ; sys_platform == 'linux'\nopenai[datalib] >= 1.0, \\\n    < 3\n\
             anthropic==0.40.0 \\\n    --hash=sha256:AB12 \\\n    --hash=sha256:cd34\n",
        );
        let file = read(&main).unwrap();
        let names: Vec<String> = file
            .requirements
            .iter()
            .map(|r| r.requirement.name.to_string())
            .collect();
        assert_eq!(
            names,
            ["lxml", "psycopg2", "psycopg2-binary", "openai", "anthropic"]
        );
        assert_eq!(file.requirements[0].origin.line, 2);
        assert!(file.requirements[0].origin.file.ends_with("base.txt"));
        assert_eq!(file.requirements[3].requirement.extras.len(), 1);
        assert_eq!(file.requirements[3].origin.line, 7);
        assert_eq!(
            file.requirements[4].hashes,
            [
                ("sha256".into(), "ab12".into()),
                ("sha256".into(), "cd34".into())
            ]
        );
        assert_eq!(file.constraints.len(), 1);
        assert!(file.pre);
        assert_eq!(file.files.len(), 3);
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (
                "ok\n-e ./src\n",
                ":2: -e is not supported: pystore installs wheels, not editable projects",
            ),
            (
                "--index-url http://127.0.0.1:1/simple\n",
                ":1: --index-url is not supported: configure the index",
            ),
            ("lxml >>= 5\n", ":1: "),
            (
                "pkg @ https://example.org/pkg.whl\n",
                ":1: a direct URL requirement is not supported",
            ),
            ("-r missing.txt\n", "cannot read "),
            ("-r requirements.txt\n", ":1: "),
        ];
        for (text, expected) in cases {
            let path = write(dir.path(), "requirements.txt", text);
            let err = read(&path).unwrap_err().to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
    }
}
