//! The same migrations on a libSQL server: `sqld` (a primary and its read
//! replicas), Turso, reached with the [`libsql`] crate.
//!
//! [`Migrator::libsql`] binds a migrator to a connection; its methods are
//! async, as `libsql`'s are, and keep every promise of a local run: one
//! `BEGIN IMMEDIATE` transaction on the primary, the history read again
//! inside it, each migration atomic with its tracking row, and the same
//! tracking table, checksums and chain, so that a database can move between
//! a local file and a server and keep its history. The same refusals
//! ([`Error::DatabaseAhead`], [`Error::Modified`],
//! [`Error::UnmanagedDatabase`], …) come back with nothing changed.
//!
//! What runs on a server: SQL migrations (`embed_migrations!`, `.sql` files)
//! and `#[migration(n)] async fn f(tx: &libsql::Transaction)`. A set with a
//! Rust migration written for a rusqlite transaction is refused whole with
//! [`Error::WrongBackend`] before anything is sent.
//!
//! Point the migrator at the **primary**. A replica forwards writes to the
//! primary, but may answer reads from its own copy, which can lag: that can
//! only make it see fewer migrations (the run then goes on to the lock,
//! where the primary decides), never more. Instances that must not migrate
//! (the application beside a replica) call
//! [`wait_until_current`](Libsql::wait_until_current).
//!
//! The server ends a write transaction that held the lock for longer than
//! its transaction timeout (about 5 s in sqld) while another writer waited;
//! nothing of it is kept. The run then starts again within
//! [`Migrator::lock_timeout`], and reports [`Error::Locked`] after it: keep
//! each migration short (split a long data migration into several), and
//! retry.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use migrate_core::{embed_migrations, Migrator};
//!
//! embed_migrations!("docs/migrations/numbered", set = "docs_libsql");
//!
//! // `https://` and `libsql://` URLs need libsql's `tls` feature, or a
//! // connector given with `Builder::connector`.
//! let db = libsql::Builder::new_remote("http://127.0.0.1:8080".into(), String::new())
//!     .build()
//!     .await?;
//! let conn = db.connect()?;
//! let report = Migrator::new().set("docs_libsql").libsql(&conn).migrate().await?;
//! println!("applied {:?}", report.ids());
//! # Ok(())
//! # }
//! ```

pub(crate) mod remote;

use std::time::Duration;

use tokio::runtime::Handle;

use crate::error::Error;
use crate::migrator::Migrator;
use crate::report::{AppliedMigration, MigrationInfo, MigrationStatus, Report};
use crate::runner::Goal;
use remote::Remote;

pub(crate) use remote::is_transient;

impl Migrator {
    /// This migrator on a libSQL connection (see [the module](crate::libsql)).
    ///
    /// ```
    /// # async fn run(conn: &libsql::Connection) -> Result<(), migrate_core::Error> {
    /// let report = migrate_core::Migrator::new().libsql(conn).migrate().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn libsql(self, conn: &libsql::Connection) -> Libsql {
        Libsql {
            migrator: self,
            conn: conn.clone(),
        }
    }
}

/// A [`Migrator`] bound to a libSQL connection: the local API, async.
///
/// Each call runs the migration logic on one of the tokio runtime's
/// blocking threads (it waits for the server there), so it must be called
/// from within a tokio runtime, which `libsql` needs anyway.
///
/// ```no_run
/// # async fn run(conn: &libsql::Connection) -> Result<(), migrate_core::Error> {
/// use std::time::Duration;
/// use migrate_core::{Migrator, MigrationState};
///
/// let m = Migrator::new().set("docs_libsql_api").libsql(conn);
/// m.verify().await?; // what `migrate` would refuse, refused now
/// let pending = m.pending_migrations().await?;
/// let report = m.migrate().await?;
/// assert_eq!(report.steps.len(), pending.len());
/// assert!(m.status().await?.iter().all(|s| s.state == MigrationState::Applied));
/// let newest = m.applied_migrations().await?.pop();
/// if let Some(undone) = m.rollback_migration().await? {
///     assert_eq!(Some(undone.id), newest.map(|row| row.id));
/// }
/// m.migrate_to(0).await?;
/// m.rollback_to(0).await?;
/// m.rollback_all().await?;
/// // An instance that must not migrate (beside a replica):
/// m.wait_until_current(Duration::from_secs(60)).await.ok();
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Libsql {
    migrator: Migrator,
    conn: libsql::Connection,
}

impl Libsql {
    /// Applies every pending migration (see [`Migrator::migrate`]).
    pub async fn migrate(&self) -> Result<Report, Error> {
        self.on_server(|m, remote| {
            m.run_remote(remote, |plan| Ok(Goal::UpTo(plan.len() - 1)))
                .map(|outcome| outcome.report)
        })
        .await
    }

    /// Applies pending migrations up to and including `target` (see
    /// [`Migrator::migrate_to`]).
    pub async fn migrate_to(&self, target: u32) -> Result<Report, Error> {
        self.on_server(move |m, remote| {
            m.run_remote(remote, |plan| {
                plan.check_target(target)?;
                Ok(Goal::UpTo(target))
            })
            .map(|outcome| outcome.report)
        })
        .await
    }

    /// Undoes the newest applied migration (see
    /// [`Migrator::rollback_migration`]).
    pub async fn rollback_migration(&self) -> Result<Option<AppliedMigration>, Error> {
        self.on_server(|m, remote| {
            m.run_remote(remote, |_| Ok(Goal::DownLast))
                .map(|outcome| outcome.removed.into_iter().next())
        })
        .await
    }

    /// Undoes applied migrations until `target` is the newest (see
    /// [`Migrator::rollback_to`]).
    pub async fn rollback_to(&self, target: u32) -> Result<Report, Error> {
        self.on_server(move |m, remote| {
            m.run_remote(remote, |plan| {
                plan.check_target(target)?;
                Ok(Goal::DownTo(Some(target)))
            })
            .map(|outcome| outcome.report)
        })
        .await
    }

    /// Undoes every applied migration (see [`Migrator::rollback_all`]).
    pub async fn rollback_all(&self) -> Result<Report, Error> {
        self.on_server(|m, remote| {
            m.run_remote(remote, |_| Ok(Goal::DownTo(None)))
                .map(|outcome| outcome.report)
        })
        .await
    }

    /// The tracking table's rows (see [`Migrator::applied_migrations`]).
    pub async fn applied_migrations(&self) -> Result<Vec<AppliedMigration>, Error> {
        self.on_server(|m, remote| m.applied_on(remote)).await
    }

    /// What `migrate` would apply (see [`Migrator::pending_migrations`]).
    pub async fn pending_migrations(&self) -> Result<Vec<MigrationInfo>, Error> {
        self.on_server(|m, remote| m.pending_on(remote)).await
    }

    /// Where each migration stands (see [`Migrator::status`]).
    pub async fn status(&self) -> Result<Vec<MigrationStatus>, Error> {
        self.on_server(|m, remote| m.status_on(remote)).await
    }

    /// Checks the set's registry and the database's history the way
    /// `migrate` does, changing nothing: `Ok` when `migrate` would accept
    /// it (an edited applied migration is [`Error::Modified`], a newer
    /// build's history [`Error::DatabaseAhead`], …).
    pub async fn verify(&self) -> Result<(), Error> {
        self.on_server(|m, remote| m.check_on(remote)).await
    }

    /// Waits until the database holds every migration of the set this binary
    /// knows (see [`Migrator::wait_until_current`]); only reads.
    pub async fn wait_until_current(&self, timeout: Duration) -> Result<(), Error> {
        self.on_server(move |m, remote| m.wait_remote(remote, timeout))
            .await
    }

    /// Runs `work` on a blocking thread of the current runtime, where it may
    /// wait for the server with `Handle::block_on`.
    async fn on_server<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Migrator, &Remote) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let handle = Handle::try_current().map_err(|_| {
            Error::Libsql(libsql::Error::Misuse(
                "migrate_core::libsql must be called from within a tokio runtime".to_owned(),
            ))
        })?;
        // A transaction begun on the connection by hand: a run would not be
        // atomic, and the library's requests would end the caller's stream.
        if !self.conn.is_autocommit() {
            return Err(Error::InTransaction);
        }
        let migrator = self.migrator.clone();
        let conn = self.conn.clone();
        let job = tokio::task::spawn_blocking(move || {
            let remote = Remote::direct(handle, conn);
            let result = work(&migrator, &remote);
            remote.finish();
            result
        });
        match job.await {
            Ok(result) => result,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(_) => Err(Error::Libsql(libsql::Error::Misuse(
                "the tokio runtime shut down while migrating".to_owned(),
            ))),
        }
    }
}
