//! The fetch layer's integration tests, one binary: fixed-output downloads, the package index
//! client and ranged reads of remote wheels, against loopback servers.

// Helpers shared by the test binaries (tests/common, tests/pyfixtures, …); `allow(dead_code)`
// where this binary uses only part of one.
#[path = "../common/mod.rs"]
#[allow(dead_code)]
mod common;
#[path = "../pyfixtures/mod.rs"]
#[allow(dead_code)]
mod pyfixtures;

mod download;
mod index;
mod ranged;
