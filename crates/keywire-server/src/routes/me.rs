//! Who am I.

use actix_web::{get, web};
use serde::Serialize;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::Caller;
use crate::error::Problem;
use crate::routes::iso;

/// Registers the routes.
pub fn config(cfg: &mut ServiceConfig) {
    cfg.service(me);
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

/// An API token, described without its value.
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
    /// When it stops working, if ever.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
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
        token: TokenInfo {
            id: token.id,
            name: token.name,
            prefix: token.prefix,
            created_at: iso(token.created_at),
            expires_at: token.expires_at.map(iso),
        },
    })
}
