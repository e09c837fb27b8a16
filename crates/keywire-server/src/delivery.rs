//! Delivery workers: claim due runs, deliver them through their integration, record each
//! attempt, and retry on the schedule.
//!
//! Workers run on the background (multi-threaded) runtime, never on an actix worker. They wake
//! when a write commits in this process (`Db::committed`) and poll as a fallback, so a change
//! made on another node is picked up within one poll interval.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keywire_core::{
    Actor, Context, Delivery, EventData, EventSource, EventType, IntegrationError, Severity, find,
};
use keywire_db::delivery::{AttemptResult, Claimed, Run};
use tokio::sync::watch;

use crate::state::AppState;

/// How workers behave.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// How many runs are delivered at once (one per worker task).
    pub workers: usize,
    /// Wait before each attempt: the first entry before the first try (usually 0), and so on;
    /// its length is the number of attempts.
    pub schedule: Vec<Duration>,
    /// How long a claim holds; must exceed the attempt timeout.
    pub lease: Duration,
    /// Longest a single attempt may take.
    pub attempt_timeout: Duration,
    /// How often idle workers look for due runs.
    pub poll: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            workers: 4,
            schedule: parse_schedule(DEFAULT_SCHEDULE).expect("the default schedule parses"),
            lease: Duration::from_secs(60),
            attempt_timeout: Duration::from_secs(15),
            poll: Duration::from_secs(1),
        }
    }
}

/// Svix's schedule: at once, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
pub const DEFAULT_SCHEDULE: &str = "0s,5s,5m,30m,2h,5h,10h,10h";

/// Parses `250ms`, `5s`, `5m`, `2h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 250ms, 5s, 5m or 2h"))?;
    let duration = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => {
            return Err(format!(
                "`{text}` is not a duration like 250ms, 5s, 5m or 2h"
            ));
        }
    };
    Ok(duration)
}

/// Parses a comma-separated retry schedule (`0s,5s,5m`).
pub fn parse_schedule(text: &str) -> Result<Vec<Duration>, String> {
    let schedule: Vec<Duration> = text
        .split(',')
        .map(parse_duration)
        .collect::<Result<_, _>>()?;
    if schedule.is_empty() || schedule.len() > 50 {
        return Err("the retry schedule needs 1 to 50 entries".into());
    }
    Ok(schedule)
}

/// Starts the workers on `runtime`; they stop after their current attempt once `stop` is true.
pub fn spawn_workers(
    state: AppState,
    config: WorkerConfig,
    runtime: &tokio::runtime::Handle,
    stop: watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let node = format!(
        "{}-{}",
        std::process::id(),
        &keywire_db::generate_token()[3..11]
    );
    let built = Built::default();
    (0..config.workers.max(1))
        .map(|i| {
            let worker = Worker {
                id: format!("{node}/{i}"),
                state: state.clone(),
                config: config.clone(),
                stop: stop.clone(),
                built: built.clone(),
            };
            runtime.spawn(worker.run())
        })
        .collect()
}

/// Runs a worker claims at once. They are attempted concurrently and recorded together, so a
/// busy queue costs two transactions per batch instead of two per delivery.
const CLAIM_BATCH: i64 = 32;

struct Worker {
    id: String,
    state: AppState,
    config: WorkerConfig,
    stop: watch::Receiver<bool>,
    built: Built,
}

/// Integrations built from their stored settings, shared by the workers of this process and
/// keyed by integration id. An entry is used only while the sealed settings it was built from
/// are still the stored ones, so an update takes effect at the next delivery; decrypting,
/// parsing and building once per settings version instead of once per delivery.
#[derive(Clone, Default)]
struct Built(Arc<Mutex<HashMap<String, Arc<Ready>>>>);

/// An integration ready to deliver, and the credential values to scrub from what it reports.
struct Ready {
    sealed: String,
    integration: Box<dyn keywire_core::Integration>,
    secrets: Vec<String>,
}

/// Most integrations kept built; past it the map starts over (a rebuild is cheap).
const BUILT_CAPACITY: usize = 4096;

impl Built {
    fn get(&self, id: &str, sealed: &str) -> Option<Arc<Ready>> {
        let map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(id).filter(|ready| ready.sealed == sealed).cloned()
    }

    fn put(&self, id: &str, ready: Arc<Ready>) {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= BUILT_CAPACITY {
            map.clear();
        }
        map.insert(id.to_owned(), ready);
    }
}

/// What one attempt produced, to be recorded.
struct Done {
    run: Run,
    result: AttemptResult,
    event_created_at: Option<chrono::NaiveDateTime>,
}

impl Worker {
    async fn run(mut self) {
        tracing::debug!(worker = %self.id, "delivery worker started");
        loop {
            if *self.stop.borrow() {
                break;
            }
            // Register for the wake-up before looking, so a commit between the look and the
            // wait is not missed.
            let db = self.state.db.clone();
            let committed = db.committed().notified();
            match self
                .state
                .db
                .claim_runs(&self.id, CLAIM_BATCH, self.config.lease)
                .await
            {
                Ok(claimed) if !claimed.is_empty() => {
                    self.deliver_all(claimed).await;
                    continue;
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(worker = %self.id, error = %err, "cannot claim runs"),
            }
            let wait = self.idle_wait().await;
            tokio::select! {
                () = committed => {}
                () = tokio::time::sleep(wait) => {}
                _ = self.stop.changed() => {}
            }
        }
        tracing::debug!(worker = %self.id, "delivery worker stopped");
    }

    /// How long to sleep when nothing is due: until the earliest waiting run falls due, at
    /// most one poll interval (which also covers runs of other nodes and expired leases).
    async fn idle_wait(&self) -> Duration {
        match self.state.db.next_due_at().await {
            Ok(Some(due)) => {
                let until = (due - chrono::Utc::now().naive_utc())
                    .to_std()
                    .unwrap_or_default();
                // A run due now that this worker could not claim is another's: do not spin.
                until.clamp(
                    Duration::from_millis(50).min(self.config.poll),
                    self.config.poll,
                )
            }
            Ok(None) | Err(_) => self.config.poll,
        }
    }

    /// Attempts every claimed run at once (each in its own task, so a slow provider holds up
    /// only its own delivery) and records the attempts as they end, together when several end
    /// together.
    async fn deliver_all(&self, claimed: Vec<Claimed>) {
        let mut tasks = tokio::task::JoinSet::new();
        for run in claimed {
            let attempt = Attempter {
                state: self.state.clone(),
                config: self.config.clone(),
                built: self.built.clone(),
            };
            tasks.spawn(async move { attempt.deliver(run).await });
        }
        while let Some(first) = tasks.join_next().await {
            let mut done: Vec<Done> = Vec::new();
            let mut push = |joined: Result<Done, tokio::task::JoinError>| match joined {
                Ok(one) => done.push(one),
                // The lease expires and the run is tried again.
                Err(err) => tracing::error!(error = %err, "a delivery task failed"),
            };
            push(first);
            while let Some(more) = tasks.try_join_next() {
                push(more);
            }
            self.record(done).await;
        }
    }

    /// Records finished attempts in one transaction.
    async fn record(&self, done: Vec<Done>) {
        if done.is_empty() {
            return;
        }
        let items: Vec<(&Run, &AttemptResult)> = done.iter().map(|d| (&d.run, &d.result)).collect();
        // The deliveries happened: keep trying to record them while the leases hold (a
        // database blip would otherwise make the runs be delivered again).
        let deadline = done
            .iter()
            .filter_map(|d| d.run.lease_expires_at)
            .min()
            .map(|expires| expires - chrono::Duration::seconds(1));
        let mut pause = Duration::from_millis(50);
        let recorded = loop {
            match self.state.db.finish_attempts(&self.id, &items).await {
                Err(keywire_db::DbError::Unavailable(why))
                    if deadline.is_some_and(|deadline| {
                        chrono::Utc::now().naive_utc()
                            + chrono::Duration::from_std(pause).unwrap_or_default()
                            < deadline
                    }) =>
                {
                    tracing::debug!(error = %why, "cannot record attempts yet; trying again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
                other => break other,
            }
        };
        match recorded {
            Ok(recorded) => {
                for (d, recorded) in done.iter().zip(recorded) {
                    if !recorded {
                        tracing::warn!(run = %d.run.id, "lease lost before the attempt was recorded");
                        continue;
                    }
                    self.state.metrics.attempt(d.result.outcome);
                    if d.result.outcome == "succeeded"
                        && let Some(created_at) = d.event_created_at
                    {
                        let waited = chrono::Utc::now().naive_utc() - created_at;
                        self.state
                            .metrics
                            .delivered(waited.to_std().unwrap_or_default());
                    }
                }
            }
            Err(err) => {
                tracing::warn!(runs = done.len(), error = %err, "cannot record the attempts; their leases will expire and the runs be retried");
            }
        }
    }
}

/// What one delivery task needs (owned: it runs as its own task).
struct Attempter {
    state: AppState,
    config: WorkerConfig,
    built: Built,
}

impl Attempter {
    async fn deliver(&self, claimed: Claimed) -> Done {
        let started_at = chrono::Utc::now().naive_utc();
        let clock = Instant::now();
        let (outcome, ready) = self.attempt(&claimed).await;
        let duration = clock.elapsed();
        let attempts = usize::try_from(claimed.run.attempts).unwrap_or(usize::MAX);
        let no_secrets = Vec::new();
        let secrets = ready.as_ref().map_or(&no_secrets, |r| &r.secrets);
        let result = classify(
            outcome,
            secrets,
            attempts,
            &self.config,
            started_at,
            duration,
        );
        tracing::info!(
            run = %claimed.run.id,
            integration = %claimed.target.slug,
            attempt = claimed.run.attempts,
            outcome = result.outcome,
            status = result.http_status,
            millis = duration.as_millis() as u64,
            "delivery attempt"
        );
        Done {
            event_created_at: claimed.event.as_ref().map(|e| e.created_at),
            run: claimed.run,
            result,
        }
    }

    /// The integration of `target` built from its stored settings (cached per settings
    /// version), or why it cannot be.
    fn ready(&self, target: &keywire_db::delivery::Target) -> Result<Arc<Ready>, Attempt> {
        if let Some(ready) = self.built.get(&target.id, &target.metadata) {
            return Ok(ready);
        }
        let Some(descriptor) = find(&target.integration_type) else {
            return Err(Attempt::Permanent(
                format!(
                    "integration type `{}` is not in this build",
                    target.integration_type
                ),
                None,
            ));
        };
        let metadata = self
            .state
            .cipher
            .open_text(&target.metadata, &format!("integrations/{}", target.id))
            .map_err(|err| {
                Attempt::Permanent(
                    format!("the integration's settings cannot be decrypted: {err}"),
                    None,
                )
            })?;
        let metadata: serde_json::Value = serde_json::from_str(&metadata).unwrap_or_default();
        // Every credential string, maps and lists of credentials included.
        let secrets: Vec<String> = descriptor
            .secret_values(&metadata)
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect();
        let integration = descriptor.build(&metadata).map_err(|errors| {
            Attempt::Permanent(
                scrub(
                    &format!("the stored settings are no longer valid: {errors}"),
                    &secrets,
                ),
                None,
            )
        })?;
        let ready = Arc::new(Ready {
            sealed: target.metadata.clone(),
            integration,
            secrets,
        });
        self.built.put(&target.id, ready.clone());
        Ok(ready)
    }

    /// One attempt. Returns its result and the built integration (whose credential values
    /// are scrubbed from excerpts).
    async fn attempt(&self, claimed: &Claimed) -> (Attempt, Option<Arc<Ready>>) {
        let target = &claimed.target;
        if !target.enabled {
            return (
                Attempt::Permanent("the integration is disabled".into(), None),
                None,
            );
        }
        let ready = match self.ready(target) {
            Ok(ready) => ready,
            Err(why) => return (why, None),
        };
        let integration = ready.integration.as_ref();
        let ctx = Context {
            http: self.state.http.clone(),
            public_url: self.state.public_url.clone(),
        };
        if claimed.run.kind == "sync" {
            let outcome = match tokio::time::timeout(
                self.config.attempt_timeout,
                self.sync(&claimed.target.slug, integration, &ctx),
            )
            .await
            {
                Err(_) => Attempt::Timeout,
                Ok(Ok(summary)) => Attempt::Delivered(None, summary),
                Ok(Err(err)) => {
                    let err = err.into_integration_error();
                    if err.is_retryable() {
                        Attempt::Retryable(err)
                    } else {
                        let status = err.status();
                        Attempt::Permanent(err.to_string(), status)
                    }
                }
            };
            return (outcome, Some(ready));
        }
        let Some(event) = &claimed.event else {
            return (
                Attempt::Permanent("the run has no event to deliver".into(), None),
                Some(ready),
            );
        };
        let Some(data) = event_data(event, &claimed.slugs) else {
            return (
                Attempt::Permanent("the event is not readable".into(), None),
                Some(ready),
            );
        };
        let attempt = u32::try_from(claimed.run.attempts).unwrap_or(u32::MAX);
        let delivery = Delivery {
            message_id: &claimed.run.id,
            attempt,
            event: &data,
        };
        let outcome = match tokio::time::timeout(
            self.config.attempt_timeout,
            integration.emit(&ctx, delivery),
        )
        .await
        {
            Err(_) => Attempt::Timeout,
            Ok(Ok(outcome)) => Attempt::Delivered(outcome.status, outcome.excerpt),
            Ok(Err(err)) if err.is_retryable() => Attempt::Retryable(err),
            Ok(Err(err)) => {
                let status = err.status();
                Attempt::Permanent(err.to_string(), status)
            }
        };
        (outcome, Some(ready))
    }
}

impl Attempter {
    /// A sync run: the integration as stored now (its mapping, actions and settings), planned
    /// and applied by [`crate::sync::run`].
    async fn sync(
        &self,
        slug: &str,
        integration: &dyn keywire_core::Integration,
        ctx: &Context,
    ) -> Result<String, crate::sync::SyncError> {
        let stored = self
            .state
            .db
            .integration_by_slug(slug)
            .await
            .map_err(crate::sync::storage)?;
        crate::sync::run(&self.state, &stored, integration, ctx).await
    }
}

enum Attempt {
    Delivered(Option<u16>, String),
    Retryable(IntegrationError),
    Timeout,
    Permanent(String, Option<u16>),
}

/// Replaces every credential value in `text` with `***`.
///
/// Excerpts are cut before they get here, so a credential may also stand at the end cut
/// short: a tail of 4 or more characters that begins a credential is blanked too.
fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_owned();
    for secret in secrets {
        if secret.len() >= 4 {
            out = out.replace(secret.as_str(), "***");
        }
    }
    for secret in secrets {
        if secret.len() < 4 {
            continue;
        }
        // The longest tail of `out` that is a prefix of `secret` (at least 4 bytes long).
        let longest = secret.len().min(out.len());
        let cut = (4..=longest)
            .rev()
            .map(|n| out.len() - n)
            .find(|&start| out.is_char_boundary(start) && secret.starts_with(&out[start..]));
        if let Some(start) = cut {
            out.truncate(start);
            out.push_str("***");
        }
    }
    out
}

fn classify(
    attempt: Attempt,
    secrets: &[String],
    attempts: usize,
    config: &WorkerConfig,
    started_at: chrono::NaiveDateTime,
    duration: Duration,
) -> AttemptResult {
    let retry = |wait: Option<Duration>| -> Option<chrono::NaiveDateTime> {
        let planned = config.schedule.get(attempts)?;
        let delay = jitter(*planned).max(wait.unwrap_or(Duration::ZERO));
        Some(
            chrono::Utc::now().naive_utc()
                + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::hours(24)),
        )
    };
    let (outcome, http_status, excerpt, retry_at) = match attempt {
        Attempt::Delivered(status, excerpt) => ("succeeded", status, excerpt, None),
        Attempt::Timeout => (
            "timeout",
            None,
            format!("no answer within {:?}", config.attempt_timeout),
            retry(None),
        ),
        Attempt::Retryable(err) => (
            "retryable_failure",
            err.status(),
            err.to_string(),
            retry(err.retry_after()),
        ),
        Attempt::Permanent(message, status) => ("permanent_failure", status, message, None),
    };
    AttemptResult {
        outcome,
        started_at,
        duration,
        http_status,
        excerpt: scrub(&excerpt, secrets),
        retry_at,
    }
}

/// ±10 % so that many runs failing together do not retry in lockstep.
fn jitter(delay: Duration) -> Duration {
    if delay.is_zero() {
        return delay;
    }
    let mut byte = [0_u8; 1];
    if getrandom::fill(&mut byte).is_err() {
        return delay;
    }
    let factor = 0.9 + 0.2 * f64::from(byte[0]) / 255.0;
    delay.mul_f64(factor)
}

/// The event as integrations receive it.
fn event_data(
    event: &keywire_db::Event,
    slugs: &keywire_db::delivery::EventSlugs,
) -> Option<EventData> {
    Some(EventData {
        id: event.id.clone(),
        event_type: EventType::parse(&event.event_type)?,
        source: wire::<EventSource>(&event.source)?,
        severity: wire::<Severity>(&event.severity).unwrap_or(Severity::Info),
        title: event.title.clone(),
        workspace: slugs.workspace.clone(),
        project: slugs.project.clone(),
        environments: slugs.environments.clone(),
        actor: Actor {
            id: event.actor_id.clone(),
            name: event.actor_name.clone(),
        },
        created_at: event.created_at.and_utc(),
        payload: serde_json::from_str(&event.payload).unwrap_or_default(),
    })
}

/// Parses a value from its wire name (`SECRET`, `INFO`).
fn wire<T: serde::de::DeserializeOwned>(name: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
}

#[cfg(test)]
mod scrub_tests {
    use super::scrub;

    #[test]
    fn whole_and_cut_short_credentials_are_blanked() {
        let secrets = vec!["s3cr3t-token-value".to_owned(), "abc".to_owned()];
        assert_eq!(
            scrub("auth s3cr3t-token-value refused", &secrets),
            "auth *** refused"
        );
        assert_eq!(scrub("echo: s3cr3t-tok", &secrets), "echo: ***");
        assert_eq!(
            scrub("echo: s3c", &secrets),
            "echo: s3c",
            "3 bytes say nothing"
        );
        assert_eq!(scrub("ends with é", &secrets), "ends with é");
        assert_eq!(scrub("short abc", &secrets), "short abc");
    }
}
