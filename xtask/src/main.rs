//! Project automation, run as `cargo xtask <command>`:
//!
//! - `codegen [--check]`: regenerates the files derived from the workspace: the server's
//!   integration linking list and its dependency block, then (through `keywire docs`) the pages
//!   `docs/integrations/<type>.md` and the integration table in README.md. `--check` changes
//!   nothing and fails when a file is stale.
//! - `scaffold <name> --category communication|infrastructure`: a new integration crate
//!   `crates/keywire-integration-<name>` that registers itself; then runs codegen. Never
//!   overwrites.
//! - `bench [--quick] [--backend …] [--only …]`: the release server against a local webhook sink
//!   (see `docs/benchmarks.md`).
//! - `fuzz [--seconds N] [target]`: builds the libFuzzer targets of `fuzz/` with coverage
//!   instrumentation, runs each for N seconds on its corpus and merges what it finds (see
//!   `docs/fuzzing.md`).

mod bench;
mod codegen;
mod fuzz;
mod scaffold;
mod tidy;

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask codegen [--check]
       cargo xtask scaffold <name> --category communication|infrastructure
       cargo xtask bench [--quick] [--backend sqlite|postgres] [--only <scenario>] [--list]
       cargo xtask fuzz [--seconds N] [metadata[:<type>] | event_payload | webhook_envelope]";

/// The workspace root (xtask lives one level below it).
fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask has a parent")
        .to_owned()
}

#[expect(
    clippy::print_stdout,
    reason = "a command-line tool reports on standard output"
)]
fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["codegen"] => codegen::run_all(&workspace_root(), codegen::Mode::Write),
        ["codegen", "--check"] => codegen::run_all(&workspace_root(), codegen::Mode::Check),
        ["scaffold", name, "--category", category] | ["scaffold", "--category", category, name] => {
            scaffold::Category::parse(category)
                .and_then(|category| scaffold::run(&workspace_root(), name, category))
        }
        ["bench", rest @ ..] => bench::run(&workspace_root(), rest),
        ["fuzz", rest @ ..] => fuzz::run(&workspace_root(), rest),
        _ => Err(USAGE.to_owned()),
    };
    match result {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}
