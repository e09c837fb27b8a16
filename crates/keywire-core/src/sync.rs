//! State-based sync for infrastructure integrations.
//!
//! A provider says only how to read, write and delete its keys ([`SyncTarget`]). Core computes
//! what to do ([`plan`]): the desired state is the current values of the mapped environments
//! with the key template applied; it is compared with what keywire wrote before (its records,
//! kept per integration by the caller) and with what is at the target. The result is a list of
//! [`PlanItem`]s (names and actions, never values) and the [`Change`]s that carry it out.
//!
//! Rules, for each target key:
//! - wanted and written by keywire before: `update` when the value differs (compared with the
//!   target's value when the provider can read it, else with the recorded hash), `create` when
//!   it vanished at the target, otherwise `unchanged`;
//! - wanted, not written by keywire, absent at the target: `create`;
//! - wanted, not written by keywire, present at the target: `skip` (the default policy), or
//!   `adopt` when the integration's conflict policy says so;
//! - written by keywire and no longer wanted: `delete` when the integration may delete, else
//!   `keep`;
//! - a key the provider refuses (its naming rules, a value it cannot protect): `skip`, with the
//!   reason. Keys keywire never wrote and does not want are never touched nor listed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::integration::{Context, IntegrationError};
use crate::metadata::Secret;

/// The events that change what an infrastructure target should hold: what every sync
/// provider permits (`.events(SYNC_EVENTS)`).
pub const SYNC_EVENTS: &[crate::EventType] = &[
    crate::EventType::SecretAdded,
    crate::EventType::SecretUpdated,
    crate::EventType::SecretDeleted,
    crate::EventType::VariableAdded,
    crate::EventType::VariableUpdated,
    crate::EventType::VariableDeleted,
    crate::EventType::EnvironmentUpdated,
    crate::EventType::EnvironmentDeleted,
    crate::EventType::IntegrationUpdated,
];

/// Placeholder for the entry's key in a key template.
pub const KEY_PLACEHOLDER: &str = "{{key}}";

/// Whether a value is a secret or a plain variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// A secret: providers store it encrypted or write-only.
    Secret,
    /// A configuration variable.
    Variable,
}

impl EntryKind {
    /// `secret` or `variable`.
    pub const fn as_str(self) -> &'static str {
        match self {
            EntryKind::Secret => "secret",
            EntryKind::Variable => "variable",
        }
    }

    /// Parses `secret` / `variable`.
    pub fn parse(text: &str) -> Option<EntryKind> {
        match text {
            "secret" => Some(EntryKind::Secret),
            "variable" => Some(EntryKind::Variable),
            _ => None,
        }
    }
}

/// What to do with a key at the target that exists but keywire did not write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConflictPolicy {
    /// Leave it alone and report it (the default).
    #[default]
    Skip,
    /// Take it over: write keywire's value and own the key from then on.
    Adopt,
}

/// How an integration maps keywire's entries onto target keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncSettings {
    /// The target key of each entry; `{{key}}` stands for the entry's key (e.g. `APP_{{key}}`).
    #[serde(default = "default_template")]
    pub key_template: String,
    /// What to do with keys that exist at the target but were not written by keywire.
    #[serde(default)]
    pub on_conflict: ConflictPolicy,
}

fn default_template() -> String {
    KEY_PLACEHOLDER.to_owned()
}

impl Default for SyncSettings {
    fn default() -> Self {
        SyncSettings {
            key_template: default_template(),
            on_conflict: ConflictPolicy::Skip,
        }
    }
}

impl SyncSettings {
    /// Checks the key template: `{{key}}` exactly once, at most 128 characters, and otherwise
    /// letters, digits, `_`, `-` and `.`.
    pub fn check(&self) -> Result<(), String> {
        let template = &self.key_template;
        if template.matches(KEY_PLACEHOLDER).count() != 1 {
            return Err("must contain `{{key}}` exactly once".into());
        }
        if template.chars().count() > 128 {
            return Err("must be at most 128 characters".into());
        }
        let rest = template.replace(KEY_PLACEHOLDER, "");
        if !rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err("may hold only letters, digits, `_`, `-` and `.` around `{{key}}`".into());
        }
        Ok(())
    }

    /// The target key of an entry.
    pub fn target_key(&self, key: &str) -> String {
        self.key_template.replacen(KEY_PLACEHOLDER, key, 1)
    }
}

/// A keywire environment the integration writes, and where its values go at the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedEnvironment {
    /// The environment's id (the mapping survives renames).
    pub id: String,
    /// Its slug, for plans and messages.
    pub slug: String,
    /// Where at the target (the provider's scope: a Vercel target, a GitLab environment scope,
    /// a GitHub environment; empty where the provider has only one).
    pub scope: String,
}

/// The current value of one entry in one environment.
#[derive(Debug)]
pub struct DesiredEntry {
    /// The environment's id.
    pub environment_id: String,
    /// The entry's key in keywire (before the template).
    pub key: String,
    /// Secret or variable.
    pub kind: EntryKind,
    /// The value.
    pub value: Secret,
    /// A keyed hash of the value, to compare with records without keeping values.
    pub hash: String,
}

/// What keywire wrote at the target before (one record per target key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRecord {
    /// The environment whose value it was.
    pub environment_id: String,
    /// Where at the target.
    pub scope: String,
    /// The target key.
    pub key: String,
    /// Secret or variable.
    pub kind: EntryKind,
    /// Hash of the value written; `None` while a write is in flight or its outcome is unknown.
    pub hash: Option<String>,
}

/// A key as the provider sees it at the target.
#[derive(Debug, Clone)]
pub struct RemoteKey {
    /// Where at the target.
    pub scope: String,
    /// The key.
    pub key: String,
    /// Its value, when the provider can read it back (never shown anywhere).
    pub value: Option<Secret>,
    /// The provider's handle for it (an id), when it needs one to change or delete it.
    pub handle: Option<String>,
    /// Whether it is a secret or a variable at the target, when the provider tells.
    pub kind: Option<EntryKind>,
}

/// What the plan does with one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Write a key that is not at the target.
    Create,
    /// Overwrite a key keywire wrote, whose value changed.
    Update,
    /// Take over a key keywire did not write (conflict policy `adopt`).
    Adopt,
    /// Delete a key keywire wrote and no longer has.
    Delete,
    /// Leave a key alone: it belongs to someone else, or the provider refuses it.
    Skip,
    /// Keywire no longer has it, but the integration may not delete.
    Keep,
    /// Already as wanted.
    Unchanged,
}

impl Action {
    /// Every action, for summaries.
    pub const ALL: [Action; 7] = [
        Action::Create,
        Action::Update,
        Action::Adopt,
        Action::Delete,
        Action::Skip,
        Action::Keep,
        Action::Unchanged,
    ];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Adopt => "adopt",
            Action::Delete => "delete",
            Action::Skip => "skip",
            Action::Keep => "keep",
            Action::Unchanged => "unchanged",
        }
    }
}

/// One line of a plan: names and actions, never values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanItem {
    /// The keywire environment (slug), when it is still mapped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Where at the target.
    pub target: String,
    /// The target key.
    pub key: String,
    /// Secret or variable.
    pub kind: EntryKind,
    /// What happens.
    pub action: Action,
    /// Why, for `skip`, `keep` and some creates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What the provider is asked to do to one key.
#[derive(Debug)]
pub enum Op {
    /// Write the value (create or overwrite).
    Upsert(Secret),
    /// Delete the key.
    Delete,
}

/// One write at the target.
#[derive(Debug)]
pub struct Change {
    /// The environment whose value it is (for deletes: whose value it was).
    pub environment_id: String,
    /// Where at the target.
    pub scope: String,
    /// The target key.
    pub key: String,
    /// Secret or variable.
    pub kind: EntryKind,
    /// What to do.
    pub op: Op,
    /// The key as the target has it now, when it exists there.
    pub existing: Option<RemoteKey>,
    /// For upserts: the value's hash, to record once written.
    pub hash: Option<String>,
}

/// A computed plan: what to show, what to write, and which records to drop.
#[derive(Debug, Default)]
pub struct Plan {
    /// Every key keywire wants or wrote, with its action (sorted by target, then key).
    pub items: Vec<PlanItem>,
    /// The writes, in order.
    pub changes: Vec<Change>,
    /// Keys taken over without a write (the target already has keywire's value).
    pub adopted: Vec<SyncRecord>,
    /// Records of keys gone from both keywire and the target: forget them.
    pub forget: Vec<SyncRecord>,
    /// Records whose hash should be refreshed (unchanged at the target, unknown or stale hash).
    pub refresh: Vec<SyncRecord>,
}

impl Plan {
    /// How many items have each action.
    pub fn summary(&self) -> BTreeMap<&'static str, usize> {
        let mut out: BTreeMap<&'static str, usize> =
            Action::ALL.iter().map(|a| (a.as_str(), 0)).collect();
        for item in &self.items {
            *out.entry(item.action.as_str()).or_default() += 1;
        }
        out
    }

    /// Whether applying it writes anything at the target.
    pub fn writes(&self) -> bool {
        !self.changes.is_empty()
    }
}

impl fmt::Display for Plan {
    /// A one-paragraph summary for run logs: counts, then the first reasons.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let summary = self.summary();
        let counts: Vec<String> = summary
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(a, n)| format!("{n} {a}"))
            .collect();
        if counts.is_empty() {
            f.write_str("nothing to sync")?;
        } else {
            f.write_str(&counts.join(", "))?;
        }
        for item in self.items.iter().filter(|i| i.reason.is_some()).take(5) {
            write!(
                f,
                "; {} {}: {}",
                item.action.as_str(),
                item.key,
                item.reason.as_deref().unwrap_or_default()
            )?;
        }
        Ok(())
    }
}

/// Result of applying changes: how many succeeded (in order) before the first failure.
#[derive(Debug)]
pub struct Applied {
    /// The first `done` changes were written.
    pub done: usize,
    /// Why the next one failed, if one did.
    pub error: Option<IntegrationError>,
}

/// What an infrastructure provider implements: read, write and delete its keys.
#[async_trait]
pub trait SyncTarget: Send + Sync {
    /// The scope a mapped environment writes to, from the user's target for it (`None` when
    /// none was given). An error says what is wrong with the target, for the user.
    fn scope(&self, target: Option<&str>) -> Result<String, String>;

    /// Whether the provider takes this key and value; an error (the reason) skips the key and
    /// reports it in the plan. The reason must not contain the value.
    fn check(&self, key: &str, kind: EntryKind, value: &str) -> Result<(), String> {
        let _ = (key, kind, value);
        Ok(())
    }

    /// The keys at the target in these scopes.
    async fn list(
        &self,
        ctx: &Context,
        scopes: &[String],
    ) -> Result<Vec<RemoteKey>, IntegrationError>;

    /// Writes one change.
    async fn write(&self, ctx: &Context, change: &Change) -> Result<(), IntegrationError>;

    /// Writes the changes in order and stops at the first failure. Providers that write in
    /// one call (AWS Lambda) override it.
    async fn apply(&self, ctx: &Context, changes: &[Change]) -> Applied {
        for (done, change) in changes.iter().enumerate() {
            if let Err(error) = self.write(ctx, change).await {
                return Applied {
                    done,
                    error: Some(error),
                };
            }
        }
        Applied {
            done: changes.len(),
            error: None,
        }
    }

    /// Runs after a sync that wrote something (e.g. a redeploy), with the scopes it changed and
    /// the integration's permitted actions.
    async fn after_sync(
        &self,
        ctx: &Context,
        changed_scopes: &[String],
        actions: &[String],
    ) -> Result<(), IntegrationError> {
        let _ = (ctx, changed_scopes, actions);
        Ok(())
    }
}

/// Everything the plan needs besides the target's keys.
#[derive(Debug)]
pub struct PlanInput<'a> {
    /// Key template and conflict policy.
    pub settings: &'a SyncSettings,
    /// The environments the integration writes (in their scopes).
    pub environments: &'a [MappedEnvironment],
    /// Current values of those environments.
    pub desired: Vec<DesiredEntry>,
    /// What keywire wrote before.
    pub records: &'a [SyncRecord],
    /// Whether the `upsert` action is permitted (without it nothing is written).
    pub may_upsert: bool,
    /// Whether the `delete` action is permitted.
    pub may_delete: bool,
}

struct Wanted {
    environment_id: String,
    environment: String,
    kind: EntryKind,
    value: Secret,
    hash: String,
}

/// Computes the plan (see the module documentation for the rules).
pub fn plan(target: &dyn SyncTarget, input: PlanInput<'_>, remote: Vec<RemoteKey>) -> Plan {
    let env_by_id: BTreeMap<&str, &MappedEnvironment> = input
        .environments
        .iter()
        .map(|e| (e.id.as_str(), e))
        .collect();
    let mut out = Plan::default();
    let mut items = Vec::new();
    // Desired keys, with the template applied; a secret wins over a variable of the same key.
    let mut wanted: BTreeMap<(String, String), Wanted> = BTreeMap::new();
    let mut desired = input.desired;
    desired.sort_by(|a, b| (a.kind, &a.key).cmp(&(b.kind, &b.key)));
    for entry in desired {
        let Some(env) = env_by_id.get(entry.environment_id.as_str()) else {
            continue;
        };
        let key = input.settings.target_key(&entry.key);
        let slot = (env.scope.clone(), key.clone());
        if wanted.contains_key(&slot) {
            items.push(PlanItem {
                environment: Some(env.slug.clone()),
                target: env.scope.clone(),
                key,
                kind: entry.kind,
                action: Action::Skip,
                reason: Some("a secret with the same key wins over the variable".into()),
            });
            continue;
        }
        if let Err(reason) = target.check(&key, entry.kind, entry.value.expose()) {
            items.push(PlanItem {
                environment: Some(env.slug.clone()),
                target: env.scope.clone(),
                key,
                kind: entry.kind,
                action: Action::Skip,
                reason: Some(reason),
            });
            // A refused key is neither written nor deleted: keep any record as it is.
            wanted.insert(
                slot,
                Wanted {
                    environment_id: String::new(),
                    environment: String::new(),
                    kind: entry.kind,
                    value: Secret::new(""),
                    hash: String::new(),
                },
            );
            continue;
        }
        wanted.insert(
            slot,
            Wanted {
                environment_id: entry.environment_id.clone(),
                environment: env.slug.clone(),
                kind: entry.kind,
                value: entry.value,
                hash: entry.hash,
            },
        );
    }
    let records: BTreeMap<(String, String), &SyncRecord> = input
        .records
        .iter()
        .map(|r| ((r.scope.clone(), r.key.clone()), r))
        .collect();
    let mut at_target: BTreeMap<(String, String), RemoteKey> = BTreeMap::new();
    for key in remote {
        at_target
            .entry((key.scope.clone(), key.key.clone()))
            .or_insert(key);
    }
    let slots: BTreeSet<(String, String)> = wanted
        .keys()
        .chain(records.keys())
        .cloned()
        .collect::<BTreeSet<_>>();
    for slot in slots {
        let record = records.get(&slot).copied();
        let existing = at_target.remove(&slot);
        let (scope, key) = slot.clone();
        match wanted.remove(&slot) {
            Some(w) if w.environment_id.is_empty() => {} // refused: reported above
            Some(w) => {
                let item = |action: Action, reason: Option<&str>| PlanItem {
                    environment: Some(w.environment.clone()),
                    target: scope.clone(),
                    key: key.clone(),
                    kind: w.kind,
                    action,
                    reason: reason.map(str::to_owned),
                };
                let same_at_target = existing
                    .as_ref()
                    .and_then(|e| e.value.as_ref())
                    .map(|v| v.expose() == w.value.expose());
                let action = match (record, &existing) {
                    (Some(record), Some(_)) => {
                        let same = same_at_target
                            .unwrap_or(record.hash.as_deref() == Some(w.hash.as_str()));
                        if same && record.kind == w.kind {
                            if record.hash.as_deref() != Some(w.hash.as_str())
                                || record.environment_id != w.environment_id
                            {
                                out.refresh.push(SyncRecord {
                                    environment_id: w.environment_id.clone(),
                                    scope: scope.clone(),
                                    key: key.clone(),
                                    kind: w.kind,
                                    hash: Some(w.hash.clone()),
                                });
                            }
                            items.push(item(Action::Unchanged, None));
                            continue;
                        }
                        items.push(item(Action::Update, None));
                        Action::Update
                    }
                    (Some(_), None) => {
                        items.push(item(
                            Action::Create,
                            Some("keywire wrote it before, but it is gone at the target"),
                        ));
                        Action::Create
                    }
                    (None, Some(_)) => match input.settings.on_conflict {
                        ConflictPolicy::Skip => {
                            items.push(item(
                                Action::Skip,
                                Some("exists at the target and was not written by keywire (conflict policy `skip`)"),
                            ));
                            continue;
                        }
                        ConflictPolicy::Adopt if same_at_target == Some(true) => {
                            items.push(item(Action::Adopt, Some("already has keywire's value")));
                            out.adopted.push(SyncRecord {
                                environment_id: w.environment_id.clone(),
                                scope: scope.clone(),
                                key: key.clone(),
                                kind: w.kind,
                                hash: Some(w.hash.clone()),
                            });
                            continue;
                        }
                        ConflictPolicy::Adopt => {
                            items.push(item(Action::Adopt, None));
                            Action::Adopt
                        }
                    },
                    (None, None) => {
                        items.push(item(Action::Create, None));
                        Action::Create
                    }
                };
                debug_assert!(matches!(
                    action,
                    Action::Create | Action::Update | Action::Adopt
                ));
                if !input.may_upsert {
                    if let Some(last) = items.last_mut() {
                        last.action = Action::Skip;
                        last.reason = Some(format!(
                            "would {}, but the integration may not write (action `upsert`)",
                            action.as_str()
                        ));
                    }
                    continue;
                }
                out.changes.push(Change {
                    environment_id: w.environment_id,
                    scope,
                    key,
                    kind: w.kind,
                    op: Op::Upsert(w.value),
                    existing,
                    hash: Some(w.hash),
                });
            }
            None => {
                // Only records reach here: keywire wrote it and no longer wants it.
                let Some(record) = record else { continue };
                let environment = env_by_id
                    .get(record.environment_id.as_str())
                    .map(|e| e.slug.clone());
                match existing {
                    None => out.forget.push(record.clone()),
                    Some(existing) if input.may_delete => {
                        items.push(PlanItem {
                            environment,
                            target: scope.clone(),
                            key: key.clone(),
                            kind: record.kind,
                            action: Action::Delete,
                            reason: None,
                        });
                        out.changes.push(Change {
                            environment_id: record.environment_id.clone(),
                            scope,
                            key,
                            kind: record.kind,
                            op: Op::Delete,
                            existing: Some(existing),
                            hash: None,
                        });
                    }
                    Some(_) => items.push(PlanItem {
                        environment,
                        target: scope,
                        key,
                        kind: record.kind,
                        action: Action::Keep,
                        reason: Some(
                            "keywire no longer has it, and the integration may not delete (action `delete`)"
                                .into(),
                        ),
                    }),
                }
            }
        }
    }
    items.sort_by(|a, b| (&a.target, &a.key, a.kind).cmp(&(&b.target, &b.key, b.kind)));
    out.items = items;
    out
}

/// The plan that removes every key keywire wrote (delete with `?cleanup=true`).
pub fn cleanup_plan(records: &[SyncRecord], remote: Vec<RemoteKey>) -> Plan {
    struct NoChecks;
    #[async_trait]
    impl SyncTarget for NoChecks {
        fn scope(&self, _: Option<&str>) -> Result<String, String> {
            Ok(String::new())
        }
        async fn list(
            &self,
            _: &Context,
            _: &[String],
        ) -> Result<Vec<RemoteKey>, IntegrationError> {
            Ok(Vec::new())
        }
        async fn write(&self, _: &Context, _: &Change) -> Result<(), IntegrationError> {
            Ok(())
        }
    }
    let settings = SyncSettings::default();
    plan(
        &NoChecks,
        PlanInput {
            settings: &settings,
            environments: &[],
            desired: Vec::new(),
            records,
            may_upsert: false,
            may_delete: true,
        },
        remote,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Target;

    #[async_trait]
    impl SyncTarget for Target {
        fn scope(&self, target: Option<&str>) -> Result<String, String> {
            Ok(target.unwrap_or("all").to_owned())
        }
        fn check(&self, key: &str, _: EntryKind, value: &str) -> Result<(), String> {
            if key.contains("GITHUB_") {
                return Err("must not contain GITHUB_".into());
            }
            if value.is_empty() {
                return Err("empty values are refused".into());
            }
            Ok(())
        }
        async fn list(
            &self,
            _: &Context,
            _: &[String],
        ) -> Result<Vec<RemoteKey>, IntegrationError> {
            Ok(Vec::new())
        }
        async fn write(&self, _: &Context, _: &Change) -> Result<(), IntegrationError> {
            Ok(())
        }
    }

    fn env(id: &str, scope: &str) -> MappedEnvironment {
        MappedEnvironment {
            id: id.into(),
            slug: format!("{id}-slug"),
            scope: scope.into(),
        }
    }

    fn desired(env: &str, key: &str, kind: EntryKind, value: &str) -> DesiredEntry {
        DesiredEntry {
            environment_id: env.into(),
            key: key.into(),
            kind,
            value: Secret::new(value),
            hash: format!("h({value})"),
        }
    }

    fn record(env: &str, scope: &str, key: &str, value: &str) -> SyncRecord {
        SyncRecord {
            environment_id: env.into(),
            scope: scope.into(),
            key: key.into(),
            kind: EntryKind::Secret,
            hash: Some(format!("h({value})")),
        }
    }

    fn remote(scope: &str, key: &str, value: Option<&str>) -> RemoteKey {
        RemoteKey {
            scope: scope.into(),
            key: key.into(),
            value: value.map(Secret::new),
            handle: None,
            kind: None,
        }
    }

    fn actions(plan: &Plan) -> Vec<(String, &'static str)> {
        plan.items
            .iter()
            .map(|i| (format!("{}/{}", i.target, i.key), i.action.as_str()))
            .collect()
    }

    #[test]
    fn creates_updates_deletes_and_leaves_foreign_keys_alone() {
        let settings = SyncSettings {
            key_template: "APP_{{key}}".into(),
            on_conflict: ConflictPolicy::Skip,
        };
        let envs = [env("e1", "production"), env("e2", "preview")];
        let records = [
            record("e1", "production", "APP_DB", "old"),
            record("e1", "production", "APP_SAME", "same"),
            record("e1", "production", "APP_GONE", "x"),
            record("e2", "preview", "APP_VANISHED", "v"),
            record("e1", "production", "APP_FORGOTTEN", "f"),
        ];
        let plan = plan(
            &Target,
            PlanInput {
                settings: &settings,
                environments: &envs,
                desired: vec![
                    desired("e1", "DB", EntryKind::Secret, "new"),
                    desired("e1", "SAME", EntryKind::Secret, "same"),
                    desired("e1", "NEW", EntryKind::Variable, "n"),
                    desired("e2", "VANISHED", EntryKind::Secret, "v"),
                    desired("e2", "TAKEN", EntryKind::Secret, "mine"),
                    desired("e2", "GITHUB_TOKEN", EntryKind::Secret, "t"),
                    desired("e3", "UNMAPPED", EntryKind::Secret, "u"),
                ],
                records: &records,
                may_upsert: true,
                may_delete: true,
            },
            vec![
                remote("production", "APP_DB", None),
                remote("production", "APP_SAME", None),
                remote("production", "APP_GONE", None),
                remote("production", "UNRELATED", Some("theirs")),
                remote("preview", "APP_TAKEN", Some("theirs")),
            ],
        );
        assert_eq!(
            actions(&plan),
            vec![
                ("preview/APP_GITHUB_TOKEN".into(), "skip"),
                ("preview/APP_TAKEN".into(), "skip"),
                ("preview/APP_VANISHED".into(), "create"),
                ("production/APP_DB".into(), "update"),
                ("production/APP_GONE".into(), "delete"),
                ("production/APP_NEW".into(), "create"),
                ("production/APP_SAME".into(), "unchanged"),
            ]
        );
        assert_eq!(plan.changes.len(), 4);
        assert_eq!(plan.forget.len(), 1);
        assert_eq!(plan.forget[0].key, "APP_FORGOTTEN");
        let summary = plan.summary();
        assert_eq!(summary["create"], 2);
        assert_eq!(summary["skip"], 2);
        // The plan's text never carries a value.
        let text = format!("{plan} {:?}", plan.items);
        for value in ["new", "mine", "theirs", "same"] {
            assert!(!text.contains(&format!("\"{value}\"")), "{text}");
        }
        assert!(!serde_json::to_string(&plan.items).unwrap().contains("mine"));
    }

    #[test]
    fn adopt_policy_takes_over_and_delete_needs_the_action() {
        let settings = SyncSettings {
            key_template: KEY_PLACEHOLDER.into(),
            on_conflict: ConflictPolicy::Adopt,
        };
        let envs = [env("e1", "all")];
        let records = [record("e1", "all", "OLD", "o")];
        let plan = plan(
            &Target,
            PlanInput {
                settings: &settings,
                environments: &envs,
                desired: vec![
                    desired("e1", "THEIRS", EntryKind::Secret, "mine"),
                    desired("e1", "EQUAL", EntryKind::Secret, "eq"),
                ],
                records: &records,
                may_upsert: true,
                may_delete: false,
            },
            vec![
                remote("all", "THEIRS", Some("theirs")),
                remote("all", "EQUAL", Some("eq")),
                remote("all", "OLD", None),
            ],
        );
        assert_eq!(
            actions(&plan),
            vec![
                ("all/EQUAL".into(), "adopt"),
                ("all/OLD".into(), "keep"),
                ("all/THEIRS".into(), "adopt"),
            ]
        );
        assert_eq!(plan.changes.len(), 1, "EQUAL is adopted without a write");
        assert_eq!(plan.adopted.len(), 1);
    }

    #[test]
    fn readable_targets_are_compared_by_value_and_unknown_hashes_rewrite() {
        let settings = SyncSettings::default();
        let envs = [env("e1", "all")];
        let mut unknown = record("e1", "all", "PENDING", "p");
        unknown.hash = None;
        let records = [record("e1", "all", "EDITED", "v"), unknown];
        let plan = plan(
            &Target,
            PlanInput {
                settings: &settings,
                environments: &envs,
                desired: vec![
                    desired("e1", "EDITED", EntryKind::Secret, "v"),
                    desired("e1", "PENDING", EntryKind::Secret, "p"),
                ],
                records: &records,
                may_upsert: true,
                may_delete: true,
            },
            vec![
                remote("all", "EDITED", Some("changed by hand")),
                remote("all", "PENDING", None),
            ],
        );
        assert_eq!(
            actions(&plan),
            vec![
                ("all/EDITED".into(), "update"),
                ("all/PENDING".into(), "update")
            ]
        );
    }

    #[test]
    fn without_upsert_nothing_is_written() {
        let settings = SyncSettings::default();
        let envs = [env("e1", "all")];
        let plan = plan(
            &Target,
            PlanInput {
                settings: &settings,
                environments: &envs,
                desired: vec![desired("e1", "NEW", EntryKind::Secret, "n")],
                records: &[],
                may_upsert: false,
                may_delete: true,
            },
            Vec::new(),
        );
        assert_eq!(actions(&plan), vec![("all/NEW".into(), "skip")]);
        assert!(plan.changes.is_empty());
    }

    #[test]
    fn cleanup_deletes_only_what_keywire_wrote() {
        let records = [record("e1", "all", "MINE", "m")];
        let plan = cleanup_plan(
            &records,
            vec![remote("all", "MINE", None), remote("all", "THEIRS", None)],
        );
        assert_eq!(actions(&plan), vec![("all/MINE".into(), "delete")]);
    }

    #[test]
    fn templates_are_checked() {
        let ok = |t: &str| {
            SyncSettings {
                key_template: t.into(),
                on_conflict: ConflictPolicy::Skip,
            }
            .check()
        };
        assert!(ok("{{key}}").is_ok());
        assert!(ok("APP_{{key}}_V1").is_ok());
        assert!(ok("APP").is_err());
        assert!(ok("{{key}}{{key}}").is_err());
        assert!(ok("A B {{key}}").is_err());
    }
}
