use migrate_core::migration;
use migrate_core::rusqlite::Connection;

#[migration(0, transaction = false, foreign_keys = off)]
fn compact(conn: &Connection) -> migrate_core::rusqlite::Result<()> {
    conn.execute_batch("VACUUM")
}

fn main() {}
