//! Delivery workers: claim due runs, deliver them through their integration, record each
//! attempt, and retry on the schedule.
//!
//! Workers run on the background (multi-threaded) runtime, never on an actix worker. They wake
//! when a write commits in this process (`Db::committed`) and poll as a fallback, so a change
//! made on another node is picked up within one poll interval.

use std::time::{Duration, Instant};

use keywire_core::{
    Actor, Context, Delivery, EventData, EventSource, EventType, IntegrationError, Severity, find,
};
use keywire_db::delivery::{AttemptResult, Claimed};
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
    (0..config.workers.max(1))
        .map(|i| {
            let worker = Worker {
                id: format!("{node}/{i}"),
                state: state.clone(),
                config: config.clone(),
                stop: stop.clone(),
            };
            runtime.spawn(worker.run())
        })
        .collect()
}

struct Worker {
    id: String,
    state: AppState,
    config: WorkerConfig,
    stop: watch::Receiver<bool>,
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
                .claim_runs(&self.id, 1, self.config.lease)
                .await
            {
                Ok(claimed) if !claimed.is_empty() => {
                    for run in claimed {
                        self.deliver(run).await;
                    }
                    continue;
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(worker = %self.id, error = %err, "cannot claim runs"),
            }
            tokio::select! {
                () = committed => {}
                () = tokio::time::sleep(self.config.poll) => {}
                _ = self.stop.changed() => {}
            }
        }
        tracing::debug!(worker = %self.id, "delivery worker stopped");
    }

    async fn deliver(&self, claimed: Claimed) {
        let started_at = chrono::Utc::now().naive_utc();
        let clock = Instant::now();
        let (outcome, secrets) = self.attempt(&claimed).await;
        let duration = clock.elapsed();
        let attempts = usize::try_from(claimed.run.attempts).unwrap_or(usize::MAX);
        let result = classify(
            outcome,
            &secrets,
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
        match self
            .state
            .db
            .finish_attempt(&claimed.run, &self.id, &result)
            .await
        {
            Ok(true) => {
                self.state.metrics.attempt(result.outcome);
                if result.outcome == "succeeded"
                    && let Some(event) = &claimed.event
                {
                    let waited = chrono::Utc::now().naive_utc() - event.created_at;
                    self.state
                        .metrics
                        .delivered(waited.to_std().unwrap_or_default());
                }
            }
            Ok(false) => {
                tracing::warn!(run = %claimed.run.id, "lease lost before the attempt was recorded")
            }
            Err(err) => {
                tracing::warn!(run = %claimed.run.id, error = %err, "cannot record the attempt; the lease will expire and the run be retried")
            }
        }
    }

    /// One attempt. Returns its result and the credential values to scrub from excerpts.
    async fn attempt(&self, claimed: &Claimed) -> (Attempt, Vec<String>) {
        let target = &claimed.target;
        if !target.enabled {
            return (
                Attempt::Permanent("the integration is disabled".into(), None),
                Vec::new(),
            );
        }
        let Some(descriptor) = find(&target.integration_type) else {
            return (
                Attempt::Permanent(
                    format!(
                        "integration type `{}` is not in this build",
                        target.integration_type
                    ),
                    None,
                ),
                Vec::new(),
            );
        };
        let metadata = match self
            .state
            .cipher
            .open_text(&target.metadata, &format!("integrations/{}", target.id))
        {
            Ok(text) => text,
            Err(err) => {
                return (
                    Attempt::Permanent(
                        format!("the integration's settings cannot be decrypted: {err}"),
                        None,
                    ),
                    Vec::new(),
                );
            }
        };
        let metadata: serde_json::Value = serde_json::from_str(&metadata).unwrap_or_default();
        // Every credential string, maps and lists of credentials included.
        let secrets: Vec<String> = descriptor
            .secret_values(&metadata)
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect();
        let integration = match descriptor.build(&metadata) {
            Ok(integration) => integration,
            Err(errors) => {
                return (
                    Attempt::Permanent(
                        format!("the stored settings are no longer valid: {errors}"),
                        None,
                    ),
                    secrets,
                );
            }
        };
        let ctx = Context {
            http: self.state.http.clone(),
            public_url: self.state.public_url.clone(),
        };
        if claimed.run.kind == "sync" {
            let outcome = match tokio::time::timeout(
                self.config.attempt_timeout,
                self.sync(&claimed.target.slug, integration.as_ref(), &ctx),
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
            return (outcome, secrets);
        }
        let Some(event) = &claimed.event else {
            return (
                Attempt::Permanent("the run has no event to deliver".into(), None),
                secrets,
            );
        };
        let Some(data) = event_data(event, &claimed.slugs) else {
            return (
                Attempt::Permanent("the event is not readable".into(), None),
                secrets,
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
        (outcome, secrets)
    }
}

impl Worker {
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
fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_owned();
    for secret in secrets {
        if secret.len() >= 4 {
            out = out.replace(secret.as_str(), "***");
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
