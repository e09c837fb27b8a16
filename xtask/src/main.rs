//! Project automation, run as `cargo xtask <command>`:
//!
//! - `codegen [--check]`: regenerates the files derived from the workspace: the server's
//!   integration linking list and its dependency block, then (through `keywire docs`) the pages
//!   `docs/integrations/<type>.md` and the integration table in README.md. `--check` changes
//!   nothing and fails when a file is stale.
//! - `scaffold <name> --category communication|infrastructure`: a new integration crate
//!   `crates/keywire-integration-<name>` that registers itself; then runs codegen. Never
//!   overwrites.

mod codegen;
mod scaffold;
mod tidy;

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask codegen [--check]
       cargo xtask scaffold <name> --category communication|infrastructure";

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
