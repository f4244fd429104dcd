//! Canonical JSON: the byte form that ids and manifests are hashed from.
//!
//! Object keys sorted by their UTF-8 bytes, no insignificant white space, strings escaped only
//! where JSON requires it (`"`, `\`, control characters as `\u00XX` except `\b \f \n \r \t`),
//! integers only. Floating-point numbers are refused: their text form is not canonical across
//! implementations, and nothing we hash needs them.

use serde_json::Value;

/// Why a value has no canonical form.
#[derive(Debug, thiserror::Error)]
pub enum CanonicalJsonError {
    /// A floating-point number was found at the given JSON pointer.
    #[error("canonical JSON allows only integers, found the number {number} at {pointer}")]
    NonIntegerNumber { pointer: String, number: String },
}

/// Serialises `value` canonically.
pub fn to_vec(value: &Value) -> Result<Vec<u8>, CanonicalJsonError> {
    let mut out = Vec::new();
    write_value(value, &mut out)?;
    Ok(out)
}

/// Serialises `value` canonically as a `String`.
pub fn to_string(value: &Value) -> Result<String, CanonicalJsonError> {
    // Only valid UTF-8 is ever written.
    to_vec(value).map(|bytes| String::from_utf8(bytes).expect("canonical JSON is UTF-8"))
}

/// Appends `value`, canonically, to `out`: for a writer that puts a large document together
/// from parts (a bundle manifest's file list) without building one [`Value`] of it all.
pub fn write_value(value: &Value, out: &mut Vec<u8>) -> Result<(), CanonicalJsonError> {
    write_value_at(value, out).map_err(|found| CanonicalJsonError::NonIntegerNumber {
        pointer: found.pointer(),
        number: found.number,
    })
}

/// A floating-point number found while writing, and the path to it, innermost segment first
/// (the path is only built on this rare error, not for every key written).
struct FoundFloat {
    number: String,
    segments: Vec<String>,
}

impl FoundFloat {
    /// The JSON pointer (RFC 6901) to the number.
    fn pointer(&self) -> String {
        if self.segments.is_empty() {
            return "/".into();
        }
        self.segments
            .iter()
            .rev()
            .map(|segment| format!("/{}", segment.replace('~', "~0").replace('/', "~1")))
            .collect()
    }
}

fn write_value_at(value: &Value, out: &mut Vec<u8>) -> Result<(), FoundFloat> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(number) => {
            if number.is_f64() {
                return Err(FoundFloat {
                    number: number.to_string(),
                    segments: Vec::new(),
                });
            }
            out.extend_from_slice(number.to_string().as_bytes());
        }
        Value::String(text) => write_string(text, out),
        Value::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_value_at(item, out).map_err(|mut found| {
                    found.segments.push(index.to_string());
                    found
                })?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            out.push(b'{');
            for (index, key) in keys.into_iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_string(key, out);
                out.push(b':');
                write_value_at(&map[key], out).map_err(|mut found| {
                    found.segments.push(key.clone());
                    found
                })?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// Appends `text` as a canonical JSON string (quoted, escaped only where JSON requires).
pub fn write_string(text: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    // Runs of bytes that need no escape are copied whole; every byte of a multi-byte UTF-8
    // character is 0x80 or more, so only ASCII bytes are ever escaped.
    let bytes = text.as_bytes();
    let mut run = 0;
    for (index, &byte) in bytes.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x0c => b"\\f",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[run..index]);
        if escape.is_empty() {
            out.extend_from_slice(format!("\\u{byte:04x}").as_bytes());
        } else {
            out.extend_from_slice(escape);
        }
        run = index + 1;
    }
    out.extend_from_slice(&bytes[run..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_keys_by_bytes_and_drops_white_space() {
        let value = json!({"b": 1, "a": [true, null, "x"], "B": {"z": -3, "é": "\u{1}\n"}});
        assert_eq!(
            to_string(&value).unwrap(),
            r#"{"B":{"z":-3,"é":"\u0001\n"},"a":[true,null,"x"],"b":1}"#
        );
    }

    #[test]
    fn refuses_floats_naming_where() {
        let err = to_vec(&json!({"p": {"q": [1, 2.5]}})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "canonical JSON allows only integers, found the number 2.5 at /p/q/1"
        );
    }

    #[test]
    fn escapes_only_what_json_requires_around_unescaped_runs() {
        let text = "a\"b\\c\u{1f}\u{7f}é\u{8}\u{c}\r\n\tz\u{0}";
        let mut out = Vec::new();
        write_string(text, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"a\\\"b\\\\c\\u001f\u{7f}é\\b\\f\\r\\n\\tz\\u0000\""
        );
    }
}
