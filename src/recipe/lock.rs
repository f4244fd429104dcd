//! `pystore lock` for a recipe: which targets to resolve, which CPython release and interpreter
//! archives to pin, and where the lock is written, in the format the recipe's `lock` names.
//!
//! This is the recipe's side of locking, kept thin: the lock model and its formats, the package
//! source resolution runs against, and the matching of hashed requirements files are
//! [`crate::lock`]; resolution is [`crate::python::resolve`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pep440_rs::Version;

use super::{Recipe, RecipeTarget};
use crate::fetch::index::IndexClient;
use crate::fetch::{FetchError, Fetcher};
use crate::lock::pylock::{
    check_pins, read_pylock, to_pylock_at, PylockLockError, PylockWriteError, WheelLocation,
};
use crate::lock::source::{IndexSource, WheelhouseError};
use crate::lock::{Lock, LockError, LockedInterpreter, LockedPackage, LockedTarget, LOCK_VERSION};
use crate::python::builds::NoBuild;
use crate::python::requirements::{self, RequirementsError, RequirementsFile};
use crate::python::resolve::{resolve, ResolveError, ResolveInput};
use crate::python::target::TargetError;
use crate::python::{Catalogue, PackageName, PythonRequest, PythonVersion, Target, TargetSpec};

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
    #[error("{recipe}: python = {request:?}: {problem}")]
    Python {
        recipe: String,
        request: String,
        #[source]
        problem: PythonProblem,
    },
    /// A target the python layer refuses.
    #[error("target {target}: {source}")]
    Target {
        target: String,
        // Boxed: the variant would otherwise make every `Result<_, LockRecipeError>` large.
        #[source]
        source: Box<TargetError>,
    },
    /// Resolution failed for a target.
    #[error("target {target}: {error}")]
    Resolve { target: String, error: ResolveError },
    /// The index cannot be used.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// A wheelhouse (`--find-links`) cannot be listed.
    #[error(transparent)]
    Wheelhouse(#[from] WheelhouseError),
    /// A `pylock.toml` that cannot be read or used.
    #[error(transparent)]
    Pylock(#[from] PylockLockError),
    /// A hashed requirements file that cannot be imported (`--from-requirements`); boxed, as
    /// it carries the most context.
    #[error(transparent)]
    Import(Box<crate::lock::import::ImportError>),
    /// A lock that cannot be written as `pylock.toml` (a bug in the lock's targets).
    #[error("cannot write {} as pylock.toml: {source}", path.display())]
    PylockWrite {
        path: PathBuf,
        #[source]
        source: PylockWriteError,
    },
    /// An exported requirements file cannot be written.
    #[error("cannot write {}: {error}", path.display())]
    Export {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// Why the recipe's `python` cannot be locked as asked.
#[derive(Debug, thiserror::Error)]
pub enum PythonProblem {
    /// Not a version request.
    #[error("not a CPython version like 3.12.7 or 3.13")]
    NotAVersion,
    /// A minor version, but a target brings its own interpreter.
    #[error("target {target} names its own interpreter, whose version pystore cannot choose; give `python` as that interpreter's exact version")]
    OwnInterpreter { target: String },
    /// A minor version, but the lock is a `pylock.toml`.
    #[error("a pylock.toml cannot pin an interpreter archive; give `python` as an exact version, or lock into pystore.lock")]
    PylockPin,
    /// The chosen release has no build for a target's triple.
    #[error("no CPython {version} build for {triple}")]
    NoBuild {
        version: PythonVersion,
        triple: String,
    },
}

impl From<crate::lock::import::ImportError> for LockRecipeError {
    fn from(error: crate::lock::import::ImportError) -> Self {
        LockRecipeError::Import(Box::new(error))
    }
}

impl From<Box<crate::lock::import::ImportError>> for LockRecipeError {
    fn from(error: Box<crate::lock::import::ImportError>) -> Self {
        LockRecipeError::Import(error)
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
    pub upgrade_packages: Vec<PackageName>,
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
        if !recipe.targets.iter().any(|t| &t.spec.name == name) {
            return Err(LockRecipeError::UnknownTarget {
                recipe: recipe.name.clone(),
                name: name.clone(),
                available: recipe.targets.iter().map(|t| t.spec.name.clone()).collect(),
            });
        }
    }
    // An unreadable old lock is only a source of preferences: resolve without it.
    let existing = recipe
        .lock
        .is_file()
        .then(|| read_recipe_lock(recipe))
        .flatten();
    let upgrade = &options.upgrade_packages;
    let inputs = recipe.lock_inputs(&requirements);
    check_kept_targets(recipe, existing.as_ref(), &inputs, &options.targets)?;
    let upgrade_python = options.upgrade || upgrade.iter().any(|n| n == "python");
    let interpreters = options.interpreters(recipe, existing.as_ref(), upgrade_python)?;
    let python = interpreters.version.to_string();
    let recipe_dir = recipe.path.parent().unwrap_or(Path::new("."));
    let source = IndexSource::new(fetcher, index, &options.wheelhouses)?;
    let mut targets = Vec::new();
    for recipe_target in &recipe.targets {
        let wanted =
            options.targets.is_empty() || options.targets.contains(&recipe_target.spec.name);
        let old = existing
            .as_ref()
            .and_then(|l| l.target(&recipe_target.spec.name));
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
                        targets: vec![old.spec.name.clone()],
                    });
                }
                targets.push(old.clone());
            }
            continue;
        }
        if options.progress {
            eprintln!("resolving {} for {}", recipe.name, recipe_target.spec.name);
        }
        let preferences = match old {
            Some(old) if !options.upgrade => old
                .packages
                .iter()
                .filter(|p| !upgrade.contains(&p.name))
                .map(|p| (p.name.to_string(), p.version.clone()))
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
            .get(&recipe_target.spec.name)
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
        .filter(|t| !named.contains(&t.spec.name))
        .filter(|t| existing.is_some_and(|l| l.target(&t.spec.name).is_some()))
        .map(|t| t.spec.name.clone())
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
            let path = dir.join(format!("requirements-{}.txt", target.spec.name));
            let text = lock
                .hashed_requirements(&target.spec.name)
                .unwrap_or_default();
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
    let lock = lock_from_pylock(recipe, &requirements, file)?;
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
    read_pylock(&recipe.lock, &recipe.python, &pylock_targets(recipe))
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
    to_pylock_at(lock, locations, path).map_err(|e| LockRecipeError::PylockWrite {
        path: path.to_path_buf(),
        source: e,
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
    let python_error = |problem: PythonProblem| LockRecipeError::Python {
        recipe: recipe.name.clone(),
        request: recipe.python.clone(),
        problem,
    };
    let no_build = |error: NoBuild| LockRecipeError::NoInterpreter {
        recipe: recipe.name.clone(),
        request: recipe.python.clone(),
        error: Box::new(error),
    };
    let request = recipe
        .python_request()
        .ok_or_else(|| python_error(PythonProblem::NotAVersion))?;
    if let PythonRequest::Minor(..) = request {
        if let Some(own) = recipe.targets.iter().find(|t| t.interpreter.is_some()) {
            return Err(python_error(PythonProblem::OwnInterpreter {
                target: own.spec.name.clone(),
            }));
        }
        if recipe.lock_is_pylock() {
            return Err(python_error(PythonProblem::PylockPin));
        }
    }
    let from_catalogue: Vec<&RecipeTarget> = recipe
        .targets
        .iter()
        .filter(|t| t.interpreter.is_none())
        .collect();
    let triples: Vec<&str> = from_catalogue
        .iter()
        .map(|t| t.spec.platform.triple())
        .collect();
    // The existing lock's pins, for targets whose platform has not changed.
    let old_pins: BTreeMap<&str, &LockedInterpreter> = existing
        .map(|lock| {
            lock.targets
                .iter()
                .filter(|old| {
                    recipe.targets.iter().any(|t| {
                        t.spec.name == old.spec.name
                            && t.spec.platform.triple() == old.spec.platform.triple()
                    })
                })
                .filter_map(|old| Some((old.spec.name.as_str(), old.interpreter.as_ref()?)))
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
            pins.insert(target.spec.name.clone(), None);
            continue;
        }
        let old = old_pins
            .get(target.spec.name.as_str())
            .filter(|pin| !upgrade_python && pin.version == version.to_string());
        let pin = match old {
            Some(pin) => (*pin).clone(),
            None => {
                let triple = target.spec.platform.triple();
                let build = catalogue.find(&version, triple).ok_or_else(|| {
                    let exact = PythonRequest::Exact(version);
                    match catalogue.resolve(&exact, &triples) {
                        Err(error) => no_build(error),
                        Ok(_) => python_error(PythonProblem::NoBuild {
                            version,
                            triple: triple.to_owned(),
                        }),
                    }
                })?;
                LockedInterpreter {
                    version: version.to_string(),
                    url: build.url.clone(),
                    size: build.size,
                    sha256: build.sha256,
                }
            }
        };
        pins.insert(target.spec.name.clone(), Some(pin));
    }
    Ok(Interpreters { version, pins })
}

/// The resolver's view of `recipe_target` running CPython `python`.
pub(super) fn target_of(
    recipe_target: &RecipeTarget,
    python: &str,
) -> Result<Target, LockRecipeError> {
    recipe_target
        .spec
        .target(python)
        .map_err(|e| LockRecipeError::Target {
            target: recipe_target.spec.name.clone(),
            source: Box::new(e),
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
    let tname = &recipe_target.spec.name;
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
        packages.push(LockedPackage::from_resolved(
            package, size, sha256, recipe_dir,
        ));
    }
    Ok(LockedTarget {
        spec: recipe_target.spec.clone(),
        interpreter: None,
        packages,
    })
}

/// Reads `path` (a `pylock.toml`) as `recipe`'s lock, for all of its targets, checked against `requirements`.
pub fn lock_from_pylock(
    recipe: &Recipe,
    requirements: &RequirementsFile,
    path: &Path,
) -> Result<Lock, PylockLockError> {
    if !matches!(recipe.python_request(), Some(PythonRequest::Exact(_))) {
        return Err(PylockLockError::MinorPython {
            recipe: recipe.name.clone(),
            python: recipe.python.clone(),
        });
    }
    let read = read_pylock(path, &recipe.python, &pylock_targets(recipe))?;
    let inputs = recipe.lock_inputs(requirements);
    if read.written_by_pystore {
        if read.lock.inputs != inputs {
            return Err(PylockLockError::Stale {
                recipe: recipe.name.clone(),
                path: path.to_path_buf(),
            });
        }
        return Ok(read.lock);
    }
    check_pins(
        &recipe.name,
        &recipe.python,
        &pylock_targets(recipe),
        requirements,
        &read.lock,
        path,
    )?;
    Ok(Lock {
        inputs,
        ..read.lock
    })
}

/// The recipe's targets, as a `pylock.toml` is read for them.
pub fn pylock_targets(recipe: &Recipe) -> Vec<TargetSpec> {
    recipe.targets.iter().map(|t| t.spec.clone()).collect()
}
