//! Hashed requirements files (pip-compile `--generate-hashes`, `uv pip compile
//! --generate-hashes`, `pystore lock --export-requirements`) taken as the lock of one target,
//! without choosing any version (`pystore lock --from-requirements TARGET=FILE`).
//!
//! For each line that applies to the target, the wheel pinned is the one whose sha256 the line
//! lists and whose tags fit the target (the best fitting, as `pystore lock` would choose). Its
//! file name and size come from the wheelhouses when one of their files has a listed hash (then
//! no request is made), else from the index. Then the requirements are resolved against exactly
//! those wheels ([`pin_target`]): that checks every requirement is pinned at a version it allows
//! and every dependency is pinned, and records what required each package just as `pystore lock`
//! does, so a target's exported requirements file imports back into the identical lock.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::hashed::{pins_for_target, read_hashed, HashedError, HashedPin};
use super::source::IndexSource;
use crate::fetch::index::{IndexFile, ProjectPage};
use crate::hash::Sha256Digest;
use crate::python::filename::{TagPriorities, WheelFilename};
use crate::python::metadata::CoreMetadata;
use crate::python::requirements::RequirementsFile;
use crate::python::resolve::{
    resolve, PackageSource, ResolveError, ResolveInput, ResolvedPackage, SourceError,
};
use crate::python::Target;

/// Why a hashed requirements file cannot be imported as a target's lock.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file, or one of its lines.
    #[error(transparent)]
    File(#[from] HashedError),
    /// The same target named twice.
    #[error("--from-requirements names target {target} twice ({} and {})", first.display(), second.display())]
    Twice {
        target: String,
        first: PathBuf,
        second: PathBuf,
    },
    /// A line whose wheel cannot be found or does not fit.
    #[error("{file}:{line}: {pin}: {problem}")]
    Pin {
        file: String,
        line: usize,
        pin: String,
        #[source]
        problem: WheelProblem,
    },
    /// The pins do not satisfy the recipe's requirements.
    #[error("{}: target {target}: the pins do not satisfy {recipe}'s requirements, so the file is not a lock of them; regenerate it from the recipe's requirements for this target, or change them\n{source}", path.display())]
    Unsatisfied {
        path: PathBuf,
        target: String,
        recipe: String,
        source: ResolveError,
    },
    /// A pin nothing in the recipe's requirements needs.
    #[error("{}:{line}: {pin} is not needed by {recipe}'s requirements for target {target}; pystore installs exactly what the requirements need: remove the line, or add {name} to the requirements", path.display())]
    Unneeded {
        path: PathBuf,
        line: usize,
        pin: String,
        name: String,
        recipe: String,
        target: String,
    },
}

/// Why no wheel can be pinned for a line.
#[derive(Debug, thiserror::Error)]
pub enum WheelProblem {
    /// Asking the index or a wheelhouse failed.
    #[error("{0}")]
    Source(#[source] SourceError),
    /// No file has any of the line's hashes.
    #[error("no file with any of its {hashes} sha256 hashes in {}; put the wheel in a wheelhouse (--find-links DIR), check the index configuration, or regenerate the file", join_asked(.asked))]
    NotFound { hashes: usize, asked: Vec<Asked> },
    /// Files with its hashes exist, but none fits the target.
    #[error("the files with its hashes ({}) do not fit target {target_name} ({target}); regenerate the file for this target, or add the hash of a wheel that fits", .files.join(", "))]
    NoFit {
        files: Vec<String>,
        target_name: String,
        target: Target,
    },
}

/// Where a line's wheel was looked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Asked {
    /// The wheelhouses (described).
    Wheelhouses(String),
    /// The index.
    Index,
    /// Nowhere: there is neither.
    Nowhere,
}

impl std::fmt::Display for Asked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Asked::Wheelhouses(described) => write!(f, "the wheelhouses ({described})"),
            Asked::Index => f.write_str("the index"),
            Asked::Nowhere => {
                f.write_str("no wheelhouse (--find-links) and no index (--no-index or --offline)")
            }
        }
    }
}

fn join_asked(asked: &[Asked]) -> String {
    let texts: Vec<String> = asked.iter().map(Asked::to_string).collect();
    texts.join(" or ")
}

/// A project the pinned file does not pin, though the requirements need it (what the pinned
/// source answers the resolver, which names the project).
#[derive(Debug, thiserror::Error)]
#[error("{} pins no {name} for target {target}, though the requirements need it; add it to the file (regenerate the file for this target)", path.display())]
pub struct NotInFile {
    path: PathBuf,
    name: String,
    target: String,
}

/// Resolves `requirements` for `target` (named `target_name`; `recipe` names the recipe in
/// messages) against exactly the wheels the hashed requirements `file` pins, found through
/// `source`: the packages to lock, or why the file is not a lock of those requirements (boxed,
/// as it carries the most context).
pub fn pin_target(
    source: &IndexSource<'_, '_>,
    recipe: &str,
    target: &Target,
    target_name: &str,
    requirements: &RequirementsFile,
    file: &Path,
) -> Result<Vec<ResolvedPackage>, Box<ImportError>> {
    let tname = target_name;
    let pins = read_hashed(file).map_err(ImportError::from)?;
    let applicable = pins_for_target(file, &pins, target, tname).map_err(ImportError::from)?;
    let priorities = TagPriorities::new(target);
    let mut chosen: BTreeMap<String, (IndexFile, &HashedPin)> = BTreeMap::new();
    for pin in applicable {
        let wheel = find_wheel(source, pin, &priorities, target, tname)?;
        chosen.insert(pin.name.to_string(), (wheel, pin));
    }
    let pinned = Pinned {
        inner: source,
        files: chosen
            .iter()
            .map(|(name, (wheel, _))| (name.clone(), wheel.clone()))
            .collect(),
        path: file,
        target: tname,
    };
    let input = ResolveInput {
        target,
        requirements,
        preferences: BTreeMap::new(),
    };
    let resolved = resolve(&pinned, &input).map_err(|source| ImportError::Unsatisfied {
        path: file.to_path_buf(),
        target: tname.to_owned(),
        recipe: recipe.to_owned(),
        source,
    })?;
    let needed: BTreeSet<&str> = resolved.iter().map(|p| p.name.as_str()).collect();
    if let Some((name, (_, pin))) = chosen.iter().find(|(n, _)| !needed.contains(n.as_str())) {
        return Err(Box::new(ImportError::Unneeded {
            path: file.to_path_buf(),
            line: pin.origin.line,
            pin: format!("{}=={}", pin.name, pin.version),
            name: name.clone(),
            recipe: recipe.to_owned(),
            target: tname.to_owned(),
        }));
    }
    Ok(resolved)
}

/// A wheel the index or a wheelhouse offers for a pin, with its sha256 (known or measured).
struct Candidate {
    rank: Option<usize>,
    file: IndexFile,
    sha256: Sha256Digest,
}

/// The wheel `pin` names for the target: a file of its version whose sha256 the line lists and
/// whose tags fit, the best fitting one; the wheelhouses' files first (the index is asked only
/// when none of theirs is such a file).
fn find_wheel(
    source: &IndexSource<'_, '_>,
    pin: &HashedPin,
    priorities: &TagPriorities,
    target: &Target,
    target_name: &str,
) -> Result<IndexFile, Box<ImportError>> {
    let pin_error = |problem: WheelProblem| ImportError::Pin {
        file: pin.origin.file.display().to_string(),
        line: pin.origin.line,
        pin: format!("{}=={}", pin.name, pin.version),
        problem,
    };
    let source_error = |error: SourceError| pin_error(WheelProblem::Source(error));
    let mut matched: Vec<Candidate> = Vec::new();
    let local = source.wheelhouses().files.get(pin.name.as_str());
    for file in local.into_iter().flatten() {
        if let Some(candidate) =
            candidate(source, pin, priorities, file, true).map_err(source_error)?
        {
            matched.push(candidate);
        }
    }
    let fits_locally = matched.iter().any(|c| c.rank.is_some());
    let mut asked = Vec::new();
    if !source.wheelhouses().dirs.is_empty() {
        asked.push(Asked::Wheelhouses(source.wheelhouses().describe()));
    }
    if !fits_locally && source.index().is_some() {
        asked.push(Asked::Index);
        // The source's page (kept for the next target), less the wheelhouse files it merges in.
        let page = source.project(pin.name.as_str()).map_err(source_error)?;
        let in_wheelhouse =
            |file: &IndexFile| local.is_some_and(|l| l.iter().any(|w| w.url == file.url));
        for file in page.files.iter().filter(|f| !in_wheelhouse(f)) {
            if let Some(candidate) =
                candidate(source, pin, priorities, file, false).map_err(source_error)?
            {
                matched.push(candidate);
            }
        }
    }
    let best = matched
        .iter()
        .filter_map(|c| Some((c.rank?, &c.file.filename, c)))
        .min_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    if let Some((_, _, candidate)) = best {
        let mut file = candidate.file.clone();
        // The line pins these exact bytes, which PEP 592 allows even when the file is yanked.
        file.yanked = None;
        file.hashes
            .insert("sha256".to_owned(), candidate.sha256.to_string());
        if file.size.is_none() {
            let (size, _) = source.facts(&file).map_err(source_error)?;
            file.size = Some(size);
        }
        return Ok(file);
    }
    if asked.is_empty() {
        asked.push(Asked::Nowhere);
    }
    let problem = if matched.is_empty() {
        WheelProblem::NotFound {
            hashes: pin.sha256.len(),
            asked,
        }
    } else {
        WheelProblem::NoFit {
            files: matched.iter().map(|c| c.file.filename.clone()).collect(),
            target_name: target_name.to_owned(),
            target: *target,
        }
    };
    Err(Box::new(pin_error(problem)))
}

/// `file` as a candidate for `pin`: a wheel of the pin's version with a listed sha256 (its rank
/// for the target, `None` when its tags do not fit). A file whose sha256 is unknown is measured:
/// a local one always, a remote one only when it fits (downloading others would be wasted).
fn candidate(
    source: &IndexSource<'_, '_>,
    pin: &HashedPin,
    priorities: &TagPriorities,
    file: &IndexFile,
    local: bool,
) -> Result<Option<Candidate>, SourceError> {
    let Ok(wheel) = WheelFilename::parse(&file.filename) else {
        return Ok(None);
    };
    if wheel.normalized_name() != pin.name.as_str() || wheel.version != pin.version {
        return Ok(None);
    }
    let rank = priorities.rank(&wheel);
    let sha256 = match file.sha256() {
        Some(sha256) => sha256,
        None if local || rank.is_some() => source.facts(file)?.1,
        None => return Ok(None),
    };
    if !pin.sha256.contains(&sha256) {
        return Ok(None);
    }
    Ok(Some(Candidate {
        rank,
        file: file.clone(),
        sha256,
    }))
}

/// The chosen wheels as the only files there are: resolving the requirements against
/// them checks the pins and records what required each package.
struct Pinned<'s, 'f, 'i> {
    inner: &'s IndexSource<'f, 'i>,
    files: BTreeMap<String, IndexFile>,
    path: &'s Path,
    target: &'s str,
}

impl PackageSource for Pinned<'_, '_, '_> {
    fn project(&self, name: &str) -> Result<ProjectPage, SourceError> {
        match self.files.get(name) {
            Some(file) => Ok(ProjectPage {
                name: name.to_owned(),
                files: vec![file.clone()],
            }),
            None => Err(Box::new(NotInFile {
                path: self.path.to_path_buf(),
                name: name.to_owned(),
                target: self.target.to_owned(),
            })),
        }
    }

    fn metadata(&self, file: &IndexFile) -> Result<CoreMetadata, SourceError> {
        self.inner.metadata(file)
    }

    fn prefetch_metadata(&self, files: &[IndexFile]) {
        self.inner.prefetch_metadata(files);
    }
}
