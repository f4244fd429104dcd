//! The one deflate implementation bundle ZIPs are compressed with, at one level.
//!
//! Compressed bytes are part of a ZIP's identity, so the implementation (`miniz_oxide`, pinned
//! to an exact version in Cargo.toml) and the level are fixed; `golden_vectors` in
//! `tests/archive/zip.rs` holds vectors that fail when either changes.

/// The implementation and version, as recorded in provenance.
pub const IMPLEMENTATION: &str = "miniz_oxide 0.9.1";

/// The compression level (0–10 in miniz_oxide's scale; 6 is zlib's default).
pub const LEVEL: u8 = 6;

/// Raw deflate (no zlib header) of `data`.
pub fn deflate(data: &[u8]) -> Vec<u8> {
    miniz_oxide::deflate::compress_to_vec(data, LEVEL)
}

/// Inflates raw deflate data, refusing output larger than `limit` bytes.
pub fn inflate(data: &[u8], limit: usize) -> Result<Vec<u8>, String> {
    miniz_oxide::inflate::decompress_to_vec_with_limit(data, limit).map_err(|e| format!("{e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 97) as u8).collect();
        let packed = deflate(&data);
        assert!(packed.len() < data.len() / 10);
        assert_eq!(inflate(&packed, data.len()).unwrap(), data);
        assert!(
            inflate(&packed, data.len() - 1).is_err(),
            "the limit is enforced"
        );
    }
}
