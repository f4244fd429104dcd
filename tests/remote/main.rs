//! The remotes' integration tests, one binary: push and pull through `file://`, `github:` and
//! `oci://` remotes, substitution and `challenge`. The OCI tests alone:
//! `cargo test --test remote oci::`.

// Helpers shared by the test binaries (tests/common, tests/pyfixtures, …); `allow(dead_code)`
// where this binary uses only part of one.
#[path = "../common/mod.rs"]
#[allow(dead_code)]
mod common;
#[path = "../pyfixtures/mod.rs"]
#[allow(dead_code)]
mod pyfixtures;
#[path = "../recipe_fixtures/mod.rs"]
#[allow(dead_code)]
mod recipe_fixtures;
#[path = "../remote_fixtures/mod.rs"]
#[allow(dead_code)]
mod remote_fixtures;

mod challenge;
mod file;
mod github;
mod oci;
mod substitute;
