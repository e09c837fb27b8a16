//! The one shared context of the server, in `web::Data`.

use actix_web::HttpRequest;
use keywire_core::OutboundClient;
use keywire_db::{Cipher, Db};

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The database.
    pub db: Db,
    /// A multi-threaded runtime for work that must not be cancelled with a request (see
    /// docs/ARCHITECTURE.md: dropping an unfinished SQLite query on an actix worker panics).
    pub background: tokio::runtime::Handle,
    /// Delivery counters for `/metrics`.
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
    /// The master key: seals secret values at rest.
    pub cipher: Cipher,
    /// The guarded outbound HTTP client.
    pub http: OutboundClient,
    /// Where people reach keywire.
    pub public_url: Option<String>,
    /// The largest request body accepted.
    pub max_body_bytes: usize,
    /// The OpenAPI document, generated from the handlers at start-up. Shared, not owned:
    /// the state is cloned for every task it is handed to.
    pub openapi: std::sync::Arc<serde_json::Value>,
}

/// The body limit configured for this server.
pub fn body_limit(req: &HttpRequest) -> usize {
    req.app_data::<actix_web::web::Data<AppState>>()
        .map_or(1024 * 1024, |s| s.max_body_bytes)
}
