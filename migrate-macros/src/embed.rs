//! `embed_migrations!("dir")`: SQL files registered at compile time.
//!
//! The directory is read ([`layout`](crate::layout)), the migrations
//! numbered, each file split into its migration and rollback where it holds
//! both ([`sections`](crate::sections): goose, dbmate, sql-migrate) and made
//! ready to run ([`script`](crate::script)), and every problem reported at
//! once, each naming its file (and line):
//! - `embed_migrations!("dir")`: a file's version is its migration id, so
//!   `000_init.sql` is migration 0. Since SQL and Rust migrations share one
//!   sequence, the directory may leave ids to `#[migration]` functions, but
//!   one that does not start at 0 is refused, suggesting `ids = "sorted"`,
//!   unless `ids = "numbers"` says that is meant. Two files of one version
//!   (two branches merged, each with its migration 7) compile: they are a
//!   duplicate id, which the runtime's registry check reports with both
//!   files before anything runs, and the CLI's `renumber` resolves; each
//!   rollback file then pairs with the migration of its name;
//! - `embed_migrations!("dir", ids = "sorted")`: migrations 0, 1, 2, … in
//!   the order of the versions, whatever they are (`0001`, timestamps,
//!   diesel's dates), as the layout's tool orders them: diesel's as text,
//!   every other's as numbers ([`layout::Order`]). Two files with one
//!   version are refused.
//!
//! Each file is pulled in with `include_str!`, so editing one rebuilds the
//! crate. Adding or removing a file is invisible to Cargo unless the crate
//! has a build script that says `cargo:rerun-if-changed=<dir>`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::{Ident, LitStr, Token};

use crate::expand::{self, Registration};
use crate::layout::{self, Direction, Key, Order};
use crate::{checksum, script, sections, sql};

/// How files' versions become migration ids.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ids {
    /// The version is the id; the directory must start at 0.
    Numbers,
    /// `ids = "numbers"`: the version is the id, wherever it starts.
    ExplicitNumbers,
    /// `ids = "sorted"`: ids 0, 1, 2, … in version order.
    Sorted,
}

struct Args {
    dir: LitStr,
    set: Option<LitStr>,
    krate: Option<syn::Path>,
    ids: Ids,
}

const OPTIONS: &str = "set, crate, ids";

fn parse_args(input: ParseStream) -> syn::Result<Args> {
    if input.is_empty() {
        return Err(syn::Error::new(
            Span::call_site(),
            "expected a directory: embed_migrations!(\"migrations\")",
        ));
    }
    let dir: LitStr = input.parse()?;
    let mut args = Args {
        dir,
        set: None,
        krate: None,
        ids: Ids::Numbers,
    };
    let mut seen: Vec<String> = Vec::new();
    while !input.is_empty() {
        input.parse::<Token![,]>()?;
        if input.is_empty() {
            break;
        }
        let key = Ident::parse_any(input)?;
        let key_name = key.to_string();
        if !["set", "crate", "ids"].contains(&key_name.as_str()) {
            return Err(syn::Error::new(
                key.span(),
                format!("unknown option `{key}` for embed_migrations!; expected one of: {OPTIONS}"),
            ));
        }
        if seen.contains(&key_name) {
            return Err(syn::Error::new(
                key.span(),
                format!("option `{key}` is given twice"),
            ));
        }
        seen.push(key_name.clone());
        input.parse::<Token![=]>()?;
        match key_name.as_str() {
            "set" => args.set = Some(input.parse()?),
            "crate" => args.krate = Some(syn::Path::parse_mod_style(input)?),
            _ => {
                let value: LitStr = input.parse().map_err(|e| {
                    syn::Error::new(e.span(), "`ids` takes \"sorted\" or \"numbers\"")
                })?;
                args.ids = match value.value().as_str() {
                    "sorted" => Ids::Sorted,
                    "numbers" => Ids::ExplicitNumbers,
                    other => {
                        return Err(syn::Error::new(
                            value.span(),
                            format!(
                                "unknown `ids = \"{other}\"`: write `ids = \"sorted\"` to number \
                                 the migrations 0, 1, 2, … in the order of their versions, or \
                                 `ids = \"numbers\"` to use each version as the migration's id"
                            ),
                        ))
                    }
                };
            }
        }
    }
    Ok(args)
}

/// One migration or rollback, read, checked and numbered: a file, or one
/// direction of a file with up and down sections.
struct Ready {
    id: u32,
    direction: Direction,
    name: String,
    shown: String,
    /// Where it starts: 1, or the line of its section's marker.
    line: usize,
    absolute: String,
    text: String,
    script: script::Script,
}

pub fn expand(input: TokenStream) -> TokenStream {
    let args = match parse_args.parse2(input) {
        Ok(args) => args,
        Err(error) => return error.into_compile_error(),
    };
    match collect(&args) {
        Ok((dir, files)) => register(&args, &dir, &files),
        Err(error) => error.into_compile_error(),
    }
}

/// Where the directory is: as written (relative to the crate) and absolute.
struct Dir {
    shown: String,
    absolute: String,
}

fn collect(args: &Args) -> syn::Result<(Dir, Vec<Ready>)> {
    let span = args.dir.span();
    let fail = |message: String| syn::Error::new(span, message);
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").map_err(|_| {
        fail("CARGO_MANIFEST_DIR is not set: embed_migrations! must be built by Cargo".to_owned())
    })?;
    let relative = args.dir.value();
    let dir = Path::new(&manifest_dir).join(&relative);
    let shown_dir = relative.trim_end_matches('/');
    let scan = layout::scan(&dir, shown_dir).map_err(|e| {
        fail(format!(
            "cannot read the migrations directory {relative:?} (looked in {}): {e}",
            resolved(&dir).display()
        ))
    })?;
    let mut problems = scan.problems;

    // Files by version, in version order: the order of the layout's tool
    // when the directory is numbered by it.
    let order = match args.ids {
        Ids::Sorted => directory_order(&scan.files, &relative, &mut problems),
        Ids::Numbers | Ids::ExplicitNumbers => Order::Numeric,
    };
    let mut ups: BTreeMap<Key, Vec<layout::File>> = BTreeMap::new();
    let mut downs: BTreeMap<Key, Vec<layout::File>> = BTreeMap::new();
    for file in scan.files {
        let key = file.version.key(order);
        match file.direction {
            Direction::Up => ups.entry(key).or_default().push(file),
            Direction::Down => downs.entry(key).or_default().push(file),
        }
    }
    // With the versions as ids, two files of one version (two branches
    // that each added one, merged) are a duplicate id that the runtime's
    // registry check reports, with both files, before anything runs; the
    // CLI's `renumber` then renames the one not applied yet. Sorted, the
    // ids are the versions' places: two files of one version have none.
    for files in ups.values() {
        if files.len() > 1 && args.ids == Ids::Sorted {
            problems.push(format!(
                "version {} is used by {} migrations: {}; give each a version of its own, one that \
                 sorts where it should run",
                files[0].version.digits,
                files.len(),
                shown(files)
            ));
        }
    }
    for (key, files) in &downs {
        let Some(migrations) = ups.get(key) else {
            for file in files {
                problems.push(format!(
                    "{}: a rollback without its migration: no migration has version {}; give it \
                     its migration's version, or delete it",
                    file.shown, file.version.digits
                ));
            }
            continue;
        };
        if migrations.len() > 1 {
            // Several migrations of one version: each rollback pairs with
            // the one of its name.
            for file in files {
                let pairs = migrations.iter().filter(|m| m.name == file.name).count();
                let rollbacks = files.iter().filter(|d| d.name == file.name).count();
                if pairs != 1 || rollbacks != 1 {
                    problems.push(format!(
                        "{}: version {} has {} migrations ({}), so a rollback must carry the name \
                         of its migration, and one rollback per migration; rename it after its \
                         migration, or delete it",
                        file.shown,
                        file.version.digits,
                        migrations.len(),
                        shown(migrations)
                    ));
                }
            }
        } else {
            // A rollback file carries its migration's name: one left
            // beside another migration (a rename stopped half-way, a
            // merge) would undo the wrong one. Among several, the ones of
            // another name are named first: "keep one" alone led a probe
            // to delete the file of the migration renumbered away.
            let migration = &migrations[0];
            let strays = files.iter().filter(|f| f.name != migration.name).count();
            if files.len() > 1 && strays == 0 {
                problems.push(format!(
                    "version {} has {} rollbacks: {}; keep one",
                    files[0].version.digits,
                    files.len(),
                    shown(files)
                ));
            }
            for file in files {
                if file.name != migration.name {
                    problems.push(format!(
                        "{}: a rollback named `{}`, but the migration of version {} is `{}` ({}); \
                         a rollback file carries the name of the migration it undoes: if it \
                         undoes `{}`, rename it to that name; if it belongs to another \
                         migration, give it that migration's version (a `renumber` stopped \
                         part-way leaves this: run it again with the same binary to finish), or \
                         delete it",
                        file.shown,
                        file.name,
                        file.version.digits,
                        migration.name,
                        migration.shown,
                        migration.name,
                    ));
                }
            }
        }
    }
    if ups.is_empty() && problems.is_empty() {
        problems.push(format!(
            "{relative}: no migrations found: expected files such as 0001_create_users.sql, \
             20240101120000_create_users.up.sql, 2024-01-01-120000_create_users/up.sql or \
             V1__create_users.sql"
        ));
    }

    let ids = number(args.ids, &ups, &relative, &mut problems);

    let mut ready = Vec::new();
    for files in ups.values().chain(downs.values()) {
        for file in files {
            let key = file.version.key(order);
            let Some(&id) = ids.get(&key) else {
                continue;
            };
            // The rollback file of this migration, if one is beside it.
            let separate_down = (file.direction == Direction::Up)
                .then(|| downs.get(&key))
                .flatten()
                .and_then(|d| d.iter().find(|d| d.name == file.name))
                .map(|d| d.shown.as_str());
            for step in read(file, id, separate_down, &mut problems) {
                let from_section = step.direction != file.direction;
                let others: Vec<&layout::File> = downs
                    .get(&key)
                    .into_iter()
                    .flatten()
                    .filter(|d| d.name == file.name || ups.get(&key).is_some_and(|u| u.len() == 1))
                    .collect();
                if from_section && !others.is_empty() {
                    let others: Vec<&str> = others.iter().map(|f| f.shown.as_str()).collect();
                    problems.push(format!(
                        "version {} has {} rollbacks: the down section of {} (line {}) and {}; \
                         keep one (delete the down file, or the down section)",
                        file.version.digits,
                        others.len() + 1,
                        file.shown,
                        step.line,
                        others.join(", ")
                    ));
                }
                ready.push(step);
            }
        }
    }
    if !problems.is_empty() {
        return Err(fail(format!(
            "invalid SQL migrations:\n  - {}",
            problems.join("\n  - ")
        )));
    }
    let dir = Dir {
        shown: shown_dir.to_owned(),
        absolute: dir.to_string_lossy().into_owned(),
    };
    Ok((dir, ready))
}

/// `path` with its longest existing ancestor's symbolic links and `..`
/// resolved: where the directory was really looked for.
fn resolved(path: &Path) -> PathBuf {
    let mut rest = Vec::new();
    let mut ancestor = path;
    loop {
        if let Ok(real) = ancestor.canonicalize() {
            return rest.iter().rev().fold(real, |p, c| p.join(c));
        }
        match (ancestor.parent(), ancestor.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                ancestor = parent;
            }
            _ => return path.to_owned(),
        }
    }
}

fn shown(files: &[layout::File]) -> String {
    let shown: Vec<&str> = files.iter().map(|f| f.shown.as_str()).collect();
    shown.join(", ")
}

/// How the directory's versions are ordered: as diesel orders them when
/// every migration is a diesel directory, as numbers otherwise. A directory
/// that mixes diesel directories with other layouts is ordered as numbers,
/// and refused where diesel's order would differ.
fn directory_order(files: &[layout::File], relative: &str, problems: &mut Vec<String>) -> Order {
    let mut ups: Vec<&layout::File> = files
        .iter()
        .filter(|f| f.direction == Direction::Up)
        .collect();
    let diesel = ups.iter().filter(|f| f.order == Order::Text).count();
    if diesel == 0 {
        return Order::Numeric;
    }
    if diesel == ups.len() {
        return Order::Text;
    }
    ups.sort_by_key(|f| f.version.key(Order::Numeric));
    let disagree = ups.windows(2).find(|pair| {
        pair[0].version.key(Order::Numeric) < pair[1].version.key(Order::Numeric)
            && pair[0].version.key(Order::Text) > pair[1].version.key(Order::Text)
    });
    if let Some([first, second]) = disagree {
        problems.push(format!(
            "{relative}: diesel migration directories (which diesel orders by version as text) \
             are mixed with files of other layouts (ordered by number), and the two orders \
             disagree: {} (version {}) comes before {} (version {}) by number, after it as text. \
             Give the versions one length (14-digit timestamps, say) so that both orders agree, \
             or keep the diesel directories in a directory of their own",
            first.shown, first.version.digits, second.shown, second.version.digits
        ));
    }
    Order::Numeric
}

/// Each migration version's id.
fn number(
    mode: Ids,
    ups: &BTreeMap<Key, Vec<layout::File>>,
    relative: &str,
    problems: &mut Vec<String>,
) -> BTreeMap<Key, u32> {
    let mut ids = BTreeMap::new();
    if mode == Ids::Sorted {
        for (position, key) in ups.keys().enumerate() {
            match u32::try_from(position) {
                Ok(id) => ids.insert(key.clone(), id),
                Err(_) => break,
            };
        }
        return ids;
    }
    let sorted = format!("embed_migrations!(\"{relative}\", ids = \"sorted\")");
    let too_large: Vec<&layout::File> = ups
        .values()
        .filter(|files| files[0].version.as_u32().is_none())
        .flatten()
        .collect();
    if let Some(first) = too_large.first() {
        problems.push(format!(
            "{}: version {} is too large to be a migration id (ids are u32, from 0){}: \
             write {sorted} to number the migrations 0, 1, 2, … in the order of their versions",
            first.shown,
            first.version.digits,
            match too_large.len() {
                1 => String::new(),
                2 => ", and so is another".to_owned(),
                n => format!(", and so are {} others", n - 1),
            }
        ));
        return ids;
    }
    for (key, files) in ups {
        if let Some(id) = files[0].version.as_u32() {
            ids.insert(key.clone(), id);
        }
    }
    if let (Ids::Numbers, Some(files)) = (mode, ups.values().next()) {
        if let Some(start) = files[0].version.as_u32().filter(|&start| start > 0) {
            let missing = if start == 1 {
                "migration 0 is".to_owned()
            } else {
                format!("migrations 0 to {} are", start - 1)
            };
            problems.push(format!(
                "{}: the files are numbered from {start}, so {missing} missing: write {sorted} to \
                 number the migrations 0, 1, 2, … in the order of their versions (no file changes), \
                 or, if the missing ones are `#[migration]` functions of the same set, write \
                 `ids = \"numbers\"` to keep the numbers as ids",
                files[0].shown
            ));
        }
    }
    ids
}

/// Reads and prepares one file: its migration or rollback, or, for a file
/// with up and down sections, its migration and its rollback (none when the
/// down section runs nothing). Nothing (and problems) when it cannot run.
fn read(
    file: &layout::File,
    id: u32,
    separate_down: Option<&str>,
    problems: &mut Vec<String>,
) -> Vec<Ready> {
    let shown = &file.shown;
    let text = match std::fs::read(&file.path) {
        Err(e) => {
            problems.push(format!("{shown}: cannot read it: {e}"));
            return Vec::new();
        }
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => {
                problems.push(format!(
                    "{shown}: not valid UTF-8 (byte {}); save it as UTF-8",
                    e.utf8_error().valid_up_to()
                ));
                return Vec::new();
            }
        },
    };
    // SQLite reads a statement as a C string: it would stop at a NUL byte,
    // and what follows in the file would never run (rusqlite's
    // `execute_batch` reports nothing).
    if let Some(at) = text.find('\0') {
        let line = text[..at].matches('\n').count() + 1;
        problems.push(format!(
            "{shown}:{line}: a NUL byte (byte {at}), where SQLite would stop reading the file: \
             nothing after it would run; remove it"
        ));
        return Vec::new();
    }
    if let Some(line) = sql::hidden_by_lone_cr(&text) {
        problems.push(format!(
            "{shown}:{line}: this line follows a `--` comment ended by a lone carriage return \
             (CR, an old Mac line ending), and SQLite ends a `--` comment only at a line feed: \
             it would read this line as part of the comment and never run it; save the file \
             with LF or CRLF line endings"
        ));
        return Vec::new();
    }
    let report = |found: Vec<script::Problem>, problems: &mut Vec<String>| {
        for problem in found {
            problems.push(format!("{shown}:{}: {}", problem.line, problem.message));
        }
    };
    let step = |direction, line, script| Ready {
        id,
        direction,
        name: file.name.clone(),
        shown: shown.clone(),
        line,
        absolute: file.path.to_string_lossy().into_owned(),
        text: text.clone(),
        script,
    };
    let sections = match sections::split(&text) {
        Ok(None) => {
            return match script::prepare(&text) {
                Ok(script) => vec![step(file.direction, 1, script)],
                Err(found) => {
                    report(found, problems);
                    Vec::new()
                }
            };
        }
        Ok(Some(sections)) => sections,
        Err(found) => {
            report(found, problems);
            return Vec::new();
        }
    };
    let tool = sections.tool.name();
    if file.direction == Direction::Down {
        problems.push(format!(
            "{shown}:{}: a rollback file with {tool}'s up and down sections: a rollback file \
             holds the rollback's statements only; keep those (its down section, without the \
             markers), or move both sections into the migration's file and delete this one",
            sections.up_line
        ));
        return Vec::new();
    }
    // Each section runs as a file of its own would, with the file's lines.
    let prepare = |ranges: &[std::ops::Range<usize>], outside: bool, problems: &mut Vec<String>| {
        let section = sections::section_text(&text, ranges);
        if outside {
            return Some(script::Script {
                executed: Some(section),
                ..script::outside_transaction()
            });
        }
        match script::prepare(&section) {
            Ok(script) => Some(script::Script {
                executed: Some(script.executed.unwrap_or(section)),
                ..script
            }),
            Err(found) => {
                report(found, problems);
                None
            }
        }
    };
    // An empty down section is a rollback to goose (which runs it as a
    // no-op): a file beside it would be a second one, and goose would read
    // the file as another migration. (A down section that runs something
    // is counted as a rollback below, and the file refused with it.)
    if let (Some(line), Some(file)) = (sections.down_line, separate_down) {
        if !runs_something(&sections::section_text(&text, &sections.down)) {
            problems.push(format!(
                "{shown}:{line}: an empty {tool} down section (a rollback that does nothing, to \
                 {tool}), and a rollback file beside it ({file}); keep one: write the rollback's \
                 SQL under the down marker and delete {file}, or remove the marker"
            ));
            return Vec::new();
        }
    }
    let up = prepare(&sections.up, sections.up_no_transaction, problems);
    let down = match sections.down_line {
        Some(line) if runs_something(&sections::section_text(&text, &sections.down)) => {
            prepare(&sections.down, sections.down_no_transaction, problems)
                .map(|script| (line, script))
        }
        _ => None,
    };
    let Some(up) = up else {
        return Vec::new();
    };
    let mut steps = vec![step(Direction::Up, sections.up_line, up)];
    steps.extend(down.map(|(line, script)| step(Direction::Down, line, script)));
    steps
}

/// Whether SQL text holds a statement (not only comments and `;`).
fn runs_something(text: &str) -> bool {
    sql::tokenize(text)
        .iter()
        .any(|t| t.kind != sql::TokenKind::Semicolon)
}

fn register(args: &Args, dir: &Dir, files: &[Ready]) -> TokenStream {
    let krate = expand::krate(args.krate.as_ref());
    let set = expand::set(args.set.as_ref());
    let (shown_dir, absolute_dir) = (&dir.shown, &dir.absolute);
    let sorted = args.ids == Ids::Sorted;
    let registrations = files.iter().map(|file| {
        let absolute = &file.absolute;
        // The file's own text, for Cargo: editing the file rebuilds the crate.
        let (body, track) = match &file.script.executed {
            None => (quote!(::core::include_str!(#absolute)), quote!()),
            Some(executed) => (
                quote!(#executed),
                quote!(
                    const _: &str = ::core::include_str!(#absolute);
                ),
            ),
        };
        let migration = (file.direction == Direction::Up).then(|| {
            (
                file.name.clone(),
                checksum::of_sql(&file.text),
                checksum::former_of_sql(&file.text),
            )
        });
        let shown = &file.shown;
        let line = u32::try_from(file.line).unwrap_or(u32::MAX);
        let entry = Registration {
            krate: krate.clone(),
            migration,
            id: file.id,
            set: set.clone(),
            foreign_keys_off: file.script.foreign_keys_off,
            no_transaction: file.script.no_transaction,
            file: quote!(#shown),
            line: quote!(#line),
            body: quote!(#krate::__private::Body::Sql(#body)),
            dir: quote!(::core::option::Option::Some(&#krate::__private::SqlDir {
                shown: #shown_dir,
                absolute: #absolute_dir,
                sorted: #sorted,
            })),
            span: Span::call_site(),
        }
        .to_tokens();
        quote! {
            const _: () = {
                #track
                #entry
            };
        }
    });
    quote! { #(#registrations)* }
}
