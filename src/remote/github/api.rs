//! The GitHub REST API client under the releases remote: authenticated requests, retries on
//! 5xx and connection errors by the fetch layer's [`RetryPolicy`], rate limits waited out until
//! GitHub says they reset (`Retry-After`, `x-ratelimit-reset`), pagination through `Link`
//! headers, and errors that never quote the token.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION, CONTENT_TYPE, LINK, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

use super::super::{copy_limited, RemoteError, Size};
use crate::fetch::http::HttpConfig;
use crate::fetch::retry::{Attempt, RetryPolicy, Stop, Wait};

/// Why a GitHub API request failed for good.
#[derive(Debug, thiserror::Error)]
pub enum ApiProblem {
    /// A rate limit that resets later than pystore waits.
    #[error("{reason}; the limit resets in {}s, try again then", resets_in.as_secs())]
    RateLimited {
        /// The retry policy's reason (the status), without the token.
        reason: String,
        /// When the limit resets.
        resets_in: Duration,
    },
    /// Retries ran out.
    #[error("gave up after {attempts} attempts; last: {last}")]
    GaveUp {
        /// How many attempts were made.
        attempts: u32,
        /// The retry policy's reason for the last retry, without the token.
        last: String,
    },
    /// The overall deadline passed.
    #[error("not finished within {} s", .0.as_secs())]
    Deadline(Duration),
    /// The HTTP client failed (its error carries no URL: the request line names it).
    #[error("{}", crate::errors::one_line(.0))]
    Client(#[source] reqwest::Error),
    /// An error status, with GitHub's own message and what to do.
    #[error("HTTP {status} {reply}{hint}")]
    Status {
        /// The status.
        status: StatusCode,
        /// The `message` of GitHub's answer, without the token.
        reply: String,
        /// What to do about it (empty, or starting with `; `).
        hint: &'static str,
    },
    /// More pages than any real listing has.
    #[error("more than 100 pages")]
    TooManyPages,
    /// An answer that is not the JSON list asked for.
    #[error("expected a JSON list{}", if .0.is_empty() { String::new() } else { format!(" of {}", .0) })]
    NotAList(&'static str),
    /// A release without a field pystore needs.
    #[error("the release has no valid {field}")]
    BadRelease {
        /// The field (or fields).
        field: &'static str,
    },
    /// An asset of the same name that cannot be replaced.
    #[error("the asset exists and cannot be replaced")]
    AssetExists,
}

/// Longest wait we accept from a rate limit before giving up.
const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(15 * 60);

/// One repository's API.
pub(super) struct Api {
    client: Client,
    /// The API base URL, ending in `/`.
    base: Url,
    /// `repos/OWNER/REPO/`.
    repo_path: String,
    /// The remote as the user wrote it, for messages.
    location: String,
    /// Never logged, printed or stored.
    pub(super) token: Option<String>,
    /// Retries of 5xx and connection errors (no overall deadline: an upload may take long).
    retry: RetryPolicy,
}

impl Api {
    /// The API of `owner/repo` at `base`.
    pub(super) fn new(
        base: &Url,
        owner: &str,
        repo: &str,
        location: String,
        token: Option<String>,
        http: &HttpConfig,
    ) -> Result<Api, RemoteError> {
        let client = Client::builder()
            .user_agent(concat!("pystore/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(http.timeout)
            // Uploads of large assets take long; stalls are caught by the connect timeout and
            // the server closing idle connections.
            .timeout(Duration::from_secs(30 * 60))
            .build()
            .map_err(|e| RemoteError::BadSpec {
                spec: location.clone(),
                reason: e.to_string(),
            })?;
        let mut base = base.clone();
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        Ok(Api {
            client,
            base,
            repo_path: format!("repos/{owner}/{repo}/"),
            location,
            token: token.filter(|t| !t.trim().is_empty()),
            retry: RetryPolicy::from_http(http).without_deadline(),
        })
    }

    /// `BASE/repos/OWNER/REPO/PATH`.
    pub(super) fn endpoint(&self, path: &str) -> Result<Url, RemoteError> {
        self.base
            .join(&format!("{}{path}", self.repo_path))
            .map_err(|e| RemoteError::BadSpec {
                spec: self.location.clone(),
                reason: e.to_string(),
            })
    }

    /// Removes the token from text that may quote a request.
    fn scrub(&self, text: &str) -> String {
        match &self.token {
            Some(token) => text.replace(token.as_str(), "****"),
            None => text.to_owned(),
        }
    }

    /// A failed request, with any text that could quote the token scrubbed.
    pub(super) fn error(&self, method: &Method, url: &Url, problem: ApiProblem) -> RemoteError {
        let problem = match problem {
            ApiProblem::RateLimited { reason, resets_in } => ApiProblem::RateLimited {
                reason: self.scrub(&reason),
                resets_in,
            },
            ApiProblem::GaveUp { attempts, last } => ApiProblem::GaveUp {
                attempts,
                last: self.scrub(&last),
            },
            ApiProblem::Status {
                status,
                reply,
                hint,
            } => ApiProblem::Status {
                status,
                reply: self.scrub(&reply),
                hint,
            },
            // The client's error has no URL (see `client_error`) and never holds headers.
            other => other,
        };
        RemoteError::Api {
            method: method_name(method),
            url: url.to_string(),
            problem,
        }
    }

    /// A failed request by the HTTP client, without the URL it may quote (the request line
    /// names it).
    fn client_error(&self, method: &Method, url: &Url, err: reqwest::Error) -> RemoteError {
        self.error(method, url, ApiProblem::Client(err.without_url()))
    }

    /// A request with the API headers and the token. Only URLs of the API and the upload URL
    /// it names for a release are requested, so only they see the token.
    pub(super) fn request(&self, method: Method, url: &Url) -> RequestBuilder {
        self.request_accepting(method, url, "application/vnd.github+json")
    }

    /// [`Self::request`] with `accept` as its one `Accept` header. `RequestBuilder::header`
    /// appends, so a second `Accept` added later would be sent as well, and GitHub answers an
    /// asset URL that accepts its JSON type with the asset's description, not its bytes.
    fn request_accepting(&self, method: Method, url: &Url, accept: &str) -> RequestBuilder {
        let mut request = self
            .client
            .request(method, url.clone())
            .header(ACCEPT, accept)
            .header("X-GitHub-Api-Version", "2022-11-28");
        if let Some(token) = &self.token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        request
    }

    /// Sends once and sorts the answer: done (any status a caller handles), or retry.
    fn attempt(&self, request: RequestBuilder) -> Attempt<Response> {
        let response = match request.send() {
            Ok(response) => response,
            Err(err) => {
                return Attempt::Retry {
                    reason: error_chain(&err),
                    wait: Wait::Backoff,
                }
            }
        };
        let status = response.status();
        if status.is_server_error() {
            return Attempt::Retry {
                reason: format!("HTTP {status}"),
                wait: Wait::after(retry_after(response.headers())),
            };
        }
        if status == StatusCode::TOO_MANY_REQUESTS
            || (status == StatusCode::FORBIDDEN && is_rate_limited(response.headers()))
        {
            // Waited out in full (up to MAX_RATE_LIMIT_WAIT): retrying earlier only hits the
            // limit again. Secondary limits without a hint: GitHub asks for at least a minute.
            let after = retry_after(response.headers()).unwrap_or(Duration::from_secs(60));
            return Attempt::Retry {
                reason: format!("rate limited (HTTP {status})"),
                wait: Wait::Exactly(after),
            };
        }
        Attempt::Done(response)
    }

    /// Sends `build()` until it is answered with something other than a retryable status, or
    /// retries run out. `on_retry` runs before each retry (an upload cleans up there).
    pub(super) fn call(
        &self,
        method: Method,
        url: &Url,
        build: &dyn Fn() -> Result<RequestBuilder, RemoteError>,
        on_retry: &dyn Fn() -> Result<(), RemoteError>,
    ) -> Result<Response, RemoteError> {
        self.retry.run(
            |attempt| {
                if attempt > 0 {
                    on_retry()?;
                }
                Ok(self.attempt(build()?))
            },
            |reason, wait, delay| {
                if let Wait::Exactly(after) = wait {
                    if after > MAX_RATE_LIMIT_WAIT {
                        return Err(self.error(
                            &method,
                            url,
                            ApiProblem::RateLimited {
                                reason: reason.to_owned(),
                                resets_in: after,
                            },
                        ));
                    }
                }
                tracing::info!(
                    "{} {url}: {reason}; retrying in {delay:?}",
                    method_name(&method)
                );
                Ok(())
            },
            |stop| {
                let problem = match stop {
                    Stop::GaveUp { attempts, last } => ApiProblem::GaveUp { attempts, last },
                    Stop::Deadline(deadline) => ApiProblem::Deadline(deadline),
                };
                self.error(&method, url, problem)
            },
        )
    }

    /// A JSON request to the API; `Ok((status, body))` for statuses the caller handles.
    pub(super) fn json(
        &self,
        method: Method,
        url: &Url,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), RemoteError> {
        let build = || {
            let mut request = self.request(method.clone(), url);
            if let Some(body) = body {
                request = request
                    .header(CONTENT_TYPE, "application/json")
                    .body(serde_json::to_vec(body).unwrap_or_default());
            }
            Ok(request)
        };
        let response = self.call(method.clone(), url, &build, &|| Ok(()))?;
        let status = response.status();
        let text = response
            .text()
            .map_err(|e| self.client_error(&method, url, e))?;
        let value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok((status, value))
    }

    pub(super) fn fail(
        &self,
        method: Method,
        url: &Url,
        status: StatusCode,
        body: &Value,
    ) -> RemoteError {
        let reply = body
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let hint = match status.as_u16() {
            401 => "; check GITHUB_TOKEN / GH_TOKEN",
            // A secondary limit that came without Retry-After or x-ratelimit-* headers (those
            // are waited out and retried): say what it is rather than blame the token.
            403 if reply.to_ascii_lowercase().contains("rate limit") => {
                "; GitHub's rate limit: wait a few minutes and push again (pushing is idempotent)"
            }
            403 | 404 if self.token.is_none() => "; set GITHUB_TOKEN or GH_TOKEN",
            403 | 404 => "; the token may lack contents: write permission on the repository",
            _ => "",
        };
        self.error(
            &method,
            url,
            ApiProblem::Status {
                status,
                reply,
                hint,
            },
        )
    }

    /// GETs every page of a list, following `Link: rel="next"` (only on the API's own origin).
    pub(super) fn pages(&self, first: Url) -> Result<Option<Vec<Value>>, RemoteError> {
        let mut items = Vec::new();
        let mut next = Some(first);
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            if pages > 100 {
                return Err(self.error(&Method::GET, &url, ApiProblem::TooManyPages));
            }
            let build = || Ok(self.request(Method::GET, &url));
            let response = self.call(Method::GET, &url, &build, &|| Ok(()))?;
            let status = response.status();
            if status == StatusCode::NOT_FOUND {
                return Ok(None);
            }
            next = next_link(response.headers()).filter(|n| same_origin(n, &self.base));
            let text = response
                .text()
                .map_err(|e| self.client_error(&Method::GET, &url, e))?;
            let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if !status.is_success() {
                return Err(self.fail(Method::GET, &url, status, &value));
            }
            let Value::Array(page) = value else {
                return Err(self.error(&Method::GET, &url, ApiProblem::NotAList("")));
            };
            items.extend(page);
        }
        Ok(Some(items))
    }

    /// Downloads asset `id` into `dest` (at most `size`).
    pub(super) fn download(
        &self,
        id: u64,
        name: &str,
        dest: &Path,
        size: Size,
    ) -> Result<(), RemoteError> {
        let url = self.endpoint(&format!("releases/assets/{id}"))?;
        let build = || Ok(self.request_accepting(Method::GET, &url, "application/octet-stream"));
        let response = self.call(Method::GET, &url, &build, &|| Ok(()))?;
        let status = response.status();
        if !status.is_success() {
            let body: Value =
                serde_json::from_str(&response.text().unwrap_or_default()).unwrap_or(Value::Null);
            return Err(self.fail(Method::GET, &url, status, &body));
        }
        copy_limited(response, dest, size, &self.location, name)
    }
}

fn method_name(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        _ => "request",
    }
}

pub(super) fn is_already_exists(body: &Value) -> bool {
    body.get("errors")
        .and_then(Value::as_array)
        .is_some_and(|errors| {
            errors
                .iter()
                .any(|e| e.get("code").and_then(Value::as_str) == Some("already_exists"))
        })
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name)?.to_str().ok()
}

/// A 403 is a rate limit (primary or secondary) when it says when to come back.
fn is_rate_limited(headers: &HeaderMap) -> bool {
    header(headers, "x-ratelimit-remaining") == Some("0") || headers.contains_key(RETRY_AFTER)
}

/// How long a rate-limited or failing server asks us to wait: `Retry-After` (seconds or a date),
/// else `x-ratelimit-reset` (epoch seconds) when no requests remain.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    if let Some(wait) = crate::fetch::http::retry_after(headers) {
        return Some(wait);
    }
    if header(headers, "x-ratelimit-remaining") == Some("0") {
        let reset: u64 = header(headers, "x-ratelimit-reset")?.trim().parse().ok()?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
        return Some(Duration::from_secs(reset.saturating_sub(now) + 1));
    }
    None
}

fn next_link(headers: &HeaderMap) -> Option<Url> {
    let value = header(headers, LINK.as_str())?;
    value.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim() == "rel=\"next\"")
            .then(|| Url::parse(target.trim().trim_start_matches('<').trim_end_matches('>')).ok())?
    })
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

pub(super) use crate::fetch::http::error_chain;

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn rate_limits_say_how_long_to_wait() {
        assert_eq!(
            retry_after(&headers(&[("retry-after", "7")])),
            Some(Duration::from_secs(7))
        );
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let reset = now + 30;
        let wait = retry_after(&headers(&[
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", &reset.to_string()),
        ]))
        .unwrap();
        assert!((29..=31).contains(&wait.as_secs()), "{wait:?}");
        assert!(is_rate_limited(&headers(&[("x-ratelimit-remaining", "0")])));
        assert!(!is_rate_limited(&headers(&[(
            "x-ratelimit-remaining",
            "12"
        )])));
        assert_eq!(
            retry_after(&headers(&[
                ("x-ratelimit-remaining", "5"),
                ("x-ratelimit-reset", "1")
            ])),
            None
        );
    }

    #[test]
    fn the_next_page_comes_from_the_link_header() {
        let link = "<http://127.0.0.1:1/r?page=2>; rel=\"next\", <http://127.0.0.1:1/r?page=5>; rel=\"last\"";
        assert_eq!(
            next_link(&headers(&[("link", link)])).unwrap().as_str(),
            "http://127.0.0.1:1/r?page=2"
        );
        let last = "<http://127.0.0.1:1/r?page=1>; rel=\"prev\"";
        assert_eq!(next_link(&headers(&[("link", last)])), None);
        let api = Url::parse("http://127.0.0.1:1/").unwrap();
        assert!(same_origin(
            &Url::parse("http://127.0.0.1:1/x").unwrap(),
            &api
        ));
        assert!(!same_origin(
            &Url::parse("http://127.0.0.2:1/x").unwrap(),
            &api
        ));
    }
}
