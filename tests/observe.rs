//! Progress: the observer callback sees applies, rollbacks and failures.

use std::sync::{Arc, Mutex};

use migrate_core::rusqlite::{Connection, Transaction};
use migrate_core::{Event, Migrator};

fn migrator() -> Migrator {
    Migrator::new()
        .set("observed")
        .add(0, "create_a", |tx: &Transaction| {
            tx.execute_batch("CREATE TABLE a (x)")
        })
        .add(1, "create_b", |tx: &Transaction| {
            tx.execute_batch("CREATE TABLE b (x)")
        })
        .add(2, "broken", |tx: &Transaction| {
            tx.execute_batch("CREATE TABLE")
        })
        .add_rollback(1, |tx: &Transaction| tx.execute_batch("DROP TABLE b"))
}

#[test]
fn the_observer_sees_every_step() {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = Arc::clone(&seen);
    let m = migrator().observer(move |event: &Event| {
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
