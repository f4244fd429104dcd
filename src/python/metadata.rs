//! Core metadata (a wheel's `.dist-info/METADATA`, or the PEP 658 file an index serves beside
//! it): the fields a resolver needs — `Name`, `Version`, `Requires-Dist`, `Requires-Python` and
//! `Provides-Extra`.
//!
//! The format is email-header-like: `Key: value` lines, continuation lines starting with white
//! space, and a body after the first blank line (the description, which is ignored).

use std::io::{Read, Seek};
use std::path::Path;
use std::str::FromStr;

use pep440_rs::{Version, VersionSpecifiers};
use pep508_rs::{ExtraName, Requirement};

/// The largest METADATA read (a zip bomb in the member would otherwise be inflated whole).
const MAX_METADATA: u64 = 16 << 20;

/// The resolver's view of a distribution's core metadata.
#[derive(Clone, Debug)]
pub struct CoreMetadata {
    /// `Name`, as written.
    pub name: String,
    /// `Version`.
    pub version: Version,
    /// `Requires-Dist`, in file order.
    pub requires_dist: Vec<Requirement>,
    /// `Requires-Python`.
    pub requires_python: Option<VersionSpecifiers>,
    /// `Provides-Extra`.
    pub provides_extra: Vec<ExtraName>,
}

/// Why metadata cannot be read, naming the metadata file or the wheel.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// A field is missing or malformed.
    #[error("{source_name}: {problem}")]
    Invalid {
        source_name: String,
        #[source]
        problem: FieldProblem,
    },
    /// The wheel cannot be opened as a ZIP or has no METADATA.
    #[error("{}: {problem}", path.display())]
    Wheel {
        path: std::path::PathBuf,
        #[source]
        problem: WheelProblem,
    },
}

/// What is wrong with a metadata field.
#[derive(Debug, thiserror::Error)]
pub enum FieldProblem {
    /// A required field is absent.
    #[error("no {0} field")]
    Missing(&'static str),
    /// `Version` is not a PEP 440 version.
    #[error("Version {text:?}: {source}")]
    Version {
        text: String,
        source: pep440_rs::VersionParseError,
    },
    /// A `Requires-Dist` line is not a PEP 508 requirement (the parser's reason, without its
    /// underlined copy of the line, which `text` already shows).
    #[error("Requires-Dist {text:?}: {source}")]
    RequiresDist {
        text: String,
        source: pep508_rs::Pep508ErrorSource,
    },
    /// `Requires-Python` is not a PEP 440 specifier set.
    #[error("Requires-Python {text:?}: {source}")]
    RequiresPython {
        text: String,
        source: pep440_rs::VersionSpecifiersParseError,
    },
    /// A `Provides-Extra` value is not a valid extra name.
    #[error("Provides-Extra {text:?}: {source}")]
    ProvidesExtra {
        text: String,
        source: pep508_rs::InvalidNameError,
    },
}

/// Why a wheel's METADATA could not be found or read.
#[derive(Debug, thiserror::Error)]
pub enum WheelProblem {
    /// The wheel file could not be opened.
    #[error("{0}")]
    Open(#[source] std::io::Error),
    /// The wheel is not a readable ZIP.
    #[error("not a readable wheel (ZIP): {0}")]
    NotZip(#[source] zip::result::ZipError),
    /// No `*.dist-info/METADATA` member.
    #[error("no *.dist-info/METADATA in the wheel")]
    NoMetadata,
    /// More than one `*.dist-info/METADATA` member.
    #[error("several METADATA files in the wheel: {}", .0.join(", "))]
    SeveralMetadata(Vec<String>),
    /// The METADATA member could not be opened.
    #[error("{member}: {source}")]
    Member {
        member: String,
        source: zip::result::ZipError,
    },
    /// The METADATA member is larger than any real one.
    #[error("{member} is {size} bytes; refusing more than {limit}")]
    TooLarge {
        member: String,
        size: u64,
        limit: u64,
    },
    /// The METADATA member could not be read.
    #[error("{member}: {source}")]
    Read {
        member: String,
        source: std::io::Error,
    },
}

impl CoreMetadata {
    /// Parses METADATA bytes; `source_name` names them in errors (a file name or URL).
    pub fn parse(bytes: &[u8], source_name: &str) -> Result<CoreMetadata, MetadataError> {
        let invalid = |problem: FieldProblem| MetadataError::Invalid {
            source_name: source_name.to_owned(),
            problem,
        };
        let text = String::from_utf8_lossy(bytes);
        let mut fields: Vec<(String, String)> = Vec::new();
        for line in text.lines() {
            if line.is_empty() {
                break; // the body (description) starts here
            }
            if line.starts_with([' ', '\t']) {
                if let Some((_, value)) = fields.last_mut() {
                    value.push(' ');
                    value.push_str(line.trim());
                }
                continue;
            }
            if let Some((key, value)) = line.split_once(':') {
                fields.push((key.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
        let all = |key: &'static str| {
            fields
                .iter()
                .filter(move |(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        let name = all("name")
            .next()
            .ok_or_else(|| invalid(FieldProblem::Missing("Name")))?
            .to_owned();
        let version_text = all("version")
            .next()
            .ok_or_else(|| invalid(FieldProblem::Missing("Version")))?;
        let version = Version::from_str(version_text).map_err(|source| {
            invalid(FieldProblem::Version {
                text: version_text.to_owned(),
                source,
            })
        })?;
        let requires_dist = all("requires-dist")
            .map(|line| {
                Requirement::from_str(line).map_err(|e| {
                    invalid(FieldProblem::RequiresDist {
                        text: line.to_owned(),
                        source: e.message,
                    })
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let requires_python = match all("requires-python").next() {
            None => None,
            Some("") => None,
            Some(spec) => Some(VersionSpecifiers::from_str(spec).map_err(|source| {
                invalid(FieldProblem::RequiresPython {
                    text: spec.to_owned(),
                    source,
                })
            })?),
        };
        let provides_extra = all("provides-extra")
            .map(|extra| {
                ExtraName::from_str(extra).map_err(|source| {
                    invalid(FieldProblem::ProvidesExtra {
                        text: extra.to_owned(),
                        source,
                    })
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CoreMetadata {
            name,
            version,
            requires_dist,
            requires_python,
            provides_extra,
        })
    }

    /// Reads `*.dist-info/METADATA` from a wheel file. A wheel has exactly one top-level
    /// `.dist-info` directory; more than one is refused rather than guessed between.
    pub fn from_wheel(path: &Path) -> Result<CoreMetadata, MetadataError> {
        let file = std::fs::File::open(path).map_err(|e| MetadataError::Wheel {
            path: path.to_path_buf(),
            problem: WheelProblem::Open(e),
        })?;
        CoreMetadata::from_wheel_reader(file, path)
    }

    /// [`CoreMetadata::from_wheel`] over any seekable reader (a remote wheel read in ranges);
    /// `path` names the wheel in errors. Only the ZIP directory and the METADATA member are read.
    pub fn from_wheel_reader<R: Read + Seek>(
        reader: R,
        path: &Path,
    ) -> Result<CoreMetadata, MetadataError> {
        let wheel_error = |problem: WheelProblem| MetadataError::Wheel {
            path: path.to_path_buf(),
            problem,
        };
        let mut archive =
            zip::ZipArchive::new(reader).map_err(|e| wheel_error(WheelProblem::NotZip(e)))?;
        let mut candidates: Vec<String> = archive
            .file_names()
            .filter(|name| {
                name.split_once('/')
                    .is_some_and(|(dir, rest)| dir.ends_with(".dist-info") && rest == "METADATA")
            })
            .map(str::to_owned)
            .collect();
        candidates.sort();
        let member = match candidates.as_slice() {
            [one] => one.clone(),
            [] => return Err(wheel_error(WheelProblem::NoMetadata)),
            many => return Err(wheel_error(WheelProblem::SeveralMetadata(many.to_vec()))),
        };
        let mut entry = archive.by_name(&member).map_err(|source| {
            wheel_error(WheelProblem::Member {
                member: member.clone(),
                source,
            })
        })?;
        if entry.size() > MAX_METADATA {
            return Err(wheel_error(WheelProblem::TooLarge {
                member: member.clone(),
                size: entry.size(),
                limit: MAX_METADATA,
            }));
        }
        let mut bytes = Vec::new();
        (&mut entry)
            .take(MAX_METADATA + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| {
                wheel_error(WheelProblem::Read {
                    member: member.clone(),
                    source,
                })
            })?;
        drop(entry);
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        CoreMetadata::parse(&bytes, &format!("{name}/{member}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Metadata-Version: 2.1\nName: Demo_Pkg\nVersion: 1.2.0\n\
        Requires-Python: >=3.9\nProvides-Extra: fast\n\
        Requires-Dist: idna (>=2.5)\nRequires-Dist: ujson>=5; extra == \"fast\"\n\
        Requires-Dist: colorama;\n  sys_platform == \"win32\"\n\
        \nRequires-Dist: not-a-field: this is the description\n";

    #[test]
    fn parses_the_fields_a_resolver_needs() {
        let meta = CoreMetadata::parse(SAMPLE.as_bytes(), "demo.metadata").unwrap();
        assert_eq!(meta.name, "Demo_Pkg");
        assert_eq!(meta.version.to_string(), "1.2.0");
        assert_eq!(meta.requires_dist.len(), 3, "the body is not read");
        assert_eq!(meta.requires_dist[0].name.as_ref(), "idna");
        assert_eq!(
            meta.requires_dist[2].marker.try_to_string().as_deref(),
            Some("sys_platform == 'win32'")
        );
        assert_eq!(meta.requires_python.unwrap().to_string(), ">=3.9");
        assert_eq!(meta.provides_extra[0].as_ref(), "fast");
    }

    #[test]
    fn errors_name_the_source_and_field() {
        let err = CoreMetadata::parse(b"Name: x\n", "x.metadata").unwrap_err();
        assert_eq!(err.to_string(), "x.metadata: no Version field");
        let err = CoreMetadata::parse(b"Name: x\nVersion: 1\nRequires-Dist: >>\n", "m")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("m: Requires-Dist \">>\""), "{err}");
    }

    #[test]
    fn reads_metadata_from_a_wheel() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("demo_pkg-1.2.0-py3-none-any.whl");
        let file = std::fs::File::create(&path).unwrap();
        let mut zip = zip::ZipWriter::new(file);
        let options = zip::write::SimpleFileOptions::default();
        zip.start_file("demo_pkg/__init__.py", options).unwrap();
        zip.start_file("demo_pkg-1.2.0.dist-info/METADATA", options)
            .unwrap();
        std::io::Write::write_all(&mut zip, SAMPLE.as_bytes()).unwrap();
        zip.finish().unwrap();
        let meta = CoreMetadata::from_wheel(&path).unwrap();
        assert_eq!(meta.version.to_string(), "1.2.0");
        let err = CoreMetadata::from_wheel(&dir.path().join("missing.whl")).unwrap_err();
        assert!(err.to_string().contains("missing.whl"), "{err}");
    }
}
