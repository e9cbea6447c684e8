//! Checking a database URL and auth token before anything is opened: [`DatabaseTarget::parse`].
//!
//! | URL | target | token |
//! |---|---|---|
//! | `:memory:` (or `file::memory:`) | [`DatabaseTarget::Memory`] | ignored |
//! | `file:PATH`, `file:///ABSOLUTE/PATH` | [`DatabaseTarget::Local`] | ignored |
//! | `libsql://HOST[:PORT]...`, `https://HOST[:PORT]...` | [`DatabaseTarget::Remote`] | required |
//! | `http://HOST[:PORT]...`, HOST loopback only | [`DatabaseTarget::Remote`] | required |
//!
//! Loopback hosts are `localhost`, `127.0.0.0/8` and `[::1]`: plain `http://` is there for a local
//! `sqld` in development, and anywhere else it would send the token in clear text. Every other scheme
//! (`ws://`, `ftp://`, `postgresql://`, upper-case `LIBSQL://`, ...) is refused with a
//! [`SecurityError`] that says what to write instead. So are URLs that are blank, longer than
//! [`MAX_URL_LEN`], contain control characters or carry credentials (`user:pass@`, `?authToken=`),
//! and remote URLs with a blank token. A local server without authentication ignores the token, so pass
//! any non-blank placeholder there.
//!
//! The token is wrapped in an [`AuthToken`], whose `Debug` and `Display` print `[redacted]`, and no
//! error message quotes it.
//!
//! The few schemes are parsed by hand, with the standard library's IP address parsers for the loopback
//! check: the `url` crate would add a dozen crates to check four prefixes.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use super::error::SecurityError;

/// The longest database URL accepted, in bytes. Real URLs are far shorter; a longer one is almost
/// always the wrong value (a file's contents, a token) passed by mistake.
pub const MAX_URL_LEN: usize = 2048;

/// An auth token for a remote database. `Debug` and `Display` print `[redacted]`, so that it cannot
/// end up in logs or error messages by accident; [`AuthToken::expose_secret`] gives the value to the
/// code that must send it.
///
/// ```
/// use memory_storage_turso::storage::AuthToken;
///
/// let token = AuthToken::new("eyJhbGciOi.secret");
/// assert_eq!(format!("{token} {token:?}"), "[redacted] [redacted]");
/// assert_eq!(token.expose_secret(), "eyJhbGciOi.secret");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct AuthToken(String);

impl AuthToken {
    /// Wraps `token`.
    pub fn new(token: impl Into<String>) -> Self {
        AuthToken(token.into())
    }

    /// The token itself, for the code that sends it to the database. Never log it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for AuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A checked database location: a local file, an in-memory database, or a remote server with its
/// token.
///
/// ```
/// use memory_storage_turso::storage::{DatabaseTarget, SecurityError};
///
/// let target = DatabaseTarget::parse("libsql://my-db.turso.io", "secret-token").unwrap();
/// assert!(target.is_remote());
/// assert!(!format!("{target:?}").contains("secret-token"));
///
/// assert_eq!(DatabaseTarget::parse(":memory:", "").unwrap(), DatabaseTarget::Memory);
/// assert!(matches!(
///     DatabaseTarget::parse("http://example.com", "secret-token"),
///     Err(SecurityError::InsecureTransport { .. })
/// ));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseTarget {
    /// A local database file, from `file:PATH`. The path is taken verbatim (no percent-decoding); it
    /// may not be blank, start or end with whitespace, or start with `file:` again.
    Local(PathBuf),
    /// A private in-memory database, from `:memory:`.
    Memory,
    /// A remote libSQL server or Turso database.
    Remote {
        /// The URL as given (it carries no credentials: those are refused).
        url: String,
        /// The auth token, never blank.
        token: AuthToken,
    },
}

impl DatabaseTarget {
    /// Checks `url` and `token` against the rules of this module's documentation. `token` is only
    /// used for remote URLs; local ones ignore it, so `""` is fine there.
    pub fn parse(url: &str, token: &str) -> Result<Self, SecurityError> {
        if url.trim().is_empty() {
            return Err(SecurityError::EmptyUrl);
        }
        if url.len() > MAX_URL_LEN {
            return Err(SecurityError::UrlTooLong {
                length: url.len(),
                limit: MAX_URL_LEN,
            });
        }
        if let Some(position) = url.find(char::is_control) {
            return Err(SecurityError::ControlCharacter { position });
        }
        if url == ":memory:" {
            return Ok(DatabaseTarget::Memory);
        }
        let (scheme, rest) = split_scheme(url).ok_or(SecurityError::MissingScheme)?;
        match scheme {
            "file" => parse_file(rest),
            "libsql" | "https" => parse_remote(url, rest, token, Transport::Encrypted),
            "http" => parse_remote(url, rest, token, Transport::Plain),
            _ => Err(SecurityError::UnsupportedScheme {
                scheme: scheme.to_owned(),
            }),
        }
    }

    /// Whether this is a [`DatabaseTarget::Remote`].
    pub fn is_remote(&self) -> bool {
        matches!(self, DatabaseTarget::Remote { .. })
    }
}

impl fmt::Display for DatabaseTarget {
    /// The target as a URL, without the token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseTarget::Local(path) => write!(f, "file:{}", path.display()),
            DatabaseTarget::Memory => f.write_str(":memory:"),
            DatabaseTarget::Remote { url, .. } => f.write_str(url),
        }
    }
}

/// Whether a remote scheme encrypts its traffic.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Transport {
    Encrypted,
    Plain,
}

/// Splits `scheme:rest`, if `url` starts with a syntactically valid scheme (RFC 3986: a letter, then
/// letters, digits, `+`, `-` or `.`). A one-letter "scheme" is a Windows drive (`C:\db`), not a scheme.
fn split_scheme(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.split_once(':')?;
    let mut chars = scheme.chars();
    let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let valid = starts_with_letter
        && scheme.len() > 1
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some((scheme, rest))
}

/// `rest` is what follows `file:`: a path, or `//` and an absolute path.
fn parse_file(rest: &str) -> Result<DatabaseTarget, SecurityError> {
    let path = match rest.strip_prefix("//") {
        Some(after) if after.starts_with('/') => after,
        Some(after) => after
            .strip_prefix("localhost")
            .filter(|p| p.starts_with('/'))
            .ok_or(SecurityError::MalformedUrl {
                reason:
                    "a file:// URL needs an absolute path (file:///tmp/memory.db); for a relative \
                         path write file:PATH",
            })?,
        None => rest,
    };
    if path.trim().is_empty() {
        return Err(SecurityError::EmptyPath);
    }
    if path.trim() != path {
        return Err(SecurityError::MalformedUrl {
            reason:
                "a file: path cannot start or end with whitespace (the file would be named with \
                     it); remove the spaces around the path",
        });
    }
    if path.starts_with("file:") {
        return Err(SecurityError::MalformedUrl {
            reason:
                "a file: path cannot itself start with file: (libSQL would read it as a SQLite \
                     URI); write file: once",
        });
    }
    if path.contains(['?', '#']) {
        return Err(SecurityError::MalformedUrl {
            reason: "a file: path cannot contain ? or #: URI parameters are not supported",
        });
    }
    if path == ":memory:" {
        return Ok(DatabaseTarget::Memory);
    }
    Ok(DatabaseTarget::Local(PathBuf::from(path)))
}

/// `rest` is what follows `scheme:`, which must be `//HOST[:PORT][/path][?query]`.
fn parse_remote(
    url: &str,
    rest: &str,
    token: &str,
    transport: Transport,
) -> Result<DatabaseTarget, SecurityError> {
    let malformed = |reason| SecurityError::MalformedUrl { reason };
    let after_slashes = rest
        .strip_prefix("//")
        .ok_or(malformed("expected SCHEME://HOST after the scheme"))?;
    if url.contains(char::is_whitespace) {
        return Err(malformed("a remote URL cannot contain whitespace"));
    }
    let authority_end = after_slashes
        .find(['/', '?', '#'])
        .unwrap_or(after_slashes.len());
    let (authority, tail) = after_slashes.split_at(authority_end);
    // What a URI's path or query cannot hold: the HTTP client would refuse it on every call, long after
    // this (the host is checked below, with a hint of its own).
    if tail.contains(|c: char| !c.is_ascii() || "\"<>\\^`{|}".contains(c)) {
        return Err(malformed(
            "the path or query of a remote URL can hold only the ASCII characters that URIs allow: \
             percent-encode the others (ü is %C3%BC)",
        ));
    }
    if authority.contains('@') {
        return Err(SecurityError::CredentialsInUrl {
            what: "user information before @",
        });
    }
    if has_credential_parameter(tail) {
        return Err(SecurityError::CredentialsInUrl {
            what: "a token query parameter",
        });
    }
    let host = parse_host(authority)?;
    if transport == Transport::Plain && !is_loopback(host) {
        return Err(SecurityError::InsecureTransport {
            host: host.to_owned(),
        });
    }
    if token.trim().is_empty() {
        return Err(SecurityError::BlankToken);
    }
    if token.contains(char::is_control) {
        return Err(SecurityError::TokenControlCharacter);
    }
    Ok(DatabaseTarget::Remote {
        url: url.to_owned(),
        token: AuthToken::new(token),
    })
}

/// The host of `HOST[:PORT]` or `[IPV6][:PORT]`, checked; IPv6 hosts keep their brackets.
fn parse_host(authority: &str) -> Result<&str, SecurityError> {
    let malformed = |reason| SecurityError::MalformedUrl { reason };
    let (host, port) = if authority.starts_with('[') {
        let close = authority
            .find(']')
            .ok_or(malformed("an IPv6 host needs its closing ]"))?;
        let (host, after) = authority.split_at(close + 1);
        if host[1..close].parse::<Ipv6Addr>().is_err() {
            return Err(malformed("the host in [...] is not an IPv6 address"));
        }
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or(malformed("only :PORT may follow an IPv6 host"))?,
            ),
        };
        (host, port)
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        let valid_name = host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
        if !valid_name {
            return Err(malformed(
                "the host may contain only ASCII letters, digits, '-', '.' and '_' (write \
                 international names in punycode)",
            ));
        }
        (host, port)
    };
    if host.is_empty() {
        return Err(malformed("it has no host"));
    }
    if let Some(port) = port {
        let valid_port = port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u16>().is_ok_and(|number| number > 0);
        if !valid_port {
            return Err(malformed("the port must be a number from 1 to 65535"));
        }
    }
    Ok(host)
}

/// Whether `host` is `localhost`, an address in `127.0.0.0/8`, or `[::1]`.
fn is_loopback(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback());
    }
    host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// Whether the path-and-query part `tail` has a query parameter that carries a token.
fn has_credential_parameter(tail: &str) -> bool {
    let Some((_, query)) = tail.split_once('?') else {
        return false;
    };
    let query = query.split('#').next().unwrap_or_default();
    query.split('&').any(|pair| {
        let key = pair.split('=').next().unwrap_or_default();
        ["authtoken", "auth_token", "token", "jwt", "password"]
            .iter()
            .any(|name| key.eq_ignore_ascii_case(name))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_scheme_needs_a_real_scheme() {
        assert_eq!(split_scheme("libsql://x"), Some(("libsql", "//x")));
        assert_eq!(split_scheme("file:a.db"), Some(("file", "a.db")));
        assert_eq!(split_scheme("C:\\data\\a.db"), None);
        assert_eq!(split_scheme("1abc://x"), None);
        assert_eq!(split_scheme("no scheme here"), None);
    }

    #[test]
    fn loopback_hosts() {
        for host in [
            "localhost",
            "LocalHost",
            "127.0.0.1",
            "127.255.0.9",
            "[::1]",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "localhost.example.com",
            "127.0.0.1.example.com",
            "128.0.0.1",
            "0.0.0.0",
            "[::]",
            "[::2]",
            "10.0.0.1",
            "example.com",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn credential_parameters() {
        assert!(has_credential_parameter("/?authToken=abc"));
        assert!(has_credential_parameter("?tls=0&AUTH_TOKEN=abc"));
        assert!(!has_credential_parameter("/db?tls=0"));
        assert!(!has_credential_parameter("/token"));
        assert!(!has_credential_parameter("/db#token=1"));
    }
}
