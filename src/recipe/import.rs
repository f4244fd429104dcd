//! `pystore lock --from-requirements TARGET=FILE` for a recipe: each named target's pins taken
//! from a hashed requirements file (matched to wheels and checked by [`crate::lock::import`]),
//! the others kept as `pystore lock --target` keeps them, the interpreter pinned as `pystore
//! lock` pins it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::lock::{
    check_kept_targets, finish, read_recipe_lock, target_of, LockOptions, LockOutcome,
    LockRecipeError,
};
use super::{Recipe, RecipeTarget};
use crate::fetch::index::IndexClient;
use crate::fetch::Fetcher;
use crate::lock::import::{pin_target, ImportError};
use crate::lock::pylock::WheelLocation;
use crate::lock::source::{location, IndexSource};
use crate::lock::{Lock, LockedPackage, LockedTarget, LOCK_VERSION};
use crate::python::requirements::RequirementsFile;
use crate::python::resolve::ResolveError;

/// Writes `recipe`'s lock with the targets in `imports` (`(target, file)`) taken from hashed
/// requirements files. Targets not named keep their pins, when the existing lock was made from
/// the recipe's current requirements (as with `pystore lock --target`); otherwise naming only
/// some targets is refused. `index` is `None` with `--no-index` or `--offline`.
pub fn import_requirements(
    fetcher: &Fetcher<'_>,
    index: Option<&IndexClient<'_>>,
    recipe: &Recipe,
    imports: &[(String, PathBuf)],
    options: &LockOptions,
) -> Result<LockOutcome, LockRecipeError> {
    let requirements = recipe.read_requirements()?;
    let mut files: BTreeMap<&str, &Path> = BTreeMap::new();
    for (target, file) in imports {
        if !recipe.targets.iter().any(|t| &t.spec.name == target) {
            return Err(LockRecipeError::UnknownTarget {
                recipe: recipe.name.clone(),
                name: target.clone(),
                available: recipe.targets.iter().map(|t| t.spec.name.clone()).collect(),
            });
        }
        if let Some(first) = files.insert(target, file) {
            return Err(ImportError::Twice {
                target: target.clone(),
                first: first.to_path_buf(),
                second: file.clone(),
            }
            .into());
        }
    }
    let existing = recipe
        .lock
        .is_file()
        .then(|| read_recipe_lock(recipe))
        .flatten();
    let inputs = recipe.lock_inputs(&requirements);
    let named: Vec<String> = files.keys().map(|t| (*t).to_owned()).collect();
    check_kept_targets(recipe, existing.as_ref(), &inputs, &named)?;
    // The interpreter is pinned as `pystore lock` pins it (an imported file names none).
    let interpreters = options.interpreters(recipe, existing.as_ref(), options.upgrade)?;
    let python = interpreters.version.to_string();
    let source = IndexSource::new(fetcher, index, &options.wheelhouses)?;
    let recipe_dir = recipe.path.parent().unwrap_or(Path::new("."));
    let mut targets = Vec::new();
    let mut locations = BTreeMap::new();
    for recipe_target in &recipe.targets {
        let Some(file) = files.get(recipe_target.spec.name.as_str()) else {
            if let Some(old) = existing
                .as_ref()
                .and_then(|l| l.target(&recipe_target.spec.name))
            {
                targets.push(old.clone());
            }
            continue;
        };
        if options.progress {
            eprintln!(
                "importing {} for {} from {}",
                recipe.name,
                recipe_target.spec.name,
                file.display()
            );
        }
        let mut imported = import_target(
            &source,
            recipe,
            &python,
            recipe_target,
            &requirements,
            file,
            recipe_dir,
        )?;
        imported.0.interpreter = interpreters
            .pins
            .get(&recipe_target.spec.name)
            .cloned()
            .flatten();
        locations.extend(imported.1);
        targets.push(imported.0);
    }
    let lock = Lock {
        version: LOCK_VERSION,
        python: recipe.python.clone(),
        inputs,
        targets,
    };
    finish(recipe, lock, &locations, options)
}

/// One target's lock from `file`, with where its wheels can be downloaded.
fn import_target(
    source: &IndexSource<'_, '_>,
    recipe: &Recipe,
    python: &str,
    recipe_target: &RecipeTarget,
    requirements: &RequirementsFile,
    file: &Path,
    recipe_dir: &Path,
) -> Result<(LockedTarget, BTreeMap<String, WheelLocation>), LockRecipeError> {
    let tname = &recipe_target.spec.name;
    let target = target_of(recipe_target, python)?;
    let resolved = pin_target(source, &recipe.name, &target, tname, requirements, file)?;
    let mut locations = BTreeMap::new();
    let mut packages = Vec::new();
    for package in resolved {
        let (size, sha256) =
            source
                .facts(&package.file)
                .map_err(|error| LockRecipeError::Resolve {
                    target: tname.clone(),
                    error: ResolveError::Source {
                        package: package.file.filename.clone(),
                        error,
                    },
                })?;
        locations.insert(package.file.filename.clone(), location(&package.file));
        packages.push(LockedPackage::from_resolved(
            package, size, sha256, recipe_dir,
        ));
    }
    Ok((
        LockedTarget {
            spec: recipe_target.spec.clone(),
            packages,
            interpreter: None,
        },
        locations,
    ))
}
