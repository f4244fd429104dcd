//! `RECORD` files (PEP 376, the binary distribution format): CSV rows of
//! `path,algorithm=urlsafe-base64-digest,size`, read from wheels and written for installs.

use base64::Engine;
use sha2::Digest;

/// One row of a RECORD.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordEntry {
    /// The path, `/`-separated.
    pub path: String,
    /// `sha256=…` or empty (RECORD itself, signatures).
    pub hash: String,
    /// Size in bytes, if given.
    pub size: Option<u64>,
}

/// Why a RECORD could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line} of RECORD: {reason}")]
pub struct RecordError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

/// A file's digest for a RECORD hash algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashAlgorithm {
    /// `sha256`, what wheels use.
    Sha256,
    /// `sha384`.
    Sha384,
    /// `sha512`.
    Sha512,
}

impl HashAlgorithm {
    /// The algorithm of a RECORD hash field (`sha256=…`); weaker ones (md5, sha1) are refused.
    pub fn of_field(field: &str) -> Option<(HashAlgorithm, &str)> {
        let (name, digest) = field.split_once('=')?;
        let algorithm = match name {
            "sha256" => HashAlgorithm::Sha256,
            "sha384" => HashAlgorithm::Sha384,
            "sha512" => HashAlgorithm::Sha512,
            _ => return None,
        };
        Some((algorithm, digest))
    }
}

/// An incremental hasher for any of the RECORD algorithms.
pub enum RecordHasher {
    /// sha256.
    Sha256(sha2::Sha256),
    /// sha384.
    Sha384(sha2::Sha384),
    /// sha512.
    Sha512(sha2::Sha512),
}

impl RecordHasher {
    /// A new hasher.
    pub fn new(algorithm: HashAlgorithm) -> RecordHasher {
        match algorithm {
            HashAlgorithm::Sha256 => RecordHasher::Sha256(sha2::Sha256::new()),
            HashAlgorithm::Sha384 => RecordHasher::Sha384(sha2::Sha384::new()),
            HashAlgorithm::Sha512 => RecordHasher::Sha512(sha2::Sha512::new()),
        }
    }

    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            RecordHasher::Sha256(h) => h.update(bytes),
            RecordHasher::Sha384(h) => h.update(bytes),
            RecordHasher::Sha512(h) => h.update(bytes),
        }
    }

    /// The urlsafe, unpadded base64 digest, as written in RECORDs.
    pub fn finish(self) -> String {
        let digest = match self {
            RecordHasher::Sha256(h) => h.finalize().to_vec(),
            RecordHasher::Sha384(h) => h.finalize().to_vec(),
            RecordHasher::Sha512(h) => h.finalize().to_vec(),
        };
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
    }
}

/// The RECORD hash field of `bytes`: `sha256=<urlsafe base64, no padding>`.
pub fn sha256_field(bytes: &[u8]) -> String {
    let mut hasher = RecordHasher::new(HashAlgorithm::Sha256);
    hasher.update(bytes);
    format!("sha256={}", hasher.finish())
}

/// Parses a RECORD (CSV with `"` quoting; blank lines ignored).
pub fn parse_record(text: &str) -> Result<Vec<RecordEntry>, RecordError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        // Rows of the wrong length are reported below, with their line.
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut entries = Vec::new();
    for row in reader.records() {
        let row = row.map_err(|err| RecordError {
            line: err.position().map_or(0, |p| p.line() as usize),
            reason: err.to_string(),
        })?;
        let line_no = row.position().map_or(0, |p| p.line() as usize);
        if row.len() == 1 && row[0].trim().is_empty() {
            continue;
        }
        if row.len() != 3 {
            return Err(RecordError {
                line: line_no,
                reason: format!("expected 3 fields (path,hash,size), found {}", row.len()),
            });
        }
        let (path, hash, size) = (&row[0], &row[1], &row[2]);
        if path.is_empty() {
            return Err(RecordError {
                line: line_no,
                reason: "empty path".into(),
            });
        }
        let size = if size.is_empty() {
            None
        } else {
            Some(size.parse::<u64>().map_err(|_| RecordError {
                line: line_no,
                reason: format!("invalid size {size:?}"),
            })?)
        };
        entries.push(RecordEntry {
            path: path.to_owned(),
            hash: hash.to_owned(),
            size,
        });
    }
    Ok(entries)
}

/// Writes a RECORD: rows sorted by path, `\n` line ends, fields quoted only where they hold a
/// comma, a quote or a line end (deterministic bytes).
pub fn write_record(entries: &[RecordEntry]) -> String {
    let mut sorted: Vec<&RecordEntry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .quote_style(csv::QuoteStyle::Necessary)
        .from_writer(Vec::new());
    for entry in sorted {
        let size = entry.size.map(|size| size.to_string()).unwrap_or_default();
        // Writing to memory cannot fail.
        let _ = writer.write_record([entry.path.as_str(), entry.hash.as_str(), size.as_str()]);
    }
    let bytes = writer.into_inner().unwrap_or_default();
    // Every field came from a String: the bytes are UTF-8.
    String::from_utf8(bytes).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let text = "pkg/__init__.py,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0\n\
                    \"odd,name.py\",sha256=abc,3\n\
                    pkg-1.0.dist-info/RECORD,,\n";
        let entries = parse_record(text).unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[1].path, "odd,name.py");
        assert_eq!(entries[2].size, None);
        let written = write_record(&entries);
        assert_eq!(parse_record(&written).unwrap().len(), 3);
        assert!(written.starts_with("\"odd,name.py\""));
    }

    #[test]
    fn written_bytes_are_stable() {
        let entries = [
            RecordEntry {
                path: "b.py".into(),
                hash: "sha256=x".into(),
                size: Some(3),
            },
            RecordEntry {
                path: "a \"q\"\nline.py".into(),
                hash: String::new(),
                size: None,
            },
            RecordEntry {
                path: "c\rd.py".into(),
                hash: "sha256=y".into(),
                size: Some(0),
            },
        ];
        assert_eq!(
            write_record(&entries),
            "\"a \"\"q\"\"\nline.py\",,\nb.py,sha256=x,3\n\"c\rd.py\",sha256=y,0\n"
        );
        assert_eq!(write_record(&[]), "");
    }

    #[test]
    fn errors_and_hashes() {
        assert!(parse_record("a,b\n").is_err());
        assert!(parse_record("a,b,x\n").is_err());
        assert!(parse_record("\"a,b,1\n").is_err());
        assert_eq!(
            sha256_field(b""),
            "sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"
        );
        assert!(HashAlgorithm::of_field("md5=x").is_none());
    }
}
