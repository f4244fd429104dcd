//! The systems native code is checked against: auditwheel's Linux policies (vendored in
//! `data/auditwheel/`, parsed once), the Windows system DLLs, and which [`System`] a target
//! platform has.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use serde::Deserialize;

use super::{Format, NativeError};
use crate::python::target::{Arch, Os, Platform};

/// The auditwheel release the vendored policies come from.
pub const AUDITWHEEL_VERSION: &str = include_str!("../data/auditwheel/VERSION").trim_ascii();

/// auditwheel's `manylinux-policy.json`, unchanged.
const MANYLINUX_POLICY_JSON: &str = include_str!("../data/auditwheel/manylinux-policy.json");
/// auditwheel's `musllinux-policy.json`, unchanged.
const MUSLLINUX_POLICY_JSON: &str = include_str!("../data/auditwheel/musllinux-policy.json");

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
    /// macOS on this architecture: system dylibs and frameworks.
    MacOs(Arch),
}

impl System {
    /// The system of `platform`.
    pub fn for_platform(platform: &Platform) -> Result<System, NativeError> {
        Ok(match platform.os {
            Os::Windows => System::Windows,
            Os::LinuxGnu { glibc } => {
                System::Linux(LinuxPolicy::for_floor(Libc::Glibc, glibc, platform.arch)?)
            }
            Os::LinuxMusl { musl } => {
                System::Linux(LinuxPolicy::for_floor(Libc::Musl, musl, platform.arch)?)
            }
            Os::MacOs { .. } => System::MacOs(platform.arch),
        })
    }

    /// The format of the native code this system loads.
    pub fn format(&self) -> Format {
        match self {
            System::Windows => Format::Pe,
            System::Linux(_) => Format::Elf,
            System::MacOs(arch) => Format::MachO(*arch),
        }
    }

    /// How error messages name it: `Windows`, `macOS`, or the policy and where it comes from.
    pub fn describe(&self) -> String {
        match self {
            System::Windows => "Windows".to_owned(),
            System::MacOs(_) => "macOS".to_owned(),
            System::Linux(policy) => {
                format!("{} (auditwheel {AUDITWHEEL_VERSION} policy)", policy.name)
            }
        }
    }
}
