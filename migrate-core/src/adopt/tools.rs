//! What each tool records, read the way the tool itself writes it.
//!
//! Every reader names the source its table definition and stored values
//! were taken from. Each returns the tool's applied migrations in the order
//! that maps them onto this set's ids 0, 1, 2, …, or `None` when nothing
//! records any (no table; `user_version` 0). Only the `main` schema is read.

use rusqlite::types::Value;
use rusqlite::{params, Connection};

use super::{refused, Legacy};
use crate::error::{Error, SetName};
use crate::history;
use crate::registry::Plan;
use crate::sqlite::{self, quote_identifier};

/// One migration the other tool records as applied.
pub(super) struct Applied {
    /// The version as the tool stores it (`20240101120000`, `002`, `3`);
    /// for `user_version`, the number of the runner's file.
    pub version: String,
    /// The name it stored, where it stores one.
    pub name: Option<String>,
    /// When it was applied, as stored.
    pub applied_at: Option<String>,
}

/// The other tool's applied migrations, in id order; `None` when nothing
/// records any.
pub(super) type Record = Option<Vec<Applied>>;

/// The table fastlite-migrations keeps its history in.
pub(super) const FASTLITE_TABLE: &str = "migrations";

pub(super) fn read(conn: &Connection, plan: &Plan, legacy: &Legacy) -> Result<Record, Error> {
    match legacy {
        Legacy::UserVersion { first_file } => user_version(conn, plan, *first_file, legacy),
        Legacy::SchemaMigrations { table } => schema_migrations(conn, plan, table, legacy),
        Legacy::Fastlite => fastlite(conn, legacy),
        Legacy::Sqlx => sqlx(conn, legacy),
        Legacy::Diesel => diesel(conn, legacy),
        Legacy::Refinery => refinery(conn, legacy),
        Legacy::Goose => goose(conn, legacy),
    }
}

/// A hand-written runner: the file numbered N ends with
/// `PRAGMA user_version = N`, so files `first_file..=user_version` ran.
fn user_version(
    conn: &Connection,
    plan: &Plan,
    first_file: u32,
    legacy: &Legacy,
) -> Result<Record, Error> {
    let version = sqlite::user_version(conn)?;
    let first = i64::from(first_file);
    if version == 0 {
        return Ok(None);
    }
    if version < first {
        return Err(refused(
            legacy,
            vec![format!(
                "user_version is {version}, below first_file ({first_file}): no file of the runner \
                 sets that number, so first_file is wrong; pass the number of the runner's first \
                 file (the one that becomes migration 0)"
            )],
        ));
    }
    let ran = version - first + 1;
    let known = plan.migrations().len() as i64;
    if ran > known {
        // Not materialised: user_version may be as large as 2^31 - 1.
        return Err(refused(
            legacy,
            vec![format!(
                "user_version is {version}: files {first_file}..={version} ran ({ran} files), but \
                 {} has only {known} migration(s), so files {}..={version} are missing from this \
                 binary. Embed the whole directory the runner ran, unchanged \
                 (`embed_migrations!(\"dir\", ids = \"sorted\")`); first_file is the number of \
                 the runner's first file",
                SetName(&plan.set),
                first + known,
            )],
        ));
    }
    Ok(Some(
        (first..=version)
            .map(|number| Applied {
                version: number.to_string(),
                name: None,
                applied_at: None,
            })
            .collect(),
    ))
}

/// A hand-written runner's `schema_migrations(version TEXT PRIMARY KEY,
/// name TEXT NOT NULL, applied_at TEXT NOT NULL DEFAULT (datetime('now')))`
/// (the schema_migrations lesson of REFERENCES.md), usually created by a
/// bootstrap file `000_create_schema_migrations.sql` that records itself as
/// version 000; each file inserts its own row.
///
/// The applied versions, sorted, are migrations 0, 1, 2, … The bootstrap
/// row counts as migration 0 when this set starts with the bootstrap file
/// (same name), and is left out when it does not.
fn schema_migrations(
    conn: &Connection,
    plan: &Plan,
    table: &str,
    legacy: &Legacy,
) -> Result<Record, Error> {
    let found = columns(conn, table)?;
    if found.is_empty() {
        return Ok(None);
    }
    require(legacy, table, &found, &["version", "name"])?;
    let rows = select(conn, table, &found, &["version", "name", "applied_at"])?;
    let mut problems = Vec::new();
    let mut versions: Vec<(u128, Applied)> = Vec::new();
    for row in rows {
        let Some((number, version)) = version_of(&row[0]) else {
            problems.push(format!(
                "a version is {}, not a number: the runner could not have written it; fix or \
                 delete that row of {table:?}",
                shown(&row[0])
            ));
            continue;
        };
        versions.push((
            number,
            Applied {
                version,
                name: text(&row[1]),
                applied_at: text(&row[2]),
            },
        ));
    }
    versions.sort_by_key(|(number, _)| *number);
    for pair in versions.windows(2) {
        if pair[0].0 == pair[1].0 {
            problems.push(format!(
                "versions {} and {} are the same number: one file ran twice, or a row was \
                 written by hand; delete the wrong row of {table:?}",
                pair[0].1.version, pair[1].1.version
            ));
        }
    }
    if !problems.is_empty() {
        return Err(refused(legacy, problems));
    }
    let ours = plan.migrations().first().map(|m| m.name());
    let skip_bootstrap = match versions.as_slice() {
        [(0, bootstrap), rest @ ..] => {
            let kept = ours.is_some() && bootstrap.name.as_deref() == ours;
            if let (true, Some((_, next))) = (kept, rest.first()) {
                if next.name.as_deref() == ours {
                    return Err(refused(
                        legacy,
                        vec![format!(
                            "versions {0} and {1} are both named `{2}`, like migration 0 here: \
                             adopt cannot tell whether this set starts with the bootstrap file \
                             (version {0} is migration 0) or without it (version {1} is); give \
                             each row of {table:?} the name of its file",
                            bootstrap.version,
                            next.version,
                            ours.unwrap_or_default(),
                        )],
                    ));
                }
            }
            !kept
        }
        _ => false,
    };
    Ok(Some(
        versions
            .into_iter()
            .skip(usize::from(skip_bootstrap))
            .map(|(_, applied)| applied)
            .collect(),
    ))
}

/// fastlite-migrations (Python), as REFERENCES.md reads it:
/// `migrations(id INTEGER PRIMARY KEY, name TEXT, inserted_at TEXT DEFAULT
/// CURRENT_TIMESTAMP NOT NULL) STRICT`, whose ids are ours.
fn fastlite(conn: &Connection, legacy: &Legacy) -> Result<Record, Error> {
    let found = columns(conn, FASTLITE_TABLE)?;
    if found.is_empty() {
        return Ok(None);
    }
    if !is_fastlite(&found) {
        if history::tracking_tables(conn)?
            .iter()
            .any(|name| sqlite::same_identifier(name, FASTLITE_TABLE))
        {
            // Ours: fastlite's table was upgraded in place earlier.
            return Ok(None);
        }
        require(
            legacy,
            FASTLITE_TABLE,
            &found,
            &["id", "name", "inserted_at"],
        )?;
    }
    let rows = select(conn, FASTLITE_TABLE, &found, &["id", "name", "inserted_at"])?;
    let mut applied = Vec::new();
    for row in rows {
        let expected = applied.len() as i64;
        match &row[0] {
            Value::Integer(id) if *id == expected => applied.push(Applied {
                version: id.to_string(),
                // A NULL name matches no migration's name.
                name: Some(text(&row[1]).unwrap_or_default()),
                applied_at: text(&row[2]),
            }),
            other => {
                return Err(refused(
                    legacy,
                    vec![format!(
                        "ids are not contiguous from 0: expected {expected}, found {}; \
                         fastlite-migrations numbers them 0, 1, 2, … itself, so a row was \
                         deleted or written by hand: restore it from a backup",
                        shown(other)
                    )],
                ))
            }
        }
    }
    Ok(Some(applied))
}

/// Whether the columns are fastlite-migrations' (and not ours, which
/// have no `inserted_at`).
pub(super) fn is_fastlite(columns: &[String]) -> bool {
    ["id", "name", "inserted_at"]
        .iter()
        .all(|wanted| columns.iter().any(|c| c == wanted))
}

const SQLX_TABLE: &str = "_sqlx_migrations";

/// sqlx. From launchbadge/sqlx, `sqlx-sqlite/src/migrate.rs`
/// (`ensure_migrations_table`, `apply`):
/// ```sql
/// CREATE TABLE IF NOT EXISTS _sqlx_migrations (
///     version BIGINT PRIMARY KEY,
///     description TEXT NOT NULL,
///     installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
///     success BOOLEAN NOT NULL,
///     checksum BLOB NOT NULL,
///     execution_time BIGINT NOT NULL
/// );
/// INSERT INTO _sqlx_migrations ( version, description, success, checksum, execution_time )
/// VALUES ( ?1, ?2, TRUE, ?3, -1 )  -- then execution_time = the elapsed nanoseconds
/// ```
/// The version is the file name's number (an i64), the description the
/// rest of the name without `.sql`/`.up.sql`, `_` replaced by spaces
/// (`sqlx-core/src/migrate/source.rs`), the checksum the SHA-384 of the SQL
/// (`sqlx-core/src/migrate/migration.rs`). Pending migrations are applied in
/// version order. A row with `success` false is what sqlx calls dirty.
fn sqlx(conn: &Connection, legacy: &Legacy) -> Result<Record, Error> {
    let found = columns(conn, SQLX_TABLE)?;
    if found.is_empty() {
        return Ok(None);
    }
    let wanted = ["version", "description", "installed_on", "success"];
    require(legacy, SQLX_TABLE, &found, &wanted)?;
    let mut problems = Vec::new();
    let mut applied = Vec::new();
    for row in select(conn, SQLX_TABLE, &found, &wanted)? {
        let Some((number, version)) = version_of(&row[0]) else {
            problems.push(format!(
                "a version is {}, not a number: sqlx could not have written it; fix or delete \
                 that row of {SQLX_TABLE}",
                shown(&row[0])
            ));
            continue;
        };
        let name = text(&row[1]);
        if !matches!(row[3], Value::Integer(flag) if flag != 0) {
            problems.push(format!(
                "version {version} `{}` is recorded as failed (success = false): sqlx calls this \
                 database dirty and refuses to run on it too, and its changes may be half applied. \
                 Repair it as sqlx asks (undo what it did by hand and delete its row, or finish it \
                 and mark the row successful), then adopt",
                name.as_deref().unwrap_or_default()
            ));
            continue;
        }
        applied.push((
            number,
            Applied {
                version,
                name,
                applied_at: text(&row[2]),
            },
        ));
    }
    if !problems.is_empty() {
        return Err(refused(legacy, problems));
    }
    applied.sort_by_key(|(number, _)| *number);
    Ok(Some(applied.into_iter().map(|(_, a)| a).collect()))
}

const DIESEL_TABLE: &str = "__diesel_schema_migrations";

/// diesel. From diesel-rs/diesel, `diesel/src/migration/setup_migration_table.sql`
/// (`diesel_migrations/src/migration/setup_migration_table.sql` in 1.x):
/// ```sql
/// CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (
///        version VARCHAR(50) PRIMARY KEY NOT NULL,
///        run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
/// );
/// ```
/// `run_migration` inserts only the version
/// (`diesel_migrations/src/migration_harness.rs`): the migration
/// directory's name up to the first `_`, without its dashes
/// (`migrations_internals::version_from_string`:
/// `2018-12-25-000000_create_users` → `20181225000000`). Pending migrations
/// are applied in the order of those strings, which is the order used here.
fn diesel(conn: &Connection, legacy: &Legacy) -> Result<Record, Error> {
    let found = columns(conn, DIESEL_TABLE)?;
    if found.is_empty() {
        return Ok(None);
    }
    let wanted = ["version", "run_on"];
    require(legacy, DIESEL_TABLE, &found, &wanted)?;
    let mut applied = Vec::new();
    for row in select(conn, DIESEL_TABLE, &found, &wanted)? {
        let version = match &row[0] {
            Value::Text(version) => version.clone(),
            Value::Integer(version) => version.to_string(),
            other => {
                return Err(refused(
                    legacy,
                    vec![format!(
                        "a version is {}: diesel could not have written it; fix or delete that \
                         row of {DIESEL_TABLE}",
                        shown(other)
                    )],
                ))
            }
        };
        applied.push(Applied {
            version,
            name: None,
            applied_at: text(&row[1]),
        });
    }
    applied.sort_by(|a, b| a.version.cmp(&b.version));
    Ok(Some(applied))
}

const REFINERY_TABLE: &str = "refinery_schema_history";

/// refinery. From rust-db/refinery, `refinery_core/src/executor/mod.rs`
/// (`refinery_core/src/traits/mod.rs` in earlier releases):
/// ```sql
/// CREATE TABLE IF NOT EXISTS refinery_schema_history(
///              version INT4 PRIMARY KEY,
///              name VARCHAR(255),
///              applied_on VARCHAR(255),
///              checksum VARCHAR(255));
/// ```
/// `insert_migration_query` stores the version (an i32), the name (the file
/// name after `V{n}__`, `refinery_core/src/util.rs`), `applied_on` as
/// RFC 3339 (UTC, `OffsetDateTime::now_utc` in
/// `refinery_core/src/migration.rs`; local time with its offset in releases
/// that used chrono) and the checksum as a decimal u64 (SipHash-1-3 of
/// name, version and SQL). Migrations are applied in version order.
fn refinery(conn: &Connection, legacy: &Legacy) -> Result<Record, Error> {
    let found = columns(conn, REFINERY_TABLE)?;
    if found.is_empty() {
        return Ok(None);
    }
    let wanted = ["version", "name", "applied_on"];
    require(legacy, REFINERY_TABLE, &found, &wanted)?;
    let mut applied = Vec::new();
    for row in select(conn, REFINERY_TABLE, &found, &wanted)? {
        let Some((number, version)) = version_of(&row[0]) else {
            return Err(refused(
                legacy,
                vec![format!(
                    "a version is {}, not a number: refinery could not have written it; fix or \
                     delete that row of {REFINERY_TABLE}",
                    shown(&row[0])
                )],
            ));
        };
        applied.push((
            number,
            Applied {
                version,
                // A NULL name matches no migration's name.
                name: Some(text(&row[1]).unwrap_or_default()),
                applied_at: text(&row[2]),
            },
        ));
    }
    applied.sort_by_key(|(number, _)| *number);
    Ok(Some(applied.into_iter().map(|(_, a)| a).collect()))
}

const GOOSE_TABLE: &str = "goose_db_version";

/// goose (pressly/goose v3). From `internal/dialect/dialectquery/sqlite3.go`:
/// ```sql
/// CREATE TABLE goose_db_version (
///     id INTEGER PRIMARY KEY AUTOINCREMENT,
///     version_id INTEGER NOT NULL,
///     is_applied INTEGER NOT NULL,
///     tstamp TIMESTAMP DEFAULT (datetime('now'))
/// );
/// INSERT INTO goose_db_version (version_id, is_applied) VALUES (?, ?)
/// DELETE FROM goose_db_version WHERE version_id=?
/// ```
/// Creating the table records version 0, which is no migration. A migration
/// going up inserts `(version, true)`; going down, goose v3 deletes its
/// rows, and earlier releases inserted `(version, false)`: the newest row
/// of a version (by `id`) says whether it is applied, as goose reads them
/// (`ListMigrations`: `ORDER BY id DESC`). The version is the file name's
/// leading number (`00002_add_tags.sql` is 2); goose stores no name.
/// Pending migrations are applied in version order.
fn goose(conn: &Connection, legacy: &Legacy) -> Result<Record, Error> {
    let found = columns(conn, GOOSE_TABLE)?;
    if found.is_empty() {
        return Ok(None);
    }
    let wanted = ["id", "version_id", "is_applied", "tstamp"];
    require(legacy, GOOSE_TABLE, &found, &wanted)?;
    // By version: the newest row's id, whether it is applied, and the row.
    let mut newest: std::collections::BTreeMap<u128, (i64, bool, Applied)> =
        std::collections::BTreeMap::new();
    for row in select(conn, GOOSE_TABLE, &found, &wanted)? {
        let (Value::Integer(id), Some((number, version))) = (&row[0], version_of(&row[1])) else {
            return Err(refused(
                legacy,
                vec![format!(
                    "a row has id {} and version_id {}: goose could not have written it; fix or \
                     delete that row of {GOOSE_TABLE}",
                    shown(&row[0]),
                    shown(&row[1])
                )],
            ));
        };
        if number == 0 {
            continue;
        }
        // goose writes a Go bool: 1 or 0 on SQLite. Anything else was
        // written by hand, and guessing "not applied" would run the
        // migration again (a probe's finding).
        let applied = match &row[2] {
            Value::Integer(flag @ (0 | 1)) => *flag == 1,
            Value::Text(flag)
                if ["1", "true", "t"]
                    .iter()
                    .any(|v| flag.eq_ignore_ascii_case(v)) =>
            {
                true
            }
            Value::Text(flag)
                if ["0", "false", "f"]
                    .iter()
                    .any(|v| flag.eq_ignore_ascii_case(v)) =>
            {
                false
            }
            other => {
                return Err(refused(
                    legacy,
                    vec![format!(
                        "version {version} has is_applied {}: goose writes 1 or 0; set it to what \
                         the schema shows (1 if the migration's changes are there), or delete \
                         that row of {GOOSE_TABLE}",
                        shown(other)
                    )],
                ))
            }
        };
        if newest.get(&number).is_some_and(|(newer, _, _)| newer > id) {
            continue;
        }
        newest.insert(
            number,
            (
                *id,
                applied,
                Applied {
                    version,
                    name: None,
                    applied_at: text(&row[3]),
                },
            ),
        );
    }
    Ok(Some(
        newest
            .into_values()
            .filter(|(_, applied, _)| *applied)
            .map(|(_, _, row)| row)
            .collect(),
    ))
}

/// The other tool's table, where it keeps one.
pub(super) fn table_of(legacy: &Legacy) -> Option<&str> {
    match legacy {
        Legacy::UserVersion { .. } => None,
        Legacy::SchemaMigrations { table } => Some(table),
        Legacy::Fastlite => Some(FASTLITE_TABLE),
        Legacy::Sqlx => Some(SQLX_TABLE),
        Legacy::Diesel => Some(DIESEL_TABLE),
        Legacy::Refinery => Some(REFINERY_TABLE),
        Legacy::Goose => Some(GOOSE_TABLE),
    }
}

/// The `Legacy` to adopt with, for a table another tool is known to keep.
pub(crate) fn legacy_for_table(table: &str) -> Option<&'static str> {
    [
        (SQLX_TABLE, "Legacy::Sqlx"),
        (DIESEL_TABLE, "Legacy::Diesel"),
        (REFINERY_TABLE, "Legacy::Refinery"),
        (GOOSE_TABLE, "Legacy::Goose"),
        (
            "schema_migrations",
            "Legacy::SchemaMigrations { table: \"schema_migrations\".into() }",
        ),
    ]
    .into_iter()
    .find(|(name, _)| sqlite::same_identifier(name, table))
    .map(|(_, legacy)| legacy)
}

/// The lower-cased columns of `table` in `main`; empty when there is no
/// such table (or view).
pub(super) fn columns(conn: &Connection, table: &str) -> Result<Vec<String>, Error> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1, 'main')")?;
    let names = stmt.query_map([table], |row| row.get::<_, String>(0))?;
    // Lower-cased here: an application's `lower()` would be SQL's.
    Ok(names
        .map(|name| name.map(|name| name.to_ascii_lowercase()))
        .collect::<Result<_, _>>()?)
}

/// Refuses a table of the tool's name that lacks a column the tool writes.
fn require(legacy: &Legacy, table: &str, found: &[String], wanted: &[&str]) -> Result<(), Error> {
    let missing: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|wanted| !found.iter().any(|c| c == wanted))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(refused(
        legacy,
        vec![format!(
            "table {table:?} is not the one {} writes: it has no column {} (its columns: {}). \
             If it belongs to another tool, adopt with that tool's Legacy variant",
            legacy.tool(),
            missing
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", "),
            found.join(", ")
        )],
    ))
}

/// Every row of the wanted columns of `main.table`, a missing optional
/// column read as NULL.
fn select(
    conn: &Connection,
    table: &str,
    found: &[String],
    wanted: &[&str],
) -> Result<Vec<Vec<Value>>, Error> {
    let expressions: Vec<String> = wanted
        .iter()
        .map(|column| {
            if found.iter().any(|c| c == column) {
                quote_identifier(column)
            } else {
                "NULL".to_owned()
            }
        })
        .collect();
    let sql = format!(
        "SELECT {} FROM main.{}",
        expressions.join(", "),
        quote_identifier(table)
    );
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(params![])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(
            (0..wanted.len())
                .map(|i| row.get(i))
                .collect::<Result<Vec<Value>, _>>()?,
        );
    }
    Ok(out)
}

/// A version stored as an integer or as text of digits: its numeric value
/// (for sorting) and its text as stored.
fn version_of(value: &Value) -> Option<(u128, String)> {
    let text = match value {
        Value::Integer(n) if *n >= 0 => n.to_string(),
        Value::Text(text) => text.trim().to_owned(),
        _ => return None,
    };
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number = text.parse::<u128>().ok()?;
    Some((number, text))
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::Text(text) => Some(text.clone()),
        Value::Integer(n) => Some(n.to_string()),
        Value::Real(r) => Some(r.to_string()),
        Value::Null | Value::Blob(_) => None,
    }
}

/// A stored value as a message shows it.
fn shown(value: &Value) -> String {
    match value {
        Value::Null => "NULL".to_owned(),
        Value::Integer(n) => n.to_string(),
        Value::Real(r) => r.to_string(),
        Value::Text(text) => format!("{text:?}"),
        Value::Blob(bytes) => format!("a blob of {} bytes", bytes.len()),
    }
}
