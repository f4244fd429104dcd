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
//! macOS (Mach-O load commands, every slice of a universal binary): a dylib resolves when it is
//! a system library — under `/usr/lib/` (libSystem, libc++, libz…, in the dyld shared cache) or
//! `/System/Library/` (frameworks) — or inside the bundle: `@loader_path/…` from the file's own
//! directory, `@executable_path/…` from `bin/`, `@rpath/…` through the file's `LC_RPATH` entries
//! that are themselves `@loader_path`/`@executable_path`-relative. Any other absolute path
//! (`/usr/local`, `/opt/homebrew`: the build machine's) resolves nothing. A slice for another
//! architecture than the target's is an error (a universal2 binary has the target's too).

use std::collections::BTreeSet;

use crate::python::target::Arch;

mod policy;

pub use policy::{Libc, LinuxPolicy, System, AUDITWHEEL_VERSION, WINDOWS_SYSTEM_DLLS};

/// The kind of native code a target loads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Windows: PE (`.pyd`, `.dll`).
    Pe,
    /// Linux: ELF (`.so`, `.so.N`).
    Elf,
    /// macOS: Mach-O (`.so`, `.dylib`) for this architecture.
    MachO(Arch),
}

/// A library a native file needs that neither the bundle nor the system provides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unresolved {
    /// The file that needs it (bundle-relative).
    pub file: String,
    /// The library's name as the file spells it.
    pub library: String,
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
    /// Not a PE/ELF/Mach-O file although its name says it is native code.
    #[error("{file} is not a valid {expected} file ({reason}); the wheel that installed it is damaged or for another platform")]
    Malformed {
        /// The file (bundle-relative).
        file: String,
        /// `PE`, `ELF` or `Mach-O`.
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

/// True for file names that hold native code in `format`.
pub fn is_native(path: &str, format: Format) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
    match format {
        Format::Pe => name.ends_with(".pyd") || name.ends_with(".dll"),
        Format::Elf => name.ends_with(".so") || name.contains(".so."),
        Format::MachO(_) => name.ends_with(".so") || name.ends_with(".dylib"),
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
        System::MacOs(arch) => return macho_unresolved(file, bytes, *arch, bundle),
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

/// The Mach-O case of [`unresolved`].
fn macho_unresolved(
    file: &str,
    bytes: &[u8],
    arch: Arch,
    bundle: &BundleFiles<'_>,
) -> Result<Vec<Unresolved>, NativeError> {
    use goblin::mach::{constants::cputype, Mach, MachO, SingleArch};
    let malformed = |reason: String| NativeError::Malformed {
        file: file.to_owned(),
        expected: "Mach-O",
        reason,
    };
    let mach = Mach::parse(bytes).map_err(|e| malformed(e.to_string()))?;
    let mut slices: Vec<MachO<'_>> = Vec::new();
    match mach {
        Mach::Binary(macho) => slices.push(macho),
        Mach::Fat(multi) => {
            for slice in &multi {
                match slice.map_err(|e| malformed(e.to_string()))? {
                    SingleArch::MachO(macho) => slices.push(macho),
                    SingleArch::Archive(_) => {
                        return Err(malformed("a slice is a static archive".into()))
                    }
                }
            }
        }
    }
    let wanted = match arch {
        Arch::Aarch64 => cputype::CPU_TYPE_ARM64,
        Arch::X86_64 => cputype::CPU_TYPE_X86_64,
        Arch::X86 => cputype::CPU_TYPE_X86,
    };
    if !slices.iter().any(|m| m.header.cputype == wanted) {
        let found: Vec<&str> = slices
            .iter()
            .map(|m| {
                cputype::get_arch_name_from_types(m.header.cputype, m.header.cpusubtype)
                    .unwrap_or("unknown")
            })
            .collect();
        return Err(malformed(format!(
            "it has no {} code (it is built for {})",
            arch.triple_name(),
            found.join(", ")
        )));
    }
    let dir = file.rsplit_once('/').map_or("", |(d, _)| d);
    let mut missing = BTreeSet::new();
    for macho in &slices {
        // Directories `@rpath/` stands for: the bundle-relative ones only.
        let rpaths: Vec<String> = macho
            .rpaths
            .iter()
            .filter_map(|r| macho_relative(dir, r))
            .collect();
        // goblin lists the file itself first, as "self".
        for lib in macho.libs.iter().skip(1) {
            let resolves = if lib.starts_with("/usr/lib/") || lib.starts_with("/System/Library/") {
                true
            } else if let Some(name) = lib.strip_prefix("@rpath/") {
                rpaths
                    .iter()
                    .any(|d| bundle.files.contains(&normalise(&join(d, name))))
            } else {
                macho_relative(dir, lib).is_some_and(|path| bundle.files.contains(&path))
            };
            if !resolves {
                missing.insert((*lib).to_owned());
            }
        }
    }
    Ok(missing
        .into_iter()
        .map(|library| Unresolved {
            file: file.to_owned(),
            library,
        })
        .collect())
}

/// A Mach-O path as a bundle-relative one, when it is `@loader_path`- (relative to `dir`) or
/// `@executable_path`-relative (relative to `bin/`, where the bundle's python is) and stays in
/// the bundle.
fn macho_relative(dir: &str, path: &str) -> Option<String> {
    let (base, rest) = if let Some(rest) = path.strip_prefix("@loader_path") {
        (dir, rest)
    } else if let Some(rest) = path.strip_prefix("@executable_path") {
        ("bin", rest)
    } else {
        return None;
    };
    relative_to(base, rest)
}

/// `path` (`a/b/../c`) without `.` and `..` parts; `..` past the top stays as it is, so it
/// matches no bundle file.
fn normalise(path: &str) -> String {
    relative_to("", path).unwrap_or_else(|| path.to_owned())
}

/// `rest` (`/../lib/x.dylib`) applied to bundle-relative `base`, if it stays in the bundle.
fn relative_to(base: &str, rest: &str) -> Option<String> {
    let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
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
    relative_to(dir, rest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::python::target::Platform;

    /// A real PE: the 64-bit console launcher stub, which imports system DLLs only.
    const LAUNCHER: &[u8] = include_bytes!("../../python/data/launchers/t64.exe");

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
            System::MacOs(Arch::Aarch64)
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
        assert!(is_native(
            "a/b.cpython-311-x86_64-linux-gnu.so",
            Format::Elf
        ));
        assert!(is_native("a.libs/libfoo-12ab.so.1.2", Format::Elf));
        assert!(is_native("a/B.PYD", Format::Pe));
        assert!(!is_native("a/b.py", Format::Pe));
    }

    /// A minimal 64-bit Mach-O bundle (`MH_BUNDLE`, as extension modules are) for `cputype`,
    /// whose load commands are `LC_LOAD_DYLIB` for each of `dylibs` and `LC_RPATH` for each of
    /// `rpaths`. No real Mach-O can be compiled here; the load commands are what is checked.
    pub(crate) fn macho(cputype: u32, dylibs: &[&str], rpaths: &[&str]) -> Vec<u8> {
        fn padded(text: &str, fixed: usize) -> Vec<u8> {
            let mut bytes = text.as_bytes().to_vec();
            bytes.push(0);
            while (fixed + bytes.len()) % 8 != 0 {
                bytes.push(0);
            }
            bytes
        }
        let mut commands = Vec::new();
        for lib in dylibs {
            let name = padded(lib, 24);
            // LC_LOAD_DYLIB: cmd, cmdsize, name offset, timestamp, current and compatibility
            // versions, then the name.
            for word in [0xc, (24 + name.len()) as u32, 24, 2, 0x10000, 0x10000] {
                commands.extend(word.to_le_bytes());
            }
            commands.extend(name);
        }
        for rpath in rpaths {
            let path = padded(rpath, 12);
            for word in [0x8000_001c, (12 + path.len()) as u32, 12] {
                commands.extend(word.to_le_bytes());
            }
            commands.extend(path);
        }
        let subtype = if cputype == goblin::mach::constants::cputype::CPU_TYPE_X86_64 {
            3
        } else {
            0
        };
        let ncmds = (dylibs.len() + rpaths.len()) as u32;
        let mut out = Vec::new();
        for word in [
            0xfeed_facf,
            cputype,
            subtype,
            8,
            ncmds,
            commands.len() as u32,
            0,
            0,
        ] {
            out.extend(word.to_le_bytes());
        }
        out.extend(commands);
        out
    }

    /// A universal binary of `slices` (each a [`macho`]), as `lipo` makes.
    pub(crate) fn fat(slices: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend(0xcafe_babe_u32.to_be_bytes());
        out.extend((slices.len() as u32).to_be_bytes());
        let mut offset = 4096u32;
        let mut body = Vec::new();
        for slice in slices {
            let cputype = u32::from_le_bytes(slice[4..8].try_into().unwrap());
            let subtype = u32::from_le_bytes(slice[8..12].try_into().unwrap());
            for word in [cputype, subtype, offset, slice.len() as u32, 12] {
                out.extend(word.to_be_bytes());
            }
            let mut padded = slice.clone();
            padded.resize(slice.len().div_ceil(4096) * 4096, 0);
            offset += padded.len() as u32;
            body.extend(padded);
        }
        out.resize(4096, 0);
        out.extend(body);
        out
    }

    #[test]
    fn macho_load_commands_resolve_against_the_system_and_the_bundle() {
        use goblin::mach::constants::cputype::{CPU_TYPE_ARM64, CPU_TYPE_X86_64};
        let libs = [
            "/usr/lib/libSystem.B.dylib",
            "/System/Library/Frameworks/CoreFoundation.framework/Versions/A/CoreFoundation",
            "@loader_path/.dylibs/libfoo.1.dylib",
            "@rpath/libbar.dylib",
            "/opt/homebrew/opt/openssl@3/lib/libssl.3.dylib",
        ];
        let arm = macho(
            CPU_TYPE_ARM64,
            &libs,
            &["/opt/homebrew/lib", "@loader_path/../lib"],
        );
        let set = files(&["pkg/.dylibs/libfoo.1.dylib", "lib/libbar.dylib"]);
        let bundle = BundleFiles::new(&set);
        let aarch64 = &System::MacOs(Arch::Aarch64);
        let missing = |bytes: &[u8], system: &System, bundle: &BundleFiles<'_>| -> Vec<String> {
            unresolved("pkg/_x.cpython-312-darwin.so", bytes, system, bundle)
                .unwrap()
                .into_iter()
                .map(|u| u.library)
                .collect()
        };
        assert_eq!(
            missing(&arm, aarch64, &bundle),
            ["/opt/homebrew/opt/openssl@3/lib/libssl.3.dylib"]
        );
        // Without the bundled libraries, their load commands are named too.
        let empty = files(&[]);
        assert_eq!(
            missing(&arm, aarch64, &BundleFiles::new(&empty)),
            [
                "/opt/homebrew/opt/openssl@3/lib/libssl.3.dylib",
                "@loader_path/.dylibs/libfoo.1.dylib",
                "@rpath/libbar.dylib",
            ]
        );
        // A universal2 binary is checked slice by slice; an arm64-only one is not x86_64 code.
        let intel = macho(CPU_TYPE_X86_64, &libs[..1], &[]);
        let universal = fat(&[intel.clone(), arm.clone()]);
        assert_eq!(
            missing(&universal, &System::MacOs(Arch::X86_64), &bundle),
            missing(&arm, aarch64, &bundle)
        );
        assert_eq!(
            missing(&intel, &System::MacOs(Arch::X86_64), &bundle),
            Vec::<String>::new()
        );
        let err = unresolved("pkg/_x.so", &arm, &System::MacOs(Arch::X86_64), &bundle)
            .unwrap_err()
            .to_string();
        assert!(err.contains("pkg/_x.so is not a valid Mach-O file (it has no x86_64 code (it is built for arm64))"), "{err}");
        let err = unresolved("pkg/_y.so", b"\x7fELF", aarch64, &bundle)
            .unwrap_err()
            .to_string();
        assert!(err.contains("pkg/_y.so") && err.contains("Mach-O"), "{err}");
        assert!(is_native("a/.dylibs/libz.1.dylib", aarch64.format()));
        assert!(!is_native("a/libz.so.1", aarch64.format()));
    }
}
