//! The JSON documents of `--format json`: one per command, as
//! `docs/cli-json.md` and `docs/cli-json.schema.json` describe them (keep
//! the three in step: `examples/tests/cli_json.rs` checks the documents
//! against the schema file).

use std::time::Duration;

use super::render::Json;
use super::{ms, Failure, Verified};
use crate::error::{Direction, Error};
use crate::migrator::Migrator;
use crate::report::{DryRun, MigrationInfo, MigrationState, MigrationStatus, StepReport};

/// The fields every document starts with.
fn head(command: &'static str, migrator: &Migrator) -> Vec<(&'static str, Json)> {
    let (set, table, _) = migrator.cli_view();
    vec![
        ("command", Json::str(command)),
        ("set", Json::str(set)),
        ("table", Json::str(table)),
    ]
}

fn direction(direction: Direction) -> Json {
    Json::str(match direction {
        Direction::Up => "up",
        Direction::Down => "down",
    })
}

fn step(step: &StepReport) -> Json {
    Json::Object(vec![
        ("id", Json::Int(step.id.into())),
        ("name", Json::str(step.name.as_str())),
        ("direction", direction(step.direction)),
        ("elapsed_ms", Json::Float(ms(step.elapsed))),
    ])
}

pub(super) fn status(migrator: &Migrator, lines: &[MigrationStatus]) -> Json {
    let count = |wanted: fn(&MigrationState) -> bool| {
        Json::Int(lines.iter().filter(|l| wanted(&l.state)).count() as i64)
    };
    let migrations = lines
        .iter()
        .map(|line| {
            let (state, applied_name, applied_checksum, interrupted) = match &line.state {
                MigrationState::Applied => ("applied", None, None, Json::Null),
                MigrationState::Pending => ("pending", None, None, Json::Null),
                MigrationState::Modified {
                    applied_name,
                    applied_checksum,
                } => (
                    "modified",
                    Some(applied_name.as_str()),
                    Some(applied_checksum.as_str()),
                    Json::Null,
                ),
                MigrationState::Unknown => ("unknown", None, None, Json::Null),
                MigrationState::Interrupted { direction: d } => {
                    ("interrupted", None, None, direction(*d))
                }
            };
            Json::Object(vec![
                ("id", Json::Int(line.id.into())),
                ("name", Json::str(line.name.as_str())),
                ("state", Json::str(state)),
                ("applied_at", Json::opt_str(line.applied_at.as_deref())),
                ("has_rollback", Json::Bool(line.has_rollback)),
                ("applied_name", Json::opt_str(applied_name)),
                ("applied_checksum", Json::opt_str(applied_checksum)),
                ("interrupted", interrupted),
            ])
        })
        .collect();
    let mut doc = head("status", migrator);
    doc.extend([
        (
            "applied",
            count(|s| matches!(s, MigrationState::Applied | MigrationState::Modified { .. })),
        ),
        ("pending", count(|s| matches!(s, MigrationState::Pending))),
        ("migrations", Json::Array(migrations)),
    ]);
    Json::Object(doc)
}

pub(super) fn plan(migrator: &Migrator, pending: &[MigrationInfo]) -> Json {
    let pending = pending
        .iter()
        .map(|m| {
            Json::Object(vec![
                ("id", Json::Int(m.id.into())),
                ("name", Json::str(m.name.as_str())),
                ("checksum", Json::str(m.checksum.as_str())),
                ("location", Json::str(m.location.to_string())),
                ("has_rollback", Json::Bool(m.has_rollback)),
            ])
        })
        .collect();
    let mut doc = head("plan", migrator);
    doc.push(("pending", Json::Array(pending)));
    Json::Object(doc)
}

pub(super) fn verify(migrator: &Migrator, found: &Verified) -> Json {
    let strings =
        |list: &[String]| Json::Array(list.iter().map(|s| Json::str(s.as_str())).collect());
    let mut doc = head("verify", migrator);
    doc.extend([
        ("ok", Json::Bool(found.problems.is_empty())),
        ("schema_compared", Json::Bool(found.schema_compared)),
        ("problems", strings(&found.problems)),
        ("notes", strings(&found.notes)),
    ]);
    Json::Object(doc)
}

/// `up` and `down`: the steps performed, and `extra` fields.
pub(super) fn run(
    command: &'static str,
    migrator: &Migrator,
    steps: &[StepReport],
    elapsed: Duration,
    extra: Vec<(&'static str, Json)>,
) -> Json {
    let mut doc = head(command, migrator);
    doc.extend([
        ("steps", Json::Array(steps.iter().map(step).collect())),
        ("elapsed_ms", Json::Float(ms(elapsed))),
    ]);
    doc.extend(extra);
    Json::Object(doc)
}

pub(super) fn dry_run(migrator: &Migrator, dry: &DryRun) -> Json {
    let mut doc = head("dry-run", migrator);
    doc.extend([
        ("steps", Json::Array(dry.steps.iter().map(step).collect())),
        (
            "failure",
            dry.failure.as_ref().map_or(Json::Null, |error| {
                Json::Object(vec![
                    ("error", Json::str(format!("{error:#}"))),
                    ("kind", Json::str(kind(error))),
                    ("hint", Json::opt_str(hint(error))),
                ])
            }),
        ),
        ("stopped_before", Json::opt_int(dry.stopped_before)),
    ]);
    Json::Object(doc)
}

/// The document of a command that failed: what went wrong, its kind, what
/// to do, and for `up`/`down` the steps done before the failure (they stay
/// done).
pub(super) fn error(command: &'static str, failure: &Failure, steps: Vec<StepReport>) -> Json {
    let (kind, hint) = match failure {
        Failure::Migrate(error) => (kind(error), hint(error)),
        Failure::Output(_) => ("output", None),
        Failure::Backup(..) => ("backup", None),
        Failure::NoRollback { hint, .. } => ("no_rollback", Some(hint.clone())),
        Failure::Refused { hint, .. } => ("refused", Some(hint.clone())),
    };
    let mut doc = vec![
        ("command", Json::str(command)),
        ("error", Json::str(format!("{failure:#}"))),
        ("kind", Json::str(kind)),
        ("hint", Json::opt_str(hint)),
    ];
    if matches!(command, "up" | "down") {
        doc.push(("steps", Json::Array(steps.iter().map(step).collect())));
    }
    Json::Object(doc)
}

/// A stable, snake_case name of the error's variant, for scripts.
fn kind(error: &Error) -> &'static str {
    match error {
        Error::InvalidRegistry { .. } => "invalid_registry",
        Error::Failed { .. } => "failed",
        Error::Panicked { .. } => "panicked",
        Error::NoRollback { .. } => "no_rollback",
        Error::TransactionControl { .. } => "transaction_control",
        Error::ForeignKeyViolations { .. } => "foreign_key_violations",
        Error::DatabaseAhead { .. } => "database_ahead",
        Error::Modified { .. } => "modified",
        Error::UnmanagedDatabase { .. } => "unmanaged_database",
        Error::CorruptHistory { .. } => "corrupt_history",
        Error::IncompatibleTrackingTable { .. } => "incompatible_tracking_table",
        Error::Locked { .. } => "locked",
        Error::InvalidTarget { .. } => "invalid_target",
        Error::AlreadyHasHistory { .. } => "already_has_history",
        Error::CannotAdopt { .. } => "cannot_adopt",
        Error::Forbidden { .. } => "forbidden",
        Error::Recording { .. } => "recording",
        Error::CommitFailed { .. } => "commit_failed",
        Error::TableNameClash { .. } => "table_name_clash",
        Error::NoJournal => "no_journal",
        Error::SchemaDrift { .. } => "schema_drift",
        Error::Interrupted { .. } => "interrupted",
        Error::NotCurrent { .. } => "not_current",
        Error::WrongBackend { .. } => "wrong_backend",
        Error::InTransaction => "in_transaction",
        Error::ReadOnly => "read_only",
        Error::Sqlite(_) => "sqlite",
        #[cfg(feature = "libsql")]
        Error::Libsql(_) => "libsql",
    }
}

/// What to do, in one line, for the errors where the CLI has a command
/// for it (the message itself says more).
fn hint(error: &Error) -> Option<String> {
    Some(match error {
        Error::InvalidRegistry { .. } => "fix the ids named in the message; after a merge of two \
                                          branches that each added a migration, run `renumber`"
            .to_owned(),
        Error::NoRollback { id, .. } => {
            format!("add a `#[rollback({id})]` function or a `.down.sql` file for migration {id}")
        }
        Error::UnmanagedDatabase { .. } => {
            "record what the database already has with `baseline THROUGH`".to_owned()
        }
        Error::Interrupted { .. } => {
            "check the step's work, then run `resolve --completed` or `resolve --not-run`"
                .to_owned()
        }
        Error::Locked { .. } => {
            "another connection holds the database: wait for it, or raise the lock timeout"
                .to_owned()
        }
        Error::Modified { .. } => {
            "restore the applied migration as it was; `verify` lists every difference".to_owned()
        }
        Error::SchemaDrift { .. } => "`verify --schema` lists what changed".to_owned(),
        _ => return None,
    })
}
