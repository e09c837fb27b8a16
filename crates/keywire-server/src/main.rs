//! The `keywire` binary: `keywire serve` (the default command) runs the API server.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = keywire_server::config::Cli::parse();
    match keywire_server::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            // The chain names the cause (a data directory that cannot be written, a database
            // that cannot be reached) without any credential: every error here is built from
            // redacted values.
            eprintln!("keywire: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
