//! JSON request bodies whose errors name the failing field by JSON pointer.

use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use keywire_core::FieldErrors;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON body of type `T`. Wrong content type is 415; invalid JSON 400; a wrong or missing
/// field 400 with `errors[0].pointer`; a body over the configured limit 413.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Body<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Body<T>, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = req
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                let media = ct
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase();
                media == "application/json" || media.ends_with("+json")
            });
        let bytes = web::Bytes::from_request(req, payload);
        let limit = crate::state::body_limit(req);
        Box::pin(async move {
            if !json {
                return Err(ApiError::new(
                    actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "send the body as `Content-Type: application/json`",
                ));
            }
            let bytes = bytes.await.map_err(|err| {
                match err.as_error::<actix_web::error::PayloadError>() {
                    Some(actix_web::error::PayloadError::Overflow) => ApiError::too_large(limit),
                    _ => ApiError::bad_request("the request body could not be read"),
                }
            })?;
            parse(&bytes).map(Body)
        })
    }
}

/// Parses JSON into `T`, mapping errors to problem responses with JSON pointers.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|err| {
        ApiError::bad_request(format!(
            "the body is not valid JSON (line {}, column {})",
            err.line(),
            err.column()
        ))
    })?;
    // serde reads a struct from an array too: every body is an object.
    if !value.is_object() {
        return Err(ApiError::fields(
            FieldErrors::one("", "the body must be a JSON object"),
            "",
        ));
    }
    // No text keywire stores may hold NUL (PostgreSQL cannot store it; C tools stop at it).
    if let Some(pointer) = nul_at(&value, String::new()) {
        return Err(ApiError::fields(
            FieldErrors::one(pointer, "must not contain the NUL character"),
            "",
        ));
    }
    keywire_core::deserialize_pointed(&value)
        .map_err(|err| ApiError::fields(FieldErrors::from(err), ""))
}

/// The JSON pointer of the first string (or object key) holding a NUL character.
fn nul_at(value: &serde_json::Value, at: String) -> Option<String> {
    match value {
        serde_json::Value::String(s) if s.contains('\0') => Some(at),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| nul_at(v, format!("{at}/{i}"))),
        serde_json::Value::Object(map) => map.iter().find_map(|(k, v)| {
            let here = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
            if k.contains('\0') {
                Some(here)
            } else {
                nul_at(v, here)
            }
        }),
        _ => None,
    }
}

/// For PATCH bodies: a field that is absent (`None`), `null` (`Some(None)`: clear it) or set.
/// Use with `#[serde(default, deserialize_with = "crate::body::nullable")]`.
pub fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}
