//! Building and realising bundles end to end, one binary: the scheduler and reproducibility
//! check, `realise` (also `--check`, for macOS and in the sandbox), bytecode, validation,
//! provenance, `diff` and `lock`.

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

mod build_check;
mod build_scheduler;
mod bytecode;
mod check;
mod diff;
mod lock;
mod macos_bundle;
mod provenance;
mod realise;
mod sandbox;
mod validate;
