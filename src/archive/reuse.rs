//! Reusing compressed bytes from wheels: most of a bundle's files arrive deflated inside wheels,
//! and recompressing them is the slowest part of making a ZIP.
//!
//! The wheels' deflated members are indexed by (size, CRC-32). A bundle file whose size and
//! CRC-32 match a member reuses that member's compressed bytes, but only after they are inflated
//! and found to hash (blake3) to the file's own digest: a CRC collision can never put wrong bytes
//! into a ZIP. The result is deterministic: wheels are pinned inputs, and when several members
//! match, the first wheel (by file name) and member (by name) wins.
//!
//! A match proved by inflating is recorded in the cache ([`super::member_cache`]) when there is
//! one; a later ZIP then copies that member without reading the bundle's file at all, when the
//! member its own index picks for the file's (size, CRC-32) is the recorded one: exactly the
//! member, and so the bytes, the proof would have chosen. That copy trusts the record and the
//! wheel instead of checking them again, as the deflate packs trust their checksums: the wheel
//! is a store entry checked intact before a build reads it, and the record is checksummed.
//! `realise --check` builds with no cache, so it would show a ZIP such trust got wrong.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::deflate;
use super::member_cache::{self, KnownMember};
use super::zip::Contents;

/// Files smaller than this are compressed anew: reuse would save almost nothing.
pub const MIN_REUSE_SIZE: u64 = 256;

/// Deflated wheel members, by (uncompressed size, CRC-32).
#[derive(Default)]
pub struct WheelMembers {
    wheels: Vec<PathBuf>,
    /// Each wheel, opened once by [`WheelMembers::index`] (`None` when it could not be read):
    /// members are read from it at their offsets, by any thread.
    files: Vec<Option<File>>,
    /// (wheel, offset of the member's data, compressed length).
    index: HashMap<(u64, u32), (usize, u64, u64)>,
    /// The cache root, when there is a cache.
    cache: Option<PathBuf>,
    /// Members the cache says hold contents with this blake3, with their wheel.
    known: HashMap<[u8; 32], Vec<(usize, KnownMember)>>,
    /// Matches this process proved by inflating, with their wheel: for [`WheelMembers::save`].
    proved: Mutex<Vec<(usize, KnownMember)>>,
}

impl WheelMembers {
    /// Indexes the deflated members of `wheels` (unreadable wheels are skipped: reuse is only
    /// an optimisation), with what the member cache under `cache` (a cache root) knows of them.
    pub fn index(wheels: &[PathBuf], cache: Option<&Path>) -> WheelMembers {
        let mut sorted: Vec<PathBuf> = wheels.to_vec();
        sorted.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
        let mut members = WheelMembers {
            wheels: sorted,
            files: Vec::new(),
            index: HashMap::new(),
            cache: cache.map(Path::to_path_buf),
            known: HashMap::new(),
            proved: Mutex::new(Vec::new()),
        };
        for (w, path) in members.wheels.iter().enumerate() {
            if let Some(root) = cache {
                for known in member_cache::load(root, path) {
                    members
                        .known
                        .entry(known.blake3)
                        .or_default()
                        .push((w, known));
                }
            }
            let opened = File::open(path).ok();
            let archive = opened
                .as_ref()
                .and_then(|file| file.try_clone().ok())
                .and_then(|file| zip::ZipArchive::new(file).ok());
            members.files.push(opened);
            let Some(mut archive) = archive else {
                continue;
            };
            let mut entries: Vec<(String, usize)> = (0..archive.len())
                .filter_map(|i| Some((archive.name_for_index(i)?.to_owned(), i)))
                .collect();
            entries.sort();
            for (_, i) in entries {
                let Ok(file) = archive.by_index_raw(i) else {
                    continue;
                };
                if file.is_file()
                    && file.compression() == zip::CompressionMethod::Deflated
                    && file.size() >= MIN_REUSE_SIZE
                {
                    let location = (w, file.data_start(), file.compressed_size());
                    members
                        .index
                        .entry((file.size(), file.crc32()))
                        .or_insert(location);
                }
            }
        }
        members
    }

    /// How many members are indexed.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when nothing can be reused.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The contents to write for the file at `path` (size `size`, blake3 `digest`): a wheel's
    /// compressed bytes when some member provably holds these bytes, else the file to compress.
    pub fn contents_for(&self, path: &Path, size: u64, digest: &[u8; 32]) -> Contents {
        let fallback = || Contents::Path(path.to_path_buf());
        if size < MIN_REUSE_SIZE || self.index.is_empty() {
            return fallback();
        }
        if let Some(known) = self.known_member(size, digest) {
            return known;
        }
        let Ok(bytes) = std::fs::read(path) else {
            return fallback();
        };
        let crc = crc32fast::hash(&bytes);
        let Some(&(w, start, len)) = self.index.get(&(size, crc)) else {
            return Contents::Bytes(bytes);
        };
        match self.raw_member(w, start, len) {
            Some(raw)
                if deflate::inflate(&raw, size as usize)
                    .is_ok_and(|inflated| blake3::hash(&inflated).as_bytes() == digest) =>
            {
                if self.cache.is_some() {
                    let proved = KnownMember {
                        start,
                        len,
                        size,
                        crc32: crc,
                        blake3: *digest,
                    };
                    self.proved_lock().push((w, proved));
                }
                Contents::Deflated {
                    data: raw,
                    crc32: crc,
                    size,
                }
            }
            _ => Contents::Bytes(bytes),
        }
    }

    /// The member the cache says holds the contents with `digest`, when it is also the one the
    /// index picks for their (size, CRC-32), read from its wheel.
    fn known_member(&self, size: u64, digest: &[u8; 32]) -> Option<Contents> {
        self.known.get(digest)?.iter().find_map(|&(w, known)| {
            let picked = self.index.get(&(size, known.crc32));
            if known.size != size || picked != Some(&(w, known.start, known.len)) {
                return None;
            }
            Some(Contents::Deflated {
                data: self.raw_member(w, known.start, known.len)?,
                crc32: known.crc32,
                size,
            })
        })
    }

    /// Records the matches this process proved in the member cache (nothing without one).
    /// Returns how many wheels got new records.
    pub fn save(&self) -> usize {
        let Some(root) = &self.cache else {
            return 0;
        };
        let mut by_wheel: HashMap<usize, Vec<KnownMember>> = HashMap::new();
        for (w, proved) in std::mem::take(&mut *self.proved_lock()) {
            by_wheel.entry(w).or_default().push(proved);
        }
        by_wheel
            .into_iter()
            .filter(|(w, proved)| {
                member_cache::save(root, &self.wheels[*w], proved)
                    .map_err(|err| tracing::debug!("wheel member cache not written: {err}"))
                    .is_ok()
            })
            .count()
    }

    fn proved_lock(&self) -> std::sync::MutexGuard<'_, Vec<(usize, KnownMember)>> {
        // Only whole records are ever pushed: a poisoned lock still holds valid ones.
        self.proved.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The `len` bytes at `start` of wheel `wheel`.
    #[cfg(unix)]
    fn raw_member(&self, wheel: usize, start: u64, len: u64) -> Option<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let file = self.files.get(wheel)?.as_ref()?;
        let mut data = vec![0u8; usize::try_from(len).ok()?];
        // A positioned read: the shared handle has no cursor for threads to fight over.
        file.read_exact_at(&mut data, start).ok()?;
        Some(data)
    }

    /// The `len` bytes at `start` of wheel `wheel`.
    #[cfg(not(unix))]
    fn raw_member(&self, wheel: usize, start: u64, len: u64) -> Option<Vec<u8>> {
        use std::io::{Read, Seek, SeekFrom};
        let mut file = File::open(&self.wheels[wheel]).ok()?;
        file.seek(SeekFrom::Start(start)).ok()?;
        let mut data = vec![0u8; usize::try_from(len).ok()?];
        file.read_exact(&mut data).ok()?;
        Some(data)
    }
}
