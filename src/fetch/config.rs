//! Where fetching is configured: command-line flags, environment variables, pip's configuration
//! and netrc. Read once by the CLI; the fetch code below it sees only the result.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;

use super::credentials::Credentials;
use super::fixed::FetchConfig;
use super::http::HttpConfig;
use super::pip_default::{PipIndexQuery, PIP_PYTHON_VAR};
use super::FetchError;

/// Looks up an environment variable (a closure, so tests can supply their own).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The indexes to use, primary first, with credentials taken out.
#[derive(Clone, Debug, Default)]
pub struct IndexUrls {
    /// Primary then extra indexes, without credentials.
    pub urls: Vec<Url>,
    /// Where the primary came from (a flag, a variable or a file), for messages.
    pub origin: Option<String>,
    /// When nothing above names an index: the machine's pip, asked once, only if an index is
    /// needed (a no-op realise never runs pip).
    pip: Option<Arc<PipIndexQuery>>,
    /// `-q` / `--json`: no notice line when pip's choice is taken.
    quiet: bool,
}

impl IndexUrls {
    /// Configured indexes only (no pip fallback): for tests and for callers that have a list.
    pub fn fixed(urls: Vec<Url>) -> IndexUrls {
        IndexUrls {
            urls,
            ..IndexUrls::default()
        }
    }

    /// The indexes to ask, primary first. With none configured, asks the machine's pip (once)
    /// and says in one notice line which index it chose and why; empty when there is no pip
    /// either, and the caller's "no index" error applies.
    pub fn resolve(&self) -> Vec<Url> {
        self.resolve_with_origin().0
    }

    /// [`Self::resolve`], with where the primary index came from.
    pub fn resolve_with_origin(&self) -> (Vec<Url>, Option<String>) {
        if !self.urls.is_empty() {
            return (self.urls.clone(), self.origin.clone());
        }
        let Some(answer) = self.pip.as_deref().and_then(PipIndexQuery::answer) else {
            return (Vec::new(), None);
        };
        let Ok(mut url) = Url::parse(&answer.url) else {
            return (Vec::new(), None);
        };
        if !url.username().is_empty() || url.password().is_some() {
            // Credentials are taken from the configuration pystore reads (and netrc) only.
            let _ = url.set_username("");
            let _ = url.set_password(None);
            tracing::warn!("pip's index URL carries credentials, which pystore does not take from pip: put them in ~/.netrc or PYSTORE_INDEX_URL");
        }
        if !self.quiet {
            eprintln!(
                "notice: using the index pip uses, {url} ({}); set PYSTORE_INDEX_URL to choose another",
                answer.reason
            );
        }
        (vec![url], Some(answer.reason.clone()))
    }
}

/// Parses a URL or an absolute path (as a `file://` URL).
pub fn parse_location(what: &str, value: &str) -> Result<Url, FetchError> {
    if value.starts_with('/') {
        return Url::from_file_path(value).map_err(|_| FetchError::BadUrl {
            value: format!("{what} {value}"),
            reason: "not a usable path".into(),
        });
    }
    Url::parse(value).map_err(|e| FetchError::BadUrl {
        value: format!("{what} {}", value.split('@').next_back().unwrap_or(value)),
        reason: e.to_string(),
    })
}

/// Index settings, highest precedence first: `--index-url`, `PYSTORE_INDEX_URL`,
/// `PIP_INDEX_URL`, pip.conf `index-url`, and last what the machine's pip would use (asked only
/// when needed, see [`IndexUrls::resolve`]); extras from `--extra-index-url`,
/// `PIP_EXTRA_INDEX_URL` and pip.conf `extra-index-url`. Credentials in the URLs go into
/// `credentials`. `quiet` silences the notice printed when pip's choice is taken.
pub fn index_urls(
    flag_index: Option<&str>,
    flag_extra: &[String],
    env: Env<'_>,
    credentials: &mut Credentials,
    quiet: bool,
) -> Result<IndexUrls, FetchError> {
    let pip = super::pipconf::PipConfig::load(env);
    let primary = flag_index
        .map(|v| ("--index-url".to_owned(), v.to_owned()))
        .or_else(|| {
            env("PYSTORE_INDEX_URL")
                .filter(|v| !v.is_empty())
                .map(|v| ("PYSTORE_INDEX_URL".into(), v))
        })
        .or_else(|| {
            env("PIP_INDEX_URL")
                .filter(|v| !v.is_empty())
                .map(|v| ("PIP_INDEX_URL".into(), v))
        })
        .or_else(|| {
            pip.index_url
                .clone()
                .map(|(file, v)| (format!("index-url in {file}"), v))
        });
    let mut extras: Vec<(String, String)> = flag_extra
        .iter()
        .map(|v| ("--extra-index-url".into(), v.clone()))
        .collect();
    if let Some(value) = env("PIP_EXTRA_INDEX_URL") {
        extras.extend(
            value
                .split_whitespace()
                .map(|v| ("PIP_EXTRA_INDEX_URL".into(), v.to_owned())),
        );
    }
    extras.extend(
        pip.extra_index_urls
            .iter()
            .map(|(file, v)| (format!("extra-index-url in {file}"), v.clone())),
    );
    let mut urls = Vec::new();
    let origin = primary.as_ref().map(|(origin, _)| origin.clone());
    for (origin, value) in primary.into_iter().chain(extras) {
        let url = parse_location(&origin, &value)?;
        let clean = credentials.absorb(&url);
        if !urls.contains(&clean) {
            urls.push(clean);
        }
    }
    let pip = urls
        .is_empty()
        .then(|| Arc::new(PipIndexQuery::from_env(env(PIP_PYTHON_VAR))));
    Ok(IndexUrls {
        urls,
        origin,
        pip,
        quiet,
    })
}

/// Loads netrc logins from `$NETRC`, else `~/.netrc`.
pub fn load_netrc(env: Env<'_>, credentials: &mut Credentials) {
    let path = env("NETRC")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".netrc")));
    if let Some(path) = path {
        credentials.load_netrc(&path);
    }
}

/// Fetch settings from the environment: `PYSTORE_MIRRORS` (whitespace-separated URLs or absolute
/// paths), `PYSTORE_FIND_LINKS` (whitespace-separated directories) plus `--find-links`,
/// `PYSTORE_HTTP_RETRIES`, `PYSTORE_HTTP_TIMEOUT` (seconds), `PYSTORE_HTTP_BACKOFF_MS`,
/// `PYSTORE_HTTP_DEADLINE` (seconds per transfer), `PYSTORE_HTTP_MIN_RATE` (bytes per second),
/// `PYSTORE_HTTP_MAX_SIZE` (bytes, for downloads of unknown size).
pub fn fetch_config(
    env: Env<'_>,
    flag_find_links: &[PathBuf],
    offline: bool,
    jobs: usize,
    progress: bool,
    credentials: &mut Credentials,
) -> Result<FetchConfig, FetchError> {
    let mut mirrors = Vec::new();
    for value in env("PYSTORE_MIRRORS")
        .unwrap_or_default()
        .split_whitespace()
    {
        mirrors.push(credentials.absorb(&parse_location("PYSTORE_MIRRORS", value)?));
    }
    let mut find_links: Vec<PathBuf> = flag_find_links.to_vec();
    find_links.extend(
        env("PYSTORE_FIND_LINKS")
            .unwrap_or_default()
            .split_whitespace()
            .map(PathBuf::from),
    );
    let number = |name: &str| -> Result<Option<u64>, FetchError> {
        env(name)
            .map(|v| {
                v.trim().parse::<u64>().map_err(|e| FetchError::BadUrl {
                    value: format!("{name}={v}"),
                    reason: e.to_string(),
                })
            })
            .transpose()
    };
    let defaults = HttpConfig::default();
    let http = HttpConfig {
        retries: number("PYSTORE_HTTP_RETRIES")?.map_or(defaults.retries, |n| n.min(100) as u32),
        timeout: number("PYSTORE_HTTP_TIMEOUT")?.map_or(defaults.timeout, Duration::from_secs),
        backoff: number("PYSTORE_HTTP_BACKOFF_MS")?.map_or(defaults.backoff, Duration::from_millis),
        deadline: number("PYSTORE_HTTP_DEADLINE")?.map_or(defaults.deadline, Duration::from_secs),
        min_rate: number("PYSTORE_HTTP_MIN_RATE")?.unwrap_or(defaults.min_rate),
        max_size: number("PYSTORE_HTTP_MAX_SIZE")?.unwrap_or(defaults.max_size),
    };
    Ok(FetchConfig {
        mirrors,
        find_links,
        offline,
        jobs,
        progress,
        http,
    })
}
