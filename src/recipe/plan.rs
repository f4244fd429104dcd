//! Planning a recipe's realisation: reading and checking its lock, and building the graph of
//! every entry each target needs (interpreter, wheels, bundle, ZIP, provenance, SBOM,
//! validation) with every entry id computed without touching the network. Also finding the
//! URLs of wheels nothing local has.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use reqwest::Url;

use super::realise::{CaptureProblem, RealiseOptions, RealiseRecipeError};
use super::{Recipe, RecipeTarget};
use crate::archive::timestamp::DosDateTime;
use crate::build::graph::Action;
use crate::build::sandbox::Sandbox;
use crate::build::{BuildError, Graph, NodeIndex, Status};
use crate::bundle::bytecode::Sources;
use crate::bundle::derivations::{self, ArchiveKind, BundleSpec, BundledPackage, WheelInstall};
use crate::bundle::manifest::BytecodeRef;
use crate::bundle::provenance::ProvenanceInputs;
use crate::bundle::validate::runs_here;
use crate::fetch::credentials::redact;
use crate::fetch::fixed::wheelhouse_holds;
use crate::fetch::index::IndexClient;
use crate::fetch::{Fetcher, FixedOutput};
use crate::lock::LockedInterpreter;
use crate::lock::{Lock, LockedPackage, LockedTarget};
use crate::python::{known_build_for, normalize_name, requirements, Scheme, Target};
use crate::store::{EntryName, Fingerprint, Store};

/// The nodes realised for one target.
pub(super) struct PlannedTarget {
    pub(super) name: String,
    pub(super) bundle: NodeIndex,
    pub(super) zip: NodeIndex,
    pub(super) provenance: NodeIndex,
    pub(super) sbom: NodeIndex,
    pub(super) validation: NodeIndex,
}

pub(super) struct Planned {
    pub(super) graph: Graph,
    pub(super) roots: Vec<PlannedTarget>,
    pub(super) wheels: BTreeMap<NodeIndex, String>,
}

impl Planned {
    /// The nodes realise asks for: each target's outputs. The bundles too: each outcome names
    /// its bundle, so it is planned (and substituted) itself.
    pub(super) fn root_nodes(&self) -> Vec<NodeIndex> {
        self.roots
            .iter()
            .flat_map(|t| [t.bundle, t.validation, t.zip, t.provenance, t.sbom])
            .collect()
    }
}

/// sha256 of a user input file (recipe, requirements, lock), read bounded like any input.
fn sha256_of(path: &Path) -> Result<String, RealiseRecipeError> {
    let bytes = crate::hash::files::read_input(path, "input file", crate::hash::files::TEXT_CAP)
        .map_err(|err| RealiseRecipeError::Digest {
            path: path.to_path_buf(),
            source: match err {
                crate::hash::files::InputError::Io { source, .. } => source,
                other => std::io::Error::other(other.reason()),
            },
        })?;
    Ok(crate::hash::Sha256Digest::of(&bytes).to_string())
}

fn plan_error(recipe: &Recipe) -> impl Fn(BuildError) -> RealiseRecipeError + '_ {
    move |err| RealiseRecipeError::Plan {
        recipe: recipe.name.clone(),
        source: Box::new(err).into(),
    }
}

fn selected<'r>(
    recipe: &'r Recipe,
    names: &[String],
) -> Result<Vec<&'r RecipeTarget>, RealiseRecipeError> {
    if names.is_empty() {
        return Ok(recipe.targets.iter().collect());
    }
    names
        .iter()
        .map(|name| {
            recipe
                .targets
                .iter()
                .find(|t| &t.spec.name == name)
                .ok_or_else(|| RealiseRecipeError::UnknownTarget {
                    recipe: recipe.name.clone(),
                    name: name.clone(),
                    available: recipe.targets.iter().map(|t| t.spec.name.clone()).collect(),
                })
        })
        .collect()
}

/// Reads the lock and checks it is for this recipe's requirements and targets.
pub fn checked_lock(
    recipe: &Recipe,
) -> Result<(Lock, requirements::RequirementsFile), RealiseRecipeError> {
    let requirements = recipe.read_requirements()?;
    if !recipe.lock.is_file() {
        return Err(RealiseRecipeError::NoLock {
            recipe: recipe.name.clone(),
            path: recipe.lock.clone(),
        });
    }
    if recipe.lock_is_pylock() {
        let lock = super::lock::lock_from_pylock(recipe, &requirements, &recipe.lock)?;
        return Ok((lock, requirements));
    }
    let lock = Lock::read(&recipe.lock)?;
    if lock.inputs != recipe.lock_inputs(&requirements) || lock.python != recipe.python {
        return Err(RealiseRecipeError::StaleLock {
            recipe: recipe.name.clone(),
            path: recipe.lock.clone(),
        });
    }
    Ok((lock, requirements))
}

pub(super) fn plan_recipe(
    store: &Store,
    recipe: &Recipe,
    options: &RealiseOptions,
    sandbox: &Arc<Sandbox>,
) -> Result<Planned, RealiseRecipeError> {
    let (lock, requirements) = checked_lock(recipe)?;
    let planner = TargetPlanner::new(recipe, options, sandbox, &requirements)?;
    let mut graph = Graph::new();
    let mut roots = Vec::new();
    let mut wheels = BTreeMap::new();
    let chosen = selected(recipe, &options.targets)?;
    let mut prepared = Vec::new();
    for recipe_target in &chosen {
        prepared.push(prepare_target(
            store,
            &mut graph,
            recipe,
            &lock,
            recipe_target,
        )?);
    }
    let compilers = if recipe.bytecode {
        compilers(store, &mut graph, recipe, &lock, &chosen, &prepared)?
    } else {
        BTreeMap::new()
    };
    let mut uncompiled = Vec::new();
    for target in prepared {
        let compiler = compilers.get(&target.target.python.to_string()).copied();
        if recipe.bytecode && compiler.is_none() {
            uncompiled.push(format!(
                "{} (CPython {})",
                target.name, target.target.python
            ));
        }
        roots.push(planner.plan_target(&mut graph, &mut wheels, target, compiler)?);
    }
    if !uncompiled.is_empty() {
        eprintln!(
            "notice: no pycs for {}: no interpreter of that CPython version in the recipe runs on this machine (the provenance records it); the bundle's packages compile at import",
            uncompiled.join(", ")
        );
    }
    Ok(Planned {
        graph,
        roots,
        wheels,
    })
}

/// What planning each target's packages, bundle and outputs needs besides the target.
struct TargetPlanner<'a> {
    recipe: &'a Recipe,
    options: &'a RealiseOptions,
    sandbox: &'a Arc<Sandbox>,
    /// The recipe's direct requirements (normalised names): installed with `REQUESTED`.
    requested: BTreeSet<String>,
    /// The ZIP members' time.
    time: DosDateTime,
    provenance_inputs: ProvenanceInputs,
}

impl<'a> TargetPlanner<'a> {
    fn new(
        recipe: &'a Recipe,
        options: &'a RealiseOptions,
        sandbox: &'a Arc<Sandbox>,
        requirements: &requirements::RequirementsFile,
    ) -> Result<TargetPlanner<'a>, RealiseRecipeError> {
        let requested: BTreeSet<String> = requirements
            .requirements
            .iter()
            .map(|r| normalize_name(r.requirement.name.as_ref()))
            .collect();
        let time = options
            .source_date_epoch
            .map_or(DosDateTime::DEFAULT, DosDateTime::from_unix);
        // What provenance records of the user's inputs: their digests, never their paths.
        let provenance_inputs = ProvenanceInputs {
            recipe_sha256: sha256_of(&recipe.path)?,
            requirements_sha256: sha256_of(&recipe.requirements)?,
            lock_sha256: sha256_of(&recipe.lock)?,
            dos_date: time.date,
            dos_time: time.time,
            pystore_version: env!("CARGO_PKG_VERSION").to_owned(),
        };
        Ok(TargetPlanner {
            recipe,
            options,
            sandbox,
            requested,
            time,
            provenance_inputs,
        })
    }

    /// Plans `prepared`'s packages (byte-compiled by `compiler`, when there is one), bundle,
    /// validation, ZIP, provenance and SBOM; adds its wheels' download nodes to `wheels`.
    fn plan_target(
        &self,
        graph: &mut Graph,
        wheels: &mut BTreeMap<NodeIndex, String>,
        prepared: PreparedTarget<'_>,
        compiler: Option<NodeIndex>,
    ) -> Result<PlannedTarget, RealiseRecipeError> {
        let PreparedTarget {
            name: tname,
            locked,
            target,
            interpreter,
            archive_sha256,
        } = prepared;
        let recipe = self.recipe;
        let perr = plan_error(recipe);
        let bytecode = bytecode_ref(graph, recipe.bytecode, compiler, &target);
        let mut packages = Vec::new();
        let mut wheel_files = Vec::new();
        let requires = recorded_dependencies(&locked.packages);
        for package in &locked.packages {
            let package_requires = requires
                .as_ref()
                .map(|r| r.get(package.name.as_str()).cloned().unwrap_or_default());
            let planned = self.plan_package(graph, package, package_requires, &target, compiler)?;
            wheels.insert(planned.installed_from, package.name.to_string());
            wheel_files.push(planned.installed_from);
            packages.push(planned.package);
        }
        let spec = BundleSpec {
            recipe: recipe.name.clone(),
            version: recipe.version.clone(),
            target_name: tname.clone(),
            target,
            interpreter_archive_sha256: archive_sha256,
            bytecode,
        };
        let stdlib_pycs = compiler
            .map(|compiler| {
                derivations::bytecode(
                    graph,
                    interpreter,
                    Sources::Stdlib,
                    compiler,
                    &spec.target,
                    self.sandbox.clone(),
                )
            })
            .transpose()
            .map_err(&perr)?;
        let bundle = derivations::bundle(graph, &spec, interpreter, stdlib_pycs, &packages)
            .map_err(&perr)?;
        let validation =
            derivations::validate(graph, &spec, bundle, &recipe.validate, self.sandbox.clone())
                .map_err(&perr)?;
        // The ZIP is made beside the validation, not after it: on two cores the imports and
        // the deflate overlap. Nothing is published (gc root, --out, push) unless every root,
        // the validation included, was realised.
        let zip = derivations::zip(graph, &spec, bundle, &wheel_files, self.time).map_err(&perr)?;
        let provenance = derivations::provenance(
            graph,
            zip,
            bundle,
            validation,
            &self.provenance_inputs,
            self.options.signing_key.clone(),
        )
        .map_err(&perr)?;
        let sbom = derivations::sbom(graph, zip, bundle).map_err(&perr)?;
        Ok(PlannedTarget {
            name: tname,
            bundle,
            zip,
            provenance,
            sbom,
            validation,
        })
    }

    /// Plans one locked package for `target`: its download, its install and (with a
    /// `compiler`) its byte code. `requires` is what the lock recorded of its dependencies.
    fn plan_package(
        &self,
        graph: &mut Graph,
        package: &LockedPackage,
        requires: Option<Vec<String>>,
        target: &Target,
        compiler: Option<NodeIndex>,
    ) -> Result<PlannedPackage, RealiseRecipeError> {
        let perr = plan_error(self.recipe);
        // The lock parsed the digest and the wheel's file name when it was read.
        let file = graph
            .fetch(FixedOutput {
                name: EntryName::new(package.wheel.as_str()).map_err(|e| perr(e.into()))?,
                sha256: package.sha256.to_bytes(),
                size: Some(package.size),
                urls: Vec::new(),
            })
            .map_err(&perr)?;
        let wheel = WheelInstall {
            name: package.name.to_string(),
            version: package.version.to_string(),
            wheel: package.wheel.to_string(),
            sha256: package.sha256.to_string(),
            requested: self.requested.contains(package.name.as_str()),
            requires,
        };
        let installed = derivations::install(graph, file, &wheel, target).map_err(&perr)?;
        let site = Sources::Dir(Scheme::for_target(target).purelib);
        let bytecode = compiler
            .map(|compiler| {
                derivations::bytecode(
                    graph,
                    installed,
                    site,
                    compiler,
                    target,
                    self.sandbox.clone(),
                )
            })
            .transpose()
            .map_err(&perr)?;
        Ok(PlannedPackage {
            installed_from: file,
            package: BundledPackage {
                wheel,
                installed,
                bytecode,
            },
        })
    }
}

/// One package of a target, planned.
struct PlannedPackage {
    /// The wheel's download node.
    installed_from: NodeIndex,
    package: BundledPackage,
}

/// What the manifest says of a target's byte code: none asked (`bytecode` off), the
/// `compiler` that makes it, or why there is none.
fn bytecode_ref(
    graph: &Graph,
    bytecode: bool,
    compiler: Option<NodeIndex>,
    target: &Target,
) -> Option<BytecodeRef> {
    match (bytecode, compiler) {
        (false, _) => None,
        (true, Some(compiler)) => Some(BytecodeRef {
            invalidation: Some(crate::bundle::bytecode::INVALIDATION.to_owned()),
            compiler: Some(graph.node(compiler).fingerprint.name().to_string()),
            missing: None,
        }),
        (true, None) => Some(BytecodeRef {
            invalidation: None,
            compiler: None,
            missing: Some(format!(
                "no interpreter of CPython {} that runs on the building machine",
                target.python
            )),
        }),
    }
}

/// A selected target, its lock and its interpreter, ready for its packages.
struct PreparedTarget<'l> {
    name: String,
    locked: &'l LockedTarget,
    target: Target,
    interpreter: NodeIndex,
    archive_sha256: Option<String>,
}

/// Plans the interpreter of `recipe_target` as `lock` pins it.
fn prepare_target<'l>(
    store: &Store,
    graph: &mut Graph,
    recipe: &Recipe,
    lock: &'l Lock,
    recipe_target: &RecipeTarget,
) -> Result<PreparedTarget<'l>, RealiseRecipeError> {
    let perr = plan_error(recipe);
    let tname = recipe_target.spec.name.clone();
    let locked = lock
        .target(&tname)
        .ok_or_else(|| RealiseRecipeError::TargetNotLocked {
            recipe: recipe.name.clone(),
            target: tname.clone(),
            path: recipe.lock.clone(),
        })?;
    // The release the lock pinned; a lock without a pin (written before pins existed, or
    // for a target with its own interpreter) is for the recipe's exact version.
    let python = match (&locked.interpreter, recipe.python_request()) {
        (Some(pin), _) => pin.version.clone(),
        (None, Some(crate::python::PythonRequest::Exact(_))) => recipe.python.clone(),
        (None, _) => {
            return Err(RealiseRecipeError::NoPinnedInterpreter {
                recipe: recipe.name.clone(),
                target: tname,
                python: recipe.python.clone(),
                path: recipe.lock.clone(),
            })
        }
    };
    let target = recipe_target
        .spec
        .target(&python)
        .map_err(|e| RealiseRecipeError::Target {
            target: tname.clone(),
            source: Box::new(e),
        })?;
    let (interpreter, archive_sha256) = interpreter_node(
        store,
        graph,
        recipe_target,
        locked.interpreter.as_ref(),
        &target,
        &perr,
    )?;
    Ok(PreparedTarget {
        name: tname,
        locked,
        target,
        interpreter,
        archive_sha256,
    })
}

/// The interpreter that byte-compiles packages for each CPython version (by full version) the
/// selected targets use: the first selected target of that version that runs here, else the
/// first other target of the recipe that does (a Windows bundle built on Linux is compiled by
/// the Linux target's interpreter: the bytecode of one CPython version is the same on every
/// platform). A version without one is missing from the map.
fn compilers(
    store: &Store,
    graph: &mut Graph,
    recipe: &Recipe,
    lock: &Lock,
    chosen: &[&RecipeTarget],
    prepared: &[PreparedTarget<'_>],
) -> Result<BTreeMap<String, NodeIndex>, RealiseRecipeError> {
    let mut found = BTreeMap::new();
    for target in prepared.iter().filter(|t| runs_here(&t.target)) {
        found
            .entry(target.target.python.to_string())
            .or_insert(target.interpreter);
    }
    let lacking = |found: &BTreeMap<String, NodeIndex>| {
        prepared
            .iter()
            .any(|t| !found.contains_key(&t.target.python.to_string()))
    };
    for other in &recipe.targets {
        if !lacking(&found) {
            break;
        }
        if chosen.iter().any(|c| c.spec.name == other.spec.name)
            || lock.target(&other.spec.name).is_none()
        {
            continue;
        }
        let Ok(candidate) = prepare_target(store, graph, recipe, lock, other) else {
            continue; // a target that cannot be planned simply compiles nothing
        };
        if runs_here(&candidate.target) {
            found
                .entry(candidate.target.python.to_string())
                .or_insert(candidate.interpreter);
        }
    }
    Ok(found)
}

fn interpreter_node(
    store: &Store,
    graph: &mut Graph,
    recipe_target: &RecipeTarget,
    pinned: Option<&LockedInterpreter>,
    target: &Target,
    perr: &impl Fn(BuildError) -> RealiseRecipeError,
) -> Result<(NodeIndex, Option<String>), RealiseRecipeError> {
    let tname = &recipe_target.spec.name;
    let mut size = None;
    let (url, sha256) = match (&recipe_target.interpreter, pinned) {
        (Some(super::InterpreterSource::Path(prefix)), _) => {
            return capture(store, graph, tname, prefix, target, perr)
        }
        (Some(super::InterpreterSource::Archive { url, sha256 }), _) => (url.clone(), *sha256),
        (None, Some(pin)) => {
            size = pin.size;
            (pin.url.clone(), pin.sha256)
        }
        (None, None) => {
            let known =
                known_build_for(target).ok_or_else(|| RealiseRecipeError::NoInterpreter {
                    target: tname.clone(),
                    python: target.python.to_string(),
                    triple: target.platform.triple().to_owned(),
                })?;
            (known.url, known.sha256)
        }
    };
    let url = crate::fetch::config::parse_location("interpreter url", &url)?;
    let file_name = crate::fetch::credentials::percent_decode(
        url.path_segments()
            .and_then(|mut s| s.next_back())
            .unwrap_or_default(),
    );
    let kind = ArchiveKind::from_file_name(&file_name).ok_or_else(|| {
        RealiseRecipeError::UnknownArchive {
            target: tname.clone(),
            name: file_name.clone(),
        }
    })?;
    let archive = graph
        .fetch(FixedOutput {
            name: EntryName::new(&file_name).map_err(|e| perr(e.into()))?,
            sha256: sha256.to_bytes(),
            size,
            urls: vec![url],
        })
        .map_err(perr)?;
    let node = derivations::interpreter(graph, archive, kind, target).map_err(perr)?;
    Ok((node, Some(sha256.to_string())))
}

/// Captures an installed interpreter into the store (content-addressed, so an unchanged prefix
/// is the same entry) and adds it to the graph as present.
fn capture(
    store: &Store,
    graph: &mut Graph,
    tname: &str,
    prefix: &Path,
    target: &Target,
    perr: &impl Fn(BuildError) -> RealiseRecipeError,
) -> Result<(NodeIndex, Option<String>), RealiseRecipeError> {
    let failed = |source: CaptureProblem| RealiseRecipeError::Capture {
        target: tname.to_owned(),
        path: prefix.to_path_buf(),
        source: Box::new(source),
    };
    let scratch = tempfile::tempdir().map_err(|e| failed(CaptureProblem::Scratch(e)))?;
    let out = scratch.path().join("python");
    crate::python::capture_installed(prefix, target, &out, &Default::default())
        .map_err(|e| failed(e.into()))?;
    let name = format!(
        "cpython-{}-{}-captured",
        target.python,
        target.platform.triple()
    );
    let registration = store.add_path(&out, Some(&name))?;
    let fingerprint = Fingerprint::Source {
        name: EntryName::new(&name).map_err(|e| perr(e.into()))?,
        tree: registration.entry.content_hash,
    };
    Ok((graph.present(fingerprint).map_err(perr)?, None))
}

/// Finds index URLs for the wheels that must be downloaded and that no local source has.
pub(super) fn find_wheel_urls(
    fetcher: &Fetcher<'_>,
    planned: &mut Planned,
    statuses: &[Status],
    options: &RealiseOptions,
    find_links: &[PathBuf],
) -> Result<(), RealiseRecipeError> {
    let needed: Vec<NodeIndex> = planned
        .wheels
        .keys()
        .copied()
        .filter(|&i| statuses[i] == Status::Fetch)
        .filter(|&i| match &planned.graph.node(i).action {
            // A wrong file in a wheelhouse (size or hash) is no source: look the wheel up too.
            Action::Fetch(item) => !wheelhouse_holds(find_links, item),
            _ => true,
        })
        .collect();
    if needed.is_empty() {
        return Ok(());
    }
    let indexes = options.indexes.resolve();
    if indexes.is_empty() {
        return Ok(());
    }
    let client = IndexClient::new(fetcher.http()?, indexes)?;
    let mut pages = BTreeMap::new();
    for index in needed {
        let project = planned.wheels[&index].clone();
        if !pages.contains_key(&project) {
            pages.insert(project.clone(), client.project(&project)?);
        }
        let node = planned.graph.node(index);
        let wheel = node.fingerprint.name().to_string();
        let sha256 = match &node.fingerprint {
            Fingerprint::Fixed { sha256, .. } => crate::hash::to_hex(sha256),
            _ => String::new(),
        };
        let urls: Vec<Url> = pages[&project]
            .files
            .iter()
            .filter(|f| f.filename == wheel)
            .map(|f| f.url.clone())
            .collect();
        if urls.is_empty() {
            return Err(RealiseRecipeError::WheelNotFound {
                wheel,
                sha256,
                project,
            });
        }
        tracing::debug!(
            "{wheel}: {}",
            urls.iter().map(redact).collect::<Vec<_>>().join(", ")
        );
        planned.graph.set_urls(index, urls);
    }
    Ok(())
}

/// The dependencies of each package of a locked target (normalised names, sorted), from the
/// lock's `required_by` edges, when the lock records them: `pystore lock` gives every package
/// at least one `required_by` (a requirement line or a package); locks imported from
/// requirements or pylock files, and hand-written ones, may not, and then `None` (only names
/// and versions are compared with the wheels).
fn recorded_dependencies(
    packages: &[crate::lock::LockedPackage],
) -> Option<BTreeMap<String, Vec<String>>> {
    if packages.iter().any(|p| p.required_by.is_empty()) {
        return None;
    }
    let names: BTreeSet<&str> = packages.iter().map(|p| p.name.as_str()).collect();
    let mut deps: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for package in packages {
        for by in &package.required_by {
            // A package, possibly with extras (`name[extra]`); requirement lines are not.
            let owner = normalize_name(by.split('[').next().unwrap_or(by));
            if names.contains(owner.as_str()) {
                deps.entry(owner)
                    .or_default()
                    .push(package.name.to_string());
            }
        }
    }
    for list in deps.values_mut() {
        list.sort();
        list.dedup();
    }
    Some(deps)
}
