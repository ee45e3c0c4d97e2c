//! The same migrations on a libSQL server cluster: a real `sqld` primary and
//! replicas on loopback ports (see `tests/support/sqld.rs`), real child
//! processes, no mocks. Skipped, saying so on stderr, without `SQLD_BIN`.
//!
//! ```text
//! SQLD_BIN=/path/to/sqld cargo test --test libsql_cluster
//! ```

#[path = "support/process.rs"]
mod process;
#[path = "support/sqld.rs"]
mod sqld;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use migrate_core::rusqlite::{self, Connection, Transaction};
use migrate_core::{embed_migrations, migration, rollback, Error, Migrator};

use process::{child_command, child_role, env, report, wait_with_timeout};
use sqld::{connect, sqld_bin, Node};

embed_migrations!("tests/fixtures/sql/cluster", set = "cluster");
embed_migrations!("tests/fixtures/sql/cluster_slow", set = "cluster_slow");
embed_migrations!("tests/fixtures/sql/blog", set = "blog");
// The default set, for `user_version`, which mirrors its count.
embed_migrations!("tests/fixtures/sql/blog");
// Migration 1 of each writes its tracking table, or releases the runner's
// savepoint by its old name and opens one by that name: what a file's guard
// refuses, and a server has no guard for.
embed_migrations!(
    "tests/fixtures/sql/cluster_hostile_delete",
    set = "hostile_delete"
);
embed_migrations!(
    "tests/fixtures/sql/cluster_hostile_update",
    set = "hostile_update"
);
embed_migrations!(
    "tests/fixtures/sql/cluster_hostile_savepoint",
    set = "hostile_savepoint"
);
// Migration 1 of each writes another set's tracking table, or indexes, alters
// or puts a trigger on its own, or changes only a row's chain: what the check
// after a step cannot see, refused before it is sent.
embed_migrations!(
    "tests/fixtures/sql/cluster_hostile_other",
    set = "hostile_other"
);
embed_migrations!(
    "tests/fixtures/sql/cluster_hostile_index",
    set = "hostile_index"
);
embed_migrations!(
    "tests/fixtures/sql/cluster_hostile_column",
    set = "hostile_column"
);
embed_migrations!(
    "tests/fixtures/sql/cluster_hostile_trigger",
    set = "hostile_trigger"
);
embed_migrations!(
    "tests/fixtures/sql/cluster_hostile_chain",
    set = "hostile_chain"
);
embed_migrations!(
    "tests/fixtures/sql/cluster_read_history",
    set = "read_history"
);
embed_migrations!(
    "tests/fixtures/sql/cluster_hostile_droptrig",
    set = "hostile_droptrig"
);
// Set early's migration 0 creates a trigger that empties set late's history,
// before that history exists; its migration 1 fires it.
embed_migrations!("tests/fixtures/sql/cluster_early", set = "early");
embed_migrations!("tests/fixtures/sql/cluster_late", set = "late");
embed_migrations!("tests/fixtures/sql/cluster_fk_off", set = "fk_off");
embed_migrations!(
    "tests/fixtures/sql/cluster_hostile_quoted",
    set = "hostile_quoted"
);
embed_migrations!(
    "tests/fixtures/corpus/atuinsh__atuin/atuin-server-sqlite/migrations",
    set = "atuin_server",
    ids = "sorted"
);

/// A Rust migration written for rusqlite: it cannot run on a server.
#[migration(0, set = "rusty")]
fn rusty_table(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch("CREATE TABLE rusty (x)")
}

// `async fn` migrations on the libSQL transaction.
#[migration(0, set = "async_ok")]
async fn create_gadgets(tx: &libsql::Transaction) -> libsql::Result<()> {
    tx.execute(
        "CREATE TABLE gadgets (id INTEGER PRIMARY KEY, name TEXT)",
        (),
    )
    .await?;
    tx.execute("INSERT INTO gadgets (name) VALUES (?1)", ["first"])
        .await?;
    Ok(())
}

#[rollback(0, set = "async_ok")]
async fn drop_gadgets(tx: &libsql::Transaction) -> libsql::Result<()> {
    tx.execute("DROP TABLE gadgets", ()).await.map(|_| ())
}

#[migration(1, set = "async_ok")]
async fn name_gadgets(tx: &libsql::Transaction) -> libsql::Result<()> {
    let mut rows = tx.query("SELECT count(*) FROM gadgets", ()).await?;
    let row = rows.next().await?;
    let count: i64 = row.ok_or(libsql::Error::QueryReturnedNoRows)?.get(0)?;
    tx.execute_batch(&format!("CREATE TABLE gadget_count AS SELECT {count} AS n"))
        .await?;
    Ok(())
}

// A step that fails after writing: rolled back to its savepoint, the steps
// before it kept.
#[migration(0, set = "async_failing")]
async fn async_first(tx: &libsql::Transaction) -> libsql::Result<()> {
    tx.execute("CREATE TABLE kept (x)", ()).await.map(|_| ())
}

#[migration(1, set = "async_failing")]
async fn async_broken(tx: &libsql::Transaction) -> libsql::Result<()> {
    tx.execute("CREATE TABLE half_done (x)", ()).await?;
    tx.execute("INSERT INTO no_such_table VALUES (1)", ())
        .await?;
    Ok(())
}

#[migration(0, set = "async_commits")]
async fn async_commits(tx: &libsql::Transaction) -> libsql::Result<()> {
    tx.execute("CREATE TABLE committed_early (x)", ()).await?;
    tx.execute("COMMIT", ()).await.map(|_| ())
}

#[migration(0, set = "async_panics")]
async fn async_panics(tx: &libsql::Transaction) -> libsql::Result<()> {
    tx.execute("CREATE TABLE before_panic (x)", ()).await?;
    panic!("the gadget exploded");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn block_on<T>(future: impl Future<Output = T>) -> T {
    runtime().block_on(future)
}

/// Every row of a query, each column as text (NULL as "NULL").
/// A primary alone, in a directory of its own, for the test `test`;
/// `None` (the test prints SKIPPED) without sqld. The node comes first, so
/// that it stops before its directory goes.
fn lone_primary(test: &str) -> Option<(Node, tempfile::TempDir)> {
    let bin = sqld_bin(test)?;
    let dir = tempfile::tempdir().unwrap();
    let primary = Node::primary(&bin, &dir.path().join("primary"));
    Some((primary, dir))
}

async fn rows(conn: &libsql::Connection, sql: &str) -> Vec<Vec<String>> {
    let mut rows = conn.query(sql, ()).await.expect(sql);
    let mut out = Vec::new();
    while let Some(row) = rows.next().await.expect("next row") {
        let mut values = Vec::new();
        for index in 0..row.column_count() {
            values.push(match row.get_value(index).expect("value") {
                libsql::Value::Null => "NULL".to_owned(),
                libsql::Value::Integer(value) => value.to_string(),
                libsql::Value::Real(value) => value.to_string(),
                libsql::Value::Text(text) => text,
                libsql::Value::Blob(blob) => format!("{blob:?}"),
            });
        }
        out.push(values);
    }
    out
}

/// How many times each migration id ran, from the `ran` side table.
async fn ran(conn: &libsql::Connection) -> BTreeMap<u32, usize> {
    let mut counts = BTreeMap::new();
    for row in rows(conn, "SELECT id FROM ran").await {
        *counts.entry(row[0].parse().expect("id")).or_default() += 1;
    }
    counts
}

async fn tables(conn: &libsql::Connection) -> Vec<String> {
    rows(
        conn,
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' \
         ESCAPE '\\' AND name NOT LIKE 'libsql\\_%' ESCAPE '\\' AND name NOT LIKE '\\_%' \
         ESCAPE '\\' ORDER BY name",
    )
    .await
    .into_iter()
    .map(|row| row[0].clone())
    .collect()
}

fn once_each(ids: &[u32]) -> BTreeMap<u32, usize> {
    ids.iter().map(|&id| (id, 1)).collect()
}

/// The child processes: `migrate` (the set in MIGRATE_SET, on MIGRATE_URL)
/// and `wait` (until current, on MIGRATE_URL).
#[test]
fn child_process_entry() {
    let Some(role) = child_role() else { return };
    let url = env("MIGRATE_URL");
    let set = env("MIGRATE_SET");
    let result = block_on(async {
        let conn = connect(&url).await;
        let migrator = Migrator::new()
            .set(set)
            .lock_timeout(Duration::from_secs(60));
        match role.as_str() {
            "migrate" => migrator
                .libsql(&conn)
                .migrate()
                .await
                .map(|report| format!("ok {:?}", report.ids())),
            "wait" => migrator
                .libsql(&conn)
                .wait_until_current(Duration::from_secs(60))
                .await
                .map(|()| "current".to_owned()),
            other => panic!("unknown role {other}"),
        }
    });
    report(&match result {
        Ok(text) => text,
        Err(error) => format!("error {error}"),
    });
}

fn spawn(role: &str, url: &str, set: &str) -> std::process::Child {
    child_command(role)
        .env("MIGRATE_URL", url)
        .env("MIGRATE_SET", set)
        .spawn()
        .expect("spawn child")
}

/// Parses `ok [0, 1]` into the ids.
fn applied_ids(result: &str) -> Vec<u32> {
    let list = result
        .strip_prefix("ok [")
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or_else(|| panic!("child failed: {result}"));
    list.split(',')
        .filter(|id| !id.trim().is_empty())
        .map(|id| id.trim().parse().expect("id"))
        .collect()
}

#[test]
fn three_processes_migrating_the_primary_apply_each_migration_exactly_once() {
    let Some(bin) = sqld_bin("three_processes_migrating_the_primary") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let primary = Node::primary(&bin, &dir.path().join("primary"));
    let replicas = [
        Node::replica(&bin, &dir.path().join("replica1"), &primary),
        Node::replica(&bin, &dir.path().join("replica2"), &primary),
    ];
    let children: Vec<_> = (0..3)
        .map(|_| spawn("migrate", &primary.url(), "cluster"))
        .collect();
    let mut applied = Vec::new();
    for child in children {
        let finished = wait_with_timeout(child, Duration::from_secs(120));
        applied.extend(applied_ids(&finished.result()));
    }
    applied.sort_unstable();
    assert_eq!(
        applied,
        vec![0, 1, 2],
        "each migration applied by exactly one process"
    );
    block_on(async {
        let conn = connect(&primary.url()).await;
        assert_eq!(ran(&conn).await, once_each(&[0, 1, 2]));
        let history = Migrator::new()
            .set("cluster")
            .libsql(&conn)
            .applied_migrations()
            .await
            .unwrap();
        assert_eq!(
            history.iter().map(|m| m.id).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        // Every replica catches up and then serves the whole schema.
        for replica in &replicas {
            let conn = connect(&replica.url()).await;
            Migrator::new()
                .set("cluster")
                .libsql(&conn)
                .wait_until_current(Duration::from_secs(30))
                .await
                .unwrap();
            assert_eq!(ran(&conn).await, once_each(&[0, 1, 2]));
        }
    });
}

/// A run that fails ends its transaction on the server before its process
/// ends (a probe's finding: libSQL rolls back a dropped transaction from a
/// task, which a process ending at once never ran, and the server kept its
/// write lock until its ~5 s transaction timeout: every retry paid it).
/// The first run commits migration 0 and fails at 1; the second fails at
/// once, with nothing to commit.
#[test]
fn a_failed_run_leaves_no_write_lock_behind_when_its_process_ends() {
    let Some((primary, _dir)) = lone_primary("a_failed_run_leaves_no_write_lock_behind") else {
        return;
    };
    for run in 0..2 {
        let failed = wait_with_timeout(
            spawn("migrate", &primary.url(), "hostile_delete"),
            Duration::from_secs(60),
        );
        assert!(
            failed.result().starts_with("error "),
            "run {run}: {}",
            failed.result()
        );
        block_on(async {
            let writer = connect(&primary.url()).await;
            let started = Instant::now();
            let tx = writer
                .transaction_with_behavior(libsql::TransactionBehavior::Immediate)
                .await
                .unwrap();
            tx.execute_batch("CREATE TABLE IF NOT EXISTS after_failure (x)")
                .await
                .unwrap();
            tx.commit().await.unwrap();
            let waited = started.elapsed();
            assert!(
                waited < Duration::from_secs(3),
                "run {run}: the next writer waited {waited:?} for the lock of a transaction \
                 whose process had ended"
            );
        });
    }
}

/// Waiters polling a server, beside many tables, leave it able to serve
/// (a probe's finding: each request went on a stream of its own, which the
/// server keeps until it expires; past about 128 it answers "429 Too Many
/// Requests" to every client, and eight waiters, or one beside 150 tables,
/// got there in seconds).
#[test]
fn waiters_beside_many_tables_keep_the_server_serving() {
    let Some((primary, _dir)) = lone_primary("waiters_beside_many_tables") else {
        return;
    };
    block_on(async {
        let conn = connect(&primary.url()).await;
        Migrator::new()
            .set("cluster")
            .libsql(&conn)
            .migrate()
            .await
            .unwrap();
        let tables: String = (0..200)
            .map(|i| format!("CREATE TABLE extra_{i} (x);\n"))
            .collect();
        conn.execute_batch(&tables).await.unwrap();
        let waiters: Vec<_> = (0..8)
            .map(|_| {
                let url = primary.url();
                tokio::spawn(async move {
                    let conn = connect(&url).await;
                    Migrator::new()
                        .set("cluster_slow")
                        .libsql(&conn)
                        .wait_until_current(Duration::from_secs(4))
                        .await
                })
            })
            .collect();
        for waiter in waiters {
            let outcome = waiter.await.unwrap();
            assert!(
                matches!(outcome, Err(Error::NotCurrent { .. })),
                "{outcome:?}"
            );
        }
        for _ in 0..3 {
            Migrator::new()
                .set("cluster")
                .libsql(&conn)
                .wait_until_current(Duration::from_secs(5))
                .await
                .unwrap();
        }
        assert_eq!(ran(&conn).await, once_each(&[0, 1, 2]));
    });
}

/// Processes on the replicas and on the primary migrating a set the server
/// has never seen (a probe's finding: through a replica, the first run
/// failed with "no such table" for its own tracking table: a replica
/// forwards the run's writes, but reads what they created from its own
/// copy, which has it only once the primary's commit has reached it).
#[test]
fn processes_on_replicas_migrate_a_new_set_each_migration_exactly_once() {
    let Some(bin) = sqld_bin("processes_on_replicas_migrate_a_new_set") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let primary = Node::primary(&bin, &dir.path().join("primary"));
    let replicas = [
        Node::replica(&bin, &dir.path().join("replica1"), &primary),
        Node::replica(&bin, &dir.path().join("replica2"), &primary),
    ];
    // One process alone, through a replica: its run creates the history.
    let alone = wait_with_timeout(
        spawn("migrate", &replicas[0].url(), "cluster"),
        Duration::from_secs(120),
    );
    assert_eq!(applied_ids(&alone.result()), vec![0, 1, 2]);
    block_on(async {
        let conn = connect(&primary.url()).await;
        assert_eq!(ran(&conn).await, once_each(&[0, 1, 2]));
    });
    // Four at once on another new set, whoever comes first.
    let urls = [
        replicas[0].url(),
        replicas[1].url(),
        replicas[0].url(),
        primary.url(),
    ];
    let children: Vec<_> = urls
        .iter()
        .map(|url| spawn("migrate", url, "blog"))
        .collect();
    let mut applied = Vec::new();
    for child in children {
        let finished = wait_with_timeout(child, Duration::from_secs(120));
        applied.extend(applied_ids(&finished.result()));
    }
    applied.sort_unstable();
    let blog = std::fs::read_dir("tests/fixtures/sql/blog")
        .unwrap()
        .filter(|entry| {
            let name = entry.as_ref().unwrap().file_name();
            let name = name.to_string_lossy();
            name.ends_with(".sql") && !name.ends_with(".down.sql")
        })
        .count() as u32;
    assert_eq!(
        applied,
        (0..blog).collect::<Vec<_>>(),
        "each migration applied by exactly one process"
    );
}

#[test]
fn killing_the_primary_mid_migration_keeps_nothing_of_it_and_a_rerun_applies_it_once() {
    let Some(bin) = sqld_bin("killing_the_primary_mid_migration") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut primary = Node::primary(&bin, &dir.path().join("primary"));
    let replica = Node::replica(&bin, &dir.path().join("replica"), &primary);
    block_on(async {
        let conn = connect(&primary.url()).await;
        let first = Migrator::new()
            .set("cluster_slow")
            .libsql(&conn)
            .migrate_to(0)
            .await;
        assert_eq!(first.unwrap().ids(), vec![0]);
        let replica_conn = connect(&replica.url()).await;
        wait_for(&replica_conn, "SELECT count(*) FROM ran", "1").await;
    });
    let child = spawn("migrate", &primary.url(), "cluster_slow");
    // Inside the slow migration (it takes seconds on the server).
    std::thread::sleep(Duration::from_millis(1500));
    primary.kill();
    let finished = wait_with_timeout(child, Duration::from_secs(120));
    let result = finished.result();
    assert!(
        result.starts_with("error "),
        "the client must get an error: {result}"
    );
    block_on(async {
        // The replica keeps serving reads while the primary is down.
        let replica_conn = connect(&replica.url()).await;
        assert_eq!(ran(&replica_conn).await, once_each(&[0]));
        let on_replica = Migrator::new().set("cluster_slow").libsql(&replica_conn);
        assert_eq!(on_replica.applied_migrations().await.unwrap().len(), 1);
    });
    primary.restart();
    block_on(async {
        let conn = connect(&primary.url()).await;
        let kept = tables(&conn).await;
        assert_eq!(
            kept,
            ["base", "migrations_cluster_slow", "ran"],
            "no partial DDL"
        );
        assert_eq!(
            ran(&conn).await,
            once_each(&[0]),
            "no tracking row of the killed step"
        );
        let migrator = Migrator::new()
            .set("cluster_slow")
            .lock_timeout(Duration::from_secs(60));
        let report = migrator.clone().libsql(&conn).migrate().await.unwrap();
        assert_eq!(report.ids(), vec![1]);
        assert_eq!(ran(&conn).await, once_each(&[0, 1]));
        assert!(migrator.libsql(&conn).migrate().await.unwrap().is_empty());
    });
}

/// Polls until a query's first column reads `expected` (a replica catching up).
async fn wait_for(conn: &libsql::Connection, sql: &str, expected: &str) {
    let start = Instant::now();
    loop {
        if let Ok(mut found) = conn.query(sql, ()).await {
            if let Ok(Some(row)) = found.next().await {
                if row
                    .get_value(0)
                    .ok()
                    .map(|v| format!("{v:?}"))
                    .is_some_and(|v| v.contains(expected))
                {
                    return;
                }
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "replica never answered {sql}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn a_lock_held_past_the_servers_timeout_is_locked_and_a_retry_succeeds() {
    let Some((primary, _dir)) = lone_primary("a_lock_held_past_the_servers_timeout") else {
        return;
    };
    block_on(async {
        let conn = connect(&primary.url()).await;
        let migrator = Migrator::new()
            .set("cluster_slow")
            .lock_timeout(Duration::from_secs(1));
        assert_eq!(
            migrator
                .clone()
                .libsql(&conn)
                .migrate_to(0)
                .await
                .unwrap()
                .ids(),
            vec![0]
        );
        let slow = tokio::spawn({
            let migrator = migrator.clone().libsql(&conn);
            async move { migrator.migrate().await }
        });
        // Another writer asks for the lock while the slow migration holds it;
        // the server hands it over after its transaction timeout.
        tokio::time::sleep(Duration::from_millis(800)).await;
        let writer = connect(&primary.url()).await;
        let started = Instant::now();
        let tx = writer
            .transaction_with_behavior(libsql::TransactionBehavior::Immediate)
            .await
            .unwrap();
        tx.execute_batch("CREATE TABLE other_writer (x); INSERT INTO other_writer VALUES (1)")
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let writer_waited = started.elapsed();
        let outcome = slow.await.unwrap();
        assert!(
            matches!(outcome, Err(Error::Locked { .. })),
            "expected Locked after the server took the transaction away (writer waited \
             {writer_waited:?}), got {outcome:?}"
        );
        let kept = tables(&conn).await;
        assert_eq!(
            kept,
            ["base", "migrations_cluster_slow", "other_writer", "ran"],
            "no `big`"
        );
        assert_eq!(ran(&conn).await, once_each(&[0]), "nothing of the run kept");
        // Nobody else waits now: the retry succeeds, each migration once.
        let report = migrator
            .lock_timeout(Duration::from_secs(60))
            .libsql(&conn)
            .migrate()
            .await
            .unwrap();
        assert_eq!(report.ids(), vec![1]);
        assert_eq!(ran(&conn).await, once_each(&[0, 1]));
    });
}

#[test]
fn an_instance_beside_a_replica_waits_until_current_then_sees_the_schema() {
    let Some(bin) = sqld_bin("an_instance_beside_a_replica_waits") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let primary = Node::primary(&bin, &dir.path().join("primary"));
    let replica = Node::replica(&bin, &dir.path().join("replica"), &primary);
    let waiter = spawn("wait", &replica.url(), "cluster");
    // It waits: nobody has migrated yet.
    std::thread::sleep(Duration::from_millis(700));
    block_on(async {
        let conn = connect(&primary.url()).await;
        let report = Migrator::new()
            .set("cluster")
            .libsql(&conn)
            .migrate()
            .await
            .unwrap();
        assert_eq!(report.ids(), vec![0, 1, 2]);
    });
    let finished = wait_with_timeout(waiter, Duration::from_secs(90));
    assert_eq!(finished.result(), "current");
    block_on(async {
        let conn = connect(&replica.url()).await;
        let found = tables(&conn).await;
        for table in [
            "accounts",
            "migrations_cluster",
            "order_audit",
            "orders",
            "ran",
        ] {
            assert!(
                found.iter().any(|t| t == table),
                "{table} missing on the replica: {found:?}"
            );
        }
        // A waiter that finds nobody migrating gives up with NotCurrent.
        let early = Migrator::new()
            .set("cluster_slow")
            .libsql(&conn)
            .wait_until_current(Duration::from_millis(300))
            .await;
        assert!(
            matches!(
                early,
                Err(Error::NotCurrent {
                    applied: Some(0),
                    known: 2,
                    ..
                })
            ),
            "{early:?}"
        );
    });
}

/// The schema and the history, normalised: every object's type, name,
/// table and SQL, and every tracking row but its time.
fn normalised_local(conn: &Connection, table: &str) -> (Vec<Vec<String>>, Vec<Vec<String>>) {
    let text = |sql: &str| -> Vec<Vec<String>> {
        let mut stmt = conn.prepare(sql).unwrap();
        let columns = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        let mut out = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            out.push(
                (0..columns)
                    .map(|i| match row.get::<_, rusqlite::types::Value>(i).unwrap() {
                        rusqlite::types::Value::Null => "NULL".to_owned(),
                        rusqlite::types::Value::Integer(v) => v.to_string(),
                        rusqlite::types::Value::Text(t) => t,
                        other => format!("{other:?}"),
                    })
                    .collect(),
            );
        }
        out
    };
    (text(SCHEMA_SQL), text(&history_sql(table)))
}

const SCHEMA_SQL: &str = "SELECT type, name, tbl_name, sql FROM sqlite_master \
     WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE 'libsql\\_%' ESCAPE '\\' \
     AND name NOT LIKE '\\_%' ESCAPE '\\' ORDER BY type, name";

/// A schema row with its SQL normalised: `libsql` sends each statement as
/// its parser prints it again (comments dropped, spacing changed), so the
/// server stores other text for the same definition.
fn squeezed(mut row: Vec<String>) -> Vec<String> {
    let sql = &row[3];
    let without_comments: String = sql
        .lines()
        .map(|line| match line.find("--") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join(" ");
    // Its parser also prints keywords in capitals.
    row[3] = without_comments
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect();
    row
}

fn history_sql(table: &str) -> String {
    format!("SELECT id, name, checksum, chain FROM \"{table}\" ORDER BY id")
}

#[test]
fn the_same_sql_directories_give_the_same_schema_and_history_locally_and_on_the_server() {
    let Some(bin) = sqld_bin("the_same_sql_directories") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let primary = Node::primary(&bin, &dir.path().join("primary"));
    for set in ["cluster", "blog", "atuin_server"] {
        let path = dir.path().join(format!("{set}.db"));
        let mut local = Connection::open(&path).unwrap();
        let local_ids = Migrator::new().set(set).migrate(&mut local).unwrap().ids();
        let table = format!("migrations_{set}");
        let (local_schema, local_history) = normalised_local(&local, &table);
        block_on(async {
            let conn = connect(&primary.url()).await;
            let report = Migrator::new()
                .set(set)
                .libsql(&conn)
                .migrate()
                .await
                .unwrap();
            assert_eq!(report.ids(), local_ids, "{set}");
            // The server holds every set's objects: compare this set's.
            let mine: Vec<_> = rows(&conn, SCHEMA_SQL)
                .await
                .into_iter()
                .filter(|row| local_schema.iter().any(|local| local[1] == row[1]))
                .map(squeezed)
                .collect();
            let local_schema: Vec<_> = local_schema.iter().cloned().map(squeezed).collect();
            assert_eq!(mine, local_schema, "{set}: the same objects, the same SQL");
            assert_eq!(
                rows(&conn, &history_sql(&table)).await,
                local_history,
                "{set}: same history"
            );
        });
    }
}

#[test]
fn a_database_moves_between_a_file_and_the_server_and_keeps_its_history() {
    let Some(bin) = sqld_bin("a_database_moves") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let primary = Node::primary(&bin, &dir.path().join("primary"));
    // Applied locally up to 1, then the database is copied to the server
    // (its schema and rows, as a dump would), where migrate goes on.
    let mut local = Connection::open(dir.path().join("local.db")).unwrap();
    Migrator::new()
        .set("cluster")
        .migrate_to(&mut local, 1)
        .unwrap();
    let mut dump = Vec::new();
    {
        let mut objects = local
            .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND sql IS NOT NULL ORDER BY rowid")
            .unwrap();
        let found: Vec<(String, String)> = objects
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for (name, sql) in found {
            dump.push(sql);
            let mut stmt = local.prepare(&format!("SELECT quote(id), quote(name), quote(applied_at), quote(checksum), quote(chain) FROM \"{name}\"")).ok();
            if name.starts_with("migrations_") {
                if let Some(stmt) = stmt.as_mut() {
                    let inserts: Vec<String> = stmt
                        .query_map([], |row| {
                            Ok(format!(
                                "INSERT INTO \"{name}\" VALUES ({}, {}, {}, {}, {})",
                                row.get::<_, String>(0)?,
                                row.get::<_, String>(1)?,
                                row.get::<_, String>(2)?,
                                row.get::<_, String>(3)?,
                                row.get::<_, String>(4)?
                            ))
                        })
                        .unwrap()
                        .collect::<Result<_, _>>()
                        .unwrap();
                    dump.extend(inserts);
                }
            }
        }
        dump.push("INSERT INTO ran VALUES (0), (1)".to_owned());
    }
    let local_status = Migrator::new().set("cluster").status(&local).unwrap();
    block_on(async {
        let conn = connect(&primary.url()).await;
        conn.execute_batch(&dump.join(";\n")).await.unwrap();
        let remote = Migrator::new().set("cluster").libsql(&conn);
        let status = remote.status().await.unwrap();
        assert_eq!(
            status
                .iter()
                .map(|s| (&s.name, &s.state))
                .collect::<Vec<_>>(),
            local_status
                .iter()
                .map(|s| (&s.name, &s.state))
                .collect::<Vec<_>>()
        );
        remote.verify().await.unwrap();
        assert_eq!(remote.migrate().await.unwrap().ids(), vec![2]);
        assert_eq!(ran(&conn).await, once_each(&[0, 1, 2]));
    });
}

/// With no authorizer on a server, a step's SQL that writes its tracking
/// table, or ends the runner's savepoint and opens one by the name it used
/// to have, is found after it ran and undone: the step fails, the one
/// before it stays applied, the history is as it was.
#[test]
fn a_steps_sql_cannot_write_the_history_or_take_the_savepoint_on_a_server() {
    let Some((primary, _dir)) = lone_primary("a_steps_sql_cannot_write_the_history") else {
        return;
    };
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let conn = connect(&primary.url()).await;
            for set in ["hostile_delete", "hostile_update", "hostile_savepoint"] {
                let m = Migrator::new().set(set).libsql(&conn);
                let result = m.migrate().await;
                assert!(
                    matches!(
                        result,
                        Err(Error::Forbidden { id: 1, .. } | Error::Failed { id: 1, .. })
                    ),
                    "{set}: {result:?}"
                );
                let applied = m.applied_migrations().await.unwrap();
                assert_eq!(applied.len(), 1, "{set}");
                assert_eq!(applied[0].name, "first", "{set}");
                assert_ne!(applied[0].checksum, "x", "{set}");
                let tables = tables(&conn).await;
                assert!(!tables.contains(&"partial".to_owned()), "{set}: {tables:?}");
                assert!(m.verify().await.is_ok(), "{set}");
            }
        });
}

/// What the check after a step cannot see is refused before the step is
/// sent: none of its SQL runs, and every history is as it was. Reading a
/// tracking table stays allowed, as on a file.
#[test]
fn a_steps_sql_cannot_change_any_sets_history_on_a_server() {
    let Some((primary, _dir)) = lone_primary("a_steps_sql_cannot_change_any_sets_history") else {
        return;
    };
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let conn = connect(&primary.url()).await;
            let victim = Migrator::new().set("hostile_update").libsql(&conn);
            assert_eq!(victim.migrate_to(0).await.unwrap().ids(), vec![0]);
            let victim_before = rows(&conn, "SELECT * FROM migrations_hostile_update").await;
            for set in [
                "hostile_other",
                "hostile_index",
                "hostile_column",
                "hostile_trigger",
                "hostile_chain",
                // The statement after a `DROP TRIGGER` (once read as part of
                // it, as a trigger's body).
                "hostile_droptrig",
                // Another set's table named by a string literal, which
                // SQLite takes as a name there.
                "hostile_quoted",
            ] {
                let m = Migrator::new().set(set).libsql(&conn);
                let table = format!("migrations_{set}");
                let result = m.migrate().await;
                let Err(Error::Forbidden { id: 1, reason, .. }) = &result else {
                    panic!("{set}: {result:?}");
                };
                assert!(
                    reason.contains("line 2") && reason.contains("001_forge.sql"),
                    "{set}: {reason}"
                );
                let applied = m.applied_migrations().await.unwrap();
                assert_eq!(applied.len(), 1, "{set}");
                assert_eq!(applied[0].name, "first", "{set}");
                let tables = tables(&conn).await;
                assert!(!tables.contains(&"partial".to_owned()), "{set}: {tables:?}");
                let sneaky = rows(
                    &conn,
                    &format!(
                        "SELECT name FROM sqlite_master WHERE name = 'sneaky' \
                         UNION ALL SELECT name FROM pragma_table_info('{table}') \
                         WHERE name = 'sneaky'"
                    ),
                )
                .await;
                assert!(sneaky.is_empty(), "{set}: {sneaky:?}");
                assert!(m.verify().await.is_ok(), "{set}");
            }
            assert_eq!(
                rows(&conn, "SELECT * FROM migrations_hostile_update").await,
                victim_before
            );
            assert!(victim.verify().await.is_ok());
            let reader = Migrator::new().set("read_history").libsql(&conn);
            assert_eq!(reader.migrate().await.unwrap().ids(), vec![0, 1]);
            assert_eq!(
                rows(&conn, "SELECT name FROM copy").await,
                vec![vec!["first".to_owned()]]
            );
        });
}

/// A trigger created before the tracking table it writes existed (so the
/// check of its statement let it through) stops every run while it exists:
/// a server cannot refuse the trigger's write when it fires, as a file's
/// guard does. Found by a hostile probe: set late's history was emptied
/// and its migrations ran again.
#[test]
fn a_trigger_writing_a_tracking_table_stops_every_run_on_a_server() {
    let Some((primary, _dir)) = lone_primary("a_trigger_writing_a_tracking_table") else {
        return;
    };
    block_on(async {
        let conn = connect(&primary.url()).await;
        let early = Migrator::new().set("early").libsql(&conn);
        let late = Migrator::new().set("late").libsql(&conn);
        assert_eq!(early.migrate_to(0).await.unwrap().ids(), vec![0]);
        let refused = late.migrate().await;
        let Err(Error::Forbidden { id: 0, reason, .. }) = &refused else {
            panic!("{refused:?}");
        };
        assert!(
            reason.contains("\"wipe\"") && reason.contains("migrations_late"),
            "{reason}"
        );
        assert!(!tables(&conn).await.contains(&"late0".to_owned()));
        conn.execute("DROP TRIGGER wipe", ()).await.unwrap();
        assert_eq!(late.migrate().await.unwrap().ids(), vec![0]);
        assert_eq!(early.migrate().await.unwrap().ids(), vec![1]);
        assert_eq!(late.applied_migrations().await.unwrap().len(), 1);
        assert!(late.migrate().await.unwrap().is_empty());
        assert_eq!(
            rows(&conn, "SELECT count(*) FROM late0").await,
            vec![vec!["1".to_owned()]]
        );
    });
}

/// sqld runs transactions with foreign keys on, so a set with a
/// `foreign_keys = off` step is refused whole on it before anything is
/// sent. Written for cargo-mutants' survivor in the violation check after
/// such a step; it found the docs wrong (they said sqld ran with foreign
/// keys off) and the refusal coming after the steps before it had run.
#[test]
fn a_set_with_a_foreign_keys_off_step_is_refused_whole_on_a_server() {
    let Some((primary, _dir)) = lone_primary("a_set_with_a_foreign_keys_off_step") else {
        return;
    };
    block_on(async {
        let conn = connect(&primary.url()).await;
        let on = rows(&conn, "PRAGMA foreign_keys").await;
        assert_eq!(on, vec![vec!["1".to_owned()]], "sqld's default");
        let m = Migrator::new().set("fk_off").libsql(&conn);
        let result = m.migrate().await;
        let Err(Error::WrongBackend { id: 1, reason, .. }) = &result else {
            panic!("{result:?}");
        };
        assert!(reason.contains("foreign keys off"), "{reason}");
        assert!(result
            .unwrap_err()
            .to_string()
            .contains("nothing was changed"));
        assert!(tables(&conn).await.is_empty(), "nothing was changed");
    });
}

/// `PRAGMA user_version` mirrors the default set's count on a server as on
/// a file, and a named set leaves it alone (cargo-mutants: no test looked).
#[test]
fn user_version_follows_the_default_set_only_on_a_server() {
    let Some((primary, _dir)) = lone_primary("user_version_follows_the_default_set_only") else {
        return;
    };
    block_on(async {
        let conn = connect(&primary.url()).await;
        let user_version = || async { rows(&conn, "PRAGMA user_version").await[0][0].clone() };
        let named = Migrator::new().set("cluster").libsql(&conn);
        assert_eq!(named.migrate().await.unwrap().ids(), vec![0, 1, 2]);
        assert_eq!(user_version().await, "0");
        let default = Migrator::new().libsql(&conn);
        assert_eq!(default.migrate().await.unwrap().ids(), vec![0, 1]);
        assert_eq!(user_version().await, "2");
        assert!(default.migrate().await.unwrap().is_empty());
        assert_eq!(user_version().await, "2");
        assert_eq!(
            default.rollback_migration().await.unwrap().map(|m| m.id),
            Some(1)
        );
        assert_eq!(user_version().await, "1");
        assert!(named.rollback_migration().await.unwrap().is_some());
        assert_eq!(user_version().await, "1");
    });
}

/// The up-to-date check reads without asking for the write lock: an
/// instance starting while another client holds a write transaction on
/// the primary is not held up by it (found missing by cargo-mutants: with
/// the check skipped, every call went to `BEGIN IMMEDIATE`).
#[test]
fn an_up_to_date_check_does_not_wait_for_a_writer() {
    let Some((primary, _dir)) = lone_primary("an_up_to_date_check_does_not_wait_for_a_writer")
    else {
        return;
    };
    block_on(async {
        let conn = connect(&primary.url()).await;
        let migrator = Migrator::new()
            .set("cluster")
            .lock_timeout(Duration::from_secs(1));
        assert_eq!(
            migrator
                .clone()
                .libsql(&conn)
                .migrate()
                .await
                .unwrap()
                .ids(),
            vec![0, 1, 2]
        );
        let writer = connect(&primary.url()).await;
        let tx = writer
            .transaction_with_behavior(libsql::TransactionBehavior::Immediate)
            .await
            .unwrap();
        tx.execute_batch("CREATE TABLE held (x)").await.unwrap();
        // Were it to ask for the lock, it would get `Locked` after 1 s.
        let outcome = migrator.libsql(&conn).migrate().await;
        let writer_kept_its_transaction = tx.rollback().await;
        assert!(
            matches!(&outcome, Ok(report) if report.is_empty()),
            "{outcome:?}"
        );
        // Had the check asked for the lock, the server would have ended the
        // writer's transaction after its timeout to hand it over.
        assert!(
            writer_kept_its_transaction.is_ok(),
            "{writer_kept_its_transaction:?}"
        );
    });
}

#[test]
fn the_server_refuses_what_a_file_refuses_with_nothing_changed() {
    let Some((primary, _dir)) = lone_primary("the_server_refuses") else {
        return;
    };
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let conn = connect(&primary.url()).await;
            // A Rust migration on rusqlite: refused whole, nothing created.
            let refused = Migrator::new().set("rusty").libsql(&conn).migrate().await;
            assert!(
                matches!(
                    &refused,
                    Err(Error::WrongBackend {
                        id: 0,
                        backend: "libSQL",
                        ..
                    })
                ),
                "{refused:?}"
            );
            let message = refused.unwrap_err().to_string();
            assert!(
                message.contains("nothing was changed") && message.contains("libsql_cluster.rs"),
                "{message}"
            );
            assert!(tables(&conn).await.is_empty());

            // Another tool's database.
            conn.execute("CREATE TABLE theirs (x)", ()).await.unwrap();
            let unmanaged = Migrator::new().set("cluster").libsql(&conn).migrate().await;
            assert!(
                matches!(unmanaged, Err(Error::UnmanagedDatabase { .. })),
                "{unmanaged:?}"
            );
            conn.execute("DROP TABLE theirs", ()).await.unwrap();

            let m = Migrator::new().set("cluster").libsql(&conn);
            // A transaction begun on the connection by hand is refused, and
            // left as it was.
            conn.execute("BEGIN", ()).await.unwrap();
            let in_tx = m.pending_migrations().await;
            assert!(matches!(in_tx, Err(Error::InTransaction)), "{in_tx:?}");
            assert!(matches!(m.migrate().await, Err(Error::InTransaction)));
            conn.execute("ROLLBACK", ()).await.unwrap();
            assert_eq!(m.pending_migrations().await.unwrap().len(), 3);
            assert_eq!(m.migrate_to(1).await.unwrap().ids(), vec![0, 1]);
            assert_eq!(m.pending_migrations().await.unwrap().len(), 1);

            // An applied migration edited by hand: Modified, nothing changed.
            conn.execute(
                "UPDATE migrations_cluster SET checksum = 'edited' WHERE id = 1",
                (),
            )
            .await
            .unwrap();
            let before = tables(&conn).await;
            let modified = m.migrate().await;
            assert!(
                matches!(modified, Err(Error::Modified { .. })),
                "{modified:?}"
            );
            assert!(matches!(m.verify().await, Err(Error::Modified { .. })));
            assert_eq!(tables(&conn).await, before);
            assert_eq!(ran(&conn).await, once_each(&[0, 1]));
        });
}

/// No server needed: a set of `async fn` migrations is refused on a SQLite
/// file before anything is written.
#[test]
fn a_set_of_async_fn_migrations_is_refused_on_a_file_with_nothing_changed() {
    let mut conn = Connection::open_in_memory().unwrap();
    let refused = Migrator::new().set("async_ok").migrate(&mut conn);
    let Err(error) = refused else {
        panic!("ran on a file: {refused:?}")
    };
    assert!(
        matches!(
            &error,
            Error::WrongBackend {
                id: 0,
                backend: "a SQLite file",
                ..
            }
        ),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("libsql_cluster.rs") && message.contains("async fn"),
        "{message}"
    );
    let objects: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |row| row.get(0))
        .unwrap();
    assert_eq!(objects, 0, "not even the tracking table");
    // Reading works: it runs nothing.
    assert_eq!(
        Migrator::new()
            .set("async_ok")
            .pending_migrations(&conn)
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn async_fn_migrations_run_on_the_server_atomic_with_their_rows() {
    let Some((primary, _dir)) = lone_primary("async_fn_migrations_run_on_the_server") else {
        return;
    };
    block_on(async {
        let conn = connect(&primary.url()).await;
        let m = Migrator::new().set("async_ok").libsql(&conn);
        assert_eq!(m.migrate().await.unwrap().ids(), vec![0, 1]);
        assert_eq!(rows(&conn, "SELECT n FROM gadget_count").await, [["1"]]);
        assert!(m.migrate().await.unwrap().is_empty());
        let no_rollback = m.rollback_migration().await;
        assert!(
            matches!(no_rollback, Err(Error::NoRollback { id: 1, .. })),
            "{no_rollback:?}"
        );

        // The observer sees a server's steps as a file's.
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let failing = Migrator::new()
            .set("async_failing")
            .observer({
                let seen = seen.clone();
                move |event| {
                    let line = match event {
                        migrate_core::Event::Started { id, .. } => format!("started {id}"),
                        migrate_core::Event::Finished { id, .. } => format!("finished {id}"),
                        migrate_core::Event::Failed { id, .. } => format!("failed {id}"),
                        _ => "other".to_owned(),
                    };
                    seen.lock().unwrap().push(line);
                }
            })
            .libsql(&conn);
        let failed = failing.migrate().await;
        assert!(
            matches!(failed, Err(Error::Failed { id: 1, .. })),
            "{failed:?}"
        );
        let found = tables(&conn).await;
        assert!(found.contains(&"kept".to_owned()), "{found:?}");
        assert!(
            !found.contains(&"half_done".to_owned()),
            "the failed step is rolled back whole: {found:?}"
        );
        let applied = failing.applied_migrations().await.unwrap();
        assert_eq!(applied.iter().map(|m| m.id).collect::<Vec<_>>(), vec![0]);
        assert_eq!(
            *seen.lock().unwrap(),
            ["started 0", "finished 0", "started 1", "failed 1"]
        );

        let panics = Migrator::new()
            .set("async_panics")
            .libsql(&conn)
            .migrate()
            .await;
        assert!(
            matches!(&panics, Err(Error::Panicked { id: 0, message, .. }) if message.contains("exploded")),
            "{panics:?}"
        );
        assert!(!tables(&conn).await.contains(&"before_panic".to_owned()));

        // A step that commits the server's transaction itself: no commit
        // hook can stop it, so it fails before its row, saying its work stays.
        let commits = Migrator::new().set("async_commits").libsql(&conn);
        let committed = commits.migrate().await;
        let Err(error) = committed else {
            panic!("{committed:?}")
        };
        assert!(matches!(error, Error::Failed { id: 0, .. }), "{error:?}");
        assert!(error.to_string().contains("was not undone"), "{error}");
        assert!(
            commits.applied_migrations().await.unwrap().is_empty(),
            "no row for it"
        );
    });
}

#[test]
fn rollbacks_on_the_server_remove_each_step_with_its_row() {
    let Some((primary, _dir)) = lone_primary("rollbacks_on_the_server") else {
        return;
    };
    block_on(async {
        let conn = connect(&primary.url()).await;
        let m = Migrator::new().set("cluster").libsql(&conn);
        assert_eq!(m.migrate().await.unwrap().ids(), vec![0, 1, 2]);
        let undone = m.rollback_migration().await.unwrap().map(|row| row.id);
        assert_eq!(undone, Some(2));
        assert!(!tables(&conn).await.contains(&"order_audit".to_owned()));
        assert_eq!(m.rollback_to(0).await.unwrap().ids(), vec![1]);
        assert_eq!(ran(&conn).await, once_each(&[0]));
        let status: Vec<_> = m
            .status()
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.state)
            .collect();
        assert_eq!(status[0], migrate_core::MigrationState::Applied);
        assert_eq!(status[1], migrate_core::MigrationState::Pending);
        assert_eq!(m.rollback_all().await.unwrap().ids(), vec![0]);
        assert_eq!(tables(&conn).await, vec!["migrations_cluster".to_owned()]);
        // And forward again: the same chain as the first time.
        assert_eq!(m.migrate().await.unwrap().ids(), vec![0, 1, 2]);
        assert_eq!(m.applied_migrations().await.unwrap().len(), 3);
    });
}
