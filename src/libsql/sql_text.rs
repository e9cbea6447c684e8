//! Reading SQL text before it runs: its first keyword, and whether it is exactly one statement.
//!
//! libsql prepares only the first statement of a text and silently drops the rest: `execute("INSERT
//! …; INSERT …")` answers `Ok(1)` with the second row never stored, and a text with no statement at
//! all fails with SQLite's "not an error". So the statement cache refuses both before it prepares
//! ([`StatementProblem::Empty`], [`StatementProblem::SeveralStatements`]). A leading `;` is an empty
//! statement that SQLite skips, so it is skipped here too: `";COMMIT"` is a `COMMIT`.
//!
//! The scan knows SQLite's quoting (`'…'`, `"…"`, `` `…` ``, `[…]`) and comments (`-- …`, `/* … */`).
//! A `CREATE TRIGGER` body holds `;`-terminated statements of its own: it ends at `; END ;`.

use super::error::StatementProblem;

/// Whether `sql` changes the schema (its first keyword is CREATE, ALTER, DROP or REINDEX).
pub(crate) fn is_schema_change(sql: &str) -> bool {
    let first = first_keyword(sql);
    ["CREATE", "ALTER", "DROP", "REINDEX"]
        .iter()
        .any(|keyword| first.eq_ignore_ascii_case(keyword))
}

/// The first word of `sql`, after whitespace, SQL comments (`-- …` and `/* … */`) and empty
/// statements (`;`).
pub(crate) fn first_keyword(sql: &str) -> &str {
    let rest = skip_filler(sql);
    rest.split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or_default()
}

/// Checks that `sql` holds exactly one statement (a trailing `;` is fine).
///
/// ```text
/// "INSERT INTO t VALUES (1);"        one statement
/// "-- note\n;INSERT INTO t …"        one statement
/// "INSERT …; INSERT …"               SeveralStatements
/// "  -- nothing"                     Empty
/// ```
pub(crate) fn check_one_statement(sql: &str) -> Result<(), StatementProblem> {
    let first = skip_filler(sql);
    if first.is_empty() {
        return Err(StatementProblem::Empty);
    }
    match end_of_first_statement(first) {
        Some(end) if !skip_filler(&first[end..]).is_empty() => {
            Err(StatementProblem::SeveralStatements)
        }
        _ => Ok(()),
    }
}

/// `sql` without its leading whitespace, comments and empty statements (`;`).
fn skip_filler(sql: &str) -> &str {
    let mut rest = sql;
    loop {
        rest = rest.trim_start();
        if let Some(comment) = rest.strip_prefix("--") {
            rest = comment.split_once('\n').map_or("", |(_, after)| after);
        } else if let Some(comment) = rest.strip_prefix("/*") {
            rest = comment.split_once("*/").map_or("", |(_, after)| after);
        } else if let Some(after) = rest.strip_prefix(';') {
            rest = after;
        } else {
            return rest;
        }
    }
}

/// The byte offset just past the `;` that ends the first statement of `sql`, if one does. A
/// `CREATE [TEMP] TRIGGER` ends, as SQLite's `sqlite3_complete` has it, at a `;` that follows an
/// `END` that follows a `;` (its body's statements end with `;`, and none starts with `END`; `end`
/// and `begin` elsewhere may be plain names).
fn end_of_first_statement(sql: &str) -> Option<usize> {
    let mut words = 0;
    let mut trigger = false;
    let mut after_semicolon = false;
    let mut end_after_semicolon = false;
    let tokens = Tokens { sql, at: 0 };
    for token in tokens {
        match token {
            Token::End(at) if !trigger || end_after_semicolon => return Some(at),
            Token::End(_) => {
                after_semicolon = true;
                end_after_semicolon = false;
            }
            Token::Word(word) => {
                let is = |keyword: &str| word.eq_ignore_ascii_case(keyword);
                end_after_semicolon = after_semicolon && is("END");
                after_semicolon = false;
                words += 1;
                match words {
                    1 if !is("CREATE") => words = 3,
                    2 if is("TEMP") || is("TEMPORARY") => words = 1,
                    2 => trigger = is("TRIGGER"),
                    _ => {}
                }
            }
        }
    }
    None
}

/// What the scan sees outside quotes and comments.
enum Token<'a> {
    /// A keyword or unquoted identifier.
    Word(&'a str),
    /// A `;`, with the offset just past it.
    End(usize),
}

/// The words and `;`s of SQL text, skipping quoted runs (`'…'`, `"…"`, `` `…` ``, `[…]`; a doubled
/// quote inside one closes and reopens it, which scans the same) and comments.
struct Tokens<'a> {
    sql: &'a str,
    at: usize,
}

impl<'a> Iterator for Tokens<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        let bytes = self.sql.as_bytes();
        let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80;
        while self.at < bytes.len() {
            let start = self.at;
            let closing: &[u8] = match bytes[start] {
                b';' => {
                    self.at += 1;
                    return Some(Token::End(self.at));
                }
                b if is_word(b) => {
                    while self.at < bytes.len() && is_word(bytes[self.at]) {
                        self.at += 1;
                    }
                    return Some(Token::Word(&self.sql[start..self.at]));
                }
                b'\'' => b"'",
                b'"' => b"\"",
                b'`' => b"`",
                b'[' => b"]",
                b'-' if bytes.get(start + 1) == Some(&b'-') => b"\n",
                b'/' if bytes.get(start + 1) == Some(&b'*') => b"*/",
                _ => {
                    self.at += 1;
                    continue;
                }
            };
            let opened = if closing == b"*/" || closing == b"\n" {
                2
            } else {
                1
            };
            self.at = bytes[start + opened..]
                .windows(closing.len())
                .position(|window| window == closing)
                .map_or(bytes.len(), |at| start + opened + at + closing.len());
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_ddl_by_its_first_keyword() {
        assert!(is_schema_change("  create table t(a)"));
        assert!(is_schema_change("DROP INDEX i"));
        assert!(is_schema_change("alter table t add column b"));
        assert!(is_schema_change(";-- x\n; CREATE TABLE t(a)"));
        assert!(!is_schema_change("SELECT * FROM created"));
        assert!(!is_schema_change("INSERT INTO t VALUES (1)"));
        assert!(!is_schema_change(""));
    }

    #[test]
    fn the_first_keyword_comes_after_comments_and_empty_statements() {
        assert_eq!(first_keyword(";ROLLBACK"), "ROLLBACK");
        assert_eq!(first_keyword("/* x */;COMMIT"), "COMMIT");
        assert_eq!(first_keyword(" ; ;\n-- c\nbegin immediate"), "begin");
        assert_eq!(first_keyword(";;"), "");
    }

    #[test]
    fn one_statement_passes() {
        for sql in [
            "INSERT INTO t VALUES (1)",
            "INSERT INTO t VALUES (1);",
            "INSERT INTO t VALUES (1); -- done\n ;",
            ";;INSERT INTO t VALUES (';')",
            "INSERT INTO \"a;b\" VALUES (1)",
            "INSERT INTO [a;b] VALUES ('it''s; fine')",
            "SELECT `x;y` FROM t /* ; */",
            "SELECT 1 -- trailing; comment",
            "CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO u VALUES (1); END",
            "CREATE TEMP TRIGGER tr AFTER INSERT ON t BEGIN DELETE FROM u; END;",
            "CREATE /* audit */ TRIGGER tr AFTER INSERT ON t BEGIN DELETE FROM u; END",
            "create\n-- audit\ntrigger tr after insert on t begin
                update u set a = case when new.a > 0 then 1 else 2 end; delete from v; end;",
            "CREATE TRIGGER tr AFTER INSERT ON r BEGIN INSERT INTO log VALUES (new.end); END",
            "CREATE TRIGGER tr AFTER INSERT ON r BEGIN UPDATE log SET x = new.end; DELETE FROM log; END;",
            "CREATE TRIGGER tr AFTER INSERT ON r WHEN CASE WHEN new.a THEN 1 END BEGIN SELECT 1; END",
        ] {
            assert_eq!(check_one_statement(sql), Ok(()), "{sql}");
        }
    }

    #[test]
    fn several_statements_or_none_are_refused() {
        for sql in [
            "INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)",
            "INSERT INTO t VALUES ('a;b'); COMMIT",
            "SELECT 1;SELECT 2;",
            "UPDATE t SET a = 1 /* c */; -- c\n DELETE FROM t",
            "CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO u VALUES (1); END; INSERT INTO v \
             VALUES (42)",
            "CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT CASE WHEN 1 THEN 2 END; END; DELETE \
             FROM v",
            "INSERT INTO t VALUES (1); CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END",
            "CREATE TRIGGER tr AFTER INSERT ON r WHEN new.begin > 0 BEGIN SELECT 1; END; DELETE FROM v",
            "CREATE TRIGGER begin AFTER INSERT ON r BEGIN SELECT 1; END; DELETE FROM log",
        ] {
            assert_eq!(
                check_one_statement(sql),
                Err(StatementProblem::SeveralStatements),
                "{sql}"
            );
        }
        for sql in ["", "   ", ";", " ; ; ", "-- only a comment", "/* c */ ;"] {
            assert_eq!(
                check_one_statement(sql),
                Err(StatementProblem::Empty),
                "{sql:?}"
            );
        }
    }
}
