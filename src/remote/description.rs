//! Signed entry descriptions: everything a store needs to register a pulled entry, signed as one
//! DSSE envelope so that no field can be changed without breaking the signature.
//!
//! The payload is the canonical JSON (store-layout.md §3.2) of
//! `{"format":"pystore-entry-v1","id","name","kind","fingerprint","content_hash","size","nodes",
//! "references","archive":{"file","sha256","size"}}`. The fingerprint carries the builder, its
//! version, parameters and inputs; the id must be the one derived from it, so a description
//! cannot lie about identity.

use base64::Engine;
use serde_json::{json, Value};

use crate::hash::canonical_json;
use crate::hash::to_hex;
use crate::sign::dsse::DsseError;
use crate::sign::{Envelope, SecretKey, TrustedKeys};
use crate::store::{EntryId, EntryInfo, Fingerprint};

/// The DSSE payload type of entry descriptions.
pub const ENTRY_PAYLOAD_TYPE: &str = "application/vnd.pystore.entry.v1+json";

/// The `format` field of entry descriptions.
pub const ENTRY_FORMAT: &str = "pystore-entry-v1";

/// The blob name of the description of entry `id`.
pub fn description_name(id: &EntryId) -> String {
    format!("{id}.entry.json")
}

/// The blob name of the archive of entry `id`.
pub fn archive_name(id: &EntryId) -> String {
    format!("{id}.tar.zst")
}

/// Why a description was refused.
#[derive(Debug, thiserror::Error)]
pub enum DescriptionError {
    /// Not a DSSE envelope of the right type.
    #[error("{what} is not a pystore entry description: {reason}")]
    Malformed { what: String, reason: String },
    /// Unsigned, and signatures are required.
    #[error(
        "{what} is not signed; refusing it (pass --no-require-sigs to accept unsigned entries)"
    )]
    Unsigned { what: String },
    /// The signature does not verify against the trusted keys.
    #[error("{what}: {source}")]
    Signature {
        what: String,
        #[source]
        source: DsseError,
    },
    /// The description is of another entry than the one asked for.
    #[error("{what} describes entry {found}, not {expected}: refusing it (a valid signature over a different description)")]
    OtherEntry {
        what: String,
        expected: EntryId,
        found: EntryId,
    },
}

/// Where a described entry's archive is and what it must be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveRef {
    /// Blob name (`<id>.tar.zst`).
    pub file: String,
    /// sha256 of the archive bytes.
    pub sha256: [u8; 32],
    /// Bytes of the archive.
    pub size: u64,
}

/// An entry description.
#[derive(Clone, Debug, PartialEq)]
pub struct Description {
    /// The entry id (derived from `fingerprint`).
    pub id: EntryId,
    /// The fingerprint the id is computed from.
    pub fingerprint: Fingerprint,
    /// Content hash of the entry's canonical tree.
    pub content_hash: [u8; 32],
    /// Bytes of regular files.
    pub size: u64,
    /// Nodes in the tree.
    pub nodes: u64,
    /// The entries it refers to (registered before it).
    pub references: Vec<EntryId>,
    /// Its archive.
    pub archive: ArchiveRef,
}

impl Description {
    /// The description of a valid entry whose archive was packed as `archive`.
    pub fn of(entry: &EntryInfo, archive: ArchiveRef) -> Result<Description, DescriptionError> {
        let fingerprint = Fingerprint::from_canonical(&entry.fingerprint).map_err(|e| {
            DescriptionError::Malformed {
                what: entry.path.display().to_string(),
                reason: e.to_string(),
            }
        })?;
        Ok(Description {
            id: entry.id.clone(),
            references: fingerprint.references(),
            fingerprint,
            content_hash: entry.content_hash,
            size: entry.size,
            nodes: entry.nodes,
            archive,
        })
    }

    /// The payload: canonical JSON of every field.
    pub fn to_canonical(&self) -> Vec<u8> {
        let value = json!({
            "format": ENTRY_FORMAT,
            "id": self.id.as_str(),
            "name": self.fingerprint.name().as_str(),
            "kind": self.fingerprint.kind().as_str(),
            "fingerprint": self.fingerprint.to_json(),
            "content_hash": to_hex(&self.content_hash),
            "size": self.size,
            "nodes": self.nodes,
            "references": self.references.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
            "archive": {
                "file": self.archive.file,
                "sha256": to_hex(&self.archive.sha256),
                "size": self.archive.size,
            },
        });
        // Only strings and integers: always canonicalisable.
        canonical_json::to_vec(&value).unwrap_or_default()
    }

    /// The envelope file: signed with `key`, or with no signature at all.
    pub fn seal(&self, key: Option<&SecretKey>) -> Vec<u8> {
        seal(ENTRY_PAYLOAD_TYPE, &self.to_canonical(), key)
    }

    /// Opens an envelope file `bytes` (named `what` in errors) claimed to describe `expected`:
    /// checks the signature against `trusted` (unless `require_sigs` is false), then every field.
    pub fn open(
        bytes: &[u8],
        what: &str,
        expected: &EntryId,
        trusted: &TrustedKeys,
        require_sigs: bool,
    ) -> Result<Description, DescriptionError> {
        let payload = open(bytes, what, ENTRY_PAYLOAD_TYPE, trusted, require_sigs)?;
        let description = Description::parse(&payload, what)?;
        if &description.id != expected {
            return Err(DescriptionError::OtherEntry {
                what: what.to_owned(),
                expected: expected.clone(),
                found: description.id,
            });
        }
        Ok(description)
    }

    fn parse(payload: &[u8], what: &str) -> Result<Description, DescriptionError> {
        let bad = |reason: String| DescriptionError::Malformed {
            what: what.to_owned(),
            reason,
        };
        let value: Value =
            serde_json::from_slice(payload).map_err(|e| bad(format!("not JSON: {e}")))?;
        let text = |v: &Value, key: &str| -> Result<String, DescriptionError> {
            v.get(key)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| bad(format!("{key:?} is missing or not a string")))
        };
        let number = |v: &Value, key: &str| -> Result<u64, DescriptionError> {
            v.get(key)
                .and_then(Value::as_u64)
                .ok_or_else(|| bad(format!("{key:?} is missing or not a number")))
        };
        let digest = |v: &Value, key: &str| -> Result<[u8; 32], DescriptionError> {
            hex::decode(text(v, key)?)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(|| bad(format!("{key:?} is not 32 bytes of hex")))
        };
        if text(&value, "format")? != ENTRY_FORMAT {
            return Err(bad(format!("the format is not {ENTRY_FORMAT}")));
        }
        let fingerprint_json = value
            .get("fingerprint")
            .ok_or_else(|| bad("\"fingerprint\" is missing".into()))?;
        let canonical =
            canonical_json::to_string(fingerprint_json).map_err(|e| bad(e.to_string()))?;
        let fingerprint =
            Fingerprint::from_canonical(&canonical).map_err(|e| bad(e.to_string()))?;
        let id = EntryId::parse(&text(&value, "id")?).ok_or_else(|| bad("bad id".into()))?;
        let derived = fingerprint.id().map_err(|e| bad(e.to_string()))?;
        if derived != id {
            return Err(bad(format!(
                "its id {id} is not the id {derived} of its fingerprint"
            )));
        }
        if text(&value, "name")? != fingerprint.name().as_str()
            || text(&value, "kind")? != fingerprint.kind().as_str()
        {
            return Err(bad("name or kind disagree with the fingerprint".into()));
        }
        let references: Vec<EntryId> = value
            .get("references")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("\"references\" is missing".into()))?
            .iter()
            .map(|r| r.as_str().and_then(EntryId::parse))
            .collect::<Option<_>>()
            .ok_or_else(|| bad("a reference is not an entry id".into()))?;
        if references != fingerprint.references() {
            return Err(bad("its references are not its fingerprint's inputs".into()));
        }
        let archive = value
            .get("archive")
            .ok_or_else(|| bad("\"archive\" is missing".into()))?;
        let archive = ArchiveRef {
            file: text(archive, "file")?,
            sha256: digest(archive, "sha256")?,
            size: number(archive, "size")?,
        };
        if archive.file != archive_name(&id) {
            return Err(bad(format!("its archive is not {}", archive_name(&id))));
        }
        let description = Description {
            id,
            fingerprint,
            content_hash: digest(&value, "content_hash")?,
            size: number(&value, "size")?,
            nodes: number(&value, "nodes")?,
            references,
            archive,
        };
        if description.to_canonical() != payload {
            return Err(bad(
                "it is not in canonical form or has unknown fields".into()
            ));
        }
        Ok(description)
    }
}

/// A DSSE envelope over `payload`, as the bytes of a file (no signature without a key).
pub fn seal(payload_type: &str, payload: &[u8], key: Option<&SecretKey>) -> Vec<u8> {
    let envelope = match key {
        Some(key) => Envelope::sign(payload_type, payload, key),
        None => Envelope {
            payload: base64::engine::general_purpose::STANDARD.encode(payload),
            payload_type: payload_type.to_owned(),
            signatures: Vec::new(),
        },
    };
    let mut bytes = serde_json::to_vec(&envelope).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// Opens a DSSE envelope file of `payload_type`, checking its signature unless `require_sigs`
/// is false; returns the payload.
pub fn open(
    bytes: &[u8],
    what: &str,
    payload_type: &str,
    trusted: &TrustedKeys,
    require_sigs: bool,
) -> Result<Vec<u8>, DescriptionError> {
    let bad = |reason: String| DescriptionError::Malformed {
        what: what.to_owned(),
        reason,
    };
    let envelope: Envelope =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("not a DSSE envelope: {e}")))?;
    if envelope.payload_type != payload_type {
        return Err(bad(format!(
            "its payload type is {:?}, not {payload_type:?}",
            envelope.payload_type
        )));
    }
    if require_sigs {
        if envelope.signatures.is_empty() {
            return Err(DescriptionError::Unsigned {
                what: what.to_owned(),
            });
        }
        envelope
            .verify(trusted)
            .map_err(|source| DescriptionError::Signature {
                what: what.to_owned(),
                source,
            })?;
    }
    envelope.payload_bytes().map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::EntryName;

    fn description() -> Description {
        let input = Fingerprint::Fixed {
            name: EntryName::new("w.whl").unwrap(),
            sha256: [1; 32],
        };
        let fingerprint = Fingerprint::Derived {
            name: EntryName::new("x").unwrap(),
            builder: "install".into(),
            builder_version: "1".into(),
            params: json!({"a": 1}),
            inputs: [("wheel".to_string(), input.id().unwrap())]
                .into_iter()
                .collect(),
        };
        let id = fingerprint.id().unwrap();
        Description {
            references: fingerprint.references(),
            fingerprint,
            content_hash: [2; 32],
            size: 10,
            nodes: 3,
            archive: ArchiveRef {
                file: archive_name(&id),
                sha256: [3; 32],
                size: 99,
            },
            id,
        }
    }

    #[test]
    fn signed_descriptions_open_only_with_the_signing_key() {
        let key = SecretKey::generate("ci").unwrap();
        let other = SecretKey::generate("ci").unwrap();
        let d = description();
        let sealed = d.seal(Some(&key));
        let trusted = TrustedKeys(vec![key.public()]);
        assert_eq!(
            Description::open(&sealed, "d", &d.id, &trusted, true).unwrap(),
            d
        );
        let untrusted = TrustedKeys(vec![other.public()]);
        assert!(Description::open(&sealed, "d", &d.id, &untrusted, true).is_err());
        assert!(matches!(
            Description::open(&d.seal(None), "d", &d.id, &trusted, true),
            Err(DescriptionError::Unsigned { .. })
        ));
        assert_eq!(
            Description::open(&d.seal(None), "d", &d.id, &TrustedKeys::default(), false).unwrap(),
            d
        );
        let wrong = EntryId::parse("11111111111111111111111111111111").unwrap();
        assert!(matches!(
            Description::open(&sealed, "d", &wrong, &trusted, true),
            Err(DescriptionError::OtherEntry { .. })
        ));
    }

    #[test]
    fn every_field_is_covered_and_checked() {
        let key = SecretKey::generate("ci").unwrap();
        let trusted = TrustedKeys(vec![key.public()]);
        let d = description();
        let payload = String::from_utf8(d.to_canonical()).unwrap();
        // Re-signed payloads that lie about identity or references are refused even when signed.
        for (from, to) in [
            ("\"size\":10", "\"size\":11"),
            ("\"builder\":\"install\"", "\"builder\":\"other\""),
            (
                &format!("\"id\":\"{}\"", d.id),
                "\"id\":\"11111111111111111111111111111111\"",
            ),
        ] {
            let lie = payload.replacen(from, to, 1);
            assert_ne!(lie, payload);
            // Signed over the lie: the signature is valid, the fields are not (except size,
            // which only the unpacked tree can refute).
            let sealed = seal(ENTRY_PAYLOAD_TYPE, lie.as_bytes(), Some(&key));
            let opened = Description::open(&sealed, "d", &d.id, &trusted, true);
            if from.starts_with("\"size\"") {
                assert_eq!(opened.unwrap().size, 11);
            } else {
                assert!(opened.is_err(), "{to}");
            }
            // With the original signature: refused.
            let envelope: Envelope = serde_json::from_slice(&d.seal(Some(&key))).unwrap();
            let tampered = Envelope {
                payload: base64::engine::general_purpose::STANDARD.encode(lie.as_bytes()),
                ..envelope
            };
            let bytes = serde_json::to_vec(&tampered).unwrap();
            assert!(Description::open(&bytes, "d", &d.id, &trusted, true).is_err());
        }
    }
}
