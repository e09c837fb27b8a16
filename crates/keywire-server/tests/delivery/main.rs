//! Durable delivery end to end: the real `keywire` binary, real webhooks to a local sink, on
//! SQLite and (when configured) PostgreSQL. Bounded in time; every wait has a deadline.

#[path = "../domain/support.rs"]
#[allow(
    dead_code,
    reason = "shared with the domain tests; not every helper is used here"
)]
mod support;

mod faults;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use keywire_test_support::TestDb;
use keywire_test_support::fake::{FakeResponse, FakeServer, RecordedRequest};
use serde_json::{Value, json};

use support::{ADMIN, Api};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Fast retries for tests: the shape of the real schedule, in milliseconds.
const FAST: &[(&str, &str)] = &[
    ("KEYWIRE_RETRY_SCHEDULE", "0s,300ms,300ms"),
    ("KEYWIRE_POLL_INTERVAL", "200ms"),
    ("KEYWIRE_ATTEMPT_TIMEOUT", "1s"),
    ("KEYWIRE_LEASE", "3s"),
];

/// A second node on `first`'s database, with the same master key (they share the data).
fn another_node(
    first: &Api,
    url: &str,
    env: &[(&str, &str)],
) -> (keywire_test_support::server::Server, tempfile::TempDir) {
    let key = std::fs::read_to_string(first.dir.path().join("master.key")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config =
        keywire_test_support::server::ServerConfig::new(env!("CARGO_BIN_EXE_keywire"), dir.path())
            .database(Some(url))
            .env("KEYWIRE_MASTER_KEY", key.trim());
    let config = env.iter().fold(config, |c, (k, v)| c.env(k, v));
    (keywire_test_support::server::Server::start(&config), dir)
}

/// Settings for the crash test: a 4 s lease, so a killed node's runs return quickly.
const CRASH: &[(&str, &str)] = &[
    ("KEYWIRE_RETRY_SCHEDULE", "0s,300ms,300ms"),
    ("KEYWIRE_POLL_INTERVAL", "200ms"),
    ("KEYWIRE_ATTEMPT_TIMEOUT", "3s"),
    ("KEYWIRE_LEASE", "4s"),
];

async fn webhook(api: &Api, ws: &str, name: &str, url: &str, scope: Value) -> String {
    let mut body = json!({
        "name": name,
        "type": "webhook",
        "notifyOn": ["SECRET_ADDED", "SECRET_UPDATED", "ENVIRONMENT_ADDED"],
        "metadata": {"url": url, "signingSecret": SECRET},
    });
    for (k, v) in scope.as_object().unwrap() {
        body[k] = v.clone();
    }
    let created = api
        .post(
            &format!("/api/v1/workspaces/{ws}/integrations?validate=false"),
            ADMIN,
            body,
        )
        .await;
    created.expect(201)["slug"].as_str().unwrap().to_owned()
}

async fn set_secret(api: &Api, project: &str, key: &str, env: &str, value: &str) {
    let answer = api
        .put(
            &format!("/api/v1/projects/{project}/secrets/{key}"),
            ADMIN,
            json!({"values": {env: value}}),
        )
        .await;
    assert!(
        answer.status == 200 || answer.status == 201,
        "{}",
        answer.body
    );
}

async fn runs(api: &Api, integration: &str) -> Vec<Value> {
    let page = api
        .get(
            &format!("/api/v1/integrations/{integration}/runs?limit=200"),
            ADMIN,
        )
        .await;
    page.expect(200)["items"].as_array().unwrap().clone()
}

/// Waits until every run of `integration` has ended and there are `count` of them.
async fn settled(api: &Api, integration: &str, count: usize, within: Duration) -> Vec<Value> {
    let deadline = Instant::now() + within;
    loop {
        let all = runs(api, integration).await;
        let done = all
            .iter()
            .all(|r| r["status"] == "succeeded" || r["status"] == "failed");
        if (all.len() == count && done) || Instant::now() > deadline {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn by_path(requests: &[RecordedRequest]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for r in requests {
        *counts.entry(r.path.clone()).or_default() += 1;
    }
    counts
}

fn ok_sink() -> FakeServer {
    FakeServer::start(|_| FakeResponse::json(200, json!({"ok": true})))
}

/// A sink that answers 200 after `delay`.
fn slow_sink(delay: Duration) -> FakeServer {
    FakeServer::start(move |_| FakeResponse::json(200, json!({"ok": true})).delayed(delay))
}

/// A workspace, a project with `dev` and `prod`, and one workspace-wide webhook to
/// `<sink>/hook`: (project slug, integration slug).
async fn one_hook(api: &Api, workspace: &str, sink: &FakeServer) -> (String, String) {
    let ws = api.workspace(workspace).await;
    let project = api.project(&ws, "App").await;
    let hook = webhook(api, &ws, "hook", &format!("{}/hook", sink.url()), json!({})).await;
    (project, hook)
}

/// How many times the sink received each run (by `webhook-id`).
fn deliveries_per_run(sink: &FakeServer) -> BTreeMap<String, usize> {
    let mut per_run = BTreeMap::new();
    for r in sink.requests() {
        *per_run
            .entry(r.header("webhook-id").unwrap().to_owned())
            .or_default() += 1;
    }
    per_run
}

#[tokio::test]
async fn each_scope_hears_exactly_its_events() {
    for db in TestDb::all().await {
        let api = Api::with_env(db, FAST);
        let sink = ok_sink();
        let ws = api.workspace("Scopes").await;
        let a = api.project(&ws, "Alpha").await;
        let b = api.project(&ws, "Beta").await;
        let wide = webhook(
            &api,
            &ws,
            "wide",
            &format!("{}/wide", sink.url()),
            json!({}),
        )
        .await;
        let project = webhook(
            &api,
            &ws,
            "alpha",
            &format!("{}/alpha", sink.url()),
            json!({"projectSlug": a}),
        )
        .await;
        let prod = webhook(
            &api,
            &ws,
            "alpha-prod",
            &format!("{}/alpha-prod", sink.url()),
            json!({"projectSlug": a, "environmentSlugs": ["prod"]}),
        )
        .await;

        // keyshade delivers every event of the workspace to every integration, so its
        // project-scoped integration hears Beta's change; ours must not.
        set_secret(&api, &b, "BETA_KEY", "dev", "b1").await;
        set_secret(&api, &a, "ALPHA_KEY", "dev", "a1").await;
        set_secret(&api, &a, "ALPHA_KEY", "prod", "a2").await;

        settled(&api, &wide, 3, Duration::from_secs(20)).await;
        settled(&api, &project, 2, Duration::from_secs(20)).await;
        settled(&api, &prod, 1, Duration::from_secs(20)).await;
        let counts = by_path(&sink.wait_for(6, Duration::from_secs(10)));
        assert_eq!(
            counts.get("/wide"),
            Some(&3),
            "{} {counts:?}",
            api.backend()
        );
        assert_eq!(
            counts.get("/alpha"),
            Some(&2),
            "{} {counts:?}",
            api.backend()
        );
        assert_eq!(
            counts.get("/alpha-prod"),
            Some(&1),
            "{} {counts:?}",
            api.backend()
        );
        // keyshade's rule selects every integration of the workspace subscribed to the type:
        // all three would have heard Beta's change. Ours delivered it to the workspace-wide one
        // only.
        let listed = api
            .get(&format!("/api/v1/workspaces/{ws}/integrations"), ADMIN)
            .await;
        let keyshade_selection = listed.expect(200)["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| {
                i["notifyOn"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|t| t == "SECRET_ADDED")
            })
            .count();
        assert_eq!(keyshade_selection, 3);
        let beta_receivers: Vec<String> = sink
            .requests()
            .iter()
            .filter(|r| r.json()["data"]["project"] == b.as_str())
            .map(|r| r.path.clone())
            .collect();
        assert_eq!(beta_receivers, ["/wide"], "{}", api.backend());
        for request in sink.requests() {
            let body = request.json();
            assert!(
                !request.text().contains("a1") || body["data"]["payload"].get("value").is_none()
            );
            assert!(
                !request.text().contains("\"b1\"") && !request.text().contains("\"a2\""),
                "no secret value is delivered"
            );
            let project = body["data"]["project"].as_str().unwrap();
            match request.path.as_str() {
                "/alpha" | "/alpha-prod" => assert_eq!(project, a),
                _ => {}
            }
        }
    }
}

#[tokio::test]
async fn failures_are_retried_on_schedule_and_permanent_ones_are_not() {
    let api = Api::with_env(TestDb::sqlite().await, FAST);
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let sink = FakeServer::start(move |req| match req.path.as_str() {
        // 500, then 429 with Retry-After: 1, then OK.
        "/flaky" => match seen.fetch_add(1, Ordering::SeqCst) {
            0 => FakeResponse::json(500, json!({"error": "boom"})),
            1 => FakeResponse::json(429, json!({"error": "slow down"}))
                .with_header("retry-after", "1"),
            _ => FakeResponse::json(200, json!({"ok": true})),
        },
        "/gone" => FakeResponse::json(410, json!({"error": "gone"})),
        "/down" => FakeResponse::json(503, json!({"error": "down"})),
        "/slow" => FakeResponse::json(200, json!({"ok": true})).delayed(Duration::from_secs(3)),
        _ => FakeResponse::empty(404),
    });
    let ws = api.workspace("Retries").await;
    let p = api.project(&ws, "App").await;
    let flaky = webhook(
        &api,
        &ws,
        "flaky",
        &format!("{}/flaky", sink.url()),
        json!({}),
    )
    .await;
    let gone = webhook(
        &api,
        &ws,
        "gone",
        &format!("{}/gone", sink.url()),
        json!({}),
    )
    .await;
    let down = webhook(
        &api,
        &ws,
        "down",
        &format!("{}/down", sink.url()),
        json!({}),
    )
    .await;
    let slow = webhook(
        &api,
        &ws,
        "slow",
        &format!("{}/slow", sink.url()),
        json!({}),
    )
    .await;
    set_secret(&api, &p, "KEY", "dev", "v1").await;

    let flaky_runs = settled(&api, &flaky, 1, Duration::from_secs(20)).await;
    assert_eq!(flaky_runs[0]["status"], "succeeded");
    assert_eq!(flaky_runs[0]["attempts"], 3);
    let run_id = flaky_runs[0]["id"].as_str().unwrap();
    let detail = api
        .get(
            &format!("/api/v1/integrations/{flaky}/runs/{run_id}"),
            ADMIN,
        )
        .await;
    let detail = detail.expect(200);
    let log = detail["attemptLog"].as_array().unwrap();
    let outcomes: Vec<&str> = log.iter().map(|a| a["outcome"].as_str().unwrap()).collect();
    assert_eq!(
        outcomes,
        ["retryable_failure", "retryable_failure", "succeeded"]
    );
    let statuses: Vec<i64> = log
        .iter()
        .map(|a| a["httpStatus"].as_i64().unwrap())
        .collect();
    assert_eq!(statuses, [500, 429, 200]);
    let after_429 = chrono::DateTime::parse_from_rfc3339(log[2]["startedAt"].as_str().unwrap())
        .unwrap()
        - chrono::DateTime::parse_from_rfc3339(log[1]["startedAt"].as_str().unwrap()).unwrap();
    assert!(
        after_429 >= chrono::Duration::milliseconds(950),
        "Retry-After: 1 honoured (waited {after_429})"
    );
    assert_eq!(detail["event"]["type"], "SECRET_ADDED");
    let hook_ids: Vec<String> = sink
        .requests()
        .iter()
        .filter(|r| r.path == "/flaky")
        .map(|r| r.header("webhook-id").unwrap().to_owned())
        .collect();
    assert_eq!(hook_ids.len(), 3);
    assert!(
        hook_ids.iter().all(|id| id == run_id),
        "every retry carries the run id as webhook-id"
    );

    let summary = api
        .get(&format!("/api/v1/integrations/{flaky}"), ADMIN)
        .await;
    let summary = &summary.expect(200)["delivery"];
    assert_eq!(
        (
            summary["lastRunStatus"].as_str(),
            summary["succeeded"].as_i64(),
            summary["failed"].as_i64()
        ),
        (Some("succeeded"), Some(1), Some(0))
    );
    let gone_runs = settled(&api, &gone, 1, Duration::from_secs(10)).await;
    assert_eq!(
        (
            gone_runs[0]["status"].as_str(),
            gone_runs[0]["attempts"].as_i64()
        ),
        (Some("failed"), Some(1)),
        "a 410 is not retried"
    );
    let down_runs = settled(&api, &down, 1, Duration::from_secs(20)).await;
    assert_eq!(
        (
            down_runs[0]["status"].as_str(),
            down_runs[0]["attempts"].as_i64()
        ),
        (Some("failed"), Some(3)),
        "the schedule is exhausted"
    );
    assert!(down_runs[0]["lastError"].as_str().unwrap().contains("503"));
    let slow_runs = settled(&api, &slow, 1, Duration::from_secs(20)).await;
    let slow_id = slow_runs[0]["id"].as_str().unwrap();
    let slow_detail = api
        .get(
            &format!("/api/v1/integrations/{slow}/runs/{slow_id}"),
            ADMIN,
        )
        .await;
    let slow_log = slow_detail.expect(200)["attemptLog"]
        .as_array()
        .unwrap()
        .clone();
    assert!(
        slow_log.iter().all(|a| a["outcome"] == "timeout"),
        "{slow_log:?}"
    );
    assert_eq!(slow_log.len(), 3);

    // Manual retry: one run, then every failed run since a time.
    let gone_id = gone_runs[0]["id"].as_str().unwrap();
    api.post(
        &format!("/api/v1/integrations/{gone}/runs/{gone_id}/retry"),
        ADMIN,
        json!({}),
    )
    .await
    .expect(202);
    let again = settled(&api, &gone, 1, Duration::from_secs(10)).await;
    assert_eq!(again[0]["attempts"], 2);
    api.post(
        &format!("/api/v1/integrations/{flaky}/runs/{run_id}/retry"),
        ADMIN,
        json!({}),
    )
    .await
    .expect(409);
    let since = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let retried = api
        .post(
            &format!("/api/v1/integrations/{down}/runs/retry"),
            ADMIN,
            json!({"failedSince": since}),
        )
        .await;
    assert_eq!(retried.expect(202)["retried"], 1);
    api.post(
        &format!("/api/v1/integrations/{down}/runs/retry"),
        ADMIN,
        json!({"failedSince": "yesterday"}),
    )
    .await
    .expect_field(400, "/failedSince");
    api.get(
        &format!("/api/v1/integrations/{down}/runs?status=exploded"),
        ADMIN,
    )
    .await
    .expect(400);
    let listed = api
        .get(
            &format!("/api/v1/workspaces/{ws}/integrations?q=gone"),
            ADMIN,
        )
        .await;
    assert_eq!(
        listed.expect(200)["items"][0]["delivery"]["failed"],
        1,
        "the list shows failures too"
    );
    let failed = api
        .get(
            &format!("/api/v1/integrations/{gone}/runs?status=failed"),
            ADMIN,
        )
        .await;
    assert_eq!(failed.expect(200)["items"].as_array().unwrap().len(), 1);

    let metrics = keywire_test_support::http_client()
        .get(format!("{}/metrics", api.server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    let value = |line: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(line))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no `{line}` in\n{text}"))
    };
    assert!(value("keywire_delivery_attempts_total{outcome=\"succeeded\"}") >= 1.0);
    assert!(value("keywire_delivery_attempts_total{outcome=\"retryable_failure\"}") >= 4.0);
    assert!(value("keywire_delivery_attempts_total{outcome=\"timeout\"}") >= 3.0);
    assert!(value("keywire_delivery_attempts_total{outcome=\"permanent_failure\"}") >= 1.0);
    assert!(value("keywire_runs{status=\"succeeded\"}") >= 1.0);
    assert!(value("keywire_delivery_latency_seconds_count") >= 1.0);
    assert!(
        text.contains("keywire_queue_depth ")
            && text.contains("keywire_oldest_due_run_age_seconds ")
    );
}

#[tokio::test]
async fn rejected_changes_and_disabled_integrations_deliver_nothing() {
    let api = Api::with_env(TestDb::sqlite().await, FAST);
    let sink = ok_sink();
    let ws = api.workspace("Quiet").await;
    let p = api.project(&ws, "App").await;
    let on = webhook(&api, &ws, "on", &format!("{}/on", sink.url()), json!({})).await;
    let off = webhook(
        &api,
        &ws,
        "off",
        &format!("{}/off", sink.url()),
        json!({"enabled": false}),
    )
    .await;
    let bad = api
        .put(
            &format!("/api/v1/projects/{p}/secrets"),
            ADMIN,
            json!({"items": [
                {"key": "GOOD", "values": {"dev": "x"}},
                {"key": "BAD-KEY", "values": {"dev": "y"}},
            ]}),
        )
        .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    set_secret(&api, &p, "AFTER", "dev", "z").await;
    let delivered = settled(&api, &on, 1, Duration::from_secs(20)).await;
    assert_eq!(delivered.len(), 1, "the rejected bulk change made no run");
    assert!(
        runs(&api, &off).await.is_empty(),
        "a disabled integration gets no runs"
    );
    assert_eq!(
        by_path(&sink.wait_for(1, Duration::from_secs(5))).get("/off"),
        None
    );
}

#[tokio::test]
async fn a_killed_server_delivers_every_accepted_change_after_restart() {
    let db = TestDb::sqlite().await;
    let url = db.url().to_owned();
    let sink = slow_sink(Duration::from_millis(500));
    // A slow sink so the kill lands mid-queue, and an attempt timeout well above it so the
    // only duplicates are the attempts in flight at the kill.
    let api = Api::with_env(db, CRASH);
    let (p, hook) = one_hook(&api, "Crash", &sink).await;
    let mut accepted = 0;
    for i in 0..20 {
        set_secret(&api, &p, &format!("KEY_{i}"), "dev", "v").await;
        accepted += 1;
    }
    // Kill mid-delivery: some runs are pending, one may be running with a lease.
    let support::Api {
        server, db, dir, ..
    } = api;
    let pid = server.pid();
    let _ = std::process::Command::new("kill")
        .arg("-KILL")
        .arg(pid.to_string())
        .status();
    std::thread::sleep(Duration::from_millis(300));
    let delivered_before = sink.requests().len();
    assert!(
        delivered_before < accepted,
        "the kill came before the queue drained ({delivered_before})"
    );
    drop(server);

    let config =
        keywire_test_support::server::ServerConfig::new(env!("CARGO_BIN_EXE_keywire"), dir.path())
            .database(Some(&url))
            .env("KEYWIRE_BOOTSTRAP_TOKEN", ADMIN);
    let config = CRASH.iter().fold(config, |c, (k, v)| c.env(k, v));
    let restarted = keywire_test_support::server::Server::start(&config);
    let http = keywire_test_support::http_client();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(30);
    let all: Vec<Value> = loop {
        let page: Value = http
            .get(format!(
                "{}/api/v1/integrations/{hook}/runs?limit=200",
                restarted.url
            ))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let items = page["items"].as_array().unwrap().clone();
        if items.iter().all(|r| r["status"] == "succeeded") || Instant::now() > deadline {
            break items;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(all.len(), accepted, "every accepted change has its run");
    assert!(
        all.iter().all(|r| r["status"] == "succeeded"),
        "nothing stuck: {all:?}"
    );
    let per_run = deliveries_per_run(&sink);
    assert_eq!(
        per_run.len(),
        accepted,
        "every run reached the sink at least once"
    );
    let duplicates: usize = per_run.values().map(|n| n - 1).sum();
    // Four workers: at most one run each was in flight (sent, not yet recorded) at the kill.
    assert!(
        duplicates <= 4,
        "only runs in flight at the kill may be sent twice ({duplicates})"
    );
    eprintln!(
        "kill test: {accepted} accepted, {delivered_before} delivered before the kill, {duplicates} duplicate(s), drained {:?} after restart",
        started.elapsed()
    );
    drop((restarted, db, dir));
}

#[tokio::test]
async fn two_nodes_on_one_postgres_share_the_deliveries() {
    let Some(db) = TestDb::postgres().await else {
        eprintln!("two-node test needs KEYWIRE_TEST_DATABASE_URL (PostgreSQL); .ci/run sets it");
        return;
    };
    let url = db.url().to_owned();
    let sink = slow_sink(Duration::from_millis(20));
    let first = Api::with_env(db, FAST);
    let (p, hook) = one_hook(&first, "Cluster", &sink).await;
    let (second, _second_dir) = another_node(&first, &url, FAST);
    let http = keywire_test_support::http_client();
    let changes = 40;
    for i in 0..changes {
        // Alternate the node that accepts the change.
        let base = if i % 2 == 0 {
            first.server.url.clone()
        } else {
            second.url.clone()
        };
        let response = http
            .put(format!("{base}/api/v1/projects/{p}/secrets/KEY_{i}"))
            .bearer_auth(ADMIN)
            .json(&json!({"values": {"dev": "v"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    let started = Instant::now();
    let all = settled(&first, &hook, changes, Duration::from_secs(30)).await;
    assert_eq!(all.len(), changes);
    assert!(all.iter().all(|r| r["status"] == "succeeded"), "{all:?}");
    let per_run = deliveries_per_run(&sink);
    assert_eq!(per_run.len(), changes, "every run delivered");
    let duplicates: usize = per_run.values().map(|n| n - 1).sum();
    assert_eq!(duplicates, 0, "no node died, so no run is sent twice");
    let by_first = first.server.stderr().matches("delivery attempt").count();
    let by_second = second.stderr().matches("delivery attempt").count();
    assert_eq!(by_first + by_second, changes);
    assert!(
        by_first > 0 && by_second > 0,
        "both nodes delivered ({by_first} + {by_second})"
    );
    eprintln!(
        "two nodes: {changes} runs, {by_first} by the first node, {by_second} by the second, 0 duplicates, drained in {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_api_node_wakes_a_worker_node_through_postgres_notify() {
    let Some(db) = TestDb::postgres().await else {
        eprintln!("the NOTIFY test needs KEYWIRE_TEST_DATABASE_URL (PostgreSQL); .ci/run sets it");
        return;
    };
    let url = db.url().to_owned();
    // Polling every 60 s: anything delivered sooner was woken by NOTIFY.
    let slow_poll: Vec<(&str, &str)> = vec![
        ("KEYWIRE_POLL_INTERVAL", "60s"),
        ("KEYWIRE_ROLE", "api"),
        ("KEYWIRE_LEASE", "3s"),
        ("KEYWIRE_ATTEMPT_TIMEOUT", "1s"),
    ];
    let sink = ok_sink();
    let api = Api::with_env(db, &slow_poll);
    let (p, hook) = one_hook(&api, "Split", &sink).await;
    let (worker, _worker_dir) = another_node(
        &api,
        &url,
        &[
            ("KEYWIRE_ROLE", "worker"),
            ("KEYWIRE_POLL_INTERVAL", "60s"),
            ("KEYWIRE_LEASE", "3s"),
            ("KEYWIRE_ATTEMPT_TIMEOUT", "1s"),
        ],
    );
    // Let the worker's first poll pass and its LISTEN connection settle.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    for i in 0..5 {
        set_secret(&api, &p, &format!("KEY_{i}"), "dev", "v").await;
    }
    let all = settled(&api, &hook, 5, Duration::from_secs(15)).await;
    let took = started.elapsed();
    assert!(all.iter().all(|r| r["status"] == "succeeded"), "{all:?}");
    assert!(
        took < Duration::from_secs(15),
        "delivered in {took:?}, long before the 60 s poll"
    );
    assert_eq!(
        worker.stderr().matches("delivery attempt").count(),
        5,
        "the worker node delivered everything"
    );
    assert_eq!(
        api.server.stderr().matches("delivery attempt").count(),
        0,
        "the api node delivers nothing"
    );
    eprintln!(
        "NOTIFY test: 5 runs accepted by the api node, delivered by the worker node in {took:?}"
    );
}
