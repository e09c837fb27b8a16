//! SIGKILL at random moments while changes stream in and deliveries are in flight, five times
//! in a row, restarting on the same data directory or database each time.

use std::time::{Duration, Instant};

use keywire_test_support::TestDb;
use keywire_test_support::server::Server;

use super::{Rng, Tally, Writer};
use crate::support::Api;

const KILLS: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_five_times_loses_no_change_and_no_delivery() {
    for db in TestDb::all().await {
        kill_loop(db).await;
    }
}

async fn kill_loop(db: TestDb) {
    let label = format!("crash loop ({})", db.backend());
    let mut rng = Rng::seeded(&label);
    let started = Instant::now();
    // A slow sink, so that deliveries are in flight whenever the kill comes.
    let sink = crate::slow_sink(Duration::from_millis(100));
    let mut api = Api::with_env(db, super::QUICK);
    let ws = api.workspace("Crash loop").await;
    let project = api.project(&ws, "App").await;
    let a = super::entry_hook(&api, &ws, "a", sink.url()).await;
    let b = super::entry_hook(&api, &ws, "b", sink.url()).await;
    let config = super::restart_config(&api, super::QUICK);
    let writer = Writer::start(&api.server.url, &project, Duration::from_millis(25));

    let mut in_flight = Vec::new();
    let mut waiting = Vec::new();
    for _ in 0..KILLS {
        tokio::time::sleep(rng.millis(400, 1400)).await;
        api.server.kill_hard();
        // What the dead node left in the database: runs it held (`running`, until their lease
        // expires) and runs still waiting.
        let counts = queue(&api).await;
        in_flight.push(counts.get("running").copied().unwrap_or(0));
        waiting.push(counts.get("pending").copied().unwrap_or(0));
        // The writer meets a dead port for a moment.
        tokio::time::sleep(rng.millis(0, 300)).await;
        api.server = tokio::task::block_in_place(|| Server::start(&config));
        writer.point_at(&api.server.url);
    }
    tokio::time::sleep(rng.millis(300, 800)).await;
    let changes = writer.stop().await;
    let tally = Tally::of(&changes);
    assert!(
        tally.accepted > 0 && tally.failed.is_empty(),
        "{label}: a live server accepts changes, and never answers them with an error: {tally:?}"
    );

    let events = super::check_events(&api, &ws, &changes, &label).await;
    let drain_started = Instant::now();
    let runs = super::drain(&api, &[&a, &b], events.len(), Duration::from_secs(40)).await;
    let drained_in = drain_started.elapsed();
    super::assert_no_secret_value(&sink, &label);
    let figures =
        super::check_deliveries(&events, &runs, &crate::deliveries_per_run(&sink), &label);
    let counts = queue(&api).await;
    assert_eq!(
        counts.into_iter().collect::<Vec<_>>(),
        [("succeeded".to_owned(), figures.expected as i64)],
        "{label}: in the database too, every run succeeded and none is left running"
    );
    assert!(
        in_flight.iter().sum::<i64>() > 0,
        "{label}: no kill caught a delivery in flight: {in_flight:?}"
    );
    // Only a run a kill left `running` (sent, perhaps, but not recorded) may be sent again.
    assert!(
        figures.duplicated as i64 <= in_flight.iter().sum::<i64>(),
        "{label}: {} duplicates, but only {in_flight:?} runs were in flight at the kills",
        figures.duplicated
    );
    eprintln!(
        "{label}: {KILLS} SIGKILLs; changes sent {}, accepted {}, not sent (server down) {}, \
         unanswered {}; events {}; runs `running` at each kill {in_flight:?}, `pending` \
         {waiting:?}; {figures}; drained {drained_in:.1?} after the writer stopped; {:.1?} in \
         all",
        tally.sent,
        tally.accepted,
        tally.not_sent,
        tally.unknown,
        events.len(),
        started.elapsed()
    );
}

/// Runs by status, read from the database directly.
async fn queue(api: &Api) -> std::collections::BTreeMap<String, i64> {
    let db = keywire_db::Db::connect(api.db.url()).await.unwrap();
    db.run_counts().await.unwrap()
}
