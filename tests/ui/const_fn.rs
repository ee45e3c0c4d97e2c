use migrate_core::migration;
use migrate_core::rusqlite::Transaction;

#[migration(0)]
const fn create_cats(_tx: &Transaction) {}

fn main() {}
