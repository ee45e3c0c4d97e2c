//! Checksums and the history chain.
//!
//! Checksums are SipHash-1-3 with a zero key and 128-bit output: a fixed,
//! published algorithm, so a checksum written by one build is read by the
//! next one whatever the compiler version. `migrate-macros` computes the
//! same at compile time.
//!
//! The chain makes "is the database up to date and unmodified?" one row
//! read: row `i` stores `seed + link_0 + … + link_i` (mod 2^128), so the
//! newest row stands for the whole history. Each migration's link (a
//! SipHash of its id, name and checksum) is computed by the macro at compile
//! time, and a sum of them is one addition per migration, taken in any
//! order: the registry folds a set straight from the slots the linker left,
//! without sorting them, so a process checks 10,000 migrations in
//! microseconds. Order still counts, through the ids inside the links. Like
//! the checksums, it detects accidental edits, not deliberate forgery.

use siphasher::sip128::{Hasher128, SipHasher13};
use std::hash::Hasher;

fn siphash(parts: &[&[u8]]) -> u128 {
    let mut hasher = SipHasher13::new_with_keys(0, 0);
    for part in parts {
        hasher.write(part);
    }
    hasher.finish128().as_u128()
}

/// SipHash-1-3 (zero key, 128 bits) of `bytes`, as 32 lowercase hex digits.
pub(crate) fn checksum(bytes: &[u8]) -> String {
    hex(siphash(&[bytes]))
}

/// A migration's link in the chain: SipHash-1-3 of
/// `{id}|{name length}:{name}|{checksum}`. The length keeps a name from
/// bleeding into the checksum.
pub(crate) fn link(id: u32, name: &str, checksum: &str) -> u128 {
    let head = format!("{id}|{}:", name.len());
    siphash(&[head.as_bytes(), name.as_bytes(), b"|", checksum.as_bytes()])
}

/// A set's name in the registry: SipHash-1-3 of `set:{name}` (see
/// `registry::set_hash`).
pub(crate) fn set_hash(set: &str) -> u128 {
    siphash(&[b"set:", set.as_bytes()])
}

/// Where a table's chain starts: SipHash-1-3 of `table:{name}`.
pub(crate) fn seed(table: &str) -> u128 {
    siphash(&[b"table:", table.as_bytes()])
}

/// One step of the chain: the previous value plus the link, mod 2^128.
///
/// Addition rather than a mix of the two (the definition on `main` for a
/// while, never released; like 0.3.0's string chain, a history holding it
/// is verified row by row and rewritten, see `history::verify`): a sum
/// does not depend on the order its terms come in, so the first call of a
/// process folds a set's links in one pass over the registry, in link
/// order, where a mix had to place every migration at its id first (three
/// quarters of that call's instructions at N = 1,000). Every link is a
/// 128-bit SipHash of the migration's id, name and checksum: an edit, a
/// rename or two migrations trading ids changes the sum unless SipHash
/// collides.
pub(crate) fn chain(previous: u128, link: u128) -> u128 {
    previous.wrapping_add(link)
}

/// 32 lowercase hex digits, as the tracking table stores hashes.
pub(crate) fn hex(value: u128) -> String {
    format!("{value:032x}")
}

/// The value of 32 hex digits, as stored; `None` for anything else.
pub(crate) fn parse_hex(text: &str) -> Option<u128> {
    if text.len() != 32 {
        return None;
    }
    u128::from_str_radix(text, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_is_fixed_width_hex() {
        let sum = checksum(b"CREATE TABLE a (x)");
        assert_eq!(sum.len(), 32);
        assert!(sum
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_ne!(sum, checksum(b"CREATE TABLE b (x)"));
    }

    #[test]
    fn matches_the_macro_crate() {
        // migrate-macros pins the same values for the same input: the two
        // crates must agree, or checksums and links would differ by origin.
        assert_eq!(
            checksum(b"CREATE TABLE a (x)"),
            "0fbbc3abe48864c6a7dd1e0b33f56523"
        );
        assert_eq!(
            checksum(b"CREATE TABLE t (\n  x\n);\n"),
            checksum(
                "CREATE TABLE t (\r\n  x\r\n);\r\n"
                    .replace("\r\n", "\n")
                    .as_bytes()
            )
        );
        assert_eq!(
            hex(link(7, "add_tags", "0fbbc3abe48864c6a7dd1e0b33f56523")),
            "b18ea2ef439663b421ba3e01ed71a9cd"
        );
    }

    #[test]
    fn link_depends_on_every_part() {
        let base = link(0, "init", "aa");
        assert_ne!(base, link(1, "init", "aa"));
        assert_ne!(base, link(0, "init2", "aa"));
        assert_ne!(base, link(0, "init", "ab"));
        assert_ne!(link(0, "a|b", "c"), link(0, "a", "b|c"));
    }

    #[test]
    fn chain_depends_on_order_seed_and_links() {
        let (a, b) = (link(0, "a", "1"), link(1, "b", "2"));
        let s = seed("migrations");
        // Two migrations trading places trade ids, and so links.
        let (b_first, a_second) = (link(0, "b", "2"), link(1, "a", "1"));
        assert_ne!(chain(chain(s, a), b), chain(chain(s, b_first), a_second));
        // A sum: the order of folding does not count, the ids do.
        assert_eq!(chain(chain(s, a), b), chain(chain(s, b), a));
        assert_ne!(chain(s, a), chain(seed("Migrations"), a));
        assert_ne!(chain(s, a), chain(s, link(0, "a", "3")));
    }

    #[test]
    fn hex_round_trips() {
        let value = chain(seed("t"), link(0, "a", "b"));
        assert_eq!(parse_hex(&hex(value)), Some(value));
        assert_eq!(parse_hex("edited by hand"), None);
        assert_eq!(parse_hex(&hex(value).to_uppercase()), Some(value));
    }
}
