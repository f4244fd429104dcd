//! SLSA provenance for a bundle ZIP: an in-toto Statement v1 whose predicate is SLSA
//! provenance v1, built from the bundle's manifest and the recipe's digests only.
//!
//! Everything in it is a function of the entry's inputs, so the statement (and, ed25519 being
//! deterministic, its signed envelope) is byte-identical across builds: no timestamps, no host
//! names, no absolute paths. Times of a particular run belong outside the store.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::manifest::BundleManifest;
use crate::archive::deflate;

/// The in-toto Statement type.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The SLSA provenance predicate type.
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// What the build was: versioned, bumped when the meaning of the parameters changes.
pub const BUILD_TYPE: &str = "urn:pystore:build-type:bundle-zip:v1";
/// Who built it.
pub const BUILDER_ID: &str = "urn:pystore:builder:realise";

/// What the provenance records beyond the manifest: the user's inputs, by digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvenanceInputs {
    /// sha256 of recipe.toml.
    pub recipe_sha256: String,
    /// sha256 of the requirements file.
    pub requirements_sha256: String,
    /// sha256 of the lock file.
    pub lock_sha256: String,
    /// The ZIP members' DOS date and time (from SOURCE_DATE_EPOCH or the default).
    pub dos_date: u16,
    /// See `dos_date`.
    pub dos_time: u16,
    /// The pystore version that built it.
    pub pystore_version: String,
}

/// The purl of a PyPI package (names in a manifest are normalised already).
pub fn pypi_purl(name: &str, version: &str) -> String {
    format!(
        "pkg:pypi/{}@{version}",
        name.to_lowercase().replace('_', "-")
    )
}

/// The purl of the CPython interpreter.
pub fn cpython_purl(version: &str) -> String {
    format!("pkg:generic/cpython@{version}")
}

/// The in-toto statement for the ZIP `zip_name` with digest `zip_sha256` of the bundle
/// described by `manifest`.
pub fn statement(
    manifest: &BundleManifest,
    zip_name: &str,
    zip_sha256: &str,
    inputs: &ProvenanceInputs,
) -> Value {
    let mut dependencies = Vec::new();
    let interpreter = &manifest.interpreter;
    let mut python = json!({
        "name": interpreter.name,
        "uri": cpython_purl(&manifest.target.python),
        "annotations": {"pystoreEntry": interpreter.entry},
    });
    match &interpreter.archive_sha256 {
        Some(sha256) => python["digest"] = json!({ "sha256": sha256 }),
        // Captured from an installed tree: no archive, only the store entry says what it was.
        None => python["annotations"]["captured"] = json!(true),
    }
    dependencies.push(python);
    for package in &manifest.packages {
        dependencies.push(json!({
            "name": package.wheel,
            "uri": format!("{}?file_name={}", pypi_purl(&package.name, &package.version), package.wheel),
            "digest": {"sha256": package.sha256},
        }));
    }
    json!({
        "_type": STATEMENT_TYPE,
        "subject": [{"name": zip_name, "digest": {"sha256": zip_sha256}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "recipe": {
                        "name": manifest.recipe.name,
                        "version": manifest.recipe.version,
                        "digest": {"sha256": inputs.recipe_sha256},
                    },
                    "requirements": {"digest": {"sha256": inputs.requirements_sha256}},
                    "lock": {"digest": {"sha256": inputs.lock_sha256}},
                    "target": {
                        "name": manifest.target.name,
                        "platform": manifest.target.platform,
                        "python": manifest.target.python,
                    },
                },
                "internalParameters": {
                    "deflate": deflate::IMPLEMENTATION,
                    "deflateLevel": deflate::LEVEL,
                    "zipDosDate": inputs.dos_date,
                    "zipDosTime": inputs.dos_time,
                },
                "resolvedDependencies": dependencies,
            },
            "runDetails": {
                "builder": {
                    "id": BUILDER_ID,
                    "version": {"pystore": inputs.pystore_version},
                },
            },
        },
    })
}
