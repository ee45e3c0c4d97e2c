//! `TableRebuild`: a column's type changes on a table with an index, a
//! trigger, a view and ON DELETE CASCADE children; nothing may be lost.

use std::sync::Mutex;

use migrate_core::rusqlite::{Connection, Transaction};
use migrate_core::{migration, Error, Migrator, RebuildReport, TableRebuild};
use tempfile::TempDir;

const SCHEMA: &str = "
    CREATE TABLE posts (id INTEGER PRIMARY KEY, title TEXT NOT NULL, views TEXT);
    CREATE INDEX posts_title ON posts (title);
    CREATE TABLE log (note TEXT);
    CREATE TRIGGER posts_touch AFTER UPDATE ON posts BEGIN
        INSERT INTO log (note) VALUES ('touched ' || new.id);
    END;
    CREATE VIEW popular AS SELECT title FROM posts WHERE views > 10;
    CREATE TABLE comments (
        id INTEGER PRIMARY KEY,
        post_id INTEGER NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
        body TEXT
    );
    CREATE TRIGGER comments_count AFTER INSERT ON comments BEGIN
        UPDATE posts SET title = title WHERE id = new.post_id;
    END;
    INSERT INTO posts (id, title, views) VALUES (1, 'one', '5'), (2, 'two', '50'), (3, 'three', NULL);
    INSERT INTO comments (post_id, body) VALUES (1, 'a'), (1, 'b'), (2, 'c'), (3, 'd');
";

/// The reports the migrations produced, for the tests to look at.
static REPORTS: Mutex<Vec<(&'static str, RebuildReport)>> = Mutex::new(Vec::new());

fn keep(set: &'static str, report: RebuildReport) {
    REPORTS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((set, report));
}

fn report_of(set: &str) -> RebuildReport {
    let reports = REPORTS.lock().unwrap_or_else(|e| e.into_inner());
    reports
        .iter()
        .rev()
        .find(|(s, _)| *s == set)
        .map(|(_, r)| r.clone())
        .expect("a report")
}

#[migration(0, set = "retype")]
fn retype_schema(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    tx.execute_batch(SCHEMA)
}

#[migration(1, set = "retype", foreign_keys = off)]
fn views_to_integer(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    let report = TableRebuild::new("posts")
        .definition("id INTEGER PRIMARY KEY, title TEXT NOT NULL, views INTEGER NOT NULL DEFAULT 0")
        .map("views", "coalesce(CAST(views AS INTEGER), 0)")
        .run(tx)?;
    keep("retype", report);
    Ok(())
}

#[migration(0, set = "drop_title")]
fn drop_title_schema(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    tx.execute_batch(SCHEMA)
}

#[migration(1, set = "drop_title", foreign_keys = off)]
fn drop_title(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    let report = TableRebuild::new("posts")
        .definition("id INTEGER PRIMARY KEY, views TEXT")
        .run(tx)?;
    keep("drop_title", report);
    Ok(())
}

#[migration(0, set = "fk_on")]
fn fk_on_schema(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    tx.execute_batch(SCHEMA)
}

// Forgot `foreign_keys = off`: the rebuild must refuse rather than let the
// cascade delete the comments.
#[migration(1, set = "fk_on")]
fn rebuild_with_foreign_keys_on(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    TableRebuild::new("posts")
        .definition("id INTEGER PRIMARY KEY, title TEXT NOT NULL, views INTEGER")
        .run(tx)
        .map(|_| ())
}

fn open(dir: &TempDir) -> Connection {
    let conn = Connection::open(dir.path().join("rebuild.db")).expect("open");
    conn.execute_batch("PRAGMA foreign_keys = ON")
        .expect("fk on");
    conn
}

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).expect(sql)
}

fn schema_of(conn: &Connection, name: &str) -> Option<String> {
    conn.query_row(
        "SELECT sql FROM sqlite_master WHERE name = ?1",
        [name],
        |r| r.get(0),
    )
    .ok()
}

#[test]
fn retyping_a_column_keeps_rows_children_indexes_triggers_and_views() {
    let dir = TempDir::new().expect("tempdir");
    let mut conn = open(&dir);
    Migrator::new()
        .set("retype")
        .migrate(&mut conn)
        .expect("migrate");
    let report = report_of("retype");
    assert_eq!(report.rows, 3);
    assert_eq!(
        report.recreated,
        vec!["posts_title".to_owned(), "posts_touch".to_owned()]
    );
    assert!(report.not_recreated.is_empty(), "{report:?}");
    assert!(report.broken_views.is_empty(), "{report:?}");

    // The table has its new definition and its data, converted.
    let sql = schema_of(&conn, "posts").expect("posts");
    assert!(sql.contains("views INTEGER NOT NULL DEFAULT 0"), "{sql}");
    assert!(
        sql.starts_with("CREATE TABLE \"posts\"") || sql.starts_with("CREATE TABLE posts"),
        "{sql}"
    );
    let views: Vec<(i64, String)> = conn
        .prepare("SELECT views, typeof(views) FROM posts ORDER BY id")
        .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
        .expect("views");
    assert_eq!(
        views,
        vec![
            (5, "integer".into()),
            (50, "integer".into()),
            (0, "integer".into())
        ]
    );

    // Nothing cascaded: every comment is still there, and still valid.
    assert_eq!(count(&conn, "SELECT count(*) FROM comments"), 4);
    assert_eq!(
        count(&conn, "SELECT count(*) FROM pragma_foreign_key_check"),
        0
    );

    // Index, triggers and view work on the new table.
    assert!(schema_of(&conn, "posts_title").is_some());
    conn.execute("DELETE FROM log", [])
        .expect("clear the log of the initial inserts");
    conn.execute("UPDATE posts SET title = 'uno' WHERE id = 1", [])
        .expect("update");
    assert_eq!(
        count(&conn, "SELECT count(*) FROM log WHERE note = 'touched 1'"),
        1
    );
    conn.execute("INSERT INTO comments (post_id, body) VALUES (2, 'e')", [])
        .expect("insert");
    assert_eq!(
        count(&conn, "SELECT count(*) FROM log WHERE note = 'touched 2'"),
        1
    );
    let popular: String = conn
        .query_row("SELECT title FROM popular", [], |r| r.get(0))
        .expect("view");
    assert_eq!(popular, "two");

    // And the cascade is still wired to the new table.
    conn.execute("DELETE FROM posts WHERE id = 1", [])
        .expect("delete");
    assert_eq!(
        count(&conn, "SELECT count(*) FROM comments WHERE post_id = 1"),
        0
    );
}

#[test]
fn what_no_longer_applies_is_reported() {
    let dir = TempDir::new().expect("tempdir");
    let mut conn = open(&dir);
    Migrator::new()
        .set("drop_title")
        .migrate(&mut conn)
        .expect("migrate");
    let report = report_of("drop_title");
    let not_recreated: Vec<&str> = report
        .not_recreated
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(not_recreated, vec!["posts_title"], "{report:?}");
    assert!(report.not_recreated[0].1.contains("title"), "{report:?}");
    assert_eq!(report.recreated, vec!["posts_touch".to_owned()]);
    let broken: Vec<&str> = report
        .broken_views
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(broken, vec!["popular"]);
    assert!(schema_of(&conn, "posts_title").is_none());
    assert_eq!(count(&conn, "SELECT count(*) FROM comments"), 4);
    assert_eq!(count(&conn, "SELECT count(*) FROM posts"), 3);
}

#[test]
fn rebuilding_with_foreign_keys_on_is_refused_and_loses_nothing() {
    let dir = TempDir::new().expect("tempdir");
    let mut conn = open(&dir);
    let error = Migrator::new()
        .set("fk_on")
        .migrate(&mut conn)
        .expect_err("refused");
    match &error {
        Error::Failed { id: 1, source, .. } => {
            assert!(
                source.to_string().contains("foreign_keys = off"),
                "{source}"
            );
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    assert_eq!(count(&conn, "SELECT count(*) FROM comments"), 4);
    assert!(schema_of(&conn, "migrate_core_rebuild_posts").is_none());
    assert!(schema_of(&conn, "posts")
        .expect("posts")
        .contains("views TEXT"));
}
