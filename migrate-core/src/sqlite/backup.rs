//! SQLite's online backup API, for the CLI's `backup` and `up --backup`:
//! a copy bounded by the lock timeout, refused up front where it could only
//! hang or destroy something (the database itself, its journal files, a
//! file that is not a database).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::LockWait;

/// Copies the database to `path` with SQLite's online backup API, waiting
/// at most `timeout` for locks; on failure, why, in words for the user.
/// A file the backup created is removed again when it fails.
pub(crate) fn online_backup(
    conn: &Connection,
    path: &Path,
    timeout: Duration,
) -> Result<(), String> {
    // SQLite answers BUSY to every step then, as if another connection
    // held the lock; waiting cannot help.
    if !conn.is_autocommit() {
        return Err(
            "the connection is inside a transaction: commit or roll it back, then back up"
                .to_owned(),
        );
    }
    check_target(conn, path)?;
    // Not `path.exists()`: a dangling symlink is something already there.
    let created = std::fs::symlink_metadata(path).is_err();
    let result = copy(conn, path, timeout);
    if result.is_err() && created {
        let _ = std::fs::remove_file(path);
    }
    result
}

/// The first bytes of every SQLite database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Refuses, before anything is written, a target that is the database
/// itself (any spelling, a symlink, a hard link) or one of its journal
/// files: the copy could only fail after the whole lock timeout (the
/// source holds the lock it needs), or would corrupt the database. Refuses as well an existing file that is not an
/// SQLite database (an empty file is one, to SQLite): the backup replaces
/// a file's whole content, and a mistyped path must not destroy, say, a
/// source file. An earlier backup is replaced, as expected.
fn check_target(conn: &Connection, target: &Path) -> Result<(), String> {
    // SAFETY: a valid handle and a NUL-terminated name; SQLite returns NULL
    // or a NUL-terminated string that lives as long as the connection, read
    // at once. (Not `pragma_database_list`: it would wait for a writer's lock.)
    let source = unsafe {
        let file = rusqlite::ffi::sqlite3_db_filename(conn.handle(), c"main".as_ptr());
        if file.is_null() {
            String::new()
        } else {
            std::ffi::CStr::from_ptr(file)
                .to_string_lossy()
                .into_owned()
        }
    };
    // An in-memory or temporary database has no file.
    if !source.is_empty() {
        let source = Path::new(&source);
        if same_file(source, target) {
            return Err(format!(
                "it is the database itself ({}): a backup must go to another file",
                source.display()
            ));
        }
        let canonical = |path: &Path| std::fs::canonicalize(path).ok();
        if let (Some(source), Some(target)) = (canonical(source), canonical_target(target)) {
            for suffix in ["-journal", "-wal", "-shm"] {
                let mut own = source.clone().into_os_string();
                own.push(suffix);
                if target == Path::new(&own) {
                    return Err(format!(
                        "it is the database's {suffix} file, one of SQLite's own: a backup must \
                         go to another file"
                    ));
                }
            }
        }
    }
    match std::fs::metadata(target) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => match target.parent() {
            Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => Err(format!(
                "the directory {} does not exist: create it first, or choose another path",
                dir.display()
            )),
            _ => Ok(()),
        },
        Err(error) => Err(format!("cannot read it: {error}")),
        Ok(meta) if meta.is_dir() => Err("it is a directory: name a file to write".to_owned()),
        Ok(meta) if !meta.is_file() => Err("it is not a regular file".to_owned()),
        Ok(meta) if meta.len() == 0 => Ok(()),
        Ok(_) => {
            let mut header = [0u8; 16];
            let read = std::fs::File::open(target)
                .and_then(|mut file| std::io::Read::read_exact(&mut file, &mut header));
            if read.is_ok() && &header == SQLITE_HEADER {
                Ok(())
            } else {
                Err(
                    "the file exists and is not an SQLite database; the backup would replace \
                     its whole content: remove it first, or choose another path"
                        .to_owned(),
                )
            }
        }
    }
}

/// Whether two paths name one file: the same inode on Unix (symlinks and
/// hard links included), the same canonical path elsewhere.
fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(a), Ok(b)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return (a.dev(), a.ino()) == (b.dev(), b.ino());
        }
    }
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// The canonical form of a path that may not exist yet: its directory's
/// canonical path joined with its file name.
fn canonical_target(target: &Path) -> Option<PathBuf> {
    if let Ok(path) = std::fs::canonicalize(target) {
        return Some(path);
    }
    let name = target.file_name()?;
    let parent = match target.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    Some(std::fs::canonicalize(parent).ok()?.join(name))
}

/// How a backup's copy loop ended.
enum Copied {
    Done,
    /// Locked by another connection past the deadline.
    Busy,
    Failed(std::ffi::c_int),
}

/// SQLite's online backup API, through the C interface: rusqlite's wrapper
/// changed shape across the versions this crate supports. Waits for locks
/// until `timeout`, then fails saying who holds the lock.
fn copy(conn: &Connection, path: &Path, timeout: Duration) -> Result<(), String> {
    use rusqlite::ffi;
    let start = Instant::now();
    let destination = Connection::open(path).map_err(|e| format!("cannot open it: {e}"))?;
    // The loop below does the waiting, so that one deadline covers both
    // files (rusqlite's default would wait 5 s inside every step).
    destination
        .busy_timeout(Duration::ZERO)
        .map_err(|e| format!("cannot open it: {e}"))?;
    let _source_wait = LockWait::none(conn).map_err(|e| format!("cannot start: {e}"))?;
    // A source that cannot be read fails the copy with a message from the
    // target's handle, as if the target were at fault: say which it is.
    // (A lock is the copy loop's to wait for.)
    if let Err(error) = conn.query_row("SELECT count(*) FROM main.sqlite_master", [], |_| Ok(())) {
        if !super::is_busy(&error) {
            return Err(format!(
                "the database being backed up cannot be read ({error}): the problem is the \
                 database's file, not the backup's"
            ));
        }
    }
    let failure = |code: std::ffi::c_int| {
        // SAFETY: a valid handle; SQLite returns a NUL-terminated message.
        let message =
            unsafe { std::ffi::CStr::from_ptr(ffi::sqlite3_errmsg(destination.handle())) };
        rusqlite::Error::SqliteFailure(
            ffi::Error::new(code),
            Some(message.to_string_lossy().into_owned()),
        )
        .to_string()
    };
    // SAFETY: both handles are valid for the whole block, and the backup
    // object is finished before it ends.
    let copied = unsafe {
        let backup = ffi::sqlite3_backup_init(
            destination.handle(),
            c"main".as_ptr(),
            conn.handle(),
            c"main".as_ptr(),
        );
        if backup.is_null() {
            return Err(failure(ffi::sqlite3_errcode(destination.handle())));
        }
        let copied = loop {
            match ffi::sqlite3_backup_step(backup, 1024) {
                ffi::SQLITE_DONE => break Copied::Done,
                ffi::SQLITE_OK => {}
                // Another connection holds a lock: wait, until the deadline.
                ffi::SQLITE_BUSY | ffi::SQLITE_LOCKED => {
                    let waited = start.elapsed();
                    if waited >= timeout {
                        break Copied::Busy;
                    }
                    std::thread::sleep((timeout - waited).min(Duration::from_millis(20)));
                }
                code => break Copied::Failed(code),
            }
        };
        // Returns the error of the last step, if it had one.
        match (copied, ffi::sqlite3_backup_finish(backup)) {
            (Copied::Done, code) if code != ffi::SQLITE_OK => Copied::Failed(code),
            (copied, _) => copied,
        }
    };
    match copied {
        Copied::Done => Ok(()),
        Copied::Failed(code) => Err(failure(code)),
        Copied::Busy => {
            // Who holds it: the target if it cannot be locked now.
            let target_locked = destination
                .execute_batch("BEGIN EXCLUSIVE; ROLLBACK")
                .is_err();
            if target_locked {
                // In case BEGIN worked and ROLLBACK did not.
                let _ = destination.execute_batch("ROLLBACK");
                Err(format!(
                    "another connection holds a lock on it and did not release it within the lock \
                     timeout ({:.1} s): finish or close what has the file open (an sqlite3 shell, an \
                     application, another backup), or back up to another path",
                    timeout.as_secs_f64()
                ))
            } else {
                Err(format!(
                    "another connection kept the database locked, writing to it, for longer than \
                     the lock timeout ({:.1} s): retry when it is done, or raise the lock timeout",
                    timeout.as_secs_f64()
                ))
            }
        }
    }
}
