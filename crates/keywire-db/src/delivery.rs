//! Durable delivery: runs (one event to one integration) and their attempts.
//!
//! Runs are written by [`fan_out!`] in the same transaction as the change and its event, so a
//! change that commits has its deliveries and one that rolls back has none. Workers claim due
//! runs with a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite has one writer at a time),
//! record every attempt, and either finish the run or schedule its next try. A run whose worker
//! died is claimed again when its lease expires, so nothing stays `running`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};
use diesel_async::RunQueryDsl;

use crate::db::{transaction, with_conn};
use crate::events::Event;
use crate::schema::{environments, events, integrations, projects, run_attempts, runs, workspaces};
use crate::tokens::{new_id, now};
use crate::util::{Page, PageRequest};
use crate::{Backend, Db, DbError};
use keywire_core::EventType;

/// Waiting for a worker.
pub const PENDING: &str = "pending";
/// Held by a worker.
pub const RUNNING: &str = "running";
/// Delivered.
pub const SUCCEEDED: &str = "succeeded";
/// Given up (permanent failure, or the retry schedule is exhausted).
pub const FAILED: &str = "failed";

/// A delivery of one event (or a sync) to one integration.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, QueryableByName)]
#[diesel(table_name = runs)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct Run {
    /// UUID: the message id and idempotency key of every attempt.
    pub id: String,
    /// The integration.
    pub integration_id: String,
    /// The event delivered.
    pub event_id: Option<String>,
    /// `event` or `sync`.
    pub kind: String,
    /// `pending`, `running`, `succeeded`, `failed`.
    pub status: String,
    /// Attempts started.
    pub attempts: i32,
    /// When it may be taken next (UTC).
    pub next_attempt_at: NaiveDateTime,
    /// The worker holding it.
    pub lease_owner: Option<String>,
    /// Until when (UTC).
    pub lease_expires_at: Option<NaiveDateTime>,
    /// The last failure, scrubbed.
    pub last_error: Option<String>,
    /// Creation time (UTC).
    pub created_at: NaiveDateTime,
    /// When it ended (UTC).
    pub finished_at: Option<NaiveDateTime>,
}

/// One try of a run.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = run_attempts)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct RunAttempt {
    /// UUID.
    pub id: String,
    /// The run.
    pub run_id: String,
    /// 1, 2, 3...
    pub number: i32,
    /// When it started (UTC).
    pub started_at: NaiveDateTime,
    /// How long it took.
    pub duration_ms: i64,
    /// `succeeded`, `retryable_failure`, `permanent_failure`, `timeout`.
    pub outcome: String,
    /// The provider's HTTP status.
    pub http_status: Option<i32>,
    /// At most 1 KiB of answer or error, scrubbed.
    pub excerpt: String,
    /// When the next try is due, if any (UTC).
    pub next_attempt_at: Option<NaiveDateTime>,
}

/// The integration a claimed run goes to, as the worker needs it.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = integrations)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct Target {
    /// UUID.
    pub id: String,
    /// Its workspace.
    pub workspace_id: String,
    /// Its slug.
    pub slug: String,
    /// Registry type id.
    pub integration_type: String,
    /// `communication` or `infrastructure`.
    pub category: String,
    /// Sealed metadata JSON (aad `integrations/<id>`).
    pub metadata: String,
    /// Whether it is enabled.
    pub enabled: bool,
}

/// A run a worker now holds, with what it needs to deliver it.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The run (already counting this attempt).
    pub run: Run,
    /// Where it goes.
    pub target: Target,
    /// The event it delivers, when it delivers one.
    pub event: Option<Event>,
    /// Slugs for the event: workspace, project, environments.
    pub slugs: EventSlugs,
}

/// The slugs an event's ids stand for (for messages people read).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventSlugs {
    /// Workspace slug.
    pub workspace: String,
    /// Project slug, when the event has a project.
    pub project: Option<String>,
    /// Environment slugs (of environments that still exist).
    pub environments: Vec<String>,
}

/// Delivery figures of one integration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Status of its newest run.
    pub last_run_status: Option<String>,
    /// When its newest run was created (UTC).
    pub last_run_at: Option<NaiveDateTime>,
    /// Runs that succeeded.
    pub succeeded: i64,
    /// Runs that failed for good.
    pub failed: i64,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptResult {
    /// `succeeded`, `retryable_failure`, `permanent_failure` or `timeout`.
    pub outcome: &'static str,
    /// When it started (UTC).
    pub started_at: NaiveDateTime,
    /// How long it took.
    pub duration: Duration,
    /// The provider's HTTP status.
    pub http_status: Option<u16>,
    /// At most 1 KiB, credentials scrubbed by the caller.
    pub excerpt: String,
    /// When to try again; `None` ends the run (succeeded, or failed for good).
    pub retry_at: Option<NaiveDateTime>,
}

/// Inserts, on `$conn` inside the caller's transaction, one run per enabled integration that
/// hears `$event`: it subscribes to the type, and its scope covers the event (workspace-wide;
/// or the event's project; or, when narrowed to environments, one of the event's). An
/// infrastructure integration that already has a run waiting to start gets no second one:
/// its sync reads the current state when it runs, so one covers both changes.
macro_rules! fan_out {
    ($conn:expr, $event:expr) => {{
        let event: &$crate::events::Event = $event;
        $crate::delivery::fan_out_rows(&mut *$conn, event).await?;
    }};
}
pub(crate) use fan_out;

/// Rows per insert statement on PostgreSQL: far below its 65,535 bound parameters.
const INSERT_CHUNK: usize = 500;

/// Inserts many rows of one table.
trait InsertMany<T> {
    async fn insert_many(&mut self, rows: &[T]) -> Result<(), DbError>;
}

macro_rules! insert_many {
    ($($row:ty => $table:path),*) => {$(
        impl InsertMany<$row> for diesel_async::AsyncPgConnection {
            /// Multi-row statements: one round trip per [`INSERT_CHUNK`] rows.
            async fn insert_many(&mut self, rows: &[$row]) -> Result<(), DbError> {
                for chunk in rows.chunks(INSERT_CHUNK) {
                    diesel::insert_into($table).values(chunk).execute(self).await?;
                }
                Ok(())
            }
        }

        impl InsertMany<$row> for crate::db::SqliteConn {
            /// A statement per row: in-process, so a row costs no round trip (and diesel-async
            /// cannot run SQLite's multi-row form).
            async fn insert_many(&mut self, rows: &[$row]) -> Result<(), DbError> {
                for row in rows {
                    diesel::insert_into($table).values(row).execute(self).await?;
                }
                Ok(())
            }
        }
    )*};
}
insert_many!(Run => runs::table, RunAttempt => run_attempts::table);

/// Candidate integrations of an event's workspace and their environment narrowing.
type Candidate = (String, String, String, Option<String>);

macro_rules! define_fan_out {
    ($($conn_ty:ty),*) => {
        /// Connection types the delivery queries run on.
        pub(crate) trait FanOut {
            /// See [`fan_out!`].
            async fn fan_out(&mut self, event: &Event) -> Result<usize, DbError>;
            /// Tells other nodes, on commit, that runs are waiting (PostgreSQL `NOTIFY`).
            async fn announce_runs(&mut self) -> Result<(), DbError>;
            /// A sync run for an infrastructure integration, unless one is already waiting to
            /// start (it reads the current state when it runs, so it covers this change too).
            /// Returns the run's id and whether it is new. Does not announce.
            async fn enqueue_sync(&mut self, integration_id: &str, event_id: Option<&str>) -> Result<(String, bool), DbError>;
        }
        $(
        impl FanOut for $conn_ty {
            async fn fan_out(&mut self, event: &Event) -> Result<usize, DbError> {
                use crate::schema::integration_environments as ie;
                let conn = self;
                let mut query = integrations::table
                    .filter(integrations::workspace_id.eq(&event.workspace_id))
                    .filter(integrations::enabled.eq(true))
                    .into_boxed();
                query = match &event.project_id {
                    Some(project) => query.filter(integrations::project_id.is_null().or(integrations::project_id.eq(project))),
                    None => query.filter(integrations::project_id.is_null()),
                };
                let candidates: Vec<Candidate> = query
                    .select((integrations::id, integrations::category, integrations::notify_on, integrations::project_id))
                    .load(conn)
                    .await?;
                let hearing: Vec<&Candidate> = candidates
                    .iter()
                    .filter(|(_, category, notify_on, _)| {
                        // A deleted environment always resyncs the infrastructure integrations
                        // mapped to it, so what it put at the target goes with it.
                        (category == "infrastructure" && event.event_type == EventType::EnvironmentDeleted.as_str()) ||
                        serde_json::from_str::<Vec<String>>(notify_on).unwrap_or_default().iter().any(|t| *t == event.event_type)
                    })
                    .collect();
                if hearing.is_empty() {
                    return Ok(0);
                }
                let ids: Vec<&String> = hearing.iter().map(|c| &c.0).collect();
                let narrowing: Vec<(String, String)> = ie::table
                    .filter(ie::integration_id.eq_any(&ids))
                    .select((ie::integration_id, ie::environment_id))
                    .load(conn)
                    .await?;
                let mut narrowed: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
                for (integration, environment) in &narrowing {
                    narrowed.entry(integration.as_str()).or_default().insert(environment.as_str());
                }
                let touched = event.environment_id_list();
                let at = now();
                let mut inserted = 0;
                let mut rows: Vec<Run> = Vec::with_capacity(hearing.len());
                for (id, category, _, _) in hearing {
                    if let Some(allowed) = narrowed.get(id.as_str())
                        && !touched.iter().any(|env| allowed.contains(env.as_str()))
                    {
                        continue;
                    }
                    if category == "infrastructure" {
                        if conn.enqueue_sync(id, Some(&event.id)).await?.1 {
                            inserted += 1;
                        }
                        continue;
                    }
                    let run = Run {
                        id: new_id(),
                        integration_id: id.clone(),
                        event_id: Some(event.id.clone()),
                        kind: "event".to_owned(),
                        status: PENDING.to_owned(),
                        attempts: 0,
                        next_attempt_at: at,
                        lease_owner: None,
                        lease_expires_at: None,
                        last_error: None,
                        created_at: at,
                        finished_at: None,
                    };
                    rows.push(run);
                    inserted += 1;
                }
                // One multi-row insert: a change heard by many integrations costs one statement.
                conn.insert_many(&rows).await?;
                if inserted > 0 {
                    conn.announce_runs().await?;
                }
                Ok(inserted)
            }

            async fn announce_runs(&mut self) -> Result<(), DbError> {
                announce(self).await
            }

            async fn enqueue_sync(&mut self, integration_id: &str, event_id: Option<&str>) -> Result<(String, bool), DbError> {
                let conn = self;
                let waiting: Option<String> = runs::table
                    .filter(runs::integration_id.eq(integration_id))
                    .filter(runs::status.eq(PENDING))
                    .filter(runs::attempts.eq(0))
                    .select(runs::id)
                    .first(conn)
                    .await
                    .optional()?;
                if let Some(id) = waiting {
                    return Ok((id, false));
                }
                let at = now();
                // A sync for an event waits a moment, so a burst of changes shares one sync.
                let due = match event_id {
                    Some(_) => at + chrono::Duration::from_std(sync_debounce()).unwrap_or_default(),
                    None => at,
                };
                let run = Run {
                    id: new_id(),
                    integration_id: integration_id.to_owned(),
                    event_id: event_id.map(str::to_owned),
                    kind: "sync".to_owned(),
                    status: PENDING.to_owned(),
                    attempts: 0,
                    next_attempt_at: due,
                    lease_owner: None,
                    lease_expires_at: None,
                    last_error: None,
                    created_at: at,
                    finished_at: None,
                };
                diesel::insert_into(runs::table).values(&run).execute(conn).await?;
                Ok((run.id, true))
            }
        }
        )*
    };
}

define_fan_out!(diesel_async::AsyncPgConnection, crate::db::SqliteConn);

static SYNC_DEBOUNCE_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1000);

/// How long a sync queued by an event waits before it may start, so that a burst of changes
/// (a bulk import, a script) is carried by one sync: changes made meanwhile coalesce into it.
/// Process-wide; default 1 s (`KEYWIRE_SYNC_DEBOUNCE`).
pub fn set_sync_debounce(delay: Duration) {
    let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
    std::sync::atomic::AtomicU64::store(
        &SYNC_DEBOUNCE_MS,
        ms,
        std::sync::atomic::Ordering::Relaxed,
    );
}

/// See [`set_sync_debounce`].
pub fn sync_debounce() -> Duration {
    Duration::from_millis(std::sync::atomic::AtomicU64::load(
        &SYNC_DEBOUNCE_MS,
        std::sync::atomic::Ordering::Relaxed,
    ))
}

/// The `LISTEN`/`NOTIFY` channel that tells nodes runs are waiting.
pub const RUNS_CHANNEL: &str = "keywire_runs";

trait Announce {
    async fn announce(&mut self) -> Result<(), DbError>;
}

impl Announce for diesel_async::AsyncPgConnection {
    async fn announce(&mut self) -> Result<(), DbError> {
        // Delivered to listeners when the transaction commits, and only then.
        diesel::sql_query(format!("NOTIFY {RUNS_CHANNEL}"))
            .execute(self)
            .await?;
        Ok(())
    }
}

impl Announce for crate::db::SqliteConn {
    async fn announce(&mut self) -> Result<(), DbError> {
        // One process per SQLite file: the in-process wake-up after commit is enough.
        Ok(())
    }
}

async fn announce<C: Announce>(conn: &mut C) -> Result<(), DbError> {
    conn.announce().await
}

/// Calls [`FanOut::fan_out`] on either connection type.
pub(crate) async fn fan_out_rows<C: FanOut>(conn: &mut C, event: &Event) -> Result<usize, DbError> {
    conn.fan_out(event).await
}

/// Slugs of the workspaces, projects and environments some events name.
#[derive(Default)]
struct SlugNames {
    workspaces: BTreeMap<String, String>,
    projects: BTreeMap<String, String>,
    environments: BTreeMap<String, String>,
}

/// Loads, on `$conn`, the [`SlugNames`] of `$events` (`&[Event]`) with one query per table.
macro_rules! slug_names {
    ($conn:expr, $events:expr) => {{
        let conn = $conn;
        let events: &[Event] = $events;
        let workspace_ids: BTreeSet<&String> = events.iter().map(|e| &e.workspace_id).collect();
        let project_ids: BTreeSet<&String> = events
            .iter()
            .filter_map(|e| e.project_id.as_ref())
            .collect();
        let env_ids: BTreeSet<String> = events
            .iter()
            .flat_map(|e| e.environment_id_list())
            .collect();
        let mut names = SlugNames::default();
        if !workspace_ids.is_empty() {
            names.workspaces = workspaces::table
                .filter(workspaces::id.eq_any(&workspace_ids))
                .select((workspaces::id, workspaces::slug))
                .load::<(String, String)>(conn)
                .await?
                .into_iter()
                .collect();
        }
        if !project_ids.is_empty() {
            names.projects = projects::table
                .filter(projects::id.eq_any(&project_ids))
                .select((projects::id, projects::slug))
                .load::<(String, String)>(conn)
                .await?
                .into_iter()
                .collect();
        }
        if !env_ids.is_empty() {
            names.environments = environments::table
                .filter(environments::id.eq_any(&env_ids))
                .select((environments::id, environments::slug))
                .load::<(String, String)>(conn)
                .await?
                .into_iter()
                .collect();
        }
        names
    }};
}

impl SlugNames {
    /// The slugs of `event`; a deleted project or environment falls back to the slug in the
    /// event's payload.
    fn slugs(&self, event: &Event) -> EventSlugs {
        let env_ids = event.environment_id_list();
        let payload: serde_json::Value = serde_json::from_str(&event.payload).unwrap_or_default();
        let workspace = self
            .workspaces
            .get(&event.workspace_id)
            .cloned()
            .unwrap_or_default();
        let project = event
            .project_id
            .as_ref()
            .and_then(|id| self.projects.get(id).cloned())
            .or_else(|| payload["project"].as_str().map(str::to_owned))
            .filter(|_| event.project_id.is_some());
        let mut environments: Vec<String> = env_ids
            .iter()
            .filter_map(|id| self.environments.get(id).cloned())
            .collect();
        environments.sort();
        if environments.is_empty()
            && !env_ids.is_empty()
            && let Some(slug) = payload["environment"].as_str()
        {
            environments.push(slug.to_owned());
        }
        EventSlugs {
            workspace,
            project,
            environments,
        }
    }
}

#[derive(QueryableByName)]
struct Due {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    integration_id: String,
}

impl Db {
    /// Claims up to `limit` due runs for `worker` (pending and due, or running with an expired
    /// lease), at most one per infrastructure integration and none for an infrastructure
    /// integration that has a run in flight. Each claimed run counts one more attempt.
    ///
    /// # Errors
    ///
    /// Any [`DbError`].
    pub async fn claim_runs(
        &self,
        worker: &str,
        limit: i64,
        lease: Duration,
    ) -> Result<Vec<Claimed>, DbError> {
        let at = now();
        let until = at + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(60));
        let lock = match self.backend() {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "SELECT id, integration_id FROM runs \
             WHERE (status = 'pending' AND next_attempt_at <= {p1}) OR (status = 'running' AND lease_expires_at < {p1}) \
             ORDER BY next_attempt_at LIMIT {p2}{lock}",
            p1 = self.placeholder(1),
            p2 = self.placeholder(2),
        );
        let postgres = self.backend() == Backend::Postgres;
        // Quiet: a claim must not wake the other workers, or idle workers would wake each
        // other forever.
        let claimed: Vec<Run> = transaction!(quiet: self, |conn| {
            // PostgreSQL skips rows other workers hold; SQLite has one writer at a time anyway.
            let due: Vec<Due> = if postgres {
                diesel::sql_query(&sql)
                    .bind::<Timestamp, _>(at)
                    .bind::<BigInt, _>(limit * 4)
                    .load(conn)
                    .await?
            } else {
                runs::table
                    .filter(
                        runs::status
                            .eq(PENDING)
                            .and(runs::next_attempt_at.le(at))
                            .or(runs::status.eq(RUNNING).and(runs::lease_expires_at.lt(at))),
                    )
                    .order(runs::next_attempt_at.asc())
                    .limit(limit * 4)
                    .select((runs::id, runs::integration_id))
                    .load::<(String, String)>(conn)
                    .await?
                    .into_iter()
                    .map(|(id, integration_id)| Due { id, integration_id })
                    .collect()
            };
            if due.is_empty() {
                return Ok(Vec::new());
            }
            let integration_ids: Vec<&String> = due.iter().map(|d| &d.integration_id).collect();
            let infrastructure: BTreeSet<String> = integrations::table
                .filter(integrations::id.eq_any(&integration_ids))
                .filter(integrations::category.eq("infrastructure"))
                .select(integrations::id)
                .load::<String>(conn)
                .await?
                .into_iter()
                .collect();
            let mut busy: BTreeSet<String> = if infrastructure.is_empty() {
                BTreeSet::new()
            } else {
                runs::table
                    .filter(runs::integration_id.eq_any(&infrastructure))
                    .filter(runs::status.eq(RUNNING))
                    .filter(runs::lease_expires_at.ge(at))
                    .select(runs::integration_id)
                    .load::<String>(conn)
                    .await?
                    .into_iter()
                    .collect()
            };
            let mut chosen = Vec::new();
            for d in due {
                if chosen.len() as i64 >= limit {
                    break;
                }
                if infrastructure.contains(&d.integration_id)
                    && !busy.insert(d.integration_id.clone())
                {
                    continue;
                }
                chosen.push(d.id);
            }
            if chosen.is_empty() {
                return Ok(Vec::new());
            }
            // One statement for the whole batch; the condition is checked again so a run
            // another node took since the look stays theirs.
            let claimed: Vec<Run> = diesel::update(runs::table)
                .filter(runs::id.eq_any(&chosen))
                .filter(
                    runs::status
                        .eq(PENDING)
                        .and(runs::next_attempt_at.le(at))
                        .or(runs::status.eq(RUNNING).and(runs::lease_expires_at.lt(at))),
                )
                .set((
                    runs::status.eq(RUNNING),
                    runs::lease_owner.eq(worker),
                    runs::lease_expires_at.eq(until),
                    runs::attempts.eq(runs::attempts + 1),
                ))
                .returning(Run::as_returning())
                .get_results(conn)
                .await?;
            Ok(claimed)
        })?;
        self.claimed(claimed).await
    }

    /// When the earliest waiting run falls due (UTC), if any run waits: idle workers sleep
    /// until then rather than a whole poll interval, so a debounced sync or a retry starts
    /// on time. One read of the `(status, next_attempt_at)` index.
    ///
    /// # Errors
    ///
    /// Any [`DbError`].
    pub async fn next_due_at(&self) -> Result<Option<NaiveDateTime>, DbError> {
        Ok(with_conn!(self, |conn| {
            runs::table
                .filter(runs::status.eq(PENDING))
                .select(diesel::dsl::min(runs::next_attempt_at))
                .first::<Option<NaiveDateTime>>(conn)
                .await?
        }))
    }

    fn placeholder(&self, n: usize) -> String {
        match self.backend() {
            Backend::Postgres => format!("${n}"),
            Backend::Sqlite => "?".to_owned(),
        }
    }

    /// What the workers need to deliver `runs`: targets, events and slugs, loaded with one
    /// query per table for the whole batch (a change fanned out to ten integrations is read
    /// once, not ten times).
    async fn claimed(&self, mut runs: Vec<Run>) -> Result<Vec<Claimed>, DbError> {
        if runs.is_empty() {
            return Ok(Vec::new());
        }
        runs.sort_by_key(|run| run.next_attempt_at);
        let target_ids: BTreeSet<&String> = runs.iter().map(|r| &r.integration_id).collect();
        let event_ids: BTreeSet<&String> =
            runs.iter().filter_map(|r| r.event_id.as_ref()).collect();
        let (targets, events, names) = with_conn!(self, |conn| {
            let targets: Vec<Target> = integrations::table
                .filter(integrations::id.eq_any(&target_ids))
                .select(Target::as_select())
                .load(conn)
                .await?;
            let events: Vec<Event> = if event_ids.is_empty() {
                Vec::new()
            } else {
                events::table
                    .filter(events::id.eq_any(&event_ids))
                    .select(Event::as_select())
                    .load(conn)
                    .await?
            };
            let names = slug_names!(conn, &events);
            (targets, events, names)
        });
        let targets: BTreeMap<String, Target> =
            targets.into_iter().map(|t| (t.id.clone(), t)).collect();
        let events: BTreeMap<String, (Event, EventSlugs)> = events
            .into_iter()
            .map(|event| {
                let slugs = names.slugs(&event);
                (event.id.clone(), (event, slugs))
            })
            .collect();
        let mut out = Vec::with_capacity(runs.len());
        for run in runs {
            // An integration deleted since the claim has its runs deleted with it.
            let Some(target) = targets.get(&run.integration_id).cloned() else {
                continue;
            };
            let (event, slugs) = match run.event_id.as_ref().and_then(|id| events.get(id)) {
                Some((event, slugs)) => (Some(event.clone()), slugs.clone()),
                None => (None, EventSlugs::default()),
            };
            out.push(Claimed {
                run,
                target,
                event,
                slugs,
            });
        }
        Ok(out)
    }

    /// Records an attempt of a run held by `worker` and finishes the run or schedules its next
    /// try. Returns `false` (and records nothing) when the worker no longer holds the run: its
    /// lease expired and another worker took it.
    ///
    /// # Errors
    ///
    /// Any [`DbError`].
    pub async fn finish_attempt(
        &self,
        run: &Run,
        worker: &str,
        result: &AttemptResult,
    ) -> Result<bool, DbError> {
        let recorded = self.finish_attempts(worker, &[(run, result)]).await?;
        Ok(recorded[0])
    }

    /// [`Db::finish_attempt`] for many runs in one transaction (a worker records a batch of
    /// attempts at once). Returns, per item, whether it was recorded.
    ///
    /// # Errors
    ///
    /// Any [`DbError`]; nothing is recorded then.
    pub async fn finish_attempts(
        &self,
        worker: &str,
        items: &[(&Run, &AttemptResult)],
    ) -> Result<Vec<bool>, DbError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let at = now();
        let rows: Vec<(RunAttempt, Option<String>)> = items
            .iter()
            .map(|(run, result)| {
                let excerpt: String = result.excerpt.chars().take(1024).collect();
                let error = (result.outcome != "succeeded").then(|| excerpt.clone());
                let attempt = RunAttempt {
                    id: new_id(),
                    run_id: run.id.clone(),
                    number: run.attempts,
                    started_at: result.started_at,
                    duration_ms: result.duration.as_millis().min(i64::MAX as u128) as i64,
                    outcome: result.outcome.to_owned(),
                    http_status: result.http_status.map(i32::from),
                    excerpt,
                    next_attempt_at: result.retry_at,
                };
                (attempt, error)
            })
            .collect();
        transaction!(self, |conn| {
            let mut recorded = vec![false; items.len()];
            let mut attempts: Vec<RunAttempt> = Vec::with_capacity(items.len());
            for (i, ((run, result), (attempt, error))) in items.iter().zip(&rows).enumerate() {
                // Only while this worker still holds this attempt of the run.
                let mine = runs::table
                    .filter(runs::id.eq(&run.id))
                    .filter(runs::status.eq(RUNNING))
                    .filter(runs::lease_owner.eq(worker))
                    .filter(runs::attempts.eq(run.attempts));
                let updated = match result.retry_at {
                    Some(next) => {
                        diesel::update(mine)
                            .set((
                                runs::status.eq(PENDING),
                                runs::next_attempt_at.eq(next),
                                runs::lease_owner.eq(None::<String>),
                                runs::lease_expires_at.eq(None::<NaiveDateTime>),
                                runs::last_error.eq(error),
                            ))
                            .execute(conn)
                            .await?
                    }
                    None => {
                        let status = if result.outcome == "succeeded" {
                            SUCCEEDED
                        } else {
                            FAILED
                        };
                        diesel::update(mine)
                            .set((
                                runs::status.eq(status),
                                runs::lease_owner.eq(None::<String>),
                                runs::lease_expires_at.eq(None::<NaiveDateTime>),
                                runs::last_error.eq(error),
                                runs::finished_at.eq(Some(at)),
                            ))
                            .execute(conn)
                            .await?
                    }
                };
                if updated == 1 {
                    recorded[i] = true;
                    attempts.push(attempt.clone());
                }
            }
            conn.insert_many(&attempts).await?;
            Ok(recorded)
        })
    }

    /// Runs of an integration, newest first, optionally of one status.
    ///
    /// # Errors
    ///
    /// [`DbError::InvalidInput`] for a foreign cursor, or any [`DbError`].
    pub async fn list_runs(
        &self,
        integration_id: &str,
        status: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<Run>, DbError> {
        let after = page
            .after
            .as_deref()
            .map(crate::util::decode_time_cursor)
            .transpose()?;
        let limit = page.limit();
        let rows: Vec<Run> = with_conn!(self, |conn| {
            let mut query = runs::table
                .filter(runs::integration_id.eq(integration_id))
                .into_boxed();
            if let Some(status) = status {
                query = query.filter(runs::status.eq(status));
            }
            if let Some((at, id)) = &after {
                query = query.filter(
                    runs::created_at
                        .lt(at)
                        .or(runs::created_at.eq(at).and(runs::id.lt(id))),
                );
            }
            query
                .order((runs::created_at.desc(), runs::id.desc()))
                .limit(limit + 1)
                .select(Run::as_select())
                .load(conn)
                .await?
        });
        Ok(Page::from_rows(rows, limit, |r| {
            crate::util::time_key(r.created_at, &r.id)
        }))
    }

    /// One run of an integration with its attempts (oldest first).
    ///
    /// # Errors
    ///
    /// [`DbError::NotFound`], or any other [`DbError`].
    pub async fn get_run(
        &self,
        integration_id: &str,
        run_id: &str,
    ) -> Result<(Run, Vec<RunAttempt>), DbError> {
        with_conn!(self, |conn| {
            let run: Run = runs::table
                .filter(runs::id.eq(run_id))
                .filter(runs::integration_id.eq(integration_id))
                .select(Run::as_select())
                .first(conn)
                .await?;
            let attempts: Vec<RunAttempt> = run_attempts::table
                .filter(run_attempts::run_id.eq(run_id))
                .order(run_attempts::number.asc())
                .select(RunAttempt::as_select())
                .load(conn)
                .await?;
            Ok((run, attempts))
        })
    }

    /// Puts failed runs of an integration back in the queue, due now: one (`run_id`) or every
    /// one that failed since `since`. Returns how many. Their attempt count continues.
    ///
    /// # Errors
    ///
    /// Any [`DbError`].
    pub async fn retry_runs(
        &self,
        integration_id: &str,
        run_id: Option<&str>,
        since: Option<NaiveDateTime>,
    ) -> Result<usize, DbError> {
        let at = now();
        transaction!(self, |conn| {
            let mut query = runs::table
                .filter(runs::integration_id.eq(integration_id))
                .filter(runs::status.eq(FAILED))
                .select(runs::id)
                .into_boxed();
            if let Some(id) = run_id {
                query = query.filter(runs::id.eq(id));
            }
            if let Some(since) = since {
                query = query.filter(runs::finished_at.ge(since));
            }
            let ids: Vec<String> = query.load(conn).await?;
            let n = diesel::update(runs::table.filter(runs::id.eq_any(&ids)))
                .set((
                    runs::status.eq(PENDING),
                    runs::next_attempt_at.eq(at),
                    runs::finished_at.eq(None::<NaiveDateTime>),
                ))
                .execute(conn)
                .await?;
            Ok(n)
        })
    }

    /// Counts of runs by status, over every integration (for metrics and tests).
    ///
    /// # Errors
    ///
    /// Any [`DbError`].
    pub async fn run_counts(&self) -> Result<BTreeMap<String, i64>, DbError> {
        let rows: Vec<(String, i64)> = with_conn!(self, |conn| {
            runs::table
                .group_by(runs::status)
                .select((runs::status, diesel::dsl::count_star()))
                .load(conn)
                .await?
        });
        Ok(rows.into_iter().collect())
    }

    /// Delivery summary per integration: the newest run's status and time, and how many runs
    /// succeeded and failed.
    ///
    /// # Errors
    ///
    /// Any [`DbError`].
    pub async fn run_summaries(
        &self,
        integration_ids: &[String],
    ) -> Result<BTreeMap<String, RunSummary>, DbError> {
        if integration_ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        let (counts, latest) = with_conn!(self, |conn| {
            let counts: Vec<(String, String, i64)> = runs::table
                .filter(runs::integration_id.eq_any(integration_ids))
                .filter(runs::status.eq_any([SUCCEEDED, FAILED]))
                .group_by((runs::integration_id, runs::status))
                .select((
                    runs::integration_id,
                    runs::status,
                    diesel::dsl::count_star(),
                ))
                .load(conn)
                .await?;
            let latest: Vec<(String, String, NaiveDateTime)> = runs::table
                .filter(runs::integration_id.eq_any(integration_ids))
                .order((runs::integration_id.asc(), runs::created_at.desc()))
                .select((runs::integration_id, runs::status, runs::created_at))
                .load(conn)
                .await?;
            (counts, latest)
        });
        let mut out: BTreeMap<String, RunSummary> = BTreeMap::new();
        for (id, status, count) in counts {
            let entry = out.entry(id).or_default();
            if status == SUCCEEDED {
                entry.succeeded = count;
            } else {
                entry.failed = count;
            }
        }
        for (id, status, at) in latest {
            let entry = out.entry(id).or_default();
            if entry.last_run_at.is_none() {
                entry.last_run_status = Some(status);
                entry.last_run_at = Some(at);
            }
        }
        Ok(out)
    }

    /// Runs due now and the age of the oldest one, in seconds (0 when none is due).
    ///
    /// # Errors
    ///
    /// Any [`DbError`].
    pub async fn queue_stats(&self) -> Result<(i64, f64), DbError> {
        let at = now();
        let (due, oldest): (i64, Option<NaiveDateTime>) = with_conn!(self, |conn| {
            let due: i64 = runs::table
                .filter(runs::status.eq(PENDING))
                .filter(runs::next_attempt_at.le(at))
                .count()
                .get_result(conn)
                .await?;
            let oldest: Option<NaiveDateTime> = runs::table
                .filter(runs::status.eq(PENDING))
                .filter(runs::next_attempt_at.le(at))
                .select(diesel::dsl::min(runs::next_attempt_at))
                .first(conn)
                .await?;
            (due, oldest)
        });
        let age = oldest.map_or(0.0, |t| (at - t).num_milliseconds().max(0) as f64 / 1000.0);
        Ok((due, age))
    }

    /// On PostgreSQL, listens for runs written by other nodes and wakes this node's workers
    /// (`Db::committed`) at once; reconnects after a failure. Returns at once on SQLite. Run
    /// it as a task for the life of the process.
    pub async fn listen_for_runs(self) {
        use diesel_async::AsyncConnection as _;
        use futures_util::StreamExt as _;
        let url = match self.target() {
            crate::database_url::Target::Postgres { url, .. } => url.clone(),
            crate::database_url::Target::Sqlite { .. } => return,
        };
        loop {
            // Bounded like every other connection attempt: a server that stops answering
            // must not hold the listener for the TCP timeout.
            match self
                .acquire(diesel_async::AsyncPgConnection::establish(&url))
                .await
            {
                Ok(mut conn) => {
                    if let Err(err) = diesel::sql_query(format!("LISTEN {RUNS_CHANNEL}"))
                        .execute(&mut conn)
                        .await
                    {
                        tracing::warn!(error = %self.scrub(&err.to_string()), "cannot LISTEN for runs; polling only");
                    } else {
                        tracing::debug!("listening for runs from other nodes");
                        let mut notifications = std::pin::pin!(conn.notifications_stream());
                        while let Some(notification) = notifications.next().await {
                            if notification.is_err() {
                                break;
                            }
                            self.committed().notify_waiters();
                        }
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %self.scrub(&err.to_string()), "cannot connect to LISTEN for runs; polling only")
                }
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
}

/// Enqueues a sync on either connection type (see [`FanOut::enqueue_sync`]).
pub(crate) async fn enqueue_sync_on<C: FanOut>(
    conn: &mut C,
    integration_id: &str,
) -> Result<(String, bool), DbError> {
    let queued = conn.enqueue_sync(integration_id, None).await?;
    if queued.1 {
        conn.announce_runs().await?;
    }
    Ok(queued)
}
