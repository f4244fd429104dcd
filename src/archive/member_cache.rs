//! What the deflated members of each wheel were found to hold, so that a ZIP reusing a wheel's
//! compressed bytes ([`super::reuse`]) proves a match once per wheel and member, not once per
//! ZIP.
//!
//! Without it, every member reused from a wheel costs reading the bundle's file, its CRC-32,
//! inflating the member and hashing the result: most of a ZIP's time when only one package
//! changed. A record says "the member whose deflated data is the `len` bytes at `start` holds
//! contents of this size, CRC-32 and blake3"; it is written only after the member was inflated
//! and hashed (by the install, which inflates every member anyway, or by a ZIP's proof), and a
//! wheel is an immutable store entry, so the claim stays true for as long as the wheel exists.
//! The records of one wheel are one file, named after the wheel's entry (`store-layout.md`
//! §10a), ending with the blake3 of everything before it: a damaged, truncated or foreign file
//! is read as no records. Like every cache, this one changes how fast
//! a ZIP is made, never its bytes.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The cache directory's name under a cache root.
pub const DIR_NAME: &str = "wheel-members-1";

/// The first bytes of every records file.
pub const MAGIC: &[u8; 24] = b"pystore wheel members 1\n";

/// The largest records file read: 1 million records.
const MAX_FILE: u64 = (MAGIC.len() + 32 + 1_000_000 * RECORD_LEN) as u64;

/// Bytes of one record: start, length, size (u64 each), CRC-32 (u32), blake3 (32 bytes).
const RECORD_LEN: usize = 8 + 8 + 8 + 4 + 32;

/// One member of a wheel, and what it was found to hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KnownMember {
    /// Offset of the member's deflated data in the wheel.
    pub start: u64,
    /// Length of the deflated data.
    pub len: u64,
    /// Size of the inflated contents.
    pub size: u64,
    /// CRC-32 of the inflated contents.
    pub crc32: u32,
    /// blake3 of the inflated contents.
    pub blake3: [u8; 32],
}

/// Where the records of `wheel` (a wheel entry's path) are kept under the cache `root`, or
/// `None` when the path has no file name.
fn records_path(root: &Path, wheel: &Path) -> Option<PathBuf> {
    Some(root.join(DIR_NAME).join(wheel.file_name()?))
}

/// The records of `wheel`; none when there are none or the file is not intact.
pub fn load(root: &Path, wheel: &Path) -> Vec<KnownMember> {
    let Some(path) = records_path(root, wheel) else {
        return Vec::new();
    };
    // Only a regular file of a plausible size is read (never a link to a device, say): a wheel
    // with the most members the installer accepts has records far smaller than this.
    let plausible = fs::symlink_metadata(&path).is_ok_and(|m| m.is_file() && m.len() <= MAX_FILE);
    let Some(bytes) = plausible.then(|| fs::read(&path).ok()).flatten() else {
        return Vec::new();
    };
    match parse(&bytes) {
        Some(records) => records,
        None => {
            tracing::debug!("ignoring damaged wheel member records {}", path.display());
            Vec::new()
        }
    }
}

fn parse(bytes: &[u8]) -> Option<Vec<KnownMember>> {
    let body_len = bytes.len().checked_sub(32)?;
    let (body, checksum) = bytes.split_at(body_len);
    if blake3::hash(body).as_bytes() != checksum {
        return None;
    }
    let records = body.strip_prefix(MAGIC.as_slice())?;
    if records.len() % RECORD_LEN != 0 {
        return None;
    }
    records
        .chunks_exact(RECORD_LEN)
        .map(|record| {
            let u64_at = |at: usize| Some(u64::from_le_bytes(record[at..at + 8].try_into().ok()?));
            Some(KnownMember {
                start: u64_at(0)?,
                len: u64_at(8)?,
                size: u64_at(16)?,
                crc32: u32::from_le_bytes(record[24..28].try_into().ok()?),
                blake3: record[28..60].try_into().ok()?,
            })
        })
        .collect()
}

/// Adds `found` to the records of `wheel` (keeping those already there), sorted, in a file
/// written aside and renamed into place whole, so a reader sees the old records or the new.
/// Two processes saving for one wheel at once may lose one's new records (the last rename
/// wins): that costs a later ZIP one proof, never a wrong byte, so no lock is taken.
pub fn save(root: &Path, wheel: &Path, found: &[KnownMember]) -> io::Result<()> {
    if found.is_empty() {
        return Ok(());
    }
    let path = records_path(root, wheel)
        .ok_or_else(|| io::Error::other(format!("{}: no file name", wheel.display())))?;
    let mut records = load(root, wheel);
    records.extend_from_slice(found);
    records.sort_unstable();
    records.dedup();
    let mut bytes = Vec::with_capacity(MAGIC.len() + records.len() * RECORD_LEN + 32);
    bytes.extend_from_slice(MAGIC);
    for record in &records {
        bytes.extend_from_slice(&record.start.to_le_bytes());
        bytes.extend_from_slice(&record.len.to_le_bytes());
        bytes.extend_from_slice(&record.size.to_le_bytes());
        bytes.extend_from_slice(&record.crc32.to_le_bytes());
        bytes.extend_from_slice(&record.blake3);
    }
    let checksum = blake3::hash(&bytes);
    bytes.extend_from_slice(checksum.as_bytes());
    let dir = root.join(DIR_NAME);
    fs::create_dir_all(&dir)?;
    let mut temp = tempfile::Builder::new()
        .prefix(".new-")
        .suffix(".tmp")
        .tempfile_in(&dir)?;
    temp.write_all(&bytes)?;
    temp.persist(&path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(start: u64, byte: u8) -> KnownMember {
        KnownMember {
            start,
            len: 100 + start,
            size: 300 + start,
            crc32: 0xdead_beef ^ start as u32,
            blake3: [byte; 32],
        }
    }

    #[test]
    fn records_are_kept_per_wheel_and_damage_reads_as_none() {
        let root = tempfile::tempdir().unwrap();
        let wheel = Path::new("/store/entries/abc-demo-1.0-py3-none-any.whl");
        let other = Path::new("/store/entries/def-other-2.0-py3-none-any.whl");
        assert!(load(root.path(), wheel).is_empty());
        save(root.path(), wheel, &[member(900, 9), member(40, 4)]).unwrap();
        // Kept, and merged with what a later ZIP found; duplicates once.
        save(root.path(), wheel, &[member(40, 4), member(500, 5)]).unwrap();
        assert_eq!(
            load(root.path(), wheel),
            vec![member(40, 4), member(500, 5), member(900, 9)]
        );
        assert!(load(root.path(), other).is_empty(), "records are per wheel");
        save(root.path(), other, &[]).unwrap();
        assert!(
            !root
                .path()
                .join(DIR_NAME)
                .join(other.file_name().unwrap())
                .exists(),
            "nothing to record, no file"
        );

        let path = root.path().join(DIR_NAME).join(wheel.file_name().unwrap());
        let good = fs::read(&path).unwrap();
        for damage in [
            // A flipped byte in a record.
            {
                let mut bytes = good.clone();
                bytes[MAGIC.len() + 3] ^= 1;
                bytes
            },
            // Truncated.
            good[..good.len() - 1].to_vec(),
            // Another format with a valid checksum.
            {
                let mut bytes = b"pystore wheel members 9\n".to_vec();
                bytes.extend_from_slice(&good[MAGIC.len()..good.len() - 32]);
                let sum = *blake3::hash(&bytes).as_bytes();
                bytes.extend_from_slice(&sum);
                bytes
            },
            Vec::new(),
        ] {
            fs::write(&path, &damage).unwrap();
            assert!(load(root.path(), wheel).is_empty());
        }
        // A link (to good records, even) is not followed.
        let good_copy = root.path().join("good");
        fs::write(&good_copy, &good).unwrap();
        fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(&good_copy, &path).unwrap();
        assert!(load(root.path(), wheel).is_empty());
    }
}
