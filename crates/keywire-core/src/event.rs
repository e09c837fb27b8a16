//! Event types and the event data a delivery carries.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

macro_rules! event_types {
    ($($(#[$doc:meta])* $variant:ident = $wire:literal,)*) => {
        /// The kinds of change keywire records. The names are keyshade's, so that people moving
        /// from keyshade keep their subscriptions.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum EventType {
            $($(#[$doc])* #[serde(rename = $wire)] $variant,)*
        }

        impl EventType {
            /// Every event type, in declaration order.
            pub const ALL: &'static [EventType] = &[$(EventType::$variant,)*];

            /// The wire name, e.g. `SECRET_UPDATED`.
            pub const fn as_str(self) -> &'static str {
                match self { $(EventType::$variant => $wire,)* }
            }

            /// Parses a wire name; `None` when it names no event type.
            pub fn parse(name: &str) -> Option<EventType> {
                match name { $($wire => Some(EventType::$variant),)* _ => None }
            }
        }
    };
}

event_types! {
    /// A user was invited to a workspace.
    InvitedToWorkspace = "INVITED_TO_WORKSPACE",
    /// A member was removed from a workspace.
    RemovedFromWorkspace = "REMOVED_FROM_WORKSPACE",
    /// An invitation was accepted.
    AcceptedInvitation = "ACCEPTED_INVITATION",
    /// An invitation was declined.
    DeclinedInvitation = "DECLINED_INVITATION",
    /// An invitation was cancelled.
    CancelledInvitation = "CANCELLED_INVITATION",
    /// A member left a workspace.
    LeftWorkspace = "LEFT_WORKSPACE",
    /// A member's roles changed.
    WorkspaceMembershipUpdated = "WORKSPACE_MEMBERSHIP_UPDATED",
    /// A workspace was renamed or changed.
    WorkspaceUpdated = "WORKSPACE_UPDATED",
    /// A workspace was created.
    WorkspaceCreated = "WORKSPACE_CREATED",
    /// A workspace role was created.
    WorkspaceRoleCreated = "WORKSPACE_ROLE_CREATED",
    /// A workspace role was changed.
    WorkspaceRoleUpdated = "WORKSPACE_ROLE_UPDATED",
    /// A workspace role was deleted.
    WorkspaceRoleDeleted = "WORKSPACE_ROLE_DELETED",
    /// A project was created.
    ProjectCreated = "PROJECT_CREATED",
    /// A project was changed.
    ProjectUpdated = "PROJECT_UPDATED",
    /// A project was deleted.
    ProjectDeleted = "PROJECT_DELETED",
    /// A secret's value changed.
    SecretUpdated = "SECRET_UPDATED",
    /// A secret (or one of its values) was deleted.
    SecretDeleted = "SECRET_DELETED",
    /// A secret was created.
    SecretAdded = "SECRET_ADDED",
    /// A variable's value changed.
    VariableUpdated = "VARIABLE_UPDATED",
    /// A variable (or one of its values) was deleted.
    VariableDeleted = "VARIABLE_DELETED",
    /// A variable was created.
    VariableAdded = "VARIABLE_ADDED",
    /// An environment was changed.
    EnvironmentUpdated = "ENVIRONMENT_UPDATED",
    /// An environment was deleted.
    EnvironmentDeleted = "ENVIRONMENT_DELETED",
    /// An environment was created.
    EnvironmentAdded = "ENVIRONMENT_ADDED",
    /// An integration was created.
    IntegrationAdded = "INTEGRATION_ADDED",
    /// An integration was changed.
    IntegrationUpdated = "INTEGRATION_UPDATED",
    /// An integration was deleted.
    IntegrationDeleted = "INTEGRATION_DELETED",
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of object an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventSource {
    /// A workspace.
    Workspace,
    /// A workspace role.
    WorkspaceRole,
    /// A workspace membership.
    WorkspaceMembership,
    /// A project.
    Project,
    /// An environment.
    Environment,
    /// A secret.
    Secret,
    /// A variable.
    Variable,
    /// An integration.
    Integration,
}

/// How much an event matters; communication integrations show it as colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Severity {
    /// Routine change.
    Info,
    /// Something to look at (for example a deletion).
    Warn,
    /// Something failed.
    Error,
}

/// Who caused an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Actor {
    /// The user's id, or `system`.
    pub id: String,
    /// A display name.
    pub name: String,
}

/// One event as integrations receive it. It holds names and environment slugs, never a secret
/// value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventData {
    /// The event's id.
    pub id: String,
    /// What happened.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// What kind of object it happened to.
    pub source: EventSource,
    /// How much it matters.
    pub severity: Severity,
    /// A one-line summary, e.g. `Secret DATABASE_URL updated`.
    pub title: String,
    /// The workspace's slug.
    pub workspace: String,
    /// The project's slug, when the event belongs to a project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// The environments the event touches, by slug.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environments: Vec<String>,
    /// Who did it.
    pub actor: Actor,
    /// When it happened.
    pub created_at: DateTime<Utc>,
    /// Event-specific details: names, slugs and versions, never values.
    #[serde(default)]
    pub payload: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_are_keyshades_27_event_types_and_names_round_trip() {
        assert_eq!(EventType::ALL.len(), 27);
        for ty in EventType::ALL {
            assert_eq!(EventType::parse(ty.as_str()), Some(*ty));
            let json = serde_json::to_string(ty).unwrap();
            assert_eq!(json, format!("\"{}\"", ty.as_str()));
        }
        assert_eq!(EventType::parse("SECRET_EXPLODED"), None);
    }
}
