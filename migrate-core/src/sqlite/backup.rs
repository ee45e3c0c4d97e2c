//! SQLite's online backup API, for the CLI's `backup` and `up --backup`:
//! a copy bounded by the lock timeout, refused up front where it could only
//! hang or destroy something (the database itself, its journal files, a
//! file that is not a database, a name SQLite would not take as a file).
//!
//! The copy is written to a file of its own in the target's directory
//! (`.migrate-core-backup-<pid>-<n>.partial`), given the earlier backup's
//! permissions and owner (or, for a first backup, the database's), made
//! durable, and renamed over the target only when whole: a backup stopped
//! part-way (a signal, a full disk, a lock) leaves the earlier backup as it
//! was, never half replaced. A target that is a symbolic link has the file
//! it names replaced (created, if the link dangles); a name that is a hard
//! link to some other file replaces that name only.

use std::ffi::c_int;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
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
    // A symlink to an earlier backup: the file it names is replaced, and
    // what is beside that file is what SQLite would read.
    let target = followed(path)?;
    check_target(conn, &target)?;
    // Short, whatever the target's name (a name near the system's limit
    // must still leave room), and one per backup of this process.
    static BACKUPS: AtomicU32 = AtomicU32::new(0);
    let partial = target.with_file_name(format!(
        ".migrate-core-backup-{}-{}.partial",
        std::process::id(),
        BACKUPS.fetch_add(1, Ordering::Relaxed)
    ));
    let model = std::fs::metadata(&target)
        .ok()
        .or_else(|| source_file(conn).and_then(|source| std::fs::metadata(source).ok()));
    let result = create(&partial, model.as_ref())
        .and_then(|()| copy(conn, &partial, timeout))
        .and_then(|()| replace(&partial, &target));
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

/// `path` with its symbolic links followed, to the file they name (which
/// need not exist yet).
fn followed(path: &Path) -> Result<PathBuf, String> {
    let mut path = path.to_owned();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let link = std::fs::read_link(&path)
                    .map_err(|e| format!("cannot read the link {}: {e}", path.display()))?;
                path = match path.parent() {
                    Some(dir) if link.is_relative() => dir.join(link),
                    _ => link,
                };
            }
            _ => return Ok(path),
        }
    }
    Err("it is a loop of symbolic links".to_owned())
}

/// Creates the copy's file, empty (an empty file is an empty database to
/// SQLite), readable by whoever could read the backup it replaces, or, for
/// a first backup, the database itself (a backup readable by all of a
/// database only its owner may read would leak it); before anything is
/// written to it.
fn create(partial: &Path, model: Option<&std::fs::Metadata>) -> Result<(), String> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        // No wider than the model from the first moment.
        options.mode(model.map_or(0o644, |model| model.permissions().mode() & 0o777));
    }
    drop(
        options
            .open(partial)
            .map_err(|e| cannot_create(partial, &e))?,
    );
    let Some(model) = model else { return Ok(()) };
    std::fs::set_permissions(partial, model.permissions())
        .map_err(|e| format!("cannot set the copy's permissions: {e}"))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // Only the superuser can give a file away: for anyone else, the
        // copy is theirs, as a file they write always is.
        let _ = std::os::unix::fs::chown(partial, Some(model.uid()), Some(model.gid()));
    }
    Ok(())
}

/// Why the copy's own file could not be made, and what the backup needs.
fn cannot_create(partial: &Path, error: &dyn std::fmt::Display) -> String {
    format!(
        "cannot create {} ({error}): the copy is written there, in the target's directory, \
         and then renamed over the target, so the directory must be writable",
        partial.display()
    )
}

/// The database's file, if it has one.
fn source_file(conn: &Connection) -> Option<PathBuf> {
    // SAFETY: a valid handle and a NUL-terminated name; SQLite returns NULL
    // or a NUL-terminated string that lives as long as the connection, read
    // at once. (Not `pragma_database_list`: it would wait for a writer's lock.)
    let name = unsafe {
        let file = rusqlite::ffi::sqlite3_db_filename(conn.handle(), c"main".as_ptr());
        if file.is_null() {
            return None;
        }
        std::ffi::CStr::from_ptr(file)
            .to_string_lossy()
            .into_owned()
    };
    // An in-memory or temporary database has no file.
    (!name.is_empty()).then(|| PathBuf::from(name))
}

/// Makes the whole copy durable, then puts it in the target's place in one
/// step (a rename within one directory), and makes that durable too.
fn replace(partial: &Path, target: &Path) -> Result<(), String> {
    let failed = |what: &str, error: std::io::Error| format!("cannot {what}: {error}");
    std::fs::File::open(partial)
        .and_then(|file| file.sync_all())
        .map_err(|e| failed("write the copy to disk", e))?;
    std::fs::rename(partial, target).map_err(|e| failed("put the copy in place", e))?;
    // The rename itself, on Unix (a directory cannot be opened elsewhere).
    #[cfg(unix)]
    if let Some(dir) = target.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        std::fs::File::open(dir)
            .and_then(|dir| dir.sync_all())
            .map_err(|e| failed("write the rename to disk", e))?;
    }
    Ok(())
}

/// The first bytes of every SQLite database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Refuses, before anything is written, a target that is the database
/// itself (any spelling, a symlink, a hard link) or one of its journal
/// files: the copy could only fail after the whole lock timeout (the
/// source holds the lock it needs), or would corrupt the database. Refuses as well an existing file that is not an
/// SQLite database (an empty file is one, to SQLite): the backup replaces
/// a file's whole content, and a mistyped path must not destroy, say, a
/// source file. An earlier backup is replaced, as expected, unless SQLite's
/// journal files are beside it (it is open, or a write to it was stopped):
/// they would be read into the copy. And names SQLite reads as something
/// else than a file (`:memory:`, a `file:` URI) are refused: the copy
/// would go nowhere.
fn check_target(conn: &Connection, target: &Path) -> Result<(), String> {
    let source = source_file(conn);
    let text = target.to_string_lossy();
    if text.is_empty()
        || text == ":memory:"
        || text
            .get(..5)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("file:"))
    {
        return Err(format!(
            "{text:?} is not a file path to SQLite (an in-memory database or a URI): name \
             the file to write, e.g. ./backup.db"
        ));
    }
    for suffix in ["-journal", "-wal"] {
        let mut beside = target.as_os_str().to_owned();
        beside.push(suffix);
        let beside = PathBuf::from(beside);
        if std::fs::symlink_metadata(&beside).is_ok() {
            return Err(format!(
                "{} is beside it: another connection has it open, or a write to it was \
                 stopped, and SQLite would read that file into the copy; close what has it \
                 open, or, if nothing has, remove {} (the backup replaces {} anyway), or \
                 choose another path",
                beside.display(),
                beside.display(),
                target.display()
            ));
        }
    }
    if let Some(source) = &source {
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
    /// Started again by other connections' writes, for longer than the
    /// deadline without getting further.
    Restarted,
    Failed(std::ffi::c_int),
}

/// SQLite's online backup API, through the C interface: rusqlite's wrapper
/// changed shape across the versions this crate supports. Waits for locks
/// until `timeout`, then fails saying who holds the lock.
fn copy(conn: &Connection, path: &Path, timeout: Duration) -> Result<(), String> {
    use rusqlite::ffi;
    let start = Instant::now();
    // A new file of the backup's own (see `online_backup`), opened as a
    // plain path (no URI), without a journal: nothing in it to protect
    // until it is whole, and then it is synced before it is renamed.
    let flags =
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_CREATE;
    let destination = Connection::open_with_flags(path, flags)
        .and_then(|destination| {
            // The loop below does the waiting, so that one deadline covers
            // both files (rusqlite's default would wait 5 s inside every step).
            destination.busy_timeout(Duration::ZERO)?;
            destination.query_row("PRAGMA journal_mode = OFF", [], |_| Ok(()))?;
            Ok(destination)
        })
        .map_err(|e| cannot_create(path, &e))?;
    let _source_wait = LockWait::none(conn).map_err(|e| format!("cannot start: {e}"))?;
    // A source that cannot be read fails the copy with a message from the
    // target's handle, as if the target were at fault: say which it is.
    // (A lock is the copy loop's to wait for.)
    let read = conn.query_row("SELECT 1 FROM main.sqlite_master LIMIT 1", [], |_| Ok(()));
    match read {
        Err(error) if !super::is_busy(&error) && error != rusqlite::Error::QueryReturnedNoRows => {
            return Err(format!(
                "the database being backed up cannot be read ({error}): the problem is the \
                 database's file, not the backup's"
            ));
        }
        _ => {}
    }
    // Known once the file was read (above).
    let wal = conn
        .query_row("PRAGMA main.journal_mode", [], |row| {
            row.get::<_, String>(0)
        })
        .is_ok_and(|mode| mode.eq_ignore_ascii_case("wal"));
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
        // Pages per step: a part at a time, so that writers of a database
        // in rollback-journal mode get in between. Another connection's
        // write between two steps starts the copy again; in WAL mode, where
        // a read holds no writer back, the rest is then copied in one step
        // from one snapshot (before: a writer every 50 ms kept the copy
        // starting again for ever). In rollback-journal mode the copy must
        // make progress within the lock timeout.
        let mut pages = 1024;
        let mut least_remaining = c_int::MAX;
        let mut progress_at = Instant::now();
        let copied = loop {
            let step = ffi::sqlite3_backup_step(backup, pages);
            let remaining = ffi::sqlite3_backup_remaining(backup);
            if remaining < least_remaining {
                least_remaining = remaining;
                progress_at = Instant::now();
            } else if step == ffi::SQLITE_OK {
                if wal {
                    pages = -1;
                } else if progress_at.elapsed() >= timeout {
                    break Copied::Restarted;
                }
            }
            match step {
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
        Copied::Restarted => Err(format!(
            "other connections kept writing to the database, starting the copy again, for \
             longer than the lock timeout ({:.1} s) without it getting further: back up when \
             they write less, raise the lock timeout, or switch the database to WAL mode \
             (where a copy does not have to start again)",
            timeout.as_secs_f64()
        )),
        // The copy's own file is this backup's alone (`create`): the lock
        // is the database's.
        Copied::Busy => Err(format!(
            "another connection kept the database locked, writing to it, for longer than \
             the lock timeout ({:.1} s): retry when it is done, or raise the lock timeout",
            timeout.as_secs_f64()
        )),
    }
}
