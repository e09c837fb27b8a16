//! `cargo xtask fuzz [--seconds N] [target]`: coverage-guided fuzzing with libFuzzer on stable
//! Rust (docs/fuzzing.md).
//!
//! Builds the binaries of `fuzz/` (feature `libfuzzer`) with the instrumentation cargo-fuzz asks
//! rustc for — SanitizerCoverage's inline 8-bit counters, PC table and comparison tracing, no
//! sanitizer, which is what needs nightly — into `target/fuzz`, for the host triple so build
//! scripts and proc macros stay uninstrumented. Then runs each target for `N` seconds (60 by
//! default) over its committed corpus (`fuzz/corpus/<target>`, one per integration type for
//! `metadata`), merges the inputs that add coverage back into it, and fails when a target
//! crashes, naming the input libFuzzer saved under `target/fuzz/artifacts/`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// What rustc needs for libFuzzer's coverage feedback (cargo-fuzz's flags, less the sanitizer),
/// with debug assertions and overflow checks so that arithmetic bugs crash.
const RUSTFLAGS: &[&str] = &[
    "-Cpasses=sancov-module",
    "-Cllvm-args=-sanitizer-coverage-level=4",
    "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters",
    "-Cllvm-args=-sanitizer-coverage-pc-table",
    "-Cllvm-args=-sanitizer-coverage-trace-compares",
    "--cfg",
    "fuzzing",
    "-Cdebug-assertions",
    "-Coverflow-checks",
];

/// The fuzz binaries besides `metadata`, which runs once per integration type.
const OTHER_TARGETS: &[&str] = &["event_payload", "webhook_envelope"];

/// One bounded run: its name, binary, corpus and the type it fuzzes (metadata only).
struct Job {
    name: String,
    binary: &'static str,
    corpus: PathBuf,
    integration_type: Option<String>,
}

/// What a run reported.
struct Outcome {
    executions: u64,
    coverage: String,
    crash: Option<String>,
}

fn usage() -> String {
    "usage: cargo xtask fuzz [--seconds N] [metadata[:<type>] | event_payload | webhook_envelope]"
        .to_owned()
}

/// The integration type ids, from the crates' folder names (crate
/// `keywire-integration-<name>` registers type `<name>` with `_` for `-`, a tested invariant).
fn integration_types(root: &Path) -> Result<Vec<String>, String> {
    Ok(crate::codegen::integration_crates(root)?
        .iter()
        .filter_map(|c| c.strip_prefix("keywire-integration-"))
        .map(|name| name.replace('-', "_"))
        .collect())
}

fn jobs(root: &Path, only: Option<&str>) -> Result<Vec<Job>, String> {
    let corpus = root.join("fuzz/corpus");
    let mut all = Vec::new();
    for type_id in integration_types(root)? {
        all.push(Job {
            name: format!("metadata:{type_id}"),
            binary: "metadata",
            corpus: corpus.join("metadata").join(&type_id),
            integration_type: Some(type_id),
        });
    }
    for target in OTHER_TARGETS {
        all.push(Job {
            name: (*target).to_owned(),
            binary: target,
            corpus: corpus.join(target),
            integration_type: None,
        });
    }
    let Some(only) = only else {
        return Ok(all);
    };
    let chosen: Vec<Job> = all
        .into_iter()
        .filter(|j| j.name == only || j.binary == only)
        .collect();
    if chosen.is_empty() {
        return Err(format!("no fuzz target `{only}`\n{}", usage()));
    }
    Ok(chosen)
}

fn host_triple() -> Result<String, String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc)
        .arg("-vV")
        .output()
        .map_err(|e| format!("cannot run rustc -vV: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .ok_or_else(|| "rustc -vV names no host".to_owned())
}

/// Builds the instrumented binaries; returns their folder.
fn build(root: &Path, binaries: &[&str]) -> Result<PathBuf, String> {
    let host = host_triple()?;
    let target_dir = root.join("target/fuzz");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args(["build", "--release", "--target", &host])
        .args(["-p", "keywire-fuzz", "--features", "libfuzzer"])
        // Fuzzing wants many executions more than the fastest code: opt-level 1 builds in
        // about half the time of 3. The AWS SDK, the largest crate by far, runs in no target
        // (they make no calls): unoptimised, it builds in two thirds of the time.
        .args(["--config", "profile.release.opt-level=1"])
        .args([
            "--config",
            "profile.release.package.aws-sdk-lambda.opt-level=0",
        ])
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("RUSTFLAGS", RUSTFLAGS.join(" "))
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .current_dir(root);
    for binary in binaries {
        command.args(["--bin", binary]);
    }
    let status = command
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("building the fuzz targets failed".into());
    }
    Ok(target_dir.join(host).join("release"))
}

/// The number after `prefix` on the line that holds it.
fn stat(output: &str, prefix: &str) -> Option<u64> {
    output
        .lines()
        .find_map(|l| l.trim().strip_prefix(prefix))
        .and_then(|rest| rest.trim().parse().ok())
}

/// Files in a folder and their total size.
fn corpus_size(dir: &Path) -> (usize, u64) {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok())
        .filter(std::fs::Metadata::is_file)
        .fold((0, 0), |(n, bytes), m| (n + 1, bytes + m.len()))
}

fn libfuzzer(binary: &Path, job: &Job) -> Command {
    let mut command = Command::new(binary);
    if let Some(type_id) = &job.integration_type {
        command.env("KEYWIRE_FUZZ_TYPE", type_id);
    }
    command.stdin(Stdio::null());
    command
}

/// One bounded run, then the merge of what it found into the corpus.
fn fuzz(root: &Path, bin_dir: &Path, job: &Job, seconds: u64) -> Result<Outcome, String> {
    let binary = bin_dir.join(job.binary);
    let label = job.name.replace(':', "-");
    let found = root.join("target/fuzz/found").join(&label);
    let artifacts = root.join("target/fuzz/artifacts").join(&label);
    if found.exists() {
        std::fs::remove_dir_all(&found).map_err(|e| format!("{}: {e}", found.display()))?;
    }
    for dir in [&found, &artifacts, &job.corpus] {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let output = libfuzzer(&binary, job)
        .arg(format!("-max_total_time={seconds}"))
        .arg("-print_final_stats=1")
        .arg("-timeout=10")
        .arg("-rss_limit_mb=2048")
        .arg("-max_len=4096")
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg(&found)
        .arg(&job.corpus)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    let log = String::from_utf8_lossy(&output.stderr).into_owned();
    let executions = stat(&log, "stat::number_of_executed_units:").unwrap_or(0);
    let coverage = log
        .lines()
        .rev()
        .find(|l| l.contains(" cov: "))
        .and_then(|l| l.split(" cov: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or("?")
        .to_owned();
    if !output.status.success() {
        let artifact = log
            .lines()
            .find_map(|l| l.split("Test unit written to ").nth(1))
            .map_or_else(|| "(no input saved)".to_owned(), str::to_owned);
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        eprintln!("--- {} crashed:\n{}", job.name, tail.join("\n"));
        return Ok(Outcome {
            executions,
            coverage,
            crash: Some(artifact),
        });
    }
    // Keep only what adds coverage: libFuzzer's merge copies into the corpus a small set of the
    // new inputs (greedy set cover) that reaches the code they reached (edges, not hit counts,
    // which would keep hundreds of near-duplicates).
    let merged = libfuzzer(&binary, job)
        .arg("-set_cover_merge=1")
        .arg("-use_counters=0")
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg(&job.corpus)
        .arg(&found)
        .output()
        .map_err(|e| format!("cannot run {} -set_cover_merge=1: {e}", binary.display()))?;
    if !merged.status.success() {
        return Err(format!(
            "{}: merging the new inputs failed:\n{}",
            job.name,
            String::from_utf8_lossy(&merged.stderr)
        ));
    }
    Ok(Outcome {
        executions,
        coverage,
        crash: None,
    })
}

/// Runs `cargo xtask fuzz` with its arguments (after `fuzz`); prints a line per target as it
/// goes and returns the closing line.
#[expect(
    clippy::print_stdout,
    reason = "progress of a long command, one line per target"
)]
pub fn run(root: &Path, args: &[&str]) -> Result<Vec<String>, String> {
    let mut seconds = 60;
    let mut only = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match *arg {
            "--seconds" => {
                seconds = rest
                    .next()
                    .and_then(|n| n.parse::<u64>().ok())
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("--seconds takes a positive number\n{}", usage()))?;
            }
            "-h" | "--help" => return Err(usage()),
            target if only.is_none() && !target.starts_with('-') => only = Some(target),
            other => return Err(format!("unexpected `{other}`\n{}", usage())),
        }
    }
    let jobs = jobs(root, only)?;
    let mut binaries: Vec<&str> = jobs.iter().map(|j| j.binary).collect();
    binaries.dedup();
    let started = Instant::now();
    let bin_dir = build(root, &binaries)?;
    println!(
        "built {} in {:.0} s",
        binaries.join(", "),
        started.elapsed().as_secs_f64()
    );
    let mut crashes = Vec::new();
    for job in &jobs {
        let (files_before, _) = corpus_size(&job.corpus);
        let outcome = fuzz(root, &bin_dir, job, seconds)?;
        let (files, bytes) = corpus_size(&job.corpus);
        let line = format!(
            "{:<28} {:>10} executions in {seconds} s, coverage {:>5}, corpus {files_before} → {files} inputs ({bytes} bytes), {}",
            job.name,
            outcome.executions,
            outcome.coverage,
            match &outcome.crash {
                Some(artifact) => format!("CRASH: {artifact}"),
                None => "no crash".to_owned(),
            }
        );
        println!("{line}");
        if let Some(artifact) = outcome.crash {
            crashes.push(format!("{}: {artifact}", job.name));
        }
    }
    if crashes.is_empty() {
        Ok(vec![format!(
            "fuzzing took {:.0} s; no crash",
            started.elapsed().as_secs_f64()
        )])
    } else {
        Err(format!(
            "{} target(s) crashed; reproduce with the saved input (docs/fuzzing.md):\n{}",
            crashes.len(),
            crashes.join("\n")
        ))
    }
}
