//! `keywire run`: an environment's values in a command's environment.
//!
//! The values are fetched, then the process becomes the command (Unix `exec`), so the command's
//! standard output is the only one and its exit code is the exit code. Nothing is printed on
//! standard output, no value anywhere. `KEYWIRE_TOKEN` is removed from the command's
//! environment: the program being run gets its secrets, not keywire's key to all of them.

use std::collections::BTreeMap;
use std::ffi::OsString;

use crate::cli::RunArgs;
use crate::client::Api;
use crate::error::Error;
use crate::profile::resolve;

/// `keywire run`.
pub(crate) fn main(args: RunArgs) -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::failed(format!("cannot start the runtime: {e}")))?;
    let values = runtime.block_on(fetch(&args))?;
    drop(runtime);
    exec(&args.command, values)
}

/// The values of one environment: variables, then secrets (a secret wins over a variable of
/// the same key).
async fn fetch(args: &RunArgs) -> Result<BTreeMap<String, String>, Error> {
    let api = Api::new(resolve(&args.global)?)?;
    // A clear 404 for a mistyped environment, before any value is fetched.
    api.get(
        &["projects", &args.project, "environments", &args.environment],
        &[],
    )
    .await?;
    let mut values = BTreeMap::new();
    let reveal = [("reveal", "true".to_owned())];
    if !args.only_secrets {
        for entry in api
            .list(&["projects", &args.project, "variables"], &reveal, None)
            .await?
        {
            if let (Some(key), Some(value)) = (
                entry["key"].as_str(),
                entry["environments"][&args.environment]["value"].as_str(),
            ) {
                values.insert(key.to_owned(), value.to_owned());
            }
        }
    }
    if !args.only_variables {
        for entry in api
            .list(&["projects", &args.project, "secrets"], &reveal, None)
            .await?
        {
            if let (Some(key), Some(value)) = (
                entry["key"].as_str(),
                entry["environments"][&args.environment]["value"].as_str(),
            ) && values.insert(key.to_owned(), value.to_owned()).is_some()
            {
                eprintln!(
                    "warning: `{key}` is both a variable and a secret; the secret's value is used"
                );
            }
        }
    }
    Ok(values)
}

fn exec(command: &[OsString], values: BTreeMap<String, String>) -> Result<(), Error> {
    let (program, rest) = command
        .split_first()
        .ok_or_else(|| Error::usage("give a command after --"))?;
    let mut child = std::process::Command::new(program);
    child.args(rest).env_remove("KEYWIRE_TOKEN").envs(values);
    let cannot = |err: std::io::Error| {
        let code = match err.kind() {
            std::io::ErrorKind::NotFound => 127,
            std::io::ErrorKind::PermissionDenied => 126,
            _ => crate::exit::FAILURE,
        };
        Error::new(
            code,
            format!("cannot run `{}`: {err}", program.to_string_lossy()),
        )
    };
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // Only returns when the exec failed.
        Err(cannot(child.exec()))
    }
    #[cfg(not(unix))]
    {
        let status = child.status().map_err(cannot)?;
        std::process::exit(status.code().unwrap_or(crate::exit::FAILURE));
    }
}
