//! File locks (flock via fd-lock): one per entry, and the store-wide gc lock.
//!
//! A lock is held for as long as its [`HeldLock`] lives; the kernel releases it when the file is
//! closed, including when the process dies. A blocked waiter is woken by the kernel the moment
//! the holder releases: there is no polling.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct HeldLock {
    // Closing the file releases the flock; the guard itself is forgotten on purpose.
    file: File,
}

/// Exclusive or shared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockMode {
    /// One holder at a time.
    Exclusive,
    /// Any number of holders, none exclusive.
    Shared,
}

fn open_lock_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
}

fn lock_file(file: File, mode: LockMode, block: bool) -> io::Result<Option<HeldLock>> {
    let mut lock = fd_lock::RwLock::new(file);
    let result = match (mode, block) {
        (LockMode::Exclusive, true) => lock.write().map(std::mem::forget),
        (LockMode::Exclusive, false) => lock.try_write().map(std::mem::forget),
        (LockMode::Shared, true) => lock.read().map(std::mem::forget),
        (LockMode::Shared, false) => lock.try_read().map(std::mem::forget),
    };
    match result {
        Ok(()) => Ok(Some(HeldLock {
            file: lock.into_inner(),
        })),
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(err) => Err(err),
    }
}

/// Takes the lock at `path` (creating the file), waiting as long as it takes. `on_wait` is called
/// once, before blocking, when someone else holds it.
pub fn acquire(path: &Path, mode: LockMode, on_wait: impl FnOnce()) -> io::Result<HeldLock> {
    if let Some(held) = lock_file(open_lock_file(path)?, mode, false)? {
        return Ok(held);
    }
    on_wait();
    lock_file(open_lock_file(path)?, mode, true)?
        .ok_or_else(|| io::Error::other("blocking lock returned without the lock"))
}

/// Takes the lock at `path` through a read-only descriptor (flock needs no write access), for
/// a store this process cannot write; `None` when the lock file cannot be opened at all (it
/// does not exist and cannot be created), in which case nothing can be coordinated and
/// nothing is written either.
pub fn acquire_read_only(
    path: &Path,
    mode: LockMode,
    on_wait: impl FnOnce(),
) -> io::Result<Option<HeldLock>> {
    let open = || OpenOptions::new().read(true).open(path);
    let Ok(file) = open() else {
        return Ok(None);
    };
    if let Some(held) = lock_file(file, mode, false)? {
        return Ok(Some(held));
    }
    on_wait();
    lock_file(open()?, mode, true)
}

/// Takes the lock at `path` only if nobody holds it.
pub fn try_acquire(path: &Path, mode: LockMode) -> io::Result<Option<HeldLock>> {
    lock_file(open_lock_file(path)?, mode, false)
}

impl HeldLock {
    /// Converts this lock to `mode` (flock converts in place: not atomically, but without
    /// deadlock), waiting as long as it takes; `on_wait` is called once before blocking.
    pub fn convert(self, mode: LockMode, on_wait: impl FnOnce()) -> io::Result<HeldLock> {
        let file = self.file;
        let retry = file.try_clone()?;
        if let Some(held) = lock_file(file, mode, false)? {
            return Ok(held);
        }
        on_wait();
        lock_file(retry, mode, true)?
            .ok_or_else(|| io::Error::other("blocking lock returned without the lock"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_excludes_and_releases_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let held = try_acquire(&path, LockMode::Exclusive).unwrap().unwrap();
        assert!(try_acquire(&path, LockMode::Exclusive).unwrap().is_none());
        assert!(try_acquire(&path, LockMode::Shared).unwrap().is_none());
        drop(held);
        assert!(try_acquire(&path, LockMode::Exclusive).unwrap().is_some());
    }

    #[test]
    fn shared_locks_coexist_and_block_conversion() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gc.lock");
        let a = try_acquire(&path, LockMode::Shared).unwrap().unwrap();
        let b = try_acquire(&path, LockMode::Shared).unwrap().unwrap();
        let waiter = std::thread::spawn(move || {
            let mut waited = false;
            let _ex = a.convert(LockMode::Exclusive, || waited = true).unwrap();
            waited
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        drop(b);
        assert!(
            waiter.join().unwrap(),
            "conversion had to wait for the other shared holder"
        );
    }
}
