//! SQLite plumbing: identifier quoting, the lock budget of a call, the
//! connection state the runner must hand back as it found it, and the
//! pragmas it reads and writes.
//!
//! Everything here goes through the C API or plain SQL rather than
//! rusqlite's optional features, whose shapes changed across the rusqlite
//! versions this crate supports.

use std::cell::Cell;
use std::ffi::{c_int, c_void, CStr};
use std::time::{Duration, Instant};

use rusqlite::{ffi, params, Connection};

use crate::error::Error;

#[cfg(feature = "cli")]
pub(crate) mod backup;
pub(crate) mod script;

/// Quotes an identifier for SQL: `my "odd" table` → `"my ""odd"" table"`.
pub(crate) fn quote_identifier(name: &str) -> String {
    // Not `format!` and `replace`: the first up-to-date call of a process
    // quotes its table's name, and their code is pages to fault in there.
    let mut quoted = String::with_capacity(name.len() + 2);
    quoted.push('"');
    for c in name.chars() {
        if c == '"' {
            quoted.push('"');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

/// SQLite compares identifiers without regard to ASCII letter case.
///
/// Names are compared here, never with SQL's `lower()`, `LIKE` or `instr()`
/// in migrate-core's own statements: an application may define functions
/// of those names on its connection (a Unicode-aware `lower`, say), and
/// SQLite calls them instead of its own.
pub(crate) fn same_identifier(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Whether `name` is one SQLite reserves for itself (`sqlite_sequence`,
/// `sqlite_stat1`, `sqlite_autoindex_…`): SQLite refuses any other object
/// whose name starts with `sqlite_`, in any letter case.
pub(crate) fn is_internal(name: &str) -> bool {
    name.get(..7)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("sqlite_"))
}

/// A read-only connection that found the file waiting for a writer's
/// repair: a hot journal a killed writer left (`SQLITE_READONLY_ROLLBACK`),
/// a WAL to recover (`…_RECOVERY`), a WAL index it cannot create
/// (`…_CANTINIT`). The next writer repairs it; a reader can only wait.
pub(crate) fn needs_a_writer(error: &rusqlite::Error) -> bool {
    const RECOVERY: c_int = ffi::SQLITE_READONLY | (1 << 8);
    const ROLLBACK: c_int = ffi::SQLITE_READONLY | (3 << 8);
    const CANTINIT: c_int = ffi::SQLITE_READONLY | (5 << 8);
    matches!(
        error,
        rusqlite::Error::SqliteFailure(ffi::Error { extended_code, .. }, _)
            if [RECOVERY, ROLLBACK, CANTINIT].contains(extended_code)
    )
}

/// True for SQLITE_BUSY / SQLITE_LOCKED: someone else holds a lock.
pub(crate) fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(
            ffi::Error {
                code: rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked,
                ..
            },
            _
        )
    )
}

/// How many times a restoring statement is retried when the application's
/// progress handler interrupts it. A handler that interrupts every time wins
/// in the end; one that interrupts now and then (a deadline, a shutdown
/// request) does not leave the connection half restored.
const RESTORE_ATTEMPTS: usize = 8;

/// The lock budget of one call. SQLite waits for other connections' locks
/// through the busy handler; this one gives up once the call has waited
/// `lock_timeout` in all, so that it bounds the whole call's waiting (the
/// up-to-date read, `BEGIN IMMEDIATE`, every `COMMIT`, the pauses between
/// looks) whatever the connection's own busy timeout is. Only waiting
/// counts, not running migrations: a migration that runs longer than the
/// timeout may still wait for a reader at its `COMMIT`. Any `Duration` is
/// accepted.
///
/// Dropping it restores the connection's busy timeout. A custom busy handler
/// the application installed (`Connection::busy_handler`) cannot be read
/// back from SQLite, so it is removed rather than restored (documented on
/// `Migrator`).
pub(crate) struct LockWait<'c> {
    conn: &'c Connection,
    previous_ms: c_int,
    // Boxed: SQLite holds a pointer to it until `drop` replaces the handler.
    state: Box<Budget>,
}

/// A call's waiting budget: how long it may wait for others (a lock,
/// another process's work) in all, summed over every wait of the call.
pub(crate) struct Budget {
    timeout: Duration,
    waited: Cell<Duration>,
}

impl Budget {
    pub fn new(timeout: Duration) -> Budget {
        Budget {
            timeout,
            waited: Cell::new(Duration::ZERO),
        }
    }

    /// How long the call has waited so far.
    pub fn waited(&self) -> Duration {
        self.waited.get()
    }

    /// Counts the time since `start` as waited: an attempt another
    /// connection's lock made fail, whose work was all undone (a server
    /// waits for the lock itself before it says busy).
    pub fn waited_since(&self, start: Instant) {
        self.waited
            .set(self.waited.get().saturating_add(start.elapsed()));
    }

    /// Runs `wait` with a whole budget of its own, then goes on with the
    /// call's budget where it was: for the one wait that must not fail for
    /// want of what the waits before it used, recording the outcome of a
    /// step outside a transaction that has run (see `runner::autocommit`).
    pub fn apart<T>(&self, wait: impl FnOnce() -> T) -> T {
        let before = self.waited.replace(Duration::ZERO);
        let result = wait();
        self.waited.set(before);
        result
    }

    /// What is left of the budget, if anything.
    fn left(&self) -> Option<Duration> {
        self.timeout
            .checked_sub(self.waited.get())
            .filter(|left| !left.is_zero())
    }

    /// Sleeps for `delay`, or what is left of the budget if that is
    /// shorter, and says whether any budget was left.
    pub fn pause(&self, delay: Duration) -> bool {
        let Some(left) = self.left() else {
            return false;
        };
        let start = Instant::now();
        std::thread::sleep(left.min(delay));
        self.waited_since(start);
        true
    }
}

/// The connection's busy timeout, to restore when a `LockWait` ends. Every
/// call reads it (SQLite has no C getter): the statement is kept prepared
/// (see `db::with_check_statement`). Read through `Db::first_column`, the
/// up-to-date check's own read, which runs next: one path of code for both
/// reads, where the first call of a process finds every page cold.
fn busy_timeout_ms(conn: &Connection) -> Result<c_int, Error> {
    let mut previous: i64 = 0;
    crate::db::Db::first_column(conn, "PRAGMA busy_timeout", params![], &mut |value| {
        previous = value.as_i64().unwrap_or(0);
    })?;
    Ok(c_int::try_from(previous.max(0)).unwrap_or(c_int::MAX))
}

impl<'c> LockWait<'c> {
    pub fn install(conn: &'c Connection, timeout: Duration) -> Result<Self, Error> {
        let previous_ms = busy_timeout_ms(conn)?;
        let state = Box::new(Budget::new(timeout));
        // SAFETY: a valid handle; the state is boxed, so its address is
        // stable, and it outlives the handler, which `drop` replaces before
        // the box is freed.
        unsafe {
            ffi::sqlite3_busy_handler(
                conn.handle(),
                Some(wait_for_lock),
                &*state as *const Budget as *mut c_void,
            );
        }
        Ok(LockWait {
            conn,
            previous_ms,
            state,
        })
    }

    /// Runs `work` with the call's lock bound installed: every wait inside
    /// goes through its busy handler, so a busy error from `work` is a lock
    /// held past the budget, [`Error::Locked`].
    pub fn around<T>(
        conn: &'c Connection,
        timeout: Duration,
        work: impl FnOnce(&LockWait<'c>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let lock = LockWait::install(conn, timeout)?;
        work(&lock).map_err(|error| lock.locked(error))
    }

    /// No busy handler at all, for a loop that does its own waiting (the
    /// backup's); restored the same way when dropped.
    #[cfg(feature = "cli")]
    pub fn none(conn: &'c Connection) -> Result<Self, Error> {
        let previous_ms = busy_timeout_ms(conn)?;
        // SAFETY: a valid handle; removing the handler.
        unsafe {
            ffi::sqlite3_busy_handler(conn.handle(), None, std::ptr::null_mut());
        }
        Ok(LockWait {
            conn,
            previous_ms,
            state: Box::new(Budget::new(Duration::MAX)),
        })
    }

    /// How long the call has waited so far.
    pub fn waited(&self) -> Duration {
        self.state.waited()
    }

    /// Runs `wait` with a budget of its own (see [`Budget::apart`]).
    pub fn apart<T>(&self, wait: impl FnOnce() -> T) -> T {
        self.state.apart(wait)
    }

    /// The budget the busy handler waits within.
    pub fn budget(&self) -> &Budget {
        &self.state
    }

    /// Sleeps a little before looking again (at something another process
    /// is doing), and says whether the budget allows it.
    pub fn wait_a_little(&self) -> bool {
        self.pause(Duration::from_millis(50))
    }

    /// Sleeps for `delay`, or what is left of the budget if that is
    /// shorter, and says whether any budget was left.
    pub fn pause(&self, delay: Duration) -> bool {
        self.state.pause(delay)
    }

    /// A busy error is another connection's lock held past the budget.
    pub fn locked(&self, error: Error) -> Error {
        match error {
            Error::Sqlite(error) if is_busy(&error) => Error::Locked {
                waited: self.waited(),
            },
            other => other,
        }
    }
}

impl Drop for LockWait<'_> {
    fn drop(&mut self) {
        // Every call that reads the busy timeout ends here.
        crate::db::check_done();
        // SAFETY: a valid handle; this replaces the handler that points at
        // `state` before the box is freed.
        unsafe {
            if self.previous_ms > 0 {
                ffi::sqlite3_busy_timeout(self.conn.handle(), self.previous_ms);
            } else {
                ffi::sqlite3_busy_handler(self.conn.handle(), None, std::ptr::null_mut());
            }
        }
    }
}

/// The busy handler: sleeps as SQLite's own busy timeout does (short waits
/// first, then 100 ms), never past the budget.
unsafe extern "C" fn wait_for_lock(state: *mut c_void, count: c_int) -> c_int {
    const DELAYS_MS: [u64; 12] = [1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100];
    // SAFETY: `state` is the Budget installed with this handler.
    let state = unsafe { &*(state as *const Budget) };
    let delay = Duration::from_millis(
        usize::try_from(count)
            .ok()
            .and_then(|i| DELAYS_MS.get(i))
            .copied()
            .unwrap_or(100),
    );
    c_int::from(state.pause(delay))
}

/// Refuses a connection that cannot run migrations safely, before any
/// change: a read-only file or connection (`Error::ReadOnly`), and a journal
/// that cannot roll back (`journal_mode = OFF`: a failed step would stay
/// half applied).
pub(crate) fn check_writable(conn: &Connection) -> Result<(), Error> {
    // SAFETY: a valid handle and a NUL-terminated database name.
    let read_only = unsafe { ffi::sqlite3_db_readonly(conn.handle(), c"main".as_ptr()) };
    if read_only == 1 || pragma_flag(conn, "query_only")? {
        return Err(Error::ReadOnly);
    }
    let journal: String =
        conn.query_row("PRAGMA main.journal_mode", params![], |row| row.get(0))?;
    if journal.eq_ignore_ascii_case("off") {
        return Err(Error::NoJournal);
    }
    Ok(())
}

fn pragma_flag(conn: &Connection, pragma: &str) -> Result<bool, Error> {
    Ok(conn.query_row(&format!("PRAGMA {pragma}"), params![], |row| row.get(0))?)
}

/// Runs `sql` (a pragma or `ROLLBACK`) until `done` says it took effect,
/// retrying when the application's progress handler interrupts it.
fn settle(conn: &Connection, sql: &str, done: impl Fn(&Connection) -> bool) {
    for _ in 0..RESTORE_ATTEMPTS {
        if done(conn) {
            return;
        }
        let _ = conn.execute_batch(sql);
    }
}

/// Ends whatever transaction is open on the connection: the runner's own,
/// or one a statement opened and failed to report (an interrupted
/// `BEGIN IMMEDIATE` can take effect and still return an error).
pub(crate) fn roll_back_open_transaction(conn: &Connection) {
    settle(conn, "ROLLBACK", Connection::is_autocommit);
}

/// The connection's settings a step can change with a `PRAGMA` and that
/// outlive its transaction, each read as an integer. One this SQLite lacks
/// (older than the pragma, or a deprecated one compiled out) reads as no
/// row and is left alone. Not here: `journal_mode` (a step outside a
/// transaction may mean to change it, and a file in WAL mode stays so),
/// `locking_mode` and `cache_spill` (a setting cannot be put back by
/// writing the value read), `case_sensitive_like` (SQLite cannot report
/// it), and the process-wide heap limits.
const SETTINGS: [&str; 27] = [
    "read_uncommitted",
    "fullfsync",
    "checkpoint_fullfsync",
    "empty_result_callbacks",
    "analysis_limit",
    "main.max_page_count",
    "query_only",
    "writable_schema",
    "foreign_keys",
    "recursive_triggers",
    "ignore_check_constraints",
    "reverse_unordered_selects",
    "legacy_alter_table",
    "cell_size_check",
    "automatic_index",
    "trusted_schema",
    "count_changes",
    "short_column_names",
    "full_column_names",
    "temp_store",
    "threads",
    "wal_autocheckpoint",
    "main.cache_size",
    "main.secure_delete",
    "main.synchronous",
    "main.journal_size_limit",
    "main.mmap_size",
];

/// What a migration may change on the connection and the runner puts back
/// after the call, whatever happened: the transaction (none open), the
/// [`SETTINGS`] (`query_only`, `foreign_keys`, `recursive_triggers`, …),
/// and the attached databases. It also keeps the file's rollback journal on
/// disk for the call (see [`ConnectionState::keep_journal_on_disk`]).
pub(crate) struct ConnectionState<'c> {
    conn: &'c Connection,
    settings: [Option<i64>; SETTINGS.len()],
    db_config: [Option<c_int>; DB_CONFIG.len()],
    limits: Limits,
    databases: Vec<String>,
    /// Journals moved for the call: (database, its mode before, the mode
    /// set), see [`ConnectionState::keep_journal_on_disk`].
    journals_moved: std::cell::RefCell<Vec<(String, &'static str, &'static str)>>,
}

/// The `sqlite3_db_config` switches a step can flip through the C API (or
/// rusqlite's `set_db_config`) and no pragma reports: triggers and views
/// enabled (with triggers off, the tracking table's tamper check would
/// stop working for the application too), defensive mode, double-quoted
/// strings, the query planner's stability guarantee, `EXPLAIN` in
/// triggers, the legacy file format, the FTS3 tokenizer, extension
/// loading, checkpoint on close, scan status, reverse scan order. Numbers,
/// not names: the `libsqlite3-sys` versions migrate-core supports name
/// different subsets; an option this SQLite lacks reads as an error and
/// is left alone.
const DB_CONFIG: [c_int; 13] = [
    1003, 1015, 1010, 1013, 1014, 1007, 1008, 1016, 1004, 1005, 1006, 1018, 1019,
];

/// `sqlite3_limit`'s categories, `SQLITE_LIMIT_LENGTH` (0) to
/// `SQLITE_LIMIT_WORKER_THREADS` (11): a step can lower any of them
/// (`SQLITE_LIMIT_SQL_LENGTH` low enough fails the runner's own statements).
const LIMITS: usize = 12;

/// The connection's limits, read, to put back (C calls, no statement).
pub(crate) struct Limits([c_int; LIMITS]);

impl Limits {
    pub fn read(conn: &Connection) -> Limits {
        let mut limits = [0; LIMITS];
        for (id, value) in limits.iter_mut().enumerate() {
            // SAFETY: a valid handle; a negative value only reads the limit.
            *value = unsafe { ffi::sqlite3_limit(conn.handle(), id as c_int, -1) };
        }
        Limits(limits)
    }

    /// Sets back every limit that changed since they were read.
    pub fn put_back(&self, conn: &Connection) {
        for (id, &value) in self.0.iter().enumerate() {
            // SAFETY: a valid handle; reading, then setting the value read.
            unsafe {
                if ffi::sqlite3_limit(conn.handle(), id as c_int, -1) != value {
                    ffi::sqlite3_limit(conn.handle(), id as c_int, value);
                }
            }
        }
    }
}

/// A `sqlite3_db_config` switch's value, `None` when this SQLite lacks it.
fn db_config(conn: &Connection, op: c_int) -> Option<c_int> {
    let mut value: c_int = 0;
    // SAFETY: a valid handle; these options take an int (-1: only read) and
    // a pointer to an int that receives the value.
    let rc =
        unsafe { ffi::sqlite3_db_config(conn.handle(), op, -1 as c_int, &mut value as *mut c_int) };
    (rc == ffi::SQLITE_OK).then_some(value)
}

impl<'c> ConnectionState<'c> {
    pub fn capture(conn: &'c Connection) -> Result<Self, Error> {
        let mut settings = [None; SETTINGS.len()];
        for (value, pragma) in settings.iter_mut().zip(SETTINGS) {
            *value = setting(conn, pragma)?;
        }
        let counting = SETTINGS
            .iter()
            .zip(settings)
            .any(|(pragma, value)| *pragma == "count_changes" && value.is_some_and(|on| on != 0));
        let mut db_config_values = [None; DB_CONFIG.len()];
        for (value, op) in db_config_values.iter_mut().zip(DB_CONFIG) {
            *value = db_config(conn, op);
        }
        let state = ConnectionState {
            conn,
            settings,
            db_config: db_config_values,
            limits: Limits::read(conn),
            databases: databases(conn)?,
            journals_moved: std::cell::RefCell::new(Vec::new()),
        };
        if counting {
            // Put back when the state drops, like the rest.
            conn.execute_batch("PRAGMA count_changes = 0")?;
        }
        state.keep_journal_on_disk()?;
        Ok(state)
    }

    /// Gives every database of the connection that a migration may write
    /// (`main`, attached ones; the application's setting, or a step outside
    /// a transaction's) a journal that undoes a failed or killed
    /// transaction, until the call ends, when the mode it had is put back:
    /// a file's `MEMORY` journal, and an attached file's `OFF`, become
    /// `DELETE` (an in-memory journal rolls back a failed step, but a
    /// killed process leaves the pages a transaction spilled in the file,
    /// half a migration the history does not record; no journal rolls back
    /// nothing); a database without a file with `OFF` gets `MEMORY`.
    /// (`main`'s `OFF` is refused before, by [`check_writable`].)
    pub fn keep_journal_on_disk(&self) -> Result<(), Error> {
        for schema in databases(self.conn)? {
            let file = has_file(self.conn, &schema);
            let (before, wanted): (&'static str, &'static str) =
                match (journal_mode(self.conn, &schema)?.as_str(), file) {
                    ("memory", true) => ("memory", "delete"),
                    ("off", true) => ("off", "delete"),
                    ("off", false) => ("off", "memory"),
                    _ => continue,
                };
            let quoted = quote_identifier(&schema);
            let now: String = self.conn.query_row(
                &format!("PRAGMA {quoted}.journal_mode = {wanted}"),
                params![],
                |row| row.get(0),
            )?;
            if !now.eq_ignore_ascii_case(wanted) {
                return Err(Error::NoJournal);
            }
            let mut moved = self.journals_moved.borrow_mut();
            if !moved.iter().any(|(name, _, _)| *name == schema) {
                moved.push((schema, before, wanted));
            }
        }
        Ok(())
    }
}

/// An attached database whose commit SQLite does not make atomic with
/// `main`'s, and why.
#[derive(Debug, Clone)]
pub(crate) struct Apart {
    pub schema: String,
    /// What keeps the super-journal out, as a message says it: "main is in
    /// WAL mode", "\"aux\" has synchronous = OFF".
    pub why: String,
}

/// The attached databases whose commit SQLite does not make atomic with
/// `main`'s: it writes a super-journal over the files of a transaction only
/// when each keeps a rollback journal on disk and syncs it (`vdbeCommit`
/// counts a file for it only when its journal mode is DELETE, TRUNCATE or
/// PERSIST and its `synchronous` is not OFF), so with WAL or
/// `synchronous = OFF` on either side each file commits on its own, and a
/// process killed during COMMIT can keep one file's part of a migration
/// and lose the other's (its tracking row among them). Read after
/// [`ConnectionState::keep_journal_on_disk`], which leaves no MEMORY or
/// OFF journal on a file. A database without a file keeps nothing after a
/// kill, and is not one of them.
pub(crate) fn apart_from_main(conn: &Connection) -> Result<Vec<Apart>, Error> {
    let attached: Vec<String> = databases(conn)?
        .into_iter()
        .filter(|schema| {
            !same_identifier(schema, "main")
                && !same_identifier(schema, "temp")
                && has_file(conn, schema)
        })
        .collect();
    // `main` is read only when a file is attached (most runs have none).
    if attached.is_empty() {
        return Ok(Vec::new());
    }
    let main_why = without_super_journal(conn, "main")?;
    let mut apart = Vec::new();
    for schema in attached {
        let why = match &main_why {
            Some(why) => Some(why.clone()),
            None => without_super_journal(conn, &schema)?,
        };
        if let Some(why) = why {
            apart.push(Apart { schema, why });
        }
    }
    Ok(apart)
}

/// Why the database `schema` would take no part in a super-journal, as a
/// message says it; `None` when it would.
fn without_super_journal(conn: &Connection, schema: &str) -> Result<Option<String>, Error> {
    let named = if same_identifier(schema, "main") {
        "main".to_owned()
    } else {
        format!("{schema:?}")
    };
    if journal_mode(conn, schema)? == "wal" {
        return Ok(Some(format!("{named} is in WAL mode")));
    }
    let synchronous: i64 = conn.query_row(
        &format!("PRAGMA {}.synchronous", quote_identifier(schema)),
        params![],
        |row| row.get(0),
    )?;
    Ok((synchronous == 0).then(|| format!("{named} has synchronous = OFF")))
}

/// The journal mode of the database `schema`, lowercase.
fn journal_mode(conn: &Connection, schema: &str) -> Result<String, Error> {
    let mode: String = conn.query_row(
        &format!("PRAGMA {}.journal_mode", quote_identifier(schema)),
        params![],
        |row| row.get(0),
    )?;
    Ok(mode.to_ascii_lowercase())
}

/// Whether the database `schema` is a file (not `:memory:` or a temporary
/// database, whose journal can only be in memory).
fn has_file(conn: &Connection, schema: &str) -> bool {
    // SAFETY: the handle of a live connection.
    unsafe { file_of(conn.handle(), schema) }.is_some()
}

/// The file of the database `schema`, as SQLite names it; `None` for an
/// unknown name and for a database without a file.
///
/// # Safety
/// `db` is a valid connection handle.
unsafe fn file_of(db: *mut ffi::sqlite3, schema: &str) -> Option<Vec<u8>> {
    let schema = std::ffi::CString::new(schema).ok()?;
    // SAFETY: a valid handle and a NUL-terminated name; SQLite returns NULL
    // for an unknown name and "" for a database without a file.
    let path = unsafe { ffi::sqlite3_db_filename(db, schema.as_ptr()) };
    if path.is_null() {
        return None;
    }
    // SAFETY: SQLite returns a NUL-terminated string.
    let path = unsafe { CStr::from_ptr(path) }.to_bytes();
    (!path.is_empty()).then(|| path.to_vec())
}

/// Undoes what a step outside a transaction may have done that would make
/// the runner's record of it fail: `PRAGMA count_changes` (deprecated; on,
/// every `INSERT`, `UPDATE` and `DELETE` returns a row, which the runner's
/// own writes do not expect) and `query_only` turned on (put back by
/// [`ConnectionState`] at the end of the call), and `main`'s own file
/// attached again under another name (a transaction would then ask for
/// the file's write lock twice, and wait for itself).
pub(crate) fn ready_to_record(conn: &Connection) -> Result<(), Error> {
    for pragma in ["count_changes", "query_only"] {
        if setting(conn, pragma)?.is_some_and(|on| on != 0) {
            conn.execute_batch(&format!("PRAGMA {pragma} = 0"))?;
        }
    }
    for name in databases(conn)? {
        // SAFETY: the handle of a live connection.
        let main_again =
            !same_identifier(&name, "main") && unsafe { is_main_file(conn.handle(), &name) };
        if main_again {
            conn.execute_batch(&format!("DETACH {}", quote_identifier(&name)))?;
        }
    }
    Ok(())
}

/// Whether the database `name` is `main`, or `main`'s own file attached
/// again under another name (a step outside a transaction may `ATTACH`):
/// writing the tracking table there is writing it.
///
/// # Safety
/// `db` is a valid connection handle.
pub(crate) unsafe fn is_main_file(db: *mut ffi::sqlite3, name: &str) -> bool {
    if same_identifier(name, "main") {
        return true;
    }
    let file = |schema: &str| -> Option<std::path::PathBuf> {
        // SAFETY: the caller's handle is valid.
        let path = unsafe { file_of(db, schema) }?;
        String::from_utf8(path).ok().map(std::path::PathBuf::from)
    };
    match (file("main"), file(name)) {
        (Some(main), Some(other)) => {
            main == other
                || matches!(
                    (std::fs::canonicalize(&main), std::fs::canonicalize(&other)),
                    (Ok(a), Ok(b)) if a == b
                )
        }
        _ => false,
    }
}

impl Drop for ConnectionState<'_> {
    fn drop(&mut self) {
        let conn = self.conn;
        roll_back_open_transaction(conn);
        // First: a lowered SQL length limit would refuse the statements below.
        self.limits.put_back(conn);
        for (op, value) in DB_CONFIG.iter().zip(self.db_config) {
            let Some(value) = value else { continue };
            if db_config(conn, *op) != Some(value) {
                let mut now: c_int = 0;
                // SAFETY: a valid handle; an int to set and a pointer for the result.
                unsafe {
                    ffi::sqlite3_db_config(conn.handle(), *op, value, &mut now as *mut c_int)
                };
            }
        }
        for (pragma, value) in SETTINGS.iter().zip(self.settings) {
            let Some(value) = value else { continue };
            settle(conn, &format!("PRAGMA {pragma} = {value}"), |c| {
                setting(c, pragma).ok().flatten() == Some(value)
            });
        }
        if let Ok(now) = databases(conn) {
            for name in now.iter().filter(|name| !self.databases.contains(name)) {
                let gone = |c: &Connection| databases(c).is_ok_and(|list| !list.contains(name));
                settle(conn, &format!("DETACH {}", quote_identifier(name)), gone);
            }
        }
        // Unless a step outside a transaction chose another mode since (or
        // detached the database).
        for (schema, before, set) in self.journals_moved.borrow().iter() {
            if journal_mode(conn, schema).is_ok_and(|mode| mode == *set) {
                let sql = format!(
                    "PRAGMA {}.journal_mode = {before}",
                    quote_identifier(schema)
                );
                settle(conn, &sql, |c| {
                    journal_mode(c, schema).is_ok_and(|mode| mode == *before)
                });
            }
        }
    }
}

/// A setting's value (`PRAGMA name`), `None` when this SQLite has no such
/// pragma. Not kept prepared: a call reads each once or twice, and the
/// application's statement cache is small.
fn setting(conn: &Connection, pragma: &str) -> Result<Option<i64>, Error> {
    let mut stmt = conn.prepare(&format!("PRAGMA {pragma}"))?;
    let mut rows = stmt.query(params![])?;
    Ok(match rows.next()? {
        Some(row) => row.get::<_, i64>(0).ok(),
        None => None,
    })
}

fn databases(conn: &Connection) -> Result<Vec<String>, Error> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_database_list")?;
    let names = stmt.query_map(params![], |row| row.get(0))?;
    Ok(names.collect::<Result<_, _>>()?)
}

/// Turns `PRAGMA foreign_keys` off outside any transaction and restores the
/// previous setting when dropped, whatever happened in between (the guard
/// exists before the pragma runs, because an interrupted pragma can take
/// effect and still return an error).
pub(crate) struct ForeignKeysOff<'c> {
    conn: &'c Connection,
    previous: bool,
}

impl<'c> ForeignKeysOff<'c> {
    pub fn engage(conn: &'c Connection) -> Result<Self, Error> {
        let guard = ForeignKeysOff {
            conn,
            previous: pragma_flag(conn, "foreign_keys")?,
        };
        conn.execute_batch("PRAGMA foreign_keys = OFF")?;
        Ok(guard)
    }
}

impl Drop for ForeignKeysOff<'_> {
    fn drop(&mut self) {
        if self.previous {
            settle(self.conn, "PRAGMA foreign_keys = ON", |c| {
                pragma_flag(c, "foreign_keys").ok() == Some(true)
            });
        }
    }
}

/// Whether `PRAGMA foreign_keys` is on.
pub(crate) fn foreign_keys_on(db: &dyn crate::db::Db) -> Result<bool, Error> {
    let mut on = false;
    db.first_column("PRAGMA foreign_keys", params![], &mut |value| {
        on = value.as_i64().is_ok_and(|flag| flag != 0);
    })?;
    Ok(on)
}

/// Whether the open transaction holds foreign-key violations that SQLite
/// will refuse at COMMIT (deferred constraints, `PRAGMA defer_foreign_keys`).
/// O(1): SQLite keeps the count.
pub(crate) fn deferred_foreign_key_violations(conn: &Connection) -> bool {
    // SAFETY: the handle of a live connection.
    unsafe { deferred_violations(conn.handle()) }
}

/// [`deferred_foreign_key_violations`] on a raw handle, for SQLite's
/// callbacks.
///
/// # Safety
/// `db` is a valid connection handle.
pub(crate) unsafe fn deferred_violations(db: *mut ffi::sqlite3) -> bool {
    let (mut current, mut highwater): (c_int, c_int) = (0, 0);
    // SAFETY: as the caller promises; two valid out-pointers.
    let rc = unsafe {
        ffi::sqlite3_db_status(
            db,
            ffi::SQLITE_DBSTATUS_DEFERRED_FKS,
            &mut current,
            &mut highwater,
            0,
        )
    };
    rc == ffi::SQLITE_OK && current > 0
}

/// `PRAGMA user_version`.
pub(crate) fn user_version(conn: &Connection) -> Result<i64, Error> {
    Ok(conn.query_row("PRAGMA main.user_version", params![], |row| row.get(0))?)
}

/// Sets `PRAGMA user_version`.
pub(crate) fn set_user_version(conn: &Connection, value: usize) -> Result<(), rusqlite::Error> {
    conn.execute_batch(&format!("PRAGMA main.user_version = {value}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_identifiers_name_the_same_table_in_sqlite() {
        let conn = Connection::open_in_memory().expect("in-memory database");
        for name in [
            "plain",
            "",
            "a\"b",
            "\"\"",
            "two words",
            "ünï\"cödé\"",
            "x]y`z'",
        ] {
            let quoted = quote_identifier(name);
            conn.execute_batch(&format!("CREATE TABLE {quoted} (v)"))
                .unwrap_or_else(|e| panic!("{name:?} quoted as {quoted}: {e}"));
            let stored: String = conn
                .query_row(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?1",
                    [name],
                    |row| row.get(0),
                )
                .unwrap_or_else(|e| panic!("{name:?} quoted as {quoted}: {e}"));
            assert_eq!(stored, name);
            conn.execute_batch(&format!("DROP TABLE {quoted}"))
                .unwrap_or_else(|e| panic!("{name:?}: {e}"));
        }
        assert_eq!(quote_identifier("a\"b"), "\"a\"\"b\"");
    }
}
