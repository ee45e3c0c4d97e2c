//! Checksums of migrations: of a Rust body's tokens, or of an SQL file's text.
//!
//! The hash is SipHash-1-3 with a zero key and 128-bit output, a fixed,
//! published algorithm (unlike `std`'s `DefaultHasher`, which may change
//! between Rust releases). `migrate-core` uses the same function at run time.
//!
//! What is hashed changes only when the migration's meaning does:
//! - an SQL file's text with its line endings normalised (CRLF and a lone CR
//!   become LF), so a Windows checkout and a Unix one agree, and without a
//!   byte order mark at its start (an editor's, which SQLite reads as a
//!   blank);
//! - a Rust body's tokens in a canonical form ([`canonical`]) that every
//!   `rustfmt` output of the same code shares, whatever its `max_width`:
//!   comments, whitespace and line breaks never count, and neither do the
//!   token differences rustfmt makes between widths (trailing commas, braces
//!   around a single-expression match arm or closure body, the comma after a
//!   match arm, the order of `use` items).
//!
//! The first definition ([`v1`]) hashed raw SQL text and raw tokens; the
//! second ([`v2`]) had the canonical form without four of rustfmt's
//! rewrites; the third, without one more (see [`canonical`]). Their values are stored in existing databases, so each
//! migration also carries its checksum under each earlier definition
//! whenever it differs from the current one ([`former_of_tokens`],
//! [`former_of_sql`]): the runtime recognises such a row as the same
//! migration instead of reporting it modified, and rewrites it.

mod canonical;
#[cfg(test)]
mod rustfmt_invariance;
pub mod v1;
mod v2;

use proc_macro2::TokenStream;
use siphasher::sip128::{Hasher128, SipHasher13};
use std::hash::Hasher;

/// The checksum of a Rust body (a token stream), as 32 lowercase hex digits.
pub fn of_tokens(tokens: &TokenStream) -> String {
    let mut serialised = String::new();
    v1::write_canonical(canonical::normalize(tokens.clone()), &mut serialised);
    of_text(&serialised)
}

/// The checksum of an SQL file's text, line endings normalised, a byte
/// order mark at its start left out.
pub fn of_sql(text: &str) -> String {
    of_text(&normalize_line_endings(without_bom(text)))
}

/// `text` without the byte order mark an editor may put at its start.
fn without_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

/// The checksums the same body had under earlier definitions, when they
/// differ from [`of_tokens`]'s (empty when they are all equal).
pub fn former_of_tokens(tokens: &TokenStream) -> Vec<String> {
    former(
        of_tokens(tokens),
        [
            v1::of_tokens(tokens),
            v2::of_tokens(tokens),
            third_of_tokens(tokens),
        ],
    )
}

/// The third definition's checksum of a Rust body (see [`canonical`]).
fn third_of_tokens(tokens: &TokenStream) -> String {
    let mut serialised = String::new();
    v1::write_canonical(canonical::third(tokens.clone()), &mut serialised);
    of_text(&serialised)
}

/// The checksums the same SQL text had under earlier definitions, when they
/// differ from [`of_sql`]'s (for text holding a carriage return, and for
/// any text with and without a byte order mark at its start, which the
/// earlier definitions hashed: a mark removed since the history was
/// recorded changes nothing either, round 18).
pub fn former_of_sql(text: &str) -> Vec<String> {
    let marked = format!("\u{feff}{}", without_bom(text));
    former(
        of_sql(text),
        [
            v1::of_sql(text),
            of_text(&normalize_line_endings(text)),
            v1::of_sql(&marked),
            of_text(&normalize_line_endings(&marked)),
        ],
    )
}

fn former<const N: usize>(current: String, earlier: [String; N]) -> Vec<String> {
    let mut former: Vec<String> = Vec::new();
    for value in earlier {
        if value != current && !former.contains(&value) {
            former.push(value);
        }
    }
    former
}

/// CRLF and lone CR become LF.
fn normalize_line_endings(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// A migration's link in the history chain: SipHash-1-3 (zero key, 128
/// bits) of `{id}|{name length}:{name}|{checksum}`. migrate-core folds the
/// links of a set into the chain its tracking table stores; computing them
/// here spares every process the hashing (pinned in both crates).
pub fn link(id: u32, name: &str, checksum: &str) -> u128 {
    let mut hasher = SipHasher13::new_with_keys(0, 0);
    hasher.write(format!("{id}|{}:", name.len()).as_bytes());
    hasher.write(name.as_bytes());
    hasher.write(b"|");
    hasher.write(checksum.as_bytes());
    hasher.finish128().as_u128()
}

/// SipHash-1-3 (zero key, 128 bits) of a set's name: a set's migrations
/// are found by it alone, without reading their entries (pinned in both
/// crates).
pub fn set_hash(set: &str) -> u128 {
    let mut hasher = SipHasher13::new_with_keys(0, 0);
    hasher.write(b"set:");
    hasher.write(set.as_bytes());
    hasher.finish128().as_u128()
}

/// The registry array a set's slots go to: `migrate_core::__private::bucket`
/// (32 arrays; pinned in both crates).
pub fn bucket(set_hash: u128) -> usize {
    (set_hash % 32) as usize
}

/// SipHash-1-3 (zero key, 128 bits) of `text`, as 32 lowercase hex digits.
pub fn of_text(text: &str) -> String {
    let mut hasher = SipHasher13::new_with_keys(0, 0);
    hasher.write(text.as_bytes());
    format!("{:032x}", hasher.finish128().as_u128())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn links_and_set_hashes_match_the_runtime() {
        // migrate-core's hash.rs and registry.rs pin the same values.
        assert_eq!(
            format!(
                "{:032x}",
                link(7, "add_tags", "0fbbc3abe48864c6a7dd1e0b33f56523")
            ),
            LINK_7_ADD_TAGS
        );
        assert_eq!(
            format!("{:032x}", set_hash("")),
            "26100ddef1cacda83b6adb4b52db7724"
        );
        assert_eq!(
            format!("{:032x}", set_hash("a")),
            "a18336d6a30511dd164102412b58d9dd"
        );
        assert_eq!((bucket(set_hash("")), bucket(set_hash("a"))), (4, 29));
    }

    const LINK_7_ADD_TAGS: &str = "b18ea2ef439663b421ba3e01ed71a9cd";

    fn tokens(src: &str) -> TokenStream {
        TokenStream::from_str(src).expect("test source parses")
    }

    fn sum(src: &str) -> String {
        of_tokens(&tokens(src))
    }

    #[test]
    fn formatting_and_comments_do_not_count() {
        let a = sum("{ tx.execute_batch(\"CREATE TABLE a (x)\")?; Ok(()) }");
        let b = sum(
            "{\n    // make the table\n    tx.execute_batch( \"CREATE TABLE a (x)\" ) ? ;\n    /// doc\n    Ok ( ( ) )\n}",
        );
        assert_eq!(a, b);
    }

    #[test]
    fn code_changes_count() {
        let a = sum("{ tx.execute_batch(\"CREATE TABLE a (x)\") }");
        let b = sum("{ tx.execute_batch(\"CREATE TABLE b (x)\") }");
        let c = sum("{ tx.execute_batch(\"CREATE TABLE a (x)\"); }");
        assert_ne!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn delimiters_count() {
        assert_ne!(sum("{ f(a)(b) }"), sum("{ f(a(b)) }"));
        assert_ne!(sum("{ ab }"), sum("{ a b }"));
    }

    #[test]
    fn known_values_are_stable() {
        // Pinned: a change to the canonical form or the hash would flag every
        // applied migration of every user as modified, so it must not pass
        // unnoticed. migrate-core's hash.rs pins the SQL values too.
        assert_eq!(sum("{ Ok(()) }"), "e8ae870249e1161ec42234a7c227d649");
        assert_eq!(
            sum("{ tx.execute(\"INSERT INTO t (v) VALUES (?1)\", [1])?; Ok(()) }"),
            CURRENT_OF_TRAILING_COMMA_BODY
        );
        assert_eq!(
            of_sql("CREATE TABLE a (x)"),
            "0fbbc3abe48864c6a7dd1e0b33f56523"
        );
        assert_eq!(
            of_sql("CREATE TABLE a (x);\nCREATE TABLE b (y);\n"),
            "beb7ab440afe9aad28508c707131d6a5"
        );
    }

    /// The current checksum of the body pinned under v1 with a trailing
    /// comma (`f593e680…`): the comma no longer counts.
    const CURRENT_OF_TRAILING_COMMA_BODY: &str = "56e3958ca06d2e47fd547429c410ef5b";

    /// Round 18: a tuple after a label is not an argument list, so its
    /// one-element comma counts (`break 'a (1,)` returns a tuple, `(1)` a
    /// number); under the third definition they shared a checksum.
    #[test]
    fn a_tuple_after_a_label_keeps_its_comma() {
        let tuple = tokens("{ let v = 'a: loop { break 'a (1,); }; Ok(()) }");
        let number = tokens("{ let v = 'a: loop { break 'a (1); }; Ok(()) }");
        assert_ne!(of_tokens(&tuple), of_tokens(&number));
        assert_eq!(third_of_tokens(&tuple), third_of_tokens(&number));
    }

    /// An editor's byte order mark changes nothing SQLite runs: no
    /// checksum of its own (round 16: adding one reported the applied file
    /// modified), and the value hashed with it before is carried as former.
    #[test]
    fn a_byte_order_mark_is_not_part_of_the_checksum() {
        let plain = "CREATE TABLE a (x);\nCREATE TABLE b (y);\n";
        let marked = "\u{feff}CREATE TABLE a (x);\r\nCREATE TABLE b (y);\r\n";
        assert_eq!(of_sql(marked), of_sql(plain));
        assert_eq!(
            former_of_sql(marked),
            vec![v1::of_sql(marked), of_text(&normalize_line_endings(marked))]
        );
        // The mark removed since: its values still count as the file's.
        let removed = marked.trim_start_matches('\u{feff}');
        for former in former_of_sql(marked) {
            assert!(former_of_sql(removed).contains(&former), "{former}");
        }
        // A mark anywhere else is text (inside a string, it is data).
        assert_ne!(of_sql("SELECT '\u{feff}';"), of_sql("SELECT '';"));
    }

    #[test]
    fn the_former_checksum_is_emitted_only_when_it_differs() {
        // Unchanged by the new definition: nothing former to carry.
        assert!(former_of_tokens(&tokens("{ Ok(()) }")).is_empty());
        // An SQL text always carries its values with a byte order mark.
        let plain = "CREATE TABLE a (x);\n";
        let marked = format!("\u{feff}{plain}");
        assert_eq!(former_of_sql(plain), vec![v1::of_sql(&marked)]);
        assert_eq!(
            v1::of_sql(&marked),
            of_text(&marked),
            "no CR: v1 and v2 agree"
        );

        // A trailing comma: the current checksum ignores it, v1 did not.
        let body = tokens("{ tx.execute(\"INSERT INTO t (v) VALUES (?1)\", [1],)?; Ok(()) }");
        assert_eq!(of_tokens(&body), CURRENT_OF_TRAILING_COMMA_BODY);
        assert_eq!(
            former_of_tokens(&body),
            vec!["f593e680ee99c82ab42962443d238928".to_owned()]
        );

        // CRLF: the current checksum is the LF text's, v1 hashed the bytes.
        let crlf = "CREATE TABLE a (x);\r\nCREATE TABLE b (y);\r\n";
        assert_eq!(of_sql(crlf), "beb7ab440afe9aad28508c707131d6a5");
        assert_eq!(
            former_of_sql(crlf).first().map(String::as_str),
            Some("9154943f88eadbd06051b45c01d19dd8")
        );
        assert_eq!(of_sql("a\rb"), of_sql("a\nb"));
        assert_eq!(of_sql("a\r\n\rb"), of_sql("a\n\nb"));
    }

    #[test]
    fn the_second_definitions_checksum_is_carried_where_it_differs() {
        // What the second definition missed: `extern "C"` written out.
        let body = tokens("{ extern \"C\" fn cb() {} cb(); Ok(()) }");
        assert_eq!(
            of_tokens(&body),
            of_tokens(&tokens("{ extern fn cb() {} cb(); Ok(()) }"))
        );
        let former = former_of_tokens(&body);
        assert_eq!(
            former,
            vec![V2_OF_EXTERN_C_BODY.to_owned()],
            "v1 and v2 agree here"
        );
        assert_eq!(v2::of_tokens(&body), V2_OF_EXTERN_C_BODY);
        assert_eq!(v1::of_tokens(&body), V2_OF_EXTERN_C_BODY);
        assert!(!former.contains(&of_tokens(&body)));
    }

    /// Pinned: what the first two definitions computed for the body above
    /// (they agree on it: it holds nothing either rewrites).
    const V2_OF_EXTERN_C_BODY: &str = "69d7a825388ea950be77fb00838056e6";
}
