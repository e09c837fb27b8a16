//! `infra-sync`: 100 rapid changes to one project that a `vercel` integration syncs to the
//! Vercel fake of `keywire-test-support` (reached through `KEYWIRE_TEST_ORIGIN_OVERRIDES`).
//! Measures how many syncs (and provider requests) the burst costs, and whether the target ends
//! equal to the last state, and how long after the last change.

use std::time::{Duration, Instant};

use keywire_test_support::vercel::{self, FakeVercel};
use reqwest::Method;
use serde_json::{Value, json};

use super::report::thousands;
use super::scenarios::{Backend, Bench, ScenarioResult};
use super::stats::{round3, signed_ms};

/// The key the burst writes.
const KEY: &str = "BENCH_SYNCED";
/// The Vercel target `prod` maps to.
const TARGET: &str = "production";
/// Changes in the burst.
const CHANGES: usize = 100;
/// Longest wait for the syncs to settle.
const DEADLINE: Duration = Duration::from_secs(60);

/// Every run of the integration (newest first; the bench makes far fewer than a page).
async fn runs(keywire: &super::keywire::Keywire, slug: &str) -> Result<Vec<Value>, String> {
    let page = keywire
        .expect_2xx(
            Method::GET,
            &format!("/api/v1/integrations/{slug}/runs?limit=200"),
            None,
        )
        .await?;
    Ok(page["items"].as_array().cloned().unwrap_or_default())
}

fn finished(run: &Value) -> bool {
    run["status"] == "succeeded" || run["status"] == "failed"
}

/// Waits until every run has finished and the fake holds `value`; returns when that was first
/// seen (the fake's value) and whether everything settled before the deadline.
async fn settle(
    keywire: &super::keywire::Keywire,
    fake: &FakeVercel,
    slug: &str,
    value: &str,
) -> Result<(Option<Instant>, bool), String> {
    let deadline = Instant::now() + DEADLINE;
    let mut equal_since = None;
    loop {
        let equal = fake.var_at(KEY, TARGET).is_some_and(|v| v.value == value);
        if equal && equal_since.is_none() {
            equal_since = Some(Instant::now());
        }
        if !equal {
            equal_since = None;
        }
        if equal && runs(keywire, slug).await?.iter().all(finished) {
            return Ok((equal_since, true));
        }
        if Instant::now() > deadline {
            return Ok((equal_since, false));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Runs the scenario.
pub async fn run(
    bench: &mut Bench,
    name: &str,
    backend: Backend,
) -> Result<ScenarioResult, String> {
    let fake = FakeVercel::start();
    let overrides = vec![(
        "KEYWIRE_TEST_ORIGIN_OVERRIDES".to_owned(),
        format!("{}={}", vercel::ORIGIN, fake.url()),
    )];
    let keywire = bench.server(backend, &overrides).await?;
    let outcome = burst(&keywire, &fake).await;
    let memory = keywire.memory();
    keywire.stop().await;
    let numbers = outcome?;

    let mut result = ScenarioResult::new(name, Some(backend));
    result.metric("changes", json!(CHANGES));
    result.metric("burstMs", json!(round3(numbers.burst_ms)));
    result.metric("syncRuns", json!(numbers.sync_runs));
    result.metric("failedRuns", json!(numbers.failed_runs));
    result.metric("providerRequests", json!(numbers.provider_requests));
    result.metric("providerWrites", json!(numbers.provider_writes));
    result.metric("targetEqualsLastState", json!(numbers.equal));
    result.metric(
        "lastChangeToTargetEqualMs",
        json!(numbers.lag_ms.map(round3)),
    );
    result.metric("peakRssKiB", json!(memory.map(|m| m.hwm_kib)));
    result.add_row(
        &format!("{CHANGES} changes in (ms)"),
        Some(numbers.burst_ms),
        format!("{:.0}", numbers.burst_ms),
        "",
    );
    result.add_row(
        "sync runs for the burst",
        Some(numbers.sync_runs as f64),
        thousands(numbers.sync_runs as f64),
        "few (debounced)",
    );
    result.add_row(
        "provider requests (writes)",
        Some(numbers.provider_requests as f64),
        format!(
            "{} ({})",
            numbers.provider_requests, numbers.provider_writes
        ),
        "",
    );
    result.add_row(
        "target equals the last state",
        None,
        if numbers.equal { "yes" } else { "NO" }.into(),
        "yes",
    );
    result.add_row(
        "last change → target equal ms",
        numbers.lag_ms,
        numbers
            .lag_ms
            .map_or("n/a".into(), |lag| format!("{lag:.0}")),
        "",
    );
    if !numbers.equal || !numbers.settled || numbers.failed_runs > 0 {
        result.incomplete(format!(
            "target equal: {}, settled within {} s: {}, failed runs: {}",
            numbers.equal,
            DEADLINE.as_secs(),
            numbers.settled,
            numbers.failed_runs
        ));
    }
    Ok(result)
}

struct Numbers {
    burst_ms: f64,
    sync_runs: usize,
    failed_runs: usize,
    provider_requests: usize,
    provider_writes: usize,
    equal: bool,
    settled: bool,
    lag_ms: Option<f64>,
}

async fn burst(keywire: &super::keywire::Keywire, fake: &FakeVercel) -> Result<Numbers, String> {
    let (workspace, project) = keywire.project().await?;
    let path = format!("/api/v1/projects/{project}/secrets/{KEY}");
    let put = |value: String| {
        keywire.expect_2xx(Method::PUT, &path, Some(json!({"values": {"prod": value}})))
    };
    put("initial".into()).await?;
    let created = keywire
        .expect_2xx(
            Method::POST,
            &format!("/api/v1/workspaces/{workspace}/integrations?validate=false"),
            Some(json!({
                "name": "Vercel",
                "type": "vercel",
                "notifyOn": ["SECRET_ADDED", "SECRET_UPDATED", "SECRET_DELETED"],
                "actions": ["upsert", "delete"],
                "projectSlug": project,
                "environmentSlugs": ["prod"],
                "metadata": fake.metadata(),
                "sync": {"targets": {"prod": TARGET}},
            })),
        )
        .await?;
    let slug = created["slug"]
        .as_str()
        .ok_or_else(|| format!("no slug in {created}"))?
        .to_owned();
    // The first full sync.
    let (_, settled) = settle(keywire, fake, &slug, "initial").await?;
    if !settled {
        return Err(format!(
            "the first sync did not bring `initial` to the fake within {} s",
            DEADLINE.as_secs()
        ));
    }
    let runs_before = runs(keywire, &slug).await?.len();
    let requests_before = fake.requests().len();

    let start = Instant::now();
    let mut last = String::new();
    for i in 1..=CHANGES {
        last = format!("value-{i:03}");
        put(last.clone()).await?;
    }
    let answered = Instant::now();
    let (equal_since, settled) = settle(keywire, fake, &slug, &last).await?;
    let all = runs(keywire, &slug).await?;
    let new_runs = &all[..all.len().saturating_sub(runs_before)];
    let requests = fake.requests();
    let after = &requests[requests_before.min(requests.len())..];
    Ok(Numbers {
        burst_ms: signed_ms(start, answered),
        sync_runs: new_runs.iter().filter(|r| r["kind"] == "sync").count(),
        failed_runs: new_runs.iter().filter(|r| r["status"] == "failed").count(),
        provider_requests: after.len(),
        provider_writes: after.iter().filter(|r| r.method != "GET").count(),
        equal: fake.var_at(KEY, TARGET).is_some_and(|v| v.value == last),
        settled,
        lag_ms: equal_since.map(|at| signed_ms(answered, at)),
    })
}
