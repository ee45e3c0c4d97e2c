//! The schedule of a run: every repetition runs every contender in phases
//! (apply, up-to-date checks, first calls in child processes, rollback),
//! contenders taking turns in an order rotated by the repetition and the
//! round, each step verified. Also migrate-core alone, for profilers.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::args::Options;
use crate::child::first_call_in_child;
use crate::contenders::{Contender, Prepared, Workload, Workset};
use crate::db::{open_for_check, open_for_write, open_fresh, verify};
use crate::stats::{timed, Samples};
use crate::{BoxError, Result};

/// One contender's database during a repetition.
struct Subject<'w> {
    contender: Contender,
    prepared: Prepared<'w>,
    path: PathBuf,
    _dir: tempfile::TempDir,
}

/// Phase 1: a fresh database, apply (timed), verify.
fn apply_phase<'w>(
    contender: Contender,
    work: &'w Workset,
    samples: &mut Samples,
) -> Result<Subject<'w>> {
    let n = work.len();
    let dir = tempfile::Builder::new().prefix("migrate-bench").tempdir()?;
    let path = dir.path().join("bench.db");
    let prepared = Prepared::new(contender, work)?;
    let mut conn = open_fresh(&path)?;
    let time = timed(|| prepared.apply(&mut conn, work))?;
    drop(conn);
    samples.push(Workload::Apply, n, contender, time);
    verify(&path, contender, n)?;
    Ok(Subject {
        contender,
        prepared,
        path,
        _dir: dir,
    })
}

/// Phase 2: reopen (not timed) and time the check that finds nothing to do.
fn check_phase(subject: &Subject<'_>, work: &Workset, samples: &mut Samples) -> Result<()> {
    let mut conn = open_for_check(&subject.path)?;
    let time = timed(|| subject.prepared.check(&mut conn, work))?;
    drop(conn);
    samples.push(Workload::UpToDate, work.len(), subject.contender, time);
    verify(&subject.path, subject.contender, work.len())
}

/// Phase 3: the first call of a child process.
fn first_call_phase(
    subject: &Subject<'_>,
    work: &Workset,
    options: &Options,
    samples: &mut Samples,
) -> Result<()> {
    let time = first_call_in_child(&options.exe, subject.contender, &subject.path, work.len())?;
    samples.push(Workload::FirstCall, work.len(), subject.contender, time);
    verify(&subject.path, subject.contender, work.len())
}

/// Phase 4: roll everything back (timed), verify nothing is left.
fn rollback_phase(subject: &Subject<'_>, work: &Workset, samples: &mut Samples) -> Result<()> {
    let mut conn = open_for_write(&subject.path)?;
    let time = timed(|| subject.prepared.rollback_all(&mut conn, work))?;
    drop(conn);
    samples.push(Workload::RollbackAll, work.len(), subject.contender, time);
    verify(&subject.path, subject.contender, 0)
}

/// Runs every repetition of every size and returns the samples. Any failed
/// verification is an error.
pub fn run(options: &Options, mut progress: impl FnMut(&str)) -> Result<Samples> {
    let mut samples = Samples::default();
    for &(n, reps) in &options.sizes {
        let work = Workset::new(n);
        let started = Instant::now();
        for rep in 0..reps {
            let context = |contender: Contender, phase: &'static str| {
                move |e: BoxError| -> BoxError {
                    format!("N={n} rep {rep} {} {phase}: {e}", contender.key()).into()
                }
            };
            let mut order = Contender::ALL;
            order.rotate_left(rep % Contender::ALL.len());
            let mut subjects = Vec::new();
            for contender in order {
                if !options.only.is_empty() && !options.only.contains(&contender) {
                    continue;
                }
                if contender.commits_per_migration()
                    && (options.per_commit_reps)(n).is_some_and(|max| rep >= max)
                {
                    continue;
                }
                subjects.push(
                    apply_phase(contender, &work, &mut samples)
                        .map_err(context(contender, "apply"))?,
                );
            }
            for round in 0..options.check_rounds {
                for subject in rotated(&subjects, round) {
                    if subject.contender.runs(Workload::UpToDate) {
                        check_phase(subject, &work, &mut samples)
                            .map_err(context(subject.contender, "up-to-date"))?;
                    }
                }
            }
            for round in 0..options.child_rounds {
                for subject in rotated(&subjects, round) {
                    if subject.contender.runs(Workload::FirstCall) {
                        first_call_phase(subject, &work, options, &mut samples)
                            .map_err(context(subject.contender, "first call"))?;
                    }
                }
            }
            for subject in &subjects {
                if subject.contender.runs(Workload::RollbackAll) {
                    rollback_phase(subject, &work, &mut samples)
                        .map_err(context(subject.contender, "rollback"))?;
                }
            }
        }
        progress(&format!(
            "N={n}: {reps} repetitions in {:.1} s",
            started.elapsed().as_secs_f64()
        ));
    }
    Ok(samples)
}

/// `items` starting at `by` (modulo their count), wrapping around.
fn rotated<T>(items: &[T], by: usize) -> impl Iterator<Item = &T> {
    let split = if items.is_empty() {
        0
    } else {
        by % items.len()
    };
    items[split..].iter().chain(&items[..split])
}

/// Runs migrate-core alone, for profilers: `apply` N migrations `iterations`
/// times on fresh databases, or the `up-to-date` check (one Migrator) or the
/// `first-call` (a fresh Migrator each time) `iterations` times on one
/// migrated database, reopened each time. Returns the timed total.
pub fn profile(workload: &str, n: usize, iterations: usize) -> Result<Duration> {
    let work = Workset::new(n);
    let dir = tempfile::Builder::new().prefix("migrate-prof").tempdir()?;
    let mut total = Duration::ZERO;
    match workload {
        "apply" => {
            for i in 0..iterations {
                let path = dir.path().join(format!("apply-{i}.db"));
                let prepared = Prepared::new(Contender::MigrateCore, &work)?;
                let mut conn = open_fresh(&path)?;
                total += timed(|| prepared.apply(&mut conn, &work))?;
            }
        }
        "up-to-date" => {
            let path = dir.path().join("check.db");
            let prepared = Prepared::new(Contender::MigrateCore, &work)?;
            prepared.apply(&mut open_fresh(&path)?, &work)?;
            for _ in 0..iterations {
                let mut conn = open_for_check(&path)?;
                total += timed(|| prepared.check(&mut conn, &work))?;
            }
        }
        "first-call" => {
            // What the child process does, minus starting the process: a
            // fresh Migrator (not timed) and its first call.
            let path = dir.path().join("check.db");
            Prepared::new(Contender::MigrateCore, &work)?.apply(&mut open_fresh(&path)?, &work)?;
            for _ in 0..iterations {
                let prepared = Prepared::new(Contender::MigrateCore, &work)?;
                let mut conn = open_for_check(&path)?;
                total += timed(|| prepared.check(&mut conn, &work))?;
            }
        }
        other => return Err(format!("unknown profile workload {other}").into()),
    }
    Ok(total)
}
