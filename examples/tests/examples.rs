//! The examples, run end to end on real files: each is compiled into this
//! test binary (with its migrations) and driven through its `run` function.

#[allow(dead_code)]
#[path = "../blog.rs"]
mod blog;

#[allow(dead_code)]
#[path = "../quickstart.rs"]
mod quickstart;

use migrate_core::rusqlite::Connection;
use tempfile::TempDir;

fn run_blog(db: &str, extra: &[&str]) -> String {
    let mut all = vec!["blog", "--db", db];
    all.extend_from_slice(extra);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = blog::run(&all, &mut out, &mut err, false);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&err));
    String::from_utf8(out).expect("utf-8")
}

fn tables(conn: &Connection) -> Vec<String> {
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'posts_fts_%' ORDER BY name")
        .expect("prepare");
    let rows = stmt.query_map([], |r| r.get(0)).expect("query");
    rows.collect::<Result<_, _>>().expect("rows")
}

#[test]
fn blog_migrates_a_real_file_and_walks_back_down() {
    let dir = TempDir::new().expect("tempdir");
    let path = dir.path().join("blog.db");
    let db = path.to_str().expect("utf-8 path");

    let out = run_blog(db, &["--search", "rust"]);
    assert!(out.contains("7 published_at_as_unix_time"), "{out}");
    assert!(out.contains("applied 8 migration(s)"), "{out}");
    assert!(out.contains("found: Migrations in Rust"), "{out}");

    let conn = Connection::open(&path).expect("open");
    let (published, kind, slug): (i64, String, String) = conn
        .query_row(
            "SELECT published_at, typeof(published_at), slug FROM posts WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("post 1");
    assert_eq!(
        (published, kind.as_str(), slug.as_str()),
        (1_705_309_200, "integer", "hello-world")
    );
    let children: (i64, i64) = conn
        .query_row(
            "SELECT (SELECT count(*) FROM tags), (SELECT count(*) FROM comments)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("children");
    assert_eq!(children, (3, 1), "the rebuild lost no tag and no comment");
    assert!(run_blog(db, &[]).contains("nothing to do"));

    // Walk back down one step at a time, checking the schema on the way.
    let expected_removed = [
        (7, "published_at_as_unix_time"),
        (6, "backfill_post_slugs"),
        (5, "comments_admin_flag"),
        (4, "comments"),
        (3, "posts_summary"),
        (2, "posts_search"),
        (1, "unique_post_tags"),
        (0, "initial_schema"),
    ];
    for (id, name) in expected_removed {
        let out = run_blog(db, &["down"]);
        assert!(
            out.contains(&format!("rolled back {id:>4} {name}")),
            "{out}"
        );
        if id == 7 {
            let kind: String = conn
                .query_row(
                    "SELECT typeof(published_at) FROM posts WHERE id = 1",
                    [],
                    |r| r.get(0),
                )
                .expect("post 1");
            assert_eq!(kind, "text");
            assert_eq!(
                conn.query_row("SELECT count(*) FROM tags", [], |r| r.get::<_, i64>(0))
                    .expect("tags"),
                3
            );
        }
        if id == 4 {
            assert!(!tables(&conn).contains(&"comments".to_owned()));
        }
    }
    assert_eq!(tables(&conn), vec!["migrations_blog"]);
    assert!(run_blog(db, &["down"]).contains("nothing to do"));

    // And up again: the history is reversible end to end.
    assert!(run_blog(db, &[]).contains("applied 8 migration(s)"));
}

#[test]
fn quickstart_migrates_and_rolls_back() {
    let dir = TempDir::new().expect("tempdir");
    let db = dir.path().join("q.db");
    let db = db.to_str().expect("utf-8 path");
    let run = |extra: &[&str]| {
        let mut all = vec!["quickstart", "--db", db];
        all.extend_from_slice(extra);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = quickstart::run(&all, &mut out, &mut err, false);
        (
            code,
            String::from_utf8(out).expect("utf-8"),
            String::from_utf8(err).expect("utf-8"),
        )
    };
    let (code, out, _) = run(&[]);
    assert_eq!(code, 0);
    assert!(
        out.contains("2 index_cats_by_birthday") && out.contains("applied 3 migration(s)"),
        "{out}"
    );
    let (code, out, _) = run(&["down"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("rolled back    2 index_cats_by_birthday"),
        "{out}"
    );
    let version: i64 = Connection::open(db)
        .and_then(|c| c.query_row("PRAGMA user_version", [], |r| r.get(0)))
        .expect("user_version");
    assert_eq!(version, 2);
}

#[test]
fn every_rollback_of_both_examples_restores_the_schema() {
    let checked = migrate_core::testing::check_reversible(&blog::migrator())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(checked, (0..=7).collect::<Vec<u32>>());
    let checked = migrate_core::testing::check_reversible(&migrate_core::Migrator::new())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        checked,
        vec![1, 2],
        "quickstart: migration 0 has no rollback"
    );
}

/// The README's quickstart is this example's source, so the two cannot
/// drift: the fenced block after the marker equals `quickstart.rs` less its
/// leading `//!` doc comment.
#[test]
fn readme_shows_the_quickstart_as_it_is() {
    const MARKER: &str = "<!-- examples/quickstart.rs without its doc comment:";
    let readme = include_str!("../../README.md");
    let source = include_str!("../quickstart.rs");

    let after_marker = readme
        .lines()
        .skip_while(|line| !line.starts_with(MARKER))
        .skip(1);
    let mut lines = after_marker.into_iter();
    assert_eq!(
        lines.next(),
        Some("```rust"),
        "the marker is followed by a rust block"
    );
    let shown: Vec<&str> = lines.take_while(|line| *line != "```").collect();

    let body: Vec<&str> = source
        .lines()
        .skip_while(|line| line.starts_with("//!"))
        .skip_while(|line| line.trim().is_empty())
        .collect();
    assert!(!body.is_empty());
    assert_eq!(
        shown.join("\n"),
        body.join("\n"),
        "README.md's quickstart differs from examples/quickstart.rs: copy the file (without its //! lines) into the block"
    );
}

/// A rollback that leaves rows behind passes the schema comparison and
/// makes the migration fail when applied again: the check says that it is
/// the second application that failed, and the panic says why.
#[test]
fn a_rollback_leaving_rows_behind_is_named_with_its_cause() {
    use migrate_core::rusqlite::Transaction;
    use migrate_core::testing::{check_reversible, NotReversible};
    let m = migrate_core::Migrator::new()
        .set("leaves_rows")
        .add(0, "create_roles", |tx: &Transaction| {
            tx.execute_batch("CREATE TABLE roles (name TEXT PRIMARY KEY)")
        })
        .add(1, "seed_roles", |tx: &Transaction| {
            tx.execute_batch("INSERT INTO roles VALUES ('admin')")
        })
        .add_rollback(1, |_: &Transaction| {
            Ok::<(), migrate_core::rusqlite::Error>(())
        });
    let failure = check_reversible(&m).unwrap_err();
    assert!(
        matches!(failure, NotReversible::FailedAfterRollback { id: 1, .. }),
        "{failure:?}"
    );
    assert!(
        failure
            .to_string()
            .contains("rolled back, then failed when applied again"),
        "{failure}"
    );
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        migrate_core::testing::assert_reversible(&m)
    }))
    .expect_err("assert_reversible panics");
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        message.contains("seed_roles") && message.contains("UNIQUE constraint failed"),
        "{message}"
    );
}
