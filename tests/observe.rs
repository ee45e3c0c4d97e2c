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
