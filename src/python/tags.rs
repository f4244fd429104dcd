//! Wheel compatibility tags (PEP 425) of a target, in the order `packaging.tags.sys_tags()`
//! yields them for a release CPython build (no debug, GIL enabled) running on that platform.
//!
//! The order is packaging 26.3's: for each of `cpXY-cpXY`, `cpXY-abi3`, `cpXY-none`, then
//! `cp3(Y-1)..cp32-abi3` and `py*-none`, every platform tag best first. Platform tags are
//! - Linux: `linux_<arch>` (packaging 26.3 puts it first; older versions, as vendored in pip,
//!   put it last), then `manylinux_2_<m>_<arch>` from the glibc floor down to 2.5 on x86_64
//!   (2.17 on aarch64), each of 2.17/2.12/2.5 followed by its legacy alias
//!   `manylinux2014`/`manylinux2010`/`manylinux1` (PEP 600), or `musllinux_1_<m>_<arch>` from
//!   the musl version down to 1.0 (PEP 656);
//! - Windows: `win_amd64` or `win32`;
//! - macOS: `macosx_<v>_<format>` from the floor down, with the `intel`/`fat64`/`fat3`/
//!   `universal2`/`universal` formats packaging accepts for that version and architecture.
//!
//! `tests/python/tags.rs` checks these lists against golden files produced by packaging itself.

use std::fmt;

use super::target::{Arch, Os, Platform, Target};

/// One compatibility tag: interpreter, ABI and platform (`cp312-abi3-win_amd64`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag {
    /// Interpreter tag (`cp312`, `py3`).
    pub interpreter: String,
    /// ABI tag (`cp312`, `abi3`, `none`).
    pub abi: String,
    /// Platform tag (`manylinux_2_17_x86_64`, `any`).
    pub platform: String,
}

impl Tag {
    fn new(interpreter: impl Into<String>, abi: impl Into<String>, platform: &str) -> Tag {
        Tag {
            interpreter: interpreter.into(),
            abi: abi.into(),
            platform: platform.to_owned(),
        }
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.interpreter, self.abi, self.platform)
    }
}

/// The platform tags of `platform`, best first.
pub fn platform_tags(platform: &Platform) -> Vec<String> {
    match platform.os {
        Os::Windows => vec![match platform.arch {
            Arch::X86_64 => "win_amd64".to_owned(),
            Arch::X86 => "win32".to_owned(),
            Arch::Aarch64 => "win_arm64".to_owned(),
        }],
        Os::LinuxGnu { glibc } => {
            let arch = linux_arch(platform.arch);
            let mut tags = vec![format!("linux_{arch}")];
            tags.extend(manylinux_tags(arch, glibc));
            tags
        }
        Os::LinuxMusl {
            musl: (major, minor),
        } => {
            let arch = linux_arch(platform.arch);
            let mut tags = vec![format!("linux_{arch}")];
            tags.extend(
                (0..=minor)
                    .rev()
                    .map(|m| format!("musllinux_{major}_{m}_{arch}")),
            );
            tags
        }
        Os::MacOs { version } => mac_platform_tags(version, mac_arch(platform.arch)),
    }
}

/// Every tag the target accepts, best first, as `packaging.tags.sys_tags()` would give.
pub fn target_tags(target: &Target) -> Vec<Tag> {
    let platforms = platform_tags(&target.platform);
    let (major, minor) = (target.python.major, target.python.minor);
    let interpreter = format!("cp{major}{minor}");
    let mut tags = Vec::new();
    // cpython_tags(): the interpreter's own ABI, then the stable ABI, then no ABI.
    for abi in [target.abi_tag(), "abi3".to_owned(), "none".to_owned()] {
        tags.extend(platforms.iter().map(|p| Tag::new(&interpreter, &abi, p)));
    }
    // abi3 wheels built for older CPythons, down to 3.2 where the stable ABI began.
    for older in (2..minor).rev() {
        for p in &platforms {
            tags.push(Tag::new(format!("cp{major}{older}"), "abi3", p));
        }
    }
    // compatible_tags(): py* with the platform, the interpreter with `any`, then py*-none-any.
    let py_range = py_interpreter_range(major, minor);
    for py in &py_range {
        tags.extend(platforms.iter().map(|p| Tag::new(py, "none", p)));
    }
    tags.push(Tag::new(&interpreter, "none", "any"));
    tags.extend(py_range.iter().map(|py| Tag::new(py, "none", "any")));
    tags
}

/// `py312`, `py3`, `py311` … `py30`.
fn py_interpreter_range(major: u16, minor: u16) -> Vec<String> {
    let mut out = vec![format!("py{major}{minor}"), format!("py{major}")];
    out.extend((0..minor).rev().map(|m| format!("py{major}{m}")));
    out
}

fn linux_arch(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "x86_64",
        Arch::X86 => "i686",
        Arch::Aarch64 => "aarch64",
    }
}

fn mac_arch(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "x86_64",
        Arch::X86 => "i386",
        Arch::Aarch64 => "arm64",
    }
}

/// `manylinux_2_<m>_<arch>` from the floor down to the oldest glibc the architecture had
/// manylinux wheels for (2.5 on x86, 2.17 elsewhere), with the legacy aliases after their
/// PEP 600 names. Only glibc major 2 exists, so the cross-major expansion packaging does for
/// hypothetical glibc 3 is not needed.
fn manylinux_tags(arch: &str, (major, minor): (u16, u16)) -> Vec<String> {
    let oldest: u16 = if matches!(arch, "x86_64" | "i686") {
        5
    } else {
        17
    };
    let mut tags = Vec::new();
    if major != 2 {
        return tags;
    }
    for m in (oldest..=minor).rev() {
        tags.push(format!("manylinux_2_{m}_{arch}"));
        let legacy = match m {
            17 => Some("manylinux2014"),
            12 => Some("manylinux2010"),
            5 => Some("manylinux1"),
            _ => None,
        };
        if let Some(legacy) = legacy {
            tags.push(format!("{legacy}_{arch}"));
        }
    }
    tags
}

/// The binary formats a macOS wheel for `version` may declare on `arch`.
fn mac_binary_formats((major, minor): (u16, u16), arch: &str) -> Vec<&'static str> {
    let old = (major, minor) < (10, 4);
    match arch {
        "x86_64" if old => vec![],
        "x86_64" => vec![
            "x86_64",
            "intel",
            "fat64",
            "fat3",
            "universal2",
            "universal",
        ],
        "i386" if old => vec![],
        "i386" => vec!["i386", "intel", "fat3", "fat", "universal"],
        "arm64" => vec!["arm64", "universal2"],
        _ => vec![],
    }
}

fn mac_platform_tags(version: (u16, u16), arch: &str) -> Vec<String> {
    let mut tags = Vec::new();
    let push_all = |tags: &mut Vec<String>, major: u16, minor: u16| {
        for format in mac_binary_formats((major, minor), arch) {
            tags.push(format!("macosx_{major}_{minor}_{format}"));
        }
    };
    if ((10, 0)..(11, 0)).contains(&version) {
        // Before macOS 11 every yearly release bumped the minor version.
        for minor in (0..=version.1).rev() {
            push_all(&mut tags, 10, minor);
        }
    }
    if version >= (11, 0) {
        // From 11 on the major version is yearly; minor versions are mid-year updates, which
        // wheels do not target.
        for major in (11..=version.0).rev() {
            push_all(&mut tags, major, 0);
        }
        // x86_64 on 11+ runs everything built for 10.x; arm64 only runs the universal2 builds
        // whose x86_64 half targets 10.x.
        for minor in (4..=16).rev() {
            if arch == "x86_64" {
                push_all(&mut tags, 10, minor);
            } else {
                tags.push(format!("macosx_10_{minor}_universal2"));
            }
        }
    }
    tags
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(triple: &str, floor: Option<&str>, python: &str) -> Vec<String> {
        let target = Target::new(triple, floor, python).unwrap();
        target_tags(&target).iter().map(|t| t.to_string()).collect()
    }

    #[test]
    fn windows_cp312() {
        let t = tags("x86_64-pc-windows-msvc", None, "3.12.7");
        assert_eq!(
            &t[..4],
            [
                "cp312-cp312-win_amd64",
                "cp312-abi3-win_amd64",
                "cp312-none-win_amd64",
                "cp311-abi3-win_amd64"
            ]
        );
        assert_eq!(t.last().unwrap(), "py30-none-any");
        assert!(t.contains(&"cp32-abi3-win_amd64".to_owned()));
        assert!(!t.contains(&"cp31-abi3-win_amd64".to_owned()));
        assert!(t.contains(&"cp312-none-any".to_owned()));
        assert!(t.contains(&"py3-none-any".to_owned()));
    }

    #[test]
    fn manylinux_floor_and_aliases() {
        let plats = platform_tags(&Platform::from_triple("aarch64-unknown-linux-gnu").unwrap());
        assert_eq!(
            plats,
            [
                "linux_aarch64",
                "manylinux_2_17_aarch64",
                "manylinux2014_aarch64"
            ]
        );
        let plats = platform_tags(&Platform::from_triple("x86_64-unknown-linux-gnu").unwrap());
        assert_eq!(plats.len(), 1 + 13 + 3);
        assert_eq!(plats.last().unwrap(), "manylinux1_x86_64");
    }

    #[test]
    fn musllinux() {
        let plats = platform_tags(&Platform::from_triple("x86_64-unknown-linux-musl").unwrap());
        assert_eq!(
            plats,
            [
                "linux_x86_64",
                "musllinux_1_2_x86_64",
                "musllinux_1_1_x86_64",
                "musllinux_1_0_x86_64"
            ]
        );
    }
}
