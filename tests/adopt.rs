//! Adopting databases built by other tools: `PRAGMA user_version` runners,
//! `schema_migrations` tables, and fastlite-migrations. Each mapping is
//! checked, and a mismatch changes nothing.

mod common;

use common::{read_bytes, user_version};
use migrate_core::rusqlite::{Connection, Transaction};
use migrate_core::{Error, Legacy, Migrator};
use tempfile::TempDir;

/// Our migrations, in the default set (so `user_version` is mirrored).
fn ours() -> Migrator {
    Migrator::new()
        .add(0, "create_users", |tx: &Transaction| {
            tx.execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY)")
        })
        .add(1, "create_posts", |tx: &Transaction| {
            tx.execute_batch("CREATE TABLE posts (id INTEGER PRIMARY KEY)")
        })
        .add(2, "add_tags", |tx: &Transaction| {
            tx.execute_batch("CREATE TABLE tags (name TEXT)")
        })
        .add(3, "add_comments", |tx: &Transaction| {
            tx.execute_batch("CREATE TABLE comments (body TEXT)")
        })
}

fn open(dir: &TempDir) -> (Connection, std::path::PathBuf) {
    let path = dir.path().join("legacy.db");
    (Connection::open(&path).expect("open"), path)
}

fn assert_refused(result: Result<Vec<migrate_core::AppliedMigration>, Error>, needle: &str) {
    match result {
        Err(error @ Error::CannotAdopt { .. }) => {
            let text = error.to_string();
            assert!(text.contains(needle), "{text}");
            assert!(text.contains("nothing was changed"), "{text}");
        }
        other => panic!("expected CannotAdopt, got {other:?}"),
    }
}

// A hand-written runner's files 0001..0003, each ending with
// `PRAGMA user_version = N`.
const USER_VERSION_DB: &str = "
    CREATE TABLE users (id INTEGER PRIMARY KEY);
    CREATE TABLE posts (id INTEGER PRIMARY KEY);
    CREATE TABLE tags (name TEXT);
    PRAGMA user_version = 3;
";

#[test]
fn user_version_database_is_adopted() {
    let dir = TempDir::new().expect("tempdir");
    let (mut conn, _) = open(&dir);
    conn.execute_batch(USER_VERSION_DB).expect("legacy schema");
    assert!(matches!(
        ours().migrate(&mut conn),
        Err(Error::UnmanagedDatabase { .. })
    ));

    let adopted = ours()
        .adopt(&mut conn, Legacy::UserVersion { first_file: 1 })
        .expect("adopt");
    let names: Vec<&str> = adopted.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, vec!["create_users", "create_posts", "add_tags"]);
    assert_eq!(user_version(&conn), 3);
    assert_eq!(ours().migrate(&mut conn).expect("migrate").ids(), vec![3]);
    assert_eq!(user_version(&conn), 4);
}

#[test]
fn user_version_beyond_our_migrations_is_refused() {
    let dir = TempDir::new().expect("tempdir");
    let (mut conn, path) = open(&dir);
    conn.execute_batch("CREATE TABLE users (id); PRAGMA user_version = 7;")
        .expect("legacy");
    let before = read_bytes(&path);
    assert_refused(
        ours().adopt(&mut conn, Legacy::UserVersion { first_file: 1 }),
        "has only 4",
    );
    assert_eq!(read_bytes(&path), before);
}

#[test]
fn user_version_zero_has_nothing_to_adopt() {
    let dir = TempDir::new().expect("tempdir");
    let (mut conn, path) = open(&dir);
    conn.execute_batch("CREATE TABLE users (id);")
        .expect("legacy");
    let before = read_bytes(&path);
    assert_refused(
        ours().adopt(&mut conn, Legacy::UserVersion { first_file: 1 }),
        "nothing to adopt",
    );
    assert_eq!(read_bytes(&path), before);
}

const SCHEMA_MIGRATIONS_DB: &str = "
    CREATE TABLE schema_migrations (
        version TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        applied_at TEXT NOT NULL DEFAULT (datetime('now'))
    );
    INSERT INTO schema_migrations VALUES ('000', 'create_schema_migrations', '2023-05-01 10:00:00');
    CREATE TABLE users (id INTEGER PRIMARY KEY);
    INSERT INTO schema_migrations VALUES ('001', 'create_users', '2023-05-01 10:00:01');
    CREATE TABLE posts (id INTEGER PRIMARY KEY);
    INSERT INTO schema_migrations VALUES ('002', 'create_posts', '2023-06-11 08:30:00');
";

fn schema_migrations() -> Legacy {
    Legacy::SchemaMigrations {
        table: "schema_migrations".to_owned(),
    }
}

#[test]
fn schema_migrations_database_is_adopted_with_its_timestamps() {
    let dir = TempDir::new().expect("tempdir");
    let (mut conn, _) = open(&dir);
    conn.execute_batch(SCHEMA_MIGRATIONS_DB).expect("legacy");
    let adopted = ours().adopt(&mut conn, schema_migrations()).expect("adopt");
    let rows: Vec<(u32, &str, &str)> = adopted
        .iter()
        .map(|a| (a.id, a.name.as_str(), a.applied_at.as_str()))
        .collect();
    assert_eq!(
        rows,
        vec![
            (0, "create_users", "2023-05-01T10:00:01Z"),
            (1, "create_posts", "2023-06-11T08:30:00Z")
        ]
    );
    assert_eq!(
        ours().migrate(&mut conn).expect("migrate").ids(),
        vec![2, 3]
    );
}

#[test]
fn schema_migrations_with_other_names_is_refused() {
    let dir = TempDir::new().expect("tempdir");
    let (mut conn, path) = open(&dir);
    conn.execute_batch(SCHEMA_MIGRATIONS_DB).expect("legacy");
    conn.execute(
        "UPDATE schema_migrations SET name = 'make_posts' WHERE version = '002'",
        [],
    )
    .expect("rename");
    let before = read_bytes(&path);
    assert_refused(
        ours().adopt(&mut conn, schema_migrations()),
        "`make_posts` there but `create_posts` here",
    );
    assert_eq!(read_bytes(&path), before);
}

#[test]
fn schema_migrations_with_a_gap_or_no_bootstrap_is_refused() {
    let dir = TempDir::new().expect("tempdir");
    let (mut conn, path) = open(&dir);
    conn.execute_batch(SCHEMA_MIGRATIONS_DB).expect("legacy");
    conn.execute(
        "UPDATE schema_migrations SET version = '003' WHERE version = '002'",
        [],
    )
    .expect("gap");
    let before = read_bytes(&path);
    assert_refused(
        ours().adopt(&mut conn, schema_migrations()),
        "expected 002, found 003",
    );
    conn.execute("DELETE FROM schema_migrations WHERE version = '000'", [])
        .expect("no bootstrap");
    let before_bootstrap = read_bytes(&path);
    assert_ne!(before, before_bootstrap);
    assert_refused(
        ours().adopt(&mut conn, schema_migrations()),
        "no bootstrap row",
    );
    assert_eq!(read_bytes(&path), before_bootstrap);
}

// What fastlite-migrations (Python) leaves behind.
const FASTLITE_DB: &str = "
    CREATE TABLE migrations (
        id INTEGER PRIMARY KEY,
        name TEXT,
        inserted_at TEXT DEFAULT CURRENT_TIMESTAMP NOT NULL
    ) STRICT;
    CREATE TABLE users (id INTEGER PRIMARY KEY);
    INSERT INTO migrations (id, name, inserted_at) VALUES (0, 'create_users', '2024-01-02 03:04:05');
    CREATE TABLE posts (id INTEGER PRIMARY KEY);
    INSERT INTO migrations (id, name, inserted_at) VALUES (1, 'create_posts', '2024-02-03 04:05:06');
";

#[test]
fn fastlite_database_is_upgraded_in_place() {
    let dir = TempDir::new().expect("tempdir");
    let (mut conn, _) = open(&dir);
    conn.execute_batch(FASTLITE_DB).expect("legacy");
    let refused = ours()
        .migrate(&mut conn)
        .expect_err("their table is not ours");
    assert!(
        matches!(refused, Error::IncompatibleTrackingTable { .. }),
        "{refused:?}"
    );
    assert!(
        refused.to_string().contains("Legacy::Fastlite"),
        "{refused}"
    );

    let adopted = ours().adopt(&mut conn, Legacy::Fastlite).expect("adopt");
    let rows: Vec<(u32, &str, &str)> = adopted
        .iter()
        .map(|a| (a.id, a.name.as_str(), a.applied_at.as_str()))
        .collect();
    assert_eq!(
        rows,
        vec![
            (0, "create_users", "2024-01-02T03:04:05Z"),
            (1, "create_posts", "2024-02-03T04:05:06Z")
        ]
    );
    let leftovers: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name LIKE 'migrations_%'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(leftovers, 0, "the old table is gone");
    assert_eq!(user_version(&conn), 2);
    assert_eq!(
        ours().migrate(&mut conn).expect("migrate").ids(),
        vec![2, 3]
    );
    assert_eq!(
        ours().applied_migrations(&conn).expect("history")[0].applied_at,
        "2024-01-02T03:04:05Z"
    );
}

#[test]
fn fastlite_with_other_names_or_gaps_is_refused() {
    let dir = TempDir::new().expect("tempdir");
    let (mut conn, path) = open(&dir);
    conn.execute_batch(FASTLITE_DB).expect("legacy");
    conn.execute("UPDATE migrations SET name = 'users' WHERE id = 0", [])
        .expect("rename");
    let before = read_bytes(&path);
    assert_refused(
        ours().adopt(&mut conn, Legacy::Fastlite),
        "`users` there but `create_users` here",
    );
    assert_eq!(read_bytes(&path), before);

    conn.execute(
        "UPDATE migrations SET name = 'create_users', id = 5 WHERE id = 0",
        [],
    )
    .expect("gap");
    let before = read_bytes(&path);
    assert_refused(ours().adopt(&mut conn, Legacy::Fastlite), "not contiguous");
    assert_eq!(read_bytes(&path), before);
}

#[test]
fn a_database_with_our_history_is_not_adopted_again() {
    let dir = TempDir::new().expect("tempdir");
    let (mut conn, _) = open(&dir);
    ours().migrate_to(&mut conn, 1).expect("migrate");
    let again = ours().adopt(&mut conn, Legacy::UserVersion { first_file: 1 });
    assert!(
        matches!(again, Err(Error::AlreadyHasHistory { applied: 2, .. })),
        "{again:?}"
    );
    let fastlite = ours().adopt(&mut conn, Legacy::Fastlite);
    assert!(
        matches!(fastlite, Err(Error::CannotAdopt { .. })),
        "{fastlite:?}"
    );
}
