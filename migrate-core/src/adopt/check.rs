//! Whether the other tool's record lines up with this set (before it is
//! adopted) or with this set's history (when the set is already managed),
//! and, when it does not, what is wrong and what to do.

use rusqlite::Connection;

use super::tools::{self, Applied};
use super::{refused, Legacy};
use crate::error::{Error, Location, SetName};
use crate::history::{self, Row, Table};
use crate::registry::Plan;

/// How many items a message lists before it says how many more there are.
const LISTED: usize = 10;

/// Before adopting: the record maps onto migrations `0..applied.len()` of
/// the set, by count, by name where the tool stores names, and by version
/// where the tool stores no names but the migration's file shows one.
pub(super) fn maps(plan: &Plan, legacy: &Legacy, applied: &[Applied]) -> Result<(), Error> {
    let mut problems = Vec::new();
    if applied.len() > plan.migrations().len() {
        let missing = &applied[plan.migrations().len()..];
        problems.push(format!(
            "{} applied {} migration(s) but {} has only {}: {} {} missing from this binary. \
             Embed the whole directory {} ran, unchanged (`embed_migrations!(\"dir\", ids = \
             \"sorted\")`), or, if some are Rust migrations in another crate, link that crate \
             (`use that_crate as _;`)",
            legacy.tool(),
            applied.len(),
            SetName(&plan.set),
            plan.migrations().len(),
            list(missing.iter().map(|a| show(legacy, a))),
            if missing.len() == 1 { "is" } else { "are" },
            legacy.tool(),
        ));
    }
    names_line_up(plan, legacy, applied, &mut problems);
    versions_line_up(plan, legacy, applied, &mut problems);
    finish(legacy, problems)
}

/// The set is already managed: the record must agree with its history.
/// The history may be longer (migrations applied since the adoption); the
/// record may not, and the names must be the same where both have them.
pub(super) fn agrees(
    conn: &Connection,
    plan: &Plan,
    table: &Table,
    rows: &[Row],
    legacy: &Legacy,
    mirror_user_version: bool,
) -> Result<(), Error> {
    let mut problems = Vec::new();
    if matches!(legacy, Legacy::UserVersion { .. }) && mirror_user_version {
        // Since the adoption, user_version is migrate-core's own mirror.
        let version = crate::sqlite::user_version(conn)?;
        if version != rows.len() as i64 {
            problems.push(format!(
                "PRAGMA user_version is {version}, but the tracking table {:?} records {} \
                 applied migration(s), and migrate-core keeps the two equal for the default set: \
                 something else set user_version (did the old runner run again?). Check which \
                 of the runner's files the schema has; if it matches the tracking table, set \
                 PRAGMA user_version = {}",
                table.name,
                rows.len(),
                rows.len(),
            ));
        }
        return finish(legacy, problems);
    }
    let Some(applied) = tools::read(conn, plan, legacy)? else {
        // Nothing to compare: a database this library built, or
        // fastlite's table, upgraded in place.
        return Ok(());
    };
    if applied.len() > rows.len() {
        // Two histories can end there: migrate-core rolled back migrations
        // it had adopted (the other tool's record, which it never writes,
        // still lists them), or the other tool ran again. Nothing stored
        // tells them apart, so the message gives the way out of each.
        let extra = &applied[rows.len()..];
        problems.push(format!(
            "{tool} records {} applied migration(s), the tracking table {:?} only {}: {} {}. \
             Either migrate-core rolled {them} back after adopting ({tool}'s record, which \
             migrate-core never writes, still lists {them}), or {tool} ran again after \
             migrate-core took over, and two tools migrate this database. If migrate-core \
             rolled {them} back: migrate applies {them} again, after which adopt agrees; or \
             remove the adopt call, which has nothing left to do once a database is adopted. If \
             {tool} ran: stop running it on this database; then, if the schema has {its} \
             changes, drop the table {:?} and adopt again",
            applied.len(),
            table.name,
            rows.len(),
            list(extra.iter().map(|a| show(legacy, a))),
            if extra.len() == 1 {
                "is recorded by it and not by migrate-core"
            } else {
                "are recorded by it and not by migrate-core"
            },
            table.name,
            tool = legacy.tool(),
            them = if extra.len() == 1 { "it" } else { "them" },
            its = if extra.len() == 1 { "its" } else { "their" },
        ));
    }
    for (id, (theirs, ours)) in applied.iter().zip(rows).enumerate() {
        let Some(name) = &theirs.name else { continue };
        if !legacy.same_name(name, &ours.applied.name) {
            problems.push(format!(
                "migration {id} is `{}` in the tracking table {:?}, but {} recorded `{name}` \
                 ({}) at that place: the two histories disagree, and adopt cannot tell which one \
                 the schema follows. If it follows {}'s, drop the table {:?} and adopt again; if \
                 it follows migrate-core's, there is nothing to adopt: remove the adopt call",
                ours.applied.name,
                table.name,
                legacy.tool(),
                show_version(legacy, &theirs.version),
                legacy.tool(),
                table.name,
            ));
        }
    }
    versions_line_up(
        plan,
        legacy,
        &applied[..applied.len().min(rows.len())],
        &mut problems,
    );
    finish(legacy, problems)
}

/// Nothing records an applied migration, or the tool's table is empty:
/// fine for a new database or one this library already manages (another
/// set's tracking table), as `migrate()` judges it; refused when something
/// else built the tables (the tool's own empty table aside).
pub(super) fn nothing_applied(
    conn: &Connection,
    set: &str,
    table: &Table,
    legacy: &Legacy,
    their_table: Option<&str>,
) -> Result<(), Error> {
    let (mut tables, user_version) = match history::check_managed(conn, set, table) {
        Ok(()) => return Ok(()),
        Err(Error::UnmanagedDatabase {
            tables,
            user_version,
            ..
        }) => (tables, user_version),
        Err(other) => return Err(other),
    };
    tables.retain(|name| {
        their_table.map_or(true, |theirs| !crate::sqlite::same_identifier(name, theirs))
    });
    if tables.is_empty() && user_version == 0 {
        return Ok(());
    }
    let what = match (legacy, their_table) {
        (Legacy::UserVersion { .. }, _) => {
            "user_version is 0: the runner applied nothing, so there is nothing to adopt".to_owned()
        }
        (_, Some(theirs)) => format!(
            "{theirs:?} {}",
            if tools::columns(conn, theirs)?.is_empty() {
                format!(
                    "does not exist, so {} did not build this database",
                    legacy.tool()
                )
            } else {
                "records no applied migration, so there is nothing to adopt".to_owned()
            }
        ),
        (_, None) => "nothing records an applied migration".to_owned(),
    };
    let found = if tables.is_empty() {
        format!("PRAGMA user_version is {user_version}")
    } else {
        format!("it has tables ({})", list(tables.iter().cloned()))
    };
    let other = tables
        .iter()
        .find_map(|table| tools::legacy_for_table(table))
        .map(|legacy| format!("; {legacy} reads the table this database has"))
        .unwrap_or_default();
    Err(refused(
        legacy,
        vec![format!(
            "{what}, yet {found}. If another tool built it, adopt with that tool's Legacy \
             variant{other}; if its schema matches your migrations up to some id N, record them \
             as applied with Migrator::baseline(conn, N)"
        )],
    ))
}

/// Compares names where the tool stores them. A misplaced migration
/// shifts every name after it: that is one problem (with the advice that
/// fits), not a rename of each.
fn names_line_up(plan: &Plan, legacy: &Legacy, applied: &[Applied], problems: &mut Vec<String>) {
    let ours = plan.migrations();
    let named = |k: usize| applied.get(k).and_then(|a| a.name.as_deref());
    for (k, theirs) in applied.iter().enumerate().take(ours.len()) {
        let Some(name) = &theirs.name else { continue };
        if legacy.same_name(name, ours[k].name()) {
            continue;
        }
        // Ours has migrations the tool never applied, before ones it did.
        if let Some(at) = (k + 1..ours.len()).find(|&j| legacy.same_name(name, ours[j].name())) {
            problems.push(format!(
                "this set has {} before `{}` ({}), which {} never applied: added to the \
                 directory with a version older than applied ones, skipped by {}, or its row \
                 deleted. A migration that never ran needs a version newer than the newest \
                 applied one ({}), so that it sorts after it (applied migrations keep their ids); \
                 one that did run needs its row back in {}'s table",
                list(ours[k..at].iter().map(|m| format!(
                    "migration {} `{}` ({})",
                    m.id,
                    m.name(),
                    m.up.location()
                ))),
                ours[at].name(),
                show_version(legacy, &theirs.version),
                legacy.tool(),
                legacy.tool(),
                applied
                    .last()
                    .map(|a| show_version(legacy, &a.version))
                    .unwrap_or_default(),
                legacy.tool(),
            ));
            return;
        }
        // The tool applied migrations this set does not have there.
        if let Some(at) = (k + 1..applied.len())
            .find(|&j| named(j).is_some_and(|n| legacy.same_name(n, ours[k].name())))
        {
            problems.push(format!(
                "{} applied {} before `{}`, which this set does not have there: the file left \
                 the directory. Put it back where it was (the database ran it; applied \
                 migrations keep their ids)",
                legacy.tool(),
                list(applied[k..at].iter().map(|a| show(legacy, a))),
                ours[k].name(),
            ));
            return;
        }
        let bootstrap = if k == 0 && matches!(legacy, Legacy::SchemaMigrations { .. }) {
            " (a bootstrap row, version 000, counts as migration 0 only when this set starts \
             with the bootstrap file, under the same name)"
        } else {
            ""
        };
        problems.push(format!(
            "migration {k} is `{}` here ({}), but {} applied `{name}` ({}) at that place{bootstrap}. \
             If you renamed it, give it back the name it was applied under; if it is another \
             migration, this set does not match this database: embed the directory {} ran, \
             unchanged",
            ours[k].name(),
            ours[k].up.location(),
            legacy.tool(),
            show_version(legacy, &theirs.version),
            legacy.tool(),
        ));
    }
}

/// Where the tool stores no names (`user_version`, diesel) but a
/// migration's SQL file shows its version in its name, the two must be the
/// same number. The first difference is reported: the rest follow from it.
fn versions_line_up(plan: &Plan, legacy: &Legacy, applied: &[Applied], problems: &mut Vec<String>) {
    if !matches!(
        legacy,
        Legacy::UserVersion { .. } | Legacy::Diesel | Legacy::Goose
    ) {
        return;
    }
    for (k, (theirs, ours)) in applied.iter().zip(plan.migrations()).enumerate() {
        let Some(number) = file_number(&ours.up.location()) else {
            // A Rust function (goose's stand-in for a Go migration) shows
            // no version: counting maps it right only when goose applied
            // every version up to it, which goose's own numbering shows
            // when its versions follow one another (a probe's finding:
            // with versions 1 and 3 applied, the function for 2 was
            // recorded as applied and the one for 3 ran again).
            if matches!(legacy, Legacy::Goose) && !consecutive(&applied[..=k]) {
                problems.push(format!(
                    "migration {k} `{}` ({}) is a Rust function, so it shows no goose version, \
                     and goose applied versions {} up to it, which do not follow one another \
                     (a version skipped, or timestamps): which of them is this migration \
                     cannot be told. Embed goose's SQL files, whose names carry their versions, \
                     for the migrations that have them; or, once you have checked which \
                     migrations the schema has, record them with Migrator::baseline(conn, N)",
                    ours.name(),
                    ours.up.location(),
                    list(applied[..=k].iter().map(|a| a.version.clone())),
                ));
                return;
            }
            continue;
        };
        if same_number(&number, &theirs.version) {
            continue;
        }
        let k = ours.id;
        let file = ours.up.location().file;
        problems.push(match legacy {
            Legacy::UserVersion { first_file }
                if as_number(&number) < as_number(&theirs.version) =>
            {
                let first = as_number(&number)
                    .and_then(|n| n.checked_sub(u128::from(k)))
                    .map(|first| {
                        format!(
                            "; if the runner's first file really is number {first}, pass \
                             first_file: {first}"
                        )
                    })
                    .unwrap_or_default();
                format!(
                    "migration {k} `{}` comes from {file}, numbered {number}, but first_file: \
                     {first_file} makes it the runner's file {}: the numbers do not line up. If \
                     {file} is a placeholder added so that ids start at 0, remove it and embed the \
                     directory with `ids = \"sorted\"` instead: with a placeholder, the count \
                     lines up while the wrong files are recorded as applied, and the last file \
                     that ran would run again{first}",
                    ours.name(),
                    theirs.version,
                )
            }
            Legacy::UserVersion { .. } => {
                // A gap in the runner's numbering: user_version counts file
                // numbers, not files, so counting from first_file misplaces
                // every file after the gap. The numbers themselves tell
                // which files ran.
                let ran = applied.last().and_then(|a| as_number(&a.version));
                let through =
                    plan.migrations()
                        .iter()
                        .take_while(|m| {
                            file_number(&m.up.location())
                                .and_then(|n| as_number(&n))
                                .zip(ran)
                                .is_some_and(|(n, ran)| n <= ran)
                        })
                        .last()
                        .map(|m| {
                            format!(
                            "; the files numbered up to {} are migrations 0..={}: if the schema \
                             has them all, record them with Migrator::baseline(conn, {})",
                            applied.last().map(|a| a.version.as_str()).unwrap_or_default(),
                            m.id,
                            m.id
                        )
                        })
                        .unwrap_or_default();
                format!(
                    "migration {k} `{}` comes from {file}, numbered {number}, but counting from \
                     first_file makes it the runner's file {}: the runner's numbers have a gap, \
                     and user_version (a file number, not a count) cannot be adopted by \
                     counting{through}",
                    ours.name(),
                    theirs.version,
                )
            }
            _ => {
                format!(
                "migration {k} `{}` comes from {file}, version {number}, but {} applied version \
                 {} at that place: this set does not embed the directory {} ran, or the directory \
                 gained a migration older than applied ones. Embed that directory, unchanged \
                 (`embed_migrations!(\"dir\", ids = \"sorted\")`); a new migration needs a version \
                 newer than {}",
                ours.name(),
                legacy.tool(),
                theirs.version,
                legacy.tool(),
                applied.last().map(|a| a.version.as_str()).unwrap_or_default(),
            )
            }
        });
        return;
    }
}

/// The version an embedded SQL file shows in its name, digits only:
/// `0003_x.sql`, `20240101120000_x.up.sql`, `V3__x.sql`,
/// `2018-12-25-000000_x/up.sql`, `01-x/up.sql`. `None` for Rust
/// migrations and migrations added at run time.
pub(super) fn file_number(location: &Location) -> Option<String> {
    if location.runtime || !location.file.ends_with(".sql") {
        return None;
    }
    let mut parts = location.file.rsplit(['/', '\\']);
    let last = parts.next()?;
    let stem = if last == "up.sql" || last == "down.sql" {
        parts.next()?
    } else {
        last
    };
    let stem = match stem.as_bytes() {
        [b'V' | b'U', second, ..] if second.is_ascii_digit() => &stem[1..],
        _ => stem,
    };
    let digits: String = stem
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '-')
        .filter(char::is_ascii_digit)
        .collect();
    (!digits.is_empty()).then_some(digits)
}

/// Whether the versions are consecutive numbers (1, 2, 3: goose's own
/// numbering, nothing skipped).
fn consecutive(applied: &[Applied]) -> bool {
    applied.windows(2).all(|pair| {
        match (as_number(&pair[0].version), as_number(&pair[1].version)) {
            (Some(a), Some(b)) => a.checked_add(1) == Some(b),
            _ => false,
        }
    })
}

/// A version's numeric value (digits only; `None` past 38 digits).
fn as_number(digits: &str) -> Option<u128> {
    digits.trim().parse().ok()
}

/// Two versions are the same number (`001` and `1`).
fn same_number(a: &str, b: &str) -> bool {
    let trim = |s: &str| -> String {
        let t = s.trim().trim_start_matches('0');
        if t.is_empty() { "0" } else { t }.to_owned()
    };
    trim(a) == trim(b)
}

/// A version as the tool's users know it.
pub(super) fn show_version(legacy: &Legacy, version: &str) -> String {
    match legacy {
        Legacy::UserVersion { .. } => format!("file {version}"),
        Legacy::Fastlite => format!("id {version}"),
        Legacy::Refinery => format!("V{version}"),
        _ => format!("version {version}"),
    }
}

/// An applied migration as the messages list it.
fn show(legacy: &Legacy, applied: &Applied) -> String {
    match &applied.name {
        Some(name) => format!("{} `{name}`", show_version(legacy, &applied.version)),
        None => show_version(legacy, &applied.version),
    }
}

/// At most [`LISTED`] items, then how many more.
fn list(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    let mut shown = items
        .iter()
        .take(LISTED)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > LISTED {
        shown.push_str(&format!(" and {} more", items.len() - LISTED));
    }
    shown
}

fn finish(legacy: &Legacy, problems: Vec<String>) -> Result<(), Error> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(refused(legacy, problems))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::registry::{DynamicStep, Identity, Migration, Step};

    /// A plan of migrations embedded from these SQL files, in this order
    /// (as `ids = "sorted"` numbers them).
    fn embedded(files: &[&'static str]) -> Plan {
        let migrations = files
            .iter()
            .enumerate()
            .map(|(id, file)| Migration {
                id: id as u32,
                up: Step::Dynamic(Arc::new(DynamicStep {
                    run: crate::registry::DynStep::Transaction(Arc::new(
                        |_: &rusqlite::Transaction<'_>| Ok(()),
                    )),
                    location: at(file),
                    identity: Some(Identity {
                        name: format!("m{id}"),
                        checksum: String::new(),
                        link: 0,
                    }),
                })),
                down: None,
            })
            .collect();
        Plan::from_parts(migrations, vec![0; files.len()])
    }

    fn versions(versions: &[&str]) -> Vec<Applied> {
        versions
            .iter()
            .map(|v| Applied {
                version: (*v).to_owned(),
                name: None,
                applied_at: None,
            })
            .collect()
    }

    fn refusal(plan: &Plan, legacy: &Legacy, applied: &[Applied]) -> String {
        maps(plan, legacy, applied)
            .expect_err("refused")
            .to_string()
    }

    #[test]
    fn user_version_files_that_line_up_are_adopted() {
        let plan = embedded(&["m/0001_a.sql", "m/0002_b.sql", "m/0003_c.sql"]);
        let legacy = Legacy::UserVersion { first_file: 1 };
        assert!(maps(&plan, &legacy, &versions(&["1", "2"])).is_ok());
    }

    #[test]
    fn user_version_gap_in_the_numbering_points_to_baseline() {
        // The runner ran 0001, 0002 and 0005 (user_version 5); counting
        // from first_file would call file 0005 the runner's file 3.
        let plan = embedded(&[
            "m/0001_a.sql",
            "m/0002_b.sql",
            "m/0005_c.sql",
            "m/0006_d.sql",
        ]);
        let legacy = Legacy::UserVersion { first_file: 1 };
        let text = refusal(&plan, &legacy, &versions(&["1", "2", "3", "4", "5"]));
        assert!(text.contains("m/0005_c.sql, numbered 0005"), "{text}");
        assert!(text.contains("the runner's numbers have a gap"), "{text}");
        assert!(text.contains("Migrator::baseline(conn, 2)"), "{text}");
        assert!(!text.contains("placeholder"), "{text}");
    }

    #[test]
    fn diesel_versions_are_compared_with_the_directories() {
        let plan = embedded(&[
            "migrations/2024-01-01-120000_a/up.sql",
            "migrations/2024-01-02-120000_b/up.sql",
        ]);
        let same = versions(&["20240101120000", "20240102120000"]);
        assert!(maps(&plan, &Legacy::Diesel, &same).is_ok());
        let other = versions(&["20240101120000", "20240105120000"]);
        let text = refusal(&plan, &Legacy::Diesel, &other);
        assert!(
            text.contains(
                "migration 1 `m1` comes from migrations/2024-01-02-120000_b/up.sql, version \
                 20240102120000, but diesel applied version 20240105120000"
            ),
            "{text}"
        );
    }

    fn at(file: &'static str) -> Location {
        Location {
            file,
            line: 1,
            runtime: false,
        }
    }

    #[test]
    fn file_numbers() {
        let number = |file| file_number(&at(file));
        assert_eq!(
            number("migrations/0003_add_tags.sql").as_deref(),
            Some("0003")
        );
        assert_eq!(
            number("migrations/20240101120000_create_users.up.sql").as_deref(),
            Some("20240101120000")
        );
        assert_eq!(
            number("migrations/2018-12-25-000000_create_users/up.sql").as_deref(),
            Some("20181225000000")
        );
        assert_eq!(number("migrations/V3__add_tags.sql").as_deref(), Some("3"));
        assert_eq!(
            number("migrations\\01-friend_car\\up.sql").as_deref(),
            Some("01")
        );
        assert_eq!(number("src/migrations.rs"), None);
        assert_eq!(number("migrations/init.sql"), None);
        let runtime = Location {
            runtime: true,
            ..at("migrations/0003_add_tags.sql")
        };
        assert_eq!(file_number(&runtime), None);
    }

    #[test]
    fn numbers_compare_without_leading_zeros() {
        assert!(same_number("001", "1"));
        assert!(same_number("0000", "0"));
        assert!(!same_number("10", "1"));
    }
}
