//! Script launchers: console and GUI scripts from `entry_points.txt`, and the `#!python` line of
//! scripts shipped in a wheel's `.data/scripts`, made relocatable.
//!
//! On Unix a launcher is a `/bin/sh`–Python polyglot. `sh` runs its first real line,
//! `'''exec' "<dir of the script>/<python>" "$0" "$@"`, which re-executes the script with the
//! bundle's interpreter found *relative to the script* (through `realpath` when the system has
//! it, so a symlink to the script still finds the bundle); Python reads that same line as the
//! start of a string literal and ignores it. No absolute path is written, so a bundle works
//! wherever it is unpacked.
//!
//! On Windows a launcher is an `.exe` (see [`super::launcher_windows`]).

use super::scheme::{relative, Scheme};

/// Console (`console_scripts`) or windowed (`gui_scripts`) entry point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScriptKind {
    /// Runs with `python` and a console.
    Console,
    /// Runs with `pythonw` on Windows (no console); like console elsewhere.
    Gui,
}

/// One script entry point: `name = module:attr.sub [extras]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryPoint {
    /// The script's file name (without `.exe`).
    pub name: String,
    /// The module to import.
    pub module: String,
    /// The attribute path to call (`main`, `cli.main`).
    pub attr: String,
    /// Console or GUI.
    pub kind: ScriptKind,
}

/// Why `entry_points.txt` or a script could not be handled.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LauncherError {
    /// A malformed entry point.
    #[error("entry_points.txt line {line}: {reason}")]
    EntryPoint { line: usize, reason: String },
    /// No launcher can be made for this target.
    #[error("{0}")]
    Unsupported(String),
}

fn is_dotted_identifier(text: &str) -> bool {
    !text.is_empty()
        && text.split('.').all(|part| {
            part.chars()
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_')
                && part.chars().all(|c| c.is_alphanumeric() || c == '_')
        })
}

/// The console and GUI scripts of an `entry_points.txt`, sorted by name.
pub fn parse_entry_points(text: &str) -> Result<Vec<EntryPoint>, LauncherError> {
    let mut section: Option<ScriptKind> = None;
    let mut points: Vec<EntryPoint> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let err = |reason: String| LauncherError::EntryPoint {
            line: line_no,
            reason,
        };
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = match name.trim() {
                "console_scripts" => Some(ScriptKind::Console),
                "gui_scripts" => Some(ScriptKind::Gui),
                _ => None,
            };
            continue;
        }
        let Some(kind) = section else { continue };
        let (name, value) = line
            .split_once('=')
            .ok_or_else(|| err(format!("expected `name = module:function`, found {line:?}")))?;
        let name = name.trim();
        if name.is_empty()
            || name.starts_with('.')
            || name.contains(['/', '\\', '\0'])
            || name.chars().any(char::is_control)
        {
            return Err(err(format!("invalid script name {name:?}")));
        }
        // Extras (`[socks]`) only matter to the installer that chose them; ignore them here.
        let value = value.split('[').next().unwrap_or_default().trim();
        let (module, attr) = value
            .split_once(':')
            .map(|(m, a)| (m.trim(), a.trim()))
            .ok_or_else(|| err(format!("{value:?} is not `module:function`")))?;
        if !is_dotted_identifier(module) || !is_dotted_identifier(attr) {
            return Err(err(format!("{value:?} is not `module:function`")));
        }
        if points.iter().any(|p| p.name == name) {
            return Err(err(format!("script {name:?} is defined twice")));
        }
        points.push(EntryPoint {
            name: name.to_owned(),
            module: module.to_owned(),
            attr: attr.to_owned(),
            kind,
        });
    }
    points.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(points)
}

/// The Python code a launcher runs: import the module and call the function, as pip's and
/// distlib's script templates do (strip `-script.py`/`.exe` from `argv[0]`).
pub fn script_body(entry: &EntryPoint) -> String {
    let import_name = entry.attr.split('.').next().unwrap_or(&entry.attr);
    // The same body pip writes, so installed scripts differ from pip's only in the header.
    format!(
        "# -*- coding: utf-8 -*-\n\
         import re\n\
         import sys\n\
         from {module} import {import_name}\n\
         if __name__ == '__main__':\n    \
         sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n    \
         sys.exit({attr}())\n",
        module = entry.module,
        attr = entry.attr,
    )
}

/// The polyglot header that runs the rest of the file with the interpreter at `python`
/// (relative to the directory holding the script).
pub fn unix_header(python_from_script_dir: &str) -> String {
    format!(
        "#!/bin/sh\n\
         '''exec' \"$(dirname -- \"$(realpath -- \"$0\" 2>/dev/null || printf '%s' \"$0\")\")/{python_from_script_dir}\" \"$0\" \"$@\"\n\
         ' '''\n"
    )
}

/// The files (name relative to the scripts directory, bytes, executable) that launch `entry`.
pub fn make_launcher(
    entry: &EntryPoint,
    scheme: &Scheme,
) -> Result<Vec<(String, Vec<u8>)>, LauncherError> {
    if scheme.windows {
        return super::launcher_windows::make_windows_launcher(entry, scheme);
    }
    let python = relative(&scheme.scripts, &scheme.python);
    let mut text = unix_header(&python);
    text.push_str(&script_body(entry));
    Ok(vec![(entry.name.clone(), text.into_bytes())])
}

/// Rewrites a `.data/scripts` file whose first line is `#!python…` (the wheel format's marker
/// for "use the installing interpreter") to start with the relocatable header; other scripts are
/// returned unchanged. Returns whether it was rewritten.
pub fn rewrite_script_shebang(bytes: &[u8], scheme: &Scheme) -> (Vec<u8>, bool) {
    if !bytes.starts_with(b"#!python") {
        return (bytes.to_vec(), false);
    }
    let rest = match bytes.iter().position(|&b| b == b'\n') {
        Some(end) => &bytes[end + 1..],
        None => &[][..],
    };
    // On Windows the file keeps a `#!` line naming the bundle's interpreter relative to the
    // bundle root; it is run as `python Scripts\name` (an .exe wrapper is only made for entry
    // points, as pip does).
    let header = if scheme.windows {
        format!("#!{}\n", scheme.python)
    } else {
        unix_header(&relative(&scheme.scripts, &scheme.python))
    };
    let mut out = header.into_bytes();
    out.extend_from_slice(rest);
    (out, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_points() {
        let text = "[console_scripts]\nfoo = foo.cli:main [extra]\nbar=bar:run\n\n[gui_scripts]\nbaz = baz.gui:App.start\n[other]\nx = y:z\n";
        let points = parse_entry_points(text).unwrap();
        let names: Vec<&str> = points.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["bar", "baz", "foo"]);
        assert_eq!(points[1].kind, ScriptKind::Gui);
        assert_eq!(points[1].attr, "App.start");
        assert!(script_body(&points[1]).contains("from baz.gui import App\n"));
        assert!(parse_entry_points("[console_scripts]\n../x = a:b\n").is_err());
        assert!(parse_entry_points("[console_scripts]\nx = a\n").is_err());
        assert!(parse_entry_points("[console_scripts]\nx = a:b;rm\n").is_err());
    }
}
