//! The checksum does not change under `rustfmt` at any `max_width`: the real
//! rustfmt formats `testdata/realistic_migrations.rs` at several widths, and
//! every function keeps its checksum. The first definition (`v1`) did not
//! pass this test (checked below, so the test keeps proving something).
//! Controls: an edited literal, an edited identifier and two swapped
//! statements each change the checksum.

use super::{of_tokens, third_of_tokens, v1, v2};
use proc_macro2::TokenStream;
use quote::ToTokens;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

const WIDTHS: [u32; 5] = [40, 60, 80, 100, 140];

fn sample() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/realistic_migrations.rs");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Each function's name and body tokens.
fn bodies(source: &str) -> Vec<(String, TokenStream)> {
    let file = syn::parse_file(source).unwrap_or_else(|e| panic!("parse: {e}\n{source}"));
    file.items
        .iter()
        .filter_map(|item| match item {
            syn::Item::Fn(f) => Some((f.sig.ident.to_string(), f.block.to_token_stream())),
            _ => None,
        })
        .collect()
}

fn checksums(source: &str, of: fn(&TokenStream) -> String) -> Vec<(String, String)> {
    bodies(source)
        .into_iter()
        .map(|(name, body)| (name, of(&body)))
        .collect()
}

/// `source` formatted by the real rustfmt at `width`.
fn rustfmt(source: &str, width: u32) -> String {
    // Tests run in parallel: one file per call.
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    let path: PathBuf = std::env::temp_dir().join(format!(
        "migrate-macros-rustfmt-{}-{call}-width-{width}.rs",
        std::process::id()
    ));
    std::fs::write(&path, source).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    let rustfmt = std::env::var("RUSTFMT").unwrap_or_else(|_| "rustfmt".to_owned());
    let output = Command::new(&rustfmt)
        .args(["--edition", "2021", "--config"])
        .arg(format!("max_width={width}"))
        .arg(&path)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `{rustfmt}` ({e}): this test needs rustfmt (rustup component add rustfmt)")
        });
    assert!(
        output.status.success(),
        "rustfmt failed at max_width={width}:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let formatted =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let _ = std::fs::remove_file(&path);
    formatted
}

#[test]
fn rustfmt_at_any_width_keeps_every_checksum() {
    let original = sample();
    let expected = checksums(&original, of_tokens);
    assert_eq!(expected.len(), 9, "the sample's nine functions");
    let mut v1_changed = Vec::new();
    let mut v2_changed = Vec::new();
    let mut third_changed = Vec::new();
    let mut formatted_texts = Vec::new();
    for width in WIDTHS {
        let formatted = rustfmt(&original, width);
        assert_eq!(
            checksums(&formatted, of_tokens),
            expected,
            "checksums after rustfmt --config max_width={width}:\n{formatted}"
        );
        // Formatting twice changes nothing more.
        assert_eq!(checksums(&rustfmt(&formatted, width), of_tokens), expected);
        for ((name, before), (_, after)) in checksums(&original, v1::of_tokens)
            .into_iter()
            .zip(checksums(&formatted, v1::of_tokens))
        {
            if before != after {
                v1_changed.push(format!("{name} at {width}"));
            }
        }
        for ((name, before), (_, after)) in checksums(&original, v2::of_tokens)
            .into_iter()
            .zip(checksums(&formatted, v2::of_tokens))
        {
            if before != after {
                v2_changed.push(format!("{name} at {width}"));
            }
        }
        for ((name, before), (_, after)) in checksums(&original, third_of_tokens)
            .into_iter()
            .zip(checksums(&formatted, third_of_tokens))
        {
            if before != after {
                third_changed.push(format!("{name} at {width}"));
            }
        }
        formatted_texts.push(formatted);
    }
    // The widths really format differently, and the first definition's
    // checksums really changed: the test would catch a regression.
    formatted_texts.dedup();
    assert_eq!(
        formatted_texts.len(),
        WIDTHS.len(),
        "each width gives its own text"
    );
    for name in [
        "backfill_kinds",
        "seed_settings",
        "normalise_emails",
        "rebuild_with_check",
    ] {
        assert!(
            v1_changed.iter().any(|c| c.starts_with(name)),
            "{name}: v1 was not sensitive to formatting here: {v1_changed:?}"
        );
    }
    // The second definition missed what these two hold.
    for name in ["helpers_with_generics", "loops_and_vectors"] {
        assert!(
            v2_changed.iter().any(|c| c.starts_with(name)),
            "{name}: v2 was not sensitive to formatting here: {v2_changed:?}"
        );
    }
    // And the third, what this one holds.
    for name in ["call_of_a_looked_up_step", "closure_returning_early"] {
        assert!(
            third_changed.iter().any(|c| c.starts_with(name)),
            "{name}: the third definition was not sensitive to formatting here: {third_changed:?}"
        );
    }
}

#[test]
fn edits_change_the_checksum() {
    let original = sample();
    let base = checksums(&original, of_tokens);
    let check = |edited: &str, function: &str| {
        assert_ne!(edited, original, "the edit applies");
        let after = checksums(edited, of_tokens);
        for ((name, before), (_, now)) in base.iter().zip(&after) {
            if name == function {
                assert_ne!(before, now, "{function}: the edit must change the checksum");
            } else {
                assert_eq!(before, now, "{name}: untouched");
            }
        }
        // Still true after formatting: formatting never hides an edit.
        for width in [40, 140] {
            let formatted = checksums(&rustfmt(edited, width), of_tokens);
            assert_eq!(formatted, after, "{function} edited, at {width}");
        }
    };
    // One literal.
    check(
        &original.replacen(
            "\"SELECT id, name FROM users WHERE kind IS NULL ORDER BY id\"",
            "\"SELECT id, name FROM users WHERE kind IS NULL ORDER BY id DESC\"",
            1,
        ),
        "backfill_kinds",
    );
    check(
        &original.replacen("1..=3 =>", "1..=4 =>", 1),
        "backfill_kinds",
    );
    // One identifier.
    check(
        &original.replacen("to_lowercase()", "to_uppercase()", 1),
        "normalise_emails",
    );
    // Two statements swapped.
    check(
        &original.replacen(
            "*counts.entry(kind).or_insert(0) += 1;\n        if id < 0 { return Err(format!(\"negative id {id} for user {name}, which the old importer produced\").into()) }",
            "if id < 0 { return Err(format!(\"negative id {id} for user {name}, which the old importer produced\").into()) }\n        *counts.entry(kind).or_insert(0) += 1;",
            1,
        ),
        "backfill_kinds",
    );
    // A one-element tuple is not a parenthesised value.
    check(
        &original.replacen("let t = (total,);", "let t = (total);", 1),
        "rebuild_with_check",
    );
}
