//! Each step is a `tracing` span carrying id, name, direction and duration,
//! and a failure is an ERROR event. (Its own test binary: tracing caches
//! per-callsite interest, and a test emitting concurrently without a
//! subscriber could make this one miss events.)

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use migrate_core::rusqlite::Connection;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Metadata, Subscriber};

/// A span's or event's fields, by name.
type Fields = BTreeMap<String, String>;

/// Collects spans (name and fields) and events; clones share the store.
#[derive(Default, Clone)]
struct Collector {
    spans: Arc<Mutex<Vec<(String, Fields)>>>,
    events: Arc<Mutex<Vec<Fields>>>,
}

struct Visitor<'a>(&'a mut Fields);

impl Visit for Visitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl Subscriber for Collector {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut fields = BTreeMap::new();
        span.record(&mut Visitor(&mut fields));
        let mut spans = self.spans.lock().unwrap_or_else(|e| e.into_inner());
        spans.push((span.metadata().name().to_owned(), fields));
        Id::from_u64(spans.len() as u64)
    }
    fn record(&self, id: &Id, values: &Record<'_>) {
        let mut spans = self.spans.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, fields)) = spans.get_mut(id.into_u64() as usize - 1) {
            values.record(&mut Visitor(fields));
        }
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Visitor(&mut fields));
        fields.insert("level".to_owned(), event.metadata().level().to_string());
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(fields);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn each_step_is_a_tracing_span_with_id_name_direction_and_duration() {
    let collector = Collector::default();
    let mut conn = Connection::open_in_memory().expect("open");
    tracing::subscriber::with_default(collector.clone(), || {
        assert!(common::observed_migrator("traced")
            .migrate(&mut conn)
            .is_err());
        common::observed_migrator("traced")
            .rollback_migration(&mut conn)
            .expect("rollback");
    });
    let spans = collector
        .spans
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let steps: Vec<(String, String, String, bool)> = spans
        .iter()
        .filter(|(name, _)| name == "migration")
        .map(|(_, f)| {
            (
                f["id"].clone(),
                f["name"].clone(),
                f["direction"].clone(),
                f.get("elapsed_ms")
                    .is_some_and(|ms| ms.parse::<f64>().is_ok()),
            )
        })
        .collect();
    let expected: Vec<(String, String, String, bool)> = [
        ("0", "create_a", "up"),
        ("1", "create_b", "up"),
        ("2", "broken", "up"),
        ("1", "create_b", "down"),
    ]
    .iter()
    .map(|(id, name, dir)| {
        (
            (*id).to_owned(),
            (*name).to_owned(),
            (*dir).to_owned(),
            true,
        )
    })
    .collect();
    assert_eq!(steps, expected);
    let events = collector
        .events
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let errors: Vec<&BTreeMap<String, String>> =
        events.iter().filter(|e| e["level"] == "ERROR").collect();
    assert_eq!(errors.len(), 1, "{events:?}");
    assert!(errors[0]["error"].contains("`broken`"), "{errors:?}");
}
