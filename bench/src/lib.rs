//! Benchmark of migrate-core against two hand-written floors, rusqlite_migration
//! and refinery, in one process run (see `docs/performance.md`).
//!
//! Every repetition runs every contender, each on a fresh database in its own
//! temporary directory, in phases; within a phase the contenders take turns in
//! an order rotated by the repetition (and the round), so that slow drifts of
//! the machine (other builds, page cache, CPU steal) spread over all
//! contenders instead of landing on one:
//!
//! 1. **apply** N migrations (timed), then the result is verified;
//! 2. **up-to-date**, `check_rounds` times: time the call that finds nothing
//!    to do, on a reopened connection (not timed) on which nothing ran, so
//!    that the call loads the schema; and on a warm connection, kept open
//!    across the rounds, its schema loaded before the first (not timed);
//! 3. **first call**, `child_rounds` times: spawn a child process (`bench`
//!    for the link-time contender, `bench-plain` for the others) that builds
//!    its migrations and opens the database (not timed) and times its first
//!    call with `Instant`, printing nanoseconds; or loads the schema first
//!    (not timed) and times building its migrations and the first call;
//! 4. **rollback all** (timed) where supported, then verified.
//!
//! Correctness is verified after every step (N tables, N tracking rows, 0
//! after a rollback); a failure stops the run with an error. Times are only
//! reported, never asserted: `--quick` is a correctness smoke run.
//!
//! One module per job: `args` (the command line), `contenders` (who is
//! measured and what each does), `db` (opening and verifying databases),
//! `schedule` (the phases and their interleaving), `child` (the
//! first-call child process), `stats` (samples, medians, ratios) and
//! `report` (the table and the targets).

use std::time::Instant;

/// `return Err(..)` with a formatted message unless the condition holds.
/// (Defined before the modules, which use it.)
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+).into());
        }
    };
}

mod args;
mod child;
mod contenders;
mod db;
pub mod migrations;
mod report;
mod schedule;
mod stage;
mod stats;

pub use args::Options;
pub use contenders::{Contender, Workload, Workset};
pub use report::{environment, table, targets};
pub use schedule::{profile, run};
pub use stats::Samples;

use args::Command;
use contenders::Prepared;

/// Any error of the benchmark (SQLite, a contender, a failed verification).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
type Result<T, E = BoxError> = std::result::Result<T, E>;

/// `bench`'s command line: `[--quick]` and the run's options, or one of the
/// internal modes (see `args`).
pub fn main_with_args(args: &[String]) -> Result<()> {
    execute(args::parse(args, std::env::current_exe()?)?)
}

/// `bench-plain`'s command line: only the first-call child and
/// `--identify` (it is `bench` without the generated link-time sets).
pub fn plain_main_with_args(args: &[String]) -> Result<()> {
    match args::parse(args, std::env::current_exe()?)? {
        command @ (Command::ChildFirstCall { .. } | Command::Identify) => execute(command),
        _ => Err("bench-plain only runs the benchmark's first-call children: run bench".into()),
    }
}

fn execute(command: Command) -> Result<()> {
    match command {
        Command::ChildFirstCall {
            contender,
            db,
            n,
            schema_loaded,
        } => {
            println!(
                "{}",
                child::child_first_call(contender, &db, n, schema_loaded)?
            );
            Ok(())
        }
        Command::ApplyOnly { contender, db, n } => {
            let work = Workset::new(n);
            Prepared::new(contender, &work)?.apply(&mut db::open_fresh(&db)?, &work)?;
            db::verify(&db, contender, n, n)
        }
        Command::Profile {
            contender,
            workload,
            n,
            iterations,
        } => {
            let total = profile(contender, &workload, n, iterations)?;
            println!("{workload}: {:.3} ms total", total.as_secs_f64() * 1e3);
            Ok(())
        }
        Command::Identify => {
            println!("{}", child::identity());
            Ok(())
        }
        Command::Help => {
            println!("{}", args::USAGE);
            Ok(())
        }
        Command::Run(options) => run_and_print(&options),
    }
}

/// A benchmark run, printed: the environment, the table, the targets.
fn run_and_print(options: &Options) -> Result<()> {
    println!("{}", environment()?);
    let sizes: Vec<String> = options
        .sizes
        .iter()
        .map(|&(n, reps)| match (options.per_commit_reps)(n) {
            Some(max) if max < reps => {
                format!("N={n} x{reps} (per-migration-commit contenders x{max})")
            }
            _ => format!("N={n} x{reps}"),
        })
        .collect();
    println!("sizes and repetitions: {}", sizes.join(", "));
    let started = Instant::now();
    let samples = run(options, |line| eprintln!("{line}"))?;
    println!();
    print!("{}", table(&samples, options));
    println!();
    if options.quick {
        println!("quick run: correctness verified; times are not meaningful at this N");
    } else {
        print!("{}", targets(&samples, options));
    }
    println!("total {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
