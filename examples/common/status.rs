//! The status table the examples print (shared by quickstart and blog).

use std::io::Write;

use migrate_core::rusqlite::Connection;
use migrate_core::{MigrationState, Migrator};

/// Prints every migration of `migrator` with its state, then `user_version`.
pub fn print(
    out: &mut dyn Write,
    db: &Connection,
    migrator: &Migrator,
    label: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    writeln!(out, "\n{label}:")?;
    writeln!(
        out,
        "{:>3}  {:<26} {:<9} {:<8} applied at",
        "id", "name", "state", "rollback"
    )?;
    for line in migrator.status(db)? {
        let state = match line.state {
            MigrationState::Applied => "applied",
            MigrationState::Pending => "pending",
            MigrationState::Modified { .. } => "MODIFIED",
            MigrationState::Unknown => "UNKNOWN",
            _ => "?",
        };
        writeln!(
            out,
            "{:>3}  {:<26} {:<9} {:<8} {}",
            line.id,
            line.name,
            state,
            if line.has_rollback { "yes" } else { "no" },
            line.applied_at.as_deref().unwrap_or("-")
        )?;
    }
    let version: i64 = db.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    writeln!(out, "PRAGMA user_version = {version}")?;
    Ok(())
}
