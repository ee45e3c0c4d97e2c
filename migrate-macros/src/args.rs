//! Parsing of `#[migration(…)]` / `#[rollback(…)]` arguments.

use proc_macro2::{Span, TokenStream};
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::{Ident, LitInt, LitStr, Path, Token};

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
            Kind::Migration => &["name", "set", "foreign_keys", "crate"],
            Kind::Rollback => &["set", "foreign_keys", "crate"],
        }
    }
}

/// The validated arguments of one attribute.
pub struct Args {
    pub id: u32,
    pub name: Option<LitStr>,
    pub set: Option<LitStr>,
    pub foreign_keys_off: bool,
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
        krate: None,
    };
    let mut seen: Vec<String> = Vec::new();
    while !input.is_empty() {
        input.parse::<Token![,]>()?;
        if input.is_empty() {
            break;
        }
        let key = Ident::parse_any(input)?;
        let key_name = key.to_string();
        if !kind.options().contains(&key_name.as_str()) {
            return Err(syn::Error::new(
                key.span(),
                format!(
                    "unknown option `{key_name}` for #[{attr}]; expected one of: {}",
                    kind.options().join(", ")
                ),
            ));
        }
        if seen.contains(&key_name) {
            return Err(syn::Error::new(
                key.span(),
                format!("option `{key_name}` is given twice"),
            ));
        }
        seen.push(key_name.clone());
        input.parse::<Token![=]>()?;
        match key_name.as_str() {
            "name" => args.name = Some(parse_non_empty_str(input, "name")?),
            "set" => args.set = Some(input.parse()?),
            "crate" => args.krate = Some(Path::parse_mod_style(input)?),
            "foreign_keys" => {
                let value: Ident = input.parse()?;
                if value != "off" {
                    return Err(syn::Error::new(
                        value.span(),
                        "`foreign_keys` only takes `off` (foreign keys are left as they are by default)",
                    ));
                }
                args.foreign_keys_off = true;
            }
            _ => unreachable!("options() lists every handled key"),
        }
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
    if !input.peek(LitInt) {
        let token: proc_macro2::TokenTree = input.parse()?;
        return Err(syn::Error::new(
            token.span(),
            format!("expected a migration id, an integer literal such as #[{attr}(0)]"),
        ));
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

fn parse_non_empty_str(input: ParseStream, what: &str) -> syn::Result<LitStr> {
    let lit: LitStr = input.parse()?;
    if lit.value().trim().is_empty() {
        return Err(syn::Error::new(
            lit.span(),
            format!("`{what}` must not be empty"),
        ));
    }
    Ok(lit)
}
