//! With the `log` feature, each step is logged through the `log` crate: a
//! DEBUG record when it starts, INFO when it finishes, ERROR when it fails,
//! each carrying the step's id, name, direction and (when it ended) its
//! duration as `key=value` text. (Its own test binary: `log` has one
//! global logger per process.)

mod common;

use std::sync::Mutex;

use log::{Level, LevelFilter, Log, Metadata, Record};
use migrate_core::rusqlite::Connection;

/// Keeps every record's target, level and message.
struct Collector(Mutex<Vec<(String, Level, String)>>);

impl Log for Collector {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &Record<'_>) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push((
            record.target().to_owned(),
            record.level(),
            record.args().to_string(),
        ));
    }
    fn flush(&self) {}
}

static COLLECTOR: Collector = Collector(Mutex::new(Vec::new()));

/// A record's message without its `elapsed_ms=…` value, which varies;
/// checks that the value is a number.
fn without_elapsed(message: &str) -> String {
    let Some(at) = message.find(" elapsed_ms=") else {
        return message.to_owned();
    };
    let rest = &message[at + " elapsed_ms=".len()..];
    let end = rest.find(' ').unwrap_or(rest.len());
    assert!(rest[..end].parse::<f64>().is_ok(), "{message}");
    format!("{} elapsed_ms=_{}", &message[..at], &rest[end..])
}

#[test]
fn each_step_is_logged_with_id_name_direction_and_duration() {
    log::set_logger(&COLLECTOR).expect("the only logger of this binary");
    log::set_max_level(LevelFilter::Trace);

    let mut conn = Connection::open_in_memory().expect("open");
    assert!(common::observed_migrator("logged")
        .migrate(&mut conn)
        .is_err());
    common::observed_migrator("logged")
        .rollback_migration(&mut conn)
        .expect("rollback");

    let records = COLLECTOR
        .0
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let steps: Vec<(Level, String)> = records
        .iter()
        .filter(|(target, _, _)| target == "migrate_core")
        .map(|(_, level, message)| (*level, without_elapsed(message)))
        .collect();
    assert_eq!(steps.len(), 8, "{steps:#?}");
    let (failed_level, failed) = &steps[5];
    assert_eq!(*failed_level, Level::Error, "{steps:#?}");
    assert!(
        failed.starts_with(
            "migration step failed: id=2 name=broken direction=up elapsed_ms=_ \
             error=migration 2 `broken` failed and was rolled back: "
        ),
        "{failed}"
    );
    let expected = [
        (
            Level::Debug,
            "migration step started: id=0 name=create_a direction=up",
        ),
        (
            Level::Info,
            "migration step finished: id=0 name=create_a direction=up elapsed_ms=_",
        ),
        (
            Level::Debug,
            "migration step started: id=1 name=create_b direction=up",
        ),
        (
            Level::Info,
            "migration step finished: id=1 name=create_b direction=up elapsed_ms=_",
        ),
        (
            Level::Debug,
            "migration step started: id=2 name=broken direction=up",
        ),
        (Level::Error, failed.as_str()),
        (
            Level::Debug,
            "migration step started: id=1 name=create_b direction=down",
        ),
        (
            Level::Info,
            "migration step finished: id=1 name=create_b direction=down elapsed_ms=_",
        ),
    ];
    let expected: Vec<(Level, String)> = expected
        .iter()
        .map(|(level, message)| (*level, (*message).to_owned()))
        .collect();
    assert_eq!(steps, expected);
}
