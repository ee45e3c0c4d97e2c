//! `Migrator`: the configurable entry point.

use std::panic::Location as CallerLocation;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use rusqlite::{Connection, Transaction};

use crate::adopt::{self, Legacy};
use crate::db::Db;
use crate::drift::Drift;
use crate::error::{Direction, Error, Location, RegistryProblem};
use crate::hash;
use crate::history::{self, Table};
use crate::observe::{Event, Observer};
use crate::private::IntoOutcome;
use crate::registry::{self, Candidate, DynStep, DynamicStep, Identity, Plan};
use crate::report::{
    AppliedMigration, DryRun, MigrationInfo, MigrationState, MigrationStatus, Report, Resolution,
};
use crate::runner::{self, Goal, Settings};
use crate::schema::SchemaChange;

/// How long a call waits for another connection's write lock by default.
///
/// ```
/// assert_eq!(migrate_core::DEFAULT_LOCK_TIMEOUT.as_secs(), 120);
/// ```
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs the migrations of one set against a connection, with its own
/// configuration.
///
/// [`Migrate`](crate::Migrate) on `Connection` is `Migrator::new()` with the
/// defaults: the default set, the `migrations` table, `user_version`
/// mirroring on, a lock timeout of two minutes, edited migrations refused.
///
/// # What a call does to the connection
/// Every call hands the connection back as it found it, whether it succeeds
/// or fails: no transaction open, the same busy timeout, `foreign_keys`,
/// `query_only` and `writable_schema`, and the same attached databases.
/// Three things SQLite cannot report, so they cannot be put back:
/// - a custom busy handler (`Connection::busy_handler`): for the call, the
///   runner waits through a busy handler of its own, bounded by
///   [`lock_timeout`](Self::lock_timeout); afterwards a plain busy timeout
///   is restored, a custom handler is removed. Install it again after
///   migrating, or use `Connection::busy_timeout`, which is restored;
/// - an authorizer (`Connection::authorizer`) and a commit hook
///   (`Connection::commit_hook`): while a migration runs, the runner's own
///   enforce what a migration may not do, and they are removed afterwards.
///   A step must leave them in place: one that takes either away fails
///   ([`Error::Forbidden`]), undone with its transaction. Calls that run no
///   migration (`status`, `baseline`, `adopt`, `resolve_interrupted`) leave
///   the application's in place: a commit hook refusing their COMMIT fails
///   them, nothing kept;
/// - a progress handler is left in place: if it interrupts the call, the
///   call fails cleanly (the step is rolled back, the connection restored).
///   One that interrupts every statement from some moment on (a deadline)
///   can also interrupt the putting back of `journal_mode` after a run that
///   succeeded: an in-memory journal is then left on disk (`DELETE`).
///
/// The application's own SQL functions and collations (a `lower`, a
/// `strftime`, a `NOCASE` of its own) change nothing migrate-core writes or
/// reads: its statements call none of SQLite's functions.
///
/// A connection inside a transaction is refused ([`Error::InTransaction`]),
/// as are a read-only one ([`Error::ReadOnly`]) and one whose
/// `journal_mode` is `OFF` ([`Error::NoJournal`]) when there is work to do.
///
/// ```
/// use migrate_core::Migrator;
/// use migrate_core::rusqlite::{Connection, Transaction};
///
/// let migrator = Migrator::new()
///     .set("cache")
///     .table("cache_migrations")
///     .add(0, "create_entries", |tx: &Transaction| {
///         tx.execute_batch("CREATE TABLE entries (key TEXT PRIMARY KEY, value BLOB)")
///     })
///     .add_rollback(0, |tx: &Transaction| tx.execute_batch("DROP TABLE entries"));
///
/// let mut conn = Connection::open_in_memory()?;
/// let report = migrator.migrate(&mut conn)?;
/// assert_eq!(report.ids(), vec![0]);
/// assert_eq!(migrator.applied_migrations(&conn)?[0].name, "create_entries");
/// migrator.rollback_migration(&mut conn)?;
/// assert!(migrator.applied_migrations(&conn)?.is_empty());
/// # Ok::<(), migrate_core::Error>(())
/// ```
#[derive(Clone)]
pub struct Migrator {
    set: String,
    table: Option<String>,
    user_version: bool,
    lock_timeout: Duration,
    verify_applied: bool,
    drift: Drift,
    extra: Vec<Candidate>,
    observer: Option<Observer>,
    prepared: OnceLock<Result<Arc<Prepared>, Vec<RegistryProblem>>>,
}

impl Default for Migrator {
    fn default() -> Self {
        Migrator::new()
    }
}

impl std::fmt::Debug for Migrator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Migrator")
            .field("set", &self.set)
            .field("table", &self.table_name())
            .field("user_version", &self.user_version)
            .field("lock_timeout", &self.lock_timeout)
            .field("verify_applied", &self.verify_applied)
            .field("added_at_run_time", &self.extra.len())
            .finish()
    }
}

impl Migrator {
    /// The default set with the default configuration.
    ///
    /// ```
    /// let migrator = migrate_core::Migrator::new();
    /// # let _ = migrator;
    /// ```
    pub fn new() -> Self {
        Migrator {
            set: String::new(),
            table: None,
            user_version: true,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            verify_applied: true,
            drift: Drift::Ignore,
            extra: Vec::new(),
            observer: None,
            prepared: OnceLock::new(),
        }
    }

    fn changed(mut self) -> Self {
        self.prepared = OnceLock::new();
        self
    }

    /// Runs the migrations of the named set (`#[migration(n, set = "…")]`)
    /// instead of the default set. Its tracking table is `migrations_<set>`
    /// unless [`table`](Self::table) says otherwise, and `user_version` is
    /// never touched for it.
    ///
    /// ```
    /// let migrator = migrate_core::Migrator::new().set("cache");
    /// # let _ = migrator;
    /// ```
    pub fn set(mut self, set: impl Into<String>) -> Self {
        self.set = set.into();
        self.changed()
    }

    /// Names the tracking table (any name: it is always quoted).
    ///
    /// ```
    /// let migrator = migrate_core::Migrator::new().table("schema history");
    /// # let _ = migrator;
    /// ```
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.table = Some(table.into());
        // The plan's history chain starts from the table's name.
        self.changed()
    }

    /// Whether `PRAGMA user_version` mirrors the number of applied migrations
    /// of the default set (on by default; never done for named sets).
    ///
    /// ```
    /// let migrator = migrate_core::Migrator::new().user_version(false);
    /// # let _ = migrator;
    /// ```
    pub fn user_version(mut self, mirror: bool) -> Self {
        self.user_version = mirror;
        self
    }

    /// How long to wait for another connection's write lock, for example a
    /// second process migrating the same file, before failing with
    /// [`Error::Locked`]. Two minutes by default.
    ///
    /// It bounds the call's waiting in all (the up-to-date read, taking
    /// the write lock, every `COMMIT`, waiting for another process's step
    /// outside a transaction), whatever the connection's own busy timeout;
    /// time spent running migrations does not count, so a migration that
    /// runs for longer may still wait for a reader at its `COMMIT`. One wait
    /// has a timeout of its own: recording the outcome of a step outside a
    /// transaction once it has run, which would otherwise stay marked as in
    /// progress.
    ///
    /// ```
    /// let migrator = migrate_core::Migrator::new().lock_timeout(std::time::Duration::from_secs(5));
    /// # let _ = migrator;
    /// ```
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// The set, its tracking table, and what was added at run time, for
    /// the CLI (`new`, `renumber`, the JSON documents).
    #[cfg(feature = "cli")]
    pub(crate) fn cli_view(&self) -> (&str, String, &[Candidate]) {
        (&self.set, self.table_name(), &self.extra)
    }

    /// The configured lock timeout (the CLI's backup and the lint's copy
    /// wait no longer).
    #[cfg(any(feature = "cli", feature = "lint"))]
    pub(crate) fn configured_lock_timeout(&self) -> Duration {
        self.lock_timeout
    }

    /// What a call does about a schema changed outside migrations since
    /// they last ran (an `ALTER TABLE` by hand, another tool): nothing
    /// ([`Drift::Ignore`], the default), report it through the observer and
    /// `tracing` and carry on ([`Drift::Warn`]), or refuse before any change
    /// ([`Drift::Refuse`], [`Error::SchemaDrift`]). Looking costs one read of
    /// SQLite's schema cookie on the up-to-date path; the object-by-object
    /// comparison runs only when the cookie moved. A run that looks records
    /// the schema it leaves in a table `migrate_core_schema` (and from then
    /// on every set's runs keep it up to date, so one set's migrations are
    /// never drift to another); with the default, the file holds no such
    /// table. See also
    /// [`check_drift`](Self::check_drift).
    ///
    /// ```
    /// use migrate_core::{Drift, Error, Migrator, rusqlite::{Connection, Transaction}};
    /// let m = Migrator::new().set("docs_drift").drift(Drift::Refuse)
    ///     .add(0, "a", |tx: &Transaction| tx.execute_batch("CREATE TABLE a (x)"));
    /// let mut conn = Connection::open_in_memory()?;
    /// m.migrate(&mut conn)?;
    /// conn.execute_batch("ALTER TABLE a ADD COLUMN by_hand TEXT")?;
    /// assert!(matches!(m.migrate(&mut conn), Err(Error::SchemaDrift { .. })));
    /// # Ok::<(), migrate_core::Error>(())
    /// ```
    pub fn drift(mut self, policy: Drift) -> Self {
        self.drift = policy;
        self
    }

    /// Whether an applied migration that was renamed or edited since is an
    /// error ([`Error::Modified`], the default) or accepted.
    ///
    /// ```
    /// let migrator = migrate_core::Migrator::new().verify_applied(false);
    /// # let _ = migrator;
    /// ```
    pub fn verify_applied(mut self, verify: bool) -> Self {
        self.verify_applied = verify;
        self
    }

    /// Calls `observer` with an [`Event`] as each step starts, finishes or
    /// fails, to drive a progress bar or logs. (With the `tracing` feature,
    /// each step is also a `migration` span with its id, name, direction and
    /// duration; with the `log` feature, the same events are `log` records.)
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use migrate_core::{Event, Migrator, rusqlite::{Connection, Transaction}};
    ///
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = Arc::clone(&seen);
    /// let m = Migrator::new()
    ///     .set("docs_observer")
    ///     .add(0, "a", |tx: &Transaction| tx.execute_batch("CREATE TABLE a (x)"))
    ///     .observer(move |event: &Event| {
    ///         if let Event::Finished { id, .. } = event {
    ///             log.lock().unwrap().push(*id);
    ///         }
    ///     });
    /// m.migrate(&mut Connection::open_in_memory()?)?;
    /// assert_eq!(*seen.lock().unwrap(), vec![0]);
    /// # Ok::<(), migrate_core::Error>(())
    /// ```
    pub fn observer(mut self, observer: impl Fn(&Event<'_>) + Send + Sync + 'static) -> Self {
        self.observer = Some(Arc::new(observer));
        self
    }

    /// Adds a migration at run time: a function or closure taking
    /// `&Transaction` and returning `()`, `rusqlite::Result<()>` or
    /// `Result<(), E>`. It joins the set's linked migrations under the same
    /// sequence rule. Its checksum covers its id and name only: edits to a
    /// closure's code cannot be detected.
    ///
    /// ```
    /// use migrate_core::rusqlite::Transaction;
    /// let migrator = migrate_core::Migrator::new()
    ///     .set("docs_add")
    ///     .add(0, "init", |tx: &Transaction| tx.execute_batch("CREATE TABLE t (x)"));
    /// assert!(migrator.validate().is_ok());
    /// ```
    #[track_caller]
    pub fn add<F, R>(mut self, id: u32, name: impl Into<String>, run: F) -> Self
    where
        F: Fn(&Transaction<'_>) -> R + Send + Sync + 'static,
        R: IntoOutcome,
    {
        let name = name.into();
        let checksum = hash::checksum(format!("run-time migration {id} {name}").as_bytes());
        let identity = Identity {
            link: hash::link(id, &name, &checksum),
            name,
            checksum,
        };
        self.extra.push(Candidate::Up {
            id,
            step: runtime_step(run, CallerLocation::caller(), Some(identity)),
        });
        self.changed()
    }

    /// Adds the rollback of migration `id` at run time.
    ///
    /// ```
    /// use migrate_core::rusqlite::Transaction;
    /// let migrator = migrate_core::Migrator::new()
    ///     .set("docs_add_rollback")
    ///     .add(0, "init", |tx: &Transaction| tx.execute_batch("CREATE TABLE t (x)"))
    ///     .add_rollback(0, |tx: &Transaction| tx.execute_batch("DROP TABLE t"));
    /// assert!(migrator.validate().is_ok());
    /// ```
    #[track_caller]
    pub fn add_rollback<F, R>(mut self, id: u32, run: F) -> Self
    where
        F: Fn(&Transaction<'_>) -> R + Send + Sync + 'static,
        R: IntoOutcome,
    {
        self.extra.push(Candidate::Down {
            id,
            step: runtime_step(run, CallerLocation::caller(), None),
        });
        self.changed()
    }

    /// Adds a migration that runs outside any transaction, at run time: a
    /// function or closure taking `&Connection`, for what SQLite refuses
    /// inside a transaction (`VACUUM`, `PRAGMA journal_mode`). It is
    /// recorded as started before it runs and as done after; see
    /// [`resolve_interrupted`](Self::resolve_interrupted). The link-time
    /// form is `#[migration(n, transaction = false)]`.
    ///
    /// ```
    /// use migrate_core::rusqlite::{Connection, Transaction};
    /// let m = migrate_core::Migrator::new()
    ///     .set("docs_add_without_transaction")
    ///     .add(0, "init", |tx: &Transaction| tx.execute_batch("CREATE TABLE t (x)"))
    ///     .add_without_transaction(1, "compact", |conn: &Connection| conn.execute_batch("VACUUM"));
    /// let mut conn = Connection::open_in_memory()?;
    /// assert_eq!(m.migrate(&mut conn)?.ids(), vec![0, 1]);
    /// # Ok::<(), migrate_core::Error>(())
    /// ```
    #[track_caller]
    pub fn add_without_transaction<F, R>(mut self, id: u32, name: impl Into<String>, run: F) -> Self
    where
        F: Fn(&Connection) -> R + Send + Sync + 'static,
        R: IntoOutcome,
    {
        let name = name.into();
        let checksum = hash::checksum(format!("run-time migration {id} {name}").as_bytes());
        let identity = Identity {
            link: hash::link(id, &name, &checksum),
            name,
            checksum,
        };
        self.extra.push(Candidate::Up {
            id,
            step: autocommit_step(run, CallerLocation::caller(), Some(identity)),
        });
        self.changed()
    }

    /// Adds the rollback of migration `id`, outside any transaction, at run
    /// time (see [`add_without_transaction`](Self::add_without_transaction)).
    ///
    /// ```
    /// use migrate_core::rusqlite::{Connection, Transaction};
    /// let m = migrate_core::Migrator::new()
    ///     .set("docs_add_rollback_without_transaction")
    ///     .add(0, "wal", |tx: &Transaction| tx.execute_batch("CREATE TABLE t (x)"))
    ///     .add_rollback_without_transaction(0, |conn: &Connection| conn.execute_batch("DROP TABLE t; VACUUM"));
    /// assert!(m.validate().is_ok());
    /// ```
    #[track_caller]
    pub fn add_rollback_without_transaction<F, R>(mut self, id: u32, run: F) -> Self
    where
        F: Fn(&Connection) -> R + Send + Sync + 'static,
        R: IntoOutcome,
    {
        self.extra.push(Candidate::Down {
            id,
            step: autocommit_step(run, CallerLocation::caller(), None),
        });
        self.changed()
    }

    /// Records how a step outside a transaction that was interrupted
    /// ([`Error::Interrupted`]) ended: [`Resolution::Completed`] if its work
    /// is done, [`Resolution::NotRun`] if none of it took effect (fix a
    /// partial one by hand first). Returns the id it resolved, `None` when
    /// nothing was interrupted. `migrate()` then goes on as usual.
    ///
    /// ```
    /// # use migrate_core::{Migrator, Resolution, rusqlite::Connection};
    /// let m = Migrator::new().set("docs_resolve")
    ///     .add_without_transaction(0, "wal", |conn: &Connection| {
    ///         conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
    ///     });
    /// let mut conn = Connection::open_in_memory()?;
    /// assert_eq!(m.resolve_interrupted(&mut conn, Resolution::NotRun)?, None);
    /// # Ok::<(), migrate_core::Error>(())
    /// ```
    pub fn resolve_interrupted(
        &self,
        conn: &mut Connection,
        resolution: Resolution,
    ) -> Result<Option<u32>, Error> {
        let prepared = self.prepared()?;
        self.with_settings(&prepared.table, |s| {
            runner::in_write_transaction(conn, s, |tx| {
                let Some(marker) = history::interrupted(tx, s.table)? else {
                    return Ok(None);
                };
                runner::settle_in(
                    tx,
                    &prepared.plan,
                    s,
                    marker.id,
                    marker.direction,
                    resolution == Resolution::Completed,
                    // A person says what happened: what the file holds now
                    // is recorded.
                    None,
                )?;
                Ok(Some(marker.id))
            })
        })
    }

    /// The changes made to the schema outside migrations since they last
    /// ran, object by object, whatever the cookie says (the CLI's
    /// `verify --schema`); `None` when no run of migrations has recorded a
    /// schema yet (none looked for drift: see [`drift`](Self::drift)).
    ///
    /// ```
    /// use migrate_core::{Migrator, SchemaChange, rusqlite::{Connection, Transaction}};
    /// let m = Migrator::new().set("docs_check_drift")
    ///     .add(0, "a", |tx: &Transaction| tx.execute_batch("CREATE TABLE a (x)"));
    /// let mut conn = Connection::open_in_memory()?;
    /// assert_eq!(m.check_drift(&conn)?, None);
    /// m.clone().drift(migrate_core::Drift::Warn).migrate(&mut conn)?;
    /// assert_eq!(m.check_drift(&conn)?, Some(vec![]));
    /// conn.execute_batch("CREATE INDEX a_x ON a (x)")?;
    /// let changes = m.check_drift(&conn)?.unwrap_or_default();
    /// assert!(matches!(&changes[..], [SchemaChange::Added { name, .. }] if name == "a_x"));
    /// # Ok::<(), migrate_core::Error>(())
    /// ```
    pub fn check_drift(&self, conn: &Connection) -> Result<Option<Vec<SchemaChange>>, Error> {
        self.reading(conn, || crate::drift::full_changes(conn))
    }

    /// A read of `conn` within the lock timeout, as a run's reads are: a
    /// writer holding the file (a rollback journal's exclusive lock) is
    /// waited for within [`lock_timeout`](Self::lock_timeout), whatever the
    /// connection's own busy timeout, and is [`Error::Locked`] past it.
    fn reading<T>(
        &self,
        conn: &Connection,
        read: impl FnOnce() -> Result<T, Error>,
    ) -> Result<T, Error> {
        crate::sqlite::LockWait::around(conn, self.lock_timeout, |_| read())
    }

    fn table_name(&self) -> String {
        match (&self.table, self.set.as_str()) {
            (Some(table), _) => table.clone(),
            (None, "") => "migrations".to_owned(),
            // Neither `format!` nor `concat`: on the first call of a
            // process, their code is pages to fault in (perf: two of the
            // call's six page faults were `concat`'s), where `push_str` is
            // a copy.
            (None, set) => {
                let mut name = String::with_capacity("migrations_".len() + set.len());
                name.push_str("migrations_");
                name.push_str(set);
                name
            }
        }
    }

    /// The checked plan and the tracking table, computed once per
    /// `Migrator`; for a set of link-time migrations only, once per process
    /// (see [`shared`]), so that a `Migrator` built per call costs a lookup.
    fn prepared(&self) -> Result<Arc<Prepared>, Error> {
        self.prepared
            .get_or_init(|| {
                let table = self.table_name();
                if self.extra.is_empty() {
                    shared(&self.set, &table)
                } else {
                    Prepared::build(&self.set, &table, &self.extra)
                }
            })
            .clone()
            .map_err(|problems| Error::InvalidRegistry { problems })
    }

    /// Runs a libSQL run towards the goal `goal` picks from the plan.
    #[cfg(feature = "libsql")]
    pub(crate) fn run_remote(
        &self,
        remote: &crate::libsql::remote::Remote,
        goal: impl FnOnce(&registry::Plan) -> Result<Goal, Error>,
    ) -> Result<runner::Outcome, Error> {
        let prepared = self.prepared()?;
        let plan = &prepared.plan;
        let goal = goal(plan)?;
        self.with_settings(&prepared.table, |s| {
            runner::remote::run(remote, plan, s, goal)
        })
    }

    /// Waits on a libSQL database until it holds the whole set.
    #[cfg(feature = "libsql")]
    pub(crate) fn wait_remote(
        &self,
        remote: &crate::libsql::remote::Remote,
        timeout: Duration,
    ) -> Result<(), Error> {
        let prepared = self.prepared()?;
        let plan = &prepared.plan;
        self.with_settings(&prepared.table, |s| {
            let budget = crate::sqlite::Budget::new(timeout);
            runner::wait_while_behind(plan, &budget, || runner::how_far_behind(remote, plan, s))?;
            runner::remote::until_schema_readable(remote, &budget)
        })
    }

    /// The history check of a run, refusing what `migrate` would refuse.
    #[cfg(feature = "libsql")]
    pub(crate) fn check_on(&self, conn: &dyn Db) -> Result<(), Error> {
        self.validate()?;
        self.pending_on(conn).map(|_| ())
    }

    fn with_settings<T>(&self, table: &Table, f: impl FnOnce(&Settings<'_>) -> T) -> T {
        let settings = Settings {
            table,
            user_version: self.user_version && self.set.is_empty(),
            lock_timeout: self.lock_timeout,
            verify_applied: self.verify_applied,
            observer: self.observer.as_ref(),
            dry_run: false,
            drift: self.drift,
        };
        f(&settings)
    }

    /// Checks the sequence rule for the whole registry and this set, without
    /// touching any database. Every problem is listed with its file and line.
    ///
    /// ```
    /// let result = migrate_core::Migrator::new().set("no_such_set").validate();
    /// assert!(matches!(result, Err(migrate_core::Error::InvalidRegistry { .. })));
    /// ```
    pub fn validate(&self) -> Result<(), Error> {
        registry::validate(&self.set, &self.extra)
            .map_err(|problems| Error::InvalidRegistry { problems })
    }

    /// Applies every pending migration, in order.
    ///
    /// ```
    /// # use migrate_core::{Migrator, rusqlite::{Connection, Transaction}};
    /// let m = Migrator::new().set("docs_migrate")
    ///     .add(0, "a", |tx: &Transaction| tx.execute_batch("CREATE TABLE a (x)"));
    /// let mut conn = Connection::open_in_memory()?;
    /// assert_eq!(m.migrate(&mut conn)?.ids(), vec![0]);
    /// assert!(m.migrate(&mut conn)?.is_empty());
    /// # Ok::<(), migrate_core::Error>(())
    /// ```
    pub fn migrate(&self, conn: &mut Connection) -> Result<Report, Error> {
        let prepared = self.prepared()?;
        let plan = &prepared.plan;
        let last = plan.len() - 1;
        self.with_settings(&prepared.table, |s| {
            runner::run(conn, plan, s, Goal::UpTo(last))
        })
        .map(|o| o.report)
    }

    /// Applies every pending migration inside one transaction, then rolls it
    /// all back: what `migrate` would do, whether it would succeed, and how
    /// long each step takes, with nothing kept. A `foreign_keys = off`
    /// migration needs a transaction of its own, so the dry run stops before
    /// the first one that is not first ([`DryRun::stopped_before`](crate::DryRun::stopped_before)).
    ///
    /// ```
    /// # use migrate_core::{Migrator, rusqlite::{Connection, Transaction}};
    /// let m = Migrator::new().set("docs_dry_run")
    ///     .add(0, "a", |tx: &Transaction| tx.execute_batch("CREATE TABLE a (x)"))
    ///     .add(1, "b", |tx: &Transaction| tx.execute_batch("CREATE TABLE oops"));
    /// let mut conn = Connection::open_in_memory()?;
    /// let dry = m.dry_run(&mut conn)?;
    /// assert_eq!(dry.steps.len(), 1);
    /// assert!(matches!(dry.failure, Some(migrate_core::Error::Failed { id: 1, .. })));
    /// assert!(m.applied_migrations(&conn)?.is_empty(), "nothing was kept");
    /// # Ok::<(), migrate_core::Error>(())
    /// ```
    pub fn dry_run(&self, conn: &mut Connection) -> Result<DryRun, Error> {
        let prepared = self.prepared()?;
        let plan = &prepared.plan;
        let last = plan.len() - 1;
        let outcome = self.with_settings(&prepared.table, |s| {
            let settings = Settings {
                dry_run: true,
                ..*s
            };
            runner::run(conn, plan, &settings, Goal::UpTo(last))
        })?;
        Ok(DryRun {
            steps: outcome.report.steps,
            failure: outcome.failure,
            stopped_before: outcome.stopped_before,
        })
    }

    /// Applies pending migrations up to and including `target`. It never
    /// rolls back: a database already past `target` is left as it is.
    ///
    /// ```
    /// # use migrate_core::{Migrator, rusqlite::{Connection, Transaction}};
    /// let m = Migrator::new().set("docs_migrate_to")
    ///     .add(0, "a", |tx: &Transaction| tx.execute_batch("CREATE TABLE a (x)"))
    ///     .add(1, "b", |tx: &Transaction| tx.execute_batch("CREATE TABLE b (x)"));
    /// let mut conn = Connection::open_in_memory()?;
    /// assert_eq!(m.migrate_to(&mut conn, 0)?.ids(), vec![0]);
    /// assert_eq!(m.pending_migrations(&conn)?.len(), 1);
    /// # Ok::<(), migrate_core::Error>(())
    /// ```
    pub fn migrate_to(&self, conn: &mut Connection, target: u32) -> Result<Report, Error> {
        let prepared = self.prepared()?;
        let plan = &prepared.plan;
        plan.check_target(target)?;
        self.with_settings(&prepared.table, |s| {
            runner::run(conn, plan, s, Goal::UpTo(target))
        })
        .map(|o| o.report)
    }

    /// Undoes the newest applied migration with its rollback, atomically with
    /// the removal of its tracking row. `Ok(None)` when nothing is applied;
    /// [`Error::NoRollback`] when it has no rollback.
    ///
    /// ```
    /// # use migrate_core::{Migrator, rusqlite::{Connection, Transaction}};
    /// let m = Migrator::new().set("docs_rollback")
    ///     .add(0, "a", |tx: &Transaction| tx.execute_batch("CREATE TABLE a (x)"))
    ///     .add_rollback(0, |tx: &Transaction| tx.execute_batch("DROP TABLE a"));
    /// let mut conn = Connection::open_in_memory()?;
    /// m.migrate(&mut conn)?;
    /// assert_eq!(m.rollback_migration(&mut conn)?.map(|r| r.id), Some(0));
    /// assert_eq!(m.rollback_migration(&mut conn)?, None);
    /// # Ok::<(), migrate_core::Error>(())
    /// ```
    pub fn rollback_migration(
        &self,
        conn: &mut Connection,
    ) -> Result<Option<AppliedMigration>, Error> {
        self.roll_back_last(conn)
            .map(|o| o.removed.into_iter().next())
    }

    /// [`rollback_migration`](Self::rollback_migration), reporting the step
    /// with its time, as the CLI's `down` shows it.
    #[cfg(feature = "cli")]
    pub(crate) fn rollback_last_step(&self, conn: &mut Connection) -> Result<Report, Error> {
        self.roll_back_last(conn).map(|o| o.report)
    }

    /// The run that undoes the newest applied migration.
    fn roll_back_last(&self, conn: &mut Connection) -> Result<runner::Outcome, Error> {
        let prepared = self.prepared()?;
        let plan = &prepared.plan;
        self.with_settings(&prepared.table, |s| {
            runner::run(conn, plan, s, Goal::DownLast)
        })
    }

    /// Undoes applied migrations, newest first, until `target` is the newest
    /// applied one. Every one of them must have a rollback, or nothing runs.
    ///
    /// ```
    /// # use migrate_core::{Migrator, rusqlite::{Connection, Transaction}};
    /// let m = Migrator::new().set("docs_rollback_to")
    ///     .add(0, "a", |tx: &Transaction| tx.execute_batch("CREATE TABLE a (x)"))
    ///     .add(1, "b", |tx: &Transaction| tx.execute_batch("CREATE TABLE b (x)"))
    ///     .add_rollback(1, |tx: &Transaction| tx.execute_batch("DROP TABLE b"));
    /// let mut conn = Connection::open_in_memory()?;
    /// m.migrate(&mut conn)?;
    /// assert_eq!(m.rollback_to(&mut conn, 0)?.ids(), vec![1]);
    /// # Ok::<(), migrate_core::Error>(())
    /// ```
    pub fn rollback_to(&self, conn: &mut Connection, target: u32) -> Result<Report, Error> {
        let prepared = self.prepared()?;
        let plan = &prepared.plan;
        plan.check_target(target)?;
        self.with_settings(&prepared.table, |s| {
            runner::run(conn, plan, s, Goal::DownTo(Some(target)))
        })
        .map(|o| o.report)
    }

    /// Undoes every applied migration, newest first. Every one of them must
    /// have a rollback, or nothing runs.
    ///
    /// ```
    /// # use migrate_core::{Migrator, rusqlite::{Connection, Transaction}};
    /// let m = Migrator::new().set("docs_rollback_all")
    ///     .add(0, "a", |tx: &Transaction| tx.execute_batch("CREATE TABLE a (x)"))
    ///     .add_rollback(0, |tx: &Transaction| tx.execute_batch("DROP TABLE a"));
    /// let mut conn = Connection::open_in_memory()?;
    /// m.migrate(&mut conn)?;
    /// assert_eq!(m.rollback_all(&mut conn)?.ids(), vec![0]);
    /// # Ok::<(), migrate_core::Error>(())
    /// ```
    pub fn rollback_all(&self, conn: &mut Connection) -> Result<Report, Error> {
        let prepared = self.prepared()?;
        let plan = &prepared.plan;
        self.with_settings(&prepared.table, |s| {
            runner::run(conn, plan, s, Goal::DownTo(None))
        })
        .map(|o| o.report)
    }

    /// Records migrations `0..=through` as applied without running them, for
    /// a database whose schema was built by hand or by another tool. Refused
    /// when the set already has history.
    ///
    /// ```
    /// # use migrate_core::{Migrator, rusqlite::{Connection, Transaction}};
    /// let m = Migrator::new().set("docs_baseline")
    ///     .add(0, "a", |tx: &Transaction| tx.execute_batch("CREATE TABLE a (x)"))
    ///     .add(1, "b", |tx: &Transaction| tx.execute_batch("CREATE TABLE b (x)"));
    /// let mut conn = Connection::open_in_memory()?;
    /// conn.execute_batch("CREATE TABLE a (x)")?; // built by hand
    /// m.baseline(&mut conn, 0)?;
    /// assert_eq!(m.migrate(&mut conn)?.ids(), vec![1]);
    /// # Ok::<(), migrate_core::Error>(())
    /// ```
    pub fn baseline(&self, conn: &mut Connection, through: u32) -> Result<(), Error> {
        let prepared = self.prepared()?;
        let plan = &prepared.plan;
        self.with_settings(&prepared.table, |s| {
            runner::baseline(conn, plan, s, through)
        })
    }

    /// Adopts a database that another tool built: records its applied
    /// migrations as ours, mapped and checked as [`Legacy`] describes, in one
    /// transaction, keeping their timestamps where the tool stored them. A
    /// count, name or version that does not line up is
    /// [`Error::CannotAdopt`], listing every mismatch with what to do;
    /// nothing is changed then. The other tool's table is only read.
    ///
    /// Made to sit in start-up code before [`migrate`](Self::migrate): on a
    /// database it has already adopted, or that this library already
    /// manages in agreement with the tool's record, and on a new, empty
    /// database, it changes nothing and returns `Ok(vec![])`. Where the
    /// tool's record and this set's history disagree (the tool migrated the
    /// database again after the adoption, or a name differs), it is refused.
    ///
    /// ```
    /// # use migrate_core::{Legacy, Migrator, rusqlite::{Connection, Transaction}};
    /// let m = Migrator::new()
    ///     .add(0, "create_users", |tx: &Transaction| tx.execute_batch("CREATE TABLE users (id)"))
    ///     .add(1, "create_posts", |tx: &Transaction| tx.execute_batch("CREATE TABLE posts (id)"));
    /// let mut conn = Connection::open_in_memory()?;
    /// // A hand-written runner applied its file 1 and set user_version to 1.
    /// conn.execute_batch("CREATE TABLE users (id); PRAGMA user_version = 1;")?;
    /// let adopted = m.adopt(&mut conn, Legacy::UserVersion { first_file: 1 })?;
    /// assert_eq!(adopted.len(), 1);
    /// assert_eq!(m.migrate(&mut conn)?.ids(), vec![1]);
    /// // On every later start: nothing to adopt, nothing changed.
    /// assert!(m.adopt(&mut conn, Legacy::UserVersion { first_file: 1 })?.is_empty());
    /// # Ok::<(), migrate_core::Error>(())
    /// ```
    pub fn adopt(
        &self,
        conn: &mut Connection,
        legacy: Legacy,
    ) -> Result<Vec<AppliedMigration>, Error> {
        let prepared = self.prepared()?;
        self.with_settings(&prepared.table, |s| {
            let request = adopt::Request {
                plan: &prepared.plan,
                table: s.table,
                mirror_user_version: s.user_version,
                verify_applied: s.verify_applied,
                legacy: &legacy,
            };
            runner::write_unless(
                conn,
                s,
                || Ok(adopt::nothing_to_do(conn, &request)?.then(Vec::new)),
                |tx| adopt::adopt(tx, &request),
            )
        })
    }

    /// The applied migrations, in id order: the tracking table's rows, but
    /// for the row of a step outside a transaction that was started (or
    /// whose rollback was started) and never recorded as finished, which
    /// [`status`](Self::status) reports as `Interrupted`. Empty when there
    /// is no tracking table yet.
    ///
    /// ```
    /// # use migrate_core::{Migrator, rusqlite::Connection};
    /// let conn = Connection::open_in_memory()?;
    /// assert!(Migrator::new().applied_migrations(&conn)?.is_empty());
    /// # Ok::<(), migrate_core::Error>(())
    /// ```
    pub fn applied_migrations(&self, conn: &Connection) -> Result<Vec<AppliedMigration>, Error> {
        self.reading(conn, || self.applied_on(conn))
    }

    /// [`applied_migrations`](Self::applied_migrations) on any backend.
    pub(crate) fn applied_on(&self, conn: &dyn Db) -> Result<Vec<AppliedMigration>, Error> {
        Ok(self
            .rows_on(conn)?
            .into_iter()
            .filter(|row| row.chain != history::STARTED && row.chain != history::ROLLING_BACK)
            .map(|row| row.applied)
            .collect())
    }

    /// Every row of the tracking table, a step marked in progress included
    /// (its id is taken: `renumber` keeps it).
    #[cfg(feature = "cli")]
    pub(crate) fn recorded_migrations(
        &self,
        conn: &Connection,
    ) -> Result<Vec<AppliedMigration>, Error> {
        self.reading(conn, || {
            Ok(self
                .rows_on(conn)?
                .into_iter()
                .map(|row| row.applied)
                .collect())
        })
    }

    fn rows_on(&self, conn: &dyn Db) -> Result<Vec<history::Row>, Error> {
        let table = Table::new(&self.table_name());
        self.with_settings(&table, |s| history::load(conn, s.table))
            .map(Option::unwrap_or_default)
    }

    /// The newest row of the tracking table, if any.
    ///
    /// ```
    /// # use migrate_core::{Migrator, rusqlite::Connection};
    /// let conn = Connection::open_in_memory()?;
    /// assert!(Migrator::new().last_applied_migration(&conn)?.is_none());
    /// # Ok::<(), migrate_core::Error>(())
    /// ```
    pub fn last_applied_migration(
        &self,
        conn: &Connection,
    ) -> Result<Option<AppliedMigration>, Error> {
        Ok(self.applied_migrations(conn)?.pop())
    }

    /// What [`migrate`](Self::migrate) would apply, checked the same way
    /// (unknown, edited or unmanaged history is an error here too).
    ///
    /// ```
    /// # use migrate_core::{Migrator, rusqlite::{Connection, Transaction}};
    /// let m = Migrator::new().set("docs_pending")
    ///     .add(0, "a", |tx: &Transaction| tx.execute_batch("CREATE TABLE a (x)"));
    /// let conn = Connection::open_in_memory()?;
    /// assert_eq!(m.pending_migrations(&conn)?[0].name, "a");
    /// # Ok::<(), migrate_core::Error>(())
    /// ```
    pub fn pending_migrations(&self, conn: &Connection) -> Result<Vec<MigrationInfo>, Error> {
        self.reading(conn, || self.pending_on(conn))
    }

    /// [`pending_migrations`](Self::pending_migrations) on any backend.
    pub(crate) fn pending_on(&self, conn: &dyn Db) -> Result<Vec<MigrationInfo>, Error> {
        let prepared = self.prepared()?;
        let plan = &prepared.plan;
        let applied = self.with_settings(&prepared.table, |s| -> Result<usize, Error> {
            match history::checked(conn, plan, s.table, s.verify_applied, false)? {
                Some(history) => Ok(history.applied),
                None => {
                    history::check_managed(conn, &plan.set, s.table)?;
                    Ok(0)
                }
            }
        })?;
        Ok(plan.migrations()[applied..]
            .iter()
            .map(|m| MigrationInfo {
                id: m.id,
                name: m.name().to_owned(),
                checksum: m.checksum().to_owned(),
                location: m.up.location(),
                has_rollback: m.down.is_some(),
            })
            .collect())
    }

    /// Waits until the database holds every migration of the set that this
    /// binary knows, for instances that must not migrate themselves: an
    /// application on a read-only connection, on a LiteFS replica, or
    /// started beside the one instance that runs [`migrate`](Self::migrate).
    ///
    /// It only reads (a read-only connection is fine; no write lock is
    /// asked for), looking again after a short pause that grows to 200 ms.
    /// Each look is the up-to-date check of `migrate`, so a history that
    /// `migrate` would refuse is refused here at once, not after the
    /// timeout: [`Error::Modified`], [`Error::DatabaseAhead`] (a newer
    /// build migrated it: this binary is the old one),
    /// [`Error::UnmanagedDatabase`], a corrupt or foreign tracking table.
    /// A step outside a transaction that another process is running
    /// ([`Error::Interrupted`] to `migrate`) is waited for like pending
    /// work. Once current, the schema is checked for drift as
    /// [`drift`](Self::drift) says. After `timeout` (which also bounds
    /// waiting for a writer's lock) it is [`Error::NotCurrent`], saying how
    /// far the database got. A connection inside a transaction is
    /// refused ([`Error::InTransaction`]): its snapshot would never change.
    ///
    /// ```
    /// use std::time::Duration;
    /// use migrate_core::{Error, Migrator};
    /// use migrate_core::rusqlite::{Connection, OpenFlags, Transaction};
    ///
    /// let m = Migrator::new().set("docs_wait")
    ///     .add(0, "create_a", |tx: &Transaction| tx.execute_batch("CREATE TABLE a (x)"));
    /// let path = std::env::temp_dir().join(format!("docs_wait_{}.db", std::process::id()));
    /// let mut primary = Connection::open(&path)?;
    /// let replica = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    ///
    /// // Nobody has migrated yet: the waiter gives up after its timeout.
    /// let early = m.wait_until_current(&replica, Duration::from_millis(50));
    /// assert!(matches!(early, Err(Error::NotCurrent { applied: Some(0), known: 1, .. })));
    ///
    /// // The migrating instance (another process, usually on another node) runs...
    /// let migrator = m.clone();
    /// let writer = std::thread::spawn(move || migrator.migrate(&mut primary).map(|r| r.ids()));
    /// // ...and the waiter returns once its work is committed.
    /// m.wait_until_current(&replica, Duration::from_secs(60))?;
    /// assert_eq!(writer.join().unwrap()?, vec![0]);
    /// # drop(replica);
    /// # std::fs::remove_file(&path).ok();
    /// # Ok::<(), migrate_core::Error>(())
    /// ```
    pub fn wait_until_current(&self, conn: &Connection, timeout: Duration) -> Result<(), Error> {
        let prepared = self.prepared()?;
        self.with_settings(&prepared.table, |s| {
            runner::wait_until_current(conn, &prepared.plan, s, timeout)
        })
    }

    /// Every migration this binary knows and every one the database records,
    /// with where each stands. Edited and unknown migrations are reported,
    /// not refused; a corrupt or foreign tracking table is an error.
    ///
    /// ```
    /// # use migrate_core::{Migrator, MigrationState, rusqlite::{Connection, Transaction}};
    /// let m = Migrator::new().set("docs_status")
    ///     .add(0, "a", |tx: &Transaction| tx.execute_batch("CREATE TABLE a (x)"))
    ///     .add(1, "b", |tx: &Transaction| tx.execute_batch("CREATE TABLE b (x)"));
    /// let mut conn = Connection::open_in_memory()?;
    /// m.migrate_to(&mut conn, 0)?;
    /// let states: Vec<_> = m.status(&conn)?.into_iter().map(|s| s.state).collect();
    /// assert_eq!(states, vec![MigrationState::Applied, MigrationState::Pending]);
    /// # Ok::<(), migrate_core::Error>(())
    /// ```
    pub fn status(&self, conn: &Connection) -> Result<Vec<MigrationStatus>, Error> {
        self.reading(conn, || self.status_on(conn))
    }

    /// [`status`](Self::status) on any backend.
    pub(crate) fn status_on(&self, conn: &dyn Db) -> Result<Vec<MigrationStatus>, Error> {
        let prepared = self.prepared()?;
        let plan = &prepared.plan;
        let (rows, vouched) = self.with_settings(&prepared.table, |s| {
            history::for_report(conn, plan, s.table, s.verify_applied)
        })?;
        let mut lines = Vec::with_capacity(plan.migrations().len().max(rows.len()));
        for (index, migration) in plan.migrations().iter().enumerate() {
            let row = rows.get(index).map(|row| &row.applied);
            let state = match rows.get(index) {
                None => MigrationState::Pending,
                Some(stored) if stored.chain == history::STARTED => MigrationState::Interrupted {
                    direction: Direction::Up,
                },
                Some(stored) if stored.chain == history::ROLLING_BACK => {
                    MigrationState::Interrupted {
                        direction: Direction::Down,
                    }
                }
                Some(stored) if vouched || history::matches_plan(stored, migration) => {
                    MigrationState::Applied
                }
                Some(stored) => MigrationState::Modified {
                    applied_name: stored.applied.name.clone(),
                    applied_checksum: stored.applied.checksum.clone(),
                },
            };
            lines.push(MigrationStatus {
                id: migration.id,
                name: migration.name().to_owned(),
                state,
                applied_at: row.map(|row| row.applied_at.clone()),
                has_rollback: migration.down.is_some(),
            });
        }
        for row in rows.iter().skip(plan.migrations().len()) {
            lines.push(MigrationStatus {
                id: row.applied.id,
                name: row.applied.name.clone(),
                state: MigrationState::Unknown,
                applied_at: Some(row.applied.applied_at.clone()),
                has_rollback: false,
            });
        }
        Ok(lines)
    }
}

fn runtime_step<F, R>(
    run: F,
    caller: &'static CallerLocation<'static>,
    identity: Option<Identity>,
) -> Arc<DynamicStep>
where
    F: Fn(&Transaction<'_>) -> R + Send + Sync + 'static,
    R: IntoOutcome,
{
    Arc::new(DynamicStep {
        run: DynStep::Transaction(Arc::new(move |tx: &Transaction<'_>| run(tx).into_outcome())),
        location: Location {
            file: caller.file(),
            line: caller.line(),
            runtime: true,
        },
        identity,
    })
}

fn autocommit_step<F, R>(
    run: F,
    caller: &'static CallerLocation<'static>,
    identity: Option<Identity>,
) -> Arc<DynamicStep>
where
    F: Fn(&Connection) -> R + Send + Sync + 'static,
    R: IntoOutcome,
{
    Arc::new(DynamicStep {
        run: DynStep::Autocommit(Arc::new(move |conn: &Connection| run(conn).into_outcome())),
        location: Location {
            file: caller.file(),
            line: caller.line(),
            runtime: true,
        },
        identity,
    })
}

/// What a call needs besides the connection: the set's checked plan and its
/// tracking table (names and statements quoted once).
struct Prepared {
    plan: Plan,
    table: Table,
}

impl Prepared {
    fn build(
        set: &str,
        table: &str,
        extra: &[Candidate],
    ) -> Result<Arc<Prepared>, Vec<RegistryProblem>> {
        let plan = registry::plan(set, table, extra)?;
        Ok(Arc::new(Prepared {
            plan,
            table: Table::new(table),
        }))
    }
}

/// The plans of link-time sets, by set and table, built once per process:
/// applications build a `Migrator` where they migrate (per connection of a
/// pool, per request), and the registry does not change while they run.
fn shared(set: &str, table: &str) -> Result<Arc<Prepared>, Vec<RegistryProblem>> {
    type Cache = Vec<(String, String, Result<Arc<Prepared>, Vec<RegistryProblem>>)>;
    static CACHE: RwLock<Cache> = RwLock::new(Vec::new());
    let find = |cache: &Cache| {
        cache
            .iter()
            .find(|(s, t, _)| s == set && t == table)
            .map(|(_, _, prepared)| prepared.clone())
    };
    if let Some(found) = find(&CACHE.read().unwrap_or_else(PoisonError::into_inner)) {
        return found;
    }
    let mut cache = CACHE.write().unwrap_or_else(PoisonError::into_inner);
    if let Some(found) = find(&cache) {
        return found;
    }
    let prepared = Prepared::build(set, table, &[]);
    cache.push((set.to_owned(), table.to_owned(), prepared.clone()));
    prepared
}
