//! Users, and the bootstrap of the first administrator.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::{transaction, with_conn};
use crate::schema::{api_tokens, users};
use crate::tokens::{NewApiToken, generate_token, new_id, now, validate_provided_token};
use crate::{Db, DbError};

/// Name of the user that [`Db::bootstrap_admin`] creates.
pub const BOOTSTRAP_ADMIN_NAME: &str = "admin";
/// Name of the token that [`Db::bootstrap_admin`] issues.
pub const BOOTSTRAP_TOKEN_NAME: &str = "bootstrap";
/// Longest user name accepted.
pub const MAX_USER_NAME_CHARS: usize = 64;

/// Someone (or something) that may call the API.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct User {
    /// UUID of the user.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Whether the user may administer the whole server.
    pub is_admin: bool,
    /// When the user was created (UTC).
    pub created_at: NaiveDateTime,
}

impl User {
    fn new(name: &str, is_admin: bool) -> Self {
        Self {
            id: new_id(),
            name: name.to_owned(),
            is_admin,
            created_at: now(),
        }
    }
}

impl Db {
    /// Creates the first administrator if there is no user at all.
    ///
    /// In one transaction: when the `users` table is empty, creates the user
    /// [`BOOTSTRAP_ADMIN_NAME`] (an administrator) with one token named
    /// [`BOOTSTRAP_TOKEN_NAME`], and returns that token in clear, for the caller to show once.
    /// The token is `token` verbatim if given (say from configuration), else a generated one.
    /// When any user exists, changes nothing and returns `None`.
    ///
    /// Safe when several processes bootstrap one database at once: on SQLite the transaction
    /// takes the write lock first; on PostgreSQL the loser of the race hits the unique user
    /// name and gets `None`.
    ///
    /// # Errors
    ///
    /// [`DbError::InvalidInput`] if `token` is shorter than [`crate::MIN_TOKEN_CHARS`] or holds
    /// whitespace (the message never contains the token), or any other [`DbError`].
    pub async fn bootstrap_admin(&self, token: Option<&str>) -> Result<Option<String>, DbError> {
        let secret = match token {
            Some(token) => {
                validate_provided_token(token)?;
                token.to_owned()
            }
            None => generate_token(),
        };
        let user = User::new(BOOTSTRAP_ADMIN_NAME, true);
        let row = NewApiToken::new(&user.id, BOOTSTRAP_TOKEN_NAME, &secret, None);
        let created = transaction!(self, |conn| {
            let existing: i64 = users::table.count().get_result(conn).await?;
            if existing > 0 {
                return Ok(false);
            }
            diesel::insert_into(users::table)
                .values(&user)
                .execute(conn)
                .await?;
            diesel::insert_into(api_tokens::table)
                .values(&row)
                .execute(conn)
                .await?;
            Ok(true)
        });
        match created {
            Ok(true) => {
                tracing::info!(user = %user.id, "bootstrapped the first administrator");
                Ok(Some(secret))
            }
            Ok(false) => Ok(None),
            // Another process created the administrator between our count and our insert.
            Err(DbError::Conflict(_)) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Creates a user.
    ///
    /// # Errors
    ///
    /// [`DbError::Conflict`] if the name is taken, [`DbError::InvalidInput`] for an empty,
    /// over-long or control-character name, or any other [`DbError`].
    pub async fn create_user(&self, name: &str, is_admin: bool) -> Result<User, DbError> {
        if name.trim().is_empty()
            || name.trim() != name
            || name.chars().count() > MAX_USER_NAME_CHARS
            || name.chars().any(char::is_control)
        {
            return Err(DbError::InvalidInput(format!(
                "a user name must be 1 to {MAX_USER_NAME_CHARS} characters, without control \
                 characters or surrounding spaces"
            )));
        }
        let user = User::new(name, is_admin);
        with_conn!(self, |conn| {
            diesel::insert_into(users::table)
                .values(&user)
                .execute(conn)
                .await?;
        });
        Ok(user)
    }

    /// Every user, by name.
    ///
    /// # Errors
    ///
    /// Any [`DbError`] from the query.
    pub async fn list_users(&self) -> Result<Vec<User>, DbError> {
        Ok(with_conn!(self, |conn| {
            users::table
                .order(users::name)
                .select(User::as_select())
                .load(conn)
                .await?
        }))
    }

    /// The user with this id.
    ///
    /// # Errors
    ///
    /// [`DbError::NotFound`] if there is none, or any other [`DbError`].
    pub async fn get_user(&self, user_id: &str) -> Result<User, DbError> {
        Ok(with_conn!(self, |conn| {
            users::table
                .find(user_id)
                .select(User::as_select())
                .first(conn)
                .await?
        }))
    }

    /// Deletes a user and, by cascade, all of its tokens.
    ///
    /// # Errors
    ///
    /// [`DbError::NotFound`] if there is no such user, or any other [`DbError`].
    pub async fn delete_user(&self, user_id: &str) -> Result<(), DbError> {
        let deleted = with_conn!(self, |conn| {
            diesel::delete(users::table.find(user_id))
                .execute(conn)
                .await?
        });
        if deleted == 0 {
            return Err(DbError::NotFound);
        }
        Ok(())
    }
}
