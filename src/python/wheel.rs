//! Opening a wheel: its checked archive, its `.dist-info` directory, `WHEEL` and `RECORD`.

use std::path::{Path, PathBuf};

use super::filename::{WheelFilename, WheelFilenameError};
use super::record::{parse_record, RecordEntry};
use crate::archive::extract::{CheckedZip, Limits, MemberKind, UnpackError};
use crate::fetch::name::normalize_name;

/// Largest metadata file read into memory (`WHEEL`, `RECORD`, `entry_points.txt`).
pub const MAX_METADATA: u64 = 64 << 20;

/// Why a wheel is not valid.
#[derive(Debug, thiserror::Error)]
pub enum WheelError {
    /// The file name is not a wheel's.
    #[error(transparent)]
    Filename(#[from] WheelFilenameError),
    /// The archive was refused.
    #[error(transparent)]
    Unpack(#[from] UnpackError),
    /// The wheel's layout or metadata is wrong.
    #[error("{wheel}: {reason}")]
    Invalid { wheel: PathBuf, reason: String },
}

/// A wheel whose archive has been checked and whose metadata has been read.
pub struct Wheel {
    /// Its file name, parsed.
    pub filename: WheelFilename,
    /// The checked archive.
    pub zip: CheckedZip,
    /// `{name}-{version}.dist-info`, as in the archive.
    pub dist_info: String,
    /// `{name}-{version}.data`.
    pub data_dir: String,
    /// `Root-Is-Purelib` from `WHEEL`.
    pub root_is_purelib: bool,
    /// The rows of `RECORD`.
    pub record: Vec<RecordEntry>,
}

impl Wheel {
    /// Opens and checks `path` (see [`crate::archive::extract`] for the archive checks).
    pub fn open(path: &Path, limits: &Limits) -> Result<Wheel, WheelError> {
        let invalid = |reason: String| WheelError::Invalid {
            wheel: path.to_path_buf(),
            reason,
        };
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| invalid("the path has no UTF-8 file name".into()))?;
        let filename = WheelFilename::parse(file_name)?;
        let mut zip = CheckedZip::open(path, limits)?;
        let wanted = filename.normalized_name();
        let dist_infos: Vec<String> = zip
            .members()
            .filter_map(|(name, _)| name.split('/').next())
            .filter(|top| top.ends_with(".dist-info"))
            .map(str::to_owned)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let dist_info = match dist_infos.as_slice() {
            [one] => one.clone(),
            [] => return Err(invalid("it has no .dist-info directory".into())),
            many => {
                return Err(invalid(format!(
                    "it has {} .dist-info directories ({}); a wheel has exactly one",
                    many.len(),
                    many.join(", ")
                )))
            }
        };
        let stem = dist_info.trim_end_matches(".dist-info");
        let (info_name, info_version) = stem.split_once('-').unwrap_or((stem, ""));
        if normalize_name(info_name) != wanted {
            return Err(invalid(format!(
                "its metadata directory {dist_info} does not match the project name {wanted:?} of the file name"
            )));
        }
        let data_dir = format!("{info_name}-{info_version}.data");
        let wheel_text = read_text(&mut zip, &format!("{dist_info}/WHEEL"), path)?;
        let root_is_purelib = parse_wheel_file(&wheel_text).map_err(invalid)?;
        let record_name = format!("{dist_info}/RECORD");
        let record_text = read_text(&mut zip, &record_name, path)?;
        let record =
            parse_record(&record_text).map_err(|e| invalid(format!("{record_name}: {e}")))?;
        Ok(Wheel {
            filename,
            zip,
            dist_info,
            data_dir,
            root_is_purelib,
            record,
        })
    }

    /// The file members, sorted.
    pub fn files(&self) -> Vec<(String, bool)> {
        self.zip
            .members()
            .filter_map(|(name, kind)| match kind {
                MemberKind::File { executable, .. } => Some((name.to_owned(), *executable)),
                _ => None,
            })
            .collect()
    }
}

pub(crate) fn read_text(
    zip: &mut CheckedZip,
    name: &str,
    wheel: &Path,
) -> Result<String, WheelError> {
    if !zip.contains(name) {
        return Err(WheelError::Invalid {
            wheel: wheel.to_path_buf(),
            reason: format!("it has no {name}"),
        });
    }
    let bytes = zip.read_member(name, MAX_METADATA)?;
    String::from_utf8(bytes).map_err(|_| WheelError::Invalid {
        wheel: wheel.to_path_buf(),
        reason: format!("{name} is not UTF-8"),
    })
}

/// Reads `WHEEL`: requires `Wheel-Version: 1.x` and returns `Root-Is-Purelib`.
fn parse_wheel_file(text: &str) -> Result<bool, String> {
    let mut version = None;
    let mut purelib = None;
    for line in text.lines() {
        if let Some((key, value)) = line.split_once(':') {
            match key.trim() {
                "Wheel-Version" => version = Some(value.trim().to_owned()),
                "Root-Is-Purelib" => purelib = Some(value.trim().eq_ignore_ascii_case("true")),
                _ => {}
            }
        }
    }
    let version = version.ok_or("WHEEL has no Wheel-Version")?;
    if version.split('.').next() != Some("1") {
        return Err(format!(
            "WHEEL says Wheel-Version {version}; pystore installs version 1.x wheels"
        ));
    }
    purelib.ok_or_else(|| "WHEEL has no Root-Is-Purelib".to_owned())
}
