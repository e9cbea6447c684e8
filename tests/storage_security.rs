//! URL and token checks: the older crate's 14 security tests as behaviour, loopback-only plain HTTP,
//! and a token that never leaks.
#![cfg(feature = "libsql")]

use std::path::PathBuf;

use memory_storage_turso::storage::{
    AuthToken, DatabaseTarget, SecurityError, StorageError, MAX_URL_LEN,
};
use proptest::prelude::*;

const TOKEN: &str = "tok_9f8e7d6c5b4a-SECRET";

fn parse(url: &str) -> Result<DatabaseTarget, SecurityError> {
    DatabaseTarget::parse(url, TOKEN)
}

fn remote(url: &str) -> DatabaseTarget {
    DatabaseTarget::Remote {
        url: url.to_owned(),
        token: AuthToken::new(TOKEN),
    }
}

// The older crate's 14 tests, 1-6: every other scheme is refused, with a message that says why and
// what to use instead.

#[test]
fn plain_http_to_a_remote_host_is_a_security_error() {
    let error = parse("http://bad.com").unwrap_err();
    assert_eq!(
        error,
        SecurityError::InsecureTransport {
            host: "bad.com".into()
        }
    );
    let message = error.to_string();
    assert!(message.contains("unencrypted"), "{message}");
    assert!(message.contains("https://bad.com"), "{message}");
    assert!(matches!(
        StorageError::from(error),
        StorageError::Security(_)
    ));
}

#[test]
fn ftp_is_refused() {
    assert_unsupported("ftp://files.example.com/db", "ftp");
}

#[test]
fn websocket_is_refused() {
    assert_unsupported("ws://db.example.com", "ws");
    assert_unsupported("wss://db.example.com", "wss");
}

#[test]
fn postgresql_is_refused() {
    assert_unsupported("postgresql://user@db.example.com/app", "postgresql");
}

#[test]
fn mysql_is_refused() {
    assert_unsupported("mysql://db.example.com/app", "mysql");
}

#[test]
fn upper_case_libsql_is_refused_with_a_hint() {
    let error = parse("LIBSQL://my-db.turso.io").unwrap_err();
    assert_eq!(
        error,
        SecurityError::UnsupportedScheme {
            scheme: "LIBSQL".into()
        }
    );
    assert!(
        error.to_string().contains("write libsql: instead"),
        "{error}"
    );
}

fn assert_unsupported(url: &str, scheme: &str) {
    let error = parse(url).unwrap_err();
    assert_eq!(
        error,
        SecurityError::UnsupportedScheme {
            scheme: scheme.into()
        },
        "{url}"
    );
    let message = error.to_string();
    assert!(message.contains("not supported"), "{message}");
    assert!(message.contains("libsql://"), "{message}");
    assert!(message.contains("file:PATH"), "{message}");
}

// 7-9: blank tokens are refused for remote databases.

#[test]
fn an_empty_token_is_refused() {
    let error = DatabaseTarget::parse("libsql://my-db.turso.io", "").unwrap_err();
    assert_eq!(error, SecurityError::BlankToken);
    assert!(error.to_string().contains("auth token"), "{error}");
}

#[test]
fn a_token_of_spaces_is_refused() {
    assert_eq!(
        DatabaseTarget::parse("libsql://my-db.turso.io", "   "),
        Err(SecurityError::BlankToken)
    );
}

#[test]
fn a_token_of_tabs_and_newlines_is_refused() {
    assert_eq!(
        DatabaseTarget::parse("https://my-db.turso.io", "\t\t"),
        Err(SecurityError::BlankToken)
    );
    assert_eq!(
        DatabaseTarget::parse("https://my-db.turso.io", " \t\n "),
        Err(SecurityError::BlankToken)
    );
}

#[test]
fn a_file_path_that_is_blank_padded_or_a_second_uri_is_refused() {
    for url in ["file:   ", "file: "] {
        assert_eq!(parse(url), Err(SecurityError::EmptyPath), "{url:?}");
    }
    for url in ["file: x.db", "file:x.db ", "file:file:y.db"] {
        let error = parse(url).unwrap_err();
        assert!(
            matches!(error, SecurityError::MalformedUrl { .. }),
            "{url:?}: {error:?}"
        );
        assert!(error.to_string().contains("file:"), "{error}");
    }
}

// 10-14: local files, memory, and libsql:// with a token pass.

#[test]
fn a_relative_file_path_passes() {
    assert_eq!(
        parse("file:test.db"),
        Ok(DatabaseTarget::Local(PathBuf::from("test.db")))
    );
}

#[test]
fn a_dot_relative_file_path_passes() {
    assert_eq!(
        parse("file:./test.db"),
        Ok(DatabaseTarget::Local(PathBuf::from("./test.db")))
    );
}

#[test]
fn an_absolute_file_path_passes() {
    assert_eq!(
        parse("file:/tmp/x.db"),
        Ok(DatabaseTarget::Local(PathBuf::from("/tmp/x.db")))
    );
}

#[test]
fn memory_passes() {
    assert_eq!(parse(":memory:"), Ok(DatabaseTarget::Memory));
}

#[test]
fn libsql_with_a_token_passes() {
    assert_eq!(parse("libsql://host"), Ok(remote("libsql://host")));
    assert_eq!(
        parse("libsql://my-db-org.turso.io"),
        Ok(remote("libsql://my-db-org.turso.io"))
    );
}

// Beyond the older crate.

#[test]
fn local_targets_need_no_token() {
    assert_eq!(
        DatabaseTarget::parse("file:test.db", ""),
        Ok(DatabaseTarget::Local(PathBuf::from("test.db")))
    );
    assert_eq!(
        DatabaseTarget::parse(":memory:", "  "),
        Ok(DatabaseTarget::Memory)
    );
}

#[test]
fn other_local_forms() {
    assert_eq!(
        parse("file:///var/lib/memory.db"),
        Ok(DatabaseTarget::Local(PathBuf::from("/var/lib/memory.db")))
    );
    assert_eq!(
        parse("file://localhost/var/lib/memory.db"),
        Ok(DatabaseTarget::Local(PathBuf::from("/var/lib/memory.db")))
    );
    assert_eq!(
        parse("file:data dir/memory.db"),
        Ok(DatabaseTarget::Local(PathBuf::from("data dir/memory.db")))
    );
    assert_eq!(parse("file::memory:"), Ok(DatabaseTarget::Memory));
    assert_eq!(parse("file:"), Err(SecurityError::EmptyPath));
    assert!(matches!(
        parse("file://server/share/x.db"),
        Err(SecurityError::MalformedUrl { .. })
    ));
    assert!(matches!(
        parse("file:test.db?mode=ro"),
        Err(SecurityError::MalformedUrl { .. })
    ));
}

#[test]
fn https_with_a_token_passes() {
    for url in [
        "https://my-db.turso.io",
        "https://my-db.turso.io:443/",
        "libsql://127.0.0.1:8080",
        "https://[2001:db8::1]:8443/v2",
        "libsql://db.example.com/?tls=1",
    ] {
        assert_eq!(parse(url), Ok(remote(url)), "{url}");
    }
}

#[test]
fn plain_http_to_loopback_passes() {
    for url in [
        "http://127.0.0.1:8080",
        "http://127.0.0.1",
        "http://127.1.2.3:8080/",
        "http://localhost:8080",
        "http://LOCALHOST:8080",
        "http://[::1]:8080",
        "http://[::1]",
    ] {
        assert_eq!(parse(url), Ok(remote(url)), "{url}");
    }
}

#[test]
fn plain_http_to_look_alike_hosts_is_refused() {
    for (url, host) in [
        ("http://localhost.evil.com:8080", "localhost.evil.com"),
        ("http://127.0.0.1.evil.com", "127.0.0.1.evil.com"),
        ("http://128.0.0.1", "128.0.0.1"),
        ("http://0.0.0.0:8080", "0.0.0.0"),
        ("http://10.0.0.5:8080", "10.0.0.5"),
        ("http://[::]:8080", "[::]"),
        ("http://[2001:db8::1]", "[2001:db8::1]"),
    ] {
        assert_eq!(
            parse(url),
            Err(SecurityError::InsecureTransport { host: host.into() }),
            "{url}"
        );
    }
}

#[test]
fn credentials_in_the_url_are_refused() {
    for url in [
        "libsql://user:pass@my-db.turso.io",
        "http://admin@localhost:8080",
        "libsql://my-db.turso.io?authToken=abc",
        "https://my-db.turso.io/?tls=1&AUTH_TOKEN=abc",
    ] {
        assert!(
            matches!(parse(url), Err(SecurityError::CredentialsInUrl { .. })),
            "{url}"
        );
    }
}

#[test]
fn malformed_remote_urls_are_refused() {
    for url in [
        "libsql:my-db.turso.io",
        "libsql://",
        "https:///path",
        "libsql://:8080",
        "libsql://host:",
        "libsql://host:0",
        "libsql://host:65536",
        "libsql://host:80a",
        "libsql://[::1",
        "libsql://[not-ipv6]:80",
        "libsql://[::1]x",
        "libsql://my db.turso.io",
        "libsql://bücher.example",
    ] {
        assert!(
            matches!(parse(url), Err(SecurityError::MalformedUrl { .. })),
            "{url}: {:?}",
            parse(url)
        );
    }
}

#[test]
fn blank_long_and_control_urls_are_refused() {
    assert_eq!(parse(""), Err(SecurityError::EmptyUrl));
    assert_eq!(parse("  \t "), Err(SecurityError::EmptyUrl));
    let long = format!("libsql://{}.turso.io", "a".repeat(MAX_URL_LEN));
    assert_eq!(
        parse(&long),
        Err(SecurityError::UrlTooLong {
            length: long.len(),
            limit: MAX_URL_LEN
        })
    );
    let just_fits = format!("libsql://{}", "a".repeat(MAX_URL_LEN - "libsql://".len()));
    assert!(parse(&just_fits).is_ok());
    assert_eq!(
        parse("libsql://my-db.turso.io\n"),
        Err(SecurityError::ControlCharacter { position: 23 })
    );
    assert_eq!(
        parse("file:te\0st.db"),
        Err(SecurityError::ControlCharacter { position: 7 })
    );
}

#[test]
fn urls_without_a_scheme_are_refused() {
    for url in [
        "test.db",
        "./data/memory.db",
        "C:\\data\\memory.db",
        "my-db.turso.io:443",
    ] {
        let error = parse(url).unwrap_err();
        assert!(
            matches!(
                error,
                SecurityError::MissingScheme | SecurityError::UnsupportedScheme { .. }
            ),
            "{url}: {error:?}"
        );
    }
    assert!(parse("test.db")
        .unwrap_err()
        .to_string()
        .contains("file:PATH"));
}

#[test]
fn a_token_with_a_control_character_is_refused() {
    let error = DatabaseTarget::parse("libsql://my-db.turso.io", "secret\n").unwrap_err();
    assert_eq!(error, SecurityError::TokenControlCharacter);
}

#[test]
fn the_token_is_redacted_in_debug_and_display() {
    let token = AuthToken::new(TOKEN);
    assert_eq!(format!("{token}"), "[redacted]");
    assert_eq!(format!("{token:?}"), "[redacted]");
    assert_eq!(token.expose_secret(), TOKEN);

    let target = parse("libsql://my-db.turso.io").unwrap();
    for shown in [
        format!("{target}"),
        format!("{target:?}"),
        format!("{target:#?}"),
    ] {
        assert!(!shown.contains(TOKEN), "{shown}");
        assert!(shown.contains("my-db.turso.io"), "{shown}");
    }
}

/// The URLs the generator mixes: every scheme above, good and bad hosts, and odd tails.
fn any_url() -> impl Strategy<Value = String> {
    let scheme = proptest::sample::select(vec![
        "libsql://",
        "https://",
        "http://",
        "LIBSQL://",
        "ftp://",
        "ws://",
        "mysql://",
        "file:",
        "file://",
        "",
        ":memory:",
    ]);
    let host = proptest::sample::select(vec![
        "",
        "localhost",
        "127.0.0.1",
        "[::1]",
        "bad.com",
        "user:pw@host",
        "my-db.turso.io",
    ]);
    let tail = proptest::sample::select(vec![
        "",
        ":8080",
        ":0",
        "/path",
        "?authToken=x",
        "?tls=0",
        "\n",
        " ",
        "#frag",
    ]);
    (scheme, host, tail, "[ -~]{0,8}").prop_map(|(s, h, t, noise)| format!("{s}{h}{t}{noise}"))
}

proptest! {
    #[test]
    fn the_token_never_appears_in_any_outcome(url in any_url()) {
        prop_assume!(!url.contains("SECRET"));
        let shown = match DatabaseTarget::parse(&url, TOKEN) {
            Ok(target) => format!("{target} {target:?}"),
            Err(error) => {
                let storage = StorageError::from(error.clone());
                format!("{error} {error:?} {storage} {storage:?}")
            }
        };
        prop_assert!(!shown.contains(TOKEN), "{}", shown);
        prop_assert!(!shown.contains("SECRET"), "{}", shown);
    }

    #[test]
    fn plain_http_passes_exactly_for_loopback(a in 0u8..=255, b: u8, c: u8, d: u8, port in 1u16..) {
        let url = format!("http://{a}.{b}.{c}.{d}:{port}");
        let result = parse(&url);
        if a == 127 {
            prop_assert_eq!(result, Ok(remote(&url)));
        } else {
            let host = format!("{a}.{b}.{c}.{d}");
            prop_assert_eq!(result, Err(SecurityError::InsecureTransport { host }));
        }
    }
}
