//! The embeddable CLI, end to end: the example binaries run as child
//! processes on real files; their output and exit codes are checked.
//! (Exit codes: 0 ok, 1 failed, 2 usage, 3 verify found problems,
//! 4 dry-run found a failing migration.)

use std::path::{Path, PathBuf};
use std::process::Command;

use migrate_core::rusqlite::Connection;
use tempfile::TempDir;

/// The example binary, built by `cargo test` next to this test's own binary;
/// built here if this test was run on its own (`cargo test --test cli`).
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let path = profile_dir.join("examples").join(name);
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let status = Command::new(cargo)
            .args(["build", "--example", name])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo build runs");
        assert!(status.success(), "building example {name}");
    }
    path
}

struct Run {
    code: i32,
    out: String,
    err: String,
}

fn run(name: &str, db: &Path, args: &[&str]) -> Run {
    let output = Command::new(example(name))
        .arg("--db")
        .arg(db)
        .args(args)
        .output()
        .expect("example runs");
    Run {
        code: output.status.code().expect("exit code"),
        out: String::from_utf8(output.stdout).expect("utf-8 stdout"),
        err: String::from_utf8(output.stderr).expect("utf-8 stderr"),
    }
}

#[test]
fn quickstart_subcommands_end_to_end() {
    let dir = TempDir::new().expect("tempdir");
    let db = dir.path().join("q.db");

    let plan = run("quickstart", &db, &["plan"]);
    assert_eq!(plan.code, 0, "{}", plan.err);
    assert!(
        plan.out.contains("0  create_cats") && plan.out.contains("examples/quickstart.rs:"),
        "{}",
        plan.out
    );

    let dry = run("quickstart", &db, &["dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.err);
    assert!(
        dry.out
            .contains("3 migration(s) succeeded; everything was rolled back"),
        "{}",
        dry.out
    );
    assert!(
        run("quickstart", &db, &["plan"])
            .out
            .contains("create_cats"),
        "the dry run kept nothing"
    );

    let up = run("quickstart", &db, &["up", "--to", "1"]);
    assert_eq!(up.code, 0, "{}", up.err);
    assert!(up.out.contains("applied 2 migration(s)"), "{}", up.out);
    assert!(!up.out.contains('\x1b'), "no colour when not on a terminal");

    let status = run("quickstart", &db, &["status"]);
    assert_eq!(status.code, 0);
    assert!(
        status
            .out
            .contains("create_dogs                      applied"),
        "{}",
        status.out
    );
    assert!(
        status
            .out
            .contains("index_cats_by_birthday           pending"),
        "{}",
        status.out
    );

    let backup = dir.path().join("backup.db");
    let up = run(
        "quickstart",
        &db,
        &["up", "--backup", backup.to_str().expect("utf-8")],
    );
    assert_eq!(up.code, 0, "{}", up.err);
    assert!(up.out.contains("backed up to"), "{}", up.out);
    let backed_up: i64 = Connection::open(&backup)
        .and_then(|c| c.query_row("SELECT count(*) FROM migrations", [], |r| r.get(0)))
        .expect("backup is a database");
    assert_eq!(
        backed_up, 2,
        "the backup was taken before the third migration"
    );

    let verify = run("quickstart", &db, &["verify"]);
    assert_eq!(verify.code, 0, "{}", verify.out);

    let down = run("quickstart", &db, &["down", "--to", "0"]);
    assert_eq!(down.code, 0, "{}", down.err);
    assert!(
        down.out.contains("rolled back 2 migration(s)"),
        "{}",
        down.out
    );

    // Migration 0 has no rollback: refused, exit 1, nothing changed.
    let all = run("quickstart", &db, &["down", "--all"]);
    assert_eq!(all.code, 1);
    assert!(all.err.contains("has no rollback"), "{}", all.err);

    let usage = run("quickstart", &db, &["down", "--to", "1", "--all"]);
    assert_eq!(usage.code, 2, "conflicting flags are a usage error");

    // An applied migration whose recorded checksum differs: verify exit 3.
    Connection::open(&db)
        .and_then(|c| {
            c.execute(
                "UPDATE migrations SET checksum = 'old' , chain = 'old' WHERE id = 0",
                [],
            )
        })
        .expect("tamper");
    let verify = run("quickstart", &db, &["verify"]);
    assert_eq!(verify.code, 3, "{}", verify.out);
    assert!(
        verify.out.contains("problem: migration 0 `create_cats`"),
        "{}",
        verify.out
    );
    let status = run("quickstart", &db, &["status"]);
    assert!(status.out.contains("MODIFIED"), "{}", status.out);
}

#[test]
fn baseline_adopts_a_hand_built_database() {
    let dir = TempDir::new().expect("tempdir");
    let db = dir.path().join("hand.db");
    Connection::open(&db)
        .and_then(|c| {
            c.execute_batch("CREATE TABLE cats (name TEXT PRIMARY KEY, born TEXT NOT NULL)")
        })
        .expect("hand-built");
    let refused = run("quickstart", &db, &["up"]);
    assert_eq!(refused.code, 1);
    assert!(refused.err.contains("baseline"), "{}", refused.err);
    let baseline = run("quickstart", &db, &["baseline", "0"]);
    assert_eq!(baseline.code, 0, "{}", baseline.err);
    let up = run("quickstart", &db, &["up"]);
    assert_eq!(up.code, 0, "{}", up.err);
    assert!(up.out.contains("applied 2 migration(s)"), "{}", up.out);
}

#[test]
fn blog_dry_run_stops_before_its_rebuild_and_walks_down() {
    let dir = TempDir::new().expect("tempdir");
    let db = dir.path().join("blog.db");
    let dry = run("blog", &db, &["dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.err);
    assert!(
        dry.out.contains("stopped before migration 7"),
        "{}",
        dry.out
    );
    assert!(dry.out.contains("7 migration(s) succeeded"), "{}", dry.out);

    let up = run("blog", &db, &["--search", "rust"]);
    assert_eq!(up.code, 0, "{}", up.err);
    assert!(up.out.contains("found: Migrations in Rust"), "{}", up.out);
    let down = run("blog", &db, &["down", "--to", "3"]);
    assert_eq!(down.code, 0, "{}", down.err);
    assert!(
        down.out.contains("rolled back 4 migration(s)"),
        "{}",
        down.out
    );
    let down = run("blog", &db, &["down", "--all"]);
    assert_eq!(down.code, 0, "{}", down.err);
    assert!(
        down.out.contains("rolled back 4 migration(s)"),
        "{}",
        down.out
    );
}

#[test]
fn a_failing_migration_is_exit_1_and_a_failing_dry_run_exit_4() {
    let dir = TempDir::new().expect("tempdir");
    let db = dir.path().join("blog.db");
    // A `posts` table in the way makes migration 0 fail.
    Connection::open(&db)
        .and_then(|c| {
            c.execute_batch(
                "CREATE TABLE migrations_blog ( -- migrate-core tracking table
                    id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL,
                    checksum TEXT NOT NULL, chain TEXT NOT NULL);
                 CREATE TABLE posts (x);",
            )
        })
        .expect("setup");
    let dry = run("blog", &db, &["dry-run"]);
    assert_eq!(dry.code, 4, "{}", dry.out);
    assert!(
        dry.out
            .contains("FAILED migration 0 `initial_schema` failed"),
        "{}",
        dry.out
    );
    let up = run("blog", &db, &["up"]);
    assert_eq!(up.code, 1);
    assert!(
        up.out.contains("FAILED") && up.err.contains("table posts already exists"),
        "{}\n{}",
        up.out,
        up.err
    );
}
