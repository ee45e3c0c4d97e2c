//! Checksums and the history chain.
//!
//! SipHash-1-3 with a zero key and 128-bit output: a fixed, published
//! algorithm, so a checksum written by one build is read by the next one
//! whatever the compiler version. `migrate-macros` uses the same function for
//! the checksums of Rust bodies.

use siphasher::sip128::{Hasher128, SipHasher13};
use std::fmt::Write as _;
use std::hash::Hasher;

/// SipHash-1-3 (zero key, 128 bits) of `bytes`, as 32 lowercase hex digits.
pub(crate) fn checksum(bytes: &[u8]) -> String {
    let mut hasher = SipHasher13::new_with_keys(0, 0);
    hasher.write(bytes);
    format!("{:032x}", hasher.finish128().as_u128())
}

/// The chain value of a history row: a hash of the previous row's chain and
/// this row's id, name and checksum. The newest row's chain thus stands for
/// the whole history, so "is the database up to date and unmodified?" costs
/// one row read.
pub(crate) fn chain(previous: &str, id: u32, name: &str, checksum_hex: &str) -> String {
    // Streamed into the hasher rather than formatted into a string first:
    // this runs for every migration when a process first builds its plan.
    // The bytes are those of `{len}:{previous}|{id}|{len}:{name}|{checksum}`.
    let mut hasher = HashWriter(SipHasher13::new_with_keys(0, 0));
    let _ = write!(
        hasher,
        "{}:{previous}|{id}|{}:{name}|{checksum_hex}",
        previous.len(),
        name.len()
    );
    format!("{:032x}", hasher.0.finish128().as_u128())
}

/// Lets `write!` feed a hasher. SipHash is a streaming hash: the result
/// does not depend on how the bytes are split between writes.
struct HashWriter(SipHasher13);

impl std::fmt::Write for HashWriter {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        self.0.write(text.as_bytes());
        Ok(())
    }
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
        // migrate-macros pins the same value for the same text: the two
        // crates must agree, or SQL checksums would differ by origin.
        assert_eq!(
            checksum(b"CREATE TABLE a (x)"),
            "0fbbc3abe48864c6a7dd1e0b33f56523"
        );
        // An SQL file's checksum is taken over its text with LF line
        // endings: the macro crate gives this value for this text written
        // with LF or with CRLF line endings…
        assert_eq!(
            checksum(b"CREATE TABLE a (x);\nCREATE TABLE b (y);\n"),
            "beb7ab440afe9aad28508c707131d6a5"
        );
        // …and, for the CRLF file, this one as its former checksum (the
        // first definition hashed the bytes as they were).
        assert_eq!(
            checksum(b"CREATE TABLE a (x);\r\nCREATE TABLE b (y);\r\n"),
            "9154943f88eadbd06051b45c01d19dd8"
        );
    }

    #[test]
    fn streamed_chain_equals_the_hash_of_its_text() {
        let text = format!("{}:{}|{}|{}:{}|{}", 3, "abc", 7, 4, "name", "ff00");
        assert_eq!(chain("abc", 7, "name", "ff00"), checksum(text.as_bytes()));
    }

    #[test]
    fn chain_depends_on_every_part() {
        let base = chain("", 0, "init", "aa");
        assert_ne!(base, chain("x", 0, "init", "aa"));
        assert_ne!(base, chain("", 1, "init", "aa"));
        assert_ne!(base, chain("", 0, "init2", "aa"));
        assert_ne!(base, chain("", 0, "init", "ab"));
        // The length prefixes keep a name from bleeding into the checksum.
        assert_ne!(chain("", 0, "a|b", "c"), chain("", 0, "a", "b|c"));
    }
}
