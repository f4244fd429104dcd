//! PEP 508 marker environments of targets, and marker evaluation against them.
//!
//! The values are those a release CPython of the target's version reports on that platform
//! (`sys.platform`, `platform.system()`, `os.name`, `platform.machine()` …). Two cannot be
//! known without the target machine, `platform_release` (the kernel or OS build) and
//! `platform_version` (a free-form OS build string); they are empty, so markers comparing them
//! are false, which is the conservative answer for a bundle that runs on many machines of a kind.
//! `platform_machine` on 32-bit Windows is `x86`, what a 32-bit Windows reports (a 32-bit Python
//! on 64-bit Windows reports the OS's `AMD64`; a bundle cannot know where it lands).

use std::collections::BTreeMap;
use std::str::FromStr;

use pep508_rs::{ExtraName, MarkerEnvironment, MarkerEnvironmentBuilder, MarkerTree};

use super::target::{Arch, Os, Target};

/// Why a marker could not be evaluated.
#[derive(Debug, thiserror::Error)]
pub enum MarkerError {
    /// The marker expression does not parse.
    /// (The parser's reason without its underlined copy of the input, which `marker` already
    /// shows.)
    #[error("invalid environment marker {marker:?}: {source}")]
    Parse {
        marker: String,
        source: pep508_rs::Pep508ErrorSource,
    },
    /// An extra name that is not a valid name.
    #[error("invalid extra name {extra:?}: {source}")]
    Extra {
        extra: String,
        source: pep508_rs::InvalidNameError,
    },
    /// The target's versions could not be turned into marker versions (a bug).
    #[error("cannot build the marker environment of {target}: {source}")]
    Environment {
        target: String,
        source: pep508_rs::pep440_rs::VersionParseError,
    },
}

/// The marker variables of `target`, by name, as strings (for display, lock files and tests).
pub fn marker_values(target: &Target) -> BTreeMap<&'static str, String> {
    let (os_name, sys_platform, platform_system) = match target.platform.os {
        Os::Windows => ("nt", "win32", "Windows"),
        Os::LinuxGnu { .. } | Os::LinuxMusl { .. } => ("posix", "linux", "Linux"),
        Os::MacOs { .. } => ("posix", "darwin", "Darwin"),
    };
    let machine = match (target.platform.os, target.platform.arch) {
        (Os::Windows, Arch::X86_64) => "AMD64",
        (Os::Windows, Arch::X86) => "x86",
        (Os::Windows, Arch::Aarch64) => "ARM64",
        (Os::MacOs { .. }, Arch::Aarch64) => "arm64",
        (_, Arch::Aarch64) => "aarch64",
        (_, Arch::X86_64) => "x86_64",
        (_, Arch::X86) => "i686",
    };
    let full = target.python.to_string();
    BTreeMap::from([
        ("implementation_name", "cpython".to_owned()),
        ("implementation_version", full.clone()),
        ("os_name", os_name.to_owned()),
        ("platform_machine", machine.to_owned()),
        ("platform_python_implementation", "CPython".to_owned()),
        ("platform_release", String::new()),
        ("platform_system", platform_system.to_owned()),
        ("platform_version", String::new()),
        ("python_full_version", full),
        ("python_version", target.python.major_minor()),
        ("sys_platform", sys_platform.to_owned()),
    ])
}

/// The PEP 508 marker environment of `target`.
pub fn marker_environment(target: &Target) -> Result<MarkerEnvironment, MarkerError> {
    let values = marker_values(target);
    let get = |key: &str| values.get(key).map(String::as_str).unwrap_or_default();
    MarkerEnvironment::try_from(MarkerEnvironmentBuilder {
        implementation_name: get("implementation_name"),
        implementation_version: get("implementation_version"),
        os_name: get("os_name"),
        platform_machine: get("platform_machine"),
        platform_python_implementation: get("platform_python_implementation"),
        platform_release: get("platform_release"),
        platform_system: get("platform_system"),
        platform_version: get("platform_version"),
        python_full_version: get("python_full_version"),
        python_version: get("python_version"),
        sys_platform: get("sys_platform"),
    })
    .map_err(|err| MarkerError::Environment {
        target: target.to_string(),
        source: err,
    })
}

/// Evaluates a marker expression (`sys_platform == "win32" and python_version >= "3.10"`)
/// for `target`, with the given extras requested. An empty expression is true.
pub fn evaluate_marker(
    marker: &str,
    target: &Target,
    extras: &[&str],
) -> Result<bool, MarkerError> {
    if marker.trim().is_empty() {
        return Ok(true);
    }
    let tree = MarkerTree::from_str(marker).map_err(|err| MarkerError::Parse {
        marker: marker.to_owned(),
        source: err.message,
    })?;
    let extras = extras
        .iter()
        .map(|extra| {
            ExtraName::from_str(extra).map_err(|err| MarkerError::Extra {
                extra: (*extra).to_owned(),
                source: err,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(tree.evaluate(&marker_environment(target)?, &extras))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(marker: &str, triple: &str, python: &str) -> bool {
        evaluate_marker(marker, &Target::new(triple, None, python).unwrap(), &[]).unwrap()
    }

    #[test]
    fn platform_markers() {
        let win = "x86_64-pc-windows-msvc";
        let linux = "aarch64-unknown-linux-gnu";
        let mac = "aarch64-apple-darwin";
        assert!(eval("sys_platform == 'win32'", win, "3.12.7"));
        assert!(eval(
            "os_name == 'nt' and platform_machine == 'AMD64'",
            win,
            "3.12.7"
        ));
        assert!(!eval("sys_platform == 'win32'", linux, "3.12.7"));
        assert!(eval(
            "platform_system == 'Linux' and platform_machine == 'aarch64'",
            linux,
            "3.12.7"
        ));
        assert!(eval(
            "sys_platform == 'darwin' and platform_machine == 'arm64'",
            mac,
            "3.13.0"
        ));
        assert!(eval(
            "platform_python_implementation == 'CPython'",
            mac,
            "3.13.0"
        ));
        assert!(eval("implementation_name == 'cpython'", mac, "3.13.0"));
        assert!(eval("", mac, "3.13.0"));
    }

    #[test]
    fn version_markers() {
        let win = "x86_64-pc-windows-msvc";
        assert!(eval("python_version >= '3.10'", win, "3.12.7"));
        assert!(!eval("python_version < '3.12'", win, "3.12.7"));
        assert!(eval("python_full_version >= '3.12.6'", win, "3.12.7"));
        assert!(!eval("python_full_version >= '3.12.8'", win, "3.12.7"));
        assert!(
            eval("python_version > '3.9'", win, "3.12.7"),
            "3.12 > 3.9 as versions, not strings"
        );
    }

    #[test]
    fn extras_and_errors() {
        let t = Target::new("x86_64-unknown-linux-gnu", None, "3.12.7").unwrap();
        assert!(evaluate_marker("extra == 'socks'", &t, &["socks"]).unwrap());
        assert!(
            evaluate_marker("extra == 'SOCKS'", &t, &["socks"]).unwrap(),
            "PEP 685 normalises extras"
        );
        assert!(!evaluate_marker("extra == 'socks'", &t, &[]).unwrap());
        let err = evaluate_marker("python_version >=", &t, &[]).unwrap_err();
        assert!(err.to_string().contains("python_version >="), "{err}");
    }
}
