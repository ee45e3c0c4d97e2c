//! The embeddable CLI, end to end: the example binaries run as child
//! processes on real files; their output and exit codes are checked.
//! (Exit codes: 0 ok, 1 failed, 2 usage, 3 verify found problems,
//! 4 dry-run or plan --lint found a failing migration, 5 plan --lint found
//! findings at or above --deny.)

use std::path::Path;
use std::time::{Duration, Instant};

use migrate_core::rusqlite::Connection;
use tempfile::TempDir;

mod common;
use common::{example, run, run_in};

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

// ---------------------------------------------------------------------------
// `backup` and `up --backup` against hostile targets. The quickstart example
// takes `--lock-timeout SECONDS` and gives it to its Migrator, whose lock
// timeout bounds the backup's wait.

/// `(id, name)` of the tracking rows.
fn history(db: &Path) -> Vec<(i64, String)> {
    let conn = Connection::open(db).expect("open");
    let mut stmt = conn
        .prepare("SELECT id, name FROM migrations ORDER BY id")
        .expect("prepare");
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query");
    rows.collect::<Result<_, _>>().expect("rows")
}

/// A database file with one table and row, as an earlier backup would be.
fn earlier_backup(path: &Path) {
    Connection::open(path)
        .and_then(|c| {
            c.execute_batch("CREATE TABLE kept (x); INSERT INTO kept VALUES ('old backup');")
        })
        .expect("earlier backup");
}

/// Another connection holding `BEGIN EXCLUSIVE` (with a write) on `path`.
fn hold_exclusive(path: &Path) -> Connection {
    let holder = Connection::open(path).expect("open the target");
    holder
        .execute_batch("BEGIN EXCLUSIVE; INSERT INTO kept VALUES ('uncommitted');")
        .expect("lock the target");
    holder
}

/// A target another connection is writing has its journal beside it,
/// which SQLite would read into whatever file is put in the target's
/// place: refused at once, saying which file and what to do, the earlier
/// backup untouched. (Before the copy went to a file of its own: it waited
/// the lock timeout, then failed.)
#[test]
fn backup_to_a_target_another_connection_is_writing_is_refused_at_once() {
    let dir = TempDir::new().expect("tempdir");
    let db = dir.path().join("q.db");
    assert_eq!(run("quickstart", &db, &["up"]).code, 0);
    let target = dir.path().join("backup.db");
    earlier_backup(&target);
    let holder = hold_exclusive(&target);

    let backup = run(
        "quickstart",
        &db,
        &[
            "--lock-timeout",
            "1",
            "backup",
            target.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(backup.code, 1, "{}\n{}", backup.out, backup.err);
    assert!(
        backup.err.contains("backup.db-journal is beside it")
            && backup.err.contains("close what has it open")
            && backup.err.contains("choose another path"),
        "says which file is in the way and what to do: {}",
        backup.err
    );

    // Once the other connection is done, the same command works.
    holder.execute_batch("ROLLBACK").expect("release");
    drop(holder);
    let backup = run(
        "quickstart",
        &db,
        &["backup", target.to_str().expect("utf-8")],
    );
    assert_eq!(backup.code, 0, "{}", backup.err);
    assert_eq!(history(&target).len(), 3, "a copy of the migrated database");
}

/// A connection reading the earlier backup (no journal beside it) keeps
/// reading the file it has open; the backup is put in its place.
#[test]
fn backup_over_an_earlier_backup_being_read_replaces_it() {
    let dir = TempDir::new().expect("tempdir");
    let db = dir.path().join("q.db");
    assert_eq!(run("quickstart", &db, &["up"]).code, 0);
    let target = dir.path().join("backup.db");
    earlier_backup(&target);
    let reader = Connection::open(&target).expect("open the earlier backup");
    reader
        .execute_batch("BEGIN; SELECT * FROM kept;")
        .expect("read it");
    let backup = run(
        "quickstart",
        &db,
        &["backup", target.to_str().expect("utf-8")],
    );
    assert_eq!(backup.code, 0, "{}", backup.err);
    assert_eq!(history(&target).len(), 3, "a copy of the migrated database");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".partial"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "nothing left beside it: {leftovers:?}"
    );
    drop(reader);
}

/// Names SQLite does not take as files: before, `backup :memory:` and
/// `backup 'file:x.db?mode=memory'` said "backed up" and wrote nothing.
#[test]
fn backup_to_a_name_that_is_not_a_file_is_refused() {
    let dir = TempDir::new().expect("tempdir");
    let db = dir.path().join("q.db");
    assert_eq!(run("quickstart", &db, &["up", "--to", "0"]).code, 0);
    for target in [":memory:", "file:copy.db?mode=memory", "FILE:copy.db"] {
        let backup = run_in(
            "quickstart",
            &db,
            &["backup", target],
            &[],
            Some(dir.path()),
        );
        assert_eq!(backup.code, 1, "{target}: {}\n{}", backup.out, backup.err);
        assert!(
            backup.err.contains("is not a file path"),
            "{target}: {}",
            backup.err
        );
        let up = run_in(
            "quickstart",
            &db,
            &["up", "--backup", target],
            &[],
            Some(dir.path()),
        );
        assert_eq!(up.code, 1, "{target}: {}", up.err);
        assert_eq!(history(&db).len(), 1, "{target}: nothing applied");
    }
}

/// Another connection writing to a WAL database every few milliseconds:
/// each write started the copy again, for ever (the lock deadline counts
/// only waits for locks, and none came). In WAL mode a read holds no
/// writer back, so the rest is copied in one step from one snapshot.
#[test]
fn backup_of_a_wal_database_written_to_all_the_time_finishes() {
    let dir = TempDir::new().expect("tempdir");
    let db = dir.path().join("q.db");
    assert_eq!(run("quickstart", &db, &["up"]).code, 0);
    Connection::open(&db)
        .and_then(|conn| {
            conn.execute_batch(
                "PRAGMA journal_mode = WAL; CREATE TABLE ballast (x);
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50000)
                 INSERT INTO ballast SELECT randomblob(1000) FROM n;",
            )
        })
        .expect("ballast");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (db, stop) = (db.clone(), std::sync::Arc::clone(&stop));
        std::thread::spawn(move || {
            let conn = Connection::open(&db).expect("open");
            let mut writes = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                conn.execute("INSERT INTO ballast VALUES (randomblob(100))", [])
                    .expect("write");
                writes += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
            writes
        })
    };
    let target = dir.path().join("backup.db");
    let backup = run(
        "quickstart",
        &db,
        &[
            "--lock-timeout",
            "2",
            "backup",
            target.to_str().expect("utf-8"),
        ],
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let writes = writer.join().expect("writer");
    assert_eq!(backup.code, 0, "{}\n{}", backup.out, backup.err);
    assert!(writes > 0);
    let copy = Connection::open(&target).expect("open the copy");
    let integrity: String = copy
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .expect("check");
    assert_eq!(integrity, "ok");
    assert_eq!(history(&target).len(), 3);
}

/// A backup killed part-way leaves the earlier backup whole: the copy goes
/// to a file of its own, renamed over the target only when complete
/// (before: written over the target in place, a kill left it "malformed",
/// and `status` on it still said every migration was applied).
#[test]
fn a_backup_killed_part_way_leaves_the_earlier_backup_whole() {
    let dir = TempDir::new().expect("tempdir");
    let db = dir.path().join("q.db");
    assert_eq!(run("quickstart", &db, &["up"]).code, 0);
    // Big enough that the copy takes a while.
    Connection::open(&db)
        .and_then(|conn| {
            conn.execute_batch(
                "CREATE TABLE ballast (x);
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40000)
                 INSERT INTO ballast SELECT randomblob(1000) FROM n;",
            )
        })
        .expect("ballast");
    let target = dir.path().join("backup.db");
    earlier_backup(&target);
    let earlier = std::fs::read(&target).expect("read the earlier backup");
    let mut killed_part_way = 0;
    for delay_ms in [5, 20, 60, 150] {
        let mut child = std::process::Command::new(example("quickstart"))
            .arg("--db")
            .arg(&db)
            .args(["backup", target.to_str().expect("utf-8")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let status = child.wait().expect("wait");
        let now = std::fs::read(&target).expect("read the target");
        if status.success() {
            // It finished first: a whole copy, the earlier one replaced.
            assert_eq!(history(&target).len(), 3);
            std::fs::write(&target, &earlier).expect("put the earlier backup back");
        } else {
            killed_part_way += 1;
            assert!(
                now == earlier,
                "killed after {delay_ms} ms: the earlier backup changed"
            );
        }
        for entry in std::fs::read_dir(dir.path()).expect("list").flatten() {
            if entry.file_name().to_string_lossy().ends_with(".partial") {
                std::fs::remove_file(entry.path()).expect("remove the partial copy");
            }
        }
    }
    assert!(killed_part_way > 0, "no kill landed during a copy");
    let conn = Connection::open(&target).expect("open");
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .expect("check");
    assert_eq!(integrity, "ok");
}

#[test]
fn up_with_a_busy_backup_target_applies_nothing() {
    let dir = TempDir::new().expect("tempdir");
    let db = dir.path().join("q.db");
    assert_eq!(run("quickstart", &db, &["up", "--to", "0"]).code, 0);
    let before = history(&db);
    let bytes = std::fs::read(&db).expect("read db");
    let target = dir.path().join("backup.db");
    earlier_backup(&target);
    let holder = hold_exclusive(&target);

    let up = run(
        "quickstart",
        &db,
        &[
            "--lock-timeout",
            "1",
            "up",
            "--backup",
            target.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(up.code, 1, "{}\n{}", up.out, up.err);
    assert!(up.err.contains("-journal is beside it"), "{}", up.err);
    assert!(!up.out.contains("applied"), "{}", up.out);
    assert_eq!(history(&db), before, "no migration was applied");
    assert_eq!(
        std::fs::read(&db).expect("read db"),
        bytes,
        "the database is untouched"
    );
    drop(holder);
}

#[test]
fn backup_onto_the_database_itself_is_refused_and_writes_nothing() {
    let dir = TempDir::new().expect("tempdir");
    let db = dir.path().join("q.db");
    assert_eq!(run("quickstart", &db, &["up", "--to", "1"]).code, 0);
    std::fs::create_dir(dir.path().join("x")).expect("mkdir x");
    let mut spellings = vec![
        ("the same path", db.clone()),
        (
            "another spelling",
            dir.path().join("x").join("..").join("q.db"),
        ),
        ("its rollback journal", dir.path().join("q.db-journal")),
        ("its WAL file", dir.path().join("x/../q.db-wal")),
    ];
    #[cfg(unix)]
    {
        let link = dir.path().join("link.db");
        std::os::unix::fs::symlink(&db, &link).expect("symlink");
        spellings.push(("a symlink to it", link));
        let hard = dir.path().join("hard.db");
        std::fs::hard_link(&db, &hard).expect("hard link");
        spellings.push(("a hard link to it", hard));
    }
    let bytes = std::fs::read(&db).expect("read db");
    let before = history(&db);
    for (case, target) in spellings {
        let target = target.to_str().expect("utf-8");
        for args in [
            vec!["--lock-timeout", "1", "backup", target],
            vec!["--lock-timeout", "1", "up", "--backup", target],
        ] {
            let refused = run("quickstart", &db, &args);
            assert_eq!(refused.code, 1, "{case}: {}\n{}", refused.out, refused.err);
            assert!(
                refused.err.contains("the database itself") || refused.err.contains("SQLite's own"),
                "{case}: {}",
                refused.err
            );
            assert!(
                refused.elapsed < Duration::from_secs(1),
                "{case}: refused up front"
            );
            assert_eq!(std::fs::read(&db).expect("read db"), bytes, "{case}");
            assert_eq!(history(&db), before, "{case}: nothing applied");
        }
    }
    assert!(!dir.path().join("q.db-journal").exists() && !dir.path().join("q.db-wal").exists());
}

#[test]
fn backup_refuses_to_overwrite_what_is_not_a_database() {
    let dir = TempDir::new().expect("tempdir");
    let db = dir.path().join("q.db");
    assert_eq!(run("quickstart", &db, &["up"]).code, 0);

    // A file that is not a database: a typo must not destroy it.
    let notes = dir.path().join("notes.txt");
    let text = "my notes, not a database\n".repeat(200);
    std::fs::write(&notes, &text).expect("write notes");
    let refused = run(
        "quickstart",
        &db,
        &["backup", notes.to_str().expect("utf-8")],
    );
    assert_eq!(refused.code, 1, "{}", refused.out);
    assert!(
        refused.err.contains("not an SQLite database"),
        "{}",
        refused.err
    );
    assert_eq!(std::fs::read_to_string(&notes).expect("notes"), text);

    // A directory.
    let refused = run(
        "quickstart",
        &db,
        &["backup", dir.path().to_str().expect("utf-8")],
    );
    assert_eq!(refused.code, 1, "{}", refused.out);
    assert!(refused.err.contains("is a directory"), "{}", refused.err);

    // A directory that does not exist: a clear error, nothing created.
    let missing = dir.path().join("missing").join("b.db");
    let refused = run(
        "quickstart",
        &db,
        &["backup", missing.to_str().expect("utf-8")],
    );
    assert_eq!(refused.code, 1, "{}", refused.out);
    assert!(refused.err.contains("b.db"), "{}", refused.err);
    assert!(!dir.path().join("missing").exists());

    // An earlier backup (an SQLite file) and an empty file are replaced.
    let target = dir.path().join("backup.db");
    earlier_backup(&target);
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").expect("empty file");
    for path in [&target, &empty] {
        let backup = run(
            "quickstart",
            &db,
            &["backup", path.to_str().expect("utf-8")],
        );
        assert_eq!(backup.code, 0, "{}", backup.err);
        assert_eq!(history(path).len(), 3);
    }
}

#[test]
fn backup_of_a_database_another_connection_is_writing_fails_within_the_lock_timeout() {
    let dir = TempDir::new().expect("tempdir");
    let db = dir.path().join("q.db");
    assert_eq!(run("quickstart", &db, &["up"]).code, 0);
    let writer = Connection::open(&db).expect("open");
    writer
        .execute_batch("BEGIN EXCLUSIVE; INSERT INTO cats VALUES ('Uncommitted', '2024-01-01');")
        .expect("lock the database");
    let target = dir.path().join("backup.db");

    let backup = run(
        "quickstart",
        &db,
        &[
            "--lock-timeout",
            "1",
            "backup",
            target.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(backup.code, 1, "{}\n{}", backup.out, backup.err);
    // Bounded by the lock timeout, not by the connection's own busy
    // timeout (rusqlite's default is 5 s) inside each step.
    assert!(
        backup.elapsed >= Duration::from_secs(1) && backup.elapsed < Duration::from_secs(4),
        "{:?}",
        backup.elapsed
    );
    assert!(
        backup.err.contains("kept the database locked") && backup.err.contains("retry"),
        "{}",
        backup.err
    );
    assert!(!target.exists(), "the file it created is removed again");
    drop(writer);
}

#[test]
fn backup_restores_the_connections_busy_timeout() {
    let dir = TempDir::new().expect("tempdir");
    let mut conn = Connection::open(dir.path().join("q.db")).expect("open");
    conn.busy_timeout(Duration::from_millis(1234))
        .expect("busy timeout");
    let migrator = migrate_core::Migrator::new()
        .set("cli_busy")
        .lock_timeout(Duration::from_millis(200));
    for target in [dir.path().join("ok.db"), dir.path().join("q.db")] {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let _ = migrate_core::cli::Command::Backup { path: target }
            .run_with(&mut conn, &migrator, &mut out, &mut err, false);
        let timeout: i64 = conn
            .query_row("PRAGMA busy_timeout", [], |r| r.get(0))
            .expect("busy timeout");
        assert_eq!(timeout, 1234, "{}", String::from_utf8_lossy(&err));
    }
}

#[test]
fn backup_inside_an_open_transaction_is_refused_at_once() {
    let dir = TempDir::new().expect("tempdir");
    let mut conn = Connection::open(dir.path().join("q.db")).expect("open");
    conn.execute_batch("CREATE TABLE t (x); BEGIN; INSERT INTO t VALUES (1);")
        .expect("open write transaction");
    let migrator = migrate_core::Migrator::new()
        .set("cli_busy")
        .lock_timeout(Duration::from_secs(3));
    let target = dir.path().join("b.db");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let start = Instant::now();
    let code = migrate_core::cli::Command::Backup {
        path: target.clone(),
    }
    .run_with(&mut conn, &migrator, &mut out, &mut err, false);
    let err = String::from_utf8_lossy(&err);
    assert_eq!(code, migrate_core::cli::EXIT_FAILED, "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "waiting cannot help: {:?}",
        start.elapsed()
    );
    assert!(
        err.contains("inside a transaction") && err.contains("commit or roll it back"),
        "{err}"
    );
    assert!(!target.exists());
    assert!(
        !conn.is_autocommit(),
        "the caller's transaction is left alone"
    );
}

// ---------------------------------------------------------------------------
// `schema` and `plan --lint`.

#[test]
fn schema_prints_the_replay_and_the_live_database_in_the_snapshot_format() {
    let dir = TempDir::new().expect("tempdir");
    let db = dir.path().join("blog.db");
    let snapshot = std::fs::read_to_string("tests/snapshots/blog.schema.sql").expect("snapshot");

    // `blog schema --replay > tests/snapshots/blog.schema.sql` wrote it.
    let replay = run("blog", &db, &["schema", "--replay"]);
    assert_eq!(replay.code, 0, "{}", replay.err);
    assert_eq!(replay.out, snapshot);

    // A new database: the header alone.
    let empty = run("blog", &db, &["schema"]);
    assert_eq!(empty.code, 0, "{}", empty.err);
    assert!(
        empty.out.starts_with("-- ") && empty.out.lines().count() == 1,
        "{}",
        empty.out
    );

    // Migrated: the live schema is the replay's, tracking table left out.
    assert_eq!(run("blog", &db, &["up"]).code, 0);
    let live = run("blog", &db, &["schema"]);
    assert_eq!(live.out, snapshot);
    assert!(!live.out.contains("migrations_blog"));

    // Rolled back: no longer.
    assert_eq!(run("blog", &db, &["down", "--to", "3"]).code, 0);
    let live = run("blog", &db, &["schema"]);
    assert!(!live.out.contains("CREATE TABLE comments"), "{}", live.out);
    assert!(
        live.out.contains("    published_at TEXT,\n"),
        "{}",
        live.out
    );
}

#[test]
fn plan_lint_reports_what_the_shops_migrations_destroy_with_exit_5() {
    let dir = TempDir::new().expect("tempdir");
    let db = dir.path().join("shop.db");
    assert_eq!(run("shop", &db, &["up", "--to", "0"]).code, 0);
    let bytes = std::fs::read(&db).expect("read");

    let lint = run("shop", &db, &["plan", "--lint"]);
    assert_eq!(lint.code, 5, "{}\n{}", lint.out, lint.err);
    for line in [
        "   1  drop_legacy_coupons",
        "        LOSS table legacy_coupons dropped with its 2 rows\n",
        "   2  require_customer_email",
        "        LOSS 5 rows deleted from orders (5 → 0), probably by ON DELETE CASCADE from customers",
        "        RISK column customers.email is now NOT NULL without a default (customers has 3 rows)",
        "        RISK index customers_email on customers is gone: customers was rebuilt",
        "        LOSS column customers.phone dropped with 2 value(s) (not NULL) in 3 rows of the table\n",
        "   4  index_orders_by_total",
    ] {
        assert!(lint.out.contains(line), "{line}\n---\n{}", lint.out);
    }
    assert!(
        lint.out
            .lines()
            .any(|l| l.starts_with("   4  index_orders_by_total") && l.ends_with(" ms  clean")),
        "{}",
        lint.out
    );
    assert_eq!(
        lint.out.lines().last(),
        Some("lint: pending=4 ran=4 failed=none loss=3 risk=2 info=0 deny=risk exit=5")
    );
    let lint = run("shop", &db, &["plan", "--lint", "--deny", "loss"]);
    assert_eq!(lint.code, 5);
    assert!(lint.out.ends_with("deny=loss exit=5\n"), "{}", lint.out);
    assert_eq!(
        std::fs::read(&db).expect("read"),
        bytes,
        "the database is untouched"
    );
    assert!(run("shop", &db, &["plan"])
        .out
        .contains("drop_legacy_coupons"));

    // Past the destructive steps, with the phones already gone by hand: an
    // info finding and a clean step pass the default level, not `info`.
    assert_eq!(run("shop", &db, &["up", "--to", "2"]).code, 0);
    Connection::open(&db)
        .and_then(|c| c.execute_batch("UPDATE customers SET phone = NULL"))
        .expect("forget the phones");
    let lint = run("shop", &db, &["plan", "--lint"]);
    assert_eq!(lint.code, 0, "{}", lint.out);
    assert!(
        lint.out.contains(
            "        INFO column customers.phone dropped (NULL in all 3 rows of the table)"
        ),
        "{}",
        lint.out
    );
    assert!(
        lint.out
            .ends_with("lint: pending=2 ran=2 failed=none loss=0 risk=0 info=1 deny=risk exit=0\n"),
        "{}",
        lint.out
    );
    assert_eq!(
        run("shop", &db, &["plan", "--lint", "--deny", "info"]).code,
        5
    );

    // Nothing pending.
    assert_eq!(run("shop", &db, &["up"]).code, 0);
    let lint = run("shop", &db, &["plan", "--lint"]);
    assert_eq!(lint.code, 0);
    assert_eq!(
        lint.out,
        "nothing to apply\nlint: pending=0 ran=0 failed=none loss=0 risk=0 info=0 deny=risk exit=0\n"
    );

    // --deny needs --lint.
    assert_eq!(run("shop", &db, &["plan", "--deny", "loss"]).code, 2);
}

#[test]
fn plan_lint_a_migration_failing_on_this_data_is_exit_4_and_changes_nothing() {
    let dir = TempDir::new().expect("tempdir");
    let db = dir.path().join("blog.db");
    assert_eq!(run("blog", &db, &["up", "--to", "5"]).code, 0);
    // A second post titled like the first: migration 6's unique slug index
    // cannot be built on this data.
    Connection::open(&db)
        .and_then(|c| {
            c.execute_batch("INSERT INTO posts (title, body) VALUES ('Hello, world', 'again')")
        })
        .expect("a duplicate");
    let bytes = std::fs::read(&db).expect("read");
    let lint = run("blog", &db, &["plan", "--lint"]);
    assert_eq!(lint.code, 4, "{}\n{}", lint.out, lint.err);
    for line in [
        "   6  backfill_post_slugs",
        "FAILED on this data\n",
        "        FAIL migration 6 `backfill_post_slugs` failed and was rolled back: UNIQUE constraint failed: posts.slug\n",
        "        hint: this data has duplicates in posts.slug: remove or merge them",
        "   7  published_at_as_unix_time        not run: an earlier migration failed on this data\n",
    ] {
        assert!(lint.out.contains(line), "{line}\n---\n{}", lint.out);
    }
    assert!(
        lint.out
            .ends_with("lint: pending=2 ran=1 failed=6 loss=0 risk=0 info=0 deny=risk exit=4\n"),
        "{}",
        lint.out
    );
    assert_eq!(
        std::fs::read(&db).expect("read"),
        bytes,
        "the database is untouched"
    );
}

// Colour: anstream's AutoStream decides, from the environment and whether
// stdout is a terminal.

/// `status` of a migrated quickstart database, with `env`, stdout a pipe.
fn status_with(env: &[(&str, &str)]) -> common::Run {
    let dir = TempDir::new().expect("tempdir");
    let db = dir.path().join("q.db");
    assert_eq!(run("quickstart", &db, &["up"]).code, 0);
    common::run_in("quickstart", &db, &["status"], env, None)
}

const GREEN: &str = "\x1b[32m";

#[test]
fn colour_on_a_pipe_only_with_clicolor_force_and_never_with_no_color() {
    let plain = status_with(&[]);
    assert!(plain.out.contains("applied"), "{}", plain.out);
    assert!(
        !plain.out.contains('\x1b'),
        "a pipe: no colour\n{:?}",
        plain.out
    );

    let forced = status_with(&[("CLICOLOR_FORCE", "1")]);
    assert!(
        forced.out.contains(&format!("{GREEN}applied")),
        "CLICOLOR_FORCE: colour even on a pipe\n{:?}",
        forced.out
    );

    let no_color = status_with(&[("NO_COLOR", "1"), ("CLICOLOR_FORCE", "1")]);
    assert!(
        !no_color.out.contains('\x1b'),
        "NO_COLOR wins\n{:?}",
        no_color.out
    );

    // Errors on stderr too.
    let dir = TempDir::new().expect("tempdir");
    let db = dir.path().join("q.db");
    let refused = common::run_in(
        "quickstart",
        &db,
        &["down", "--to", "7"],
        &[("CLICOLOR_FORCE", "1")],
        None,
    );
    assert_eq!(refused.code, 1);
    assert!(
        refused.err.starts_with("\x1b[31merror"),
        "{:?}",
        refused.err
    );
}

#[test]
fn json_is_never_in_colour() {
    let dir = TempDir::new().expect("tempdir");
    let db = dir.path().join("q.db");
    for args in [
        &["up", "--format", "json"][..],
        &["status", "--format", "json"],
        &["down", "--all", "--format", "json"],
    ] {
        let run = common::run_in("quickstart", &db, args, &[("CLICOLOR_FORCE", "1")], None);
        assert!(run.out.starts_with('{'), "{args:?}: {:?}", run.out);
        assert!(!run.out.contains('\x1b'), "{args:?}: {:?}", run.out);
    }
}

/// Runs `status` under a pseudo-terminal (util-linux's `script`), with `env`.
#[cfg(target_os = "linux")]
fn status_on_a_terminal(env: &[(&str, &str)]) -> String {
    let dir = TempDir::new().expect("tempdir");
    let db = dir.path().join("q.db");
    assert_eq!(run("quickstart", &db, &["up"]).code, 0);
    let program = format!(
        "'{}' --db '{}' status",
        example("quickstart").display(),
        db.display()
    );
    let mut command = std::process::Command::new("script");
    command.args(["-qec", &program, "/dev/null"]);
    for variable in ["NO_COLOR", "CLICOLOR", "CLICOLOR_FORCE", "CI"] {
        command.env_remove(variable);
    }
    command
        .env("TERM", "xterm-256color")
        .envs(env.iter().copied());
    let run = common::spawn(command, "script quickstart status");
    assert_eq!(
        run.code, 0,
        "util-linux's `script` runs the example on a pseudo-terminal: {}",
        run.err
    );
    assert!(run.out.contains("applied"), "{:?}", run.out);
    run.out
}

#[cfg(target_os = "linux")]
#[test]
fn colour_on_a_terminal_unless_no_color_or_clicolor_0() {
    let terminal = status_on_a_terminal(&[]);
    assert!(
        terminal.contains(&format!("{GREEN}applied")),
        "{terminal:?}"
    );
    let no_color = status_on_a_terminal(&[("NO_COLOR", "1")]);
    assert!(!no_color.contains('\x1b'), "{no_color:?}");
    let clicolor_0 = status_on_a_terminal(&[("CLICOLOR", "0")]);
    assert!(!clicolor_0.contains('\x1b'), "{clicolor_0:?}");
}

// Rough edges.

#[test]
fn down_all_without_a_rollback_says_nothing_was_rolled_back_and_what_to_do() {
    let dir = TempDir::new().expect("tempdir");
    let db = dir.path().join("q.db");
    assert_eq!(run("quickstart", &db, &["up"]).code, 0);
    let down = run("quickstart", &db, &["down", "--all"]);
    assert_eq!(down.code, 1, "{}", down.out);
    assert!(
        down.err.contains(
            "error: nothing was rolled back: migration 0 `create_cats` (examples/quickstart.rs:"
        ) && down.err.contains(
            "has no rollback, and `down --all` rolls back every applied migration or none"
        ),
        "{}",
        down.err
    );
    assert!(
        down.err
            .contains("hint: add a `#[rollback(0)]` function that undoes it (then rebuild)"),
        "{}",
        down.err
    );
    assert_eq!(history(&db).len(), 3, "nothing was rolled back");

    // The way out the hint gives for a later migration: roll back to it.
    let down_to = run("quickstart", &db, &["down", "--to", "0"]);
    assert_eq!(down_to.code, 0, "{}", down_to.err);
    assert_eq!(history(&db).len(), 1);
    // `down` alone on it: the same message, without `--all`'s clause.
    let once = run("quickstart", &db, &["down"]);
    assert_eq!(once.code, 1);
    assert!(
        once.err.contains(
            "nothing was rolled back: migration 0 `create_cats` (examples/quickstart.rs:"
        ) && !once.err.contains("--all"),
        "{}",
        once.err
    );
}

#[test]
fn dry_run_with_nothing_pending_says_so() {
    let dir = TempDir::new().expect("tempdir");
    let db = dir.path().join("q.db");
    assert_eq!(run("quickstart", &db, &["up"]).code, 0);
    let dry = run("quickstart", &db, &["dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.err);
    assert_eq!(dry.out, "dry run: nothing pending, nothing to try\n");
}

/// A database file that is not a database: the backup's error names it,
/// not the target, and creates no target.
#[test]
fn backup_of_a_file_that_is_not_a_database_blames_the_database() {
    let dir = TempDir::new().expect("tempdir");
    let db = dir.path().join("notes.db");
    std::fs::write(&db, "my notes, not a database\n".repeat(200)).expect("write notes");
    let target = dir.path().join("bk.db");
    let refused = run(
        "quickstart",
        &db,
        &["backup", target.to_str().expect("utf-8")],
    );
    assert_eq!(refused.code, 1, "{}", refused.out);
    assert!(
        refused
            .err
            .contains("the database being backed up cannot be read")
            && refused.err.contains("not a database"),
        "{}",
        refused.err
    );
    assert!(!target.exists(), "a backup file was left behind");
}

/// `verify` reports what it finds in a history with exit code 3; a file it
/// cannot read at all is a failure (exit 1), not a finding.
#[test]
fn verify_of_a_file_that_is_not_a_database_fails_rather_than_finds() {
    let dir = TempDir::new().expect("tempdir");
    let db = dir.path().join("notes.db");
    std::fs::write(&db, "my notes, not a database\n".repeat(200)).expect("write notes");
    let verify = run("quickstart", &db, &["verify"]);
    assert_eq!(verify.code, 1, "{}\n{}", verify.out, verify.err);
    assert!(verify.err.contains("not a database"), "{}", verify.err);
    // Nor does `status` print its table's header before the error.
    let status = run("quickstart", &db, &["status"]);
    assert_eq!(status.code, 1, "{}\n{}", status.out, status.err);
    assert_eq!(status.out, "", "{}", status.err);
}

/// The goose example on a database goose migrated through 00001: adopted,
/// 00002 applied; `down` of 00002, which has no `-- +goose Down` section,
/// says to write one in its file (a probe's finding: the hint said to add
/// `00002_add_done.down.sql`, which goose would read as another migration);
/// 00001's Down section rolls it back.
#[test]
fn goose_database_adopted_and_its_missing_down_section_named() {
    let dir = TempDir::new().expect("tempdir");
    let db = dir.path().join("g.db");
    {
        let conn = Connection::open(&db).expect("open");
        conn.execute_batch(
            "CREATE TABLE goose_db_version (
                 id INTEGER PRIMARY KEY AUTOINCREMENT, version_id INTEGER NOT NULL,
                 is_applied INTEGER NOT NULL, tstamp TIMESTAMP DEFAULT (datetime('now')));
             INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, 1);
             CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
             INSERT INTO goose_db_version (version_id, is_applied) VALUES (1, 1);
             INSERT INTO notes (body) VALUES ('kept');",
        )
        .expect("what goose left");
    }
    let first = run("goose", &db, &[]);
    assert_eq!(first.code, 0, "{}", first.err);
    let conn = Connection::open(&db).expect("open");
    let (body, done): (String, i64) = conn
        .query_row("SELECT body, done FROM notes", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("00002 applied once, the row kept");
    assert_eq!((body.as_str(), done), ("kept", 0));
    drop(conn);

    let down = run("goose", &db, &["down"]);
    assert_eq!(down.code, 1, "{}", down.out);
    assert!(
        down.err.contains("has no rollback")
            && down.err.contains(
                "write the rollback's SQL under a `-- +goose Down` line at the end of \
                 goose/migrations/00002_add_done.sql"
            )
            && !down.err.contains(".down.sql"),
        "{}",
        down.err
    );
}

/// Round 17, the backup's own file attacked: through a symbolic link, the
/// file it names is what is replaced and what SQLite would read a journal
/// into; a dangling link has its file created; the new backup keeps the
/// earlier one's permissions (or, first, the database's); a name near the
/// system's length limit still works.
#[cfg(unix)]
#[test]
fn backup_through_links_keeps_permissions_and_long_names() {
    use std::os::unix::fs::{symlink, PermissionsExt};
    let dir = TempDir::new().expect("tempdir");
    let db = dir.path().join("q.db");
    assert_eq!(run("quickstart", &db, &["up"]).code, 0);
    let mode = |path: &Path| {
        std::fs::metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777
    };
    let backup = |target: &Path| {
        run(
            "quickstart",
            &db,
            &["backup", target.to_str().expect("utf-8")],
        )
    };

    // A journal beside the file a link names: refused, as when named.
    let real = dir.path().join("real");
    std::fs::create_dir(&real).expect("mkdir");
    earlier_backup(&real.join("bk.db"));
    std::fs::write(real.join("bk.db-journal"), b"a hot journal").expect("journal");
    let link = dir.path().join("link.db");
    symlink(real.join("bk.db"), &link).expect("symlink");
    let refused = backup(&link);
    assert_eq!(refused.code, 1, "{}", refused.out);
    assert!(
        refused.err.contains("bk.db-journal is beside it"),
        "{}",
        refused.err
    );
    std::fs::remove_file(real.join("bk.db-journal")).expect("rm");

    // A 0600 earlier backup stays 0600, replaced through the link, which
    // stays a link.
    std::fs::set_permissions(real.join("bk.db"), std::fs::Permissions::from_mode(0o600))
        .expect("chmod");
    assert_eq!(backup(&link).code, 0);
    assert!(std::fs::symlink_metadata(&link)
        .expect("link")
        .file_type()
        .is_symlink());
    assert_eq!(history(&real.join("bk.db")).len(), 3);
    assert_eq!(mode(&real.join("bk.db")), 0o600);

    // A first backup of a 0600 database is 0600 too.
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let fresh = dir.path().join("fresh.db");
    assert_eq!(backup(&fresh).code, 0);
    assert_eq!(mode(&fresh), 0o600);

    // A dangling link: the file it names is created.
    let dangling = dir.path().join("dangling.db");
    symlink(real.join("new.db"), &dangling).expect("symlink");
    assert_eq!(backup(&dangling).code, 0);
    assert!(std::fs::symlink_metadata(&dangling)
        .expect("link")
        .file_type()
        .is_symlink());
    assert_eq!(history(&real.join("new.db")).len(), 3);

    // 250 bytes of name: the copy's own file must still fit.
    let long = dir.path().join(format!("{}.db", "b".repeat(247)));
    let result = backup(&long);
    assert_eq!(result.code, 0, "{}", result.err);
    assert_eq!(history(&long).len(), 3);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".partial"))
        .collect();
    assert!(leftovers.is_empty());
}

/// Round 16: `schema` and `plan --lint` waited rusqlite's own busy
/// timeout (5 s) for another connection's lock, whatever `--lock-timeout`
/// said, and `schema` then printed a bare "database is locked".
#[test]
fn schema_and_the_lint_wait_the_lock_timeout_like_every_command() {
    let dir = TempDir::new().expect("tempdir");
    let db = dir.path().join("q.db");
    assert_eq!(run("quickstart", &db, &["up", "--to", "0"]).code, 0);
    let writer = Connection::open(&db).expect("open");
    writer
        .execute_batch("BEGIN EXCLUSIVE; CREATE TABLE held (x);")
        .expect("lock the database");
    for args in [&["schema"][..], &["plan", "--lint"][..]] {
        let mut all = vec!["--lock-timeout", "1"];
        all.extend_from_slice(args);
        let result = run("quickstart", &db, &all);
        assert_eq!(result.code, 1, "{args:?}: {}\n{}", result.out, result.err);
        assert!(
            result.elapsed >= Duration::from_secs(1) && result.elapsed < Duration::from_secs(4),
            "{args:?}: {:?}",
            result.elapsed
        );
        assert!(
            result.err.contains("lock_timeout") || result.err.contains("lock timeout"),
            "{args:?}: {}",
            result.err
        );
    }
    drop(writer);
}

/// Round 16: with stdout unwritable, `up` applied every migration and said
/// only "cannot write the output": a deploy script took it for a failed
/// migration. The hint says the work is done.
#[cfg(target_os = "linux")]
#[test]
fn an_output_that_fails_after_the_work_says_the_work_is_done() {
    let dir = TempDir::new().expect("tempdir");
    let db = dir.path().join("q.db");
    let full = std::fs::File::create("/dev/full").expect("/dev/full");
    let output = std::process::Command::new(example("quickstart"))
        .arg("--db")
        .arg(&db)
        .arg("up")
        .stdout(full)
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot write the output"), "{err}");
    assert!(err.contains("which is done"), "{err}");
    assert_eq!(history(&db).len(), 3, "the migrations were applied");
}

/// Round 16: a tracking row's name holding escape sequences (a window
/// title, a cleared screen) reached the terminal raw from `status` and
/// `verify`. With colour on (as on a terminal), the CLI's own colours stay
/// and the row's sequences are shown as `\u{…}`.
#[test]
fn escape_sequences_from_the_database_do_not_reach_the_terminal() {
    let dir = TempDir::new().expect("tempdir");
    let db = dir.path().join("q.db");
    assert_eq!(run("quickstart", &db, &["up"]).code, 0);
    Connection::open(&db)
        .and_then(|c| {
            c.execute(
                "UPDATE migrations SET name = ?1 WHERE id = 0",
                ["cats\x1b]0;PWNED\x07\x1b[2J\u{202e}"],
            )
        })
        .expect("tamper");
    for command in ["status", "verify"] {
        let result = run_in(
            "quickstart",
            &db,
            &[command],
            &[("CLICOLOR_FORCE", "1")],
            None,
        );
        let all = format!("{}{}", result.out, result.err);
        assert!(
            !all.contains("\x1b]") && !all.contains("\x1b[2J"),
            "{command}: {all:?}"
        );
        assert!(
            !all.contains('\u{202e}') && !all.contains('\x07'),
            "{command}: {all:?}"
        );
        assert!(all.contains("\\u{1b}]0;PWNED"), "{command}: {all:?}");
        assert!(
            all.contains("\x1b[31m"),
            "{command}: its own colours stay: {all:?}"
        );
    }
    // Only the CLI's own colours pass: a name's own SGR sequence (text
    // concealed) is shown, not obeyed (round 18).
    Connection::open(&db)
        .and_then(|c| {
            c.execute(
                "UPDATE migrations SET name = 'a\x1b[8mhidden' WHERE id = 1",
                [],
            )
        })
        .expect("tamper");
    let status = run_in(
        "quickstart",
        &db,
        &["status"],
        &[("CLICOLOR_FORCE", "1")],
        None,
    );
    assert!(
        !status.out.contains("\x1b[8m") && status.out.contains("\\u{1b}[8m"),
        "{:?}",
        status.out
    );
    // `schema` prints the schema's SQL as it is, a bidirectional override
    // in a CHECK included: it is text for files and diffs (round 18: it
    // was escaped, and no longer the schema).
    Connection::open(&db)
        .and_then(|c| c.execute_batch("CREATE TABLE guarded (x TEXT CHECK (x <> '\u{202e}'))"))
        .expect("schema");
    let schema = run("quickstart", &db, &["schema"]);
    assert_eq!(schema.code, 0, "{}", schema.err);
    assert!(schema.out.contains("'\u{202e}'"), "{:?}", schema.out);
}
