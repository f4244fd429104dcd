//! The archive layer's integration tests, one binary: the deterministic ZIP and its golden
//! vectors, reuse of wheels' compressed bytes, hostile input, and fuzzing (`tests/fuzz_corpus/`;
//! run alone with `cargo test --test archive fuzz::`).

// Helpers shared by the test binaries (tests/common, tests/pyfixtures, …); `allow(dead_code)`
// where this binary uses only part of one.
#[path = "../common/mod.rs"]
#[allow(dead_code)]
mod common;
#[path = "../pyfixtures/mod.rs"]
#[allow(dead_code)]
mod pyfixtures;
#[path = "../recipe_fixtures/mod.rs"]
mod recipe_fixtures;

mod fuzz;
mod hostile_input;
mod reuse;
mod zip;
