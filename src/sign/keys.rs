//! ed25519 keys as `NAME:BASE64` text, and the set of trusted public keys.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ed25519_dalek::{SigningKey, VerifyingKey};

/// Why a key could not be made, read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A key name pystore cannot use.
    #[error("{name:?} is not a key name: use letters, digits, '.', '_' and '-' only")]
    BadName { name: String },
    /// Text that is not `NAME:BASE64` of the right length.
    #[error("{what} is not a {kind} key (expected NAME:BASE64 of {len} bytes){hint}")]
    Malformed {
        what: String,
        kind: &'static str,
        len: usize,
        hint: &'static str,
    },
    /// The secret key's public half does not match its seed.
    #[error("{}: the public key stored in the secret key file does not match its secret; regenerate it with `pystore key generate`", path.display())]
    Inconsistent { path: PathBuf },
    /// Reading or writing a key file.
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// No randomness from the operating system.
    #[error("cannot get random bytes from the operating system: {0}")]
    Random(String),
}

fn check_name(name: &str) -> Result<(), KeyError> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(KeyError::BadName {
            name: name.to_owned(),
        })
    }
}

/// Splits `NAME:BASE64` and decodes the base64 into exactly `N` bytes.
fn split<const N: usize>(
    text: &str,
    what: &str,
    kind: &'static str,
) -> Result<(String, [u8; N]), KeyError> {
    let malformed = |hint| KeyError::Malformed {
        what: what.to_owned(),
        kind,
        len: N,
        hint,
    };
    let (name, encoded) = text.trim().split_once(':').ok_or_else(|| malformed(""))?;
    check_name(name)?;
    let bytes = BASE64
        .decode(encoded)
        .map_err(|_| malformed(": the part after ':' is not base64"))?;
    let bytes = <[u8; N]>::try_from(bytes).map_err(|_| malformed(""))?;
    Ok((name.to_owned(), bytes))
}

/// A named ed25519 public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    /// The key's name (the DSSE `keyid`).
    pub name: String,
    /// The verifying key.
    pub key: VerifyingKey,
}

impl PublicKey {
    /// Parses `NAME:BASE64`.
    pub fn parse(text: &str) -> Result<PublicKey, KeyError> {
        let (name, bytes) = split::<32>(text, &format!("{text:?}"), "public")?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::Malformed {
            what: format!("{text:?}"),
            kind: "public",
            len: 32,
            hint: ": the bytes are not an ed25519 point",
        })?;
        Ok(PublicKey { name, key })
    }
}

impl std::fmt::Display for PublicKey {
    /// `NAME:BASE64`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.name, BASE64.encode(self.key.as_bytes()))
    }
}

/// A named ed25519 secret key. Deliberately not `Display`: it is only ever written to a file.
pub struct SecretKey {
    /// The key's name.
    pub name: String,
    key: SigningKey,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({}, public {})", self.name, self.public())
    }
}

impl SecretKey {
    /// A new random key.
    pub fn generate(name: &str) -> Result<SecretKey, KeyError> {
        check_name(name)?;
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(SecretKey {
            name: name.to_owned(),
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey {
            name: self.name.clone(),
            key: self.key.verifying_key(),
        }
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        use ed25519_dalek::Signer;
        self.key.sign(message).to_bytes()
    }

    /// Reads a secret key file (`NAME:BASE64` of seed ‖ public key).
    pub fn read(path: &Path) -> Result<SecretKey, KeyError> {
        let text = fs::read_to_string(path).map_err(|source| KeyError::Io {
            what: "read the secret key",
            path: path.to_path_buf(),
            source,
        })?;
        // Never echo a secret key file's contents in an error: name the file only.
        let (name, bytes) = split::<64>(&text, &path.display().to_string(), "secret")?;
        let seed: [u8; 32] = bytes[..32].try_into().expect("32 bytes");
        let key = SigningKey::from_bytes(&seed);
        if key.verifying_key().as_bytes()[..] != bytes[32..] {
            return Err(KeyError::Inconsistent {
                path: path.to_path_buf(),
            });
        }
        Ok(SecretKey { name, key })
    }

    /// Writes `NAME.secret` (mode 0600, never replacing a file) and `NAME.public` into `dir`
    /// (created if missing); returns their paths.
    pub fn write(&self, dir: &Path) -> Result<(PathBuf, PathBuf), KeyError> {
        let secret = dir.join(format!("{}.secret", self.name));
        let public = dir.join(format!("{}.public", self.name));
        let io = |what, path: &Path| {
            let path = path.to_path_buf();
            move |source| KeyError::Io { what, path, source }
        };
        fs::create_dir_all(dir).map_err(io("create the directory", dir))?;
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options
            .open(&secret)
            .map_err(io("create the secret key file", &secret))?;
        let mut bytes = self.key.to_bytes().to_vec();
        bytes.extend_from_slice(self.key.verifying_key().as_bytes());
        writeln!(file, "{}:{}", self.name, BASE64.encode(&bytes))
            .and_then(|()| file.sync_all())
            .map_err(io("write", &secret))?;
        fs::write(&public, format!("{}\n", self.public())).map_err(io("write", &public))?;
        Ok((secret, public))
    }
}

/// The public keys signatures are checked against (`PYSTORE_TRUSTED_KEYS`).
#[derive(Clone, Debug, Default)]
pub struct TrustedKeys(pub Vec<PublicKey>);

impl TrustedKeys {
    /// Parses white-space separated `NAME:BASE64` keys.
    pub fn parse(text: &str) -> Result<TrustedKeys, KeyError> {
        text.split_whitespace()
            .map(PublicKey::parse)
            .collect::<Result<_, _>>()
            .map(TrustedKeys)
    }

    /// The trusted key called `name`.
    pub fn get(&self, name: &str) -> Option<&PublicKey> {
        self.0.iter().find(|k| k.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_files_and_text() {
        let dir = tempfile::tempdir().unwrap();
        let key = SecretKey::generate("ci-1").unwrap();
        let keys = dir.path().join("not/yet");
        let (secret, public) = key.write(&keys).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&secret).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = SecretKey::read(&secret).unwrap();
        assert_eq!(again.public(), key.public());
        let text = fs::read_to_string(&public).unwrap();
        assert_eq!(PublicKey::parse(&text).unwrap(), key.public());
        assert!(key.write(&keys).is_err(), "never replaces a key");
    }

    #[test]
    fn bad_keys_are_refused() {
        assert!(PublicKey::parse("nocolon").is_err());
        assert!(PublicKey::parse("a b:AAAA").is_err());
        assert!(PublicKey::parse("k:AAAA").is_err());
        assert!(TrustedKeys::parse("").unwrap().0.is_empty());
    }
}
