//! Drift: a schema changed outside migrations (an `ALTER TABLE` by hand, a
//! second tool writing to the file).
//!
//! Once a set looks for drift, every run of migrations that commits also
//! records, in one row of `main."migrate_core_schema"` shared by every set
//! of the file, the normalised schema it leaves and SQLite's schema cookie
//! (`PRAGMA schema_version`, which changes with every schema change). So a
//! set's migrations never look like drift to another set; and a file whose
//! sets never look holds no such table. A run that does not look
//! (`Drift::Ignore`) records its own changes over the record, not the
//! schema as it found it: it cannot accept a change made by hand that it
//! never saw (see [`before_unlooked_run`]). Detecting drift
//! is then one cookie comparison on the up-to-date path (only when asked
//! for: see [`Drift`]); when the cookie moved, the live schema is compared
//! with the recorded one object by object, so a change that leaves the
//! schema as it was (an index dropped and created again) is no drift.

use rusqlite::{params, Connection, OptionalExtension};

use crate::error::Error;
use crate::history::MARKER;
use crate::schema::{Schema, SchemaChange};
use crate::sqlite::quote_identifier;

/// What a call does when the schema was changed outside migrations
/// (see [`Migrator::drift`](crate::Migrator::drift)).
///
/// ```
/// let m = migrate_core::Migrator::new().drift(migrate_core::Drift::Refuse);
/// # let _ = m;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Drift {
    /// Do not look (the default): no cost on the up-to-date path.
    #[default]
    Ignore,
    /// Look, and report it through the observer ([`Event::Drift`](crate::Event::Drift))
    /// and a `tracing` warning; carry on.
    Warn,
    /// Look, and refuse with [`Error::SchemaDrift`] before any change.
    Refuse,
}

/// The table holding the schema recorded after the last migrations.
pub(crate) const TABLE: &str = "migrate_core_schema";

fn qualified() -> String {
    format!("main.{}", quote_identifier(TABLE))
}

/// The schema a run that does not look for drift finds before its first
/// step, when a record exists and the schema moved since it was written
/// (drift, or a change that leaves it as it was): [`record`] then carries
/// over only what the run itself changes. `None` for a run that looks (it
/// refused drift, or reported it and carries on: what it leaves is
/// accepted), and when nothing moved (what the run leaves is the record).
/// Read on the write path only.
pub(crate) fn before_unlooked_run(
    conn: &Connection,
    drift: Drift,
) -> Result<Option<Schema>, Error> {
    if drift != Drift::Ignore {
        return Ok(None);
    }
    match recorded(conn)? {
        Some((cookie, _)) if cookie != schema_cookie(conn)? => Ok(Some(Schema::read(conn)?)),
        _ => Ok(None),
    }
}

/// Records the schema as migrations leave it, in the caller's write
/// transaction (after its last schema change): always once a set of the
/// file looks for drift (`start`: its policy is not `Ignore`; the record
/// then exists and every set keeps it up to date, so that none flags
/// another), never before, so that a database whose sets do not look holds
/// no table of it. `before` is [`before_unlooked_run`]'s.
pub(crate) fn record(conn: &Connection, start: bool, before: Option<&Schema>) -> Result<(), Error> {
    if !start && !exists(conn)? {
        return Ok(());
    }
    let table = qualified();
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {table} ( -- {MARKER}: the schema migrations left, for drift \
         detection; written by migrate-core, do not edit by hand\n\
         \x20   id INTEGER PRIMARY KEY CHECK (id = 1),\n\
         \x20   cookie INTEGER NOT NULL,\n\
         \x20   schema TEXT NOT NULL,\n\
         \x20   recorded_at TEXT NOT NULL\n\
         )"
    ))?;
    let live = Schema::read(conn)?;
    let mut cookie = schema_cookie(conn)?;
    let carried = match (before, recorded(conn)?) {
        (Some(before), Some((_, text))) => Schema::parse(&text)
            .ok()
            .map(|recorded| Schema::carry(&recorded, before, &live)),
        _ => None,
    };
    let schema = match carried {
        Some(carried) => {
            if !Schema::changes(&carried, &live).is_empty() {
                // Not the live schema's cookie: the next look compares in
                // full and finds the drift kept. SQLite's is never negative.
                cookie = -1;
            }
            carried
        }
        None => live,
    }
    .render();
    conn.execute(
        &format!(
            "INSERT OR REPLACE INTO {table} (id, cookie, schema, recorded_at) \
             VALUES (1, ?1, ?2, ?3)"
        ),
        params![cookie, schema, crate::utc::now()],
    )?;
    Ok(())
}

fn schema_cookie(conn: &Connection) -> Result<i64, Error> {
    Ok(conn.query_row("PRAGMA main.schema_version", params![], |row| row.get(0))?)
}

fn exists(conn: &Connection) -> Result<bool, Error> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM main.sqlite_master WHERE type = 'table' AND name = ?1)",
        [TABLE],
        |row| row.get(0),
    )?)
}

/// The recorded cookie and schema text, if any were recorded.
fn recorded(conn: &Connection) -> Result<Option<(i64, String)>, Error> {
    if !exists(conn)? {
        return Ok(None);
    }
    Ok(conn
        .query_row(
            &format!("SELECT cookie, schema FROM {} WHERE id = 1", qualified()),
            params![],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?)
}

/// The changes made to the schema since migrations last recorded it; `None`
/// when nothing was recorded yet (migrations record it from their next run).
/// Cheap when the cookie did not move: one row read.
pub(crate) fn changes(conn: &Connection) -> Result<Option<Vec<SchemaChange>>, Error> {
    let Some((cookie, text)) = recorded(conn)? else {
        return Ok(None);
    };
    if cookie == schema_cookie(conn)? {
        return Ok(Some(Vec::new()));
    }
    compare(conn, &text).map(Some)
}

/// The full comparison, whatever the cookie says.
pub(crate) fn full_changes(conn: &Connection) -> Result<Option<Vec<SchemaChange>>, Error> {
    match recorded(conn)? {
        None => Ok(None),
        Some((_, text)) => compare(conn, &text).map(Some),
    }
}

fn compare(conn: &Connection, text: &str) -> Result<Vec<SchemaChange>, Error> {
    let expected = Schema::parse(text).map_err(|problem| Error::CorruptHistory {
        table: TABLE.to_owned(),
        problems: vec![format!(
            "the recorded schema cannot be read (line {}: {}): it was edited by hand; \
             migrate again to record it anew",
            problem.line, problem.message
        )],
    })?;
    Ok(Schema::changes(&expected, &Schema::read(conn)?))
}
