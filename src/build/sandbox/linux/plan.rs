//! What the sandbox's child will do, prepared before the fork: the list of mount, bind,
//! write and symlink operations that build the new root for a [`Spec`], with every path and
//! file content already a C string (the child must not allocate).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::INSIDE_ID;
use crate::build::sandbox::{Input, SandboxError, Spec, BUILD_DIR, HOME};

/// Host system library directories bound read-only when a program needs the host's glibc.
const SYSTEM_LIBRARY_DIRS: &[&str] = &[
    "/lib",
    "/lib64",
    "/lib32",
    "/libx32",
    "/usr/lib",
    "/usr/lib64",
    "/usr/lib32",
];

/// Device nodes bound from the host into `/dev`.
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// One thing to do inside the new mount namespace, before `pivot_root`.
pub(super) enum Op {
    Mkdir(CString),
    /// Bind `src` on `dst` (which exists), then remount read-only with `flags` (the source's
    /// locked flags: a user namespace may not clear nosuid, nodev, noexec or atime flags).
    Bind {
        src: CString,
        dst: CString,
        read_only: bool,
        flags: libc::c_ulong,
    },
    /// Create an empty file (a bind target for a device node).
    Touch(CString),
    Write {
        path: CString,
        contents: CString,
    },
    Symlink {
        target: CString,
        link: CString,
    },
    /// A read-only empty tmpfs over `dst` (hides a host directory under a bound one).
    Mask(CString),
    Proc(CString),
}

pub(super) fn cstr(path: &Path) -> Result<CString, SandboxError> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| SandboxError::BadPath {
        path: path.to_path_buf(),
    })
}

pub(super) fn ctext(text: &str) -> CString {
    // Only called with text this module generates, which has no NUL.
    CString::new(text.replace('\0', "")).unwrap_or_default()
}

/// The flags of the mount holding `path` that a bind in a user namespace must keep.
fn locked_flags(path: &Path) -> libc::c_ulong {
    let Ok(c) = cstr(path) else { return 0 };
    // SAFETY: `statvfs` is a C struct of plain integers, for which all-zero bytes are a valid
    // value.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated C string that outlives the call and `&mut st` points to a
    // live, writable `statvfs` that the call fills in; nothing else is read or written.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return 0;
    }
    let mut flags = 0;
    for (st_flag, ms_flag) in [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ] {
        if st.f_flag & st_flag != 0 {
            flags |= ms_flag;
        }
    }
    flags
}

/// Host directories under `dir` that hold Python packages (`python3`, `python3.11`, ...):
/// masked so that binding a system library directory brings no host site-packages along.
fn python_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().as_bytes().starts_with(b"python"))
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .map(|e| e.path())
        .collect();
    found.sort();
    found
}

fn bind_ops(
    ops: &mut Vec<Op>,
    root: &Path,
    host: &Path,
    inside: &Path,
    read_only: bool,
) -> Result<(), SandboxError> {
    let dst = root.join(inside.strip_prefix("/").unwrap_or(inside));
    let mut dirs = Vec::new();
    let mut at = dst.parent();
    while let Some(dir) = at {
        if dir == root {
            break;
        }
        dirs.push(dir.to_path_buf());
        at = dir.parent();
    }
    for dir in dirs.into_iter().rev() {
        ops.push(Op::Mkdir(cstr(&dir)?));
    }
    if host.is_dir() {
        ops.push(Op::Mkdir(cstr(&dst)?));
    } else {
        ops.push(Op::Touch(cstr(&dst)?));
    }
    ops.push(Op::Bind {
        src: cstr(host)?,
        dst: cstr(&dst)?,
        read_only,
        flags: locked_flags(host),
    });
    Ok(())
}

/// Everything the child does before `pivot_root`, for `spec` with the root mounted at `root`.
pub(super) fn plan(spec: &Spec, root: &Path) -> Result<Vec<Op>, SandboxError> {
    let mut ops = Vec::new();
    for dir in ["inputs", "dev", "proc", "etc"] {
        ops.push(Op::Mkdir(cstr(&root.join(dir))?));
    }
    for Input { label, host } in &spec.inputs {
        let host = host
            .canonicalize()
            .map_err(|source| SandboxError::Prepare {
                path: host.clone(),
                source,
            })?;
        bind_ops(
            &mut ops,
            root,
            &host,
            &Path::new("/inputs").join(label),
            true,
        )?;
    }
    bind_ops(
        &mut ops,
        root,
        &spec.scratch.join("build"),
        Path::new(BUILD_DIR),
        false,
    )?;
    for device in DEVICES {
        let host = Path::new("/dev").join(device);
        if host.exists() {
            bind_ops(&mut ops, root, &host, &host, false)?;
        }
    }
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        ops.push(Op::Symlink {
            target: ctext(target),
            link: cstr(&root.join("dev").join(name))?,
        });
    }
    ops.push(Op::Proc(cstr(&root.join("proc"))?));
    let id = INSIDE_ID;
    for (name, contents) in [
        (
            "passwd",
            format!(
                "root:x:0:0:root:/var/empty:/bin/false\npystore:x:{id}:{id}:pystore build user:{}:/bin/false\nnobody:x:65534:65534:nobody:/var/empty:/bin/false\n",
                HOME
            ),
        ),
        (
            "group",
            format!("root:x:0:\npystore:x:{id}:\nnogroup:x:65534:\n"),
        ),
        ("hosts", "127.0.0.1 localhost\n::1 localhost\n".to_owned()),
    ] {
        ops.push(Op::Write {
            path: cstr(&root.join("etc").join(name))?,
            contents: ctext(&contents),
        });
    }
    if spec.system_libraries {
        for dir in SYSTEM_LIBRARY_DIRS {
            let host = Path::new(dir);
            let Ok(meta) = std::fs::symlink_metadata(host) else {
                continue;
            };
            let inside = root.join(&dir[1..]);
            if meta.file_type().is_symlink() {
                // Merged-/usr systems: /lib -> usr/lib. Keep the link, so paths baked into
                // binaries (/lib64/ld-linux-x86-64.so.2) resolve inside.
                let target = std::fs::read_link(host).map_err(|source| SandboxError::Prepare {
                    path: host.to_path_buf(),
                    source,
                })?;
                ops.push(Op::Symlink {
                    target: cstr(&target)?,
                    link: cstr(&inside)?,
                });
            } else if meta.is_dir() {
                bind_ops(&mut ops, root, host, host, true)?;
                for python in python_dirs(host) {
                    ops.push(Op::Mask(cstr(
                        &root.join(python.strip_prefix("/").unwrap_or(&python)),
                    )?));
                }
            }
        }
    }
    Ok(ops)
}
