//! `/metrics` in the Prometheus text format: delivery counters kept in process, and queue
//! figures read from the database at scrape time (so every node reports the shared queue).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::{HttpResponse, get, web};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::error::ApiError;
use crate::state::AppState;

/// Registers the route.
pub fn config(cfg: &mut ServiceConfig) {
    cfg.service(metrics);
}

/// Upper bounds (seconds) of the event-to-delivery latency histogram.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];
const OUTCOMES: [&str; 4] = [
    "succeeded",
    "retryable_failure",
    "permanent_failure",
    "timeout",
];

/// Counters this process updates.
#[derive(Debug, Default)]
pub struct Metrics {
    attempts: [AtomicU64; 4],
    latency_buckets: [AtomicU64; 12],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
}

impl Metrics {
    /// Counts one attempt by outcome.
    pub fn attempt(&self, outcome: &str) {
        if let Some(i) = OUTCOMES.iter().position(|o| *o == outcome) {
            self.attempts[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records the time from an event to its successful delivery.
    pub fn delivered(&self, latency: std::time::Duration) {
        let seconds = latency.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_micros.fetch_add(
            latency.as_micros().min(u128::from(u64::MAX)) as u64,
            Ordering::Relaxed,
        );
    }

    fn render(
        &self,
        runs: &std::collections::BTreeMap<String, i64>,
        due: i64,
        oldest: f64,
    ) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP keywire_runs Delivery runs by status (all nodes).\n# TYPE keywire_runs gauge"
        );
        for status in ["pending", "running", "succeeded", "failed"] {
            let _ = writeln!(
                out,
                "keywire_runs{{status=\"{status}\"}} {}",
                runs.get(status).copied().unwrap_or(0)
            );
        }
        let _ = writeln!(
            out,
            "# HELP keywire_queue_depth Runs due now and waiting for a worker.\n# TYPE keywire_queue_depth gauge\nkeywire_queue_depth {due}"
        );
        let _ = writeln!(
            out,
            "# HELP keywire_oldest_due_run_age_seconds How long the oldest due run has waited.\n# TYPE keywire_oldest_due_run_age_seconds gauge\nkeywire_oldest_due_run_age_seconds {oldest}"
        );
        let _ = writeln!(
            out,
            "# HELP keywire_delivery_attempts_total Delivery attempts made by this node, by outcome.\n# TYPE keywire_delivery_attempts_total counter"
        );
        for (i, outcome) in OUTCOMES.iter().enumerate() {
            let _ = writeln!(
                out,
                "keywire_delivery_attempts_total{{outcome=\"{outcome}\"}} {}",
                self.attempts[i].load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP keywire_delivery_latency_seconds Time from an event to its successful delivery (this node).\n# TYPE keywire_delivery_latency_seconds histogram"
        );
        for (i, bound) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "keywire_delivery_latency_seconds_bucket{{le=\"{bound}\"}} {}",
                self.latency_buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "keywire_delivery_latency_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "keywire_delivery_latency_seconds_sum {}",
            self.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "keywire_delivery_latency_seconds_count {count}");
        out
    }
}

/// Prometheus metrics: runs by status, queue depth, oldest due run, attempts by outcome,
/// event-to-delivery latency.
#[utoipa::path(tag = "health", responses(
    (status = 200, description = "Metrics in the Prometheus text format", content_type = "text/plain"),
    (status = 503, description = "The database does not answer"),
))]
#[get("/metrics")]
async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let db = state.db.clone();
    let figures = state
        .background
        .spawn(async move {
            Ok::<_, keywire_db::DbError>((db.run_counts().await?, db.queue_stats().await?))
        })
        .await
        .map_err(|e| ApiError::internal(&e))??;
    let (runs, (due, oldest)) = figures;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render(&runs, due, oldest)))
}
