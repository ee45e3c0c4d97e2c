//! Text from the database, printed on a terminal, must not drive it: a
//! migration's name or a tracking row written by anyone can hold escape
//! sequences (a window title set, the screen cleared, colours faked) or
//! Unicode's bidirectional overrides (text shown in another order than it
//! is). Every line the CLI writes as text goes through [`escape_controls`],
//! which writes such characters as `\u{…}` and keeps the CLI's own colours
//! (exactly the sequences `Paint` writes; round 18: any SGR sequence was
//! kept, so text could be concealed, `ESC[8m`), which `anstream` then
//! keeps, strips or translates.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::Write;

/// `line` with every control character but line feed and tab, and every
/// bidirectional override, written as `\u{…}`; SGR sequences kept.
pub(crate) fn escape_controls(line: &str) -> Cow<'_, str> {
    if !line.chars().any(|c| c == '\x1b' || escaped(c)) {
        return Cow::Borrowed(line);
    }
    let ours = super::render::own_sequences();
    let mut out = String::with_capacity(line.len() + 16);
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        if let Some(length) = ours
            .iter()
            .find(|sequence| rest.starts_with(sequence.as_str()))
            .map(String::len)
        {
            out.push_str(&rest[..length]);
            rest = &rest[length..];
            continue;
        }
        if c == '\x1b' || escaped(c) {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    Cow::Owned(out)
}

fn escaped(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t') || reorders(c)
}

/// Unicode's characters that show text in another order than it is: the
/// bidirectional embeddings, overrides and isolates, and the marks.
pub(crate) fn reorders(c: char) -> bool {
    matches!(
        c,
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{61c}'
    )
}

/// A writer that passes each line through [`escape_controls`] (a line is
/// written when its line feed comes, the rest at `flush` and on drop).
pub(crate) struct ControlsEscaped<'w> {
    inner: &'w mut dyn Write,
    line: Vec<u8>,
}

impl<'w> ControlsEscaped<'w> {
    pub fn new(inner: &'w mut dyn Write) -> Self {
        ControlsEscaped {
            inner,
            line: Vec::new(),
        }
    }

    fn write_line(&mut self, end: usize) -> std::io::Result<()> {
        let line: Vec<u8> = self.line.drain(..end).collect();
        let text = String::from_utf8_lossy(&line);
        self.inner.write_all(escape_controls(&text).as_bytes())
    }
}

impl Write for ControlsEscaped<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.line.extend_from_slice(buf);
        while let Some(end) = self.line.iter().position(|&b| b == b'\n') {
            self.write_line(end + 1)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.line.is_empty() {
            self.write_line(self.line.len())?;
        }
        self.inner.flush()
    }
}

impl Drop for ControlsEscaped<'_> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_shown_and_colours_kept() {
        assert_eq!(escape_controls("plain name"), "plain name");
        assert_eq!(
            escape_controls("cats\x1b]0;PWNED\x07\x1b[2J"),
            "cats\\u{1b}]0;PWNED\\u{7}\\u{1b}[2J"
        );
        assert_eq!(
            escape_controls("\x1b[32mapplied\x1b[0m a\rb\u{202e}c\u{9b}d\te\n"),
            "\x1b[32mapplied\x1b[0m a\\u{d}b\\u{202e}c\\u{9b}d\te\n"
        );
        assert_eq!(escape_controls("\x1b["), "\\u{1b}[");
        // Only the CLI's own colours: no concealing, blinking, or others.
        assert_eq!(
            escape_controls("a\x1b[8mhidden\x1b[5m\x1b[32m"),
            "a\\u{1b}[8mhidden\\u{1b}[5m\x1b[32m"
        );
    }

    #[test]
    fn lines_split_across_writes_are_escaped_whole() -> std::io::Result<()> {
        let mut out = Vec::new();
        {
            let mut writer = ControlsEscaped::new(&mut out);
            writer.write_all(b"\x1b[3")?;
            writer.write_all(b"1mred\x1b[0m \x1b")?;
            writer.write_all(b"]0;x\x07\nnext")?;
        }
        assert_eq!(
            String::from_utf8_lossy(&out),
            "\x1b[31mred\x1b[0m \\u{1b}]0;x\\u{7}\nnext"
        );
        Ok(())
    }
}
