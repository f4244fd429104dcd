//! HTTP with bounded retries, backoff, `Retry-After`, and resumable streaming downloads.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::{
    HeaderMap, ACCEPT, ACCEPT_RANGES, CONTENT_RANGE, CONTENT_TYPE, RANGE, RETRY_AFTER,
};
use reqwest::{StatusCode, Url};
use sha2::Digest;

use super::credentials::{redact, Credentials};
pub use super::retry::backoff_delay;
use super::retry::{Attempt, RetryPolicy, Stop, Wait};
use super::{FetchError, TransportError};

/// Largest small document (an index page, a metadata file, a range answer) read into memory.
pub const MAX_DOCUMENT: u64 = 64 << 20;
const DOCUMENT: &str = "an index page or metadata file";
const UNSIZED: &str = "a download of unknown size (PYSTORE_HTTP_MAX_SIZE)";

/// HTTP settings.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Retries after the first attempt, for connection errors, timeouts, truncated bodies, 5xx
    /// and 429.
    pub retries: u32,
    /// First backoff step; doubled on each retry, with jitter.
    pub backoff: Duration,
    /// Connect timeout, and the longest wait for any single read.
    pub timeout: Duration,
    /// The longest one transfer may take, retries and backoff included: past it the transfer
    /// fails for good (a server trickling bytes would otherwise keep it alive for ever).
    pub deadline: Duration,
    /// Bytes per second a transfer must average over each `timeout`-long window; a slower one
    /// is abandoned (and retried). 0 turns the check off.
    pub min_rate: u64,
    /// Largest download whose size nobody pinned (an interpreter archive, `prefetch` without a
    /// size); files of known size are held to that size instead.
    pub max_size: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            retries: 4,
            backoff: Duration::from_millis(500),
            timeout: Duration::from_secs(30),
            deadline: Duration::from_secs(30 * 60),
            min_rate: 1024,
            max_size: 4 << 30,
        }
    }
}

/// Holds one transfer to its deadline and minimum rate.
struct Pace {
    started: Instant,
    deadline: Duration,
    min_rate: u64,
    window: Duration,
    window_start: Instant,
    window_bytes: u64,
}

impl Pace {
    fn new(config: &HttpConfig) -> Pace {
        let now = Instant::now();
        Pace {
            started: now,
            deadline: config.deadline,
            min_rate: config.min_rate,
            window: config.timeout.max(Duration::from_secs(1)),
            window_start: now,
            window_bytes: 0,
        }
    }

    /// A new response starts a new rate window (the wait for it is bounded by the timeout).
    fn restart_window(&mut self) {
        self.window_start = Instant::now();
        self.window_bytes = 0;
    }

    /// Fails for good once the deadline has passed.
    fn check_deadline(&self, url: &Url) -> Result<(), FetchError> {
        if self.started.elapsed() > self.deadline {
            return Err(FetchError::Deadline {
                url: redact(url),
                seconds: self.deadline.as_secs(),
            });
        }
        Ok(())
    }

    /// Counts `n` bytes received; `Err` past the deadline, `Ok(Some(reason))` when the last
    /// window was slower than the minimum rate (worth a retry), else `Ok(None)`.
    fn received(&mut self, url: &Url, n: usize) -> Result<Option<String>, FetchError> {
        self.check_deadline(url)?;
        self.window_bytes += n as u64;
        let elapsed = self.window_start.elapsed();
        if elapsed >= self.window {
            let needed = (self.min_rate as f64 * elapsed.as_secs_f64()) as u64;
            if self.window_bytes < needed {
                return Ok(Some(format!(
                    "slower than {} bytes/s over {:.0} s ({} bytes; PYSTORE_HTTP_MIN_RATE)",
                    self.min_rate,
                    elapsed.as_secs_f64(),
                    self.window_bytes
                )));
            }
            self.restart_window();
        }
        Ok(None)
    }
}

/// Reads a whole body of at most `cap` bytes, held to `pace`. `Ok(Err(reason))` for failures
/// worth a retry.
fn read_capped(
    url: &Url,
    response: &mut Response,
    pace: &mut Pace,
    cap: u64,
) -> Result<Result<Vec<u8>, String>, FetchError> {
    if let Some(length) = response.content_length().filter(|&n| n > cap) {
        return Err(FetchError::TooLarge {
            url: redact(url),
            what: DOCUMENT,
            cap,
            size: Some(length),
        });
    }
    pace.restart_window();
    let mut body = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match response.read(&mut buf) {
            Ok(0) => return Ok(Ok(body)),
            Ok(n) => {
                if (body.len() + n) as u64 > cap {
                    return Err(FetchError::TooLarge {
                        url: redact(url),
                        what: DOCUMENT,
                        cap,
                        size: None,
                    });
                }
                body.extend_from_slice(&buf[..n]);
                if let Some(reason) = pace.received(url, n)? {
                    return Ok(Err(reason));
                }
            }
            Err(err) => return Ok(Err(format!("transfer interrupted: {err}"))),
        }
    }
}

/// A small document fetched whole (an index page, a metadata file).
#[derive(Clone, Debug)]
pub struct Document {
    /// The final URL (after redirects), without credentials.
    pub url: Url,
    /// `Content-Type`, lower-cased, without parameters.
    pub content_type: String,
    /// The body.
    pub body: Vec<u8>,
}

/// Part of a file, as a server answered a range request.
#[derive(Clone, Debug)]
pub struct Ranged {
    /// Offset of the first byte.
    pub start: u64,
    /// The whole file's length.
    pub total: u64,
    /// The bytes.
    pub body: Vec<u8>,
}

/// What a download produced.
#[derive(Clone, Copy, Debug)]
pub struct Downloaded {
    /// Bytes written.
    pub size: u64,
    /// sha256 of the bytes.
    pub sha256: [u8; 32],
}

/// A blocking HTTP client that never shows or stores credentials.
pub struct HttpClient {
    client: Client,
    config: HttpConfig,
    credentials: Credentials,
}

impl HttpClient {
    /// Creates a client.
    pub fn new(config: HttpConfig, credentials: Credentials) -> Result<HttpClient, FetchError> {
        let client = Client::builder()
            .user_agent(concat!("pystore/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(config.timeout)
            .timeout(config.timeout)
            .build()
            .map_err(|err| FetchError::Client(err.to_string()))?;
        Ok(HttpClient {
            client,
            config,
            credentials,
        })
    }

    /// The credentials in use.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    fn request(&self, url: &Url) -> RequestBuilder {
        let request = self.client.get(url.clone());
        match self.credentials.login_for(url) {
            Some(login) => request.basic_auth(&login.user, Some(&login.password)),
            None => request,
        }
    }

    /// Runs `once` until it succeeds, fails for good, or retries or the deadline run out, by
    /// the [`RetryPolicy`] of the configuration.
    fn with_retries<T>(
        &self,
        url: &Url,
        mut once: impl FnMut(&mut Pace) -> Result<Attempt<T>, FetchError>,
    ) -> Result<T, FetchError> {
        let mut pace = Pace::new(&self.config);
        RetryPolicy::from_http(&self.config).run(
            |_| once(&mut pace),
            |reason, _, delay| {
                tracing::debug!("{}: {reason}; retrying in {delay:?}", redact(url));
                Ok(())
            },
            |stop| match stop {
                Stop::GaveUp { attempts, last } => FetchError::GaveUp {
                    url: redact(url),
                    attempts,
                    last: self.scrub(&last),
                },
                Stop::Deadline(deadline) => FetchError::Deadline {
                    url: redact(url),
                    seconds: deadline.as_secs(),
                },
            },
        )
    }

    /// Removes any known password from `text` (error texts of lower layers may quote requests).
    fn scrub(&self, text: &str) -> String {
        self.credentials
            .secrets()
            .fold(text.to_owned(), |acc, secret| acc.replace(secret, "****"))
    }

    fn classify(&self, url: &Url, response: Response) -> Result<Attempt<Response>, FetchError> {
        let status = response.status();
        if status.is_success() {
            return Ok(Attempt::Done(response));
        }
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            return Ok(Attempt::Retry {
                reason: format!("HTTP {status}"),
                wait: Wait::after(retry_after(response.headers())),
            });
        }
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(FetchError::Unauthorized {
                url: redact(url),
                host: url.host_str().unwrap_or("the server").to_owned(),
                status: status.as_u16(),
            });
        }
        Err(FetchError::Status {
            url: redact(url),
            status: status.as_u16(),
        })
    }

    fn send(&self, url: &Url, request: RequestBuilder) -> Result<Attempt<Response>, FetchError> {
        match request.send() {
            Ok(response) => self.classify(url, response),
            Err(err)
                if err.is_connect() || err.is_timeout() || err.is_request() || err.is_body() =>
            {
                Ok(Attempt::Retry {
                    reason: error_chain(&err),
                    wait: Wait::Backoff,
                })
            }
            Err(err) => Err(FetchError::Transport {
                url: redact(url),
                source: TransportError::client(err),
            }),
        }
    }

    /// GETs a small document, with `accept` as the `Accept` header.
    pub fn get(&self, url: &Url, accept: &str) -> Result<Document, FetchError> {
        self.with_retries(url, |pace| {
            let mut response = match self.send(url, self.request(url).header(ACCEPT, accept))? {
                Attempt::Done(response) => response,
                Attempt::Retry { reason, wait } => return Ok(Attempt::Retry { reason, wait }),
            };
            let final_url = super::credentials::strip(response.url());
            let content_type = media_type(response.headers());
            match read_capped(url, &mut response, pace, MAX_DOCUMENT)? {
                Ok(body) => Ok(Attempt::Done(Document {
                    url: final_url,
                    content_type,
                    body,
                })),
                Err(reason) => Ok(Attempt::Retry {
                    reason,
                    wait: Wait::Backoff,
                }),
            }
        })
    }

    /// GETs bytes `range` of `url` (an HTTP `Range` value such as `bytes=-65536` or
    /// `bytes=100-199`). `Ok(None)` when the server answers with the whole file instead (it
    /// does not serve ranges); the body is then not read.
    pub fn get_range(&self, url: &Url, range: &str) -> Result<Option<Ranged>, FetchError> {
        self.with_retries(url, |pace| {
            let request = self.request(url).header(RANGE, range);
            let mut response = match self.send(url, request)? {
                Attempt::Done(response) => response,
                Attempt::Retry { reason, wait } => return Ok(Attempt::Retry { reason, wait }),
            };
            if response.status() != StatusCode::PARTIAL_CONTENT {
                return Ok(Attempt::Done(None));
            }
            let Some((start, total)) = content_range(response.headers()) else {
                return Err(FetchError::Transport {
                    url: redact(url),
                    source: TransportError::NoContentRange {
                        range: range.to_owned(),
                    },
                });
            };
            match read_capped(url, &mut response, pace, MAX_DOCUMENT)? {
                Ok(body) => Ok(Attempt::Done(Some(Ranged { start, total, body }))),
                Err(reason) => Ok(Attempt::Retry {
                    reason,
                    wait: Wait::Backoff,
                }),
            }
        })
    }

    /// Streams `url` into `dest` (created or truncated), hashing as it goes. An interrupted or
    /// truncated transfer is resumed with `Range` when the server honours it, else restarted.
    /// `expected_size`, when known, is checked before and after; without it the file is held to
    /// the configured `max_size`. `on_position` is told how many bytes are in `dest` so far.
    pub fn download(
        &self,
        url: &Url,
        dest: &Path,
        expected_size: Option<u64>,
        on_position: &(dyn Fn(u64) + Sync),
    ) -> Result<Downloaded, FetchError> {
        let io = |source: std::io::Error| FetchError::Io {
            path: dest.to_path_buf(),
            source,
        };
        let mut file = File::create(dest).map_err(io)?;
        let mut hasher = sha2::Sha256::new();
        let mut received: u64 = 0;
        let cap = expected_size.unwrap_or(self.config.max_size);
        self.with_retries(url, |pace| {
            let mut request = self.request(url);
            if received > 0 {
                request = request.header(RANGE, format!("bytes={received}-"));
            }
            let mut response = match self.send(url, request)? {
                Attempt::Done(response) => response,
                Attempt::Retry { reason, wait } => return Ok(Attempt::Retry { reason, wait }),
            };
            let resumed = received > 0
                && response.status() == StatusCode::PARTIAL_CONTENT
                && content_range_start(response.headers()) == Some(received);
            if !resumed && received > 0 {
                // The server ignored or mangled the range: start over.
                file.set_len(0).map_err(io)?;
                file.rewind().map_err(io)?;
                hasher = sha2::Sha256::new();
                received = 0;
                on_position(0);
            }
            let remaining = response.content_length();
            if let (Some(expected), Some(remaining), false) = (expected_size, remaining, resumed) {
                if remaining != expected {
                    return Err(FetchError::SizeMismatch { url: redact(url), expected, actual: remaining });
                }
            }
            if let Some(remaining) = remaining.filter(|&n| expected_size.is_none() && received.saturating_add(n) > cap) {
                return Err(FetchError::TooLarge { url: redact(url), what: UNSIZED, cap, size: Some(received + remaining) });
            }
            pace.restart_window();
            let mut buf = vec![0u8; 256 << 10];
            let mut this_response = 0u64;
            loop {
                match response.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        file.write_all(&buf[..n]).map_err(io)?;
                        hasher.update(&buf[..n]);
                        received += n as u64;
                        this_response += n as u64;
                        on_position(received);
                        if let Some(expected) = expected_size {
                            if received > expected {
                                return Err(FetchError::SizeMismatch { url: redact(url), expected, actual: received });
                            }
                        } else if received > cap {
                            return Err(FetchError::TooLarge { url: redact(url), what: UNSIZED, cap, size: None });
                        }
                        if let Some(reason) = pace.received(url, n)? {
                            return Ok(Attempt::Retry { reason, wait: Wait::Backoff });
                        }
                    }
                    Err(err) => {
                        let can_resume = response.headers().get(ACCEPT_RANGES).is_some_and(|v| v == "bytes");
                        tracing::debug!("{}: transfer interrupted after {received} bytes (resumable: {can_resume})", redact(url));
                        return Ok(Attempt::Retry { reason: format!("transfer interrupted: {err}"), wait: Wait::Backoff });
                    }
                }
            }
            if let Some(remaining) = remaining {
                if this_response < remaining {
                    return Ok(Attempt::Retry {
                        reason: format!("body ended after {this_response} of {remaining} bytes"),
                        wait: Wait::Backoff,
                    });
                }
            }
            Ok(Attempt::Done(()))
        })?;
        file.sync_all().map_err(io)?;
        Ok(Downloaded {
            size: received,
            sha256: hasher.finalize().into(),
        })
    }
}

/// `Content-Range: bytes START-END/TOTAL` as `(START, TOTAL)`; a length of `*` is refused.
fn content_range(headers: &HeaderMap) -> Option<(u64, u64)> {
    let value = headers.get(CONTENT_RANGE)?.to_str().ok()?;
    let (span, total) = value.strip_prefix("bytes ")?.split_once('/')?;
    let (start, end) = span.split_once('-')?;
    let (start, end, total): (u64, u64, u64) = (
        start.trim().parse().ok()?,
        end.trim().parse().ok()?,
        total.trim().parse().ok()?,
    );
    (start <= end && end < total).then_some((start, total))
}

fn content_range_start(headers: &HeaderMap) -> Option<u64> {
    let value = headers.get(CONTENT_RANGE)?.to_str().ok()?;
    let range = value.strip_prefix("bytes ")?;
    range.split('-').next()?.trim().parse().ok()
}

/// `Retry-After` as seconds or an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

/// An error and its sources, `: `-joined (reqwest hides the useful part in the sources).
pub fn error_chain(err: &dyn std::error::Error) -> String {
    crate::errors::one_line(err)
}

/// The media type of a response's `Content-Type`, without parameters, lower case (media
/// types compare case-insensitively); empty when there is none.
pub fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(
            retry_after(&headers),
            Some(Duration::ZERO),
            "a past date means now"
        );
    }

    #[test]
    fn content_range_is_parsed() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_RANGE, HeaderValue::from_static("bytes 100-199/200"));
        assert_eq!(content_range_start(&headers), Some(100));
        assert_eq!(content_range(&headers), Some((100, 200)));
        for bad in [
            "bytes 100-199/*",
            "bytes 100-200/200",
            "bytes 9-1/20",
            "items 1-2/3",
        ] {
            headers.insert(CONTENT_RANGE, HeaderValue::from_static(bad));
            assert_eq!(content_range(&headers), None, "{bad}");
        }
    }
}
