//! A sink outage: the sink answers 503 (first without, then with `Retry-After`), then never
//! answers, then resets connections, then recovers. Every delivery arrives, each attempt waits
//! what the schedule says, and `Retry-After` is honoured.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset};
use keywire_test_support::TestDb;
use keywire_test_support::fake::{FakeResponse, FakeServer};
use keywire_test_support::faults::{FaultProxy, ProxyMode};
use serde_json::{Value, json};

use crate::support::{ADMIN, Api};

/// The schedule under test: the wait before attempt 1, 2, 3...
const SCHEDULE: &str = "0s,200ms,300ms,400ms,500ms,500ms,500ms,500ms,500ms,500ms,500ms,500ms,\
                        500ms,500ms,500ms,500ms,500ms,500ms,500ms,500ms";
const POLL: Duration = Duration::from_millis(100);
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(800);
const ENV: &[(&str, &str)] = &[
    ("KEYWIRE_RETRY_SCHEDULE", SCHEDULE),
    ("KEYWIRE_POLL_INTERVAL", "100ms"),
    ("KEYWIRE_ATTEMPT_TIMEOUT", "800ms"),
    ("KEYWIRE_LEASE", "3s"),
];
const RETRY_AFTER_SECS: i64 = 1;
const CHANGES: usize = 5;

/// What the sink does, in order.
const DOWN: u8 = 0;
const DOWN_RETRY_AFTER: u8 = 1;
const SILENT: u8 = 2;
const RESETTING: u8 = 3;
const UP: u8 = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_outage_is_retried_on_schedule_until_every_delivery_arrives() {
    for db in TestDb::all().await {
        sink_outage(db).await;
    }
}

async fn sink_outage(db: TestDb) {
    let label = format!("sink outage ({})", db.backend());
    let started = Instant::now();
    let phase = Arc::new(AtomicU8::new(DOWN));
    let answered_503 = Arc::new(AtomicUsize::new(0));
    // Deliveries the sink accepted (answered 200), by `webhook-id`.
    let accepted = Arc::new(Mutex::new(BTreeMap::<String, usize>::new()));
    let sink = {
        let phase = phase.clone();
        let answered_503 = answered_503.clone();
        let accepted = accepted.clone();
        FakeServer::start(move |request| match phase.load(Ordering::SeqCst) {
            DOWN => {
                answered_503.fetch_add(1, Ordering::SeqCst);
                FakeResponse::json(503, json!({"error": "down"}))
            }
            DOWN_RETRY_AFTER => {
                answered_503.fetch_add(1, Ordering::SeqCst);
                FakeResponse::json(503, json!({"error": "down, come back later"}))
                    .with_header("retry-after", &RETRY_AFTER_SECS.to_string())
            }
            _ => {
                let id = request.header("webhook-id").unwrap_or_default().to_owned();
                *accepted.lock().unwrap().entry(id).or_default() += 1;
                FakeResponse::json(200, json!({"ok": true}))
            }
        })
    };
    // Timeouts and resets happen between keywire and the sink: the proxy blackholes or resets
    // connections while the sink behind it stays up.
    let upstream: SocketAddr = sink.url().trim_start_matches("http://").parse().unwrap();
    let proxy = FaultProxy::start(upstream);
    let api = Api::with_env(db, ENV);
    let ws = api.workspace("Sink outage").await;
    let project = api.project(&ws, "App").await;
    let hook = super::entry_hook(&api, &ws, "hook", &proxy.url()).await;
    let mut probes = super::Probes::default();
    for _ in 0..CHANGES {
        let (answer, _) = probes.write(&api, &project).await;
        assert_eq!(answer.status, 201, "{label}: {}", answer.text);
    }

    tokio::time::sleep(Duration::from_millis(1200)).await;
    phase.store(DOWN_RETRY_AFTER, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    phase.store(SILENT, Ordering::SeqCst);
    proxy.outage(ProxyMode::Blackhole);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    proxy.outage(ProxyMode::Reset);
    phase.store(RESETTING, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    phase.store(UP, Ordering::SeqCst);
    proxy.resume();
    let recovered = Instant::now();

    let events = super::check_events(&api, &ws, &probes.changes, &label).await;
    assert_eq!(events.len(), CHANGES, "{label}");
    let runs = super::drain(&api, &[&hook], CHANGES, Duration::from_secs(20)).await;
    let drained_in = recovered.elapsed();
    super::assert_no_secret_value(&sink, &label);
    let figures = super::check_deliveries(&events, &runs, &accepted.lock().unwrap(), &label);
    let schedule = keywire_server::delivery::parse_schedule(SCHEDULE).unwrap();
    let mut outcomes = BTreeMap::<String, usize>::new();
    let mut retry_after_checked = 0;
    let mut gaps_checked = 0;
    for run in &runs[&hook] {
        let id = run["id"].as_str().unwrap();
        let detail = api
            .get(&format!("/api/v1/integrations/{hook}/runs/{id}"), ADMIN)
            .await;
        let log = detail.expect(200)["attemptLog"].as_array().unwrap().clone();
        assert_eq!(
            log.last().unwrap()["outcome"],
            "succeeded",
            "{label}: {log:?}"
        );
        for (i, attempt) in log.iter().enumerate() {
            *outcomes.entry(attempt_kind(attempt)).or_default() += 1;
            let Some(next) = log.get(i + 1) else { break };
            let number = attempt["number"].as_u64().unwrap() as usize;
            let ended = time(attempt)
                + chrono::Duration::milliseconds(attempt["durationMs"].as_i64().unwrap());
            let due =
                DateTime::parse_from_rfc3339(attempt["nextAttemptAt"].as_str().unwrap()).unwrap();
            let planned = chrono::Duration::from_std(schedule[number]).unwrap();
            let waited = due - ended;
            let retry_after = attempt["excerpt"]
                .as_str()
                .unwrap()
                .contains("come back later");
            // The wait is the schedule's, ±10 % jitter, or the sink's Retry-After when longer.
            let floor = if retry_after {
                retry_after_checked += 1;
                chrono::Duration::seconds(RETRY_AFTER_SECS).max(planned * 9 / 10)
            } else {
                planned * 9 / 10
            };
            let ceiling = floor.max(planned * 11 / 10) + chrono::Duration::milliseconds(20);
            assert!(
                waited >= floor - chrono::Duration::milliseconds(2) && waited <= ceiling,
                "{label}: after attempt {number} the run waited {waited} (schedule {planned}, Retry-After {retry_after}): {log:?}"
            );
            // The next attempt is never early, and late by at most a poll and a claim.
            let late = time(next) - due;
            assert!(
                late >= chrono::Duration::zero()
                    && late
                        <= chrono::Duration::from_std(POLL).unwrap()
                            + chrono::Duration::milliseconds(900),
                "{label}: attempt {} started {late} after it was due: {log:?}",
                number + 1
            );
            gaps_checked += 1;
        }
    }
    for kind in ["503", "503 Retry-After", "timeout", "network", "succeeded"] {
        assert!(
            outcomes.get(kind).is_some_and(|n| *n > 0),
            "{label}: no `{kind}` attempt: {outcomes:?}"
        );
    }
    let proxied = proxy.figures();
    eprintln!(
        "{label}: faults injected: {} answers 503 ({} attempts with Retry-After: {RETRY_AFTER_SECS}), \
         {} connections blackholed, {} reset, {} cut; changes {CHANGES}; attempts by kind \
         {outcomes:?}; {gaps_checked} waits checked against the schedule; {figures}; drained {drained_in:.1?} after recovery; {:.1?} in all; \
         attempt timeout {ATTEMPT_TIMEOUT:?}",
        answered_503.load(Ordering::SeqCst),
        retry_after_checked,
        proxied.blackholed,
        proxied.reset,
        proxied.cut,
        started.elapsed()
    );
}

fn time(attempt: &Value) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(attempt["startedAt"].as_str().unwrap()).unwrap()
}

/// `503`, `503 Retry-After`, `timeout`, `network` (no answer: a reset) or the outcome.
fn attempt_kind(attempt: &Value) -> String {
    let excerpt = attempt["excerpt"].as_str().unwrap_or_default();
    match (
        attempt["outcome"].as_str().unwrap(),
        attempt["httpStatus"].as_i64(),
    ) {
        ("retryable_failure", Some(503)) if excerpt.contains("come back later") => {
            "503 Retry-After".into()
        }
        ("retryable_failure", Some(503)) => "503".into(),
        ("retryable_failure", None) => "network".into(),
        (outcome, _) => outcome.into(),
    }
}
