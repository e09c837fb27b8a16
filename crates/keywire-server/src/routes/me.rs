//! Who am I, and my API tokens.
//!
//! A token may be limited to some authorities (it then acts with the intersection of those and
//! what its user holds in each workspace) and may expire. A token never creates a token with
//! more power than itself: a limited token creates tokens limited to a subset of its own
//! authorities (its own limit when none is asked for), and an expiring token creates tokens
//! that expire no later than it does (its own expiry when none is asked for).

use std::collections::BTreeSet;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, delete, get, post, web};
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use keywire_core::FieldErrors;
use keywire_db::util::check_name;
use keywire_db::{ApiToken, Authority, DbError};
use serde::{Deserialize, Serialize};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::Caller;
use crate::body::Body;
use crate::error::{ApiError, Problem};
use crate::routes::members::parse_authority_names;
use crate::routes::{List, PageQuery, iso};
use crate::state::AppState;

/// Longest lifetime `expiresInDays` may ask for (ten years).
pub const MAX_TOKEN_DAYS: u32 = 3650;

/// Registers the routes.
pub fn config(cfg: &mut ServiceConfig) {
    cfg.service(me)
        .service(create_token)
        .service(list_tokens)
        .service(revoke_token);
}

/// The caller and the token in use (never the token itself).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Me {
    /// The user's id.
    pub id: String,
    /// The user's name.
    pub name: String,
    /// Whether the user administers the server.
    pub is_admin: bool,
    /// The token used for this request.
    pub token: TokenInfo,
}

/// An API token, described without its value or hash.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    /// The token's id.
    pub id: String,
    /// Its label.
    pub name: String,
    /// Its first characters, to tell tokens apart.
    pub prefix: String,
    /// When it was created (RFC 3339, UTC).
    pub created_at: String,
    /// When it last authenticated a request (to the minute), if ever.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<String>,
    /// When it stops working, if ever.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// The authorities it is limited to; `null`: all of its user's.
    pub authorities: Option<Vec<String>>,
}

impl From<ApiToken> for TokenInfo {
    fn from(token: ApiToken) -> Self {
        let authorities = token
            .authority_limit()
            .map(|set| set.iter().map(|a| a.as_str().to_owned()).collect());
        TokenInfo {
            id: token.id,
            name: token.name,
            prefix: token.prefix,
            created_at: iso(token.created_at),
            last_used_at: token.last_used_at.map(iso),
            expires_at: token.expires_at.map(iso),
            authorities,
        }
    }
}

/// A new token: its description and, once, the token itself.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedToken {
    /// What is stored.
    #[serde(flatten)]
    pub info: TokenInfo,
    /// The token for `Authorization: Bearer`, shown only in this answer.
    pub token: String,
}

/// Body of `POST /me/tokens`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TokenBody {
    /// A label, 1–64 characters.
    pub name: String,
    /// Limit the token to these authorities (`READ_SECRET`...); absent: all of the user's.
    #[serde(default)]
    pub authorities: Option<Vec<String>>,
    /// When the token stops working (RFC 3339, in the future).
    #[serde(default)]
    pub expires_at: Option<String>,
    /// Or: how many days from now it stops working (1–3650).
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

fn invalid(pointer: &str, detail: impl Into<String>) -> ApiError {
    ApiError::fields(FieldErrors::one(pointer, detail), "")
}

fn forbidden(detail: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", detail)
}

/// The authenticated user.
#[utoipa::path(tag = "users", security(("bearer" = [])), responses(
    (status = 200, description = "The caller", body = Me),
    (status = 401, description = "No valid token", body = Problem),
))]
#[get("/me")]
async fn me(caller: Caller) -> web::Json<Me> {
    let Caller { user, token } = caller;
    web::Json(Me {
        id: user.id,
        name: user.name,
        is_admin: user.is_admin,
        token: token.into(),
    })
}

/// The expiry asked for by `body`, checked (UTC).
fn expiry(body: &TokenBody, now: DateTime<Utc>) -> Result<Option<NaiveDateTime>, ApiError> {
    match (&body.expires_at, body.expires_in_days) {
        (Some(_), Some(_)) => Err(invalid(
            "/expiresInDays",
            "give expiresAt or expiresInDays, not both",
        )),
        (Some(at), None) => {
            let at = DateTime::parse_from_rfc3339(at)
                .map_err(|_| {
                    invalid(
                        "/expiresAt",
                        "must be an RFC 3339 time, e.g. 2030-01-31T12:00:00Z",
                    )
                })?
                .with_timezone(&Utc);
            if at <= now {
                return Err(invalid("/expiresAt", "must be in the future"));
            }
            Ok(Some(at.naive_utc()))
        }
        (None, Some(days)) => {
            if days == 0 || days > MAX_TOKEN_DAYS {
                return Err(invalid(
                    "/expiresInDays",
                    format!("must be 1 to {MAX_TOKEN_DAYS}"),
                ));
            }
            Ok(Some((now + TimeDelta::days(i64::from(days))).naive_utc()))
        }
        (None, None) => Ok(None),
    }
}

/// Issues a token for the caller, returned once.
#[utoipa::path(tag = "users", security(("bearer" = [])), request_body = TokenBody, responses(
    (status = 201, description = "Created; `token` is shown only now", body = CreatedToken),
    (status = 400, description = "Invalid field: name, an unknown authority (`/authorities/{i}`), an expiry in the past or unreadable", body = Problem),
    (status = 401, description = "No valid token", body = Problem),
    (status = 403, description = "The calling token is limited or expires, and the new one would have more authorities or live longer", body = Problem),
))]
#[post("/me/tokens")]
async fn create_token(
    state: web::Data<AppState>,
    caller: Caller,
    body: Body<TokenBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let name = check_name(&body.name).map_err(|why| invalid("/name", why))?;
    let asked = match &body.authorities {
        None => None,
        Some(names) if names.is_empty() => {
            return Err(invalid(
                "/authorities",
                "give at least one authority, or leave it out for all of yours",
            ));
        }
        Some(names) => Some(parse_authority_names(names, "/authorities")?),
    };
    let mut expires_at = expiry(&body, Utc::now())?;

    // Never more than the calling token.
    let own: Option<BTreeSet<Authority>> = caller.token.authority_limit();
    let authorities = match (own, asked) {
        (None, asked) => asked,
        (Some(own), None) => Some(own),
        (Some(own), Some(asked)) => {
            if !own.contains(&Authority::WorkspaceAdmin) && !asked.is_subset(&own) {
                return Err(forbidden(
                    "this token is limited: a token it creates may hold only its authorities",
                ));
            }
            Some(asked)
        }
    };
    if let Some(own) = caller.token.expires_at {
        match expires_at {
            None => expires_at = Some(own),
            Some(asked) if asked > own => {
                return Err(forbidden(
                    "this token expires: a token it creates must expire no later",
                ));
            }
            Some(_) => {}
        }
    }

    let issued = state
        .db
        .create_limited_token(&caller.user.id, &name, expires_at, authorities.as_ref())
        .await?;
    Ok(HttpResponse::Created().json(CreatedToken {
        info: issued.token.into(),
        token: issued.secret,
    }))
}

/// The caller's tokens, oldest first (never the tokens themselves).
#[utoipa::path(tag = "users", security(("bearer" = [])), params(PageQuery), responses(
    (status = 200, description = "One page of tokens", body = List<TokenInfo>),
    (status = 400, description = "Bad cursor or limit", body = Problem),
    (status = 401, description = "No valid token", body = Problem),
))]
#[get("/me/tokens")]
async fn list_tokens(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<PageQuery>,
) -> Result<web::Json<List<TokenInfo>>, ApiError> {
    let page = state
        .db
        .list_tokens_page(&caller.user.id, &query.page())
        .await?;
    Ok(web::Json(List::of(page, TokenInfo::from)))
}

/// Revokes one of the caller's tokens (the one in use too); it stops working at once.
#[utoipa::path(tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "The token's id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "No valid token", body = Problem),
        (status = 404, description = "The caller has no token with this id", body = Problem),
    ))]
#[delete("/me/tokens/{id}")]
async fn revoke_token(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    match state.db.revoke_token(&caller.user.id, &path).await {
        Ok(()) => Ok(HttpResponse::NoContent().finish()),
        Err(DbError::NotFound) => Err(ApiError::not_found("you have no token with this id")),
        Err(other) => Err(other.into()),
    }
}
