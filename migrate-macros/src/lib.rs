//! Attribute macros for [`migrate-core`](https://docs.rs/migrate-core).
//!
//! Use them through `migrate_core::{migration, rollback}`; this crate is an
//! implementation detail whose version is pinned by `migrate-core`.
//!
//! Each macro parses its arguments (`args`), validates the annotated function
//! (`item`), and expands to the unchanged function plus a registration of it in
//! the runtime's link-time registry (`expand`). On bad input it emits the
//! function unchanged next to a `compile_error!`, so the user sees the one
//! error that matters and not a cascade of "unused function" warnings.

#![deny(missing_docs)]

mod args;
mod checksum;
mod embed;
mod expand;
mod item;
mod layout;
mod script;
mod sections;
mod sql;

use proc_macro::TokenStream;

/// Registers a function as migration `n` of a set.
///
/// See `migrate_core::migration` for the full documentation.
#[proc_macro_attribute]
pub fn migration(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::attribute(args.into(), input.into(), args::Kind::Migration).into()
}

/// Registers a function as the rollback of migration `n` of a set.
///
/// See `migrate_core::rollback` for the full documentation.
#[proc_macro_attribute]
pub fn rollback(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::attribute(args.into(), input.into(), args::Kind::Rollback).into()
}

/// Registers the SQL files of a directory as migrations.
///
/// See `migrate_core::embed_migrations` for the full documentation.
#[proc_macro]
pub fn embed_migrations(input: TokenStream) -> TokenStream {
    embed::expand(input.into()).into()
}
