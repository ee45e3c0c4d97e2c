//! Validation of the item a `#[migration]` / `#[rollback]` is placed on.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::{FnArg, Item, ItemFn};

/// Parses `input` as a free function that can serve as a migration step, or
/// explains, spanned on the offending token, why it cannot.
pub fn parse(input: TokenStream, attr: &str) -> Result<ItemFn, syn::Error> {
    let item: Item = syn::parse2(input)?;
    let func = match item {
        Item::Fn(func) => func,
        other => {
            return Err(syn::Error::new(
                item_keyword_span(&other),
                format!(
                "#[{attr}] goes on a function: `fn name(tx: &Transaction) -> rusqlite::Result<()>`"
            ),
            ))
        }
    };
    let mut errors: Option<syn::Error> = None;
    let mut fail = |span: proc_macro2::Span, message: String| {
        let error = syn::Error::new(span, message);
        match &mut errors {
            Some(existing) => existing.combine(error),
            None => errors = Some(error),
        }
    };
    let sig = &func.sig;
    if let Some(token) = &sig.constness {
        fail(
            token.span,
            format!("#[{attr}] cannot be a `const fn`: migrations run at run time; remove `const`"),
        );
    }
    if let Some(token) = &sig.asyncness {
        if !cfg!(feature = "libsql") {
            fail(
                token.span,
                format!(
                    "#[{attr}] cannot be an `async fn`: migrations on a SQLite file run \
                     synchronously inside its transaction; remove `async` (an `async fn` taking \
                     `tx: &libsql::Transaction` runs on a libSQL server with migrate-core's \
                     `libsql` feature)"
                ),
            );
        } else if let Some(span) = rusqlite_param(sig) {
            fail(
                span,
                format!(
                    "#[{attr}] on an `async fn` runs on a libSQL server and takes \
                     `tx: &libsql::Transaction`; a rusqlite transaction is for a plain `fn`: \
                     remove `async`, or take `&libsql::Transaction`"
                ),
            );
        }
    }
    if let syn::Safety::Unsafe(token) = &sig.safety {
        fail(
            token.span,
            format!(
                "#[{attr}] cannot be an `unsafe fn`: the runner calls it as a safe function; \
                 remove `unsafe` and use an `unsafe` block inside"
            ),
        );
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        fail(
            sig.generics.span(),
            format!(
                "#[{attr}] cannot be generic: the registry needs one concrete function; remove \
                 the generic parameters"
            ),
        );
    }
    if let Some(variadic) = &sig.variadic {
        fail(variadic.span(), format!("#[{attr}] cannot be variadic"));
    }
    let receiver = sig.inputs.iter().find_map(|arg| match arg {
        FnArg::Receiver(receiver) => Some(receiver),
        FnArg::Typed(_) => None,
    });
    if let Some(receiver) = receiver {
        fail(
            receiver.self_token.span,
            format!(
                "#[{attr}] cannot be a method: write a free function `fn name(tx: &Transaction)` \
                 outside the `impl` block"
            ),
        );
    } else if sig.inputs.len() != 1 {
        // No parameter: point at the empty `()`. Too many: at the first
        // extra one, the one to remove.
        let span = match sig.inputs.iter().nth(1) {
            None => sig.paren_token.span.join(),
            Some(extra) => extra.span(),
        };
        fail(
            span,
            format!(
                "#[{attr}] functions take exactly one parameter, `tx: &Transaction` (or \
                 `&Connection`); found {}",
                sig.inputs.len()
            ),
        );
    }
    match errors {
        Some(error) => Err(error),
        None => Ok(func),
    }
}

/// The span of a parameter that is visibly rusqlite's: `Transaction<'_>`
/// (libSQL's has no lifetime), `Connection`, or a path through `rusqlite`.
fn rusqlite_param(sig: &syn::Signature) -> Option<proc_macro2::Span> {
    let FnArg::Typed(param) = sig.inputs.first()? else {
        return None;
    };
    let syn::Type::Reference(reference) = &*param.ty else {
        return None;
    };
    let syn::Type::Path(path) = &*reference.elem else {
        return None;
    };
    let segments = &path.path.segments;
    let last = segments.last()?;
    let rusqlite = segments.iter().any(|segment| segment.ident == "rusqlite")
        || last.ident == "Connection"
        || (last.ident == "Transaction" && !last.arguments.is_empty());
    rusqlite.then(|| param.ty.span())
}

fn item_keyword_span(item: &Item) -> proc_macro2::Span {
    match item {
        Item::Struct(i) => i.struct_token.span,
        Item::Enum(i) => i.enum_token.span,
        Item::Const(i) => i.const_token.span,
        Item::Static(i) => i.static_token.span,
        Item::Mod(i) => i.mod_token.span,
        Item::Impl(i) => i.impl_token.span,
        Item::Trait(i) => i.trait_token.span,
        Item::Type(i) => i.type_token.span,
        Item::Use(i) => i.use_token.span,
        Item::Union(i) => i.union_token.span,
        other => other.to_token_stream().span(),
    }
}
