//! The checksum of a migration's body, computed from its tokens.
//!
//! The body is serialised token by token into a canonical form (identifiers,
//! literals as written, punctuation characters, delimiters), so whitespace,
//! comments and line breaks do not count, and neither does the compiler
//! version. Doc comments inside the body are tokens (`#[doc = …]`) and are
//! dropped too. Punctuation spacing is left out on purpose: rustfmt may turn
//! `a+-b` into `a + -b`, which changes the spacing but not the code.
//!
//! The hash is SipHash-1-3 with a zero key and 128-bit output, a fixed,
//! published algorithm (unlike `std`'s `DefaultHasher`, which may change
//! between Rust releases). `migrate-core` uses the same function at run time.

use proc_macro2::{Delimiter, TokenStream, TokenTree};
use siphasher::sip128::{Hasher128, SipHasher13};
use std::hash::Hasher;

/// The checksum of a token stream, as 32 lowercase hex digits.
pub fn of_tokens(tokens: &TokenStream) -> String {
    let mut canonical = String::new();
    write_canonical(tokens.clone(), &mut canonical);
    of_text(&canonical)
}

/// SipHash-1-3 (zero key, 128 bits) of `text`, as 32 lowercase hex digits.
pub fn of_text(text: &str) -> String {
    let mut hasher = SipHasher13::new_with_keys(0, 0);
    hasher.write(text.as_bytes());
    format!("{:032x}", hasher.finish128().as_u128())
}

fn write_canonical(tokens: TokenStream, out: &mut String) {
    let mut iter = tokens.into_iter().peekable();
    while let Some(tree) = iter.next() {
        match tree {
            TokenTree::Punct(p) if p.as_char() == '#' => {
                if let Some(TokenTree::Group(g)) = iter.peek() {
                    if g.delimiter() == Delimiter::Bracket && is_doc_attribute(&g.stream()) {
                        iter.next();
                        continue;
                    }
                }
                out.push_str("#\u{1}");
            }
            TokenTree::Punct(p) => {
                out.push(p.as_char());
                out.push('\u{1}');
            }
            TokenTree::Ident(i) => {
                out.push_str(&i.to_string());
                out.push('\u{1}');
            }
            TokenTree::Literal(l) => {
                out.push_str(&l.to_string());
                out.push('\u{1}');
            }
            TokenTree::Group(g) => {
                let (open, close) = match g.delimiter() {
                    Delimiter::Parenthesis => ('(', ')'),
                    Delimiter::Brace => ('{', '}'),
                    Delimiter::Bracket => ('[', ']'),
                    Delimiter::None => ('\u{2}', '\u{3}'),
                };
                out.push(open);
                write_canonical(g.stream(), out);
                out.push(close);
            }
        }
    }
}

fn is_doc_attribute(attr: &TokenStream) -> bool {
    matches!(attr.clone().into_iter().next(), Some(TokenTree::Ident(i)) if i == "doc")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn sum(src: &str) -> String {
        of_tokens(&TokenStream::from_str(src).expect("test source parses"))
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
        // unnoticed.
        assert_eq!(sum("{ Ok(()) }"), "e8ae870249e1161ec42234a7c227d649");
        assert_eq!(
            of_text("CREATE TABLE a (x)"),
            "0fbbc3abe48864c6a7dd1e0b33f56523"
        );
    }
}
