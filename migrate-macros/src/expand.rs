//! Turning a validated function and its arguments into a registration.

use crate::args::{self, Args, Kind};
use crate::{checksum, item};
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{ItemFn, ReturnType};

/// Expands one attribute. Never panics: every problem becomes a spanned
/// `compile_error!` next to the untouched input.
pub fn attribute(args: TokenStream, input: TokenStream, kind: Kind) -> TokenStream {
    let parsed_args = args::parse(args, kind);
    let parsed_fn = item::parse(input.clone(), kind.attr_name());
    match (parsed_args, parsed_fn) {
        (Ok(args), Ok(func)) => {
            match outside_transaction_param(&args, &func).or_else(|| async_options(&args, &func)) {
                Some(error) => fallback(error, input),
                None => register(&args, &func, kind),
            }
        }
        (Err(mut a), Err(b)) => {
            a.combine(b);
            fallback(a, input)
        }
        (Err(e), Ok(_)) | (Ok(_), Err(e)) => fallback(e, input),
    }
}

/// The user's item stays in place, so the only error they see is ours.
fn fallback(error: syn::Error, input: TokenStream) -> TokenStream {
    let error = error.into_compile_error();
    quote! { #error #input }
}

/// One entry of the runtime's registry (`__private::Entry`), as the
/// `register!` call that places it. Both macros build entries here only.
pub struct Registration {
    /// Where `migrate_core` is.
    pub krate: TokenStream,
    /// `Some((name, checksum, former checksums))` for a migration, `None` for
    /// a rollback.
    pub migration: Option<(String, String, Vec<String>)>,
    pub id: u32,
    /// The set's name.
    pub set: String,
    pub foreign_keys_off: bool,
    /// Runs outside any transaction.
    pub no_transaction: bool,
    /// Expressions of the source file and line.
    pub file: TokenStream,
    pub line: TokenStream,
    /// A `__private::Body` expression.
    pub body: TokenStream,
    /// An `Option<&__private::SqlDir>` expression: the directory an
    /// embedded SQL file was read from, `None` for a function.
    pub dir: TokenStream,
    /// The span of the generated tokens (errors in them point there).
    pub span: Span,
}

impl Registration {
    /// `register! { Entry { … } }`.
    pub fn to_tokens(&self) -> TokenStream {
        let Registration {
            krate,
            id,
            set,
            foreign_keys_off,
            no_transaction,
            file,
            line,
            body,
            dir,
            span,
            ..
        } = self;
        let span = *span;
        // A rollback has no link in the history chain.
        let mut slot_link = 0u128;
        let kind = match &self.migration {
            Some((name, checksum, former)) => {
                let link = checksum::link(*id, name, checksum);
                slot_link = link;
                quote_spanned! {span=>
                    #krate::__private::EntryKind::Migration {
                        name: #name,
                        checksum: #checksum,
                        former_checksums: &[#(#former),*],
                        link: #link,
                    }
                }
            }
            None => quote_spanned!(span=> #krate::__private::EntryKind::Rollback),
        };
        let set_hash = checksum::set_hash(set);
        // The registry's array for the set: `migrate_core::__private::bucket`,
        // pinned by a test of both crates.
        let bucket =
            quote::format_ident!("MIGRATE_CORE_REGISTRY_V4_{:02}", checksum::bucket(set_hash));
        let rollback = self.migration.is_none();
        quote_spanned! {span=>
            #krate::__private::register! {
                #bucket,
                #krate::__private::Slot {
                    set_hash: #set_hash,
                    link: #slot_link,
                    id: #id,
                    rollback: #rollback,
                    entry: &#krate::__private::Entry {
                        kind: #kind,
                        id: #id,
                        set: #set,
                        foreign_keys_off: #foreign_keys_off,
                        no_transaction: #no_transaction,
                        file: #file,
                        line: #line,
                        body: #body,
                        dir: #dir,
                    },
                }
            }
        }
    }
}

/// The path to the runtime: `crate = …` or `::migrate_core`.
pub fn krate(path: Option<&syn::Path>) -> TokenStream {
    path.map_or_else(|| quote!(::migrate_core), ToTokens::to_token_stream)
}

/// The set: `set = "…"` or the default set `""`.
pub fn set(lit: Option<&syn::LitStr>) -> String {
    lit.map_or_else(String::new, syn::LitStr::value)
}

fn register(args: &Args, func: &ItemFn, kind: Kind) -> TokenStream {
    let krate = krate(args.krate.as_ref());
    let ident = &func.sig.ident;
    let fn_span = func.sig.fn_token.span;

    // Spanned on the user's parameter and return type, so a type mismatch is
    // reported on their code rather than inside the macro.
    let param_span = func.sig.inputs.span();
    let is_async = func.sig.asyncness.is_some();
    let call = if is_async {
        quote_spanned! {param_span=> #ident(__migrate_core_tx).await }
    } else {
        quote_spanned! {param_span=> #ident(__migrate_core_tx) }
    };
    let output_span = match &func.sig.output {
        ReturnType::Default => func.sig.ident.span(),
        ReturnType::Type(_, ty) => ty.span(),
    };
    // The result is bound first and converted through a variable spanned on
    // the return type: an unsupported return type is then reported there,
    // not on the function's name.
    let out = syn::Ident::new("__migrate_core_out", output_span);
    let convert = quote_spanned! {output_span=>
        let #out = #call;
        #krate::__private::IntoOutcome::into_outcome(#out)
    };

    let migration = match kind {
        Kind::Migration => {
            let name = match &args.name {
                Some(lit) => lit.value(),
                None => unraw(ident),
            };
            let body = func.block.to_token_stream();
            Some((
                name,
                checksum::of_tokens(&body),
                checksum::former_of_tokens(&body),
            ))
        }
        Kind::Rollback => None,
    };

    // `file!()`/`line!()` resolve to the call site of the outermost macro:
    // spanned on the attribute, that is the `#[migration(…)]` line, the one
    // registry errors should point at (not the `fn` line below it, which is
    // further away when doc comments or other attributes sit in between).
    let here = Span::call_site();
    let entry = Registration {
        krate: krate.clone(),
        migration,
        id: args.id,
        set: set(args.set.as_ref()),
        foreign_keys_off: args.foreign_keys_off,
        no_transaction: args.no_transaction,
        file: quote_spanned!(here=> ::core::file!()),
        line: quote_spanned!(here=> ::core::line!()),
        body: if is_async {
            quote_spanned!(fn_span=> #krate::__private::Body::Libsql(__migrate_core_run))
        } else if args.no_transaction {
            quote_spanned!(fn_span=> #krate::__private::Body::Autocommit(__migrate_core_run))
        } else {
            quote_spanned!(fn_span=> #krate::__private::Body::Rust(__migrate_core_run))
        },
        dir: quote_spanned!(fn_span=> ::core::option::Option::None),
        span: fn_span,
    }
    .to_tokens();
    // A step outside a transaction gets the connection itself.
    let param = if args.no_transaction {
        quote_spanned!(fn_span=> &#krate::rusqlite::Connection)
    } else {
        quote_spanned!(fn_span=> &#krate::rusqlite::Transaction<'_>)
    };

    if is_async {
        // A libSQL step: the future of the user's function, boxed, on the
        // server's transaction.
        let registration = quote_spanned! {fn_span=>
            #[doc(hidden)]
            const _: () = {
                #[allow(clippy::let_unit_value)]
                fn __migrate_core_run(
                    __migrate_core_tx: &#krate::__private::LibsqlTransaction,
                ) -> #krate::__private::LibsqlFuture<'_> {
                    ::std::boxed::Box::pin(async move { #convert })
                }
                #entry
            };
        };
        return quote! {
            #func
            #registration
        };
    }
    let registration = quote_spanned! {fn_span=>
        #[doc(hidden)]
        const _: () = {
            // `let_unit_value`: the binding above for an explicit `-> ()`.
            #[allow(clippy::let_unit_value)]
            fn __migrate_core_run(
                __migrate_core_tx: #param,
            ) -> #krate::__private::Outcome {
                #convert
            }
            #entry
        };
    };
    quote! {
        #func
        #registration
    }
}

/// A `transaction = false` step gets the connection, not a transaction:
/// say so on a `&Transaction` parameter (the type error would only say
/// "expected `&Transaction`, found `&Connection`").
fn outside_transaction_param(args: &Args, func: &ItemFn) -> Option<syn::Error> {
    if !args.no_transaction {
        return None;
    }
    let syn::FnArg::Typed(param) = func.sig.inputs.first()? else {
        return None;
    };
    let syn::Type::Reference(reference) = &*param.ty else {
        return None;
    };
    let syn::Type::Path(path) = &*reference.elem else {
        return None;
    };
    let last = path.path.segments.last()?;
    (last.ident == "Transaction").then(|| {
        syn::Error::new(
            param.ty.span(),
            "a `transaction = false` step runs outside any transaction, on the connection: take \
             `conn: &Connection`",
        )
    })
}

/// An `async fn` (libSQL) step runs in the server's transaction, as it is:
/// it cannot run outside one, nor turn foreign keys off.
fn async_options(args: &Args, func: &ItemFn) -> Option<syn::Error> {
    let token = func.sig.asyncness.as_ref()?;
    let option = if args.no_transaction {
        "`transaction = false`"
    } else if args.foreign_keys_off {
        "`foreign_keys = off`"
    } else {
        return None;
    };
    Some(syn::Error::new(
        token.span,
        format!(
            "an `async fn` migration runs inside the libSQL server's transaction: {option} is \
             not available for it; remove the option, or write the step as SQL"
        ),
    ))
}

fn unraw(ident: &syn::Ident) -> String {
    let text = ident.to_string();
    match text.strip_prefix("r#") {
        Some(stripped) => stripped.to_owned(),
        None => text,
    }
}
