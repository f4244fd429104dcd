//! The repository operations of [`Registry`]: checking blobs (`HEAD`), uploading them
//! (monolithic, or chunked and resumed), downloading them with their digest checked, and
//! reading and writing manifests. Requests go through the transport and auth of the parent
//! module.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use reqwest::blocking::{RequestBuilder, Response};
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode, Url};
use sha2::Digest;

use super::{
    content_length, is_loopback_url, plain, range_end, read_limited, strip_query, Outcome,
    Registry, MAX_MANIFEST_SIZE, MAX_REDIRECTS,
};
use crate::fetch::http::{backoff_delay, media_type};
use crate::hash::to_hex;
use crate::remote::{io_err, RemoteError, Size};

impl Registry {
    /// The size of blob `digest` when the repository has it.
    pub(in crate::remote::oci) fn blob_size(
        &self,
        digest: &str,
    ) -> Result<Option<u64>, RemoteError> {
        let url = self.endpoint(&format!("blobs/{digest}"))?;
        let response = self.send(&Method::HEAD, &url, &plain)?;
        match response.status() {
            s if s.is_success() => Ok(Some(content_length(response.headers()).unwrap_or(0))),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(self.fail(&Method::HEAD, &url, response)),
        }
    }

    /// Uploads the file at `path` (`size` bytes, sha256 `digest`) as a blob.
    pub(in crate::remote::oci) fn upload(
        &self,
        path: &Path,
        size: u64,
        digest: &str,
    ) -> Result<(), RemoteError> {
        if size <= self.chunk_size {
            self.upload_monolithic(path, size, digest)
        } else {
            self.upload_chunked(path, size, digest)
        }
    }

    /// `POST /blobs/uploads/`: a new upload session's URL.
    fn start_upload(&self) -> Result<Url, RemoteError> {
        let url = self.endpoint("blobs/uploads/")?;
        let build = |r: RequestBuilder| Ok(r.header(CONTENT_LENGTH, 0));
        let response = self.send(&Method::POST, &url, &build)?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(self.fail(&Method::POST, &url, response));
        }
        self.location_of(&response, &url)
    }

    fn location_of(&self, response: &Response, url: &Url) -> Result<Url, RemoteError> {
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                self.error(format!(
                    "{} answered without a Location header",
                    strip_query(url)
                ))
            })?;
        url.join(location)
            .map_err(|e| self.error(format!("bad upload location {location:?}: {e}")))
    }

    fn upload_monolithic(&self, path: &Path, size: u64, digest: &str) -> Result<(), RemoteError> {
        for round in 0..2 {
            let mut url = self.start_upload()?;
            url.query_pairs_mut().append_pair("digest", digest);
            let build = |r: RequestBuilder| {
                let file = File::open(path).map_err(io_err("read", path))?;
                Ok(r.header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_LENGTH, size)
                    .body(reqwest::blocking::Body::sized(file, size)))
            };
            let response = self.send(&Method::PUT, &url, &build)?;
            match response.status() {
                StatusCode::CREATED => return Ok(()),
                // The session expired or was lost between the two requests: start another.
                StatusCode::NOT_FOUND if round == 0 => continue,
                _ => return Err(self.fail(&Method::PUT, &url, response)),
            }
        }
        Err(self.error(format!("the upload of {digest} was lost twice")))
    }

    /// Where an upload session stands: the offset of the next byte it expects.
    fn upload_offset(&self, session: &Url) -> Result<(Url, u64), RemoteError> {
        let response = self.send(&Method::GET, session, &plain)?;
        if !response.status().is_success() {
            return Err(self.fail(&Method::GET, session, response));
        }
        let offset = range_end(response.headers()).map_or(0, |end| end + 1);
        let session = match response.headers().get(LOCATION) {
            Some(_) => self.location_of(&response, session)?,
            None => session.clone(),
        };
        Ok((session, offset))
    }

    fn upload_chunked(&self, path: &Path, size: u64, digest: &str) -> Result<(), RemoteError> {
        let mut file = File::open(path).map_err(io_err("read", path))?;
        let mut session = self.start_upload()?;
        let mut offset = 0u64;
        let mut failures = 0u32;
        let mut chunk = Vec::new();
        while offset < size {
            let len = self.chunk_size.min(size - offset);
            chunk.clear();
            file.seek(SeekFrom::Start(offset))
                .and_then(|_| (&mut file).take(len).read_to_end(&mut chunk))
                .map_err(io_err("read", path))?;
            if chunk.len() as u64 != len {
                return Err(self.error(format!("{} changed while uploading", path.display())));
            }
            let range = format!("{offset}-{}", offset + len - 1);
            let build = |r: RequestBuilder| {
                Ok(r.header(CONTENT_TYPE, "application/octet-stream")
                    .header("Content-Range", range.as_str())
                    .header(CONTENT_LENGTH, len)
                    .body(chunk.clone()))
            };
            let failed = match self.once(&Method::PATCH, &session, &build)? {
                Outcome::Answered(response) if response.status() == StatusCode::ACCEPTED => {
                    session = self.location_of(&response, &session)?;
                    offset = range_end(response.headers()).map_or(offset + len, |end| end + 1);
                    continue;
                }
                Outcome::Answered(response) => {
                    return Err(self.fail(&Method::PATCH, &session, response))
                }
                Outcome::Failed { reason, after } => (reason, after),
            };
            // Resume: ask the session how much it holds and go on from there.
            let (reason, after) = failed;
            if failures >= self.http.retries {
                return Err(self.error(format!(
                    "uploading {digest}: gave up after {} failed chunks; last: {reason}",
                    failures + 1
                )));
            }
            let delay = backoff_delay(&self.http, failures, after);
            tracing::info!("PATCH chunk {range} of {digest}: {reason}; resuming in {delay:?}");
            std::thread::sleep(delay);
            failures += 1;
            match self.upload_offset(&session) {
                Ok((resumed, at)) if at <= size => {
                    tracing::info!("resuming the upload of {digest} at byte {at} of {size}");
                    session = resumed;
                    offset = at;
                }
                // A session that cannot say where it stands (the CNCF server cancels one whose
                // state lags behind a chunk it stored but could not acknowledge): start over.
                status => {
                    let why = match status {
                        Ok((_, at)) => format!("it claims {at} of {size} bytes"),
                        Err(e) => e.to_string(),
                    };
                    tracing::info!("restarting the upload of {digest}: {why}");
                    session = self.start_upload()?;
                    offset = 0;
                }
            }
        }
        let mut url = session.clone();
        url.query_pairs_mut().append_pair("digest", digest);
        let build = |r: RequestBuilder| Ok(r.header(CONTENT_LENGTH, 0));
        let response = self.send(&Method::PUT, &url, &build)?;
        if response.status() != StatusCode::CREATED {
            return Err(self.fail(&Method::PUT, &url, response));
        }
        Ok(())
    }

    /// GETs `url`, following redirects by hand: credentials go only to the registry's origin.
    fn get_following(&self, url: &Url, accept: Option<&str>) -> Result<Response, RemoteError> {
        let mut url = url.clone();
        let build = |r: RequestBuilder| {
            Ok(match accept {
                Some(accept) => r.header(ACCEPT, accept),
                None => r,
            })
        };
        for _ in 0..=MAX_REDIRECTS {
            let response = self.send(&Method::GET, &url, &build)?;
            if !response.status().is_redirection() {
                return Ok(response);
            }
            url = self.location_of(&response, &url)?;
            if url.scheme() != "https" && !(url.scheme() == "http" && is_loopback_url(&url)) {
                return Err(self.error(format!(
                    "redirected to {}, which is not HTTPS",
                    strip_query(&url)
                )));
            }
        }
        Err(self.error(format!("more than {MAX_REDIRECTS} redirects")))
    }

    /// Downloads blob `digest` into `dest` (at most / exactly `size`), checking its digest;
    /// `Ok(false)` when the repository does not have it. `name` is for messages.
    pub(in crate::remote::oci) fn download(
        &self,
        digest: &str,
        name: &str,
        dest: &Path,
        size: Size,
    ) -> Result<bool, RemoteError> {
        let url = self.endpoint(&format!("blobs/{digest}"))?;
        let tampered = |reason: String| RemoteError::Tampered {
            remote: self.location.clone(),
            name: name.to_owned(),
            reason,
        };
        let mut attempt = 0;
        loop {
            let response = self.get_following(&url, None)?;
            match response.status() {
                s if s.is_success() => {}
                StatusCode::NOT_FOUND => return Ok(false),
                _ => return Err(self.fail(&Method::GET, &url, response)),
            }
            match stream_to(response, dest, size.max())? {
                Streamed::Done { bytes, sha256 } => {
                    let wrong_size = match size {
                        Size::Exact(n) => bytes != n,
                        Size::AtMost(n) => bytes > n,
                    };
                    if wrong_size {
                        return Err(tampered(match size {
                            Size::Exact(n) => {
                                format!("{bytes} bytes, not the {n} its signed description says")
                            }
                            Size::AtMost(n) => format!("larger than {n} bytes"),
                        }));
                    }
                    let got = format!("sha256:{}", to_hex(&sha256));
                    if got != digest {
                        return Err(tampered(format!(
                            "the registry served bytes with digest {got} for blob {digest}"
                        )));
                    }
                    return Ok(true);
                }
                Streamed::Interrupted(reason) => {
                    if attempt >= self.http.retries {
                        return Err(self.error(format!(
                            "GET {url}: gave up after {} attempts; last: {reason}",
                            attempt + 1
                        )));
                    }
                    std::thread::sleep(backoff_delay(&self.http, attempt, None));
                    attempt += 1;
                }
            }
        }
    }

    /// Manifest `reference` (a tag or digest): its bytes, digest and media type; `None` when
    /// absent. A manifest asked for by digest must hash to it.
    pub(in crate::remote::oci) fn manifest(
        &self,
        reference: &str,
        accept: &str,
    ) -> Result<Option<(Vec<u8>, String, String)>, RemoteError> {
        let url = self.endpoint(&format!("manifests/{reference}"))?;
        let response = self.get_following(&url, Some(accept))?;
        match response.status() {
            s if s.is_success() => {}
            StatusCode::NOT_FOUND => return Ok(None),
            _ => return Err(self.fail(&Method::GET, &url, response)),
        }
        let media_type = media_type(response.headers());
        let bytes = read_limited(response, MAX_MANIFEST_SIZE)
            .map_err(|e| self.error(format!("reading manifest {reference}: {e}")))?;
        let digest = format!("sha256:{}", to_hex(&sha2::Sha256::digest(&bytes)));
        if reference.starts_with("sha256:") && digest != reference {
            return Err(RemoteError::Tampered {
                remote: self.location.clone(),
                name: format!("manifest {reference}"),
                reason: format!("its bytes hash to {digest}"),
            });
        }
        Ok(Some((bytes, digest, media_type)))
    }

    /// Whether manifest `digest` exists.
    pub(in crate::remote::oci) fn has_manifest(
        &self,
        digest: &str,
        accept: &str,
    ) -> Result<bool, RemoteError> {
        let url = self.endpoint(&format!("manifests/{digest}"))?;
        let build = |r: RequestBuilder| Ok(r.header(ACCEPT, accept));
        let response = self.send(&Method::HEAD, &url, &build)?;
        match response.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.fail(&Method::HEAD, &url, response)),
        }
    }

    /// Puts manifest `bytes` of `media_type` under `reference`.
    pub(in crate::remote::oci) fn put_manifest(
        &self,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<(), RemoteError> {
        let url = self.endpoint(&format!("manifests/{reference}"))?;
        let build = |r: RequestBuilder| {
            Ok(r.header(CONTENT_TYPE, media_type)
                .header(CONTENT_LENGTH, bytes.len())
                .body(bytes.to_vec()))
        };
        let response = self.send(&Method::PUT, &url, &build)?;
        if response.status() != StatusCode::CREATED {
            return Err(self.fail(&Method::PUT, &url, response));
        }
        Ok(())
    }
}

enum Streamed {
    Done { bytes: u64, sha256: [u8; 32] },
    Interrupted(String),
}

/// Streams a body into `dest` (created or truncated), stopping one byte past `max`.
fn stream_to(mut response: Response, dest: &Path, max: u64) -> Result<Streamed, RemoteError> {
    let mut file = File::create(dest).map_err(io_err("create", dest))?;
    let mut hasher = sha2::Sha256::new();
    let mut bytes = 0u64;
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = match response.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => return Ok(Streamed::Interrupted(e.to_string())),
        };
        let keep = n.min((max + 1 - bytes) as usize);
        file.write_all(&buf[..keep])
            .map_err(io_err("write", dest))?;
        hasher.update(&buf[..keep]);
        bytes += keep as u64;
        if bytes > max {
            break;
        }
    }
    file.sync_all().map_err(io_err("write", dest))?;
    Ok(Streamed::Done {
        bytes,
        sha256: hasher.finalize().into(),
    })
}
