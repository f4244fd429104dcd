//! Recipes: `recipes/NAME/recipe.toml`, the user's description of a bundle.
//!
//! Parsing is strict: an unknown key or a bad value is an error naming the key and the file.
//! Paths in a recipe are relative to the recipe's directory.

pub mod import;
pub mod interpreters;
pub mod lock;
mod plan;
pub mod realise;
pub mod run;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::hash::{Sha256Digest, Sha256Error};
use crate::lock::TomlError;
use crate::python::target::TargetError;
use crate::python::{Os, Platform, TargetSpec};
use crate::store::id::InvalidName;
use crate::store::EntryName;

/// Why a recipe cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    /// No recipe where the user pointed.
    #[error("no recipe {what:?}: looked for {}; create it, or pass the path of a recipe.toml or its directory", looked.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" and "))]
    NotFound { what: String, looked: Vec<PathBuf> },
    /// The file cannot be read (missing, not a regular file, too large).
    #[error(transparent)]
    Read(#[from] crate::hash::files::InputError),
    /// TOML syntax, an unknown key, or a value of the wrong type.
    #[error("{}: {source}", path.display())]
    Parse {
        path: PathBuf,
        // Boxed: the variant would otherwise make every `Result<_, RecipeError>` large.
        #[source]
        source: Box<TomlError>,
    },
    /// A target whose platform pystore does not know (or whose glibc floor does not fit it).
    #[error("{}: `{key}`: target {target:?}: {source}", path.display())]
    Platform {
        path: PathBuf,
        key: String,
        target: String,
        // Boxed: the variant would otherwise make every `Result<_, RecipeError>` large.
        #[source]
        source: Box<TargetError>,
    },
    /// A value that parses but cannot be used.
    #[error("{}: `{key}`: {problem}", path.display())]
    Invalid {
        path: PathBuf,
        key: String,
        #[source]
        problem: RecipeProblem,
    },
}

/// What is wrong with a value of a recipe that parses.
#[derive(Debug, thiserror::Error)]
pub enum RecipeProblem {
    /// A requirements path that leaves the recipe directory.
    #[error("{path:?}: {reason}; the requirements file must be inside the recipe directory (a relative path without `..`)")]
    RequirementsOutside { path: String, reason: &'static str },
    /// A lock file name that is not one of the lock formats', or not in the recipe directory.
    #[error("{0:?} is not a lock file name: use \"pystore.lock\", \"pylock.toml\" or \"pylock.NAME.toml\", a file in the recipe directory")]
    LockName(String),
    /// A name that cannot be part of an entry name. Held whole, but said shorter than
    /// [`InvalidName`]'s own text, which speaks of `--name`.
    #[error("{:?} {}", .0.name, .0.reason)]
    EntryName(InvalidName),
    /// Not a CPython version.
    #[error("{0:?} is not a CPython version like \"3.12.7\" or \"3.13\"")]
    Python(String),
    /// Not a module name.
    #[error("{0:?} is not a module name like \"lxml.etree\"")]
    Module(String),
    /// No `[[targets]]`.
    #[error("at least one [[targets]] table is needed")]
    NoTargets,
    /// Two targets of one name.
    #[error("{0:?} names two targets")]
    DuplicateTarget(String),
    /// A glibc floor on a platform without glibc.
    #[error("only Linux (gnu) targets have a glibc floor, not {triple}")]
    GlibcNotLinux { triple: String },
    /// A glibc floor that is not `X.Y`.
    #[error("{0:?} is not a version like \"2.28\"")]
    GlibcVersion(String),
    /// An interpreter archive's sha256 that is not one.
    #[error(transparent)]
    Sha256(#[from] Sha256Error),
    /// An interpreter table with neither or both of an archive and a path.
    #[error("give either {{ url = \"...\", sha256 = \"...\" }} or {{ path = \"...\" }}")]
    Interpreter,
}

/// A parsed recipe, with its paths made absolute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipe {
    /// The recipe file.
    pub path: PathBuf,
    /// Bundle name.
    pub name: String,
    /// Bundle version.
    pub version: String,
    /// CPython version: exact (`3.12.7`) or a minor version (`3.13`: the newest patch release
    /// every target can get, chosen and pinned by `pystore lock`).
    pub python: String,
    /// The loose requirements file.
    pub requirements: PathBuf,
    /// The lock file.
    pub lock: PathBuf,
    /// Modules whose import is validated.
    pub validate: Vec<String>,
    /// Whether the packages ship byte-compiled (`bytecode`, default true): hash-based pycs,
    /// so an app installed read-only does not compile its packages at every start.
    pub bytecode: bool,
    /// Targets, in the recipe's order.
    pub targets: Vec<RecipeTarget>,
}

/// One `[[targets]]` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecipeTarget {
    /// The target: its name (e.g. `windows-x86_64`), its platform (parsed from a triple such
    /// as `x86_64-pc-windows-msvc`) and its glibc floor (Linux targets, e.g. `2.28`).
    pub spec: TargetSpec,
    /// An explicit interpreter instead of the built-in table's.
    pub interpreter: Option<InterpreterSource>,
}

/// Where a target's interpreter comes from, when the recipe says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InterpreterSource {
    /// An archive (python-build-standalone tarball or Windows embeddable zip).
    Archive { url: String, sha256: Sha256Digest },
    /// An installed interpreter tree to capture.
    Path(PathBuf),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecipe {
    name: String,
    version: String,
    python: String,
    #[serde(default = "default_requirements")]
    requirements: String,
    #[serde(default = "default_lock")]
    lock: String,
    #[serde(default)]
    validate: Vec<String>,
    #[serde(default = "default_bytecode")]
    bytecode: bool,
    targets: Vec<RawTarget>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    name: String,
    platform: String,
    glibc: Option<String>,
    interpreter: Option<RawInterpreter>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInterpreter {
    url: Option<String>,
    sha256: Option<String>,
    path: Option<PathBuf>,
}

fn default_requirements() -> String {
    "requirements.txt".into()
}

fn default_bytecode() -> bool {
    true
}

fn default_lock() -> String {
    "pystore.lock".into()
}

impl Recipe {
    /// What `python` asks for (checked when the recipe was parsed).
    pub fn python_request(&self) -> Option<crate::python::PythonRequest> {
        crate::python::PythonRequest::parse(&self.python)
    }

    /// Reads the recipe's requirements file (with its `-r`/`-c` includes), which must stay
    /// inside the recipe's directory.
    pub fn read_requirements(
        &self,
    ) -> Result<
        crate::python::requirements::RequirementsFile,
        crate::python::requirements::RequirementsError,
    > {
        let dir = match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        crate::python::requirements::read_within(&self.requirements, dir)
    }

    /// Whether the lock file is a `pylock.toml` (PEP 751) rather than a `pystore.lock`.
    pub fn lock_is_pylock(&self) -> bool {
        self.lock
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(crate::lock::pylock::is_pylock_name)
    }

    /// The lock inputs hash of this recipe with `requirements` (its parsed requirements file):
    /// what a lock written for it records, and what realise checks a lock against.
    pub fn lock_inputs(
        &self,
        requirements: &crate::python::requirements::RequirementsFile,
    ) -> String {
        let targets: Vec<&TargetSpec> = self.targets.iter().map(|t| &t.spec).collect();
        crate::lock::inputs_hash(requirements, &self.python, &targets)
    }
}

/// Finds the recipe a user means: a name (`./recipes/NAME/recipe.toml`), a directory holding
/// `recipe.toml`, or a recipe file.
pub fn find(what: &str, cwd: &Path) -> Result<PathBuf, RecipeError> {
    let given = cwd.join(what);
    let mut looked = Vec::new();
    if given.is_file() {
        return Ok(given);
    }
    let in_dir = given.join("recipe.toml");
    if given.is_dir() {
        if in_dir.is_file() {
            return Ok(in_dir);
        }
        looked.push(in_dir);
    }
    if !what.contains('/') && !what.contains(std::path::MAIN_SEPARATOR) {
        let named = cwd.join("recipes").join(what).join("recipe.toml");
        if named.is_file() {
            return Ok(named);
        }
        looked.push(named);
    }
    if looked.is_empty() {
        looked.push(given);
    }
    Err(RecipeError::NotFound {
        what: what.to_owned(),
        looked,
    })
}

/// Reads and checks the recipe at `path`.
pub fn load(path: &Path) -> Result<Recipe, RecipeError> {
    let text = crate::hash::files::read_text_input(path, "recipe")?;
    parse(path, &text)
}

/// Parses recipe text; `path` names the file in errors and anchors relative paths.
pub fn parse(path: &Path, text: &str) -> Result<Recipe, RecipeError> {
    let raw: RawRecipe = toml::from_str(text).map_err(|e| RecipeError::Parse {
        path: path.to_path_buf(),
        source: Box::new(TomlError(e)),
    })?;
    let invalid = |key: &str, problem: RecipeProblem| RecipeError::Invalid {
        path: path.to_path_buf(),
        key: key.to_owned(),
        problem,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    // Both stay inside the recipe directory: a recipe must not make pystore read (and echo)
    // or overwrite files elsewhere. Symlinks are checked when the files are opened.
    if let Some(reason) = crate::python::requirements::check_relative(&raw.requirements) {
        return Err(invalid(
            "requirements",
            RecipeProblem::RequirementsOutside {
                path: raw.requirements.clone(),
                reason,
            },
        ));
    }
    let lock_name_ok = raw.lock == "pystore.lock"
        || (crate::lock::pylock::is_pylock_name(&raw.lock) && !raw.lock.contains(['/', '\\', ':']));
    if !lock_name_ok {
        return Err(invalid("lock", RecipeProblem::LockName(raw.lock.clone())));
    }
    for (key, value) in [("name", &raw.name), ("version", &raw.version)] {
        EntryName::new(value).map_err(|e| invalid(key, RecipeProblem::EntryName(e)))?;
    }
    if !is_python_version(&raw.python) {
        return Err(invalid("python", RecipeProblem::Python(raw.python.clone())));
    }
    for (i, module) in raw.validate.iter().enumerate() {
        if !is_module_name(module) {
            return Err(invalid(
                &format!("validate[{i}]"),
                RecipeProblem::Module(module.clone()),
            ));
        }
    }
    if raw.targets.is_empty() {
        return Err(invalid("targets", RecipeProblem::NoTargets));
    }
    let mut names = BTreeSet::new();
    let mut targets = Vec::new();
    for (i, target) in raw.targets.into_iter().enumerate() {
        let key = |field: &str| format!("targets[{i}].{field}");
        EntryName::new(&target.name)
            .map_err(|e| invalid(&key("name"), RecipeProblem::EntryName(e)))?;
        if !names.insert(target.name.clone()) {
            return Err(invalid(
                &key("name"),
                RecipeProblem::DuplicateTarget(target.name.clone()),
            ));
        }
        // The platform first: the glibc checks below speak of the triple.
        let platform =
            Platform::from_triple(&target.platform).map_err(|source| RecipeError::Platform {
                path: path.to_path_buf(),
                key: key("platform"),
                target: target.name.clone(),
                source: Box::new(source),
            })?;
        if let Some(glibc) = &target.glibc {
            if !matches!(platform.os, Os::LinuxGnu { .. }) {
                return Err(invalid(
                    &key("glibc"),
                    RecipeProblem::GlibcNotLinux {
                        triple: target.platform.clone(),
                    },
                ));
            }
            if !glibc
                .split_once('.')
                .is_some_and(|(a, b)| a.parse::<u16>().is_ok() && b.parse::<u16>().is_ok())
            {
                return Err(invalid(
                    &key("glibc"),
                    RecipeProblem::GlibcVersion(glibc.clone()),
                ));
            }
        }
        let spec = TargetSpec::new(&target.name, &target.platform, target.glibc.as_deref())
            .map_err(|source| RecipeError::Platform {
                path: path.to_path_buf(),
                key: key("glibc"),
                target: target.name.clone(),
                source: Box::new(source),
            })?;
        let interpreter = match target.interpreter {
            None => None,
            Some(RawInterpreter {
                url: Some(url),
                sha256: Some(sha256),
                path: None,
            }) => {
                let sha256 = sha256
                    .parse()
                    .map_err(|e: Sha256Error| invalid(&key("interpreter.sha256"), e.into()))?;
                Some(InterpreterSource::Archive { url, sha256 })
            }
            Some(RawInterpreter {
                url: None,
                sha256: None,
                path: Some(p),
            }) => Some(InterpreterSource::Path(dir.join(p))),
            Some(_) => return Err(invalid(&key("interpreter"), RecipeProblem::Interpreter)),
        };
        targets.push(RecipeTarget { spec, interpreter });
    }
    Ok(Recipe {
        path: path.to_path_buf(),
        name: raw.name,
        version: raw.version,
        python: raw.python,
        requirements: dir.join(raw.requirements),
        lock: dir.join(raw.lock),
        validate: raw.validate,
        bytecode: raw.bytecode,
        targets,
    })
}

fn is_python_version(text: &str) -> bool {
    let parts: Vec<&str> = text.split('.').collect();
    (2..=3).contains(&parts.len())
        && parts[0] == "3"
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn is_module_name(text: &str) -> bool {
    text.split('.').all(|part| {
        let mut chars = part.chars();
        chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
            && chars.all(|c| c.is_alphanumeric() || c == '_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMAI: &str = r#"
name = "samai"
version = "1.0.0"
python = "3.12.7"
validate = ["psycopg2", "lxml", "anthropic", "openai"]

[[targets]]
name = "windows-x86_64"
platform = "x86_64-pc-windows-msvc"

[[targets]]
name = "linux-x86_64"
platform = "x86_64-unknown-linux-gnu"
glibc = "2.28"
interpreter = { path = "../py" }
"#;

    #[test]
    fn parses_with_defaults_and_relative_paths() {
        let recipe = parse(Path::new("/r/samai/recipe.toml"), SAMAI).unwrap();
        assert_eq!(recipe.requirements, Path::new("/r/samai/requirements.txt"));
        assert_eq!(recipe.lock, Path::new("/r/samai/pystore.lock"));
        assert_eq!(recipe.targets.len(), 2);
        assert_eq!(
            recipe.targets[1].interpreter,
            Some(InterpreterSource::Path("/r/samai/../py".into()))
        );
        assert_eq!(recipe.targets[1].spec.glibc.as_deref(), Some("2.28"));
    }

    fn error(text: &str) -> String {
        parse(Path::new("/r/x/recipe.toml"), text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key_and_the_file() {
        let err = error(&SAMAI.replace("version =", "colour = \"red\"\nversion ="));
        assert!(
            err.starts_with("/r/x/recipe.toml: ") && err.contains("unknown field `colour`"),
            "{err}"
        );
        let err = error(&SAMAI.replace("glibc = \"2.28\"", "glibc = \"2.28\"\nabi = 3"));
        assert!(err.contains("unknown field `abi`"), "{err}");
        let minor = parse(
            Path::new("/r/x/recipe.toml"),
            &SAMAI.replace("3.12.7", "3.12"),
        )
        .unwrap();
        assert_eq!(
            minor.python_request(),
            Some(crate::python::PythonRequest::Minor(3, 12))
        );
        let err = error(&SAMAI.replace("3.12.7", "3.12.7.1"));
        assert_eq!(
            err,
            "/r/x/recipe.toml: `python`: \"3.12.7.1\" is not a CPython version like \"3.12.7\" or \"3.13\""
        );
        let err = error(&SAMAI.replace("\"lxml\"", "\"lxml-etree\""));
        assert!(err.contains("`validate[1]`"), "{err}");
        let err = error(&SAMAI.replace("linux-x86_64\"\nplatform", "windows-x86_64\"\nplatform"));
        assert!(
            err.contains("`targets[1].name`: \"windows-x86_64\" names two targets"),
            "{err}"
        );
        let err = error(&SAMAI.replace(
            "{ path = \"../py\" }",
            "{ url = \"http://127.0.0.1:1/y.tgz\" }",
        ));
        assert!(err.contains("`targets[1].interpreter`"), "{err}");
        let err = error(&SAMAI.replace(
            "x86_64-pc-windows-msvc\"",
            "x86_64-pc-windows-msvc\"\nglibc = \"2.17\"",
        ));
        assert!(err.contains("`targets[0].glibc`: only Linux"), "{err}");
    }

    /// The committed samai recipe and lock: the lock reads back to its own bytes and its
    /// inputs hash is the recipe's (both were written before targets became `TargetSpec`s).
    #[test]
    fn the_committed_samai_lock_reads_back_byte_for_byte() {
        for dir in ["recipes/samai", "tests/acceptance/samai311"] {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
            let recipe = load(&dir.join("recipe.toml")).unwrap();
            let text = std::fs::read_to_string(&recipe.lock).unwrap();
            let lock = crate::lock::Lock::parse(&recipe.lock, &text).unwrap();
            assert_eq!(lock.to_toml(), text, "{}", dir.display());
            let requirements = recipe.read_requirements().unwrap();
            assert_eq!(
                recipe.lock_inputs(&requirements),
                lock.inputs,
                "{}",
                dir.display()
            );
        }
    }

    #[test]
    fn a_bad_platform_is_refused_at_parse_naming_the_target_and_what_is_accepted() {
        let err = error(&SAMAI.replace("x86_64-unknown-linux-gnu", "riscv64-unknown-linux-gnu"));
        assert_eq!(
            err,
            "/r/x/recipe.toml: `targets[1].platform`: target \"linux-x86_64\": unsupported platform \"riscv64-unknown-linux-gnu\"; supported: x86_64-pc-windows-msvc, i686-pc-windows-msvc, x86_64-unknown-linux-gnu, aarch64-unknown-linux-gnu, x86_64-unknown-linux-musl, aarch64-unknown-linux-musl, aarch64-apple-darwin, x86_64-apple-darwin"
        );
        let err = error(&SAMAI.replace("glibc = \"2.28\"", "glibc = \"+2.28\""));
        assert_eq!(
            err,
            "/r/x/recipe.toml: `targets[1].glibc`: target \"linux-x86_64\": invalid glibc version \"+2.28\": expected numbers like 2.28"
        );
        let recipe = parse(Path::new("/r/x/recipe.toml"), SAMAI).unwrap();
        assert_eq!(
            recipe.targets[1].spec.platform.os,
            Os::LinuxGnu { glibc: (2, 28) }
        );
    }

    /// The CLI prints each cause once: the typed causes are in the message already.
    #[test]
    fn a_recipe_error_says_its_cause_once() {
        for text in [
            SAMAI.replace("version =", "colour = \"red\"\nversion ="),
            SAMAI.replace("glibc = \"2.28\"", "glibc = \"2.28.1\""),
            SAMAI.replace("{ path = \"../py\" }", "{ url = \"u\", sha256 = \"ab\" }"),
        ] {
            let err = parse(Path::new("/r/x/recipe.toml"), &text).unwrap_err();
            let chain = crate::errors::chain(&err);
            assert_eq!(chain, [err.to_string()], "{text}");
        }
    }

    #[test]
    fn finds_recipes_by_name_directory_or_file() {
        let dir = tempfile::tempdir().unwrap();
        let recipe_dir = dir.path().join("recipes/samai");
        std::fs::create_dir_all(&recipe_dir).unwrap();
        std::fs::write(recipe_dir.join("recipe.toml"), SAMAI).unwrap();
        let expected = recipe_dir.join("recipe.toml");
        assert_eq!(find("samai", dir.path()).unwrap(), expected);
        assert_eq!(find("recipes/samai", dir.path()).unwrap(), expected);
        assert_eq!(
            find("recipes/samai/recipe.toml", dir.path()).unwrap(),
            expected
        );
        let err = find("nope", dir.path()).unwrap_err().to_string();
        assert!(err.contains("recipes/nope/recipe.toml"), "{err}");
    }
}
