//! [`Sha256Digest`]: a sha256 digest parsed once, where it enters (a lock, a recipe, an index
//! page, a remote's listing), so nothing past the boundary handles unchecked hex.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A sha256 digest: exactly 32 bytes. Written as 64 lower-case hex digits (the form every file
/// pystore writes holds); read from 64 hex digits of either case, as before it was a type.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256Digest([u8; 32]);

/// Why a text is not a sha256 digest; names the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a sha256 (64 hex digits)")]
pub struct Sha256Error {
    /// The text that was given.
    pub value: String,
}

impl Sha256Digest {
    /// The digest of these bytes.
    pub const fn new(bytes: [u8; 32]) -> Sha256Digest {
        Sha256Digest(bytes)
    }

    /// The 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The 32 bytes, by value.
    pub const fn to_bytes(self) -> [u8; 32] {
        self.0
    }

    /// The sha256 of `bytes`.
    pub fn of(bytes: &[u8]) -> Sha256Digest {
        use sha2::Digest;
        Sha256Digest(sha2::Sha256::digest(bytes).into())
    }

    /// Parses only the canonical form, 64 *lower-case* hex digits: for formats where one digest
    /// must have one spelling (a store fingerprint, an OCI digest).
    pub fn parse_lowercase(text: &str) -> Result<Sha256Digest, Sha256Error> {
        if text.bytes().any(|c| c.is_ascii_uppercase()) {
            return Err(Sha256Error {
                value: text.to_owned(),
            });
        }
        text.parse()
    }
}

impl FromStr for Sha256Digest {
    type Err = Sha256Error;

    /// 64 hex digits, either case (pip and other tools write either; pystore writes lower).
    fn from_str(text: &str) -> Result<Sha256Digest, Sha256Error> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| Sha256Error {
            value: text.to_owned(),
        })?;
        Ok(Sha256Digest(bytes))
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Digest({self})")
    }
}

impl From<[u8; 32]> for Sha256Digest {
    fn from(bytes: [u8; 32]) -> Sha256Digest {
        Sha256Digest(bytes)
    }
}

impl From<Sha256Digest> for [u8; 32] {
    fn from(digest: Sha256Digest) -> [u8; 32] {
        digest.0
    }
}

/// As its hex text, so TOML and JSON carry the same bytes as when it was a string.
impl Serialize for Sha256Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Sha256Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Sha256Digest, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOWER: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_64_hex_digits_of_either_case_and_writes_lower_case() {
        let digest: Sha256Digest = LOWER.parse().unwrap();
        assert_eq!(digest, Sha256Digest::of(b""));
        assert_eq!(digest.to_string(), LOWER);
        let upper: Sha256Digest = LOWER.to_ascii_uppercase().parse().unwrap();
        assert_eq!(upper, digest);
        assert_eq!(upper.to_string(), LOWER);
        assert_eq!(Sha256Digest::parse_lowercase(LOWER), Ok(digest));
        assert!(Sha256Digest::parse_lowercase(&LOWER.to_ascii_uppercase()).is_err());
        assert_eq!(<[u8; 32]>::from(digest), *digest.as_bytes());
    }

    #[test]
    fn refuses_anything_else_naming_it() {
        for bad in [
            "",
            "ab",
            &LOWER[..63],
            &format!("{LOWER}0"),
            &format!("{LOWER}00"),
            &LOWER.replace('e', "g"),
            &format!(" {}", &LOWER[1..]),
            &format!("sha256:{LOWER}"),
        ] {
            let err = bad.parse::<Sha256Digest>().unwrap_err();
            assert_eq!(err.value, bad);
            assert_eq!(
                err.to_string(),
                format!("{bad:?} is not a sha256 (64 hex digits)")
            );
        }
    }

    #[test]
    fn serde_is_the_hex_text() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct Pin {
            sha256: Sha256Digest,
        }
        let pin = Pin {
            sha256: LOWER.parse().unwrap(),
        };
        let toml_text = toml::to_string(&pin).unwrap();
        assert_eq!(toml_text, format!("sha256 = \"{LOWER}\"\n"));
        assert_eq!(toml::from_str::<Pin>(&toml_text).unwrap(), pin);
        let json = serde_json::to_string(&pin).unwrap();
        assert_eq!(json, format!("{{\"sha256\":\"{LOWER}\"}}"));
        assert_eq!(serde_json::from_str::<Pin>(&json).unwrap(), pin);
        let err = serde_json::from_str::<Pin>("{\"sha256\":\"xyz\"}").unwrap_err();
        assert!(
            err.to_string()
                .contains("\"xyz\" is not a sha256 (64 hex digits)"),
            "{err}"
        );
    }
}
