//! A remote file read by HTTP range requests, as `Read + Seek`: to read one member of a large
//! archive (a wheel's METADATA) without downloading the archive.
//!
//! Opening asks for the file's last bytes (where a ZIP keeps its directory), which also tells its
//! length; later reads fetch what they miss, a block at a time. A server that does not serve
//! ranges answers the first request with the whole file, and [`RangedFile::open`] says so
//! instead of reading it, so the caller can download the file the ordinary way.

use std::io::{Read, Seek, SeekFrom};

use reqwest::Url;

use super::credentials::redact;
use super::http::HttpClient;
use super::{FetchError, TransportError};

/// The smallest request made for a missed read.
const BLOCK: u64 = 64 << 10;

/// A remote file read in ranges.
pub struct RangedFile<'c> {
    http: &'c HttpClient,
    url: Url,
    len: u64,
    pos: u64,
    /// Fetched spans `(offset, bytes)`; few, so searched in order.
    spans: Vec<(u64, Vec<u8>)>,
    fetched: u64,
    requests: usize,
}

impl<'c> RangedFile<'c> {
    /// Opens `url`, fetching its last `tail` bytes. `Ok(None)`: the server does not serve ranges.
    pub fn open(
        http: &'c HttpClient,
        url: &Url,
        tail: u64,
    ) -> Result<Option<RangedFile<'c>>, FetchError> {
        let Some(part) = http.get_range(url, &format!("bytes=-{}", tail.max(1)))? else {
            return Ok(None);
        };
        let mut file = RangedFile {
            http,
            url: url.clone(),
            len: part.total,
            pos: 0,
            spans: Vec::new(),
            fetched: 0,
            requests: 1,
        };
        file.keep(part.start, part.body)?;
        Ok(Some(file))
    }

    /// The file's length, as the server gave it.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Requests made so far.
    pub fn requests(&self) -> usize {
        self.requests
    }

    /// Bytes fetched so far.
    pub fn fetched(&self) -> u64 {
        self.fetched
    }

    fn keep(&mut self, start: u64, body: Vec<u8>) -> Result<(), FetchError> {
        let end = start.checked_add(body.len() as u64);
        if end.map_or(true, |end| end > self.len) || body.is_empty() {
            return Err(FetchError::Transport {
                url: redact(&self.url),
                source: TransportError::RangeOutside {
                    got: body.len(),
                    start,
                    len: self.len,
                },
            });
        }
        self.fetched += body.len() as u64;
        self.spans.push((start, body));
        Ok(())
    }

    fn fetch(&mut self, at: u64, want: usize) -> Result<(), FetchError> {
        let end = at.saturating_add((want as u64).max(BLOCK)).min(self.len) - 1;
        let part = self
            .http
            .get_range(&self.url, &format!("bytes={at}-{end}"))?
            .ok_or_else(|| FetchError::Transport {
                url: redact(&self.url),
                source: TransportError::RangesStopped,
            })?;
        self.requests += 1;
        if part.start != at || part.total != self.len {
            return Err(FetchError::Transport {
                url: redact(&self.url),
                source: TransportError::WrongRange {
                    at,
                    end,
                    len: self.len,
                    got: part.body.len(),
                    start: part.start,
                    total: part.total,
                },
            });
        }
        self.keep(part.start, part.body)
    }
}

impl Read for RangedFile<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let pos = self.pos;
        let held = |spans: &[(u64, Vec<u8>)]| {
            spans
                .iter()
                .position(|(start, bytes)| *start <= pos && pos < start + bytes.len() as u64)
        };
        let index = match held(&self.spans) {
            Some(index) => index,
            None => {
                self.fetch(pos, buf.len()).map_err(std::io::Error::other)?;
                self.spans.len() - 1
            }
        };
        let (start, bytes) = &self.spans[index];
        let from = (pos - start) as usize;
        let n = buf.len().min(bytes.len() - from);
        buf[..n].copy_from_slice(&bytes[from..from + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for RangedFile<'_> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = target.ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start")
        })?;
        Ok(self.pos)
    }
}
