//! Collecting migrations (from the link-time registry and from
//! `Migrator::add`) and checking the sequence rule before anything runs.
//!
//! The link-time registry of a binary can hold thousands of entries across
//! many sets, and a process pays for reading it at its first call. So the
//! registry holds compact [`Slot`]s (set hash, chain link, id, kind, and a
//! pointer to the entry), the whole-registry check is one pass of counting
//! and one of marking bits, done once per process, and the detailed report
//! (with every file and line) is built only when that pass finds a problem.
//! A set's plan is built from the slots alone and borrows its entries.

use std::sync::{Arc, OnceLock};

use rusqlite::{Connection, Transaction};

use crate::error::{Location, RegistryProblem};
use crate::hash;
use crate::private::{self, Entry, EntryKind, Outcome, Slot};

/// A closure added at run time: one that runs in the runner's transaction,
/// or one that runs outside any.
pub(crate) enum DynStep {
    Transaction(Arc<dyn Fn(&Transaction<'_>) -> Outcome + Send + Sync + 'static>),
    Autocommit(Arc<dyn Fn(&Connection) -> Outcome + Send + Sync + 'static>),
}

/// How a step runs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Mode {
    /// In the run's transaction, with other steps.
    Transaction,
    /// In a transaction of its own, with `PRAGMA foreign_keys` off.
    ForeignKeysOff,
    /// Outside any transaction, recorded as started before and done after.
    Autocommit,
}

/// A step added at run time with `Migrator::add` or `add_rollback`.
pub(crate) struct DynamicStep {
    pub run: DynStep,
    pub location: Location,
    /// A migration's name, checksum and chain link; `None` for a rollback.
    pub identity: Option<Identity>,
}

/// What the history records of a migration added at run time.
pub(crate) struct Identity {
    pub name: String,
    pub checksum: String,
    pub link: u128,
}

/// One direction of one migration: a registry entry or a run-time closure.
#[derive(Clone)]
pub(crate) enum Step {
    Static(&'static Entry),
    Dynamic(Arc<DynamicStep>),
}

impl Step {
    /// Runs the step's code: in the runner's transaction `tx`, or, for a
    /// step outside any transaction, on `conn` in autocommit mode.
    pub fn run(&self, tx: Option<&Transaction<'_>>, conn: &Connection) -> Outcome {
        let sql = |sql: &str| {
            crate::sqlite::script::execute_script(conn, sql).map_err(|e| Box::new(e) as _)
        };
        match self {
            Step::Static(entry) => match (&entry.body, tx) {
                (private::Body::Sql(text), _) => sql(text),
                (private::Body::Autocommit(run), _) => run(conn),
                (private::Body::Rust(run), Some(tx)) => run(tx),
                (private::Body::Rust(_), None) => Err(mode_mismatch()),
                #[cfg(feature = "libsql")]
                (private::Body::Libsql(_), _) => Err(
                    "migrate-core: a libSQL step was asked to run on a SQLite file (a bug: \
                     please report it)"
                        .into(),
                ),
            },
            Step::Dynamic(step) => match (&step.run, tx) {
                (DynStep::Transaction(run), Some(tx)) => run(tx),
                (DynStep::Autocommit(run), _) => run(conn),
                (DynStep::Transaction(_), None) => Err(mode_mismatch()),
            },
        }
    }

    /// How the step runs.
    pub fn mode(&self) -> Mode {
        let (foreign_keys_off, no_transaction) = match self {
            Step::Static(entry) => (entry.foreign_keys_off, entry.no_transaction),
            Step::Dynamic(step) => (false, matches!(step.run, DynStep::Autocommit(_))),
        };
        match (no_transaction, foreign_keys_off) {
            (true, _) => Mode::Autocommit,
            (false, true) => Mode::ForeignKeysOff,
            (false, false) => Mode::Transaction,
        }
    }

    /// The step's SQL, when it is SQL (a `.sql` file, `embed_migrations!`):
    /// the only kind of step that runs on every backend.
    #[cfg_attr(not(feature = "libsql"), allow(dead_code))]
    pub fn sql(&self) -> Option<&'static str> {
        match self {
            Step::Static(entry) => match entry.body {
                private::Body::Sql(text) => Some(text),
                _ => None,
            },
            Step::Dynamic(_) => None,
        }
    }

    /// The `async fn` of a libSQL step.
    #[cfg(feature = "libsql")]
    pub fn libsql(
        &self,
    ) -> Option<for<'a> fn(&'a private::LibsqlTransaction) -> private::LibsqlFuture<'a>> {
        match self {
            Step::Static(entry) => match entry.body {
                private::Body::Libsql(run) => Some(run),
                _ => None,
            },
            Step::Dynamic(_) => None,
        }
    }

    /// Whether the step is an `async fn` for a libSQL server.
    fn is_libsql(&self) -> bool {
        #[cfg(feature = "libsql")]
        return self.libsql().is_some();
        #[cfg(not(feature = "libsql"))]
        false
    }

    /// Whether `PRAGMA foreign_keys` is turned off around this step.
    pub fn foreign_keys_off(&self) -> bool {
        self.mode() == Mode::ForeignKeysOff
    }

    /// Where it is defined.
    pub fn location(&self) -> Location {
        match self {
            Step::Static(entry) => Location {
                file: entry.file,
                line: entry.line,
                runtime: false,
            },
            Step::Dynamic(step) => step.location,
        }
    }
}

/// A migration of a checked plan: its id, its step, and its rollback.
#[derive(Clone)]
pub(crate) struct Migration {
    pub id: u32,
    pub up: Step,
    pub down: Option<Step>,
}

impl Migration {
    /// The name recorded in the tracking table.
    pub fn name(&self) -> &str {
        match &self.up {
            Step::Static(entry) => match entry.kind {
                EntryKind::Migration { name, .. } => name,
                EntryKind::Rollback => "",
            },
            Step::Dynamic(step) => step.identity.as_ref().map_or("", |i| i.name.as_str()),
        }
    }

    /// The checksum of its code.
    pub fn checksum(&self) -> &str {
        match &self.up {
            Step::Static(entry) => match entry.kind {
                EntryKind::Migration { checksum, .. } => checksum,
                EntryKind::Rollback => "",
            },
            Step::Dynamic(step) => step.identity.as_ref().map_or("", |i| i.checksum.as_str()),
        }
    }

    /// Its checksums under earlier canonical forms, accepted in a history
    /// (and rewritten to the current one at the next write).
    pub fn former_checksums(&self) -> &'static [&'static str] {
        match &self.up {
            Step::Static(entry) => match entry.kind {
                EntryKind::Migration {
                    former_checksums, ..
                } => former_checksums,
                EntryKind::Rollback => &[],
            },
            Step::Dynamic(_) => &[],
        }
    }

    /// Its link in the history chain (see [`hash::link`]).
    pub fn link(&self) -> u128 {
        match &self.up {
            Step::Static(entry) => match entry.kind {
                EntryKind::Migration { link, .. } => link,
                EntryKind::Rollback => 0,
            },
            Step::Dynamic(step) => step.identity.as_ref().map_or(0, |i| i.link),
        }
    }
}

/// Where a plan is to run.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    /// A SQLite file through rusqlite.
    File,
    /// A libSQL server.
    #[cfg_attr(not(feature = "libsql"), allow(dead_code))]
    Libsql,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::File => "a SQLite file",
            Backend::Libsql => "libSQL",
        }
    }
}

/// The checked, ordered migrations of one set: `migrations()[i].id == i`.
///
/// A link-time set's plan starts as its count and its chain's head, folded
/// from the registry's slots in one pass (see [`summarize`]): all that the
/// up-to-date check needs, so that the first call of a process, which
/// usually finds nothing to do, places no step. The steps are placed the
/// first time something asks for them.
pub(crate) struct Plan {
    pub set: String,
    /// What the chain of row 0 starts from: a hash of the tracking table's
    /// name, so that two tables' histories never vouch for each other.
    pub seed: u128,
    summary: Summary,
    steps: OnceLock<Steps>,
}

/// What the up-to-date check needs of a set.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Summary {
    /// How many migrations the set has (at least one).
    count: u32,
    /// The history chain after all of them.
    head: u128,
}

/// A set's steps, placed at their ids.
#[derive(Default)]
pub(crate) struct Steps {
    migrations: Vec<Migration>,
    /// `chains[i]` is the history chain after migrations `0..=i`.
    chains: Vec<u128>,
}

impl Plan {
    /// A plan whose steps are placed already.
    fn placed(set: &str, seed: u128, steps: Steps) -> Plan {
        let summary = Summary {
            count: u32::try_from(steps.migrations.len()).unwrap_or(u32::MAX),
            head: steps.chains.last().copied().unwrap_or(seed),
        };
        Plan {
            set: set.to_owned(),
            seed,
            summary,
            steps: OnceLock::from(steps),
        }
    }

    /// The plan of a set of link-time migrations only, checked by
    /// `summarize`, whose steps are placed on first use.
    fn linked(set: &str, seed: u128, summary: Summary) -> Plan {
        Plan {
            set: set.to_owned(),
            seed,
            summary,
            steps: OnceLock::new(),
        }
    }

    fn steps(&self) -> &Steps {
        self.steps.get_or_init(|| {
            // Only a `linked` plan gets here, and `summarize` found its
            // slots clean; the registry does not change while the process
            // runs, so placing them cannot fail.
            place(&self.set, &self.seed, &[]).unwrap_or_default()
        })
    }

    /// The migrations, in id order.
    pub fn migrations(&self) -> &[Migration] {
        &self.steps().migrations
    }

    /// `chains()[i]` is the history chain after migrations `0..=i`.
    pub fn chains(&self) -> &[u128] {
        &self.steps().chains
    }

    /// The history chain after every migration of the set.
    pub fn head(&self) -> u128 {
        self.summary.head
    }

    /// Test plans built by hand (the adoption checks').
    #[cfg(test)]
    pub(crate) fn from_parts(migrations: Vec<Migration>, chains: Vec<u128>) -> Plan {
        Plan::placed("", 0, Steps { migrations, chains })
    }

    /// `WrongBackend` for the set's first step that cannot run on `backend`:
    /// on a SQLite file, an `async fn` for libSQL; on a libSQL server, a
    /// Rust function on rusqlite, or a step outside a transaction. Checked
    /// before a run touches the database, so a set is refused whole.
    pub fn check_backend(&self, backend: Backend) -> Result<(), crate::error::Error> {
        use crate::error::Direction;
        for migration in self.migrations() {
            let steps = [
                (Direction::Up, Some(&migration.up)),
                (Direction::Down, migration.down.as_ref()),
            ];
            for (direction, step) in steps {
                let Some(step) = step else { continue };
                let reason = match backend {
                    Backend::File if step.is_libsql() => {
                        "it is an `async fn` on a libSQL transaction, which runs on a libSQL \
                         server (Migrator::libsql); write it as SQL to run the set on both"
                    }
                    Backend::Libsql if step.sql().is_none() && !step.is_libsql() => {
                        "it is a Rust function on a rusqlite connection, which only runs on a \
                         SQLite file; write it as SQL (a .sql file with embed_migrations!) to \
                         run the set on both, or as an `async fn` taking `&libsql::Transaction`"
                    }
                    Backend::Libsql if step.mode() == Mode::Autocommit => {
                        "it runs outside a transaction, which migrate-core does not do on a \
                         server yet; run it on the server by hand, then record it with baseline"
                    }
                    _ => continue,
                };
                return Err(crate::error::Error::WrongBackend {
                    set: self.set.clone(),
                    id: migration.id,
                    name: migration.name().to_owned(),
                    direction,
                    location: step.location(),
                    backend: backend.name(),
                    reason: reason.to_owned(),
                });
            }
        }
        Ok(())
    }

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
        self.summary.count
    }
}

/// A Rust step for a transaction asked to run outside one: the registry
/// cannot build such a step, so this is a bug of migrate-core.
fn mode_mismatch() -> crate::private::BoxError {
    "migrate-core: a transactional step was asked to run outside a transaction (a bug: please report it)".into()
}

/// A registration added at run time: `Migrator::add` or `add_rollback`.
#[derive(Clone)]
pub(crate) enum Candidate {
    Up { id: u32, step: Arc<DynamicStep> },
    Down { id: u32, step: Arc<DynamicStep> },
}

/// The slots of `set`, found by `Slot::set_hash` (SipHash-1-3, zero key,
/// 128 bits, of `set:{name}`; the macros compute it at compile time, pinned
/// in both crates) among its bucket of the registry. At 128 bits two names
/// of one binary do not share a hash, as two migrations do not share a
/// checksum, so the hash alone decides, without reading the entries the
/// slots point to.
fn slots_of(set: &str) -> impl Iterator<Item = &'static Slot> {
    let wanted = hash::set_hash(set);
    // A slice with linkme, a `Vec` with inventory.
    #[allow(clippy::useless_conversion, clippy::into_iter_on_ref)]
    private::candidate_slots(wanted)
        .into_iter()
        .filter(move |slot| slot.set_hash == wanted)
}

/// The summary of the set whose name hashes to `wanted` (see
/// [`summarize`]) from its bucket's slots.
fn summarize_set<T: std::borrow::Borrow<Slot>>(
    seed: u128,
    wanted: u128,
    candidates: &[T],
) -> Option<Summary> {
    summarize(seed, candidates, |slot| {
        let slot: &Slot = slot.borrow();
        (slot.set_hash == wanted).then_some((slot.id, slot.rollback, slot.link))
    })
}

/// The whole link-time registry's problems, found once per process.
fn registry_problems() -> &'static [RegistryProblem] {
    static PROBLEMS: OnceLock<Vec<RegistryProblem>> = OnceLock::new();
    PROBLEMS.get_or_init(|| {
        let slots: Vec<&'static Slot> = private::slots().collect();
        if tally_is_clean(&slots) {
            Vec::new()
        } else {
            detailed_problems(&slots)
        }
    })
}

/// The fast whole-registry check: per set (by hash), the migration ids are
/// exactly 0..n and the rollback ids distinct ids below n. `false` means
/// "look closer" (a hash collision between two sets' names included): the
/// detailed check decides.
fn tally_is_clean(slots: &[&'static Slot]) -> bool {
    struct Tally {
        set_hash: u128,
        ups: u64,
        max_up: u32,
        ups_seen: Vec<u64>,
        downs_seen: Vec<u64>,
    }
    let mut tallies: Vec<Tally> = Vec::new();
    let find = |tallies: &mut Vec<Tally>, set_hash: u128, last: &mut usize| -> usize {
        // Entries of one set mostly sit together: try the last one first.
        if tallies.get(*last).is_some_and(|t| t.set_hash == set_hash) {
            return *last;
        }
        let index = match tallies.iter().position(|t| t.set_hash == set_hash) {
            Some(index) => index,
            None => {
                tallies.push(Tally {
                    set_hash,
                    ups: 0,
                    max_up: 0,
                    ups_seen: Vec::new(),
                    downs_seen: Vec::new(),
                });
                tallies.len() - 1
            }
        };
        *last = index;
        index
    };
    let mut last = 0;
    for slot in slots {
        let index = find(&mut tallies, slot.set_hash, &mut last);
        if !slot.rollback {
            let tally = &mut tallies[index];
            tally.ups += 1;
            tally.max_up = tally.max_up.max(slot.id);
        }
    }
    for tally in &mut tallies {
        if tally.ups == 0 || u64::from(tally.max_up) + 1 != tally.ups {
            return false;
        }
        let words = usize::try_from(tally.ups.div_ceil(64)).unwrap_or(usize::MAX);
        tally.ups_seen = vec![0; words];
        tally.downs_seen = vec![0; words];
    }
    for slot in slots {
        let index = find(&mut tallies, slot.set_hash, &mut last);
        let tally = &mut tallies[index];
        let bits = if slot.rollback {
            &mut tally.downs_seen
        } else {
            &mut tally.ups_seen
        };
        let (word, bit) = ((slot.id / 64) as usize, 1u64 << (slot.id % 64));
        match bits.get_mut(word) {
            Some(word) if *word & bit == 0 => *word |= bit,
            // A duplicate, or a rollback of an id beyond the migrations.
            _ => return false,
        }
    }
    true
}

/// One registration, as the detailed check sees it.
struct Registered {
    id: u32,
    rollback: bool,
    location: Location,
}

fn from_slot(slot: &'static Slot) -> Registered {
    Registered {
        id: slot.id,
        rollback: slot.rollback,
        location: Step::Static(slot.entry).location(),
    }
}

fn from_candidate(candidate: &Candidate) -> Registered {
    let (id, step, rollback) = match candidate {
        Candidate::Up { id, step } => (*id, step, false),
        Candidate::Down { id, step } => (*id, step, true),
    };
    Registered {
        id,
        rollback,
        location: step.location,
    }
}

/// Every sequence-rule problem of the whole registry, set by set.
fn detailed_problems(slots: &[&'static Slot]) -> Vec<RegistryProblem> {
    let mut sets: Vec<&str> = slots.iter().map(|slot| slot.entry.set).collect();
    sets.sort_unstable();
    sets.dedup();
    let mut problems = Vec::new();
    for set in sets {
        let registered: Vec<Registered> = slots
            .iter()
            .filter(|slot| slot.entry.set == set)
            .map(|slot| from_slot(slot))
            .collect();
        problems.extend(check(set, &registered, false));
    }
    problems
}

/// Builds the checked plan of `set`: its linked migrations plus `extra`,
/// its history chain starting from `table`'s name. Only this set is
/// checked, every problem of it reported with its file and line: a process
/// runs this at its first call, and the link-time registry of a binary can
/// hold thousands of other sets' entries. [`validate`] checks them all.
pub(crate) fn plan(
    set: &str,
    table: &str,
    extra: &[Candidate],
) -> Result<Plan, Vec<RegistryProblem>> {
    let seed = hash::seed(table);
    if extra.is_empty() {
        let wanted = hash::set_hash(set);
        // A slice with linkme, a `Vec` with inventory.
        #[allow(clippy::redundant_slicing)]
        let candidates = &private::candidate_slots(wanted)[..];
        if let Some(summary) = summarize_set(seed, wanted, candidates) {
            return Ok(Plan::linked(set, seed, summary));
        }
    }
    set_plan(set, &seed, extra)
}

/// A set's count and chain head, folded from `slots` (in link order; `mark`
/// gives `(id, rollback, link)` for a slot of the set, `None` for another
/// set's) without placing any step, or `None` when the full check must
/// decide (a gap, a duplicate, a rollback without its migration, no
/// migration at all: `set_plan` reports them).
///
/// Link order is no order at all (rustc lays out a crate's statics as it
/// likes), but the chain is a sum (see [`hash::chain`]): one pass adds the
/// links as they come, and marks each id in a bit set (migrations in the
/// first half, rollbacks in the second); no id of a valid set reaches the
/// number of slots, which sizes it. Everything else is read from the bits
/// once at the end: the ids are exactly 0..n when n bits are set and none
/// past n. A duplicate finds its bit already set. The loop is the first
/// call's largest cost after SQLite's own (a bucket of 2,000 slots at
/// N = 1,000), so it does the least per slot: no count, no maximum, no
/// branch but the set's, the range's and the duplicate's, one small
/// allocation.
fn summarize<T>(
    seed: u128,
    slots: &[T],
    mark: impl Fn(&T) -> Option<(u32, bool, u128)>,
) -> Option<Summary> {
    // Ids a valid set can have: it has fewer migrations than slots, so an
    // id past the bits is a broken set.
    let words = slots.len().div_ceil(64);
    let mut seen = vec![0u64; 2 * words];
    let (up_bits, down_bits) = seen.split_at_mut(words);
    let mut head = seed;
    for slot in slots {
        let Some((id, rollback, link)) = mark(slot) else {
            continue;
        };
        let index = id as usize;
        let bits = if rollback {
            &mut *down_bits
        } else {
            &mut *up_bits
        };
        let word = bits.get_mut(index / 64)?;
        let bit = 1u64 << (index % 64);
        if *word & bit != 0 {
            return None;
        }
        *word |= bit;
        // A rollback's link is 0; masked all the same (no branch).
        let keep = u128::from(!rollback).wrapping_neg();
        head = hash::chain(head, link & keep);
    }
    let ups = ones(up_bits);
    // `ups` distinct ids, none at or past `ups`: exactly 0..ups. And every
    // rollback has an id below it.
    if ups == 0 || !none_from(up_bits, ups) || !none_from(down_bits, ups) {
        return None;
    }
    Some(Summary {
        count: u32::try_from(ups).ok()?,
        head,
    })
}

/// How many bits of `bits` are set.
fn ones(bits: &[u64]) -> usize {
    bits.iter().map(|word| word.count_ones() as usize).sum()
}

/// Whether no bit of `bits` at index `end` or beyond is set.
fn none_from(bits: &[u64], end: usize) -> bool {
    let (full, rest) = (end / 64, end % 64);
    bits.iter().enumerate().skip(full).all(|(i, &word)| {
        if i == full {
            word >> rest == 0
        } else {
            word == 0
        }
    })
}

/// Every problem of the whole link-time registry (found once per process)
/// and of `set` with `extra`, for `Migrator::validate` and the CLI's
/// `verify`: a broken set anywhere is a bug in this binary.
pub(crate) fn validate(set: &str, extra: &[Candidate]) -> Result<(), Vec<RegistryProblem>> {
    let mut problems: Vec<RegistryProblem> = registry_problems()
        .iter()
        .filter(|problem| problem.set() != set)
        .cloned()
        .collect();
    if let Err(found) = place(set, &hash::seed(""), extra) {
        problems.extend(found);
    }
    if problems.is_empty() {
        return Ok(());
    }
    problems.sort_by(|a, b| a.set().cmp(b.set()));
    Err(problems)
}

/// The plan of one set with its steps placed, or its problems.
fn set_plan(set: &str, seed: &u128, extra: &[Candidate]) -> Result<Plan, Vec<RegistryProblem>> {
    place(set, seed, extra).map(|steps| Plan::placed(set, *seed, steps))
}

/// The steps of one set at their ids, with the chain after each, or the
/// set's problems.
fn place(set: &str, seed: &u128, extra: &[Candidate]) -> Result<Steps, Vec<RegistryProblem>> {
    // One pass over the set's bucket of the registry picks its slots
    // (reading the slots only, not the entries), then each step goes to its
    // id's place. No sort (link order is not id order): an id taken twice or
    // beyond the count shows as a place taken or missing.
    let mine: Vec<&'static Slot> = slots_of(set).collect();
    let count = mine.iter().filter(|slot| !slot.rollback).count()
        + extra
            .iter()
            .filter(|candidate| matches!(candidate, Candidate::Up { .. }))
            .count();
    // A migration's place holds its step and its chain link.
    let mut ups: Vec<Option<(Step, u128)>> = Vec::with_capacity(count);
    ups.resize_with(count, || None);
    let mut downs: Vec<Option<Step>> = Vec::with_capacity(count);
    downs.resize_with(count, || None);
    let mut placed = 0;
    let mut clean = count > 0;
    let mut place = |id: u32, rollback: bool, step: Step, link: u128| {
        let free = if rollback {
            match downs.get_mut(id as usize) {
                Some(free @ None) => {
                    *free = Some(step);
                    true
                }
                _ => false,
            }
        } else {
            match ups.get_mut(id as usize) {
                Some(free @ None) => {
                    *free = Some((step, link));
                    placed += 1;
                    true
                }
                _ => false,
            }
        };
        clean &= free;
    };
    for slot in &mine {
        place(slot.id, slot.rollback, Step::Static(slot.entry), slot.link);
    }
    for candidate in extra {
        match candidate {
            Candidate::Up { id, step } => {
                let link = step.identity.as_ref().map_or(0, |identity| identity.link);
                place(*id, false, Step::Dynamic(Arc::clone(step)), link);
            }
            Candidate::Down { id, step } => place(*id, true, Step::Dynamic(Arc::clone(step)), 0),
        }
    }
    if !clean || placed != count {
        let registered: Vec<Registered> = mine
            .into_iter()
            .map(from_slot)
            .chain(extra.iter().map(from_candidate))
            .collect();
        return Err(check(set, &registered, true));
    }
    let mut chains = Vec::with_capacity(count);
    let mut migrations = Vec::with_capacity(count);
    let mut previous = *seed;
    // Every place is taken (placed == count).
    for (((up, link), down), id) in ups.into_iter().flatten().zip(downs).zip(0u32..) {
        previous = hash::chain(previous, link);
        chains.push(previous);
        migrations.push(Migration { id, up, down });
    }
    Ok(Steps { migrations, chains })
}

/// One registration of a set as written, before any check: what the CLI's
/// `new` and `renumber` read, since they must work on a set the sequence
/// rule refuses (two branches that each added migration 7).
#[cfg(feature = "cli")]
pub(crate) struct Raw {
    pub id: u32,
    pub rollback: bool,
    /// A migration's name; `""` for a rollback.
    pub name: String,
    /// A migration's checksum; `""` for a rollback.
    pub checksum: String,
    pub location: Location,
    /// The directory of an embedded SQL file.
    pub dir: Option<&'static private::SqlDir>,
}

/// Every registration of `set` (linked, then `extra`), unchecked, in id
/// order (then file and line).
#[cfg(feature = "cli")]
pub(crate) fn raw(set: &str, extra: &[Candidate]) -> Vec<Raw> {
    let statics = slots_of(set).map(|slot| {
        let (name, checksum) = match slot.entry.kind {
            EntryKind::Migration { name, checksum, .. } => (name, checksum),
            EntryKind::Rollback => ("", ""),
        };
        Raw {
            id: slot.id,
            rollback: slot.rollback,
            name: name.to_owned(),
            checksum: checksum.to_owned(),
            location: Step::Static(slot.entry).location(),
            dir: slot.entry.dir,
        }
    });
    let dynamics = extra.iter().map(|candidate| {
        let (id, step, rollback) = match candidate {
            Candidate::Up { id, step } => (*id, step, false),
            Candidate::Down { id, step } => (*id, step, true),
        };
        let (name, checksum) = step
            .identity
            .as_ref()
            .map_or((String::new(), String::new()), |i| {
                (i.name.clone(), i.checksum.clone())
            });
        Raw {
            id,
            rollback,
            name,
            checksum,
            location: step.location,
            dir: None,
        }
    });
    let mut raw: Vec<Raw> = statics.chain(dynamics).collect();
    raw.sort_by(|a, b| {
        (
            a.id,
            a.rollback,
            a.location.runtime,
            a.location.file,
            a.location.line,
        )
            .cmp(&(
                b.id,
                b.rollback,
                b.location.runtime,
                b.location.file,
                b.location.line,
            ))
    });
    raw
}

/// Checks the sequence rule for one set, reporting every problem with its
/// file and line.
fn check(set: &str, registered: &[Registered], require_nonempty: bool) -> Vec<RegistryProblem> {
    use std::collections::BTreeMap;
    let mut ups: BTreeMap<u32, Vec<Location>> = BTreeMap::new();
    let mut downs: BTreeMap<u32, Vec<Location>> = BTreeMap::new();
    for r in registered {
        let map = if r.rollback { &mut downs } else { &mut ups };
        map.entry(r.id).or_default().push(r.location);
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
    problems
}

fn sorted(locations: &[Location]) -> Vec<Location> {
    let mut locations = locations.to_vec();
    locations.sort_by(|a, b| (a.runtime, a.file, a.line).cmp(&(b.runtime, b.file, b.line)));
    locations
}

fn first_location(locations: &[Location]) -> Location {
    sorted(locations)[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime(id: u32, name: Option<&str>) -> Arc<DynamicStep> {
        Arc::new(DynamicStep {
            run: DynStep::Transaction(Arc::new(|_| Ok(()))),
            location: Location {
                file: "registry.rs",
                line: id + 1,
                runtime: true,
            },
            identity: name.map(|name| Identity {
                name: name.to_owned(),
                checksum: format!("{id:032x}"),
                link: hash::link(id, name, &format!("{id:032x}")),
            }),
        })
    }

    #[test]
    fn the_chain_starts_from_the_table_and_folds_every_link() {
        let extra = [
            Candidate::Up {
                id: 1,
                step: runtime(1, Some("m1")),
            },
            Candidate::Up {
                id: 0,
                step: runtime(0, Some("m0")),
            },
        ];
        let plan = set_plan("registry_chain", &hash::seed("t"), &extra)
            .unwrap_or_else(|p| panic!("{p:?}"));
        assert_eq!(plan.migrations()[0].name(), "m0");
        let first = hash::chain(hash::seed("t"), hash::link(0, "m0", &format!("{:032x}", 0)));
        assert_eq!(plan.chains()[0], first);
        assert_eq!(plan.head(), plan.chains()[1]);
        assert_eq!(
            plan.chains()[1],
            hash::chain(first, hash::link(1, "m1", &format!("{:032x}", 1)))
        );
        let other = set_plan("registry_chain", &hash::seed("T"), &extra)
            .unwrap_or_else(|p| panic!("{p:?}"));
        assert_ne!(
            other.chains()[0],
            plan.chains()[0],
            "the table's name counts, letter case too"
        );
    }

    #[test]
    fn a_gap_and_an_orphan_rollback_are_reported() {
        let extra = [
            Candidate::Up {
                id: 1,
                step: runtime(1, Some("m1")),
            },
            Candidate::Down {
                id: 7,
                step: runtime(7, None),
            },
        ];
        let problems = set_plan("registry_gap", &hash::seed("t"), &extra)
            .err()
            .unwrap_or_default();
        assert!(
            matches!(problems[0], RegistryProblem::Gap { from: 0, to: 0, .. }),
            "{problems:?}"
        );
        assert!(
            matches!(
                problems[1],
                RegistryProblem::RollbackWithoutMigration { id: 7, .. }
            ),
            "{problems:?}"
        );
    }

    /// `summarize` over `marks` among 1,000 slots, the others another set's.
    fn marks_summary(seed: u128, marks: &[(u32, bool, u128)]) -> Option<Summary> {
        let other = (0, false, 0);
        let mut slots: Vec<(bool, (u32, bool, u128))> = vec![(false, other); 1000];
        // Spread over the slots, as a bucket holds several sets.
        for (i, mark) in marks.iter().enumerate() {
            slots[(i * 7 + 3) % 1000] = (true, *mark);
        }
        summarize(seed, &slots, |&(mine, mark)| mine.then_some(mark))
    }

    /// The chain of `count` migrations folded in id order, as `place` does.
    fn folded(seed: u128, count: u32) -> Summary {
        let head = (0..count).fold(seed, |head, id| hash::chain(head, link_of(id)));
        Summary { count, head }
    }

    fn link_of(id: u32) -> u128 {
        hash::link(id, &format!("m{id}"), "")
    }

    /// `count` migrations and rollbacks for every third one, in an order
    /// drawn from `state` (a linear congruential shuffle: no dependency).
    fn shuffled(count: u32, mut state: u64) -> Vec<(u32, bool, u128)> {
        let mut marks: Vec<(u32, bool, u128)> = (0..count)
            .map(|id| (id, false, link_of(id)))
            .chain((0..count).step_by(3).map(|id| (id, true, 0)))
            .collect();
        for i in (1..marks.len()).rev() {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            marks.swap(i, (state >> 33) as usize % (i + 1));
        }
        marks
    }

    #[test]
    fn the_summary_is_the_chain_folded_in_id_order_whatever_the_link_order() {
        let seed = hash::seed("t");
        for count in [1, 2, 3, 64, 65, 200] {
            let in_order: Vec<_> = (0..count)
                .flat_map(|id| [(id, false, link_of(id)), (id, true, 0)])
                .collect();
            assert_eq!(marks_summary(seed, &in_order), Some(folded(seed, count)));
            let reversed: Vec<_> = (0..count)
                .rev()
                .map(|id| (id, false, link_of(id)))
                .collect();
            assert_eq!(marks_summary(seed, &reversed), Some(folded(seed, count)));
            for state in 0..20 {
                assert_eq!(
                    marks_summary(seed, &shuffled(count, state)),
                    Some(folded(seed, count)),
                    "count {count}, shuffle {state}"
                );
            }
        }
    }

    #[test]
    fn the_summary_leaves_every_broken_set_to_the_full_check() {
        let seed = hash::seed("t");
        let up = |id: u32| (id, false, link_of(id));
        let down = |id: u32| (id, true, 0);
        type Marks = Vec<(u32, bool, u128)>;
        // 1,000 slots: bits for ids up to 1,023 in each half.
        let broken: [(&str, Marks); 17] = [
            ("an id beyond every registration", vec![up(0), up(1000)]),
            ("an id at the bit set's end", vec![up(0), up(1023)]),
            ("an id past the bit set", vec![up(0), up(1024)]),
            ("a rollback at the bit set's end", vec![up(0), down(1023)]),
            ("a rollback past the bit set", vec![up(0), down(1024)]),
            (
                "a gap at a word's edge",
                (0..64).chain([65]).map(up).collect(),
            ),
            ("a lone migration past a word", vec![up(64)]),
            ("empty", vec![]),
            ("rollbacks only", vec![down(0)]),
            ("gap", vec![up(0), up(2)]),
            ("no migration 0", vec![up(1), up(2)]),
            ("duplicate, in order", vec![up(0), up(1), up(1)]),
            ("duplicate, out of order", vec![up(0), up(2), up(1), up(2)]),
            // As many migrations as 0..n holds, and the largest id n - 1:
            // only the duplicate tells.
            ("duplicate filling a gap", vec![up(0), up(0), up(2)]),
            ("duplicate rollback", vec![up(0), down(0), down(0)]),
            ("rollback beyond", vec![up(0), up(1), down(2)]),
            ("rollback far beyond", vec![up(0), down(u32::MAX)]),
        ];
        for (what, marks) in broken {
            assert_eq!(marks_summary(seed, &marks), None, "{what}");
        }
        // The rollback bits at a word's edge: 64 migrations, rollback 63 is
        // in, 64 is out.
        let mut edge: Vec<_> = (0..64).map(up).collect();
        edge.push(down(63));
        assert_eq!(marks_summary(seed, &edge), Some(folded(seed, 64)));
        edge.push(down(64));
        assert_eq!(marks_summary(seed, &edge), None);
        // As many migrations as the binary has registrations: the last id
        // is just below the bound.
        let full: Vec<_> = (0..1000).rev().map(up).collect();
        assert_eq!(marks_summary(seed, &full), Some(folded(seed, 1000)));
    }

    /// A bucket holding two sets, their slots interleaved: each set's
    /// summary is its own, and a name in neither has none.
    #[test]
    fn a_sets_summary_reads_only_its_own_slots() {
        static ENTRY: private::Entry = private::Entry {
            kind: private::EntryKind::Rollback,
            id: 0,
            set: "",
            foreign_keys_off: false,
            no_transaction: false,
            file: file!(),
            line: line!(),
            body: private::Body::Sql(""),
            dir: None,
        };
        let (mine, theirs) = (hash::set_hash("mine"), hash::set_hash("theirs"));
        let slot = |set_hash: u128, id: u32, rollback: bool| Slot {
            set_hash,
            link: if rollback { 0 } else { link_of(id) },
            id,
            rollback,
            entry: &ENTRY,
        };
        // Theirs: 0..5 with rollbacks; mine: 0..3, one rollback.
        let mut bucket = Vec::new();
        for id in 0..5 {
            bucket.push(slot(theirs, id, false));
            bucket.push(slot(theirs, id, true));
            if id < 3 {
                bucket.push(slot(mine, 2 - id, false));
            }
        }
        bucket.push(slot(mine, 1, true));
        let seed = hash::seed("t");
        assert_eq!(summarize_set(seed, mine, &bucket), Some(folded(seed, 3)));
        assert_eq!(summarize_set(seed, theirs, &bucket), Some(folded(seed, 5)));
        assert_eq!(
            summarize_set(seed, hash::set_hash("neither"), &bucket),
            None
        );
    }

    #[test]
    fn set_hash_is_siphash_of_the_name() {
        // Pinned: the macros compute the same at compile time.
        assert_eq!(format!("{:032x}", hash::set_hash("")), SET_HASH_EMPTY);
        assert_eq!(format!("{:032x}", hash::set_hash("a")), SET_HASH_A);
        // And so is a set's bucket (`checksum::bucket` in the macros).
        assert_eq!(
            (
                private::bucket(hash::set_hash("")),
                private::bucket(hash::set_hash("a"))
            ),
            (4, 29)
        );
    }

    const SET_HASH_EMPTY: &str = "26100ddef1cacda83b6adb4b52db7724";
    const SET_HASH_A: &str = "a18336d6a30511dd164102412b58d9dd";
}
