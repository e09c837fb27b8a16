//! `secret` and `variable`: one implementation, two paths.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::{Ctx, confirm, deleted, read_hidden, read_input, s};
use crate::cli::EntryAction;
use crate::error::Error;
use crate::exit;
use crate::output::Table;
use crate::time::show_value;

/// Most keys one bulk request may carry (the server's limit).
const BULK: usize = 100;

/// Secrets or variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Secret,
    Variable,
}

impl Kind {
    fn path(self) -> &'static str {
        match self {
            Kind::Secret => "secrets",
            Kind::Variable => "variables",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Kind::Secret => "secret",
            Kind::Variable => "variable",
        }
    }

    /// Whether values are fetched: secrets when asked, variables always (they are not secret).
    fn reveal(self, asked: bool) -> bool {
        asked || self == Kind::Variable
    }
}

fn reveal_query(reveal: bool) -> Vec<(&'static str, String)> {
    if reveal {
        vec![("reveal", "true".to_owned())]
    } else {
        Vec::new()
    }
}

/// Keeps only `env` in an entry's `environments` (for `--env`).
fn only_env(mut entry: Value, env: Option<&str>) -> Value {
    if let (Some(env), Some(envs)) = (env, entry["environments"].as_object_mut()) {
        envs.retain(|k, _| k == env);
    }
    entry
}

fn versions(entry: &Value) -> String {
    entry["environments"]
        .as_object()
        .map(|envs| {
            envs.iter()
                .map(|(env, v)| format!("{env} v{}", s(&v["version"])))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// `keywire secret|variable ...`.
pub(crate) async fn main(ctx: &Ctx, kind: Kind, action: EntryAction) -> Result<(), Error> {
    match action {
        EntryAction::List {
            project,
            environment,
            reveal,
            limit,
        } => {
            let reveal = kind.reveal(reveal);
            let items = ctx
                .api
                .list(
                    &["projects", &project.project, kind.path()],
                    &reveal_query(reveal),
                    limit.limit,
                )
                .await?;
            let items: Vec<Value> = items
                .into_iter()
                .map(|e| only_env(e, environment.as_deref()))
                .filter(|e| {
                    environment.is_none()
                        || e["environments"].as_object().is_some_and(|m| !m.is_empty())
                })
                .collect();
            if ctx.out.json() {
                ctx.out.value(&json!(items));
                return Ok(());
            }
            let empty = format!("No {}.", kind.path());
            if reveal {
                let mut table = Table::new(&["KEY", "ENV", "VERSION", "VALUE", "UPDATED"]);
                for e in &items {
                    for (env, v) in e["environments"].as_object().into_iter().flatten() {
                        table.row(vec![
                            s(&e["key"]),
                            env.clone(),
                            s(&v["version"]),
                            s(&v["value"]),
                            show_value(&v["updatedAt"]),
                        ]);
                    }
                }
                ctx.out.table(&table, &empty);
            } else {
                let mut table = Table::new(&["KEY", "VERSIONS", "NOTE", "UPDATED"]);
                for e in &items {
                    table.row(vec![
                        s(&e["key"]),
                        versions(e),
                        s(&e["note"]),
                        show_value(&e["updatedAt"]),
                    ]);
                }
                ctx.out.table(&table, &empty);
            }
        }
        EntryAction::Set {
            key,
            project,
            env,
            dotenv,
            note,
        } => match (key, dotenv) {
            (Some(key), None) => set_one(ctx, kind, &project.project, &key, &env, note).await?,
            (None, Some(file)) => {
                set_dotenv(ctx, kind, &project.project, &file, &env, note).await?;
            }
            _ => {
                return Err(Error::usage(format!(
                    "give a KEY, or --dotenv FILE: keywire {} set KEY --env dev=VALUE",
                    kind.noun()
                )));
            }
        },
        EntryAction::Get {
            key,
            project,
            environment,
            reveal,
        } => {
            let reveal = kind.reveal(reveal);
            let entry = ctx
                .api
                .get(
                    &["projects", &project.project, kind.path(), &key],
                    &reveal_query(reveal),
                )
                .await?;
            let entry = only_env(entry, environment.as_deref());
            if let Some(env) = &environment
                && entry["environments"].get(env).is_none()
            {
                return Err(Error::new(
                    exit::NOT_FOUND,
                    format!("{} `{key}` has no value in `{env}`", kind.noun()),
                ));
            }
            if ctx.out.json() {
                ctx.out.value(&entry);
                return Ok(());
            }
            if let (true, Some(env)) = (reveal, &environment) {
                // The bare value, for `$(keywire secret get KEY --env prod --reveal)`.
                crate::output::print(&format!("{}\n", s(&entry["environments"][env]["value"])));
                return Ok(());
            }
            let mut headers = vec!["ENV", "VERSION", "UPDATED"];
            if reveal {
                headers.push("VALUE");
            }
            let mut table = Table::new(&headers);
            for (env, v) in entry["environments"].as_object().into_iter().flatten() {
                let mut row = vec![env.clone(), s(&v["version"]), show_value(&v["updatedAt"])];
                if reveal {
                    row.push(s(&v["value"]));
                }
                table.row(row);
            }
            if let Some(note) = entry["note"].as_str().filter(|n| !n.is_empty()) {
                ctx.out.line(&format!("{key}: {note}"));
            }
            ctx.out
                .table(&table, &format!("{} `{key}` has no values.", kind.noun()));
        }
        EntryAction::Delete {
            key,
            project,
            environment,
            confirm: c,
        } => {
            let what = match &environment {
                Some(env) => format!("the value of {} `{key}` in `{env}`", kind.noun()),
                None => format!("{} `{key}` in every environment", kind.noun()),
            };
            confirm(&what, &key, c.yes)?;
            let query: Vec<(&str, String)> = environment
                .iter()
                .map(|e| ("environment", e.clone()))
                .collect();
            ctx.api
                .delete(&["projects", &project.project, kind.path(), &key], &query)
                .await?;
            deleted(ctx, kind.noun(), &key, &format!("Deleted {what}."));
        }
        EntryAction::History {
            key,
            project,
            environment,
            reveal,
            limit,
        } => {
            let reveal = kind.reveal(reveal);
            let mut query = reveal_query(reveal);
            query.push(("environment", environment.clone()));
            let items = ctx
                .api
                .list(
                    &["projects", &project.project, kind.path(), &key, "versions"],
                    &query,
                    limit.limit,
                )
                .await?;
            if ctx.out.json() {
                ctx.out.value(&json!(items));
                return Ok(());
            }
            let mut headers = vec!["VERSION", "CREATED", "BY"];
            if reveal {
                headers.push("VALUE");
            }
            let mut table = Table::new(&headers);
            for v in &items {
                let mut row = vec![
                    s(&v["version"]),
                    show_value(&v["createdAt"]),
                    s(&v["createdBy"]),
                ];
                if reveal {
                    row.push(s(&v["value"]));
                }
                table.row(row);
            }
            ctx.out.table(&table, "No versions.");
        }
    }
    Ok(())
}

/// `--env dev=VALUE` and `--env dev` (value from standard input or a hidden prompt; read once
/// when not a terminal and used for every bare environment).
fn values(kind: Kind, key: &str, envs: &[String]) -> Result<Map<String, Value>, Error> {
    let mut values = Map::new();
    let mut piped: Option<String> = None;
    for spec in envs {
        let (env, value) = match spec.split_once('=') {
            Some((env, value)) => (env.trim().to_owned(), value.to_owned()),
            None => {
                let env = spec.trim().to_owned();
                let value = if crate::output::stdin_is_terminal() {
                    read_hidden(&format!("{} {key} in {env}: ", kind.noun()))?
                } else {
                    match &piped {
                        Some(v) => v.clone(),
                        None => {
                            let v = read_hidden("")?;
                            piped = Some(v.clone());
                            v
                        }
                    }
                };
                (env, value)
            }
        };
        if env.is_empty() {
            return Err(Error::usage(
                "--env needs an environment: --env dev=VALUE or --env dev",
            ));
        }
        values.insert(env, Value::String(value));
    }
    Ok(values)
}

async fn set_one(
    ctx: &Ctx,
    kind: Kind,
    project: &str,
    key: &str,
    envs: &[String],
    note: Option<String>,
) -> Result<(), Error> {
    let mut body = json!({"values": values(kind, key, envs)?});
    if let Some(note) = note {
        body["note"] = json!(note);
    }
    let answer = ctx
        .api
        .put(&["projects", project, kind.path(), key], &body)
        .await?;
    if ctx.out.json() {
        ctx.out.value(&answer.body);
    } else {
        let verb = if answer.status == 201 {
            "created"
        } else {
            "updated"
        };
        ctx.out.line(&format!(
            "{} `{key}` {verb}: {}",
            capitalized(kind.noun()),
            versions(&answer.body)
        ));
    }
    Ok(())
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

async fn set_dotenv(
    ctx: &Ctx,
    kind: Kind,
    project: &str,
    file: &std::path::Path,
    envs: &[String],
    note: Option<String>,
) -> Result<(), Error> {
    if let Some(bad) = envs.iter().find(|e| e.contains('=')) {
        let env = bad.split('=').next().unwrap_or_default();
        return Err(Error::usage(format!(
            "with --dotenv, name environments only: --env {env}"
        )));
    }
    let text = read_input(file)?;
    let pairs = crate::dotenv::parse(&text)
        .map_err(|why| Error::usage(format!("{}: {why}", file.display())))?;
    // The last line of a key wins, as when a shell sources the file.
    let mut by_key: BTreeMap<String, String> = BTreeMap::new();
    let mut order = Vec::new();
    for (key, value) in pairs {
        if by_key.insert(key.clone(), value).is_none() {
            order.push(key);
        }
    }
    if order.is_empty() {
        return Err(Error::usage(format!(
            "{} holds no KEY=VALUE line",
            file.display()
        )));
    }
    let items: Vec<Value> = order
        .iter()
        .map(|key| {
            let values: Map<String, Value> = envs
                .iter()
                .map(|env| (env.trim().to_owned(), Value::String(by_key[key].clone())))
                .collect();
            let mut item = json!({"key": key, "values": values});
            if let Some(note) = &note {
                item["note"] = json!(note);
            }
            item
        })
        .collect();
    let mut written = Vec::new();
    for chunk in items.chunks(BULK) {
        let answer = ctx
            .api
            .put(
                &["projects", project, kind.path()],
                &json!({"items": chunk}),
            )
            .await?;
        if let Some(items) = answer.body["items"].as_array() {
            written.extend(items.iter().cloned());
        }
    }
    if ctx.out.json() {
        ctx.out.value(&json!(written));
    } else {
        ctx.out.line(&format!(
            "Set {} {} in {}.",
            order.len(),
            if order.len() == 1 {
                kind.noun().to_owned()
            } else {
                kind.path().to_owned()
            },
            envs.join(", ")
        ));
    }
    Ok(())
}
