//! Reading SQL text before it runs: its first keyword, and whether it is exactly one statement.
//!
//! libsql prepares only the first statement of a text and silently drops the rest: `execute("INSERT
//! …; INSERT …")` answers `Ok(1)` with the second row never stored, and a text with no statement at
//! all fails with SQLite's "not an error". So the statement cache refuses both before it prepares
//! ([`StatementProblem::Empty`], [`StatementProblem::SeveralStatements`]). A leading `;` is an empty
//! statement that SQLite skips, so it is skipped here too: `";COMMIT"` is a `COMMIT`.
//!
//! The scan knows SQLite's quoting (`'…'`, `"…"`, `` `…` ``, `[…]`) and comments (`-- …`, `/* … */`).
//! A `CREATE TRIGGER` body holds `;`-terminated statements of its own, so such a text is not counted.

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
    let rest = skip_filler(sql, true);
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
    let first = skip_filler(sql, true);
    if first.is_empty() {
        return Err(StatementProblem::Empty);
    }
    if is_create_trigger(first) {
        return Ok(());
    }
    match top_level_semicolon(first) {
        Some(end) if !skip_filler(&first[end..], true).is_empty() => {
            Err(StatementProblem::SeveralStatements)
        }
        _ => Ok(()),
    }
}

/// `sql` without its leading whitespace and comments (and `;`s, if `semicolons`).
fn skip_filler(sql: &str, semicolons: bool) -> &str {
    let mut rest = sql;
    loop {
        rest = rest.trim_start();
        if let Some(comment) = rest.strip_prefix("--") {
            rest = comment.split_once('\n').map_or("", |(_, after)| after);
        } else if let Some(comment) = rest.strip_prefix("/*") {
            rest = comment.split_once("*/").map_or("", |(_, after)| after);
        } else if let Some(after) = rest.strip_prefix(';').filter(|_| semicolons) {
            rest = after;
        } else {
            return rest;
        }
    }
}

/// Whether the statement that `sql` starts with is `CREATE [TEMP|TEMPORARY] TRIGGER`.
fn is_create_trigger(sql: &str) -> bool {
    let mut words = sql
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|word| !word.is_empty());
    if !words
        .next()
        .is_some_and(|w| w.eq_ignore_ascii_case("CREATE"))
    {
        return false;
    }
    let mut next = words.next();
    if next.is_some_and(|w| w.eq_ignore_ascii_case("TEMP") || w.eq_ignore_ascii_case("TEMPORARY")) {
        next = words.next();
    }
    next.is_some_and(|w| w.eq_ignore_ascii_case("TRIGGER"))
}

/// The byte offset just past the first `;` outside quotes and comments, if any.
fn top_level_semicolon(sql: &str) -> Option<usize> {
    let bytes = sql.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let closing = match bytes[i] {
            b';' => return Some(i + 1),
            b'\'' => Some(&b"'"[..]),
            b'"' => Some(&b"\""[..]),
            b'`' => Some(&b"`"[..]),
            b'[' => Some(&b"]"[..]),
            b'-' if bytes.get(i + 1) == Some(&b'-') => Some(&b"\n"[..]),
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 1;
                Some(&b"*/"[..])
            }
            _ => None,
        };
        i += 1;
        if let Some(closing) = closing {
            // A doubled quote inside a quoted run is an escaped quote: closing and reopening at once
            // amounts to the same scan.
            match find(&bytes[i..], closing) {
                Some(at) => i += at + closing.len(),
                None => return None,
            }
        }
    }
    None
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
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
