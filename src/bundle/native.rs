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
//! Linux (ELF `DT_NEEDED`): a library resolves when it is in the manylinux policy's list
//! ([`MANYLINUX_SYSTEM_LIBRARIES`]), in one of the file's `DT_RPATH`/`DT_RUNPATH` directories
//! inside the bundle (`$ORIGIN` expanded), or in the bundle's `lib/` (the interpreter's
//! `libpython`).
//!
//! macOS binaries are not checked (Mach-O load commands are not read yet).

use std::collections::BTreeSet;

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

/// The libraries the manylinux policies (PEP 513/599/600, auditwheel's `lib_whitelist`) let a
/// wheel take from the system — including PEP 513's `libcrypt.so.1`, `libncursesw.so.5` and
/// `libpanelw.so.5` for manylinux1 wheels — plus the dynamic loaders and musl's libc.
pub const MANYLINUX_SYSTEM_LIBRARIES: &[&str] = &[
    "ld-linux-aarch64.so.1",
    "ld-linux-x86-64.so.2",
    "ld-musl-aarch64.so.1",
    "ld-musl-x86_64.so.1",
    "libatomic.so.1",
    "libc.musl-aarch64.so.1",
    "libc.musl-x86_64.so.1",
    "libc.so",
    "libc.so.6",
    "libcrypt.so.1",
    "libdl.so.2",
    "libgcc_s.so.1",
    "libGL.so.1",
    "libglib-2.0.so.0",
    "libgobject-2.0.so.0",
    "libgthread-2.0.so.0",
    "libICE.so.6",
    "libm.so.6",
    "libncursesw.so.5",
    "libnsl.so.1",
    "libpanelw.so.5",
    "libpthread.so.0",
    "libresolv.so.2",
    "librt.so.1",
    "libSM.so.6",
    "libstdc++.so.6",
    "libutil.so.1",
    "libX11.so.6",
    "libXext.so.6",
    "libXrender.so.1",
];

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

/// The libraries `bytes` (the file at bundle-relative `file`) imports that do not resolve.
pub fn unresolved(
    file: &str,
    bytes: &[u8],
    windows: bool,
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
    if windows {
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
            !MANYLINUX_SYSTEM_LIBRARIES.contains(lib)
                && !search.iter().any(|d| bundle.files.contains(&join(d, lib)))
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
            unresolved("x.pyd", LAUNCHER, true, &bundle).unwrap(),
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
        let found = unresolved("pkg/_x.pyd", &bytes, true, &BundleFiles::new(&set)).unwrap();
        assert_eq!(
            found,
            vec![Unresolved {
                file: "pkg/_x.pyd".into(),
                library: replacement.clone()
            }]
        );
        let set = files(&[&format!("pkg.libs/{}", replacement.to_ascii_uppercase())]);
        assert_eq!(
            unresolved("pkg/_x.pyd", &bytes, true, &BundleFiles::new(&set)).unwrap(),
            vec![]
        );
    }

    #[test]
    fn garbage_named_like_native_code_is_an_error_naming_the_file() {
        let set = files(&[]);
        let err = unresolved("a/_b.pyd", b"MZ stand-in", true, &BundleFiles::new(&set))
            .unwrap_err()
            .to_string();
        assert!(err.contains("a/_b.pyd") && err.contains("PE"), "{err}");
        let err = unresolved("a/_b.so", b"\x7fELF nope", false, &BundleFiles::new(&set))
            .unwrap_err()
            .to_string();
        assert!(err.contains("a/_b.so") && err.contains("ELF"), "{err}");
    }

    #[test]
    fn elf_needed_resolves_against_manylinux_rpath_and_lib() {
        // The host's own libz links only libc: check a real ELF shared library.
        let Ok(bytes) = std::fs::read("/lib/x86_64-linux-gnu/libz.so.1") else {
            return;
        };
        let set = files(&[]);
        assert_eq!(
            unresolved("p/libz.so.1", &bytes, false, &BundleFiles::new(&set)).unwrap(),
            vec![]
        );
        // Debian's python3.11 needs libz and libexpat, which manylinux does not provide.
        let Ok(python) = std::fs::read("/usr/bin/python3.11") else {
            return;
        };
        let missing: Vec<String> =
            unresolved("bin/python3.11", &python, false, &BundleFiles::new(&set))
                .unwrap()
                .into_iter()
                .map(|u| u.library)
                .collect();
        assert_eq!(missing, vec!["libexpat.so.1", "libz.so.1"]);
        let set = files(&["lib/libexpat.so.1", "lib/libz.so.1"]);
        assert_eq!(
            unresolved("bin/python3.11", &python, false, &BundleFiles::new(&set)).unwrap(),
            vec![]
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
