//! Concurrent processes on one database file: every migration is applied
//! exactly once, and a process that cannot get the write lock in time fails
//! with `Error::Locked` without changing anything.
//!
//! Real processes, real files: the parent re-executes this test binary as
//! children (see `tests/support/process.rs`), which start together on a
//! barrier file and call `migrate()` on the same file. Every migration also
//! appends its id and the applying process's pid to a side table `ran` that
//! has no unique constraint, so a double application would be counted, not
//! hidden.
//!
//! ```text
//! cargo test --test concurrent_processes                   # 20 rounds of 8 processes
//! MIGRATE_LONG=1 cargo test --test concurrent_processes    # 200 rounds
//! MIGRATE_ROUNDS=1000 cargo test --test concurrent_processes
//! ```

mod common;
#[path = "support/process.rs"]
mod process;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use migrate_core::rusqlite::{self, Connection, Transaction};
use migrate_core::{migration, Error, Migrate, Migrator};

use common::{dump, has_table, integrity_ok, new_db, tracking_ids_or_empty, user_version};
use process::{child_command, child_role, env, report, wait_with_timeout};

const CHILDREN: usize = 8;
/// Migrations in each set used here.
const COUNT: u32 = 6;

// ---------------------------------------------------------------------------
// The migrations. The default set is linked statically (`#[migration]`); the
// same steps are also available as a run-time set, so that both kinds of
// registration are raced.

/// Appends `(id, pid)` to `ran`: the evidence of each application.
fn ran(tx: &Transaction, id: u32) -> rusqlite::Result<()> {
    tx.execute_batch("CREATE TABLE IF NOT EXISTS ran (id INTEGER NOT NULL, pid INTEGER NOT NULL)")?;
    tx.execute(
        "INSERT INTO ran (id, pid) VALUES (?1, ?2)",
        (id, std::process::id()),
    )?;
    Ok(())
}

fn step(tx: &Transaction, id: u32) -> rusqlite::Result<()> {
    ran(tx, id)?;
    // Idempotent schema work, so that a double application would show up in
    // `ran` rather than as an error.
    match id {
        0 => tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, name TEXT NOT NULL)",
        ),
        1 => {
            // Slow: keeps the lock long enough for the others to queue up.
            std::thread::sleep(Duration::from_millis(5));
            tx.execute_batch("CREATE TABLE IF NOT EXISTS posts (id INTEGER PRIMARY KEY, user INTEGER, body TEXT)")
        }
        2 => tx.execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
             INSERT OR IGNORE INTO users (id, name) SELECT i, 'user ' || i FROM n",
        ),
        3 => {
            std::thread::sleep(Duration::from_millis(8));
            tx.execute_batch("CREATE INDEX IF NOT EXISTS posts_user ON posts (user)")
        }
        4 => tx.execute_batch("CREATE TABLE IF NOT EXISTS tags (name TEXT PRIMARY KEY)"),
        5 => tx.execute_batch("CREATE VIEW IF NOT EXISTS user_names AS SELECT name FROM users"),
        _ => unreachable!(),
    }
}

#[migration(0)]
fn create_users(tx: &Transaction) -> rusqlite::Result<()> {
    step(tx, 0)
}

#[migration(1)]
fn create_posts_slowly(tx: &Transaction) -> rusqlite::Result<()> {
    step(tx, 1)
}

#[migration(2)]
fn fill_users(tx: &Transaction) -> rusqlite::Result<()> {
    step(tx, 2)
}

#[migration(3)]
fn index_posts_slowly(tx: &Transaction) -> rusqlite::Result<()> {
    step(tx, 3)
}

// `foreign_keys = off` runs in a transaction of its own, so a run of this set
// is three transactions (0..=3, 4, 5): more points where processes interleave.
#[migration(4, foreign_keys = off)]
fn create_tags(tx: &Transaction) -> rusqlite::Result<()> {
    step(tx, 4)
}

#[migration(5)]
fn create_view(tx: &Transaction) -> rusqlite::Result<()> {
    step(tx, 5)
}

/// The same six steps, added at run time, in set `set`.
fn runtime_migrator(set: &str) -> Migrator {
    let mut m = Migrator::new().set(set);
    for id in 0..COUNT {
        m = m.add(id, format!("step_{id}"), move |tx: &Transaction| {
            step(tx, id)
        });
    }
    m
}

/// A run-time set whose migration 1 blocks until the parent says so, to hold
/// the write lock as long as the test needs: it creates `MIGRATE_HOLDING` and
/// waits for `MIGRATE_RELEASE`.
fn holding_migrator() -> Migrator {
    Migrator::new()
        .set("hold")
        .add(0, "first", |tx: &Transaction| ran(tx, 0))
        .add(1, "hold_the_lock", |tx: &Transaction| {
            ran(tx, 1)?;
            if let (Ok(holding), Ok(release)) = (
                std::env::var("MIGRATE_HOLDING"),
                std::env::var("MIGRATE_RELEASE"),
            ) {
                process::touch(Path::new(&holding));
                process::block_until_exists(Path::new(&release), Duration::from_secs(60));
            }
            Ok::<(), rusqlite::Error>(())
        })
        .add(2, "last", |tx: &Transaction| ran(tx, 2))
}

/// A plain run-time set for the foreign-writer test.
fn plain_migrator() -> Migrator {
    let mut m = Migrator::new().set("plain");
    for id in 0..4 {
        m = m.add(id, format!("plain_{id}"), move |tx: &Transaction| {
            ran(tx, id)?;
            tx.execute_batch(&format!("CREATE TABLE plain_{id} (x)"))
        });
    }
    m
}

/// A reversible run-time set for the mixed test: migration k creates table
/// `m{k}` and logs +1 in `events`; its rollback drops it and logs -1.
fn mixed_migrator() -> Migrator {
    let mut m = Migrator::new().set("mixed");
    for id in 0..MIXED_COUNT {
        m = m
            .add(id, format!("mixed_{id}"), move |tx: &Transaction| {
                tx.execute_batch(&format!(
                    "CREATE TABLE IF NOT EXISTS events (id INTEGER NOT NULL, delta INTEGER NOT NULL, pid INTEGER NOT NULL);
                     CREATE TABLE m{id} (x)"
                ))?;
                tx.execute("INSERT INTO events VALUES (?1, 1, ?2)", (id, std::process::id()))?;
                Ok::<(), rusqlite::Error>(())
            })
            .add_rollback(id, move |tx: &Transaction| {
                tx.execute_batch(&format!("DROP TABLE m{id}"))?;
                tx.execute("INSERT INTO events VALUES (?1, -1, ?2)", (id, std::process::id()))?;
                Ok::<(), rusqlite::Error>(())
            });
    }
    m
}

const MIXED_COUNT: u32 = 5;

// ---------------------------------------------------------------------------
// The child side.

#[test]
fn child_process_entry() {
    let Some(role) = child_role() else { return };
    let mut conn = Connection::open(env("MIGRATE_DB")).expect("child: open");
    match role.as_str() {
        "race" => {
            // Announce readiness, then wait for the common start signal.
            process::touch(Path::new(&env("MIGRATE_READY")));
            process::block_until_exists(Path::new(&env("MIGRATE_GO")), Duration::from_secs(120));
            // A staged child first applies up to `stage`, then pauses for longer
            // than SQLite's busy handler sleeps between two attempts (100 ms at
            // most) so that a waiting process takes the lock, then applies the
            // rest, if any is left.
            let stage: Option<u32> = std::env::var("MIGRATE_STAGE")
                .ok()
                .map(|s| s.parse().unwrap());
            let pause = || std::thread::sleep(Duration::from_millis(150));
            let outcome = match env("MIGRATE_KIND").as_str() {
                "static" => match stage {
                    Some(stage) => Migrator::new()
                        .migrate_to(&mut conn, stage)
                        .and_then(|first| {
                            pause();
                            let rest = conn.migrate()?;
                            Ok([first.ids(), rest.ids()].concat())
                        }),
                    None => conn.migrate().map(|r| r.ids()),
                },
                _ => {
                    let m = runtime_migrator("rt");
                    match stage {
                        Some(stage) => m.migrate_to(&mut conn, stage).and_then(|first| {
                            pause();
                            let rest = m.migrate(&mut conn)?;
                            Ok([first.ids(), rest.ids()].concat())
                        }),
                        None => m.migrate(&mut conn).map(|r| r.ids()),
                    }
                }
            };
            match outcome {
                Ok(ids) => report(&format!("ok {} {}", std::process::id(), join(&ids))),
                Err(e) => report(&format!("err {e}")),
            }
        }
        "hold" => match holding_migrator().migrate(&mut conn) {
            Ok(r) => report(&format!("ok {}", join(&r.ids()))),
            Err(e) => report(&format!("err {e}")),
        },
        "impatient" => {
            let timeout = Duration::from_millis(env("MIGRATE_TIMEOUT_MS").parse().unwrap());
            let m = match env("MIGRATE_SET").as_str() {
                "hold" => holding_migrator(),
                _ => plain_migrator(),
            };
            match m.lock_timeout(timeout).migrate(&mut conn) {
                Ok(r) => report(&format!("ok {}", join(&r.ids()))),
                Err(Error::Locked { waited }) => {
                    let message = Error::Locked { waited }.to_string();
                    report(&format!("locked {} {message}", waited.as_millis()));
                }
                Err(e) => report(&format!("err {e}")),
            }
        }
        "mixed" => {
            // A small deterministic generator, seeded per child.
            let mut seed: u64 = env("MIGRATE_SEED").parse().unwrap();
            let mut next = move |n: u32| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((seed >> 33) % u64::from(n)) as u32
            };
            process::touch(Path::new(&env("MIGRATE_READY")));
            process::block_until_exists(Path::new(&env("MIGRATE_GO")), Duration::from_secs(120));
            let m = mixed_migrator();
            let ops: u32 = env("MIGRATE_OPS").parse().unwrap();
            for _ in 0..ops {
                let result = match next(5) {
                    0 => m.migrate(&mut conn).map(drop),
                    1 => m.migrate_to(&mut conn, next(MIXED_COUNT)).map(drop),
                    2 => m.rollback_migration(&mut conn).map(drop),
                    3 => m.rollback_to(&mut conn, next(MIXED_COUNT)).map(drop),
                    _ => m.rollback_all(&mut conn).map(drop),
                };
                if let Err(e) = result {
                    report(&format!("err {e}"));
                    return;
                }
                assert!(conn.is_autocommit());
            }
            report("ok");
        }
        "reader" => {
            // Holds a read transaction (a SHARED lock in rollback-journal
            // mode) until the parent releases it.
            conn.execute_batch("BEGIN").unwrap();
            let n: i64 = conn
                .query_row("SELECT count(*) FROM sqlite_master", (), |r| r.get(0))
                .unwrap();
            process::touch(Path::new(&env("MIGRATE_HOLDING")));
            process::block_until_exists(
                Path::new(&env("MIGRATE_RELEASE")),
                Duration::from_secs(60),
            );
            conn.execute_batch("COMMIT").unwrap();
            report(&format!("ok {n}"));
        }
        other => panic!("child: unknown role {other:?}"),
    }
}

fn join(ids: &[u32]) -> String {
    if ids.is_empty() {
        return "-".to_owned();
    }
    ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

fn split(ids: &str) -> Vec<u32> {
    if ids == "-" {
        return Vec::new();
    }
    ids.split(',').map(|s| s.parse().unwrap()).collect()
}

// ---------------------------------------------------------------------------
// Inspecting a database from the parent.

/// `ran` as (id → pids that applied it).
fn ran_rows(conn: &Connection) -> BTreeMap<u32, Vec<u32>> {
    let mut out: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    if !has_table(conn, "ran") {
        return out;
    }
    let mut stmt = conn
        .prepare("SELECT id, pid FROM ran ORDER BY rowid")
        .unwrap();
    let rows = stmt
        .query_map((), |r| Ok((r.get::<_, u32>(0)?, r.get::<_, u32>(1)?)))
        .unwrap();
    for row in rows {
        let (id, pid) = row.unwrap();
        out.entry(id).or_default().push(pid);
    }
    out
}

fn mode_name(wal: bool) -> &'static str {
    if wal {
        "WAL"
    } else {
        "rollback journal"
    }
}

// ---------------------------------------------------------------------------
// The tests.

fn rounds() -> usize {
    if let Ok(n) = std::env::var("MIGRATE_ROUNDS") {
        return n.parse().expect("MIGRATE_ROUNDS must be a number");
    }
    if process::long_run() {
        200
    } else {
        20
    }
}

/// 8 processes × N rounds, each round on a fresh file: all succeed, every
/// migration is applied exactly once (by the process that reports it), the
/// history is exactly 0..n-1 and the file passes `integrity_check`. Rounds
/// alternate WAL and rollback-journal mode, the statically linked default set
/// and a run-time set, and half the children first `migrate_to(k)`, pause, then
/// `migrate()`, so that runs interleave at more than one point.
#[test]
fn eight_processes_racing_apply_each_migration_exactly_once() {
    let rounds = rounds();
    let started = Instant::now();
    let mut split_rounds = 0;
    let mut max_appliers = 0;
    for round in 0..rounds {
        let wal = round % 2 == 0;
        let static_set = (round / 2) % 2 == 0;
        let dir = tempfile::tempdir().unwrap();
        let db = new_db(dir.path(), "app.db", wal);
        let go = dir.path().join("go");
        let mut children = Vec::new();
        for i in 0..CHILDREN {
            let ready = dir.path().join(format!("ready-{i}"));
            let mut cmd = child_command("race");
            cmd.env("MIGRATE_DB", &db)
                .env("MIGRATE_READY", &ready)
                .env("MIGRATE_GO", &go)
                .env(
                    "MIGRATE_KIND",
                    if static_set { "static" } else { "runtime" },
                );
            // Half the children stop after migration 0, 1, 2 or 3 (varying
            // with the round) before going on.
            if i % 2 == 0 {
                cmd.env(
                    "MIGRATE_STAGE",
                    ((i / 2 + round) % (COUNT as usize - 2)).to_string(),
                );
            }
            let child = cmd.spawn().expect("spawn child");
            children.push((ready, child));
        }
        // Barrier: everyone is up and polling, then go.
        for (ready, child) in &mut children {
            process::wait_for_file(
                ready,
                child,
                Duration::from_secs(120),
                Duration::from_millis(1),
            )
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        }
        process::touch(&go);

        let mut applied_by: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        let mut appliers = 0;
        for (_i, (_, child)) in children.into_iter().enumerate() {
            let finished = wait_with_timeout(child, Duration::from_secs(120));
            let result = finished.result();
            if std::env::var("MIGRATE_DEBUG").is_ok() {
                eprintln!("child {_i}: {result}");
            }
            assert!(
                finished.status.success(),
                "round {round}: child failed: {}",
                finished.describe()
            );
            let mut parts = result.splitn(3, ' ');
            let (kind, pid, ids) = (
                parts.next().unwrap(),
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
            );
            assert_eq!(
                kind,
                "ok",
                "round {round} ({}): a child's migrate() failed: {result}",
                mode_name(wal)
            );
            let pid: u32 = pid.parse().unwrap();
            let ids = split(ids);
            if !ids.is_empty() {
                appliers += 1;
            }
            for id in ids {
                applied_by.entry(id).or_default().push(pid);
            }
        }
        if std::env::var("MIGRATE_DEBUG").is_ok() {
            eprintln!("round {round}: {applied_by:?}");
        }
        if appliers > 1 {
            split_rounds += 1;
        }
        max_appliers = max_appliers.max(appliers);

        let conn = Connection::open(&db).unwrap();
        integrity_ok(&conn);
        let expected: Vec<u32> = (0..COUNT).collect();
        let table = if static_set {
            "migrations"
        } else {
            "migrations_rt"
        };
        assert_eq!(
            tracking_ids_or_empty(&conn, table),
            expected,
            "round {round}: tracking rows"
        );
        assert_eq!(
            user_version(&conn),
            if static_set { i64::from(COUNT) } else { 0 }
        );
        let ran = ran_rows(&conn);
        assert_eq!(
            ran.keys().copied().collect::<Vec<_>>(),
            expected,
            "round {round}: ran ids"
        );
        for (id, pids) in &ran {
            assert_eq!(
                pids.len(),
                1,
                "round {round}: migration {id} ran {} times (pids {pids:?})",
                pids.len()
            );
            // The process that says it applied the migration is the one whose
            // pid the migration recorded.
            assert_eq!(
                applied_by.get(id),
                Some(pids),
                "round {round}: reports vs ran for migration {id}"
            );
        }
        assert_eq!(
            applied_by.len(),
            COUNT as usize,
            "round {round}: every migration reported once"
        );
        let users: i64 = conn
            .query_row("SELECT count(*) FROM users", (), |r| r.get(0))
            .unwrap();
        assert_eq!(users, 500);
    }
    eprintln!(
        "concurrent: {rounds} rounds × {CHILDREN} processes in {:.1} s; {split_rounds} rounds had the \
         work split across processes (at most {max_appliers} processes applied something in one round)",
        started.elapsed().as_secs_f64()
    );
}

/// A child holds the write lock inside a long migration; a second child with
/// a short `lock_timeout` gets `Error::Locked` ("locked by another
/// migrator") and changes nothing; the first then finishes alone, and the
/// second, run again, finds nothing to do.
#[test]
fn a_process_waiting_longer_than_its_lock_timeout_gets_locked_and_changes_nothing() {
    for wal in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let db = new_db(dir.path(), "app.db", wal);
        let holding = dir.path().join("holding");
        let release = dir.path().join("release");

        let mut holder = child_command("hold")
            .env("MIGRATE_DB", &db)
            .env("MIGRATE_HOLDING", &holding)
            .env("MIGRATE_RELEASE", &release)
            .spawn()
            .unwrap();
        process::wait_for_file(
            &holding,
            &mut holder,
            Duration::from_secs(60),
            Duration::from_millis(1),
        )
        .unwrap();

        // The holder is inside migration 1 with 0 done (uncommitted).
        let impatient = child_command("impatient")
            .env("MIGRATE_DB", &db)
            .env("MIGRATE_SET", "hold")
            .env("MIGRATE_TIMEOUT_MS", "300")
            .spawn()
            .unwrap();
        let finished = wait_with_timeout(impatient, Duration::from_secs(60));
        let result = finished.result();
        assert!(
            result.starts_with("locked "),
            "{}: expected Error::Locked, got {result}",
            mode_name(wal)
        );
        let mut parts = result.splitn(3, ' ');
        parts.next();
        let waited_ms: u128 = parts.next().unwrap().parse().unwrap();
        let message = parts.next().unwrap();
        assert!(
            message.contains("locked by another migrator"),
            "message: {message}"
        );
        assert!(
            (250..10_000).contains(&waited_ms),
            "waited {waited_ms} ms for a 300 ms lock timeout"
        );

        // The same from this process, with a connection of its own.
        let mut conn = Connection::open(&db).unwrap();
        match holding_migrator()
            .lock_timeout(Duration::from_millis(100))
            .migrate(&mut conn)
        {
            Err(Error::Locked { .. }) => {}
            other => panic!(
                "{}: expected Error::Locked in-process, got {other:?}",
                mode_name(wal)
            ),
        }
        assert!(conn.is_autocommit(), "connection left inside a transaction");

        // Not half-run: nothing of the holder's run and nothing of the
        // impatient ones is visible while the holder still holds the lock.
        assert!(tracking_ids_or_empty(&conn, "migrations_hold").is_empty());
        assert!(ran_rows(&conn).is_empty());
        assert_eq!(user_version(&conn), 0);

        process::touch(&release);
        let finished = wait_with_timeout(holder, Duration::from_secs(60));
        assert_eq!(finished.result(), "ok 0,1,2", "{}", finished.describe());

        integrity_ok(&conn);
        assert_eq!(
            tracking_ids_or_empty(&conn, "migrations_hold"),
            vec![0, 1, 2]
        );
        let ran = ran_rows(&conn);
        assert_eq!(ran.len(), 3);
        assert!(
            ran.values().all(|pids| pids.len() == 1),
            "double application: {ran:?}"
        );

        let again = child_command("impatient")
            .env("MIGRATE_DB", &db)
            .env("MIGRATE_SET", "hold")
            .env("MIGRATE_TIMEOUT_MS", "300")
            .spawn()
            .unwrap();
        assert_eq!(
            wait_with_timeout(again, Duration::from_secs(60)).result(),
            "ok -"
        );
    }
}

/// An ordinary writer (no migrator) holds `BEGIN EXCLUSIVE`: `migrate()` in
/// another process with a short lock timeout fails with `Error::Locked`, and
/// nothing in the file changed; once the writer is done, migrate works.
#[test]
fn a_foreign_exclusive_writer_makes_migrate_fail_with_locked_and_nothing_changes() {
    for wal in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let db = new_db(dir.path(), "app.db", wal);
        let m = plain_migrator();
        let mut conn = Connection::open(&db).unwrap();
        assert_eq!(m.migrate_to(&mut conn, 1).unwrap().ids(), vec![0, 1]);
        conn.execute_batch("CREATE TABLE notes (body TEXT)")
            .unwrap();
        let before = dump(&conn);

        let writer = Connection::open(&db).unwrap();
        writer
            .execute_batch("BEGIN EXCLUSIVE; INSERT INTO notes VALUES ('uncommitted');")
            .unwrap();

        let child = child_command("impatient")
            .env("MIGRATE_DB", &db)
            .env("MIGRATE_SET", "plain")
            .env("MIGRATE_TIMEOUT_MS", "300")
            .spawn()
            .unwrap();
        let result = wait_with_timeout(child, Duration::from_secs(60)).result();
        assert!(
            result.starts_with("locked "),
            "{}: expected Error::Locked, got {result}",
            mode_name(wal)
        );
        assert!(result.contains("locked by another migrator"), "{result}");

        // In-process too, on a third connection.
        let mut third = Connection::open(&db).unwrap();
        match plain_migrator()
            .lock_timeout(Duration::from_millis(100))
            .migrate(&mut third)
        {
            Err(Error::Locked { .. }) => {}
            other => panic!(
                "{}: expected Error::Locked in-process, got {other:?}",
                mode_name(wal)
            ),
        }
        assert!(third.is_autocommit());

        writer.execute_batch("ROLLBACK").unwrap();
        drop(writer);
        let after = dump(&conn);
        assert_eq!(
            before,
            after,
            "{}: a failed migrate changed the database",
            mode_name(wal)
        );
        integrity_ok(&conn);

        assert_eq!(m.migrate(&mut conn).unwrap().ids(), vec![2, 3]);
        assert_eq!(
            tracking_ids_or_empty(&conn, "migrations_plain"),
            vec![0, 1, 2, 3]
        );
        assert!(ran_rows(&conn).values().all(|pids| pids.len() == 1));
    }
}

/// Threads of one process, each with its own connection, are no different
/// from processes: a cheap extra check that runs many more rounds.
#[test]
fn threads_with_their_own_connections_apply_each_migration_exactly_once() {
    let rounds = rounds() * 2;
    for round in 0..rounds {
        let wal = round % 2 == 0;
        let dir = tempfile::tempdir().unwrap();
        let db = new_db(dir.path(), "app.db", wal);
        let migrator = Arc::new(runtime_migrator("threads"));
        let barrier = Arc::new(std::sync::Barrier::new(CHILDREN));
        let handles: Vec<_> = (0..CHILDREN)
            .map(|_| {
                let (db, migrator, barrier) = (db.clone(), migrator.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let mut conn = Connection::open(&db).unwrap();
                    barrier.wait();
                    migrator.migrate(&mut conn).map(|r| r.ids())
                })
            })
            .collect();
        let mut all: Vec<u32> = Vec::new();
        for h in handles {
            all.extend(
                h.join()
                    .unwrap()
                    .unwrap_or_else(|e| panic!("round {round}: {e}")),
            );
        }
        all.sort_unstable();
        assert_eq!(all, (0..COUNT).collect::<Vec<_>>(), "round {round}");
        let conn = Connection::open(&db).unwrap();
        integrity_ok(&conn);
        assert_eq!(
            tracking_ids_or_empty(&conn, "migrations_threads"),
            (0..COUNT).collect::<Vec<_>>()
        );
        // One process: `ran` holds one pid, so count rows per id instead.
        assert!(ran_rows(&conn).values().all(|pids| pids.len() == 1));
    }
}

/// Processes migrating and rolling back the same file at random: every call
/// succeeds, and at the end the history is contiguous, agrees with the tables
/// present and with `events` (each applied migration's +1 and -1 balance to
/// exactly 1, each unapplied one's to 0): no step was lost or doubled.
#[test]
fn processes_migrating_and_rolling_back_at_random_keep_history_and_schema_in_step() {
    let rounds = if process::long_run() { 40 } else { 4 };
    let children = 4;
    let ops = 25;
    for round in 0..rounds {
        let wal = round % 2 == 0;
        let dir = tempfile::tempdir().unwrap();
        let db = new_db(dir.path(), "app.db", wal);
        let go = dir.path().join("go");
        let mut spawned = Vec::new();
        for i in 0..children {
            let ready = dir.path().join(format!("ready-{i}"));
            let child = child_command("mixed")
                .env("MIGRATE_DB", &db)
                .env("MIGRATE_READY", &ready)
                .env("MIGRATE_GO", &go)
                .env("MIGRATE_OPS", ops.to_string())
                .env("MIGRATE_SEED", (round * 1000 + i + 1).to_string())
                .spawn()
                .unwrap();
            spawned.push((ready, child));
        }
        for (ready, child) in &mut spawned {
            process::wait_for_file(
                ready,
                child,
                Duration::from_secs(120),
                Duration::from_millis(1),
            )
            .unwrap();
        }
        process::touch(&go);
        for (_, child) in spawned {
            let finished = wait_with_timeout(child, Duration::from_secs(300));
            assert_eq!(
                finished.result(),
                "ok",
                "round {round}: {}",
                finished.describe()
            );
        }
        let conn = Connection::open(&db).unwrap();
        integrity_ok(&conn);
        let applied = tracking_ids_or_empty(&conn, "migrations_mixed");
        let a = applied.len() as u32;
        assert_eq!(
            applied,
            (0..a).collect::<Vec<_>>(),
            "round {round}: history not contiguous"
        );
        for id in 0..MIXED_COUNT {
            assert_eq!(
                has_table(&conn, &format!("m{id}")),
                id < a,
                "round {round}: table m{id}"
            );
            let balance: i64 = conn
                .query_row(
                    "SELECT coalesce(sum(delta), 0) FROM events WHERE id = ?1",
                    [id],
                    |r| r.get(0),
                )
                .unwrap_or(0);
            assert_eq!(
                balance,
                i64::from(id < a),
                "round {round}: events of migration {id}"
            );
        }
    }
}

/// Rollback-journal mode: a reader in another process holds its read lock, so
/// the migrator can take the write lock and run, but not commit. After the
/// lock timeout it fails with `Error::Locked`, the whole run is rolled back,
/// the connection is usable, and once the reader is gone migrate works.
#[test]
fn a_reader_blocking_the_commit_gives_locked_and_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let db = new_db(dir.path(), "app.db", false);
    let m = plain_migrator();
    let mut conn = Connection::open(&db).unwrap();
    assert_eq!(m.migrate_to(&mut conn, 1).unwrap().ids(), vec![0, 1]);
    let before = dump(&conn);

    let holding = dir.path().join("holding");
    let release = dir.path().join("release");
    let mut reader = child_command("reader")
        .env("MIGRATE_DB", &db)
        .env("MIGRATE_HOLDING", &holding)
        .env("MIGRATE_RELEASE", &release)
        .spawn()
        .unwrap();
    process::wait_for_file(
        &holding,
        &mut reader,
        Duration::from_secs(60),
        Duration::from_millis(1),
    )
    .unwrap();

    let started = Instant::now();
    let result = plain_migrator()
        .lock_timeout(Duration::from_millis(300))
        .migrate(&mut conn);
    match &result {
        Err(Error::Locked { .. }) => {}
        other => panic!("expected Error::Locked when a reader blocks the commit, got {other:?}"),
    }
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "gave up after {:?}",
        started.elapsed()
    );
    assert!(result
        .unwrap_err()
        .to_string()
        .contains("locked by another migrator"));
    assert!(conn.is_autocommit(), "connection left inside a transaction");
    assert_eq!(
        dump(&conn),
        before,
        "a run that could not commit changed the database"
    );

    process::touch(&release);
    let finished = wait_with_timeout(reader, Duration::from_secs(60));
    assert!(
        finished.result().starts_with("ok "),
        "{}",
        finished.describe()
    );
    assert_eq!(m.migrate(&mut conn).unwrap().ids(), vec![2, 3]);
    integrity_ok(&conn);
    assert_eq!(
        tracking_ids_or_empty(&conn, "migrations_plain"),
        vec![0, 1, 2, 3]
    );
    assert!(ran_rows(&conn).values().all(|pids| pids.len() == 1));
}

/// Rollback-journal mode with a small page cache: a big migration would need
/// to spill pages to the file before it commits, which needs the exclusive
/// lock that a reader in another process is blocking. SQLite then keeps the
/// pages in memory (or fails the statement with SQLITE_BUSY), and the commit
/// cannot happen within the lock timeout: the run stops with `Locked` (or
/// `Failed` with the busy error as source), nothing of it persists, the
/// connection is usable, and the next run works.
#[test]
fn a_reader_blocking_a_cache_spill_inside_a_migration_fails_it_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let db = new_db(dir.path(), "app.db", false);
    let spill = || {
        Migrator::new()
            .set("spill")
            .add(0, "small", |tx: &Transaction| {
                tx.execute_batch("CREATE TABLE small (x)")
            })
            .add(1, "big", |tx: &Transaction| {
                tx.execute_batch(
                    "CREATE TABLE big (id INTEGER PRIMARY KEY, payload TEXT);
                     WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50000)
                     INSERT INTO big SELECT i, printf('%0100d', i) FROM n;",
                )
            })
    };
    let mut conn = Connection::open(&db).unwrap();
    conn.execute_batch("PRAGMA cache_size = 20").unwrap();
    assert_eq!(spill().migrate_to(&mut conn, 0).unwrap().ids(), vec![0]);
    let holding = dir.path().join("holding");
    let release = dir.path().join("release");
    let mut reader = child_command("reader")
        .env("MIGRATE_DB", &db)
        .env("MIGRATE_HOLDING", &holding)
        .env("MIGRATE_RELEASE", &release)
        .spawn()
        .unwrap();
    process::wait_for_file(
        &holding,
        &mut reader,
        Duration::from_secs(60),
        Duration::from_millis(1),
    )
    .unwrap();
    let result = spill()
        .lock_timeout(Duration::from_millis(300))
        .migrate(&mut conn);
    match &result {
        Err(Error::Locked { .. }) => {}
        Err(Error::Failed { source, .. })
            if source.to_string().contains("locked") || source.to_string().contains("busy") => {}
        other => panic!("expected Locked (or Failed with SQLITE_BUSY), got {other:?}"),
    }
    assert!(conn.is_autocommit(), "connection left inside a transaction");
    process::touch(&release);
    wait_with_timeout(reader, Duration::from_secs(60));
    integrity_ok(&conn);
    assert!(has_table(&conn, "small"));
    assert!(!has_table(&conn, "big"));
    assert_eq!(tracking_ids_or_empty(&conn, "migrations_spill"), vec![0]);
    assert_eq!(spill().migrate(&mut conn).unwrap().ids(), vec![1]);
    assert_eq!(tracking_ids_or_empty(&conn, "migrations_spill"), vec![0, 1]);
    integrity_ok(&conn);
}
