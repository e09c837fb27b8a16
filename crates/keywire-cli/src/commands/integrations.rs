//! `integration ...`: types, create, list, get, update, delete, validate, test, sync, runs.

use std::time::Duration;

use serde_json::{Map, Value, json};

use super::{Ctx, confirm, deleted, joined, read_hidden, read_input, s};
use crate::cli::{IntegrationAction, NewIntegration, RunsAction, RunsList, Spec};
use crate::error::Error;
use crate::exit;
use crate::output::{Spinner, Style, Table, stdin_is_terminal};
use crate::time::{parse_since, show_value};

/// How often `sync` asks how its run is doing.
const POLL: Duration = Duration::from_millis(500);

/// `keywire integration ...`.
pub(crate) async fn main(ctx: &Ctx, action: IntegrationAction) -> Result<(), Error> {
    match action {
        IntegrationAction::Types { kind: None } => types(ctx).await,
        IntegrationAction::Types { kind: Some(kind) } => one_type(ctx, &kind).await,
        IntegrationAction::Create { new, spec } => create(ctx, &new, &spec).await,
        IntegrationAction::List {
            workspace,
            kind,
            project,
            enabled,
            search,
            limit,
        } => {
            let mut query: Vec<(&str, String)> = Vec::new();
            if let Some(kind) = kind {
                query.push(("type", kind));
            }
            if let Some(project) = project {
                query.push(("project", project));
            }
            if let Some(enabled) = enabled {
                query.push(("enabled", enabled.to_string()));
            }
            if let Some(q) = search {
                query.push(("q", q));
            }
            let items = ctx
                .api
                .list(
                    &["workspaces", &workspace.workspace, "integrations"],
                    &query,
                    limit.limit,
                )
                .await?;
            if ctx.out.json() {
                ctx.out.value(&json!(items));
                return Ok(());
            }
            let mut table = Table::new(&[
                "SLUG", "NAME", "TYPE", "PROJECT", "ENABLED", "LAST RUN", "FAILED",
            ]);
            for i in &items {
                let last = s(&i["delivery"]["lastRunStatus"]);
                table.styled(vec![
                    (s(&i["slug"]), Style::Plain),
                    (s(&i["name"]), Style::Plain),
                    (s(&i["type"]), Style::Plain),
                    (s(&i["projectSlug"]), Style::Plain),
                    (yes_no(i["enabled"] == true), Style::Plain),
                    (last.clone(), Style::of_status(&last)),
                    (s(&i["delivery"]["failed"]), Style::Plain),
                ]);
            }
            ctx.out.table(&table, "No integrations.");
            Ok(())
        }
        IntegrationAction::Get { integration } => {
            let view = ctx.api.get(&["integrations", &integration], &[]).await?;
            show_integration(ctx, &view);
            Ok(())
        }
        IntegrationAction::Update {
            integration,
            spec,
            enable,
            disable,
        } => update(ctx, &integration, &spec, enable, disable).await,
        IntegrationAction::Delete {
            integration,
            cleanup,
            confirm: c,
        } => {
            let what = if cleanup {
                format!("integration `{integration}` and what it wrote at the target")
            } else {
                format!("integration `{integration}`")
            };
            confirm(&what, &integration, c.yes)?;
            let query: Vec<(&str, String)> = if cleanup {
                vec![("cleanup", "true".into())]
            } else {
                Vec::new()
            };
            let spinner = cleanup.then(|| Spinner::start("cleaning up at the target…", false));
            let result = ctx
                .api
                .delete(&["integrations", &integration], &query)
                .await;
            drop(spinner);
            result?;
            deleted(
                ctx,
                "integration",
                &integration,
                &format!("Deleted {what}."),
            );
            Ok(())
        }
        IntegrationAction::Validate {
            integration,
            new,
            spec,
        } => validate(ctx, integration.as_deref(), &new, &spec).await,
        IntegrationAction::Test { integration } => test(ctx, &integration).await,
        IntegrationAction::Sync {
            integration,
            dry_run,
            no_wait,
        } => sync(ctx, &integration, dry_run, no_wait).await,
        IntegrationAction::Runs { list, action } => match action {
            None => runs(ctx, &list).await,
            Some(RunsAction::List { list }) => runs(ctx, &list).await,
            Some(RunsAction::Show { integration, run }) => {
                let detail = ctx
                    .api
                    .get(&["integrations", &integration, "runs", &run], &[])
                    .await?;
                show_run(ctx, &detail);
                Ok(())
            }
            Some(RunsAction::Retry {
                integration,
                run,
                failed_since,
            }) => retry(ctx, &integration, run.as_deref(), failed_since.as_deref()).await,
        },
    }
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_owned()
}

async fn types(ctx: &Ctx) -> Result<(), Error> {
    let items = ctx.api.list(&["integration-types"], &[], None).await?;
    if ctx.out.json() {
        ctx.out.value(&json!(items));
        return Ok(());
    }
    let mut table = Table::new(&["TYPE", "NAME", "CATEGORY", "EVENTS"]);
    for t in &items {
        table.row(vec![
            s(&t["type"]),
            s(&t["name"]),
            s(&t["category"]),
            joined(&t["permittedEvents"], ", "),
        ]);
    }
    ctx.out.table(&table, "No integration types.");
    Ok(())
}

/// `prop` with a local `$ref` (`#/$defs/X`) followed into `root`.
fn resolve<'a>(prop: &'a Value, root: &'a Value) -> &'a Value {
    match prop["$ref"].as_str().and_then(|r| r.strip_prefix('#')) {
        Some(pointer) => root.pointer(pointer).unwrap_or(prop),
        None => prop,
    }
}

/// The choices of an enum-like schema (`enum`, or `oneOf`/`anyOf` of `const`s).
fn choices(prop: &Value) -> Option<Vec<String>> {
    if let Some(values) = prop["enum"].as_array() {
        return Some(values.iter().map(s).collect());
    }
    let options = prop["oneOf"].as_array().or(prop["anyOf"].as_array())?;
    options.iter().map(|o| o.get("const").map(s)).collect()
}

/// A schema property's type, for people: `string`, `integer|null`, `array of string`,
/// `one of a|b`...
fn type_name(prop: &Value, root: &Value) -> String {
    let prop = resolve(prop, root);
    if let Some(choices) = choices(prop) {
        return format!("one of {}", choices.join("|"));
    }
    match &prop["type"] {
        Value::String(t) if t == "array" => match prop["items"]["type"].as_str() {
            Some(item) => format!("array of {item}"),
            None => "array".into(),
        },
        Value::String(t) => t.clone(),
        Value::Array(ts) => ts.iter().map(s).collect::<Vec<_>>().join("|"),
        _ => "any".into(),
    }
}

/// Whether a `--metadata` value for `prop` is taken as a string (else parsed as JSON): string
/// types, string choices, and fields the schema does not describe.
fn takes_string(prop: &Value, root: &Value) -> bool {
    let prop = resolve(prop, root);
    if prop.is_null() {
        return true;
    }
    if let Some(choices) = prop["enum"]
        .as_array()
        .or(prop["oneOf"].as_array())
        .or(prop["anyOf"].as_array())
    {
        return choices
            .iter()
            .any(|c| c.is_string() || c["const"].is_string() || takes_string(c, root));
    }
    prop["type"] == "string"
        || prop["type"]
            .as_array()
            .is_some_and(|ts| ts.iter().any(|t| t == "string"))
}

/// Whether the top-level field `name` is a credential of `descriptor`.
fn is_credential(descriptor: &Value, name: &str) -> bool {
    let pointer = format!("/{name}");
    descriptor["secretFields"]
        .as_array()
        .is_some_and(|fields| fields.iter().any(|f| f.as_str() == Some(pointer.as_str())))
        || descriptor["metadataSchema"]["properties"][name]["writeOnly"] == true
}

async fn one_type(ctx: &Ctx, kind: &str) -> Result<(), Error> {
    let t = ctx.api.get(&["integration-types", kind], &[]).await?;
    if ctx.out.json() {
        ctx.out.value(&t);
        return Ok(());
    }
    let actions = joined(&t["permittedActions"], ", ");
    ctx.out.fields(&[
        ("Type", s(&t["type"])),
        ("Name", s(&t["name"])),
        ("Category", s(&t["category"])),
        ("Description", s(&t["description"])),
        (
            "Scope",
            format!(
                "project {}; environments: {}",
                if t["scope"]["projectRequired"] == true {
                    "required"
                } else {
                    "optional"
                },
                s(&t["scope"]["environments"])
            ),
        ),
        (
            "Actions",
            if actions.is_empty() {
                "none".into()
            } else {
                actions
            },
        ),
    ]);
    ctx.out.heading("Events");
    for event in t["permittedEvents"].as_array().into_iter().flatten() {
        ctx.out.line(&format!("  {}", s(event)));
    }
    ctx.out.heading("Metadata fields");
    let schema = &t["metadataSchema"];
    let required: Vec<String> = schema["required"]
        .as_array()
        .map(|r| r.iter().map(s).collect())
        .unwrap_or_default();
    let mut table = Table::new(&["FIELD", "TYPE", "REQUIRED", "CREDENTIAL", "DESCRIPTION"]);
    for (name, prop) in schema["properties"].as_object().into_iter().flatten() {
        let credential = is_credential(&t, name);
        let description = s(&prop["description"]);
        table.styled(vec![
            (name.clone(), Style::Plain),
            (type_name(prop, schema), Style::Plain),
            (yes_no(required.contains(name)), Style::Plain),
            (
                yes_no(credential),
                if credential {
                    Style::Yellow
                } else {
                    Style::Plain
                },
            ),
            (
                description.split("\n\n").next().unwrap_or("").to_owned(),
                Style::Plain,
            ),
        ]);
    }
    ctx.out.table(&table, "  (no fields)");
    let nested: Vec<String> = t["secretFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(s)
        .filter(|p| p.matches('/').count() > 1)
        .collect();
    if !nested.is_empty() {
        ctx.out
            .line(&format!("Nested credentials: {}", nested.join(", ")));
    }
    ctx.out.heading("Example metadata");
    let example = serde_json::to_string_pretty(&t["exampleMetadata"]).unwrap_or_default();
    crate::output::print(&format!("{example}\n"));
    Ok(())
}

/// Sets `value` at a JSON pointer (`/a/b`) or top-level field name, creating objects.
fn set_field(target: &mut Map<String, Value>, field: &str, value: Value) -> Result<(), Error> {
    let parts: Vec<String> = match field.strip_prefix('/') {
        Some(pointer) => pointer
            .split('/')
            .map(|p| p.replace("~1", "/").replace("~0", "~"))
            .collect(),
        None => vec![field.to_owned()],
    };
    if parts.iter().any(String::is_empty) {
        return Err(Error::usage(format!("`{field}` is not a metadata field")));
    }
    let (last, path) = parts.split_last().expect("parts is not empty");
    let mut node = target;
    for part in path {
        let next = node
            .entry(part.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        node = next
            .as_object_mut()
            .ok_or_else(|| Error::usage(format!("`{field}`: `{part}` is not an object")))?;
    }
    node.insert(last.clone(), value);
    Ok(())
}

/// The metadata given by `--metadata-file` and `--metadata` (flags win). Values of fields the
/// schema does not declare as strings are parsed as JSON. `FIELD` without `=` is read hidden.
fn metadata(spec: &Spec, descriptor: Option<&Value>) -> Result<Option<Value>, Error> {
    let mut map = match &spec.metadata_file {
        Some(file) => {
            let text = read_input(file)?;
            let yaml = file
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"));
            // Both parsers' messages name a line and column, never the content.
            let parsed = if yaml {
                serde_norway::from_str::<Value>(&text)
                    .map_err(|e| Error::usage(format!("{} is not YAML: {e}", file.display())))?
            } else {
                serde_json::from_str::<Value>(&text)
                    .map_err(|e| Error::usage(format!("{} is not JSON: {e}", file.display())))?
            };
            match parsed {
                Value::Object(map) => map,
                _ => {
                    return Err(Error::usage(format!(
                        "{}: the metadata must be an object (a mapping)",
                        file.display()
                    )));
                }
            }
        }
        None if spec.metadata.is_empty() => return Ok(None),
        None => Map::new(),
    };
    for entry in &spec.metadata {
        let (field, value) = match entry.split_once('=') {
            Some((field, value)) => (field.trim(), value.to_owned()),
            None => {
                let field = entry.trim();
                (field, read_hidden(&format!("{field} (hidden): "))?)
            }
        };
        let name = field.trim_start_matches('/');
        let root = descriptor.map_or(&Value::Null, |d| &d["metadataSchema"]);
        let prop = &root["properties"][name];
        let value = if takes_string(prop, root) {
            Value::String(value)
        } else {
            serde_json::from_str(&value).map_err(|_| {
                Error::usage(format!(
                    "--metadata {field}: expected {} (as JSON)",
                    type_name(prop, root)
                ))
            })?
        };
        set_field(&mut map, field, value)?;
    }
    Ok(Some(Value::Object(map)))
}

/// Whether a credential at `pointer` is asked for: a string field the schema describes (maps
/// and lists, such as a webhook's extra headers, are given with `--metadata` or the file).
fn prompts_for(root: &Value, pointer: &str) -> bool {
    let mut prop = root;
    for part in pointer.trim_start_matches('/').split('/') {
        prop = &resolve(prop, root)["properties"][part];
    }
    !prop.is_null() && takes_string(prop, root)
}

/// On a terminal, asks (hidden) for credential fields the metadata lacks.
fn prompt_credentials(metadata: &mut Value, descriptor: &Value) -> Result<(), Error> {
    if !stdin_is_terminal() {
        return Ok(());
    }
    let required: Vec<String> = descriptor["metadataSchema"]["required"]
        .as_array()
        .map(|r| r.iter().map(|f| format!("/{}", s(f))).collect())
        .unwrap_or_default();
    let fields: Vec<String> = descriptor["secretFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(s)
        .collect();
    let root = &descriptor["metadataSchema"];
    for pointer in fields {
        if metadata.pointer(&pointer).is_some() || !prompts_for(root, &pointer) {
            continue;
        }
        // Enter leaves a field out: the type may generate it (a webhook's signing secret), or
        // the server names what is missing.
        let prompt = if required.contains(&pointer) {
            format!("{pointer} (credential, hidden; Enter leaves it out): ")
        } else {
            format!("{pointer} (optional credential, hidden; Enter leaves it out): ")
        };
        let value = read_hidden(&prompt)?;
        if !value.is_empty()
            && let Some(map) = metadata.as_object_mut()
        {
            set_field(map, &pointer, Value::String(value))?;
        }
    }
    Ok(())
}

fn required<'a>(value: &'a Option<String>, flag: &str) -> Result<&'a str, Error> {
    value
        .as_deref()
        .ok_or_else(|| Error::usage(format!("give {flag}")))
}

/// The create body from the flags (asks for missing credentials on a terminal).
async fn create_body(
    ctx: &Ctx,
    new: &NewIntegration,
    spec: &Spec,
) -> Result<(String, Value), Error> {
    let workspace = required(&new.workspace, "--workspace")?;
    let kind = required(&new.kind, "--type (see keywire integration types)")?;
    let name = required(&spec.name, "--name")?;
    let descriptor = ctx.api.get(&["integration-types", kind], &[]).await?;
    let mut metadata = metadata(spec, Some(&descriptor))?.unwrap_or_else(|| json!({}));
    prompt_credentials(&mut metadata, &descriptor)?;
    let mut body = json!({
        "name": name,
        "type": kind,
        "notifyOn": spec.notify_on,
        "metadata": metadata,
        "enabled": !new.disabled,
    });
    if !spec.actions.is_empty() {
        body["actions"] = json!(spec.actions);
    }
    if let Some(project) = &new.project {
        body["projectSlug"] = json!(project);
    }
    if !spec.environments.is_empty() {
        body["environmentSlugs"] = json!(spec.environments);
    }
    if let Some(sync) = sync_body(spec)? {
        body["sync"] = sync;
    }
    Ok((workspace.to_owned(), body))
}

/// The `sync` object of a create or patch body, when a sync flag was given.
fn sync_body(spec: &Spec) -> Result<Option<Value>, Error> {
    if spec.key_template.is_none() && spec.on_conflict.is_none() && spec.targets.is_empty() {
        return Ok(None);
    }
    let mut sync = json!({});
    if let Some(template) = &spec.key_template {
        sync["keyTemplate"] = json!(template);
    }
    if let Some(policy) = &spec.on_conflict {
        sync["onConflict"] = json!(policy);
    }
    if !spec.targets.is_empty() {
        let mut targets = Map::new();
        for pair in &spec.targets {
            let (env, target) = pair
                .split_once('=')
                .ok_or_else(|| Error::usage(format!("--target {pair}: expected ENV=TARGET")))?;
            targets.insert(env.trim().to_owned(), json!(target.trim()));
        }
        sync["targets"] = Value::Object(targets);
    }
    Ok(Some(sync))
}

fn validate_query(spec: &Spec) -> Vec<(&'static str, String)> {
    if spec.no_validate {
        vec![("validate", "false".into())]
    } else {
        Vec::new()
    }
}

async fn create(ctx: &Ctx, new: &NewIntegration, spec: &Spec) -> Result<(), Error> {
    let (workspace, body) = create_body(ctx, new, spec).await?;
    let spinner = (!spec.no_validate).then(|| Spinner::start("checking the settings live…", false));
    let result = ctx
        .api
        .post(
            &["workspaces", &workspace, "integrations"],
            &validate_query(spec),
            Some(&body),
        )
        .await;
    drop(spinner);
    let view = result?.body;
    if ctx.out.json() {
        ctx.out.value(&view);
    } else {
        ctx.out.line(&format!(
            "Created integration `{}` ({}) in workspace `{workspace}`.",
            s(&view["slug"]),
            s(&view["type"])
        ));
        generated(ctx, &view);
    }
    Ok(())
}

/// Credentials keywire generated for a create or update (a webhook's signing secret): the
/// server shows them in this one answer only, so they are printed, once, here.
fn generated(ctx: &Ctx, view: &Value) {
    for (pointer, value) in view["generatedSecrets"].as_object().into_iter().flatten() {
        ctx.out.line(&format!(
            "keywire generated {pointer}; it is shown only now, store it safely: {}",
            s(value)
        ));
    }
}

/// The PATCH body of `update` (and `validate INTEGRATION`).
async fn patch_body(
    ctx: &Ctx,
    integration: &str,
    spec: &Spec,
    enabled: Option<bool>,
) -> Result<Value, Error> {
    let mut body = json!({});
    if let Some(name) = &spec.name {
        body["name"] = json!(name);
    }
    if !spec.notify_on.is_empty() {
        body["notifyOn"] = json!(spec.notify_on);
    }
    if !spec.actions.is_empty() {
        body["actions"] = json!(spec.actions);
    }
    if !spec.environments.is_empty() {
        body["environmentSlugs"] = json!(spec.environments);
    }
    if let Some(enabled) = enabled {
        body["enabled"] = json!(enabled);
    }
    if let Some(sync) = sync_body(spec)? {
        body["sync"] = sync;
    }
    if spec.metadata_file.is_some() || !spec.metadata.is_empty() {
        let view = ctx.api.get(&["integrations", integration], &[]).await?;
        let descriptor = ctx
            .api
            .get(&["integration-types", &s(&view["type"])], &[])
            .await
            .ok();
        if let Some(metadata) = metadata(spec, descriptor.as_ref())? {
            body["metadata"] = metadata;
        }
    }
    Ok(body)
}

async fn update(
    ctx: &Ctx,
    integration: &str,
    spec: &Spec,
    enable: bool,
    disable: bool,
) -> Result<(), Error> {
    let enabled = match (enable, disable) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    let body = patch_body(ctx, integration, spec, enabled).await?;
    if body.as_object().is_some_and(Map::is_empty) {
        return Err(Error::usage(
            "nothing to change: give --name, --notify-on, --action, --environment, --metadata, --metadata-file, a sync option, --enable or --disable",
        ));
    }
    let spinner = (body.get("metadata").is_some() && !spec.no_validate)
        .then(|| Spinner::start("checking the settings live…", false));
    let result = ctx
        .api
        .patch(&["integrations", integration], &validate_query(spec), &body)
        .await;
    drop(spinner);
    let view = result?;
    if ctx.out.json() {
        ctx.out.value(&view);
    } else {
        ctx.out
            .line(&format!("Updated integration `{}`.", s(&view["slug"])));
        generated(ctx, &view);
    }
    Ok(())
}

fn show_integration(ctx: &Ctx, v: &Value) {
    if ctx.out.json() {
        ctx.out.value(v);
        return;
    }
    let d = &v["delivery"];
    let mut delivery = format!(
        "{} succeeded, {} failed",
        s(&d["succeeded"]),
        s(&d["failed"])
    );
    if let Some(status) = d["lastRunStatus"].as_str() {
        delivery.push_str(&format!(
            "; last run {status} at {}",
            show_value(&d["lastRunAt"])
        ));
    }
    let or_all = |text: String, all: &str| {
        if text.is_empty() {
            all.to_owned()
        } else {
            text
        }
    };
    let mut pairs = vec![
        ("Slug", s(&v["slug"])),
        ("Name", s(&v["name"])),
        ("Type", format!("{} ({})", s(&v["type"]), s(&v["category"]))),
        ("Workspace", s(&v["workspace"])),
        ("Project", or_all(s(&v["projectSlug"]), "(all)")),
        (
            "Environments",
            or_all(joined(&v["environmentSlugs"], ", "), "(all)"),
        ),
        ("Events", joined(&v["notifyOn"], ", ")),
        ("Actions", or_all(joined(&v["actions"], ", "), "none")),
        ("Enabled", yes_no(v["enabled"] == true)),
        ("Delivery", delivery),
        ("Sync", sync_summary(&v["sync"])),
        ("Created", show_value(&v["createdAt"])),
        ("Updated", show_value(&v["updatedAt"])),
    ];
    let mut metadata = Vec::new();
    for (k, value) in v["metadata"].as_object().into_iter().flatten() {
        metadata.push((format!("  {k}"), s(value)));
    }
    for (pointer, state) in v["secretFields"].as_object().into_iter().flatten() {
        let shown = if state["configured"] == true {
            "(credential) set"
        } else {
            "(credential) not set"
        };
        metadata.push((
            format!("  {}", pointer.trim_start_matches('/')),
            shown.into(),
        ));
    }
    pairs.push(("Metadata", String::new()));
    let metadata: Vec<(&str, String)> = metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    pairs.extend(metadata);
    ctx.out.fields(&pairs);
}

/// An infrastructure integration's sync settings in one line.
fn sync_summary(sync: &Value) -> String {
    if !sync.is_object() {
        return "(messages only)".into();
    }
    let targets: Vec<String> = sync["targets"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(env, target)| format!("{env}→{}", s(target)))
        .collect();
    format!(
        "keys `{}`, on conflict {}, targets {}",
        s(&sync["keyTemplate"]),
        s(&sync["onConflict"]),
        if targets.is_empty() {
            "(defaults)".to_owned()
        } else {
            targets.join(", ")
        }
    )
}

async fn validate(
    ctx: &Ctx,
    integration: Option<&str>,
    new: &NewIntegration,
    spec: &Spec,
) -> Result<(), Error> {
    let body = match integration {
        Some(slug) => {
            if new.workspace.is_some() || new.kind.is_some() || new.project.is_some() {
                return Err(Error::usage(
                    "give an integration to check, or --workspace and --type for a new one, not both",
                ));
            }
            json!({"slug": slug, "patch": patch_body(ctx, slug, spec, None).await?})
        }
        None => {
            let (workspace, mut body) = create_body(ctx, new, spec).await?;
            body["workspace"] = json!(workspace);
            body
        }
    };
    let spinner = Spinner::start("checking…", false);
    let result = ctx
        .api
        .post(&["integrations", "validate"], &[], Some(&body))
        .await;
    drop(spinner);
    let report = result?.body;
    let valid = report["valid"] == true;
    if ctx.out.json() {
        ctx.out.value(&report);
    } else {
        let mut table = Table::new(&["CHECK", "RESULT", "DETAIL"]);
        for check in report["checks"].as_array().into_iter().flatten() {
            let result = if check["passed"] == true {
                "passed"
            } else if check["skipped"] == true {
                "skipped"
            } else {
                "failed"
            };
            let mut detail = s(&check["detail"]);
            for e in check["errors"].as_array().into_iter().flatten() {
                let pointer = s(&e["pointer"]);
                if !detail.contains(&pointer) {
                    detail.push_str(&format!(" [{pointer}]"));
                }
            }
            table.styled(vec![
                (s(&check["name"]), Style::Plain),
                (result.to_owned(), Style::of_status(result)),
                (detail.trim().to_owned(), Style::Plain),
            ]);
        }
        ctx.out.table(&table, "No checks ran.");
        ctx.out.line(if valid { "Valid." } else { "Not valid." });
    }
    if valid {
        Ok(())
    } else {
        Err(Error::failed("the configuration is not valid"))
    }
}

async fn test(ctx: &Ctx, integration: &str) -> Result<(), Error> {
    let spinner = Spinner::start("sending a test event…", false);
    let result = ctx
        .api
        .post(&["integrations", integration, "test"], &[], None)
        .await;
    drop(spinner);
    let outcome = result?.body;
    let delivered = outcome["delivered"] == true;
    if ctx.out.json() {
        ctx.out.value(&outcome);
    } else {
        let mut pairs = vec![
            (
                "Delivered",
                ctx.out
                    .paint(&yes_no(delivered), Style::of_status(&yes_no(delivered))),
            ),
            ("Event", s(&outcome["eventType"])),
            ("Message id", s(&outcome["messageId"])),
        ];
        if !outcome["status"].is_null() {
            pairs.push(("HTTP status", s(&outcome["status"])));
        }
        if !delivered {
            pairs.push(("Retryable", yes_no(outcome["retryable"] == true)));
        }
        if let Some(error) = outcome["error"].as_str() {
            pairs.push(("Error", error.to_owned()));
        }
        if let Some(excerpt) = outcome["excerpt"].as_str() {
            pairs.push(("Answer", excerpt.to_owned()));
        }
        ctx.out.fields(&pairs);
    }
    if delivered {
        Ok(())
    } else {
        Err(Error::failed(format!(
            "the test event was not delivered to `{integration}`"
        )))
    }
}

fn is_done(status: &str) -> bool {
    status == "succeeded" || status == "failed"
}

async fn sync(ctx: &Ctx, integration: &str, dry_run: bool, no_wait: bool) -> Result<(), Error> {
    if dry_run {
        let spinner = Spinner::start("computing the plan…", false);
        let result = ctx
            .api
            .post(
                &["integrations", integration, "sync"],
                &[("dryRun", "true".into())],
                None,
            )
            .await;
        drop(spinner);
        let plan = result?.body;
        if ctx.out.json() {
            ctx.out.value(&plan);
            return Ok(());
        }
        let mut table = Table::new(&["ENV", "TARGET", "KEY", "KIND", "ACTION", "REASON"]);
        for c in plan["changes"].as_array().into_iter().flatten() {
            let action = s(&c["action"]);
            table.styled(vec![
                (s(&c["environment"]), Style::Plain),
                (s(&c["target"]), Style::Plain),
                (s(&c["key"]), Style::Plain),
                (s(&c["kind"]), Style::Plain),
                (action.clone(), Style::of_status(&action)),
                (s(&c["reason"]), Style::Plain),
            ]);
        }
        ctx.out.table(&table, "Nothing to sync.");
        let summary: Vec<String> = plan["summary"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(action, n)| format!("{action} {}", s(n)))
            .collect();
        if !summary.is_empty() {
            ctx.out.line(&format!(
                "Plan: {} (dry run: nothing changed).",
                summary.join(", ")
            ));
        }
        return Ok(());
    }
    let started = ctx
        .api
        .post(&["integrations", integration, "sync"], &[], None)
        .await?
        .body;
    let run = &started["run"];
    let id = s(&run["id"]);
    if id.is_empty() {
        return Err(Error::failed("the server started no sync run"));
    }
    if no_wait {
        if ctx.out.json() {
            ctx.out.value(&started);
        } else {
            ctx.out.line(&format!(
                "Sync run {id} is {}; follow it with: keywire integration runs show {integration} {id}",
                s(&run["status"])
            ));
        }
        return Ok(());
    }
    let progress = |r: &Value| {
        let mut text = format!("sync run {id}: {}", s(&r["status"]));
        let attempts = r["attempts"].as_i64().unwrap_or(0);
        if attempts > 0 {
            text.push_str(&format!(", attempt {attempts}"));
        }
        if let Some(next) = r["nextAttemptAt"].as_str().filter(|_| attempts > 0) {
            text.push_str(&format!(", next try at {}", crate::time::show(next)));
        }
        text
    };
    let spinner = Spinner::start(&progress(run), true);
    let detail = loop {
        let detail = ctx
            .api
            .get(&["integrations", integration, "runs", &id], &[])
            .await?;
        spinner.set(&progress(&detail));
        if is_done(&s(&detail["status"])) {
            break detail;
        }
        tokio::time::sleep(POLL).await;
    };
    drop(spinner);
    show_run(ctx, &detail);
    if detail["status"] == "succeeded" {
        Ok(())
    } else {
        Err(Error::failed(format!("sync run {id} failed")))
    }
}

async fn runs(ctx: &Ctx, list: &RunsList) -> Result<(), Error> {
    let integration = required(&list.integration, "the integration's slug")?;
    let query: Vec<(&str, String)> = list
        .status
        .iter()
        .map(|status| ("status", status.clone()))
        .collect();
    let items = ctx
        .api
        .list(
            &["integrations", integration, "runs"],
            &query,
            list.limit.limit,
        )
        .await?;
    if ctx.out.json() {
        ctx.out.value(&json!(items));
        return Ok(());
    }
    let mut table = Table::new(&[
        "RUN",
        "KIND",
        "STATUS",
        "ATTEMPTS",
        "CREATED",
        "ENDED/NEXT",
        "LAST ERROR",
    ]);
    for r in &items {
        let status = s(&r["status"]);
        let when = if r["finishedAt"].is_string() {
            show_value(&r["finishedAt"])
        } else {
            show_value(&r["nextAttemptAt"])
        };
        table.styled(vec![
            (s(&r["id"]), Style::Plain),
            (s(&r["kind"]), Style::Plain),
            (status.clone(), Style::of_status(&status)),
            (s(&r["attempts"]), Style::Plain),
            (show_value(&r["createdAt"]), Style::Plain),
            (when, Style::Plain),
            (s(&r["lastError"]), Style::Plain),
        ]);
    }
    ctx.out.table(&table, "No runs.");
    Ok(())
}

fn show_run(ctx: &Ctx, r: &Value) {
    if ctx.out.json() {
        ctx.out.value(r);
        return;
    }
    let status = s(&r["status"]);
    let mut pairs = vec![
        ("Run", s(&r["id"])),
        ("Kind", s(&r["kind"])),
        ("Status", ctx.out.paint(&status, Style::of_status(&status))),
        ("Attempts", s(&r["attempts"])),
        ("Created", show_value(&r["createdAt"])),
    ];
    if r["finishedAt"].is_string() {
        pairs.push(("Ended", show_value(&r["finishedAt"])));
    }
    if r["nextAttemptAt"].is_string() {
        pairs.push(("Next attempt", show_value(&r["nextAttemptAt"])));
    }
    if let Some(error) = r["lastError"].as_str() {
        pairs.push(("Last error", error.to_owned()));
    }
    if r["event"].is_object() {
        pairs.push((
            "Event",
            format!("{}: {}", s(&r["event"]["type"]), s(&r["event"]["title"])),
        ));
    }
    ctx.out.fields(&pairs);
    let attempts = r["attemptLog"].as_array();
    if attempts.is_some_and(|a| !a.is_empty()) {
        ctx.out.heading("Attempts");
        let mut table = Table::new(&["#", "STARTED", "MS", "OUTCOME", "HTTP", "ANSWER"]);
        for a in attempts.into_iter().flatten() {
            let outcome = s(&a["outcome"]);
            let style = if outcome == "succeeded" {
                Style::Green
            } else {
                Style::Red
            };
            table.styled(vec![
                (s(&a["number"]), Style::Plain),
                (show_value(&a["startedAt"]), Style::Plain),
                (s(&a["durationMs"]), Style::Plain),
                (outcome, style),
                (s(&a["httpStatus"]), Style::Plain),
                (s(&a["excerpt"]), Style::Plain),
            ]);
        }
        ctx.out.table(&table, "");
    }
}

async fn retry(
    ctx: &Ctx,
    integration: &str,
    run: Option<&str>,
    failed_since: Option<&str>,
) -> Result<(), Error> {
    let answer = match (run, failed_since) {
        (Some(run), None) => {
            ctx.api
                .post(
                    &["integrations", integration, "runs", run, "retry"],
                    &[],
                    None,
                )
                .await?
                .body
        }
        (None, Some(since)) => {
            let since = parse_since(since, chrono::Utc::now())?;
            ctx.api
                .post(
                    &["integrations", integration, "runs", "retry"],
                    &[],
                    Some(&json!({"failedSince": since})),
                )
                .await?
                .body
        }
        _ => {
            return Err(Error::new(
                exit::USAGE,
                "give a run id, or --failed-since TIME",
            ));
        }
    };
    if ctx.out.json() {
        ctx.out.value(&answer);
    } else {
        let n = answer["retried"].as_u64().unwrap_or(0);
        match run {
            Some(run) => ctx.out.line(&format!("Queued run {run} again.")),
            None => ctx.out.line(&format!(
                "Queued {n} failed run{} again.",
                if n == 1 { "" } else { "s" }
            )),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_flags_follow_the_schema_and_pointers_nest() {
        let descriptor = json!({
            "metadataSchema": {"properties": {
                "url": {"type": "string"},
                "port": {"type": "integer"},
                "tags": {"type": "array", "items": {"type": "string"}},
            }},
            "secretFields": ["/token"],
        });
        let spec = Spec {
            name: None,
            notify_on: vec![],
            actions: vec![],
            environments: vec![],
            metadata: vec![
                "url=https://x.example/a=b".into(),
                "port=8080".into(),
                "tags=[\"a\"]".into(),
                "/auth/user=bob".into(),
            ],
            metadata_file: None,
            no_validate: false,
            key_template: None,
            on_conflict: None,
            targets: vec!["prod=production".into()],
        };
        let m = metadata(&spec, Some(&descriptor)).unwrap().unwrap();
        assert_eq!(
            m,
            json!({"url": "https://x.example/a=b", "port": 8080, "tags": ["a"], "auth": {"user": "bob"}})
        );
        // The same metadata from a YAML file (by extension), flags still winning.
        let dir = tempfile::tempdir().unwrap();
        let yaml = dir.path().join("hook.yaml");
        std::fs::write(
            &yaml,
            "url: https://y.example/hook\nport: 25\ntags: [a, b]\n",
        )
        .unwrap();
        let from_yaml = Spec {
            metadata: vec!["port=8080".into()],
            metadata_file: Some(yaml.clone()),
            ..spec.clone()
        };
        assert_eq!(
            metadata(&from_yaml, Some(&descriptor)).unwrap().unwrap(),
            json!({"url": "https://y.example/hook", "port": 8080, "tags": ["a", "b"]})
        );
        std::fs::write(&yaml, "- not\n- a mapping\n").unwrap();
        let err = metadata(&from_yaml, Some(&descriptor)).unwrap_err();
        assert_eq!(err.code, exit::USAGE);
        std::fs::write(&yaml, "url: [unclosed\n").unwrap();
        let err = metadata(&from_yaml, Some(&descriptor)).unwrap_err();
        assert!(err.message.contains("is not YAML"), "{}", err.message);
        let bad = Spec {
            metadata: vec!["port=eighty".into()],
            ..spec
        };
        let err = metadata(&bad, Some(&descriptor)).unwrap_err();
        assert_eq!(err.code, exit::USAGE);
        assert!(!err.message.contains("eighty"), "{}", err.message);
        assert_eq!(
            sync_body(&bad).unwrap(),
            Some(json!({"targets": {"prod": "production"}}))
        );
        let schema = json!({"properties": {
            "token": {"type": "string", "writeOnly": true},
            "headers": {"type": "object", "writeOnly": true},
            "old": {"type": "array", "writeOnly": true},
            "auth": {"type": "object", "properties": {"password": {"type": "string"}}},
        }});
        assert!(prompts_for(&schema, "/token"));
        assert!(prompts_for(&schema, "/auth/password"));
        assert!(!prompts_for(&schema, "/headers"));
        assert!(!prompts_for(&schema, "/old"));
        assert!(!prompts_for(&schema, "/missing"));
        assert!(is_credential(&descriptor, "token"));
        assert!(!is_credential(&descriptor, "url"));
        let root = json!({"$defs": {"Kind": {"oneOf": [
            {"const": "encrypted", "type": "string"}, {"const": "sensitive", "type": "string"}
        ]}}});
        let by_ref = json!({"$ref": "#/$defs/Kind"});
        assert_eq!(type_name(&by_ref, &root), "one of encrypted|sensitive");
        assert!(takes_string(&by_ref, &root));
        assert!(!takes_string(&json!({"type": "integer"}), &root));
        assert!(takes_string(&json!({"type": ["string", "null"]}), &root));
        assert_eq!(
            type_name(&json!({"type": ["string", "null"]}), &root),
            "string|null"
        );
        assert_eq!(
            type_name(
                &json!({"type": "array", "items": {"type": "string"}}),
                &root
            ),
            "array of string"
        );
    }
}
