//! DSSE envelopes (Dead Simple Signing Envelope, v1): a payload, its type, and signatures over
//! the pre-authentication encoding (PAE) of both, so a signature cannot be replayed for another
//! payload type.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ed25519_dalek::Verifier;
use serde::{Deserialize, Serialize};

use super::keys::{SecretKey, TrustedKeys};

/// The in-toto payload type.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// A DSSE envelope, with the field names of the specification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// base64 of the payload bytes.
    pub payload: String,
    /// The payload's media type.
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// Signatures over PAE(payloadType, payload).
    pub signatures: Vec<Signature>,
}

/// One signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// The signing key's name.
    pub keyid: String,
    /// base64 of the ed25519 signature.
    pub sig: String,
}

/// Why an envelope does not verify.
#[derive(Debug, thiserror::Error)]
pub enum DsseError {
    /// No signature at all.
    #[error("the envelope has no signature")]
    Unsigned,
    /// Payload or signature not base64.
    #[error("the envelope's {0} is not base64")]
    Encoding(&'static str),
    /// Signed by keys nobody trusts.
    #[error("signed by {} but none of these is a trusted key; add its public key to PYSTORE_TRUSTED_KEYS", keyids.join(", "))]
    Untrusted { keyids: Vec<String> },
    /// A trusted key's name, but the signature does not match.
    #[error("the signature by {keyid} does not match the payload: the provenance was altered or signed by another key of that name")]
    BadSignature { keyid: String },
}

/// PAE(type, body) = "DSSEv1" SP len(type) SP type SP len(body) SP body.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

impl Envelope {
    /// Signs `payload` with `key` (ed25519 is deterministic: same key and payload, same bytes).
    pub fn sign(payload_type: &str, payload: &[u8], key: &SecretKey) -> Envelope {
        let signature = key.sign(&pae(payload_type, payload));
        Envelope {
            payload: BASE64.encode(payload),
            payload_type: payload_type.to_owned(),
            signatures: vec![Signature {
                keyid: key.name.clone(),
                sig: BASE64.encode(signature),
            }],
        }
    }

    /// The decoded payload.
    pub fn payload_bytes(&self) -> Result<Vec<u8>, DsseError> {
        BASE64
            .decode(&self.payload)
            .map_err(|_| DsseError::Encoding("payload"))
    }

    /// Checks that a trusted key signed the envelope; returns that key's name.
    pub fn verify(&self, trusted: &TrustedKeys) -> Result<String, DsseError> {
        if self.signatures.is_empty() {
            return Err(DsseError::Unsigned);
        }
        let message = pae(&self.payload_type, &self.payload_bytes()?);
        let mut untrusted = Vec::new();
        for signature in &self.signatures {
            let Some(key) = trusted.get(&signature.keyid) else {
                untrusted.push(signature.keyid.clone());
                continue;
            };
            let bytes = BASE64
                .decode(&signature.sig)
                .map_err(|_| DsseError::Encoding("signature"))?;
            let sig = <[u8; 64]>::try_from(bytes.as_slice())
                .map(|b| ed25519_dalek::Signature::from_bytes(&b))
                .map_err(|_| DsseError::Encoding("signature"))?;
            return match key.key.verify(&message, &sig) {
                Ok(()) => Ok(key.name.clone()),
                Err(_) => Err(DsseError::BadSignature {
                    keyid: signature.keyid.clone(),
                }),
            };
        }
        Err(DsseError::Untrusted { keyids: untrusted })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_specification_example() {
        // From the DSSE protocol document.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    #[test]
    fn only_the_signing_key_verifies() {
        let key = SecretKey::generate("one").unwrap();
        let other = SecretKey::generate("one").unwrap();
        let envelope = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, b"{}", &key);
        assert_eq!(
            Envelope::sign(IN_TOTO_PAYLOAD_TYPE, b"{}", &key),
            envelope,
            "deterministic"
        );
        assert_eq!(
            envelope.verify(&TrustedKeys(vec![key.public()])).unwrap(),
            "one"
        );
        assert!(matches!(
            envelope.verify(&TrustedKeys(vec![other.public()])),
            Err(DsseError::BadSignature { .. })
        ));
        assert!(matches!(
            envelope.verify(&TrustedKeys::default()),
            Err(DsseError::Untrusted { .. })
        ));
        let mut tampered = envelope.clone();
        tampered.payload = BASE64.encode(b"{\"x\":1}");
        assert!(tampered.verify(&TrustedKeys(vec![key.public()])).is_err());
    }
}
