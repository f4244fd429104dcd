//! The pubgrub `DependencyProvider` over a [`PackageSource`], and what makes a version a
//! candidate for a target.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::rc::Rc;
use std::str::FromStr;

use pep440_rs::{Version, VersionSpecifiers};
use pep508_rs::{ExtraName, MarkerEnvironment, Requirement, VersionOrUrl};
use pubgrub::{
    DefaultStringReporter, Dependencies, DependencyConstraints, DependencyProvider,
    PackageResolutionStatistics, PubGrubError, Ranges, Reporter,
};

use super::ranges::{exact_pin, names_prerelease, specifiers_to_ranges};
use super::{PackageSource, ResolveError, ResolveInput, ResolvedPackage};
use crate::fetch::index::IndexFile;
use crate::fetch::name::{normalize_name, PackageName};
use crate::python::markers::marker_environment;
use crate::python::metadata::CoreMetadata;
use crate::python::requirements::Origin;
use crate::python::tags::target_tags;
use crate::python::{TagPriorities, Target, WheelFilename};

/// A pubgrub package: the requirements themselves, a project, or a project with one extra.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pkg {
    /// The requirements file (pubgrub's root).
    Root,
    /// A project, by normalised name.
    Base(String),
    /// A project with an extra: depends on `Base` at the same version, plus the extra's
    /// dependencies.
    Extra(String, String),
}

impl Pkg {
    fn name(&self) -> Option<&str> {
        match self {
            Pkg::Root => None,
            Pkg::Base(name) | Pkg::Extra(name, _) => Some(name),
        }
    }
}

impl fmt::Display for Pkg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pkg::Root => f.write_str("the recipe"),
            Pkg::Base(name) => f.write_str(name),
            Pkg::Extra(name, extra) => write!(f, "{name}[{extra}]"),
        }
    }
}

/// A project's usable versions for the target, and why the others are not.
#[derive(Debug, Default)]
struct Project {
    /// Best-ranked compatible wheel per version.
    candidates: BTreeMap<Version, IndexFile>,
    /// Versions without a candidate wheel, with the reasons.
    rejected: BTreeMap<Version, BTreeSet<String>>,
    /// Whether some version was rejected only for lack of a wheel for the target's tags.
    missing_wheels: bool,
    /// Whether the index lists anything at all.
    listed: bool,
}

type Deps = Vec<(Pkg, Ranges<Version>)>;

pub(super) struct Provider<'a> {
    source: &'a dyn PackageSource,
    target: &'a Target,
    env: MarkerEnvironment,
    tags: TagPriorities,
    python: Version,
    pre_everywhere: bool,
    /// Projects for which a specifier names a pre-release.
    pre: RefCell<BTreeSet<String>>,
    /// Exact pins from requirements and constraints: a yanked file of that version is usable.
    pins: BTreeMap<String, BTreeSet<Version>>,
    /// `--hash=sha256:` values of requirement lines: only those files may be used (as pip's
    /// hash-checking mode).
    hashes: BTreeMap<String, BTreeSet<String>>,
    constraints: BTreeMap<String, Ranges<Version>>,
    root: Deps,
    root_origins: BTreeMap<String, Vec<Origin>>,
    preferences: BTreeMap<String, Version>,
    projects: RefCell<BTreeMap<String, Rc<Project>>>,
    metadata: RefCell<BTreeMap<(String, Version), Rc<CoreMetadata>>>,
    /// Dependencies as given to pubgrub, for `required_by`.
    edges: RefCell<BTreeMap<(Pkg, Version), Deps>>,
    /// Why `choose_version` found nothing, per package, for the error message.
    notes: RefCell<BTreeMap<String, String>>,
}

impl<'a> Provider<'a> {
    pub(super) fn new(
        source: &'a dyn PackageSource,
        input: &ResolveInput<'a>,
    ) -> Result<Provider<'a>, ResolveError> {
        let target = input.target;
        let env = marker_environment(target)?;
        let python = Version::from_str(&target.python.to_string()).map_err(|e| {
            ResolveError::NoSolution {
                target: target.to_string(),
                explanation: format!("the target's Python version is not a PEP 440 version: {e}"),
            }
        })?;
        let mut provider = Provider {
            source,
            target,
            env,
            tags: TagPriorities::new(target),
            python,
            pre_everywhere: input.requirements.pre,
            pre: RefCell::default(),
            pins: BTreeMap::new(),
            hashes: BTreeMap::new(),
            constraints: BTreeMap::new(),
            root: Vec::new(),
            root_origins: BTreeMap::new(),
            preferences: input.preferences.clone(),
            projects: RefCell::default(),
            metadata: RefCell::default(),
            edges: RefCell::default(),
            notes: RefCell::default(),
        };
        for line in &input.requirements.constraints {
            let req = &line.requirement;
            if !req.marker.evaluate(&provider.env, &[]) {
                continue;
            }
            let name = normalize_name(req.name.as_ref());
            let ranges = provider.note_specifiers(&name, req);
            let entry = provider
                .constraints
                .entry(name)
                .or_insert_with(Ranges::full);
            *entry = entry.intersection(&ranges);
        }
        let mut root = Vec::new();
        for line in &input.requirements.requirements {
            let req = &line.requirement;
            if !req.marker.evaluate(&provider.env, &[]) {
                continue;
            }
            let name = normalize_name(req.name.as_ref());
            provider.note_specifiers(&name, req);
            let sha256s = line
                .hashes
                .iter()
                .filter(|(algo, _)| algo == "sha256")
                .map(|(_, hex)| hex.clone());
            if !line.hashes.is_empty() {
                provider
                    .hashes
                    .entry(name.clone())
                    .or_default()
                    .extend(sha256s);
            }
            provider
                .root_origins
                .entry(name)
                .or_default()
                .push(line.origin.clone());
            root.push(req.clone());
        }
        provider.root = provider.dependencies_of(None, &root, &[]);
        Ok(provider)
    }

    /// Records pre-release allowance and exact pins named by `req`; its version set.
    fn note_specifiers(&mut self, name: &str, req: &Requirement) -> Ranges<Version> {
        let Some(VersionOrUrl::VersionSpecifier(specifiers)) = &req.version_or_url else {
            return Ranges::full();
        };
        if let Some(pin) = exact_pin(specifiers) {
            self.pins.entry(name.to_owned()).or_default().insert(pin);
        }
        if names_prerelease(specifiers) {
            self.pre.borrow_mut().insert(name.to_owned());
        }
        specifiers_to_ranges(specifiers)
    }

    /// pubgrub dependencies for requirements `reqs` of `owner` (None: the root); markers are
    /// evaluated with `extras`.
    fn dependencies_of(
        &self,
        owner: Option<&str>,
        reqs: &[Requirement],
        extras: &[ExtraName],
    ) -> Deps {
        let mut deps: Deps = Vec::new();
        let mut add =
            |pkg: Pkg, ranges: &Ranges<Version>| match deps.iter_mut().find(|(p, _)| *p == pkg) {
                Some((_, existing)) => *existing = existing.intersection(ranges),
                None => deps.push((pkg, ranges.clone())),
            };
        for req in reqs {
            if !req.marker.evaluate(&self.env, extras) {
                continue;
            }
            let name = normalize_name(req.name.as_ref());
            let mut ranges = match &req.version_or_url {
                Some(VersionOrUrl::VersionSpecifier(specifiers)) => {
                    if names_prerelease(specifiers) {
                        self.pre.borrow_mut().insert(name.clone());
                    }
                    specifiers_to_ranges(specifiers)
                }
                _ => Ranges::full(),
            };
            if let Some(constraint) = self.constraints.get(&name) {
                ranges = ranges.intersection(constraint);
            }
            for extra in &req.extras {
                add(Pkg::Extra(name.clone(), extra.to_string()), &ranges);
            }
            // A project depending on itself (through its own extras) adds nothing to its base.
            if owner != Some(name.as_str()) {
                add(Pkg::Base(name), &ranges);
            }
        }
        deps
    }

    fn project(&self, name: &str) -> Result<Rc<Project>, ResolveError> {
        if let Some(project) = self.projects.borrow().get(name) {
            return Ok(project.clone());
        }
        let page = self
            .source
            .project(name)
            .map_err(|source| ResolveError::Source {
                package: name.to_owned(),
                error: source,
            })?;
        let mut project = Project {
            listed: !page.files.is_empty(),
            ..Project::default()
        };
        let pins = self.pins.get(name);
        let allowed_hashes = self.hashes.get(name);
        let mut best: BTreeMap<Version, (usize, IndexFile)> = BTreeMap::new();
        for file in &page.files {
            let Ok(wheel) = WheelFilename::parse(&file.filename) else {
                if let Some(version) = sdist_version(name, &file.filename) {
                    project
                        .rejected
                        .entry(version)
                        .or_default()
                        .insert("only a source distribution (pystore installs wheels only and does not build sdists)".into());
                }
                continue;
            };
            if wheel.normalized_name() != name {
                continue;
            }
            let version = wheel.version.clone();
            let reject = |project: &mut Project, reason: String| {
                project
                    .rejected
                    .entry(version.clone())
                    .or_default()
                    .insert(reason);
            };
            if let Some(allowed) = allowed_hashes {
                if !file
                    .hashes
                    .get("sha256")
                    .is_some_and(|h| allowed.contains(h))
                {
                    reject(
                        &mut project,
                        format!(
                            "{}: its sha256 is not among the requirement's --hash values",
                            file.filename
                        ),
                    );
                    continue;
                }
            }
            if file.yanked.is_some() && !pins.is_some_and(|p| p.contains(&version)) {
                reject(&mut project, "yanked".into());
                continue;
            }
            if let Some(spec) = &file.requires_python {
                let admits = VersionSpecifiers::from_str(spec)
                    .map(|s| s.contains(&self.python))
                    .unwrap_or(true);
                if !admits {
                    reject(&mut project, format!("requires Python {spec}"));
                    continue;
                }
            }
            let Some(rank) = self.tags.rank(&wheel) else {
                reject(
                    &mut project,
                    format!("no wheel for the target ({})", file.filename),
                );
                project.missing_wheels = true;
                continue;
            };
            // Best tag first; the file name breaks ties so index order does not matter.
            let better = match best.get(&version) {
                None => true,
                Some((r, f)) => (rank, &file.filename) < (*r, &f.filename),
            };
            if better {
                best.insert(version, (rank, file.clone()));
            }
        }
        for (version, (_, file)) in best {
            project.rejected.remove(&version);
            project.candidates.insert(version, file);
        }
        let project = Rc::new(project);
        self.projects
            .borrow_mut()
            .insert(name.to_owned(), project.clone());
        Ok(project)
    }

    /// The version `choose_version` takes for `name` in `range`: the preferred one while it
    /// fits, else the newest candidate (pre-releases only where allowed).
    fn best_version(
        &self,
        name: &str,
        range: &Ranges<Version>,
        project: &Project,
    ) -> Option<Version> {
        let pre = self.allows_pre(name);
        let fits = |v: &Version| range.contains(v) && (pre || !v.any_prerelease());
        if let Some(preferred) = self.preferences.get(name) {
            if fits(preferred) && project.candidates.contains_key(preferred) {
                return Some(preferred.clone());
            }
        }
        project.candidates.keys().rev().find(|v| fits(v)).cloned()
    }

    /// Lets the source fetch, in parallel, what resolving `deps` will ask for next: their
    /// projects' pages, then the metadata of the version each would be chosen at now.
    fn prefetch(&self, deps: &Deps) {
        let names: BTreeSet<&str> = deps.iter().filter_map(|(pkg, _)| pkg.name()).collect();
        let missing: Vec<String> = names
            .iter()
            .filter(|name| !self.projects.borrow().contains_key(**name))
            .map(|name| (*name).to_owned())
            .collect();
        if missing.len() > 1 {
            self.source.prefetch_projects(&missing);
        }
        let mut files = Vec::new();
        for (pkg, range) in deps {
            let Some(name) = pkg.name() else { continue };
            // A page that fails here fails again, with its error, when pubgrub asks for it.
            let Ok(project) = self.project(name) else {
                continue;
            };
            if let Some(version) = self.best_version(name, range, &project) {
                let cached = self
                    .metadata
                    .borrow()
                    .contains_key(&(name.to_owned(), version.clone()));
                if let (false, Some(file)) = (cached, project.candidates.get(&version)) {
                    if !files
                        .iter()
                        .any(|f: &IndexFile| f.filename == file.filename)
                    {
                        files.push(file.clone());
                    }
                }
            }
        }
        if files.len() > 1 {
            self.source.prefetch_metadata(&files);
        }
    }

    fn allows_pre(&self, name: &str) -> bool {
        self.pre_everywhere || self.pre.borrow().contains(name)
    }

    fn metadata(&self, name: &str, version: &Version) -> Result<Rc<CoreMetadata>, ResolveError> {
        let key = (name.to_owned(), version.clone());
        if let Some(meta) = self.metadata.borrow().get(&key) {
            return Ok(meta.clone());
        }
        let project = self.project(name)?;
        let file = project
            .candidates
            .get(version)
            .ok_or_else(|| ResolveError::Source {
                package: name.to_owned(),
                error: format!("version {version} has no candidate wheel (a bug)").into(),
            })?;
        let meta = self
            .source
            .metadata(file)
            .map_err(|source| ResolveError::Source {
                package: format!("{name} {version}"),
                error: source,
            })?;
        if normalize_name(&meta.name) != name || meta.version != *version {
            return Err(ResolveError::MetadataMismatch {
                wheel: file.filename.clone(),
                expected: format!("{name} {version}"),
                found: format!("{} {}", meta.name, meta.version),
            });
        }
        let meta = Rc::new(meta);
        self.metadata.borrow_mut().insert(key, meta.clone());
        Ok(meta)
    }

    /// Explains why `name` has no version in `range` (kept for the error message).
    fn note_nothing_in(&self, name: &str, range: &Ranges<Version>, project: &Project) {
        let mut lines = Vec::new();
        if !project.listed {
            lines.push(format!("{name}: the index lists no files for it"));
        } else {
            let mut tried = Vec::new();
            for (version, reasons) in project.rejected.iter().rev() {
                if range.contains(version) {
                    let reasons: Vec<&str> = reasons.iter().map(String::as_str).collect();
                    tried.push(format!("  {version}: {}", reasons.join("; ")));
                }
            }
            for version in project.candidates.keys().rev() {
                if range.contains(version) && version.any_prerelease() {
                    tried.push(format!(
                        "  {version}: a pre-release (allow it with --pre, or name a pre-release in the specifier)"
                    ));
                }
            }
            if tried.is_empty() {
                return;
            }
            let heading = if project.missing_wheels {
                format!("no wheel of {name} fits {}; versions tried:", self.target)
            } else {
                format!("{name}: no usable version; versions tried:")
            };
            lines.push(heading);
            lines.extend(tried);
            if project.missing_wheels {
                lines.push(format!(
                    "  the target accepts wheels tagged like {}",
                    tag_examples(self.target)
                ));
                lines.push(
                    "  pystore installs wheels only; sdists are not built. Use a version with a wheel for this target, drop the requirement for it with a marker, or provide a wheel in a wheelhouse (--find-links)".into(),
                );
            }
        }
        self.notes
            .borrow_mut()
            .insert(name.to_owned(), lines.join("\n"));
    }

    pub(super) fn solve(self) -> Result<Vec<ResolvedPackage>, ResolveError> {
        let solution = match pubgrub::resolve(&self, Pkg::Root, Version::new([0])) {
            Ok(solution) => solution,
            Err(PubGrubError::NoSolution(mut tree)) => {
                tree.collapse_no_versions();
                // The root's version is a placeholder: "the recipe 0" reads as "the recipe".
                let report =
                    DefaultStringReporter::report(&tree).replace("the recipe 0", "the recipe");
                let mut explanation = String::new();
                for (name, note) in self.notes.borrow().iter() {
                    if report.contains(name.as_str()) {
                        explanation.push_str(note);
                        explanation.push('\n');
                    }
                }
                explanation.push_str(&report);
                return Err(ResolveError::NoSolution {
                    target: self.target.to_string(),
                    explanation,
                });
            }
            Err(PubGrubError::ErrorRetrievingDependencies { source, .. })
            | Err(PubGrubError::ErrorChoosingVersion { source, .. })
            | Err(PubGrubError::ErrorInShouldCancel(source)) => return Err(source),
        };
        let mut chosen: BTreeMap<String, ResolvedPackage> = BTreeMap::new();
        for (pkg, version) in &solution {
            let Pkg::Base(name) = pkg else { continue };
            let project = self.project(name)?;
            let file =
                project
                    .candidates
                    .get(version)
                    .cloned()
                    .ok_or_else(|| ResolveError::Source {
                        package: name.clone(),
                        error: format!("chose {version} without a wheel (a bug)").into(),
                    })?;
            // Candidates are wheels whose names parsed when the page was read.
            let wheel = WheelFilename::parse(&file.filename).map_err(|e| ResolveError::Source {
                package: name.clone(),
                error: format!("{e} (a bug: it was a candidate)").into(),
            })?;
            chosen.insert(
                name.clone(),
                ResolvedPackage {
                    name: PackageName::new(name),
                    version: version.clone(),
                    wheel,
                    file,
                    requested_at: self.root_origins.get(name).cloned().unwrap_or_default(),
                    required_by: BTreeSet::new(),
                },
            );
        }
        for ((pkg, version), deps) in self.edges.borrow().iter() {
            // The root's edges are the requirement lines, recorded as `requested_at`.
            if *pkg == Pkg::Root || solution.get(pkg) != Some(version) {
                continue;
            }
            for (dep, _) in deps {
                let Some(dep_name) = dep.name() else { continue };
                if pkg.name() == Some(dep_name) {
                    continue;
                }
                if let Some(package) = chosen.get_mut(dep_name) {
                    package.required_by.insert(pkg.to_string());
                }
            }
        }
        Ok(chosen.into_values().collect())
    }
}

impl DependencyProvider for Provider<'_> {
    type P = Pkg;
    type V = Version;
    type VS = Ranges<Version>;
    type M = String;
    type Err = ResolveError;
    type Priority = (u32, Reverse<Pkg>);

    fn prioritize(
        &self,
        package: &Pkg,
        _range: &Ranges<Version>,
        stats: &PackageResolutionStatistics,
    ) -> Self::Priority {
        // Packages in conflicts first (they decide the most); then by name, for determinism.
        (stats.conflict_count(), Reverse(package.clone()))
    }

    fn choose_version(
        &self,
        package: &Pkg,
        range: &Ranges<Version>,
    ) -> Result<Option<Version>, ResolveError> {
        let Some(name) = package.name() else {
            return Ok(Some(Version::new([0])));
        };
        let project = self.project(name)?;
        let chosen = self.best_version(name, range, &project);
        if chosen.is_none() {
            self.note_nothing_in(name, range, &project);
        }
        Ok(chosen)
    }

    fn get_dependencies(
        &self,
        package: &Pkg,
        version: &Version,
    ) -> Result<Dependencies<Pkg, Ranges<Version>, String>, ResolveError> {
        let deps = match package {
            Pkg::Root => self.root.clone(),
            Pkg::Base(name) => {
                let meta = self.metadata(name, version)?;
                if let Some(spec) = &meta.requires_python {
                    if !spec.contains(&self.python) {
                        return Ok(Dependencies::Unavailable(format!(
                            "requires Python {spec}, and the target has {}",
                            self.python
                        )));
                    }
                }
                self.dependencies_of(Some(name), &meta.requires_dist, &[])
            }
            Pkg::Extra(name, extra) => {
                let meta = self.metadata(name, version)?;
                let extra_name = ExtraName::from_str(extra).map_err(|e| ResolveError::Source {
                    package: package.to_string(),
                    error: e.to_string().into(),
                })?;
                if !meta.provides_extra.contains(&extra_name) {
                    tracing::warn!("{name} {version} does not provide the extra {extra:?}");
                }
                // Only what the extra adds: the base's own dependencies come through the base.
                let extras = [extra_name];
                let only_with_extra: Vec<Requirement> = meta
                    .requires_dist
                    .iter()
                    .filter(|r| {
                        r.marker.evaluate(&self.env, &extras) && !r.marker.evaluate(&self.env, &[])
                    })
                    .cloned()
                    .collect();
                let mut deps = self.dependencies_of(Some(name), &only_with_extra, &extras);
                deps.push((Pkg::Base(name.clone()), Ranges::singleton(version.clone())));
                deps
            }
        };
        self.prefetch(&deps);
        self.edges
            .borrow_mut()
            .insert((package.clone(), version.clone()), deps.clone());
        let constraints: DependencyConstraints<Pkg, Ranges<Version>> = deps.into_iter().collect();
        Ok(Dependencies::Available(constraints))
    }
}

/// The version of a source distribution `name-VERSION.tar.gz` / `.zip`, if the name is one.
fn sdist_version(name: &str, filename: &str) -> Option<Version> {
    let stem = filename
        .strip_suffix(".tar.gz")
        .or_else(|| filename.strip_suffix(".zip"))?;
    let (project, version) = stem.rsplit_once('-')?;
    (normalize_name(project) == name)
        .then(|| Version::from_str(version).ok())
        .flatten()
}

/// A few of the target's tags, best first, and its most generic one.
fn tag_examples(target: &Target) -> String {
    let tags: Vec<String> = target_tags(target)
        .iter()
        .map(ToString::to_string)
        .collect();
    let mut shown: Vec<String> = tags.iter().take(3).cloned().collect();
    let generic = "py3-none-any".to_owned();
    if tags.len() > 3 && tags.contains(&generic) {
        shown.push("…".into());
        shown.push(generic);
    }
    shown.join(", ")
}
