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
/// Records in `statement` how the bundle was validated before its ZIP was made:
/// `internalParameters.sandbox` is the level the imports ran at (`full`, `none`, `off`), or
/// `static` when the target cannot run on the building machine; `internalParameters.validated`
/// lists the modules. It lives here, not in the bundle's manifest, so the ZIP stays the same
/// on machines that allow different levels.
pub fn record_validation(statement: &mut Value, report: &super::validate::Report) {
    let internal = &mut statement["predicate"]["buildDefinition"]["internalParameters"];
    internal["sandbox"] = json!(report.validated_at());
    internal["validated"] = json!(report
        .modules
        .iter()
        .map(|m| m.name.as_str())
        .collect::<Vec<_>>());
}

/// The in-toto statement of a ZIP: the provenance without validation (see
/// [`record_validation`]).
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
    let mut statement = json!({
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
    });
    // The packages' bytecode: which interpreter compiled it, or why there is none.
    if let Some(bytecode) = &manifest.bytecode {
        statement["predicate"]["buildDefinition"]["internalParameters"]["bytecode"] =
            json!(bytecode);
    }
    statement
}

/// Why run times could not be added to a provenance copy.
#[derive(Debug, thiserror::Error)]
pub enum StampError {
    /// The entry is not a statement or an envelope of one.
    #[error("the provenance entry is not an in-toto statement or a DSSE envelope of one: {0}")]
    Malformed(String),
    /// A signed entry, but no key to sign the stamped copy with.
    #[error("the provenance is signed, but no signing key was given to sign the copy")]
    NoKey,
}

/// `t` as RFC 3339 in UTC, to the second (`2026-11-24T19:00:00Z`).
pub fn rfc3339(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days, for days since 1970-01-01 (never negative here).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

/// The provenance entry's bytes with `runDetails.metadata` (this run's start and finish times)
/// added, for the copy `realise --out` writes: the store entry itself stays free of times. A
/// signed entry is signed again with `key`.
pub fn with_run_times(
    entry: &[u8],
    started: std::time::SystemTime,
    finished: std::time::SystemTime,
    key: Option<&crate::sign::SecretKey>,
) -> Result<Vec<u8>, StampError> {
    use crate::hash::canonical_json;
    use crate::sign::dsse::IN_TOTO_PAYLOAD_TYPE;
    use crate::sign::Envelope;
    let malformed = |e: &dyn std::fmt::Display| StampError::Malformed(e.to_string());
    let value: Value = serde_json::from_slice(entry).map_err(|e| malformed(&e))?;
    let signed = value.get("payloadType").is_some();
    let mut statement: Value = if signed {
        let envelope: Envelope = serde_json::from_value(value).map_err(|e| malformed(&e))?;
        let payload = envelope.payload_bytes().map_err(|e| malformed(&e))?;
        serde_json::from_slice(&payload).map_err(|e| malformed(&e))?
    } else {
        value
    };
    let run = statement
        .pointer_mut("/predicate/runDetails")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| StampError::Malformed("no predicate.runDetails".into()))?;
    run.insert(
        "metadata".into(),
        json!({"startedOn": rfc3339(started), "finishedOn": rfc3339(finished)}),
    );
    let mut bytes = canonical_json::to_vec(&statement).map_err(|e| malformed(&e))?;
    if signed {
        let key = key.ok_or(StampError::NoKey)?;
        let envelope = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, &bytes, key);
        let value = serde_json::to_value(&envelope).map_err(|e| malformed(&e))?;
        bytes = canonical_json::to_vec(&value).map_err(|e| malformed(&e))?;
    }
    bytes.push(b'\n');
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00Z");
    }
}
