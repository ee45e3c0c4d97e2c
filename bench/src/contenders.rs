//! Who is measured and what each contender does: the hand-written floors,
//! the peers, migrate-core; the workloads they take part in, the floor each
//! is divided by, and the migrations of one size.

use std::borrow::Cow;

use migrate_core::rusqlite::{params, Connection, Transaction, TransactionBehavior};
use migrate_core::Migrator;

use crate::migrations::{self, linked_set, LINKED_SIZES};
use crate::Result;

/// The set the run-time contender adds its migrations to (the link-time
/// contender's sets are `linked_N`); migrate-core's tracking table for a set
/// `s` is `migrations_s`.
const ADD_SET: &str = "bench";
pub(crate) const REFINERY_TABLE: &str = "refinery_schema_history";

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
    /// migrate-core as users write it: migrations registered at link time
    /// with `#[migration(i, set = "linked_N")]` (generated, in the crate
    /// `bench-linked-sets`), and a fresh `Migrator::new().set("linked_N")`
    /// built inside every timed call.
    MigrateCoreLinked,
    /// migrate-core with migrations added at run time, one `Migrator` reused
    /// for every call: `Migrator::new().set("bench").add(..).add_rollback(..)`.
    MigrateCoreAdd,
}

impl Contender {
    /// Every contender, in the order the table lists them.
    pub const ALL: [Contender; 7] = [
        Contender::FloorA,
        Contender::FloorB,
        Contender::RusqliteMigration,
        Contender::Refinery,
        Contender::RefineryGrouped,
        Contender::MigrateCoreLinked,
        Contender::MigrateCoreAdd,
    ];

    pub(crate) fn key(self) -> &'static str {
        match self {
            Contender::FloorA => "floor-a",
            Contender::FloorB => "floor-b",
            Contender::RusqliteMigration => "rusqlite_migration",
            Contender::Refinery => "refinery",
            Contender::RefineryGrouped => "refinery-grouped",
            Contender::MigrateCoreLinked => "migrate-core-linked",
            Contender::MigrateCoreAdd => "migrate-core-add",
        }
    }

    pub(crate) fn from_key(key: &str) -> Option<Contender> {
        Contender::ALL.into_iter().find(|c| c.key() == key)
    }

    /// How the contender is listed for a workload (in the table).
    pub fn label(self, workload: Workload) -> &'static str {
        match (self, workload) {
            (Contender::FloorA, _) => "floor A: txn per migration",
            (Contender::FloorB, Workload::Apply) => "floor B: one txn",
            (
                Contender::FloorB,
                Workload::UpToDate
                | Workload::UpToDateWarm
                | Workload::FirstCall
                | Workload::FirstCallLoaded,
            ) => "floor: one prepared read",
            (Contender::FloorB, Workload::RollbackAll) => "floor: one txn",
            (Contender::RusqliteMigration, _) => "rusqlite_migration 2.6",
            (Contender::Refinery, _) => "refinery 0.10 (default)",
            (Contender::RefineryGrouped, Workload::Apply) => "refinery 0.10 grouped",
            (Contender::RefineryGrouped, _) => "refinery 0.10",
            (Contender::MigrateCoreLinked, _) => "migrate-core (link-time, Migrator per call)",
            (Contender::MigrateCoreAdd, _) => "migrate-core (run-time .add, reused)",
        }
    }

    /// Whether the contender takes part in a workload. refinery's two
    /// configurations share one check path, so the checks run once, in the
    /// grouped configuration's cycle (its apply is cheap enough to run at
    /// every N); floor A differs from floor B only in applying.
    pub(crate) fn runs(self, workload: Workload) -> bool {
        match workload {
            Workload::Apply => true,
            Workload::UpToDate
            | Workload::UpToDateWarm
            | Workload::FirstCall
            | Workload::FirstCallLoaded => !matches!(self, Contender::FloorA | Contender::Refinery),
            Workload::RollbackAll => matches!(
                self,
                Contender::FloorB
                    | Contender::RusqliteMigration
                    | Contender::MigrateCoreLinked
                    | Contender::MigrateCoreAdd
            ),
        }
    }

    /// Whether the contender can run N migrations: the link-time one only
    /// has the generated sets (N = 200, 1,000, 10,000).
    pub(crate) fn available(self, n: usize) -> bool {
        self != Contender::MigrateCoreLinked || LINKED_SIZES.contains(&n)
    }

    /// migrate-core's tracking table at N, for the migrate-core contenders.
    pub(crate) fn migrate_core_table(self, n: usize) -> Option<String> {
        match self {
            Contender::MigrateCoreLinked => Some(format!("migrations_{}", linked_set(n))),
            Contender::MigrateCoreAdd => Some(format!("migrations_{ADD_SET}")),
            _ => None,
        }
    }

    /// Whether it commits once per migration when applying.
    pub(crate) fn commits_per_migration(self) -> bool {
        matches!(self, Contender::FloorA | Contender::Refinery)
    }

    /// The floor a contender's time is divided by.
    pub(crate) fn floor(self, workload: Workload) -> Contender {
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
    /// The call that finds nothing to do, on a reopened connection on which
    /// nothing ran: the call pays for SQLite's schema load.
    UpToDate,
    /// The call that finds nothing to do, on a warm connection: one
    /// connection per contender kept open across the check rounds, its
    /// schema loaded before the first (not timed). What the call adds on a
    /// connection the application keeps using (a pool's, per request); the
    /// floor is then microseconds. Issue 11's figures.
    UpToDateWarm,
    /// The first call of a fresh process (validation plus the check), on a
    /// connection on which nothing ran: the call pays for the schema load.
    FirstCall,
    /// The first call of a fresh process, the schema loaded first (not
    /// timed), building the contender's migration list timed with the call
    /// (as issue 11 measured rusqlite_migration's first call). Issue 11's
    /// figures.
    FirstCallLoaded,
    /// Undoing every migration.
    RollbackAll,
}

impl Workload {
    /// Every workload, in table order.
    pub const ALL: [Workload; 6] = [
        Workload::Apply,
        Workload::UpToDate,
        Workload::UpToDateWarm,
        Workload::FirstCall,
        Workload::FirstCallLoaded,
        Workload::RollbackAll,
    ];

    /// Whether the schema is loaded before the (first) timed call.
    pub(crate) fn schema_loaded(self) -> bool {
        matches!(self, Workload::UpToDateWarm | Workload::FirstCallLoaded)
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            Workload::Apply => "apply",
            Workload::UpToDate => "up-to-date check (loads schema)",
            Workload::UpToDateWarm => "up-to-date check (warm connection)",
            Workload::FirstCall => "first call in a process (loads schema)",
            Workload::FirstCallLoaded => "first call in a process (schema loaded, setup timed)",
            Workload::RollbackAll => "rollback all",
        }
    }
}

/// The migrations of one size: `t_i` created and filled, and dropped.
///
/// The strings are leaked, once per size and process: `&'static str`, as the
/// string literals of an application's migrations are, so that building a
/// contender (timed in the first call with the schema loaded) copies none.
pub struct Workset {
    up: Vec<&'static str>,
    down: Vec<&'static str>,
    names: Vec<&'static str>,
}

impl Workset {
    /// N migrations, `CREATE TABLE t_i(...); INSERT INTO t_i(v) VALUES ('x');`.
    pub fn new(n: usize) -> Workset {
        Workset {
            up: (0..n).map(|i| leak(migrations::up(i))).collect(),
            down: (0..n).map(|i| leak(migrations::down(i))).collect(),
            names: (0..n).map(|i| leak(migrations::name(i))).collect(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.up.len()
    }
}

fn leak(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

/// A contender, ready to run against a connection. Building it is not timed.
pub(crate) enum Prepared<'w> {
    FloorA,
    FloorB,
    RusqliteMigration(rusqlite_migration::Migrations<'w>),
    Refinery(refinery::Runner),
    MigrateCore(MigrateCore),
}

/// How a migrate-core contender gets its `Migrator`.
pub(crate) enum MigrateCore {
    /// Built once with `.add`, reused for every call.
    Reused(Box<Migrator>),
    /// `Migrator::new().set(set)` for every call, of a link-time set.
    PerCall { set: String },
}

impl MigrateCore {
    /// The `Migrator` of one call: the reused one, or a fresh one built
    /// here, inside the timed call, as the README writes it.
    fn migrator(&self) -> Cow<'_, Migrator> {
        match self {
            MigrateCore::Reused(migrator) => Cow::Borrowed(migrator),
            MigrateCore::PerCall { set } => Cow::Owned(Migrator::new().set(set.as_str())),
        }
    }
}

impl<'w> Prepared<'w> {
    pub(crate) fn new(contender: Contender, work: &'w Workset) -> Result<Prepared<'w>> {
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
            Contender::MigrateCoreLinked => Prepared::MigrateCore(MigrateCore::PerCall {
                set: linked_set(work.len()),
            }),
            Contender::MigrateCoreAdd => {
                let mut migrator = Migrator::new().set(ADD_SET);
                for (i, ((name, up), down)) in
                    work.names.iter().zip(&work.up).zip(&work.down).enumerate()
                {
                    let (up, down) = (*up, *down);
                    let id = u32::try_from(i)?;
                    migrator = migrator
                        .add(id, *name, move |tx: &Transaction| tx.execute_batch(up))
                        .add_rollback(id, move |tx: &Transaction| tx.execute_batch(down));
                }
                Prepared::MigrateCore(MigrateCore::Reused(Box::new(migrator)))
            }
        })
    }

    /// Applies every migration.
    pub(crate) fn apply(&self, conn: &mut Connection, work: &Workset) -> Result<()> {
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
            Prepared::MigrateCore(mc) => {
                let report = mc.migrator().migrate(conn)?;
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
    pub(crate) fn check(&self, conn: &mut Connection, work: &Workset) -> Result<()> {
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
            Prepared::MigrateCore(mc) => {
                let report = mc.migrator().migrate(conn)?;
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
    pub(crate) fn rollback_all(&self, conn: &mut Connection, work: &Workset) -> Result<()> {
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
            Prepared::MigrateCore(mc) => {
                let report = mc.migrator().rollback_all(conn)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contender_keys_round_trip() {
        for c in Contender::ALL {
            assert_eq!(Contender::from_key(c.key()), Some(c));
        }
    }
}
