//! The builders of [`super`]'s nodes: what runs, in the store's build directory, to make
//! each entry from its inputs (looked up by role, [`crate::bundle::inputs`]) and its
//! parameters. Each gets its parameters typed; what it reads of the build context is named in
//! its doc.

use fs_err as fs;
use std::collections::BTreeMap;

use rayon::prelude::*;

use super::ArchiveKind;
use crate::archive::deflate_cache::DeflateCache;
use crate::archive::extract::Limits;
use crate::archive::member_cache;
use crate::archive::reuse::WheelMembers;
use crate::archive::timestamp::DosDateTime;
use crate::archive::zip::{members_of_tree, write_zip_observed, Contents, Member, MemberKind};
use crate::build::sandbox::Sandbox;
use crate::build::{BuildContext, BuildError};
use crate::bundle::assemble::{assemble, Layer, Names};
use crate::bundle::bytecode::Sources;
use crate::bundle::inputs::{input, inputs_where, optional, InputRole};
use crate::bundle::manifest::{BundleManifest, MANIFEST_NAME};
use crate::bundle::provenance::{self, ProvenanceInputs};
use crate::bundle::sbom;
use crate::hash::tree::{NodeKind, Tree};
use crate::hash::{canonical_json, sha256_file, to_hex};
use crate::python::interpreter::{unpack_embeddable, unpack_pbs, PbsFormat};
use crate::python::{install_wheel, InstallOptions, LockedAs, Scheme, Target};
use crate::sign::dsse::IN_TOTO_PAYLOAD_TYPE;
use crate::sign::{Envelope, SecretKey};

/// The `interpreter` builder: unpacks the archive (input `archive`) of `kind` for `target`.
pub(super) fn build_interpreter(
    ctx: &BuildContext<'_>,
    kind: ArchiveKind,
    target: &Target,
) -> Result<(), BuildError> {
    let archive = &input(ctx, InputRole::Archive)?.path;
    let limits = Limits::default();
    match kind {
        ArchiveKind::PbsInstallOnly => {
            unpack_pbs(archive, PbsFormat::InstallOnly, target, ctx.out, &limits)?
        }
        ArchiveKind::PbsFull => unpack_pbs(archive, PbsFormat::Full, target, ctx.out, &limits)?,
        ArchiveKind::Embeddable => unpack_embeddable(archive, target, ctx.out, &limits)?,
    };
    // Version 2: the archive's timestamp pycs become checked-hash pycs.
    crate::bundle::bytecode::convert_timestamp_pycs(ctx.out)?;
    Ok(())
}

/// The `install-wheel` builder: installs the wheel (input `wheel`, named `file_name`) for
/// `target`, checked against what the lock says it is (`locked`).
pub(super) fn build_install(
    ctx: &BuildContext<'_>,
    file_name: &str,
    target: &Target,
    requested: bool,
    locked: &LockedAs,
) -> Result<(), BuildError> {
    // The installer reads the wheel's tags from its file name, which the store keeps
    // after the id; link it under its own name beside the output, inside this build's
    // directory in the store (same file system, removed with it).
    let wheel_path = &input(ctx, InputRole::Wheel)?.path;
    let scratch = ctx.out.with_file_name("wheel");
    fs::create_dir(&scratch)?;
    let named = scratch.join(file_name);
    if fs::hard_link(wheel_path, &named).is_err() {
        fs::copy(wheel_path, &named)?;
    }
    let options = InstallOptions {
        requested,
        locked: Some(locked.clone()),
        ..Default::default()
    };
    let installed = install_wheel(
        &named,
        target,
        &Scheme::for_target(target),
        ctx.out,
        &options,
    )?;
    // What the wheel's members hold, for the bundle ZIPs that copy them (under the wheel
    // entry's own name, as the ZIP builder receives it).
    if let Some(cache) = ctx.cache {
        if let Err(err) = member_cache::save(cache, wheel_path, &installed.known_members) {
            tracing::debug!("wheel member cache not written: {err}");
        }
    }
    Ok(())
}

/// The `bytecode` builder: compiles `sources` of the tree (input `installed`) with the
/// interpreter (input `python`) in `sandbox`.
pub(super) fn build_bytecode(
    ctx: &BuildContext<'_>,
    sources: &Sources,
    sandbox: &Sandbox,
) -> Result<(), BuildError> {
    let installed = &input(ctx, InputRole::Installed)?.path;
    let Some(site) = sources.resolve(installed)? else {
        fs::create_dir(ctx.out)?;
        return Ok(());
    };
    let scratch = ctx.out.with_file_name("sandbox");
    fs::create_dir(&scratch)?;
    let compiled = crate::bundle::bytecode::compile(
        installed,
        &site,
        &input(ctx, InputRole::Python)?.path,
        sandbox,
        &scratch,
        ctx.out,
    );
    let _ = make_writable(&scratch);
    compiled?;
    Ok(())
}

/// The `bundle` builder: assembles the interpreter and the packages `manifest` lists (their
/// inputs, with their pycs when compiled) under `names`' rules, and writes the manifest with
/// every file and its owner. `python_label` names the interpreter's layer in errors.
pub(super) fn build_bundle(
    ctx: &BuildContext<'_>,
    manifest: &BundleManifest,
    python_label: &str,
    names: Names,
) -> Result<(), BuildError> {
    let mut layers = vec![Layer {
        label: python_label.to_owned(),
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
}

/// What the `validate` builder checks of a bundle.
pub(super) struct Validation<'a> {
    pub(super) target_name: &'a str,
    pub(super) target: &'a Target,
    /// The modules to import (sorted, once each).
    pub(super) modules: &'a [String],
    pub(super) sandbox: &'a Sandbox,
    /// Whether the imports run here (else the check is static).
    pub(super) dynamic: bool,
}

/// The `validate` builder: validates the bundle (input `bundle`) and writes the report.
pub(super) fn build_validation(
    ctx: &BuildContext<'_>,
    check: &Validation<'_>,
) -> Result<(), BuildError> {
    let root = &input(ctx, InputRole::Bundle)?.path;
    // The sandbox's scratch space: inside this build's directory in the store's tmp/,
    // removed with it.
    let scratch = ctx.out.with_file_name("sandbox");
    fs::create_dir(&scratch)?;
    let report = crate::bundle::validate::validate(
        root,
        check.target_name,
        check.target,
        check.modules,
        check.sandbox,
        check.dynamic,
        &scratch,
    );
    // /build may hold what the program wrote, read-only: make it removable.
    let _ = make_writable(&scratch);
    let report = report?;
    let mut bytes = canonical_json::to_vec(&serde_json::to_value(&report)?)?;
    bytes.push(b'\n');
    fs::write(ctx.out, bytes)?;
    Ok(())
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
        fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
        for entry in fs::read_dir(dir)? {
            make_writable(&entry?.path())?;
        }
    }
    Ok(())
}

/// File digests of a tree, by path: (size, blake3).
type Digests<'t> = std::collections::HashMap<&'t str, (u64, [u8; 32])>;

/// The `zip` builder: the ZIP of the bundle (input `bundle`), every member stamped with
/// `time`, copying what the wheels (inputs `wheel:…`) or the deflate cache hold deflated.
pub(super) fn build_zip(ctx: &BuildContext<'_>, time: DosDateTime) -> Result<(), BuildError> {
    let root = &input(ctx, InputRole::Bundle)?.path;
    let wheels: Vec<std::path::PathBuf> =
        inputs_where(ctx, |role| matches!(role, InputRole::ReusableWheel(_)))
            .map(|e| e.path.clone())
            .collect();
    let reusable = WheelMembers::index(&wheels, ctx.cache);
    let tree = Tree::read(root)?;
    let digests: Digests<'_> = tree
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
    reuse_deflated(&mut members, &digests, &reusable, cache.as_ref());
    let file = fs::File::create(ctx.out)?;
    let mut pack = match &cache {
        Some(cache) => cache
            .new_pack()
            .map_err(|e| tracing::debug!("no deflate cache: {e}"))
            .ok(),
        None => None,
    };
    let summary = write_zip_observed(file, members, time, &mut |deflated| {
        if let (Some(writer), Some((_, digest))) = (&mut pack, digests.get(deflated.name)) {
            if writer
                .add(digest, deflated.size, deflated.crc32, deflated.data)
                .is_err()
            {
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
    // The wheel members proved to hold bundle files: the next ZIP copies them unread.
    reusable.save();
    tracing::debug!(
        "{}: {} members, {} copied (from wheels or the deflate cache), {} deflated, {} stored",
        root.display(),
        summary.members,
        summary.copied,
        summary.deflated,
        summary.stored
    );
    Ok(())
}

/// Points each file member whose compressed bytes are at hand (in a wheel, else in the
/// deflate `cache`) at them instead of its bytes, so it is copied, not deflated again.
fn reuse_deflated(
    members: &mut [Member],
    digests: &Digests<'_>,
    reusable: &WheelMembers,
    cache: Option<&DeflateCache>,
) {
    members.par_iter_mut().for_each(|member| {
        let digest = digests.get(member.name.as_str());
        if let (MemberKind::File { contents, .. }, Some((size, digest))) =
            (&mut member.kind, digest)
        {
            if let Contents::Path(path) = contents {
                *contents = reusable.contents_for(path, *size, digest);
            }
            // After the wheels: a member a wheel holds deflated is copied from the wheel
            // with or without a cache, so the cache may only stand in for a deflate.
            if let (Contents::Path(_) | Contents::Bytes(_), Some(cache)) = (&contents, cache) {
                if let Some(cached) = cache.get(digest, *size) {
                    *contents = cached;
                }
            }
        }
    });
}

/// Reads the bundle's manifest and the ZIP's sha256: what provenance and SBOM describe.
fn described(ctx: &BuildContext<'_>) -> Result<(BundleManifest, String), BuildError> {
    let manifest_path = input(ctx, InputRole::Bundle)?.path.join(MANIFEST_NAME);
    let manifest = BundleManifest::parse(&fs::read(&manifest_path)?)?;
    let zip_sha256 = to_hex(&sha256_file(&input(ctx, InputRole::Zip)?.path)?);
    Ok((manifest, zip_sha256))
}

/// The `provenance` builder: the statement describing the ZIP (input `zip`, named `zip_name`)
/// of the bundle (input `bundle`) and its validation (input `validation`), signed with
/// `signer` when there is one.
pub(super) fn build_provenance(
    ctx: &BuildContext<'_>,
    zip_name: &str,
    inputs: &ProvenanceInputs,
    signer: Option<&SecretKey>,
) -> Result<(), BuildError> {
    let (manifest, zip_sha256) = described(ctx)?;
    let mut statement = provenance::statement(&manifest, zip_name, &zip_sha256, inputs);
    let report: crate::bundle::validate::Report =
        serde_json::from_slice(&fs::read(&input(ctx, InputRole::Validation)?.path)?)?;
    provenance::record_validation(&mut statement, &report);
    let mut bytes = canonical_json::to_vec(&statement)?;
    if let Some(key) = signer {
        let envelope = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, &bytes, key);
        bytes = canonical_json::to_vec(&serde_json::to_value(&envelope)?)?;
    }
    bytes.push(b'\n');
    fs::write(ctx.out, bytes)?;
    Ok(())
}

/// The `sbom-cyclonedx` builder: the SBOM of the ZIP (input `zip`, named `zip_name`) of the
/// bundle (input `bundle`), made by pystore `version`.
pub(super) fn build_sbom(
    ctx: &BuildContext<'_>,
    zip_name: &str,
    version: &str,
) -> Result<(), BuildError> {
    let (manifest, zip_sha256) = described(ctx)?;
    let bom = sbom::cyclonedx(&manifest, zip_name, &zip_sha256, version);
    let mut bytes = canonical_json::to_vec(&bom)?;
    bytes.push(b'\n');
    fs::write(ctx.out, bytes)?;
    Ok(())
}
