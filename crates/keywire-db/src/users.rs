//! Users, and the bootstrap of the first administrator.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use keywire_core::{Actor, EventSource, EventType, Severity};
use serde_json::json;

use crate::db::{transaction, with_conn};
use crate::events::{Event, record_event};
use crate::schema::{api_tokens, member_roles, users, workspace_members, workspace_roles};
use crate::tokens::{NewApiToken, generate_token, new_id, now, validate_provided_token};
use crate::util::{Page, PageRequest, decode_cursor};
use crate::{Db, DbError, IssuedToken};

/// Name of the user that [`Db::bootstrap_admin`] creates.
pub const BOOTSTRAP_ADMIN_NAME: &str = "admin";
/// Name of the token that [`Db::bootstrap_admin`] issues.
pub const BOOTSTRAP_TOKEN_NAME: &str = "bootstrap";
/// Longest user name accepted.
pub const MAX_USER_NAME_CHARS: usize = 64;

/// Checks a user name: 1 to [`MAX_USER_NAME_CHARS`] characters, ASCII letters, digits and
/// `. _ - @`, starting with a letter or digit, so that it can stand in a URL path unescaped
/// (`/api/v1/users/{user}`). Returns a message for the field.
///
/// # Errors
///
/// The reason the name is refused.
pub fn check_user_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if name.chars().count() > MAX_USER_NAME_CHARS {
        return Err(format!("must be at most {MAX_USER_NAME_CHARS} characters"));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err("must start with a letter or a digit".to_owned());
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._-@".contains(*c)))
    {
        return Err(format!(
            "must not contain {bad:?}: use ASCII letters, digits and . _ - @"
        ));
    }
    Ok(())
}

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
    /// [`DbError::Conflict`] if the name is taken, [`DbError::InvalidInput`] for a name that
    /// [`check_user_name`] refuses, or any other [`DbError`].
    pub async fn create_user(&self, name: &str, is_admin: bool) -> Result<User, DbError> {
        check_user_name(name)
            .map_err(|why| DbError::InvalidInput(format!("the user name {why}")))?;
        let user = User::new(name, is_admin);
        with_conn!(self, |conn| {
            diesel::insert_into(users::table)
                .values(&user)
                .execute(conn)
                .await?;
        });
        Ok(user)
    }

    /// Creates a user and its first token (named `token_name`, unlimited, never expiring) in
    /// one transaction; the clear token is in the result only.
    ///
    /// # Errors
    ///
    /// As [`Db::create_user`].
    pub async fn create_user_with_token(
        &self,
        name: &str,
        is_admin: bool,
        token_name: &str,
    ) -> Result<(User, IssuedToken), DbError> {
        check_user_name(name)
            .map_err(|why| DbError::InvalidInput(format!("the user name {why}")))?;
        let user = User::new(name, is_admin);
        let secret = generate_token();
        let row = NewApiToken::new(&user.id, token_name, &secret, None);
        transaction!(self, |conn| {
            let taken: i64 = users::table
                .filter(users::name.eq(name))
                .count()
                .get_result(conn)
                .await?;
            if taken > 0 {
                return Err(DbError::Conflict(format!(
                    "there is a user named `{name}` already"
                )));
            }
            diesel::insert_into(users::table)
                .values(&user)
                .execute(conn)
                .await?;
            diesel::insert_into(api_tokens::table)
                .values(&row)
                .execute(conn)
                .await?;
            Ok(())
        })?;
        let token = IssuedToken {
            token: row.to_model(),
            secret,
        };
        Ok((user, token))
    }

    /// The user with this name.
    ///
    /// # Errors
    ///
    /// [`DbError::NotFound`] if there is none, or any other [`DbError`].
    pub async fn user_by_name(&self, name: &str) -> Result<User, DbError> {
        Ok(with_conn!(self, |conn| {
            users::table
                .filter(users::name.eq(name))
                .select(User::as_select())
                .first(conn)
                .await?
        }))
    }

    /// Users by name, one page at a time.
    ///
    /// # Errors
    ///
    /// [`DbError::InvalidInput`] for a cursor this server did not make, or any [`DbError`].
    pub async fn list_users_page(&self, page: &PageRequest) -> Result<Page<User>, DbError> {
        let after = page
            .after
            .as_deref()
            .map(|cursor| {
                decode_cursor(cursor)
                    .ok_or_else(|| DbError::InvalidInput("the cursor is not valid".to_owned()))
            })
            .transpose()?;
        let limit = page.limit();
        let rows: Vec<User> = with_conn!(self, |conn| {
            let mut query = users::table.into_boxed();
            if let Some(after) = &after {
                query = query.filter(users::name.gt(after));
            }
            query
                .order(users::name.asc())
                .limit(limit + 1)
                .select(User::as_select())
                .load(conn)
                .await?
        });
        Ok(Page::from_rows(rows, limit, |user| user.name.clone()))
    }

    /// Deletes a user with its tokens and memberships, refusing to delete the last server
    /// administrator. Records `REMOVED_FROM_WORKSPACE` (payload `"userDeleted": true`) in
    /// every workspace the user belonged to, in the same transaction.
    ///
    /// A workspace whose last admin-role holder is deleted stays manageable by server
    /// administrators, who may do everything everywhere.
    ///
    /// # Errors
    ///
    /// [`DbError::NotFound`] if there is no such user, [`DbError::Conflict`] for the last
    /// server administrator, or any other [`DbError`].
    pub async fn remove_user(&self, user_id: &str, actor: &Actor) -> Result<(), DbError> {
        transaction!(self, |conn| {
            // Lock the administrators' rows first so two concurrent deletions of the last
            // two administrators run one after the other (PostgreSQL; SQLite serializes).
            diesel::update(users::table.filter(users::is_admin.eq(true)))
                .set(users::is_admin.eq(users::is_admin))
                .execute(conn)
                .await?;
            let user: User = users::table
                .find(user_id)
                .select(User::as_select())
                .first(conn)
                .await?;
            if user.is_admin {
                let admins: i64 = users::table
                    .filter(users::is_admin.eq(true))
                    .count()
                    .get_result(conn)
                    .await?;
                if admins <= 1 {
                    return Err(DbError::Conflict(format!(
                        "{} is the last server administrator; make another user an \
                         administrator first",
                        user.name
                    )));
                }
            }
            let workspaces: Vec<String> = workspace_members::table
                .filter(workspace_members::user_id.eq(user_id))
                .select(workspace_members::workspace_id)
                .load(conn)
                .await?;
            for workspace_id in &workspaces {
                let roles: Vec<String> = member_roles::table
                    .inner_join(workspace_roles::table)
                    .filter(member_roles::workspace_id.eq(workspace_id))
                    .filter(member_roles::user_id.eq(user_id))
                    .order(workspace_roles::slug.asc())
                    .select(workspace_roles::slug)
                    .load(conn)
                    .await?;
                let event = Event::new(
                    workspace_id,
                    EventType::RemovedFromWorkspace,
                    EventSource::WorkspaceMembership,
                    actor,
                    format!("{} removed (user deleted)", user.name),
                )
                .severity(Severity::Warn)
                .payload(json!({"user": user.name, "roles": roles, "userDeleted": true}));
                record_event!(conn, &event);
            }
            diesel::delete(users::table.find(user_id))
                .execute(conn)
                .await?;
            Ok(())
        })
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

    /// Deletes a user and, by cascade, all of its tokens and memberships, without the checks
    /// and events of [`Db::remove_user`] (which the API uses).
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
