//! The derivations a bundle is made of, as build-graph nodes: the interpreter unpacked from its
//! archive, each wheel installed for the target, the assembled bundle, its ZIP, and the ZIP's
//! provenance and SBOM.
//!
//! Each builder reads only its declared inputs and parameters; its name and version are part of
//! the entry id, so changing what a builder writes means bumping its version.

use std::collections::BTreeMap;
use std::fs;
use std::sync::Arc;

use rayon::prelude::*;
use serde_json::json;

use super::assemble::{assemble, Layer, Names};
use super::bytecode::Sources;
use super::inputs::{input, inputs_where, labelled, optional, InputRole};
use super::manifest::{
    BundleManifest, BytecodeRef, InterpreterRef, PackageRef, RecipeRef, TargetRef, MANIFEST_NAME,
};
use super::provenance::{self, ProvenanceInputs};
use super::sbom;
use crate::archive::deflate;
use crate::archive::deflate_cache::DeflateCache;
use crate::archive::extract::Limits;
use crate::archive::reuse::WheelMembers;
use crate::archive::timestamp::DosDateTime;
use crate::archive::zip::{members_of_tree, write_zip_observed, Contents, MemberKind};
use crate::build::sandbox::Sandbox;
use crate::build::{BuildError, Graph, NodeIndex};
use crate::hash::tree::{NodeKind, Tree};
use crate::hash::{canonical_json, sha256_file, to_hex};
use crate::python::interpreter::{unpack_embeddable, unpack_pbs, PbsFormat};
use crate::python::{install_wheel, InstallOptions, LockedAs, Scheme, Target};
use crate::sign::dsse::IN_TOTO_PAYLOAD_TYPE;
use crate::sign::{Envelope, SecretKey};
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
        Box::new(move |ctx| {
            let archive = &input(ctx, InputRole::Archive)?.path;
            let limits = Limits::default();
            match kind {
                ArchiveKind::PbsInstallOnly => {
                    unpack_pbs(archive, PbsFormat::InstallOnly, &target, ctx.out, &limits)?
                }
                ArchiveKind::PbsFull => {
                    unpack_pbs(archive, PbsFormat::Full, &target, ctx.out, &limits)?
                }
                ArchiveKind::Embeddable => unpack_embeddable(archive, &target, ctx.out, &limits)?,
            };
            // Version 2: the archive's timestamp pycs become checked-hash pycs.
            super::bytecode::convert_timestamp_pycs(ctx.out)?;
            Ok(())
        }),
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
        Box::new(move |ctx| {
            // The installer reads the wheel's tags from its file name, which the store keeps
            // after the id; link it under its own name beside the output, inside this build's
            // directory in the store (same file system, removed with it).
            let wheel_path = &input(ctx, InputRole::Wheel)?.path;
            let scratch = ctx.out.with_file_name("wheel");
            fs::create_dir(&scratch)?;
            let named = scratch.join(&file_name);
            if fs::hard_link(wheel_path, &named).is_err() {
                fs::copy(wheel_path, &named)?;
            }
            let options = InstallOptions {
                requested,
                locked: Some(locked.clone()),
                ..Default::default()
            };
            install_wheel(
                &named,
                &target,
                &Scheme::for_target(&target),
                ctx.out,
                &options,
            )?;
            Ok(())
        }),
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
        Box::new(move |ctx| {
            let installed = &input(ctx, InputRole::Installed)?.path;
            let Some(site) = sources.resolve(installed)? else {
                fs::create_dir(ctx.out)?;
                return Ok(());
            };
            let scratch = ctx.out.with_file_name("sandbox");
            fs::create_dir(&scratch)?;
            let compiled = super::bytecode::compile(
                installed,
                &site,
                &input(ctx, InputRole::Python)?.path,
                &sandbox,
                &scratch,
                ctx.out,
            );
            let _ = make_writable(&scratch);
            compiled?;
            Ok(())
        }),
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
        Box::new(move |ctx| {
            let mut layers = vec![Layer {
                label: python_label.clone(),
                root: input(ctx, InputRole::Interpreter)?.path.clone(),
            }];
            let mut labels = vec![None];
            if let Some(pycs) = optional(ctx, InputRole::InterpreterPyc) {
                layers.push(Layer {
                    label: format!("{python_label} (bytecode)"),
                    root: pycs.path.clone(),
                });
                labels.push(None);
            }
            for package in &manifest.packages {
                let label = format!("{} {}", package.name, package.version);
                layers.push(Layer {
                    label: label.clone(),
                    root: input(ctx, InputRole::Package(&package.name))?.path.clone(),
                });
                labels.push(Some(package.name.clone()));
                if let Some(pycs) = optional(ctx, InputRole::PackagePyc(&package.name)) {
                    layers.push(Layer {
                        label: format!("{label} (bytecode)"),
                        root: pycs.path.clone(),
                    });
                    labels.push(Some(package.name.clone()));
                }
            }
            let owners = assemble(ctx.out, &layers, names)?;
            let owners: BTreeMap<String, String> = owners
                .into_iter()
                .filter_map(|(path, layer)| Some((path, labels[layer].clone()?)))
                .collect();
            let tree = Tree::read(ctx.out)?;
            let mut manifest = manifest.clone();
            manifest.set_files(&tree, &owners);
            fs::write(ctx.out.join(MANIFEST_NAME), manifest.to_canonical())?;
            Ok(())
        }),
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
        ("validate", "1"),
        json!({ "modules": modules, "sandbox": sandbox.level().as_str(), "dynamic": dynamic }),
        labelled([(InputRole::Bundle, bundle)]),
        Box::new(move |ctx| {
            let root = &input(ctx, InputRole::Bundle)?.path;
            // The sandbox's scratch space: inside this build's directory in the store's tmp/,
            // removed with it.
            let scratch = ctx.out.with_file_name("sandbox");
            fs::create_dir(&scratch)?;
            let report = super::validate::validate(
                root,
                &target_name,
                &target,
                &modules,
                &sandbox,
                dynamic,
                &scratch,
            );
            // /build may hold what the program wrote, read-only: make it removable.
            let _ = make_writable(&scratch);
            let report = report?;
            let mut bytes = canonical_json::to_vec(&serde_json::to_value(&report)?)?;
            bytes.push(b'\n');
            fs::write(ctx.out, bytes)?;
            Ok(())
        }),
    )
}

/// Gives the owner write access to everything under `dir`, so it can be removed.
#[cfg(not(unix))]
fn make_writable(_dir: &std::path::Path) -> std::io::Result<()> {
    Ok(())
}

/// Gives the owner write access to everything under `dir`, so it can be removed.
#[cfg(unix)]
fn make_writable(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = fs::symlink_metadata(dir)?;
    if meta.is_dir() {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
        for entry in fs::read_dir(dir)? {
            make_writable(&entry?.path())?;
        }
    }
    Ok(())
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
        Box::new(move |ctx| {
            let root = &input(ctx, InputRole::Bundle)?.path;
            let wheels: Vec<std::path::PathBuf> =
                inputs_where(ctx, |role| matches!(role, InputRole::ReusableWheel(_))).map(|e| e.path.clone()).collect();
            let reusable = WheelMembers::index(&wheels);
            let tree = Tree::read(root)?;
            let digests: std::collections::HashMap<&str, (u64, [u8; 32])> = tree
                .nodes
                .iter()
                .filter_map(|node| match node.kind {
                    NodeKind::File { size, blake3, .. } => Some((node.path.as_str(), (size, blake3))),
                    _ => None,
                })
                .collect();
            let mut members = members_of_tree(&tree, root);
            // Compressed bytes of earlier ZIPs, by content: a hit is exactly what deflating
            // again would give (see archive::deflate_cache), so only speed depends on it.
            let cache = ctx.cache.map(DeflateCache::open);
            members.par_iter_mut().for_each(|member| {
                let digest = digests.get(member.name.as_str());
                if let (MemberKind::File { contents, .. }, Some((size, digest))) = (&mut member.kind, digest) {
                    if let Contents::Path(path) = contents {
                        *contents = reusable.contents_for(path, *size, digest);
                    }
                    // After the wheels: a member a wheel holds deflated is copied from the wheel
                    // with or without a cache, so the cache may only stand in for a deflate.
                    if let (Contents::Path(_) | Contents::Bytes(_), Some(cache)) = (&contents, &cache) {
                        if let Some(cached) = cache.get(digest, *size) {
                            *contents = cached;
                        }
                    }
                }
            });
            let file = fs::File::create(ctx.out)?;
            let mut pack = match &cache {
                Some(cache) => cache.new_pack().map_err(|e| tracing::debug!("no deflate cache: {e}")).ok(),
                None => None,
            };
            let summary = write_zip_observed(file, members, time, &mut |deflated| {
                if let (Some(writer), Some((_, digest))) = (&mut pack, digests.get(deflated.name)) {
                    if writer.add(digest, deflated.size, deflated.crc32, deflated.data).is_err() {
                        pack = None;
                    }
                }
                Ok(())
            })?;
            if let Some(pack) = pack {
                if let Err(err) = pack.finish() {
                    tracing::debug!("could not add to the deflate cache: {err}");
                }
            }
            tracing::debug!(
                "{}: {} members, {} copied (from wheels or the deflate cache), {} deflated, {} stored",
                root.display(),
                summary.members,
                summary.copied,
                summary.deflated,
                summary.stored
            );
            Ok(())
        }),
    )
}

/// Reads the bundle's manifest and the ZIP's sha256: what provenance and SBOM describe.
fn described(ctx: &crate::build::BuildContext<'_>) -> Result<(BundleManifest, String), BuildError> {
    let manifest_path = input(ctx, InputRole::Bundle)?.path.join(MANIFEST_NAME);
    let manifest = BundleManifest::parse(&fs::read(&manifest_path)?)?;
    let zip_sha256 = to_hex(&sha256_file(&input(ctx, InputRole::Zip)?.path)?);
    Ok((manifest, zip_sha256))
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
        Box::new(move |ctx| {
            let (manifest, zip_sha256) = described(ctx)?;
            let mut statement = provenance::statement(&manifest, &zip_name, &zip_sha256, &inputs);
            let report: super::validate::Report =
                serde_json::from_slice(&fs::read(&input(ctx, InputRole::Validation)?.path)?)?;
            provenance::record_validation(&mut statement, &report);
            let mut bytes = canonical_json::to_vec(&statement)?;
            if let Some(key) = &signer {
                let envelope = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, &bytes, key);
                bytes = canonical_json::to_vec(&serde_json::to_value(&envelope)?)?;
            }
            bytes.push(b'\n');
            fs::write(ctx.out, bytes)?;
            Ok(())
        }),
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
        Box::new(move |ctx| {
            let (manifest, zip_sha256) = described(ctx)?;
            let bom = sbom::cyclonedx(&manifest, &zip_name, &zip_sha256, version);
            let mut bytes = canonical_json::to_vec(&bom)?;
            bytes.push(b'\n');
            fs::write(ctx.out, bytes)?;
            Ok(())
        }),
    )
}
