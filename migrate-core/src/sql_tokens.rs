//! SQL split into tokens and statements, as SQLite's own tokenizer would:
//! comments and white space dropped, quoted names unquoted, literals kept as
//! written, each token with its line. The schema files' parser reads
//! `CREATE` statements with it; a libSQL server's step is checked with it
//! before it is sent (see `runner::server_sql`).

/// One SQL token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    /// A keyword, a bare identifier or a number, as written.
    Word(String),
    /// A quoted identifier (`"…"`, `[…]`, `` `…` ``): the name it stands for.
    Ident(String),
    /// A string or blob literal, as written, quotes included.
    Literal(String),
    /// Punctuation or an operator.
    Punct(String),
}

impl Token {
    pub(crate) fn is_word(&self, word: &str) -> bool {
        matches!(self, Token::Word(w) if w.eq_ignore_ascii_case(word))
    }

    pub(crate) fn is_punct(&self, punct: &str) -> bool {
        matches!(self, Token::Punct(p) if p == punct)
    }

    /// The name a word or identifier token stands for.
    pub(crate) fn name(&self) -> Option<&str> {
        match self {
            Token::Word(w) | Token::Ident(w) => Some(w),
            _ => None,
        }
    }

    /// The name this token gives where SQLite's grammar expects the name of
    /// a table, an index or a trigger: a word, an identifier, or a string
    /// literal, which SQLite takes there as a name (`DELETE FROM 'x'`).
    #[cfg(feature = "libsql")]
    pub(crate) fn object_name(&self) -> Option<std::borrow::Cow<'_, str>> {
        match self {
            Token::Word(w) | Token::Ident(w) => Some(std::borrow::Cow::Borrowed(w)),
            Token::Literal(text) => {
                let inner = text.strip_prefix('\'')?.strip_suffix('\'')?;
                Some(std::borrow::Cow::Owned(inner.replace("''", "'")))
            }
            Token::Punct(_) => None,
        }
    }
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '$' || !c.is_ascii()
}

/// Splits SQL into tokens, each with its line (from 1); comments and white
/// space are dropped. Never fails: an unterminated literal, identifier or
/// comment runs to the end of the text.
pub(crate) fn tokenize(sql: &str) -> Vec<(Token, u32)> {
    let chars: Vec<char> = sql.chars().collect();
    let mut tokens = Vec::new();
    let mut line = 1u32;
    let mut i = 0;
    // Consumes chars[i..] up to and including `close` (a doubled `close`
    // stands for one), returning what was between.
    let quoted = |i: &mut usize, line: &mut u32, close: char| {
        let mut text = String::new();
        while *i < chars.len() {
            let c = chars[*i];
            *i += 1;
            if c == '\n' {
                *line += 1;
            }
            if c == close {
                if chars.get(*i) == Some(&close) && close != ']' {
                    *i += 1;
                } else {
                    return text;
                }
            }
            text.push(c);
        }
        text
    };
    while i < chars.len() {
        let c = chars[i];
        let start_line = line;
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '-' && chars.get(i + 1) == Some(&'-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                if chars[i] == '\n' {
                    line += 1;
                }
                i += 1;
            }
            i = (i + 2).min(chars.len());
        } else if c == '\'' {
            i += 1;
            let text = quoted(&mut i, &mut line, '\'');
            tokens.push((
                Token::Literal(format!("'{}'", text.replace('\'', "''"))),
                start_line,
            ));
        } else if c == '"' || c == '`' || c == '[' {
            i += 1;
            let close = if c == '[' { ']' } else { c };
            let name = quoted(&mut i, &mut line, close);
            tokens.push((Token::Ident(name), start_line));
        } else if is_word_char(c)
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let start = i;
            let number = c.is_ascii_digit() || c == '.';
            while i < chars.len() && (is_word_char(chars[i]) || (number && chars[i] == '.')) {
                // A number's exponent sign: 1e-3.
                if number
                    && matches!(chars[i], 'e' | 'E')
                    && matches!(chars.get(i + 1), Some('+' | '-'))
                {
                    i += 1;
                }
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            if (word == "x" || word == "X") && chars.get(i) == Some(&'\'') {
                i += 1;
                let hex = quoted(&mut i, &mut line, '\'');
                tokens.push((Token::Literal(format!("{word}'{hex}'")), start_line));
            } else {
                tokens.push((Token::Word(word), start_line));
            }
        } else {
            const OPERATORS: [&str; 10] =
                ["->>", "->", "||", "<=", ">=", "<>", "!=", "==", "<<", ">>"];
            let rest: String = chars[i..(i + 3).min(chars.len())].iter().collect();
            let op = OPERATORS
                .iter()
                .find(|op| rest.starts_with(**op))
                .map_or_else(|| c.to_string(), |op| (*op).to_owned());
            i += op.chars().count();
            tokens.push((Token::Punct(op), start_line));
        }
    }
    tokens
}

/// Splits tokens into statements at `;`; a trigger's body
/// statements stay inside it, up to its `END` (a `CASE … END` inside is
/// told apart). Each statement comes with the line it starts on.
pub(crate) fn statements(tokens: Vec<(Token, u32)>) -> Vec<(u32, Vec<Token>)> {
    let mut statements = Vec::new();
    let mut current: Vec<Token> = Vec::new();
    let mut line = 0;
    let mut case_depth = 0usize;
    let mut trigger_ended = false;
    for (token, token_line) in tokens {
        if current.is_empty() {
            if token.is_punct(";") {
                continue;
            }
            line = token_line;
            case_depth = 0;
            trigger_ended = false;
        }
        // `CREATE [TEMP] TRIGGER`: not `DROP TRIGGER`, which has no body,
        // nor `CREATE TABLE trigger`, a table of that name.
        let is_trigger = current.first().is_some_and(|t| t.is_word("create"))
            && match current.get(1) {
                Some(t) if t.is_word("temp") || t.is_word("temporary") => {
                    current.get(2).is_some_and(|t| t.is_word("trigger"))
                }
                Some(t) => t.is_word("trigger"),
                None => false,
            };
        if token.is_punct(";") && (!is_trigger || trigger_ended) {
            statements.push((line, std::mem::take(&mut current)));
            continue;
        }
        if is_trigger {
            if token.is_word("case") {
                case_depth += 1;
            } else if token.is_word("end") {
                if case_depth > 0 {
                    case_depth -= 1;
                } else {
                    trigger_ended = true;
                }
            }
        }
        current.push(token);
    }
    if !current.is_empty() {
        statements.push((line, current));
    }
    statements
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(sql: &str) -> Vec<u32> {
        statements(tokenize(sql))
            .into_iter()
            .map(|(line, _)| line)
            .collect()
    }

    #[test]
    fn a_triggers_body_stays_in_its_statement_and_a_drop_trigger_ends_at_its_semicolon() {
        let sql = "CREATE TEMP TRIGGER t AFTER INSERT ON a BEGIN\n\
                   UPDATE a SET x = CASE WHEN 1 THEN 2 END;\n\
                   DELETE FROM b;\n\
                   END;\n\
                   DROP TRIGGER IF EXISTS old;\n\
                   CREATE INDEX i ON a (x);\n\
                   drop trigger other; select 1;\n\
                   CREATE TABLE trigger (x);\n\
                   CREATE INDEX i2 ON trigger (x);\n\
                   CREATE TEMPORARY TRIGGER t2 AFTER DELETE ON a BEGIN SELECT 1; END;";
        assert_eq!(split(sql), vec![1, 5, 6, 7, 7, 8, 9, 10]);
    }
}
