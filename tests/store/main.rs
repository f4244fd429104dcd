//! The store layer's integration tests, one binary: adding trees (alone, in batches, from
//! concurrent and killed processes), the database, gc, verify, damaged entries, and the golden
//! vectors of store-layout.md.

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

mod add;
mod add_batch;
mod concurrency;
mod crash;
mod damage;
mod database;
mod gc;
mod golden_vectors;
mod stamps;
mod verify;
