//! Remotes: where closures are pushed to and substituted from — a directory (`file:///DIR`), a
//! static HTTP cache (`http(s)://...`, read-only), GitHub Releases (`github:OWNER/REPO@TAG`) and
//! OCI registries (`oci://HOST[:PORT]/NAMESPACE/REPO:TAG`).
//!
//! A remote is a flat set of named blobs. An entry `<id>` is two blobs: its signed description
//! `<id>.entry.json` and its archive `<id>.tar.zst`; `pystore-index.json` is the signed closure
//! index of everything pushed there. This layer knows how entries are moved and checked, never
//! how they are built.

pub mod archive;
pub mod challenge;
pub mod description;
pub mod file;
pub mod github;
pub mod http;
pub mod index;
pub mod oci;
pub mod pull;
pub mod push;
pub mod substitute;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use reqwest::Url;

use crate::fetch::http::HttpConfig;
use crate::fetch::FetchError;

pub use description::{Description, DescriptionError};
pub use index::Index;

/// Why a remote operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// A remote spec that cannot be used.
    #[error("{spec:?} is not a remote: {reason} (use file:///DIR, https://HOST/PATH, github:OWNER/REPO@TAG or oci://HOST/NAMESPACE/REPO:TAG)")]
    BadSpec { spec: String, reason: String },
    /// A local file-system operation failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// Downloading failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// An API request failed for good.
    #[error("{method} {url}: {problem}")]
    Api {
        method: &'static str,
        url: String,
        #[source]
        problem: github::ApiProblem,
    },
    /// Limits checked before anything is sent.
    #[error("cannot push to {remote}: {reason}")]
    Preflight { remote: String, reason: String },
    /// A remote that cannot be written.
    #[error("{remote} is read-only: push to a file:/// directory or github:OWNER/REPO@TAG and serve that")]
    ReadOnly { remote: String },
    /// Pushing to GitHub needs a token.
    #[error("pushing to {remote} needs a token: set GITHUB_TOKEN or GH_TOKEN")]
    NoToken { remote: String },
    /// A registry refused a request or answered what pystore cannot use (auth errors name the
    /// host and where credentials were looked for).
    #[error("{remote}: {reason}")]
    Registry { remote: String, reason: String },
    /// Something the remote does not have.
    #[error("{remote} has no {what}")]
    NotFound { remote: String, what: String },
    /// A downloaded blob that is not what its description says.
    #[error("{name} from {remote}: {reason}; nothing was registered")]
    Tampered {
        remote: String,
        name: String,
        reason: String,
    },
    /// A refused description or index.
    #[error(transparent)]
    Description(#[from] DescriptionError),
    /// An archive problem.
    #[error(transparent)]
    Archive(#[from] archive::ArchiveError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

pub(crate) fn io_err<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> RemoteError + 'a {
    move |source| RemoteError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// How large a blob to accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    /// Exactly this many bytes (an archive whose description gives its size).
    Exact(u64),
    /// At most this many (a description, an index).
    AtMost(u64),
}

impl Size {
    /// The most bytes accepted.
    pub fn max(self) -> u64 {
        match self {
            Size::Exact(n) | Size::AtMost(n) => n,
        }
    }
}

/// Copies `reader` into a new file `dest`, refusing more than `size` allows.
pub(crate) fn copy_limited(
    reader: impl Read,
    dest: &Path,
    size: Size,
    remote: &str,
    name: &str,
) -> Result<(), RemoteError> {
    let mut file = std::fs::File::create(dest).map_err(io_err("create", dest))?;
    let copied = std::io::copy(&mut reader.take(size.max() + 1), &mut file)
        .map_err(io_err("write", dest))?;
    let wrong = match size {
        Size::Exact(n) => copied != n,
        Size::AtMost(n) => copied > n,
    };
    if wrong {
        return Err(RemoteError::Tampered {
            remote: remote.to_owned(),
            name: name.to_owned(),
            reason: match size {
                Size::Exact(n) => format!("not the {n} bytes its signed description says"),
                Size::AtMost(n) => format!("larger than {n} bytes"),
            },
        });
    }
    Ok(())
}

/// A blob a remote holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    /// Its name.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its sha256, when the remote reports one.
    pub sha256: Option<[u8; 32]>,
}

/// A blob to upload, from a local file.
#[derive(Clone, Debug)]
pub struct Upload {
    /// Its name on the remote.
    pub name: String,
    /// The local file.
    pub path: PathBuf,
    /// Its size.
    pub size: u64,
    /// Its sha256.
    pub sha256: [u8; 32],
}

impl Upload {
    /// An upload of the file at `path`, hashed now.
    pub fn of_file(name: String, path: PathBuf) -> Result<Upload, RemoteError> {
        let sha256 = crate::hash::sha256_file(&path).map_err(io_err("hash", &path))?;
        let size = std::fs::metadata(&path)
            .map_err(io_err("inspect", &path))?
            .len();
        Ok(Upload {
            name,
            path,
            size,
            sha256,
        })
    }

    /// Whether `blob` is this upload already (name, size and, when known, digest).
    pub fn matches(&self, blob: &Blob) -> bool {
        blob.name == self.name
            && blob.size == self.size
            && blob.sha256.map_or(true, |d| d == self.sha256)
    }
}

/// What a push sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PutReport {
    /// Blobs uploaded (new or replaced).
    pub uploaded: Vec<String>,
    /// Blobs that were there already.
    pub skipped: Vec<String>,
}

/// One pushed root and its closure, for remotes that group blobs by root (OCI: one manifest
/// per root).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RootLayout {
    /// The root's name in the closure index.
    pub name: String,
    /// The root entry.
    pub id: crate::store::EntryId,
    /// Every entry of its closure (id, name), the root included.
    pub entries: Vec<(crate::store::EntryId, String)>,
}

/// A place blobs are read from and (for some) written to.
pub trait Remote: Send + Sync {
    /// The remote as the user wrote it (never with credentials).
    fn location(&self) -> String;
    /// Every blob, when the remote can list them (a static HTTP cache cannot).
    fn list(&self) -> Result<Option<BTreeMap<String, Blob>>, RemoteError>;
    /// Downloads blob `name` into `dest`, refusing more bytes than `size` allows (a hostile
    /// remote must not fill the disk); `Ok(false)` when the remote does not have it.
    fn get(&self, name: &str, dest: &Path, size: Size) -> Result<bool, RemoteError>;
    /// Uploads `uploads` in order, skipping those already there with the same name, size and
    /// digest and replacing those that differ; then makes them visible (GitHub: publishes).
    fn put(&self, uploads: &[Upload]) -> Result<PutReport, RemoteError>;
    /// [`Remote::put`] for a push of `roots`, whose closures' blobs are among `uploads` or
    /// already on the remote; remotes that group blobs by root use the layout.
    fn put_closure(
        &self,
        uploads: &[Upload],
        roots: &[RootLayout],
    ) -> Result<PutReport, RemoteError> {
        let _ = roots;
        self.put(uploads)
    }
    /// Fails, before anything is packed or any request is sent, when pushing here cannot work:
    /// a read-only remote, a missing token, or `files` the remote cannot hold (GitHub: unsafe
    /// names, 2 GiB and more).
    fn check_writable(&self, files: &[Upload]) -> Result<(), RemoteError> {
        let _ = files;
        Ok(())
    }

    /// Blob `name` in memory (at most `max` bytes), or `None` when absent.
    fn get_bytes(&self, name: &str, max: u64) -> Result<Option<Vec<u8>>, RemoteError> {
        let temp = tempfile::NamedTempFile::new()
            .map_err(io_err("create a temporary file for", Path::new(name)))?;
        if !self.get(name, temp.path(), Size::AtMost(max))? {
            return Ok(None);
        }
        let mut bytes = Vec::new();
        std::fs::File::open(temp.path())
            .and_then(|f| f.take(max + 1).read_to_end(&mut bytes))
            .map_err(io_err("read", temp.path()))?;
        if bytes.len() as u64 > max {
            return Err(RemoteError::Tampered {
                remote: self.location(),
                name: name.to_owned(),
                reason: format!("larger than {max} bytes"),
            });
        }
        Ok(Some(bytes))
    }
}

/// How remotes are reached.
#[derive(Clone)]
pub struct RemoteConfig {
    /// HTTP retries and timeouts (static caches, GitHub).
    pub http: HttpConfig,
    /// GitHub's REST API base URL (`PYSTORE_GITHUB_API`, for GitHub Enterprise and tests).
    pub github_api: Url,
    /// The GitHub token (`GITHUB_TOKEN` / `GH_TOKEN`): sent only to `github_api` and the upload
    /// URL it names, never printed or stored.
    pub github_token: Option<String>,
    /// OCI registries: credentials' sources and the upload chunk size.
    pub oci: oci::OciConfig,
}

impl std::fmt::Debug for RemoteConfig {
    /// Never shows the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteConfig")
            .field("http", &self.http)
            .field("github_api", &self.github_api.as_str())
            .field(
                "github_token",
                &self.github_token.as_ref().map(|_| "<redacted>"),
            )
            .field("oci", &self.oci)
            .finish()
    }
}

/// Opens the remote `spec`: `file:///DIR`, `http(s)://...`, `github:OWNER/REPO@TAG` or
/// `oci://HOST[:PORT]/NAMESPACE/REPO:TAG`.
pub fn open(spec: &str, config: &RemoteConfig) -> Result<Box<dyn Remote>, RemoteError> {
    let bad = |reason: &str| RemoteError::BadSpec {
        spec: spec.to_owned(),
        reason: reason.to_owned(),
    };
    if let Some(rest) = spec.strip_prefix("github:") {
        let (repo, tag) = rest
            .split_once('@')
            .ok_or_else(|| bad("a GitHub remote needs a tag: github:OWNER/REPO@TAG"))?;
        let (owner, name) = repo
            .split_once('/')
            .ok_or_else(|| bad("expected github:OWNER/REPO@TAG"))?;
        return Ok(Box::new(github::GithubRemote::new(
            owner, name, tag, config,
        )?));
    }
    if let Some(rest) = spec.strip_prefix("oci://") {
        return Ok(Box::new(oci::OciRemote::new(
            rest,
            &config.oci,
            &config.http,
        )?));
    }
    let url = Url::parse(spec).map_err(|e| bad(&e.to_string()))?;
    match url.scheme() {
        "file" => {
            let dir = url
                .to_file_path()
                .map_err(|()| bad("not an absolute local path"))?;
            Ok(Box::new(file::FileRemote::new(dir)))
        }
        "http" | "https" => Ok(Box::new(http::HttpRemote::new(url, config)?)),
        other => Err(bad(&format!("unknown scheme {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> RemoteConfig {
        RemoteConfig {
            http: HttpConfig::default(),
            github_api: Url::parse("http://127.0.0.1:9/").unwrap(),
            github_token: Some("tok-SECRET".into()),
            oci: oci::OciConfig::default(),
        }
    }

    #[test]
    fn specs_are_parsed_and_bad_ones_explained() {
        let config = config();
        assert_eq!(
            open("file:///tmp/cache", &config).unwrap().location(),
            "file:///tmp/cache"
        );
        assert_eq!(
            open("github:acme/bundles@v1.0.0", &config)
                .unwrap()
                .location(),
            "github:acme/bundles@v1.0.0"
        );
        assert_eq!(
            open("http://127.0.0.1:9/cache", &config)
                .unwrap()
                .location(),
            "http://127.0.0.1:9/cache/"
        );
        assert_eq!(
            open("oci://127.0.0.1:9/acme/bundles:v1", &config)
                .unwrap()
                .location(),
            "oci://127.0.0.1:9/acme/bundles:v1"
        );
        for (spec, why) in [
            ("github:acme/bundles", "needs a tag"),
            ("github:acme@v1", "OWNER/REPO@TAG"),
            ("github:ac me/b@v1", "plain names"),
            ("github:acme/b@v1/../x", "plain names"),
            ("ftp://127.0.0.1/x", "unknown scheme"),
            ("relative/dir", "not a remote"),
            ("oci://127.0.0.1:9/acme/bundles", "needs a tag"),
        ] {
            let err = open(spec, &config)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains(why), "{spec}: {err}");
        }
    }

    #[test]
    fn blobs_larger_than_allowed_are_cut_off_and_refused() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("x");
        let ok = |size| copy_limited(&b"12345"[..], &dest, size, "r", "x").is_ok();
        assert!(ok(Size::Exact(5)));
        assert!(ok(Size::AtMost(5)));
        assert!(ok(Size::AtMost(9)));
        assert!(!ok(Size::Exact(4)), "longer than described");
        assert!(!ok(Size::Exact(6)), "shorter than described");
        assert!(!ok(Size::AtMost(4)));
        // An endless source stops one byte past the limit.
        let endless = std::io::repeat(b'a');
        assert!(copy_limited(endless, &dest, Size::AtMost(10), "r", "x").is_err());
        assert_eq!(std::fs::metadata(&dest).unwrap().len(), 11);
    }

    #[test]
    fn the_token_is_not_in_debug_output() {
        let text = format!("{:?}", config());
        assert!(!text.contains("tok-SECRET"), "{text}");
        assert!(text.contains("<redacted>"));
    }
}
