//! The one deflate implementation bundle ZIPs are compressed with, at one level.
//!
//! Compressed bytes are part of a ZIP's identity, so the implementation (libdeflate, through
//! `libdeflater`, pinned to an exact version in Cargo.toml: it vendors libdeflate's C sources,
//! so the crate version fixes the compressor) and the level are fixed; `golden_vectors` in
//! `tests/archive/zip.rs` holds vectors that fail when either changes.
//!
//! Why libdeflate: a bundle's first ZIP deflates every pyc and the interpreter (53 MB in the
//! samai closure), and libdeflate at level 6 does that in a third of miniz_oxide's time at level
//! 6 (0.54 s against 1.60 s on one core), with output 0.8% smaller. It compresses whole buffers
//! only, which is what the ZIP writer has (each member is read whole). Inflating (checking a
//! wheel's member before it is reused) stays with `miniz_oxide`, which also reads streams.

use std::cell::RefCell;

/// The implementation and version, as recorded in provenance (the crate, whose version fixes the
/// vendored libdeflate 1.26).
pub const IMPLEMENTATION: &str = "libdeflater 1.26.1";

/// The compression level (1–12 in libdeflate's scale; 6 is its default, as zlib's).
pub const LEVEL: u8 = 6;

thread_local! {
    /// One compressor per thread: making one allocates its hash tables (hundreds of KB), which
    /// would otherwise be paid for every member.
    static COMPRESSOR: RefCell<libdeflater::Compressor> = RefCell::new(libdeflater::Compressor::new(
        libdeflater::CompressionLvl::new(i32::from(LEVEL)).unwrap_or_default(),
    ));
}

/// Raw deflate (no zlib header) of `data`.
pub fn deflate(data: &[u8]) -> Vec<u8> {
    COMPRESSOR.with(|compressor| {
        let mut compressor = compressor.borrow_mut();
        let mut out = vec![0; compressor.deflate_compress_bound(data.len())];
        // The buffer holds the bound libdeflate itself gives, so compressing cannot run out of
        // room; were it ever to, storing a copy is still a valid (if larger) deflate stream.
        match compressor.deflate_compress(data, &mut out) {
            Ok(len) => out.truncate(len),
            Err(_) => return miniz_oxide::deflate::compress_to_vec(data, 0),
        }
        out
    })
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
