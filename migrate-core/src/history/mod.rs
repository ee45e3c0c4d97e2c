//! The tracking table: its shape, the one path that reads and checks it,
//! and the writes that keep it.
//!
//! The table always lives in the `main` schema and every statement names it
//! `main."…"`, so a TEMP table or an ATTACHed database with the same name is
//! never read or written as a history.
//!
//! Every read goes through [`checked`]: first the O(1) check of the newest
//! row (its `chain` hashes the whole history as written), and only when that
//! does not vouch for the history, the full read of every row. Two triggers
//! on the table (see [`ensure_triggers`]) turn any hand edit of a row, and
//! the deletion of any row but the newest, into a failed O(1) check, so that
//! both paths reach the same verdict.

mod ledger;
mod verify;

use std::sync::OnceLock;

use rusqlite::params;
use rusqlite::types::Value;

use crate::db::{self, Db};

use crate::error::{Direction, Error};
use crate::hash;
use crate::registry::Plan;
use crate::report::AppliedMigration;
pub(crate) use crate::sqlite::quote_identifier;

pub(crate) use ledger::Ledger;
pub(crate) use verify::{chains_current, matches_plan, repair_chains, verify};

/// Marks our tracking tables (and their triggers) in `sqlite_master.sql`, so
/// that a database that holds another set's table is recognised as ours (see
/// `check_managed`).
pub(crate) const MARKER: &str = "migrate-core tracking table";

/// The chain value the triggers write into the newest row when a row is
/// edited or deleted by hand: it matches no plan, so the next read checks
/// every row.
const EDITED: &str = "edited by hand";

/// The chain values of a step outside a transaction while it runs: the row
/// of a migration started (its chain comes when it is done), or of a
/// rollback started (the row goes when it is done). Neither is 32 hex
/// digits, so the O(1) check never vouches for them.
pub(crate) const STARTED: &str = "started outside a transaction";
pub(crate) const ROLLING_BACK: &str = "rolling back outside a transaction";

/// A step outside a transaction that was started and not recorded as done.
pub(crate) struct Marker {
    pub id: u32,
    pub name: String,
    pub direction: Direction,
    pub since: String,
}

impl Marker {
    fn of(rows: &[Row]) -> Option<Marker> {
        let row = rows.last()?;
        let direction = match row.chain.as_str() {
            STARTED => Direction::Up,
            ROLLING_BACK => Direction::Down,
            _ => return None,
        };
        Some(Marker {
            id: row.applied.id,
            name: row.applied.name.clone(),
            direction,
            since: row.applied.applied_at.clone(),
        })
    }

    pub fn into_error(self) -> Error {
        Error::Interrupted {
            id: self.id,
            name: self.name,
            direction: self.direction,
            since: self.since,
        }
    }
}

/// The interrupted step, if the history has one.
pub(crate) fn interrupted(conn: &dyn Db, table: &Table) -> Result<Option<Marker>, Error> {
    Ok(load(conn, table)?.and_then(|rows| Marker::of(&rows)))
}

/// A tracking table, by name.
pub(crate) struct Table {
    pub name: String,
    /// The up-to-date check's statement: the newest chain alone (the common
    /// case: is the whole plan applied?).
    newest_chain_sql: String,
    /// The others, written at their first use: a process whose first call
    /// finds nothing to do needs none of them.
    statements: OnceLock<Statements>,
}

/// A tracking table's other statements and names.
struct Statements {
    /// `main."name"`.
    qualified: String,
    /// Its triggers' names, quoted: edit, delete, insert.
    triggers: [String; 3],
    /// The rest of the O(1) check: the newest id and chain, and the same
    /// for an unverified history.
    newest_sql: String,
    newest_unverified_sql: String,
    /// The bookkeeping statements, written once per table.
    insert_sql: String,
    delete_sql: String,
    read_back_sql: String,
    read_rows_sql: String,
    set_chain_sql: String,
    stored_chain_sql: String,
    rewrite_sql: String,
}

impl Table {
    pub fn new(name: &str) -> Table {
        // Written with `push_str` into a string of the exact size: this
        // runs in the first call of a process, where `format!`'s code and a
        // string's growth (std's cold path: a page fault `perf` found here)
        // are pages to fault in (see `quote_identifier`).
        const HEAD: &str = "SELECT chain FROM main.";
        const TAIL: &str = " ORDER BY id DESC LIMIT 1";
        let quoted = quote_identifier(name);
        let mut newest_chain_sql = String::with_capacity(HEAD.len() + quoted.len() + TAIL.len());
        newest_chain_sql.push_str(HEAD);
        newest_chain_sql.push_str(&quoted);
        newest_chain_sql.push_str(TAIL);
        Table {
            name: name.to_owned(),
            newest_chain_sql,
            statements: OnceLock::new(),
        }
    }

    fn sql(&self) -> &Statements {
        self.statements.get_or_init(|| Statements::new(&self.name))
    }
}

impl Statements {
    fn new(name: &str) -> Statements {
        // Quoted again rather than kept on `Table`: once per table, and only
        // where a statement of these is needed.
        let qualified = format!("main.{}", quote_identifier(name));
        Statements {
            triggers: trigger_names(name).map(|name| quote_identifier(&name)),
            newest_sql: format!("SELECT id, chain FROM {qualified} ORDER BY id DESC LIMIT 1"),
            newest_unverified_sql: format!(
                "SELECT newest.id, newest.chain, first.name, first.checksum, first.chain \
                 FROM {qualified} AS newest, {qualified} AS first \
                 WHERE first.id = 0 ORDER BY newest.id DESC LIMIT 1"
            ),
            insert_sql: format!(
                "INSERT INTO {qualified} (id, name, applied_at, checksum, chain) \
                 VALUES (?1, ?2, ?5, ?3, ?4)"
            ),
            delete_sql: format!("DELETE FROM {qualified} WHERE id = ?1"),
            read_back_sql: format!("SELECT name, checksum, chain FROM {qualified} WHERE id = ?1"),
            read_rows_sql: format!(
                "SELECT id, name, applied_at, checksum, chain FROM {qualified} ORDER BY id"
            ),
            set_chain_sql: format!("UPDATE {qualified} SET chain = ?2 WHERE id = ?1"),
            stored_chain_sql: format!("SELECT chain FROM {qualified} WHERE id = ?1"),
            rewrite_sql: format!("UPDATE {qualified} SET checksum = ?2, chain = ?3 WHERE id = ?1"),
            qualified,
        }
    }
}

/// The names of a tracking table's triggers: edit, delete, insert.
pub(crate) fn trigger_names(table: &str) -> [String; 3] {
    [
        format!("migrate_core_edit_{table}"),
        format!("migrate_core_delete_{table}"),
        format!("migrate_core_insert_{table}"),
    ]
}

/// A row as stored, with the chain value kept out of the public type.
pub(crate) struct Row {
    pub applied: AppliedMigration,
    pub chain: String,
}

/// What the tracking table says, checked against a plan.
pub(crate) struct History {
    /// The tracking table exists.
    pub exists: bool,
    /// The table was created in this transaction without its triggers: the
    /// writer creates them before COMMIT (a local run would drop them before
    /// its first step anyway, see [`suspend_triggers`]).
    pub triggers_pending: bool,
    /// How many migrations are applied: rows `0..applied`.
    pub applied: usize,
    /// The rows, when they were read (always after a full read; after the
    /// O(1) check only when asked for).
    pub rows: Vec<Row>,
    /// The newest row's chain (the plan's seed without rows).
    pub newest_chain: u128,
    /// The newest chain is the plan's: nothing to rewrite.
    pub chain_current: bool,
}

impl History {
    fn empty(plan: &Plan) -> History {
        History {
            exists: false,
            triggers_pending: false,
            applied: 0,
            rows: Vec::new(),
            newest_chain: plan.seed,
            chain_current: true,
        }
    }
}

/// The one read path: `None` when the table does not exist. Unknown
/// applied migrations are `DatabaseAhead`; edited ones `Modified` (when
/// `verify_applied`); a table that is not ours, or rows we did not write,
/// are errors. `want_rows` reads the rows even when the O(1) check vouches
/// for them.
pub(crate) fn checked(
    conn: &dyn Db,
    plan: &Plan,
    table: &Table,
    verify_applied: bool,
    want_rows: bool,
) -> Result<Option<History>, Error> {
    if let Some((applied, newest_chain)) = vouched(conn, plan, table, verify_applied)? {
        let rows = if want_rows {
            read_rows(conn, table)?
        } else {
            Vec::new()
        };
        return Ok(Some(History {
            exists: true,
            triggers_pending: false,
            applied,
            rows,
            newest_chain,
            chain_current: true,
        }));
    }
    loaded(conn, plan, table, verify_applied)
}

/// The read path's second half, for when [`vouched`] could not answer:
/// every row read and checked against the plan.
pub(crate) fn loaded(
    conn: &dyn Db,
    plan: &Plan,
    table: &Table,
    verify_applied: bool,
) -> Result<Option<History>, Error> {
    let Some(rows) = load(conn, table)? else {
        return Ok(None);
    };
    if let Some(marker) = Marker::of(&rows) {
        return Err(marker.into_error());
    }
    verify(&rows, plan, verify_applied)?;
    let newest_chain = match rows.last() {
        Some(row) => hash::parse_hex(&row.chain).unwrap_or_default(),
        None => plan.seed,
    };
    let chain_current = chains_current(&rows, plan);
    Ok(Some(History {
        exists: true,
        triggers_pending: false,
        applied: rows.len(),
        rows,
        newest_chain,
        chain_current,
    }))
}

/// The rows for a report that shows edited and unknown migrations rather
/// than refusing them, and whether the O(1) check vouched for them all.
pub(crate) fn for_report(
    conn: &dyn Db,
    plan: &Plan,
    table: &Table,
    verify_applied: bool,
) -> Result<(Vec<Row>, bool), Error> {
    if vouched(conn, plan, table, verify_applied)?.is_some() {
        return Ok((read_rows(conn, table)?, true));
    }
    Ok((load(conn, table)?.unwrap_or_default(), false))
}

/// The read at the start of a write transaction: the one path, plus what a
/// writer must make sure of first (the table is ours, with its edit
/// trigger, and no other trigger), creating the table when `create` and it
/// is missing, and rewriting stale chains.
pub(crate) fn for_write(
    conn: &dyn Db,
    plan: &Plan,
    table: &Table,
    verify_applied: bool,
    want_rows: bool,
    create_missing: bool,
) -> Result<History, Error> {
    if !check_object(conn, table)? {
        let mut history = History::empty(plan);
        if create_missing {
            check_managed(conn, &plan.set, table)?;
            create_table(conn, table)?;
            history.exists = true;
            history.triggers_pending = true;
        }
        return Ok(history);
    }
    let Some(mut history) = checked(conn, plan, table, verify_applied, want_rows)? else {
        return Ok(History::empty(plan));
    };
    history.exists = true;
    ensure_triggers(conn, table)?;
    if !history.chain_current {
        repair_chains(conn, table, plan, &history.rows)?;
        if let Some(repaired) = checked(conn, plan, table, verify_applied, want_rows)? {
            history = repaired;
        }
    }
    Ok(history)
}

/// The O(1) check: the number of applied migrations (and the newest
/// chain) when the newest row
/// vouches for the whole history (its chain is the plan's, and no row is
/// missing), `None` when the full read must decide (no table, an edited or
/// unknown history, an unreadable row). Only a lock held elsewhere past the
/// deadline is an error here.
pub(crate) fn vouched(
    conn: &dyn Db,
    plan: &Plan,
    table: &Table,
    verify_applied: bool,
) -> Result<Option<(usize, u128)>, Error> {
    if verify_applied {
        // Most calls find the whole plan applied: one column of one row
        // answers that (the chain of a longer or different history is
        // another value), and costs less to prepare than two.
        // The plan's head and count need no step placed (see `Plan`).
        let head = plan.head();
        let mut newest = None;
        let read = conn.first_column(&table.newest_chain_sql, params![], &mut |value| {
            newest = value.as_str().ok().and_then(hash::parse_hex);
        });
        match read {
            Ok(true) if newest == Some(head) => return Ok(Some((plan.len() as usize, head))),
            Err(error) if conn.is_busy(&error) => return Err(error),
            _ => {}
        }
    }
    let newest = if verify_applied {
        // No row count (it is O(rows)): a row deleted or inserted by hand,
        // but the newest, marks the newest row's chain through the triggers.
        db::first_row(conn, &table.sql().newest_sql, params![])
            .map(|row| row.map(|row| (db::integer(&row[0]), parse_chain(&row[1]), true)))
    } else {
        // An unverified history may differ from the plan, so its chains are
        // judged against its own rows: row 0's must start from this table's
        // name, or the history is another table's (letter case!).
        db::first_row(conn, &table.sql().newest_unverified_sql, params![]).map(|row| {
            row.map(|row| {
                let name = db::text(&row[2]).unwrap_or_default();
                let checksum = db::text(&row[3]).unwrap_or_default();
                let first = hash::chain(plan.seed, hash::link(0, name, checksum));
                let seeded = parse_chain(&row[4]) == Some(first);
                (db::integer(&row[0]), parse_chain(&row[1]), seeded)
            })
        })
    };
    let (newest, chain, seeded) = match newest {
        Ok(Some(found)) => found,
        Ok(None) => return Ok(None),
        Err(error) if conn.is_busy(&error) => return Err(error),
        Err(_) => return Ok(None),
    };
    let (Some(Ok(index)), Some(chain)) = (newest.map(usize::try_from), chain) else {
        return Ok(None);
    };
    let vouched =
        seeded && index < plan.len() as usize && (!verify_applied || plan.chains()[index] == chain);
    Ok(vouched.then_some((index + 1, chain)))
}

/// A stored chain's value; `None` for anything but 32 hex digits.
fn parse_chain(value: &Value) -> Option<u128> {
    db::text(value).and_then(hash::parse_hex)
}

/// Reads every row, or `None` when the table does not exist. A table that is
/// not ours or a row we could not have written is an error.
pub(crate) fn load(conn: &dyn Db, table: &Table) -> Result<Option<Vec<Row>>, Error> {
    if !check_object(conn, table)? {
        return Ok(None);
    }
    check_shape(conn, table)?;
    read_rows(conn, table).map(Some)
}

/// Everything a writer of the history may have changed: the table's rows
/// as stored (`None` without a table) and `user_version`. Compared before
/// and after a failed COMMIT (see `runner::write_unless`).
pub(crate) fn contents(conn: &dyn Db, table: &Table) -> Result<Contents, Error> {
    let rows = if check_object(conn, table)? {
        Some(conn.query(&table.sql().read_rows_sql, params![])?)
    } else {
        None
    };
    Ok(Contents {
        rows,
        user_version: user_version(conn)?,
    })
}

/// What [`contents`] reads.
#[derive(PartialEq, Debug)]
pub(crate) struct Contents {
    rows: Option<Vec<Vec<Value>>>,
    user_version: i64,
}

/// Creates `table` unless `main` has it, after the check a run makes
/// before creating one; whether it did. On a libSQL server, in a
/// transaction of its own before the run's (see `runner::remote`).
#[cfg(feature = "libsql")]
pub(crate) fn create_missing(conn: &dyn Db, set: &str, table: &Table) -> Result<bool, Error> {
    if check_object(conn, table)? {
        return Ok(false);
    }
    check_managed(conn, set, table)?;
    create_table(conn, table)?;
    Ok(true)
}

/// Whether `conn` has `table` and a statement can read it: a libSQL
/// replica lists a table the primary created a moment before a statement
/// prepared there can read it.
#[cfg(feature = "libsql")]
pub(crate) fn readable(conn: &dyn Db, table: &Table) -> Result<bool, Error> {
    Ok(check_object(conn, table)?
        && db::first_row(conn, &table.sql().newest_sql, params![]).is_ok())
}

/// `false` when no object of that name exists in `main`. The object must be
/// a table of exactly that name (SQLite table names ignore letter case, so
/// `History` and `history` are one table: two sets must not share it).
/// Triggers and constraints on it are not refused here: a write they
/// interfere with fails its step, naming it (see [`Recorder`]).
fn check_object(conn: &dyn Db, table: &Table) -> Result<bool, Error> {
    let objects = conn.query(
        "SELECT type, name FROM main.sqlite_master WHERE type IN ('table', 'view', 'index')",
        params![],
    )?;
    let Some(found) = objects.iter().find(|object| {
        db::text(&object[1]).is_some_and(|name| crate::sqlite::same_identifier(name, &table.name))
    }) else {
        return Ok(false);
    };
    let kind = db::text(&found[0]).unwrap_or_default();
    let name = db::text(&found[1]).unwrap_or_default().to_owned();
    if kind != "table" {
        return Err(Error::IncompatibleTrackingTable {
            table: table.name.clone(),
            problems: vec![format!(
                "it is {} {kind}, not a table",
                if kind == "index" { "an" } else { "a" }
            )],
        });
    }
    if name != table.name {
        return Err(Error::TableNameClash {
            table: table.name.clone(),
            existing: name,
        });
    }
    Ok(true)
}

/// The columns we write, with the declared type each must have.
const COLUMNS: [(&str, &str, bool); 5] = [
    ("id", "INTEGER", false),
    ("name", "TEXT", true),
    ("applied_at", "TEXT", true),
    ("checksum", "TEXT", true),
    ("chain", "TEXT", true),
];

/// An error unless the table has our columns, with our types.
fn check_shape(conn: &dyn Db, table: &Table) -> Result<(), Error> {
    let found: Vec<(String, String, bool, i64)> = conn
        .query(
            "SELECT name, type, \"notnull\", pk FROM pragma_table_info(?1, 'main')",
            params![table.name],
        )?
        .iter()
        .map(|row| {
            (
                db::text(&row[0]).unwrap_or_default().to_owned(),
                db::text(&row[1]).unwrap_or_default().to_ascii_uppercase(),
                db::integer(&row[2]).unwrap_or_default() != 0,
                db::integer(&row[3]).unwrap_or_default(),
            )
        })
        .collect();
    let mut problems = Vec::new();
    for (column, ty, not_null) in COLUMNS {
        match found
            .iter()
            .find(|(name, ..)| name.eq_ignore_ascii_case(column))
        {
            None => problems.push(format!("it has no column `{column}`")),
            Some((_, found_ty, found_not_null, pk)) => {
                if found_ty != ty {
                    problems.push(format!(
                        "column `{column}` is declared {found_ty:?}, expected {ty}"
                    ));
                }
                if column == "id" && *pk != 1 {
                    problems.push("column `id` is not the INTEGER PRIMARY KEY".to_owned());
                }
                if not_null && !found_not_null {
                    problems.push(format!("column `{column}` allows NULL, expected NOT NULL"));
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        let columns: Vec<String> = found
            .iter()
            .map(|(name, ty, ..)| format!("{name} {ty}"))
            .collect();
        problems.push(format!("its columns are: {}", columns.join(", ")));
        Err(Error::IncompatibleTrackingTable {
            table: table.name.clone(),
            problems,
        })
    }
}

fn read_rows(conn: &dyn Db, table: &Table) -> Result<Vec<Row>, Error> {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    // Every column is NOT NULL (`check_shape`): a NULL read is one SQLite
    // cannot have stored.
    let mut null_read = false;
    for values in conn.query(&table.sql().read_rows_sql, params![])? {
        let Ok(values) = <[Value; 5]>::try_from(values) else {
            problems.push("a row does not have the five columns".to_owned());
            break;
        };
        null_read |= values.iter().any(|value| matches!(value, Value::Null));
        match parse_row(&values) {
            Ok(parsed) => out.push(parsed),
            Err(problem) => problems.push(problem),
        }
        if problems.len() >= 20 {
            problems.push("… (stopped after 20 problems)".to_owned());
            break;
        }
    }
    if null_read {
        problems.push(
            "NULL was read from columns declared NOT NULL, which SQLite cannot have stored: \
             something on this connection changed what was read (an authorizer answering \
             SQLITE_IGNORE for the table's columns reads them as NULL); remove it and run \
             again before restoring anything"
                .to_owned(),
        );
    }
    for (position, row) in out.iter().enumerate() {
        if problems.len() >= 20 {
            break;
        }
        if u64::from(row.applied.id) != position as u64 {
            problems.push(format!(
                "ids are not contiguous: expected {position}, found {} (were rows deleted by hand?)",
                row.applied.id
            ));
            break;
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(Error::CorruptHistory {
            table: table.name.clone(),
            problems,
        })
    }
}

fn parse_row(values: &[Value; 5]) -> Result<Row, String> {
    let id = match &values[0] {
        Value::Integer(id) => u32::try_from(*id)
            .map_err(|_| format!("row with id {id}: ids run from 0 to 4294967295"))?,
        other => return Err(format!("a row has id {other:?}, expected an integer")),
    };
    let text = |index: usize, column: &str| match &values[index] {
        Value::Text(text) => Ok(text.clone()),
        Value::Null => Err(format!("row {id}: `{column}` is NULL")),
        other => Err(format!(
            "row {id}: `{column}` is {}, expected text",
            type_name(other)
        )),
    };
    Ok(Row {
        applied: AppliedMigration {
            id,
            name: text(1, "name")?,
            applied_at: text(2, "applied_at")?,
            checksum: text(3, "checksum")?,
        },
        chain: text(4, "chain")?,
    })
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "NULL",
        Value::Integer(_) => "an integer",
        Value::Real(_) => "a real",
        Value::Text(_) => "text",
        Value::Blob(_) => "a blob",
    }
}

/// Creates the table and its triggers.
pub(crate) fn create(conn: &dyn Db, table: &Table) -> Result<(), Error> {
    create_table(conn, table)?;
    ensure_triggers(conn, table)
}

/// Creates the table alone.
fn create_table(conn: &dyn Db, table: &Table) -> Result<(), Error> {
    conn.execute_batch(&format!(
        "CREATE TABLE {} ( -- {MARKER}: written by migrate-core, do not edit by hand\n\
         \x20   id INTEGER PRIMARY KEY,\n\
         \x20   name TEXT NOT NULL,\n\
         \x20   applied_at TEXT NOT NULL,\n\
         \x20   checksum TEXT NOT NULL,\n\
         \x20   chain TEXT NOT NULL\n\
         )",
        table.sql().qualified
    ))?;
    Ok(())
}

/// Drops the tracking table's triggers for the rest of the write
/// transaction, until [`ensure_triggers`] creates them again before COMMIT
/// (a rollback brings them back by itself). They guard against hand edits
/// between runs; inside a run the guard keeps user code off the table, and
/// migrate-core only appends and removes the newest row. Every step changes
/// the schema, so each bookkeeping statement is prepared again after it, and
/// with the triggers in place that meant compiling their programs into it at
/// every step (a third of the bookkeeping's cost).
pub(crate) fn suspend_triggers(conn: &dyn Db, table: &Table) -> Result<(), Error> {
    let [edit, delete, insert] = &table.sql().triggers;
    conn.execute_batch(&format!(
        "DROP TRIGGER IF EXISTS main.{edit};\n\
         DROP TRIGGER IF EXISTS main.{delete};\n\
         DROP TRIGGER IF EXISTS main.{insert};"
    ))?;
    Ok(())
}

/// The triggers that keep the O(1) check honest. migrate-core itself only
/// inserts rows after the newest, deletes the newest one (a rollback), and
/// rewrites chains (which changes them). So:
/// - any `UPDATE` that leaves a row's chain as it was (a hand edit of an id,
///   name, checksum or timestamp),
/// - any `DELETE` of a row that is not the newest, and
/// - any `INSERT` of a row before the newest
///
/// marks the newest row [`EDITED`], and the next read checks every row.
/// Created with the table, and added to tables of older versions at their
/// next write. The edit trigger names the columns it watches, so that
/// rewriting a chain (ours, and the triggers' own mark) does not compile it.
/// A trigger already there by one of these names is replaced, not kept: one
/// the application made (on another table, say) would otherwise stand in
/// for the tamper check for good.
pub(crate) fn ensure_triggers(conn: &dyn Db, table: &Table) -> Result<(), Error> {
    let bare = quote_identifier(&table.name);
    let mark = format!(
        "BEGIN\n\
         \x20   -- {MARKER}: a hand edit sends the next read to the full check\n\
         \x20   UPDATE {bare} SET chain = '{EDITED}'\n\
         \x20   WHERE id = (SELECT id FROM {bare} ORDER BY id DESC LIMIT 1)\n\
         \x20     AND chain IS NOT '{EDITED}';\n\
         END"
    );
    let [edit, delete, insert] = &table.sql().triggers;
    suspend_triggers(conn, table)?;
    conn.execute_batch(&format!(
        "CREATE TRIGGER main.{edit} \
         AFTER UPDATE OF id, name, applied_at, checksum ON {bare} \
         WHEN NEW.chain IS OLD.chain {mark};\n\
         CREATE TRIGGER main.{delete} AFTER DELETE ON {bare} \
         WHEN OLD.id < (SELECT id FROM {bare} ORDER BY id DESC LIMIT 1) {mark};\n\
         CREATE TRIGGER main.{insert} AFTER INSERT ON {bare} \
         WHEN NEW.id < (SELECT id FROM {bare} ORDER BY id DESC LIMIT 1) {mark};"
    ))?;
    Ok(())
}

/// Whether the tracking table still holds exactly `applied` rows, ids
/// `0..applied`, none marked edited by hand (by the table's triggers): on a
/// server, which has no authorizer to refuse the statement, what a step's
/// own SQL may have done to it. O(rows).
#[cfg(feature = "libsql")]
pub(crate) fn untouched(conn: &dyn Db, table: &Table, applied: usize) -> Result<bool, Error> {
    let found = db::first_row(
        conn,
        &format!(
            "SELECT count(*), coalesce(max(id), -1), coalesce(sum(chain = '{EDITED}'), 0) FROM {}",
            table.sql().qualified
        ),
        params![],
    )?;
    let Some(found) = found else {
        return Ok(false);
    };
    let applied = i64::try_from(applied).unwrap_or(i64::MAX);
    Ok(db::integer(&found[0]) == Some(applied)
        && db::integer(&found[1]) == Some(applied - 1)
        && db::integer(&found[2]) == Some(0))
}

/// Makes sure the table exists and holds no history, for `baseline` and
/// `adopt`, which may only write a history where there is none.
pub(crate) fn create_empty(conn: &dyn Db, table: &Table) -> Result<(), Error> {
    match load(conn, table)? {
        // A step outside a transaction marked in progress is reported as
        // every other call reports it (a probe's finding: baseline counted
        // its row as applied).
        Some(rows) if !rows.is_empty() => Err(match Marker::of(&rows) {
            Some(marker) => marker.into_error(),
            None => Error::AlreadyHasHistory {
                table: table.name.clone(),
                applied: u32::try_from(rows.len()).unwrap_or(u32::MAX),
            },
        }),
        Some(_) => ensure_triggers(conn, table),
        None => create(conn, table),
    }
}

/// The names of every tracking table of this library in `main`, for the
/// guard (user code may write none of them).
pub(crate) fn tracking_tables(conn: &dyn Db) -> Result<Vec<String>, Error> {
    let rows = conn.query(
        "SELECT name, sql FROM main.sqlite_master WHERE type = 'table'",
        params![],
    )?;
    Ok(rows
        .iter()
        .filter(|row| db::text(&row[1]).is_some_and(|sql| sql.contains(MARKER)))
        .filter_map(|row| db::text(&row[0]).map(str::to_owned))
        .collect())
}

/// What user code is kept off: every tracking table of `main`, `table`
/// among them (even rebuilt by hand without its marker), and the names of
/// the runner's triggers on each, which user code may neither create (on
/// any table) nor drop.
pub(crate) struct OffLimits {
    pub tables: Vec<String>,
    pub triggers: Vec<String>,
}

pub(crate) fn off_limits(conn: &dyn Db, table: &Table) -> Result<OffLimits, Error> {
    let mut tables = tracking_tables(conn)?;
    tables.push(table.name.clone());
    let triggers = tables.iter().flat_map(|name| trigger_names(name)).collect();
    Ok(OffLimits { tables, triggers })
}

/// Writes tracking rows. Every write must change exactly one row and leave
/// it as written: anything else means something on the table (a trigger, a
/// rule of another tool) interferes. Every step changes the schema, which
/// makes SQLite prepare a statement again anyway, so nothing is kept
/// prepared across steps.
///
/// "As written" is decided by SQLite's count of rows written, triggers'
/// writes included, where the connection gives it (a local file): one row,
/// ours, and nothing else written by the statement. SQLite triggers cannot
/// change the row being written except by writing (an `AFTER` trigger's
/// `UPDATE`, `DELETE` or `INSERT OR REPLACE`, all counted) or by
/// `RAISE(IGNORE)` in a `BEFORE` trigger (no row changed), whichever schema
/// holds them (a TEMP trigger on a main table too). A server's connection
/// has no such count: there, the row is read back (a statement more per
/// step, 5% of a local run's instructions when it was done on files too).
pub(crate) struct Recorder<'c> {
    conn: &'c dyn Db,
    table: &'c Table,
}

impl<'c> Recorder<'c> {
    pub fn new(conn: &'c dyn Db, table: &'c Table) -> Result<Self, Error> {
        Ok(Recorder { conn, table })
    }

    /// Records a migration as applied.
    pub fn insert(
        &mut self,
        id: u32,
        name: &str,
        checksum: &str,
        chain: &str,
    ) -> Result<(), Error> {
        self.insert_at(id, name, checksum, chain, None)
    }

    /// Records a migration as applied at a given time (adopted history);
    /// `None` means now.
    pub fn insert_at(
        &mut self,
        id: u32,
        name: &str,
        checksum: &str,
        chain: &str,
        applied_at: Option<&str>,
    ) -> Result<(), Error> {
        // The time is written from here, not by SQL's `strftime`, which an
        // application may have replaced on the connection (see `utc`).
        let now;
        let applied_at = match applied_at {
            Some(at) => at,
            None => {
                now = crate::utc::now();
                now.as_str()
            }
        };
        let before = self.conn.total_changes();
        let changed = self.conn.execute(
            &self.table.sql().insert_sql,
            params![id, name, checksum, chain, applied_at],
        )?;
        let as_written = match self.written_alone(before) {
            Some(alone) => alone,
            None => self
                .stored(id)?
                .as_ref()
                .is_some_and(|(n, c, h)| n == name && c == checksum && h == chain),
        };
        self.check(changed == 1 && as_written, "recording", id, changed)
    }

    /// Removes a migration's row after its rollback ran.
    pub fn delete(&mut self, id: u32) -> Result<(), Error> {
        let before = self.conn.total_changes();
        let changed = self
            .conn
            .execute(&self.table.sql().delete_sql, params![id])?;
        let gone = match self.written_alone(before) {
            Some(alone) => alone,
            None => self.stored(id)?.is_none(),
        };
        self.check(changed == 1 && gone, "removing the row of", id, changed)
    }

    /// Whether the statement since `before` wrote exactly one row, nothing
    /// else written by a trigger; `None` when the connection cannot say.
    fn written_alone(&self, before: Option<u32>) -> Option<bool> {
        Some(self.conn.total_changes()?.wrapping_sub(before?) == 1)
    }

    fn stored(&mut self, id: u32) -> Result<Option<(String, String, String)>, Error> {
        let row = db::first_row(self.conn, &self.table.sql().read_back_sql, params![id])?;
        Ok(row.map(|row| {
            let text = |index: usize| db::text(&row[index]).unwrap_or_default().to_owned();
            (text(0), text(1), text(2))
        }))
    }

    fn check(&self, ok: bool, what: &str, id: u32, changed: usize) -> Result<(), Error> {
        if ok {
            return Ok(());
        }
        Err(Error::IncompatibleTrackingTable {
            table: self.table.name.clone(),
            problems: vec![format!(
                "{what} migration {id} changed {changed} row(s) and did not leave the row as \
                 written: something on the table (a trigger with RAISE(IGNORE), a rule of another \
                 tool) interferes; drop it"
            )],
        })
    }
}

/// Refuses a database that something else built: user tables, or for the
/// default set a non-zero `user_version`, but none of our tracking tables.
/// Called only when this set's table is missing.
pub(crate) fn check_managed(conn: &dyn Db, set: &str, table: &Table) -> Result<(), Error> {
    if !tracking_tables(conn)?.is_empty() {
        return Ok(());
    }
    let mut tables: Vec<String> = conn
        .query(
            "SELECT name FROM main.sqlite_master WHERE type IN ('table', 'view') ORDER BY name",
            params![],
        )?
        .iter()
        .filter_map(|row| db::text(&row[0]).map(str::to_owned))
        .filter(|name| !crate::sqlite::is_internal(name))
        .take(11)
        .collect();
    if tables.len() > 10 {
        tables.truncate(10);
        tables.push("…".to_owned());
    }
    let user_version = if set.is_empty() {
        user_version(conn)?
    } else {
        0
    };
    if tables.is_empty() && user_version == 0 {
        return Ok(());
    }
    Err(Error::UnmanagedDatabase {
        set: set.to_owned(),
        table: table.name.clone(),
        tables,
        user_version,
    })
}

/// Sets a row's chain (the markers of a step outside a transaction, and
/// its real chain once done).
pub(crate) fn set_chain(conn: &dyn Db, table: &Table, id: u32, chain: &str) -> Result<(), Error> {
    let changed = conn.execute(&table.sql().set_chain_sql, params![id, chain])?;
    one_row(table, changed, "setting the chain of", id)
}

/// Deletes a row (a step outside a transaction not done, or rolled back).
pub(crate) fn delete_row(conn: &dyn Db, table: &Table, id: u32) -> Result<(), Error> {
    let changed = conn.execute(&table.sql().delete_sql, params![id])?;
    one_row(table, changed, "deleting the row of", id)
}

/// A row's chain value as stored, if the row exists.
pub(crate) fn stored_chain(conn: &dyn Db, table: &Table, id: u32) -> Result<Option<String>, Error> {
    let row = db::first_row(conn, &table.sql().stored_chain_sql, params![id])?;
    Ok(row.and_then(|row| db::text(&row[0]).map(str::to_owned)))
}

fn one_row(table: &Table, changed: usize, what: &str, id: u32) -> Result<(), Error> {
    if changed == 1 {
        return Ok(());
    }
    Err(Error::IncompatibleTrackingTable {
        table: table.name.clone(),
        problems: vec![format!(
            "{what} migration {id} changed {changed} rows instead of 1"
        )],
    })
}

/// Rewrites a row's checksum and chain in place (see [`repair_chains`]).
fn rewrite_row(
    conn: &dyn Db,
    table: &Table,
    id: u32,
    checksum: &str,
    chain: &str,
) -> Result<(), Error> {
    let changed = conn.execute(&table.sql().rewrite_sql, params![id, checksum, chain])?;
    if changed == 1 {
        Ok(())
    } else {
        Err(Error::IncompatibleTrackingTable {
            table: table.name.clone(),
            problems: vec![format!(
                "rewriting the row of migration {id} changed {changed} rows instead of 1"
            )],
        })
    }
}

/// `PRAGMA user_version`.
pub(crate) fn user_version(conn: &dyn Db) -> Result<i64, Error> {
    let row = db::first_row(conn, "PRAGMA main.user_version", params![])?;
    Ok(row.and_then(|row| db::integer(&row[0])).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use rusqlite::types::ValueRef;
    use rusqlite::{Connection, ToSql};

    use super::*;

    type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

    /// A local connection that, like a server's, cannot count the rows a
    /// statement wrote: the `Recorder` must read its writes back.
    struct Uncounted<'c>(&'c Connection);

    impl Db for Uncounted<'_> {
        fn execute(&self, sql: &str, params: &[&dyn ToSql]) -> Result<usize, Error> {
            Db::execute(self.0, sql, params)
        }
        fn execute_batch(&self, sql: &str) -> Result<(), Error> {
            Db::execute_batch(self.0, sql)
        }
        fn query(&self, sql: &str, params: &[&dyn ToSql]) -> Result<Vec<Vec<Value>>, Error> {
            Db::query(self.0, sql, params)
        }
        fn first_column(
            &self,
            sql: &str,
            params: &[&dyn ToSql],
            read: &mut dyn FnMut(ValueRef<'_>),
        ) -> Result<bool, Error> {
            Db::first_column(self.0, sql, params, read)
        }
        fn is_busy(&self, error: &Error) -> bool {
            Db::is_busy(self.0, error)
        }
    }

    const ROW: (u32, &str, &str, &str) = (0, "m0", "checksum-0", "chain-0");

    /// A database file in a temporary directory (kept while the directory
    /// lives) holding an empty tracking table, without its triggers.
    fn tracking_table_on_disk() -> TestResult<(tempfile::TempDir, Connection, Table)> {
        let dir = tempfile::tempdir()?;
        let conn = Connection::open(dir.path().join("db.sqlite"))?;
        let table = Table::new("migrations");
        create_table(&conn, &table)?;
        Ok((dir, conn, table))
    }

    /// Records `ROW` through a connection with or without a change count
    /// (`counted`), on a table carrying `trigger` (SQL after `CREATE
    /// TRIGGER t `; an `audit` table exists for it), and says whether the
    /// `Recorder` accepted the write.
    fn insert_accepted(counted: bool, trigger: Option<&str>) -> TestResult<bool> {
        let (_dir, conn, table) = tracking_table_on_disk()?;
        conn.execute_batch("CREATE TABLE audit (id)")?;
        if let Some(trigger) = trigger {
            conn.execute_batch(&format!("CREATE TRIGGER t {trigger}"))?;
        }
        let uncounted = Uncounted(&conn);
        let db: &dyn Db = if counted { &conn } else { &uncounted };
        let (id, name, checksum, chain) = ROW;
        match Recorder::new(db, &table)?.insert(id, name, checksum, chain) {
            Ok(()) => Ok(true),
            Err(Error::IncompatibleTrackingTable { .. }) => Ok(false),
            Err(other) => Err(other.into()),
        }
    }

    #[test]
    fn a_row_read_back_must_be_the_row_written_in_every_column() -> TestResult {
        assert!(insert_accepted(false, None)?, "a plain write is accepted");
        for column in ["name", "checksum", "chain"] {
            let trigger = format!(
                "AFTER INSERT ON migrations BEGIN \
                 UPDATE migrations SET {column} = {column} || '!' WHERE id = NEW.id; END"
            );
            assert!(
                !insert_accepted(false, Some(&trigger))?,
                "a trigger changing the row's {column} goes unseen"
            );
        }
        let ignored = "BEFORE INSERT ON migrations BEGIN SELECT RAISE(IGNORE); END";
        assert!(
            !insert_accepted(false, Some(ignored))?,
            "an ignored write goes unseen"
        );
        Ok(())
    }

    /// Where the connection counts rows written, a trigger writing anything
    /// besides the row is refused too; a read-back cannot see that write.
    #[test]
    fn a_write_firing_another_write_is_refused_where_rows_are_counted() -> TestResult {
        let audit = "AFTER INSERT ON migrations BEGIN INSERT INTO audit VALUES (NEW.id); END";
        assert!(insert_accepted(true, None)?, "a plain write is accepted");
        assert!(!insert_accepted(true, Some(audit))?, "the count sees it");
        assert!(insert_accepted(false, Some(audit))?, "the read-back cannot");
        Ok(())
    }

    /// The marks of a step outside a transaction change exactly one row,
    /// or say so: a mark that changed nothing would leave the history
    /// saying something else than what happened.
    #[test]
    fn marks_change_exactly_one_row() -> TestResult {
        let (_dir, conn, table) = tracking_table_on_disk()?;
        let (id, name, checksum, chain) = ROW;
        Recorder::new(&conn, &table)?.insert(id, name, checksum, STARTED)?;
        assert_eq!(stored_chain(&conn, &table, id)?.as_deref(), Some(STARTED));
        set_chain(&conn, &table, id, chain)?;
        assert_eq!(stored_chain(&conn, &table, id)?.as_deref(), Some(chain));
        let missing = id + 1;
        for result in [
            set_chain(&conn, &table, missing, chain),
            delete_row(&conn, &table, missing),
        ] {
            assert!(
                matches!(result, Err(Error::IncompatibleTrackingTable { .. })),
                "{result:?}"
            );
        }
        delete_row(&conn, &table, id)?;
        assert_eq!(stored_chain(&conn, &table, id)?, None);
        Ok(())
    }

    #[test]
    fn a_row_deleted_must_be_gone_when_read_back() -> TestResult {
        let (_dir, conn, table) = tracking_table_on_disk()?;
        let db = Uncounted(&conn);
        let (id, name, checksum, chain) = ROW;
        let mut recorder = Recorder::new(&db, &table)?;
        recorder.insert(id, name, checksum, chain)?;
        recorder.insert(1, "m1", "checksum-1", "chain-1")?;
        recorder.delete(1)?;
        // A trigger putting the row back: one row changed, the row still there.
        conn.execute_batch(
            "CREATE TRIGGER t AFTER DELETE ON migrations BEGIN \
             INSERT INTO migrations VALUES (OLD.id, OLD.name, OLD.applied_at, OLD.checksum, OLD.chain); END",
        )?;
        assert!(matches!(
            recorder.delete(0),
            Err(Error::IncompatibleTrackingTable { .. })
        ));
        Ok(())
    }
}
