//! Crash safety: a process killed with SIGKILL at any point of a migration
//! run leaves a database that passes `integrity_check`, whose history records
//! exactly the migrations whose effects are fully present (never a partial
//! one), and that the next `migrate()` completes.
//!
//! Deterministic kill points: the child (this binary re-executed, see
//! `tests/support/process.rs`) runs the migrations below; at the labelled
//! checkpoint named by `MIGRATE_KILL_AT` it creates a marker file and sleeps;
//! the parent waits for the marker and kills it with `Child::kill()` (SIGKILL
//! on Unix), so the kill always lands at that point of the run, inside the
//! open write transaction. Kill points sit inside every migration (between
//! the batches of a 300 000-row insert, between the statements of others),
//! at migration boundaries, after the last migration's code just before the
//! commit, inside rollbacks, and with 0 to 4 migrations committed by an
//! earlier call. Half run in WAL mode, half with the default rollback
//! journal. A few extra "racy" points kill the child 0 to 400 ms after its last
//! migration's code is done, so the kill lands somewhere in or after the
//! commit; either outcome (all or nothing of that run) is accepted there.
//! A second test kills inside each transaction of a run that a
//! `foreign_keys = off` table rebuild splits into three (16 more points).
//!
//! ```text
//! cargo test --test crash                        # 28 kill points + 5 racy ones, 300 000 rows
//! MIGRATE_LONG=1 cargo test --test crash         # 90 kill points + 40 racy ones, 1 000 000 rows
//! MIGRATE_CRASH_ROWS=50000 cargo test --test crash
//! ```

mod common;
#[path = "support/process.rs"]
mod process;

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use migrate_core::rusqlite::{self, Connection, Transaction};
use migrate_core::{migration, Migrator};

use common::{has_object, integrity, new_db, query_i64, tracking_rows_or_empty};
use process::{child_command, child_role, env, report};

/// Migrations in the set.
const COUNT: usize = 5;
/// Batches of the big insert in migration 0.
const INSERT_BATCHES: i64 = 30;
/// Batches of the update in migration 2.
const UPDATE_BATCHES: i64 = 10;

fn rows() -> i64 {
    if let Ok(n) = std::env::var("MIGRATE_CRASH_ROWS") {
        return n.parse().expect("MIGRATE_CRASH_ROWS must be a number");
    }
    if process::long_run() {
        1_000_000
    } else {
        300_000
    }
}

// ---------------------------------------------------------------------------
// Checkpoints.

/// Called by the migrations at every labelled point. In the child whose
/// `MIGRATE_KILL_AT` names this label: create the marker and hang (or, with
/// `MIGRATE_MARK_ONLY=1`, create it and go on). Everywhere else: nothing.
fn checkpoint(label: &str) {
    static KILL_AT: OnceLock<Option<String>> = OnceLock::new();
    let kill_at = KILL_AT.get_or_init(|| {
        child_role()?;
        std::env::var("MIGRATE_KILL_AT").ok()
    });
    if kill_at.as_deref() != Some(label) {
        return;
    }
    let marker = env("MIGRATE_MARKER");
    if std::env::var("MIGRATE_MARK_ONLY").is_ok_and(|v| v == "1") {
        process::touch(Path::new(&marker));
    } else {
        process::mark_and_hang(Path::new(&marker));
    }
}

// ---------------------------------------------------------------------------
// The migrations: a long run with a big insert, a copy and an index, a
// batched update, and small steps. Every step and every rollback is checked
// for "fully present or fully absent" by `observe` below.

fn migrator(rows: i64) -> Migrator {
    Migrator::new()
        .add(0, "create_big", move |tx: &Transaction| -> rusqlite::Result<()> {
            checkpoint("up0:start");
            tx.execute_batch("CREATE TABLE big (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)")?;
            // One statement per batch, rows generated inside SQLite.
            let mut insert = tx.prepare(
                "WITH RECURSIVE n(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2)
                 INSERT INTO big (id, payload) SELECT i, 'row-' || i FROM n",
            )?;
            let per_batch = (rows + INSERT_BATCHES - 1) / INSERT_BATCHES;
            for batch in 0..INSERT_BATCHES {
                let (lo, hi) = (batch * per_batch + 1, ((batch + 1) * per_batch).min(rows));
                if lo <= hi {
                    insert.execute((lo, hi))?;
                }
                checkpoint(&format!("up0:batch{}", batch + 1));
            }
            checkpoint("up0:end");
            Ok(())
        })
        .add_rollback(0, |tx: &Transaction| -> rusqlite::Result<()> {
            checkpoint("down0:start");
            tx.execute_batch("DROP TABLE big")?;
            checkpoint("down0:end");
            Ok(())
        })
        .add(1, "copy_and_index", |tx: &Transaction| -> rusqlite::Result<()> {
            checkpoint("up1:start");
            tx.execute_batch(
                "CREATE TABLE second (id INTEGER PRIMARY KEY, payload TEXT NOT NULL);
                 INSERT INTO second (id, payload) SELECT id, payload FROM big;",
            )?;
            checkpoint("up1:copied");
            tx.execute_batch("CREATE INDEX big_payload ON big (payload)")?;
            checkpoint("up1:indexed");
            tx.execute_batch("CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT); INSERT INTO meta VALUES ('copied', 'yes');")?;
            checkpoint("up1:end");
            Ok(())
        })
        .add_rollback(1, |tx: &Transaction| -> rusqlite::Result<()> {
            tx.execute_batch("DROP INDEX big_payload; DROP TABLE meta;")?;
            checkpoint("down1:mid");
            tx.execute_batch("DROP TABLE second")
        })
        .add(2, "add_flag", move |tx: &Transaction| -> rusqlite::Result<()> {
            checkpoint("up2:start");
            tx.execute_batch("ALTER TABLE big ADD COLUMN flag INTEGER")?;
            let per_batch = (rows + UPDATE_BATCHES - 1) / UPDATE_BATCHES;
            for batch in 0..UPDATE_BATCHES {
                tx.execute(
                    "UPDATE big SET flag = id % 7 WHERE id > ?1 AND id <= ?2",
                    (batch * per_batch, (batch + 1) * per_batch),
                )?;
                checkpoint(&format!("up2:batch{}", batch + 1));
            }
            checkpoint("up2:end");
            Ok(())
        })
        .add_rollback(2, |tx: &Transaction| -> rusqlite::Result<()> {
            checkpoint("down2:start");
            tx.execute_batch("ALTER TABLE big DROP COLUMN flag")?;
            checkpoint("down2:end");
            Ok(())
        })
        .add(3, "small", |tx: &Transaction| -> rusqlite::Result<()> {
            checkpoint("up3:start");
            tx.execute_batch("CREATE TABLE small (x INTEGER NOT NULL); INSERT INTO small VALUES (1);")?;
            checkpoint("up3:mid");
            tx.execute_batch("INSERT INTO small VALUES (2), (3);")?;
            checkpoint("up3:end");
            Ok(())
        })
        .add_rollback(3, |tx: &Transaction| tx.execute_batch("DROP TABLE small"))
        .add(4, "last", |tx: &Transaction| -> rusqlite::Result<()> {
            checkpoint("up4:start");
            tx.execute_batch("CREATE TABLE last (x)")?;
            // After this the runner records the row, releases the savepoint,
            // sets user_version and commits: the closest user code gets to
            // "just before COMMIT".
            checkpoint("up4:end");
            Ok(())
        })
        .add_rollback(4, |tx: &Transaction| -> rusqlite::Result<()> {
            checkpoint("down4:start");
            tx.execute_batch("DROP TABLE last")
        })
}

const NAMES: [&str; COUNT] = ["create_big", "copy_and_index", "add_flag", "small", "last"];

// ---------------------------------------------------------------------------
// The child.

#[test]
fn child_process_entry() {
    let Some(role) = child_role() else { return };
    if role == "crash-memory-journal" {
        let mut conn = Connection::open(env("MIGRATE_DB")).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode = MEMORY", (), |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "memory");
        // A small cache: the step's pages spill to the file before COMMIT.
        conn.execute_batch("PRAGMA cache_size = 10").unwrap();
        match memory_journal_migrator(true).migrate(&mut conn) {
            Ok(_) => report("finished"),
            Err(e) => report(&format!("err {e}")),
        }
        return;
    }
    if role == "crash-fk" {
        let mut conn = Connection::open(env("MIGRATE_DB")).unwrap();
        match fk_migrator().migrate(&mut conn) {
            Ok(_) => report("finished"),
            Err(e) => report(&format!("err {e}")),
        }
        return;
    }
    assert_eq!(role, "crash");
    let rows: i64 = env("MIGRATE_ROWS").parse().unwrap();
    let pre: u32 = env("MIGRATE_PRE").parse().unwrap();
    let m = migrator(rows);
    let mut conn = Connection::open(env("MIGRATE_DB")).unwrap();
    let outcome = (|| -> Result<(), migrate_core::Error> {
        if pre > 0 {
            m.migrate_to(&mut conn, pre - 1)?;
        }
        match env("MIGRATE_OP").as_str() {
            "up" => {
                m.migrate(&mut conn)?;
            }
            "down-all" => {
                m.migrate(&mut conn)?;
                m.rollback_all(&mut conn)?;
            }
            "down-steps" => {
                m.migrate(&mut conn)?;
                while m.rollback_migration(&mut conn)?.is_some() {}
            }
            other => panic!("unknown op {other}"),
        }
        Ok(())
    })();
    // Reached only when the kill point was never hit (or was mark-only).
    match outcome {
        Ok(()) => report("finished"),
        Err(e) => report(&format!("err {e}")),
    }
}

// ---------------------------------------------------------------------------
// Reading the state back.

fn has_column(conn: &Connection, table: &str, column: &str) -> bool {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2)",
        [table, column],
        |r| r.get(0),
    )
    .unwrap()
}

/// Whether one migration's effects are fully there, fully absent, or partly
/// there (with what was seen).
#[derive(Debug, PartialEq)]
enum Presence {
    Full,
    Absent,
    Partial(String),
}

fn presence(conn: &Connection, id: usize, rows: i64) -> Presence {
    let verdict = |parts: &[(&str, bool)]| {
        if parts.iter().all(|(_, ok)| *ok) {
            Presence::Full
        } else if parts.iter().all(|(_, ok)| !*ok) {
            Presence::Absent
        } else {
            Presence::Partial(format!("{parts:?}"))
        }
    };
    match id {
        0 => {
            if !has_object(conn, "table", "big") {
                return Presence::Absent;
            }
            let (count, sum, wrong): (i64, i64, i64) = conn
                .query_row(
                    "SELECT count(*), coalesce(sum(id), 0), coalesce(sum(payload IS NOT 'row-' || id), 0) FROM big",
                    (),
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .unwrap();
            if count == rows && sum == rows * (rows + 1) / 2 && wrong == 0 {
                Presence::Full
            } else {
                Presence::Partial(format!(
                    "big has {count} rows (sum {sum}, {wrong} wrong payloads)"
                ))
            }
        }
        1 => {
            let second = has_object(conn, "table", "second");
            let full_copy = second && query_i64(conn, "SELECT count(*) FROM second") == rows;
            let meta = has_object(conn, "table", "meta")
                && query_i64(
                    conn,
                    "SELECT count(*) FROM meta WHERE k = 'copied' AND v = 'yes'",
                ) == 1;
            verdict(&[
                ("table second", second),
                ("second fully copied", full_copy),
                (
                    "index big_payload",
                    has_object(conn, "index", "big_payload"),
                ),
                ("table meta with its row", meta),
            ])
        }
        2 => {
            let column = has_object(conn, "table", "big") && has_column(conn, "big", "flag");
            let all_set =
                column && query_i64(conn, "SELECT count(*) FROM big WHERE flag IS NOT id % 7") == 0;
            verdict(&[("column big.flag", column), ("every flag set", all_set)])
        }
        3 => {
            let table = has_object(conn, "table", "small");
            let full = table && query_i64(conn, "SELECT count(*) FROM small") == 3;
            verdict(&[("table small", table), ("its 3 rows", full)])
        }
        4 => verdict(&[("table last", has_object(conn, "table", "last"))]),
        _ => unreachable!(),
    }
}

/// How many migrations are fully present; an error when one is partial or
/// when they are not a prefix 0..k.
fn observe(conn: &Connection, rows: i64) -> Result<usize, String> {
    let found: Vec<Presence> = (0..COUNT).map(|id| presence(conn, id, rows)).collect();
    for (id, p) in found.iter().enumerate() {
        if let Presence::Partial(what) = p {
            return Err(format!("migration {id} is partially applied: {what}"));
        }
    }
    let k = found.iter().take_while(|p| **p == Presence::Full).count();
    if found[k..].iter().any(|p| *p != Presence::Absent) {
        return Err(format!("applied migrations are not a prefix: {found:?}"));
    }
    Ok(k)
}

/// Asserts a consistent state and returns how many migrations it holds.
fn check_consistent(conn: &Connection, rows: i64, context: &str) -> usize {
    assert_eq!(
        integrity(conn),
        vec!["ok".to_owned()],
        "{context}: integrity_check"
    );
    let k = observe(conn, rows).unwrap_or_else(|e| panic!("{context}: {e}"));
    let expected: Vec<(i64, String)> = (0..k).map(|id| (id as i64, NAMES[id].to_owned())).collect();
    assert_eq!(
        tracking_rows_or_empty(conn, "migrations"),
        expected,
        "{context}: the history does not match the {k} migration(s) whose effects are present"
    );
    assert_eq!(
        query_i64(conn, "PRAGMA user_version"),
        k as i64,
        "{context}: user_version"
    );
    k
}

// ---------------------------------------------------------------------------
// The kill points.

#[derive(Clone, Copy, Debug)]
enum Op {
    /// `migrate()` (after `migrate_to(pre - 1)` when pre > 0).
    Up,
    /// `migrate()` then `rollback_all()`: one transaction for all rollbacks.
    DownAll,
    /// `migrate()` then `rollback_migration()` until nothing is left.
    DownSteps,
}

#[derive(Clone, Debug)]
struct KillPoint {
    label: String,
    /// Migrations committed by an earlier call before the killed one.
    pre: u32,
    op: Op,
    wal: bool,
    /// Racy point: the child does not wait at the marker; the parent kills
    /// it this long after seeing it, so the kill lands somewhere in what
    /// follows (in or after the commit, for `up4:end`).
    racy: Option<Duration>,
}

impl KillPoint {
    fn new(label: &str, pre: u32, op: Op, wal: bool) -> Self {
        KillPoint {
            label: label.to_owned(),
            pre,
            op,
            wal,
            racy: None,
        }
    }

    /// The number of migrations that must be applied after the kill.
    fn expected(&self) -> Vec<usize> {
        let migration: usize = self.label[self.label.find(|c: char| c.is_ascii_digit()).unwrap()..]
            .split(':')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        match self.op {
            // One transaction per call: nothing of the killed call persists.
            Op::Up if self.racy.is_some() => vec![self.pre as usize, COUNT],
            Op::Up => vec![self.pre as usize],
            Op::DownAll => vec![COUNT],
            // Each rollback_migration() commits on its own: the ones above
            // the killed one are gone.
            Op::DownSteps => vec![migration + 1],
        }
    }
}

fn default_points() -> Vec<KillPoint> {
    use Op::*;
    let (w, d) = (true, false);
    let mut points = vec![
        // Inside the 300 000-row insert of migration 0, nothing committed.
        KillPoint::new("up0:start", 0, Up, w),
        KillPoint::new("up0:batch1", 0, Up, d),
        KillPoint::new("up0:batch8", 0, Up, w),
        KillPoint::new("up0:batch15", 0, Up, d),
        KillPoint::new("up0:batch29", 0, Up, w),
        KillPoint::new("up0:end", 0, Up, d),
        // Migration boundary 0 → 1, with and without 0 committed earlier.
        KillPoint::new("up1:start", 0, Up, w),
        KillPoint::new("up1:start", 1, Up, d),
        KillPoint::new("up1:copied", 1, Up, w),
        KillPoint::new("up1:indexed", 0, Up, d),
        KillPoint::new("up1:end", 1, Up, w),
        KillPoint::new("up2:start", 2, Up, d),
        KillPoint::new("up2:batch3", 1, Up, w),
        KillPoint::new("up2:batch6", 2, Up, d),
        KillPoint::new("up2:end", 0, Up, w),
        KillPoint::new("up3:start", 3, Up, w),
        KillPoint::new("up3:mid", 2, Up, d),
        KillPoint::new("up3:end", 3, Up, d),
        KillPoint::new("up4:start", 4, Up, w),
        // After the last migration's code: just before the commit.
        KillPoint::new("up4:end", 0, Up, d),
        KillPoint::new("up4:end", 4, Up, w),
        KillPoint::new("up4:end", 2, Up, d),
        // Inside rollbacks.
        KillPoint::new("down4:start", 0, DownAll, w),
        KillPoint::new("down2:end", 0, DownAll, d),
        KillPoint::new("down0:end", 0, DownAll, w),
        KillPoint::new("down2:start", 0, DownSteps, d),
        KillPoint::new("down1:mid", 0, DownSteps, w),
        KillPoint::new("down0:start", 0, DownSteps, d),
    ];
    for (pre, wal, delay_ms) in [(0, w, 0), (0, d, 5), (3, w, 25), (3, d, 100), (0, w, 400)] {
        let mut p = KillPoint::new("up4:end", pre, Up, wal);
        p.racy = Some(Duration::from_millis(delay_ms));
        points.push(p);
    }
    points
}

/// Every label of every migration, with every number of migrations committed
/// before, alternating journal modes; plus rollbacks at every label.
fn long_points() -> Vec<KillPoint> {
    use Op::*;
    let mut labels: Vec<(usize, String)> = vec![(0, "up0:start".to_owned())];
    labels.extend((1..=INSERT_BATCHES).map(|b| (0, format!("up0:batch{b}"))));
    labels.push((0, "up0:end".to_owned()));
    for l in ["start", "copied", "indexed", "end"] {
        labels.push((1, format!("up1:{l}")));
    }
    labels.push((2, "up2:start".to_owned()));
    labels.extend((1..=UPDATE_BATCHES).map(|b| (2, format!("up2:batch{b}"))));
    labels.push((2, "up2:end".to_owned()));
    for l in ["start", "mid", "end"] {
        labels.push((3, format!("up3:{l}")));
    }
    for l in ["start", "end"] {
        labels.push((4, format!("up4:{l}")));
    }
    let mut points = Vec::new();
    let mut wal = false;
    for (migration, label) in labels {
        // Batches of the big steps: one `pre` each, rotating; boundaries: all.
        let pres: Vec<u32> = if label.contains("batch") {
            vec![(points.len() % (migration + 1)) as u32]
        } else {
            (0..=migration as u32).collect()
        };
        for pre in pres {
            wal = !wal;
            points.push(KillPoint::new(&label, pre, Up, wal));
        }
    }
    for label in [
        "down4:start",
        "down2:start",
        "down2:end",
        "down1:mid",
        "down0:start",
        "down0:end",
    ] {
        for op in [DownAll, DownSteps] {
            wal = !wal;
            points.push(KillPoint::new(label, 0, op, wal));
        }
    }
    for pre in 0..COUNT as u32 {
        for wal in [true, false] {
            for delay_ms in [0, 10, 50, 250] {
                let mut p = KillPoint::new("up4:end", pre, Up, wal);
                p.racy = Some(Duration::from_millis(delay_ms));
                points.push(p);
            }
        }
    }
    points
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Kills a child at every point, then checks the file and finishes the run.
#[test]
fn sigkill_at_any_point_leaves_a_consistent_database_that_migrate_completes() {
    let rows = rows();
    let points = if process::long_run() {
        long_points()
    } else {
        default_points()
    };
    let started = Instant::now();
    let mut hot_journals = 0;
    let mut racy_outcomes = [0usize; 2];
    for (n, point) in points.iter().enumerate() {
        let context = format!(
            "kill point {n} {} (pre {}, {:?}, {}{})",
            point.label,
            point.pre,
            point.op,
            if point.wal { "WAL" } else { "rollback journal" },
            match point.racy {
                Some(delay) => format!(", racy, killed {} ms after the marker", delay.as_millis()),
                None => String::new(),
            }
        );
        let t_point = Instant::now();
        let dir = tempfile::tempdir().unwrap();
        let db = new_db(dir.path(), "crash.db", point.wal);
        let marker = dir.path().join("marker");
        let op = match point.op {
            Op::Up => "up",
            Op::DownAll => "down-all",
            Op::DownSteps => "down-steps",
        };
        let mut child = child_command("crash")
            .env("MIGRATE_DB", &db)
            .env("MIGRATE_ROWS", rows.to_string())
            .env("MIGRATE_PRE", point.pre.to_string())
            .env("MIGRATE_OP", op)
            .env("MIGRATE_KILL_AT", &point.label)
            .env("MIGRATE_MARKER", &marker)
            .env(
                "MIGRATE_MARK_ONLY",
                if point.racy.is_some() { "1" } else { "0" },
            )
            .spawn()
            .unwrap();
        let poll = if point.racy.is_some() {
            Duration::from_micros(50)
        } else {
            Duration::from_millis(2)
        };
        process::wait_for_file(&marker, &mut child, Duration::from_secs(300), poll)
            .unwrap_or_else(|e| panic!("{context}: {e}"));
        if let Some(delay) = point.racy {
            std::thread::sleep(delay);
        }
        let t_killed = Instant::now();
        let finished = process::kill(child);
        // A racy child may have finished before the kill; any other must
        // have been killed while it waited at the marker.
        assert!(
            point.racy.is_some() || !finished.status.success(),
            "{context}: the child was not killed:\n{}",
            finished.describe()
        );

        // Evidence that the kill interrupted a write transaction.
        let journal = db.with_extension("db-journal");
        let wal_file = db.with_extension("db-wal");
        if file_len(&journal) > 0 || file_len(&wal_file) > 0 {
            hot_journals += 1;
        }

        // A fresh connection recovers the file (rolls back a hot journal or
        // ignores uncommitted WAL frames); the state must be consistent.
        let mut conn = Connection::open(&db).unwrap();
        let k = check_consistent(&conn, rows, &context);
        assert!(
            point.expected().contains(&k),
            "{context}: {k} migration(s) applied after the kill, expected {:?}",
            point.expected()
        );
        if point.racy.is_some() {
            racy_outcomes[usize::from(k == COUNT)] += 1;
        }

        let t_checked = Instant::now();
        // The next run completes and the final state is right.
        let report = migrator(rows)
            .migrate(&mut conn)
            .unwrap_or_else(|e| panic!("{context}: migrate after the kill: {e}"));
        assert_eq!(
            report.ids(),
            (k as u32..COUNT as u32).collect::<Vec<_>>(),
            "{context}"
        );
        assert_eq!(check_consistent(&conn, rows, &context), COUNT);
        if std::env::var("MIGRATE_DEBUG").is_ok() {
            eprintln!(
                "{context}: child {:.2} s, check {:.2} s, recovery and check {:.2} s",
                (t_killed - t_point).as_secs_f64(),
                (t_checked - t_killed).as_secs_f64(),
                t_checked.elapsed().as_secs_f64()
            );
        }
    }
    let deterministic = points.iter().filter(|p| p.racy.is_none()).count();
    eprintln!(
        "crash: {deterministic} deterministic kill points + {} racy ones ({} killed before the commit \
         landed, {} after), {rows} rows, {hot_journals} left a journal or WAL behind, in {:.1} s",
        points.len() - deterministic,
        racy_outcomes[0],
        racy_outcomes[1],
        started.elapsed().as_secs_f64()
    );
}

/// The child binary also finishes cleanly when no kill point is hit: the
/// same run, uninterrupted, gives the same final state.
#[test]
fn the_uninterrupted_run_reaches_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let db = new_db(dir.path(), "crash.db", true);
    let rows = 3_000;
    let child = child_command("crash")
        .env("MIGRATE_DB", &db)
        .env("MIGRATE_ROWS", rows.to_string())
        .env("MIGRATE_PRE", "2")
        .env("MIGRATE_OP", "down-steps")
        .spawn()
        .unwrap();
    let finished = process::wait_with_timeout(child, Duration::from_secs(120));
    assert_eq!(finished.result(), "finished", "{}", finished.describe());
    let mut conn = Connection::open(&db).unwrap();
    assert_eq!(
        check_consistent(&conn, rows, "after rolling everything back"),
        0
    );
    assert_eq!(
        migrator(rows).migrate(&mut conn).unwrap().ids(),
        vec![0, 1, 2, 3, 4]
    );
    assert_eq!(check_consistent(&conn, rows, "after migrating"), COUNT);
}

// ---------------------------------------------------------------------------
// A run split into several transactions: `foreign_keys = off` steps run in a
// transaction of their own, so migrations 0 and 1 commit before migration 2
// (a table rebuild with foreign keys off) starts, and 3 runs after it.

const FK_PARENTS: i64 = 20_000;

fn fk_migrator() -> Migrator {
    Migrator::new().set("fk")
}

#[migration(0, set = "fk")]
fn fk_create(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
         CREATE TABLE child (id INTEGER PRIMARY KEY,
                             parent INTEGER NOT NULL REFERENCES parent (id) ON DELETE CASCADE);",
    )?;
    tx.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
         INSERT INTO parent SELECT i, 'p' || i FROM n",
        [FK_PARENTS],
    )?;
    tx.execute_batch("INSERT INTO child (parent) SELECT id FROM parent")?;
    checkpoint("fk0:end");
    Ok(())
}

#[migration(1, set = "fk")]
fn fk_index(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch("CREATE INDEX child_parent ON child (parent)")?;
    checkpoint("fk1:end");
    Ok(())
}

/// SQLite's table-rebuild procedure: with foreign keys on, dropping `parent`
/// would cascade to every child row.
#[migration(2, set = "fk", foreign_keys = off)]
fn fk_rebuild_parent(tx: &Transaction) -> rusqlite::Result<()> {
    checkpoint("fk2:start");
    tx.execute_batch(
        "CREATE TABLE parent_new (id INTEGER PRIMARY KEY, name TEXT NOT NULL, extra INTEGER NOT NULL DEFAULT 7);
         INSERT INTO parent_new (id, name) SELECT id, name FROM parent;",
    )?;
    checkpoint("fk2:copied");
    tx.execute_batch("DROP TABLE parent")?;
    checkpoint("fk2:dropped");
    tx.execute_batch("ALTER TABLE parent_new RENAME TO parent")?;
    checkpoint("fk2:end");
    Ok(())
}

#[migration(3, set = "fk")]
fn fk_after(tx: &Transaction) -> rusqlite::Result<()> {
    checkpoint("fk3:start");
    tx.execute_batch("CREATE TABLE after_rebuild (x)")?;
    checkpoint("fk3:end");
    Ok(())
}

const FK_NAMES: [&str; 4] = ["fk_create", "fk_index", "fk_rebuild_parent", "fk_after"];

/// How many of the fk set's migrations are fully present.
fn fk_observe(conn: &Connection) -> Result<usize, String> {
    let count = |table: &str| -> i64 {
        if has_object(conn, "table", table) {
            query_i64(conn, &format!("SELECT count(*) FROM {table}"))
        } else {
            -1
        }
    };
    let (parents, children) = (count("parent"), count("child"));
    let created = match (parents, children) {
        (-1, -1) => false,
        (p, c) if p == FK_PARENTS && c == FK_PARENTS => true,
        other => {
            return Err(format!(
                "migration 0 is partial: (parents, children) = {other:?}"
            ))
        }
    };
    let indexed = has_object(conn, "index", "child_parent");
    let leftover = has_object(conn, "table", "parent_new");
    let rebuilt = created && has_column(conn, "parent", "extra");
    if leftover {
        return Err("migration 2 is partial: parent_new exists".to_owned());
    }
    if rebuilt && query_i64(conn, "SELECT count(*) FROM parent WHERE extra IS NOT 7") != 0 {
        return Err("migration 2 is partial: some parents lack `extra`".to_owned());
    }
    let after = has_object(conn, "table", "after_rebuild");
    let found = [created, indexed, rebuilt, after];
    let k = found.iter().take_while(|f| **f).count();
    if found[k..].iter().any(|f| *f) {
        return Err(format!("applied migrations are not a prefix: {found:?}"));
    }
    Ok(k)
}

fn fk_check_consistent(conn: &Connection, context: &str) -> usize {
    assert_eq!(
        integrity(conn),
        vec!["ok".to_owned()],
        "{context}: integrity_check"
    );
    let k = fk_observe(conn).unwrap_or_else(|e| panic!("{context}: {e}"));
    let history = tracking_rows_or_empty(conn, "migrations_fk");
    let expected: Vec<(i64, String)> = (0..k)
        .map(|id| (id as i64, FK_NAMES[id].to_owned()))
        .collect();
    assert_eq!(history, expected, "{context}: history vs what is present");
    let violations: i64 = query_i64(conn, "SELECT count(*) FROM pragma_foreign_key_check");
    assert_eq!(violations, 0, "{context}: foreign key violations");
    k
}

/// Migration 1 changes a row of migration 0's table, then writes enough
/// to spill pages to the file, then (in the child) waits to be killed.
fn memory_journal_migrator(wait_for_kill: bool) -> Migrator {
    Migrator::new()
        .set("memory_journal")
        .add(0, "small", |tx: &Transaction| {
            tx.execute_batch("CREATE TABLE small (x); INSERT INTO small VALUES (1);")
        })
        .add(1, "big", move |tx: &Transaction| {
            tx.execute_batch(
                "UPDATE small SET x = 2;
                 CREATE TABLE big (id INTEGER PRIMARY KEY, pad TEXT);
                 WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 20000)
                 INSERT INTO big (pad) SELECT printf('%0100d', i) FROM s;",
            )?;
            if wait_for_kill {
                std::fs::write(env("MIGRATE_MARKER"), b"x").unwrap();
                std::thread::sleep(Duration::from_secs(120));
            }
            Ok::<(), rusqlite::Error>(())
        })
}

/// An application's `journal_mode = MEMORY` keeps no journal on disk: a
/// process killed in the middle of a transaction leaves its spilled pages
/// in the file. The run keeps a journal on disk for the call (and puts
/// MEMORY back after it), so a kill leaves nothing of the killed migration.
#[test]
fn sigkill_with_the_applications_journal_in_memory_leaves_nothing_of_the_killed_migration() {
    let dir = tempfile::tempdir().unwrap();
    let db = new_db(dir.path(), "crash.db", false);
    {
        let mut conn = Connection::open(&db).unwrap();
        memory_journal_migrator(false)
            .migrate_to(&mut conn, 0)
            .unwrap();
        conn.execute_batch(
            "CREATE TABLE app_data (v);
             WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 5000)
             INSERT INTO app_data SELECT printf('%050d', i) FROM s;",
        )
        .unwrap();
    }
    let finished = process::kill_when_marked(
        child_command("crash-memory-journal").env("MIGRATE_DB", &db),
        &dir.path().join("marker"),
    )
    .unwrap();
    assert!(
        !finished.status.success(),
        "not killed: {}",
        finished.describe()
    );

    let mut conn = Connection::open(&db).unwrap();
    assert_eq!(integrity(&conn), vec!["ok".to_owned()]);
    assert_eq!(
        tracking_rows_or_empty(&conn, "migrations_memory_journal"),
        vec![(0, "small".to_owned())]
    );
    assert_eq!(
        query_i64(&conn, "SELECT x FROM small"),
        1,
        "migration 1's UPDATE survived the kill"
    );
    assert!(!has_object(&conn, "table", "big"));
    assert_eq!(query_i64(&conn, "SELECT count(*) FROM app_data"), 5000);
    let report = memory_journal_migrator(false).migrate(&mut conn).unwrap();
    assert_eq!(report.ids(), vec![1]);
    assert_eq!(query_i64(&conn, "SELECT x FROM small"), 2);
}

/// Kills inside each transaction of a run split by a `foreign_keys = off`
/// step: what the earlier transactions committed stays, the killed one
/// leaves nothing, the rebuild never loses child rows, and migrate finishes.
#[test]
fn sigkill_around_a_foreign_keys_off_step_keeps_each_transaction_atomic() {
    // (label, migrations committed before the killed transaction)
    let points = [
        ("fk0:end", 0),
        ("fk1:end", 0),
        ("fk2:start", 2),
        ("fk2:copied", 2),
        ("fk2:dropped", 2),
        ("fk2:end", 2),
        ("fk3:start", 3),
        ("fk3:end", 3),
    ];
    for (n, (label, expected)) in points.into_iter().enumerate() {
        for wal in [true, false] {
            let context = format!(
                "fk kill point {label} ({})",
                if wal { "WAL" } else { "rollback journal" }
            );
            let dir = tempfile::tempdir().unwrap();
            let db = new_db(dir.path(), "crash.db", wal);
            let finished = process::kill_when_marked(
                child_command("crash-fk")
                    .env("MIGRATE_DB", &db)
                    .env("MIGRATE_KILL_AT", label),
                &dir.path().join("marker"),
            )
            .unwrap_or_else(|e| panic!("{context}: {e}"));
            assert!(
                !finished.status.success(),
                "{context}: not killed: {}",
                finished.describe()
            );

            let mut conn = Connection::open(&db).unwrap();
            conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
            let k = fk_check_consistent(&conn, &context);
            assert_eq!(k, expected, "{context} (point {n})");
            let report = fk_migrator()
                .migrate(&mut conn)
                .unwrap_or_else(|e| panic!("{context}: {e}"));
            assert_eq!(report.ids(), (k as u32..4).collect::<Vec<_>>(), "{context}");
            assert_eq!(fk_check_consistent(&conn, &context), 4);
            let on: bool = conn
                .query_row("PRAGMA foreign_keys", (), |r| r.get(0))
                .unwrap();
            assert!(on, "{context}: foreign_keys was not restored");
        }
    }
}
