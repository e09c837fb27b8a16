//! The commands, one module per area, and what they share.

mod account;
mod entries;
mod events;
mod integrations;
mod resources;
pub(crate) mod run;

use std::io::Read;

use serde_json::Value;

use crate::cli::{Command, CompletionsArgs, Global};
use crate::client::Api;
use crate::error::Error;
use crate::output::{Out, stdin_is_terminal};
use crate::profile;

/// What a command that talks to a server has: the client and where to print.
pub(crate) struct Ctx {
    pub(crate) api: Api,
    pub(crate) out: Out,
}

impl Ctx {
    pub(crate) fn new(global: &Global) -> Result<Ctx, Error> {
        let out = Out::new(global.output);
        let api = Api::new(profile::resolve(global)?)?;
        Ok(Ctx { api, out })
    }
}

/// Runs every command but `run` and `completions` (see [`crate::run`]).
pub(crate) async fn dispatch(command: Command) -> Result<(), Error> {
    match command {
        Command::Login(args) => account::login(args).await,
        Command::Logout(args) => account::logout(args).await,
        Command::Whoami(args) => account::whoami(&Ctx::new(&args.global)?).await,
        Command::Profile(args) => account::profile(args),
        Command::Workspace(args) => {
            resources::workspace(&Ctx::new(&args.global)?, args.action).await
        }
        Command::Project(args) => resources::project(&Ctx::new(&args.global)?, args.action).await,
        Command::Environment(args) => {
            resources::environment(&Ctx::new(&args.global)?, args.action).await
        }
        Command::Secret(args) => {
            entries::main(&Ctx::new(&args.global)?, entries::Kind::Secret, args.action).await
        }
        Command::Variable(args) => {
            entries::main(
                &Ctx::new(&args.global)?,
                entries::Kind::Variable,
                args.action,
            )
            .await
        }
        Command::Event(args) => events::main(&Ctx::new(&args.global)?, args.action).await,
        Command::Integration(args) => {
            integrations::main(&Ctx::new(&args.global)?, args.action).await
        }
        // Both run outside the runtime (see `crate::run`): `run` replaces the process.
        Command::Run(_) | Command::Completions(_) => Err(Error::failed(
            "`run` and `completions` are not dispatched here",
        )),
    }
}

/// `keywire completions <shell>`.
pub(crate) fn completions(args: &CompletionsArgs, mut cli: clap::Command) {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cli, "keywire", &mut script);
    crate::output::print(&String::from_utf8_lossy(&script));
}

/// Asks before deleting: `--yes`, or the slug typed on a terminal. Without a terminal and
/// without `--yes`, refuses (exit code 2).
pub(crate) fn confirm(what: &str, slug: &str, yes: bool) -> Result<(), Error> {
    if yes {
        return Ok(());
    }
    if !stdin_is_terminal() {
        return Err(Error::usage(format!(
            "refusing to delete {what} without --yes (standard input is not a terminal)"
        )));
    }
    eprint!("Delete {what}? Type `{slug}` to confirm: ");
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| Error::failed(format!("cannot read the answer: {e}")))?;
    if line.trim() == slug {
        Ok(())
    } else {
        Err(Error::failed(format!("{what} was not deleted")))
    }
}

/// A value that must not be echoed: a hidden prompt on a terminal, else all of standard input
/// without one trailing line break.
pub(crate) fn read_hidden(prompt: &str) -> Result<String, Error> {
    if stdin_is_terminal() {
        return rpassword::prompt_password(prompt)
            .map_err(|e| Error::failed(format!("cannot read from the terminal: {e}")));
    }
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| Error::failed(format!("cannot read standard input: {e}")))?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(text)
}

/// A file's text, or standard input's for `-`.
pub(crate) fn read_input(path: &std::path::Path) -> Result<String, Error> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Error::failed(format!("cannot read standard input: {e}")))?;
        return Ok(text);
    }
    std::fs::read_to_string(path)
        .map_err(|e| Error::usage(format!("cannot read {}: {e}", path.display())))
}

/// A JSON string field, or "".
pub(crate) fn s(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Strings of a JSON array, joined.
pub(crate) fn joined(value: &Value, separator: &str) -> String {
    value
        .as_array()
        .map(|items| items.iter().map(s).collect::<Vec<_>>().join(separator))
        .unwrap_or_default()
}

/// `{"deleted": <what>, "slug": <slug>}`, the JSON answer of delete commands.
pub(crate) fn deleted(ctx: &Ctx, what: &str, slug: &str, human: &str) {
    if ctx.out.json() {
        ctx.out
            .value(&serde_json::json!({"deleted": what, "slug": slug}));
    } else {
        ctx.out.line(human);
    }
}
