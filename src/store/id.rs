//! Entry identity: names, ids and the fingerprints ids are computed from.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{json, Value};

use crate::hash::{base32, canonical_json, to_hex};

/// blake3 derive-key context of entry ids.
pub const ID_CONTEXT: &str = "pystore 2026-11 entry id v1";

/// Length of an id in base32 characters (160 bits).
pub const ID_LEN: usize = 32;

/// Longest allowed entry name.
pub const MAX_NAME_LEN: usize = 200;

/// An entry id: 32 base32 characters, the first 160 bits of the blake3 hash of a fingerprint.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryId(String);

impl EntryId {
    /// Parses an id, checking length and alphabet.
    pub fn parse(text: &str) -> Option<EntryId> {
        (text.len() == ID_LEN && base32::is_base32(text)).then(|| EntryId(text.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a name cannot be an entry name.
#[derive(Debug, thiserror::Error)]
#[error("{name:?} is not a valid entry name: {reason}; pass a name made of letters, digits and + - . _ = (with --name)")]
pub struct InvalidName {
    /// The rejected name.
    pub name: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// A readable entry name: 1 to 200 characters from `A-Z a-z 0-9 + - . _ =`, not starting with `.`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryName(String);

impl EntryName {
    /// Validates `name`.
    pub fn new(name: &str) -> Result<EntryName, InvalidName> {
        let invalid = |reason| InvalidName {
            name: name.to_owned(),
            reason,
        };
        if name.is_empty() {
            return Err(invalid("it is empty"));
        }
        if name.len() > MAX_NAME_LEN {
            return Err(invalid("it is longer than 200 characters"));
        }
        if name.starts_with('.') {
            return Err(invalid("it starts with '.'"));
        }
        if !name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"+-._=".contains(&c))
        {
            return Err(invalid(
                "it has characters other than letters, digits and + - . _ =",
            ));
        }
        Ok(EntryName(name.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EntryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The three ways an entry comes to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A single file known by its sha256 (a download, or a file added with `pystore add`).
    Fixed,
    /// A directory added from outside, known by its content hash.
    Source,
    /// The output of a builder run on other entries.
    Derived,
}

impl EntryKind {
    /// The kind's name in fingerprints and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Fixed => "fixed",
            EntryKind::Source => "source",
            EntryKind::Derived => "derived",
        }
    }

    /// Parses a kind name.
    pub fn parse(text: &str) -> Option<EntryKind> {
        match text {
            "fixed" => Some(EntryKind::Fixed),
            "source" => Some(EntryKind::Source),
            "derived" => Some(EntryKind::Derived),
            _ => None,
        }
    }
}

/// What an entry's id is computed from.
#[derive(Clone, Debug, PartialEq)]
pub enum Fingerprint {
    /// A fixed-output file: its declared sha256 and name, never where it came from.
    Fixed { name: EntryName, sha256: [u8; 32] },
    /// A tree added from outside: its content hash and name.
    Source { name: EntryName, tree: [u8; 32] },
    /// A builder's output: the builder, its version, its parameters and its inputs' ids.
    Derived {
        name: EntryName,
        builder: String,
        builder_version: String,
        params: Value,
        inputs: BTreeMap<String, EntryId>,
    },
}

impl Fingerprint {
    /// The entry name.
    pub fn name(&self) -> &EntryName {
        match self {
            Fingerprint::Fixed { name, .. }
            | Fingerprint::Source { name, .. }
            | Fingerprint::Derived { name, .. } => name,
        }
    }

    /// The entry kind.
    pub fn kind(&self) -> EntryKind {
        match self {
            Fingerprint::Fixed { .. } => EntryKind::Fixed,
            Fingerprint::Source { .. } => EntryKind::Source,
            Fingerprint::Derived { .. } => EntryKind::Derived,
        }
    }

    /// The entries this one is built from (derived entries' inputs), sorted and unique.
    pub fn references(&self) -> Vec<EntryId> {
        match self {
            Fingerprint::Derived { inputs, .. } => {
                let mut refs: Vec<EntryId> = inputs.values().cloned().collect();
                refs.sort();
                refs.dedup();
                refs
            }
            _ => Vec::new(),
        }
    }

    /// The fingerprint as a JSON value.
    pub fn to_json(&self) -> Value {
        match self {
            Fingerprint::Fixed { name, sha256 } => {
                json!({"kind": "fixed", "name": name.as_str(), "sha256": to_hex(sha256)})
            }
            Fingerprint::Source { name, tree } => {
                json!({"kind": "source", "name": name.as_str(), "tree": to_hex(tree)})
            }
            Fingerprint::Derived {
                name,
                builder,
                builder_version,
                params,
                inputs,
            } => {
                let inputs: serde_json::Map<String, Value> = inputs
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                    .collect();
                json!({
                    "kind": "derived",
                    "name": name.as_str(),
                    "builder": builder,
                    "builder_version": builder_version,
                    "params": params,
                    "inputs": inputs,
                })
            }
        }
    }

    /// The canonical JSON text the id is hashed from.
    pub fn canonical(&self) -> Result<String, canonical_json::CanonicalJsonError> {
        canonical_json::to_string(&self.to_json())
    }

    /// The entry id: base32 of the first 20 bytes of blake3 (derive-key mode, [`ID_CONTEXT`])
    /// over the canonical JSON.
    pub fn id(&self) -> Result<EntryId, canonical_json::CanonicalJsonError> {
        Ok(id_of_canonical(&self.canonical()?))
    }
}

impl Fingerprint {
    /// Parses a fingerprint from its canonical JSON text (as stored beside an entry, or sent in
    /// an entry description). Refuses anything that is not exactly the canonical form of a
    /// well-formed fingerprint, so one text can never mean two fingerprints.
    pub fn from_canonical(text: &str) -> Result<Fingerprint, InvalidFingerprint> {
        let invalid = |reason: String| InvalidFingerprint { reason };
        let value: Value =
            serde_json::from_str(text).map_err(|e| invalid(format!("not JSON: {e}")))?;
        let object = value
            .as_object()
            .ok_or_else(|| invalid("not a JSON object".into()))?;
        let string = |key: &str| -> Result<&str, InvalidFingerprint> {
            object
                .get(key)
                .and_then(Value::as_str)
                .ok_or_else(|| invalid(format!("{key:?} is missing or not a string")))
        };
        // Digests (a fixed output's sha256, a tree's blake3) have one spelling in a
        // fingerprint: 64 lower-case hex digits.
        let digest = |key: &str| -> Result<[u8; 32], InvalidFingerprint> {
            let text = string(key)?;
            hex::decode(text)
                .ok()
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                .filter(|_| text.bytes().all(|c| !c.is_ascii_uppercase()))
                .ok_or_else(|| invalid(format!("{key:?} is not 64 lower-case hex digits")))
        };
        let name = EntryName::new(string("name")?).map_err(|e| invalid(e.to_string()))?;
        let fingerprint = match string("kind")? {
            "fixed" => Fingerprint::Fixed {
                name,
                sha256: digest("sha256")?,
            },
            "source" => Fingerprint::Source {
                name,
                tree: digest("tree")?,
            },
            "derived" => {
                let inputs = object
                    .get("inputs")
                    .and_then(Value::as_object)
                    .ok_or_else(|| invalid("\"inputs\" is missing or not an object".into()))?
                    .iter()
                    .map(|(label, id)| {
                        id.as_str()
                            .and_then(EntryId::parse)
                            .map(|id| (label.clone(), id))
                            .ok_or_else(|| invalid(format!("input {label:?} is not an entry id")))
                    })
                    .collect::<Result<_, _>>()?;
                Fingerprint::Derived {
                    name,
                    builder: string("builder")?.to_owned(),
                    builder_version: string("builder_version")?.to_owned(),
                    params: object
                        .get("params")
                        .cloned()
                        .ok_or_else(|| invalid("\"params\" is missing".into()))?,
                    inputs,
                }
            }
            other => return Err(invalid(format!("unknown kind {other:?}"))),
        };
        let canonical = fingerprint
            .canonical()
            .map_err(|e| invalid(e.to_string()))?;
        if canonical != text {
            return Err(invalid(
                "it is not in canonical form or has fields a fingerprint does not have".into(),
            ));
        }
        Ok(fingerprint)
    }
}

/// Why a text is not a fingerprint.
#[derive(Debug, thiserror::Error)]
#[error("not a valid entry fingerprint: {reason}")]
pub struct InvalidFingerprint {
    /// What is wrong.
    pub reason: String,
}

/// The id of a canonical fingerprint text.
pub fn id_of_canonical(canonical: &str) -> EntryId {
    let digest = blake3::derive_key(ID_CONTEXT, canonical.as_bytes());
    EntryId(base32::encode(&digest[..20]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        assert!(EntryName::new("lxml-6.1.3-cp312-win_amd64").is_ok());
        assert!(EntryName::new("samai-1.0.0-windows-x86_64.zip").is_ok());
        for bad in ["", ".hidden", "a/b", "a b", "é", &"x".repeat(201)] {
            assert!(EntryName::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ids_parse_only_when_well_formed() {
        let id = Fingerprint::Fixed {
            name: EntryName::new("a").unwrap(),
            sha256: [0; 32],
        }
        .id()
        .unwrap();
        assert_eq!(id.as_str().len(), ID_LEN);
        assert_eq!(EntryId::parse(id.as_str()), Some(id.clone()));
        assert_eq!(EntryId::parse(&id.as_str()[1..]), None);
        assert_eq!(EntryId::parse(&id.as_str().replace(|_| true, "e")), None);
    }

    #[test]
    fn fingerprints_parse_back_from_canonical_json_only() {
        let fp = Fingerprint::Derived {
            name: EntryName::new("x").unwrap(),
            builder: "b".into(),
            builder_version: "1".into(),
            params: json!({"k": [1, "two"]}),
            inputs: [(
                "in".to_string(),
                EntryId::parse("11111111111111111111111111111111").unwrap(),
            )]
            .into_iter()
            .collect(),
        };
        let text = fp.canonical().unwrap();
        assert_eq!(Fingerprint::from_canonical(&text).unwrap(), fp);
        let fixed = Fingerprint::Fixed {
            name: EntryName::new("f").unwrap(),
            sha256: [7; 32],
        };
        assert_eq!(
            Fingerprint::from_canonical(&fixed.canonical().unwrap()).unwrap(),
            fixed
        );
        // Not canonical (white space), an extra field, a bad id: all refused.
        assert!(Fingerprint::from_canonical(&text.replace(':', ": ")).is_err());
        assert!(
            Fingerprint::from_canonical(&text.replace("{\"builder\"", "{\"a\":1,\"builder\""))
                .is_err()
        );
        assert!(Fingerprint::from_canonical(&text.replace("1111", "eeee")).is_err());
    }

    #[test]
    fn derived_references_are_sorted_inputs() {
        let a = EntryId::parse("11111111111111111111111111111111").unwrap();
        let b = EntryId::parse("00000000000000000000000000000000").unwrap();
        let fp = Fingerprint::Derived {
            name: EntryName::new("x").unwrap(),
            builder: "b".into(),
            builder_version: "1".into(),
            params: json!({}),
            inputs: [
                ("one".to_string(), a.clone()),
                ("two".to_string(), b.clone()),
                ("three".to_string(), a.clone()),
            ]
            .into_iter()
            .collect(),
        };
        assert_eq!(fp.references(), vec![b, a]);
    }
}
