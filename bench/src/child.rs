//! The first-call workload's two sides: the benchmark spawns a child process
//! (`bench` itself for the link-time contender, `bench-plain` for the
//! others), which builds its contender and opens the database (not timed),
//! times its first call with `Instant` and prints nanoseconds. And the check
//! that `bench-plain` is the same build as `bench`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use migrate_core::Migrator;

use crate::contenders::{Contender, Prepared, Workset};
use crate::db::open_for_check;
use crate::migrations::{linked_set, LINKED_SIZES};
use crate::stats::timed;
use crate::Result;

pub(crate) const CHILD_FLAG: &str = "--child-first-call";
/// The child's last argument when the schema is to be loaded before the call.
pub(crate) const SCHEMA_LOADED_FLAG: &str = "--schema-loaded";
pub(crate) const IDENTIFY_FLAG: &str = "--identify";

/// A hash of every source the bench binaries are built from (`build.rs`).
const BUILD_ID: &str = env!("BENCH_BUILD_ID");

pub(crate) fn first_call_in_child(
    exe: &Path,
    contender: Contender,
    db: &Path,
    n: usize,
    schema_loaded: bool,
) -> Result<Duration> {
    let mut command = Command::new(exe);
    command
        .arg(CHILD_FLAG)
        .arg(contender.key())
        .arg(db)
        .arg(n.to_string());
    if schema_loaded {
        command.arg(SCHEMA_LOADED_FLAG);
    }
    let output = command.output()?;
    ensure!(
        output.status.success(),
        "child {} failed ({}): {}",
        contender.key(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout)?;
    let nanos: u64 = stdout
        .trim()
        .parse()
        .map_err(|e| format!("child {} printed {stdout:?}: {e}", contender.key()))?;
    Ok(Duration::from_nanos(nanos))
}

/// The child's side, returning nanoseconds. Without `schema_loaded`: builds
/// the contender and opens the database (not timed), times the first call,
/// which loads the schema. With it: opens the database and loads its schema
/// (not timed), then times building the contender and its first call, what
/// an application's first migration in a process costs beyond opening its
/// database (the migration list rusqlite_migration and refinery are given,
/// the `Migrator` with its `.add`s; the link-time contender has nothing to
/// build but its `Migrator`, inside the call in both modes).
pub(crate) fn child_first_call(
    contender: Contender,
    db: &Path,
    n: usize,
    schema_loaded: bool,
) -> Result<u128> {
    let work = Workset::new(n);
    let time = if schema_loaded {
        let mut conn = open_for_check(db, true)?;
        timed(|| Prepared::new(contender, &work)?.check(&mut conn, &work))?
    } else {
        let prepared = Prepared::new(contender, &work)?;
        let mut conn = open_for_check(db, false)?;
        timed(|| prepared.check(&mut conn, &work))?
    };
    Ok(time.as_nanos())
}

/// What this binary is: its build id and the generated link-time sets
/// linked into it (`--identify`). Checking a set builds a plan, so this runs
/// in a process of its own, never in a measured child.
pub(crate) fn identity() -> String {
    let linked: Vec<String> = LINKED_SIZES
        .into_iter()
        .map(linked_set)
        .filter(|set| Migrator::new().set(set.as_str()).validate().is_ok())
        .collect();
    let linked = if linked.is_empty() {
        "none".to_owned()
    } else {
        linked.join(",")
    };
    format!("build {BUILD_ID}, linked sets: {linked}")
}

/// `bench-plain` must exist, be built from the same sources as this binary
/// (`cargo run -p bench` rebuilds only `bench`), and link none of the
/// generated sets.
pub(crate) fn check_plain(plain: &Path) -> Result<()> {
    let rebuild = "build both binaries: cargo build --release -p bench";
    let output = Command::new(plain)
        .arg(IDENTIFY_FLAG)
        .output()
        .map_err(|e| format!("cannot run {}: {e}; {rebuild}", plain.display()))?;
    let reported = String::from_utf8_lossy(&output.stdout);
    let expected = format!("build {BUILD_ID}, linked sets: none");
    ensure!(
        output.status.success() && reported.trim() == expected,
        "{} reports {:?}, expected {expected:?} (stale?); {rebuild}",
        plain.display(),
        reported.trim()
    );
    Ok(())
}
