//! What a run knows of the history while it writes it, for both backends:
//! each step's tracking row written (inserted for a migration, deleted for
//! a rollback) with the chain it extends, and the run's view moved on only
//! once the step is released.

use super::{Recorder, Row};
use crate::error::{Direction, Error};
use crate::hash;
use crate::registry::{Migration, Plan};
use crate::report::AppliedMigration;

/// The history as a run sees it, from the read inside its lock.
pub(crate) struct Ledger {
    /// How many migrations are applied, counting the run's steps.
    pub applied: usize,
    /// The newest row's chain.
    pub newest_chain: u128,
    /// The rows read at the start (a rollback reports the row it removes).
    pub rows: Vec<Row>,
    /// The rows removed by the run's rollbacks, in order.
    pub removed: Vec<AppliedMigration>,
}

/// A step's row, written and not yet part of the run's view.
pub(crate) struct Written {
    index: usize,
    direction: Direction,
    chain: u128,
}

impl Ledger {
    pub fn new(applied: usize, newest_chain: u128, rows: Vec<Row>) -> Ledger {
        Ledger {
            applied,
            newest_chain,
            rows,
            removed: Vec::new(),
        }
    }

    /// Writes the step's row: a migration's, with its chain (the plan's for
    /// a verified history; an unverified one goes on from its own newest
    /// row), or deletes a rolled-back migration's.
    pub fn write(
        &self,
        recorder: &mut Recorder<'_>,
        plan: &Plan,
        verify_applied: bool,
        migration: &Migration,
        direction: Direction,
    ) -> Result<Written, Error> {
        let index = migration.id as usize;
        let chain = match direction {
            Direction::Up => {
                let chain = if verify_applied {
                    plan.chains()[index]
                } else {
                    hash::chain(self.newest_chain, migration.link())
                };
                recorder.insert(
                    migration.id,
                    migration.name(),
                    migration.checksum(),
                    &hash::hex(chain),
                )?;
                chain
            }
            Direction::Down => {
                recorder.delete(migration.id)?;
                match index.checked_sub(1) {
                    Some(previous) => self
                        .rows
                        .get(previous)
                        .and_then(|row| hash::parse_hex(&row.chain))
                        .unwrap_or_default(),
                    None => plan.seed,
                }
            }
        };
        Ok(Written {
            index,
            direction,
            chain,
        })
    }

    /// The step is released: the run's view moves on.
    pub fn advance(&mut self, written: Written) {
        match written.direction {
            Direction::Up => self.applied += 1,
            Direction::Down => {
                self.applied -= 1;
                if let Some(row) = self.rows.get(written.index) {
                    self.removed.push(row.applied.clone());
                }
            }
        }
        self.newest_chain = written.chain;
    }
}
