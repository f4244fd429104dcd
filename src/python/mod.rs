//! The Python layer: targets, tags, markers, interpreters, wheels, requirements and locks.

pub mod lockfile;
pub mod requirements;
