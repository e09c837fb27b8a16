//! Fault tests: the spawned `keywire` binary under SIGKILL, a failing sink, a database that goes
//! away, and a disk that cannot be written, each bounded in time. Every test prints its figures
//! (`--nocapture` shows them): faults injected, changes made, deliveries expected, arrived and
//! duplicated.
//!
//! Shared here: a seeded random source, a writer that keeps changing secrets and variables and
//! records what the API answered, and the checks that every accepted change has exactly one
//! event and every event its deliveries.

mod crash;
mod database;
mod sink;
mod startup;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keywire_test_support::fake::FakeServer;
use keywire_test_support::server::ServerConfig;
use serde_json::{Value, json};

use super::support::{ADMIN, Api};

/// The event types the writer's changes make, all of which the test integrations hear.
const ENTRY_EVENTS: [&str; 4] = [
    "SECRET_ADDED",
    "SECRET_UPDATED",
    "VARIABLE_ADDED",
    "VARIABLE_UPDATED",
];

/// Quick delivery settings: a short lease (2 s), so runs held by a killed node or a lost
/// connection are taken again quickly, and a schedule long enough that a run claimed at several
/// faults still has attempts left.
const QUICK: &[(&str, &str)] = &[
    (
        "KEYWIRE_RETRY_SCHEDULE",
        "0s,200ms,400ms,800ms,1s,1s,1s,1s,1s,1s,1s,1s",
    ),
    ("KEYWIRE_POLL_INTERVAL", "100ms"),
    ("KEYWIRE_ATTEMPT_TIMEOUT", "1s"),
    ("KEYWIRE_LEASE", "2s"),
];

/// Marks secret values, which must never reach a sink.
const SECRET_MARK: &str = "fault-secret-value-";

/// A small seeded generator (splitmix64): `KEYWIRE_FAULT_SEED` replays a run; otherwise the
/// seed comes from the clock. The seed is printed so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn seeded(test: &str) -> Rng {
        let seed = std::env::var("KEYWIRE_FAULT_SEED")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        eprintln!("{test}: seed {seed} (replay with KEYWIRE_FAULT_SEED={seed})");
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A duration in `[low, high)` milliseconds.
    fn millis(&mut self, low: u64, high: u64) -> Duration {
        Duration::from_millis(low + self.next() % (high - low).max(1))
    }
}

/// The configuration `api`'s server was started with, to start it again on the same data
/// directory and database after a crash.
fn restart_config(api: &Api, env: &[(&str, &str)]) -> ServerConfig {
    let config = ServerConfig::new(env!("CARGO_BIN_EXE_keywire"), api.dir.path())
        .database(Some(api.db.url()))
        .env("KEYWIRE_BOOTSTRAP_TOKEN", ADMIN);
    env.iter().fold(config, |c, (k, v)| c.env(k, v))
}

/// A workspace-wide webhook to `<base>/<name>` that hears every secret and variable change.
async fn entry_hook(api: &Api, ws: &str, name: &str, base: &str) -> String {
    let slug = super::webhook(api, ws, name, &format!("{base}/{name}"), json!({})).await;
    api.patch(
        &format!("/api/v1/integrations/{slug}"),
        ADMIN,
        json!({"notifyOn": ENTRY_EVENTS}),
    )
    .await
    .expect(200);
    slug
}

/// What the API answered to one change.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// 2xx: the change committed, at this version of its `dev` value.
    Accepted(i64),
    /// The connection was refused: the request never reached a server.
    NotSent,
    /// An answer that is not 2xx: status and problem `code`.
    Failed(u16, String),
    /// Sent, but no answer came (the server died or the client gave up): may have committed.
    Unknown,
}

/// One change the writer made.
#[derive(Debug, Clone)]
struct Change {
    /// `secrets` or `variables`.
    kind: &'static str,
    key: String,
    outcome: Outcome,
    /// How long the answer took.
    took: Duration,
}

/// A task that keeps changing secrets and variables of one project (each key is added, then
/// updated twice), through whichever server [`Writer::point_at`] names last.
struct Writer {
    base: Arc<Mutex<String>>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<Change>>,
}

impl Writer {
    /// Starts writing to `base` (`http://127.0.0.1:<port>`), one change every `pace`.
    fn start(base: &str, project: &str, pace: Duration) -> Writer {
        let base = Arc::new(Mutex::new(base.to_owned()));
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(write_changes(
            base.clone(),
            stop.clone(),
            project.to_owned(),
            pace,
        ));
        Writer { base, stop, task }
    }

    /// Sends the next changes to another server (the same one restarted on a new port).
    fn point_at(&self, base: &str) {
        base.clone_into(&mut self.base.lock().unwrap());
    }

    /// Stops after the change in hand; returns every change made.
    async fn stop(self) -> Vec<Change> {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.unwrap()
    }
}

async fn write_changes(
    base: Arc<Mutex<String>>,
    stop: Arc<AtomicBool>,
    project: String,
    pace: Duration,
) -> Vec<Change> {
    let http = keywire_test_support::http_client();
    let mut changes = Vec::new();
    let mut i = 0_usize;
    while !stop.load(Ordering::SeqCst) {
        let kind = if (i / 3).is_multiple_of(2) {
            "secrets"
        } else {
            "variables"
        };
        // Each key: added, then updated twice.
        let key = format!("KEY_{}", i / 3);
        let value = match kind {
            "secrets" => format!("{SECRET_MARK}{i}"),
            _ => format!("plain-{i}"),
        };
        i += 1;
        let url = format!(
            "{}/api/v1/projects/{project}/{kind}/{key}",
            base.lock().unwrap()
        );
        let started = Instant::now();
        let sent = http
            .put(url)
            .bearer_auth(ADMIN)
            .json(&json!({"values": {"dev": value}}))
            .timeout(Duration::from_secs(20))
            .send()
            .await;
        let outcome = match sent {
            Ok(response) if response.status().is_success() => {
                let body: Value = response.json().await.unwrap_or_default();
                let version = body["environments"]["dev"]["version"]
                    .as_i64()
                    .unwrap_or_else(|| panic!("a written entry names its version: {body}"));
                Outcome::Accepted(version)
            }
            Ok(response) => {
                let status = response.status().as_u16();
                let body: Value = response.json().await.unwrap_or_default();
                let code = body["code"].as_str().unwrap_or("").to_owned();
                Outcome::Failed(status, code)
            }
            Err(err) if err.is_connect() => Outcome::NotSent,
            Err(_) => Outcome::Unknown,
        };
        let accepted = matches!(outcome, Outcome::Accepted(_));
        changes.push(Change {
            kind,
            key,
            outcome,
            took: started.elapsed(),
        });
        tokio::time::sleep(if accepted {
            pace
        } else {
            pace.max(Duration::from_millis(50))
        })
        .await;
    }
    changes
}

/// How the writer's changes ended.
#[derive(Debug, Default)]
struct Tally {
    sent: usize,
    accepted: usize,
    not_sent: usize,
    failed: BTreeMap<(u16, String), usize>,
    unknown: usize,
}

impl Tally {
    fn of(changes: &[Change]) -> Tally {
        let mut tally = Tally {
            sent: changes.len(),
            ..Tally::default()
        };
        for change in changes {
            match &change.outcome {
                Outcome::Accepted(_) => tally.accepted += 1,
                Outcome::NotSent => tally.not_sent += 1,
                Outcome::Failed(status, code) => {
                    *tally.failed.entry((*status, code.clone())).or_default() += 1
                }
                Outcome::Unknown => tally.unknown += 1,
            }
        }
        tally
    }

    /// Changes that reached a server without a 2xx answer: each may or may not have
    /// committed (a commit whose answer was lost).
    fn uncertain(&self) -> usize {
        self.unknown + self.failed.values().sum::<usize>()
    }
}

/// Every item of a paginated list at `path` (which already has a `?`).
async fn all_items(api: &Api, path: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page_path = match &cursor {
            Some(c) => format!("{path}&limit=200&cursor={c}"),
            None => format!("{path}&limit=200"),
        };
        let page = api.get(&page_path, ADMIN).await;
        let page = page.expect(200);
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return items,
        }
    }
}

/// The secret and variable events of a workspace.
async fn entry_events(api: &Api, ws: &str) -> Vec<Value> {
    all_items(
        api,
        &format!(
            "/api/v1/workspaces/{ws}/events?type={}",
            ENTRY_EVENTS.join(",")
        ),
    )
    .await
}

/// Checks that every accepted change has exactly one event, that no key has two events for one
/// version or a version without its event, and that events beyond the accepted changes are
/// at most the uncertain ones. Returns the events.
async fn check_events(api: &Api, ws: &str, changes: &[Change], label: &str) -> Vec<Value> {
    let events = entry_events(api, ws).await;
    // (source, key) -> versions of `dev`, one per event.
    let mut versions: BTreeMap<(String, String), Vec<i64>> = BTreeMap::new();
    for event in &events {
        let key = event["payload"]["key"].as_str().unwrap().to_owned();
        let version = event["payload"]["environments"]["dev"]
            .as_i64()
            .unwrap_or_else(|| panic!("{label}: an entry event names its version: {event}"));
        versions
            .entry((event["source"].as_str().unwrap().to_owned(), key))
            .or_default()
            .push(version);
    }
    for ((source, key), list) in &mut versions {
        list.sort_unstable();
        let expected: Vec<i64> = (1..=list.len() as i64).collect();
        assert_eq!(
            *list, expected,
            "{label}: {source} {key}: one event per version, none missing"
        );
    }
    let mut accepted = 0;
    for change in changes {
        if let Outcome::Accepted(version) = change.outcome {
            accepted += 1;
            let source = match change.kind {
                "secrets" => "SECRET",
                _ => "VARIABLE",
            };
            let found = versions
                .get(&(source.to_owned(), change.key.clone()))
                .is_some_and(|list| list.contains(&version));
            assert!(
                found,
                "{label}: the accepted change {source} {} v{version} has no event",
                change.key
            );
        }
    }
    let tally = Tally::of(changes);
    assert!(
        events.len() >= accepted && events.len() - accepted <= tally.uncertain(),
        "{label}: {} events for {accepted} accepted and {} uncertain changes",
        events.len(),
        tally.uncertain()
    );
    events
}

/// Every run of an integration.
async fn all_runs(api: &Api, hook: &str) -> Vec<Value> {
    all_items(api, &format!("/api/v1/integrations/{hook}/runs?")).await
}

/// Waits until each hook has `count` runs, all ended; returns them by hook.
async fn drain(
    api: &Api,
    hooks: &[&str],
    count: usize,
    within: Duration,
) -> BTreeMap<String, Vec<Value>> {
    let deadline = Instant::now() + within;
    loop {
        let mut by_hook = BTreeMap::new();
        for hook in hooks {
            by_hook.insert((*hook).to_owned(), all_runs(api, hook).await);
        }
        let done = by_hook.values().all(|runs| {
            runs.len() == count
                && runs
                    .iter()
                    .all(|r| r["status"] == "succeeded" || r["status"] == "failed")
        });
        if done || Instant::now() > deadline {
            return by_hook;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What the sinks received against what was expected.
#[derive(Debug, Default)]
struct Deliveries {
    expected: usize,
    arrived: usize,
    duplicated: usize,
}

impl std::fmt::Display for Deliveries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "deliveries expected {}, arrived {}, duplicated {}",
            self.expected, self.arrived, self.duplicated
        )
    }
}

/// Asserts that no secret value the tests wrote reached `sink`.
fn assert_no_secret_value(sink: &FakeServer, label: &str) {
    for request in sink.requests() {
        assert!(
            !request.text().contains(SECRET_MARK),
            "{label}: a secret value reached the sink"
        );
    }
}

/// Checks that every event has exactly one run per hook, that every run succeeded (none left
/// `running` or `pending`), and that each run was received (`received`: deliveries the sink
/// accepted, by `webhook-id`) at least once; counts duplicates.
fn check_deliveries(
    events: &[Value],
    runs: &BTreeMap<String, Vec<Value>>,
    received: &BTreeMap<String, usize>,
    label: &str,
) -> Deliveries {
    let event_ids: BTreeSet<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    let mut figures = Deliveries::default();
    for (hook, list) in runs {
        let stuck: Vec<&Value> = list.iter().filter(|r| r["status"] != "succeeded").collect();
        assert!(
            stuck.is_empty(),
            "{label}: {hook}: runs not delivered: {stuck:?}"
        );
        let mut per_event: BTreeMap<&str, usize> = BTreeMap::new();
        for run in list {
            *per_event
                .entry(run["eventId"].as_str().unwrap_or("(none)"))
                .or_default() += 1;
        }
        let keys: BTreeSet<&str> = per_event.keys().copied().collect();
        assert_eq!(
            keys, event_ids,
            "{label}: {hook}: one run per event, for every event"
        );
        assert!(
            per_event.values().all(|n| *n == 1),
            "{label}: {hook}: an event has two runs"
        );
        for run in list {
            figures.expected += 1;
            let n = received
                .get(run["id"].as_str().unwrap())
                .copied()
                .unwrap_or(0);
            assert!(
                n >= 1,
                "{label}: {hook}: run {} never reached the sink",
                run["id"]
            );
            figures.arrived += 1;
            figures.duplicated += n - 1;
        }
    }
    figures
}

/// Asserts a 503 problem document about the database: the problem media type, a `detail`
/// that names the database, and nothing that looks like a panic, a stack trace or a
/// credential.
fn assert_database_problem(answer: &super::support::RawAnswer, secrets: &[&str], label: &str) {
    assert_eq!(answer.status, 503, "{label}: {}", answer.text);
    assert_eq!(
        answer.header("content-type"),
        Some("application/problem+json"),
        "{label}"
    );
    assert_eq!(
        answer.body["code"], "unavailable",
        "{label}: {}",
        answer.text
    );
    let detail = answer.body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("database"),
        "{label}: the problem names the database: {}",
        answer.text
    );
    for bad in ["panicked", "backtrace", "src/", ".rs:", "postgres://"]
        .iter()
        .chain(secrets)
    {
        assert!(
            !answer.text.contains(bad),
            "{label}: `{bad}` in the problem: {}",
            answer.text
        );
    }
}

/// Single writes a test makes besides the [`Writer`] (probes during an outage), recorded as
/// changes so the event check accounts for them.
#[derive(Default)]
struct Probes {
    changes: Vec<Change>,
}

impl Probes {
    /// Sets a new secret `PROBE_<n>`; returns the raw answer and how long it took.
    async fn write(&mut self, api: &Api, project: &str) -> (super::support::RawAnswer, Duration) {
        let key = format!("PROBE_{}", self.changes.len());
        let value = format!("{SECRET_MARK}probe-{}", self.changes.len());
        let started = Instant::now();
        let body = serde_json::to_vec(&json!({"values": {"dev": value}})).unwrap();
        let answer = api
            .call_raw(
                "PUT",
                &format!("/api/v1/projects/{project}/secrets/{key}"),
                ADMIN,
                Some("application/json"),
                body,
            )
            .await;
        let took = started.elapsed();
        let outcome = match answer.status {
            200 | 201 => Outcome::Accepted(
                answer.body["environments"]["dev"]["version"]
                    .as_i64()
                    .unwrap(),
            ),
            status => Outcome::Failed(
                status,
                answer.body["code"].as_str().unwrap_or("").to_owned(),
            ),
        };
        self.changes.push(Change {
            kind: "secrets",
            key,
            outcome,
            took,
        });
        (answer, took)
    }

    /// Writes until a write is accepted; returns how long that took.
    async fn until_writable(
        &mut self,
        api: &Api,
        project: &str,
        within: Duration,
        label: &str,
    ) -> Duration {
        let started = Instant::now();
        loop {
            let (answer, _) = self.write(api, project).await;
            if answer.status == 200 || answer.status == 201 {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < within,
                "{label}: still no write after {within:?}: {} {}",
                answer.status,
                answer.text
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
