//! Files from and for the user: bounded reads of input files, and writes that honour the umask.
//!
//! Any path that comes from input (a recipe, a requirements file and its `-r`/`-c` includes, a
//! lock, a `file://` URL, a wheelhouse entry) may name `/dev/zero`, a FIFO, a directory or a
//! huge file. [`open_input`] opens it without blocking (a FIFO would otherwise hang `open`
//! until a writer appears), accepts only a regular file, and checks its size against a cap;
//! [`read_input`] then reads at most the cap, so a file that grows (or a `/proc` file that
//! reports size 0) cannot make pystore read without end. It lives in the lowest layer so every
//! layer reads input the same way.
//!
//! Files written for the user (lock files, exported requirements, copies out of the store) are
//! created like any tool creates them: mode 0666 less the umask ([`write_user_file`],
//! [`create_user_file`]). The kernel applies the umask at `open`, so it is never read.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Cap for text inputs: recipes, requirements files, locks, `pylock.toml`.
pub const TEXT_CAP: u64 = 16 << 20;

/// Why an input file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The file cannot be opened or read.
    #[error("cannot read {what} {}: {source}", path.display())]
    Io {
        what: String,
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not a regular file (a FIFO, a device, a directory, a socket).
    #[error("refusing {what} {}: it is {kind}, not a regular file; point it at a regular file", path.display())]
    NotRegular {
        what: String,
        path: PathBuf,
        kind: &'static str,
    },
    /// Larger than the cap for its kind.
    #[error("refusing {what} {}: it is larger than {cap} bytes, the most pystore reads for it{}", path.display(), size.map(|s| format!(" ({s} bytes)")).unwrap_or_default())]
    TooLarge {
        what: String,
        path: PathBuf,
        size: Option<u64>,
        cap: u64,
    },
    /// A text input that is not UTF-8.
    #[error("refusing {what} {}: it is not UTF-8 text", path.display())]
    NotText { what: String, path: PathBuf },
}

impl InputError {
    /// What is wrong, without the file's name (for messages that name it already).
    pub fn reason(&self) -> String {
        match self {
            InputError::Io { source, .. } => source.to_string(),
            InputError::NotRegular { kind, .. } => format!("it is {kind}, not a regular file"),
            InputError::TooLarge { cap, size, .. } => format!(
                "it is larger than {cap} bytes, the most pystore reads for it{}",
                size.map(|s| format!(" ({s} bytes)")).unwrap_or_default()
            ),
            InputError::NotText { .. } => "it is not UTF-8 text".to_owned(),
        }
    }

    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            InputError::Io { path, .. }
            | InputError::NotRegular { path, .. }
            | InputError::TooLarge { path, .. }
            | InputError::NotText { path, .. } => path,
        }
    }
}

/// Opens the input file `path` (described as `what` in errors, e.g. "requirements file") for
/// reading: never blocks, refuses anything but a regular file (symlinks are followed) and a
/// file larger than `cap`. Returns the file and its size.
pub fn open_input(path: &Path, what: &str, cap: u64) -> Result<(File, u64), InputError> {
    let io = |source| InputError::Io {
        what: what.to_owned(),
        path: path.to_path_buf(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever. It
        // changes nothing for regular files, the only kind read after the check below.
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(InputError::NotRegular {
            what: what.to_owned(),
            path: path.to_path_buf(),
            kind: file_kind(&meta),
        });
    }
    if meta.len() > cap {
        return Err(InputError::TooLarge {
            what: what.to_owned(),
            path: path.to_path_buf(),
            size: Some(meta.len()),
            cap,
        });
    }
    Ok((file, meta.len()))
}

/// Reads the whole input file `path`, at most `cap` bytes (see [`open_input`]).
pub fn read_input(path: &Path, what: &str, cap: u64) -> Result<Vec<u8>, InputError> {
    let (file, size) = open_input(path, what, cap)?;
    let mut bytes = Vec::with_capacity(size as usize);
    // One byte past the cap tells a file that grew (or lied about its size) from one at the cap.
    file.take(cap.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| InputError::Io {
            what: what.to_owned(),
            path: path.to_path_buf(),
            source,
        })?;
    if bytes.len() as u64 > cap {
        return Err(InputError::TooLarge {
            what: what.to_owned(),
            path: path.to_path_buf(),
            size: None,
            cap,
        });
    }
    Ok(bytes)
}

/// Reads the UTF-8 text input file `path`, at most [`TEXT_CAP`] bytes.
pub fn read_text_input(path: &Path, what: &str) -> Result<String, InputError> {
    let bytes = read_input(path, what, TEXT_CAP)?;
    String::from_utf8(bytes).map_err(|_| InputError::NotText {
        what: what.to_owned(),
        path: path.to_path_buf(),
    })
}

fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let kind = meta.file_type();
        if kind.is_fifo() {
            return "a FIFO";
        }
        if kind.is_char_device() || kind.is_block_device() {
            return "a device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    if meta.is_dir() {
        "a directory"
    } else {
        "not a file"
    }
}

/// A new temporary file in `dir` with mode 0666 less the umask (0777 less the umask when
/// `executable`), to be filled and then persisted under its final name in the same directory.
pub fn create_user_file(dir: &Path, executable: bool) -> std::io::Result<tempfile::NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(".pystore-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // The mode asked for at open(2) is masked by the umask there: what any tool gets.
        let mode = if executable { 0o777 } else { 0o666 };
        builder.permissions(std::fs::Permissions::from_mode(mode));
    }
    #[cfg(not(unix))]
    let _ = executable;
    builder.tempfile_in(dir)
}

/// Writes `bytes` to `path` for the user, replacing what is there atomically (a temporary file
/// in the same directory, renamed over it), with mode 0666 less the umask.
pub fn write_user_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut temp = create_user_file(dir, false)?;
    std::io::Write::write_all(&mut temp, bytes)?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_are_read_up_to_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("reqs.txt");
        std::fs::write(&file, "abc\n").unwrap();
        assert_eq!(
            read_text_input(&file, "requirements file").unwrap(),
            "abc\n"
        );
        assert_eq!(read_input(&file, "x", 4).unwrap(), b"abc\n");
        let err = read_input(&file, "lock", 3).unwrap_err().to_string();
        assert!(
            err.contains("refusing lock") && err.contains("larger than 3 bytes"),
            "{err}"
        );
        assert!(err.contains("(4 bytes)"), "{err}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn devices_directories_and_fifos_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_input(Path::new("/dev/zero"), "requirements file", TEXT_CAP).unwrap_err();
        assert!(
            err.to_string()
                .contains("it is a device, not a regular file"),
            "{err}"
        );
        let err = read_input(dir.path(), "lock", TEXT_CAP).unwrap_err();
        assert!(err.to_string().contains("it is a directory"), "{err}");
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: `c` is a NUL-terminated C string, live for the call, which only reads it.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // Without O_NONBLOCK this open would wait for a writer forever.
        let err = read_input(&fifo, "wheelhouse file", TEXT_CAP).unwrap_err();
        assert!(err.to_string().contains("it is a FIFO"), "{err}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_file_reporting_size_zero_is_still_capped() {
        // /proc files report size 0 but have content: the cap holds on what is read.
        let err = read_input(Path::new("/proc/self/status"), "requirements file", 8).unwrap_err();
        assert!(
            matches!(err, InputError::TooLarge { size: None, .. }),
            "{err}"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn user_files_get_0666_less_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        write_user_file(&path, b"x").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        // The test process's umask is unknown, but 0600 is what tempfile gives on its own.
        let umask = current_umask();
        assert_eq!(mode, 0o666 & !umask);
        assert_eq!(std::fs::read(&path).unwrap(), b"x");
    }

    #[cfg(target_os = "linux")]
    fn current_umask() -> u32 {
        // Read from /proc (Linux) rather than umask(2), which would race other test threads.
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("Umask:")).unwrap();
        u32::from_str_radix(line.split_whitespace().nth(1).unwrap(), 8).unwrap()
    }
}
