//! The dynamic import check: the bundle's own python, in the sandbox, imports every module
//! the recipe names, and reports where each came from and every file any import loaded.
//!
//! Each module is imported by a fresh interpreter of its own, as an application that imports
//! only it would, and up to as many interpreters run at once as the build has jobs
//! (`rayon`'s pool, which `-j` sizes). Importing is single-threaded Python, so one process
//! for all of them left a core idle on the critical path of a realise (the import of one
//! big package, beside a ZIP that finished first). What one module's import loads does not
//! depend on what else ran beside it, so the report is the same at every `-j`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::{DynamicReport, RunProblem, ValidateError};
use crate::build::sandbox::{output_with_timeout, Input, Sandbox, SandboxError, Spec};
use crate::python::interpreter::InterpreterInfo;

/// How long the imports may take: a module that hangs on import must not hang realise.
const IMPORT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// The script the bundle's python runs: imports each argument and prints, as JSON, each
/// module's file (or its namespace path, or `built-in`), errors, and every loaded module's file.
///
/// Then it freezes the garbage collector's view of everything the imports made, so that the
/// interpreter's exit skips the final cycle collection, which would walk that whole heap and
/// free what the modules hold: for anthropic alone (3,200 modules, 2,100 pydantic models) that
/// was 0.3 s of a 1.2 s run, on the critical path of every realise that builds a new bundle.
/// The exit still runs the atexit handlers and flushes the streams, and the check still waits
/// for its status: a handler that ends the process with another status, or crashes it, fails
/// the check. (An exception in a handler or in a `__del__` never changed the status: CPython
/// prints it and goes on.) What the check no longer sees is a crash while freeing those objects
/// at exit (a finaliser or an extension's deallocator that aborts): CPython does not promise
/// to finalise objects still alive when the interpreter exits, and an application that ends
/// with `os._exit` never does.
const IMPORT_SCRIPT: &str = r#"
import gc, importlib, json, sys
report = {"modules": {}, "errors": {}, "loaded": {}}
for name in sys.argv[1:]:
    try:
        module = importlib.import_module(name)
    except BaseException as e:
        report["errors"][name] = "%s: %s" % (type(e).__name__, e)
        continue
    spec = getattr(module, "__spec__", None)
    file = getattr(module, "__file__", None)
    if file:
        report["modules"][name] = [file]
    elif spec is not None and spec.origin in ("built-in", "frozen"):
        report["modules"][name] = []
    else:
        report["modules"][name] = list(getattr(module, "__path__", []))
for name, module in sorted(sys.modules.items()):
    file = getattr(module, "__file__", None)
    if isinstance(file, str):
        report["loaded"][name] = file
sys.stdout.write(json.dumps(report, sort_keys=True))
sys.stdout.flush()
gc.freeze()
"#;

#[derive(Default, Deserialize)]
struct ImportReport {
    modules: BTreeMap<String, Vec<String>>,
    errors: BTreeMap<String, String>,
    loaded: BTreeMap<String, String>,
}

/// The dynamic check: imports `modules` with the bundle's python in the sandbox.
pub(super) fn run_imports(
    root: &Path,
    target_name: &str,
    info: &InterpreterInfo,
    modules: &[String],
    sandbox: &Sandbox,
    scratch: &Path,
) -> Result<DynamicReport, ValidateError> {
    // With no module named, one interpreter still starts: what its startup loads must come
    // from the bundle too.
    let units: Vec<&[String]> = if modules.is_empty() {
        vec![&[]]
    } else {
        modules.chunks(1).collect()
    };
    let report = import_each(&units, |index, unit| {
        // Each interpreter gets a sandbox root and /build of its own.
        let scratch = scratch.join(index.to_string());
        std::fs::create_dir(&scratch).map_err(|source| ValidateError::Sandbox {
            target: target_name.to_owned(),
            cause: SandboxError::Prepare {
                path: scratch.clone(),
                source,
            },
        })?;
        let spec = import_spec(root, info, unit, &scratch);
        run_import_script(root, target_name, info, unit, sandbox, &spec)
    })?;
    let level = sandbox.level();
    if let Some((module, python_error)) = report.errors.into_iter().next() {
        return Err(ValidateError::ImportFailed {
            target: target_name.to_owned(),
            module,
            level,
            python_error,
        });
    }
    let inside = sandbox.input_path("bundle", root);
    let outside = |module: &str, file: &str| ValidateError::OutsideBundle {
        target: target_name.to_owned(),
        module: module.to_owned(),
        file: file.to_owned(),
        level,
    };
    let mut seen = BTreeMap::new();
    for module in modules {
        let files = report.modules.get(module).cloned().unwrap_or_default();
        let mut shown = Vec::new();
        for file in &files {
            shown.push(bundle_relative(&inside, file).ok_or_else(|| outside(module, file))?);
        }
        seen.insert(
            module.clone(),
            if files.is_empty() {
                "built-in".to_owned()
            } else {
                shown.join(":")
            },
        );
    }
    for (module, file) in &report.loaded {
        if bundle_relative(&inside, file).is_none() {
            return Err(outside(module, file));
        }
    }
    Ok(DynamicReport {
        sandbox: level.as_str().to_owned(),
        modules: seen,
        loaded: report.loaded.len(),
    })
}

/// Runs `import_one` for every unit (a list of modules one interpreter imports, with its
/// index), as many at once as the rayon pool has threads, and merges the reports: each
/// module's own entries, the union of what they loaded. A failure to run is reported for the
/// first unit in order that had one, so the error does not depend on which interpreter
/// finished first. Plain threads, not rayon tasks: they only wait for a child process, and a
/// rayon thread blocked in a wait would keep the ZIP beside the validation from using it.
fn import_each(
    units: &[&[String]],
    import_one: impl Fn(usize, &[String]) -> Result<ImportReport, ValidateError> + Sync,
) -> Result<ImportReport, ValidateError> {
    let results = crate::parallel::map_in_order(units, rayon::current_num_threads(), |i, unit| {
        import_one(i, unit)
    });
    let mut merged = ImportReport::default();
    for report in results {
        let report = report?;
        merged.modules.extend(report.modules);
        merged.errors.extend(report.errors);
        merged.loaded.extend(report.loaded);
    }
    Ok(merged)
}

/// The sandbox spec running [`IMPORT_SCRIPT`] on `modules` with the bundle at `root`.
fn import_spec(root: &Path, info: &InterpreterInfo, modules: &[String], scratch: &Path) -> Spec {
    let scripts = Path::new(&info.executable)
        .parent()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    // -B: no byte code written into the bundle, whatever the level (without namespaces, root
    // could write into the read-only store entry).
    let mut args: Vec<std::ffi::OsString> =
        vec!["-I".into(), "-B".into(), "-c".into(), IMPORT_SCRIPT.into()];
    args.extend(modules.iter().map(Into::into));
    Spec {
        inputs: vec![Input {
            label: "bundle".into(),
            host: root.to_path_buf(),
        }],
        scratch: scratch.to_path_buf(),
        program: ("bundle".into(), info.executable.clone()),
        args,
        path: vec![("bundle".into(), scripts)],
        system_libraries: true,
        source_date_epoch: None,
    }
}

/// Runs `spec` (the import script) in `sandbox` and reads its report.
fn run_import_script(
    root: &Path,
    target_name: &str,
    info: &InterpreterInfo,
    modules: &[String],
    sandbox: &Sandbox,
    spec: &Spec,
) -> Result<ImportReport, ValidateError> {
    let program = sandbox.input_path("bundle", root).join(&info.executable);
    let run_error = |problem: RunProblem| ValidateError::Run {
        target: target_name.to_owned(),
        program: program.clone(),
        problem,
    };
    let mut command = sandbox
        .command(spec)
        .map_err(|cause| ValidateError::Sandbox {
            target: target_name.to_owned(),
            cause,
        })?;
    let output = output_with_timeout(&mut command, IMPORT_TIMEOUT)
        .map_err(|e| run_error(RunProblem::Start(e)))?
        .ok_or_else(|| {
            run_error(RunProblem::TimedOut {
                modules: modules.join(", "),
                seconds: IMPORT_TIMEOUT.as_secs(),
            })
        })?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(run_error(RunProblem::Exited {
            status: output.status,
            stderr: stderr.trim().to_owned(),
        }));
    }
    serde_json::from_slice(&output.stdout).map_err(|source| {
        run_error(RunProblem::Report {
            source,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        })
    })
}

/// `file` relative to the bundle as the sandbox shows it (`inside`); `None` when it lies
/// outside.
fn bundle_relative(inside: &Path, file: &str) -> Option<String> {
    let rel = Path::new(file).strip_prefix(inside).ok()?;
    // `..` in a reported path could climb out of the bundle again.
    if rel
        .components()
        .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return None;
    }
    Some(rel.to_string_lossy().into_owned())
}
