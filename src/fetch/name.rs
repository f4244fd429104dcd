//! Project names: PEP 503 normalisation ([`normalize_name`]) and [`PackageName`], a name
//! normalised once where it enters, so comparisons and map keys past that point are exact.
//! The index client needs it for project URLs; the python, lock and recipe layers use it from
//! here.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// PEP 503 name normalisation: lower case, and every run of `-`, `_`, `.` becomes one `-`
/// (`re.sub(r"[-_.]+", "-", name).lower()`).
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_separator = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_separator {
                out.push('-');
            }
            in_separator = true;
        } else {
            out.extend(c.to_lowercase());
            in_separator = false;
        }
    }
    out
}

/// A project name, PEP 503 normalised (`typing-extensions`, never `Typing_Extensions`).
/// Ordered, compared and hashed as its text, and serialised as it, so a lock keyed or sorted by
/// names is byte-identical to one that held strings.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PackageName(String);

/// Why a text is not a project name; names the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a project name (letters, digits, '-', '_' and '.', starting and ending with a letter or digit)")]
pub struct PackageNameError {
    /// The text that was given.
    pub value: String,
}

impl PackageName {
    /// Normalises a name another parser has already checked (a PEP 508 requirement's, a wheel
    /// file name's, a METADATA `Name`); text from a file goes through [`FromStr`] instead.
    pub fn new(name: &str) -> PackageName {
        PackageName(normalize_name(name))
    }

    /// The normalised text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for PackageName {
    type Err = PackageNameError;

    /// Checks the PEP 508 name syntax (case-insensitive
    /// `^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$`), then normalises.
    fn from_str(text: &str) -> Result<PackageName, PackageNameError> {
        let ends_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
        let valid = ends_ok(text.chars().next())
            && ends_ok(text.chars().next_back())
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
            return Err(PackageNameError {
                value: text.to_owned(),
            });
        }
        Ok(PackageName::new(text))
    }
}

impl fmt::Display for PackageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PackageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl AsRef<str> for PackageName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Lets maps keyed by names be looked up with a `&str` (the text orders and hashes the same).
impl Borrow<str> for PackageName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for PackageName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for PackageName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl From<PackageName> for String {
    fn from(name: PackageName) -> String {
        name.0
    }
}

impl Serialize for PackageName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PackageName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<PackageName, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises() {
        assert_eq!(normalize_name("Foo.Bar__baz-"), "foo-bar-baz-");
        assert_eq!(normalize_name("psycopg2_binary"), "psycopg2-binary");
        assert_eq!(normalize_name("Foo__Bar-.baz"), "foo-bar-baz");
        assert_eq!(normalize_name("PyYAML"), "pyyaml");
    }

    #[test]
    fn parses_valid_names_normalised() {
        for (text, normal) in [
            ("lxml", "lxml"),
            ("Typing_Extensions", "typing-extensions"),
            ("zope.interface", "zope-interface"),
            ("A__b--C", "a-b-c"),
            ("x", "x"),
            ("2to3", "2to3"),
        ] {
            let name: PackageName = text.parse().unwrap();
            assert_eq!(name.as_str(), normal);
            assert_eq!(name.to_string(), normal);
            assert_eq!(name, PackageName::new(text));
        }
    }

    #[test]
    fn refuses_non_names_naming_them() {
        for bad in ["", "-lxml", "lxml_", "ly ml", "lxml[extra]", "lx/ml", "é"] {
            let err = bad.parse::<PackageName>().unwrap_err();
            assert_eq!(err.value, bad);
            assert!(err
                .to_string()
                .starts_with(&format!("{bad:?} is not a project name")));
        }
    }

    #[test]
    fn orders_as_text_and_serialises_as_it() {
        let mut names: Vec<PackageName> = ["typing-extensions", "anyio", "typing", "a-b"]
            .iter()
            .map(|n| n.parse().unwrap())
            .collect();
        names.sort();
        let texts: Vec<&str> = names.iter().map(PackageName::as_str).collect();
        assert_eq!(texts, ["a-b", "anyio", "typing", "typing-extensions"]);
        let map: std::collections::BTreeMap<PackageName, u8> =
            [(PackageName::new("Anyio"), 1)].into_iter().collect();
        assert_eq!(map.get("anyio"), Some(&1));
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct Pin {
            name: PackageName,
        }
        let text = toml::to_string(&Pin {
            name: PackageName::new("typing-extensions"),
        })
        .unwrap();
        assert_eq!(text, "name = \"typing-extensions\"\n");
        assert_eq!(
            toml::from_str::<Pin>("name = \"Typing_Extensions\"").unwrap(),
            Pin {
                name: PackageName::new("typing-extensions")
            }
        );
        assert!(toml::from_str::<Pin>("name = \"-x\"").is_err());
    }
}
