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
    write_value(value, &mut out, &mut String::new())?;
    Ok(out)
}

/// Serialises `value` canonically as a `String`.
pub fn to_string(value: &Value) -> Result<String, CanonicalJsonError> {
    // Only valid UTF-8 is ever written.
    to_vec(value).map(|bytes| String::from_utf8(bytes).expect("canonical JSON is UTF-8"))
}

fn write_value(
    value: &Value,
    out: &mut Vec<u8>,
    pointer: &mut String,
) -> Result<(), CanonicalJsonError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(number) => {
            if number.is_f64() {
                return Err(CanonicalJsonError::NonIntegerNumber {
                    pointer: if pointer.is_empty() {
                        "/".into()
                    } else {
                        pointer.clone()
                    },
                    number: number.to_string(),
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
                let len = pointer.len();
                pointer.push_str(&format!("/{index}"));
                write_value(item, out, pointer)?;
                pointer.truncate(len);
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
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                write_value(&map[key], out, pointer)?;
                pointer.truncate(len);
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_string(text: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in text.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
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
}
