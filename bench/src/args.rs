//! The command line: a run's options, and the internal modes (the first-call
//! child, leaving a migrated database behind, profiling migrate-core alone).

use std::path::{Path, PathBuf};

use crate::child::{CHILD_FLAG, IDENTIFY_FLAG, SCHEMA_LOADED_FLAG};
use crate::contenders::Contender;
use crate::Result;

/// How a run is configured.
#[derive(Clone, Debug)]
pub struct Options {
    /// (N, repetitions) pairs, run in order.
    pub sizes: Vec<(usize, usize)>,
    /// The `bench` binary, which links the generated link-time sets: the
    /// link-time contender's first-call child.
    pub exe: PathBuf,
    /// `bench-plain`, the same program without them: every other
    /// contender's first-call child, so that the run-time contender's first
    /// call checks an empty link-time registry, as in an application whose
    /// migrations are all added at run time.
    pub plain_exe: PathBuf,
    /// A smoke run: the smallest N, one repetition, no timing conclusions.
    pub quick: bool,
    /// Repetitions of the contenders that commit once per migration (floor
    /// A, refinery's default) at each N, at most: each commit is an fsync
    /// (about 4 ms on the reference machine), so N = 10,000 would take more
    /// than a minute and a half per repetition. `None`: as many as the others.
    pub per_commit_reps: fn(usize) -> Option<usize>,
    /// Only these contenders (all when empty).
    pub only: Vec<Contender>,
    /// Rounds of up-to-date checks per repetition: in each, every
    /// contender's check on a reopened connection, then on its warm one,
    /// contenders interleaved round by round.
    pub check_rounds: usize,
    /// Rounds of first-call child processes per repetition: in each, every
    /// contender's child loading the schema, then one with it loaded.
    pub child_rounds: usize,
}

impl Options {
    /// The default run: N = 200, 1,000 and 10,000 with 15, 11 and 3
    /// repetitions (the contenders committing per migration: 5, 2 and 0).
    pub fn full(exe: PathBuf) -> Options {
        Options {
            sizes: vec![(200, 15), (1_000, 11), (10_000, 3)],
            plain_exe: plain_next_to(&exe),
            exe,
            quick: false,
            per_commit_reps: |n| match n {
                0..=500 => Some(5),
                501..=5_000 => Some(2),
                _ => Some(0),
            },
            only: Vec::new(),
            check_rounds: 15,
            child_rounds: 5,
        }
    }

    /// The smoke run: N = 200 (the smallest generated link-time set), one
    /// repetition, correctness only.
    pub fn quick(exe: PathBuf) -> Options {
        Options {
            sizes: vec![(200, 1)],
            plain_exe: plain_next_to(&exe),
            exe,
            quick: true,
            per_commit_reps: |_| None,
            only: Vec::new(),
            check_rounds: 1,
            child_rounds: 1,
        }
    }

    /// Whether the run includes `contender` (`--only`).
    pub fn selects(&self, contender: Contender) -> bool {
        self.only.is_empty() || self.only.contains(&contender)
    }

    /// The binary a contender's first-call child runs.
    pub fn child_exe(&self, contender: Contender) -> &Path {
        if contender == Contender::MigrateCoreLinked {
            &self.exe
        } else {
            &self.plain_exe
        }
    }
}

/// `bench-plain` in the directory of `exe` (Cargo builds both there).
fn plain_next_to(exe: &Path) -> PathBuf {
    exe.with_file_name(format!("bench-plain{}", std::env::consts::EXE_SUFFIX))
}

/// What the command line asks for.
pub enum Command {
    /// A benchmark run.
    Run(Options),
    /// Internal: the first-call child (`--child-first-call KEY DB N
    /// [--schema-loaded]`).
    ChildFirstCall {
        contender: Contender,
        db: PathBuf,
        n: usize,
        schema_loaded: bool,
    },
    /// Internal: apply one contender's migrations and leave the database
    /// behind, e.g. to profile the child: `bench --apply-only
    /// migrate-core-linked /tmp/x.db 10000` then `perf record bench
    /// --child-first-call migrate-core-linked /tmp/x.db 10000` (the
    /// run-time contender's child is `bench-plain`).
    ApplyOnly {
        contender: Contender,
        db: PathBuf,
        n: usize,
    },
    /// Internal: one contender alone (`migrate-core-add` by default), for
    /// profilers.
    Profile {
        contender: Contender,
        workload: String,
        n: usize,
        iterations: usize,
    },
    /// Internal: print the build id and the generated sets linked in.
    Identify,
    /// The usage text.
    Help,
}

/// The usage text.
pub const USAGE: &str = "usage: bench [--quick] [--size N:REPS]... [--only KEY,..] [--per-commit-reps all|1]\n\
     contenders: floor-a floor-b rusqlite_migration refinery refinery-grouped migrate-core-linked migrate-core-add\n\
     (migrate-core-linked only at N = 200, 1000, 10000: the generated sets)\n\
     internal: --child-first-call KEY DB N [--schema-loaded], --apply-only KEY DB N, --identify,\n\
     --profile apply|up-to-date[-warm]|first-call[-loaded] N ITERATIONS [KEY]\n\
     (see docs/performance.md)";

/// Parses the arguments after the program name; `exe` is this binary.
pub fn parse(args: &[String], exe: PathBuf) -> Result<Command> {
    match args.first().map(String::as_str) {
        Some(CHILD_FLAG) => {
            let (key, db, n, schema_loaded) = match &args[1..] {
                [key, db, n] => (key, db, n, false),
                [key, db, n, flag] if flag == SCHEMA_LOADED_FLAG => (key, db, n, true),
                _ => {
                    return Err(format!(
                        "usage: {CHILD_FLAG} CONTENDER DB N [{SCHEMA_LOADED_FLAG}]"
                    )
                    .into())
                }
            };
            Ok(Command::ChildFirstCall {
                contender: contender(key)?,
                db: PathBuf::from(db),
                n: n.parse()?,
                schema_loaded,
            })
        }
        Some("--apply-only") => {
            let [key, db, n] = &args[1..] else {
                return Err("usage: --apply-only CONTENDER DB N".into());
            };
            Ok(Command::ApplyOnly {
                contender: contender(key)?,
                db: PathBuf::from(db),
                n: n.parse()?,
            })
        }
        Some("--profile") => {
            let (workload, n, iterations, key) = match &args[1..] {
                [workload, n, iterations] => (workload, n, iterations, "migrate-core-add"),
                [workload, n, iterations, key] => (workload, n, iterations, key.as_str()),
                _ => {
                    return Err(
                        "usage: --profile apply|up-to-date[-warm]|first-call[-loaded] N ITERATIONS [CONTENDER]"
                            .into(),
                    )
                }
            };
            Ok(Command::Profile {
                contender: contender(key)?,
                workload: workload.clone(),
                n: n.parse()?,
                iterations: iterations.parse()?,
            })
        }
        Some(IDENTIFY_FLAG) => Ok(Command::Identify),
        Some("--help" | "-h") => Ok(Command::Help),
        first => {
            let mut options = match first {
                Some("--quick") => Options::quick(exe),
                _ => Options::full(exe),
            };
            let rest = if first == Some("--quick") {
                &args[1..]
            } else {
                args
            };
            let mut custom = Vec::new();
            let mut rest = rest.iter();
            while let Some(arg) = rest.next() {
                match (arg.as_str(), rest.next()) {
                    ("--only", Some(keys)) => {
                        for key in keys.split(',') {
                            options.only.push(contender(key)?);
                        }
                    }
                    ("--per-commit-reps", Some(reps)) => {
                        options.per_commit_reps = match reps.as_str() {
                            "all" => |_| None,
                            "1" => |_| Some(1),
                            other => {
                                return Err(format!("--per-commit-reps all|1, got {other}").into())
                            }
                        };
                    }
                    ("--size", Some(spec)) => {
                        let (n, reps) = spec
                            .split_once(':')
                            .ok_or_else(|| format!("--size wants N:REPS, got {spec}"))?;
                        custom.push((n.parse()?, reps.parse()?));
                    }
                    _ => return Err(format!("unknown argument {arg}").into()),
                }
            }
            if !custom.is_empty() {
                options.sizes = custom;
            }
            Ok(Command::Run(options))
        }
    }
}

fn contender(key: &str) -> Result<Contender> {
    Ok(Contender::from_key(key).ok_or_else(|| format!("unknown contender {key}"))?)
}
