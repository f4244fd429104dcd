//! `pystore lock`: resolve a recipe's loose requirements for each of its targets and write the
//! lock beside the recipe.
//!
//! Metadata comes from the index's PEP 658 files where offered; otherwise from the wheel's
//! METADATA member, read by HTTP range requests (the ZIP directory at the end, then that member:
//! a few kilobytes of a wheel of any size). Only when the server does not serve ranges is the
//! whole wheel downloaded — through the store, as the fixed-output entry realise will want later,
//! so locking then realising downloads it once.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use pep440_rs::Version;
use sha2::Digest;

use super::{Recipe, RecipeTarget};
use crate::fetch::http::HttpClient;
use crate::fetch::index::{CoreMetadata as IndexCoreMetadata, IndexClient, IndexFile, ProjectPage};
use crate::fetch::ranged::RangedFile;
use crate::fetch::{FetchError, Fetcher, FixedOutput};
use crate::hash::to_hex;
use crate::python::builds::NoBuild;
use crate::python::filename::WheelFilename;
use crate::python::lockfile::{
    Lock, LockError, LockedInterpreter, LockedPackage, LockedTarget, LOCK_VERSION,
};
use crate::python::metadata::CoreMetadata;
use crate::python::pylock::{read_pylock, to_pylock, WheelLocation};
use crate::python::requirements::{self, Origin, RequirementsError};
use crate::python::resolve::{
    resolve, PackageSource, ResolveError, ResolveInput, ResolvedPackage, SourceError,
};
use crate::python::{normalize_name, Catalogue, PythonRequest, PythonVersion, Target};
use crate::store::EntryName;

/// How much of a wheel's end the first range request asks for: the ZIP directory of all but
/// the largest wheels, and often METADATA too (it is written near the end).
const RANGE_TAIL: u64 = 64 << 10;

/// Why a recipe could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockRecipeError {
    /// The requirements file.
    #[error(transparent)]
    Requirements(#[from] RequirementsError),
    /// Writing the lock.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// `--target` names no target.
    #[error("{recipe} has no target {name:?} (it has: {})", available.join(", "))]
    UnknownTarget {
        recipe: String,
        name: String,
        available: Vec<String>,
    },
    /// `--target` would keep pins of other targets that were resolved from other inputs.
    #[error("{recipe}'s requirements, Python version or targets changed since the lock was written, so the pins of {} are stale too; run `pystore lock {recipe}` without --target (or name every target)", targets.join(", "))]
    StaleTargets {
        recipe: String,
        targets: Vec<String>,
    },
    /// No interpreter build satisfies the recipe's `python` on every target.
    #[error("{recipe}: python = {request:?}: {error}")]
    NoInterpreter {
        recipe: String,
        request: String,
        error: Box<NoBuild>,
    },
    /// A `python` the recipe's other settings rule out.
    #[error("{recipe}: python = {request:?}: {message}")]
    Python {
        recipe: String,
        request: String,
        message: String,
    },
    /// A target the python layer refuses.
    #[error("target {target}: {message}")]
    Target { target: String, message: String },
    /// Resolution failed for a target.
    #[error("target {target}: {error}")]
    Resolve { target: String, error: ResolveError },
    /// The index cannot be used.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// A wheelhouse (`--find-links`) cannot be listed.
    #[error("cannot read the wheelhouse {}: {error}; check --find-links and PYSTORE_FIND_LINKS", path.display())]
    Wheelhouse {
        path: PathBuf,
        error: std::io::Error,
    },
    /// A `pylock.toml` that cannot be read or used.
    #[error(transparent)]
    Pylock(#[from] super::pylock::PylockLockError),
    /// A hashed requirements file that cannot be imported (`--from-requirements`); boxed, as
    /// it carries the most context.
    #[error(transparent)]
    Import(Box<super::import::ImportError>),
    /// A lock that cannot be written as `pylock.toml` (a bug in the lock's targets).
    #[error("cannot write {} as pylock.toml: {message}", path.display())]
    PylockWrite { path: PathBuf, message: String },
    /// An exported requirements file cannot be written.
    #[error("cannot write {}: {error}", path.display())]
    Export {
        path: PathBuf,
        error: std::io::Error,
    },
}

impl From<super::import::ImportError> for LockRecipeError {
    fn from(error: super::import::ImportError) -> Self {
        LockRecipeError::Import(Box::new(error))
    }
}

/// Options of `pystore lock`.
#[derive(Clone, Debug, Default)]
pub struct LockOptions {
    /// Targets to resolve again; all when empty (the others keep their pins).
    pub targets: Vec<String>,
    /// Ignore the existing lock's versions.
    pub upgrade: bool,
    /// Ignore the existing lock's versions of these projects only.
    pub upgrade_packages: Vec<String>,
    /// Say on stderr which target is being resolved.
    pub progress: bool,
    /// Also write each target's pins as `requirements-<target>.txt` (hashed) in this directory.
    pub export_requirements: Option<PathBuf>,
    /// Also write the lock as this `pylock.toml` (PEP 751), with the index URL of every wheel.
    pub export_pylock: Option<PathBuf>,
    /// The interpreter catalogue to choose archives from; `None`: the built-in table.
    pub catalogue: Option<Catalogue>,
    /// Local wheelhouses (`--find-links`): their wheels are candidates beside the index's.
    pub wheelhouses: Vec<PathBuf>,
}

impl LockOptions {
    /// The CPython release and per-target archive pins for `recipe`, from the catalogue these
    /// options name (the built-in table when none).
    pub(super) fn interpreters(
        &self,
        recipe: &Recipe,
        existing: Option<&Lock>,
        upgrade_python: bool,
    ) -> Result<Interpreters, LockRecipeError> {
        let builtin;
        let catalogue = match &self.catalogue {
            Some(catalogue) => catalogue,
            None => {
                builtin = Catalogue::builtin();
                &builtin
            }
        };
        choose_interpreters(recipe, catalogue, existing, upgrade_python)
    }
}

/// What `lock` wrote.
#[derive(Clone, Debug)]
pub struct LockOutcome {
    /// The lock file.
    pub path: PathBuf,
    /// Its content.
    pub lock: Lock,
    /// Whether the file changed.
    pub changed: bool,
    /// Hashed requirements files written (`--export-requirements`).
    pub exported: Vec<PathBuf>,
}

/// Resolves `recipe` for its targets and writes its lock. `index` is `None` with `--no-index`:
/// then the wheelhouses in `options` are the only source, and no request is made.
pub fn lock(
    fetcher: &Fetcher<'_>,
    index: Option<&IndexClient<'_>>,
    recipe: &Recipe,
    options: &LockOptions,
) -> Result<LockOutcome, LockRecipeError> {
    let requirements = recipe.read_requirements()?;
    for name in &options.targets {
        if !recipe.targets.iter().any(|t| &t.name == name) {
            return Err(LockRecipeError::UnknownTarget {
                recipe: recipe.name.clone(),
                name: name.clone(),
                available: recipe.targets.iter().map(|t| t.name.clone()).collect(),
            });
        }
    }
    // An unreadable old lock is only a source of preferences: resolve without it.
    let existing = recipe
        .lock
        .is_file()
        .then(|| read_recipe_lock(recipe))
        .flatten();
    let upgrade: Vec<String> = options
        .upgrade_packages
        .iter()
        .map(|n| normalize_name(n))
        .collect();
    let inputs = recipe.lock_inputs(&requirements);
    check_kept_targets(recipe, existing.as_ref(), &inputs, &options.targets)?;
    let upgrade_python = options.upgrade || upgrade.iter().any(|n| n == "python");
    let interpreters = options.interpreters(recipe, existing.as_ref(), upgrade_python)?;
    let python = interpreters.version.to_string();
    let recipe_dir = recipe.path.parent().unwrap_or(Path::new("."));
    let source = IndexSource::new(fetcher, index, &options.wheelhouses)?;
    let mut targets = Vec::new();
    for recipe_target in &recipe.targets {
        let wanted = options.targets.is_empty() || options.targets.contains(&recipe_target.name);
        let old = existing
            .as_ref()
            .and_then(|l| l.target(&recipe_target.name));
        if !wanted {
            if let Some(old) = old {
                // Every target runs the same CPython: a kept target locked for another one
                // (`--upgrade-package python` with --target) would be stale.
                if old
                    .interpreter
                    .as_ref()
                    .is_some_and(|pin| pin.version != python)
                {
                    return Err(LockRecipeError::StaleTargets {
                        recipe: recipe.name.clone(),
                        targets: vec![old.name.clone()],
                    });
                }
                targets.push(old.clone());
            }
            continue;
        }
        if options.progress {
            eprintln!("resolving {} for {}", recipe.name, recipe_target.name);
        }
        let preferences = match old {
            Some(old) if !options.upgrade => old
                .packages
                .iter()
                .filter(|p| !upgrade.contains(&p.name))
                .filter_map(|p| Some((p.name.clone(), Version::from_str(&p.version).ok()?)))
                .collect(),
            _ => BTreeMap::new(),
        };
        let mut locked = lock_target(
            &source,
            &python,
            recipe_target,
            &requirements,
            preferences,
            recipe_dir,
        )?;
        locked.interpreter = interpreters
            .pins
            .get(&recipe_target.name)
            .cloned()
            .flatten();
        targets.push(locked);
    }
    let lock = Lock {
        version: LOCK_VERSION,
        python: recipe.python.clone(),
        inputs,
        targets,
    };
    finish(recipe, lock, &source.locations(), options)
}

/// Pins of targets not locked now are kept only if they were locked from these very inputs:
/// the new lock's inputs hash vouches for every target in it. `named` empty means all.
pub(super) fn check_kept_targets(
    recipe: &Recipe,
    existing: Option<&Lock>,
    inputs: &str,
    named: &[String],
) -> Result<(), LockRecipeError> {
    let unchanged = existing.is_some_and(|l| l.inputs == inputs && l.python == recipe.python);
    if named.is_empty() || unchanged {
        return Ok(());
    }
    let stale: Vec<String> = recipe
        .targets
        .iter()
        .filter(|t| !named.contains(&t.name))
        .filter(|t| existing.is_some_and(|l| l.target(&t.name).is_some()))
        .map(|t| t.name.clone())
        .collect();
    if stale.is_empty() {
        return Ok(());
    }
    Err(LockRecipeError::StaleTargets {
        recipe: recipe.name.clone(),
        targets: stale,
    })
}

/// Writes `lock` as the recipe's lock, and the exports `options` asks for.
pub(super) fn finish(
    recipe: &Recipe,
    lock: Lock,
    locations: &BTreeMap<String, WheelLocation>,
    options: &LockOptions,
) -> Result<LockOutcome, LockRecipeError> {
    let changed = write_recipe_lock(recipe, &lock, locations)?;
    let mut exported = Vec::new();
    if let Some(dir) = &options.export_requirements {
        for target in &lock.targets {
            let path = dir.join(format!("requirements-{}.txt", target.name));
            let text = lock.hashed_requirements(&target.name).unwrap_or_default();
            std::fs::create_dir_all(dir)
                .and_then(|()| std::fs::write(&path, text))
                .map_err(|error| LockRecipeError::Export {
                    path: path.clone(),
                    error,
                })?;
            exported.push(path);
        }
    }
    if let Some(path) = &options.export_pylock {
        write_pylock(&lock, locations, path)?;
        exported.push(path.clone());
    }
    Ok(LockOutcome {
        path: recipe.lock.clone(),
        lock,
        changed,
        exported,
    })
}

/// Writes `recipe`'s lock from `file` (a `pylock.toml` another tool or pystore wrote) without
/// resolving anything: its pins are checked against the recipe's requirements and targets.
pub fn import_pylock(recipe: &Recipe, file: &Path) -> Result<LockOutcome, LockRecipeError> {
    let requirements = recipe.read_requirements()?;
    let lock = super::pylock::lock_from_pylock(recipe, &requirements, file)?;
    let changed = write_recipe_lock(recipe, &lock, &BTreeMap::new())?;
    Ok(LockOutcome {
        path: recipe.lock.clone(),
        lock,
        changed,
        exported: Vec::new(),
    })
}

/// The recipe's current lock, whatever inputs it was made from (only a source of preferences).
pub(super) fn read_recipe_lock(recipe: &Recipe) -> Option<Lock> {
    if !recipe.lock_is_pylock() {
        return Lock::read(&recipe.lock).ok();
    }
    read_pylock(
        &recipe.lock,
        &recipe.python,
        &super::pylock::pylock_targets(recipe),
    )
    .ok()
    .map(|read| read.lock)
}

/// Writes `lock` to the recipe's lock file in that file's format; whether its bytes changed.
fn write_recipe_lock(
    recipe: &Recipe,
    lock: &Lock,
    locations: &BTreeMap<String, WheelLocation>,
) -> Result<bool, LockRecipeError> {
    if recipe.lock_is_pylock() {
        let text = pylock_text(lock, locations, &recipe.lock)?;
        let changed = current_text(&recipe.lock).as_deref() != Some(text.as_str());
        if changed {
            write_pylock(lock, locations, &recipe.lock)?;
        }
        return Ok(changed);
    }
    let changed = current_text(&recipe.lock).as_deref() != Some(lock.to_toml().as_str());
    if changed {
        lock.write(&recipe.lock)?;
    }
    Ok(changed)
}

/// The lock file's text as it is now, if it is a readable lock (bounded like any input).
fn current_text(path: &Path) -> Option<String> {
    crate::hash::files::read_text_input(path, "lock").ok()
}

fn pylock_text(
    lock: &Lock,
    locations: &BTreeMap<String, WheelLocation>,
    path: &Path,
) -> Result<String, LockRecipeError> {
    // Local wheels are named relative to the pylock's directory where they lie below it.
    let dir = path.parent().unwrap_or(Path::new("."));
    let locations: BTreeMap<String, WheelLocation> = locations
        .iter()
        .map(|(name, location)| {
            let location = match location {
                WheelLocation::Path(p) => WheelLocation::Path(
                    Path::new(p)
                        .strip_prefix(dir)
                        .map(|rel| rel.to_string_lossy().replace('\\', "/"))
                        .unwrap_or_else(|_| p.clone()),
                ),
                url => url.clone(),
            };
            (name.clone(), location)
        })
        .collect();
    to_pylock(lock, &locations).map_err(|message| LockRecipeError::PylockWrite {
        path: path.to_path_buf(),
        message,
    })
}

/// Writes `lock` as a `pylock.toml` at `path`, atomically.
fn write_pylock(
    lock: &Lock,
    locations: &BTreeMap<String, WheelLocation>,
    path: &Path,
) -> Result<(), LockRecipeError> {
    let text = pylock_text(lock, locations, path)?;
    let export = |error| LockRecipeError::Export {
        path: path.to_path_buf(),
        error,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    if !dir.as_os_str().is_empty() {
        std::fs::create_dir_all(dir).map_err(export)?;
    }
    crate::hash::files::write_user_file(path, text.as_bytes()).map_err(export)
}

/// The CPython release a lock is for and the archive pinned per target.
pub(super) struct Interpreters {
    pub(super) version: PythonVersion,
    /// By target name; `None` for a target whose recipe names its own interpreter, or whose
    /// exact version the catalogue does not know.
    pub(super) pins: BTreeMap<String, Option<LockedInterpreter>>,
}

/// Chooses the CPython release for `recipe` and pins its archive for each target: an exact
/// `python` is that release; a minor one (`3.13`) is the release the existing lock pinned
/// (unless `upgrade_python`), else the newest in `catalogue` with a build for every target.
/// A target keeps its old pin while the version stays, even if the catalogue no longer has it.
pub(super) fn choose_interpreters(
    recipe: &Recipe,
    catalogue: &Catalogue,
    existing: Option<&Lock>,
    upgrade_python: bool,
) -> Result<Interpreters, LockRecipeError> {
    let python_error = |message: String| LockRecipeError::Python {
        recipe: recipe.name.clone(),
        request: recipe.python.clone(),
        message,
    };
    let no_build = |error: NoBuild| LockRecipeError::NoInterpreter {
        recipe: recipe.name.clone(),
        request: recipe.python.clone(),
        error: Box::new(error),
    };
    let request = recipe
        .python_request()
        .ok_or_else(|| python_error("not a CPython version like 3.12.7 or 3.13".into()))?;
    if let PythonRequest::Minor(..) = request {
        if let Some(own) = recipe.targets.iter().find(|t| t.interpreter.is_some()) {
            return Err(python_error(format!(
                "target {} names its own interpreter, whose version pystore cannot choose; give `python` as that interpreter's exact version",
                own.name
            )));
        }
        if recipe.lock_is_pylock() {
            return Err(python_error(
                "a pylock.toml cannot pin an interpreter archive; give `python` as an exact version, or lock into pystore.lock".into(),
            ));
        }
    }
    let from_catalogue: Vec<&RecipeTarget> = recipe
        .targets
        .iter()
        .filter(|t| t.interpreter.is_none())
        .collect();
    let triples: Vec<&str> = from_catalogue.iter().map(|t| t.platform.as_str()).collect();
    // The existing lock's pins, for targets whose platform has not changed.
    let old_pins: BTreeMap<&str, &LockedInterpreter> = existing
        .map(|lock| {
            lock.targets
                .iter()
                .filter(|old| {
                    recipe
                        .targets
                        .iter()
                        .any(|t| t.name == old.name && t.platform == old.platform)
                })
                .filter_map(|old| Some((old.name.as_str(), old.interpreter.as_ref()?)))
                .collect()
        })
        .unwrap_or_default();
    let kept = old_pins
        .values()
        .filter_map(|pin| PythonVersion::parse(&pin.version).ok())
        .filter(|v| request.matches(v))
        .max()
        .filter(|_| !upgrade_python);
    let version = match (request, kept) {
        (PythonRequest::Exact(version), _) => version,
        (_, Some(version)) => version,
        (request, None) => catalogue.resolve(&request, &triples).map_err(no_build)?,
    };
    let mut pins = BTreeMap::new();
    for target in &recipe.targets {
        if target.interpreter.is_some() {
            pins.insert(target.name.clone(), None);
            continue;
        }
        let old = old_pins
            .get(target.name.as_str())
            .filter(|pin| !upgrade_python && pin.version == version.to_string());
        let pin = match old {
            Some(pin) => (*pin).clone(),
            None => {
                let build = catalogue.find(&version, &target.platform).ok_or_else(|| {
                    let exact = PythonRequest::Exact(version);
                    match catalogue.resolve(&exact, &triples) {
                        Err(error) => no_build(error),
                        Ok(_) => python_error(format!(
                            "no CPython {version} build for {}",
                            target.platform
                        )),
                    }
                })?;
                LockedInterpreter {
                    version: version.to_string(),
                    url: build.url.clone(),
                    size: build.size,
                    sha256: build.sha256.clone(),
                }
            }
        };
        pins.insert(target.name.clone(), Some(pin));
    }
    Ok(Interpreters { version, pins })
}

/// The resolver's view of `recipe_target` running CPython `python`.
pub(super) fn target_of(
    recipe_target: &RecipeTarget,
    python: &str,
) -> Result<Target, LockRecipeError> {
    Target::new(
        &recipe_target.platform,
        recipe_target.glibc.as_deref(),
        python,
    )
    .map_err(|e| LockRecipeError::Target {
        target: recipe_target.name.clone(),
        message: e.to_string(),
    })
}

fn lock_target(
    source: &IndexSource<'_, '_>,
    python: &str,
    recipe_target: &RecipeTarget,
    requirements: &requirements::RequirementsFile,
    preferences: BTreeMap<String, Version>,
    recipe_dir: &Path,
) -> Result<LockedTarget, LockRecipeError> {
    let tname = &recipe_target.name;
    let target = target_of(recipe_target, python)?;
    let resolve_error = |error| LockRecipeError::Resolve {
        target: tname.clone(),
        error,
    };
    let input = ResolveInput {
        target: &target,
        requirements,
        preferences,
    };
    let resolved = resolve(source, &input).map_err(resolve_error)?;
    let mut packages = Vec::new();
    for package in resolved {
        let (size, sha256) = source.facts(&package.file).map_err(|source| {
            resolve_error(ResolveError::Source {
                package: package.file.filename.clone(),
                error: source,
            })
        })?;
        packages.push(locked_package(package, size, sha256, recipe_dir));
    }
    Ok(LockedTarget {
        name: tname.clone(),
        platform: recipe_target.platform.clone(),
        glibc: recipe_target.glibc.clone(),
        interpreter: None,
        packages,
    })
}

pub(super) fn locked_package(
    package: ResolvedPackage,
    size: u64,
    sha256: String,
    recipe_dir: &Path,
) -> LockedPackage {
    let mut required_by: Vec<String> = package
        .requested_at
        .iter()
        .map(|origin| relative_origin(origin, recipe_dir))
        .collect();
    required_by.extend(package.required_by);
    LockedPackage {
        name: package.name,
        version: package.version.to_string(),
        wheel: package.file.filename,
        size,
        sha256,
        required_by,
    }
}

/// `requirements.txt:3`, relative to the recipe (a lock holds no absolute paths).
fn relative_origin(origin: &Origin, recipe_dir: &Path) -> String {
    let file = origin
        .file
        .strip_prefix(recipe_dir)
        .ok()
        .or_else(|| origin.file.file_name().map(Path::new))
        .unwrap_or(&origin.file);
    let file = file.to_string_lossy().replace('\\', "/");
    format!("{file}:{}", origin.line)
}

/// The index, local wheelhouses and the store as a [`PackageSource`], with what it learnt about
/// files kept for the lock (sizes and hashes of downloaded or local wheels).
pub(super) struct IndexSource<'f, 'i> {
    fetcher: &'f Fetcher<'f>,
    /// `None` with `--no-index`: nothing is asked of any index.
    index: Option<&'i IndexClient<'i>>,
    /// Wheelhouse wheels by normalised project name, as `file://` index files.
    local: Wheelhouses,
    pages: RefCell<BTreeMap<String, ProjectPage>>,
    metadata: RefCell<BTreeMap<String, CoreMetadata>>,
    /// `(size, sha256 hex)` of wheels downloaded or hashed, by file name.
    facts: RefCell<BTreeMap<String, (u64, String)>>,
    /// Wheels the index gives no sha256 for are downloaded here to be read.
    scratch: RefCell<Option<tempfile::TempDir>>,
}

/// The wheels of local wheelhouses (`--find-links`), listed once: by normalised project name,
/// in wheelhouse order then file name order; a file name seen in an earlier wheelhouse hides it
/// in later ones (realise looks them up by name in that order too).
#[derive(Clone, Debug, Default)]
pub(super) struct Wheelhouses {
    /// The directories, as given.
    pub dirs: Vec<PathBuf>,
    /// Their wheels by normalised project name.
    pub files: BTreeMap<String, Vec<IndexFile>>,
}

impl Wheelhouses {
    /// Lists the wheels in `dirs` (files whose names are valid wheel names; others are ignored,
    /// as pip ignores them). An unreadable directory is an error naming it.
    pub fn list(dirs: &[PathBuf]) -> Result<Wheelhouses, LockRecipeError> {
        let mut files: BTreeMap<String, Vec<IndexFile>> = BTreeMap::new();
        let mut seen = std::collections::BTreeSet::new();
        for dir in dirs {
            let error = |error: std::io::Error| LockRecipeError::Wheelhouse {
                path: dir.clone(),
                error,
            };
            let absolute = std::path::absolute(dir).map_err(error)?;
            let mut names = Vec::new();
            for entry in std::fs::read_dir(&absolute).map_err(error)? {
                let entry = entry.map_err(error)?;
                if let Some(name) = entry.file_name().to_str() {
                    names.push(name.to_owned());
                }
            }
            names.sort();
            for name in names {
                let Ok(wheel) = WheelFilename::parse(&name) else {
                    continue;
                };
                let path = absolute.join(&name);
                let meta = std::fs::metadata(&path).map_err(error)?;
                if !meta.is_file() || !seen.insert(name.clone()) {
                    continue;
                }
                let Ok(url) = reqwest::Url::from_file_path(&path) else {
                    continue;
                };
                files
                    .entry(wheel.normalized_name())
                    .or_default()
                    .push(IndexFile {
                        filename: name,
                        url,
                        hashes: BTreeMap::new(),
                        requires_python: None,
                        yanked: None,
                        core_metadata: IndexCoreMetadata::Absent,
                        size: Some(meta.len()),
                    });
            }
        }
        Ok(Wheelhouses {
            dirs: dirs.to_vec(),
            files,
        })
    }

    /// The wheelhouse directories, for messages.
    pub fn describe(&self) -> String {
        self.dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The local path of a wheelhouse file (a `file://` URL), if it is one.
fn local_path(file: &IndexFile) -> Option<PathBuf> {
    (file.url.scheme() == "file")
        .then(|| file.url.to_file_path().ok())
        .flatten()
}

/// A project's files from the index (when there is one) and the wheelhouses: the index's first,
/// then wheelhouse files of other names. Without an index, a project no wheelhouse has is an
/// error naming the wheelhouses.
fn merged_page(
    index: Option<&IndexClient<'_>>,
    local: &Wheelhouses,
    name: &str,
) -> Result<ProjectPage, SourceError> {
    let mut files = match index {
        Some(index) => match index.project(name) {
            Ok(page) => page.files,
            Err(FetchError::ProjectNotFound { .. }) => Vec::new(),
            Err(err) => return Err(err.into()),
        },
        None => Vec::new(),
    };
    for file in local.files.get(name).into_iter().flatten() {
        if !files.iter().any(|f| f.filename == file.filename) {
            files.push(file.clone());
        }
    }
    if files.is_empty() && index.is_none() {
        return Err(format!(
            "no wheel of {name} in the wheelhouses ({}); with --no-index they are the only source: put its wheels there",
            local.describe()
        )
        .into());
    }
    Ok(ProjectPage {
        name: name.to_owned(),
        files,
    })
}

impl<'f, 'i> IndexSource<'f, 'i> {
    pub(super) fn new(
        fetcher: &'f Fetcher<'f>,
        index: Option<&'i IndexClient<'i>>,
        wheelhouses: &[PathBuf],
    ) -> Result<Self, LockRecipeError> {
        Ok(IndexSource {
            fetcher,
            index,
            local: Wheelhouses::list(wheelhouses)?,
            pages: RefCell::default(),
            metadata: RefCell::default(),
            facts: RefCell::default(),
            scratch: RefCell::default(),
        })
    }

    /// The wheelhouses' wheels.
    pub(super) fn wheelhouses(&self) -> &Wheelhouses {
        &self.local
    }

    /// The index, unless `--no-index`.
    pub(super) fn index(&self) -> Option<&'i IndexClient<'i>> {
        self.index
    }

    /// Downloads `file` (into the store when its sha256 is known); reads `with` on its path.
    fn with_wheel<T>(
        &self,
        file: &IndexFile,
        with: impl FnOnce(&Path) -> Result<T, SourceError>,
    ) -> Result<T, SourceError> {
        if let Some(path) = local_path(file) {
            return with(&path);
        }
        if let Some(sha256) = file.sha256() {
            let fetched = self.fetcher.fetch(&FixedOutput {
                name: EntryName::new(&file.filename)?,
                sha256,
                size: file.size,
                urls: vec![file.url.clone()],
            })?;
            let path = fetched.entry.path;
            let size = std::fs::metadata(&path)?.len();
            self.facts
                .borrow_mut()
                .insert(file.filename.clone(), (size, to_hex(&sha256)));
            return with(&path);
        }
        // No hash to name a store entry by: download, hash, and read it from a scratch directory.
        let mut scratch = self.scratch.borrow_mut();
        if scratch.is_none() {
            *scratch = Some(tempfile::tempdir()?);
        }
        let dir = scratch
            .as_ref()
            .map(|d| d.path().to_path_buf())
            .unwrap_or_default();
        let path = dir.join(EntryName::new(&file.filename)?.as_str());
        if !path.is_file() {
            let document = self.fetcher.http()?.get(&file.url, "*/*")?;
            std::fs::File::create(&path)?.write_all(&document.body)?;
            let sha256 = to_hex(&sha2::Sha256::digest(&document.body));
            self.facts
                .borrow_mut()
                .insert(file.filename.clone(), (document.body.len() as u64, sha256));
        }
        with(&path)
    }

    /// Reads a remote wheel's METADATA with range requests (its ZIP directory and that one
    /// member), learning its size on the way. `None` when the wheel is not remote or its server
    /// does not serve ranges: then the whole wheel is downloaded.
    fn metadata_by_ranges(&self, file: &IndexFile) -> Result<Option<CoreMetadata>, SourceError> {
        let Some((meta, size)) = remote_metadata(self.fetcher.http()?, file)? else {
            return Ok(None);
        };
        self.note_size(file, size);
        Ok(Some(meta))
    }

    /// Records the size a range answer gave for `file`, when the index gives its sha256 (the
    /// size pinned is checked against the bytes when realise downloads them).
    fn note_size(&self, file: &IndexFile, size: u64) {
        if let Some(sha256) = file.sha256() {
            self.facts
                .borrow_mut()
                .insert(file.filename.clone(), (size, to_hex(&sha256)));
        }
    }

    /// Runs `work` on each item, up to `-j` at once; results in input order.
    fn parallel<T: Sync, R: Send>(&self, items: &[T], work: impl Fn(&T) -> R + Sync) -> Vec<R> {
        let jobs = self.fetcher.jobs().min(items.len()).max(1);
        let chunk = items.len().div_ceil(jobs);
        std::thread::scope(|scope| {
            let handles: Vec<_> = items
                .chunks(chunk.max(1))
                .map(|part| scope.spawn(|| part.iter().map(&work).collect::<Vec<R>>()))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        })
    }

    /// Where every file of every project page seen can be downloaded, by file name: a URL, or
    /// a local path for a wheelhouse's files.
    pub(super) fn locations(&self) -> BTreeMap<String, WheelLocation> {
        let mut out = BTreeMap::new();
        for page in self.pages.borrow().values() {
            for file in &page.files {
                out.entry(file.filename.clone())
                    .or_insert_with(|| location(file));
            }
        }
        out
    }

    /// The size and sha256 of a chosen wheel: from the index when it gives both, else from the
    /// downloaded (or local) file.
    pub(super) fn facts(&self, file: &IndexFile) -> Result<(u64, String), SourceError> {
        if let (Some(size), Some(sha256)) = (file.size, file.sha256()) {
            return Ok((size, to_hex(&sha256)));
        }
        if let Some(known) = self.facts.borrow().get(&file.filename) {
            return Ok(known.clone());
        }
        if let Some(path) = local_path(file) {
            let size = std::fs::metadata(&path)?.len();
            let sha256 = to_hex(&crate::hash::sha256_file(&path)?);
            self.facts
                .borrow_mut()
                .insert(file.filename.clone(), (size, sha256.clone()));
            return Ok((size, sha256));
        }
        self.with_wheel(file, |_| Ok(()))?;
        self.facts
            .borrow()
            .get(&file.filename)
            .cloned()
            .ok_or_else(|| format!("{}: downloaded but not measured (a bug)", file.filename).into())
    }
}

/// Where `file` can be downloaded: its URL, or its path for a wheelhouse file.
pub(super) fn location(file: &IndexFile) -> WheelLocation {
    match local_path(file) {
        Some(path) => WheelLocation::Path(path.to_string_lossy().into_owned()),
        None => WheelLocation::Url(file.url.to_string()),
    }
}

/// A remote wheel's METADATA and size, read by ranges; `None` when not remote or the server
/// does not serve ranges.
fn remote_metadata(
    http: &HttpClient,
    file: &IndexFile,
) -> Result<Option<(CoreMetadata, u64)>, SourceError> {
    if !matches!(file.url.scheme(), "http" | "https") {
        return Ok(None);
    }
    let Some(mut remote) = RangedFile::open(http, &file.url, RANGE_TAIL)? else {
        return Ok(None);
    };
    let meta = CoreMetadata::from_wheel_reader(&mut remote, Path::new(&file.filename))?;
    tracing::debug!(
        "{}: METADATA read in {} range requests, {} of {} bytes",
        file.filename,
        remote.requests(),
        remote.fetched(),
        remote.len()
    );
    Ok(Some((meta, remote.len())))
}

impl PackageSource for IndexSource<'_, '_> {
    fn prefetch_projects(&self, names: &[String]) {
        let missing: Vec<&String> = names
            .iter()
            .filter(|n| !self.pages.borrow().contains_key(n.as_str()))
            .collect();
        let (index, local) = (self.index, &self.local);
        let pages = self.parallel(&missing, |name| merged_page(index, local, name));
        for (name, page) in missing.into_iter().zip(pages) {
            // Failures are left for `project` to meet again and report.
            if let Ok(page) = page {
                self.pages.borrow_mut().insert(name.clone(), page);
            }
        }
    }

    fn prefetch_metadata(&self, files: &[IndexFile]) {
        let Some(index) = self.index else {
            return;
        };
        let Ok(http) = self.fetcher.http() else {
            return;
        };
        let missing: Vec<&IndexFile> = files
            .iter()
            .filter(|f| local_path(f).is_none())
            .filter(|f| !self.metadata.borrow().contains_key(&f.filename))
            .collect();
        let found = self.parallel(&missing, |file| {
            let meta = match index.core_metadata(file).ok()? {
                Some(bytes) => {
                    let source = format!("{}.metadata", file.filename);
                    (CoreMetadata::parse(&bytes, &source).ok()?, None)
                }
                None => {
                    let (meta, size) = remote_metadata(http, file).ok()??;
                    (meta, Some(size))
                }
            };
            Some(meta)
        });
        for (file, found) in missing.into_iter().zip(found) {
            // What could not be read here (or needs the whole wheel) is read later, in order.
            let Some((meta, size)) = found else { continue };
            if let Some(size) = size {
                self.note_size(file, size);
            }
            self.metadata
                .borrow_mut()
                .insert(file.filename.clone(), meta);
        }
    }

    fn project(&self, name: &str) -> Result<ProjectPage, SourceError> {
        if let Some(page) = self.pages.borrow().get(name) {
            return Ok(page.clone());
        }
        let page = merged_page(self.index, &self.local, name)?;
        self.pages
            .borrow_mut()
            .insert(name.to_owned(), page.clone());
        Ok(page)
    }

    fn metadata(&self, file: &IndexFile) -> Result<CoreMetadata, SourceError> {
        if let Some(meta) = self.metadata.borrow().get(&file.filename) {
            return Ok(meta.clone());
        }
        let from_index = match (local_path(file), self.index) {
            (None, Some(index)) => index.core_metadata(file)?,
            _ => None,
        };
        let meta = match from_index {
            Some(bytes) => CoreMetadata::parse(&bytes, &format!("{}.metadata", file.filename))?,
            None => match self.metadata_by_ranges(file)? {
                Some(meta) => meta,
                None => self.with_wheel(file, |path| Ok(CoreMetadata::from_wheel(path)?))?,
            },
        };
        self.metadata
            .borrow_mut()
            .insert(file.filename.clone(), meta.clone());
        Ok(meta)
    }
}
