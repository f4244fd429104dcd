//! Bundles: assembling the interpreter and installed wheels into one tree, its manifest, and
//! what describes a bundle ZIP: its provenance and its SBOM.

pub mod assemble;
pub mod bytecode;
pub mod check;
pub mod derivations;
mod inputs;
pub mod manifest;
pub mod native;
pub mod provenance;
pub mod sbom;
pub mod validate;
