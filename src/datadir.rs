//! The data folder's lock: one `herald serve` per folder, because the SQLite database, the
//! generated master key and the embedded XMTP node's files there each allow only one writer.
//!
//! The lock is an advisory `flock`-style lock on `<data_dir>/herald.lock`, held for the
//! process's life; the operating system drops it when the process ends, however it ends, so a
//! crash never leaves a stale lock behind. The file holds the holder's process id, for the
//! message a second process prints.

use std::fs::{File, TryLockError};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

/// File name of the lock inside the data folder.
pub const LOCK_FILE: &str = "herald.lock";

/// Why the data folder could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the lock. Not retryable while it runs.
    #[error(
        "another herald{holder} is already serving from the data folder {dir}; stop it first, or \
         give this one its own folder with `data_dir` (HERALD_DATA_DIR)"
    )]
    Held { dir: PathBuf, holder: String },
    /// The folder or the lock file could not be created or opened.
    #[error("cannot lock the data folder {dir} ({source}); check that it is writable, or set `data_dir` (HERALD_DATA_DIR)")]
    Io {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A held lock on a data folder; released when dropped.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Creates the folder if needed and takes its lock without waiting.
    pub fn acquire(dir: &Path) -> Result<Self, LockError> {
        let io = |source| LockError::Io {
            dir: dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(LOCK_FILE))
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                return Err(LockError::Held {
                    dir: dir.to_owned(),
                    holder: if pid.is_empty() {
                        String::new()
                    } else {
                        format!(" (process {pid})")
                    },
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        // Informational only: the lock, not this content, decides.
        let _ = file
            .set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| writeln!(file, "{}", std::process::id()));
        Ok(Self { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_folder_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path()).unwrap();
        let err = DataDirLock::acquire(dir.path()).unwrap_err();
        let shown = err.to_string();
        assert!(
            shown.contains("already serving") && shown.contains(&std::process::id().to_string()),
            "{shown}"
        );
        drop(first);
        DataDirLock::acquire(dir.path()).expect("free again once dropped");
    }
}
