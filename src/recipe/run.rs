//! `pystore run`: realise (or reuse) one target's bundle, then run its python in the sandbox.

use std::ffi::OsString;
use std::process::ExitStatus;

use super::realise::{realise, Outcome, RealiseOptions, RealiseRecipeError};
use super::Recipe;
use crate::build::sandbox::{Input, Level, Sandbox, SandboxError, Spec};
use crate::bundle::validate::runs_here;
use crate::fetch::Fetcher;
use crate::python::interpreter::InterpreterInfo;
use crate::store::Store;

/// Why a bundle could not be run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Realising failed.
    #[error(transparent)]
    Realise(#[from] RealiseRecipeError),
    /// `--target` is required when the recipe has several.
    #[error("{recipe} has several targets ({}); say which to run with --target NAME", targets.join(", "))]
    WhichTarget {
        /// The recipe.
        recipe: String,
        /// Its targets.
        targets: Vec<String>,
    },
    /// The target's bundle cannot run on this machine.
    #[error("target {target} ({triple}) cannot run on this machine; only Linux glibc bundles of this machine's architecture run here")]
    CannotRunHere {
        /// The target.
        target: String,
        /// Its platform.
        triple: String,
    },
    /// The sandbox.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// Starting the program.
    #[error("cannot start the bundle's python {program}: {problem}")]
    Start {
        /// The program.
        program: String,
        /// What went wrong.
        #[source]
        problem: StartProblem,
    },
}

/// Why the bundle's python could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartProblem {
    /// Realise handed back no bundle for the target.
    #[error("the target was not realised")]
    NotRealised,
    /// The bundle's interpreter metadata.
    #[error("cannot read its interpreter metadata: {0}")]
    Metadata(#[source] std::io::Error),
    /// Scratch space for the sandbox.
    #[error("cannot create a scratch directory: {0}")]
    Scratch(#[source] std::io::Error),
    /// The sandboxed process did not start. Said as the sandbox's failing step where the error
    /// carries one (it is then no plain OS error, so it is not offered as a source).
    #[error("{}", start_error(.0))]
    Spawn(std::io::Error),
}

/// What ran.
#[derive(Debug)]
pub struct RunOutcome {
    /// The program's exit status.
    pub status: ExitStatus,
    /// The sandbox level it ran at.
    pub level: Level,
}

/// Realises `target` of `recipe` with `options` and runs the bundle's python with `args` in
/// the sandbox (stdin, stdout and stderr are the caller's). `-B` comes first: nothing may write
/// byte code into the store, whatever the sandbox level.
pub fn run(
    store: &Store,
    fetcher: &Fetcher<'_>,
    find_links: &[std::path::PathBuf],
    recipe: &Recipe,
    target: Option<&str>,
    options: &RealiseOptions,
    args: &[OsString],
) -> Result<RunOutcome, RunError> {
    let name = match target {
        Some(name) => name.to_owned(),
        None if recipe.targets.len() == 1 => recipe.targets[0].spec.name.clone(),
        None => {
            return Err(RunError::WhichTarget {
                recipe: recipe.name.clone(),
                targets: recipe.targets.iter().map(|t| t.spec.name.clone()).collect(),
            })
        }
    };
    if let Some(t) = recipe.targets.iter().find(|t| t.spec.name == name) {
        let parsed = t.spec.target(&recipe.python).ok();
        if !parsed.as_ref().is_some_and(runs_here) {
            return Err(RunError::CannotRunHere {
                target: name,
                triple: t.spec.platform.triple().to_owned(),
            });
        }
    }
    let options = RealiseOptions {
        targets: vec![name.clone()],
        dry_run: false,
        out_dir: None,
        ..options.clone()
    };
    let bundle = match realise(store, fetcher, find_links, recipe, &options)? {
        Outcome::Realised(mut targets, _) if !targets.is_empty() => targets.remove(0).bundle,
        _ => {
            return Err(RunError::Start {
                program: name,
                problem: StartProblem::NotRealised,
            })
        }
    };
    let info = InterpreterInfo::read(&bundle.path).map_err(|e| RunError::Start {
        program: bundle.path.display().to_string(),
        problem: StartProblem::Metadata(e),
    })?;
    let sandbox = Sandbox::new(options.sandbox)?;
    let scratch = tempfile::Builder::new()
        .prefix("pystore-run")
        .tempdir()
        .map_err(|e| RunError::Start {
            program: info.executable.clone(),
            problem: StartProblem::Scratch(e),
        })?;
    let scripts = std::path::Path::new(&info.executable)
        .parent()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut full_args: Vec<OsString> = vec!["-B".into()];
    full_args.extend(args.iter().cloned());
    let spec = Spec {
        inputs: vec![Input {
            label: "bundle".into(),
            host: bundle.path.clone(),
        }],
        scratch: scratch.path().to_path_buf(),
        program: ("bundle".into(), info.executable.clone()),
        args: full_args,
        path: vec![("bundle".into(), scripts)],
        system_libraries: true,
        source_date_epoch: options.source_date_epoch,
    };
    let program = sandbox
        .input_path("bundle", &bundle.path)
        .join(&info.executable)
        .display()
        .to_string();
    let status = sandbox
        .command(&spec)?
        .status()
        .map_err(|e| RunError::Start {
            program: program.clone(),
            problem: StartProblem::Spawn(e),
        })?;
    Ok(RunOutcome {
        status,
        level: sandbox.level(),
    })
}

fn start_error(e: &std::io::Error) -> String {
    #[cfg(target_os = "linux")]
    if let Some(raw) = e.raw_os_error() {
        return crate::build::sandbox::linux::describe(raw);
    }
    e.to_string()
}
