//! The python layer's integration tests, one binary: the interpreter catalogue, interpreter trees,
//! wheel installation and metadata, Windows launchers and platform tags.

// Helpers shared by the test binaries (tests/common, tests/pyfixtures, …); `allow(dead_code)`
// where this binary uses only part of one.
#[path = "../common/mod.rs"]
#[allow(dead_code)]
mod common;
#[path = "../pyfixtures/mod.rs"]
mod pyfixtures;
#[path = "../recipe_fixtures/mod.rs"]
#[allow(dead_code)]
mod recipe_fixtures;

mod catalogue;
mod install;
mod interpreter;
mod launchers;
mod tags;
mod wheel_metadata;
