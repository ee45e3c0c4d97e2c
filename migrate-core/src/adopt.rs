//! Adopting a database that another tool built: its history becomes ours.
//!
//! Three kinds are recognised. Their numbering is mapped onto our ids
//! explicitly, and checked: a count or a name that does not line up is a
//! refusal that lists every mismatch, never a silent "applied".

use rusqlite::types::Value;
use rusqlite::{params, Connection};

use crate::error::Error;
use crate::history::{self, quote_identifier, Recorder, Table};
use crate::registry::Plan;
use crate::report::AppliedMigration;

/// A database managed by another tool, and how its numbering maps onto this
/// set's migration ids.
///
/// ```
/// use migrate_core::Legacy;
/// // Files 0001_….sql, each ending with `PRAGMA user_version = N`:
/// let legacy = Legacy::UserVersion { first_file: 1 };
/// # let _ = legacy;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Legacy {
    /// The version lives in `PRAGMA user_version`: the file numbered N sets
    /// it to N. `first_file` is the number of the first file, which becomes
    /// migration 0; with `user_version = V`, files `first_file..=V` are
    /// applied. There are no names to compare, so only the count is checked.
    UserVersion {
        /// The number of the runner's first file (usually 1).
        first_file: u32,
    },
    /// A `schema_migrations(version TEXT PRIMARY KEY, name, applied_at)`
    /// table whose version `000` is the bootstrap row (the file that created
    /// the table), so version N becomes migration N - 1. Versions must run
    /// 1, 2, 3, … and each name must equal the name of our migration.
    SchemaMigrations {
        /// The table's name (usually `schema_migrations`).
        table: String,
    },
    /// A database written by the Python library fastlite-migrations: a
    /// `migrations(id INTEGER PRIMARY KEY, name, inserted_at)` table whose ids
    /// are ours. It is upgraded in place into this set's tracking table,
    /// keeping its rows and timestamps; names must match ours.
    Fastlite,
}

impl Legacy {
    fn describe(&self) -> &'static str {
        match self {
            Legacy::UserVersion { .. } => "PRAGMA user_version",
            Legacy::SchemaMigrations { .. } => "schema_migrations table",
            Legacy::Fastlite => "fastlite-migrations table",
        }
    }
}

/// One applied migration as the other tool recorded it, mapped to our id.
struct Found {
    id: u32,
    name: Option<String>,
    applied_at: Option<String>,
}

fn refused(legacy: &Legacy, problems: Vec<String>) -> Error {
    Error::CannotAdopt {
        from: legacy.describe().to_owned(),
        problems,
    }
}

/// Records the other tool's history as ours, in one transaction.
pub(crate) fn adopt(
    conn: &Connection,
    plan: &Plan,
    table: &Table,
    mirror_user_version: bool,
    legacy: &Legacy,
) -> Result<Vec<AppliedMigration>, Error> {
    let fastlite_in_place = matches!(legacy, Legacy::Fastlite) && table.name == "migrations";
    if !fastlite_in_place {
        // Refused before anything else is read; the whole call is one
        // transaction, so a later refusal leaves no table behind.
        history::create_empty(conn, table)?;
    }
    let found = match legacy {
        Legacy::UserVersion { first_file } => read_user_version(conn, *first_file, legacy)?,
        Legacy::SchemaMigrations { table: theirs } => read_schema_migrations(conn, theirs, legacy)?,
        Legacy::Fastlite => read_fastlite(conn, legacy)?,
    };
    check(plan, &found, legacy)?;

    if fastlite_in_place {
        // Same name as ours: move theirs aside, then build ours in its place.
        conn.execute_batch("ALTER TABLE \"migrations\" RENAME TO \"migrations_fastlite_adopted\"")?;
        history::create(conn, table)?;
    }
    let mut recorder = Recorder::new(conn, table)?;
    for item in &found {
        let migration = &plan.migrations[item.id as usize];
        let applied_at = item.applied_at.as_deref().map(to_rfc3339);
        recorder.insert_at(
            item.id,
            &migration.name(),
            &migration.checksum(),
            &crate::hash::hex(plan.chains[item.id as usize]),
            applied_at.as_deref(),
        )?;
    }
    drop(recorder);
    if matches!(legacy, Legacy::Fastlite) {
        let old = if fastlite_in_place {
            "migrations_fastlite_adopted"
        } else {
            "migrations"
        };
        conn.execute_batch(&format!("DROP TABLE {}", quote_identifier(old)))?;
    }
    if mirror_user_version {
        conn.execute_batch(&format!("PRAGMA user_version = {}", found.len()))?;
    }
    let adopted = history::load(conn, table)?.unwrap_or_default();
    Ok(adopted.into_iter().map(|row| row.applied).collect())
}

fn check(plan: &Plan, found: &[Found], legacy: &Legacy) -> Result<(), Error> {
    let mut problems = Vec::new();
    if found.is_empty() {
        problems.push(
            "it records no applied migration: there is nothing to adopt; migrate() it instead"
                .to_owned(),
        );
    }
    if found.len() > plan.migrations.len() {
        problems.push(format!(
            "it records {} applied migration(s) but {} has only {}: add the missing migrations first",
            found.len(),
            crate::error::SetName(&plan.set),
            plan.migrations.len()
        ));
    }
    for item in found {
        let Some(migration) = plan.migrations.get(item.id as usize) else {
            continue;
        };
        if let Some(name) = &item.name {
            if *name != migration.name() {
                problems.push(format!(
                    "migration {} is `{}` there but `{}` here ({}); rename one so they match",
                    item.id,
                    name,
                    migration.name(),
                    migration.up.location()
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(refused(legacy, problems))
    }
}

fn read_user_version(
    conn: &Connection,
    first_file: u32,
    legacy: &Legacy,
) -> Result<Vec<Found>, Error> {
    let version: i64 = conn.query_row("PRAGMA user_version", params![], |row| row.get(0))?;
    let first = i64::from(first_file);
    if version < first {
        return Err(refused(
            legacy,
            vec![format!(
                "user_version is {version}, below the first file's number {first_file}: nothing is applied, so there is nothing to adopt"
            )],
        ));
    }
    Ok((0..=(version - first))
        .map(|id| Found {
            id: u32::try_from(id).unwrap_or(u32::MAX),
            name: None,
            applied_at: None,
        })
        .collect())
}

fn read_schema_migrations(
    conn: &Connection,
    theirs: &str,
    legacy: &Legacy,
) -> Result<Vec<Found>, Error> {
    let sql = format!(
        "SELECT version, name, applied_at FROM {} ORDER BY version",
        quote_identifier(theirs)
    );
    let mut stmt = conn
        .prepare(&sql)
        .map_err(|e| refused(legacy, vec![format!("cannot read table {theirs:?}: {e}")]))?;
    let mut rows = stmt.query(params![])?;
    let mut versions: Vec<(u32, Option<String>, Option<String>)> = Vec::new();
    let mut problems = Vec::new();
    while let Some(row) = rows.next()? {
        let version: Value = row.get(0)?;
        let text = match version {
            Value::Text(text) => text,
            Value::Integer(n) => n.to_string(),
            other => {
                problems.push(format!("a version is {other:?}, expected digits"));
                continue;
            }
        };
        match text.trim().parse::<u32>() {
            Ok(number) => versions.push((
                number,
                optional_text(row.get(1)?),
                optional_text(row.get(2)?),
            )),
            Err(_) => problems.push(format!("version {text:?} is not a number")),
        }
    }
    versions.sort_by_key(|(number, ..)| *number);
    if versions.first().map(|(number, ..)| *number) != Some(0) {
        problems.push("there is no bootstrap row with version 000".to_owned());
    }
    let mut found = Vec::new();
    for (position, (number, name, applied_at)) in versions.into_iter().skip(1).enumerate() {
        let expected = u32::try_from(position + 1).unwrap_or(u32::MAX);
        if number != expected {
            problems.push(format!(
                "versions are not contiguous: expected {expected:03}, found {number:03}; a version is missing or repeated"
            ));
            break;
        }
        found.push(Found {
            id: number - 1,
            name,
            applied_at,
        });
    }
    if problems.is_empty() {
        Ok(found)
    } else {
        Err(refused(legacy, problems))
    }
}

fn read_fastlite(conn: &Connection, legacy: &Legacy) -> Result<Vec<Found>, Error> {
    let columns: Vec<String> = conn
        .prepare("SELECT lower(name) FROM pragma_table_info('migrations')")?
        .query_map(params![], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    if !["id", "name", "inserted_at"]
        .iter()
        .all(|c| columns.iter().any(|found| found == c))
    {
        return Err(refused(
            legacy,
            vec![format!(
                "there is no fastlite `migrations(id, name, inserted_at)` table (found columns: {})",
                if columns.is_empty() { "none".to_owned() } else { columns.join(", ") }
            )],
        ));
    }
    let mut stmt = conn.prepare("SELECT id, name, inserted_at FROM \"migrations\" ORDER BY id")?;
    let mut rows = stmt.query(params![])?;
    let mut found = Vec::new();
    let mut problems = Vec::new();
    while let Some(row) = rows.next()? {
        let id: Value = row.get(0)?;
        let expected = found.len();
        match id {
            Value::Integer(id) if id == expected as i64 => found.push(Found {
                id: u32::try_from(id).unwrap_or(u32::MAX),
                name: optional_text(row.get(1)?).or(Some(String::new())),
                applied_at: optional_text(row.get(2)?),
            }),
            other => {
                problems.push(format!(
                    "ids are not contiguous from 0: expected {expected}, found {other:?}"
                ));
                break;
            }
        }
    }
    if problems.is_empty() {
        Ok(found)
    } else {
        Err(refused(legacy, problems))
    }
}

fn optional_text(value: Value) -> Option<String> {
    match value {
        Value::Text(text) => Some(text),
        Value::Integer(n) => Some(n.to_string()),
        Value::Real(r) => Some(r.to_string()),
        Value::Null | Value::Blob(_) => None,
    }
}

/// SQLite's `CURRENT_TIMESTAMP` (`2024-01-02 03:04:05`, UTC) to RFC 3339;
/// anything else is kept as it was written.
fn to_rfc3339(text: &str) -> String {
    let bytes = text.as_bytes();
    let sqlite_shape = bytes.len() == 19
        && bytes[10] == b' '
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            10 => true,
            13 | 16 => *b == b':',
            _ => b.is_ascii_digit(),
        });
    if sqlite_shape {
        format!("{}T{}Z", &text[..10], &text[11..])
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::to_rfc3339;

    #[test]
    fn timestamps() {
        assert_eq!(to_rfc3339("2024-01-02 03:04:05"), "2024-01-02T03:04:05Z");
        assert_eq!(
            to_rfc3339("2024-01-02T03:04:05.123Z"),
            "2024-01-02T03:04:05.123Z"
        );
        assert_eq!(to_rfc3339("yesterday"), "yesterday");
    }
}
