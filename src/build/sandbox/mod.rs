//! The sandbox every step that runs a program runs in.
//!
//! On Linux a sandboxed program runs in new user, mount, pid, network, ipc and uts namespaces,
//! pivoted into a minimal root (see [`linux`]): its inputs read-only under `/inputs/<label>`,
//! `/build` writable, a minimal `/dev` and `/proc`, generated `/etc/passwd`, `/etc/group` and
//! `/etc/hosts`, the host's system library directories read-only only when asked for (a glibc
//! interpreter needs them), and nothing else of the host: no home, no `/usr/local`, no host
//! site-packages, no network. Whatever the level, the environment is cleared and set to
//! [`fixed_env`]; `PYTHONPATH` and `PYTHONHOME` are never passed.
//!
//! Which level a machine allows is found by [`Sandbox::new`] once, by trying the real machinery
//! on an empty root: unprivileged user namespaces are disabled on some machines (a sysctl,
//! AppArmor, seccomp in containers).

#[cfg(target_os = "linux")]
pub mod linux;

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The environment variable that makes the probe report that namespaces are unavailable, with
/// its value as the reason. A test seam (like `PYSTORE_FAILPOINT`): it lets tests running as
/// root see what a machine without user namespaces does. Only [`Sandbox::new`] reads it, and
/// only in builds that honour test seams ([`crate::store::failpoint::SEAMS`]): a release build
/// ignores it.
pub const UNAVAILABLE_SEAM: &str = "PYSTORE_TEST_SANDBOX_UNAVAILABLE";

/// Where `/build` is inside the sandbox; the program's working directory and `TMPDIR`.
pub const BUILD_DIR: &str = "/build";

/// `HOME` inside the sandbox: a directory that does not exist (the Nix convention).
pub const HOME: &str = "/homeless-shelter";

/// `SOURCE_DATE_EPOCH` when the caller gives none: 1980-01-01 00:00:00 UTC, the ZIP default.
pub const DEFAULT_SOURCE_DATE_EPOCH: i64 = 315_532_800;

/// What the user asked for (`--sandbox`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Use the strongest isolation the machine allows and record which it was.
    #[default]
    Auto,
    /// Refuse to run anything without full isolation.
    Require,
    /// No namespaces (the environment is still cleared).
    Off,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(text: &str) -> Result<Mode, String> {
        match text {
            "auto" => Ok(Mode::Auto),
            "require" => Ok(Mode::Require),
            "off" => Ok(Mode::Off),
            other => Err(format!(
                "unknown sandbox mode {other:?} (expected auto, require or off)"
            )),
        }
    }
}

/// The isolation a program actually ran with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// `--sandbox off`: no namespaces, a cleared environment.
    Off,
    /// Namespaces were unavailable: a cleared environment and isolation flags only.
    None,
    /// User, mount, pid, network, ipc and uts namespaces and a pivoted minimal root.
    Full,
}

impl Level {
    /// `full`, `none` or `off`: how manifests, reports and provenance spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Full => "full",
            Level::None => "none",
            Level::Off => "off",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the sandbox could not be set up or a program could not be started in it.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// `--sandbox require` on a machine without full isolation.
    #[error("--sandbox require: this machine does not allow full isolation ({reason}); enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, or an AppArmor profile allowing userns) or use --sandbox auto")]
    Required {
        /// What the probe found.
        reason: String,
    },
    /// Preparing the sandbox's root.
    #[error("preparing the sandbox in {}: {source}", path.display())]
    Prepare {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A path that cannot be passed to the kernel (it holds a NUL byte).
    #[error("cannot use {} in the sandbox: it contains a NUL byte", path.display())]
    BadPath {
        /// The path.
        path: PathBuf,
    },
    /// An input label that is not a plain name.
    #[error("sandbox input label {label:?} is not a plain name (letters, digits, - _ .)")]
    BadLabel {
        /// The label.
        label: String,
    },
}

/// One read-only input of a sandboxed program.
#[derive(Clone, Debug)]
pub struct Input {
    /// Its name inside: mounted at `/inputs/<label>`.
    pub label: String,
    /// Where it is on the host.
    pub host: PathBuf,
}

/// What to run and with what.
#[derive(Clone, Debug)]
pub struct Spec {
    /// The read-only inputs.
    pub inputs: Vec<Input>,
    /// A host directory the sandbox may use (created by the caller, removed by the caller):
    /// `scratch/build` becomes `/build`, `scratch/root` the mount point of the new root.
    pub scratch: PathBuf,
    /// The program: an input's label and a `/`-separated path inside it.
    pub program: (String, String),
    /// Its arguments.
    pub args: Vec<OsString>,
    /// `PATH`: directories inside inputs, as (label, relative path).
    pub path: Vec<(String, String)>,
    /// Bind the host's system library directories (`/lib`, `/lib64`, `/usr/lib`, ...)
    /// read-only, without Python's directories in them: for programs linked against the host's
    /// glibc.
    pub system_libraries: bool,
    /// `SOURCE_DATE_EPOCH` for the program ([`DEFAULT_SOURCE_DATE_EPOCH`] when `None`).
    pub source_date_epoch: Option<i64>,
}

/// The sandbox of this machine at the level found by the probe.
#[derive(Clone, Debug)]
pub struct Sandbox {
    level: Level,
    reason: Option<String>,
}

impl Sandbox {
    /// Finds the level this machine allows for `mode`: `Off` gives [`Level::Off`] without
    /// probing; `Auto` the best available; `Require` fails unless it is [`Level::Full`].
    pub fn new(mode: Mode) -> Result<Sandbox, SandboxError> {
        if mode == Mode::Off {
            return Ok(Sandbox {
                level: Level::Off,
                reason: Some("--sandbox off".into()),
            });
        }
        let reason = probe();
        match (mode, reason) {
            (_, None) => Ok(Sandbox {
                level: Level::Full,
                reason: None,
            }),
            (Mode::Require, Some(reason)) => Err(SandboxError::Required { reason }),
            (_, Some(reason)) => {
                tracing::debug!("sandbox: no namespaces ({reason}); level none");
                Ok(Sandbox {
                    level: Level::None,
                    reason: Some(reason),
                })
            }
        }
    }

    /// The level programs run with.
    pub fn level(&self) -> Level {
        self.level
    }

    /// Why the level is below [`Level::Full`], if it is.
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// Where the program sees input `label` (whose host path is `host`): `/inputs/<label>` in
    /// the full sandbox, the host path otherwise.
    pub fn input_path(&self, label: &str, host: &Path) -> PathBuf {
        match self.level {
            Level::Full => Path::new("/inputs").join(label),
            Level::None | Level::Off => host.to_path_buf(),
        }
    }

    /// Where the program sees `/build`.
    pub fn build_path(&self, spec: &Spec) -> PathBuf {
        match self.level {
            Level::Full => PathBuf::from(BUILD_DIR),
            Level::None | Level::Off => spec.scratch.join("build"),
        }
    }

    /// A command that runs `spec` at this sandbox's level; the caller sets stdio and spawns it.
    /// Creates `scratch/build` (and `scratch/root`).
    pub fn command(&self, spec: &Spec) -> Result<Command, SandboxError> {
        for input in &spec.inputs {
            let plain = !input.label.is_empty()
                && input.label != "."
                && input.label != ".."
                && input
                    .label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !plain {
                return Err(SandboxError::BadLabel {
                    label: input.label.clone(),
                });
            }
        }
        let build = spec.scratch.join("build");
        std::fs::create_dir_all(&build).map_err(|source| SandboxError::Prepare {
            path: build.clone(),
            source,
        })?;
        let resolve = |(label, rel): &(String, String)| -> PathBuf {
            let host = spec
                .inputs
                .iter()
                .find(|i| &i.label == label)
                .map(|i| i.host.clone())
                .unwrap_or_default();
            let base = self.input_path(label, &host);
            if rel.is_empty() {
                base
            } else {
                base.join(rel)
            }
        };
        let program = resolve(&spec.program);
        let path: Vec<String> = spec
            .path
            .iter()
            .map(|p| resolve(p).to_string_lossy().into_owned())
            .collect();
        let mut command = Command::new(&program);
        command.args(&spec.args).env_clear();
        for (key, value) in fixed_env(
            &path.join(":"),
            &self.build_path(spec),
            spec.source_date_epoch,
        ) {
            command.env(key, value);
        }
        match self.level {
            Level::Full => {
                #[cfg(target_os = "linux")]
                linux::enter(&mut command, spec)?;
            }
            Level::None | Level::Off => {
                command.current_dir(&build);
            }
        }
        Ok(command)
    }
}

/// Runs `command` with stdin empty and stdout and stderr captured, killing it after `timeout`:
/// `Ok(None)` when it had to be killed. It runs in a process group of its own, and the whole
/// group is killed, so children it started (which would keep its output open) die too; in the
/// full sandbox the program also has the parent-death signal.
pub fn output_with_timeout(
    command: &mut Command,
    timeout: std::time::Duration,
) -> std::io::Result<Option<std::process::Output>> {
    use std::io::Read;
    use std::process::Stdio;
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(command, 0);
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = reader(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = reader(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let status = wait_with_timeout(&mut child, timeout)?;
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    Ok(status.map(|status| std::process::Output {
        status,
        stdout,
        stderr,
    }))
}

/// Waits for `child` (the leader of its own process group) to exit, killing the whole group
/// after `timeout`: `None` when it had to be killed. The wait blocks (no polling: a build that
/// runs a program for every wheel would otherwise lose half a poll interval on each).
#[cfg(unix)]
fn wait_with_timeout(
    child: &mut std::process::Child,
    timeout: std::time::Duration,
) -> std::io::Result<Option<std::process::ExitStatus>> {
    use std::sync::{Arc, Condvar, Mutex};
    let Ok(pid) = libc::pid_t::try_from(child.id()) else {
        return child.wait().map(Some);
    };
    // `exited` is set, under the lock, before the child is reaped; the watchdog kills only
    // while it is unset, so it never signals a process group id that could have been reused.
    let state = Arc::new((Mutex::new(Exit::default()), Condvar::new()));
    let watchdog = {
        let state = Arc::clone(&state);
        std::thread::spawn(move || {
            let (lock, exited) = &*state;
            let guard = lock.lock().unwrap_or_else(|p| p.into_inner());
            let (mut guard, _) = exited
                .wait_timeout_while(guard, timeout, |exit| !exit.exited)
                .unwrap_or_else(|p| p.into_inner());
            if !guard.exited {
                // SAFETY: kill(2) takes no pointers. `-pid` names the process group
                // `output_with_timeout` created, whose leader is not reaped yet (`exited` is
                // unset and we hold the lock that must be taken to set it).
                unsafe { libc::kill(-pid, libc::SIGKILL) };
                guard.killed = true;
            }
        })
    };
    let waited = wait_without_reaping(pid);
    {
        let (lock, exited) = &*state;
        let mut guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        guard.exited = true;
        exited.notify_all();
    }
    let _ = watchdog.join();
    waited?;
    let status = child.wait()?;
    let killed = state.0.lock().unwrap_or_else(|p| p.into_inner()).killed;
    Ok((!killed).then_some(status))
}

/// What the watchdog of [`wait_with_timeout`] knows.
#[cfg(unix)]
#[derive(Default)]
struct Exit {
    /// The child has exited (it may not be reaped yet).
    exited: bool,
    /// The watchdog killed it.
    killed: bool,
}

/// Blocks until the child `pid` has exited, leaving it to be reaped by `Child::wait`.
#[cfg(unix)]
fn wait_without_reaping(pid: libc::pid_t) -> std::io::Result<()> {
    loop {
        // SAFETY: `info` is a valid, writable siginfo_t that outlives the call; waitid writes
        // only into it. WNOWAIT leaves the child a zombie, so its pid stays ours.
        let result = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if result == 0 {
            return Ok(());
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Waits for `child` to exit, killing it after `timeout`: `None` when it had to be killed.
#[cfg(not(unix))]
fn wait_with_timeout(
    child: &mut std::process::Child,
    timeout: std::time::Duration,
) -> std::io::Result<Option<std::process::ExitStatus>> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The whole environment of a sandboxed program (sorted by name): nothing is inherited.
pub fn fixed_env(
    path: &str,
    build: &Path,
    source_date_epoch: Option<i64>,
) -> Vec<(&'static str, OsString)> {
    let epoch = source_date_epoch.unwrap_or(DEFAULT_SOURCE_DATE_EPOCH);
    vec![
        ("HOME", HOME.into()),
        ("LANG", "C.UTF-8".into()),
        ("PATH", path.into()),
        ("PYTHONHASHSEED", "0".into()),
        ("PYTHONNOUSERSITE", "1".into()),
        ("SOURCE_DATE_EPOCH", epoch.to_string().into()),
        ("TMPDIR", build.as_os_str().to_owned()),
        ("TZ", "UTC".into()),
    ]
}

/// `None` when full isolation works here, else why not.
fn probe() -> Option<String> {
    let seam = crate::store::failpoint::SEAMS
        .then(|| std::env::var_os(UNAVAILABLE_SEAM))
        .flatten();
    if let Some(reason) = seam {
        return Some(format!(
            "{UNAVAILABLE_SEAM} is set: {}",
            reason.to_string_lossy()
        ));
    }
    #[cfg(target_os = "linux")]
    {
        linux::probe()
    }
    #[cfg(not(target_os = "linux"))]
    {
        Some("namespaces are Linux-only".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn output_with_timeout_returns_the_output_or_kills_the_group_in_time() {
        use std::os::unix::process::ExitStatusExt;
        let started = std::time::Instant::now();
        let output = output_with_timeout(
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            std::time::Duration::from_secs(60),
        )
        .unwrap()
        .expect("it exits by itself");
        assert_eq!(output.status.code(), Some(3));
        assert_eq!(
            (&output.stdout[..], &output.stderr[..]),
            (&b"out\n"[..], &b"err\n"[..])
        );
        // A blocking wait: no poll interval between the exit and the return.
        assert!(started.elapsed() < std::time::Duration::from_secs(30));

        // The shell and the sleep it started (which holds the output open) are both killed.
        let started = std::time::Instant::now();
        let killed = output_with_timeout(
            Command::new("sh").args(["-c", "sleep 60; echo never"]),
            std::time::Duration::from_millis(300),
        )
        .unwrap();
        assert!(killed.is_none());
        assert!(started.elapsed() < std::time::Duration::from_secs(30));

        // The status of a program that kills itself is reported, not taken for a timeout.
        let output = output_with_timeout(
            Command::new("sh").args(["-c", "kill -9 $$"]),
            std::time::Duration::from_secs(60),
        )
        .unwrap()
        .expect("it ended by itself");
        assert_eq!(output.status.signal(), Some(9));
    }

    #[test]
    fn modes_parse_and_levels_print() {
        assert_eq!("auto".parse::<Mode>(), Ok(Mode::Auto));
        assert_eq!("require".parse::<Mode>(), Ok(Mode::Require));
        assert_eq!("off".parse::<Mode>(), Ok(Mode::Off));
        assert!("strict".parse::<Mode>().unwrap_err().contains("strict"));
        assert_eq!(Level::Full.to_string(), "full");
        assert_eq!(Level::None.to_string(), "none");
        assert_eq!(Level::Off.to_string(), "off");
    }

    #[test]
    fn the_environment_is_fixed_and_has_no_python_path() {
        let env = fixed_env("/inputs/bundle/bin", Path::new("/build"), None);
        let names: Vec<&str> = env.iter().map(|(k, _)| *k).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
        assert!(!names.contains(&"PYTHONPATH") && !names.contains(&"PYTHONHOME"));
        let get = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
        assert_eq!(get("SOURCE_DATE_EPOCH"), Some("315532800".into()));
        assert_eq!(get("TMPDIR"), Some("/build".into()));
        assert_eq!(get("HOME"), Some(HOME.into()));
    }

    #[test]
    fn off_runs_with_a_cleared_environment_in_scratch_build() {
        let scratch = tempfile::tempdir().unwrap();
        let sandbox = Sandbox::new(Mode::Off).unwrap();
        assert_eq!(sandbox.level(), Level::Off);
        let spec = Spec {
            inputs: vec![Input {
                label: "sh".into(),
                host: PathBuf::from("/bin"),
            }],
            scratch: scratch.path().to_path_buf(),
            program: ("sh".into(), "sh".into()),
            args: vec!["-c".into(), "pwd; env | sort".into()],
            path: vec![("sh".into(), String::new())],
            system_libraries: true,
            source_date_epoch: Some(1),
        };
        let out = sandbox.command(&spec).unwrap().output().unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let build = scratch.path().join("build");
        assert!(
            text.starts_with(&format!("{}\n", build.display())),
            "{text}"
        );
        assert!(text.contains("SOURCE_DATE_EPOCH=1\n"), "{text}");
        assert!(text.contains("PATH=/bin\n"), "{text}");
        assert!(!text.contains("CARGO"), "{text}");
    }

    #[test]
    fn a_program_running_too_long_is_killed() {
        let scratch = tempfile::tempdir().unwrap();
        let sandbox = Sandbox::new(Mode::Auto).unwrap();
        let spec = Spec {
            inputs: vec![Input {
                label: "bin".into(),
                host: PathBuf::from("/usr/bin"),
            }],
            scratch: scratch.path().to_path_buf(),
            program: ("bin".into(), "sh".into()),
            args: vec!["-c".into(), "echo started; sleep 30".into()],
            path: vec![("bin".into(), String::new())],
            system_libraries: true,
            source_date_epoch: None,
        };
        let started = std::time::Instant::now();
        let mut command = sandbox.command(&spec).unwrap();
        let out = output_with_timeout(&mut command, std::time::Duration::from_millis(500)).unwrap();
        assert!(out.is_none());
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        let spec_quick = Spec {
            args: vec!["-c".into(), "echo quick".into()],
            ..spec
        };
        let mut command = sandbox.command(&spec_quick).unwrap();
        let out = output_with_timeout(&mut command, std::time::Duration::from_secs(30))
            .unwrap()
            .unwrap();
        assert_eq!(out.stdout, b"quick\n");
    }

    #[test]
    fn labels_must_be_plain_names() {
        let scratch = tempfile::tempdir().unwrap();
        let spec = Spec {
            inputs: vec![Input {
                label: "../etc".into(),
                host: PathBuf::from("/etc"),
            }],
            scratch: scratch.path().to_path_buf(),
            program: ("x".into(), String::new()),
            args: vec![],
            path: vec![],
            system_libraries: false,
            source_date_epoch: None,
        };
        let err = Sandbox::new(Mode::Off).unwrap().command(&spec).unwrap_err();
        assert!(err.to_string().contains("../etc"), "{err}");
    }
}
