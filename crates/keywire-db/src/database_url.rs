//! Reading a database URL: which backend, where, and how to show it without its password.

use url::Url;

use crate::{Backend, DbError};

/// A parsed database URL.
pub(crate) enum Target {
    /// A PostgreSQL server.
    Postgres {
        /// The URL as given, password included: only ever handed to the driver.
        url: String,
        /// Secrets to scrub from any message: the password, percent-encoded and decoded.
        secrets: Vec<String>,
    },
    /// A SQLite database file.
    Sqlite {
        /// The file; never `:memory:`, since each pooled connection would get its own database.
        path: String,
    },
}

impl Target {
    /// Which backend this URL selects.
    pub(crate) fn backend(&self) -> Backend {
        match self {
            Self::Postgres { .. } => Backend::Postgres,
            Self::Sqlite { .. } => Backend::Sqlite,
        }
    }
}

/// Parses `input`: `postgres://` and `postgresql://` select PostgreSQL; `sqlite://<path>`,
/// `sqlite:<path>` or a plain file path select SQLite. Returns the target and a form of the URL
/// that is safe to log (no userinfo, no `password` query parameter).
pub(crate) fn parse(input: &str) -> Result<(Target, String), DbError> {
    let lower = input.to_ascii_lowercase();
    if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
        return parse_postgres(input);
    }
    let path = if lower.starts_with("sqlite://") {
        &input["sqlite://".len()..]
    } else if lower.starts_with("sqlite:") {
        &input["sqlite:".len()..]
    } else if let Some((scheme, _)) = input.split_once("://") {
        // The scheme is safe to echo; the rest of the URL may hold a password.
        return Err(DbError::Config(format!(
            "unsupported database URL scheme `{scheme}` (use postgres://, sqlite:// or a file path)"
        )));
    } else {
        input
    };
    let trimmed = path.trim();
    if trimmed.is_empty() {
        return Err(DbError::Config(
            "the SQLite database path is empty".to_owned(),
        ));
    }
    if trimmed == ":memory:"
        || trimmed.to_ascii_lowercase().starts_with("file:")
        || trimmed.contains("mode=memory")
    {
        return Err(DbError::Config(
            "in-memory and URI SQLite databases are not supported: give a file path".to_owned(),
        ));
    }
    Ok((
        Target::Sqlite {
            path: path.to_owned(),
        },
        format!("sqlite://{path}"),
    ))
}

fn parse_postgres(input: &str) -> Result<(Target, String), DbError> {
    // `url::ParseError` messages never echo the input, so they cannot leak a password.
    let parsed = Url::parse(input)
        .map_err(|error| DbError::Config(format!("invalid PostgreSQL URL: {error}")))?;
    let mut secrets = Vec::new();
    if let Some(password) = parsed.password() {
        secrets.push(password.to_owned());
        if let Ok(decoded) = percent_decode(password) {
            secrets.push(decoded);
        }
    }
    let mut redacted = parsed.clone();
    // Both fail only for URLs without a host, which have no userinfo to remove.
    let _ = redacted.set_password(None);
    let _ = redacted.set_username("");
    let kept: Vec<(String, String)> = parsed
        .query_pairs()
        .filter(|(key, value)| {
            if key == "password" {
                secrets.push(value.clone().into_owned());
                false
            } else {
                true
            }
        })
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect();
    if kept.is_empty() {
        redacted.set_query(None);
    } else {
        redacted.query_pairs_mut().clear().extend_pairs(kept);
    }
    secrets.retain(|secret| !secret.is_empty());
    Ok((
        Target::Postgres {
            url: input.to_owned(),
            secrets,
        },
        redacted.to_string(),
    ))
}

/// Decodes `%XX` escapes (enough for a URL password; invalid UTF-8 is an error).
fn percent_decode(input: &str) -> Result<String, std::string::FromUtf8Error> {
    fn hex(byte: u8) -> Option<u8> {
        char::from(byte)
            .to_digit(16)
            .and_then(|digit| u8::try_from(digit).ok())
    }
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(high), Some(low)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(high << 4 | low);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out)
}

/// Replaces every occurrence of each secret in `message` with `***`.
pub(crate) fn scrub(message: &str, secrets: &[String]) -> String {
    let mut message = message.to_owned();
    for secret in secrets {
        if message.contains(secret.as_str()) {
            message = message.replace(secret.as_str(), "***");
        }
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite_path(input: &str) -> String {
        match parse(input).unwrap().0 {
            Target::Sqlite { path } => path,
            Target::Postgres { .. } => panic!("{input} parsed as PostgreSQL"),
        }
    }

    #[test]
    fn sqlite_urls_and_plain_paths_select_sqlite() {
        assert_eq!(
            sqlite_path("sqlite:///var/lib/kw/db.sqlite"),
            "/var/lib/kw/db.sqlite"
        );
        assert_eq!(sqlite_path("sqlite://data/kw.db"), "data/kw.db");
        assert_eq!(sqlite_path("sqlite:kw.db"), "kw.db");
        assert_eq!(sqlite_path("./keywire-data/kw.db"), "./keywire-data/kw.db");
        assert_eq!(sqlite_path("/tmp/kw.db"), "/tmp/kw.db");
    }

    #[test]
    fn in_memory_and_empty_sqlite_databases_are_refused() {
        for input in [
            "sqlite://:memory:",
            ":memory:",
            "file::memory:",
            "sqlite://",
            "",
            "  ",
        ] {
            assert!(
                matches!(parse(input), Err(DbError::Config(_))),
                "{input:?} was accepted"
            );
        }
    }

    #[test]
    fn unknown_schemes_are_refused_without_echoing_the_url() {
        let error = parse("mysql://root:hunter2@db/kw").err().unwrap();
        let message = error.to_string();
        assert!(message.contains("mysql"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
    }

    #[test]
    fn postgres_urls_are_redacted() {
        let (target, redacted) =
            parse("postgres://kw:s%40cret@db.internal:5433/keywire?sslmode=disable").unwrap();
        assert_eq!(target.backend(), Backend::Postgres);
        assert_eq!(
            redacted,
            "postgres://db.internal:5433/keywire?sslmode=disable"
        );
        let Target::Postgres { secrets, .. } = target else {
            unreachable!()
        };
        assert_eq!(
            scrub("failed: s%40cret and s@cret", &secrets),
            "failed: *** and ***"
        );

        let (_, redacted) = parse("postgresql://db/keywire?password=hunter2&user=kw").unwrap();
        assert_eq!(redacted, "postgresql://db/keywire?user=kw");
        let (_, redacted) = parse("POSTGRES://u:p@localhost/kw").unwrap();
        assert!(!redacted.contains(":p@"), "{redacted}");
    }

    #[test]
    fn invalid_postgres_urls_do_not_echo_the_input() {
        let message = parse("postgres://kw:hunter2@[bad/kw")
            .err()
            .unwrap()
            .to_string();
        assert!(!message.contains("hunter2"), "{message}");
    }
}
