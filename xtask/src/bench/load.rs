//! The load generator: one pooled HTTP client that either upserts entries through keywire's API
//! or posts webhook-shaped requests straight to the sink (the baseline), closed-loop (N clients,
//! each sending its next request when the previous one is answered) or open-loop (a fixed rate,
//! whatever the answers do).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::task::JoinSet;

/// What kind of entry a change writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `PUT /projects/{p}/secrets/{key}`: encrypted at rest.
    Secret,
    /// `PUT /projects/{p}/variables/{key}`: the cheapest change the API offers.
    Variable,
}

impl Kind {
    fn path(self) -> &'static str {
        match self {
            Kind::Secret => "secrets",
            Kind::Variable => "variables",
        }
    }
}

/// Where the generator sends.
#[derive(Debug, Clone)]
pub enum Target {
    /// Entry upserts on a keywire server.
    Keywire {
        /// `http://127.0.0.1:<port>`.
        base: String,
        /// The admin token.
        token: String,
        /// The project's slug.
        project: String,
        /// Secrets or variables.
        kind: Kind,
        /// The environment written (one value per change).
        environment: String,
    },
    /// Webhook-shaped POSTs straight to the sink.
    Sink {
        /// `http://127.0.0.1:<port>/baseline`.
        url: String,
    },
}

/// One request and its answer.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Which key (client number in closed loop, round-robin slot in open loop).
    pub key: u32,
    /// The version keywire answered for the written environment; for the baseline the request's
    /// sequence number.
    pub version: Option<i64>,
    /// When the request was started.
    pub start: Instant,
    /// When the answer (status and body) was read.
    pub end: Instant,
    /// HTTP status; 0 for a transport error or timeout.
    pub status: u16,
}

impl Outcome {
    /// A 2xx answer.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// The name of the `n`-th key the generator writes.
pub fn key_name(n: u32) -> String {
    format!("BENCH_KEY_{n:03}")
}

/// A webhook envelope of the shape keywire's `webhook` integration posts, with `seq` in the
/// places that differ per event (what the baseline sends straight to the sink).
pub fn baseline_body(seq: u64) -> String {
    format!(
        concat!(
            r#"{{"version":1,"type":"VARIABLE_UPDATED","timestamp":"2026-11-28T10:00:00.000Z","#,
            r#""data":{{"id":"evt_{seq:026}","type":"VARIABLE_UPDATED","source":"VARIABLE","#,
            r#""severity":"INFO","title":"Variable BENCH_KEY_001 updated in App","workspace":"bench","#,
            r#""project":"app","environments":["prod"],"actor":{{"id":"usr_00000000000000000000000000","#,
            r#""name":"admin"}},"createdAt":"2026-11-28T10:00:00.000Z","#,
            r#""payload":{{"environments":{{"prod":{seq}}},"key":"BENCH_KEY_001","project":"app"}}}}}}"#
        ),
        seq = seq
    )
}

/// The generator: a pooled client and a target. Cheap to share (`Arc`).
pub struct Generator {
    client: reqwest::Client,
    target: Target,
    seq: AtomicU64,
}

impl Generator {
    /// A generator on `client` (share one client: it holds the connection pool).
    pub fn new(client: reqwest::Client, target: Target) -> Arc<Generator> {
        Arc::new(Generator {
            client,
            target,
            seq: AtomicU64::new(0),
        })
    }

    /// Sends one request for key `key` and waits for its whole answer.
    pub async fn one(&self, key: u32) -> Outcome {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let start = Instant::now();
        let (status, version) = match &self.target {
            Target::Keywire {
                base,
                token,
                project,
                kind,
                environment,
            } => {
                let url = format!(
                    "{base}/api/v1/projects/{project}/{}/{}",
                    kind.path(),
                    key_name(key)
                );
                // A new value every time (a write of the same value is not a change).
                let body = format!(
                    r#"{{"values":{{"{environment}":"bench-value-{seq:016}-0123456789abcdef"}}}}"#
                );
                let sent = self
                    .client
                    .put(url)
                    .bearer_auth(token)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                match sent {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let bytes = response.bytes().await.unwrap_or_default();
                        let version = serde_json::from_slice::<Value>(&bytes)
                            .ok()
                            .and_then(|v| v["environments"][environment]["version"].as_i64());
                        (status, version)
                    }
                    Err(_) => (0, None),
                }
            }
            Target::Sink { url } => {
                let sent = self
                    .client
                    .post(url)
                    .header("content-type", "application/json")
                    .header("user-agent", "keywire/0.0.0")
                    .header("webhook-id", format!("run_baseline_{seq:020}"))
                    .header("webhook-timestamp", "1795860000")
                    .header(
                        "webhook-signature",
                        "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
                    )
                    .body(baseline_body(seq))
                    .send()
                    .await;
                match sent {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let _ = response.bytes().await;
                        (status, i64::try_from(seq).ok())
                    }
                    Err(_) => (0, None),
                }
            }
        };
        Outcome {
            key,
            version,
            start,
            end: Instant::now(),
            status,
        }
    }

    /// `clients` clients, client `c` writing key `c`, each sending its next request as soon as
    /// the previous one is answered, until `until` or until `max` requests were started.
    pub async fn closed_loop(
        self: &Arc<Self>,
        clients: usize,
        until: Instant,
        max: usize,
    ) -> Vec<Outcome> {
        let started = Arc::new(AtomicUsize::new(0));
        let mut set = JoinSet::new();
        for client in 0..clients {
            let generator = self.clone();
            let started = started.clone();
            let key = u32::try_from(client).unwrap_or(u32::MAX);
            set.spawn(async move {
                let mut out = Vec::new();
                while Instant::now() < until && started.fetch_add(1, Ordering::Relaxed) < max {
                    out.push(generator.one(key).await);
                }
                out
            });
        }
        let mut all = Vec::new();
        while let Some(done) = set.join_next().await {
            all.extend(done.unwrap_or_default());
        }
        all.sort_by_key(|o| o.start);
        all
    }

    /// `rate` requests per second for `length`, over `keys` keys round-robin, each request
    /// started at its scheduled time whatever the earlier ones do (open loop). Returns the
    /// outcomes and how many scheduled requests were skipped because `max_in_flight` were still
    /// unanswered (the system could not keep up).
    pub async fn open_loop(
        self: &Arc<Self>,
        rate: f64,
        length: Duration,
        keys: u32,
        max_in_flight: usize,
    ) -> (Vec<Outcome>, usize) {
        let interval = Duration::from_secs_f64(1.0 / rate.max(0.001));
        let begin = Instant::now();
        let end = begin + length;
        let in_flight = Arc::new(AtomicUsize::new(0));
        let mut set = JoinSet::new();
        let mut all = Vec::new();
        let mut skipped = 0;
        let mut n: u32 = 0;
        loop {
            let at = begin + interval.mul_f64(f64::from(n));
            if at >= end {
                break;
            }
            tokio::time::sleep_until(at.into()).await;
            let key = n % keys.max(1);
            n = n.wrapping_add(1);
            if in_flight.load(Ordering::Relaxed) >= max_in_flight {
                skipped += 1;
                continue;
            }
            in_flight.fetch_add(1, Ordering::Relaxed);
            let generator = self.clone();
            let in_flight = in_flight.clone();
            set.spawn(async move {
                let outcome = generator.one(key).await;
                in_flight.fetch_sub(1, Ordering::Relaxed);
                outcome
            });
            // Collect finished ones as we go, so the set stays small.
            while let Some(done) = set.try_join_next() {
                all.extend(done.ok());
            }
        }
        while let Some(done) = set.join_next().await {
            all.extend(done.ok());
        }
        all.sort_by_key(|o| o.start);
        (all, skipped)
    }
}
