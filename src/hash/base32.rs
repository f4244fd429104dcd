//! Base32 in the alphabet Nix uses for store paths, written most significant bit first.
//!
//! The alphabet omits `e`, `o`, `u` and `t` so that ids cannot spell common words and cannot be
//! confused with `0`/`1`. Unlike Nix (which emits the last bits first) we write the bit string in
//! natural order: the first character holds the top five bits of the first byte. A trailing group
//! shorter than five bits is padded with zero bits; there is no `=` padding.

/// The 32 characters, in value order.
pub const ALPHABET: &[u8; 32] = b"0123456789abcdfghijklmnpqrsvwxyz";

/// Encodes `bytes` as base32 (ceil(8n/5) characters).
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity((bytes.len() * 8).div_ceil(5));
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Decodes a base32 string produced by [`encode`]; `None` on a character outside the alphabet or
/// non-zero padding bits.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for c in text.bytes() {
        let value = ALPHABET.iter().position(|&a| a == c)? as u32;
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    (buffer == 0).then_some(out)
}

/// True when every character of `text` is in the alphabet.
pub fn is_base32(text: &str) -> bool {
    text.bytes().all(|c| ALPHABET.contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_known_values() {
        assert_eq!(encode(&[]), "");
        assert_eq!(encode(&[0]), "00");
        assert_eq!(encode(&[0xff]), "zw");
        assert_eq!(encode(&[0xff; 5]), "zzzzzzzz");
        assert_eq!(encode(&[0x08, 0x42, 0x10, 0x84, 0x21]), "11111111");
    }

    #[test]
    fn round_trips_every_length() {
        for len in 0..=41 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(decode(&encode(&bytes)).unwrap(), bytes, "length {len}");
        }
    }

    #[test]
    fn rejects_foreign_characters_and_dirty_padding() {
        assert_eq!(decode("0e"), None);
        assert_eq!(
            decode("zz"),
            None,
            "the last 2 bits of 'zz' are padding and must be zero"
        );
        assert!(is_base32("0123456789abcdfghijklmnpqrsvwxyz"));
        assert!(!is_base32("hello"));
    }
}
