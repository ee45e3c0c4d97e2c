use migrate_core::migration;
use migrate_core::rusqlite::{self, Transaction};

#[migration(0)]
fn create_cats<T: Default>(tx: &Transaction) -> rusqlite::Result<()> {
    let _unused = T::default();
    tx.execute_batch("CREATE TABLE cats (name TEXT)")
}

fn main() {}
