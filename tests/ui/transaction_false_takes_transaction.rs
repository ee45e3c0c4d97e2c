use migrate_core::migration;
use migrate_core::rusqlite::Transaction;

#[migration(0, transaction = false)]
fn compact(tx: &Transaction) -> migrate_core::rusqlite::Result<()> {
    tx.execute_batch("VACUUM")
}

fn main() {}
