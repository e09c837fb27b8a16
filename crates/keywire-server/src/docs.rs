//! `keywire docs --out <workspace root> [--check]` (hidden; run by `cargo xtask codegen`): the
//! pages `docs/integrations/<type>.md` of every registered integration type and the table in
//! `README.md` between its markers. Pages of types that no longer exist are deleted; nothing
//! else is touched.

use std::io::Write;
use std::path::{Path, PathBuf};

use keywire_core::docs::with_integrations_table;
use keywire_core::{integration_page, registry};

use crate::config::DocsArgs;

/// What the generated docs should be.
#[derive(Debug, Default)]
pub struct Plan {
    /// Files with their wanted contents.
    pub files: Vec<(PathBuf, String)>,
    /// Pages of types that are no longer registered.
    pub obsolete: Vec<PathBuf>,
}

/// The wanted pages and README of the workspace at `root`, for the registered types.
pub fn plan(root: &Path) -> anyhow::Result<Plan> {
    let all = registry();
    let pages = root.join("docs/integrations");
    let mut plan = Plan::default();
    for d in &all {
        plan.files
            .push((pages.join(format!("{}.md", d.type_id)), integration_page(d)));
    }
    let readme_path = root.join("README.md");
    let readme = std::fs::read_to_string(&readme_path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", readme_path.display()))?;
    let readme = with_integrations_table(&readme, &all).map_err(anyhow::Error::msg)?;
    plan.files.push((readme_path, readme));
    if let Ok(entries) = std::fs::read_dir(&pages) {
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            let is_page = path.extension().is_some_and(|e| e == "md");
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            if is_page && !all.iter().any(|d| d.type_id == stem) {
                plan.obsolete.push(path);
            }
        }
    }
    plan.obsolete.sort();
    Ok(plan)
}

/// Writes the docs, or (with `check`) only compares them; returns one line per file. A stale
/// file in check mode is an error naming the files and the command to run.
pub fn sync(root: &Path, check: bool) -> anyhow::Result<Vec<String>> {
    let plan = plan(root)?;
    let shown = |p: &Path| p.strip_prefix(root).unwrap_or(p).display().to_string();
    let mut report = Vec::new();
    let mut stale = Vec::new();
    for (path, contents) in &plan.files {
        let current = std::fs::read_to_string(path).unwrap_or_default();
        if &current == contents {
            report.push(format!("fresh   {}", shown(path)));
        } else if check {
            stale.push(shown(path));
        } else {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(path, contents)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", shown(path)))?;
            report.push(format!("wrote   {}", shown(path)));
        }
    }
    for path in &plan.obsolete {
        if check {
            stale.push(format!("{} (no such type)", shown(path)));
        } else {
            std::fs::remove_file(path)
                .map_err(|e| anyhow::anyhow!("cannot delete {}: {e}", shown(path)))?;
            report.push(format!("deleted {}", shown(path)));
        }
    }
    if stale.is_empty() {
        Ok(report)
    } else {
        anyhow::bail!(
            "stale generated files: {}; run `cargo xtask codegen` and commit",
            stale.join(", ")
        )
    }
}

/// `keywire docs`.
pub fn command(args: &DocsArgs) -> anyhow::Result<()> {
    let report = sync(&args.out, args.check)?;
    let mut out = std::io::stdout().lock();
    for line in report {
        writeln!(out, "{line}")?;
    }
    Ok(())
}
