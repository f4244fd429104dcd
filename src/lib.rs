//! pystore: reproducible Python bundles as immutable, content-addressed store entries.
//!
//! Layers, lowest first (a layer never uses one above it):
//! - [`hash`]: canonical forms and hashes;
//! - [`store`]: entries, ids, the database, locks, registration, roots, gc, verify;
//! - [`python`]: targets, tags, markers, interpreters and wheel installation (no store internals);
//! - [`cli`]: argument parsing and rendering.

pub mod cli;
pub mod hash;
pub mod python;
pub mod store;
