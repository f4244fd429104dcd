//! A CycloneDX 1.5 SBOM of a bundle: the interpreter and every package, with purls and hashes.
//!
//! Deterministic: no timestamp, and the serial number is derived from the ZIP's sha256, so the
//! same ZIP always has the same SBOM bytes.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::manifest::BundleManifest;
use super::provenance::{cpython_purl, pypi_purl};

/// `urn:uuid:` derived from the ZIP's sha256.
///
/// An RFC 9562 version-8 UUID (the version for custom, here hash-derived, contents): the
/// first 122 bits of a sha256 over the ZIP's digest, with the version and variant bits set.
pub fn serial_number(zip_sha256: &str) -> String {
    let digest = Sha256::digest(format!("pystore sbom serial v1 {zip_sha256}").as_bytes());
    let mut b: [u8; 16] = digest[..16].try_into().expect("16 bytes");
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The SBOM of the ZIP `zip_name` (sha256 `zip_sha256`) of the bundle `manifest` describes.
pub fn cyclonedx(
    manifest: &BundleManifest,
    zip_name: &str,
    zip_sha256: &str,
    pystore_version: &str,
) -> Value {
    let python_ref = cpython_purl(&manifest.target.python);
    let mut python = json!({
        "type": "application",
        "bom-ref": python_ref,
        "name": "cpython",
        "version": manifest.target.python,
        "purl": python_ref,
        "properties": [
            {"name": "pystore:entry", "value": manifest.interpreter.name},
        ],
    });
    if let Some(sha256) = &manifest.interpreter.archive_sha256 {
        python["hashes"] = json!([{"alg": "SHA-256", "content": sha256}]);
    }
    let mut components = vec![python];
    let mut refs = vec![python_ref.clone()];
    let mut packages: Vec<_> = manifest.packages.iter().collect();
    packages.sort_by(|a, b| a.name.cmp(&b.name));
    for package in packages {
        let purl = pypi_purl(&package.name, &package.version);
        refs.push(purl.clone());
        components.push(json!({
            "type": "library",
            "bom-ref": purl,
            "name": package.name,
            "version": package.version,
            "purl": purl,
            "hashes": [{"alg": "SHA-256", "content": package.sha256}],
            "properties": [{"name": "pystore:wheel", "value": package.wheel}],
        }));
    }
    let bundle_ref = format!("pystore:bundle/{zip_name}");
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": serial_number(zip_sha256),
        "version": 1,
        "metadata": {
            "tools": {
                "components": [{"type": "application", "name": "pystore", "version": pystore_version}],
            },
            "component": {
                "type": "application",
                "bom-ref": bundle_ref,
                "name": manifest.recipe.name,
                "version": manifest.recipe.version,
                "hashes": [{"alg": "SHA-256", "content": zip_sha256}],
                "properties": [
                    {"name": "pystore:zip", "value": zip_name},
                    {"name": "pystore:target", "value": manifest.target.name},
                    {"name": "pystore:platform", "value": manifest.target.platform},
                ],
            },
        },
        "components": components,
        "dependencies": [{"ref": bundle_ref, "dependsOn": refs}],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_numbers_are_derived_and_well_formed() {
        let a = serial_number("00");
        assert_eq!(a, serial_number("00"));
        assert_ne!(a, serial_number("01"));
        let uuid = a.strip_prefix("urn:uuid:").unwrap();
        let groups: Vec<usize> = uuid.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert_eq!(&uuid[14..15], "8");
        assert!("89ab".contains(&uuid[19..20]));
    }
}
