//! The scenarios: what each one starts, sends, waits for and measures. Every phase has a
//! deadline; a scenario whose deliveries did not all arrive says so instead of hanging.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use super::check::{self, Check, Delivered, DeliveryKey};
use super::keywire::{Keywire, Memory, runs_json};
use super::load::{Generator, Kind, Outcome, Target, key_name};
use super::postgres::Postgres;
use super::report::{Row, mib, ms, thousands};
use super::sink::{Arrival, Sink};
use super::stats::{Summary, rate, round3, signed_ms};

/// Concurrent clients of the closed-loop scenarios and the baseline.
pub const CLIENTS: usize = 32;
/// The environment every change writes.
const ENVIRONMENT: &str = "prod";
/// Open loop: at most this many requests unanswered before scheduled ones are skipped.
const MAX_IN_FLIGHT: usize = 512;
/// The closed-loop warm-up stops once this many deliveries are expected.
const WARMUP_DELIVERIES: usize = 1_000;
/// Keys written round-robin in the open-loop (latency) scenarios.
const LATENCY_KEYS: u32 = 32;

/// A database backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Backend {
    /// The embedded default.
    Sqlite,
    /// `postgres://`.
    Postgres,
}

impl Backend {
    /// `sqlite` or `postgres`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// The rate of a latency scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    /// This many changes per second.
    PerSecond(u32),
    /// This percentage of the end-to-end maximum `secrets-1` measured on the same backend.
    PercentOfMax(u32),
}

/// One scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// The generator straight to the sink: what the machine does without keywire.
    Baseline,
    /// Closed-loop upserts at [`CLIENTS`] clients with `fanout` webhooks subscribed.
    Writes {
        /// Secrets (`secrets-N`) or variables (`events-N`).
        kind: Kind,
        /// Webhook integrations subscribed.
        fanout: usize,
    },
    /// Open-loop secret upserts at a fixed rate, one webhook: change-to-delivery latency.
    Latency(Rate),
    /// 100 rapid changes to a project synced to a Vercel fake.
    InfraSync,
}

impl Scenario {
    /// Its name on the command line and in the report.
    pub fn name(self) -> String {
        match self {
            Scenario::Baseline => "baseline".into(),
            Scenario::Writes {
                kind: Kind::Secret,
                fanout,
            } => format!("secrets-{fanout}"),
            Scenario::Writes {
                kind: Kind::Variable,
                fanout,
            } => format!("events-{fanout}"),
            Scenario::Latency(Rate::PerSecond(r)) => format!("latency-{r}"),
            Scenario::Latency(Rate::PercentOfMax(p)) => format!("latency-{p}pct"),
            Scenario::InfraSync => "infra-sync".into(),
        }
    }

    /// Every scenario, in the order the full bench runs them.
    pub fn all() -> Vec<Scenario> {
        let mut all = vec![Scenario::Baseline];
        for kind in [Kind::Secret, Kind::Variable] {
            for fanout in [1, 10, 100] {
                all.push(Scenario::Writes { kind, fanout });
            }
        }
        all.extend([
            Scenario::Latency(Rate::PerSecond(100)),
            Scenario::Latency(Rate::PerSecond(200)),
            Scenario::Latency(Rate::PercentOfMax(80)),
            Scenario::InfraSync,
        ]);
        all
    }

    /// What `--quick` runs.
    pub fn quick() -> Vec<Scenario> {
        vec![
            Scenario::Baseline,
            Scenario::Writes {
                kind: Kind::Secret,
                fanout: 1,
            },
            Scenario::Writes {
                kind: Kind::Secret,
                fanout: 10,
            },
            Scenario::Latency(Rate::PerSecond(100)),
        ]
    }

    /// Scenarios this one needs in the same run (the baseline for ratios, `secrets-1` for the
    /// 80 % rate).
    pub fn needs(self) -> Vec<Scenario> {
        match self {
            Scenario::Writes { .. } => vec![Scenario::Baseline],
            Scenario::Latency(Rate::PercentOfMax(_)) => vec![Scenario::Writes {
                kind: Kind::Secret,
                fanout: 1,
            }],
            _ => Vec::new(),
        }
    }
}

/// How long each phase lasts.
#[derive(Debug, Clone)]
pub struct Plan {
    /// `quick` or `full`.
    pub mode: &'static str,
    /// Closed-loop warm-up (not measured).
    pub warmup: Duration,
    /// Closed-loop measure window.
    pub window: Duration,
    /// Longest wait for the warm-up's deliveries before measuring.
    pub settle: Duration,
    /// Longest wait for the deliveries after the window.
    pub drain: Duration,
    /// Open-loop warm-up.
    pub latency_warmup: Duration,
    /// Open-loop measure window.
    pub latency_window: Duration,
    /// Writes stop early once this many deliveries are expected (bounds the drain).
    pub delivery_cap: usize,
    /// The baseline's window.
    pub baseline_window: Duration,
}

impl Plan {
    /// Short windows for the profiling loop.
    pub fn quick() -> Plan {
        Plan {
            mode: "quick",
            warmup: Duration::from_secs(1),
            window: Duration::from_secs(4),
            settle: Duration::from_secs(4),
            drain: Duration::from_secs(10),
            latency_warmup: Duration::from_secs(1),
            latency_window: Duration::from_secs(4),
            delivery_cap: 40_000,
            baseline_window: Duration::from_secs(3),
        }
    }

    /// The full bench.
    pub fn full() -> Plan {
        Plan {
            mode: "full",
            warmup: Duration::from_secs(2),
            window: Duration::from_secs(10),
            settle: Duration::from_secs(15),
            drain: Duration::from_secs(40),
            latency_warmup: Duration::from_secs(2),
            latency_window: Duration::from_secs(10),
            delivery_cap: 50_000,
            baseline_window: Duration::from_secs(8),
        }
    }

    /// As JSON (seconds).
    pub fn to_json(&self) -> Value {
        json!({
            "mode": self.mode,
            "clients": CLIENTS,
            "warmupSeconds": self.warmup.as_secs_f64(),
            "windowSeconds": self.window.as_secs_f64(),
            "settleDeadlineSeconds": self.settle.as_secs_f64(),
            "drainDeadlineSeconds": self.drain.as_secs_f64(),
            "latencyWarmupSeconds": self.latency_warmup.as_secs_f64(),
            "latencyWindowSeconds": self.latency_window.as_secs_f64(),
            "deliveryCap": self.delivery_cap,
            "baselineWindowSeconds": self.baseline_window.as_secs_f64(),
        })
    }
}

/// How a scenario ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Measured, every delivery accounted for.
    Ok,
    /// Measured, but something is off (deliveries missing after the drain, errors).
    Incomplete(String),
    /// Could not run.
    Failed(String),
    /// Not run (a dependency is missing).
    Skipped(String),
}

impl Status {
    fn to_json(&self) -> (Value, Value) {
        match self {
            Status::Ok => (json!("ok"), Value::Null),
            Status::Incomplete(why) => (json!("incomplete"), json!(why)),
            Status::Failed(why) => (json!("failed"), json!(why)),
            Status::Skipped(why) => (json!("skipped"), json!(why)),
        }
    }
}

/// What a scenario produced.
#[derive(Debug, Clone)]
pub struct ScenarioResult {
    /// Its name.
    pub name: String,
    /// The backend, when it has one.
    pub backend: Option<Backend>,
    /// How it ended.
    pub status: Status,
    /// Its numbers, for the JSON.
    pub metrics: Map<String, Value>,
    /// Its lines of the table.
    pub rows: Vec<Row>,
}

impl ScenarioResult {
    /// An empty result (status ok).
    pub fn new(name: &str, backend: Option<Backend>) -> ScenarioResult {
        ScenarioResult {
            name: name.to_owned(),
            backend,
            status: Status::Ok,
            metrics: Map::new(),
            rows: Vec::new(),
        }
    }

    /// Adds a line with a target (empty: none).
    pub fn add_row(&mut self, metric: &str, value: Option<f64>, display: String, target: &str) {
        self.row(metric, value, display).target = target.to_owned();
    }

    fn backend_name(&self) -> &'static str {
        self.backend.map_or("-", Backend::name)
    }

    /// Adds a line to the table.
    pub fn row(&mut self, metric: &str, value: Option<f64>, display: String) -> &mut Row {
        let row = Row::new(&self.name, self.backend_name(), metric, value, display);
        self.rows.push(row);
        self.rows.last_mut().expect("just pushed")
    }

    /// Adds a number to the JSON.
    pub fn metric(&mut self, name: &str, value: Value) {
        self.metrics.insert(name.to_owned(), value);
    }

    /// Marks the result incomplete (keeps earlier reasons).
    pub fn incomplete(&mut self, why: String) {
        if self.status == Status::Ok {
            self.status = Status::Incomplete(why);
        } else if let Status::Incomplete(previous) = &mut self.status {
            previous.push_str("; ");
            previous.push_str(&why);
        }
    }

    /// As JSON.
    pub fn to_json(&self) -> Value {
        let (status, reason) = self.status.to_json();
        json!({
            "name": self.name,
            "backend": self.backend.map(Backend::name),
            "status": status,
            "reason": reason,
            "metrics": self.metrics,
        })
    }

    /// A scenario that was not run, with one row saying why.
    pub fn skipped(name: &str, backend: Option<Backend>, why: &str) -> ScenarioResult {
        ScenarioResult::not_run(name, backend, Status::Skipped(why.to_owned()))
    }

    /// Whether it measured everything it should.
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// A scenario that did not run, with one row saying why.
    fn not_run(name: &str, backend: Option<Backend>, status: Status) -> ScenarioResult {
        let mut result = ScenarioResult::new(name, backend);
        let text = match &status {
            Status::Failed(why) => format!("FAILED: {}", first_line(why)),
            Status::Skipped(why) => format!("skipped: {why}"),
            _ => String::new(),
        };
        result.row("status", None, text);
        result.status = status;
        result
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

/// Numbers a later row needs (growth, the 80 % rate).
#[derive(Debug, Clone, Copy)]
struct WritesNumbers {
    writes_per_sec: Option<f64>,
    write_p99: Option<f64>,
    deliveries_per_sec: Option<f64>,
    e2e_changes_per_sec: Option<f64>,
    peak_kib: Option<u64>,
}

/// A growth row: its label, how to read it from [`WritesNumbers`], how to show it.
type GrowthMetric = (
    &'static str,
    fn(&WritesNumbers) -> Option<f64>,
    fn(f64) -> String,
);

/// Everything the scenarios share.
pub struct Bench {
    plan: Plan,
    binary: PathBuf,
    sink: Sink,
    http: reqwest::Client,
    postgres: Option<Postgres>,
    baseline: Option<f64>,
    writes: BTreeMap<(Backend, &'static str, usize), WritesNumbers>,
}

fn memory_json(idle: Option<Memory>, end: Option<Memory>) -> Value {
    json!({
        "idleRssKiB": idle.map(|m| m.rss_kib),
        "peakRssKiB": end.map(|m| m.hwm_kib),
        "endRssKiB": end.map(|m| m.rss_kib),
    })
}

impl Bench {
    /// Starts the sink and the client.
    pub fn new(plan: Plan, binary: PathBuf, postgres: Option<Postgres>) -> Result<Bench, String> {
        keywire_core::ensure_crypto_provider();
        let http = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(4 * CLIENTS)
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Bench {
            plan,
            binary,
            sink: Sink::start()?,
            http,
            postgres,
            baseline: None,
            writes: BTreeMap::new(),
        })
    }

    /// Runs one scenario on one backend (the backend is ignored by the baseline).
    pub async fn run(&mut self, scenario: Scenario, backend: Backend) -> ScenarioResult {
        let name = scenario.name();
        let backend = (scenario != Scenario::Baseline).then_some(backend);
        eprintln!(
            "bench: {name}{}",
            backend
                .map(|b| format!(" on {}", b.name()))
                .unwrap_or_default()
        );
        let started = Instant::now();
        let result = match scenario {
            Scenario::Baseline => Ok(self.baseline().await),
            Scenario::Writes { kind, fanout } => {
                self.writes_scenario(&name, backend.unwrap_or(Backend::Sqlite), kind, fanout)
                    .await
            }
            Scenario::Latency(rate) => {
                self.latency(&name, backend.unwrap_or(Backend::Sqlite), rate)
                    .await
            }
            Scenario::InfraSync => {
                super::infra::run(self, &name, backend.unwrap_or(Backend::Sqlite)).await
            }
        };
        let mut result = result
            .unwrap_or_else(|why| ScenarioResult::not_run(&name, backend, Status::Failed(why)));
        result.metric(
            "wallSeconds",
            json!(round3(started.elapsed().as_secs_f64())),
        );
        if let Status::Incomplete(why) | Status::Failed(why) = &result.status {
            eprintln!("bench: {name}: {}", first_line(why));
        }
        result
    }

    /// Starts a server on a fresh database of `backend`.
    pub async fn server(
        &mut self,
        backend: Backend,
        extra: &[(String, String)],
    ) -> Result<Keywire, String> {
        let database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(
                self.postgres
                    .as_mut()
                    .ok_or("PostgreSQL is not available")?
                    .database()
                    .await?,
            ),
        };
        Keywire::start(&self.binary, &self.http, database, extra)
    }

    /// Waits until the sink has counted `target` requests in all, at most `deadline`; then a
    /// short quiet period so late duplicates are counted too. True when the count was reached.
    async fn wait_for(&self, target: u64, deadline: Duration) -> bool {
        let end = Instant::now() + deadline;
        loop {
            if self.sink.count() >= target {
                tokio::time::sleep(Duration::from_millis(150)).await;
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    async fn baseline(&mut self) -> ScenarioResult {
        let mut result = ScenarioResult::new("baseline", None);
        self.sink.take();
        let generator = Generator::new(
            self.http.clone(),
            Target::Sink {
                url: format!("{}/baseline", self.sink.url),
            },
        );
        let _ = generator
            .closed_loop(CLIENTS, Instant::now() + Duration::from_secs(1), usize::MAX)
            .await;
        let t0 = Instant::now();
        let measured = generator
            .closed_loop(CLIENTS, t0 + self.plan.baseline_window, usize::MAX)
            .await;
        let t1 = measured.iter().map(|o| o.end).max().unwrap_or(t0);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let arrivals = self.sink.take();
        let ok = measured.iter().filter(|o| o.ok()).count();
        let arrived = arrivals.iter().filter(|a| a.at >= t0 && a.at <= t1).count();
        let per_sec = rate(ok, t1 - t0);
        let latency = Summary::of(
            measured
                .iter()
                .filter(|o| o.ok())
                .map(|o| signed_ms(o.start, o.end))
                .collect(),
        );
        let mut ids = HashSet::new();
        let duplicated = arrivals.iter().filter(|a| !ids.insert(&a.id)).count();
        self.baseline = per_sec;
        result.metric("clients", json!(CLIENTS));
        result.metric("requests", json!(measured.len()));
        result.metric("answered2xx", json!(ok));
        result.metric("arrivedInWindow", json!(arrived));
        result.metric("deliveriesPerSec", json!(per_sec.map(round3)));
        result.metric("requestLatencyMs", json!(latency.map(Summary::to_json)));
        result.metric("duplicated", json!(duplicated));
        result
            .row(
                &format!("deliveries/s ({CLIENTS} clients → sink)"),
                per_sec,
                per_sec.map_or("n/a".into(), thousands),
            )
            .ratio = per_sec.map(|_| 1.0);
        result.row(
            "request latency p50 / p99 ms",
            latency.map(|l| l.p99),
            latency.map_or("n/a".into(), |l| {
                format!("{} / {}", ms(Some(l.p50)), ms(Some(l.p99)))
            }),
        );
        if ok != measured.len() || duplicated > 0 {
            result.incomplete(format!(
                "{} of {} requests failed, {duplicated} duplicated",
                measured.len() - ok,
                measured.len()
            ));
        }
        result
    }

    /// Sets up a server with `hooks` webhooks; returns it, the project and its idle memory.
    async fn with_hooks(
        &mut self,
        backend: Backend,
        hooks: usize,
    ) -> Result<(Keywire, String, Option<Memory>), String> {
        let keywire = self.server(backend, &[]).await?;
        let setup = async {
            let (workspace, project) = keywire.project().await?;
            keywire
                .webhooks(&workspace, &project, hooks, &self.sink.url)
                .await?;
            Ok::<_, String>(project)
        }
        .await;
        match setup {
            Ok(project) => {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let idle = keywire.memory();
                Ok((keywire, project, idle))
            }
            Err(why) => {
                keywire.stop().await;
                Err(why)
            }
        }
    }

    fn generator(&self, keywire: &Keywire, project: &str, kind: Kind) -> Arc<Generator> {
        Generator::new(
            self.http.clone(),
            Target::Keywire {
                base: keywire.url.clone(),
                token: super::keywire::TOKEN.to_owned(),
                project: project.to_owned(),
                kind,
                environment: ENVIRONMENT.to_owned(),
            },
        )
    }

    async fn writes_scenario(
        &mut self,
        name: &str,
        backend: Backend,
        kind: Kind,
        fanout: usize,
    ) -> Result<ScenarioResult, String> {
        let mut result = ScenarioResult::new(name, Some(backend));
        let (keywire, project, idle) = self.with_hooks(backend, fanout).await?;
        let generator = self.generator(&keywire, &project, kind);
        let max_writes = (self.plan.delivery_cap / fanout.max(1)).max(CLIENTS);
        // The warm-up creates every client's key and fills caches and pools; it is kept small
        // (at most WARMUP_DELIVERIES deliveries, but one write per client) so its deliveries
        // can be awaited before the window starts without a backlog.
        let max_warm = (WARMUP_DELIVERIES / fanout.max(1)).clamp(CLIENTS, 4 * CLIENTS);
        self.sink.take();
        let base = self.sink.count();

        let warm = generator
            .closed_loop(CLIENTS, Instant::now() + self.plan.warmup, max_warm)
            .await;
        let warm_ok = warm.iter().filter(|o| o.ok()).count();
        let settled = self
            .wait_for(base + (warm_ok * fanout) as u64, self.plan.settle)
            .await;
        if !settled {
            result.incomplete(format!(
                "the warm-up's deliveries had not all arrived after {} s",
                self.plan.settle.as_secs()
            ));
        }

        let t0 = Instant::now();
        let measured = generator
            .closed_loop(CLIENTS, t0 + self.plan.window, max_writes)
            .await;
        let t1 = measured.iter().map(|o| o.end).max().unwrap_or(t0);
        let measured_ok = measured.iter().filter(|o| o.ok()).count();
        let drained = self
            .wait_for(
                base + ((warm_ok + measured_ok) * fanout) as u64,
                self.plan.drain,
            )
            .await;
        let end_memory = keywire.memory();
        let server = keywire.metrics().await;
        keywire.stop().await;
        let arrivals = self.sink.take();

        let analysis = analyze(&warm, &measured, &arrivals, fanout, t0, t1);
        let window = t1 - t0;
        let writes_per_sec = rate(measured_ok, window);
        let write_latency = Summary::of(
            measured
                .iter()
                .filter(|o| o.ok())
                .map(|o| signed_ms(o.start, o.end))
                .collect(),
        );
        let deliveries_per_sec = rate(analysis.in_window, window);
        let ratio = deliveries_per_sec.zip(self.baseline).map(|(d, b)| d / b);
        let errors = statuses(&measured);

        result.metric("kind", json!(kind_name(kind)));
        result.metric("fanout", json!(fanout));
        result.metric("clients", json!(CLIENTS));
        result.metric("windowSeconds", json!(round3(window.as_secs_f64())));
        result.metric("warmupWrites", json!(warm_ok));
        result.metric("writes", json!(measured_ok));
        result.metric("writeErrors", json!(errors));
        result.metric("writesPerSec", json!(writes_per_sec.map(round3)));
        result.metric("writeLatencyMs", json!(write_latency.map(Summary::to_json)));
        result.metric("deliveriesInWindow", json!(analysis.in_window));
        result.metric("deliveriesPerSec", json!(deliveries_per_sec.map(round3)));
        result.metric("baselineRatio", json!(ratio.map(round3)));
        result.metric(
            "endToEndChangesPerSec",
            json!(analysis.e2e_changes_per_sec.map(round3)),
        );
        result.metric(
            "drainDeliveriesPerSec",
            json!(analysis.drain_per_sec.map(round3)),
        );
        result.metric(
            "deliveryLatencyMs",
            json!(analysis.latency_from_answer.map(Summary::to_json)),
        );
        result.metric("deliveries", analysis.check.to_json());
        result.metric("memory", memory_json(idle, end_memory));
        result.metric("server", runs_json(&server));

        let writes_target = (kind == Kind::Secret).then_some("≥ 2,000");
        let r = result.row(
            &format!("writes/s ({CLIENTS} clients)"),
            writes_per_sec,
            writes_per_sec.map_or("n/a".into(), thousands),
        );
        if let Some(target) = writes_target {
            r.target = target.into();
        }
        let r = result.row(
            "write latency p50 / p99 ms",
            write_latency.map(|l| l.p99),
            write_latency.map_or("n/a".into(), |l| {
                format!("{} / {}", ms(Some(l.p50)), ms(Some(l.p99)))
            }),
        );
        if kind == Kind::Secret {
            r.target = "p99 ≤ 20 ms".into();
        }
        let r = result.row(
            "deliveries/s at the sink (under load)",
            deliveries_per_sec,
            deliveries_per_sec.map_or("n/a".into(), thousands),
        );
        r.ratio = ratio;
        if fanout == 10 {
            r.target = match backend {
                Backend::Postgres => "≥ 6,000 and ≥ 20% of baseline".into(),
                Backend::Sqlite => "≥ 5,000".into(),
            };
        }
        let r = result.row(
            "end-to-end changes/s",
            analysis.e2e_changes_per_sec,
            analysis
                .e2e_changes_per_sec
                .map_or("incomplete".into(), thousands),
        );
        if fanout == 1 {
            r.target = "≥ 2,000".into();
        }
        result.row(
            "drain deliveries/s (writes stopped)",
            analysis.drain_per_sec,
            analysis.drain_per_sec.map_or("n/a".into(), thousands),
        );
        let partial = if analysis.check.missing > 0 {
            " (arrived only)"
        } else {
            ""
        };
        result.row(
            "change→delivery p50 / p95 / p99 ms",
            analysis.latency_from_answer.map(|l| l.p99),
            analysis.latency_from_answer.map_or("n/a".into(), |l| {
                format!(
                    "{} / {} / {}{partial}",
                    ms(Some(l.p50)),
                    ms(Some(l.p95)),
                    ms(Some(l.p99))
                )
            }),
        );
        delivery_rows(&mut result, analysis.check);
        memory_rows(&mut result, idle, end_memory);
        if !errors.is_empty() {
            let failed: usize = errors.values().sum();
            result.row(
                "write errors (status: count)",
                Some(failed as f64),
                errors
                    .iter()
                    .map(|(s, n)| format!("{s}: {n}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            );
            result.incomplete(format!("{failed} writes were refused or failed"));
        }
        if !drained || !analysis.check.clean() {
            result.incomplete(format!(
                "{} deliveries missing after the drain ({} s){}, {} duplicated, {} unexpected",
                analysis.check.missing,
                self.plan.drain.as_secs(),
                queued_note(&server),
                analysis.check.duplicated,
                analysis.check.unexpected
            ));
        }
        self.writes.insert(
            (backend, kind_name(kind), fanout),
            WritesNumbers {
                writes_per_sec,
                write_p99: write_latency.map(|l| l.p99),
                deliveries_per_sec,
                e2e_changes_per_sec: analysis.e2e_changes_per_sec,
                peak_kib: end_memory.map(|m| m.hwm_kib),
            },
        );
        Ok(result)
    }

    async fn latency(
        &mut self,
        name: &str,
        backend: Backend,
        rate_spec: Rate,
    ) -> Result<ScenarioResult, String> {
        let per_sec = match rate_spec {
            Rate::PerSecond(r) => f64::from(r),
            Rate::PercentOfMax(p) => {
                let max = self
                    .writes
                    .get(&(backend, "secret", 1))
                    .and_then(|w| w.e2e_changes_per_sec);
                match max {
                    Some(max) => max * f64::from(p) / 100.0,
                    None => {
                        return Ok(ScenarioResult::not_run(
                            name,
                            Some(backend),
                            Status::Skipped(
                                "needs a complete secrets-1 on this backend in the same run".into(),
                            ),
                        ));
                    }
                }
            }
        };
        let mut result = ScenarioResult::new(name, Some(backend));
        let (keywire, project, idle) = self.with_hooks(backend, 1).await?;
        let generator = self.generator(&keywire, &project, Kind::Secret);
        self.sink.take();
        let base = self.sink.count();

        let (warm, _) = generator
            .open_loop(
                per_sec,
                self.plan.latency_warmup,
                LATENCY_KEYS,
                MAX_IN_FLIGHT,
            )
            .await;
        let warm_ok = warm.iter().filter(|o| o.ok()).count();
        if !self.wait_for(base + warm_ok as u64, self.plan.settle).await {
            result.incomplete("the warm-up's deliveries had not all arrived".into());
        }
        let t0 = Instant::now();
        let (measured, skipped) = generator
            .open_loop(
                per_sec,
                self.plan.latency_window,
                LATENCY_KEYS,
                MAX_IN_FLIGHT,
            )
            .await;
        let t1 = measured.iter().map(|o| o.end).max().unwrap_or(t0);
        let measured_ok = measured.iter().filter(|o| o.ok()).count();
        let drained = self
            .wait_for(base + (warm_ok + measured_ok) as u64, self.plan.drain)
            .await;
        let end_memory = keywire.memory();
        let server = keywire.metrics().await;
        keywire.stop().await;
        let arrivals = self.sink.take();
        let analysis = analyze(&warm, &measured, &arrivals, 1, t0, t1);
        let achieved = rate(measured_ok, self.plan.latency_window);
        let write_latency = Summary::of(
            measured
                .iter()
                .filter(|o| o.ok())
                .map(|o| signed_ms(o.start, o.end))
                .collect(),
        );
        let errors = statuses(&measured);

        result.metric("ratePerSec", json!(round3(per_sec)));
        result.metric("achievedPerSec", json!(achieved.map(round3)));
        result.metric("skippedBehindSchedule", json!(skipped));
        result.metric("writes", json!(measured_ok));
        result.metric("writeErrors", json!(errors));
        result.metric("writeLatencyMs", json!(write_latency.map(Summary::to_json)));
        result.metric(
            "deliveryLatencyMs",
            json!(analysis.latency_from_answer.map(Summary::to_json)),
        );
        result.metric(
            "deliveryLatencyFromRequestStartMs",
            json!(analysis.latency_from_start.map(Summary::to_json)),
        );
        result.metric("deliveries", analysis.check.to_json());
        result.metric("memory", memory_json(idle, end_memory));
        result.metric("server", runs_json(&server));

        result.row(
            "changes/s sent / asked",
            achieved,
            format!(
                "{} / {per_sec:.0}",
                achieved.map_or("n/a".into(), |a| format!("{a:.0}")),
            ),
        );
        let partial = if analysis.check.missing > 0 {
            " (arrived only)"
        } else {
            ""
        };
        let three = |s: Option<Summary>| {
            s.map_or("n/a".into(), |l| {
                format!(
                    "{} / {} / {}{partial}",
                    ms(Some(l.p50)),
                    ms(Some(l.p95)),
                    ms(Some(l.p99))
                )
            })
        };
        let r = result.row(
            "change→delivery p50 / p95 / p99 ms",
            analysis.latency_from_answer.map(|l| l.p99),
            three(analysis.latency_from_answer),
        );
        if rate_spec == Rate::PerSecond(100) {
            r.target = "p99 ≤ 10 ms".into();
        }
        result.row(
            "same, from request start",
            analysis.latency_from_start.map(|l| l.p99),
            three(analysis.latency_from_start),
        );
        result.row(
            "write latency p50 / p99 ms",
            write_latency.map(|l| l.p99),
            write_latency.map_or("n/a".into(), |l| {
                format!("{} / {}", ms(Some(l.p50)), ms(Some(l.p99)))
            }),
        );
        delivery_rows(&mut result, analysis.check);
        memory_rows(&mut result, idle, end_memory);
        if skipped > 0 {
            result.incomplete(format!(
                "{skipped} changes skipped: {MAX_IN_FLIGHT} requests were unanswered"
            ));
        }
        if !errors.is_empty() {
            result.incomplete(format!("write errors: {errors:?}"));
        }
        if !drained || !analysis.check.clean() {
            result.incomplete(format!(
                "{} deliveries missing after the drain{}, {} duplicated, {} unexpected",
                analysis.check.missing,
                queued_note(&server),
                analysis.check.duplicated,
                analysis.check.unexpected
            ));
        }
        Ok(result)
    }

    /// The cost-growth rows of `backend`: each writes metric at fan-out 1 → 10 → 100, with
    /// the factor relative to fan-out 1.
    pub fn growth(&self, backend: Backend) -> Option<ScenarioResult> {
        let mut result = ScenarioResult::new("growth", Some(backend));
        for kind in ["secret", "variable"] {
            let series: Vec<(usize, WritesNumbers)> = self
                .writes
                .iter()
                .filter(|((b, k, _), _)| *b == backend && *k == kind)
                .map(|((_, _, f), w)| (*f, *w))
                .collect();
            if series.len() < 2 {
                continue;
            }
            let label = if kind == "secret" {
                "secrets"
            } else {
                "events"
            };
            let fanouts = series
                .iter()
                .map(|(f, _)| f.to_string())
                .collect::<Vec<_>>()
                .join(" → ");
            let metrics: [GrowthMetric; 4] = [
                ("writes/s", |w| w.writes_per_sec, thousands),
                ("write p99 ms", |w| w.write_p99, |x| format!("{x:.2}")),
                ("deliveries/s", |w| w.deliveries_per_sec, thousands),
                (
                    "peak RSS MiB",
                    |w| w.peak_kib.map(|k| k as f64 / 1024.0),
                    |x| format!("{x:.1}"),
                ),
            ];
            let mut json_series = Map::new();
            for (metric, get, show) in metrics {
                let first = get(&series[0].1);
                let shown: Vec<String> = series
                    .iter()
                    .enumerate()
                    .map(|(i, (_, w))| match (get(w), first) {
                        (Some(v), Some(f)) if i > 0 && f > 0.0 => {
                            format!("{} ({:.2}×)", show(v), v / f)
                        }
                        (Some(v), _) => show(v),
                        (None, _) => "n/a".into(),
                    })
                    .collect();
                json_series.insert(
                    metric.into(),
                    json!(
                        series
                            .iter()
                            .map(|(f, w)| json!({"fanout": f, "value": get(w).map(round3)}))
                            .collect::<Vec<_>>()
                    ),
                );
                result.row(
                    &format!("{label} {metric}, fan-out {fanouts}"),
                    None,
                    shown.join(" → "),
                );
            }
            result.metric(label, Value::Object(json_series));
        }
        (!result.rows.is_empty()).then_some(result)
    }
}

/// `" (the server still had N runs pending or running, F failed)"` from its `/metrics`: tells a
/// slow delivery path from a lost delivery.
fn queued_note(server: &BTreeMap<String, f64>) -> String {
    let get = |status: &str| {
        server
            .get(&format!("keywire_runs{{status=\"{status}\"}}"))
            .copied()
    };
    match (get("pending"), get("running"), get("failed")) {
        (Some(pending), Some(running), failed) => format!(
            " (the server still had {} runs pending or running, {} failed)",
            pending + running,
            failed.unwrap_or(0.0)
        ),
        _ => String::new(),
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Secret => "secret",
        Kind::Variable => "variable",
    }
}

/// Non-2xx answers by status (0: transport error or timeout).
fn statuses(outcomes: &[Outcome]) -> BTreeMap<u16, usize> {
    let mut out = BTreeMap::new();
    for o in outcomes.iter().filter(|o| !o.ok()) {
        *out.entry(o.status).or_default() += 1;
    }
    out
}

fn delivery_rows(result: &mut ScenarioResult, check: Check) {
    result
        .row(
            "lost / duplicated / unexpected deliveries",
            Some((check.missing + check.duplicated + check.unexpected) as f64),
            format!(
                "{} / {} / {} of {}",
                check.missing, check.duplicated, check.unexpected, check.expected
            ),
        )
        .target = "0 / 0 / 0".into();
}

fn memory_rows(result: &mut ScenarioResult, idle: Option<Memory>, end: Option<Memory>) {
    result
        .row(
            "server RSS idle / peak MiB",
            end.map(|m| m.hwm_kib as f64 / 1024.0),
            format!(
                "{} / {}",
                idle.map_or("n/a".into(), |m| mib(m.rss_kib)),
                end.map_or("n/a".into(), |m| mib(m.hwm_kib))
            ),
        )
        .target = "≤ 30 / ≤ 60".into();
}

/// What the arrivals say about the changes.
struct Analysis {
    check: Check,
    /// Arrivals (any) inside the measure window.
    in_window: usize,
    /// Measured changes / (last of their deliveries − window start), when all arrived.
    e2e_changes_per_sec: Option<f64>,
    /// Arrivals after the last answer / time to the last arrival.
    drain_per_sec: Option<f64>,
    /// Arrival − the 2xx answer of the change, for measured changes.
    latency_from_answer: Option<Summary>,
    /// Arrival − the start of the change's request, for measured changes.
    latency_from_start: Option<Summary>,
}

fn analyze(
    warm: &[Outcome],
    measured: &[Outcome],
    arrivals: &[Arrival],
    fanout: usize,
    t0: Instant,
    t1: Instant,
) -> Analysis {
    let hooks = u32::try_from(fanout).unwrap_or(u32::MAX);
    // (key, version) → (measured?, start, answered).
    let mut changes: HashMap<(String, i64), (bool, Instant, Instant)> = HashMap::new();
    let mut expected: HashSet<DeliveryKey> = HashSet::new();
    for (is_measured, outcomes) in [(false, warm), (true, measured)] {
        for o in outcomes.iter().filter(|o| o.ok()) {
            let Some(version) = o.version else { continue };
            let key = key_name(o.key);
            for hook in 0..hooks {
                expected.insert((hook, key.clone(), version));
            }
            changes.insert((key, version), (is_measured, o.start, o.end));
        }
    }
    let parsed: Vec<Option<Delivered>> = arrivals
        .iter()
        .map(|a| check::parse(a, ENVIRONMENT))
        .collect();
    let check = Check::of(&expected, &parsed);
    let in_window = arrivals.iter().filter(|a| a.at >= t0 && a.at <= t1).count();
    let mut from_answer = Vec::new();
    let mut from_start = Vec::new();
    let mut last_measured: Option<Instant> = None;
    let mut measured_received: HashSet<DeliveryKey> = HashSet::new();
    for d in parsed.iter().flatten() {
        let Some(&(true, start, answered)) = changes.get(&(d.key.clone(), d.version)) else {
            continue;
        };
        if !measured_received.insert((d.hook, d.key.clone(), d.version)) {
            continue;
        }
        from_answer.push(signed_ms(answered, d.at));
        from_start.push(signed_ms(start, d.at));
        last_measured = Some(last_measured.map_or(d.at, |l| l.max(d.at)));
    }
    let measured_expected = measured
        .iter()
        .filter(|o| o.ok() && o.version.is_some())
        .count()
        * fanout;
    let e2e_changes_per_sec = last_measured
        .filter(|_| measured_received.len() == measured_expected && measured_expected > 0)
        .and_then(|last| rate(measured_expected / fanout.max(1), last - t0));
    let after: Vec<Instant> = arrivals
        .iter()
        .map(|a| a.at)
        .filter(|at| *at > t1)
        .collect();
    let drain_per_sec = after
        .iter()
        .max()
        .filter(|_| after.len() >= 50)
        .and_then(|last| rate(after.len(), *last - t1));
    Analysis {
        check,
        in_window,
        e2e_changes_per_sec,
        drain_per_sec,
        latency_from_answer: Summary::of(from_answer),
        latency_from_start: Summary::of(from_start),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_quick_is_a_subset() {
        let all: Vec<String> = Scenario::all().into_iter().map(Scenario::name).collect();
        let unique: HashSet<&String> = all.iter().collect();
        assert_eq!(unique.len(), all.len(), "{all:?}");
        for scenario in Scenario::quick() {
            assert!(all.contains(&scenario.name()));
        }
        assert!(all.contains(&"latency-80pct".to_owned()));
        assert!(all.contains(&"events-10".to_owned()));
    }

    fn outcome(key: u32, version: i64, start: Instant, ms_later: u64) -> Outcome {
        Outcome {
            key,
            version: Some(version),
            start,
            end: start + Duration::from_millis(ms_later),
            status: 200,
        }
    }

    fn arrival(hook: u32, key: u32, version: i64, at: Instant) -> Arrival {
        Arrival {
            at,
            hook: Some(hook),
            id: format!("run_{hook}_{key}_{version}"),
            body: serde_json::to_vec(&json!({"data": {"payload": {
                "key": key_name(key), "environments": {"prod": version}}}}))
            .unwrap(),
        }
    }

    #[test]
    fn analysis_matches_deliveries_with_changes() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let warm = [outcome(0, 1, t0 - ms(100), 2)];
        let measured = [outcome(0, 2, t0, 2), outcome(1, 1, t0 + ms(1), 2)];
        let t1 = t0 + ms(3);
        let arrivals = [
            arrival(0, 0, 1, t0 - ms(90)),
            arrival(1, 0, 1, t0 - ms(90)),
            arrival(0, 0, 2, t0 + ms(3)),
            arrival(1, 0, 2, t0 + ms(4)),
            arrival(0, 1, 1, t0 + ms(10)),
            arrival(1, 1, 1, t0 + ms(10)),
        ];
        let analysis = analyze(&warm, &measured, &arrivals, 2, t0, t1);
        assert!(analysis.check.clean(), "{:?}", analysis.check);
        assert_eq!(analysis.check.expected, 6);
        assert_eq!(analysis.in_window, 1);
        // Two measured changes, all delivered 10 ms after t0.
        let e2e = analysis.e2e_changes_per_sec.unwrap();
        assert!((e2e - 200.0).abs() < 1.0, "{e2e}");
        let latency = analysis.latency_from_answer.unwrap();
        assert_eq!(latency.count, 4);
        // (0,2) answered at +2 ms, delivered at +3 and +4; (1,1) answered at +3, delivered +10.
        assert!((latency.max - 7.0).abs() < 1e-6);
        assert!((analysis.latency_from_start.unwrap().max - 9.0).abs() < 1e-6);

        // One delivery missing: no end-to-end rate, one missing.
        let analysis = analyze(&warm, &measured, &arrivals[..5], 2, t0, t1);
        assert_eq!(analysis.check.missing, 1);
        assert!(analysis.e2e_changes_per_sec.is_none());
    }

    #[test]
    fn scenario_json_has_status_and_metrics() {
        let mut result = ScenarioResult::new("secrets-1", Some(Backend::Sqlite));
        result.metric("writesPerSec", json!(12.5));
        result.incomplete("3 deliveries missing".into());
        result.incomplete("1 duplicated".into());
        let json = result.to_json();
        assert_eq!(json["backend"], "sqlite");
        assert_eq!(json["status"], "incomplete");
        assert_eq!(json["reason"], "3 deliveries missing; 1 duplicated");
        assert_eq!(json["metrics"]["writesPerSec"], 12.5);
        let skipped = ScenarioResult::not_run(
            "latency-80pct",
            Some(Backend::Postgres),
            Status::Skipped("needs secrets-1".into()),
        );
        assert_eq!(skipped.to_json()["status"], "skipped");
        assert_eq!(skipped.rows[0].display, "skipped: needs secrets-1");
    }
}
