//! Bundles: assembling the interpreter and installed wheels into one tree, and its manifest.

pub mod assemble;
pub mod manifest;
