#![doc = include_str!("../README.md")]

mod cli;
mod client;
mod commands;
mod dotenv;
mod error;
mod output;
mod profile;
mod time;

pub use cli::Command;
pub use cli::{
    CompletionsArgs, EntryCmd, EnvironmentCmd, EventCmd, Format, Global, IntegrationCmd, LoginArgs,
    LogoutArgs, ProfileCmd, ProjectCmd, RunArgs, WhoamiArgs, WorkspaceCmd,
};

/// The exit codes of the client commands (documented in `docs/cli.md`).
pub mod exit {
    /// It worked.
    pub const OK: i32 = 0;
    /// It failed: an error of the server, a test delivery or run that failed, a validation
    /// with a failed check, a live check the provider refused (HTTP 422).
    pub const FAILURE: i32 = 1;
    /// The command line is wrong, or the server refused the input as invalid (HTTP 400, 413,
    /// 415). clap's own usage errors exit with 2 too.
    pub const USAGE: i32 = 2;
    /// Not found, or not visible to you (HTTP 404).
    pub const NOT_FOUND: i32 = 3;
    /// Not logged in, a token that does not work (HTTP 401), or not allowed (HTTP 403).
    pub const FORBIDDEN: i32 = 4;
    /// A conflict: the name is taken, the run has not failed, a concurrent change (HTTP 409).
    pub const CONFLICT: i32 = 5;
    /// The server cannot be reached, or is unavailable (HTTP 502, 503, 504).
    pub const UNAVAILABLE: i32 = 6;
}

/// Runs a client command and returns the process's exit code ([`exit`]). `cli` is the whole
/// command line definition of the binary, for `keywire completions`.
///
/// `keywire run` does not return on success on Unix: the process becomes the command.
pub fn run(command: Command, cli: clap::Command) -> i32 {
    match command {
        Command::Completions(args) => {
            commands::completions(&args, cli);
            exit::OK
        }
        Command::Run(args) => finish(commands::run::main(args)),
        other => {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(err) => {
                    return finish(Err(error::Error::failed(format!(
                        "cannot start the runtime: {err}"
                    ))));
                }
            };
            finish(runtime.block_on(commands::dispatch(other)))
        }
    }
}

fn finish(result: Result<(), error::Error>) -> i32 {
    match result {
        Ok(()) => exit::OK,
        Err(err) => {
            err.print();
            err.code
        }
    }
}
