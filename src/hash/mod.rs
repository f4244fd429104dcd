//! Canonical forms and hashes: base32, canonical JSON, the canonical tree walk and its content
//! hash; bounded reads of input files and umask-honouring writes of the user's files
//! ([`files`]). Nothing here knows what the bytes mean.

pub mod base32;
pub mod canonical_json;
pub mod files;
mod memo;
pub mod sha256;
pub mod tree;

pub use memo::{
    hard_link_keeping_digest, known_digest, remember_current, remember_digest, FileState,
};

pub use sha256::{Sha256Digest, Sha256Error};

/// Lower-case hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// sha256 of a file's contents, streamed.
pub fn sha256_file(path: &std::path::Path) -> std::io::Result<[u8; 32]> {
    use sha2::Digest;
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().into())
}
