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
        (Ok(args), Ok(func)) => register(&args, &func, kind),
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

fn register(args: &Args, func: &ItemFn, kind: Kind) -> TokenStream {
    let krate = match &args.krate {
        Some(path) => path.to_token_stream(),
        None => quote!(::migrate_core),
    };
    let ident = &func.sig.ident;
    let id = args.id;
    let set = args
        .set
        .as_ref()
        .map_or_else(|| quote!(""), |lit| lit.to_token_stream());
    let foreign_keys_off = args.foreign_keys_off;
    let fn_span = func.sig.fn_token.span;

    // Spanned on the user's parameter and return type, so a type mismatch is
    // reported on their code rather than inside the macro.
    let param_span = func.sig.inputs.span();
    let call = quote_spanned! {param_span=> #ident(__migrate_core_tx) };
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

    let entry_kind = match kind {
        Kind::Migration => {
            let name = match &args.name {
                Some(lit) => lit.value(),
                None => unraw(ident),
            };
            let checksum = checksum::of_tokens(&func.block.to_token_stream());
            quote!(#krate::__private::EntryKind::Migration { name: #name, checksum: #checksum })
        }
        Kind::Rollback => quote!(#krate::__private::EntryKind::Rollback),
    };

    // `file!()`/`line!()` resolve to the call site of the outermost macro:
    // spanned on the attribute, that is the `#[migration(…)]` line, the one
    // registry errors should point at (not the `fn` line below it, which is
    // further away when doc comments or other attributes sit in between).
    let here = Span::call_site();
    let file = quote_spanned!(here=> ::core::file!());
    let line = quote_spanned!(here=> ::core::line!());

    let registration = quote_spanned! {fn_span=>
        #[doc(hidden)]
        const _: () = {
            // `let_unit_value`: the binding above for an explicit `-> ()`.
            #[allow(clippy::let_unit_value)]
            fn __migrate_core_run(
                __migrate_core_tx: &#krate::rusqlite::Transaction<'_>,
            ) -> #krate::__private::Outcome {
                #convert
            }
            #krate::__private::register! {
                #krate::__private::Entry {
                    kind: #entry_kind,
                    id: #id,
                    set: #set,
                    foreign_keys_off: #foreign_keys_off,
                    file: #file,
                    line: #line,
                    body: #krate::__private::Body::Rust(__migrate_core_run),
                }
            }
        };
    };
    quote! {
        #func
        #registration
    }
}

fn unraw(ident: &syn::Ident) -> String {
    let text = ident.to_string();
    match text.strip_prefix("r#") {
        Some(stripped) => stripped.to_owned(),
        None => text,
    }
}
