//! Archives: the deterministic bundle ZIP and the pinned deflate it uses.

pub mod deflate;
pub mod deflate_cache;
pub mod reuse;
pub mod timestamp;
pub mod zip;
