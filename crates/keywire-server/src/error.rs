//! The one API error type, rendered as RFC 9457 problem details.
//!
//! Policy: handlers return `Result<_, ApiError>`. Bad input is 400/404/409/413/415/422 with a
//! `detail` and, for fields, `errors[].pointer` (RFC 6901, relative to the request body). A
//! database that cannot be reached is 503. Anything unexpected is logged with its cause and
//! answered as a 500 whose body says nothing of the cause. No message carries a secret value.

use actix_web::http::StatusCode;
use actix_web::http::header::{ContentType, WWW_AUTHENTICATE};
use actix_web::{HttpResponse, ResponseError};
use keywire_core::{FieldError, FieldErrors};
use keywire_db::DbError;
use serde::Serialize;

/// A failed request.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    detail: String,
    errors: Vec<FieldError>,
}

#[derive(Serialize, utoipa::ToSchema)]
/// An RFC 9457 problem document.
pub struct Problem {
    /// Always `about:blank`: `code` says which problem it is.
    #[serde(rename = "type")]
    pub problem_type: &'static str,
    /// The HTTP status phrase.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong, for people.
    pub detail: String,
    /// A stable machine-readable code (`not_found`, `invalid_field`, ...).
    pub code: &'static str,
    /// Invalid fields, each with a JSON pointer into the request body.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub errors: Vec<FieldError>,
}

impl ApiError {
    /// An error with a status, a code and a message.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    /// 400 with one or more invalid fields; pointers get `prefix` (`/metadata`) put before them.
    pub fn fields(errors: FieldErrors, prefix: &str) -> Self {
        let errors: Vec<FieldError> = errors
            .errors
            .into_iter()
            .map(|e| e.prefixed(prefix))
            .collect();
        let detail = match errors.as_slice() {
            [one] => format!(
                "{}: {}",
                if one.pointer.is_empty() {
                    "/"
                } else {
                    &one.pointer
                },
                one.detail
            ),
            many => format!("{} fields are invalid", many.len()),
        };
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_field",
            detail,
            errors,
        }
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    /// 401.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    /// 400 about the request as a whole.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", detail)
    }

    /// 413.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the request body exceeds {limit} bytes"),
        )
    }

    /// 503.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
    }

    /// 500, after logging the cause (which must not hold a secret).
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "an internal error occurred; it has been logged",
        )
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The problem document.
    pub fn problem(&self) -> Problem {
        Problem {
            problem_type: "about:blank",
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code,
            errors: self.errors.clone(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        response.insert_header(ContentType(
            "application/problem+json"
                .parse()
                .expect("valid media type"),
        ));
        if self.status == StatusCode::UNAUTHORIZED {
            response.insert_header((WWW_AUTHENTICATE, "Bearer realm=\"keywire\""));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header(("retry-after", "5"));
        }
        response.json(self.problem())
    }
}

impl From<DbError> for ApiError {
    fn from(err: DbError) -> Self {
        match err {
            DbError::Unavailable(_) => {
                tracing::warn!(error = %err, "database unavailable");
                ApiError::unavailable("the database is unavailable; try again shortly")
            }
            DbError::NotFound => ApiError::not_found("not found"),
            DbError::Conflict(_) => ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "the change conflicts with another one; try again",
            ),
            DbError::InvalidInput(why) => ApiError::bad_request(why),
            other => ApiError::internal(&other),
        }
    }
}
