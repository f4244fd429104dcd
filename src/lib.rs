//! pystore: reproducible Python bundles as immutable, content-addressed store entries.
//!
//! Layers, lowest first (a layer never uses one above it):
//! - [`errors`]: rendering error chains (used by every layer);
//! - [`parallel`]: a bounded parallel map for slow steps, results in order (used by every layer);
//! - [`hash`]: canonical forms and hashes;
//! - [`sign`]: ed25519 keys and DSSE envelopes (provenance signatures);
//! - [`store`]: entries, ids, the database, locks, registration, roots, gc, verify;
//! - [`archive`]: the deterministic ZIP and its pinned deflate; the hardened zip and tar
//!   readers ([`archive::extract`]);
//! - [`fetch`]: fixed-output downloads, mirrors, wheelhouses, the package index client;
//! - [`python`]: targets, tags, markers, interpreters, wheel installation, requirements and
//!   resolution (no store internals);
//! - [`lock`]: the one `Lock` type and its formats (`pystore.lock`, `pylock.toml`, hashed
//!   requirements), and the package source locking resolves against;
//! - [`build`]: the build graph and the scheduler;
//! - [`bundle`]: assembling bundles and their manifests;
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
pub mod lock;
pub mod parallel;
pub mod python;
pub mod recipe;
pub mod remote;
pub mod sign;
pub mod store;
