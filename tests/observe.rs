//! Progress: the observer callback sees applies, rollbacks and failures.

use std::sync::{Arc, Mutex};

mod common;

use migrate_core::rusqlite::Connection;
use migrate_core::Event;

#[test]
fn the_observer_sees_every_step() {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = Arc::clone(&seen);
    let m = common::observed_migrator("observed").observer(move |event: &Event| {
        let line = match event {
            Event::Started {
                id,
                name,
                direction,
            } => format!("start {id} {name} {direction:?}"),
            Event::Finished { id, direction, .. } => format!("done {id} {direction:?}"),
            Event::Failed { id, error, .. } => format!(
                "failed {id}: {}",
                error.to_string().contains("`broken` failed")
            ),
            _ => "other".to_owned(),
        };
        log.lock().unwrap_or_else(|e| e.into_inner()).push(line);
    });
    let mut conn = Connection::open_in_memory().expect("open");
    assert!(m.migrate(&mut conn).is_err());
    m.rollback_migration(&mut conn).expect("rollback");
    let seen = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert_eq!(
        seen,
        vec![
            "start 0 create_a Up",
            "done 0 Up",
            "start 1 create_b Up",
            "done 1 Up",
            "start 2 broken Up",
            "failed 2: true",
            "start 1 create_b Down",
            "done 1 Down",
        ]
    );
}

/// Steps that ran but whose transaction could not commit (a reader holds
/// the rollback journal's lock past the timeout) were kept by nothing: each
/// is reported failed after its `Finished`, with the commit's error.
#[test]
fn steps_lost_with_their_commit_are_reported_failed() {
    use migrate_core::rusqlite::Transaction;
    use std::time::Duration;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("app.db");
    Connection::open(&path)
        .and_then(|c| c.execute_batch("PRAGMA journal_mode = DELETE"))
        .expect("create");
    let reader = Connection::open(&path).expect("open");
    reader.execute_batch("BEGIN").expect("begin");
    let _: i64 = reader
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .expect("read: SHARED lock held");
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = Arc::clone(&seen);
    let m = migrate_core::Migrator::new()
        .set("lost_commit")
        .lock_timeout(Duration::from_millis(300))
        .add(0, "a", |tx: &Transaction| {
            tx.execute_batch("CREATE TABLE a (x)")
        })
        .add(1, "b", |tx: &Transaction| {
            tx.execute_batch("CREATE TABLE b (x)")
        })
        .observer(move |event: &Event| {
            let line = match event {
                Event::Started { id, .. } => format!("start {id}"),
                Event::Finished { id, .. } => format!("done {id}"),
                Event::Failed { id, error, .. } => format!(
                    "failed {id}: {}",
                    matches!(error, migrate_core::Error::Locked { .. })
                ),
                _ => "other".to_owned(),
            };
            log.lock().unwrap_or_else(|e| e.into_inner()).push(line);
        });
    let mut conn = Connection::open(&path).expect("open");
    let result = m.migrate(&mut conn);
    reader.execute_batch("COMMIT").expect("end the read");
    assert!(
        matches!(result, Err(migrate_core::Error::Locked { .. })),
        "{result:?}"
    );
    assert!(m.applied_migrations(&conn).expect("read").is_empty());
    let seen = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert_eq!(
        seen,
        vec![
            "start 0",
            "done 0",
            "start 1",
            "done 1",
            "failed 0: true",
            "failed 1: true"
        ]
    );
}

/// A step whose failure ended the whole transaction (`INSERT OR ROLLBACK`)
/// took the batch's earlier steps with it: each, reported finished, is
/// reported failed, before the run does it again (before: `done 0` twice
/// and nothing in between, so a progress display or the CLI's JSON counted
/// it done twice, or done where it was not).
#[test]
fn steps_lost_with_a_transaction_sqlite_ended_are_reported_failed() {
    use migrate_core::rusqlite::Transaction;
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = Arc::clone(&seen);
    let m = migrate_core::Migrator::new()
        .set("lost_transaction")
        .add(0, "a", |tx: &Transaction| {
            tx.execute_batch("CREATE TABLE a (x UNIQUE); INSERT INTO a VALUES (1);")
        })
        .add(1, "b", |tx: &Transaction| {
            tx.execute_batch("INSERT OR ROLLBACK INTO a VALUES (1)")
        })
        .observer(move |event: &Event| {
            let line = match event {
                Event::Started { id, .. } => format!("start {id}"),
                Event::Finished { id, .. } => format!("done {id}"),
                Event::Failed { id, .. } => format!("failed {id}"),
                _ => "other".to_owned(),
            };
            log.lock().unwrap_or_else(|e| e.into_inner()).push(line);
        });
    let mut conn = Connection::open_in_memory().expect("open");
    assert!(m.migrate(&mut conn).is_err());
    assert_eq!(m.applied_migrations(&conn).expect("read").len(), 1);
    let seen = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert_eq!(
        seen,
        vec!["start 0", "done 0", "start 1", "failed 1", "failed 0", "start 0", "done 0"]
    );
}
