//! HTTP routes, one module per area; each exposes `config`.

pub mod health;
pub mod integration_types;
pub mod me;

use serde::Serialize;

/// The envelope of every list response. Lists that can grow are paginated by cursor:
/// `?limit=` (1–200, default 50) and `?cursor=` from the previous page's `nextCursor`;
/// `nextCursor` is absent on the last page.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct List<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Pass as `?cursor=` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}
