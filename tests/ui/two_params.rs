use migrate_core::migration;
use migrate_core::rusqlite::{self, Transaction};

#[migration(0)]
fn create_cats(tx: &Transaction, table: &str) -> rusqlite::Result<()> {
    tx.execute_batch(&format!("CREATE TABLE {table} (name TEXT)"))
}

fn main() {}
