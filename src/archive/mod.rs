//! Archives: the deterministic bundle ZIP and the pinned deflate it uses; the hardened zip and
//! tar readers ([`extract`]).

pub mod deflate;
pub mod deflate_cache;
pub mod extract;
pub mod member_cache;
pub mod reuse;
pub mod timestamp;
pub mod zip;
