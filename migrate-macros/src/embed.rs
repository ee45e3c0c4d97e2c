//! `embed_migrations!("dir")`: SQL files registered at compile time.
//!
//! `NNN_name.sql` is migration NNN and `NNN_name.down.sql` its rollback.
//! Every file is checked here, and every problem is reported at once,
//! naming the file: a name that does not match, an unreadable, non-UTF-8 or
//! empty file, two files with one number, a rollback without its migration,
//! and `BEGIN`/`COMMIT`/`END`/`ROLLBACK` in a file.
//!
//! Each file is pulled in with `include_str!`, so editing one rebuilds the
//! crate. Adding or removing a file is invisible to Cargo unless the crate
//! has a build script that says `cargo:rerun-if-changed=<dir>`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use proc_macro2::{Span, TokenStream};
use quote::{quote, ToTokens};
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::{Ident, LitStr, Token};

use crate::{checksum, sql};

struct Args {
    dir: LitStr,
    set: Option<LitStr>,
    krate: Option<syn::Path>,
}

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
    };
    while !input.is_empty() {
        input.parse::<Token![,]>()?;
        if input.is_empty() {
            break;
        }
        let key = Ident::parse_any(input)?;
        input.parse::<Token![=]>()?;
        match key.to_string().as_str() {
            "set" if args.set.is_none() => args.set = Some(input.parse()?),
            "crate" if args.krate.is_none() => {
                args.krate = Some(syn::Path::parse_mod_style(input)?)
            }
            "set" | "crate" => {
                return Err(syn::Error::new(
                    key.span(),
                    format!("option `{key}` is given twice"),
                ))
            }
            _ => {
                return Err(syn::Error::new(
                    key.span(),
                    format!(
                        "unknown option `{key}` for embed_migrations!; expected one of: set, crate"
                    ),
                ))
            }
        }
    }
    Ok(args)
}

/// One file, read and checked.
struct SqlFile {
    id: u32,
    name: String,
    /// Path as shown in messages: relative to the crate, as the user wrote it.
    shown: String,
    absolute: PathBuf,
    text: String,
}

pub fn expand(input: TokenStream) -> TokenStream {
    let args = match parse_args.parse2(input) {
        Ok(args) => args,
        Err(error) => return error.into_compile_error(),
    };
    match collect(&args) {
        Ok((ups, downs)) => register(&args, &ups, &downs),
        Err(error) => error.into_compile_error(),
    }
}

fn collect(args: &Args) -> syn::Result<(Vec<SqlFile>, Vec<SqlFile>)> {
    let span = args.dir.span();
    let fail = |message: String| syn::Error::new(span, message);
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").map_err(|_| {
        fail("CARGO_MANIFEST_DIR is not set: embed_migrations! must be built by Cargo".to_owned())
    })?;
    let relative = args.dir.value();
    let dir = Path::new(&manifest_dir).join(&relative);
    let entries = std::fs::read_dir(&dir).map_err(|e| {
        fail(format!(
            "cannot read the migrations directory {relative:?} (looked in {}): {e}",
            dir.display()
        ))
    })?;

    let mut problems: Vec<String> = Vec::new();
    let mut ups: BTreeMap<u32, Vec<SqlFile>> = BTreeMap::new();
    let mut downs: BTreeMap<u32, Vec<SqlFile>> = BTreeMap::new();
    let mut names: Vec<(String, PathBuf)> = Vec::new();
    for entry in entries {
        match entry {
            Ok(entry) => names.push((
                entry.file_name().to_string_lossy().into_owned(),
                entry.path(),
            )),
            Err(e) => problems.push(format!("{relative}: cannot list the directory: {e}")),
        }
    }
    names.sort();
    for (file_name, path) in names {
        if file_name.starts_with('.') {
            continue;
        }
        let shown = format!("{}/{file_name}", relative.trim_end_matches('/'));
        if path.is_dir() {
            problems.push(format!(
                "{shown}: subdirectories are not read; move its files up or remove it"
            ));
            continue;
        }
        let Some((id, name, is_down)) = parse_file_name(&file_name) else {
            problems.push(format!(
                "{shown}: the name does not match NNN_name.sql or NNN_name.down.sql (e.g. 001_create_users.sql)"
            ));
            continue;
        };
        let Some(id) = id else {
            problems.push(format!("{shown}: the number does not fit in a u32"));
            continue;
        };
        let text = match std::fs::read(&path) {
            Err(e) => {
                problems.push(format!("{shown}: cannot read it: {e}"));
                continue;
            }
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(e) => {
                    problems.push(format!(
                        "{shown}: not valid UTF-8 (byte {}); save it as UTF-8",
                        e.utf8_error().valid_up_to()
                    ));
                    continue;
                }
            },
        };
        if is_blank_sql(&text) {
            problems.push(format!(
                "{shown}: the file is empty; write the migration's SQL or remove the file"
            ));
            continue;
        }
        for statement in sql::transaction_statements(&text) {
            problems.push(format!(
                "{shown}:{}: `{}` ends or starts a transaction; remove it: the runner already runs each migration in a transaction of its own",
                statement.line, statement.keyword
            ));
        }
        let file = SqlFile {
            id,
            name,
            shown,
            absolute: path,
            text,
        };
        if is_down {
            downs.entry(id).or_default().push(file);
        } else {
            ups.entry(id).or_default().push(file);
        }
    }
    for (id, files) in &ups {
        if files.len() > 1 {
            let shown: Vec<&str> = files.iter().map(|f| f.shown.as_str()).collect();
            problems.push(format!(
                "migration {id} is defined by {} files: {}; renumber one",
                files.len(),
                shown.join(", ")
            ));
        }
    }
    for (id, files) in &downs {
        if files.len() > 1 {
            let shown: Vec<&str> = files.iter().map(|f| f.shown.as_str()).collect();
            problems.push(format!(
                "migration {id} has {} rollback files: {}; keep one",
                files.len(),
                shown.join(", ")
            ));
        }
        if !ups.contains_key(id) {
            for file in files {
                problems.push(format!(
                    "{}: a rollback without its migration: there is no {id:03}_*.sql",
                    file.shown
                ));
            }
        }
    }
    if ups.is_empty() && problems.is_empty() {
        problems.push(format!("{relative}: no NNN_name.sql files found"));
    }
    if !problems.is_empty() {
        return Err(fail(format!(
            "invalid SQL migrations:\n  - {}",
            problems.join("\n  - ")
        )));
    }
    Ok((
        ups.into_values().flatten().collect(),
        downs.into_values().flatten().collect(),
    ))
}

/// `001_name.sql` → `(Some(1), "name", false)`; `001_name.down.sql` → `(…, true)`.
/// `None` when the name does not have that shape; `Some((None, …))` when the
/// number is too large.
fn parse_file_name(file_name: &str) -> Option<(Option<u32>, String, bool)> {
    let stem = file_name.strip_suffix(".sql")?;
    let (stem, is_down) = match stem.strip_suffix(".down") {
        Some(stem) => (stem, true),
        None => (stem, false),
    };
    let (digits, name) = stem.split_once('_')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
    {
        return None;
    }
    Some((digits.parse().ok(), name.to_owned(), is_down))
}

/// True when `text` holds nothing but whitespace and comments.
fn is_blank_sql(text: &str) -> bool {
    let mut rest = text.trim_start();
    loop {
        if let Some(after) = rest.strip_prefix("--") {
            rest = after
                .split_once('\n')
                .map_or("", |(_, tail)| tail)
                .trim_start();
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after
                .split_once("*/")
                .map_or("", |(_, tail)| tail)
                .trim_start();
        } else {
            return rest
                .trim_matches(|c: char| c == ';' || c.is_whitespace())
                .is_empty();
        }
    }
}

fn register(args: &Args, ups: &[SqlFile], downs: &[SqlFile]) -> TokenStream {
    let krate = match &args.krate {
        Some(path) => path.to_token_stream(),
        None => quote!(::migrate_core),
    };
    let set = args
        .set
        .as_ref()
        .map_or_else(|| quote!(""), |lit| lit.to_token_stream());
    let entries = ups
        .iter()
        .map(|f| (f, true))
        .chain(downs.iter().map(|f| (f, false)));
    let registrations = entries.map(|(file, is_up)| {
        let id = file.id;
        let shown = &file.shown;
        let absolute = file.absolute.to_string_lossy().into_owned();
        let kind = if is_up {
            let name = &file.name;
            let checksum = checksum::of_text(&file.text);
            quote!(#krate::__private::EntryKind::Migration { name: #name, checksum: #checksum })
        } else {
            quote!(#krate::__private::EntryKind::Rollback)
        };
        quote! {
            const _: () = {
                #krate::__private::register! {
                    #krate::__private::Entry {
                        kind: #kind,
                        id: #id,
                        set: #set,
                        foreign_keys_off: false,
                        file: #shown,
                        line: 1,
                        body: #krate::__private::Body::Sql(::core::include_str!(#absolute)),
                    }
                }
            };
        }
    });
    quote! { #(#registrations)* }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        assert_eq!(
            parse_file_name("001_init.sql"),
            Some((Some(1), "init".into(), false))
        );
        assert_eq!(
            parse_file_name("0_init.down.sql"),
            Some((Some(0), "init".into(), true))
        );
        assert_eq!(
            parse_file_name("12_add-tags.sql"),
            Some((Some(12), "add-tags".into(), false))
        );
        assert_eq!(
            parse_file_name("99999999999_x.sql"),
            Some((None, "x".into(), false))
        );
        assert_eq!(parse_file_name("init.sql"), None);
        assert_eq!(parse_file_name("001init.sql"), None);
        assert_eq!(parse_file_name("001_.sql"), None);
        assert_eq!(parse_file_name("001_init.txt"), None);
        assert_eq!(parse_file_name("a1_init.sql"), None);
    }

    #[test]
    fn blank_files() {
        assert!(is_blank_sql("  \n-- nothing here\n/* nor here */ ;\n"));
        assert!(!is_blank_sql("-- a table\nCREATE TABLE a (x);"));
    }
}
