//! Comparing the rows with the plan, and bringing stale chains up to date.

use super::{rewrite_row, Row, Table};
use crate::db::Db;
use crate::error::{Error, Modification};
use crate::hash;
use crate::registry::{Migration, Plan};

/// Compares the rows with the plan: unknown applied migrations are
/// `DatabaseAhead`; renamed or edited ones are `Modified` (unless `strict`
/// is off).
pub(crate) fn verify(rows: &[Row], plan: &Plan, strict: bool) -> Result<(), Error> {
    let known = plan.len();
    let unknown: Vec<(u32, String)> = rows
        .iter()
        .filter(|row| row.applied.id >= known)
        .map(|row| (row.applied.id, row.applied.name.clone()))
        .collect();
    if !unknown.is_empty() {
        return Err(Error::DatabaseAhead {
            set: plan.set.clone(),
            known,
            unknown,
        });
    }
    if !strict {
        return Ok(());
    }
    let modifications = modifications(rows, plan);
    if modifications.is_empty() {
        Ok(())
    } else {
        Err(Error::Modified {
            set: plan.set.clone(),
            modifications,
        })
    }
}

/// Whether a row records this migration: the same name, and its checksum
/// under the current canonical form or an earlier one.
pub(crate) fn matches_plan(row: &Row, migration: &Migration) -> bool {
    let stored = row.applied.checksum.as_str();
    migration.name() == row.applied.name
        && (migration.checksum() == stored || migration.former_checksums().contains(&stored))
}

/// Every applied migration whose name or checksum differs from the plan's.
pub(crate) fn modifications(rows: &[Row], plan: &Plan) -> Vec<Modification> {
    rows.iter()
        .filter_map(|row| {
            let migration = plan.migrations().get(row.applied.id as usize)?;
            if matches_plan(row, migration) {
                return None;
            }
            Some(Modification {
                id: row.applied.id,
                applied_name: row.applied.name.clone(),
                current_name: migration.name().to_owned(),
                applied_checksum: row.applied.checksum.clone(),
                current_checksum: migration.checksum().to_owned(),
                location: migration.up.location(),
            })
        })
        .collect()
}

/// The checksum and chain each row should have: its own checksum, or the
/// plan's current one where it is stored under an earlier canonical form,
/// and the chain computed from the rows themselves, from the plan's seed.
fn expected(rows: &[Row], plan: &Plan) -> Vec<(String, u128)> {
    let mut previous = plan.seed;
    rows.iter()
        .map(|row| {
            let checksum = match plan.migrations().get(row.applied.id as usize) {
                Some(migration)
                    if migration
                        .former_checksums()
                        .contains(&row.applied.checksum.as_str()) =>
                {
                    migration.checksum().to_owned()
                }
                _ => row.applied.checksum.clone(),
            };
            previous = hash::chain(
                previous,
                hash::link(row.applied.id, &row.applied.name, &checksum),
            );
            (checksum, previous)
        })
        .collect()
}

/// Whether every row's checksum and chain are what this version writes, so
/// that the O(1) check will vouch for the history.
pub(crate) fn chains_current(rows: &[Row], plan: &Plan) -> bool {
    rows.iter()
        .zip(expected(rows, plan))
        .all(|(row, (checksum, chain))| {
            row.applied.checksum == checksum && hash::parse_hex(&row.chain) == Some(chain)
        })
}

/// Rewrites the checksums and chains of rows that are stale: a checksum
/// stored under an earlier canonical form, a chain of an earlier
/// definition, or one marked by a hand edit that changed nothing the plan
/// checks (a timestamp). Runs in the caller's write transaction; afterwards
/// the O(1) check vouches for the history again. Every rewrite changes the
/// row's chain, so the edit trigger does not fire.
pub(crate) fn repair_chains(
    conn: &dyn Db,
    table: &Table,
    plan: &Plan,
    rows: &[Row],
) -> Result<(), Error> {
    for (row, (checksum, chain)) in rows.iter().zip(expected(rows, plan)) {
        if hash::parse_hex(&row.chain) != Some(chain) || row.applied.checksum != checksum {
            rewrite_row(conn, table, row.applied.id, &checksum, &hash::hex(chain))?;
        }
    }
    Ok(())
}
