//! Static checks of native code in a bundle: every library an extension module or bundled
//! shared library imports must be in the bundle or on the target's system.
//!
//! Windows (PE import tables): a DLL resolves when a file of that name (ignoring case, as
//! Windows does) is anywhere in the bundle — the interpreter's directory, `DLLs`, the module's
//! directory or a `<package>.libs` directory added with `os.add_dll_directory` — or when it is
//! one of the system DLLs every supported Windows has ([`WINDOWS_SYSTEM_DLLS`], the `api-ms-win-*`
//! and `ext-ms-*` API sets). The Visual C++ runtime's `msvcp140.dll` is deliberately *not* a
//! system DLL: CPython ships only `vcruntime140*.dll`, so a wheel needing `msvcp140.dll` must
//! bring it.
//!
//! Linux (ELF `DT_NEEDED`): a library resolves when the policy of the target's floor lets a
//! wheel take it from the system ([`LinuxPolicy`]: auditwheel's `lib_whitelist` of the
//! `manylinux_X_Y` policy a glibc floor names, or the `musllinux_X_Y` one of a musl floor), when
//! it is the dynamic loader, in one of the file's `DT_RPATH`/`DT_RUNPATH` directories inside the
//! bundle (`$ORIGIN` expanded), or in the bundle's `lib/` (the interpreter's `libpython`).
//!
//! The policies are auditwheel's own files, vendored unchanged in `data/auditwheel/` with the
//! version they come from ([`AUDITWHEEL_VERSION`]); `.ci/auditwheel-policy.sh` checks them
//! against that version's wheel.
//!
//! macOS binaries are not checked (Mach-O load commands are not read yet).

use std::collections::BTreeSet;
use std::sync::OnceLock;

use serde::Deserialize;

use crate::python::target::{Arch, Os, Platform};

/// The auditwheel release the vendored policies come from.
pub const AUDITWHEEL_VERSION: &str = include_str!("data/auditwheel/VERSION").trim_ascii();

/// auditwheel's `manylinux-policy.json`, unchanged.
const MANYLINUX_POLICY_JSON: &str = include_str!("data/auditwheel/manylinux-policy.json");
/// auditwheel's `musllinux-policy.json`, unchanged.
const MUSLLINUX_POLICY_JSON: &str = include_str!("data/auditwheel/musllinux-policy.json");

/// Windows DLLs that are part of every supported Windows (lower case).
pub const WINDOWS_SYSTEM_DLLS: &[&str] = &[
    "advapi32.dll",
    "bcrypt.dll",
    // Rust's standard library takes its random numbers from here (Rust-built extensions).
    "bcryptprimitives.dll",
    "cfgmgr32.dll",
    "comctl32.dll",
    "comdlg32.dll",
    "crypt32.dll",
    "cryptbase.dll",
    "d2d1.dll",
    "d3d11.dll",
    "d3d12.dll",
    "d3d9.dll",
    "dbghelp.dll",
    "dnsapi.dll",
    "dwrite.dll",
    "dwmapi.dll",
    "dxgi.dll",
    "gdi32.dll",
    "glu32.dll",
    "imm32.dll",
    "iphlpapi.dll",
    "kernel32.dll",
    "kernelbase.dll",
    "mpr.dll",
    "msimg32.dll",
    "msvcrt.dll",
    "mswsock.dll",
    "ncrypt.dll",
    "netapi32.dll",
    "normaliz.dll",
    "ntdll.dll",
    "ole32.dll",
    "oleaut32.dll",
    "opengl32.dll",
    "pdh.dll",
    "powrprof.dll",
    "psapi.dll",
    "rpcrt4.dll",
    "secur32.dll",
    "setupapi.dll",
    "shcore.dll",
    "shell32.dll",
    "shlwapi.dll",
    "ucrtbase.dll",
    "user32.dll",
    "userenv.dll",
    "uxtheme.dll",
    "version.dll",
    "winhttp.dll",
    "wininet.dll",
    "winmm.dll",
    "winspool.drv",
    "wintrust.dll",
    "wldap32.dll",
    "ws2_32.dll",
    "wtsapi32.dll",
];

/// A library a native file needs that neither the bundle nor the system provides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unresolved {
    /// The file that needs it (bundle-relative).
    pub file: String,
    /// The library's name as the file spells it.
    pub library: String,
}

/// One entry of auditwheel's policy files (the fields pystore reads).
#[derive(Deserialize)]
struct RawPolicy {
    name: String,
    /// Per architecture (auditwheel's names: `x86_64`, `aarch64`, ...): the policy applies to
    /// an architecture only when it is listed here.
    symbol_versions: serde_json::Map<String, serde_json::Value>,
    lib_whitelist: Vec<String>,
}

/// The C library a Linux policy is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Libc {
    /// glibc: `manylinux_X_Y` policies.
    Glibc,
    /// musl: `musllinux_X_Y` policies.
    Musl,
}

/// The libraries a Linux target's floor system provides, by auditwheel's policy for that floor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinuxPolicy {
    /// The policy's name, e.g. `manylinux_2_17`.
    pub name: String,
    /// The libraries a wheel may take from the system (sonames).
    pub libraries: BTreeSet<String>,
}

impl LinuxPolicy {
    /// The policy for `libc` at `floor` on `arch`: the newest one whose version is at most the
    /// floor (a system at glibc 2.30 has what manylinux_2_28 promises) and that covers `arch`.
    pub fn for_floor(
        libc: Libc,
        floor: (u16, u16),
        arch: Arch,
    ) -> Result<LinuxPolicy, NativeError> {
        let (prefix, json, libc_name) = match libc {
            Libc::Glibc => ("manylinux_", MANYLINUX_POLICY_JSON, "glibc"),
            Libc::Musl => ("musllinux_", MUSLLINUX_POLICY_JSON, "musl"),
        };
        let arch_name = match arch {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
            Arch::X86 => "i686",
        };
        let no_policy = |reason: String| NativeError::NoPolicy {
            libc: libc_name,
            floor: format!("{}.{}", floor.0, floor.1),
            arch: arch_name,
            reason,
        };
        let raw = parsed(json).map_err(|e| {
            no_policy(format!(
                "auditwheel {AUDITWHEEL_VERSION}'s policy file does not parse: {e}"
            ))
        })?;
        let mut oldest: Option<(u16, u16)> = None;
        let mut best: Option<((u16, u16), &RawPolicy)> = None;
        for policy in raw {
            let Some(version) = policy_version(&policy.name, prefix) else {
                continue;
            };
            if !policy.symbol_versions.contains_key(arch_name) {
                continue;
            }
            oldest = Some(oldest.map_or(version, |o: (u16, u16)| o.min(version)));
            if version <= floor && best.map_or(true, |(v, _)| version > v) {
                best = Some((version, policy));
            }
        }
        let Some((_, policy)) = best else {
            return Err(no_policy(match oldest {
                Some((a, b)) => format!("the oldest {prefix}* policy for {arch_name} is {libc_name} {a}.{b}; raise the target's floor"),
                None => format!("auditwheel {AUDITWHEEL_VERSION} has no {prefix}* policy for {arch_name}"),
            }));
        };
        let mut libraries: BTreeSet<String> = policy.lib_whitelist.iter().cloned().collect();
        if libc == Libc::Musl && libraries.contains("libc.so") {
            // As auditwheel does: musl's libc is linked as `libc.musl-<arch>.so.1` on the system.
            libraries.insert(format!("libc.musl-{arch_name}.so.1"));
        }
        Ok(LinuxPolicy {
            name: policy.name.clone(),
            libraries,
        })
    }

    /// True when `library` is the system's to provide: in the policy, or the dynamic loader
    /// (which auditwheel always excludes: `ld-linux*`, and `ld64.so.1`/`ld64.so.2`).
    pub fn allows(&self, library: &str) -> bool {
        self.libraries.contains(library)
            || library.contains("ld-linux")
            || library == "ld64.so.1"
            || library == "ld64.so.2"
    }
}

/// `manylinux_2_17` → (2, 17) for `prefix` `manylinux_`; aliases and `linux` give None.
fn policy_version(name: &str, prefix: &str) -> Option<(u16, u16)> {
    let (major, minor) = name.strip_prefix(prefix)?.split_once('_')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// The policy file `json`, parsed once.
fn parsed(json: &'static str) -> Result<&'static [RawPolicy], String> {
    static MANYLINUX: OnceLock<Result<Vec<RawPolicy>, String>> = OnceLock::new();
    static MUSLLINUX: OnceLock<Result<Vec<RawPolicy>, String>> = OnceLock::new();
    let cell = if std::ptr::eq(json, MANYLINUX_POLICY_JSON) {
        &MANYLINUX
    } else {
        &MUSLLINUX
    };
    cell.get_or_init(|| serde_json::from_str(json).map_err(|e| e.to_string()))
        .as_deref()
        .map_err(Clone::clone)
}

/// The system a bundle's native code will find beside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum System {
    /// Windows: [`WINDOWS_SYSTEM_DLLS`] and the API sets.
    Windows,
    /// Linux: what the policy of the target's floor allows.
    Linux(LinuxPolicy),
}

impl System {
    /// The system of `platform`, or None where native code is not checked (macOS).
    pub fn for_platform(platform: &Platform) -> Result<Option<System>, NativeError> {
        Ok(Some(match platform.os {
            Os::Windows => System::Windows,
            Os::LinuxGnu { glibc } => {
                System::Linux(LinuxPolicy::for_floor(Libc::Glibc, glibc, platform.arch)?)
            }
            Os::LinuxMusl { musl } => {
                System::Linux(LinuxPolicy::for_floor(Libc::Musl, musl, platform.arch)?)
            }
            Os::MacOs { .. } => return Ok(None),
        }))
    }

    /// How error messages name it: `Windows`, or the policy and where it comes from.
    pub fn describe(&self) -> String {
        match self {
            System::Windows => "Windows".to_owned(),
            System::Linux(policy) => {
                format!("{} (auditwheel {AUDITWHEEL_VERSION} policy)", policy.name)
            }
        }
    }
}

/// Why a native file could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum NativeError {
    /// No auditwheel policy covers the target's floor and architecture.
    #[error("no auditwheel {AUDITWHEEL_VERSION} policy for {libc} {floor} on {arch}, so its native code cannot be checked: {reason}")]
    NoPolicy {
        /// `glibc` or `musl`.
        libc: &'static str,
        /// The target's floor.
        floor: String,
        /// The architecture, as auditwheel names it.
        arch: &'static str,
        /// What is missing.
        reason: String,
    },
    /// Not a PE/ELF file although its name says it is native code.
    #[error("{file} is not a valid {expected} file ({reason}); the wheel that installed it is damaged or for another platform")]
    Malformed {
        /// The file (bundle-relative).
        file: String,
        /// `PE` or `ELF`.
        expected: &'static str,
        /// The parser's message.
        reason: String,
    },
}

/// What a bundle holds, for resolving libraries: every file's bundle-relative path.
pub struct BundleFiles<'a> {
    files: &'a BTreeSet<String>,
    lower_names: BTreeSet<String>,
}

impl<'a> BundleFiles<'a> {
    /// Indexes `files` (bundle-relative, `/`-separated).
    pub fn new(files: &'a BTreeSet<String>) -> BundleFiles<'a> {
        let lower_names = files
            .iter()
            .map(|f| f.rsplit('/').next().unwrap_or(f).to_ascii_lowercase())
            .collect();
        BundleFiles { files, lower_names }
    }
}

/// True for file names that hold native code for a Windows (`windows`) or Linux target.
pub fn is_native(path: &str, windows: bool) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
    if windows {
        name.ends_with(".pyd") || name.ends_with(".dll")
    } else {
        name.ends_with(".so") || name.contains(".so.")
    }
}

/// The libraries `bytes` (the file at bundle-relative `file`) imports that do not resolve on
/// `system` with the bundle's files.
pub fn unresolved(
    file: &str,
    bytes: &[u8],
    system: &System,
    bundle: &BundleFiles<'_>,
) -> Result<Vec<Unresolved>, NativeError> {
    let malformed = |expected, reason: String| NativeError::Malformed {
        file: file.to_owned(),
        expected,
        reason,
    };
    let missing = |library: &str| Unresolved {
        file: file.to_owned(),
        library: library.to_owned(),
    };
    let policy = match system {
        System::Linux(policy) => policy,
        System::Windows => {
            let pe = goblin::pe::PE::parse(bytes).map_err(|e| malformed("PE", e.to_string()))?;
            let mut names: Vec<&str> = pe.libraries.clone();
            names.sort_unstable();
            names.dedup();
            return Ok(names
                .into_iter()
                .filter(|dll| !windows_dll_resolves(dll, bundle))
                .map(missing)
                .collect());
        }
    };
    let elf = goblin::elf::Elf::parse(bytes).map_err(|e| malformed("ELF", e.to_string()))?;
    let dir = file.rsplit_once('/').map_or("", |(d, _)| d);
    let search: Vec<String> = elf
        .rpaths
        .iter()
        .chain(&elf.runpaths)
        .flat_map(|list| list.split(':'))
        .filter_map(|entry| origin_relative(dir, entry))
        .chain(std::iter::once("lib".to_owned()))
        .collect();
    let mut names: Vec<&str> = elf.libraries.clone();
    names.sort_unstable();
    names.dedup();
    Ok(names
        .into_iter()
        .filter(|lib| {
            !policy.allows(lib) && !search.iter().any(|d| bundle.files.contains(&join(d, lib)))
        })
        .map(missing)
        .collect())
}

fn windows_dll_resolves(dll: &str, bundle: &BundleFiles<'_>) -> bool {
    let lower = dll.to_ascii_lowercase();
    WINDOWS_SYSTEM_DLLS.contains(&lower.as_str())
        || lower.starts_with("api-ms-win-")
        || lower.starts_with("ext-ms-")
        || bundle.lower_names.contains(&lower)
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

/// An rpath entry as a bundle-relative directory, when it is `$ORIGIN`-relative and stays in
/// the bundle (absolute rpaths point at the build machine and resolve nothing here).
fn origin_relative(dir: &str, entry: &str) -> Option<String> {
    let rest = entry
        .strip_prefix("$ORIGIN")
        .or_else(|| entry.strip_prefix("${ORIGIN}"))?;
    let mut parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    for part in rest.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real PE: the 64-bit console launcher stub, which imports system DLLs only.
    const LAUNCHER: &[u8] = include_bytes!("../python/data/launchers/t64.exe");

    fn files(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_pe_importing_system_dlls_resolves() {
        let set = files(&[]);
        let bundle = BundleFiles::new(&set);
        assert_eq!(
            unresolved("x.pyd", LAUNCHER, &System::Windows, &bundle).unwrap(),
            vec![]
        );
    }

    #[test]
    fn a_pe_importing_a_missing_dll_names_it_and_a_bundled_one_resolves() {
        let pe = goblin::pe::PE::parse(LAUNCHER).unwrap();
        let first = pe.libraries[0].to_owned();
        let replacement: String = "MISSING_ABCDEFGHIJKLMNOP"[..first.len() - 4].to_owned() + ".dll";
        let mut bytes = LAUNCHER.to_vec();
        let at = bytes
            .windows(first.len() + 1)
            .position(|w| w[..first.len()] == *first.as_bytes() && w[first.len()] == 0)
            .unwrap();
        bytes[at..at + first.len()].copy_from_slice(replacement.as_bytes());
        let set = files(&[]);
        let found = unresolved(
            "pkg/_x.pyd",
            &bytes,
            &System::Windows,
            &BundleFiles::new(&set),
        )
        .unwrap();
        assert_eq!(
            found,
            vec![Unresolved {
                file: "pkg/_x.pyd".into(),
                library: replacement.clone()
            }]
        );
        let set = files(&[&format!("pkg.libs/{}", replacement.to_ascii_uppercase())]);
        assert_eq!(
            unresolved(
                "pkg/_x.pyd",
                &bytes,
                &System::Windows,
                &BundleFiles::new(&set)
            )
            .unwrap(),
            vec![]
        );
    }

    #[test]
    fn garbage_named_like_native_code_is_an_error_naming_the_file() {
        let set = files(&[]);
        let err = unresolved(
            "a/_b.pyd",
            b"MZ stand-in",
            &System::Windows,
            &BundleFiles::new(&set),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("a/_b.pyd") && err.contains("PE"), "{err}");
        let err = unresolved(
            "a/_b.so",
            b"\x7fELF nope",
            &linux(2, 17),
            &BundleFiles::new(&set),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("a/_b.so") && err.contains("ELF"), "{err}");
    }

    fn linux(major: u16, minor: u16) -> System {
        System::Linux(LinuxPolicy::for_floor(Libc::Glibc, (major, minor), Arch::X86_64).unwrap())
    }

    #[test]
    fn elf_needed_resolves_against_the_floors_policy_rpath_and_lib() {
        // The host's own libz links only libc: check a real ELF shared library.
        let Ok(bytes) = std::fs::read("/lib/x86_64-linux-gnu/libz.so.1") else {
            return;
        };
        let set = files(&[]);
        assert_eq!(
            unresolved(
                "p/libz.so.1",
                &bytes,
                &linux(2, 17),
                &BundleFiles::new(&set)
            )
            .unwrap(),
            vec![]
        );
        // Debian's python3.11 needs libm, libz, libexpat and libc: all manylinux2014 system
        // libraries, but manylinux1 (glibc 2.5) does not promise libexpat.
        let Ok(python) = std::fs::read("/usr/bin/python3.11") else {
            return;
        };
        let missing = |system: &System, set: &BTreeSet<String>| -> Vec<String> {
            unresolved("bin/python3.11", &python, system, &BundleFiles::new(set))
                .unwrap()
                .into_iter()
                .map(|u| u.library)
                .collect()
        };
        assert_eq!(missing(&linux(2, 17), &set), Vec::<String>::new());
        assert_eq!(missing(&linux(2, 28), &set), Vec::<String>::new());
        assert_eq!(missing(&linux(2, 5), &set), vec!["libexpat.so.1"]);
        assert_eq!(missing(&linux(2, 11), &set), vec!["libexpat.so.1"]);
        let set = files(&["lib/libexpat.so.1"]);
        assert_eq!(missing(&linux(2, 5), &set), Vec::<String>::new());
    }

    #[test]
    fn a_floor_names_the_newest_policy_at_or_below_it() {
        let name = |libc, floor, arch| LinuxPolicy::for_floor(libc, floor, arch).map(|p| p.name);
        assert_eq!(
            name(Libc::Glibc, (2, 17), Arch::X86_64).unwrap(),
            "manylinux_2_17"
        );
        assert_eq!(
            name(Libc::Glibc, (2, 30), Arch::X86_64).unwrap(),
            "manylinux_2_28"
        );
        assert_eq!(
            name(Libc::Glibc, (2, 99), Arch::X86_64).unwrap(),
            "manylinux_2_41"
        );
        assert_eq!(
            name(Libc::Glibc, (2, 5), Arch::X86_64).unwrap(),
            "manylinux_2_5"
        );
        // aarch64 starts at manylinux2014.
        assert_eq!(
            name(Libc::Glibc, (2, 17), Arch::Aarch64).unwrap(),
            "manylinux_2_17"
        );
        let err = name(Libc::Glibc, (2, 12), Arch::Aarch64)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("glibc 2.12 on aarch64")
                && err.contains("the oldest manylinux_* policy for aarch64 is glibc 2.17"),
            "{err}"
        );
        let err = name(Libc::Glibc, (2, 4), Arch::X86_64)
            .unwrap_err()
            .to_string();
        assert!(err.contains("glibc 2.5; raise the target's floor"), "{err}");
        assert_eq!(
            name(Libc::Musl, (1, 2), Arch::X86_64).unwrap(),
            "musllinux_1_2"
        );
        assert_eq!(
            name(Libc::Musl, (1, 1), Arch::Aarch64).unwrap(),
            "musllinux_1_1"
        );
    }

    #[test]
    fn each_policy_allows_what_auditwheel_lists_and_nothing_else() {
        let glibc = |floor| LinuxPolicy::for_floor(Libc::Glibc, floor, Arch::X86_64).unwrap();
        // The real failure: psycopg2-binary's bundled libcrypto needs libz.so.1.
        for floor in [(2, 5), (2, 17), (2, 28)] {
            assert!(glibc(floor).allows("libz.so.1"), "{floor:?}");
            assert!(glibc(floor).allows("libc.so.6"), "{floor:?}");
            assert!(glibc(floor).allows("ld-linux-x86-64.so.2"), "{floor:?}");
        }
        assert!(!glibc((2, 5)).allows("libexpat.so.1"));
        assert!(glibc((2, 17)).allows("libexpat.so.1"));
        assert!(!glibc((2, 17)).allows("libmvec.so.1"));
        assert!(glibc((2, 28)).allows("libmvec.so.1"));
        // Never in any policy: what a wheel must bundle.
        for floor in [(2, 5), (2, 17), (2, 28), (2, 41)] {
            assert!(!glibc(floor).allows("libssl.so.3"), "{floor:?}");
            assert!(!glibc(floor).allows("libcrypt.so.1"), "{floor:?}");
        }
        let musl = LinuxPolicy::for_floor(Libc::Musl, (1, 2), Arch::X86_64).unwrap();
        assert_eq!(
            musl.libraries
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            ["libc.musl-x86_64.so.1", "libc.so", "libz.so.1"]
        );
        assert!(!musl.allows("libstdc++.so.6") && !musl.allows("libexpat.so.1"));
        assert_eq!(
            System::for_platform(&Platform::from_triple("aarch64-apple-darwin").unwrap()).unwrap(),
            None
        );
    }

    #[test]
    fn the_windows_list_is_lower_case_as_lookups_are() {
        for dll in WINDOWS_SYSTEM_DLLS {
            assert_eq!(*dll, dll.to_ascii_lowercase());
        }
        let set = files(&[]);
        let bundle = BundleFiles::new(&set);
        assert!(windows_dll_resolves("KERNEL32.dll", &bundle));
        assert!(windows_dll_resolves(
            "api-ms-win-crt-runtime-l1-1-0.dll",
            &bundle
        ));
        assert!(!windows_dll_resolves("msvcp140.dll", &bundle));
        assert!(!windows_dll_resolves("vcruntime140.dll", &bundle));
    }

    #[test]
    fn origin_paths_stay_inside() {
        assert_eq!(
            origin_relative("site/pkg", "$ORIGIN/../pkg.libs"),
            Some("site/pkg.libs".into())
        );
        assert_eq!(origin_relative("pkg", "${ORIGIN}"), Some("pkg".into()));
        assert_eq!(origin_relative("pkg", "$ORIGIN/../../x"), None);
        assert_eq!(origin_relative("pkg", "/usr/lib"), None);
        assert!(is_native("a/b.cpython-311-x86_64-linux-gnu.so", false));
        assert!(is_native("a.libs/libfoo-12ab.so.1.2", false));
        assert!(is_native("a/B.PYD", true));
        assert!(!is_native("a/b.py", true));
    }
}
