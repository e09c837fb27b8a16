//! Configured integrations: create, read, list (keyset pages), update and delete.
//!
//! Metadata is stored as an AEAD ciphertext of its JSON, bound to `integrations/<id>`, so it is
//! never in the database in clear and a ciphertext copied to another row does not open. Every
//! change records its event (`INTEGRATION_ADDED`, `INTEGRATION_UPDATED`,
//! `INTEGRATION_DELETED`) in the same transaction; the payloads hold the integration's slug,
//! type and name, never metadata.
//!
//! What a type permits (events, actions, scope, metadata shape) is checked by the caller
//! against the registry; this module keeps the rules the database can keep race-free: names
//! unique per workspace, slugs unique everywhere, environments of the integration's project,
//! and no lost update when two changes race.

use std::collections::HashMap;
use std::fmt;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;
use keywire_core::{Actor, EventSource, EventType, Severity};
use serde_json::{Value, json};

use crate::crypto::Cipher;
use crate::db::{transaction, with_conn};
use crate::delivery::enqueue_sync_on;
use crate::events::{Event, record_event};
use crate::schema::{
    environments, integration_environments, integration_sync, integrations, projects,
};
use crate::tokens::{new_id, now};
use crate::util::{Page, PageRequest, decode_cursor, encode_cursor, first_free_slug, slugify};
use crate::{Db, DbError, Environment, Project, Workspace};

diesel::define_sql_function!(
    /// SQL `LOWER(text)`, on both backends.
    fn lower(x: Text) -> Text
);

/// An integration as stored, with its project and environments by slug. The metadata stays
/// sealed until [`StoredIntegration::open_metadata`] is called; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredIntegration {
    /// UUID.
    pub id: String,
    /// The workspace.
    pub workspace_id: String,
    /// Stable, globally unique, URL-safe.
    pub slug: String,
    /// Unique in the workspace.
    pub name: String,
    /// The registry type id (`discord`).
    pub integration_type: String,
    /// `communication` or `infrastructure`.
    pub category: String,
    /// Event type names it is subscribed to.
    pub notify_on: Vec<String>,
    /// Action names it is allowed.
    pub actions: Vec<String>,
    /// The project it is narrowed to, if any.
    pub project_id: Option<String>,
    /// That project's slug.
    pub project_slug: Option<String>,
    /// The environments it is narrowed to (ids), in the order of `environment_slugs`.
    pub environment_ids: Vec<String>,
    /// The same environments by slug, sorted.
    pub environment_slugs: Vec<String>,
    /// Whether it receives anything.
    pub enabled: bool,
    /// Who created it.
    pub created_by: Option<String>,
    /// Creation time (UTC).
    pub created_at: NaiveDateTime,
    /// Last change (UTC).
    pub updated_at: NaiveDateTime,
    /// Sync settings JSON (infrastructure types): key template, conflict policy, and a target
    /// per environment id.
    pub sync_settings: Option<String>,
    sealed_metadata: String,
}

impl fmt::Debug for StoredIntegration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredIntegration")
            .field("slug", &self.slug)
            .field("type", &self.integration_type)
            .field("project", &self.project_slug)
            .field("environments", &self.environment_slugs)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

fn aad(id: &str) -> String {
    format!("integrations/{id}")
}

impl StoredIntegration {
    /// Decrypts the metadata JSON.
    ///
    /// # Errors
    ///
    /// [`DbError::Other`] naming the integration and why it does not open (another master
    /// key, a damaged value); never any of its content.
    pub fn open_metadata(&self, cipher: &Cipher) -> Result<Value, DbError> {
        let text = cipher
            .open_text(&self.sealed_metadata, &aad(&self.id))
            .map_err(|why| {
                DbError::Other(format!(
                    "the metadata of integration `{}` cannot be decrypted: {why}",
                    self.slug
                ))
            })?;
        serde_json::from_str(&text).map_err(|_| {
            DbError::Other(format!(
                "the metadata of integration `{}` is not JSON",
                self.slug
            ))
        })
    }
}

/// An `integrations` row as stored.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = integrations)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
struct Row {
    id: String,
    workspace_id: String,
    slug: String,
    name: String,
    integration_type: String,
    category: String,
    notify_on: String,
    actions: String,
    project_id: Option<String>,
    metadata: String,
    enabled: bool,
    created_by: Option<String>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

impl Row {
    fn into_stored(
        self,
        project_slug: Option<String>,
        environments: Vec<(String, String)>,
    ) -> StoredIntegration {
        let (environment_ids, environment_slugs) = environments.into_iter().unzip();
        StoredIntegration {
            id: self.id,
            workspace_id: self.workspace_id,
            slug: self.slug,
            name: self.name,
            integration_type: self.integration_type,
            category: self.category,
            notify_on: serde_json::from_str(&self.notify_on).unwrap_or_default(),
            actions: serde_json::from_str(&self.actions).unwrap_or_default(),
            project_id: self.project_id,
            project_slug,
            environment_ids,
            environment_slugs,
            enabled: self.enabled,
            created_by: self.created_by,
            created_at: self.created_at,
            updated_at: self.updated_at,
            sync_settings: None,
            sealed_metadata: self.metadata,
        }
    }
}

/// A new integration, checked by the caller against its type.
#[derive(Debug, Clone, Copy)]
pub struct NewIntegration<'a> {
    /// Display name, unique in the workspace; the slug comes from it.
    pub name: &'a str,
    /// The registry type id.
    pub integration_type: &'a str,
    /// `communication` or `infrastructure`.
    pub category: &'a str,
    /// Event type names.
    pub notify_on: &'a [String],
    /// Action names.
    pub actions: &'a [String],
    /// The project it is narrowed to (of the same workspace).
    pub project: Option<&'a Project>,
    /// Environments of that project it is narrowed to.
    pub environments: &'a [Environment],
    /// The metadata, sealed before it is stored.
    pub metadata: &'a Value,
    /// Whether it receives anything.
    pub enabled: bool,
    /// Sync settings JSON (infrastructure types).
    pub sync_settings: Option<&'a str>,
}

/// Changes to an integration; `None` leaves a field as it is. The type and the project never
/// change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IntegrationChanges {
    /// A new name (the slug stays).
    pub name: Option<String>,
    /// New event subscriptions (replace the old ones).
    pub notify_on: Option<Vec<String>>,
    /// New actions (replace the old ones).
    pub actions: Option<Vec<String>>,
    /// New environments of the integration's project (replace the old ones).
    pub environments: Option<Vec<Environment>>,
    /// Enable or disable it.
    pub enabled: Option<bool>,
    /// The complete new metadata (the caller merges a patch into the stored value first).
    pub metadata: Option<Value>,
    /// New sync settings JSON (infrastructure types).
    pub sync_settings: Option<String>,
}

impl IntegrationChanges {
    /// The names of the fields this changes, for the event payload.
    fn field_names(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        let fields: [(&'static str, bool); 7] = [
            ("name", self.name.is_some()),
            ("notifyOn", self.notify_on.is_some()),
            ("actions", self.actions.is_some()),
            ("environmentSlugs", self.environments.is_some()),
            ("enabled", self.enabled.is_some()),
            ("metadata", self.metadata.is_some()),
            ("sync", self.sync_settings.is_some()),
        ];
        for (name, set) in fields {
            if set {
                out.push(name);
            }
        }
        out
    }
}

/// How a list of integrations is ordered; ties are broken by id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IntegrationSort {
    /// By name, A to Z (as the database compares text).
    #[default]
    NameAsc,
    /// By name, Z to A.
    NameDesc,
    /// Oldest first.
    CreatedAsc,
    /// Newest first.
    CreatedDesc,
}

impl IntegrationSort {
    fn code(self) -> &'static str {
        match self {
            IntegrationSort::NameAsc => "name",
            IntegrationSort::NameDesc => "-name",
            IntegrationSort::CreatedAsc => "created",
            IntegrationSort::CreatedDesc => "-created",
        }
    }
}

/// Which integrations of a workspace to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntegrationFilter {
    /// Only this type.
    pub integration_type: Option<String>,
    /// Only those narrowed to this project (id).
    pub project_id: Option<String>,
    /// Only enabled (`true`) or disabled (`false`) ones.
    pub enabled: Option<bool>,
    /// Only those whose name contains this, ignoring case.
    pub name_contains: Option<String>,
    /// When set, project-scoped integrations only of these projects (ids) are listed (the
    /// projects the caller may see); workspace-wide ones always are.
    pub visible_projects: Option<Vec<String>>,
    /// The order.
    pub sort: IntegrationSort,
}

fn bad_cursor() -> DbError {
    DbError::InvalidInput("the cursor is not valid".into())
}

/// The position inside a list cursor: `[sort code, key, id]`.
fn parse_cursor(cursor: &str, sort: IntegrationSort) -> Result<(String, String), DbError> {
    let key = decode_cursor(cursor).ok_or_else(bad_cursor)?;
    let parts: Vec<String> = serde_json::from_str(&key).map_err(|_| bad_cursor())?;
    match parts.as_slice() {
        [code, key, id] if code == sort.code() => Ok((key.clone(), id.clone())),
        [_, _, _] => Err(DbError::InvalidInput(
            "the cursor belongs to another sort order".into(),
        )),
        _ => Err(bad_cursor()),
    }
}

fn cursor_of(sort: IntegrationSort, row: &Row) -> String {
    let key = match sort {
        IntegrationSort::NameAsc | IntegrationSort::NameDesc => row.name.clone(),
        IntegrationSort::CreatedAsc | IntegrationSort::CreatedDesc => {
            row.created_at.and_utc().timestamp_micros().to_string()
        }
    };
    json!([sort.code(), key, row.id]).to_string()
}

fn time_of(micros: &str) -> Result<NaiveDateTime, DbError> {
    let micros: i64 = micros.parse().map_err(|_| bad_cursor())?;
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|at| at.naive_utc())
        .ok_or_else(bad_cursor)
}

/// `%` and `_` match themselves in a `LIKE … ESCAPE '\'` pattern.
fn like_pattern(text: &str) -> String {
    let mut out = String::from("%");
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).expect("strings serialize")
}

fn sorted_environments(environments: &[Environment]) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = environments
        .iter()
        .map(|e| (e.id.clone(), e.slug.clone()))
        .collect();
    pairs.sort_by(|a, b| a.1.cmp(&b.1));
    pairs.dedup();
    pairs
}

fn check_environments(
    project: Option<&Project>,
    environments: &[Environment],
) -> Result<(), DbError> {
    match project {
        None if !environments.is_empty() => {
            Err(DbError::InvalidInput("environments need a project".into()))
        }
        Some(project) if environments.iter().any(|e| e.project_id != project.id) => Err(
            DbError::InvalidInput("every environment must belong to the project".into()),
        ),
        _ => Ok(()),
    }
}

fn name_conflict(name: &str) -> DbError {
    DbError::Conflict(format!(
        "the workspace already has an integration named `{name}`"
    ))
}

impl Db {
    /// Creates an integration with its metadata sealed by `cipher`, and records
    /// `INTEGRATION_ADDED` (payload: slug, type, name).
    ///
    /// # Errors
    ///
    /// [`DbError::Conflict`] when the workspace has an integration of that name,
    /// [`DbError::InvalidInput`] for a project of another workspace or an environment of
    /// another project, or any [`DbError`].
    pub async fn create_integration(
        &self,
        workspace: &Workspace,
        new: &NewIntegration<'_>,
        cipher: &Cipher,
        actor: &Actor,
    ) -> Result<StoredIntegration, DbError> {
        if new.project.is_some_and(|p| p.workspace_id != workspace.id) {
            return Err(DbError::InvalidInput(
                "the project belongs to another workspace".into(),
            ));
        }
        check_environments(new.project, new.environments)?;
        let base = slugify(new.name, "integration");
        let id = new_id();
        let sealed = cipher.seal(new.metadata.to_string().as_bytes(), &aad(&id));
        let environments = sorted_environments(new.environments);
        let environment_ids: Vec<String> = environments.iter().map(|e| e.0.clone()).collect();
        // A concurrent create may take the chosen slug (slugs are global): choose again.
        let mut tries = 0;
        let created = loop {
            tries += 1;
            let result = transaction!(self, |conn| {
                let same_name: i64 = integrations::table
                    .filter(integrations::workspace_id.eq(&workspace.id))
                    .filter(integrations::name.eq(new.name))
                    .count()
                    .get_result(conn)
                    .await?;
                if same_name > 0 {
                    return Err(name_conflict(new.name));
                }
                let taken: Vec<String> = integrations::table
                    .filter(integrations::slug.like(format!("{base}%")))
                    .select(integrations::slug)
                    .load(conn)
                    .await?;
                let at = now();
                let row = Row {
                    id: id.clone(),
                    workspace_id: workspace.id.clone(),
                    slug: first_free_slug(&base, &taken),
                    name: new.name.to_owned(),
                    integration_type: new.integration_type.to_owned(),
                    category: new.category.to_owned(),
                    notify_on: json_list(new.notify_on),
                    actions: json_list(new.actions),
                    project_id: new.project.map(|p| p.id.clone()),
                    metadata: sealed.clone(),
                    enabled: new.enabled,
                    created_by: Some(actor.id.clone()),
                    created_at: at,
                    updated_at: at,
                };
                diesel::insert_into(integrations::table)
                    .values(&row)
                    .execute(conn)
                    .await?;
                for environment_id in &environment_ids {
                    diesel::insert_into(integration_environments::table)
                        .values((
                            integration_environments::integration_id.eq(&id),
                            integration_environments::environment_id.eq(environment_id),
                        ))
                        .execute(conn)
                        .await?;
                }
                let mut event = Event::new(
                    &workspace.id,
                    EventType::IntegrationAdded,
                    EventSource::Integration,
                    actor,
                    format!("Integration {} added", row.name),
                )
                .environments(&environment_ids)
                .payload(json!({
                    "integration": row.slug,
                    "type": row.integration_type,
                    "name": row.name,
                }));
                if let Some(project) = new.project {
                    event = event.project(&project.id);
                }
                record_event!(conn, &event);
                if let Some(settings) = new.sync_settings {
                    diesel::insert_into(integration_sync::table)
                        .values((
                            integration_sync::integration_id.eq(&id),
                            integration_sync::settings.eq(settings),
                        ))
                        .execute(conn)
                        .await?;
                }
                // A new infrastructure integration starts with a full sync.
                if row.category == "infrastructure" && row.enabled {
                    enqueue_sync_on(&mut *conn, &id).await?;
                }
                Ok(row)
            });
            match result {
                // PostgreSQL names the constraint, SQLite the column.
                Err(DbError::Conflict(why))
                    if (why.contains("integrations_slug_key")
                        || why.contains("integrations.slug"))
                        && tries < 3 => {}
                // The name was taken by a concurrent create after the check above.
                Err(DbError::Conflict(_)) => return Err(name_conflict(new.name)),
                other => break other?,
            }
        };
        let mut stored = created.into_stored(new.project.map(|p| p.slug.clone()), environments);
        stored.sync_settings = new.sync_settings.map(str::to_owned);
        Ok(stored)
    }

    /// The integration with this slug.
    ///
    /// # Errors
    ///
    /// [`DbError::NotFound`], or any other [`DbError`].
    pub async fn integration_by_slug(&self, slug: &str) -> Result<StoredIntegration, DbError> {
        let row: Row = with_conn!(self, |conn| {
            integrations::table
                .filter(integrations::slug.eq(slug))
                .select(Row::as_select())
                .first(conn)
                .await?
        });
        Ok(self.hydrate(vec![row]).await?.remove(0))
    }

    /// Whether another integration of the workspace (not `except`, an id) has this name.
    ///
    /// # Errors
    ///
    /// Any [`DbError`].
    pub async fn integration_name_taken(
        &self,
        workspace_id: &str,
        name: &str,
        except: Option<&str>,
    ) -> Result<bool, DbError> {
        let count: i64 = with_conn!(self, |conn| {
            let mut query = integrations::table
                .filter(integrations::workspace_id.eq(workspace_id))
                .filter(integrations::name.eq(name))
                .into_boxed();
            if let Some(id) = except {
                query = query.filter(integrations::id.ne(id));
            }
            query.count().get_result(conn).await?
        });
        Ok(count > 0)
    }

    /// Integrations of a workspace, filtered and ordered, one keyset page at a time: a page
    /// continues after the last item of the previous one, so rows added or removed meanwhile
    /// neither repeat nor skip items.
    ///
    /// # Errors
    ///
    /// [`DbError::InvalidInput`] for a cursor this server did not make (or made for another
    /// order), or any [`DbError`].
    pub async fn list_integrations(
        &self,
        workspace_id: &str,
        filter: &IntegrationFilter,
        page: &PageRequest,
    ) -> Result<Page<StoredIntegration>, DbError> {
        let sort = filter.sort;
        let after = page
            .after
            .as_deref()
            .map(|c| parse_cursor(c, sort))
            .transpose()?;
        let after_time = match (&after, sort) {
            (Some((key, _)), IntegrationSort::CreatedAsc | IntegrationSort::CreatedDesc) => {
                Some(time_of(key)?)
            }
            _ => None,
        };
        let limit = page.limit();
        let pattern = filter.name_contains.as_deref().map(like_pattern);
        let rows: Vec<Row> =
            with_conn!(self, |conn| {
                let mut query = integrations::table
                    .filter(integrations::workspace_id.eq(workspace_id))
                    .into_boxed();
                if let Some(ty) = &filter.integration_type {
                    query = query.filter(integrations::integration_type.eq(ty));
                }
                if let Some(project) = &filter.project_id {
                    query = query.filter(integrations::project_id.eq(project));
                }
                if let Some(enabled) = filter.enabled {
                    query = query.filter(integrations::enabled.eq(enabled));
                }
                if let Some(pattern) = &pattern {
                    query = query.filter(
                        lower(integrations::name)
                            .like(lower(pattern.as_str()))
                            .escape('\\'),
                    );
                }
                if let Some(visible) = &filter.visible_projects {
                    query = query.filter(
                        integrations::project_id
                            .is_null()
                            .or(integrations::project_id.eq_any(visible)),
                    );
                }
                query =
                    match sort {
                        IntegrationSort::NameAsc => {
                            if let Some((name, id)) = &after {
                                query =
                                    query.filter(integrations::name.gt(name).or(
                                        integrations::name.eq(name).and(integrations::id.gt(id)),
                                    ));
                            }
                            query.order((integrations::name.asc(), integrations::id.asc()))
                        }
                        IntegrationSort::NameDesc => {
                            if let Some((name, id)) = &after {
                                query =
                                    query.filter(integrations::name.lt(name).or(
                                        integrations::name.eq(name).and(integrations::id.lt(id)),
                                    ));
                            }
                            query.order((integrations::name.desc(), integrations::id.desc()))
                        }
                        IntegrationSort::CreatedAsc => {
                            if let (Some(at), Some((_, id))) = (after_time, &after) {
                                query = query.filter(integrations::created_at.gt(at).or(
                                    integrations::created_at.eq(at).and(integrations::id.gt(id)),
                                ));
                            }
                            query.order((integrations::created_at.asc(), integrations::id.asc()))
                        }
                        IntegrationSort::CreatedDesc => {
                            if let (Some(at), Some((_, id))) = (after_time, &after) {
                                query = query.filter(integrations::created_at.lt(at).or(
                                    integrations::created_at.eq(at).and(integrations::id.lt(id)),
                                ));
                            }
                            query.order((integrations::created_at.desc(), integrations::id.desc()))
                        }
                    };
                query
                    .limit(limit + 1)
                    .select(Row::as_select())
                    .load(conn)
                    .await?
            });
        let more = rows.len() as i64 > limit;
        let mut rows = rows;
        rows.truncate(limit as usize);
        let next_cursor = if more {
            rows.last()
                .map(|last| encode_cursor(&cursor_of(sort, last)))
        } else {
            None
        };
        Ok(Page {
            items: self.hydrate(rows).await?,
            next_cursor,
        })
    }

    /// Adds project and environment slugs to rows.
    async fn hydrate(&self, rows: Vec<Row>) -> Result<Vec<StoredIntegration>, DbError> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let project_ids: Vec<String> = rows.iter().filter_map(|r| r.project_id.clone()).collect();
        /// (integration id, environment id, environment slug).
        type Scoped = Vec<(String, String, String)>;
        #[allow(clippy::type_complexity)]
        let (projects, scoped, settings): (
            Vec<(String, String)>,
            Scoped,
            Vec<(String, String)>,
        ) = with_conn!(self, |conn| {
            let projects = if project_ids.is_empty() {
                Vec::new()
            } else {
                projects::table
                    .filter(projects::id.eq_any(&project_ids))
                    .select((projects::id, projects::slug))
                    .load(conn)
                    .await?
            };
            let scoped = integration_environments::table
                .inner_join(environments::table)
                .filter(integration_environments::integration_id.eq_any(&ids))
                .order(environments::slug.asc())
                .select((
                    integration_environments::integration_id,
                    environments::id,
                    environments::slug,
                ))
                .load(conn)
                .await?;
            let settings: Vec<(String, String)> = integration_sync::table
                .filter(integration_sync::integration_id.eq_any(&ids))
                .select((integration_sync::integration_id, integration_sync::settings))
                .load(conn)
                .await?;
            (projects, scoped, settings)
        });
        let projects: HashMap<String, String> = projects.into_iter().collect();
        let mut settings: HashMap<String, String> = settings.into_iter().collect();
        let mut by_integration: HashMap<String, Vec<(String, String)>> = HashMap::new();
        for (integration, id, slug) in scoped {
            by_integration
                .entry(integration)
                .or_default()
                .push((id, slug));
        }
        Ok(rows
            .into_iter()
            .map(|row| {
                let project_slug = row
                    .project_id
                    .as_ref()
                    .and_then(|p| projects.get(p).cloned());
                let environments = by_integration.remove(&row.id).unwrap_or_default();
                let sync_settings = settings.remove(&row.id);
                let mut stored = row.into_stored(project_slug, environments);
                stored.sync_settings = sync_settings;
                stored
            })
            .collect())
    }

    /// Applies `changes` to `current` (as read before) and records `INTEGRATION_UPDATED`
    /// (payload: slug, type, name, the names of the changed fields). New metadata is sealed
    /// again with a fresh nonce.
    ///
    /// # Errors
    ///
    /// [`DbError::Conflict`] for a name another integration of the workspace has, or when the
    /// integration changed since `current` was read (nothing is written: read it again);
    /// [`DbError::NotFound`] when it was deleted meanwhile; [`DbError::InvalidInput`] for an
    /// environment of another project; or any [`DbError`].
    pub async fn update_integration(
        &self,
        current: &StoredIntegration,
        changes: &IntegrationChanges,
        cipher: &Cipher,
        actor: &Actor,
    ) -> Result<StoredIntegration, DbError> {
        if let Some(environments) = &changes.environments {
            let ok = match &current.project_id {
                None => environments.is_empty(),
                Some(project) => environments.iter().all(|e| e.project_id == *project),
            };
            if !ok {
                return Err(DbError::InvalidInput(
                    "every environment must belong to the integration's project".into(),
                ));
            }
        }
        let mut updated = current.clone();
        if let Some(name) = &changes.name {
            updated.name.clone_from(name);
        }
        if let Some(notify_on) = &changes.notify_on {
            updated.notify_on.clone_from(notify_on);
        }
        if let Some(actions) = &changes.actions {
            updated.actions.clone_from(actions);
        }
        if let Some(enabled) = changes.enabled {
            updated.enabled = enabled;
        }
        let new_environments = changes.environments.as_deref().map(sorted_environments);
        if let Some(environments) = &new_environments {
            updated.environment_ids = environments.iter().map(|e| e.0.clone()).collect();
            updated.environment_slugs = environments.iter().map(|e| e.1.clone()).collect();
        }
        if let Some(metadata) = &changes.metadata {
            updated.sealed_metadata =
                cipher.seal(metadata.to_string().as_bytes(), &aad(&current.id));
        }
        if let Some(settings) = &changes.sync_settings {
            updated.sync_settings = Some(settings.clone());
        }
        // What the target should hold may have changed: resync (coalesced with any waiting).
        let resync = updated.category == "infrastructure"
            && updated.enabled
            && (changes.metadata.is_some()
                || changes.environments.is_some()
                || changes.sync_settings.is_some()
                || changes.actions.is_some()
                || changes.enabled == Some(true));
        updated.updated_at = now();
        let changed = changes.field_names();
        transaction!(self, |conn| {
            if changes.name.is_some() {
                let clash: i64 = integrations::table
                    .filter(integrations::workspace_id.eq(&current.workspace_id))
                    .filter(integrations::name.eq(&updated.name))
                    .filter(integrations::id.ne(&current.id))
                    .count()
                    .get_result(conn)
                    .await?;
                if clash > 0 {
                    return Err(name_conflict(&updated.name));
                }
            }
            // Only if nobody changed it since it was read: a metadata merge made from an
            // older value must not silently undo another change.
            let written = diesel::update(
                integrations::table
                    .filter(integrations::id.eq(&current.id))
                    .filter(integrations::updated_at.eq(current.updated_at)),
            )
            .set((
                integrations::name.eq(&updated.name),
                integrations::notify_on.eq(json_list(&updated.notify_on)),
                integrations::actions.eq(json_list(&updated.actions)),
                integrations::enabled.eq(updated.enabled),
                integrations::metadata.eq(&updated.sealed_metadata),
                integrations::updated_at.eq(updated.updated_at),
            ))
            .execute(conn)
            .await?;
            if written == 0 {
                let exists: i64 = integrations::table
                    .filter(integrations::id.eq(&current.id))
                    .count()
                    .get_result(conn)
                    .await?;
                return Err(if exists == 0 {
                    DbError::NotFound
                } else {
                    DbError::Conflict(format!(
                        "integration `{}` was changed meanwhile; read it again and retry",
                        current.slug
                    ))
                });
            }
            if new_environments.is_some() {
                diesel::delete(
                    integration_environments::table
                        .filter(integration_environments::integration_id.eq(&current.id)),
                )
                .execute(conn)
                .await?;
                for environment_id in &updated.environment_ids {
                    diesel::insert_into(integration_environments::table)
                        .values((
                            integration_environments::integration_id.eq(&current.id),
                            integration_environments::environment_id.eq(environment_id),
                        ))
                        .execute(conn)
                        .await?;
                }
            }
            let mut payload = json!({
                "integration": current.slug,
                "type": current.integration_type,
                "name": updated.name,
                "changed": changed,
            });
            if updated.name != current.name {
                payload["previousName"] = json!(current.name);
            }
            let mut event = Event::new(
                &current.workspace_id,
                EventType::IntegrationUpdated,
                EventSource::Integration,
                actor,
                format!("Integration {} updated", updated.name),
            )
            .environments(&updated.environment_ids)
            .payload(payload);
            if let Some(project) = &current.project_id {
                event = event.project(project);
            }
            record_event!(conn, &event);
            if let Some(settings) = &changes.sync_settings {
                diesel::delete(integration_sync::table.find(&current.id))
                    .execute(conn)
                    .await?;
                diesel::insert_into(integration_sync::table)
                    .values((
                        integration_sync::integration_id.eq(&current.id),
                        integration_sync::settings.eq(settings),
                    ))
                    .execute(conn)
                    .await?;
            }
            if resync {
                enqueue_sync_on(&mut *conn, &current.id).await?;
            }
            Ok(())
        })?;
        Ok(updated)
    }

    /// Records `INTEGRATION_DELETED` and deletes the integration with its environment links
    /// and runs.
    ///
    /// # Errors
    ///
    /// [`DbError::NotFound`] when it no longer exists, or any [`DbError`].
    pub async fn delete_integration(
        &self,
        integration: &StoredIntegration,
        actor: &Actor,
    ) -> Result<(), DbError> {
        transaction!(self, |conn| {
            let mut event = Event::new(
                &integration.workspace_id,
                EventType::IntegrationDeleted,
                EventSource::Integration,
                actor,
                format!("Integration {} deleted", integration.name),
            )
            .severity(Severity::Warn)
            .environments(&integration.environment_ids)
            .payload(json!({
                "integration": integration.slug,
                "type": integration.integration_type,
                "name": integration.name,
            }));
            if let Some(project) = &integration.project_id {
                event = event.project(project);
            }
            // The event first, while the integration still exists for delivery to look at.
            record_event!(conn, &event);
            let deleted = diesel::delete(integrations::table.find(&integration.id))
                .execute(conn)
                .await?;
            if deleted == 0 {
                return Err(DbError::NotFound);
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The database rules, on every configured backend: names unique per workspace, slugs
    /// global, environments of the project only, stale updates refused, deletes final.
    #[tokio::test]
    async fn the_database_keeps_the_integration_rules() {
        for test_db in keywire_test_support::TestDb::all().await {
            let backend = test_db.backend();
            let db = Db::connect(test_db.url()).await.unwrap();
            db.migrate().await.unwrap();
            let user = db.create_user("alice", false).await.unwrap();
            let actor = Actor {
                id: user.id.clone(),
                name: user.name.clone(),
            };
            let cipher = Cipher::from_bytes(&[9; 32]).unwrap();
            let acme = db.create_workspace("Acme", &actor).await.unwrap();
            let other = db.create_workspace("Other", &actor).await.unwrap();
            let env = |name: &str| crate::NewEnvironment {
                name: name.to_owned(),
                description: None,
            };
            let (shop, shop_envs) = db
                .create_project(&acme, "Shop", None, &[env("dev"), env("prod")], &actor)
                .await
                .unwrap();
            let (_, blog_envs) = db
                .create_project(&acme, "Blog", None, &[env("live")], &actor)
                .await
                .unwrap();
            let metadata = json!({"webhookUrl": "https://discord.com/api/webhooks/1/s3cr3t"});
            let notify_on = vec!["SECRET_UPDATED".to_owned()];
            let new = NewIntegration {
                name: "Alerts",
                integration_type: "discord",
                category: "communication",
                notify_on: &notify_on,
                actions: &[],
                project: Some(&shop),
                environments: &shop_envs,
                metadata: &metadata,
                enabled: true,
                sync_settings: None,
            };
            let created = db
                .create_integration(&acme, &new, &cipher, &actor)
                .await
                .unwrap();
            assert_eq!(created.slug, "alerts", "{backend}");
            assert_eq!(created.environment_slugs, ["dev", "prod"]);
            assert_eq!(created.open_metadata(&cipher).unwrap(), metadata);
            let again = db.create_integration(&acme, &new, &cipher, &actor).await;
            assert!(matches!(again, Err(DbError::Conflict(_))), "{backend}");
            let elsewhere = NewIntegration {
                project: None,
                environments: &[],
                ..new
            };
            let copy = db
                .create_integration(&other, &elsewhere, &cipher, &actor)
                .await
                .unwrap();
            assert_eq!(copy.slug, "alerts-2", "{backend}: slugs are global");
            let foreign = NewIntegration {
                name: "Foreign",
                environments: &blog_envs,
                ..new
            };
            assert!(matches!(
                db.create_integration(&acme, &foreign, &cipher, &actor)
                    .await,
                Err(DbError::InvalidInput(_))
            ));

            let read = db.integration_by_slug("alerts").await.unwrap();
            assert_eq!(read, created, "{backend}");
            let changes = IntegrationChanges {
                name: Some("Team alerts".into()),
                environments: Some(vec![shop_envs[1].clone()]),
                ..IntegrationChanges::default()
            };
            let updated = db
                .update_integration(&read, &changes, &cipher, &actor)
                .await
                .unwrap();
            assert_eq!(updated.environment_slugs, ["prod"], "{backend}");
            assert_eq!(db.integration_by_slug("alerts").await.unwrap(), updated);
            // `read` is stale now: a change made from it must not undo the one above.
            let stale = db
                .update_integration(
                    &read,
                    &IntegrationChanges {
                        enabled: Some(false),
                        ..IntegrationChanges::default()
                    },
                    &cipher,
                    &actor,
                )
                .await;
            assert!(matches!(stale, Err(DbError::Conflict(_))), "{backend}");
            assert!(
                db.integration_name_taken(&acme.id, "Team alerts", None)
                    .await
                    .unwrap()
            );
            assert!(
                !db.integration_name_taken(&acme.id, "Team alerts", Some(&read.id))
                    .await
                    .unwrap()
            );

            db.delete_integration(&updated, &actor).await.unwrap();
            assert_eq!(
                db.integration_by_slug("alerts").await.unwrap_err(),
                DbError::NotFound
            );
            assert_eq!(
                db.delete_integration(&updated, &actor).await.unwrap_err(),
                DbError::NotFound,
                "{backend}"
            );
        }
    }

    #[test]
    fn like_patterns_match_wildcards_literally() {
        assert_eq!(like_pattern("a%b_c\\"), "%a\\%b\\_c\\\\%");
    }

    #[test]
    fn cursors_carry_their_sort_order() {
        let row = Row {
            id: "i1".into(),
            workspace_id: "w".into(),
            slug: "s".into(),
            name: "Alerts".into(),
            integration_type: "discord".into(),
            category: "communication".into(),
            notify_on: "[]".into(),
            actions: "[]".into(),
            project_id: None,
            metadata: String::new(),
            enabled: true,
            created_by: None,
            created_at: now(),
            updated_at: now(),
        };
        let cursor = encode_cursor(&cursor_of(IntegrationSort::NameAsc, &row));
        assert_eq!(
            parse_cursor(&cursor, IntegrationSort::NameAsc).unwrap(),
            ("Alerts".to_owned(), "i1".to_owned())
        );
        assert!(parse_cursor(&cursor, IntegrationSort::CreatedDesc).is_err());
        assert!(parse_cursor("%%", IntegrationSort::NameAsc).is_err());
        let by_time = encode_cursor(&cursor_of(IntegrationSort::CreatedDesc, &row));
        let (micros, _) = parse_cursor(&by_time, IntegrationSort::CreatedDesc).unwrap();
        assert_eq!(time_of(&micros).unwrap(), row.created_at);
    }

    #[test]
    fn metadata_is_bound_to_its_row_and_debug_hides_it() {
        let cipher = Cipher::from_bytes(&[7; 32]).unwrap();
        let sealed = cipher.seal(br#"{"webhookUrl":"https://x/secret"}"#, &aad("a"));
        let mut stored = Row {
            id: "a".into(),
            workspace_id: "w".into(),
            slug: "alerts".into(),
            name: "Alerts".into(),
            integration_type: "discord".into(),
            category: "communication".into(),
            notify_on: r#"["SECRET_UPDATED"]"#.into(),
            actions: "[]".into(),
            project_id: None,
            metadata: sealed,
            enabled: true,
            created_by: None,
            created_at: now(),
            updated_at: now(),
        }
        .into_stored(None, Vec::new());
        assert_eq!(
            stored.open_metadata(&cipher).unwrap()["webhookUrl"],
            "https://x/secret"
        );
        assert!(!format!("{stored:?}").contains("secret"));
        assert_eq!(stored.notify_on, vec!["SECRET_UPDATED"]);
        stored.id = "b".into();
        let err = stored.open_metadata(&cipher).unwrap_err().to_string();
        assert!(err.contains("`alerts` cannot be decrypted"), "{err}");
    }
}
