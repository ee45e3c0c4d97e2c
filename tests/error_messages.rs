//! Error messages are user interface: the full `Display` (and `{:#}`) text of
//! every variant is pinned in `tests/snapshots/error_messages.txt`, so that a
//! change to any of them shows up in review as a diff of that file.
//!
//! After an intended change, rewrite the file with
//! `UPDATE_SNAPSHOTS=1 cargo test --test error_messages` and review the diff.

use std::time::Duration;

use migrate_core::rusqlite::{self, ffi};
use migrate_core::{
    Direction, Error, ForeignKeyViolation, Location, Modification, ObjectKind, RegistryProblem,
    SchemaChange,
};

const SNAPSHOT: &str = "tests/snapshots/error_messages.txt";

fn here(line: u32) -> Location {
    Location {
        file: "src/db.rs",
        line,
        runtime: false,
    }
}

fn sqlite(code: i32, message: &str) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(ffi::Error::new(code), Some(message.to_owned()))
}

#[derive(Debug)]
struct AppError;

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the back-fill found a slug that is not unique")
    }
}

impl std::error::Error for AppError {}

/// One example of every variant (and of every registry problem).
fn examples() -> Vec<(&'static str, Error)> {
    let up = Direction::Up;
    let down = Direction::Down;
    vec![
        (
            "InvalidRegistry",
            Error::InvalidRegistry {
                problems: vec![
                    RegistryProblem::Gap {
                        set: String::new(),
                        from: 2,
                        to: 2,
                        next: Some((3, here(40))),
                    },
                    RegistryProblem::Gap {
                        set: "cache".into(),
                        from: 1,
                        to: 4,
                        next: None,
                    },
                    RegistryProblem::DuplicateMigration {
                        set: String::new(),
                        id: 1,
                        locations: vec![here(10), here(20)],
                    },
                    RegistryProblem::RollbackWithoutMigration {
                        set: String::new(),
                        id: 9,
                        location: Location {
                            file: "src/main.rs",
                            line: 7,
                            runtime: true,
                        },
                    },
                    RegistryProblem::DuplicateRollback {
                        set: String::new(),
                        id: 0,
                        locations: vec![here(30), here(31)],
                    },
                    RegistryProblem::EmptySet { set: "audit".into() },
                ],
            },
        ),
        (
            "Failed",
            Error::Failed {
                id: 3,
                name: "backfill_slugs".into(),
                direction: up,
                source: Box::new(AppError),
            },
        ),
        (
            "Failed (rollback, SQLite source)",
            Error::Failed {
                id: 3,
                name: "backfill_slugs".into(),
                direction: down,
                source: Box::new(sqlite(1, "no such table: posts")),
            },
        ),
        (
            "Panicked",
            Error::Panicked {
                id: 4,
                name: "split_names".into(),
                direction: up,
                message: "index out of bounds: the len is 1 but the index is 1".into(),
            },
        ),
        (
            "NoRollback",
            Error::NoRollback {
                id: 5,
                name: "drop_legacy".into(),
            },
        ),
        (
            "TransactionControl",
            Error::TransactionControl {
                id: 6,
                name: "bulk_load".into(),
                direction: up,
            },
        ),
        (
            "ForeignKeyViolations",
            Error::ForeignKeyViolations {
                id: 7,
                name: "rebuild_posts".into(),
                direction: up,
                violations: vec![
                    ForeignKeyViolation {
                        table: "comments".into(),
                        rowid: Some(12),
                        parent: "posts".into(),
                    },
                    ForeignKeyViolation {
                        table: "tags".into(),
                        rowid: None,
                        parent: "posts".into(),
                    },
                ],
            },
        ),
        (
            "DatabaseAhead",
            Error::DatabaseAhead {
                set: String::new(),
                known: 3,
                unknown: vec![(3, "add_index".into()), (4, "add_view".into())],
            },
        ),
        (
            "Modified",
            Error::Modified {
                set: "cache".into(),
                modifications: vec![
                    Modification {
                        id: 0,
                        applied_name: "init".into(),
                        current_name: "init".into(),
                        applied_checksum: "0fbbc3abe48864c6a7dd1e0b33f56523".into(),
                        current_checksum: "5b1e0a0b0c0d0e0f1011121314151617".into(),
                        location: here(12),
                    },
                    Modification {
                        id: 1,
                        applied_name: "add_users".into(),
                        current_name: "create_users".into(),
                        applied_checksum: "aa".into(),
                        current_checksum: "aa".into(),
                        location: here(20),
                    },
                    Modification {
                        id: 2,
                        applied_name: "x".into(),
                        current_name: "y".into(),
                        applied_checksum: "aa".into(),
                        current_checksum: "bb".into(),
                        location: here(30),
                    },
                ],
            },
        ),
        (
            "UnmanagedDatabase (tables)",
            Error::UnmanagedDatabase {
                set: String::new(),
                table: "migrations".into(),
                tables: vec!["posts".into(), "users".into()],
                user_version: 0,
            },
        ),
        (
            "UnmanagedDatabase (another tool's table)",
            Error::UnmanagedDatabase {
                set: String::new(),
                table: "migrations".into(),
                tables: vec!["_sqlx_migrations".into(), "users".into()],
                user_version: 0,
            },
        ),
        (
            "UnmanagedDatabase (user_version)",
            Error::UnmanagedDatabase {
                set: String::new(),
                table: "migrations".into(),
                tables: vec![],
                user_version: 4,
            },
        ),
        (
            "CorruptHistory",
            Error::CorruptHistory {
                table: "migrations".into(),
                problems: vec!["row 2: `name` is NULL".into()],
            },
        ),
        (
            "IncompatibleTrackingTable",
            Error::IncompatibleTrackingTable {
                table: "migrations".into(),
                problems: vec![
                    "it has no column `chain`".into(),
                    "its columns are: id INTEGER, name TEXT".into(),
                ],
            },
        ),
        (
            "Locked",
            Error::Locked {
                waited: Duration::from_millis(1234),
            },
        ),
        (
            "InvalidTarget",
            Error::InvalidTarget {
                set: String::new(),
                target: 9,
                known: 3,
            },
        ),
        (
            "InvalidTarget (empty set)",
            Error::InvalidTarget {
                set: "cache".into(),
                target: 0,
                known: 0,
            },
        ),
        (
            "AlreadyHasHistory",
            Error::AlreadyHasHistory {
                table: "migrations".into(),
                applied: 2,
            },
        ),
        (
            "CannotAdopt",
            Error::CannotAdopt {
                from: "sqlx table _sqlx_migrations".into(),
                problems: vec![
                    "version 20240103120000 `add tags` is recorded as failed (success = false): \
                     sqlx calls this database dirty and refuses to run on it too, and its changes \
                     may be half applied. Repair it as sqlx asks (undo what it did by hand and \
                     delete its row, or finish it and mark the row successful), then adopt"
                        .into(),
                ],
            },
        ),
        (
            "Forbidden",
            Error::Forbidden {
                id: 8,
                name: "reset_history".into(),
                direction: up,
                reason: "it writes the tracking table \"migrations\", which only migrate-core may change".into(),
            },
        ),
        (
            "Recording",
            Error::Recording {
                id: 9,
                name: "add_tags".into(),
                direction: up,
                table: "migrations".into(),
                source: sqlite(19, "NOT NULL constraint failed: migrations.author"),
            },
        ),
        (
            "CommitFailed",
            Error::CommitFailed {
                ids: vec![3, 4, 5],
                direction: up,
                source: sqlite(13, "database or disk is full"),
            },
        ),
        (
            "TableNameClash",
            Error::TableNameClash {
                table: "History".into(),
                existing: "history".into(),
            },
        ),
        ("NoJournal", Error::NoJournal),
        (
            "SchemaDrift",
            Error::SchemaDrift {
                changes: vec![
                    SchemaChange::Added {
                        kind: ObjectKind::Index,
                        name: "posts_by_day".into(),
                        sql: "CREATE INDEX posts_by_day ON posts (day)".into(),
                    },
                    SchemaChange::Removed {
                        kind: ObjectKind::Trigger,
                        name: "posts_touch".into(),
                        sql: "CREATE TRIGGER posts_touch AFTER UPDATE ON posts BEGIN SELECT 1; END"
                            .into(),
                    },
                    SchemaChange::Changed {
                        kind: ObjectKind::Table,
                        name: "posts".into(),
                        expected: "CREATE TABLE posts (\n  id INTEGER PRIMARY KEY\n)".into(),
                        actual: "CREATE TABLE posts (\n  id INTEGER PRIMARY KEY,\n  day TEXT\n)"
                            .into(),
                    },
                ],
            },
        ),
        (
            "Interrupted",
            Error::Interrupted {
                id: 7,
                name: "backfill_search_index".into(),
                direction: up,
                since: "2026-12-02T10:15:00Z".into(),
            },
        ),
        (
            "NotCurrent",
            Error::NotCurrent {
                set: String::new(),
                applied: Some(3),
                known: 5,
                waited: Duration::from_secs(30),
                in_progress: None,
            },
        ),
        (
            "NotCurrent (a step outside a transaction in progress)",
            Error::NotCurrent {
                set: "search".into(),
                applied: Some(7),
                known: 8,
                waited: Duration::from_millis(120_500),
                in_progress: Some((7, "backfill_search_index".into())),
            },
        ),
        (
            "NotCurrent (a lock held all along)",
            Error::NotCurrent {
                set: String::new(),
                applied: None,
                known: 5,
                waited: Duration::from_secs(10),
                in_progress: None,
            },
        ),
        ("InTransaction", Error::InTransaction),
        ("ReadOnly", Error::ReadOnly),
        (
            "Sqlite",
            Error::Sqlite(sqlite(14, "unable to open database file")),
        ),
    ]
}

fn render() -> String {
    let mut out = String::new();
    for (label, error) in examples() {
        out.push_str(&format!("## {label}\n{error}\n"));
        let chain = format!("{error:#}");
        if chain != error.to_string() {
            out.push_str(&format!("### with {{:#}}\n{chain}\n"));
        }
        out.push('\n');
    }
    out
}

/// The clause the inventory backend adds to the empty-set problem. The
/// snapshot pins the default backend's text; a run on inventory (CI's
/// `cargo test --features inventory`) checks the clause is there and then
/// compares the rest.
const INVENTORY_CLAUSE: &str =
    " (with the inventory backend, a platform without life-before-main support registers nothing)";

#[test]
fn every_message_matches_the_snapshot() {
    let mut rendered = render();
    if cfg!(feature = "inventory") {
        assert!(
            rendered.contains(INVENTORY_CLAUSE),
            "the inventory backend's clause is missing:\n{rendered}"
        );
        rendered = rendered.replace(INVENTORY_CLAUSE, "");
    }
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(SNAPSHOT, &rendered).expect("write the snapshot");
        return;
    }
    let pinned = std::fs::read_to_string(SNAPSHOT)
        .expect("read the snapshot (create it with UPDATE_SNAPSHOTS=1)")
        .replace("\r\n", "\n");
    if rendered != pinned {
        let line = rendered
            .lines()
            .zip(pinned.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(rendered.lines().count().min(pinned.lines().count()));
        panic!(
            "error messages changed (first difference at line {}):\n  now:    {:?}\n  pinned: {:?}\n\
             If intended: UPDATE_SNAPSHOTS=1 cargo test --test error_messages, and review the diff",
            line + 1,
            rendered.lines().nth(line),
            pinned.lines().nth(line),
        );
    }
}

#[test]
fn no_message_repeats_its_source() {
    for (label, error) in examples() {
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            assert!(
                !error.to_string().contains(&cause.to_string()),
                "{label}: the message repeats its source's text `{cause}`"
            );
            source = cause.source();
        }
    }
}
