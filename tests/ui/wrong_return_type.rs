use migrate_core::migration;
use migrate_core::rusqlite::Transaction;

#[migration(0)]
fn create_cats(tx: &Transaction) -> usize {
    tx.execute("CREATE TABLE cats (name TEXT)", []).unwrap()
}

fn main() {}
