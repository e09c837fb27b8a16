//! `cargo xtask bench`: the release `keywire` against a local webhook sink, every load bounded
//! in time, on SQLite and PostgreSQL; an aligned table on standard output and
//! `target/bench/<timestamp>.json` + `target/bench/latest.json`. How to read it:
//! `docs/benchmarks.md`.
//!
//! `cargo xtask` runs a debug build; a debug load generator would measure itself. So the debug
//! xtask builds `keywire` and `xtask` in release (`cargo build --release --bin keywire --bin
//! xtask`) and hands over to `target/release/xtask bench …`, which does the work.

mod check;
mod infra;
mod keywire;
mod load;
mod postgres;
mod report;
mod scenarios;
mod sink;
mod stats;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::{Map, Value, json};

use scenarios::{Backend, Bench, Plan, Scenario, ScenarioResult, Status};

/// Set by the debug xtask when it hands over to the release one (the build is done).
const HANDED_OVER: &str = "KEYWIRE_BENCH_RELEASE";

const USAGE: &str = "usage: cargo xtask bench [--quick] [--backend sqlite|postgres] [--only <scenario>[,<scenario>...]] [--list]

  --quick      short windows and fewer scenarios (baseline, secrets-1, secrets-10, latency-100)
  --backend    one backend only (default: both; PostgreSQL from KEYWIRE_BENCH_DATABASE_URL or a
               throwaway cluster, skipped with a note when neither is available)
  --only       these scenarios (a name, or a prefix: `secrets` = secrets-1, -10, -100); the
               scenarios they need are added (the baseline for ratios, secrets-1 for latency-80pct)
  --list       list the scenarios and exit

Every KEYWIRE_* variable in the environment (but KEYWIRE_BENCH_* and KEYWIRE_TEST_*) is passed to
the server: `KEYWIRE_WORKERS=16 cargo xtask bench --quick`. See docs/benchmarks.md.";

/// The command line, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Options {
    quick: bool,
    backends: Vec<Backend>,
    only: Option<Vec<String>>,
    list: bool,
    help: bool,
}

impl Options {
    fn parse(args: &[&str]) -> Result<Options, String> {
        let mut options = Options {
            quick: false,
            backends: vec![Backend::Sqlite, Backend::Postgres],
            only: None,
            list: false,
            help: false,
        };
        let mut args = args.iter().flat_map(|a| match a.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => vec![flag, value],
            _ => vec![*a],
        });
        while let Some(arg) = args.next() {
            match arg {
                "--quick" => options.quick = true,
                "--list" => options.list = true,
                "--help" | "-h" => options.help = true,
                "--backend" => {
                    options.backends = match args.next() {
                        Some("sqlite") => vec![Backend::Sqlite],
                        Some("postgres" | "postgresql" | "pg") => vec![Backend::Postgres],
                        other => {
                            return Err(format!(
                                "--backend takes sqlite or postgres, not {}\n{USAGE}",
                                other.unwrap_or("nothing")
                            ));
                        }
                    }
                }
                "--only" => {
                    let value = args
                        .next()
                        .ok_or_else(|| format!("--only needs a scenario\n{USAGE}"))?;
                    options.only.get_or_insert_with(Vec::new).extend(
                        value
                            .split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned),
                    );
                }
                other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
            }
        }
        Ok(options)
    }
}

/// The scenarios to run, in the full bench's order: `--quick`'s or all, or those `only`
/// names (exactly or by prefix), plus what they need.
fn select(quick: bool, only: Option<&[String]>) -> Result<Vec<Scenario>, String> {
    let all = Scenario::all();
    let mut chosen: Vec<Scenario> = match only {
        None if quick => Scenario::quick(),
        None => all.clone(),
        Some(patterns) => {
            let mut chosen = Vec::new();
            for pattern in patterns {
                let matching: Vec<Scenario> = all
                    .iter()
                    .copied()
                    .filter(|s| {
                        let name = s.name();
                        name == *pattern || name.starts_with(&format!("{pattern}-"))
                    })
                    .collect();
                if matching.is_empty() {
                    let names: Vec<String> = all.iter().map(|s| s.name()).collect();
                    return Err(format!(
                        "no scenario `{pattern}`; there are: {}",
                        names.join(", ")
                    ));
                }
                chosen.extend(matching);
            }
            chosen
        }
    };
    // What they need, transitively.
    let mut i = 0;
    while i < chosen.len() {
        for need in chosen[i].needs() {
            if !chosen.contains(&need) {
                chosen.push(need);
            }
        }
        i += 1;
    }
    Ok(all.into_iter().filter(|s| chosen.contains(s)).collect())
}

fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

/// Runs `cargo build --release` for `bins`.
fn build(root: &Path, bins: &[&str]) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command.args(["build", "--release"]).current_dir(root);
    for bin in bins {
        command.args(["--bin", bin]);
    }
    eprintln!(
        "bench: cargo build --release --bin {}",
        bins.join(" --bin ")
    );
    let started = Instant::now();
    let status = command
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("the release build failed ({status})"));
    }
    eprintln!(
        "bench: release build done in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `cargo xtask bench …`.
pub fn run(root: &Path, args: &[&str]) -> Result<Vec<String>, String> {
    let options = Options::parse(args)?;
    if options.help {
        return Ok(USAGE.lines().map(str::to_owned).collect());
    }
    let scenarios = select(options.quick, options.only.as_deref())?;
    if options.list {
        return Ok(Scenario::all()
            .into_iter()
            .map(|s| {
                let quick = if Scenario::quick().contains(&s) {
                    "  (quick)"
                } else {
                    ""
                };
                format!("{}{quick}", s.name())
            })
            .collect());
    }
    if std::env::var_os(HANDED_OVER).is_none() {
        if cfg!(debug_assertions) {
            build(root, &["keywire", "xtask"])?;
            let status = Command::new(target_dir(root).join("release").join("xtask"))
                .arg("bench")
                .args(args)
                .env(HANDED_OVER, "1")
                .status()
                .map_err(|e| format!("cannot run the release xtask: {e}"))?;
            return if status.success() {
                Ok(Vec::new())
            } else {
                Err(format!("the bench failed ({status})"))
            };
        }
        build(root, &["keywire"])?;
    }
    drive(root, &options, scenarios)
}

fn command_output(program: &str, args: &[&str], dir: &Path) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// What the JSON says about where and on what it ran.
fn environment(root: &Path) -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        });
    json!({
        "git": {
            "commit": command_output("git", &["rev-parse", "HEAD"], root),
            "dirty": command_output("git", &["status", "--porcelain", "--untracked-files=no"], root)
                .map(|s| !s.is_empty()),
        },
        "machine": {
            "cpus": std::thread::available_parallelism().map(usize::from).ok(),
            "cpu": cpu,
            "kernel": command_output("uname", &["-r"], root),
        },
    })
}

fn drive(root: &Path, options: &Options, scenarios: Vec<Scenario>) -> Result<Vec<String>, String> {
    let started_at = chrono::Utc::now();
    let clock = Instant::now();
    let plan = if options.quick {
        Plan::quick()
    } else {
        Plan::full()
    };
    let plan_json = plan.to_json();
    let target = target_dir(root);
    let binary = keywire::binary(&target);
    if !binary.exists() {
        return Err(format!("{} is missing: build it first", binary.display()));
    }
    let needs_backend = scenarios.iter().any(|s| *s != Scenario::Baseline);
    let mut postgres_note = Value::Null;
    let postgres = if needs_backend && options.backends.contains(&Backend::Postgres) {
        match postgres::Postgres::find() {
            Ok(pg) => {
                eprintln!("bench: PostgreSQL is {}", pg.description);
                postgres_note = json!(pg.description);
                Some(pg)
            }
            Err(why) => {
                eprintln!("bench: {why}");
                postgres_note = json!(why);
                None
            }
        }
    } else {
        None
    };
    let postgres_skipped = postgres.is_none().then(|| postgres_note.clone());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("no tokio runtime: {e}"))?;
    let results = runtime.block_on(async {
        let mut bench = Bench::new(plan, binary, postgres)?;
        let mut results: Vec<ScenarioResult> = Vec::new();
        if scenarios.contains(&Scenario::Baseline) {
            results.push(bench.run(Scenario::Baseline, Backend::Sqlite).await);
        }
        for &backend in &options.backends {
            if !needs_backend {
                break;
            }
            if backend == Backend::Postgres
                && let Some(why) = &postgres_skipped
            {
                results.push(ScenarioResult::skipped(
                    "postgres",
                    Some(backend),
                    why.as_str().unwrap_or("unavailable"),
                ));
                continue;
            }
            for &scenario in scenarios.iter().filter(|s| **s != Scenario::Baseline) {
                results.push(bench.run(scenario, backend).await);
            }
            results.extend(bench.growth(backend));
        }
        Ok::<_, String>(results)
    })?;

    let rows: Vec<report::Row> = results.iter().flat_map(|r| r.rows.clone()).collect();
    let finished_at = chrono::Utc::now();
    let wall = clock.elapsed().as_secs_f64();
    let mut meta = Map::new();
    meta.insert("tool".into(), json!("cargo xtask bench"));
    meta.insert(
        "startedAt".into(),
        json!(started_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
    );
    meta.insert(
        "finishedAt".into(),
        json!(finished_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
    );
    meta.insert("wallSeconds".into(), json!(stats::round3(wall)));
    meta.insert(
        "backends".into(),
        json!(
            options
                .backends
                .iter()
                .map(|b| b.name())
                .collect::<Vec<_>>()
        ),
    );
    meta.insert("plan".into(), plan_json);
    meta.insert("postgres".into(), postgres_note);
    meta.insert(
        "serverEnv".into(),
        Value::Object(keywire::server_env_for_report()),
    );
    if let Value::Object(env) = environment(root) {
        meta.extend(env);
    }
    let document = report::document(
        meta,
        results.iter().map(ScenarioResult::to_json).collect(),
        &rows,
    );
    let dir = target.join("bench");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let text = serde_json::to_string_pretty(&document).expect("JSON serializes");
    let file = dir.join(format!("{}.json", started_at.format("%Y%m%dT%H%M%SZ")));
    for path in [&file, &dir.join("latest.json")] {
        std::fs::write(path, &text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }

    let mut lines = report::table(&rows);
    lines.push(String::new());
    for result in &results {
        match result.status() {
            Status::Incomplete(why) => lines.push(format!(
                "INCOMPLETE {} {}: {why}",
                result.name,
                result.backend.map_or("", Backend::name)
            )),
            Status::Failed(why) => lines.push(format!(
                "FAILED {} {}: {why}",
                result.name,
                result.backend.map_or("", Backend::name)
            )),
            Status::Ok | Status::Skipped(_) => {}
        }
    }
    lines.push(
        "Targets are the goals of issue 10, printed for comparison and never asserted; \
         \"vs baseline\" = deliveries/s ÷ the generator posting straight to the sink."
            .into(),
    );
    lines.push(format!(
        "{} bench, {:.0} s; JSON: {} (and latest.json)",
        if options.quick { "quick" } else { "full" },
        wall,
        file.strip_prefix(root).unwrap_or(&file).display()
    ));
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(scenarios: &[Scenario]) -> Vec<String> {
        scenarios.iter().map(|s| s.name()).collect()
    }

    #[test]
    fn options_parse() {
        let options = Options::parse(&[
            "--quick",
            "--backend=postgres",
            "--only",
            "a,b",
            "--only",
            "c",
        ])
        .unwrap();
        assert!(options.quick);
        assert_eq!(options.backends, vec![Backend::Postgres]);
        assert_eq!(options.only.unwrap(), vec!["a", "b", "c"]);
        assert!(Options::parse(&["--backend", "oracle"]).is_err());
        assert!(Options::parse(&["--only"]).is_err());
        assert!(Options::parse(&["--fast"]).is_err());
        let default = Options::parse(&[]).unwrap();
        assert!(!default.quick && default.only.is_none());
        assert_eq!(default.backends.len(), 2);
    }

    #[test]
    fn selection_adds_what_a_scenario_needs() {
        assert_eq!(
            names(&select(true, None).unwrap()),
            ["baseline", "secrets-1", "secrets-10", "latency-100"]
        );
        assert_eq!(select(false, None).unwrap(), Scenario::all());
        // A prefix, and the baseline the ratios need, in the bench's order.
        assert_eq!(
            names(&select(false, Some(&["events".into()])).unwrap()),
            ["baseline", "events-1", "events-10", "events-100"]
        );
        // latency-80pct needs secrets-1, which needs the baseline.
        assert_eq!(
            names(&select(true, Some(&["latency-80pct".into()])).unwrap()),
            ["baseline", "secrets-1", "latency-80pct"]
        );
        assert_eq!(
            names(&select(false, Some(&["infra-sync".into()])).unwrap()),
            ["infra-sync"]
        );
        assert!(select(false, Some(&["nope".into()])).is_err());
        // `secrets-1` is a name, not a prefix of secrets-10.
        assert_eq!(
            names(&select(false, Some(&["secrets-1".into()])).unwrap()),
            ["baseline", "secrets-1"]
        );
    }
}
