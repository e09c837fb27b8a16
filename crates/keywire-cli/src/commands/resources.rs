//! `workspace`, `project`, `environment`.

use serde_json::{Value, json};

use super::{Ctx, confirm, deleted, s};
use crate::cli::{EnvironmentAction, ProjectAction, WorkspaceAction};
use crate::error::Error;
use crate::output::Table;
use crate::time::show_value;

/// `keywire workspace ...`.
pub(crate) async fn workspace(ctx: &Ctx, action: WorkspaceAction) -> Result<(), Error> {
    match action {
        WorkspaceAction::List(limit) => {
            let items = ctx.api.list(&["workspaces"], &[], limit.limit).await?;
            if ctx.out.json() {
                ctx.out.value(&json!(items));
                return Ok(());
            }
            let mut table = Table::new(&["SLUG", "NAME", "CREATED"]);
            for w in &items {
                table.row(vec![
                    s(&w["slug"]),
                    s(&w["name"]),
                    show_value(&w["createdAt"]),
                ]);
            }
            ctx.out.table(&table, "No workspaces.");
        }
        WorkspaceAction::Create { name } => {
            let w = ctx
                .api
                .post(&["workspaces"], &[], Some(&json!({"name": name})))
                .await?
                .body;
            show(ctx, &w, &format!("Created workspace `{}`.", s(&w["slug"])));
        }
        WorkspaceAction::Get { workspace } => {
            let w = ctx.api.get(&["workspaces", &workspace], &[]).await?;
            show_named(ctx, &w);
        }
        WorkspaceAction::Update { workspace, name } => {
            let w = ctx
                .api
                .patch(&["workspaces", &workspace], &[], &json!({"name": name}))
                .await?;
            show(ctx, &w, &format!("Renamed workspace `{}`.", s(&w["slug"])));
        }
        WorkspaceAction::Delete {
            workspace,
            confirm: c,
        } => {
            confirm(
                &format!("workspace `{workspace}` and everything in it"),
                &workspace,
                c.yes,
            )?;
            ctx.api.delete(&["workspaces", &workspace], &[]).await?;
            deleted(
                ctx,
                "workspace",
                &workspace,
                &format!("Deleted workspace `{workspace}`."),
            );
        }
    }
    Ok(())
}

/// A created or changed object: JSON as is, or one line.
fn show(ctx: &Ctx, value: &Value, line: &str) {
    if ctx.out.json() {
        ctx.out.value(value);
    } else {
        ctx.out.line(line);
    }
}

fn show_named(ctx: &Ctx, w: &Value) {
    if ctx.out.json() {
        ctx.out.value(w);
        return;
    }
    ctx.out.fields(&[
        ("Slug", s(&w["slug"])),
        ("Name", s(&w["name"])),
        ("Created", show_value(&w["createdAt"])),
        ("Updated", show_value(&w["updatedAt"])),
    ]);
}

fn environment_slugs(p: &Value) -> String {
    p["environments"]
        .as_array()
        .map(|envs| {
            envs.iter()
                .map(|e| s(&e["slug"]))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// `keywire project ...`.
pub(crate) async fn project(ctx: &Ctx, action: ProjectAction) -> Result<(), Error> {
    match action {
        ProjectAction::List { workspace, limit } => {
            let items = ctx
                .api
                .list(
                    &["workspaces", &workspace.workspace, "projects"],
                    &[],
                    limit.limit,
                )
                .await?;
            if ctx.out.json() {
                ctx.out.value(&json!(items));
                return Ok(());
            }
            let mut table = Table::new(&["SLUG", "NAME", "ENVIRONMENTS", "CREATED"]);
            for p in &items {
                table.row(vec![
                    s(&p["slug"]),
                    s(&p["name"]),
                    environment_slugs(p),
                    show_value(&p["createdAt"]),
                ]);
            }
            ctx.out.table(&table, "No projects.");
        }
        ProjectAction::Create {
            name,
            workspace,
            environments,
        } => {
            let envs: Vec<Value> = environments.iter().map(|e| json!({"name": e})).collect();
            let mut body = json!({"name": name});
            if !envs.is_empty() {
                body["environments"] = json!(envs);
            }
            let p = ctx
                .api
                .post(
                    &["workspaces", &workspace.workspace, "projects"],
                    &[],
                    Some(&body),
                )
                .await?
                .body;
            let envs = environment_slugs(&p);
            let line = if envs.is_empty() {
                format!("Created project `{}`.", s(&p["slug"]))
            } else {
                format!(
                    "Created project `{}` with environments {envs}.",
                    s(&p["slug"])
                )
            };
            show(ctx, &p, &line);
        }
        ProjectAction::Get { project } => {
            let p = ctx.api.get(&["projects", &project], &[]).await?;
            if ctx.out.json() {
                ctx.out.value(&p);
                return Ok(());
            }
            ctx.out.fields(&[
                ("Slug", s(&p["slug"])),
                ("Name", s(&p["name"])),
                ("Workspace", s(&p["workspace"])),
                ("Environments", environment_slugs(&p)),
                ("Created", show_value(&p["createdAt"])),
                ("Updated", show_value(&p["updatedAt"])),
            ]);
        }
        ProjectAction::Update { project, name } => {
            let p = ctx
                .api
                .patch(&["projects", &project], &[], &json!({"name": name}))
                .await?;
            show(ctx, &p, &format!("Renamed project `{}`.", s(&p["slug"])));
        }
        ProjectAction::Delete {
            project,
            confirm: c,
        } => {
            confirm(
                &format!("project `{project}` with its environments, secrets and variables"),
                &project,
                c.yes,
            )?;
            ctx.api.delete(&["projects", &project], &[]).await?;
            deleted(
                ctx,
                "project",
                &project,
                &format!("Deleted project `{project}`."),
            );
        }
    }
    Ok(())
}

/// `keywire environment ...`.
pub(crate) async fn environment(ctx: &Ctx, action: EnvironmentAction) -> Result<(), Error> {
    match action {
        EnvironmentAction::List { project } => {
            let items = ctx
                .api
                .list(&["projects", &project.project, "environments"], &[], None)
                .await?;
            if ctx.out.json() {
                ctx.out.value(&json!(items));
                return Ok(());
            }
            let mut table = Table::new(&["SLUG", "NAME", "CREATED"]);
            for e in &items {
                table.row(vec![
                    s(&e["slug"]),
                    s(&e["name"]),
                    show_value(&e["createdAt"]),
                ]);
            }
            ctx.out.table(&table, "No environments.");
        }
        EnvironmentAction::Create { name, project } => {
            let e = ctx
                .api
                .post(
                    &["projects", &project.project, "environments"],
                    &[],
                    Some(&json!({"name": name})),
                )
                .await?
                .body;
            show(
                ctx,
                &e,
                &format!(
                    "Created environment `{}` in project `{}`.",
                    s(&e["slug"]),
                    project.project
                ),
            );
        }
        EnvironmentAction::Get {
            environment,
            project,
        } => {
            let e = ctx
                .api
                .get(
                    &["projects", &project.project, "environments", &environment],
                    &[],
                )
                .await?;
            show_named(ctx, &e);
        }
        EnvironmentAction::Update {
            environment,
            project,
            name,
        } => {
            let e = ctx
                .api
                .patch(
                    &["projects", &project.project, "environments", &environment],
                    &[],
                    &json!({"name": name}),
                )
                .await?;
            show(
                ctx,
                &e,
                &format!("Renamed environment `{}`.", s(&e["slug"])),
            );
        }
        EnvironmentAction::Delete {
            environment,
            project,
            confirm: c,
        } => {
            confirm(
                &format!(
                    "environment `{environment}` of project `{}` and its values",
                    project.project
                ),
                &environment,
                c.yes,
            )?;
            ctx.api
                .delete(
                    &["projects", &project.project, "environments", &environment],
                    &[],
                )
                .await?;
            deleted(
                ctx,
                "environment",
                &environment,
                &format!("Deleted environment `{environment}`."),
            );
        }
    }
    Ok(())
}
