//! The Python layer: targets and their wheel tags and marker environments, wheel file names,
//! interpreter trees and wheel installation.
//!
//! Everything here is a pure function over local files and directories. Functions that produce
//! an output take a path that does not exist yet and create it (a file or a directory), so the
//! `build` layer can run them as store builders. This layer knows nothing of the store; nothing
//! here runs Python.

pub mod filename;
pub mod install;
pub mod launcher;
mod launcher_windows;
pub mod markers;
pub mod record;
pub mod scheme;
pub mod tags;
pub mod target;
pub mod unpack;
pub mod wheel;

pub use filename::{is_compatible, normalize_name, TagPriorities, WheelFilename};
pub use install::{install_wheel, InstallError, InstallOptions, Installed};
pub use markers::{evaluate_marker, marker_environment, marker_values};
pub use scheme::Scheme;
pub use tags::{platform_tags, target_tags, Tag};
pub use target::{Arch, Os, Platform, PythonVersion, Target};
