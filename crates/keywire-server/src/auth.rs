//! Bearer-token authentication.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use keywire_db::{ApiToken, User};

use crate::error::ApiError;
use crate::state::AppState;

/// The authenticated caller of a request: extracting it answers 401 when the request has no
/// valid `Authorization: Bearer <token>`.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who is calling.
    pub user: User,
    /// With which token.
    pub token: ApiToken,
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Caller, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let header = req
            .headers()
            .get(AUTHORIZATION)
            .map(|v| v.to_str().map(str::to_owned));
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal(&"application state missing"))?;
            let token = match header {
                None => {
                    return Err(ApiError::unauthorized(
                        "send `Authorization: Bearer <token>`",
                    ));
                }
                Some(Err(_)) => {
                    return Err(ApiError::unauthorized(
                        "the Authorization header is not valid text",
                    ));
                }
                Some(Ok(value)) => match value.split_once(' ') {
                    Some((scheme, token))
                        if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
                    {
                        token.trim().to_owned()
                    }
                    _ => {
                        return Err(ApiError::unauthorized(
                            "the Authorization header must be `Bearer <token>`",
                        ));
                    }
                },
            };
            // Spawned, not awaited in place: actix drops the other extractors' futures when one
            // fails (a bad body), and an unfinished SQLite query must never be dropped.
            let db = state.db.clone();
            let lookup = state
                .background
                .spawn(async move { db.authenticate(&token).await });
            let found = lookup.await.map_err(|e| ApiError::internal(&e))??;
            match found {
                Some((user, token)) => Ok(Caller { user, token }),
                None => Err(ApiError::unauthorized(
                    "the token is not valid (unknown, revoked or expired)",
                )),
            }
        })
    }
}
