//! Wheel file names (`{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl`, from the
//! binary distribution format) and their compatibility with a target.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use pep440_rs::Version;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::tags::{target_tags, Tag};
use super::target::Target;
use crate::fetch::name::normalize_name;

/// Why a file name is not a wheel's.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{filename:?} is not a valid wheel file name: {reason}")]
pub struct WheelFilenameError {
    /// The offending name.
    pub filename: String,
    /// What is wrong with it.
    pub reason: String,
}

/// A parsed wheel file name. It keeps the text it was parsed from, which is what it displays
/// and serialises as (a lock writes back exactly the name it read), and deserialises by parsing,
/// so a bad name fails where it is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WheelFilename {
    /// The file name as given.
    filename: String,
    /// The distribution name as written in the file name (`typing_extensions`).
    pub name: String,
    /// The version.
    pub version: Version,
    /// The optional build tag (`1`, `2abc`), which starts with a digit.
    pub build: Option<String>,
    /// Python tags (`py2.py3` gives two).
    pub python_tags: Vec<String>,
    /// ABI tags.
    pub abi_tags: Vec<String>,
    /// Platform tags.
    pub platform_tags: Vec<String>,
}

impl WheelFilename {
    /// Parses `pkg-1.0-py3-none-any.whl` (a bare file name, not a path).
    pub fn parse(filename: &str) -> Result<WheelFilename, WheelFilenameError> {
        let err = |reason: &str| WheelFilenameError {
            filename: filename.to_owned(),
            reason: reason.to_owned(),
        };
        let stem = filename
            .strip_suffix(".whl")
            .ok_or_else(|| err("it does not end in .whl"))?;
        let parts: Vec<&str> = stem.split('-').collect();
        let (name, version, build, python, abi, platform) = match parts.as_slice() {
            [n, v, py, abi, plat] => (*n, *v, None, *py, *abi, *plat),
            [n, v, b, py, abi, plat] => (*n, *v, Some(*b), *py, *abi, *plat),
            _ => return Err(err("expected 5 or 6 dash-separated parts")),
        };
        let name_ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.'))
            && name.starts_with(|c: char| c.is_ascii_alphanumeric())
            && name.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !name_ok {
            return Err(err(
                "the distribution name has characters other than letters, digits, '_' and '.'",
            ));
        }
        let version = Version::from_str(version)
            .map_err(|e| err(&format!("invalid version {version:?}: {e}")))?;
        if let Some(build) = build {
            if !build.starts_with(|c: char| c.is_ascii_digit())
                || !build.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return Err(err("the build tag must start with a digit"));
            }
        }
        let split = |field: &str, what: &str| -> Result<Vec<String>, WheelFilenameError> {
            let tags: Vec<String> = field.split('.').map(str::to_owned).collect();
            if tags
                .iter()
                .any(|t| t.is_empty() || !t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            {
                return Err(err(&format!("invalid {what} tag {field:?}")));
            }
            Ok(tags)
        };
        Ok(WheelFilename {
            filename: filename.to_owned(),
            name: name.to_owned(),
            version,
            build: build.map(str::to_owned),
            python_tags: split(python, "python")?,
            abi_tags: split(abi, "ABI")?,
            platform_tags: split(platform, "platform")?,
        })
    }

    /// The file name, exactly as parsed.
    pub fn as_str(&self) -> &str {
        &self.filename
    }

    /// The PEP 503 normalised distribution name.
    pub fn normalized_name(&self) -> String {
        normalize_name(&self.name)
    }

    /// Every tag the wheel declares: the product of its python, ABI and platform tag sets.
    pub fn tags(&self) -> Vec<Tag> {
        let mut tags = Vec::new();
        for python in &self.python_tags {
            for abi in &self.abi_tags {
                for platform in &self.platform_tags {
                    tags.push(Tag {
                        interpreter: python.clone(),
                        abi: abi.clone(),
                        platform: platform.clone(),
                    });
                }
            }
        }
        tags
    }

    /// The compressed tag triple as in the file name: `py2.py3-none-any`.
    pub fn tag_string(&self) -> String {
        format!(
            "{}-{}-{}",
            self.python_tags.join("."),
            self.abi_tags.join("."),
            self.platform_tags.join(".")
        )
    }

    /// The `.dist-info` directory name inside the wheel (`{name}-{version}.dist-info`, with the
    /// name as in the file name).
    pub fn dist_info_dir(&self) -> String {
        format!("{}-{}.dist-info", self.name, self.version)
    }
}

/// The file name exactly as parsed (not rebuilt from its parts, which could spell the version
/// differently).
impl fmt::Display for WheelFilename {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.filename)
    }
}

impl AsRef<str> for WheelFilename {
    fn as_ref(&self) -> &str {
        &self.filename
    }
}

impl Serialize for WheelFilename {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.filename)
    }
}

impl<'de> Deserialize<'de> for WheelFilename {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<WheelFilename, D::Error> {
        let text = String::deserialize(deserializer)?;
        WheelFilename::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl FromStr for WheelFilename {
    type Err = WheelFilenameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        WheelFilename::parse(s)
    }
}

/// A target's tags with their priorities, for ranking many wheels against one target.
#[derive(Clone, Debug)]
pub struct TagPriorities {
    ranks: HashMap<Tag, usize>,
}

impl TagPriorities {
    /// The priorities of `target`'s tags: 0 for the best, increasing.
    pub fn new(target: &Target) -> TagPriorities {
        let mut ranks = HashMap::new();
        for (rank, tag) in target_tags(target).into_iter().enumerate() {
            ranks.entry(tag).or_insert(rank);
        }
        TagPriorities { ranks }
    }

    /// The priority of `wheel` (its best tag's rank, 0 is best), or `None` if incompatible.
    pub fn rank(&self, wheel: &WheelFilename) -> Option<usize> {
        wheel
            .tags()
            .iter()
            .filter_map(|tag| self.ranks.get(tag).copied())
            .min()
    }
}

/// Whether `wheel` can be installed for `target`: `Some(priority)` (0 is the best match; lower
/// is preferred) or `None`. For many wheels, build one [`TagPriorities`] instead.
pub fn is_compatible(wheel: &WheelFilename, target: &Target) -> Option<usize> {
    TagPriorities::new(target).rank(wheel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names() {
        let w = WheelFilename::parse("Typing.Extensions-4.12.2-1a-py2.py3-none-any.whl").unwrap();
        assert_eq!(w.name, "Typing.Extensions");
        assert_eq!(w.normalized_name(), "typing-extensions");
        assert_eq!(w.version.to_string(), "4.12.2");
        assert_eq!(w.build.as_deref(), Some("1a"));
        assert_eq!(w.python_tags, ["py2", "py3"]);
        assert_eq!(w.tags().len(), 2);
        assert_eq!(
            w.to_string(),
            "Typing.Extensions-4.12.2-1a-py2.py3-none-any.whl"
        );
        let w = WheelFilename::parse(
            "numpy-2.1.2-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        )
        .unwrap();
        assert_eq!(w.platform_tags.len(), 2);
        assert_eq!(w.dist_info_dir(), "numpy-2.1.2.dist-info");
    }

    #[test]
    fn keeps_and_serialises_the_text_it_was_parsed_from() {
        // `1.0.RC1` displays as `1.0rc1` once parsed as a version; the file name stays as given.
        let text = "Pkg_Name-1.0.RC1-py3-none-any.whl";
        let w = WheelFilename::parse(text).unwrap();
        assert_eq!(w.version.to_string(), "1.0rc1");
        assert_eq!(w.to_string(), text);
        assert_eq!(w.as_str(), text);
        #[derive(Serialize, Deserialize, Debug, PartialEq)]
        struct Pin {
            wheel: WheelFilename,
        }
        let toml_text = toml::to_string(&Pin { wheel: w.clone() }).unwrap();
        assert_eq!(toml_text, format!("wheel = \"{text}\"\n"));
        assert_eq!(toml::from_str::<Pin>(&toml_text).unwrap(), Pin { wheel: w });
        let err = toml::from_str::<Pin>("wheel = \"pkg-1.0.zip\"").unwrap_err();
        assert!(
            err.to_string()
                .contains("\"pkg-1.0.zip\" is not a valid wheel file name"),
            "{err}"
        );
    }

    #[test]
    fn refuses_bad_names() {
        for bad in [
            "pkg-1.0-py3-none-any.zip",
            "pkg-1.0-none-any.whl",
            "pkg-1.0-x-py3-none-any.whl",
            "pkg-not.a.version!-py3-none-any.whl",
            "pk/g-1.0-py3-none-any.whl",
            "-1.0-py3-none-any.whl",
            "pkg-1.0-py3..py2-none-any.whl",
            "pkg-1.0-1-2-py3-none-any.whl",
        ] {
            assert!(WheelFilename::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn normalises() {
        assert_eq!(normalize_name("Foo__Bar-.baz"), "foo-bar-baz");
        assert_eq!(normalize_name("PyYAML"), "pyyaml");
    }

    #[test]
    fn compatibility() {
        let win = Target::new("x86_64-pc-windows-msvc", None, "3.12.7").unwrap();
        let linux = Target::new("x86_64-unknown-linux-gnu", None, "3.12.7").unwrap();
        let any = WheelFilename::parse("six-1.16.0-py2.py3-none-any.whl").unwrap();
        let native = WheelFilename::parse("lxml-5.3.0-cp312-cp312-win_amd64.whl").unwrap();
        let abi3 = WheelFilename::parse("cryptography-43.0.1-cp39-abi3-win_amd64.whl").unwrap();
        let ml = WheelFilename::parse("x-1-cp312-cp312-manylinux_2_28_x86_64.whl").unwrap();
        let ml17 =
            WheelFilename::parse("x-1-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")
                .unwrap();
        assert_eq!(is_compatible(&native, &win), Some(0));
        let p_abi3 = is_compatible(&abi3, &win).unwrap();
        let p_any = is_compatible(&any, &win).unwrap();
        assert!(0 < p_abi3 && p_abi3 < p_any);
        assert_eq!(is_compatible(&native, &linux), None);
        assert_eq!(
            is_compatible(&ml, &linux),
            None,
            "glibc 2.28 wheel on a 2.17 floor"
        );
        assert!(is_compatible(&ml17, &linux).is_some());
        let cp311 = WheelFilename::parse("x-1-cp311-cp311-win_amd64.whl").unwrap();
        assert_eq!(is_compatible(&cp311, &win), None);
    }
}
