//! `embed_migrations!("dir")`: SQL files registered at compile time.
//!
//! The directory is read ([`layout`](crate::layout)), each file made ready to
//! run ([`script`](crate::script)), the migrations numbered, and every
//! problem reported at once, each naming its file (and line):
//! - `embed_migrations!("dir")`: a file's version is its migration id, so
//!   `000_init.sql` is migration 0. Since SQL and Rust migrations share one
//!   sequence, the directory may leave ids to `#[migration]` functions, but
//!   one that does not start at 0 is refused, suggesting `ids = "sorted"`,
//!   unless `ids = "numbers"` says that is meant;
//! - `embed_migrations!("dir", ids = "sorted")`: migrations 0, 1, 2, … in
//!   the order of the versions, whatever they are (`0001`, timestamps,
//!   diesel's dates). Two files with one version are refused.
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
use crate::layout::{self, Direction, Version};
use crate::{checksum, script};

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

/// One file, read, checked and numbered.
struct Ready {
    id: u32,
    direction: Direction,
    name: String,
    shown: String,
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
        Ok(files) => register(&args, &files),
        Err(error) => error.into_compile_error(),
    }
}

fn collect(args: &Args) -> syn::Result<Vec<Ready>> {
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

    // Files by version, in version order.
    let mut ups: BTreeMap<Version, Vec<layout::File>> = BTreeMap::new();
    let mut downs: BTreeMap<Version, Vec<layout::File>> = BTreeMap::new();
    for file in scan.files {
        match file.direction {
            Direction::Up => ups.entry(file.version.clone()).or_default().push(file),
            Direction::Down => downs.entry(file.version.clone()).or_default().push(file),
        }
    }
    for (version, files) in &ups {
        if files.len() > 1 {
            problems.push(format!(
                "version {} is used by {} migrations: {}; give each a version of its own, one that \
                 sorts where it should run",
                version.digits,
                files.len(),
                shown(files)
            ));
        }
    }
    for (version, files) in &downs {
        if !ups.contains_key(version) {
            for file in files {
                problems.push(format!(
                    "{}: a rollback without its migration: no migration has version {}; give it \
                     its migration's version, or delete it",
                    file.shown, version.digits
                ));
            }
        } else if files.len() > 1 {
            problems.push(format!(
                "version {} has {} rollbacks: {}; keep one",
                version.digits,
                files.len(),
                shown(files)
            ));
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
            let Some(&id) = ids.get(&file.version) else {
                continue;
            };
            if let Some(file) = read(file, id, &mut problems) {
                ready.push(file);
            }
        }
    }
    if !problems.is_empty() {
        return Err(fail(format!(
            "invalid SQL migrations:\n  - {}",
            problems.join("\n  - ")
        )));
    }
    Ok(ready)
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

/// Each migration version's id.
fn number(
    mode: Ids,
    ups: &BTreeMap<Version, Vec<layout::File>>,
    relative: &str,
    problems: &mut Vec<String>,
) -> BTreeMap<Version, u32> {
    let mut ids = BTreeMap::new();
    if mode == Ids::Sorted {
        for (position, version) in ups.keys().enumerate() {
            match u32::try_from(position) {
                Ok(id) => ids.insert(version.clone(), id),
                Err(_) => break,
            };
        }
        return ids;
    }
    let sorted = format!("embed_migrations!(\"{relative}\", ids = \"sorted\")");
    let too_large: Vec<&layout::File> = ups
        .iter()
        .filter(|(version, _)| version.as_u32().is_none())
        .flat_map(|(_, files)| files)
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
    for version in ups.keys() {
        if let Some(id) = version.as_u32() {
            ids.insert(version.clone(), id);
        }
    }
    if let (Ids::Numbers, Some((first, files))) = (mode, ups.iter().next()) {
        if let Some(start) = first.as_u32().filter(|&start| start > 0) {
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

/// Reads and prepares one file; `None` (and problems) when it cannot run.
fn read(file: &layout::File, id: u32, problems: &mut Vec<String>) -> Option<Ready> {
    let shown = &file.shown;
    let text = match std::fs::read(&file.path) {
        Err(e) => {
            problems.push(format!("{shown}: cannot read it: {e}"));
            return None;
        }
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => {
                problems.push(format!(
                    "{shown}: not valid UTF-8 (byte {}); save it as UTF-8",
                    e.utf8_error().valid_up_to()
                ));
                return None;
            }
        },
    };
    match script::prepare(&text) {
        Ok(script) => Some(Ready {
            id,
            direction: file.direction,
            name: file.name.clone(),
            shown: shown.clone(),
            absolute: file.path.to_string_lossy().into_owned(),
            text,
            script,
        }),
        Err(found) => {
            for problem in found {
                problems.push(format!("{shown}:{}: {}", problem.line, problem.message));
            }
            None
        }
    }
}

fn register(args: &Args, files: &[Ready]) -> TokenStream {
    let krate = expand::krate(args.krate.as_ref());
    let set = expand::set(args.set.as_ref());
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
        let entry = Registration {
            krate: krate.clone(),
            migration,
            id: file.id,
            set: set.clone(),
            foreign_keys_off: file.script.foreign_keys_off,
            no_transaction: false,
            file: quote!(#shown),
            line: quote!(1),
            body: quote!(#krate::__private::Body::Sql(#body)),
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
