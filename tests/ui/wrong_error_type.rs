use migrate_core::migration;
use migrate_core::rusqlite::Transaction;

#[migration(0)]
fn create_cats(tx: &Transaction) -> Result<(), String> {
    tx.execute_batch("CREATE TABLE cats (name TEXT)")
        .map_err(|e| e.to_string())
}

fn main() {}
