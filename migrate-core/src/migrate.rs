//! `Migrate`: the extension trait for `rusqlite::Connection`.

use std::sync::OnceLock;

use rusqlite::Connection;

use crate::error::Error;
use crate::migrator::Migrator;
use crate::report::{AppliedMigration, MigrationInfo, Report};

/// The default migrator, built once per process so that the registry is
/// checked once.
fn default_migrator() -> &'static Migrator {
    static DEFAULT: OnceLock<Migrator> = OnceLock::new();
    DEFAULT.get_or_init(Migrator::new)
}

/// Migration methods on [`rusqlite::Connection`] for the default set with the
/// default configuration. Use [`Migrator`] for anything else.
///
/// ```no_run
/// use migrate_core::{migration, Migrate};
/// use migrate_core::rusqlite::{Connection, Transaction};
///
/// #[migration(0)]
/// fn create_cats(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
///     tx.execute_batch("CREATE TABLE cats (name TEXT PRIMARY KEY)")
/// }
///
/// fn main() -> Result<(), migrate_core::Error> {
///     let mut db = Connection::open("app.db")?;
///     db.migrate()?;
///     Ok(())
/// }
/// ```
pub trait Migrate {
    /// Applies every pending migration of the default set, in order. See
    /// [`Migrator::migrate`].
    fn migrate(&mut self) -> Result<Report, Error>;

    /// Undoes the newest applied migration. See [`Migrator::rollback_migration`].
    fn rollback_migration(&mut self) -> Result<Option<AppliedMigration>, Error>;

    /// The tracking table's rows, in id order. See [`Migrator::applied_migrations`].
    fn applied_migrations(&self) -> Result<Vec<AppliedMigration>, Error>;

    /// The newest applied migration. See [`Migrator::last_applied_migration`].
    fn last_applied_migration(&self) -> Result<Option<AppliedMigration>, Error>;

    /// What `migrate` would apply. See [`Migrator::pending_migrations`].
    fn pending_migrations(&self) -> Result<Vec<MigrationInfo>, Error>;
}

impl Migrate for Connection {
    fn migrate(&mut self) -> Result<Report, Error> {
        default_migrator().migrate(self)
    }

    fn rollback_migration(&mut self) -> Result<Option<AppliedMigration>, Error> {
        default_migrator().rollback_migration(self)
    }

    fn applied_migrations(&self) -> Result<Vec<AppliedMigration>, Error> {
        default_migrator().applied_migrations(self)
    }

    fn last_applied_migration(&self) -> Result<Option<AppliedMigration>, Error> {
        default_migrator().last_applied_migration(self)
    }

    fn pending_migrations(&self) -> Result<Vec<MigrationInfo>, Error> {
        default_migrator().pending_migrations(self)
    }
}
