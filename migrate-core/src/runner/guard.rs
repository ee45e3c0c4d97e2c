//! Running user code under watch: what a step may not do, and what happens
//! when it panics. The guard runs a closure; it does not know how
//! migrations are represented.
//!
//! Two SQLite callbacks enforce the rules, both installed once per
//! transaction and armed only while user code runs:
//! - the authorizer, consulted as each statement is prepared, refuses
//!   transaction control, writes to any set's tracking table, pragmas that
//!   cannot work inside a transaction, and, once SQLite has ended the
//!   transaction behind the runner's back, every further statement;
//! - the commit hook vetoes any commit while user code runs, so that a
//!   statement prepared before the transaction was lost, and then stepped
//!   in autocommit mode, is rolled back instead of committed.
//!
//! Installing an authorizer expires every prepared statement of the
//! connection, which is why it is installed once per transaction, not per
//! step. An authorizer or commit hook the application installed itself is
//! replaced for the duration of the transaction and not restored: SQLite
//! cannot report them (documented on `Migrator`).
//!
//! User code holds the connection, and can replace either callback with
//! its own or none (rusqlite's `authorizer`, `commit_hook`): after it
//! returns, the guard checks that both are still its own (see
//! [`AuthorizerCheck`]), and a step that took either away fails, its work
//! undone with the transaction's.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rusqlite::{ffi, Connection};

use crate::private::BoxError;
use crate::sqlite::{self, deferred_violations, same_identifier};

/// The savepoint each step runs in. User code may not release or roll back
/// to it: that would end the step's atomicity behind the runner's back.
pub(crate) const STEP_SAVEPOINT: &str = "migrate_core_step";

/// Why a step did not succeed.
pub(crate) enum StepFailure {
    Returned(BoxError),
    Panicked(String),
    Refused(Refusal),
}

/// A statement the guard refused (the first one, if several were).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `BEGIN`, `COMMIT`, `END`, `ROLLBACK`, or the step's own savepoint.
    TransactionControl,
    /// SQLite ended the transaction (`INSERT OR ROLLBACK`, `RAISE(ROLLBACK)`,
    /// an interrupt) and the step went on.
    TransactionLost,
    /// Anything else the rules forbid, with what to do instead.
    Forbidden(String),
    /// User code replaced or removed the authorizer or the commit hook, so
    /// that nothing it ran after that was watched; `work_kept`: it ran
    /// outside a transaction, or its transaction had ended by the time it
    /// returned, so what it ran may be committed.
    GuardRemoved { work_kept: bool },
}

/// What user code may not touch while it runs.
pub(crate) struct Rules {
    /// The tracking tables of every set in the `main` database.
    pub tracking_tables: Vec<String>,
    /// The names of their triggers, which user code may neither create
    /// (on any table) nor drop, and whose one write (the edit mark) is let
    /// through when SQLite compiles them again (a step renaming a table).
    pub own_triggers: Vec<String>,
    /// The step runs outside any transaction (`transaction = false`): it
    /// may commit, begin and end transactions of its own and set any
    /// pragma; only the tracking tables stay off limits.
    pub autocommit: bool,
    /// Attached databases a transaction cannot commit atomically with
    /// `main` (see `sqlite::apart_from_main`), which a step in a
    /// transaction may read but not write.
    pub apart_from_main: Vec<sqlite::Apart>,
}

struct GuardState {
    db: *mut ffi::sqlite3,
    armed: AtomicBool,
    foreign_keys_off_step: AtomicBool,
    rules: Rules,
    refusal: Mutex<Option<Refusal>>,
    /// How many times SQLite has called the authorizer, armed or not: the
    /// sign that it is still installed (see `AuthorizerCheck`).
    authorizer_calls: AtomicU64,
}

impl GuardState {
    fn refuse(&self, refusal: Refusal) {
        if let Ok(mut slot) = self.refusal.lock() {
            slot.get_or_insert(refusal);
        }
    }
}

/// How the guard sees, after a step, that its authorizer is still the
/// connection's: SQLite reports no authorizer, so by the authorizer being
/// called for a statement prepared after the step.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthorizerCheck {
    /// The guard prepares one of its own (`SELECT 1`, not stepped).
    Probe,
    /// After a step that succeeded, the caller prepares one anyway (the
    /// step's tracking row) and then asks [`Guard::watched_since`]: no
    /// statement of the guard's own on the path every step takes. After a
    /// step that failed, the guard probes.
    Caller,
}

/// The authorizer and commit hook of one transaction.
pub(crate) struct Guard<'c> {
    conn: &'c Connection,
    // Boxed: SQLite holds a pointer to it until `drop` removes the callbacks.
    state: Box<GuardState>,
}

impl<'c> Guard<'c> {
    pub fn install(conn: &'c Connection, rules: Rules) -> Self {
        // SAFETY: reading the handle of a live connection.
        let db = unsafe { conn.handle() };
        let state = Box::new(GuardState {
            db,
            armed: AtomicBool::new(false),
            foreign_keys_off_step: AtomicBool::new(false),
            rules,
            refusal: Mutex::new(None),
            authorizer_calls: AtomicU64::new(0),
        });
        let pointer = &*state as *const GuardState as *mut c_void;
        // SAFETY: the handle is valid while `conn` is borrowed; the state is
        // boxed, so its address is stable, and it outlives both callbacks,
        // which `drop` removes before the box is freed.
        unsafe {
            ffi::sqlite3_set_authorizer(db, Some(authorize), pointer);
            ffi::sqlite3_commit_hook(db, Some(veto_commit), pointer);
        }
        Guard { conn, state }
    }

    /// Runs user code with the guard armed, catching panics. A refused
    /// statement fails the step even when the code swallowed its error.
    pub fn run(
        &self,
        foreign_keys_off_step: bool,
        check: AuthorizerCheck,
        user_code: impl FnOnce() -> Result<(), BoxError>,
    ) -> Result<Duration, StepFailure> {
        if let Ok(mut slot) = self.state.refusal.lock() {
            *slot = None;
        }
        self.state
            .foreign_keys_off_step
            .store(foreign_keys_off_step, Ordering::Relaxed);
        let limits = crate::sqlite::Limits::read(self.conn);
        let start = Instant::now();
        self.state.armed.store(true, Ordering::Relaxed);
        let result = catch_unwind(AssertUnwindSafe(user_code));
        self.state.armed.store(false, Ordering::Relaxed);
        let elapsed = start.elapsed();
        // A limit the step lowered (`sqlite3_limit`: no statement, so no
        // authorizer sees it) would fail the runner's own statements next.
        limits.put_back(self.conn);
        let refusal = self
            .state
            .refusal
            .lock()
            .ok()
            .and_then(|mut slot| slot.take());
        let succeeded = refusal.is_none() && matches!(result, Ok(Ok(())));
        let hook_kept = self.commit_hook_kept();
        let authorizer_kept = if succeeded && check == AuthorizerCheck::Caller {
            Ok(true)
        } else {
            self.authorizer_kept()
        };
        match authorizer_kept {
            Ok(true) if hook_kept => {}
            Ok(_) => return Err(self.removed()),
            Err(error) => return Err(StepFailure::Returned(Box::new(error))),
        }
        if let Some(refusal) = refusal {
            return Err(StepFailure::Refused(refusal));
        }
        match result {
            Ok(Ok(())) => Ok(elapsed),
            Ok(Err(error)) => Err(StepFailure::Returned(error)),
            Err(payload) => Err(StepFailure::Panicked(panic_message(payload.as_ref()))),
        }
    }
}

impl Guard<'_> {
    fn pointer(&self) -> *mut c_void {
        &*self.state as *const GuardState as *mut c_void
    }

    /// Whether the commit hook is still the guard's after user code ran;
    /// the guard's again either way. SQLite reports the hook it replaces.
    fn commit_hook_kept(&self) -> bool {
        let pointer = self.pointer();
        // SAFETY: a valid handle; the state outlives the hook (see `install`).
        unsafe { ffi::sqlite3_commit_hook(self.state.db, Some(veto_commit), pointer) == pointer }
    }

    /// The failure of a step that took a callback away.
    fn removed(&self) -> StepFailure {
        StepFailure::Refused(Refusal::GuardRemoved {
            work_kept: self.state.rules.autocommit || self.conn.is_autocommit(),
        })
    }

    /// A count of the authorizer's calls, for [`Guard::watched_since`].
    pub fn mark(&self) -> u64 {
        self.state.authorizer_calls.load(Ordering::Relaxed)
    }

    /// With [`AuthorizerCheck::Caller`], after the step succeeded and the
    /// caller prepared a statement since `mark`: the step's failure if the
    /// authorizer did not see that statement (the step took it away; the
    /// guard's again for what follows).
    pub fn watched_since(&self, mark: u64) -> Result<(), StepFailure> {
        if self.mark() != mark {
            return Ok(());
        }
        self.reinstall_authorizer();
        Err(self.removed())
    }

    /// The step's failure if it took the authorizer away, by the guard's
    /// own look (see [`Guard::authorizer_kept`]); when it cannot tell, Ok.
    pub fn still_installed(&self) -> Result<(), StepFailure> {
        match self.authorizer_kept() {
            Ok(false) => Err(self.removed()),
            _ => Ok(()),
        }
    }

    fn reinstall_authorizer(&self) {
        // SAFETY: as in `install`.
        unsafe { ffi::sqlite3_set_authorizer(self.state.db, Some(authorize), self.pointer()) };
    }

    /// Whether the authorizer is still the guard's after user code ran,
    /// seen at work on a statement prepared for the purpose (one `SELECT 1`,
    /// not stepped); the guard's again either way. An error: that
    /// statement could not be prepared (an interrupt), so nothing can be
    /// said.
    fn authorizer_kept(&self) -> Result<bool, rusqlite::Error> {
        let calls = self.mark();
        let mut statement = std::ptr::null_mut();
        // SAFETY: a valid handle and a NUL-terminated statement; the
        // statement, if any, is finalized at once (finalizing NULL is a no-op).
        let prepared = unsafe {
            let rc = ffi::sqlite3_prepare_v2(
                self.state.db,
                c"SELECT 1".as_ptr(),
                -1,
                &mut statement,
                std::ptr::null_mut(),
            );
            ffi::sqlite3_finalize(statement);
            rc
        };
        let authorizer_kept = self.mark() != calls;
        if !authorizer_kept {
            self.reinstall_authorizer();
            // A statement SQLite refused to prepare may have been refused
            // by someone else's authorizer (`SQLITE_AUTH`): that is still
            // an authorizer taken away. Anything else says nothing.
            if prepared != ffi::SQLITE_OK && prepared != ffi::SQLITE_AUTH {
                return Err(rusqlite::Error::SqliteFailure(
                    ffi::Error::new(prepared),
                    Some(
                        "migrate-core could not check, after the step, that its guard was \
                         still installed"
                            .to_owned(),
                    ),
                ));
            }
        }
        Ok(authorizer_kept)
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        // SAFETY: removing both callbacks on a valid handle, before `state`
        // is freed.
        unsafe {
            ffi::sqlite3_set_authorizer(self.conn.handle(), None, std::ptr::null_mut());
            ffi::sqlite3_commit_hook(self.conn.handle(), None, std::ptr::null_mut());
        }
    }
}

pub(super) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "(a panic with a non-string payload)".to_owned()
    }
}

/// SQLite calls this as each statement of a commit is about to commit.
unsafe extern "C" fn veto_commit(state: *mut c_void) -> c_int {
    // SAFETY: `state` is the GuardState installed with this callback.
    let state = unsafe { &*(state as *const GuardState) };
    if state.armed.load(Ordering::Relaxed) && !state.rules.autocommit {
        // Only a statement running in autocommit mode commits while user
        // code runs: the transaction was lost, and this must not persist.
        state.refuse(Refusal::TransactionLost);
        1
    } else {
        0
    }
}

/// SQLite calls this while it prepares each statement (and each statement
/// of the triggers it fires).
unsafe extern "C" fn authorize(
    state: *mut c_void,
    action: c_int,
    arg1: *const c_char,
    arg2: *const c_char,
    database: *const c_char,
    trigger: *const c_char,
) -> c_int {
    // SAFETY: `state` is the GuardState installed with this callback.
    let state = unsafe { &*(state as *const GuardState) };
    state.authorizer_calls.fetch_add(1, Ordering::Relaxed);
    if !state.armed.load(Ordering::Relaxed) {
        return ffi::SQLITE_OK;
    }
    // SAFETY: SQLite passes NUL-terminated strings or NULL.
    let [arg1, arg2, database, trigger] =
        [arg1, arg2, database, trigger].map(|p| unsafe { text(p) });
    // SAFETY: a valid handle; reading the autocommit flag is allowed here.
    let lost = unsafe { ffi::sqlite3_get_autocommit(state.db) } != 0;
    let refusal = if lost && !state.rules.autocommit {
        Some(Refusal::TransactionLost)
    } else if trigger.is_some_and(|name| our_triggers_mark(state, name, action, arg1, arg2)) {
        None
    } else {
        judge(state, action, arg1, arg2, database)
    };
    match refusal {
        Some(refusal) => {
            state.refuse(refusal);
            ffi::SQLITE_DENY
        }
        None => ffi::SQLITE_OK,
    }
}

/// Whether this is the one write migrate-core's own triggers make: the
/// trigger `migrate_core_{edit,delete,insert}_<table>` setting the `chain`
/// of `<table>` (the mark that sends the next read to the full check; SQLite
/// compiles the triggers again when a step renames or alters a table). A
/// trigger is known by its name alone here, so nothing else is let through
/// on it: a trigger of that name that is not ours (user code cannot create
/// one, but an application could) is judged like any other statement, and
/// could at most set the mark.
fn our_triggers_mark(
    state: &GuardState,
    trigger: &str,
    action: c_int,
    table: Option<&str>,
    column: Option<&str>,
) -> bool {
    action == ffi::SQLITE_UPDATE
        && column.is_some_and(|column| same_identifier(column, "chain"))
        && table.is_some_and(|table| {
            state
                .rules
                .tracking_tables
                .iter()
                .any(|ours| same_identifier(ours, table))
                && crate::history::trigger_names(table)
                    .iter()
                    .any(|own| same_identifier(own, trigger))
        })
}

/// # Safety
/// `p` is NULL or a NUL-terminated string that outlives the callback.
unsafe fn text<'a>(p: *const c_char) -> Option<&'a str> {
    if p.is_null() {
        None
    } else {
        // SAFETY: as the caller promises.
        unsafe { CStr::from_ptr(p) }.to_str().ok()
    }
}

/// The rules, one statement action at a time.
fn judge(
    state: &GuardState,
    action: c_int,
    arg1: Option<&str>,
    arg2: Option<&str>,
    database: Option<&str>,
) -> Option<Refusal> {
    // SAFETY: the handle this state was installed on.
    let is_main = |name: &str| unsafe { crate::sqlite::is_main_file(state.db, name) };
    let in_main = database.map_or(true, is_main);
    let tracking = |table: Option<&str>| -> Option<String> {
        let table = table?;
        state
            .rules
            .tracking_tables
            .iter()
            .find(|ours| same_identifier(ours, table))
            .cloned()
    };
    let writes_tracking = |table: Option<&str>, how: &str| {
        tracking(table).map(|table| {
            Refusal::Forbidden(format!(
                "it {how} the tracking table {table:?}, which only migrate-core may change{}",
                own_table_advice(&table)
            ))
        })
    };
    let autocommit = state.rules.autocommit;
    // SAFETY: the handle this state was installed on; only reads a flag.
    let schema_writable = || unsafe { writable_schema(state.db) };
    if let Some(apart) =
        written_database(action, arg1, arg2, database, schema_writable).and_then(|written| {
            state
                .rules
                .apart_from_main
                .iter()
                .find(|apart| same_identifier(&apart.schema, written))
        })
    {
        return Some(Refusal::Forbidden(format!(
            "it writes the attached database {:?}, and SQLite commits a transaction over two \
             files atomically only when both keep a rollback journal on disk and neither has \
             synchronous = OFF (here {}): a process killed during COMMIT could keep this step's \
             writes there without its tracking row, or the reverse. Migrate that database on a \
             connection of its own, or while migrating set both to PRAGMA journal_mode = DELETE \
             and synchronous = NORMAL or FULL",
            apart.schema, apart.why
        )));
    }
    match action {
        ffi::SQLITE_TRANSACTION if !autocommit => Some(Refusal::TransactionControl),
        // arg1 is the operation, arg2 the savepoint's name; only ours is off limits.
        ffi::SQLITE_SAVEPOINT => arg2
            .is_some_and(|name| same_identifier(name, STEP_SAVEPOINT))
            .then_some(Refusal::TransactionControl),
        ffi::SQLITE_INSERT | ffi::SQLITE_UPDATE | ffi::SQLITE_DELETE if in_main => {
            writes_tracking(arg1, "writes")
        }
        ffi::SQLITE_DROP_TABLE if in_main => writes_tracking(arg1, "drops"),
        // A table of the migration's own by that name (another tool's
        // history table): `IF NOT EXISTS` would silently keep ours.
        ffi::SQLITE_CREATE_TABLE if in_main => tracking(arg1).map(|table| {
            Refusal::Forbidden(format!(
                "it creates a table named like the tracking table {table:?} (with IF NOT EXISTS, \
                 SQLite would silently keep the tracking table instead){}",
                own_table_advice(&table)
            ))
        }),
        // arg1 is the database, arg2 the table.
        ffi::SQLITE_ALTER_TABLE if arg1.map_or(true, is_main) => writes_tracking(arg2, "alters"),
        // A trigger on the tracking table would write it behind the runner's
        // back; so could an index (a UNIQUE one refuses rows), and dropping
        // ours removes its tamper check. A TEMP trigger may name a main table.
        // Our triggers' names are ours on any table: SQLite would keep a
        // trigger of that name in place of ours (arg1 is the trigger).
        ffi::SQLITE_CREATE_TRIGGER
        | ffi::SQLITE_CREATE_TEMP_TRIGGER
        | ffi::SQLITE_DROP_TRIGGER
        | ffi::SQLITE_DROP_TEMP_TRIGGER => writes_tracking(arg2, "adds or drops a trigger on")
            .or_else(|| {
                let name = arg1?;
                let own = state
                    .rules
                    .own_triggers
                    .iter()
                    .find(|own| same_identifier(own, name))?;
                Some(Refusal::Forbidden(format!(
                    "it creates or drops a trigger named {own:?}, a name migrate-core keeps \
                     for the tamper check of its tracking table: give the trigger another name"
                )))
            }),
        ffi::SQLITE_CREATE_INDEX | ffi::SQLITE_DROP_INDEX if in_main => {
            writes_tracking(arg2, "adds or drops an index on")
        }
        ffi::SQLITE_ATTACH | ffi::SQLITE_DETACH if !autocommit => Some(Refusal::Forbidden(
            "it runs ATTACH or DETACH, which cannot run inside a transaction: attach the \
             database on the connection before migrating"
                .to_owned(),
        )),
        ffi::SQLITE_PRAGMA if !autocommit => arg1.and_then(|pragma| {
            if pragma.eq_ignore_ascii_case("defer_foreign_keys")
                && arg2.is_some_and(is_off)
                // SAFETY: a valid handle; reading a counter is allowed here.
                && unsafe { deferred_violations(state.db) }
            {
                return Some(Refusal::Forbidden(
                    "it turns PRAGMA defer_foreign_keys off while the foreign key violations \
                     it deferred are still there, which makes SQLite forget them: fix the rows \
                     first, or leave the pragma on (it ends with the transaction)"
                        .to_owned(),
                ));
            }
            judge_pragma(
                pragma,
                arg2,
                state.foreign_keys_off_step.load(Ordering::Relaxed),
            )
        }),
        _ => None,
    }
}

/// The database an action writes (its schema or its rows), if it writes.
fn written_database<'a>(
    action: c_int,
    arg1: Option<&'a str>,
    arg2: Option<&'a str>,
    database: Option<&'a str>,
    schema_writable: impl FnOnce() -> bool,
) -> Option<&'a str> {
    match action {
        // The schema table's own rows are written for the DDL judged by its
        // own action below (and SQLite reports an attached table's schema
        // for a TEMP trigger on it, which writes only TEMP's); written by
        // the statement itself only under `PRAGMA writable_schema`.
        ffi::SQLITE_INSERT | ffi::SQLITE_UPDATE | ffi::SQLITE_DELETE
            if arg1.is_some_and(|table| {
                [
                    "sqlite_master",
                    "sqlite_schema",
                    "sqlite_temp_master",
                    "sqlite_temp_schema",
                ]
                .iter()
                .any(|schema_table| same_identifier(schema_table, table))
            }) =>
        {
            database.filter(|_| schema_writable())
        }
        ffi::SQLITE_INSERT
        | ffi::SQLITE_UPDATE
        | ffi::SQLITE_DELETE
        | ffi::SQLITE_CREATE_TABLE
        | ffi::SQLITE_DROP_TABLE
        | ffi::SQLITE_CREATE_INDEX
        | ffi::SQLITE_DROP_INDEX
        | ffi::SQLITE_CREATE_TRIGGER
        | ffi::SQLITE_DROP_TRIGGER
        | ffi::SQLITE_CREATE_VIEW
        | ffi::SQLITE_DROP_VIEW
        | ffi::SQLITE_CREATE_VTABLE
        | ffi::SQLITE_DROP_VTABLE
        | ffi::SQLITE_REINDEX
        | ffi::SQLITE_ANALYZE => database,
        // arg1 is the database.
        ffi::SQLITE_ALTER_TABLE => arg1,
        // The pragmas that write a database's file inside a transaction;
        // `database` is the schema a pragma names (none: `main`).
        ffi::SQLITE_PRAGMA => {
            let writes = match arg1?.to_ascii_lowercase().as_str() {
                "user_version" | "application_id" => arg2.is_some(),
                "incremental_vacuum" => true,
                _ => false,
            };
            writes.then_some(database?)
        }
        _ => None,
    }
}

/// Whether `PRAGMA writable_schema` is on (`SQLITE_DBCONFIG_WRITABLE_SCHEMA`).
///
/// # Safety
/// `db` is a valid connection handle.
unsafe fn writable_schema(db: *mut ffi::sqlite3) -> bool {
    const SQLITE_DBCONFIG_WRITABLE_SCHEMA: c_int = 1011;
    let mut on: c_int = 0;
    // SAFETY: a valid handle; -1 only reads the flag into `on`.
    let rc = unsafe {
        ffi::sqlite3_db_config(
            db,
            SQLITE_DBCONFIG_WRITABLE_SCHEMA,
            -1 as c_int,
            &mut on as *mut c_int,
        )
    };
    rc == ffi::SQLITE_OK && on != 0
}

/// What to do when a migration wants a table of its own named like the
/// tracking table (another tool's history table, say).
fn own_table_advice(table: &str) -> String {
    format!(
        "; if the migration means a table of its own named {table:?}, give this set's tracking \
         table another name with Migrator::table(\"…\") (a named set's table is \
         migrations_<set> by default)"
    )
}

/// A pragma value that switches something off, as SQLite reads booleans.
fn is_off(value: &str) -> bool {
    let value = value.trim_matches(|c| c == '\'' || c == '"');
    ["off", "0", "false", "no"]
        .iter()
        .any(|off| value.eq_ignore_ascii_case(off))
}

/// Pragmas that SQLite ignores or refuses inside a transaction, that would
/// corrupt the schema, or that would stop the runner from recording the
/// step, are refused with what to do instead (`value`: what the statement
/// sets, `None` when it reads). Reading any pragma is fine.
fn judge_pragma(pragma: &str, value: Option<&str>, foreign_keys_off_step: bool) -> Option<Refusal> {
    let value = value?;
    let advice = match pragma.to_ascii_lowercase().as_str() {
        "journal_mode" => {
            "it sets PRAGMA journal_mode, which cannot change inside a transaction: set it on \
             the connection before migrating"
        }
        // A `foreign_keys = off` step already runs with them off, and the
        // runner restores them after: setting them there is harmless.
        "foreign_keys" if foreign_keys_off_step => return None,
        "foreign_keys" => {
            "it sets PRAGMA foreign_keys, which SQLite ignores inside a transaction: declare the \
             migration #[migration(n, foreign_keys = off)] so the runner turns them off before \
             its transaction and checks them before committing"
        }
        "page_size" | "auto_vacuum" => {
            "it sets PRAGMA page_size or auto_vacuum, which take effect only after a VACUUM, and \
             VACUUM cannot run inside a transaction: change them outside migrations"
        }
        "schema_version" => {
            "it sets PRAGMA schema_version, which corrupts the schema cache of every connection: \
             remove it"
        }
        "count_changes" if !is_off(value) => {
            "it turns PRAGMA count_changes on (deprecated), which makes every INSERT, UPDATE and \
             DELETE return a row, migrate-core's own writes too: remove it"
        }
        // The step's tracking row, and the COMMIT of the steps before it in
        // the transaction, are writes.
        "query_only" if !is_off(value) => {
            "it turns PRAGMA query_only on, which would stop migrate-core from recording this \
             migration and committing the ones before it: set it on the connection after \
             migrating"
        }
        _ => return None,
    };
    Some(Refusal::Forbidden(advice.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::judge_pragma;

    #[test]
    fn reading_pragmas_is_always_fine() {
        assert!(judge_pragma("journal_mode", None, false).is_none());
        assert!(judge_pragma("foreign_keys", None, false).is_none());
        assert!(judge_pragma("query_only", None, false).is_none());
    }

    #[test]
    fn pragmas_that_cannot_work_in_a_transaction_are_refused() {
        for pragma in [
            "journal_mode",
            "Journal_Mode",
            "foreign_keys",
            "page_size",
            "auto_vacuum",
        ] {
            assert!(judge_pragma(pragma, Some("1"), false).is_some(), "{pragma}");
        }
        assert!(judge_pragma("foreign_keys", Some("1"), true).is_none());
        assert!(judge_pragma("user_version", Some("1"), false).is_none());
        assert!(judge_pragma("defer_foreign_keys", Some("1"), false).is_none());
    }

    #[test]
    fn only_turning_query_only_or_count_changes_on_is_refused() {
        for pragma in ["Query_Only", "count_changes"] {
            for on in ["ON", "1", "true", "yes"] {
                assert!(judge_pragma(pragma, Some(on), false).is_some(), "{on}");
            }
            for off in ["off", "0", "FALSE", "'no'"] {
                assert!(judge_pragma(pragma, Some(off), false).is_none(), "{off}");
            }
        }
    }
}
