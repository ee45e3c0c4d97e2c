//! How the CLI writes: text in colour (styles from `anstyle`, written as
//! ANSI escape codes and left to the output stream, an `anstream`
//! `AutoStream`, to keep, strip or translate for a Windows console), and
//! JSON documents, written by hand: the runtime crate has no serde.

use std::fmt::Write as _;

use anstyle::{AnsiColor, Style};

/// Whether to write styles, and the styles the CLI uses.
#[derive(Clone, Copy)]
pub(crate) struct Paint(pub bool);

const GREEN: Style = AnsiColor::Green.on_default();
const YELLOW: Style = AnsiColor::Yellow.on_default();
const RED: Style = AnsiColor::Red.on_default();

/// The escape sequences `Paint` writes: each style's start and its end.
pub(crate) fn own_sequences() -> [String; 4] {
    [
        GREEN.render().to_string(),
        YELLOW.render().to_string(),
        RED.render().to_string(),
        RED.render_reset().to_string(),
    ]
}

impl Paint {
    fn wrap(self, style: Style, text: &str) -> String {
        if self.0 {
            format!("{style}{text}{style:#}")
        } else {
            text.to_owned()
        }
    }
    pub fn green(self, text: &str) -> String {
        self.wrap(GREEN, text)
    }
    pub fn yellow(self, text: &str) -> String {
        self.wrap(YELLOW, text)
    }
    pub fn red(self, text: &str) -> String {
        self.wrap(RED, text)
    }
}

/// A JSON value, built and then written in one piece.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    Int(i64),
    /// Milliseconds and the like: written with three decimals.
    Float(f64),
    Str(String),
    Array(Vec<Json>),
    Object(Vec<(&'static str, Json)>),
}

impl Json {
    pub fn str(text: impl Into<String>) -> Json {
        Json::Str(text.into())
    }

    pub fn opt_str(text: Option<impl Into<String>>) -> Json {
        text.map_or(Json::Null, |t| Json::Str(t.into()))
    }

    pub fn opt_int(value: Option<u32>) -> Json {
        value.map_or(Json::Null, |v| Json::Int(v.into()))
    }

    /// One line of compact JSON.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Int(i) => {
                let _ = write!(out, "{i}");
            }
            // JSON has no NaN or infinity: a duration never is one, but
            // the writer must not produce invalid JSON whatever it gets.
            Json::Float(f) if f.is_finite() => {
                let _ = write!(out, "{f:.3}");
            }
            Json::Float(_) => out.push_str("null"),
            Json::Str(s) => escape(s, out),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Json::Object(fields) => {
                out.push('{');
                for (i, (key, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    escape(key, out);
                    out.push(':');
                    value.write(out);
                }
                out.push('}');
            }
        }
    }
}

/// `text` as a JSON string literal (RFC 8259): quotes, backslashes and
/// control characters escaped (C1 and DEL too, and the bidirectional
/// overrides: a document shown on a terminal must not drive it, round 18),
/// everything else (any Unicode) as is.
pub(crate) fn escape(text: &str, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if c.is_control() || super::controls::reorders(c) => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(text: &str) -> String {
        let mut out = String::new();
        escape(text, &mut out);
        out
    }

    #[test]
    fn quotes_backslashes_and_control_characters_are_escaped() {
        assert_eq!(escaped(r#"say "hi" \o/"#), r#""say \"hi\" \\o/""#);
        assert_eq!(escaped("a\nb\r\tc"), r#""a\nb\r\tc""#);
        assert_eq!(
            escaped("\u{0}\u{1}\u{8}\u{c}\u{1f}"),
            r#""\u0000\u0001\b\f\u001f""#
        );
        // DEL, C1 and the bidirectional overrides are allowed as is in a
        // JSON string, but would drive a terminal showing the document.
        assert_eq!(escaped("\u{7f}\u{9b}\u{202e}"), r#""\u007f\u009b\u202e""#);
    }

    #[test]
    fn unicode_is_kept_as_is() {
        assert_eq!(escaped("café ☕ 𝄞 \u{2028}"), "\"café ☕ 𝄞 \u{2028}\"");
        assert_eq!(escaped(""), "\"\"");
    }

    #[test]
    fn documents_are_compact_and_well_formed() {
        let doc = Json::Object(vec![
            ("id", Json::Int(7)),
            ("name", Json::str("a\"b")),
            ("ok", Json::Bool(true)),
            ("ms", Json::Float(1.23456)),
            ("nan", Json::Float(f64::NAN)),
            ("none", Json::Null),
            ("list", Json::Array(vec![Json::Int(1), Json::Array(vec![])])),
            ("empty", Json::Object(vec![])),
        ]);
        assert_eq!(
            doc.render(),
            r#"{"id":7,"name":"a\"b","ok":true,"ms":1.235,"nan":null,"none":null,"list":[1,[]],"empty":{}}"#
        );
    }

    #[test]
    fn styles_are_written_only_when_asked() {
        assert_eq!(Paint(false).red("x"), "x");
        assert_eq!(Paint(true).red("x"), "\x1b[31mx\x1b[0m");
        assert_eq!(Paint(true).green("x"), "\x1b[32mx\x1b[0m");
    }
}
