//! Adopting a database that another tool built: its history becomes ours.
//!
//! The other tool's record is read the way the tool writes it ([`tools`]),
//! mapped onto this set's ids and checked ([`check`]): a count, a name or a
//! version that does not line up is a refusal that lists every mismatch
//! with what to do, never a silent "applied". A set this library already
//! manages is compared with the record instead and left as it is when they
//! agree, so that start-up code can call `adopt` before every `migrate`.
//! The other tool's table is only read (fastlite-migrations' excepted: it
//! has our table's name, so it is upgraded in place).

mod check;
mod tools;

use rusqlite::Connection;

use crate::error::Error;
use crate::history::{self, quote_identifier, Recorder, Table};
use crate::registry::Plan;
use crate::report::AppliedMigration;
use crate::sqlite;
use tools::Applied;

pub(crate) use tools::legacy_for_table;

/// A database managed by another tool, and how its history maps onto this
/// set's migration ids.
///
/// [`Migrator::adopt`](crate::Migrator::adopt) reads the tool's record
/// (never changing it) and records its applied migrations as this set's,
/// keeping their timestamps where the tool stored them. For the tools that
/// keep a table of versions (sqlx, diesel, refinery, `schema_migrations`),
/// the applied versions, sorted, are migrations 0, 1, 2, … of the set: embed
/// the directory the tool ran, unchanged, with
/// `embed_migrations!("migrations", ids = "sorted")`, or write the same
/// migrations as Rust functions in the same order. Names are compared where
/// the tool stored them.
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
    /// applied. rusqlite_migration stores the number of applied migrations
    /// there, which is `first_file: 1`.
    ///
    /// There are no names to compare, so only the count is checked, plus,
    /// for embedded SQL files, the number in each file's name. Do not add a
    /// placeholder file to make ids start at 0: `first_file` would make the
    /// count line up while the wrong files are recorded as applied (the last
    /// file that ran would run again). Embed the runner's directory
    /// unchanged with `ids = "sorted"` instead; adopt refuses a placeholder
    /// whose number shows it.
    UserVersion {
        /// The number of the runner's first file (usually 1).
        first_file: u32,
    },
    /// A hand-written runner's `schema_migrations(version TEXT PRIMARY KEY,
    /// name, applied_at)` table, usually created by a bootstrap file
    /// `000_create_schema_migrations.sql` that records itself as version
    /// 000. When this set starts with that bootstrap file (migration 0 has
    /// the bootstrap row's name), version 000 is migration 0; otherwise the
    /// bootstrap row is left out and the first version after it is
    /// migration 0. Each name must equal the name of our migration.
    SchemaMigrations {
        /// The table's name (usually `schema_migrations`).
        table: String,
    },
    /// A database written by the Python library fastlite-migrations: a
    /// `migrations(id INTEGER PRIMARY KEY, name, inserted_at)` table whose ids
    /// are ours; names must match ours. When this set's tracking table is
    /// `migrations` too, fastlite's table is upgraded in place into ours,
    /// keeping its rows and timestamps; otherwise it is left as it is.
    Fastlite,
    /// sqlx (`sqlx migrate run`, `sqlx::migrate!()`): its `_sqlx_migrations`
    /// table. Its applied versions, sorted, are migrations 0, 1, 2, …; each
    /// description must equal our migration's name with `_` read as a space
    /// (sqlx stores `20240101120000_create_users.sql` as `create users`),
    /// and `installed_on` becomes `applied_at`. A migration sqlx recorded as
    /// failed (`success = false`) is refused: sqlx calls that database dirty.
    ///
    /// ```
    /// use migrate_core::{Legacy, Migrator, rusqlite::{Connection, Transaction}};
    /// // What `sqlx migrate run` leaves after 20240101120000_create_users.sql.
    /// let mut conn = Connection::open_in_memory()?;
    /// conn.execute_batch(
    ///     "CREATE TABLE _sqlx_migrations (
    ///          version BIGINT PRIMARY KEY, description TEXT NOT NULL,
    ///          installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    ///          success BOOLEAN NOT NULL, checksum BLOB NOT NULL,
    ///          execution_time BIGINT NOT NULL);
    ///      CREATE TABLE users (id INTEGER PRIMARY KEY);
    ///      INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
    ///      VALUES (20240101120000, 'create users', TRUE, zeroblob(48), 1200);",
    /// )?;
    /// // The same directory, embedded with `ids = "sorted"`, or as Rust functions:
    /// let m = Migrator::new()
    ///     .add(0, "create_users", |tx: &Transaction| {
    ///         tx.execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY)")
    ///     })
    ///     .add(1, "create_posts", |tx: &Transaction| {
    ///         tx.execute_batch("CREATE TABLE posts (id INTEGER PRIMARY KEY)")
    ///     });
    /// m.adopt(&mut conn, Legacy::Sqlx)?;
    /// assert_eq!(m.migrate(&mut conn)?.ids(), vec![1]);
    /// assert!(m.adopt(&mut conn, Legacy::Sqlx)?.is_empty()); // already adopted
    /// # Ok::<(), migrate_core::Error>(())
    /// ```
    Sqlx,
    /// diesel (`diesel migration run`, `diesel_migrations`): its
    /// `__diesel_schema_migrations` table. Its applied versions, sorted as
    /// diesel sorts them (as text: `202512081354280000` before
    /// `20260528000000`, the order `embed_migrations!(…, ids = "sorted")`
    /// gives a diesel directory), are migrations 0, 1, 2, …; `run_on` becomes
    /// `applied_at`. diesel stores no names, so the count is checked, and,
    /// for embedded SQL files, each directory's version
    /// (`2024-01-01-120000_create_users/up.sql` is version `20240101120000`).
    ///
    /// ```
    /// use migrate_core::{Legacy, Migrator, rusqlite::{Connection, Transaction}};
    /// // What `diesel migration run` leaves after 2024-01-01-120000_create_users.
    /// let mut conn = Connection::open_in_memory()?;
    /// conn.execute_batch(
    ///     "CREATE TABLE __diesel_schema_migrations (
    ///          version VARCHAR(50) PRIMARY KEY NOT NULL,
    ///          run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP);
    ///      CREATE TABLE users (id INTEGER PRIMARY KEY);
    ///      INSERT INTO __diesel_schema_migrations (version) VALUES ('20240101120000');",
    /// )?;
    /// let m = Migrator::new()
    ///     .add(0, "create_users", |tx: &Transaction| {
    ///         tx.execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY)")
    ///     })
    ///     .add(1, "create_posts", |tx: &Transaction| {
    ///         tx.execute_batch("CREATE TABLE posts (id INTEGER PRIMARY KEY)")
    ///     });
    /// assert_eq!(m.adopt(&mut conn, Legacy::Diesel)?.len(), 1);
    /// assert_eq!(m.migrate(&mut conn)?.ids(), vec![1]);
    /// # Ok::<(), migrate_core::Error>(())
    /// ```
    Diesel,
    /// refinery (`refinery::embed_migrations!`, `refinery migrate`): its
    /// `refinery_schema_history` table. Its applied versions, sorted, are
    /// migrations 0, 1, 2, …; each name must equal our migration's name
    /// (`V1__create_users.sql` is `create_users`); `applied_on` becomes
    /// `applied_at`, converted to UTC.
    ///
    /// ```
    /// use migrate_core::{Legacy, Migrator, rusqlite::{Connection, Transaction}};
    /// // What refinery leaves after V1__create_users.sql.
    /// let mut conn = Connection::open_in_memory()?;
    /// conn.execute_batch(
    ///     "CREATE TABLE refinery_schema_history(
    ///          version INT4 PRIMARY KEY, name VARCHAR(255),
    ///          applied_on VARCHAR(255), checksum VARCHAR(255));
    ///      CREATE TABLE users (id INTEGER PRIMARY KEY);
    ///      INSERT INTO refinery_schema_history (version, name, applied_on, checksum)
    ///      VALUES (1, 'create_users', '2024-01-02T03:04:05.123456789Z', '10530146426359395452');",
    /// )?;
    /// let m = Migrator::new()
    ///     .add(0, "create_users", |tx: &Transaction| {
    ///         tx.execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY)")
    ///     })
    ///     .add(1, "create_posts", |tx: &Transaction| {
    ///         tx.execute_batch("CREATE TABLE posts (id INTEGER PRIMARY KEY)")
    ///     });
    /// let adopted = m.adopt(&mut conn, Legacy::Refinery)?;
    /// assert_eq!(adopted[0].applied_at, "2024-01-02T03:04:05.123456789Z");
    /// assert_eq!(m.migrate(&mut conn)?.ids(), vec![1]);
    /// # Ok::<(), migrate_core::Error>(())
    /// ```
    Refinery,
    /// goose (`goose up`, pressly/goose): its `goose_db_version` table. The
    /// versions whose newest row says applied (goose v3 deletes a version's
    /// rows going down; earlier releases added a row with `is_applied`
    /// false), sorted, are migrations 0, 1, 2, …; version 0, which goose
    /// records when it creates the table, is no migration; `tstamp` becomes
    /// `applied_at`. goose stores no names, so the count is checked, and,
    /// for embedded SQL files, each file's version (`00002_add_tags.sql` is
    /// version 2). goose's SQL files embed unchanged with `ids = "sorted"`
    /// (their `-- +goose Up`/`Down` sections are the migration and its
    /// rollback); a Go migration needs a Rust function in its place.
    ///
    /// ```
    /// use migrate_core::{Legacy, Migrator, rusqlite::{Connection, Transaction}};
    /// // What `goose up` leaves after 00001_create_users.sql.
    /// let mut conn = Connection::open_in_memory()?;
    /// conn.execute_batch(
    ///     "CREATE TABLE goose_db_version (
    ///          id INTEGER PRIMARY KEY AUTOINCREMENT, version_id INTEGER NOT NULL,
    ///          is_applied INTEGER NOT NULL, tstamp TIMESTAMP DEFAULT (datetime('now')));
    ///      INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, 1);
    ///      CREATE TABLE users (id INTEGER PRIMARY KEY);
    ///      INSERT INTO goose_db_version (version_id, is_applied) VALUES (1, 1);",
    /// )?;
    /// let m = Migrator::new()
    ///     .add(0, "create_users", |tx: &Transaction| {
    ///         tx.execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY)")
    ///     })
    ///     .add(1, "create_posts", |tx: &Transaction| {
    ///         tx.execute_batch("CREATE TABLE posts (id INTEGER PRIMARY KEY)")
    ///     });
    /// assert_eq!(m.adopt(&mut conn, Legacy::Goose)?.len(), 1);
    /// assert_eq!(m.migrate(&mut conn)?.ids(), vec![1]);
    /// # Ok::<(), migrate_core::Error>(())
    /// ```
    Goose,
}

impl Legacy {
    /// The tool, as messages name it.
    fn tool(&self) -> &'static str {
        match self {
            Legacy::UserVersion { .. } | Legacy::SchemaMigrations { .. } => "the runner",
            Legacy::Fastlite => "fastlite-migrations",
            Legacy::Sqlx => "sqlx",
            Legacy::Diesel => "diesel",
            Legacy::Refinery => "refinery",
            Legacy::Goose => "goose",
        }
    }

    /// What is adopted, for [`Error::CannotAdopt`].
    fn describe(&self) -> String {
        match self {
            Legacy::UserVersion { .. } => "PRAGMA user_version".to_owned(),
            Legacy::SchemaMigrations { table } => format!("{table} table"),
            Legacy::Fastlite => "fastlite-migrations table".to_owned(),
            other => format!(
                "{} table {}",
                other.tool(),
                tools::table_of(other).unwrap_or_default()
            ),
        }
    }

    /// Whether a name the tool stored is our migration's name. sqlx
    /// stores the description: the name with `_` replaced by spaces.
    fn same_name(&self, stored: &str, ours: &str) -> bool {
        stored == ours || (matches!(self, Legacy::Sqlx) && stored == ours.replace('_', " "))
    }
}

fn refused(legacy: &Legacy, problems: Vec<String>) -> Error {
    Error::CannotAdopt {
        from: legacy.describe(),
        problems,
    }
}

/// One call to `Migrator::adopt`.
pub(crate) struct Request<'a> {
    pub plan: &'a Plan,
    pub table: &'a Table,
    /// Mirror the applied count into `PRAGMA user_version` (default set).
    pub mirror_user_version: bool,
    pub verify_applied: bool,
    pub legacy: &'a Legacy,
}

/// What adopting means for this database, decided before any write.
enum Verdict {
    /// Nothing to write: the set is already managed in agreement with the
    /// record, or nothing records an applied migration in a new database.
    Nothing,
    /// Create the tracking table and record these as migrations 0, 1, ….
    Record {
        applied: Vec<Applied>,
        /// fastlite's `migrations` table has our table's name: it is moved
        /// aside, replaced by ours, and dropped.
        replace_fastlite: bool,
    },
}

/// fastlite's table, while ours takes its name.
const FASTLITE_ASIDE: &str = "migrations_fastlite_adopted";

fn decide(conn: &Connection, request: &Request<'_>) -> Result<Verdict, Error> {
    let Request {
        plan,
        table,
        legacy,
        ..
    } = *request;
    let replace_fastlite = matches!(legacy, Legacy::Fastlite)
        && sqlite::same_identifier(&table.name, tools::FASTLITE_TABLE)
        && tools::is_fastlite(&tools::columns(conn, tools::FASTLITE_TABLE)?);
    if !replace_fastlite {
        if let Some(history) = history::checked(conn, plan, table, request.verify_applied, true)? {
            check::agrees(
                conn,
                plan,
                table,
                &history.rows,
                legacy,
                request.mirror_user_version,
            )?;
            return Ok(Verdict::Nothing);
        }
    }
    let record = tools::read(conn, plan, legacy)?;
    match &record {
        Some(applied) if !applied.is_empty() => check::maps(plan, legacy, applied)?,
        _ => check::nothing_applied(conn, &plan.set, table, legacy, tools::table_of(legacy))?,
    }
    // The tool's table may exist and be empty: ours is then created empty,
    // so that migrate() knows the database is managed.
    let Some(applied) = record else {
        return Ok(Verdict::Nothing);
    };
    Ok(Verdict::Record {
        applied,
        replace_fastlite,
    })
}

/// The read-only answer for a database that needs no adopting (already
/// adopted, managed in agreement, or new), without taking the write lock,
/// so that start-up code may call `adopt` on every start, on a read-only
/// connection too. A refusal is returned as it is; a database to adopt is
/// decided again in the write transaction.
/// Run within the write path's lock budget (`runner::write_unless`).
pub(crate) fn nothing_to_do(conn: &Connection, request: &Request<'_>) -> Result<bool, Error> {
    Ok(matches!(decide(conn, request)?, Verdict::Nothing))
}

/// Records the other tool's history as ours, inside the caller's write
/// transaction (a refusal rolls back everything, so nothing changes).
pub(crate) fn adopt(
    conn: &Connection,
    request: &Request<'_>,
) -> Result<Vec<AppliedMigration>, Error> {
    let Verdict::Record {
        applied,
        replace_fastlite,
    } = decide(conn, request)?
    else {
        return Ok(Vec::new());
    };
    let Request { plan, table, .. } = *request;
    if replace_fastlite {
        conn.execute_batch(&format!(
            "ALTER TABLE main.{} RENAME TO {}",
            quote_identifier(tools::FASTLITE_TABLE),
            quote_identifier(FASTLITE_ASIDE)
        ))?;
    }
    history::create(conn, table)?;
    let mut recorder = Recorder::new(conn, table)?;
    for (migration, item) in plan.migrations().iter().zip(&applied) {
        let applied_at = match &item.applied_at {
            Some(text) => Some(timestamp(text)?),
            None => None,
        };
        recorder.insert_at(
            migration.id,
            migration.name(),
            migration.checksum(),
            &crate::hash::hex(plan.chains()[migration.id as usize]),
            applied_at.as_deref(),
        )?;
    }
    if replace_fastlite {
        conn.execute_batch(&format!(
            "DROP TABLE main.{}",
            quote_identifier(FASTLITE_ASIDE)
        ))?;
    }
    if request.mirror_user_version && sqlite::user_version(conn)? != applied.len() as i64 {
        sqlite::set_user_version(conn, applied.len())?;
    }
    let adopted = history::load(conn, table)?.unwrap_or_default();
    Ok(adopted.into_iter().map(|row| row.applied).collect())
}

/// A stored time as RFC 3339 UTC where its format is known: SQLite's
/// `CURRENT_TIMESTAMP` (`2024-01-02 03:04:05`, UTC, as sqlx, diesel,
/// fastlite-migrations and `schema_migrations` store it), or RFC 3339 with
/// an offset (refinery releases that stored local time), converted by
/// SQLite, on a connection of its own: the application's may have its own
/// `strftime`. RFC 3339 UTC and anything else are kept as written.
fn timestamp(text: &str) -> Result<String, Error> {
    if let Some(utc) = sqlite_timestamp(text) {
        return Ok(utc);
    }
    if has_offset(text) {
        let converted: Option<String> = Connection::open_in_memory()?.query_row(
            "SELECT strftime('%Y-%m-%dT%H:%M:%fZ', ?1)",
            [text],
            |row| row.get(0),
        )?;
        if let Some(converted) = converted {
            return Ok(converted);
        }
    }
    Ok(text.to_owned())
}

/// SQLite's `CURRENT_TIMESTAMP` (`2024-01-02 03:04:05`, UTC) as RFC 3339.
fn sqlite_timestamp(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let sqlite_shape = bytes.len() == 19
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            10 => *b == b' ',
            13 | 16 => *b == b':',
            _ => b.is_ascii_digit(),
        });
    sqlite_shape.then(|| format!("{}T{}Z", &text[..10], &text[11..]))
}

/// `…T…+02:00` or `…T…-05:00`: a date and time with a UTC offset.
fn has_offset(text: &str) -> bool {
    let bytes = text.as_bytes();
    let Some(offset) = bytes.len().checked_sub(6).map(|at| &bytes[at..]) else {
        return false;
    };
    bytes.get(10) == Some(&b'T')
        && matches!(offset, [b'+' | b'-', h1, h2, b':', m1, m2]
            if [h1, h2, m1, m2].iter().all(|d| d.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::timestamp;

    #[test]
    fn timestamps() {
        let utc = |text| timestamp(text).expect("timestamp");
        assert_eq!(utc("2024-01-02 03:04:05"), "2024-01-02T03:04:05Z");
        assert_eq!(utc("2024-01-02T03:04:05.123Z"), "2024-01-02T03:04:05.123Z");
        assert_eq!(
            utc("2024-01-02T03:04:05.123456789Z"),
            "2024-01-02T03:04:05.123456789Z"
        );
        assert_eq!(
            utc("2024-01-02T01:04:05.123456+02:00"),
            "2024-01-01T23:04:05.123Z"
        );
        assert_eq!(utc("2024-01-02T03:04:05-05:00"), "2024-01-02T08:04:05.000Z");
        assert_eq!(
            utc("2024-13-45T03:04:05+02:00"),
            "2024-13-45T03:04:05+02:00"
        );
        assert_eq!(utc("yesterday"), "yesterday");
    }
}
