//! `Migrator::lint` on real database files: each pending migration runs on
//! an in-memory copy, and what it destroys or risks is measured on the
//! data. After every lint the file (and its WAL, if any) is byte for byte
//! what it was.

use std::path::{Path, PathBuf};
use std::time::Duration;

use migrate_core::lint::{Finding, Level, LintReport, ObjectKind};
use migrate_core::rusqlite::{Connection, Transaction};
use migrate_core::{migration, Error, Migrator};
use tempfile::TempDir;

/// The bytes of a database file and of its WAL, to compare after a lint.
struct Untouched {
    path: PathBuf,
    bytes: Vec<(PathBuf, Vec<u8>)>,
}

impl Untouched {
    fn new(path: &Path) -> Untouched {
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let bytes = [path.to_owned(), PathBuf::from(wal)]
            .into_iter()
            .filter(|p| p.exists())
            .map(|p| {
                let b = std::fs::read(&p).expect("read");
                (p, b)
            })
            .collect();
        Untouched {
            path: path.to_owned(),
            bytes,
        }
    }

    #[track_caller]
    fn check(&self) {
        for (path, bytes) in &self.bytes {
            assert!(
                std::fs::read(path).expect("read") == *bytes,
                "{} changed",
                path.display()
            );
        }
        assert_eq!(
            Untouched::new(&self.path).bytes.len(),
            self.bytes.len(),
            "no file appeared or vanished"
        );
    }
}

/// A file migrated by `m` up to `through`, then `data` run on it; opened
/// with foreign keys on, as an application keeps them.
fn database(dir: &TempDir, m: &Migrator, through: u32, data: &str) -> (PathBuf, Connection) {
    let path = dir.path().join("app.db");
    let mut conn = Connection::open(&path).expect("open");
    conn.execute_batch("PRAGMA foreign_keys = ON")
        .expect("foreign keys");
    m.migrate_to(&mut conn, through).expect("migrate");
    conn.execute_batch(data).expect("data");
    (path, conn)
}

/// Lints, checking the file is untouched, while the connection is open and
/// (in rollback-journal mode: closing a WAL database checkpoints it) after
/// it is closed.
fn lint(path: &Path, conn: Connection, m: &Migrator) -> LintReport {
    let untouched = Untouched::new(path);
    let report = m.lint(&conn).expect("lint");
    untouched.check();
    let wal = untouched.bytes.len() > 1;
    drop(conn);
    if !wal {
        untouched.check();
    }
    report
}

fn sql(sql: &'static str) -> impl Fn(&Transaction) -> migrate_core::rusqlite::Result<()> {
    move |tx: &Transaction| tx.execute_batch(sql)
}

#[test]
fn dropping_a_populated_table_is_a_loss_with_its_row_count() {
    let dir = TempDir::new().expect("tempdir");
    let m = Migrator::new()
        .set("lint_drop_table")
        .add(0, "create", sql("CREATE TABLE notes (body TEXT); CREATE TABLE drafts (body TEXT); CREATE INDEX notes_body ON notes (body)"))
        .add(1, "drop_notes", sql("DROP TABLE notes"))
        .add(2, "drop_drafts", sql("DROP TABLE drafts"));
    let (path, conn) = database(&dir, &m, 0, "INSERT INTO notes VALUES ('a'), ('b'), ('c');");
    let report = lint(&path, conn, &m);
    assert_eq!(
        report.steps[0].findings,
        [Finding::TableDropped {
            table: "notes".into(),
            rows: Some(3)
        }],
        "its index went with it, and is not reported on its own"
    );
    assert_eq!(
        report.steps[1].findings,
        [Finding::TableDropped {
            table: "drafts".into(),
            rows: Some(0)
        }]
    );
    assert_eq!(report.steps[1].findings[0].level(), Level::Info);
    assert_eq!(report.worst(), Some(Level::Loss));
    assert!(!report.passes(Level::Loss) && report.failed().is_none());
    assert_eq!(
        report.steps[0].findings[0].to_string(),
        "table notes dropped with its 3 rows"
    );
}

#[test]
fn dropping_a_column_with_data_reports_its_rows_and_values() {
    let dir = TempDir::new().expect("tempdir");
    let m = Migrator::new()
        .set("lint_drop_column")
        .add(0, "create", sql("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, nickname TEXT, unused TEXT)"))
        .add(1, "drop_nickname", sql("ALTER TABLE users DROP COLUMN nickname"))
        .add(2, "drop_unused", sql("ALTER TABLE users DROP COLUMN unused"));
    let (path, conn) = database(
        &dir,
        &m,
        0,
        "INSERT INTO users (name, nickname) VALUES ('a', 'x'), ('b', 'y'), ('c', NULL), ('d', 'z');",
    );
    let report = lint(&path, conn, &m);
    assert_eq!(
        report.steps[0].findings,
        [Finding::ColumnDropped {
            table: "users".into(),
            column: "nickname".into(),
            rows: 4,
            non_null: 3
        }]
    );
    assert_eq!(
        report.steps[0].findings[0].to_string(),
        "column users.nickname dropped with 3 value(s) (not NULL) in 4 rows of the table"
    );
    assert_eq!(
        report.steps[1].findings,
        [Finding::ColumnDropped {
            table: "users".into(),
            column: "unused".into(),
            rows: 4,
            non_null: 0
        }]
    );
    assert_eq!(report.steps[1].findings[0].level(), Level::Info);
}

#[test]
fn not_null_without_a_default_fails_on_the_copy_and_stops_the_lint() {
    let dir = TempDir::new().expect("tempdir");
    let m = Migrator::new()
        .set("lint_not_null")
        .add(
            0,
            "create",
            sql("CREATE TABLE posts (id INTEGER PRIMARY KEY, title TEXT)"),
        )
        .add(
            1,
            "add_author",
            sql("ALTER TABLE posts ADD COLUMN author TEXT NOT NULL"),
        )
        .add(2, "after", sql("CREATE TABLE later (x)"));
    let (path, conn) = database(
        &dir,
        &m,
        0,
        "INSERT INTO posts (title) VALUES ('a'), ('b');",
    );
    let report = lint(&path, conn, &m);
    let failed = report.failed().expect("migration 1 fails");
    assert_eq!((failed.id, failed.name.as_str()), (1, "add_author"));
    assert!(
        matches!(failed.failure, Some(Error::Failed { id: 1, .. })),
        "{:?}",
        failed.failure
    );
    let hint = failed.hint.as_deref().expect("a hint");
    assert!(hint.contains("NOT NULL DEFAULT"), "{hint}");
    assert_eq!(report.not_run.iter().map(|m| m.id).collect::<Vec<_>>(), [2]);
    assert!(!report.passes(Level::Loss), "a failure never passes");
}

#[test]
fn a_rebuild_that_leaves_nulls_in_a_not_null_column_fails_naming_it() {
    let dir = TempDir::new().expect("tempdir");
    let m = Migrator::new()
        .set("lint_not_null_rebuild")
        .add(
            0,
            "create",
            sql("CREATE TABLE posts (id INTEGER PRIMARY KEY, title TEXT)"),
        )
        .add(
            1,
            "title_required",
            sql(
                "CREATE TABLE posts_new (id INTEGER PRIMARY KEY, title TEXT NOT NULL);
                 INSERT INTO posts_new SELECT id, title FROM posts;
                 DROP TABLE posts;
                 ALTER TABLE posts_new RENAME TO posts;",
            ),
        );
    // Clean data: the step works, and the new constraint is a risk.
    let (path, conn) = database(
        &dir,
        &m,
        0,
        "INSERT INTO posts (title) VALUES ('a'), ('b');",
    );
    let report = lint(&path, conn, &m);
    assert!(report.failed().is_none());
    assert_eq!(
        report.steps[0].findings,
        [Finding::NotNullWithoutDefault {
            table: "posts".into(),
            column: "title".into(),
            rows: 2
        }]
    );
    // A NULL title: the step fails on this data.
    let conn = Connection::open(&path).expect("open");
    conn.execute_batch("INSERT INTO posts (title) VALUES (NULL)")
        .expect("a null");
    let report = lint(&path, conn, &m);
    let failed = report.failed().expect("fails");
    let hint = failed.hint.as_deref().expect("hint");
    assert!(
        hint.starts_with("posts_new.title is NOT NULL and this data leaves it NULL"),
        "{hint}"
    );
}

#[test]
fn a_clean_migration_reports_nothing() {
    let dir = TempDir::new().expect("tempdir");
    let m = Migrator::new()
        .set("lint_clean")
        .add(
            0,
            "create",
            sql("CREATE TABLE posts (id INTEGER PRIMARY KEY, title TEXT)"),
        )
        .add(
            1,
            "grow",
            sql("ALTER TABLE posts ADD COLUMN summary TEXT;
                 ALTER TABLE posts ADD COLUMN views INTEGER NOT NULL DEFAULT 0;
                 CREATE INDEX posts_title ON posts (title);
                 CREATE TABLE tags (post_id REFERENCES posts (id), tag TEXT);
                 INSERT INTO tags SELECT id, 'new' FROM posts;"),
        );
    let (path, conn) = database(
        &dir,
        &m,
        0,
        "INSERT INTO posts (title) VALUES ('a'), ('b');",
    );
    let report = lint(&path, conn, &m);
    assert_eq!(report.steps.len(), 1);
    assert!(
        report.steps[0].findings.is_empty(),
        "{:?}",
        report.steps[0].findings
    );
    assert!(report.passes(Level::Info) && report.worst().is_none());

    // Nothing pending: nothing to report.
    let mut conn = Connection::open(&path).expect("open");
    m.migrate(&mut conn).expect("migrate");
    let report = lint(&path, conn, &m);
    assert!(report.steps.is_empty() && report.not_run.is_empty());
}

// A parent with an index and children, rebuilt twice: once as SQLite's
// procedure says (foreign keys off) but forgetting the index, once with
// foreign keys on, which deletes the children.
#[migration(0, set = "lint_rebuilds")]
fn create_parents(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE authors (id INTEGER PRIMARY KEY, name TEXT);
         CREATE UNIQUE INDEX authors_name ON authors (name);
         CREATE TRIGGER authors_touch AFTER UPDATE ON authors BEGIN SELECT 1; END;
         CREATE TABLE books (id INTEGER PRIMARY KEY,
             author_id INTEGER NOT NULL REFERENCES authors (id) ON DELETE CASCADE);
         CREATE VIEW books_by_author AS SELECT author_id, count(*) AS n FROM books GROUP BY author_id;",
    )
}

#[migration(1, set = "lint_rebuilds", foreign_keys = off)]
fn rebuild_without_the_index(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE authors_new (id INTEGER PRIMARY KEY, name TEXT, born INTEGER);
         INSERT INTO authors_new (id, name) SELECT id, name FROM authors;
         DROP TABLE authors;
         ALTER TABLE authors_new RENAME TO authors;",
    )
}

#[migration(2, set = "lint_rebuilds")]
fn rebuild_with_foreign_keys_on(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE authors_new (id INTEGER PRIMARY KEY, name TEXT, born INTEGER);
         INSERT INTO authors_new SELECT id, name, born FROM authors;
         DROP TABLE authors;
         ALTER TABLE authors_new RENAME TO authors;",
    )
}

#[migration(3, set = "lint_rebuilds")]
fn drop_books(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    tx.execute_batch("DROP TABLE books")
}

const AUTHORS_AND_BOOKS: &str = "INSERT INTO authors (name) VALUES ('Le Guin'), ('Pratchett');
     INSERT INTO books (author_id) VALUES (1), (1), (2), (2), (2);";

#[test]
fn a_rebuild_loses_its_index_and_trigger_and_one_with_foreign_keys_on_its_children() {
    let dir = TempDir::new().expect("tempdir");
    let m = Migrator::new().set("lint_rebuilds");
    let (path, conn) = database(&dir, &m, 0, AUTHORS_AND_BOOKS);
    let report = lint(&path, conn, &m);
    assert!(report.foreign_keys);
    assert_eq!(
        report.steps[0].findings,
        [
            Finding::ObjectLost {
                kind: ObjectKind::Index,
                name: "authors_name".into(),
                table: "authors".into(),
                rebuilt: true
            },
            Finding::ObjectLost {
                kind: ObjectKind::Trigger,
                name: "authors_touch".into(),
                table: "authors".into(),
                rebuilt: true
            },
        ],
        "foreign keys off: no child lost"
    );
    assert_eq!(
        report.steps[0].findings[0].to_string(),
        "index authors_name on authors is gone: authors was rebuilt and the old table took it \
         along; create it again in the migration, after the rename"
    );
    assert_eq!(
        report.steps[1].findings,
        [Finding::RowsDeleted {
            table: "books".into(),
            before: 5,
            after: 0,
            cascade_from: vec!["authors".into()]
        }]
    );
    assert!(report.steps[1].findings[0].to_string().starts_with(
        "5 rows deleted from books (5 → 0), probably by ON DELETE CASCADE from authors"
    ));
    // Dropping the table a view reads breaks the view.
    assert_eq!(
        report.steps[2].findings,
        [
            Finding::BrokenView {
                view: "books_by_author".into(),
                error: "no such table: main.books".into()
            },
            Finding::TableDropped {
                table: "books".into(),
                rows: Some(0)
            },
        ],
        "most serious first"
    );
}

#[test]
fn the_copy_keeps_the_connections_foreign_keys_setting() {
    let dir = TempDir::new().expect("tempdir");
    let m = Migrator::new().set("lint_rebuilds");
    let (path, conn) = database(&dir, &m, 1, AUTHORS_AND_BOOKS);
    conn.execute_batch("PRAGMA foreign_keys = OFF")
        .expect("off");
    let report = lint(&path, conn, &m);
    assert!(!report.foreign_keys);
    assert!(
        report.steps[0].findings.is_empty(),
        "foreign keys off: the rebuild deletes nothing: {:?}",
        report.steps[0].findings
    );
}

#[test]
fn deletes_cascades_and_nulled_values_are_losses() {
    let dir = TempDir::new().expect("tempdir");
    let m = Migrator::new()
        .set("lint_deletes")
        .add(
            0,
            "create",
            sql("CREATE TABLE authors (id INTEGER PRIMARY KEY, email TEXT);
                 CREATE TABLE books (author_id REFERENCES authors (id) ON DELETE CASCADE);
                 CREATE TABLE reviews (author_id REFERENCES authors (id) ON DELETE SET NULL);"),
        )
        .add(1, "purge", sql("DELETE FROM authors WHERE id = 2"))
        .add(2, "forget_emails", sql("UPDATE authors SET email = NULL"));
    let (path, conn) = database(
        &dir,
        &m,
        0,
        "INSERT INTO authors VALUES (1, 'a@x'), (2, 'b@x');
         INSERT INTO books VALUES (1), (2), (2);
         INSERT INTO reviews VALUES (2), (2), (1);",
    );
    let report = lint(&path, conn, &m);
    assert_eq!(
        report.steps[0].findings,
        [
            Finding::RowsDeleted {
                table: "authors".into(),
                before: 2,
                after: 1,
                cascade_from: vec![]
            },
            Finding::RowsDeleted {
                table: "books".into(),
                before: 3,
                after: 1,
                cascade_from: vec!["authors".into()]
            },
            Finding::ValuesNulled {
                table: "reviews".into(),
                column: "author_id".into(),
                before: 3,
                after: 1
            },
        ]
    );
    assert_eq!(
        report.steps[1].findings,
        [Finding::ValuesNulled {
            table: "authors".into(),
            column: "email".into(),
            before: 1,
            after: 0
        }]
    );
}

/// The rebuild that renames the old table first: SQLite rewrites the
/// children's foreign keys to the old name, which is then dropped (found in
/// a real project's migrations by a corpus probe; `plan --lint` said
/// "clean"). Every write of the child fails with foreign keys on.
#[test]
fn a_foreign_key_left_naming_a_dropped_table_is_a_risk() {
    let dir = TempDir::new().expect("tempdir");
    let m = Migrator::new()
        .set("lint_dangling")
        .add(
            0,
            "create",
            sql("CREATE TABLE ipaddrs (id INTEGER PRIMARY KEY, value TEXT);
                 CREATE TABLE links (ip INTEGER REFERENCES ipaddrs (id));
                 CREATE TABLE orphan (x REFERENCES never_made (id));"),
        )
        .add(
            1,
            "rebuild_renaming_first",
            sql("ALTER TABLE ipaddrs RENAME TO _ipaddrs_old;
                 CREATE TABLE ipaddrs (id INTEGER PRIMARY KEY, value TEXT NOT NULL DEFAULT '');
                 INSERT INTO ipaddrs SELECT id, value FROM _ipaddrs_old;
                 DROP TABLE _ipaddrs_old;"),
        );
    let (path, conn) = database(&dir, &m, 0, "INSERT INTO ipaddrs VALUES (1, 'a');");
    let report = lint(&path, conn, &m);
    // `orphan` named a missing table before the step: not this step's.
    assert_eq!(
        report.steps[0].findings,
        [Finding::DanglingForeignKey {
            table: "links".into(),
            parent: "_ipaddrs_old".into()
        }]
    );
    assert_eq!(report.worst(), Some(Level::Risk));
    assert!(report.steps[0].findings[0]
        .to_string()
        .contains("every insert or update of links fails"));
}

/// A foreign key naming a view makes SQLite refuse `PRAGMA
/// foreign_key_check` on the whole database ("foreign key mismatch"): the
/// lint failed outright on such a database (a probe's finding). The other
/// tables are checked one by one, and the step is measured.
#[test]
fn a_foreign_key_naming_a_view_does_not_stop_the_lint() {
    let dir = TempDir::new().expect("tempdir");
    let m = Migrator::new()
        .set("lint_fk_view")
        .add(
            0,
            "create",
            sql("CREATE TABLE p (id INTEGER PRIMARY KEY);
                 CREATE VIEW pv AS SELECT id FROM p;
                 CREATE TABLE odd (x REFERENCES pv (id));
                 CREATE TABLE notes (body TEXT);
                 CREATE TABLE c (p_id REFERENCES p (id));"),
        )
        .add_without_transaction(
            1,
            "orphans_and_a_drop",
            |conn: &migrate_core::rusqlite::Connection| {
                conn.execute_batch(
                    "PRAGMA foreign_keys = OFF; INSERT INTO c VALUES (7); DROP TABLE notes;",
                )
            },
        );
    let (path, conn) = database(&dir, &m, 0, "INSERT INTO notes VALUES ('a');");
    let report = lint(&path, conn, &m);
    assert_eq!(
        report.steps[0].findings,
        [
            Finding::TableDropped {
                table: "notes".into(),
                rows: Some(1)
            },
            Finding::ForeignKeyViolations {
                table: "c".into(),
                parent: "p".into(),
                added: 1
            }
        ]
    );
}

#[test]
fn renames_redefinitions_and_foreign_key_violations() {
    let dir = TempDir::new().expect("tempdir");
    let m = Migrator::new()
        .set("lint_misc")
        .add(
            0,
            "create",
            sql("CREATE TABLE a (id INTEGER PRIMARY KEY, x);
                 CREATE INDEX a_x ON a (x);
                 CREATE TABLE c (a_id REFERENCES a (id));"),
        )
        .add(1, "rename", sql("ALTER TABLE a RENAME TO b"))
        .add(
            2,
            "rename_column",
            sql("ALTER TABLE b RENAME COLUMN x TO y"),
        )
        .add(
            3,
            "redefine",
            sql("DROP INDEX a_x; CREATE INDEX a_x ON b (y DESC)"),
        )
        .add_without_transaction(
            4,
            "orphans",
            // Outside a transaction, with foreign keys turned off for the
            // step: the rows stay, and foreign_key_check finds them.
            |conn: &migrate_core::rusqlite::Connection| {
                conn.execute_batch("PRAGMA foreign_keys = OFF; INSERT INTO c VALUES (99), (98);")
            },
        );
    let (path, conn) = database(&dir, &m, 0, "INSERT INTO a (x) VALUES (1), (2);");
    let report = lint(&path, conn, &m);
    assert_eq!(
        report.steps[0].findings,
        [Finding::TableRenamed {
            from: "a".into(),
            to: "b".into()
        }]
    );
    assert_eq!(
        report.steps[1].findings,
        [
            Finding::ColumnRenamed {
                table: "b".into(),
                from: "x".into(),
                to: "y".into()
            },
            // SQLite rewrote the index's SQL.
            Finding::ObjectChanged {
                kind: ObjectKind::Index,
                name: "a_x".into()
            }
        ]
    );
    assert_eq!(
        report.steps[2].findings,
        [Finding::ObjectChanged {
            kind: ObjectKind::Index,
            name: "a_x".into()
        }]
    );
    assert_eq!(
        report.steps[3].findings,
        [Finding::ForeignKeyViolations {
            table: "c".into(),
            parent: "b".into(),
            added: 2
        }]
    );
    assert_eq!(report.worst(), Some(Level::Risk));
    assert!(report.passes(Level::Loss) && !report.passes(Level::Risk));
}

#[test]
fn a_wal_database_with_large_pages_is_copied_and_left_as_it_was() {
    let dir = TempDir::new().expect("tempdir");
    let path = dir.path().join("app.db");
    let m = Migrator::new()
        .set("lint_wal")
        .add(0, "create", sql("CREATE TABLE t (x)"))
        .add(1, "drop", sql("DROP TABLE t"));
    let mut conn = Connection::open(&path).expect("open");
    conn.execute_batch("PRAGMA page_size = 16384; PRAGMA journal_mode = WAL;")
        .expect("wal");
    m.migrate_to(&mut conn, 0).expect("migrate");
    conn.execute_batch("INSERT INTO t SELECT value FROM generate_series(1, 5000)")
        .or_else(|_| {
            conn.execute_batch(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
                 INSERT INTO t SELECT i FROM n",
            )
        })
        .expect("rows");
    let report = lint(&path, conn, &m);
    assert_eq!(
        report.steps[0].findings,
        [Finding::TableDropped {
            table: "t".into(),
            rows: Some(5000)
        }]
    );
}

#[test]
fn refused_inside_a_transaction_and_when_the_database_stays_locked() {
    let dir = TempDir::new().expect("tempdir");
    let m = Migrator::new()
        .set("lint_refused")
        .lock_timeout(Duration::from_millis(200))
        .add(0, "create", sql("CREATE TABLE t (x)"));
    let path = dir.path().join("app.db");
    let conn = Connection::open(&path).expect("open");
    conn.execute_batch("CREATE TABLE other (x); BEGIN; INSERT INTO other VALUES (1);")
        .expect("transaction");
    assert!(matches!(m.lint(&conn), Err(Error::InTransaction)));
    conn.execute_batch("ROLLBACK").expect("rollback");

    let writer = Connection::open(&path).expect("open");
    writer
        .execute_batch("BEGIN EXCLUSIVE; INSERT INTO other VALUES (2);")
        .expect("lock");
    // The connection's own busy timeout is not what bounds the wait (round
    // 16: the CLI's `--lock-timeout` was ignored): the lock timeout is.
    conn.busy_timeout(Duration::from_secs(30))
        .expect("busy timeout");
    let untouched = Untouched::new(&path);
    let start = std::time::Instant::now();
    match m.lint(&conn) {
        Err(Error::Locked { .. }) => {}
        other => panic!("{other:?}"),
    }
    assert!(
        start.elapsed() >= Duration::from_millis(200),
        "it waited the lock timeout"
    );
    assert!(start.elapsed() < Duration::from_secs(2), "and no longer");
    untouched.check();
    writer.execute_batch("ROLLBACK").expect("release");
    // Unmanaged: the refusal of `pending_migrations`, from the copy.
    assert!(matches!(
        m.lint(&conn),
        Err(Error::UnmanagedDatabase { .. })
    ));
}

#[test]
fn functions_the_application_registers_reach_the_copy_through_lint_with() {
    let dir = TempDir::new().expect("tempdir");
    let m = Migrator::new()
        .set("lint_with")
        .add(0, "create", sql("CREATE TABLE t (x)"))
        .add(1, "use_a_function", sql("UPDATE t SET x = app_double(x)"));
    let (path, conn) = database(&dir, &m, 0, "INSERT INTO t VALUES (1)");
    let report = m.lint(&conn).expect("lint");
    let failed = report.failed().expect("no such function on the copy");
    assert!(
        failed
            .hint
            .as_deref()
            .is_some_and(|h| h.contains("Migrator::lint_with")),
        "{:?}",
        failed.hint
    );
    let untouched = Untouched::new(&path);
    let report = m
        .lint_with(&conn, |copy| {
            register_app_double(copy);
            Ok(())
        })
        .expect("lint");
    untouched.check();
    assert!(report.failed().is_none(), "{:?}", report.failed());
}

/// `app_double(x)`, as an application would register it (through the C
/// interface: rusqlite's `functions` feature is not enabled here).
fn register_app_double(conn: &Connection) {
    use migrate_core::rusqlite::ffi;
    unsafe extern "C" fn app_double(
        ctx: *mut ffi::sqlite3_context,
        _argc: std::ffi::c_int,
        argv: *mut *mut ffi::sqlite3_value,
    ) {
        // SAFETY: SQLite passes one valid argument, as registered.
        unsafe { ffi::sqlite3_result_int64(ctx, ffi::sqlite3_value_int64(*argv) * 2) }
    }
    // SAFETY: a valid handle and a NUL-terminated name; no user data.
    let code = unsafe {
        ffi::sqlite3_create_function_v2(
            conn.handle(),
            c"app_double".as_ptr(),
            1,
            ffi::SQLITE_UTF8,
            std::ptr::null_mut(),
            Some(app_double),
            None,
            None,
            None,
        )
    };
    assert_eq!(code, ffi::SQLITE_OK);
}
