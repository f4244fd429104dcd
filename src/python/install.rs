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
use crate::archive::extract::{create_dirs, create_file, CheckedZip, Limits, UnpackError};
use crate::archive::member_cache::KnownMember;
use crate::archive::reuse::MIN_REUSE_SIZE;
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
    /// The wheel's deflated members that were installed byte for byte, and what they hold:
    /// what a bundle ZIP may copy from the wheel without proving it again
    /// ([`crate::archive::member_cache`]).
    pub known_members: Vec<KnownMember>,
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
    let cx = Installer::new(&wheel, wheel_name, scheme, out, lenient);
    let files = wheel.files();
    let expected = cx.expected_rows(&wheel.record, &files)?;
    let mut installed = Vec::new();
    let mut known_members = Vec::new();
    for (member, executable) in &files {
        if cx.is_ours(member) {
            continue;
        }
        let row = expected.get(member.as_str());
        let (file, known) = cx.install_member(&mut wheel.zip, member, *executable, row)?;
        installed.push(file);
        known_members.extend(known);
    }
    cx.install_entry_points(&mut wheel.zip, &mut installed)?;
    let (dist_info, files) = cx.write_dist_info(installed, options.requested)?;
    Ok(Installed {
        name,
        version: wheel.filename.version.to_string(),
        dist_info,
        files,
        known_members,
    })
}

/// One file written into the output, as the new RECORD describes it.
struct InstalledFile {
    /// Relative to the output directory.
    path: String,
    /// `sha256=…`, as RECORD writes it.
    hash: String,
    size: u64,
}

impl InstalledFile {
    fn of_bytes(path: String, bytes: &[u8]) -> InstalledFile {
        InstalledFile {
            path,
            hash: sha256_field(bytes),
            size: bytes.len() as u64,
        }
    }
}

/// What each step of [`install_into`] knows of the wheel being installed and where it goes.
struct Installer<'a> {
    wheel_name: &'a str,
    scheme: &'a Scheme,
    out: &'a Path,
    /// The project is allowed a wrong RECORD: its problems are logged instead of refused.
    lenient: bool,
    /// The project name as the file name writes it (the `headers` directory is named so).
    project: String,
    /// `{name}-{version}.dist-info`, as in the archive.
    dist_info: String,
    /// `{name}-{version}.data/`.
    data_prefix: String,
    /// The archive's RECORD path (never verified against itself).
    record_path: String,
    /// Where the wheel's root goes: the scheme's purelib or platlib.
    root_dir: String,
}

impl<'a> Installer<'a> {
    fn new(
        wheel: &Wheel,
        wheel_name: &'a str,
        scheme: &'a Scheme,
        out: &'a Path,
        lenient: bool,
    ) -> Installer<'a> {
        let root_dir = if wheel.root_is_purelib {
            scheme.purelib.clone()
        } else {
            scheme.platlib.clone()
        };
        Installer {
            wheel_name,
            scheme,
            out,
            lenient,
            project: wheel.filename.name.clone(),
            dist_info: wheel.dist_info.clone(),
            data_prefix: format!("{}/", wheel.data_dir),
            record_path: format!("{}/RECORD", wheel.dist_info),
            root_dir,
        }
    }

    fn record_err(&self, path: &str, reason: String) -> InstallError {
        InstallError::Record {
            wheel: self.wheel_name.to_owned(),
            path: path.to_owned(),
            reason,
        }
    }

    fn layout_err(&self, path: &str, reason: String) -> InstallError {
        InstallError::Layout {
            wheel: self.wheel_name.to_owned(),
            path: path.to_owned(),
            reason,
        }
    }

    /// RECORD and its signatures, which RECORD lists without a hash.
    fn is_unsigned(&self, path: &str) -> bool {
        let dist_info = &self.dist_info;
        path == self.record_path
            || path == format!("{dist_info}/RECORD.jws")
            || path == format!("{dist_info}/RECORD.p7s")
    }

    /// The archive's files that are not copied: we write these ourselves.
    fn is_ours(&self, member: &str) -> bool {
        let dist_info = &self.dist_info;
        member == self.record_path
            || member == format!("{dist_info}/INSTALLER")
            || member == format!("{dist_info}/REQUESTED")
    }

    /// RECORD's rows by path, once each listed and each naming a file of the archive.
    fn expected_rows(
        &self,
        record: &[RecordEntry],
        files: &[(String, bool)],
    ) -> Result<BTreeMap<String, RecordEntry>, InstallError> {
        let mut expected: BTreeMap<String, RecordEntry> = BTreeMap::new();
        for row in record {
            if expected.insert(row.path.clone(), row.clone()).is_some() && !self.lenient {
                return Err(self.record_err(&row.path, "listed twice in RECORD".into()));
            }
        }
        let members: BTreeSet<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        for path in expected.keys() {
            if !members.contains(path.as_str()) && !self.is_unsigned(path) {
                if self.lenient {
                    let wheel_name = self.wheel_name;
                    tracing::warn!("{wheel_name}: RECORD lists {path}, which is not in the wheel");
                } else {
                    return Err(
                        self.record_err(path, "listed in RECORD but not in the wheel".into())
                    );
                }
            }
        }
        Ok(expected)
    }

    /// Where `member` goes (relative to the output), and whether it is a script.
    fn destination(&self, member: &str) -> Result<(String, bool), InstallError> {
        let Some(rest) = member.strip_prefix(&self.data_prefix) else {
            return Ok((join(&[&self.root_dir, member]), false));
        };
        let (key, sub) = rest.split_once('/').ok_or_else(|| {
            self.layout_err(member, "a file directly in the .data directory".into())
        })?;
        let scheme = self.scheme;
        let dir = match key {
            "purelib" => scheme.purelib.clone(),
            "platlib" => scheme.platlib.clone(),
            "scripts" => scheme.scripts.clone(),
            "headers" => join(&[&scheme.headers, &self.project]),
            "data" => scheme.data.clone(),
            other => {
                return Err(self.layout_err(
                    member,
                    format!("unknown .data directory {other:?} (expected purelib, platlib, scripts, headers or data)"),
                ))
            }
        };
        Ok((join(&[&dir, sub]), key == "scripts"))
    }

    /// The algorithm `member` is verified with while it is written (none: not verified).
    fn record_algorithm(
        &self,
        member: &str,
        row: Option<&RecordEntry>,
    ) -> Result<Option<HashAlgorithm>, InstallError> {
        Ok(match row {
            Some(row) if !row.hash.is_empty() => match HashAlgorithm::of_field(&row.hash) {
                Some((algorithm, _)) => Some(algorithm),
                None if self.lenient => None,
                None => {
                    return Err(self.record_err(
                        member,
                        format!("RECORD hash {:?} is not sha256, sha384 or sha512", row.hash),
                    ))
                }
            },
            _ if self.is_unsigned(member) => None,
            _ if self.lenient => {
                let wheel_name = self.wheel_name;
                tracing::warn!("{wheel_name}: {member} has no hash in RECORD");
                None
            }
            Some(_) => return Err(self.record_err(member, "RECORD gives it no hash".into())),
            None => return Err(self.record_err(member, "not listed in RECORD".into())),
        })
    }

    /// Compares what was written of `member` (its digest `actual` and `size`) with `row`.
    fn check_against_record(
        &self,
        member: &str,
        row: &RecordEntry,
        actual: &str,
        size: u64,
    ) -> Result<(), InstallError> {
        let declared = HashAlgorithm::of_field(&row.hash)
            .map(|(_, d)| d)
            .unwrap_or_default();
        let size_ok = row.size.map_or(true, |s| s == size);
        if actual == declared && size_ok {
            return Ok(());
        }
        let reason = if actual != declared {
            format!("its hash is {actual}, RECORD says {declared}")
        } else {
            format!(
                "its size is {size}, RECORD says {}",
                row.size.unwrap_or_default()
            )
        };
        if self.lenient {
            let wheel_name = self.wheel_name;
            tracing::warn!("{wheel_name}: {member}: {reason}");
            Ok(())
        } else {
            Err(self.record_err(member, reason))
        }
    }

    /// Copies `member` to its place, verifying it against its RECORD `row` while it is written;
    /// for a file written byte for byte from a deflated member, also returns what that member
    /// holds.
    fn install_member(
        &self,
        zip: &mut CheckedZip,
        member: &str,
        executable: bool,
        row: Option<&RecordEntry>,
    ) -> Result<(InstalledFile, Option<KnownMember>), InstallError> {
        let (dest_rel, is_script) = self.destination(member)?;
        let dest = self.out.join(&dest_rel);
        if let Some(parent) = dest.parent() {
            create_dirs(parent)?;
        }
        let algorithm = self.record_algorithm(member, row)?;
        // A RECORD that gives sha256 (nearly all do) is checked against the sha256 the new
        // RECORD lists anyway: computed once, not twice.
        let verify_with_sha256 = algorithm == Some(HashAlgorithm::Sha256);
        let mut sink = HashingSink {
            hasher: algorithm
                .filter(|_| !verify_with_sha256)
                .map(RecordHasher::new),
            sha256: RecordHasher::new(HashAlgorithm::Sha256),
            buffer: is_script.then(Vec::new),
            file: None,
            blake3: None,
        };
        if !is_script {
            sink.file = Some(create_file(&dest, executable)?);
            sink.blake3 = Some(blake3::Hasher::new());
        }
        let size = zip.copy_member(member, &mut sink)?;
        let HashingSink {
            hasher,
            sha256,
            buffer,
            file,
            blake3,
        } = sink;
        let sha256 = sha256.finish();
        let verified = match hasher {
            Some(hasher) => Some(hasher.finish()),
            None => verify_with_sha256.then(|| sha256.clone()),
        };
        if let (Some(row), Some(actual)) = (row, verified) {
            self.check_against_record(member, row, &actual, size)?;
        }
        if let Some(bytes) = buffer {
            // A script: `#!python` becomes a relocatable launcher, which must be executable;
            // other scripts keep the archive's mode bits, as pip does.
            let (bytes, rewritten) = rewrite_script_shebang(&bytes, self.scheme);
            write_new(&dest, &bytes, rewritten || executable)?;
            return Ok((InstalledFile::of_bytes(dest_rel, &bytes), None));
        }
        let digest = blake3.map(|h| *h.finalize().as_bytes());
        // The file's digest as this process wrote it: the store's hash of the entry (which
        // follows at once) then need not read it back.
        if let (Some(file), Some(digest)) = (&file, digest) {
            if let Some(state) = file
                .metadata()
                .ok()
                .as_ref()
                .and_then(crate::hash::FileState::of)
            {
                crate::hash::remember_digest(state, digest);
            }
        }
        // Closed without an fsync: the store makes the whole entry durable with one syncfs
        // before registering it, which is far cheaper than one fsync per file.
        drop(file);
        // `copy_member` checked the data against the declared CRC-32.
        let known = match (digest, zip.deflated_data(member)) {
            (Some(blake3), Some((start, len, crc32))) if size >= MIN_REUSE_SIZE => {
                Some(KnownMember {
                    start,
                    len,
                    size,
                    crc32,
                    blake3,
                })
            }
            _ => None,
        };
        let file = InstalledFile {
            path: dest_rel,
            hash: format!("sha256={sha256}"),
            size,
        };
        Ok((file, known))
    }

    /// Writes a launcher for each entry point of `entry_points.txt`, if the wheel has one.
    fn install_entry_points(
        &self,
        zip: &mut CheckedZip,
        installed: &mut Vec<InstalledFile>,
    ) -> Result<(), InstallError> {
        let entry_points_name = format!("{}/entry_points.txt", self.dist_info);
        if !zip.contains(&entry_points_name) {
            return Ok(());
        }
        let wheel_path = zip.path().to_path_buf();
        let text = read_text(zip, &entry_points_name, &wheel_path)?;
        let launcher_err = |source| InstallError::Launcher {
            wheel: self.wheel_name.to_owned(),
            source,
        };
        for entry in parse_entry_points(&text).map_err(launcher_err)? {
            for (file_name, bytes) in make_launcher(&entry, self.scheme).map_err(launcher_err)? {
                let dest_rel = join(&[&self.scheme.scripts, &file_name]);
                let dest = self.out.join(&dest_rel);
                if let Some(parent) = dest.parent() {
                    create_dirs(parent)?;
                }
                if dest.symlink_metadata().is_ok() {
                    return Err(self.layout_err(
                        &dest_rel,
                        format!(
                            "the entry point {:?} collides with a file of the wheel",
                            entry.name
                        ),
                    ));
                }
                write_new(&dest, &bytes, true)?;
                installed.push(InstalledFile::of_bytes(dest_rel, &bytes));
            }
        }
        Ok(())
    }

    /// Adds `INSTALLER`, `REQUESTED` (when `requested`) and the new RECORD to the installed
    /// `.dist-info`; returns that directory and every installed file, sorted (both relative to
    /// the output).
    fn write_dist_info(
        &self,
        mut installed: Vec<InstalledFile>,
        requested: bool,
    ) -> Result<(String, Vec<String>), InstallError> {
        let root_dir = &self.root_dir;
        let info_rel = join(&[root_dir, &self.dist_info]);
        let mut extra: Vec<(&str, &[u8])> = vec![("INSTALLER", b"pystore\n")];
        if requested {
            extra.push(("REQUESTED", b""));
        }
        for (file_name, bytes) in extra {
            let dest_rel = format!("{info_rel}/{file_name}");
            write_new(&self.out.join(&dest_rel), bytes, false)?;
            installed.push(InstalledFile::of_bytes(dest_rel, bytes));
        }
        let record_rel = format!("{info_rel}/RECORD");
        let mut rows: Vec<RecordEntry> = installed
            .iter()
            .map(|file| RecordEntry {
                path: relative(root_dir, &file.path),
                hash: file.hash.clone(),
                size: Some(file.size),
            })
            .collect();
        rows.push(RecordEntry {
            path: relative(root_dir, &record_rel),
            hash: String::new(),
            size: None,
        });
        write_new(
            &self.out.join(&record_rel),
            super::record::write_record(&rows).as_bytes(),
            false,
        )?;
        let mut files: Vec<String> = installed.into_iter().map(|file| file.path).collect();
        files.push(record_rel);
        files.sort();
        Ok((info_rel, files))
    }
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
    /// blake3 of what goes to `file`.
    blake3: Option<blake3::Hasher>,
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
        if let Some(hasher) = &mut self.blake3 {
            hasher.update(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
