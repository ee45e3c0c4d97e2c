use migrate_core::{migration, rollback};
use migrate_core::rusqlite::{self, Transaction};

#[migration(0)]
fn create_cats(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch("CREATE TABLE cats (name TEXT)")
}

#[rollback(0, name = "drop_cats")]
fn drop_cats(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch("DROP TABLE cats")
}

fn main() {}
