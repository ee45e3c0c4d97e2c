//! The seeds' hand-written runners, reproduced from their descriptions
//! (docs: /shared/REFERENCES.md, "Hand-written runners"), with their SQL
//! directories kept as they are:
//! - a `PRAGMA user_version` tutorial: files `0001_name.sql`, each wrapped
//!   in `BEGIN; … COMMIT;` and ending with `PRAGMA user_version = N`, run
//!   by a loop over the files whose number exceeds the current version;
//! - a `schema_migrations` lesson: a `000_create_schema_migrations.sql`
//!   bootstrap, then files that insert their own row into
//!   `schema_migrations` inside their own `BEGIN … COMMIT`.
//!
//! Both directories compile unchanged (the 1-based one with
//! `ids = "sorted"`), and a fresh database migrated by this library ends
//! with the same schema, rows and `user_version` as the seed's runner gives.

mod common;

use std::path::PathBuf;

use common::{dump_user, sql_checksum, user_version, TempDb};
use migrate_core::rusqlite::Connection;
use migrate_core::{embed_migrations, Migrate, Migrator};

// The tutorial's directory is the application's default set: this library
// mirrors the number of applied migrations into user_version, after the
// files' own `PRAGMA user_version = N`.
embed_migrations!("tests/fixtures/sql/seeds/user_version", ids = "sorted");
embed_migrations!("tests/fixtures/sql/seeds/schema_migrations", set = "lesson");

const USER_VERSION_DIR: &str = "tests/fixtures/sql/seeds/user_version";
const LESSON_DIR: &str = "tests/fixtures/sql/seeds/schema_migrations";

/// The `.sql` files of a directory with their leading numbers, in order.
fn numbered_files(dir: &str) -> Vec<(u32, PathBuf)> {
    let mut files: Vec<(u32, PathBuf)> = std::fs::read_dir(dir)
        .expect("read the directory")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "sql"))
        .map(|path| {
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            let number = name
                .split('_')
                .next()
                .expect("number")
                .parse()
                .expect("a number");
            (number, path)
        })
        .collect();
    files.sort();
    files
}

/// The tutorial's runner: every file whose number exceeds `user_version`,
/// executed as it is.
fn user_version_runner(conn: &Connection) {
    let current = user_version(conn);
    for (number, path) in numbered_files(USER_VERSION_DIR) {
        if i64::from(number) > current {
            let sql = std::fs::read_to_string(&path).expect("read");
            conn.execute_batch(&sql)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
}

/// The lesson's runner: the bootstrap, then every file whose version is not
/// in `schema_migrations` yet, executed as it is.
fn schema_migrations_runner(conn: &Connection) {
    for (number, path) in numbered_files(LESSON_DIR) {
        let version = format!("{number:03}");
        let applied: bool = number > 0
            && conn
                .query_row(
                    "SELECT count(*) FROM schema_migrations WHERE version = ?1",
                    [&version],
                    |r| r.get::<_, i64>(0),
                )
                .expect("read schema_migrations")
                > 0;
        if !applied {
            let sql = std::fs::read_to_string(&path).expect("read");
            conn.execute_batch(&sql)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
}

#[test]
fn the_user_version_tutorial_reaches_the_same_database() {
    let theirs = TempDb::new();
    let conn = theirs.open();
    user_version_runner(&conn);
    assert_eq!(user_version(&conn), 3);
    // Their runner is idempotent, as it should be.
    user_version_runner(&conn);

    let ours = TempDb::new();
    let mut conn_ours = ours.open();
    let pending: Vec<(u32, String)> = conn_ours
        .pending_migrations()
        .expect("pending")
        .into_iter()
        .map(|p| (p.id, p.name))
        .collect();
    assert_eq!(
        pending,
        vec![
            (0, "create_notes".to_owned()),
            (1, "add_tags".to_owned()),
            (2, "notes_search".to_owned()),
        ]
    );
    assert_eq!(conn_ours.migrate().expect("migrate").ids(), vec![0, 1, 2]);
    assert_eq!(dump_user(&conn_ours), dump_user(&conn));
    assert_eq!(user_version(&conn_ours), 3);
    assert!(conn_ours.migrate().expect("again").ids().is_empty());

    // The trigger's body ran whole: updating a note touches it.
    conn_ours
        .execute("UPDATE notes SET title = 'Hello' WHERE id = 1", [])
        .expect("update");
    let touched: Option<String> = conn_ours
        .query_row("SELECT updated_at FROM notes WHERE id = 1", [], |r| {
            r.get(0)
        })
        .expect("read");
    assert!(touched.is_some());
}

/// SipHash-1-3 of the bytes as they are: the checksum's first definition.
fn raw_checksum(text: &str) -> String {
    use siphasher::sip128::{Hasher128, SipHasher13};
    use std::hash::Hasher;
    let mut hasher = SipHasher13::new_with_keys(0, 0);
    hasher.write(text.as_bytes());
    format!("{:032x}", hasher.finish128().as_u128())
}

#[test]
fn a_crlf_file_has_the_checksum_of_its_lf_text() {
    let path = format!("{USER_VERSION_DIR}/0002_add_tags.sql");
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(
        text.contains("\r\n"),
        "the fixture keeps its CRLF line endings (see its .gitattributes)"
    );
    let conn = Connection::open_in_memory().expect("open");
    let pending = conn.pending_migrations().expect("pending");
    assert_eq!(pending[1].location.file, path);
    assert_eq!(
        pending[1].checksum,
        sql_checksum(&text.replace("\r\n", "\n"))
    );
    assert_ne!(pending[1].checksum, raw_checksum(&text));
}

#[test]
fn the_schema_migrations_lesson_reaches_the_same_database() {
    let theirs = TempDb::new();
    let conn = theirs.open();
    schema_migrations_runner(&conn);
    schema_migrations_runner(&conn);

    let ours = TempDb::new();
    let mut conn_ours = ours.open();
    let m = Migrator::new().set("lesson");
    let applied = m.migrate(&mut conn_ours).expect("migrate");
    assert_eq!(applied.ids(), vec![0, 1, 2]);
    let names: Vec<String> = m
        .applied_migrations(&conn_ours)
        .expect("applied")
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(
        names,
        ["create_schema_migrations", "create_posts", "add_comments"]
    );

    // The files recorded themselves in their own table, as with their runner
    // (the times differ: set them aside).
    for conn in [&conn, &conn_ours] {
        conn.execute("UPDATE schema_migrations SET applied_at = 'then'", [])
            .expect("set the times aside");
    }
    assert_eq!(dump_user(&conn_ours), dump_user(&conn));
    let versions: Vec<String> = {
        let mut stmt = conn_ours
            .prepare("SELECT version FROM schema_migrations ORDER BY version")
            .expect("prepare");
        let rows = stmt.query_map([], |r| r.get(0)).expect("query");
        rows.collect::<Result<_, _>>().expect("rows")
    };
    assert_eq!(versions, ["001", "002"]);
    // A named set leaves user_version alone.
    assert_eq!(user_version(&conn_ours), 0);

    // The trigger inside the wrapped file works.
    conn_ours
        .execute(
            "INSERT INTO posts (id, title, body) VALUES (1, 't', 'b')",
            [],
        )
        .expect("post");
    let refused = conn_ours.execute(
        "INSERT INTO comments (post_id, body, status) VALUES (1, 'x', 'weird')",
        [],
    );
    assert!(refused.is_err(), "the trigger refuses a bad status");
}
