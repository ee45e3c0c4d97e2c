//! `renumber`: after a merge of two branches that each added migration 7,
//! the migrations applied to this database keep their ids and the ones not
//! applied yet get the ids after them, in id order (then file and line).
//! SQL files are renamed (a rollback file with its migration); for Rust
//! functions the exact edits are printed with file and line. It reads the
//! registry as written, since the sequence rule refuses the set.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::render::Paint;
use super::Failure;
use crate::error::{Location, SetName};
use crate::migrator::Migrator;
use crate::registry::{self, Raw};

/// One registration that gets a new id.
struct Move<'a> {
    raw: &'a Raw,
    to: u32,
}

/// A file or migration directory to rename.
struct Rename {
    from: PathBuf,
    to: PathBuf,
    shown_from: String,
    shown_to: String,
}

pub(super) fn run(
    conn: &Connection,
    migrator: &Migrator,
    set: Option<&str>,
    dry_run: bool,
    dir: Option<&Path>,
    out: &mut dyn Write,
    paint: Paint,
) -> Result<(), Failure> {
    let (own_set, _, extra) = migrator.cli_view();
    let set = set.unwrap_or(own_set);
    let (raw, applied) = if set == own_set {
        (
            registry::raw(set, extra),
            migrator.recorded_migrations(conn)?,
        )
    } else {
        (
            registry::raw(set, &[]),
            Migrator::new().set(set).recorded_migrations(conn)?,
        )
    };
    let migrations: Vec<&Raw> = raw.iter().filter(|r| !r.rollback).collect();
    if migrations.is_empty() {
        return Err(Failure::refused(
            format!("{} has no migrations in this binary", SetName(set)),
            "give the set with --set NAME",
        ));
    }

    // The applied ones keep their ids: find each among the registrations.
    let mut kept: Vec<*const Raw> = Vec::new();
    for row in &applied {
        let candidates: Vec<&Raw> = migrations
            .iter()
            .copied()
            .filter(|m| m.id == row.id)
            .collect();
        let mut matching: Vec<&Raw> = candidates
            .iter()
            .copied()
            .filter(|m| m.name == row.name)
            .collect();
        if matching.len() > 1 {
            matching.retain(|m| m.checksum == row.checksum);
        }
        match matching.as_slice() {
            [one] => kept.push(*one as *const Raw),
            [] if candidates.is_empty() => {
                return Err(Failure::refused(
                    format!(
                        "migration {} `{}` is applied to this database, but {} has no migration {} \
                         in this binary",
                        row.id,
                        row.name,
                        SetName(set),
                        row.id
                    ),
                    "run renumber from the binary that applied it (with every crate of the set \
                     linked); an applied migration never changes its id",
                ));
            }
            [] => {
                return Err(Failure::refused(
                    format!(
                        "migration {} is applied to this database as `{}`, and none of the \
                         migrations with id {} is it: {}",
                        row.id,
                        row.name,
                        row.id,
                        list(&candidates)
                    ),
                    format!(
                        "an applied migration keeps its id and name: give `{}` back id {} (or \
                         restore it), then run renumber again; it moves only migrations not \
                         applied yet",
                        row.name, row.id
                    ),
                ));
            }
            several => {
                return Err(Failure::refused(
                    format!(
                        "the applied migration {} `{}` is defined {} times: {}",
                        row.id,
                        row.name,
                        several.len(),
                        list(several)
                    ),
                    "keep one definition and delete the others (or rename those that are new \
                     migrations), then run renumber again",
                ));
            }
        }
    }

    // The others follow, in id order (then file and line).
    let first_free = u32::try_from(applied.len()).unwrap_or(u32::MAX);
    let mut moves: Vec<Move<'_>> = Vec::new();
    let mut next = first_free;
    for m in &migrations {
        if kept.contains(&(*m as *const Raw)) {
            continue;
        }
        if m.id != next {
            moves.push(Move { raw: m, to: next });
        }
        next = next.saturating_add(1);
    }
    if moves.is_empty() {
        writeln!(
            out,
            "nothing to renumber: {} has ids 0 to {}, each used once, the applied ones first",
            SetName(set),
            migrations.len() - 1
        )?;
        return Ok(());
    }

    // Each rollback follows its migration.
    let mut notes: Vec<String> = Vec::new();
    for rollback in raw.iter().filter(|r| r.rollback) {
        let owners: Vec<&Raw> = migrations
            .iter()
            .copied()
            .filter(|m| m.id == rollback.id)
            .collect();
        let owner = match owners.as_slice() {
            [one] => Some(*one),
            several => {
                let paired: Vec<&Raw> = several
                    .iter()
                    .copied()
                    .filter(|m| pairs(m, rollback))
                    .collect();
                match paired.as_slice() {
                    [one] => Some(*one),
                    _ => {
                        notes.push(format!(
                            "rollback {} at {} could undo any of {}: give it the id of the \
                             migration it undoes",
                            rollback.id,
                            rollback.location,
                            list(several)
                        ));
                        None
                    }
                }
            }
        };
        // Right after it, so that its file is renamed with the
        // migration's: a run stopped between the two would leave it beside
        // another migration.
        if let Some(at) = owner.and_then(|o| moves.iter().position(|m| std::ptr::eq(m.raw, o))) {
            let to = moves[at].to;
            moves.insert(at + 1, Move { raw: rollback, to });
        }
    }

    // SQL files to rename, Rust attributes to edit.
    let mut renames: Vec<Rename> = Vec::new();
    let mut edits: Vec<(&str, u32, String)> = Vec::new();
    for m in &moves {
        match m.raw.dir {
            Some(sql_dir) => {
                if sql_dir.sorted {
                    return Err(Failure::refused(
                        format!(
                            "{} needs id {} but it comes from a directory embedded with \
                             ids = \"sorted\", where a file's id is its place in version order",
                            m.raw.location.file, m.to
                        ),
                        "rename the files so that their versions sort in the order they should \
                         run, or give the clashing Rust migration another id",
                    ));
                }
                let rename = rename(m, sql_dir.shown, sql_dir.absolute, dir)?;
                if !renames.iter().any(|r| r.from == rename.from) {
                    renames.push(rename);
                }
            }
            None => edits.push((m.raw.location.file, m.raw.location.line, edit(m))),
        }
    }
    edits.sort();
    // A run stopped part-way (killed, or its undo failing) left some
    // renamed: those are done.
    let (already, renames): (Vec<Rename>, Vec<Rename>) = renames
        .into_iter()
        .partition(|r| on_disk(&r.to) && !on_disk(&r.from));
    let mut targets = BTreeSet::new();
    for r in &renames {
        if on_disk(&r.to) || !targets.insert(r.to.clone()) {
            return Err(Failure::refused(
                format!(
                    "cannot rename {} to {}: {} already exists",
                    r.shown_from, r.shown_to, r.shown_to
                ),
                "rename one of the two by hand, then run renumber again",
            ));
        }
        if !on_disk(&r.from) {
            return Err(Failure::refused(
                format!("{} is not on disk at {}", r.shown_from, r.from.display()),
                "run this where the source tree is, or give the migrations directory with \
                 --dir PATH",
            ));
        }
    }

    writeln!(
        out,
        "{}: {} applied migration(s) keep their ids; the ones not applied yet follow them:",
        SetName(set),
        applied.len()
    )?;
    for m in moves.iter().filter(|m| !m.raw.rollback) {
        writeln!(
            out,
            "  migration {} `{}` -> {}  ({})",
            m.raw.id, m.raw.name, m.to, m.raw.location
        )?;
    }
    if !dry_run {
        rename_all(&renames)?;
    }
    for r in &already {
        writeln!(out, "already renamed {} -> {}", r.shown_from, r.shown_to)?;
    }
    let verb = if dry_run { "would rename" } else { "renamed" };
    for r in &renames {
        writeln!(
            out,
            "{} {} -> {}",
            paint.green(verb),
            r.shown_from,
            r.shown_to
        )?;
    }
    for (_, _, line) in &edits {
        writeln!(out, "{} {line}", paint.yellow("edit"))?;
    }
    for note in &notes {
        writeln!(out, "{} {note}", paint.yellow("note:"))?;
    }
    let then = if edits.is_empty() {
        "then rebuild"
    } else {
        "make the edits above, then rebuild"
    };
    if dry_run {
        writeln!(out, "dry run: nothing was changed")?;
    } else {
        writeln!(out, "{then}")?;
    }
    Ok(())
}

/// Whether something is at `path`, a dangling symbolic link included
/// (which `Path::exists` says is not there, and a rename would replace).
fn on_disk(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// Renames every file, or none: a rename that fails puts back the ones
/// done before it, last first, so that no rollback file is left beside
/// another migration's file (where the next build would pair them).
fn rename_all(renames: &[Rename]) -> Result<(), Failure> {
    for (done, r) in renames.iter().enumerate() {
        let Err(e) = std::fs::rename(&r.from, &r.to) else {
            continue;
        };
        let mut stuck = Vec::new();
        for back in renames[..done].iter().rev() {
            if std::fs::rename(&back.to, &back.from).is_err() {
                stuck.push(format!("{} (now {})", back.shown_from, back.shown_to));
            }
        }
        let what = format!("cannot rename {} to {}: {e}", r.shown_from, r.shown_to);
        return Err(if stuck.is_empty() {
            Failure::refused(
                format!("{what}; the files renamed before it were put back: nothing changed"),
                "fix the cause and run renumber again",
            )
        } else {
            Failure::refused(
                format!(
                    "{what}; putting back the files renamed before it failed too for: {}",
                    stuck.join(", ")
                ),
                "fix the cause and run renumber again with the same binary: it skips the files \
                 already renamed and carries on",
            )
        });
    }
    Ok(())
}

fn list(raws: &[&Raw]) -> String {
    let parts: Vec<String> = raws
        .iter()
        .map(|r| format!("`{}` at {}", r.name, r.location))
        .collect();
    parts.join(", ")
}

/// Whether `rollback` undoes `migration`, where several share its id: the
/// rollback file beside an SQL file, or the one function in its file.
fn pairs(migration: &Raw, rollback: &Raw) -> bool {
    match (migration.dir, rollback.dir) {
        (Some(_), Some(_)) => {
            let up = migration.location.file;
            rollback.location.file == super::new::down_file_name(up) || rollback.location.file == up
        }
        (None, None) => migration.location.file == rollback.location.file,
        _ => false,
    }
}

/// The file (or diesel directory) of an SQL registration, with its version
/// replaced by the new id in the same width.
fn rename(
    m: &Move<'_>,
    shown: &str,
    absolute: &str,
    dir: Option<&Path>,
) -> Result<Rename, Failure> {
    let file = m.raw.location.file;
    let unexpected = || {
        Failure::refused(
            format!("{file}: cannot tell its version from its name"),
            "rename it by hand",
        )
    };
    let rest = file
        .strip_prefix(shown)
        .and_then(|rest| rest.strip_prefix('/'))
        .ok_or_else(unexpected)?;
    // A diesel-style directory is renamed whole, up.sql and down.sql with it.
    let component = rest.split('/').next().unwrap_or(rest);
    let (prefix, unprefixed) = match component.strip_prefix('V') {
        Some(tail) if tail.starts_with(|c: char| c.is_ascii_digit()) => ("V", tail),
        _ => ("", component),
    };
    let digits: String = unprefixed
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    if digits.is_empty() {
        return Err(unexpected());
    }
    let width = digits.len();
    let renamed = format!("{prefix}{:0width$}{}", m.to, &unprefixed[digits.len()..]);
    let base = dir.map_or_else(|| PathBuf::from(absolute), Path::to_owned);
    let shown_base = dir.map_or_else(|| shown.to_owned(), |d| d.display().to_string());
    Ok(Rename {
        from: base.join(component),
        to: base.join(&renamed),
        shown_from: format!("{shown_base}/{component}"),
        shown_to: format!("{shown_base}/{renamed}"),
    })
}

/// The edit of a Rust registration: its attribute's line as it is and as
/// it should be, read from the source file when it is here.
fn edit(m: &Move<'_>) -> String {
    let Location {
        file,
        line,
        runtime,
    } = m.raw.location;
    let from = m.raw.id;
    let to = m.to;
    if runtime {
        return format!(
            "{file}:{line}: this migration is added at run time: change its id {from} to {to}"
        );
    }
    let attribute = if m.raw.rollback {
        "rollback"
    } else {
        "migration"
    };
    let source = read_source(file, m.raw.dir.is_none()).and_then(|text| {
        text.lines()
            .nth(line.checked_sub(1)? as usize)
            .map(str::to_owned)
    });
    if let Some(text) = source {
        if let Some(replaced) = replace_id(&text, attribute, from, to) {
            return format!("{file}:{line}: {}  =>  {}", text.trim(), replaced.trim());
        }
    }
    format!("{file}:{line}: change #[{attribute}({from}, …)] to #[{attribute}({to}, …)]")
}

/// A Rust source file as `file!()` names it: relative to the workspace
/// (or the crate) the binary was built in, so looked for from the current
/// directory and each of its parents.
fn read_source(file: &str, rust: bool) -> Option<String> {
    if !rust {
        return None;
    }
    let here = std::env::current_dir().ok()?;
    here.ancestors()
        .find_map(|dir| std::fs::read_to_string(dir.join(file)).ok())
}

/// `line` with the id of its `#[migration(ID` (or `rollback`) replaced.
fn replace_id(line: &str, attribute: &str, from: u32, to: u32) -> Option<String> {
    let at = line.find(&format!("{attribute}("))? + attribute.len() + 1;
    let rest = &line[at..];
    let spaces = rest.len() - rest.trim_start().len();
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    if digits.parse::<u32>().ok()? != from {
        return None;
    }
    let start = at + spaces;
    Some(format!(
        "{}{to}{}",
        &line[..start],
        &line[start + digits.len()..]
    ))
}

#[cfg(test)]
mod tests {
    use super::{rename_all, replace_id, Rename};

    /// A rename that fails puts back the ones before it (a probe's
    /// finding: a rollback file left beside another migration's file, which
    /// the next build paired with it).
    #[test]
    fn a_failed_rename_puts_back_the_ones_before_it() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("002_right.sql"), "up")?;
        let rename = |from: &str, to: &str| Rename {
            from: dir.path().join(from),
            to: dir.path().join(to),
            shown_from: from.to_owned(),
            shown_to: to.to_owned(),
        };
        let renames = [
            rename("002_right.sql", "003_right.sql"),
            rename("002_right.down.sql", "003_right.down.sql"),
        ];
        let Err(failure) = rename_all(&renames) else {
            panic!("a missing file renamed");
        };
        let shown = failure.to_string();
        assert!(
            shown.contains("cannot rename 002_right.down.sql to 003_right.down.sql")
                && shown.contains("put back: nothing changed"),
            "{shown}"
        );
        assert!(dir.path().join("002_right.sql").is_file());
        assert!(!dir.path().join("003_right.sql").exists());
        Ok(())
    }

    #[test]
    fn the_attribute_id_is_replaced_and_nothing_else() {
        assert_eq!(
            replace_id("#[migration(3, name = \"x3\")]", "migration", 3, 5).as_deref(),
            Some("#[migration(5, name = \"x3\")]")
        );
        assert_eq!(
            replace_id(
                "  #[migrate_core::rollback( 12 , set = \"a\")]",
                "rollback",
                12,
                14
            )
            .as_deref(),
            Some("  #[migrate_core::rollback( 14 , set = \"a\")]")
        );
        assert_eq!(replace_id("#[migration(4)]", "migration", 3, 5), None);
        assert_eq!(replace_id("fn x()", "migration", 3, 5), None);
    }
}
