//! Fixed-output entries: files known by name and sha256, fetched from wherever has the bytes.
//!
//! Sources, in order: the store itself (no request at all), content-addressed mirrors
//! (`<mirror>/sha256/<hex>`), local wheelhouses (`<dir>/<name>`), then the file's own URLs. A
//! source that fails (missing, unreachable, wrong bytes) is skipped for the next; the entry is
//! registered only when the sha256 matches, so a mirror cannot change what a build sees.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::Url;
use sha2::Digest;

use super::credentials::{redact, Credentials};
use super::http::{HttpClient, HttpConfig};
use super::FetchError;
use crate::hash::to_hex;
use crate::store::{EntryInfo, EntryName, Fingerprint, Store, StoreError};

/// A file to fetch: its identity (name and sha256) and where it may be found.
#[derive(Clone, Debug)]
pub struct FixedOutput {
    /// Entry name (for wheels, the wheel's file name).
    pub name: EntryName,
    /// Declared sha256: the entry's identity.
    pub sha256: [u8; 32],
    /// Declared size, when known (checked before downloading the whole file).
    pub size: Option<u64>,
    /// URLs of the file itself (tried after mirrors and wheelhouses).
    pub urls: Vec<Url>,
}

impl FixedOutput {
    /// The fingerprint, and so the entry id: name and sha256 only, never a URL.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::Fixed {
            name: self.name.clone(),
            sha256: self.sha256,
        }
    }
}

/// Where fetched bytes may come from besides the files' own URLs.
#[derive(Clone, Debug, Default)]
pub struct FetchConfig {
    /// Content-addressed mirrors: `file://` or `http(s)://` bases serving `sha256/<hex>`.
    pub mirrors: Vec<Url>,
    /// Local wheelhouses: directories holding files by name.
    pub find_links: Vec<PathBuf>,
    /// Touch no network: only the store, `file://` mirrors, wheelhouses and `file://` URLs.
    pub offline: bool,
    /// Downloads at once.
    pub jobs: usize,
    /// Draw progress bars on stderr.
    pub progress: bool,
    /// Retries, backoff, timeouts.
    pub http: HttpConfig,
}

/// A fetched (or already present) file.
#[derive(Clone, Debug)]
pub struct Fetched {
    /// The valid entry.
    pub entry: EntryInfo,
    /// Where the bytes came from (`store` when nothing was fetched); never holds credentials.
    pub source: String,
    /// When fetching it started (for `realise --timings`).
    pub started: std::time::Instant,
    /// When it was done.
    pub finished: std::time::Instant,
}

/// Fetches fixed-output entries into a store.
pub struct Fetcher<'a> {
    store: &'a Store,
    config: FetchConfig,
    credentials: Credentials,
    http: OnceLock<Result<HttpClient, String>>,
    bars: MultiProgress,
}

/// One place to try.
enum Source {
    Local(PathBuf),
    Remote(Url),
}

impl Source {
    fn describe(&self) -> String {
        match self {
            Source::Local(path) => path.display().to_string(),
            Source::Remote(url) => redact(url),
        }
    }
}

impl<'a> Fetcher<'a> {
    /// A fetcher over `store`. `credentials` supply logins for hosts (URL userinfo is also
    /// honoured, and stripped).
    pub fn new(store: &'a Store, config: FetchConfig, credentials: Credentials) -> Fetcher<'a> {
        let target = if config.progress {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Fetcher {
            store,
            config,
            credentials,
            http: OnceLock::new(),
            bars: MultiProgress::with_draw_target(target),
        }
    }

    /// Downloads (and other requests) this fetcher makes at once (`-j`).
    pub fn jobs(&self) -> usize {
        self.config.jobs.max(1)
    }

    /// The HTTP client, created on first use (so a store hit costs no TLS set-up).
    pub fn http(&self) -> Result<&HttpClient, FetchError> {
        self.http
            .get_or_init(|| {
                HttpClient::new(self.config.http.clone(), self.credentials.clone())
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|message| FetchError::Client(message.clone()))
    }

    fn sources(&self, item: &FixedOutput) -> Vec<Source> {
        let hex = to_hex(&item.sha256);
        let mut sources = Vec::new();
        for mirror in &self.config.mirrors {
            let base = if mirror.path().ends_with('/') {
                mirror.clone()
            } else {
                with_trailing_slash(mirror)
            };
            if let Ok(url) = base.join(&format!("sha256/{hex}")) {
                sources.push(to_source(url));
            }
        }
        for dir in &self.config.find_links {
            sources.push(Source::Local(dir.join(item.name.as_str())));
        }
        sources.extend(item.urls.iter().cloned().map(to_source));
        if self.config.offline {
            sources.retain(|s| matches!(s, Source::Local(_)));
        }
        sources
    }

    /// Whether `item` is in the store or in a local source (what `--offline` can get).
    fn locally_available(&self, item: &FixedOutput) -> Result<bool, FetchError> {
        if self.store.query(&item.fingerprint().id()?)?.is_some() {
            return Ok(true);
        }
        let cap = self.config.http.max_size;
        Ok(self
            .sources(item)
            .iter()
            .any(|s| matches!(s, Source::Local(p) if holds(p, item, cap))))
    }

    /// Fetches one file (or finds it in the store).
    pub fn fetch(&self, item: &FixedOutput) -> Result<Fetched, FetchError> {
        let started = std::time::Instant::now();
        let fingerprint = item.fingerprint();
        if let Some(entry) = self.store.query(&fingerprint.id()?)? {
            return Ok(Fetched {
                entry,
                source: "store".into(),
                started,
                finished: started,
            });
        }
        let sources = self.sources(item);
        if sources.is_empty() {
            return Err(if self.config.offline {
                FetchError::Offline {
                    missing: vec![describe_item(item)],
                }
            } else {
                FetchError::NoSource {
                    name: item.name.to_string(),
                }
            });
        }
        let used = Mutex::new(String::new());
        let result = self.store.build(&fingerprint, |out| {
            let mut failures = Vec::new();
            // Sources that had a file but the wrong one: worth a warning once another serves.
            let mut wrong: Vec<String> = Vec::new();
            for source in &sources {
                match self.try_source(item, source, out) {
                    Ok(()) => {
                        for failure in &wrong {
                            tracing::warn!(
                                "{failure}; skipped it and fetched {} from {}",
                                item.name,
                                source.describe()
                            );
                        }
                        *used.lock().unwrap_or_else(|p| p.into_inner()) = source.describe();
                        return Ok(());
                    }
                    Err(err) => {
                        tracing::debug!("{}: {err}", source.describe());
                        let is_wrong = matches!(
                            err,
                            FetchError::HashMismatch { .. } | FetchError::SizeMismatch { .. }
                        ) || matches!(source, Source::Local(p) if p.symlink_metadata().is_ok());
                        if is_wrong {
                            wrong.push(err.to_string());
                        }
                        failures.push((source.describe(), err.to_string()));
                        let _ = fs::remove_file(out);
                    }
                }
            }
            Err(Box::new(FetchError::AllSourcesFailed {
                name: item.name.to_string(),
                sha256: to_hex(&item.sha256),
                failures,
            }))
        });
        match result {
            Ok(registration) => {
                let source = used.into_inner().unwrap_or_else(|p| p.into_inner());
                let source = if registration.built {
                    source
                } else {
                    "store".into()
                };
                Ok(Fetched {
                    entry: registration.entry,
                    source,
                    started,
                    finished: std::time::Instant::now(),
                })
            }
            Err(StoreError::Build { source, .. }) => match source.downcast::<FetchError>() {
                Ok(fetch_error) => Err(*fetch_error),
                Err(other) => Err(FetchError::Other(other.to_string())),
            },
            Err(other) => Err(other.into()),
        }
    }

    /// Fetches every item, `jobs` at a time, returning results in the items' order. Offline,
    /// everything missing is reported in one error before anything is fetched. Failures are
    /// collected and reported together.
    pub fn fetch_all(&self, items: &[FixedOutput]) -> Result<Vec<Fetched>, FetchError> {
        if self.config.offline {
            let mut missing = Vec::new();
            for item in items {
                if !self.locally_available(item)? {
                    missing.push(describe_item(item));
                }
            }
            if !missing.is_empty() {
                return Err(FetchError::Offline { missing });
            }
        }
        let total = self.bars.add(ProgressBar::new(items.len() as u64));
        if let Ok(style) =
            ProgressStyle::with_template("fetching [{bar:30}] {pos}/{len} files {elapsed}")
        {
            total.set_style(style.progress_chars("=> "));
        }
        let results = crate::parallel::map_in_order(items, self.config.jobs, |_, item| {
            let result = self.fetch(item);
            total.inc(1);
            result
        });
        total.finish_and_clear();
        let mut fetched = Vec::with_capacity(items.len());
        let mut errors = Vec::new();
        for result in results {
            match result {
                Ok(ok) => fetched.push(ok),
                Err(err) => errors.push(err),
            }
        }
        match errors.len() {
            0 => Ok(fetched),
            1 => Err(errors.remove(0)),
            _ => Err(FetchError::Many(errors)),
        }
    }

    fn try_source(
        &self,
        item: &FixedOutput,
        source: &Source,
        out: &Path,
    ) -> Result<(), FetchError> {
        let (size, sha256) = match source {
            Source::Local(path) => copy_hashing(path, out, item.size, self.config.http.max_size)?,
            Source::Remote(url) => {
                let bar = self.bars.add(ProgressBar::new(item.size.unwrap_or(0)));
                if let Ok(style) = ProgressStyle::with_template(
                    "{msg:40!} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                ) {
                    bar.set_style(style.progress_chars("=> "));
                }
                bar.set_message(item.name.to_string());
                let result = self
                    .http()?
                    .download(url, out, item.size, &|position| bar.set_position(position));
                bar.finish_and_clear();
                self.bars.remove(&bar);
                let downloaded = result?;
                (downloaded.size, downloaded.sha256)
            }
        };
        if sha256 != item.sha256 {
            return Err(FetchError::HashMismatch {
                name: item.name.to_string(),
                from: source.describe(),
                expected: to_hex(&item.sha256),
                actual: to_hex(&sha256),
            });
        }
        if let Some(expected) = item.size {
            if expected != size {
                return Err(FetchError::SizeMismatch {
                    url: source.describe(),
                    expected,
                    actual: size,
                });
            }
        }
        Ok(())
    }
}

/// Whether a wheelhouse in `find_links` (`--find-links`, `PYSTORE_FIND_LINKS`) holds `item`: a
/// regular file of its name, with the size it pins (checked first) and its sha256. A wrong file
/// there is not `item`: the fetcher skips it (with a warning) for the next source.
pub fn wheelhouse_holds(find_links: &[PathBuf], item: &FixedOutput) -> bool {
    let cap = HttpConfig::default().max_size;
    find_links
        .iter()
        .any(|dir| holds(&dir.join(item.name.as_str()), item, cap))
}

/// Whether the local file `path` is `item`: a regular file with its size (compared before
/// anything is read) and its sha256.
fn holds(path: &Path, item: &FixedOutput, cap: u64) -> bool {
    let Ok((mut file, size)) =
        crate::hash::files::open_input(path, "file", item.size.unwrap_or(cap))
    else {
        return false;
    };
    if item.size.is_some_and(|expected| expected != size) {
        return false;
    }
    let mut hasher = sha2::Sha256::new();
    match std::io::copy(&mut (&mut file).take(size), &mut hasher) {
        Ok(n) if n == size => <[u8; 32]>::from(hasher.finalize()) == item.sha256,
        _ => false,
    }
}

fn describe_item(item: &FixedOutput) -> String {
    format!("{} (sha256 {})", item.name, to_hex(&item.sha256))
}

fn with_trailing_slash(url: &Url) -> Url {
    let mut url = url.clone();
    let path = format!("{}/", url.path());
    url.set_path(&path);
    url
}

fn to_source(url: Url) -> Source {
    if url.scheme() == "file" {
        if let Ok(path) = url.to_file_path() {
            return Source::Local(path);
        }
    }
    Source::Remote(url)
}

/// Copies a local file to `out`, hashing it; a missing file is an error like a 404. Only a
/// regular file is read (a FIFO or device is refused without blocking), and only when its size
/// is `expected` (when known; checked before a byte is copied, so a huge file named like a
/// small wheel costs nothing) or at most `cap`.
fn copy_hashing(
    from: &Path,
    out: &Path,
    expected: Option<u64>,
    cap: u64,
) -> Result<(u64, [u8; 32]), FetchError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source: std::io::Error| FetchError::Io { path, source }
    };
    use crate::hash::files::{open_input, InputError};
    let (input, size) = match open_input(from, "file", expected.unwrap_or(cap)) {
        Ok(opened) => opened,
        Err(InputError::TooLarge {
            size: Some(actual), ..
        }) if expected.is_some() => {
            return Err(FetchError::SizeMismatch {
                url: from.display().to_string(),
                expected: expected.unwrap_or_default(),
                actual,
            })
        }
        Err(InputError::TooLarge { .. }) => {
            return Err(FetchError::InputTooLarge {
                path: from.to_path_buf(),
                cap,
            })
        }
        Err(other) => return Err(FetchError::Input(other)),
    };
    if let Some(expected) = expected.filter(|&e| e != size) {
        return Err(FetchError::SizeMismatch {
            url: from.display().to_string(),
            expected,
            actual: size,
        });
    }
    // Never more than was checked above, even if the file grows while it is read.
    let mut input = input.take(expected.unwrap_or(cap));
    let mut output = fs::File::create(out).map_err(io(out))?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 256 << 10];
    let mut size = 0u64;
    loop {
        let n = input.read(&mut buf).map_err(io(from))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        output.write_all(&buf[..n]).map_err(io(out))?;
        size += n as u64;
    }
    Ok((size, hasher.finalize().into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_file_of_the_wrong_size_is_refused_before_a_byte_is_copied() {
        let dir = tempfile::tempdir().unwrap();
        let huge = dir.path().join("demo-1.0-py3-none-any.whl");
        // Sparse: 64 MiB named like an 857-byte wheel costs no disk.
        fs::File::create(&huge).unwrap().set_len(64 << 20).unwrap();
        let out = dir.path().join("out");
        let err = copy_hashing(&huge, &out, Some(857), 4 << 30).unwrap_err();
        assert!(
            matches!(err, FetchError::SizeMismatch { expected: 857, actual, .. } if actual == 64 << 20),
            "{err}"
        );
        assert!(!out.exists(), "nothing is copied");
        let err = copy_hashing(&huge, &out, None, 1 << 20).unwrap_err();
        assert!(err.to_string().contains("PYSTORE_HTTP_MAX_SIZE"), "{err}");
        assert!(!out.exists(), "nothing is copied");
        // The right size is copied and hashed.
        let small = dir.path().join("small.whl");
        fs::write(&small, b"abc").unwrap();
        let (size, sha256) = copy_hashing(&small, &out, Some(3), 4 << 30).unwrap();
        assert_eq!(size, 3);
        assert_eq!(sha256, <[u8; 32]>::from(sha2::Sha256::digest(b"abc")));
        assert_eq!(fs::read(&out).unwrap(), b"abc");
        let item = FixedOutput {
            name: EntryName::new("small.whl").unwrap(),
            sha256,
            size: Some(3),
            urls: Vec::new(),
        };
        assert!(wheelhouse_holds(&[dir.path().to_path_buf()], &item));
        let wrong = FixedOutput {
            sha256: [0; 32],
            ..item.clone()
        };
        assert!(!wheelhouse_holds(&[dir.path().to_path_buf()], &wrong));
    }
}
