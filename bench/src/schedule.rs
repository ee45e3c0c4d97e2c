//! The schedule of a run: every repetition runs every contender in phases
//! (apply, up-to-date checks, first calls in child processes, rollback),
//! contenders taking turns in an order rotated by the repetition and the
//! round, each step verified. Also migrate-core alone, for profilers.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::args::Options;
use crate::child::{check_plain, first_call_in_child};
use crate::contenders::{Contender, Prepared, Workload, Workset};
use crate::db::{open_for_check, open_for_write, open_fresh, verify};
use crate::migrations::{linked_set, LINKED_SIZES};
use crate::stage::stage_children;
use crate::stats::{timed, Samples};
use crate::{BoxError, Result};
use migrate_core::rusqlite::Connection;

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
    verify(&path, contender, n, n)?;
    Ok(Subject {
        contender,
        prepared,
        path,
        _dir: dir,
    })
}

/// Phase 2: time the check that finds nothing to do, on the subject's warm
/// connection if given, else on a reopened one (not timed).
fn check_phase(
    subject: &Subject<'_>,
    workload: Workload,
    warm: Option<&mut Connection>,
    work: &Workset,
    samples: &mut Samples,
) -> Result<()> {
    let mut reopened;
    let conn = match warm {
        Some(conn) => conn,
        None => {
            reopened = open_for_check(&subject.path, false)?;
            &mut reopened
        }
    };
    let time = timed(|| subject.prepared.check(conn, work))?;
    samples.push(workload, work.len(), subject.contender, time);
    verify(&subject.path, subject.contender, work.len(), work.len())
}

/// Phase 3: the first call of a child process (the schema loaded first or
/// not, as `workload` says).
fn first_call_phase(
    subject: &Subject<'_>,
    workload: Workload,
    work: &Workset,
    options: &Options,
    samples: &mut Samples,
) -> Result<()> {
    let exe = options.child_exe(subject.contender);
    let time = first_call_in_child(
        exe,
        subject.contender,
        &subject.path,
        work.len(),
        workload.schema_loaded(),
    )?;
    samples.push(workload, work.len(), subject.contender, time);
    verify(&subject.path, subject.contender, work.len(), work.len())
}

/// Phase 4: roll everything back (timed), verify nothing is left.
fn rollback_phase(subject: &Subject<'_>, work: &Workset, samples: &mut Samples) -> Result<()> {
    let mut conn = open_for_write(&subject.path)?;
    let time = timed(|| subject.prepared.rollback_all(&mut conn, work))?;
    drop(conn);
    samples.push(Workload::RollbackAll, work.len(), subject.contender, time);
    verify(&subject.path, subject.contender, work.len(), 0)
}

/// Runs every repetition of every size and returns the samples. Any failed
/// verification is an error.
pub fn run(options: &Options, mut progress: impl FnMut(&str)) -> Result<Samples> {
    preflight(options)?;
    // The children run from copies held in the page cache alike (see
    // `stage`); the copies go when `staged` does, after the run.
    let staged = stage_children(options)?;
    let options = &Options {
        exe: staged.exe.clone(),
        plain_exe: staged.plain_exe.clone(),
        ..options.clone()
    };
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
                if !options.selects(contender) || !contender.available(n) {
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
            // One warm connection per subject, open across the rounds (none
            // for the contenders that do not check).
            let mut warm = subjects
                .iter()
                .map(|subject| {
                    let checks = subject.contender.runs(Workload::UpToDateWarm);
                    checks
                        .then(|| open_for_check(&subject.path, true))
                        .transpose()
                })
                .collect::<Result<Vec<_>>>()?;
            for round in 0..options.check_rounds {
                for workload in [Workload::UpToDate, Workload::UpToDateWarm] {
                    for i in rotated(subjects.len(), round) {
                        let subject = &subjects[i];
                        if subject.contender.runs(workload) {
                            let conn = match workload {
                                Workload::UpToDateWarm => warm[i].as_mut(),
                                _ => None,
                            };
                            check_phase(subject, workload, conn, &work, &mut samples)
                                .map_err(context(subject.contender, workload.label()))?;
                        }
                    }
                }
            }
            drop(warm);
            for round in 0..options.child_rounds {
                for workload in [Workload::FirstCall, Workload::FirstCallLoaded] {
                    for i in rotated(subjects.len(), round) {
                        let subject = &subjects[i];
                        if subject.contender.runs(workload) {
                            first_call_phase(subject, workload, &work, options, &mut samples)
                                .map_err(context(subject.contender, workload.label()))?;
                        }
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
    let missing = missing(&samples, options);
    ensure!(
        missing.is_empty(),
        "no samples for {}",
        missing
            .iter()
            .map(|(workload, n, contender)| format!("{workload:?} N={n} {}", contender.key()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(samples)
}

/// Before anything is timed. This process's link-time registry is
/// initialised here: the first plan a process builds checks every linked
/// migration (11,200 in `bench`), which belongs to the first-call workload
/// (timed in child processes), not to whichever in-process call comes first.
/// The generated sets the run needs must be linked into this process, and
/// `bench-plain` must be the same build (`cargo run` does not rebuild it).
fn preflight(options: &Options) -> Result<()> {
    let _ = migrate_core::Migrator::new().validate();
    if options.selects(Contender::MigrateCoreLinked) {
        for &(n, _) in &options.sizes {
            if Contender::MigrateCoreLinked.available(n) {
                migrate_core::Migrator::new()
                    .set(linked_set(n))
                    .validate()
                    .map_err(|e| {
                        format!(
                            "the generated set {} is not linked (debug builds have only {}: \
                             run the benchmark with --release): {e}",
                            linked_set(n),
                            linked_set(LINKED_SIZES[0])
                        )
                    })?;
            }
        }
    }
    check_plain(&options.plain_exe)
}

/// The series a run should have measured and did not: every selected,
/// available contender in every workload it takes part in, at every N (the
/// contenders committing per migration not at an N they skip).
fn missing(samples: &Samples, options: &Options) -> Vec<(Workload, usize, Contender)> {
    let mut missing = Vec::new();
    for &(n, reps) in &options.sizes {
        for contender in Contender::ALL {
            if !options.selects(contender) || !contender.available(n) || reps == 0 {
                continue;
            }
            if contender.commits_per_migration() && (options.per_commit_reps)(n) == Some(0) {
                continue;
            }
            for workload in Workload::ALL {
                if contender.runs(workload) && samples.median(workload, n, contender).is_none() {
                    missing.push((workload, n, contender));
                }
            }
        }
    }
    missing
}

/// The indices `0..len` starting at `by` (modulo `len`), wrapping around.
fn rotated(len: usize, by: usize) -> impl Iterator<Item = usize> {
    (0..len).map(move |k| (k + by) % len)
}

/// Runs one contender alone (a migrate-core one, typically), for profilers:
/// `apply` N migrations `iterations` times on fresh databases, or the
/// `up-to-date` check (with the contender's Migrator: reused, or fresh per
/// call) or the `first-call` (a contender built afresh each time)
/// `iterations` times on one migrated database, reopened each time; or
/// `up-to-date-warm` on one connection, `first-call-loaded` with the schema
/// loaded before each timed call and building the contender timed with it.
/// Returns
/// the timed total. In one process the link-time registry is checked once,
/// at the first call (see `preflight`), not at every `first-call`.
pub fn profile(
    contender: Contender,
    workload: &str,
    n: usize,
    iterations: usize,
) -> Result<Duration> {
    let work = Workset::new(n);
    let dir = tempfile::Builder::new().prefix("migrate-prof").tempdir()?;
    let mut total = Duration::ZERO;
    match workload {
        "apply" => {
            for i in 0..iterations {
                let path = dir.path().join(format!("apply-{i}.db"));
                let prepared = Prepared::new(contender, &work)?;
                let mut conn = open_fresh(&path)?;
                total += timed(|| prepared.apply(&mut conn, &work))?;
            }
        }
        "up-to-date" | "up-to-date-warm" => {
            let path = dir.path().join("check.db");
            let prepared = Prepared::new(contender, &work)?;
            prepared.apply(&mut open_fresh(&path)?, &work)?;
            let mut warm = open_for_check(&path, true)?;
            for _ in 0..iterations {
                if workload == "up-to-date" {
                    let mut conn = open_for_check(&path, false)?;
                    total += timed(|| prepared.check(&mut conn, &work))?;
                } else {
                    total += timed(|| prepared.check(&mut warm, &work))?;
                }
            }
        }
        "first-call" | "first-call-loaded" => {
            // What the child process does, minus starting the process: a
            // fresh Migrator (not timed) and its first call.
            let path = dir.path().join("check.db");
            Prepared::new(contender, &work)?.apply(&mut open_fresh(&path)?, &work)?;
            for _ in 0..iterations {
                if workload == "first-call-loaded" {
                    let mut conn = open_for_check(&path, true)?;
                    total += timed(|| Prepared::new(contender, &work)?.check(&mut conn, &work))?;
                } else {
                    let prepared = Prepared::new(contender, &work)?;
                    let mut conn = open_for_check(&path, false)?;
                    total += timed(|| prepared.check(&mut conn, &work))?;
                }
            }
        }
        other => return Err(format!("unknown profile workload {other}").into()),
    }
    Ok(total)
}
