//! `testing::check_schema_snapshot` on real migrations: the blog example's
//! whole set against its committed snapshot, and its SQL files, read at run
//! time, as they are and with one of them edited. The update variable is
//! set only in child processes (this binary re-run), never in this one.

#[allow(dead_code)]
#[path = "../blog.rs"]
mod blog;

#[path = "../../tests/support/process.rs"]
mod process;

use std::path::{Path, PathBuf};
use std::time::Duration;

use migrate_core::rusqlite::{Connection, Transaction};
use migrate_core::testing::{
    check_schema_snapshot, ObjectKind, SchemaChange, Snapshot, SnapshotError, UPDATE_SNAPSHOTS,
};
use migrate_core::Migrator;
use tempfile::TempDir;

/// The blog's committed snapshot: what `blog schema --replay` prints.
const BLOG_SNAPSHOT: &str = "tests/snapshots/blog.schema.sql";

#[test]
fn the_blog_matches_its_committed_snapshot() {
    migrate_core::testing::assert_schema_snapshot(&blog::migrator(), BLOG_SNAPSHOT);
}

/// The blog's SQL files (migrations 0 to 5, with their rollbacks) from
/// `dir`, as a run-time set.
fn sql_set(set: &str, dir: &Path) -> Migrator {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read the migrations directory")
        .map(|entry| entry.expect("entry").path())
        .collect();
    files.sort();
    let mut migrator = Migrator::new().set(set);
    for path in files {
        let file = path.file_name().and_then(|n| n.to_str()).expect("name");
        let sql = std::fs::read_to_string(&path).expect("read");
        let id: u32 = file[..3].parse().expect("NNN_");
        let run = move |tx: &Transaction| tx.execute_batch(&sql);
        migrator = match file.strip_suffix(".down.sql") {
            Some(_) => migrator.add_rollback(id, run),
            None => migrator.add(id, &file[4..file.len() - 4], run),
        };
    }
    migrator
}

/// A copy of the blog's SQL files with `edit` applied to one of them.
fn edited_copy(dir: &Path, file: &str, edit: impl Fn(&str) -> String) -> PathBuf {
    let copy = dir.join("migrations");
    std::fs::create_dir_all(&copy).expect("mkdir");
    for entry in std::fs::read_dir("blog/migrations").expect("read") {
        let path = entry.expect("entry").path();
        let name = path.file_name().expect("name").to_owned();
        let text = std::fs::read_to_string(&path).expect("read");
        let text = if name == file {
            let edited = edit(&text);
            assert_ne!(edited, text, "the edit changes {file}");
            edited
        } else {
            text
        };
        std::fs::write(copy.join(name), text).expect("write");
    }
    copy
}

/// 004_comments.sql without its index, with a nullable body, and with a
/// column renamed; 002_posts_search.sql with a changed trigger.
fn edit_comments(sql: &str) -> String {
    sql.replace("CREATE INDEX comments_post ON comments (post_id);\n", "")
        .replace(
            "    body TEXT NOT NULL,\n    created_at",
            "    body TEXT,\n    created_at",
        )
        .replace("author TEXT NOT NULL", "author_name TEXT NOT NULL")
        .replace("(post_id, author, body)", "(post_id, author_name, body)")
}

/// Runs `check_schema_snapshot` in a child (this binary again) with `env`
/// set: the set's directory and name come through the environment.
fn check_in_child(dir: &Path, set: &str, path: &Path, env: &[(&str, &str)]) -> String {
    let mut command = process::child_command("snapshot");
    command
        .env("SNAPSHOT_DIR", dir)
        .env("SNAPSHOT_SET", set)
        .env("SNAPSHOT_PATH", path)
        .env_remove(UPDATE_SNAPSHOTS)
        .env_remove("INSTA_UPDATE")
        .env_remove("UPDATE_EXPECT");
    for (name, value) in env {
        command.env(name, value);
    }
    let finished =
        process::wait_with_timeout(command.spawn().expect("spawn"), Duration::from_secs(60));
    assert!(finished.status.success(), "{}", finished.describe());
    finished.result()
}

#[test]
fn child_process_entry() {
    if process::child_role().is_none() {
        return;
    }
    let migrator = sql_set(
        &process::env("SNAPSHOT_SET"),
        Path::new(&process::env("SNAPSHOT_DIR")),
    );
    let outcome = check_schema_snapshot(&migrator, process::env("SNAPSHOT_PATH"));
    process::report(&match outcome {
        Ok(outcome) => format!("{outcome:?}"),
        Err(error) => format!("error: {error}").replace('\n', "\\n"),
    });
}

#[test]
fn the_update_variable_creates_and_rewrites_the_file_and_a_changed_migration_fails_with_a_readable_diff(
) {
    let dir = TempDir::new().expect("tempdir");
    let path = dir.path().join("tests").join("schema.sql");
    let original = Path::new("blog/migrations");

    // Missing, without the variable: an error saying how to create it; nothing written.
    match check_schema_snapshot(&sql_set("snap_sql_original", original), &path) {
        Err(error @ SnapshotError::Missing { .. }) => {
            let message = error.to_string();
            assert!(
                message.contains("does not exist")
                    && message.contains("MIGRATE_UPDATE_SNAPSHOTS=1")
                    && message.contains("schema.sql"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(!path.exists());

    // With the variable: created (its directory too), LF line endings.
    let created = check_in_child(
        original,
        "snap_sql_original",
        &path,
        &[(UPDATE_SNAPSHOTS, "1")],
    );
    assert_eq!(created, "Created");
    let written = std::fs::read_to_string(&path).expect("written");
    assert!(
        !written.contains('\r') && written.ends_with(");\n"),
        "{written}"
    );
    assert!(
        written.contains("CREATE INDEX comments_post ON comments(post_id);"),
        "{written}"
    );

    // The same migrations match it, in this process and in a child.
    assert_eq!(
        check_schema_snapshot(&sql_set("snap_sql_original", original), &path).expect("matches"),
        Snapshot::Matched
    );
    assert_eq!(
        check_in_child(original, "snap_sql_original", &path, &[]),
        "Matched"
    );

    // An edited migration fails, object by object, and the file is left alone.
    let edited = edited_copy(dir.path(), "004_comments.sql", edit_comments);
    std::fs::copy(
        original.join("002_posts_search.sql"),
        edited.join("002_posts_search.sql"),
    )
    .expect("copy");
    let search = std::fs::read_to_string(edited.join("002_posts_search.sql")).expect("read");
    std::fs::write(
        edited.join("002_posts_search.sql"),
        search.replace("AFTER DELETE ON posts", "BEFORE DELETE ON posts"),
    )
    .expect("edit");
    let error = check_schema_snapshot(&sql_set("snap_sql_edited", &edited), &path).unwrap_err();
    let SnapshotError::Differs { changes, .. } = &error else {
        panic!("{error:?}");
    };
    let summary: Vec<(&str, ObjectKind, &str)> = changes
        .iter()
        .map(|change| {
            let what = match change {
                SchemaChange::Added { .. } => "added",
                SchemaChange::Removed { .. } => "removed",
                SchemaChange::Changed { .. } => "changed",
                _ => "other",
            };
            (what, change.kind(), change.name())
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("removed", ObjectKind::Index, "comments_post"),
            ("changed", ObjectKind::Table, "comments"),
            ("changed", ObjectKind::Trigger, "posts_fts_delete"),
        ]
    );
    let message = error
        .to_string()
        .replace(&path.display().to_string(), "tests/schema.sql");
    assert_eq!(
        message,
        "\
the schema the migrations build differs from tests/schema.sql (3 object(s)):

removed: index comments_post (tests/schema.sql only)
  -   CREATE INDEX comments_post ON comments(post_id);

changed: table comments
  tests/schema.sql:
      CREATE TABLE comments (
          id INTEGER PRIMARY KEY,
          post_id INTEGER NOT NULL REFERENCES posts(id) ON DELETE CASCADE,
  -       author TEXT NOT NULL,
  -       body TEXT NOT NULL,
          created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
          is_admin INTEGER NOT NULL DEFAULT 0
      );
  the migrations:
      CREATE TABLE comments (
          id INTEGER PRIMARY KEY,
          post_id INTEGER NOT NULL REFERENCES posts(id) ON DELETE CASCADE,
  +       author_name TEXT NOT NULL,
  +       body TEXT,
          created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
          is_admin INTEGER NOT NULL DEFAULT 0
      );

changed: trigger posts_fts_delete
  tests/schema.sql:
  -   CREATE TRIGGER posts_fts_delete AFTER DELETE ON posts BEGIN
          INSERT INTO posts_fts(posts_fts, rowid, title, body) VALUES ('delete', old.id, old.title, old.body);
      END;
  the migrations:
  +   CREATE TRIGGER posts_fts_delete BEFORE DELETE ON posts BEGIN
          INSERT INTO posts_fts(posts_fts, rowid, title, body) VALUES ('delete', old.id, old.title, old.body);
      END;

if the change is intended, run the tests with MIGRATE_UPDATE_SNAPSHOTS=1 to write it, then review and commit tests/schema.sql"
    );
    assert_eq!(std::fs::read_to_string(&path).expect("read"), written);

    // The variable rewrites it; the edited migrations then match.
    let updated = check_in_child(
        &edited,
        "snap_sql_edited",
        &path,
        &[(UPDATE_SNAPSHOTS, "1")],
    );
    assert_eq!(updated, "Updated");
    assert_eq!(
        check_schema_snapshot(&sql_set("snap_sql_edited", &edited), &path).expect("matches"),
        Snapshot::Matched
    );
    assert!(!std::fs::read_to_string(&path)
        .expect("read")
        .contains("comments_post"));

    // insta's and expect-test's variables count too; `0` does not.
    for env in [[("INSTA_UPDATE", "always")], [("UPDATE_EXPECT", "1")]] {
        std::fs::write(&path, &written).expect("restore");
        assert_eq!(
            check_in_child(&edited, "snap_sql_edited", &path, &env),
            "Updated"
        );
    }
    std::fs::write(&path, &written).expect("restore");
    let refused = check_in_child(
        &edited,
        "snap_sql_edited",
        &path,
        &[(UPDATE_SNAPSHOTS, "0"), ("INSTA_UPDATE", "always")],
    );
    assert!(
        refused.starts_with("error: the schema the migrations build differs"),
        "{refused}"
    );
}

#[test]
fn a_crlf_checkout_of_the_file_matches() {
    let dir = TempDir::new().expect("tempdir");
    let path = dir.path().join("schema.sql");
    let text = std::fs::read_to_string(BLOG_SNAPSHOT).expect("committed snapshot");
    std::fs::write(&path, text.replace('\n', "\r\n")).expect("write");
    assert_eq!(
        check_schema_snapshot(&blog::migrator(), &path).expect("matches"),
        Snapshot::Matched
    );
    // A passing check leaves the file as it is.
    assert!(std::fs::read_to_string(&path)
        .expect("read")
        .contains("\r\n"));
}

/// Asked to update, a file that matches is still left as it is: its line
/// endings and a reviewer's comment too.
#[test]
fn the_update_variable_leaves_a_matching_file_as_it_is() {
    let dir = TempDir::new().expect("tempdir");
    let path = dir.path().join("schema.sql");
    let original = Path::new("blog/migrations");
    let created = check_in_child(original, "snap_sql_keep", &path, &[(UPDATE_SNAPSHOTS, "1")]);
    assert_eq!(created, "Created");
    let reviewed = format!(
        "-- reviewed by alice\r\n{}",
        std::fs::read_to_string(&path)
            .expect("read")
            .replace('\n', "\r\n")
    );
    std::fs::write(&path, &reviewed).expect("write");
    for env in [(UPDATE_SNAPSHOTS, "1"), ("INSTA_UPDATE", "always")] {
        let outcome = check_in_child(original, "snap_sql_keep", &path, &[env]);
        assert_eq!(outcome, "Matched", "{env:?}");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), reviewed);
    }
}

#[test]
fn an_unreadable_file_names_its_line() {
    let dir = TempDir::new().expect("tempdir");
    let path = dir.path().join("schema.sql");
    std::fs::write(
        &path,
        "CREATE TABLE a (x);\n<<<<<<< HEAD\nCREATE TABLE b (x);\n=======\n",
    )
    .expect("write");
    let m = Migrator::new()
        .set("snap_unreadable")
        .add(0, "a", |tx: &Transaction| {
            tx.execute_batch("CREATE TABLE a (x)")
        });
    let error = check_schema_snapshot(&m, &path).unwrap_err();
    assert!(
        matches!(error, SnapshotError::Unreadable { line: 2, .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("line 2") && message.contains("not a CREATE statement"),
        "{message}"
    );
}

#[test]
fn what_the_replay_checks_fails_before_the_comparison() {
    let dir = TempDir::new().expect("tempdir");
    let path = dir.path().join("schema.sql");
    std::fs::write(&path, "").expect("write");

    // A rollback that does not undo its migration.
    let m = Migrator::new()
        .set("snap_not_reversible")
        .add(0, "a", |tx: &Transaction| {
            tx.execute_batch("CREATE TABLE a (x); CREATE INDEX a_x ON a (x)")
        })
        .add_rollback(0, |tx: &Transaction| tx.execute_batch("DROP INDEX a_x"));
    let error = check_schema_snapshot(&m, &path).unwrap_err();
    assert!(
        matches!(error, SnapshotError::NotReversible(_)),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("table a appears after the rollback"),
        "{error}"
    );

    // Rows that violate a foreign key (a step outside a transaction that
    // turns foreign keys off for itself).
    let m = Migrator::new()
        .set("snap_fk")
        .add(0, "a", |tx: &Transaction| {
            tx.execute_batch(
                "CREATE TABLE p (id INTEGER PRIMARY KEY);
                 CREATE TABLE c (p_id REFERENCES p (id));",
            )
        })
        .add_without_transaction(1, "orphans", |conn: &migrate_core::rusqlite::Connection| {
            conn.execute_batch("PRAGMA foreign_keys = OFF; INSERT INTO c VALUES (7);")
        });
    let error = check_schema_snapshot(&m, &path).unwrap_err();
    assert!(
        matches!(&error, SnapshotError::ForeignKeys { violations } if violations.len() == 1),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "the migrations leave 1 row(s) that violate foreign keys (PRAGMA foreign_key_check):\n  \
         - c rowid 1 refers to a missing p row\nfix the migration that inserts them, or the foreign key"
    );

    // A migration that fails.
    let m = Migrator::new()
        .set("snap_failing")
        .add(0, "broken", |tx: &Transaction| {
            tx.execute_batch("CREATE TABLE")
        });
    let error = check_schema_snapshot(&m, &path).unwrap_err();
    assert!(matches!(error, SnapshotError::Replay(_)), "{error:?}");
    assert!(
        error.to_string().contains("migration 0 `broken` failed"),
        "{error}"
    );
    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        "",
        "untouched"
    );
}

#[test]
fn the_live_schema_of_a_migrated_blog_is_its_snapshot() {
    // What `schema` prints for a live database equals the replay's text.
    let dir = TempDir::new().expect("tempdir");
    let mut conn = Connection::open(dir.path().join("blog.db")).expect("open");
    conn.execute_batch("PRAGMA foreign_keys = ON").expect("fk");
    blog::migrator().migrate(&mut conn).expect("migrate");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = migrate_core::cli::Command::Schema { replay: false }.run_with(
        &mut conn,
        &blog::migrator(),
        &mut out,
        &mut err,
        false,
    );
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&err));
    assert_eq!(
        String::from_utf8(out).expect("utf-8"),
        std::fs::read_to_string(BLOG_SNAPSHOT).expect("committed snapshot")
    );
}
