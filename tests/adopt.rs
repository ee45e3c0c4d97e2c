//! Adopting databases built by other tools: hand-written `PRAGMA
//! user_version` runners (and rusqlite_migration), `schema_migrations`
//! tables, fastlite-migrations, sqlx, diesel and refinery.
//!
//! Each database is built the way its tool leaves it: the tool's own
//! `CREATE TABLE` text, its values and how it writes them (each builder names
//! the source it follows), with the application's rows in it. Then: adopt, a
//! new migration applies, the rows survive, the other tool's table is left as
//! it was, and adopting again changes nothing (the file's bytes compared).
//! Every refusal changes nothing and says what to do.

mod common;

use std::hash::{Hash, Hasher};

use common::{assert_untouched, count, snapshot, user_version, TempDb};
use migrate_core::rusqlite::types::Value;
use migrate_core::rusqlite::{params, Connection, OpenFlags, Transaction};
use migrate_core::{embed_migrations, Error, Legacy, MigrationState, Migrator};

/// The migrations of the application, as the other tools ran them: each
/// one's name and the SQL of its file. The other tool applied the first
/// [`RAN`]; the last one is new, written after the switch.
const STEPS: [(&str, &str); 4] = [
    (
        "create_users",
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n",
    ),
    (
        "create_posts",
        "CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users (id), title TEXT NOT NULL);\n",
    ),
    (
        "add_tags",
        "CREATE TABLE tags (post_id INTEGER NOT NULL REFERENCES posts (id), tag TEXT NOT NULL);\n",
    ),
    (
        "add_comments",
        "CREATE TABLE comments (post_id INTEGER NOT NULL REFERENCES posts (id), body TEXT NOT NULL);\n",
    ),
];

/// How many of [`STEPS`] the other tool applied.
const RAN: usize = 3;

/// Rows the application wrote while the other tool managed the database.
const DATA: &str = "
    INSERT INTO users VALUES (1, 'ada'), (2, 'brian');
    INSERT INTO posts VALUES (10, 1, 'hello'), (11, 2, 'again');
    INSERT INTO tags VALUES (10, 'intro'), (11, 'misc');
";

#[track_caller]
fn assert_data_survived(conn: &Connection) {
    let mut stmt = conn
        .prepare(
            "SELECT posts.id, users.name, posts.title FROM posts \
             JOIN users ON users.id = posts.user_id ORDER BY posts.id",
        )
        .unwrap();
    let rows: Vec<(i64, String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        rows,
        vec![
            (10, "ada".to_owned(), "hello".to_owned()),
            (11, "brian".to_owned(), "again".to_owned())
        ]
    );
    assert_eq!(count(conn, "tags"), 2);
}

/// This set: the same migrations as Rust functions, in the same order (a
/// directory embedded with `ids = "sorted"` gives the same ids and names).
fn ours() -> Migrator {
    steps(Migrator::new(), STEPS.len())
}

fn steps(migrator: Migrator, how_many: usize) -> Migrator {
    STEPS
        .iter()
        .take(how_many)
        .enumerate()
        .fold(migrator, |m, (id, (name, sql))| {
            m.add(id as u32, *name, move |tx: &Transaction| {
                tx.execute_batch(sql)
            })
        })
}

/// A set of migrations with these names, in this order (their bodies do
/// not matter to adopt).
fn named(names: &[&'static str]) -> Migrator {
    names
        .iter()
        .enumerate()
        .fold(Migrator::new(), |m, (id, name)| {
            m.add(id as u32, *name, |tx: &Transaction| {
                tx.execute_batch("SELECT 1")
            })
        })
}

/// The schema and rows of one table, to show it was left as it was.
fn table_state(conn: &Connection, table: &str) -> (String, Vec<Vec<Value>>) {
    let sql: String = conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [table],
            |r| r.get(0),
        )
        .unwrap_or_else(|e| panic!("table {table}: {e}"));
    let mut stmt = conn
        .prepare(&format!("SELECT * FROM \"{table}\" ORDER BY 1"))
        .unwrap();
    let width = stmt.column_count();
    let rows = stmt
        .query_map([], |row| (0..width).map(|i| row.get(i)).collect())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    (sql, rows)
}

/// The switch, as a user makes it: `migrate()` alone is refused (pointing
/// at `adopt`), one `adopt` line records the other tool's history, the new
/// migration applies, the rows survive, the other tool's table is left as
/// it was, and `adopt` on every later start changes nothing.
#[track_caller]
fn switch(db: &TempDb, m: &Migrator, legacy: Legacy, their_table: Option<&str>, hint: &str) {
    let mut conn = db.open();
    let theirs = their_table.map(|t| table_state(&conn, t));

    let before = snapshot(db);
    let refused = m.migrate(&mut conn).expect_err("not managed yet");
    assert!(refused.to_string().contains(hint), "{refused}");
    assert_untouched(db, &before);

    let adopted = m.adopt(&mut conn, legacy.clone()).expect("adopt");
    let ids: Vec<u32> = adopted.iter().map(|a| a.id).collect();
    assert_eq!(ids, (0..RAN as u32).collect::<Vec<_>>());
    let names: Vec<&str> = adopted.iter().map(|a| a.name.as_str()).collect();
    let expected: Vec<&str> = STEPS[..RAN].iter().map(|(name, _)| *name).collect();
    assert_eq!(names, expected);
    for row in &adopted {
        common::assert_rfc3339_utc(&row.applied_at);
    }
    assert_eq!(user_version(&conn), RAN as i64);

    let before = snapshot(db);
    assert_eq!(m.adopt(&mut conn, legacy.clone()).expect("again"), vec![]);
    assert_untouched(db, &before);

    assert_eq!(
        m.migrate(&mut conn).expect("migrate").ids(),
        vec![RAN as u32]
    );
    assert_eq!(user_version(&conn), STEPS.len() as i64);
    assert_data_survived(&conn);
    if let (Some(table), Some(theirs)) = (their_table, theirs) {
        assert_eq!(table_state(&conn, table), theirs, "{table} was changed");
    }

    let before = snapshot(db);
    assert_eq!(
        m.adopt(&mut conn, legacy).expect("on the next start"),
        vec![]
    );
    assert_untouched(db, &before);
    assert!(m.migrate(&mut conn).expect("up to date").is_empty());
}

/// A refusal: `CannotAdopt`, its message holds every needle, nothing changed.
#[track_caller]
fn assert_refused(db: &TempDb, m: &Migrator, legacy: Legacy, needles: &[&str]) {
    let mut conn = db.open();
    let before = snapshot(db);
    match m.adopt(&mut conn, legacy) {
        Err(error @ Error::CannotAdopt { .. }) => {
            let text = error.to_string();
            assert!(text.contains("nothing was changed"), "{text}");
            for needle in needles {
                assert!(text.contains(needle), "{needle:?} not in:\n{text}");
            }
        }
        other => panic!("expected CannotAdopt, got {other:?}"),
    }
    assert_untouched(db, &before);
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

// ---------------------------------------------------------------------------
// Hand-written PRAGMA user_version runners, and rusqlite_migration

/// The tutorial's runner: files `0001_name.sql`, each wrapped in
/// `BEGIN; … COMMIT;` and ending with `PRAGMA user_version = N`; it runs
/// every file whose number exceeds the current version.
fn user_version_database() -> TempDb {
    let db = TempDb::new();
    let conn = db.open();
    for (index, (_, sql)) in STEPS.iter().take(RAN).enumerate() {
        let number = index + 1;
        if user_version(&conn) < number as i64 {
            conn.execute_batch(&format!(
                "BEGIN;\n{sql}PRAGMA user_version = {number};\nCOMMIT;\n"
            ))
            .unwrap();
        }
    }
    conn.execute_batch(DATA).unwrap();
    db
}

#[test]
fn user_version_database_is_adopted() {
    let db = user_version_database();
    switch(
        &db,
        &ours(),
        Legacy::UserVersion { first_file: 1 },
        None,
        "Legacy::UserVersion",
    );
}

/// rusqlite_migration (cljoly/rusqlite_migration, `src/lib.rs`, `goto_up`)
/// runs every pending `M::up` in one transaction and stores the number of
/// applied migrations in `user_version` (its `to_version` docs: "the version
/// is the index in the migrations vector starting from 1"), so its
/// migration 1 is our migration 0: `first_file: 1`.
#[test]
fn rusqlite_migration_database_is_adopted_as_user_version_from_1() {
    let db = TempDb::new();
    let mut conn = db.open();
    let tx = conn.transaction().unwrap();
    for (_, sql) in STEPS.iter().take(RAN) {
        tx.execute_batch(sql).unwrap();
    }
    tx.execute_batch(&format!("PRAGMA user_version = {RAN}"))
        .unwrap();
    tx.commit().unwrap();
    conn.execute_batch(DATA).unwrap();
    drop(conn);
    switch(
        &db,
        &ours(),
        Legacy::UserVersion { first_file: 1 },
        None,
        "Legacy::UserVersion",
    );
}

#[test]
fn user_version_beyond_our_migrations_is_refused() {
    let db = user_version_database();
    db.open().execute_batch("PRAGMA user_version = 7").unwrap();
    assert_refused(
        &db,
        &ours(),
        Legacy::UserVersion { first_file: 1 },
        &[
            "files 1..=7 ran",
            "has only 4",
            "files 5..=7 are missing from this binary",
        ],
    );
}

#[test]
fn user_version_zero_with_tables_has_nothing_to_adopt() {
    let db = TempDb::new();
    db.open()
        .execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY);")
        .unwrap();
    assert_refused(
        &db,
        &ours(),
        Legacy::UserVersion { first_file: 1 },
        &[
            "nothing to adopt",
            "it has tables (users)",
            "Migrator::baseline",
        ],
    );
}

// The directory of the user_version runner with a placeholder file 000
// added so that ids start at 0: the trap of issue 10.
embed_migrations!(
    "tests/fixtures/adopt/user_version_placeholder",
    set = "placeholder"
);

#[test]
fn user_version_placeholder_file_is_refused() {
    let db = user_version_database();
    let placeholder = Migrator::new().set("placeholder");
    assert_refused(
        &db,
        &placeholder,
        Legacy::UserVersion { first_file: 1 },
        &[
            "000_placeholder.sql, numbered 000",
            "makes it the runner's file 1",
            "placeholder",
            "ids = \"sorted\"",
            "would run again",
        ],
    );
}

#[test]
fn user_version_changed_after_adoption_is_refused() {
    let db = user_version_database();
    let mut conn = db.open();
    ours()
        .adopt(&mut conn, Legacy::UserVersion { first_file: 1 })
        .expect("adopt");
    // The old runner ran once more.
    conn.execute_batch(&format!(
        "BEGIN;\n{}PRAGMA user_version = 4;\nCOMMIT;\n",
        STEPS[3].1
    ))
    .unwrap();
    drop(conn);
    assert_refused(
        &db,
        &ours(),
        Legacy::UserVersion { first_file: 1 },
        &[
            "PRAGMA user_version is 4",
            "records 3 applied migration(s)",
            "did the old runner run again?",
        ],
    );
}

// ---------------------------------------------------------------------------
// schema_migrations tables (the lesson's hand-written runner)

/// The lesson's bootstrap file, `000_create_schema_migrations.sql`.
const BOOTSTRAP: &str = "BEGIN;
CREATE TABLE schema_migrations (
    version TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TEXT NOT NULL DEFAULT (datetime('now'))
);
INSERT INTO schema_migrations (version, name) VALUES ('000', 'create_schema_migrations');
COMMIT;
";

/// The lesson's file `NNN_name.sql`: its SQL and its own row, in its own
/// transaction.
fn lesson_file(number: usize, name: &str, sql: &str) -> String {
    format!(
        "BEGIN;\n{sql}INSERT INTO schema_migrations (version, name) VALUES ('{number:03}', '{name}');\nCOMMIT;\n"
    )
}

/// The lesson's runner: the bootstrap file, then every file whose version
/// is not in the table yet.
fn schema_migrations_database() -> TempDb {
    let db = TempDb::new();
    let conn = db.open();
    conn.execute_batch(BOOTSTRAP).unwrap();
    for (index, (name, sql)) in STEPS.iter().take(RAN).enumerate() {
        conn.execute_batch(&lesson_file(index + 1, name, sql))
            .unwrap();
    }
    conn.execute_batch(DATA).unwrap();
    db
}

fn schema_migrations() -> Legacy {
    Legacy::SchemaMigrations {
        table: "schema_migrations".to_owned(),
    }
}

/// The lesson's directory with its bootstrap file kept, as the embed of it
/// runs: version 000 is migration 0, and every file still writes its row.
fn lesson_with_bootstrap() -> Migrator {
    let strip = |file: &str| {
        file.trim_start_matches("BEGIN;\n")
            .trim_end_matches("COMMIT;\n")
            .to_owned()
    };
    let mut m = Migrator::new().add(0, "create_schema_migrations", {
        let sql = strip(BOOTSTRAP);
        move |tx: &Transaction| tx.execute_batch(&sql)
    });
    for (index, (name, sql)) in STEPS.iter().enumerate() {
        let sql = strip(&lesson_file(index + 1, name, sql));
        m = m.add(index as u32 + 1, *name, move |tx: &Transaction| {
            tx.execute_batch(&sql)
        });
    }
    m
}

#[test]
fn schema_migrations_with_its_bootstrap_file_in_the_set_is_adopted() {
    let db = schema_migrations_database();
    let m = lesson_with_bootstrap();
    let mut conn = db.open();
    let adopted = m.adopt(&mut conn, schema_migrations()).expect("adopt");
    let names: Vec<&str> = adopted.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "create_schema_migrations",
            "create_users",
            "create_posts",
            "add_tags"
        ]
    );
    let before = snapshot(&db);
    assert_eq!(m.adopt(&mut conn, schema_migrations()).unwrap(), vec![]);
    assert_untouched(&db, &before);

    // The new file records itself, as the lesson's files do: the two
    // histories still agree, and adopting on the next start changes nothing.
    assert_eq!(m.migrate(&mut conn).unwrap().ids(), vec![4]);
    assert_eq!(count(&conn, "schema_migrations"), 5);
    assert_data_survived(&conn);
    let before = snapshot(&db);
    assert_eq!(m.adopt(&mut conn, schema_migrations()).unwrap(), vec![]);
    assert_untouched(&db, &before);
}

#[test]
fn schema_migrations_without_its_bootstrap_file_is_adopted() {
    let db = schema_migrations_database();
    switch(
        &db,
        &ours(),
        schema_migrations(),
        Some("schema_migrations"),
        "Legacy::SchemaMigrations",
    );
}

#[test]
fn schema_migrations_timestamps_are_kept_in_utc() {
    let db = schema_migrations_database();
    let mut conn = db.open();
    let stored: Vec<String> = conn
        .prepare("SELECT applied_at FROM schema_migrations WHERE version <> '000' ORDER BY version")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let adopted = ours().adopt(&mut conn, schema_migrations()).unwrap();
    let applied_at: Vec<String> = adopted.into_iter().map(|a| a.applied_at).collect();
    let expected: Vec<String> = stored
        .iter()
        .map(|s| format!("{}Z", s.replace(' ', "T")))
        .collect();
    assert_eq!(applied_at, expected);
}

#[test]
fn schema_migrations_on_a_new_database_adopt_then_migrate_then_adopt() {
    // Start-up code on a new install: adopt (nothing to adopt), migrate
    // (the bootstrap file creates the table, every file records itself),
    // then adopt on the next start: the histories agree.
    let db = TempDb::new();
    let m = lesson_with_bootstrap();
    let mut conn = db.open();
    assert_eq!(m.adopt(&mut conn, schema_migrations()).unwrap(), vec![]);
    assert!(db.bytes().is_empty(), "adopt wrote to a new database");
    assert_eq!(m.migrate(&mut conn).unwrap().ids().len(), 5);
    assert_eq!(count(&conn, "schema_migrations"), 5);
    let before = snapshot(&db);
    assert_eq!(m.adopt(&mut conn, schema_migrations()).unwrap(), vec![]);
    assert_untouched(&db, &before);
}

#[test]
fn schema_migrations_with_other_names_is_refused() {
    let db = schema_migrations_database();
    db.open()
        .execute(
            "UPDATE schema_migrations SET name = 'make_posts' WHERE version = '002'",
            [],
        )
        .unwrap();
    assert_refused(
        &db,
        &ours(),
        schema_migrations(),
        &[
            "migration 1 is `create_posts` here",
            "applied `make_posts` (version 002)",
            "give it back the name it was applied under",
        ],
    );
}

#[test]
fn schema_migrations_with_a_set_that_starts_elsewhere_is_refused() {
    let db = schema_migrations_database();
    let m = named(&["init", "create_posts"]);
    assert_refused(
        &db,
        &m,
        schema_migrations(),
        &[
            "migration 0 is `init` here",
            "applied `create_users` (version 001)",
            "counts as migration 0 only when this set starts with the bootstrap file",
        ],
    );
}

#[test]
fn schema_migrations_missing_a_row_is_refused() {
    let db = schema_migrations_database();
    db.open()
        .execute("DELETE FROM schema_migrations WHERE version = '001'", [])
        .unwrap();
    assert_refused(
        &db,
        &ours(),
        schema_migrations(),
        &[
            "this set has migration 0 `create_users`",
            "before `create_posts` (version 002), which the runner never applied",
            "one that did run needs its row back in the runner's table",
        ],
    );
}

#[test]
fn schema_migrations_whose_bootstrap_cannot_be_told_apart_is_refused() {
    let db = schema_migrations_database();
    db.open()
        .execute(
            "UPDATE schema_migrations SET name = 'create_schema_migrations' WHERE version = '001'",
            [],
        )
        .unwrap();
    assert_refused(
        &db,
        &lesson_with_bootstrap(),
        schema_migrations(),
        &[
            "versions 000 and 001 are both named `create_schema_migrations`",
            "adopt cannot tell whether this set starts with the bootstrap file",
            "give each row of \"schema_migrations\" the name of its file",
        ],
    );
}

#[test]
fn schema_migrations_version_that_is_not_a_number_is_refused() {
    let db = schema_migrations_database();
    db.open()
        .execute(
            "INSERT INTO schema_migrations (version, name) VALUES ('4b', 'x')",
            [],
        )
        .unwrap();
    assert_refused(
        &db,
        &ours(),
        schema_migrations(),
        &[
            "a version is \"4b\", not a number",
            "fix or delete that row",
        ],
    );
}

// ---------------------------------------------------------------------------
// fastlite-migrations (Python)

/// What fastlite-migrations leaves (REFERENCES.md): its table, and per
/// migration, in one transaction, its row and then its function.
fn fastlite_database() -> TempDb {
    let db = TempDb::new();
    let mut conn = db.open();
    conn.execute_batch(
        "CREATE TABLE migrations (
            id INTEGER PRIMARY KEY,
            name TEXT,
            inserted_at TEXT DEFAULT CURRENT_TIMESTAMP NOT NULL
        ) STRICT;",
    )
    .unwrap();
    for (id, (name, sql)) in STEPS.iter().take(RAN).enumerate() {
        let tx = conn.transaction().unwrap();
        tx.execute(
            "INSERT INTO migrations (id, name) VALUES (?1, ?2)",
            params![id as i64, name],
        )
        .unwrap();
        tx.execute_batch(sql).unwrap();
        tx.commit().unwrap();
    }
    conn.execute(
        "UPDATE migrations SET inserted_at = '2024-01-02 03:04:05' WHERE id = 0",
        [],
    )
    .unwrap();
    conn.execute_batch(DATA).unwrap();
    db
}

#[test]
fn fastlite_database_is_upgraded_in_place() {
    let db = fastlite_database();
    // Its table has our table's name: upgraded in place, so not compared
    // after the switch.
    switch(&db, &ours(), Legacy::Fastlite, None, "Legacy::Fastlite");
    let conn = db.open();
    let leftovers = common::query_i64(
        &conn,
        "SELECT count(*) FROM sqlite_master WHERE name LIKE 'migrations_%'",
    );
    assert_eq!(leftovers, 0, "the old table is gone");
    assert_eq!(
        ours().applied_migrations(&conn).unwrap()[0].applied_at,
        "2024-01-02T03:04:05Z"
    );
}

#[test]
fn fastlite_table_is_left_alone_when_ours_has_another_name() {
    let db = fastlite_database();
    let m = steps(Migrator::new().table("app_migrations"), STEPS.len());
    let mut conn = db.open();
    let theirs = table_state(&conn, "migrations");
    assert_eq!(m.adopt(&mut conn, Legacy::Fastlite).unwrap().len(), RAN);
    let before = snapshot(&db);
    assert_eq!(m.adopt(&mut conn, Legacy::Fastlite).unwrap(), vec![]);
    assert_untouched(&db, &before);
    assert_eq!(m.migrate(&mut conn).unwrap().ids(), vec![3]);
    assert_eq!(table_state(&conn, "migrations"), theirs);
    assert_data_survived(&conn);
}

#[test]
fn fastlite_with_other_names_or_gaps_is_refused() {
    let db = fastlite_database();
    db.open()
        .execute("UPDATE migrations SET name = 'users' WHERE id = 0", [])
        .unwrap();
    assert_refused(
        &db,
        &ours(),
        Legacy::Fastlite,
        &[
            "migration 0 is `create_users` here",
            "applied `users` (id 0)",
        ],
    );
    db.open()
        .execute(
            "UPDATE migrations SET name = 'create_users', id = 5 WHERE id = 0",
            [],
        )
        .unwrap();
    assert_refused(
        &db,
        &ours(),
        Legacy::Fastlite,
        &[
            "ids are not contiguous from 0: expected 0, found 1",
            "restore it",
        ],
    );
}

// ---------------------------------------------------------------------------
// sqlx

/// launchbadge/sqlx, `sqlx-sqlite/src/migrate.rs`, `ensure_migrations_table`.
const SQLX_TABLE: &str = "
CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    success BOOLEAN NOT NULL,
    checksum BLOB NOT NULL,
    execution_time BIGINT NOT NULL
);
";

/// The sqlx files' versions (`20240101120000_create_users.sql`, …).
const SQLX_VERSIONS: [i64; 4] = [
    20240101120000,
    20240102120000,
    20240103120000,
    20240104120000,
];

/// SHA-384 of each file's SQL, as sqlx stores it
/// (`sqlx-core/src/migrate/migration.rs`); computed with `sha384sum`.
const SQLX_CHECKSUMS: [&str; 3] = [
    "9378e190639df961241b5a661bbfda7754e3247ad1e3f11bbf00346bce46c7f80b13d5df78e4fd035183e051281cfc2e",
    "13106b2ec154d5996e32d21016b69c5a28936f920b55fcaa549b48e3e2db6ca59cb876eb91397c184e16701c53aaf462",
    "7d569bdd29000d591a4aca420fefd0bab50be931caf61f6422fe8a684dc5d5d5166fe4a269a0a8ee70ea71aa11d9d85b",
];

/// `sqlx migrate run` on SQLite (`sqlx-sqlite/src/migrate.rs`, `apply`):
/// the file and its row (description: the name with `_` as spaces,
/// `sqlx-core/src/migrate/source.rs`) in one transaction, then the
/// execution time.
fn sqlx_database() -> TempDb {
    let db = TempDb::new();
    let mut conn = db.open();
    conn.execute_batch(SQLX_TABLE).unwrap();
    for (index, (name, sql)) in STEPS.iter().take(RAN).enumerate() {
        let version = SQLX_VERSIONS[index];
        let tx = conn.transaction().unwrap();
        tx.execute_batch(sql).unwrap();
        tx.execute(
            "INSERT INTO _sqlx_migrations ( version, description, success, checksum, execution_time )
    VALUES ( ?1, ?2, TRUE, ?3, -1 )",
            params![version, name.replace('_', " "), hex(SQLX_CHECKSUMS[index])],
        )
        .unwrap();
        tx.commit().unwrap();
        conn.execute(
            "UPDATE _sqlx_migrations SET execution_time = ?1 WHERE version = ?2",
            params![1_234_567_i64 * (index as i64 + 1), version],
        )
        .unwrap();
    }
    conn.execute_batch(DATA).unwrap();
    db
}

#[test]
fn sqlx_database_is_adopted() {
    let db = sqlx_database();
    let conn = db.open();
    let installed_on: Vec<String> = conn
        .prepare("SELECT installed_on FROM _sqlx_migrations ORDER BY version")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    drop(conn);
    switch(
        &db,
        &ours(),
        Legacy::Sqlx,
        Some("_sqlx_migrations"),
        "Legacy::Sqlx",
    );
    let applied_at: Vec<String> = ours()
        .applied_migrations(&db.open())
        .unwrap()
        .into_iter()
        .take(RAN)
        .map(|a| a.applied_at)
        .collect();
    let expected: Vec<String> = installed_on
        .iter()
        .map(|s| format!("{}Z", s.replace(' ', "T")))
        .collect();
    assert_eq!(applied_at, expected, "installed_on becomes applied_at");
}

#[test]
fn sqlx_adopted_database_agrees_in_pending_status_and_migrate() {
    let db = sqlx_database();
    let mut conn = db.open();
    let m = ours();
    m.adopt(&mut conn, Legacy::Sqlx).unwrap();
    let pending: Vec<u32> = m
        .pending_migrations(&conn)
        .unwrap()
        .iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(pending, vec![3]);
    let states: Vec<MigrationState> = m
        .status(&conn)
        .unwrap()
        .into_iter()
        .map(|s| s.state)
        .collect();
    assert_eq!(
        states,
        vec![
            MigrationState::Applied,
            MigrationState::Applied,
            MigrationState::Applied,
            MigrationState::Pending
        ]
    );
    assert_eq!(m.migrate(&mut conn).unwrap().ids(), pending);
    assert!(m.pending_migrations(&conn).unwrap().is_empty());
    assert!(m
        .status(&conn)
        .unwrap()
        .iter()
        .all(|s| s.state == MigrationState::Applied));
    assert!(m.migrate(&mut conn).unwrap().is_empty());
}

#[test]
fn sqlx_failed_migration_is_refused() {
    let db = sqlx_database();
    db.open()
        .execute(
            "UPDATE _sqlx_migrations SET success = FALSE WHERE version = ?1",
            [SQLX_VERSIONS[2]],
        )
        .unwrap();
    assert_refused(
        &db,
        &ours(),
        Legacy::Sqlx,
        &[
            "version 20240103120000 `add tags` is recorded as failed (success = false)",
            "dirty",
            "then adopt",
        ],
    );
}

#[test]
fn sqlx_migrations_missing_from_the_binary_are_refused() {
    let db = sqlx_database();
    assert_refused(
        &db,
        &steps(Migrator::new(), 2),
        Legacy::Sqlx,
        &[
            "sqlx applied 3 migration(s) but the default set has only 2",
            "version 20240103120000 `add tags` is missing from this binary",
            "ids = \"sorted\"",
        ],
    );
}

#[test]
fn sqlx_migration_added_with_an_older_version_is_refused() {
    // A branch merged a migration whose version is older than applied ones:
    // sorted, it lands before them, so every id after it would move.
    let db = sqlx_database();
    let m = named(&["create_users", "add_avatars", "create_posts", "add_tags"]);
    assert_refused(
        &db,
        &m,
        Legacy::Sqlx,
        &[
            "this set has migration 1 `add_avatars`",
            "before `create_posts` (version 20240102120000), which sqlx never applied",
            "needs a version newer than the newest applied one (version 20240103120000)",
        ],
    );
}

#[test]
fn sqlx_run_again_after_adoption_is_refused() {
    let db = sqlx_database();
    let mut conn = db.open();
    ours().adopt(&mut conn, Legacy::Sqlx).unwrap();
    // The old build ran `sqlx migrate run` with a migration of its own.
    conn.execute(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (?1, 'add likes', TRUE, zeroblob(48), 1000)",
        [SQLX_VERSIONS[3]],
    )
    .unwrap();
    drop(conn);
    assert_refused(
        &db,
        &ours(),
        Legacy::Sqlx,
        &[
            "sqlx records 4 applied migration(s), the tracking table \"migrations\" only 3",
            "version 20240104120000 `add likes`",
            "two tools migrate this database",
            "drop the table \"migrations\" and adopt again",
        ],
    );
}

/// Rolling back below the adoption point leaves the other tool's record
/// longer than the history, as the tool running again would: the refusal
/// names both causes and the way out of each, and migrating again (what
/// start-up code does next) makes adopt agree again. Found by a hostile
/// probe: the message blamed sqlx alone and advised dropping the history.
#[test]
fn sqlx_adopted_then_rolled_back_below_the_adoption_is_explained() {
    let db = sqlx_database();
    let mut conn = db.open();
    let m = ours()
        .add_rollback(1, |tx: &Transaction| tx.execute_batch("DROP TABLE posts"))
        .add_rollback(2, |tx: &Transaction| tx.execute_batch("DROP TABLE tags"));
    m.adopt(&mut conn, Legacy::Sqlx).unwrap();
    m.rollback_to(&mut conn, 0).unwrap();
    drop(conn);
    assert_refused(
        &db,
        &m,
        Legacy::Sqlx,
        &[
            "sqlx records 3 applied migration(s), the tracking table \"migrations\" only 1",
            "Either migrate-core rolled them back after adopting",
            "migrate applies them again, after which adopt agrees",
            "remove the adopt call",
        ],
    );
    let mut conn = db.open();
    assert_eq!(m.migrate(&mut conn).unwrap().ids(), vec![1, 2, 3]);
    assert!(m.adopt(&mut conn, Legacy::Sqlx).unwrap().is_empty());
}

#[test]
fn sqlx_history_disagreeing_with_ours_is_refused() {
    let db = sqlx_database();
    let mut conn = db.open();
    ours().adopt(&mut conn, Legacy::Sqlx).unwrap();
    conn.execute(
        "UPDATE _sqlx_migrations SET description = 'make posts' WHERE version = ?1",
        [SQLX_VERSIONS[1]],
    )
    .unwrap();
    drop(conn);
    assert_refused(
        &db,
        &ours(),
        Legacy::Sqlx,
        &[
            "migration 1 is `create_posts` in the tracking table \"migrations\"",
            "sqlx recorded `make posts` (version 20240102120000)",
            "the two histories disagree",
        ],
    );
}

// ---------------------------------------------------------------------------
// diesel

/// diesel-rs/diesel, `diesel/src/migration/setup_migration_table.sql`.
const DIESEL_TABLE: &str = "CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (
       version VARCHAR(50) PRIMARY KEY NOT NULL,
       run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
";

/// `diesel migration run` (`diesel_migrations/src/migration_harness.rs`,
/// `run_migration`): per directory `2024-01-0N-120000_name/up.sql`, in one
/// transaction, its SQL and its version (the directory's name up to `_`,
/// without dashes: `migrations_internals::version_from_string`).
fn diesel_database() -> TempDb {
    let db = TempDb::new();
    let mut conn = db.open();
    conn.execute_batch(DIESEL_TABLE).unwrap();
    for (index, (name, sql)) in STEPS.iter().take(RAN).enumerate() {
        let directory = format!("2024-01-0{}-120000_{name}", index + 1);
        let version = directory.split('_').next().unwrap().replace('-', "");
        let tx = conn.transaction().unwrap();
        tx.execute_batch(sql).unwrap();
        tx.execute(
            "INSERT INTO `__diesel_schema_migrations` (`version`) VALUES (?)",
            [&version],
        )
        .unwrap();
        tx.commit().unwrap();
    }
    conn.execute_batch(DATA).unwrap();
    db
}

#[test]
fn diesel_database_is_adopted() {
    let db = diesel_database();
    let versions: Vec<String> = db
        .open()
        .prepare("SELECT version FROM __diesel_schema_migrations ORDER BY version")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        versions,
        ["20240101120000", "20240102120000", "20240103120000"]
    );
    switch(
        &db,
        &ours(),
        Legacy::Diesel,
        Some("__diesel_schema_migrations"),
        "Legacy::Diesel",
    );
}

#[test]
fn diesel_migrations_missing_from_the_binary_are_refused() {
    let db = diesel_database();
    assert_refused(
        &db,
        &steps(Migrator::new(), 1),
        Legacy::Diesel,
        &[
            "diesel applied 3 migration(s) but the default set has only 1",
            "version 20240102120000, version 20240103120000 are missing from this binary",
        ],
    );
}

// diesel_cli 2.2 names new migrations `YYYY-MM-DD-HHMMSS-0000` (18 digits)
// next to older `YYYY-MM-DD-HHMMSS` ones (14 digits): diesel orders their
// versions as strings (date order), and so must the embedded directory.
embed_migrations!(
    "tests/fixtures/adopt/diesel_mixed_versions",
    set = "diesel_mixed",
    ids = "sorted"
);

const DIESEL_MIXED: &str = "tests/fixtures/adopt/diesel_mixed_versions";

/// The directories of [`DIESEL_MIXED`] in the order diesel runs them: by
/// version (the name up to `_`, without dashes), compared as strings.
fn diesel_mixed_order() -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = std::fs::read_dir(DIESEL_MIXED)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .map(|name| (name.split('_').next().unwrap().replace('-', ""), name))
        .collect();
    found.sort();
    found
}

#[test]
fn diesel_versions_of_both_lengths_are_adopted_in_diesels_order() {
    let order = diesel_mixed_order();
    let versions: Vec<&str> = order.iter().map(|(v, _)| v.as_str()).collect();
    assert_eq!(
        versions,
        [
            "20251101120000",
            "202512081354280000",
            "20260115090000",
            "202602011000000000"
        ]
    );
    // diesel ran the first three, in its order.
    let db = TempDb::new();
    let mut conn = db.open();
    conn.execute_batch(DIESEL_TABLE).unwrap();
    for (version, directory) in order.iter().take(RAN) {
        let sql = std::fs::read_to_string(format!("{DIESEL_MIXED}/{directory}/up.sql")).unwrap();
        let tx = conn.transaction().unwrap();
        tx.execute_batch(&sql).unwrap();
        tx.execute(
            "INSERT INTO `__diesel_schema_migrations` (`version`) VALUES (?)",
            [version],
        )
        .unwrap();
        tx.commit().unwrap();
    }
    conn.execute_batch(DATA).unwrap();
    let theirs = table_state(&conn, "__diesel_schema_migrations");

    // The embedded set numbers them as diesel orders them.
    let m = Migrator::new().set("diesel_mixed");
    let names: Vec<String> = m
        .pending_migrations(&Connection::open_in_memory().unwrap())
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    let expected: Vec<&str> = STEPS.iter().map(|(name, _)| *name).collect();
    assert_eq!(names, expected);

    let adopted = m.adopt(&mut conn, Legacy::Diesel).expect("adopt");
    let adopted: Vec<(u32, &str)> = adopted.iter().map(|a| (a.id, a.name.as_str())).collect();
    assert_eq!(
        adopted,
        [(0, "create_users"), (1, "create_posts"), (2, "add_tags")]
    );
    assert_eq!(m.migrate(&mut conn).expect("migrate").ids(), [3]);
    assert_data_survived(&conn);
    assert_eq!(table_state(&conn, "__diesel_schema_migrations"), theirs);
    let before = snapshot(&db);
    assert_eq!(m.adopt(&mut conn, Legacy::Diesel).expect("again"), vec![]);
    assert_untouched(&db, &before);
}

// ---------------------------------------------------------------------------
// refinery

/// rust-db/refinery, `refinery_core/src/executor/mod.rs`,
/// `ASSERT_MIGRATIONS_TABLE_QUERY` with the default table name.
const REFINERY_TABLE: &str = "CREATE TABLE IF NOT EXISTS refinery_schema_history(
             version INT4 PRIMARY KEY,
             name VARCHAR(255),
             applied_on VARCHAR(255),
             checksum VARCHAR(255));";

/// When refinery applied each file: `OffsetDateTime::now_utc()` formatted
/// as RFC 3339 (`refinery_core/src/migration.rs`, `set_applied`).
const REFINERY_APPLIED_ON: [&str; 3] = [
    "2024-03-01T10:00:00.123456789Z",
    "2024-03-02T11:30:00.5Z",
    "2024-03-03T12:45:59Z",
];

/// refinery's checksum: SipHash-1-3 of the name, the version (i32) and the
/// SQL (`refinery_core/src/migration.rs`, `Migration::unapplied`).
fn refinery_checksum(name: &str, version: i32, sql: &str) -> u64 {
    let mut hasher = siphasher::sip::SipHasher13::new();
    name.hash(&mut hasher);
    version.hash(&mut hasher);
    sql.hash(&mut hasher);
    hasher.finish()
}

/// refinery's rusqlite runner, not grouped (`refinery_core/src/executor/exec.rs`
/// and `drivers/rusqlite.rs`): each file `V{n}__name.sql` in a transaction,
/// then `insert_migration_query` in another.
fn refinery_database() -> TempDb {
    let db = TempDb::new();
    let mut conn = db.open();
    conn.execute_batch(REFINERY_TABLE).unwrap();
    for (index, (name, sql)) in STEPS.iter().take(RAN).enumerate() {
        let version = index as i32 + 1;
        let tx = conn.transaction().unwrap();
        tx.execute_batch(sql).unwrap();
        tx.commit().unwrap();
        let tx = conn.transaction().unwrap();
        tx.execute_batch(&format!(
            "INSERT INTO {} (version, name, applied_on, checksum) VALUES ({}, '{}', '{}', '{}')",
            "refinery_schema_history",
            version,
            name,
            REFINERY_APPLIED_ON[index],
            refinery_checksum(name, version, sql)
        ))
        .unwrap();
        tx.commit().unwrap();
    }
    conn.execute_batch(DATA).unwrap();
    db
}

#[test]
fn refinery_database_is_adopted_with_its_timestamps() {
    let db = refinery_database();
    switch(
        &db,
        &ours(),
        Legacy::Refinery,
        Some("refinery_schema_history"),
        "Legacy::Refinery",
    );
    let applied_at: Vec<String> = ours()
        .applied_migrations(&db.open())
        .unwrap()
        .into_iter()
        .take(RAN)
        .map(|a| a.applied_at)
        .collect();
    assert_eq!(applied_at, REFINERY_APPLIED_ON);
}

#[test]
fn refinery_local_time_is_converted_to_utc() {
    // Releases that used chrono stored local time with its offset.
    let db = refinery_database();
    db.open()
        .execute(
            "UPDATE refinery_schema_history SET applied_on = '2021-06-01T09:00:00.250+02:00' \
             WHERE version = 1",
            [],
        )
        .unwrap();
    let adopted = ours().adopt(&mut db.open(), Legacy::Refinery).unwrap();
    assert_eq!(adopted[0].applied_at, "2021-06-01T07:00:00.250Z");
}

#[test]
fn refinery_renamed_migration_is_refused() {
    let db = refinery_database();
    let m = named(&["create_users", "create_articles", "add_tags"]);
    assert_refused(
        &db,
        &m,
        Legacy::Refinery,
        &[
            "migration 1 is `create_articles` here",
            "refinery applied `create_posts` (V2)",
            "give it back the name it was applied under",
        ],
    );
}

// ---------------------------------------------------------------------------
// Any tool

fn every_legacy() -> Vec<Legacy> {
    vec![
        Legacy::UserVersion { first_file: 1 },
        schema_migrations(),
        Legacy::Fastlite,
        Legacy::Sqlx,
        Legacy::Diesel,
        Legacy::Refinery,
    ]
}

#[test]
fn new_database_adopt_changes_nothing_then_migrate_then_adopt_again() {
    for legacy in every_legacy() {
        let db = TempDb::new();
        let mut conn = db.open();
        assert_eq!(
            ours().adopt(&mut conn, legacy.clone()).unwrap(),
            vec![],
            "{legacy:?}"
        );
        assert!(
            db.bytes().is_empty(),
            "{legacy:?}: adopt wrote to a new database"
        );
        assert_eq!(ours().migrate(&mut conn).unwrap().ids().len(), STEPS.len());
        let before = snapshot(&db);
        assert_eq!(
            ours().adopt(&mut conn, legacy.clone()).unwrap(),
            vec![],
            "{legacy:?}"
        );
        assert_untouched(&db, &before);
    }
}

#[test]
fn a_database_we_built_is_left_alone() {
    let db = TempDb::new();
    let mut conn = db.open();
    ours().migrate_to(&mut conn, 1).unwrap();
    drop(conn);
    for legacy in every_legacy() {
        let before = snapshot(&db);
        let again = ours().adopt(&mut db.open(), legacy.clone());
        assert_eq!(again.unwrap(), vec![], "{legacy:?}");
        assert_untouched(&db, &before);
    }
}

#[test]
fn a_database_built_without_the_tool_is_refused_with_advice() {
    let db = TempDb::new();
    db.open()
        .execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY);")
        .unwrap();
    assert_refused(
        &db,
        &ours(),
        Legacy::Sqlx,
        &[
            "\"_sqlx_migrations\" does not exist, so sqlx did not build this database",
            "it has tables (users)",
            "Migrator::baseline(conn, N)",
        ],
    );
    // Another tool's table is named, with the variant that reads it.
    let db = diesel_database();
    assert_refused(
        &db,
        &ours(),
        Legacy::Sqlx,
        &[
            "sqlx did not build this database",
            "Legacy::Diesel reads the table",
        ],
    );
}

#[test]
fn an_empty_table_of_the_tool_becomes_an_empty_history() {
    // sqlx ran with no migration yet: its table exists and is empty.
    let db = TempDb::new();
    let mut conn = db.open();
    conn.execute_batch(SQLX_TABLE).unwrap();
    assert_eq!(ours().adopt(&mut conn, Legacy::Sqlx).unwrap(), vec![]);
    assert_eq!(ours().migrate(&mut conn).unwrap().ids().len(), STEPS.len());
    let before = snapshot(&db);
    assert_eq!(ours().adopt(&mut conn, Legacy::Sqlx).unwrap(), vec![]);
    assert_untouched(&db, &before);
}

#[test]
fn a_second_process_adopting_finds_it_done() {
    let db = sqlx_database();
    let mut first = db.open();
    let mut second = db.open();
    assert_eq!(ours().adopt(&mut first, Legacy::Sqlx).unwrap().len(), RAN);
    let before = snapshot(&db);
    assert_eq!(ours().adopt(&mut second, Legacy::Sqlx).unwrap(), vec![]);
    assert_untouched(&db, &before);
}

#[test]
fn adopting_again_works_on_a_read_only_connection() {
    let db = sqlx_database();
    ours().adopt(&mut db.open(), Legacy::Sqlx).unwrap();
    let mut read_only =
        Connection::open_with_flags(&db.path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    assert_eq!(ours().adopt(&mut read_only, Legacy::Sqlx).unwrap(), vec![]);
    // A disagreement is reported as such, not as a read-only connection.
    db.open()
        .execute(
            "UPDATE _sqlx_migrations SET description = 'make posts' WHERE version = ?1",
            [SQLX_VERSIONS[1]],
        )
        .unwrap();
    let refused = ours().adopt(&mut read_only, Legacy::Sqlx).unwrap_err();
    assert!(matches!(refused, Error::CannotAdopt { .. }), "{refused:?}");
}

/// `adopt`'s read and its write share one lock budget: a lock held across
/// both (exclusive, then reserved) is `Locked` once `lock_timeout` is
/// waited in all, not after twice that.
#[test]
fn adopt_waits_within_one_lock_timeout() {
    use std::sync::mpsc;
    use std::time::Duration;
    let db = user_version_database();
    let before = snapshot(&db);
    let (held, lock_taken) = mpsc::channel::<()>();
    let path = db.path.clone();
    let holder = std::thread::spawn(move || {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("BEGIN EXCLUSIVE").unwrap();
        held.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        conn.execute_batch("COMMIT; BEGIN IMMEDIATE").unwrap();
        std::thread::sleep(Duration::from_millis(300));
        conn.execute_batch("COMMIT").unwrap();
    });
    lock_taken.recv().unwrap();
    let result = ours()
        .lock_timeout(Duration::from_millis(400))
        .adopt(&mut db.open(), Legacy::UserVersion { first_file: 1 });
    holder.join().unwrap();
    assert!(
        matches!(result, Err(Error::Locked { .. })),
        "expected Locked after 400 ms waited in all, got {result:?}"
    );
    assert_untouched(&db, &before);
}

// ---------------------------------------------------------------------------
// goose

/// pressly/goose v3, `internal/dialect/dialectquery/sqlite3.go`.
const GOOSE_TABLE: &str = "CREATE TABLE goose_db_version (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		version_id INTEGER NOT NULL,
		is_applied INTEGER NOT NULL,
		tstamp TIMESTAMP DEFAULT (datetime('now'))
	);
INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, 1);
";

/// `goose up` of files `0000N_name.sql`: per file, in one transaction, its
/// Up section and `(N, true)`. Then the fourth applied and rolled back by
/// an older goose, which recorded the down as `(4, false)` (goose v3
/// deletes the rows instead: the first test's table has both shapes).
fn goose_database() -> TempDb {
    let db = TempDb::new();
    let mut conn = db.open();
    conn.execute_batch(GOOSE_TABLE).unwrap();
    let insert = "INSERT INTO goose_db_version (version_id, is_applied) VALUES (?, ?)";
    for (index, (_, sql)) in STEPS.iter().enumerate() {
        let tx = conn.transaction().unwrap();
        tx.execute_batch(sql).unwrap();
        tx.execute(insert, params![index as i64 + 1, true]).unwrap();
        tx.commit().unwrap();
    }
    let tx = conn.transaction().unwrap();
    tx.execute_batch("DROP TABLE comments").unwrap();
    tx.execute(insert, params![STEPS.len() as i64, false])
        .unwrap();
    tx.commit().unwrap();
    conn.execute_batch(DATA).unwrap();
    db
}

#[test]
fn goose_database_is_adopted() {
    let db = goose_database();
    switch(
        &db,
        &ours(),
        Legacy::Goose,
        Some("goose_db_version"),
        "Legacy::Goose",
    );
}

#[test]
fn goose_versions_rolled_back_by_goose_v3_are_not_adopted() {
    let db = goose_database();
    // goose v3 going down deletes the version's rows: the third is no
    // longer applied (its table dropped by its Down section).
    db.open()
        .execute_batch("DROP TABLE tags; DELETE FROM goose_db_version WHERE version_id = 3;")
        .unwrap();
    let mut conn = db.open();
    let adopted = ours().adopt(&mut conn, Legacy::Goose).unwrap();
    assert_eq!(adopted.iter().map(|a| a.id).collect::<Vec<_>>(), vec![0, 1]);
    assert_eq!(ours().migrate(&mut conn).unwrap().ids(), vec![2, 3]);
}

// goose's own example directory, embedded unchanged: its files' versions
// (1, 2) must be the versions goose applied.
embed_migrations!(
    "tests/fixtures/corpus/pressly__goose/example/migrations",
    set = "goose_example",
    ids = "sorted"
);

#[test]
fn goose_files_must_be_the_versions_goose_applied() {
    let applied_as = |versions: &[i64]| {
        let db = TempDb::new();
        let mut conn = db.open();
        conn.execute_batch(GOOSE_TABLE).unwrap();
        for version in versions {
            conn.execute(
                "INSERT INTO goose_db_version (version_id, is_applied) VALUES (?, 1)",
                [version],
            )
            .unwrap();
        }
        Migrator::new()
            .set("goose_example")
            .adopt(&mut conn, Legacy::Goose)
    };
    let adopted = applied_as(&[1]).unwrap();
    assert_eq!(adopted.iter().map(|a| a.id).collect::<Vec<_>>(), vec![0]);
    let Err(refused) = applied_as(&[1, 3]) else {
        panic!("versions 1 and 3 adopted as files 1 and 2");
    };
    let message = refused.to_string();
    assert!(
        message.contains("version 00002") && message.contains("goose applied version 3"),
        "{message}"
    );
}

/// Rust functions (goose's stand-in for Go migrations) show no version:
/// with versions 1 and 3 applied (goose skipped 2, as `goose up` leaves it
/// when 2 was added after 3 ran), counting would record the function for 2
/// as applied and run the one for 3 again (a probe's finding). Refused,
/// nothing changed; with versions that follow one another it is adopted
/// (`goose_database_is_adopted`).
#[test]
fn goose_versions_with_a_gap_are_refused_for_rust_migrations() {
    let db = TempDb::new();
    {
        let conn = db.open();
        conn.execute_batch(GOOSE_TABLE).unwrap();
        for version in [1, 3] {
            conn.execute(
                "INSERT INTO goose_db_version (version_id, is_applied) VALUES (?, 1)",
                [version],
            )
            .unwrap();
        }
    }
    assert_refused(
        &db,
        &ours(),
        Legacy::Goose,
        &[
            "migration 1 `create_posts`",
            "goose applied versions 1, 3 up to it, which do not follow one another",
            "Migrator::baseline",
        ],
    );
}

/// An `is_applied` goose never writes (it writes 1 or 0) is refused rather
/// than read as "not applied", which ran the migration again (a probe's
/// finding).
#[test]
fn goose_is_applied_values_goose_never_writes_are_refused() {
    for value in ["'yes'", "x'01'", "2", "1.5"] {
        let db = TempDb::new();
        {
            let conn = db.open();
            conn.execute_batch(GOOSE_TABLE).unwrap();
            conn.execute_batch(&format!(
                "INSERT INTO goose_db_version (version_id, is_applied) VALUES (1, 1);
                 INSERT INTO goose_db_version (version_id, is_applied) VALUES (2, {value});"
            ))
            .unwrap();
        }
        assert_refused(
            &db,
            &ours(),
            Legacy::Goose,
            &["version 2 has is_applied", "goose writes 1 or 0"],
        );
    }
}

/// `is_applied` as other SQLite drivers write a bool (text), read as goose
/// means it: the rolled-back version stays out (cargo-mutants found the
/// text forms untested).
#[test]
fn goose_is_applied_written_as_text_is_read() {
    for (yes, no) in [("'true'", "'false'"), ("'t'", "'f'"), ("'1'", "'0'")] {
        let db = goose_database();
        db.open()
            .execute_batch(&format!(
                "UPDATE goose_db_version SET is_applied = CASE is_applied WHEN 1 THEN {yes} \
                 ELSE {no} END"
            ))
            .unwrap();
        let mut conn = db.open();
        let adopted = ours().adopt(&mut conn, Legacy::Goose).unwrap();
        assert_eq!(
            adopted.iter().map(|a| a.id).collect::<Vec<_>>(),
            vec![0, 1, 2],
            "{yes}/{no}"
        );
        assert_eq!(
            ours().migrate(&mut conn).unwrap().ids(),
            vec![3],
            "{yes}/{no}"
        );
    }
}
