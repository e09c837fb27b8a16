//! The one error type of this crate.

use diesel::result::{ConnectionError, DatabaseErrorKind};

/// What went wrong talking to the database.
///
/// The variants are the distinctions callers act on: [`DbError::Unavailable`] becomes
/// `503 Service Unavailable`, [`DbError::NotFound`] `404`, [`DbError::Conflict`] `409`,
/// [`DbError::InvalidInput`] `400`, everything else `500`.
///
/// Messages never contain a connection password: URLs are shown with their userinfo removed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// The database cannot be reached: no connection could be made or taken from the pool in
    /// time, the connection was lost, or SQLite stayed busy past its timeout. Worth retrying.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The row asked for does not exist.
    #[error("not found")]
    NotFound,
    /// A unique constraint was violated, or a concurrent transaction won a race.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The caller passed a value this crate refuses (the message never repeats a secret value).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The database URL or pool options are unusable.
    #[error("invalid database configuration: {0}")]
    Config(String),
    /// Anything else: a failed migration, an unexpected SQL error, a panicked blocking task.
    #[error("database error: {0}")]
    Other(String),
}

impl From<diesel::result::Error> for DbError {
    fn from(error: diesel::result::Error) -> Self {
        use diesel::result::Error;
        match error {
            Error::NotFound => Self::NotFound,
            Error::DatabaseError(kind, info) => match kind {
                DatabaseErrorKind::UniqueViolation | DatabaseErrorKind::SerializationFailure => {
                    Self::Conflict(info.message().to_owned())
                }
                DatabaseErrorKind::ClosedConnection => Self::Unavailable(info.message().to_owned()),
                // SQLITE_BUSY after `busy_timeout` elapsed; diesel reports it as `Unknown`.
                _ if info.message().contains("database is locked") => {
                    Self::Unavailable(info.message().to_owned())
                }
                // PostgreSQL went away: diesel-async reports a lost connection as
                // `UnableToSendCommand` ("connection closed", "error communicating with the
                // server"), and a server shutting down or restarting ends sessions with class
                // 57 errors ("terminating connection due to administrator command", "the
                // database system is shutting down"), which arrive as `Unknown`.
                _ if lost_server(info.message()) => Self::Unavailable(info.message().to_owned()),
                _ => Self::Other(info.message().to_owned()),
            },
            Error::BrokenTransactionManager => {
                Self::Unavailable("the connection's transaction state is broken".to_owned())
            }
            other => Self::Other(other.to_string()),
        }
    }
}

/// Whether a PostgreSQL error message says the server or the connection to it is gone.
fn lost_server(message: &str) -> bool {
    message == "connection closed"
        || message.starts_with("error communicating with the server")
        || message.starts_with("terminating connection")
        || message.starts_with("the database system is")
}

impl From<ConnectionError> for DbError {
    fn from(error: ConnectionError) -> Self {
        Self::Unavailable(error.to_string())
    }
}

impl From<tokio::task::JoinError> for DbError {
    fn from(error: tokio::task::JoinError) -> Self {
        Self::Other(format!("blocking database task failed: {error}"))
    }
}

#[cfg(test)]
mod tests {
    use diesel::result::{DatabaseErrorKind, Error};

    use super::DbError;

    fn database(kind: DatabaseErrorKind, message: &str) -> DbError {
        Error::DatabaseError(kind, Box::new(message.to_owned())).into()
    }

    #[test]
    fn a_lost_or_restarting_postgres_is_unavailable() {
        for (kind, message) in [
            (DatabaseErrorKind::UnableToSendCommand, "connection closed"),
            (
                DatabaseErrorKind::UnableToSendCommand,
                "error communicating with the server: Connection reset by peer (os error 104)",
            ),
            (
                DatabaseErrorKind::Unknown,
                "terminating connection due to administrator command",
            ),
            (
                DatabaseErrorKind::Unknown,
                "the database system is shutting down",
            ),
        ] {
            assert!(
                matches!(database(kind, message), DbError::Unavailable(_)),
                "{message}"
            );
        }
        assert!(matches!(
            database(
                DatabaseErrorKind::Unknown,
                "syntax error at or near \"SELEC\""
            ),
            DbError::Other(_)
        ));
    }
}
