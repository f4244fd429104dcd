//! The derivations a bundle is made of, as build-graph nodes: the interpreter unpacked from its
//! archive, each wheel installed for the target, the assembled bundle, its ZIP, and the ZIP's
//! provenance and SBOM.
//!
//! Each builder reads only its declared inputs and parameters; its name and version are part of
//! the entry id, so changing what a builder writes means bumping its version.

mod builders;

use std::sync::Arc;

use serde_json::json;

use self::builders::{
    build_bundle, build_bytecode, build_install, build_interpreter, build_provenance, build_sbom,
    build_validation, build_zip, Validation,
};
use super::assemble::Names;
use super::bytecode::Sources;
use super::inputs::{labelled, InputRole};
use super::manifest::{
    BundleManifest, BytecodeRef, InterpreterRef, PackageRef, RecipeRef, TargetRef,
};
use super::provenance::ProvenanceInputs;
use crate::archive::deflate;
use crate::archive::timestamp::DosDateTime;
use crate::build::sandbox::Sandbox;
use crate::build::{BuildError, Graph, NodeIndex};
use crate::python::interpreter::PbsFormat;
use crate::python::{LockedAs, Target};
use crate::sign::SecretKey;
use crate::store::EntryName;

/// How an interpreter archive is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveKind {
    /// python-build-standalone `install_only` tar.gz.
    PbsInstallOnly,
    /// python-build-standalone full tar.zst.
    PbsFull,
    /// Windows embeddable zip.
    Embeddable,
}

impl ArchiveKind {
    /// From the archive's file name.
    pub fn from_file_name(name: &str) -> Option<ArchiveKind> {
        if name.ends_with(".zip") {
            return Some(ArchiveKind::Embeddable);
        }
        match PbsFormat::from_file_name(name)? {
            PbsFormat::InstallOnly => Some(ArchiveKind::PbsInstallOnly),
            PbsFormat::Full => Some(ArchiveKind::PbsFull),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            ArchiveKind::PbsInstallOnly => "pbs-install-only",
            ArchiveKind::PbsFull => "pbs-full",
            ArchiveKind::Embeddable => "embeddable",
        }
    }
}

fn name(text: &str) -> Result<EntryName, BuildError> {
    Ok(EntryName::new(text)?)
}

fn target_params(target: &Target) -> serde_json::Value {
    json!({ "platform": target.platform.to_string(), "python": target.python.to_string() })
}

/// Adds the interpreter unpacked from the archive at node `archive`.
pub fn interpreter(
    graph: &mut Graph,
    archive: NodeIndex,
    kind: ArchiveKind,
    target: &Target,
) -> Result<NodeIndex, BuildError> {
    let entry_name = name(&format!(
        "cpython-{}-{}",
        target.python,
        target.platform.triple()
    ))?;
    let target = *target;
    graph.derive(
        entry_name,
        ("interpreter", "2"),
        json!({ "archive": kind.as_str(), "target": target_params(&target) }),
        labelled([(InputRole::Archive, archive)]),
        Box::new(move |ctx| build_interpreter(ctx, kind, &target)),
    )
}

/// A wheel to install.
#[derive(Clone, Debug)]
pub struct WheelInstall {
    /// Normalised project name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Wheel file name.
    pub wheel: String,
    /// Wheel sha256 (hex).
    pub sha256: String,
    /// A top-level requirement (gets `REQUESTED`).
    pub requested: bool,
    /// The dependencies the lock recorded for it (normalised names, sorted), when the lock
    /// records dependency edges; the wheel's own METADATA must declare exactly these.
    pub requires: Option<Vec<String>>,
}

/// Adds the installation of the wheel at node `wheel_file` for `target`.
pub fn install(
    graph: &mut Graph,
    wheel_file: NodeIndex,
    wheel: &WheelInstall,
    target: &Target,
) -> Result<NodeIndex, BuildError> {
    let entry_name = name(&format!(
        "{}-{}-py{}-{}",
        wheel.name,
        wheel.version,
        target.python.nodot(),
        target.platform.triple()
    ))?;
    let target = *target;
    let requested = wheel.requested;
    let file_name = wheel.wheel.clone();
    let locked = LockedAs {
        name: wheel.name.clone(),
        version: wheel.version.clone(),
        requires: wheel
            .requires
            .as_ref()
            .map(|deps| deps.iter().cloned().collect()),
    };
    // The name and version are in the entry name already; the recorded dependencies decide
    // whether the build succeeds, so they are part of the id too (only when recorded, so that
    // locks without dependency edges keep their ids).
    let mut params = json!({ "target": target_params(&target), "requested": requested });
    if let Some(requires) = &wheel.requires {
        params["requires"] = json!(requires);
    }
    graph.derive(
        entry_name,
        ("install-wheel", "1"),
        params,
        labelled([(InputRole::Wheel, wheel_file)]),
        Box::new(move |ctx| build_install(ctx, &file_name, &target, requested, &locked)),
    )
}

/// Adds the byte-compilation of the tree at `tree` (an installed wheel, or an interpreter when
/// `sources` is [`Sources::Stdlib`]) for `target`, by the interpreter at `compiler` (the
/// target's own, or another of the same CPython version that runs here: the bytecode is the
/// same). The output holds only the pycs, at the places of their sources, so the bundle merges
/// it over the tree. How it runs (the sandbox level) is not part of the id: it does not change
/// the bytes ([`super::bytecode`]).
pub fn bytecode(
    graph: &mut Graph,
    tree: NodeIndex,
    sources: Sources,
    compiler: NodeIndex,
    target: &Target,
    sandbox: Arc<Sandbox>,
) -> Result<NodeIndex, BuildError> {
    let tree_name = graph.node(tree).fingerprint.name().to_string();
    let entry_name = name(&format!("{tree_name}-pyc"))?;
    let site = match &sources {
        Sources::Dir(dir) => dir.clone(),
        Sources::Stdlib => "stdlib".to_owned(),
    };
    graph.derive(
        entry_name,
        ("bytecode", "1"),
        json!({
            "python": target.python.to_string(),
            "site": site,
            "invalidation": super::bytecode::INVALIDATION,
        }),
        labelled([(InputRole::Installed, tree), (InputRole::Python, compiler)]),
        Box::new(move |ctx| build_bytecode(ctx, &sources, &sandbox)),
    )
}

/// What the bundle is, for its manifest.
#[derive(Clone, Debug)]
pub struct BundleSpec {
    /// Recipe name.
    pub recipe: String,
    /// Recipe version.
    pub version: String,
    /// Target name.
    pub target_name: String,
    /// The target.
    pub target: Target,
    /// sha256 of the interpreter's archive, when it came from one.
    pub interpreter_archive_sha256: Option<String>,
    /// How the packages are byte-compiled (`None`: the recipe says `bytecode = false`).
    pub bytecode: Option<BytecodeRef>,
}

/// One package of a bundle: its wheel, its installed entry, and its bytecode entry when it is
/// byte-compiled.
#[derive(Clone, Debug)]
pub struct BundledPackage {
    /// The wheel.
    pub wheel: WheelInstall,
    /// The installed wheel's node.
    pub installed: NodeIndex,
    /// The node of its pycs.
    pub bytecode: Option<NodeIndex>,
}

/// Adds the bundle: the interpreter at `interpreter` (with its standard library's pycs at
/// `stdlib_pycs`, when compiled) plus every installed package and its pycs.
pub fn bundle(
    graph: &mut Graph,
    spec: &BundleSpec,
    interpreter: NodeIndex,
    stdlib_pycs: Option<NodeIndex>,
    packages: &[BundledPackage],
) -> Result<NodeIndex, BuildError> {
    let entry_name = name(&format!(
        "{}-{}-{}",
        spec.recipe, spec.version, spec.target_name
    ))?;
    let mut inputs = vec![(InputRole::Interpreter, interpreter)];
    if let Some(pycs) = stdlib_pycs {
        inputs.push((InputRole::InterpreterPyc, pycs));
    }
    let mut package_refs = Vec::new();
    for package in packages {
        let wheel = &package.wheel;
        inputs.push((InputRole::Package(&wheel.name), package.installed));
        if let Some(pycs) = package.bytecode {
            inputs.push((InputRole::PackagePyc(&wheel.name), pycs));
        }
        package_refs.push(PackageRef {
            name: wheel.name.clone(),
            version: wheel.version.clone(),
            wheel: wheel.wheel.clone(),
            sha256: wheel.sha256.clone(),
            entry: graph.node(package.installed).id.to_string(),
        });
    }
    let manifest = BundleManifest {
        format: super::manifest::MANIFEST_FORMAT,
        recipe: RecipeRef {
            name: spec.recipe.clone(),
            version: spec.version.clone(),
        },
        target: TargetRef {
            name: spec.target_name.clone(),
            platform: spec.target.platform.triple().to_owned(),
            python: spec.target.python.to_string(),
        },
        interpreter: InterpreterRef {
            name: graph.node(interpreter).fingerprint.name().to_string(),
            entry: graph.node(interpreter).id.to_string(),
            archive_sha256: spec.interpreter_archive_sha256.clone(),
        },
        packages: package_refs,
        bytecode: spec.bytecode.clone(),
        files: Vec::new(),
    };
    let params = serde_json::to_value(&manifest)?;
    let python_label = format!("CPython {}", spec.target.python);
    // A Windows bundle must hold only names Windows can (refusing changes no output, so the
    // builder version stays).
    let names = if spec.target.platform.is_windows() {
        Names::Windows
    } else {
        Names::Posix
    };
    graph.derive(
        entry_name,
        ("bundle", "1"),
        params,
        labelled(inputs),
        Box::new(move |ctx| build_bundle(ctx, &manifest, &python_label, names)),
    )
}

/// The file name of the validation entry of a bundle named `bundle_name`.
pub fn validation_name(bundle_name: &str) -> String {
    format!("{bundle_name}.validation.json")
}

/// Adds the validation of the bundle at `bundle` (see [`super::validate`]): its report, a
/// small JSON file. The sandbox level and whether the imports run here are parameters, so a
/// machine with another level makes another validation entry — and the same bundle and ZIP.
pub fn validate(
    graph: &mut Graph,
    spec: &BundleSpec,
    bundle: NodeIndex,
    modules: &[String],
    sandbox: Arc<Sandbox>,
) -> Result<NodeIndex, BuildError> {
    let bundle_name = graph.node(bundle).fingerprint.name().to_string();
    let entry_name = name(&validation_name(&bundle_name))?;
    let mut modules = modules.to_vec();
    modules.sort();
    modules.dedup();
    let dynamic = super::validate::runs_here(&spec.target);
    let target = spec.target;
    let target_name = spec.target_name.clone();
    graph.derive(
        entry_name,
        ("validate", "2"),
        json!({ "modules": modules, "sandbox": sandbox.level().as_str(), "dynamic": dynamic }),
        labelled([(InputRole::Bundle, bundle)]),
        Box::new(move |ctx| {
            let check = Validation {
                target_name: &target_name,
                target: &target,
                modules: &modules,
                sandbox: &sandbox,
                dynamic,
            };
            build_validation(ctx, &check)
        }),
    )
}

/// Adds the ZIP of the bundle at `bundle`, every member stamped with `time`. The wheels at
/// `wheels` are inputs too: members whose bytes a wheel already holds deflated are copied from
/// it instead of being compressed again (see [`crate::archive::reuse`]).
pub fn zip(
    graph: &mut Graph,
    spec: &BundleSpec,
    bundle: NodeIndex,
    wheels: &[NodeIndex],
    time: DosDateTime,
) -> Result<NodeIndex, BuildError> {
    let entry_name = name(&format!(
        "{}-{}-{}.zip",
        spec.recipe, spec.version, spec.target_name
    ))?;
    let wheel_names: Vec<String> = wheels
        .iter()
        .map(|&wheel| graph.node(wheel).fingerprint.name().to_string())
        .collect();
    let mut inputs = vec![(InputRole::Bundle, bundle)];
    for (name, &wheel) in wheel_names.iter().zip(wheels) {
        inputs.push((InputRole::ReusableWheel(name), wheel));
    }
    let inputs = labelled(inputs);
    graph.derive(
        entry_name,
        ("zip", "2"),
        json!({ "dos_date": time.date, "dos_time": time.time, "deflate": deflate::IMPLEMENTATION, "level": deflate::LEVEL }),
        inputs,
        Box::new(move |ctx| build_zip(ctx, time)),
    )
}

/// The file name of the provenance entry of `zip_name`: a DSSE envelope (`.intoto.jsonl`, the
/// SLSA convention) when signed, the bare statement otherwise.
pub fn provenance_name(zip_name: &str, signed: bool) -> String {
    if signed {
        format!("{zip_name}.intoto.jsonl")
    } else {
        format!("{zip_name}.provenance.json")
    }
}

/// Adds the SLSA provenance of the ZIP at `zip` (of the bundle at `bundle`), signed with
/// `signer` when there is one. The signer's public key is a parameter (a signed and an unsigned
/// provenance are different entries); its secret key is not, and never enters the store.
pub fn provenance(
    graph: &mut Graph,
    zip: NodeIndex,
    bundle: NodeIndex,
    validation: NodeIndex,
    inputs: &ProvenanceInputs,
    signer: Option<Arc<SecretKey>>,
) -> Result<NodeIndex, BuildError> {
    let zip_name = graph.node(zip).fingerprint.name().to_string();
    let entry_name = name(&provenance_name(&zip_name, signer.is_some()))?;
    let inputs = inputs.clone();
    let params = json!({
        "inputs": serde_json::to_value(&inputs)?,
        "signer": signer.as_ref().map(|key| key.public().to_string()),
        "deflate": deflate::IMPLEMENTATION,
        "level": deflate::LEVEL,
    });
    graph.derive(
        entry_name,
        ("provenance", "2"),
        params,
        labelled([
            (InputRole::Zip, zip),
            (InputRole::Bundle, bundle),
            (InputRole::Validation, validation),
        ]),
        Box::new(move |ctx| build_provenance(ctx, &zip_name, &inputs, signer.as_deref())),
    )
}

/// Adds the CycloneDX SBOM of the ZIP at `zip` (of the bundle at `bundle`).
pub fn sbom(graph: &mut Graph, zip: NodeIndex, bundle: NodeIndex) -> Result<NodeIndex, BuildError> {
    let zip_name = graph.node(zip).fingerprint.name().to_string();
    let entry_name = name(&format!("{zip_name}.cdx.json"))?;
    let version = env!("CARGO_PKG_VERSION");
    graph.derive(
        entry_name,
        ("sbom-cyclonedx", "1"),
        json!({ "spec": "1.5", "pystore": version }),
        labelled([(InputRole::Zip, zip), (InputRole::Bundle, bundle)]),
        Box::new(move |ctx| build_sbom(ctx, &zip_name, version)),
    )
}
