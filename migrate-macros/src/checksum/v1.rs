//! The first definition of a checksum, kept unchanged: databases migrated by
//! earlier releases store these values, and each migration still reports its
//! checksum under this definition (`former_checksums`) when it differs from
//! the current one, so that the runtime can recognise and rewrite those rows.
//!
//! A Rust body is serialised token by token (identifiers, literals as
//! written, punctuation characters, delimiters), so whitespace, comments and
//! line breaks do not count, and neither does the compiler version. Doc
//! comments inside the body are tokens (`#[doc = …]`) and are dropped too.
//! Punctuation spacing is left out on purpose: rustfmt may turn `a+-b` into
//! `a + -b`, which changes the spacing but not the code. An SQL file's
//! checksum is taken over its bytes as they are.
//!
//! Do not change anything here: every value it computes is stored somewhere.

use proc_macro2::{Delimiter, TokenStream, TokenTree};

use super::of_text;

/// The first definition's checksum of a Rust body.
pub fn of_tokens(tokens: &TokenStream) -> String {
    let mut canonical = String::new();
    write_canonical(tokens.clone(), &mut canonical);
    of_text(&canonical)
}

/// The first definition's checksum of an SQL file: its text as it is.
pub fn of_sql(text: &str) -> String {
    of_text(text)
}

/// Appends the serialisation of `tokens` to `out`. The current definition
/// serialises its canonical tokens with this same function.
pub fn write_canonical(tokens: TokenStream, out: &mut String) {
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
    fn known_values_are_stable() {
        // Pinned with the values this definition computed before the current
        // one existed: they are the checksums stored in existing databases.
        assert_eq!(sum("{ Ok(()) }"), "e8ae870249e1161ec42234a7c227d649");
        assert_eq!(
            sum("{ tx.execute_batch(\"CREATE TABLE a (x)\") }"),
            "7dbff4bd6afa07fee10f2124afd83f5b"
        );
        assert_eq!(
            sum("{ tx.execute(\"INSERT INTO t (v) VALUES (?1)\", [1],)?; Ok(()) }"),
            "f593e680ee99c82ab42962443d238928"
        );
        assert_eq!(
            sum("{ match n { 0 => { f() } _ => g(), } }"),
            "749f9cc521935e992e3b1329a5fe798b"
        );
        assert_eq!(
            of_sql("CREATE TABLE a (x)"),
            "0fbbc3abe48864c6a7dd1e0b33f56523"
        );
        assert_eq!(
            of_sql("CREATE TABLE a (x);\r\nCREATE TABLE b (y);\r\n"),
            "9154943f88eadbd06051b45c01d19dd8"
        );
        assert_eq!(
            of_sql("CREATE TABLE a (x);\nCREATE TABLE b (y);\n"),
            "beb7ab440afe9aad28508c707131d6a5"
        );
    }
}
