//! Linux namespaces for the sandbox, with plain `libc` calls.
//!
//! The work happens in the child between `fork` and `exec` (a [`CommandExt::pre_exec`] hook),
//! because `unshare(CLONE_NEWUSER)` is refused to multithreaded processes and pystore has
//! threads. Everything the child needs (paths, map contents, file contents) is prepared as C
//! strings before the fork, so the child only makes system calls and never allocates.
//!
//! In the child: `unshare` the user, mount, pid, network, ipc and uts namespaces; map the
//! caller's uid and gid to 1000 (so the program runs with no capabilities after `exec`); fork
//! again so the program is pid 1 of the new pid namespace (the intermediate process waits and
//! exits with the program's status); build a tmpfs root with the inputs bound read-only,
//! `/build` writable, `/dev` nodes bound from the host, a fresh `/proc` and generated `/etc`
//! files; `pivot_root` into it, detach the old root and remount the new one read-only.
//!
//! A failing step is reported through the standard library's exec-error pipe as one number:
//! `step * 1000 + errno` (see [`describe`]), so the parent can say which step failed and why.
//!
//! The operations that build the new root are planned in `plan`, before the fork; this file
//! holds what runs in the child and its error reporting.

mod plan;

use std::ffi::{CStr, CString, OsStr};
use std::os::unix::process::CommandExt;
use std::process::Command;

use super::{SandboxError, Spec};
use plan::{cstr, ctext, plan, Op};

/// The uid and gid the program has inside (an unprivileged user: no capabilities after exec).
const INSIDE_ID: u32 = 1000;

/// Steps, numbered for error reports (index = step number).
const STEPS: &[&str] = &[
    "exec",
    "unshare namespaces",
    "deny setgroups",
    "write uid_map",
    "write gid_map",
    "fork into the pid namespace",
    "make mounts private",
    "mount the root tmpfs",
    "create a directory in the root",
    "bind an input read-only",
    "remount read-only",
    "write a generated file",
    "mount /proc",
    "create a symlink",
    "mount a tmpfs over a host directory",
    "pivot_root",
    "detach the old root",
    "remount the root read-only",
    "enter /build",
    "set the hostname",
    "set the parent-death signal",
    "start a session without a controlling terminal",
];

const S_UNSHARE: i32 = 1;
const S_SETGROUPS: i32 = 2;
const S_UID_MAP: i32 = 3;
const S_GID_MAP: i32 = 4;
const S_FORK: i32 = 5;
const S_PRIVATE: i32 = 6;
const S_TMPFS: i32 = 7;
const S_MKDIR: i32 = 8;
const S_BIND: i32 = 9;
const S_REMOUNT: i32 = 10;
const S_WRITE: i32 = 11;
const S_PROC: i32 = 12;
const S_SYMLINK: i32 = 13;
const S_MASK: i32 = 14;
const S_PIVOT: i32 = 15;
const S_DETACH: i32 = 16;
const S_ROOT_RO: i32 = 17;
const S_CHDIR: i32 = 18;
const S_HOSTNAME: i32 = 19;
const S_PDEATHSIG: i32 = 20;
const S_SETSID: i32 = 21;

/// Turns an error number from the child into "step: cause".
pub fn describe(raw: i32) -> String {
    let (step, errno) = (raw / 1000, raw % 1000);
    let cause = std::io::Error::from_raw_os_error(errno);
    match STEPS.get(step as usize) {
        Some(name) if step > 0 => format!("{name}: {cause}"),
        _ => cause.to_string(),
    }
}

/// Fails with `step * 1000 + errno`.
fn fail(step: i32) -> std::io::Error {
    let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    std::io::Error::from_raw_os_error(step * 1000 + errno.min(999))
}

fn check(step: i32, result: libc::c_int) -> std::io::Result<()> {
    if result < 0 {
        Err(fail(step))
    } else {
        Ok(())
    }
}

/// Writes `contents` to the file at `path` (created or truncated). No allocation.
fn write_file(step: i32, path: &CStr, contents: &[u8]) -> std::io::Result<()> {
    // SAFETY: `path` is a NUL-terminated C string borrowed for the whole block; `write` reads
    // exactly `contents.len()` bytes from `contents`, a live slice; `fd` is the descriptor this
    // block opened and it is closed once, here. No Rust memory is handed to the kernel beyond
    // these borrows, and nothing allocates (safe between fork and exec).
    unsafe {
        let fd = libc::open(
            path.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC,
            0o644,
        );
        if fd < 0 {
            return Err(fail(step));
        }
        let written = libc::write(fd, contents.as_ptr().cast(), contents.len());
        let failed = written < 0 || written as usize != contents.len();
        let err = fail(step);
        libc::close(fd);
        if failed {
            return Err(err);
        }
    }
    Ok(())
}

/// mount(2) for this module: every string is a borrowed `CStr` (or absent, passed as null),
/// so no call site handles a raw pointer. Allocates nothing (safe between fork and exec).
///
/// rustix's `mount` is in the dependency tree but not used here: its raw-syscall backend
/// reports the error in its return value and leaves `errno` alone, while every step of the
/// child reports through [`fail`], which reads `errno`.
fn mount(
    step: i32,
    src: Option<&CStr>,
    dst: &CStr,
    fstype: Option<&CStr>,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> std::io::Result<()> {
    let ptr = |s: Option<&CStr>| s.map_or(std::ptr::null(), CStr::as_ptr);
    // SAFETY: every pointer is either null (which mount(2) accepts for the source, type and
    // data of the calls made here: remounts, binds and propagation changes) or that of a
    // NUL-terminated `CStr` borrowed for the duration of the call. mount(2) only reads them.
    check(step, unsafe {
        libc::mount(ptr(src), dst.as_ptr(), ptr(fstype), flags, ptr(data).cast())
    })
}

/// The child's part: all of it runs between fork and exec.
struct Child {
    uid_map: CString,
    gid_map: CString,
    root: CString,
    old_root: CString,
    ops: Vec<Op>,
}

impl Child {
    fn run(&self) -> std::io::Result<()> {
        let flags = libc::CLONE_NEWUSER
            | libc::CLONE_NEWNS
            | libc::CLONE_NEWPID
            | libc::CLONE_NEWNET
            | libc::CLONE_NEWIPC
            | libc::CLONE_NEWUTS;
        // SAFETY: unshare(2) takes no pointers and has no memory-safety preconditions; the
        // process is the single-threaded child of a fork, which CLONE_NEWUSER requires.
        check(S_UNSHARE, unsafe { libc::unshare(flags) })?;
        write_file(S_SETGROUPS, c"/proc/self/setgroups", b"deny")?;
        write_file(S_UID_MAP, c"/proc/self/uid_map", self.uid_map.as_bytes())?;
        write_file(S_GID_MAP, c"/proc/self/gid_map", self.gid_map.as_bytes())?;
        // SAFETY: this process is the single-threaded child of the first fork, so the new child
        // inherits no lock held by another thread; both sides go on to make only system calls
        // (the parent waits in `wait_and_exit`, which never returns) and never allocate.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(fail(S_FORK));
        }
        if pid > 0 {
            wait_and_exit(pid);
        }
        // SAFETY: prctl(PR_SET_PDEATHSIG) takes only integer arguments and setsid(2) takes
        // none; neither touches this process's memory.
        unsafe {
            check(
                S_PDEATHSIG,
                libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                ),
            )?;
            // A new session has no controlling terminal: the bound /dev/tty then opens with
            // ENXIO, and imported code cannot read from or write to the user's terminal, nor
            // get signals from it (Nix's builders do the same).
            check(S_SETSID, libc::setsid())?;
        }
        mount(
            S_PRIVATE,
            None,
            c"/",
            None,
            libc::MS_REC | libc::MS_PRIVATE,
            None,
        )?;
        mount(
            S_TMPFS,
            Some(c"tmpfs"),
            &self.root,
            Some(c"tmpfs"),
            libc::MS_NOSUID | libc::MS_NODEV,
            Some(c"mode=0755"),
        )?;
        for op in &self.ops {
            self.apply(op)?;
        }
        // SAFETY: every pointer passed is that of a NUL-terminated C string (`self.root` and
        // `self.old_root`, owned by `self`, or `c"…"` literals) live for the whole block; the
        // calls only read them. pivot_root through `syscall` gets exactly its two path
        // arguments.
        unsafe {
            check(S_MKDIR, libc::mkdir(self.old_root.as_ptr(), 0o700))?;
            check(
                S_PIVOT,
                libc::syscall(
                    libc::SYS_pivot_root,
                    self.root.as_ptr(),
                    self.old_root.as_ptr(),
                ) as libc::c_int,
            )?;
            check(S_PIVOT, libc::chdir(c"/".as_ptr()))?;
            check(
                S_DETACH,
                libc::umount2(c"/.old-root".as_ptr(), libc::MNT_DETACH),
            )?;
            check(S_DETACH, libc::rmdir(c"/.old-root".as_ptr()))?;
        }
        mount(
            S_ROOT_RO,
            None,
            c"/",
            None,
            libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV,
            None,
        )?;
        // SAFETY: chdir gets a `c"…"` literal; sethostname reads exactly `host.len()` bytes from
        // `host`, a static byte string.
        unsafe {
            check(S_CHDIR, libc::chdir(c"/build".as_ptr()))?;
            let host = b"pystore";
            check(
                S_HOSTNAME,
                libc::sethostname(host.as_ptr().cast(), host.len()),
            )?;
        }
        Ok(())
    }

    fn apply(&self, op: &Op) -> std::io::Result<()> {
        match op {
            Op::Mkdir(path) => {
                // SAFETY: `path` is a C string owned by `op`, live for the call, which only
                // reads it.
                let r = unsafe { libc::mkdir(path.as_ptr(), 0o755) };
                if r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EEXIST) {
                    return Err(fail(S_MKDIR));
                }
                Ok(())
            }
            Op::Touch(path) => write_file(S_MKDIR, path, b""),
            Op::Bind {
                src,
                dst,
                read_only,
                flags,
            } => {
                mount(
                    S_BIND,
                    Some(src),
                    dst,
                    None,
                    libc::MS_BIND | libc::MS_REC,
                    None,
                )?;
                if *read_only {
                    mount(
                        S_REMOUNT,
                        None,
                        dst,
                        None,
                        libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | flags,
                        None,
                    )?;
                }
                Ok(())
            }
            Op::Write { path, contents } => write_file(S_WRITE, path, contents.as_bytes()),
            Op::Symlink { target, link } => check(
                S_SYMLINK,
                // SAFETY: `target` and `link` are C strings owned by `op`, live for the call,
                // which only reads them.
                unsafe { libc::symlink(target.as_ptr(), link.as_ptr()) },
            ),
            Op::Mask(dst) => mount(
                S_MASK,
                Some(c"tmpfs"),
                dst,
                Some(c"tmpfs"),
                libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                Some(c"size=0,mode=0555"),
            ),
            Op::Proc(dst) => mount(
                S_PROC,
                Some(c"proc"),
                dst,
                Some(c"proc"),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                None,
            ),
        }
    }
}

/// The intermediate process: closes every descriptor (so the parent sees end-of-file and the
/// exec-error pipe closes when the program's copies do), waits for the program and exits as
/// it did. Never returns.
fn wait_and_exit(pid: libc::pid_t) -> ! {
    // SAFETY: close_range, getrlimit, close, waitpid, signal, kill and _exit are system calls
    // (or their thin libc wrappers): `rlimit` is a plain integer struct (all-zero is valid) and
    // `&mut limit` / `&mut status` point to live locals; `__errno_location` returns this
    // thread's errno, always valid to read. Closing every descriptor is sound here because this
    // process owns no Rust object that uses one (it only waits and exits); `_exit` ends it
    // without running destructors.
    unsafe {
        if libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32) != 0 {
            // Kernels before 5.9 have no close_range: close up to the descriptor limit.
            let mut limit: libc::rlimit = std::mem::zeroed();
            let max = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
                limit.rlim_cur.min(65_536) as libc::c_int
            } else {
                1024
            };
            for fd in 0..max {
                libc::close(fd);
            }
        }
        let mut status = 0;
        loop {
            let r = libc::waitpid(pid, &mut status, 0);
            if r == pid {
                break;
            }
            if r < 0 && *libc::__errno_location() != libc::EINTR {
                libc::_exit(127);
            }
        }
        if libc::WIFEXITED(status) {
            libc::_exit(libc::WEXITSTATUS(status));
        }
        if libc::WIFSIGNALED(status) {
            let signal = libc::WTERMSIG(status);
            libc::signal(signal, libc::SIG_DFL);
            libc::kill(libc::getpid(), signal);
            libc::_exit(128 + signal);
        }
        libc::_exit(127)
    }
}

/// Makes `command` run in the full sandbox described by `spec`.
pub fn enter(command: &mut Command, spec: &Spec) -> Result<(), SandboxError> {
    let root = spec.scratch.join("root");
    std::fs::create_dir_all(&root).map_err(|source| SandboxError::Prepare {
        path: root.clone(),
        source,
    })?;
    // SAFETY: geteuid(2) and getegid(2) take no arguments, cannot fail and touch no memory.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let child = Child {
        uid_map: ctext(&format!("{INSIDE_ID} {uid} 1\n")),
        gid_map: ctext(&format!("{INSIDE_ID} {gid} 1\n")),
        old_root: cstr(&root.join(".old-root"))?,
        ops: plan(spec, &root)?,
        root: cstr(&root)?,
    };
    // SAFETY: `pre_exec` requires the hook to be safe between fork and exec in a possibly
    // multithreaded parent: no allocation, no locks. `Child::run` only makes system calls on
    // C strings and vectors prepared above and moved into the closure (see the module docs);
    // its errors are `io::Error`s from raw OS codes, which do not allocate.
    unsafe {
        command.pre_exec(move || child.run());
    }
    Ok(())
}

/// `None` when the full sandbox can be set up here, else why not: sets it up around a program
/// that does not exist, so success is the exec failing with "not found".
pub fn probe() -> Option<String> {
    let scratch = match tempfile::Builder::new().prefix("pystore-probe").tempdir() {
        Ok(dir) => dir,
        Err(e) => return Some(format!("cannot create a probe directory: {e}")),
    };
    let spec = Spec {
        inputs: Vec::new(),
        scratch: scratch.path().to_path_buf(),
        program: (String::new(), String::new()),
        args: Vec::new(),
        path: Vec::new(),
        system_libraries: false,
        source_date_epoch: None,
    };
    if let Err(e) = std::fs::create_dir_all(scratch.path().join("build")) {
        return Some(format!("cannot create a probe directory: {e}"));
    }
    let mut command = Command::new(OsStr::new("/nonexistent/pystore-sandbox-probe"));
    command.env_clear();
    if let Err(e) = enter(&mut command, &spec) {
        return Some(e.to_string());
    }
    match command.spawn() {
        Ok(mut child) => {
            let _ = child.wait();
            Some("the probe program unexpectedly ran".into())
        }
        Err(e) => match e.raw_os_error() {
            Some(libc::ENOENT) => None,
            Some(raw) => Some(describe(raw)),
            None => Some(e.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_step() {
        assert_eq!(
            describe(S_PROC * 1000 + libc::EPERM),
            format!(
                "mount /proc: {}",
                std::io::Error::from_raw_os_error(libc::EPERM)
            )
        );
        assert_eq!(
            describe(libc::ENOENT),
            std::io::Error::from_raw_os_error(libc::ENOENT).to_string()
        );
        assert_eq!(STEPS.len() as i32, S_SETSID + 1);
    }
}

#[cfg(test)]
mod run_tests {
    use super::super::{Input, Mode, Sandbox, Spec};
    use std::path::PathBuf;

    /// Runs a shell script in the full sandbox (the host's /usr/bin as an input), when the
    /// machine allows it.
    fn sh(script: &str) -> Option<(i32, String, String)> {
        let sandbox = Sandbox::new(Mode::Auto).unwrap();
        if sandbox.level() != super::super::Level::Full {
            eprintln!("skipped: {:?}", sandbox.reason());
            return None;
        }
        let scratch = tempfile::tempdir().unwrap();
        let spec = Spec {
            inputs: vec![Input {
                label: "bin".into(),
                host: PathBuf::from("/usr/bin"),
            }],
            scratch: scratch.path().to_path_buf(),
            program: ("bin".into(), "sh".into()),
            args: vec!["-c".into(), script.into()],
            path: vec![("bin".into(), String::new())],
            system_libraries: true,
            source_date_epoch: None,
        };
        let out = sandbox.command(&spec).unwrap().output().unwrap();
        Some((
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }

    #[test]
    fn a_shell_sees_the_minimal_root() {
        let Some((code, out, err)) = sh(
            "echo pid=$$; id -u; pwd; ls / | tr '\\n' ' '; echo; cat /etc/hostname 2>/dev/null; \
             hostname 2>/dev/null; echo hi > /build/x && cat /build/x; \
             (echo no > /etc/x) 2>/dev/null || echo etc-ro; (echo no > /inputs/bin/x) 2>/dev/null || echo inputs-ro; \
             ls /usr/lib/python3 | wc -l; test -e /usr/local || echo no-usr-local; exit 3",
        ) else {
            return;
        };
        assert_eq!(code, 3, "{out}\n{err}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "pid=1", "{out}\n{err}");
        assert_eq!(lines[1], "1000", "{out}\n{err}");
        assert_eq!(lines[2], "/build", "{out}\n{err}");
        assert!(
            lines[3].starts_with("build dev etc inputs lib lib64 proc usr"),
            "{out}"
        );
        assert!(
            out.contains("hi\netc-ro\ninputs-ro\n0\nno-usr-local\n"),
            "{out}\n{err}"
        );
    }

    #[test]
    fn the_sandboxed_program_leads_a_session_without_a_terminal() {
        // Fields 6 and 7 of /proc/1/stat: the session id (1: pid 1 of the namespace leads its
        // own session; 0 would mean a session led from outside, the host's) and the
        // controlling terminal (0: none). /dev/tty must not open either.
        let Some((code, out, err)) = sh(
            "cut -d' ' -f6,7 /proc/1/stat; (: < /dev/tty) 2>/dev/null && echo tty || echo no-tty",
        ) else {
            return;
        };
        assert_eq!(code, 0, "{out}\n{err}");
        assert_eq!(out, "1 0\nno-tty\n", "{err}");
    }
}
