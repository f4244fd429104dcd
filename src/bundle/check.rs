//! Checking a bundle ZIP anywhere (outside any store) against the manifest it embeds, and
//! against its provenance: what `pystore verify FILE.zip [--provenance FILE]` does.

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use super::manifest::{BundleManifest, MANIFEST_NAME};
use super::provenance::STATEMENT_TYPE;
use crate::hash::{sha256_file, to_hex};
use crate::sign::dsse::DsseError;
use crate::sign::{Envelope, TrustedKeys};

/// Why a ZIP or provenance could not be checked at all (as opposed to failing the check).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// Reading a file.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not a ZIP, or no manifest in it.
    #[error("{}: {problem}; is it a pystore bundle ZIP?", path.display())]
    NotABundle {
        path: PathBuf,
        #[source]
        problem: BundleZipProblem,
    },
    /// A provenance file that is neither a statement nor a DSSE envelope of one.
    #[error("{} is not pystore provenance (an in-toto statement or a DSSE envelope of one): {problem}", path.display())]
    NotProvenance {
        path: PathBuf,
        #[source]
        problem: ProvenanceProblem,
    },
}

/// Why a file cannot be read as a bundle ZIP (shared with `diff`, which reads the same member).
#[derive(Debug, thiserror::Error)]
pub enum BundleZipProblem {
    /// Not a readable ZIP.
    #[error("{0}")]
    NotZip(#[source] zip::result::ZipError),
    /// A member the bundle must have is absent.
    #[error("no {0} in the archive")]
    NoMember(String),
    /// A member could not be read (or inflated).
    #[error("reading {member}: {source}")]
    Read {
        member: String,
        source: std::io::Error,
    },
    /// The manifest member is not a bundle manifest.
    #[error("{member}: {source}")]
    Manifest {
        member: String,
        source: serde_json::Error,
    },
}

/// Why a file is not pystore provenance.
#[derive(Debug, thiserror::Error)]
pub enum ProvenanceProblem {
    /// Not JSON, or JSON of another shape.
    #[error("{0}")]
    Json(#[source] serde_json::Error),
    /// A DSSE envelope whose payload cannot be decoded.
    #[error("{0}")]
    Envelope(#[source] DsseError),
    /// A statement of another type.
    #[error("_type is not {STATEMENT_TYPE}")]
    NotAStatement,
}

/// One thing wrong with a ZIP or its provenance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The member (or `provenance`).
    pub what: String,
    /// What is wrong.
    pub message: String,
}

fn problem(what: &str, message: impl Into<String>) -> Problem {
    Problem {
        what: what.to_owned(),
        message: message.into(),
    }
}

/// Checks every file the embedded manifest lists (type, size, blake3, executable bit, link
/// target) and that the ZIP holds nothing else; returns what is wrong (empty: intact).
pub fn check_zip(path: &Path) -> Result<Vec<Problem>, CheckError> {
    let not_bundle = |problem: BundleZipProblem| CheckError::NotABundle {
        path: path.to_path_buf(),
        problem,
    };
    let file = fs::File::open(path).map_err(|source| CheckError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut archive =
        zip::ZipArchive::new(file).map_err(|e| not_bundle(BundleZipProblem::NotZip(e)))?;
    let manifest = {
        let mut member = archive
            .by_name(MANIFEST_NAME)
            .map_err(|_| not_bundle(BundleZipProblem::NoMember(MANIFEST_NAME.to_owned())))?;
        let mut bytes = Vec::new();
        member.read_to_end(&mut bytes).map_err(|source| {
            not_bundle(BundleZipProblem::Read {
                member: MANIFEST_NAME.to_owned(),
                source,
            })
        })?;
        BundleManifest::parse(&bytes).map_err(|source| {
            not_bundle(BundleZipProblem::Manifest {
                member: MANIFEST_NAME.to_owned(),
                source,
            })
        })?
    };
    let mut problems = Vec::new();
    let listed: BTreeSet<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    for expected in &manifest.files {
        let what = expected.path.as_str();
        let mut member = match archive.by_name(what) {
            Ok(member) => member,
            Err(_) => {
                problems.push(problem(what, "missing from the ZIP"));
                continue;
            }
        };
        let mode = member.unix_mode().unwrap_or(0);
        let is_link = mode & 0o170000 == 0o120000;
        let mut hasher = blake3::Hasher::new();
        let mut contents = Vec::new();
        let read = if is_link {
            member.read_to_end(&mut contents).map(|n| n as u64)
        } else {
            std::io::copy(&mut member, &mut hasher)
        };
        let size = match read {
            Ok(size) => size,
            Err(e) => {
                // Damaged deflate data or a CRC-32 mismatch.
                problems.push(problem(what, format!("unreadable: {e}")));
                continue;
            }
        };
        match expected.kind.as_str() {
            "l" => {
                let target = String::from_utf8_lossy(&contents);
                if !is_link || Some(target.as_ref()) != expected.target.as_deref() {
                    problems.push(problem(
                        what,
                        format!(
                            "expected a symlink to {:?}, found {}",
                            expected.target.as_deref().unwrap_or(""),
                            if is_link {
                                format!("one to {target:?}")
                            } else {
                                "a file".into()
                            }
                        ),
                    ));
                }
            }
            kind => {
                if is_link {
                    problems.push(problem(what, "expected a file, found a symlink"));
                    continue;
                }
                if Some(size) != expected.size {
                    problems.push(problem(
                        what,
                        format!(
                            "size {size}, the manifest says {}",
                            expected.size.unwrap_or(0)
                        ),
                    ));
                }
                let digest = hasher.finalize().to_hex().to_string();
                if Some(&digest) != expected.blake3.as_ref() {
                    problems.push(problem(
                        what,
                        format!(
                            "blake3 {digest}, the manifest says {}",
                            expected.blake3.as_deref().unwrap_or("")
                        ),
                    ));
                }
                let executable = mode & 0o100 != 0;
                if executable != (kind == "x") {
                    problems.push(problem(what, "executable bit differs from the manifest"));
                }
            }
        }
    }
    for name in archive.file_names() {
        // Directories carry no content (and the manifest lists none, not even empty ones).
        if name.ends_with('/') {
            continue;
        }
        if name != MANIFEST_NAME && !listed.contains(name) {
            problems.push(problem(name, "in the ZIP but not in its manifest"));
        }
    }
    problems.sort_by(|a, b| a.what.cmp(&b.what));
    Ok(problems)
}

/// What checking provenance found.
#[derive(Clone, Debug, Serialize)]
pub struct ProvenanceReport {
    /// The key whose signature verified, when the provenance is signed and keys are trusted.
    pub signed_by: Option<String>,
    /// What is wrong (empty: the provenance is for this ZIP, and signed when keys are trusted).
    pub problems: Vec<Problem>,
}

/// Checks that the provenance at `provenance` is about the ZIP at `zip` (a subject with its
/// sha256) and, when `trusted` holds keys, that one of them signed it (unsigned provenance then
/// fails).
pub fn check_provenance(
    zip: &Path,
    provenance: &Path,
    trusted: &TrustedKeys,
) -> Result<ProvenanceReport, CheckError> {
    let not_provenance = |problem: ProvenanceProblem| CheckError::NotProvenance {
        path: provenance.to_path_buf(),
        problem,
    };
    let text = fs::read(provenance).map_err(|source| CheckError::Io {
        path: provenance.to_path_buf(),
        source,
    })?;
    let value: Value =
        serde_json::from_slice(&text).map_err(|e| not_provenance(ProvenanceProblem::Json(e)))?;
    let mut problems = Vec::new();
    let mut signed_by = None;
    let statement: Value = if value.get("payloadType").is_some() {
        let envelope: Envelope = serde_json::from_value(value)
            .map_err(|e| not_provenance(ProvenanceProblem::Json(e)))?;
        if !trusted.0.is_empty() {
            match envelope.verify(trusted) {
                Ok(name) => signed_by = Some(name),
                Err(e) => problems.push(problem("signature", e.to_string())),
            }
        }
        let payload = envelope
            .payload_bytes()
            .map_err(|e| not_provenance(ProvenanceProblem::Envelope(e)))?;
        serde_json::from_slice(&payload).map_err(|e| not_provenance(ProvenanceProblem::Json(e)))?
    } else {
        if !trusted.0.is_empty() {
            problems.push(problem(
                "signature",
                "the provenance is not signed, but PYSTORE_TRUSTED_KEYS asks for a signature",
            ));
        }
        value
    };
    if statement["_type"] != STATEMENT_TYPE {
        return Err(not_provenance(ProvenanceProblem::NotAStatement));
    }
    let sha256 = to_hex(&sha256_file(zip).map_err(|source| CheckError::Io {
        path: zip.to_path_buf(),
        source,
    })?);
    let subjects = statement["subject"].as_array().cloned().unwrap_or_default();
    if !subjects
        .iter()
        .any(|s| s["digest"]["sha256"].as_str() == Some(sha256.as_str()))
    {
        let listed: Vec<String> = subjects
            .iter()
            .map(|s| {
                format!(
                    "{} (sha256 {})",
                    s["name"].as_str().unwrap_or("?"),
                    s["digest"]["sha256"].as_str().unwrap_or("?")
                )
            })
            .collect();
        problems.push(problem(
            "subject",
            format!(
                "the ZIP's sha256 is {sha256}, but the provenance is about {}",
                listed.join(", ")
            ),
        ));
    }
    Ok(ProvenanceReport {
        signed_by,
        problems,
    })
}
