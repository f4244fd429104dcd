//! Fetching: fixed-output downloads (HTTP, `file://`, mirrors, wheelhouses) with retries and
//! resume, and the package index client. Knows nothing of what the files contain.

pub mod config;
pub mod credentials;
pub mod fixed;
pub mod http;
pub mod index;
pub mod name;
pub mod pip_default;
pub mod pipconf;
pub mod ranged;
pub mod retry;

pub use fixed::{FetchConfig, Fetched, Fetcher, FixedOutput};

/// A fetch error, naming the file, URL (never with credentials) and hash involved.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A fingerprint had no canonical form.
    #[error(transparent)]
    Fingerprint(#[from] crate::hash::canonical_json::CanonicalJsonError),
    /// The HTTP client could not be created.
    #[error("cannot set up HTTP: {0}")]
    Client(String),
    /// A server answered with an error status that retrying will not fix.
    #[error("GET {url}: HTTP {status}")]
    Status { url: String, status: u16 },
    /// A server refused the request for lack of (valid) credentials: HTTP 401 or 403.
    #[error("GET {url}: HTTP {status}: credentials missing or refused for {host}; pystore sends the login it finds in the URL (https://USER:PASSWORD@{host}/…) or in the netrc file ($NETRC, default ~/.netrc: `machine {host} login USER password PASSWORD`)")]
    Unauthorized {
        url: String,
        host: String,
        status: u16,
    },
    /// A request failed in a way retrying will not fix.
    #[error("GET {url}: {}", crate::errors::one_line(source))]
    Transport {
        url: String,
        #[source]
        source: TransportError,
    },
    /// Retries ran out.
    #[error("GET {url} failed after {attempts} attempts; last error: {last}")]
    GaveUp {
        url: String,
        attempts: u32,
        last: String,
    },
    /// A transfer that did not finish within the deadline.
    #[error("GET {url}: not finished within {seconds} s, the deadline for one transfer (PYSTORE_HTTP_DEADLINE); raise it for a slow link, or use a mirror")]
    Deadline { url: String, seconds: u64 },
    /// A body larger than pystore accepts for it.
    #[error("GET {url}: larger than {cap} bytes, the most pystore accepts for {what}{}", size.map(|s| format!(" ({s} bytes announced)")).unwrap_or_default())]
    TooLarge {
        url: String,
        what: &'static str,
        cap: u64,
        size: Option<u64>,
    },
    /// A file of the wrong size.
    #[error("{url}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        url: String,
        expected: u64,
        actual: u64,
    },
    /// A file with the wrong bytes.
    #[error("hash mismatch for {name} from {from}: expected sha256 {expected}, got {actual}")]
    HashMismatch {
        name: String,
        from: String,
        expected: String,
        actual: String,
    },
    /// Every source failed.
    #[error("cannot fetch {name} (sha256 {sha256}): {}", render_failures(failures))]
    AllSourcesFailed {
        name: String,
        sha256: String,
        failures: Vec<(String, String)>,
    },
    /// Nothing offers the file.
    #[error("cannot fetch {name}: it is not in the store and no mirror (PYSTORE_MIRRORS), wheelhouse (--find-links, PYSTORE_FIND_LINKS) or URL offers it")]
    NoSource { name: String },
    /// Offline, and files are missing.
    #[error("--offline, and {} not in the store or in a local mirror or wheelhouse:\n{}\nrun again without --offline, or put them in a wheelhouse (--find-links)", count_files(missing.len()), missing.iter().map(|m| format!("  {m}")).collect::<Vec<_>>().join("\n"))]
    Offline { missing: Vec<String> },
    /// A local file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// A local source file that cannot be fetched (not a regular file, unreadable).
    #[error(transparent)]
    Input(crate::hash::files::InputError),
    /// A local source file of unknown size that is larger than any download is allowed to be.
    #[error("{}: larger than {cap} bytes, the most pystore copies for a file of unknown size (PYSTORE_HTTP_MAX_SIZE)", path.display())]
    InputTooLarge { path: std::path::PathBuf, cap: u64 },
    /// No index configured but one is needed.
    #[error("no package index is configured and no pip was found to ask for its own: set PYSTORE_INDEX_URL to your index's simple-API URL (or PIP_INDEX_URL, or index-url in pip.conf), or pass --index-url; or install pip (PYSTORE_PIP_PYTHON names the python whose pip is asked)")]
    NoIndex,
    /// A URL that cannot be used.
    #[error("bad URL {value}: {reason}")]
    BadUrl { value: String, reason: String },
    /// No index knows the project.
    #[error("no index has a project named {name:?} (asked: {})", indexes.join(", "))]
    ProjectNotFound { name: String, indexes: Vec<String> },
    /// An index page that cannot be read.
    #[error("cannot read the index page {url}: {reason}")]
    BadIndexPage { url: String, reason: String },
    /// Several fetches failed.
    #[error("{} fetches failed:\n{}", .0.len(), .0.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
    Many(Vec<FetchError>),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

/// Why a request failed in a way retrying will not fix.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The HTTP client failed. The error carries no URL: URLs can hold credentials, and the
    /// enclosing [`FetchError::Transport`] names the URL redacted.
    #[error(transparent)]
    Client(reqwest::Error),
    /// A range answer that does not fit the file.
    #[error("a range answer of {got} bytes at {start} does not fit the file's {len} bytes")]
    RangeOutside { got: usize, start: u64, len: u64 },
    /// A server that served ranges before and now answers with the whole file.
    #[error("stopped serving ranges")]
    RangesStopped,
    /// A range answer for other bytes than asked for.
    #[error("asked for bytes {at}-{end} of {len}, got {got} bytes at {start} of {total}")]
    WrongRange {
        at: u64,
        end: u64,
        len: u64,
        got: usize,
        start: u64,
        total: u64,
    },
    /// A partial answer without a usable `Content-Range`.
    #[error("answered {range} without a valid Content-Range")]
    NoContentRange { range: String },
}

impl TransportError {
    /// A client error, with its URL (which may carry credentials) removed.
    pub(crate) fn client(err: reqwest::Error) -> TransportError {
        TransportError::Client(err.without_url())
    }
}

fn render_failures(failures: &[(String, String)]) -> String {
    failures
        .iter()
        .map(|(source, err)| format!("\n  from {source}: {err}"))
        .collect()
}

fn count_files(n: usize) -> String {
    if n == 1 {
        "1 file is".into()
    } else {
        format!("{n} files are")
    }
}
