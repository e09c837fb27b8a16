//! State-based sync of infrastructure integrations: reads the desired state and keywire's
//! records from the database, asks the provider what its target holds, lets core's
//! [`keywire_core::sync::plan`] decide, and applies the plan with write-ahead records (a key is
//! recorded as keywire's before it is written, so a crash mid-sync never orphans one).
//!
//! The same code answers the dry run (`POST /integrations/{slug}/sync?dryRun=true`), runs
//! `sync` runs for the delivery workers, and removes every key on delete with cleanup.

use std::collections::{BTreeMap, BTreeSet};

use keywire_core::sync::{
    self, ConflictPolicy, DesiredEntry, MappedEnvironment, Op, Plan, PlanInput, SyncRecord,
    SyncSettings, SyncTarget,
};
use keywire_core::{
    ACTION_DELETE, ACTION_UPSERT, Context, EntryKind, Integration, IntegrationError, Secret,
};
use keywire_db::StoredIntegration;
use serde::{Deserialize, Serialize};

use crate::state::AppState;

/// Sync settings as stored (`integration_sync.settings`): targets by environment id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredSync {
    /// Key template (`{{key}}` by default).
    #[serde(default = "default_template")]
    pub key_template: String,
    /// Conflict policy for keys keywire did not write.
    #[serde(default)]
    pub on_conflict: ConflictPolicy,
    /// The provider target of each mapped environment, by environment id.
    #[serde(default)]
    pub targets: BTreeMap<String, String>,
}

fn default_template() -> String {
    sync::KEY_PLACEHOLDER.to_owned()
}

impl StoredSync {
    /// The stored settings of an integration (defaults when it has none).
    pub fn of(stored: &StoredIntegration) -> StoredSync {
        stored
            .sync_settings
            .as_deref()
            .and_then(|json| serde_json::from_str(json).ok())
            .unwrap_or_else(|| StoredSync {
                key_template: default_template(),
                ..StoredSync::default()
            })
    }

    /// Key template and conflict policy.
    pub fn settings(&self) -> SyncSettings {
        SyncSettings {
            key_template: self.key_template.clone(),
            on_conflict: self.on_conflict,
        }
    }
}

/// The mapped environments of an integration with their scopes at the target.
///
/// # Errors
///
/// The environment whose target the provider refuses, and why.
pub fn mapped_environments(
    stored: &StoredIntegration,
    settings: &StoredSync,
    target: &dyn SyncTarget,
) -> Result<Vec<MappedEnvironment>, String> {
    let mut scopes = BTreeSet::new();
    let mut out = Vec::new();
    for (id, slug) in stored
        .environment_ids
        .iter()
        .zip(stored.environment_slugs.iter())
    {
        let scope = target
            .scope(settings.targets.get(id).map(String::as_str))
            .map_err(|why| format!("environment `{slug}`: {why}"))?;
        if !scopes.insert(scope.clone()) {
            return Err(format!(
                "environment `{slug}`: another environment of this integration already writes to target `{scope}`"
            ));
        }
        out.push(MappedEnvironment {
            id: id.clone(),
            slug: slug.clone(),
            scope,
        });
    }
    Ok(out)
}

/// Why a sync could not be planned or applied.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The provider (or the network) failed.
    #[error(transparent)]
    Provider(#[from] IntegrationError),
    /// The integration's configuration does not work (permanent until it is changed).
    #[error("{0}")]
    Config(String),
    /// keywire's own storage failed (retryable).
    #[error("{0}")]
    Storage(String),
}

impl SyncError {
    /// As an integration error, for the run log and retry decision.
    pub fn into_integration_error(self) -> IntegrationError {
        match self {
            SyncError::Provider(err) => err,
            SyncError::Config(message) => IntegrationError::Provider {
                message,
                retryable: false,
                status: None,
            },
            SyncError::Storage(message) => IntegrationError::Provider {
                message,
                retryable: true,
                status: None,
            },
        }
    }
}

/// keywire's own database failed: retryable.
pub(crate) fn storage(err: keywire_db::DbError) -> SyncError {
    SyncError::Storage(format!("keywire's database: {err}"))
}

fn entry_kind(kind: keywire_db::EntryKind) -> EntryKind {
    match kind {
        keywire_db::EntryKind::Secret => EntryKind::Secret,
        keywire_db::EntryKind::Variable => EntryKind::Variable,
    }
}

/// The context a record's value hash is bound to.
fn hash_context(integration_id: &str, scope: &str, key: &str) -> String {
    format!("sync/{integration_id}/{scope}/{key}")
}

/// Computes the plan of one integration now: desired state, records, and the target's keys.
///
/// # Errors
///
/// [`SyncError`]: a refused mapping, keywire's storage, or the provider's `list`.
pub async fn compute(
    state: &AppState,
    stored: &StoredIntegration,
    target: &dyn SyncTarget,
    ctx: &Context,
) -> Result<Plan, SyncError> {
    let settings = StoredSync::of(stored);
    let environments = mapped_environments(stored, &settings, target).map_err(SyncError::Config)?;
    let records = state.db.sync_records(&stored.id).await.map_err(storage)?;
    let env_ids: Vec<String> = environments.iter().map(|e| e.id.clone()).collect();
    let values = match &stored.project_id {
        Some(project) => state
            .db
            .current_values(project, &env_ids, &state.cipher)
            .await
            .map_err(storage)?,
        None => Vec::new(),
    };
    let template = settings.settings();
    let scope_of: BTreeMap<&str, &str> = environments
        .iter()
        .map(|e| (e.id.as_str(), e.scope.as_str()))
        .collect();
    let desired: Vec<DesiredEntry> = values
        .into_iter()
        .map(|(kind, key, environment_id, value)| {
            let scope = scope_of.get(environment_id.as_str()).copied().unwrap_or("");
            let hash = state.cipher.value_hash(
                &hash_context(&stored.id, scope, &template.target_key(&key)),
                &value,
            );
            DesiredEntry {
                environment_id,
                key,
                kind: entry_kind(kind),
                value: Secret::new(value),
                hash,
            }
        })
        .collect();
    // Scopes of environments no longer mapped still hold keys keywire wrote: list them too.
    let scopes: Vec<String> = environments
        .iter()
        .map(|e| e.scope.clone())
        .chain(records.iter().map(|r| r.scope.clone()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let remote = target.list(ctx, &scopes).await?;
    Ok(sync::plan(
        target,
        PlanInput {
            settings: &template,
            environments: &environments,
            desired,
            records: &records,
            may_upsert: stored.actions.iter().any(|a| a == ACTION_UPSERT),
            may_delete: stored.actions.iter().any(|a| a == ACTION_DELETE),
        },
        remote,
    ))
}

/// Applies a plan: records first (write-ahead), then the provider's writes, then the records
/// of what was written; `after_sync` when something changed and `after` is set.
///
/// # Errors
///
/// [`SyncError`]: the first failed write (the writes before it are recorded), or storage.
pub async fn apply(
    state: &AppState,
    stored: &StoredIntegration,
    target: &dyn SyncTarget,
    ctx: &Context,
    plan: &Plan,
    after: bool,
) -> Result<(), SyncError> {
    let mut ahead: Vec<SyncRecord> = plan
        .changes
        .iter()
        .filter(|c| matches!(c.op, Op::Upsert(_)))
        .map(|c| SyncRecord {
            environment_id: c.environment_id.clone(),
            scope: c.scope.clone(),
            key: c.key.clone(),
            kind: c.kind,
            hash: None,
        })
        .collect();
    ahead.extend(plan.adopted.iter().cloned());
    ahead.extend(plan.refresh.iter().cloned());
    let forget: Vec<(String, String)> = plan
        .forget
        .iter()
        .map(|r| (r.scope.clone(), r.key.clone()))
        .collect();
    state
        .db
        .save_sync_records(&stored.id, &ahead, &forget)
        .await
        .map_err(storage)?;
    if plan.changes.is_empty() {
        return Ok(());
    }
    let applied = target.apply(ctx, &plan.changes).await;
    let done = &plan.changes[..applied.done.min(plan.changes.len())];
    let written: Vec<SyncRecord> = done
        .iter()
        .filter(|c| matches!(c.op, Op::Upsert(_)))
        .map(|c| SyncRecord {
            environment_id: c.environment_id.clone(),
            scope: c.scope.clone(),
            key: c.key.clone(),
            kind: c.kind,
            hash: c.hash.clone(),
        })
        .collect();
    let deleted: Vec<(String, String)> = done
        .iter()
        .filter(|c| matches!(c.op, Op::Delete))
        .map(|c| (c.scope.clone(), c.key.clone()))
        .collect();
    state
        .db
        .save_sync_records(&stored.id, &written, &deleted)
        .await
        .map_err(storage)?;
    if let Some(error) = applied.error {
        return Err(error.into());
    }
    if !after {
        return Ok(());
    }
    let changed: Vec<String> = done
        .iter()
        .map(|c| c.scope.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    target.after_sync(ctx, &changed, &stored.actions).await?;
    Ok(())
}

/// One sync run: plan and apply. Returns the plan's summary for the run log.
///
/// # Errors
///
/// [`SyncError`].
pub async fn run(
    state: &AppState,
    stored: &StoredIntegration,
    integration: &dyn Integration,
    ctx: &Context,
) -> Result<String, SyncError> {
    let target = integration.sync_target().ok_or_else(|| {
        SyncError::Config("this integration type does not sync (it sends messages)".into())
    })?;
    let plan = compute(state, stored, target, ctx).await?;
    apply(state, stored, target, ctx, &plan, true).await?;
    Ok(plan.to_string())
}

/// Removes every key the integration wrote (delete with cleanup). Returns the plan.
///
/// # Errors
///
/// [`SyncError`]; nothing is forgotten that was not deleted.
pub async fn cleanup(
    state: &AppState,
    stored: &StoredIntegration,
    target: &dyn SyncTarget,
    ctx: &Context,
) -> Result<Plan, SyncError> {
    let records = state.db.sync_records(&stored.id).await.map_err(storage)?;
    if records.is_empty() {
        return Ok(Plan::default());
    }
    let scopes: Vec<String> = records
        .iter()
        .map(|r| r.scope.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let remote = target.list(ctx, &scopes).await?;
    let plan = sync::cleanup_plan(&records, remote);
    apply(state, stored, target, ctx, &plan, false).await?;
    Ok(plan)
}
