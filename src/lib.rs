//! pystore: reproducible Python bundles as immutable, content-addressed store entries.
//!
//! Layers, lowest first (a layer never uses one above it):
//! - [`errors`]: rendering error chains (used by every layer);
//! - [`hash`]: canonical forms and hashes;
//! - [`sign`]: ed25519 keys and DSSE envelopes (provenance signatures);
//! - [`store`]: entries, ids, the database, locks, registration, roots, gc, verify;
//! - [`fetch`]: fixed-output downloads, mirrors, wheelhouses, the package index client;
//! - [`python`]: targets, tags, markers, interpreters, wheel installation, requirements and
//!   locks (no store internals);
//! - [`build`]: the build graph and the scheduler;
//! - [`bundle`], [`archive`]: assembling bundles and their manifests; the deterministic ZIP;
//! - [`remote`]: pushing and pulling closures (directories, HTTP caches, GitHub Releases),
//!   signed entry descriptions, substituters;
//! - [`diff`]: comparing two bundles by their manifests;
//! - [`recipe`]: recipe files;
//! - [`cli`]: argument parsing and rendering.

pub mod archive;
pub mod build;
pub mod bundle;
pub mod cli;
pub mod diff;
pub mod errors;
pub mod fetch;
pub mod hash;
pub mod python;
pub mod recipe;
pub mod remote;
pub mod sign;
pub mod store;
