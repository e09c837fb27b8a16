//! `event list`.

use serde_json::json;

use super::{Ctx, s};
use crate::cli::EventAction;
use crate::error::Error;
use crate::output::{Style, Table};
use crate::time::{parse_since, show_value};

/// `keywire event ...`.
pub(crate) async fn main(ctx: &Ctx, action: EventAction) -> Result<(), Error> {
    let EventAction::List {
        workspace,
        types,
        source,
        project,
        since,
        limit,
    } = action;
    let mut query: Vec<(&str, String)> = Vec::new();
    if !types.is_empty() {
        query.push(("type", types.join(",")));
    }
    if let Some(source) = source {
        query.push(("source", source));
    }
    if let Some(project) = project {
        query.push(("project", project));
    }
    if let Some(since) = since {
        query.push(("since", parse_since(&since, chrono::Utc::now())?));
    }
    let items = ctx
        .api
        .list(
            &["workspaces", &workspace.workspace, "events"],
            &query,
            Some(limit.max(1)),
        )
        .await?;
    if ctx.out.json() {
        ctx.out.value(&json!(items));
        return Ok(());
    }
    let mut table = Table::new(&["TIME", "TYPE", "TITLE", "BY"]);
    for e in &items {
        let style = match e["severity"].as_str() {
            Some("ERROR") => Style::Red,
            Some("WARN") => Style::Yellow,
            _ => Style::Plain,
        };
        table.styled(vec![
            (show_value(&e["createdAt"]), Style::Dim),
            (s(&e["type"]), style),
            (s(&e["title"]), Style::Plain),
            (s(&e["actor"]["name"]), Style::Plain),
        ]);
    }
    ctx.out.table(&table, "No events.");
    Ok(())
}
