//! Collecting migrations (from the link-time registry and from
//! `Migrator::add`) and checking the sequence rule before anything runs.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use rusqlite::Transaction;

use crate::error::{Location, RegistryProblem};
use crate::hash;
use crate::private::{self, Body, EntryKind, Outcome};

/// A closure added at run time.
pub(crate) type DynStep = Arc<dyn Fn(&Transaction<'_>) -> Outcome + Send + Sync + 'static>;

/// The work of one step.
#[derive(Clone)]
pub(crate) enum Action {
    Static(&'static Body),
    Dynamic(DynStep),
}

impl Action {
    /// Runs the step's code in the runner's transaction.
    pub fn run(&self, tx: &Transaction<'_>) -> Outcome {
        match self {
            Action::Static(Body::Rust(run)) => run(tx),
            Action::Static(Body::Sql(sql)) => tx.execute_batch(sql).map_err(|e| Box::new(e) as _),
            Action::Dynamic(run) => run(tx),
        }
    }
}

/// One direction of one migration.
#[derive(Clone)]
pub(crate) struct Step {
    pub action: Action,
    pub foreign_keys_off: bool,
    pub location: Location,
}

/// A migration of a checked plan.
#[derive(Clone)]
pub(crate) struct Migration {
    pub id: u32,
    pub name: String,
    pub checksum: String,
    /// Its checksums under earlier canonical forms, accepted in a history
    /// (and rewritten to `checksum` at the next write).
    pub former_checksums: &'static [&'static str],
    pub up: Step,
    pub down: Option<Step>,
}

/// The checked, ordered migrations of one set: `migrations[i].id == i`.
pub(crate) struct Plan {
    pub set: String,
    pub migrations: Vec<Migration>,
    /// What the chain of row 0 starts from: the tracking table's name, so
    /// that two tables' histories never vouch for each other.
    pub seed: String,
    /// `chains[i]` is the history chain after migrations `0..=i`.
    pub chains: Vec<String>,
}

impl Plan {
    /// `InvalidTarget` unless the set has a migration `target`.
    pub fn check_target(&self, target: u32) -> Result<(), crate::error::Error> {
        if target < self.len() {
            Ok(())
        } else {
            Err(crate::error::Error::InvalidTarget {
                set: self.set.clone(),
                target,
                known: self.len(),
            })
        }
    }

    pub fn len(&self) -> u32 {
        // The sequence rule keeps ids within u32, so the count fits too
        // unless all 2^32 ids are used, which memory rules out.
        u32::try_from(self.migrations.len()).unwrap_or(u32::MAX)
    }
}

/// A registration before checking: one `#[migration]`, `#[rollback]`, or
/// `Migrator::add`/`add_rollback` call.
#[derive(Clone)]
pub(crate) enum Candidate {
    Up {
        id: u32,
        name: String,
        checksum: String,
        former_checksums: &'static [&'static str],
        step: Step,
    },
    Down {
        id: u32,
        step: Step,
    },
}

impl Candidate {
    fn from_entry(entry: &'static private::Entry) -> Candidate {
        let step = Step {
            action: Action::Static(&entry.body),
            foreign_keys_off: entry.foreign_keys_off,
            location: Location {
                file: entry.file,
                line: entry.line,
                runtime: false,
            },
        };
        match entry.kind {
            EntryKind::Migration {
                name,
                checksum,
                former_checksums,
            } => Candidate::Up {
                id: entry.id,
                name: name.to_owned(),
                checksum: checksum.to_owned(),
                former_checksums,
                step,
            },
            EntryKind::Rollback => Candidate::Down { id: entry.id, step },
        }
    }
}

/// The link-time registry, grouped by set, checked once per process.
struct StaticRegistry {
    sets: BTreeMap<&'static str, Vec<Candidate>>,
    /// Sequence-rule problems of each set, on its own.
    problems: BTreeMap<&'static str, Vec<RegistryProblem>>,
}

fn static_registry() -> &'static StaticRegistry {
    static REGISTRY: OnceLock<StaticRegistry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut sets: BTreeMap<&'static str, Vec<Candidate>> = BTreeMap::new();
        for entry in private::entries() {
            sets.entry(entry.set)
                .or_default()
                .push(Candidate::from_entry(entry));
        }
        let mut problems = BTreeMap::new();
        for (set, candidates) in &sets {
            let borrowed: Vec<&Candidate> = candidates.iter().collect();
            if let Err(found) = check(set, &borrowed, false) {
                problems.insert(*set, found);
            }
        }
        StaticRegistry { sets, problems }
    })
}

/// Builds the checked plan of `set`: its linked migrations plus `extra`.
///
/// The whole link-time registry is checked, not only `set`: a broken set
/// anywhere is a bug in this binary, and every problem is reported at once.
pub(crate) fn plan(
    set: &str,
    table: &str,
    extra: &[Candidate],
) -> Result<Plan, Vec<RegistryProblem>> {
    let registry = static_registry();
    // Borrowed, not cloned: only the checked plan owns copies.
    let candidates: Vec<&Candidate> = registry
        .sets
        .get(set)
        .into_iter()
        .flatten()
        .chain(extra)
        .collect();

    let mut problems: Vec<RegistryProblem> = Vec::new();
    for (other, found) in &registry.problems {
        if *other != set {
            problems.extend(found.iter().cloned());
        }
    }
    if let Err(found) = check(set, &candidates, true) {
        problems.extend(found);
    }
    if !problems.is_empty() {
        problems.sort_by(|a, b| a.set().cmp(b.set()));
        return Err(problems);
    }
    Ok(assemble(set, table, candidates))
}

/// Checks the sequence rule for one set.
fn check(
    set: &str,
    candidates: &[&Candidate],
    require_nonempty: bool,
) -> Result<(), Vec<RegistryProblem>> {
    let mut ups: BTreeMap<u32, Vec<Location>> = BTreeMap::new();
    let mut downs: BTreeMap<u32, Vec<Location>> = BTreeMap::new();
    for candidate in candidates {
        match candidate {
            Candidate::Up { id, step, .. } => ups.entry(*id).or_default().push(step.location),
            Candidate::Down { id, step } => downs.entry(*id).or_default().push(step.location),
        }
    }
    let mut problems = Vec::new();
    if ups.is_empty() && require_nonempty {
        problems.push(RegistryProblem::EmptySet {
            set: set.to_owned(),
        });
    }
    let mut expected: u32 = 0;
    for (&id, locations) in &ups {
        if id > expected {
            problems.push(RegistryProblem::Gap {
                set: set.to_owned(),
                from: expected,
                to: id - 1,
                next: Some((id, first_location(locations))),
            });
        }
        if locations.len() > 1 {
            problems.push(RegistryProblem::DuplicateMigration {
                set: set.to_owned(),
                id,
                locations: sorted(locations),
            });
        }
        expected = id.saturating_add(1);
    }
    for (&id, locations) in &downs {
        if !ups.contains_key(&id) {
            for location in sorted(locations) {
                problems.push(RegistryProblem::RollbackWithoutMigration {
                    set: set.to_owned(),
                    id,
                    location,
                });
            }
        } else if locations.len() > 1 {
            problems.push(RegistryProblem::DuplicateRollback {
                set: set.to_owned(),
                id,
                locations: sorted(locations),
            });
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

fn sorted(locations: &[Location]) -> Vec<Location> {
    let mut locations = locations.to_vec();
    locations.sort_by(|a, b| (a.runtime, a.file, a.line).cmp(&(b.runtime, b.file, b.line)));
    locations
}

fn first_location(locations: &[Location]) -> Location {
    sorted(locations)[0]
}

/// Orders checked candidates into a plan. Only called when `check` passed,
/// so ids are exactly `0..n` with at most one rollback each.
fn assemble(set: &str, table: &str, candidates: Vec<&Candidate>) -> Plan {
    let mut ups = Vec::new();
    let mut downs: BTreeMap<u32, &Step> = BTreeMap::new();
    for candidate in candidates {
        match candidate {
            Candidate::Up {
                id,
                name,
                checksum,
                former_checksums,
                step,
            } => ups.push((*id, name, checksum, *former_checksums, step)),
            Candidate::Down { id, step } => {
                downs.insert(*id, step);
            }
        }
    }
    ups.sort_by_key(|(id, ..)| *id);
    let mut chains = Vec::with_capacity(ups.len());
    let mut migrations = Vec::with_capacity(ups.len());
    for (id, name, checksum, former_checksums, up) in ups {
        let previous = chains.last().map_or(table, String::as_str);
        let link = hash::chain(previous, id, name, checksum);
        chains.push(link);
        migrations.push(Migration {
            id,
            down: downs.remove(&id).cloned(),
            name: name.clone(),
            checksum: checksum.clone(),
            former_checksums,
            up: up.clone(),
        });
    }
    Plan {
        set: set.to_owned(),
        migrations,
        seed: table.to_owned(),
        chains,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(id: u32, former_checksums: &'static [&'static str]) -> Candidate {
        Candidate::Up {
            id,
            name: format!("m{id}"),
            checksum: format!("{id:032x}"),
            former_checksums,
            step: Step {
                action: Action::Dynamic(Arc::new(|_| Ok(()))),
                foreign_keys_off: false,
                location: Location {
                    file: "registry.rs",
                    line: id + 1,
                    runtime: true,
                },
            },
        }
    }

    #[test]
    fn former_checksums_reach_the_plan() {
        let former: &'static [&'static str] = &["f593e680ee99c82ab42962443d238928"];
        let plan = plan(
            "registry_former_checksums",
            "t",
            &[up(1, former), up(0, &[])],
        )
        .unwrap_or_else(|p| panic!("{p:?}"));
        assert_eq!(plan.migrations[0].former_checksums, &[] as &[&str]);
        assert_eq!(plan.migrations[1].former_checksums, former);
        // The chain is built from the current checksum only, from the
        // table's name.
        assert_eq!(
            plan.chains[0],
            hash::chain("t", 0, "m0", &format!("{:032x}", 0))
        );
    }
}
