//! The closure index of a remote, `pystore-index.json`: a DSSE envelope (payload type
//! `application/vnd.pystore.index.v1+json`) over the canonical JSON of
//! `{"format":"pystore-index-v1","entries":{ID:NAME},"roots":{ROOT:ID},"files":{FILE:{"sha256","size"}}}`.
//! Pushes merge into it; substituters look ids up in it (one request per remote and run); `pull`
//! without paths pulls its roots.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::description::{open, seal, DescriptionError};
use crate::hash::{canonical_json, to_hex, Sha256Digest};
use crate::sign::{SecretKey, TrustedKeys};
use crate::store::EntryId;

/// The blob name of the index.
pub const INDEX_NAME: &str = "pystore-index.json";

/// The DSSE payload type of the index.
pub const INDEX_PAYLOAD_TYPE: &str = "application/vnd.pystore.index.v1+json";

/// The `format` field of the index.
pub const INDEX_FORMAT: &str = "pystore-index-v1";

/// Largest index accepted (about a million entries).
pub const MAX_INDEX_SIZE: u64 = 256 << 20;

/// A file pushed beside the entries (a ZIP, its provenance, its SBOM).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRef {
    /// sha256 of its bytes.
    pub sha256: [u8; 32],
    /// Its size.
    pub size: u64,
}

/// What a remote holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Index {
    /// Entries by id, with their names.
    pub entries: BTreeMap<EntryId, String>,
    /// Named roots (what `pull REMOTE` fetches).
    pub roots: BTreeMap<String, EntryId>,
    /// Other files, by name.
    pub files: BTreeMap<String, FileRef>,
}

impl Index {
    /// The canonical payload.
    pub fn to_canonical(&self) -> Vec<u8> {
        let entries: serde_json::Map<String, Value> = self
            .entries
            .iter()
            .map(|(id, name)| (id.to_string(), Value::from(name.as_str())))
            .collect();
        let roots: serde_json::Map<String, Value> = self
            .roots
            .iter()
            .map(|(name, id)| (name.clone(), Value::from(id.as_str())))
            .collect();
        let files: serde_json::Map<String, Value> = self
            .files
            .iter()
            .map(|(name, f)| {
                (
                    name.clone(),
                    json!({"sha256": to_hex(&f.sha256), "size": f.size}),
                )
            })
            .collect();
        let value =
            json!({"format": INDEX_FORMAT, "entries": entries, "roots": roots, "files": files});
        canonical_json::to_vec(&value).unwrap_or_default()
    }

    /// The envelope file, signed with `key` when given.
    pub fn seal(&self, key: Option<&SecretKey>) -> Vec<u8> {
        seal(INDEX_PAYLOAD_TYPE, &self.to_canonical(), key)
    }

    /// Opens an index file, checking its signature unless `require_sigs` is false.
    pub fn open(
        bytes: &[u8],
        what: &str,
        trusted: &TrustedKeys,
        require_sigs: bool,
    ) -> Result<Index, DescriptionError> {
        let payload = open(bytes, what, INDEX_PAYLOAD_TYPE, trusted, require_sigs)?;
        let bad = |reason: &str| DescriptionError::Malformed {
            what: what.to_owned(),
            reason: reason.to_owned(),
        };
        let value: Value = serde_json::from_slice(&payload).map_err(|_| bad("not JSON"))?;
        if value.get("format").and_then(Value::as_str) != Some(INDEX_FORMAT) {
            return Err(bad("not a pystore-index-v1 index"));
        }
        let object = |key: &str| {
            value
                .get(key)
                .and_then(Value::as_object)
                .ok_or_else(|| bad("a section is missing"))
        };
        let mut index = Index::default();
        for (id, name) in object("entries")? {
            let id = EntryId::parse(id).ok_or_else(|| bad("an entry key is not an id"))?;
            let name = name
                .as_str()
                .ok_or_else(|| bad("an entry name is not text"))?;
            index.entries.insert(id, name.to_owned());
        }
        for (root, id) in object("roots")? {
            let id = id
                .as_str()
                .and_then(EntryId::parse)
                .ok_or_else(|| bad("a root is not an id"))?;
            index.roots.insert(root.clone(), id);
        }
        for (name, file) in object("files")? {
            let sha256 = file
                .get("sha256")
                .and_then(Value::as_str)
                .and_then(|h| h.parse::<Sha256Digest>().ok())
                .ok_or_else(|| bad("a file's sha256 is malformed"))?
                .to_bytes();
            let size = file
                .get("size")
                .and_then(Value::as_u64)
                .ok_or_else(|| bad("a file's size is malformed"))?;
            index.files.insert(name.clone(), FileRef { sha256, size });
        }
        Ok(index)
    }

    /// Adds everything `other` has (its roots and files replace same-named ones).
    pub fn merge(&mut self, other: Index) {
        self.entries.extend(other.entries);
        self.roots.extend(other.roots);
        self.files.extend(other.files);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_signed_and_refuses_other_keys() {
        let key = SecretKey::generate("ci").unwrap();
        let id = EntryId::parse("11111111111111111111111111111111").unwrap();
        let mut index = Index::default();
        index.entries.insert(id.clone(), "x".into());
        index.roots.insert("demo-t".into(), id);
        index.files.insert(
            "demo.zip".into(),
            FileRef {
                sha256: [9; 32],
                size: 4,
            },
        );
        let sealed = index.seal(Some(&key));
        assert_eq!(sealed, index.seal(Some(&key)), "deterministic");
        let trusted = TrustedKeys(vec![key.public()]);
        assert_eq!(Index::open(&sealed, "i", &trusted, true).unwrap(), index);
        assert!(Index::open(&sealed, "i", &TrustedKeys::default(), true).is_err());
        assert!(Index::open(&index.seal(None), "i", &trusted, true).is_err());
        assert_eq!(
            Index::open(&index.seal(None), "i", &trusted, false).unwrap(),
            index
        );
    }
}
