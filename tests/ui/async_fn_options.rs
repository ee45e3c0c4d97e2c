use migrate_core::migration;

#[migration(0, foreign_keys = off)]
async fn rebuild_cats(tx: &libsql::Transaction) -> libsql::Result<()> {
    tx.execute("CREATE TABLE cats (name TEXT)", ()).await.map(|_| ())
}

fn main() {}
