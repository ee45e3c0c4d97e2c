//! Just enough of SQLite's lexical structure to find transaction-control
//! statements in a migration file: strings, quoted identifiers, comments,
//! statement ends, and trigger bodies (whose `;` do not end the statement).

/// A statement that would end the runner's transaction: `BEGIN`, `COMMIT`,
/// `END` or `ROLLBACK` (but not `ROLLBACK TO`, which is a savepoint's).
pub struct TransactionStatement {
    pub keyword: String,
    pub line: usize,
}

/// Every transaction-control statement in `sql`, with its 1-based line.
pub fn transaction_statements(sql: &str) -> Vec<TransactionStatement> {
    let mut found = Vec::new();
    let mut statement = Statement::default();
    let chars: Vec<char> = sql.chars().collect();
    let mut line = 1;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\n' => {
                line += 1;
                i += 1;
            }
            '-' if chars.get(i + 1) == Some(&'-') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                i += 2;
                while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                    if chars[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
                i += 2;
            }
            '\'' | '"' | '`' | '[' => {
                let close = if c == '[' { ']' } else { c };
                i += 1;
                while i < chars.len() {
                    if chars[i] == '\n' {
                        line += 1;
                    }
                    if chars[i] == close {
                        // A doubled quote is an escaped quote, not the end.
                        if close != ']' && chars.get(i + 1) == Some(&close) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
                statement.other();
            }
            ';' => {
                if let Some(keyword) = statement.pending_rollback.take() {
                    found.push(TransactionStatement { keyword, line });
                }
                if !statement.in_trigger_body() {
                    statement = Statement::default();
                }
                i += 1;
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
                {
                    i += 1;
                }
                let word: String = chars[start..i]
                    .iter()
                    .collect::<String>()
                    .to_ascii_uppercase();
                if let Some(keyword) = statement.word(&word) {
                    found.push(TransactionStatement { keyword, line });
                }
            }
            _ => {
                if !c.is_whitespace() {
                    statement.other();
                }
                i += 1;
            }
        }
    }
    if let Some(keyword) = statement.pending_rollback.take() {
        found.push(TransactionStatement { keyword, line });
    }
    found
}

/// What is known of the statement being read.
#[derive(Default)]
struct Statement {
    words: Vec<String>,
    /// A `ROLLBACK` whose next word decides (`TO` makes it a savepoint's).
    pending_rollback: Option<String>,
    trigger: bool,
    /// Depth of BEGIN … END (trigger body) and CASE … END inside it.
    depth: usize,
}

impl Statement {
    fn in_trigger_body(&self) -> bool {
        self.trigger && self.depth > 0
    }

    fn other(&mut self) {
        // Punctuation or a literal: the statement has begun, so a later
        // BEGIN is not its first word.
        if self.words.is_empty() {
            self.words.push(String::new());
        }
    }

    /// Feeds one word; returns a transaction keyword when the statement is one.
    fn word(&mut self, word: &str) -> Option<String> {
        let first = self.words.is_empty();
        self.words.push(word.to_owned());
        if let Some(rollback) = self.pending_rollback.take() {
            // ROLLBACK [TRANSACTION] TO … is a savepoint operation.
            if word == "TO" {
                return None;
            }
            if word == "TRANSACTION" {
                self.pending_rollback = Some(rollback);
                return None;
            }
            return Some(rollback);
        }
        if first {
            return match word {
                "BEGIN" | "COMMIT" | "END" => Some(word.to_owned()),
                "ROLLBACK" => {
                    self.pending_rollback = Some(word.to_owned());
                    None
                }
                _ => None,
            };
        }
        if self.words[0] == "CREATE" && word == "TRIGGER" && self.words.len() <= 4 {
            self.trigger = true;
        }
        if self.trigger {
            match word {
                "BEGIN" | "CASE" => self.depth += 1,
                "END" => self.depth = self.depth.saturating_sub(1),
                _ => {}
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keywords(sql: &str) -> Vec<(String, usize)> {
        transaction_statements(sql)
            .into_iter()
            .map(|s| (s.keyword, s.line))
            .collect()
    }

    #[test]
    fn finds_transaction_control() {
        let sql = "BEGIN TRANSACTION;\nCREATE TABLE a (x);\nCOMMIT;\n";
        assert_eq!(
            keywords(sql),
            vec![("BEGIN".into(), 1), ("COMMIT".into(), 3)]
        );
        assert_eq!(keywords("create table a(x); end;"), vec![("END".into(), 1)]);
        assert_eq!(keywords("rollback;"), vec![("ROLLBACK".into(), 1)]);
    }

    #[test]
    fn allows_savepoints() {
        assert!(keywords(
            "SAVEPOINT s; ROLLBACK TO s; ROLLBACK TRANSACTION TO SAVEPOINT s; RELEASE s;"
        )
        .is_empty());
    }

    #[test]
    fn ignores_strings_comments_and_trigger_bodies() {
        let sql = "
            -- BEGIN; in a comment
            /* COMMIT; in a block comment */
            INSERT INTO t (v) VALUES ('a; BEGIN; b'), (\"COMMIT\");
            CREATE TRIGGER trg AFTER INSERT ON t BEGIN
                UPDATE t SET v = CASE WHEN v = 'x' THEN 'y' ELSE v END;
                DELETE FROM u;
            END;
            CREATE TABLE [begin] (x);
        ";
        assert!(keywords(sql).is_empty(), "{:?}", keywords(sql));
    }

    #[test]
    fn statement_after_trigger_is_seen() {
        let sql = "CREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1; END;\nCOMMIT;";
        assert_eq!(keywords(sql), vec![("COMMIT".into(), 2)]);
    }
}
