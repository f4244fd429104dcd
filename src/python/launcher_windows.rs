//! Windows `.exe` launchers for entry points, made on any host.
//!
//! We use distlib's launcher stubs (vendored in `data/launchers/`, see `SOURCE.md` there for
//! their origin, licence and checksums), the ones pip uses. They were chosen over writing our own
//! PE stub or uv's trampoline because they are prebuilt, small, freely redistributable, and
//! support a shebang relative to the launcher itself (`<launcher_dir>\`), which a relocatable
//! bundle needs. A launcher is: stub ‖ `#!<launcher_dir>\<path to python.exe>\r\n` ‖ a zip
//! holding `__main__.py`. The zip is written stored (uncompressed) with fixed times, so the
//! bytes depend on nothing but the inputs.

use std::io::{Cursor, Write};

use super::launcher::{script_body, EntryPoint, LauncherError, ScriptKind};
use super::scheme::{relative, Scheme};

const CONSOLE_64: &[u8] = include_bytes!("data/launchers/t64.exe");
const GUI_64: &[u8] = include_bytes!("data/launchers/w64.exe");
const CONSOLE_32: &[u8] = include_bytes!("data/launchers/t32.exe");
const GUI_32: &[u8] = include_bytes!("data/launchers/w32.exe");

/// The stub for a script kind on a 32- or 64-bit target.
pub fn stub(kind: ScriptKind, is_32bit: bool) -> &'static [u8] {
    match (kind, is_32bit) {
        (ScriptKind::Console, false) => CONSOLE_64,
        (ScriptKind::Gui, false) => GUI_64,
        (ScriptKind::Console, true) => CONSOLE_32,
        (ScriptKind::Gui, true) => GUI_32,
    }
}

/// The files that launch `entry` on Windows: `<name>.exe`.
pub fn make_windows_launcher(
    entry: &EntryPoint,
    scheme: &Scheme,
) -> Result<Vec<(String, Vec<u8>)>, LauncherError> {
    let python = match entry.kind {
        ScriptKind::Console => &scheme.python,
        ScriptKind::Gui => &scheme.pythonw,
    };
    let python = relative(&scheme.scripts, python).replace('/', "\\");
    let mut bytes = stub(entry.kind, scheme.windows_32bit).to_vec();
    bytes.extend_from_slice(format!("#!<launcher_dir>\\{python}\r\n").as_bytes());
    bytes.extend_from_slice(&main_zip(&script_body(entry)).map_err(|e| {
        LauncherError::Unsupported(format!(
            "cannot build the launcher of {:?}: {e}",
            entry.name
        ))
    })?);
    Ok(vec![(format!("{}.exe", entry.name), bytes)])
}

/// A zip holding only `__main__.py`, stored, dated 1980-01-01.
fn main_zip(body: &str) -> zip::result::ZipResult<Vec<u8>> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o644);
    writer.start_file("__main__.py", options)?;
    writer.write_all(body.as_bytes())?;
    Ok(writer.finish()?.into_inner())
}
