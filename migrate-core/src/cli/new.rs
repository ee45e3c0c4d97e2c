//! `new NAME`: the next migration of a set, with the next id: SQL files in
//! the set's embedded directory, named as the directory names its files,
//! or a Rust function's skeleton, printed or appended to a file.

use std::io::Write;
use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::render::Paint;
use super::Failure;
use crate::error::SetName;
use crate::migrator::Migrator;
use crate::registry::{self, Raw};

/// What `new` was asked for.
pub(super) struct Request<'a> {
    pub name: &'a str,
    pub set: Option<&'a str>,
    pub reversible: bool,
    pub dir: Option<&'a Path>,
    pub rust: bool,
    pub file: Option<&'a Path>,
    pub dry_run: bool,
}

pub(super) fn run(
    conn: &Connection,
    migrator: &Migrator,
    request: &Request<'_>,
    out: &mut dyn Write,
    paint: Paint,
) -> Result<(), Failure> {
    let name = request.name;
    check_name(name)?;
    let (own_set, _, extra) = migrator.cli_view();
    let set = request.set.unwrap_or(own_set);
    let raw = registry::raw(set, if set == own_set { extra } else { &[] });
    let migrations: Vec<&Raw> = raw.iter().filter(|r| !r.rollback).collect();
    if let Some(taken) = migrations.iter().find(|m| m.name == name) {
        return Err(Failure::refused(
            format!(
                "{} already has a migration named `{name}`: migration {} at {}",
                SetName(set),
                taken.id,
                taken.location
            ),
            "give the new migration another name",
        ));
    }
    let id = match migrations.iter().map(|m| m.id).max() {
        None => 0,
        Some(last) => last.checked_add(1).ok_or_else(|| {
            Failure::refused(
                format!("{} already uses the last id, {last}", SetName(set)),
                "migration ids are u32: there is no next one",
            )
        })?,
    };
    let recorded = migrations
        .iter()
        .rev()
        .find_map(|m| m.dir)
        .or_else(|| raw.iter().find_map(|r| r.dir));
    let rust =
        request.rust || request.file.is_some() || (request.dir.is_none() && recorded.is_none());
    if rust {
        return rust_skeleton(set, id, name, request, &migrations, out, paint);
    }
    let (dir, shown_dir, sorted) = match (request.dir, recorded) {
        (Some(dir), recorded) => {
            // The recorded directory's mode, for it under another spelling
            // and for another (a copy, a checkout elsewhere): its ids are
            // what the set's embedding makes of files (a probe's finding:
            // in a copy of a goose directory embedded sorted, versions 1
            // and 2, the third file was announced as migration 3, not 2).
            (
                dir.to_owned(),
                dir.display().to_string(),
                recorded.map(|r| r.sorted),
            )
        }
        (None, Some(recorded)) => (
            PathBuf::from(recorded.absolute),
            recorded.shown.to_owned(),
            Some(recorded.sorted),
        ),
        (None, None) => unreachable_dir()?,
    };
    if !dir.is_dir() {
        return Err(Failure::refused(
            format!(
                "the migrations directory {} is not there{}",
                dir.display(),
                if request.dir.is_none() {
                    " (recorded when this binary was built)"
                } else {
                    ""
                }
            ),
            "run this where the source tree is, or give the directory with --dir PATH \
             (or write a Rust migration with --rust)",
        ));
    }
    sql_files(
        conn, set, id, name, request, &dir, &shown_dir, sorted, out, paint,
    )
}

/// `(None, None)` is decided to be a Rust migration above.
fn unreachable_dir() -> Result<(PathBuf, String, Option<bool>), Failure> {
    Err(Failure::refused(
        "no SQL directory for this set",
        "give one with --dir PATH, or write a Rust migration with --rust",
    ))
}

/// A name is letters, digits and `_`, starting with a letter or `_`: a
/// file name and a Rust identifier on every platform.
fn check_name(name: &str) -> Result<(), Failure> {
    let valid = name.len() <= 100
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        return Ok(());
    }
    let mut suggestion = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            suggestion.push(c.to_ascii_lowercase());
        } else if !suggestion.ends_with('_') && !suggestion.is_empty() {
            suggestion.push('_');
        }
    }
    let suggestion = suggestion.trim_end_matches('_');
    let suggestion = match suggestion.chars().next() {
        None => "add_users".to_owned(),
        Some(c) if c.is_ascii_digit() => format!("m{suggestion}"),
        Some(_) => suggestion.chars().take(100).collect(),
    };
    Err(Failure::refused(
        format!("`{name}` cannot be a migration's name: use ASCII letters, digits and `_`, starting with a letter or `_` (at most 100)"),
        format!("for example `{suggestion}`"),
    ))
}

const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut",
    "pub", "ref", "return", "self", "Self", "static", "struct", "super", "trait", "true", "try",
    "type", "unsafe", "use", "where", "while", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "typeof", "unsized", "virtual", "yield", "_",
];

fn rust_skeleton(
    set: &str,
    id: u32,
    name: &str,
    request: &Request<'_>,
    migrations: &[&Raw],
    out: &mut dyn Write,
    paint: Paint,
) -> Result<(), Failure> {
    if KEYWORDS.contains(&name) {
        return Err(Failure::refused(
            format!("`{name}` is a Rust keyword, and the function is named after the migration"),
            format!("pick another name, for example `{name}_table`"),
        ));
    }
    let set_arg = if set.is_empty() {
        String::new()
    } else {
        format!(", set = {set:?}")
    };
    let after = migrations
        .iter()
        .filter(|m| m.id + 1 == id)
        .map(|m| format!(", after {} `{}` ({})", m.id, m.name, m.location))
        .next()
        .unwrap_or_default();
    let mut code = format!(
        "// Migration {id} of {}{after}.\n\
         #[migrate_core::migration({id}, name = {name:?}{set_arg})]\n\
         fn {name}(tx: &migrate_core::rusqlite::Transaction) -> migrate_core::rusqlite::Result<()> {{\n    \
             tx.execute_batch(\"\")?;\n    \
             todo!(\"write migration {id} `{name}`, then remove this line\")\n\
         }}\n",
        SetName(set)
    );
    if request.reversible {
        code.push_str(&format!(
            "\n#[migrate_core::rollback({id}{set_arg})]\n\
             fn undo_{name}(tx: &migrate_core::rusqlite::Transaction) -> migrate_core::rusqlite::Result<()> {{\n    \
                 tx.execute_batch(\"\")?;\n    \
                 todo!(\"write the rollback of migration {id} `{name}`, then remove this line\")\n\
             }}\n"
        ));
    }
    let Some(file) = request.file else {
        out.write_all(code.as_bytes())?;
        return Ok(());
    };
    // A device or a pipe would be read for ever (round 16: `--file
    // /dev/full`): only a regular file (a link to one is followed).
    let regular = std::fs::metadata(file).map(|meta| meta.is_file());
    let text = match regular {
        Ok(false) => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "it is not a regular file",
        )),
        _ => std::fs::read_to_string(file),
    }
    .map_err(|e| {
        Failure::refused(
            format!("cannot read {}: {e}", file.display()),
            "give an existing .rs file of your crate (the module that holds this set's \
             migrations) with --file, or leave --file out to print the code",
        )
    })?;
    for function in [name.to_owned(), format!("undo_{name}")] {
        if text.contains(&format!("fn {function}(")) {
            return Err(Failure::refused(
                format!("{} already has a function `{function}`", file.display()),
                "give the migration another name",
            ));
        }
    }
    let separator = if text.is_empty() || text.ends_with("\n\n") {
        ""
    } else if text.ends_with('\n') {
        "\n"
    } else {
        "\n\n"
    };
    let mut handle = std::fs::OpenOptions::new()
        .append(true)
        .open(file)
        .map_err(|e| {
            Failure::refused(
                format!("cannot write {}: {e}", file.display()),
                "check the file's permissions",
            )
        })?;
    handle.write_all(format!("{separator}{code}").as_bytes())?;
    writeln!(
        out,
        "{} migration {id} `{name}`{} of {} to {}: write its body, then rebuild",
        paint.green("appended"),
        if request.reversible {
            " and its rollback"
        } else {
            ""
        },
        SetName(set),
        file.display()
    )?;
    Ok(())
}

/// How the directory names its migrations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// `V_name.sql` + `V_name.down.sql`.
    Plain,
    /// `V_name.up.sql` + `V_name.down.sql` (sqlx).
    UpDown,
    /// `V_name/up.sql` + `down.sql` (diesel; `V-name/` for
    /// rusqlite_migration: the separator is kept).
    Directory(char),
    /// `V{n}__name.sql` (refinery): no rollback files.
    Refinery,
    /// `V{n}.Name.up.sql` + `V{n}.Name.down.sql` (Authelia).
    Dotted,
    /// `V-up.sql` + `V-down.sql`: no name (the migration is named after
    /// its version).
    Dashed,
    /// `V_name.sql` holding both directions under a tool's markers (goose,
    /// dbmate, sql-migrate): one file, which the tool also reads.
    Sections(Sections),
}

/// The markers of a file that holds both directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sections {
    Goose,
    Dbmate,
    SqlMigrate,
}

impl Sections {
    /// The up and down markers, as each tool writes them.
    pub(super) fn markers(self) -> (&'static str, &'static str) {
        match self {
            Sections::Goose => ("-- +goose Up", "-- +goose Down"),
            Sections::Dbmate => ("-- migrate:up", "-- migrate:down"),
            Sections::SqlMigrate => ("-- +migrate Up", "-- +migrate Down"),
        }
    }

    /// The tool whose up marker `text` holds, and whether it has a down
    /// section, read as each tool reads its markers (goose: `--` and
    /// `+goose` removed, the rest in any case; dbmate: `--`, spaces,
    /// `migrate:up`; sql-migrate: `-- +migrate Up`).
    pub(super) fn of(text: &str) -> Option<(Sections, bool)> {
        let mut tool = None;
        let mut down = false;
        // An editor's byte order mark before the first marker is not part
        // of the line, as the build reads it (round 18: `new` wrote a file
        // without goose's markers beside one).
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for line in text.lines() {
            let line = line.trim_end();
            let found = if line.starts_with("--") && line.contains("+goose") {
                let command = line.replace("--", "").replacen("+goose", "", 1);
                let command = command.trim().to_ascii_lowercase();
                Some((
                    Sections::Goose,
                    command.split_whitespace().next().map(str::to_owned),
                ))
            } else if let Some(rest) = line.strip_prefix("--").map(str::trim_start) {
                if let Some(rest) = rest.strip_prefix("migrate:") {
                    let word = rest.split_whitespace().next().unwrap_or_default();
                    Some((Sections::Dbmate, Some(word.to_owned())))
                } else if let Some(rest) = rest.strip_prefix("+migrate ") {
                    let word = rest.split_whitespace().next().unwrap_or_default();
                    Some((Sections::SqlMigrate, Some(word.to_ascii_lowercase())))
                } else {
                    None
                }
            } else {
                None
            };
            match found {
                Some((which, Some(word))) if word == "up" => {
                    tool.get_or_insert(which);
                }
                Some((_, Some(word))) if word == "down" => down = true,
                _ => {}
            }
        }
        tool.map(|tool| (tool, down))
    }
}

/// A migration already in the directory.
struct Existing {
    digits: String,
    /// Its name (what follows the version and its separator), and the
    /// directory entry.
    name: String,
    entry: String,
    layout: Layout,
    has_down: bool,
}

/// The leading version of a name: digits, and a diesel date's dashes
/// between digits (`2018-12-25-000000`).
fn version_prefix(name: &str) -> Option<(&str, &str)> {
    let bytes = name.as_bytes();
    let mut end = 0;
    while end < bytes.len()
        && (bytes[end].is_ascii_digit()
            || (bytes[end] == b'-'
                && end > 0
                && bytes[end - 1].is_ascii_digit()
                && bytes.get(end + 1).is_some_and(u8::is_ascii_digit)))
    {
        end += 1;
    }
    (end > 0).then(|| name.split_at(end))
}

fn scan(dir: &Path) -> std::io::Result<Vec<Existing>> {
    let mut found = Vec::new();
    let mut names: Vec<(String, bool)> = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if !file_name.starts_with('.') {
            names.push((file_name, entry.path().is_dir()));
        }
    }
    let exists = |name: &str| names.iter().any(|(n, _)| n == name);
    for (file_name, is_dir) in &names {
        if *is_dir {
            if let Some((digits, rest)) = version_prefix(file_name) {
                let separator = rest.chars().next().unwrap_or('_');
                if dir.join(file_name).join("up.sql").is_file() {
                    found.push(Existing {
                        digits: digits.to_owned(),
                        name: rest.get(1..).unwrap_or_default().to_owned(),
                        entry: file_name.clone(),
                        layout: Layout::Directory(separator),
                        has_down: dir.join(file_name).join("down.sql").is_file(),
                    });
                }
            }
            continue;
        }
        if let Some(rest) = file_name.strip_prefix('V') {
            if let (Some((digits, tail)), true) =
                (version_prefix(rest), file_name.ends_with(".sql"))
            {
                if let Some(name) = tail
                    .strip_prefix('.')
                    .and_then(|t| t.strip_suffix(".up.sql"))
                {
                    found.push(Existing {
                        digits: digits.to_owned(),
                        name: name.to_owned(),
                        entry: file_name.clone(),
                        layout: Layout::Dotted,
                        has_down: exists(&format!("V{digits}.{name}.down.sql")),
                    });
                    continue;
                }
                if tail.starts_with('.') && tail.ends_with(".down.sql") {
                    continue;
                }
                if let Some(name) = tail.strip_prefix("__") {
                    found.push(Existing {
                        digits: digits.to_owned(),
                        name: strip_sql(name),
                        entry: file_name.clone(),
                        layout: Layout::Refinery,
                        has_down: false,
                    });
                    continue;
                }
            }
        }
        let Some((digits, tail)) = version_prefix(file_name) else {
            continue;
        };
        match tail {
            "-up.sql" => {
                found.push(Existing {
                    digits: digits.to_owned(),
                    name: digits.to_owned(),
                    entry: file_name.clone(),
                    layout: Layout::Dashed,
                    has_down: exists(&format!("{digits}-down.sql")),
                });
                continue;
            }
            "-down.sql" => continue,
            _ => {}
        }
        if let Some(stem) = file_name.strip_suffix(".up.sql") {
            found.push(Existing {
                digits: digits.to_owned(),
                name: strip_sql(tail.get(1..).unwrap_or_default()),
                entry: file_name.clone(),
                layout: Layout::UpDown,
                has_down: exists(&format!("{stem}.down.sql")),
            });
        } else if file_name.ends_with(".down.sql") {
            continue;
        } else if let Some(stem) = file_name.strip_suffix(".sql") {
            // A file of another tool's sections is read (a few KB): the new
            // one must carry the same markers for that tool to read it.
            let sections = std::fs::read_to_string(dir.join(file_name))
                .ok()
                .and_then(|text| Sections::of(&text));
            found.push(Existing {
                digits: digits.to_owned(),
                name: strip_sql(tail.get(1..).unwrap_or_default()),
                entry: file_name.clone(),
                layout: sections.map_or(Layout::Plain, |(tool, _)| Layout::Sections(tool)),
                has_down: sections
                    .map_or_else(|| exists(&format!("{stem}.down.sql")), |(_, down)| down),
            });
        }
    }
    // The newest last: by value, then by length (`0001` after `1`).
    found.sort_by(|a, b| {
        let value = |d: &str| d.replace('-', "").trim_start_matches('0').to_owned();
        let (va, vb) = (value(&a.digits), value(&b.digits));
        (va.len(), va, a.digits.len()).cmp(&(vb.len(), vb, b.digits.len()))
    });
    Ok(found)
}

/// A file name's migration name: without `.up.sql`, `.down.sql`, `.sql`.
fn strip_sql(name: &str) -> String {
    [".up.sql", ".down.sql", ".sql"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .unwrap_or(name)
        .to_owned()
}

/// `digits` plus one, keeping its width (and a diesel date's dashes out).
fn increment(digits: &str) -> String {
    let plain: String = digits.chars().filter(char::is_ascii_digit).collect();
    let mut bytes = plain.into_bytes();
    let mut i = bytes.len();
    loop {
        if i == 0 {
            bytes.insert(0, b'1');
            break;
        }
        i -= 1;
        if bytes[i] == b'9' {
            bytes[i] = b'0';
        } else {
            bytes[i] += 1;
            break;
        }
    }
    String::from_utf8(bytes).unwrap_or_default()
}

#[allow(clippy::too_many_arguments)]
fn sql_files(
    conn: &Connection,
    set: &str,
    id: u32,
    name: &str,
    request: &Request<'_>,
    dir: &Path,
    shown_dir: &str,
    sorted: Option<bool>,
    out: &mut dyn Write,
    paint: Paint,
) -> Result<(), Failure> {
    let existing = scan(dir).map_err(|e| {
        Failure::refused(
            format!(
                "cannot read the migrations directory {}: {e}",
                dir.display()
            ),
            "check that it is a readable directory, or give another with --dir PATH",
        )
    })?;
    if let Some(taken) = existing.iter().find(|e| e.name == name) {
        return Err(Failure::refused(
            format!(
                "{shown_dir} already has a migration named `{name}`: {}",
                taken.entry
            ),
            "give the new migration another name",
        ));
    }
    let latest = existing.last();
    let layout = latest.map_or(Layout::Plain, |l| l.layout);
    let down = request.reversible || latest.is_some_and(|l| l.has_down);
    if down && layout == Layout::Refinery {
        return Err(Failure::refused(
            format!(
                "{shown_dir} is named as refinery names its migrations (V1__name.sql), which has \
                 no rollback files"
            ),
            "leave --reversible out, or write the rollback as a `#[rollback]` function",
        ));
    }
    // The version: the id, in the directory's width, unless the files'
    // versions are not their ids (`ids = "sorted"`): then the next version
    // (a timestamp where they are timestamps).
    // Timestamps are never ids, whatever the set's recorded directory does.
    let sorted = sorted == Some(true) || latest.is_some_and(|l| l.digits.len() >= 12);
    // Files added since this binary was built count too.
    let on_disk = if sorted {
        u32::try_from(existing.len()).ok()
    } else {
        latest.and_then(|l| l.digits.parse::<u32>().ok()?.checked_add(1))
    };
    let id = on_disk.map_or(id, |on_disk| id.max(on_disk));
    let version = match (sorted, latest) {
        (false, latest) => {
            let width = latest.map_or(4, |l| l.digits.len());
            format!("{id:0width$}")
        }
        (true, None) => timestamp(conn, false)?,
        (true, Some(latest)) => {
            let dashed = latest.digits.contains('-');
            let plain: String = latest.digits.chars().filter(char::is_ascii_digit).collect();
            let next = if plain.len() >= 12 {
                let now = timestamp(conn, dashed)?;
                let now_plain: String = now.chars().filter(char::is_ascii_digit).collect();
                if (now_plain.len(), &now_plain) > (plain.len(), &plain) {
                    Some(now)
                } else {
                    None
                }
            } else {
                None
            };
            next.unwrap_or_else(|| increment(&latest.digits))
        }
    };
    let (up_path, down_path) = match layout {
        Layout::Plain | Layout::Sections(_) => (
            PathBuf::from(format!("{version}_{name}.sql")),
            PathBuf::from(format!("{version}_{name}.down.sql")),
        ),
        Layout::UpDown => (
            PathBuf::from(format!("{version}_{name}.up.sql")),
            PathBuf::from(format!("{version}_{name}.down.sql")),
        ),
        Layout::Directory(separator) => {
            let folder = PathBuf::from(format!("{version}{separator}{name}"));
            (folder.join("up.sql"), folder.join("down.sql"))
        }
        Layout::Refinery => (
            PathBuf::from(format!("V{version}__{name}.sql")),
            PathBuf::new(),
        ),
        Layout::Dotted => (
            PathBuf::from(format!("V{version}.{name}.up.sql")),
            PathBuf::from(format!("V{version}.{name}.down.sql")),
        ),
        Layout::Dashed => (
            PathBuf::from(format!("{version}-up.sql")),
            PathBuf::from(format!("{version}-down.sql")),
        ),
    };
    // The directory's files carry no name: the migration is named after its
    // version, as `embed_migrations!` names it.
    let name = if layout == Layout::Dashed {
        version.as_str()
    } else {
        name
    };
    let mut files = match layout {
        Layout::Sections(tool) => {
            let (up_marker, down_marker) = tool.markers();
            let mut text = format!("{up_marker}\n{}", up_text(set, id, name));
            if down {
                text.push_str(&format!("\n{down_marker}\n{}", down_text(id, name)));
            }
            vec![(up_path, text)]
        }
        _ => vec![(up_path, up_text(set, id, name))],
    };
    if down && !matches!(layout, Layout::Sections(_)) {
        files.push((down_path, down_text(id, name)));
    }
    for (relative, _) in &files {
        let path = dir.join(relative);
        // A dangling symbolic link too, which `exists` says is not there.
        if std::fs::symlink_metadata(&path).is_ok() {
            return Err(Failure::refused(
                format!("{} already exists", path.display()),
                "give the migration another name, or move that file away",
            ));
        }
    }
    if request.dry_run {
        for (index, (relative, _)) in files.iter().enumerate() {
            writeln!(
                out,
                "would create {shown_dir}/{} ({}; at {})",
                relative.display(),
                if index == 0 {
                    format!("migration {id} `{name}` of {}", SetName(set))
                } else {
                    "its rollback".to_owned()
                },
                dir.join(relative).display()
            )?;
        }
        writeln!(out, "dry run: nothing was created")?;
        return Ok(());
    }
    let folder = match layout {
        Layout::Directory(_) => files[0].0.parent().map(|folder| dir.join(folder)),
        _ => None,
    };
    write_all_or_none(dir, folder.as_deref(), &files)?;
    for (index, (relative, _)) in files.iter().enumerate() {
        let what = if index == 0 {
            format!("migration {id} `{name}` of {}", SetName(set))
        } else {
            "its rollback".to_owned()
        };
        writeln!(
            out,
            "{} {shown_dir}/{} ({what})",
            paint.green("created"),
            relative.display()
        )?;
    }
    writeln!(
        out,
        "write its SQL (an empty file runs as a no-op and is recorded as applied), then rebuild: \
         the binary embeds the directory when it is built"
    )?;
    Ok(())
}

/// Creates `folder` (a diesel-style migration directory) and the files, or,
/// when one cannot be written, removes what it created: `new` writes
/// nothing when it fails (a probe's finding: the up file was left when
/// the rollback's name was taken by a dangling link).
fn write_all_or_none(
    dir: &Path,
    folder: Option<&Path>,
    files: &[(PathBuf, String)],
) -> Result<(), Failure> {
    if let Some(folder) = folder {
        std::fs::create_dir(folder).map_err(|e| cannot_create(folder, &e))?;
    }
    let mut created: Vec<PathBuf> = Vec::new();
    let mut outcome = Ok(());
    for (relative, text) in files {
        let path = dir.join(relative);
        if let Err(e) = write_whole(&path, text) {
            outcome = Err(cannot_create(&path, &e));
            break;
        }
        created.push(path);
    }
    if outcome.is_err() {
        for path in created.iter().rev() {
            let _ = std::fs::remove_file(path);
        }
        if let Some(folder) = folder {
            let _ = std::fs::remove_dir(folder);
        }
    }
    outcome
}

/// Writes `text` to `path`, which must not exist, so that `path` never
/// holds less than all of it: written to a hidden file beside it first,
/// then linked to its name (which fails if the name is taken). A `new`
/// killed between the two left an empty `008_x.sql`, which would run as a
/// migration that does nothing (round 16); a hidden file is not one.
///
/// The hidden file is one this call creates (a name taken by another run's,
/// with the same process id in another container, is skipped, never
/// removed: round 18). Where the file system has no hard links (FAT), the
/// file is created under its name and written, as before.
fn write_whole(path: &Path, text: &str) -> std::io::Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let mut attempt = 0;
    let (partial, mut file) = loop {
        let partial = path.with_file_name(format!(
            ".{}.migrate-core-new-{}-{attempt}",
            name.as_deref().unwrap_or_default(),
            std::process::id()
        ));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&partial)
        {
            Ok(file) => break (partial, file),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => {
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    };
    let written = file
        .write_all(text.as_bytes())
        .and_then(|()| file.sync_all());
    drop(file);
    let linked = written.map(|()| std::fs::hard_link(&partial, path));
    let _ = std::fs::remove_file(&partial);
    match linked? {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists && !path.exists() => {
            // No hard links here: the plain way, a name that must be free.
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()
        }
        other => other,
    }
}

fn cannot_create(path: &Path, error: &std::io::Error) -> Failure {
    let hint = if error.kind() == std::io::ErrorKind::AlreadyExists {
        "something by that name is there (a file, a directory or a link): give the migration \
         another name, or move it away; nothing was created"
    } else {
        "check that the directory is writable; nothing was created"
    };
    Failure::refused(format!("cannot create {}: {error}", path.display()), hint)
}

/// Now, UTC, as a 14-digit version (diesel's `YYYY-MM-DD-HHMMSS` when
/// `dashed`), from SQLite's clock.
fn timestamp(conn: &Connection, dashed: bool) -> Result<String, Failure> {
    let format = if dashed {
        "%Y-%m-%d-%H%M%S"
    } else {
        "%Y%m%d%H%M%S"
    };
    Ok(conn.query_row("SELECT strftime(?1, 'now')", [format], |row| row.get(0))?)
}

fn up_text(set: &str, id: u32, name: &str) -> String {
    format!(
        "-- Migration {id} `{name}` of {}: write its SQL here. It runs in a\n\
         -- transaction of its own with its row in the tracking table.\n",
        SetName(set)
    )
}

fn down_text(id: u32, name: &str) -> String {
    format!("-- Rollback of migration {id} `{name}`: undo what it does.\n")
}

/// The rollback file beside an up file, as the directory's layout names it.
pub(super) fn down_file_name(up: &str) -> String {
    if let Some(folder) = up.strip_suffix("/up.sql") {
        format!("{folder}/down.sql")
    } else if let Some(version) = up.strip_suffix("-up.sql").filter(|v| {
        v.rsplit('/')
            .next()
            .is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
    }) {
        format!("{version}-down.sql")
    } else if let Some(stem) = up.strip_suffix(".up.sql") {
        format!("{stem}.down.sql")
    } else if let Some(stem) = up.strip_suffix(".sql") {
        format!("{stem}.down.sql")
    } else {
        format!("{up}.down.sql")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_keep_their_width() {
        assert_eq!(increment("0007"), "0008");
        assert_eq!(increment("0099"), "0100");
        assert_eq!(increment("99"), "100");
        assert_eq!(increment("2018-12-25-000000"), "20181225000001");
        assert_eq!(version_prefix("007_x.sql"), Some(("007", "_x.sql")));
        assert_eq!(
            version_prefix("2018-12-25-000000_x"),
            Some(("2018-12-25-000000", "_x"))
        );
        assert_eq!(version_prefix("01-up.sql"), Some(("01", "-up.sql")));
        assert_eq!(version_prefix("x.sql"), None);
    }

    /// `new` in a directory of files holding both directions under a tool's
    /// markers (a probe's finding: in goose's directory it wrote a file
    /// without `-- +goose Up`, which goose cannot read, and a `.down.sql`
    /// goose would take for another migration): one file with the same
    /// tool's markers, its down section when asked or when the newest file
    /// has one.
    #[test]
    fn new_writes_the_markers_of_a_sectioned_directory() -> Result<(), Box<dyn std::error::Error>> {
        let conn = Connection::open_in_memory()?;
        let cases = [
            (
                "-- +goose Up\nCREATE TABLE a (x);\n",
                false,
                "-- +goose Up\n",
                None,
            ),
            // An editor's byte order mark before the marker (round 18).
            (
                "\u{feff}-- +goose Up\nCREATE TABLE a (x);\n",
                false,
                "-- +goose Up\n",
                None,
            ),
            // goose's other annotations are no down section (cargo-mutants).
            (
                "-- +goose Up\n-- +goose StatementBegin\nCREATE TABLE a (x);\n-- +goose StatementEnd\n",
                false,
                "-- +goose Up\n",
                None,
            ),
            (
                "-- +goose Up\nCREATE TABLE a (x);\n-- +goose Down\nDROP TABLE a;\n",
                false,
                "-- +goose Up\n",
                Some("-- +goose Down\n"),
            ),
            (
                "-- +goose Up\nCREATE TABLE a (x);\n",
                true,
                "-- +goose Up\n",
                Some("-- +goose Down\n"),
            ),
            (
                "-- migrate:up\nCREATE TABLE a (x);\n",
                true,
                "-- migrate:up\n",
                Some("-- migrate:down\n"),
            ),
            (
                "-- +migrate Up\nCREATE TABLE a (x);\n",
                true,
                "-- +migrate Up\n",
                Some("-- +migrate Down\n"),
            ),
        ];
        for (first, reversible, up, down) in cases {
            let dir = tempfile::tempdir()?;
            std::fs::write(dir.path().join("00001_first.sql"), first)?;
            std::fs::write(dir.path().join("00002_second.sql"), first)?;
            let mut out = Vec::new();
            let request = Request {
                name: "third",
                set: None,
                reversible,
                dir: Some(dir.path()),
                rust: false,
                file: None,
                dry_run: false,
            };
            sql_files(
                &conn,
                "",
                2,
                "third",
                &request,
                dir.path(),
                "m",
                Some(true),
                &mut out,
                Paint(false),
            )
            .map_err(|_| "sql_files refused")?;
            let text = std::fs::read_to_string(dir.path().join("00003_third.sql"))?;
            assert!(text.starts_with(up), "{first:?}: {text}");
            match down {
                Some(down) => assert!(text.contains(down), "{first:?}: {text}"),
                None => assert!(!text.contains("Down"), "{first:?}: {text}"),
            }
            assert!(
                !dir.path().join("00003_third.down.sql").exists(),
                "{first:?}"
            );
            let said = String::from_utf8(out)?;
            assert!(said.contains("(migration 2 `third`"), "{said}");
        }
        Ok(())
    }

    /// A name taken by a dangling link (which `exists` says is not there):
    /// refused before anything is written (a probe's finding: the up file
    /// was written, then the rollback failed, and the up file stayed).
    #[cfg(unix)]
    #[test]
    fn a_rollback_name_taken_by_a_dangling_link_writes_nothing(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let conn = Connection::open_in_memory()?;
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("0000_first.sql"), "CREATE TABLE a (x);\n")?;
        std::os::unix::fs::symlink(
            dir.path().join("nowhere"),
            dir.path().join("0001_y.down.sql"),
        )?;
        let request = Request {
            name: "y",
            set: None,
            reversible: true,
            dir: Some(dir.path()),
            rust: false,
            file: None,
            dry_run: false,
        };
        let mut out = Vec::new();
        let refused = sql_files(
            &conn,
            "",
            1,
            "y",
            &request,
            dir.path(),
            "m",
            Some(false),
            &mut out,
            Paint(false),
        );
        let Err(failure) = refused else {
            panic!("written beside a dangling link");
        };
        assert!(failure.to_string().contains("0001_y.down.sql"), "{failure}");
        assert!(!dir.path().join("0001_y.sql").exists());
        assert_eq!(
            std::fs::read_dir(dir.path())?.count(),
            2,
            "no hidden file left"
        );
        Ok(())
    }

    /// A file `new` writes has all of its text under its name, or is not
    /// there (round 16: killed between creating and writing, `new` left an
    /// empty `008_x.sql`, a migration that does nothing); a name taken
    /// fails as before; nothing hidden is left beside it.
    #[test]
    fn a_new_file_is_whole_or_absent() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("0002_z.sql");
        // Another run's hidden file by the name this run would take first
        // (the same process id, in another container): skipped, kept.
        let theirs = dir.path().join(format!(
            ".0002_z.sql.migrate-core-new-{}-0",
            std::process::id()
        ));
        std::fs::write(&theirs, "theirs")?;
        write_whole(&path, "CREATE TABLE z (x);\n")?;
        assert_eq!(std::fs::read_to_string(&path)?, "CREATE TABLE z (x);\n");
        let taken = write_whole(&path, "other").map_err(|e| e.kind());
        assert_eq!(taken, Err(std::io::ErrorKind::AlreadyExists));
        assert_eq!(std::fs::read_to_string(&path)?, "CREATE TABLE z (x);\n");
        assert_eq!(std::fs::read_to_string(&theirs)?, "theirs");
        assert_eq!(std::fs::read_dir(dir.path())?.count(), 2);
        Ok(())
    }

    /// `new` in a directory of `NN-up.sql` files (no names) and in one of
    /// Authelia's (`V0001.Name.up.sql`): the next id, the directory's own
    /// naming, the rollback file its migrations have.
    #[test]
    fn new_follows_nameless_and_dotted_directories() -> Result<(), Box<dyn std::error::Error>> {
        let conn = Connection::open_in_memory()?;
        let request = |name| Request {
            name,
            set: None,
            reversible: false,
            dir: None,
            rust: false,
            file: None,
            dry_run: false,
        };
        let cases: [(&[&str], &str, &[&str], &str); 2] = [
            (
                &["01-up.sql", "01-down.sql", "02-up.sql", "02-down.sql"],
                "add_phone",
                &["03-up.sql", "03-down.sql"],
                "migration 2 `03`",
            ),
            (
                &[
                    "V0001.Initial_Schema.up.sql",
                    "V0001.Initial_Schema.down.sql",
                ],
                "Add_Phone",
                &["V0002.Add_Phone.up.sql", "V0002.Add_Phone.down.sql"],
                "migration 1 `Add_Phone`",
            ),
        ];
        for (present, name, created, said) in cases {
            let dir = tempfile::tempdir()?;
            for file in present {
                std::fs::write(dir.path().join(file), "SELECT 1;\n")?;
            }
            let existing = scan(dir.path())?;
            assert_eq!(existing.len(), present.len() / 2, "{present:?}");
            assert!(existing.iter().all(|e| e.has_down), "{present:?}");
            let mut out = Vec::new();
            let id = u32::try_from(existing.len())?;
            sql_files(
                &conn,
                "",
                id,
                name,
                &request(name),
                dir.path(),
                "m",
                Some(true),
                &mut out,
                Paint(false),
            )
            .map_err(|_| "sql_files refused")?;
            for file in created {
                assert!(
                    dir.path().join(file).is_file(),
                    "{file} not created in {present:?}"
                );
            }
            let said_out = String::from_utf8(out)?;
            assert!(said_out.contains(said), "{said_out}");
        }
        Ok(())
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("add_users").is_ok());
        assert!(check_name("_x1").is_ok());
        for bad in ["", "1st", "add users", "a/b", "a.b", "é", &"x".repeat(101)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        let Err(Failure::Refused { hint, .. }) = check_name("Add Users!") else {
            panic!("refused")
        };
        assert_eq!(hint, "for example `add_users`");
    }

    #[test]
    fn rollback_files_follow_the_layout() {
        assert_eq!(down_file_name("m/007_x.sql"), "m/007_x.down.sql");
        assert_eq!(down_file_name("m/007_x.up.sql"), "m/007_x.down.sql");
        assert_eq!(
            down_file_name("m/2018-01-01-000000_x/up.sql"),
            "m/2018-01-01-000000_x/down.sql"
        );
        assert_eq!(down_file_name("m/03-up.sql"), "m/03-down.sql");
        assert_eq!(down_file_name("m/x-up.sql"), "m/x-up.down.sql");
        assert_eq!(
            down_file_name("m/V0002.Add_Phone.up.sql"),
            "m/V0002.Add_Phone.down.sql"
        );
    }
}
