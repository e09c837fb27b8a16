//! Events: every change writes one, in the same transaction as the change.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use keywire_core::{Actor, EventSource, EventType, Severity};
use serde_json::Value;

use crate::db::with_conn;
use crate::schema::events;
use crate::tokens::{new_id, now};
use crate::util::{Page, PageRequest};
use crate::{Db, DbError};

/// An event row.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = events)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct Event {
    /// UUID.
    pub id: String,
    /// The workspace.
    pub workspace_id: String,
    /// The project, if the event belongs to one.
    pub project_id: Option<String>,
    /// JSON array of the environment ids it touches.
    pub environment_ids: String,
    /// `SECRET_UPDATED`...
    pub event_type: String,
    /// `SECRET`...
    pub source: String,
    /// `INFO`, `WARN`, `ERROR`.
    pub severity: String,
    /// Who did it.
    pub actor_id: String,
    /// Their name then.
    pub actor_name: String,
    /// One-line summary.
    pub title: String,
    /// JSON details: names, slugs, versions; never a value.
    pub payload: String,
    /// When (UTC).
    pub created_at: NaiveDateTime,
}

fn wire<T: serde::Serialize>(value: T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

impl Event {
    /// A new event in `workspace_id`, `INFO` unless changed with [`Event::severity`].
    pub fn new(
        workspace_id: &str,
        event_type: EventType,
        source: EventSource,
        actor: &Actor,
        title: impl Into<String>,
    ) -> Event {
        Event {
            id: new_id(),
            workspace_id: workspace_id.to_owned(),
            project_id: None,
            environment_ids: "[]".into(),
            event_type: event_type.as_str().to_owned(),
            source: wire(source),
            severity: wire(Severity::Info),
            actor_id: actor.id.clone(),
            actor_name: actor.name.clone(),
            title: title.into(),
            payload: "{}".into(),
            created_at: now(),
        }
    }

    /// Belongs to a project.
    pub fn project(mut self, project_id: &str) -> Event {
        self.project_id = Some(project_id.to_owned());
        self
    }

    /// Touches these environments (ids).
    pub fn environments<S: AsRef<str>>(mut self, ids: &[S]) -> Event {
        let ids: Vec<&str> = ids.iter().map(AsRef::as_ref).collect();
        self.environment_ids = serde_json::to_string(&ids).expect("strings serialize");
        self
    }

    /// Details: names, slugs, versions. Never a value.
    pub fn payload(mut self, payload: Value) -> Event {
        self.payload = payload.to_string();
        self
    }

    /// How much it matters.
    pub fn severity(mut self, severity: Severity) -> Event {
        self.severity = wire(severity);
        self
    }

    /// The environment ids.
    pub fn environment_id_list(&self) -> Vec<String> {
        serde_json::from_str(&self.environment_ids).unwrap_or_default()
    }
}

/// Writes an event on `$conn` inside the caller's transaction. This is the one hook through
/// which every change reaches integrations: delivery fan-out belongs here, so it commits or
/// rolls back with the change.
macro_rules! record_event {
    ($conn:expr, $event:expr) => {{
        let event: &$crate::events::Event = $event;
        ::diesel::insert_into($crate::schema::events::table)
            .values(event)
            .execute(&mut *$conn)
            .await?;
        $crate::delivery::fan_out!($conn, event);
    }};
}
pub(crate) use record_event;

/// Which events to list.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only these types.
    pub types: Vec<String>,
    /// Only this source.
    pub source: Option<String>,
    /// Only events of this project (id).
    pub project_id: Option<String>,
    /// Only events at or after this time (UTC).
    pub since: Option<NaiveDateTime>,
}

impl Db {
    /// One event of a workspace, if it exists.
    ///
    /// # Errors
    ///
    /// Any [`DbError`].
    pub async fn event_by_id(
        &self,
        workspace_id: &str,
        id: &str,
    ) -> Result<Option<Event>, DbError> {
        with_conn!(self, |conn| {
            Ok(events::table
                .filter(events::workspace_id.eq(workspace_id))
                .filter(events::id.eq(id))
                .select(Event::as_select())
                .first(conn)
                .await
                .optional()?)
        })
    }

    /// Events of a workspace, newest first, filtered, one page at a time.
    ///
    /// # Errors
    ///
    /// [`DbError::InvalidInput`] for a cursor this server did not make, or any [`DbError`].
    pub async fn list_events(
        &self,
        workspace_id: &str,
        filter: &EventFilter,
        page: &PageRequest,
    ) -> Result<Page<Event>, DbError> {
        let after = page
            .after
            .as_deref()
            .map(crate::util::decode_time_cursor)
            .transpose()?;
        let limit = page.limit();
        let rows: Vec<Event> = with_conn!(self, |conn| {
            let mut query = events::table
                .filter(events::workspace_id.eq(workspace_id))
                .into_boxed();
            if !filter.types.is_empty() {
                query = query.filter(events::event_type.eq_any(&filter.types));
            }
            if let Some(source) = &filter.source {
                query = query.filter(events::source.eq(source));
            }
            if let Some(project) = &filter.project_id {
                query = query.filter(events::project_id.eq(project));
            }
            if let Some(since) = filter.since {
                query = query.filter(events::created_at.ge(since));
            }
            if let Some((at, id)) = &after {
                query = query.filter(
                    events::created_at
                        .lt(at)
                        .or(events::created_at.eq(at).and(events::id.lt(id))),
                );
            }
            query
                .order((events::created_at.desc(), events::id.desc()))
                .limit(limit + 1)
                .select(Event::as_select())
                .load(conn)
                .await?
        });
        Ok(Page::from_rows(rows, limit, |e| {
            crate::util::time_key(e.created_at, &e.id)
        }))
    }
}
