use migrate_core::migration;
use migrate_core::rusqlite::{self, Transaction};

#[migration(3i64)]
fn create_cats(tx: &Transaction) -> rusqlite::Result<()> {
    tx.execute_batch("CREATE TABLE cats (name TEXT)")
}

fn main() {}
