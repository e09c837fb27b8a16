//! The web console: plain HTML, CSS and JavaScript modules from `crates/keywire-server/console/`,
//! embedded in the binary at build time and served at `/` (the page) and `/console/{file}`
//! (its assets). Nothing is fetched from elsewhere at run time and there is no build step.
//!
//! - Every response carries a strict Content-Security-Policy (`default-src 'self'`, no inline
//!   script or style, no framing), `nosniff` and `no-referrer`.
//! - Caching: `no-cache` with a strong `ETag` (a hash of the file), so a browser revalidates
//!   each load and gets `304 Not Modified` until a new binary serves new bytes. (Hashed file
//!   names would need the module imports rewritten: this keeps the files as written.)
//! - The console talks to `/api/v1` with the bearer token the user signs in with (kept in
//!   session storage; no cookies), so these routes need no authentication themselves.
//!
//! These routes are not part of the API and are left out of `/openapi.json`.

use std::sync::OnceLock;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, guard, web};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::error::ApiError;

/// The Content-Security-Policy of every console response.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self'; connect-src 'self'; font-src 'self'; object-src 'none'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The most bytes the console's assets may add up to (the first load fetches all of them).
pub const MAX_TOTAL_BYTES: usize = 200 * 1024;

/// One embedded file of the console.
#[derive(Debug)]
pub struct Asset {
    /// File name in `console/`, also its URL below `/console/`.
    pub name: &'static str,
    /// The `Content-Type` it is served with.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $content_type:expr) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_bytes!(concat!("../../console/", $name)),
        }
    };
}

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// Every file of the console (a test checks that this list and the directory agree).
pub const ASSETS: &[Asset] = &[
    asset!("index.html", HTML),
    asset!("style.css", CSS),
    asset!("icon.svg", SVG),
    asset!("app.mjs", JS),
    asset!("api.mjs", JS),
    asset!("dom.mjs", JS),
    asset!("form-model.mjs", JS),
    asset!("form-view.mjs", JS),
    asset!("page-workspaces.mjs", JS),
    asset!("page-project.mjs", JS),
    asset!("page-integrations.mjs", JS),
    asset!("page-integration.mjs", JS),
    asset!("page-integration-form.mjs", JS),
];

/// The total size of the embedded assets, in bytes.
pub fn total_bytes() -> usize {
    ASSETS.iter().map(|a| a.body.len()).sum()
}

/// Registers `/` and `/console/{file}` (GET and HEAD).
pub fn config(cfg: &mut ServiceConfig) {
    let read = || web::route().guard(guard::Any(guard::Get()).or(guard::Head()));
    cfg.route("/", read().to(index))
        .route("/console/{file}", read().to(file));
}

/// FNV-1a, 64 bits: enough to tell two versions of a file apart (not a security measure).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The `ETag` of each asset, in the order of [`ASSETS`].
fn etags() -> &'static [String] {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| format!("\"{:016x}-{:x}\"", fnv1a(a.body), a.body.len()))
            .collect()
    })
}

fn serve(req: &HttpRequest, index: usize) -> HttpResponse {
    let asset = &ASSETS[index];
    let etag = &etags()[index];
    let matches = req
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| {
            let tag = tag.trim();
            tag == "*" || tag.trim_start_matches("W/") == etag
        });
    let mut response = if matches {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::ETAG, etag.as_str()))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"));
    if matches {
        return response.finish();
    }
    response
        .insert_header((header::CONTENT_TYPE, asset.content_type))
        .body(asset.body)
}

/// The console's page.
async fn index(req: HttpRequest) -> HttpResponse {
    let at = ASSETS
        .iter()
        .position(|a| a.name == "index.html")
        .expect("the console has an index.html");
    serve(&req, at)
}

/// One asset of the console.
async fn file(req: HttpRequest, name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    match ASSETS.iter().position(|a| a.name == name.as_str()) {
        Some(at) => Ok(serve(&req, at)),
        None => {
            let shown: String = name.chars().take(64).collect();
            Err(ApiError::not_found(format!(
                "the console has no file `{shown}`"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_differ_when_bytes_differ() {
        assert_ne!(fnv1a(b"a"), fnv1a(b"b"));
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        let tags = etags();
        assert_eq!(tags.len(), ASSETS.len());
        assert!(tags.iter().all(|t| t.starts_with('"') && t.ends_with('"')));
    }

    #[test]
    fn content_types_follow_the_extension() {
        for asset in ASSETS {
            let expected = match asset.name.rsplit_once('.').map(|(_, ext)| ext) {
                Some("html") => HTML,
                Some("css") => CSS,
                Some("mjs") => JS,
                Some("svg") => SVG,
                other => panic!("{}: no content type for {other:?}", asset.name),
            };
            assert_eq!(asset.content_type, expected, "{}", asset.name);
        }
    }
}
