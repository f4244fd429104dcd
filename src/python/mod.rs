//! The Python layer: targets and their wheel tags and marker environments, wheel file names,
//! interpreter trees, wheel installation, requirements files and their resolution (the lock
//! formats are [`crate::lock`]; archive reading is [`crate::archive::extract`]).
//!
//! Everything here is a pure function over local files and directories. Functions that produce
//! an output take a path that does not exist yet and create it (a file or a directory), so the
//! `build` layer can run them as store builders. This layer knows nothing of the store; nothing
//! here runs Python.

pub mod builds;
pub mod filename;
pub mod install;
pub mod interpreter;
pub mod launcher;
pub mod launcher_windows;
pub mod markers;
pub mod metadata;
pub mod pyc;
pub mod record;
pub mod relocate;
pub mod requirements;
pub mod resolve;
pub mod scheme;
pub mod tags;
pub mod target;
pub mod wheel;

pub use crate::fetch::name::{normalize_name, PackageName, PackageNameError};
pub use builds::{
    known_build, known_build_for, known_builds, Catalogue, KnownBuild, PythonRequest,
};
pub use filename::{is_compatible, TagPriorities, WheelFilename};
pub use install::{install_wheel, InstallError, InstallOptions, Installed, LockedAs};
pub use interpreter::{
    capture_installed, unpack_embeddable, unpack_pbs, InterpreterError, InterpreterInfo, PbsFormat,
};
pub use markers::{evaluate_marker, marker_environment, marker_values};
pub use scheme::Scheme;
pub use tags::{platform_tags, target_tags, Tag};
pub use target::{Arch, Os, Platform, PythonVersion, Target, TargetSpec};
