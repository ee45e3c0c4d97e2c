//! Parsing of `#[migration(…)]` / `#[rollback(…)]` arguments.

use proc_macro2::{Span, TokenStream};
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::{Ident, LitFloat, LitInt, LitStr, Path, Token};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Migration,
    Rollback,
}

impl Kind {
    pub fn attr_name(self) -> &'static str {
        match self {
            Kind::Migration => "migration",
            Kind::Rollback => "rollback",
        }
    }

    fn options(self) -> &'static [&'static str] {
        match self {
            Kind::Migration => &["name", "set", "foreign_keys", "transaction", "crate"],
            Kind::Rollback => &["set", "foreign_keys", "transaction", "crate"],
        }
    }
}

/// The validated arguments of one attribute.
pub struct Args {
    pub id: u32,
    pub name: Option<LitStr>,
    pub set: Option<LitStr>,
    pub foreign_keys_off: bool,
    /// `transaction = false`: the step runs outside any transaction.
    pub no_transaction: bool,
    pub krate: Option<Path>,
}

pub fn parse(tokens: TokenStream, kind: Kind) -> syn::Result<Args> {
    let parser = |input: ParseStream| parse_args(input, kind);
    parser.parse2(tokens)
}

fn parse_args(input: ParseStream, kind: Kind) -> syn::Result<Args> {
    let attr = kind.attr_name();
    if input.is_empty() {
        return Err(syn::Error::new(
            Span::call_site(),
            format!("missing migration id: write #[{attr}(0)], #[{attr}(1)], …"),
        ));
    }
    let id = parse_id(input, attr)?;
    let mut args = Args {
        id,
        name: None,
        set: None,
        foreign_keys_off: false,
        no_transaction: false,
        krate: None,
    };
    let mut foreign_keys_span = None;
    let mut seen: Vec<String> = Vec::new();
    while !input.is_empty() {
        input.parse::<Token![,]>()?;
        if input.is_empty() {
            break;
        }
        let key = Ident::parse_any(input)?;
        let key_name = key.to_string();
        if kind == Kind::Rollback && key_name == "name" {
            return Err(syn::Error::new(
                key.span(),
                format!(
                    "a rollback has no name of its own: it undoes migration {id} and is reported \
                     under that migration's name; remove `name = …` (or rename the migration)"
                ),
            ));
        }
        if !kind.options().contains(&key_name.as_str()) {
            let hint = match closest(&key_name, kind.options()) {
                Some(option) => format!("did you mean `{option}`? "),
                None => String::new(),
            };
            return Err(syn::Error::new(
                key.span(),
                format!(
                    "unknown option `{key_name}` for #[{attr}]; {hint}the options are: {}",
                    kind.options().join(", ")
                ),
            ));
        }
        if seen.contains(&key_name) {
            return Err(syn::Error::new(
                key.span(),
                format!("option `{key_name}` is given twice; keep one"),
            ));
        }
        seen.push(key_name.clone());
        if !input.peek(Token![=]) {
            return Err(syn::Error::new(
                key.span(),
                format!("option `{key_name}` needs a value: {}", example(&key_name)),
            ));
        }
        input.parse::<Token![=]>()?;
        match key_name.as_str() {
            "name" => args.name = Some(parse_non_empty_str(input, "name")?),
            "set" => args.set = Some(parse_str(input, "set")?),
            "crate" => args.krate = Some(Path::parse_mod_style(input)?),
            "foreign_keys" => {
                let value: proc_macro2::TokenTree = input.parse()?;
                if value.to_string() != "off" {
                    return Err(syn::Error::new(
                        value.span(),
                        "`foreign_keys` only takes `off`: write `foreign_keys = off`, or leave the \
                         option out to run with foreign keys as the connection has them",
                    ));
                }
                args.foreign_keys_off = true;
                foreign_keys_span = Some(value.span());
            }
            "transaction" => {
                let value: syn::LitBool = input.parse().map_err(|error| {
                    syn::Error::new(
                        error.span(),
                        "`transaction` takes `false` (run outside any transaction) or `true` \
                         (the default)",
                    )
                })?;
                args.no_transaction = !value.value;
            }
            _ => unreachable!("options() lists every handled key"),
        }
    }
    if let (true, Some(span)) = (args.no_transaction, foreign_keys_span) {
        return Err(syn::Error::new(
            span,
            "a `transaction = false` step runs on the connection as it is, outside any \
             transaction: set `PRAGMA foreign_keys` in the step itself if it needs to, and remove \
             `foreign_keys = off`",
        ));
    }
    Ok(args)
}

fn parse_id(input: ParseStream, attr: &str) -> syn::Result<u32> {
    if input.peek(Token![-]) {
        let minus: Token![-] = input.parse()?;
        return Err(syn::Error::new(
            minus.span,
            format!("migration ids are non-negative: write #[{attr}(0)], #[{attr}(1)], …"),
        ));
    }
    if input.peek(LitFloat) {
        let lit: LitFloat = input.parse()?;
        return Err(syn::Error::new(
            lit.span(),
            format!(
                "migration ids are whole numbers, not `{lit}`: ids run 0, 1, 2, …; give a new \
                 migration the next free id"
            ),
        ));
    }
    if input.peek(LitStr) {
        let lit: LitStr = input.parse()?;
        let value = lit.value();
        let hint = match value.trim().parse::<u32>() {
            Ok(n) => format!("write #[{attr}({n})] without the quotes"),
            Err(_) => format!("write #[{attr}(0)], #[{attr}(1)], …"),
        };
        return Err(syn::Error::new(
            lit.span(),
            format!("the migration id is an integer literal, not a string: {hint}"),
        ));
    }
    if !input.peek(LitInt) {
        let token: proc_macro2::TokenTree = input.parse()?;
        let message = match &token {
            proc_macro2::TokenTree::Ident(ident) if input.peek(Token![=]) => {
                format!("the migration id comes first: write #[{attr}(0, {ident} = …)]")
            }
            _ => format!("expected a migration id, an integer literal such as #[{attr}(0)]"),
        };
        return Err(syn::Error::new(token.span(), message));
    }
    let lit: LitInt = input.parse()?;
    if !matches!(lit.suffix(), "" | "u32") {
        return Err(syn::Error::new(
            lit.span(),
            "a migration id is a plain integer such as 3 (no type suffix)",
        ));
    }
    lit.base10_parse::<u32>().map_err(|_| {
        syn::Error::new(
            lit.span(),
            format!("migration id `{lit}` does not fit in a u32 (0 to 4294967295)"),
        )
    })
}

/// A string literal, or an error that shows how to write one.
fn parse_str(input: ParseStream, what: &str) -> syn::Result<LitStr> {
    if input.peek(LitStr) {
        return input.parse();
    }
    let token: proc_macro2::TokenTree = input.parse().map_err(|error| {
        syn::Error::new(
            error.span(),
            format!("option `{what}` needs a value: {}", example(what)),
        )
    })?;
    let hint = match &token {
        proc_macro2::TokenTree::Ident(ident) => format!("write `{what} = \"{ident}\"`"),
        _ => example(what),
    };
    Err(syn::Error::new(
        token.span(),
        format!("`{what}` takes a string literal: {hint}"),
    ))
}

fn parse_non_empty_str(input: ParseStream, what: &str) -> syn::Result<LitStr> {
    let lit = parse_str(input, what)?;
    if lit.value().trim().is_empty() {
        return Err(syn::Error::new(
            lit.span(),
            format!("`{what}` must not be empty; leave the option out to use the function's name"),
        ));
    }
    Ok(lit)
}

/// How an option is written, for error messages.
fn example(option: &str) -> String {
    match option {
        "name" => "`name = \"create_users\"`".to_owned(),
        "set" => "`set = \"cache\"`".to_owned(),
        "foreign_keys" => "`foreign_keys = off`".to_owned(),
        "transaction" => "`transaction = false`".to_owned(),
        "crate" => "`crate = my_reexport::migrate_core`".to_owned(),
        other => format!("`{other} = …`"),
    }
}

/// The option closest to a misspelt one, if any is close enough.
fn closest(word: &str, options: &[&'static str]) -> Option<&'static str> {
    options
        .iter()
        .map(|option| (distance(word, option), *option))
        .filter(|(d, option)| *d <= option.len().max(3) / 3 + 1)
        .min_by_key(|(d, _)| *d)
        .map(|(_, option)| option)
}

/// Levenshtein distance, with a transposition counting as one edit.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_options_only() {
        let options = Kind::Migration.options();
        assert_eq!(closest("nmae", options), Some("name"));
        assert_eq!(closest("sets", options), Some("set"));
        assert_eq!(closest("foreign_key", options), Some("foreign_keys"));
        assert_eq!(closest("krate", options), Some("crate"));
        assert_eq!(closest("timeout", options), None);
    }
}
