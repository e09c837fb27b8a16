//! Users of the server, managed by server administrators.
//!
//! Administrators create users directly (there is no sign-up and no e-mail); a new user comes
//! with a first API token, shown once in the answer. Only a server administrator calling with
//! an unlimited token may use these routes: a token limited to some authorities never
//! administers the server.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, delete, get, post, web};
use keywire_core::FieldErrors;
use keywire_db::{DbError, User, check_user_name};
use serde::{Deserialize, Serialize};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::Caller;
use crate::error::{ApiError, Problem};
use crate::routes::members::explained;
use crate::routes::{List, PageQuery, iso};
use crate::state::AppState;

/// The name of the token a new user gets.
pub const FIRST_TOKEN_NAME: &str = "first";

/// Registers the routes.
pub fn config(cfg: &mut ServiceConfig) {
    cfg.service(create_user)
        .service(list_users)
        .service(get_user)
        .service(delete_user);
}

/// A user (never with a token).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    /// The user's id.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Whether the user administers the server.
    pub is_admin: bool,
    /// Creation time (RFC 3339).
    pub created_at: String,
}

impl From<User> for UserView {
    fn from(user: User) -> Self {
        UserView {
            id: user.id,
            name: user.name,
            is_admin: user.is_admin,
            created_at: iso(user.created_at),
        }
    }
}

/// A new user with its first token.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedUser {
    /// The user.
    pub user: UserView,
    /// The user's first API token (named `first`), shown only in this answer: hand it over.
    pub token: String,
}

/// Body of `POST /users`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UserBody {
    /// 1–64 ASCII letters, digits and `. _ - @`, starting with a letter or digit; unique.
    pub name: String,
    /// Whether the user administers the server (default `false`).
    #[serde(default)]
    pub is_admin: bool,
}

/// 403 unless the caller is a server administrator using an unlimited token.
fn require_server_admin(caller: &Caller) -> Result<(), ApiError> {
    if !caller.user.is_admin {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only server administrators manage users",
        ));
    }
    if caller.token.authorities.is_some() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "a token limited to some authorities cannot manage users",
        ));
    }
    Ok(())
}

async fn user_named(state: &AppState, name: &str) -> Result<User, ApiError> {
    match state.db.user_by_name(name).await {
        Ok(user) => Ok(user),
        Err(DbError::NotFound) => Err(ApiError::not_found(format!(
            "no user `{}`",
            name.chars().take(64).collect::<String>()
        ))),
        Err(other) => Err(other.into()),
    }
}

/// Creates a user with a first API token, returned once.
#[utoipa::path(tag = "users", security(("bearer" = [])), request_body = UserBody, responses(
    (status = 201, description = "Created; `token` is shown only now", body = CreatedUser),
    (status = 400, description = "Invalid name (`/name`)", body = Problem),
    (status = 401, description = "No valid token", body = Problem),
    (status = 403, description = "Not a server administrator, or a limited token", body = Problem),
    (status = 409, description = "The name is taken", body = Problem),
))]
#[post("/users")]
async fn create_user(
    state: web::Data<AppState>,
    caller: Caller,
    body: crate::body::Body<UserBody>,
) -> Result<HttpResponse, ApiError> {
    require_server_admin(&caller)?;
    let body = body.0;
    check_user_name(&body.name)
        .map_err(|why| ApiError::fields(FieldErrors::one("/name", why), ""))?;
    let (user, token) = state
        .db
        .create_user_with_token(&body.name, body.is_admin, FIRST_TOKEN_NAME)
        .await
        .map_err(explained)?;
    tracing::info!(user = %user.id, admin = user.is_admin, by = %caller.user.id, "user created");
    Ok(HttpResponse::Created().json(CreatedUser {
        user: user.into(),
        token: token.secret,
    }))
}

/// Every user, by name.
#[utoipa::path(tag = "users", security(("bearer" = [])), params(PageQuery), responses(
    (status = 200, description = "One page of users", body = List<UserView>),
    (status = 400, description = "Bad cursor or limit", body = Problem),
    (status = 401, description = "No valid token", body = Problem),
    (status = 403, description = "Not a server administrator, or a limited token", body = Problem),
))]
#[get("/users")]
async fn list_users(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<PageQuery>,
) -> Result<web::Json<List<UserView>>, ApiError> {
    require_server_admin(&caller)?;
    let page = state.db.list_users_page(&query.page()).await?;
    Ok(web::Json(List::of(page, UserView::from)))
}

/// One user.
#[utoipa::path(tag = "users", security(("bearer" = [])),
    params(("user" = String, Path, description = "User name")),
    responses(
        (status = 200, description = "The user", body = UserView),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Not a server administrator, or a limited token", body = Problem),
        (status = 404, description = "No such user", body = Problem),
    ))]
#[get("/users/{user}")]
async fn get_user(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<UserView>, ApiError> {
    require_server_admin(&caller)?;
    Ok(web::Json(user_named(&state, &path).await?.into()))
}

/// Deletes a user with its tokens and memberships (each workspace it belonged to records
/// `REMOVED_FROM_WORKSPACE`).
#[utoipa::path(tag = "users", security(("bearer" = [])),
    params(("user" = String, Path, description = "User name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Not a server administrator, or a limited token", body = Problem),
        (status = 404, description = "No such user", body = Problem),
        (status = 409, description = "The caller's own user, or the last server administrator", body = Problem),
    ))]
#[delete("/users/{user}")]
async fn delete_user(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    require_server_admin(&caller)?;
    let user = user_named(&state, &path).await?;
    if user.id == caller.user.id {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "you cannot delete your own user; ask another administrator",
        ));
    }
    match state.db.remove_user(&user.id, &caller.actor()).await {
        Ok(()) => {}
        Err(DbError::NotFound) => return Err(ApiError::not_found("no such user")),
        Err(other) => return Err(explained(other)),
    }
    tracing::info!(user = %user.id, by = %caller.user.id, "user deleted");
    Ok(HttpResponse::NoContent().finish())
}
