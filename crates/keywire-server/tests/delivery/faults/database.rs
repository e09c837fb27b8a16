//! Database trouble under load: PostgreSQL "restarted" (every session of the test database
//! ended by the server with `pg_terminate_backend`, the FATAL a fast shutdown sends; new
//! connections reset, then blackholed, by a proxy, so the shared cluster is left alone), and the
//! SQLite file locked by another connection for longer than `busy_timeout`. Meanwhile the API
//! answers 503 problems within its timeouts; afterwards it recovers without a restart and every
//! delivery queued before the trouble arrives.

use std::time::{Duration, Instant};

use keywire_test_support::TestDb;
use keywire_test_support::faults::{FaultProxy, ProxyMode, SqliteWriteLock, terminate_sessions};

use super::{Probes, Tally, Writer};
use crate::support::{ADMIN, Api};

/// How long a query waits for a pooled connection, and SQLite for the write lock, before the
/// database counts as unavailable (keywire-db's `DbOptions::default`).
const DB_TIMEOUT: Duration = Duration::from_secs(5);

/// Whatever the database does, an answer comes within this.
const ANSWER_WITHIN: Duration = Duration::from_secs(12);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_under_load_answers_503_then_recovers_alone() {
    let Some(db) = TestDb::postgres().await else {
        eprintln!(
            "the PostgreSQL restart test needs KEYWIRE_TEST_DATABASE_URL (PostgreSQL); .ci/run sets it"
        );
        return;
    };
    let label = "postgres restart";
    let started = Instant::now();
    let proxy = FaultProxy::in_front_of(db.url());
    let proxied = proxy.rewrite_url(db.url());
    // The proxied URL wins over the one `Api` passes (later variables override earlier ones).
    let env: Vec<(&str, &str)> = super::QUICK
        .iter()
        .copied()
        .chain([("KEYWIRE_DATABASE_URL", proxied.as_str())])
        .collect();
    let api = Api::with_env(db, &env);
    let mut load = Load::start(&api, "Database restart").await;
    let project = load.project.clone();

    // The restart: new connections are reset, every session is ended by the server (FATAL
    // 57P01, as a fast shutdown sends), and whatever is left is cut.
    proxy.set_mode(ProxyMode::Reset);
    let ended = terminate_sessions(api.db.url()).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (answer, took) = load.probes.write(&api, &project).await;
    super::assert_database_problem(&answer, &[ADMIN, "fault-secret-value"], label);
    assert!(
        took < ANSWER_WITHIN,
        "{label}: a write answered in {took:?}"
    );
    let ready = api.send("GET", "/ready", None, None, None).await;
    super::assert_database_problem(&ready, &[ADMIN], label);
    let health = api.send("GET", "/health", None, None, None).await;
    assert_eq!(health.status, 200, "{label}: the process itself is alive");
    let read = api
        .send(
            "GET",
            &format!("/api/v1/projects/{project}/secrets"),
            Some(&format!("Bearer {ADMIN}")),
            None,
            None,
        )
        .await;
    super::assert_database_problem(&read, &[ADMIN], label);
    tokio::time::sleep(Duration::from_millis(1000)).await;

    // Still starting up: new connections hang. Answers still come within the acquire timeout.
    proxy.outage(ProxyMode::Blackhole);
    let (answer, blackholed_took) = load.probes.write(&api, &project).await;
    super::assert_database_problem(&answer, &[ADMIN, "fault-secret-value"], label);
    assert!(
        blackholed_took < DB_TIMEOUT + Duration::from_secs(3),
        "{label}: a write waited {blackholed_took:?} on a database that does not answer"
    );
    let ready = api.send("GET", "/ready", None, None, None).await;
    super::assert_database_problem(&ready, &[ADMIN], label);

    // Back up: the same process writes again.
    proxy.resume();
    let figures = proxy.figures();
    load.recover(&api, label, started, |recovered_in| {
        format!(
            "{ended} sessions ended by the server, {} cut, {} connections reset, {} \
             blackholed; write answered 503 in {took:.1?} (reset) and {blackholed_took:.1?} \
             (blackholed); writable again {recovered_in:.1?} after the database came back",
            figures.cut, figures.reset, figures.blackholed
        )
    })
    .await;
    let ready = api.send("GET", "/ready", None, None, None).await;
    assert_eq!(ready.status, 200, "{label}: ready again: {}", ready.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_sqlite_file_answers_503_then_recovers_alone() {
    let label = "sqlite locked";
    let started = Instant::now();
    let api = Api::with_env(TestDb::sqlite().await, super::QUICK);
    let mut load = Load::start(&api, "Database lock").await;
    let project = load.project.clone();

    // Another process (this test) holds the write lock for longer than busy_timeout.
    let lock = tokio::task::block_in_place(|| SqliteWriteLock::hold(api.db.url()));
    let locked = Instant::now();
    let (answer, took) = load.probes.write(&api, &project).await;
    super::assert_database_problem(&answer, &[ADMIN, "fault-secret-value"], label);
    assert!(
        took >= DB_TIMEOUT - Duration::from_millis(100) && took < ANSWER_WITHIN,
        "{label}: a write waits for the lock up to busy_timeout, then answers 503 ({took:?})"
    );
    // Readers are not blocked by a writer (WAL).
    let ready = api.send("GET", "/ready", None, None, None).await;
    let ready_status = ready.status;
    let hold = Duration::from_secs(7).saturating_sub(locked.elapsed());
    tokio::time::sleep(hold).await;
    let held_for = locked.elapsed();
    lock.release();
    load.recover(&api, label, started, |recovered_in| {
        format!(
            "write lock held {held_for:.1?}; a write answered 503 after {took:.1?}; /ready \
             answered {ready_status} meanwhile; writable again {recovered_in:.1?} after release"
        )
    })
    .await;
}

/// A server under load: a writer changing entries faster than a slow sink takes their
/// deliveries, so some are queued when the trouble starts.
struct Load {
    sink: keywire_test_support::fake::FakeServer,
    ws: String,
    project: String,
    hook: String,
    writer: Writer,
    /// Single writes during the trouble.
    probes: Probes,
    /// Runs pending or running when the trouble started.
    queued_before: usize,
}

impl Load {
    async fn start(api: &Api, workspace: &str) -> Load {
        let sink = crate::slow_sink(Duration::from_millis(150));
        let ws = api.workspace(workspace).await;
        let project = api.project(&ws, "App").await;
        let hook = super::entry_hook(api, &ws, "hook", sink.url()).await;
        let writer = Writer::start(&api.server.url, &project, Duration::from_millis(20));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let queued_before = super::all_runs(api, &hook)
            .await
            .iter()
            .filter(|r| r["status"] == "pending" || r["status"] == "running")
            .count();
        Load {
            sink,
            ws,
            project,
            hook,
            writer,
            probes: Probes::default(),
            queued_before,
        }
    }

    /// After the trouble: waits until a write is accepted again, lets the writer go on a
    /// moment and stops it, then checks that every non-2xx answer was a 503 problem, every
    /// accepted change has its event and every event its delivery; prints the figures, with
    /// `faults` (given how long the recovery took) in front.
    async fn recover(
        mut self,
        api: &Api,
        label: &str,
        started: Instant,
        faults: impl FnOnce(Duration) -> String,
    ) {
        let recovered_in = self
            .probes
            .until_writable(api, &self.project, Duration::from_secs(15), label)
            .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut changes = self.writer.stop().await;
        let tally = Tally::of(&changes);
        changes.extend(self.probes.changes.iter().cloned());
        let faults = faults(recovered_in);
        let (ws, hook, sink, queued_before) =
            (&self.ws, &self.hook, &self.sink, self.queued_before);
        let log = api.server.stderr();
        let internal: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("internal error"))
            .collect();
        assert!(
            tally
                .failed
                .keys()
                .all(|(status, code)| *status == 503 && code == "unavailable"),
            "{label}: database trouble answers 503 `unavailable`, nothing else: {tally:?}\n{internal:#?}"
        );
        let slowest = changes.iter().map(|c| c.took).max().unwrap_or_default();
        assert!(
            slowest < ANSWER_WITHIN,
            "{label}: a write took {slowest:?} to answer"
        );
        assert!(
            queued_before > 0,
            "{label}: deliveries were queued when the trouble began"
        );
        let events = super::check_events(api, ws, &changes, label).await;
        let runs = super::drain(api, &[hook], events.len(), Duration::from_secs(30)).await;
        super::assert_no_secret_value(sink, label);
        let figures =
            super::check_deliveries(&events, &runs, &crate::deliveries_per_run(sink), label);
        // A delivery whose attempt could not be recorded (the database was gone) is sent again
        // when its lease expires: the only duplicates allowed.
        let unrecorded = log.matches("cannot record the attempt").count()
            + log
                .matches("lease lost before the attempt was recorded")
                .count();
        assert!(
            figures.duplicated <= unrecorded,
            "{label}: {} duplicates but {unrecorded} unrecorded attempts",
            figures.duplicated
        );
        eprintln!(
            "{label}: {faults}; changes sent {} ({} accepted, {} answered 503, {} unanswered), \
             slowest answer {slowest:.1?}; events {}; deliveries queued at the fault \
             {queued_before}; {figures} ({unrecorded} attempts delivered but not recorded); \
             {:.1?} in all",
            changes.len(),
            changes
                .iter()
                .filter(|c| matches!(c.outcome, super::Outcome::Accepted(_)))
                .count(),
            changes
                .iter()
                .filter(|c| matches!(c.outcome, super::Outcome::Failed(503, _)))
                .count(),
            tally.unknown,
            events.len(),
            started.elapsed()
        );
    }
}
