//! Signing keys and DSSE envelopes: what provenance is signed with and checked against.
//!
//! Keys are ed25519, written as `NAME:BASE64` (the Nix convention): a public key is the 32-byte
//! verifying key, a secret key file holds the 32-byte seed followed by the public key. Secret keys
//! live in files only; nothing here prints them.

pub mod dsse;
pub mod keys;

pub use dsse::{Envelope, Signature};
pub use keys::{KeyError, PublicKey, SecretKey, TrustedKeys};
