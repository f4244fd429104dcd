//! `verify`: re-hash entries against their recorded manifests and report every damaged file.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rayon::prelude::*;
use serde::Serialize;

use super::canonicalise::remove_tree;
use super::layout::entry_dir_name;
use super::{io_err, EntryInfo, IntactEntries, Result, Store, StoreError};
use crate::hash::to_hex;
use crate::hash::tree::{Node, NodeKind, Tree};
use crate::hash::FileState;

/// One thing wrong with one entry.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Problem {
    /// Path inside the entry (`.` for the entry itself).
    pub file: String,
    /// A short code: `missing-entry`, `manifest`, `unreadable`, `missing`, `unexpected`, `type`,
    /// `size`, `content`, `executable`, `target`, `mode`.
    pub problem: &'static str,
    /// What was expected and what was found.
    pub detail: String,
}

/// The problems of one entry.
#[derive(Clone, Debug)]
pub struct EntryReport {
    /// The entry checked.
    pub entry: EntryInfo,
    /// Empty when the entry is intact.
    pub problems: Vec<Problem>,
}

/// The result of verifying a set of entries.
#[derive(Clone, Debug, Default)]
pub struct VerifyReport {
    /// How many entries were checked.
    pub checked: usize,
    /// Bytes of file contents re-hashed.
    pub bytes: u64,
    /// Entries with at least one problem, ordered by path.
    pub damaged: Vec<EntryReport>,
    /// Directories under entries/ with no database row (left by an interrupted build or gc;
    /// not damage: they are not valid entries, and gc removes them).
    pub unregistered: Vec<PathBuf>,
}

impl Store {
    /// Verifies `entries` (all valid entries when `None`), in parallel. `on_entry` is called as
    /// each entry is finished.
    pub fn verify(
        &self,
        entries: Option<Vec<EntryInfo>>,
        on_entry: &(dyn Fn(&EntryInfo) + Sync),
    ) -> Result<VerifyReport> {
        let everything = entries.is_none();
        let entries = match entries {
            Some(entries) => entries,
            None => self.entries()?,
        };
        let manifests: Vec<Tree> = entries
            .iter()
            .map(|e| self.manifest(e))
            .collect::<Result<_>>()?;
        let mut reports: Vec<EntryReport> = entries
            .par_iter()
            .zip(manifests.par_iter())
            .map(|(entry, manifest)| {
                let problems = verify_entry(entry, manifest);
                on_entry(entry);
                EntryReport {
                    entry: entry.clone(),
                    problems,
                }
            })
            .collect();
        let bytes = entries.iter().map(|e| e.size).sum();
        reports.retain(|report| !report.problems.is_empty());
        reports.sort_by(|a, b| a.entry.path.cmp(&b.entry.path));
        let unregistered = if everything {
            self.unregistered_dirs()?
        } else {
            Vec::new()
        };
        Ok(VerifyReport {
            checked: entries.len(),
            bytes,
            damaged: reports,
            unregistered,
        })
    }

    /// Checks that `entry`'s files are exactly what its manifest records (re-hashing every file
    /// with blake3), before anything reads it as a build input, copies it out or pushes it. A
    /// damaged entry, or one whose directory is gone, is a [`StoreError::Damaged`] naming it and
    /// `pystore verify --repair`. Each entry is checked once per process.
    pub fn check_intact(&self, entry: &EntryInfo) -> Result<()> {
        self.check_intact_as(entry, false)
    }

    /// [`Store::check_intact`] for an entry a build is about to read or hard-link from: when its
    /// stamp spares the re-hash, this process also learns its files' digests from the manifest,
    /// so that the links a build makes of them (which move their change times) keep the digests
    /// known and [`Store::stamp_checked`] can stamp the entry again without reading a byte.
    pub fn check_input_intact(&self, entry: &EntryInfo) -> Result<()> {
        self.check_intact_as(entry, true)
    }

    fn check_intact_as(&self, entry: &EntryInfo, learn_digests: bool) -> Result<()> {
        if self.intact_lock().contains_key(&entry.id) {
            return Ok(());
        }
        // Unchanged since an earlier process hashed it (same files, same inodes, same change
        // times): intact, without reading a byte (see `stat_records`).
        let stamp_path = self.stamp_path(entry);
        let records = stat_records(&entry.path).ok();
        let before = records.as_deref().map(stamp_of);
        if let (Some((stamp, _)), Ok(recorded)) = (&before, fs::read(&stamp_path)) {
            if recorded == stamp.as_bytes() {
                if let (true, Some(records)) = (learn_digests, &records) {
                    learn_known_digests(records, &self.manifest(entry)?);
                }
                self.intact_lock().insert(entry.id.clone(), entry.clone());
                return Ok(());
            }
        }
        let manifest = self.manifest(entry)?;
        // What is read must be what was recorded: contents, types, executable bits, link
        // targets, presence. Write bits someone added (`verify` reports them) change no byte.
        let problems: Vec<Problem> = verify_entry(entry, &manifest)
            .into_iter()
            .filter(|p| p.problem != "mode")
            .collect();
        if let Some(first) = problems.first() {
            let more = match problems.len() {
                1 => String::new(),
                n => format!(" and {} more", n - 1),
            };
            let problem = if first.problem == "missing-entry" {
                "its directory is missing".to_owned()
            } else {
                format!("{}: {}: {}{more}", first.file, first.problem, first.detail)
            };
            return Err(StoreError::Damaged {
                path: entry.path.clone(),
                problem,
            });
        }
        self.intact_lock().insert(entry.id.clone(), entry.clone());
        // Remember the stamp, unless a file changed while it was hashed or changed so recently
        // that a change in the same clock tick could go unseen (git's "racy" files). A change
        // after the stamp was taken gets a later change time unless the file system's
        // timestamps are coarser than the time since the newest change: [`STAMP_SETTLE`]
        // covers the coarsest Linux file systems keep (whole seconds, as ext4 with small inodes).
        if let Some((stamp, newest)) = before {
            let unchanged =
                stat_records(&entry.path).is_ok_and(|after| stamp_of(&after).0 == stamp);
            if settled(newest) && unchanged {
                let _ = write_stamp(&stamp_path, stamp.as_bytes());
            }
        }
        Ok(())
    }

    /// Stamps again every entry this process found intact or registered whose files changed
    /// state since (a hard link into a new bundle moves the shared inode's change time, which
    /// would make the next process re-hash every input of every bundle it builds), when this
    /// process still knows each file's digest in its present state (`hash::known_digest`) and
    /// that state has settled. Nothing is read but `lstat`s and manifests; what cannot be
    /// proved intact that way is left for the next check to re-hash. Returns how many entries
    /// were stamped.
    pub fn stamp_checked(&self) -> usize {
        if self.read_only {
            return 0;
        }
        let entries: Vec<EntryInfo> = self.intact_lock().values().cloned().collect();
        entries
            .par_iter()
            .filter(|entry| self.stamp_if_known(entry))
            .count()
    }

    /// [`Store::stamp_checked`] for one entry: true when a new stamp was written.
    fn stamp_if_known(&self, entry: &EntryInfo) -> bool {
        let Ok(records) = stat_records(&entry.path) else {
            return false;
        };
        let (stamp, newest) = stamp_of(&records);
        let stamp_path = self.stamp_path(entry);
        if !settled(newest) || fs::read(&stamp_path).is_ok_and(|r| r == stamp.as_bytes()) {
            return false;
        }
        let known = self.manifest(entry).is_ok_and(|manifest| {
            manifest.content_hash() == entry.content_hash
                && known_intact(&records, &manifest, &entry.path)
        });
        known && write_stamp(&stamp_path, stamp.as_bytes()).is_ok()
    }

    /// Where `entry`'s intact stamp is kept.
    fn stamp_path(&self, entry: &EntryInfo) -> PathBuf {
        self.layout
            .cache_dir()
            .join("intact")
            .join(entry.id.to_string())
    }

    /// [`Store::check_intact`] for several entries, in parallel; the first damaged one (in path
    /// order) is the error.
    pub fn check_all_intact(&self, entries: &[EntryInfo]) -> Result<()> {
        let mut failures: Vec<StoreError> = entries
            .par_iter()
            .filter_map(|entry| self.check_intact(entry).err())
            .collect();
        failures.sort_by_key(|err| match err {
            StoreError::Damaged { path, .. } => Some(path.clone()),
            _ => None,
        });
        // Several at once (one damaged file hard-linked into several entries): name them all.
        match failures.len() {
            0 => Ok(()),
            1 => Err(failures.remove(0)),
            _ => Err(StoreError::DamagedSeveral(failures)),
        }
    }

    pub(super) fn intact_lock(&self) -> std::sync::MutexGuard<'_, IntactEntries> {
        // The map only ever grows by whole entries: a poisoned lock still holds a valid map.
        self.intact
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `verify --repair`: verifies `entries` (all when `None`) while no other process has the
    /// store open, then invalidates every damaged entry (a missing directory included) and,
    /// transitively, every entry that refers to one (was built from it): their rows are deleted
    /// in one transaction and their directories removed, so the next `realise` rebuilds or
    /// refetches them. Gc roots pointing at them stay, dangling, until realise points them again.
    pub fn repair(
        &mut self,
        entries: Option<Vec<EntryInfo>>,
        on_entry: &(dyn Fn(&EntryInfo) + Sync),
    ) -> Result<(VerifyReport, Vec<PathBuf>)> {
        let result = self.with_exclusive_lock(|store| {
            let report = store.verify(entries, on_entry)?;
            let invalidated = store.invalidate(&report)?;
            Ok((report, invalidated))
        });
        self.intact_lock().clear();
        result
    }

    /// Deletes the damaged entries of `report` and everything referring to them; their paths,
    /// sorted.
    fn invalidate(&self, report: &VerifyReport) -> Result<Vec<PathBuf>> {
        if report.damaged.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self.db().all_entries()?;
        let mut referrers: std::collections::HashMap<i64, Vec<i64>> = Default::default();
        for (referrer, reference) in self.db().all_references()? {
            referrers.entry(reference).or_default().push(referrer);
        }
        let mut doomed: HashSet<i64> = HashSet::new();
        let mut stack: Vec<i64> = report.damaged.iter().map(|r| r.entry.rowid).collect();
        while let Some(rowid) = stack.pop() {
            if doomed.insert(rowid) {
                stack.extend(referrers.get(&rowid).into_iter().flatten());
            }
        }
        let doomed_rows: Vec<_> = rows
            .into_iter()
            .filter(|row| doomed.contains(&row.rowid))
            .collect();
        // Rows first: from the commit on these entries are not valid, whatever happens next.
        self.db()
            .delete(&doomed_rows.iter().map(|row| row.rowid).collect::<Vec<_>>())?;
        let mut paths: Vec<PathBuf> = doomed_rows
            .iter()
            .map(|row| self.layout().entry_path(&row.id, &row.name))
            .collect();
        paths.sort();
        paths
            .par_iter()
            .try_for_each(|path| remove_tree(path).map_err(io_err("remove", path)))?;
        // No other process has the store open, so no one waits on these locks.
        for row in &doomed_rows {
            let _ = fs::remove_file(self.layout().lock_path(&row.id));
        }
        Ok(paths)
    }

    /// Directories under entries/ that are not valid entries.
    pub(crate) fn unregistered_dirs(&self) -> Result<Vec<PathBuf>> {
        let registered: HashSet<String> = self
            .db()
            .all_entries()?
            .into_iter()
            .map(|row| entry_dir_name(&row.id, &row.name))
            .collect();
        self.unregistered_dirs_given(&registered)
    }

    /// Directories under entries/ whose names are not in `registered`.
    pub(crate) fn unregistered_dirs_given(
        &self,
        registered: &HashSet<String>,
    ) -> Result<Vec<PathBuf>> {
        let dir = self.layout().entries_dir();
        let mut out = Vec::new();
        for child in fs::read_dir(&dir).map_err(io_err("list", &dir))? {
            let child = child.map_err(io_err("list", &dir))?;
            let known = child
                .file_name()
                .to_str()
                .is_some_and(|name| registered.contains(name));
            if !known {
                out.push(child.path());
            }
        }
        out.sort();
        Ok(out)
    }
}

fn display_path(path: &str) -> String {
    if path.is_empty() {
        ".".to_owned()
    } else {
        path.to_owned()
    }
}

fn problem(file: &str, problem: &'static str, detail: String) -> Problem {
    Problem {
        file: display_path(file),
        problem,
        detail,
    }
}

fn verify_entry(entry: &EntryInfo, manifest: &Tree) -> Vec<Problem> {
    let mut problems = Vec::new();
    let recorded = manifest.content_hash();
    if recorded != entry.content_hash {
        problems.push(problem(
            "",
            "manifest",
            format!(
                "the database's manifest hashes to {}, but the entry's content hash is {}",
                to_hex(&recorded),
                to_hex(&entry.content_hash)
            ),
        ));
    }
    if fs::symlink_metadata(&entry.path).is_err() {
        problems.push(problem(
            "",
            "missing-entry",
            format!("{} does not exist", entry.path.display()),
        ));
        return problems;
    }
    let disk = match Tree::read(&entry.path) {
        Ok(tree) => tree,
        Err(err) => {
            problems.push(problem("", "unreadable", err.to_string()));
            return problems;
        }
    };
    compare(&manifest.nodes, &disk.nodes, &mut problems);
    check_modes(entry, &disk, &mut problems);
    problems
}

/// Merge-joins two sorted node lists.
fn compare(expected: &[Node], found: &[Node], problems: &mut Vec<Problem>) {
    let (mut i, mut j) = (0, 0);
    while i < expected.len() || j < found.len() {
        let order = match (expected.get(i), found.get(j)) {
            (Some(e), Some(f)) => e.path.as_bytes().cmp(f.path.as_bytes()),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match order {
            std::cmp::Ordering::Less => {
                problems.push(problem(
                    &expected[i].path,
                    "missing",
                    "recorded but not on disk".into(),
                ));
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                problems.push(problem(
                    &found[j].path,
                    "unexpected",
                    "on disk but not recorded".into(),
                ));
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                compare_node(&expected[i], &found[j], problems);
                i += 1;
                j += 1;
            }
        }
    }
}

fn compare_node(expected: &Node, found: &Node, problems: &mut Vec<Problem>) {
    let path = &expected.path;
    match (&expected.kind, &found.kind) {
        (NodeKind::Directory, NodeKind::Directory) => {}
        (
            NodeKind::File {
                executable: ex,
                size: es,
                blake3: eh,
            },
            NodeKind::File {
                executable: fx,
                size: fs,
                blake3: fh,
            },
        ) => {
            if es != fs {
                problems.push(problem(
                    path,
                    "size",
                    format!("expected {es} bytes, found {fs}"),
                ));
            } else if eh != fh {
                problems.push(problem(
                    path,
                    "content",
                    format!("expected blake3 {}, found {}", to_hex(eh), to_hex(fh)),
                ));
            }
            if ex != fx {
                problems.push(problem(
                    path,
                    "executable",
                    format!("expected executable={ex}, found {fx}"),
                ));
            }
        }
        (NodeKind::Symlink { target: et }, NodeKind::Symlink { target: ft }) => {
            if et != ft {
                problems.push(problem(
                    path,
                    "target",
                    format!("expected a link to {et:?}, found {ft:?}"),
                ));
            }
        }
        (e, f) => problems.push(problem(
            path,
            "type",
            format!("expected {}, found {}", kind_word(e), kind_word(f)),
        )),
    }
}

fn kind_word(kind: &NodeKind) -> &'static str {
    match kind {
        NodeKind::Directory => "a directory",
        NodeKind::File { .. } => "a file",
        NodeKind::Symlink { .. } => "a symlink",
    }
}

#[cfg(unix)]
fn check_modes(entry: &EntryInfo, disk: &Tree, problems: &mut Vec<Problem>) {
    use super::canonicalise::{EXEC_MODE, FILE_MODE};
    use std::os::unix::fs::PermissionsExt;
    for node in &disk.nodes {
        let expected = match node.kind {
            NodeKind::Symlink { .. } => continue,
            NodeKind::Directory
            | NodeKind::File {
                executable: true, ..
            } => EXEC_MODE,
            NodeKind::File {
                executable: false, ..
            } => FILE_MODE,
        };
        let path = if node.path.is_empty() {
            entry.path.clone()
        } else {
            entry.path.join(&node.path)
        };
        if let Ok(meta) = fs::symlink_metadata(&path) {
            let mode = meta.permissions().mode() & 0o7777;
            if mode != expected {
                problems.push(problem(
                    &node.path,
                    "mode",
                    format!("expected mode {expected:o}, found {mode:o}"),
                ));
            }
        }
    }
}

#[cfg(not(unix))]
fn check_modes(_entry: &EntryInfo, _disk: &Tree, _problems: &mut Vec<Problem>) {}

/// How long after the newest change of an entry's files its intact stamp may be recorded: the
/// coarsest timestamp granularity of the file systems a store may be on (see `check_intact`).
const STAMP_SETTLE: Duration = Duration::from_secs(1);

/// What one `lstat` says that an intact stamp hashes and the digest memo keys on: a third of
/// the size of an `fs::Metadata`, which matters when an entry of 13,000 files is stat'ed,
/// sorted and hashed on every no-op realise.
#[derive(Clone, Copy, Debug)]
struct Stat {
    mode: u32,
    size: u64,
    dev: u64,
    ino: u64,
    modified: (i64, i64),
    changed: (i64, i64),
}

impl Stat {
    #[cfg(unix)]
    fn of(meta: &fs::Metadata) -> Stat {
        use std::os::unix::fs::MetadataExt;
        Stat {
            mode: meta.mode(),
            size: meta.size(),
            dev: meta.dev(),
            ino: meta.ino(),
            modified: (meta.mtime(), meta.mtime_nsec()),
            changed: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    fn file_type(&self) -> u32 {
        self.mode & S_IFMT
    }

    fn is_dir(&self) -> bool {
        self.file_type() == S_IFDIR
    }

    fn is_file(&self) -> bool {
        self.file_type() == S_IFREG
    }

    fn is_symlink(&self) -> bool {
        self.file_type() == S_IFLNK
    }

    /// The owner's execute bit, as `hash::tree::is_executable` reads it.
    fn is_executable(&self) -> bool {
        self.mode & 0o100 != 0
    }

    /// The state the digest memo knows files by.
    fn file_state(&self) -> FileState {
        FileState::new(self.dev, self.ino, self.size, self.modified, self.changed)
    }
}

// The file type bits of `st_mode` (POSIX values, the same on every Unix Rust supports).
const S_IFMT: u32 = 0o170000;
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;

/// What `lstat` says of every path of an entry, sorted by path: `""` for the entry itself,
/// `/a/b` for what is inside it.
///
/// The kernel sets a file's change time on every write, rename, chmod or link, and no system
/// call sets it back, so an unchanged stamp of these records ([`stamp_of`]) means no file was
/// touched since the stamp was taken (what git's index relies on). An entry whose stamp matches
/// the one recorded after its last full check is intact without re-hashing: a no-op realise
/// then costs one `lstat` per file.
#[cfg(unix)]
fn stat_records(path: &Path) -> std::io::Result<Vec<(String, Stat)>> {
    let meta = fs::symlink_metadata(path)?;
    let mut records = vec![(String::new(), Stat::of(&meta))];
    if meta.is_dir() {
        records.extend(stat_tree(path, "")?);
    }
    records.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(records)
}

/// Without change times there is no stamp: every check hashes.
#[cfg(not(unix))]
fn stat_records(_path: &Path) -> std::io::Result<Vec<(String, Stat)>> {
    Err(std::io::Error::other("no change times on this platform"))
}

/// The stamp of `records` (each path's type, mode, size, device, inode, modification and
/// change times), and the newest change time among them (since the epoch).
fn stamp_of(records: &[(String, Stat)]) -> (blake3::Hash, Duration) {
    // One buffer hashed at once: blake3 is many times faster over one long input than over
    // 13 short updates per record.
    let mut bytes = Vec::with_capacity(records.len() * 96);
    let mut newest = Duration::ZERO;
    for (rel, stat) in records {
        let values = [
            u64::from(stat.mode),
            stat.size,
            stat.dev,
            stat.ino,
            stat.modified.0 as u64,
            stat.modified.1 as u64,
            stat.changed.0 as u64,
            stat.changed.1 as u64,
        ];
        for value in values {
            bytes.extend_from_slice(&value.to_le_bytes());
        }
        bytes.extend_from_slice(rel.as_bytes());
        bytes.push(0);
        newest = newest.max(Duration::new(values[6], values[7] as u32));
    }
    (blake3::hash(&bytes), newest)
}

/// True when a change at `newest` (since the epoch) is old enough for a stamp: see
/// [`STAMP_SETTLE`].
fn settled(newest: Duration) -> bool {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .is_ok_and(|now| now > newest.saturating_add(STAMP_SETTLE))
}

/// `records` by path as the manifest writes it (`a/b`, `""` for the entry itself).
fn records_by_path(records: &[(String, Stat)]) -> HashMap<&str, &Stat> {
    records
        .iter()
        .map(|(rel, meta)| (rel.strip_prefix('/').unwrap_or(rel), meta))
        .collect()
}

/// Teaches this process the digest of each file `records` describes, from `manifest`: called
/// when the entry's stamp matched, which proves its files are the bytes the manifest records.
fn learn_known_digests(records: &[(String, Stat)], manifest: &Tree) {
    let by_path = records_by_path(records);
    for node in &manifest.nodes {
        if let (NodeKind::File { blake3, .. }, Some(stat)) =
            (&node.kind, by_path.get(node.path.as_str()))
        {
            if stat.is_file() {
                crate::hash::remember_digest(stat.file_state(), *blake3);
            }
        }
    }
}

/// True when `records` (an `lstat` of every path of the entry at `root`) show exactly the
/// paths, types, sizes and executable bits of `manifest`, every file in a state whose digest
/// this process knows to be the manifest's, and every symlink with its recorded target.
fn known_intact(records: &[(String, Stat)], manifest: &Tree, root: &Path) -> bool {
    if records.len() != manifest.nodes.len() {
        return false;
    }
    let by_path = records_by_path(records);
    manifest.nodes.iter().all(|node| {
        let Some(stat) = by_path.get(node.path.as_str()) else {
            return false;
        };
        match &node.kind {
            NodeKind::Directory => stat.is_dir(),
            NodeKind::File {
                executable,
                size,
                blake3,
            } => {
                stat.is_file()
                    && stat.size == *size
                    && stat.is_executable() == *executable
                    && crate::hash::known_digest(&stat.file_state()) == Some(*blake3)
            }
            NodeKind::Symlink { target } => {
                stat.is_symlink()
                    && fs::read_link(root.join(&node.path))
                        .is_ok_and(|found| found.as_os_str() == target.as_str())
            }
        }
    })
}

/// The `lstat` of everything under `dir` (whose path in the entry is `rel`). Each entry is
/// stat'ed relative to its open directory (no path walk from the root per file), and
/// subdirectories are walked in parallel.
#[cfg(unix)]
fn stat_tree(dir: &Path, rel: &str) -> std::io::Result<Vec<(String, Stat)>> {
    let mut records = Vec::new();
    let mut subdirs = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        let child = format!("{rel}/{}", entry.file_name().to_string_lossy());
        if meta.is_dir() {
            subdirs.push((entry.path(), child.clone()));
        }
        records.push((child, Stat::of(&meta)));
    }
    let nested: Vec<Vec<(String, Stat)>> = subdirs
        .par_iter()
        .map(|(path, child)| stat_tree(path, child))
        .collect::<std::io::Result<_>>()?;
    records.extend(nested.into_iter().flatten());
    Ok(records)
}

/// Writes a stamp file atomically (a reader sees the old stamp, the new one, or none).
fn write_stamp(path: &std::path::Path, stamp: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(path);
    fs::create_dir_all(dir)?;
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut file, stamp)?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}
