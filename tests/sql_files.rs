//! `embed_migrations!`: SQL files and Rust functions in one sequence.

use migrate_core::rusqlite::{Connection, Transaction};
use migrate_core::{embed_migrations, migration, rollback, Error, Migrator};
use tempfile::TempDir;

embed_migrations!("tests/fixtures/sql/blog", set = "blog");

// Migration 2 is Rust, after the two SQL files: one sequence for both.
#[migration(2, set = "blog")]
fn add_slug(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    tx.execute_batch(
        "ALTER TABLE posts ADD COLUMN slug TEXT;
         UPDATE posts SET slug = lower(replace(title, ' ', '-'));",
    )
}

#[rollback(2, set = "blog")]
fn drop_slug(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    tx.execute_batch("ALTER TABLE posts DROP COLUMN slug")
}

fn open(dir: &TempDir) -> Connection {
    Connection::open(dir.path().join("blog.db")).expect("open")
}

fn names(conn: &Connection, kind: &str) -> Vec<String> {
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = ?1 AND name NOT LIKE 'sqlite%' ORDER BY name")
        .expect("prepare");
    let rows = stmt.query_map([kind], |row| row.get(0)).expect("query");
    rows.collect::<Result<_, _>>().expect("rows")
}

#[test]
fn sql_and_rust_share_one_sequence() {
    let dir = TempDir::new().expect("tempdir");
    let mut conn = open(&dir);
    let m = Migrator::new().set("blog");
    let pending = m.pending_migrations(&conn).expect("pending");
    let listed: Vec<(u32, &str, bool)> = pending
        .iter()
        .map(|p| (p.id, p.name.as_str(), p.has_rollback))
        .collect();
    assert_eq!(
        listed,
        vec![
            (0, "initial_schema", false),
            (1, "tags", true),
            (2, "add_slug", true)
        ]
    );
    assert_eq!(
        pending[0].location.file,
        "tests/fixtures/sql/blog/000_initial_schema.sql"
    );

    assert_eq!(m.migrate(&mut conn).expect("migrate").ids(), vec![0, 1, 2]);
    assert_eq!(
        names(&conn, "table"),
        vec!["audit", "migrations_blog", "posts", "tags"]
    );
    // Besides the tracking table's own edit trigger.
    assert_eq!(
        names(&conn, "trigger"),
        vec![
            "migrate_core_delete_migrations_blog",
            "migrate_core_edit_migrations_blog",
            "migrate_core_insert_migrations_blog",
            "posts_audit"
        ]
    );
    assert_eq!(names(&conn, "index"), vec!["tags_unique"]);

    // The string literal's `;` did not split the insert, and the trigger's
    // body ran whole.
    let (title, slug): (String, String) = conn
        .query_row("SELECT title, slug FROM posts", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("post");
    assert_eq!(
        (title.as_str(), slug.as_str()),
        ("hello; world", "hello;-world")
    );
    conn.execute("UPDATE posts SET body = 'x'", [])
        .expect("update");
    let note: String = conn
        .query_row("SELECT note FROM audit", [], |r| r.get(0))
        .expect("audit");
    assert_eq!(note, "updated; see log");
}

#[test]
fn sql_rollbacks_run() {
    let dir = TempDir::new().expect("tempdir");
    let mut conn = open(&dir);
    let m = Migrator::new().set("blog");
    m.migrate(&mut conn).expect("migrate");
    assert_eq!(
        m.rollback_to(&mut conn, 0).expect("rollback").ids(),
        vec![2, 1]
    );
    assert_eq!(
        names(&conn, "table"),
        vec!["audit", "migrations_blog", "posts"]
    );
    assert!(names(&conn, "index").is_empty());
    let undone = m.rollback_migration(&mut conn);
    assert!(
        matches!(undone, Err(Error::NoRollback { id: 0, .. })),
        "{undone:?}"
    );
}

/// SipHash-1-3, zero key, 128 bits, of the text with LF line endings: the
/// documented checksum algorithm, computed here independently of the library.
fn expected_checksum(text: &str) -> String {
    use siphasher::sip128::{Hasher128, SipHasher13};
    use std::hash::Hasher;
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut hasher = SipHasher13::new_with_keys(0, 0);
    hasher.write(text.as_bytes());
    format!("{:032x}", hasher.finish128().as_u128())
}

#[test]
fn checksums_are_taken_over_the_file_text() {
    let dir = TempDir::new().expect("tempdir");
    let mut conn = open(&dir);
    let m = Migrator::new().set("blog");
    m.migrate(&mut conn).expect("migrate");
    let applied = m.applied_migrations(&conn).expect("applied");
    for (row, file) in applied
        .iter()
        .zip(["000_initial_schema.sql", "001_tags.sql"])
    {
        let text = std::fs::read_to_string(format!("tests/fixtures/sql/blog/{file}"))
            .expect("read fixture");
        assert_eq!(row.checksum, expected_checksum(&text), "{file}");
    }
}

#[test]
fn an_applied_file_that_differs_is_modified() {
    let dir = TempDir::new().expect("tempdir");
    let mut conn = open(&dir);
    // Build the history a previous binary wrote, whose 001_tags.sql had
    // other text: same names, other checksum for migration 1.
    let old = Migrator::new()
        .set("blog")
        .table("migrations_blog")
        .verify_applied(false);
    old.migrate_to(&mut conn, 1).expect("migrate");
    conn.execute(
        "UPDATE migrations_blog SET checksum = ?1, chain = 'written by an older binary' WHERE id = 1",
        [expected_checksum("CREATE TABLE tags (post_id INTEGER, tag TEXT);")],
    )
    .expect("rewrite history");

    let error = Migrator::new()
        .set("blog")
        .migrate(&mut conn)
        .expect_err("an edited applied file is refused");
    match &error {
        Error::Modified { modifications, .. } => {
            assert_eq!(modifications.len(), 1);
            assert_eq!(modifications[0].id, 1);
            assert_eq!(
                modifications[0].location.file,
                "tests/fixtures/sql/blog/001_tags.sql"
            );
        }
        other => panic!("expected Modified, got {other:?}"),
    }
    assert!(error.to_string().contains("001_tags.sql"), "{error}");
    let applied = Migrator::new()
        .set("blog")
        .applied_migrations(&conn)
        .expect("applied");
    assert_eq!(applied.len(), 2, "migration 2 did not run");
}
