//! Installing a wheel into a target's scheme inside a new output directory.
//!
//! Nothing runs: files are copied from the checked archive, every file's hash is verified
//! against `RECORD` while it is written, `.data/<key>/` parts go to their scheme directories,
//! `#!python` scripts and entry points get relocatable launchers, and the `.dist-info`
//! directory gets `INSTALLER` (`pystore`), `REQUESTED` (when asked) and a new `RECORD` of the
//! installed files (paths relative to the directory holding `.dist-info`, sorted). Output is
//! deterministic; on any error the output directory is removed.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use std::str::FromStr;

use pep440_rs::Version;

use super::filename::TagPriorities;
use super::launcher::{make_launcher, parse_entry_points, rewrite_script_shebang, LauncherError};
use super::markers::marker_environment;
use super::metadata::CoreMetadata;
use super::record::{sha256_field, HashAlgorithm, RecordEntry, RecordHasher};
use super::scheme::{join, relative, Scheme};
use super::target::Target;
use super::wheel::{read_text, Wheel, WheelError};
use crate::archive::extract::{create_dirs, create_file, Limits, UnpackError};
use crate::fetch::name::normalize_name;

/// Options of [`install_wheel`].
#[derive(Clone, Debug, Default)]
pub struct InstallOptions {
    /// Write `REQUESTED` (the wheel is a top-level requirement, not a dependency).
    pub requested: bool,
    /// Projects (PEP 503 normalised names) whose RECORD is known to be wrong: mismatching,
    /// missing or extra RECORD rows are logged instead of refused.
    pub allow_bad_record: BTreeSet<String>,
    /// Archive size limits.
    pub limits: Limits,
    /// What the lock says the wheel is: its own METADATA must agree before anything is
    /// installed (an index's PEP 658 file, which locking trusted, may describe another wheel).
    pub locked: Option<LockedAs>,
}

/// A wheel as its lock describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LockedAs {
    /// Normalised project name.
    pub name: String,
    /// Version, as locked.
    pub version: String,
    /// The dependencies the lock recorded for it in this target (normalised names), when the
    /// lock records dependency edges at all (see `recorded_dependencies` in the recipe layer).
    pub requires: Option<BTreeSet<String>>,
}

/// What was installed.
#[derive(Clone, Debug)]
pub struct Installed {
    /// Normalised project name.
    pub name: String,
    /// Version.
    pub version: String,
    /// `.dist-info` directory, relative to the output.
    pub dist_info: String,
    /// Every installed file, relative to the output, sorted.
    pub files: Vec<String>,
}

/// Why a wheel was not installed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The wheel is malformed.
    #[error(transparent)]
    Wheel(#[from] WheelError),
    /// The archive was refused.
    #[error(transparent)]
    Unpack(#[from] UnpackError),
    /// The wheel's tags do not fit the target.
    #[error("{wheel} is not compatible with {target}: the wheel is tagged {tags}; the target accepts tags like {examples}")]
    Incompatible {
        wheel: String,
        tags: String,
        target: String,
        examples: String,
    },
    /// A file disagrees with RECORD, or RECORD disagrees with the archive.
    #[error("{wheel}: {path}: {reason}; the wheel is damaged or was altered (if this project is known to ship a wrong RECORD, allow it explicitly)")]
    Record {
        wheel: String,
        path: String,
        reason: String,
    },
    /// The wheel's own METADATA describes another distribution than the lock does.
    #[error("{wheel}: the lock says {locked}, but the wheel's own {dist_info}/METADATA says {found}; the index's metadata does not describe this wheel (it was altered or is wrong): lock again from a trusted index, or remove the package")]
    LockMismatch {
        wheel: String,
        dist_info: String,
        locked: String,
        found: String,
    },
    /// A file of the wheel has no place in the scheme.
    #[error("{wheel}: {path}: {reason}")]
    Layout {
        wheel: String,
        path: String,
        reason: String,
    },
    /// Scripts could not be made.
    #[error("{wheel}: {source}")]
    Launcher {
        wheel: String,
        source: LauncherError,
    },
    /// A file-system operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Installs `wheel_path` for `target` into `out` (created; must not exist), laid out by `scheme`.
pub fn install_wheel(
    wheel_path: &Path,
    target: &Target,
    scheme: &Scheme,
    out: &Path,
    options: &InstallOptions,
) -> Result<Installed, InstallError> {
    let wheel_name = wheel_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| wheel_path.display().to_string());
    let filename = super::filename::WheelFilename::parse(&wheel_name).map_err(WheelError::from)?;
    if TagPriorities::new(target).rank(&filename).is_none() {
        let examples = super::tags::target_tags(target)
            .iter()
            .take(3)
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(InstallError::Incompatible {
            wheel: wheel_name,
            tags: filename.tag_string(),
            target: target.to_string(),
            examples: format!("{examples}, …"),
        });
    }
    let mut wheel = Wheel::open(wheel_path, &options.limits)?;
    if let Some(locked) = &options.locked {
        check_locked(&mut wheel, wheel_path, &wheel_name, target, locked)?;
    }
    fs::create_dir(out).map_err(|source| InstallError::Io {
        what: "create",
        path: out.to_path_buf(),
        source,
    })?;
    let result = install_into(wheel, &wheel_name, scheme, out, options);
    if result.is_err() {
        let _ = fs::remove_dir_all(out);
    }
    result
}

/// Compares the wheel's own METADATA (name, version, `Requires-Dist`) and its `.dist-info`
/// directory's version with what the lock says.
fn check_locked(
    wheel: &mut Wheel,
    wheel_path: &Path,
    wheel_name: &str,
    target: &Target,
    locked: &LockedAs,
) -> Result<(), InstallError> {
    let dist_info = wheel.dist_info.clone();
    let metadata_name = format!("{dist_info}/METADATA");
    let text = read_text(&mut wheel.zip, &metadata_name, wheel_path)?;
    let meta = CoreMetadata::parse(text.as_bytes(), &format!("{wheel_name}: {metadata_name}"))
        .map_err(|e| WheelError::Invalid {
            wheel: wheel_path.to_path_buf(),
            reason: e.to_string(),
        })?;
    let mismatch = |locked: String, found: String| InstallError::LockMismatch {
        wheel: wheel_name.to_owned(),
        dist_info: dist_info.clone(),
        locked,
        found,
    };
    let locked_version = Version::from_str(&locked.version).ok();
    let dir_version = dist_info
        .trim_end_matches(".dist-info")
        .split_once('-')
        .and_then(|(_, v)| Version::from_str(v).ok());
    let found_name = normalize_name(&meta.name);
    if found_name != locked.name
        || locked_version.as_ref() != Some(&meta.version)
        || dir_version.as_ref() != Some(&meta.version)
    {
        return Err(mismatch(
            format!("{} {}", locked.name, locked.version),
            format!(
                "{} {} (in a directory named {dist_info})",
                meta.name, meta.version
            ),
        ));
    }
    let Some(recorded) = &locked.requires else {
        return Ok(());
    };
    let env = marker_environment(target).map_err(|e| WheelError::Invalid {
        wheel: wheel_path.to_path_buf(),
        reason: e.to_string(),
    })?;
    // Every dependency the wheel declares for this target (no extras) must be one the lock
    // recorded; every recorded one must be declared (under any marker or extra).
    let mut declared_anywhere = BTreeSet::new();
    for requirement in &meta.requires_dist {
        let dep = normalize_name(requirement.name.as_ref());
        if requirement.marker.evaluate(&env, &[]) && !recorded.contains(&dep) {
            return Err(mismatch(
                format!(
                    "{} {} depends on {}",
                    locked.name,
                    locked.version,
                    list_or_nothing(recorded)
                ),
                format!("it requires {requirement}"),
            ));
        }
        declared_anywhere.insert(dep);
    }
    if let Some(missing) = recorded.iter().find(|d| !declared_anywhere.contains(*d)) {
        return Err(mismatch(
            format!("{} {} depends on {missing}", locked.name, locked.version),
            format!("it requires {}", list_or_nothing(&declared_anywhere)),
        ));
    }
    Ok(())
}

fn list_or_nothing(names: &BTreeSet<String>) -> String {
    if names.is_empty() {
        "nothing".to_owned()
    } else {
        names.iter().cloned().collect::<Vec<_>>().join(", ")
    }
}

fn install_into(
    mut wheel: Wheel,
    wheel_name: &str,
    scheme: &Scheme,
    out: &Path,
    options: &InstallOptions,
) -> Result<Installed, InstallError> {
    let name = wheel.filename.normalized_name();
    let lenient = options.allow_bad_record.contains(&name);
    let record_err = |path: &str, reason: String| InstallError::Record {
        wheel: wheel_name.to_owned(),
        path: path.to_owned(),
        reason,
    };
    let layout_err = |path: &str, reason: String| InstallError::Layout {
        wheel: wheel_name.to_owned(),
        path: path.to_owned(),
        reason,
    };
    let dist_info = wheel.dist_info.clone();
    let record_path = format!("{dist_info}/RECORD");
    let unsigned = |path: &str| {
        path == record_path
            || path == format!("{dist_info}/RECORD.jws")
            || path == format!("{dist_info}/RECORD.p7s")
    };
    // We write these ourselves.
    let ours = [
        record_path.clone(),
        format!("{dist_info}/INSTALLER"),
        format!("{dist_info}/REQUESTED"),
    ];

    let mut expected: BTreeMap<String, RecordEntry> = BTreeMap::new();
    for row in &wheel.record {
        if expected.insert(row.path.clone(), row.clone()).is_some() && !lenient {
            return Err(record_err(&row.path, "listed twice in RECORD".into()));
        }
    }
    let files = wheel.files();
    let members: BTreeSet<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    for path in expected.keys() {
        if !members.contains(path.as_str()) && !unsigned(path) {
            if lenient {
                tracing::warn!("{wheel_name}: RECORD lists {path}, which is not in the wheel");
            } else {
                return Err(record_err(
                    path,
                    "listed in RECORD but not in the wheel".into(),
                ));
            }
        }
    }

    let root_dir = if wheel.root_is_purelib {
        scheme.purelib.clone()
    } else {
        scheme.platlib.clone()
    };
    let data_prefix = format!("{}/", wheel.data_dir);
    let mut installed: Vec<(String, String, u64)> = Vec::new(); // (path from out, hash, size)
    for (member, executable) in &files {
        if ours.contains(member) {
            continue;
        }
        // Where it goes.
        let (dest_rel, is_script) = if let Some(rest) = member.strip_prefix(&data_prefix) {
            let (key, sub) = rest.split_once('/').ok_or_else(|| {
                layout_err(member, "a file directly in the .data directory".into())
            })?;
            let dir = match key {
                "purelib" => scheme.purelib.clone(),
                "platlib" => scheme.platlib.clone(),
                "scripts" => scheme.scripts.clone(),
                "headers" => join(&[&scheme.headers, &wheel.filename.name]),
                "data" => scheme.data.clone(),
                other => {
                    return Err(layout_err(
                        member,
                        format!("unknown .data directory {other:?} (expected purelib, platlib, scripts, headers or data)"),
                    ))
                }
            };
            (join(&[&dir, sub]), key == "scripts")
        } else {
            (join(&[&root_dir, member]), false)
        };
        let dest = out.join(&dest_rel);
        if let Some(parent) = dest.parent() {
            create_dirs(parent)?;
        }
        // Verify against RECORD while writing.
        let row = expected.get(member.as_str());
        let algorithm = match row {
            Some(row) if !row.hash.is_empty() => match HashAlgorithm::of_field(&row.hash) {
                Some((algorithm, _)) => Some(algorithm),
                None if lenient => None,
                None => {
                    return Err(record_err(
                        member,
                        format!("RECORD hash {:?} is not sha256, sha384 or sha512", row.hash),
                    ))
                }
            },
            _ if unsigned(member) => None,
            _ if lenient => {
                tracing::warn!("{wheel_name}: {member} has no hash in RECORD");
                None
            }
            Some(_) => return Err(record_err(member, "RECORD gives it no hash".into())),
            None => return Err(record_err(member, "not listed in RECORD".into())),
        };
        let mut sink = HashingSink {
            hasher: algorithm.map(RecordHasher::new),
            sha256: RecordHasher::new(HashAlgorithm::Sha256),
            buffer: is_script.then(Vec::new),
            file: None,
        };
        if !is_script {
            sink.file = Some(create_file(&dest, *executable)?);
        }
        let size = wheel.zip.copy_member(member, &mut sink)?;
        if let (Some(row), Some(hasher)) = (row, sink.hasher.take()) {
            let actual = hasher.finish();
            let declared = HashAlgorithm::of_field(&row.hash)
                .map(|(_, d)| d)
                .unwrap_or_default();
            let size_ok = row.size.map_or(true, |s| s == size);
            if actual != declared || !size_ok {
                let reason = if actual != declared {
                    format!("its hash is {actual}, RECORD says {declared}")
                } else {
                    format!(
                        "its size is {size}, RECORD says {}",
                        row.size.unwrap_or_default()
                    )
                };
                if lenient {
                    tracing::warn!("{wheel_name}: {member}: {reason}");
                } else {
                    return Err(record_err(member, reason));
                }
            }
        }
        if let Some(bytes) = sink.buffer.take() {
            // A script: `#!python` becomes a relocatable launcher, which must be executable;
            // other scripts keep the archive's mode bits, as pip does.
            let (bytes, rewritten) = rewrite_script_shebang(&bytes, scheme);
            write_new(&dest, &bytes, rewritten || *executable)?;
            installed.push((dest_rel, sha256_field(&bytes), bytes.len() as u64));
        } else {
            // Closed without an fsync: the store makes the whole entry durable with one syncfs
            // before registering it, which is far cheaper than one fsync per file.
            drop(sink.file.take());
            installed.push((dest_rel, format!("sha256={}", sink.sha256.finish()), size));
        }
    }

    // Entry points.
    let entry_points_name = format!("{dist_info}/entry_points.txt");
    if wheel.zip.contains(&entry_points_name) {
        let wheel_path = wheel.zip.path().to_path_buf();
        let text = read_text(&mut wheel.zip, &entry_points_name, &wheel_path)?;
        let launcher_err = |source| InstallError::Launcher {
            wheel: wheel_name.to_owned(),
            source,
        };
        for entry in parse_entry_points(&text).map_err(launcher_err)? {
            for (file_name, bytes) in make_launcher(&entry, scheme).map_err(launcher_err)? {
                let dest_rel = join(&[&scheme.scripts, &file_name]);
                let dest = out.join(&dest_rel);
                if let Some(parent) = dest.parent() {
                    create_dirs(parent)?;
                }
                if dest.symlink_metadata().is_ok() {
                    return Err(layout_err(
                        &dest_rel,
                        format!(
                            "the entry point {:?} collides with a file of the wheel",
                            entry.name
                        ),
                    ));
                }
                write_new(&dest, &bytes, true)?;
                installed.push((dest_rel, sha256_field(&bytes), bytes.len() as u64));
            }
        }
    }

    // dist-info additions and the new RECORD.
    let info_rel = join(&[&root_dir, &dist_info]);
    let mut extra: Vec<(&str, &[u8])> = vec![("INSTALLER", b"pystore\n")];
    if options.requested {
        extra.push(("REQUESTED", b""));
    }
    for (file_name, bytes) in extra {
        let dest_rel = format!("{info_rel}/{file_name}");
        write_new(&out.join(&dest_rel), bytes, false)?;
        installed.push((dest_rel, sha256_field(bytes), bytes.len() as u64));
    }
    let record_rel = format!("{info_rel}/RECORD");
    let mut rows: Vec<RecordEntry> = installed
        .iter()
        .map(|(path, hash, size)| RecordEntry {
            path: relative(&root_dir, path),
            hash: hash.clone(),
            size: Some(*size),
        })
        .collect();
    rows.push(RecordEntry {
        path: relative(&root_dir, &record_rel),
        hash: String::new(),
        size: None,
    });
    write_new(
        &out.join(&record_rel),
        super::record::write_record(&rows).as_bytes(),
        false,
    )?;
    let mut files: Vec<String> = installed.into_iter().map(|(p, _, _)| p).collect();
    files.push(record_rel);
    files.sort();
    Ok(Installed {
        name,
        version: wheel.filename.version.to_string(),
        dist_info: info_rel,
        files,
    })
}

fn write_new(path: &Path, bytes: &[u8], executable: bool) -> Result<(), InstallError> {
    let mut file = create_file(path, executable)?;
    file.write_all(bytes).map_err(|source| InstallError::Io {
        what: "write",
        path: path.to_path_buf(),
        source,
    })
}

/// Writes to a file (or a buffer, for scripts) while hashing.
struct HashingSink {
    hasher: Option<RecordHasher>,
    sha256: RecordHasher,
    buffer: Option<Vec<u8>>,
    file: Option<fs::File>,
}

impl Write for HashingSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(hasher) = &mut self.hasher {
            hasher.update(buf);
        }
        self.sha256.update(buf);
        if let Some(buffer) = &mut self.buffer {
            buffer.extend_from_slice(buf);
        }
        if let Some(file) = &mut self.file {
            file.write_all(buf)?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
