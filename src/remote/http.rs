//! `http(s)://...`: a static binary cache, read-only — any web server serving a directory that
//! was pushed to with `file:///DIR`. Blob `NAME` is `BASE/NAME`; 404 means absent.

use std::collections::BTreeMap;
use std::path::Path;

use reqwest::Url;

use super::{Blob, PutReport, Remote, RemoteConfig, RemoteError, Size, Upload};
use crate::fetch::credentials::{redact, Credentials};
use crate::fetch::http::HttpClient;
use crate::fetch::FetchError;

/// A static HTTP cache.
pub struct HttpRemote {
    base: Url,
    client: HttpClient,
}

impl HttpRemote {
    /// The cache at `base`.
    pub fn new(mut base: Url, config: &RemoteConfig) -> Result<HttpRemote, RemoteError> {
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let mut credentials = Credentials::default();
        let base = credentials.absorb(&base);
        Ok(HttpRemote {
            base,
            client: HttpClient::new(config.http.clone(), credentials)?,
        })
    }
}

impl Remote for HttpRemote {
    fn location(&self) -> String {
        redact(&self.base)
    }

    fn list(&self) -> Result<Option<BTreeMap<String, Blob>>, RemoteError> {
        Ok(None)
    }

    fn get(&self, name: &str, dest: &Path, size: Size) -> Result<bool, RemoteError> {
        let url = self.base.join(name).map_err(|e| RemoteError::BadSpec {
            spec: name.to_owned(),
            reason: e.to_string(),
        })?;
        // An exact size is enforced while streaming; a bound only afterwards (small blobs).
        let exact = match size {
            Size::Exact(n) => Some(n),
            Size::AtMost(_) => None,
        };
        match self.client.download(&url, dest, exact, &|_| {}) {
            Ok(downloaded) if downloaded.size > size.max() => Err(RemoteError::Tampered {
                remote: self.location(),
                name: name.to_owned(),
                reason: format!("larger than {} bytes", size.max()),
            }),
            Ok(_) => Ok(true),
            Err(FetchError::Status { status: 404, .. }) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    fn put(&self, _uploads: &[Upload]) -> Result<PutReport, RemoteError> {
        self.check_writable(&[]).map(|()| PutReport::default())
    }

    fn check_writable(&self, _files: &[Upload]) -> Result<(), RemoteError> {
        Err(RemoteError::ReadOnly {
            remote: self.location(),
        })
    }
}
