//! Targets: the platform a bundle is built for (a Rust-style triple plus its libc or macOS floor)
//! and the CPython version it runs.
//!
//! Floors are the oldest system a bundle promises to run on; they decide which binary wheels are
//! compatible (a wheel built for a newer glibc or macOS would not load on the floor system):
//! - glibc targets default to **2.17** (manylinux2014, the oldest still widely built for);
//! - musl targets are **musl 1.2** (what python-build-standalone's musl builds use);
//! - `aarch64-apple-darwin` defaults to **macOS 11.0**, the first release on Apple silicon;
//! - `x86_64-apple-darwin` defaults to **macOS 10.13**, the floor of CPython 3.13's own macOS
//!   builds and of current scientific wheels (numpy 2 ships `macosx_10_13_x86_64`); choosing
//!   10.12 would exclude those wheels for no gain, since 3.13 itself needs 10.13.
//!
//! Windows has no floor in wheel tags.

use std::fmt;
use std::str::FromStr;

/// A CPU architecture pystore builds for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Arch {
    /// 64-bit x86 (`x86_64`, `AMD64`).
    X86_64,
    /// 32-bit x86 (`i686`); Windows only.
    X86,
    /// 64-bit ARM (`aarch64`, `arm64`).
    Aarch64,
}

/// An operating system with the floor that matters for wheel compatibility.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Os {
    /// Windows with the MSVC ABI.
    Windows,
    /// Linux with glibc of at least this version (major, minor).
    LinuxGnu { glibc: (u16, u16) },
    /// Linux with musl of at least this version (major, minor).
    LinuxMusl { musl: (u16, u16) },
    /// macOS of at least this version (major, minor).
    MacOs { version: (u16, u16) },
}

/// The platform of a target: an architecture and an operating system with its floor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Platform {
    /// CPU architecture.
    pub arch: Arch,
    /// Operating system and floor.
    pub os: Os,
}

/// A CPython version, `major.minor.patch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PythonVersion {
    /// Major version (3).
    pub major: u16,
    /// Minor version.
    pub minor: u16,
    /// Patch level (micro).
    pub patch: u16,
}

/// What a bundle is built for: a platform and a CPython version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    /// The platform.
    pub platform: Platform,
    /// The interpreter's version.
    pub python: PythonVersion,
}

/// Why a triple, floor or version was not understood.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    /// An unsupported platform triple.
    #[error("unsupported platform {triple:?}; supported: {}", SUPPORTED_TRIPLES.join(", "))]
    UnknownTriple { triple: String },
    /// A version that is not `X.Y` or `X.Y.Z` of small integers.
    #[error("invalid {what} version {text:?}: expected numbers like {example}")]
    BadVersion {
        what: &'static str,
        text: String,
        example: &'static str,
    },
    /// A floor given for a platform that has no such floor.
    #[error("a {what} floor does not apply to {triple}")]
    FloorMismatch { what: &'static str, triple: String },
    /// A Python version pystore cannot compute tags for.
    #[error("unsupported Python version {version}: pystore supports CPython 3.7 and later")]
    UnsupportedPython { version: String },
}

/// The platform triples pystore knows.
pub const SUPPORTED_TRIPLES: &[&str] = &[
    "x86_64-pc-windows-msvc",
    "i686-pc-windows-msvc",
    "x86_64-unknown-linux-gnu",
    "aarch64-unknown-linux-gnu",
    "x86_64-unknown-linux-musl",
    "aarch64-unknown-linux-musl",
    "aarch64-apple-darwin",
    "x86_64-apple-darwin",
];

/// Default glibc floor of `*-linux-gnu` targets.
pub const DEFAULT_GLIBC: (u16, u16) = (2, 17);
/// The musl version of `*-linux-musl` targets.
pub const DEFAULT_MUSL: (u16, u16) = (1, 2);
/// Default macOS floor of `aarch64-apple-darwin`.
pub const DEFAULT_MACOS_ARM64: (u16, u16) = (11, 0);
/// Default macOS floor of `x86_64-apple-darwin`.
pub const DEFAULT_MACOS_X86_64: (u16, u16) = (10, 13);

impl Arch {
    /// The architecture's name in Rust triples (`x86_64`, `i686`, `aarch64`).
    pub fn triple_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::X86 => "i686",
            Arch::Aarch64 => "aarch64",
        }
    }
}

impl Platform {
    /// Parses a triple such as `x86_64-unknown-linux-gnu`, with the default floor.
    pub fn from_triple(triple: &str) -> Result<Platform, TargetError> {
        let (arch, os) = match triple {
            "x86_64-pc-windows-msvc" => (Arch::X86_64, Os::Windows),
            "i686-pc-windows-msvc" => (Arch::X86, Os::Windows),
            "x86_64-unknown-linux-gnu" => (
                Arch::X86_64,
                Os::LinuxGnu {
                    glibc: DEFAULT_GLIBC,
                },
            ),
            "aarch64-unknown-linux-gnu" => (
                Arch::Aarch64,
                Os::LinuxGnu {
                    glibc: DEFAULT_GLIBC,
                },
            ),
            "x86_64-unknown-linux-musl" => (Arch::X86_64, Os::LinuxMusl { musl: DEFAULT_MUSL }),
            "aarch64-unknown-linux-musl" => (Arch::Aarch64, Os::LinuxMusl { musl: DEFAULT_MUSL }),
            "aarch64-apple-darwin" => (
                Arch::Aarch64,
                Os::MacOs {
                    version: DEFAULT_MACOS_ARM64,
                },
            ),
            "x86_64-apple-darwin" => (
                Arch::X86_64,
                Os::MacOs {
                    version: DEFAULT_MACOS_X86_64,
                },
            ),
            _ => {
                return Err(TargetError::UnknownTriple {
                    triple: triple.to_owned(),
                })
            }
        };
        Ok(Platform { arch, os })
    }

    /// Parses a triple and applies a floor (`"2.28"` for glibc, `"1.2"` for musl, `"12.0"` for
    /// macOS); `None` keeps the default. A floor on Windows is an error.
    pub fn from_triple_with_floor(
        triple: &str,
        floor: Option<&str>,
    ) -> Result<Platform, TargetError> {
        let mut platform = Platform::from_triple(triple)?;
        let Some(floor) = floor else {
            return Ok(platform);
        };
        let mismatch = |what| TargetError::FloorMismatch {
            what,
            triple: triple.to_owned(),
        };
        platform.os = match platform.os {
            Os::Windows => return Err(mismatch("version")),
            Os::LinuxGnu { .. } => Os::LinuxGnu {
                glibc: parse_major_minor("glibc", floor, "2.28")?,
            },
            Os::LinuxMusl { .. } => Os::LinuxMusl {
                musl: parse_major_minor("musl", floor, "1.2")?,
            },
            Os::MacOs { .. } => Os::MacOs {
                version: parse_major_minor("macOS", floor, "11.0")?,
            },
        };
        Ok(platform)
    }

    /// The triple this platform was parsed from.
    pub fn triple(&self) -> &'static str {
        match (self.arch, self.os) {
            (Arch::X86_64, Os::Windows) => "x86_64-pc-windows-msvc",
            (Arch::X86, _) => "i686-pc-windows-msvc",
            (Arch::Aarch64, Os::Windows) => "aarch64-pc-windows-msvc",
            (Arch::X86_64, Os::LinuxGnu { .. }) => "x86_64-unknown-linux-gnu",
            (Arch::Aarch64, Os::LinuxGnu { .. }) => "aarch64-unknown-linux-gnu",
            (Arch::X86_64, Os::LinuxMusl { .. }) => "x86_64-unknown-linux-musl",
            (Arch::Aarch64, Os::LinuxMusl { .. }) => "aarch64-unknown-linux-musl",
            (Arch::X86_64, Os::MacOs { .. }) => "x86_64-apple-darwin",
            (Arch::Aarch64, Os::MacOs { .. }) => "aarch64-apple-darwin",
        }
    }

    /// True on Windows, whose install scheme (`Lib/site-packages`, `Scripts`, `python.exe`)
    /// differs from the Unix one.
    pub fn is_windows(&self) -> bool {
        matches!(self.os, Os::Windows)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.triple())?;
        match self.os {
            Os::Windows => Ok(()),
            Os::LinuxGnu { glibc: (a, b) } => write!(f, " (glibc {a}.{b})"),
            Os::LinuxMusl { musl: (a, b) } => write!(f, " (musl {a}.{b})"),
            Os::MacOs { version: (a, b) } => write!(f, " (macOS {a}.{b})"),
        }
    }
}

impl PythonVersion {
    /// `3.12.7` or `3.12` (patch 0). CPython 3.7 and later.
    pub fn parse(text: &str) -> Result<PythonVersion, TargetError> {
        let bad = || TargetError::BadVersion {
            what: "Python",
            text: text.to_owned(),
            example: "3.12.7",
        };
        let parts: Vec<&str> = text.split('.').collect();
        if !(2..=3).contains(&parts.len()) {
            return Err(bad());
        }
        let mut numbers = [0u16; 3];
        for (slot, part) in numbers.iter_mut().zip(&parts) {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            *slot = part.parse().map_err(|_| bad())?;
        }
        let version = PythonVersion {
            major: numbers[0],
            minor: numbers[1],
            patch: numbers[2],
        };
        if version.major != 3 || version.minor < 7 {
            return Err(TargetError::UnsupportedPython {
                version: text.to_owned(),
            });
        }
        Ok(version)
    }

    /// `3.12`.
    pub fn major_minor(&self) -> String {
        format!("{}.{}", self.major, self.minor)
    }

    /// `312`, as in tags and `python312.dll`.
    pub fn nodot(&self) -> String {
        format!("{}{}", self.major, self.minor)
    }
}

impl fmt::Display for PythonVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl FromStr for PythonVersion {
    type Err = TargetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PythonVersion::parse(s)
    }
}

impl Target {
    /// A target from a triple, an optional floor and a Python version (`3.12.7`).
    pub fn new(triple: &str, floor: Option<&str>, python: &str) -> Result<Target, TargetError> {
        Ok(Target {
            platform: Platform::from_triple_with_floor(triple, floor)?,
            python: PythonVersion::parse(python)?,
        })
    }

    /// The CPython ABI tag of a release build: `cp312` (`cp37m` for 3.7, which still had
    /// pymalloc's `m` flag).
    pub fn abi_tag(&self) -> String {
        if self.python.minor < 8 {
            format!("cp{}m", self.python.nodot())
        } else {
            format!("cp{}", self.python.nodot())
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CPython {} on {}", self.python, self.platform)
    }
}

/// A named target as recipes and locks spell it: a name, a platform triple and, for Linux
/// (gnu) targets, a glibc floor. The one type for this triple: a recipe's `[[targets]]`, a
/// lock's `[[targets]]`, the targets `[tool.pystore]` of a `pylock.toml` records and the
/// targets the lock inputs hash covers all hold one.
///
/// The platform is parsed (with the floor applied) when the spec is made or read, so a bad
/// triple is refused where it is written. Its serde shape is `name`, `platform` (the triple) and
/// `glibc` (omitted when `None`), the bytes lock files always had.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "TargetSpecWire", into = "TargetSpecWire")]
pub struct TargetSpec {
    /// Target name, e.g. `windows-x86_64`.
    pub name: String,
    /// The platform, with the glibc floor applied when `glibc` gives one.
    pub platform: Platform,
    /// The glibc floor as written (`2.28`), kept as text so that a lock or an inputs hash
    /// records exactly what the recipe said.
    pub glibc: Option<String>,
}

/// The serde shape of [`TargetSpec`].
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct TargetSpecWire {
    name: String,
    platform: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    glibc: Option<String>,
}

impl TargetSpec {
    /// A target named `name` for the platform `triple` with an optional glibc floor; refused
    /// when pystore does not know the triple, the floor is not a version, or the platform has
    /// no glibc.
    pub fn new(name: &str, triple: &str, glibc: Option<&str>) -> Result<TargetSpec, TargetError> {
        let platform = Platform::from_triple(triple)?;
        if glibc.is_some() && !matches!(platform.os, Os::LinuxGnu { .. }) {
            return Err(TargetError::FloorMismatch {
                what: "glibc",
                triple: triple.to_owned(),
            });
        }
        Ok(TargetSpec {
            name: name.to_owned(),
            platform: Platform::from_triple_with_floor(triple, glibc)?,
            glibc: glibc.map(str::to_owned),
        })
    }

    /// The target running CPython `python` (`3.12.7`).
    pub fn target(&self, python: &str) -> Result<Target, TargetError> {
        Ok(Target {
            platform: self.platform,
            python: PythonVersion::parse(python)?,
        })
    }
}

impl TryFrom<TargetSpecWire> for TargetSpec {
    type Error = TargetError;
    fn try_from(wire: TargetSpecWire) -> Result<Self, Self::Error> {
        TargetSpec::new(&wire.name, &wire.platform, wire.glibc.as_deref())
    }
}

impl From<TargetSpec> for TargetSpecWire {
    fn from(spec: TargetSpec) -> Self {
        TargetSpecWire {
            name: spec.name,
            platform: spec.platform.triple().to_owned(),
            glibc: spec.glibc,
        }
    }
}

fn parse_major_minor(
    what: &'static str,
    text: &str,
    example: &'static str,
) -> Result<(u16, u16), TargetError> {
    let bad = || TargetError::BadVersion {
        what,
        text: text.to_owned(),
        example,
    };
    let (major, minor) = text.split_once('.').ok_or_else(bad)?;
    let number = |part: &str| -> Result<u16, TargetError> {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        part.parse().map_err(|_| bad())
    };
    Ok((number(major)?, number(minor)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triples_round_trip() {
        for triple in SUPPORTED_TRIPLES {
            assert_eq!(Platform::from_triple(triple).unwrap().triple(), *triple);
        }
        assert!(matches!(
            Platform::from_triple("riscv64-unknown-linux-gnu"),
            Err(TargetError::UnknownTriple { .. })
        ));
    }

    #[test]
    fn floors() {
        let p = Platform::from_triple_with_floor("x86_64-unknown-linux-gnu", Some("2.28")).unwrap();
        assert_eq!(p.os, Os::LinuxGnu { glibc: (2, 28) });
        assert_eq!(
            Platform::from_triple("x86_64-apple-darwin").unwrap().os,
            Os::MacOs { version: (10, 13) }
        );
        assert!(Platform::from_triple_with_floor("x86_64-pc-windows-msvc", Some("1.0")).is_err());
        assert!(Platform::from_triple_with_floor("x86_64-unknown-linux-gnu", Some("2")).is_err());
        assert!(Platform::from_triple_with_floor("x86_64-unknown-linux-gnu", Some("2.x")).is_err());
    }

    #[test]
    fn python_versions() {
        let v = PythonVersion::parse("3.12.7").unwrap();
        assert_eq!((v.major, v.minor, v.patch), (3, 12, 7));
        assert_eq!(v.nodot(), "312");
        assert_eq!(PythonVersion::parse("3.13").unwrap().patch, 0);
        for bad in [
            "3", "3.12.7.1", "3..1", "3.12a", "", "2.7.18", "3.6.9", "+3.1",
        ] {
            assert!(PythonVersion::parse(bad).is_err(), "{bad}");
        }
        let t = Target::new("x86_64-pc-windows-msvc", None, "3.7.9").unwrap();
        assert_eq!(t.abi_tag(), "cp37m");
    }
}
