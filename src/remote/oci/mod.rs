//! `oci://HOST[:PORT]/NAMESPACE/REPO:TAG`: an OCI registry (distribution spec v1.1) as a
//! remote. Every blob of the flat remote (entry archives, signed descriptions, files, the signed
//! closure index) is a registry blob named by its sha256 and found through manifests:
//!
//! - one image manifest per pushed root (`artifactType` [`ROOT_ARTIFACT`]) whose layers are the
//!   root's closure, each entry's description and archive, annotated with the entry's id, name
//!   and blob name (`org.opencontainers.image.title`, as ORAS names files);
//! - one catalog manifest ([`CATALOG_ARTIFACT`]) whose layers are the closure index and the
//!   files pushed as they are;
//! - the tag names an image index ([`CLOSURE_ARTIFACT`]) of those manifests.
//!
//! Reading resolves tag → index → manifests → layers by title; every downloaded blob must hash
//! to its digest. Writing checks each blob with `HEAD` first (so pushing again uploads nothing),
//! puts the manifests, and moves the tag last, so a reader never finds a manifest whose blobs
//! are missing. store-layout.md §12.4 is the normative mapping.

mod client;
pub mod credentials;
mod spec;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use sha2::Digest;

use super::description::{archive_name, description_name};
use super::index::INDEX_NAME;
use super::{io_err, Blob, PutReport, Remote, RemoteError, RootLayout, Size, Upload};
use crate::fetch::http::HttpConfig;
use crate::hash::{to_hex, Sha256Digest};
use client::{Registry, MAX_MANIFEST_SIZE};
use credentials::OciCredentialSources;
pub use spec::Spec;

/// `artifactType` of the image index a tag names.
pub const CLOSURE_ARTIFACT: &str = "application/vnd.pystore.closure.v1";
/// `artifactType` of a root's manifest.
pub const ROOT_ARTIFACT: &str = "application/vnd.pystore.root.v1";
/// `artifactType` of the manifest holding the closure index and files.
pub const CATALOG_ARTIFACT: &str = "application/vnd.pystore.catalog.v1";
/// Media type of an entry archive layer.
pub const ARCHIVE_MEDIA_TYPE: &str = "application/vnd.pystore.archive.v1.tar+zstd";
/// Media type of a signed entry description layer.
pub const DESCRIPTION_MEDIA_TYPE: &str = "application/vnd.pystore.description.v1+json";
/// Media type of the signed closure index layer.
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.pystore.closure-index.v1+json";
/// Media type of a file pushed as it is (a ZIP, provenance, an SBOM).
pub const FILE_MEDIA_TYPE: &str = "application/vnd.pystore.file.v1";
/// The OCI image manifest and index media types.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The OCI image index media type.
pub const IMAGE_INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// The empty config of artifacts (image spec v1.1), two bytes `{}`.
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// Layer annotation: the blob's name on the remote.
pub const TITLE: &str = "org.opencontainers.image.title";
/// Annotation: the entry id of a layer, or of a root manifest.
pub const ENTRY_ID: &str = "vnd.pystore.entry.id";
/// Annotation: the entry name of a layer, or of a root manifest.
pub const ENTRY_NAME: &str = "vnd.pystore.entry.name";
/// Annotation on a manifest and its index descriptor: the root's name.
pub const ROOT_NAME: &str = "vnd.pystore.root";
/// Annotation on a manifest and its index descriptor: `root` or `catalog`.
pub const ROLE: &str = "vnd.pystore.role";

/// Blobs larger than this are uploaded in chunks of this size.
pub const DEFAULT_CHUNK_SIZE: u64 = 16 << 20;

/// How OCI registries are reached.
#[derive(Clone, Debug)]
pub struct OciConfig {
    /// Where logins come from.
    pub credentials: OciCredentialSources,
    /// Chunk size of chunked uploads; smaller blobs go up in one request
    /// (`PYSTORE_OCI_CHUNK_SIZE`).
    pub chunk_size: u64,
}

impl Default for OciConfig {
    fn default() -> Self {
        OciConfig {
            credentials: OciCredentialSources::default(),
            chunk_size: DEFAULT_CHUNK_SIZE,
        }
    }
}

/// A layer as a manifest lists it.
#[derive(Clone, Debug)]
struct Layer {
    digest: String,
    size: u64,
    media_type: String,
    annotations: BTreeMap<String, String>,
}

impl Layer {
    fn descriptor(&self) -> Value {
        json!({
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
            "annotations": self.annotations,
        })
    }
}

/// What the tag holds now.
#[derive(Debug, Default)]
struct Resolved {
    /// The image index's digest (`None`: no such tag).
    index_digest: Option<String>,
    /// Root manifests' descriptors in the index, by root name.
    roots: BTreeMap<String, Value>,
    /// The titles of each root manifest's layers, by root name.
    root_titles: BTreeMap<String, BTreeSet<String>>,
    /// The catalog's layers, by title.
    catalog: BTreeMap<String, Layer>,
    /// Every titled layer, by title.
    blobs: BTreeMap<String, Layer>,
}

/// An OCI repository tag as a remote.
pub struct OciRemote {
    spec: Spec,
    registry: Registry,
    cache: Mutex<Option<Arc<Resolved>>>,
}

fn digest_of(sha256: &[u8; 32]) -> String {
    format!("sha256:{}", to_hex(sha256))
}

/// The sha256 of an OCI digest, which has one spelling: lower-case hex (OCI image spec).
fn sha256_of_digest(digest: &str) -> Option<[u8; 32]> {
    let hex = digest.strip_prefix("sha256:")?;
    Sha256Digest::parse_lowercase(hex)
        .ok()
        .map(Sha256Digest::to_bytes)
}

/// The media type a blob travels as, from its name.
fn media_type_of(name: &str) -> &'static str {
    if name == INDEX_NAME {
        INDEX_MEDIA_TYPE
    } else if name.ends_with(".tar.zst") {
        ARCHIVE_MEDIA_TYPE
    } else if name.ends_with(".entry.json") {
        DESCRIPTION_MEDIA_TYPE
    } else {
        FILE_MEDIA_TYPE
    }
}

/// Canonical JSON bytes (sorted keys, no white space; store-layout.md §3.2) and their digest,
/// so the same push gives the same manifests.
fn canonical(value: &Value) -> Result<(Vec<u8>, String), RemoteError> {
    let bytes = crate::hash::canonical_json::to_vec(value).map_err(|e| RemoteError::Registry {
        remote: String::from("oci"),
        reason: format!("cannot encode a manifest: {e}"),
    })?;
    let digest = digest_of(&sha2::Sha256::digest(&bytes).into());
    Ok((bytes, digest))
}

impl OciRemote {
    /// The remote `oci://` + `rest`.
    pub fn new(
        rest: &str,
        config: &OciConfig,
        http: &HttpConfig,
    ) -> Result<OciRemote, RemoteError> {
        let spec = Spec::parse(rest).map_err(|reason| RemoteError::BadSpec {
            spec: format!("oci://{rest}"),
            reason,
        })?;
        let registry = Registry::new(&spec, config, http)?;
        Ok(OciRemote {
            spec,
            registry,
            cache: Mutex::new(None),
        })
    }

    fn refused(&self, what: &str, reason: String) -> RemoteError {
        RemoteError::Tampered {
            remote: self.location(),
            name: what.to_owned(),
            reason,
        }
    }

    fn parse_layer(&self, value: &Value, manifest: &str) -> Result<Layer, RemoteError> {
        let bad = |why: &str| self.refused(&format!("manifest {manifest}"), why.to_owned());
        let digest = value
            .get("digest")
            .and_then(Value::as_str)
            .filter(|d| sha256_of_digest(d).is_some())
            .ok_or_else(|| bad("a descriptor without a sha256 digest"))?;
        let size = value
            .get("size")
            .and_then(Value::as_u64)
            .ok_or_else(|| bad("a descriptor without a size"))?;
        let annotations = value
            .get("annotations")
            .and_then(Value::as_object)
            .map(|a| {
                a.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Layer {
            digest: digest.to_owned(),
            size,
            media_type: value
                .get("mediaType")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            annotations,
        })
    }

    /// Reads tag → image index → manifests.
    fn resolve_now(&self) -> Result<Resolved, RemoteError> {
        let accept = format!("{IMAGE_INDEX_MEDIA_TYPE}, {MANIFEST_MEDIA_TYPE}");
        let Some((bytes, digest, _)) = self.registry.manifest(&self.spec.tag, &accept)? else {
            return Ok(Resolved::default());
        };
        let tag = format!("tag {}", self.spec.tag);
        let index: Value = serde_json::from_slice(&bytes)
            .map_err(|_| self.refused(&tag, "its manifest is not JSON".into()))?;
        if index.get("mediaType").and_then(Value::as_str) != Some(IMAGE_INDEX_MEDIA_TYPE)
            || index.get("artifactType").and_then(Value::as_str) != Some(CLOSURE_ARTIFACT)
        {
            return Err(self.registry.error(format!(
                "tag {} is not a pystore closure (an image index of artifactType {CLOSURE_ARTIFACT}); push to another tag",
                self.spec.tag
            )));
        }
        let mut resolved = Resolved {
            index_digest: Some(digest),
            ..Default::default()
        };
        let manifests = index
            .get("manifests")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for descriptor in manifests {
            let entry = self.parse_layer(&descriptor, &tag)?;
            if entry.size > MAX_MANIFEST_SIZE {
                return Err(self.refused(
                    &tag,
                    format!(
                        "manifest {} is larger than {MAX_MANIFEST_SIZE} bytes",
                        entry.digest
                    ),
                ));
            }
            let Some((bytes, _, _)) = self.registry.manifest(&entry.digest, MANIFEST_MEDIA_TYPE)?
            else {
                return Err(RemoteError::NotFound {
                    remote: self.location(),
                    what: format!("manifest {} the tag's index lists", entry.digest),
                });
            };
            let manifest: Value = serde_json::from_slice(&bytes).map_err(|_| {
                self.refused(&format!("manifest {}", entry.digest), "not JSON".into())
            })?;
            let mut layers = Vec::new();
            for layer in manifest
                .get("layers")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                layers.push(self.parse_layer(layer, &entry.digest)?);
            }
            match entry.annotations.get(ROLE).map(String::as_str) {
                Some("catalog") => {
                    for layer in &layers {
                        if let Some(title) = layer.annotations.get(TITLE) {
                            resolved.catalog.insert(title.clone(), layer.clone());
                        }
                    }
                }
                Some("root") => {
                    if let Some(name) = entry.annotations.get(ROOT_NAME) {
                        resolved.roots.insert(name.clone(), descriptor.clone());
                        resolved.root_titles.insert(
                            name.clone(),
                            layers
                                .iter()
                                .filter_map(|l| l.annotations.get(TITLE).cloned())
                                .collect(),
                        );
                    }
                }
                _ => {}
            }
            for layer in layers {
                if let Some(title) = layer.annotations.get(TITLE) {
                    resolved.blobs.entry(title.clone()).or_insert(layer);
                }
            }
        }
        Ok(resolved)
    }

    /// The tag's contents, read once (`fresh` reads again).
    fn resolved(&self, fresh: bool) -> Result<Arc<Resolved>, RemoteError> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if fresh || cache.is_none() {
            *cache = Some(Arc::new(self.resolve_now()?));
        }
        cache
            .clone()
            .ok_or_else(|| self.registry.error("the tag could not be read".into()))
    }

    /// Uploads the blob unless the repository has it (`HEAD`); whether it was sent.
    fn ensure_blob(&self, path: &Path, size: u64, digest: &str) -> Result<bool, RemoteError> {
        if self.registry.blob_size(digest)? == Some(size) {
            return Ok(false);
        }
        self.registry.upload(path, size, digest)?;
        Ok(true)
    }

    /// Puts a manifest by digest unless it is there; its descriptor.
    fn ensure_manifest(
        &self,
        manifest: &Value,
        annotations: &BTreeMap<String, String>,
        artifact_type: &str,
    ) -> Result<Value, RemoteError> {
        let (bytes, digest) = canonical(manifest)?;
        if !self.registry.has_manifest(&digest, MANIFEST_MEDIA_TYPE)? {
            self.registry
                .put_manifest(&digest, MANIFEST_MEDIA_TYPE, &bytes)?;
        }
        Ok(json!({
            "mediaType": MANIFEST_MEDIA_TYPE,
            "artifactType": artifact_type,
            "digest": digest,
            "size": bytes.len(),
            "annotations": annotations,
        }))
    }

    fn manifest(
        artifact_type: &str,
        config: &Value,
        layers: &[Layer],
        annotations: &BTreeMap<String, String>,
    ) -> Value {
        json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "artifactType": artifact_type,
            "config": config,
            "layers": layers.iter().map(Layer::descriptor).collect::<Vec<_>>(),
            "annotations": annotations,
        })
    }

    fn empty_config(&self) -> Result<Value, RemoteError> {
        let bytes = b"{}";
        let digest = digest_of(&sha2::Sha256::digest(bytes).into());
        if self.registry.blob_size(&digest)? != Some(2) {
            let temp = tempfile::NamedTempFile::new()
                .map_err(io_err("create a temporary file for", Path::new("config")))?;
            std::fs::write(temp.path(), bytes).map_err(io_err("write", temp.path()))?;
            self.registry.upload(temp.path(), 2, &digest)?;
        }
        Ok(json!({"mediaType": EMPTY_MEDIA_TYPE, "digest": digest, "size": 2, "data": "e30="}))
    }
}

impl Remote for OciRemote {
    fn location(&self) -> String {
        self.spec.location()
    }

    fn list(&self) -> Result<Option<BTreeMap<String, Blob>>, RemoteError> {
        let resolved = self.resolved(true)?;
        Ok(Some(
            resolved
                .blobs
                .iter()
                .map(|(name, layer)| {
                    (
                        name.clone(),
                        Blob {
                            name: name.clone(),
                            size: layer.size,
                            sha256: sha256_of_digest(&layer.digest),
                        },
                    )
                })
                .collect(),
        ))
    }

    fn get(&self, name: &str, dest: &Path, size: Size) -> Result<bool, RemoteError> {
        let resolved = self.resolved(false)?;
        let Some(layer) = resolved.blobs.get(name) else {
            return Ok(false);
        };
        if layer.size > size.max() {
            return Err(self.refused(
                name,
                format!(
                    "its manifest says {} bytes, more than {}",
                    layer.size,
                    size.max()
                ),
            ));
        }
        if !self.registry.download(&layer.digest, name, dest, size)? {
            return Err(RemoteError::NotFound {
                remote: self.location(),
                what: format!("blob {} ({name}) its manifest lists", layer.digest),
            });
        }
        Ok(true)
    }

    fn check_writable(&self, _files: &[Upload]) -> Result<(), RemoteError> {
        // Fails early (before packing) when the registry is down or refuses us.
        self.registry.ping()
    }

    fn put(&self, uploads: &[Upload]) -> Result<PutReport, RemoteError> {
        self.put_closure(uploads, &[])
    }

    fn put_closure(
        &self,
        uploads: &[Upload],
        roots: &[RootLayout],
    ) -> Result<PutReport, RemoteError> {
        let previous = self.resolved(true)?;
        let mut report = PutReport::default();
        let mut known: BTreeMap<String, Layer> = previous.blobs.clone();
        for upload in uploads {
            let digest = digest_of(&upload.sha256);
            if self.ensure_blob(&upload.path, upload.size, &digest)? {
                report.uploaded.push(upload.name.clone());
            } else {
                report.skipped.push(upload.name.clone());
            }
            known.insert(
                upload.name.clone(),
                Layer {
                    digest,
                    size: upload.size,
                    media_type: media_type_of(&upload.name).to_owned(),
                    annotations: BTreeMap::from([(TITLE.to_owned(), upload.name.clone())]),
                },
            );
        }
        let config = self.empty_config()?;

        // One manifest per root: its closure, each entry's description then archive.
        let mut in_roots = BTreeSet::new();
        let mut descriptors: BTreeMap<String, Value> = previous.roots.clone();
        for root in roots {
            let mut entries = root.entries.clone();
            entries.sort();
            let mut layers = Vec::new();
            for (id, name) in &entries {
                for blob in [description_name(id), archive_name(id)] {
                    let mut layer = known.get(&blob).cloned().ok_or_else(|| {
                        self.registry.error(format!(
                            "{blob} of {name} is neither on the registry nor being pushed"
                        ))
                    })?;
                    layer.media_type = media_type_of(&blob).to_owned();
                    layer.annotations = BTreeMap::from([
                        (TITLE.to_owned(), blob.clone()),
                        (ENTRY_ID.to_owned(), id.to_string()),
                        (ENTRY_NAME.to_owned(), name.clone()),
                    ]);
                    in_roots.insert(blob);
                    layers.push(layer);
                }
            }
            let annotations = BTreeMap::from([
                (ROLE.to_owned(), "root".to_owned()),
                (ROOT_NAME.to_owned(), root.name.clone()),
                (ENTRY_ID.to_owned(), root.id.to_string()),
            ]);
            let manifest = Self::manifest(ROOT_ARTIFACT, &config, &layers, &annotations);
            let descriptor = self.ensure_manifest(&manifest, &annotations, ROOT_ARTIFACT)?;
            descriptors.insert(root.name.clone(), descriptor);
        }

        // The catalog: the index, the files, and anything pushed outside a root's closure;
        // what the previous catalog held stays unless replaced by name.
        let mut catalog: BTreeMap<String, Layer> = previous.catalog.clone();
        // Blobs only a replaced root's manifest held: the merged closure index still lists
        // their entries, so they stay reachable from the catalog.
        let replaced: BTreeSet<&str> = roots.iter().map(|r| r.name.as_str()).collect();
        for (root, titles) in &previous.root_titles {
            if !replaced.contains(root.as_str()) {
                in_roots.extend(titles.iter().cloned());
            }
        }
        for (title, layer) in &previous.blobs {
            if !in_roots.contains(title) && !catalog.contains_key(title) {
                catalog.insert(title.clone(), layer.clone());
            }
        }
        for upload in uploads {
            if in_roots.contains(&upload.name) {
                continue;
            }
            if let Some(layer) = known.get(&upload.name) {
                catalog.insert(upload.name.clone(), layer.clone());
            }
        }
        let layers: Vec<Layer> = catalog.into_values().collect();
        let annotations = BTreeMap::from([(ROLE.to_owned(), "catalog".to_owned())]);
        let manifest = Self::manifest(CATALOG_ARTIFACT, &config, &layers, &annotations);
        let catalog = self.ensure_manifest(&manifest, &annotations, CATALOG_ARTIFACT)?;

        // The tag last: roots by name, then the catalog.
        let mut manifests: Vec<Value> = descriptors.into_values().collect();
        manifests.push(catalog);
        let index = json!({
            "schemaVersion": 2,
            "mediaType": IMAGE_INDEX_MEDIA_TYPE,
            "artifactType": CLOSURE_ARTIFACT,
            "manifests": manifests,
        });
        let (bytes, digest) = canonical(&index)?;
        if previous.index_digest.as_deref() != Some(digest.as_str()) {
            self.registry
                .put_manifest(&self.spec.tag, IMAGE_INDEX_MEDIA_TYPE, &bytes)?;
        }
        *self.cache.lock().unwrap_or_else(|p| p.into_inner()) = None;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_are_parsed_with_loopback_over_http() {
        let spec = Spec::parse("127.0.0.1:5000/acme/bundles:v1.0.0").unwrap();
        assert_eq!(spec.base.as_str(), "http://127.0.0.1:5000/");
        assert_eq!(
            (spec.host.as_str(), spec.repo.as_str(), spec.tag.as_str()),
            ("127.0.0.1:5000", "acme/bundles", "v1.0.0")
        );
        assert_eq!(spec.location(), "oci://127.0.0.1:5000/acme/bundles:v1.0.0");
        assert_eq!(
            Spec::parse("ghcr.io/acme/bundles:v1")
                .unwrap()
                .base
                .as_str(),
            "https://ghcr.io/"
        );
        assert_eq!(
            Spec::parse("localhost:5000/a/b:t").unwrap().base.scheme(),
            "http"
        );
        assert_eq!(
            Spec::parse("[::1]:5000/a/b:t").unwrap().base.as_str(),
            "http://[::1]:5000/"
        );
        assert_eq!(
            Spec::parse("registry.example:443/a/b:t")
                .unwrap()
                .base
                .scheme(),
            "https"
        );
        for (bad, why) in [
            ("ghcr.io/acme/bundles", "needs a tag"),
            ("ghcr.io", "expected oci://"),
            ("ghcr.io/Acme/b:t", "not a repository name"),
            ("ghcr.io/a//b:t", "not a repository name"),
            ("ghcr.io/a/b:-t", "not a tag"),
            ("gh cr.io/a/b:t", "not a registry host"),
        ] {
            let err = Spec::parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn media_types_follow_blob_names() {
        assert_eq!(media_type_of("pystore-index.json"), INDEX_MEDIA_TYPE);
        assert_eq!(media_type_of("abc.tar.zst"), ARCHIVE_MEDIA_TYPE);
        assert_eq!(media_type_of("abc.entry.json"), DESCRIPTION_MEDIA_TYPE);
        assert_eq!(media_type_of("demo-1.0.0-t.zip"), FILE_MEDIA_TYPE);
    }

    #[test]
    fn digests_are_checked_for_form() {
        let hex = "a".repeat(64);
        assert_eq!(sha256_of_digest(&format!("sha256:{hex}")), Some([0xaa; 32]));
        for bad in [
            "sha512:aa",
            "sha256:AA",
            &format!("sha256:{}", "g".repeat(64)),
        ] {
            assert_eq!(sha256_of_digest(bad), None, "{bad}");
        }
    }
}
