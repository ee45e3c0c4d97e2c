use migrate_core::migration;
use migrate_core::rusqlite;

#[migration(0)]
fn create_cats(sql: &str) -> rusqlite::Result<()> {
    let _ = sql;
    Ok(())
}

fn main() {}
