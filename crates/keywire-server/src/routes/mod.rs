//! HTTP routes, one module per area; each exposes `config`.

pub mod console;
pub mod entries;
pub mod events;
pub mod health;
pub mod integration_types;
pub mod integrations;
pub mod me;
pub mod members;
pub mod runs;
pub mod sync;
pub mod users;
pub mod workspaces;

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

/// `?limit=&cursor=` of a paginated list.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Items per page, 1–200 (default 50).
    pub limit: Option<u32>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageQuery {
    /// As the database's page request.
    pub fn page(&self) -> keywire_db::PageRequest {
        keywire_db::PageRequest {
            limit: self.limit,
            after: self.cursor.clone(),
        }
    }
}

impl<T> List<T> {
    /// A list response from a page of rows mapped to views.
    pub fn of<R>(page: keywire_db::Page<R>, view: impl Fn(R) -> T) -> Self {
        List {
            items: page.items.into_iter().map(view).collect(),
            next_cursor: page.next_cursor,
        }
    }
}

/// RFC 3339 (UTC, milliseconds) for a naive UTC timestamp from the database.
pub fn iso(at: chrono::NaiveDateTime) -> String {
    at.and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
