//! The tracking table: its shape, reading and checking its rows, writing them.

use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension, Statement};

use crate::error::{Error, Modification};
use crate::registry::Plan;
use crate::report::AppliedMigration;

/// Marks our tracking tables in `sqlite_master.sql`, so that a database that
/// holds another set's table is recognised as ours (see `check_managed`).
const MARKER: &str = "migrate-core tracking table";

/// A tracking table, by name.
pub(crate) struct Table {
    pub name: String,
    quoted: String,
}

impl Table {
    pub fn new(name: &str) -> Table {
        Table {
            name: name.to_owned(),
            quoted: quote_identifier(name),
        }
    }
}

/// Quotes an identifier for SQL: `my "odd" table` → `"my ""odd"" table"`.
pub fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A row as stored, with the chain value kept out of the public type.
pub(crate) struct Row {
    pub applied: AppliedMigration,
    pub chain: String,
}

/// The columns we write, with the declared type each must have.
const COLUMNS: [(&str, &str, bool); 5] = [
    ("id", "INTEGER", false),
    ("name", "TEXT", true),
    ("applied_at", "TEXT", true),
    ("checksum", "TEXT", true),
    ("chain", "TEXT", true),
];

/// Reads the history, or `None` when the table does not exist.
/// An incompatible table or a corrupt row is an error.
pub(crate) fn load(conn: &Connection, table: &Table) -> Result<Option<Vec<Row>>, Error> {
    if !check_shape(conn, table)? {
        return Ok(None);
    }
    read_rows(conn, table).map(Some)
}

/// `false` when the table is missing; an error when it is not ours.
fn check_shape(conn: &Connection, table: &Table) -> Result<bool, Error> {
    let mut stmt =
        conn.prepare("SELECT name, upper(type), \"notnull\", pk FROM pragma_table_info(?1)")?;
    let found: Vec<(String, String, bool, i64)> = stmt
        .query_map([&table.name], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })?
        .collect::<Result<_, _>>()?;
    if found.is_empty() {
        return Ok(false);
    }
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
        Ok(true)
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

fn read_rows(conn: &Connection, table: &Table) -> Result<Vec<Row>, Error> {
    let sql = format!(
        "SELECT id, name, applied_at, checksum, chain FROM {} ORDER BY id",
        table.quoted
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(params![])?;
    let mut out = Vec::new();
    let mut problems = Vec::new();
    while let Some(row) = rows.next()? {
        let values: [Value; 5] = [
            row.get(0)?,
            row.get(1)?,
            row.get(2)?,
            row.get(3)?,
            row.get(4)?,
        ];
        match parse_row(&values) {
            Ok(parsed) => out.push(parsed),
            Err(problem) => problems.push(problem),
        }
        if problems.len() >= 20 {
            problems.push("… (stopped after 20 problems)".to_owned());
            break;
        }
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

/// The newest row's id, the number of rows, and the newest chain, read with
/// one statement; `None` when the table is missing, empty or unreadable (the
/// full check then explains why).
pub(crate) fn newest(conn: &Connection, table: &Table) -> Option<(i64, i64, String)> {
    let sql = format!(
        "SELECT id, (SELECT count(*) FROM {0}), chain FROM {0} ORDER BY id DESC LIMIT 1",
        table.quoted
    );
    let mut stmt = conn.prepare(&sql).ok()?;
    stmt.query_row(params![], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, i64>(1)?,
            row.get::<_, String>(2)?,
        ))
    })
    .optional()
    .ok()
    .flatten()
}

/// Creates the table.
pub(crate) fn create(conn: &Connection, table: &Table) -> Result<(), Error> {
    conn.execute_batch(&format!(
        "CREATE TABLE {} ( -- {MARKER}: written by migrate-core, do not edit by hand\n\
         \x20   id INTEGER PRIMARY KEY,\n\
         \x20   name TEXT NOT NULL,\n\
         \x20   applied_at TEXT NOT NULL,\n\
         \x20   checksum TEXT NOT NULL,\n\
         \x20   chain TEXT NOT NULL\n\
         )",
        table.quoted
    ))?;
    Ok(())
}

/// Makes sure the table exists and holds no history, for `baseline` and
/// `adopt`, which may only write a history where there is none.
pub(crate) fn create_empty(conn: &Connection, table: &Table) -> Result<(), Error> {
    match load(conn, table)? {
        Some(rows) if !rows.is_empty() => Err(Error::AlreadyHasHistory {
            table: table.name.clone(),
            applied: u32::try_from(rows.len()).unwrap_or(u32::MAX),
        }),
        Some(_) => Ok(()),
        None => create(conn, table),
    }
}

/// Writes tracking rows during one transaction, with its statement prepared
/// once rather than once per migration.
pub(crate) struct Recorder<'c> {
    insert: Statement<'c>,
    delete: Statement<'c>,
}

impl<'c> Recorder<'c> {
    pub fn new(conn: &'c Connection, table: &Table) -> Result<Self, Error> {
        Ok(Recorder {
            insert: conn.prepare(&format!(
                "INSERT INTO {} (id, name, applied_at, checksum, chain) \
                 VALUES (?1, ?2, coalesce(?5, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')), ?3, ?4)",
                table.quoted
            ))?,
            delete: conn.prepare(&format!("DELETE FROM {} WHERE id = ?1", table.quoted))?,
        })
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
        self.insert
            .execute(params![id, name, checksum, chain, applied_at])?;
        Ok(())
    }

    /// Removes a migration's row after its rollback ran.
    pub fn delete(&mut self, id: u32) -> Result<(), Error> {
        self.delete.execute([id])?;
        Ok(())
    }
}

/// Refuses a database that something else built: user tables, or for the
/// default set a non-zero `user_version`, but none of our tracking tables.
/// Called only when this set's table is missing.
pub(crate) fn check_managed(conn: &Connection, set: &str, table: &Table) -> Result<(), Error> {
    let ours: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND instr(sql, ?1) > 0)",
        [MARKER],
        |row| row.get(0),
    )?;
    if ours {
        return Ok(());
    }
    let mut stmt = conn.prepare(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') \
         AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name LIMIT 11",
    )?;
    let mut tables: Vec<String> = stmt
        .query_map(params![], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    if tables.len() > 10 {
        tables.truncate(10);
        tables.push("…".to_owned());
    }
    let user_version: i64 = if set.is_empty() {
        conn.query_row("PRAGMA user_version", rusqlite::params![], |row| row.get(0))?
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

/// Compares the history with the plan: unknown applied migrations are
/// `DatabaseAhead`; renamed or edited ones are `Modified` (unless `strict`
/// is off).
pub(crate) fn verify(rows: &[Row], plan: &Plan, strict: bool) -> Result<(), Error> {
    let known = plan.len();
    let unknown: Vec<(u32, String)> = rows
        .iter()
        .filter(|row| row.applied.id >= known)
        .map(|row| (row.applied.id, row.applied.name.clone()))
        .collect();
    if !unknown.is_empty() {
        return Err(Error::DatabaseAhead {
            set: plan.set.clone(),
            known,
            unknown,
        });
    }
    if !strict {
        return Ok(());
    }
    let modifications = modifications(rows, plan);
    if modifications.is_empty() {
        Ok(())
    } else {
        Err(Error::Modified {
            set: plan.set.clone(),
            modifications,
        })
    }
}

/// Every applied migration whose name or checksum differs from the plan's.
pub(crate) fn modifications(rows: &[Row], plan: &Plan) -> Vec<Modification> {
    rows.iter()
        .filter_map(|row| {
            let migration = plan.migrations.get(row.applied.id as usize)?;
            if migration.name == row.applied.name && migration.checksum == row.applied.checksum {
                return None;
            }
            Some(Modification {
                id: row.applied.id,
                applied_name: row.applied.name.clone(),
                current_name: migration.name.clone(),
                applied_checksum: row.applied.checksum.clone(),
                current_checksum: migration.checksum.clone(),
                location: migration.up.location,
            })
        })
        .collect()
}
