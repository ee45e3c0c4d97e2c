//! The first-call workload's two sides: the benchmark spawns this binary as a
//! child process, which builds its contender and opens the database (not
//! timed), times its first call with `Instant` and prints nanoseconds.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::contenders::{Contender, Prepared, Workset};
use crate::db::open_for_check;
use crate::stats::timed;
use crate::Result;

pub(crate) const CHILD_FLAG: &str = "--child-first-call";

pub(crate) fn first_call_in_child(
    exe: &Path,
    contender: Contender,
    db: &Path,
    n: usize,
) -> Result<Duration> {
    let output = Command::new(exe)
        .arg(CHILD_FLAG)
        .arg(contender.key())
        .arg(db)
        .arg(n.to_string())
        .output()?;
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

/// The child's side: builds the contender (not timed), opens the database
/// (not timed), times the first call, returns nanoseconds.
pub(crate) fn child_first_call(contender: Contender, db: &Path, n: usize) -> Result<u128> {
    let work = Workset::new(n);
    let prepared = Prepared::new(contender, &work)?;
    let mut conn = open_for_check(db)?;
    let time = timed(|| prepared.check(&mut conn, &work))?;
    Ok(time.as_nanos())
}
