//! `crate = path`: the generated code must reach the runtime through the
//! path the user gives, for applications that rename or re-export it.

extern crate migrate_core as renamed_core;

mod reexport {
    pub use migrate_core as inner;
}

use renamed_core::rusqlite::{Connection, Transaction};

#[renamed_core::migration(0, set = "paths", crate = renamed_core)]
fn through_renamed(tx: &Transaction) -> renamed_core::rusqlite::Result<()> {
    tx.execute_batch("CREATE TABLE a (x)")
}

#[reexport::inner::migration(1, set = "paths", crate = crate::reexport::inner)]
fn through_reexport(tx: &Transaction) -> renamed_core::rusqlite::Result<()> {
    tx.execute_batch("CREATE TABLE b (x)")
}

#[reexport::inner::rollback(1, set = "paths", crate = crate::reexport::inner)]
fn undo_through_reexport(tx: &Transaction) -> renamed_core::rusqlite::Result<()> {
    tx.execute_batch("DROP TABLE b")
}

#[test]
fn renamed_and_reexported_paths_register() {
    let dir = tempfile::TempDir::new().expect("tempdir");
    let mut conn = Connection::open(dir.path().join("paths.db")).expect("open");
    let m = renamed_core::Migrator::new().set("paths");
    assert_eq!(m.migrate(&mut conn).expect("migrate").ids(), vec![0, 1]);
    let undone = m.rollback_migration(&mut conn).expect("rollback");
    assert_eq!(undone.map(|u| u.name), Some("through_reexport".to_owned()));
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name IN ('a', 'b')",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(tables, 1, "a stays, b was dropped");
}
