//! A cache of what the pinned deflate ([`super::deflate`]) made of file contents, keyed by the
//! blake3 of those contents, so a ZIP of a bundle that shares files with an earlier one (the same
//! interpreter, most packages) copies their compressed bytes instead of deflating them again.
//!
//! Deflate is a pure function of its input, implementation and level, so a hit gives exactly the
//! bytes a fresh deflate would: the cache changes how fast a ZIP is made, never what it holds.
//! The cache directory is named after the implementation and level, so another deflate never
//! reads this one's output. Each ZIP build appends one *pack* file (see `store-layout.md` §10):
//! few files, written once, renamed into place complete. Every record carries the blake3 of its
//! compressed bytes, checked on each read, so a damaged pack is a miss, not a wrong ZIP. Anything
//! unreadable is ignored: the cache is only an optimisation.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use super::deflate;
use super::zip::Contents;

/// The first bytes of every pack.
pub const PACK_MAGIC: &[u8; 23] = b"pystore deflate pack 1\n";

/// The newest packs kept per cache directory; older ones are removed when a pack is added.
pub const MAX_PACKS: usize = 8;

/// Bytes of a record's header: key, size, CRC-32, compressed length, digest of the compressed
/// bytes.
const RECORD_HEADER: usize = 32 + 8 + 4 + 8 + 32;

/// The cache directory's name under a cache root: `deflate-<implementation>-l<level>`.
pub fn dir_name() -> String {
    let implementation: String = deflate::IMPLEMENTATION
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("deflate-{implementation}-l{}", deflate::LEVEL)
}

struct Location {
    pack: usize,
    offset: u64,
    len: u64,
    crc32: u32,
    size: u64,
    digest: [u8; 32],
}

/// The packs of one cache directory, indexed.
pub struct DeflateCache {
    dir: PathBuf,
    packs: Vec<File>,
    index: HashMap<[u8; 32], Location>,
}

impl DeflateCache {
    /// Opens (and indexes) the cache for this deflate under `root`, creating nothing yet.
    pub fn open(root: &Path) -> DeflateCache {
        let dir = root.join(dir_name());
        let mut cache = DeflateCache {
            dir,
            packs: Vec::new(),
            index: HashMap::new(),
        };
        let mut names: Vec<PathBuf> = match fs::read_dir(&cache.dir) {
            Ok(children) => children
                .flatten()
                .map(|c| c.path())
                .filter(|p| p.extension().is_some_and(|e| e == "pack"))
                .collect(),
            Err(_) => Vec::new(),
        };
        // Any order gives the same bytes; sorting just makes the choice among duplicates fixed.
        names.sort();
        for path in names {
            if let Err(err) = cache.add_pack(&path) {
                tracing::debug!("ignoring deflate cache pack {}: {err}", path.display());
            }
        }
        cache
    }

    fn add_pack(&mut self, path: &Path) -> io::Result<()> {
        let file = File::open(path)?;
        let total = file.metadata()?.len();
        let mut reader = BufReader::with_capacity(1 << 16, file.try_clone()?);
        let mut magic = [0u8; PACK_MAGIC.len()];
        reader.read_exact(&mut magic)?;
        if &magic != PACK_MAGIC {
            return Err(io::Error::other("not a deflate pack"));
        }
        let pack = self.packs.len();
        let mut offset = PACK_MAGIC.len() as u64;
        let mut header = [0u8; RECORD_HEADER];
        while offset + RECORD_HEADER as u64 <= total {
            reader.read_exact(&mut header)?;
            let field = |at: usize, n: usize| &header[at..at + n];
            let key: [u8; 32] = field(0, 32).try_into().map_err(io::Error::other)?;
            let size = u64::from_le_bytes(field(32, 8).try_into().map_err(io::Error::other)?);
            let crc32 = u32::from_le_bytes(field(40, 4).try_into().map_err(io::Error::other)?);
            let len = u64::from_le_bytes(field(44, 8).try_into().map_err(io::Error::other)?);
            let digest: [u8; 32] = field(52, 32).try_into().map_err(io::Error::other)?;
            offset += RECORD_HEADER as u64;
            if len > total - offset {
                return Err(io::Error::other("truncated record"));
            }
            self.index.entry(key).or_insert(Location {
                pack,
                offset,
                len,
                crc32,
                size,
                digest,
            });
            let skip = i64::try_from(len).map_err(io::Error::other)?;
            reader.seek_relative(skip)?;
            offset += len;
        }
        self.packs.push(file);
        Ok(())
    }

    /// How many contents the cache knows.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when the cache knows nothing.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The deflated form of the contents with this blake3 and size, if cached and intact.
    pub fn get(&self, blake3: &[u8; 32], size: u64) -> Option<Contents> {
        let location = self.index.get(blake3)?;
        if location.size != size {
            return None;
        }
        let data = read_at(&self.packs[location.pack], location.offset, location.len).ok()?;
        if blake3::hash(&data).as_bytes() != &location.digest {
            tracing::debug!(
                "deflate cache record for {} is damaged",
                hex::encode(blake3)
            );
            return None;
        }
        Some(Contents::Deflated {
            data,
            crc32: location.crc32,
            size,
        })
    }

    /// Starts a new pack in this cache's directory (created if needed).
    pub fn new_pack(&self) -> io::Result<PackWriter> {
        fs::create_dir_all(&self.dir)?;
        let temp = tempfile::Builder::new()
            .prefix(".new-")
            .suffix(".tmp")
            .tempfile_in(&self.dir)?;
        let mut out = BufWriter::with_capacity(1 << 20, temp);
        out.write_all(PACK_MAGIC)?;
        Ok(PackWriter {
            out,
            dir: self.dir.clone(),
            records: 0,
        })
    }
}

#[cfg(unix)]
fn read_at(file: &File, offset: u64, len: u64) -> io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mut data = vec![0u8; usize::try_from(len).map_err(io::Error::other)?];
    file.read_exact_at(&mut data, offset)?;
    Ok(data)
}

#[cfg(not(unix))]
fn read_at(_file: &File, _offset: u64, _len: u64) -> io::Result<Vec<u8>> {
    Err(io::Error::other("the deflate cache needs positioned reads"))
}

/// A pack being written; nothing is visible to readers until [`PackWriter::finish`].
pub struct PackWriter {
    out: BufWriter<tempfile::NamedTempFile>,
    dir: PathBuf,
    records: usize,
}

impl PackWriter {
    /// Adds the deflated form `data` of contents with this blake3, size and CRC-32.
    pub fn add(&mut self, blake3: &[u8; 32], size: u64, crc32: u32, data: &[u8]) -> io::Result<()> {
        self.out.write_all(blake3)?;
        self.out.write_all(&size.to_le_bytes())?;
        self.out.write_all(&crc32.to_le_bytes())?;
        self.out.write_all(&(data.len() as u64).to_le_bytes())?;
        self.out.write_all(blake3::hash(data).as_bytes())?;
        self.out.write_all(data)?;
        self.records += 1;
        Ok(())
    }

    /// Renames the pack into place (when it has records) and removes packs beyond the newest
    /// [`MAX_PACKS`].
    pub fn finish(self) -> io::Result<()> {
        if self.records == 0 {
            return Ok(());
        }
        let temp = self.out.into_inner().map_err(|e| e.into_error())?;
        let name = format!("{:016x}{:016x}.pack", fastrand::u64(..), fastrand::u64(..));
        temp.persist(self.dir.join(name)).map_err(|e| e.error)?;
        let children: Vec<(std::time::SystemTime, PathBuf)> = fs::read_dir(&self.dir)?
            .flatten()
            .filter_map(|c| Some((c.metadata().ok()?.modified().ok()?, c.path())))
            .collect();
        // A pack whose writer was killed stays as `.new-*.tmp`; a day on, nobody writes it.
        let stale = std::time::SystemTime::now() - std::time::Duration::from_secs(24 * 3600);
        for (modified, path) in &children {
            if path.extension().is_some_and(|e| e == "tmp") && *modified < stale {
                let _ = fs::remove_file(path);
            }
        }
        let mut packs: Vec<(std::time::SystemTime, PathBuf)> = children
            .into_iter()
            .filter(|(_, p)| p.extension().is_some_and(|e| e == "pack"))
            .collect();
        packs.sort();
        let excess = packs.len().saturating_sub(MAX_PACKS);
        for (_, old) in packs.into_iter().take(excess) {
            let _ = fs::remove_file(old);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packed(text: &[u8]) -> (Vec<u8>, u32, [u8; 32]) {
        (
            deflate::deflate(text),
            crc32fast::hash(text),
            *blake3::hash(text).as_bytes(),
        )
    }

    #[test]
    fn records_round_trip_and_damage_is_a_miss() {
        let root = tempfile::tempdir().unwrap();
        let cache = DeflateCache::open(root.path());
        assert!(cache.is_empty());
        let text = b"hello hello hello hello hello hello".repeat(50);
        let (data, crc32, key) = packed(&text);
        let mut pack = cache.new_pack().unwrap();
        pack.add(&key, text.len() as u64, crc32, &data).unwrap();
        pack.finish().unwrap();

        let cache = DeflateCache::open(root.path());
        assert_eq!(cache.len(), 1);
        match cache.get(&key, text.len() as u64) {
            Some(Contents::Deflated {
                data: got,
                crc32: c,
                size,
            }) => {
                assert_eq!((got, c, size), (data.clone(), crc32, text.len() as u64));
            }
            other => panic!("expected a hit, got {other:?}"),
        }
        assert!(cache.get(&key, 1).is_none(), "another size is a miss");
        assert!(cache.get(&[0; 32], text.len() as u64).is_none());

        // Flip a byte of the compressed data: the digest check turns the hit into a miss.
        let dir = root.path().join(dir_name());
        let pack_path = fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path();
        let mut bytes = fs::read(&pack_path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&pack_path, &bytes).unwrap();
        let cache = DeflateCache::open(root.path());
        assert_eq!(cache.len(), 1);
        assert!(cache.get(&key, text.len() as u64).is_none());

        // A truncated or foreign file is ignored, not an error.
        fs::write(dir.join("junk.pack"), b"not a pack").unwrap();
        fs::write(&pack_path, &bytes[..bytes.len() - 3]).unwrap();
        assert!(DeflateCache::open(root.path()).is_empty());
    }

    #[test]
    fn keeps_only_the_newest_packs() {
        let root = tempfile::tempdir().unwrap();
        for i in 0..MAX_PACKS + 3 {
            let text = format!("contents number {i}").repeat(20);
            let (data, crc32, key) = packed(text.as_bytes());
            let mut pack = DeflateCache::open(root.path()).new_pack().unwrap();
            pack.add(&key, text.len() as u64, crc32, &data).unwrap();
            pack.finish().unwrap();
        }
        let packs = fs::read_dir(root.path().join(dir_name())).unwrap().count();
        assert_eq!(packs, MAX_PACKS);
        assert_eq!(DeflateCache::open(root.path()).len(), MAX_PACKS);
        assert_eq!(dir_name(), "deflate-libdeflater_1.26.1-l6");
    }
}
