//! The distribution API (OCI distribution spec v1.1) of one repository: blobs checked with
//! `HEAD`, uploaded monolithically (`POST`, then `PUT ?digest=`) or in chunks (`PATCH` with
//! `Content-Range`, resumed from the upload's `Range` after a failure), downloaded with their
//! digest checked, and manifests read and written.
//!
//! Auth follows the registry's `WWW-Authenticate` challenge: `Basic` sends the login, `Bearer`
//! exchanges it (or nothing, for anonymous pulls) at the named realm for a token. Credentials
//! and tokens go only to the registry's own origin and the realm, never to a host a download is
//! redirected to, and never into a message. Transport errors, 5xx and 429 are retried by the one
//! policy of [`crate::fetch::http::backoff_delay`], honouring `Retry-After`.
//!
//! This file holds the [`Registry`] itself: its transport, auth and retries; the repository
//! operations (blobs and manifests) are in `blobs`.

mod blobs;

use std::io::Read;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use base64::Engine;
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_LENGTH, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode, Url};

use super::credentials::{Found, OciCredentialSources};
use super::{OciConfig, Spec};
use crate::fetch::http::{backoff_delay, error_chain, retry_after, HttpConfig};
use crate::remote::RemoteError;

/// Largest manifest or index read (the spec's suggested minimum a registry accepts).
pub(super) const MAX_MANIFEST_SIZE: u64 = 4 << 20;
/// Most redirects followed for one download.
const MAX_REDIRECTS: usize = 5;

/// One repository on one registry.
pub(super) struct Registry {
    client: Client,
    /// `http(s)://HOST[:PORT]/`.
    base: Url,
    /// `HOST[:PORT]`, as credentials are keyed.
    host: String,
    /// `NAMESPACE/REPO`.
    repo: String,
    /// The remote as the user wrote it.
    location: String,
    http: HttpConfig,
    chunk_size: u64,
    sources: OciCredentialSources,
    /// The login for this host, looked up on the first challenge.
    found: OnceLock<Result<Option<Found>, String>>,
    /// The `Authorization` value in use. Secret: never logged or shown.
    auth: Mutex<Option<String>>,
}

/// One request's outcome, before retrying.
enum Outcome {
    /// Answered with a status the caller handles.
    Answered(Response),
    /// Worth retrying (transport error, 5xx, 429).
    Failed {
        reason: String,
        after: Option<Duration>,
    },
}

/// Builds a request's headers and body (called again for each attempt: file bodies are
/// opened afresh).
type Build<'a> = &'a dyn Fn(RequestBuilder) -> Result<RequestBuilder, RemoteError>;

fn plain(request: RequestBuilder) -> Result<RequestBuilder, RemoteError> {
    Ok(request)
}

impl Registry {
    /// The repository `spec` names, reached with `http` and `config`'s credentials.
    pub(super) fn new(
        spec: &Spec,
        config: &OciConfig,
        http: &HttpConfig,
    ) -> Result<Registry, RemoteError> {
        let location = spec.location();
        let client = Client::builder()
            .user_agent(concat!("pystore/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(http.timeout)
            // Large blobs take long; stalls are caught by the connect timeout and the server
            // closing idle connections.
            .timeout(Duration::from_secs(30 * 60))
            // Redirects are followed by hand, so credentials never follow them to another host.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| RemoteError::BadSpec {
                spec: location.clone(),
                reason: e.to_string(),
            })?;
        Ok(Registry {
            client,
            base: spec.base.clone(),
            host: spec.host.clone(),
            repo: spec.repo.clone(),
            location,
            http: http.clone(),
            chunk_size: config.chunk_size.max(1),
            sources: config.credentials.clone(),
            found: OnceLock::new(),
            auth: Mutex::new(None),
        })
    }

    /// `BASE/v2/REPO/PATH`.
    pub(super) fn endpoint(&self, path: &str) -> Result<Url, RemoteError> {
        self.base
            .join(&format!("v2/{}/{path}", self.repo))
            .map_err(|e| self.error(format!("bad endpoint {path}: {e}")))
    }

    pub(super) fn error(&self, reason: String) -> RemoteError {
        RemoteError::Registry {
            remote: self.location.clone(),
            reason: self.scrub(&reason),
        }
    }

    /// Removes the password and the token from text that may quote a request.
    fn scrub(&self, text: &str) -> String {
        let mut text = text.to_owned();
        if let Some(Ok(Some(found))) = self.found.get() {
            if !found.login.password.is_empty() {
                text = text.replace(&found.login.password, "****");
            }
        }
        if let Some(header) = self.auth.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            if let Some((_, secret)) = header.split_once(' ') {
                text = text.replace(secret, "****");
            }
        }
        text
    }

    /// Whether `url` is the registry's own origin (the only one credentials are sent to).
    fn same_origin(&self, url: &Url) -> bool {
        url.scheme() == self.base.scheme()
            && url.host_str() == self.base.host_str()
            && url.port_or_known_default() == self.base.port_or_known_default()
    }

    fn login(&self) -> Result<Option<&Found>, RemoteError> {
        match self.found.get_or_init(|| self.sources.lookup(&self.host)) {
            Ok(found) => Ok(found.as_ref()),
            Err(reason) => Err(self.error(format!("credentials for {}: {reason}", self.host))),
        }
    }

    /// Sends once, without answering challenges.
    fn attempt(
        &self,
        method: &Method,
        url: &Url,
        build: Build<'_>,
        authorization: Option<&str>,
    ) -> Result<Outcome, RemoteError> {
        let mut request = self.client.request(method.clone(), url.clone());
        if let Some(value) = authorization {
            request = request.header(AUTHORIZATION, value);
        }
        match build(request)?.send() {
            Ok(response) => {
                let status = response.status();
                if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                    return Ok(Outcome::Failed {
                        reason: format!("HTTP {status}"),
                        after: retry_after(response.headers()),
                    });
                }
                Ok(Outcome::Answered(response))
            }
            Err(err) => Ok(Outcome::Failed {
                reason: self.scrub(&error_chain(&err)),
                after: None,
            }),
        }
    }

    /// Sends once to the registry, answering up to two `WWW-Authenticate` challenges.
    fn once(&self, method: &Method, url: &Url, build: Build<'_>) -> Result<Outcome, RemoteError> {
        let mut challenges = 0;
        loop {
            let authorization = if self.same_origin(url) {
                self.auth.lock().unwrap_or_else(|p| p.into_inner()).clone()
            } else {
                None
            };
            let outcome = self.attempt(method, url, build, authorization.as_deref())?;
            let Outcome::Answered(response) = outcome else {
                return Ok(outcome);
            };
            if response.status() != StatusCode::UNAUTHORIZED
                || !self.same_origin(url)
                || challenges >= 2
            {
                return Ok(Outcome::Answered(response));
            }
            let challenge = response
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let Some(challenge) = challenge else {
                return Ok(Outcome::Answered(response));
            };
            let Some(next) = self.answer(&challenge, authorization.as_deref())? else {
                return Ok(Outcome::Answered(response));
            };
            *self.auth.lock().unwrap_or_else(|p| p.into_inner()) = Some(next);
            challenges += 1;
        }
    }

    /// The `Authorization` value that answers `challenge`; `None` when retrying cannot help
    /// (the same credentials were just refused).
    fn answer(&self, challenge: &str, sent: Option<&str>) -> Result<Option<String>, RemoteError> {
        let (scheme, params) = parse_challenge(challenge);
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => {
                let Some(found) = self.login()? else {
                    return Err(self.needs_credentials());
                };
                let value = basic(&found.login.user, &found.login.password);
                Ok((sent != Some(value.as_str())).then_some(value))
            }
            "bearer" => {
                let token = self.token(&params)?;
                let value = format!("Bearer {token}");
                Ok((sent != Some(value.as_str())).then_some(value))
            }
            other => Err(self.error(format!(
                "{} asks for {other:?} authentication, which pystore does not speak (Basic and Bearer only)",
                self.host
            ))),
        }
    }

    fn needs_credentials(&self) -> RemoteError {
        self.error(format!(
            "{} requires credentials and none were found for it in {}",
            self.host,
            self.sources.describe()
        ))
    }

    /// Why the registry answered 401/403, naming where credentials came from.
    fn refused(&self, status: StatusCode) -> RemoteError {
        match self.found.get() {
            Some(Ok(Some(found))) => self.error(format!(
                "{} refused the credentials from {} (HTTP {}): check them, or their access to {}",
                self.host,
                found.source,
                status.as_u16(),
                self.repo
            )),
            _ if status == StatusCode::UNAUTHORIZED => self.needs_credentials(),
            _ => self.error(format!(
                "{} denied access to {} (HTTP {}) without credentials; set them in {}",
                self.host,
                self.repo,
                status.as_u16(),
                self.sources.describe()
            )),
        }
    }

    /// A Bearer token from the challenge's realm, for its service and scope.
    fn token(&self, params: &[(String, String)]) -> Result<String, RemoteError> {
        let param = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let realm = param("realm").ok_or_else(|| {
            self.error(format!("{}: a Bearer challenge without a realm", self.host))
        })?;
        let mut url = Url::parse(realm)
            .map_err(|e| self.error(format!("{}: token realm {realm:?}: {e}", self.host)))?;
        if url.scheme() != "https" && !(url.scheme() == "http" && is_loopback_url(&url)) {
            return Err(self.error(format!(
                "{} names the token realm {realm}, which is not HTTPS: not sending credentials there",
                self.host
            )));
        }
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = param("service") {
                query.append_pair("service", service);
            }
            for scope in param("scope").unwrap_or("").split_whitespace() {
                query.append_pair("scope", scope);
            }
        }
        let login = self.login()?;
        let authorization = login.map(|f| basic(&f.login.user, &f.login.password));
        let response = self.retrying(&Method::GET, &url, &|_| {
            self.attempt(&Method::GET, &url, &plain, authorization.as_deref())
        })?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            // Remember what was tried, so the message names its source.
            return Err(match login {
                Some(found) => self.error(format!(
                    "{} refused the credentials from {} at its token service (HTTP {})",
                    self.host,
                    found.source,
                    status.as_u16()
                )),
                None => self.needs_credentials(),
            });
        }
        if !status.is_success() {
            return Err(self.error(format!(
                "the token service of {} answered HTTP {}",
                self.host,
                status.as_u16()
            )));
        }
        let body = read_limited(response, 1 << 20)
            .map_err(|e| self.error(format!("reading a token from {}: {e}", self.host)))?;
        let value: serde_json::Value = serde_json::from_slice(&body).map_err(|_| {
            self.error(format!(
                "the token service of {} did not answer JSON",
                self.host
            ))
        })?;
        value
            .get("token")
            .or_else(|| value.get("access_token"))
            .and_then(serde_json::Value::as_str)
            .filter(|t| !t.is_empty() && t.bytes().all(|c| c.is_ascii_graphic()))
            .map(str::to_owned)
            .ok_or_else(|| {
                self.error(format!(
                    "the token service of {} answered without a token",
                    self.host
                ))
            })
    }

    /// Runs `once` until answered, retrying failures by the policy.
    fn retrying(
        &self,
        method: &Method,
        url: &Url,
        once: &dyn Fn(u32) -> Result<Outcome, RemoteError>,
    ) -> Result<Response, RemoteError> {
        let mut attempt = 0;
        loop {
            match once(attempt)? {
                Outcome::Answered(response) => return Ok(response),
                Outcome::Failed { reason, after } => {
                    if attempt >= self.http.retries {
                        return Err(self.error(format!(
                            "{method} {}: gave up after {} attempts; last: {reason}",
                            strip_query(url),
                            attempt + 1
                        )));
                    }
                    let delay = backoff_delay(&self.http, attempt, after);
                    tracing::info!(
                        "{method} {}: {reason}; retrying in {delay:?}",
                        strip_query(url)
                    );
                    std::thread::sleep(delay);
                    attempt += 1;
                }
            }
        }
    }

    /// Sends to the registry with auth and retries.
    fn send(&self, method: &Method, url: &Url, build: Build<'_>) -> Result<Response, RemoteError> {
        self.retrying(method, url, &|_| self.once(method, url, build))
    }

    /// An error for an unexpected answer, with the registry's own error codes.
    fn fail(&self, method: &Method, url: &Url, response: Response) -> RemoteError {
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return self.refused(status);
        }
        let body = read_limited(response, 64 << 10).unwrap_or_default();
        let codes = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("errors").and_then(|e| e.as_array()).cloned())
            .map(|errors| {
                errors
                    .iter()
                    .map(|e| {
                        format!(
                            "{}: {}",
                            e.get("code").and_then(|c| c.as_str()).unwrap_or("?"),
                            e.get("message").and_then(|c| c.as_str()).unwrap_or("")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default();
        self.error(format!(
            "{method} {}: HTTP {}{}{codes}",
            strip_query(url),
            status.as_u16(),
            if codes.is_empty() { "" } else { ": " }
        ))
    }

    /// Whether the API answers at all (and lets us in): `GET /v2/`.
    pub(super) fn ping(&self) -> Result<(), RemoteError> {
        let url = self
            .base
            .join("v2/")
            .map_err(|e| self.error(e.to_string()))?;
        let response = self.send(&Method::GET, &url, &plain)?;
        if response.status().is_success() {
            return Ok(());
        }
        Err(self.fail(&Method::GET, &url, response))
    }
}

fn read_limited(response: Response, max: u64) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    response
        .take(max + 1)
        .read_to_end(&mut body)
        .map_err(|e| e.to_string())?;
    if body.len() as u64 > max {
        return Err(format!("larger than {max} bytes"));
    }
    Ok(body)
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The end of an upload's `Range: 0-END` (the last byte it holds).
fn range_end(headers: &HeaderMap) -> Option<u64> {
    let value = headers.get("Range")?.to_str().ok()?.trim();
    let value = value.strip_prefix("bytes=").unwrap_or(value);
    value.split_once('-')?.1.trim().parse().ok()
}

/// A URL without its query (upload sessions carry state there).
fn strip_query(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.to_string()
}

/// `127.0.0.0/8`, `::1` and `localhost`, which are reached over plain HTTP.
pub(super) fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn is_loopback_url(url: &Url) -> bool {
    url.host_str().is_some_and(is_loopback_host)
}

/// `SCHEME k="v",k2=v2` as the scheme and its parameters (quoted strings may hold commas).
fn parse_challenge(header: &str) -> (String, Vec<(String, String)>) {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let mut params = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=')).collect();
        if key.is_empty() || chars.next() != Some('=') {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ',')).collect();
        }
        params.push((key.trim().to_owned(), value.trim().to_owned()));
    }
    (scheme.to_owned(), params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_parsed_with_quoted_commas() {
        let (scheme, params) = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(scheme, "Bearer");
        assert_eq!(
            params,
            vec![
                ("realm".into(), "https://auth.example/token".into()),
                ("service".into(), "registry.example".into()),
                ("scope".into(), "repository:a/b:pull,push".into()),
            ]
        );
        let (scheme, params) = parse_challenge(r#"Basic realm="Registry Realm""#);
        assert_eq!(scheme, "Basic");
        assert_eq!(params, vec![("realm".into(), "Registry Realm".into())]);
    }

    #[test]
    fn loopback_hosts_are_recognised() {
        for host in [
            "127.0.0.1",
            "127.9.8.7",
            "localhost",
            "LOCALHOST",
            "[::1]",
            "::1",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "ghcr.io",
            "128.0.0.1",
            "10.0.0.1",
            "localhost.example",
            "[::2]",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn upload_ranges_are_read() {
        let mut headers = HeaderMap::new();
        headers.insert("Range", "0-1023".parse().unwrap());
        assert_eq!(range_end(&headers), Some(1023));
        headers.insert("Range", "bytes=0-9".parse().unwrap());
        assert_eq!(range_end(&headers), Some(9));
        headers.insert("Range", "junk".parse().unwrap());
        assert_eq!(range_end(&headers), None);
    }
}
