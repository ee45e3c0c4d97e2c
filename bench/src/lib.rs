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
//! 2. **up-to-date**, `check_rounds` times: reopen the connection (not timed)
//!    and time the call that finds nothing to do;
//! 3. **first call**, `child_rounds` times: spawn this binary as a child
//!    process that builds its migrations and opens the database (not timed)
//!    and times its first call with `Instant`, printing nanoseconds;
//! 4. **rollback all** (timed) where supported, then verified.
//!
//! Correctness is verified after every step (N tables, N tracking rows, 0
//! after a rollback); a failure stops the run with an error. Times are only
//! reported, never asserted: `--quick` is a correctness smoke run.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use migrate_core::rusqlite::{self, params, Connection, Transaction, TransactionBehavior};
use migrate_core::Migrator;

/// Any error of the benchmark (SQLite, a contender, a failed verification).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
type Result<T, E = BoxError> = std::result::Result<T, E>;

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+).into());
        }
    };
}

/// The set migrate-core runs in; its tracking table is `migrations_bench`.
const SET: &str = "bench";
const MIGRATE_CORE_TABLE: &str = "migrations_bench";
const REFINERY_TABLE: &str = "refinery_schema_history";

/// The floors' tracking table and statements.
const FLOOR_CREATE: &str = "CREATE TABLE IF NOT EXISTS history \
     (id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)";
const FLOOR_INSERT: &str = "INSERT INTO history (id, name, applied_at) \
     VALUES (?1, ?2, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))";
const FLOOR_DELETE: &str = "DELETE FROM history WHERE id = ?1";
/// The up-to-date floor: one prepared read of the newest tracking row.
const FLOOR_READ: &str = "SELECT id FROM history ORDER BY id DESC LIMIT 1";

/// A library (or a hand-written floor) under measurement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Contender {
    /// Hand-written: one `BEGIN IMMEDIATE … COMMIT` per migration.
    FloorA,
    /// Hand-written: one transaction for all migrations; for the checks, one
    /// prepared read of the newest row; for rollback, one transaction.
    FloorB,
    /// rusqlite_migration 2.6 (`to_latest`, `to_version(0)`).
    RusqliteMigration,
    /// refinery 0.10 `Runner`, default (one transaction per statement).
    Refinery,
    /// refinery 0.10 `Runner::set_grouped(true)` (one transaction).
    RefineryGrouped,
    /// migrate-core, `Migrator::new().set("bench").add(..)`.
    MigrateCore,
}

impl Contender {
    /// Every contender, in the order the table lists them.
    pub const ALL: [Contender; 6] = [
        Contender::FloorA,
        Contender::FloorB,
        Contender::RusqliteMigration,
        Contender::Refinery,
        Contender::RefineryGrouped,
        Contender::MigrateCore,
    ];

    fn key(self) -> &'static str {
        match self {
            Contender::FloorA => "floor-a",
            Contender::FloorB => "floor-b",
            Contender::RusqliteMigration => "rusqlite_migration",
            Contender::Refinery => "refinery",
            Contender::RefineryGrouped => "refinery-grouped",
            Contender::MigrateCore => "migrate-core",
        }
    }

    fn from_key(key: &str) -> Option<Contender> {
        Contender::ALL.into_iter().find(|c| c.key() == key)
    }

    /// How the contender is listed for a workload.
    fn label(self, workload: Workload) -> &'static str {
        match (self, workload) {
            (Contender::FloorA, _) => "floor A: txn per migration",
            (Contender::FloorB, Workload::Apply) => "floor B: one txn",
            (Contender::FloorB, Workload::UpToDate | Workload::FirstCall) => {
                "floor: one prepared read"
            }
            (Contender::FloorB, Workload::RollbackAll) => "floor: one txn",
            (Contender::RusqliteMigration, _) => "rusqlite_migration 2.6",
            (Contender::Refinery, _) => "refinery 0.10 (default)",
            (Contender::RefineryGrouped, Workload::Apply) => "refinery 0.10 grouped",
            (Contender::RefineryGrouped, _) => "refinery 0.10",
            (Contender::MigrateCore, _) => "migrate-core",
        }
    }

    /// Whether the contender takes part in a workload. refinery's two
    /// configurations share one check path, so the checks run once, in the
    /// grouped configuration's cycle (its apply is cheap enough to run at
    /// every N); floor A differs from floor B only in applying.
    fn runs(self, workload: Workload) -> bool {
        match workload {
            Workload::Apply => true,
            Workload::UpToDate | Workload::FirstCall => {
                !matches!(self, Contender::FloorA | Contender::Refinery)
            }
            Workload::RollbackAll => matches!(
                self,
                Contender::FloorB | Contender::RusqliteMigration | Contender::MigrateCore
            ),
        }
    }

    /// Whether it commits once per migration when applying.
    fn commits_per_migration(self) -> bool {
        matches!(self, Contender::FloorA | Contender::Refinery)
    }

    /// The floor a contender's time is divided by.
    fn floor(self, workload: Workload) -> Contender {
        match (workload, self) {
            (Workload::Apply, Contender::FloorA | Contender::Refinery) => Contender::FloorA,
            _ => Contender::FloorB,
        }
    }
}

/// What is timed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Workload {
    /// Applying N migrations to a fresh database.
    Apply,
    /// The call that finds nothing to do, on a reopened connection.
    UpToDate,
    /// The first call of a fresh process (validation plus the check).
    FirstCall,
    /// Undoing every migration.
    RollbackAll,
}

impl Workload {
    /// Every workload, in table order.
    pub const ALL: [Workload; 4] = [
        Workload::Apply,
        Workload::UpToDate,
        Workload::FirstCall,
        Workload::RollbackAll,
    ];

    fn label(self) -> &'static str {
        match self {
            Workload::Apply => "apply",
            Workload::UpToDate => "up-to-date check",
            Workload::FirstCall => "first call in a process",
            Workload::RollbackAll => "rollback all",
        }
    }
}

/// How a run is configured.
#[derive(Clone, Debug)]
pub struct Options {
    /// (N, repetitions) pairs, run in order.
    pub sizes: Vec<(usize, usize)>,
    /// The bench binary, spawned for the first-call workload.
    pub exe: PathBuf,
    /// A smoke run: tiny N, one repetition, no timing conclusions.
    pub quick: bool,
    /// Repetitions of the contenders that commit once per migration (floor
    /// A, refinery's default) at each N, at most: each commit is an fsync
    /// (about 4 ms on the reference machine), so N = 10,000 would take more
    /// than a minute and a half per repetition. `None`: as many as the others.
    pub per_commit_reps: fn(usize) -> Option<usize>,
    /// Only these contenders (all when empty).
    pub only: Vec<Contender>,
    /// Up-to-date checks per contender and repetition (each on a reopened
    /// connection, contenders interleaved round by round).
    pub check_rounds: usize,
    /// First-call child processes per contender and repetition.
    pub child_rounds: usize,
}

impl Options {
    /// The default run: N = 200, 1,000 and 10,000 with 15, 11 and 3
    /// repetitions (the contenders committing per migration: 5, 2 and 0).
    pub fn full(exe: PathBuf) -> Options {
        Options {
            sizes: vec![(200, 15), (1_000, 11), (10_000, 3)],
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

    /// The smoke run: N = 20, one repetition, correctness only.
    pub fn quick(exe: PathBuf) -> Options {
        Options {
            sizes: vec![(20, 1)],
            exe,
            quick: true,
            per_commit_reps: |_| None,
            only: Vec::new(),
            check_rounds: 1,
            child_rounds: 1,
        }
    }
}

/// The migrations of one size: `t_i` created and filled, and dropped.
pub struct Workset {
    up: Vec<String>,
    down: Vec<String>,
    names: Vec<String>,
}

impl Workset {
    /// N migrations, `CREATE TABLE t_i(...); INSERT INTO t_i(v) VALUES ('x');`.
    pub fn new(n: usize) -> Workset {
        Workset {
            up: (0..n)
                .map(|i| {
                    format!(
                        "CREATE TABLE t_{i}(id INTEGER PRIMARY KEY, v TEXT NOT NULL); \
                         INSERT INTO t_{i}(v) VALUES ('x');"
                    )
                })
                .collect(),
            down: (0..n).map(|i| format!("DROP TABLE t_{i};")).collect(),
            names: (0..n).map(|i| format!("t_{i}")).collect(),
        }
    }

    fn len(&self) -> usize {
        self.up.len()
    }
}

/// A contender, ready to run against a connection. Building it is not timed.
enum Prepared<'w> {
    FloorA,
    FloorB,
    RusqliteMigration(rusqlite_migration::Migrations<'w>),
    Refinery(refinery::Runner),
    MigrateCore(Box<Migrator>),
}

impl<'w> Prepared<'w> {
    fn new(contender: Contender, work: &'w Workset) -> Result<Prepared<'w>> {
        Ok(match contender {
            Contender::FloorA => Prepared::FloorA,
            Contender::FloorB => Prepared::FloorB,
            Contender::RusqliteMigration => {
                Prepared::RusqliteMigration(rusqlite_migration::Migrations::new(
                    work.up
                        .iter()
                        .zip(&work.down)
                        .map(|(up, down)| rusqlite_migration::M::up(up).down(down))
                        .collect(),
                ))
            }
            Contender::Refinery | Contender::RefineryGrouped => {
                let migrations = work
                    .names
                    .iter()
                    .zip(&work.up)
                    .enumerate()
                    .map(|(i, (name, up))| {
                        refinery::Migration::unapplied(&format!("V{}__{name}", i + 1), up)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Prepared::Refinery(
                    refinery::Runner::new(&migrations)
                        .set_grouped(contender == Contender::RefineryGrouped),
                )
            }
            Contender::MigrateCore => {
                let mut migrator = Migrator::new().set(SET);
                for (i, ((name, up), down)) in
                    work.names.iter().zip(&work.up).zip(&work.down).enumerate()
                {
                    let (up, down) = (up.clone(), down.clone());
                    let id = u32::try_from(i)?;
                    migrator = migrator
                        .add(id, name.clone(), move |tx: &Transaction| {
                            tx.execute_batch(&up)
                        })
                        .add_rollback(id, move |tx: &Transaction| tx.execute_batch(&down));
                }
                Prepared::MigrateCore(Box::new(migrator))
            }
        })
    }

    /// Applies every migration.
    fn apply(&self, conn: &mut Connection, work: &Workset) -> Result<()> {
        match self {
            Prepared::FloorA => {
                for (i, (up, name)) in work.up.iter().zip(&work.names).enumerate() {
                    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                    if i == 0 {
                        tx.execute_batch(FLOOR_CREATE)?;
                    }
                    tx.execute_batch(up)?;
                    tx.prepare_cached(FLOOR_INSERT)?
                        .execute(params![i as i64, name])?;
                    tx.commit()?;
                }
            }
            Prepared::FloorB => {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                tx.execute_batch(FLOOR_CREATE)?;
                for (i, (up, name)) in work.up.iter().zip(&work.names).enumerate() {
                    tx.execute_batch(up)?;
                    tx.prepare_cached(FLOOR_INSERT)?
                        .execute(params![i as i64, name])?;
                }
                tx.commit()?;
            }
            Prepared::RusqliteMigration(migrations) => migrations.to_latest(conn)?,
            Prepared::Refinery(runner) => {
                let report = runner.run(conn)?;
                ensure!(
                    report.applied_migrations().len() == work.len(),
                    "refinery applied {} of {}",
                    report.applied_migrations().len(),
                    work.len()
                );
            }
            Prepared::MigrateCore(migrator) => {
                let report = migrator.migrate(conn)?;
                ensure!(
                    report.ids().len() == work.len(),
                    "migrate-core applied {} of {}",
                    report.ids().len(),
                    work.len()
                );
            }
        }
        Ok(())
    }

    /// The call that should find nothing to do (the floor: one read).
    fn check(&self, conn: &mut Connection, work: &Workset) -> Result<()> {
        match self {
            Prepared::FloorA | Prepared::FloorB => {
                let mut stmt = conn.prepare(FLOOR_READ)?;
                let newest: i64 = stmt.query_row(params![], |row| row.get(0))?;
                ensure!(
                    newest == work.len() as i64 - 1,
                    "floor read newest id {newest}, expected {}",
                    work.len() - 1
                );
            }
            Prepared::RusqliteMigration(migrations) => migrations.to_latest(conn)?,
            Prepared::Refinery(runner) => {
                let report = runner.run(conn)?;
                ensure!(
                    report.applied_migrations().is_empty(),
                    "refinery applied {} migrations on an up-to-date database",
                    report.applied_migrations().len()
                );
            }
            Prepared::MigrateCore(migrator) => {
                let report = migrator.migrate(conn)?;
                ensure!(
                    report.is_empty(),
                    "migrate-core applied {:?} on an up-to-date database",
                    report.ids()
                );
            }
        }
        Ok(())
    }

    /// Undoes every migration.
    fn rollback_all(&self, conn: &mut Connection, work: &Workset) -> Result<()> {
        match self {
            Prepared::FloorA | Prepared::FloorB => {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                for (i, down) in work.down.iter().enumerate().rev() {
                    tx.execute_batch(down)?;
                    tx.prepare_cached(FLOOR_DELETE)?.execute([i as i64])?;
                }
                tx.commit()?;
            }
            Prepared::RusqliteMigration(migrations) => migrations.to_version(conn, 0)?,
            Prepared::Refinery(_) => return Err("refinery has no rollback".into()),
            Prepared::MigrateCore(migrator) => {
                let report = migrator.rollback_all(conn)?;
                ensure!(
                    report.ids().len() == work.len(),
                    "migrate-core rolled back {} of {}",
                    report.ids().len(),
                    work.len()
                );
            }
        }
        Ok(())
    }
}

/// A fresh database: WAL, `synchronous = FULL` (so every commit fsyncs the
/// WAL). Not timed.
fn open_fresh(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", params![], |r| r.get(0))?;
    ensure!(mode == "wal", "journal_mode is {mode}, expected wal");
    set_full_sync(&conn)?;
    Ok(conn)
}

/// Reopens for writing (rollback), with `synchronous = FULL` as when applying.
fn open_for_write(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    set_full_sync(&conn)?;
    Ok(conn)
}

/// Reopens for a check: nothing runs on it before the timed call, so the
/// call pays for loading the schema like it would in an application
/// (`PRAGMA synchronous` would load it early; a check commits nothing).
fn open_for_check(path: &Path) -> Result<Connection> {
    Ok(Connection::open(path)?)
}

fn set_full_sync(conn: &Connection) -> Result<()> {
    conn.execute_batch("PRAGMA synchronous = FULL")?;
    let sync: i64 = conn.query_row("PRAGMA synchronous", params![], |r| r.get(0))?;
    ensure!(sync == 2, "synchronous is {sync}, expected 2 (FULL)");
    Ok(())
}

/// Tracking rows as the contender records them (rusqlite_migration keeps
/// only `PRAGMA user_version`).
fn tracking_rows(conn: &Connection, contender: Contender) -> Result<i64> {
    let sql = match contender {
        Contender::FloorA | Contender::FloorB => "SELECT count(*) FROM history",
        Contender::RusqliteMigration => "PRAGMA user_version",
        Contender::Refinery | Contender::RefineryGrouped => {
            "SELECT count(*) FROM refinery_schema_history"
        }
        Contender::MigrateCore => "SELECT count(*) FROM \"migrations_bench\"",
    };
    Ok(conn.query_row(sql, params![], |r| r.get(0))?)
}

/// Verifies the database holds exactly `expected` migrated tables (each with
/// its one row) and `expected` tracking rows, in WAL mode.
fn verify(path: &Path, contender: Contender, expected: usize) -> Result<()> {
    let conn = Connection::open(path)?;
    let mode: String = conn.query_row("PRAGMA journal_mode", params![], |r| r.get(0))?;
    ensure!(mode == "wal", "{}: journal_mode is {mode}", contender.key());
    let tables: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name GLOB 't_[0-9]*'",
        params![],
        |r| r.get(0),
    )?;
    ensure!(
        tables == expected as i64,
        "{}: {tables} tables t_i, expected {expected}",
        contender.key()
    );
    let rows = tracking_rows(&conn, contender)?;
    ensure!(
        rows == expected as i64,
        "{}: {rows} tracking rows, expected {expected}",
        contender.key()
    );
    for i in [0, expected / 2, expected.saturating_sub(1)] {
        if i < expected {
            let filled: i64 =
                conn.query_row(&format!("SELECT count(*) FROM t_{i}"), params![], |r| {
                    r.get(0)
                })?;
            ensure!(filled == 1, "{}: t_{i} has {filled} rows", contender.key());
        }
    }
    if contender == Contender::MigrateCore {
        let table = conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = ?1",
            [MIGRATE_CORE_TABLE],
            |r| r.get::<_, i64>(0),
        )?;
        ensure!(table == 1, "migrate-core: no table {MIGRATE_CORE_TABLE}");
    }
    if matches!(contender, Contender::Refinery | Contender::RefineryGrouped) {
        let table = conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = ?1",
            [REFINERY_TABLE],
            |r| r.get::<_, i64>(0),
        )?;
        ensure!(table == 1, "refinery: no table {REFINERY_TABLE}");
    }
    Ok(())
}

/// Times `f` with `Instant`.
fn timed(f: impl FnOnce() -> Result<()>) -> Result<Duration> {
    let start = Instant::now();
    f()?;
    Ok(start.elapsed())
}

/// The samples of a run, by (workload, N, contender).
#[derive(Default, Debug)]
pub struct Samples {
    /// Every measured duration.
    pub times: BTreeMap<(Workload, usize, Contender), Vec<Duration>>,
}

impl Samples {
    fn push(&mut self, workload: Workload, n: usize, contender: Contender, time: Duration) {
        self.times
            .entry((workload, n, contender))
            .or_default()
            .push(time);
    }

    /// The median of a series, if it was measured.
    pub fn median(&self, workload: Workload, n: usize, contender: Contender) -> Option<Duration> {
        let mut times = self.times.get(&(workload, n, contender))?.clone();
        if times.is_empty() {
            return None;
        }
        times.sort();
        let mid = times.len() / 2;
        Some(if times.len() % 2 == 1 {
            times[mid]
        } else {
            (times[mid - 1] + times[mid]) / 2
        })
    }

    /// A contender's median divided by its floor's.
    pub fn ratio(&self, workload: Workload, n: usize, contender: Contender) -> Option<f64> {
        let own = self.median(workload, n, contender)?;
        let floor = self.median(workload, n, contender.floor(workload))?;
        Some(own.as_secs_f64() / floor.as_secs_f64())
    }
}

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

const CHILD_FLAG: &str = "--child-first-call";

fn first_call_in_child(exe: &Path, contender: Contender, db: &Path, n: usize) -> Result<Duration> {
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
fn child_first_call(args: &[String]) -> Result<u128> {
    let [key, db, n] = args else {
        return Err(format!("usage: {CHILD_FLAG} CONTENDER DB N").into());
    };
    let contender = Contender::from_key(key).ok_or_else(|| format!("unknown contender {key}"))?;
    let n: usize = n.parse()?;
    let work = Workset::new(n);
    let prepared = Prepared::new(contender, &work)?;
    let mut conn = open_for_check(Path::new(db))?;
    let time = timed(|| prepared.check(&mut conn, &work))?;
    Ok(time.as_nanos())
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

/// The results as a table (Markdown-compatible plain text).
pub fn table(samples: &Samples, options: &Options) -> String {
    let mut rows: Vec<[String; 7]> = vec![[
        "workload".into(),
        "N".into(),
        "contender".into(),
        "samples".into(),
        "median ms".into(),
        "floor".into(),
        "ratio".into(),
    ]];
    for workload in Workload::ALL {
        for &(n, _) in &options.sizes {
            for contender in Contender::ALL {
                if !contender.runs(workload) {
                    if workload == Workload::RollbackAll && contender == Contender::RefineryGrouped
                    {
                        rows.push([
                            workload.label().into(),
                            n.to_string(),
                            contender.label(workload).into(),
                            "0".into(),
                            "n/a".into(),
                            "-".into(),
                            "no rollback in refinery".into(),
                        ]);
                    }
                    continue;
                }
                let Some(median) = samples.median(workload, n, contender) else {
                    if workload == Workload::Apply && contender.commits_per_migration() {
                        rows.push([
                            workload.label().into(),
                            n.to_string(),
                            contender.label(workload).into(),
                            "0".into(),
                            "skipped".into(),
                            "-".into(),
                            format!("{n} commits (fsyncs)"),
                        ]);
                    }
                    continue;
                };
                let floor = contender.floor(workload);
                let floor_name = match floor {
                    Contender::FloorA => "A",
                    _ if workload == Workload::Apply => "B",
                    _ => "read",
                };
                let floor_name = if workload == Workload::RollbackAll {
                    "one txn"
                } else {
                    floor_name
                };
                let ratio = samples
                    .ratio(workload, n, contender)
                    .map_or("-".into(), |r| format!("{r:.2}x"));
                rows.push([
                    workload.label().into(),
                    n.to_string(),
                    contender.label(workload).into(),
                    samples.times[&(workload, n, contender)].len().to_string(),
                    format_ms(median),
                    floor_name.into(),
                    ratio,
                ]);
            }
        }
    }
    let mut widths = [0; 7];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for (index, row) in rows.iter().enumerate() {
        out.push('|');
        for (column, (w, cell)) in widths.iter().zip(row).enumerate() {
            // Numbers right-aligned.
            if matches!(column, 1 | 3 | 4 | 6) && index > 0 {
                let _ = write!(out, " {cell:>w$} |");
            } else {
                let _ = write!(out, " {cell:<w$} |");
            }
        }
        out.push('\n');
        if index == 0 {
            out.push('|');
            for (column, w) in widths.iter().enumerate() {
                let dashes = "-".repeat(*w);
                if matches!(column, 1 | 3 | 4 | 6) {
                    let _ = write!(out, "{dashes}-:|");
                } else {
                    let _ = write!(out, "-{dashes}-|");
                }
            }
            out.push('\n');
        }
    }
    out
}

fn format_ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms >= 100.0 {
        format!("{ms:.0}")
    } else if ms >= 1.0 {
        format!("{ms:.2}")
    } else {
        format!("{ms:.3}")
    }
}

/// The project's targets, judged on migrate-core's ratios.
pub fn targets(samples: &Samples, options: &Options) -> String {
    let mut out = String::new();
    let mc = Contender::MigrateCore;
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    let sizes: Vec<usize> = options.sizes.iter().map(|&(n, _)| n).collect();
    if let Some(r) = samples.ratio(Workload::Apply, 1_000, mc) {
        let _ = writeln!(
            out,
            "apply N=1000 <= 1.10x floor B (one txn): {r:.2}x  {}",
            verdict(r <= 1.10)
        );
    }
    for (workload, limit) in [(Workload::UpToDate, 1.2), (Workload::FirstCall, 2.0)] {
        let ratios: Vec<(usize, f64)> = sizes
            .iter()
            .filter_map(|&n| samples.ratio(workload, n, mc).map(|r| (n, r)))
            .collect();
        let listed: Vec<String> = ratios
            .iter()
            .map(|(n, r)| format!("N={n} {r:.2}x"))
            .collect();
        let ok = ratios.iter().all(|&(_, r)| r <= limit);
        let _ = writeln!(
            out,
            "{} <= {limit:.1}x floor read: {}  {}",
            workload.label(),
            listed.join(", "),
            verdict(ok)
        );
    }
    for workload in Workload::ALL {
        if let (Some(small), Some(large)) = (
            samples.ratio(workload, 1_000, mc),
            samples.ratio(workload, 10_000, mc),
        ) {
            let growth = large / small;
            let _ = writeln!(
                out,
                "{} ratio N=1000 -> N=10000: {small:.2}x -> {large:.2}x (worsens {growth:.2}x, limit 1.5x)  {}",
                workload.label(),
                verdict(growth <= 1.5)
            );
        }
    }
    out
}

/// The environment a run measured.
pub fn environment() -> Result<String> {
    let conn = Connection::open_in_memory()?;
    let source_id: String = conn.query_row("SELECT sqlite_source_id()", params![], |r| r.get(0))?;
    Ok(format!(
        "SQLite {} (bundled, {}), journal_mode=WAL, synchronous=FULL (2): every commit fsyncs the WAL",
        rusqlite::version(),
        source_id.split_whitespace().next().unwrap_or("?"),
    ))
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

/// The command line: `[--quick]`, or the internal child and profile modes.
pub fn main_with_args(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some(CHILD_FLAG) => {
            println!("{}", child_first_call(&args[1..])?);
            Ok(())
        }
        Some("--apply-only") => {
            // Leaves a migrated database behind, e.g. to profile the child:
            // `bench --apply-only migrate-core /tmp/x.db 10000` then
            // `perf record bench --child-first-call migrate-core /tmp/x.db 10000`.
            let [key, db, n] = &args[1..] else {
                return Err("usage: --apply-only CONTENDER DB N".into());
            };
            let contender =
                Contender::from_key(key).ok_or_else(|| format!("unknown contender {key}"))?;
            let work = Workset::new(n.parse()?);
            Prepared::new(contender, &work)?.apply(&mut open_fresh(Path::new(db))?, &work)?;
            verify(Path::new(db), contender, work.len())
        }
        Some("--profile") => {
            let [workload, n, iterations] = &args[1..] else {
                return Err("usage: --profile apply|up-to-date|first-call N ITERATIONS".into());
            };
            let total = profile(workload, n.parse()?, iterations.parse()?)?;
            println!("{workload}: {:.3} ms total", total.as_secs_f64() * 1e3);
            Ok(())
        }
        Some("--help" | "-h") => {
            println!("usage: bench [--quick] [--size N:REPS]... [--only KEY,..] [--per-commit-reps all|1]\n\
                 contenders: floor-a floor-b rusqlite_migration refinery refinery-grouped migrate-core\n\
                 internal: --child-first-call KEY DB N, --apply-only KEY DB N, --profile apply|up-to-date|first-call N ITERATIONS\n\
                 (see docs/performance.md)");
            Ok(())
        }
        first => {
            let exe = std::env::current_exe()?;
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
                            options.only.push(
                                Contender::from_key(key)
                                    .ok_or_else(|| format!("unknown contender {key}"))?,
                            );
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
            let samples = run(&options, |line| eprintln!("{line}"))?;
            println!();
            print!("{}", table(&samples, &options));
            println!();
            if options.quick {
                println!("quick run: correctness verified; times are not meaningful at this N");
            } else {
                print!("{}", targets(&samples, &options));
            }
            println!("total {:.1} s", started.elapsed().as_secs_f64());
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_ratio() {
        let mut s = Samples::default();
        for ms in [5, 1, 3, 100] {
            s.push(
                Workload::Apply,
                1,
                Contender::FloorB,
                Duration::from_millis(ms),
            );
        }
        for ms in [8, 8, 9] {
            s.push(
                Workload::Apply,
                1,
                Contender::MigrateCore,
                Duration::from_millis(ms),
            );
        }
        assert_eq!(
            s.median(Workload::Apply, 1, Contender::FloorB),
            Some(Duration::from_millis(4))
        );
        let r = s.ratio(Workload::Apply, 1, Contender::MigrateCore).unwrap();
        assert!((r - 2.0).abs() < 1e-9);
    }

    #[test]
    fn contender_keys_round_trip() {
        for c in Contender::ALL {
            assert_eq!(Contender::from_key(c.key()), Some(c));
        }
    }
}
