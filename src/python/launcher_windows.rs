//! Windows `.exe` launchers for entry points.

use super::launcher::{EntryPoint, LauncherError};
use super::scheme::Scheme;

/// The files that launch `entry` on Windows.
pub fn make_windows_launcher(
    entry: &EntryPoint,
    _scheme: &Scheme,
) -> Result<Vec<(String, Vec<u8>)>, LauncherError> {
    Err(LauncherError::Unsupported(format!(
        "cannot make a Windows launcher for the script {:?}: pystore does not build Windows .exe launchers yet",
        entry.name
    )))
}
