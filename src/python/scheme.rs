//! Install schemes: where a wheel's parts go inside a bundle of a target.

use super::target::Target;

/// Directories (relative to the bundle root, `/`-separated) that receive a wheel's parts, and
/// where the interpreter is, for launchers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scheme {
    /// Pure Python modules: `lib/python3.12/site-packages` or `Lib/site-packages`.
    pub purelib: String,
    /// Platform-specific modules (the same directory for CPython).
    pub platlib: String,
    /// Scripts and launchers: `bin` or `Scripts`.
    pub scripts: String,
    /// C headers; the distribution's name is appended: `include/python3.12` or `Include`.
    pub headers: String,
    /// `.data/data` files: the bundle root (empty string).
    pub data: String,
    /// The interpreter: `bin/python3.12` or `python.exe`.
    pub python: String,
    /// The windowed interpreter for GUI scripts: `pythonw.exe` on Windows, else `python`.
    pub pythonw: String,
    /// True for Windows (launchers are `.exe`).
    pub windows: bool,
    /// True for 32-bit Windows (32-bit launcher stubs).
    pub windows_32bit: bool,
}

impl Scheme {
    /// CPython's `posix_prefix`/`nt` scheme for a bundle rooted at the interpreter's prefix.
    pub fn for_target(target: &Target) -> Scheme {
        let version = target.python.major_minor();
        if target.platform.is_windows() {
            Scheme {
                purelib: "Lib/site-packages".into(),
                platlib: "Lib/site-packages".into(),
                scripts: "Scripts".into(),
                headers: "Include".into(),
                data: String::new(),
                python: "python.exe".into(),
                pythonw: "pythonw.exe".into(),
                windows: true,
                windows_32bit: target.platform.arch == super::target::Arch::X86,
            }
        } else {
            let site = format!("lib/python{version}/site-packages");
            Scheme {
                purelib: site.clone(),
                platlib: site,
                scripts: "bin".into(),
                headers: format!("include/python{version}"),
                data: String::new(),
                python: format!("bin/python{version}"),
                pythonw: format!("bin/python{version}"),
                windows: false,
                windows_32bit: false,
            }
        }
    }
}

/// Joins `/`-separated relative paths, skipping empty parts.
pub(crate) fn join(parts: &[&str]) -> String {
    parts
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("/")
}

/// The relative path from directory `from` to `to` (both `/`-separated, relative to one root).
pub(crate) fn relative(from: &str, to: &str) -> String {
    let from: Vec<&str> = from.split('/').filter(|p| !p.is_empty()).collect();
    let to: Vec<&str> = to.split('/').filter(|p| !p.is_empty()).collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<&str> = vec![".."; from.len() - common];
    parts.extend(&to[common..]);
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(
            relative("lib/python3.12/site-packages", "bin/foo"),
            "../../../bin/foo"
        );
        assert_eq!(
            relative("Lib/site-packages", "Scripts/foo.exe"),
            "../../Scripts/foo.exe"
        );
        assert_eq!(relative("bin", "bin/python3.12"), "python3.12");
        assert_eq!(relative("Scripts", "python.exe"), "../python.exe");
        assert_eq!(relative("", "share/x"), "share/x");
    }
}
